//! Vectorisation: many tangents through one pass. A [`Batched`] array is either one value or a
//! stack of values along a hidden leading axis; every operation maps over the stack, by the
//! operation's own batching rule ([`Op::batch`]) where it has one (element-wise operations
//! broadcast, reductions and shape operations shift their axes, the matrix product becomes one
//! larger product) and by a loop over the stack where it has not.
//!
//! This is what makes [`jacfwd`](super::jacfwd) one pass: the input carries all `n` basis
//! tangents at once, and each operation's JVP runs once on the stack instead of `n` times.
//!
//! The stack's axis may also be the last one (as JAX's `vmap` lets it be anywhere): a Jacobian
//! `[out, in]` by forward mode is the stack of its columns, so jacfwd's tangents kept that way
//! come out as the Jacobian with no transpose, and `A` times the identity is `A` itself. The
//! operations with a rule for a trailing stack ([`Op::batch_trailing`]: the element-wise ones,
//! reductions over axes, reshapes, a matrix times the stack) keep it there; any other moves it to
//! the front first.
//!
//! ```
//! use perturb::tensor::{Array, Batched, Tensor};
//! // Three vectors of two elements, stacked; the stack is invisible to the operations.
//! let stack = Batched::stack(Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap());
//! assert_eq!(stack.shape(), &[2]);
//! let w = Batched::single(Tensor::vector(&[10.0, 100.0]));
//! // Each vector times w, then summed: one number per vector.
//! let y = stack.try_mul(&w).unwrap().sum_all();
//! assert_eq!(y.shape(), &[] as &[usize]);
//! assert_eq!(y.into_stack().unwrap().to_vec(), vec![210.0, 430.0, 650.0]);
//! ```

use super::array::Array;
use super::dense::Tensor;
use super::op::Op;
use crate::error::Error;

/// One array, or a stack of arrays of the same shape along a hidden leading axis, that every
/// operation maps over: each operation runs once on the whole stack by its batching rule
/// ([`Op::batch`]). [`jacfwd`](super::jacfwd) pushes all basis tangents through one pass this way.
///
/// ```
/// use perturb::tensor::{Array, Batched, Tensor};
/// let x = Batched::stack(Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
/// assert_eq!((x.shape(), x.batch_size()), (&[2][..], Some(2)));
/// ```
#[derive(Clone, Debug)]
pub struct Batched<A: Array> {
    inner: A,
    layout: Layout,
}

/// How a [`Batched`] array holds its value(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// One value: `inner`.
    Single,
    /// A stack along `inner`'s leading axis.
    Stacked,
    /// A stack along `inner`'s last axis: member `i` is `inner[.., i]`.
    Trailing,
    /// The basis of the space of `inner`'s shape, scaled: member `i` is `inner[i] e_i`, zero
    /// but at flat position `i`. Stored by its diagonal, `n` values for a stack of `n^2`.
    Basis {
        /// Whether the diagonal is known to be all ones (the identity), so that a product
        /// that picks its elements need not multiply by it.
        unit: bool,
        /// Where the stack's axis goes when the basis is written out: last for forward mode,
        /// whose Jacobian is the stack of its columns, first for reverse mode (the rows). Both
        /// hold the same values.
        trailing: bool,
    },
}

impl<A: Array> Batched<A> {
    /// One value, shared by every member of any stack it meets.
    ///
    /// ```
    /// use perturb::tensor::{Array, Batched, Tensor};
    /// let x = Batched::single(Tensor::vector(&[1.0_f64, 2.0]));
    /// assert_eq!((x.shape(), x.batch_size()), (&[2][..], None));
    /// ```
    pub fn single(value: A) -> Self {
        Batched {
            inner: value,
            layout: Layout::Single,
        }
    }

