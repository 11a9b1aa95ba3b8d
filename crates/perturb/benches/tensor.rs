//! Tensor-engine benchmarks (issue 3), each with its baseline in the same run.
//!
//! Run: `cargo bench -p perturb --bench tensor`
//!
//! - seed_mlp: the lecture's network (2 inputs, 3 sigmoid hidden units, logistic NLL) on 1000
//!   two-moons points, one full-batch gradient-descent step in f64; baseline: the same step
//!   written by hand as one fused loop.
//! - mlp_784: an f32 MLP 784-512-512-10 with ReLU and softmax cross-entropy, batch 256, one SGD
//!   step; baseline: one 512x512x512 matrix product through the same GEMM, for the machine's
//!   reachable FLOP rate.
//! - rosenbrock: the extended Rosenbrock function, n = 10,000, with tensor operations; gradient
//!   by reverse mode; baseline: the hand-written gradient.

// glibc's allocator gives memory back to the OS whenever more than 128 KiB is free at the top of
// its heap, and the next tensor faults it in again, page by page: for tensors of 10^4 elements
// that costs more than the arithmetic. mimalloc keeps such memory for reuse. BENCHMARKS.md gives
// figures with both allocators.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use perturb::tensor::{Array, Element, Tensor, TensorTape};

/// Two interleaving half circles with Gaussian noise (as scikit-learn's `make_moons`), seeded.
fn two_moons(n: usize, noise: f64, seed: u64) -> (Tensor<f64>, Vec<f64>) {
    let jitter = Tensor::<f64>::randn(&[n, 2], 0.0, noise, seed).into_vec();
    let mut x = Vec::with_capacity(2 * n);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let upper = i < n / 2;
        let k = if upper { i } else { i - n / 2 };
        let m = if upper { n / 2 } else { n - n / 2 };
        let angle = std::f64::consts::PI * k as f64 / (m.max(2) - 1) as f64;
        let (px, py) = if upper {
            (angle.cos(), angle.sin())
        } else {
            (1.0 - angle.cos(), 0.5 - angle.sin())
        };
        x.push(px + jitter[2 * i]);
        x.push(py + jitter[2 * i + 1]);
        y.push(if upper { 0.0 } else { 1.0 });
    }
    (Tensor::from_vec(x, &[n, 2]).unwrap(), y)
}

/// The lecture's loss, written once with tensor operations.
fn seed_loss<A: Array>(w: &A, b: &A, w0: &A, c: &A, x: &A, sign: &A) -> A {
    let hidden = x.matmul(&w.transpose()).add(b).sigmoid();
    let z = hidden.matmul(w0).add(c);
    z.mul(sign).log_sigmoid().sum_all().neg()
}

/// One gradient-descent step of the lecture's network by hand: forward, backward and update
/// fused in two loops over the data. Parameters `[W (3x2), b (3), w0 (3), c]`.
fn seed_step_by_hand(p: &mut [f64; 13], x: &[f64], sign: &[f64], lr: f64) {
    let mut g = [0.0; 13];
    for (xi, &s) in x.chunks_exact(2).zip(sign) {
        let mut h = [0.0; 3];
        let mut z = p[12];
        for j in 0..3 {
            let pre = p[2 * j] * xi[0] + p[2 * j + 1] * xi[1] + p[6 + j];
            h[j] = 1.0 / (1.0 + (-pre).exp());
            z += p[9 + j] * h[j];
        }
        // d/dz of -log sigmoid(s z) = -s (1 - sigmoid(s z)) = -s sigmoid(-s z)
        let dz = -s / (1.0 + (s * z).exp());
        g[12] += dz;
        for j in 0..3 {
            g[9 + j] += dz * h[j];
            let dpre = dz * p[9 + j] * h[j] * (1.0 - h[j]);
            g[2 * j] += dpre * xi[0];
            g[2 * j + 1] += dpre * xi[1];
            g[6 + j] += dpre;
        }
    }
    for (pi, gi) in p.iter_mut().zip(g) {
        *pi -= lr * gi;
    }
}

