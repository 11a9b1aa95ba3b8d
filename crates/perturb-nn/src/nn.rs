//! Layers and models: [`Linear`], [`Activation`] and the multilayer perceptron [`Mlp`].
//!
//! A model owns its parameters as plain tensors, but its forward pass takes the parameters as
//! an argument, generic over [`Array`]: the same code runs on plain tensors (inference) and on
//! tape variables (training).
//!
//! ```
//! use perturb::tensor::{Array, Tensor, TensorTape};
//! use perturb_nn::nn::{Activation, Init, Mlp};
//!
//! // The lecture's network: 2 inputs, 3 sigmoid hidden units, 1 output.
//! let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
//! let x = Tensor::from_vec(vec![0.5, -1.0], &[1, 2]).unwrap();
//! let plain = net.forward(&net.param_tensors(), &x).unwrap();
//!
//! let tape = TensorTape::new();
//! let vars: Vec<_> = net.param_tensors().into_iter().map(|p| tape.var(p)).collect();
//! let z = net.forward(&vars, &tape.constant(x)).unwrap();
//! assert_eq!(z.value().to_vec(), plain.to_vec());
//! let refs: Vec<_> = vars.iter().collect();
//! assert_eq!(tape.gradient(&z.sum_all(), &refs).unwrap().len(), 4);
//! ```

use perturb::tensor::{Array, Element, Tensor};
use perturb::Error;
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};

/// How a layer's weights are initialised (biases start at zero).
///
/// ```
/// use perturb_nn::nn::{Init, Linear};
/// let l = Linear::<f64>::new(100, 50, true, Init::XavierUniform, 1);
/// let limit = (6.0_f64 / 150.0).sqrt();
/// assert!(l.weight.to_vec().iter().all(|w| w.abs() <= limit));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Glorot/Xavier uniform: `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`.
    XavierUniform,
    /// He/Kaiming normal: `N(0, 2 / fan_in)`, suited to ReLU.
    HeNormal,
}

impl Init {
    /// A seeded `(fan_in, fan_out)` weight matrix drawn from this initialisation.
    ///
    /// ```
    /// use perturb_nn::nn::Init;
    /// let w = Init::HeNormal.weight::<f64>(2, 3, 7);
    /// assert_eq!(w.shape(), &[2, 3]);
    /// assert_eq!(w.to_vec(), Init::HeNormal.weight::<f64>(2, 3, 7).to_vec()); // same seed
    /// ```
    ///
    /// # Panics
    ///
    /// If the matrix would have more than [`MAX_PARAMETERS`] elements (before allocating; a
    /// size product that overflows made a tensor whose length disagrees with its shape, or an
    /// allocation abort). [`Linear::try_new`] and [`Mlp::new`] return this as an error.
    ///
    /// ```should_panic
    /// perturb_nn::nn::Init::HeNormal.weight::<f32>(1 << 40, 1 << 40, 0);
    /// ```
    pub fn weight<T: Element>(self, fan_in: usize, fan_out: usize, seed: u64) -> Tensor<T> {
        if !fan_in
            .checked_mul(fan_out)
            .is_some_and(|n| n <= MAX_PARAMETERS)
        {
            panic!(
                "Init::weight: a {fan_in} x {fan_out} matrix has more than {MAX_PARAMETERS} \
                 elements"
            );
        }
        let shape = [fan_in, fan_out];
        let elem = |x: f64| T::from_f64(x).unwrap_or_else(T::nan);
        match self {
            Init::XavierUniform => {
                let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
                Tensor::rand_uniform(&shape, elem(-a), elem(a), seed)
            }
            Init::HeNormal => {
                let std = (2.0 / fan_in.max(1) as f64).sqrt();
                Tensor::randn(&shape, elem(0.0), elem(std), seed)
            }
        }
    }
}

/// An element-wise activation function.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::nn::Activation;
/// let y = Activation::Relu.apply(&Tensor::vector(&[-1.0_f64, 2.0]));
/// assert_eq!(y.to_vec(), vec![0.0, 2.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// `x`.
    Identity,
}

impl Activation {
    /// Applies the activation element-wise to any [`Array`].
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::Activation;
    /// let x = Tensor::vector(&[0.0_f64]);
    /// assert_eq!(Activation::Sigmoid.apply(&x).to_vec(), vec![0.5]);
    /// assert_eq!(Activation::Identity.apply(&x).to_vec(), vec![0.0]);
    /// ```
    pub fn apply<A: Array>(self, x: &A) -> A {
        match self {
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.relu(),
            Activation::Softplus => x.softplus(),
            Activation::Identity => x.clone(),
        }
    }
}