    /// The stack of the basis vectors of the space of tensors of `diagonal`'s shape, each
    /// scaled by its element of `diagonal`: member `i` is `diagonal[i] e_i`. It is stored by its
    /// diagonal, and the operations that keep the structure (multiplying by a value, negating,
    /// scaling, adding two such stacks, reshaping) or end it cheaply (a matrix times the stack, which
    /// picks the matrix's columns) never write the zeros; any other operation sees the full
    /// stack. [`jacfwd`](super::jacfwd) and [`jacrev`](super::jacrev) start from the identity,
    /// so that `A x` costs a copy of `A`, not a product with the identity.
    fn basis(diagonal: A, unit: bool, trailing: bool) -> Self {
        Batched {
            inner: diagonal,
            layout: Layout::Basis { unit, trailing },
        }
    }

    /// The identity of the space of tensors of `shape`, as the stack of its basis vectors,
    /// stored by its diagonal. `trailing`: written out (where an operation needs every member)
    /// with the stack's axis last, as forward mode's Jacobian wants it, rather than first.
    pub(crate) fn identity(shape: &[usize], trailing: bool) -> Self {
        Self::basis(A::lift(Tensor::ones(shape)), true, trailing)
    }

    /// A stack of values along the leading axis of `values`: each operation sees one value of
    /// shape `values.shape()[1..]`.
    ///
    /// ```
    /// use perturb::tensor::{Array, Batched, Tensor};
    /// let x = Batched::stack(Tensor::<f64>::zeros(&[5, 2, 3]));
    /// assert_eq!(x.shape(), &[2, 3]);
    /// ```
    ///
    /// # Panics
    /// If `values` is a scalar (it has no leading axis); see [`Batched::try_stack`].
    #[track_caller]
    pub fn stack(values: A) -> Self {
        super::op::or_panic(Self::try_stack(values))
    }

    /// [`Batched::stack`], or an error if `values` has no leading axis.
    ///
    /// ```
    /// use perturb::tensor::{Batched, Tensor};
    /// assert!(Batched::try_stack(Tensor::scalar(1.0_f64)).is_err());
    /// ```
    pub fn try_stack(values: A) -> Result<Self, Error> {
        if values.shape().is_empty() {
            return Err(Error::ShapeMismatch {
                op: "Batched::stack",
                lhs: vec![],
                rhs: vec![1],
            });
        }
        Ok(Batched {
            inner: values,
            layout: Layout::Stacked,
        })
    }

    /// How many values the stack holds; `None` for a single value.
    ///
    /// ```
    /// use perturb::tensor::{Batched, Tensor};
    /// assert_eq!(Batched::stack(Tensor::<f64>::zeros(&[4, 2])).batch_size(), Some(4));
    /// ```
    pub fn batch_size(&self) -> Option<usize> {
        match self.layout {
            Layout::Single => None,
            Layout::Stacked => Some(self.inner.shape()[0]),
            Layout::Trailing => self.inner.shape().last().copied(),
            Layout::Basis { .. } => Some(self.inner.shape().iter().product()),
        }
    }

    /// The same stack with every member written out (a basis stack as its `n^2` values; an
    /// error where they cannot be allocated).
    fn dense(self) -> Result<Self, Error> {
        let Layout::Basis { trailing, .. } = self.layout else {
            return Ok(self);
        };
        let shape = self.inner.shape().to_vec();
        let n = shape.iter().product();
        let what = "the Jacobian's basis tangents written out";
        square_fits::<A::Elem>("Jacobian basis", n, what)?;
        // Selected, not multiplied, so that the zeros stay zeros beside an infinity.
        let full = self
            .inner
            .constant_like(&spread_diagonal(&Tensor::ones(&shape)))
            .try_select(
                &self.inner.try_unsqueeze(0)?,
                &self.inner.constant_like(&Tensor::scalar(A::elem(0.0))),
            )?;
        if !trailing {
            return Ok(Batched {
                inner: full,
                layout: Layout::Stacked,
            });
        }
        // Member i holds d[i] at flat position i: in flat coordinates the stack is a diagonal
        // matrix, the same values with the stack's axis first or last.
        let last: Vec<usize> = shape.iter().copied().chain([n]).collect();
        Ok(Batched {
            inner: full.try_reshape(&last)?,
            layout: Layout::Trailing,
        })
    }

