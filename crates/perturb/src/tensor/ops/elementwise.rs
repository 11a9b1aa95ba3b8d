//! Element-wise functions of one tensor. Values come from the scalar engine's rules
//! ([`crate::rules`]), so both engines compute the same numbers (`erf`, `gelu` and `gelu_tanh`,
//! which the scalar engine does not have, from libm in `f64`), except that `exp`, `sigmoid`,
//! `softplus`, `log_sigmoid` and `tanh` run vectorised polynomials on CPUs with AVX2 and FMA,
//! within 3 ulps of the rules' libm values (`tensor::vmath`); derivatives are written in
//! tensor operations so they can be differentiated again. `g` is the tangent (JVP) or the
//! cotangent (VJP): the Jacobian of an element-wise function is diagonal, so one rule serves both.

use crate::error::Error;
use crate::rules;
use crate::scalar::{BinaryOp, UnaryOp};
use crate::tensor::fusion::{self, Operand};
use crate::tensor::kernels;
use crate::tensor::vmath::ExpFamily;
use crate::tensor::{Array, Cotangent, Element, Op, Tensor, VjpReads};

use super::elem;

macro_rules! elementwise {
    ($( $(#[$doc:meta])* $name:ident, $label:literal, $cost:ident, |$x:ident| $value:expr, |$xa:ident, $y:ident, $g:ident| $slope:expr
        $(, family $family:ident)? $(, onto |$fx:ident, $fct:ident, $fslots:ident| $onto:expr)? $(, reads $reads:expr)?; )*) => {$(
        $(#[$doc])*
        ///
        /// Its VJP agrees with a central difference:
        ///
        #[doc = concat!("```\nuse perturb::tensor::{ops::", stringify!($name), ", Op, Tensor};\n",
            "let f = |v: f64| ", stringify!($name), ".eval(&[&Tensor::vector(&[v])]).unwrap().as_slice()[0];\n",
            "let x = Tensor::vector(&[0.5_f64]);\n",
            "let y = ", stringify!($name), ".eval(&[&x]).unwrap();\n",
            "let ct = ", stringify!($name), ".vjp(&[&x], &y, &Tensor::vector(&[1.0]), &[true]).unwrap();\n",
            "let slope = ct[0].as_ref().unwrap().as_slice()[0];\n",
            "let dy = ", stringify!($name), ".jvp(&[&x], &y, &[Some(&Tensor::vector(&[1.0]))]).unwrap().unwrap();\n",
            "assert_eq!(dy.as_slice()[0], slope);\n",
            "assert!((slope - (f(0.5 + 1e-6) - f(0.5 - 1e-6)) / 2e-6).abs() < 1e-6);\n```")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Op for $name {
            fn name(&self) -> &'static str {
                $label
            }

            const ELEMENTWISE: bool = true;
            $(const VJP_READS: VjpReads = $reads;)?

            // A row of the exponential family computes its value with `vmath`'s loop, which
            // is vectorised where the CPU allows and otherwise is this same scalar rule.
            #[allow(unreachable_code)]
            fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
                let input = super::unary($label, inputs)?;
                $(return Ok(input.map_exp_family(ExpFamily::$family));)?
                Ok(input.map_with(kernels::Cost::$cost, |$x: T| $value))
            }

            #[allow(unreachable_code)]
            fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
                $(return fusion::family_block(inputs, out, ExpFamily::$family);)?
                fusion::map_block(inputs, out, |$x: T| $value)
            }

            fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
                super::broadcast_output(1, inputs)
            }

            // The Jacobian is diagonal, so the JVP and the VJP are the same product of the
            // tangent or cotangent `g` with the local derivative.
            #[allow(unused_variables)]
            fn jvp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                tangents: &[Option<&A>],
            ) -> Result<Option<A>, Error> {
                let ($xa, Some($g)) = (inputs[0], tangents[0]) else { return Ok(None) };
                Ok(Some($slope))
            }

            #[allow(unused_variables)]
            fn vjp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                $g: &A,
                _needed: &[bool],
            ) -> Result<Vec<Option<A>>, Error> {
                let $xa = inputs[0];
                Ok(vec![Some($slope)])
            }

            // A row with an `onto` rule adds its VJP of the cotangent with its pending factor
            // onto the gathered slot itself, without a pass for the factor.
            #[allow(unreachable_code, unused_variables)]
            fn vjp_onto<A: Array>(
                &self,
                inputs: &[&A],
                y: &A,
                ct: &Cotangent<A>,
                needed: &[bool],
                gathered: &mut [Option<Cotangent<A>>],
            ) -> Result<(), Error> {
                $(
                    let ($fx, $fct, $fslots) = (inputs[0], ct, gathered);
                    return $onto;
                )?
                super::vjp_then_gather(self, inputs, y, ct, needed, gathered)
            }
        }
    )*};
}

