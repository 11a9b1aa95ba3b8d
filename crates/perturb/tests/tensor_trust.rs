//! The tensor tape's trust guarantees (issue 14): what the output does not reach cannot poison
//! a derivative (S1), the tape's memory per node stays small (H6), and inside
//! `debug::detect_non_finite` the first non-finite value, tangent or cotangent is reported with
//! its operation, sweep and line.

use perturb::debug::{self, Sweep};
use perturb::tensor::{
    grad, hessian, hvp, jacfwd, jacrev, jvp, Array, DualTensor, Tensor, TensorTape, TensorVar,
};
use perturb::Error;

fn v(values: &[f64]) -> Tensor<f64> {
    Tensor::vector(values)
}

fn all_finite(t: &Tensor<f64>) -> bool {
    t.to_vec().iter().all(|x| x.is_finite())
}

// ---- S1: the sweep skips what the output does not reach ------------------------------------

#[test]
fn an_unused_sqrt_at_zero_does_not_poison_the_gradient() {
    let tape = TensorTape::new();
    let x = tape.var(v(&[0.0, 1.0, 4.0]));
    let _unused = x.sqrt(); // slope infinite at 0, recorded before the output
    let y = x.scale(2.0).sum_all();
    let g = tape.gradient(&y, &[&x]).unwrap();
    assert_eq!(g[0].to_vec(), vec![2.0; 3]);
}

#[test]
fn an_unused_node_sharing_inputs_with_used_ones_does_not_poison_the_gradient() {
    let tape = TensorTape::new();
    let x = tape.var(v(&[0.0, 2.0]));
    let w = tape.var(v(&[3.0, -1.0]));
    let p = x.mul(&w); // used
    let _unused = p.sqrt().add(&x.ln()); // NaN and -inf slopes, reading the used nodes
    let y = p.square().sum_all(); // sum (x w)^2: d/dx = 2 x w^2, d/dw = 2 w x^2
    let g = tape.gradient(&y, &[&x, &w]).unwrap();
    assert_eq!(g[0].to_vec(), vec![0.0, 4.0]);
    assert_eq!(g[1].to_vec(), vec![0.0, -8.0]);
}

/// `2 x0 + x1^2` with an unused `sqrt` and `ln` of `x` (infinite slopes at 0).
fn with_unused_singular<A: Array<Elem = f64>>(x: &A) -> Result<A, Error> {
    let _unused = x.sqrt().add(&x.ln());
    let c = x.constant_like(&v(&[2.0, 0.0]));
    let d = x.constant_like(&v(&[0.0, 1.0]));
    Ok(x.mul(&c).add(&x.square().mul(&d)).sum_all())
}

#[test]
fn unused_singular_nodes_do_not_poison_the_transforms() {
    let x = v(&[0.0, 3.0]);
    let g = grad(|x| with_unused_singular(x), &x).unwrap();
    assert_eq!(g.to_vec(), vec![2.0, 6.0]);
    let h = hessian(|x| with_unused_singular(x), &x).unwrap();
    assert_eq!(h.to_vec(), vec![0.0, 0.0, 0.0, 2.0]);
    let hv = hvp(|x| with_unused_singular(x), &x, &v(&[1.0, 1.0])).unwrap();
    assert_eq!(hv.to_vec(), vec![0.0, 2.0]);
    // The Jacobian of the gradient by reverse mode, and a reverse Jacobian over a tape whose
    // unused node sits beside two outputs.
    let j = jacrev(
        |x| {
            let _unused = x.sqrt();
            Ok(x.scale(3.0))
        },
        &x,
    )
    .unwrap();
    assert_eq!(j.to_vec(), vec![3.0, 0.0, 0.0, 3.0]);
    let jf = jacfwd(|x| Ok(x.scale(3.0)), &x).unwrap();
    assert_eq!(jf.to_vec(), j.to_vec());
}

#[test]
fn hvp_computes_no_tangent_for_an_unused_node() {
    // Inside detect_non_finite an infinite tangent is reported: hvp must not compute the
    // unused sqrt's tangent (it is infinite at 0) nor report it.
    // (sqrt(0) = 0 is finite: only its slope is not.)
    let x = v(&[0.0, 3.0]);
    fn f<A: Array<Elem = f64>>(x: &A) -> Result<A, Error> {
        let _unused = x.sqrt();
        Ok(x.square().sum_all())
    }
    let hv = debug::detect_non_finite(|| hvp(|x| f(x), &x, &v(&[1.0, 1.0])));
    assert_eq!(hv.unwrap().unwrap().to_vec(), vec![2.0, 2.0]);
}

