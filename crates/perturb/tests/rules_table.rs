//! One row per elementary function perturb differentiates, each checked in every mode.
//!
//! Each row of [`rows`] names a function, the box its arguments are sampled from (plus a
//! predicate that keeps samples away from kinks and jumps), a finite-difference tolerance, the
//! function written once for any [`Scalar`], and its gradient written by hand in plain `f64`
//! (never by calling `perturb::rules`).
//!
//! At seeded pseudo-random points and directions every row is checked:
//! - first order: `Dual` (per partial and along a direction), the tape (`Var`), `DualN` and
//!   `DualVec` against the hand-written gradient (1e-12 relative) and a central finite
//!   difference of the value (h = 1e-6);
//! - second order: `v^T H v` by `Dual<Dual<f64>>`, and `H v` by forward over reverse
//!   (`perturb::hvp`, i.e. `Var<Dual<f64>>`), reverse over forward (`Dual<Var<f64>>`) and reverse
//!   over reverse (`Var<Var<f64>>`), against each other and a central difference of the
//!   forward-mode first derivative;
//! - `f32` against `f64` for the one-argument rows.
//!
//! Then a coverage guard (the row names, and every rule and `Float` method found in the source),
//! the conventions at non-differentiable points, and stability far out in the tails.

use num_traits::Float;
use perturb::{Dual, DualN, Scalar, TangentArena, Tape, Var};

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// One elementary function under test.
struct Row {
    name: &'static str,
    op: Op,
    /// Sampling interval per argument.
    domain: &'static [(f64, f64)],
    /// Samples for which this is false are drawn again (keeps away from kinks and jumps).
    keep: fn(&[f64]) -> bool,
    /// Tolerance for the finite-difference comparisons, relative to `1 + |derivative|`.
    fd_tol: f64,
    /// The gradient, written by hand.
    grad: fn(&[f64]) -> Vec<f64>,
}

impl Row {
    fn arity(&self) -> usize {
        self.domain.len()
    }
}

fn always(_: &[f64]) -> bool {
    true
}

/// Builds the `Op` enum (one variant per row, with a generic `eval`) and `rows()` from one list,
/// so a function and its hand-written derivative always sit side by side.
macro_rules! table {
    ($(
        $id:ident $name:literal [$(($lo:expr, $hi:expr)),+ $(,)?]
        $(keep |$k:ident| $keep:expr;)?
        $(fd_tol $tol:expr;)?
        f |$x:ident| $f:expr;
        df |$a:ident| $df:expr;
    )*) => {
        #[derive(Clone, Copy, Debug)]
        enum Op { $($id),* }

        impl Op {
            /// The function, written once for every scalar type.
            fn eval<T: Scalar>(self, xs: &[T]) -> T {
                match self {
                    $(Op::$id => {
                        let $x = xs;
                        $f
                    })*
                }
            }
        }

        fn rows() -> Vec<Row> {
            vec![$(
                Row {
                    name: $name,
                    op: Op::$id,
                    domain: &[$(($lo, $hi)),+],
                    keep: table!(@keep $(|$k| $keep)?),
                    fd_tol: table!(@tol $($tol)?),
                    grad: {
                        fn grad($a: &[f64]) -> Vec<f64> {
                            $df
                        }
                        grad
                    },
                }
            ),*]
        }
    };
    (@keep) => { always };
    (@keep |$k:ident| $keep:expr) => {{
        fn keep($k: &[f64]) -> bool {
            $keep
        }
        keep
    }};
    (@tol) => { 1e-6 };
    (@tol $tol:expr) => { $tol };
}

/// Distance from `x` to the nearest integer.
fn dist_to_int(x: f64) -> f64 {
    (x - x.round()).abs()
}

/// `d/dx |x|` away from 0.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else {
        -1.0
    }
}

/// `1 if c else 0`.
fn ind(c: bool) -> f64 {
    if c {
        1.0
    } else {
        0.0
    }
}

const LN2: f64 = std::f64::consts::LN_2;
const LN10: f64 = std::f64::consts::LN_10;
const PI: f64 = std::f64::consts::PI;

