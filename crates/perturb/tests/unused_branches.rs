//! S1: the reverse sweep skips what the output does not reach. An unused value whose local
//! partial is infinite or NaN (`sqrt` at 0, `ln` at 0, `asin` at 2) recorded before the output
//! must not turn any derivative into NaN through `0 * inf`, in any entry point (`gradient`,
//! `gradient_wrt`, `perturb::gradient`, `hessian`, `hvp`, reverse `jacobian`) and at every level
//! of a nested number (an adjoint whose value is 0 but whose tangent is not still counts).
//! Every expected value is exact.

use perturb::{
    gradient, hessian, hvp, jacobian, Dual, DualN, Float, Mode, Scalar, TangentArena, Tape, Var,
    VectorFunction,
};

#[test]
fn an_unused_sqrt_at_zero_leaves_gradient_and_gradient_wrt_exact() {
    let tape = Tape::new();
    let x = tape.var(0.0_f64);
    let _unused = x.sqrt(); // d sqrt/dx = inf at 0
    let y = x * 2.0 + 1.0;
    assert_eq!(tape.gradient(y).unwrap()[x], 2.0);
    assert_eq!(tape.gradient_wrt(y, &[x]).unwrap(), vec![2.0]);
}

#[test]
fn the_reported_table_of_unused_singular_values() {
    // `_ = x.sqrt(); x * x` at 0.
    let tape = Tape::new();
    let x = tape.var(0.0_f64);
    let _ = x.sqrt();
    let y = x * x;
    assert_eq!(tape.gradient(y).unwrap()[x], 0.0);
    assert_eq!(tape.gradient_wrt(y, &[x]).unwrap(), vec![0.0]);

    // `_ = w0.ln(); w0 * w1 + w1` at (0, 1).
    let tape = Tape::new();
    let w = tape.vars(&[0.0_f64, 1.0]);
    let _ = w[0].ln();
    let y = w[0] * w[1] + w[1];
    assert_eq!(tape.gradient(y).unwrap().wrt(&w).unwrap(), vec![1.0, 1.0]);
    assert_eq!(tape.gradient_wrt(y, &w).unwrap(), vec![1.0, 1.0]);

    // `_ = z.asin(); z * 3` at 2: a NaN value and a NaN partial.
    let tape = Tape::new();
    let z = tape.var(2.0_f64);
    let _ = z.asin();
    let y = z * 3.0;
    assert_eq!(tape.gradient(y).unwrap()[z], 3.0);
    assert_eq!(tape.gradient_wrt(y, &[z]).unwrap(), vec![3.0]);
}

#[test]
fn the_functional_api_skips_unused_singular_values() {
    let (_, g) = gradient(
        |v| {
            let _d = v[0].sqrt();
            v[0] * 2.0 + v[1]
        },
        &[0.0_f64, 1.0],
    );
    assert_eq!(g, vec![2.0, 1.0]);

    let h = hessian(
        |v| {
            let _d = v[0].sqrt();
            v[0] * v[0] * v[1]
        },
        &[0.0_f64, 1.0],
    );
    assert_eq!(h, vec![vec![2.0, 0.0], vec![0.0, 0.0]]);

    let hv = hvp(
        |v| {
            let _d = v[0].ln();
            v[0] * v[0] * v[1]
        },
        &[0.0_f64, 1.0],
        &[1.0, 1.0],
    );
    // H = [[2 x1, 2 x0], [2 x0, 0]] = [[2, 0], [0, 0]]
    assert_eq!(hv.unwrap(), vec![2.0, 0.0]);
}

/// `f(x) = [sqrt(x0), 2 x0 + x1, x1 x2]`.
struct SqrtAndLinear;

impl VectorFunction for SqrtAndLinear {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        vec![
            x[0].sqrt(),
            x[0] * S::from(2.0).unwrap() + x[1],
            x[1] * x[2],
        ]
    }
}

#[test]
fn one_rows_singularity_does_not_poison_the_other_rows_of_a_reverse_jacobian() {
    let (_, j) = jacobian(&SqrtAndLinear, &[0.0_f64, 1.0, 3.0], Mode::Reverse).unwrap();
    let inf = f64::INFINITY;
    assert_eq!(
        j,
        vec![
            vec![inf, 0.0, 0.0],
            vec![2.0, 1.0, 0.0],
            vec![0.0, 3.0, 1.0]
        ]
    );
}

#[test]
fn a_dual_adjoint_of_value_zero_with_a_tangent_is_not_skipped() {
    // f = (2x)^2 at 0: the adjoint of s = 2x is 2s, value 0 but tangent 4 v. Skipping it
    // because its value is 0 (`==` compares values only) would give a Hessian of 0, not 8.
    let h = hessian(
        |v| {
            let _ = v[0].sqrt();
            let s = v[0] + v[0];
            s * s
        },
        &[0.0_f64],
    );
    assert_eq!(h, vec![vec![8.0]]);
}

