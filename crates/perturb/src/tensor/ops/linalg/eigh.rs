//! The eigendecomposition of symmetric matrices.
//!
//! Rules from Giles 2008, "An extended collection of matrix derivative results for forward
//! and reverse mode algorithmic differentiation" (section 3.1), in the form of JAX's
//! `eigh_jvp_rule`: with `M = V^T dA V`, `dw = diag(M)` and `dV = V (F ∘ M)`, where
//! `F_ij = 1 / (w_j - w_i)` off the diagonal.

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::batched;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

use super::triangular::{each_member, square, unravel};
use crate::tensor::linalg::eye;

/// The eigenvalues and eigenvectors of each symmetric matrix of a stack `[.., n, n]`,
/// packed as one `[.., n + 1, n]` array: row 0 holds the eigenvalues in ascending order,
/// rows `1..=n` the matrix `V` whose columns are the eigenvectors. [`try_eigh`] splits it.
///
/// Only the lower triangle is read (faer's convention, as LAPACK's `syevd` with `'L'`): the
/// function differentiated is `A -> eigh(tril(A) + tril(A, -1)^T)`, so a tangent `dA` acts
/// as `dA_eff = tril(dA) + tril(dA, -1)^T`, and central differences in any direction (not
/// only symmetric ones) agree with the rules.
///
/// Rules (Giles 2008, 3.1; JAX's `eigh_jvp_rule`): with `M = V^T dA_eff V`, `dw = diag(M)`
/// and `dV = V (F ∘ M)`, `F_ij = 1 / (w_j - w_i)` for `i != j` and `F_ii = 0`; the VJP is the
/// transpose, `Ā = tril(G) + tril(G^T, -1)` with `G = V (diag(w̄) + F ∘ (V^T V̄)) V^T`.
///
/// At repeated eigenvalues the eigenvectors are not differentiable (any basis of the
/// eigenspace is one). Where two eigenvalues are exactly equal, `F_ij` is taken as 0 (JAX
/// gives infinities): the derivatives stay finite, but those of the eigenvectors, and of the
/// eigenvalues where `M` is not diagonal on the repeated block, are those of the basis faer
/// chose, not of any function. Nearly equal eigenvalues give large derivatives.
///
/// ```
/// use perturb::tensor::{ops::Eigh, Op, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
/// let packed = Eigh.eval(&[&a]).unwrap();
/// assert_eq!(packed.shape(), &[3, 2]);
/// assert_eq!(&packed.to_vec()[..2], &[1.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Eigh;

/// `[n, n]` with ones on and below the diagonal (`strict`: below only), zeros elsewhere.
fn lower_mask<T: Element>(n: usize, strict: bool) -> Tensor<T> {
    let data = (0..n * n)
        .map(|ij| {
            let (i, j) = (ij / n, ij % n);
            if j < i || (j == i && !strict) {
                T::one()
            } else {
                T::zero()
            }
        })
        .collect();
    Tensor::from_parts(data, vec![n, n])
}

/// `tril(x) + tril(x, -1)^T`: what a function reading only the lower triangle sees of `x`.
fn lower_effective<A: Array>(x: &A, n: usize) -> Result<A, Error> {
    let lower = x.try_mul(&x.constant_like(&lower_mask(n, false)))?;
    let strict = x.try_mul(&x.constant_like(&lower_mask(n, true)))?;
    lower.try_add(&strict.transpose())
}

/// The transpose of [`lower_effective`]: `tril(g) + tril(g^T, -1)`.
fn lower_effective_transposed<A: Array>(g: &A, n: usize) -> Result<A, Error> {
    let lower = g.try_mul(&g.constant_like(&lower_mask(n, false)))?;
    let strict = g
        .transpose()
        .try_mul(&g.constant_like(&lower_mask(n, true)))?;
    lower.try_add(&strict)
}

/// The eigenvalues `[.., 1, n]` and the eigenvectors `[.., n, n]` of a packed result.
fn unpack<A: Array>(packed: &A) -> Result<(A, A), Error> {
    let r = packed.shape().len();
    let n = packed.shape()[r - 1];
    Ok((
        packed.try_narrow(r - 2, 0, 1)?,
        packed.try_narrow(r - 2, 1, n)?,
    ))
}

/// `F ∘ m`, `F_ij = 1 / (w_j - w_i)`, 0 where `w_i == w_j` exactly (the diagonal, and
/// repeated eigenvalues), from the eigenvalues `w` `[.., 1, n]`: written with differentiable
/// operations, the mask of equal pairs a constant. Computed as `m_ij / (w_j - w_i)`, not
/// `m_ij * (1 / (w_j - w_i))`: the reciprocal of a subnormal gap is infinite, and times a zero
/// of `m` it would be NaN.
fn over_gaps<A: Array>(w: &A, m: &A) -> Result<A, Error> {
    let d = w.try_sub(&w.transpose())?;
    let equal = d.try_equal(&d.constant_like(&Tensor::scalar(A::elem(0.0))))?;
    let apart = equal.neg().add_scalar(A::elem(1.0));
    m.try_div(&d.try_add(&equal)?)?.try_mul(&apart)
}

