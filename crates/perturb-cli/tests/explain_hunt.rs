//! `perturb explain` against an independent reference (mpmath at 60 digits, closed forms) on
//! tricky expressions: powers with negative or zero bases, values that underflow, partials
//! that overflow. Each test failed before its fix.

use serde_json::Value;

mod support;
use support::{perturb, stderr};

fn json(src: &str, at: &str) -> Value {
    let out = perturb(&["explain", src, "--at", at, "--json"]);
    assert!(out.status.success(), "{src} at {at}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn derivative(report: &Value, wrt: &str) -> f64 {
    report["derivatives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["wrt"] == wrt)
        .and_then(|d| d["value"].as_f64())
        .unwrap_or_else(|| panic!("no derivative in {wrt}: {report}"))
}

fn warnings(report: &Value) -> String {
    report["warnings"].to_string()
}

/// `x^y` with a negative base is real only at whole `y`, so it has no derivative in `y`; and
/// `0^y` jumps from 0 (y > 0) to 1 (y = 0) to inf (y < 0). The tape's convention gives the
/// exponent a partial of 0 there, and explain printed it as the derivative: `x^y` at
/// (-2, 3) gave df/dy = 0, `x^x` at -2 gave df/dx = x*x^(x-1) = 0.25 (the derivative of
/// x^x, x^x (ln x + 1), is complex there: mpmath gives 0.25 (ln 2 + 1 + i pi)), `(-2)^x` at
/// 3 gave 0, `x^y` at (0, 0) gave df/dy = 0 (the right derivative is -inf).
#[test]
fn powers_with_a_negative_or_zero_base_have_no_derivative_in_the_exponent() {
    for (src, at) in [
        ("x^y", "x=-2,y=3"),
        ("a = x^x; a", "x=-2"),
        ("(-2)^x", "x=3"),
        ("x^y", "x=0,y=0"),
        ("pow(x, y)", "x=-2,y=2"),
        ("b = 2*y; (x - 1)^b + x", "x=0.5,y=1"),
    ] {
        let out = perturb(&["explain", src, "--at", at]);
        assert_eq!(out.status.code(), Some(1), "{src} at {at}");
        let err = stderr(&out);
        assert!(
            err.contains("no derivative in its exponent"),
            "{src} at {at}: {err}"
        );
    }
    // What stays: whole constant powers of negative numbers, a positive or zero base with a
    // positive exponent, and such a power the output does not use.
    let r = json("x^3", "x=-2");
    assert_eq!(derivative(&r, "x"), 12.0);
    let r = json("x^y", "x=0,y=2");
    assert_eq!((derivative(&r, "x"), derivative(&r, "y")), (0.0, 0.0));
    let r = json("x^y", "x=2,y=3");
    // d/dy 2^y at 3 = 8 ln 2
    assert!((derivative(&r, "y") - 8.0 * 2.0_f64.ln()).abs() < 1e-14);
    let r = json("a = x^y; 2*x + y", "x=-2,y=3");
    assert_eq!((derivative(&r, "x"), derivative(&r, "y")), (2.0, 1.0));
}

/// An operand used twice was listed twice in an error: "(with x = -0.5, x = -0.5)".
#[test]
fn an_error_names_each_operand_once() {
    let out = perturb(&["explain", "x^x", "--at", "x=-0.5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("(with x = -0.5)"), "{err}");
}

/// A product, quotient, power or exponential that underflows to 0 was shown as 0 with no
/// word: `x^2/x` at 1e-300 gave f = 0 and df/dx = 2 (exactly: 1e-300 and 1), `x*y` at
/// (1e-200, 1e-200) gave 0 (exactly 1e-400). Sums near 0 are exact and say nothing.
#[test]
fn a_value_that_underflows_to_zero_is_said() {
    for (src, at, culprit) in [
        ("x^2/x", "x=1e-300", "`t1 = x^2` underflows to 0"),
        ("x*y", "x=1e-200,y=1e-200", "`f = x*y` underflows to 0"),
        (
            "a = x*1e-300; a*1e-300 + x",
            "x=1",
            "`t1 = a*1e-300` underflows",
        ),
        (
            "exp(-x)",
            "x=800",
            "`f = exp(t1)` underflows to 0 here (with t1 = -800)",
        ),
        ("sigmoid(x) + x", "x=-800", "underflows"),
        ("x/y", "x=1e-300,y=1e300", "underflows"),
        ("1e-200*1e-200 + x", "x=1", "`1e-200*1e-200` underflows"),
    ] {
        let w = warnings(&json(src, at));
        assert!(w.contains(culprit), "{src} at {at}: {w}");
    }
    for (src, at) in [
        ("x*0 + 0/x + 0^x", "x=1"),
        ("x - y", "x=1e-310,y=1e-310"),
        ("x*y", "x=1e-300,y=1e-20"), // 1e-320 is a subnormal, not 0
        ("relu(x) + sin(x)", "x=0"),
    ] {
        let w = warnings(&json(src, at));
        assert!(!w.contains("underflows"), "{src} at {at}: {w}");
    }
}

/// A local partial that overflows was blamed on the function: `log(x)` at 1e-310 said "ln is
/// not differentiable where x = 1e-310" (its derivative there is 1/x = 1e310, too large for
/// a float), as did `recip` at 1e-308 and `x^-0.5` at 1e-310.
#[test]
fn an_overflowing_partial_is_not_called_a_singular_point() {
    for (src, at) in [
        ("log(x)", "x=1e-310"),
        ("recip(x)", "x=1e-308"),
        ("x^-0.5", "x=1e-310"),
    ] {
        let out = perturb(&["explain", src, "--at", at]);
        assert_eq!(out.status.code(), Some(1), "{src} at {at}");
        let err = stderr(&out);
        assert!(
            err.contains("too large for a 64-bit float") && !err.contains("not differentiable"),
            "{src} at {at}: {err}"
        );
    }
    for (src, at) in [("sqrt(x)", "x=0"), ("asin(x)", "x=-1"), ("acosh(x)", "x=1")] {
        let out = perturb(&["explain", src, "--at", at]);
        let err = stderr(&out);
        assert!(
            err.contains("not differentiable where x = "),
            "{src}: {err}"
        );
    }
}

/// The lecture's "exact" column computed 1 - sigmoid(b), which cancels to 0 for b past about
/// 37: at x = 0.7, w = 100 it showed -0 next to forward and reverse -7.34e-20 (mpmath:
/// -140 sigmoid(-49) = -7.34003992871e-20), and the multiple-input rows at x = 100 showed 0
/// for -4.322e-22, 8.644e-22, -1.729e-21. The check passed, since the difference is tiny.
#[test]
fn the_lectures_exact_values_do_not_cancel() {
    let out = perturb(&["lecture", "--x", "0.7", "--w", "100"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let row = text
        .lines()
        .find(|l| l.starts_with("d/dx -log sigmoid(w x^2)"))
        .unwrap();
    assert_eq!(row.matches("-7.340039929e-20").count(), 3, "{row}");
    let out = perturb(&["lecture", "--x", "100", "--w", "1"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for exact in [
        "= -4.322028557e-22",
        "= 8.644057113e-22",
        "= -1.728811423e-21",
    ] {
        assert!(text.contains(exact), "{exact}: {text}");
    }
}

/// atan2's partials (b, -a) / (a^2 + b^2) squared the arguments: past 1e154 the square
/// overflowed and below 1e-154 it underflowed to 0, which the rule takes for the origin.
/// `atan2(x, y)` at (1e-170, 1e-170) gave df/dx = df/dy = 0 (exactly: 1/(2e-170) = 5e169 and
/// -5e169), `atan2(x, 1e300)` at 1 gave 0 (exactly 1e-300). Fixed in perturb's rule table
/// (crates/perturb/src/rules.rs), found with the mpmath comparison of random programs at
/// points from 1e-200 to 1e200.
#[test]
fn atan2_has_its_derivative_at_tiny_and_huge_arguments() {
    let r = json("atan2(x, y)", "x=1e-170,y=1e-170");
    let (dx, dy) = (derivative(&r, "x"), derivative(&r, "y"));
    assert!((dx - 5e169).abs() <= 1e-15 * 5e169, "{dx}");
    assert!((dy + 5e169).abs() <= 1e-15 * 5e169, "{dy}");
    let r = json("atan2(x, 1e300)", "x=1");
    assert!((derivative(&r, "x") - 1e-300).abs() <= 1e-315, "{r}");
    let r = json("atan2(x, y)", "x=0,y=0");
    assert_eq!((derivative(&r, "x"), derivative(&r, "y")), (0.0, 0.0));
}

/// Forward mode summed `partial * tangent` over every parent, so `a = sqrt(y)` at y = 0 (local
/// partial inf), which does not depend on x, got the tangent da/dx = inf * 0 = NaN, in the text
/// and in the JSON tangents (S1's forward twin). A node that does not depend on the
/// perturbed variable now has tangent exactly 0, and says why.
#[test]
fn forward_tangents_of_nodes_that_do_not_depend_on_the_seed_are_zero() {
    let src = "a = sqrt(y); b = 2*x; b";
    let r = json(src, "x=1,y=0");
    let sweep = r["forward"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["wrt"] == "x")
        .unwrap();
    // nodes: x, y, a, b
    assert_eq!(
        sweep["tangents"],
        serde_json::json!([1.0, 0.0, 0.0, 2.0]),
        "{r}"
    );
    let out = perturb(&["explain", src, "--at", "x=1,y=0", "--mode", "forward"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("da/dx = 0  (a does not depend on x)") && !text.contains("NaN"),
        "{text}"
    );
}

/// The inverse functions' derivatives squared their argument: 1 - x^2 cancelled near +-1
/// (asin'(0.99999999) = 7071.067813726 for mpmath's 7071.0678117779381642, a relative error of
/// 3e-10; atanh' 5e-10; acosh'(1.00000001) 2.5e-9), and x^2 overflowed for |x| past 1e154 so
/// asinh' and acosh' at 1e200 were 0 (mpmath: 1e-200). Fixed in perturb's rule table
/// (crates/perturb/src/rules.rs): (1 - x)(1 + x), hypot(1, x), sqrt(x - 1) sqrt(x + 1).
#[test]
fn inverse_functions_have_accurate_derivatives_near_their_edges() {
    for (src, at, exact) in [
        ("asin(x)", "x=0.99999999", 7071.067811777938),
        ("-acos(x)", "x=-0.99999999", 7071.067811777938),
        ("atanh(x)", "x=0.99999999", 49999999.99876204),
        ("acosh(x)", "x=1.00000001", 7071.067815674911),
        ("asinh(x)", "x=1e200", 1e-200),
        ("acosh(x)", "x=1e200", 1e-200),
        ("asinh(x)", "x=-1e155", 1e-155),
    ] {
        let d = derivative(&json(src, at), "x");
        assert!(
            (d - exact).abs() <= 1e-14 * exact,
            "{src} at {at}: {d} for {exact}"
        );
    }
}

/// exp_m1's derivative was `expm1(x) + 1`, which cancels for negative x: at -30 it gave
/// 9.35918e-14 for exp(-30) = 9.357622968840175e-14 (1.7e-4 relative) and at -100 gave 0 for
/// 3.72e-44. tanh's was `1 - tanh^2`: 1.1e-8 relative error at 10 and 0 for 3.5e-26 at 30.
/// Fixed in perturb's rule table (exp(x); 1 / cosh(x)^2). References from mpmath.
#[test]
fn expm1_and_tanh_derivatives_do_not_cancel() {
    for (src, at, exact) in [
        ("expm1(x)", "x=-30", 9.357622968840175e-14),
        ("expm1(x)", "x=-100", 3.720075976020836e-44),
        ("expm1(x)", "x=-10", 4.5399929762484854e-05),
        ("tanh(x)", "x=10", 8.244614455767397e-09),
        ("tanh(x)", "x=-30", 3.502604305078608e-26),
        ("tanh(x)", "x=100", 5.53558610694695e-87),
        ("tanh(x)", "x=-0.5", 0.7864477329659274),
    ] {
        let d = derivative(&json(src, at), "x");
        assert!(
            (d - exact).abs() <= 4e-15 * exact,
            "{src} at {at}: {d} for {exact}"
        );
    }
}
