//! The Cholesky factorisation and the solve with its factor.

use super::triangular::{
    for_each_member, masked, product, solve_shape, square, transposed, unravel, TriangularSolve,
};
use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::{batched, buffers};
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
///   `Ā = Φ(G + Gᵀ)` with `G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹`, no inverse. Its value is computed by
///   Murray's blocked reverse algorithm (section 4): level-3 products on blocks of columns,
///   about twice the factorisation's work, where the symbolic form takes a product and two
///   triangular solves of `n` columns (about twelve times). The rule's own derivatives are the
///   symbolic form's, in differentiable operations.
///
/// The JVP is written with [`TriangularSolve`], products and masks, and so are the VJP's
/// derivatives: every order works. A matrix that is not positive definite (a pivot that is
/// not positive, or NaN) is an [`Error::NotPositiveDefinite`] naming the member of the batch
/// and the pivot.
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
        let (_, n) = square("cholesky", a.shape())?;
        let batch = &a.shape()[..a.ndim() - 2];
        let data = a.as_slice();
        let not_positive_definite = |(member, pivot)| Error::NotPositiveDefinite {
            op: "cholesky",
            member: unravel(member, batch),
            pivot,
        };
        if n > 0 && data.len() == n * n {
            // One matrix: the factor's buffer is the result, not copied into another.
            let l = T::cholesky(data, n).map_err(|pivot| not_positive_definite((0, pivot)))?;
            return Ok(Tensor::from_parts(l, a.shape().to_vec()));
        }
        let mut out = buffers::filled(data.len(), T::zero());
        for_each_member(&mut out, n * n, n * n * n, |i, l| {
            l.copy_from_slice(&T::cholesky(&data[i * n * n..(i + 1) * n * n], n)?);
            Ok(())
        })
        .map_err(not_positive_definite)?;
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
        tangents[0].map(|da| tangent(output, da)).transpose()
    }

    fn vjp<A: Array>(
        &self,
        _: &[&A],
        output: &A,
        cotangent: &A,
        _: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(
            &CholeskyAdjoint,
            &[output, cotangent],
        )?)])
    }

    /// The stack's axis is one more leading axis: one call for the whole stack.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// `dL = L Φ(L⁻¹ S L⁻ᵀ)` for `S = tril(dA) + tril(dA, -1)ᵀ`: the JVP of [`Cholesky`].
fn tangent<A: Array>(l: &A, da: &A) -> Result<A, Error> {
    // S is symmetric, so L⁻¹ S L⁻ᵀ = L⁻¹ (L⁻¹ S)ᵀ.
    let s = masked(da, true, 1.0, 1.0)?.try_add(&transposed(&masked(da, true, 0.0, 1.0)?)?)?;
    let y = A::apply(&LOWER, &[l, &s])?;
    let m = A::apply(&LOWER, &[l, &transposed(&y)?])?;
    product(l, false, &phi(&m)?, false)
}

/// Murray's symbolic reverse rule `Ā = Φ(G + Gᵀ)`, `G = L⁻ᵀ Φ(Lᵀ L̄) L⁻¹`, in differentiable
/// operations; returns `Y = L⁻ᵀ Φ(Lᵀ L̄)` and `G`.
fn symbolic_parts<A: Array>(l: &A, l_bar: &A) -> Result<(A, A), Error> {
    let p = phi(&product(l, true, l_bar, false)?)?;
    let y = A::apply(&LOWER_T, &[l, &p])?;
    let g = transposed(&A::apply(&LOWER_T, &[l, &transposed(&y)?])?)?;
    Ok((y, g))
}

/// The VJP of [`Cholesky`]: `Ā` from `L` and `L̄` (inputs in that order), the lower triangle
/// (the upper is zero: it is not read). Its value runs Murray's blocked reverse algorithm
/// (Murray 2016, section 4, "blocked"), level-3 products on blocks of 48 columns, about
/// `2n³/3` flops (twice the factorisation); its JVP is the differential of the symbolic rule (linear in `L̄`, so
/// that part is the operation again), so every order works.
#[derive(Clone, Copy, Debug)]
struct CholeskyAdjoint;

/// Columns per block of [`cholesky_adjoint`].
const BLOCK: usize = 48;

