//! The tape's storage, and the reverse sweep over it.
//!
//! A node is one tag byte, followed in two other lists by only what the tag cannot imply: the
//! index of a parent that is not the node just before, and the local partials. In long chains
//! most operations take the previous result as an argument, so most nodes cost 1 byte of tag and
//! one partial (9 bytes in `f64`) instead of a fixed 24-byte record; the sweep reads the lists
//! backwards, in the order they were written, which is also what the hardware prefetches best.

use std::mem::MaybeUninit;

use crate::scalar::Scalar;

use super::spare::{RawBuf, Spare};

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

/// The recorded nodes in execution order (a topological order), and the adjoint slots that
/// [`gradient_wrt`](Records::gradient_wrt) reuses.
///
/// Invariants: `parents` and `partials` always have room for two entries per free slot of
/// `ops`, and `adjoints` has a slot for every slot of `ops`, so that a push checks one
/// capacity. Between sweeps, the adjoint slot of every input and every node named by index is
/// an initialised zero (`push` writes it): those are the only slots a `Consume` sweep reads,
/// and it leaves them zero again. The other slots may hold anything, which is what lets
/// `recycled` reuse memory of another element type without clearing it.
pub(super) struct Records<T> {
    ops: Vec<u8>,
    parents: Vec<u32>,
    partials: Vec<T>,
    adjoints: Vec<MaybeUninit<T>>,
    /// The indices of the inputs, in order, for `gradient_wrt` to reset.
    leaves: Vec<u32>,
    /// True while a sweep into `adjoints` runs: if it panicked, the slots must be reset.
    dirty: bool,
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
        self.leaves.clear();
    }

    pub(super) fn with_capacity(nodes: usize) -> Self {
        let mut records = Records {
            ops: Vec::new(),
            parents: Vec::new(),
            partials: Vec::new(),
            adjoints: Vec::new(),
            leaves: Vec::new(),
            dirty: false,
        };
        records.reserve(nodes);
        records
    }

    /// Records for a tape of this thread, on the buffers the last [`recycle`](Records::recycle)
    /// left, if any: no allocation, growth or fresh page once a first call has sized them.
    pub(super) fn recycled() -> Self {
        let Some(spare) = Spare::take() else {
            return Self::with_capacity(0);
        };
        let mut records = Records {
            ops: spare.ops,
            parents: spare.parents,
            partials: spare.partials.into_vec(),
            adjoints: spare.adjoints.into_vec(),
            leaves: spare.leaves,
            dirty: false,
        };
        records.clear();
        records.reserve(records.ops.capacity());
        records
    }

    /// Leaves these buffers for the next [`recycled`](Records::recycled) on this thread.
    pub(super) fn recycle(self) {
        Spare::keep(Spare {
            ops: self.ops,
            parents: self.parents,
            partials: RawBuf::from_vec(self.partials),
            adjoints: RawBuf::from_vec(self.adjoints),
            leaves: self.leaves,
        });
    }

    /// Room for `nodes` nodes in all lists (see the invariants).
    fn reserve(&mut self, nodes: usize) {
        self.ops.reserve(nodes.saturating_sub(self.ops.len()));
        let room = self.ops.capacity();
        self.parents
            .reserve((2 * room).saturating_sub(self.parents.len()));
        self.partials
            .reserve((2 * room).saturating_sub(self.partials.len()));
        self.adjoints
            .reserve(room.saturating_sub(self.adjoints.len()));
        // Extends the slots to the capacity without writing them: they are `MaybeUninit`.
        let slots = self.adjoints.capacity();
        // SAFETY: within the capacity, and `MaybeUninit` needs no initialisation.
        unsafe { self.adjoints.set_len(slots) };
    }
}

