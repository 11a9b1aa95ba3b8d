//! Operations that move elements without changing them: reshape, permute, broadcast and its
//! adjoint, the sum down to a shape.

use crate::error::Error;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

/// The same elements in a new shape of the same size; VJP: the cotangent reshaped back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape(pub Vec<usize>);

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        inputs[0].reshape(&self.0)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_reshape(x[0].shape())?)])
    }
}

/// Reorders the axes: axis `i` of the result is axis `perm[i]` of the input; VJP: the
/// inverse permutation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permute(pub Vec<usize>);

impl Op for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = inputs[0];
        let n = x.ndim();
        let mut seen = vec![false; n];
        let valid = self.0.len() == n
            && self
                .0
                .iter()
                .all(|&p| p < n && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::InvalidArgument {
                op: "permute",
                reason: format!(
                    "{:?} is not a permutation of the {} axes of a tensor of shape {:?}",
                    self.0,
                    n,
                    x.shape()
                ),
            });
        }
        let (data, shape) = kernels::permute(x.as_slice(), x.shape(), &self.0);
        Ok(Tensor::from_parts(data, shape))
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(ct.try_permute(&inverse)?)])
    }
}

/// Copies along axes of length 1 (and new leading axes) to reach the shape; VJP: the sum back
/// to the input's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastTo(pub Vec<usize>);

impl Op for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = inputs[0];
        check_broadcast("broadcast_to", x.shape(), &self.0)?;
        Ok(Tensor::from_parts(
            kernels::broadcast_to(x.as_slice(), x.shape(), &self.0),
            self.0.clone(),
        ))
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_sum_to(x[0].shape())?)])
    }
}

/// Sums down to a shape the input is a broadcast of (over new leading axes, and over axes kept
/// with length 1); VJP: the cotangent broadcast back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumTo(pub Vec<usize>);

impl Op for SumTo {
    fn name(&self) -> &'static str {
        "sum_to"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = inputs[0];
        check_broadcast("sum_to", &self.0, x.shape())?;
        Ok(Tensor::from_parts(
            kernels::sum_to(x.as_slice(), x.shape(), &self.0),
            self.0.clone(),
        ))
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_broadcast_to(x[0].shape())?)])
    }
}

/// Checks that `small` broadcasts to exactly `big`.
fn check_broadcast(op: &'static str, small: &[usize], big: &[usize]) -> Result<(), Error> {
    match kernels::broadcast_shape(op, small, big) {
        Ok(shape) if shape == big => Ok(()),
        _ => Err(Error::ShapeMismatch {
            op,
            lhs: small.to_vec(),
            rhs: big.to_vec(),
        }),
    }
}
