//! Differentiable convolutions and pooling (NCW/NCHW inputs, OIW/OIHW weights): `conv1d`,
//! `conv2d`, and the transposed convolutions `conv_transpose1d`, `conv_transpose2d` (the
//! convolution's gradient with respect to its input), on the GEMM, each with its options
//! ([`ConvOptions`]: stride, padding per side or "same", dilation, groups, output padding);
//! a convolution's bias (`bias_add`); `max_pool2d` and `avg_pool2d` ([`Pool2d`]: kernel,
//! stride, padding).
//! The operations live in [`ops`](super::ops) ([`Conv`](super::ops::Conv),
//! [`ConvTranspose`](super::ops::ConvTranspose), [`ConvWeightGrad`](super::ops::ConvWeightGrad));
//! this module gathers the functions users call.
//!
//! ```
//! use perturb::tensor::conv::{conv2d, Conv2dOptions};
//! use perturb::tensor::{Array, Tensor, TensorTape};
//! let tape = TensorTape::new();
//! let x = tape.var(Tensor::<f32>::ones(&[4, 1, 28, 28]));
//! let w = tape.var(Tensor::<f32>::ones(&[8, 1, 3, 3]));
//! let y = conv2d(&x, &w, Conv2dOptions::default().padding(1)).relu().sum_all();
//! let g = tape.gradient(&y, &[&x, &w]).unwrap();
//! assert_eq!((g[0].shape(), g[1].shape()), (&[4, 1, 28, 28][..], &[8, 1, 3, 3][..]));
//! ```

pub use super::ops::conv::{
    bias_add, conv1d, conv2d, conv_transpose1d, conv_transpose2d, try_bias_add, try_conv1d,
    try_conv2d, try_conv_transpose1d, try_conv_transpose2d, Conv1dOptions, Conv2dOptions,
    ConvOptions, Padding,
};
pub use super::ops::pool::{avg_pool2d, max_pool2d, try_avg_pool2d, try_max_pool2d, Pool2d};
