//! General square matrices through the LU decomposition: `solve`, `inv`, `det`, `slogdet`.
//!
//! As MATLAB's `mldivide` does, a triangular matrix is solved by substitution alone, and one
//! that is exactly symmetric with a positive diagonal (an `O(n^2)` check) is first given to
//! Cholesky, half the work of LU; if that fails (the matrix is not positive definite) LU runs
//! as for any other matrix. See [`Factor`].
//!
//! The rules are those of Giles 2008, "An extended collection of matrix derivative results for
//! forward and reverse mode algorithmic differentiation" (section 2.2): for `X = A^-1 B`,
//! `dX = A^-1 (dB - dA X)`, `B̄ = A^-T X̄`, `Ā = -B̄ X^T`; for the determinant,
//! `d det A = det A tr(A^-1 dA)` and `Ā = ct det A A^-T`. Each is written with [`Solve`]
//! itself and other [`Array`] operations, so it is differentiable again.

use std::borrow::Cow;

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::linalg::{eye, try_trace};
use crate::tensor::{batched, kernels, Array, Element, Op, Tensor, VjpReads};

use super::backend::Triangle;
use super::triangular::{each_member, square, unravel};

/// How one `n x n` matrix is factorised for its solves and determinant, as MATLAB's
/// `mldivide` chooses (each check `O(n^2)`): a triangular matrix (a diagonal one included) needs
/// none, only substitution; one that is exactly symmetric with a positive diagonal is tried by
/// Cholesky (`A = L L^T`, half the work of LU); every other, and one whose Cholesky fails (not
/// positive definite), gets LU with partial pivoting, run by the kernel that uses it
/// ([`Dense::lu_solve`](super::Dense::lu_solve), [`Dense::lu_diagonal`](super::Dense::lu_diagonal)).
enum Factor<T> {
    /// The matrix is its own factor: lower triangular, or else upper.
    Triangular {
        lower: bool,
    },
    /// The lower Cholesky factor, row-major.
    Cholesky(Vec<T>),
    Lu,
}

impl<T: Element> Factor<T> {
    fn new(a: &[T], n: usize) -> Self {
        let zero_where = |outside: fn(usize, usize) -> bool| {
            (0..n).all(|i| (0..n).all(|j| !outside(i, j) || a[i * n + j] == T::zero()))
        };
        if zero_where(|i, j| j > i) {
            return Factor::Triangular { lower: true };
        }
        if zero_where(|i, j| j < i) {
            return Factor::Triangular { lower: false };
        }
        let symmetric = (0..n).all(|i| a[i * n + i] > T::zero())
            && (0..n).all(|i| (0..i).all(|j| a[i * n + j] == a[j * n + i]));
        match symmetric.then(|| T::cholesky(a, n)) {
            Some(Ok(l)) => Factor::Cholesky(l),
            _ => Factor::Lu,
        }
    }

    /// `op(a)^-1 b` for `b` `n x k`, `op` the transpose when `transpose`; `Err(pivot)` at the
    /// first zero pivot (Cholesky's are positive).
    fn solve(
        &self,
        a: &[T],
        n: usize,
        b: &[T],
        k: usize,
        transpose: bool,
    ) -> Result<Vec<T>, usize> {
        let lower = Triangle {
            lower: true,
            ..Triangle::default()
        };
        match self {
            Factor::Triangular { lower } => match (0..n).find(|&i| a[i * n + i] == T::zero()) {
                Some(pivot) => Err(pivot),
                None => {
                    let shape = Triangle {
                        lower: *lower,
                        transpose,
                        unit_diagonal: false,
                    };
                    Ok(T::triangular_solve(a, n, b, k, shape))
                }
            },
            // A = A^T: L y = b, then L^T x = y.
            Factor::Cholesky(l) => {
                let y = T::triangular_solve(l, n, b, k, lower);
                let upper = Triangle {
                    transpose: true,
                    ..lower
                };
                Ok(T::triangular_solve(l, n, &y, k, upper))
            }
            Factor::Lu => T::lu_solve(a, n, b, k, transpose),
        }
    }

