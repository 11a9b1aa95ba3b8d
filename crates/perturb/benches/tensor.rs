//! The tensor-engine benchmarks with Rust's default allocator, the one a user of the library
//! has. The suite and what each baseline does: `suites/tensor.rs`.
//!
//! Run: `cargo bench -p perturb --bench tensor`

/// Group names as they are: this is the main column.
const GROUP_SUFFIX: &str = "";

#[path = "suites/common.rs"]
mod common;
#[path = "suites/tensor.rs"]
mod suite;

criterion::criterion_main!(suite::benches);
