//! The Cholesky factorisation and the solve with its factor.

use super::triangular::{
    for_each_member, masked, product, solve_shape, square, transposed, unravel, TriangularSolve,
};
use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::batched;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

/// The lower Cholesky factor `L` of a symmetric positive definite matrix, `A = L Lᵀ`, batched
/// over leading axes (`[.., n, n]`). Only the lower triangle of `A` is read (as LAPACK's
/// `potrf` and JAX), and `L` has zeros above its diagonal.
///
/// The derivative is that of the function actually computed, `A ↦ chol(tril(A) + tril(A, -1)ᵀ)`:
/// a tangent `dA` acts through `S = tril(dA) + tril(dA, -1)ᵀ`, so an entry above the diagonal
/// has no effect and one below it counts for both symmetric places. This is what central
/// differences see in any direction, symmetric or not. For a matrix built symmetric from
/// parameters (`B Bᵀ + c I`, a kernel matrix) the gradient with respect to those parameters is
/// the usual one.
///
/// - JVP (Murray 2016, "Differentiation of the Cholesky decomposition", eq. 7; Giles 2008):
///   `dL = L Φ(L⁻¹ S L⁻ᵀ)`, `Φ` the lower triangle with the diagonal halved: two triangular
///   solves and a product.
/// - VJP (Murray 2016, section 3, the symbolic reverse rule, adjusted to the triangle read):
///   `Ā = Φ(G + Gᵀ)` with `G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹`: one product and two triangular solves, no
///   inverse.
///
/// Both are written with [`TriangularSolve`], products and masks, so they are differentiable
/// again: every order works. A matrix that is not positive definite is an
/// [`Error::NotPositiveDefinite`] naming the member of the batch and the pivot.
///
/// ```
/// use perturb::tensor::{ops::Cholesky, Op, Tensor};
/// // [[4, 2], [2, 5]] = [[2, 0], [1, 2]] [[2, 1], [0, 2]]; the 9 above the diagonal is not read.
/// let a = Tensor::from_vec(vec![4.0_f64, 9.0, 2.0, 5.0], &[2, 2]).unwrap();
/// assert_eq!(Cholesky.eval(&[&a]).unwrap().to_vec(), vec![2.0, 0.0, 1.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cholesky;

/// The lower Cholesky factor of a symmetric positive definite matrix or stack of them: see
/// [`Cholesky`] (only the lower triangle is read, and what the derivative is). An error for a
/// shape that is not `[.., n, n]` or a matrix that is not positive definite
/// ([`Error::NotPositiveDefinite`], naming the member and the pivot).
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![4.0_f64, 2.0, 2.0, 5.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::try_cholesky(&a).unwrap().to_vec(), vec![2.0, 0.0, 1.0, 2.0]);
/// // d L00 / d A00 = 1 / (2 sqrt(A00)) = 0.25, nothing from the other entries.
/// let g = grad(|a| Ok(linalg::try_cholesky(a)?.try_narrow(0, 0, 1)?.try_narrow(1, 0, 1)?.sum_all()), &a).unwrap();
/// assert_eq!(g.to_vec(), vec![0.25, 0.0, 0.0, 0.0]);
/// let indefinite = Tensor::from_vec(vec![1.0_f64, 2.0, 2.0, 1.0], &[2, 2]).unwrap();
/// assert!(linalg::try_cholesky(&indefinite).is_err());
/// ```
pub fn try_cholesky<A: Array>(a: &A) -> Result<A, Error> {
    A::apply(&Cholesky, &[a])
}

/// See [`try_cholesky`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![9.0_f64, 3.0, 3.0, 5.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::cholesky(&a).to_vec(), vec![3.0, 0.0, 1.0, 2.0]);
/// ```
#[track_caller]
pub fn cholesky<A: Array>(a: &A) -> A {
    or_panic(try_cholesky(a))
}

