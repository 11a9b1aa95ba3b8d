//! `perturb explain` end to end: the lecture's worked examples with exact derivatives in both
//! modes (read from `--json`), golden files for the text and the DOT, and clear errors.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn perturb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn json(expr: &str, at: &str) -> Value {
    let out = perturb(&["explain", expr, "--at", at, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// `(forward d/d<var>, reverse d/d<var>)` for one variable.
fn derivatives(report: &Value, var: &str) -> (f64, f64) {
    let forward = report["forward"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["wrt"] == var)
        .map(|f| f["derivative"].as_f64().unwrap())
        .unwrap();
    let reverse = report["reverse"]["gradient"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g[0] == var)
        .map(|g| g[1].as_f64().unwrap())
        .unwrap();
    (forward, reverse)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn the_lecture_examples_have_their_exact_derivatives_in_both_modes() {
    let x = 0.7_f64;
    let w = 3.0_f64;
    let s = 1.0 / (1.0 + (-(w * x * x)).exp());
    // (expression, --at, variable, exact derivative)
    let cases: Vec<(&str, String, &str, f64)> = vec![
        // d/dx log(x^2) = 2/x
        ("log(x^2)", format!("x={x}"), "x", 2.0 / x),
        // f = y z^2 with y = 2x, z = exp(x): df/dx = (2 + 4x) e^{2x}
        (
            "y = 2*x; z = exp(x); y*z^2",
            format!("x={x}"),
            "x",
            (2.0 + 4.0 * x) * (2.0 * x).exp(),
        ),
        // f(x, x) = x * x -> 2x
        ("x*x", format!("x={x}"), "x", 2.0 * x),
        // L = -log sigmoid(w x^2): dL/dx = -(1 - s) 2 w x, dL/dw = -(1 - s) x^2
        (
            "-log(sigmoid(w*x^2))",
            format!("x={x},w={w}"),
            "x",
            -(1.0 - s) * 2.0 * w * x,
        ),
        (
            "-log(sigmoid(w*x^2))",
            format!("x={x},w={w}"),
            "w",
            -(1.0 - s) * x * x,
        ),
        // a = x^2, b = 5a, c = log a, g = b c, L = -g: dL/dx = -(10 x log(x^2) + 10 x)
        (
            "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
            format!("x={x}"),
            "x",
            -(10.0 * x * (x * x).ln() + 10.0 * x),
        ),
        // c = a b with b = 5a: dc/da = 10a
        ("b = 5*a; c = a*b", "a=1.5".to_string(), "a", 15.0),
    ];
    for (expr, at, var, exact) in cases {
        let report = json(expr, &at);
        let (fwd, rev) = derivatives(&report, var);
        assert!(
            close(fwd, exact) && close(rev, exact),
            "{expr} at {at}: d/d{var} forward {fwd}, reverse {rev}, exact {exact}"
        );
    }
}

#[test]
fn a_reused_value_shows_two_contributions_summing_to_its_adjoint() {
    // In L = -g, g = b c, b = 5a, c = log a, the value a is used by b and by c.
    let x = 0.7_f64;
    let report = json(
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        &format!("x={x}"),
    );
    let contributions: Vec<f64> = report["reverse"]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"] == "a")
        .map(|c| c["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(contributions.len(), 2);
    // dL/da = -(5 log a + 5): through b it is -log(a) * 5, through c it is -5a * (1/a) = -5.
    let a = x * x;
    let mut sorted = contributions.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(
        close(sorted[0], -5.0) && close(sorted[1], -5.0 * a.ln()),
        "{contributions:?}"
    );
    let adjoint = report["reverse"]["adjoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "a")
        .unwrap()[1]
        .as_f64()
        .unwrap();
    assert!(close(adjoint, contributions.iter().sum()));
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing {}: run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "{name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

#[test]
fn text_and_dot_match_the_golden_files() {
    let expr = "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g";
    let out = perturb(&["explain", expr, "--at", "x=0.7"]);
    assert!(out.status.success());
    golden("reuse.txt", &String::from_utf8(out.stdout).unwrap());

    let dir = std::env::temp_dir().join(format!("perturb-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dot = dir.join("logistic.dot");
    let out = perturb(&[
        "explain",
        "L = -log(sigmoid(w*x^2))",
        "--at",
        "x=0.7,w=3",
        "--graph",
        dot.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    golden("logistic.dot", &std::fs::read_to_string(&dot).unwrap());

    let svg = dir.join("logistic.svg");
    let out = perturb(&[
        "explain",
        "L = -log(sigmoid(w*x^2))",
        "--at",
        "x=0.7,w=3",
        "--graph",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("<svg") && text.contains("sigmoid"),
        "an SVG naming the operations"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs a bad command and returns its error output; it must fail with exit code 1 or 2.
fn fails(args: &[&str]) -> String {
    let out = perturb(args);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{args:?} should fail, got {:?}",
        out.status
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn malformed_input_is_a_clear_error() {
    let err = fails(&["explain", "log(x^2", "--at", "x=1"]);
    assert!(
        err.contains("line 1, column 8") && err.contains("expected ')'"),
        "{err}"
    );
    let err = fails(&["explain", "a = x\nb = foo(a)", "--at", "x=1"]);
    assert!(
        err.contains("line 2, column 5") && err.contains("unknown function 'foo'"),
        "{err}"
    );
    let err = fails(&["explain", "w*x", "--at", "x=1"]);
    assert!(
        err.contains("'w' has no value") && err.contains("--at w="),
        "{err}"
    );
    let err = fails(&["explain", "log(x)", "--at", "x=-1"]);
    assert!(
        err.contains("outside the domain of ln") && err.contains("x = -1"),
        "{err}"
    );
    let err = fails(&["explain", "sqrt(x)", "--at", "x=-1"]);
    assert!(err.contains("outside the domain of sqrt"), "{err}");
    let err = fails(&["explain", "x", "--at", "x=seven"]);
    assert!(err.contains("is not a number"), "{err}");
    let err = fails(&["explain", "x", "--at", "x=1", "--wrt", "y"]);
    assert!(err.contains("--wrt y"), "{err}");
    let err = fails(&["explain", "x", "--at", "x=1", "--graph", "/tmp/out.png"]);
    assert!(err.contains(".svg or .dot"), "{err}");
}

#[test]
fn odd_input_never_panics() {
    let long = format!("{}x", "x+".repeat(5000));
    let deep = format!("{}x{}", "(".repeat(500), ")".repeat(500));
    for expr in [
        "",
        ";",
        ";;\n;",
        "((",
        "))",
        "1/0",
        "x^",
        "=",
        "a = ",
        "a = 1; a = 2",
        "x,y",
        "sin()",
        "max(x)",
        "3 4",
        "1e",
        ".5",
        &long,
        &deep,
    ] {
        let out = perturb(&["explain", expr, "--at", "x=0.5,y=2"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{expr:?} panicked: {err}");
        assert!(out.status.code().is_some(), "{expr:?} was killed");
    }
}
