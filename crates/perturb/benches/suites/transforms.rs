//! The suite of forward mode and composed transforms on tensors (issue 4, baselines of issue
//! 19), each workload with its baseline in the same run. Compiled twice: `benches/transforms.rs`
//! (Rust's default allocator) and `benches/transforms_mimalloc.rs` (mimalloc, a second column;
//! its group names end in `_mimalloc`).
//!
//! - rosenbrock_hvp: the Hessian-vector product of the extended Rosenbrock function,
//!   n = 10,000, v = ones, forward over reverse; baseline: the tridiagonal Hessian times v by
//!   hand, row by row (vectorised), checked against perturb's before timing.
//! - jacobian_tanh_ax: the full Jacobian of f(x) = tanh(A x), A a fixed 200 x 200 matrix, by
//!   jacfwd and by jacrev; baseline: diag(1 - tanh(A x)^2) A by hand.
//! - seed_mlp_jvp: the lecture network's loss on 1000 random points alone, and its JVP along
//!   a direction in all 13 parameters: forward mode's cost over the value (no hand-written
//!   baseline).

use criterion::{black_box, Criterion};
use perturb::tensor::{hvp, jacfwd, jacrev, Array, DualTensor, Tensor};

use super::common::{assert_close, group, rosenbrock, rosenbrock_point, seed_loss};

// The hand-written Jacobian of tanh(A x), shared with the Jacobian benchmark.
#[path = "../jacobian/workloads.rs"]
#[allow(dead_code)]
mod workloads;
use workloads::tanh_ax_jacobian_by_hand;

/// `H v` for the extended Rosenbrock function by hand, row by row. H is tridiagonal:
/// `H[i][i] = 2 - 400 (x[i+1] - 3 x[i]^2)` (for i < n-1) `+ 200` (for i > 0) and
/// `H[i][i+1] = H[i+1][i] = -400 x[i]`. Each `out[i]` reads only its neighbours, so no
/// iteration depends on another and the loop vectorises (adding into `out[i]` and `out[i+1]`
/// term by term would carry a dependency).
pub fn rosenbrock_hvp_by_hand(x: &[f64], v: &[f64], out: &mut [f64]) {
    let n = x.len();
    assert!(n >= 2 && v.len() == n && out.len() == n);
    let diag = |xi: f64, next: f64| 2.0 - 400.0 * (next - 3.0 * xi * xi);
    out[0] = diag(x[0], x[1]) * v[0] - 400.0 * x[0] * v[1];
    let m = n - 2;
    let (xb, xi, xn) = (&x[..m], &x[1..m + 1], &x[2..]);
    let (vb, vi, vn) = (&v[..m], &v[1..m + 1], &v[2..]);
    for (k, o) in out[1..m + 1].iter_mut().enumerate() {
        *o = -400.0 * (xb[k] * vb[k] + xi[k] * vn[k]) + (diag(xi[k], xn[k]) + 200.0) * vi[k];
    }
    out[n - 1] = -400.0 * x[n - 2] * v[n - 2] + 200.0 * v[n - 1];
}

pub fn bench_rosenbrock_hvp(c: &mut Criterion) {
    let n = 10_000;
    let x = rosenbrock_point(n);
    let v = Tensor::<f64>::ones(&[n]);
    let mut out = vec![0.0; n];
    rosenbrock_hvp_by_hand(x.as_slice(), v.as_slice(), &mut out);
    // A direction other than ones too, so that each of the three diagonals is checked.
    let w = Tensor::<f64>::randn(&[n], 0.0, 1.0, 5);
    let mut out_w = vec![0.0; n];
    rosenbrock_hvp_by_hand(x.as_slice(), w.as_slice(), &mut out_w);
    for (direction, by_hand) in [(&v, &out), (&w, &out_w)] {
        let by_perturb = hvp(|x| rosenbrock(x), &x, direction).unwrap();
        assert_close("rosenbrock H v", by_hand, by_perturb.as_slice(), 1e-12);
    }

    let mut group = group(c, "rosenbrock_hvp_n10000");
    group.bench_function("hand_written_tridiagonal", |b| {
        b.iter(|| rosenbrock_hvp_by_hand(black_box(x.as_slice()), v.as_slice(), &mut out))
    });
    group.bench_function("perturb_forward_over_reverse", |b| {
        b.iter(|| hvp(|x| rosenbrock(x), black_box(&x), &v).unwrap())
    });
    group.finish();
}

pub fn bench_jacobian(c: &mut Criterion) {
    let n = 200;
    let a = Tensor::<f64>::randn(&[n, n], 0.0, 1.0 / (n as f64).sqrt(), 7);
    let x = Tensor::<f64>::randn(&[n], 0.0, 1.0, 8);
    let mut group = group(c, "jacobian_tanh_ax_200");
    let (mut z, mut out) = (vec![0.0; n], vec![0.0; n * n]);
    group.bench_function("hand_written", |b| {
        b.iter(|| tanh_ax_jacobian_by_hand(black_box(a.as_slice()), x.as_slice(), &mut z, &mut out))
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

pub fn bench_seed_mlp_jvp(c: &mut Criterion) {
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
    let mut group = group(c, "seed_mlp_jvp_n1000");
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

criterion::criterion_group!(
    benches,
    bench_rosenbrock_hvp,
    bench_jacobian,
    bench_seed_mlp_jvp
);
