//! Checking a scalar function's derivatives on every number type, as Stan's `expect_ad` does:
//! [`check_scalar_fn`] runs a [`VectorFunction`] on each kind of dual number and tape variable
//! and each nesting of two, and compares what they give with central finite differences along
//! random directions, at order 1 and 2.

use std::fmt;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::forward::{Dual, DualN, TangentArena};
use crate::functional::VectorFunction;
use crate::reverse::{Tape, Var};
use crate::scalar::Scalar;

/// How [`check_scalar_fn`] compares: the directions, the step and the tolerance.
///
/// ```
/// let options = perturb::ScalarCheckOptions::default();
/// assert_eq!((options.directions, options.rtol), (3, 1e-6));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarCheckOptions {
    /// Random directions per order (each entry uniform in `[-1, 1]`).
    pub directions: usize,
    /// The seed of the directions.
    pub seed: u64,
    /// The finite-difference step (a five-point stencil, truncation error `O(h^4)`).
    pub step: f64,
    /// Relative tolerance, of the larger of the two numbers compared.
    pub rtol: f64,
    /// Absolute tolerance, for derivatives near zero.
    pub atol: f64,
}

impl Default for ScalarCheckOptions {
    fn default() -> Self {
        ScalarCheckOptions {
            directions: 3,
            seed: 0x5eed,
            step: 1e-3,
            rtol: 1e-6,
            atol: 1e-8,
        }
    }
}

/// What [`check_scalar_fn`] compared, when everything agreed.
///
/// ```
/// # use perturb::{check_scalar_fn, Scalar, ScalarCheckOptions, VectorFunction};
/// # struct Sq;
/// # impl VectorFunction for Sq { fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> { vec![x[0] * x[0]] } }
/// let report = check_scalar_fn(&Sq, &[0.5], &ScalarCheckOptions::default()).unwrap();
/// assert!(report.comparisons > 0 && report.worst_ratio <= 1.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarCheckReport {
    /// How many numbers were compared.
    pub comparisons: usize,
    /// The largest `|got - expected| / tolerance` (at most 1).
    pub worst_ratio: f64,
}

/// The first derivative (or value) that disagreed with finite differences.
///
/// ```
/// use perturb::{check_scalar_fn, Scalar, ScalarCheckOptions, UnaryOp, VectorFunction};
///
/// /// x^2 with the factor 2 of its derivative forgotten.
/// struct Square;
/// impl UnaryOp for Square {
///     fn func<T: Scalar>(&self, x: T) -> T { x * x }
///     fn grads<T: Scalar>(&self, x: T, _value: T) -> T { x }
/// }
/// struct F;
/// impl VectorFunction for F {
///     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> { vec![Square.apply(x[0])] }
/// }
/// let failure = check_scalar_fn(&F, &[0.7], &ScalarCheckOptions::default()).unwrap_err();
/// assert_eq!((failure.number_type, failure.order), ("Dual<f64>", 1));
/// assert!(failure.to_string().starts_with("check_scalar_fn: order 1 (J v) on Dual<f64>"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarCheckFailure {
    /// The number type that gave the wrong number, e.g. `"Var<Dual<f64>>"`.
    pub number_type: &'static str,
    /// 0 for the value, 1 or 2 for the derivative order.
    pub order: usize,
    /// Which output of the function.
    pub output: usize,
    /// What was compared, e.g. `"J v"` or `"v^T H u"`.
    pub quantity: &'static str,
    /// The finite-difference (or plain `f64`) reference.
    pub expected: f64,
    /// What the number type gave.
    pub got: f64,
    /// The tolerance it was held to.
    pub tolerance: f64,
}

impl fmt::Display for ScalarCheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.order {
            0 => "the value".to_string(),
            n => format!("order {n} ({})", self.quantity),
        };
        write!(
            f,
            "check_scalar_fn: {} on {} of output {}: expected {} (finite differences), got {} \
             (difference {:e}, tolerance {:e})",
            what,
            self.number_type,
            self.output,
            self.expected,
            self.got,
            (self.got - self.expected).abs(),
            self.tolerance
        )
    }
}

