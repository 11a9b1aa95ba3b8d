//! The networks `perturb train` fits and `perturb predict`/`eval` apply: the MLP, and a small
//! convolutional network for square images. Each is its architecture plus a list of named
//! parameter tensors, in the order `forward` takes them.

use perturb::tensor::conv::{try_conv2d, try_max_pool2d, Conv2dOptions, Pool2d};
use perturb::tensor::{Array, Tensor};
use perturb::Error;
use perturb_nn::nn::Mlp;

/// A network: its architecture and its parameters.
#[derive(Debug, Clone)]
pub enum Network {
    /// A multilayer perceptron.
    Mlp(Mlp<f64>),
    /// A convolutional network for square images.
    Cnn(Cnn),
}

/// conv(1 -> C1, 3x3, padding 1) - relu - max pool 2x2, conv(C1 -> C2, 3x3, padding 1) - relu -
/// max pool 2x2, flatten, linear: for images of `side x side` pixels given as rows of
/// `side * side` features (row-major, as the digits data hold them).
#[derive(Debug, Clone)]
pub struct Cnn {
    side: usize,
    channels: [usize; 2],
    outputs: usize,
    /// In the order of [`cnn_shapes`].
    params: Vec<Tensor<f64>>,
}

/// The CNN's channels when nothing else is asked for.
pub const CNN_CHANNELS: [usize; 2] = [16, 32];

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

/// The names and shapes of the parameters of a [`Cnn`] for `side x side` images, without
/// building it: `conv0.weight` `[C1, 1, 3, 3]`, `conv0.bias` `[C1]`, `conv1.weight`
/// `[C2, C1, 3, 3]`, `conv1.bias` `[C2]`, `linear.weight` `[C2 * s * s, outputs]` (`s` the side
/// after two poolings), `linear.bias` `[outputs]`.
pub fn cnn_shapes(side: usize, channels: [usize; 2], outputs: usize) -> Vec<(String, Vec<usize>)> {
    let [c1, c2] = channels;
    let s = side / 2 / 2;
    [
        ("conv0.weight", vec![c1, 1, 3, 3]),
        ("conv0.bias", vec![c1]),
        ("conv1.weight", vec![c2, c1, 3, 3]),
        ("conv1.bias", vec![c2]),
        ("linear.weight", vec![c2 * s * s, outputs]),
        ("linear.bias", vec![outputs]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

impl Cnn {
    /// A network for `side x side` images with `outputs` outputs, initialised from `seed`:
    /// He-normal weights (std `sqrt(2 / fan_in)`), zero biases.
    pub fn new(side: usize, channels: [usize; 2], outputs: usize, seed: u64) -> Cnn {
        let mut cnn = Cnn {
            side,
            channels,
            outputs,
            params: Vec::new(),
        };
        cnn.params = cnn
            .shapes()
            .into_iter()
            .enumerate()
            .map(|(i, (name, shape))| {
                if name.ends_with("bias") {
                    Tensor::zeros(&shape)
                } else {
                    let fan_in = if shape.len() == 4 {
                        shape[1] * shape[2] * shape[3]
                    } else {
                        shape[0]
                    };
                    let std = (2.0 / fan_in as f64).sqrt();
                    Tensor::randn(&shape, 0.0, std, seed.wrapping_add(i as u64))
                }
            })
            .collect();
        cnn
    }

    /// The side of the images it takes, its channels and its outputs.
    pub fn geometry(&self) -> (usize, [usize; 2], usize) {
        (self.side, self.channels, self.outputs)
    }

    /// The features the linear layer sees: C2 channels of the side after two poolings.
    fn flat(&self) -> usize {
        let s = self.side / 2 / 2;
        self.channels[1] * s * s
    }

    /// The parameters' names and shapes, in order.
    fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        cnn_shapes(self.side, self.channels, self.outputs)
    }

    /// The network with these parameters (in the order of its names and shapes); an error if
    /// their number or a shape differs, or a value is not finite.
    pub fn with_params(
        side: usize,
        channels: [usize; 2],
        outputs: usize,
        params: &[Tensor<f64>],
    ) -> Result<Cnn, Error> {
        check_params(
            "Cnn::with_params",
            &cnn_shapes(side, channels, outputs),
            params,
        )?;
        Ok(Cnn {
            side,
            channels,
            outputs,
            params: params.to_vec(),
        })
    }

    fn forward<A: Array<Elem = f64>>(&self, p: &[A], x: &A) -> Result<A, Error> {
        let n = x.shape().first().copied().unwrap_or(0);
        let conv = Conv2dOptions::default().padding(1);
        let pool = Pool2d::new([2, 2]);
        let block = |h: &A, w: &A, b: &A| -> Result<A, Error> {
            let c = b.shape()[0];
            let y = try_conv2d(h, w, conv)?.try_add(&b.try_reshape(&[1, c, 1, 1])?)?;
            try_max_pool2d(&y.relu(), pool)
        };
        let h = x.try_reshape(&[n, 1, self.side, self.side])?;
        let h = block(&h, &p[0], &p[1])?;
        let h = block(&h, &p[2], &p[3])?;
        h.try_reshape(&[n, self.flat()])?
            .try_matmul(&p[4])?
            .try_add(&p[5])
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
        if let Some(v) = p.as_slice().iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("{name} holds {v}; the parameters must be finite"),
            });
        }
    }
    Ok(())
}

