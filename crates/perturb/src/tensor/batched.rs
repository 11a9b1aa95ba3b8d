//! Vectorisation: many tangents through one pass. A [`Batched`] array is either one value or a
//! stack of values along a hidden leading axis; every operation maps over the stack, by the
//! operation's own batching rule ([`Op::batch`]) where it has one (element-wise operations
//! broadcast, reductions and shape operations shift their axes, the matrix product becomes one
//! larger product) and by a loop over the stack where it has not.
//!
//! This is what makes [`jacfwd`](super::jacfwd) one pass: the input carries all `n` basis
//! tangents at once, and each operation's JVP runs once on the stack instead of `n` times.
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
    /// The basis of the space of `inner`'s shape, scaled: member `i` is `inner[i] e_i`, zero
    /// but at flat position `i`. Stored by its diagonal, `n` values for a stack of `n^2`.
    Basis,
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
    pub(crate) fn basis(diagonal: A) -> Self {
        Batched {
            inner: diagonal,
            layout: Layout::Basis,
        }
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
            Layout::Basis => Some(self.inner.shape().iter().product()),
        }
    }

    /// The same stack with every member written out (a basis stack as its `n^2` values; an
    /// error where they cannot be allocated).
    fn dense(self) -> Result<Self, Error> {
        if self.layout != Layout::Basis {
            return Ok(self);
        }
        let shape = self.inner.shape().to_vec();
        let what = "the Jacobian's basis tangents written out";
        square_fits::<A::Elem>("Jacobian basis", shape.iter().product(), what)?;
        Ok(Batched {
            // Selected, not multiplied, so that the zeros stay zeros beside an infinity.
            inner: self
                .inner
                .constant_like(&spread_diagonal(&Tensor::ones(&shape)))
                .try_select(
                    &self.inner.try_unsqueeze(0)?,
                    &self.inner.constant_like(&Tensor::scalar(A::elem(0.0))),
                )?,
            layout: Layout::Stacked,
        })
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
        let this = self.dense()?;
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
        let this = self.dense()?;
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
        if inputs.iter().any(|x| x.layout == Layout::Basis) {
            if let Some(out) = basis_rule(op, inputs)? {
                return Ok(out);
            }
            let dense = inputs
                .iter()
                .map(|x| (*x).clone().dense())
                .collect::<Result<Vec<_>, Error>>()?;
            return Self::apply(op, &dense.iter().collect::<Vec<_>>());
        }
        let inner: Vec<&A> = inputs.iter().map(|x| &x.inner).collect();
        let stacked: Vec<bool> = inputs.iter().map(|x| x.layout == Layout::Stacked).collect();
        let mut sizes = inputs.iter().filter_map(|x| x.batch_size());
        let Some(size) = sizes.next() else {
            return Ok(Batched::single(A::apply(op, &inner)?));
        };
        if let Some(other) = sizes.find(|&s| s != size) {
            return Err(Error::LengthMismatch {
                op: op.name(),
                what: "a stack of inputs",
                expected: size,
                found: other,
            });
        }
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

    /// The plain value; for a stack, with the stack's axis first.
    fn primal(&self) -> Tensor<Self::Elem> {
        match self.layout {
            Layout::Basis => spread_diagonal(&self.inner.primal()),
            Layout::Single | Layout::Stacked => self.inner.primal(),
        }
    }

    fn shape(&self) -> &[usize] {
        match self.layout {
            Layout::Stacked => &self.inner.shape()[1..],
            Layout::Single | Layout::Basis => self.inner.shape(),
        }
    }

    fn is_zero(&self) -> bool {
        // A basis scaled by a zero diagonal is zero too.
        self.inner.is_zero()
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
    let basis = |inner: A| Ok(Some(Batched::basis(inner)));
    match inputs {
        [x] if x.layout == Layout::Basis => {
            // Flat positions, and so the basis, are kept by a reshape.
            if let Some(reshape) = op.downcast_ref::<Reshape>() {
                return basis(A::apply(reshape, &[&x.inner])?);
            }
            if op.is::<Neg>() {
                return basis(x.inner.neg());
            }
            if let Some(scale) = op.downcast_ref::<Scale>() {
                return basis(A::apply(scale, &[&x.inner])?);
            }
        }
        [a, b] => {
            let (da, db) = (&a.inner, &b.inner);
            let same = da.shape() == db.shape();
            match (a.layout, b.layout) {
                (Layout::Basis, Layout::Basis) if same && op.is::<Add>() => {
                    return basis(da.try_add(db)?);
                }
                // A value multiplying a basis stack, broadcast to the stack's shape: it scales
                // each member's one non-zero element (both products are symmetric in a and b).
                (Layout::Basis, Layout::Single) | (Layout::Single, Layout::Basis)
                    if op.is::<Mul>() || op.is::<ScaledMul>() =>
                {
                    let (d, u) = if a.layout == Layout::Basis {
                        (da, db)
                    } else {
                        (db, da)
                    };
                    if super::kernels::broadcast_shape("mul", d.shape(), u.shape())
                        .is_ok_and(|s| s == d.shape())
                    {
                        return basis(A::apply(rule, &[d, u])?);
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
/// its left or row `i` of the one on its right, so the result is the matrix scaled, with no
/// product.
fn matmul_basis<A: Array>(
    product: &super::ops::MatMul,
    a: &Batched<A>,
    b: &Batched<A>,
) -> Result<Option<Batched<A>>, Error> {
    let (da, db) = (&a.inner, &b.inner);
    // The rows to scale (one per member), the diagonal, and where a matrix-shaped member
    // (a column `[k, 1]` or a row `[1, k]`) needs its axis of length 1 back.
    let (rows, diagonal, unit_axis) = match (a.layout, b.layout) {
        (Layout::Single, Layout::Basis) if !product.transpose_b && da.shape().len() == 2 => {
            let unit_axis = match *db.shape() {
                [_] => None,
                [_, 1] => Some(2),
                _ => return Ok(None),
            };
            // op(a)^T: member i picks column i of op(a).
            let rows = if product.transpose_a {
                da.clone()
            } else {
                da.transpose()
            };
            (rows, db, unit_axis)
        }
        (Layout::Basis, Layout::Single) if !product.transpose_a && db.shape().len() == 2 => {
            let unit_axis = match *da.shape() {
                [_] => None,
                [1, _] => Some(1),
                _ => return Ok(None),
            };
            let rows = if product.transpose_b {
                db.transpose()
            } else {
                db.clone()
            };
            (rows, da, unit_axis)
        }
        _ => return Ok(None),
    };
    let k: usize = diagonal.shape().iter().product();
    if rows.shape()[0] != k {
        return Ok(None);
    }
    let scaled = rows.try_mul(&diagonal.try_reshape(&[k, 1])?)?;
    Ok(Some(Batched {
        inner: match unit_axis {
            Some(axis) => scaled.try_unsqueeze(axis)?,
            None => scaled,
        },
        layout: Layout::Stacked,
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
