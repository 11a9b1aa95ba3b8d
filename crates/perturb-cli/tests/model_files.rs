//! Model files across versions, and what `perturb eval` reports of a classifier: files written by
//! the CLI's first format (`tests/fixtures/`, see its README) still load and predict exactly what
//! they predicted when they were written; `eval` prints the accuracy and the confusion matrix.

use std::path::{Path, PathBuf};

mod support;
use support::{perturb, stderr, stdout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn success(args: &[&str]) -> String {
    let out = perturb(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn old_model_files_predict_what_they_predicted_when_written() {
    for (model, data) in [("old-mlp-iris", "iris"), ("old-mlp-diabetes", "diabetes")] {
        let file = fixture(&format!("{model}.safetensors"));
        let printed = success(&["predict", "--model", file.to_str().unwrap(), "--data", data]);
        // The regression's predictions are printed in the shortest round-trip form: equal text
        // is equal f64 values, bit for bit.
        let expected = std::fs::read_to_string(fixture(&format!("{model}.predict.txt"))).unwrap();
        assert_eq!(printed, expected, "{model}");
    }
    let file = fixture("old-mlp-diabetes.safetensors");
    let text = success(&[
        "eval",
        "--model",
        file.to_str().unwrap(),
        "--data",
        "diabetes",
    ]);
    assert_eq!(text, "442 rows: MSE 3819.0136, R^2 0.3560\n");
}

#[test]
fn eval_prints_the_confusion_matrix_of_a_classifier() {
    let file = fixture("old-mlp-iris.safetensors");
    let text = success(&["eval", "--model", file.to_str().unwrap(), "--data", "iris"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "150 rows: accuracy 97.33%", "{text}");
    assert!(
        lines[1].starts_with("confusion matrix (rows: the true class"),
        "{text}"
    );
    let header: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(header, ["true\\pred", "0", "1", "2"], "{text}");
    let rows: Vec<Vec<usize>> = lines[3..6]
        .iter()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            fields[1..].iter().map(|n| n.parse().unwrap()).collect()
        })
        .collect();
    // Iris has 50 flowers of each species: each row sums to 50; the diagonal is the 97.33%
    // accuracy (146 of 150).
    for row in &rows {
        assert_eq!(row.iter().sum::<usize>(), 50, "{text}");
    }
    assert_eq!(rows[0][0] + rows[1][1] + rows[2][2], 146, "{text}");
    // The columns line up: every line of the matrix has the header's width.
    assert!(
        lines[2..6].iter().all(|l| l.len() == lines[2].len()),
        "{text}"
    );
    assert_eq!(lines.len(), 6, "{text}");
}

#[test]
fn a_binary_classifier_gets_a_two_by_two_matrix() {
    let dir = support::scratch("binary");
    let out = dir.to_str().unwrap();
    success(&["train", "--epochs", "200", "--out", out]);
    let model = dir.join("model.safetensors");
    let text = success(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        "two-moons",
    ]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    let counts: Vec<usize> = lines[3..]
        .iter()
        .flat_map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|n| n.parse::<usize>().unwrap())
        })
        .collect();
    // Two moons of 200 points: 100 of each class.
    assert_eq!(counts[0] + counts[1], 100, "{text}");
    assert_eq!(counts[2] + counts[3], 100, "{text}");
    let accuracy: f64 = lines[0]
        .split("accuracy ")
        .nth(1)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert_eq!(
        format!("{:.2}", 100.0 * (counts[0] + counts[3]) as f64 / 200.0),
        format!("{accuracy:.2}")
    );
    std::fs::remove_dir_all(&dir).ok();
}
