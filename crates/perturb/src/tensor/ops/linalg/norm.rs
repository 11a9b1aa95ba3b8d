//! The Euclidean norm over trailing axes: the vector 2-norm and the Frobenius norm of a
//! matrix, batched over the leading axes, with a derivative that is finite at 0.

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::kernels::{narrow, wide};
use crate::tensor::ops::unary;
use crate::tensor::{Array, Element, Op, Tensor};

/// `sqrt(sum x^2)` over the last `trailing` axes (1: the vector 2-norm, 2: the Frobenius norm
/// of a matrix); the leading axes are a stack of problems. The value is computed scaled by the
/// largest magnitude, as LAPACK's `nrm2` does, so it neither overflows nor underflows where
/// the norm itself is representable.
///
/// The derivative is `d|x| = <x, dx> / |x|` (Giles 2008, "An extended collection of matrix
/// derivative results for forward and reverse mode AD", the Frobenius norm). At `x = 0`, where
/// the norm has no derivative, the rule gives the subgradient 0 (the norm is even, so 0 is
/// the one choice that keeps the gradient odd; the convention of JAX pull request #39792):
/// the rule multiplies by the direction `x / |x|`, made a constant 0 where `|x| = 0` by a
/// selection, so derivatives of every order are finite there, and the second derivative at 0
/// is 0 too. The direction is a division by `|x|`, never a product with `1 / |x|`, so the
/// gradient stays `x / |x|` (magnitude 1) for a subnormal `x`, where `1 / |x|` overflows.
/// A consequence: through the norm, `|x|^2` also has second derivative 0 at `x = 0`, not
/// `2 I`; write a squared norm as the sum of squares where that matters.
///
/// ```
/// use perturb::tensor::{ops::Norm, Op, Tensor};
/// let x = Tensor::from_vec(vec![3.0_f64, 4.0, 0.0, 0.0], &[2, 2]).unwrap();
/// assert_eq!(Norm { trailing: 1 }.eval(&[&x]).unwrap().to_vec(), vec![5.0, 0.0]);
/// assert_eq!(Norm { trailing: 2 }.eval(&[&x]).unwrap().to_vec(), vec![5.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Norm {
    /// How many trailing axes are reduced.
    pub trailing: usize,
}

impl Norm {
    /// The shape of the result, or an error if the input has fewer axes than are reduced.
    fn out_shape(&self, shape: &[usize]) -> Result<Vec<usize>, Error> {
        let r = shape.len();
        if r < self.trailing {
            return Err(Error::InvalidArgument {
                op: self.name(),
                reason: match self.trailing {
                    1 => format!("the vector norm needs at least 1 axis, got shape {shape:?}"),
                    k => format!(
                        "the norm over the last {k} axes needs at least {k} axes, got shape \
                         {shape:?}"
                    ),
                },
            });
        }
        Ok(shape[..r - self.trailing].to_vec())
    }

    /// The axes reduced, for an input of rank `rank`.
    fn axes(&self, rank: usize) -> Vec<usize> {
        (rank - self.trailing..rank).collect()
    }

    /// `x / |x|` over each slice (the gradient), 0 where `|x| = 0`: `x` divided by the norm
    /// (made 1 there by a selection), times a mask that is 0 there. A division, not a product
    /// with `1 / |x|`: that reciprocal overflows to infinity for a subnormal norm (the gradient
    /// at `x = [5e-324]` would be `inf`, not 1), while `x / |x|` has magnitude at most 1; and
    /// the division's own rule, `(dx - (x / |x|) d|x|) / |x|`, keeps the second derivative
    /// finite wherever it is representable. The mask makes the direction a constant 0 at
    /// `x = 0`, so no infinity reaches the rule or its derivatives there.
    fn direction<A: Array>(&self, x: &A, y: &A) -> Result<A, Error> {
        let zero = y.constant_like(&Tensor::scalar(A::elem(0.0)));
        let one = y.constant_like(&Tensor::scalar(A::elem(1.0)));
        let at_zero = y.try_equal(&zero)?;
        let keep = self.keep(y.shape());
        let norm = at_zero.try_select(&one, y)?.try_reshape(&keep)?;
        let mask = at_zero
            .try_select(&zero, &one)?
            .try_broadcast_to(y.shape())?
            .try_reshape(&keep)?;
        x.try_div(&norm)?.try_mul(&mask)
    }

    /// The output's shape `shape` with the reduced axes put back as length 1.
    fn keep(&self, shape: &[usize]) -> Vec<usize> {
        let mut keep = shape.to_vec();
        keep.resize(keep.len() + self.trailing, 1);
        keep
    }
}