#[test]
fn second_order_by_nested_tapes_skips_the_unused_node() {
    let inner = TensorTape::new();
    let x = inner.var(v(&[0.0, 2.0]));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(x.clone());
    let _unused = xo.sqrt();
    let y = xo.mul(&xo).mul(&xo).sum_all();
    let dy = outer.gradient(&y, &[&xo]).unwrap().remove(0);
    let d2 = inner.gradient(&dy.sum_all(), &[&x]).unwrap();
    assert_eq!(d2[0].to_vec(), vec![0.0, 12.0]);
}

// ---- H6: memory per node ---------------------------------------------------------------------

#[test]
fn the_tape_keeps_only_the_values_its_rules_read() {
    // y = tanh(0.999 y + 0.001 x): of each step's four values only tanh's output is read by a
    // rule. Before, every node held its inputs and output and its own lists (over 100 bytes of
    // lists per node, 450 bytes with the arrays they point to).
    let tape = TensorTape::new();
    let x = tape.var(v(&[0.1, 0.2, 0.3, 0.4]));
    let mut y = tape.var(v(&[0.5, -0.5, 1.0, -1.0]));
    let y0 = y.clone();
    for _ in 0..1000 {
        y = y.scale(0.999).add(&x.scale(0.001)).tanh();
    }
    assert_eq!(tape.len(), 4002);
    let bytes = tape.bytes_per_node();
    assert!(bytes < 64.0, "{bytes} bytes per node");
    // And the gradient is what a tape keeping everything gives (hvp and check_grads do).
    let g = tape.gradient(&y.sum_all(), &[&x, &y0]).unwrap();
    let by_grad = grad(
        |x| {
            let mut y = x.constant_like(&v(&[0.5, -0.5, 1.0, -1.0]));
            for _ in 0..1000 {
                y = y.scale(0.999).add(&x.scale(0.001)).tanh();
            }
            Ok(y.sum_all())
        },
        &v(&[0.1, 0.2, 0.3, 0.4]),
    )
    .unwrap();
    assert!(g[0].all_close(&by_grad, 1e-15));
    assert!(all_finite(&g[1]));
}

#[test]
fn a_chain_of_linear_operations_keeps_no_value() {
    let tape = TensorTape::new();
    let mut y = tape.var(v(&[1.0, 2.0, 3.0, 4.0]));
    for _ in 0..1000 {
        y = y.scale(0.5).add_scalar(1.0).neg();
    }
    let bytes = tape.bytes_per_node();
    assert!(bytes < 48.0, "{bytes} bytes per node");
}

// ---- the debugging mode on tensors -------------------------------------------------------------

#[test]
fn a_non_finite_value_is_reported_with_its_operation_and_line() {
    let mut line = 0;
    let found = debug::detect_non_finite(|| {
        let tape = TensorTape::new();
        let x = tape.var(v(&[1.0, -1.0]));
        line = line!() + 1;
        let y = x.ln(); // ln(-1) is NaN
        y.sum_all().value().clone()
    })
    .unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("ln", Sweep::Forward, "value")
    );
    let at = found.location.unwrap();
    assert_eq!((at.file(), at.line()), (file!(), line));
    assert_eq!(found.inputs.len(), 1);
    assert_eq!(found.inputs[0].shape, vec![2]);
    assert_eq!((found.inputs[0].min, found.inputs[0].max), (-1.0, 1.0));
}

#[test]
fn a_non_finite_value_through_an_operator_and_a_try_method_is_located_too() {
    let mut line = 0;
    let found = debug::detect_non_finite(|| {
        let tape = TensorTape::new();
        let x = tape.var(v(&[1.0, 0.0]));
        let one = tape.constant(v(&[1.0, 1.0]));
        let ok = &x * &one;
        line = line!() + 1;
        let y = one.try_div(&ok).unwrap(); // 1 / 0
        y.sum_all().value().clone()
    })
    .unwrap_err();
    assert_eq!((found.op, found.sweep), ("div", Sweep::Forward));
    assert_eq!(found.location.unwrap().line(), line);
    assert_eq!(found.inputs.len(), 2);
}

#[test]
fn a_non_finite_tangent_is_reported_in_forward_mode() {
    let mut line = 0;
    let found = debug::detect_non_finite(|| {
        let x = DualTensor::new(v(&[0.0, 4.0]), v(&[1.0, 1.0]));
        line = line!() + 1;
        let y = x.sqrt(); // value 0, tangent 1 / (2 sqrt 0) = inf
        y.sum_all()
    })
    .unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("sqrt", Sweep::Tangent, "tangent")
    );
    assert_eq!(found.location.unwrap().line(), line);
    assert_eq!(found.inputs[0].shape, vec![2]);
}

