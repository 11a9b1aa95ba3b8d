//! One row per element-wise tensor operation added beside the first ones (sqrt, abs, sin, cos,
//! tanh, relu, softplus, log_sigmoid, recip, pow_scalar, pow, the six comparisons, select,
//! clamp, maximum, minimum, and issue 15's log1p, expm1, erf, gelu, gelu_tanh, silu), each
//! checked on several shapes, broadcasting ones included:
//!
//! - the value against the scalar engine's (`f64` methods and `perturb::Scalar`), bit for bit,
//!   or, for `erf` and `gelu`, which the scalar engine does not have, against libm and the
//!   textbook formula;
//! - the gradient against the scalar engine's derivative (`perturb::derivative` for one input,
//!   `perturb::gradient` for several), or the textbook derivative for `erf` and `gelu`, element
//!   by element, where the inputs share a shape;
//! - the VJP against a central finite difference in seeded pseudo-random directions:
//!   `<u, J v>` from the VJP against `(<u, f(x + h v)> - <u, f(x - h v)>) / 2h`;
//! - `f32` against `f64` (value and VJP, relative 1e-4);
//! - order two: the Hessian-vector product of `<u, f(x)>` by an outer tape over an inner one
//!   against a central difference of the first-order VJP;
//! - the forward column (`forward_support`): the JVP against central differences in random
//!   directions (all inputs, and each alone), the JVP against the VJP (`<u, J v> = <J^T u, v>`),
//!   and order two in every nesting (forward over reverse, reverse over forward, forward over
//!   forward) against central differences of the first-order rules and against each other.
//!
//! Then a coverage guard, the conventions at kinks, ties and NaN, stability far out in the
//! tails, and shape errors that name the operation and both shapes.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function};
use perturb::tensor::ops::CmpKind;
use perturb::tensor::{Array, Tensor, TensorTape, TensorVar};
use perturb::{Error, Scalar};

// ---------------------------------------------------------------------------------------------
// Pseudo-random numbers
// ---------------------------------------------------------------------------------------------

