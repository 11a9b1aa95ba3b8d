//! User-defined tensor operations: from a value and a JVP (reverse mode by transposition), from
//! the lecture's `func` and `grads` (`Pointwise`, `PointwiseBinary`), checked at orders one to
//! three against exact derivatives and by `check_grads` against central differences; and
//! `check_grads` itself catching wrong rules.

use perturb::tensor::{
    check_grads, grad, hessian, hvp, jacfwd, jacrev, ops, Array, Batched, CheckOptions, Element,
    Grad, Op, Tensor, TensorFn,
};
use perturb::{BinaryOp, Error, Mode, Scalar, UnaryOp};

/// `x^3` from its value and JVP only.
#[derive(Clone, Debug)]
struct Cube;
impl Op for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].map(|v| v * v * v))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&x[0].square().scale(A::elem(3.0)))?))
    }
}

/// `a * b^2` with numpy broadcasting, from its value and JVP only: reverse mode must transpose
/// a JVP of two inputs and sum a broadcast input's cotangent back to its shape.
#[derive(Clone, Debug)]
struct TimesSquare;
impl Op for TimesSquare {
    fn name(&self) -> &'static str {
        "times_square"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        x[0].try_mul(&x[1].square())
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let (a, b) = (x[0], x[1]);
        let da = t[0].map(|t| t.try_mul(&b.square())).transpose()?;
        let db = match t[1] {
            Some(t) => Some(t.try_mul(&a.try_mul(b)?.scale(A::elem(2.0)))?),
            None => None,
        };
        let sum = match (da, db) {
            (Some(p), Some(q)) => p.try_add(&q)?,
            (Some(p), None) | (None, Some(p)) => p,
            (None, None) => return Ok(None),
        };
        Ok(Some(sum.try_broadcast_to(y.shape())?))
    }
}

/// The lecture's log: `func = ln a`, `grads = 1 / a`.
#[derive(Clone, Copy, Debug)]
struct LectureLog;
impl UnaryOp for LectureLog {
    fn func<T: Scalar>(&self, a: T) -> T {
        a.ln()
    }
    fn grads<T: Scalar>(&self, a: T, _: T) -> T {
        a.recip()
    }
    fn name(&self) -> &'static str {
        "lecture_log"
    }
}

/// `a^2 b` with `grads = (2 a b, a^2)`.
#[derive(Clone, Copy, Debug)]
struct SquareTimes;
impl BinaryOp for SquareTimes {
    fn func<T: Scalar>(&self, a: T, b: T) -> T {
        a * a * b
    }
    fn grads<T: Scalar>(&self, a: T, b: T, _: T) -> (T, T) {
        (a * b * T::from(2.0).unwrap(), a * a)
    }
    fn name(&self) -> &'static str {
        "square_times"
    }
}

fn assert_all_close(what: &str, got: &Tensor<f64>, want: &[f64], tol: f64) {
    let got = got.to_vec();
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn a_jvp_only_op_gets_reverse_mode_by_transposition_at_orders_one_and_two() {
    let x0 = [0.5, -1.25, 2.0];
    let x = Tensor::vector(&x0);
    let g = grad(|x| Ok(x.apply_op(&Cube)?.sum_all()), &x).unwrap();
    assert_all_close("3 x^2", &g, &x0.map(|v| 3.0 * v * v), 1e-15);
    // Reverse over reverse (the transposition itself differentiated) and forward over reverse.
    let h = hessian(|x| Ok(x.apply_op(&Cube)?.sum_all()), &x).unwrap();
    let mut diag = vec![0.0; 9];
    for i in 0..3 {
        diag[4 * i] = 6.0 * x0[i];
    }
    assert_all_close("hessian diag(6x)", &h, &diag, 1e-14);
    let v = Tensor::vector(&[1.0, 2.0, -1.0]);
    let hv = hvp(|x| Ok(x.apply_op(&Cube)?.sum_all()), &x, &v).unwrap();
    assert_all_close(
        "hvp 6 x v",
        &hv,
        &[6.0 * 0.5, -(6.0 * 1.25 * 2.0), -6.0 * 2.0],
        1e-14,
    );
    let jf = jacfwd(|x| x.apply_op(&Cube), &x).unwrap();
    let jr = jacrev(|x| x.apply_op(&Cube), &x).unwrap();
    assert!(jf.all_close(&jr, 1e-15));
}

#[test]
fn a_two_input_jvp_only_op_transposes_with_broadcasting() {
    // a: [2, 3], b: [3] broadcast over the rows. sum(a * b^2):
    // d/da = b^2 (each row), d/db_j = sum_i 2 a_ij b_j.
    let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    let b = Tensor::vector(&[0.5, -1.0, 2.0]);
    let g = perturb::tensor::grad_n(
        |p| Ok(Array::apply(&TimesSquare, &[&p[0], &p[1]])?.sum_all()),
        &[a.clone(), b.clone()],
    )
    .unwrap();
    assert_all_close("d/da", &g[0], &[0.25, 1.0, 4.0, 0.25, 1.0, 4.0], 1e-15);
    assert_all_close(
        "d/db",
        &g[1],
        &[2.0 * 5.0 * 0.5, -(2.0 * 7.0), 2.0 * 9.0 * 2.0],
        1e-15,
    );
}

struct CubeFn;
impl TensorFn<f64> for CubeFn {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.apply_op(&Cube)?.exp().sum_all())
    }
}

