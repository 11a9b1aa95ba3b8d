//! The reduced QR decomposition.
//!
//! Rule from Walter and Lehmann 2018, "Algorithmic differentiation of linear algebra functions
//! with application in optimum experimental design (extended version)", section 3.3, in the
//! form of JAX's `qr_jvp_rule` (also Seeger et al. 2017, "Auto-differentiating linear
//! algebra"): with `X = dA R^-1`, `Y = Q^T X` and `Ω = tril(Y, -1) - tril(Y, -1)^T`,
//! `dQ = Q (Ω - Y) + X` and `dR = (Y - Ω) R`.

use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::batched;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

use super::lu::Solve;
use super::triangular::each_member;

/// The reduced QR decomposition `A = Q R` of each matrix of a stack `[.., m, n]` with
/// `m >= n`, packed as one `[.., m + n, n]` array: rows `0..m` hold `Q` (`m x n`, orthonormal
/// columns), rows `m..m + n` hold `R` (`n x n`, upper triangular), as faer computes them
/// (Householder reflections; the signs of `R`'s diagonal are faer's). [`try_qr`] splits it.
///
/// JVP (Walter and Lehmann 2018, 3.3; JAX's `qr_jvp_rule`): with `X = dA R^-1`, `Y = Q^T X`
/// and the skew-symmetric `Ω = tril(Y, -1) - tril(Y, -1)^T`, `dQ = Q (Ω - Y) + X` and
/// `dR = (Y - Ω) R`. It needs `R` invertible (`A` of full column rank): otherwise it is
/// [`Error::Singular`]. The VJP is its transpose,
/// `Ā = (Q̄ + Q (tril(N - N^T, -1) - N)) R^-T` with `N = Q^T Q̄ - R̄ R^T`.
///
/// ```
/// use perturb::tensor::{ops::Qr, Op, Tensor};
/// let a = Tensor::from_vec(vec![3.0_f64, 0.0, 4.0, 5.0], &[2, 2]).unwrap();
/// let packed = Qr.eval(&[&a]).unwrap();
/// assert_eq!(packed.shape(), &[4, 2]);
/// assert!((packed.to_vec()[4].abs() - 5.0).abs() < 1e-14); // |R_00| = |A's first column|
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Qr;

/// The leading axes, `m` and `n` of a stack of matrices with `m >= n`, or an error.
fn tall(shape: &[usize]) -> Result<(Vec<usize>, usize, usize), Error> {
    match shape {
        [batch @ .., m, n] if m >= n => Ok((batch.to_vec(), *m, *n)),
        _ => Err(Error::InvalidArgument {
            op: "qr",
            reason: format!(
                "needs matrices [.., m, n] with m >= n (the reduced QR of a tall or square \
                 matrix), got shape {shape:?}"
            ),
        }),
    }
}

/// `Q` `[.., m, n]` and `R` `[.., n, n]` of a packed result.
fn unpack<A: Array>(packed: &A) -> Result<(A, A), Error> {
    let r = packed.shape().len();
    let n = packed.shape()[r - 1];
    let m = packed.shape()[r - 2] - n;
    Ok((
        packed.try_narrow(r - 2, 0, m)?,
        packed.try_narrow(r - 2, m, n)?,
    ))
}

/// `[n, n]` with ones strictly below the diagonal.
fn strictly_lower<T: Element>(n: usize) -> Tensor<T> {
    let data = (0..n * n)
        .map(|ij| if ij % n < ij / n { T::one() } else { T::zero() })
        .collect();
    Tensor::from_parts(data, vec![n, n])
}

