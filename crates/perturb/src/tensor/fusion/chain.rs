//! A chain of element-wise operations on tensors of one shape, run block by block.

use std::rc::Rc;

use crate::error::Error;
use crate::tensor::{buffers, dense, kernels, Element, Op, Tensor};

use super::Operand;

/// Elements per block: 4 KiB of `f64` per node, so the blocks of a chain of a few nodes stay in L1.
pub const BLOCK: usize = 512;

/// The most operands one operation of a chain takes (`where` and `mul_add` take three).
pub(crate) const MAX_ARITY: usize = 4;

/// What a node of a chain runs on each block: an operation's [`Op::eval_block`], its type
/// erased. Shared (`Rc`), so that a [`Deferred`](crate::tensor::Deferred) array hands its
/// recorded operations to a chain without copying them.
pub(crate) trait BlockKernel<T> {
    /// [`Op::eval_block`] of the operation.
    fn eval_block(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool;
}

/// An operation as a chain's kernel.
pub(crate) struct OpKernel<O>(pub(crate) O);

impl<T: Element, O: Op> BlockKernel<T> for OpKernel<O> {
    fn eval_block(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
        self.0.eval_block(inputs, out)
    }
}

type Kernel<T> = Rc<dyn BlockKernel<T>>;

enum Node<T> {
    /// A tensor of the chain's shape.
    Leaf(Tensor<T>),
    /// One value for every element (a 0-d tensor).
    Scalar(T),
    /// An element-wise operation of earlier nodes, and its name for errors.
    Apply {
        name: &'static str,
        kernel: Kernel<T>,
        /// The first `arity` are its operands (no allocation per node).
        inputs: [usize; MAX_ARITY],
        arity: usize,
        /// Its block's place in the scratch: operations are numbered in order, inputs not.
        slot: usize,
    },
}

/// A small expression DAG of element-wise operations over tensors of one shape (0-d tensors
/// standing for every element), evaluated in blocks of [`BLOCK`] elements: each operation runs
/// once per block on operands that are still in cache, and only the requested results are
/// written out, in one pass over memory instead of one per operation. Each operation runs by
/// its own [`Op::eval_block`], so the values equal unfused evaluation bit for bit, and so does a
/// sum ([`Chain::sum`]) with [`Array::sum_all`](crate::tensor::Array::sum_all).
///
/// ```
/// use perturb::tensor::{fusion::Chain, ops, Tensor};
/// // (1 - x)^2 as one pass: sub, square.
/// let mut chain = Chain::new(&[3]);
/// let x = chain.leaf(Tensor::vector(&[0.0_f64, 1.0, 3.0])).unwrap();
/// let one = chain.leaf(Tensor::scalar(1.0)).unwrap();
/// let d = chain.apply(&ops::Sub, &[one, x]).unwrap();
/// let y = chain.apply(&ops::Square, &[d]).unwrap();
/// assert_eq!(chain.eval(&[y]).unwrap()[0].to_vec(), vec![1.0, 0.0, 4.0]);
/// assert_eq!(chain.sum(y).unwrap(), 5.0);
/// ```
pub struct Chain<T> {
    shape: Vec<usize>,
    /// The number of elements of `shape`, or the error of a shape with more than a tensor can
    /// hold (returned by [`eval`](Self::eval) and [`sum`](Self::sum)).
    len: Result<usize, Error>,
    nodes: Vec<Node<T>>,
    /// How many of the nodes are operations: blocks of scratch a run needs.
    operations: usize,
}

impl<T: Element> Chain<T> {
    /// An empty chain over tensors of `shape`. A shape with more elements than a tensor can
    /// hold makes [`eval`](Self::eval) and [`sum`](Self::sum) errors.
    ///
    /// ```
    /// let chain = perturb::tensor::fusion::Chain::<f64>::new(&[2, 3]);
    /// assert_eq!(chain.shape(), &[2, 3]);
    /// ```
    pub fn new(shape: &[usize]) -> Self {
        Chain {
            shape: shape.to_vec(),
            len: dense::element_count("fusion::Chain::new", shape),
            nodes: Vec::new(),
            operations: 0,
        }
    }

