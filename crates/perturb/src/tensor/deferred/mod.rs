//! Arrays computed on demand: what is never needed is never computed, and chains of
//! element-wise operations on plain tensors run fused (`fused.rs`).

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use super::array::Array;
use super::dense::Tensor;
use super::fusion::{self, BlockKernel, OpKernel};
use super::op::Op;
use super::ops::SumTo;
use crate::error::Error;

mod fused;

/// An array whose value is computed only when something asks for it: an operation whose result
/// shape it can tell in advance ([`Op::output_shape`]) is recorded with its inputs and run later,
/// once, if at all (or, fused, again where that is cheaper than keeping it: below); any other
/// operation runs at once, as on the plain array.
///
/// [`hvp`](super::hvp) runs on it: of the values the gradient's sweep on dual tensors builds,
/// the result needs only some (not the loss value, nor the value parts of cotangents that no
/// tangent reads), and those are the only ones computed. Computing is iterative, so long chains
/// do not exhaust the stack. An error of a deferred operation surfaces when its value is asked
/// for ([`value`](Deferred::value)); shape errors are reported at once, as on plain arrays.
///
/// On plain tensors ([`Array::PLAIN`]) the pending element-wise operations of one shape under a
/// requested value (those with a block kernel, [`Op::eval_block`], their other operands of one
/// element) run as one [`fusion::Chain`]: block by block, in one pass over memory, with the
/// same values bit for bit. Of the operations in such a chain, only the requested ones and those
/// something else still holds (a handle, another pending operation) are written out, and of the
/// held ones only those that would take more than two operations to compute again from written
/// values: a cheaper one stays pending and is computed again if it is ever asked for (a value a
/// tape keeps for a rule that never runs is then never written). The others live only in the
/// chain's blocks. Arrays of
/// fewer than [`fusion::min_len`] elements (2^14) run unfused, where fusion does not pay, and
/// so do arrays of 2^18 and more, where the unfused operations use rayon's threads.
///
/// ```
/// use perturb::tensor::{Array, Deferred, Tensor};
/// let x = Deferred::new(Tensor::vector(&[1.0_f64, 2.0]));
/// let unused = x.exp().sum_all(); // its shape is known, nothing is computed
/// let y = x.square().add_scalar(1.0);
/// assert_eq!(unused.shape(), &[] as &[usize]);
/// assert_eq!(y.value().unwrap().to_vec(), vec![2.0, 5.0]);
/// assert!(y.is_computed() && !unused.is_computed());
/// ```
pub struct Deferred<A: Array> {
    node: Rc<Node<A>>,
}

impl<A: Array> Clone for Deferred<A> {
    fn clone(&self) -> Self {
        Deferred {
            node: Rc::clone(&self.node),
        }
    }
}

struct Node<A: Array> {
    /// The operation that gives the value, for errors.
    name: &'static str,
    shape: Vec<usize>,
    state: RefCell<State<A>>,
}

// Dropping a long chain of operations never computed would drop each node's inputs inside its
// own drop, as deep as the chain: the inputs are released from a stack of their own instead.
impl<A: Array> Drop for Node<A> {
    fn drop(&mut self) {
        let mut stack = self.state.get_mut().take_inputs();
        while let Some(Deferred { node }) = stack.pop() {
            // The last handle to a node: take its inputs before it goes.
            if let Ok(mut node) = Rc::try_unwrap(node) {
                stack.extend(node.state.get_mut().take_inputs());
            }
        }
    }
}

/// A deferred operation: what runs it on its inputs' values, unfused or in a chain.
trait Recorded<A: Array> {
    /// The operation on its inputs' values.
    fn run(&self, values: &[&A]) -> Result<A, Error>;
    /// The operation as a chain's kernel (used only where it has one, for plain tensors).
    fn kernel(self: Rc<Self>) -> Rc<dyn BlockKernel<A::Elem>>;
    /// Whether it is the sum of all elements ([`Array::sum_all`]), which a chain computes in
    /// its own pass.
    fn sums_all(&self) -> bool;
}

impl<A: Array, O: Op> Recorded<A> for OpKernel<O> {
    fn run(&self, values: &[&A]) -> Result<A, Error> {
        A::apply(&self.0, values)
    }

