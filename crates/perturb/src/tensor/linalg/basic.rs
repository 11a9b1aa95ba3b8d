//! The small matrix functions: `diagonal`, `trace`, `diag`, `eye` and `outer`, batched over
//! leading axes. Each is a composition of existing operations (a reshape and an
//! `index_select` / `index_add` on the flattened matrix, a product of broadcast axes), so its
//! derivatives at every order, its batching rule and its output shape come with them.

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::{Array, Element, Tensor};

/// The lengths `(m, n)` of the last two axes, or an error naming `op` and the shape.
fn matrix_dims(op: &'static str, shape: &[usize]) -> Result<(usize, usize), Error> {
    match shape {
        [.., m, n] => Ok((*m, *n)),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!(
                "needs a matrix or a stack of matrices [.., m, n], got shape {shape:?}"
            ),
        }),
    }
}

/// The positions `i (n + 1)` of the diagonal entries `(i, i)`, `i < k`, in a row-major matrix
/// with `n` columns.
fn diagonal_positions(k: usize, n: usize) -> Vec<usize> {
    (0..k).map(|i| i * (n + 1)).collect()
}

/// The diagonal of each matrix: `[.., m, n] -> [.., min(m, n)]`, the entries `(i, i)` (as
/// `jnp.diagonal` over the last two axes). The gradient puts the cotangent back on the
/// diagonal, zeros elsewhere. An error for fewer than two axes.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// assert_eq!(linalg::try_diagonal(&a).unwrap().to_vec(), vec![1.0, 5.0]);
/// assert!(linalg::try_diagonal(&Tensor::vector(&[1.0_f64])).is_err());
/// ```
#[track_caller]
pub fn try_diagonal<A: Array>(x: &A) -> Result<A, Error> {
    let (m, n) = matrix_dims("diagonal", x.shape())?;
    let lead = &x.shape()[..x.shape().len() - 2];
    if lead.contains(&0) {
        // No matrix: no list of the diagonal's positions either (`min(m, n)` of them).
        let out: Vec<usize> = lead.iter().copied().chain([m.min(n)]).collect();
        return x.try_reshape(&out);
    }
    let flat: Vec<usize> = lead.iter().copied().chain([m * n]).collect();
    x.try_reshape(&flat)?
        .try_index_select(lead.len(), diagonal_positions(m.min(n), n))
}

/// See [`try_diagonal`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let stack = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 2, 2]).unwrap();
/// assert_eq!(linalg::diagonal(&stack).to_vec(), vec![1.0, 4.0, 5.0, 8.0]);
/// ```
#[track_caller]
pub fn diagonal<A: Array>(x: &A) -> A {
    or_panic(try_diagonal(x))
}

/// The trace of each matrix: `[.., m, n] -> [..]`, the sum of its diagonal
/// ([`try_diagonal`]); the gradient is the identity (`d tr(X) = tr(dX)`). An error for fewer
/// than two axes.
///
/// ```
/// use perturb::tensor::{grad, linalg, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::try_trace(&a).unwrap().to_vec(), vec![5.0]);
/// assert!(linalg::try_trace(&Tensor::vector(&[1.0_f64])).is_err());
/// let g = grad(|x| linalg::try_trace(x), &a).unwrap();
/// assert_eq!(g.to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
/// ```
#[track_caller]
pub fn try_trace<A: Array>(x: &A) -> Result<A, Error> {
    let d = try_diagonal(x).map_err(|e| rename(e, "diagonal", "trace"))?;
    let last = d.shape().len() - 1;
    d.try_sum_axes(&[last], false)
}

/// See [`try_trace`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let stack = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], &[2, 2, 2]).unwrap();
/// assert_eq!(linalg::trace(&stack).to_vec(), vec![5.0, 13.0]);
/// ```
#[track_caller]
pub fn trace<A: Array>(x: &A) -> A {
    or_panic(try_trace(x))
}

/// An error of operation `from` reported as operation `to`'s.
fn rename(e: Error, from: &'static str, to: &'static str) -> Error {
    match e {
        Error::InvalidArgument { op, reason } if op == from => {
            Error::InvalidArgument { op: to, reason }
        }
        other => other,
    }
}