impl Op for Qr {
    fn name(&self) -> &'static str {
        "qr"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let a = super::super::unary("qr", inputs)?;
        let (batch, m, n) = tall(a.shape())?;
        let out: Vec<usize> = batch.iter().copied().chain([m + n, n]).collect();
        if out.contains(&0) {
            return Ok(Tensor::from_parts(Vec::new(), out));
        }
        let count = batch.iter().product();
        let data = each_member(count, m * n * n, |i| {
            let (q, r) = T::qr(&a.as_slice()[i * m * n..(i + 1) * m * n], m, n);
            Ok(q.into_iter().chain(r).collect())
        })?;
        Ok(Tensor::from_parts(data, out))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a] = inputs else { return None };
        let (batch, m, n) = tall(a).ok()?;
        Some(batch.into_iter().chain([m + n, n]).collect())
    }

    fn jvp<A: Array>(
        &self,
        _: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let Some(da) = tangents[0] else {
            return Ok(None);
        };
        let (q, r) = unpack(output)?;
        let n = r.shape()[r.shape().len() - 1];
        let x = times_r_inverse(da, &r, false)?;
        let y = q.transpose().try_matmul(&x)?;
        let low = y.try_mul(&y.constant_like(&strictly_lower(n)))?;
        let omega = low.try_sub(&low.transpose())?;
        let dq = q.try_matmul(&omega.try_sub(&y)?)?.try_add(&x)?;
        let dr = y.try_sub(&omega)?.try_matmul(&r)?;
        let axis = output.shape().len() - 2;
        A::try_concat(&[&dq, &dr], axis).map(Some)
    }

    /// The JVP transposed: with `N = Q^T Q̄ - R̄ R^T`,
    /// `Ā = (Q̄ + Q (tril(N - N^T, -1) - N)) R^-T`.
    fn vjp<A: Array>(
        &self,
        _: &[&A],
        output: &A,
        ct: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (q, r) = unpack(output)?;
        let (ct_q, ct_r) = unpack(ct)?;
        let n = r.shape()[r.shape().len() - 1];
        let m = q
            .transpose()
            .try_matmul(&ct_q)?
            .try_sub(&ct_r.try_matmul(&r.transpose())?)?;
        let skew = m.try_sub(&m.transpose())?;
        let p = skew
            .try_mul(&skew.constant_like(&strictly_lower(n)))?
            .try_sub(&m)?;
        let z = ct_q.try_add(&q.try_matmul(&p)?)?;
        Ok(vec![Some(times_r_inverse(&z, &r, true)?)])
    }

    const VJP_READS: VjpReads = VjpReads::OUTPUT;

    /// The stack is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// `x R^-1` (`x R^-T` when `transpose`), as `(R^-T x^T)^T` by [`Solve`]; a singular `R` (`A`
/// rank deficient) is [`Error::Singular`] naming `qr`.
fn times_r_inverse<A: Array>(x: &A, r: &A, transpose: bool) -> Result<A, Error> {
    let solve = Solve {
        transpose: !transpose,
    };
    let solved = A::apply(&solve, &[r, &x.transpose()]).map_err(|e| match e {
        Error::Singular { member, detail, .. } => Error::Singular {
            op: "qr",
            member,
            detail: format!("R is singular (A is rank deficient): {detail}"),
        },
        other => other,
    })?;
    Ok(solved.transpose())
}

/// The reduced QR decomposition `A = Q R` of each matrix of a stack `[.., m, n]`, `m >= n`
/// (an [`Error::InvalidArgument`] otherwise), as `jnp.linalg.qr(a, mode="reduced")`: `Q`
/// `[.., m, n]` with orthonormal columns and `R` `[.., n, n]` upper triangular. The signs are
/// faer's (`R`'s diagonal may be negative). Differentiable at every order where `A` has full
/// column rank; see [`Qr`] for the rule.
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]).unwrap();
/// let (q, r) = linalg::try_qr(&a).unwrap();
/// assert_eq!((q.shape(), r.shape()), (&[3, 2][..], &[2, 2][..]));
/// assert!(q.matmul(&r).all_close(&a, 1e-14));
/// let eye = Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0], &[2, 2]).unwrap();
/// assert!(q.transpose().matmul(&q).all_close(&eye, 1e-14));
/// assert!(linalg::try_qr(&Tensor::<f64>::zeros(&[2, 3])).is_err());
/// ```
pub fn try_qr<A: Array>(a: &A) -> Result<(A, A), Error> {
    unpack(&A::apply(&Qr, &[a])?)
}

/// See [`try_qr`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let (q, r) = linalg::qr(&Tensor::from_vec(vec![2.0_f64, 0.0, 0.0, 3.0], &[2, 2]).unwrap());
/// assert_eq!(q.to_vec().iter().map(|v| v.abs()).collect::<Vec<_>>(), vec![1.0, 0.0, 0.0, 1.0]);
/// assert_eq!(r.to_vec().iter().map(|v| v.abs()).collect::<Vec<_>>(), vec![2.0, 0.0, 0.0, 3.0]);
/// ```
#[track_caller]
pub fn qr<A: Array>(a: &A) -> (A, A) {
    or_panic(try_qr(a))
}
