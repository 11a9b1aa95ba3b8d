//! The triangular solve `op(A)^-1 B`, and what the solves and factorisations of this folder share:
//! the shapes of a solve, the members of a batch, masks of a triangle, products with transposes.

use rayon::prelude::*;

use super::backend::Triangle;
use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::kernels;
use crate::tensor::{batched, buffers};
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

/// `x` with `op(T) x = b` for the triangle `T` of `a` that `lower` names, `op` the transpose
/// when `transpose`, the diagonal taken as ones (and not read) when `unit_diagonal`; entries
/// outside the triangle are not read. Batched as in JAX: `a` is `[.., n, n]`, `b` is `[.., n]`
/// (a vector: when `b` has one axis, or one axis fewer than `a`) or `[.., n, k]`, and the
/// leading axes broadcast.
///
/// Derivatives (Giles 2008, "An extended collection of matrix derivative results for forward and
/// reverse mode AD", section 2.2.3, with `T` in place of `A`): from `op(T) X = B`,
///
/// - JVP: `dX = op(T)^-1 (dB - op(dT) X)`, `dT` the tangent of `a` restricted to the triangle
///   read (its diagonal zero when `unit_diagonal`): one more solve of the same kind;
/// - VJP: `B̄ = op(T)^-T X̄` (the solve with `transpose` flipped), and `T̄ = -B̄ Xᵀ`
///   (`-X B̄ᵀ` when `transpose`) restricted to the triangle read.
///
/// A zero on a diagonal that is read is an [`Error::Singular`] naming the member of `a`'s batch
/// and the entry.
///
/// ```
/// use perturb::tensor::{ops::TriangularSolve, Op, Tensor};
/// // [[2, 0], [1, 4]] x = [2, 9]: x = [1, 2]. The 7 above the diagonal is not read.
/// let a = Tensor::from_vec(vec![2.0_f64, 7.0, 1.0, 4.0], &[2, 2]).unwrap();
/// let lower = TriangularSolve { lower: true, ..Default::default() };
/// let x = lower.eval(&[&a, &Tensor::vector(&[2.0, 9.0])]).unwrap();
/// assert_eq!(x.to_vec(), vec![1.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TriangularSolve {
    /// Read the lower triangle of `a` (else the upper).
    pub lower: bool,
    /// Solve with the transpose of the triangle.
    pub transpose: bool,
    /// Take the diagonal as ones, without reading it.
    pub unit_diagonal: bool,
}

/// `x` with `op(T) x = b` for the triangle `T` of `a` that `options` names: see
/// [`TriangularSolve`] for the options, the shapes (`b` a vector or a matrix of right-hand
/// sides, leading axes broadcast) and the derivatives. An error for shapes that do not fit
/// (naming both) or a zero on a diagonal that is read ([`Error::Singular`]).
///
/// ```
/// use perturb::tensor::{linalg, ops::TriangularSolve, Tensor};
/// // The upper triangle of [[2, 1], [5, 4]] transposed is [[2, 0], [1, 4]]: x = [1, 2].
/// let a = Tensor::from_vec(vec![2.0_f64, 1.0, 5.0, 4.0], &[2, 2]).unwrap();
/// let upper_t = TriangularSolve { lower: false, transpose: true, unit_diagonal: false };
/// let x = linalg::try_triangular_solve(&a, &Tensor::vector(&[2.0, 9.0]), upper_t).unwrap();
/// assert_eq!(x.to_vec(), vec![1.0, 2.0]);
/// let zero = Tensor::from_vec(vec![0.0_f64, 0.0, 1.0, 1.0], &[2, 2]).unwrap();
/// assert!(linalg::try_triangular_solve(&zero, &Tensor::vector(&[1.0, 1.0]), upper_t).is_err());
/// ```
pub fn try_triangular_solve<A: Array>(a: &A, b: &A, options: TriangularSolve) -> Result<A, Error> {
    A::apply(&options, &[a, b])
}