/// `x` with `L Lᵀ x = b`, given the lower Cholesky factor `L` (from [`try_cholesky`]): two
/// triangular solves, so its derivatives are theirs. `l` is `[.., n, n]` (only its lower
/// triangle is read); `b` a vector (`[.., n]`, one axis fewer than `l`, or a single vector) or
/// `[.., n, k]`, the leading axes broadcast. An error for shapes that do not fit (naming both)
/// or a zero on the diagonal of `L` ([`Error::Singular`]).
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![4.0_f64, 2.0, 2.0, 5.0], &[2, 2]).unwrap();
/// let l = linalg::cholesky(&a);
/// let x = linalg::try_cholesky_solve(&l, &Tensor::vector(&[6.0, 12.0])).unwrap();
/// assert!(a.matmul(&x).all_close(&Tensor::vector(&[6.0, 12.0]), 1e-14));
/// ```
pub fn try_cholesky_solve<A: Array>(l: &A, b: &A) -> Result<A, Error> {
    solve_shape("cholesky_solve", l.shape(), b.shape())?;
    let lower = TriangularSolve {
        lower: true,
        ..Default::default()
    };
    let transposed = TriangularSolve {
        transpose: true,
        ..lower
    };
    let solve = |op: &TriangularSolve, rhs: &A| {
        A::apply(op, &[l, rhs]).map_err(|e| match e {
            Error::Singular { member, detail, .. } => Error::Singular {
                op: "cholesky_solve",
                member,
                detail,
            },
            other => other,
        })
    };
    solve(&transposed, &solve(&lower, b)?)
}

/// See [`try_cholesky_solve`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let l = Tensor::from_vec(vec![2.0_f64, 0.0, 1.0, 2.0], &[2, 2]).unwrap(); // of [[4, 2], [2, 5]]
/// assert_eq!(linalg::cholesky_solve(&l, &Tensor::vector(&[4.0, 2.0])).to_vec(), vec![1.0, 0.0]);
/// ```
#[track_caller]
pub fn cholesky_solve<A: Array>(l: &A, b: &A) -> A {
    or_panic(try_cholesky_solve(l, b))
}

/// `Φ(x)`: the lower triangle with the diagonal halved.
fn phi<A: Array>(x: &A) -> Result<A, Error> {
    masked(x, true, 0.5, 1.0)
}

const LOWER: TriangularSolve = TriangularSolve {
    lower: true,
    transpose: false,
    unit_diagonal: false,
};

const LOWER_T: TriangularSolve = TriangularSolve {
    lower: true,
    transpose: true,
    unit_diagonal: false,
};

impl Op for Cholesky {
    fn name(&self) -> &'static str {
        "cholesky"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("cholesky", inputs)?;
        let n = square("cholesky", a.shape())?;
        let batch = &a.shape()[..a.ndim() - 2];
        let data = a.as_slice();
        let mut out = vec![T::zero(); data.len()];
        for_each_member(&mut out, n * n, n * n * n, |i, l| {
            l.copy_from_slice(&T::cholesky(&data[i * n * n..(i + 1) * n * n], n)?);
            Ok(())
        })
        .map_err(|(member, pivot)| Error::NotPositiveDefinite {
            op: "cholesky",
            member: unravel(member, batch),
            pivot,
        })?;
        Ok(Tensor::from_parts(out, a.shape().to_vec()))
    }

    /// `None`: whether the factorisation succeeds depends on the values (a matrix that is not
    /// positive definite is an error), so the shape alone does not promise a result.
    fn output_shape(&self, _: &[&[usize]]) -> Option<Vec<usize>> {
        None
    }

    /// The rule reads `L` only.
    const VJP_READS: VjpReads = VjpReads::OUTPUT;

    fn jvp<A: Array>(
        &self,
        _: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let Some(da) = tangents[0] else {
            return Ok(None);
        };
        let l = output;
        // S = tril(dA) + tril(dA, -1)ᵀ, symmetric, so L⁻¹ S L⁻ᵀ = L⁻¹ (L⁻¹ S)ᵀ.
        let s = masked(da, true, 1.0, 1.0)?.try_add(&transposed(&masked(da, true, 0.0, 1.0)?)?)?;
        let y = A::apply(&LOWER, &[l, &s])?;
        let m = A::apply(&LOWER, &[l, &transposed(&y)?])?;
        product(l, false, &phi(&m)?, false).map(Some)
    }

    fn vjp<A: Array>(
        &self,
        _: &[&A],
        output: &A,
        cotangent: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let l = output;
        // P = Φ(Lᵀ L̄); Y = L⁻ᵀ P; Gᵀ = L⁻ᵀ Yᵀ (G = L⁻ᵀ P L⁻¹); Ā = Φ(G + Gᵀ).
        let p = phi(&product(l, true, cotangent, false)?)?;
        let y = A::apply(&LOWER_T, &[l, &p])?;
        let gt = A::apply(&LOWER_T, &[l, &transposed(&y)?])?;
        Ok(vec![Some(phi(&gt.try_add(&transposed(&gt)?)?)?)])
    }

    /// The stack's axis is one more leading axis: one call for the whole stack.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        match (inputs, stacked) {
            ([_], [true]) => A::apply(self, inputs),
            _ => batched::by_loop(self, inputs, stacked, size),
        }
    }
}
