//! Reverse mode for tensors: a flat list of recorded operations, swept backwards by a loop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use super::anomaly;
use super::array::Array;
use super::cotangent::Cotangent;
use super::dense::Tensor;
use super::dual::{checked_tangent, DualTensor};
use super::op::{Op, VjpReads};
use crate::debug::InputSummary;
use crate::error::Error;

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// What a first-order backward sweep needs of a recorded operation: its name and its VJP.
pub(crate) trait Rule<A: Array> {
    fn name(&self) -> &'static str;
    fn vjp_onto(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error>;
}

impl<A: Array, O: Op> Rule<A> for O {
    fn name(&self) -> &'static str {
        Op::name(self)
    }
    fn vjp_onto(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        Op::vjp_onto(self, inputs, output, cotangent, needed, gathered)
    }
}

/// One recorded operation with its type erased: its VJP for the sweep, its rule on dual tensors
/// for the Hessian-vector product, and its value and JVP for checking it
/// ([`check_grads`](super::check_grads)).
pub(crate) trait Backward<A: Array>: Rule<A> {
    fn vjp(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error>;
    fn jvp(&self, inputs: &[&A], output: &A, tangents: &[Option<&A>]) -> Result<Option<A>, Error>;
    fn apply(&self, inputs: &[&A]) -> Result<A, Error>;
    fn vjp_reads(&self) -> VjpReads;
    /// [`vjp_onto`](Rule::vjp_onto) on dual tensors, for the Hessian-vector product.
    #[allow(clippy::type_complexity)]
    fn vjp_onto_dual(
        &self,
        inputs: &[&DualTensor<A>],
        output: &DualTensor<A>,
        cotangent: &Cotangent<DualTensor<A>>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<DualTensor<A>>>],
    ) -> Result<(), Error>;
}

impl<A: Array, O: Op> Backward<A> for O {
    fn vjp(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        Op::vjp(self, inputs, output, cotangent, needed)
    }
    fn jvp(&self, inputs: &[&A], output: &A, tangents: &[Option<&A>]) -> Result<Option<A>, Error> {
        Op::jvp(self, inputs, output, tangents)
    }
    fn apply(&self, inputs: &[&A]) -> Result<A, Error> {
        A::apply(self, inputs)
    }
    fn vjp_reads(&self) -> VjpReads {
        O::VJP_READS
    }
    fn vjp_onto_dual(
        &self,
        inputs: &[&DualTensor<A>],
        output: &DualTensor<A>,
        cotangent: &Cotangent<DualTensor<A>>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<DualTensor<A>>>],
    ) -> Result<(), Error> {
        Op::vjp_onto(self, inputs, output, cotangent, needed, gathered)
    }
}

/// No node, no value: the `u32` that stands for "none" in the tape's compact indices.
const NONE: u32 = u32::MAX;

/// A position in one of the tape's lists as a compact index; more than `u32::MAX - 1` entries
/// (hundreds of gigabytes of nodes) is beyond what a tape can hold.
fn compact(index: usize) -> u32 {
    match u32::try_from(index) {
        Ok(i) if i != NONE => i,
        _ => panic!(
            "a TensorTape holds at most {} entries of each kind",
            NONE - 1
        ),
    }
}

/// One entry of the tape: an input (no operation) or an operation. Its inputs, shape and value
/// live in the tape's shared lists ([`Store`]), so a node is four words.
struct Node<R: ?Sized> {
    op: Option<Box<R>>,
    /// Where this node's inputs start in [`Store::links`]; they end where the next node's start.
    first_link: u32,
    /// Where this node's shape starts in [`Store::dims`]; it ends where the next node's starts.
    first_dim: u32,
    /// The node's value in [`Store::values`], [`NONE`] if no rule reads it (and values are not
    /// all kept).
    value: u32,
}

/// An input of a recorded operation.
#[derive(Clone, Copy, Debug)]
enum Link {
    /// The node of that index.
    Var(u32),
    /// A constant, kept in [`Store::values`] at that index.
    Const(u32),
}

/// What a tape holds: the nodes in order, and beside them, flat, their inputs, their shapes and
/// the values some rule reads (measured by [`TensorTape::bytes_per_node`]).
struct Store<A: Array, R: ?Sized = dyn Backward<A>> {
    nodes: Vec<Node<R>>,
    links: Vec<Link>,
    dims: Vec<usize>,
    values: Vec<A>,
    /// Where each operation was recorded, for the ones recorded inside
    /// [`detect_non_finite`](crate::debug::detect_non_finite) (nothing otherwise), by node.
    locations: Vec<(usize, &'static Location<'static>)>,
}

impl<A: Array, R: ?Sized> Store<A, R> {
    fn new() -> Self {
        Store {
            nodes: Vec::new(),
            links: Vec::new(),
            dims: Vec::new(),
            values: Vec::new(),
            locations: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.nodes.clear();
        self.links.clear();
        self.dims.clear();
        self.values.clear();
        self.locations.clear();
    }

    /// Appends a node of shape `shape` whose inputs are the links from `first_link` on (already
    /// pushed), with its value if it is kept.
    fn push(
        &mut self,
        op: Option<Box<R>>,
        first_link: u32,
        shape: &[usize],
        value: Option<A>,
    ) -> usize {
        let first_dim = compact(self.dims.len());
        self.dims.extend_from_slice(shape);
        let value = value.map_or(NONE, |v| self.push_value(v));
        self.nodes.push(Node {
            op,
            first_link,
            first_dim,
            value,
        });
        self.nodes.len() - 1
    }

    fn push_value(&mut self, value: A) -> u32 {
        self.values.push(value);
        compact(self.values.len() - 1)
    }

    /// Keeps `value` as node `i`'s value, if it is not kept yet.
    fn keep(&mut self, i: usize, value: &A) {
        if self.nodes[i].value == NONE {
            self.nodes[i].value = self.push_value(value.clone());
        }
    }

    fn links(&self, i: usize) -> &[Link] {
        let end = self
            .nodes
            .get(i + 1)
            .map_or(self.links.len(), |n| n.first_link as usize);
        &self.links[self.nodes[i].first_link as usize..end]
    }

    /// The node index of each input of node `i` (`None` for a constant).
    fn parents(&self, i: usize) -> impl Iterator<Item = Option<usize>> + '_ {
        self.links(i).iter().map(|l| match *l {
            Link::Var(p) => Some(p as usize),
            Link::Const(_) => None,
        })
    }