impl<T: Scalar> Records<T> {
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
                // SAFETY: a parent is a node already recorded, so `p < index <= ops.len()`,
                // and `adjoints` has a slot for every slot of `ops`.
                debug_assert!((p as usize) < index);
                unsafe {
                    *self.ops.get_unchecked_mut(p as usize) |= REFERENCED;
                    // Keeps the invariant: a node named by index has a zero slot.
                    *self.adjoints.get_unchecked_mut(p as usize) = MaybeUninit::new(T::zero());
                    // The invariant leaves room for two parents and two partials.
                    push_unchecked(&mut self.parents, p);
                }
            }
            // SAFETY: as above.
            unsafe { push_unchecked(&mut self.partials, d) };
        }
        if tag == 0 {
            self.adjoints[index] = MaybeUninit::new(T::zero());
            self.leaves.push(index as u32);
        }
        // SAFETY: `index < capacity` after the check above.
        unsafe { push_unchecked(&mut self.ops, tag) };
        index as u32
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.reserve(2 * self.ops.capacity().max(32));
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

    /// The derivatives of node `last` with respect to the nodes `wrt` (zero for those recorded
    /// after it), by one sweep into the records' own adjoint slots, which it leaves as the
    /// invariant wants them. `check` as in [`sweep`].
    pub(super) fn gradient_wrt<const CHECK: bool>(
        &mut self,
        last: usize,
        wrt: &[u32],
        check: impl Fn(usize, T, T),
    ) -> Vec<T> {
        if self.dirty {
            self.adjoints.fill(MaybeUninit::new(T::zero()));
        }
        self.dirty = true;
        // The sweep zeroes the slots of operations as it goes, unless one is asked for.
        let intermediate = wrt
            .iter()
            .any(|&x| x as usize <= last && !self.is_leaf(x as usize));
        let mode = if intermediate {
            Sweep::Keep
        } else {
            Sweep::Consume
        };
        let lists = Lists {
            ops: &self.ops,
            parents: &self.parents,
            partials: &self.partials,
        };
        let slots = &mut self.adjoints[..=last];
        sweep::<T, CHECK>(lists, slots, T::one(), mode, check);
        let result = wrt
            .iter()
            .map(|&x| {
                // SAFETY: an input's slot is initialised (the invariant), and a `Keep` sweep
                // writes every slot it visits.
                slots
                    .get(x as usize)
                    .map_or(T::zero(), |s| unsafe { s.assume_init() })
            })
            .collect();
        if intermediate {
            slots.fill(MaybeUninit::new(T::zero()));
        } else {
            // The sweep zeroed every slot it read but the inputs'; zero those too.
            for &leaf in self
                .leaves
                .iter()
                .take_while(|&&leaf| leaf as usize <= last)
            {
                slots[leaf as usize] = MaybeUninit::new(T::zero());
            }
        }
        self.dirty = false;
        result
    }

    /// A `Keep` sweep from node `adjoints.len() - 1` into `adjoints`, which must be all zero.
    pub(super) fn gradient<const CHECK: bool>(
        &self,
        adjoints: &mut [T],
        check: impl Fn(usize, T, T),
    ) {
        // SAFETY: `MaybeUninit<T>` has the layout of `T`, and the sweep writes only values.
        let slots = unsafe { &mut *(adjoints as *mut [T] as *mut [MaybeUninit<T>]) };
        let lists = Lists {
            ops: &self.ops,
            parents: &self.parents,
            partials: &self.partials,
        };
        sweep::<T, CHECK>(lists, slots, T::one(), Sweep::Keep, check);
    }
}

/// The recorded lists a sweep reads.
#[derive(Clone, Copy)]
struct Lists<'a, T> {
    ops: &'a [u8],
    parents: &'a [u32],
    partials: &'a [T],
}

impl<T> Lists<'_, T> {
    /// Where the lists' entries for nodes `..len` end.
    fn ends(&self, len: usize) -> (usize, usize) {
        let (mut p, mut q) = (self.parents.len(), self.partials.len());
        for &tag in &self.ops[len..] {
            p -= stored_parents(tag);
            q -= stored_partials(tag);
        }
        (p, q)
    }
}