#[test]
fn a_non_finite_cotangent_stops_the_sweep_with_an_error_naming_the_operation() {
    let mut line = 0;
    let found = debug::detect_non_finite(|| {
        let tape = TensorTape::new();
        let x = tape.var(v(&[0.0, 4.0]));
        line = line!() + 1;
        let r = x.sqrt(); // value 0 (finite), used by the output: its cotangent is infinite
        let y = r.sum_all();
        let err = tape.gradient(&y, &[&x]).unwrap_err();
        let Error::NonFinite(report) = &err else {
            panic!("expected Error::NonFinite, got {err}")
        };
        assert_eq!((report.op, report.sweep), ("sqrt", Sweep::Reverse));
        assert!(err.to_string().starts_with("sqrt at "), "{err}");
    })
    .unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("sqrt", Sweep::Reverse, "cotangent")
    );
    assert_eq!(found.location.unwrap().line(), line);
    // The output's cotangent first, then the input's shape and range.
    assert_eq!(found.inputs.len(), 2);
    assert_eq!((found.inputs[1].min, found.inputs[1].max), (0.0, 4.0));
}

#[test]
fn the_transforms_return_the_non_finite_cotangent_as_an_error() {
    let found =
        debug::detect_non_finite(|| grad(|x| Ok(x.sqrt().sum_all()), &v(&[0.0, 1.0]))).unwrap_err();
    assert_eq!((found.op, found.sweep), ("sqrt", Sweep::Reverse));
    let inner =
        debug::detect_non_finite(|| grad(|x| Ok(x.sqrt().sum_all()), &v(&[0.0, 1.0])).unwrap_err())
            .unwrap_err();
    assert_eq!(inner.op, "sqrt");
}

#[test]
fn finite_computations_report_nothing_and_give_the_same_numbers() {
    let x = v(&[0.5, 2.0]);
    fn f<A: Array<Elem = f64>>(x: &A) -> Result<A, Error> {
        Ok(x.sqrt().mul(&x.ln().exp()).sum_all())
    }
    let plain = grad(|x| f(x), &x).unwrap();
    let checked = debug::detect_non_finite(|| grad(|x| f(x), &x))
        .unwrap()
        .unwrap();
    assert_eq!(plain.to_vec(), checked.to_vec());
    let hv = debug::detect_non_finite(|| hvp(|x| Ok(x.sqrt().sum_all()), &x, &v(&[1.0, 1.0])));
    assert!(all_finite(&hv.unwrap().unwrap()));
    let (_, dy) = debug::detect_non_finite(|| jvp(|x| Ok(x.tanh()), &x, &v(&[1.0, 0.0])))
        .unwrap()
        .unwrap();
    assert!(all_finite(&dy));
}

#[test]
fn nothing_is_located_when_debugging_is_off() {
    // Outside detect_non_finite a NaN goes through unreported, as before.
    let tape = TensorTape::new();
    let x = tape.var(v(&[0.0, 4.0]));
    let g = tape.gradient(&x.sqrt().sum_all(), &[&x]).unwrap();
    assert_eq!(g[0].to_vec()[0], f64::INFINITY);
}

// ---- shapes of cotangents ----------------------------------------------------------------------

/// `sum(x)` over all elements, with a wrong VJP: it hands back the output's cotangent (a
/// scalar) as the input's, repeated along a new axis, shape [2, n] for an input of shape [n].
#[derive(Clone, Debug)]
struct BadSum;
impl perturb::tensor::Op for BadSum {
    fn name(&self) -> &'static str {
        "bad_sum"
    }
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].sum_all())
    }
    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].map(|t| t.sum_all()))
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, g: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let n = x[0].shape()[0];
        Ok(vec![Some(g.try_broadcast_to(&[2, n])?)])
    }
}

#[test]
fn a_cotangent_of_the_wrong_shape_is_an_error_naming_the_operation() {
    let tape = TensorTape::new();
    let x = tape.var(v(&[1.0, 2.0, 3.0]));
    let y = x.apply_op(&BadSum).unwrap();
    let err = tape.gradient(&y, &[&x]).unwrap_err().to_string();
    assert!(err.contains("bad_sum") && err.contains("[2, 3]"), "{err}");
}

