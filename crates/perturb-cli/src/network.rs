//! The networks `perturb train` fits and `perturb predict`/`eval` apply, built from the
//! library's layers ([`Sequential`]): the MLP, and a small convolutional network for square
//! images. A network is its [`Architecture`] (what a model file's metadata records) and the
//! layers with their weights; its parameters are the leaves of the layers' tree, named by
//! their paths (`layers.0.weight`).

use perturb::tensor::{Array, Tensor};
use perturb::tree::Tree;
use perturb::Error;
use perturb_nn::layers::{Layer, Linear, Relu, Sequential, Sigmoid, Softplus, Tanh};
use perturb_nn::models::small_cnn;
use perturb_nn::module::{Context, Module};
use perturb_nn::nn::{Activation, Init};
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};

/// The CNN's channels, its two convolutions' outputs: those with which the library's digits
/// test reaches 98.5% (`crates/perturb-nn/tests/cnn_digits.rs`).
pub const CNN_CHANNELS: [usize; 2] = [32, 64];

/// What a network is, without its weights.
#[derive(Debug, Clone, PartialEq)]
pub enum Architecture {
    /// Linear layers of these sizes (inputs first), the activation after each but the last.
    Mlp {
        sizes: Vec<usize>,
        activation: Activation,
    },
    /// The library's [`small_cnn`] for `side x side` images given as rows of `side * side`
    /// features (row-major, as the digits data hold them): conv(1 -> C1, 3x3, padding 1),
    /// relu, max pool 2x2, conv(C1 -> C2, 3x3, padding 1), relu, max pool 2x2, flatten, and a
    /// linear layer to `outputs`.
    Cnn {
        side: usize,
        channels: [usize; 2],
        outputs: usize,
    },
}

/// A network: its architecture and its layers with their weights.
#[derive(Debug, Clone)]
pub struct Network {
    architecture: Architecture,
    layers: Sequential<Tensor<f64>>,
}

/// The side of a square image of `features` pixels that the CNN can take (at least 4, so that
/// two poolings leave a pixel), or an error that says why not.
pub fn image_side(features: usize) -> Result<usize, String> {
    let side = (features as f64).sqrt().round() as usize;
    if side * side != features {
        return Err(format!(
            "--model cnn takes square images, one pixel per feature (digits: 8x8 = 64 \
             features); the data have {features} features, not a square number"
        ));
    }
    if side < 4 {
        return Err(format!(
            "--model cnn takes square images of at least 4x4 pixels (two 2x2 poolings); the \
             data have {features} features, a {side}x{side} image"
        ));
    }
    Ok(side)
}

/// The activation as a layer (none for the identity).
fn activation_layer(activation: Activation) -> Option<Layer<Tensor<f64>>> {
    match activation {
        Activation::Sigmoid => Some(Sigmoid.into()),
        Activation::Tanh => Some(Tanh.into()),
        Activation::Relu => Some(Relu.into()),
        Activation::Softplus => Some(Softplus.into()),
        Activation::Identity => None,
    }
}

