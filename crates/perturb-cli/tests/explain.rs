//! `perturb explain` end to end: the lecture's worked examples in both modes, golden files of
//! the text and the DOT, the graph files, JSON, and errors for malformed input.
//!
//! Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test -p perturb-cli --test explain`
//! (then read the diff before committing it).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

mod support;
use support::{perturb, stderr, stdout};

/// Runs `perturb explain EXPR --at AT --json` (and `extra`), which must succeed.
fn explain_json(expr: &str, at: &str, extra: &[&str]) -> Value {
    let mut args = vec!["explain", expr, "--at", at, "--json"];
    args.extend_from_slice(extra);
    let out = perturb(&args);
    assert!(out.status.success(), "{expr} at {at}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("valid JSON")
}

/// The derivative of the output with respect to `wrt`: (forward, reverse).
fn derivative(report: &Value, wrt: &str) -> (f64, f64) {
    let d = report["derivatives"]
        .as_array()
        .expect("derivatives")
        .iter()
        .find(|d| d["wrt"] == wrt)
        .unwrap_or_else(|| panic!("no derivative with respect to {wrt}: {report}"));
    (
        d["forward"].as_f64().expect("a forward value"),
        d["reverse"].as_f64().expect("a reverse value"),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

/// Both modes give `exact` for d(output)/d(wrt).
fn check(expr: &str, at: &str, wrt: &str, exact: f64) {
    let report = explain_json(expr, at, &[]);
    let (forward, reverse) = derivative(&report, wrt);
    assert!(
        close(forward, exact) && close(reverse, exact),
        "{expr} at {at}: d/d{wrt} forward {forward}, reverse {reverse}, exact {exact}"
    );
}

fn sigmoid(b: f64) -> f64 {
    1.0 / (1.0 + (-b).exp())
}

const POINTS: [f64; 4] = [0.7, 2.0, -1.3, 0.05];

#[test]
fn log_of_x_squared_has_derivative_two_over_x() {
    for x in POINTS {
        let at = format!("x={x}");
        check("log(x^2)", &at, "x", 2.0 / x);
        check("b = x^2; a = log(b)", &at, "x", 2.0 / x);
    }
}

#[test]
fn total_derivative_of_y_z_squared() {
    // f = y z^2 with y = 2x, z = exp(x): df/dx = 2 e^{2x} + 4x e^{2x}.
    for x in POINTS {
        let exact = 2.0 * (2.0 * x).exp() + 4.0 * x * (2.0 * x).exp();
        check(
            "y = 2*x; z = exp(x); f = y*z^2",
            &format!("x={x}"),
            "x",
            exact,
        );
    }
}

#[test]
fn x_times_x_is_two_x() {
    for x in POINTS {
        check("x*x", &format!("x={x}"), "x", 2.0 * x);
        check("x^2", &format!("x={x}"), "x", 2.0 * x);
    }
}

#[test]
fn logistic_loss_with_respect_to_x_and_w() {
    // L = -log sigmoid(w x^2): dL/dx = -(1 - s) 2 w x, dL/dw = -(1 - s) x^2, s = sigmoid(w x^2).
    for (x, w) in [(0.7, 3.0), (2.0, -1.0), (-1.3, 0.5)] {
        let at = format!("x={x},w={w}");
        let s = sigmoid(w * x * x);
        for expr in [
            "L = -log(sigmoid(w*x^2))",
            "a = x^2; b = w*a; c = sigmoid(b); g = log(c); L = -g",
            "-log_sigmoid(w * x ** 2)",
        ] {
            check(expr, &at, "x", -(1.0 - s) * 2.0 * w * x);
            check(expr, &at, "w", -(1.0 - s) * x * x);
        }
    }
}

#[test]
fn the_reused_value_loss() {
    // a = x^2; b = 5a; c = log a; g = b c; L = -g, so L = -5 x^2 log(x^2) and
    // dL/dx = -(10 x log(x^2) + 10 x).
    for x in POINTS {
        let exact = -(10.0 * x * (x * x).ln() + 10.0 * x);
        check(
            "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
            &format!("x={x}"),
            "x",
            exact,
        );
    }
}

#[test]
fn c_equals_a_b_with_b_five_a_is_ten_a() {
    for a in [1.5, -0.4, 3.0] {
        check("b = 5*a; c = a*b", &format!("a={a}"), "a", 10.0 * a);
    }
}

#[test]
fn a_reused_value_gets_two_contributions_that_sum_to_its_total_derivative() {
    // c = a b with b = 5a, at a = 1.5: dc/da = ∂c/∂a + ∂c/∂b ∂b/∂a = 5a + 5a = 7.5 + 7.5.
    let report = explain_json("b = 5*a; c = a*b", "a=1.5", &[]);
    let a = report["variables"][0]["node"].as_u64().unwrap();
    let into_a: Vec<f64> = report["reverse"]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"].as_u64() == Some(a))
        .map(|c| c["amount"].as_f64().unwrap())
        .collect();
    assert_eq!(into_a, vec![7.5, 7.5]);
    let adjoint = report["reverse"]["adjoints"][a as usize].as_f64().unwrap();
    assert_eq!(into_a.iter().sum::<f64>(), adjoint);
    assert_eq!(adjoint, 15.0);

    // The lecture's loss: a is used by b and by c.
    let report = explain_json(
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        "x=0.7",
        &[],
    );
    let node_a = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "a")
        .unwrap()["index"]
        .as_u64()
        .unwrap();
    let from: Vec<(String, f64)> = report["reverse"]["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["to"].as_u64() == Some(node_a))
        .map(|c| {
            (
                c["from_name"].as_str().unwrap().to_string(),
                c["amount"].as_f64().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = from.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["c", "b"]);
    let adjoint = report["reverse"]["adjoints"][node_a as usize]
        .as_f64()
        .unwrap();
    assert!(close(from[0].1 + from[1].1, adjoint));
    // ... and the text says so.
    let out = perturb(&[
        "explain",
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        "--at",
        "x=0.7",
    ]);
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("dL/da ="))
        .expect("the adjoint of a");
    assert_eq!(
        line.trim(),
        "dL/da = dL/dc * ∂c/∂a + dL/db * ∂b/∂a = (-2.45) * 2.040816327 + 0.7133498879 * 5 \
         = -5 + 3.566749439 = -1.433250561"
    );
    assert!(
        text.contains("(a is used 2 times: the 2 contributions add up to the total derivative)")
    );
}

#[test]
fn the_json_has_nodes_tangents_adjoints_contributions_and_derivatives() {
    let report = explain_json("a = x^2; b = w*a; L = -log(sigmoid(b))", "x=0.7,w=3", &[]);
    let nodes = report["nodes"].as_array().unwrap();
    let a = &nodes[2];
    assert_eq!(a["name"], "a");
    assert_eq!(a["definition"], "x^2");
    assert_eq!(a["op"], "powi");
    assert_eq!(
        (a["line"].as_u64(), a["column"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(a["partials"][0]["name"], "x");
    assert!(close(a["partials"][0]["value"].as_f64().unwrap(), 1.4));
    assert_eq!(report["output"]["name"], "L");
    let forward = report["forward"].as_array().unwrap();
    assert_eq!(forward.len(), 2, "one forward sweep per variable");
    assert_eq!(forward[0]["wrt"], "x");
    assert_eq!(
        forward[0]["tangents"].as_array().unwrap().len(),
        nodes.len()
    );
    assert_eq!(
        report["reverse"]["adjoints"].as_array().unwrap().len(),
        nodes.len()
    );
    assert_eq!(report["derivatives"].as_array().unwrap().len(), 2);

    // --mode and --wrt choose the sweeps.
    let report = explain_json("x*w", "x=2,w=3", &["--mode", "forward", "--wrt", "w"]);
    assert_eq!(report["forward"].as_array().unwrap().len(), 1);
    assert_eq!(report["forward"][0]["wrt"], "w");
    assert!(report["reverse"].is_null());
    assert_eq!(report["derivatives"][0]["value"], 2.0);
    let report = explain_json("x*w", "x=2,w=3", &["--mode", "reverse"]);
    assert_eq!(report["forward"].as_array().unwrap().len(), 0);
    assert_eq!(report["derivatives"][1]["reverse"], 2.0);
}

#[test]
fn the_text_shows_each_sweep_node_by_node() {
    let out = perturb(&[
        "explain",
        "y = 2*x; z = exp(x); f = y*z^2",
        "--at",
        "x=0.7",
        "--mode",
        "forward",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Forward mode, perturbing x"), "{text}");
    assert!(!text.contains("Reverse mode"), "{text}");
    assert!(
        text.contains("  dy/dx = ∂y/∂x * dx/dx = 2 * 1 = 2\n"),
        "{text}"
    );
    assert!(
        text.contains("  df/dx = ∂f/∂y * dy/dx + ∂f/∂t1 * dt1/dx = "),
        "{text}"
    );
    assert!(
        text.contains("df/dx = 19.46495984  (forward mode)"),
        "{text}"
    );
}

// Golden files.

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `name` exactly, or rewrites it under UPDATE_GOLDEN=1.
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).expect("create tests/golden");
        std::fs::write(&path, actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs (rerun with UPDATE_GOLDEN=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// The lecture's examples as golden files: (file stem, expression, point, extra arguments).
const GOLDEN: &[(&str, &str, &str, &[&str])] = &[
    (
        "logistic",
        "a = x^2; b = w*a; c = sigmoid(b); g = log(c); L = -g",
        "x=0.7,w=3",
        &[],
    ),
    (
        "reuse",
        "a = x^2; b = 5*a; c = log(a); g = b*c; L = -g",
        "x=0.7",
        &[],
    ),
    ("log-square", "log(x^2)", "x=0.7", &["--mode", "forward"]),
    (
        "c-equals-ab",
        "b = 5*a\nc = a*b",
        "a=1.5",
        &["--mode", "reverse"],
    ),
];

#[test]
fn text_output_matches_the_golden_files() {
    for (stem, expr, at, extra) in GOLDEN {
        let mut args = vec!["explain", expr, "--at", at];
        args.extend_from_slice(extra);
        let out = perturb(&args);
        assert!(out.status.success(), "{stem}: {}", stderr(&out));
        golden(&format!("{stem}.txt"), &stdout(&out));
    }
}

#[test]
fn dot_output_matches_the_golden_files() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for (stem, expr, at, extra) in GOLDEN {
        let path = dir.join(format!("golden-{stem}.dot"));
        let path_str = path.to_str().unwrap();
        let mut args = vec!["explain", expr, "--at", at, "--graph", path_str];
        args.extend_from_slice(extra);
        let out = perturb(&args);
        assert!(out.status.success(), "{stem}: {}", stderr(&out));
        let dot = std::fs::read_to_string(&path).expect("the DOT file");
        golden(&format!("{stem}.dot"), &dot);
    }
}

#[test]
fn the_graph_is_drawn_as_svg_or_dot_with_values_adjoints_and_edge_partials() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let svg = dir.join("explain-logistic.svg");
    let out = perturb(&[
        "explain",
        "L = -log(sigmoid(w*x^2))",
        "--at",
        "x=0.7,w=3",
        "--graph",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("<svg"));
    assert!(
        svg.contains("L = -t4") && svg.contains("dL/dt2 = -0.186943"),
        "{svg}"
    );

    // Forward mode only: the nodes carry tangents.
    let dot = dir.join("explain-forward.dot");
    let out = perturb(&[
        "explain",
        "x*w",
        "--at",
        "x=2,w=3",
        "--mode",
        "forward",
        "--wrt",
        "w",
        "--graph",
        dot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dot = std::fs::read_to_string(&dot).unwrap();
    assert!(
        dot.contains("f = x*w\\nvalue 6\\n∂f/∂x = 3\\n∂f/∂w = 2\\ndf/dw = 0 + 2 = 2"),
        "{dot}"
    );
    assert!(dot.contains("n0 -> n2 [label=\"→ 0\\n3 × 0\"]"), "{dot}");

    // An unknown extension or an unwritable path is an error, not a panic.
    let out = perturb(&["explain", "x", "--at", "x=1", "--graph", "graph.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(".svg"), "{}", stderr(&out));
    let out = perturb(&[
        "explain",
        "x",
        "--at",
        "x=1",
        "--graph",
        "/no/such/dir/g.dot",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
}

// Errors.

/// Runs `perturb explain SRC --at AT`, which must fail with exit code 1, a message containing
/// `cause`, and (when given) the position `line:col`.
fn fails(src: &str, at: &str, cause: &str, position: Option<&str>) {
    let out = perturb(&["explain", src, "--at", at]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{src:?}: {err}");
    assert!(
        err.contains(cause),
        "{src:?}: expected {cause:?} in:\n{err}"
    );
    if let Some(position) = position {
        assert!(
            err.starts_with(&format!("perturb: explain: {position}: ")),
            "{src:?}: expected {position} in:\n{err}"
        );
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_input_is_an_error_naming_the_cause_and_the_place() {
    fails(
        "(x + 1",
        "x=1",
        "unclosed `(`: expected `)` to close the `(` at 1:1",
        Some("1:7"),
    );
    fails("a = 1\nb = (x + 1))", "x=1", "unmatched `)`", Some("2:12"));
    fails("sin(x", "x=1", "unclosed `(`", Some("1:6"));
    fails(
        "y = lgo(x)",
        "x=1",
        "unknown function `lgo` (did you mean `log`?)",
        Some("1:5"),
    );
    fails("foo(x)", "x=1", "unknown function `foo`", Some("1:1"));
    fails(
        "sin(x, x)",
        "x=1",
        "`sin` takes 1 argument, not 2",
        Some("1:1"),
    );
    fails(
        "x * y",
        "x=1",
        "no value for the variable `y`: give one with `--at y=VALUE`",
        Some("1:5"),
    );
    fails("x +", "x=1", "found the end of the input", Some("1:4"));
    fails("2x", "x=1", "write 2*x", Some("1:2"));
    fails("x $ 2", "x=1", "unexpected character `$`", Some("1:3"));
    fails(
        "a = x; a = 2*x; a",
        "x=1",
        "`a` is already defined at 1:1",
        Some("1:8"),
    );
    fails(
        "b = 2*a; a = x; b",
        "x=1",
        "`a` is used before its definition",
        Some("1:7"),
    );
}

#[test]
fn values_outside_a_functions_domain_say_which_node_and_why() {
    fails(
        "a = x^2\nc = log(-a)",
        "x=0.7",
        "`c = log(t1)` is not a number (NaN) here: log is only defined for arguments > 0 (with t1 = -0.49)",
        Some("2:5"),
    );
    fails(
        "log(-1)",
        "x=1",
        "log is only defined for arguments > 0",
        Some("1:1"),
    );
    fails(
        "y = 1 + sqrt(x)",
        "x=-1",
        "sqrt is only defined for arguments >= 0 (with x = -1)",
        Some("1:9"),
    );
    fails(
        "asin(x)",
        "x=2",
        "asin is only defined for arguments from -1 to 1",
        Some("1:1"),
    );
    fails("x / (x - 1)", "x=1", "division by zero", Some("1:1"));
    fails(
        "exp(x)",
        "x=1000",
        "too large for a 64-bit float",
        Some("1:1"),
    );
    fails(
        "sqrt(x)",
        "x=0",
        "has no finite derivative here",
        Some("1:1"),
    );
    // The point is named too.
    let out = perturb(&["explain", "log(x - w)", "--at", "x=1,w=2"]);
    assert!(stderr(&out).contains("at x = 1, w = 2"), "{}", stderr(&out));
}

#[test]
fn bad_points_and_options_are_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["explain", "x", "--at", "x"], "expected NAME=VALUE"),
        (&["explain", "x", "--at", "x="], "missing value for `x`"),
        (&["explain", "x", "--at", "x=seven"], "is not a number"),
        (
            &["explain", "x", "--at", "x=inf"],
            "must be a finite number",
        ),
        (&["explain", "x", "--at", "x=1,x=2"], "given more than once"),
        (&["explain", "x", "--at", "1x=1"], "is not a variable name"),
        (
            &["explain", "x", "--at", "x=1", "--wrt", "q"],
            "`q` is not a variable",
        ),
        (
            &["explain", "a = 2*x; a", "--at", "x=1", "--wrt", "a"],
            "intermediate value",
        ),
        (
            &["explain", "x = 1; x", "--at", "x=1"],
            "also given a value with --at",
        ),
        (
            &["explain", "x", "--file", "also.txt"],
            "cannot be used with",
        ),
        (
            &["explain", "--file", "/no/such/file"],
            "cannot read /no/such/file",
        ),
    ];
    for (args, cause) in cases {
        let out = perturb(args);
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.contains(cause),
            "{args:?}: expected {cause:?} in:\n{err}"
        );
    }
    // An unused --at value is only a warning.
    let out = perturb(&["explain", "x", "--at", "x=1,w=2"]);
    assert!(out.status.success());
    assert!(stderr(&out)
        .contains("warning: --at gives `w` a value, but the expression does not use it"));
}

#[test]
fn errors_are_json_too_with_json() {
    let out = perturb(&["explain", "x +\n log(", "--at", "x=1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(error["error"]["line"], 2);
    assert_eq!(error["error"]["column"], 6);
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expected a number"));
}

#[test]
fn weird_input_never_panics() {
    let long_sum = vec!["x"; 5000].join(" + ");
    let long_ok = vec!["x"; 300].join(" + ");
    let deep = "(".repeat(50_000) + "x" + &")".repeat(50_000);
    let many_statements: String = (0..2000).map(|i| format!("a{i} = x + {i}\n")).collect();
    let long_name = "x".repeat(100_000);
    let inputs: Vec<&str> = vec![
        "",
        " ",
        ";",
        ";;;\n\n;",
        "((",
        "))",
        "()",
        "(",
        ")",
        "1/0",
        "0/0",
        "-1/0",
        "x/0",
        "0*x",
        "=",
        "x =",
        "= x",
        "a = = x",
        "x ==",
        "1e999",
        "1e-999 * x",
        "1..2",
        ".",
        "e",
        "x^^2",
        "x**",
        "***",
        "x,,",
        "f(,)",
        "log(,x)",
        "max(x)",
        "max(x,)",
        "#only a comment",
        "x # trailing comment",
        "\u{1}",
        "\u{feff}x",
        "ξ + x",
        "x\r\n+ 1",
        "--x",
        "-+-+x",
        "x^-x^-x",
        "2^1e10",
        "x^2147483648",
        "x^-2147483648",
        "pow(-8, 1/3)",
        "relu(x) + abs(x) + max(x, 0) + min(x, 0)",
        "atan2(0, 0) + hypot(0, x)",
        "tan(1.5707963267948966)",
        "exp(exp(exp(x)))",
        "log(0)",
        "softplus(1000) + sigmoid(-1000) + log_sigmoid(-1000)",
        &long_sum,
        &long_ok,
        &deep,
        &many_statements,
        &long_name,
    ];
    for input in inputs {
        for mode in ["both", "forward", "reverse"] {
            let out = perturb(&["explain", input, "--at", "x=0.5", "--mode", mode]);
            let err = stderr(&out);
            let short: String = input.chars().take(40).collect();
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{short:?} exited with {:?}: {err}",
                out.status.code()
            );
            assert!(!err.contains("panicked"), "{short:?}: {err}");
            if !out.status.success() {
                assert!(err.starts_with("perturb: explain: "), "{short:?}: {err}");
            }
        }
    }
    // 1/0 is reported as infinite, with its place.
    let out = perturb(&["explain", "1/0"]);
    assert!(stderr(&out).contains("1:1: `f = 1/0` is inf here: division by zero"));
}

#[test]
fn the_expression_can_come_from_a_file_or_standard_input() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("explain-program.txt");
    std::fs::write(
        &path,
        "# the lecture's loss\na = x^2\nb = 5*a\nc = log(a)\n-b*c\n",
    )
    .unwrap();
    let report: Value = {
        let out = perturb(&[
            "explain",
            "--file",
            path.to_str().unwrap(),
            "--at",
            "x=0.7",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    let exact = -(10.0 * 0.7 * (0.49_f64).ln() + 10.0 * 0.7);
    assert!(close(derivative(&report, "x").1, exact));

    let mut child = Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(["explain", "-f", "-", "--at", "x=2", "--mode", "reverse"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"a = x^3\n-a").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        stdout(&out).contains("df/dx = -12  (reverse mode)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn an_expression_may_start_with_a_minus_sign() {
    let out = perturb(&["explain", "-x^2", "--at", "x=3", "--mode", "reverse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("df/dx = -6  (reverse mode)"));
}

#[test]
fn help_lists_the_language_and_examples() {
    let out = perturb(&["explain", "--help"]);
    assert!(out.status.success());
    let help = stdout(&out);
    for needle in [
        "--at",
        "--mode",
        "--wrt",
        "--graph",
        "--json",
        "Examples:",
        "log_sigmoid",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let out = perturb(&["--help"]);
    assert!(stdout(&out).contains("explain"));
}
