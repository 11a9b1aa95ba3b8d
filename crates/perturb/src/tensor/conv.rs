//! Differentiable convolution and pooling (NCW/NCHW inputs, OIW/OIHW weights), on the GEMM.
//! The operations live in [`ops`](super::ops); this module gathers the functions users call.
