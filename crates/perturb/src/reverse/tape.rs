//! The tape: a flat arena of recorded operations, swept backwards by a loop.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::debug::{self, F64Bits, InputSummary, NonFinite};
use crate::error::Error;
use crate::number::{impl_ad_number, AdNumber};
use crate::scalar::{BinaryOp, Scalar, UnaryOp};

use super::spare::{RawBuf, Spare};

/// Marks an absent parent: a leaf has none, a unary node one.
const NONE: u32 = u32::MAX;

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// One recorded operation: up to two parents and the local partial derivative with respect to
/// each, computed when the operation ran (the lecture's `grads`). 24 bytes for `f64`.
#[derive(Clone, Copy)]
struct Node<T> {
    parents: [u32; 2],
    partials: [T; 2],
}

/// A reverse-mode tape (a "Wengert list").
///
/// Operations on [`Var`]s append a node (24 bytes for `f64`) to a flat `Vec` in execution order, which is already a
/// topological order, so [`gradient`](Tape::gradient) is one loop from the output back to the
/// first node: no graph of pointers, no recursion, and one sweep gives the derivative of the
/// output with respect to every input.
///
/// [`clear`](Tape::clear) empties the tape but keeps its buffer. It takes `&mut self`, so the
/// compiler rejects any `Var` still alive from before; a [`Gradient`] computed before a clear
/// reports [`Error::StaleGradient`] if asked about a variable recorded after it. A tape is `Send`
/// but not `Sync`: each thread records on its own tape.
///
/// ```
/// use perturb::{Scalar, Tape};
///
/// // The lecture's L = -log sigmoid(w x^2).
/// let tape = Tape::new();
/// let x = tape.var(0.5_f64);
/// let w = tape.var(3.0);
/// let loss = -(w * x * x).log_sigmoid();
/// let grad = tape.gradient(loss).unwrap();
/// let s = 1.0 / (1.0 + (-0.75_f64).exp());
/// assert!((grad[x] - (-(1.0 - s) * 2.0 * 3.0 * 0.5)).abs() < 1e-12);
/// assert!((grad[w] - (-(1.0 - s) * 0.25)).abs() < 1e-12);
/// ```
pub struct Tape<T> {
    id: u64,
    generation: u64,
    // Only `push` mutates the nodes. It runs no user code while it holds the borrow, and the
    // tape is not `Sync`, so no other borrow can be live at the same time.
    nodes: UnsafeCell<Vec<Node<T>>>,
    // How many nodes `push` may write without its slow path: `min(capacity, NONE)`, or 0 for
    // a traced tape so that every push logs. Never above the capacity of `nodes`, which is
    // what lets the fast path write without Vec's own growth check.
    limit: Cell<usize>,
    // The indices of the inputs (leaves), in order, for `gradient_wrt` to reset.
    leaves: UnsafeCell<Vec<u32>>,
    // Adjoints reused by `gradient_wrt`, all zero between calls; same discipline as `nodes`.
    scratch: UnsafeCell<Scratch<T>>,
    // For a traced tape: each node's operation name and value; same discipline as `nodes`.
    traced: bool,
    log: UnsafeCell<Vec<(&'static str, T)>>,
    // Inside `debug::detect_non_finite`: each node recorded there, with its operation, line and
    // inputs, so that the reverse sweep can name the rule that sent a non-finite cotangent.
    // Ascending node indices; same discipline as `nodes`.
    checked: UnsafeCell<Vec<CheckedNode>>,
}

/// What a checked reverse sweep needs to know about a node to report it.
struct CheckedNode {
    node: u32,
    op: &'static str,
    location: Option<&'static Location<'static>>,
    inputs: Vec<InputSummary>,
}

/// A buffer of adjoints kept all zero between sweeps, so a sweep need not clear it first.
struct Scratch<T> {
    adjoints: Vec<T>,
    /// False while a sweep runs: if it panicked, the buffer must be cleared before reuse.
    clean: bool,
}

impl<T: Scalar> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Scalar> Tape<T> {
    /// An empty tape.
    ///
    /// ```
    /// let tape = perturb::Tape::<f64>::new();
    /// assert!(tape.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty tape with room for `nodes` operations before it reallocates.
    ///
    /// ```
    /// let tape = perturb::Tape::<f64>::with_capacity(1000);
    /// assert!(tape.capacity() >= 1000);
    /// ```
    pub fn with_capacity(nodes: usize) -> Self {
        Self::on(Vec::with_capacity(nodes), Vec::new(), Vec::new())
    }

