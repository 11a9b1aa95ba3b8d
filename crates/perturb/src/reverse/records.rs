//! The tape's storage, and the reverse sweep over it.
//!
//! A node is one tag byte, followed in two other lists by only what the tag cannot imply: the
//! index of a parent that is not the node just before, and the local partials. In long chains
//! most operations take the previous result as an argument, so most nodes cost 1 byte of tag and
//! one partial (9 bytes in `f64`) instead of a fixed 24-byte record; the sweep reads the lists
//! backwards, in the order they were written, which is also what the hardware prefetches best.

use crate::scalar::Scalar;

/// An operation rather than an input: it has a first parent.
const HAS_P0: u8 = 1;
/// A binary operation: it has a second parent.
const HAS_P1: u8 = 2;
/// The first parent is the node just before; its index is not stored.
const P0_PREV: u8 = 4;
/// The second parent is the node just before; its index is not stored.
const P1_PREV: u8 = 8;
/// A later node stores this node's index, so its adjoint slot receives contributions. The sweep
/// touches the adjoint slot of an operation without this bit only to report it (`Keep`).
const REFERENCED: u8 = 16;

/// Marks an absent parent where a node is decoded into a fixed pair.
pub(super) const NONE: u32 = u32::MAX;

/// One node, decoded: up to two parents (`NONE` where absent) and their local partials.
#[derive(Clone, Copy, Debug)]
pub(super) struct Node<T> {
    pub(super) parents: [u32; 2],
    pub(super) partials: [T; 2],
}

/// The recorded nodes in execution order (a topological order).
///
/// Invariant: `parents` and `partials` always have room for two entries per free slot of
/// `ops`, so that a push checks one capacity.
pub(super) struct Records<T> {
    ops: Vec<u8>,
    parents: Vec<u32>,
    partials: Vec<T>,
}

/// What the sweep leaves in the adjoint slots of operations (inputs always keep theirs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Sweep {
    /// Every node's adjoint, for [`Gradient`](super::Gradient).
    Keep,
    /// Zero, so that the buffer is clean for the next sweep without another pass over it.
    Consume,
}

impl<T> Records<T> {
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.ops.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.ops.capacity()
    }

    /// The bytes the recorded nodes occupy.
    pub(super) fn bytes(&self) -> usize {
        self.ops.len()
            + self.parents.len() * std::mem::size_of::<u32>()
            + self.partials.len() * std::mem::size_of::<T>()
    }

    pub(super) fn clear(&mut self) {
        self.ops.clear();
        self.parents.clear();
        self.partials.clear();
    }
}

impl<T: Scalar> Records<T> {
    pub(super) fn with_capacity(nodes: usize) -> Self {
        Records {
            ops: Vec::with_capacity(nodes),
            parents: Vec::with_capacity(2 * nodes),
            partials: Vec::with_capacity(2 * nodes),
        }
    }

    /// Whether node `i` is an input (has no parent).
    pub(super) fn is_leaf(&self, i: usize) -> bool {
        self.ops.get(i).is_some_and(|&tag| tag & HAS_P0 == 0)
    }

    /// Records a node and returns its index. `parents[0]` is `NONE` for an input, `parents[1]`
    /// for a unary operation; each parent is an index already recorded.
    #[inline(always)]
    pub(super) fn push(&mut self, parents: [u32; 2], partials: [T; 2]) -> u32 {
        let index = self.ops.len();
        if index == self.ops.capacity() {
            self.grow();
        }
        if index >= NONE as usize {
            tape_full();
        }
        let prev = (index as u32).wrapping_sub(1);
        let mut tag = 0;
        for (k, (&p, d)) in parents.iter().zip(partials).enumerate() {
            if p == NONE {
                break;
            }
            tag |= HAS_P0 << k;
            if p == prev {
                tag |= P0_PREV << k;
            } else {
                self.ops[p as usize] |= REFERENCED;
                // SAFETY: the invariant leaves room for two parents and two partials.
                unsafe { push_unchecked(&mut self.parents, p) };
            }
            unsafe { push_unchecked(&mut self.partials, d) };
        }
        // SAFETY: `index < capacity` after the check above.
        unsafe { push_unchecked(&mut self.ops, tag) };
        index as u32
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.ops.reserve(self.ops.capacity().max(64));
        let room = 2 * self.ops.capacity();
        self.parents.reserve(room - self.parents.len());
        self.partials.reserve(room - self.partials.len());
    }