struct LogFn;
impl TensorFn<f64> for LogFn {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.apply_op(&ops::Pointwise(LectureLog))?.sum_all())
    }
}

struct SquareTimesFn;
impl TensorFn<f64> for SquareTimesFn {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        // x: [4], used as a = x, b = x reversed in pairs, with a broadcast [1] third operand.
        let a = x.try_narrow(0, 0, 2)?;
        let b = x.try_narrow(0, 2, 2)?;
        let c = x.try_narrow(0, 1, 1)?;
        let y = A::apply(&ops::PointwiseBinary(SquareTimes), &[&a, &b])?;
        let z = A::apply(&ops::PointwiseBinary(SquareTimes), &[&y, &c])?;
        Ok(z.sin().sum_all())
    }
}

#[test]
fn check_grads_passes_for_right_custom_ops_at_order_two() {
    let x = Tensor::vector(&[0.4, 1.3, 0.7, 2.1]);
    for (name, report) in [
        ("cube", check_grads(&CubeFn, &x, &CheckOptions::default())),
        ("log", check_grads(&LogFn, &x, &CheckOptions::default())),
        (
            "square_times",
            check_grads(&SquareTimesFn, &x, &CheckOptions::default()),
        ),
    ] {
        let report = report.unwrap();
        // order 1: 2 directions x 2 modes; order 2: 2 directions x 2 inner x 2 outer modes.
        assert_eq!(report.comparisons.len(), 4 + 16, "{name}");
        assert!(!report.ops.is_empty(), "{name}");
        assert!(report.passes(1e-6), "{name}\n{report}");
    }
}

#[test]
fn pointwise_rules_give_exact_derivatives_to_order_three() {
    // ln x: 1/x, -1/x^2, 2/x^3.
    let x = Tensor::scalar(1.5_f64);
    let d1 = Grad(LogFn).call(&x).unwrap().to_vec()[0];
    let d2 = Grad(Grad(LogFn)).call(&x).unwrap().to_vec()[0];
    let d3 = Grad(Grad(Grad(LogFn))).call(&x).unwrap().to_vec()[0];
    assert!((d1 - 1.0 / 1.5).abs() < 1e-15);
    assert!((d2 + 1.0 / 1.5_f64.powi(2)).abs() < 1e-15);
    assert!((d3 - 2.0 / 1.5_f64.powi(3)).abs() < 1e-14);

    // a^2 b at (a, b) = (3, -2): partials (2ab, a^2) = (-12, 9); Hessian [[2b, 2a], [2a, 0]].
    struct F;
    impl TensorFn<f64> for F {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            let a = x.try_narrow(0, 0, 1)?;
            let b = x.try_narrow(0, 1, 1)?;
            Ok(A::apply(&ops::PointwiseBinary(SquareTimes), &[&a, &b])?.sum_all())
        }
    }
    let x = Tensor::vector(&[3.0, -2.0]);
    assert_all_close("grad", &Grad(F).call(&x).unwrap(), &[-12.0, 9.0], 1e-15);
    let h = perturb::tensor::Hessian(F).call(&x).unwrap();
    assert_all_close("hessian", &h, &[-4.0, 6.0, 6.0, 0.0], 1e-15);
    let j = perturb::tensor::jacobian(&Grad(F), &x, Mode::Reverse).unwrap();
    assert!(j.all_close(&h, 1e-15));
}

