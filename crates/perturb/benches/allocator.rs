//! The tensor workloads with Rust's default (system) allocator, with perturb's buffer pool on
//! and off in one process (issue 19). `allocator_mimalloc.rs` runs the same under mimalloc.
//!
//! Run: `cargo bench -p perturb --bench allocator -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "allocator/workloads.rs"]
mod workloads;

fn system(c: &mut Criterion) {
    workloads::all(c, "system");
}

criterion_group!(benches, system);
criterion_main!(benches);
