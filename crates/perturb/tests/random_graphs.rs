//! Property tests on random expression graphs: every way perturb offers to differentiate a
//! function (reverse, forward with run-time or compile-time tangent counts, one dual pass per
//! input, `jacobian` in both modes, and the four nestings for second order) must agree with each
//! other, with finite differences, and must not change the value computed.
//!
//! The graphs (see `graph_support`) are DAGs over 1 to 4 inputs whose nodes read earlier values
//! at random, so values are shared between several consumers: the total-derivative case where a
//! wrong adjoint accumulation (overwriting instead of summing) or a wrong tangent propagation
//! shows up.
//!
//! Tolerances (observed worst cases, over 4000 cases per property, in parentheses):
//! - Between AD modes: `|a - b| <= AD_TOL * max|entries| + AD_FLOOR`, with `AD_TOL = 1e-10`,
//!   `AD_FLOOR = 1e-13`. Every mode evaluates the same local partials from bitwise-equal values
//!   (property b), so results differ only in the order in which the chain rule's products and
//!   sums are rounded. With at most 25 nodes (under 100 elementary operations) and values kept
//!   within a few units by the `tanh` squashing, that is at most a few hundred roundings of
//!   1.1e-16 relative to the terms summed: under 1e-13 absolute where terms cancel (observed
//!   3.6e-15 absolute) and under 1e-12 relative where they do not (observed 5e-14; overall at
//!   most 0.1% of the tolerance).
//! - Against finite differences: `|ad - fd| <= FD_TOL * size + FD_FLOOR * (1 + |phi|)` with
//!   `FD_TOL = 1e-6`, `FD_FLOOR = 1e-9`, where `size` bounds the derivative (`|grad| |v|`,
//!   `max|H| n |v|^2`, `|J_i| |v|`) and `phi` is the function differenced. The five-point
//!   stencil with `h = 5e-4` has truncation error `h^4/30 |phi^(5)|` (2e-15 times the fifth
//!   derivative) and rounding error about `1.5 eps |phi| / h` (7e-13 |phi|, plus the rounding
//!   inside `phi` amplified by `1/h`, a few 1e-12), so the floor leaves a margin of ~100 for
//!   rounding and FD_TOL lets the fifth derivative be ~5e8 times the first before a correct
//!   derivative could fail, while a wrong partial of any op (a factor, a sign, a missing path)
//!   changes the result by O(1) of `size`. (Observed: at most 0.3% of the tolerance.)
//! - Values: bitwise. Every number type computes its value by the same `func` on the same
//!   `f64` values as the plain evaluation, so there is no rounding to excuse.

mod graph_support;

use graph_support::{
    along, cases, cases_with_dead, directional, eval, eval_values, eval_vector, five_point,
    gradient_dual_n, gradient_dual_passes, graphs, graphs_with_dead, hessian_forward_over_forward,
    hessian_reverse_over_forward, hessian_reverse_over_reverse, record_other_types, Graph, Node,
    Op, ScalarGraph, Values, VectorGraph, OP_KINDS, SINGULAR_KINDS,
};
use perturb::{Dual, Error, Mode, Tape};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// Agreement between AD modes, relative to the largest entry compared; see the module docs.
const AD_TOL: f64 = 1e-10;
/// Absolute slack between AD modes, for results that cancel to (nearly) zero.
const AD_FLOOR: f64 = 1e-13;
/// Agreement with finite differences, relative to the size of the derivative.
const FD_TOL: f64 = 1e-6;
/// Absolute slack against finite differences, per unit of the function differenced.
const FD_FLOOR: f64 = 1e-9;

/// Cases per property: each case is a fresh graph, point and direction.
const CASES: u32 = 256;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Do not write proptest-regressions/ files into the source tree; a failure prints the
        // graph (as a program, see `Graph`'s Debug) and the point, enough to reproduce it.
        failure_persistence: None,
        ..Config::default()
    }
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `max |a_i - b_i|`; infinite if the lengths differ or a NaN appears.
fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).fold(0.0_f64, |m, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() {
            f64::INFINITY
        } else {
            m.max(d)
        }
    })
}

fn flatten(m: &[Vec<f64>]) -> Vec<f64> {
    m.iter().flatten().copied().collect()
}

fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m.first().map_or(0, Vec::len))
        .map(|j| m.iter().map(|row| row[j]).collect())
        .collect()
}