    /// An empty tape on the buffers this thread's last [`recycle`](Tape::recycle) left, if
    /// any, for the functions that make a tape of their own (`perturb::gradient` and the
    /// like): once a first call has sized them, no allocation, growth copy or fresh page.
    pub(crate) fn recycled() -> Self {
        match Spare::take() {
            Some(spare) => {
                let mut leaves = spare.leaves;
                leaves.clear();
                Self::on(spare.nodes.into_vec(), leaves, spare.adjoints.into_vec())
            }
            None => Self::new(),
        }
    }

    /// Keeps this tape's buffers for the next [`recycled`](Tape::recycled) tape of this thread
    /// (one set, up to 512 MiB).
    pub(crate) fn recycle(self) {
        Spare::keep(Spare {
            nodes: RawBuf::from_vec(self.nodes.into_inner()),
            leaves: self.leaves.into_inner(),
            adjoints: RawBuf::from_vec(self.scratch.into_inner().adjoints),
        });
    }

    /// A tape on these buffers; `nodes`, `leaves` and `adjoints` must be empty.
    fn on(nodes: Vec<Node<T>>, leaves: Vec<u32>, adjoints: Vec<T>) -> Self {
        debug_assert!(nodes.is_empty() && leaves.is_empty() && adjoints.is_empty());
        Tape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            generation: 0,
            limit: Cell::new(nodes.capacity().min(NONE as usize)),
            nodes: UnsafeCell::new(nodes),
            leaves: UnsafeCell::new(leaves),
            scratch: UnsafeCell::new(Scratch {
                adjoints,
                clean: true,
            }),
            traced: false,
            log: UnsafeCell::new(Vec::new()),
            checked: UnsafeCell::new(Vec::new()),
        }
    }

    /// An empty tape that also keeps each node's operation name and value, so that
    /// [`trace`](Tape::trace) can show the computation (the lecture's value view). Slower and
    /// larger than an untraced tape; meant for explaining, not for speed.
    ///
    /// ```
    /// use perturb::{Float, Tape};
    /// let tape = Tape::traced();
    /// let x = tape.var(0.5_f64);
    /// let y = (x * x).sin();
    /// let trace = tape.trace().unwrap();
    /// assert_eq!(trace.nodes[2].op, "sin");
    /// assert_eq!(trace.nodes[2].value, y.value());
    /// ```
    pub fn traced() -> Self {
        Tape {
            traced: true,
            limit: Cell::new(0),
            ..Self::new()
        }
    }

    /// The recorded computation as data: each node's operation, parents, local partials and
    /// value. An error if the tape was not made with [`traced`](Tape::traced).
    ///
    /// ```
    /// let tape = perturb::Tape::traced();
    /// let a = tape.var(3.0_f64);
    /// let b = a * 5.0;
    /// let c = a * b;
    /// let trace = tape.trace().unwrap();
    /// // c = a b: parents a (node 0) and b (node 1), local partials (b, a) = (15, 3)
    /// assert_eq!(trace.nodes[2].parents, vec![0, 1]);
    /// assert_eq!(trace.nodes[2].partials, vec![15.0, 3.0]);
    /// # let _ = c;
    /// ```
    pub fn trace(&self) -> Result<crate::explain::Trace<T>, Error> {
        if !self.traced {
            return Err(Error::InvalidArgument {
                op: "Tape::trace",
                reason: "the tape was not made with Tape::traced, so it kept no values".into(),
            });
        }
        // SAFETY: see the `nodes` field.
        let log = unsafe { &*self.log.get() };
        let nodes = self
            .nodes()
            .iter()
            .zip(log)
            .map(|(node, &(op, value))| {
                let mut parents = Vec::new();
                let mut partials = Vec::new();
                for (p, d) in node.parents.iter().zip(node.partials) {
                    if *p != NONE {
                        parents.push(*p as usize);
                        partials.push(d);
                    }
                }
                crate::explain::TraceNode {
                    op,
                    parents,
                    partials,
                    value,
                }
            })
            .collect();
        Ok(crate::explain::Trace { nodes })
    }

