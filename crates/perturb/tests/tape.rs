//! The tape's guarantees: flat and loop-swept (no stack overflow at 10^7 nodes), reusable
//! without reallocating, independent per thread, and clear errors for foreign or stale handles.

use num_traits::Float;
use perturb::{Error, Scalar, Tape, Var};

#[test]
fn ten_million_nodes_neither_overflow_the_stack_nor_grow_after_clear() {
    let n = 10_000_000;
    let mut tape = Tape::with_capacity(n + 1);
    let capacity = tape.capacity();
    for round in 0..2 {
        {
            let x = tape.var(1.0_f64);
            // Each step multiplies by the constant c, so dy/dx = c^n.
            let c = 1.0 + 1e-9;
            let mut y = x;
            for _ in 0..n {
                y *= c;
            }
            let g = tape.gradient_wrt(y, &[x]).unwrap()[0];
            // Exact: dy/dx = c^n; the same product in f64 gives the same rounding as powi up to
            // a few ulps per step, so compare with a relative tolerance.
            let exact = c.powi(n as i32);
            assert!(
                (g - exact).abs() / exact < 1e-6,
                "round {round}: {g} vs {exact}"
            );
            assert_eq!(tape.len(), n + 1);
        }
        tape.clear();
        assert_eq!(tape.capacity(), capacity, "clear must keep the buffer");
    }
}

#[test]
fn tape_records_24_bytes_per_operation_in_f64() {
    assert_eq!(Tape::<f64>::bytes_per_node(), 24);
    assert_eq!(Tape::<f32>::bytes_per_node(), 16);
}

#[test]
fn constants_are_not_recorded() {
    let tape = Tape::new();
    let x = tape.var(2.0_f64);
    let c = Var::constant(3.0) * Var::constant(4.0)
        + <Var<f64> as num_traits::NumCast>::from(1).unwrap();
    assert_eq!(tape.len(), 1);
    let y = x * c; // one node: x times a constant
    assert_eq!(tape.len(), 2);
    assert_eq!(tape.gradient(y).unwrap()[x], 13.0);
}

#[test]
fn two_tapes_on_two_threads_are_independent() {
    let handles: Vec<_> = (1..=2)
        .map(|k| {
            std::thread::spawn(move || {
                let mut tape = Tape::new();
                let mut results = Vec::new();
                for step in 0..1000 {
                    let x0 = f64::from(k) + f64::from(step) * 1e-3;
                    let g = {
                        let x = tape.var(x0);
                        let y = (x * x).sin();
                        tape.gradient_wrt(y, &[x]).unwrap()[0]
                    };
                    tape.clear();
                    // d/dx sin(x^2) = 2x cos(x^2)
                    results.push((g, 2.0 * x0 * (x0 * x0).cos()));
                }
                results
            })
        })
        .collect();
    for h in handles {
        for (got, want) in h.join().unwrap() {
            assert!((got - want).abs() < 1e-12);
        }
    }
}

#[test]
fn a_variable_of_another_tape_is_an_error_not_a_number() {
    let a = Tape::new();
    let b = Tape::new();
    let xa = a.var(1.0_f64);
    let xb = b.var(2.0_f64);
    let ya = xa * xa;
    // Asking tape b about a's output.
    let err = b.gradient(ya).unwrap_err();
    assert_eq!(
        err,
        Error::ForeignVariable {
            op: "Tape::gradient",
            expected: b.id(),
            found: a.id()
        }
    );
    // Asking a's gradient about b's variable.
    let g = a.gradient(ya).unwrap();
    assert!(matches!(g.get(xb), Err(Error::ForeignVariable { .. })));
    assert!(matches!(
        a.gradient_wrt(ya, &[xb]),
        Err(Error::ForeignVariable { .. })
    ));
    // A constant has no gradient to look up.
    assert_eq!(
        g.get(Var::constant(1.0)),
        Err(Error::NotAVariable {
            op: "Gradient::get"
        })
    );
    // The error message names the operation and both tapes.
    let msg = err.to_string();
    assert!(
        msg.contains("Tape::gradient") && msg.contains(&format!("#{}", a.id())),
        "{msg}"
    );
}

#[test]
fn mixing_variables_of_two_tapes_panics_with_a_clear_message() {
    let a = Tape::new();
    let b = Tape::new();
    let (xa, xb) = (a.var(1.0_f64), b.var(2.0_f64));
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| xa + xb)).unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("different tapes cannot be mixed"), "{msg}");
    assert_eq!((a.len(), b.len()), (1, 1), "nothing was recorded");
}

#[test]
fn a_gradient_from_before_a_clear_rejects_variables_from_after() {
    let mut tape = Tape::new();
    let old = {
        let x = tape.var(3.0_f64);
        tape.gradient(x * x).unwrap()
    };
    tape.clear();
    let x = tape.var(5.0_f64);
    // Same tape, same node index as the old x: without the generation check this would
    // silently return the old derivative 6.
    assert!(matches!(old.get(x), Err(Error::StaleGradient { .. })));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| old[x])).unwrap_err();
    assert!(panic
        .downcast_ref::<String>()
        .unwrap()
        .contains("before it was cleared"));
}