fn mat_vec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter().map(|row| dot(row, v)).collect()
}

/// Asserts the derivatives (gradients, flattened Jacobians or Hessians) `got` agree with
/// `want`: `max |got - want| <= AD_TOL * max |entry| + AD_FLOOR`.
fn assert_ad_close(what: &str, got: &[f64], want: &[f64]) -> Result<(), TestCaseError> {
    let diff = max_diff(got, want);
    let tol = AD_TOL * max_abs(got).max(max_abs(want)) + AD_FLOOR;
    prop_assert!(
        diff <= tol,
        "{what}: differ by {diff:e} > {tol:e}\n  got  {got:?}\n  want {want:?}"
    );
    Ok(())
}

/// Asserts a derivative `ad` agrees with its finite difference `fd`: `size` bounds the size of
/// the derivative (e.g. `|grad| |v|`), `phi` is the value of the function differenced.
fn assert_fd_close(what: &str, ad: f64, fd: f64, size: f64, phi: f64) -> Result<(), TestCaseError> {
    let tol = FD_TOL * size + FD_FLOOR * (1.0 + phi.abs());
    let diff = (ad - fd).abs();
    prop_assert!(
        diff <= tol,
        "{what}: AD {ad:e}, finite difference {fd:e}: differ by {diff:e} > {tol:e}"
    );
    Ok(())
}

/// Asserts `a == b` bit for bit.
fn assert_same_bits(what: &str, a: f64, b: f64) -> Result<(), TestCaseError> {
    prop_assert!(
        a.to_bits() == b.to_bits(),
        "{what}: {a:e} is not bitwise {b:e}"
    );
    Ok(())
}

/// Property a: first-order derivatives by every mode agree, and with finite differences.
fn check_first_order(g: &Graph, x: &[f64], v: &[f64]) -> Result<(), TestCaseError> {
    let y = eval(g, x);
    let mut values = Values::new();

    let (y_rev, reverse) = perturb::gradient(|xs| eval(g, xs), x);
    let (y_fwd, forward) = perturb::gradient_forward(|xs| eval(g, xs), x);
    let (y_jac, jac) = perturb::jacobian(&ScalarGraph(g), x, Mode::Forward)
        .map_err(|e| TestCaseError::fail(format!("jacobian: {e}")))?;
    prop_assert_eq!(jac.len(), 1);
    let passes = gradient_dual_passes(g, x, &mut values);
    let chunks_of_1 = gradient_dual_n::<1>(g, x, &mut values);
    let chunks_of_3 = gradient_dual_n::<3>(g, x, &mut values);

    assert_same_bits("gradient's value", y_rev, y)?;
    assert_same_bits("gradient_forward's value", y_fwd, y)?;
    assert_same_bits("jacobian's value", y_jac[0], y)?;
    prop_assert_eq!(reverse.len(), x.len());
    assert_ad_close("gradient_forward vs gradient", &forward, &reverse)?;
    assert_ad_close("jacobian(Mode::Forward) vs gradient", &jac[0], &reverse)?;
    assert_ad_close("one Dual pass per input vs gradient", &passes, &reverse)?;
    assert_ad_close("DualN<_, 1> chunks vs gradient", &chunks_of_1, &reverse)?;
    assert_ad_close("DualN<_, 3> chunks vs gradient", &chunks_of_3, &reverse)?;

    let slope = dot(&reverse, v);
    let size = norm(&reverse) * norm(v);
    // Rounding in <gradient, v> is relative to |gradient| |v|, not to the (possibly cancelled)
    // result, so compare on that scale.
    let dir = directional(g, x, v);
    let unit = size.max(1.0);
    assert_ad_close(
        "Dual seeded with v vs <gradient, v>",
        &[dir / unit],
        &[slope / unit],
    )?;
    let fd = five_point(|t| eval(g, &along(x, v, t)));
    assert_fd_close("<gradient, v>", slope, fd, size, y)?;
    Ok(())
}