    fn kernel(self: Rc<Self>) -> Rc<dyn BlockKernel<A::Elem>> {
        self
    }

    fn sums_all(&self) -> bool {
        let op: &dyn std::any::Any = &self.0;
        op.downcast_ref::<SumTo>().is_some_and(|s| s.0.is_empty())
    }
}

enum State<A: Array> {
    Computed(A),
    Pending {
        inputs: Vec<Deferred<A>>,
        op: Rc<dyn Recorded<A>>,
        /// Whether it can run in a fused chain: the array is plain, the operation has a block
        /// kernel for these operands, and the size is one where fusion pays.
        fuses: bool,
    },
    /// Running it failed; the error was returned then.
    Failed,
}

impl<A: Array> State<A> {
    /// A pending operation's inputs, leaving it failed; none otherwise.
    fn take_inputs(&mut self) -> Vec<Deferred<A>> {
        match std::mem::replace(self, State::Failed) {
            State::Pending { inputs, .. } => inputs,
            computed => {
                *self = computed;
                Vec::new()
            }
        }
    }
}

impl<A: Array> Deferred<A> {
    /// An array whose value is already there.
    ///
    /// ```
    /// use perturb::tensor::{Deferred, Tensor};
    /// assert!(Deferred::new(Tensor::vector(&[1.0_f64])).is_computed());
    /// ```
    pub fn new(value: A) -> Self {
        Self::with_state("value", value.shape().to_vec(), State::Computed(value))
    }

    fn with_state(name: &'static str, shape: Vec<usize>, state: State<A>) -> Self {
        Deferred {
            node: Rc::new(Node {
                name,
                shape,
                state: RefCell::new(state),
            }),
        }
    }

    /// Whether the value has been computed.
    ///
    /// ```
    /// use perturb::tensor::{Array, Deferred, Tensor};
    /// let y = Deferred::new(Tensor::vector(&[1.0_f64])).exp();
    /// assert!(!y.is_computed());
    /// y.value().unwrap();
    /// assert!(y.is_computed());
    /// ```
    pub fn is_computed(&self) -> bool {
        matches!(*self.node.state.borrow(), State::Computed(_))
    }

    /// The value, computing it and what it depends on that is not computed yet (each once),
    /// or the first error of those operations.
    ///
    /// ```
    /// use perturb::tensor::{Array, Deferred, Tensor};
    /// let x = Deferred::new(Tensor::vector(&[0.0_f64, 1.0]));
    /// assert_eq!(x.exp().scale(2.0).value().unwrap().to_vec()[0], 2.0);
    /// ```
    pub fn value(&self) -> Result<A, Error> {
        // Depth first with a stack of its own: the next input not computed yet, else run; an
        // operation that fuses runs with the region under it, once what that region reads
        // from outside is computed.
        let mut stack = vec![self.clone()];
        while let Some(top) = stack.last().cloned() {
            let waiting = match &*top.node.state.borrow() {
                State::Computed(_) => None,
                State::Failed => return Err(top.failed()),
                State::Pending { fuses: true, .. } => Some(Next::Fuse(vec![top.clone()])),
                State::Pending { inputs, op, .. }
                    if op.sums_all() && matches!(inputs.as_slice(), [x] if x.fuses()) =>
                {
                    Some(Next::FuseSum)
                }
                State::Pending { inputs, .. } => Some(next_for(inputs)),
            };
            match waiting {
                None => {
                    stack.pop();
                }
                Some(Next::Input(input)) => stack.push(input),
                Some(Next::Run) => {
                    top.run()?;
                    stack.pop();
                }
                // Computed, or what the region waits for pushed: either way `top` is looked at
                // again.
                Some(Next::Fuse(tops)) => stack.extend(fused::run_region(&tops)?),
                Some(Next::FuseSum) => stack.extend(fused::run_sum(&top)?),
            }
        }
        match &*self.node.state.borrow() {
            State::Computed(value) => Ok(value.clone()),
            _ => Err(self.failed()),
        }
    }

