//! One set of tape buffers kept per thread between calls of the functions that make a tape of
//! their own (`perturb::gradient` and the like), so that a call need not allocate, grow, copy
//! and fault in fresh pages for a tape as large as the last one. With the system allocator a
//! 50 MB tape made afresh costs more in page faults than its recording.

use std::alloc::Layout;
use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

/// The most bytes a thread keeps: a larger set of buffers is freed as usual.
const MAX_BYTES: usize = 512 << 20;

/// A tape's buffers, with the element type of the typed ones erased.
pub(super) struct Spare {
    pub(super) nodes: RawBuf,
    pub(super) leaves: Vec<u32>,
    pub(super) adjoints: RawBuf,
}

thread_local! {
    static SPARE: Cell<Option<Spare>> = const { Cell::new(None) };
}

impl Spare {
    /// This thread's spare buffers, if it has any.
    pub(super) fn take() -> Option<Spare> {
        SPARE.try_with(Cell::take).ok().flatten()
    }

    /// Keeps `self` for the next [`take`](Spare::take) unless it is over the limit, or smaller
    /// than what the thread already keeps.
    pub(super) fn keep(self) {
        if self.bytes() > MAX_BYTES {
            return;
        }
        let _ = SPARE.try_with(|spare| {
            let old = spare.take();
            let keep = match old {
                Some(old) if old.bytes() > self.bytes() => old,
                _ => self,
            };
            spare.set(Some(keep));
        });
    }

    fn bytes(&self) -> usize {
        self.nodes.layout.size() + 4 * self.leaves.capacity() + self.adjoints.layout.size()
    }
}

/// A heap block that held a `Vec` of some element type, to be reused as a `Vec` of a type with
/// the same alignment whose size divides the block's.
pub(super) struct RawBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl RawBuf {
    pub(super) fn from_vec<X>(v: Vec<X>) -> RawBuf {
        let mut v = ManuallyDrop::new(v);
        let size = std::mem::size_of::<X>() * v.capacity();
        RawBuf {
            // SAFETY: a `Vec`'s pointer is never null.
            ptr: unsafe { NonNull::new_unchecked(v.as_mut_ptr().cast()) },
            layout: Layout::from_size_align(size, std::mem::align_of::<X>())
                .expect("a Vec's layout is valid"),
        }
    }

    /// The block as an empty `Vec<X>`, or a new empty `Vec` (the block freed) where its layout
    /// does not fit `X`.
    pub(super) fn into_vec<X>(self) -> Vec<X> {
        let (size, align) = (std::mem::size_of::<X>(), std::mem::align_of::<X>());
        if size == 0
            || self.layout.size() == 0
            || self.layout.align() != align
            || self.layout.size() % size != 0
        {
            return Vec::new();
        }
        let this = ManuallyDrop::new(self);
        // SAFETY: the block was allocated by the global allocator with `this.layout`, which is
        // the layout of `[X; size / size_of::<X>()]`: the same alignment and size; length 0.
        unsafe { Vec::from_raw_parts(this.ptr.as_ptr().cast(), 0, this.layout.size() / size) }
    }
}

impl Drop for RawBuf {
    fn drop(&mut self) {
        if self.layout.size() != 0 {
            // SAFETY: allocated by the global allocator with this layout (`from_vec`).
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
        }
    }
}
