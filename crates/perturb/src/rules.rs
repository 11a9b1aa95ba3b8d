//! Every elementary operation in one table: its value (`func`) and its local partial
//! derivatives (`grads`), written in perturb's own differentiable operations so that each rule
//! can itself be differentiated (second and higher order come free).
//!
//! Every number type reaches these rules through [`Scalar::apply_unary`] and
//! [`Scalar::apply_binary`]; none of them has a derivative rule of its own.
//!
//! Conventions at points where a function is not differentiable:
//! - `abs`, `relu`: derivative 0 at 0 (the subgradient JAX and PyTorch use).
//! - `max`, `min`: at a tie each argument gets half (JAX's convention); where one argument
//!   is NaN the result and the whole derivative follow the other, as `f64::max` does.
//! - `hypot` at (0, 0): both partials 0.
//! - `powf(x, y)`: for `x <= 0` the partial in `y` is 0; for a constant `y = 0`, or at
//!   `x = y = 0`, the partial in `x` is 0.
//! - `atan2` at (0, 0): both partials 0.
//! - `relu(NaN)` is NaN, as `max(x, 0)` written with a comparison would not give.
//! - `floor`, `ceil`, `round`, `trunc`, `signum`: derivative 0 (they are implemented as constants).
//!
//! Where an exactly-zero tangent or adjoint, or (in forward mode) an exactly-zero local
//! partial, meets an infinite or NaN one, the product is 0: an unused `sqrt(0)` passes nothing
//! on, and `0 * sqrt(x)` has derivative 0 at 0 in both modes. One case still differs between
//! the modes: `sqrt(x^2 + y^2)` at the origin has gradient 0 in forward mode (the tangent
//! `2x dx` is 0 before it meets `sqrt`'s infinite slope) and NaN in reverse mode (the infinite
//! adjoint meets the partial `2x = 0`; JAX gives NaN in both). Write a norm as `hypot` (or
//! `linalg::vector_norm` for tensors), whose derivative at 0 is 0 in every mode.
//!
//! ```
//! use perturb::{rules::Tanh, UnaryOp};
//! let v = Tanh.func(0.5_f64);
//! assert!((Tanh.grads(0.5_f64, v) - (1.0 - v * v)).abs() < 1e-15);
//! ```

use crate::scalar::{BinaryOp, Scalar, UnaryOp};

macro_rules! unary_rules {
    ($( $(#[$doc:meta])* $name:ident($label:literal) at $at:literal: |$x:ident, $v:ident| $func:expr, $grad:expr; )*) => {$(
        $(#[$doc])*
        ///
        /// Its derivative agrees with a central difference:
        ///
        #[doc = concat!("```\nuse perturb::{rules::", stringify!($name), ", UnaryOp};\n",
            "let (x, h) = (", stringify!($at), "_f64, 1e-6);\n",
            "let slope = ", stringify!($name), ".grads(x, ", stringify!($name), ".func(x));\n",
            "let fd = (", stringify!($name), ".func(x + h) - ", stringify!($name), ".func(x - h)) / (2.0 * h);\n",
            "assert!((slope - fd).abs() < 1e-6 * slope.abs().max(1.0));\n```")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl UnaryOp for $name {
            fn name(&self) -> &'static str {
                $label
            }
            #[inline(always)]
            fn func<T: Scalar>(&self, $x: T) -> T { $func }
            #[inline(always)]
            #[allow(unused_variables)]
            fn grads<T: Scalar>(&self, $x: T, $v: T) -> T { $grad }
        }
    )*};
}

