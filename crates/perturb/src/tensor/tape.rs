//! Reverse mode for tensors: a flat list of recorded operations, swept backwards by a loop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::array::{Array, Cotangent, Op, VjpReads};
use super::dense::Tensor;
use super::dual::{checked_tangent, DualTensor};
use crate::error::Error;

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// One recorded operation with its type erased: its VJP for the sweep, and its value and JVP
/// for checking it ([`check_grads`](super::check_grads)).
pub(crate) trait Backward<A: Array> {
    fn name(&self) -> &'static str;
    fn vjp(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error>;
    fn vjp_onto(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error>;
    fn jvp(&self, inputs: &[&A], output: &A, tangents: &[Option<&A>]) -> Result<Option<A>, Error>;
    fn apply(&self, inputs: &[&A]) -> Result<A, Error>;
    fn vjp_reads(&self) -> VjpReads;
    /// [`vjp_onto`](Backward::vjp_onto) on dual tensors, for the Hessian-vector product.
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
    fn name(&self) -> &'static str {
        Op::name(self)
    }
    fn vjp(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        Op::vjp(self, inputs, output, cotangent, needed)
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

/// One entry of the tape: an input (no operation) or an operation with the values its VJP needs.
struct Node<A: Array> {
    op: Option<Box<dyn Backward<A>>>,
    /// The node index of each input, `None` for a constant input.
    parents: Vec<Option<usize>>,
    inputs: Vec<A>,
    output: A,
}

/// A reverse-mode tape for tensors.
///
/// Operations on [`TensorVar`]s are appended in execution order, with the operation and the
/// values its VJP needs (shared, not copied). [`vjp`](TensorTape::vjp) and
/// [`gradient`](TensorTape::gradient) sweep the list backwards once, computing only the
/// cotangents that lead to the requested inputs; the tape is kept, so it can be swept again.
/// Operations whose inputs are all constants are not recorded.
///
/// The array type `A` is what the sweep computes with: for first order it is a plain
/// [`Tensor`], and the sweep records nothing. For second order it is itself a `TensorVar` of an
/// inner tape, and the sweep is recorded there.
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
    nodes: RefCell<Vec<Node<A>>>,
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
            nodes: RefCell::new(Vec::new()),
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
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            op: None,
            parents: Vec::new(),
            inputs: Vec::new(),
            output: value.clone(),
        });
        TensorVar {
            tape: Some(self),
            index: nodes.len() - 1,
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
        self.nodes.borrow().len()
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
        self.nodes.get_mut().clear();
        self.generation += 1;
    }

    /// The gradient of a one-element `output` with respect to each of `wrt`.
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