elementwise! {
    /// `-x`; JVP and VJP `-g` (in the backward sweep a change of the cotangent's factor).
    Neg, "neg", Cheap, |x| -x, |x, y, g| g.neg(),
        onto |x, ct, slots| Cotangent::accumulate(&mut slots[0], Cotangent::scaled(ct.value.clone(), -ct.factor)),
        reads VjpReads::NOTHING;
    /// `exp(x)`; JVP and VJP `g * exp(x)`.
    Exp, "exp", Transcendental, |x| rules::Exp.func(x), |x, y, g| g.try_mul(y)?, family Exp, reads VjpReads::OUTPUT;
    /// `ln(x)`; JVP and VJP `g / x`.
    Ln, "ln", Transcendental, |x| rules::Ln.func(x), |x, y, g| g.try_div(x)?;
    /// `x^2`; JVP and VJP `2 x g`.
    Square, "square", Cheap, |x| x * x, |x, y, g| A::apply(&super::ScaledMul(2.0), &[g, x])?,
        onto |x, ct, slots| super::binary::product_onto(&mut slots[0], 2.0 * ct.factor, &ct.value, x, x, x.shape()),
        reads VjpReads::INPUTS;
    /// `1 / (1 + exp(-x))`, stable for large `|x|`; JVP and VJP `g * s(x) * s(-x)`, the slope in
    /// one pass from `x` and `y = s(x)`.
    Sigmoid, "sigmoid", Transcendental, |x| rules::Sigmoid.func(x), |x, y, g| g.try_mul(&A::apply(&SigmoidSlope, &[x, y])?)?,
        family Sigmoid;
    /// `sqrt(x)`; JVP and VJP `g / (2 sqrt(x))`.
    Sqrt, "sqrt", Cheap, |x| rules::Sqrt.func(x), |x, y, g| g.try_div(&y.scale(A::elem(2.0)))?;
    /// `|x|`; JVP and VJP `g * sign(x)`, with derivative 0 at 0 (as [`rules::Abs`]).
    Abs, "abs", Cheap, |x| rules::Abs.func(x), |x, y, g| g.try_mul(&A::apply(&Slope(rules::Abs, "abs_slope"), &[x])?)?;
    /// `sin(x)`; JVP and VJP `g * cos(x)`.
    Sin, "sin", Transcendental, |x| rules::Sin.func(x), |x, y, g| g.try_mul(&x.cos())?;
    /// `cos(x)`; JVP and VJP `-g * sin(x)`.
    Cos, "cos", Transcendental, |x| rules::Cos.func(x), |x, y, g| g.try_mul(&x.sin())?.neg();
    /// `tanh(x)`; JVP and VJP `g * (1 - tanh(x)^2)`.
    Tanh, "tanh", Transcendental, |x| rules::Tanh.func(x), |x, y, g| g.try_mul(&y.square().neg().add_scalar(A::elem(1.0)))?,
        family Tanh, reads VjpReads::OUTPUT;
    /// `max(x, 0)`, passing NaN through; JVP and VJP `g` where `x > 0`, else 0 (derivative 0 at 0, as
    /// [`rules::Relu`]).
    Relu, "relu", Cheap, |x| rules::Relu.func(x), |x, y, g| g.try_mul(&A::apply(&Slope(rules::Relu, "relu_slope"), &[x])?)?;
    /// `ln(1 + exp(x))`, stable for large `|x|`; JVP and VJP `g * sigmoid(x)`.
    Softplus, "softplus", Transcendental, |x| rules::Softplus.func(x), |x, y, g| g.try_mul(&x.sigmoid())?,
        family Softplus;
    /// `ln(sigmoid(x)) = -softplus(-x)`, stable for large `|x|`; JVP and VJP `g * sigmoid(-x)`.
    LogSigmoid, "log_sigmoid", Transcendental, |x| rules::LogSigmoid.func(x), |x, y, g| g.try_mul(&x.neg().sigmoid())?,
        family LogSigmoid;
    /// `1 / x`; JVP and VJP `-g / x^2`, written `-(g y^2)`.
    Recip, "recip", Cheap, |x| rules::Recip.func(x), |x, y, g| g.try_mul(&y.square())?.neg();
    /// `ln(1 + x)`, accurate near 0 where `ln(1 + x)` rounds `1 + x` (the scalar engine's
    /// [`rules::Ln1p`]); JVP and VJP `g / (1 + x)`.
    Log1p, "log1p", Transcendental, |x| rules::Ln1p.func(x), |x, y, g| g.try_div(&x.add_scalar(A::elem(1.0)))?,
        reads VjpReads::INPUTS;
    /// `exp(x) - 1`, accurate near 0 where `exp(x) - 1` cancels ([`rules::ExpM1`]); JVP and VJP
    /// `g exp(x)`, from `x` rather than as `y + 1`, which is 0 once `y` rounds to -1 (`x < -37`).
    Expm1, "expm1", Transcendental, |x| rules::ExpM1.func(x), |x, y, g| g.try_mul(&x.exp())?,
        reads VjpReads::INPUTS;
    /// The error function `erf(x) = 2 / sqrt(pi) * integral of exp(-t^2) from 0 to x`, libm's
    /// (computed in `f64`, so `f32` gets it correctly rounded but for double rounding); JVP and
    /// VJP `g 2 / sqrt(pi) exp(-x^2)`, which underflows to 0 in the tails rather than overflow,
    /// taken at `x` clamped to `[-40, 40]` (a NaN passing with its derivative), beyond which it
    /// is 0, so that its own derivatives are 0 there too rather than `0 * inf` where `2x`
    /// overflows.
    Erf, "erf", Transcendental, |x| via_f64(x, libm::erf), |x, y, g| g.try_mul(&erf_slope(x)?)?,
        reads VjpReads::INPUTS;
    /// GELU, exact: `x Phi(x)` with `Phi` the standard normal distribution function, computed
    /// as `x erfc(-x / sqrt 2) / 2` (libm's `erfc`, in `f64`), which keeps its relative accuracy
    /// in the left tail where `1 + erf(x / sqrt 2)` cancels (0 at `-inf`, the limit); JVP and
    /// VJP `g (Phi(x) + x phi(x))`, `phi` the normal density, taken at `x` clamped to
    /// `[-40, 40]` as `erf`'s: exactly 1 or 0 far out and at infinity, its derivatives 0.
    Gelu, "gelu", Transcendental, |x| via_f64(x, gelu_f64), |x, y, g| g.try_mul(&gelu_slope(x)?)?,
        reads VjpReads::INPUTS;
    /// GELU, tanh approximation (Hendrycks and Gimpel 2016):
    /// `x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2`, computed as `x sigmoid(z)` with
    /// `z = 2 sqrt(2 / pi) (x + 0.044715 x^3)` (the same function: `1 + tanh(u) = 2 sigmoid(2u)`),
    /// which does not cancel in the left tail as `1 + tanh` does (0 at `-inf`, the limit). JVP
    /// and VJP `g (sigmoid(z) + x sigmoid'(z) z')`, taken at `x` clamped to `[-30, 30]`: beyond,
    /// it is exactly 0 or 1 in `f32` and `f64` (`sigmoid'(z)` underflows), and the clamp keeps
    /// `z'`, which overflows past `|x| = 1e154`, from meeting that 0 (`0 * inf` would be NaN);
    /// a NaN passes the clamp with its derivative.
    GeluTanh, "gelu_tanh", Transcendental, |x| via_f64(x, gelu_tanh_f64), |x, y, g| g.try_mul(&gelu_tanh_slope(x)?)?,
        reads VjpReads::INPUTS;
    /// SiLU (swish): `x sigmoid(x)`, with the stable sigmoid (0 at `-inf`, the limit); JVP and
    /// VJP `g (sigmoid(x) + x sigmoid'(x))`, with `sigmoid'` accurate in both tails
    /// (`s (1 - s)` below 1, `e / (1 + e)^2` with `e = exp(-x)` above), so the slope is 0 or 1
    /// far out and at infinity rather than NaN, taken at `x` clamped to `[-750, 750]` (beyond,
    /// `sigmoid'` is 0), so that its derivatives are 0 rather than `inf * 0` at infinity.
    Silu, "silu", Transcendental, |x| silu_value(x), |x, y, g| g.try_mul(&silu_slope(x)?)?,
        reads VjpReads::INPUTS;
}