/// `Ā` from `L` and `L̄` for one `n x n` matrix, row-major: Murray's `chol_blocked_rev`,
/// `abar` holding `tril(L̄)` on entry and `Ā` on exit.
fn cholesky_adjoint<T: Element>(l: &[T], abar: &mut [T], n: usize) {
    let mut end = n;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let (nb, m) = (end - start, n - end);
        // The block's columns are start..end; C = L[end.., start..end], R = L[start..end, ..start],
        // B = L[end.., ..start], D = L[start..end, start..end], and the same blocks of Ā.
        let mut c_bar_t = vec![T::zero(); nb * m];
        if m > 0 {
            // C̄ ← C̄ D⁻¹, as Dᵀ (C̄ D⁻¹)ᵀ = C̄ᵀ.
            for i in 0..m {
                for j in 0..nb {
                    c_bar_t[j * m + i] = abar[(end + i) * n + start + j];
                }
            }
            let d: Vec<T> = (0..nb * nb)
                .map(|pq| l[(start + pq / nb) * n + start + pq % nb])
                .collect();
            let shape = super::backend::Triangle {
                lower: true,
                transpose: true,
                unit_diagonal: false,
            };
            c_bar_t = T::triangular_solve(&d, nb, &c_bar_t, m, shape);
            for i in 0..m {
                for j in 0..nb {
                    abar[(end + i) * n + start + j] = c_bar_t[j * m + i];
                }
            }
            let minus = -T::one();
            // B̄ -= C̄ R.
            if start > 0 {
                T::matmul_into(
                    (m, nb, start),
                    minus,
                    &c_bar_t,
                    (1, m),
                    &l[start * n..],
                    (n, 1),
                    true,
                    &mut abar[end * n..],
                    n,
                );
            }
            // D̄ -= tril(C̄ᵀ C).
            let mut ctc = vec![T::zero(); nb * nb];
            T::matmul_into(
                (nb, m, nb),
                T::one(),
                &c_bar_t,
                (m, 1),
                &l[end * n + start..],
                (n, 1),
                false,
                &mut ctc,
                nb,
            );
            for p in 0..nb {
                for q in 0..=p {
                    abar[(start + p) * n + start + q] -= ctc[p * nb + q];
                }
            }
            // R̄ -= C̄ᵀ B.
            if start > 0 {
                T::matmul_into(
                    (nb, m, start),
                    minus,
                    &c_bar_t,
                    (m, 1),
                    &l[end * n..],
                    (n, 1),
                    true,
                    &mut abar[start * n..],
                    n,
                );
            }
        }
        unblocked_adjoint(l, abar, n, start, end);
        // R̄ -= (D̄ + D̄ᵀ) R.
        if start > 0 {
            let sym: Vec<T> = (0..nb * nb)
                .map(|pq| {
                    let (p, q) = (pq / nb, pq % nb);
                    let lower = |p: usize, q: usize| abar[(start + p) * n + start + q];
                    (if p >= q { lower(p, q) } else { T::zero() })
                        + if q >= p { lower(q, p) } else { T::zero() }
                })
                .collect();
            T::matmul_into(
                (nb, nb, start),
                -T::one(),
                &sym,
                (nb, 1),
                &l[start * n..],
                (n, 1),
                true,
                &mut abar[start * n..],
                n,
            );
        }
        end = start;
    }
}

/// Murray's `chol_unblocked_rev` on the diagonal block `start..end` of `L` and `Ā` (row-major,
/// rows `n` apart), in place.
fn unblocked_adjoint<T: Element>(l: &[T], abar: &mut [T], n: usize, start: usize, end: usize) {
    let at = |p: usize, q: usize| (start + p) * n + start + q;
    let nb = end - start;
    for j in (0..nb).rev() {
        let d = l[at(j, j)];
        let mut d_bar = abar[at(j, j)];
        for i in j + 1..nb {
            d_bar -= l[at(i, j)] * abar[at(i, j)] / d;
        }
        d_bar /= d;
        for i in j + 1..nb {
            abar[at(i, j)] /= d;
        }
        for q in 0..j {
            let mut r_bar = abar[at(j, q)] - d_bar * l[at(j, q)];
            for i in j + 1..nb {
                r_bar -= abar[at(i, j)] * l[at(i, q)];
                abar[at(i, q)] -= abar[at(i, j)] * l[at(j, q)];
            }
            abar[at(j, q)] = r_bar;
        }
        abar[at(j, j)] = d_bar / (T::one() + T::one());
    }
}

