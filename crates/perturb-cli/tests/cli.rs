//! The `perturb` program end to end: the default run, and bad arguments.

use std::process::Command;

fn perturb(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn with_no_arguments_it_prints_the_lecture_examples_in_both_modes() {
    let out = perturb(&[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // d/dx log(x^2) = 2/x at the default x = 0.7 is 2.857142857...
    let row = text
        .lines()
        .find(|l| l.starts_with("d/dx log(x^2)"))
        .expect("the log row");
    assert_eq!(
        row.matches("2.857142857").count(),
        3,
        "forward, reverse and exact: {row}"
    );
    assert!(text.contains("dL/dx from one reverse sweep"));
    assert!(text.contains("largest relative difference from the exact values"));
}

#[test]
fn the_lecture_subcommand_takes_the_point() {
    let out = perturb(&["lecture", "--x", "2", "--w", "-1"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // 2/x at x = 2 is 1; dc/da = 10a with a = x^2 = 4 is 40.
    let row = text
        .lines()
        .find(|l| l.starts_with("d/dx log(x^2)"))
        .unwrap();
    assert_eq!(row.matches("1.000000000").count(), 3, "{row}");
    let row = text.lines().find(|l| l.starts_with("dc/da")).unwrap();
    assert_eq!(row.matches("40.000000000").count(), 3, "{row}");
}

#[test]
fn a_point_outside_the_domain_is_a_clear_error() {
    let out = perturb(&["lecture", "--x", "0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--x must be non-zero"), "{err}");
}

#[test]
fn a_malformed_argument_is_a_clear_error() {
    let out = perturb(&["lecture", "--x", "seven"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--x") && err.contains("seven"), "{err}");
    let out = perturb(&["no-such-command"]);
    assert!(!out.status.success());
}
