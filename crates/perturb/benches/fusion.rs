//! Fused element-wise chains (issue 19 item 3), stage 1: the Rosenbrock value at n = 10,000
//! three ways, with Rust's default allocator:
//! - `hand_written_value`: one loop over `x`, the terms summed as it goes (vectorisable: no
//!   term depends on another);
//! - `perturb_unfused`: the suites' `rosenbrock` on plain tensors, one pass per operation;
//! - `perturb_fused_chain`: the same operations in a `tensor::fusion::Chain`, block by block,
//!   with the sum in the same pass (the narrowing done before, as two leaves).
//!
//! Run: `cargo bench -p perturb --bench fusion`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use perturb::tensor::{fusion::Chain, ops, Array, Tensor};

const GROUP_SUFFIX: &str = "";

#[path = "suites/common.rs"]
#[allow(dead_code)]
mod common;

fn hand_written(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            100.0 * (b - a * a) * (b - a * a) + (a - 1.0) * (a - 1.0)
        })
        .sum()
}

/// The Rosenbrock value as one fused chain: the same operations as `common::rosenbrock`.
fn fused(x: &Tensor<f64>) -> f64 {
    let n = x.shape()[0];
    let mut chain = Chain::new(&[n - 1]);
    let head = chain.leaf(x.narrow(0, 0, n - 1)).unwrap();
    let tail = chain.leaf(x.narrow(0, 1, n - 1)).unwrap();
    let h2 = chain.apply(&ops::Square, &[head]).unwrap();
    let a = chain.apply(&ops::Sub, &[tail, h2]).unwrap();
    let b = chain.apply(&ops::AddScalar(-1.0), &[head]).unwrap();
    let a2 = chain.apply(&ops::Square, &[a]).unwrap();
    let t1 = chain.apply(&ops::Scale(100.0), &[a2]).unwrap();
    let b2 = chain.apply(&ops::Square, &[b]).unwrap();
    let s = chain.apply(&ops::Add, &[t1, b2]).unwrap();
    chain.sum(s).unwrap()
}

fn bench_fused_rosenbrock(c: &mut Criterion) {
    let x = common::rosenbrock_point(10_000);
    let unfused = |x: &Tensor<f64>| common::rosenbrock(x).unwrap().as_slice()[0];
    let (h, u, f) = (hand_written(x.as_slice()), unfused(&x), fused(&x));
    common::assert_close("rosenbrock value", &[h, h], &[u, f], 1e-12);

    let mut group = common::group(c, "fusion_rosenbrock_value_n10000");
    group.bench_function("hand_written_value", |b| {
        b.iter(|| hand_written(black_box(x.as_slice())))
    });
    group.bench_function("perturb_unfused", |b| b.iter(|| unfused(black_box(&x))));
    group.bench_function("perturb_fused_chain", |b| b.iter(|| fused(black_box(&x))));
    group.finish();
}

criterion_group!(benches, bench_fused_rosenbrock);
criterion_main!(benches);
