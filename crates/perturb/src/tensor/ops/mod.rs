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

/// [`Op::batch_trailing`](super::Op::batch_trailing) for an operation over its one input's own
/// axes (the field named, a list of axes or one axis in brackets): the operation unchanged, as
/// [`batched::same_axes`](super::batched::same_axes) says.
macro_rules! batch_trailing_over {
    ($axes:ident) => {
        batch_trailing_over!(@rule self, &self.$axes);
    };
    ([$axis:ident]) => {
        batch_trailing_over!(@rule self, &[self.$axis]);
    };
    (@rule $self:ident, $axes:expr) => {
        fn batch_trailing<A: Array>(
            &$self,
            x: &[&A],
            trailing: &[bool],
            _: usize,
        ) -> Option<Result<A, Error>> {
            crate::tensor::batched::same_axes($self, x, trailing, $axes)
        }
    };
}

mod argmax;
mod binary;
mod compare;
pub(crate) mod conv;
mod cumsum;
mod elementwise;
mod index;
pub(crate) mod linalg;
mod mul_sum_to;
mod pointwise;
pub(crate) mod pool;
mod reduce;
mod shape;
mod softmax_jvp;

pub use argmax::Indices;
pub(crate) use argmax::{argmax, argmin};
pub use binary::{Add, AddScalar, Div, Mul, MulAdd, Pow, Scale, ScaledMul, Sub};
pub use conv::{
    BiasAdd, BiasAddGrad, Conv, Conv1d, Conv2d, ConvTranspose, ConvTranspose2d, ConvWeightGrad,
};
pub use cumsum::CumSum;
pub use elementwise::{
    Abs, Cos, Erf, Exp, Expm1, Gelu, GeluTanh, Ln, Log1p, LogSigmoid, Neg, PowScalar, Recip, Relu,
    Sigmoid, Silu, Sin, Softplus, Sqrt, Square, Tanh,
};
pub(crate) use linalg::Dense;
pub use linalg::{Cholesky, Det, Eigh, Inverse, MatMul, Norm, Qr, Slogdet, Solve, TriangularSolve};
pub use mul_sum_to::MulSumTo;
pub use pointwise::{Pointwise, PointwiseBinary, PointwiseRule};
pub use pool::{AvgPool2d, MaxPool2d, MaxPool2dIndex, Pool2d};
pub use shape::{BroadcastTo, Narrow, PadNarrow, PadPair, Permute, Reshape, SumTo};
pub use softmax_jvp::SoftmaxJvp;
#[allow(unused_imports)]
pub use {compare::*, index::*, reduce::*};

use super::element::Element;
use crate::error::Error;

/// Converts an `f64` parameter of an operation to the element type.
pub(crate) fn elem<T: Element>(x: f64) -> T {
    T::from_f64(x).unwrap_or_else(T::nan)
}