/// See [`try_triangular_solve`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, ops::TriangularSolve, Tensor};
/// // A stack of two lower triangles, one right-hand side each (b is [2, 2]: a vector each).
/// let a = Tensor::from_vec(vec![1.0_f64, 0.0, 1.0, 1.0, 2.0, 0.0, 0.0, 2.0], &[2, 2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![1.0, 3.0, 2.0, 4.0], &[2, 2]).unwrap();
/// let lower = TriangularSolve { lower: true, ..Default::default() };
/// assert_eq!(linalg::triangular_solve(&a, &b, lower).to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
/// ```
#[track_caller]
pub fn triangular_solve<A: Array>(a: &A, b: &A, options: TriangularSolve) -> A {
    or_panic(try_triangular_solve(a, b, options))
}

// ---- What the solves and factorisations share ----------------------------------------------

/// The shapes of a solve with a `[.., n, n]` matrix `a` and right-hand sides `b`.
pub(crate) struct SolveShape {
    /// The broadcast leading axes.
    pub batch: Vec<usize>,
    pub n: usize,
    /// Right-hand sides per member (1 for a vector).
    pub k: usize,
    /// `b` is a vector per member: one axis, or one axis fewer than `a` (JAX's rule).
    pub vector: bool,
    /// The result's shape: `batch` then `[n]` or `[n, k]`.
    pub out: Vec<usize>,
}

/// The shapes of `op(a)^-1 b` for the operation `op` (a name for errors), or an error naming
/// both shapes.
pub(crate) fn solve_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<SolveShape, Error> {
    let wrong = |why: &str| Error::InvalidArgument {
        op,
        reason: format!("{why} (a has shape {a:?}, b has shape {b:?})"),
    };
    let (_, n) =
        square(op, a).map_err(|_| wrong("a must be a square matrix or a stack of them"))?;
    if b.is_empty() {
        return Err(wrong("b must be a vector or a matrix, or a stack of them"));
    }
    let vector = b.len() == 1 || b.len() + 1 == a.len();
    let (rows, k, b_batch) = if vector {
        (b[b.len() - 1], 1, &b[..b.len() - 1])
    } else {
        (b[b.len() - 2], b[b.len() - 1], &b[..b.len() - 2])
    };
    if rows != n {
        return Err(wrong(&format!(
            "b has {rows} rows for a matrix of order {n}"
        )));
    }
    let batch = kernels::broadcast_shape(op, &a[..a.len() - 2], b_batch)
        .map_err(|_| wrong("the leading axes do not broadcast"))?;
    let mut out = batch.clone();
    out.push(n);
    if !vector {
        out.push(k);
    }
    element_count(op, &out)?;
    Ok(SolveShape {
        batch,
        n,
        k,
        vector,
        out,
    })
}

/// The leading axes and the order of a stack of square matrices `[.., n, n]`, or an error
/// naming `op` and the shape.
pub(crate) fn square(op: &'static str, shape: &[usize]) -> Result<(Vec<usize>, usize), Error> {
    match shape {
        [batch @ .., r, c] if r == c => Ok((batch.to_vec(), *r)),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!("needs square matrices [.., n, n], got shape {shape:?}"),
        }),
    }
}

/// The multi-index of flat position `flat` in `shape` (row-major).
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &len) in index.iter_mut().zip(shape).rev() {
        *slot = flat % len.max(1);
        flat /= len.max(1);
    }
    index
}

/// For each member of the broadcast batch `batch`, the flat index of the member of `own` (a
/// shape that broadcasts to `batch`) it reads.
fn member_offsets(batch: &[usize], own: &[usize]) -> Vec<usize> {
    let count: usize = batch.iter().product();
    let pad = batch.len() - own.len();
    (0..count)
        .map(|i| {
            let index = unravel(i, batch);
            own.iter().zip(&index[pad..]).fold(0, |flat, (&len, &at)| {
                flat * len + if len == 1 { 0 } else { at }
            })
        })
        .collect()
}

/// Work (about `n^3` multiply-adds per member) from which a batch's members run on rayon's
/// pool.
pub(crate) const PARALLEL_WORK: usize = 1 << 16;

