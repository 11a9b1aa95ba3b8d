//! `--checkpoint-every N` and `--resume DIR`: a run stopped after k epochs and resumed to 2k
//! ends with exactly the weights of a run of 2k epochs straight (compared bit for bit, for the
//! MLP and the CNN, with Adam, whose state the checkpoint must carry); and a checkpoint that is
//! missing, corrupt or of another run is refused before training, naming the difference.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::SafeTensors;

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

/// The tensors of a safetensors file, as the bits of their values, by name.
fn tensor_bits(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<u64>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let bits = view
                .data()
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, (view.shape().to_vec(), bits))
        })
        .collect()
}

/// Trains `options` for 2k epochs straight, and for k epochs with a checkpoint then resumed to
/// 2k; the two final models must hold the same tensors, bit for bit.
fn stopped_and_resumed_equals_straight(dir: &Path, options: &[&str], k: usize) {
    let (k, twice) = (k.to_string(), (2 * k).to_string());
    fn with<'a>(options: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["train"];
        args.extend_from_slice(options);
        args.extend_from_slice(extra);
        args
    }
    run(
        dir,
        &with(options, &["--epochs", &twice, "--out", "straight"]),
    );
    let first = run(
        dir,
        &with(
            options,
            &["--epochs", &k, "--checkpoint-every", &k, "--out", "first"],
        ),
    );
    let named = Path::new("first").join("checkpoint").display().to_string();
    assert!(
        first.contains(&format!("{named}  the checkpoint")),
        "{first}"
    );
    assert!(dir
        .join("first/checkpoint/checkpoint.safetensors")
        .is_file());
    let text = run(
        dir,
        &with(
            options,
            &[
                "--epochs",
                &twice,
                "--resume",
                "first/checkpoint",
                "--out",
                "resumed",
            ],
        ),
    );
    assert!(
        text.contains(&format!("resuming after epoch {k}")),
        "{text}"
    );
    let straight = tensor_bits(&dir.join("straight/model.safetensors"));
    let resumed = tensor_bits(&dir.join("resumed/model.safetensors"));
    assert!(!straight.is_empty());
    assert_eq!(straight, resumed, "{options:?}");
    // The k epochs moved the weights: equal because resumed, not because nothing happened.
    let halfway = tensor_bits(&dir.join("first/model.safetensors"));
    assert_ne!(straight, halfway);
}

