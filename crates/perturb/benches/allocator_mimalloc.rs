//! The workloads of `allocator.rs` under mimalloc, for the comparison of issue 19 (with the
//! system allocator and the pool, each tensor benchmark within 1.2x of its mimalloc figure).
//!
//! Run: `cargo bench -p perturb --bench allocator_mimalloc -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "allocator/workloads.rs"]
mod workloads;

fn mimalloc(c: &mut Criterion) {
    workloads::all(c, "mimalloc");
}

criterion_group!(benches, mimalloc);
criterion_main!(benches);