    /// `a^-1`: from the Cholesky factor by [`Dense::cholesky_inverse`](super::Dense::cholesky_inverse)
    /// (a third of the work of solving with the identity), else a solve with the identity;
    /// `Err(pivot)` as [`Factor::solve`].
    fn inverse(&self, a: &[T], n: usize) -> Result<Vec<T>, usize> {
        match self {
            Factor::Cholesky(l) => Ok(T::cholesky_inverse(l, n)),
            _ => self.solve(a, n, eye::<T>(n).as_slice(), n, false),
        }
    }

    /// The pivots and whether the rows were permuted oddly: `det a` is the pivots' product,
    /// negated when odd. The diagonal of a triangular `a`; `L_ii^2` for Cholesky; the
    /// diagonal of `U` for LU (after a zero pivot its entries are not meaningful, NaN for a
    /// zero column).
    fn pivots(&self, a: &[T], n: usize) -> (Vec<T>, bool) {
        match self {
            Factor::Triangular { .. } => ((0..n).map(|i| a[i * n + i]).collect(), false),
            Factor::Cholesky(l) => ((0..n).map(|i| l[i * n + i] * l[i * n + i]).collect(), false),
            Factor::Lu => T::lu_diagonal(a, n),
        }
    }
}

/// A member's solution, or [`Error::Singular`] naming `op` and the member at a zero pivot or
/// where the solution is not finite.
fn checked<T: Element>(
    op: &'static str,
    batch: &[usize],
    i: usize,
    x: Result<Vec<T>, usize>,
) -> Result<Vec<T>, Error> {
    let singular = |detail: String| Error::Singular {
        op,
        member: unravel(i, batch),
        detail,
    };
    let x = x.map_err(|p| singular(format!("pivot {p} of its factorisation is zero")))?;
    if x.iter().any(|v| !v.is_finite()) {
        return Err(singular(
            "the solution is not finite (the matrix is singular to working precision, or an \
             input is not finite)"
                .to_string(),
        ));
    }
    Ok(x)
}

/// `x` with two trailing axes of length 1, to broadcast against a stack of matrices.
fn per_matrix<A: Array>(x: &A) -> Result<A, Error> {
    let r = x.shape().len();
    x.try_unsqueeze(r)?.try_unsqueeze(r + 1)
}

/// A [`Error::Singular`] from [`Solve`] renamed to the operation `op` that asked for it.
fn renamed(op: &'static str, e: Error) -> Error {
    match e {
        Error::Singular { member, detail, .. } => Error::Singular { op, member, detail },
        other => other,
    }
}

/// `A^-T`, for the rules of the determinant, the error naming `op`.
fn inverse_transpose<A: Array>(op: &'static str, a: &A) -> Result<A, Error> {
    Ok(A::apply(&Inverse, &[a])
        .map_err(|e| renamed(op, e))?
        .transpose())
}

/// `tr(A^-1 dA)`, the tangent of `ln |det A|`, the error naming `op`.
fn trace_of_solve<A: Array>(op: &'static str, a: &A, da: &A) -> Result<A, Error> {
    let s = A::apply(&Solve::default(), &[a, da]).map_err(|e| renamed(op, e))?;
    try_trace(&s)
}

// ---- solve -------------------------------------------------------------------------------------

/// `X` with `op(A) X = B` for a stack of square matrices `A` `[.., n, n]` and right-hand sides
/// `B` `[.., n, k]`, the leading axes broadcast; `op(A)` is `A^T` when `transpose` is set. LU
/// with partial pivoting (faer), one member at a time, in parallel for large batches. As in
/// MATLAB's `mldivide`, a triangular member is solved by substitution alone, and one that is
/// exactly symmetric with a positive diagonal is tried by Cholesky first (half the work of LU),
/// going to LU if it is not positive definite.
///
/// A zero pivot, or a solution that is not finite (a matrix singular to working precision),
/// is [`Error::Singular`] naming the member. Rules (Giles 2008, 2.2): `dX = op(A)^-1 (dB -
/// op(dA) X)`; `B̄ = op(A)^-T X̄` and `Ā = -B̄ X^T` (its transpose when `transpose`), each a
/// [`Solve`] again. [`try_solve`] is the function users call.
///
/// ```
/// use perturb::tensor::{ops::Solve, Op, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 1.0, 0.0, 4.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![4.0, 8.0], &[2, 1]).unwrap();
/// // [[2, 1], [0, 4]] x = [4, 8]: x = [1, 2]; with the transpose, [[2, 0], [1, 4]] x = [4, 8].
/// assert_eq!(Solve::default().eval(&[&a, &b]).unwrap().to_vec(), vec![1.0, 2.0]);
/// assert_eq!(Solve { transpose: true }.eval(&[&a, &b]).unwrap().to_vec(), vec![2.0, 1.5]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Solve {
    /// Solve with `A^T`.
    pub transpose: bool,
}

