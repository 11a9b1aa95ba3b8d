//! Element-wise tensor operations made from scalar rules: a user's [`UnaryOp`] or [`BinaryOp`]
//! (the lecture's `func` and `grads`) becomes a tensor [`Op`] with every mode and order, with
//! no derivative code written for tensors.

use std::fmt::Debug;

use crate::error::Error;
use crate::forward::Dual;
use crate::scalar::{BinaryOp, Scalar, UnaryOp};
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

use super::binary::unbroadcast;

/// The bounds a scalar rule needs to run element-wise on tensors (in parallel, and recorded).
pub trait PointwiseRule: Clone + Debug + Send + Sync + 'static {}
impl<R: Clone + Debug + Send + Sync + 'static> PointwiseRule for R {}

/// A one-argument scalar rule applied to every element: the value from
/// [`UnaryOp::func`], the JVP and VJP as the tangent or cotangent times [`UnaryOp::grads`].
///
/// The local derivative is itself an element-wise operation whose derivative is found by
/// forward mode on the scalar rule, so second and higher derivatives need nothing more from
/// the user. The rule's `grads` must be written in differentiable operations (as every
/// `UnaryOp`'s is) for those to be right.
///
/// ```
/// use perturb::tensor::{grad, hessian, ops::Pointwise, Array, Tensor};
/// use perturb::{Scalar, UnaryOp};
///
/// /// The lecture's log, defined by `func` and `grads` only.
/// #[derive(Clone, Copy, Debug)]
/// struct LectureLog;
/// impl UnaryOp for LectureLog {
///     fn func<T: Scalar>(&self, a: T) -> T { a.ln() }
///     fn grads<T: Scalar>(&self, a: T, _value: T) -> T { a.recip() }
///     fn name(&self) -> &'static str { "lecture_log" }
/// }
///
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let g = grad(|x| Ok(x.apply_op(&Pointwise(LectureLog))?.sum_all()), &x).unwrap();
/// assert_eq!(g.to_vec(), vec![1.0, 0.5]);
/// // d2/dx2 ln x = -1 / x^2, on the diagonal.
/// let h = hessian(|x| Ok(x.apply_op(&Pointwise(LectureLog))?.sum_all()), &x).unwrap();
/// assert_eq!(h.to_vec(), vec![-1.0, 0.0, 0.0, -0.25]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pointwise<R>(pub R);

impl<R: UnaryOp + PointwiseRule> Op for Pointwise<R> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let rule = self.0.clone();
        let x = super::unary(self.0.name(), inputs)?;
        Ok(x.map_with(kernels::Cost::Transcendental, move |v| rule.func(v)))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| self.slope_times(x[0], t)).transpose()
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(self.slope_times(x[0], ct)?)])
    }
}

impl<R: UnaryOp + PointwiseRule> Pointwise<R> {
    /// `g * grads(x)`: the Jacobian is diagonal, so the JVP and the VJP are the same product.
    fn slope_times<A: Array>(&self, x: &A, g: &A) -> Result<A, Error> {
        g.try_mul(&A::apply(&Pointwise(Slope(self.0.clone())), &[x])?)
    }
}

/// The local derivative of a unary rule as a rule of its own: its value is the rule's `grads`,
/// its derivative comes from forward mode on that.
#[derive(Clone, Copy, Debug)]
struct Slope<R>(R);

impl<R: UnaryOp> UnaryOp for Slope<R> {
    fn func<T: Scalar>(&self, x: T) -> T {
        self.0.grads(x, self.0.func(x))
    }

    fn grads<T: Scalar>(&self, x: T, _: T) -> T {
        self.func(Dual::variable(x)).tangent()
    }

    fn name(&self) -> &'static str {
        "pointwise_slope"
    }
}

/// A two-argument scalar rule applied element by element with numpy broadcasting; see
/// [`Pointwise`].
///
/// ```
/// use perturb::tensor::{grad, ops::PointwiseBinary, Array, Tensor};
/// use perturb::{BinaryOp, Scalar};
///
/// /// The lecture's `_sub`: `grads(a, b) = (1, -1)`.
/// #[derive(Clone, Copy, Debug)]
/// struct LectureSub;
/// impl BinaryOp for LectureSub {
///     fn func<T: Scalar>(&self, a: T, b: T) -> T { a - b }
///     fn grads<T: Scalar>(&self, _: T, _: T, _: T) -> (T, T) { (T::one(), -T::one()) }
/// }
///
/// let y = Tensor::vector(&[1.0_f64, 2.0]);
/// // d/dw sum((y - w)^2) = -2 (y - w); at w = 0 that is -2 y.
/// let g = grad(
///     |w| Ok(Array::apply(&PointwiseBinary(LectureSub), &[&w.constant_like(&y), w])?.square().sum_all()),
///     &Tensor::zeros(&[2]),
/// )
/// .unwrap();
/// assert_eq!(g.to_vec(), vec![-2.0, -4.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PointwiseBinary<R>(pub R);

impl<R: BinaryOp + PointwiseRule> Op for PointwiseBinary<R> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let rule = self.0.clone();
        super::binary_eval(
            self.0.name(),
            inputs,
            kernels::Cost::Transcendental,
            move |x, y| rule.func(x, y),
        )
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let mut terms = [None, None];
        for (i, term) in terms.iter_mut().enumerate() {
            if let Some(t) = t[i] {
                *term = Some(t.try_mul(&self.partial(i, x)?)?);
            }
        }
        super::sum_tangents(terms, y.shape())
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        (0..2)
            .map(|i| {
                needed[i]
                    .then(|| unbroadcast(ct.try_mul(&self.partial(i, x)?)?, x[i]))
                    .transpose()
            })
            .collect()
    }
}

impl<R: BinaryOp + PointwiseRule> PointwiseBinary<R> {
    /// The local partial derivative with respect to input `i`, as a tensor.
    fn partial<A: Array>(&self, i: usize, x: &[&A]) -> Result<A, Error> {
        A::apply(&PointwiseBinary(Partial(self.0.clone(), i)), &[x[0], x[1]])
    }
}

/// The partial derivative of a binary rule with respect to argument `.1` as a rule of its own;
/// its partials come from forward mode on it.
#[derive(Clone, Copy, Debug)]
struct Partial<R>(R, usize);

impl<R: BinaryOp> BinaryOp for Partial<R> {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        let (da, db) = self.0.grads(a, b, self.0.func(a, b));
        if self.1 == 0 {
            da
        } else {
            db
        }
    }

    fn grads<T: Scalar>(&self, a: T, b: T, _: T) -> (T, T) {
        let da = self.func(Dual::variable(a), Dual::constant(b)).tangent();
        let db = self.func(Dual::constant(a), Dual::variable(b)).tangent();
        (da, db)
    }

    fn name(&self) -> &'static str {
        "pointwise_partial"
    }
}
