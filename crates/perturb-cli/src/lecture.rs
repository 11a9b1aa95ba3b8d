//! `perturb lecture`: the lecture's worked examples, each derivative computed in forward mode
//! (dual numbers), in reverse mode (the tape) and from the exact formula.

use std::io::{self, Write};

use perturb::{Dual, Float, Mode, Scalar, Tape, VectorFunction};

/// Where the examples are evaluated.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The input x (must be non-zero: log(x^2) appears).
    #[arg(long, default_value_t = 0.7, allow_negative_numbers = true)]
    pub x: f64,
    /// The weight w of L = -log sigmoid(w x^2).
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub w: f64,
}

impl Default for Args {
    fn default() -> Self {
        Args { x: 0.7, w: 3.0 }
    }
}

/// A row of output: an example, its derivative three ways, and whether they agree.
struct Row {
    name: &'static str,
    forward: f64,
    reverse: f64,
    exact: f64,
}

pub fn run(args: &Args) -> Result<(), String> {
    let (x, w) = (args.x, args.w);
    if !x.is_finite() || !w.is_finite() {
        return Err(format!(
            "lecture: --x and --w must be finite numbers (got x = {}, w = {})",
            short(x),
            short(w)
        ));
    }
    if x == 0.0 {
        return Err("lecture: --x must be non-zero, since log(x^2) is not defined at 0".into());
    }
    let rows = scalar_rows(x, w);
    if let Some(r) = rows.iter().find(|r| {
        ![r.forward, r.reverse, r.exact]
            .iter()
            .all(|v| v.is_finite())
    }) {
        return Err(format!(
            "lecture: at x = {}, w = {} the example `{}` is not a finite number (forward {}, \
             reverse {}, exact {}): a value overflows or underflows a 64-bit float; choose x and w \
             nearer 1 (|x| from about 1e-150 to 1e150, x below about 350)",
            short(x),
            short(w),
            r.name,
            compact(r.forward),
            compact(r.reverse),
            compact(r.exact)
        ));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let worst = print_all(x, w, &rows, &mut out)
        .and_then(|worst| out.flush().map(|()| worst))
        .map_err(|e| format!("lecture: cannot write the output: {e}"))?;
    if worst > 1e-12 {
        return Err(format!(
            "lecture: a derivative differs from its exact value by {worst:.1e}"
        ));
    }
    Ok(())
}

/// Prints every section; returns the largest relative difference from the exact values.
fn print_all(x: f64, w: f64, rows: &[Row], out: &mut dyn Write) -> io::Result<f64> {
    writeln!(
        out,
        "perturb: the lecture's examples at x = {}, w = {}",
        short(x),
        short(w)
    )?;
    writeln!(
        out,
        "\"If I perturb x by h, how does the output change?\" Each derivative three ways:\n"
    )?;
    writeln!(
        out,
        "{:<44} {:>14} {:>14} {:>14}",
        "derivative", "forward", "reverse", "exact"
    )?;
    let mut worst: f64 = 0.0;
    for r in rows {
        writeln!(
            out,
            "{:<44} {:>14} {:>14} {:>14}",
            r.name,
            compact(r.forward),
            compact(r.reverse),
            compact(r.exact)
        )?;
        let scale = r.exact.abs().max(1.0);
        worst = worst
            .max((r.forward - r.exact).abs() / scale)
            .max((r.reverse - r.exact).abs() / scale);
    }
    writeln!(out)?;
    chain_of_local_derivatives(x, w, out)?;
    writeln!(out)?;
    multiple_inputs(x, out)?;
    writeln!(out)?;
    jacobians(x, out)?;
    writeln!(
        out,
        "\nlargest relative difference from the exact values: {worst:.1e}"
    )?;
    Ok(worst)
}

/// A number in 9 decimals when that shows it well (magnitude from 1e-4 to 1e9, or 0), else in
/// exponent notation with 9 decimals: never hundreds of digits.
fn compact(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e9).contains(&v.abs()) {
        format!("{v:.9}")
    } else {
        format!("{v:.9e}")
    }
}