/// `x^3` with a right JVP and a wrong hand-written VJP (`2 x^2` instead of `3 x^2`).
#[derive(Clone, Debug)]
struct WrongVjp;
impl Op for WrongVjp {
    fn name(&self) -> &'static str {
        "wrong_vjp"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Cube.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Cube.jvp(x, y, t)
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_mul(&x[0].square().scale(A::elem(2.0)))?)])
    }
}

struct WrongFn;
impl TensorFn<f64> for WrongFn {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.sin().apply_op(&WrongVjp)?.sum_all())
    }
}

#[test]
fn check_grads_names_the_op_with_a_wrong_rule_and_the_mode_that_shows_it() {
    let x = Tensor::vector(&[0.3, -0.8, 1.1]);
    let report = check_grads(&WrongFn, &x, &CheckOptions::default()).unwrap();
    assert!(!report.passes(1e-6));
    let worst = report.worst_op().unwrap();
    assert_eq!(worst.op, "wrong_vjp");
    assert!(
        worst.forward_error < 1e-7 && worst.reverse_error > 1e-3,
        "{report}"
    );
    // Forward mode alone sees nothing wrong; reverse mode does.
    let forward_only = CheckOptions {
        modes: vec![Mode::Forward],
        ..CheckOptions::default()
    };
    let report = check_grads(&WrongFn, &x, &forward_only).unwrap();
    assert!(
        report.comparisons.iter().all(|c| c.error < 1e-7),
        "{report}"
    );
    assert!(report.worst().unwrap().what.contains("forward"));
    // The text report names the op.
    let text = check_grads(&WrongFn, &x, &CheckOptions::default())
        .unwrap()
        .to_string();
    assert!(text.contains("worst operation: wrong_vjp"), "{text}");
}

#[test]
fn check_grads_rejects_options_it_cannot_honour() {
    let x = Tensor::vector(&[1.0]);
    let order3 = CheckOptions {
        order: 3,
        ..CheckOptions::default()
    };
    let err = check_grads(&LogFn, &x, &order3).unwrap_err().to_string();
    assert!(
        err.contains("check_grads") && err.contains("order 3"),
        "{err}"
    );
    let no_modes = CheckOptions {
        modes: vec![],
        ..CheckOptions::default()
    };
    let err = check_grads(&LogFn, &x, &no_modes).unwrap_err().to_string();
    assert!(err.contains("no mode"), "{err}");
    // A function that fails is an error, not a panic.
    struct Bad;
    impl TensorFn<f64> for Bad {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            x.try_reshape(&[7])
        }
    }
    assert!(check_grads(&Bad, &x, &CheckOptions::default()).is_err());
}

/// `x^3` again, with a batching rule that forgets the stack's axis (a user's bug).
#[derive(Clone, Debug)]
struct CubeWithBadBatch;
impl Op for CubeWithBadBatch {
    fn name(&self) -> &'static str {
        "cube_with_bad_batch"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Cube.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Cube.jvp(x, y, t)
    }
    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        x[0].try_sum_axes(&[0], false)
    }
}

#[test]
fn custom_ops_without_a_batching_rule_are_mapped_by_a_loop_and_a_wrong_rule_is_an_error() {
    // Cube has no batching rule: on a stack of inputs it runs member by member.
    let xs = Tensor::from_vec(vec![0.5_f64, -1.0, 2.0, 3.0, 0.0, -0.25], &[2, 3]).unwrap();
    let ys = Batched::stack(xs.clone()).apply_op(&Cube).unwrap();
    let ys = ys.into_stack().unwrap();
    assert_eq!(ys.shape(), &[2, 3]);
    assert_eq!(ys.to_vec(), xs.map(|v| v * v * v).to_vec());
    // jacfwd and jacrev (stacks of tangents and cotangents through Cube's JVP and its
    // transpose) agree with diag(3 x^2).
    let x = Tensor::vector(&[0.5_f64, -1.0, 2.0]);
    let jf = jacfwd(|x| x.apply_op(&Cube), &x).unwrap();
    let jr = jacrev(|x| x.apply_op(&Cube), &x).unwrap();
    let want = Tensor::from_vec(vec![0.75, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 12.0], &[3, 3]);
    assert!(jf.all_close(&want.unwrap(), 1e-15) && jf.all_close(&jr, 1e-15));
    // A rule whose result lost the stack's axis is an error naming the operation, not
    // silently mislabelled members.
    let stack = Batched::stack(Tensor::<f64>::ones(&[4, 3]));
    let err = stack.apply_op(&CubeWithBadBatch).unwrap_err().to_string();
    assert!(
        err.contains("cube_with_bad_batch") && err.contains('4'),
        "{err}"
    );
}