    /// `op` on the inputs, each converted first by `convert` (written out, or its stack moved to
    /// the front).
    fn apply_converted<O: Op>(
        op: &O,
        inputs: &[&Self],
        convert: fn(Self) -> Result<Self, Error>,
    ) -> Result<Self, Error> {
        let converted = inputs
            .iter()
            .map(|x| convert((*x).clone()))
            .collect::<Result<Vec<_>, Error>>()?;
        Self::apply(op, &converted.iter().collect::<Vec<_>>())
    }

    /// The same stack with its axis first (a trailing stack's moved, a basis written out).
    fn leading(self) -> Result<Self, Error> {
        let this = self.dense()?;
        if this.layout != Layout::Trailing {
            return Ok(this);
        }
        let r = this.inner.shape().len() - 1;
        let perm: Vec<usize> = std::iter::once(r).chain(0..r).collect();
        Ok(Batched {
            inner: this.inner.try_permute(&perm)?,
            layout: Layout::Stacked,
        })
    }

    /// The stack as one array with the stack's axis last, a single value repeated `size` times
    /// along a new last axis: forward mode's Jacobian `[out.., in]` from its stack of columns,
    /// with no copy where the stack is already kept that way.
    pub(crate) fn into_trailing_stack_of(self, size: usize) -> Result<A, Error> {
        let this = self.dense()?;
        let shape = this.inner.shape().to_vec();
        let r = shape.len();
        let inner = match this.layout {
            Layout::Single => {
                let wide: Vec<usize> = shape.iter().copied().chain([size]).collect();
                return this.inner.try_unsqueeze(r)?.try_broadcast_to(&wide);
            }
            Layout::Trailing => this.inner,
            _ => {
                let perm: Vec<usize> = (1..r).chain([0]).collect();
                this.inner.try_permute(&perm)?
            }
        };
        match inner.shape().last() {
            Some(&found) if found == size => Ok(inner),
            found => Err(Error::LengthMismatch {
                op: "Batched::into_trailing_stack_of",
                what: "the stack",
                expected: size,
                found: found.copied().unwrap_or(0),
            }),
        }
    }

    /// The stack as one array with the stack's axis first, a single value repeated `size`
    /// times along a new leading axis.
    ///
    /// ```
    /// use perturb::tensor::{Batched, Tensor};
    /// let x = Batched::single(Tensor::vector(&[1.0_f64, 2.0]));
    /// assert_eq!(x.into_stack_of(2).unwrap().to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    pub fn into_stack_of(self, size: usize) -> Result<A, Error> {
        let this = self.leading()?;
        match this.layout {
            Layout::Single => expand(&this.inner, size),
            _ if this.inner.shape()[0] != size => Err(Error::LengthMismatch {
                op: "Batched::into_stack_of",
                what: "the stack",
                expected: size,
                found: this.inner.shape()[0],
            }),
            _ => Ok(this.inner),
        }
    }

    /// The stack as one array with the stack's axis first, or an error for a single value.
    ///
    /// ```
    /// use perturb::tensor::{Array, Batched, Tensor};
    /// let x = Batched::stack(Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap());
    /// assert_eq!(x.scale(2.0).into_stack().unwrap().to_vec(), vec![2.0, 4.0, 6.0, 8.0]);
    /// ```
    pub fn into_stack(self) -> Result<A, Error> {
        let this = self.leading()?;
        match this.layout {
            Layout::Single => Err(Error::ShapeMismatch {
                op: "Batched::into_stack",
                lhs: this.inner.shape().to_vec(),
                rhs: vec![],
            }),
            _ => Ok(this.inner),
        }
    }
}

