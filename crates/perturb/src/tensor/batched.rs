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

use super::array::{Array, Op};
use super::dense::Tensor;
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
    stacked: bool,
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
            stacked: false,
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
        super::array::or_panic(Self::try_stack(values))
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
            stacked: true,
        })
    }

    /// How many values the stack holds; `None` for a single value.
    ///
    /// ```
    /// use perturb::tensor::{Batched, Tensor};
    /// assert_eq!(Batched::stack(Tensor::<f64>::zeros(&[4, 2])).batch_size(), Some(4));
    /// ```
    pub fn batch_size(&self) -> Option<usize> {
        self.stacked.then(|| self.inner.shape()[0])
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
        if self.stacked {
            if self.inner.shape()[0] != size {
                return Err(Error::LengthMismatch {
                    op: "Batched::into_stack_of",
                    what: "the stack",
                    expected: size,
                    found: self.inner.shape()[0],
                });
            }
            Ok(self.inner)
        } else {
            expand(&self.inner, size)
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
        if self.stacked {
            Ok(self.inner)
        } else {
            Err(Error::ShapeMismatch {
                op: "Batched::into_stack",
                lhs: self.inner.shape().to_vec(),
                rhs: vec![],
            })
        }
    }
}

impl<A: Array> Array for Batched<A> {
    type Elem = A::Elem;

    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        let inner: Vec<&A> = inputs.iter().map(|x| &x.inner).collect();
        let stacked: Vec<bool> = inputs.iter().map(|x| x.stacked).collect();
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
            stacked: true,
        })
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        Batched::single(A::lift(value))
    }

    /// The plain value; for a stack, with the stack's axis first.
    fn primal(&self) -> Tensor<Self::Elem> {
        self.inner.primal()
    }

    fn shape(&self) -> &[usize] {
        if self.stacked {
            &self.inner.shape()[1..]
        } else {
            self.inner.shape()
        }
    }
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
