//! The tensors' buffers, and a per-thread pool that reuses them.
//!
//! Every tensor operation writes a new buffer, and a reverse sweep frees most of them again. With
//! the system allocator (glibc's `malloc`) a freed buffer of tens of kilobytes is often handed
//! back to the operating system and the next one faulted in page by page, which costs more than
//! the arithmetic on it. So a tensor's buffer does not go back to the allocator when its last
//! handle is dropped: it goes to a free list of the thread that drops it, and the next operation
//! on that thread of a similar size takes it from there.
//!
//! The pool is bounded: each thread keeps at most [`limit`] bytes (32 MiB unless
//! [`set_limit`] says otherwise, for `f32` and `f64` buffers together) and at most
//! 256 buffers, dropping its least recently pooled buffers beyond that; buffers under 1 KiB
//! are not pooled (the allocator's own caches serve them well). A thread's pool is freed when
//! the thread ends. [`set_enabled`] switches it off for the whole process, to measure what it
//! saves or to give memory back at once.
//!
//! ```
//! use perturb::tensor::{buffers, Tensor};
//!
//! buffers::clear();
//! let a = Tensor::<f64>::ones(&[10_000]);
//! drop(a.map(|x| x + 1.0)); // its 80 KB go to this thread's pool...
//! assert!(buffers::pooled_bytes() >= 80_000);
//! let b = a.map(|x| x * 2.0); // ...and are taken from it again
//! assert_eq!(b.to_vec(), vec![2.0; 10_000]);
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::element::Element;

/// The elements of a tensor: a `Vec` that, when dropped, goes to the dropping thread's pool.
pub(crate) struct Buffer<T> {
    vec: Vec<T>,
    /// Where the `Vec` goes when the buffer is dropped; `None` once it has been taken out.
    /// (A function pointer, not a bound on `T`: `Tensor<T>` itself has no bound.)
    recycle: Option<fn(Vec<T>)>,
}

impl<T: Element> Buffer<T> {
    /// `vec` as a buffer that returns to the pool when dropped.
    pub(crate) fn new(vec: Vec<T>) -> Self {
        Buffer {
            vec,
            recycle: Some(give::<T>),
        }
    }

    /// The `Vec`, no longer pooled.
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        self.recycle = None;
        std::mem::take(&mut self.vec)
    }
}

impl<T> Deref for Buffer<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.vec
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        if let Some(recycle) = self.recycle {
            recycle(std::mem::take(&mut self.vec));
        }
    }
}

/// An empty `Vec` with room for at least `n` elements, from this thread's pool when it holds
/// one that fits (of capacity `n` to `2n`), else newly allocated.
pub(crate) fn take<T: Element>(n: usize) -> Vec<T> {
    if n * size_of::<T>() >= MIN_BYTES {
        if let Some(Some(mut vec)) = with_pool(|pool| pool.take::<T>(n)) {
            vec.clear();
            return vec;
        }
    }
    Vec::with_capacity(n)
}

/// `n` elements, whatever they are, for a result every element of which is written before it
/// is read (a product with `beta = 0`): a pooled buffer keeps the values of the tensor that
/// held it, so no pass zeroes it; a new one is zeros (from `calloc`, pages the system zeroes
/// when first written).
pub(crate) fn stale<T: Element>(n: usize) -> Vec<T> {
    if n * size_of::<T>() >= MIN_BYTES {
        if let Some(Some(mut vec)) = with_pool(|pool| pool.take::<T>(n)) {
            if vec.len() < n {
                vec.clear();
                vec.resize(n, T::zero());
            }
            vec.truncate(n);
            return vec;
        }
    }
    vec![T::zero(); n]
}

/// `n` copies of `value`, in a buffer from [`take`].
pub(crate) fn filled<T: Element>(n: usize, value: T) -> Vec<T> {
    let mut vec = take(n);
    vec.resize(n, value);
    vec
}

/// The items of `iter`, which yields `n` of them (the room taken; more would grow the `Vec`),
/// in a buffer from [`take`].
pub(crate) fn collect<T: Element>(n: usize, iter: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut vec = take(n);
    vec.extend(iter);
    vec
}