impl<A: Array> Array for Batched<A> {
    type Elem = A::Elem;

    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        if inputs
            .iter()
            .any(|x| matches!(x.layout, Layout::Basis { .. }))
        {
            if let Some(out) = basis_rule(op, inputs)? {
                return Ok(out);
            }
            return Self::apply_converted(op, inputs, Self::dense);
        }
        if inputs.iter().any(|x| x.layout == Layout::Trailing) {
            if let Some(out) = trailing_rule(op, inputs)? {
                return Ok(out);
            }
            return Self::apply_converted(op, inputs, Self::leading);
        }
        let inner: Vec<&A> = inputs.iter().map(|x| &x.inner).collect();
        let stacked: Vec<bool> = inputs.iter().map(|x| x.layout == Layout::Stacked).collect();
        let Some(size) = stack_size(op, inputs)? else {
            return Ok(Batched::single(A::apply(op, &inner)?));
        };
        let out = op.batch(&inner, &stacked, size)?;
        // A custom operation's rule may be wrong: say so rather than mislabel members.
        if out.shape().first() != Some(&size) {
            return Err(Error::LengthMismatch {
                op: op.name(),
                what: "the leading axis of the batching rule's result",
                expected: size,
                found: out.shape().first().copied().unwrap_or(0),
            });
        }
        Ok(Batched {
            inner: out,
            layout: Layout::Stacked,
        })
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        Batched::single(A::lift(value))
    }

    /// The plain value; for a stack, with the stack's axis first. In a stack of stacks the
    /// outer axis comes first, then the inner ones: `inner.primal()` puts the inner stacks' axes
    /// first, so this stack's axis (at the front or the back of the rest) moves before them.
    fn primal(&self) -> Tensor<Self::Elem> {
        let to_front = |p: Tensor<Self::Elem>, axis: usize| {
            if axis == 0 {
                return p;
            }
            let perm: Vec<usize> = std::iter::once(axis)
                .chain((0..p.ndim()).filter(|&a| a != axis))
                .collect();
            let (data, shape) = super::kernels::permute(p.as_slice(), p.shape(), &perm);
            Tensor::from_parts(data, shape)
        };
        match self.layout {
            Layout::Basis { .. } => spread_diagonal(&self.inner.primal()),
            Layout::Trailing => {
                let p = self.inner.primal();
                let last = p.ndim() - 1;
                to_front(p, last)
            }
            Layout::Stacked => {
                let p = self.inner.primal();
                // The number of the inner stacks' axes, in front of this one.
                let inner_stacks = p.ndim() - self.inner.shape().len();
                to_front(p, inner_stacks)
            }
            Layout::Single => self.inner.primal(),
        }
    }

    fn shape(&self) -> &[usize] {
        let shape = self.inner.shape();
        match self.layout {
            Layout::Stacked => &shape[1..],
            Layout::Trailing => &shape[..shape.len() - 1],
            Layout::Single | Layout::Basis { .. } => shape,
        }
    }

    fn is_zero(&self) -> bool {
        // A basis scaled by a zero diagonal is zero too.
        self.inner.is_zero()
    }

    fn stack_size(&self) -> Option<usize> {
        self.batch_size()
    }
}

/// An error naming `op` where `found` (a tangent or cotangent) is a stack of another size
/// than `expected` (its primal or output); a single array on either side goes with any stack.
/// Checked before a transform uses it: a zero stack is skipped as zero, never combined with
/// a stack that would find the sizes differ.
pub(crate) fn same_stack<A: Array>(op: &'static str, expected: &A, found: &A) -> Result<(), Error> {
    match (expected.stack_size(), found.stack_size()) {
        (Some(e), Some(f)) if e != f => Err(Error::LengthMismatch {
            op,
            what: "the stack (members)",
            expected: e,
            found: f,
        }),
        _ => Ok(()),
    }
}