/// A fully connected layer `y = x W + b`, with `x` of shape `(N, in)`, `W` of shape
/// `(in, out)` and `b` of shape `(out)`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::nn::{Init, Linear};
/// let mut l = Linear::<f64>::new(2, 1, true, Init::XavierUniform, 0);
/// l.weight = Tensor::from_vec(vec![1.0, 2.0], &[2, 1]).unwrap();
/// l.bias = Some(Tensor::vector(&[0.5]));
/// let x = Tensor::from_vec(vec![3.0, 4.0], &[1, 2]).unwrap();
/// // 3 * 1 + 4 * 2 + 0.5
/// assert_eq!(l.predict(&x).unwrap().to_vec(), vec![11.5]);
/// ```
#[derive(Debug, Clone)]
pub struct Linear<T: Element> {
    /// The weight matrix, shape `(in, out)`.
    pub weight: Tensor<T>,
    /// The bias, shape `(out)`, if the layer has one.
    pub bias: Option<Tensor<T>>,
}

impl<T: Element> Linear<T> {
    /// A layer with `inputs` inputs and `outputs` outputs, its weight drawn from `init` with
    /// `seed`, its bias (if `bias`) zero.
    ///
    /// # Panics
    ///
    /// If a size is 0 or the weight would have more than [`MAX_PARAMETERS`] elements;
    /// [`try_new`](Self::try_new) returns an error instead.
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// let l = Linear::<f32>::new(4, 3, false, Init::HeNormal, 5);
    /// assert_eq!(l.weight.shape(), &[4, 3]);
    /// assert!(l.bias.is_none());
    /// ```
    pub fn new(inputs: usize, outputs: usize, bias: bool, init: Init, seed: u64) -> Self {
        match Self::try_new(inputs, outputs, bias, init, seed) {
            Ok(layer) => layer,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`new`](Self::new), or an error if a size is 0 or the weight would have more than
    /// [`MAX_PARAMETERS`] elements (checked before anything is allocated).
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// assert!(Linear::<f64>::try_new(2, 3, true, Init::HeNormal, 0).is_ok());
    /// let err = Linear::<f64>::try_new(2, 0, true, Init::HeNormal, 0).unwrap_err();
    /// assert!(err.to_string().contains("Linear::new"), "{err}");
    /// assert!(Linear::<f64>::try_new(1 << 40, 1 << 40, true, Init::HeNormal, 0).is_err());
    /// ```
    pub fn try_new(
        inputs: usize,
        outputs: usize,
        bias: bool,
        init: Init,
        seed: u64,
    ) -> Result<Self, Error> {
        parameter_count("Linear::new", &[inputs, outputs])?;
        Ok(Linear {
            weight: init.weight(inputs, outputs, seed),
            bias: bias.then(|| Tensor::zeros(&[outputs])),
        })
    }

    /// The number of inputs.
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// assert_eq!(Linear::<f64>::new(4, 3, true, Init::HeNormal, 5).inputs(), 4);
    /// ```
    pub fn inputs(&self) -> usize {
        self.weight.shape().first().copied().unwrap_or(0)
    }

    /// The number of outputs.
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// assert_eq!(Linear::<f64>::new(4, 3, true, Init::HeNormal, 5).outputs(), 3);
    /// ```
    pub fn outputs(&self) -> usize {
        self.weight.shape().get(1).copied().unwrap_or(0)
    }

    /// The parameter tensors in order: the weight, then the bias if there is one.
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// let l = Linear::<f64>::new(4, 3, true, Init::HeNormal, 5);
    /// assert_eq!(l.param_tensors().len(), 2);
    /// ```
    pub fn param_tensors(&self) -> Vec<Tensor<T>> {
        let mut out = vec![self.weight.clone()];
        out.extend(self.bias.clone());
        out
    }

    /// How many parameter tensors the layer has (1 or 2).
    ///
    /// ```
    /// use perturb_nn::nn::{Init, Linear};
    /// assert_eq!(Linear::<f64>::new(4, 3, false, Init::HeNormal, 5).num_param_tensors(), 1);
    /// ```
    pub fn num_param_tensors(&self) -> usize {
        1 + usize::from(self.bias.is_some())
    }

    /// `x W + b` with the parameters given as `params` (`[W]` or `[W, b]`, the shapes of this
    /// layer's). An error if `params` has the wrong count or shapes, or `x` is not `(N, in)`.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Init, Linear};
    /// let l = Linear::<f64>::new(2, 1, false, Init::HeNormal, 0);
    /// let w = Tensor::from_vec(vec![1.0, -1.0], &[2, 1]).unwrap();
    /// let x = Tensor::from_vec(vec![3.0, 4.0], &[1, 2]).unwrap();
    /// assert_eq!(l.forward(&[w.clone()], &x).unwrap().to_vec(), vec![-1.0]);
    /// assert!(l.forward(&[w.clone(), w], &x).is_err()); // this layer has no bias
    /// ```
    pub fn forward<A: Array<Elem = T>>(&self, params: &[A], x: &A) -> Result<A, Error> {
        let op = "Linear::forward";
        let expected = self.num_param_tensors();
        if params.len() != expected {
            return Err(Error::LengthMismatch {
                op,
                what: "params",
                expected,
                found: params.len(),
            });
        }
        check_shape(op, "the weight", self.weight.shape(), params[0].shape())?;
        if let Some(b) = &self.bias {
            check_shape(op, "the bias", b.shape(), params[1].shape())?;
        }
        let inputs = self.inputs();
        match x.shape() {
            [_, features] if *features == inputs => {}
            [_, features] => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the input has {features} features (shape {:?}), the layer expects \
                         {inputs}",
                        x.shape()
                    ),
                })
            }
            shape => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the input must be a batch of rows, (N, {inputs}), got shape {shape:?}"
                    ),
                })
            }
        }
        let y = x.try_matmul(&params[0])?;
        match &self.bias {
            Some(_) => y.try_add(&params[1]),
            None => Ok(y),
        }
    }

    /// The layer on plain tensors with its own parameters.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Init, Linear};
    /// let l = Linear::<f64>::new(2, 3, true, Init::HeNormal, 0);
    /// assert_eq!(l.predict(&Tensor::zeros(&[5, 2])).unwrap().shape(), &[5, 3]);
    /// assert!(l.predict(&Tensor::zeros(&[5, 4])).is_err());
    /// ```
    pub fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>, Error> {
        self.forward(&self.param_tensors(), x)
    }
}