    fn shape(&self, i: usize) -> &[usize] {
        let end = self
            .nodes
            .get(i + 1)
            .map_or(self.dims.len(), |n| n.first_dim as usize);
        &self.dims[self.nodes[i].first_dim as usize..end]
    }

    /// Node `i`'s value, where it is kept.
    fn value(&self, i: usize) -> Option<&A> {
        let v = self.nodes[i].value;
        (v != NONE).then(|| &self.values[v as usize])
    }

    /// Node `i`'s value, which must have been kept (the tape keeps every value for the
    /// transforms that call this).
    fn kept(&self, i: usize) -> Result<&A, Error> {
        self.value(i).ok_or(Error::InvalidArgument {
            op: "TensorTape",
            reason: format!("the value of node {i} was not kept"),
        })
    }

    fn link_value(&self, link: Link) -> Option<&A> {
        match link {
            Link::Var(p) => self.value(p as usize),
            Link::Const(v) => Some(&self.values[v as usize]),
        }
    }

    /// Node `i`'s inputs and output as its rule is given them: the values kept and, for those
    /// no rule reads, zeros of their shape from `zeros` (the rule reads only their shape).
    fn operands<'s>(&'s self, i: usize, zeros: &'s mut Zeros<A>) -> (Vec<&'s A>, &'s A) {
        // Placeholders stand only for values not kept: the buffer is as long as the longest
        // of those, not the longest value (a large kept activation must not make a sweep fill
        // a buffer of its size for a small placeholder).
        let longest = || {
            (0..self.nodes.len())
                .filter(|&j| self.value(j).is_none())
                .map(|j| self.shape(j).iter().product::<usize>())
                .max()
                .unwrap_or(0)
        };
        for &link in self.links(i) {
            if let (None, Link::Var(p)) = (self.link_value(link), link) {
                zeros.make(self.shape(p as usize), longest);
            }
        }
        if self.value(i).is_none() {
            zeros.make(self.shape(i), longest);
        }
        let zeros: &'s Zeros<A> = zeros;
        let value = |node: usize| {
            self.value(node)
                .unwrap_or_else(|| zeros.of(self.shape(node)))
        };
        let inputs = self
            .links(i)
            .iter()
            .map(|&link| match link {
                Link::Var(p) => value(p as usize),
                Link::Const(v) => &self.values[v as usize],
            })
            .collect();
        (inputs, value(i))
    }

    /// Node `i`'s inputs and output, all kept.
    fn kept_operands(&self, i: usize) -> Result<(Vec<&A>, &A), Error> {
        let inputs = self
            .links(i)
            .iter()
            .map(|&link| match link {
                Link::Var(p) => self.kept(p as usize),
                Link::Const(v) => Ok(&self.values[v as usize]),
            })
            .collect::<Result<_, _>>()?;
        Ok((inputs, self.kept(i)?))
    }

    /// The shapes and ranges of node `i`'s inputs (the shapes alone where not kept).
    fn input_summaries(&self, i: usize) -> Vec<InputSummary> {
        self.links(i)
            .iter()
            .map(|&link| {
                let shape = match link {
                    Link::Var(p) => self.shape(p as usize),
                    Link::Const(v) => self.values[v as usize].shape(),
                };
                anomaly::summary_or_shape(self.link_value(link), shape)
            })
            .collect()
    }

    /// Where operation `i` was recorded, if it was recorded while debugging.
    fn location(&self, i: usize) -> Option<&'static Location<'static>> {
        let at = self.locations.binary_search_by_key(&i, |&(n, _)| n).ok()?;
        Some(self.locations[at].1)
    }
}

/// Arrays of zeros by shape, one per shape: what a rule is given for a value it does not read
/// (it reads only the shape). All are windows of one buffer of zeros, as long as the longest
/// value the tape did not keep, so a sweep fills one buffer however many shapes it meets; a sweep meets
/// a few shapes, so they are found by a linear search.
struct Zeros<A: Array> {
    flat: Option<Tensor<A::Elem>>,
    by_shape: Vec<(Vec<usize>, A)>,
}

impl<A: Array> Zeros<A> {
    fn new() -> Self {
        Zeros {
            flat: None,
            by_shape: Vec::new(),
        }
    }

    /// Makes zeros of `shape`, if there are none yet; `longest` gives the most elements any
    /// value the tape did not keep has (asked for only when the buffer is made).
    fn make(&mut self, shape: &[usize], longest: impl FnOnce() -> usize) {
        if self.by_shape.iter().any(|(s, _)| s == shape) {
            return;
        }
        let count: usize = shape.iter().product();
        let flat = match &self.flat {
            Some(flat) if flat.len() >= count => flat,
            _ => self.flat.insert(Tensor::zeros(&[longest().max(count)])),
        };
        // Within the buffer, which has at least `count` elements.
        let zeros = flat
            .window(0, shape.to_vec())
            .unwrap_or_else(|| Tensor::zeros(shape));
        self.by_shape.push((shape.to_vec(), A::lift(zeros)));
    }

    fn of(&self, shape: &[usize]) -> &A {
        let found = self.by_shape.iter().find(|(s, _)| s == shape);
        // `operands` makes every shape before it asks for it.
        &found.expect("zeros made before they are read").1
    }
}