impl Op for CholeskyAdjoint {
    fn name(&self) -> &'static str {
        "cholesky_adjoint"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [l, l_bar] = inputs else {
            return Err(Error::Arity {
                op: "cholesky_adjoint",
                expected: 2,
                found: inputs.len(),
            });
        };
        let (_, n) = square("cholesky_adjoint", l.shape())?;
        if l.shape() != l_bar.shape() {
            return Err(Error::ShapeMismatch {
                op: "cholesky_adjoint",
                lhs: l.shape().to_vec(),
                rhs: l_bar.shape().to_vec(),
            });
        }
        let (ld, bd) = (l.as_slice(), l_bar.as_slice());
        let mut out = buffers::filled(ld.len(), T::zero());
        let done = for_each_member(&mut out, n * n, n * n * n, |i, a_bar| {
            let base = i * n * n;
            for r in 0..n {
                a_bar[r * n..r * n + r + 1]
                    .copy_from_slice(&bd[base + r * n..base + r * n + r + 1]);
            }
            cholesky_adjoint(&ld[base..base + n * n], a_bar, n);
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err((_, never)) = done {
            match never {}
        }
        Ok(Tensor::from_parts(out, l.shape().to_vec()))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [l, l_bar] = inputs else { return None };
        (square("cholesky_adjoint", l).is_ok() && l == l_bar).then(|| l.to_vec())
    }

    /// Linear in `L̄`: that part is the operation on `dL̄`. In `L`, the differential of
    /// `Φ(G + Gᵀ)`: with `Y = L⁻ᵀ P`, `G = Y L⁻¹`, `dP = Φ(dLᵀ L̄)`,
    /// `dG = (L⁻ᵀ (dP - dLᵀ Y) - G dL) L⁻¹`.
    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (l, l_bar) = (inputs[0], inputs[1]);
        let from_bar = tangents[1].map(|t| A::apply(self, &[l, t])).transpose()?;
        let from_l = tangents[0]
            .map(|dl| {
                // Only the lower triangle of L is read.
                let dl = &masked(dl, true, 1.0, 1.0)?;
                let (y, g) = symbolic_parts(l, l_bar)?;
                let dp = phi(&product(dl, true, l_bar, false)?)?;
                let inner = dp.try_sub(&product(dl, true, &y, false)?)?;
                let z =
                    A::apply(&LOWER_T, &[l, &inner])?.try_sub(&product(&g, false, dl, false)?)?;
                let dg = transposed(&A::apply(&LOWER_T, &[l, &transposed(&z)?])?)?;
                phi(&dg.try_add(&transposed(&dg)?)?)
            })
            .transpose()?;
        super::super::sum_tangents([from_bar, from_l], l.shape())
    }