    /// A new input variable recorded on this tape.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let x = tape.var(2.0_f64);
    /// assert_eq!(x.value(), 2.0);
    /// ```
    #[inline]
    pub fn var(&self, value: T) -> Var<'_, T> {
        let index = self.push(
            Node {
                parents: [NONE; 2],
                partials: [T::zero(); 2],
            },
            "input",
            value,
        );
        // SAFETY: see the `nodes` field; the borrow ends here.
        unsafe { &mut *self.leaves.get() }.push(index);
        Var {
            tape: Some(self),
            index,
            value,
        }
    }

    /// One input variable per value, in order.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let xs = tape.vars(&[1.0_f64, 2.0]);
    /// assert_eq!(xs[1].value(), 2.0);
    /// ```
    pub fn vars(&self, values: &[T]) -> Vec<Var<'_, T>> {
        values.iter().map(|&v| self.var(v)).collect()
    }

    /// The number of recorded nodes (inputs and operations).
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let x = tape.var(1.0_f64);
    /// let _y = x * x;
    /// assert_eq!(tape.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.nodes().len()
    }

    /// Whether nothing is recorded.
    ///
    /// ```
    /// assert!(perturb::Tape::<f32>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many nodes fit before the buffer grows.
    ///
    /// ```
    /// let mut tape = perturb::Tape::<f64>::with_capacity(10);
    /// tape.clear();
    /// assert!(tape.capacity() >= 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.nodes().capacity()
    }

    /// Bytes of tape per recorded operation (unary or binary): 24 for `f64`.
    ///
    /// ```
    /// assert_eq!(perturb::Tape::<f64>::bytes_per_node(), 24);
    /// ```
    pub const fn bytes_per_node() -> usize {
        std::mem::size_of::<Node<T>>()
    }

    /// This tape's identity, used in error messages.
    ///
    /// ```
    /// let (a, b) = (perturb::Tape::<f64>::new(), perturb::Tape::<f64>::new());
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Forgets every recorded node but keeps the buffer, so the next recording does not allocate.
    ///
    /// ```
    /// let mut tape = perturb::Tape::new();
    /// for step in 0..3 {
    ///     let x = tape.var(step as f64);
    ///     let g = tape.gradient(x * x).unwrap();
    ///     assert_eq!(g[x], 2.0 * step as f64);
    ///     tape.clear();
    /// }
    /// assert_eq!(tape.len(), 0);
    /// ```
    ///
    /// A variable cannot outlive a clear of its tape: this does not compile.
    ///
    /// ```compile_fail
    /// let mut tape = perturb::Tape::new();
    /// let x = tape.var(1.0_f64);
    /// tape.clear();
    /// let y = x * x; // error: `tape` is borrowed by `x`
    /// ```
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
        self.leaves.get_mut().clear();
        self.log.get_mut().clear();
        self.checked.get_mut().clear();
        self.generation += 1;
    }

    /// The derivative of `output` with respect to every node on the tape, in one backward sweep.
    ///
    /// A constant `output` has gradient zero. An `output` recorded on another tape is an
    /// [`Error::ForeignVariable`].
    ///
    /// ```
    /// // The lecture's reused value: c = a b with b = 5a, so dc/da = 10a.
    /// let tape = perturb::Tape::new();
    /// let a = tape.var(1.5_f64);
    /// let b = a * 5.0;
    /// let c = a * b;
    /// assert_eq!(tape.gradient(c).unwrap()[a], 15.0);
    /// ```
    pub fn gradient(&self, output: Var<'_, T>) -> Result<Gradient<T>, Error> {
        let nodes = self.nodes();
        let mut adjoints = vec![T::zero(); nodes.len()];
        if let Some(last) = self.output_index(output, "Tape::gradient")? {
            adjoints[last] = T::one();
            self.sweep(&mut adjoints[..=last], Sweep::Keep);
        }
        Ok(Gradient {
            tape: self.id,
            generation: self.generation,
            adjoints,
            zero: T::zero(),
        })
    }

    /// The derivatives of `output` with respect to `wrt`, in order: the same sweep as
    /// [`gradient`](Tape::gradient), into a buffer the tape keeps and reuses, so repeated calls
    /// allocate only the result.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let x = tape.vars(&[2.0_f64, 3.0]);
    /// let y = x[0] * x[1] + x[1];
    /// assert_eq!(tape.gradient_wrt(y, &x).unwrap(), vec![3.0, 3.0]);
    /// assert!(tape.gradient_wrt(y, &[perturb::Var::constant(1.0)]).is_err());
    /// ```
    pub fn gradient_wrt(&self, output: Var<'_, T>, wrt: &[Var<'_, T>]) -> Result<Vec<T>, Error> {
        let op = "Tape::gradient_wrt";
        let last = self.output_index(output, op)?;
        for x in wrt {
            match x.tape {
                None => return Err(Error::NotAVariable { op }),
                Some(t) if t.id != self.id => {
                    return Err(Error::ForeignVariable {
                        op,
                        expected: self.id,
                        found: t.id,
                    })
                }
                Some(_) => {}
            }
        }
        let Some(last) = last else {
            return Ok(vec![T::zero(); wrt.len()]);
        };
        // SAFETY: see the `scratch` field; the borrow ends before the function returns.
        let scratch = unsafe { &mut *self.scratch.get() };
        if !scratch.clean {
            scratch.adjoints.fill(T::zero());
        }
        if scratch.adjoints.len() <= last {
            scratch.adjoints.resize(last + 1, T::zero());
        }
        scratch.clean = false;
        let adjoints = &mut scratch.adjoints[..=last];
        adjoints[last] = T::one();
        // The sweep zeroes the slots of operations as it goes, unless one is asked for.
        let nodes = self.nodes();
        let intermediate = wrt.iter().any(|x| {
            nodes
                .get(x.index as usize)
                .is_some_and(|n| x.index as usize <= last && n.parents[0] != NONE)
        });
        let mode = if intermediate {
            Sweep::Keep
        } else {
            Sweep::Consume
        };
        self.sweep(adjoints, mode);
        let result = wrt
            .iter()
            .map(|x| {
                adjoints
                    .get(x.index as usize)
                    .copied()
                    .unwrap_or_else(T::zero)
            })
            .collect();
        if intermediate {
            adjoints.fill(T::zero());
        } else {
            // The sweep zeroed every slot but the inputs'; zero those too.
            // SAFETY: see the `nodes` field.
            let leaves = unsafe { &*self.leaves.get() };
            for &leaf in leaves.iter().take_while(|&&leaf| leaf as usize <= last) {
                adjoints[leaf as usize] = T::zero();
            }
        }
        scratch.clean = true;
        Ok(result)
    }

    /// The reverse sweep over the first `adjoints.len()` nodes, checked inside
    /// [`debug::detect_non_finite`].
    fn sweep(&self, adjoints: &mut [T], mode: Sweep) {
        let nodes = &self.nodes()[..adjoints.len()];
        if debug::enabled() {
            // SAFETY: see the `nodes` field.
            let checked = unsafe { &*self.checked.get() };
            sweep::<T, true>(nodes, adjoints, mode, checked);
        } else {
            sweep::<T, false>(nodes, adjoints, mode, &[]);
        }
    }

    /// Keeps what a checked sweep needs to report node `node` (checking is on).
    #[cold]
    #[inline(never)]
    fn note_checked(
        &self,
        node: u32,
        op: &'static str,
        location: &'static Location<'static>,
        inputs: &[T],
    ) {
        // SAFETY: see the `nodes` field; the borrow ends here.
        unsafe { &mut *self.checked.get() }.push(CheckedNode {
            node,
            op,
            location: Some(location),
            inputs: debug::scalar_inputs(inputs),
        });
    }

    /// The node index of `output` if it is recorded on this tape, `None` for a constant.
    fn output_index(&self, output: Var<'_, T>, op: &'static str) -> Result<Option<usize>, Error> {
        match output.tape {
            None => Ok(None),
            Some(tape) if tape.id == self.id => Ok(Some(output.index as usize)),
            Some(tape) => Err(Error::ForeignVariable {
                op,
                expected: self.id,
                found: tape.id,
            }),
        }
    }

    #[inline(always)]
    fn nodes(&self) -> &Vec<Node<T>> {
        // SAFETY: see the `nodes` field: no mutable borrow is live outside `push`.
        unsafe { &*self.nodes.get() }
    }

    /// Appends `node` (the result of operation `op`, of value `value`) and returns its index.
    /// The fast path is one compare against `limit` and the write; growth, the node-count
    /// limit and a traced tape's log take the cold path, which does not see `node`, so that
    /// the node stays in registers instead of being built on the stack and copied.
    #[inline(always)]
    fn push(&self, node: Node<T>, op: &'static str, value: T) -> u32 {
        let index = self.nodes().len();
        if index >= self.limit.get() {
            self.make_room(op, value);
        }
        // SAFETY: see the `nodes` field; this borrow ends before the function returns. The
        // slot is allocated: `index < limit <= capacity` (see the `limit` field), or
        // `make_room` reserved it; it is initialised before the length covers it.
        unsafe {
            let nodes = &mut *self.nodes.get();
            nodes.as_mut_ptr().add(index).write(node);
            nodes.set_len(index + 1);
        }
        index as u32
    }

    /// Room for one more node, for `push` when the buffer is full, the tape holds `NONE`
    /// nodes, or the tape is traced (then it also logs the node's operation and value).
    #[cold]
    #[inline(never)]
    fn make_room(&self, op: &'static str, value: T) {
        // SAFETY: see the `nodes` field; these borrows end before the function returns.
        let nodes = unsafe { &mut *self.nodes.get() };
        if nodes.len() >= NONE as usize {
            tape_full();
        }
        nodes.reserve(1);
        if self.traced {
            // SAFETY: as above.
            unsafe { &mut *self.log.get() }.push((op, value));
        } else {
            self.limit.set(nodes.capacity().min(NONE as usize));
        }
    }
}

