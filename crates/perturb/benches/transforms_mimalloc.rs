//! Forward mode and composed transforms on tensors under mimalloc: the second column of
//! BENCHMARKS.md, to show what the default allocator costs. The suite: `suites/transforms.rs`.
//!
//! Run: `cargo bench -p perturb --bench transforms_mimalloc`

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Appended to every group name, so that the two columns never share a criterion directory.
const GROUP_SUFFIX: &str = "_mimalloc";

#[path = "suites/common.rs"]
mod common;
#[path = "suites/transforms.rs"]
mod suite;

criterion::criterion_main!(suite::benches);
