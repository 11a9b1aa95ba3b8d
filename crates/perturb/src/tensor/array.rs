//! [`Array`], a tensor perturb can differentiate through (plain, recorded on a tape, nested).
//! The operations it applies are [`Op`]s (in `op.rs`).

use std::fmt::Debug;

use super::dense::Tensor;
use super::element::Element;
// Re-exported for the operations' plain (panicking) forms, which import it from here.
pub(crate) use super::op::or_panic;
use super::op::Op;
use super::ops;
use crate::error::Error;
use crate::scalar::Scalar;

macro_rules! unary_methods {
    ($( $(#[$doc:meta])* $method:ident => $op:expr; )*) => {$(
        $(#[$doc])*
        #[track_caller]
        fn $method(&self) -> Self {
            or_panic(Self::apply(&$op, &[self]))
        }
    )*};
}

macro_rules! binary_methods {
    ($( $(#[$doc:meta])* $method:ident, $try_method:ident => $op:expr; )*) => {$(
        $(#[$doc])*
        ///
        /// An error (the `try_` form) or a panic (the plain form) if the shapes do not broadcast.
        #[track_caller]
        fn $try_method(&self, rhs: &Self) -> Result<Self, Error> {
            Self::apply(&$op, &[self, rhs])
        }
        $(#[$doc])*
        #[track_caller]
        fn $method(&self, rhs: &Self) -> Self {
            or_panic(self.$try_method(rhs))
        }
    )*};
}

/// A tensor perturb can differentiate through: a plain [`Tensor`], a
/// [`TensorVar`](super::TensorVar) recorded on a tape, or a nesting of them.
///
/// Every operation goes through [`apply`](Array::apply), so each array type says once how an
/// operation is run and (for tape variables) recorded. Code written against `A: Array` runs on
/// all of them.
///
/// ```
/// use perturb::tensor::{Array, Tensor, TensorTape};
///
/// // The lecture's linear regression loss, written once: L = sum((y - X w)^2) / N.
/// fn mse<A: Array>(x: &A, w: &A, y: &A) -> A {
///     let n = x.shape()[0] as f64;
///     y.sub(&x.matmul(w)).square().sum_all().scale(A::elem(1.0 / n))
/// }
///
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
/// let y = Tensor::from_vec(vec![1.0, 0.0, 2.0], &[3, 1]).unwrap();
/// let w = Tensor::from_vec(vec![0.5, -0.25], &[2, 1]).unwrap();
/// let plain = mse(&x, &w, &y);
///
/// let tape = TensorTape::new();
/// let wv = tape.var(w.clone());
/// let loss = mse(&tape.constant(x.clone()), &wv, &tape.constant(y.clone()));
/// assert_eq!(loss.value().to_vec(), plain.to_vec());
/// let grad = &tape.gradient(&loss, &[&wv]).unwrap()[0];
/// // dL/dw = -(2/N) X^T (y - X w)
/// let expected = x.transpose().matmul(&y.sub(&x.matmul(&w))).scale(-2.0 / 3.0);
/// assert!(grad.all_close(&expected, 1e-14));
/// ```
pub trait Array: Clone + Debug + Sized {
    /// The element type at the bottom: `f32` or `f64`.
    type Elem: Element;

    /// Runs an operation on arrays of this type (and records it, for tape variables).
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Array, Tensor};
    /// let y = Tensor::apply(&Exp, &[&Tensor::vector(&[0.0_f64])]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    #[track_caller]
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error>;

    /// A constant of this array type: not recorded, derivative zero.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let c = <Tensor<f64> as Array>::lift(Tensor::vector(&[1.0]));
    /// assert_eq!(c.shape(), &[1]);
    /// ```
    fn lift(value: Tensor<Self::Elem>) -> Self;

    /// `value` as a constant of the same array type as `self`: handy in closures, where the
    /// array type is inferred and has no name.
    ///
    /// ```
    /// use perturb::tensor::{grad, Array, Tensor};
    /// let w = Tensor::vector(&[2.0_f64, 3.0]);
    /// // d/dx sum(w * x) = w
    /// let g = grad(|x| x.constant_like(&w).try_mul(x).map(|y| y.sum_all()), &Tensor::ones(&[2])).unwrap();
    /// assert_eq!(g.to_vec(), w.to_vec());
    /// ```
    fn constant_like(&self, value: &Tensor<Self::Elem>) -> Self {
        Self::lift(value.clone())
    }

    /// The plain value at the bottom of any nesting.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[2.0_f64]).primal().to_vec(), vec![2.0]);
    /// ```
    fn primal(&self) -> Tensor<Self::Elem>;

    /// The shape.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Array::shape(&Tensor::<f64>::zeros(&[2, 3])), &[2, 3]);
    /// ```
    fn shape(&self) -> &[usize];

    /// The number of members, for a stack of arrays ([`Batched`](crate::tensor::Batched)):
    /// what a transform checks a cotangent's or tangent's stack against before using it, since
    /// a zero one is never combined with anything that would. `None` for a single array, the
    /// default.
    ///
    /// ```
    /// use perturb::tensor::{Array, Batched, Tensor};
    /// assert_eq!(Tensor::<f64>::zeros(&[3]).stack_size(), None);
    /// assert_eq!(Batched::stack(Tensor::<f64>::zeros(&[5, 2])).stack_size(), Some(5));
    /// ```
    fn stack_size(&self) -> Option<usize> {
        None
    }

    /// Whether this array is exactly zero at every level: its value, and for a nested array
    /// every derivative it carries (a tape variable is zero only as a constant). `false` where
    /// it cannot tell cheaply, the default. A backward sweep skips an operation whose
    /// cotangent is zero, so that a zero times an infinite slope does not give NaN.
    ///
    /// ```
    /// use perturb::tensor::{Array, DualTensor, Tensor};
    /// assert!(Tensor::<f64>::zeros(&[3]).is_zero());
    /// assert!(!Tensor::vector(&[0.0_f64, 1e-300]).is_zero());
    /// let dual = DualTensor::new(Tensor::<f64>::zeros(&[2]), Tensor::ones(&[2]));
    /// assert!(!dual.is_zero()); // its tangent is not
    /// ```
    fn is_zero(&self) -> bool {
        false
    }

    /// Whether this array type is the plain [`Tensor`]: [`lift`](Array::lift) and
    /// [`primal`](Array::primal) convert without loss, and no derivative or record is carried.
    /// A [`Deferred`](super::Deferred) array of a plain type runs chains of element-wise
    /// operations fused, block by block ([`fusion`](super::fusion)); any other type runs them
    /// one by one. `false` by default.
    ///
    /// ```
    /// use perturb::tensor::{Array, DualTensor, Tensor};
    /// assert!(<Tensor<f64> as Array>::PLAIN);
    /// assert!(!<DualTensor<Tensor<f64>> as Array>::PLAIN);
    /// ```
    const PLAIN: bool = false;

    /// Converts an `f64` to the element type (for constants in generic code).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(<Tensor<f32> as Array>::elem(0.5), 0.5_f32);
    /// ```
    fn elem(x: f64) -> Self::Elem {
        <Self::Elem as num_traits::FromPrimitive>::from_f64(x)
            .unwrap_or_else(num_traits::Float::nan)
    }

    /// Applies a user-defined [`Op`]; see its example.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Array, Tensor};
    /// let y = Tensor::vector(&[0.0_f64]).apply_op(&Exp).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    #[track_caller]
    fn apply_op<O: Op>(&self, op: &O) -> Result<Self, Error> {
        Self::apply(op, &[self])
    }

    // ---- Arithmetic with broadcasting ------------------------------------------------------
    binary_methods! {
        /// Element-wise `self + rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
        /// let b = Tensor::vector(&[10.0, 20.0]);
        /// assert_eq!(a.add(&b).to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
        /// assert!(a.try_add(&Tensor::vector(&[1.0, 2.0, 3.0])).is_err());
        /// ```
        add, try_add => ops::Add;
        /// Element-wise `self - rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).sub(&Tensor::vector(&[1.0])).to_vec(), vec![2.0]);
        /// ```
        sub, try_sub => ops::Sub;
        /// Element-wise `self * rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).mul(&Tensor::vector(&[2.0])).to_vec(), vec![6.0]);
        /// ```
        mul, try_mul => ops::Mul;
        /// Element-wise `self / rhs`, with numpy broadcasting.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).div(&Tensor::vector(&[2.0])).to_vec(), vec![1.5]);
        /// ```
        div, try_div => ops::Div;
    }

    /// `c * self` for a constant `c`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[3.0_f64]).scale(2.0).to_vec(), vec![6.0]);
    /// ```
    #[track_caller]
    fn scale(&self, c: Self::Elem) -> Self {
        or_panic(Self::apply(&ops::Scale(c.to_f64_value()), &[self]))
    }

    /// `self + c` for a constant `c`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[3.0_f64]).add_scalar(2.0).to_vec(), vec![5.0]);
    /// ```
    #[track_caller]
    fn add_scalar(&self, c: Self::Elem) -> Self {
        or_panic(Self::apply(&ops::AddScalar(c.to_f64_value()), &[self]))
    }

    // ---- Element-wise functions -----------------------------------------------------------
    unary_methods! {
        /// `-x`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[1.0_f64]).neg().to_vec(), vec![-1.0]);
        /// ```
        neg => ops::Neg;
        /// `exp(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).exp().to_vec(), vec![1.0]);
        /// ```
        exp => ops::Exp;
        /// `ln(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[1.0_f64]).ln().to_vec(), vec![0.0]);
        /// ```
        ln => ops::Ln;
        /// `x^2`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[3.0_f64]).square().to_vec(), vec![9.0]);
        /// ```
        square => ops::Square;
        /// The logistic sigmoid, stable for large `|x|`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).sigmoid().to_vec(), vec![0.5]);
        /// ```
        sigmoid => ops::Sigmoid;
    }
    // ---- Element-wise functions: more (helper A) ----
    unary_methods! {
        /// `sqrt(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[4.0_f64, 9.0]).sqrt().to_vec(), vec![2.0, 3.0]);
        /// ```
        sqrt => ops::Sqrt;
        /// `|x|`; its derivative is taken as 0 at 0.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[-2.0_f64, 3.0]).abs().to_vec(), vec![2.0, 3.0]);
        /// ```
        abs => ops::Abs;
        /// `sin(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).sin().to_vec(), vec![0.0]);
        /// ```
        sin => ops::Sin;
        /// `cos(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64]).cos().to_vec(), vec![1.0]);
        /// ```
        cos => ops::Cos;
        /// `tanh(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[0.0_f64, 1.0]).tanh().to_vec(), vec![0.0, 1.0_f64.tanh()]);
        /// ```
        tanh => ops::Tanh;
        /// `max(x, 0)` (NaN passes through); its derivative is taken as 0 at 0.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[-1.0_f64, 2.0]).relu().to_vec(), vec![0.0, 2.0]);
        /// ```
        relu => ops::Relu;
        /// `ln(1 + exp(x))`, stable for large `|x|`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// // ln 2 at 0; exactly x far out on the right, exp(x) (here 0) far out on the left
        /// let y = Tensor::vector(&[0.0_f64, 800.0, -800.0]).softplus();
        /// assert_eq!(y.to_vec(), vec![2.0_f64.ln(), 800.0, 0.0]);
        /// ```
        softplus => ops::Softplus;
        /// `ln(sigmoid(x)) = -softplus(-x)`, stable for large `|x|`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// // -ln 2 at 0; about x far out on the left
        /// let y = Tensor::vector(&[0.0_f64, -800.0]).log_sigmoid();
        /// assert_eq!(y.to_vec(), vec![-(2.0_f64.ln()), -800.0]);
        /// ```
        log_sigmoid => ops::LogSigmoid;
        /// `1 / x`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// assert_eq!(Tensor::vector(&[4.0_f64, -0.5]).recip().to_vec(), vec![0.25, -2.0]);
        /// ```
        recip => ops::Recip;
    }
    // ---- Element-wise functions: issue 15 ----
    unary_methods! {
        /// `ln(1 + x)`, accurate near 0.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// // ln(1 + 1e-20) = 1e-20 to double precision; ln of the rounded 1 + 1e-20 is 0.
        /// assert_eq!(Tensor::vector(&[1e-20_f64, 0.0]).log1p().to_vec(), vec![1e-20, 0.0]);
        /// ```
        log1p => ops::Log1p;
        /// `exp(x) - 1`, accurate near 0.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// // exp(1e-20) - 1 = 1e-20 to double precision; exp rounds to 1 and the difference is 0.
        /// assert_eq!(Tensor::vector(&[1e-20_f64, 0.0]).expm1().to_vec(), vec![1e-20, 0.0]);
        /// ```
        expm1 => ops::Expm1;
        /// The error function `erf(x) = 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x`
        /// (libm's); derivative `2 / sqrt(pi) exp(-x^2)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let y = Tensor::vector(&[0.0_f64, 1.0, -30.0]).erf();
        /// // erf(1) = 0.8427007929497149 (Abramowitz and Stegun, table 7.1)
        /// assert_eq!(y.to_vec(), vec![0.0, 0.8427007929497149, -1.0]);
        /// ```
        erf => ops::Erf;
        /// GELU, exact: `x Phi(x)`, `Phi` the standard normal distribution function, accurate
        /// in both tails; derivative `Phi(x) + x phi(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let y = Tensor::vector(&[0.0_f64, 40.0, -40.0]).gelu();
        /// assert_eq!(y.to_vec(), vec![0.0, 40.0, -0.0]);
        /// // gelu(1) = Phi(1) = 0.8413447460685429 (the normal table)
        /// assert!((Tensor::vector(&[1.0_f64]).gelu().to_vec()[0] - 0.8413447460685429).abs() < 2e-16);
        /// ```
        gelu => ops::Gelu;
        /// GELU, the tanh approximation: `x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2`,
        /// computed without the left tail's cancellation (see [`GeluTanh`](ops::GeluTanh)).
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let x = Tensor::vector(&[0.5_f64, 40.0]);
        /// let tanh_form = |x: f64| {
        ///     0.5 * x * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        /// };
        /// let y = x.gelu_tanh().to_vec();
        /// assert!((y[0] - tanh_form(0.5)).abs() < 1e-16);
        /// assert_eq!(y[1], 40.0);
        /// ```
        gelu_tanh => ops::GeluTanh;
        /// SiLU (swish): `x sigmoid(x)`, finite everywhere; derivative
        /// `sigmoid(x) + x sigmoid'(x)`.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let y = Tensor::vector(&[0.0_f64, 800.0, -800.0]).silu();
        /// assert_eq!(y.to_vec(), vec![0.0, 800.0, -0.0]);
        /// ```
        silu => ops::Silu;
    }

    /// `x^p` for a constant exponent `p` (`x.powf(p)` element-wise); derivative `p x^(p-1)`,
    /// and 0 for `p = 0`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[2.0_f64, 9.0]).pow_scalar(0.5).to_vec(), vec![2.0_f64.sqrt(), 3.0]);
    /// ```
    #[track_caller]
    fn pow_scalar(&self, p: Self::Elem) -> Self {
        or_panic(Self::apply(&ops::PowScalar(p.to_f64_value()), &[self]))
    }

    binary_methods! {
        /// Element-wise `self^rhs` (`powf`), with numpy broadcasting. The derivative in the
        /// exponent is taken as 0 where the base is not positive.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[2.0_f64, 3.0]);
        /// assert_eq!(a.pow(&Tensor::vector(&[3.0, 2.0])).to_vec(), vec![8.0, 9.0]);
        /// ```
        pow, try_pow => ops::Pow;
    }
    // ---- end of element-wise functions ----

    // ---- Comparisons, selection, clamp, maximum / minimum (helper A) ----
    binary_methods! {
        /// Element-wise `self == rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable: no gradient flows through it.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 2.0]);
        /// assert_eq!(a.equal(&Tensor::scalar(2.0)).to_vec(), vec![0.0, 1.0]);
        /// ```
        equal, try_equal => ops::Compare(ops::CmpKind::Eq);
        /// Element-wise `self != rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, f64::NAN]);
        /// assert_eq!(a.not_equal(&Tensor::scalar(1.0)).to_vec(), vec![0.0, 1.0]);
        /// ```
        not_equal, try_not_equal => ops::Compare(ops::CmpKind::Ne);
        /// Element-wise `self < rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
        /// assert_eq!(a.less(&Tensor::scalar(2.0)).to_vec(), vec![1.0, 0.0, 0.0]);
        /// ```
        less, try_less => ops::Compare(ops::CmpKind::Lt);
        /// Element-wise `self <= rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
        /// assert_eq!(a.less_equal(&Tensor::scalar(2.0)).to_vec(), vec![1.0, 1.0, 0.0]);
        /// ```
        less_equal, try_less_equal => ops::Compare(ops::CmpKind::Le);
        /// Element-wise `self > rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
        /// assert_eq!(a.greater(&Tensor::scalar(2.0)).to_vec(), vec![0.0, 0.0, 1.0]);
        /// ```
        greater, try_greater => ops::Compare(ops::CmpKind::Gt);
        /// Element-wise `self >= rhs` as a mask (1 where it holds, else 0), with numpy
        /// broadcasting. Not differentiable.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
        /// assert_eq!(a.greater_equal(&Tensor::scalar(2.0)).to_vec(), vec![0.0, 1.0, 1.0]);
        /// ```
        greater_equal, try_greater_equal => ops::Compare(ops::CmpKind::Ge);
        /// The element-wise maximum, with numpy broadcasting; NaN where either is (as
        /// `np.maximum`). At a tie each argument gets half of the derivative; where a NaN
        /// decided, neither gets any.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 5.0, f64::NAN]);
        /// let m = a.maximum(&Tensor::scalar(2.0)).to_vec();
        /// assert_eq!((m[0], m[1], m[2].is_nan()), (2.0, 5.0, true));
        /// ```
        maximum, try_maximum => ops::Maximum;
        /// The element-wise minimum, with numpy broadcasting; NaN where either is (as
        /// `np.minimum`). At a tie each argument gets half of the derivative; where a NaN
        /// decided, neither gets any.
        ///
        /// ```
        /// use perturb::tensor::{Array, Tensor};
        /// let a = Tensor::vector(&[1.0_f64, 5.0, f64::NAN]);
        /// let m = a.minimum(&Tensor::scalar(2.0)).to_vec();
        /// assert_eq!((m[0], m[1], m[2].is_nan()), (1.0, 2.0, true));
        /// ```
        minimum, try_minimum => ops::Minimum;
    }

    /// Selection by a mask (numpy's `where`): `on_true` where `self != 0`, else `on_false`, the
    /// three broadcast together. The gradient flows to the branch that was chosen, none to the
    /// mask. An error if the shapes do not broadcast.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let x = Tensor::vector(&[-1.0_f64, 2.0]);
    /// let mask = x.greater(&Tensor::scalar(0.0));
    /// let y = mask.try_select(&x, &x.neg().scale(0.1)).unwrap(); // a leaky relu
    /// assert_eq!(y.to_vec(), vec![0.1, 2.0]);
    /// assert!(mask.try_select(&x, &Tensor::vector(&[1.0, 2.0, 3.0])).is_err());
    /// ```
    #[track_caller]
    fn try_select(&self, on_true: &Self, on_false: &Self) -> Result<Self, Error> {
        Self::apply(&ops::Where, &[self, on_true, on_false])
    }

    /// See [`try_select`](Array::try_select); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let mask = Tensor::from_vec(vec![1.0_f64, 0.0], &[2, 1]).unwrap();
    /// let y = mask.select(&Tensor::vector(&[1.0, 2.0]), &Tensor::scalar(0.0));
    /// assert_eq!(y.to_vec(), vec![1.0, 2.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    fn select(&self, on_true: &Self, on_false: &Self) -> Self {
        or_panic(self.try_select(on_true, on_false))
    }

    /// Clamps every element to `[min, max]` (NaN passes through). The derivative is 1 where
    /// `min <= x <= max`, the bounds included (PyTorch's convention), else 0. An error if
    /// `min > max` or either bound is NaN.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let x = Tensor::vector(&[-2.0_f64, 0.5, 3.0]);
    /// assert_eq!(x.try_clamp(0.0, 1.0).unwrap().to_vec(), vec![0.0, 0.5, 1.0]);
    /// assert!(x.try_clamp(1.0, 0.0).is_err());
    /// ```
    #[track_caller]
    fn try_clamp(&self, min: Self::Elem, max: Self::Elem) -> Result<Self, Error> {
        let op = ops::Clamp {
            min: min.to_f64_value(),
            max: max.to_f64_value(),
        };
        Self::apply(&op, &[self])
    }

    /// See [`try_clamp`](Array::try_clamp); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[-2.0_f64, 3.0]).clamp(-1.0, 1.0).to_vec(), vec![-1.0, 1.0]);
    /// ```
    #[track_caller]
    fn clamp(&self, min: Self::Elem, max: Self::Elem) -> Self {
        or_panic(self.try_clamp(min, max))
    }
    // ---- end of comparisons ----

    // ---- Reductions -----------------------------------------------------------------------
    /// The sum of all elements, as a 0-dimensional array.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, 2.0]).sum_all().to_vec(), vec![3.0]);
    /// ```
    #[track_caller]
    fn sum_all(&self) -> Self {
        or_panic(Self::apply(&ops::SumTo(Vec::new()), &[self]))
    }

    /// Sums down to `shape`, a shape this array's shape is a broadcast of (the adjoint of
    /// [`try_broadcast_to`](Array::try_broadcast_to)).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::ones(&[2, 3]);
    /// assert_eq!(a.try_sum_to(&[1, 3]).unwrap().to_vec(), vec![2.0; 3]);
    /// assert!(a.try_sum_to(&[2, 2]).is_err());
    /// ```
    #[track_caller]
    fn try_sum_to(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::SumTo(shape.to_vec()), &[self])
    }

    /// Copies along axes of length 1 (and new leading axes) to reach `shape`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(a.try_broadcast_to(&[2, 2]).unwrap().to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    fn try_broadcast_to(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::BroadcastTo(shape.to_vec()), &[self])
    }

    // ---- Reductions: over axes, softmax (helper B) ----
    /// The sum over `axes` (each an axis of `self`, none repeated; an empty list reduces over
    /// none); with `keepdims` the reduced axes stay with length 1.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(a.try_sum_axes(&[0], false).unwrap().to_vec(), vec![5.0, 7.0, 9.0]);
    /// assert_eq!(a.try_sum_axes(&[1], true).unwrap().shape(), &[2, 1]);
    /// assert!(a.try_sum_axes(&[2], false).is_err()); // no axis 2
    /// assert!(a.try_sum_axes(&[1, 1], false).is_err()); // repeated
    /// ```
    #[track_caller]
    fn try_sum_axes(&self, axes: &[usize], keepdims: bool) -> Result<Self, Error> {
        Self::apply(
            &ops::SumAxes {
                axes: axes.to_vec(),
                keepdims,
            },
            &[self],
        )
    }

    /// See [`try_sum_axes`](Array::try_sum_axes); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::ones(&[2, 3, 4]);
    /// let s = a.sum_axes(&[0, 2], false);
    /// assert_eq!((s.shape(), s.to_vec()), (&[3][..], vec![8.0; 3]));
    /// ```
    #[track_caller]
    fn sum_axes(&self, axes: &[usize], keepdims: bool) -> Self {
        or_panic(self.try_sum_axes(axes, keepdims))
    }

    /// The mean over `axes` (see [`try_sum_axes`](Array::try_sum_axes) for the axes). Over an
    /// empty axis it is NaN (0 / 0), as in numpy, JAX and PyTorch.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(a.try_mean_axes(&[1], false).unwrap().to_vec(), vec![2.0, 5.0]);
    /// assert!(a.try_mean_axes(&[3], false).is_err());
    /// let empty = Tensor::<f64>::zeros(&[0]);
    /// assert!(empty.try_mean_axes(&[0], false).unwrap().item().unwrap().is_nan());
    /// ```
    #[track_caller]
    fn try_mean_axes(&self, axes: &[usize], keepdims: bool) -> Result<Self, Error> {
        Self::apply(
            &ops::MeanAxes {
                axes: axes.to_vec(),
                keepdims,
            },
            &[self],
        )
    }

    /// See [`try_mean_axes`](Array::try_mean_axes); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.mean_axes(&[0, 1], false).to_vec(), vec![2.5]);
    /// ```
    #[track_caller]
    fn mean_axes(&self, axes: &[usize], keepdims: bool) -> Self {
        or_panic(self.try_mean_axes(axes, keepdims))
    }

    /// The maximum over `axes` (see [`try_sum_axes`](Array::try_sum_axes) for the axes); NaN
    /// where a reduced element is NaN, an error over an empty axis. Its gradient goes to the
    /// positions of the maximum, split evenly among ties (nowhere where the maximum is NaN).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0, 4.0, 2.0], &[2, 3]).unwrap();
    /// assert_eq!(a.try_max_axes(&[1], false).unwrap().to_vec(), vec![7.0, 4.0]);
    /// assert!(Tensor::<f64>::zeros(&[2, 0]).try_max_axes(&[1], false).is_err());
    ///
    /// let tape = TensorTape::new();
    /// let x = tape.var(a);
    /// let g = tape.gradient(&x.max_axes(&[1], false).sum_all(), &[&x]).unwrap();
    /// assert_eq!(g[0].to_vec(), vec![0.0, 1.0, 0.0, 0.5, 0.5, 0.0]); // a tie in row 1
    /// ```
    #[track_caller]
    fn try_max_axes(&self, axes: &[usize], keepdims: bool) -> Result<Self, Error> {
        Self::apply(
            &ops::MaxAxes {
                axes: axes.to_vec(),
                keepdims,
            },
            &[self],
        )
    }

    /// See [`try_max_axes`](Array::try_max_axes); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, -2.0, 0.5]);
    /// assert_eq!(a.max_axes(&[0], true).to_vec(), vec![1.0]);
    /// ```
    #[track_caller]
    fn max_axes(&self, axes: &[usize], keepdims: bool) -> Self {
        or_panic(self.try_max_axes(axes, keepdims))
    }

    /// The minimum over `axes`; see [`try_max_axes`](Array::try_max_axes).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0, 4.0, 2.0], &[2, 3]).unwrap();
    /// assert_eq!(a.try_min_axes(&[0], false).unwrap().to_vec(), vec![1.0, 4.0, 2.0]);
    /// assert!(a.try_min_axes(&[0, 2], false).is_err());
    /// ```
    #[track_caller]
    fn try_min_axes(&self, axes: &[usize], keepdims: bool) -> Result<Self, Error> {
        Self::apply(
            &ops::MinAxes {
                axes: axes.to_vec(),
                keepdims,
            },
            &[self],
        )
    }

    /// See [`try_min_axes`](Array::try_min_axes); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, -2.0, 0.5]);
    /// assert_eq!(a.min_axes(&[0], false).to_vec(), vec![-2.0]);
    /// ```
    #[track_caller]
    fn min_axes(&self, axes: &[usize], keepdims: bool) -> Self {
        or_panic(self.try_min_axes(axes, keepdims))
    }

    /// `ln(sum(exp(x)))` over `axes` (see [`try_sum_axes`](Array::try_sum_axes) for the axes),
    /// computed with the maximum subtracted, so it is accurate for large `|x|`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[800.0_f64, 800.0]);
    /// // ln(e^800 + e^800) = 800 + ln 2, although e^800 overflows.
    /// assert_eq!(a.try_logsumexp(&[0], false).unwrap().to_vec(), vec![800.0 + 2.0_f64.ln()]);
    /// assert!(a.try_logsumexp(&[1], false).is_err());
    /// ```
    #[track_caller]
    fn try_logsumexp(&self, axes: &[usize], keepdims: bool) -> Result<Self, Error> {
        Self::apply(
            &ops::LogSumExp {
                axes: axes.to_vec(),
                keepdims,
            },
            &[self],
        )
    }

    /// See [`try_logsumexp`](Array::try_logsumexp); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![0.0_f64, 0.0, 1.0, 1.0], &[2, 2]).unwrap();
    /// let y = a.logsumexp(&[1], true);
    /// // ln(2 e^0) = ln 2 and ln(2 e^1) = 1 + ln 2
    /// assert_eq!(y.shape(), &[2, 1]);
    /// assert_eq!(y.to_vec(), vec![2.0_f64.ln(), 1.0 + 2.0_f64.ln()]);
    /// ```
    #[track_caller]
    fn logsumexp(&self, axes: &[usize], keepdims: bool) -> Self {
        or_panic(self.try_logsumexp(axes, keepdims))
    }

    /// `exp(x) / sum(exp(x))` along `axis`, computed with the maximum subtracted (no overflow).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![0.0_f64, 0.0, 1000.0, 1000.0], &[2, 2]).unwrap();
    /// assert_eq!(a.try_softmax(1).unwrap().to_vec(), vec![0.5; 4]);
    /// assert!(a.try_softmax(2).is_err());
    /// ```
    #[track_caller]
    fn try_softmax(&self, axis: usize) -> Result<Self, Error> {
        Self::apply(&ops::Softmax { axis }, &[self])
    }

    /// See [`try_softmax`](Array::try_softmax); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let p = Tensor::vector(&[0.0_f64, 2.0_f64.ln()]).softmax(0);
    /// // e^0 : e^ln2 = 1 : 2
    /// assert!(p.all_close(&Tensor::vector(&[1.0 / 3.0, 2.0 / 3.0]), 1e-15));
    /// ```
    #[track_caller]
    fn softmax(&self, axis: usize) -> Self {
        or_panic(self.try_softmax(axis))
    }

    /// `x - logsumexp(x)` along `axis`: the logarithm of the softmax, finite for large `|x|`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[-1000.0_f64, 0.0]);
    /// let y = a.try_log_softmax(0).unwrap();
    /// // -1000 - ln(e^-1000 + 1) = -1000 to double precision, and 0 - ln(1 + e^-1000) = 0.
    /// assert_eq!(y.to_vec(), vec![-1000.0, 0.0]);
    /// assert!(a.try_log_softmax(1).is_err());
    /// ```
    #[track_caller]
    fn try_log_softmax(&self, axis: usize) -> Result<Self, Error> {
        Self::apply(&ops::LogSoftmax { axis }, &[self])
    }

    /// See [`try_log_softmax`](Array::try_log_softmax); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let y = Tensor::vector(&[3.0_f64, 3.0]).log_softmax(0);
    /// assert_eq!(y.to_vec(), vec![-(2.0_f64.ln()); 2]); // ln(1/2) each
    /// ```
    #[track_caller]
    fn log_softmax(&self, axis: usize) -> Self {
        or_panic(self.try_log_softmax(axis))
    }

    // ---- Over all axes, cumulative sums, positions of extrema (issue 15) ----
    /// The mean of all elements, as a 0-dimensional array (NaN for no element, as
    /// [`try_mean_axes`](Array::try_mean_axes)).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 6.0], &[2, 2]).unwrap();
    /// let m = a.mean_all();
    /// assert_eq!((m.shape(), m.to_vec()), (&[][..], vec![3.0]));
    /// ```
    #[track_caller]
    fn mean_all(&self) -> Self {
        or_panic(self.try_mean_axes(&every_axis(self), false))
    }

    /// The maximum of all elements, as a 0-dimensional array: NaN if any element is, an error
    /// if there is no element. Its gradient is [`try_max_axes`](Array::try_max_axes)'s.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.try_max_all().unwrap().to_vec(), vec![7.0]);
    /// assert!(Tensor::<f64>::zeros(&[2, 0]).try_max_all().is_err());
    /// ```
    #[track_caller]
    fn try_max_all(&self) -> Result<Self, Error> {
        self.try_max_axes(&every_axis(self), false)
    }

    /// See [`try_max_all`](Array::try_max_all); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, -2.0]).max_all().to_vec(), vec![1.0]);
    /// ```
    #[track_caller]
    fn max_all(&self) -> Self {
        or_panic(self.try_max_all())
    }

    /// The minimum of all elements; see [`try_max_all`](Array::try_max_all).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, -3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.try_min_all().unwrap().to_vec(), vec![-3.0]);
    /// assert!(Tensor::<f64>::zeros(&[0]).try_min_all().is_err());
    /// ```
    #[track_caller]
    fn try_min_all(&self) -> Result<Self, Error> {
        self.try_min_axes(&every_axis(self), false)
    }

    /// See [`try_min_all`](Array::try_min_all); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, -2.0]).min_all().to_vec(), vec![-2.0]);
    /// ```
    #[track_caller]
    fn min_all(&self) -> Self {
        or_panic(self.try_min_all())
    }

    /// `ln(sum(exp(x)))` over all elements, as a 0-dimensional array, accurate for large `|x|`
    /// (see [`try_logsumexp`](Array::try_logsumexp)); `-inf` for no element.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![800.0_f64; 4], &[2, 2]).unwrap();
    /// // ln(4 e^800) = 800 + ln 4, although e^800 overflows.
    /// assert_eq!(a.logsumexp_all().to_vec(), vec![800.0 + 4.0_f64.ln()]);
    /// ```
    #[track_caller]
    fn logsumexp_all(&self) -> Self {
        or_panic(self.try_logsumexp(&every_axis(self), false))
    }

    /// The cumulative sum along `axis`: entry `k` is the sum of entries `0..=k`. Its
    /// derivative is the cumulative sum of the tangent, and its gradient the cotangent summed
    /// from the other end ([`CumSum`](ops::CumSum)). An error if `axis` is not an axis of `self`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.try_cumsum(0).unwrap().to_vec(), vec![1.0, 2.0, 4.0, 6.0]);
    /// assert!(a.try_cumsum(2).is_err());
    /// ```
    #[track_caller]
    fn try_cumsum(&self, axis: usize) -> Result<Self, Error> {
        Self::apply(
            &ops::CumSum {
                axis,
                reverse: false,
            },
            &[self],
        )
    }

    /// See [`try_cumsum`](Array::try_cumsum); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, 2.0, 3.0]).cumsum(0).to_vec(), vec![1.0, 3.0, 6.0]);
    /// ```
    #[track_caller]
    fn cumsum(&self, axis: usize) -> Self {
        or_panic(self.try_cumsum(axis))
    }

    /// The position of the maximum along `axis`, for each position off it: integers, not
    /// differentiable. Ties go to the first position; a NaN counts as the maximum (the first
    /// NaN's position), as in numpy, so the position holds what
    /// [`try_max_axes`](Array::try_max_axes) returns. Read from the plain value
    /// ([`primal`](Array::primal)), so any array type gives it; a [`Batched`](super::Batched)
    /// stack gives each member's, the stack's axis first. An error if `axis` is not an axis of
    /// `self`, or if it is empty (and there are positions off it).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 7.0, 4.0, f64::NAN, 9.0], &[2, 3]).unwrap();
    /// // Row 0: a tie, the first 7 wins. Row 1: the NaN.
    /// assert_eq!(a.try_argmax(1).unwrap().as_slice(), &[1, 1]);
    /// assert!(a.try_argmax(2).is_err());
    /// assert!(Tensor::<f64>::zeros(&[2, 0]).try_argmax(1).is_err());
    /// ```
    #[track_caller]
    fn try_argmax(&self, axis: usize) -> Result<ops::Indices, Error> {
        ops::argmax(self, axis)
    }

    /// See [`try_argmax`](Array::try_argmax); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.argmax(0).as_slice(), &[1, 0]);
    /// ```
    #[track_caller]
    fn argmax(&self, axis: usize) -> ops::Indices {
        or_panic(self.try_argmax(axis))
    }

    /// The position of the minimum along `axis`; see [`try_argmax`](Array::try_argmax) (a NaN
    /// counts as the minimum here, as in numpy and as [`try_min_axes`](Array::try_min_axes)).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 1.0, 0.0, f64::NAN], &[2, 2]).unwrap();
    /// assert_eq!(a.try_argmin(1).unwrap().as_slice(), &[0, 1]);
    /// assert!(a.try_argmin(2).is_err());
    /// ```
    #[track_caller]
    fn try_argmin(&self, axis: usize) -> Result<ops::Indices, Error> {
        ops::argmin(self, axis)
    }

    /// See [`try_argmin`](Array::try_argmin); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// assert_eq!(a.argmin(1).as_slice(), &[0, 0]);
    /// ```
    #[track_caller]
    fn argmin(&self, axis: usize) -> ops::Indices {
        or_panic(self.try_argmin(axis))
    }
    // ---- end of reductions ----

    // ---- Shape ----------------------------------------------------------------------------
    /// The same elements in a new shape of the same size.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::arange(6);
    /// assert_eq!(Array::try_reshape(&a, &[2, 3]).unwrap().shape(), &[2, 3]);
    /// ```
    #[track_caller]
    fn try_reshape(&self, shape: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::Reshape(shape.to_vec()), &[self])
    }

    /// Reorders the axes: axis `i` of the result is axis `perm[i]` of `self`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::zeros(&[2, 3, 4]);
    /// assert_eq!(a.try_permute(&[2, 0, 1]).unwrap().shape(), &[4, 2, 3]);
    /// assert!(a.try_permute(&[0, 0, 1]).is_err());
    /// ```
    #[track_caller]
    fn try_permute(&self, perm: &[usize]) -> Result<Self, Error> {
        Self::apply(&ops::Permute(perm.to_vec()), &[self])
    }

    /// Swaps the last two axes (the matrix transpose).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// assert_eq!(a.transpose().to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// ```
    #[track_caller]
    fn transpose(&self) -> Self {
        let n = self.shape().len();
        let mut perm: Vec<usize> = (0..n).collect();
        if n >= 2 {
            perm.swap(n - 1, n - 2);
        }
        or_panic(self.try_permute(&perm))
    }

    // ---- Shape: more (helper B) ----
    /// Removes `axis`, which must have length 1.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::zeros(&[2, 1, 3]);
    /// assert_eq!(a.try_squeeze(1).unwrap().shape(), &[2, 3]);
    /// assert!(a.try_squeeze(0).is_err()); // length 2
    /// assert!(a.try_squeeze(3).is_err()); // no axis 3
    /// ```
    #[track_caller]
    fn try_squeeze(&self, axis: usize) -> Result<Self, Error> {
        let shape = self.shape();
        if shape.get(axis) != Some(&1) {
            return Err(Error::InvalidArgument {
                op: "squeeze",
                reason: format!("axis {axis} of a tensor of shape {shape:?} is not of length 1"),
            });
        }
        let mut new = shape.to_vec();
        new.remove(axis);
        self.try_reshape(&new)
    }

    /// See [`try_squeeze`](Array::try_squeeze); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::<f64>::zeros(&[1, 4]).squeeze(0).shape(), &[4]);
    /// ```
    #[track_caller]
    fn squeeze(&self, axis: usize) -> Self {
        or_panic(self.try_squeeze(axis))
    }

    /// Removes every axis of length 1.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0], &[1, 2, 1]).unwrap();
    /// let s = a.squeeze_all();
    /// assert_eq!((s.shape(), s.to_vec()), (&[2][..], vec![1.0, 2.0]));
    /// ```
    #[track_caller]
    fn squeeze_all(&self) -> Self {
        let new: Vec<usize> = self.shape().iter().copied().filter(|&n| n != 1).collect();
        or_panic(self.try_reshape(&new))
    }

    /// Inserts an axis of length 1 at position `axis` (at most the number of axes).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::zeros(&[2, 3]);
    /// assert_eq!(a.try_unsqueeze(0).unwrap().shape(), &[1, 2, 3]);
    /// assert_eq!(a.try_unsqueeze(2).unwrap().shape(), &[2, 3, 1]);
    /// assert!(a.try_unsqueeze(3).is_err());
    /// ```
    #[track_caller]
    fn try_unsqueeze(&self, axis: usize) -> Result<Self, Error> {
        let shape = self.shape();
        if axis > shape.len() {
            return Err(Error::InvalidArgument {
                op: "unsqueeze",
                reason: format!(
                    "cannot insert axis {axis} into a tensor of shape {shape:?} ({} axes)",
                    shape.len()
                ),
            });
        }
        let mut new = shape.to_vec();
        new.insert(axis, 1);
        self.try_reshape(&new)
    }

    /// See [`try_unsqueeze`](Array::try_unsqueeze); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, 2.0]).unsqueeze(1).shape(), &[2, 1]);
    /// ```
    #[track_caller]
    fn unsqueeze(&self, axis: usize) -> Self {
        or_panic(self.try_unsqueeze(axis))
    }

    /// The entries `start .. start + len` along `axis`; an error if they are not all inside.
    /// Its gradient is the cotangent padded back with zeros. When the entries are one
    /// contiguous run (every axis before `axis` has length 1, as for rows of a matrix or a
    /// window of a vector) the result shares the tensor's buffer: no copy.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
    /// assert_eq!(a.try_narrow(0, 1, 2).unwrap().to_vec(), vec![3.0, 4.0, 5.0, 6.0]);
    /// assert!(a.try_narrow(0, 2, 2).is_err()); // rows 2..4 of 3
    ///
    /// let tape = TensorTape::new();
    /// let x = tape.var(a);
    /// let g = tape.gradient(&x.narrow(1, 1, 1).sum_all(), &[&x]).unwrap();
    /// assert_eq!(g[0].to_vec(), vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    fn try_narrow(&self, axis: usize, start: usize, len: usize) -> Result<Self, Error> {
        Self::apply(&ops::Narrow { axis, start, len }, &[self])
    }

    /// See [`try_narrow`](Array::try_narrow); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::<f64>::arange(5).narrow(0, 1, 3).to_vec(), vec![1.0, 2.0, 3.0]);
    /// ```
    #[track_caller]
    fn narrow(&self, axis: usize, start: usize, len: usize) -> Self {
        or_panic(self.try_narrow(axis, start, len))
    }

    /// The entries in `range` along `axis`: [`try_narrow`](Array::try_narrow) with a range.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::arange(6);
    /// assert_eq!(a.try_slice(0, 2..5).unwrap().to_vec(), vec![2.0, 3.0, 4.0]);
    /// assert!(a.try_slice(0, 4..7).is_err());
    /// assert!(a.try_slice(0, 3..2).is_err()); // a reversed range
    /// ```
    #[track_caller]
    fn try_slice(&self, axis: usize, range: std::ops::Range<usize>) -> Result<Self, Error> {
        if range.end < range.start {
            return Err(Error::InvalidArgument {
                op: "slice",
                reason: format!(
                    "the range {range:?} along axis {axis} of a tensor of shape {:?} ends \
                     before it starts",
                    self.shape()
                ),
            });
        }
        let shape = self.shape();
        if axis >= shape.len() || range.end > shape[axis] {
            return Err(Error::InvalidArgument {
                op: "slice",
                reason: match shape.get(axis) {
                    None => format!(
                        "axis {axis} is out of range for a tensor of shape {shape:?} ({} axes)",
                        shape.len()
                    ),
                    Some(len) => format!(
                        "the range {range:?} is out of range for axis {axis} of length {len} \
                         (shape {shape:?})"
                    ),
                },
            });
        }
        self.try_narrow(axis, range.start, range.end - range.start)
    }
    // ---- end of shape ----

    // ---- Indexing and joining (helper B) ----
    /// The entries `indices` along `axis`, in that order (repeats allowed); an error names an
    /// index out of range. Its gradient adds the cotangent back at those entries.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// let s = a.try_index_select(1, vec![2, 0, 2]).unwrap();
    /// assert_eq!(s.to_vec(), vec![3.0, 1.0, 3.0, 6.0, 4.0, 6.0]);
    /// assert!(a.try_index_select(1, vec![3]).is_err());
    /// ```
    #[track_caller]
    fn try_index_select(&self, axis: usize, indices: Vec<usize>) -> Result<Self, Error> {
        Self::apply(
            &ops::IndexSelect {
                axis,
                indices: indices.into(),
            },
            &[self],
        )
    }

    /// See [`try_index_select`](Array::try_index_select); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[10.0_f64, 20.0, 30.0]);
    /// assert_eq!(a.index_select(0, vec![1, 1]).to_vec(), vec![20.0, 20.0]);
    /// ```
    #[track_caller]
    fn index_select(&self, axis: usize, indices: Vec<usize>) -> Self {
        or_panic(self.try_index_select(axis, indices))
    }

    /// The adjoint of [`try_index_select`](Array::try_index_select): zeros of length `len`
    /// along `axis`, with entry `j` of `self` added at entry `indices[j]`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(a.try_index_add(0, vec![2, 2], 3).unwrap().to_vec(), vec![0.0, 0.0, 3.0]);
    /// assert!(a.try_index_add(0, vec![0, 3], 3).is_err());
    /// ```
    #[track_caller]
    fn try_index_add(&self, axis: usize, indices: Vec<usize>, len: usize) -> Result<Self, Error> {
        Self::apply(
            &ops::IndexAdd {
                axis,
                indices: indices.into(),
                len,
            },
            &[self],
        )
    }

    /// Gathers along `axis`, like `torch.gather`: `index` (row-major, of shape `index_shape`,
    /// as many axes as `self` and no longer on any other axis) picks, for each of its
    /// positions, the entry along `axis`; the result has the index's shape.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// // Per row, one column: row 0 takes column 2, row 1 takes column 0.
    /// let g = a.try_gather(1, vec![2, 0], &[2, 1]).unwrap();
    /// assert_eq!(g.to_vec(), vec![3.0, 4.0]);
    /// assert!(a.try_gather(1, vec![2, 3], &[2, 1]).is_err()); // column 3 of 3
    /// assert!(a.try_gather(1, vec![0, 0], &[2]).is_err()); // the index needs 2 axes
    /// ```
    #[track_caller]
    fn try_gather(
        &self,
        axis: usize,
        index: Vec<usize>,
        index_shape: &[usize],
    ) -> Result<Self, Error> {
        Self::apply(
            &ops::Gather {
                axis,
                index: index.into(),
                index_shape: index_shape.to_vec(),
            },
            &[self],
        )
    }

    /// The adjoint of [`try_gather`](Array::try_gather): zeros of shape `shape`, with each
    /// element of `self` added where `index` (row-major, of `self`'s shape) points along `axis`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let src = Tensor::from_vec(vec![1.0_f64, 2.0], &[2, 1]).unwrap();
    /// let s = src.try_scatter_add(1, vec![2, 0], &[2, 3]).unwrap();
    /// assert_eq!(s.to_vec(), vec![0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
    /// assert!(src.try_scatter_add(1, vec![2, 5], &[2, 3]).is_err());
    /// ```
    #[track_caller]
    fn try_scatter_add(
        &self,
        axis: usize,
        index: Vec<usize>,
        shape: &[usize],
    ) -> Result<Self, Error> {
        Self::apply(
            &ops::ScatterAdd {
                axis,
                index: index.into(),
                shape: shape.to_vec(),
            },
            &[self],
        )
    }

    /// Joins `arrays` along an existing `axis`; every other axis must agree (an error names the
    /// shapes), and there must be at least one array.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::zeros(&[2, 3]);
    /// let b = Tensor::<f64>::ones(&[1, 3]);
    /// let c = Tensor::try_concat(&[&a, &b], 0).unwrap();
    /// assert_eq!(c.shape(), &[3, 3]);
    /// assert_eq!(c.to_vec()[6..], [1.0; 3]);
    /// assert!(Tensor::try_concat(&[&a, &b], 1).is_err()); // 2 rows and 1 row
    /// ```
    #[track_caller]
    fn try_concat(arrays: &[&Self], axis: usize) -> Result<Self, Error> {
        Self::apply(&ops::Concat { axis }, arrays)
    }

    /// See [`try_concat`](Array::try_concat); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64]);
    /// let b = Tensor::vector(&[2.0, 3.0]);
    /// assert_eq!(Tensor::concat(&[&a, &b], 0).to_vec(), vec![1.0, 2.0, 3.0]);
    /// ```
    #[track_caller]
    fn concat(arrays: &[&Self], axis: usize) -> Self {
        or_panic(Self::try_concat(arrays, axis))
    }

    /// Joins `arrays`, all of one shape, along a new axis inserted at `axis` (at most their
    /// number of axes).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, 2.0]);
    /// let b = Tensor::vector(&[3.0, 4.0]);
    /// let s = Tensor::try_stack(&[&a, &b], 1).unwrap();
    /// assert_eq!((s.shape(), s.to_vec()), (&[2, 2][..], vec![1.0, 3.0, 2.0, 4.0]));
    /// assert!(Tensor::try_stack(&[&a, &Tensor::vector(&[1.0])], 0).is_err());
    /// ```
    #[track_caller]
    fn try_stack(arrays: &[&Self], axis: usize) -> Result<Self, Error> {
        let Some(first) = arrays.first() else {
            return Err(Error::InvalidArgument {
                op: "stack",
                reason: "needs at least one tensor".to_string(),
            });
        };
        let rank = first.shape().len();
        if axis > rank {
            return Err(Error::InvalidArgument {
                op: "stack",
                reason: format!(
                    "cannot insert axis {axis} into tensors of shape {:?} ({rank} axes; the new \
                     axis is at most {rank})",
                    first.shape()
                ),
            });
        }
        let mut expanded = Vec::with_capacity(arrays.len());
        for a in arrays {
            if a.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().to_vec(),
                    rhs: a.shape().to_vec(),
                });
            }
            expanded.push(a.try_unsqueeze(axis)?);
        }
        let refs: Vec<&Self> = expanded.iter().collect();
        Self::try_concat(&refs, axis)
    }

    /// See [`try_stack`](Array::try_stack); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::vector(&[1.0_f64, 2.0]);
    /// assert_eq!(Tensor::stack(&[&a, &a, &a], 0).shape(), &[3, 2]);
    /// ```
    #[track_caller]
    fn stack(arrays: &[&Self], axis: usize) -> Self {
        or_panic(Self::try_stack(arrays, axis))
    }
    // ---- end of indexing ----

    // ---- Linear algebra -------------------------------------------------------------------
    /// The matrix product: `(m, k) @ (k, n)`, matrix-vector `(m, k) @ (k)`, and batched
    /// `(..., m, k) @ (..., k, n)` with broadcasting over the leading axes.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let x = Tensor::vector(&[1.0, 1.0]);
    /// assert_eq!(a.matmul(&x).to_vec(), vec![3.0, 7.0]);
    /// assert!(a.try_matmul(&Tensor::vector(&[1.0, 2.0, 3.0])).is_err());
    /// ```
    #[track_caller]
    fn try_matmul(&self, rhs: &Self) -> Result<Self, Error> {
        Self::apply(&ops::MatMul::default(), &[self, rhs])
    }

    /// See [`try_matmul`](Array::try_matmul); panics where it returns an error.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let a = Tensor::<f64>::ones(&[3, 2]);
    /// assert_eq!(a.matmul(&Tensor::ones(&[2, 4])).shape(), &[3, 4]);
    /// ```
    #[track_caller]
    fn matmul(&self, rhs: &Self) -> Self {
        or_panic(self.try_matmul(rhs))
    }
}

impl<T: Element> Array for Tensor<T> {
    type Elem = T;
    const PLAIN: bool = true;

    #[inline]
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        op.eval(inputs)
    }

    fn lift(value: Tensor<T>) -> Self {
        value
    }

    fn primal(&self) -> Tensor<T> {
        self.clone()
    }

    fn shape(&self) -> &[usize] {
        Tensor::shape(self)
    }

    fn is_zero(&self) -> bool {
        // Stops at the first element that is not zero: the first, for most cotangents.
        self.as_slice().iter().all(|v| *v == T::zero())
    }
}

/// Every axis of `x`, in order: the reductions `*_all` reduce over them.
fn every_axis<A: Array>(x: &A) -> Vec<usize> {
    (0..x.shape().len()).collect()
}