/// `x^2` whose rule reads its input but declares it reads nothing: the tape keeps no value for
/// it and hands the rule zeros, so the gradient is wrong, and `check_grads` must say so.
#[derive(Clone, Debug)]
struct SquareReadingUndeclared;
impl perturb::tensor::Op for SquareReadingUndeclared {
    fn name(&self) -> &'static str {
        "square_reading_undeclared"
    }
    const VJP_READS: perturb::tensor::VjpReads = perturb::tensor::VjpReads::NOTHING;
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].square())
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(&x[0].scale(A::elem(2.0)))?))
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, g: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(g.try_mul(&x[0].scale(A::elem(2.0)))?)])
    }
}

#[test]
fn check_grads_catches_a_rule_that_reads_a_value_it_does_not_declare() {
    struct F;
    impl perturb::tensor::TensorFn<f64> for F {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            Ok(x.scale(1.5).apply_op(&SquareReadingUndeclared)?.sum_all())
        }
    }
    let x = v(&[0.3, -0.2]);
    let report =
        perturb::tensor::check_grads(&F, &x, &perturb::tensor::CheckOptions::default()).unwrap();
    assert!(!report.passes(1e-6), "{report}");
}

/// `a + b` whose VJP forgets its second input's cotangent (one entry for two inputs).
#[derive(Clone, Debug)]
struct ShortVjp;
impl perturb::tensor::Op for ShortVjp {
    fn name(&self) -> &'static str {
        "short_vjp"
    }
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        x[0].try_add(x[1])
    }
    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].cloned())
    }
    fn vjp<A: Array>(&self, _: &[&A], _: &A, g: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(g.clone())])
    }
}

#[test]
fn a_vjp_with_too_few_cotangents_is_an_error_not_a_zero_gradient() {
    let tape = TensorTape::new();
    let a = tape.var(v(&[1.0]));
    let b = tape.var(v(&[2.0]));
    let y = Array::apply(&ShortVjp, &[&a, &b]).unwrap();
    let err = tape
        .gradient(&y.sum_all(), &[&a, &b])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("short_vjp") && err.contains("1 cotangents for 2 inputs"),
        "{err}"
    );
}

// ---- one output's singularity does not poison the other rows ----------------------------------

/// `[sqrt(x0), 2 x1]`: at `x0 = 0` the first row's slope is infinite; the second row does not
/// depend on `x0` at all.
fn two_rows<A: Array<Elem = f64>>(x: &A) -> Result<A, Error> {
    let a = x.narrow(0, 0, 1).sqrt();
    let b = x.narrow(0, 1, 1).scale(2.0);
    A::try_concat(&[&a, &b], 0)
}

#[test]
fn a_singular_row_of_a_jacobian_does_not_poison_the_others() {
    let x = v(&[0.0, 1.0]);
    let j = jacrev(|x| two_rows(x), &x).unwrap().to_vec();
    // Row 0: [inf, 0]; row 1: [0, 2] (it was [NaN, 2]: 0 * inf).
    assert_eq!(j[0], f64::INFINITY);
    assert_eq!(&j[1..], &[0.0, 0.0, 2.0]);
    // Forward mode along e1: the sqrt's tangent is exactly zero, so it is no tangent.
    let (_, column) = jvp(two_rows, &x, &v(&[0.0, 1.0])).unwrap();
    assert_eq!(column.to_vec(), vec![0.0, 2.0]);
    // The same row by one VJP on a tape: the sqrt's cotangent is exactly zero, so it is
    // skipped.
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let y = two_rows(&xv).unwrap();
    let row = tape.vjp(&y, &v(&[0.0, 1.0]), &[&xv]).unwrap();
    assert_eq!(row[0].to_vec(), vec![0.0, 2.0]);
}

#[test]
fn a_zero_cotangent_is_skipped_only_when_it_is_zero_at_every_level() {
    // d/dx [x * d/dx (x^3 / 3 - x)] at x = 1, where the inner derivative x^2 - 1 is zero but
    // its own derivative is not: reverse over reverse must not skip it. x (x^2 - 1) has
    // derivative 3 x^2 - 1 = 2 at 1.
    let inner = TensorTape::new();
    let x = inner.var(v(&[1.0]));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(x.clone());
    let f = xo.pow_scalar(3.0).scale(1.0 / 3.0).sub(&xo).sum_all();
    let df = outer.gradient(&f, &[&xo]).unwrap().remove(0); // x^2 - 1, zero at 1
    assert_eq!(df.value().to_vec(), vec![0.0]);
    let g = x.mul(&df).sum_all();
    let d2 = inner.gradient(&g, &[&x]).unwrap();
    assert_eq!(d2[0].to_vec(), vec![2.0]);
}