/// The cotangents of a backward sweep, by node: a slot number per node (four bytes) and the
/// cotangents held at the moment, so that a sweep over a long tape takes memory for the
/// cotangents in flight, not for every node.
struct Cotangents<B> {
    slot: Vec<u32>,
    held: Vec<Option<Cotangent<B>>>,
    free: Vec<u32>,
}

impl<B: Array> Cotangents<B> {
    fn new(len: usize) -> Self {
        Cotangents {
            slot: vec![NONE; len],
            held: Vec::new(),
            free: Vec::new(),
        }
    }

    fn get(&self, i: usize) -> Option<&Cotangent<B>> {
        let s = *self.slot.get(i)?;
        if s == NONE {
            None
        } else {
            self.held[s as usize].as_ref()
        }
    }

    fn take(&mut self, i: usize) -> Option<Cotangent<B>> {
        let s = *self.slot.get(i)?;
        if s == NONE {
            return None;
        }
        self.slot[i] = NONE;
        self.free.push(s);
        self.held[s as usize].take()
    }

    /// Adds `term` to node `i`'s cotangent.
    fn accumulate(&mut self, i: usize, term: Cotangent<B>) -> Result<(), Error> {
        let s = self.slot[i];
        if s != NONE {
            return Cotangent::accumulate(&mut self.held[s as usize], term);
        }
        let s = match self.free.pop() {
            Some(s) => {
                self.held[s as usize] = Some(term);
                s
            }
            None => {
                self.held.push(Some(term));
                compact(self.held.len() - 1)
            }
        };
        self.slot[i] = s;
        Ok(())
    }
}

/// A reverse-mode tape for tensors.
///
/// Operations on [`TensorVar`]s are appended in execution order, with the operation and the
/// values its VJP reads ([`Op::VJP_READS`]; shared, not copied): a value no rule reads is not
/// kept, so a long chain of small operations takes little memory
/// ([`bytes_per_node`](TensorTape::bytes_per_node)). [`vjp`](TensorTape::vjp) and
/// [`gradient`](TensorTape::gradient) sweep the list backwards once, computing only the
/// cotangents that lead to the requested inputs and skipping every operation the output does
/// not depend on; the tape is kept, so it can be swept again. Operations whose inputs are all
/// constants are not recorded.
///
/// The array type `A` is what the sweep computes with: for first order it is a plain
/// [`Tensor`], and the sweep records nothing. For second order it is itself a `TensorVar` of an
/// inner tape, and the sweep is recorded there.
///
/// A tape is not [`Send`] nor [`Sync`]: it holds its operations as trait objects and its
/// nodes in a `RefCell`, and its variables borrow it. Record and sweep a tape on one thread;
/// to use several threads, give each its own tape (plain [`Tensor`]s are `Send` and `Sync`).
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// send(perturb::tensor::TensorTape::<perturb::tensor::Tensor<f64>>::new());
/// ```
///
/// ```
/// use perturb::tensor::{Array, Tensor, TensorTape};
///
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::vector(&[1.0_f64, 2.0, 3.0]));
/// let y = x.mul(&x).sum_all(); // sum x^2, x used twice
/// let g = tape.gradient(&y, &[&x]).unwrap();
/// assert_eq!(g[0].to_vec(), vec![2.0, 4.0, 6.0]);
/// ```
pub struct TensorTape<A: Array> {
    id: u64,
    generation: u64,
    recording: Cell<bool>,
    /// Whether every value is kept, not only those a rule reads (for the transforms and checks
    /// that need every value: [`hvp`](super::hvp), [`check_grads`](super::check_grads)).
    keep_values: bool,
    store: RefCell<Store<A>>,
}

impl<T: super::Element> TensorTape<Tensor<T>> {
    /// A tape for first-order reverse mode on plain tensors.
    ///
    /// ```
    /// let tape = perturb::tensor::TensorTape::<perturb::tensor::Tensor<f64>>::new();
    /// assert!(tape.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::over()
    }
}

impl<T: super::Element> Default for TensorTape<Tensor<T>> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Array> TensorTape<A> {
    /// A tape whose sweeps compute with arrays of type `A`, e.g. `TensorVar`s of another tape
    /// for second derivatives.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape, TensorVar};
    ///
    /// // d2/dx2 of sum(x^3) is 6x: an outer tape whose sweep is recorded on an inner one.
    /// let inner = TensorTape::new();
    /// let x = inner.var(Tensor::vector(&[1.0_f64, 2.0]));
    /// let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    /// let xo = outer.var(x.clone());
    /// let y = xo.mul(&xo).mul(&xo).sum_all();
    /// let dy = outer.gradient(&y, &[&xo]).unwrap().remove(0); // 3x^2, recorded on `inner`
    /// let d2 = inner.gradient(&dy.sum_all(), &[&x]).unwrap();
    /// assert_eq!(d2[0].to_vec(), vec![6.0, 12.0]);
    /// ```
    pub fn over() -> Self {
        TensorTape {
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
            generation: 0,
            recording: Cell::new(true),
            keep_values: false,
            store: RefCell::new(Store::new()),
        }
    }

    /// A tape that keeps every value it records, for the transforms and checks that read them
    /// all (the tangent pass of [`hessian_vector`](TensorTape::hessian_vector),
    /// [`for_each_op`](TensorTape::for_each_op)).
    pub(crate) fn keeping_values() -> Self {
        TensorTape {
            keep_values: true,
            ..Self::over()
        }
    }

