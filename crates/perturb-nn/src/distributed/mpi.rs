//! Ranks in MPI processes, through the `mpi` crate (rsmpi), with the cargo feature `mpi`.

use std::ops::AddAssign;

use mpi::datatype::{Equivalence, Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};
use mpi::Count;

use super::data_parallel::shard;
use super::{sum_in_rank_order, CommError, Communicator};

/// The ranks of an MPI job (`MPI_COMM_WORLD`), one per process started by `mpirun`/`mpiexec`.
/// MPI is finalised when this is dropped.
///
/// The all-reduce keeps the library's fixed summation order: the buffer is cut into one
/// piece per rank ([`shard`]'s rule); each rank receives its piece from every rank
/// (`MPI_Alltoallv`), adds them in rank order, and every rank gathers the sums
/// (`MPI_Allgatherv`). That is a reduce-scatter and an all-gather, which send as many bytes as
/// a ring all-reduce (`2 (p - 1) / p` of the buffer per rank), and gives every rank, and
/// [`ThreadComm`](super::ThreadComm) ranks, the same bits. (`MPI_Allreduce` promises neither.)
///
/// Errors: MPI's default error handler on `MPI_COMM_WORLD` aborts the job, and the launcher
/// (MPICH's Hydra, Open MPI's `mpirun`) ends every process of the job when one of them dies,
/// so a dead rank ends the run instead of hanging it. The ranks must pass buffers of the same
/// length (as they do when their models agree: compare their configurations first).
///
/// ```no_run
/// use perturb_nn::distributed::{Communicator, Mpi};
/// // Under `mpirun -n 2`:
/// let comm = Mpi::init().unwrap();
/// let mut buf = [comm.rank() as f64];
/// comm.all_reduce_sum_f64(&mut buf).unwrap();
/// assert_eq!(buf, [1.0]);
/// ```
pub struct Mpi {
    world: SimpleCommunicator,
    // Dropped last: finalises MPI.
    _universe: Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("rank", &self.rank())
            .field("size", &self.size())
            .finish()
    }
}

impl Mpi {
    /// Starts MPI (`MPI_Init`) and returns the world's communicator. An error if MPI was
    /// started already in this process. A program not started by an MPI launcher is rank 0 of
    /// 1.
    ///
    /// ```no_run
    /// use perturb_nn::distributed::{Communicator, Mpi};
    /// let comm = Mpi::init().unwrap();
    /// println!("rank {} of {}", comm.rank(), comm.size());
    /// ```
    pub fn init() -> Result<Mpi, CommError> {
        let universe = mpi::initialize()
            .ok_or_else(|| CommError::Mpi("MPI was already started in this process".into()))?;
        Ok(Mpi {
            world: universe.world(),
            _universe: universe,
        })
    }

    fn all_reduce<T>(&self, buf: &mut [T]) -> Result<(), CommError>
    where
        T: Equivalence + Copy + Default + AddAssign,
    {
        let size = self.size();
        if size == 1 {
            return Ok(());
        }
        let pieces: Vec<_> = (0..size).map(|r| shard(buf.len(), r, size)).collect();
        let (counts, displs) = counts_and_displs(pieces.iter().map(|p| (p.len(), p.start)));
        let mine = pieces[self.rank()].len();
        let mut received = vec![T::default(); mine * size];
        let (recv_counts, recv_displs) = counts_and_displs((0..size).map(|r| (mine, r * mine)));
        self.world.all_to_all_varcount_into(
            &Partition::new(&buf[..], &counts[..], &displs[..]),
            &mut PartitionMut::new(&mut received[..], &recv_counts[..], &recv_displs[..]),
        );
        let parts: Vec<&[T]> = (0..size)
            .map(|r| &received[r * mine..(r + 1) * mine])
            .collect();
        let mut reduced = vec![T::default(); mine];
        sum_in_rank_order("all_reduce_sum", &parts, &mut reduced)?;
        self.world.all_gather_varcount_into(
            &reduced[..],
            &mut PartitionMut::new(buf, &counts[..], &displs[..]),
        );
        Ok(())
    }
}

/// MPI's counts and displacements from (length, start) pairs. The buffers are cut into
/// buckets far below `i32::MAX` elements ([`BUCKET_ELEMENTS`](super::BUCKET_ELEMENTS)).
fn counts_and_displs(pairs: impl Iterator<Item = (usize, usize)>) -> (Vec<Count>, Vec<Count>) {
    let to_count = |n: usize| Count::try_from(n).unwrap_or(Count::MAX);
    pairs.map(|(n, at)| (to_count(n), to_count(at))).unzip()
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        usize::try_from(self.world.rank()).unwrap_or(0)
    }

    fn size(&self) -> usize {
        usize::try_from(self.world.size()).unwrap_or(1)
    }

    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CommError> {
        self.all_reduce(buf)
    }

    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CommError> {
        self.all_reduce(buf)
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(usize::try_from(len).unwrap_or(0), 0);
        root.broadcast_into(&mut bytes[..]);
        Ok(())
    }

    fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CommError> {
        let size = self.size();
        let mut lens: Vec<Count> = vec![0; size];
        let mine = Count::try_from(bytes.len()).unwrap_or(Count::MAX);
        self.world.all_gather_into(&mine, &mut lens[..]);
        let lens: Vec<usize> = lens.iter().map(|&n| n.max(0) as usize).collect();
        let starts: Vec<usize> = lens
            .iter()
            .scan(0, |at, &n| {
                let start = *at;
                *at += n;
                Some(start)
            })
            .collect();
        let mut all = vec![0u8; lens.iter().sum()];
        let (counts, displs) = counts_and_displs(lens.iter().copied().zip(starts.iter().copied()));
        self.world
            .all_gather_varcount_into(bytes, &mut PartitionMut::new(&mut all[..], counts, displs));
        Ok(lens
            .iter()
            .zip(&starts)
            .map(|(&n, &at)| all[at..at + n].to_vec())
            .collect())
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.world.barrier();
        Ok(())
    }

    fn abort(&self, reason: &str) {
        use std::io::Write as _;
        eprintln!("rank {}: {reason}", self.rank());
        // (Nothing to do if stderr is gone: the job ends either way.)
        let _ = std::io::stderr().flush();
        self.world.abort(1)
    }
}
