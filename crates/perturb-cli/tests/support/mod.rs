//! Helpers shared by the end-to-end tests of `perturb train`, `eval` and `predict`
//! (`train.rs`, `trust.rs`, `pictures.rs`).

// Each test file uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty scratch folder for one test, named after the test file and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "perturb-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `perturb` in `dir` (where `perturb train` writes `perturb-out/` unless told otherwise).
pub fn perturb_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// Bytes of output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
