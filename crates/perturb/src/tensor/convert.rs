//! Conversions between [`Tensor`] and `ndarray` arrays (feature `ndarray`).
//!
//! Any array, owned or a view, of any dimension converts into a tensor with its elements in
//! logical row-major order, whatever its memory layout: a slice that starts inside its buffer,
//! a transposed array, steps, negative strides. A tensor converts back into an [`ArrayD`] (or,
//! checking the number of axes, an [`Array1`] or [`Array2`]).

use ndarray::{Array1, Array2, ArrayBase, ArrayD, Data, Dimension, Ix1, Ix2, IxDyn};

use super::{Element, Tensor};
use crate::error::Error;

/// An array's elements in logical (row-major) order, as a tensor of its shape. An owned array
/// in standard layout gives its buffer without a copy when it holds just these elements; any
/// other array is copied once.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use ndarray::{array, s, Array1};
/// use perturb::tensor::Tensor;
///
/// let a = array![[1.0_f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// assert_eq!(Tensor::from(a.clone()).to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// // A transposed view, and a slice that starts inside the buffer.
/// assert_eq!(Tensor::from(a.t()).to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// let tail = Array1::from(vec![0.0_f64, 1.0, 2.0, 3.0, 4.0, 5.0]).slice_move(s![3..]);
/// assert_eq!(Tensor::from(tail).to_vec(), vec![3.0, 4.0, 5.0]);
/// // A reversed column, by reference.
/// let column = a.slice(s![..;-1, 1]);
/// assert_eq!(Tensor::from(&column).to_vec(), vec![5.0, 2.0]);
/// # }
/// ```
impl<T: Element, S: Data<Elem = T>, D: Dimension> From<ArrayBase<S, D>> for Tensor<T> {
    fn from(a: ArrayBase<S, D>) -> Self {
        let shape = a.shape().to_vec();
        if !a.is_standard_layout() {
            return Tensor::from_parts(a.iter().copied().collect(), shape);
        }
        // Contiguous in row-major order: the elements are `len` consecutive ones of the buffer,
        // from the offset on (which a slice such as `s![3..]` moves past the buffer's start).
        let len = a.len();
        let (mut data, offset) = a.into_owned().into_raw_vec_and_offset();
        let start = offset.unwrap_or(0);
        data.truncate(start + len);
        data.drain(..start);
        Tensor::from_parts(data, shape)
    }
}

/// [`From<ArrayBase>`](#impl-From%3CArrayBase%3CS,+D%3E%3E-for-Tensor%3CT%3E) for a borrowed
/// array: its elements copied in logical order.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// let a = ndarray::ArrayD::from_shape_vec(vec![2, 2], vec![1.0_f64, 2.0, 3.0, 4.0]).unwrap();
/// let t = perturb::tensor::Tensor::from(&a);
/// assert_eq!((t.shape(), t.to_vec()), (&[2, 2][..], vec![1.0, 2.0, 3.0, 4.0]));
/// # }
/// ```
impl<T: Element, S: Data<Elem = T>, D: Dimension> From<&ArrayBase<S, D>> for Tensor<T> {
    fn from(a: &ArrayBase<S, D>) -> Self {
        Tensor::from(a.view())
    }
}

/// The tensor's elements as an array of its shape.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// let t = perturb::tensor::Tensor::<f64>::arange(4).reshape(&[2, 2]).unwrap();
/// let a = ndarray::ArrayD::from(&t);
/// assert_eq!(a[[1, 0]], 2.0);
/// # }
/// ```
impl<T: Element> From<&Tensor<T>> for ArrayD<T> {
    fn from(t: &Tensor<T>) -> Self {
        t.clone().into()
    }
}

/// The tensor's elements as an array of its shape, without a copy when the tensor is their
/// only owner.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// let t = perturb::tensor::Tensor::<f64>::arange(6).reshape(&[3, 2]).unwrap();
/// let a = ndarray::ArrayD::from(t);
/// assert_eq!((a.shape(), a[[2, 1]]), (&[3, 2][..], 5.0));
/// # }
/// ```
impl<T: Element> From<Tensor<T>> for ArrayD<T> {
    fn from(t: Tensor<T>) -> Self {
        let shape = IxDyn(t.shape());
        ArrayD::from_shape_vec(shape, t.into_vec())
            .unwrap_or_else(|_| unreachable!("a tensor's data always fits its shape"))
    }
}

/// The array of a tensor that must have `D`'s number of axes.
fn fixed<T: Element, D: Dimension>(
    op: &'static str,
    t: &Tensor<T>,
) -> Result<ndarray::Array<T, D>, Error> {
    ArrayD::from(t)
        .into_dimensionality::<D>()
        .map_err(|_| Error::InvalidArgument {
            op,
            reason: format!(
                "needs a tensor with {} axes, got shape {:?}",
                D::NDIM.unwrap_or(0),
                t.shape()
            ),
        })
}

/// A vector's elements as an [`Array1`]; an error for a tensor that is not 1-dimensional.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use perturb::tensor::Tensor;
/// let v = ndarray::Array1::try_from(&Tensor::vector(&[1.0_f64, 2.0])).unwrap();
/// assert_eq!(v, ndarray::array![1.0, 2.0]);
/// assert!(ndarray::Array1::try_from(&Tensor::<f64>::zeros(&[2, 1])).is_err());
/// # }
/// ```
impl<T: Element> TryFrom<&Tensor<T>> for Array1<T> {
    type Error = Error;

    fn try_from(t: &Tensor<T>) -> Result<Self, Error> {
        fixed::<T, Ix1>("Array1::try_from", t)
    }
}

/// A matrix's elements as an [`Array2`]; an error for a tensor that is not 2-dimensional.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use perturb::tensor::Tensor;
/// let t = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// let m = ndarray::Array2::try_from(&t).unwrap();
/// assert_eq!(m, ndarray::array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
/// let err = ndarray::Array2::try_from(&Tensor::<f64>::zeros(&[6])).unwrap_err();
/// assert_eq!(err.to_string(), "Array2::try_from: needs a tensor with 2 axes, got shape [6]");
/// # }
/// ```
impl<T: Element> TryFrom<&Tensor<T>> for Array2<T> {
    type Error = Error;

    fn try_from(t: &Tensor<T>) -> Result<Self, Error> {
        fixed::<T, Ix2>("Array2::try_from", t)
    }
}
