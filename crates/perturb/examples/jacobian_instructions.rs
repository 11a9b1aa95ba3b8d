//! The Jacobian benchmark's functions (`benches/jacobian.rs`) called ten times each, for an
//! instruction count that does not depend on the machine's load (BENCHMARKS.md, "Instructions
//! per Jacobian"). Each is called through a `run_*` function that callgrind can switch on:
//!
//! ```sh
//! cargo build --profile bench -p perturb --example jacobian_instructions
//! valgrind --tool=callgrind --toggle-collect='jacobian_instructions::run*' \
//!     target/release/examples/jacobian_instructions
//! callgrind_annotate --inclusive=yes callgrind.out.* | grep run_
//! ```

use std::hint::black_box;

use perturb::tensor::{jacfwd, jacrev, Array, Tensor};

#[path = "../benches/jacobian/workloads.rs"]
mod workloads;
use workloads::{
    matvec, problem, softmax_ax, softmax_ax_jacobian_by_hand, tanh_ax, tanh_ax_jacobian_by_hand,
};

#[inline(never)]
fn run_tanh_by_hand(a: &Tensor<f64>, x: &Tensor<f64>, z: &mut [f64], out: &mut [f64]) {
    tanh_ax_jacobian_by_hand(black_box(a.as_slice()), x.as_slice(), z, out)
}

#[inline(never)]
fn run_tanh_jacfwd(a: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    jacfwd(|x| tanh_ax(a, x), black_box(x)).unwrap()
}

#[inline(never)]
fn run_tanh_jacrev(a: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    jacrev(|x| tanh_ax(a, x), black_box(x)).unwrap()
}

#[inline(never)]
fn run_softmax_by_hand(
    a: &Tensor<f64>,
    x: &Tensor<f64>,
    z: &mut [f64],
    v: &mut [f64],
    out: &mut [f64],
) {
    softmax_ax_jacobian_by_hand(black_box(a.as_slice()), x.as_slice(), z, v, out)
}

#[inline(never)]
fn run_softmax_jacfwd(a: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    jacfwd(|x| softmax_ax(a, x), black_box(x)).unwrap()
}

#[inline(never)]
fn run_softmax_jacrev(a: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    jacrev(|x| softmax_ax(a, x), black_box(x)).unwrap()
}

/// `A x` alone: perturb's matrix-vector product against the hand-written loop.
#[inline(never)]
fn run_matvec_perturb(a: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    black_box(a).matmul(black_box(x))
}

#[inline(never)]
fn run_matvec_by_hand(a: &Tensor<f64>, x: &Tensor<f64>, z: &mut [f64]) {
    matvec(black_box(a.as_slice()), x.as_slice(), z)
}

fn main() {
    let (a, x) = problem();
    let n = x.len();
    let (mut z, mut v, mut out) = (vec![0.0; n], vec![0.0; n], vec![0.0; n * n]);
    for _ in 0..10 {
        run_tanh_by_hand(&a, &x, &mut z, &mut out);
        black_box(run_tanh_jacfwd(&a, &x));
        black_box(run_tanh_jacrev(&a, &x));
        run_softmax_by_hand(&a, &x, &mut z, &mut v, &mut out);
        black_box(run_softmax_jacfwd(&a, &x));
        black_box(run_softmax_jacrev(&a, &x));
        black_box(run_matvec_perturb(&a, &x));
        run_matvec_by_hand(&a, &x, &mut z);
    }
    println!("ran each Jacobian ten times: count with callgrind (see the module's comment)");
}