/// splitmix64: small, seedable, good enough for test points and directions.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }

    fn tensor(&mut self, shape: &[usize], dom: Dom) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|_| self.sample(dom)).collect();
        Tensor::from_vec(data, shape).unwrap()
    }

    fn sample(&mut self, dom: Dom) -> f64 {
        match dom {
            Dom::U(lo, hi) => self.uniform(lo, hi),
            Dom::Away(lo, hi, points, margin) => loop {
                let x = self.uniform(lo, hi);
                if points.iter().all(|p| (x - p).abs() > margin) {
                    return x;
                }
            },
            Dom::Mask => (self.next_u64() >> 63) as f64,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Where an input's elements are drawn from.
#[derive(Clone, Copy, Debug)]
enum Dom {
    /// Uniform in `[lo, hi)`.
    U(f64, f64),
    /// Uniform in `[lo, hi)`, at least `margin` away from each of the points (kinks, poles).
    Away(f64, f64, &'static [f64], f64),
    /// 0 or 1: a mask, not differentiated (its direction is zero).
    Mask,
}

/// The operation under test, with a generic `apply` (any [`Array`]) and a scalar reference
/// (any [`Scalar`]).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Sqrt,
    Abs,
    Sin,
    Cos,
    Tanh,
    Relu,
    Softplus,
    LogSigmoid,
    Recip,
    PowScalar(f64),
    Pow,
    Cmp(CmpKind),
    Where,
    Clamp(f64, f64),
    Maximum,
    Minimum,
    Log1p,
    Expm1,
    Erf,
    Gelu,
    GeluTanh,
    Silu,
}

fn apply<A: Array>(kind: Kind, x: &[&A]) -> Result<A, Error> {
    Ok(match kind {
        Kind::Sqrt => x[0].sqrt(),
        Kind::Abs => x[0].abs(),
        Kind::Sin => x[0].sin(),
        Kind::Cos => x[0].cos(),
        Kind::Tanh => x[0].tanh(),
        Kind::Relu => x[0].relu(),
        Kind::Softplus => x[0].softplus(),
        Kind::LogSigmoid => x[0].log_sigmoid(),
        Kind::Recip => x[0].recip(),
        Kind::PowScalar(p) => x[0].pow_scalar(A::elem(p)),
        Kind::Pow => x[0].try_pow(x[1])?,
        Kind::Cmp(c) => match c {
            CmpKind::Eq => x[0].try_equal(x[1])?,
            CmpKind::Ne => x[0].try_not_equal(x[1])?,
            CmpKind::Lt => x[0].try_less(x[1])?,
            CmpKind::Le => x[0].try_less_equal(x[1])?,
            CmpKind::Gt => x[0].try_greater(x[1])?,
            CmpKind::Ge => x[0].try_greater_equal(x[1])?,
        },
        Kind::Where => x[0].try_select(x[1], x[2])?,
        Kind::Clamp(lo, hi) => x[0].try_clamp(A::elem(lo), A::elem(hi))?,
        Kind::Maximum => x[0].try_maximum(x[1])?,
        Kind::Minimum => x[0].try_minimum(x[1])?,
        Kind::Log1p => x[0].log1p(),
        Kind::Expm1 => x[0].expm1(),
        Kind::Erf => x[0].erf(),
        Kind::Gelu => x[0].gelu(),
        Kind::GeluTanh => x[0].gelu_tanh(),
        Kind::Silu => x[0].silu(),
    })
}

/// The same function on one element, by the scalar engine (plain `f64`, `Dual`, `Var`); `None`
/// for the functions it does not have (see [`textbook`]).
fn scalar<S: Scalar>(kind: Kind, x: &[S]) -> Option<S> {
    let c = |v: f64| S::from_f64(v).unwrap();
    Some(match kind {
        Kind::Sqrt => x[0].sqrt(),
        Kind::Abs => x[0].abs(),
        Kind::Sin => x[0].sin(),
        Kind::Cos => x[0].cos(),
        Kind::Tanh => x[0].tanh(),
        Kind::Relu => x[0].relu(),
        Kind::Softplus => x[0].softplus(),
        Kind::LogSigmoid => x[0].log_sigmoid(),
        Kind::Recip => x[0].recip(),
        Kind::PowScalar(p) => x[0].powf(c(p)),
        Kind::Pow => x[0].powf(x[1]),
        Kind::Cmp(k) => {
            if k.holds(x[0], x[1]) {
                S::one()
            } else {
                S::zero()
            }
        }
        Kind::Where => {
            if x[0] != S::zero() {
                x[1]
            } else {
                x[2]
            }
        }
        Kind::Clamp(lo, hi) => {
            if x[0] < c(lo) {
                c(lo)
            } else if x[0] > c(hi) {
                c(hi)
            } else {
                x[0]
            }
        }
        Kind::Maximum => x[0].max(x[1]),
        Kind::Minimum => x[0].min(x[1]),
        Kind::Log1p => x[0].ln_1p(),
        Kind::Expm1 => x[0].exp_m1(),
        // The tanh form as written (its `1 + tanh` cancels in the left tail: the domain below
        // stays where that costs a few ulps).
        Kind::GeluTanh => {
            let u = c((2.0 / std::f64::consts::PI).sqrt()) * (x[0] + c(0.044715) * x[0].powi(3));
            c(0.5) * x[0] * (S::one() + u.tanh())
        }
        Kind::Silu => x[0] * x[0].sigmoid(),
        Kind::Erf | Kind::Gelu => return None,
    })
}

/// Value and derivative of the one-input functions the scalar engine does not have, from libm
/// and the textbook formulas: `erf' = 2 / sqrt(pi) exp(-x^2)`; `gelu = x Phi(x)` with
/// `Phi(x) = erfc(-x / sqrt 2) / 2`, `gelu' = Phi(x) + x phi(x)`, `phi` the normal density.
fn textbook(kind: Kind, x: f64) -> Option<(f64, f64)> {
    use std::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI, PI};
    match kind {
        Kind::Erf => Some((libm::erf(x), FRAC_2_SQRT_PI * (-x * x).exp())),
        Kind::Gelu => {
            let cdf = 0.5 * libm::erfc(-x * FRAC_1_SQRT_2);
            let pdf = (-0.5 * x * x).exp() / (2.0 * PI).sqrt();
            Some((x * cdf, cdf + x * pdf))
        }
        _ => None,
    }
}

struct Row {
    name: &'static str,
    kind: Kind,
    /// One domain per input.
    domains: &'static [Dom],
    /// Sets of input shapes (one shape per input).
    shapes: &'static [&'static [&'static [usize]]],
    /// Tolerance of the finite-difference comparisons, relative to `1 + |exact|`.
    tol: f64,
}

const UNARY: &[&[&[usize]]] = &[&[&[]], &[&[5]], &[&[2, 3]], &[&[2, 1, 2]]];
const BINARY: &[&[&[usize]]] = &[
    &[&[2, 3], &[2, 3]],
    &[&[2, 3], &[3]],
    &[&[2, 1], &[1, 3]],
    &[&[3], &[2, 3]],
    &[&[], &[4]],
    &[&[2, 1, 3], &[4, 1]],
];
const TERNARY: &[&[&[usize]]] = &[
    &[&[2, 3], &[2, 3], &[2, 3]],
    &[&[3], &[2, 1], &[1, 3]],
    &[&[2, 1], &[3], &[]],
    &[&[2, 3], &[2, 3], &[1]],
];

const ANY: Dom = Dom::U(-2.0, 2.0);
const POSITIVE: Dom = Dom::U(0.2, 3.0);
const AWAY_FROM_0: Dom = Dom::Away(-2.0, 2.0, &[0.0], 0.05);
const CLAMP_LO: f64 = -0.5;
const CLAMP_HI: f64 = 0.8;

fn rows() -> Vec<Row> {
    let unary = |name, kind, dom: &'static [Dom]| Row {
        name,
        kind,
        domains: dom,
        shapes: UNARY,
        tol: 1e-6,
    };
    let binary = |name, kind| Row {
        name,
        kind,
        domains: &[ANY, ANY],
        shapes: BINARY,
        tol: 1e-6,
    };
    vec![
        unary("sqrt", Kind::Sqrt, &[POSITIVE]),
        unary("abs", Kind::Abs, &[AWAY_FROM_0]),
        unary("sin", Kind::Sin, &[Dom::U(-3.0, 3.0)]),
        unary("cos", Kind::Cos, &[Dom::U(-3.0, 3.0)]),
        unary("tanh", Kind::Tanh, &[Dom::U(-2.5, 2.5)]),
        unary("relu", Kind::Relu, &[AWAY_FROM_0]),
        unary("softplus", Kind::Softplus, &[Dom::U(-6.0, 6.0)]),
        unary("log_sigmoid", Kind::LogSigmoid, &[Dom::U(-6.0, 6.0)]),
        unary("recip", Kind::Recip, &[Dom::Away(-2.0, 2.0, &[0.0], 0.3)]),
        unary("pow_scalar 3", Kind::PowScalar(3.0), &[ANY]),
        unary("pow_scalar 1", Kind::PowScalar(1.0), &[ANY]),
        unary("pow_scalar 0", Kind::PowScalar(0.0), &[ANY]),
        unary("pow_scalar 0.5", Kind::PowScalar(0.5), &[POSITIVE]),
        unary(
            "pow_scalar -1.5",
            Kind::PowScalar(-1.5),
            &[Dom::U(0.3, 2.5)],
        ),
        Row {
            name: "pow",
            kind: Kind::Pow,
            domains: &[Dom::U(0.3, 2.5), ANY],
            shapes: BINARY,
            tol: 1e-6,
        },
        binary("equal", Kind::Cmp(CmpKind::Eq)),
        binary("not_equal", Kind::Cmp(CmpKind::Ne)),
        binary("less", Kind::Cmp(CmpKind::Lt)),
        binary("less_equal", Kind::Cmp(CmpKind::Le)),
        binary("greater", Kind::Cmp(CmpKind::Gt)),
        binary("greater_equal", Kind::Cmp(CmpKind::Ge)),
        Row {
            name: "select",
            kind: Kind::Where,
            domains: &[Dom::Mask, ANY, ANY],
            shapes: TERNARY,
            tol: 1e-6,
        },
        unary(
            "clamp",
            Kind::Clamp(CLAMP_LO, CLAMP_HI),
            &[Dom::Away(-2.0, 2.0, &[CLAMP_LO, CLAMP_HI], 0.05)],
        ),
        binary("maximum", Kind::Maximum),
        binary("minimum", Kind::Minimum),
        unary("log1p", Kind::Log1p, &[Dom::U(-0.8, 3.0)]),
        unary("expm1", Kind::Expm1, &[Dom::U(-3.0, 3.0)]),
        unary("erf", Kind::Erf, &[Dom::U(-2.5, 2.5)]),
        unary("gelu", Kind::Gelu, &[Dom::U(-4.0, 4.0)]),
        unary("gelu_tanh", Kind::GeluTanh, &[Dom::U(-4.0, 4.0)]),
        unary("silu", Kind::Silu, &[Dom::U(-6.0, 6.0)]),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Seeded inputs, one tensor per input of `row`, for shape set `s` and trial `trial`.
fn inputs(row_index: usize, s: usize, trial: u64, row: &Row) -> (SplitMix, Vec<Tensor<f64>>) {
    let seed = 0x7E57_0000 ^ ((row_index as u64) << 16) ^ ((s as u64) << 8) ^ trial;
    let mut rng = SplitMix(seed);
    let xs = row
        .domains
        .iter()
        .zip(row.shapes[s])
        .map(|(&d, shape)| rng.tensor(shape, d))
        .collect();
    (rng, xs)
}

/// Directions: random for differentiable inputs, zero for masks.
fn directions(rng: &mut SplitMix, row: &Row, xs: &[Tensor<f64>]) -> Vec<Tensor<f64>> {
    row.domains
        .iter()
        .zip(xs)
        .map(|(d, x)| match d {
            Dom::Mask => Tensor::zeros(x.shape()),
            _ => rng.tensor(x.shape(), Dom::U(-1.0, 1.0)),
        })
        .collect()
}

fn eval(kind: Kind, xs: &[Tensor<f64>]) -> Tensor<f64> {
    let refs: Vec<&Tensor<f64>> = xs.iter().collect();
    apply(kind, &refs).unwrap()
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// `x + t v` for each input.
fn shifted(xs: &[Tensor<f64>], vs: &[Tensor<f64>], t: f64) -> Vec<Tensor<f64>> {
    xs.iter().zip(vs).map(|(x, v)| x.add(&v.scale(t))).collect()
}

/// The first-order VJP of `kind` at `xs` with output cotangent `u`, one per input.
fn vjp<T: perturb::tensor::Element>(kind: Kind, xs: &[Tensor<T>], u: &Tensor<T>) -> Vec<Tensor<T>> {
    let tape = TensorTape::new();
    let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
    let refs: Vec<_> = vars.iter().collect();
    let y = apply(kind, &refs).unwrap();
    tape.vjp(&y, u, &refs).unwrap()
}

fn assert_close(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "{what}: got {got}, want {want} (tolerance {tol})"
    );
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// The rows whose tensor values come from vectorised polynomials rather than the scalar
/// engine's libm calls (`exp`, `sigmoid`, `softplus`, `log_sigmoid`, `tanh`, on CPUs with AVX2
/// and FMA): they, and derivatives built from them, agree with the scalar engine within 3 ulps
/// rather than bit for bit.
const VECTORISED: &[&str] = &["exp", "sigmoid", "softplus", "log_sigmoid", "tanh"];

/// The rows whose values match their reference bit for bit but whose slopes are built from
/// `exp` or `sigmoid`, so agree within a few ulps, as the rows above.
const VECTORISED_SLOPE: &[&str] = &["expm1", "erf", "gelu", "silu"];

/// The rows whose reference is the same function written another way (`gelu_tanh`: `x
/// sigmoid(z)` against `x (1 + tanh(z / 2)) / 2`): value and slope within 8 ulps of
/// `max(1, |reference|)`.
const REWRITTEN: &[&str] = &["gelu_tanh"];

/// `a` within `ulps` units in the last place of `b` (bit for bit when `ulps` is 0).
fn within_ulps(a: f64, b: f64, ulps: f64) -> bool {
    same_bits(a, b) || (a - b).abs() <= ulps * f64::EPSILON * b.abs()
}

// ---------------------------------------------------------------------------------------------
// The checks, every row
// ---------------------------------------------------------------------------------------------

const TRIALS: u64 = 3;

#[test]
fn values_match_the_scalar_engine() {
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            let (_, xs) = inputs(r, s, 0, row);
            let y = eval(row.kind, &xs);
            let spread: Vec<Vec<f64>> = xs
                .iter()
                .map(|x| x.try_broadcast_to(y.shape()).unwrap().to_vec())
                .collect();
            for (k, &yk) in y.as_slice().iter().enumerate() {
                let args: Vec<f64> = spread.iter().map(|x| x[k]).collect();
                let want = scalar(row.kind, &args)
                    .unwrap_or_else(|| textbook(row.kind, args[0]).unwrap().0);
                let ulps = if VECTORISED.contains(&row.name) {
                    3.0
                } else {
                    0.0
                };
                let ok = if REWRITTEN.contains(&row.name) {
                    (yk - want).abs() <= 8.0 * f64::EPSILON * want.abs().max(1.0)
                } else if row.name == "gelu" {
                    // The textbook form rounds -x / sqrt 2, which costs up to about x^2 ulps
                    // in the left tail; the operation puts that rounding back (see the test of
                    // gelu against 800-digit values below).
                    let x = args[0];
                    (yk - want).abs() <= (1.0 + x * x) * f64::EPSILON * want.abs()
                } else {
                    within_ulps(yk, want, ulps)
                };
                assert!(
                    ok,
                    "{} {:?} at {args:?}: {yk} vs {want}",
                    row.name, row.shapes[s]
                );
            }
        }
    }
}

#[test]
fn gradients_match_the_scalar_engine_elementwise() {
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            let shapes = row.shapes[s];
            if shapes.iter().any(|sh| sh != &shapes[0]) {
                continue; // broadcasting: covered by the finite differences below
            }
            let (_, xs) = inputs(r, s, 0, row);
            let tape = TensorTape::new();
            let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
            let refs: Vec<_> = vars.iter().collect();
            let y = apply(row.kind, &refs).unwrap().sum_all();
            let grads = tape.gradient(&y, &refs).unwrap();
            for k in 0..xs[0].len() {
                let args: Vec<f64> = xs.iter().map(|x| x.as_slice()[k]).collect();
                let want: Vec<f64> = if let Some((_, slope)) = textbook(row.kind, args[0]) {
                    vec![slope]
                } else if args.len() == 1 {
                    vec![perturb::derivative(|d| scalar(row.kind, &[d]).unwrap(), args[0]).1]
                } else {
                    perturb::gradient(|v| scalar(row.kind, v).unwrap(), &args).1
                };
                for (i, w) in want.iter().enumerate() {
                    let got = grads[i].as_slice()[k];
                    // One-input rules compute the same expression as the scalar rule, to the
                    // bit where its values are libm's. Where they are not, a slope computed
                    // from the value may cancel (`1 - tanh^2` near saturation), so it agrees
                    // to a few ulps of 1 or of itself, whichever is larger.
                    let near =
                        VECTORISED.contains(&row.name) || VECTORISED_SLOPE.contains(&row.name);
                    let ok = match (args.len(), near) {
                        _ if REWRITTEN.contains(&row.name) => {
                            (got - w).abs() <= 8.0 * f64::EPSILON * w.abs().max(1.0)
                        }
                        (1, false) => same_bits(got, *w),
                        (1, true) => (got - w).abs() <= 4.0 * f64::EPSILON * w.abs().max(1.0),
                        _ => (got - w).abs() <= 1e-15 * w.abs().max(1.0),
                    };
                    assert!(
                        ok,
                        "{} {shapes:?} d/dx{i} at {args:?}: {got} vs {w}",
                        row.name
                    );
                }
            }
        }
    }
}