/// Puts `vec` in this thread's pool, or frees it when the pool is off or `vec` is too small or
/// too large to keep.
pub(crate) fn give<T: Element>(vec: Vec<T>) {
    let bytes = vec.capacity() * size_of::<T>();
    if bytes >= MIN_BYTES && bytes <= LIMIT.load(Ordering::Relaxed) {
        // On a thread whose pool is gone (dropping tensors while it ends), `vec` is freed.
        with_pool(|pool| pool.give(vec));
    }
}

/// Switches the pool on or off for every thread; returns whether it was on. Switched off, each
/// thread's pooled buffers are freed when it next takes or returns a buffer, and the calling
/// thread's at once. Results are the same either way; only the time spent allocating differs.
///
/// ```
/// use perturb::tensor::buffers;
/// let was_on = buffers::set_enabled(false);
/// assert!(!buffers::is_enabled());
/// assert_eq!(buffers::pooled_bytes(), 0);
/// buffers::set_enabled(was_on);
/// ```
pub fn set_enabled(on: bool) -> bool {
    let was = ENABLED.swap(on, Ordering::Relaxed);
    if !on {
        clear();
    }
    was
}

/// Whether the pool is on (it is unless [`set_enabled`] switched it off).
///
/// ```
/// assert!(perturb::tensor::buffers::is_enabled());
/// ```
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Sets the most bytes each thread's pool keeps (default 32 MiB), and returns the previous
/// bound. A pool above the new bound shrinks the next time its thread returns a buffer; the
/// calling thread's shrinks at once.
///
/// ```
/// use perturb::tensor::{buffers, Tensor};
/// let before = buffers::set_limit(1 << 20);
/// let big: Vec<_> = (0..20).map(|_| Tensor::<f64>::zeros(&[100_000])).collect();
/// drop(big); // 20 buffers of 800 KB: only one fits in 1 MiB
/// assert!(buffers::pooled_bytes() <= 1 << 20);
/// buffers::set_limit(before);
/// ```
pub fn set_limit(bytes: usize) -> usize {
    let before = LIMIT.swap(bytes, Ordering::Relaxed);
    with_pool(|pool| pool.shrink());
    before
}

/// The most bytes each thread's pool keeps (see [`set_limit`]).
///
/// ```
/// assert!(perturb::tensor::buffers::limit() > 0);
/// ```
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// The bytes this thread's pool holds now.
///
/// ```
/// use perturb::tensor::buffers;
/// buffers::clear();
/// assert_eq!(buffers::pooled_bytes(), 0);
/// ```
pub fn pooled_bytes() -> usize {
    with_pool(|pool| pool.bytes).unwrap_or(0)
}

/// Frees every buffer in this thread's pool.
///
/// ```
/// use perturb::tensor::{buffers, Tensor};
/// drop(Tensor::<f32>::zeros(&[4096]));
/// buffers::clear();
/// assert_eq!(buffers::pooled_bytes(), 0);
/// ```
pub fn clear() {
    with_pool(|pool| *pool = Pool::default());
}

/// Buffers smaller than this are left to the allocator, whose caches for small blocks are fast.
const MIN_BYTES: usize = 1024;
/// The most buffers a pool holds, which bounds the search in [`Pool::take`].
const MAX_BUFFERS: usize = 256;

static ENABLED: AtomicBool = AtomicBool::new(true);
static LIMIT: AtomicUsize = AtomicUsize::new(32 << 20);

thread_local! {
    static POOL: RefCell<Pool> = RefCell::default();
}

/// `f` on this thread's pool; `None` while the thread is ending, or when `f` would re-enter it.
fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> Option<R> {
    POOL.try_with(|pool| pool.try_borrow_mut().ok().map(|mut pool| f(&mut pool)))
        .ok()
        .flatten()
}

/// One thread's free buffers, most recently returned last, with their total size.
#[derive(Default)]
struct Pool {
    f32: Vec<Vec<f32>>,
    f64: Vec<Vec<f64>>,
    bytes: usize,
}

impl Pool {
    /// The list of `T`'s buffers (`Element` is sealed: `f32` or `f64`).
    fn list<T: Element>(&mut self) -> &mut Vec<Vec<T>> {
        let f32 = (&mut self.f32 as &mut dyn Any).downcast_mut::<Vec<Vec<T>>>();
        match f32 {
            Some(list) => list,
            None => (&mut self.f64 as &mut dyn Any)
                .downcast_mut::<Vec<Vec<T>>>()
                .expect("an element type is f32 or f64"),
        }
    }