/// The size of the inputs' stacks, `None` where all are single values, or an error naming the
/// operation where two stacks differ.
fn stack_size<O: Op, A: Array>(op: &O, inputs: &[&Batched<A>]) -> Result<Option<usize>, Error> {
    let mut sizes = inputs.iter().filter_map(|x| x.batch_size());
    let Some(size) = sizes.next() else {
        return Ok(None);
    };
    match sizes.find(|&s| s != size) {
        Some(other) => Err(Error::LengthMismatch {
            op: op.name(),
            what: "a stack of inputs",
            expected: size,
            found: other,
        }),
        None => Ok(Some(size)),
    }
}

/// Refuses, with the cause and the cure, an `n x n` array of `E` (`what`) that cannot be
/// allocated, rather than aborting the process when it is: an allocation of that size is
/// tried and released at once (the memory is not touched).
pub(crate) fn square_fits<E>(op: &'static str, n: usize, what: &str) -> Result<(), Error> {
    let fits = n
        .checked_mul(n)
        .is_some_and(|values| Vec::<E>::new().try_reserve_exact(values).is_ok());
    if fits {
        return Ok(());
    }
    let gb = (n as f64).powi(2) * std::mem::size_of::<E>() as f64 / 1e9;
    Err(Error::InvalidArgument {
        op,
        reason: format!(
            "{n} elements: {what} would be {n} x {n} values ({gb:.1e} GB), more than can be \
             allocated; differentiate with respect to fewer elements at once, or along chosen \
             directions (jvp, vjp, hvp)"
        ),
    })
}

/// The operations that keep a basis stack's structure, or end it without writing its zeros;
/// `None` for every other case, which then sees the full stack. The zeros off the diagonal
/// are exact zeros (as JAX's symbolic zeros): `0 * inf` is 0 here, where the full stack would
/// give NaN.
fn basis_rule<O: Op, A: Array>(
    op: &O,
    inputs: &[&Batched<A>],
) -> Result<Option<Batched<A>>, Error> {
    use super::ops::{Add, MatMul, Mul, Neg, Reshape, Scale, ScaledMul};
    let rule = op;
    let op: &dyn std::any::Any = op;
    // The result's diagonal, scaled (no longer known to be ones) unless `unit` says it is kept.
    let basis =
        |inner: A, unit: bool, trailing: bool| Ok(Some(Batched::basis(inner, unit, trailing)));
    match inputs {
        [x] => {
            let Layout::Basis { unit, trailing } = x.layout else {
                return Ok(None);
            };
            // Flat positions, and so the basis, are kept by a reshape.
            if let Some(reshape) = op.downcast_ref::<Reshape>() {
                return basis(A::apply(reshape, &[&x.inner])?, unit, trailing);
            }
            if op.is::<Neg>() {
                return basis(x.inner.neg(), false, trailing);
            }
            if let Some(scale) = op.downcast_ref::<Scale>() {
                return basis(A::apply(scale, &[&x.inner])?, false, trailing);
            }
        }
        [a, b] => {
            let (da, db) = (&a.inner, &b.inner);
            let same = da.shape() == db.shape();
            match (a.layout, b.layout) {
                (Layout::Basis { trailing, .. }, Layout::Basis { .. })
                    if same && op.is::<Add>() =>
                {
                    return basis(da.try_add(db)?, false, trailing);
                }
                // A value multiplying a basis stack, broadcast to the stack's shape: it scales
                // each member's one non-zero element (both products are symmetric in a and b).
                (Layout::Basis { trailing, .. }, Layout::Single)
                | (Layout::Single, Layout::Basis { trailing, .. })
                    if op.is::<Mul>() || op.is::<ScaledMul>() =>
                {
                    let (d, u) = if b.layout == Layout::Single {
                        (da, db)
                    } else {
                        (db, da)
                    };
                    if super::kernels::broadcast_shape("mul", d.shape(), u.shape())
                        .is_ok_and(|s| s == d.shape())
                    {
                        return basis(A::apply(rule, &[d, u])?, false, trailing);
                    }
                }
                _ => {}
            }
            if let Some(product) = op.downcast_ref::<MatMul>() {
                return matmul_basis(product, a, b);
            }
        }
        _ => {}
    }
    Ok(None)
}

