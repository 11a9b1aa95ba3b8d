//! Data-parallel training: the same training loop on several ranks (threads or MPI
//! processes), each on its share of every mini-batch, with the gradients summed across the
//! ranks before each optimiser step, so that every rank holds the same weights at every step.
//!
//! A [`Communicator`] is what such training needs of its ranks: who am I ([`rank`]), how many
//! are we ([`size`]), the sum of a buffer over the ranks ([`all_reduce_sum_f64`]), rank 0's
//! bytes on every rank ([`broadcast_bytes`]), every rank's bytes on every rank
//! ([`all_gather_bytes`], for comparing configurations) and a [`barrier`]. Three implement it:
//!
//! - [`Single`]: one process, the identity;
//! - [`ThreadComm`]: ranks on threads of one process ([`run_on_threads`]), for tests and for a
//!   multi-core machine;
//! - `Mpi` (with the cargo feature `mpi`): ranks in MPI processes, through the `mpi` crate.
//!
//! [`CommunicatorExt`] adds what works on parameter trees: [`all_reduce_sum`], [`all_reduce_mean`]
//! and [`broadcast`] of a tree from rank 0. The pieces of a training step are in
//! [`data_parallel`]: which rows of a batch a rank takes ([`shard`]) and the gradient reduction
//! ([`reduce_gradients`]).
//!
//! ## The same result on every rank, and as in one process
//!
//! Every all-reduce adds the ranks' values element by element in rank order
//! (`((x0 + x1) + x2) + ...`), on every rank and in every implementation: all ranks get the
//! same bits, thread ranks and MPI ranks the same bits, and how a tree is cut into buckets
//! changes nothing. A data-parallel run therefore equals a single-process run of the same
//! global batches up to the reassociation of the gradient's sum over rows: one process adds
//! all the rows' contributions inside its matrix products; the ranks each add their rows,
//! then the shares. In f64 the difference is a few units in the last place per step (the
//! tests check 1e-12 after many steps). What changes the result is what changes that order:
//! the number of ranks, and the rule that splits a batch ([`shard`]). Runs with the same rank
//! count are reproducible bit for bit.
//!
//! ## Buckets, and why the reduction does not overlap the backward sweep
//!
//! A tree is reduced in buckets of [`BUCKET_ELEMENTS`] values, so no message grows with the
//! model. PyTorch's DistributedDataParallel also starts each bucket's reduction while the
//! backward sweep is still computing the gradients of earlier layers. perturb's tape returns
//! the gradients when the sweep is done ([`TensorTape::gradient`]), so there is nothing to
//! overlap with: the reduction follows the sweep. BENCHMARKS.md measures what that costs (the
//! reduction's share of a step: the most an overlap could save).
//!
//! ```
//! use perturb::tensor::Tensor;
//! use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt};
//!
//! // Two ranks, each with its own gradient; after the all-reduce both hold the mean.
//! let results = run_on_threads(2, |comm| {
//!     let mut grads = vec![Tensor::vector(&[comm.rank() as f64, 1.0])];
//!     comm.all_reduce_mean(&mut grads).unwrap();
//!     grads[0].to_vec()
//! });
//! assert_eq!(results, [vec![0.5, 1.0], vec![0.5, 1.0]]);
//! ```
//!
//! [`rank`]: Communicator::rank
//! [`size`]: Communicator::size
//! [`all_reduce_sum_f64`]: Communicator::all_reduce_sum_f64
//! [`broadcast_bytes`]: Communicator::broadcast_bytes
//! [`all_gather_bytes`]: Communicator::all_gather_bytes
//! [`barrier`]: Communicator::barrier
//! [`all_reduce_sum`]: CommunicatorExt::all_reduce_sum
//! [`all_reduce_mean`]: CommunicatorExt::all_reduce_mean
//! [`broadcast`]: CommunicatorExt::broadcast
//! [`shard`]: data_parallel::shard
//! [`reduce_gradients`]: data_parallel::reduce_gradients
//! [`TensorTape::gradient`]: perturb::tensor::TensorTape::gradient

pub mod data_parallel;
#[cfg(feature = "mpi")]
mod mpi;
mod single;
mod threads;
mod tree_ops;

