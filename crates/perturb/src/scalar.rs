//! The scalar trait every number in perturb implements, and operations defined the lecture's way:
//! by a value function (`func`) and its local partial derivatives (`grads`).

use std::fmt::{self, Debug, Display};
use std::iter::{Product, Sum};

use num_traits::{Float, FloatConst, FromPrimitive, NumAssign};

use crate::error::Error;
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
/// Both methods are generic over [`Scalar`], and both must be written in differentiable
/// operations of `T` (its arithmetic, [`Float`] methods, other rules): `func` and `grads` are
/// called on the *inner* number type of a nesting (on `Dual<f64>` for a `Dual<Dual<f64>>`), so
/// that an operation defined once works in forward mode, reverse mode and every nesting of them
/// (second and higher derivatives) with no further code.
///
/// Computing through plain `f64` instead, as in `T::from(j0(x.to_f64_value()))`, drops the inner
/// derivatives: first derivatives stay right, second derivatives are silently wrong. For a
/// function that can only be computed on `f64` (a Bessel function, a CDF, a table), give its
/// value and derivatives as plain functions in an [`F64Fn`], which applies the chain rule at
/// every level and refuses orders it was not given.
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
/// As for [`UnaryOp`], `func` and `grads` must be written in differentiable operations of `T`
/// (they are called on the inner number type of a nesting); see [`F64Fn`] for a function that
/// can only be computed on `f64`.
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

