//! The scalar trait every number in perturb implements, and operations defined the lecture's way:
//! by a value function (`func`) and its local partial derivatives (`grads`).

use std::fmt::{Debug, Display};
use std::iter::{Product, Sum};

use num_traits::{Float, FloatConst, FromPrimitive, NumAssign};

use crate::rules;

/// A real number that perturb can differentiate through: `f32`, `f64`, and every dual number and
/// tape variable built on top of them, nested to any depth.
///
/// It is [`num_traits::Float`] plus the traits generic numeric code usually needs, so a function
/// written against `T: Float` runs unchanged on every perturb number. The two methods
/// [`apply_unary`](Scalar::apply_unary) and [`apply_binary`](Scalar::apply_binary) are the chain
/// rule: each number type says once how an operation's local partial derivatives combine with its
/// own tangents (forward mode) or are recorded for the reverse sweep (reverse mode). Every
/// elementary function, and every user-defined [`UnaryOp`] or [`BinaryOp`], goes through them.
///
/// ```
/// use perturb::{derivative, Scalar};
///
/// // Written once, for any scalar.
/// fn loss<T: Scalar>(w: T, x: T) -> T {
///     -(w * x * x).log_sigmoid()
/// }
/// // -log sigmoid(0.75) = ln(1 + e^-0.75)
/// assert!((loss(3.0_f64, 0.5) - (-0.75_f64).exp().ln_1p()).abs() < 1e-15);
/// let (_, dl_dx) = derivative(|x| loss(perturb::Dual::constant(3.0), x), 0.5_f64);
/// // dL/dx = -(1 - sigmoid(w x^2)) * 2 w x
/// let s = 1.0 / (1.0 + (-0.75_f64).exp());
/// assert!((dl_dx - (-(1.0 - s) * 3.0)).abs() < 1e-12);
/// ```
pub trait Scalar:
    Float + FloatConst + FromPrimitive + NumAssign + Sum + Product + Debug + Display + Default
{
    /// Applies a one-argument operation: the value from [`UnaryOp::func`], and, for the
    /// differentiable number types, the tangent or tape record from [`UnaryOp::grads`].
    ///
    /// ```
    /// use perturb::{rules::Sin, Dual, Scalar};
    /// let y = Dual::apply_unary(&Sin, Dual::variable(0.0_f64));
    /// assert_eq!((y.value(), y.tangent()), (0.0, 1.0));
    /// ```
    fn apply_unary<O: UnaryOp>(op: &O, x: Self) -> Self;

    /// Applies a two-argument operation; see [`apply_unary`](Scalar::apply_unary).
    ///
    /// ```
    /// use perturb::{rules::Mul, Dual, Scalar};
    /// let y = Dual::apply_binary(&Mul, Dual::variable(3.0_f64), Dual::constant(2.0));
    /// assert_eq!((y.value(), y.tangent()), (6.0, 2.0));
    /// ```
    fn apply_binary<O: BinaryOp>(op: &O, a: Self, b: Self) -> Self;

    /// The plain `f64` value at the bottom of any nesting of dual numbers and tape variables.
    ///
    /// ```
    /// use perturb::{Dual, Scalar};
    /// let x = Dual::variable(Dual::variable(2.5_f64));
    /// assert_eq!(x.to_f64_value(), 2.5);
    /// ```
    fn to_f64_value(self) -> f64 {
        self.to_f64().unwrap_or(f64::NAN)
    }

    /// How many levels of derivatives the type carries: 0 for `f32` and `f64`, one more for
    /// each [`Dual`](crate::Dual), [`DualN`](crate::DualN), [`DualVec`](crate::DualVec) or
    /// [`Var`](crate::Var) around it. An operation on a number of order `k` needs its
    /// derivatives up to order `k` ([`F64Fn`](crate::F64Fn) checks this).
    ///
    /// ```
    /// use perturb::{Dual, Scalar, Var};
    /// assert_eq!(<f64 as Scalar>::ORDER, 0);
    /// assert_eq!(<Var<'static, Dual<f64>> as Scalar>::ORDER, 2);
    /// ```
    const ORDER: usize;

    /// Whether the number is exactly zero at every level: its value and, for the dual numbers,
    /// every tangent (recursively). A tape variable is exactly zero only if it is a constant
    /// zero: a recorded variable may have non-zero derivatives whatever its value.
    ///
    /// The reverse sweep passes nothing on from a node whose adjoint is exactly zero, so that
    /// an unused value with an infinite local derivative (`sqrt` at 0) cannot turn the
    /// gradient into NaN through `0 * inf`.
    ///
    /// ```
    /// use perturb::{Dual, Scalar};
    /// assert!(Dual::constant(0.0_f64).is_exact_zero());
    /// assert!(!Dual::new(0.0_f64, 1.0).is_exact_zero()); // == 0 compares values only
    /// ```
    fn is_exact_zero(self) -> bool;

    /// The first component (the value, then the tangents, depth first) that is NaN or
    /// infinite, if any. A tape variable's derivatives are not known until a sweep, so only
    /// its value is looked at.
    ///
    /// ```
    /// use perturb::{Dual, Scalar};
    /// assert_eq!(Dual::new(1.0_f64, 2.0).first_non_finite(), None);
    /// assert!(Dual::new(1.0_f64, f64::NAN).first_non_finite().unwrap().is_nan());
    /// ```
    fn first_non_finite(self) -> Option<f64> {
        let v = self.to_f64_value();
        (!v.is_finite()).then_some(v)
    }

    /// The logistic sigmoid `1 / (1 + exp(-x))`, computed without overflow for large `|x|`.
    ///
    /// ```
    /// use perturb::Scalar;
    /// assert_eq!(0.0_f64.sigmoid(), 0.5);
    /// assert!((-800.0_f64).sigmoid() >= 0.0);
    /// ```
    #[track_caller]
    fn sigmoid(self) -> Self {
        Self::apply_unary(&rules::Sigmoid, self)
    }

    /// `log(sigmoid(x)) = -softplus(-x)`, stable for large `|x|`.
    ///
    /// ```
    /// use perturb::Scalar;
    /// assert!(((-800.0_f64).log_sigmoid() + 800.0).abs() < 1e-9);
    /// ```
    #[track_caller]
    fn log_sigmoid(self) -> Self {
        Self::apply_unary(&rules::LogSigmoid, self)
    }

    /// `softplus(x) = log(1 + exp(x))`, stable for large `|x|`.
    ///
    /// ```
    /// use perturb::Scalar;
    /// assert_eq!(800.0_f64.softplus(), 800.0);
    /// ```
    #[track_caller]
    fn softplus(self) -> Self {
        Self::apply_unary(&rules::Softplus, self)
    }

    /// `relu(x) = max(x, 0)`; its derivative at 0 is taken as 0.
    ///
    /// ```
    /// use perturb::Scalar;
    /// assert_eq!((-2.0_f64).relu(), 0.0);
    /// ```
    #[track_caller]
    fn relu(self) -> Self {
        Self::apply_unary(&rules::Relu, self)
    }
}