    /// The most recently returned buffer of capacity `n` to `2n`, if any.
    fn take<T: Element>(&mut self, n: usize) -> Option<Vec<T>> {
        if !ENABLED.load(Ordering::Relaxed) {
            *self = Pool::default();
            return None;
        }
        let list = self.list::<T>();
        let i = list
            .iter()
            .rposition(|v| v.capacity() >= n && v.capacity() / 2 <= n)?;
        let vec = list.remove(i);
        self.bytes -= vec.capacity() * size_of::<T>();
        Some(vec)
    }

    fn give<T: Element>(&mut self, vec: Vec<T>) {
        self.bytes += vec.capacity() * size_of::<T>();
        self.list().push(vec);
        self.shrink();
    }

    /// Frees the least recently returned buffers until the pool is within its bounds (all of
    /// them if the pool is off).
    fn shrink(&mut self) {
        let limit = if ENABLED.load(Ordering::Relaxed) {
            LIMIT.load(Ordering::Relaxed)
        } else {
            0
        };
        while self.bytes > limit || self.f32.len() + self.f64.len() > MAX_BUFFERS {
            // Which of the two lists' oldest buffers is older is not recorded: free from the
            // longer list (one of them holds a buffer while the bounds are exceeded).
            let freed = if self.f32.len() >= self.f64.len() {
                self.f32.remove(0).capacity() * size_of::<f32>()
            } else {
                self.f64.remove(0).capacity() * size_of::<f64>()
            };
            self.bytes -= freed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The switches are process-wide and tests run on several threads at once, so these tests
    // leave them as they are and look only at this thread's pool.

    #[test]
    fn a_dropped_buffer_is_taken_again() {
        clear();
        let v: Vec<f64> = take(10_000);
        let ptr = v.as_ptr();
        drop(Buffer::new(v));
        assert_eq!(pooled_bytes(), 80_000);
        // A request of half to all of its capacity takes it; a larger one does not.
        assert!(with_pool(|p| p.take::<f64>(10_001)).unwrap().is_none());
        let again: Vec<f64> = take(5_000);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty());
        assert_eq!(pooled_bytes(), 0);
    }

    #[test]
    fn small_buffers_and_other_types_are_kept_apart() {
        clear();
        drop(Buffer::new(vec![0.0_f32; 100]));
        assert_eq!(pooled_bytes(), 0);
        drop(Buffer::new(vec![0.0_f32; 1000]));
        assert_eq!(pooled_bytes(), 4000);
        assert!(with_pool(|p| p.take::<f64>(500)).unwrap().is_none());
        assert!(with_pool(|p| p.take::<f32>(1000)).unwrap().is_some());
    }

    #[test]
    fn the_pool_stays_within_its_bounds() {
        clear();
        let limit = limit();
        // Buffers of a quarter of the bound: at most four stay, the newest.
        let quarter = limit / 4 / 8;
        let buffers: Vec<Vec<f64>> = (0..6).map(|_| vec![0.0; quarter]).collect();
        let newest = buffers[5].as_ptr();
        for v in buffers {
            drop(Buffer::new(v));
            assert!(pooled_bytes() <= limit);
        }
        assert_eq!(pooled_bytes(), 4 * quarter * 8);
        let again = take::<f64>(quarter);
        assert_eq!(again.as_ptr(), newest);
        drop(again);
        clear();
        // Many small ones: at most MAX_BUFFERS.
        for _ in 0..MAX_BUFFERS + 10 {
            drop(Buffer::new(vec![0.0_f32; 256]));
        }
        assert_eq!(pooled_bytes(), MAX_BUFFERS * 1024);
        clear();
    }

    #[test]
    fn a_vec_taken_out_of_its_buffer_is_not_pooled() {
        clear();
        let v = Buffer::new(vec![1.0_f64; 1000]).into_vec();
        assert_eq!(pooled_bytes(), 0);
        assert_eq!(v, vec![1.0; 1000]);
    }

    #[test]
    fn buffers_dropped_on_another_thread_go_to_its_pool() {
        clear();
        let v = Buffer::new(vec![0.0_f64; 1000]);
        let there = std::thread::spawn(move || {
            drop(v);
            pooled_bytes()
        })
        .join()
        .unwrap();
        assert_eq!((there, pooled_bytes()), (8000, 0));
    }
}