/// The shapes of a solve: the broadcast leading axes, `n`, `k` and the result's shape.
struct SolveShapes {
    batch: Vec<usize>,
    n: usize,
    k: usize,
    out: Vec<usize>,
}

fn solve_shapes(a: &[usize], b: &[usize]) -> Result<SolveShapes, Error> {
    let (a_batch, n) = square("solve", a)?;
    let mismatch = || Error::ShapeMismatch {
        op: "solve",
        lhs: a.to_vec(),
        rhs: b.to_vec(),
    };
    let [b_batch @ .., rows, k] = b else {
        return Err(mismatch());
    };
    if *rows != n {
        return Err(mismatch());
    }
    let batch = kernels::broadcast_shape("solve", &a_batch, b_batch).map_err(|_| mismatch())?;
    let out: Vec<usize> = batch.iter().copied().chain([n, *k]).collect();
    element_count("solve", &out)?;
    Ok(SolveShapes {
        batch,
        n,
        k: *k,
        out,
    })
}

/// `x` at the full `shape`, copied out only if it is broadcast.
fn broadcast<'a, T: Element>(x: &'a Tensor<T>, shape: &[usize]) -> Cow<'a, [T]> {
    if x.shape() == shape {
        Cow::Borrowed(x.as_slice())
    } else {
        Cow::Owned(kernels::broadcast_to(x.as_slice(), x.shape(), shape))
    }
}

impl Op for Solve {
    fn name(&self) -> &'static str {
        "solve"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: "solve",
                expected: 2,
                found: inputs.len(),
            });
        };
        let SolveShapes { batch, n, k, out } = solve_shapes(a.shape(), b.shape())?;
        if out.contains(&0) {
            return Ok(Tensor::from_parts(Vec::new(), out));
        }
        let full_a: Vec<usize> = batch.iter().copied().chain([n, n]).collect();
        element_count("solve", &full_a)?;
        let (ad, bd) = (broadcast(a, &full_a), broadcast(b, &out));
        let count = batch.iter().product();
        let data = each_member(count, n * n * (n + k), |i| {
            let a_i = &ad[i * n * n..(i + 1) * n * n];
            let b_i = &bd[i * n * k..(i + 1) * n * k];
            let x = Factor::new(a_i, n).solve(a_i, n, b_i, k, self.transpose);
            checked("solve", &batch, i, x)
        })?;
        Ok(Tensor::from_parts(data, out))
    }

    /// `None`: whether the matrix is singular is known only by running.
    fn output_shape(&self, _: &[&[usize]]) -> Option<Vec<usize>> {
        None
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let a = inputs[0];
        let mut rhs = tangents[1].cloned();
        if let Some(da) = tangents[0] {
            let op_da = if self.transpose {
                da.transpose()
            } else {
                da.clone()
            };
            let da_x = op_da.try_matmul(output)?;
            rhs = Some(match rhs {
                Some(db) => db.try_sub(&da_x)?,
                None => da_x.neg(),
            });
        }
        rhs.map(|r| A::apply(self, &[a, &r])).transpose()
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        let flipped = Solve {
            transpose: !self.transpose,
        };
        let ct_b = A::apply(&flipped, &[a, ct])?;
        let da = if needed[0] {
            let g = if self.transpose {
                output.try_matmul(&ct_b.transpose())?
            } else {
                ct_b.try_matmul(&output.transpose())?
            };
            Some(g.neg().try_sum_to(a.shape())?)
        } else {
            None
        };
        let db = if needed[1] {
            Some(ct_b.try_sum_to(b.shape())?)
        } else {
            None
        };
        Ok(vec![da, db])
    }

    /// The stack is one more leading axis: the unstacked input broadcast, one solve.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], _: usize) -> Result<A, Error> {
        batched::elementwise(self, inputs, stacked)
    }
}