    /// The shape of every result.
    ///
    /// ```
    /// assert!(perturb::tensor::fusion::Chain::<f32>::new(&[]).shape().is_empty());
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Adds an input: a tensor of the chain's shape, or a 0-d tensor that stands for every
    /// element. Any other shape is an error.
    ///
    /// ```
    /// use perturb::tensor::{fusion::Chain, Tensor};
    /// let mut chain = Chain::new(&[2]);
    /// assert!(chain.leaf(Tensor::vector(&[1.0_f64, 2.0])).is_ok());
    /// assert!(chain.leaf(Tensor::vector(&[1.0_f64, 2.0, 3.0])).is_err());
    /// ```
    pub fn leaf(&mut self, x: Tensor<T>) -> Result<usize, Error> {
        let node = if x.shape() == self.shape.as_slice() {
            Node::Leaf(x)
        } else if x.shape().is_empty() {
            Node::Scalar(x.as_slice()[0])
        } else {
            return Err(Error::ShapeMismatch {
                op: "fusion::Chain::leaf",
                lhs: self.shape.clone(),
                rhs: x.shape().to_vec(),
            });
        };
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    /// Adds an input that stands for every element: a one-element operand broadcast.
    pub(crate) fn scalar(&mut self, value: T) -> usize {
        self.nodes.push(Node::Scalar(value));
        self.nodes.len() - 1
    }

    /// Adds `op` of earlier nodes. An error where `op` is not element-wise or a node index is
    /// not an earlier node; an arity the operation refuses is reported when the chain runs.
    ///
    /// ```
    /// use perturb::tensor::{fusion::Chain, ops, Tensor};
    /// let mut chain = Chain::new(&[1]);
    /// let x = chain.leaf(Tensor::vector(&[2.0_f64])).unwrap();
    /// assert!(chain.apply(&ops::Exp, &[x]).is_ok());
    /// assert!(chain.apply(&ops::MatMul::default(), &[x, x]).is_err());
    /// ```
    pub fn apply<O: Op>(&mut self, op: &O, inputs: &[usize]) -> Result<usize, Error> {
        let invalid = |reason: &str| Error::InvalidArgument {
            op: "fusion::Chain::apply",
            reason: format!("{}: {reason}", op.name()),
        };
        if !O::ELEMENTWISE {
            return Err(invalid("not an element-wise operation"));
        }
        self.apply_kernel(op.name(), Rc::new(OpKernel(op.clone())), inputs)
    }

    /// Adds the operation `name` of earlier nodes, run by `kernel`; the element-wise check is
    /// the caller's.
    pub(crate) fn apply_kernel(
        &mut self,
        name: &'static str,
        kernel: Kernel<T>,
        inputs: &[usize],
    ) -> Result<usize, Error> {
        let invalid = |reason: &str| Error::InvalidArgument {
            op: "fusion::Chain::apply",
            reason: format!("{name}: {reason}"),
        };
        if inputs.len() > MAX_ARITY {
            return Err(invalid("more operands than a fused chain takes"));
        }
        if inputs.iter().any(|&i| i >= self.nodes.len()) {
            return Err(invalid("an input is not an earlier node of the chain"));
        }
        let mut operands = [0; MAX_ARITY];
        operands[..inputs.len()].copy_from_slice(inputs);
        self.nodes.push(Node::Apply {
            name,
            kernel,
            inputs: operands,
            arity: inputs.len(),
            slot: self.operations,
        });
        self.operations += 1;
        Ok(self.nodes.len() - 1)
    }

    /// An error naming `op` where `node` is not a node of the chain.
    fn check_node(&self, op: &'static str, node: usize) -> Result<(), Error> {
        if node < self.nodes.len() {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op,
            reason: format!(
                "output {node} is not a node of the chain (it has {})",
                self.nodes.len()
            ),
        })
    }

    /// Elements per block for a chain of `len` elements: [`BLOCK`], or fewer for a smaller
    /// shape, so that a small chain's scratch is small.
    fn block(len: usize) -> usize {
        BLOCK.min(len).max(1)
    }