/// `f(x)` computed in `f64` (libm's functions are `f64` ones).
fn via_f64<T: Element>(x: T, f: impl Fn(f64) -> f64) -> T {
    elem(f(x.to_f64_value()))
}

/// `1 / sqrt(2 pi)`, the normal density at 0.
const FRAC_1_SQRT_2PI: f64 =
    std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2 / 2.0;

/// `sqrt(2 / pi)`, the tanh form of GELU's scale.
const SQRT_2_OVER_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2;

/// The cubic coefficient of GELU's tanh form.
const GELU_TANH_CUBIC: f64 = 0.044715;

/// Where GELU's tanh form is flat to the last bit of `f32` and `f64` (its slope 0 or 1).
const GELU_TANH_FLAT: f64 = 30.0;

/// Where `exp(-x^2 / 2)` (and so `exp(-x^2)`) underflows to 0 in `f64` (past 38.6), and GELU's
/// slope is exactly 0 or 1.
const GAUSSIAN_FLAT: f64 = 40.0;

/// Where `sigmoid'(x)` underflows to 0 in `f64` (`exp(-x)` past 745), and SiLU's slope is
/// exactly 0 or 1.
const SIGMOID_FLAT: f64 = 750.0;

/// `1 / sqrt 2 - FRAC_1_SQRT_2`: what the `f64` constant leaves out (computed to 50 digits).
const FRAC_1_SQRT_2_LO: f64 = -4.833646656726457e-17;