/// What the sweep leaves in the adjoint slots of operations (inputs always keep theirs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// Every node's adjoint, for [`Gradient`].
    Keep,
    /// Zero, so that the buffer is clean for the next sweep without another pass over it.
    Consume,
}

/// The reverse sweep: each node passes its adjoint to its parents, times the local partials.
/// Nodes are in execution order, so one backward loop visits every node after all its users.
///
/// A node whose adjoint is exactly zero at every level ([`Scalar::is_exact_zero`]) passes
/// nothing on: the output does not depend on it, and `0 * inf` from an unused `sqrt(0)` must
/// not reach its parents as NaN.
///
/// The contribution to the node just below is carried in a register rather than written to
/// memory and read back on the next iteration: in long chains that store-then-load is what
/// bounds the sweep.
///
/// With `CHECK` (inside [`debug::detect_non_finite`]) each cotangent sent to a parent is
/// checked and the first that is not finite reported, naming the node's operation from
/// `checked`.
#[inline]
fn sweep<T: Scalar, const CHECK: bool>(
    nodes: &[Node<T>],
    adjoints: &mut [T],
    mode: Sweep,
    checked: &[CheckedNode],
) {
    assert_eq!(nodes.len(), adjoints.len());
    let mut carry = None; // pending contribution to node `i`
    for i in (0..nodes.len()).rev() {
        // SAFETY: `i < len`, and every parent index is smaller than its node's own index
        // (`push` records only variables of this tape, all recorded before the node).
        let node = unsafe { nodes.get_unchecked(i) };
        let slot = unsafe { adjoints.get_unchecked_mut(i) };
        let adjoint = match carry.take() {
            Some(c) => *slot + c,
            None => *slot,
        };
        let [p0, p1] = node.parents;
        if p0 == NONE {
            *slot = adjoint;
            continue;
        }
        *slot = if mode == Sweep::Keep {
            adjoint
        } else {
            T::zero()
        };
        if adjoint.is_exact_zero() {
            continue;
        }
        let site = if CHECK {
            checked_site(checked, i)
        } else {
            None
        };
        debug_assert!((p0 as usize) < i && (p1 == NONE || (p1 as usize) < i));
        let below = (i as u32).wrapping_sub(1);
        for (p, d) in [(p0, node.partials[0]), (p1, node.partials[1])] {
            if p == below {
                let c = adjoint * d;
                if CHECK {
                    check_cotangent(c, adjoint, site);
                }
                carry = Some(match carry {
                    Some(prev) => prev + c,
                    None => c,
                });
            } else if p != NONE {
                let c = adjoint * d;
                if CHECK {
                    check_cotangent(c, adjoint, site);
                }
                // SAFETY: `p < i <= len` (see above).
                unsafe { *adjoints.get_unchecked_mut(p as usize) += c };
            }
        }
    }
}

