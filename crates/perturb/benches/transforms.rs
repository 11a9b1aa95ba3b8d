//! Forward mode and composed transforms on tensors (issue 4), each with its baseline in the
//! same run.
//!
//! Run: `cargo bench -p perturb --bench transforms`
//!
//! - rosenbrock_hvp: the Hessian-vector product of the extended Rosenbrock function,
//!   n = 10,000, v = ones, forward over reverse; baseline: the hand-written tridiagonal Hessian
//!   times v.
//! - jacobian_tanh_ax: the full Jacobian of f(x) = tanh(A x), A a fixed 200 x 200 matrix, by
//!   jacfwd and by jacrev; baseline: diag(1 - tanh(A x)^2) A by hand.
//! - seed_mlp_jvp: the lecture network's loss on 1000 two-moons points alone, and its JVP along
//!   a direction in all 13 parameters.

// glibc's allocator gives memory back to the OS whenever more than 128 KiB is free at the top of
// its heap, and the next tensor faults it in again, page by page: for tensors of 10^4 elements
// that costs more than the arithmetic. mimalloc keeps such memory for reuse. BENCHMARKS.md gives
// figures with both allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use perturb::tensor::{hvp, jacfwd, jacrev, Array, DualTensor, Tensor};

/// The extended Rosenbrock function `sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`.
fn rosenbrock<A: Array>(x: &A) -> Result<A, perturb::Error> {
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

/// `H v` for the extended Rosenbrock function by hand: H is tridiagonal with
/// `H[i][i] = 2 - 400 (x[i+1] - 3 x[i]^2)` (for i < n-1) `+ 200` (for i > 0) and
/// `H[i][i+1] = H[i+1][i] = -400 x[i]`.
fn rosenbrock_hvp_by_hand(x: &[f64], v: &[f64], out: &mut [f64]) {
    let n = x.len();
    out.fill(0.0);
    for i in 0..n - 1 {
        let diag = 2.0 - 400.0 * (x[i + 1] - 3.0 * x[i] * x[i]);
        let off = -400.0 * x[i];
        out[i] += diag * v[i] + off * v[i + 1];
        out[i + 1] += off * v[i] + 200.0 * v[i + 1];
    }
}

fn bench_rosenbrock_hvp(c: &mut Criterion) {
    let n = 10_000;
    let x = Tensor::<f64>::from_vec(
        (0..n).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect(),
        &[n],
    )
    .unwrap();
    let v = Tensor::<f64>::ones(&[n]);
    let mut group = c.benchmark_group("rosenbrock_hvp_n10000");
    let mut out = vec![0.0; n];
    group.bench_function("hand_written_tridiagonal", |b| {
        b.iter(|| rosenbrock_hvp_by_hand(black_box(x.as_slice()), v.as_slice(), &mut out))
    });
    group.bench_function("perturb_forward_over_reverse", |b| {
        b.iter(|| hvp(|x| rosenbrock(x), black_box(&x), &v).unwrap())
    });
    group.finish();
}

/// `diag(1 - tanh(A x)^2) A` by hand.
fn tanh_ax_jacobian_by_hand(a: &[f64], x: &[f64], out: &mut [f64]) {
    let n = x.len();
    for (row, out_row) in a.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        // Four running sums, so the dot product vectorises.
        let mut acc = [0.0; 4];
        for (p, q) in row.chunks_exact(4).zip(x.chunks_exact(4)) {
            for k in 0..4 {
                acc[k] += p[k] * q[k];
            }
        }
        let tail = n - n % 4;
        let rest: f64 = row[tail..].iter().zip(&x[tail..]).map(|(p, q)| p * q).sum();
        let z = acc.iter().sum::<f64>() + rest;
        let s = 1.0 - z.tanh().powi(2);
        for (o, p) in out_row.iter_mut().zip(row) {
            *o = s * p;
        }
    }
}

fn bench_jacobian(c: &mut Criterion) {
    let n = 200;
    let a = Tensor::<f64>::randn(&[n, n], 0.0, 1.0 / (n as f64).sqrt(), 7);
    let x = Tensor::<f64>::randn(&[n], 0.0, 1.0, 8);
    let mut group = c.benchmark_group("jacobian_tanh_ax_200");
    let mut out = vec![0.0; n * n];
    group.bench_function("hand_written", |b| {
        b.iter(|| tanh_ax_jacobian_by_hand(black_box(a.as_slice()), x.as_slice(), &mut out))
    });
    group.bench_function("perturb_jacfwd", |b| {
        b.iter(|| {
            jacfwd(
                |x| Ok(x.constant_like(&a).try_matmul(x)?.tanh()),
                black_box(&x),
            )
            .unwrap()
        })
    });
    group.bench_function("perturb_jacrev", |b| {
        b.iter(|| {
            jacrev(
                |x| Ok(x.constant_like(&a).try_matmul(x)?.tanh()),
                black_box(&x),
            )
            .unwrap()
        })
    });
    group.finish();
}

/// The lecture's loss, written once with tensor operations (as in the tensor benchmark).
fn seed_loss<A: Array>(w: &A, b: &A, w0: &A, c: &A, x: &A, sign: &A) -> A {
    let hidden = x.matmul(&w.transpose()).add(b).sigmoid();
    let z = hidden.matmul(w0).add(c);
    z.mul(sign).log_sigmoid().sum_all().neg()
}

fn bench_seed_mlp_jvp(c: &mut Criterion) {
    let n = 1000;
    let x = Tensor::<f64>::randn(&[n, 2], 0.0, 1.0, 3);
    let sign = Tensor::vector(
        &(0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect::<Vec<f64>>(),
    );
    let shapes: [&[usize]; 4] = [&[3, 2], &[3], &[3], &[1]];
    let params: Vec<Tensor<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::randn(s, 0.0, 0.5, 10 + i as u64))
        .collect();
    let tangents: Vec<Tensor<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::randn(s, 0.0, 1.0, 20 + i as u64))
        .collect();
    let mut group = c.benchmark_group("seed_mlp_jvp_n1000");
    group.bench_function("loss_alone", |b| {
        b.iter(|| {
            seed_loss(
                &params[0],
                &params[1],
                &params[2],
                &params[3],
                black_box(&x),
                &sign,
            )
        })
    });
    group.bench_function("loss_and_jvp", |b| {
        b.iter(|| {
            let d: Vec<DualTensor<Tensor<f64>>> = params
                .iter()
                .zip(&tangents)
                .map(|(p, t)| DualTensor::new(p.clone(), t.clone()))
                .collect();
            seed_loss(
                &d[0],
                &d[1],
                &d[2],
                &d[3],
                &DualTensor::constant(black_box(&x).clone()),
                &DualTensor::constant(sign.clone()),
            )
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_rosenbrock_hvp,
    bench_jacobian,
    bench_seed_mlp_jvp
);
criterion_main!(benches);
