//! Ranks on threads of one process, meeting at a mutex: for tests, and for a multi-core
//! machine without MPI.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{sum_in_rank_order, CommError, Communicator};

/// How long a thread rank waits for the others in a collective before it gives up with
/// [`CommError::Timeout`]: long enough for any step of a model trained on one machine, short
/// enough that a hung rank does not hang the run for good. (A rank whose thread ends or
/// panics is noticed at once: [`CommError::RankLeft`].)
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One rank of a group of ranks on threads of this process. Made by [`ThreadComm::group`]
/// (one per thread; move each into its thread) or, more simply, by [`run_on_threads`].
///
/// Every collective gathers each rank's contribution, then each rank computes the result from
/// all of them in rank order, so every rank gets the same bits. A rank whose `ThreadComm` is
/// dropped (its thread returned or panicked) makes the others' collectives fail with
/// [`CommError::RankLeft`] instead of waiting for it; a rank that does not arrive within the
/// timeout makes them fail with [`CommError::Timeout`].
///
/// ```
/// use std::time::Duration;
/// use perturb_nn::distributed::{CommError, Communicator, ThreadComm};
///
/// let mut ranks = ThreadComm::group_with_timeout(2, Duration::from_secs(5));
/// let second = ranks.pop().unwrap();
/// drop(second); // rank 1 stops before taking part
/// let err = ranks[0].barrier().unwrap_err();
/// assert_eq!(err, CommError::RankLeft { op: "barrier", rank: 1 });
/// ```
#[derive(Debug)]
pub struct ThreadComm {
    rank: usize,
    group: Arc<Group>,
}

#[derive(Debug)]
struct Group {
    size: usize,
    timeout: Duration,
    state: Mutex<State>,
    changed: Condvar,
}

/// One collective at a time: the ranks contribute (`slots`), then, once all have, read
/// (`reading`); no rank contributes to the next collective until every rank has read.
#[derive(Debug)]
struct State {
    slots: Vec<Option<Arc<Payload>>>,
    reading: bool,
    has_read: Vec<bool>,
    /// The ranks whose `ThreadComm` was dropped.
    gone: Vec<bool>,
}

#[derive(Debug)]
enum Payload {
    F64(Vec<f64>),
    F32(Vec<f32>),
    Bytes(Vec<u8>),
}

impl ThreadComm {
    /// `size` ranks that meet each other, numbered 0 to `size - 1`, with the
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// ```
    /// use perturb_nn::distributed::{Communicator, ThreadComm};
    /// let ranks = ThreadComm::group(3);
    /// assert_eq!((ranks[2].rank(), ranks[2].size()), (2, 3));
    /// ```
    pub fn group(size: usize) -> Vec<ThreadComm> {
        Self::group_with_timeout(size, DEFAULT_TIMEOUT)
    }

    /// [`group`](ThreadComm::group) with another time limit for waiting on the other ranks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use perturb_nn::distributed::{CommError, Communicator, ThreadComm};
    /// let ranks = ThreadComm::group_with_timeout(2, Duration::from_millis(50));
    /// // Rank 1 never arrives (but still exists): rank 0 gives up after 50 ms.
    /// let err = ranks[0].barrier().unwrap_err();
    /// assert!(matches!(err, CommError::Timeout { missing, .. } if missing == [1]));
    /// ```
    pub fn group_with_timeout(size: usize, timeout: Duration) -> Vec<ThreadComm> {
        let group = Arc::new(Group {
            size,
            timeout,
            state: Mutex::new(State {
                slots: vec![None; size],
                reading: false,
                has_read: vec![false; size],
                gone: vec![false; size],
            }),
            changed: Condvar::new(),
        });
        (0..size)
            .map(|rank| ThreadComm {
                rank,
                group: Arc::clone(&group),
            })
            .collect()
    }

    /// Every rank's payload, in rank order.
    fn all_gather(&self, op: &'static str, mine: Payload) -> Result<Vec<Arc<Payload>>, CommError> {
        let g = &*self.group;
        let deadline = Instant::now() + g.timeout;
        let mut s = g.lock();
        // The previous collective's readers first.
        s = g.wait(s, op, deadline, |s| {
            ranks_where(s, |r| s.reading && !s.has_read[r])
        })?;
        s.slots[self.rank] = Some(Arc::new(mine));
        if s.slots.iter().all(Option::is_some) {
            s.reading = true;
            s.has_read.fill(false);
            g.changed.notify_all();
        }
        let waited = g.wait(s, op, deadline, |s| {
            ranks_where(s, |r| !s.reading && s.slots[r].is_none())
        });
        s = match waited {
            Ok(s) => s,
            Err(e) => {
                // Not complete without us: take our contribution back, so that it does not
                // count towards a later collective.
                let mut s = g.lock();
                if !s.reading {
                    s.slots[self.rank] = None;
                }
                return Err(e);
            }
        };
        let all: Vec<Arc<Payload>> = s.slots.iter().flatten().cloned().collect();
        s.has_read[self.rank] = true;
        if s.has_read.iter().all(|&read| read) {
            s.slots.fill(None);
            s.reading = false;
            g.changed.notify_all();
        }
        Ok(all)
    }

