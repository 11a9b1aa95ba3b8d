//! The matrix product.

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::buffers;
use crate::tensor::dense::element_count;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

/// The matrix product `op(a) @ op(b)`, where `op` transposes a matrix whose flag is set.
///
/// Without flags ([`MatMul::default`], what [`Array::try_matmul`] uses) it takes `(m, k) @ (k, n)`,
/// matrix-vector `(m, k) @ (k)`, vector-matrix `(k) @ (k, n)`, and batched
/// `(..., m, k) @ (..., k, n)` with the leading axes broadcast. The transpose flags apply to
/// 2-D operands and are read by the kernel through strides, with no copy; the VJP of a 2-D
/// product is two more 2-D products with flags: `(ct @ b^T, a^T @ ct)`.
///
/// ```
/// use perturb::tensor::{ops::MatMul, Op, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let at_a = MatMul { transpose_a: true, transpose_b: false }.eval(&[&a, &a]).unwrap();
/// assert_eq!(at_a.to_vec(), vec![10.0, 14.0, 14.0, 20.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatMul {
    /// Use the transpose of the first (2-D) operand.
    pub transpose_a: bool,
    /// Use the transpose of the second (2-D) operand.
    pub transpose_b: bool,
}

/// The shapes of a product: both inputs with vectors promoted to matrices, and the result's
/// shape as the caller sees it.
struct Promoted {
    a: Vec<usize>,
    b: Vec<usize>,
    out: Vec<usize>,
}

/// The error for operands whose inner dimensions differ: `a` (transposed if `ta`) has `k`
/// columns (elements, for a vector) and `b` (transposed if `tb`) has `k2` rows.
fn inner_mismatch(a: &[usize], ta: bool, k: usize, b: &[usize], tb: bool, k2: usize) -> Error {
    let name = |shape: &[usize], transposed: bool| {
        if transposed {
            format!("{shape:?} transposed")
        } else {
            format!("{shape:?}")
        }
    };
    let unit =
        |shape: &[usize], matrix: &'static str| if shape.len() == 1 { "elements" } else { matrix };
    Error::InvalidArgument {
        op: "matmul",
        reason: format!(
            "the inner dimensions differ: {} has {k} {}, {} has {k2} {}",
            name(a, ta),
            unit(a, "columns"),
            name(b, tb),
            unit(b, "rows"),
        ),
    }
}