/// An error naming `what` (a parameter) unless its shape is the expected one.
fn check_shape(
    op: &'static str,
    what: &str,
    expected: &[usize],
    found: &[usize],
) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            reason: format!("{what} has shape {found:?}, expected {expected:?}"),
        })
    }
}

/// The most parameters (scalars) a [`Linear`] layer or an [`Mlp`] may have: 2^30, 8 GiB of
/// `f64`. Sizes read from a file that ask for more are an error, not an allocation failure.
///
/// ```
/// assert_eq!(perturb_nn::nn::MAX_PARAMETERS, 1 << 30);
/// ```
pub const MAX_PARAMETERS: usize = 1 << 30;

/// The number of parameters (weights and biases) of the layers between consecutive `sizes`,
/// after checking that no size is 0 and that the count, formed with checked arithmetic, is at
/// most [`MAX_PARAMETERS`].
fn parameter_count(op: &'static str, sizes: &[usize]) -> Result<usize, Error> {
    let invalid = |reason: String| Error::InvalidArgument { op, reason };
    if let Some(k) = sizes.iter().position(|&n| n == 0) {
        return Err(invalid(format!(
            "layer size {k} of {sizes:?} is 0; every layer needs at least one unit"
        )));
    }
    let total = sizes.windows(2).try_fold(0usize, |total, w| {
        w[0].checked_mul(w[1])
            .and_then(|weights| weights.checked_add(w[1]))
            .and_then(|layer| layer.checked_add(total))
    });
    match total {
        Some(total) if total <= MAX_PARAMETERS => Ok(total),
        _ => Err(invalid(format!(
            "the sizes {sizes:?} need more than {MAX_PARAMETERS} parameters"
        ))),
    }
}

/// The number of parameters of an [`Mlp`] with these layer sizes, after the checks
/// [`Mlp::new`] makes before allocating: at least two sizes, none 0, and at most
/// [`MAX_PARAMETERS`] parameters (with checked arithmetic). Use it to refuse sizes read from a
/// file or a command line before building anything.
///
/// ```
/// use perturb_nn::nn::mlp_parameters;
/// assert_eq!(mlp_parameters(&[2, 3, 1]).unwrap(), 13);
/// assert!(mlp_parameters(&[2]).is_err());
/// assert!(mlp_parameters(&[2, 0, 1]).is_err());
/// let err = mlp_parameters(&[2, 100_000, 100_000, 1]).unwrap_err().to_string();
/// assert!(err.contains("more than 1073741824 parameters"), "{err}");
/// ```
pub fn mlp_parameters(sizes: &[usize]) -> Result<usize, Error> {
    if sizes.len() < 2 {
        return Err(Error::InvalidArgument {
            op: "Mlp::new",
            reason: format!("needs at least two layer sizes (inputs and outputs), got {sizes:?}"),
        });
    }
    parameter_count("Mlp::new", sizes)
}

