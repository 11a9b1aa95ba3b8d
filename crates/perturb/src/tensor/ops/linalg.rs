//! The matrix product.

use crate::error::Error;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

/// The matrix product `a @ b`: `(m, k) @ (k, n)`, matrix-vector `(m, k) @ (k)`, vector-matrix
/// `(k) @ (k, n)`, and batched `(..., m, k) @ (..., k, n)` with the leading axes broadcast.
/// VJP: `(ct @ b^T, a^T @ ct)`, summed back over broadcast batch axes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatMul;

/// The shapes of a product: both inputs with vectors promoted to matrices, and the result's
/// shape as the caller sees it.
struct Promoted {
    a: Vec<usize>,
    b: Vec<usize>,
    out: Vec<usize>,
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
        return Err(mismatch());
    }
    let batch = kernels::broadcast_shape("matmul", &a2[..a2.len() - 2], &b2[..b2.len() - 2])
        .map_err(|_| mismatch())?;
    let mut out = batch;
    if a.len() > 1 {
        out.push(m);
    }
    if b.len() > 1 {
        out.push(n);
    }
    Ok(Promoted { a: a2, b: b2, out })
}

impl Op for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: "matmul",
                expected: 2,
                found: inputs.len(),
            });
        };
        let Promoted { a: a2, b: b2, out } = promoted(a.shape(), b.shape())?;
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
        let ad = kernels::broadcast_to(a.as_slice(), &a2, &full_a);
        let bd = kernels::broadcast_to(b.as_slice(), &b2, &full_b);
        let mut c = vec![T::zero(); count * m * n];
        for i in 0..count {
            T::gemm(
                m,
                k,
                n,
                &ad[i * m * k..(i + 1) * m * k],
                k,
                &bd[i * k * n..(i + 1) * k * n],
                n,
                T::zero(),
                &mut c[i * m * n..(i + 1) * m * n],
                n,
            );
        }
        Ok(Tensor::from_parts(c, out))
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (a, b) = (inputs[0], inputs[1]);
        let Promoted { a: a2, b: b2, .. } = promoted(a.shape(), b.shape())?;
        let (m, n) = (a2[a2.len() - 2], b2[b2.len() - 1]);
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