/// `A^-1 b` for a stack of square matrices `a` `[.., n, n]`, as `jnp.linalg.solve`: `b` is a
/// vector `[n]`, or a stack of vectors `[.., n]` when it has one axis fewer than `a`, else a
/// stack of matrices `[.., n, k]` (several right-hand sides); the leading axes broadcast (the
/// rule of [`try_triangular_solve`](super::try_triangular_solve) and
/// [`try_cholesky_solve`](super::try_cholesky_solve)).
///
/// A singular matrix (a zero pivot in its LU factorisation, or a solution that is not finite)
/// is [`Error::Singular`] naming the member of the batch; shapes that do not fit are
/// [`Error::ShapeMismatch`] naming both. The derivatives are those of [`Solve`].
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![3.0_f64, 1.0, 1.0, 2.0], &[2, 2]).unwrap();
/// let b = Tensor::vector(&[9.0, 8.0]);
/// let x = linalg::try_solve(&a, &b).unwrap();
/// assert!(x.all_close(&Tensor::vector(&[2.0, 3.0]), 1e-14));
///
/// // d sum(x) / db = A^-T 1
/// let g = grad(|b| linalg::try_solve(&b.constant_like(&a), b).map(|x| x.sum_all()), &b).unwrap();
/// assert!(g.all_close(&Tensor::vector(&[0.2, 0.4]), 1e-14));
///
/// let singular = Tensor::from_vec(vec![1.0_f64, 2.0, 2.0, 4.0], &[2, 2]).unwrap();
/// assert!(linalg::try_solve(&singular, &b).is_err());
///
/// // One vector against a stack of matrices: solved with each.
/// let stack = Tensor::try_stack(&[&a, &a.scale(2.0)], 0).unwrap();
/// let xs = linalg::try_solve(&stack, &b).unwrap();
/// assert!(xs.all_close(&Tensor::from_vec(vec![2.0, 3.0, 1.0, 1.5], &[2, 2]).unwrap(), 1e-14));
/// ```
pub fn try_solve<A: Array>(a: &A, b: &A) -> Result<A, Error> {
    let vector = b.shape().len() == 1 || b.shape().len() + 1 == a.shape().len();
    let b_matrix = if vector {
        b.try_unsqueeze(b.shape().len())?
    } else {
        b.clone()
    };
    solve_shapes(a.shape(), b_matrix.shape()).map_err(|e| match e {
        Error::ShapeMismatch { op, .. } => Error::ShapeMismatch {
            op,
            lhs: a.shape().to_vec(),
            rhs: b.shape().to_vec(),
        },
        other => other,
    })?;
    let x = A::apply(&Solve::default(), &[a, &b_matrix])?;
    if vector {
        x.try_squeeze(x.shape().len() - 1)
    } else {
        Ok(x)
    }
}

/// See [`try_solve`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::solve(&a, &Tensor::vector(&[2.0, 2.0])).to_vec(), vec![1.0, 0.5]);
/// ```
#[track_caller]
pub fn solve<A: Array>(a: &A, b: &A) -> A {
    or_panic(try_solve(a, b))
}

/// The inverse of each matrix of a stack `[.., n, n]`, by the factorisation [`Solve`] would
/// choose; for a symmetric positive definite matrix, from the Cholesky factor (`L^-T L^-1`,
/// a third of the work of solving with the identity). One member at a time, in parallel for
/// large batches; a singular member is [`Error::Singular`] naming it. [`try_inv`] is the
/// function users call.
///
/// Rules (Giles 2008, 2.2), from the output `X = A^-1` alone: `dX = -X dA X`,
/// `Ā = -X^T X̄ X^T`.
///
/// ```
/// use perturb::tensor::{ops::Inverse, Op, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 1.0, 1.0, 1.0], &[2, 2]).unwrap();
/// assert!(Inverse.eval(&[&a]).unwrap().all_close(&Tensor::from_vec(vec![1.0, -1.0, -1.0, 2.0], &[2, 2]).unwrap(), 1e-15));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inverse;