impl Architecture {
    /// The parameters' paths and shapes, in the order of the layers' leaves, computed without
    /// building anything (to check a file before allocating for it).
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        let pair = |l: usize, weight: Vec<usize>, outputs: usize| {
            [
                (format!("layers.{l}.weight"), weight),
                (format!("layers.{l}.bias"), vec![outputs]),
            ]
        };
        match self {
            // Linear layers at 0, 2, 4, ... with the activations between them.
            Architecture::Mlp { sizes, activation } => {
                let stride = if activation_layer(*activation).is_some() {
                    2
                } else {
                    1
                };
                sizes
                    .windows(2)
                    .enumerate()
                    .flat_map(|(l, w)| pair(stride * l, vec![w[0], w[1]], w[1]))
                    .collect()
            }
            // conv relu pool conv relu pool flatten linear: parameters at 0, 3 and 7.
            Architecture::Cnn {
                side,
                channels: [c1, c2],
                outputs,
            } => {
                let s = side / 2 / 2;
                pair(0, vec![*c1, 1, 3, 3], *c1)
                    .into_iter()
                    .chain(pair(3, vec![*c2, *c1, 3, 3], *c2))
                    .chain(pair(7, vec![c2 * s * s, *outputs], *outputs))
                    .collect()
            }
        }
    }

    /// How many features a row of the input has.
    pub fn inputs(&self) -> usize {
        match self {
            Architecture::Mlp { sizes, .. } => sizes[0],
            Architecture::Cnn { side, .. } => side * side,
        }
    }

    /// How many outputs a row gets.
    pub fn outputs(&self) -> usize {
        match self {
            Architecture::Mlp { sizes, .. } => sizes[sizes.len() - 1],
            Architecture::Cnn { outputs, .. } => *outputs,
        }
    }

    /// The network with its initial weights from `seed`. The MLP's linear layers each draw
    /// from their own seed of a generator seeded with `seed`, Xavier-uniform (He-normal under
    /// relu), as the library's first MLP did (so a run's weights are those of earlier
    /// versions); the CNN is the library's [`small_cnn`] (He-normal). Biases start at 0.
    pub fn initial(&self, seed: u64) -> Result<Network, Error> {
        let layers = match self {
            Architecture::Mlp { sizes, activation } => {
                let init = if *activation == Activation::Relu {
                    Init::HeNormal
                } else {
                    Init::XavierUniform
                };
                let mut seeds = StdRng::seed_from_u64(seed);
                let mut layers = Sequential::new();
                for (l, w) in sizes.windows(2).enumerate() {
                    if let Some(layer) = activation_layer(*activation).filter(|_| l > 0) {
                        layers = layers.push(layer);
                    }
                    layers = layers.push(Linear::new(w[0], w[1], init, seeds.next_u64())?);
                }
                layers
            }
            Architecture::Cnn {
                side,
                channels,
                outputs,
            } => small_cnn(*side, *channels, *outputs, seed)?,
        };
        Ok(Network {
            architecture: self.clone(),
            layers,
        })
    }

    /// The network with these parameters, in the order of [`Architecture::shapes`]: an error
    /// naming the parameter if their number or a shape differs, or a value is not finite.
    pub fn with_params(&self, params: &[Tensor<f64>]) -> Result<Network, Error> {
        // Checked before the layers are built: nothing is allocated for a misfit.
        check_params("Network::with_params", &self.shapes(), params)?;
        self.initial(0)?.with_params(params)
    }
}

/// Checks parameters against their names and shapes: their number, each shape, finite values.
fn check_params(
    op: &'static str,
    shapes: &[(String, Vec<usize>)],
    params: &[Tensor<f64>],
) -> Result<(), Error> {
    if params.len() != shapes.len() {
        return Err(Error::LengthMismatch {
            op,
            what: "params",
            expected: shapes.len(),
            found: params.len(),
        });
    }
    for ((name, shape), p) in shapes.iter().zip(params) {
        if p.shape() != shape.as_slice() {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("{name} has shape {:?}, expected {shape:?}", p.shape()),
            });
        }
        if let Some((k, v)) = p
            .as_slice()
            .iter()
            .enumerate()
            .find(|(_, v)| !v.is_finite())
        {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "{name} holds {v} at element {k}; a model's parameters must be finite"
                ),
            });
        }
    }
    Ok(())
}

impl Network {
    /// What the network is.
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// The layers with their weights.
    pub fn layers(&self) -> &Sequential<Tensor<f64>> {
        &self.layers
    }

