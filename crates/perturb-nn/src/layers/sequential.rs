//! [`Sequential`]: layers applied in order; [`Layer`]: any built-in layer.

use perturb::tensor::Array;
use perturb::tree::Path;
use perturb::Error;
use perturb::Tree;

use super::{
    AvgPool2d, BatchNorm, Conv2d, Dropout, Embedding, Flatten, Gelu, LayerNorm, Linear, MaxPool2d,
    Relu, Sigmoid, Silu, Softplus, Tanh,
};
use crate::module::{Buffer, Context, Module};

/// One place lists the built-in layers: the enum (its [`Tree`] derived: a variant adds no
/// path segment), its `From` conversions and its [`Module`] are generated from it.
macro_rules! layers {
    ($( $(#[$doc:meta])* $variant:ident($layer:ty) ),* $(,)?) => {
        /// Any built-in layer, for [`Sequential`]. Each layer converts into it with `into()`
        /// (as [`Sequential::push`] does). A variant adds no segment to its parameters' paths:
        /// the weight of a [`Linear`] at index 0 of a `Sequential` is `layers.0.weight`.
        ///
        /// ```
        /// use perturb::tensor::Tensor;
        /// use perturb_nn::layers::{Layer, Relu};
        /// use perturb_nn::module::Module;
        /// let layer: Layer<Tensor<f64>> = Relu.into();
        /// assert_eq!(layer.architecture(), "ReLU");
        /// ```
        #[derive(Tree, Clone, Debug)]
        pub enum Layer<A> {
            $( $(#[$doc])* $variant($layer), )*
        }

        $(
            impl<A> From<$layer> for Layer<A> {
                fn from(layer: $layer) -> Self {
                    Layer::$variant(layer)
                }
            }
        )*

        impl<A: Array> Module<A> for Layer<A> {
            fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, Error> {
                match self {
                    $( Layer::$variant(l) => l.forward(x, ctx), )*
                }
            }

            fn architecture(&self) -> String {
                match self {
                    $( Layer::$variant(l) => Module::<A>::architecture(l), )*
                }
            }

            fn visit_buffers(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Buffer)) {
                match self {
                    $( Layer::$variant(l) => Module::<A>::visit_buffers(l, path, f), )*
                }
            }

            fn visit_buffers_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut Buffer)) {
                match self {
                    $( Layer::$variant(l) => Module::<A>::visit_buffers_mut(l, path, f), )*
                }
            }
        }
    };
}

layers! {
    /// A [`Linear`] layer.
    Linear(Linear<A>),
    /// A [`Conv2d`] layer.
    Conv2d(Conv2d<A>),
    /// A [`MaxPool2d`] layer.
    MaxPool2d(MaxPool2d),
    /// An [`AvgPool2d`] layer.
    AvgPool2d(AvgPool2d),
    /// A [`Flatten`] layer.
    Flatten(Flatten),
    /// A [`Dropout`] layer.
    Dropout(Dropout),
    /// A [`LayerNorm`] layer.
    LayerNorm(LayerNorm<A>),
    /// A [`BatchNorm`] layer.
    BatchNorm(BatchNorm<A>),
    /// An [`Embedding`] layer.
    Embedding(Embedding<A>),
    /// A [`Relu`] activation.
    Relu(Relu),
    /// A [`Tanh`] activation.
    Tanh(Tanh),
    /// A [`Sigmoid`] activation.
    Sigmoid(Sigmoid),
    /// A [`Gelu`] activation.
    Gelu(Gelu),
    /// A [`Silu`] activation.
    Silu(Silu),
    /// A [`Softplus`] activation.
    Softplus(Softplus),
}

/// Layers applied in order, each to the previous one's output. Its parameters are its layers'
/// at `layers.<index>.<name>` (`layers.0.weight`), its buffers likewise.
///
/// An error in a layer names the `Sequential`, the layer's index and architecture, and the
/// layer's own message.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb::tree::Tree;
/// use perturb_nn::layers::{Linear, Sequential, Tanh};
/// use perturb_nn::module::Module;
/// use perturb_nn::nn::Init;
/// let mlp = Sequential::new()
///     .push(Linear::new(2, 3, Init::XavierUniform, 0).unwrap())
///     .push(Tanh)
///     .push(Linear::new(3, 1, Init::XavierUniform, 1).unwrap());
/// assert_eq!(mlp.paths(), ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"]);
/// assert_eq!(mlp.architecture(), "Sequential[Linear(2,3),Tanh,Linear(3,1)]");
/// let y = mlp.forward_eval(&Tensor::<f64>::zeros(&[4, 2])).unwrap();
/// assert_eq!(y.shape(), &[4, 1]);
/// let err = mlp.forward_eval(&Tensor::<f64>::zeros(&[4, 3])).unwrap_err().to_string();
/// assert!(err.contains("layer 0 (Linear(2,3))") && err.contains("Linear::forward"), "{err}");
/// ```
#[derive(Tree, Clone, Debug)]
pub struct Sequential<A> {
    /// The layers, applied first to last.
    pub layers: Vec<Layer<A>>,
}

impl<A> Default for Sequential<A> {
    fn default() -> Self {
        Sequential { layers: Vec::new() }
    }
}

impl<A> Sequential<A> {
    /// No layers (the identity).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Sequential;
    /// assert!(Sequential::<Tensor<f64>>::new().layers.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same layers with `layer` appended.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::{Flatten, Relu, Sequential};
    /// let s = Sequential::<Tensor<f64>>::new().push(Flatten).push(Relu);
    /// assert_eq!(s.layers.len(), 2);
    /// ```
    #[must_use]
    pub fn push(mut self, layer: impl Into<Layer<A>>) -> Self {
        self.layers.push(layer.into());
        self
    }
}

impl<A: Array> Module<A> for Sequential<A> {
    fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, Error> {
        let run = |i: usize, layer: &Layer<A>, x: &A, ctx: &mut Context| {
            layer.forward(x, ctx).map_err(|e| Error::InvalidArgument {
                op: "Sequential::forward",
                reason: format!("layer {i} ({}): {e}", layer.architecture()),
            })
        };
        let Some((first, rest)) = self.layers.split_first() else {
            return Ok(x.clone());
        };
        let mut y = run(0, first, x, ctx)?;
        for (i, layer) in rest.iter().enumerate() {
            y = run(i + 1, layer, &y, ctx)?;
        }
        Ok(y)
    }

    fn architecture(&self) -> String {
        let layers: Vec<String> = self.layers.iter().map(|l| l.architecture()).collect();
        format!("Sequential[{}]", layers.join(","))
    }

    fn visit_buffers(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Buffer)) {
        path.with("layers", |p| {
            for (i, layer) in self.layers.iter().enumerate() {
                p.with(i, |p| layer.visit_buffers(p, f));
            }
        });
    }

    fn visit_buffers_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut Buffer)) {
        path.with("layers", |p| {
            for (i, layer) in self.layers.iter_mut().enumerate() {
                p.with(i, |p| layer.visit_buffers_mut(p, f));
            }
        });
    }
}