table! {
    // ---- exponentials and logarithms ----
    Exp "exp" [(-3.0, 3.0)]
        f |x| x[0].exp();
        df |a| vec![a[0].exp()];
    Exp2 "exp2" [(-3.0, 3.0)]
        f |x| x[0].exp2();
        // 2^x = e^(x ln 2)
        df |a| vec![(a[0] * LN2).exp() * LN2];
    ExpM1 "exp_m1" [(-3.0, 3.0)]
        f |x| x[0].exp_m1();
        df |a| vec![a[0].exp()];
    Ln "ln" [(0.1, 5.0)]
        f |x| x[0].ln();
        df |a| vec![1.0 / a[0]];
    Ln1p "ln_1p" [(-0.9, 4.0)]
        f |x| x[0].ln_1p();
        df |a| vec![1.0 / (1.0 + a[0])];
    Log "log" [(0.2, 5.0), (1.5, 5.0)]
        f |x| x[0].log(x[1]);
        // log_b(x) = ln x / ln b
        df |a| {
            let (x, b) = (a[0], a[1]);
            vec![1.0 / (x * b.ln()), -x.ln() / (b * b.ln() * b.ln())]
        };
    LogSmallBase "log_base_below_1" [(0.2, 5.0), (0.2, 0.8)]
        f |x| x[0].log(x[1]);
        df |a| {
            let (x, b) = (a[0], a[1]);
            vec![1.0 / (x * b.ln()), -x.ln() / (b * b.ln() * b.ln())]
        };
    Log2 "log2" [(0.1, 5.0)]
        f |x| x[0].log2();
        df |a| vec![1.0 / (a[0] * LN2)];
    Log10 "log10" [(0.1, 5.0)]
        f |x| x[0].log10();
        df |a| vec![1.0 / (a[0] * LN10)];

    // ---- powers ----
    Powi0 "powi_0" [(-2.0, 2.0)]
        f |x| x[0].powi(0);
        df |_a| vec![0.0];
    Powi1 "powi_1" [(-2.0, 2.0)]
        f |x| x[0].powi(1);
        df |_a| vec![1.0];
    Powi2 "powi_2" [(-2.0, 2.0)]
        f |x| x[0].powi(2);
        df |a| vec![2.0 * a[0]];
    Powi3 "powi_3" [(-2.0, 2.0)]
        f |x| x[0].powi(3);
        df |a| vec![3.0 * a[0] * a[0]];
    PowiM1 "powi_-1" [(-2.0, 2.0)]
        keep |p| p[0].abs() > 0.3;
        f |x| x[0].powi(-1);
        df |a| vec![-1.0 / (a[0] * a[0])];
    PowiM2 "powi_-2" [(-2.0, 2.0)]
        keep |p| p[0].abs() > 0.3;
        f |x| x[0].powi(-2);
        df |a| vec![-2.0 / (a[0] * a[0] * a[0])];
    Powf "powf" [(0.2, 3.0), (-2.0, 2.5)]
        f |x| x[0].powf(x[1]);
        // x^y = e^(y ln x)
        df |a| {
            let (x, y) = (a[0], a[1]);
            let v = (y * x.ln()).exp();
            vec![v * y / x, v * x.ln()]
        };
    Sqrt "sqrt" [(0.1, 5.0)]
        f |x| x[0].sqrt();
        df |a| vec![0.5 / a[0].sqrt()];
    Cbrt "cbrt" [(-5.0, 5.0)]
        keep |p| p[0].abs() > 0.1;
        f |x| x[0].cbrt();
        // d/dx x^(1/3) = 1 / (3 |x|^(2/3)) on both sides of 0
        df |a| vec![1.0 / (3.0 * a[0].abs().powf(2.0 / 3.0))];
    Recip "recip" [(-4.0, 4.0)]
        keep |p| p[0].abs() > 0.2;
        f |x| x[0].recip();
        df |a| vec![-1.0 / (a[0] * a[0])];

    // ---- trigonometric ----
    Sin "sin" [(-4.0, 4.0)]
        f |x| x[0].sin();
        df |a| vec![a[0].cos()];
    Cos "cos" [(-4.0, 4.0)]
        f |x| x[0].cos();
        df |a| vec![-a[0].sin()];
    SinCos "sin_cos" [(-4.0, 4.0)]
        // 2 sin + cos, so swapping the pair would be noticed
        f |x| {
            let (s, c) = x[0].sin_cos();
            s + s + c
        };
        df |a| vec![2.0 * a[0].cos() - a[0].sin()];
    Tan "tan" [(-1.3, 1.3)]
        f |x| x[0].tan();
        df |a| vec![1.0 / (a[0].cos() * a[0].cos())];
    Asin "asin" [(-0.9, 0.9)]
        f |x| x[0].asin();
        df |a| vec![1.0 / ((1.0 - a[0]) * (1.0 + a[0])).sqrt()];
    Acos "acos" [(-0.9, 0.9)]
        f |x| x[0].acos();
        df |a| vec![-1.0 / ((1.0 - a[0]) * (1.0 + a[0])).sqrt()];
    Atan "atan" [(-4.0, 4.0)]
        f |x| x[0].atan();
        df |a| vec![1.0 / (1.0 + a[0] * a[0])];
    Atan2 "atan2" [(-3.0, 3.0), (-3.0, 3.0)]
        // away from the origin and from the branch cut (b < 0, a = 0)
        keep |p| p[0].hypot(p[1]) > 0.3 && !(p[1] < 0.0 && p[0].abs() < 0.1);
        f |x| x[0].atan2(x[1]);
        // atan2(a, b) is the angle of (b, a): d = (b da - a db) / (a^2 + b^2)
        df |a| {
            let r2 = a[0] * a[0] + a[1] * a[1];
            vec![a[1] / r2, -a[0] / r2]
        };
    ToDegrees "to_degrees" [(-4.0, 4.0)]
        f |x| x[0].to_degrees();
        df |_a| vec![180.0 / PI];
    ToRadians "to_radians" [(-4.0, 4.0)]
        f |x| x[0].to_radians();
        df |_a| vec![PI / 180.0];

    // ---- hyperbolic ----
    Sinh "sinh" [(-3.0, 3.0)]
        f |x| x[0].sinh();
        df |a| vec![a[0].cosh()];
    Cosh "cosh" [(-3.0, 3.0)]
        f |x| x[0].cosh();
        df |a| vec![a[0].sinh()];
    Tanh "tanh" [(-3.0, 3.0)]
        f |x| x[0].tanh();
        df |a| vec![1.0 / (a[0].cosh() * a[0].cosh())];
    Asinh "asinh" [(-4.0, 4.0)]
        f |x| x[0].asinh();
        df |a| vec![1.0 / (a[0] * a[0] + 1.0).sqrt()];
    Acosh "acosh" [(1.1, 4.0)]
        f |x| x[0].acosh();
        df |a| vec![1.0 / ((a[0] - 1.0) * (a[0] + 1.0)).sqrt()];
    Atanh "atanh" [(-0.9, 0.9)]
        f |x| x[0].atanh();
        df |a| vec![1.0 / ((1.0 - a[0]) * (1.0 + a[0]))];

    // ---- several arguments ----
    Hypot "hypot" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| p[0].hypot(p[1]) > 0.3;
        f |x| x[0].hypot(x[1]);
        df |a| {
            let r = (a[0] * a[0] + a[1] * a[1]).sqrt();
            vec![a[0] / r, a[1] / r]
        };
    MulAdd "mul_add" [(-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0)]
        f |x| x[0].mul_add(x[1], x[2]);
        df |a| vec![a[1], a[0], 1.0];

    // ---- piecewise ----
    Abs "abs" [(-3.0, 3.0)]
        keep |p| p[0].abs() > 0.05;
        f |x| x[0].abs();
        df |a| vec![sign(a[0])];
    AbsSub "abs_sub" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| (p[0] - p[1]).abs() > 0.05;
        f |x| x[0].abs_sub(x[1]);
        // max(a - b, 0)
        df |a| {
            let d = ind(a[0] > a[1]);
            vec![d, -d]
        };
    Max "max" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| (p[0] - p[1]).abs() > 0.05;
        f |x| x[0].max(x[1]);
        df |a| vec![ind(a[0] > a[1]), ind(a[1] > a[0])];
    Min "min" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| (p[0] - p[1]).abs() > 0.05;
        f |x| x[0].min(x[1]);
        df |a| vec![ind(a[0] < a[1]), ind(a[1] < a[0])];
    Fract "fract" [(-4.0, 4.0)]
        keep |p| dist_to_int(p[0]) > 0.05;
        f |x| x[0].fract();
        df |_a| vec![1.0];
    Floor "floor" [(-4.0, 4.0)]
        keep |p| dist_to_int(p[0]) > 0.05;
        f |x| x[0].floor();
        df |_a| vec![0.0];
    Ceil "ceil" [(-4.0, 4.0)]
        keep |p| dist_to_int(p[0]) > 0.05;
        f |x| x[0].ceil();
        df |_a| vec![0.0];
    Round "round" [(-4.0, 4.0)]
        keep |p| dist_to_int(p[0] + 0.5) > 0.05;
        f |x| x[0].round();
        df |_a| vec![0.0];
    Trunc "trunc" [(-4.0, 4.0)]
        keep |p| dist_to_int(p[0]) > 0.05;
        f |x| x[0].trunc();
        df |_a| vec![0.0];
    Signum "signum" [(-4.0, 4.0)]
        keep |p| p[0].abs() > 0.05;
        f |x| x[0].signum();
        df |_a| vec![0.0];

    // ---- operators ----
    Add "add" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| x[0] + x[1];
        df |_a| vec![1.0, 1.0];
    Sub "sub" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| x[0] - x[1];
        df |_a| vec![1.0, -1.0];
    Mul "mul" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| x[0] * x[1];
        df |a| vec![a[1], a[0]];
    Div "div" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| p[1].abs() > 0.3;
        f |x| x[0] / x[1];
        df |a| vec![1.0 / a[1], -a[0] / (a[1] * a[1])];
    Rem "rem" [(-5.0, 5.0), (-2.5, 2.5)]
        // away from b = 0 and from the jumps where a / b is an integer
        keep |p| p[1].abs() > 0.5 && dist_to_int(p[0] / p[1]) > 0.02;
        f |x| x[0] % x[1];
        // a % b = a - b trunc(a / b), trunc locally constant
        df |a| vec![1.0, -(a[0] / a[1]).trunc()];
    Neg "neg" [(-3.0, 3.0)]
        f |x| -x[0];
        df |_a| vec![-1.0];
    AddAssign "add_assign" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| {
            let mut y = x[0];
            y += x[1];
            y
        };
        df |_a| vec![1.0, 1.0];
    SubAssign "sub_assign" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| {
            let mut y = x[0];
            y -= x[1];
            y
        };
        df |_a| vec![1.0, -1.0];
    MulAssign "mul_assign" [(-3.0, 3.0), (-3.0, 3.0)]
        f |x| {
            let mut y = x[0];
            y *= x[1];
            y
        };
        df |a| vec![a[1], a[0]];
    DivAssign "div_assign" [(-3.0, 3.0), (-3.0, 3.0)]
        keep |p| p[1].abs() > 0.3;
        f |x| {
            let mut y = x[0];
            y /= x[1];
            y
        };
        df |a| vec![1.0 / a[1], -a[0] / (a[1] * a[1])];
    RemAssign "rem_assign" [(-5.0, 5.0), (-2.5, 2.5)]
        keep |p| p[1].abs() > 0.5 && dist_to_int(p[0] / p[1]) > 0.02;
        f |x| {
            let mut y = x[0];
            y %= x[1];
            y
        };
        df |a| vec![1.0, -(a[0] / a[1]).trunc()];
    Sum "sum" [(-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0)]
        f |x| x.iter().copied().sum();
        df |_a| vec![1.0, 1.0, 1.0];
    Product "product" [(-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0)]
        f |x| x.iter().copied().product();
        df |a| vec![a[1] * a[2], a[0] * a[2], a[0] * a[1]];

    // ---- perturb's extras ----
    Sigmoid "sigmoid" [(-6.0, 6.0)]
        f |x| x[0].sigmoid();
        // s = 1 / (1 + e^-x), s' = e^-x / (1 + e^-x)^2
        df |a| {
            let e = (-a[0]).exp();
            vec![e / ((1.0 + e) * (1.0 + e))]
        };
    LogSigmoid "log_sigmoid" [(-6.0, 6.0)]
        f |x| x[0].log_sigmoid();
        // d/dx -ln(1 + e^-x) = e^-x / (1 + e^-x) = 1 / (1 + e^x)
        df |a| vec![1.0 / (1.0 + a[0].exp())];
    Softplus "softplus" [(-6.0, 6.0)]
        f |x| x[0].softplus();
        // d/dx ln(1 + e^x) = e^x / (1 + e^x) = 1 / (1 + e^-x)
        df |a| vec![1.0 / (1.0 + (-a[0]).exp())];
    Relu "relu" [(-3.0, 3.0)]
        keep |p| p[0].abs() > 0.05;
        f |x| x[0].relu();
        df |a| vec![ind(a[0] > 0.0)];
}