/// The square matrix with each vector on its diagonal: `[.., n] -> [.., n, n]`, zeros off the
/// diagonal (`jnp.diag` of a vector, batched). The inverse of [`try_diagonal`] on square
/// diagonal matrices; the gradient is the cotangent's diagonal. An error for a scalar.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let d = linalg::try_diag(&Tensor::vector(&[1.0_f64, 2.0])).unwrap();
/// assert_eq!((d.shape(), d.to_vec()), (&[2, 2][..], vec![1.0, 0.0, 0.0, 2.0]));
/// assert!(linalg::try_diag(&Tensor::scalar(1.0_f64)).is_err());
/// ```
#[track_caller]
pub fn try_diag<A: Array>(x: &A) -> Result<A, Error> {
    let Some((&n, lead)) = x.shape().split_last() else {
        return Err(Error::InvalidArgument {
            op: "diag",
            reason: "needs a vector or a stack of vectors [.., n], got a scalar".to_string(),
        });
    };
    let square: Vec<usize> = lead.iter().copied().chain([n, n]).collect();
    element_count("diag", &square)?;
    if lead.contains(&0) {
        // No vector: the result is empty, without the list of `n` diagonal positions (8 GB
        // for `[0, 2^30 - 1]`).
        return x.try_reshape(&square);
    }
    x.try_index_add(lead.len(), diagonal_positions(n, n), n * n)?
        .try_reshape(&square)
}

/// See [`try_diag`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let v = Tensor::vector(&[3.0_f64, 4.0]);
/// assert_eq!(linalg::diagonal(&linalg::diag(&v)).to_vec(), v.to_vec());
/// ```
#[track_caller]
pub fn diag<A: Array>(x: &A) -> A {
    or_panic(try_diag(x))
}

/// The `n x n` identity matrix, or an error if `n^2` elements do not fit in memory's
/// addresses. A plain tensor: as a constant of an array type `A`, take
/// `x.constant_like(&eye(n))` (or `A::lift(eye(n))`).
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let i = linalg::try_eye::<f64>(2).unwrap();
/// assert_eq!(i.to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
/// assert!(linalg::try_eye::<f64>(usize::MAX).is_err());
/// // Inside a differentiated function: d/dx sum((x + I) x) at x = 0 is the column sums of I.
/// let g = grad(
///     |x| Ok(x.add(&x.constant_like(&linalg::eye(2))).matmul(x).sum_all()),
///     &Tensor::<f64>::zeros(&[2, 2]),
/// )
/// .unwrap();
/// assert_eq!(g.to_vec(), vec![1.0, 1.0, 1.0, 1.0]);
/// ```
pub fn try_eye<T: Element>(n: usize) -> Result<Tensor<T>, Error> {
    let count = element_count("eye", &[n, n])?;
    let mut data = vec![T::zero(); count];
    for i in 0..n {
        data[i * (n + 1)] = T::one();
    }
    Ok(Tensor::from_parts(data, vec![n, n]))
}

/// See [`try_eye`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f32, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::eye::<f32>(2).matmul(&a).to_vec(), a.to_vec());
/// ```
#[track_caller]
pub fn eye<T: Element>(n: usize) -> Tensor<T> {
    or_panic(try_eye(n))
}

/// The outer product of each pair of vectors: `[.., m]` and `[.., n]` give `[.., m, n]`, entry
/// `(i, j)` being `a_i b_j`, with the leading axes broadcast (numpy's rules). An error for a
/// scalar operand or leading axes that do not broadcast, naming both shapes.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::vector(&[1.0_f64, 2.0]);
/// let b = Tensor::vector(&[3.0, 4.0, 5.0]);
/// let o = linalg::try_outer(&a, &b).unwrap();
/// assert_eq!((o.shape(), o.to_vec()), (&[2, 3][..], vec![3.0, 4.0, 5.0, 6.0, 8.0, 10.0]));
/// assert!(linalg::try_outer(&a, &Tensor::scalar(1.0)).is_err());
/// ```
#[track_caller]
pub fn try_outer<A: Array>(a: &A, b: &A) -> Result<A, Error> {
    let mismatch = || Error::ShapeMismatch {
        op: "outer",
        lhs: a.shape().to_vec(),
        rhs: b.shape().to_vec(),
    };
    let (ra, rb) = (a.shape().len(), b.shape().len());
    if ra == 0 || rb == 0 {
        return Err(mismatch());
    }
    let column = a.try_unsqueeze(ra)?;
    let row = b.try_unsqueeze(rb - 1)?;
    column.try_mul(&row).map_err(|e| match e {
        Error::ShapeMismatch { .. } => mismatch(),
        other => rename(other, "mul", "outer"),
    })
}

/// See [`try_outer`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// // A stack of two pairs.
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0], &[2, 1]).unwrap();
/// let b = Tensor::from_vec(vec![3.0, 4.0], &[2, 1]).unwrap();
/// assert_eq!(linalg::outer(&a, &b).to_vec(), vec![3.0, 8.0]);
/// ```
#[track_caller]
pub fn outer<A: Array>(a: &A, b: &A) -> A {
    or_panic(try_outer(a, b))
}