/// A one-argument operation defined by its value and its local derivative, as the lecture's
/// `ForwardValue` subclasses define `func` and `grads`.
///
/// Both methods are generic over [`Scalar`], so the derivative is itself written in
/// differentiable operations: an operation defined once works in forward mode, reverse mode and
/// every nesting of them (second and higher derivatives) with no further code.
///
/// ```
/// use perturb::{derivative, Scalar, UnaryOp};
///
/// /// The lecture's negation: `func(a) = -a`, `grads(a) = -1`.
/// struct LectureNeg;
/// impl UnaryOp for LectureNeg {
///     fn func<T: Scalar>(&self, a: T) -> T { -a }
///     fn grads<T: Scalar>(&self, _a: T, _value: T) -> T { -T::one() }
/// }
///
/// let (value, slope) = derivative(|x| LectureNeg.apply(x * x), 3.0_f64);
/// assert_eq!((value, slope), (-9.0, -6.0));
/// ```
pub trait UnaryOp {
    /// The value of the operation at `x`.
    ///
    /// ```
    /// use perturb::{rules::Exp, UnaryOp};
    /// assert_eq!(Exp.func(0.0_f64), 1.0);
    /// ```
    fn func<T: Scalar>(&self, x: T) -> T;

    /// The local derivative `d func / dx` at `x`; `value` is `func(x)`, passed so a rule can
    /// reuse it (the derivative of `exp` is its value).
    ///
    /// ```
    /// use perturb::{rules::Exp, UnaryOp};
    /// assert_eq!(Exp.grads(0.0_f64, 1.0), 1.0);
    /// ```
    fn grads<T: Scalar>(&self, x: T, value: T) -> T;

