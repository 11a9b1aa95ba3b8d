//! General square matrices through the LU decomposition: `solve`, `inv`, `det`, `slogdet`.
//!
//! The rules are those of Giles 2008, "An extended collection of matrix derivative results for
//! forward and reverse mode algorithmic differentiation" (section 2.2): for `X = A^-1 B`,
//! `dX = A^-1 (dB - dA X)`, `B̄ = A^-T X̄`, `Ā = -B̄ X^T`; for the determinant,
//! `d det A = det A tr(A^-1 dA)` and `Ā = ct det A A^-T`. Each is written with [`Solve`]
//! itself and other [`Array`] operations, so it is differentiable again.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::{batched, kernels, Array, Element, Op, Tensor, VjpReads};

/// Work (about `n^3` multiply-adds per member) from which a batch's members run on rayon's
/// pool.
const PARALLEL_WORK: usize = 1 << 16;

/// The members `0..count` of a batch, each computed by `f` into a row-major block, joined in
/// order: in parallel when there are several and `count * work` is large. The first failing
/// member's error (in index order) is returned.
pub(super) fn each_member<T: Send>(
    count: usize,
    work: usize,
    f: impl Fn(usize) -> Result<Vec<T>, Error> + Sync,
) -> Result<Vec<T>, Error> {
    let blocks: Vec<Result<Vec<T>, Error>> =
        if count > 1 && count.saturating_mul(work) >= PARALLEL_WORK {
            (0..count).into_par_iter().map(&f).collect()
        } else {
            (0..count).map(&f).collect()
        };
    let mut out = Vec::new();
    for block in blocks {
        out.extend(block?);
    }
    Ok(out)
}

/// The index along the leading axes `batch` of member `flat` (row-major).
pub(super) fn member_index(batch: &[usize], mut flat: usize) -> Vec<usize> {
    let mut index = vec![0; batch.len()];
    for (slot, &len) in index.iter_mut().zip(batch).rev() {
        *slot = flat % len.max(1);
        flat /= len.max(1);
    }
    index
}

/// The leading axes and the order of a stack of square matrices `[.., n, n]`, or an error
/// naming `op` and the shape.
pub(super) fn square(op: &'static str, shape: &[usize]) -> Result<(Vec<usize>, usize), Error> {
    match shape {
        [batch @ .., r, c] if r == c => Ok((batch.to_vec(), *r)),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!("needs square matrices [.., n, n], got shape {shape:?}"),
        }),
    }
}

/// The `n x n` identity.
pub(super) fn identity<T: Element>(n: usize) -> Tensor<T> {
    let mut data = vec![T::zero(); n * n];
    for i in 0..n {
        data[i * n + i] = T::one();
    }
    Tensor::from_parts(data, vec![n, n])
}

/// The trace of each matrix of a stack `[.., n, n]`: `[..]`.
pub(super) fn trace<A: Array>(x: &A) -> Result<A, Error> {
    let r = x.shape().len();
    let eye = x.constant_like(&identity(x.shape()[r - 1]));
    x.try_mul(&eye)?.try_sum_axes(&[r - 2, r - 1], false)
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
    let n = a.shape()[a.shape().len() - 1];
    let eye = a.constant_like(&identity(n));
    A::apply(&Solve { transpose: true }, &[a, &eye]).map_err(|e| renamed(op, e))
}

/// `tr(A^-1 dA)`, the tangent of `ln |det A|`, the error naming `op`.
fn trace_of_solve<A: Array>(op: &'static str, a: &A, da: &A) -> Result<A, Error> {
    let s = A::apply(&Solve::default(), &[a, da]).map_err(|e| renamed(op, e))?;
    trace(&s)
}

// ---- solve -------------------------------------------------------------------------------------

