//! `argmax` and `argmin` along an axis: positions, not values, so not differentiable, and
//! integers ([`Indices`]), which stay exact where a float would not (`f32` has 24 bits).

use crate::error::Error;
use crate::tensor::{Array, Element, Tensor};

use super::reduce::{check_axis, split_at_axis};

/// Positions along an axis, as [`Array::argmax`] and [`Array::argmin`] give them: integers in
/// row-major order, with the shape of the array they came from less the axis.
///
/// ```
/// use perturb::tensor::{Array, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 7.0, 3.0, 4.0, 0.0, 6.0], &[2, 3]).unwrap();
/// let i = x.argmax(1);
/// assert_eq!((i.shape(), i.as_slice()), (&[2][..], &[1, 2][..]));
/// // The maxima themselves, picked with the indices.
/// let picked = x.try_gather(1, i.into_vec(), &[2, 1]).unwrap();
/// assert_eq!(picked.to_vec(), vec![7.0, 6.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Indices {
    data: Vec<usize>,
    shape: Vec<usize>,
}

impl Indices {
    /// The shape: the array's, without the axis searched along.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::<f64>::zeros(&[2, 3, 4]).argmin(1).shape(), &[2, 4]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The positions, row-major.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// let x = Tensor::from_vec(vec![1.0_f64, 0.0, 2.0, 3.0], &[2, 2]).unwrap();
    /// assert_eq!(x.argmin(0).as_slice(), &[0, 0]);
    /// ```
    pub fn as_slice(&self) -> &[usize] {
        &self.data
    }

    /// The positions, row-major, by value (for [`Array::try_gather`] or
    /// [`Array::index_select`]).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[1.0_f64, 5.0, 2.0]).argmax(0).into_vec(), vec![1]);
    /// ```
    pub fn into_vec(self) -> Vec<usize> {
        self.data
    }

    /// The number of positions.
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::<f64>::zeros(&[2, 3]).argmax(0).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there is no position (the array had no element off the axis).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert!(Tensor::<f64>::zeros(&[0, 3]).argmax(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The position, if there is exactly one (a vector searched along its axis).
    ///
    /// ```
    /// use perturb::tensor::{Array, Tensor};
    /// assert_eq!(Tensor::vector(&[3.0_f64, -1.0, 2.0]).argmin(0).item(), Some(1));
    /// ```
    pub fn item(&self) -> Option<usize> {
        match self.data[..] {
            [i] => Some(i),
            _ => None,
        }
    }
}

/// The position of the maximum along `axis` of `x`; see [`Array::try_argmax`].
pub(crate) fn argmax<A: Array>(x: &A, axis: usize) -> Result<Indices, Error> {
    search(x, axis, "argmax", |v, best| v > best)
}

/// The position of the minimum along `axis` of `x`; see [`Array::try_argmin`].
pub(crate) fn argmin<A: Array>(x: &A, axis: usize) -> Result<Indices, Error> {
    search(x, axis, "argmin", |v, best| v < best)
}

/// The first position along `axis` that no later one beats (`beats(v, best)`), or the first
/// NaN. The axis is one of `x`'s; its plain value ([`Array::primal`]) may have leading axes
/// more (a [`Batched`](crate::tensor::Batched) stack's), which the result keeps.
fn search<A: Array>(
    x: &A,
    axis: usize,
    op: &'static str,
    beats: fn(A::Elem, A::Elem) -> bool,
) -> Result<Indices, Error> {
    check_axis(op, axis, x.shape())?;
    let value = x.primal();
    let along = axis + (value.shape().len() - x.shape().len());
    let mut shape = value.shape().to_vec();
    shape.remove(along);
    if value.shape()[along] == 0 && shape.iter().product::<usize>() > 0 {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "cannot search the empty axis {axis} of a tensor of shape {:?}",
                x.shape()
            ),
        });
    }
    Ok(Indices {
        data: positions(&value, along, beats),
        shape,
    })
}

/// The search of [`search`] on a plain tensor, along an axis it has and that is not empty.
fn positions<T: Element>(x: &Tensor<T>, axis: usize, beats: fn(T, T) -> bool) -> Vec<usize> {
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    let data = x.as_slice();
    let mut out = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        for i in 0..inner {
            let at = |k: usize| data[(o * n + k) * inner + i];
            let mut best = 0;
            for k in 0..n {
                let v = at(k);
                if v.is_nan() {
                    best = k;
                    break;
                }
                if beats(v, at(best)) {
                    best = k;
                }
            }
            out.push(best);
        }
    }
    out
}
