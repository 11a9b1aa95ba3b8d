//! What the tensor and transform suites share: their functions, written once with tensor
//! operations, the point they run at, and the check that a baseline agrees with perturb.

use criterion::{measurement::WallTime, BenchmarkGroup, Criterion};
use perturb::tensor::{Array, Tensor};

/// A benchmark group named for the allocator it runs under (the bench target's suffix).
pub fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    c.benchmark_group(format!("{name}{}", super::GROUP_SUFFIX))
}

/// Panics unless `a` and `b` agree to `tol`, relative to the larger magnitude (at least 1):
/// run before timing, so that a baseline computing something else cannot pass.
pub fn assert_close<T: Into<f64> + Copy>(what: &str, a: &[T], b: &[T], tol: f64) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (&p, &q)) in a.iter().zip(b).enumerate() {
        let (p, q) = (p.into(), q.into());
        let err = (p - q).abs() / p.abs().max(q.abs()).max(1.0);
        assert!(err <= tol, "{what}: element {i} is {p} against {q}");
    }
}

/// The lecture's loss, written once with tensor operations: a 2-3-1 sigmoid network's
/// logistic negative log-likelihood, `sign` holding the labels as -1 and 1.
pub fn seed_loss<A: Array>(w: &A, b: &A, w0: &A, c: &A, x: &A, sign: &A) -> A {
    let hidden = x.matmul(&w.transpose()).add(b).sigmoid();
    let z = hidden.matmul(w0).add(c);
    z.mul(sign).log_sigmoid().sum_all().neg()
}

/// The extended Rosenbrock function `sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`.
pub fn rosenbrock<A: Array>(x: &A) -> Result<A, perturb::Error> {
    let n = x.shape()[0];
    let head = x.try_narrow(0, 0, n - 1)?;
    let tail = x.try_narrow(0, 1, n - 1)?;
    let a = tail.try_sub(&head.square())?;
    // (1 - x_i)^2 written (x_i - 1)^2: one operation, as the hand-written `1 - x` is one.
    let b = head.add_scalar(A::elem(-1.0));
    a.square()
        .scale(A::elem(100.0))
        .try_add(&b.square())
        .map(|s| s.sum_all())
}

/// The point the Rosenbrock benchmarks run at.
pub fn rosenbrock_point(n: usize) -> Tensor<f64> {
    Tensor::from_vec(
        (0..n).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect(),
        &[n],
    )
    .unwrap()
}