impl Op for Inverse {
    fn name(&self) -> &'static str {
        "inv"
    }

    const VJP_READS: VjpReads = VjpReads::OUTPUT;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("inv", inputs)?;
        let (batch, n) = square("inv", a.shape())?;
        let count = batch.iter().product();
        let data = each_member(count, n * n * n, |i| {
            let a_i = &a.as_slice()[i * n * n..(i + 1) * n * n];
            checked("inv", &batch, i, Factor::new(a_i, n).inverse(a_i, n))
        })?;
        Ok(Tensor::from_parts(data, a.shape().to_vec()))
    }

    /// `None`: whether the matrix is singular is known only by running.
    fn output_shape(&self, _: &[&[usize]]) -> Option<Vec<usize>> {
        None
    }

    fn jvp<A: Array>(&self, _: &[&A], x: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|da| Ok(x.try_matmul(da)?.try_matmul(x)?.neg()))
            .transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], x: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let xt = x.transpose();
        Ok(vec![Some(xt.try_matmul(ct)?.try_matmul(&xt)?.neg())])
    }

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// The inverse of each matrix of a stack `[.., n, n]` (the [`Inverse`] operation): its JVP is
/// `-A^-1 dA A^-1` (Giles 2008, 2.2). A singular matrix is [`Error::Singular`] naming the
/// member.
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![4.0_f64, 7.0, 2.0, 6.0], &[2, 2]).unwrap();
/// let inv = linalg::try_inv(&a).unwrap();
/// assert!(inv.all_close(&Tensor::from_vec(vec![0.6, -0.7, -0.2, 0.4], &[2, 2]).unwrap(), 1e-14));
/// assert!(linalg::try_inv(&Tensor::<f64>::zeros(&[2, 2])).is_err());
/// ```
pub fn try_inv<A: Array>(a: &A) -> Result<A, Error> {
    A::apply(&Inverse, &[a])
}

/// See [`try_inv`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 4.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::inv(&a).to_vec(), vec![0.5, 0.0, 0.0, 0.25]);
/// ```
#[track_caller]
pub fn inv<A: Array>(a: &A) -> A {
    or_panic(try_inv(a))
}

// ---- determinants ----------------------------------------------------------------------------

/// Runs `f` on the pivots and the permutation's parity of each member's [`Factor`]
/// ([`Factor::pivots`]), or gives `singular` for a member with a zero pivot: `W` values per
/// matrix of the stack `[.., n, n]`, and the stack's leading axes.
fn per_factor<T: Element, const W: usize>(
    op: &'static str,
    a: &Tensor<T>,
    singular: [T; W],
    f: impl Fn(&[T], bool) -> [T; W] + Sync,
) -> Result<(Vec<T>, Vec<usize>), Error> {
    let (batch, n) = square(op, a.shape())?;
    let count = batch.iter().product();
    let data = each_member(count, n * n * n, |i| {
        let a_i = &a.as_slice()[i * n * n..(i + 1) * n * n];
        let (pivots, odd) = Factor::new(a_i, n).pivots(a_i, n);
        Ok(if pivots.contains(&T::zero()) {
            singular
        } else {
            f(&pivots, odd)
        }
        .to_vec())
    })?;
    Ok((data, batch))
}

/// The product of `d`, computed as `p 2^(32 e)` with `p` and each factor kept within
/// `[2^-32, 2^32]` by exact scalings by `2^32`: a product whose partial products leave the
/// float range while the whole does not (the pivots `1e200, 1e200, 1e-200`, whose product
/// ran to `inf` and stayed there; `1e-200, 1e-200, 1e200` to 0) is right, and where they do not
/// leave it the bits are those of the plain product. Non-finite factors are multiplied as
/// they are.
fn scaled_product<T: Element>(d: &[T]) -> T {
    let big = T::from_f64(4_294_967_296.0).unwrap_or_else(T::nan);
    let small = big.recip();
    let (mut p, mut e) = (T::one(), 0_i64);
    let normalise = |mut v: T, e: &mut i64| {
        while v.is_finite() && v.abs() > big {
            v *= small;
            *e += 1;
        }
        while v != T::zero() && v.abs() < small {
            v *= big;
            *e -= 1;
        }
        v
    };
    for &u in d {
        p = normalise(p * normalise(u, &mut e), &mut e);
    }
    while e > 0 && p.is_finite() {
        p *= big;
        e -= 1;
    }
    while e < 0 && p != T::zero() {
        p *= small;
        e += 1;
    }
    p
}

