//! Property tests of `perturb explain`: arbitrary text, and random programs from a small grammar
//! with random junk inserted, must give a report or a clear error with a caret (no panic, no
//! stack overflow, bounded time and output); and branches the output does not use, full of
//! singular operations, must not change any derivative.
//!
//! Each runs on a thread with the 8 MiB stack of a program's main thread (the test harness
//! gives its threads less), so a stack overflow here is one a user could hit.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use super::{eval::hidden, explain, report, Args, Mode};

/// Cases per property (stated in the report of the change that added them).
const CASES: u32 = 1000;

/// Runs `property` on `CASES` inputs from the strategy `make` makes, on a thread with an
/// 8 MiB stack.
fn check<S>(make: fn() -> S, property: fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy + 'static,
    S::Value: std::fmt::Debug + 'static,
{
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let strategy = make();
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                ..Config::default()
            });
            if let Err(e) = runner.run(&strategy, property) {
                panic!("{e}");
            }
        })
        .expect("a thread")
        .join()
        .expect("the property holds");
}

fn args(src: &str, at: &[String], mode: Mode, json: bool) -> Args {
    Args {
        expr: Some(src.to_string()),
        file: None,
        at: at.to_vec(),
        mode,
        wrt: Vec::new(),
        graph: None,
        html: None,
        json,
    }
}

/// Runs `perturb explain` in process: the report as text, or the rendered error.
fn run(src: &str, at: &[String], mode: Mode, json: bool) -> Result<String, String> {
    let args = args(src, at, mode, json);
    match explain(&args, src) {
        Ok((ev, sweeps)) => {
            let mut out = Vec::new();
            let written = if json {
                report::json(&ev, &sweeps, src, &mut out)
            } else {
                report::text(&ev, &sweeps, &mut out)
            };
            written.expect("writing to memory");
            Ok(String::from_utf8(out).expect("UTF-8 report"))
        }
        Err(e) => Err(e.render(src)),
    }
}

/// What every input must satisfy, success or error.
fn well_behaved(src: &str, at: &[String]) -> Result<(), TestCaseError> {
    for (mode, json) in [
        (Mode::Both, false),
        (Mode::Both, true),
        (Mode::Forward, false),
    ] {
        let start = Instant::now();
        let result = run(src, at, mode, json);
        let took = start.elapsed();
        prop_assert!(took < Duration::from_secs(5), "{took:?}");
        match result {
            Ok(report) => {
                // Output grows with the program, not beyond: at most a few hundred bytes per
                // input character, per variable.
                let bound = 2000 + 400 * (src.len() + 1) * (at.len() + 1);
                prop_assert!(report.len() <= bound, "{} > {bound}", report.len());
                if json {
                    let parsed: Result<Value, _> = serde_json::from_str(&report);
                    prop_assert!(parsed.is_ok(), "invalid JSON: {report}");
                }
            }
            Err(message) => {
                prop_assert!(!message.trim().is_empty());
                prop_assert!(message.len() <= 1200 + 4 * src.len().min(200), "{message}");
                prop_assert!(
                    !message.chars().any(|c| c.is_control() && c != '\n'),
                    "raw control character in {message:?}"
                );
                prop_assert!(
                    !message.chars().any(|c| c != '\n' && hidden(c)),
                    "raw hidden character in {message:?}"
                );
                // A message about a place in the source has the place and a caret under it.
                if message.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    let excerpt = message.lines().nth(3).unwrap_or("");
                    prop_assert!(excerpt.contains('^'), "no caret in {message}");
                    prop_assert!(
                        message.lines().nth(2).unwrap_or("").chars().count() <= 100,
                        "{message}"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Characters that matter to the language, and others that should be refused clearly.
fn junk_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => select(vec![
            '(', ')', '+', '-', '*', '/', '^', '=', ',', ';', '#', '\n', ' ', 'x', 'y', 'e', '.',
            '0', '1', '9', '_',
        ]),
        1 => any::<char>(),
        1 => select(vec!['\u{1}', '\u{7f}', '\u{202e}', '\u{200b}', '\t', '\r', 'é', '∂', '\u{feff}']),
    ]
}

fn point() -> impl Strategy<Value = Vec<String>> {
    let value = select(vec![
        "0", "-0", "0.5", "-1.5", "2", "1e300", "1e-310", "-1e-5",
    ]);
    (value.clone(), value).prop_map(|(x, y)| vec![format!("x={x}"), format!("y={y}")])
}

#[test]
fn arbitrary_text_gives_a_report_or_a_clear_error() {
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::collection::vec(junk_char(), 0..300).prop_map(String::from_iter),
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    }
    check(|| (text(), point()), |(src, at)| well_behaved(&src, &at));
}

/// A random expression of the language (with names, numbers and functions that may be wrong).
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        select(vec!["x", "y", "a", "b", "zz"]).prop_map(String::from),
        select(vec![
            "0", "2", "0.5", "3.", "1e308", "1e-320", "0x10", "1_0", "1e-999", ".5e", "7e+2",
        ])
        .prop_map(String::from),
    ];
    leaf.prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                select(vec![" + ", " - ", "*", "/", "^", "**", ""]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            (
                select(vec![
                    "sin", "log", "sqrt", "exp", "max", "atan2", "pow", "lgo", "relu", "log1p",
                    "asin", "x",
                ]),
                proptest::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.prop_map(|a| format!("-{a}")),
        ]
    })
}