/// A multilayer perceptron: [`Linear`] layers with an activation after each but the last (the
/// output layer gives raw values, e.g. logits).
///
/// ```
/// use perturb_nn::nn::{Activation, Init, Mlp};
/// // The lecture's network in one line: 2 inputs, 3 sigmoid hidden units, 1 output.
/// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
/// assert_eq!(net.num_parameters(), 13); // 6 + 3 weights, 3 + 1 biases
/// ```
#[derive(Debug, Clone)]
pub struct Mlp<T: Element> {
    /// The layers, input first.
    pub layers: Vec<Linear<T>>,
    /// The activation after every hidden layer.
    pub activation: Activation,
}

impl<T: Element> Mlp<T> {
    /// Builds a network with the given layer sizes (inputs first, outputs last; at least two),
    /// every layer with a bias, each layer initialised from its own seed drawn from a generator
    /// seeded with `seed` (so networks of different seeds share no layer). An error, before anything
    /// is allocated, if there are fewer than two sizes, a size is 0, or the network would have
    /// more than [`MAX_PARAMETERS`] parameters.
    ///
    /// ```
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f32>::new(&[784, 128, 10], Activation::Relu, Init::HeNormal, 3).unwrap();
    /// assert_eq!(net.layers.len(), 2);
    /// assert!(Mlp::<f32>::new(&[784], Activation::Relu, Init::HeNormal, 3).is_err());
    /// assert!(Mlp::<f32>::new(&[2, 0, 1], Activation::Relu, Init::HeNormal, 3).is_err());
    /// assert!(Mlp::<f32>::new(&[2, 3, 1 << 62], Activation::Relu, Init::HeNormal, 3).is_err());
    /// let (a, b) = (
    ///     Mlp::<f64>::new(&[4, 4, 4], Activation::Tanh, Init::HeNormal, 0).unwrap(),
    ///     Mlp::<f64>::new(&[4, 4, 4], Activation::Tanh, Init::HeNormal, 1).unwrap(),
    /// );
    /// assert_ne!(a.layers[1].weight.to_vec(), b.layers[0].weight.to_vec());
    /// ```
    pub fn new(
        sizes: &[usize],
        activation: Activation,
        init: Init,
        seed: u64,
    ) -> Result<Self, Error> {
        mlp_parameters(sizes)?;
        // One seed per layer drawn from a generator seeded with `seed`: with `seed + l`, the
        // networks of consecutive seeds shared layers (layer 1 of seed 0 was layer 0 of seed 1).
        let mut seeds = StdRng::seed_from_u64(seed);
        let layers = sizes
            .windows(2)
            .map(|w| Linear::try_new(w[0], w[1], true, init, seeds.next_u64()))
            .collect::<Result<_, _>>()?;
        Ok(Mlp { layers, activation })
    }