    /// A new input variable with the given value.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let w = tape.var(Tensor::<f64>::zeros(&[3]));
    /// assert_eq!(w.value().shape(), &[3]);
    /// ```
    pub fn var(&self, value: A) -> TensorVar<'_, A> {
        let kept = self.keep_values.then(|| value.clone());
        let mut store = self.store.borrow_mut();
        let first_link = compact(store.links.len());
        let index = store.push(None, first_link, value.shape(), kept);
        TensorVar {
            tape: Some(self),
            index,
            value,
        }
    }

    /// A constant: a value this tape does not differentiate with respect to.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let x = tape.constant(Tensor::<f64>::ones(&[2]));
    /// assert!(x.is_constant());
    /// ```
    pub fn constant(&self, value: A) -> TensorVar<'_, A> {
        TensorVar::constant(value)
    }

    /// Runs `f` without recording: operations on this tape's variables inside `f` give constants.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let x = tape.var(Tensor::vector(&[1.0_f64]));
    /// let y = tape.no_grad(|| x.exp());
    /// assert!(y.is_constant());
    /// assert_eq!(tape.len(), 1);
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a Cell<bool>, bool);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _restore = Restore(&self.recording, self.recording.replace(false));
        f()
    }

    /// The number of recorded nodes (inputs and operations).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let x = tape.var(Tensor::vector(&[1.0_f64]));
    /// let _ = x.exp();
    /// assert_eq!(tape.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.store.borrow().nodes.len()
    }

    /// Whether nothing is recorded.
    ///
    /// ```
    /// assert!(perturb::tensor::TensorTape::<perturb::tensor::Tensor<f32>>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This tape's identity, used in error messages.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// assert_ne!(TensorTape::<Tensor<f64>>::new().id(), TensorTape::<Tensor<f64>>::new().id());
    /// ```
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The memory the tape's own lists take per recorded node, in bytes, averaged over the
    /// nodes: the nodes, their inputs and shapes, and the values kept for the rules (each
    /// counted at its array's size, not the elements it shares with the arrays outside). With
    /// what the values' elements take, this is what the tape costs; on a chain of small
    /// operations it is a few dozen bytes. `0.0` for an empty tape.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let mut y = tape.var(Tensor::vector(&[1.0_f64, 2.0]));
    /// for _ in 0..100 {
    ///     y = y.scale(0.5).add_scalar(1.0); // their rules read no value: none is kept
    /// }
    /// assert!(tape.bytes_per_node() < 48.0);
    /// ```
    pub fn bytes_per_node(&self) -> f64 {
        use std::mem::size_of;
        let s = self.store.borrow();
        if s.nodes.is_empty() {
            return 0.0;
        }
        let bytes = s.nodes.len() * size_of::<Node<dyn Backward<A>>>()
            + s.links.len() * size_of::<Link>()
            + s.dims.len() * size_of::<usize>()
            + s.values.len() * size_of::<A>()
            + s.locations.len() * size_of::<(usize, &Location<'_>)>();
        bytes as f64 / s.nodes.len() as f64
    }

    /// Forgets every node (dropping the values it held) but keeps the list's buffer. Takes
    /// `&mut self`, so no variable of the old recording can be used afterwards.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// let mut tape = TensorTape::new();
    /// let _ = tape.var(Tensor::<f64>::zeros(&[2]));
    /// tape.clear();
    /// assert!(tape.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.store.get_mut().clear();
        self.generation += 1;
    }

    /// The gradient of a one-element `output` with respect to each of `wrt`.
    ///
    /// Inside [`detect_non_finite`](crate::debug::detect_non_finite), the first operation
    /// whose rule sends a cotangent that is not finite stops the sweep with
    /// [`Error::NonFinite`], naming it and the line that recorded it.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let x = tape.var(Tensor::vector(&[0.0_f64, 1.0]));
    /// let y = x.exp().sum_all();
    /// let g = tape.gradient(&y, &[&x]).unwrap();
    /// assert!(g[0].all_close(&Tensor::vector(&[1.0, 1.0_f64.exp()]), 1e-15));
    /// assert!(tape.gradient(&x, &[&x]).is_err()); // not a single element
    /// ```
    pub fn gradient(
        &self,
        output: &TensorVar<'_, A>,
        wrt: &[&TensorVar<'_, A>],
    ) -> Result<Vec<A>, Error> {
        let len: usize = output.shape().iter().product();
        if len != 1 {
            return Err(Error::NotAScalar {
                op: "TensorTape::gradient",
                shape: output.shape().to_vec(),
            });
        }
        let ones = A::lift(Tensor::ones(output.shape()));
        self.vjp(output, &ones, wrt)
    }

    /// The vector-Jacobian product: the cotangent of each of `wrt` given the cotangent of
    /// `output` (which must have `output`'s shape). One backward sweep; only operations on a
    /// path from a requested input to the output compute anything.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// // y = A x: the VJP with u is A^T u.
    /// let tape = TensorTape::new();
    /// let a = tape.constant(Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    /// let x = tape.var(Tensor::vector(&[1.0, 1.0]));
    /// let y = a.matmul(&x);
    /// let u = Tensor::vector(&[1.0, 10.0]);
    /// assert_eq!(tape.vjp(&y, &u, &[&x]).unwrap()[0].to_vec(), vec![31.0, 42.0]);
    /// ```
    pub fn vjp(
        &self,
        output: &TensorVar<'_, A>,
        cotangent: &A,
        wrt: &[&TensorVar<'_, A>],
    ) -> Result<Vec<A>, Error> {
        let op = "TensorTape::vjp";
        if cotangent.shape() != output.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: output.shape().to_vec(),
                rhs: cotangent.shape().to_vec(),
            });
        }
        super::batched::same_stack(op, output.value(), cotangent)?;
        for x in wrt {
            self.check(x, op)?;
            if x.tape.is_none() {
                return Err(Error::NotAVariable { op });
            }
        }
        self.check(output, op)?;
        let zeros = |x: &TensorVar<'_, A>| A::lift(Tensor::zeros(x.shape()));
        let Some(tape) = output.tape else {
            return Ok(wrt.iter().map(|x| zeros(x)).collect());
        };
        debug_assert_eq!(tape.id, self.id);

        let indices: Vec<usize> = wrt.iter().map(|x| x.index).collect();
        let cotangents = self
            .store
            .borrow()
            .reverse(output.index, cotangent, &indices)?;
        wrt.iter()
            .map(|x| {
                // Inputs and requested nodes keep their cotangent (a variable requested twice
                // finds it where the first one left it).
                match cotangents.get(x.index).cloned() {
                    Some(ct) => ct.into_value_of(x.shape()),
                    None => Ok(zeros(x)),
                }
            })
            .collect()
    }

    /// The Hessian-vector product `H v` of the one-element `output` with respect to `x`, forward
    /// over reverse: the tangents along `v` of the recorded values, then the backward sweep on
    /// dual tensors. Only the tangents some rule on the sweep reads ([`Op::VJP_READS`]) are
    /// computed, with those they depend on: the tangent of the loss itself, of the values that
    /// only linear operations see, and of the operations the output does not depend on, is
    /// never needed. The tape must keep its values ([`keeping_values`](Self::keeping_values)).
    pub(crate) fn hessian_vector(
        &self,
        output: &TensorVar<'_, A>,
        x: &TensorVar<'_, A>,
        v: &A,
    ) -> Result<A, Error> {
        let op = "hvp";
        let len: usize = output.shape().iter().product();
        if len != 1 {
            return Err(Error::NotAScalar {
                op,
                shape: output.shape().to_vec(),
            });
        }
        self.check(x, op)?;
        self.check(output, op)?;
        if x.tape.is_none() {
            return Err(Error::NotAVariable { op });
        }
        let zeros = || A::lift(Tensor::zeros(x.shape()));
        if output.tape.is_none() {
            return Ok(zeros());
        }
        let store = self.store.borrow();
        let last = output.index;
        let (needed, requested) = store.on_paths(last, &[x.index]);

        // Which tangents are read: by the rules of the operations the sweep will run (those on
        // a path from `x` that the output depends on), and by the JVPs that give those tangents.
        let mut read = vec![false; last + 1];
        let mut reaches = vec![false; last + 1];
        reaches[last] = true;
        for i in (0..=last).rev() {
            let Some(backward) = &store.nodes[i].op else {
                continue;
            };
            if !reaches[i] {
                continue;
            }
            let parents: Vec<Option<usize>> = store.parents(i).collect();
            for p in parents.iter().flatten() {
                reaches[*p] = true;
            }
            if needed[i] {
                let reads = backward.vjp_reads();
                let wanted = |p: &Option<usize>| p.is_some_and(|p| needed[p]);
                read[i] |= reads.output && parents.iter().any(wanted);
                for (j, pj) in parents.iter().enumerate() {
                    if !wanted(pj) {
                        continue;
                    }
                    // The term of input j reads its own value and/or the others'.
                    for (k, pk) in parents.iter().enumerate() {
                        let reads_k = if k == j {
                            reads.own_input
                        } else {
                            reads.other_inputs
                        };
                        if let (true, Some(p)) = (reads_k, pk) {
                            read[*p] = true;
                        }
                    }
                }
            }
            if read[i] {
                for p in parents.iter().flatten() {
                    read[*p] = true;
                }
            }
        }
        // The tangents along `v`, forwards, where read.
        let mut tangents: Vec<Option<A>> = vec![None; last + 1];
        if x.index <= last {
            tangents[x.index] = Some(v.clone());
        }
        for i in 0..=last {
            let (Some(backward), true) = (&store.nodes[i].op, read[i]) else {
                continue;
            };
            let (inputs, output) = store.kept_operands(i)?;
            let input_tangents: Vec<Option<&A>> = store
                .parents(i)
                .map(|p| p.and_then(|p| tangents[p].as_ref()))
                .collect();
            // Checked and reported as forward mode reports it (`DualTensor::apply`).
            let tangent = backward.jvp(&inputs, output, &input_tangents)?;
            let tangent = checked_tangent(backward.name(), output, tangent)?;
            if let (Some(t), true) = (&tangent, crate::debug::enabled()) {
                anomaly::check_tangent(backward.name(), &inputs, t, store.location(i))?;
            }
            tangents[i] = tangent;
        }
        let dual = |value: &A, index: Option<usize>| {
            DualTensor::from_parts(value.clone(), index.and_then(|p| tangents[p].clone()))
        };
        let seed = DualTensor::constant(A::lift(Tensor::ones(output.shape())));
        let cotangents = store.sweep(
            last,
            &needed,
            &requested,
            Cotangent::new(seed),
            |i, backward, ct, wanted, gathered| {
                let (values, output) = store.kept_operands(i)?;
                let inputs: Vec<DualTensor<A>> = values
                    .into_iter()
                    .zip(store.parents(i))
                    .map(|(value, p)| dual(value, p))
                    .collect();
                let output = dual(output, Some(i));
                let inputs: Vec<&DualTensor<A>> = inputs.iter().collect();
                backward.vjp_onto_dual(&inputs, &output, ct, wanted, gathered)
            },
        )?;
        match cotangents.get(x.index).cloned() {
            Some(ct) => Ok(ct.into_value_of(x.shape())?.tangent_or_zeros()),
            None => Ok(zeros()),
        }
    }

    /// The recorded graph in Graphviz's DOT language: one box per node with its operation and
    /// shape, one edge per recorded input. Render it with
    /// [`explain::dot_to_svg`](crate::explain) (feature `svg`) or Graphviz.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let w = tape.var(Tensor::<f64>::zeros(&[3, 2]));
    /// let x = tape.constant(Tensor::ones(&[2]));
    /// let _y = w.matmul(&x).sigmoid();
    /// let dot = tape.to_dot();
    /// assert!(dot.contains("matmul\\n[3]"));
    /// assert!(dot.contains("n0 -> n1"));
    /// ```
    pub fn to_dot(&self) -> String {
        use std::fmt::Write as _;
        let store = self.store.borrow();
        let mut out = String::from(
            "digraph perturb {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, node) in store.nodes.iter().enumerate() {
            let op = node.op.as_ref().map_or("input", |op| op.name());
            let label = format!("v{i} = {op}\\n{:?}", store.shape(i));
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\"];",
                crate::explain::escape(&label)
            );
        }
        for i in 0..store.nodes.len() {
            for p in store.parents(i).flatten() {
                let _ = writeln!(out, "  n{p} -> n{i};");
            }
        }
        out.push_str("}\n");
        out
    }

    /// Calls `visit` with each recorded operation and its inputs and output, in order. The
    /// tape must keep its values ([`keeping_values`](Self::keeping_values)).
    pub(crate) fn for_each_op(
        &self,
        mut visit: impl FnMut(usize, &dyn Backward<A>, &[&A], &A),
    ) -> Result<(), Error> {
        let store = self.store.borrow();
        for (i, node) in store.nodes.iter().enumerate() {
            if let Some(op) = &node.op {
                let (inputs, output) = store.kept_operands(i)?;
                visit(i, op.as_ref(), &inputs, output);
            }
        }
        Ok(())
    }

    fn check(&self, x: &TensorVar<'_, A>, op: &'static str) -> Result<(), Error> {
        match x.tape {
            Some(t) if t.id != self.id => Err(Error::ForeignVariable {
                op,
                expected: self.id,
                found: t.id,
            }),
            _ => Ok(()),
        }
    }

    /// Appends operation `op` with its inputs and output, and where it was recorded while
    /// debugging.
    fn record<O: Op>(
        &self,
        op: &O,
        inputs: &[&TensorVar<'_, A>],
        output: &A,
        location: Option<&'static Location<'static>>,
    ) -> usize {
        let keep_all = self.keep_values || location.is_some();
        let inputs = inputs.iter().map(|x| (x.tape.map(|_| x.index), &x.value));
        let mut store = self.store.borrow_mut();
        let index = store.record(Box::new(op.clone()), O::VJP_READS, keep_all, inputs, output);
        if let Some(location) = location {
            store.locations.push((index, location));
        }
        index
    }
}