#[test]
fn variables_recorded_after_the_output_get_zero() {
    let tape = Tape::new();
    let x = tape.var(1.0_f64);
    let y = x.exp();
    let later = tape.var(4.0);
    let g = tape.gradient(y).unwrap();
    assert_eq!(g[later], 0.0);
    assert_eq!(g[x], 1.0_f64.exp());
}

#[test]
fn a_constant_output_has_zero_gradient() {
    let tape = Tape::new();
    let x = tape.var(1.0_f64);
    let g = tape.gradient(Var::constant(7.0)).unwrap();
    assert_eq!(g[x], 0.0);
    assert_eq!(
        tape.gradient_wrt(Var::constant(7.0), &[x]).unwrap(),
        vec![0.0]
    );
}

#[test]
fn the_gradient_can_be_taken_twice_and_from_an_intermediate() {
    // One recording, several sweeps: from y and from an intermediate a.
    let tape = Tape::new();
    let x = tape.var(0.7_f64);
    let a = x * x;
    let y = a.ln() * a;
    let g1 = tape.gradient_wrt(y, &[x]).unwrap();
    let g2 = tape.gradient_wrt(y, &[x]).unwrap();
    assert_eq!(g1, g2);
    // y = x^2 ln(x^2): dy/dx = 2x ln(x^2) + 2x
    assert!((g1[0] - (1.4 * 0.49_f64.ln() + 1.4)).abs() < 1e-14);
    assert_eq!(tape.gradient_wrt(a, &[x]).unwrap(), vec![1.4]);
}

#[test]
fn generic_code_runs_on_tape_variables_unchanged() {
    fn softmax_entropy<T: Scalar>(x: &[T]) -> T {
        let m = x.iter().copied().fold(T::neg_infinity(), T::max);
        let z: T = x.iter().map(|&xi| (xi - m).exp()).sum();
        x.iter()
            .map(|&xi| (xi - m).exp() / z)
            .map(|p| -p * p.ln())
            .sum()
    }
    let x = [0.1_f64, -0.4, 0.9];
    let (value, grad) = perturb::gradient(|x| softmax_entropy(x), &x);
    assert_eq!(value, softmax_entropy(&x));
    // Entropy is invariant to a shift of all logits: the gradient sums to zero.
    assert!(grad.iter().sum::<f64>().abs() < 1e-15);
    // And it matches forward mode.
    let (_, fwd) = perturb::gradient_forward(|x| softmax_entropy(x), &x);
    for (r, f) in grad.iter().zip(&fwd) {
        assert!((r - f).abs() < 1e-15);
    }
}

#[test]
fn sums_match_f64_and_record_no_extra_node() {
    let tape = Tape::new();
    let xs = tape.vars(&[1.0_f64, 2.0, 3.0]);
    let s: Var<f64> = xs.iter().copied().sum();
    assert_eq!(tape.len(), 3 + 2, "two additions for three terms");
    assert_eq!(tape.gradient_wrt(s, &xs).unwrap(), vec![1.0; 3]);
    let p: Var<f64> = xs.iter().copied().product();
    assert_eq!(tape.gradient_wrt(p, &xs).unwrap(), vec![6.0, 3.0, 2.0]);
    // f64 sums start from -0.0: the sum of [-0.0] and the empty sum are -0.0, and so are ours.
    let plain: f64 = [-0.0_f64].iter().sum();
    let ours: Var<f64> = [tape.var(-0.0_f64)].into_iter().sum();
    let empty: perturb::Dual<f64> = std::iter::empty().sum();
    assert!(plain.is_sign_negative() && ours.value().is_sign_negative());
    assert!(empty.value().is_sign_negative());
}

/// Extended Rosenbrock, and its gradient written out by hand (per element).
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let (one, hundred) = (T::one(), T::from(100.0).unwrap());
    x.windows(2)
        .map(|w| hundred * (w[1] - w[0] * w[0]).powi(2) + (one - w[0]).powi(2))
        .fold(T::zero(), |a, b| a + b)
}

fn rosenbrock_gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| {
            let mut g = 0.0;
            if i + 1 < n {
                g += -400.0 * x[i] * (x[i + 1] - x[i] * x[i]) - 2.0 * (1.0 - x[i]);
            }
            if i > 0 {
                g += 200.0 * (x[i] - x[i - 1] * x[i - 1]);
            }
            g
        })
        .collect()
}

fn assert_close(found: &[f64], expected: &[f64], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= 1e-12 * (1.0 + e.abs()),
            "{what}[{i}]: {f} vs {e}"
        );
    }
}