macro_rules! binary_rules {
    ($( $(#[$doc:meta])* $name:ident($label:literal) at ($a0:literal, $b0:literal): |$a:ident, $b:ident, $v:ident| $func:expr, $grads:expr; )*) => {$(
        $(#[$doc])*
        ///
        /// Its partial derivatives agree with central differences:
        ///
        #[doc = concat!("```\nuse perturb::{rules::", stringify!($name), ", BinaryOp};\n",
            "let (a, b, h) = (", stringify!($a0), "_f64, ", stringify!($b0), "_f64, 1e-6);\n",
            "let (da, db) = ", stringify!($name), ".grads(a, b, ", stringify!($name), ".func(a, b));\n",
            "let fa = (", stringify!($name), ".func(a + h, b) - ", stringify!($name), ".func(a - h, b)) / (2.0 * h);\n",
            "let fb = (", stringify!($name), ".func(a, b + h) - ", stringify!($name), ".func(a, b - h)) / (2.0 * h);\n",
            "assert!((da - fa).abs() < 1e-6 * da.abs().max(1.0));\n",
            "assert!((db - fb).abs() < 1e-6 * db.abs().max(1.0));\n```")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;
        impl BinaryOp for $name {
            fn name(&self) -> &'static str {
                $label
            }
            #[inline(always)]
            fn func<T: Scalar>(&self, $a: T, $b: T) -> T { $func }
            #[inline(always)]
            #[allow(unused_variables)]
            fn grads<T: Scalar>(&self, $a: T, $b: T, $v: T) -> (T, T) { $grads }
        }
    )*};
}

#[inline(always)]
fn two<T: Scalar>() -> T {
    T::one() + T::one()
}

unary_rules! {
    /// `-x`; derivative `-1`.
    Neg("neg") at 0.3: |x, v| -x, -T::one();
    /// `1 / x`; derivative `-1 / x^2`.
    Recip("recip") at 0.7: |x, v| x.recip(), -(v * v);
    /// `sqrt(x)`; derivative `1 / (2 sqrt(x))`.
    Sqrt("sqrt") at 2.0: |x, v| x.sqrt(), (v + v).recip();
    /// `cbrt(x)`; derivative `1 / (3 cbrt(x)^2)`.
    Cbrt("cbrt") at -1.5: |x, v| x.cbrt(), (v * v * (two::<T>() + T::one())).recip();
    /// `exp(x)`; derivative `exp(x)`.
    Exp("exp") at 0.4: |x, v| x.exp(), v;
    /// `2^x`; derivative `2^x ln 2`.
    Exp2("exp2") at 1.3: |x, v| x.exp2(), v * T::LN_2();
    /// `exp(x) - 1`; derivative `exp(x)`.
    ExpM1("exp_m1") at -0.2: |x, v| x.exp_m1(), x.exp();
    /// `ln(x)`; derivative `1 / x`.
    Ln("ln") at 1.7: |x, v| x.ln(), x.recip();
    /// `log2(x)`; derivative `1 / (x ln 2)`.
    Log2("log2") at 3.0: |x, v| x.log2(), (x * T::LN_2()).recip();
    /// `log10(x)`; derivative `1 / (x ln 10)`.
    Log10("log10") at 0.5: |x, v| x.log10(), (x * T::LN_10()).recip();
    /// `ln(1 + x)`; derivative `1 / (1 + x)`.
    Ln1p("ln_1p") at 0.25: |x, v| x.ln_1p(), (x + T::one()).recip();
    /// `sin(x)`; derivative `cos(x)`.
    Sin("sin") at 0.9: |x, v| x.sin(), x.cos();
    /// `cos(x)`; derivative `-sin(x)`.
    Cos("cos") at 0.9: |x, v| x.cos(), -x.sin();
    /// `tan(x)`; derivative `1 + tan(x)^2`.
    Tan("tan") at 0.6: |x, v| x.tan(), T::one() + v * v;
    /// `asin(x)`; derivative `1 / sqrt(1 - x^2)`, with `1 - x^2` as `(1 - x)(1 + x)`, which
    /// does not cancel near `|x| = 1`.
    Asin("asin") at 0.3: |x, v| x.asin(), one_minus_square(x).sqrt().recip();
    /// `acos(x)`; derivative `-1 / sqrt(1 - x^2)` (as for `asin`).
    Acos("acos") at -0.4: |x, v| x.acos(), -one_minus_square(x).sqrt().recip();
    /// `atan(x)`; derivative `1 / (1 + x^2)`.
    Atan("atan") at 1.5: |x, v| x.atan(), (T::one() + x * x).recip();
    /// `sinh(x)`; derivative `cosh(x)`.
    Sinh("sinh") at 0.8: |x, v| x.sinh(), x.cosh();
    /// `cosh(x)`; derivative `sinh(x)`.
    Cosh("cosh") at -0.8: |x, v| x.cosh(), x.sinh();
    /// `tanh(x)`; derivative `1 - tanh(x)^2`, computed as `4 s(2x) s(-2x)` with the stable
    /// sigmoid `s`: `1 - tanh^2` cancels (1.1e-8 relative error at 10, 0 for 3.5e-26 at 30),
    /// and `1 / cosh(x)^2` overflows inside its own derivative past |x| = 710 (a NaN second
    /// derivative), while this form is exact-in-shape and finite at every order.
    Tanh("tanh") at 0.5: |x, v| x.tanh(), { let t = x + x; let p = stable_sigmoid(t) * stable_sigmoid(-t); (p + p) + (p + p) };
    /// `asinh(x)`; derivative `1 / sqrt(x^2 + 1)`, as `1 / hypot(x, 1)` so that `x^2` cannot
    /// overflow.
    Asinh("asinh") at -1.2: |x, v| x.asinh(), x.hypot(T::one()).recip();
    /// `acosh(x)`; derivative `1 / sqrt(x^2 - 1)`, as `1 / (sqrt(x - 1) sqrt(x + 1))`, which
    /// neither overflows nor cancels near 1.
    Acosh("acosh") at 1.8: |x, v| x.acosh(), ((x - T::one()).sqrt() * (x + T::one()).sqrt()).recip();
    /// `atanh(x)`; derivative `1 / (1 - x^2)` (as for `asin`, `(1 - x)(1 + x)`).
    Atanh("atanh") at 0.45: |x, v| x.atanh(), one_minus_square(x).recip();
    /// `|x|`; derivative `sign(x)`, and 0 at 0.
    Abs("abs") at -0.7: |x, v| x.abs(), if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { T::zero() };
    /// `1 / (1 + exp(-x))`, stable for large `|x|`; derivative `s(x) s(-x)` (not `s (1 - s)`,
    /// which loses all precision once `s` rounds to 1).
    Sigmoid("sigmoid") at 0.8: |x, v| stable_sigmoid(x), v * stable_sigmoid(-x);
    /// `ln(1 + exp(x))`, stable for large `|x|`; derivative `sigmoid(x)`.
    Softplus("softplus") at -1.1: |x, v| stable_softplus(x), x.sigmoid();
    /// `ln(sigmoid(x)) = -softplus(-x)`; derivative `sigmoid(-x)`.
    LogSigmoid("log_sigmoid") at 2.2: |x, v| -stable_softplus(-x), (-x).sigmoid();
    /// `max(x, 0)`, passing NaN through; derivative 1 for x > 0, else 0.
    Relu("relu") at 1.4: |x, v| if x < T::zero() { T::zero() } else { x }, if x > T::zero() { T::one() } else { T::zero() };
}

