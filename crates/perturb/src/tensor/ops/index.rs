//! Indexing and joining: index_select / gather and their adjoints (index_add / scatter_add),
//! concat. (Narrow, the slice along an axis, is with the shape operations; stack is concat of
//! arrays each given a new axis.)
//!
//! Indices are held in an `Arc<[usize]>`, so recording an operation on a tape does not copy
//! them. An index out of range is an error naming the operation, the index and the length.

use std::sync::Arc;

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::dense::element_count;
use crate::tensor::{Array, Element, Op, Tensor};

use super::reduce::{check_axis, split_at_axis};
use super::shape::{empty_result, Narrow};
use super::unary;

/// Checks every index against the length of the axis it indexes.
fn check_indices(
    op: &'static str,
    indices: &[usize],
    axis: usize,
    shape: &[usize],
) -> Result<(), Error> {
    let n = shape[axis];
    match indices.iter().find(|&&i| i >= n) {
        None => Ok(()),
        Some(i) => Err(Error::InvalidArgument {
            op,
            reason: format!(
                "index {i} is out of range for axis {axis} of length {n} (shape {shape:?})"
            ),
        }),
    }
}

/// The entries `indices` along `axis`, in that order (repeats allowed); VJP: the cotangent
/// added back at those entries ([`IndexAdd`]).
///
/// ```
/// use perturb::tensor::{ops::IndexSelect, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
/// let op = IndexSelect { axis: 0, indices: vec![2, 0].into() };
/// assert_eq!(op.eval(&[&x]).unwrap().to_vec(), vec![5.0, 6.0, 1.0, 2.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSelect {
    /// The axis indexed.
    pub axis: usize,
    /// The entries taken along the axis.
    pub indices: Arc<[usize]>,
}

impl Op for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let indices = self.indices.clone();
        A::apply(
            &IndexSelect {
                axis: self.axis + 1,
                indices,
            },
            x,
        )
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        check_axis(self.name(), self.axis, x.shape())?;
        check_indices(self.name(), &self.indices, self.axis, x.shape())?;
        let mut shape = x.shape().to_vec();
        shape[self.axis] = self.indices.len();
        let count = element_count(self.name(), &shape)?;
        if let Some(empty) = empty_result(&shape) {
            return Ok(empty);
        }
        let (outer, n, inner) = split_at_axis(x.shape(), self.axis);
        let mut data = Vec::with_capacity(count);
        for o in 0..outer {
            for &i in self.indices.iter() {
                let at = (o * n + i) * inner;
                data.extend_from_slice(&x.as_slice()[at..at + inner]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let add = IndexAdd {
            axis: self.axis,
            indices: Arc::clone(&self.indices),
            len: x[0].shape()[self.axis],
        };
        Ok(vec![Some(A::apply(&add, &[ct])?)])
    }
}

/// The adjoint of [`IndexSelect`]: zeros of length `len` along `axis`, with entry `j` of the
/// input added at entry `indices[j]` (repeats add up); VJP: the matching [`IndexSelect`].
///
/// ```
/// use perturb::tensor::{ops::IndexAdd, Op, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
/// let op = IndexAdd { axis: 0, indices: vec![1, 3, 1].into(), len: 4 };
/// assert_eq!(op.eval(&[&x]).unwrap().to_vec(), vec![0.0, 4.0, 0.0, 2.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexAdd {
    /// The axis indexed.
    pub axis: usize,
    /// Where each entry of the input along the axis is added.
    pub indices: Arc<[usize]>,
    /// The result's length along the axis.
    pub len: usize,
}

