//! One training epoch of issue 16's CNN on the digits (1438 training rows, 23 batches of 64:
//! forward, backward and an Adam step each), to compare with the same epoch in PyTorch
//! (`bench-torch/`). The network, the split and the epoch are those of `tests/cnn_digits.rs`.
//!
//! Run: `cargo bench -p perturb-nn --bench cnn` (rayon's default thread count, one per core;
//! `RAYON_NUM_THREADS=1` for one thread).

#[path = "../tests/support/cnn.rs"]
#[allow(dead_code)]
mod cnn;

use criterion::{criterion_group, criterion_main, Criterion};
use perturb_nn::optim::Adam;

fn bench(c: &mut Criterion) {
    let (train, _) = cnn::digits_split();
    let train = cnn::scaled(&train);
    let mut adam = Adam::new(cnn::LR);
    // One epoch first, so that Adam's moments exist as they do in every epoch of a run.
    let model = cnn::train_epoch(cnn::digits_cnn(0), &mut adam, &train, 0);
    let mut seed = 1;
    c.bench_function("cnn digits: one epoch (batch 64, Adam, f32)", |b| {
        b.iter(|| {
            seed += 1;
            cnn::train_epoch(model.clone(), &mut adam, &train, seed)
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