#[test]
fn an_mlp_stopped_and_resumed_ends_with_the_weights_of_a_straight_run() {
    let dir = scratch("mlp");
    let options = [
        "--data",
        "iris",
        "--hidden",
        "8",
        "--activation",
        "tanh",
        "--optimizer",
        "adam",
        "--lr",
        "0.05",
        "--batch-size",
        "16",
        "--seed",
        "4",
    ];
    stopped_and_resumed_equals_straight(&dir, &options, 5);
    // Momentum's velocity travels in the checkpoint too.
    let options = [
        "--data",
        "iris",
        "--hidden",
        "4",
        "--optimizer",
        "sgd",
        "--batch-size",
        "32",
    ];
    stopped_and_resumed_equals_straight(&dir, &options, 3);
    // A checkpoint written by a longer run (as one killed after its epoch 2 would leave):
    // that run planned 3 epochs, checkpointed after 2; resumed to 4, it ends as 4 straight.
    let adam = [
        "--data",
        "iris",
        "--hidden",
        "6",
        "--optimizer",
        "adam",
        "--batch-size",
        "40",
    ];
    let args = |extra: &[&'static str]| -> Vec<&str> {
        std::iter::once("train")
            .chain(adam)
            .chain(extra.iter().copied())
            .collect()
    };
    run(&dir, &args(&["--epochs", "4", "--out", "straight4"]));
    run(
        &dir,
        &args(&[
            "--epochs",
            "3",
            "--checkpoint-every",
            "2",
            "--out",
            "planned3",
        ]),
    );
    let text = run(
        &dir,
        &args(&["--epochs", "4", "--resume", "planned3", "--out", "resumed4"]),
    );
    assert!(text.contains("resuming after epoch 2 "), "{text}");
    assert_eq!(
        tensor_bits(&dir.join("straight4/model.safetensors")),
        tensor_bits(&dir.join("resumed4/model.safetensors"))
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_cnn_stopped_and_resumed_ends_with_the_weights_of_a_straight_run() {
    let dir = scratch("cnn");
    std::fs::write(dir.join("blobs.csv"), blobs(48, 2)).unwrap();
    let options = [
        "--data",
        "blobs.csv",
        "--model",
        "cnn",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
    ];
    stopped_and_resumed_equals_straight(&dir, &options, 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cosine_decay_changes_the_steps_and_is_part_of_the_run_a_checkpoint_records() {
    let dir = scratch("cosine");
    let base = [
        "train",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--optimizer",
        "adam",
        "--batch-size",
        "32",
    ];
    let with =
        |extra: &[&'static str]| -> Vec<&str> { base.iter().chain(extra).copied().collect() };
    run(
        &dir,
        &with(&["--out", "constant", "--checkpoint-every", "2"]),
    );
    run(&dir, &with(&["--out", "cosine", "--cosine"]));
    assert_ne!(
        tensor_bits(&dir.join("constant/model.safetensors")),
        tensor_bits(&dir.join("cosine/model.safetensors")),
        "--cosine left every step's rate as it was"
    );
    let err = failure(
        &dir,
        &with(&[
            "--cosine", "--epochs", "4", "--resume", "constant", "--out", "r",
        ]),
    );
    assert!(err.contains("cosine"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_that_is_missing_corrupt_or_of_another_run_is_refused_before_training() {
    let dir = scratch("refused");
    let base = [
        "train",
        "--data",
        "iris",
        "--hidden",
        "4",
        "--optimizer",
        "adam",
        "--seed",
        "1",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let fails = |extra: &[&str]| -> String {
        let args = with(extra);
        failure(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let args = with(&["--epochs", "4", "--checkpoint-every", "2", "--out", "run"]);
    run(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let file = dir.join("run/checkpoint/checkpoint.safetensors");
    assert!(file.is_file());

    // Missing: no folder, a folder without a checkpoint, a file.
    let err = fails(&["--epochs", "8", "--resume", "nowhere"]);
    assert!(err.contains("--resume nowhere: no such folder"), "{err}");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let err = fails(&["--epochs", "8", "--resume", "empty"]);
    assert!(
        err.contains("no checkpoint.safetensors in the folder"),
        "{err}"
    );
    let err = fails(&["--epochs", "8", "--resume", "run/model.safetensors"]);
    assert!(err.contains("is a file"), "{err}");

    // Another run: each difference is named, with both values.
    let err = fails(&["--epochs", "8", "--lr", "0.5", "--resume", "run/checkpoint"]);
    assert!(err.contains("the checkpoint is of another run"), "{err}");
    assert!(
        err.contains("--lr 0.01 in the checkpoint, 0.5 here"),
        "{err}"
    );
    let err = failure(
        &dir,
        &[
            "train",
            "--data",
            "iris",
            "--hidden",
            "5",
            "--optimizer",
            "adam",
            "--seed",
            "2",
            "--epochs",
            "8",
            "--resume",
            "run",
        ],
    );
    assert!(
        err.contains("--seed 1 in the checkpoint, 2 here")
            && err.contains("--hidden 4 in the checkpoint, 5 here"),
        "{err}"
    );
    let err = failure(
        &dir,
        &[
            "train", "--data", "iris", "--model", "cnn", "--resume", "run",
        ],
    );
    // (iris is not an image: that is found first, before the checkpoint is read.)
    assert!(err.contains("square images"), "{err}");
    let err = failure(
        &dir,
        &[
            "train",
            "--data",
            "breast_cancer",
            "--hidden",
            "4",
            "--optimizer",
            "adam",
            "--seed",
            "1",
            "--epochs",
            "8",
            "--resume",
            "run",
        ],
    );
    assert!(
        err.contains("--data iris in the checkpoint, breast_cancer here")
            && err.contains("the data differ"),
        "{err}"
    );
    // The same file name with other rows: only the data are named.
    std::fs::write(dir.join("b.csv"), blobs(40, 3)).unwrap();
    run(
        &dir,
        &[
            "train",
            "--data",
            "b.csv",
            "--epochs",
            "2",
            "--checkpoint-every",
            "1",
            "--out",
            "b",
        ],
    );
    // The same file spelled another way (`./b.csv`, or by its full path): the data's
    // fingerprint agrees, so it is the same run and it resumes (it was refused with "--data
    // b.csv in the checkpoint, ./b.csv here").
    let full = dir.join("b.csv").to_string_lossy().into_owned();
    for (spelling, out) in [("./b.csv", "b2"), (full.as_str(), "b3")] {
        run(
            &dir,
            &[
                "train",
                "--data",
                spelling,
                "--epochs",
                "3",
                "--resume",
                "b/checkpoint",
                "--out",
                out,
            ],
        );
    }
    std::fs::write(dir.join("b.csv"), blobs(41, 3)).unwrap();
    let err = failure(
        &dir,
        &[
            "train",
            "--data",
            "b.csv",
            "--epochs",
            "4",
            "--resume",
            "b/checkpoint",
        ],
    );
    assert!(
        err.contains("the data differ from the checkpoint's"),
        "{err}"
    );
    assert!(!err.contains("in the checkpoint,"), "{err}"); // no option differs

    // Nothing left to do.
    let err = fails(&["--epochs", "4", "--resume", "run/checkpoint"]);
    assert!(
        err.contains("has done 4 epochs") && err.contains("--epochs 4"),
        "{err}"
    );

    // Corrupt: truncated, or not a checkpoint at all.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::create_dir_all(dir.join("cut")).unwrap();
    std::fs::write(
        dir.join("cut/checkpoint.safetensors"),
        &bytes[..bytes.len() - 100],
    )
    .unwrap();
    let err = fails(&["--epochs", "8", "--resume", "cut"]);
    assert!(
        err.contains("is not a valid safetensors file (corrupt or truncated?)"),
        "{err}"
    );
    std::fs::create_dir_all(dir.join("model")).unwrap();
    std::fs::copy(
        dir.join("run/model.safetensors"),
        dir.join("model/checkpoint.safetensors"),
    )
    .unwrap();
    let err = fails(&["--epochs", "8", "--resume", "model"]);
    assert!(
        err.contains("model/checkpoint.safetensors is not a checkpoint of perturb train"),
        "{err}"
    );

    // A checkpoint folder that cannot be one is found before training.
    std::fs::create_dir_all(dir.join("blocked")).unwrap();
    std::fs::write(dir.join("blocked/checkpoint"), b"a file").unwrap();
    let err = fails(&[
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
        "--out",
        "blocked",
    ]);
    assert!(
        err.contains("is a file; the checkpoints go to a folder"),
        "{err}"
    );
    assert!(!dir.join("blocked/model.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of the checkpoint `from` in the folder `to`, with the metadata entries `edits` set
/// (a key `tensor NAME` sets that tensor's shape to the JSON `value` instead).
fn edited_checkpoint(from: &Path, to: &Path, edits: &[(&str, &str)]) {
    let bytes = std::fs::read(from).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    for (key, value) in edits {
        match key.strip_prefix("tensor ") {
            Some(name) => header[name]["shape"] = serde_json::from_str(value).unwrap(),
            None => header["__metadata__"][*key] = serde_json::Value::from(*value),
        }
    }
    let text = header.to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::create_dir_all(to).unwrap();
    std::fs::write(to.join("checkpoint.safetensors"), out).unwrap();
}

/// A checkpoint whose counters and records cannot all be true (a damaged or edited file) was
/// resumed as if they were, each a silent wrong answer or a panic; each is now refused before
/// training, naming the entry. Was, on iris in 4 full-batch epochs (4 steps) with Adam:
/// - the step `u64::MAX`: "attempt to add with overflow" at the first step (a debug build;
///   the count wrapped to 0 in a release build);
/// - the optimiser's step count 0 or 1000000 (Adam's bias correction restarted or skipped):
///   other weights than the straight run's, with "the weights are exactly those of an
///   uninterrupted run" promised;
/// - the epoch 0 with the weights of epoch 4: 8 more epochs, run silently from "epoch 0",
///   with a loss history of 12 points;
/// - a loss history longer than the epochs done, or with points ahead of them: drawn as is;
/// - the best step past the steps taken, or not a whole number (`1e300` became
///   18446744073709551615);
/// - the first loss NaN: the trained model was not saved, "the final training loss is
///   higher than the first (NaN)";
/// - best weights of another shape than the model's (`[1, 3]` for a bias `[3]`, the same
///   bytes): found only after training, by the failed run's save ("Network::with_params:
///   layers.2.bias has shape [1, 3], expected [3]"), the trained weights lost.
#[test]
fn a_checkpoint_whose_counters_disagree_is_refused_before_training() {
    let dir = scratch("counters");
    fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let base = [
            "train",
            "--data",
            "iris",
            "--hidden",
            "4",
            "--optimizer",
            "adam",
        ];
        base.into_iter().chain(extra.iter().copied()).collect()
    }
    run(
        &dir,
        &args(&["--epochs", "4", "--checkpoint-every", "4", "--out", "run"]),
    );
    let file = dir.join("run/checkpoint/checkpoint.safetensors");
    // The untouched checkpoint resumes (the edits below are what is refused).
    edited_checkpoint(&file, &dir.join("same"), &[]);
    let text = run(
        &dir,
        &args(&["--epochs", "5", "--resume", "same", "--out", "same-out"]),
    );
    assert!(text.contains("resuming after epoch 4 (step 4)"), "{text}");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("perturb.step", "18446744073709551615")], "perturb.step"),
        (&[("perturb.step", "5")], "perturb.step"),
        (
            &[("perturb.optimizer.steps", "0")],
            "perturb.optimizer.steps",
        ),
        (
            &[("perturb.optimizer.steps", "1000000")],
            "perturb.optimizer.steps",
        ),
        (&[("perturb.epoch", "0")], "perturb.step"),
        (
            &[
                ("perturb.epoch", "2"),
                ("perturb.step", "2"),
                ("perturb.optimizer.steps", "2"),
            ],
            "history.train",
        ),
        (&[("history.train", "1:1,2:1,3:1,4:1,5:1")], "history.train"),
        (&[("history.train", "1:1,2:1,3:1,5:1")], "history.train"),
        (&[("history.test", "1:1,2:1,3:1,9:1")], "history.test"),
        (&[("best_step", "5")], "best_step"),
        (&[("best_step", "1e300")], "best_step"),
        (&[("best_loss", "NaN")], "best_loss"),
        (&[("first_loss", "NaN")], "first_loss"),
        (
            &[
                ("tensor extra.best.layers.2.bias", "[1, 3]"),
                ("first_loss", "1e-4"),
                ("best_loss", "1e-5"),
            ],
            "best.layers.2.bias",
        ),
    ];
    for (k, (edits, named)) in cases.iter().enumerate() {
        let folder = format!("edit{k}");
        edited_checkpoint(&file, &dir.join(&folder), edits);
        let out = format!("out{k}");
        let err = failure(
            &dir,
            &args(&["--epochs", "8", "--resume", &folder, "--out", &out]),
        );
        assert!(
            err.contains(&format!("--resume {folder}")) && err.contains(named),
            "{edits:?}: {err}"
        );
        // Refused before training: nothing written.
        assert!(
            !dir.join(&out).join("model.safetensors").exists(),
            "{edits:?}"
        );
        assert!(
            !dir.join(&out).join("failed-run.safetensors").exists(),
            "{edits:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A checkpoint given to `eval` or `predict` as the model was refused with "perturb: eval:
/// the metadata has no 'model': not a model saved by perturb train": no file named, and
/// wrong (perturb train saved it), with no word of what it is or what to give instead.
#[test]
fn a_checkpoint_given_as_a_model_is_named_as_a_checkpoint() {
    let dir = scratch("as-model");
    run(
        &dir,
        &[
            "train",
            "--data",
            "iris",
            "--hidden",
            "4",
            "--epochs",
            "2",
            "--checkpoint-every",
            "2",
            "--out",
            "run",
        ],
    );
    let file = Path::new("run")
        .join("checkpoint")
        .join("checkpoint.safetensors");
    let file = file.to_str().unwrap();
    for command in ["eval", "predict"] {
        let err = failure(&dir, &[command, "--model", file, "--data", "iris"]);
        assert!(
            err.contains(&format!("{file} is a checkpoint of perturb train"))
                && err.contains("--resume")
                && err.contains("model.safetensors"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