/// Statements (some named), separated by `;` or new lines, with junk inserted.
fn junk_program() -> impl Strategy<Value = String> {
    let statement = (
        proptest::option::of(select(vec!["a", "b", "c", "x"])),
        expression(),
    )
        .prop_map(|(name, e)| match name {
            Some(n) => format!("{n} = {e}"),
            None => e,
        });
    let statements = proptest::collection::vec(statement, 1..5);
    let separator = select(vec!["; ", "\n", ";\n", " # note\n"]);
    let junk = proptest::collection::vec(
        (
            any::<usize>(),
            proptest::collection::vec(junk_char(), 1..4).prop_map(String::from_iter),
        ),
        0..4,
    );
    (statements, separator, junk).prop_map(|(statements, separator, junk)| {
        let mut src = statements.join(separator);
        for (at, text) in junk {
            let mut at = at % (src.len() + 1);
            while !src.is_char_boundary(at) {
                at -= 1;
            }
            src.insert_str(at, &text);
        }
        src
    })
}

/// A random well-formed expression over x, y and earlier statements' names.
fn clean_expression() -> impl Strategy<Value = String> {
    let leaf =
        select(vec!["x", "y", "s0", "0", "2", "0.5", "3.", "7e+2", "1e-3"]).prop_map(String::from);
    leaf.prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                select(vec![" + ", " - ", "*", "/", "^"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            (
                select(vec![
                    "sin", "log", "sqrt", "exp", "tanh", "sigmoid", "abs", "asin"
                ]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (
                select(vec!["max", "atan2", "pow", "hypot", "log"]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.prop_map(|a| format!("-{a}")),
        ]
    })
}

/// Well-formed programs `s0 = ...; s1 = ...; ...; output` (a use of `s0` in the first statement
/// is an error, as it should be).
fn clean_program() -> impl Strategy<Value = String> {
    proptest::collection::vec(clean_expression(), 1..5).prop_map(|expressions| {
        let n = expressions.len();
        expressions
            .into_iter()
            .enumerate()
            .map(|(i, e)| if i + 1 == n { e } else { format!("s{i} = {e}") })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[test]
fn random_well_formed_programs_give_a_report_or_a_clear_error() {
    check(
        || (clean_program(), point()),
        |(src, at)| well_behaved(&src, &at),
    );
}

#[test]
fn random_programs_with_junk_give_a_report_or_a_clear_error() {
    check(
        || (junk_program(), point()),
        |(src, at)| well_behaved(&src, &at),
    );
}

/// A program of `t` statements `t_i = F(A op B)` (F bounded, so every value and partial is
/// finite), and statements `u_j` that the output does not use, each a singular operation at
/// s = 0, inserted before the output: `(with the unused statements, without them)`.
fn with_and_without_unused_branches() -> impl Strategy<Value = (String, String)> {
    let used = proptest::collection::vec(
        (
            select(vec!["sin", "cos", "tanh", "sigmoid"]),
            any::<prop::sample::Index>(),
            select(vec!["+", "-", "*"]),
            any::<prop::sample::Index>(),
        ),
        1..8,
    );
    let unused = proptest::collection::vec(
        (
            select(vec![
                "sqrt(s*{})",
                "log(s*{})",
                "1/(s*{})",
                "asin(s*{} + 2)",
                "atanh(s*{} + 1)",
                "acosh(s*{})",
                "log(-s*{})*{}",
                "({})^-1 * 1/s",
                "sqrt(s) + {}",
                "log(s)",
            ]),
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
        ),
        1..5,
    );
    (used, unused).prop_map(|(used, unused)| {
        let mut statements: Vec<String> = Vec::new();
        let mut names: Vec<String> = vec!["x".into(), "y".into()];
        for (i, (f, a, op, b)) in used.iter().enumerate() {
            let (a, b) = (a.get(&names).clone(), b.get(&names).clone());
            statements.push(format!("t{i} = {f}({a} {op} {b})"));
            names.push(format!("t{i}"));
        }
        let without = statements.join("\n");
        let last = statements.pop().expect("one statement at least");
        let mut with = statements.clone();
        for (j, (template, position, operand)) in unused.iter().enumerate() {
            // Before the output, and after the names it uses.
            let p = position.index(with.len() + 1);
            let defined = 2 + with[..p].iter().filter(|s| s.starts_with('t')).count();
            let operand = operand.get(&names[..defined]);
            with.insert(p, format!("u{j} = {}", template.replace("{}", operand)));
        }
        with.push(last);
        (with.join("\n"), without)
    })
}

/// The derivatives of a JSON report, by variable: (forward, reverse).
fn derivatives(report: &str) -> Vec<(String, Value, Value)> {
    let report: Value = serde_json::from_str(report).expect("valid JSON");
    report["derivatives"]
        .as_array()
        .expect("derivatives")
        .iter()
        .map(|d| {
            (
                d["wrt"].as_str().unwrap_or("").to_string(),
                d["forward"].clone(),
                d["reverse"].clone(),
            )
        })
        .collect()
}

#[test]
fn unused_singular_branches_do_not_change_any_derivative() {
    fn at() -> impl Strategy<Value = Vec<String>> {
        (
            select(vec!["0.7", "-1.3", "2", "0"]),
            select(vec!["0.25", "-2", "1"]),
        )
            .prop_map(|(x, y)| vec![format!("x={x}"), format!("y={y}"), "s=0".to_string()])
    }
    check(
        || (with_and_without_unused_branches(), at()),
        |((with, without), at)| {
            let expected = run(&without, &at, Mode::Both, true);
            prop_assert!(expected.is_ok(), "{without}: {expected:?}");
            let got = run(&with, &at, Mode::Both, true);
            prop_assert!(got.is_ok(), "{with}\nat {at:?}: {}", got.unwrap_err());
            let expected = derivatives(&expected.unwrap_or_default());
            let got = derivatives(&got.unwrap_or_default());
            for (wrt, forward, reverse) in &got {
                match expected.iter().find(|(w, _, _)| w == wrt) {
                    Some((_, f, r)) => {
                        prop_assert!(f.is_number(), "{without}: {f}");
                        prop_assert_eq!(forward, f, "d/d{} forward\n{}", wrt, with);
                        prop_assert_eq!(reverse, r, "d/d{} reverse\n{}", wrt, with);
                    }
                    // s (and a variable only the unused statements use): derivative 0.
                    None => {
                        prop_assert_eq!(forward.as_f64(), Some(0.0), "d/d{}\n{}", wrt, with);
                        prop_assert_eq!(reverse.as_f64(), Some(0.0), "d/d{}\n{}", wrt, with);
                    }
                }
            }
            prop_assert!(got.len() >= expected.len());
            Ok(())
        },
    );
}

#[test]
fn graphs_of_random_programs_are_drawn_or_refused_without_panic() {
    check(
        || (prop_oneof![clean_program(), junk_program()], point()),
        |(src, at)| {
            let args = args(&src, &at, Mode::Both, false);
            if let Ok((ev, sweeps)) = explain(&args, &src) {
                // A picture in one of the three formats, by the program's length; PNG for one
                // small graph in twelve (encoding one takes a tenth of a second or more in a
                // debug build; 1000 cases of them took 30 s).
                let extension = match src.len() % 12 {
                    0 if ev.trace.nodes.len() <= 40 => "png",
                    1 | 4 | 7 | 10 => "dot",
                    _ => "svg",
                };
                let path = std::env::temp_dir().join(format!(
                    "perturb-explain-props-{}.{extension}",
                    std::process::id()
                ));
                let result = super::picture::write(&path, &ev, &sweeps);
                let _ = std::fs::remove_file(&path);
                if let Err(e) = result {
                    let message = e.render(&src);
                    prop_assert!(message.starts_with("--graph: "), "{message}");
                }
            }
            Ok(())
        },
    );
}