/// Every row the table must have. Adding a function to perturb means adding its row here and
/// in the table; removing a row by accident fails `table_has_exactly_the_expected_rows`.
const EXPECTED_ROWS: &[&str] = &[
    "exp",
    "exp2",
    "exp_m1",
    "ln",
    "ln_1p",
    "log",
    "log_base_below_1",
    "log2",
    "log10",
    "powi_0",
    "powi_1",
    "powi_2",
    "powi_3",
    "powi_-1",
    "powi_-2",
    "powf",
    "sqrt",
    "cbrt",
    "recip",
    "sin",
    "cos",
    "sin_cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "to_degrees",
    "to_radians",
    "sinh",
    "cosh",
    "tanh",
    "asinh",
    "acosh",
    "atanh",
    "hypot",
    "mul_add",
    "abs",
    "abs_sub",
    "max",
    "min",
    "fract",
    "floor",
    "ceil",
    "round",
    "trunc",
    "signum",
    "add",
    "sub",
    "mul",
    "div",
    "rem",
    "neg",
    "add_assign",
    "sub_assign",
    "mul_assign",
    "div_assign",
    "rem_assign",
    "sum",
    "product",
    "sigmoid",
    "log_sigmoid",
    "softplus",
    "relu",
];

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator, so every run samples the same points.
struct SplitMix(u64);

impl SplitMix {
    /// Seeded from the row's name (FNV-1a), so a row's points do not depend on its position.
    fn for_row(name: &str, salt: u64) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        SplitMix(h)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// A point in the row's domain that its `keep` predicate accepts.
    fn point(&mut self, row: &Row) -> Vec<f64> {
        for _ in 0..10_000 {
            let x: Vec<f64> = row
                .domain
                .iter()
                .map(|&(lo, hi)| self.uniform(lo, hi))
                .collect();
            if (row.keep)(&x) {
                return x;
            }
        }
        panic!("{}: no acceptable sample in 10000 draws", row.name);
    }

    /// A direction with components in [-1, 1), none tiny (so every argument takes part).
    fn direction(&mut self, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let m = self.uniform(0.25, 1.0);
                if self.unit() < 0.5 {
                    -m
                } else {
                    m
                }
            })
            .collect()
    }
}

