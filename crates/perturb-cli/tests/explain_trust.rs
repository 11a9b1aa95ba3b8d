//! `perturb explain` and `perturb lecture` on the findings of the reliability report of
//! 2026-12-03: unused singular values, non-finite numbers in JSON, large and wide graphs, long
//! and hostile inputs in error messages. Each test failed before its fix.

use std::path::PathBuf;

use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{perturb, stderr, stdout};

/// Writes `src` to a file of its own under the test directory and returns its path.
fn program_file(name: &str, src: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, src).unwrap();
    path
}

fn json(args: &[&str]) -> Value {
    let out = perturb(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("valid JSON")
}

/// S1 / U5: `a = sqrt(x)` at 0 has no finite derivative, but `b` does not use it: it was
/// refused ("has no finite derivative here"), and the reverse view showed `0 * 0.5` terms
/// from unused nodes.
#[test]
fn an_unused_singular_value_does_not_spoil_the_derivative() {
    for (src, exact) in [
        ("a = sqrt(x); b = 2*x; b", 2.0),
        ("a = log(x); c = 1/x; d = asin(x - 3); b = 2*x; b", 2.0),
        ("a = sqrt(x); b = x*x; c = a*b; b + 3*x", 3.0),
        ("log(x); sqrt(x)*0 + x", f64::NAN), // used: sqrt(x)*0 depends on sqrt at 0
    ] {
        let out = perturb(&["explain", src, "--at", "x=0", "--json"]);
        if exact.is_nan() {
            assert_eq!(out.status.code(), Some(1), "{src}: {}", stdout(&out));
            assert!(
                stderr(&out).contains("no finite derivative"),
                "{src}: {}",
                stderr(&out)
            );
            continue;
        }
        assert!(out.status.success(), "{src}: {}", stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let d = &report["derivatives"][0];
        assert_eq!(d["forward"].as_f64(), Some(exact), "{src}: {d}");
        assert_eq!(d["reverse"].as_f64(), Some(exact), "{src}: {d}");
        assert!(
            stderr(&out).contains("does not depend on it"),
            "{src}: {}",
            stderr(&out)
        );
        // No contribution comes from a node the output does not use.
        for c in report["reverse"]["contributions"].as_array().unwrap() {
            let from = c["from"].as_u64().unwrap() as usize;
            assert_eq!(report["nodes"][from]["used"], true, "{src}: {c}");
        }
    }
    let out = perturb(&["explain", "a = sqrt(x); b = 2*x; b", "--at", "x=1"]);
    let text = stdout(&out);
    assert!(
        !text.contains("db/da * ∂a/∂x") && text.contains("db/da = 0  (a is not used"),
        "{text}"
    );
    assert!(text.contains("(b does not depend on a)"), "{text}");
    assert!(
        text.contains("∂a/∂x = 0.5  (b does not depend on it)"),
        "{text}"
    );
    // A value the output does use is still an error naming it.
    let out = perturb(&["explain", "a = log(x); b = exp(a)*2; b", "--at", "x=0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("perturb: explain: 1:5: `a = log(x)` is -inf here"),
        "{}",
        stderr(&out)
    );
}

/// S9: `--json` wrote an infinite derivative as `null`.
#[test]
fn json_writes_infinities_and_nan_as_strings() {
    let report = json(&[
        "explain",
        "a = 1e300*x; b = 1e300*a; b",
        "--at",
        "x=1e-300",
        "--json",
    ]);
    let d = &report["derivatives"][0];
    assert_eq!(d["value"], "inf", "{d}");
    assert_eq!(d["forward"], "inf", "{d}");
    assert_eq!(d["reverse"], "inf", "{d}");
    assert_eq!(report["reverse"]["adjoints"][0], "inf");
    let report = json(&[
        "explain",
        "a = sqrt(x); c = -log(x); b = 2*x; b",
        "--at",
        "x=0",
        "--json",
        "--mode",
        "forward",
    ]);
    assert_eq!(report["nodes"][1]["partials"][0]["value"], "inf");
    assert_eq!(report["nodes"][2]["value"], "-inf");
    assert_eq!(report["nodes"][3]["value"], "inf");
    assert_eq!(report["forward"][0]["tangents"][3], "-inf");
    assert_eq!(report["derivatives"][0]["forward"], 2.0);
    let help = stdout(&perturb(&["explain", "--help"]));
    assert!(help.contains("\"inf\", \"-inf\" and \"NaN\""), "{help}");
}

/// A chain where `x` feeds every statement: wide fan-out.
fn fan_out(n: usize) -> String {
    let mut src = String::from("a0 = x\n");
    for i in 1..n {
        src.push_str(&format!("a{i} = a{} * 1.00001 + 0.5*x\n", i - 1));
    }
    src
}

/// H1: laying out a fan-out of 80 statements as SVG took 96 s (n^4); now a graph past the
/// measured limit is refused at once with the size and the limit, and `.dot` has no limit.
#[test]
fn a_graph_too_wide_to_lay_out_is_refused_quickly() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = program_file("explain-fan-out.txt", &fan_out(80));
    let svg = dir.join("explain-fan-out.svg");
    let _ = std::fs::remove_file(&svg);
    let start = Instant::now();
    let out = perturb(&[
        "explain",
        "-f",
        file.to_str().unwrap(),
        "--at",
        "x=1",
        "--graph",
        svg.to_str().unwrap(),
    ]);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("too large to lay out as SVG") && err.contains("limit of 800"),
        "{err}"
    );
    assert!(err.contains("explain-fan-out.dot"), "{err}");
    assert!(!svg.exists());
    let dot = dir.join("explain-fan-out.dot");
    let out = perturb(&[
        "explain",
        "-f",
        file.to_str().unwrap(),
        "--at",
        "x=1",
        "--graph",
        dot.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Small graphs are still drawn.
    let file = program_file("explain-fan-out-small.txt", &fan_out(10));
    let out = perturb(&[
        "explain",
        "-f",
        file.to_str().unwrap(),
        "--at",
        "x=1",
        "--graph",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    // Found next to H1: a graph without nodes made layout-rs panic ("Sorting an empty graph").
    let out = perturb(&["explain", "2*3", "--graph", svg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("has no node to draw"),
        "{}",
        stderr(&out)
    );
}

/// H2: the reverse view filtered every contribution for every node and `--json` scanned the
/// source from the start for every node: 40,000 statements took 25 s and 168 s in release.
#[test]
fn the_reverse_view_and_json_are_linear() {
    let file = program_file("explain-long-chain.txt", &fan_out(40_000));
    let file = file.to_str().unwrap();
    for extra in [&["--mode", "reverse"][..], &["--json"][..]] {
        let start = Instant::now();
        let mut args = vec!["explain", "-f", file, "--at", "x=1"];
        args.extend_from_slice(extra);
        let out = perturb(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(30), "{extra:?}: {took:?}");
    }
}

/// H3: forward mode printed one sweep per variable, O(variables x nodes) lines built in memory
/// (5,000 variables: 4 GB). Now at most 200 sweeps are shown, with a note naming `--wrt`.
#[test]
fn forward_mode_shows_a_bounded_number_of_sweeps() {
    let n = 300;
    let mut src = String::from("u0 = v0\n");
    for i in 1..n {
        src.push_str(&format!("u{i} = u{} + v{i}\n", i - 1));
    }
    let at: Vec<String> = (0..n).map(|i| format!("v{i}={i}")).collect();
    let at = at.join(",");
    let file = program_file("explain-many-inputs.txt", &src);
    let file = file.to_str().unwrap();
    let out = perturb(&["explain", "-f", file, "--at", &at, "--mode", "forward"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.matches("Forward mode, perturbing").count(), 200);
    assert!(
        text.contains("the forward sweeps of 100 more variables are not shown")
            && text.contains("--wrt NAME"),
        "{}",
        &text[text.len().saturating_sub(3000)..]
    );
    assert!(
        stderr(&out).contains("100 more variables"),
        "{}",
        stderr(&out)
    );
    // Every derivative is still listed, from forward mode.
    assert_eq!(text.matches("  (forward mode)").count(), n);
    assert!(text.contains(&format!("du{}/dv299 = 1  (forward mode)", n - 1)));
    // Bounded: 200 sweeps of 600 nodes, not 300.
    assert!(
        text.lines().count() < 200 * 610 + 2 * n,
        "{}",
        text.lines().count()
    );
    let report = json(&["explain", "-f", file, "--at", &at, "--json"]);
    assert_eq!(report["forward"].as_array().unwrap().len(), 200);
    assert_eq!(report["forward_not_shown"], 100);
    assert_eq!(report["derivatives"].as_array().unwrap().len(), n);
    // One variable, asked for by name, is shown.
    let out = perturb(&[
        "explain", "-f", file, "--at", &at, "--wrt", "v299", "--mode", "forward",
    ]);
    assert_eq!(
        stdout(&out)
            .matches("Forward mode, perturbing v299")
            .count(),
        1
    );
}

/// U3: an error in a 10^6-term expression printed the whole 2 MB line.
#[test]
fn error_excerpts_are_a_bounded_window_around_the_caret() {
    let long = vec!["x"; 200_000].join("+") + " + y";
    let file = program_file("explain-long-line.txt", &long);
    let out = perturb(&["explain", "-f", file.to_str().unwrap(), "--at", "x=1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.len() < 600,
        "{} bytes: {}",
        err.len(),
        &err[..600.min(err.len())]
    );
    assert!(err.contains("no value for the variable `y`"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let source = lines.iter().find(|l| l.starts_with("1 | ")).unwrap();
    let caret = lines.iter().find(|l| l.contains('^')).unwrap();
    assert!(source.starts_with("1 | …"), "{source}");
    let col = caret.find('^').unwrap();
    assert_eq!(
        source.chars().nth(caret[..col].chars().count()),
        Some('y'),
        "{err}"
    );
    // In the middle of the line, both ends are cut.
    let mid = vec!["x"; 1000].join("+") + " + (" + &vec!["x"; 1000].join("+");
    let out = perturb(&["explain", &mid, "--at", "x=1"]);
    let err = stderr(&out);
    assert!(err.len() < 600 && err.contains("unclosed `(`"), "{err}");
    let out = perturb(&["explain", "x + (y", "--at", "x=1,y=2"]);
    assert!(
        stderr(&out).contains("1 | x + (y\n  |       ^"),
        "{}",
        stderr(&out)
    );
}

/// U4: a flat sum of 501 terms was "nested more than 500 levels deep".
#[test]
fn a_long_flat_sum_or_product_is_not_nesting() {
    for (op, n, exact) in [
        ("+", 501, 501.0),
        ("+", 100_000, 100_000.0),
        ("*", 2000, 2000.0),
    ] {
        let src = vec!["x"; n].join(op);
        let file = program_file("explain-flat-chain.txt", &src);
        let report = json(&[
            "explain",
            "-f",
            file.to_str().unwrap(),
            "--at",
            "x=1",
            "--json",
            "--mode",
            "reverse",
        ]);
        assert_eq!(report["derivatives"][0]["reverse"], exact, "{op} x {n}");
    }
    let deep = "(".repeat(300) + "x" + &")".repeat(300);
    let out = perturb(&["explain", &deep, "--at", "x=1"]);
    assert!(
        stderr(&out).contains("nested more than"),
        "{}",
        stderr(&out)
    );
}

/// U11: control characters and bidirectional overrides were shown raw.
#[test]
fn hidden_characters_in_errors_are_escaped() {
    for (src, escaped) in [
        ("x \u{1} y", "\\u{1}"),
        ("x + \u{202e}y", "\\u{202e}"),
        ("x\u{200b}", "\\u{200b}"),
    ] {
        let out = perturb(&["explain", src, "--at", "x=1,y=2"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{src:?}");
        assert!(
            err.contains(&format!("unexpected character `{escaped}`")),
            "{err}"
        );
        assert!(
            !err.contains(['\u{1}', '\u{202e}', '\u{200b}']),
            "{src:?}: raw character in {err:?}"
        );
        // The caret is under the escaped character.
        let lines: Vec<&str> = err.lines().collect();
        let source = lines.iter().find(|l| l.starts_with("1 | ")).unwrap();
        let caret = lines.iter().rfind(|l| l.contains('^')).unwrap();
        assert_eq!(
            &source[caret.find('^').unwrap()..][..escaped.len()],
            escaped,
            "{err}"
        );
    }
    let out = perturb(&["explain", "x", "--at", "x=1,\u{202e}=2"]);
    assert!(
        stderr(&out).contains("`\\u{202e}` is not a variable name"),
        "{}",
        stderr(&out)
    );
}

/// U12: `x*0x10` was "found the name `x10` (write 0*x10 for a product)".
#[test]
fn hexadecimal_numbers_get_a_correct_hint() {
    let out = perturb(&["explain", "x*0x10", "--at", "x=1"]);
    let err = stderr(&out);
    assert!(
        err.contains("hexadecimal") && !err.contains("0*x10"),
        "{err}"
    );
    assert!(err.starts_with("perturb: explain: 1:3:"), "{err}");
}

/// Cosmetic: `--at x=-0` said "with x = 0"; `1e-999` became 0 silently while `1e999` was an
/// error.
#[test]
fn negative_zero_and_underflowing_numbers() {
    let out = perturb(&["explain", "2*x", "--at", "x=-0"]);
    assert!(
        stdout(&out).starts_with("f = 0 at x = -0\n"),
        "{}",
        stdout(&out)
    );
    let out = perturb(&["explain", "log(x)", "--at", "x=-0"]);
    assert!(stderr(&out).contains("(with x = -0)"), "{}", stderr(&out));
    for (src, at) in [("1e-999 * x", "x=1"), ("x", "x=1e-999")] {
        let out = perturb(&["explain", src, "--at", at]);
        assert_eq!(out.status.code(), Some(1), "{src} {at}");
        assert!(
            stderr(&out).contains("too small for a 64-bit float"),
            "{}",
            stderr(&out)
        );
    }
}

/// Cosmetic: `lecture --x 1e308` printed NaN rows and `--x 1e-200` a 200-digit number.
#[test]
fn the_lecture_refuses_points_where_its_examples_overflow() {
    for x in ["1e308", "1e-200", "400"] {
        let out = perturb(&["lecture", "--x", x]);
        assert_eq!(out.status.code(), Some(1), "{x}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("is not a finite number") && err.len() < 400,
            "{err}"
        );
        assert!(stdout(&out).is_empty());
    }
    let out = perturb(&["lecture", "--x", "1e-5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.lines().all(|l| l.len() < 130), "{text}");
    assert!(text.contains("at x = 1e-5, w = 3"), "{text}");
}

/// The deepest expressions the limits accept are evaluated and printed without overflowing
/// the stack (the chains of U4 no longer count, so what is left is real nesting).
#[test]
fn the_deepest_accepted_expressions_run() {
    let calls = "sin(1 + 2*".repeat(166) + "x" + &")".repeat(166);
    let negs = "-".repeat(199) + "x";
    let powers = vec!["x"; 199].join("^");
    let parens = "(x + ".repeat(199) + "x" + &")".repeat(199);
    for src in [&calls, &negs, &powers, &parens] {
        for extra in [&["--json"][..], &["--mode", "both"][..]] {
            let mut args = vec!["explain", src.as_str(), "--at", "x=1"];
            args.extend_from_slice(extra);
            let out = perturb(&args);
            assert!(out.status.success(), "{}: {}", &src[..20], stderr(&out));
        }
    }
}

/// Found next to U3: a long name or a long list of variables was echoed whole in messages and
/// warnings; `-f /dev/zero` read forever; an overflowing derivative got no word.
#[test]
fn messages_stay_short_and_sources_are_bounded() {
    let long_name = "v".repeat(100_000);
    let out = perturb(&["explain", &format!("{long_name} + 1"), "--at", "x=1"]);
    let err = stderr(&out);
    assert!(
        err.contains("no value for the variable `vvvv") && err.len() < 800,
        "{err}"
    );
    let at: Vec<String> = (0..5000).map(|i| format!("v{i}={i}")).collect();
    let at = at.join(",");
    let sum: Vec<String> = (0..5000).map(|i| format!("v{i}")).collect();
    let out = perturb(&["explain", &sum.join("+"), "--at", &at, "--wrt", "w"]);
    let err = stderr(&out);
    assert!(err.contains("v0, v1, v2") && err.len() < 2000, "{err}");
    assert!(err.contains("v9, and 4990 more"), "{err}");
    let out = perturb(&["explain", "v0 + v1", "--at", &at, "--mode", "reverse"]);
    let err = stderr(&out);
    assert!(
        err.contains("and 4993 more like these") && err.len() < 2000,
        "{err}"
    );
    let out = perturb(&[
        "explain",
        &format!("log(v0) + {}", sum.join("+")),
        "--at",
        &at,
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("v9 = 9, and 4990 more") && err.len() < 2000,
        "{err}"
    );
    let out = perturb(&["explain", "a = 1e300*x; b = 1e300*a; b", "--at", "x=1e-300"]);
    assert!(stderr(&out).contains("db/dx is inf: the chain rule's products overflow"));
    if std::path::Path::new("/dev/zero").exists() {
        let out = perturb(&["explain", "-f", "/dev/zero", "--at", "x=1"]);
        assert!(
            stderr(&out).contains("longer than 16 MiB"),
            "{}",
            stderr(&out)
        );
    }
    let file = program_file("explain-latin1.txt", "");
    std::fs::write(&file, b"x + \xe9").unwrap();
    let out = perturb(&["explain", "-f", file.to_str().unwrap(), "--at", "x=1"]);
    assert!(
        stderr(&out).contains("is not UTF-8 text (byte 4"),
        "{}",
        stderr(&out)
    );
    // With --json, a file that cannot be read is a JSON error too.
    let out = perturb(&["explain", "-f", "/no/such/file", "--at", "x=1", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot read /no/such/file"), "{message}");
}
