//! Differentiable convolution and pooling (NCW/NCHW inputs, OIW/OIHW weights), on the GEMM.

mod convolution;
mod pool;