#[test]
fn vjps_match_central_differences() {
    let h = 1e-6;
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            for trial in 0..TRIALS {
                let (mut rng, xs) = inputs(r, s, trial, row);
                let vs = directions(&mut rng, row, &xs);
                let y = eval(row.kind, &xs);
                let u = rng.tensor(y.shape(), Dom::U(-1.0, 1.0));
                let cts = vjp(row.kind, &xs, &u);
                let exact: f64 = cts.iter().zip(&vs).map(|(c, v)| dot(c, v)).sum();
                let plus = dot(&u, &eval(row.kind, &shifted(&xs, &vs, h)));
                let minus = dot(&u, &eval(row.kind, &shifted(&xs, &vs, -h)));
                let fd = (plus - minus) / (2.0 * h);
                let what = format!("{} {:?} trial {trial}", row.name, row.shapes[s]);
                assert_close(&what, exact, fd, row.tol);
                for (c, x) in cts.iter().zip(&xs) {
                    assert_eq!(c.shape(), x.shape(), "{what}: cotangent shape");
                }
            }
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            let (mut rng, xs) = inputs(r, s, 0, row);
            let y = eval(row.kind, &xs);
            let u = rng.tensor(y.shape(), Dom::U(-1.0, 1.0));
            let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
            let refs32: Vec<&Tensor<f32>> = xs32.iter().collect();
            let y32 = apply(row.kind, &refs32).unwrap();
            let what = format!("{} {:?}", row.name, row.shapes[s]);
            assert!(
                y32.cast::<f64>().all_close(&y, 1e-4),
                "{what}: {y32:?} vs {y:?}"
            );
            let cts = vjp(row.kind, &xs, &u);
            let cts32 = vjp(row.kind, &xs32, &u.cast());
            for (c32, c) in cts32.iter().zip(&cts) {
                assert!(
                    c32.cast::<f64>().all_close(c, 1e-4),
                    "{what}: {c32:?} vs {c:?}"
                );
            }
        }
    }
}