/// What `checked` knows of node `i`, if it was recorded while checking was on.
fn checked_site(checked: &[CheckedNode], i: usize) -> Option<&CheckedNode> {
    checked
        .binary_search_by_key(&(i as u32), |c| c.node)
        .ok()
        .map(|k| &checked[k])
}

/// Reports a cotangent that is not finite, sent by the rule of `site`'s operation.
#[cold]
#[inline(never)]
fn check_cotangent<T: Scalar>(c: T, adjoint: T, site: Option<&CheckedNode>) {
    let Some(found) = c.first_non_finite() else {
        return;
    };
    // Replaces a report of the nested arithmetic that computed `c` (provisional).
    debug::report_scalar(|| {
        let mut inputs = vec![InputSummary::of(&[], [adjoint.to_f64_value()])];
        inputs.extend(site.iter().flat_map(|c| c.inputs.iter().cloned()));
        NonFinite {
            op: site.map_or("an operation recorded before checking began", |c| c.op),
            sweep: debug::Sweep::Reverse,
            quantity: "cotangent",
            found: F64Bits(found),
            inputs,
            location: site.and_then(|c| c.location),
        }
    });
}

#[cold]
#[inline(never)]
fn tape_full() -> ! {
    panic!(
        "perturb: a tape holds at most {} nodes; clear it or record less",
        NONE
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn mixed_tapes(a: u64, b: u64) -> ! {
    panic!("perturb: an operation combined a variable of tape #{a} with one of tape #{b}; variables of different tapes cannot be mixed")
}

impl<T> fmt::Debug for Tape<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: see the `nodes` field.
        let len = unsafe { &*self.nodes.get() }.len();
        f.debug_struct("Tape")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("nodes", &len)
            .finish()
    }
}