fn bench_seed_mlp(c: &mut Criterion) {
    let (x, y) = two_moons(1000, 0.1, 0);
    let sign = Tensor::vector(&y.iter().map(|&v| 2.0 * v - 1.0).collect::<Vec<_>>());
    let init: Vec<f64> = Tensor::<f64>::randn(&[13], 0.0, 0.5, 1).into_vec();
    let lr = 1e-3;
    let mut group = c.benchmark_group("seed_mlp_n1000");

    let mut params: [f64; 13] = init.clone().try_into().unwrap();
    group.bench_function("hand_written_fused_step", |b| {
        b.iter(|| seed_step_by_hand(&mut params, black_box(x.as_slice()), sign.as_slice(), lr))
    });

    let shapes: [&[usize]; 4] = [&[3, 2], &[3], &[3], &[1]];
    let mut p: Vec<Tensor<f64>> = vec![
        Tensor::from_vec(init[0..6].to_vec(), shapes[0]).unwrap(),
        Tensor::from_vec(init[6..9].to_vec(), shapes[1]).unwrap(),
        Tensor::from_vec(init[9..12].to_vec(), shapes[2]).unwrap(),
        Tensor::from_vec(init[12..13].to_vec(), shapes[3]).unwrap(),
    ];
    let mut tape = TensorTape::new();
    group.bench_function("perturb_step", |b| {
        b.iter(|| {
            let grads = {
                let vars: Vec<_> = p.iter().map(|t| tape.var(t.clone())).collect();
                let loss = seed_loss(
                    &vars[0],
                    &vars[1],
                    &vars[2],
                    &vars[3],
                    &tape.constant(x.clone()),
                    &tape.constant(sign.clone()),
                );
                let refs: Vec<_> = vars.iter().collect();
                tape.gradient(&loss, &refs).unwrap()
            };
            tape.clear();
            for (pi, g) in p.iter_mut().zip(&grads) {
                *pi = pi.sub(&g.scale(lr));
            }
        })
    });
    group.finish();
}

/// The f32 MLP's loss: mean softmax cross-entropy of a 784-512-512-10 ReLU network.
fn mlp_loss<A: Array>(params: &[A], x: &A, onehot: &A) -> A {
    let h1 = x.matmul(&params[0]).add(&params[1]).relu();
    let h2 = h1.matmul(&params[2]).add(&params[3]).relu();
    let logits = h2.matmul(&params[4]).add(&params[5]);
    let batch = x.shape()[0] as f64;
    logits
        .log_softmax(1)
        .mul(onehot)
        .sum_all()
        .scale(A::elem(-1.0 / batch))
}

fn bench_mlp_784(c: &mut Criterion) {
    let batch = 256;
    let sizes = [784, 512, 512, 10];
    let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, 2);
    let mut onehot = vec![0.0f32; batch * 10];
    for i in 0..batch {
        onehot[i * 10 + (i * 7) % 10] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, &[batch, 10]).unwrap();
    let mut params: Vec<Tensor<f32>> = Vec::new();
    for (l, w) in sizes.windows(2).enumerate() {
        let scale = (2.0 / w[0] as f32).sqrt(); // He initialisation
        params.push(Tensor::randn(&[w[0], w[1]], 0.0, scale, 10 + l as u64));
        params.push(Tensor::zeros(&[w[1]]));
    }
    let lr = 0.01f32;
    let mut group = c.benchmark_group("mlp_784");
    group.sample_size(20);

    let (a, b) = (
        Tensor::<f32>::ones(&[512, 512]),
        Tensor::<f32>::ones(&[512, 512]),
    );
    group.bench_function("gemm_512x512x512_baseline", |bch| {
        bch.iter(|| black_box(&a).matmul(black_box(&b)))
    });

    let mut tape = TensorTape::new();
    group.bench_function("perturb_sgd_step", |bch| {
        bch.iter(|| {
            let grads = {
                let vars: Vec<_> = params.iter().map(|t| tape.var(t.clone())).collect();
                let loss = mlp_loss(
                    &vars,
                    &tape.constant(x.clone()),
                    &tape.constant(onehot.clone()),
                );
                let refs: Vec<_> = vars.iter().collect();
                tape.gradient(&loss, &refs).unwrap()
            };
            tape.clear();
            for (p, g) in params.iter_mut().zip(&grads) {
                *p = p.sub(&g.scale(lr));
            }
        })
    });
    group.finish();
    let flops = step_flops(batch, &sizes);
    eprintln!(
        "mlp_784: one step is {:.1} MFLOP (matrix products only); gemm 512^3 is {:.1} MFLOP",
        flops / 1e6,
        2.0 * 512f64.powi(3) / 1e6
    );
}