/// Property b: every number type computes every node's value bit for bit as plain `f64` does.
fn check_values(g: &Graph, x: &[f64], v: &[f64]) -> Result<(), TestCaseError> {
    let plain = eval_values(g, x);
    let mut values = Values::new();
    gradient_dual_passes(g, x, &mut values);
    gradient_dual_n::<2>(g, x, &mut values);
    hessian_forward_over_forward(g, x, &mut values);
    hessian_reverse_over_forward(g, x, &mut values);
    hessian_reverse_over_reverse(g, x, &mut values);
    record_other_types(g, x, v, &mut values);
    // Dual, DualN, Dual<Dual>, Dual<Var>, Var<Var>, Var<Dual>, DualVec and Var all took part.
    let mut kinds: Vec<&str> = values.by.iter().map(|(who, _)| *who).collect();
    kinds.dedup();
    kinds.sort_unstable();
    kinds.dedup();
    prop_assert_eq!(kinds.len(), 8, "{:?}", kinds);
    for (who, got) in &values.by {
        prop_assert_eq!(got.len(), plain.len());
        for (k, (a, b)) in got.iter().zip(&plain).enumerate() {
            assert_same_bits(&format!("{who}: value v{k}"), *a, *b)?;
        }
    }
    Ok(())
}

/// Property c: the Hessian by four nestings agrees, is symmetric, and agrees with finite
/// differences of the forward-mode directional derivative.
fn check_second_order(g: &Graph, x: &[f64], v: &[f64]) -> Result<(), TestCaseError> {
    let mut values = Values::new();
    let h = perturb::hessian(|xs| eval(g, xs), x);
    let h_ff = hessian_forward_over_forward(g, x, &mut values);
    let h_rf = hessian_reverse_over_forward(g, x, &mut values);
    let (grad_rr, h_rr) = hessian_reverse_over_reverse(g, x, &mut values);
    prop_assert_eq!(h.len(), x.len());

    let flat = flatten(&h);
    for (what, m) in [
        ("perturb::hessian (forward over reverse)", &h),
        ("Dual<Dual<f64>> (forward over forward)", &h_ff),
        ("Dual<Var<f64>> (reverse over forward)", &h_rf),
        ("Var<Var<f64>> (reverse over reverse)", &h_rr),
    ] {
        assert_ad_close(&format!("{what} vs perturb::hessian"), &flatten(m), &flat)?;
        assert_ad_close(
            &format!("{what}: symmetry"),
            &flatten(&transpose(m)),
            &flatten(m),
        )?;
    }

    let (_, reverse) = perturb::gradient(|xs| eval(g, xs), x);
    assert_ad_close(
        "gradient by the outer sweep of Var<Var<f64>>",
        &grad_rr,
        &reverse,
    )?;

    let hv = perturb::hvp(|xs| eval(g, xs), x, v)
        .map_err(|e| TestCaseError::fail(format!("hvp: {e}")))?;
    assert_ad_close("perturb::hvp vs H v", &hv, &mat_vec(&h_ff, v))?;

    // v^T H v = d/dt <grad f(x + t v), v> at t = 0, differenced on the forward-mode
    // directional derivative; |v^T H v| <= max|H| (sum |v_i|)^2 <= max|H| n |v|^2.
    let vhv = dot(v, &mat_vec(&h, v));
    let fd = five_point(|t| directional(g, &along(x, v, t), v));
    let size = max_abs(&flat) * dot(v, v) * x.len() as f64;
    let phi = norm(&reverse) * norm(v);
    assert_fd_close(
        "v^T H v vs d/dt of the directional derivative",
        vhv,
        fd,
        size,
        phi,
    )?;
    Ok(())
}