#[test]
fn hessian_vector_products_match_differences_of_the_vjp() {
    let h = 1e-5;
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            for trial in 0..TRIALS {
                let (mut rng, xs) = inputs(r, s, trial, row);
                let vs = directions(&mut rng, row, &xs);
                let y = eval(row.kind, &xs);
                let u = rng.tensor(y.shape(), Dom::U(-1.0, 1.0));

                // H v of <u, f(x)>: the outer tape's VJP is recorded on the inner tape.
                let inner = TensorTape::new();
                let xi: Vec<_> = xs.iter().map(|x| inner.var(x.clone())).collect();
                let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
                let xo: Vec<_> = xi.iter().map(|x| outer.var(x.clone())).collect();
                let xo_refs: Vec<_> = xo.iter().collect();
                let yo = apply(row.kind, &xo_refs).unwrap();
                let g = outer
                    .vjp(&yo, &TensorVar::constant(u.clone()), &xo_refs)
                    .unwrap();
                let mut total = TensorVar::constant(Tensor::scalar(0.0));
                for (gi, vi) in g.iter().zip(&vs) {
                    total = total.add(&gi.mul(&TensorVar::constant(vi.clone())).sum_all());
                }
                let xi_refs: Vec<_> = xi.iter().collect();
                let hv = inner.gradient(&total, &xi_refs).unwrap();

                let plus = vjp(row.kind, &shifted(&xs, &vs, h), &u);
                let minus = vjp(row.kind, &shifted(&xs, &vs, -h), &u);
                let what = format!("{} {:?} trial {trial}", row.name, row.shapes[s]);
                for (i, hvi) in hv.iter().enumerate() {
                    assert_eq!(hvi.shape(), xs[i].shape(), "{what}: H v shape");
                    for (k, &got) in hvi.as_slice().iter().enumerate() {
                        let fd = (plus[i].as_slice()[k] - minus[i].as_slice()[k]) / (2.0 * h);
                        assert_close(&format!("{what} (H v)[{i}][{k}]"), got, fd, row.tol);
                    }
                }
            }
        }
    }
}

/// A row's operation as a function for the forward-mode checks.
struct RowFn(Kind);

impl Function for RowFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        apply(self.0, xs)
    }
}

/// Which inputs are differentiated: all but masks.
fn active(row: &Row) -> Vec<bool> {
    row.domains
        .iter()
        .map(|d| !matches!(d, Dom::Mask))
        .collect()
}

#[test]
fn jvps_match_central_differences_and_the_vjps() {
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            for trial in 0..TRIALS {
                let (mut rng, xs) = inputs(r, s, trial, row);
                let vs = directions(&mut rng, row, &xs);
                let y = eval(row.kind, &xs);
                let u = rng.tensor(y.shape(), Dom::U(-1.0, 1.0));
                let what = format!("{} {:?} trial {trial}", row.name, row.shapes[s]);
                check_first_order(&what, &RowFn(row.kind), &xs, &active(row), &vs, &u, row.tol);
            }
        }
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    for (r, row) in rows().iter().enumerate() {
        for s in 0..row.shapes.len() {
            for trial in 0..TRIALS {
                let (mut rng, xs) = inputs(r, s, trial, row);
                let vs = directions(&mut rng, row, &xs);
                let zs = directions(&mut rng, row, &xs);
                let y = eval(row.kind, &xs);
                let u = rng.tensor(y.shape(), Dom::U(-1.0, 1.0));
                let what = format!("{} {:?} trial {trial}", row.name, row.shapes[s]);
                let f = RowFn(row.kind);
                check_second_order(&what, &f, &xs, &active(row), &vs, &zs, &u, row.tol);
            }
        }
    }
}

#[test]
fn every_operation_added_has_a_row() {
    let names: Vec<&str> = rows().iter().map(|r| r.name).collect();
    for op in [
        "sqrt",
        "abs",
        "sin",
        "cos",
        "tanh",
        "relu",
        "softplus",
        "log_sigmoid",
        "recip",
        "pow_scalar 0",
        "pow",
        "equal",
        "not_equal",
        "less",
        "less_equal",
        "greater",
        "greater_equal",
        "select",
        "clamp",
        "maximum",
        "minimum",
        "log1p",
        "expm1",
        "erf",
        "gelu",
        "gelu_tanh",
        "silu",
    ] {
        assert!(names.contains(&op), "no row for {op}");
    }
    assert_eq!(names.len(), 31);
}

// ---------------------------------------------------------------------------------------------
// Conventions at kinks, ties and NaN
// ---------------------------------------------------------------------------------------------

fn v(values: &[f64]) -> Tensor<f64> {
    Tensor::vector(values)
}

/// The gradient of `sum(f(inputs))` with respect to every input.
fn grad_of_sum(kind: Kind, xs: &[Tensor<f64>]) -> Vec<Vec<f64>> {
    let y = eval(kind, xs);
    vjp(kind, xs, &Tensor::ones(y.shape()))
        .iter()
        .map(|g| g.to_vec())
        .collect()
}

#[test]
fn abs_and_relu_have_derivative_zero_at_zero_as_the_scalar_rules() {
    let x = v(&[-1.5, 0.0, 2.0]);
    // sign(x) with 0 at 0; the step x > 0
    assert_eq!(
        grad_of_sum(Kind::Abs, std::slice::from_ref(&x))[0],
        vec![-1.0, 0.0, 1.0]
    );
    assert_eq!(
        grad_of_sum(Kind::Relu, std::slice::from_ref(&x))[0],
        vec![0.0, 0.0, 1.0]
    );
    for kind in [Kind::Abs, Kind::Relu] {
        assert_eq!(
            perturb::derivative(|d| scalar(kind, &[d]).unwrap(), 0.0).1,
            0.0,
            "{kind:?}"
        );
    }
    // relu passes NaN through, with derivative 0 (as rules::Relu)
    let nan = grad_of_sum(Kind::Relu, &[v(&[f64::NAN])]);
    assert!(eval(Kind::Relu, &[v(&[f64::NAN])]).to_vec()[0].is_nan());
    assert_eq!(nan[0], vec![0.0]);
}

#[test]
fn comparisons_at_ties_and_nan() {
    let a = v(&[1.0, 2.0, 3.0, f64::NAN]);
    let b = v(&[2.0, 2.0, 2.0, 2.0]);
    // Rust's float operators, element by element: [1 vs 2, 2 vs 2, 3 vs 2, NaN vs 2]
    let expect = [
        ("equal", CmpKind::Eq, [0.0, 1.0, 0.0, 0.0]),
        ("not_equal", CmpKind::Ne, [1.0, 0.0, 1.0, 1.0]),
        ("less", CmpKind::Lt, [1.0, 0.0, 0.0, 0.0]),
        ("less_equal", CmpKind::Le, [1.0, 1.0, 0.0, 0.0]),
        ("greater", CmpKind::Gt, [0.0, 0.0, 1.0, 0.0]),
        ("greater_equal", CmpKind::Ge, [0.0, 1.0, 1.0, 0.0]),
    ];
    for (name, kind, want) in expect {
        let xs = [a.clone(), b.clone()];
        assert_eq!(eval(Kind::Cmp(kind), &xs).to_vec(), want.to_vec(), "{name}");
        assert_eq!(kind.name(), name);
        // not differentiable: zero cotangents of the inputs' shapes
        assert_eq!(grad_of_sum(Kind::Cmp(kind), &xs), vec![vec![0.0; 4]; 2]);
    }
}