#[test]
fn dual_n_and_dual_vec_adjoints_are_zero_only_if_every_tangent_is() {
    // Var<DualN<f64, 2>>: x = 0 with tangents [0, 1]; the same f = (2x)^2 plus an unused sqrt.
    let tape = Tape::new();
    let x = tape.var(DualN::new(0.0_f64, [0.0, 1.0]));
    let _ = x.sqrt();
    let s = x + x;
    let y = s * s;
    let g = tape.gradient_wrt(y, &[x]).unwrap()[0];
    assert_eq!((g.value(), g.tangents()), (0.0, &[0.0, 8.0]));

    // Var<DualVec<f64>>, the same with a run-time count of tangents.
    let arena = TangentArena::new(2);
    let tape = Tape::new();
    let x = tape.var(arena.dual(0.0_f64, &[0.0, 1.0]).unwrap());
    let _ = x.ln();
    let s = x + x;
    let y = s * s;
    let g = tape.gradient_wrt(y, &[x]).unwrap()[0];
    assert_eq!(g.value(), 0.0);
    assert_eq!(arena.tangents(g).unwrap(), vec![0.0, 8.0]);
}

#[test]
fn reverse_over_reverse_skips_unused_values_at_both_levels() {
    // Var<Var<f64>>: f = x^3 with an unused sqrt, at 0: f' = 3x^2 = 0, f'' = 6x = 0; at the
    // inner level the gradient's own unused nodes must be skipped too.
    let inner = Tape::new();
    let x1 = inner.var(0.0_f64);
    let outer = Tape::new();
    let x2 = outer.var(x1);
    let _ = x2.sqrt();
    let y = x2 * x2 * x2 + x2;
    let g = outer.gradient_wrt(y, &[x2]).unwrap()[0]; // 3x^2 + 1, recorded on `inner`
    assert_eq!(g.value(), 1.0);
    assert_eq!(inner.gradient_wrt(g, &[x1]).unwrap(), vec![0.0]);

    // A Var<f64> adjoint of value 0 recorded on the inner tape still carries derivatives:
    // f = (2x)^2, f' = 8x (value 0 at 0, but recorded), f'' = 8.
    let inner = Tape::new();
    let x1 = inner.var(0.0_f64);
    let outer = Tape::new();
    let x2 = outer.var(x1);
    let _ = x2.ln();
    let s = x2 + x2;
    let g = outer.gradient_wrt(s * s, &[x2]).unwrap()[0];
    assert_eq!(g.value(), 0.0);
    assert_eq!(inner.gradient_wrt(g, &[x1]).unwrap(), vec![8.0]);
}

#[test]
fn forward_over_reverse_with_dual_of_var_skips_unused_values() {
    // Dual<Var<f64>>: the tangent of f = x^3 + unused sqrt is f'(x) = 3x^2, recorded on the
    // tape; its gradient is f''(x) = 6x.
    let tape = Tape::new();
    let x = Dual::new(tape.var(0.0_f64), Var::constant(1.0));
    let _ = x.sqrt();
    let y = x * x * x;
    let xv = x.value();
    assert_eq!(tape.gradient_wrt(y.tangent(), &[xv]).unwrap(), vec![0.0]);
    let x = Dual::new(tape.var(0.5_f64), Var::constant(1.0));
    let _ = (x - Dual::constant(Var::constant(0.5))).sqrt();
    let y = x * x * x;
    assert_eq!(
        tape.gradient_wrt(y.tangent(), &[x.value()]).unwrap(),
        vec![3.0]
    );
}

#[test]
fn forward_mode_passes_along_which_an_input_does_not_move_stay_exact() {
    // The forward counterpart: a pass that perturbs x1 or x2 gives sqrt(x0) the tangent 0, and
    // 0 times its infinite partial is NaN; the other rows' entries were NaN in forward mode
    // (the whole first row here).
    let inf = f64::INFINITY;
    let want = vec![
        vec![inf, 0.0, 0.0],
        vec![2.0, 1.0, 0.0],
        vec![0.0, 3.0, 1.0],
    ];
    for mode in [Mode::Forward, Mode::Auto] {
        let (_, j) = jacobian(&SqrtAndLinear, &[0.0_f64, 1.0, 3.0], mode).unwrap();
        assert_eq!(j, want, "{mode:?}");
    }
    let (_, g) = perturb::gradient_forward(|v| v[0].sqrt() * 0.0 + v[1] * 2.0, &[0.0_f64, 1.0]);
    // sqrt(x0) times the constant 0: the exactly-zero partial passes nothing on in forward
    // mode, as the exactly-zero adjoint of sqrt(x0) does in reverse mode (this was NaN here,
    // 0 in reverse mode).
    assert_eq!(g, vec![0.0, 2.0]);
    let (_, r) = perturb::gradient(|v| v[0].sqrt() * 0.0 + v[1] * 2.0, &[0.0_f64, 1.0]);
    assert_eq!(r, g);
    // A Dual that does not move: its tangent stays exactly 0 through a singular partial.
    let y = Dual::constant(0.0_f64).ln() * 2.0;
    assert_eq!(y.tangent(), 0.0);
}