binary_rules! {
    /// `a + b`; partials `(1, 1)`.
    Add("add") at (0.3, -1.2): |a, b, v| a + b, (T::one(), T::one());
    /// `a - b`; partials `(1, -1)`.
    Sub("sub") at (0.3, -1.2): |a, b, v| a - b, (T::one(), -T::one());
    /// `a * b`; partials `(b, a)`.
    Mul("mul") at (0.3, -1.2): |a, b, v| a * b, (b, a);
    /// `a / b`; partials `(1 / b, -a / b^2)`.
    Div("div") at (0.3, -1.2): |a, b, v| a / b, { let r = b.recip(); (r, -(v * r)) };
    /// `a % b` (truncated remainder, as Rust's `%`); partials `(1, -trunc(a / b))`.
    Rem("rem") at (5.3, 1.2): |a, b, v| a % b, (T::one(), -(a / b).trunc());
    /// `a^b` for real `b`; partials `(b a^(b-1), a^b ln a)`.
    /// For a constant `b = 0` the partial in `a` is 0 (`a^0` is constant), and at `a = 0`,
    /// `b = 0` too (rather than `0 * inf`); an exponent whose value is 0 but which carries
    /// derivatives keeps `b a^(b-1)`, whose derivative in `b` is the mixed second derivative
    /// `1 / a`. Where `a <= 0` the partial in `b` is 0 (`a^b` is then only defined for integer
    /// `b`, or is 0).
    Powf("powf") at (1.3, 2.5): |a, b, v| a.powf(b), (
        if b == T::zero() && (b.is_exact_zero() || a == T::zero()) {
            T::zero()
        } else {
            b * a.powf(b - T::one())
        },
        if a > T::zero() { v * a.ln() } else { T::zero() },
    );
    /// `log_b(a)` (`a.log(b)`); partials `(1 / (a ln b), -log_b(a) / (b ln b))`.
    Log("log") at (3.0, 2.0): |a, b, v| a.log(b), { let lb = b.ln(); ((a * lb).recip(), -(v / (b * lb))) };
    /// `atan2(a, b)`, the angle of the point `(b, a)`; partials `(b, -a) / (a^2 + b^2)`,
    /// computed as `(b / h, -a / h) / h` with `h = hypot(a, b)`, so that `a^2 + b^2` can
    /// neither underflow (tiny points) nor overflow (huge ones). At the origin both partials
    /// are 0, as for `hypot`.
    Atan2("atan2") at (0.3, -1.2): |a, b, v| a.atan2(b), {
        let h = a.hypot(b);
        if h == T::zero() { (T::zero(), T::zero()) } else { (b / h / h, -(a / h / h)) }
    };
    /// `sqrt(a^2 + b^2)`; partials `(a, b) / hypot`, and `(0, 0)` at the origin.
    Hypot("hypot") at (0.3, -1.2): |a, b, v| a.hypot(b), if v == T::zero() { (T::zero(), T::zero()) } else { (a / v, b / v) };
    /// `max(a, b)`; the larger argument gets the whole derivative, each half at a tie.
    Max("max") at (0.3, -1.2): |a, b, v| a.max(b), select(a, b, a > b || b.is_nan(), a < b || a.is_nan());
    /// `min(a, b)`; the smaller argument gets the whole derivative, each half at a tie.
    Min("min") at (0.3, -1.2): |a, b, v| a.min(b), select(a, b, a < b || b.is_nan(), a > b || a.is_nan());
}