        let nodes = self.nodes.borrow();
        let (needed, requested) = Self::on_paths(&nodes, output.index, wrt);
        let cotangents = Self::sweep(
            &nodes,
            output.index,
            &needed,
            &requested,
            Cotangent::new(cotangent.clone()),
            |_, backward, node, ct, wanted, gathered| {
                let inputs: Vec<&A> = node.inputs.iter().collect();
                backward.vjp_onto(&inputs, &node.output, ct, wanted, gathered)
            },
        )?;
        wrt.iter()
            .map(|x| {
                // Inputs and requested nodes keep their cotangent.
                match cotangents.get(x.index).cloned().flatten() {
                    Some(ct) => ct.into_value_of(x.shape()),
                    None => Ok(zeros(x)),
                }
            })
            .collect()
    }

    /// Which nodes up to `last` lie on a path from one of `wrt` (only those get cotangents),
    /// and which are themselves requested.
    fn on_paths(
        nodes: &[Node<A>],
        last: usize,
        wrt: &[&TensorVar<'_, A>],
    ) -> (Vec<bool>, Vec<bool>) {
        let mut needed = vec![false; last + 1];
        let mut requested = vec![false; last + 1];
        for x in wrt {
            if x.index <= last {
                needed[x.index] = true;
                requested[x.index] = true;
            }
        }
        for (i, node) in nodes.iter().enumerate().take(last + 1) {
            if node.parents.iter().flatten().any(|&p| needed[p]) {
                needed[i] = true;
            }
        }
        (needed, requested)
    }

    /// The backward sweep: from `seed`, the cotangent of node `last`, back over the nodes, each
    /// operation on a path from a `needed` node handing its inputs their terms through `step`
    /// (given the node's index, it runs the rule on arrays of type `B`: `A` itself, or dual
    /// tensors for the Hessian-vector product).
    /// Returns the cotangent left at each node: the inputs' and the `requested` nodes'.
    fn sweep<B: Array>(
        nodes: &[Node<A>],
        last: usize,
        needed: &[bool],
        requested: &[bool],
        seed: Cotangent<B>,
        mut step: impl FnMut(
            usize,
            &dyn Backward<A>,
            &Node<A>,
            &Cotangent<B>,
            &[bool],
            &mut [Option<Cotangent<B>>],
        ) -> Result<(), Error>,
    ) -> Result<Vec<Option<Cotangent<B>>>, Error> {
        // Each cotangent keeps a constant factor not yet applied (see `Cotangent`).
        let mut cotangents: Vec<Option<Cotangent<B>>> = vec![None; last + 1];
        cotangents[last] = Some(seed);
        for i in (0..=last).rev() {
            let node = &nodes[i];
            let Some(backward) = &node.op else { continue };
            // A requested intermediate keeps its cotangent for the result.
            let ct = if requested[i] {
                cotangents[i].clone()
            } else {
                cotangents[i].take()
            };
            let Some(ct) = ct else { continue };
            // A rule reads its cotangent whole: a window gathered for this node is placed now.
            let ct = ct.settled()?;
            let wanted: Vec<bool> = node
                .parents
                .iter()
                .map(|p| p.is_some_and(|p| needed[p]))
                .collect();
            if !wanted.iter().any(|&w| w) {
                continue;
            }
            // Each wanted input's cotangent so far goes to the rule, which adds its terms; an
            // input used twice by this operation takes it at its first slot only.
            let mut gathered: Vec<Option<Cotangent<B>>> = node
                .parents
                .iter()
                .zip(&wanted)
                .map(|(p, &w)| match (p, w) {
                    (Some(p), true) => cotangents[*p].take(),
                    _ => None,
                })
                .collect();
            step(i, backward.as_ref(), node, &ct, &wanted, &mut gathered).map_err(|e| {
                Error::Backward {
                    op: backward.name(),
                    cause: Box::new(e),
                }
            })?;
            for (parent, sum) in node.parents.iter().zip(gathered) {
                let (Some(p), Some(sum)) = (parent, sum) else {
                    continue;
                };
                Cotangent::accumulate(&mut cotangents[*p], sum)?;
            }
        }
        Ok(cotangents)
    }

    /// The Hessian-vector product `H v` of the one-element `output` with respect to `x`, forward
    /// over reverse: the tangents along `v` of the recorded values, then the backward sweep on
    /// dual tensors. Only the tangents some rule on the sweep reads ([`Op::VJP_READS`]) are
    /// computed, with those they depend on: the tangent of the loss itself, and of the values
    /// that only linear operations see, is never needed.
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
        let nodes = self.nodes.borrow();
        let last = output.index;
        let (needed, requested) = Self::on_paths(&nodes, last, &[x]);

        // Which tangents are read: by the rules of the operations the sweep will run, and by
        // the JVPs that give those tangents.
        let mut read = vec![false; last + 1];
        for i in (0..=last).rev() {
            let node = &nodes[i];
            let Some(backward) = &node.op else { continue };
            if needed[i] {
                let reads = backward.vjp_reads();
                let wanted = |p: &Option<usize>| p.is_some_and(|p| needed[p]);
                read[i] |= reads.output && node.parents.iter().any(wanted);
                for (j, pj) in node.parents.iter().enumerate() {
                    if !wanted(pj) {
                        continue;
                    }
                    // The term of input j reads its own value and/or the others'.
                    for (k, pk) in node.parents.iter().enumerate() {
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
                for &p in node.parents.iter().flatten() {
                    read[p] = true;
                }
            }
        }
        // The tangents along `v`, forwards, where read.
        let mut tangents: Vec<Option<A>> = vec![None; last + 1];
        if x.index <= last {
            tangents[x.index] = Some(v.clone());
        }
        for i in 0..=last {
            let node = &nodes[i];
            let (Some(backward), true) = (&node.op, read[i]) else {
                continue;
            };
            let inputs: Vec<&A> = node.inputs.iter().collect();
            let input_tangents: Vec<Option<&A>> = node
                .parents
                .iter()
                .map(|p| p.and_then(|p| tangents[p].as_ref()))
                .collect();
            // Checked and reported as forward mode reports it (`DualTensor::apply`).
            let tangent = backward.jvp(&inputs, &node.output, &input_tangents)?;
            tangents[i] = checked_tangent(backward.name(), &node.output, tangent)?;
        }
        let dual = |value: &A, index: Option<usize>| {
            DualTensor::from_parts(value.clone(), index.and_then(|p| tangents[p].clone()))
        };
        let seed = DualTensor::constant(A::lift(Tensor::ones(output.shape())));
        let cotangents = Self::sweep(
            &nodes,
            last,
            &needed,
            &requested,
            Cotangent::new(seed),
            |i, backward, node, ct, wanted, gathered| {
                let inputs: Vec<DualTensor<A>> = node
                    .inputs
                    .iter()
                    .zip(&node.parents)
                    .map(|(value, &p)| dual(value, p))
                    .collect();
                let output = dual(&node.output, Some(i));
                let inputs: Vec<&DualTensor<A>> = inputs.iter().collect();
                backward.vjp_onto_dual(&inputs, &output, ct, wanted, gathered)
            },
        )?;
        match cotangents.get(x.index).cloned().flatten() {
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
        let nodes = self.nodes.borrow();
        let mut out = String::from(
            "digraph perturb {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, node) in nodes.iter().enumerate() {
            let op = node.op.as_ref().map_or("input", |op| op.name());
            let label = format!("v{i} = {op}\\n{:?}", node.output.shape());
            let _ = writeln!(
                out,
                "  n{i} [label=\"{}\"];",
                crate::explain::escape(&label)
            );
        }
        for (i, node) in nodes.iter().enumerate() {
            for p in node.parents.iter().flatten() {
                let _ = writeln!(out, "  n{p} -> n{i};");
            }
        }
        out.push_str("}\n");
        out
    }

    /// Calls `visit` with each recorded operation and its inputs and output, in order.
    pub(crate) fn for_each_op(&self, mut visit: impl FnMut(usize, &dyn Backward<A>, &[A], &A)) {
        for (i, node) in self.nodes.borrow().iter().enumerate() {
            if let Some(op) = &node.op {
                visit(i, op.as_ref(), &node.inputs, &node.output);
            }
        }
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

    fn record<O: Op>(&self, op: &O, inputs: &[&TensorVar<'_, A>], output: A) -> usize {
        let mut nodes = self.nodes.borrow_mut();
        nodes.push(Node {
            op: Some(Box::new(op.clone())),
            parents: inputs.iter().map(|x| x.tape.map(|_| x.index)).collect(),
            inputs: inputs.iter().map(|x| x.value.clone()).collect(),
            output,
        });
        nodes.len() - 1
    }
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
        Ok(match tape {
            Some(t) if t.recording.get() => {
                let index = t.record(op, inputs, value.clone());
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
}

/// The VJP of `op` as the transpose of its JVP. The JVP is linear in the tangents, so running it
/// with the tangents as variables of a fresh tape (everything else constant) records that linear
/// map, and sweeping the tape backwards applies its transpose to `cotangent`. The sweep computes
/// with `A`, so the result stays differentiable at every order.
pub(crate) fn transpose_jvp<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    output: &A,
    cotangent: &A,
    needed: &[bool],
) -> Result<Vec<Option<A>>, Error> {
    let tape = TensorTape::<A>::over();
    let constants: Vec<TensorVar<'_, A>> = inputs
        .iter()
        .map(|x| TensorVar::constant((*x).clone()))
        .collect();
    let tangents: Vec<Option<TensorVar<'_, A>>> = inputs
        .iter()
        .zip(needed)
        .map(|(x, &n)| n.then(|| tape.var(A::lift(Tensor::zeros(x.shape())))))
        .collect();
    let constant_refs: Vec<&TensorVar<'_, A>> = constants.iter().collect();
    let tangent_refs: Vec<Option<&TensorVar<'_, A>>> =
        tangents.iter().map(Option::as_ref).collect();
    let output = TensorVar::constant(output.clone());
    let Some(linear) = op.jvp(&constant_refs, &output, &tangent_refs)? else {
        return Ok(vec![None; inputs.len()]);
    };
    let wrt: Vec<&TensorVar<'_, A>> = tangents.iter().flatten().collect();
    let mut cotangents = tape.vjp(&linear, cotangent, &wrt)?.into_iter();
    Ok(tangents
        .iter()
        .map(|t| t.as_ref().and_then(|_| cotangents.next()))
        .collect())
}
