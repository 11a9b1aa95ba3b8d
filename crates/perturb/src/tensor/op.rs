//! [`Op`]: one operation in one place, its value on plain tensors and its derivative rules,
//! with [`VjpReads`] (what its reverse rule reads) and [`or_panic`] (the plain forms' panic).

use std::fmt::Debug;

use super::array::Array;
use super::cotangent::Cotangent;
use super::dense::Tensor;
use super::element::Element;
use super::ops;
use crate::error::Error;

/// One tensor operation: its value on plain tensors and its derivative rules, the
/// Jacobian-vector product (forward mode) and the vector-Jacobian product (reverse mode).
///
/// Both rules are written with [`Array`] methods, generic over the array type, so they are
/// themselves differentiable: run on plain tensors they are first-order forward or reverse mode
/// and cost nothing more; run on tape variables or dual tensors they are recorded or pushed
/// forward again, which gives derivatives of any order.
///
/// An operation must give its value and its JVP. The VJP is optional: by default it is the JVP
/// transposed (the JVP is linear in the tangents, so running it on tape variables and sweeping
/// that tape backwards gives its transpose, JAX's "linearise, then transpose"). Give the VJP
/// directly where that is faster, or where the JVP applies the operation itself (a linear
/// operation whose JVP is `op(tangent)` would otherwise transpose itself forever).
///
/// Operations whose JVPs apply each other (Bessel's `J0' = -J1` and `J1' = J0 - J1 / x`, a
/// `sin`/`cos` pair) work with the default VJP at every order: the transposition records the
/// JVP on a tape that compiles no rule on dual tensors, so the cycle adds no level of nesting
/// (`tests/tensor_custom_ops.rs` has the Bessel pair, to the third derivative).
///
/// ```
/// use perturb::tensor::{jvp, Array, DualTensor, Element, Op, Tensor, TensorTape};
/// use perturb::Error;
///
/// /// `x^3`, defined by its value and its JVP `3 x^2 t`; reverse mode comes from the JVP.
/// #[derive(Clone, Debug)]
/// struct Cube;
/// impl Op for Cube {
///     fn name(&self) -> &'static str { "cube" }
///     fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
///         Ok(x[0].map(|v| v * v * v))
///     }
///     fn jvp<A: Array>(&self, x: &[&A], _out: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
///         let Some(t) = t[0] else { return Ok(None) };
///         let three_x2 = x[0].try_mul(x[0])?.scale(A::elem(3.0));
///         Ok(Some(t.try_mul(&three_x2)?))
///     }
/// }
///
/// // Reverse mode, from the transposed JVP: d/dx sum(x^3) = 3 x^2.
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::vector(&[1.0_f64, 2.0]));
/// let y = x.apply_op(&Cube).unwrap().sum_all();
/// let g = tape.gradient(&y, &[&x]).unwrap();
/// assert_eq!(g[0].to_vec(), vec![3.0, 12.0]);
///
/// // Forward mode, and forward over forward for the second derivative 6 x.
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let (y, dy) = jvp(|x: &DualTensor<Tensor<f64>>| x.apply_op(&Cube), &x, &Tensor::ones(&[2])).unwrap();
/// assert_eq!((y.to_vec(), dy.to_vec()), (vec![1.0, 8.0], vec![3.0, 12.0]));
/// let (_, d2) = jvp(
///     |x: &DualTensor<Tensor<f64>>| Ok(jvp(|x: &DualTensor<DualTensor<Tensor<f64>>>| x.apply_op(&Cube), x, &DualTensor::lift(Tensor::ones(&[2])))?.1),
///     &x,
///     &Tensor::ones(&[2]),
/// ).unwrap();
/// assert_eq!(d2.to_vec(), vec![6.0, 12.0]);
/// ```
pub trait Op: Clone + Debug + 'static {
    /// The name used in error messages and graphs.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op};
    /// assert_eq!(Exp.name(), "exp");
    /// ```
    fn name(&self) -> &'static str;

    /// The value, computed on plain tensors.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op, Tensor};
    /// let y = Exp.eval(&[&Tensor::vector(&[0.0_f64])]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// ```
    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error>;

    /// The tangent of the output given the tangent of each input (`None`: zero): the
    /// Jacobian-vector product, linear in the tangents. `None` for a zero tangent (an output
    /// that does not depend differentiably on the inputs, or all tangents zero). The output's
    /// value is passed so a rule can reuse it (the JVP of `exp` is `t * exp(x)`).
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op, Tensor};
    /// let x = Tensor::vector(&[0.0_f64]);
    /// let y = Exp.eval(&[&x]).unwrap();
    /// let t = Tensor::vector(&[2.0]);
    /// let dy = Exp.jvp(&[&x], &y, &[Some(&t)]).unwrap();
    /// assert_eq!(dy.unwrap().to_vec(), vec![2.0]);
    /// ```
    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error>;

    /// The cotangent of each input given the cotangent of the output (`None`: zero, or an input
    /// that is not differentiable). `needed[i]` says whether input `i`'s cotangent is wanted;
    /// an operation may skip the work for the others.
    ///
    /// The default transposes [`jvp`](Op::jvp); see the trait's example.
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Op, Tensor};
    /// let x = Tensor::vector(&[0.0_f64]);
    /// let y = Exp.eval(&[&x]).unwrap();
    /// let ct = Exp.vjp(&[&x], &y, &Tensor::vector(&[2.0]), &[true]).unwrap();
    /// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![2.0]);
    /// ```
    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        super::tape::transpose_jvp(self, inputs, output, cotangent, needed)
    }

    /// Whether each element of the result depends only on the inputs' elements at the same
    /// position, after numpy broadcasting (`exp`, `+`, `where`). Such an operation is mapped
    /// over stacks by broadcasting ([`Op::batch`]'s default), with no rule of its own.
    ///
    /// ```
    /// use perturb::tensor::{ops, Op};
    /// assert!(ops::Exp::ELEMENTWISE && !ops::MatMul::ELEMENTWISE);
    /// ```
    const ELEMENTWISE: bool = false;

    /// The value on one block of an element-wise operation's operands, written into `out`:
    /// each operand a run of `out.len()` elements at the same positions, or one value standing
    /// for all of them. `false` (and `out` untouched) where the operation has no block kernel
    /// or the operands do not fit: the default, right for every operation. An element-wise row
    /// of `ops` gets its kernel from the same closure as its [`eval`](Op::eval), so a fused
    /// chain computes the same values bit for bit ([`fusion`](super::fusion)).
    ///
    /// ```
    /// use perturb::tensor::{fusion::Operand, ops, Op};
    /// let mut out = [0.0_f64; 2];
    /// assert!(ops::Mul.eval_block(&[Operand::Slice(&[1.0, 2.0]), Operand::Scalar(3.0)], &mut out));
    /// assert_eq!(out, [3.0, 6.0]);
    /// assert!(!ops::MatMul::default().eval_block(&[Operand::Scalar(1.0)], &mut out));
    /// ```
    fn eval_block<T: Element>(
        &self,
        inputs: &[super::fusion::Operand<'_, T>],
        out: &mut [T],
    ) -> bool {
        let _ = (inputs, out);
        false
    }

    /// The shape of the result for inputs of these shapes, where the operation can tell without
    /// running and is sure to succeed on any values of these shapes; `None` where it cannot
    /// tell or the shapes are wrong (running it then reports the error). The default is `None`:
    /// always right. With a shape, a [`Deferred`](super::Deferred) array puts off running the
    /// operation until its value is needed, and never runs it if it is not.
    ///
    /// ```
    /// use perturb::tensor::{ops, Op};
    /// assert_eq!(ops::Add.output_shape(&[&[2, 3], &[3]]), Some(vec![2, 3]));
    /// assert_eq!(ops::Add.output_shape(&[&[2, 3], &[2]]), None); // they do not broadcast
    /// assert_eq!(ops::MatMul::default().output_shape(&[&[2, 3], &[3, 4]]), Some(vec![2, 4]));
    /// assert_eq!(ops::Softmax { axis: 0 }.output_shape(&[&[2, 3]]), None); // it does not tell
    /// ```
    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let _ = inputs;
        None
    }

    /// Which values the VJP reads besides the cotangent (shapes are always at hand). The
    /// default, all of them, is always right; an operation whose rule reads less says so: a
    /// [`TensorTape`](super::TensorTape) then keeps no value that only such rules see (the
    /// rule is given zeros of its shape in its place), and [`hvp`](super::hvp) computes no
    /// tangent for it. A rule that reads a value it says it does not gets zeros: the gradient
    /// is wrong, and [`check_grads`](super::check_grads) says so.
    ///
    /// ```
    /// use perturb::tensor::{ops, Op, VjpReads};
    /// assert_eq!(ops::Add::VJP_READS, VjpReads::NOTHING);
    /// assert_eq!(ops::Exp::VJP_READS, VjpReads::OUTPUT);
    /// assert_eq!(ops::Sin::VJP_READS, VjpReads::ALL);
    /// ```
    const VJP_READS: VjpReads = VjpReads::ALL;

    /// The VJP added to the cotangents gathered so far for the inputs (`gathered[i]`, `None`
    /// for none yet): the step the backward sweep takes at this operation.
    ///
    /// The sweep carries each cotangent with a constant factor not yet applied
    /// ([`Cotangent`]): a VJP is linear in its cotangent, so the default runs
    /// [`vjp`](Op::vjp) on the unscaled value and hands the factor on to each term, and a
    /// scaling (`scale`, `neg`, the `-` of `sub`) costs no pass at all. An operation overrides
    /// this where it can do better: multiply the factor into a product it computes anyway
    /// (`square`, `mul`, [`ScaledMul`](super::ops::ScaledMul)), change only the factor
    /// (`scale`, `neg`, `sub`), or add as it goes ([`Narrow`](super::ops::Narrow) gathers its
    /// cotangent as a window of the input's, placed in the pass that adds the next term).
    ///
    /// A slot of `gathered` may hold such a window, not yet in place: add to a slot with
    /// [`Cotangent::accumulate`] and read one with [`Cotangent::into_value_of`], not through
    /// its `value`. The `cotangent` given to the rule is always whole.
    ///
    /// ```
    /// use perturb::tensor::{ops::Narrow, Cotangent, Op, Tensor};
    /// let x = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
    /// let head = Narrow { axis: 0, start: 0, len: 2 };
    /// let y = head.eval(&[&x]).unwrap();
    /// let mut gathered = [Some(Cotangent::new(Tensor::vector(&[10.0, 20.0, 30.0])))];
    /// let ct = Cotangent::new(Tensor::vector(&[1.0, 2.0]));
    /// head.vjp_onto(&[&x], &y, &ct, &[true], &mut gathered).unwrap();
    /// let sum = gathered[0].take().unwrap().into_value().unwrap();
    /// assert_eq!(sum.to_vec(), vec![11.0, 22.0, 30.0]);
    /// ```
    fn vjp_onto<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        ops::vjp_then_gather(self, inputs, output, cotangent, needed, gathered)
    }

    /// The operation mapped over stacks of inputs (vectorisation, JAX's batching rule): inputs
    /// with `stacked[i]` set carry `size` values along an extra leading axis, the others one
    /// value shared by all; the result is the stack of `size` results, along a leading axis.
    /// [`Batched`](super::Batched) calls it; it is what lets [`jacfwd`](super::jacfwd) push all
    /// basis tangents through one pass.
    ///
    /// The default broadcasts for an [element-wise](Op::ELEMENTWISE) operation and otherwise
    /// applies the operation to each member in turn, which is always right; an operation
    /// overrides it to do the whole stack at once (reductions move their axes past the stack's).
    ///
    /// ```
    /// use perturb::tensor::{ops::Exp, Array, Op, Tensor};
    /// let xs = Tensor::from_vec(vec![0.0_f64, 1.0, 2.0, 3.0], &[2, 2]).unwrap();
    /// let ys = Exp.batch(&[&xs], &[true], 2).unwrap();
    /// assert_eq!(ys.to_vec(), xs.exp().to_vec());
    /// ```
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        if Self::ELEMENTWISE {
            super::batched::elementwise(self, inputs, stacked)
        } else {
            super::batched::by_loop(self, inputs, stacked, size)
        }
    }

    /// The operation mapped over stacks along a trailing axis: inputs with `trailing[i]` set
    /// carry `size` values along an extra last axis, the others one value shared by all; the
    /// result is the stack of results along a last axis, or `None` where the operation has no
    /// such rule (the stacks are then moved to the front, for [`Op::batch`]). Forward mode's
    /// Jacobian is the stack of its columns, along its last axis: kept there, it needs no
    /// transpose (see [`Batched`](super::Batched)).
    ///
    /// The default broadcasts for an [element-wise](Op::ELEMENTWISE) operation and is `None`
    /// otherwise; operations whose axes are the members' own (reductions over axes, reshapes)
    /// and the matrix product override it.
    ///
    /// ```
    /// use perturb::tensor::{ops::Mul, Array, Op, Tensor};
    /// // Two columns [1, 2] and [3, 4], stacked along the last axis, times [10, 100].
    /// let xs = Tensor::from_vec(vec![1.0_f64, 3.0, 2.0, 4.0], &[2, 2]).unwrap();
    /// let w = Tensor::vector(&[10.0, 100.0]);
    /// let ys = Mul.batch_trailing(&[&xs, &w], &[true, false], 2).unwrap().unwrap();
    /// assert_eq!(ys.to_vec(), vec![10.0, 30.0, 200.0, 400.0]);
    /// ```
    fn batch_trailing<A: Array>(
        &self,
        inputs: &[&A],
        trailing: &[bool],
        size: usize,
    ) -> Option<Result<A, Error>> {
        let _ = size;
        Self::ELEMENTWISE.then(|| super::batched::elementwise_trailing(self, inputs, trailing))
    }
}