/// `X` with `op(A) X = B` for a stack of square matrices `A` `[.., n, n]` and right-hand sides
/// `B` `[.., n, k]`, the leading axes broadcast; `op(A)` is `A^T` when `transpose` is set. LU
/// with partial pivoting (faer), one member at a time, in parallel for large batches.
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
            let singular = |detail: String| Error::Singular {
                op: "solve",
                member: member_index(&batch, i),
                detail,
            };
            let a_i = &ad[i * n * n..(i + 1) * n * n];
            let b_i = &bd[i * n * k..(i + 1) * n * k];
            let x = T::lu_solve(a_i, n, b_i, k, self.transpose)
                .map_err(|p| singular(format!("pivot {p} of its LU factorisation is zero")))?;
            if x.iter().any(|v| !v.is_finite()) {
                return Err(singular(
                    "the solution is not finite (the matrix is singular to working precision, \
                     or an input is not finite)"
                        .to_string(),
                ));
            }
            Ok(x)
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
/// stack of vectors `[.., n]` when it has one axis fewer than `a`, else a stack of matrices
/// `[.., n, k]` (several right-hand sides); the leading axes broadcast.
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
/// ```
pub fn try_solve<A: Array>(a: &A, b: &A) -> Result<A, Error> {
    let vector = b.shape().len() + 1 == a.shape().len();
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

/// The inverse of each matrix of a stack `[.., n, n]`: [`Solve`] with the identity as the
/// right-hand side, so its JVP is `-A^-1 dA A^-1` (Giles 2008, 2.2). A singular matrix is
/// [`Error::Singular`] naming the member.
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![4.0_f64, 7.0, 2.0, 6.0], &[2, 2]).unwrap();
/// let inv = linalg::try_inv(&a).unwrap();
/// assert!(inv.all_close(&Tensor::from_vec(vec![0.6, -0.7, -0.2, 0.4], &[2, 2]).unwrap(), 1e-14));
/// assert!(linalg::try_inv(&Tensor::<f64>::zeros(&[2, 2])).is_err());
/// ```
pub fn try_inv<A: Array>(a: &A) -> Result<A, Error> {
    let (_, n) = square("inv", a.shape())?;
    let eye = a.constant_like(&identity(n));
    A::apply(&Solve::default(), &[a, &eye]).map_err(|e| renamed("inv", e))
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

/// Runs `f` on the diagonal of `U` and the permutation's parity of each member's LU
/// decomposition, or gives `singular` for a member with a zero pivot (the entries of `U`
/// after it are not meaningful, NaN for a zero column): one value per matrix of the stack
/// `[.., n, n]`.
fn per_lu<T: Element>(
    op: &'static str,
    a: &Tensor<T>,
    singular: T,
    f: impl Fn(&[T], bool) -> T + Sync,
) -> Result<Tensor<T>, Error> {
    let (batch, n) = square(op, a.shape())?;
    let count = batch.iter().product();
    let data = each_member(count, n * n * n, |i| {
        let (diagonal, odd) = T::lu_diagonal(&a.as_slice()[i * n * n..(i + 1) * n * n], n);
        Ok(vec![if diagonal.contains(&T::zero()) {
            singular
        } else {
            f(&diagonal, odd)
        }])
    })?;
    Ok(Tensor::from_parts(data, batch))
}

/// `ln |det A|` for each matrix of a stack `[.., n, n]`, by LU: the sum of the logarithms of
/// `|U_ii|`; `-inf` for a singular matrix (a zero pivot). The value half of [`try_slogdet`].
///
/// Rules (Giles 2008, 2.2): the tangent is `tr(A^-1 dA)`, the cotangent `ct A^-T`. At a
/// singular matrix `ln |det|` has a pole, and both rules return [`Error::Singular`].
///
/// ```
/// use perturb::tensor::{ops::LogAbsDet, Op, Tensor};
/// let a = Tensor::from_vec(vec![0.0_f64, 2.0, -3.0, 1.0], &[2, 2]).unwrap();
/// assert!((LogAbsDet.eval(&[&a]).unwrap().to_vec()[0] - 6.0_f64.ln()).abs() < 1e-15);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogAbsDet;

impl Op for LogAbsDet {
    fn name(&self) -> &'static str {
        "slogdet"
    }

    const VJP_READS: VjpReads = VjpReads::INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("slogdet", inputs)?;
        per_lu("slogdet", a, T::neg_infinity(), |d, _| {
            d.iter().map(|u| u.abs().ln()).sum()
        })
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a] = inputs else { return None };
        square("slogdet", a).ok().map(|(batch, _)| batch)
    }

    fn jvp<A: Array>(&self, inputs: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|da| trace_of_solve("slogdet", inputs[0], da))
            .transpose()
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let a_inv_t = inverse_transpose("slogdet", inputs[0])?;
        Ok(vec![Some(per_matrix(ct)?.try_mul(&a_inv_t)?)])
    }

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        A::apply(self, inputs)
    }
}

/// The sign and the logarithm of the absolute value of the determinant of each matrix of a
/// stack `[.., n, n]`, as `jnp.linalg.slogdet`: `det A = sign exp(logabsdet)`, with no
/// overflow for large matrices.
///
/// The sign (1, -1, or 0) is a plain tensor, computed from `a`'s plain value
/// ([`Array::primal`]; for a [`Batched`](crate::tensor::Batched) stack it has the stack's axis
/// first): it is not differentiable (piecewise constant). It costs a second LU
/// decomposition.
/// `logabsdet` is the [`LogAbsDet`] operation, differentiable at every order:
/// `d logabsdet = tr(A^-1 dA)`, so its gradient is `A^-T`.
///
/// A singular matrix (a zero pivot in LU) is not an error, as in numpy: it gives sign 0 and
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
    let logabsdet = A::apply(&LogAbsDet, &[a])?;
    let sign = per_lu("slogdet", &a.primal(), A::elem(0.0), |d, odd| {
        let s: A::Elem = d.iter().map(|&u| num_traits::Float::signum(u)).product();
        if odd {
            -s
        } else {
            s
        }
    })?;
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
        per_lu("det", a, T::zero(), |d, odd| {
            let p: T = d.iter().copied().product();
            if odd {
                -p
            } else {
                p
            }
        })
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
    fn batch<A: Array>(&self, inputs: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        A::apply(self, inputs)
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