// ---- Two operations whose JVPs call each other (newcomer report, item 3) ----------------------

/// `J0(x)` by its series, in `f64`.
fn j0_f64(x: f64) -> f64 {
    let (mut term, mut sum) = (1.0, 1.0);
    for k in 1..60 {
        term *= -(x / 2.0) * (x / 2.0) / (k as f64 * k as f64);
        sum += term;
    }
    sum
}

/// `J1(x)` by its series, in `f64`.
fn j1_f64(x: f64) -> f64 {
    let (mut term, mut sum) = (x / 2.0, x / 2.0);
    for k in 1..60 {
        term *= -(x / 2.0) * (x / 2.0) / (k as f64 * (k + 1) as f64);
        sum += term;
    }
    sum
}

fn map_f64<T: Element>(x: &Tensor<T>, f: fn(f64) -> f64) -> Tensor<T> {
    x.map(|v| <Tensor<T> as Array>::elem(f(v.to_f64_value())))
}

/// The Bessel function `J0`, `J0' = -J1`, with its VJP written out. Its JVP applies `J1`, whose
/// JVP applies `J0`.
#[derive(Clone, Debug)]
struct J0;
impl Op for J0 {
    fn name(&self) -> &'static str {
        "j0"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(map_f64(x[0], j0_f64))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&x[0].apply_op(&J1)?.neg())?))
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, g: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(g.try_mul(&x[0].apply_op(&J1)?.neg())?)])
    }
}

/// The Bessel function `J1`, `J1' = J0 - J1 / x`.
#[derive(Clone, Debug)]
struct J1;
impl J1 {
    fn slope<A: Array>(x: &A, y: &A) -> Result<A, Error> {
        x.apply_op(&J0)?.try_sub(&y.try_div(x)?)
    }
}
impl Op for J1 {
    fn name(&self) -> &'static str {
        "j1"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(map_f64(x[0], j1_f64))
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&J1::slope(x[0], y)?)?))
    }
    fn vjp<A: Array>(&self, x: &[&A], y: &A, g: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(g.try_mul(&J1::slope(x[0], y)?)?)])
    }
}

#[test]
fn bessel_functions_whose_rules_call_each_other_with_explicit_vjps() {
    let xs = [0.7, 1.3, 2.9];
    let x = Tensor::vector(&xs);
    // Order 1: d/dx sum J0(x) = -J1(x); d/dx sum J1(x) = J0(x) - J1(x) / x.
    let g0 = grad(|x| Ok(x.apply_op(&J0)?.sum_all()), &x).unwrap();
    let g1 = grad(|x| Ok(x.apply_op(&J1)?.sum_all()), &x).unwrap();
    // Order 2: J0'' = -J1' = -(J0 - J1 / x), the Hessian's diagonal, by reverse over forward
    // (hessian), and by forward over reverse (hvp).
    let h0 = hessian(|x| Ok(x.apply_op(&J0)?.sum_all()), &x).unwrap();
    let hv = hvp(|x| Ok(x.apply_op(&J0)?.sum_all()), &x, &Tensor::ones(&[3])).unwrap();
    let h = 1e-5;
    for (i, &xi) in xs.iter().enumerate() {
        let d1 = |f: fn(f64) -> f64| (f(xi + h) - f(xi - h)) / (2.0 * h);
        let j1_slope = j0_f64(xi) - j1_f64(xi) / xi;
        // Against the exact values, and against central differences of the series.
        assert!((g0.to_vec()[i] + j1_f64(xi)).abs() < 1e-15, "{g0:?}");
        assert!((g0.to_vec()[i] - d1(j0_f64)).abs() < 1e-9);
        assert!((g1.to_vec()[i] - j1_slope).abs() < 1e-15, "{g1:?}");
        assert!((g1.to_vec()[i] - d1(j1_f64)).abs() < 1e-9);
        let d2 = (j0_f64(xi + h) - 2.0 * j0_f64(xi) + j0_f64(xi - h)) / (h * h);
        let h_ii = h0.to_vec()[i * 3 + i];
        assert!((h_ii + j1_slope).abs() < 1e-14, "{h0:?}");
        assert!((h_ii - d2).abs() < 1e-5, "{h_ii} vs {d2}");
        assert!((hv.to_vec()[i] + j1_slope).abs() < 1e-14, "{hv:?}");
    }
    // Off the diagonal, nothing: element-wise.
    assert_eq!(h0.to_vec()[1], 0.0);
    // And check_grads agrees with central differences, op by op.
    struct Both;
    impl TensorFn<f64> for Both {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            Ok(x.apply_op(&J0)?.try_mul(&x.apply_op(&J1)?)?.sum_all())
        }
    }
    let report = check_grads(&Both, &x, &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{report}");
}