/// A number recorded on a [`Tape`] (or a constant, recorded nowhere).
///
/// A `Var` is a `Copy` handle: the tape it belongs to, its node's index and its value. It
/// implements [`num_traits::Float`], so generic code runs on it unchanged and is recorded as it
/// runs. Constants such as `T::from(0.5)` or `T::one()` inside generic code are `Var`s that
/// belong to no tape and cost no node.
///
/// ```
/// use perturb::Tape;
///
/// fn f<T: num_traits::Float>(x: &[T]) -> T {
///     x[0] * x[1] + x[0].sin()
/// }
///
/// let tape = Tape::new();
/// let x = tape.vars(&[1.0_f64, 2.0]);
/// let y = f(&x);
/// let grad = tape.gradient(y).unwrap();
/// assert_eq!(grad.wrt(&x).unwrap(), vec![2.0 + 1.0_f64.cos(), 1.0]);
/// ```
#[derive(Clone, Copy)]
pub struct Var<'t, T> {
    tape: Option<&'t Tape<T>>,
    index: u32,
    value: T,
}

impl<'t, T: Scalar> Var<'t, T> {
    /// A constant: recorded on no tape, derivative zero.
    ///
    /// ```
    /// let c = perturb::Var::constant(2.0_f64);
    /// assert!(c.is_constant());
    /// ```
    #[inline]
    pub fn constant(value: T) -> Self {
        Var {
            tape: None,
            index: NONE,
            value,
        }
    }

