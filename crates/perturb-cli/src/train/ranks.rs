//! Where `perturb train` runs: one rank, `--ranks N` thread ranks, or one process of an MPI
//! job (`mpirun -n N perturb train ...`, in a build with `--features mpi`); and what the ranks
//! agree on before they train.

use std::collections::BTreeMap;

use perturb_nn::distributed::{self, try_run_on_threads, Communicator, Single};

use super::setup::Setup;
use super::{run_rank, Args};

/// The most thread ranks `--ranks` starts. Each is a thread with its own copy of the model and
/// of its share of the data, so more ranks than a machine has cores only slow a run down, and
/// far more (100 000) made the system refuse a thread its signal stack, which aborts the
/// program, with no error to report.
const MAX_THREAD_RANKS: usize = 1024;

/// Runs the training on the ranks the command line and the environment ask for.
pub(super) fn run(args: &Args) -> Result<(), String> {
    let launched = distributed::mpi_launch_size().filter(|&n| n > 1);
    match (launched, args.ranks) {
        (_, 0) => Err("train: --ranks must be at least 1".into()),
        (Some(n), ranks) if ranks > 1 => Err(format!(
            "train: --ranks {ranks} asks for thread ranks, but mpirun started {n} processes, \
             which are the ranks: drop --ranks, or run without mpirun"
        )),
        (Some(n), _) => on_mpi(args, n),
        (None, 1) => run_rank(args, &Single),
        (None, ranks) if ranks > MAX_THREAD_RANKS => Err(format!(
            "train: --ranks {ranks}: at most {MAX_THREAD_RANKS} thread ranks (each is a thread \
             with its own copy of the model); for ranks on several machines, run perturb under \
             mpirun"
        )),
        (None, ranks) => {
            let results = try_run_on_threads(ranks, |comm| run_rank(args, &comm))
                .map_err(|e| format!("train: --ranks {ranks}: {e}"))?;
            // Every rank reaches the same verdict (they agree before training and take the
            // same steps); rank 0's words are the ones to show.
            results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
        }
    }
}

#[cfg(feature = "mpi")]
fn on_mpi(args: &Args, _processes: usize) -> Result<(), String> {
    let comm = distributed::Mpi::init().map_err(|e| format!("train: {e}"))?;
    // A panic must not end MPI normally while the other ranks wait in a collective (the job
    // would hang): it ends the job.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_rank(args, &comm))).unwrap_or_else(
        |_| {
            comm.abort("train: this rank panicked");
            Err("train: this rank panicked".into())
        },
    )
}

#[cfg(not(feature = "mpi"))]
fn on_mpi(_args: &Args, processes: usize) -> Result<(), String> {
    Err(format!(
        "train: mpirun started {processes} copies of this perturb, which was built without \
         MPI: each would train alone and overwrite the others' files. Build it with \
         `cargo build --release -p perturb-cli --features mpi` (needs an MPI library such as \
         mpich), or run it without mpirun (--ranks N trains on N threads)"
    ))
}

/// `outcome` on every rank if it is `Ok` on every rank; otherwise, on every rank, the error
/// of the first rank that failed (named when it is not rank 0), so that all ranks stop
/// together instead of some waiting for the others forever.
pub(super) fn agree<T>(comm: &dyn Communicator, outcome: Result<T, String>) -> Result<T, String> {
    let mine = match &outcome {
        Ok(_) => Vec::new(),
        Err(e) => format!("E{e}").into_bytes(),
    };
    let all = comm
        .all_gather_bytes(&mine)
        .map_err(|e| format!("train: {e}"))?;
    match all.iter().position(|b| !b.is_empty()) {
        None => outcome,
        Some(rank) => {
            let text = String::from_utf8_lossy(&all[rank][1..]).into_owned();
            Err(match rank {
                0 => text,
                _ => format!("{text} (on rank {rank})"),
            })
        }
    }
}

/// An error on every rank, naming each difference, if the ranks were not given the same
/// run: the same data (by fingerprint), model, options and seed, the same epochs and
/// checkpoints.
pub(super) fn same_config(
    comm: &dyn Communicator,
    args: &Args,
    setup: &Setup,
) -> Result<(), String> {
    if comm.size() == 1 {
        return Ok(());
    }
    let shown = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let mine = setup.config.with_options([
        ("epochs", args.epoch_count().to_string()),
        (
            "checkpoint-every",
            args.checkpoint_every
                .map(|n| n.to_string())
                .unwrap_or_default(),
        ),
        ("resume", shown(&args.resume).unwrap_or_default()),
    ]);
    let map: BTreeMap<String, String> = mine.to_metadata().collect();
    let text = serde_json::to_vec(&map).map_err(|e| format!("train: {e}"))?;
    let all = comm
        .all_gather_bytes(&text)
        .map_err(|e| format!("train: {e}"))?;
    let configs: Vec<super::checkpoint::RunConfig> = all
        .iter()
        .map(|bytes| {
            let map: BTreeMap<String, String> = serde_json::from_slice(bytes).unwrap_or_default();
            super::checkpoint::RunConfig::from_metadata(&map)
        })
        .collect();
    for (rank, config) in configs.iter().enumerate().skip(1) {
        let here = format!("on rank {rank}");
        let differences = config.differences_from(&configs[0], "on rank 0", &here, "rank 0's");
        if !differences.is_empty() {
            return Err(format!(
                "train: the ranks were not given the same run: {}. Start every rank with the \
                 same data and options",
                differences.join("; ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use perturb_nn::distributed::run_on_threads;

    #[test]
    fn one_rank_failing_stops_every_rank_with_its_error() {
        let got = run_on_threads(3, |comm| {
            let mine = match comm.rank() {
                2 => Err("train: no such file".to_string()),
                r => Ok(r),
            };
            agree(&comm, mine)
        });
        for r in got {
            assert_eq!(r, Err("train: no such file (on rank 2)".to_string()));
        }
        let got = run_on_threads(2, |comm| agree(&comm, Ok::<_, String>(comm.rank())));
        assert_eq!(got, [Ok(0), Ok(1)]);
        // Rank 0's words as they are.
        let got = run_on_threads(2, |comm| {
            agree(&comm, Err::<(), _>(format!("r{}", comm.rank())))
        });
        assert_eq!(got, [Err("r0".to_string()), Err("r0".to_string())]);
    }
}
