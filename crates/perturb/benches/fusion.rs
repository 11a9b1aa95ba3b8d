//! Fused element-wise chains (issue 19 item 3), stage 1: the Rosenbrock value at n = 10,000
//! three ways, with Rust's default allocator:
//! - `hand_written_value`: one loop over `x`, the terms summed as it goes (vectorisable: no
//!   term depends on another);
//! - `perturb_unfused`: the suites' `rosenbrock` on plain tensors, one pass per operation;
//! - `perturb_fused_chain`: the same operations in a `tensor::fusion::Chain`, block by block,
//!   with the sum in the same pass (the narrowing done before, as two leaves).
//!
//!
//! Stage 2, fusion wired into `Deferred` arrays: the Rosenbrock `H v` by `hvp` (which runs on
//! deferred arrays) at n = 10,000 and 100,000, fused and unfused in the same process
//! (`fusion::set_min_len`: 64, and off), against the suites' tridiagonal `H v` by hand; and
//! the gradient at the same sizes, by `grad` on deferred arrays fused and unfused, by the
//! tensor suite's reused `TensorTape` on plain tensors, and by hand.
//!
//! Stage 3, the sum that ends a chain added in the chain's pass: the Rosenbrock value on
//! deferred arrays at n = 100,000, fused and unfused, against the value by hand.
//!
//! Run: `cargo bench -p perturb --bench fusion`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use perturb::tensor::{fusion, fusion::Chain, grad, hvp, ops, Array, Deferred, Tensor, TensorTape};

const GROUP_SUFFIX: &str = "";

#[path = "suites/common.rs"]
#[allow(dead_code)]
mod common;
// For the hand-written `H v` and gradient, and the tape's gradient.
#[path = "suites/tensor.rs"]
#[allow(dead_code)]
mod tensor;
#[path = "suites/transforms.rs"]
#[allow(dead_code)]
mod transforms;

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

/// The Rosenbrock value on `Deferred` arrays fusing from `min_len` elements: the chain and the
/// sum that ends it in one pass when fused.
fn deferred_value(x: &Tensor<f64>, min_len: usize) -> f64 {
    let before = fusion::set_min_len(min_len);
    let y = common::rosenbrock(&Deferred::new(x.clone())).unwrap();
    let y = y.value().unwrap().as_slice()[0];
    fusion::set_min_len(before);
    y
}

fn bench_fused_deferred_value(c: &mut Criterion) {
    let n = 100_000;
    let x = common::rosenbrock_point(n);
    let (h, unfused, fused) = (
        hand_written(x.as_slice()),
        deferred_value(&x, usize::MAX),
        deferred_value(&x, 64),
    );
    assert_eq!(
        unfused.to_bits(),
        fused.to_bits(),
        "fused and unfused values differ"
    );
    common::assert_close("rosenbrock value", &[h], &[fused], 1e-12);
    let mut group = common::group(c, &format!("fusion_rosenbrock_value_deferred_n{n}"));
    group.bench_function("hand_written_value", |b| {
        b.iter(|| hand_written(black_box(x.as_slice())))
    });
    group.bench_function("perturb_unfused", |b| {
        b.iter(|| deferred_value(black_box(&x), usize::MAX))
    });
    group.bench_function("perturb_fused", |b| {
        b.iter(|| deferred_value(black_box(&x), 64))
    });
    group.finish();
}

/// `H v` by `hvp` with `Deferred` fusing from `min_len` elements.
fn perturb_hvp(x: &Tensor<f64>, v: &Tensor<f64>, min_len: usize) -> Tensor<f64> {
    let before = fusion::set_min_len(min_len);
    let hv = hvp(|x| common::rosenbrock(x), x, v).unwrap();
    fusion::set_min_len(before);
    hv
}

fn bench_fused_hvp(c: &mut Criterion) {
    for n in [10_000, 100_000] {
        let x = common::rosenbrock_point(n);
        let v = Tensor::ones(&[n]);
        let mut out = vec![0.0; n];
        transforms::rosenbrock_hvp_by_hand(x.as_slice(), v.as_slice(), &mut out);
        let (unfused, fused) = (perturb_hvp(&x, &v, usize::MAX), perturb_hvp(&x, &v, 64));
        common::assert_close("rosenbrock H v", &out, unfused.as_slice(), 1e-12);
        let bits = |t: &Tensor<f64>| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&unfused), bits(&fused), "fused and unfused H v differ");

        let mut group = common::group(c, &format!("fusion_rosenbrock_hvp_n{n}"));
        group.bench_function("hand_written_tridiagonal", |b| {
            b.iter(|| {
                transforms::rosenbrock_hvp_by_hand(black_box(x.as_slice()), v.as_slice(), &mut out)
            })
        });
        group.bench_function("perturb_unfused", |b| {
            b.iter(|| perturb_hvp(black_box(&x), &v, usize::MAX))
        });
        group.bench_function("perturb_fused", |b| {
            b.iter(|| perturb_hvp(black_box(&x), &v, 64))
        });
        group.finish();
    }
}

/// The gradient by `grad` on `Deferred` arrays fusing from `min_len` elements.
fn perturb_deferred_grad(x: &Tensor<f64>, min_len: usize) -> Tensor<f64> {
    let before = fusion::set_min_len(min_len);
    let g = grad(|x| common::rosenbrock(x), &Deferred::new(x.clone())).unwrap();
    let g = g.value().unwrap();
    fusion::set_min_len(before);
    g
}

fn bench_fused_grad(c: &mut Criterion) {
    for n in [10_000, 100_000] {
        let x = common::rosenbrock_point(n);
        let mut g = vec![0.0; n];
        let mut tape = TensorTape::new();
        tensor::rosenbrock_grad(x.as_slice(), &mut g);
        let by_tape = tensor::perturb_gradient(&mut tape, &x);
        common::assert_close("rosenbrock gradient", &g, by_tape[0].as_slice(), 1e-12);
        let (unfused, fused) = (
            perturb_deferred_grad(&x, usize::MAX),
            perturb_deferred_grad(&x, 64),
        );
        let bits = |t: &Tensor<f64>| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&unfused),
            bits(&by_tape[0]),
            "deferred and plain gradients differ"
        );
        assert_eq!(
            bits(&unfused),
            bits(&fused),
            "fused and unfused gradients differ"
        );

        let mut group = common::group(c, &format!("fusion_rosenbrock_grad_n{n}"));
        group.bench_function("hand_written_gradient", |b| {
            b.iter(|| tensor::rosenbrock_grad(black_box(x.as_slice()), &mut g))
        });
        group.bench_function("perturb_tape_plain", |b| {
            b.iter(|| tensor::perturb_gradient(&mut tape, black_box(&x)))
        });
        group.bench_function("perturb_deferred_unfused", |b| {
            b.iter(|| perturb_deferred_grad(black_box(&x), usize::MAX))
        });
        group.bench_function("perturb_deferred_fused", |b| {
            b.iter(|| perturb_deferred_grad(black_box(&x), 64))
        });
        group.finish();
    }
}

criterion_group!(
    benches,
    bench_fused_rosenbrock,
    bench_fused_deferred_value,
    bench_fused_hvp,
    bench_fused_grad
);
criterion_main!(benches);
