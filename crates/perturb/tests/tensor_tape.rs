//! The tensor tape's guarantees: recording only what needs a gradient, accumulation over
//! reuse, pruned sweeps, a kept graph, no_grad and detach, errors for foreign variables,
//! independent tapes on threads, and no growth over many steps.

use perturb::tensor::{Array, Tensor, TensorTape, TensorVar};
use perturb::Error;

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

#[test]
fn only_operations_with_a_variable_input_are_recorded() {
    let tape = TensorTape::new();
    let c = tape.constant(t(&[1.0, 2.0], &[2]));
    let d = c.exp().mul(&c); // constants only: nothing recorded
    assert!(d.is_constant());
    assert_eq!(tape.len(), 0);
    let x = tape.var(t(&[0.5, 0.25], &[2]));
    let _ = x.mul(&d);
    assert_eq!(tape.len(), 2);
}

#[test]
fn a_reused_value_accumulates_its_cotangents() {
    // The lecture's a = x^2, b = 5a, c = log a, g = b c, L = -g, elementwise on a vector:
    // dL/dx = -(10 x log(x^2) + 10 x).
    let tape = TensorTape::new();
    let x0 = [0.7, 1.3, 2.0];
    let x = tape.var(t(&x0, &[3]));
    let a = x.square();
    let b = a.scale(5.0);
    let c = a.ln();
    let g = b.mul(&c);
    let l = g.neg().sum_all();
    let grad = tape.gradient(&l, &[&x]).unwrap().remove(0);
    for (gi, xi) in grad.to_vec().iter().zip(x0) {
        let exact = -(10.0 * xi * (xi * xi).ln() + 10.0 * xi);
        assert!(
            (gi - exact).abs() < 1e-13 * exact.abs().max(1.0),
            "{gi} vs {exact}"
        );
    }
}

#[test]
fn the_graph_is_kept_for_a_second_sweep_and_intermediates_can_be_asked_for() {
    let tape = TensorTape::new();
    let x = tape.var(t(&[1.0, 2.0], &[2]));
    let h = x.exp();
    let y = h.mul(&x).sum_all();
    let first = tape.gradient(&y, &[&x, &h]).unwrap();
    let second = tape.gradient(&y, &[&x, &h]).unwrap();
    assert_eq!(first[0].to_vec(), second[0].to_vec());
    // y = sum(e^x x): dy/dx = e^x (1 + x); dy/dh (h held as a node) = x.
    let e = [1.0_f64.exp(), 2.0_f64.exp()];
    assert!(first[0].all_close(&t(&[e[0] * 2.0, e[1] * 3.0], &[2]), 1e-15));
    assert_eq!(first[1].to_vec(), vec![1.0, 2.0]);
}

#[test]
fn inputs_without_a_path_to_the_output_get_zeros_of_their_shape() {
    let tape = TensorTape::new();
    let x = tape.var(t(&[1.0, 2.0], &[2]));
    let unused = tape.var(Tensor::zeros(&[3, 2]));
    let y = x.square().sum_all();
    let g = tape.gradient(&y, &[&unused, &x]).unwrap();
    assert_eq!(g[0].shape(), &[3, 2]);
    assert_eq!(g[0].to_vec(), vec![0.0; 6]);
    assert_eq!(g[1].to_vec(), vec![2.0, 4.0]);
}

#[test]
fn no_grad_and_detach_stop_the_gradient() {
    let tape = TensorTape::new();
    let x = tape.var(t(&[3.0], &[1]));
    let frozen = tape.no_grad(|| x.square());
    assert!(frozen.is_constant());
    let y = x.mul(&frozen).sum_all(); // d/dx (x * 9) = 9
    assert_eq!(tape.gradient(&y, &[&x]).unwrap()[0].to_vec(), vec![9.0]);
    let z = x.mul(&x.detach()).sum_all(); // d/dx (x * 3) = 3
    assert_eq!(tape.gradient(&z, &[&x]).unwrap()[0].to_vec(), vec![3.0]);
    // Recording is back on after the scope, even if it had panicked.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tape.no_grad(|| panic!("inside"))
    }));
    assert!(r.is_err());
    assert!(!x.exp().is_constant());
}

#[test]
fn the_vjp_checks_the_cotangent_shape_and_the_tape() {
    let tape = TensorTape::new();
    let other = TensorTape::new();
    let x = tape.var(t(&[1.0, 2.0], &[2]));
    let y = x.exp();
    let err = tape.vjp(&y, &Tensor::ones(&[3]), &[&x]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                op: "TensorTape::vjp",
                ..
            }
        ),
        "{err}"
    );
    let z = other.var(t(&[1.0], &[1]));
    assert!(matches!(
        tape.vjp(&y, &Tensor::ones(&[2]), &[&z]),
        Err(Error::ForeignVariable { .. })
    ));
    assert!(matches!(
        tape.gradient(&y, &[&x]),
        Err(Error::NotAScalar { .. })
    ));
    // Mixing the two tapes in one operation is an error of that operation.
    let err = x.try_add(&z).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("add: the variable belongs to tape"),
        "{err}"
    );
}

#[test]
fn a_failing_rule_in_the_sweep_names_the_operation() {
    let tape = TensorTape::new();
    let x = tape.var(t(&[1.0], &[1]));
    let y = x.apply_op(&Broken).unwrap().sum_all();
    let err = tape.gradient(&y, &[&x]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backward pass of broken: broken: no derivative here"
    );
}