    /// The sum over the ranks of `buf`, of the element type `pick` takes out of a payload.
    fn all_reduce<T: Copy + std::ops::AddAssign>(
        &self,
        op: &'static str,
        buf: &mut [T],
        wrap: impl FnOnce(Vec<T>) -> Payload,
        pick: impl Fn(&Payload) -> &[T],
    ) -> Result<(), CommError> {
        let all = self.all_gather(op, wrap(buf.to_vec()))?;
        let parts: Vec<&[T]> = all.iter().map(|p| pick(p)).collect();
        sum_in_rank_order(op, &parts, buf)
    }
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements (no panic while it is held).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `awaited` (the ranks still to act) is empty; an error if one of them is
    /// gone or the deadline passes.
    fn wait<'a>(
        &self,
        mut s: MutexGuard<'a, State>,
        op: &'static str,
        deadline: Instant,
        awaited: impl Fn(&State) -> Vec<usize>,
    ) -> Result<MutexGuard<'a, State>, CommError> {
        loop {
            let missing = awaited(&s);
            if missing.is_empty() {
                return Ok(s);
            }
            if let Some(&rank) = missing.iter().find(|&&r| s.gone[r]) {
                return Err(CommError::RankLeft { op, rank });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CommError::Timeout {
                    op,
                    waited: self.timeout,
                    missing,
                });
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn ranks_where(s: &State, f: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..s.slots.len()).filter(|&r| f(r)).collect()
}

impl ThreadComm {
    /// Marks this rank as gone: the others' collectives fail instead of waiting for it.
    fn leave(&self) {
        let g = &*self.group;
        g.lock().gone[self.rank] = true;
        g.changed.notify_all();
    }
}

impl Drop for ThreadComm {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.group.size
    }

    fn all_reduce_sum_f64(&self, buf: &mut [f64]) -> Result<(), CommError> {
        self.all_reduce("all_reduce_sum", buf, Payload::F64, |p| match p {
            Payload::F64(v) => v,
            _ => &[],
        })
    }

    fn all_reduce_sum_f32(&self, buf: &mut [f32]) -> Result<(), CommError> {
        self.all_reduce("all_reduce_sum", buf, Payload::F32, |p| match p {
            Payload::F32(v) => v,
            _ => &[],
        })
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) -> Result<(), CommError> {
        // Only rank 0's bytes travel.
        let mine = if self.rank == 0 {
            bytes.clone()
        } else {
            Vec::new()
        };
        let all = self.all_gather("broadcast", Payload::Bytes(mine))?;
        *bytes = bytes_of(&all[0]).to_vec();
        Ok(())
    }

    fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CommError> {
        let all = self.all_gather("all_gather", Payload::Bytes(bytes.to_vec()))?;
        Ok(all.iter().map(|p| bytes_of(p).to_vec()).collect())
    }

    fn barrier(&self) -> Result<(), CommError> {
        self.all_gather("barrier", Payload::Bytes(Vec::new()))
            .map(drop)
    }

    fn abort(&self, _reason: &str) {
        // The reason travels back to the caller as its error; the others only need to stop.
        self.leave();
    }
}

/// The bytes of a payload. A payload of another kind (a rank that called another collective
/// at the same time, a bug in the caller's program) reads as empty, as it does in the
/// reductions, where it fails their length check.
fn bytes_of(p: &Payload) -> &[u8] {
    match p {
        Payload::Bytes(b) => b,
        _ => &[],
    }
}

/// Runs `f` on `size` threads, each with its rank's [`ThreadComm`], and returns their results
/// in rank order. A panic in `f` on one rank is raised again here, after every thread has
/// ended (the other ranks' collectives fail with [`CommError::RankLeft`] meanwhile, so they
/// do not wait for it).
///
/// # Panics
///
/// Where the system will not start a thread (too many ranks): [`try_run_on_threads`]
/// returns that as an error instead.
///
/// ```
/// use perturb_nn::distributed::{run_on_threads, Communicator};
/// let ranks = run_on_threads(4, |comm| comm.rank() * 10);
/// assert_eq!(ranks, [0, 10, 20, 30]);
/// ```
#[track_caller]
pub fn run_on_threads<R: Send>(size: usize, f: impl Fn(ThreadComm) -> R + Sync) -> Vec<R> {
    try_run_on_threads(size, f).unwrap_or_else(|e| panic!("run_on_threads: {e}"))
}

/// [`run_on_threads`], with [`CommError::Spawn`] where the system will not start the thread
/// of a rank (its limits on threads or memory). The ranks already started then see that rank
/// leave ([`CommError::RankLeft`] in their collectives) and end; their results are dropped.
///
/// ```
/// use perturb_nn::distributed::{try_run_on_threads, Communicator};
/// let sizes = try_run_on_threads(3, |comm| comm.size()).unwrap();
/// assert_eq!(sizes, [3, 3, 3]);
/// ```
pub fn try_run_on_threads<R: Send>(
    size: usize,
    f: impl Fn(ThreadComm) -> R + Sync,
) -> Result<Vec<R>, CommError> {
    let f = &f;
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(size);
        let mut refused = None;
        for comm in ThreadComm::group(size) {
            let rank = comm.rank();
            // On an error the closure, and the rank's `ThreadComm` in it, is dropped: the
            // started ranks see it leave; the ranks after it leave with the rest of the group.
            match std::thread::Builder::new().spawn_scoped(scope, move || f(comm)) {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    refused = Some(CommError::Spawn {
                        rank,
                        size,
                        reason: e.to_string(),
                    });
                    break;
                }
            }
        }
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let results = joined
            .into_iter()
            .map(|r| r.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect();
        match refused {
            Some(e) => Err(e),
            None => Ok(results),
        }
    })
}