/// The single input of a one-input operation, or an arity error.
pub(crate) fn unary<'a, T: ?Sized>(op: &'static str, inputs: &[&'a T]) -> Result<&'a T, Error> {
    match inputs {
        [x] => Ok(x),
        _ => Err(Error::Arity {
            op,
            expected: 1,
            found: inputs.len(),
        }),
    }
}

/// [`Op::output_shape`](super::Op::output_shape) of an element-wise operation of `arity`
/// inputs: the shape they broadcast to, if there are that many and they do.
pub(crate) fn broadcast_output(arity: usize, inputs: &[&[usize]]) -> Option<Vec<usize>> {
    let (first, rest) = inputs.split_first()?;
    if inputs.len() != arity {
        return None;
    }
    rest.iter().try_fold(first.to_vec(), |shape, next| {
        super::kernels::broadcast_shape("output_shape", &shape, next).ok()
    })
}

/// The value of a two-input element-wise operation named `op`: `f(a, b)` with numpy
/// broadcasting, or an arity or shape error naming `op`. `cost` decides when the loop runs in
/// parallel.
pub(crate) fn binary_eval<T: Element>(
    op: &'static str,
    inputs: &[&super::Tensor<T>],
    cost: super::kernels::Cost,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<super::Tensor<T>, Error> {
    let [a, b] = inputs else {
        return Err(Error::Arity {
            op,
            expected: 2,
            found: inputs.len(),
        });
    };
    let (data, shape) = super::kernels::broadcast_zip(
        op,
        a.as_slice(),
        a.shape(),
        b.as_slice(),
        b.shape(),
        cost,
        f,
    )?;
    Ok(super::Tensor::from_parts(data, shape))
}

/// The sum of the present tangent terms (`None`: zero), broadcast to the output's `shape`: the
/// JVP of an operation with several inputs is the sum of each input's contribution, and an
/// input that was broadcast contributes a tangent of its own, smaller shape.
pub(crate) fn sum_tangents<A: super::Array>(
    terms: impl IntoIterator<Item = Option<A>>,
    shape: &[usize],
) -> Result<Option<A>, Error> {
    let mut total: Option<A> = None;
    for term in terms.into_iter().flatten() {
        total = Some(match total {
            None => term,
            Some(sum) => sum.try_add(&term)?,
        });
    }
    match total {
        Some(t) if t.shape() != shape => Ok(Some(t.try_broadcast_to(shape)?)),
        other => Ok(other),
    }
}

/// The JVP of an operation that is linear in its single input: the operation applied to the
/// tangent.
pub(crate) fn linear_jvp<O: super::Op, A: super::Array>(
    op: &O,
    tangents: &[Option<&A>],
) -> Result<Option<A>, Error> {
    tangents[0].map(|t| A::apply(op, &[t])).transpose()
}

/// [`Op::vjp_onto`](super::Op::vjp_onto)'s default: the VJP of the cotangent's value (at full
/// size), each term handed the cotangent's factor and added into its slot. An operation that overrides
/// `vjp_onto` for some cases falls back to it for the rest.
pub(crate) fn vjp_then_gather<O: super::Op, A: super::Array>(
    op: &O,
    inputs: &[&A],
    output: &A,
    cotangent: &super::Cotangent<A>,
    needed: &[bool],
    gathered: &mut [Option<super::Cotangent<A>>],
) -> Result<(), Error> {
    let full;
    let value = if cotangent.value.shape() == output.shape() {
        &cotangent.value
    } else {
        full = cotangent.value.try_broadcast_to(output.shape())?;
        &full
    };
    let terms = op.vjp(inputs, output, value, needed)?;
    if terms.len() != inputs.len() {
        return Err(Error::InvalidArgument {
            op: op.name(),
            reason: format!(
                "its VJP gave {} cotangents for {} inputs",
                terms.len(),
                inputs.len()
            ),
        });
    }
    let scaled = terms
        .into_iter()
        .zip(needed)
        .map(|(term, &wanted)| term.filter(|_| wanted));
    gather(
        gathered,
        scaled.map(|t| t.map(|t| super::Cotangent::scaled(t, cotangent.factor))),
    )
}

/// Adds each present term into its input's slot of `gathered`.
pub(crate) fn gather<A: super::Array>(
    gathered: &mut [Option<super::Cotangent<A>>],
    terms: impl IntoIterator<Item = Option<super::Cotangent<A>>>,
) -> Result<(), Error> {
    for (slot, term) in gathered.iter_mut().zip(terms) {
        if let Some(term) = term {
            super::Cotangent::accumulate(slot, term)?;
        }
    }
    Ok(())
}

/// The part of a cotangent `value` of an element-wise result of shape `output` that goes to
/// `input`: the value itself where the input has the result's shape (even if the value is kept
/// smaller, see [`Cotangent`](super::Cotangent)), else the value at full size summed over the
/// axes along which the input was broadcast (even if the value already has the input's shape:
/// kept smaller, it still stands for its repetition along those axes).
pub(crate) fn to_input<A: super::Array>(
    value: &A,
    output: &[usize],
    input: &A,
) -> Result<A, Error> {
    if input.shape() == output {
        return Ok(value.clone());
    }
    let full = if value.shape() == output {
        value.clone()
    } else {
        value.try_broadcast_to(output)?
    };
    full.try_sum_to(input.shape())
}