/// An operation whose derivative rule always fails.
#[derive(Clone, Debug)]
struct Broken;
impl perturb::tensor::Op for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].clone())
    }
    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Err(Error::InvalidArgument {
            op: "broken",
            reason: "no derivative here".into(),
        })
    }
    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Err(Error::InvalidArgument {
            op: "broken",
            reason: "no derivative here".into(),
        })
    }
}

#[test]
fn tapes_on_two_threads_are_independent() {
    let handles: Vec<_> = (1..=2)
        .map(|k| {
            std::thread::spawn(move || {
                let mut tape = TensorTape::new();
                let mut out = Vec::new();
                for step in 0..200 {
                    let x0 = f64::from(k) + f64::from(step) * 1e-3;
                    let g = {
                        let x = tape.var(t(&[x0, -x0], &[2]));
                        let y = x.sigmoid().sum_all();
                        tape.gradient(&y, &[&x]).unwrap().remove(0)
                    };
                    tape.clear();
                    out.push((x0, g.to_vec()));
                }
                out
            })
        })
        .collect();
    for h in handles {
        for (x0, g) in h.join().unwrap() {
            // sigmoid' = s(1 - s), symmetric in x.
            let s = 1.0 / (1.0 + (-x0).exp());
            assert!((g[0] - s * (1.0 - s)).abs() < 1e-15 && (g[1] - g[0]).abs() < 1e-15);
        }
    }
}

#[test]
fn twenty_thousand_steps_on_one_tape_leave_it_empty() {
    // Each step records, sweeps and clears; the tape's length is back to 0 every time.
    let w0 = Tensor::vector(&[0.5_f64, -0.5]);
    let mut tape = TensorTape::new();
    let mut w = w0.clone();
    for _ in 0..20_000 {
        let g = {
            let wv = tape.var(w.clone());
            let y = wv.square().sum_all();
            tape.gradient(&y, &[&wv]).unwrap().remove(0)
        };
        tape.clear();
        assert!(tape.is_empty());
        w = w.sub(&g.scale(1e-3));
    }
    // w_{k+1} = (1 - 2e-3) w_k, 20,000 steps.
    let factor = (1.0 - 2e-3_f64).powi(20_000);
    assert!(w.all_close(&w0.scale(factor), 1e-9));
}

#[test]
fn second_order_by_nesting_tapes() {
    // f(x) = sum(x^2 * sin(x)); H is diagonal with 2 sin x + 4 x cos x - x^2 sin x.
    let x0 = [0.3, -1.1, 2.0];
    let inner = TensorTape::new();
    let x = inner.var(t(&x0, &[3]));
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(x.clone());
    let s = xo.apply_op(&Sin).unwrap();
    let y = xo.square().mul(&s).sum_all();
    let grad = outer.gradient(&y, &[&xo]).unwrap().remove(0);
    let v = t(&[1.0, 1.0, 1.0], &[3]);
    let hv = inner
        .gradient(&grad.mul(&inner.constant(v)).sum_all(), &[&x])
        .unwrap()
        .remove(0);
    for (h, xi) in hv.to_vec().iter().zip(x0) {
        let exact = 2.0 * xi.sin() + 4.0 * xi * xi.cos() - xi * xi * xi.sin();
        assert!((h - exact).abs() < 1e-13, "{h} vs {exact}");
    }
}

/// sin as a user-defined operation (value, JVP and VJP), to test nesting without depending on the
/// library's own sin.
#[derive(Clone, Debug)]
struct Sin;
impl perturb::tensor::Op for Sin {
    fn name(&self) -> &'static str {
        "test_sin"
    }
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].map(|v| v.sin()))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| t.try_mul(&x[0].apply_op(&Cos)?)).transpose()
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_mul(&x[0].apply_op(&Cos)?)?)])
    }
}
#[derive(Clone, Debug)]
struct Cos;
impl perturb::tensor::Op for Cos {
    fn name(&self) -> &'static str {
        "test_cos"
    }
    fn eval<T: perturb::tensor::Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].map(|v| v.cos()))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| Ok(t.try_mul(&x[0].apply_op(&Sin)?)?.neg()))
            .transpose()
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_mul(&x[0].apply_op(&Sin)?)?.neg())])
    }
}

#[test]
fn an_operation_given_the_wrong_number_of_inputs_is_an_error_not_a_panic() {
    use perturb::tensor::{ops, Op};
    let x = Tensor::<f64>::ones(&[2]);
    let none: [&Tensor<f64>; 0] = [];
    let two = [&x, &x];
    fn arity<O: Op>(op: O, inputs: &[&Tensor<f64>]) -> bool {
        matches!(op.eval(inputs), Err(Error::Arity { .. }))
    }
    assert!(arity(ops::Scale(2.0), &none));
    assert!(arity(ops::AddScalar(2.0), &two));
    assert!(arity(ops::Reshape(vec![2]), &none));
    assert!(arity(ops::Permute(vec![0]), &none));
    assert!(arity(ops::BroadcastTo(vec![2]), &two));
    assert!(arity(ops::SumTo(vec![]), &none));
    assert!(arity(ops::Exp, &two));
    assert!(arity(ops::PowScalar(2.0), &none));
    assert!(arity(ops::MatMul::default(), &[&x]));
    assert!(arity(ops::MulAdd(1.0), &two));
    assert!(arity(ops::ScaledMul(1.0), &[&x, &x, &x]));
    // Three shapes that do not broadcast together name the operation.
    let err = ops::MulAdd(1.0)
        .eval(&[&x, &Tensor::ones(&[3]), &x])
        .unwrap_err()
        .to_string();
    assert!(err.contains("mul_add") && err.contains("[3]"), "{err}");
}
