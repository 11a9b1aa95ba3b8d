//! The two workloads of the Jacobian benchmark (`benches/jacobian.rs`): the matrix and point,
//! the functions differentiated, and their Jacobians written by hand. Shared with the
//! instruction count (`examples/jacobian_instructions.rs`), so both measure the same code.

use perturb::tensor::{Array, Tensor};

/// `A x` into `z`, each dot product with four running sums so that it vectorises.
pub fn matvec(a: &[f64], x: &[f64], z: &mut [f64]) {
    let n = x.len();
    for (row, zi) in a.chunks_exact(n).zip(z.iter_mut()) {
        let mut acc = [0.0; 4];
        for (p, q) in row.chunks_exact(4).zip(x.chunks_exact(4)) {
            for k in 0..4 {
                acc[k] += p[k] * q[k];
            }
        }
        let tail = n - n % 4;
        let rest: f64 = row[tail..].iter().zip(&x[tail..]).map(|(p, q)| p * q).sum();
        *zi = acc.iter().sum::<f64>() + rest;
    }
}

/// `diag(1 - tanh(A x)^2) A` by hand, into `out` (`z` is scratch for `A x`).
pub fn tanh_ax_jacobian_by_hand(a: &[f64], x: &[f64], z: &mut [f64], out: &mut [f64]) {
    let n = x.len();
    matvec(a, x, z);
    for ((row, out_row), &zi) in a.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(&*z) {
        let s = 1.0 - zi.tanh().powi(2);
        for (o, p) in out_row.iter_mut().zip(row) {
            *o = s * p;
        }
    }
}

/// `(diag(s) - s s^T) A` with `s = softmax(A x)` by hand, into `out` (`z` and `v` are scratch).
pub fn softmax_ax_jacobian_by_hand(
    a: &[f64],
    x: &[f64],
    z: &mut [f64],
    v: &mut [f64],
    out: &mut [f64],
) {
    let n = x.len();
    matvec(a, x, z);
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for zi in z.iter_mut() {
        *zi = (*zi - max).exp();
        sum += *zi;
    }
    // z now holds s.
    for zi in z.iter_mut() {
        *zi /= sum;
    }
    // v = s^T A, row by row so that the inner loop vectorises.
    v.fill(0.0);
    for (row, &si) in a.chunks_exact(n).zip(&*z) {
        for (vj, p) in v.iter_mut().zip(row) {
            *vj += si * p;
        }
    }
    for ((row, out_row), &si) in a.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(&*z) {
        for ((o, p), vj) in out_row.iter_mut().zip(row).zip(&*v) {
            *o = si * (p - vj);
        }
    }
}

/// `tanh(A x)`, for any array type.
pub fn tanh_ax<A: Array<Elem = f64>>(a: &Tensor<f64>, x: &A) -> Result<A, perturb::Error> {
    Ok(x.constant_like(a).try_matmul(x)?.tanh())
}

/// `softmax(A x)`, for any array type.
pub fn softmax_ax<A: Array<Elem = f64>>(a: &Tensor<f64>, x: &A) -> Result<A, perturb::Error> {
    x.constant_like(a).try_matmul(x)?.try_softmax(0)
}

/// The matrix and the point of both benchmarks.
pub fn problem() -> (Tensor<f64>, Tensor<f64>) {
    let n = 200;
    let a = Tensor::<f64>::randn(&[n, n], 0.0, 1.0 / (n as f64).sqrt(), 7);
    let x = Tensor::<f64>::randn(&[n], 0.0, 1.0, 8);
    (a, x)
}