/// Points per row.
const POINTS: usize = 8;

/// Step of the central differences.
const H: f64 = 1e-6;

/// Agreement of an AD derivative with the hand-written one, relative.
const ANALYTIC_TOL: f64 = 1e-12;

/// Agreement of two AD modes on a second derivative, relative to `1 + |values|`.
const MODES_TOL: f64 = 1e-10;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(x: &[f64], t: f64, v: &[f64]) -> Vec<f64> {
    x.iter().zip(v).map(|(xi, vi)| xi + t * vi).collect()
}

/// `|got - want| <= tol * scale`, or exactly equal (covers zeros and infinities).
fn close(got: f64, want: f64, tol: f64, scale: f64) -> bool {
    got == want || (got - want).abs() <= tol * scale
}

/// Relative closeness.
fn rel_close(got: f64, want: f64, tol: f64) -> bool {
    close(got, want, tol, got.abs().max(want.abs()))
}

/// Runs `check` on every row at `POINTS` points and fails with every mismatch found.
fn for_each_point(salt: u64, mut check: impl FnMut(&Row, &[f64], &[f64], &mut Vec<String>)) {
    let mut failures = Vec::new();
    for row in rows() {
        let mut rng = SplitMix::for_row(row.name, salt);
        for _ in 0..POINTS {
            let x = rng.point(&row);
            let v = rng.direction(row.arity());
            check(&row, &x, &v, &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Derivatives by each mode
// ---------------------------------------------------------------------------------------------

/// The directional derivative `<grad f(x), v>` by one `Dual` pass.
fn dual_directional(op: Op, x: &[f64], v: &[f64]) -> f64 {
    let xs: Vec<Dual<f64>> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| Dual::new(xi, vi))
        .collect();
    op.eval(&xs).tangent()
}

/// The gradient by `Dual`, one pass per partial.
fn dual_gradient(op: Op, x: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let xs: Vec<Dual<f64>> = x
                .iter()
                .enumerate()
                .map(|(j, &xj)| {
                    if i == j {
                        Dual::variable(xj)
                    } else {
                        Dual::constant(xj)
                    }
                })
                .collect();
            op.eval(&xs).tangent()
        })
        .collect()
}

/// The value and gradient by one reverse sweep.
fn tape_gradient(op: Op, x: &[f64]) -> (f64, Vec<f64>) {
    let tape = Tape::new();
    let xs = tape.vars(x);
    let y = op.eval(&xs);
    let g = tape.gradient(y).expect("gradient");
    (y.value(), g.wrt(&xs).expect("wrt"))
}

/// The gradient by one `DualN<f64, 3>` pass (rows have at most three arguments).
fn dual_n_gradient(op: Op, x: &[f64]) -> Vec<f64> {
    assert!(x.len() <= 3);
    let xs: Vec<DualN<f64, 3>> = x
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let mut t = [0.0; 3];
            t[i] = 1.0;
            DualN::new(xi, t)
        })
        .collect();
    op.eval(&xs).tangents()[..x.len()].to_vec()
}

/// The gradient by one `DualVec` pass.
fn dual_vec_gradient(op: Op, x: &[f64]) -> Vec<f64> {
    let arena = TangentArena::new(x.len());
    let xs = arena.variables(x).expect("variables");
    arena.tangents(op.eval(&xs)).expect("tangents")
}

/// `v^T H v` by forward over forward.
fn vhv_dual_dual(op: Op, x: &[f64], v: &[f64]) -> f64 {
    let xs: Vec<Dual<Dual<f64>>> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| Dual::new(Dual::new(xi, vi), Dual::constant(vi)))
        .collect();
    op.eval(&xs).tangent().tangent()
}

/// `H v` by forward over reverse (`Var<Dual<f64>>`, through `perturb::hvp`).
fn hv_forward_over_reverse(op: Op, x: &[f64], v: &[f64]) -> Vec<f64> {
    perturb::hvp(|xs| op.eval(xs), x, v).expect("hvp")
}

/// `H v` by reverse over forward: the tape records the tangent `<grad f, v>` (`Dual<Var<f64>>`)
/// and is swept from it.
fn hv_reverse_over_forward(op: Op, x: &[f64], v: &[f64]) -> Vec<f64> {
    let tape = Tape::new();
    let xv = tape.vars(x);
    let xs: Vec<Dual<Var<f64>>> = xv
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| Dual::new(xi, Var::constant(vi)))
        .collect();
    let directional = op.eval(&xs).tangent();
    tape.gradient(directional)
        .expect("gradient")
        .wrt(&xv)
        .expect("wrt")
}

/// `H v` by reverse over reverse: record on an inner tape through an outer one
/// (`Var<Var<f64>>`), sweep the outer tape (its adjoints are recorded on the inner one), then
/// sweep the inner tape from `<outer gradient, v>`.
fn hv_reverse_over_reverse(op: Op, x: &[f64], v: &[f64]) -> Vec<f64> {
    let inner = Tape::new();
    let xi = inner.vars(x);
    let outer = Tape::new();
    let xo = outer.vars(&xi);
    let y = op.eval(&xo);
    let g = outer
        .gradient(y)
        .expect("outer gradient")
        .wrt(&xo)
        .expect("outer wrt");
    let directional: Var<f64> = g.iter().zip(v).map(|(&gi, &vi)| gi * vi).sum();
    inner
        .gradient(directional)
        .expect("inner gradient")
        .wrt(&xi)
        .expect("inner wrt")
}

// ---------------------------------------------------------------------------------------------
// The table's checks
// ---------------------------------------------------------------------------------------------

