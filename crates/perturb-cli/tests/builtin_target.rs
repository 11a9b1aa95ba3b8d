//! `perturb train --target` on a built-in data set (hunt 3): the named column is the target,
//! as it is for a CSV file, and a name the data set does not have is an error.

mod support;
use support::{perturb_in, stderr};

/// The metadata of a model file: its header's `__metadata__`.
fn metadata(path: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"].clone()
}

/// Found by hunt 3: `--target` was read only for CSV files. `--data iris --target
/// sepal_length_cm --task regression` trained a regression of the species (the data set's own
/// target) on the four measurements and saved it as such, with no word; `--target nonexistent`
/// trained too.
#[test]
fn target_names_a_column_of_a_built_in_data_set() {
    let dir = support::scratch("builtin-target");
    let out = perturb_in(
        &dir,
        &[
            "train",
            "--data",
            "iris",
            "--target",
            "sepal_length_cm",
            "--task",
            "regression",
            "--epochs",
            "2",
            "--out",
            "run",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let meta = metadata(&dir.join("run/model.safetensors"));
    assert_eq!(meta["target_name"], "sepal_length_cm", "{meta}");
    let names: Vec<String> = serde_json::from_str(meta["feature_names"].as_str().unwrap()).unwrap();
    assert_eq!(
        names,
        [
            "sepal_width_cm",
            "petal_length_cm",
            "petal_width_cm",
            "species"
        ],
        "the other columns, the data set's target last"
    );
    // The model applies to the data set it was trained on, columns matched by name.
    let eval = perturb_in(
        &dir,
        &["eval", "--model", "run/model.safetensors", "--data", "iris"],
    );
    assert!(eval.status.success(), "{}", stderr(&eval));

    let out = perturb_in(
        &dir,
        &[
            "train", "--data", "iris", "--target", "petal", "--epochs", "2", "--out", "bad",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("--target petal") && err.contains("iris has no such column"),
        "{err}"
    );
    assert!(err.contains("sepal_length_cm, sepal_width_cm"), "{err}");
    assert!(!dir.join("bad/model.safetensors").exists());
    std::fs::remove_dir_all(&dir).ok();
}