impl Op for Eigh {
    fn name(&self) -> &'static str {
        "eigh"
    }

    const VJP_READS: VjpReads = VjpReads::OUTPUT;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("eigh", inputs)?;
        let (batch, n) = square("eigh", a.shape())?;
        let out: Vec<usize> = batch.iter().copied().chain([n + 1, n]).collect();
        if out.contains(&0) {
            // Nothing to compute (and faer's iteration does not take an empty matrix).
            return Ok(Tensor::from_parts(Vec::new(), out));
        }
        let count = batch.iter().product();
        let data = each_member(count, n * n * n, |i| {
            let a_i = &a.as_slice()[i * n * n..(i + 1) * n * n];
            let at = || {
                let member = unravel(i, &batch);
                if member.is_empty() {
                    String::new()
                } else {
                    format!(" at batch index {member:?}")
                }
            };
            // Only the lower triangle is read.
            if (0..n).any(|r| a_i[r * n..=r * n + r].iter().any(|v| !v.is_finite())) {
                return Err(Error::InvalidArgument {
                    op: "eigh",
                    reason: format!("the matrix{} has entries that are not finite", at()),
                });
            }
            let (values, vectors) = T::eigh(a_i, n).map_err(|e| Error::InvalidArgument {
                op: "eigh",
                reason: format!("the iteration did not converge for the matrix{}: {e}", at()),
            })?;
            Ok(values.into_iter().chain(vectors).collect())
        })?;
        Ok(Tensor::from_parts(data, out))
    }

    /// `None`: the iteration can fail on some values (not finite).
    fn output_shape(&self, _: &[&[usize]]) -> Option<Vec<usize>> {
        None
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let Some(da) = tangents[0] else {
            return Ok(None);
        };
        let r = inputs[0].shape().len();
        let n = inputs[0].shape()[r - 1];
        let (w, v) = unpack(output)?;
        let m = v
            .transpose()
            .try_matmul(&lower_effective(da, n)?)?
            .try_matmul(&v)?;
        let identity = m.constant_like(&eye(n));
        let dw = m.try_mul(&identity)?.try_sum_axes(&[r - 2], true)?;
        let dv = v.try_matmul(&over_gaps(&w, &m)?)?;
        A::try_concat(&[&dw, &dv], r - 2).map(Some)
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let r = inputs[0].shape().len();
        let n = inputs[0].shape()[r - 1];
        let (w, v) = unpack(output)?;
        let (ct_w, ct_v) = unpack(ct)?;
        let identity = v.constant_like(&eye(n));
        let inner = ct_w
            .try_mul(&identity)?
            .try_add(&over_gaps(&w, &v.transpose().try_matmul(&ct_v)?)?)?;
        let g = v.try_matmul(&inner)?.try_matmul(&v.transpose())?;
        Ok(vec![Some(lower_effective_transposed(&g, n)?)])
    }

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// The eigenvalues `w` `[.., n]` (ascending) and eigenvectors `V` `[.., n, n]` (the columns,
/// orthonormal: `A = V diag(w) V^T`) of each symmetric matrix of a stack `[.., n, n]`, as
/// `jnp.linalg.eigh`. Only the lower triangle is read; see [`Eigh`] for what the derivative
/// is then, and what it does at repeated eigenvalues (finite, `F_ij = 0`; the eigenvectors'
/// derivative is not defined there).
///
/// Each eigenvector's sign is arbitrary (the one faer gives): a function of the eigenvectors
/// whose value depends on their signs has no derivative in the usual sense. Functions that do
/// not (`V diag(f(w)) V^T`, the squares of `V`'s entries) are differentiable at every order.
///
/// A matrix with entries that are not finite (in its lower triangle), or one on which the
/// iteration does not converge, is [`Error::InvalidArgument`] naming the member.
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 1.0, 1.0, 2.0], &[2, 2]).unwrap();
/// let (w, v) = linalg::try_eigh(&a).unwrap();
/// assert!(w.all_close(&Tensor::vector(&[1.0, 3.0]), 1e-14));
/// // A = V diag(w) V^T
/// assert!(v.mul(&w).matmul(&v.transpose()).all_close(&a, 1e-14));
///
/// // d(largest eigenvalue) / dA = v v^T for its eigenvector v, on the lower triangle
/// // (the upper one is not read): [[1/2, 0], [1, 1/2]].
/// let g = grad(|a| Ok(linalg::try_eigh(a)?.0.narrow(0, 1, 1).sum_all()), &a).unwrap();
/// assert!(g.all_close(&Tensor::from_vec(vec![0.5, 0.0, 1.0, 0.5], &[2, 2]).unwrap(), 1e-14));
/// ```
pub fn try_eigh<A: Array>(a: &A) -> Result<(A, A), Error> {
    let packed = A::apply(&Eigh, &[a])?;
    let (w, v) = unpack(&packed)?;
    Ok((w.try_squeeze(w.shape().len() - 2)?, v))
}

/// See [`try_eigh`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![3.0_f64, 0.0, 0.0, -1.0], &[2, 2]).unwrap();
/// let (w, _) = linalg::eigh(&a);
/// assert_eq!(w.to_vec(), vec![-1.0, 3.0]);
/// ```
#[track_caller]
pub fn eigh<A: Array>(a: &A) -> (A, A) {
    or_panic(try_eigh(a))
}