    /// The parameters with their names (`layer0.weight`, `layer0.bias`, ...), in the order
    /// [`forward`](Mlp::forward) takes them.
    ///
    /// ```
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    /// let names: Vec<_> = net.parameters().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["layer0.weight", "layer0.bias", "layer1.weight", "layer1.bias"]);
    /// ```
    pub fn parameters(&self) -> Vec<(String, &Tensor<T>)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            out.push((format!("layer{l}.weight"), &layer.weight));
            if let Some(b) = &layer.bias {
                out.push((format!("layer{l}.bias"), b));
            }
        }
        out
    }

    /// The parameters with their names, mutable.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let mut net = Mlp::<f64>::new(&[2, 1], Activation::Tanh, Init::XavierUniform, 0).unwrap();
    /// for (_, p) in net.parameters_mut() {
    ///     *p = Tensor::zeros(p.shape());
    /// }
    /// assert_eq!(net.layers[0].weight.to_vec(), vec![0.0, 0.0]);
    /// ```
    pub fn parameters_mut(&mut self) -> Vec<(String, &mut Tensor<T>)> {
        let mut out = Vec::new();
        for (l, layer) in self.layers.iter_mut().enumerate() {
            out.push((format!("layer{l}.weight"), &mut layer.weight));
            if let Some(b) = &mut layer.bias {
                out.push((format!("layer{l}.bias"), b));
            }
        }
        out
    }

    /// The parameter tensors (cheap clones sharing storage), in [`parameters`](Mlp::parameters)
    /// order: what [`forward`](Mlp::forward) and the optimisers take.
    ///
    /// ```
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    /// assert_eq!(net.param_tensors()[2].shape(), &[3, 1]);
    /// ```
    pub fn param_tensors(&self) -> Vec<Tensor<T>> {
        self.layers.iter().flat_map(Linear::param_tensors).collect()
    }

    /// Replaces the parameters by `params` (in [`parameters`](Mlp::parameters) order, with the
    /// same shapes); an error, leaving the model unchanged, if the count or a shape differs or
    /// a value is not finite (a damaged or diverged model, whose every output would be NaN or
    /// infinite), naming the parameter and the element.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let mut net = Mlp::<f64>::new(&[2, 1], Activation::Tanh, Init::XavierUniform, 0).unwrap();
    /// let p = vec![Tensor::ones(&[2, 1]), Tensor::vector(&[3.0])];
    /// net.load_params(&p).unwrap();
    /// assert_eq!(net.layers[0].bias.as_ref().unwrap().to_vec(), vec![3.0]);
    /// assert!(net.load_params(&p[..1]).is_err());
    /// let nan = vec![Tensor::vector(&[1.0, f64::NAN]).reshape(&[2, 1]).unwrap(), Tensor::vector(&[3.0])];
    /// let err = net.load_params(&nan).unwrap_err().to_string();
    /// assert!(err.contains("layer0.weight") && err.contains("NaN"), "{err}");
    /// ```
    pub fn load_params(&mut self, params: &[Tensor<T>]) -> Result<(), Error> {
        let op = "Mlp::load_params";
        let expected = self.num_param_tensors();
        if params.len() != expected {
            return Err(Error::LengthMismatch {
                op,
                what: "params",
                expected,
                found: params.len(),
            });
        }
        for ((name, current), new) in self.parameters().into_iter().zip(params) {
            check_shape(op, &name, current.shape(), new.shape())?;
            if let Some((k, v)) = new
                .as_slice()
                .iter()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "{name} holds {v} at element {k} (of shape {:?}); a model's \
                         parameters must be finite",
                        new.shape()
                    ),
                });
            }
        }
        for ((_, current), new) in self.parameters_mut().into_iter().zip(params) {
            *current = new.clone();
        }
        Ok(())
    }

    /// How many parameter tensors the network has.
    ///
    /// ```
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    /// assert_eq!(net.num_param_tensors(), 4);
    /// ```
    pub fn num_param_tensors(&self) -> usize {
        self.layers.iter().map(Linear::num_param_tensors).sum()
    }

    /// How many scalar parameters the network has.
    ///
    /// ```
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 16, 16, 1], Activation::Tanh, Init::XavierUniform, 0).unwrap();
    /// assert_eq!(net.num_parameters(), 2 * 16 + 16 + 16 * 16 + 16 + 16 + 1);
    /// ```
    pub fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|(_, p)| p.len()).sum()
    }

    /// The network's output for the batch `x` (shape `(N, inputs)`), with the parameters given
    /// as `params` (in [`parameters`](Mlp::parameters) order). Works on any [`Array`]: plain
    /// tensors for inference, tape variables for training. An error if the count or a shape of
    /// `params`, or the shape of `x`, does not fit the network.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    /// let y = net.forward(&net.param_tensors(), &Tensor::zeros(&[4, 2])).unwrap();
    /// assert_eq!(y.shape(), &[4, 1]);
    /// assert!(net.forward(&net.param_tensors()[..3], &Tensor::zeros(&[4, 2])).is_err());
    /// ```
    pub fn forward<A: Array<Elem = T>>(&self, params: &[A], x: &A) -> Result<A, Error> {
        let expected = self.num_param_tensors();
        if params.len() != expected {
            return Err(Error::LengthMismatch {
                op: "Mlp::forward",
                what: "params",
                expected,
                found: params.len(),
            });
        }
        let mut h = x.clone();
        let mut offset = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let n = layer.num_param_tensors();
            h = layer.forward(&params[offset..offset + n], &h)?;
            offset += n;
            if l + 1 < self.layers.len() {
                h = self.activation.apply(&h);
            }
        }
        Ok(h)
    }

    /// The network on plain tensors with its own parameters.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::nn::{Activation, Init, Mlp};
    /// let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    /// assert_eq!(net.predict(&Tensor::zeros(&[4, 2])).unwrap().shape(), &[4, 1]);
    /// ```
    pub fn predict(&self, x: &Tensor<T>) -> Result<Tensor<T>, Error> {
        self.forward(&self.param_tensors(), x)
    }
}