/// A number as given, in exponent notation when it is very large or very small.
fn short(v: f64) -> String {
    if v == 0.0 || (1e-4..1e15).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// d/dx of a one-input example `$f` at `$x`: (by a dual number, by the tape).
macro_rules! both_modes {
    ($f:expr, $x:expr) => {{
        let forward = $f(Dual::variable($x)).tangent();
        let tape = Tape::new();
        let xv = tape.var($x);
        let reverse = tape
            .gradient_wrt($f(xv), &[xv])
            .map(|g| g[0])
            .unwrap_or(f64::NAN);
        (forward, reverse)
    }};
}

/// The lecture's one-variable examples, written once generically.
fn log_square<T: Scalar>(x: T) -> T {
    (x * x).ln()
}
fn total<T: Scalar>(x: T) -> T {
    let y = x * T::from(2.0).unwrap_or_else(T::nan);
    let z = x.exp();
    y * z * z
}
fn reuse<T: Scalar>(x: T) -> T {
    x * x
}
fn logistic<T: Scalar>(x: T, w: T) -> T {
    -(w * x * x).sigmoid().ln()
}
fn reused_value_loss<T: Scalar>(x: T) -> T {
    let a = x * x;
    let b = a * T::from(5.0).unwrap_or_else(T::nan);
    let c = a.ln();
    let g = b * c;
    -g
}

/// `sigmoid(b)`, for the exact values: `1 - sigmoid(b)` is written `sigmoid(-b)`, since
/// `1 - sigmoid(40)` cancels to 0 where `sigmoid(-40)` is 4.2e-18.
fn sigmoid(b: f64) -> f64 {
    1.0 / (1.0 + (-b).exp())
}

fn scalar_rows(x: f64, w: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |name, (forward, reverse): (f64, f64), exact| {
        rows.push(Row {
            name,
            forward,
            reverse,
            exact,
        })
    };
    push("d/dx log(x^2) = 2/x", both_modes!(log_square, x), 2.0 / x);
    push(
        "d/dx y z^2, y = 2x, z = exp(x) (total)",
        both_modes!(total, x),
        2.0 * (2.0 * x).exp() + 4.0 * x * (2.0 * x).exp(),
    );
    push(
        "d/dx f(x, x) with f(a, b) = a b: 2x",
        both_modes!(reuse, x),
        2.0 * x,
    );
    let wd = Dual::constant(w);
    push(
        "d/dx -log sigmoid(w x^2)",
        (
            logistic(Dual::variable(x), wd).tangent(),
            perturb::gradient(|v| logistic(v[0], perturb::Var::constant(w)), &[x]).1[0],
        ),
        -sigmoid(-(w * x * x)) * 2.0 * w * x,
    );
    push(
        "d/dx of L = -(5a log a), a = x^2 (reused a)",
        both_modes!(reused_value_loss, x),
        -(10.0 * x * (x * x).ln() + 10.0 * x),
    );
    let a = x * x;
    push(
        "dc/da of c = a b, b = 5a: 10a",
        (
            perturb::derivative(|a| a * (a * 5.0), a).1,
            perturb::gradient(|v| v[0] * (v[0] * 5.0), &[a]).1[0],
        ),
        10.0 * a,
    );
    rows
}

/// The lecture's chain L = -log sigmoid(w x^2), one local derivative per step, then their product.
fn chain_of_local_derivatives(x: f64, w: f64, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "The chain rule, step by step, for L = -log sigmoid(w x^2):"
    )?;
    let tape = Tape::new();
    let xv = tape.var(x);
    let a = xv * xv;
    let b = a * w;
    let c = b.sigmoid();
    let g = c.ln();
    let l = -g;
    let steps = [
        ("a = x^2", a, xv),
        ("b = w a", b, a),
        ("c = sigmoid(b)", c, b),
        ("g = log c", g, c),
        ("L = -g", l, g),
    ];
    let mut product = 1.0;
    for (name, step, input) in steps {
        let local = tape
            .gradient(step)
            .ok()
            .and_then(|gr| gr.get(input).ok())
            .unwrap_or(f64::NAN);
        product *= local;
        writeln!(
            out,
            "  {name:<16} value {:>12}   local derivative {:>12}",
            compact(step.value()),
            compact(local)
        )?;
    }
    let dl = tape
        .gradient(l)
        .ok()
        .and_then(|gr| gr.get(xv).ok())
        .unwrap_or(f64::NAN);
    writeln!(
        out,
        "  product of the local derivatives {}",
        compact(product)
    )?;
    writeln!(out, "  dL/dx from one reverse sweep    {}", compact(dl))
}