/// `x^n` for an integer `n`; derivative `n x^(n-1)`, with `x^(n-1)` as `x^n / x` for
/// `n = i32::MIN`, whose `n - 1` does not fit in an `i32`.
///
/// ```
/// use perturb::{rules::Powi, UnaryOp};
/// assert_eq!(Powi(3).grads(2.0_f64, 8.0), 12.0);
/// assert_eq!(Powi(i32::MIN).grads(1.0_f64, 1.0), -2147483648.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Powi(pub i32);

impl UnaryOp for Powi {
    fn name(&self) -> &'static str {
        "powi"
    }
    #[inline(always)]
    fn func<T: Scalar>(&self, x: T) -> T {
        x.powi(self.0)
    }
    #[inline(always)]
    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        match self.0 {
            0 => T::zero(),
            n => {
                let below = match n.checked_sub(1) {
                    Some(m) => x.powi(m),
                    None => x.powi(n) / x,
                };
                T::from_i32(n).unwrap_or_else(T::nan) * below
            }
        }
    }
}

/// Partials of max/min: `(1, 0)` if the first argument wins, `(0, 1)` if the second, halves at a tie.
#[inline(always)]
fn select<T: Scalar>(_a: T, _b: T, first: bool, second: bool) -> (T, T) {
    if first {
        (T::one(), T::zero())
    } else if second {
        (T::zero(), T::one())
    } else {
        let half = two::<T>().recip();
        (half, half)
    }
}

/// `1 - x^2` as `(1 - x)(1 + x)`: exact where `x^2` rounds near 1.
#[inline(always)]
fn one_minus_square<T: Scalar>(x: T) -> T {
    (T::one() - x) * (T::one() + x)
}

#[inline(always)]
fn stable_sigmoid<T: Scalar>(x: T) -> T {
    if x >= T::zero() {
        (T::one() + (-x).exp()).recip()
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

#[inline(always)]
fn stable_softplus<T: Scalar>(x: T) -> T {
    // ln(1 + e^x) = x + ln(1 + e^-x) for x > 0: never overflows, keeps precision for x << 0.
    // Both branches are smooth, so nested derivatives of the value are right at 0 too.
    if x > T::zero() {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}