impl Network {
    /// The parameters' names and shapes, in the order [`Network::forward`] takes them.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        match self {
            Network::Mlp(mlp) => mlp
                .parameters()
                .into_iter()
                .map(|(n, t)| (n, t.shape().to_vec()))
                .collect(),
            Network::Cnn(cnn) => cnn.shapes(),
        }
    }

    /// The parameters, in order.
    pub fn param_tensors(&self) -> Vec<Tensor<f64>> {
        match self {
            Network::Mlp(mlp) => mlp.param_tensors(),
            Network::Cnn(cnn) => cnn.params.clone(),
        }
    }

    /// Replaces the parameters: an error if their number or shapes differ from the network's,
    /// or a value is not finite.
    pub fn load_params(&mut self, params: &[Tensor<f64>]) -> Result<(), Error> {
        match self {
            Network::Mlp(mlp) => mlp.load_params(params),
            Network::Cnn(cnn) => {
                check_params("Cnn::load_params", &cnn.shapes(), params)?;
                cnn.params = params.to_vec();
                Ok(())
            }
        }
    }

    /// The outputs for a batch of rows `x` `[n, inputs]` with the parameters `params`.
    pub fn forward<A: Array<Elem = f64>>(&self, params: &[A], x: &A) -> Result<A, Error> {
        match self {
            Network::Mlp(mlp) => mlp.forward(params, x),
            Network::Cnn(cnn) => {
                if params.len() != cnn.params.len() {
                    return Err(Error::LengthMismatch {
                        op: "Cnn::forward",
                        what: "params",
                        expected: cnn.params.len(),
                        found: params.len(),
                    });
                }
                if x.shape().len() != 2 || x.shape()[1] != cnn.side * cnn.side {
                    return Err(Error::InvalidArgument {
                        op: "Cnn::forward",
                        reason: format!(
                            "the input must be rows of {} pixels, got shape {:?}",
                            cnn.side * cnn.side,
                            x.shape()
                        ),
                    });
                }
                cnn.forward(params, x)
            }
        }
    }

    /// The outputs for a batch of rows with the network's own parameters.
    pub fn predict(&self, x: &Tensor<f64>) -> Result<Tensor<f64>, Error> {
        self.forward(&self.param_tensors(), x)
    }

    /// How many numbers one row occupies in the widest layer (to bound a batch's memory).
    pub fn widest(&self) -> usize {
        match self {
            Network::Mlp(mlp) => mlp
                .layers
                .iter()
                .map(|l| l.inputs().max(l.outputs()))
                .max()
                .unwrap_or(1),
            // The first convolution's output, C1 channels of the whole image.
            Network::Cnn(cnn) => cnn.channels[0].max(cnn.channels[1]) * cnn.side * cnn.side,
        }
    }

    /// How many features a row of the input has.
    pub fn inputs(&self) -> usize {
        match self {
            Network::Mlp(mlp) => mlp.layers.first().map_or(0, |l| l.inputs()),
            Network::Cnn(cnn) => cnn.side * cnn.side,
        }
    }

    /// How many outputs a row gets.
    pub fn outputs(&self) -> usize {
        match self {
            Network::Mlp(mlp) => mlp.layers.last().map_or(0, |l| l.outputs()),
            Network::Cnn(cnn) => cnn.outputs,
        }
    }

    /// The architecture in a few words, for headers and titles.
    pub fn describe(&self) -> String {
        match self {
            Network::Mlp(mlp) => {
                let mut sizes: Vec<usize> = mlp.layers.iter().map(|l| l.inputs()).collect();
                sizes.extend(mlp.layers.last().map(|l| l.outputs()));
                format!("network {sizes:?} with {:?} units", mlp.activation)
            }
            Network::Cnn(cnn) => format!(
                "cnn {s}x{s} -> conv {} -> conv {} -> {}",
                cnn.channels[0],
                cnn.channels[1],
                cnn.outputs,
                s = cnn.side
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_square_images_of_at_least_4x4_go_to_the_cnn() {
        assert_eq!(image_side(64), Ok(8));
        assert_eq!(image_side(16), Ok(4));
        let err = image_side(30).unwrap_err();
        assert!(err.contains("30 features, not a square number"), "{err}");
        assert!(image_side(9).unwrap_err().contains("3x3"));
    }

    #[test]
    fn the_cnn_matches_a_direct_loop_computation() {
        // A 4x4 image through one channel per layer: the convolution, relu, pooling and
        // linear layer written out as loops, independently of the tensor operations.
        let mut cnn = Cnn::new(4, [1, 1], 2, 3);
        let x: Vec<f64> = (0..16).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        let conv = |img: &[f64], side: usize, w: &[f64], b: f64| -> Vec<f64> {
            let mut out = vec![0.0; side * side];
            for r in 0..side {
                for c in 0..side {
                    let mut s = b;
                    for dr in 0..3 {
                        for dc in 0..3 {
                            let (rr, cc) =
                                (r as isize + dr as isize - 1, c as isize + dc as isize - 1);
                            if rr >= 0 && cc >= 0 && (rr as usize) < side && (cc as usize) < side {
                                s += w[dr * 3 + dc] * img[rr as usize * side + cc as usize];
                            }
                        }
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
        // Nonzero biases, so that they are checked too.
        let mut p = cnn.params.clone();
        p[1] = Tensor::vector(&[0.25]);
        p[3] = Tensor::vector(&[-0.1]);
        p[5] = Tensor::vector(&[0.5, -0.5]);
        cnn.params = p.clone();
        let h = pool(&conv(&x, 4, p[0].as_slice(), 0.25), 4);
        let h = pool(&conv(&h, 2, p[2].as_slice(), -0.1), 2);
        let expected: Vec<f64> = (0..2)
            .map(|o| h[0] * p[4].as_slice()[o] + p[5].as_slice()[o])
            .collect();
        let net = Network::Cnn(cnn);
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
        let mut net = net;
        assert!(net.load_params(&net.param_tensors()[..5]).is_err());
    }
}