    /// The transpose of the JVP, written out (the JVP applies the operation itself, so the
    /// default transposition would recurse). With `V = Φ(W) + Φ(W)ᵀ` for the cotangent `W`,
    /// `U₁ = L⁻¹ V`, `U = U₁ L⁻ᵀ`: for `L̄`, the JVP of [`Cholesky`] along `W` (the map
    /// `L̄ ↦ Ā` is the Jacobian transposed); for `L`, `tril(L̄ Φ(U)ᵀ - Y U - (U₁ G)ᵀ)`.
    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (l, l_bar) = (inputs[0], inputs[1]);
        let for_l = if needed[0] {
            let w = phi(cotangent)?;
            let v = w.try_add(&transposed(&w)?)?;
            let u1 = A::apply(&LOWER, &[l, &v])?;
            let u = A::apply(&LOWER, &[l, &transposed(&u1)?])?;
            let (y, g) = symbolic_parts(l, l_bar)?;
            let sum = product(l_bar, false, &phi(&u)?, true)?
                .try_sub(&product(&y, false, &u, false)?)?
                .try_sub(&transposed(&product(&u1, false, &g, false)?)?)?;
            Some(masked(&sum, true, 1.0, 1.0)?)
        } else {
            None
        };
        let for_l_bar = needed[1].then(|| tangent(l, cotangent)).transpose()?;
        Ok(vec![for_l, for_l_bar])
    }

    /// The stack's axis is one more leading axis: one call for the whole stack.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let [l, l_bar] = inputs else {
            return batched::by_loop(self, inputs, stacked, size);
        };
        let full = |x: &A, s: bool| {
            if s {
                Ok(x.clone())
            } else {
                let mut shape = vec![size];
                shape.extend_from_slice(x.shape());
                x.try_unsqueeze(0)?.try_broadcast_to(&shape)
            }
        };
        A::apply(self, &[&full(l, stacked[0])?, &full(l_bar, stacked[1])?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded generator of values in `[-1, 1)`.
    fn generator(mut seed: u64) -> impl FnMut() -> f64 {
        move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    fn random(n: usize, next: &mut impl FnMut() -> f64) -> Tensor<f64> {
        Tensor::from_parts((0..n * n).map(|_| next()).collect(), vec![n, n])
    }

    /// The Cholesky factor of `B Bᵀ + n I`, `B` random.
    fn factor(n: usize, next: &mut impl FnMut() -> f64) -> Tensor<f64> {
        let b = random(n, next);
        let mut a = b.matmul(&b.transpose()).to_vec();
        for i in 0..n {
            a[i * n + i] += n as f64;
        }
        Cholesky
            .eval(&[&Tensor::from_parts(a, vec![n, n])])
            .unwrap()
    }

    fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
        a.as_slice()
            .iter()
            .zip(b.as_slice())
            .map(|(x, y)| x * y)
            .sum()
    }

    /// The blocked algorithm against the symbolic rule, across block boundaries.
    #[test]
    fn the_blocked_adjoint_matches_the_symbolic_rule() {
        let mut next = generator(7);
        for n in [1, 2, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 7] {
            let (l, l_bar) = (factor(n, &mut next), random(n, &mut next));
            let blocked = CholeskyAdjoint.eval(&[&l, &l_bar]).unwrap();
            let (_, g) = symbolic_parts(&l, &l_bar).unwrap();
            let symbolic = phi(&g.add(&g.transpose())).unwrap();
            assert!(blocked.all_close(&symbolic, 1e-12), "n = {n}");
        }
    }

    /// The adjoint's JVP against central differences of its value, and its VJP against its
    /// JVP: the rules reverse over reverse runs.
    #[test]
    fn the_adjoints_rules_match_central_differences_and_each_other() {
        let mut next = generator(11);
        for n in [1, 3, 6] {
            let (l, l_bar) = (factor(n, &mut next), random(n, &mut next));
            let (dl, dl_bar) = (random(n, &mut next), random(n, &mut next));
            let w = random(n, &mut next);
            let out = CholeskyAdjoint.eval(&[&l, &l_bar]).unwrap();
            let jv = CholeskyAdjoint
                .jvp(&[&l, &l_bar], &out, &[Some(&dl), Some(&dl_bar)])
                .unwrap()
                .unwrap();
            let h = 1e-6;
            let at = |t: f64| {
                let l = l.add(&dl.scale(t));
                let l_bar = l_bar.add(&dl_bar.scale(t));
                CholeskyAdjoint.eval(&[&l, &l_bar]).unwrap()
            };
            let fd = at(h).sub(&at(-h)).scale(0.5 / h);
            assert!(jv.all_close(&fd, 1e-7), "n = {n}: {jv:?} vs {fd:?}");
            let cts = CholeskyAdjoint
                .vjp(&[&l, &l_bar], &out, &w, &[true, true])
                .unwrap();
            let (cl, cb) = (cts[0].as_ref().unwrap(), cts[1].as_ref().unwrap());
            let (forward, reverse) = (dot(&w, &jv), dot(cl, &dl) + dot(cb, &dl_bar));
            assert!(
                (forward - reverse).abs() < 1e-12 * (1.0 + forward.abs()),
                "n = {n}: {forward} vs {reverse}"
            );
        }
    }
}
