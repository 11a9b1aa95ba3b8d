//! Helpers shared by the end-to-end tests of the `perturb` program (`train.rs`, `trust.rs`,
//! `pictures.rs`, and the `explain*.rs` files).

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

/// Runs `perturb` with `args` in the test's own folder.
pub fn perturb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// The standard output, which must be UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// The standard error, which must be UTF-8.
pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("UTF-8 errors")
}

/// `n` images of 4x4 pixels as CSV rows (16 pixel columns, then the label): a bright 2x2 blob
/// in the top half (label 0) or the bottom half (label 1), anywhere across, on noise. A pixel
/// model sees the blob's column change from image to image; the pooled convolution does not.
pub fn blobs(n: usize, seed: u64) -> String {
    let mut state = seed;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text: String = (0..16).map(|i| format!("p{i},")).collect();
    text.push_str("label\n");
    for k in 0..n {
        let label = k % 2;
        let row = 2 * label;
        let col = (uniform() * 3.0) as usize;
        let mut pixels = [0.0; 16];
        for (i, p) in pixels.iter_mut().enumerate() {
            *p = 0.2 * uniform();
            let (r, c) = (i / 4, i % 4);
            if (row..row + 2).contains(&r) && (col..col + 2).contains(&c) {
                *p += 1.0;
            }
        }
        for p in pixels {
            text.push_str(&format!("{p},"));
        }
        text.push_str(&format!("{label}\n"));
    }
    text
}

/// The f64 tensors of a safetensors file (a model or checkpoint), by name.
pub fn f64_tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name, values)
        })
        .collect()
}

/// The largest difference between two models' values (the same tensors by name and size).
pub fn max_difference(a: &Path, b: &Path) -> f64 {
    let (a, b) = (f64_tensors(a), f64_tensors(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the models hold other tensors"
    );
    a.iter()
        .flat_map(|(name, u)| {
            assert_eq!(u.len(), b[name].len(), "{name}");
            u.iter().zip(&b[name]).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f64::max)
}

/// The digits MLP, briefly, with Adam and batches of 50 (the last batch of an epoch is short,
/// and 3 ranks share 50 rows unevenly): the run of the data-parallel tests, without --epochs.
pub const DIGITS_MLP: &[&str] = &[
    "train",
    "--data",
    "digits",
    "--hidden",
    "16",
    "--optimizer",
    "adam",
    "--lr",
    "0.01",
    "--batch-size",
    "50",
];