    /// The parameters' paths and shapes, in the order [`Network::forward`] takes them.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.architecture.shapes()
    }

    /// The parameters, in order.
    pub fn param_tensors(&self) -> Vec<Tensor<f64>> {
        self.layers.flatten()
    }

    /// The outputs for a batch of rows `x` `[n, inputs]` with the parameters `params` (on
    /// tape variables to differentiate them); an error if `params` or `x` do not fit.
    pub fn forward<A: Array<Elem = f64>>(&self, params: &[A], x: &A) -> Result<A, Error> {
        let inputs = self.architecture.inputs();
        if x.shape().len() != 2 || x.shape()[1] != inputs {
            return Err(Error::InvalidArgument {
                op: "Network::forward",
                reason: format!(
                    "the input must be rows of {inputs} features, got shape {:?}",
                    x.shape()
                ),
            });
        }
        let model: Sequential<A> = self.layers.unflatten(params.to_vec())?;
        let x = match self.architecture {
            Architecture::Cnn { side, .. } => x.try_reshape(&[x.shape()[0], 1, side, side])?,
            Architecture::Mlp { .. } => x.clone(),
        };
        // These networks have no dropout nor batch statistics: the mode changes nothing.
        model.forward(&x, &mut Context::evaluation())
    }

    /// The outputs for a batch of rows with the network's own parameters.
    pub fn predict(&self, x: &Tensor<f64>) -> Result<Tensor<f64>, Error> {
        self.forward(&self.param_tensors(), x)
    }

    /// The same network with other parameters (checked as [`Architecture::with_params`]).
    pub fn with_params(&self, params: &[Tensor<f64>]) -> Result<Network, Error> {
        check_params("Network::with_params", &self.shapes(), params)?;
        Ok(Network {
            architecture: self.architecture.clone(),
            layers: self.layers.unflatten(params.to_vec())?,
        })
    }

    /// How many inputs a row has.
    pub fn inputs(&self) -> usize {
        self.architecture.inputs()
    }

    /// How many outputs a row gets.
    pub fn outputs(&self) -> usize {
        self.architecture.outputs()
    }

    /// How many numbers one row occupies in the widest layer (to bound a batch's memory).
    pub fn widest(&self) -> usize {
        match &self.architecture {
            Architecture::Mlp { sizes, .. } => sizes.iter().copied().max().unwrap_or(1),
            Architecture::Cnn { side, channels, .. } => channels[0].max(channels[1]) * side * side,
        }
    }

    /// The architecture in a few words, for headers and titles.
    pub fn describe(&self) -> String {
        match &self.architecture {
            Architecture::Mlp { sizes, activation } => {
                format!("network {sizes:?} with {activation:?} units")
            }
            Architecture::Cnn {
                side,
                channels,
                outputs,
            } => format!(
                "cnn {side}x{side} -> conv {} -> conv {} -> {outputs}",
                channels[0], channels[1]
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perturb_nn::nn::Mlp;

    fn cnn(side: usize, channels: [usize; 2], outputs: usize) -> Architecture {
        Architecture::Cnn {
            side,
            channels,
            outputs,
        }
    }

    #[test]
    fn only_square_images_of_at_least_4x4_go_to_the_cnn() {
        assert_eq!(image_side(64), Ok(8));
        assert_eq!(image_side(16), Ok(4));
        let err = image_side(30).unwrap_err();
        assert!(err.contains("30 features, not a square number"), "{err}");
        assert!(image_side(9).unwrap_err().contains("3x3"));
    }

    #[test]
    fn the_computed_shapes_are_the_layers_paths_and_shapes() {
        for arch in [
            Architecture::Mlp {
                sizes: vec![4, 5, 6, 3],
                activation: Activation::Tanh,
            },
            cnn(8, [3, 5], 10),
            cnn(5, [2, 2], 1),
        ] {
            let net = arch.initial(1).unwrap();
            let built: Vec<(String, Vec<usize>)> = net
                .layers
                .named_leaves()
                .into_iter()
                .map(|(p, t)| (p, t.shape().to_vec()))
                .collect();
            assert_eq!(arch.shapes(), built, "{arch:?}");
        }
    }

    #[test]
    fn the_mlp_starts_and_computes_as_the_first_mlp_did() {
        // The library's first MLP (nn::Mlp) with the same seed: the same initial weights, the
        // same outputs, so that runs of earlier versions give the same numbers.
        for (activation, init) in [
            (Activation::Sigmoid, Init::XavierUniform),
            (Activation::Relu, Init::HeNormal),
        ] {
            let old = Mlp::<f64>::new(&[3, 4, 2], activation, init, 9).unwrap();
            let arch = Architecture::Mlp {
                sizes: vec![3, 4, 2],
                activation,
            };
            let net = arch.initial(9).unwrap();
            let bits = |ts: Vec<Tensor<f64>>| -> Vec<u64> {
                ts.iter()
                    .flat_map(|t| t.as_slice().iter().map(|v| v.to_bits()))
                    .collect()
            };
            assert_eq!(bits(net.param_tensors()), bits(old.param_tensors()));
            let x =
                Tensor::from_vec((0..6).map(|i| f64::from(i) - 2.5).collect(), &[2, 3]).unwrap();
            assert_eq!(
                bits(vec![net.predict(&x).unwrap()]),
                bits(vec![old.predict(&x).unwrap()])
            );
        }
    }

    #[test]
    fn the_cnn_matches_a_direct_loop_computation() {
        // A 4x4 image through one channel per layer: the convolution, relu, pooling and
        // linear layer written out as loops, independently of the tensor operations.
        let arch = cnn(4, [1, 1], 2);
        let mut p = arch.initial(3).unwrap().param_tensors();
        // Nonzero biases, so that they are checked too.
        p[1] = Tensor::vector(&[0.25]);
        p[3] = Tensor::vector(&[-0.1]);
        p[5] = Tensor::vector(&[0.5, -0.5]);
        let net = arch.with_params(&p).unwrap();
        let x: Vec<f64> = (0..16).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let conv = |img: &[f64], side: usize, w: &[f64], b: f64| -> Vec<f64> {
            let mut out = vec![0.0; side * side];
            let at = |r: isize, c: isize| {
                let inside = (0..side as isize).contains(&r) && (0..side as isize).contains(&c);
                if inside {
                    img[r as usize * side + c as usize]
                } else {
                    0.0
                }
            };
            for r in 0..side {
                for c in 0..side {
                    let mut s = b;
                    for (k, wk) in w.iter().enumerate() {
                        let (dr, dc) = ((k / 3) as isize - 1, (k % 3) as isize - 1);
                        s += wk * at(r as isize + dr, c as isize + dc);
                    }
                    out[r * side + c] = s.max(0.0);
                }
            }
            out
        };
        let pool = |img: &[f64], side: usize| -> Vec<f64> {
            let h = side / 2;
            (0..h * h)
                .map(|k| {
                    let (r, c) = (2 * (k / h), 2 * (k % h));
                    [0, 1, side, side + 1]
                        .iter()
                        .map(|o| img[r * side + c + o])
                        .fold(f64::NEG_INFINITY, f64::max)
                })
                .collect()
        };
        let h = pool(&conv(&x, 4, p[0].as_slice(), 0.25), 4);
        let h = pool(&conv(&h, 2, p[2].as_slice(), -0.1), 2);
        let expected: Vec<f64> = (0..2)
            .map(|o| h[0] * p[4].as_slice()[o] + p[5].as_slice()[o])
            .collect();
        let got = net
            .predict(&Tensor::from_vec(x, &[1, 16]).unwrap())
            .unwrap()
            .to_vec();
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g - e).abs() <= 1e-12 * (1.0 + e.abs()),
                "{got:?} vs {expected:?}"
            );
        }
        assert!(net.predict(&Tensor::zeros(&[1, 15])).is_err());
        let err = arch.with_params(&p[..5]).unwrap_err().to_string();
        assert!(err.contains("params"), "{err}");
        let mut bad = p.clone();
        bad[4] = Tensor::zeros(&[2, 2]);
        let err = arch.with_params(&bad).unwrap_err().to_string();
        assert!(
            err.contains("layers.7.weight has shape [2, 2], expected [1, 2]"),
            "{err}"
        );
    }
}