/// A matrix times a basis stack of columns (`[k]` or `[k, 1]`), or a basis stack of rows
/// (`[k]` or `[1, k]`) times a matrix: member `i`, `d_i e_i`, picks column `i` of the matrix on
/// its left or row `i` of the one on its right, so the result is the matrix with its columns or
/// rows scaled, with no product. The stack's axis is put where the matrix already has it (the
/// columns of `A` are a stack along `A`'s last axis), so nothing is transposed, and an identity
/// (`unit`) is not even scaled: `A` times the identity is `A`, shared.
fn matmul_basis<A: Array>(
    product: &super::ops::MatMul,
    a: &Batched<A>,
    b: &Batched<A>,
) -> Result<Option<Batched<A>>, Error> {
    let (da, db) = (&a.inner, &b.inner);
    // The matrix, the diagonal, whether the members run along the matrix's rows (its last
    // axis, a trailing stack) rather than its columns, and where a matrix-shaped member (a
    // column `[k, 1]` or a row `[1, k]`) needs its axis of length 1 back.
    let (matrix, diagonal, unit, along_rows, unit_axis) = match (a.layout, b.layout) {
        (Layout::Single, Layout::Basis { unit, .. })
            if !product.transpose_b && da.shape().len() == 2 =>
        {
            let unit_axis = match *db.shape() {
                [_] => None,
                [_, 1] => Some(1),
                _ => return Ok(None),
            };
            // Member i is column i of op(a): a's columns (a trailing stack) or, for op(a) =
            // a^T, a's rows.
            (da, db, unit, !product.transpose_a, unit_axis)
        }
        (Layout::Basis { unit, .. }, Layout::Single)
            if !product.transpose_a && db.shape().len() == 2 =>
        {
            let unit_axis = match *da.shape() {
                [_] => None,
                [1, _] => Some(0),
                _ => return Ok(None),
            };
            // Member i is row i of op(b): b's rows or, for op(b) = b^T, b's columns.
            (db, da, unit, product.transpose_b, unit_axis)
        }
        _ => return Ok(None),
    };
    let k: usize = diagonal.shape().iter().product();
    let picked = if along_rows { 1 } else { 0 };
    if matrix.shape()[picked] != k {
        return Ok(None);
    }
    let scaled = if unit {
        matrix.clone()
    } else {
        let shape = if along_rows { [1, k] } else { [k, 1] };
        matrix.try_mul(&diagonal.try_reshape(&shape)?)?
    };
    // The member's axis of length 1 goes in front of or after its one other axis, which is
    // the matrix's axis not picked; the stack's axis stays first or last.
    let inner = match unit_axis {
        Some(axis) if along_rows => scaled.try_unsqueeze(axis)?,
        Some(axis) => scaled.try_unsqueeze(axis + 1)?,
        None => scaled,
    };
    Ok(Some(Batched {
        inner,
        layout: if along_rows {
            Layout::Trailing
        } else {
            Layout::Stacked
        },
    }))
}

/// The operations with a rule for a stack along the last axis ([`Op::batch_trailing`]), where
/// no input is stacked along the first; `None` for the others, which see the stack moved to
/// the front.
fn trailing_rule<O: Op, A: Array>(
    op: &O,
    inputs: &[&Batched<A>],
) -> Result<Option<Batched<A>>, Error> {
    if inputs.iter().any(|x| x.layout == Layout::Stacked) {
        return Ok(None);
    }
    let inner: Vec<&A> = inputs.iter().map(|x| &x.inner).collect();
    let trailing: Vec<bool> = inputs
        .iter()
        .map(|x| x.layout == Layout::Trailing)
        .collect();
    let size = stack_size(op, inputs)?.unwrap_or(0);
    let Some(out) = op.batch_trailing(&inner, &trailing, size) else {
        return Ok(None);
    };
    let out = out?;
    if out.shape().last() != Some(&size) {
        return Err(Error::LengthMismatch {
            op: op.name(),
            what: "the last axis of the trailing batching rule's result",
            expected: size,
            found: out.shape().last().copied().unwrap_or(0),
        });
    }
    Ok(Some(Batched {
        inner: out,
        layout: Layout::Trailing,
    }))
}

