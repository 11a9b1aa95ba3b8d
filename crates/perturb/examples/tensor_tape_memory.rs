//! Records `steps` iterations of `y = tanh(0.999 y + 0.001 x)` on 4-element tensors (four
//! operations each) and sweeps them back, to measure the tensor tape's memory per recorded
//! operation from outside (finding H6):
//!
//! `cargo build --release --example tensor_tape_memory -p perturb && /usr/bin/time -v target/release/examples/tensor_tape_memory 1000000`
//!
//! It prints the number of nodes, the peak resident memory after recording and after the
//! sweep (from `/proc/self/status`, where there is one), and both per node.

use perturb::tensor::{Array, Tensor, TensorTape};

/// The peak resident set size of this process in bytes (`VmHWM`), where Linux tells it.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("the number of steps"))
        .unwrap_or(1_000_000);
    let base = peak_rss().unwrap_or(0);
    let tape = TensorTape::new();
    let x = tape.var(Tensor::vector(&[0.1_f64, 0.2, 0.3, 0.4]));
    let mut y = tape.var(Tensor::vector(&[0.5_f64, -0.5, 1.0, -1.0]));
    let y0 = y.clone();
    let start = std::time::Instant::now();
    for _ in 0..steps {
        y = y.scale(0.999).add(&x.scale(0.001)).tanh();
    }
    let recorded = start.elapsed();
    let nodes = tape.len();
    let after_record = peak_rss().unwrap_or(0);
    let start = std::time::Instant::now();
    let g = tape
        .gradient(&y.sum_all(), &[&x, &y0])
        .expect("the gradient");
    let swept = start.elapsed();
    let after_sweep = peak_rss().unwrap_or(0);
    let per_node = |bytes: u64| bytes.saturating_sub(base) as f64 / nodes as f64;
    println!(
        "nodes: {nodes}, the tape's own lists {:.0} bytes per node",
        tape.bytes_per_node()
    );
    println!(
        "recorded in {recorded:.2?}, peak {:.0} MB, {:.0} bytes per node",
        after_record as f64 / 1e6,
        per_node(after_record)
    );
    println!(
        "swept in {swept:.2?}, peak {:.0} MB, {:.0} bytes per node",
        after_sweep as f64 / 1e6,
        per_node(after_sweep)
    );
    println!("dy/dx = {:?}", g[0].to_vec());
}