/// Property d: the Jacobian of the vector output by both modes (and `Auto`) agrees, with the
/// gradient of the first output, with one Dual pass per input, and with finite differences.
fn check_jacobian(g: &Graph, x: &[f64], v: &[f64]) -> Result<(), TestCaseError> {
    let plain = eval_vector(g, x);
    let m = g.vector_len();
    prop_assert_eq!(plain.len(), m);
    let f = VectorGraph(g);
    let run = |mode| {
        perturb::jacobian(&f, x, mode).map_err(|e| TestCaseError::fail(format!("{mode:?}: {e}")))
    };
    let (y_fwd, j_fwd) = run(Mode::Forward)?;
    let (y_rev, j_rev) = run(Mode::Reverse)?;
    let (y_auto, j_auto) = run(Mode::Auto)?;
    for (what, y) in [("Forward", &y_fwd), ("Reverse", &y_rev), ("Auto", &y_auto)] {
        prop_assert_eq!(y.len(), m);
        for (i, (a, b)) in y.iter().zip(&plain).enumerate() {
            assert_same_bits(&format!("jacobian({what}) value {i}"), *a, *b)?;
        }
    }
    for j in [&j_fwd, &j_rev, &j_auto] {
        prop_assert_eq!(j.len(), m);
        prop_assert!(j.iter().all(|row| row.len() == x.len()));
    }
    let flat = flatten(&j_rev);
    assert_ad_close("jacobian Forward vs Reverse", &flatten(&j_fwd), &flat)?;
    assert_ad_close("jacobian Auto vs Reverse", &flatten(&j_auto), &flat)?;

    // Column k by one Dual pass seeded with e_k.
    let columns: Vec<Vec<f64>> = (0..x.len())
        .map(|k| {
            let xs: Vec<Dual<f64>> = x
                .iter()
                .enumerate()
                .map(|(i, &xi)| {
                    if i == k {
                        Dual::variable(xi)
                    } else {
                        Dual::constant(xi)
                    }
                })
                .collect();
            eval_vector(g, &xs).iter().map(|y| y.tangent()).collect()
        })
        .collect();
    assert_ad_close(
        "Dual passes (columns) vs Reverse",
        &flatten(&transpose(&columns)),
        &flat,
    )?;

    let (_, grad) = perturb::gradient(|xs| eval(g, xs), x);
    assert_ad_close(
        "jacobian row 0 vs gradient of the last node",
        &j_rev[0],
        &grad,
    )?;

    let jv = mat_vec(&j_rev, v);
    for (i, row) in j_rev.iter().enumerate() {
        let fd = five_point(|t| eval_vector(g, &along(x, v, t))[i]);
        let what = format!("output {i}: (J v)_{i}");
        assert_fd_close(&what, jv[i], fd, norm(row) * norm(v), plain[i])?;
    }
    Ok(())
}

/// Property e: recording the graph again after `clear()` gives the same gradient, the same
/// tape length, no growth of the buffer, and the old gradient refuses the new variables.
fn check_tape_reuse(g: &Graph, x: &[f64]) -> Result<(), TestCaseError> {
    let mut tape = Tape::<f64>::new();
    let (first, first_grad) = {
        let xs = tape.vars(x);
        let y = eval(g, &xs);
        let grad = tape
            .gradient(y)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let first = grad
            .wrt(&xs)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        (first, grad)
    };
    let len = tape.len();
    prop_assert_eq!(
        len,
        g.tape_len(),
        "one tape node per input and per recorded operation"
    );
    let capacity = tape.capacity();
    for round in 1..=2 {
        tape.clear();
        prop_assert_eq!(tape.len(), 0);
        prop_assert_eq!(tape.capacity(), capacity, "clear() must keep the buffer");
        let xs = tape.vars(x);
        let y = eval(g, &xs);
        let again = tape
            .gradient(y)
            .and_then(|grad| grad.wrt(&xs))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(tape.len(), len, "round {}", round);
        prop_assert_eq!(tape.capacity(), capacity, "round {}: the tape grew", round);
        for (k, (a, b)) in again.iter().zip(&first).enumerate() {
            assert_same_bits(&format!("round {round}: gradient[{k}]"), *a, *b)?;
        }
        let stale = first_grad.get(xs[0]);
        prop_assert!(
            matches!(stale, Err(Error::StaleGradient { .. })),
            "a gradient from before clear() answered for a new variable: {:?}",
            stale
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn first_order_modes_agree_and_match_finite_differences((g, x, v) in cases(1..=4, 3..=25)) {
        check_first_order(&g, &x, &v)?;
    }

    #[test]
    fn every_number_type_computes_the_same_values((g, x, v) in cases(1..=4, 3..=25)) {
        check_values(&g, &x, &v)?;
    }

    #[test]
    fn hessians_agree_are_symmetric_and_match_finite_differences(
        (g, x, v) in cases(1..=4, 3..=25)
    ) {
        check_second_order(&g, &x, &v)?;
    }

    #[test]
    fn jacobians_agree_across_modes_and_match_finite_differences(
        (g, x, v) in cases(1..=4, 3..=25)
    ) {
        check_jacobian(&g, &x, &v)?;
    }

    #[test]
    fn tape_reuse_after_clear_is_exact_and_allocation_free((g, x, _v) in cases(1..=4, 3..=25)) {
        check_tape_reuse(&g, &x)?;
    }
}

/// Asserts two lists of numbers are equal bit for bit.
fn assert_all_same_bits(what: &str, a: &[f64], b: &[f64]) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len(), "{}: lengths", what);
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert_same_bits(&format!("{what}[{k}]"), *x, *y)?;
    }
    Ok(())
}