fn promoted(a: &[usize], b: &[usize]) -> Result<Promoted, Error> {
    let mismatch = || Error::ShapeMismatch {
        op: "matmul",
        lhs: a.to_vec(),
        rhs: b.to_vec(),
    };
    if a.is_empty() || b.is_empty() {
        return Err(mismatch());
    }
    let a2 = if a.len() == 1 {
        vec![1, a[0]]
    } else {
        a.to_vec()
    };
    let b2 = if b.len() == 1 {
        vec![b[0], 1]
    } else {
        b.to_vec()
    };
    let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (k2, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if k != k2 {
        return Err(inner_mismatch(a, false, k, b, false, k2));
    }
    let batch = kernels::broadcast_shape("matmul", &a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .map_err(|e| match e {
            Error::ShapeMismatch { .. } => mismatch(),
            other => other,
        })?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    element_count("matmul", &out)?;
    Ok(Promoted { a: a2, b: b2, out })
}

impl MatMul {
    fn transposes(&self) -> bool {
        self.transpose_a || self.transpose_b
    }

    /// `op(a) @ op(b)` for 2-D operands, the transposes read through strides.
    fn eval_2d<T: Element>(&self, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>, Error> {
        let (&[ar, ac], &[br, bc]) = (a.shape(), b.shape()) else {
            return Err(Error::InvalidArgument {
                op: "matmul",
                reason: format!(
                    "transposed operands must be matrices, got shapes {:?} and {:?}",
                    a.shape(),
                    b.shape()
                ),
            });
        };
        let ((m, k), a_strides) = if self.transpose_a {
            ((ac, ar), (1, ac))
        } else {
            ((ar, ac), (ac, 1))
        };
        let ((k2, n), b_strides) = if self.transpose_b {
            ((bc, br), (1, bc))
        } else {
            ((br, bc), (bc, 1))
        };
        if k != k2 {
            let (ta, tb) = (self.transpose_a, self.transpose_b);
            return Err(inner_mismatch(a.shape(), ta, k, b.shape(), tb, k2));
        }
        // `gemm` with `beta = 0` writes every element without reading it.
        let mut c = buffers::stale(element_count("matmul", &[m, n])?);
        T::gemm(
            m,
            k,
            n,
            a.as_slice(),
            a_strides,
            b.as_slice(),
            b_strides,
            T::zero(),
            &mut c,
            n,
        );
        Ok(Tensor::from_parts(c, vec![m, n]))
    }
}

/// `op(x) @ op(y)` with the given transposes, on any array type.
fn product<A: Array>(transpose_a: bool, transpose_b: bool, x: &A, y: &A) -> Result<A, Error> {
    let op = MatMul {
        transpose_a,
        transpose_b,
    };
    A::apply(&op, &[x, y])
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    /// One larger product for the whole stack: a stack of vectors times a fixed matrix is one
    /// matrix product (`[k, n] @ A^T`), a stack of matrices times a fixed matrix one product
    /// of the stacked rows; otherwise the batched product broadcasts the fixed operand.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let [a, b] = inputs else {
            return batched::by_loop(self, inputs, stacked, size);
        };
        let (sa, sb) = (stacked[0], stacked[1]);
        let logical = |x: &A, s: bool| x.shape().len() - usize::from(s);
        let (ra, rb) = (logical(a, sa), logical(b, sb));
        if ra == 0 || rb == 0 || (self.transposes() && (ra != 2 || rb != 2)) {
            // Not a product of matrices and vectors: the loop reports the error.
            return batched::by_loop(self, inputs, stacked, size);
        }
        // A transpose made explicit, on the last two axes.
        let explicit = |x: &A, flag: bool| {
            if !flag {
                return Ok(x.clone());
            }
            let r = x.shape().len();
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(r - 2, r - 1);
            x.try_permute(&perm)
        };
        let (ta, tb) = (self.transpose_a, self.transpose_b);
        match (sa, sb, ra, rb) {
            // A fixed matrix times a stack of vectors: [k, n] @ op(A)^T, one product whose
            // transposes are read through strides.
            (false, true, 2, 1) => product(false, !ta, b, a),
            // A fixed matrix times a stack of matrices [k, n, p]: the stack side by side as
            // one [n, k p] matrix, one product, and back.
            (false, true, 2, 2) => {
                let b = explicit(b, tb)?;
                let (k, n, p) = (b.shape()[0], b.shape()[1], b.shape()[2]);
                if p == 1 {
                    // Columns: the stack of vectors' product.
                    let c = product(false, !ta, &b.try_reshape(&[k, n])?, a)?;
                    let m = c.shape()[1];
                    return c.try_reshape(&[k, m, 1]);
                }
                let wide = b.try_permute(&[1, 0, 2])?.try_reshape(&[n, k * p])?;
                let c = product(ta, false, *a, &wide)?;
                let m = c.shape()[0];
                c.try_reshape(&[m, k, p])?.try_permute(&[1, 0, 2])
            }
            // A stack of vectors or matrices times a fixed matrix or vector: the stacked rows
            // as one matrix.
            (true, false, 1 | 2, 1 | 2) => {
                let a = explicit(a, ta)?;
                let rows = a.shape()[..a.shape().len() - 1].iter().product();
                let flat = a.try_reshape(&[rows, a.shape()[a.shape().len() - 1]])?;
                let c = product(false, tb, &flat, b)?;
                let mut shape = a.shape()[..a.shape().len() - 1].to_vec();
                if rb == 2 {
                    shape.push(c.shape()[1]);
                }
                c.try_reshape(&shape)
            }
            _ => {
                // Vectors promoted to matrices, stacked operands given axes of length 1 after
                // the stack's up to the common rank, then the broadcasting batched product.
                let promote = |x: &A, s: bool, r: usize, at_end: bool| {
                    if r != 1 {
                        return Ok(x.clone());
                    }
                    x.try_unsqueeze(if at_end {
                        x.shape().len()
                    } else {
                        usize::from(s)
                    })
                };
                let a = promote(&explicit(a, ta)?, sa, ra, false)?;
                let b = promote(&explicit(b, tb)?, sb, rb, true)?;
                let rank = ra.max(2).max(rb.max(2));
                let pad = |x: A, s: bool| if s { batched::to_rank(&x, rank) } else { Ok(x) };
                let (a, b) = (pad(a, sa)?, pad(b, sb)?);
                let mut c = A::apply(&MatMul::default(), &[&a, &b])?;
                if rb == 1 {
                    c = c.try_squeeze(c.shape().len() - 1)?;
                }
                if ra == 1 {
                    let axis = c.shape().len() - if rb == 1 { 1 } else { 2 };
                    c = c.try_squeeze(axis)?;
                }
                Ok(c)
            }
        }
    }

    /// A fixed matrix (or vector) times a stack of vectors or matrices along their last axis:
    /// the members side by side are one matrix `[k, p n]`, so this is one product, with no
    /// copy (forward mode's tangents of `A x`). A stack of vectors times a fixed matrix `op(B)`
    /// is `op(B)^T` times the stack, one product too.
    fn batch_trailing<A: Array>(
        &self,
        inputs: &[&A],
        trailing: &[bool],
        _: usize,
    ) -> Option<Result<A, Error>> {
        let [a, b] = inputs else { return None };
        let (ra, rb) = (a.shape().len(), b.shape().len());
        match trailing {
            [false, true] if (ra == 2 || (ra == 1 && !self.transpose_a)) && !self.transpose_b => {
                if !matches!(rb, 2 | 3) {
                    return None;
                }
                let wide = || {
                    let cols = b.shape()[1..].iter().product();
                    let flat = b.try_reshape(&[b.shape()[0], cols])?;
                    let c = product(self.transpose_a, false, *a, &flat)?;
                    let shape: Vec<usize> = c.shape()[..ra - 1]
                        .iter()
                        .chain(&b.shape()[1..])
                        .copied()
                        .collect();
                    c.try_reshape(&shape)
                };
                Some(wide())
            }
            [true, false] if ra == 2 && rb == 2 && !self.transpose_a => {
                Some(product(!self.transpose_b, false, *b, *a))
            }
            _ => None,
        }
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: "matmul",
                expected: 2,
                found: inputs.len(),
            });
        };
        if self.transposes() || (a.ndim() == 2 && b.ndim() == 2) {
            return self.eval_2d(a, b);
        }
        let Promoted { a: a2, b: b2, out } = promoted(a.shape(), b.shape())?;
        if let Some(empty) = super::super::shape::empty_result(&out) {
            // Nothing to compute, nor any operand to copy out to the batch's size.
            return Ok(empty);
        }
        let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
        if a2.len() == 2 && b2.len() == 2 {
            return Ok(Tensor::from_parts(
                kernels::matmul(a.as_slice(), b.as_slice(), m, k, n),
                out,
            ));
        }
        // Batched: broadcast the leading axes, then one product per batch entry.
        let batch = kernels::broadcast_shape("matmul", &a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
        let count: usize = batch.iter().product();
        let full_a: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
        let full_b: Vec<usize> = batch.iter().copied().chain([k, n]).collect();
        // The broadcast operands are copied out at full size: their counts must fit too.
        element_count("matmul", &full_a)?;
        element_count("matmul", &full_b)?;
        let ad = kernels::broadcast_to(a.as_slice(), &a2, &full_a);
        let bd = kernels::broadcast_to(b.as_slice(), &b2, &full_b);
        let mut c = buffers::stale(count * m * n);
        for i in 0..count {
            T::gemm(
                m,
                k,
                n,
                &ad[i * m * k..(i + 1) * m * k],
                (k, 1),
                &bd[i * k * n..(i + 1) * k * n],
                (n, 1),
                T::zero(),
                &mut c[i * m * n..(i + 1) * m * n],
                n,
            );
        }
        Ok(Tensor::from_parts(c, out))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a, b] = inputs else { return None };
        if !self.transposes() {
            return promoted(a, b).ok().map(|p| p.out);
        }
        // Transposed operands are matrices, read through strides (`eval_2d`).
        let (&[ar, ac], &[br, bc]) = (*a, *b) else {
            return None;
        };
        let (m, k) = if self.transpose_a { (ac, ar) } else { (ar, ac) };
        let (k2, n) = if self.transpose_b { (bc, br) } else { (br, bc) };
        (k == k2 && element_count("matmul", &[m, n]).is_ok()).then(|| vec![m, n])
    }

    /// Bilinear: `d(a b) = da b + a db`, each term the same product.
    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        let da = tangents[0].map(|t| A::apply(self, &[t, b])).transpose()?;
        let db = tangents[1].map(|t| A::apply(self, &[a, t])).transpose()?;
        super::super::sum_tangents([da, db], output.shape())
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        if self.transposes() || (a.shape().len() == 2 && b.shape().len() == 2) {
            return self.vjp_2d(a, b, ct, needed);
        }
        let Promoted { a: a2, b: b2, .. } = promoted(a.shape(), b.shape())?;
        let (m, n) = (a2[a2.len() - 2], b2[b2.len() - 1]);
        if a2.len() == 2 && b2.len() == 2 {
            // A vector promoted to a matrix: the 2-D rule, whose transposes are read through
            // strides rather than copied.
            let cts = self.vjp_2d(
                &a.try_reshape(&a2)?,
                &b.try_reshape(&b2)?,
                &ct.try_reshape(&[m, n])?,
                needed,
            )?;
            let restore = |ct: Option<A>, x: &A| ct.map(|c| c.try_reshape(x.shape())).transpose();
            let mut cts = cts.into_iter();
            let da = restore(cts.next().flatten(), a)?;
            let db = restore(cts.next().flatten(), b)?;
            return Ok(vec![da, db]);
        }
        let batch = kernels::broadcast_shape("matmul", &a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
        let ct_shape: Vec<usize> = batch.iter().copied().chain([m, n]).collect();
        let ct2 = ct.try_reshape(&ct_shape)?;
        let da = if needed[0] {
            let b_m = b.try_reshape(&b2)?;
            let d = ct2.try_matmul(&b_m.transpose())?;
            Some(d.try_sum_to(&a2)?.try_reshape(a.shape())?)
        } else {
            None
        };
        let db = if needed[1] {
            let a_m = a.try_reshape(&a2)?;
            let d = a_m.transpose().try_matmul(&ct2)?;
            Some(d.try_sum_to(&b2)?.try_reshape(b.shape())?)
        } else {
            None
        };
        Ok(vec![da, db])
    }
}

impl MatMul {
    /// For `c = op(a) op(b)`: `d op(a) = ct op(b)^T` and `d op(b) = op(a)^T ct`, each written
    /// as one more flagged product so no operand is copied to transpose it.
    fn vjp_2d<A: Array>(
        &self,
        a: &A,
        b: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (ta, tb) = (self.transpose_a, self.transpose_b);
        let da = if needed[0] {
            Some(match ta {
                false => product(false, !tb, ct, b)?, // ct op(b)^T
                true => product(tb, true, b, ct)?,    // (ct op(b)^T)^T = op(b) ct^T
            })
        } else {
            None
        };
        let db = if needed[1] {
            Some(match tb {
                false => product(!ta, false, a, ct)?, // op(a)^T ct
                true => product(true, ta, ct, a)?,    // (op(a)^T ct)^T = ct^T op(a)
            })
        } else {
            None
        };
        Ok(vec![da, db])
    }
}