    /// The values of the `outputs` nodes, in one pass over the inputs; an error where one is
    /// not a node of the chain.
    ///
    /// ```
    /// use perturb::tensor::{fusion::Chain, ops, Tensor};
    /// let mut chain = Chain::new(&[2]);
    /// let x = chain.leaf(Tensor::vector(&[1.0_f64, 2.0])).unwrap();
    /// let y = chain.apply(&ops::Mul, &[x, x]).unwrap();
    /// let [x2, y2] = <[_; 2]>::try_from(chain.eval(&[x, y]).unwrap()).unwrap();
    /// assert_eq!((x2.to_vec(), y2.to_vec()), (vec![1.0, 2.0], vec![1.0, 4.0]));
    /// ```
    pub fn eval(&self, outputs: &[usize]) -> Result<Vec<Tensor<T>>, Error> {
        Ok(self.eval_summing("fusion::Chain::eval", outputs, &[])?.0)
    }

    /// The values of the `outputs` nodes, and the sums of the elements of the `summed` nodes,
    /// in one pass over the inputs: a summed node's values need not be written out. `op`
    /// names the caller in errors.
    pub(crate) fn eval_summing(
        &self,
        op: &'static str,
        outputs: &[usize],
        summed: &[usize],
    ) -> Result<(Vec<Tensor<T>>, Vec<T>), Error> {
        let len = self.len.clone()?;
        for &node in outputs.iter().chain(summed) {
            self.check_node(op, node)?;
        }
        // An operation's block is written straight into its output (`direct`, in full from
        // the start: each block is written before it is read); an input, or an output asked
        // for twice, is copied in block by block.
        let mut place = vec![None; self.nodes.len()];
        let mut direct = Vec::new();
        let mut copied: Vec<Vec<T>> = Vec::new();
        let mut route = Vec::with_capacity(outputs.len());
        for &node in outputs {
            let is_op = matches!(self.nodes.get(node), Some(Node::Apply { .. }));
            if is_op && place[node].is_none() {
                place[node] = Some(direct.len());
                route.push(Ok(direct.len()));
                direct.push(buffers::stale(len));
            } else {
                route.push(Err(copied.len()));
                copied.push(buffers::take(len));
            }
        }
        let mut totals: Vec<_> = summed.iter().map(|_| kernels::RunningSum::new()).collect();
        self.run(&place, &mut direct, |values| {
            for (total, &node) in totals.iter_mut().zip(summed) {
                match values.get(node) {
                    Operand::Slice(s) => total.add(s),
                    Operand::Scalar(v) => total.add_repeated(v, values.len()),
                }
            }
            let wanted = outputs
                .iter()
                .zip(&route)
                .filter_map(|(&n, r)| r.err().map(|c| (n, c)));
            for (node, c) in wanted {
                match values.get(node) {
                    Operand::Slice(s) => copied[c].extend_from_slice(s),
                    Operand::Scalar(v) => {
                        let len = copied[c].len() + values.len();
                        copied[c].resize(len, v)
                    }
                }
            }
        })?;
        let (mut direct, mut copied) = (direct.into_iter(), copied.into_iter());
        let values = route
            .into_iter()
            .map(|r| {
                let data = match r {
                    Ok(_) => direct.next(),
                    Err(_) => copied.next(),
                };
                Tensor::from_parts(data.unwrap_or_default(), self.shape.clone())
            })
            .collect();
        Ok((values, totals.into_iter().map(|t| t.finish()).collect()))
    }

    /// The sum of the elements of node `output`, added block by block in the same pass (the
    /// node's values are never written out), with the running sums of
    /// [`sum_all`](crate::tensor::Array::sum_all) carried from block to block: the same bits.
    /// An error where `output` is not a node of the chain.
    ///
    /// ```
    /// use perturb::tensor::{fusion::Chain, ops, Array, Tensor};
    /// let x = Tensor::<f64>::randn(&[5_000], 0.0, 1.0, 0);
    /// let mut chain = Chain::new(&[5_000]);
    /// let leaf = chain.leaf(x.clone()).unwrap();
    /// let y = chain.apply(&ops::Square, &[leaf]).unwrap();
    /// let fused = chain.sum(y).unwrap();
    /// assert_eq!(fused.to_bits(), x.square().sum_all().as_slice()[0].to_bits());
    /// ```
    pub fn sum(&self, output: usize) -> Result<T, Error> {
        Ok(self.eval_summing("fusion::Chain::sum", &[], &[output])?.1[0])
    }