use std::time::Duration;

#[cfg(feature = "mpi")]
pub use self::mpi::Mpi;
pub use single::Single;
pub use threads::{run_on_threads, try_run_on_threads, ThreadComm, DEFAULT_TIMEOUT};
pub use tree_ops::{CommunicatorExt, Reduce, BUCKET_ELEMENTS};

/// What the ranks of a data-parallel run need of each other. Every rank must call the same
/// collective operations in the same order (as MPI requires); each returns once every rank
/// has called it.
///
/// ```
/// use perturb_nn::distributed::{Communicator, Single};
/// let comm = Single;
/// let mut buf = [1.0, 2.0];
/// comm.all_reduce_sum_f64(&mut buf).unwrap();
/// assert_eq!((comm.rank(), comm.size(), buf), (0, 1, [1.0, 2.0]));
/// ```
pub trait Communicator {
    /// This rank's number, from 0 to [`size`](Communicator::size) - 1.
    ///
    /// ```
    /// use perturb_nn::distributed::{Communicator, Single};
    /// assert_eq!(Single.rank(), 0);
    /// ```
    fn rank(&self) -> usize;

    /// The number of ranks.
    ///
    /// ```
    /// use perturb_nn::distributed::{Communicator, Single};
    /// assert_eq!(Single.size(), 1);
    /// ```
    fn size(&self) -> usize;

    /// Replaces `buf` on every rank by the element-wise sum of every rank's `buf`, added in
    /// rank order. The buffers must have the same length on every rank (an error otherwise,
    /// where the implementation can tell).
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, Communicator};
    /// let sums = run_on_threads(3, |comm| {
    ///     let mut buf = [comm.rank() as f64];
    ///     comm.all_reduce_sum_f64(&mut buf).unwrap();
    ///     buf[0]
    /// });
    /// assert_eq!(sums, [3.0, 3.0, 3.0]);
    /// ```
    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CommError>;

    /// [`all_reduce_sum_f64`](Communicator::all_reduce_sum_f64) for `f32`.
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, Communicator};
    /// let sums = run_on_threads(2, |comm| {
    ///     let mut buf = [0.5_f32];
    ///     comm.all_reduce_sum_f32(&mut buf).unwrap();
    ///     buf[0]
    /// });
    /// assert_eq!(sums, [1.0, 1.0]);
    /// ```
    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CommError>;

    /// Replaces `bytes` on every rank by rank 0's (whatever their length elsewhere).
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, Communicator};
    /// let got = run_on_threads(2, |comm| {
    ///     let mut bytes = format!("rank {}", comm.rank()).into_bytes();
    ///     comm.broadcast_bytes(&mut bytes).unwrap();
    ///     String::from_utf8(bytes).unwrap()
    /// });
    /// assert_eq!(got, ["rank 0", "rank 0"]);
    /// ```
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<(), CommError>;

    /// Every rank's `bytes`, in rank order, on every rank.
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, Communicator};
    /// let got = run_on_threads(2, |comm| comm.all_gather_bytes(&[comm.rank() as u8]).unwrap());
    /// assert_eq!(got, [vec![vec![0], vec![1]], vec![vec![0], vec![1]]]);
    /// ```
    fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CommError>;

    /// Returns once every rank has called it.
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, Communicator};
    /// let done = run_on_threads(2, |comm| comm.barrier().is_ok());
    /// assert_eq!(done, [true, true]);
    /// ```
    fn barrier(&self) -> Result<(), CommError>;

    /// This rank gives up on the run because of `reason`, an error the other ranks do not
    /// share, so that they stop instead of waiting for it: thread ranks' collectives fail at
    /// once with [`CommError::RankLeft`]; under MPI, `reason` is printed and the whole job is
    /// ended (`MPI_Abort`; this does not return, and is the only safe way out there: a rank
    /// that ended MPI normally while the others wait in a collective would hang the job).
    /// Nothing for a single rank. After `abort`, this rank must take no further part.
    ///
    /// ```
    /// use perturb_nn::distributed::{run_on_threads, CommError, Communicator};
    /// let got = run_on_threads(2, |comm| {
    ///     if comm.rank() == 1 {
    ///         comm.abort("the disk is full");
    ///         return None;
    ///     }
    ///     comm.barrier().err()
    /// });
    /// assert_eq!(got[0], Some(CommError::RankLeft { op: "barrier", rank: 1 }));
    /// ```
    fn abort(&self, reason: &str);
}