/// The members `0..count` of a batch, each computed by `f` into a row-major block, joined in
/// order: in parallel when there are several and `count * work` is large. The first failing
/// member's error (in index order) is returned.
pub(crate) fn each_member<T: Send>(
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

/// Fills `out`, members of `size` elements each, by `f(member, its slice)`, on rayon's pool
/// when there are several members and `work` (about the flops of one) makes it pay. The error
/// of the first member that fails (the lowest index), with that index.
pub(crate) fn for_each_member<T: Element, E: Send>(
    out: &mut [T],
    size: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync + Send,
) -> Result<(), (usize, E)> {
    if size == 0 {
        return Ok(());
    }
    let count = out.len() / size;
    let run = |(i, chunk): (usize, &mut [T])| f(i, chunk).err().map(|e| (i, e));
    let first = if count > 1 && count.saturating_mul(work) >= PARALLEL_WORK {
        // rayon's collect keeps the members' order.
        let failures: Vec<(usize, E)> = out
            .par_chunks_mut(size)
            .enumerate()
            .filter_map(run)
            .collect();
        failures.into_iter().next()
    } else {
        out.chunks_mut(size).enumerate().find_map(run)
    };
    first.map_or(Ok(()), Err)
}

/// `x` (a `[.., n, n]` stack) with the triangle `lower` names scaled by `off`, its diagonal by
/// `diagonal`, the rest zero: the [`Masked`] operation.
pub(crate) fn masked<A: Array>(x: &A, lower: bool, diagonal: f64, off: f64) -> Result<A, Error> {
    A::apply(
        &Masked {
            lower,
            diagonal,
            off,
        },
        &[x],
    )
}

/// A triangle of each matrix of a `[.., n, n]` stack, scaled: `diagonal` times the diagonal,
/// `off` times the entries strictly inside the triangle `lower` names, zero elsewhere. One
/// pass into one buffer, where a product with a mask tensor built for it took three (the
/// Gaussian-process benchmark runs about ten of these at n = 500). Linear, and an element-wise
/// mask is its own transpose: the JVP is the operation on the tangent, the VJP on the
/// cotangent, so every order works.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Masked {
    pub lower: bool,
    pub diagonal: f64,
    pub off: f64,
}

impl Op for Masked {
    fn name(&self) -> &'static str {
        "masked"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = super::super::unary("masked", inputs)?;
        let n = match x.shape() {
            [.., r, c] if r == c => *c,
            shape => {
                return Err(Error::InvalidArgument {
                    op: "masked",
                    reason: format!("needs square matrices [.., n, n], got shape {shape:?}"),
                })
            }
        };
        let (d, o) = (
            super::super::elem::<T>(self.diagonal),
            super::super::elem::<T>(self.off),
        );
        let mut out = buffers::filled(x.len(), T::zero());
        if n > 0 {
            let rows = out.chunks_exact_mut(n).zip(x.as_slice().chunks_exact(n));
            for (r, (to, from)) in rows.enumerate() {
                let i = r % n;
                let inside = if self.lower { 0..i } else { i + 1..n };
                for (t, &f) in to[inside.clone()].iter_mut().zip(&from[inside]) {
                    *t = f * o;
                }
                to[i] = from[i] * d;
            }
        }
        Ok(Tensor::from_parts(out, x.shape().to_vec()))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        match inputs {
            [shape @ [.., r, c]] if r == c => Some(shape.to_vec()),
            _ => None,
        }
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| A::apply(self, &[t])).transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(self, &[ct])?)])
    }

    /// The stack's axis is one more leading axis.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        batched::matrix_stack(self, inputs, stacked, size)
    }
}

/// `x` summed over the axes it was broadcast along to reach `shape` ([`Array::try_sum_to`]),
/// or `x` itself, not a copy, where it already has that shape.
fn summed_to<A: Array>(x: A, shape: &[usize]) -> Result<A, Error> {
    if x.shape() == shape {
        Ok(x)
    } else {
        x.try_sum_to(shape)
    }
}

/// The matrix transpose (the last two axes swapped) of a stack of matrices.
pub(crate) fn transposed<A: Array>(x: &A) -> Result<A, Error> {
    let r = x.shape().len();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    x.try_permute(&perm)
}

