//! A tree of arrays as one flat vector and back (JAX's `ravel_pytree`): what lets code written
//! for one vector (a Hessian, a line search, a gradient check) run on a whole model.
//!
//! Both directions are made of differentiable operations (reshape and concatenation one way,
//! narrowing and reshape the other), so they can sit inside a transformed function.

use super::array::Array;
use super::dense::Tensor;
use super::transforms::element_count;
use crate::error::Error;
use crate::tree::Tree;

/// The leaves of `tree` reshaped to vectors and concatenated, in leaf order: one vector of
/// as many elements as the tree has (JAX's `ravel_pytree`). An empty tree gives an empty vector.
/// [`unravel`] is the inverse.
///
/// ```
/// use perturb::tensor::{ravel, unravel, Array, Tensor};
/// let model = (Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap(), Tensor::vector(&[5.0]));
/// let flat = ravel(&model).unwrap();
/// assert_eq!(flat.to_vec(), [1.0, 2.0, 3.0, 4.0, 5.0]);
/// let back = unravel(&model, &flat.scale(10.0)).unwrap();
/// assert_eq!((back.0.shape(), back.1.to_vec()), (&[2, 2][..], vec![50.0]));
/// ```
pub fn ravel<A: Array, X: Tree<A>>(tree: &X) -> Result<A, Error> {
    let leaves = tree.leaves();
    if leaves.is_empty() {
        return Ok(A::lift(Tensor::zeros(&[0])));
    }
    let vectors = leaves
        .iter()
        .map(|leaf| leaf.try_reshape(&[element_count(leaf.shape())]))
        .collect::<Result<Vec<A>, Error>>()?;
    A::try_concat(&vectors.iter().collect::<Vec<_>>(), 0)
}

/// The tree of `template`'s structure and leaf shapes whose elements are those of the vector
/// `flat`, in leaf order: the inverse of [`ravel`]. `flat` may be of another array type than the
/// template's leaves (a tape variable, a dual tensor), so a function of a tree can be run on one
/// vector. An error if `flat` is not a vector of the tree's element count.
///
/// ```
/// use perturb::tensor::{grad, unravel, Array, Tensor};
/// // A function of a pair of tensors, differentiated as a function of one vector.
/// let shapes = (Tensor::<f64>::zeros(&[2]), Tensor::<f64>::zeros(&[1]));
/// let g = grad(
///     |v| {
///         let (a, b) = unravel(&shapes, v)?;
///         Ok(a.square().sum_all().try_mul(&b)?.sum_all())
///     },
///     &Tensor::vector(&[1.0, 2.0, 3.0]),
/// )
/// .unwrap();
/// // d/da = 2 a b = [6, 12], d/db = |a|^2 = 5
/// assert_eq!(g.to_vec(), [6.0, 12.0, 5.0]);
/// assert!(unravel(&shapes, &Tensor::<f64>::zeros(&[4])).is_err());
/// ```
pub fn unravel<A: Array, X: Tree<A>, B: Array>(
    template: &X,
    flat: &B,
) -> Result<X::With<B>, Error> {
    let shapes: Vec<&[usize]> = template.leaves().into_iter().map(|l| l.shape()).collect();
    template.unflatten(split(flat, &shapes)?)
}

/// `flat` cut into consecutive pieces of the given shapes (narrow, then reshape).
pub(crate) fn split<B: Array>(flat: &B, shapes: &[&[usize]]) -> Result<Vec<B>, Error> {
    let total: usize = shapes.iter().map(|s| element_count(s)).sum();
    if flat.shape() != [total] {
        return Err(Error::InvalidArgument {
            op: "unravel",
            reason: format!(
                "the tree has {total} elements in {} leaves: expected a vector of shape [{total}], got shape {:?}",
                shapes.len(),
                flat.shape()
            ),
        });
    }
    let mut start = 0;
    shapes
        .iter()
        .map(|shape| {
            let n = element_count(shape);
            let piece = flat.try_narrow(0, start, n)?.try_reshape(shape);
            start += n;
            piece
        })
        .collect()
}