#[test]
fn first_order_every_mode_matches_analytic_and_finite_difference() {
    for_each_point(1, |row, x, v, fails| {
        let name = row.name;
        let op = row.op;
        // perturb documents mul_add on its numbers as the unfused `self * a + b`, while
        // f64::mul_add is fused (one rounding), so that row's reference value is the unfused one.
        let plain = match op {
            Op::MulAdd => x[0] * x[1] + x[2],
            _ => op.eval(x),
        };
        let want = (row.grad)(x);
        assert_eq!(
            want.len(),
            row.arity(),
            "{name}: hand-written gradient has the wrong length"
        );
        let want_dir = dot(&want, v);
        // Cancellation in <g, v> is bounded by sum |g_i v_i|.
        let dir_scale: f64 = want.iter().zip(v).map(|(g, vi)| (g * vi).abs()).sum();

        let (tape_value, tape) = tape_gradient(op, x);
        if tape_value != plain {
            fails.push(format!(
                "{name} at {x:?}: tape value {tape_value} != f64 value {plain}"
            ));
        }
        let dual_value = op.eval(&x.iter().map(|&xi| Dual::constant(xi)).collect::<Vec<_>>());
        if dual_value.value() != plain {
            fails.push(format!(
                "{name} at {x:?}: Dual value {} != {plain}",
                dual_value.value()
            ));
        }

        let modes = [
            ("Dual", dual_gradient(op, x)),
            ("Tape", tape),
            ("DualN", dual_n_gradient(op, x)),
            ("DualVec", dual_vec_gradient(op, x)),
        ];
        for (mode, got) in &modes {
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                if !rel_close(g, w, ANALYTIC_TOL) {
                    fails.push(format!(
                        "{name} at {x:?}: {mode} partial {i} = {g:e}, hand-written {w:e}"
                    ));
                }
            }
        }

        // Directional derivative: AD vs hand-written vs central difference of the value.
        let fd = (op.eval(&axpy(x, H, v)) - op.eval(&axpy(x, -H, v))) / (2.0 * H);
        let mut directional = vec![("Dual directional", dual_directional(op, x, v))];
        directional.extend(modes.iter().map(|(mode, g)| (*mode, dot(g, v))));
        for (mode, d) in directional {
            if !close(d, want_dir, ANALYTIC_TOL, dir_scale) {
                fails.push(format!(
                    "{name} at {x:?} along {v:?}: {mode} <g, v> = {d:e}, hand-written {want_dir:e}"
                ));
            }
            if !close(d, fd, row.fd_tol, 1.0 + d.abs()) {
                fails.push(format!(
                    "{name} at {x:?} along {v:?}: {mode} <g, v> = {d:e}, finite difference {fd:e}"
                ));
            }
        }
    });
}

#[test]
fn second_order_every_nesting_agrees_with_finite_difference_and_each_other() {
    for_each_point(2, |row, x, v, fails| {
        let name = row.name;
        let op = row.op;
        let ff = vhv_dual_dual(op, x, v);
        let hv = [
            ("forward over reverse", hv_forward_over_reverse(op, x, v)),
            ("reverse over forward", hv_reverse_over_forward(op, x, v)),
            ("reverse over reverse", hv_reverse_over_reverse(op, x, v)),
        ];

        // Central difference of the forward-mode first derivative along v.
        let h2 = 1e-5;
        let d1 = dual_directional(op, x, v);
        let fd = (dual_directional(op, &axpy(x, h2, v), v)
            - dual_directional(op, &axpy(x, -h2, v), v))
            / (2.0 * h2);
        let fd_scale = 1.0 + ff.abs() + d1.abs();
        if !close(ff, fd, row.fd_tol, fd_scale) {
            fails.push(format!(
                "{name} at {x:?} along {v:?}: Dual<Dual> v'Hv = {ff:e}, finite difference {fd:e}"
            ));
        }

        for (mode, hv_mode) in &hv {
            let vhv = dot(hv_mode, v);
            if !close(vhv, ff, MODES_TOL, 1.0 + vhv.abs() + ff.abs()) {
                fails.push(format!(
                    "{name} at {x:?} along {v:?}: {mode} v'Hv = {vhv:e}, Dual<Dual> {ff:e}"
                ));
            }
            if !close(vhv, fd, row.fd_tol, fd_scale) {
                fails.push(format!(
                    "{name} at {x:?} along {v:?}: {mode} v'Hv = {vhv:e}, finite difference {fd:e}"
                ));
            }
        }
        // The three H v vectors agree component by component, too.
        for (mode, hv_mode) in &hv[1..] {
            for (i, (&a, &b)) in hv_mode.iter().zip(&hv[0].1).enumerate() {
                if !close(a, b, MODES_TOL, 1.0 + a.abs() + b.abs()) {
                    fails.push(format!(
                        "{name} at {x:?} along {v:?}: (Hv)_{i} by {mode} = {a:e}, by forward over reverse {b:e}"
                    ));
                }
            }
        }
    });
}

#[test]
fn f32_dual_matches_f64_dual_for_one_argument_rows() {
    let mut checked = 0;
    for_each_point(3, |row, x, _v, fails| {
        if row.arity() != 1 {
            return;
        }
        checked += 1;
        let x32 = x[0] as f32;
        let d32 = row.op.eval(&[Dual::variable(x32)]).tangent();
        // Same input point (the f32 one) in f64, so only the arithmetic differs.
        let d64 = row.op.eval(&[Dual::variable(f64::from(x32))]).tangent();
        let d32 = f64::from(d32);
        // 1e-4 relative; the 1e-6 floor absorbs f32 rounding where the derivative crosses 0.
        if !close(d32, d64, 1e-4, d64.abs() + 1e-6) {
            fails.push(format!("{} at {x32}: f32 {d32:e}, f64 {d64:e}", row.name));
        }
    });
    // 43 one-argument rows, POINTS each (counted by hand from the table).
    assert_eq!(checked, 43 * POINTS);
}

// ---------------------------------------------------------------------------------------------
// Coverage guard
// ---------------------------------------------------------------------------------------------

#[test]
fn table_has_exactly_the_expected_rows() {
    let rows = rows();
    let names: Vec<&str> = rows.iter().map(|r| r.name).collect();
    let missing: Vec<&&str> = EXPECTED_ROWS
        .iter()
        .filter(|n| !names.contains(n))
        .collect();
    let extra: Vec<&&str> = names
        .iter()
        .filter(|n| !EXPECTED_ROWS.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from the table: {missing:?}"
    );
    assert!(extra.is_empty(), "rows not in EXPECTED_ROWS: {extra:?}");
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate row names");
    // Every row's sampler, hand-written gradient and f64 evaluation run and are finite.
    for row in &rows {
        let x = SplitMix::for_row(row.name, 0).point(row);
        assert!(
            row.op.eval(&x).is_finite(),
            "{}: f({x:?}) not finite",
            row.name
        );
        assert!(
            (row.grad)(&x).iter().all(|g| g.is_finite()),
            "{}: gradient not finite",
            row.name
        );
    }
}