/// Why a collective operation failed. (Under MPI most failures abort the whole job instead,
/// as MPI's default error handler does: see `Mpi`.)
///
/// ```
/// use perturb_nn::distributed::CommError;
/// let e = CommError::RankLeft { op: "all_reduce_sum", rank: 1 };
/// assert!(e.to_string().contains("rank 1"));
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommError {
    /// A rank stopped (its thread ended or panicked) while the others waited for it.
    #[error("{op}: rank {rank} stopped (its thread ended or failed) before taking part")]
    RankLeft {
        /// The collective operation.
        op: &'static str,
        /// The rank that stopped.
        rank: usize,
    },
    /// Ranks did not arrive within the time limit: hung, or much slower than the others.
    #[error("{op}: ranks {missing:?} did not take part within {waited:?}: they are hung or dead")]
    Timeout {
        /// The collective operation.
        op: &'static str,
        /// How long this rank waited.
        waited: Duration,
        /// The ranks that had not arrived.
        missing: Vec<usize>,
    },
    /// The ranks passed buffers or trees of different sizes: their models differ.
    #[error(
        "{op}: rank {rank} has {found} values where rank 0 has {expected}: the ranks' models \
         differ"
    )]
    LengthMismatch {
        /// The collective operation.
        op: &'static str,
        /// The first rank that differs from rank 0.
        rank: usize,
        /// Rank 0's length.
        expected: usize,
        /// That rank's length.
        found: usize,
    },
    /// MPI could not be started.
    #[error("MPI: {0}")]
    Mpi(String),
    /// The system would not start the thread of a rank ([`try_run_on_threads`]): too many
    /// ranks for its limits on threads or memory.
    #[error("cannot start the thread of rank {rank} of {size}: {reason}")]
    Spawn {
        /// The first rank whose thread did not start.
        rank: usize,
        /// The ranks asked for.
        size: usize,
        /// The system's error, in words.
        reason: String,
    },
}

/// The number of processes an MPI launcher (`mpirun`, `mpiexec`) started this one among, read
/// from the environment it sets (`PMI_SIZE`: MPICH's Hydra; `OMPI_COMM_WORLD_SIZE`: Open MPI);
/// `None` outside one. Available without the feature `mpi`, so that a program built without
/// it can refuse to run as several copies that would each train alone.
///
/// ```
/// // (Under `mpirun -n 4` this is Some(4).)
/// if std::env::var_os("PMI_SIZE").is_none() && std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none() {
///     assert_eq!(perturb_nn::distributed::mpi_launch_size(), None);
/// }
/// ```
pub fn mpi_launch_size() -> Option<usize> {
    ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE"]
        .iter()
        .find_map(|var| std::env::var(var).ok()?.trim().parse().ok())
}

/// `out` = `parts[0] + parts[1] + ...`, element by element, added in rank order (the one
/// summation order of every implementation); an error naming the first rank whose length
/// differs from rank 0's.
fn sum_in_rank_order<T: Copy + std::ops::AddAssign>(
    op: &'static str,
    parts: &[&[T]],
    out: &mut [T],
) -> Result<(), CommError> {
    let expected = parts.first().map_or(out.len(), |p| p.len());
    let differs = (0..parts.len()).find(|&r| parts[r].len() != expected);
    if let Some(rank) = differs.or((expected != out.len()).then_some(0)) {
        return Err(CommError::LengthMismatch {
            op,
            rank,
            expected,
            found: parts.get(rank).map_or(out.len(), |p| p.len()),
        });
    }
    if let Some((first, rest)) = parts.split_first() {
        out.copy_from_slice(first);
        for part in rest {
            for (o, v) in out.iter_mut().zip(*part) {
                *o += *v;
            }
        }
    }
    Ok(())
}