impl<A: Array, R: ?Sized> Store<A, R> {
    /// Appends the operation `rule` with its inputs (each with its node's index, `None` for a
    /// constant) and output. Only the values its rule reads are kept (`reads`), with every
    /// constant input (it has no node to tell its shape); all of them with `keep_all`.
    fn record<'v>(
        &mut self,
        rule: Box<R>,
        reads: VjpReads,
        keep_all: bool,
        inputs: impl Iterator<Item = (Option<usize>, &'v A)> + Clone,
        output: &A,
    ) -> usize
    where
        A: 'v,
    {
        let variables = inputs.clone().filter(|(i, _)| i.is_some()).count();
        let first_link = compact(self.links.len());
        for (index, value) in inputs {
            let link = match index {
                Some(index) => {
                    // Its own term reads it, or another variable's term does.
                    if keep_all || reads.own_input || (reads.other_inputs && variables > 1) {
                        self.keep(index, value);
                    }
                    Link::Var(compact(index))
                }
                None => Link::Const(self.push_value(value.clone())),
            };
            self.links.push(link);
        }
        let kept = (keep_all || reads.output).then(|| output.clone());
        self.push(Some(rule), first_link, output.shape(), kept)
    }

    /// Which nodes up to `last` lie on a path from one of `wrt` (only those get cotangents),
    /// and which are themselves requested.
    fn on_paths(&self, last: usize, wrt: &[usize]) -> (Vec<bool>, Vec<bool>) {
        let mut needed = vec![false; last + 1];
        let mut requested = vec![false; last + 1];
        for &x in wrt {
            if x <= last {
                needed[x] = true;
                requested[x] = true;
            }
        }
        for i in 0..=last {
            if self.parents(i).flatten().any(|p| needed[p]) {
                needed[i] = true;
            }
        }
        (needed, requested)
    }
}