/// The reverse sweep over nodes `..adjoints.len()`, seeded with `seed` at the last of them:
/// each node passes its adjoint to its parents, times the local partials. Nodes are in
/// execution order, so one backward loop visits every node after all its users.
///
/// A node whose adjoint is exactly zero at every level ([`Scalar::is_exact_zero`]) passes
/// nothing on: the output does not depend on it, and `0 * inf` from an unused `sqrt(0)` must
/// not reach its parents as NaN.
///
/// The contribution to the node just below is carried in a register rather than written to
/// memory and read back on the next iteration: in long chains that store-then-load is what
/// bounds the sweep. A node that no later node names by index ([`REFERENCED`]) gets its
/// adjoint from that register alone, so its slot is not read, and written only in `Keep` mode.
/// The slots of inputs and of nodes named by index must hold initialised values.
///
/// `check(i, c, adjoint)` is called with every cotangent `c` sent by node `i` when `CHECK`.
#[inline]
fn sweep<T: Scalar, const CHECK: bool>(
    lists: Lists<'_, T>,
    adjoints: &mut [MaybeUninit<T>],
    seed: T,
    mode: Sweep,
    check: impl Fn(usize, T, T),
) {
    let len = adjoints.len();
    assert!(len <= lists.ops.len());
    let (mut p, mut q) = lists.ends(len);
    let Lists {
        ops,
        parents,
        partials,
    } = lists;
    let ops = &ops[..len];
    let mut carry = Some(seed); // pending contribution to node `i`
    for i in (0..len).rev() {
        // SAFETY (all unchecked accesses below): `i < len`; the cursors `p` and `q` move back
        // over exactly the entries node `i` pushed (`stored_parents`, `stored_partials`), which
        // lie before the ends computed for `len`; and every parent index is smaller than its
        // node's own (`push` records only indices already recorded).
        let tag = unsafe { *ops.get_unchecked(i) };
        let slot = unsafe { adjoints.get_unchecked_mut(i) };
        if tag == HAS_P0 | P0_PREV {
            // The commonest node of a chain, a unary operation on the node just before that no
            // other node names: the general case below, with everything known from the tag.
            q -= 1;
            let adjoint = carry.take().unwrap_or_else(T::zero);
            if mode == Sweep::Keep {
                *slot = MaybeUninit::new(adjoint);
            }
            if !adjoint.is_exact_zero() {
                let c = adjoint * unsafe { *partials.get_unchecked(q) };
                if CHECK {
                    check(i, c, adjoint);
                }
                carry = Some(c);
            }
            continue;
        }
        let adjoint = if tag & (REFERENCED | HAS_P0) != HAS_P0 {
            // An input, or a node that may have received contributions in its slot; either
            // slot is initialised (see above).
            let held = unsafe { slot.assume_init() };
            let sum = match carry.take() {
                Some(c) => held + c,
                None => held,
            };
            if tag & HAS_P0 == 0 {
                *slot = MaybeUninit::new(sum);
                continue;
            }
            *slot = MaybeUninit::new(if mode == Sweep::Keep { sum } else { T::zero() });
            sum
        } else {
            let sum = carry.take().unwrap_or_else(T::zero);
            if mode == Sweep::Keep {
                *slot = MaybeUninit::new(sum);
            }
            sum
        };
        let binary = tag & HAS_P1 != 0;
        p -= stored_parents(tag);
        q -= 1 + binary as usize;
        if adjoint.is_exact_zero() {
            continue;
        }
        let (mut pp, mut qq) = (p, q);
        for k in 0..1 + binary as usize {
            let d = unsafe { *partials.get_unchecked(qq) };
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
                let parent = unsafe { *parents.get_unchecked(pp) } as usize;
                pp += 1;
                debug_assert!(parent < i);
                // The parent is named by index, so its slot is initialised.
                let slot = unsafe { adjoints.get_unchecked_mut(parent) };
                *slot = MaybeUninit::new(unsafe { slot.assume_init() } + c);
            }
        }
    }
}

/// How many parent indices a node with this tag stored.
#[inline(always)]
fn stored_parents(tag: u8) -> usize {
    STORED_PARENTS[tag as usize] as usize
}

/// `stored_parents` for every tag: a load instead of a dozen instructions in the sweep.
static STORED_PARENTS: [u8; 256] = {
    let mut table = [0; 256];
    let mut tag = 0;
    while tag < 256 {
        let t = tag as u8;
        table[tag] = (t & HAS_P0 != 0 && t & P0_PREV == 0) as u8
            + (t & HAS_P1 != 0 && t & P1_PREV == 0) as u8;
        tag += 1;
    }
    table
};

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
