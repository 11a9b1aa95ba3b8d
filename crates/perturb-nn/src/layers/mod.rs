//! The layers a network is built from, each a [`Module`] whose parameters are the leaves of
//! its [`Tree`] (generic over the leaf type, so a model of tensors maps onto a tape):
//!
//! - [`Linear`], [`Conv2d`], [`Embedding`]: the layers with weights;
//! - [`MaxPool2d`], [`AvgPool2d`], [`Flatten`]: reshaping and pooling;
//! - [`Dropout`] (seeded from the [`Context`](crate::module::Context), off in evaluation);
//! - [`LayerNorm`], [`BatchNorm`] (running statistics in shared [`Buffer`](crate::module::Buffer)s);
//! - the activations [`Relu`], [`Tanh`], [`Sigmoid`], [`Gelu`], [`Silu`], [`Softplus`];
//! - [`Sequential`], a list of [`Layer`]s (any of the above) applied in order, whose
//!   parameters are named `layers.0.weight`, `layers.0.bias`, ...
//!
//! Weights are drawn by [`init_weight`] from a seeded [`Init`](crate::nn::Init).
//!
//! ```
//! use perturb::tensor::conv::Conv2dOptions;
//! use perturb::tensor::Tensor;
//! use perturb::tree::Tree;
//! use perturb_nn::layers::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
//! use perturb_nn::module::Module;
//! use perturb_nn::nn::Init;
//!
//! let cnn = Sequential::<Tensor<f32>>::new()
//!     .push(Conv2d::new(1, 8, [3, 3], Conv2dOptions::default().padding(1), Init::HeNormal, 0).unwrap())
//!     .push(Relu)
//!     .push(MaxPool2d::new(2))
//!     .push(Flatten)
//!     .push(Linear::new(8 * 4 * 4, 10, Init::XavierUniform, 1).unwrap());
//! assert_eq!(cnn.architecture(), "Sequential[Conv2d(1,8,3x3,pad=1),ReLU,MaxPool2d(2),Flatten,Linear(128,10)]");
//! assert_eq!(cnn.paths(), ["layers.0.weight", "layers.0.bias", "layers.4.weight", "layers.4.bias"]);
//! let logits = cnn.forward_eval(&Tensor::zeros(&[5, 1, 8, 8])).unwrap();
//! assert_eq!(logits.shape(), &[5, 10]);
//! ```

mod activation;
mod conv;
mod dropout;
mod embedding;
mod init;
mod linear;
mod norm;
mod pool;
mod sequential;
mod shape;

pub use activation::{Gelu, Relu, Sigmoid, Silu, Softplus, Tanh};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use init::init_weight;
pub use linear::Linear;
pub use norm::{BatchNorm, LayerNorm};
pub use pool::{AvgPool2d, MaxPool2d};
pub use sequential::{Layer, Sequential};
pub use shape::Flatten;

use perturb::tensor::Array;
use perturb::Error;

#[cfg(doc)]
use crate::module::Module;
#[cfg(doc)]
use perturb::tree::Tree;

/// An error from an operation inside layer `op`'s forward pass, restated as `op`'s (the
/// inner operation's message kept as the reason), so that the error names the layer.
fn in_layer(op: &'static str, e: Error) -> Error {
    Error::InvalidArgument {
        op,
        reason: e.to_string(),
    }
}

/// An error naming `op` and the parameter `what` unless `param` has shape `expected` (a
/// parameter replaced by hand with one of another shape).
fn check_param<A: Array>(
    op: &'static str,
    what: &str,
    param: &A,
    expected: &[usize],
) -> Result<(), Error> {
    if param.shape() == expected {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            reason: format!(
                "the {what} has shape {:?}, expected {expected:?}",
                param.shape()
            ),
        })
    }
}