impl<A: Array, R: ?Sized + Rule<A>> Store<A, R> {
    /// The first-order backward sweep from `cotangent`, the cotangent of node `last`: the
    /// cotangents left at the nodes `wrt` (and at the inputs).
    fn reverse(&self, last: usize, cotangent: &A, wrt: &[usize]) -> Result<Cotangents<A>, Error> {
        let (needed, requested) = self.on_paths(last, wrt);
        let mut placeholders = Zeros::new();
        self.sweep(
            last,
            &needed,
            &requested,
            Cotangent::new(cotangent.clone()),
            |i, rule, ct, wanted, gathered| {
                let (inputs, output) = self.operands(i, &mut placeholders);
                rule.vjp_onto(&inputs, output, ct, wanted, gathered)
            },
        )
    }

    /// The backward sweep: from `seed`, the cotangent of node `last`, back over the nodes, each
    /// operation on a path from a `needed` node handing its inputs their terms through `step`
    /// (given the node's index, it runs the rule on arrays of type `B`: `A` itself, or dual
    /// tensors for the Hessian-vector product). An operation no cotangent reaches (the output
    /// does not depend on it) is skipped, whatever its rule would give.
    /// Returns the cotangent left at each node: the inputs' and the `requested` nodes'.
    fn sweep<B: Array>(
        &self,
        last: usize,
        needed: &[bool],
        requested: &[bool],
        seed: Cotangent<B>,
        mut step: impl FnMut(
            usize,
            &R,
            &Cotangent<B>,
            &[bool],
            &mut [Option<Cotangent<B>>],
        ) -> Result<(), Error>,
    ) -> Result<Cotangents<B>, Error> {
        // Each cotangent keeps a constant factor not yet applied (see `Cotangent`).
        let mut cotangents = Cotangents::new(last + 1);
        cotangents.accumulate(last, seed)?;
        let debugging = crate::debug::enabled();
        for i in (0..=last).rev() {
            let Some(backward) = &self.nodes[i].op else {
                continue;
            };
            // A requested intermediate keeps its cotangent for the result.
            let ct = if requested[i] {
                cotangents.get(i).cloned()
            } else {
                cotangents.take(i)
            };
            let Some(ct) = ct else { continue };
            // A rule reads its cotangent whole: a window gathered for this node is placed now.
            let ct = ct.settled()?;
            // A zero cotangent (an output row that does not depend on this operation) sends
            // nothing back: its rule, at a singular point, would send NaN (0 * inf).
            if ct.factor == 0.0 || ct.value.is_zero() {
                continue;
            }
            let parents: Vec<Option<usize>> = self.parents(i).collect();
            let wanted: Vec<bool> = parents
                .iter()
                .map(|p| p.is_some_and(|p| needed[p]))
                .collect();
            if !wanted.iter().any(|&w| w) {
                continue;
            }
            // Each wanted input's cotangent so far goes to the rule, which adds its terms; an
            // input used twice by this operation takes it at its first slot only.
            let mut gathered: Vec<Option<Cotangent<B>>> = parents
                .iter()
                .zip(&wanted)
                .map(|(p, &w)| match (p, w) {
                    (Some(p), true) => cotangents.take(*p),
                    _ => None,
                })
                .collect();
            step(i, backward, &ct, &wanted, &mut gathered).map_err(|e| Error::Backward {
                op: backward.name(),
                cause: Box::new(e),
            })?;
            for (parent, sum) in parents.iter().zip(gathered) {
                let (Some(p), Some(sum)) = (parent, sum) else {
                    continue;
                };
                let shape = self.shape(*p);
                if !shape_fits(sum.value.shape(), shape) {
                    return Err(Error::Backward {
                        op: backward.name(),
                        cause: Box::new(Error::ShapeMismatch {
                            op: "the cotangent of an input",
                            lhs: shape.to_vec(),
                            rhs: sum.value.shape().to_vec(),
                        }),
                    });
                }
                if debugging {
                    let inputs = || self.input_summaries(i);
                    let location = self.location(i);
                    anomaly::check_cotangent(backward.name(), location, &ct, &sum, inputs)?;
                }
                cotangents.accumulate(*p, sum)?;
            }
        }
        Ok(cotangents)
    }
}