/// `Phi(x) = erfc(-x / sqrt 2) / 2`, the standard normal distribution function. `Phi`'s relative
/// condition number is about `x^2` in the left tail, so rounding `a = -x / sqrt 2` would cost up
/// to about `x^2` ulps (4 at `x = -3`, 729 at -30 in glibc's `erfc`): below `x = -1` the rounding
/// error `e` of `a` (the product's, by a fused multiply-add, and the constant's) is put back to
/// first order, `erfc(a + e) = erfc(a) - e 2 / sqrt(pi) exp(-a^2)`.
fn normal_cdf(x: f64) -> f64 {
    use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};
    let a = -x * FRAC_1_SQRT_2;
    let erfc = libm::erfc(a);
    // (Not where `erfc` is 0, `x = -inf` included, where `e` is NaN.)
    if x < -1.0 && erfc > 0.0 {
        let e = (-x).mul_add(FRAC_1_SQRT_2, -a) - x * FRAC_1_SQRT_2_LO;
        0.5 * (erfc - e * FRAC_2_SQRT_PI * (-a * a).exp())
    } else {
        0.5 * erfc
    }
}

/// `x f`, or `-0` where `f` is 0: the limit of `x f(x)` where `f` decays faster than `x` grows
/// and has underflowed, `x = -inf` included (where `x f` is NaN).
fn times_decaying<T: Element>(x: T, f: T) -> T {
    if f == T::zero() {
        -T::zero()
    } else {
        x * f
    }
}

/// `x Phi(x)`.
fn gelu_f64(x: f64) -> f64 {
    times_decaying(x, normal_cdf(x))
}

/// `x sigmoid(2 sqrt(2 / pi) (x + 0.044715 x^3))`.
fn gelu_tanh_f64(x: f64) -> f64 {
    let z = 2.0 * SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    times_decaying(x, rules::Sigmoid.func(z))
}

/// `x sigmoid(x)`.
fn silu_value<T: Element>(x: T) -> T {
    times_decaying(x, rules::Sigmoid.func(x))
}

/// `erf'(x) = 2 / sqrt(pi) exp(-x^2)`, at `x` flattened where it underflows (see [`Flatten`]).
fn erf_slope<A: Array>(x: &A) -> Result<A, Error> {
    let x = A::apply(&Flatten(GAUSSIAN_FLAT), &[x])?;
    let scale = A::elem(std::f64::consts::FRAC_2_SQRT_PI);
    Ok(x.square().neg().exp().scale(scale))
}

/// `phi(x) = exp(-x^2 / 2) / sqrt(2 pi)`, the standard normal density.
fn normal_pdf<A: Array>(x: &A) -> A {
    x.square()
        .scale(A::elem(-0.5))
        .exp()
        .scale(A::elem(FRAC_1_SQRT_2PI))
}

/// `gelu'(x) = Phi(x) + x phi(x)`, at `x` flattened where it is 0 or 1 (see [`Flatten`]).
fn gelu_slope<A: Array>(x: &A) -> Result<A, Error> {
    let x = A::apply(&Flatten(GAUSSIAN_FLAT), &[x])?;
    A::apply(&NormalCdf, &[&x])?.try_add(&x.try_mul(&normal_pdf(&x))?)
}

