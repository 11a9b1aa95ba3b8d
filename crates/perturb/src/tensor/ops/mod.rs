//! Every tensor operation, one struct each: its value on plain tensors (`eval`) beside its
//! vector-Jacobian product (`vjp`), written in differentiable [`Array`](super::Array) operations.
//!
//! ```
//! use perturb::tensor::{ops, Array, Op, Tensor};
//! let x = Tensor::vector(&[1.0_f64, 2.0]);
//! let y = ops::Square.eval(&[&x]).unwrap();
//! let ct = ops::Square.vjp(&[&x], &y, &Tensor::ones(&[2]), &[true]).unwrap();
//! assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![2.0, 4.0]);
//! ```

mod binary;
mod compare;
mod elementwise;
mod index;
mod linalg;
mod reduce;
mod shape;

pub use binary::{Add, AddScalar, Div, Mul, Pow, Scale, Sub};
pub use elementwise::{
    Abs, Cos, Exp, Ln, LogSigmoid, Neg, PowScalar, Recip, Relu, Sigmoid, Sin, Softplus, Sqrt,
    Square, Tanh,
};
pub use linalg::MatMul;
pub use shape::{BroadcastTo, Narrow, PadNarrow, Permute, Reshape, SumTo};
#[allow(unused_imports)]
pub use {compare::*, index::*, reduce::*};

use super::element::Element;
use crate::error::Error;

/// Converts an `f64` parameter of an operation to the element type.
pub(crate) fn elem<T: Element>(x: f64) -> T {
    T::from_f64(x).unwrap_or_else(T::nan)
}

/// The single input of a one-input operation, or an arity error.
pub(crate) fn unary<'a, T>(op: &'static str, inputs: &[&'a T]) -> Result<&'a T, Error> {
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::Arity {
            op,
            expected: 1,
            found: inputs.len(),
        }),
    }
}
