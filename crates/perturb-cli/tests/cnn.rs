//! `perturb train --model cnn` end to end on small square images, and the checks made before
//! training: data that are not square images, options of the MLP, a checkpoint interval of 0.

use std::path::Path;

mod support;
use support::{blobs, perturb_in, scratch, stderr, stdout};

fn run(dir: &Path, args: &[&str]) -> String {
    let out = perturb_in(dir, args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

fn failure(dir: &Path, args: &[&str]) -> String {
    let out = perturb_in(dir, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn the_cnn_learns_square_images_and_its_model_file_is_applied_again() {
    let dir = scratch("blobs");
    std::fs::write(dir.join("blobs.csv"), blobs(120, 1)).unwrap();
    let text = run(
        &dir,
        &[
            "train",
            "--data",
            "blobs.csv",
            "--model",
            "cnn",
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--out",
            "run",
        ],
    );
    // The CNN's defaults: Adam at 0.01 (not the lecture's gradient descent at 1).
    assert!(
        text.contains("cnn 4x4 -> conv 32 -> conv 64 -> 1, Adam at lr 0.01, 30 epochs"),
        "{text}"
    );
    let test = text
        .lines()
        .find(|l| l.trim_start().starts_with("test"))
        .unwrap();
    let accuracy: f64 = test
        .split("accuracy")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    // Measured 100% on the 30 held-out images; a blob of 1 on noise of at most 0.2 is found
    // by any working convolution.
    assert!(accuracy >= 90.0, "{text}");
    let eval = run(
        &dir,
        &[
            "eval",
            "--model",
            "run/model.safetensors",
            "--data",
            "blobs.csv",
        ],
    );
    assert!(eval.starts_with("120 rows: accuracy"), "{eval}");
    assert!(eval.contains("true\\pred"), "{eval}");
    let predicted = run(
        &dir,
        &[
            "predict",
            "--model",
            "run/model.safetensors",
            "--data",
            "blobs.csv",
        ],
    );
    assert_eq!(predicted.lines().count(), 120);
    assert!(
        predicted.lines().all(|l| l == "0" || l == "1"),
        "{predicted}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn what_the_cnn_cannot_take_is_refused_before_training() {
    let dir = scratch("refused");
    for (args, expected) in [
        (
            vec!["train", "--data", "iris", "--model", "cnn"],
            "4 features, a 2x2 image",
        ),
        (
            vec!["train", "--data", "breast_cancer", "--model", "cnn"],
            "30 features, not a square number",
        ),
        (
            vec![
                "train", "--data", "digits", "--model", "cnn", "--hidden", "8",
            ],
            "--hidden is an option of --model mlp",
        ),
        (
            vec![
                "train",
                "--data",
                "digits",
                "--model",
                "cnn",
                "--activation",
                "tanh",
            ],
            "--activation is an option of --model mlp",
        ),
        (
            vec!["train", "--checkpoint-every", "0"],
            "--checkpoint-every must be at least 1",
        ),
        (
            vec!["train", "--epochs", "5", "--checkpoint-every", "6"],
            "--checkpoint-every 6 is more than the 5 epochs of the run",
        ),
        (
            vec![
                "train",
                "--data",
                "digits",
                "--model",
                "cnn",
                "--checkpoint-every",
                "11",
            ],
            "more than the 10 epochs",
        ),
    ] {
        let err = failure(&dir, &args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // Nothing was written: the checks come before training.
    assert!(!dir.join("perturb-out/model.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}