/// `gelu_tanh'(x) = sigmoid(z) + x sigmoid'(z) z'`, `z = 2 sqrt(2 / pi) (x + 0.044715 x^3)`,
/// at `x` clamped to where the slope is not yet flat (see [`GeluTanh`]).
fn gelu_tanh_slope<A: Array>(x: &A) -> Result<A, Error> {
    let x = A::apply(&Flatten(GELU_TANH_FLAT), &[x])?;
    let two_c = A::elem(2.0 * SQRT_2_OVER_PI);
    let x2 = x.square();
    let z = x
        .try_mul(&x2.scale(A::elem(GELU_TANH_CUBIC)).add_scalar(A::elem(1.0)))?
        .scale(two_c);
    let dz = x2
        .scale(A::elem(3.0 * GELU_TANH_CUBIC))
        .add_scalar(A::elem(1.0))
        .scale(two_c);
    let s = z.sigmoid();
    let ds = A::apply(&SigmoidSlope, &[&z, &s])?;
    s.try_add(&x.try_mul(&ds)?.try_mul(&dz)?)
}

/// `silu'(x) = sigmoid(x) + x sigmoid'(x)`, at `x` flattened where `sigmoid'` underflows (see
/// [`Flatten`]).
fn silu_slope<A: Array>(x: &A) -> Result<A, Error> {
    let x = A::apply(&Flatten(SIGMOID_FLAT), &[x])?;
    let s = x.sigmoid();
    s.try_add(&x.try_mul(&A::apply(&SigmoidSlope, &[&x, &s])?)?)
}

/// `Phi(x)`, the standard normal distribution function, as `erfc(-x / sqrt 2) / 2` (accurate
/// in the left tail); JVP and VJP `g phi(x)`. The part of [`Gelu`]'s slope that is not a
/// composition of other operations.
#[derive(Clone, Copy, Debug)]
struct NormalCdf;

impl Op for NormalCdf {
    fn name(&self) -> &'static str {
        "normal_cdf"
    }

    const ELEMENTWISE: bool = true;
    const VJP_READS: VjpReads = VjpReads::INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let input = super::unary(self.name(), inputs)?;
        Ok(input.map_with(kernels::Cost::Transcendental, |x: T| via_f64(x, normal_cdf)))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        super::broadcast_output(1, inputs)
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| t.try_mul(&normal_pdf(x[0]))).transpose()
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_mul(&normal_pdf(x[0]))?)])
    }
}

/// `x` clamped to `[-bound, bound]`, NaN passing through; JVP and VJP `g` inside, 0 outside and
/// NaN at NaN. A slope taken at `Flatten(x)` is continued flat beyond `bound`, where it is
/// already constant to the last bit of `f32` and `f64` (0 or 1: a density such as `exp(-x^2)`
/// or `sigmoid'(x)` has underflowed). Taken at `x` itself, its derivative multiplied that 0 by
/// a factor that overflows far out or is infinite at infinity (`2x` of `x^2`, `x` of
/// `x phi(x)`), which gave NaN for a limit of 0 (`erf''`, `gelu''` at `1e308`; `silu'`,
/// `gelu'` at `inf`). [`Clamp`](super::Clamp) would do but for NaN, through which it passes
/// no derivative (the comparisons' convention): `gelu_tanh''(NaN)` was 0.
#[derive(Clone, Copy, Debug)]
struct Flatten(f64);

impl UnaryOp for Flatten {
    fn func<T: crate::Scalar>(&self, x: T) -> T {
        let bound = T::from_f64(self.0).unwrap_or_else(T::nan);
        if x > bound {
            bound
        } else if x < -bound {
            -bound
        } else {
            x
        }
    }

    fn grads<T: crate::Scalar>(&self, x: T, _: T) -> T {
        if x.is_nan() {
            x
        } else if x.abs() > T::from_f64(self.0).unwrap_or_else(T::nan) {
            T::zero()
        } else {
            T::one()
        }
    }
}

impl Op for Flatten {
    fn name(&self) -> &'static str {
        "flatten"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let input = super::unary("flatten", inputs)?;
        let rule = *self;
        Ok(input.map_with(kernels::Cost::Cheap, move |x: T| rule.func(x)))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| t.try_mul(&A::apply(&Slope(*self, "flatten_slope"), x)?))
            .transpose()
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(
            ct.try_mul(&A::apply(&Slope(*self, "flatten_slope"), x)?)?,
        )])
    }
}