/// `J0` again, its VJP left to the default (the JVP transposed), and `J1` likewise: the cycle
/// used to fail to compile ("values of the type DualTensor<DualTensor<...>> are too big").
#[derive(Clone, Debug)]
struct J0ByJvp;
impl Op for J0ByJvp {
    fn name(&self) -> &'static str {
        "j0_by_jvp"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(map_f64(x[0], j0_f64))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&x[0].apply_op(&J1ByJvp)?.neg())?))
    }
}

#[derive(Clone, Debug)]
struct J1ByJvp;
impl Op for J1ByJvp {
    fn name(&self) -> &'static str {
        "j1_by_jvp"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(map_f64(x[0], j1_f64))
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        let slope = x[0].apply_op(&J0ByJvp)?.try_sub(&y.try_div(x[0])?)?;
        Ok(Some(t.try_mul(&slope)?))
    }
}

#[test]
fn bessel_functions_whose_jvps_call_each_other_work_with_the_default_vjp() {
    let xs = [0.7, 1.3, 2.9];
    let x = Tensor::vector(&xs);
    let g0 = grad(|x| Ok(x.apply_op(&J0ByJvp)?.sum_all()), &x).unwrap();
    let h0 = hessian(|x| Ok(x.apply_op(&J0ByJvp)?.sum_all()), &x).unwrap();
    let hv = hvp(
        |x| Ok(x.apply_op(&J0ByJvp)?.sum_all()),
        &x,
        &Tensor::ones(&[3]),
    )
    .unwrap();
    let j = jacrev(|x| x.apply_op(&J1ByJvp), &x).unwrap();
    // Third order, reverse over reverse over reverse.
    let d3 = Grad(Grad(Grad(SumJ0)))
        .call(&Tensor::vector(&[1.3]))
        .unwrap();
    for (i, &xi) in xs.iter().enumerate() {
        let j1_slope = j0_f64(xi) - j1_f64(xi) / xi;
        assert!((g0.to_vec()[i] + j1_f64(xi)).abs() < 1e-15, "{g0:?}");
        assert!((h0.to_vec()[i * 3 + i] + j1_slope).abs() < 1e-14, "{h0:?}");
        assert!((hv.to_vec()[i] + j1_slope).abs() < 1e-14, "{hv:?}");
        assert!((j.to_vec()[i * 3 + i] - j1_slope).abs() < 1e-15, "{j:?}");
    }
    // J0''' = -J1'' = -(J0' - J1'/x + J1/x^2) = J1 + J1'/x - J1/x^2.
    let x = 1.3_f64;
    let j1_slope = j0_f64(x) - j1_f64(x) / x;
    let exact = j1_f64(x) + j1_slope / x - j1_f64(x) / (x * x);
    assert!((d3.to_vec()[0] - exact).abs() < 1e-13, "{d3:?} vs {exact}");
    struct Both;
    impl TensorFn<f64> for Both {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            Ok(x.apply_op(&J0ByJvp)?
                .try_mul(&x.apply_op(&J1ByJvp)?)?
                .sum_all())
        }
    }
    let report = check_grads(&Both, &Tensor::vector(&xs), &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{report}");
}

/// `sum J0(x)`, by the default VJPs.
struct SumJ0;
impl TensorFn<f64> for SumJ0 {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.apply_op(&J0ByJvp)?.sum_all())
    }
}