/// The basis stack with diagonal `d`, written out: shape `[n] ++ d.shape()`, member `i` holding
/// `d[i]` at flat position `i` and zeros elsewhere.
fn spread_diagonal<T: crate::tensor::Element>(d: &Tensor<T>) -> Tensor<T> {
    let n = d.len();
    let mut data = vec![T::zero(); n * n];
    for (slot, &v) in data.iter_mut().step_by(n + 1).zip(d.as_slice()) {
        *slot = v;
    }
    Tensor::from_parts(data, with_stack(n, d.shape()))
}

/// `x` repeated `size` times along a new leading axis.
fn expand<A: Array>(x: &A, size: usize) -> Result<A, Error> {
    let shape: Vec<usize> = std::iter::once(size)
        .chain(x.shape().iter().copied())
        .collect();
    x.try_unsqueeze(0)?.try_broadcast_to(&shape)
}

/// The logical shape of an input of a batching rule: without the stack's axis if stacked.
fn logical<A: Array>(x: &A, stacked: bool) -> &[usize] {
    if stacked {
        &x.shape()[1..]
    } else {
        x.shape()
    }
}

/// The batching rule of an operation on one stack of matrices `[.., m, n]` (a decomposition):
/// the stack's axis is one more leading axis, so the operation runs once on the whole stack.
/// A member that is not a matrix (a stack of vectors would pass for one matrix) goes through
/// [`by_loop`], which reports the member's own error.
pub(crate) fn matrix_stack<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    stacked: &[bool],
    size: usize,
) -> Result<A, Error> {
    match (inputs, stacked) {
        ([x], [true]) if x.shape().len() >= 3 => A::apply(op, inputs),
        _ => by_loop(op, inputs, stacked, size),
    }
}

/// The batching rule of any operation: the operation applied to each member of the stack in
/// turn, the results stacked. Correct for every operation; the others' rules are faster.
pub(crate) fn by_loop<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    stacked: &[bool],
    size: usize,
) -> Result<A, Error> {
    let mut results = Vec::with_capacity(size);
    for i in 0..size {
        let members = inputs
            .iter()
            .zip(stacked)
            .map(|(x, &s)| {
                if s {
                    x.try_narrow(0, i, 1)?.try_squeeze(0)
                } else {
                    Ok((*x).clone())
                }
            })
            .collect::<Result<Vec<A>, Error>>()?;
        results.push(A::apply(op, &members.iter().collect::<Vec<_>>())?.try_unsqueeze(0)?);
    }
    if results.is_empty() {
        // An empty stack: the shape of one result, from an unstacked evaluation at zeros.
        let members = inputs
            .iter()
            .zip(stacked)
            .map(|(x, &s)| A::lift(Tensor::zeros(logical(*x, s))))
            .collect::<Vec<A>>();
        let one = A::apply(op, &members.iter().collect::<Vec<_>>())?;
        return Ok(A::lift(Tensor::zeros(
            &std::iter::once(0)
                .chain(one.shape().iter().copied())
                .collect::<Vec<_>>(),
        )));
    }
    A::try_concat(&results.iter().collect::<Vec<_>>(), 0)
}