/// `op(x) op(y)` for stacks of matrices, `op` the transpose where its flag is set: read through
/// strides for two matrices, an explicit transpose for stacks.
pub(crate) fn product<A: Array>(x: &A, tx: bool, y: &A, ty: bool) -> Result<A, Error> {
    if x.shape().len() == 2 && y.shape().len() == 2 {
        let op = super::MatMul {
            transpose_a: tx,
            transpose_b: ty,
        };
        return A::apply(&op, &[x, y]);
    }
    let flip = |z: &A, t: bool| if t { transposed(z) } else { Ok(z.clone()) };
    flip(x, tx)?.try_matmul(&flip(y, ty)?)
}

/// The batching rule of a solve `f(a, b)` whose right-hand side follows [`solve_shape`]'s
/// convention: the stack's axis becomes one more leading axis of both (an input that is not
/// stacked gets a leading axis of length 1, each gets axes of length 1 up to the common number
/// of leading axes, so that a vector stays a vector), and `f` runs once.
pub(crate) fn batch_solve<A: Array>(
    op: &'static str,
    inputs: &[&A],
    stacked: &[bool],
    f: impl Fn(&A, &A) -> Result<A, Error>,
) -> Result<A, Error> {
    let [a, b] = inputs else {
        return Err(Error::Arity {
            op,
            expected: 2,
            found: inputs.len(),
        });
    };
    let logical = |x: &A, s: bool| x.shape()[usize::from(s)..].to_vec();
    let (la, lb) = (logical(a, stacked[0]), logical(b, stacked[1]));
    let shape = solve_shape(op, &la, &lb)?;
    let (ra, rb) = (la.len() - 2, lb.len() - if shape.vector { 1 } else { 2 });
    let rank = ra.max(rb);
    let lift = |x: &A, s: bool, own: &[usize], leading: usize| {
        let size = if s { x.shape()[0] } else { 1 };
        let full: Vec<usize> = std::iter::once(size)
            .chain(std::iter::repeat(1).take(rank - leading))
            .chain(own.iter().copied())
            .collect();
        x.try_reshape(&full)
    };
    f(
        &lift(a, stacked[0], &la, ra)?,
        &lift(b, stacked[1], &lb, rb)?,
    )
}

// ---- The operation -------------------------------------------------------------------------

impl TriangularSolve {
    fn triangle(&self) -> Triangle {
        Triangle {
            lower: self.lower,
            transpose: self.transpose,
            unit_diagonal: self.unit_diagonal,
        }
    }

    /// An error for the first member of `a` with a zero on its diagonal.
    fn check_diagonal<T: Element>(a: &Tensor<T>, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        let batch = &a.shape()[..a.ndim() - 2];
        for (m, matrix) in a.as_slice().chunks(n * n).enumerate() {
            if let Some(i) = (0..n).find(|&i| matrix[i * n + i] == T::zero()) {
                return Err(Error::Singular {
                    op: "triangular_solve",
                    member: unravel(m, batch),
                    detail: format!("diagonal entry ({i}, {i}) is zero"),
                });
            }
        }
        Ok(())
    }

    /// `op(T) x` for a tangent `t` of the triangle (already masked): a product, a vector `x`
    /// taken as a column.
    fn apply_to<A: Array>(&self, t: &A, x: &A, vector: bool) -> Result<A, Error> {
        if !vector {
            return product(t, self.transpose, x, false);
        }
        let last = x.shape().len();
        let column = x.try_unsqueeze(last)?;
        product(t, self.transpose, &column, false)?.try_squeeze(last)
    }
}

