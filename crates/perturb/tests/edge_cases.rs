//! Silent wrong answers of the scalar engine at the edges of its rules, each against an exact
//! value.

use perturb::{hessian, Float};

#[test]
fn powf_keeps_its_mixed_second_derivative_at_a_zero_exponent() {
    // f(a, b) = a^b at (2, 0): f_ab = a^(b-1) (1 + b ln a) = 1/2, f_aa = b (b-1) a^(b-2) = 0,
    // f_bb = a^b ln(a)^2 = ln(2)^2. The partial in a was a constant 0 wherever b == 0, so its
    // derivative in b (the mixed term) came out 0.
    let h = hessian(|v| v[0].powf(v[1]), &[2.0_f64, 0.0]);
    let ln2 = 2.0_f64.ln();
    assert_eq!(h[0], vec![0.0, 0.5]);
    assert_eq!(h[1][0], 0.5);
    assert!((h[1][1] - ln2 * ln2).abs() < 1e-15);
}

#[test]
fn gradient_wrt_an_intermediate_value_is_its_adjoint_not_zero() {
    // The sweep of gradient_wrt zeroes the slots of operations as it goes (to keep its buffer
    // clean); asked about an intermediate, it read that zero.
    let tape = perturb::Tape::new();
    let x = tape.var(1.5_f64);
    let t = x * x;
    let y = t * 3.0 + x;
    assert_eq!(tape.gradient(y).unwrap()[t], 3.0);
    assert_eq!(tape.gradient_wrt(y, &[t, x]).unwrap(), vec![3.0, 10.0]);
    // And the buffer is clean for the next call.
    assert_eq!(tape.gradient_wrt(t, &[x, t]).unwrap(), vec![3.0, 1.0]);
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 4.0 * f64::EPSILON * want.abs()
}

#[test]
fn atan2_partials_neither_underflow_nor_overflow() {
    // d atan2(a, b) = (b, -a) / (a^2 + b^2). At (1e-200, 1e-200) a^2 + b^2 underflowed to 0 and
    // the rule returned its origin convention (0, 0) instead of (5e199, -5e199); at
    // (1e200, 1e200) it overflowed and gave (0, -0) instead of (5e-201, -5e-201).
    for (s, want) in [(1e-200, 5e199), (1e200, 5e-201), (3.0, 1.0 / 6.0)] {
        let (_, g) = perturb::gradient(|v| v[0].atan2(v[1]), &[s, s]);
        assert!(close(g[0], want) && close(g[1], -want), "{s}: {g:?}");
    }
    // The origin keeps its convention.
    assert_eq!(
        perturb::gradient(|v| v[0].atan2(v[1]), &[0.0, 0.0]).1,
        vec![0.0, 0.0]
    );
}

#[test]
fn inverse_hyperbolic_and_circular_slopes_hold_at_extreme_arguments() {
    // asinh' = 1 / sqrt(x^2 + 1), acosh' = 1 / sqrt(x^2 - 1): x^2 overflowed at 1e200 (slope
    // 0 instead of 1e-200).
    let (_, d) = perturb::derivative(|x| x.asinh(), 1e200_f64);
    assert!(close(d, 1e-200), "{d}");
    let (_, d) = perturb::derivative(|x| x.acosh(), 1e200_f64);
    assert!(close(d, 1e-200), "{d}");
    // asin' = 1 / sqrt(1 - x^2) near 1: 1 - x^2 cancels; (1 - x)(1 + x) does not.
    let x = 1.0 - 2.0_f64.powi(-30);
    let exact = 1.0 / ((1.0 - x) * (1.0 + x)).sqrt();
    let (_, d) = perturb::derivative(|x| x.asin(), x);
    assert!(close(d, exact), "{d} vs {exact}");
    let (_, d) = perturb::derivative(|x| x.acos(), x);
    assert!(close(d, -exact), "{d} vs {exact}");
    let exact_atanh = 1.0 / ((1.0 - x) * (1.0 + x));
    let (_, d) = perturb::derivative(|x| x.atanh(), x);
    assert!(close(d, exact_atanh), "{d} vs {exact_atanh}");
    let x = 1.0 + 2.0_f64.powi(-30);
    let exact = 1.0 / ((x - 1.0) * (x + 1.0)).sqrt();
    let (_, d) = perturb::derivative(|x| x.acosh(), x);
    assert!(close(d, exact), "{d} vs {exact}");
}

