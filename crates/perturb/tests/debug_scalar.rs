//! The scalar engine under `debug::detect_non_finite`: the first number that is not finite is
//! reported with the operation that made it, the sweep (value, tangent or cotangent) and the
//! line of the caller's code, at every nesting of the number types; a computation whose
//! numbers are all finite (including an unused singular value, S1) is not reported.

use perturb::debug::{self, Sweep};
use perturb::{hessian, Dual, DualN, Float, Scalar, TangentArena, Tape};

#[test]
fn a_nan_value_is_reported_in_the_forward_pass_at_the_callers_line() {
    let mut line = 0;
    let found = debug::detect_non_finite(|| {
        let x = Dual::variable(-1.0_f64);
        let y = x.sqrt(); // sqrt(-1) is NaN
        line = line!() - 1;
        y * 2.0
    });
    let found = found.unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("sqrt", Sweep::Forward, "value")
    );
    assert!(found.found.0.is_nan());
    let location = found.location.unwrap();
    assert!(location.file().ends_with("debug_scalar.rs"), "{location}");
    assert_eq!(location.line(), line);
    assert_eq!(found.inputs.len(), 1);
    assert_eq!(found.inputs[0].to_string(), "[] = -1");
    assert!(found.to_string().starts_with("sqrt at "), "{found}");
}

#[test]
fn an_infinite_tangent_is_reported_in_forward_mode_for_every_dual_type() {
    // sqrt at 0: value 0, tangent 1 / (2 sqrt(0)) = inf.
    let line = line!() + 2;
    let found = debug::detect_non_finite(|| {
        let y = Dual::variable(0.0_f64).sqrt();
        y.tangent()
    })
    .unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("sqrt", Sweep::Tangent, "tangent")
    );
    assert_eq!(found.found.0, f64::INFINITY);
    assert_eq!(found.location.unwrap().line(), line);

    let line = line!() + 3;
    let found = debug::detect_non_finite(|| {
        let [a, b] = DualN::<f64, 2>::variables([0.0, 1.0]);
        (b * a.cbrt()).value()
    })
    .unwrap_err();
    assert_eq!((found.op, found.sweep), ("cbrt", Sweep::Tangent));
    assert_eq!(found.location.unwrap().line(), line);

    let arena = TangentArena::new(2);
    let line = line!() + 3;
    let found = debug::detect_non_finite(|| {
        let x = arena.variables(&[0.0_f64, 1.0]).unwrap();
        (x[0].ln() + x[1]).value()
    })
    .unwrap_err();
    // ln(0) = -inf: the value comes first.
    assert_eq!((found.op, found.sweep), ("ln", Sweep::Forward));
    assert_eq!(found.location.unwrap().line(), line);
}

#[test]
fn a_second_order_tangent_names_the_outer_operation_and_the_users_line() {
    // x^1.5 at 0: value 0, first derivative 1.5 x^0.5 = 0, second 0.75 x^-0.5 = inf. The inner
    // Dual<f64> arithmetic of the rule runs inside the outer powf, which reports.
    let line = line!() + 3;
    let found = debug::detect_non_finite(|| {
        let x = Dual::variable(Dual::variable(0.0_f64));
        x.powf(Dual::constant(Dual::constant(1.5))).value().value()
    })
    .unwrap_err();
    assert_eq!((found.op, found.sweep), ("powf", Sweep::Tangent));
    assert_eq!(found.location.unwrap().line(), line);
}

#[test]
fn an_infinite_cotangent_is_reported_in_the_reverse_sweep_naming_the_rule_that_sent_it() {
    let (found, line) = {
        let mut line = 0;
        let found = debug::detect_non_finite(|| {
            let tape = Tape::new();
            let x = tape.var(0.0_f64);
            let r = x.sqrt(); // value 0, local partial inf
            line = line!() - 1;
            let y = r * 2.0 + x;
            tape.gradient(y).map(|g| g[x])
        });
        (found, line)
    };
    let found = found.unwrap_err();
    assert_eq!(
        (found.op, found.sweep, found.quantity),
        ("sqrt", Sweep::Reverse, "cotangent")
    );
    assert_eq!(found.found.0, f64::INFINITY);
    assert_eq!(found.location.unwrap().line(), line);
    // The output's cotangent (2, from `* 2.0`), then the operation's input.
    let inputs: Vec<String> = found.inputs.iter().map(ToString::to_string).collect();
    assert_eq!(inputs, ["[] = 2", "[] = 0"]);

    // gradient_wrt sweeps the same way.
    let found = debug::detect_non_finite(|| {
        let tape = Tape::new();
        let x = tape.var(0.0_f64);
        let y = x.ln() * 3.0;
        tape.gradient_wrt(y, &[x])
    })
    .unwrap_err();
    assert_eq!((found.op, found.sweep), ("ln", Sweep::Forward)); // ln(0) = -inf first
}

#[test]
fn a_nested_cotangent_reports_the_outer_rule_not_its_inner_arithmetic() {
    // hessian runs Var<Dual<f64>>: x^1.5 at 0 has a finite gradient (0) but an infinite
    // second derivative, which only the sweep's dual cotangent carries.
    let line = line!() + 3;
    let found = debug::detect_non_finite(|| {
        hessian(
            |v| v[0].powf(perturb::Var::constant(Dual::constant(1.5))),
            &[0.0_f64],
        )
    })
    .unwrap_err();
    assert_eq!((found.op, found.sweep), ("powf", Sweep::Reverse));
    assert_eq!(found.location.unwrap().line(), line);
}

#[test]
fn finite_computations_and_unused_singular_values_are_not_reported() {
    let g = debug::detect_non_finite(|| {
        let tape = Tape::new();
        let x = tape.var(0.0_f64);
        let _unused = x.sqrt(); // infinite partial, never reached (S1)
        let y = x * 2.0 + 1.0;
        tape.gradient(y).unwrap()[x]
    });
    assert_eq!(g, Ok(2.0));
    let h =
        debug::detect_non_finite(|| hessian(|v| v[0] * v[0] * v[1] + v[1].sin(), &[1.0_f64, 2.0]));
    assert_eq!(h.unwrap()[0], vec![4.0, 2.0]);
}

#[test]
fn nodes_recorded_before_checking_began_are_reported_without_a_line() {
    let tape = Tape::new();
    let x = tape.var(0.0_f64);
    let y = x.sqrt() * 2.0; // recorded unchecked
    let found = debug::detect_non_finite(|| tape.gradient(y).map(|g| g[x])).unwrap_err();
    assert_eq!(found.sweep, Sweep::Reverse);
    assert_eq!(found.location, None);
    assert!(found.to_string().contains("unknown line"), "{found}");
}

#[test]
fn checking_is_off_outside_the_scope() {
    assert!(!debug::enabled());
    let x = Dual::variable(-1.0_f64).sqrt();
    assert!(x.value().is_nan());
    assert!(x.first_non_finite().is_some());
}