/// The row(s) testing each rule in `perturb::rules`.
fn rows_for_rule(rule: &str) -> &'static [&'static str] {
    match rule {
        "Neg" => &["neg"],
        "Recip" => &["recip"],
        "Sqrt" => &["sqrt"],
        "Cbrt" => &["cbrt"],
        "Exp" => &["exp"],
        "Exp2" => &["exp2"],
        "ExpM1" => &["exp_m1"],
        "Ln" => &["ln"],
        "Log2" => &["log2"],
        "Log10" => &["log10"],
        "Ln1p" => &["ln_1p"],
        "Sin" => &["sin", "sin_cos"],
        "Cos" => &["cos", "sin_cos"],
        "Tan" => &["tan"],
        "Asin" => &["asin"],
        "Acos" => &["acos"],
        "Atan" => &["atan"],
        "Sinh" => &["sinh"],
        "Cosh" => &["cosh"],
        "Tanh" => &["tanh"],
        "Asinh" => &["asinh"],
        "Acosh" => &["acosh"],
        "Atanh" => &["atanh"],
        "Abs" => &["abs"],
        "Sigmoid" => &["sigmoid"],
        "Softplus" => &["softplus"],
        "LogSigmoid" => &["log_sigmoid"],
        "Relu" => &["relu"],
        "Add" => &["add", "add_assign", "sum", "mul_add"],
        "Sub" => &["sub", "sub_assign", "fract", "abs_sub"],
        "Mul" => &[
            "mul",
            "mul_assign",
            "product",
            "mul_add",
            "to_degrees",
            "to_radians",
        ],
        "Div" => &["div", "div_assign"],
        "Rem" => &["rem", "rem_assign"],
        "Powf" => &["powf"],
        "Log" => &["log", "log_base_below_1"],
        "Atan2" => &["atan2"],
        "Hypot" => &["hypot"],
        "Max" => &["max"],
        "Min" => &["min"],
        "Powi" => &["powi_0", "powi_1", "powi_2", "powi_3", "powi_-1", "powi_-2"],
        _ => &[],
    }
}

/// The rule names defined in `src/rules.rs`: the `Name("label") ...: |args| func, grads;` lines of the
/// two rule macros (whatever sits between the name and `: |`), and the hand-written
/// `pub struct Powi(..)`.
fn rules_in_source() -> Vec<String> {
    let src = include_str!("../src/rules.rs");
    let mut names = Vec::new();
    for line in src.lines().map(str::trim) {
        if let Some((head, _)) = line.split_once(": |") {
            // `Name("label") at ...`: the name is the leading identifier.
            let first = head.split_whitespace().next().unwrap_or("");
            let word: String = first
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let rest = &first[word.len()..];
            if word.starts_with(|c: char| c.is_ascii_uppercase())
                && (rest.is_empty() || rest.starts_with('('))
            {
                names.push(word);
            }
        } else if let Some(rest) = line.strip_prefix("pub struct ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if rest[name.len()..].starts_with('(') {
                names.push(name);
            }
        }
    }
    names
}

/// The `Float` methods `src/number.rs` implements for perturb's types that return a number:
/// the `forward_unary!` and `piecewise_constant!` lists and the hand-written `fn m(self..) -> Self`.
fn float_methods_in_source() -> Vec<String> {
    let src = include_str!("../src/number.rs");
    let float_impl = &src[src.find("num_traits::Float for").expect("Float impl")..];
    let mut names = Vec::new();
    for list in ["forward_unary!(", "piecewise_constant!("] {
        let start = float_impl.find(list).expect(list) + list.len();
        let body = &float_impl[start..start + float_impl[start..].find(')').expect(")")];
        for item in body.split(',') {
            let method = item.split("=>").next().unwrap_or("").trim();
            if !method.is_empty() {
                names.push(method.to_string());
            }
        }
    }
    for line in float_impl.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("fn ") {
            let (name, sig) = rest.split_once('(').unwrap_or((rest, ""));
            if sig.starts_with("self") && (sig.contains("-> Self") || sig.contains("-> (Self")) {
                names.push(name.to_string());
            }
        }
    }
    names
}

#[test]
fn every_rule_in_the_source_has_a_row() {
    let rules = rules_in_source();
    // 28 unary rules, 11 binary rules and Powi, counted in src/rules.rs when this test was
    // written; fewer means the parsing no longer matches the file's layout.
    assert!(
        rules.len() >= 40,
        "parsed only {} rules: {rules:?}",
        rules.len()
    );
    let names: Vec<&str> = rows().iter().map(|r| r.name).collect();
    for rule in &rules {
        let tested = rows_for_rule(rule);
        assert!(
            !tested.is_empty(),
            "rule {rule} in src/rules.rs has no row in the table"
        );
        for row in tested {
            assert!(
                names.contains(row),
                "rule {rule}: row {row} is not in the table"
            );
        }
    }
}

#[test]
fn every_float_method_of_perturb_numbers_has_a_row() {
    let methods = float_methods_in_source();
    // 23 forwarded, 5 piecewise constant, 13 hand-written (fract, mul_add, powi, powf, log, max,
    // min, abs_sub, hypot, atan2, sin_cos, to_degrees, to_radians), counted in src/number.rs.
    assert!(
        methods.len() >= 41,
        "parsed only {} methods: {methods:?}",
        methods.len()
    );
    let names: Vec<&str> = rows().iter().map(|r| r.name).collect();
    for m in &methods {
        let ok = match m.as_str() {
            "powi" => names.iter().any(|n| n.starts_with("powi_")),
            other => names.contains(&other),
        };
        assert!(ok, "Float::{m} (src/number.rs) has no row in the table");
    }
}

// ---------------------------------------------------------------------------------------------
// Conventions at non-differentiable points
// ---------------------------------------------------------------------------------------------

/// The gradient of a two-argument function by `Dual` (two passes) and by the tape.
fn grad2(
    f: fn(Dual<f64>, Dual<f64>) -> Dual<f64>,
    g: for<'t> fn(Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>,
    x: [f64; 2],
) -> (Vec<f64>, Vec<f64>) {
    let fwd = vec![
        f(Dual::variable(x[0]), Dual::constant(x[1])).tangent(),
        f(Dual::constant(x[0]), Dual::variable(x[1])).tangent(),
    ];
    let tape = Tape::new();
    let xs = tape.vars(&x);
    let rev = tape.gradient(g(xs[0], xs[1])).unwrap().wrt(&xs).unwrap();
    (fwd, rev)
}

macro_rules! grad2 {
    (|$a:ident, $b:ident| $e:expr, $at:expr) => {
        grad2(|$a, $b| $e, |$a, $b| $e, $at)
    };
}

/// A one-argument function on `Dual<f64>`.
type DualFn = fn(Dual<f64>) -> Dual<f64>;
/// The same function on tape variables.
type VarFn = for<'t> fn(Var<'t, f64>) -> Var<'t, f64>;