impl Op for IndexAdd {
    fn name(&self) -> &'static str {
        "index_add"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let (indices, len) = (self.indices.clone(), self.len);
        A::apply(
            &IndexAdd {
                axis: self.axis + 1,
                indices,
                len,
            },
            x,
        )
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        check_axis(self.name(), self.axis, x.shape())?;
        let (outer, m, inner) = split_at_axis(x.shape(), self.axis);
        if m != self.indices.len() {
            return Err(Error::LengthMismatch {
                op: self.name(),
                what: "the input along the axis",
                expected: self.indices.len(),
                found: m,
            });
        }
        let mut shape = x.shape().to_vec();
        shape[self.axis] = self.len;
        check_indices(self.name(), &self.indices, self.axis, &shape)?;
        let mut data = vec![T::zero(); element_count(self.name(), &shape)?];
        if data.is_empty() {
            return Ok(Tensor::from_parts(data, shape));
        }
        for o in 0..outer {
            for (j, &i) in self.indices.iter().enumerate() {
                let from = &x.as_slice()[(o * m + j) * inner..(o * m + j + 1) * inner];
                let to = &mut data[(o * self.len + i) * inner..(o * self.len + i + 1) * inner];
                for (t, &f) in to.iter_mut().zip(from) {
                    *t += f;
                }
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let select = IndexSelect {
            axis: self.axis,
            indices: Arc::clone(&self.indices),
        };
        Ok(vec![Some(A::apply(&select, &[ct])?)])
    }
}

/// Checks the shapes of a gather or scatter: `small` (the index's shape) has as many axes as
/// `big` and is no longer than it on every axis but `axis`, and `index` fills `small`.
fn check_gather_shapes(
    op: &'static str,
    axis: usize,
    index: &[usize],
    small: &[usize],
    big: &[usize],
) -> Result<(), Error> {
    check_axis(op, axis, big)?;
    element_count(op, big)?;
    let fits = small.len() == big.len()
        && small
            .iter()
            .zip(big)
            .enumerate()
            .all(|(d, (&s, &b))| d == axis || s <= b);
    if !fits {
        return Err(Error::ShapeMismatch {
            op,
            lhs: small.to_vec(),
            rhs: big.to_vec(),
        });
    }
    let expected = element_count(op, small)?;
    if index.len() != expected {
        return Err(Error::ElementCount {
            op,
            shape: small.to_vec(),
            expected,
            found: index.len(),
        });
    }
    check_indices(op, index, axis, big)
}

/// Calls `f(p, offset)` for every position `p` (row-major) of an index of shape `small`, with
/// `offset` the flat position in a tensor of shape `big` that `index[p]` points to: the same
/// multi-index as `p` except `index[p]` along `axis`.
fn for_each_gather(
    axis: usize,
    index: &[usize],
    small: &[usize],
    big: &[usize],
    mut f: impl FnMut(usize, usize),
) {
    let nd = big.len();
    let mut strides = vec![0usize; nd];
    let mut stride = 1;
    for d in (0..nd).rev() {
        strides[d] = stride;
        stride *= big[d];
    }
    let mut pos = vec![0usize; nd];
    // The offset of `pos` in `big`, without the `axis` component.
    let mut base = 0usize;
    for (p, &i) in index.iter().enumerate() {
        f(p, base + i * strides[axis]);
        for d in (0..nd).rev() {
            pos[d] += 1;
            if d != axis {
                base += strides[d];
            }
            if pos[d] < small[d] {
                break;
            }
            if d != axis {
                base -= strides[d] * small[d];
            }
            pos[d] = 0;
        }
    }
}

/// Gathers along an axis, like `torch.gather`: the result has the index's shape, and
/// `out[.., j, ..] = x[.., index[.., j, ..], ..]` along `axis` (every other axis of the index
/// no longer than the input's); VJP: the cotangent added back at the gathered positions
/// ([`ScatterAdd`]).
///
/// ```
/// use perturb::tensor::{ops::Gather, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// // Row 0 takes columns 1, 1; row 1 takes columns 0, 1.
/// let op = Gather { axis: 1, index: vec![1, 1, 0, 1].into(), index_shape: vec![2, 2] };
/// assert_eq!(op.eval(&[&x]).unwrap().to_vec(), vec![2.0, 2.0, 3.0, 4.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gather {
    /// The axis indexed.
    pub axis: usize,
    /// The index, row-major, of shape `index_shape`.
    pub index: Arc<[usize]>,
    /// The index's shape, which is the result's shape.
    pub index_shape: Vec<usize>,
}

impl Op for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }

    /// The index repeated for each member of the stack.
    fn batch<A: Array>(&self, x: &[&A], _: &[bool], size: usize) -> Result<A, Error> {
        let op = Gather {
            axis: self.axis + 1,
            index: self.index.repeat(size).into(),
            index_shape: batched::with_stack(size, &self.index_shape),
        };
        A::apply(&op, x)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        check_gather_shapes(
            self.name(),
            self.axis,
            &self.index,
            &self.index_shape,
            x.shape(),
        )?;
        let xs = x.as_slice();
        let mut data = Vec::with_capacity(self.index.len());
        for_each_gather(
            self.axis,
            &self.index,
            &self.index_shape,
            x.shape(),
            |_, at| data.push(xs[at]),
        );
        Ok(Tensor::from_parts(data, self.index_shape.clone()))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let scatter = ScatterAdd {
            axis: self.axis,
            index: Arc::clone(&self.index),
            shape: x[0].shape().to_vec(),
        };
        Ok(vec![Some(A::apply(&scatter, &[ct])?)])
    }
}

/// The adjoint of [`Gather`]: zeros of shape `shape`, with each input element added at the
/// position its index points to (the input has the index's shape; repeats add up); VJP: the
/// matching [`Gather`].
///
/// ```
/// use perturb::tensor::{ops::ScatterAdd, Op, Tensor};
/// let src = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let op = ScatterAdd { axis: 1, index: vec![1, 1, 0, 2].into(), shape: vec![2, 3] };
/// assert_eq!(op.eval(&[&src]).unwrap().to_vec(), vec![0.0, 3.0, 0.0, 3.0, 0.0, 4.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScatterAdd {
    /// The axis indexed.
    pub axis: usize,
    /// The index, row-major, of the input's shape.
    pub index: Arc<[usize]>,
    /// The result's shape.
    pub shape: Vec<usize>,
}

