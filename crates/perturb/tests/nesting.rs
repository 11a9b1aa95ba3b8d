//! Nested modes: levels are distinct types, so perturbations of two levels cannot be confused
//! (the classic nested forward-mode bug, JuliaDiff/ForwardDiff.jl#83).

use perturb::{derivative, gradient, Dual, Float, Scalar, Tape, Var};

/// d/dx [ x * d/dy (x + y) ] at any x. The inner derivative is 1, so the answer is 1.
/// An implementation that confuses the two perturbations computes d/dy (x + y) = 2 (both x
/// and y carry the same tangent) and answers 2.
#[test]
fn perturbation_confusion_forward_over_forward() {
    for x0 in [0.5_f64, 1.0, 3.0] {
        let (_, d) = derivative(
            |x: Dual<f64>| {
                let (_, inner) = derivative(|y: Dual<Dual<f64>>| Dual::constant(x) + y, x);
                x * inner
            },
            x0,
        );
        assert_eq!(d, 1.0);
    }
}

/// The same question with the outer level in reverse mode and the inner one in forward mode.
#[test]
fn perturbation_confusion_reverse_over_forward() {
    let (_, g) = gradient(
        |x| {
            let x = x[0];
            let (_, inner) = derivative(|y: Dual<Var<f64>>| Dual::constant(x) + y, x);
            x * inner
        },
        &[2.0_f64],
    );
    assert_eq!(g, vec![1.0]);
}

/// And with both levels in reverse mode, on two tapes of different types.
#[test]
fn perturbation_confusion_reverse_over_reverse() {
    let outer = Tape::new();
    let x = outer.var(2.0_f64);
    let inner_tape: Tape<Var<f64>> = Tape::new();
    let y = inner_tape.var(x);
    let sum = Var::constant(x) + y;
    let inner = inner_tape.gradient_wrt(sum, &[y]).unwrap()[0];
    let out = x * inner;
    assert_eq!(outer.gradient_wrt(out, &[x]).unwrap(), vec![1.0]);
}

/// A subtler variant: d/dx [ x * d/dy (x * y) ] = d/dx [x * x] = 2x (the inner derivative is x).
#[test]
fn perturbation_confusion_with_a_product() {
    let x0 = 1.5_f64;
    let (_, d) = derivative(
        |x: Dual<f64>| {
            let (_, inner) = derivative(
                |y: Dual<Dual<f64>>| Dual::constant(x) * y,
                Dual::constant(x0 * 0.0 + 7.0),
            );
            x * inner
        },
        x0,
    );
    assert_eq!(d, 2.0 * x0);
}

/// Second derivatives of the same generic function by four nestings agree with the exact value.
#[test]
fn second_derivative_four_ways() {
    fn f<T: Scalar>(x: T) -> T {
        (x * x).sin() * x.exp()
    }
    // f'' of sin(x^2) e^x, by hand:
    // f' = e^x (2x cos(x^2) + sin(x^2))
    // f'' = e^x (2x cos(x^2) + sin(x^2)) + e^x (2 cos(x^2) - 4x^2 sin(x^2) + 2x cos(x^2))
    let x0 = 0.8_f64;
    let (s, c, e) = ((x0 * x0).sin(), (x0 * x0).cos(), x0.exp());
    let exact = e * (2.0 * x0 * c + s) + e * (2.0 * c - 4.0 * x0 * x0 * s + 2.0 * x0 * c);

    // Forward over forward.
    let ff = f(Dual::new(Dual::variable(x0), Dual::constant(1.0)))
        .tangent()
        .tangent();
    // Forward over reverse (hessian).
    let fr = perturb::hessian(|x| f(x[0]), &[x0])[0][0];
    // Reverse over forward: record the forward-mode derivative on a tape.
    let tape = Tape::new();
    let x = tape.var(x0);
    let rf = tape
        .gradient_wrt(f(Dual::variable(x)).tangent(), &[x])
        .unwrap()[0];
    // Reverse over reverse.
    let outer = Tape::new();
    let xo = outer.var(x0);
    let inner: Tape<Var<f64>> = Tape::new();
    let xi = inner.var(xo);
    let first = inner.gradient_wrt(f(xi), &[xi]).unwrap()[0];
    let rr = outer.gradient_wrt(first, &[xo]).unwrap()[0];

    for (name, got) in [("ff", ff), ("fr", fr), ("rf", rf), ("rr", rr)] {
        assert!(
            (got - exact).abs() < 1e-12 * exact.abs(),
            "{name}: {got} vs {exact}"
        );
    }
}

/// Third order by triple nesting: d^3/dx^3 x^5 = 60 x^2.
#[test]
fn third_derivative_by_triple_nesting() {
    let x0 = 1.3_f64;
    let x = Dual::new(
        Dual::new(Dual::variable(x0), Dual::constant(1.0)),
        Dual::constant(Dual::constant(1.0)),
    );
    let y = x.powi(5);
    let d3 = y.tangent().tangent().tangent();
    assert!((d3 - 60.0 * x0 * x0).abs() < 1e-12);
}

/// A Hessian-vector product agrees with the full Hessian times v.
#[test]
fn hvp_equals_hessian_times_v() {
    fn f<T: Scalar>(x: &[T]) -> T {
        (x[0] * x[1]).sin() + x[2] * x[0].exp() + x[1].powi(3)
    }
    let x = [0.3_f64, -0.7, 1.1];
    let v = [1.0, 2.0, -0.5];
    let h = perturb::hessian(|x| f(x), &x);
    let hv = perturb::hvp(|x| f(x), &x, &v).unwrap();
    for i in 0..3 {
        let expect: f64 = (0..3).map(|j| h[i][j] * v[j]).sum();
        assert!((hv[i] - expect).abs() < 1e-13);
        for (j, row) in h.iter().enumerate() {
            assert!((h[i][j] - row[i]).abs() < 1e-13, "symmetric");
        }
    }
    // Exact entries: d2f/dx0dx1 = cos(x0 x1) - x0 x1 sin(x0 x1); d2f/dx1^2 = -x0^2 sin(x0x1) + 6 x1
    let p = x[0] * x[1];
    assert!((h[0][1] - (p.cos() - p * p.sin())).abs() < 1e-14);
    assert!((h[1][1] - (-x[0] * x[0] * p.sin() + 6.0 * x[1])).abs() < 1e-14);
    assert!((h[0][2] - x[0].exp()).abs() < 1e-14);
    assert!(perturb::hvp(|x| f(x), &x, &v[..2]).is_err());
}