/// tanh's derivative written as `1 / cosh(x)^2` has a NaN derivative of its own past |x| = 710
/// (`cosh` overflows and `0 * inf` appears in the chain rule): the second derivative of tanh at
/// 800 came out NaN. Exact values: tanh'' = -2 tanh sech^2 (about -8e-695 at 800, so 0 in
/// f64), tanh''' at 0 is -2, and at 20 tanh'' is -8 e^-40 (1 + O(e^-40)), from the closed form.
#[test]
fn tanh_has_finite_higher_derivatives_far_out_and_exact_ones_near_zero() {
    use perturb::{Dual, Float};
    let second = |x: f64| {
        let d = Dual::new(Dual::new(x, 1.0), Dual::new(1.0, 0.0));
        d.tanh().tangent().tangent()
    };
    assert_eq!(second(800.0), 0.0);
    assert_eq!(second(-800.0), 0.0);
    assert_eq!(perturb::hessian(|v| v[0].tanh(), &[800.0])[0][0], 0.0);
    let expected = -8.0 * (-40.0_f64).exp();
    assert!((second(20.0) - expected).abs() <= 1e-14 * expected.abs());
    // Third derivative at 0 by three nested duals: -2.
    let x = Dual::new(
        Dual::new(Dual::new(0.0_f64, 1.0), Dual::new(1.0, 0.0)),
        Dual::new(Dual::new(1.0, 0.0), Dual::new(0.0, 0.0)),
    );
    let third = x.tanh().tangent().tangent().tangent();
    assert!((third + 2.0).abs() < 1e-15, "{third}");
}

/// An exactly-zero partial and an infinite tangent on the same path: `0 * sqrt(x)` at 0 gave
/// NaN in forward mode (the constant's partial 0 times `sqrt`'s infinite tangent) and 0 in
/// reverse mode (the adjoint of `sqrt(x)` is exactly 0, so the sweep passes nothing on). Now a
/// zero partial passes nothing on in forward mode too, in every forward number type.
#[test]
fn a_zero_partial_meets_an_infinite_slope_alike_in_both_modes() {
    // The gradient at `at` by reverse mode, forward mode (`DualVec`) and one `Dual` per input.
    macro_rules! three_modes {
        (|$v:ident| $body:expr, $at:expr) => {{
            fn f<S: perturb::Scalar>($v: &[S]) -> S {
                $body
            }
            let at: [f64; 2] = $at;
            let dual: Vec<f64> = (0..2)
                .map(|i| {
                    let x = [0, 1].map(|j| perturb::Dual::new(at[j], f64::from(u8::from(i == j))));
                    f(&x).tangent()
                })
                .collect();
            [
                perturb::gradient(|v| f(v), &at).1,
                perturb::gradient_forward(|v| f(v), &at).1,
                dual,
            ]
        }};
    }
    for g in three_modes!(|v| v[0].sqrt() * S::zero() + v[1], [0.0, 0.0]) {
        assert_eq!(g, [0.0, 1.0]);
    }
    for g in three_modes!(|v| S::zero() * v[0].ln() + v[1] * v[0], [0.0, 3.0]) {
        assert_eq!(g, [3.0, 0.0]);
    }
    // Away from 0 nothing changes.
    for g in three_modes!(|v| v[0].sqrt() * S::zero() + v[1].sqrt(), [4.0, 4.0]) {
        assert_eq!(g, [0.0, 0.25]);
    }
    // The one disagreement left (documented in `perturb::rules`): sqrt(x^2 + y^2) at 0, 0 in
    // forward mode, NaN in reverse mode; hypot is 0 in both.
    let [r, f, d] = three_modes!(|v| (v[0] * v[0] + v[1] * v[1]).sqrt(), [0.0, 0.0]);
    assert!(r.iter().all(|g| g.is_nan()), "{r:?}");
    assert_eq!((f, d), (vec![0.0, 0.0], vec![0.0, 0.0]));
    for g in three_modes!(|v| v[0].hypot(v[1]), [0.0, 0.0]) {
        assert_eq!(g, [0.0, 0.0]);
    }
}