impl Op for TriangularSolve {
    fn name(&self) -> &'static str {
        "triangular_solve"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: "triangular_solve",
                expected: 2,
                found: inputs.len(),
            });
        };
        let s = solve_shape("triangular_solve", a.shape(), b.shape())?;
        if !self.unit_diagonal {
            Self::check_diagonal(a, s.n)?;
        }
        if let Some(empty) = super::super::shape::empty_result(&s.out) {
            return Ok(empty);
        }
        let (n, k) = (s.n, s.k);
        let b_batch = &b.shape()[..b.ndim() - if s.vector { 1 } else { 2 }];
        let from_a = member_offsets(&s.batch, &a.shape()[..a.ndim() - 2]);
        let from_b = member_offsets(&s.batch, b_batch);
        let (ad, bd) = (a.as_slice(), b.as_slice());
        let mut out = buffers::filled(s.out.iter().product(), T::zero());
        let count = from_b.len();
        if count > 1 && a.len() == n * n {
            // One matrix for every member (a stack of tangents, a shared factor): the members'
            // right-hand sides side by side, one solve with `count k` columns.
            let cols = count * k;
            let mut wide = vec![T::zero(); n * cols];
            for (i, &m) in from_b.iter().enumerate() {
                for r in 0..n {
                    let row = &bd[(m * n + r) * k..(m * n + r + 1) * k];
                    wide[r * cols + i * k..r * cols + (i + 1) * k].copy_from_slice(row);
                }
            }
            let x = T::triangular_solve(ad, n, &wide, cols, self.triangle());
            for (i, member) in out.chunks_mut(n * k).enumerate() {
                for (r, row) in member.chunks_mut(k).enumerate() {
                    row.copy_from_slice(&x[r * cols + i * k..r * cols + (i + 1) * k]);
                }
            }
            return Ok(Tensor::from_parts(out, s.out));
        }
        let solved = for_each_member(&mut out, n * k, n * n * k, |i, x| {
            let am = &ad[from_a[i] * n * n..(from_a[i] + 1) * n * n];
            let bm = &bd[from_b[i] * n * k..(from_b[i] + 1) * n * k];
            x.copy_from_slice(&T::triangular_solve(am, n, bm, k, self.triangle()));
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err((_, never)) = solved {
            match never {}
        }
        Ok(Tensor::from_parts(out, s.out))
    }

    /// The shape, where the solve cannot fail on any values: with a unit diagonal. A diagonal
    /// that is read may hold a zero, an error that depends on the values: `None`.
    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a, b] = inputs else { return None };
        if !self.unit_diagonal {
            return None;
        }
        solve_shape("triangular_solve", a, b).ok().map(|s| s.out)
    }

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        let vector = solve_shape("triangular_solve", a.shape(), b.shape())?.vector;
        // -op(dT) X, the sign carried by the mask.
        let term = tangents[0]
            .map(|da| {
                let diagonal = if self.unit_diagonal { 0.0 } else { -1.0 };
                let dt = masked(da, self.lower, diagonal, -1.0)?;
                self.apply_to(&dt, output, vector)
            })
            .transpose()?;
        let rhs = match (tangents[1], term) {
            (None, None) => return Ok(None),
            (Some(db), None) => db.clone(),
            (None, Some(t)) => t,
            (Some(db), Some(t)) => db.try_add(&t)?,
        };
        A::apply(self, &[a, &rhs]).map(Some)
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        cotangent: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        let vector = solve_shape("triangular_solve", a.shape(), b.shape())?.vector;
        let flipped = TriangularSolve {
            transpose: !self.transpose,
            ..*self
        };
        // B̄ = op(T)^-T X̄, at the output's shape.
        let b_bar = A::apply(&flipped, &[a, cotangent])?;
        let a_bar = if needed[0] {
            // T̄ = -B̄ Xᵀ, or its transpose -X B̄ᵀ; the sign carried by the mask.
            let (p, q) = if self.transpose {
                (output, &b_bar)
            } else {
                (&b_bar, output)
            };
            let outer = if vector {
                let (r, c) = (p.shape().len(), q.shape().len() - 1);
                p.try_unsqueeze(r)?.try_mul(&q.try_unsqueeze(c)?)?
            } else {
                product(p, false, q, true)?
            };
            let diagonal = if self.unit_diagonal { 0.0 } else { -1.0 };
            Some(masked(
                &summed_to(outer, a.shape())?,
                self.lower,
                diagonal,
                -1.0,
            )?)
        } else {
            None
        };
        let b_bar = if needed[1] {
            Some(summed_to(b_bar, b.shape())?)
        } else {
            None
        };
        Ok(vec![a_bar, b_bar])
    }

    /// The stack's axis is one more leading axis: one solve for the whole stack.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        if !stacked.iter().any(|&s| s) {
            return batched::by_loop(self, inputs, stacked, size);
        }
        batch_solve("triangular_solve", inputs, stacked, |a, b| {
            A::apply(self, &[a, b])
        })
    }
}