/// The sign and `ln |det A|` of each matrix of a stack `[.., n, n]`, side by side: `[.., 2]`
/// (one factorisation gives both; [`try_slogdet`] takes them apart). By LU, the product of
/// the signs of the `U_ii` (negated for an odd row permutation) and the sum of the logarithms
/// of `|U_ii|`; sign 0 and `-inf` for a singular matrix (a zero pivot). A triangular matrix
/// needs no factorisation (its own diagonal), and one that is exactly symmetric with a positive
/// diagonal is tried by Cholesky first (sign 1 and `2 sum ln L_ii` if it is positive definite),
/// as in [`Solve`].
///
/// Rules (Giles 2008, 2.2): the sign is piecewise constant (tangent 0, its cotangent
/// ignored); for `ln |det A|` the tangent is `tr(A^-1 dA)`, the cotangent `ct A^-T`. At a
/// singular matrix `ln |det|` has a pole, and both rules return [`Error::Singular`].
///
/// ```
/// use perturb::tensor::{ops::Slogdet, Op, Tensor};
/// let a = Tensor::from_vec(vec![0.0_f64, 2.0, 3.0, 1.0], &[2, 2]).unwrap();
/// let out = Slogdet.eval(&[&a]).unwrap().to_vec(); // det = -6
/// assert_eq!(out[0], -1.0);
/// assert!((out[1] - 6.0_f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slogdet;

impl Op for Slogdet {
    fn name(&self) -> &'static str {
        "slogdet"
    }

    const VJP_READS: VjpReads = VjpReads::INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("slogdet", inputs)?;
        let singular = [T::zero(), T::neg_infinity()];
        let (data, mut shape) = per_factor("slogdet", a, singular, |d, odd| {
            let sign: T = d.iter().map(|&u| num_traits::Float::signum(u)).product();
            let log = d.iter().map(|u| u.abs().ln()).sum();
            [if odd { -sign } else { sign }, log]
        })?;
        shape.push(2);
        Ok(Tensor::from_parts(data, shape))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a] = inputs else { return None };
        let (mut batch, _) = square("slogdet", a).ok()?;
        batch.push(2);
        Some(batch)
    }

    fn jvp<A: Array>(&self, inputs: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|da| {
            let t = trace_of_solve("slogdet", inputs[0], da)?;
            let t = t.try_unsqueeze(t.shape().len())?;
            A::try_concat(&[&t.scale(A::elem(0.0)), &t], t.shape().len() - 1)
        })
        .transpose()
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let last = ct.shape().len() - 1;
        let ct_log = ct.try_narrow(last, 1, 1)?.try_unsqueeze(last + 1)?;
        let a_inv_t = inverse_transpose("slogdet", inputs[0])?;
        Ok(vec![Some(ct_log.try_mul(&a_inv_t)?)])
    }

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// The sign and the logarithm of the absolute value of the determinant of each matrix of a
/// stack `[.., n, n]`, as `jnp.linalg.slogdet`: `det A = sign exp(logabsdet)`, with no
/// overflow for large matrices. Both come from one factorisation (the [`Slogdet`]
/// operation).
///
/// The sign (1, -1, or 0) is a plain tensor, taken from the result's plain value
/// ([`Array::primal`]; for a [`Batched`](crate::tensor::Batched) stack it has the stack's axis
/// first): it is not differentiable (piecewise constant).
/// `logabsdet` is differentiable at every order: `d logabsdet = tr(A^-1 dA)`, so its gradient
/// is `A^-T`.
///
/// A singular matrix (a zero pivot) is not an error, as in numpy: it gives sign 0 and
/// logabsdet `-inf`. Its derivative there does not exist (a pole): asking for it (a tangent
/// or a cotangent through it) returns [`Error::Singular`].
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let (sign, logabsdet) = linalg::try_slogdet(&a).unwrap();
/// assert_eq!(sign.to_vec(), vec![-1.0]);
/// assert!((logabsdet.to_vec()[0] - 2.0_f64.ln()).abs() < 1e-15);
///
/// // The gradient of ln |det A| is A^-T.
/// let g = grad(|a| Ok(linalg::try_slogdet(a)?.1.sum_all()), &a).unwrap();
/// assert!(g.all_close(&linalg::inv(&a).transpose(), 1e-14));
///
/// let (sign, logabsdet) = linalg::slogdet(&Tensor::<f64>::zeros(&[2, 2]));
/// assert_eq!((sign.to_vec(), logabsdet.to_vec()), (vec![0.0], vec![f64::NEG_INFINITY]));
/// ```
pub fn try_slogdet<A: Array>(a: &A) -> Result<(Tensor<A::Elem>, A), Error> {
    let both = A::apply(&Slogdet, &[a])?;
    let last = both.shape().len() - 1;
    let logabsdet = both.try_narrow(last, 1, 1)?.try_squeeze(last)?;
    let plain = both.primal();
    let last = plain.shape().len() - 1;
    let sign = plain.try_narrow(last, 0, 1)?.try_squeeze(last)?;
    Ok((sign, logabsdet))
}

