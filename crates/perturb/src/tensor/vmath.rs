//! The exponential family of element-wise functions (`exp`, `sigmoid`, `softplus`,
//! `log_sigmoid`, `tanh`) over whole slices, vectorised where the CPU allows.
//!
//! libm's `exp` is a call per element that the compiler cannot vectorise: about 4.5 ns here,
//! most of a small sigmoid network's training step. On an x86-64 CPU with AVX2 and FMA
//! (detected at run time, so the library is still built for the baseline target), these loops
//! instead run branch-free polynomial versions, four `f64` at a time. They agree with the scalar
//! engine's rules ([`crate::rules`], which stay on libm) to within 3 units in the last place,
//! keep the rules' overflow-free forms and pass NaN and the infinities through as libm does.
//! Elsewhere the loops call the scalar rules. `f32` is computed in `f64` and rounded once.

use std::mem::MaybeUninit;

use super::element::Element;
use super::kernels::{self, Cost};
use crate::rules;
use crate::scalar::UnaryOp;

/// Which function of the family a loop computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExpFamily {
    /// `e^x`.
    Exp,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `ln(1 + e^x)`.
    Softplus,
    /// `ln(sigmoid(x)) = -softplus(-x)`.
    LogSigmoid,
    /// `tanh(x)`.
    Tanh,
}

impl ExpFamily {
    /// The scalar engine's value: libm, one element at a time.
    fn scalar<T: Element>(self, x: T) -> T {
        match self {
            ExpFamily::Exp => rules::Exp.func(x),
            ExpFamily::Sigmoid => rules::Sigmoid.func(x),
            ExpFamily::Softplus => rules::Softplus.func(x),
            ExpFamily::LogSigmoid => rules::LogSigmoid.func(x),
            ExpFamily::Tanh => rules::Tanh.func(x),
        }
    }

    /// The polynomial value in `f64`; fast only where `mul_add` is an instruction.
    #[inline(always)]
    fn polynomial(self, x: f64) -> f64 {
        match self {
            ExpFamily::Exp => exp(x),
            ExpFamily::Sigmoid => sigmoid(x),
            ExpFamily::Softplus => softplus(x),
            ExpFamily::LogSigmoid => log_sigmoid(x),
            ExpFamily::Tanh => tanh(x),
        }
    }
}

/// `f` of every element of `x`, in parallel above the transcendental threshold.
pub(crate) fn map<T: Element>(x: &[T], f: ExpFamily) -> Vec<T> {
    kernels::build(x.len(), Cost::Transcendental, |out, start| {
        fill(out, &x[start..start + out.len()], f)
    })
}

/// `out[i] = f(x[i])` into a block already written (a fused chain's block kernel): the same
/// loop, so the same values bit for bit, as [`map`].
pub(crate) fn fill_block<T: Element>(out: &mut [T], x: &[T], f: ExpFamily) {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and `fill` writes only initialised
    // values, so `out` stays initialised.
    let out = unsafe { &mut *(out as *mut [T] as *mut [MaybeUninit<T>]) };
    fill(out, x, f)
}

/// `out[i] = f(x[i])`, on the vectorised path when the CPU has one.
fn fill<T: Element>(out: &mut [MaybeUninit<T>], x: &[T], f: ExpFamily) {
    #[cfg(target_arch = "x86_64")]
    if vectorised() {
        // SAFETY: `vectorised` checked that this CPU has AVX2 and FMA.
        return unsafe { fill_avx2_fma(out, x, f) };
    }
    fill_scalar(out, x, f)
}

/// Whether the vectorised loops can run here: AVX2 and FMA (std caches the CPU check).
#[cfg(target_arch = "x86_64")]
pub(super) fn vectorised() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

fn fill_scalar<T: Element>(out: &mut [MaybeUninit<T>], x: &[T], f: ExpFamily) {
    assert_eq!(out.len(), x.len());
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f.scalar(v));
    }
}

/// The polynomial loops compiled for AVX2 and FMA: one loop per function, so each is
/// vectorised on its own.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fill_avx2_fma<T: Element>(out: &mut [MaybeUninit<T>], x: &[T], f: ExpFamily) {
    assert_eq!(out.len(), x.len());
    let run = |out: &mut [MaybeUninit<T>], g: fn(f64) -> f64| {
        for (o, &v) in out.iter_mut().zip(x) {
            o.write(T::from_f64(g(v.to_f64_value())).unwrap_or_else(T::nan));
        }
    };
    match f {
        ExpFamily::Exp => run(out, |v| ExpFamily::Exp.polynomial(v)),
        ExpFamily::Sigmoid => run(out, |v| ExpFamily::Sigmoid.polynomial(v)),
        ExpFamily::Softplus => run(out, |v| ExpFamily::Softplus.polynomial(v)),
        ExpFamily::LogSigmoid => run(out, |v| ExpFamily::LogSigmoid.polynomial(v)),
        ExpFamily::Tanh => run(out, |v| ExpFamily::Tanh.polynomial(v)),
    }
}