/// The derivative of a one-argument function by `Dual` and by the tape.
fn grad1(f: DualFn, g: VarFn, x: f64) -> (f64, f64) {
    let fwd = f(Dual::variable(x)).tangent();
    let tape = Tape::new();
    let xv = tape.var(x);
    let rev = tape.gradient(g(xv)).unwrap()[xv];
    (fwd, rev)
}

macro_rules! grad1 {
    (|$x:ident| $e:expr, $at:expr) => {
        grad1(|$x| $e, |$x| $e, $at)
    };
}

#[test]
fn abs_and_relu_have_derivative_zero_at_zero() {
    // The documented subgradient convention: 0 at the kink, not +-1.
    assert_eq!(grad1!(|x| x.abs(), 0.0), (0.0, 0.0));
    assert_eq!(grad1!(|x| x.relu(), 0.0), (0.0, 0.0));
    // -0.0 is the same point.
    assert_eq!(grad1!(|x| x.abs(), -0.0), (0.0, 0.0));
    // And the one-sided values next to it, so the test would fail if 0 leaked elsewhere.
    assert_eq!(grad1!(|x| x.abs(), 1e-300), (1.0, 1.0));
    assert_eq!(grad1!(|x| x.abs(), -1e-300), (-1.0, -1.0));
    assert_eq!(grad1!(|x| x.relu(), 1e-300), (1.0, 1.0));
    assert_eq!(grad1!(|x| x.relu(), -1e-300), (0.0, 0.0));
}

#[test]
fn max_and_min_split_ties_evenly_in_both_modes() {
    // JAX's convention: at a == b each argument gets 1/2.
    let (fwd, rev) = grad2!(|a, b| a.max(b), [1.5, 1.5]);
    assert_eq!(fwd, vec![0.5, 0.5]);
    assert_eq!(rev, vec![0.5, 0.5]);
    let (fwd, rev) = grad2!(|a, b| a.min(b), [-2.0, -2.0]);
    assert_eq!(fwd, vec![0.5, 0.5]);
    assert_eq!(rev, vec![0.5, 0.5]);
    // max(x, x) of one variable: the halves add up to the derivative of x, 1.
    assert_eq!(grad1!(|x| x.max(x), 0.7), (1.0, 1.0));
    assert_eq!(grad1!(|x| x.min(x), 0.7), (1.0, 1.0));
}

#[test]
fn max_and_min_with_nan_follow_the_other_argument() {
    // f64::max(x, NaN) = x; the derivative must follow x, too: (1, 0).
    for (a, b, want) in [
        (2.0, f64::NAN, vec![1.0, 0.0]),
        (f64::NAN, 2.0, vec![0.0, 1.0]),
    ] {
        for (fwd, rev) in [
            grad2!(|a, b| a.max(b), [a, b]),
            grad2!(|a, b| a.min(b), [a, b]),
        ] {
            assert_eq!(fwd, want, "forward at ({a}, {b})");
            assert_eq!(rev, want, "reverse at ({a}, {b})");
        }
    }
    let y = Dual::variable(2.0).max(Dual::constant(f64::NAN));
    assert_eq!((y.value(), y.tangent()), (2.0, 1.0));
    let y = Dual::constant(f64::NAN).min(Dual::new(-3.0, 4.0));
    assert_eq!((y.value(), y.tangent()), (-3.0, 4.0));
}

#[test]
fn hypot_at_the_origin_has_zero_partials() {
    let (fwd, rev) = grad2!(|a, b| a.hypot(b), [0.0, 0.0]);
    assert_eq!(fwd, vec![0.0, 0.0]);
    assert_eq!(rev, vec![0.0, 0.0]);
    // Off the origin the partials are (a, b) / r: (3/5, 4/5) at (3, 4).
    let (fwd, rev) = grad2!(|a, b| a.hypot(b), [3.0, 4.0]);
    assert_eq!(fwd, vec![0.6, 0.8]);
    assert_eq!(rev, vec![0.6, 0.8]);
}

#[test]
fn piecewise_constant_functions_have_derivative_zero() {
    // At jumps (2.0 for floor/ceil/trunc, 2.5 for round, 0 for signum) and between them.
    for x in [2.0, 2.3, 2.5, -1.7, 0.0] {
        assert_eq!(grad1!(|x| x.floor(), x), (0.0, 0.0), "floor at {x}");
        assert_eq!(grad1!(|x| x.ceil(), x), (0.0, 0.0), "ceil at {x}");
        assert_eq!(grad1!(|x| x.round(), x), (0.0, 0.0), "round at {x}");
        assert_eq!(grad1!(|x| x.trunc(), x), (0.0, 0.0), "trunc at {x}");
        assert_eq!(grad1!(|x| x.signum(), x), (0.0, 0.0), "signum at {x}");
    }
    // The value is still right: floor(2.3) = 2, round(2.5) = 3 (away from zero, as f64::round).
    assert_eq!(Dual::variable(2.3_f64).floor().value(), 2.0);
    assert_eq!(Dual::variable(2.5_f64).round().value(), 3.0);
}

#[test]
fn powf_with_zero_value_has_zero_exponent_partial() {
    // d/dy 0^y = 0^y ln 0 is 0 * -inf; the documented limit from x -> 0+ is 0.
    let (fwd, rev) = grad2!(|a, b| a.powf(b), [0.0, 2.0]);
    // d/dx x^2 at 0 = 2 * 0^1 = 0
    assert_eq!(fwd, vec![0.0, 0.0]);
    assert_eq!(rev, vec![0.0, 0.0]);
}

#[test]
fn powi_zero_has_derivative_zero_even_at_zero() {
    // x^0 = 1 everywhere; n x^(n-1) would give 0 * 0^-1 = NaN at 0.
    assert_eq!(grad1!(|x| x.powi(0), 0.0), (0.0, 0.0));
    let d2 = Dual::variable(Dual::variable(0.0_f64)).powi(0);
    assert_eq!(d2.tangent().tangent(), 0.0);
}

