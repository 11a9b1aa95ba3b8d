//! Differentiable convolution and pooling (NCW/NCHW inputs, OIW/OIHW weights), on the GEMM.
//! The operations live in [`ops`](super::ops); this module gathers the functions users call.

pub use super::ops::pool::{avg_pool2d, max_pool2d, try_avg_pool2d, try_max_pool2d, Pool2d};
