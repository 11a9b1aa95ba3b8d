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
use perturb::tensor::{jacfwd, jacrev, Tensor};

#[path = "jacobian/workloads.rs"]
mod workloads;
use workloads::{
    problem, softmax_ax, softmax_ax_jacobian_by_hand, tanh_ax, tanh_ax_jacobian_by_hand,
};

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