/// `x.powf(c)` for a constant exponent and a negative base (integer `c`, where the value is
/// real): every mode should give `c x^(c-1)`. Reverse mode drops the exponent's partial for a
/// constant exponent and gets it right; forward mode multiplies that partial, `x^c ln x = NaN`,
/// by the constant's zero tangent and got NaN before `rules::Powf` took the exponent's partial
/// as 0 for a non-positive base.
#[test]
fn powf_negative_base_constant_exponent_is_finite_in_every_mode() {
    // d/dx x^3 at -2 = 3 * (-2)^2 = 12; d2/dx2 = 6 * (-2) = -12.
    let tape = Tape::new();
    let x = tape.var(-2.0_f64);
    let y = x.powf(Var::constant(3.0));
    assert_eq!(tape.gradient(y).unwrap()[x], 12.0, "reverse");
    let y = Dual::variable(-2.0_f64).powf(Dual::constant(3.0));
    assert_eq!(y.value(), -8.0);
    assert_eq!(y.tangent(), 12.0, "forward (Dual)");
    let [x] = DualN::<f64, 1>::variables([-2.0]);
    assert_eq!(
        x.powf(DualN::constant(3.0)).tangents(),
        &[12.0],
        "forward (DualN)"
    );
    let y = Dual::variable(Dual::variable(-2.0_f64)).powf(Dual::constant(Dual::constant(3.0)));
    assert_eq!(y.tangent().tangent(), -12.0, "Dual<Dual>");
    let hv = perturb::hvp(
        |x| x[0].powf(Var::constant(Dual::constant(3.0))),
        &[-2.0],
        &[1.0],
    );
    assert_eq!(hv.unwrap(), vec![-12.0], "forward over reverse");
}

// ---------------------------------------------------------------------------------------------
// Stability in the tails
// ---------------------------------------------------------------------------------------------

#[test]
fn sigmoid_family_is_stable_far_out() {
    // sigmoid(-800) = e^-800 / (1 + e^-800) underflows to 0; it must not be NaN or negative.
    let s = (-800.0_f64).sigmoid();
    assert!(s.is_finite() && s >= 0.0, "sigmoid(-800) = {s}");
    // sigmoid(800) = 1 / (1 + e^-800) = 1 in f64.
    assert_eq!(800.0_f64.sigmoid(), 1.0);
    // log_sigmoid(-800) = -softplus(800) = -800 - ln(1 + e^-800) = -800 up to 1e-348.
    let ls = (-800.0_f64).log_sigmoid();
    assert!((ls + 800.0).abs() < 1e-9, "log_sigmoid(-800) = {ls}");
    // softplus(800) = 800 + ln(1 + e^-800) = 800 in f64.
    assert_eq!(800.0_f64.softplus(), 800.0);
    // softplus(-800) = ln(1 + e^-800), a positive number that underflows to 0.
    assert!((-800.0_f64).softplus() >= 0.0);

    // Derivatives there, in both modes, against their limits:
    // sigmoid'(+-800) = s (1 - s) -> 0; log_sigmoid'(-800) = sigmoid(800) -> 1;
    // log_sigmoid'(800) = sigmoid(-800) -> 0; softplus'(800) = sigmoid(800) -> 1;
    // softplus'(-800) -> 0.
    let cases: [(&str, DualFn, VarFn, f64, f64); 6] = [
        ("sigmoid", |x| x.sigmoid(), |x| x.sigmoid(), -800.0, 0.0),
        ("sigmoid", |x| x.sigmoid(), |x| x.sigmoid(), 800.0, 0.0),
        (
            "log_sigmoid",
            |x| x.log_sigmoid(),
            |x| x.log_sigmoid(),
            -800.0,
            1.0,
        ),
        (
            "log_sigmoid",
            |x| x.log_sigmoid(),
            |x| x.log_sigmoid(),
            800.0,
            0.0,
        ),
        ("softplus", |x| x.softplus(), |x| x.softplus(), 800.0, 1.0),
        ("softplus", |x| x.softplus(), |x| x.softplus(), -800.0, 0.0),
    ];
    for (name, f, g, x, want) in cases {
        let (fwd, rev) = grad1(f, g, x);
        assert!(
            fwd.is_finite() && rev.is_finite(),
            "{name}'({x}) = {fwd}, {rev}"
        );
        assert!(
            (fwd - want).abs() < 1e-12,
            "{name}'({x}) forward = {fwd}, want {want}"
        );
        assert!(
            (rev - want).abs() < 1e-12,
            "{name}'({x}) reverse = {rev}, want {want}"
        );
    }

    // Second derivatives there are finite too (sigmoid'' = s (1 - s) (1 - 2 s) -> 0).
    for x in [-800.0, 800.0] {
        for y in [
            Dual::variable(Dual::variable(x)).sigmoid(),
            Dual::variable(Dual::variable(x)).log_sigmoid(),
            Dual::variable(Dual::variable(x)).softplus(),
        ] {
            let d2 = y.tangent().tangent();
            assert!(
                d2.is_finite() && d2.abs() < 1e-12,
                "second derivative at {x}: {d2}"
            );
        }
    }
}

/// Conventions added after review: sigmoid' keeps its precision in the far tail, relu passes
/// NaN through, atan2 and powf have finite partials at their corner points.
#[test]
fn corner_conventions_after_review() {
    // sigmoid'(40) = e^-40 / (1 + e^-40)^2 = 4.248354255291589e-18 (to double precision);
    // s (1 - s) would give exactly 0 because s rounds to 1.
    let d = Dual::variable(40.0_f64).sigmoid().tangent();
    let exact = (-40.0_f64).exp() / (1.0 + (-40.0_f64).exp()).powi(2);
    assert!((d - exact).abs() < 1e-15 * exact, "{d} vs {exact}");
    let tape = Tape::new();
    let x = tape.var(40.0_f64);
    assert!((tape.gradient(x.sigmoid()).unwrap()[x] - exact).abs() < 1e-15 * exact);

    assert!(f64::NAN.relu().is_nan());
    assert!(Dual::variable(f64::NAN).relu().value().is_nan());

    // atan2 at the origin: partials (0, 0) by convention, in both modes.
    let (a, b) = (Dual::new(0.0_f64, 1.0), Dual::new(0.0_f64, 1.0));
    assert_eq!(a.atan2(b).tangent(), 0.0);
    let (_, g) = perturb::gradient(|v| v[0].atan2(v[1]), &[0.0_f64, 0.0]);
    assert_eq!(g, vec![0.0, 0.0]);

    // powf(0, 0) = 1 is constant in the base: partial 0, not 0 * 0^-1 = NaN.
    let (_, g) = perturb::gradient(|v| v[0].powf(v[1]), &[0.0_f64, 0.0]);
    assert_eq!(g, vec![0.0, 0.0]);
    let y = Dual::variable(0.0_f64).powf(Dual::constant(0.0));
    assert_eq!((y.value(), y.tangent()), (1.0, 0.0));
}