    /// Runs every node on each block in turn, handing `visit` the block's values. A node
    /// with `place` `Some(k)` writes its blocks into `direct[k]` (of the chain's length), the
    /// others into scratch.
    fn run(
        &self,
        place: &[Option<usize>],
        direct: &mut [Vec<T>],
        mut visit: impl FnMut(&Values<'_, T>),
    ) -> Result<(), Error> {
        let len = self.len.clone()?;
        let block = Self::block(len);
        // Every block is written by its operation before anything reads it: no zeroing.
        let mut scratch: Vec<T> = buffers::stale(self.operations * block);
        let result = self.run_on(&mut scratch, len, block, place, direct, &mut visit);
        buffers::give(scratch);
        result
    }

    /// [`run`](Self::run) on `scratch`, `len` elements in blocks of `block`.
    fn run_on(
        &self,
        scratch: &mut [T],
        len: usize,
        block: usize,
        place: &[Option<usize>],
        direct: &mut [Vec<T>],
        visit: &mut impl FnMut(&Values<'_, T>),
    ) -> Result<(), Error> {
        let mut start = 0;
        while start < len.max(1) {
            let n = block.min(len - start);
            for (i, node) in self.nodes.iter().enumerate() {
                let Node::Apply {
                    name,
                    kernel,
                    inputs,
                    arity,
                    slot,
                } = node
                else {
                    continue;
                };
                // Its own output is taken out while it is written: no operand reads it.
                let mut own = place[i].map(|k| std::mem::take(&mut direct[k]));
                // Operations are numbered in order: their inputs' blocks come before.
                let (earlier, rest) = scratch.split_at_mut(slot * block);
                let blocks = Blocks {
                    nodes: &self.nodes,
                    scratch: earlier,
                    place,
                    direct,
                    block,
                };
                // On the stack: no allocation per node per block.
                let mut operands = [Operand::Scalar(T::zero()); MAX_ARITY];
                for (o, &j) in operands.iter_mut().zip(&inputs[..*arity]) {
                    *o = blocks.operand(j, start, n);
                }
                let operands = &operands[..*arity];
                let out = match &mut own {
                    Some(own) => &mut own[start..start + n],
                    None => &mut rest[..n],
                };
                let ok = kernel.eval_block(operands, out);
                if let (Some(k), Some(own)) = (place[i], own) {
                    direct[k] = own;
                }
                if !ok {
                    return Err(Error::InvalidArgument {
                        op: name,
                        reason: format!("no block kernel for {arity} operand(s) in a fused chain"),
                    });
                }
            }
            visit(&Values {
                blocks: Blocks {
                    nodes: &self.nodes,
                    scratch,
                    place,
                    direct,
                    block,
                },
                start,
                len: n,
            });
            if n == 0 {
                break;
            }
            start += n;
        }
        Ok(())
    }
}

/// Where a run's blocks are: each operation's in the scratch (`block` elements an
/// operation), or in its output when it is written straight there.
struct Blocks<'a, T> {
    nodes: &'a [Node<T>],
    scratch: &'a [T],
    place: &'a [Option<usize>],
    direct: &'a [Vec<T>],
    block: usize,
}

impl<'a, T: Element> Blocks<'a, T> {
    /// Node `j`'s operand for the block `start..start + n`.
    fn operand(&self, j: usize, start: usize, n: usize) -> Operand<'a, T> {
        match (&self.nodes[j], self.place[j]) {
            (Node::Leaf(x), _) => Operand::Slice(&x.as_slice()[start..start + n]),
            (Node::Scalar(v), _) => Operand::Scalar(*v),
            (Node::Apply { .. }, Some(k)) => Operand::Slice(&self.direct[k][start..start + n]),
            (Node::Apply { slot, .. }, None) => {
                let at = slot * self.block;
                Operand::Slice(&self.scratch[at..at + n])
            }
        }
    }
}

/// Every node's values on one block.
struct Values<'a, T> {
    blocks: Blocks<'a, T>,
    start: usize,
    len: usize,
}

impl<'a, T: Element> Values<'a, T> {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, j: usize) -> Operand<'a, T> {
        self.blocks.operand(j, self.start, self.len)
    }
}