/// Matrix-product FLOPs of one step: the forward product of every layer, and in the backward
/// pass the weight gradient of every layer and the input gradient of all but the first.
fn step_flops(batch: usize, sizes: &[usize]) -> f64 {
    sizes
        .windows(2)
        .enumerate()
        .map(|(l, w)| {
            let one = 2.0 * (batch * w[0] * w[1]) as f64;
            if l == 0 {
                2.0 * one
            } else {
                3.0 * one
            }
        })
        .sum()
}

/// The extended Rosenbrock function with tensor operations.
fn rosenbrock<A: Array>(x: &A) -> A {
    let n = x.shape()[0];
    let head = x.try_narrow(0, 0, n - 1).unwrap();
    let tail = x.try_narrow(0, 1, n - 1).unwrap();
    let a = tail.sub(&head.square());
    // (1 - x_i)^2 written (x_i - 1)^2: one operation, as the hand-written `1 - x` is one.
    let b = head.add_scalar(A::elem(-1.0));
    a.square().scale(A::elem(100.0)).add(&b.square()).sum_all()
}

fn rosenbrock_grad<T: Element>(x: &[T], g: &mut [T]) {
    let (two, hundred) = (T::from(2.0).unwrap(), T::from(100.0).unwrap());
    g.fill(T::zero());
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        g[i] += -two * two * hundred * a * x[i] - two * (T::one() - x[i]);
        g[i + 1] += two * hundred * a;
    }
}

fn bench_rosenbrock(c: &mut Criterion) {
    let n = 10_000;
    let x = Tensor::<f64>::from_vec(
        (0..n).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect(),
        &[n],
    )
    .unwrap();
    let mut group = c.benchmark_group("tensor_rosenbrock_n10000");
    let mut g = vec![0.0; n];
    group.bench_function("hand_written_gradient", |b| {
        b.iter(|| rosenbrock_grad(black_box(x.as_slice()), &mut g))
    });
    let mut tape = TensorTape::new();
    group.bench_function("perturb_gradient", |b| {
        b.iter(|| {
            let grad = {
                let xv = tape.var(black_box(&x).clone());
                let y = rosenbrock(&xv);
                tape.gradient(&y, &[&xv]).unwrap()
            };
            tape.clear();
            grad
        })
    });
    // With the debugging mode on (every value and cotangent checked); off is the row above.
    group.bench_function("perturb_gradient_debug_on", |b| {
        b.iter(|| {
            perturb::debug::detect_non_finite(|| {
                let grad = {
                    let xv = tape.var(black_box(&x).clone());
                    let y = rosenbrock(&xv);
                    tape.gradient(&y, &[&xv]).unwrap()
                };
                tape.clear();
                grad
            })
            .unwrap()
        })
    });
    group.finish();
}

/// Where rayon starts to pay on this machine: a cheap element-wise operation (`+`) and an
/// expensive one (`exp`), serial and on rayon's pool, at several sizes. `kernels::map` and
/// `kernels::zip` switch at `PARALLEL_THRESHOLD`.
fn bench_parallel_threshold(c: &mut Criterion) {
    use rayon::prelude::*;
    let mut group = c.benchmark_group("parallel_threshold");
    for n in [4_096usize, 16_384, 65_536, 262_144] {
        let a: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let b = a.clone();
        group.bench_function(format!("add_serial/{n}"), |bch| {
            bch.iter(|| {
                black_box(&a)
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| x + y)
                    .collect::<Vec<f64>>()
            })
        });
        group.bench_function(format!("add_rayon/{n}"), |bch| {
            bch.iter(|| {
                black_box(&a)
                    .par_iter()
                    .zip(&b)
                    .map(|(x, y)| x + y)
                    .collect::<Vec<f64>>()
            })
        });
        group.bench_function(format!("exp_serial/{n}"), |bch| {
            bch.iter(|| black_box(&a).iter().map(|x| x.exp()).collect::<Vec<f64>>())
        });
        group.bench_function(format!("exp_rayon/{n}"), |bch| {
            bch.iter(|| {
                black_box(&a)
                    .par_iter()
                    .map(|x| x.exp())
                    .collect::<Vec<f64>>()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_seed_mlp,
    bench_mlp_784,
    bench_rosenbrock,
    bench_parallel_threshold
);
criterion_main!(benches);
