//! Functions that can only be computed on `f64` (newcomer report, item 2): written as a
//! `UnaryOp` through `T::from(j0(x.to_f64_value()))` they silently lose the inner derivatives
//! (the Hessian of J0(x)^2 at 1.3 came out -0.27101, the true value is +0.27400). `F64Fn` gives
//! them a sanctioned form, right at every nesting up to the order given and a clear panic (or
//! error) beyond it; `check_scalar_fn` catches the wrong form and passes the right ones.

use perturb::{
    check_scalar_fn, hessian, Dual, F64Fn, Scalar, ScalarCheckOptions, Tape, UnaryOp,
    VectorFunction,
};

/// The Bessel function `J_n(x)` by its power series, in any float type (|x| < 5 here).
fn bessel<T: Scalar>(n: i32, x: T) -> T {
    let half = x / T::from(2.0).unwrap();
    let mut term = half.powi(n) / T::from((1..=n).product::<i32>()).unwrap();
    let mut sum = term;
    for k in 1..40 {
        term = -term * half * half / T::from(k * (k + n)).unwrap();
        sum += term;
    }
    sum
}

fn j0(x: f64) -> f64 {
    bessel(0, x)
}
fn j1(x: f64) -> f64 {
    bessel(1, x)
}

/// J0 and its derivatives J0' = -J1, J0'' = J1 / x - J0.
const J0: F64Fn<3> = F64Fn::new("j0", [j0, |x| -j1(x), |x| j1(x) / x - j0(x)]);

/// The pattern the report found: a rule computed through `f64`.
struct J0Opaque;
struct J1Opaque;
impl UnaryOp for J0Opaque {
    fn func<T: Scalar>(&self, x: T) -> T {
        T::from(j0(x.to_f64_value())).unwrap()
    }
    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        -J1Opaque.apply(x)
    }
}
impl UnaryOp for J1Opaque {
    fn func<T: Scalar>(&self, x: T) -> T {
        T::from(j1(x.to_f64_value())).unwrap()
    }
    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        J0Opaque.apply(x) - J1Opaque.apply(x) / x
    }
}

/// A correct rule: value and derivative in differentiable operations of `T`.
struct J0Series;
impl UnaryOp for J0Series {
    fn func<T: Scalar>(&self, x: T) -> T {
        bessel(0, x)
    }
    fn grads<T: Scalar>(&self, x: T, _value: T) -> T {
        -bessel(1, x)
    }
}

/// d^2/dx^2 J0(x)^2 = 2 (J0'^2 + J0 J0'') = 2 (J1^2 + J0 (J1 / x - J0)).
fn exact_second_derivative_of_j0_squared(x: f64) -> f64 {
    2.0 * (j1(x) * j1(x) + j0(x) * (j1(x) / x - j0(x)))
}

#[test]
fn the_reported_hessian_is_wrong_through_f64_and_right_with_f64_fn() {
    let x = 1.3;
    let exact = exact_second_derivative_of_j0_squared(x);
    assert!((exact - 0.27400).abs() < 5e-6, "{exact}");

    let wrong = hessian(|v| J0Opaque.apply(v[0]) * J0Opaque.apply(v[0]), &[x])[0][0];
    assert!((wrong - -0.27101).abs() < 5e-6, "{wrong}");

    let h = hessian(|v| J0.apply(v[0]) * J0.apply(v[0]), &[x])[0][0];
    assert!((h - exact).abs() < 1e-12, "{h} vs {exact}");
    let h = hessian(|v| J0Series.apply(v[0]) * J0Series.apply(v[0]), &[x])[0][0];
    assert!((h - exact).abs() < 1e-12, "{h} vs {exact}");
}

#[test]
fn f64_fn_is_right_at_every_nesting_and_chains_inner_tangents() {
    let x = 0.9;
    let exact = exact_second_derivative_of_j0_squared(x);
    // Dual<Dual<f64>>.
    let y = {
        let d = Dual::variable(Dual::variable(x));
        let j = J0.apply(d);
        j * j
    };
    assert!((y.tangent().tangent() - exact).abs() < 1e-12);
    // Dual<Var<f64>>: the derivative of the tangent, by reverse mode.
    let tape = Tape::new();
    let xv = tape.var(x);
    let d = Dual::new(xv, perturb::Var::constant(1.0));
    let j = J0.apply(d);
    let y = j * j;
    let g = tape.gradient_wrt(y.tangent(), &[xv]).unwrap()[0];
    assert!((g - exact).abs() < 1e-12);
    // Var<Var<f64>>.
    let inner = Tape::new();
    let x1 = inner.var(x);
    let outer = Tape::new();
    let x2 = outer.var(x1);
    let j = J0.apply(x2);
    let g = outer.gradient_wrt(j * j, &[x2]).unwrap()[0];
    let h = inner.gradient_wrt(g, &[x1]).unwrap()[0];
    assert!((h - exact).abs() < 1e-12);
}