/// -log sigmoid(w . x), written once for any scalar.
fn logistic_dot<T: Scalar>(xs: &[T], w: &[f64]) -> T {
    let z = xs.iter().zip(w).fold(T::zero(), |acc, (&xi, &wi)| {
        acc + xi * T::from(wi).unwrap_or_else(T::nan)
    });
    -z.log_sigmoid()
}

/// -log sigmoid(w . x) with three inputs: all partials in one forward pass and one reverse sweep.
fn multiple_inputs(x: f64, out: &mut dyn Write) -> io::Result<()> {
    let w = [0.5, -1.0, 2.0];
    let xs = [x, 1.0, -0.25];
    let (_, reverse) = perturb::gradient(|xs| logistic_dot(xs, &w), &xs);
    let (_, forward) = perturb::gradient_forward(|xs| logistic_dot(xs, &w), &xs);
    let z: f64 = xs.iter().zip(w).map(|(a, b)| a * b).sum();
    let one_minus_s = sigmoid(-z);
    writeln!(
        out,
        "Multiple inputs: dL/dx for L = -log sigmoid(w1 x1 + w2 x2 + w3 x3), w = {w:?}, x = {xs:?}"
    )?;
    for i in 0..3 {
        writeln!(
            out,
            "  dL/dx{} forward {:>12}  reverse {:>12}  exact -(1 - sigmoid(z)) w{} = {:>12}",
            i + 1,
            compact(forward[i]),
            compact(reverse[i]),
            i + 1,
            compact(-one_minus_s * w[i])
        )?;
    }
    Ok(())
}

/// One step of a vector function, as the lecture's vector examples are built: `y = A x`, `y =
/// x²` and, in the page's Jacobian view (`perturb serve`), the steps of a mean squared error.
pub enum VectorOp {
    /// `M v`.
    MatVec(&'static [&'static [f64]]),
    /// `c - v`.
    SubFrom(&'static [f64]),
    /// `v²`, elementwise.
    Square,
    /// `Σ v`.
    Sum,
    /// `k v`.
    Scale(f64),
}

fn constant<S: Scalar>(c: f64) -> S {
    S::from(c).unwrap_or_else(S::nan)
}

impl VectorFunction for VectorOp {
    fn eval<S: Scalar>(&self, v: &[S]) -> Vec<S> {
        match self {
            VectorOp::MatVec(m) => m
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(v)
                        .fold(S::zero(), |acc, (&a, &x)| acc + x * constant(a))
                })
                .collect(),
            VectorOp::SubFrom(c) => c
                .iter()
                .zip(v)
                .map(|(&c, &x)| constant::<S>(c) - x)
                .collect(),
            VectorOp::Square => v.iter().map(|&x| x * x).collect(),
            VectorOp::Sum => vec![v.iter().fold(S::zero(), |acc, &x| acc + x)],
            VectorOp::Scale(k) => v.iter().map(|&x| x * constant(*k)).collect(),
        }
    }
}

/// The lecture's matrix of `y = A x`.
pub const A: &[&[f64]] = &[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]];

fn jacobians(x: f64, out: &mut dyn Write) -> io::Result<()> {
    let point = [x, 1.0, -2.0];
    for (name, f) in [
        (
            "y = A x, A = [[1,2,3],[4,5,6]]: the Jacobian is A",
            VectorOp::MatVec(A),
        ),
        (
            "y = x^2 elementwise: the Jacobian is diag(2x)",
            VectorOp::Square,
        ),
    ] {
        writeln!(out, "Jacobian of {name}, at x = {point:?}")?;
        for mode in [Mode::Forward, Mode::Reverse] {
            match perturb::jacobian(&f, &point, mode) {
                Ok((_, j)) => writeln!(out, "  {mode:?}: {j:?}")?,
                Err(e) => writeln!(out, "  {mode:?}: {e}")?,
            }
        }
    }
    Ok(())
}
