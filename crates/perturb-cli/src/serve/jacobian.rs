//! The page's second view: the chain rule for Jacobians on the lecture's vector examples. Each
//! step's Jacobian comes from perturb (`perturb::jacobian`), then their product is built one
//! factor at a time in both orders (right to left as forward mode accumulates it, left to right
//! as reverse mode does) and set beside perturb's Jacobian of the whole function.

use perturb::{Mode, Scalar, VectorFunction};
use serde_json::{json, Value};

use crate::lecture::{VectorOp as Op, A};

struct Step {
    /// The name of the step's value.
    name: &'static str,
    definition: &'static str,
    /// What the Jacobian is, in the lecture's words.
    note: &'static str,
    op: Op,
}

/// A whole chain as one function, for perturb's Jacobian of the composition.
struct Chain(&'static [Step]);

impl VectorFunction for Chain {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        self.0.iter().fold(x.to_vec(), |v, step| step.op.eval(&v))
    }
}

pub struct Example {
    pub id: &'static str,
    pub title: &'static str,
    /// The name of the input vector.
    pub input_name: &'static str,
    pub input: &'static [f64],
    steps: &'static [Step],
}

const X: &[&[f64]] = &[&[1.0, 2.0], &[3.0, -1.0], &[0.5, 1.0]];
const Y: &[f64] = &[1.0, 0.0, 2.0];

/// The lecture's vector examples: `y = A x` and `y = x²` (here one after the other), and the
/// mean squared error of a linear model from "Forward-mode with vectors".
pub const EXAMPLES: &[Example] = &[
    Example {
        id: "mse",
        title: "L = (1/N) Σ (y − X w)²: the lecture's forward mode with vectors (N = 3)",
        input_name: "w",
        input: &[0.5, -0.25],
        steps: &[
            Step {
                name: "a",
                definition: "a = X w,  X = [[1, 2], [3, -1], [0.5, 1]]",
                note: "the Jacobian of X w is X",
                op: Op::MatVec(X),
            },
            Step {
                name: "b",
                definition: "b = y − a,  y = [1, 0, 2]",
                note: "the Jacobian is −I",
                op: Op::SubFrom(Y),
            },
            Step {
                name: "c",
                definition: "c = b²  (elementwise)",
                note: "the Jacobian is diag(2b)",
                op: Op::Square,
            },
            Step {
                name: "g",
                definition: "g = Σᵢ cᵢ",
                note: "the Jacobian is a row of ones",
                op: Op::Sum,
            },
            Step {
                name: "L",
                definition: "L = g / N",
                note: "the Jacobian is 1/N",
                op: Op::Scale(1.0 / 3.0),
            },
        ],
    },
    Example {
        id: "linear-square",
        title: "z = (A x)²: the lecture's y = A x, then z = y² elementwise",
        input_name: "x",
        input: &[0.7, 1.0, -2.0],
        steps: &[
            Step {
                name: "y",
                definition: "y = A x,  A = [[1, 2, 3], [4, 5, 6]]",
                note: "the Jacobian of A x is A",
                op: Op::MatVec(A),
            },
            Step {
                name: "z",
                definition: "z = y²  (elementwise)",
                note: "the Jacobian is diag(2y)",
                op: Op::Square,
            },
        ],
    },
];

type Matrix = Vec<Vec<f64>>;

fn product(a: &Matrix, b: &Matrix) -> Matrix {
    a.iter()
        .map(|row| {
            (0..b.first().map_or(0, Vec::len))
                .map(|j| row.iter().zip(b).map(|(&r, bk)| r * bk[j]).sum())
                .collect()
        })
        .collect()
}

fn finite(m: &[Vec<f64>]) -> bool {
    m.iter().flatten().all(|v| v.is_finite())
}

/// The example's chain at `input` (default: its own) as JSON: every step's value and
/// Jacobian, the products in both orders, and perturb's Jacobian of the whole chain.
pub fn explain(id: &str, input: Option<&[f64]>) -> Result<String, String> {
    let Some(example) = EXAMPLES.iter().find(|e| e.id == id) else {
        let ids: Vec<&str> = EXAMPLES.iter().map(|e| e.id).collect();
        return Err(format!(
            "no Jacobian example `{}`; the examples are: {}",
            id.chars().take(60).collect::<String>(),
            ids.join(", ")
        ));
    };
    chain(example, input.unwrap_or(example.input)).map(|v| v.to_string())
}