/// A local partial times a tangent, exactly zero when either is: a direction along which the
/// input does not move cannot move the output, even through an infinite or NaN partial (`sqrt`
/// at 0 in a pass that perturbs another input), the forward counterpart of the reverse sweep's
/// skip of a zero adjoint; and an exactly-zero partial passes nothing on, even an infinite
/// tangent, as the reverse sweep's zero adjoint does there: `0 * sqrt(x)` at 0 has derivative
/// 0 in both modes (forward mode gave `0 * inf = NaN`).
#[inline(always)]
pub(crate) fn scale_tangent<T: Scalar>(partial: T, tangent: T) -> T {
    if tangent.is_exact_zero() {
        tangent
    } else if partial.is_exact_zero() {
        partial
    } else {
        partial * tangent
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

/// A one-argument function computed on plain `f64` (a Bessel function, a CDF, a table), given
/// with its derivatives as plain functions `[f, f', f'', ...]`, made into an operation that
/// works on every number type.
///
/// A [`UnaryOp`] must compute in differentiable operations of its number type; a function that
/// only exists for `f64` cannot. `F64Fn` applies the chain rule itself, at each level of a
/// nesting: on `Dual<f64>` it needs `f` and `f'`, on `Dual<Dual<f64>>`, `Var<Dual<f64>>` (the
/// Hessian) or any other number of [`Scalar::ORDER`] 2 it needs `f`, `f'` and `f''`. With `K`
/// functions it supports derivatives up to order `K - 1`; a number type of a higher order panics
/// with a message naming the function and the order ([`try_apply`](F64Fn::try_apply) returns
/// the error instead). It never gives a silently wrong number.
///
/// ```
/// use perturb::{derivative, hessian, Dual, F64Fn, UnaryOp};
///
/// // Pretend exp exists only for f64: its value and two derivatives.
/// const EXP: F64Fn<3> = F64Fn::new("exp", [f64::exp, f64::exp, f64::exp]);
///
/// let (value, slope) = derivative(|x| EXP.apply(x * x), 1.0_f64);
/// assert_eq!((value, slope), (1.0_f64.exp(), 2.0 * 1.0_f64.exp()));
/// // d^2/dx^2 exp(x^2) = (2 + 4 x^2) exp(x^2)
/// let h = hessian(|x| EXP.apply(x[0] * x[0]), &[1.0_f64]);
/// assert!((h[0][0] - 6.0 * 1.0_f64.exp()).abs() < 1e-12);
/// // The third order needs a third derivative function.
/// let x = Dual::variable(Dual::variable(Dual::variable(1.0_f64)));
/// assert!(EXP.try_apply(x).is_err());
/// ```
#[derive(Clone, Copy)]
pub struct F64Fn<const K: usize> {
    name: &'static str,
    derivatives: [fn(f64) -> f64; K],
}

impl<const K: usize> F64Fn<K> {
    /// The function `name` with `derivatives[k]` its `k`-th derivative (`derivatives[0]` its
    /// value). `K` must be at least 1.
    ///
    /// ```
    /// let square = perturb::F64Fn::new("square", [|x| x * x, |x| 2.0 * x]);
    /// assert_eq!(square.max_order(), 1);
    /// ```
    pub const fn new(name: &'static str, derivatives: [fn(f64) -> f64; K]) -> Self {
        assert!(K >= 1, "an F64Fn needs at least its value function");
        F64Fn { name, derivatives }
    }

    /// The highest derivative order it supports: `K - 1`.
    ///
    /// ```
    /// let f = perturb::F64Fn::new("id", [|x| x, |_| 1.0, |_| 0.0]);
    /// assert_eq!(f.max_order(), 2);
    /// ```
    pub const fn max_order(&self) -> usize {
        K - 1
    }

    /// Applies the function to `x`, or an error if `S` needs derivatives of a higher order than
    /// given ([`Scalar::ORDER`] above [`max_order`](F64Fn::max_order)).
    ///
    /// ```
    /// use perturb::{Dual, F64Fn};
    /// let sin = F64Fn::new("sin", [f64::sin, f64::cos]);
    /// let y = sin.try_apply(Dual::variable(0.0_f64)).unwrap();
    /// assert_eq!((y.value(), y.tangent()), (0.0, 1.0));
    /// let e = sin.try_apply(Dual::variable(Dual::variable(0.0_f64))).unwrap_err();
    /// assert!(e.to_string().contains("`sin`"));
    /// ```
    #[track_caller]
    pub fn try_apply<S: Scalar>(&self, x: S) -> Result<S, Error> {
        if S::ORDER > self.max_order() {
            return Err(Error::InvalidArgument {
                op: "F64Fn::apply",
                reason: self.too_high(S::ORDER),
            });
        }
        Ok(S::apply_unary(self, x))
    }

    fn too_high(&self, order: usize) -> String {
        format!(
            "`{name}` was given its value and {k} derivative function(s), so it supports \
             derivatives up to order {k}; this number type needs order {order}: give `{name}` \
             more derivative functions",
            name = self.name,
            k = K - 1,
        )
    }

    /// The `k`-th derivative at `x`, on any number type: from the plain function at the bottom
    /// of a nesting, by the chain rule (through [`Derivative`]) above it.
    fn derivative<T: Scalar>(&self, k: usize, x: T) -> T {
        if T::ORDER == 0 {
            let Some(f) = self.derivatives.get(k) else {
                panic!("perturb: {}", self.too_high(k));
            };
            T::from_f64(f(x.to_f64_value())).unwrap_or_else(T::nan)
        } else {
            T::apply_unary(&Derivative { f: self, k }, x)
        }
    }
}

impl<const K: usize> fmt::Debug for F64Fn<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "F64Fn({:?}, up to order {})", self.name, K - 1)
    }
}

impl<const K: usize> UnaryOp for F64Fn<K> {
    fn func<T: Scalar>(&self, x: T) -> T {
        self.derivative(0, x)
    }

    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        self.derivative(1, x)
    }

    fn name(&self) -> &'static str {
        self.name
    }

    /// Panics with a message naming the function if `S` needs a higher order than it has.
    #[track_caller]
    fn apply<S: Scalar>(&self, x: S) -> S {
        match self.try_apply(x) {
            Ok(y) => y,
            Err(e) => panic!("perturb: {e}"),
        }
    }
}

/// The `k`-th derivative of an [`F64Fn`] as an operation: its derivative is the `k + 1`-th.
struct Derivative<'a, const K: usize> {
    f: &'a F64Fn<K>,
    k: usize,
}

impl<const K: usize> UnaryOp for Derivative<'_, K> {
    fn func<T: Scalar>(&self, x: T) -> T {
        self.f.derivative(self.k, x)
    }

    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        self.f.derivative(self.k + 1, x)
    }

    fn name(&self) -> &'static str {
        self.f.name
    }
}