impl Op for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }

    /// The index repeated for each member of the stack.
    fn batch<A: Array>(&self, x: &[&A], _: &[bool], size: usize) -> Result<A, Error> {
        let op = ScatterAdd {
            axis: self.axis + 1,
            index: self.index.repeat(size).into(),
            shape: batched::with_stack(size, &self.shape),
        };
        A::apply(&op, x)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let src = unary(self.name(), inputs)?;
        check_gather_shapes(
            self.name(),
            self.axis,
            &self.index,
            src.shape(),
            &self.shape,
        )?;
        let values = src.as_slice();
        let mut data = vec![T::zero(); element_count(self.name(), &self.shape)?];
        for_each_gather(self.axis, &self.index, src.shape(), &self.shape, |p, at| {
            data[at] += values[p]
        });
        Ok(Tensor::from_parts(data, self.shape.clone()))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let gather = Gather {
            axis: self.axis,
            index: Arc::clone(&self.index),
            index_shape: x[0].shape().to_vec(),
        };
        Ok(vec![Some(A::apply(&gather, &[ct])?)])
    }
}

/// Joins tensors along an existing axis (every other axis must agree); VJP: each input's part
/// of the cotangent ([`Narrow`]).
///
/// ```
/// use perturb::tensor::{ops::Concat, Op, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0], &[2, 1]).unwrap();
/// let b = Tensor::from_vec(vec![3.0, 4.0, 5.0, 6.0], &[2, 2]).unwrap();
/// let y = Concat { axis: 1 }.eval(&[&a, &b]).unwrap();
/// assert_eq!((y.shape(), y.to_vec()), (&[2, 3][..], vec![1.0, 3.0, 4.0, 2.0, 5.0, 6.0]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Concat {
    /// The axis joined along.
    pub axis: usize,
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let x = batched::all_stacked(x, stacked, size)?;
        A::apply(
            &Concat {
                axis: self.axis + 1,
            },
            &x.iter().collect::<Vec<_>>(),
        )
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
        let shape = concat_shape(self.name(), &shapes, self.axis)?;
        if let Some(empty) = empty_result(&shape) {
            return Ok(empty);
        }
        let (outer, _, inner) = split_at_axis(&shape, self.axis);
        let mut data = Vec::with_capacity(element_count(self.name(), &shape)?);
        for o in 0..outer {
            for x in inputs {
                let chunk = x.shape()[self.axis] * inner;
                data.extend_from_slice(&x.as_slice()[o * chunk..(o + 1) * chunk]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        if tangents.iter().all(Option::is_none) {
            return Ok(None);
        }
        let zeros: Vec<A> = inputs
            .iter()
            .zip(tangents)
            .map(|(x, t)| {
                t.cloned()
                    .unwrap_or_else(|| A::lift(Tensor::zeros(x.shape())))
            })
            .collect();
        let refs: Vec<&A> = zeros.iter().collect();
        Ok(Some(A::apply(self, &refs)?))
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let mut start = 0;
        let mut cts = Vec::with_capacity(inputs.len());
        for (x, &wanted) in inputs.iter().zip(needed) {
            let len = x.shape()[self.axis];
            cts.push(if wanted {
                let narrow = Narrow {
                    axis: self.axis,
                    start,
                    len,
                };
                Some(A::apply(&narrow, &[ct])?)
            } else {
                None
            });
            start += len;
        }
        Ok(cts)
    }
}

/// The shape of the concatenation of `shapes` along `axis`, or an error naming the first shape
/// that does not fit.
fn concat_shape(op: &'static str, shapes: &[&[usize]], axis: usize) -> Result<Vec<usize>, Error> {
    let Some(&first) = shapes.first() else {
        return Err(Error::InvalidArgument {
            op,
            reason: "needs at least one tensor".to_string(),
        });
    };
    check_axis(op, axis, first)?;
    let mut shape = first.to_vec();
    for &s in &shapes[1..] {
        let fits = s.len() == first.len()
            && s.iter()
                .zip(first)
                .enumerate()
                .all(|(d, (&a, &b))| d == axis || a == b);
        if !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: first.to_vec(),
                rhs: s.to_vec(),
            });
        }
        shape[axis] = shape[axis]
            .checked_add(s[axis])
            .ok_or_else(|| Error::InvalidArgument {
                op,
                reason: format!("the lengths along axis {axis} add up to more than usize::MAX"),
            })?;
    }
    element_count(op, &shape)?;
    Ok(shape)
}