/// Unwraps an operation's result, or panics with its error at the caller's line.
#[track_caller]
pub(crate) fn or_panic<A>(result: Result<A, Error>) -> A {
    match result {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

/// What an operation's VJP reads besides the cotangent ([`Op::VJP_READS`]): for the term of
/// one input, that input's value, the other inputs' values, and the output's value.
///
/// ```
/// use perturb::tensor::VjpReads;
/// // `mul`'s terms are `g b` for `a` and `g a` for `b`: each reads only the other input.
/// assert_eq!(VjpReads::OTHER_INPUTS, VjpReads { own_input: false, other_inputs: true, output: false });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VjpReads {
    /// The term of an input reads that input's value (`square`'s `2 x g`).
    pub own_input: bool,
    /// The term of an input reads the other inputs' values (`mul`'s `g b` for `a`).
    pub other_inputs: bool,
    /// The terms read the output's value (`exp`'s `g exp(x)`).
    pub output: bool,
}

impl VjpReads {
    /// Every value: the safe default.
    pub const ALL: VjpReads = VjpReads {
        own_input: true,
        other_inputs: true,
        output: true,
    };
    /// Every input, not the output.
    pub const INPUTS: VjpReads = VjpReads {
        own_input: true,
        other_inputs: true,
        output: false,
    };
    /// For each input's term, the other inputs only (a product).
    pub const OTHER_INPUTS: VjpReads = VjpReads {
        own_input: false,
        other_inputs: true,
        output: false,
    };
    /// The output only.
    pub const OUTPUT: VjpReads = VjpReads {
        own_input: false,
        other_inputs: false,
        output: true,
    };
    /// No value: a linear operation's rule (`add`, `scale`, `sum_to`, `reshape`).
    pub const NOTHING: VjpReads = VjpReads {
        own_input: false,
        other_inputs: false,
        output: false,
    };
}