#[test]
fn f64_fn_reaches_the_third_order_when_given_three_derivatives() {
    const EXP: F64Fn<4> = F64Fn::new("exp", [f64::exp, f64::exp, f64::exp, f64::exp]);
    // d^3/dx^3 exp(2x) = 8 exp(2x)
    let x = Dual::variable(Dual::variable(Dual::variable(0.3_f64)));
    let y = EXP.apply(x + x);
    let third = y.tangent().tangent().tangent();
    assert!((third - 8.0 * 0.6_f64.exp()).abs() < 1e-12);
}

#[test]
#[should_panic(
    expected = "`j0` was given its value and 2 derivative function(s), so it supports derivatives up to order 2; this number type needs order 3"
)]
fn f64_fn_panics_past_its_order_naming_the_function() {
    let x = Dual::variable(Dual::variable(Dual::variable(0.3_f64)));
    let _ = J0.apply(x);
}

#[test]
fn try_apply_returns_the_error_instead() {
    let x = Dual::variable(Dual::variable(Dual::variable(0.3_f64)));
    let e = J0.try_apply(x).unwrap_err();
    assert!(e.to_string().starts_with("F64Fn::apply: `j0`"), "{e}");
    assert_eq!(J0.try_apply(0.5_f64).unwrap(), j0(0.5));
}

struct WithJ0<O>(O);
impl<O: UnaryOp> VectorFunction for WithJ0<O> {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let j = self.0.apply(x[0] * x[1]);
        vec![j * j, j + x[1].sin()]
    }
}

struct WithJ0Fn;
impl VectorFunction for WithJ0Fn {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let j = J0.apply(x[0] * x[1]);
        vec![j * j, j + x[1].sin()]
    }
}

#[test]
fn check_scalar_fn_catches_the_f64_pattern_at_order_two_and_passes_the_right_forms() {
    let options = ScalarCheckOptions::default();
    let x = [1.1, 1.2];
    let failure = check_scalar_fn(&WithJ0(J0Opaque), &x, &options).unwrap_err();
    assert_eq!(failure.order, 2, "{failure}");
    assert_eq!(failure.number_type, "Dual<Dual<f64>>");
    let message = failure.to_string();
    assert!(
        message.starts_with(
            "check_scalar_fn: order 2 (v^T H u) on Dual<Dual<f64>> of output 0: expected "
        ),
        "{message}"
    );

    let report = check_scalar_fn(&WithJ0Fn, &x, &options).unwrap();
    assert!(
        report.comparisons >= 100 && report.worst_ratio <= 1.0,
        "{report:?}"
    );
    let report = check_scalar_fn(&WithJ0(J0Series), &x, &options).unwrap();
    assert!(report.worst_ratio <= 1.0, "{report:?}");
}

/// Each rule of `perturb::rules` used through `Float`, checked on every type.
struct Elementary;
impl VectorFunction for Elementary {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let (a, b) = (x[0], x[1]);
        vec![
            a.sin() * b.exp() + a.tanh(),
            a.hypot(b) + a.atan2(b) + (a * a + S::one()).ln(),
            a.powf(b) / (b.cosh() + a.sqrt()),
            a.sigmoid() * b.softplus() - a.log_sigmoid() + a.cbrt() * b.asinh(),
        ]
    }
}

#[test]
fn check_scalar_fn_passes_the_built_in_rules() {
    let report =
        check_scalar_fn(&Elementary, &[0.7, -0.4], &ScalarCheckOptions::default()).unwrap();
    assert!(report.worst_ratio <= 1.0);
}

#[test]
fn f64_fn_lifts_to_tensors_with_its_second_derivative() {
    use perturb::tensor::{hessian as tensor_hessian, ops::Pointwise, Array, Tensor};
    let x = Tensor::vector(&[1.3_f64, 0.9]);
    let h = tensor_hessian(
        |x| {
            let j = x.apply_op(&Pointwise(J0))?;
            Ok(j.try_mul(&j)?.sum_all())
        },
        &x,
    )
    .unwrap();
    let h = h.to_vec();
    for (k, &xk) in [1.3, 0.9].iter().enumerate() {
        let exact = exact_second_derivative_of_j0_squared(xk);
        assert!((h[3 * k] - exact).abs() < 1e-12, "{h:?}");
    }
    assert_eq!((h[1], h[2]), (0.0, 0.0));
}