/// Property f (S1): dead branches with infinite or NaN local partials, recorded before the
/// output and never read, change no derivative by any mode or nesting, bit for bit.
fn check_dead_branches(g: &Graph, x: &[f64], v: &[f64]) -> Result<(), TestCaseError> {
    prop_assert!(!g.dead.is_empty());
    let clean = g.without_dead();
    let mut values = Values::new();
    let run = |g: &Graph, values: &mut Values| -> Result<Vec<(&str, Vec<f64>)>, TestCaseError> {
        let (y, reverse) = perturb::gradient(|xs| eval(g, xs), x);
        let (_, forward) = perturb::gradient_forward(|xs| eval(g, xs), x);
        let tape = Tape::new();
        let xs = tape.vars(x);
        let kept = tape
            .gradient(eval(g, &xs))
            .and_then(|grad| grad.wrt(&xs))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let f = VectorGraph(g);
        let mut out = vec![
            ("value", vec![y]),
            ("perturb::gradient", reverse),
            ("perturb::gradient_forward", forward),
            ("Tape::gradient", kept),
            ("Dual passes", gradient_dual_passes(g, x, values)),
            ("DualN<_, 3>", gradient_dual_n::<3>(g, x, values)),
            (
                "perturb::hessian",
                flatten(&perturb::hessian(|xs| eval(g, xs), x)),
            ),
            (
                "Dual<Dual<f64>>",
                flatten(&hessian_forward_over_forward(g, x, values)),
            ),
            (
                "Dual<Var<f64>>",
                flatten(&hessian_reverse_over_forward(g, x, values)),
            ),
        ];
        let (grad_rr, h_rr) = hessian_reverse_over_reverse(g, x, values);
        out.push(("Var<Var<f64>> gradient", grad_rr));
        out.push(("Var<Var<f64>> hessian", flatten(&h_rr)));
        let hv = perturb::hvp(|xs| eval(g, xs), x, v)
            .map_err(|e| TestCaseError::fail(format!("hvp: {e}")))?;
        out.push(("perturb::hvp", hv));
        for (what, mode) in [
            ("jacobian Forward", Mode::Forward),
            ("jacobian Reverse", Mode::Reverse),
            ("jacobian Auto", Mode::Auto),
        ] {
            let (_, j) = perturb::jacobian(&f, x, mode)
                .map_err(|e| TestCaseError::fail(format!("{mode:?}: {e}")))?;
            out.push((what, flatten(&j)));
        }
        Ok(out)
    };
    let with_dead = run(g, &mut values)?;
    let without = run(&clean, &mut values)?;
    for ((what, a), (_, b)) in with_dead.iter().zip(&without) {
        prop_assert!(b.iter().all(|d| d.is_finite()), "{what}: the clean graph");
        assert_all_same_bits(what, a, b)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn dead_branches_with_singular_partials_change_no_derivative(
        (g, x, v) in cases_with_dead(1..=4, 3..=25)
    ) {
        check_dead_branches(&g, &x, &v)?;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// `jacobian` runs forward mode in chunks of 8 tangents: 5 to 19 inputs cover one, two and
    /// three chunks, full and partial.
    #[test]
    fn jacobians_agree_across_forward_chunks((g, x, v) in cases(5..=19, 3..=25)) {
        check_jacobian(&g, &x, &v)?;
    }
}

/// The lecture's reused value, `b = 5a, c = a b`, as a graph: `c = 5 a^2`, so at `a = 1.5` the
/// value is 11.25, the derivative `10 a = 15` and the second derivative 10. All three are exact
/// in binary floating point (and so is every intermediate: 7.5, 7.5 + 7.5), so every mode must
/// return them exactly. This also checks the harness itself against known numbers.
#[test]
fn reused_value_known_answer() {
    let g = Graph {
        inputs: 1,
        nodes: vec![
            Node {
                op: Op::Scale(5.0),
                args: [0, 0],
                squash: false,
            },
            Node {
                op: Op::Mul,
                args: [0, 1],
                squash: false,
            },
        ],
        outputs: vec![1],
        dead: Vec::new(),
    };
    let x = [1.5];
    let mut values = Values::new();
    assert_eq!(eval(&g, &x), 11.25);
    assert_eq!(
        perturb::gradient(|xs| eval(&g, xs), &x),
        (11.25, vec![15.0])
    );
    assert_eq!(
        perturb::gradient_forward(|xs| eval(&g, xs), &x),
        (11.25, vec![15.0])
    );
    assert_eq!(gradient_dual_passes(&g, &x, &mut values), vec![15.0]);
    assert_eq!(gradient_dual_n::<2>(&g, &x, &mut values), vec![15.0]);
    assert_eq!(perturb::hessian(|xs| eval(&g, xs), &x), vec![vec![10.0]]);
    assert_eq!(
        hessian_forward_over_forward(&g, &x, &mut values),
        vec![vec![10.0]]
    );
    assert_eq!(
        hessian_reverse_over_forward(&g, &x, &mut values),
        vec![vec![10.0]]
    );
    assert_eq!(
        hessian_reverse_over_reverse(&g, &x, &mut values),
        (vec![15.0], vec![vec![10.0]])
    );
    // Vector output [c, b, b]: Jacobian [10 a, 5, 5] = [15, 5, 5].
    let (y, j) = perturb::jacobian(&VectorGraph(&g), &x, Mode::Reverse).unwrap();
    assert_eq!(y, vec![11.25, 7.5, 7.5]);
    assert_eq!(j, vec![vec![15.0], vec![5.0], vec![5.0]]);
    // One input and two operations (the constant 5 is recorded nowhere): 1 + 2 tape nodes.
    assert_eq!(g.tape_len(), 3);
    check_tape_reuse(&g, &x).unwrap();
    check_first_order(&g, &x, &[0.75]).unwrap();
    check_second_order(&g, &x, &[0.75]).unwrap();
    check_jacobian(&g, &x, &[0.75]).unwrap();
}

/// The generator is worth its name: over many graphs it uses every operation, squashes some
/// nodes and not others, and most graphs read some value more than once (shared subexpressions).
#[test]
fn generator_covers_ops_and_sharing() {
    let mut runner = TestRunner::deterministic();
    let strategy = graphs(1..=4, 3..=25);
    let samples = 500;
    let mut op_seen = [false; OP_KINDS];
    let (mut shared, mut squashed, mut plain) = (0, 0, 0);
    for _ in 0..samples {
        let g = strategy.new_tree(&mut runner).expect("a graph").current();
        assert!((1..=4).contains(&g.inputs) && (3..=25).contains(&g.nodes.len()));
        for (k, node) in g.nodes.iter().enumerate() {
            op_seen[node.op.code()] = true;
            assert!(
                node.args.iter().all(|&a| a < g.inputs + k),
                "v{k} reads a later value"
            );
            if node.squash {
                squashed += 1;
            } else {
                plain += 1;
            }
        }
        if g.fan_out().iter().any(|&uses| uses >= 2) {
            shared += 1;
        }
    }
    assert!(
        op_seen.iter().all(|&seen| seen),
        "operations never drawn: {op_seen:?}"
    );
    assert!(
        squashed > 0 && plain > squashed,
        "squashed {squashed}, plain {plain}"
    );
    assert!(
        shared * 10 >= samples * 9,
        "only {shared} of {samples} graphs share a value"
    );
}

/// The dead-branch generator draws every singular kind, before various nodes, and never after
/// the output.
#[test]
fn dead_branch_generator_covers_every_kind() {
    let mut runner = TestRunner::deterministic();
    let strategy = graphs_with_dead(1..=4, 3..=25);
    let mut kinds = Vec::new();
    for _ in 0..200 {
        let g = strategy.new_tree(&mut runner).expect("a graph").current();
        assert!((1..=4).contains(&g.dead.len()));
        for d in &g.dead {
            assert!(d.before < g.nodes.len() && d.arg < g.inputs + d.before);
            if !kinds.contains(&d.kind) {
                kinds.push(d.kind);
            }
        }
    }
    assert_eq!(kinds.len(), SINGULAR_KINDS, "{kinds:?}");
}