    /// The operation's name in traces and graphs ([`Tape::traced`](crate::Tape::traced)).
    ///
    /// ```
    /// use perturb::{rules::Sqrt, UnaryOp};
    /// assert_eq!(Sqrt.name(), "sqrt");
    /// ```
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Applies the operation to any scalar (plain, dual or tape variable).
    ///
    /// ```
    /// use perturb::{rules::Sqrt, UnaryOp};
    /// assert_eq!(Sqrt.apply(9.0_f64), 3.0);
    /// ```
    #[track_caller]
    fn apply<S: Scalar>(&self, x: S) -> S
    where
        Self: Sized,
    {
        S::apply_unary(self, x)
    }
}

/// A two-argument operation defined by its value and its two local partial derivatives.
///
/// ```
/// use perturb::{gradient, BinaryOp, Scalar};
///
/// /// The lecture's exercise: subtraction, `grads(a, b) = (1, -1)`.
/// struct LectureSub;
/// impl BinaryOp for LectureSub {
///     fn func<T: Scalar>(&self, a: T, b: T) -> T { a - b }
///     fn grads<T: Scalar>(&self, _a: T, _b: T, _value: T) -> (T, T) { (T::one(), -T::one()) }
/// }
///
/// let (value, grad) = gradient(|x| LectureSub.apply(x[0], x[1]), &[5.0_f64, 2.0]);
/// assert_eq!(value, 3.0);
/// assert_eq!(grad, vec![1.0, -1.0]);
/// ```
pub trait BinaryOp {
    /// The value of the operation at `(a, b)`.
    ///
    /// ```
    /// use perturb::{rules::Mul, BinaryOp};
    /// assert_eq!(Mul.func(2.0_f64, 3.0), 6.0);
    /// ```
    fn func<T: Scalar>(&self, a: T, b: T) -> T;

    /// The local partial derivatives `(d func / da, d func / db)`; `value` is `func(a, b)`.
    ///
    /// ```
    /// use perturb::{rules::Mul, BinaryOp};
    /// assert_eq!(Mul.grads(2.0_f64, 3.0, 6.0), (3.0, 2.0));
    /// ```
    fn grads<T: Scalar>(&self, a: T, b: T, value: T) -> (T, T);

    /// The operation's name in traces and graphs ([`Tape::traced`](crate::Tape::traced)).
    ///
    /// ```
    /// use perturb::{rules::Atan2, BinaryOp};
    /// assert_eq!(Atan2.name(), "atan2");
    /// ```
    fn name(&self) -> &'static str {
        "custom"
    }

    /// Applies the operation to any scalar (plain, dual or tape variable).
    ///
    /// ```
    /// use perturb::{rules::Atan2, BinaryOp};
    /// assert_eq!(Atan2.apply(0.0_f64, 1.0), 0.0);
    /// ```
    #[track_caller]
    fn apply<S: Scalar>(&self, a: S, b: S) -> S
    where
        Self: Sized,
    {
        S::apply_binary(self, a, b)
    }
}

macro_rules! impl_scalar_for_primitive {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            #[inline(always)]
            fn apply_unary<O: UnaryOp>(op: &O, x: Self) -> Self {
                op.func(x)
            }
            #[inline(always)]
            fn apply_binary<O: BinaryOp>(op: &O, a: Self, b: Self) -> Self {
                op.func(a, b)
            }
            const ORDER: usize = 0;
            #[inline]
            fn to_f64_value(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_exact_zero(self) -> bool {
                self == 0.0
            }
        }
    )*};
}
impl_scalar_for_primitive!(f32, f64);
