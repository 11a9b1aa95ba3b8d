//! `mpirun -n N perturb train ...` (a build with `--features mpi`) on the real MPI of this
//! machine: 2 and 3 MPI ranks end with the weights of one process (to 1e-12) and with those of
//! as many thread ranks (bit for bit: the same summation order); ranks given different runs
//! all stop with the difference named; a rank killed mid-run ends the job within a bounded
//! time and leaves no model file.
#![cfg(feature = "mpi")]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod support;
use support::{max_difference, perturb_in, scratch, stderr, stdout, DIGITS_MLP};

/// The digits MLP for 3 epochs.
fn three_epochs() -> Vec<&'static str> {
    with(DIGITS_MLP, &["--epochs", "3"])
}

/// `mpirun` with `args` (after `-n N` or an MPMD line), in `dir`.
fn mpirun(dir: &Path, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "mpirun could not be started ({e}): install an MPI (bash scripts/install-deps.sh)"
            )
        })
}

fn with<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

#[test]
fn mpi_ranks_end_with_the_weights_of_one_process_and_of_thread_ranks() {
    let dir = scratch("mpi-equal");
    let bin = env!("CARGO_BIN_EXE_perturb");
    let one = perturb_in(&dir, &with(&three_epochs(), &["--out", "one"]));
    assert!(one.status.success(), "{}", stderr(&one));
    for ranks in ["2", "3"] {
        let out = format!("mpi{ranks}");
        let run = mpirun(
            &dir,
            &with(
                &["-n", ranks, bin],
                &with(&three_epochs(), &["--out", &out]),
            ),
        );
        assert!(run.status.success(), "mpirun -n {ranks}: {}", stderr(&run));
        let shown = stdout(&run);
        assert_eq!(
            shown
                .matches(&format!("data-parallel on {ranks} ranks"))
                .count(),
            1,
            "{shown}"
        );
        let model = dir.join(&out).join("model.safetensors");
        let d = max_difference(&dir.join("one/model.safetensors"), &model);
        assert!(d <= 1e-12, "{ranks} MPI ranks: the weights differ by {d}");

        let threads = format!("t{ranks}");
        let run = perturb_in(
            &dir,
            &with(&three_epochs(), &["--ranks", ranks, "--out", &threads]),
        );
        assert!(run.status.success(), "{}", stderr(&run));
        let d = max_difference(&dir.join(&threads).join("model.safetensors"), &model);
        assert_eq!(d, 0.0, "{ranks} MPI ranks against {ranks} thread ranks");
    }
}

#[test]
fn ranks_given_different_runs_all_stop_naming_the_difference() {
    let dir = scratch("mpi-mismatch");
    let bin = env!("CARGO_BIN_EXE_perturb");
    let base = DIGITS_MLP;
    let mut args = vec!["-n", "1", bin];
    args.extend_from_slice(base);
    args.extend_from_slice(&["--epochs", "3", "--seed", "1", ":", "-n", "1", bin]);
    args.extend_from_slice(base);
    args.extend_from_slice(&["--epochs", "3", "--seed", "2"]);
    let run = mpirun(&dir, &args);
    assert!(!run.status.success());
    let err = stderr(&run);
    // Both ranks say it.
    assert_eq!(
        err.matches("--seed 1 on rank 0, 2 on rank 1").count(),
        2,
        "{err}"
    );
    assert!(err.contains("the data differ from rank 0's"), "{err}");
    assert!(!dir.join("perturb-out/model.safetensors").exists());
}

#[test]
fn a_rank_killed_mid_run_ends_the_job_and_leaves_no_model() {
    let dir = scratch("mpi-killed");
    let bin = env!("CARGO_BIN_EXE_perturb");
    // A run of minutes; rank 1 is killed (SIGKILL) after 3 seconds.
    let long = with(DIGITS_MLP, &["--epochs", "100000", "--out", "run"]);
    let rank1 = format!("{bin} {} & sleep 3; kill -9 $!; wait $!", long.join(" "));
    let mut args = vec!["-n", "1", bin];
    args.extend_from_slice(&long);
    args.extend_from_slice(&[":", "-n", "1", "sh", "-c", &rank1]);
    let start = Instant::now();
    let run = mpirun(&dir, &args);
    let took = start.elapsed();
    assert!(!run.status.success(), "{}", stdout(&run));
    assert!(
        took < Duration::from_secs(60),
        "the job took {took:?} to end"
    );
    assert!(!dir.join("run/model.safetensors").exists());
}
