//! Full Jacobians of 200 x 200 maps (issue 19, item 5), by jacfwd and by jacrev, each against
//! its Jacobian written by hand in the same run, with Rust's default (system) allocator.
//!
//! Run: `cargo bench -p perturb --bench jacobian`
//!
//! - jacobian_tanh_ax_200: f(x) = tanh(A x), A a fixed 200 x 200 matrix; by hand:
//!   `diag(1 - tanh(A x)^2) A` (the dot products with four running sums so that they
//!   vectorise, then each row of A scaled).
//! - jacobian_softmax_ax_200: f(x) = softmax(A x), whose Jacobian `(diag(s) - s s^T) A` is
//!   dense (no diagonal shortcut); by hand: `z = A x`, `s = softmax(z)`, the row `v = s^T A`
//!   (rows of A added with weights, vectorisable), then `J[i][j] = s[i] (A[i][j] - v[j])`.
//!
//! Each Jacobian is checked against the hand-written one before it is timed.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use perturb::tensor::{jacfwd, jacrev, Array, Tensor};

/// `A x` into `z`, each dot product with four running sums so that it vectorises.
fn matvec(a: &[f64], x: &[f64], z: &mut [f64]) {
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
fn tanh_ax_jacobian_by_hand(a: &[f64], x: &[f64], z: &mut [f64], out: &mut [f64]) {
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
fn softmax_ax_jacobian_by_hand(
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
fn tanh_ax<A: Array<Elem = f64>>(a: &Tensor<f64>, x: &A) -> Result<A, perturb::Error> {
    Ok(x.constant_like(a).try_matmul(x)?.tanh())
}

/// `softmax(A x)`, for any array type.
fn softmax_ax<A: Array<Elem = f64>>(a: &Tensor<f64>, x: &A) -> Result<A, perturb::Error> {
    x.constant_like(a).try_matmul(x)?.try_softmax(0)
}

/// The matrix and the point of both benchmarks.
fn problem() -> (Tensor<f64>, Tensor<f64>) {
    let n = 200;
    let a = Tensor::<f64>::randn(&[n, n], 0.0, 1.0 / (n as f64).sqrt(), 7);
    let x = Tensor::<f64>::randn(&[n], 0.0, 1.0, 8);
    (a, x)
}

/// Panics unless the Jacobian `j` agrees with the hand-written `expected` (`n x n`).
fn check(what: &str, j: &Tensor<f64>, expected: &[f64], n: usize) {
    let expected = Tensor::from_vec(expected.to_vec(), &[n, n]).unwrap();
    assert!(
        j.all_close(&expected, 1e-12),
        "{what} differs from the hand-written Jacobian"
    );
}

fn bench_tanh(c: &mut Criterion) {
    let (a, x) = problem();
    let n = x.len();
    let (mut z, mut out) = (vec![0.0; n], vec![0.0; n * n]);
    tanh_ax_jacobian_by_hand(a.as_slice(), x.as_slice(), &mut z, &mut out);
    check("jacfwd", &jacfwd(|x| tanh_ax(&a, x), &x).unwrap(), &out, n);
    check("jacrev", &jacrev(|x| tanh_ax(&a, x), &x).unwrap(), &out, n);

    let mut group = c.benchmark_group("jacobian_tanh_ax_200");
    group.bench_function("hand_written", |b| {
        b.iter(|| tanh_ax_jacobian_by_hand(black_box(a.as_slice()), x.as_slice(), &mut z, &mut out))
    });
    group.bench_function("perturb_jacfwd", |b| {
        b.iter(|| jacfwd(|x| tanh_ax(&a, x), black_box(&x)).unwrap())
    });
    group.bench_function("perturb_jacrev", |b| {
        b.iter(|| jacrev(|x| tanh_ax(&a, x), black_box(&x)).unwrap())
    });
    group.finish();
}

fn bench_softmax(c: &mut Criterion) {
    let (a, x) = problem();
    let n = x.len();
    let (mut z, mut v, mut out) = (vec![0.0; n], vec![0.0; n], vec![0.0; n * n]);
    softmax_ax_jacobian_by_hand(a.as_slice(), x.as_slice(), &mut z, &mut v, &mut out);
    check(
        "jacfwd",
        &jacfwd(|x| softmax_ax(&a, x), &x).unwrap(),
        &out,
        n,
    );
    check(
        "jacrev",
        &jacrev(|x| softmax_ax(&a, x), &x).unwrap(),
        &out,
        n,
    );

    let mut group = c.benchmark_group("jacobian_softmax_ax_200");
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            softmax_ax_jacobian_by_hand(
                black_box(a.as_slice()),
                x.as_slice(),
                &mut z,
                &mut v,
                &mut out,
            )
        })
    });
    group.bench_function("perturb_jacfwd", |b| {
        b.iter(|| jacfwd(|x| softmax_ax(&a, x), black_box(&x)).unwrap())
    });
    group.bench_function("perturb_jacrev", |b| {
        b.iter(|| jacrev(|x| softmax_ax(&a, x), black_box(&x)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_tanh, bench_softmax);
criterion_main!(benches);