fn chain(example: &Example, input: &[f64]) -> Result<Value, String> {
    let (name, n) = (example.input_name, example.input.len());
    if input.len() != n {
        return Err(format!(
            "{}: {name} has {n} numbers, not {}",
            example.id,
            input.len()
        ));
    }
    if !input.iter().all(|v| v.is_finite()) {
        return Err(format!(
            "{}: every number of {name} must be finite",
            example.id
        ));
    }
    let fail = |e: perturb::Error| format!("{}: {e}", example.id);
    let mut value = input.to_vec();
    let mut steps = Vec::new();
    let mut jacobians = Vec::new();
    let mut input_name = name;
    for step in example.steps {
        let (next, jacobian) = perturb::jacobian(&step.op, &value, Mode::Reverse).map_err(fail)?;
        steps.push(json!({
            "name": step.name,
            "definition": step.definition,
            "note": step.note,
            "input": input_name,
            "value": next,
            "jacobian": jacobian,
        }));
        jacobians.push(jacobian);
        value = next;
        input_name = step.name;
    }
    let output = example.steps.last().map_or(name, |s| s.name);
    // Forward mode's order: ∂(step k)/∂input = J_k ... J_1, from the input on.
    let mut forward = Vec::new();
    let mut acc: Option<Matrix> = None;
    for (step, j) in example.steps.iter().zip(&jacobians) {
        let m = acc.map_or_else(|| j.clone(), |a| product(j, &a));
        forward.push(json!({ "of": step.name, "wrt": name, "jacobian": m }));
        acc = Some(m);
    }
    // Reverse mode's order: ∂output/∂(input of step k) = J_n ... J_k, from the output back.
    let mut reverse = Vec::new();
    let mut acc: Option<Matrix> = None;
    let inputs = std::iter::once(name).chain(example.steps.iter().map(|s| s.name));
    for (wrt, j) in inputs.zip(&jacobians).collect::<Vec<_>>().into_iter().rev() {
        let m = acc.map_or_else(|| j.clone(), |a| product(&a, j));
        reverse.push(json!({ "of": output, "wrt": wrt, "jacobian": m }));
        acc = Some(m);
    }
    let whole = Chain(example.steps);
    let (_, whole_forward) = perturb::jacobian(&whole, input, Mode::Forward).map_err(fail)?;
    let (_, whole_reverse) = perturb::jacobian(&whole, input, Mode::Reverse).map_err(fail)?;
    let all_finite = finite(&[value.clone()])
        && jacobians.iter().all(|j| finite(j))
        && finite(&whole_forward)
        && finite(&whole_reverse)
        && acc.as_deref().is_some_and(finite);
    if !all_finite {
        return Err(format!(
            "{}: at this {name} a value or derivative overflows a 64-bit float; choose smaller numbers",
            example.id
        ));
    }
    Ok(json!({
        "id": example.id,
        "title": example.title,
        "input": { "name": name, "value": input },
        "output": output,
        "steps": steps,
        "forward_products": forward,
        "reverse_products": reverse,
        "whole": { "forward": whole_forward, "reverse": whole_reverse },
    }))
}

/// Every example at its own input, as a JSON array (for the self-contained page).
pub fn all_json() -> String {
    let chains: Vec<Value> = EXAMPLES
        .iter()
        .filter_map(|e| chain(e, e.input).ok())
        .collect();
    Value::Array(chains).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, input: &[f64]) -> Value {
        serde_json::from_str(&explain(id, Some(input)).unwrap()).unwrap()
    }

    fn matrix(v: &Value) -> Matrix {
        serde_json::from_value(v.clone()).unwrap()
    }

    fn close(a: &Matrix, b: &Matrix) -> bool {
        a.len() == b.len()
            && a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
    }

    /// z = (A x)²: dz/dx = diag(2 A x) A, exactly; both orders and both modes agree with it.
    #[test]
    fn linear_then_square_is_diag_2ax_times_a() {
        let x = [0.3, -1.2, 2.5];
        let out = run("linear-square", &x);
        let y: Vec<f64> = A
            .iter()
            .map(|r| r.iter().zip(x).map(|(a, b)| a * b).sum())
            .collect();
        let exact: Matrix = (0..2)
            .map(|i| A[i].iter().map(|&a| 2.0 * y[i] * a).collect())
            .collect();
        assert!(close(
            &matrix(&out["steps"][0]["jacobian"]),
            &A.iter().map(|r| r.to_vec()).collect()
        ));
        assert!(close(
            &matrix(&out["forward_products"][1]["jacobian"]),
            &exact
        ));
        assert!(close(
            &matrix(&out["reverse_products"][1]["jacobian"]),
            &exact
        ));
        assert!(close(&matrix(&out["whole"]["forward"]), &exact));
        assert!(close(&matrix(&out["whole"]["reverse"]), &exact));
    }

    /// The mean squared error's gradient: -(2/N) Xᵀ (y − X w), and central differences.
    #[test]
    fn mse_gradient_is_minus_two_over_n_xt_residual() {
        let w = [0.8, -0.6];
        let out = run("mse", &w);
        let loss = |w: &[f64]| -> f64 {
            X.iter()
                .zip(Y)
                .map(|(r, y)| (y - r[0] * w[0] - r[1] * w[1]).powi(2))
                .sum::<f64>()
                / 3.0
        };
        let residual: Vec<f64> = X
            .iter()
            .zip(Y)
            .map(|(r, y)| y - r[0] * w[0] - r[1] * w[1])
            .collect();
        let exact: Vec<f64> = (0..2)
            .map(|j| -2.0 / 3.0 * X.iter().zip(&residual).map(|(r, e)| r[j] * e).sum::<f64>())
            .collect();
        let got = matrix(&out["forward_products"][4]["jacobian"]);
        assert!(close(&got, &vec![exact.clone()]), "{got:?} vs {exact:?}");
        assert!(close(
            &matrix(&out["reverse_products"][4]["jacobian"]),
            &vec![exact.clone()]
        ));
        let h = 1e-6;
        for j in 0..2 {
            let (mut up, mut down) = (w, w);
            up[j] += h;
            down[j] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!((fd - exact[j]).abs() < 1e-7, "{fd} vs {}", exact[j]);
        }
        // The steps' Jacobians are the lecture's: −I and diag(2b).
        let b = matrix(&json!([out["steps"][1]["value"].clone()]))[0].clone();
        assert_eq!(
            matrix(&out["steps"][1]["jacobian"])[1],
            vec![0.0, -1.0, 0.0]
        );
        assert_eq!(matrix(&out["steps"][2]["jacobian"])[2][2], 2.0 * b[2]);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(explain("nope", None)
            .unwrap_err()
            .contains("the examples are: mse, linear-square"));
        assert!(explain("mse", Some(&[1.0]))
            .unwrap_err()
            .contains("w has 2 numbers, not 1"));
        assert!(explain("mse", Some(&[1e300, 1.0]))
            .unwrap_err()
            .contains("overflows"));
    }
}