/// Adding then subtracting `1.5 * 2^52` rounds an `f64` below `2^51` in size to an integer.
const ROUNDER: f64 = 6_755_399_441_055_744.0;

#[inline(always)]
fn round_to_integer(x: f64) -> f64 {
    (x + ROUNDER) - ROUNDER
}

/// `2^m` for an integer-valued `m` in `[-1022, 1023]`, built from its exponent bits.
#[inline(always)]
fn pow2(m: f64) -> f64 {
    // The low bits of `m + ROUNDER` are `m` in two's complement.
    let m = (m + ROUNDER).to_bits().wrapping_sub(ROUNDER.to_bits());
    f64::from_bits(m.wrapping_add(1023) << 52)
}

/// `ln 2` split so that `n * LN2_HI` is exact for `|n| < 2^11`: fdlibm's constants, the high
/// part with its last 21 bits zero.
/// (Bits `0x3fe62e42fee00000` and `0x3dea39ef35793c76`.)
const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// `1/k!` for k = 13 down to 2: the coefficients of [`taylor_tail`].
const INVERSE_FACTORIALS: [f64; 12] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
];

/// `x = n ln 2 + r` with `|r| <= ln(2) / 2` and `n` an integer (as an `f64`).
#[inline(always)]
fn reduce(x: f64) -> (f64, f64) {
    let n = round_to_integer(x * std::f64::consts::LOG2_E);
    (n, (x - n * LN2_HI) - n * LN2_LO)
}

/// `(e^r - 1 - r) / r^2` by its Taylor series, to `r^11` (so `e^r` to `r^13`: the first term
/// left out is below `2^-60` of it).
#[inline(always)]
fn taylor_tail(r: f64) -> f64 {
    let mut p: f64 = INVERSE_FACTORIALS[0];
    for c in &INVERSE_FACTORIALS[1..] {
        p = p.mul_add(r, *c);
    }
    p
}

/// `e^x` without a branch: `2^n e^r` from [`reduce`], `e^r = 1 + r (1 + r (1/2 + ...))`, and
/// `2^n` in two halves so that results in the subnormal range round once. Within 1 ulp of libm.
#[inline(always)]
pub(crate) fn exp(x: f64) -> f64 {
    // Beyond these, e^x is 0 or infinite anyway; `clamp` passes NaN through.
    let (n, r) = reduce(x.clamp(-745.2, 709.8));
    let e_r = taylor_tail(r).mul_add(r, 1.0).mul_add(r, 1.0);
    let half = round_to_integer(n * 0.5);
    e_r * pow2(half) * pow2(n - half)
}

/// `e^x - 1` for `x <= 0` (or NaN), precise for small `|x|`: `2^n (e^r - 1) + (2^n - 1)`,
/// with `e^r - 1 = r + r^2 (1/2 + ...)`.
#[inline(always)]
fn exp_m1_nonpositive(x: f64) -> f64 {
    // Below -40, e^x - 1 rounds to -1.
    let (n, r) = reduce(x.clamp(-40.0, 0.0));
    let em1 = (r * r).mul_add(taylor_tail(r), r);
    let scale = pow2(n);
    scale.mul_add(em1, scale - 1.0)
}

/// `ln(1 + e)` for `e` in `[0, 1]` (or NaN), the tail of `softplus`: `1 + e = 2^k m` with `m`
/// in `[1/sqrt 2, sqrt 2]`, and
/// `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)`, by its odd series to `s^21`. Within 2 ulps
/// of libm's `ln_1p`.
#[inline(always)]
fn ln_1p_unit(e: f64) -> f64 {
    let above = e > std::f64::consts::SQRT_2 - 1.0;
    // s = (m - 1) / (m + 1) from `e` itself, so that the rounding of `1 + e` never enters.
    let (numerator, denominator) = if above {
        (e - 1.0, e + 3.0)
    } else {
        (e, e + 2.0)
    };
    let s = numerator / denominator;
    let k: f64 = if above { 1.0 } else { 0.0 };
    let s2 = s * s;
    // 2 / (2j + 1) for j = 10 down to 1.
    const ODD: [f64; 9] = [
        2.0 / 19.0,
        2.0 / 17.0,
        2.0 / 15.0,
        2.0 / 13.0,
        2.0 / 11.0,
        2.0 / 9.0,
        2.0 / 7.0,
        2.0 / 5.0,
        2.0 / 3.0,
    ];
    let mut p: f64 = 2.0 / 21.0;
    for c in ODD {
        p = p.mul_add(s2, c);
    }
    let ln_m = (s * s2).mul_add(p, 2.0 * s);
    k.mul_add(LN2_HI, ln_m + k * LN2_LO)
}