impl std::error::Error for ScalarCheckFailure {}

/// Checks the derivatives of `f` at `x` on every number type and nesting perturb has, against
/// central finite differences of `f` on plain `f64` along random directions.
///
/// - Value: every type's value against `f` on `f64`.
/// - Order 1, `J v`: `Dual<f64>`, `DualN<f64, 2>` and `DualVec<f64>` (two directions in one
///   pass), `Var<f64>` (reverse mode, `v . grad f_i`).
/// - Order 2, `v^T H_i u`: `Dual<Dual<f64>>`, `Var<Dual<f64>>` (the Hessian's nesting),
///   `Dual<Var<f64>>` and `Var<Var<f64>>`, against finite differences of the order-1 `Dual`
///   result (checked first).
///
/// This is how to test a custom [`UnaryOp`](crate::UnaryOp) or [`BinaryOp`](crate::BinaryOp):
/// a rule that computes through plain `f64` (`T::from(g(x.to_f64_value()))`) passes order 1
/// and fails order 2. The first disagreement is returned, naming the type, the order, the
/// output, and both numbers.
///
/// ```
/// use perturb::{check_scalar_fn, F64Fn, Scalar, ScalarCheckOptions, UnaryOp, VectorFunction};
///
/// const EXP: F64Fn<3> = F64Fn::new("exp", [f64::exp, f64::exp, f64::exp]);
///
/// struct Good;
/// impl VectorFunction for Good {
///     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
///         vec![EXP.apply(x[0] * x[1]), x[0].sin() + x[1]]
///     }
/// }
/// assert!(check_scalar_fn(&Good, &[0.3, -0.8], &ScalarCheckOptions::default()).is_ok());
///
/// /// exp computed through f64: right at order 1, wrong at order 2.
/// struct OpaqueExp;
/// impl UnaryOp for OpaqueExp {
///     fn func<T: Scalar>(&self, x: T) -> T { T::from(x.to_f64_value().exp()).unwrap() }
///     fn grads<T: Scalar>(&self, _x: T, value: T) -> T { value }
/// }
/// struct Bad;
/// impl VectorFunction for Bad {
///     fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> { vec![OpaqueExp.apply(x[0] * x[1])] }
/// }
/// let failure = check_scalar_fn(&Bad, &[0.3, -0.8], &ScalarCheckOptions::default()).unwrap_err();
/// assert_eq!((failure.number_type, failure.order), ("Dual<Dual<f64>>", 2));
/// ```
pub fn check_scalar_fn<F: VectorFunction>(
    f: &F,
    x: &[f64],
    options: &ScalarCheckOptions,
) -> Result<ScalarCheckReport, ScalarCheckFailure> {
    let mut check = Checker {
        options,
        report: ScalarCheckReport {
            comparisons: 0,
            worst_ratio: 0.0,
        },
    };
    let n = x.len();
    let plain = f.eval(x);
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut random = || -> Vec<f64> { (0..n).map(|_| rng.random_range(-1.0..=1.0)).collect() };
    let directions: Vec<(Vec<f64>, Vec<f64>)> = (0..options.directions.max(1))
        .map(|_| (random(), random()))
        .collect();
    for (v, u) in &directions {
        check.order_one(f, x, &plain, v, u)?;
    }
    for (v, u) in &directions {
        check.order_two(f, x, &plain, v, u)?;
    }
    Ok(check.report)
}

struct Checker<'a> {
    options: &'a ScalarCheckOptions,
    report: ScalarCheckReport,
}