#[test]
fn functional_calls_reuse_their_buffers_across_sizes_and_number_types() {
    // Each call takes the buffers the one before left: large then small, f64 then dual
    // numbers (Hessian) then f32, so the reused adjoint slots hold values of other sizes and
    // types from before. Every result must still be exact.
    for round in 0..2 {
        for n in [1000, 7, 3000, 2] {
            let x: Vec<f64> = (0..n).map(|i| 0.3 + 0.01 * (i % 17) as f64).collect();
            let (value, grad) = perturb::gradient(|x| rosenbrock(x), &x);
            assert!((value - rosenbrock(&x)).abs() <= 1e-12 * value.abs());
            assert_close(&grad, &rosenbrock_gradient(&x), "gradient");

            // f = x^2 y + y^3: H = [[2y, 2x], [2x, 6y]]
            let h = perturb::hessian(|v| v[0] * v[0] * v[1] + v[1] * v[1] * v[1], &[1.5, -2.0]);
            assert_eq!(h, vec![vec![-4.0, 3.0], vec![3.0, -12.0]], "round {round}");

            let (_, g32) = perturb::gradient(|v| v[0] * v[1] - v[1].sin(), &[2.0_f32, 0.0]);
            assert_eq!(g32, vec![0.0, 1.0]);
        }
    }
}

#[test]
fn gradient_wrt_of_an_intermediate_then_of_the_inputs_on_one_tape() {
    // A sweep that keeps every adjoint (an intermediate asked for) and one that consumes them
    // (only inputs) must leave the reused slots ready for each other, in either order.
    let tape = Tape::new();
    let x = tape.vars(&[0.7_f64, -1.3]);
    let u = x[0] * x[1]; // named by index below, so its slot is read
    let v = u.sin() + x[0];
    let y = v * u;
    let exact_u = v.value() + u.value() * u.value().cos(); // dy/du with x fixed
    let exact_x = [exact_u * x[1].value() + u.value(), exact_u * x[0].value()];
    for _ in 0..3 {
        let g = tape.gradient_wrt(y, &[x[0], x[1]]).unwrap();
        assert_close(&g, &exact_x, "dy/dx");
        let g = tape.gradient_wrt(y, &[u, x[1]]).unwrap();
        assert_close(&g, &[exact_u, exact_x[1]], "dy/du, dy/dx1");
        // The same from the full gradient.
        let full = tape.gradient(y).unwrap();
        assert_close(
            &[full[u], full[x[0]], full[x[1]]],
            &[exact_u, exact_x[0], exact_x[1]],
            "full",
        );
    }
}

#[test]
fn the_chain_by_the_tape_matches_forward_mode() {
    // The benchmark's chain, 2,000 steps: the tape's dy/dx0 against a dual number's.
    fn chain<T: Float>(x0: T, steps: usize) -> T {
        let (c1, c2, one) = (T::from(1.0001).unwrap(), T::from(0.1).unwrap(), T::one());
        let mut x = x0;
        for _ in 0..steps {
            x = x.sin() * c1 + c2 * x * x - (one + x * x).ln();
        }
        x
    }
    let forward = chain(perturb::Dual::variable(0.5_f64), 2000).tangent();
    let (_, reverse) = perturb::gradient(|x| chain(x[0], 2000), &[0.5_f64]);
    assert!(forward != 0.0 && (reverse[0] - forward).abs() <= 1e-9 * forward.abs());
}

/// Recording past the buffer's end, again and again (a tape made with room for 3 nodes, then
/// cleared and reused, plain and traced): every node lands where the sweep reads it, and a
/// traced tape logs each one. y = prod (x + i/700), dy/dx = y * sum 1 / (x + i/700).
#[test]
fn a_tape_grown_while_recording_gives_exact_gradients_and_traces() {
    let x0 = 0.3_f64;
    let factors: Vec<f64> = (0..300).map(|i| x0 + i as f64 / 700.0).collect();
    let value: f64 = factors.iter().product();
    let exact = value * factors.iter().map(|f| f.recip()).sum::<f64>();
    for mut tape in [Tape::with_capacity(3), Tape::traced()] {
        for _ in 0..3 {
            let x = tape.var(x0);
            let mut y = x + 0.0;
            for i in 1..300 {
                y *= x + i as f64 / 700.0;
            }
            assert_eq!(tape.len(), 1 + 2 * 300 - 1);
            assert!((y.value() - value).abs() <= 1e-12 * value.abs());
            let g = tape.gradient_wrt(y, &[x]).unwrap()[0];
            assert!((g - exact).abs() <= 1e-11 * exact.abs(), "{g} vs {exact}");
            if let Ok(trace) = tape.trace() {
                assert_eq!(trace.nodes.len(), tape.len());
                assert_eq!(trace.nodes.last().unwrap().value, y.value());
                assert_eq!(trace.nodes[0].op, "input");
            }
            tape.clear();
        }
    }
}