/// `sqrt(sum x^2)` of one slice, scaled by its largest magnitude; NaN if any element is.
fn norm_of<T: Element>(x: &[T]) -> T {
    let mut big = T::zero();
    for &v in x {
        let a = v.abs();
        if a.is_nan() {
            return a;
        }
        if a > big {
            big = a;
        }
    }
    if big == T::zero() || big.is_infinite() {
        return big;
    }
    // Added in f64: an f32 sum of `2^25` squares of 1 stopped at `2^24`.
    let sum = x.iter().fold(0.0_f64, |acc, &v| {
        let s = wide(v / big);
        acc + s * s
    });
    big * narrow::<T>(sum.sqrt())
}

impl Op for Norm {
    fn name(&self) -> &'static str {
        "norm"
    }

    /// The trailing axes are the same for a stack, once each member is checked to have them:
    /// else the norm would reduce the stack's own axis (a stack of scalars gave "the leading
    /// axis of the batching rule's result has length 0").
    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], _: usize) -> Result<A, Error> {
        if stacked[0] {
            self.out_shape(&x[0].shape()[1..])?;
        }
        A::apply(self, x)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let out = self.out_shape(x.shape())?;
        let count = element_count(self.name(), &out)?;
        let len: usize = x.shape()[out.len()..].iter().product();
        let data = if len == 0 {
            vec![T::zero(); count]
        } else {
            x.as_slice().chunks_exact(len).map(norm_of).collect()
        };
        Ok(Tensor::from_parts(data, out))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [x] = inputs else { return None };
        self.out_shape(x).ok()
    }

    /// `<x / |x|, t>`, 0 where `|x| = 0`.
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        let axes = self.axes(x[0].shape().len());
        let dot = self.direction(x[0], y)?.try_mul(t)?;
        Ok(Some(dot.try_sum_axes(&axes, false)?))
    }

    /// `ct x / |x|`, 0 where `|x| = 0`.
    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let ct = ct.try_reshape(&self.keep(y.shape()))?;
        Ok(vec![Some(self.direction(x[0], y)?.try_mul(&ct)?)])
    }
}

/// The 2-norm of each vector along the last axis: `[.., n] -> [..]`, `sqrt(sum x^2)`, with
/// the derivative `x / |x|`, and 0 at `x = 0` (see [`Norm`]: finite at every order there). An
/// error for a scalar.
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let x = Tensor::from_vec(vec![3.0_f64, 4.0, 0.0, 0.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::try_vector_norm(&x).unwrap().to_vec(), vec![5.0, 0.0]);
/// assert!(linalg::try_vector_norm(&Tensor::scalar(1.0_f64)).is_err());
/// // The gradient: x / |x|, and 0 at 0.
/// let g = grad(|x| Ok(linalg::try_vector_norm(x)?.sum_all()), &x).unwrap();
/// assert!(g.all_close(&Tensor::from_vec(vec![0.6, 0.8, 0.0, 0.0], &[2, 2]).unwrap(), 1e-15));
/// ```
#[track_caller]
pub fn try_vector_norm<A: Array>(x: &A) -> Result<A, Error> {
    A::apply(&Norm { trailing: 1 }, &[x])
}

/// See [`try_vector_norm`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// assert_eq!(linalg::vector_norm(&Tensor::vector(&[1.0_f64, 2.0, 2.0])).to_vec(), vec![3.0]);
/// ```
#[track_caller]
pub fn vector_norm<A: Array>(x: &A) -> A {
    or_panic(try_vector_norm(x))
}

/// The Frobenius norm of each matrix over the last two axes: `[.., m, n] -> [..]`,
/// `sqrt(sum x^2)`, with the derivative `x / |x|_F`, and 0 at `x = 0` (see [`Norm`]). An error
/// for fewer than two axes.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 2.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::try_matrix_norm(&a).unwrap().to_vec(), vec![5.0]);
/// assert!(linalg::try_matrix_norm(&Tensor::vector(&[1.0_f64])).is_err());
/// ```
#[track_caller]
pub fn try_matrix_norm<A: Array>(x: &A) -> Result<A, Error> {
    A::apply(&Norm { trailing: 2 }, &[x])
}

/// See [`try_matrix_norm`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let stack = Tensor::from_vec(vec![3.0_f64, 0.0, 0.0, 4.0, 1.0, 0.0, 0.0, 0.0], &[2, 2, 2]).unwrap();
/// assert_eq!(linalg::matrix_norm(&stack).to_vec(), vec![5.0, 1.0]);
/// ```
#[track_caller]
pub fn matrix_norm<A: Array>(x: &A) -> A {
    or_panic(try_matrix_norm(x))
}