/// Whether a cotangent's array of shape `value` can stand for a node of shape `node`: the same
/// shape, or one that broadcasts to it, or a window of it (no axis longer than the node's).
fn shape_fits(value: &[usize], node: &[usize]) -> bool {
    value.len() <= node.len()
        && value
            .iter()
            .rev()
            .zip(node.iter().rev())
            .all(|(&v, &n)| v <= n || v == 1)
}

impl<A: Array> fmt::Debug for TensorTape<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TensorTape")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("nodes", &self.len())
            .finish()
    }
}

/// A tensor recorded on a [`TensorTape`] (or a constant, recorded nowhere).
///
/// It implements [`Array`], so every tensor operation works on it and is recorded as it runs.
/// Cloning is cheap (the value is shared).
///
/// ```
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::vector(&[2.0_f64]));
/// let y = x.square();
/// assert_eq!(y.value().to_vec(), vec![4.0]);
/// assert_eq!(tape.gradient(&y.sum_all(), &[&x]).unwrap()[0].to_vec(), vec![4.0]);
/// ```
#[derive(Clone)]
pub struct TensorVar<'t, A: Array> {
    tape: Option<&'t TensorTape<A>>,
    index: usize,
    value: A,
}

impl<'t, A: Array> TensorVar<'t, A> {
    /// A constant: recorded nowhere, derivative zero.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorVar};
    /// let c = TensorVar::constant(Tensor::vector(&[1.0_f64]));
    /// assert!(c.is_constant());
    /// ```
    pub fn constant(value: A) -> Self {
        TensorVar {
            tape: None,
            index: usize::MAX,
            value,
        }
    }

    /// The value.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// assert_eq!(tape.var(Tensor::vector(&[1.0_f64])).value().to_vec(), vec![1.0]);
    /// ```
    pub fn value(&self) -> &A {
        &self.value
    }

    /// Whether this is a constant rather than a recorded variable.
    ///
    /// ```
    /// use perturb::tensor::{Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// assert!(!tape.var(Tensor::vector(&[1.0_f64])).is_constant());
    /// ```
    pub fn is_constant(&self) -> bool {
        self.tape.is_none()
    }

    /// The same value as a constant: the gradient does not flow through it.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor, TensorTape};
    /// let tape = TensorTape::new();
    /// let x = tape.var(Tensor::vector(&[3.0_f64]));
    /// let y = x.mul(&x.detach()).sum_all(); // d/dx (x * c) = c
    /// assert_eq!(tape.gradient(&y, &[&x]).unwrap()[0].to_vec(), vec![3.0]);
    /// ```
    pub fn detach(&self) -> Self {
        TensorVar::constant(self.value.clone())
    }
}

impl<A: Array> fmt::Debug for TensorVar<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.tape {
            Some(t) => write!(
                f,
                "TensorVar(tape #{} node {}, {:?})",
                t.id, self.index, self.value
            ),
            None => write!(f, "TensorVar(constant, {:?})", self.value),
        }
    }
}

impl<'t, A: Array> Array for TensorVar<'t, A> {
    type Elem = A::Elem;