/// The batching rule of an element-wise operation with numpy broadcasting: each stacked input
/// gets axes of length 1 after the stack's axis up to the largest logical rank, so that
/// broadcasting lines up the logical axes, and the operation runs once on the whole stack.
pub(crate) fn elementwise<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    stacked: &[bool],
) -> Result<A, Error> {
    let rank = inputs
        .iter()
        .zip(stacked)
        .map(|(x, &s)| logical(*x, s).len())
        .max()
        .unwrap_or(0);
    let aligned = inputs
        .iter()
        .zip(stacked)
        .map(|(x, &s)| {
            if s {
                to_rank(*x, rank)
            } else {
                Ok((*x).clone())
            }
        })
        .collect::<Result<Vec<A>, Error>>()?;
    A::apply(op, &aligned.iter().collect::<Vec<_>>())
}

/// A stack whose members have fewer than `rank` axes, given axes of length 1 right after the
/// stack's, so that broadcasting lines its members' axes up on the right as numpy would; a
/// stack whose members have `rank` axes or more, unchanged.
pub(crate) fn to_rank<A: Array>(stack: &A, rank: usize) -> Result<A, Error> {
    let ndim = stack.shape().len() - 1;
    if ndim >= rank {
        return Ok(stack.clone());
    }
    let shape: Vec<usize> = std::iter::once(stack.shape()[0])
        .chain(std::iter::repeat(1).take(rank - ndim))
        .chain(stack.shape()[1..].iter().copied())
        .collect();
    stack.try_reshape(&shape)
}

/// Every input as a stack of `size`, single values repeated.
pub(crate) fn all_stacked<A: Array>(
    inputs: &[&A],
    stacked: &[bool],
    size: usize,
) -> Result<Vec<A>, Error> {
    inputs
        .iter()
        .zip(stacked)
        .map(|(x, &s)| {
            if s {
                Ok((*x).clone())
            } else {
                expand(*x, size)
            }
        })
        .collect()
}

/// Axes moved one place right, past the stack's axis.
pub(crate) fn shift_axes(axes: &[usize]) -> Vec<usize> {
    axes.iter().map(|a| a + 1).collect()
}

/// A shape with the stack's axis in front.
pub(crate) fn with_stack(size: usize, shape: &[usize]) -> Vec<usize> {
    std::iter::once(size).chain(shape.iter().copied()).collect()
}

/// The batching rule of an element-wise operation for stacks along the last axis: each single
/// input gets an axis of length 1 at its end, so that broadcasting (which lines axes up on the
/// right) lines up the members' axes, and the operation runs once on the whole stack.
pub(crate) fn elementwise_trailing<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    trailing: &[bool],
) -> Result<A, Error> {
    let aligned = inputs
        .iter()
        .zip(trailing)
        .map(|(x, &t)| {
            if t {
                Ok((*x).clone())
            } else {
                x.try_unsqueeze(x.shape().len())
            }
        })
        .collect::<Result<Vec<A>, Error>>()?;
    A::apply(op, &aligned.iter().collect::<Vec<_>>())
}

/// Whether `axes` are all axes of the members of a trailing stack `x` (not its stack's axis),
/// so that an operation over them needs no change to run on the whole stack.
pub(crate) fn member_axes<A: Array>(x: &A, axes: &[usize]) -> bool {
    let rank = x.shape().len().saturating_sub(1);
    axes.iter().all(|&a| a < rank)
}

/// A shape with the stack's axis at the end.
pub(crate) fn with_trailing(shape: &[usize], size: usize) -> Vec<usize> {
    shape.iter().copied().chain([size]).collect()
}

/// The trailing batching rule of an operation over its one input's own `axes` (a reduction, a
/// softmax, a slice): the operation itself, unchanged, since the members' axes keep their
/// places when the stack's axis is last; `None` unless the input is such a stack and the axes
/// are the members' (an axis out of range is then reported by the operation's other rule).
pub(crate) fn same_axes<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    trailing: &[bool],
    axes: &[usize],
) -> Option<Result<A, Error>> {
    match (inputs, trailing) {
        ([x], [true]) if member_axes(*x, axes) => Some(A::apply(op, inputs)),
        _ => None,
    }
}
