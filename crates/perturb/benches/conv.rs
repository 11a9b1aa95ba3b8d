//! conv2d forward + backward against the GEMMs it performs (issue 15), in the same run.
//!
//! Run: `cargo bench -p perturb --bench conv`
//!
//! The layer: batch 64, 1 x 28 x 28 inputs, 32 filters 3 x 3, stride 1, padding 1, f32.
//! - `tape_forward_backward`: `conv2d` on tape variables, then the VJP for the input and the
//!   weight (a middle layer's full step), tape included.
//! - `ops_forward_backward`: the three operations' values alone (`Conv`, `ConvTranspose`,
//!   `ConvWeightGrad`), no tape.
//! - `gemm_baseline`: only the products the convolution performs, through the same `T::gemm`
//!   on buffers allocated once, per image: `y = W cols` (32 x 9 x 784), `cols = W^T g`
//!   (9 x 32 x 784) and `dW += g cols^T` (32 x 784 x 9), the images split over rayon's pool as
//!   the convolution splits them. "GEMM time / conv time" is the share of the convolution's
//!   time that is multiplication (the goal is at least 60%).
//!
//! It runs with the system allocator, the one a user of perturb has by default.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use perturb::tensor::conv::{conv2d, Conv2dOptions};
use perturb::tensor::ops::{Conv, ConvTranspose, ConvWeightGrad};
use perturb::tensor::{Op, Tensor, TensorTape};

#[path = "conv/baseline.rs"]
mod baseline;
use baseline::GemmBaseline;

const N: usize = 64;
const O: usize = 32;
const K: usize = 9; // 1 channel x 3 x 3 taps
const P: usize = 28 * 28;

fn bench_conv2d(c: &mut Criterion) {
    let x = Tensor::<f32>::randn(&[N, 1, 28, 28], 0.0, 1.0, 1);
    let w = Tensor::<f32>::randn(&[O, 1, 3, 3], 0.0, 0.3, 2);
    let g = Tensor::<f32>::randn(&[N, O, 28, 28], 0.0, 1.0, 3);
    let options = Conv2dOptions::default().padding(1);
    let mut group = c.benchmark_group("conv2d_64x1x28x28_32x3x3");
    group.sample_size(30);

    group.bench_function("tape_forward_backward", |b| {
        b.iter(|| {
            let tape = TensorTape::new();
            let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
            let y = conv2d(&xv, &wv, options);
            black_box(tape.vjp(&y, &g, &[&xv, &wv]).unwrap())
        })
    });

    group.bench_function("ops_forward_backward", |b| {
        let conv = Conv { options };
        let transpose = ConvTranspose { options };
        let weight = ConvWeightGrad {
            options,
            kernel: [3, 3],
        };
        b.iter(|| {
            let y = conv.eval(&[&x, &w]).unwrap();
            let dx = transpose.eval(&[&g, &w]).unwrap();
            let dw = weight.eval(&[&x, &g]).unwrap();
            black_box((y, dx, dw))
        })
    });

    group.bench_function("gemm_baseline", |b| {
        let mut baseline = GemmBaseline::new(N, O, K, P);
        b.iter(|| {
            baseline.run(w.as_slice(), g.as_slice());
            black_box(&baseline);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_conv2d);
criterion_main!(benches);