/// See [`try_slogdet`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 2.0], &[1, 2, 2]).unwrap();
/// let (sign, logabsdet) = linalg::slogdet(&a);
/// assert_eq!((sign.shape(), logabsdet.to_vec()), (&[1][..], vec![4.0_f64.ln()]));
/// ```
#[track_caller]
pub fn slogdet<A: Array>(a: &A) -> (Tensor<A::Elem>, A) {
    or_panic(try_slogdet(a))
}

/// The determinant of each matrix of a stack `[.., n, n]`: the product of the diagonal of
/// `U` in its LU decomposition, negated for an odd row permutation; exactly 0 at a zero pivot.
/// A triangular matrix needs no factorisation (its own diagonal), and one that is exactly
/// symmetric with a positive diagonal is tried by Cholesky first (`prod(L_ii^2)` if it is
/// positive definite), as in [`Solve`].
///
/// Rules (Giles 2008, 2.2): `d det A = det A tr(A^-1 dA)`, `Ā = ct det A A^-T`. At a singular
/// matrix the derivative exists (the cofactor matrix) but these rules need `A^-1`: both
/// return [`Error::Singular`] there.
///
/// ```
/// use perturb::tensor::{ops::Det, Op, Tensor};
/// let a = Tensor::from_vec(vec![0.0_f64, 2.0, 3.0, 1.0], &[2, 2]).unwrap();
/// assert_eq!(Det.eval(&[&a]).unwrap().to_vec(), vec![-6.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Det;

impl Op for Det {
    fn name(&self) -> &'static str {
        "det"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("det", inputs)?;
        let (data, batch) = per_factor("det", a, [T::zero()], |d, odd| {
            let p = scaled_product(d);
            [if odd { -p } else { p }]
        })?;
        Ok(Tensor::from_parts(data, batch))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a] = inputs else { return None };
        square("det", a).ok().map(|(batch, _)| batch)
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        t: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        t[0].map(|da| trace_of_solve("det", inputs[0], da)?.try_mul(output))
            .transpose()
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let a_inv_t = inverse_transpose("det", inputs[0])?;
        let weight = per_matrix(&ct.try_mul(output)?)?;
        Ok(vec![Some(weight.try_mul(&a_inv_t)?)])
    }

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// The determinant of each matrix of a stack `[.., n, n]` (the [`Det`] operation):
/// `[..]`. A singular matrix gives exactly 0 where LU meets a zero pivot; its derivative there
/// is [`Error::Singular`] (the rule needs `A^-1`). For large matrices, whose determinant
/// overflows, use [`try_slogdet`].
///
/// ```
/// use perturb::tensor::{grad, linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// assert!((linalg::try_det(&a).unwrap().to_vec()[0] + 2.0).abs() < 1e-15);
/// // d det A / dA = det A A^-T = [[4, -3], [-2, 1]], the cofactors.
/// let g = grad(|a| Ok(linalg::try_det(a)?.sum_all()), &a).unwrap();
/// assert!(g.all_close(&Tensor::from_vec(vec![4.0, -3.0, -2.0, 1.0], &[2, 2]).unwrap(), 1e-14));
/// assert!(linalg::try_det(&Tensor::<f64>::zeros(&[2, 3])).is_err());
/// ```
pub fn try_det<A: Array>(a: &A) -> Result<A, Error> {
    A::apply(&Det, &[a])
}

