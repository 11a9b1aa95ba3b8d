//! `perturb train --ranks N`: data-parallel training on thread ranks ends with the weights of
//! the single-process run (to 1e-12), prints once, resumes from a checkpoint as an
//! uninterrupted run does (bit for bit), and refuses what cannot work.

use std::path::Path;

mod support;
use support::{max_difference, perturb_in, scratch, stderr, stdout, DIGITS_MLP};

/// Trains [`DIGITS_MLP`] with `extra` options (3 epochs unless they say otherwise).
fn train(dir: &Path, extra: &[&str]) -> String {
    let epochs: &[&str] = if extra.contains(&"--epochs") {
        &[]
    } else {
        &["--epochs", "3"]
    };
    let args: Vec<&str> = DIGITS_MLP
        .iter()
        .chain(epochs)
        .chain(extra)
        .copied()
        .collect();
    let out = perturb_in(dir, &args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn thread_ranks_end_with_the_weights_of_one_process_and_print_once() {
    let dir = scratch("ranks-equal");
    train(&dir, &["--out", "one"]);
    for ranks in ["2", "3"] {
        let out = format!("r{ranks}");
        let shown = train(&dir, &["--ranks", ranks, "--out", &out]);
        assert_eq!(shown.matches("data-parallel on").count(), 1, "{shown}");
        assert_eq!(shown.matches("trained. metrics").count(), 1, "{shown}");
        let model = dir.join(&out).join("model.safetensors");
        let d = max_difference(&dir.join("one/model.safetensors"), &model);
        assert!(d <= 1e-12, "{ranks} ranks: the weights differ by {d}");
    }
}

#[test]
fn thread_ranks_resume_from_a_checkpoint_as_an_uninterrupted_run() {
    let dir = scratch("ranks-resume");
    let epochs = |n: &'static str| ["--ranks", "2", "--epochs", n];
    let straight: Vec<&str> = epochs("4")
        .into_iter()
        .chain(["--out", "straight"])
        .collect();
    train(&dir, &straight);
    let first: Vec<&str> = epochs("2")
        .into_iter()
        .chain(["--checkpoint-every", "2", "--out", "part"])
        .collect();
    train(&dir, &first);
    let resumed: Vec<&str> = epochs("4")
        .into_iter()
        .chain(["--resume", "part/checkpoint", "--out", "part"])
        .collect();
    let shown = train(&dir, &resumed);
    assert!(shown.contains("resuming after epoch 2"), "{shown}");
    let d = max_difference(
        &dir.join("straight/model.safetensors"),
        &dir.join("part/model.safetensors"),
    );
    assert_eq!(d, 0.0, "resumed on 2 ranks differs from straight by {d}");
}

#[test]
fn zero_ranks_and_ranks_under_mpirun_are_refused() {
    let dir = scratch("ranks-refused");
    let out = perturb_in(&dir, &["train", "--ranks", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--ranks must be at least 1"),
        "{}",
        stderr(&out)
    );

    // What MPICH's launcher sets for a process of a 2-process job.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(["train", "--ranks", "2", "--epochs", "1"])
        .current_dir(&dir)
        .env("PMI_SIZE", "2")
        .env("PMI_RANK", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("drop --ranks"), "{}", stderr(&out));
    assert!(!dir.join("perturb-out").exists());
}

/// Found by hunt 3: `--ranks 100000` started thread after thread until the system refused one
/// its signal stack, and the program aborted ("failed to set up alternative stack guard page",
/// exit status 134), with nothing saved and no error of its own. Refused before any thread
/// starts now.
#[test]
fn more_thread_ranks_than_the_limit_are_refused_before_starting() {
    let dir = scratch("ranks-many");
    let out = perturb_in(&dir, &["train", "--ranks", "100000", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--ranks 100000: at most 1024 thread ranks"),
        "{err}"
    );
    assert!(!dir.join("perturb-out").exists());
}

/// Without the feature, copies started by mpirun would each train alone and overwrite each
/// other's files: refused.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_several_mpi_processes() {
    let dir = scratch("ranks-no-mpi");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_perturb"))
        .args(["train", "--epochs", "1"])
        .current_dir(&dir)
        .env("OMPI_COMM_WORLD_SIZE", "4")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("built without MPI") && err.contains("--features mpi"),
        "{err}"
    );
    assert!(!dir.join("perturb-out").exists());
}