/// `1 / (1 + e^-x)` as `1 / (1 + e)` or `e / (1 + e)`, `e = e^-|x|`: never overflows.
#[inline(always)]
fn sigmoid(x: f64) -> f64 {
    let e = exp(-x.abs());
    let numerator = if x >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// `max(x, 0) + ln(1 + e^-|x|)`: never overflows, keeps precision for `x << 0`.
#[inline(always)]
fn softplus(x: f64) -> f64 {
    x.max(0.0) + ln_1p_unit(exp(-x.abs()))
}

/// `tanh(x) = sign(x) (1 - e) / (1 + e)`, `e = e^-2|x|`, with `1 - e` from `e^x - 1` so that it
/// keeps its precision near 0.
#[inline(always)]
fn tanh(x: f64) -> f64 {
    let u = exp_m1_nonpositive(-2.0 * x.abs());
    (-u / (2.0 + u)).copysign(x)
}

/// `-softplus(-x) = min(x, 0) - ln(1 + e^-|x|)`.
#[inline(always)]
fn log_sigmoid(x: f64) -> f64 {
    x.min(0.0) - ln_1p_unit(exp(-x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ExpFamily; 5] = [
        ExpFamily::Exp,
        ExpFamily::Sigmoid,
        ExpFamily::Softplus,
        ExpFamily::LogSigmoid,
        ExpFamily::Tanh,
    ];

    /// `|a - b|` in units of `b`'s last place (the smallest normal's below it).
    fn ulps(a: f64, b: f64) -> f64 {
        if a == b || (a.is_nan() && b.is_nan()) {
            return 0.0;
        }
        (a - b).abs() / (b.abs().max(f64::MIN_POSITIVE) * f64::EPSILON)
    }

    /// Points spread over the whole range where the functions change, plus the edges.
    fn points() -> Vec<f64> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut xs: Vec<f64> = (0..200_000)
            .map(|i| match i % 3 {
                0 => -750.0 + 1_460.0 * uniform(),
                1 => -40.0 + 80.0 * uniform(),
                _ => (uniform() - 0.5) * 1e-6,
            })
            .collect();
        xs.extend([
            0.0, -0.0, 1e-300, -1e-300, 709.78, 709.79, -708.4, -745.1, -745.2, 800.0, -800.0,
        ]);
        xs
    }

    #[test]
    fn polynomials_are_within_a_few_ulps_of_libm() {
        for f in ALL {
            let (worst, at) = points()
                .into_iter()
                .map(|x| (ulps(f.polynomial(x), f.scalar(x)), x))
                .fold((0.0, 0.0), |w, e| if e.0 > w.0 { e } else { w });
            let bound = if f == ExpFamily::Exp { 1.0 } else { 3.0 };
            assert!(worst <= bound, "{f:?}: {worst} ulps at x = {at:e}");
        }
    }

    #[test]
    fn ln_1p_on_the_unit_interval_is_within_two_ulps_of_libm() {
        for x in points().into_iter().map(|x| x.abs().min(1.0)) {
            let (fast, libm) = (ln_1p_unit(x), x.ln_1p());
            assert!(
                ulps(fast, libm) <= 2.0,
                "ln_1p({x:e}) = {fast:e}, libm {libm:e}"
            );
        }
    }
    #[test]
    fn ln_2_is_split_as_fdlibm_splits_it() {
        assert_eq!(LN2_HI.to_bits(), 0x3fe6_2e42_fee0_0000);
        assert_eq!(LN2_LO.to_bits(), 0x3dea_39ef_3579_3c76);
        assert_eq!(LN2_HI.to_bits() & ((1 << 21) - 1), 0);
    }

    #[test]
    fn special_values_pass_as_libm_does() {
        for f in ALL {
            for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e6, -1e6] {
                let (fast, libm) = (f.polynomial(x), f.scalar(x));
                assert!(
                    fast == libm || (fast.is_nan() && libm.is_nan()),
                    "{f:?}({x}) = {fast}, libm {libm}"
                );
            }
        }
        assert_eq!(exp(-745.2), 0.0);
        assert_eq!(exp(709.8), f64::INFINITY);
        assert!(exp(-744.0) > 0.0, "subnormal results are kept");
        assert!(tanh(-0.0).is_sign_negative() && tanh(0.0).is_sign_positive());
        assert_eq!(exp_m1_nonpositive(-1e-300), -1e-300);
    }

    /// The path [`fill`] takes on this CPU against the scalar rules: `f64` within 3 ulps and
    /// `f32` rounded once, so within 1 of its own ulps.
    #[test]
    fn slices_agree_with_the_scalar_rules_on_every_path() {
        let xs = points();
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        for f in ALL {
            let ys = map(&xs, f);
            for (&x, &y) in xs.iter().zip(&ys) {
                assert!(ulps(y, f.scalar(x)) <= 3.0, "{f:?}({x:e}) = {y:e}");
            }
            let ys32 = map(&xs32, f);
            for (&x, &y) in xs32.iter().zip(&ys32) {
                let exact = f.scalar(x as f64) as f32;
                let ulp = (exact.abs().max(f32::MIN_POSITIVE) * f32::EPSILON) as f64;
                assert!(
                    (y == exact) || ((y - exact).abs() as f64) <= ulp,
                    "{f:?}({x:e}) = {y:e}, want {exact:e}"
                );
            }
        }
    }
}