    /// Runs a pending operation whose inputs are all computed.
    fn run(&self) -> Result<(), Error> {
        let State::Pending { inputs, op, .. } = self.node.state.replace(State::Failed) else {
            return Err(self.failed());
        };
        let values = inputs
            .iter()
            .map(|x| match &*x.node.state.borrow() {
                State::Computed(value) => Ok(value.clone()),
                _ => Err(x.failed()),
            })
            .collect::<Result<Vec<A>, Error>>()?;
        let value = op.run(&values.iter().collect::<Vec<_>>())?;
        if value.shape() != self.node.shape.as_slice() {
            // An `output_shape` that does not match the operation's result.
            return Err(Error::ShapeMismatch {
                op: self.node.name,
                lhs: self.node.shape.clone(),
                rhs: value.shape().to_vec(),
            });
        }
        *self.node.state.borrow_mut() = State::Computed(value);
        Ok(())
    }

    /// Whether it is pending and runs fused.
    fn fuses(&self) -> bool {
        matches!(
            *self.node.state.borrow(),
            State::Pending { fuses: true, .. }
        )
    }

    /// Whether both are the same node.
    fn same(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.node, &other.node)
    }

    fn failed(&self) -> Error {
        Error::InvalidArgument {
            op: self.node.name,
            reason: "its value could not be computed (an error was returned when it was first \
                     asked for)"
                .to_string(),
        }
    }
}

impl<A: Array + 'static> Array for Deferred<A> {
    type Elem = A::Elem;

    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
        if let Some(shape) = op.output_shape(&shapes) {
            let fuses = A::PLAIN
                && fused::fits(&shape)
                && fusion::has_kernel::<A::Elem, O>(op, &shapes, &shape);
            let state = State::Pending {
                inputs: inputs.iter().map(|&x| x.clone()).collect(),
                op: Rc::new(OpKernel(op.clone())),
                fuses,
            };
            return Ok(Self::with_state(op.name(), shape, state));
        }
        let values = inputs
            .iter()
            .map(|x| x.value())
            .collect::<Result<Vec<A>, Error>>()?;
        Ok(Self::new(A::apply(op, &values.iter().collect::<Vec<_>>())?))
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        Self::new(A::lift(value))
    }

    /// The plain value, computed if need be. Panics with the error if computing it fails,
    /// which an operation's [`Op::output_shape`] promises it does not; use
    /// [`value`](Deferred::value) for a `Result`.
    fn primal(&self) -> Tensor<Self::Elem> {
        match self.value() {
            Ok(value) => value.primal(),
            Err(e) => panic!("{e}"),
        }
    }

    fn shape(&self) -> &[usize] {
        &self.node.shape
    }

    fn is_zero(&self) -> bool {
        // Only a value already computed: asking must not compute it.
        matches!(&*self.node.state.borrow(), State::Computed(v) if v.is_zero())
    }
}

/// What computing a value waits for next.
enum Next<A: Array> {
    /// An input not computed yet.
    Input(Deferred<A>),
    /// Nothing: the operation runs.
    Run,
    /// These operations, which fuse, with the region under them, in one chain.
    Fuse(Vec<Deferred<A>>),
    /// The operation, a sum of all elements, with the region under its input, in one chain
    /// that adds the input's blocks as it goes.
    FuseSum,
}

/// What an operation that does not fuse waits for, given its inputs: the first not computed
/// yet; if that one fuses, together with the others not computed that fuse with the same
/// shape, so that what they share is computed once (the two windows' cotangents that a
/// `pad_pair` adds, say).
fn next_for<A: Array>(inputs: &[Deferred<A>]) -> Next<A> {
    let mut pending = inputs.iter().filter(|x| !x.is_computed());
    let Some(first) = pending.next() else {
        return Next::Run;
    };
    if !first.fuses() {
        return Next::Input(first.clone());
    }
    let mut tops = vec![first.clone()];
    for x in pending {
        if x.fuses() && x.node.shape == first.node.shape && !tops.iter().any(|t| t.same(x)) {
            tops.push(x.clone());
        }
    }
    Next::Fuse(tops)
}

impl<A: Array> fmt::Debug for Deferred<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.node.state.borrow() {
            State::Computed(value) => write!(f, "Deferred({value:?})"),
            State::Pending { .. } => write!(
                f,
                "Deferred({} of shape {:?}, not computed)",
                self.node.name, self.node.shape
            ),
            State::Failed => write!(f, "Deferred({}, failed)", self.node.name),
        }
    }
}