impl Checker<'_> {
    fn compare(
        &mut self,
        number_type: &'static str,
        order: usize,
        quantity: &'static str,
        expected: &[f64],
        got: &[f64],
    ) -> Result<(), ScalarCheckFailure> {
        for (output, (&e, &g)) in expected.iter().zip(got).enumerate() {
            let tolerance = self.options.rtol * e.abs().max(g.abs()) + self.options.atol;
            let diff = (g - e).abs();
            // NaN compares false: a NaN on one side only is a failure; on both, a match.
            let same = diff <= tolerance || (e.is_nan() && g.is_nan()) || e == g;
            if !same {
                return Err(ScalarCheckFailure {
                    number_type,
                    order,
                    output,
                    quantity,
                    expected: e,
                    got: g,
                    tolerance,
                });
            }
            self.report.comparisons += 1;
            if diff.is_finite() {
                self.report.worst_ratio = self.report.worst_ratio.max(diff / tolerance);
            }
        }
        if expected.len() != got.len() {
            return Err(ScalarCheckFailure {
                number_type,
                order,
                output: expected.len().min(got.len()),
                quantity: "the number of outputs",
                expected: expected.len() as f64,
                got: got.len() as f64,
                tolerance: 0.0,
            });
        }
        Ok(())
    }

    /// `d/dt g(t)` at 0 by the five-point stencil.
    fn stencil(&self, g: impl Fn(f64) -> Vec<f64>) -> Vec<f64> {
        let h = self.options.step;
        let (p2, p1, m1, m2) = (g(2.0 * h), g(h), g(-h), g(-2.0 * h));
        (0..p1.len())
            .map(|i| (m2[i] - 8.0 * m1[i] + 8.0 * p1[i] - p2[i]) / (12.0 * h))
            .collect()
    }

    fn order_one<F: VectorFunction>(
        &mut self,
        f: &F,
        x: &[f64],
        plain: &[f64],
        v: &[f64],
        u: &[f64],
    ) -> Result<(), ScalarCheckFailure> {
        let fd_v = self.stencil(|t| f.eval(&along(x, v, t)));
        let fd_u = self.stencil(|t| f.eval(&along(x, u, t)));

        let y = jvp_dual(f, x, v);
        self.compare("Dual<f64>", 0, "", plain, &values(&y))?;
        self.compare("Dual<f64>", 1, "J v", &fd_v, &tangents(&y))?;

        let xs: Vec<DualN<f64, 2>> = (0..x.len())
            .map(|j| DualN::new(x[j], [v[j], u[j]]))
            .collect();
        let y = f.eval(&xs);
        let name = "DualN<f64, 2>";
        self.compare(name, 0, "", plain, &values(&y))?;
        let tv: Vec<f64> = y.iter().map(|y| y.tangents()[0]).collect();
        let tu: Vec<f64> = y.iter().map(|y| y.tangents()[1]).collect();
        self.compare(name, 1, "J v", &fd_v, &tv)?;
        self.compare(name, 1, "J u", &fd_u, &tu)?;

        let arena = TangentArena::new(2);
        let xs: Vec<_> = (0..x.len())
            .map(|j| arena.dual(x[j], &[v[j], u[j]]))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| unreachable!("{e}"));
        let y = f.eval(&xs);
        let name = "DualVec<f64>";
        self.compare(name, 0, "", plain, &values(&y))?;
        let rows: Vec<Vec<f64>> = y
            .iter()
            .map(|&y| arena.tangents(y).unwrap_or_else(|e| unreachable!("{e}")))
            .collect();
        let tv: Vec<f64> = rows.iter().map(|r| r[0]).collect();
        let tu: Vec<f64> = rows.iter().map(|r| r[1]).collect();
        self.compare(name, 1, "J v", &fd_v, &tv)?;
        self.compare(name, 1, "J u", &fd_u, &tu)?;

        let tape = Tape::new();
        let xs = tape.vars(x);
        let y = f.eval(&xs);
        let name = "Var<f64>";
        self.compare(name, 0, "", plain, &values(&y))?;
        let jv: Vec<f64> = y
            .iter()
            .map(|&yi| dot(&gradient_of(&tape, yi, &xs), v))
            .collect();
        self.compare(name, 1, "v . grad", &fd_v, &jv)
    }

    fn order_two<F: VectorFunction>(
        &mut self,
        f: &F,
        x: &[f64],
        plain: &[f64],
        v: &[f64],
        u: &[f64],
    ) -> Result<(), ScalarCheckFailure> {
        // d/dt (J(x + t u) v) = v^T H u, from the order-1 Dual result checked above.
        let fd = self.stencil(|t| tangents(&jvp_dual(f, &along(x, u, t), v)));
        let quantity = "v^T H u";

        let xs: Vec<Dual<Dual<f64>>> = (0..x.len())
            .map(|j| Dual::new(Dual::new(x[j], u[j]), Dual::new(v[j], 0.0)))
            .collect();
        let y = f.eval(&xs);
        let name = "Dual<Dual<f64>>";
        let vals: Vec<f64> = y.iter().map(|y| y.value().value()).collect();
        self.compare(name, 0, "", plain, &vals)?;
        let got: Vec<f64> = y.iter().map(|y| y.tangent().tangent()).collect();
        self.compare(name, 2, quantity, &fd, &got)?;

        let tape = Tape::new();
        let xs: Vec<_> = (0..x.len())
            .map(|j| tape.var(Dual::new(x[j], u[j])))
            .collect();
        let y = f.eval(&xs);
        let name = "Var<Dual<f64>>";
        let vals: Vec<f64> = y.iter().map(|y| y.value().value()).collect();
        self.compare(name, 0, "", plain, &vals)?;
        let got: Vec<f64> = y
            .iter()
            .map(|&yi| {
                let hu: Vec<f64> = gradient_of(&tape, yi, &xs)
                    .iter()
                    .map(|g| g.tangent())
                    .collect();
                dot(&hu, v)
            })
            .collect();
        self.compare(name, 2, quantity, &fd, &got)?;

        let tape = Tape::new();
        let inner = tape.vars(x);
        let xs: Vec<Dual<Var<f64>>> = (0..x.len())
            .map(|j| Dual::new(inner[j], Var::constant(v[j])))
            .collect();
        let y = f.eval(&xs);
        let name = "Dual<Var<f64>>";
        let vals: Vec<f64> = y.iter().map(|y| y.value().value()).collect();
        self.compare(name, 0, "", plain, &vals)?;
        let got: Vec<f64> = y
            .iter()
            .map(|yi| dot(&gradient_of(&tape, yi.tangent(), &inner), u))
            .collect();
        self.compare(name, 2, quantity, &fd, &got)?;

        let inner_tape = Tape::new();
        let inner = inner_tape.vars(x);
        let outer_tape = Tape::new();
        let xs = outer_tape.vars(&inner);
        let y = f.eval(&xs);
        let name = "Var<Var<f64>>";
        let vals: Vec<f64> = y.iter().map(|y| y.value().value()).collect();
        self.compare(name, 0, "", plain, &vals)?;
        let got: Vec<f64> = y
            .iter()
            .map(|&yi| {
                let g = gradient_of(&outer_tape, yi, &xs);
                let gv = g
                    .iter()
                    .zip(v)
                    .fold(Var::constant(0.0), |acc, (&gj, &vj)| acc + gj * vj);
                dot(&gradient_of(&inner_tape, gv, &inner), u)
            })
            .collect();
        self.compare(name, 2, quantity, &fd, &got)
    }
}

fn along(x: &[f64], v: &[f64], t: f64) -> Vec<f64> {
    x.iter().zip(v).map(|(&xi, &vi)| xi + t * vi).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn jvp_dual<F: VectorFunction>(f: &F, x: &[f64], v: &[f64]) -> Vec<Dual<f64>> {
    let xs: Vec<Dual<f64>> = x
        .iter()
        .zip(v)
        .map(|(&xi, &vi)| Dual::new(xi, vi))
        .collect();
    f.eval(&xs)
}

fn values<S: Scalar>(y: &[S]) -> Vec<f64> {
    y.iter().map(|y| y.to_f64_value()).collect()
}

fn tangents(y: &[Dual<f64>]) -> Vec<f64> {
    y.iter().map(|y| y.tangent()).collect()
}

/// The gradient of `y` with respect to `xs`, all recorded on `tape` here.
fn gradient_of<T: Scalar>(tape: &Tape<T>, y: Var<'_, T>, xs: &[Var<'_, T>]) -> Vec<T> {
    tape.gradient_wrt(y, xs).unwrap_or_else(|e| {
        panic!("check_scalar_fn: the function returned a value recorded outside the call ({e})")
    })
}