    /// The value.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// assert_eq!((tape.var(2.0_f64) * 3.0).value(), 6.0);
    /// ```
    #[inline]
    pub fn value(self) -> T {
        self.value
    }

    /// Whether this is a constant rather than a recorded variable.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// assert!(!tape.var(1.0_f64).is_constant());
    /// ```
    #[inline]
    pub fn is_constant(self) -> bool {
        self.tape.is_none()
    }

    /// The id of the tape this variable is recorded on, if any.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// assert_eq!(tape.var(1.0_f64).tape_id(), Some(tape.id()));
    /// ```
    #[inline]
    pub fn tape_id(self) -> Option<u64> {
        self.tape.map(|t| t.id)
    }

    /// The index of this variable's node on its tape (`None` for a constant), as in
    /// [`Trace::nodes`](crate::explain::Trace::nodes).
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let x = tape.var(1.0_f64);
    /// assert_eq!(((x * x).node(), perturb::Var::constant(1.0).node()), (Some(1), None));
    /// ```
    #[inline]
    pub fn node(self) -> Option<usize> {
        self.tape.map(|_| self.index as usize)
    }

    #[inline(always)]
    fn record(
        tape: &'t Tape<T>,
        op: &'static str,
        parents: [u32; 2],
        partials: [T; 2],
        value: T,
    ) -> Self {
        Var {
            tape: Some(tape),
            index: tape.push(Node { parents, partials }, op, value),
            value,
        }
    }
}

impl<T: Scalar> AdNumber for Var<'_, T> {
    type Primal = T;
    #[inline(always)]
    fn primal(self) -> T {
        self.value
    }
    #[inline(always)]
    fn lift(value: T) -> Self {
        Var::constant(value)
    }
}

impl<T: Scalar> Scalar for Var<'_, T> {
    const ORDER: usize = T::ORDER + 1;

    #[inline(always)]
    fn is_exact_zero(self) -> bool {
        self.tape.is_none() && self.value.is_exact_zero()
    }

    fn first_non_finite(self) -> Option<f64> {
        self.value.first_non_finite()
    }

    #[inline(always)]
    #[track_caller]
    fn apply_unary<O: UnaryOp>(op: &O, x: Self) -> Self {
        let y = unary(op, x);
        if debug::enabled() {
            check_var(op.name(), Location::caller(), &[x.value], y);
        }
        y
    }

    #[inline(always)]
    #[track_caller]
    fn apply_binary<O: BinaryOp>(op: &O, a: Self, b: Self) -> Self {
        let y = binary(op, a, b);
        if debug::enabled() {
            check_var(op.name(), Location::caller(), &[a.value, b.value], y);
        }
        y
    }
}

/// Checks an operation's result (checking is on) and keeps what the reverse sweep needs to
/// name the node it recorded.
#[cold]
#[inline(never)]
fn check_var<'t, T: Scalar>(
    op: &'static str,
    location: &'static Location<'static>,
    inputs: &[T],
    y: Var<'t, T>,
) {
    debug::check_scalar(op, location, inputs, y);
    if let Some(tape) = y.tape {
        tape.note_checked(y.index, op, location, inputs);
    }
}

#[inline(always)]
fn unary<'t, T: Scalar, O: UnaryOp>(op: &O, x: Var<'t, T>) -> Var<'t, T> {
    let value = op.func(x.value);
    match x.tape {
        None => Var::constant(value),
        Some(tape) => {
            let d = op.grads(x.value, value);
            Var::record(tape, op.name(), [x.index, NONE], [d, T::zero()], value)
        }
    }
}