    /// Every node, decoded, in order.
    pub(super) fn nodes(&self) -> impl Iterator<Item = Node<T>> + '_ {
        let (mut p, mut q) = (0, 0);
        self.ops.iter().enumerate().map(move |(i, &tag)| {
            let mut node = Node {
                parents: [NONE; 2],
                partials: [T::zero(); 2],
            };
            for k in 0..2 {
                if tag & (HAS_P0 << k) != 0 {
                    node.parents[k] = if tag & (P0_PREV << k) != 0 {
                        i as u32 - 1
                    } else {
                        p += 1;
                        self.parents[p - 1]
                    };
                    node.partials[k] = self.partials[q];
                    q += 1;
                }
            }
            node
        })
    }

    /// Where the lists' entries for nodes `..len` end.
    fn ends(&self, len: usize) -> (usize, usize) {
        let (mut p, mut q) = (self.parents.len(), self.partials.len());
        for &tag in &self.ops[len..] {
            p -= stored_parents(tag);
            q -= stored_partials(tag);
        }
        (p, q)
    }

    /// The reverse sweep over nodes `..adjoints.len()`, seeded with `seed` at the last of them:
    /// each node passes its adjoint to its parents, times the local partials. Nodes are in
    /// execution order, so one backward loop visits every node after all its users.
    ///
    /// A node whose adjoint is exactly zero at every level ([`Scalar::is_exact_zero`]) passes
    /// nothing on: the output does not depend on it, and `0 * inf` from an unused `sqrt(0)`
    /// must not reach its parents as NaN.
    ///
    /// The contribution to the node just below is carried in a register rather than written to
    /// memory and read back on the next iteration: in long chains that store-then-load is what
    /// bounds the sweep. A node that no later node names by index ([`REFERENCED`]) gets its
    /// adjoint from that register alone, so its slot is neither read nor, in `Consume` mode,
    /// written.
    ///
    /// `check(i, c, adjoint)` is called with every cotangent `c` sent by node `i` when `CHECK`.
    #[inline]
    pub(super) fn sweep<const CHECK: bool>(
        &self,
        adjoints: &mut [T],
        seed: T,
        mode: Sweep,
        check: impl Fn(usize, T, T),
    ) {
        let len = adjoints.len();
        assert!(len <= self.ops.len());
        let (mut p, mut q) = self.ends(len);
        let ops = &self.ops[..len];
        let mut carry = Some(seed); // pending contribution to node `i`
        for i in (0..len).rev() {
            // SAFETY (all unchecked accesses below): `i < len`; the cursors `p` and `q` move
            // back over exactly the entries node `i` pushed (`stored_parents`, `stored_partials`),
            // which lie before the ends computed for `len`; and every parent index is smaller
            // than its node's own (`push` records only indices already recorded).
            let tag = unsafe { *ops.get_unchecked(i) };
            let slot = unsafe { adjoints.get_unchecked_mut(i) };
            let adjoint = if tag & (REFERENCED | HAS_P0) != HAS_P0 {
                // An input, or a node that may have received contributions in its slot.
                let sum = match carry.take() {
                    Some(c) => *slot + c,
                    None => *slot,
                };
                if tag & HAS_P0 == 0 {
                    *slot = sum;
                    continue;
                }
                if mode == Sweep::Keep {
                    *slot = sum;
                } else {
                    *slot = T::zero();
                }
                sum
            } else {
                match carry.take() {
                    Some(c) => {
                        if mode == Sweep::Keep {
                            *slot = c;
                        }
                        c
                    }
                    None => T::zero(),
                }
            };
            let binary = tag & HAS_P1 != 0;
            p -= stored_parents(tag);
            q -= 1 + binary as usize;
            if adjoint.is_exact_zero() {
                continue;
            }
            let (mut pp, mut qq) = (p, q);
            for k in 0..1 + binary as usize {
                let d = unsafe { *self.partials.get_unchecked(qq) };
                qq += 1;
                let c = adjoint * d;
                if CHECK {
                    check(i, c, adjoint);
                }
                if tag & (P0_PREV << k) != 0 {
                    carry = Some(match carry {
                        Some(prev) => prev + c,
                        None => c,
                    });
                } else {
                    let parent = unsafe { *self.parents.get_unchecked(pp) } as usize;
                    pp += 1;
                    debug_assert!(parent < i);
                    unsafe { *adjoints.get_unchecked_mut(parent) += c };
                }
            }
        }
    }
}

/// How many parent indices a node with this tag stored.
#[inline(always)]
fn stored_parents(tag: u8) -> usize {
    (tag & HAS_P0 != 0 && tag & P0_PREV == 0) as usize
        + (tag & HAS_P1 != 0 && tag & P1_PREV == 0) as usize
}

/// How many partials a node with this tag stored.
#[inline(always)]
fn stored_partials(tag: u8) -> usize {
    (tag & HAS_P0 != 0) as usize + (tag & HAS_P1 != 0) as usize
}

/// Appends within the capacity.
///
/// # Safety
/// `v.len() < v.capacity()`.
#[inline(always)]
unsafe fn push_unchecked<X>(v: &mut Vec<X>, x: X) {
    debug_assert!(v.len() < v.capacity());
    let len = v.len();
    unsafe {
        v.as_mut_ptr().add(len).write(x);
        v.set_len(len + 1);
    }
}

#[cold]
#[inline(never)]
fn tape_full() -> ! {
    panic!(
        "perturb: a tape holds at most {} nodes; clear it or record less",
        NONE
    )
}