/// `sigmoid'(x) = s(x) s(-x)` from `x` and `s = sigmoid(x)`: `s (1 - s)` below `x = 1`, where
/// `1 - s >= 0.27` keeps all but two bits, and `e / (1 + e)^2` with `e = exp(-x)` above, where `1 - s`
/// would lose every digit once `s` rounds to 1. So only large inputs pay for an exponential,
/// and both tails are exact. A function of `x` alone (the second input only saves work), so
/// its derivative `sigmoid'(x) (1 - 2 s)` is all along `x`.
#[derive(Clone, Copy, Debug)]
struct SigmoidSlope;

impl Op for SigmoidSlope {
    fn name(&self) -> &'static str {
        "sigmoid_slope"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let switch = T::one();
        super::binary_eval(
            "sigmoid_slope",
            inputs,
            kernels::Cost::Transcendental,
            move |x: T, s: T| {
                if x < switch {
                    s * (T::one() - s)
                } else {
                    let e = (-x).exp();
                    let d = T::one() + e;
                    e / (d * d)
                }
            },
        )
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| Self::slope_times(x[1], y, t)).transpose()
    }

    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(Self::slope_times(x[1], y, ct)?), None])
    }
}

impl SigmoidSlope {
    /// `g * y * (1 - 2 s)`, `y` being `sigmoid'(x)` and `s` `sigmoid(x)`.
    fn slope_times<A: Array>(s: &A, y: &A, g: &A) -> Result<A, Error> {
        let factor = s.scale(A::elem(-2.0)).add_scalar(A::elem(1.0));
        g.try_mul(&y.try_mul(&factor)?)
    }
}

/// The derivative of a piecewise-linear rule (`abs`, `relu`) from the scalar rule's `grads`:
/// piecewise constant, so it is treated as a constant (no VJP), which makes the second
/// derivative of `abs` and `relu` zero, as everywhere but at the kink.
#[derive(Clone, Copy, Debug)]
struct Slope<R>(R, &'static str);

impl<R: UnaryOp + Copy + std::fmt::Debug + Send + Sync + 'static> Op for Slope<R> {
    fn name(&self) -> &'static str {
        self.1
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let input = super::unary(self.1, inputs)?;
        let rule = self.0;
        Ok(input.map_with(kernels::Cost::Cheap, move |x: T| {
            rule.grads(x, rule.func(x))
        }))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None])
    }
}

/// `x^p` for a constant exponent `p` (kept as `f64`); the value is [`rules::Powf`]'s, so it is
/// `x.powf(p)`. JVP and VJP `g * p * x^(p-1)`, and zero for `p = 0` (where `x^0` is constant, as the
/// scalar rule).
///
/// ```
/// use perturb::tensor::{ops::PowScalar, Op, Tensor};
/// let x = Tensor::vector(&[2.0_f64, 3.0]);
/// let y = PowScalar(3.0).eval(&[&x]).unwrap();
/// assert_eq!(y.to_vec(), vec![8.0, 27.0]);
/// let ct = PowScalar(3.0).vjp(&[&x], &y, &Tensor::ones(&[2]), &[true]).unwrap();
/// // d/dx x^3 = 3 x^2: 12 and 27
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![12.0, 27.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowScalar(pub f64);

impl Op for PowScalar {
    fn name(&self) -> &'static str {
        "pow_scalar"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let input = super::unary("pow_scalar", inputs)?;
        let p: T = elem(self.0);
        Ok(input.map(move |x: T| rules::Powf.func(x, p)))
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        match tangents[0] {
            Some(t) if self.0 != 0.0 => Ok(Some(self.slope_times(inputs[0], t)?)),
            _ => Ok(None),
        }
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let x = inputs[0];
        if self.0 == 0.0 {
            return Ok(vec![Some(A::lift(Tensor::zeros(x.shape())))]);
        }
        Ok(vec![Some(self.slope_times(x, ct)?)])
    }
}

impl PowScalar {
    /// `g * p * x^(p-1)`, the JVP and the VJP alike.
    fn slope_times<A: Array>(&self, x: &A, g: &A) -> Result<A, Error> {
        let slope = A::apply(&PowScalar(self.0 - 1.0), &[x])?;
        Ok(g.try_mul(&slope)?.scale(A::elem(self.0)))
    }
}