    #[track_caller]
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        let mut tape: Option<&'t TensorTape<A>> = None;
        for x in inputs {
            match (tape, x.tape) {
                (Some(a), Some(b)) if a.id != b.id => {
                    return Err(Error::ForeignVariable {
                        op: op.name(),
                        expected: a.id,
                        found: b.id,
                    })
                }
                (None, Some(b)) => tape = Some(b),
                _ => {}
            }
        }
        let values: Vec<&A> = inputs.iter().map(|x| &x.value).collect();
        let value = A::apply(op, &values)?;
        // Debugging: where the operation was recorded, and whether its value is finite.
        let location = if crate::debug::enabled() {
            Some(Location::caller())
        } else {
            None
        };
        if let Some(location) = location {
            anomaly::check_value(op.name(), &values, &value, location);
        }
        Ok(match tape {
            Some(t) if t.recording.get() => {
                let index = t.record(op, inputs, &value, location);
                TensorVar {
                    tape: Some(t),
                    index,
                    value,
                }
            }
            _ => TensorVar::constant(value),
        })
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        TensorVar::constant(A::lift(value))
    }

    fn primal(&self) -> Tensor<Self::Elem> {
        self.value.primal()
    }

    fn shape(&self) -> &[usize] {
        self.value.shape()
    }

    fn is_zero(&self) -> bool {
        // A variable of the tape may be zero with a derivative that is not.
        self.tape.is_none() && self.value.is_zero()
    }
}

/// The VJP of `op` as the transpose of its JVP. The JVP is linear in the tangents, so running it
/// with the tangents as variables of a fresh tape (everything else constant) records that linear
/// map, and sweeping the tape backwards applies its transpose to `cotangent`. The sweep computes
/// with `A`, so the result stays differentiable at every order.
///
/// The tape is a [`LinearTape`]: only ever swept once, at first order, it keeps its operations
/// as [`Rule`]s, without the rule on dual tensors a [`TensorTape`] compiles for each operation.
/// So an operation whose JVP applies another whose default VJP transposes a JVP that applies
/// the first (a cycle) stays at the array type `A`: each level of the cycle would otherwise
/// compile a new level of dual tensors, without end.
pub(crate) fn transpose_jvp<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    output: &A,
    cotangent: &A,
    needed: &[bool],
) -> Result<Vec<Option<A>>, Error> {
    let tape = LinearTape {
        store: RefCell::new(Store::new()),
    };
    let constants: Vec<LinearVar<'_, A>> = inputs
        .iter()
        .map(|x| LinearVar::constant((*x).clone()))
        .collect();
    let tangents: Vec<Option<LinearVar<'_, A>>> = inputs
        .iter()
        .zip(needed)
        .map(|(x, &n)| n.then(|| tape.var(A::lift(Tensor::zeros(x.shape())))))
        .collect();
    let constant_refs: Vec<&LinearVar<'_, A>> = constants.iter().collect();
    let tangent_refs: Vec<Option<&LinearVar<'_, A>>> =
        tangents.iter().map(Option::as_ref).collect();
    let output = LinearVar::constant(output.clone());
    let Some(linear) = op.jvp(&constant_refs, &output, &tangent_refs)? else {
        return Ok(vec![None; inputs.len()]);
    };
    if linear.shape() != cotangent.shape() {
        return Err(Error::ShapeMismatch {
            op: op.name(),
            lhs: linear.shape().to_vec(),
            rhs: cotangent.shape().to_vec(),
        });
    }
    let Some(last) = linear.index else {
        // The JVP does not depend on the tangents: zero.
        return Ok(vec![None; inputs.len()]);
    };
    let wrt: Vec<usize> = tangents.iter().flatten().filter_map(|t| t.index).collect();
    let cotangents = tape.store.borrow().reverse(last, cotangent, &wrt)?;
    tangents
        .iter()
        .zip(inputs)
        .map(|(t, x)| match t.as_ref().and_then(|t| t.index) {
            // A needed input the linear map does not reach gets zeros, as a differentiable
            // input whose cotangent is zero (`check_grads` still moves it).
            Some(i) => match cotangents.get(i).cloned() {
                Some(ct) => ct.into_value_of(x.shape()).map(Some),
                None => Ok(Some(A::lift(Tensor::zeros(x.shape())))),
            },
            None => Ok(None),
        })
        .collect()
}

/// The tape [`transpose_jvp`] records a JVP on: a [`TensorTape`] reduced to what one
/// first-order sweep needs (see there).
struct LinearTape<A: Array> {
    store: RefCell<Store<A, dyn Rule<A>>>,
}

impl<A: Array> LinearTape<A> {
    fn var(&self, value: A) -> LinearVar<'_, A> {
        let mut store = self.store.borrow_mut();
        let first_link = compact(store.links.len());
        let index = store.push(None, first_link, value.shape(), None);
        LinearVar {
            tape: Some(self),
            index: Some(index),
            value,
        }
    }
}

/// A variable of a [`LinearTape`], or a constant (no tape, no index).
#[derive(Clone)]
struct LinearVar<'t, A: Array> {
    tape: Option<&'t LinearTape<A>>,
    index: Option<usize>,
    value: A,
}

impl<A: Array> LinearVar<'_, A> {
    fn constant(value: A) -> Self {
        LinearVar {
            tape: None,
            index: None,
            value,
        }
    }
}

impl<A: Array> fmt::Debug for LinearVar<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LinearVar({:?}, {:?})", self.index, self.value)
    }
}

impl<'t, A: Array> Array for LinearVar<'t, A> {
    type Elem = A::Elem;

    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        // One tape per transposition: every variable is of it.
        let tape = inputs.iter().find_map(|x| x.tape);
        let values: Vec<&A> = inputs.iter().map(|x| &x.value).collect();
        let value = A::apply(op, &values)?;
        let Some(tape) = tape else {
            return Ok(LinearVar::constant(value));
        };
        let links = inputs.iter().map(|x| (x.index, &x.value));
        let rule: Box<dyn Rule<A>> = Box::new(op.clone());
        let index = tape
            .store
            .borrow_mut()
            .record(rule, O::VJP_READS, false, links, &value);
        Ok(LinearVar {
            tape: Some(tape),
            index: Some(index),
            value,
        })
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        LinearVar::constant(A::lift(value))
    }

    fn primal(&self) -> Tensor<Self::Elem> {
        self.value.primal()
    }

    fn shape(&self) -> &[usize] {
        self.value.shape()
    }
}