#[test]
fn maximum_and_minimum_split_ties_and_propagate_nan() {
    let a = v(&[1.0, 2.0, 3.0, f64::NAN, 1.0, f64::NAN]);
    let b = v(&[2.0, 2.0, 2.0, 2.0, f64::NAN, f64::NAN]);
    let xs = [a.clone(), b.clone()];
    // As np.maximum, jnp.maximum and torch.maximum: NaN wherever either input is (before,
    // f64::max's [2, 2, 3, 2, 1, NaN] dropped the NaN).
    for kind in [Kind::Maximum, Kind::Minimum] {
        let y = eval(kind, &xs).to_vec();
        assert!(y[3..].iter().all(|v| v.is_nan()), "{kind:?}: {y:?}");
    }
    assert_eq!(&eval(Kind::Maximum, &xs).to_vec()[..3], &[2.0, 2.0, 3.0]);
    assert_eq!(&eval(Kind::Minimum, &xs).to_vec()[..3], &[1.0, 2.0, 2.0]);
    // The larger gets the derivative, each half at the tie; where a NaN decided, neither.
    let g = grad_of_sum(Kind::Maximum, &xs);
    assert_eq!(g[0], vec![0.0, 0.5, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(g[1], vec![1.0, 0.5, 0.0, 0.0, 0.0, 0.0]);
    let g = grad_of_sum(Kind::Minimum, &xs);
    assert_eq!(g[0], vec![1.0, 0.5, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(g[1], vec![0.0, 0.5, 1.0, 0.0, 0.0, 0.0]);
    // Without NaN, both agree with the scalar engine's partials element by element (whose
    // max is f64::max, which drops a NaN).
    for kind in [Kind::Maximum, Kind::Minimum] {
        let g = grad_of_sum(kind, &xs);
        let pairs = a.as_slice().iter().zip(b.as_slice()).take(3);
        for ((&ak, &bk), (&ga, &gb)) in pairs.zip(g[0].iter().zip(&g[1])) {
            let want = perturb::gradient(|x| scalar(kind, x).unwrap(), &[ak, bk]).1;
            assert_eq!(vec![ga, gb], want, "{kind:?} at {ak}, {bk}");
        }
    }
    // A broadcast tie: the scalar 2 ties with one element of a and wins over two.
    let g = grad_of_sum(Kind::Maximum, &[v(&[1.0, 2.0, 3.0]), Tensor::scalar(2.0)]);
    assert_eq!(g[1], vec![1.5]); // 1 + 1/2 + 0
}

#[test]
fn clamp_passes_the_gradient_at_the_bounds_and_rejects_crossed_bounds() {
    let x = v(&[-1.0, -0.5, 0.0, 0.8, 1.0, f64::NAN]);
    let kind = Kind::Clamp(-0.5, 0.8);
    let y = eval(kind, std::slice::from_ref(&x)).to_vec();
    assert_eq!(&y[..5], &[-0.5, -0.5, 0.0, 0.8, 0.8]);
    assert!(y[5].is_nan());
    // PyTorch's convention: 1 where min <= x <= max, the bounds included; 0 for NaN
    assert_eq!(
        grad_of_sum(kind, &[x])[0],
        vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    );

    let t = v(&[1.0]);
    let err = t.try_clamp(1.0, 0.0).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "clamp", .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("clamp: "), "{err}");
    assert!(t.try_clamp(f64::NAN, 0.0).is_err());
    assert!(t.try_clamp(0.0, f64::NAN).is_err());
    assert_eq!(t.try_clamp(1.0, 1.0).unwrap().to_vec(), vec![1.0]);
    // on a tape too
    let tape = TensorTape::new();
    assert!(tape.var(t).try_clamp(2.0, -2.0).is_err());
}

#[test]
#[should_panic(expected = "clamp: the lower bound 1 must not exceed the upper bound 0")]
fn clamp_panics_with_crossed_bounds() {
    let _ = v(&[1.0]).clamp(1.0, 0.0);
}

#[test]
fn select_with_a_nonbinary_mask_and_gradients_to_both_branches() {
    // any nonzero (NaN included) selects the first branch
    let mask = v(&[2.0, 0.0, -0.0, f64::NAN]);
    let a = v(&[1.0, 2.0, 3.0, 4.0]);
    let b = Tensor::scalar(10.0);
    let xs = [mask, a, b];
    assert_eq!(eval(Kind::Where, &xs).to_vec(), vec![1.0, 10.0, 10.0, 4.0]);
    let g = grad_of_sum(Kind::Where, &xs);
    assert_eq!(g[0], vec![0.0; 4]); // the mask gets nothing
    assert_eq!(g[1], vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(g[2], vec![2.0]); // summed back to the scalar's shape: two elements chose it
}

#[test]
fn pow_conventions_where_the_base_is_not_positive_or_the_exponent_is_zero() {
    // a: [0, -2, 0, 3, -1.5], b: [2, 3, 0, 0, 0.5]
    let a = v(&[0.0, -2.0, 0.0, 3.0, -1.5]);
    let b = v(&[2.0, 3.0, 0.0, 0.0, 0.5]);
    let xs = [a.clone(), b.clone()];
    let g = grad_of_sum(Kind::Pow, &xs);
    // d/da = b a^(b-1): 0, 3 * 4 = 12, 0 (b = 0), 0 (b = 0), NaN ((-1.5)^-0.5)
    assert_eq!(&g[0][..4], &[0.0, 12.0, 0.0, 0.0]);
    assert!(g[0][4].is_nan());
    // d/db = a^b ln a where a > 0, else 0: 0, 0, 0, ln 3, 0
    assert_eq!(g[1], vec![0.0, 0.0, 0.0, 3.0_f64.ln(), 0.0]);
    let pairs = a.as_slice().iter().zip(b.as_slice());
    for ((&ak, &bk), (&ga, &gb)) in pairs.zip(g[0].iter().zip(&g[1])) {
        let args = [ak, bk];
        let want = perturb::gradient(|x| scalar(Kind::Pow, x).unwrap(), &args).1;
        for (got, w) in [ga, gb].iter().zip(&want) {
            assert!(
                same_bits(*got, *w) || got == w,
                "pow at {args:?}: {got} vs {w}"
            );
        }
    }
    // The exponent's partial is 0, not NaN, where a^b is infinite (0^-1).
    let g = grad_of_sum(Kind::Pow, &[v(&[0.0]), v(&[-1.0])]);
    assert_eq!(g[1], vec![0.0]);

    // Second order at a = 0, b = 0 stays finite (the base is replaced by 1 there).
    let inner = TensorTape::new();
    let (ai, bi) = (inner.var(v(&[0.0])), inner.var(v(&[0.0])));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let (ao, bo) = (outer.var(ai.clone()), outer.var(bi.clone()));
    let y = ao.pow(&bo).sum_all();
    let g = outer.gradient(&y, &[&ao, &bo]).unwrap();
    let s = g[0].add(&g[1]).sum_all();
    let h = inner.gradient(&s, &[&ai, &bi]).unwrap();
    for hi in &h {
        assert!(hi.to_vec().iter().all(|x| x.is_finite()), "{h:?}");
    }
}

#[test]
fn pow_scalar_zero_has_zero_gradient_everywhere() {
    // x^0 = 1 (powf), even at 0: the gradient is exactly 0 everywhere
    let x = v(&[0.0, -3.0, 2.0]);
    assert_eq!(
        eval(Kind::PowScalar(0.0), std::slice::from_ref(&x)).to_vec(),
        vec![1.0; 3]
    );
    assert_eq!(grad_of_sum(Kind::PowScalar(0.0), &[x])[0], vec![0.0; 3]);
    // x^2 at 0: derivative 2 * 0^1 = 0
    assert_eq!(
        grad_of_sum(Kind::PowScalar(2.0), &[v(&[0.0])])[0],
        vec![0.0]
    );
}

// ---------------------------------------------------------------------------------------------
// Stability
// ---------------------------------------------------------------------------------------------

/// Value, first and second derivative of an element-wise op at each point, by nested tapes.
fn value_and_two_derivatives(kind: Kind, x: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let inner = TensorTape::new();
    let xi = inner.var(v(x));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(xi.clone());
    let y = apply(kind, &[&xo]).unwrap();
    let d1 = outer.gradient(&y.sum_all(), &[&xo]).unwrap().remove(0);
    let d2 = inner.gradient(&d1.sum_all(), &[&xi]).unwrap().remove(0);
    (y.value().value().to_vec(), d1.value().to_vec(), d2.to_vec())
}

#[test]
fn softplus_and_log_sigmoid_are_stable_at_plus_minus_800() {
    let x = [800.0, -800.0];
    let (y, d1, d2) = value_and_two_derivatives(Kind::Softplus, &x);
    // softplus(800) = 800 + ln(1 + e^-800) = 800 exactly in f64; softplus(-800) = e^-800 = 0
    assert_eq!(y, vec![800.0, 0.0]);
    // derivative sigmoid(x): 1 and e^-800 (0 in f64)
    assert_eq!(d1, vec![1.0, 0.0]);
    // second derivative s(x) s(-x): e^-800, 0 in f64
    assert_eq!(d2, vec![0.0, 0.0]);

    let (y, d1, d2) = value_and_two_derivatives(Kind::LogSigmoid, &x);
    // log_sigmoid(800) = -softplus(-800) = -0; log_sigmoid(-800) = -800
    assert_eq!(y, vec![0.0, -800.0]);
    // derivative sigmoid(-x): 0 and 1
    assert_eq!(d1, vec![0.0, 1.0]);
    // second derivative -s(x) s(-x): 0 in f64
    assert!(
        d2.iter().all(|d| d.is_finite() && d.abs() < 1e-300),
        "{d2:?}"
    );
}

#[test]
fn sigmoid_at_minus_800_has_a_finite_derivative() {
    let tape = TensorTape::new();
    let x = tape.var(v(&[-800.0, 800.0]));
    let y = x.sigmoid();
    // e^-800 underflows to 0; 1 / (1 + e^-800) = 1
    assert_eq!(y.value().to_vec(), vec![0.0, 1.0]);
    let g = tape.gradient(&y.sum_all(), &[&x]).unwrap().remove(0);
    // s(x) s(-x) = e^-800 (0 in f64) at both ends, not NaN
    assert_eq!(g.to_vec(), vec![0.0, 0.0]);
}

#[test]
fn the_sigmoid_slope_is_accurate_on_both_sides_of_its_switch_and_in_the_tails() {
    // sigmoid'(x) = e / (1 + e)^2 with e = exp(-|x|), evaluated directly (even in x): the
    // slope is computed as s (1 - s) below x = 1 and from exp(-x) above, and must keep its
    // relative accuracy (a few units in the last place) throughout, second derivative
    // s'(x) (1 - 2 s(x)) included.
    let points = [
        -40.0, -5.0, -1.0, 0.0, 0.5, 0.999, 1.0, 1.001, 2.0, 5.0, 20.0, 40.0,
    ];
    let inner = TensorTape::new();
    let xi = inner.var(v(&points));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(xi.clone());
    let d1 = outer
        .gradient(&xo.sigmoid().sum_all(), &[&xo])
        .unwrap()
        .remove(0);
    let d2 = inner
        .gradient(&d1.sum_all(), &[&xi])
        .unwrap()
        .remove(0)
        .to_vec();
    let d1 = d1.value().to_vec();
    for (i, &x) in points.iter().enumerate() {
        let e = (-f64::abs(x)).exp();
        let slope = e / ((1.0 + e) * (1.0 + e));
        let s = if x >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        let curvature = slope * (1.0 - 2.0 * s);
        assert!(
            (d1[i] - slope).abs() <= 1e-15 * slope,
            "sigmoid'({x}) = {} vs {slope}",
            d1[i]
        );
        assert!(
            (d2[i] - curvature).abs() <= 1e-14 * slope,
            "sigmoid''({x}) = {} vs {curvature}",
            d2[i]
        );
    }
}

#[test]
fn tanh_and_the_trig_functions_stay_finite_far_out() {
    for kind in [Kind::Tanh, Kind::Sin, Kind::Cos] {
        let (y, d1, d2) = value_and_two_derivatives(kind, &[800.0, -800.0]);
        for z in y.iter().chain(&d1).chain(&d2) {
            assert!(z.is_finite(), "{kind:?}: {y:?} {d1:?} {d2:?}");
        }
    }
}

#[test]
fn log1p_and_expm1_keep_their_digits_near_zero() {
    // ln(1 + x) and exp(x) - 1 are x - x^2/2 and x + x^2/2 to first order: x itself at 1e-20
    // (the plain forms give 0 there); slopes 1/(1 + x) and e^x are 1, second derivatives -1
    // and 1 (x^2 terms are below the last bit).
    let x = [1e-20, -1e-20];
    let (y, d1, d2) = value_and_two_derivatives(Kind::Log1p, &x);
    assert_eq!((y, d1, d2), (x.to_vec(), vec![1.0; 2], vec![-1.0; 2]));
    let (y, d1, d2) = value_and_two_derivatives(Kind::Expm1, &x);
    assert_eq!((y, d1, d2), (x.to_vec(), vec![1.0; 2], vec![1.0; 2]));
    // expm1 far out on the left: -1, its slope e^x, 0 in f64 (not (-1) + 1 by cancellation).
    let (y, d1, d2) = value_and_two_derivatives(Kind::Expm1, &[-800.0, -40.0]);
    assert_eq!(y, vec![-1.0, -1.0]);
    assert_eq!(d1, vec![0.0, (-40.0_f64).exp()]);
    assert_eq!(d2, vec![0.0, (-40.0_f64).exp()]);
}

#[test]
fn erf_gelu_gelu_tanh_and_silu_are_exact_far_out_at_every_order() {
    // Far on the right each is x (erf 1) with slope 1 (erf 0); far on the left 0 with slope
    // 0; second derivatives 0: the normal density, sigmoid' and exp(-x^2) underflow (silu
    // is not yet flat at 60: silu(-60) = -60 e^-60), and no 0 * inf makes a NaN, even where
    // x^2 overflows (1e200).
    let right = [800.0, 1e30, 1e200];
    let left = [-800.0, -1e30, -1e200];
    for kind in [Kind::Erf, Kind::Gelu, Kind::GeluTanh, Kind::Silu] {
        let (y, d1, d2) = value_and_two_derivatives(kind, &right);
        let want = if matches!(kind, Kind::Erf) {
            vec![1.0; 3]
        } else {
            right.to_vec()
        };
        let slope = if matches!(kind, Kind::Erf) { 0.0 } else { 1.0 };
        assert_eq!(y, want, "{kind:?} on the right");
        assert_eq!(d1, vec![slope; 3], "{kind:?}' on the right");
        assert_eq!(d2, vec![0.0; 3], "{kind:?}'' on the right");
        let (y, d1, d2) = value_and_two_derivatives(kind, &left);
        let want = if matches!(kind, Kind::Erf) { -1.0 } else { 0.0 };
        assert_eq!(y, vec![want; 3], "{kind:?} on the left");
        assert_eq!(d1, vec![0.0; 3], "{kind:?}' on the left");
        assert_eq!(d2, vec![0.0; 3], "{kind:?}'' on the left");
    }
    // f32, where x^3 overflows past 7e12.
    let x = Tensor::<f32>::vector(&[1e30, -1e30, 200.0, -200.0]);
    for kind in [Kind::Erf, Kind::Gelu, Kind::GeluTanh, Kind::Silu] {
        let g = vjp(kind, std::slice::from_ref(&x), &Tensor::ones(&[4])).remove(0);
        let want = if matches!(kind, Kind::Erf) {
            vec![0.0; 4]
        } else {
            vec![1.0, 0.0, 1.0, 0.0]
        };
        assert_eq!(g.to_vec(), want, "{kind:?} in f32");
    }
}

/// Value, first and second derivative of an element-wise op at each point, in `T`: the second
/// by reverse over reverse (nested tapes) and by forward over reverse (`hessian`), which must
/// agree bit for bit (NaN with NaN).
fn derivatives_in<T: perturb::tensor::Element + std::fmt::LowerExp>(
    kind: Kind,
    x: &[T],
) -> [Vec<T>; 3] {
    let inner = TensorTape::new();
    let xi = inner.var(Tensor::vector(x));
    let outer = TensorTape::<TensorVar<Tensor<T>>>::over();
    let xo = outer.var(xi.clone());
    let y = apply(kind, &[&xo]).unwrap();
    let d1 = outer.gradient(&y.sum_all(), &[&xo]).unwrap().remove(0);
    let d2 = inner.gradient(&d1.sum_all(), &[&xi]).unwrap().remove(0);
    let d2 = d2.to_vec();
    for (i, &xi) in x.iter().enumerate() {
        let h =
            perturb::tensor::hessian(|v| Ok(apply(kind, &[v])?.sum_all()), &Tensor::vector(&[xi]))
                .unwrap()
                .to_vec()[0];
        let same = h == d2[i] || (h.is_nan() && d2[i].is_nan());
        assert!(
            same,
            "{kind:?}''({xi:e}): hessian {h:e}, nested tapes {:e}",
            d2[i]
        );
    }
    [y.value().value().to_vec(), d1.value().to_vec(), d2]
}

/// The limits of `(f, f', f'')` at `x`, infinite or so large that `x^2` or `x^3` overflow, as
/// worked out by hand: erf tends to `sign(x)`, gelu, gelu_tanh and silu to `x` on the right and
/// to 0 on the left, their slopes to 1 (0 for erf) and 0, the second derivatives to 0 (the
/// normal density, `exp(-x^2)` and `sigmoid'` decay faster than any power grows); log1p and
/// expm1, sqrt and recip by their formulas in `f64`.
fn limit_far_out(kind: Kind, x: f64) -> [f64; 3] {
    let right = x > 0.0;
    match kind {
        Kind::Erf => [x.signum(), 0.0, 0.0],
        Kind::Gelu | Kind::GeluTanh | Kind::Silu if right => [x, 1.0, 0.0],
        Kind::Gelu | Kind::GeluTanh | Kind::Silu => [0.0, 0.0, 0.0],
        Kind::Tanh => [x.signum(), 0.0, 0.0],
        Kind::Softplus if right => [x, 1.0, 0.0],
        Kind::Softplus => [0.0, 0.0, 0.0],
        Kind::LogSigmoid if right => [0.0, 0.0, 0.0],
        Kind::LogSigmoid => [x, 1.0, 0.0],
        // ln(1 + x), 1 / (1 + x), -1 / (1 + x)^2 (right only)
        Kind::Log1p => [x.ln_1p(), 1.0 / (1.0 + x), -1.0 / ((1.0 + x) * (1.0 + x))],
        // exp(x) - 1, exp(x), exp(x)
        Kind::Expm1 => [x.exp_m1(), x.exp(), x.exp()],
        // sqrt(x), 1 / (2 sqrt(x)), -1 / (4 x sqrt(x)) (right only)
        Kind::Sqrt => [x.sqrt(), 0.5 / x.sqrt(), -0.25 / (x * x.sqrt())],
        // 1 / x, -1 / x^2, 2 / x^3 (the last two underflow to 0 this far out)
        Kind::Recip => [1.0 / x, 0.0, 0.0],
        _ => unreachable!(),
    }
}

/// Issue 15's hostile review: at infinite arguments, and where `x^2` (erf, gelu) or `x^3`
/// (gelu_tanh) overflow, each function, slope and second derivative is its limit, not NaN from
/// `0 * inf` (a factor such as `2x` or `x` overflowing against a density that underflowed), in
/// `f64` and `f32`; and NaN in gives NaN at every order (no clamp may swallow it). The older
/// functions whose rules have the same shape (a slope times a factor) are checked alike.
#[test]
fn the_smooth_functions_take_their_limits_at_infinity_at_every_order() {
    let both = [
        Kind::Erf,
        Kind::Gelu,
        Kind::GeluTanh,
        Kind::Silu,
        Kind::Tanh,
        Kind::Softplus,
        Kind::LogSigmoid,
        Kind::Expm1,
        Kind::Recip,
    ];
    let f64_points = [
        f64::INFINITY,
        1.7e308,
        1e308,
        -1e308,
        -1.7e308,
        f64::NEG_INFINITY,
    ];
    let f32_points = [
        f32::INFINITY,
        3e38,
        1.7e38,
        -1.7e38,
        -3e38,
        f32::NEG_INFINITY,
    ];
    let close =
        |got: f64, want: f64| got == want || (got - want).abs() <= 4.0 * f64::EPSILON * want.abs();
    for kind in both.iter().chain(&[Kind::Log1p, Kind::Sqrt]) {
        let right_only = matches!(kind, Kind::Log1p | Kind::Sqrt);
        let keep = |x: &f64| !right_only || *x > 0.0;
        let xs: Vec<f64> = f64_points.iter().copied().filter(keep).collect();
        let got = derivatives_in(*kind, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = limit_far_out(*kind, x);
            for order in 0..3 {
                let g = got[order][i];
                assert!(
                    close(g, want[order]),
                    "{kind:?} order {order} at {x:e}: {g:e}, want {:e}",
                    want[order]
                );
            }
        }
        let xs: Vec<f32> = f32_points
            .iter()
            .copied()
            .filter(|x| keep(&f64::from(*x)))
            .collect();
        let got = derivatives_in(*kind, &xs);
        for (i, &x) in xs.iter().enumerate() {
            // f32's limits are f64's rounded (the finite ones are computed in f32 here).
            let want = limit_far_out(*kind, f64::from(x));
            for order in 0..3 {
                let g = f64::from(got[order][i]);
                let w = f64::from(want[order] as f32);
                let ok = g == w || (g - w).abs() <= 4.0 * f64::from(f32::EPSILON) * w.abs();
                assert!(
                    ok,
                    "{kind:?} order {order} at {x:e} in f32: {g:e}, want {w:e}"
                );
            }
        }
        let [y, d1, d2] = derivatives_in(*kind, &[f64::NAN]);
        assert!(
            y[0].is_nan() && d1[0].is_nan() && d2[0].is_nan(),
            "{kind:?} at NaN: {y:?} {d1:?} {d2:?}"
        );
        let [y, d1, d2] = derivatives_in(*kind, &[f32::NAN]);
        assert!(
            y[0].is_nan() && d1[0].is_nan() && d2[0].is_nan(),
            "{kind:?} at NaN in f32"
        );
    }
}

/// `sum(f(x) * w)` for one of issue 15's element-wise functions, for `check_grads`.
struct Weighted(Kind);

impl perturb::tensor::TensorFn<f64> for Weighted {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        let w = x.constant_like(&Tensor::vector(&[0.7, -1.3, 0.4, 1.1, -0.6]));
        apply(self.0, &[x])?.try_mul(&w).map(|y| y.sum_all())
    }
}

#[test]
fn the_new_element_wise_functions_pass_check_grads_at_order_two() {
    use perturb::tensor::{check_grads, CheckOptions};
    // Forward and reverse mode, orders one and two, against central differences, at points
    // on both sides of 0 (log1p's on the positive side).
    let x = v(&[-2.2, -0.7, 0.1, 0.9, 2.6]);
    for kind in [
        Kind::Log1p,
        Kind::Expm1,
        Kind::Erf,
        Kind::Gelu,
        Kind::GeluTanh,
        Kind::Silu,
    ] {
        let x = if matches!(kind, Kind::Log1p) {
            x.map(|v| v.abs())
        } else {
            x.clone()
        };
        let report = check_grads(&Weighted(kind), &x, &CheckOptions::default()).unwrap();
        assert!(report.passes(1e-6), "{kind:?}: {report}");
    }
}

#[test]
fn gelu_values_against_an_independent_libm_and_in_the_left_tail() {
    // Reference values: gelu from Phi(x) = (1 - erf(-x / sqrt 2)) / 2 by erf's Taylor series in
    // Python's decimal module at 800 digits (pi by Machin's formula), rounded to f64 at the
    // end; glibc's 0.5 * erfc(-x / sqrt(2)) is off by 4 ulps at -3 and 729 at -30, as
    // rounding -x / sqrt 2 costs up to about x^2 ulps there. The rest from Python's math module
    // (glibc, not the libm crate): x / (1 + exp(-z)) with z = 2 sqrt(2 / pi) (x + 0.044715 x^3)
    // for the tanh form, math.erf.
    let cases = [
        (Kind::Gelu, 1.0, 0.8413447460685429),
        (Kind::Gelu, 3.0, 2.99595030590511),
        (Kind::Gelu, -3.0, -0.0040496940948902835),
        (Kind::Gelu, -30.0, -1.472014178144456e-196),
        (Kind::GeluTanh, 1.0, 0.8411919906082768),
        // 0.5 x (1 + tanh(z / 2)) is -0 here: 1 + tanh cancels to nothing.
        (Kind::GeluTanh, -10.0, -1.2040923482098023e-37),
        (Kind::Erf, 1.0, 0.8427007929497149),
        (Kind::Erf, 0.5, 0.5204998778130465),
    ];
    for (kind, x, want) in cases {
        let got = eval(kind, &[v(&[x])]).to_vec()[0];
        assert!(
            (got - want).abs() <= 4.0 * f64::EPSILON * want.abs(),
            "{kind:?}({x}) = {got:e}, want {want:e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Shape errors
// ---------------------------------------------------------------------------------------------

#[test]
fn shape_errors_name_the_operation_and_both_shapes() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[4]);
    let cases: [(&str, Kind); 10] = [
        ("pow", Kind::Pow),
        ("equal", Kind::Cmp(CmpKind::Eq)),
        ("not_equal", Kind::Cmp(CmpKind::Ne)),
        ("less", Kind::Cmp(CmpKind::Lt)),
        ("less_equal", Kind::Cmp(CmpKind::Le)),
        ("greater", Kind::Cmp(CmpKind::Gt)),
        ("greater_equal", Kind::Cmp(CmpKind::Ge)),
        ("maximum", Kind::Maximum),
        ("minimum", Kind::Minimum),
        ("where", Kind::Where),
    ];
    for (name, kind) in cases {
        let xs: Vec<&Tensor<f64>> = match kind {
            Kind::Where => vec![&a, &a, &b],
            _ => vec![&a, &b],
        };
        let err = apply(kind, &xs).unwrap_err();
        assert_eq!(
            err,
            Error::ShapeMismatch {
                op: name,
                lhs: vec![2, 3],
                rhs: vec![4],
            }
        );
        assert_eq!(
            err.to_string(),
            format!("{name}: shapes [2, 3] and [4] do not match")
        );
        // the same through a tape
        let tape = TensorTape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.var((*x).clone())).collect();
        let refs: Vec<_> = vars.iter().collect();
        assert_eq!(apply(kind, &refs).unwrap_err(), err);
    }
    // the mask against the first branch
    let err = b.try_select(&a, &a).unwrap_err();
    assert_eq!(err.to_string(), "where: shapes [4] and [2, 3] do not match");
}

#[test]
#[should_panic(expected = "maximum: shapes [2, 3] and [4] do not match")]
fn the_panicking_forms_panic_with_the_error() {
    let _ = Tensor::<f64>::zeros(&[2, 3]).maximum(&Tensor::zeros(&[4]));
}

#[test]
#[should_panic(expected = "where: shapes [2] and [3] do not match")]
fn select_panics_with_the_error() {
    let _ = Tensor::<f64>::zeros(&[2]).select(&Tensor::zeros(&[2]), &Tensor::zeros(&[3]));
}

/// The NaN convention (README, "NaN"): every comparison-based operation returns NaN where a NaN
/// input reaches the result, and passes no derivative through an element that a NaN decided,
/// in reverse and forward mode alike. Before, maximum([1, NaN, 3], 2) gave [2, 2, 3] while
/// max_axes of the same tensor gave NaN.
#[test]
fn one_nan_convention_for_every_comparison_based_operation() {
    use perturb::tensor::{grad, jvp};
    let x = v(&[1.0, f64::NAN, 3.0]);
    // Each operation, its value at x, and the derivative of its sum (the same by both modes).
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("maximum", vec![2.0, f64::NAN, 3.0], vec![0.0, 0.0, 1.0]),
        ("minimum", vec![1.0, f64::NAN, 2.0], vec![1.0, 0.0, 0.0]),
        ("clamp", vec![1.0, f64::NAN, 2.0], vec![1.0, 0.0, 0.0]),
        ("relu", vec![1.0, f64::NAN, 3.0], vec![1.0, 0.0, 1.0]),
        ("abs", vec![1.0, f64::NAN, 3.0], vec![1.0, 0.0, 1.0]),
        ("max_axes", vec![f64::NAN], vec![0.0, 0.0, 0.0]),
        ("min_axes", vec![f64::NAN], vec![0.0, 0.0, 0.0]),
    ];
    fn apply<A: Array<Elem = f64>>(name: &str, x: &A) -> Result<A, Error> {
        let two = x.constant_like(&Tensor::scalar(2.0));
        match name {
            "maximum" => x.try_maximum(&two),
            "minimum" => x.try_minimum(&two),
            "clamp" => x.try_clamp(0.0, 2.0),
            "relu" => Ok(x.relu()),
            "abs" => Ok(x.abs()),
            "max_axes" => x.try_max_axes(&[0], false),
            _ => x.try_min_axes(&[0], false),
        }
    }
    let same = |got: &[f64], want: &[f64]| {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(g, w)| g == w || (g.is_nan() && w.is_nan()))
    };
    for (name, value, slope) in cases {
        let y = apply(name, &x).unwrap();
        assert!(same(y.as_slice(), &value), "{name}: value {y:?}");
        let g = grad(|x| Ok(apply(name, x)?.sum_all()), &x).unwrap();
        assert!(same(g.as_slice(), &slope), "{name}: gradient {g:?}");
        // Forward mode, one unit tangent at a time.
        for (i, &want) in slope.iter().enumerate() {
            let mut e = vec![0.0; 3];
            e[i] = 1.0;
            let (_, t) = jvp(|x| Ok(apply(name, x)?.sum_all()), &x, &v(&e)).unwrap();
            assert_eq!(t.item(), Some(want), "{name}: tangent {i}");
        }
    }
    // select follows its mask (a NaN in the mask counts as nonzero) and its derivative the
    // branch it chose.
    let mask = v(&[1.0, f64::NAN, 0.0]);
    let g = grad(
        |x| {
            Ok(x.constant_like(&mask)
                .try_select(x, &x.scale(3.0))?
                .sum_all())
        },
        &x,
    )
    .unwrap();
    assert_eq!(g.to_vec(), vec![1.0, 1.0, 3.0]);
}