#[inline(always)]
#[track_caller]
fn binary<'t, T: Scalar, O: BinaryOp>(op: &O, a: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
    let value = op.func(a.value, b.value);
    match (a.tape, b.tape) {
        (None, None) => Var::constant(value),
        (Some(tape), None) => {
            let (da, _) = op.grads(a.value, b.value, value);
            Var::record(tape, op.name(), [a.index, NONE], [da, T::zero()], value)
        }
        (None, Some(tape)) => {
            let (_, db) = op.grads(a.value, b.value, value);
            Var::record(tape, op.name(), [b.index, NONE], [db, T::zero()], value)
        }
        (Some(ta), Some(tb)) => {
            if ta.id != tb.id {
                mixed_tapes(ta.id, tb.id);
            }
            let (da, db) = op.grads(a.value, b.value, value);
            if a.index == b.index {
                // `x * x` and the like: one parent, one update of its adjoint in the sweep.
                Var::record(ta, op.name(), [a.index, NONE], [da + db, T::zero()], value)
            } else {
                Var::record(ta, op.name(), [a.index, b.index], [da, db], value)
            }
        }
    }
}

impl_ad_number!(['t, T: Scalar] Var<'t, T>, T);

impl<T: Scalar> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tape {
            Some(tape) => write!(
                f,
                "Var({:?} @ tape #{} node {})",
                self.value, tape.id, self.index
            ),
            None => write!(f, "Var({:?} constant)", self.value),
        }
    }
}

/// Shows the value.
impl<T: Scalar> fmt::Display for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

/// The result of a backward sweep: the derivative of one output with respect to every variable
/// of the tape it was computed on.
///
/// Look a variable up with [`get`](Gradient::get) (or `grad[x]`, which panics with the same
/// message where `get` returns an error) or many at once with [`wrt`](Gradient::wrt).
///
/// ```
/// let tape = perturb::Tape::new();
/// let x = tape.var(3.0_f64);
/// let g = tape.gradient(x * x).unwrap();
/// assert_eq!(g.get(x), Ok(6.0));
/// ```
#[derive(Clone, Debug)]
pub struct Gradient<T> {
    tape: u64,
    generation: u64,
    adjoints: Vec<T>,
    /// What `grad[x]` returns for a variable recorded after the output.
    zero: T,
}

impl<T: Scalar> Gradient<T> {
    /// The derivative with respect to `x`. Variables recorded after the output get 0 (the output
    /// cannot depend on them); a constant, a variable of another tape, or one recorded after the
    /// tape was cleared is an error.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let x = tape.var(3.0_f64);
    /// let g = tape.gradient(x * x).unwrap();
    /// assert!(g.get(perturb::Var::constant(1.0)).is_err());
    /// ```
    pub fn get(&self, x: Var<'_, T>) -> Result<T, Error> {
        let op = "Gradient::get";
        let tape = x.tape.ok_or(Error::NotAVariable { op })?;
        if tape.id != self.tape {
            return Err(Error::ForeignVariable {
                op,
                expected: self.tape,
                found: tape.id,
            });
        }
        if tape.generation != self.generation {
            return Err(Error::StaleGradient {
                op,
                tape: self.tape,
                gradient_generation: self.generation,
                variable_generation: tape.generation,
            });
        }
        Ok(self
            .adjoints
            .get(x.index as usize)
            .copied()
            .unwrap_or_else(T::zero))
    }

    /// The derivatives with respect to each of `xs`, in order.
    ///
    /// ```
    /// let tape = perturb::Tape::new();
    /// let xs = tape.vars(&[1.0_f64, 2.0]);
    /// let g = tape.gradient(xs[0] * xs[1]).unwrap();
    /// assert_eq!(g.wrt(&xs).unwrap(), vec![2.0, 1.0]);
    /// ```
    pub fn wrt(&self, xs: &[Var<'_, T>]) -> Result<Vec<T>, Error> {
        xs.iter().map(|&x| self.get(x)).collect()
    }
}

impl<T: Scalar> std::ops::Index<Var<'_, T>> for Gradient<T> {
    type Output = T;

    /// Panics with [`Gradient::get`]'s error message where `get` fails.
    #[track_caller]
    fn index(&self, x: Var<'_, T>) -> &T {
        if let Err(e) = self.get(x) {
            panic!("{e}");
        }
        self.adjoints.get(x.index as usize).unwrap_or(&self.zero)
    }
}