/// See [`try_det`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let a = Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 3.0], &[2, 2]).unwrap();
/// assert_eq!(linalg::det(&a).to_vec(), vec![6.0]);
/// ```
#[track_caller]
pub fn det<A: Array>(a: &A) -> A {
    or_panic(try_det(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::ops::linalg::Dense;

    /// Diagonally dominant with a positive diagonal: positive definite.
    const SPD: [f64; 9] = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
    /// Symmetric with a positive diagonal, but indefinite (its determinant is -6.25).
    const INDEFINITE: [f64; 9] = [1.0, 2.0, 0.0, 2.0, 1.0, 0.5, 0.0, 0.5, 2.0];
    /// SPD with one entry above the diagonal changed.
    const NOT_SYMMETRIC: [f64; 9] = [4.0, 2.5, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
    /// SPD's lower and upper triangles.
    const LOWER: [f64; 9] = [4.0, 0.0, 0.0, 2.0, 5.0, 0.0, 0.4, 1.0, 3.0];
    const UPPER: [f64; 9] = [4.0, 2.0, 0.4, 0.0, 5.0, 1.0, 0.0, 0.0, 3.0];

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() < 1e-13 * (1.0 + y.abs()))
    }

    #[test]
    fn each_matrix_gets_the_factorisation_mldivide_would_choose() {
        assert!(matches!(Factor::new(&SPD, 3), Factor::Cholesky(_)));
        // Cholesky tried and failed: the fallback.
        assert_eq!(f64::cholesky(&INDEFINITE, 3), Err(1));
        assert!(matches!(Factor::new(&INDEFINITE, 3), Factor::Lu));
        assert!(matches!(Factor::new(&NOT_SYMMETRIC, 3), Factor::Lu));
        let negative: Vec<f64> = SPD.iter().map(|v| -v).collect();
        assert!(matches!(Factor::new(&negative, 3), Factor::Lu));
        assert!(matches!(Factor::new(&[f64::NAN; 4], 2), Factor::Lu));
        let triangular = |a: &[f64]| match Factor::new(a, 3) {
            Factor::Triangular { lower } => Some(lower),
            _ => None,
        };
        assert_eq!(triangular(&LOWER), Some(true));
        assert_eq!(triangular(&UPPER), Some(false));
    }

    /// Each path against LU run directly: the solves (both orientations) and the determinant.
    #[test]
    fn every_path_gives_lu_s_solves_and_determinants() {
        let b = [1.0, -2.0, 0.5, 3.0, 0.0, 1.0];
        let det = |(pivots, odd): (Vec<f64>, bool)| {
            pivots.iter().product::<f64>() * if odd { -1.0 } else { 1.0 }
        };
        for a in [SPD, INDEFINITE, NOT_SYMMETRIC, LOWER, UPPER] {
            let f = Factor::new(&a, 3);
            for transpose in [false, true] {
                let x = f.solve(&a, 3, &b, 2, transpose).unwrap();
                let lu = f64::lu_solve(&a, 3, &b, 2, transpose).unwrap();
                assert!(close(&x, &lu), "{a:?} {transpose}: {x:?} {lu:?}");
            }
            let (ours, lu) = (det(f.pivots(&a, 3)), det(f64::lu_diagonal(&a, 3)));
            assert!(close(&[ours], &[lu]), "{a:?}: {ours} {lu}");
        }
    }

    #[test]
    fn singular_matrices_stay_singular() {
        // Symmetric, positive diagonal, singular: Cholesky fails, LU meets a zero pivot.
        let a = [1.0, 1.0, 1.0, 1.0];
        let f = Factor::new(&a, 2);
        assert!(matches!(f, Factor::Lu));
        assert_eq!(f.solve(&a, 2, &[1.0, 1.0], 1, false), Err(1));
        assert!(f.pivots(&a, 2).0.contains(&0.0));
        // Triangular with a zero on the diagonal.
        let a = [1.0, 0.0, 3.0, 0.0];
        let f = Factor::new(&a, 2);
        assert!(matches!(f, Factor::Triangular { lower: true }));
        assert_eq!(f.solve(&a, 2, &[1.0, 1.0], 1, true), Err(1));
        assert_eq!(f.pivots(&a, 2), (vec![1.0, 0.0], false));
    }
}
