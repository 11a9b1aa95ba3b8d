//! The `Mpi` communicator on the real MPI of this machine: this test binary runs itself under
//! `mpirun` (the ignored test `child`, told what to do by an environment variable). On 3 MPI
//! ranks the collectives give what the thread ranks give, bit for bit; a rank that aborts alone
//! ends the job at once while the others wait in an all-reduce, instead of hanging it.
#![cfg(feature = "mpi")]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use perturb::tensor::Tensor;
use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt, Mpi};

const ROLE: &str = "PERTURB_MPI_TEST_ROLE";

/// Each rank's inputs, of very different sizes so that the order of the sums shows, in a
/// tree larger than a bucket.
fn inputs(rank: usize) -> (Tensor<f64>, Vec<Tensor<f64>>) {
    let n = perturb_nn::distributed::BUCKET_ELEMENTS + 3;
    let big = (0..n)
        .map(|i| ((i * 7 + rank * 13) % 101) as f64 * 10f64.powi(8 * rank as i32 - 8))
        .collect();
    (
        Tensor::from_vec(big, &[n]).unwrap(),
        vec![Tensor::vector(&[0.1 * rank as f64, 1.0 / 3.0])],
    )
}

/// What every rank computes: the sum and mean of its inputs, rank 0's inputs broadcast, and
/// every rank's bytes; as the bits of the values.
fn collectives(comm: &dyn Communicator) -> Vec<u64> {
    let mut sum = inputs(comm.rank());
    comm.all_reduce_sum(&mut sum).unwrap();
    let mut mean = inputs(comm.rank());
    comm.all_reduce_mean(&mut mean).unwrap();
    let mut first = inputs(comm.rank());
    comm.broadcast(&mut first).unwrap();
    let gathered = comm.all_gather_bytes(&[comm.rank() as u8; 3]).unwrap();
    comm.barrier().unwrap();
    let mut out: Vec<u64> = [sum, mean, first]
        .iter()
        .flat_map(|(a, b)| {
            a.as_slice()
                .iter()
                .chain(b[0].as_slice())
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect();
    out.extend(gathered.concat().into_iter().map(u64::from));
    out
}

/// Run under mpirun by the tests below; does nothing when run directly.
#[test]
#[ignore = "run under mpirun by the other tests"]
fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let comm = Mpi::init().unwrap();
    match role.as_str() {
        "collectives" => {
            let mine = collectives(&comm);
            let threads = run_on_threads(comm.size(), |c| collectives(&c));
            assert!(threads.iter().all(|t| *t == mine), "rank {}", comm.rank());
            println!("rank {} agrees", comm.rank());
        }
        "abort" => {
            if comm.rank() == 1 {
                std::thread::sleep(Duration::from_millis(500));
                comm.abort("rank 1 fails alone");
            }
            let mut buf = [1.0];
            loop {
                comm.all_reduce_sum_f64(&mut buf).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn mpirun(ranks: &str, role: &str) -> Output {
    let me = std::env::current_exe().unwrap();
    Command::new("mpirun")
        .args(["-n", ranks])
        .arg(me)
        .args([
            "--exact",
            "child",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ROLE, role)
        .output()
        .unwrap_or_else(|e| panic!("mpirun: {e}: install an MPI (bash scripts/install-deps.sh)"))
}

#[test]
fn three_mpi_ranks_give_the_thread_ranks_bits() {
    let out = mpirun("3", "collectives");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in 0..3 {
        assert!(text.contains(&format!("rank {r} agrees")), "{text}");
    }
}

#[test]
fn a_rank_that_aborts_ends_the_job_instead_of_hanging_it() {
    let start = Instant::now();
    let out = mpirun("2", "abort");
    assert!(!out.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rank 1: rank 1 fails alone"), "{err}");
}
