//! The tensor-engine suite (issue 3, baselines of issue 19), each workload with its hand-written
//! baseline in the same run. Compiled twice: `benches/tensor.rs` (Rust's default allocator, the
//! one a user of the library has) and `benches/tensor_mimalloc.rs` (mimalloc, a second column;
//! its group names end in `_mimalloc`).
//!
//! Every baseline is the best straightforward Rust for its function, and is checked against
//! perturb's result before anything is timed:
//! - seed_mlp: the lecture's network (2 inputs, 3 sigmoid hidden units, logistic NLL) on 1000
//!   two-moons points, one full-batch gradient-descent step in f64 that also returns the loss;
//!   baseline: the same step by hand, its exponentials through the same vectorised `sigmoid`
//!   and `log_sigmoid` perturb uses (the public `Tensor` ones), the rest in plain loops.
//! - mlp_784: an f32 MLP 784-512-512-10 with ReLU and softmax cross-entropy, batch 256, one SGD
//!   step that also returns the loss; baseline: the same step by hand through the same GEMM
//!   (matrixmultiply, the same threads), its buffers kept from step to step, element-wise work
//!   fused into the loops around the products, the largest update on rayon as perturb's. Also
//!   one 512^3 product, for the reachable FLOP rate.
//! - rosenbrock: the extended Rosenbrock function, n = 10,000, with tensor operations; gradient
//!   by reverse mode; baseline: the gradient by hand, element by element (vectorised).
//! - parallel_threshold: where rayon starts to pay on this machine (no baseline).

use criterion::{black_box, Criterion};
use perturb::tensor::{Array, Element, Tensor, TensorTape, TensorVar};

use super::common::{assert_close, group, rosenbrock, rosenbrock_point, seed_loss};

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

/// One gradient-descent step of the lecture's network by hand; returns the loss before the
/// step. Parameters `[W (3x2), b (3), w0 (3), c]`. The exponentials run as whole-array passes
/// through perturb's vectorised `sigmoid` and `log_sigmoid` (a per-point loop would call libm's
/// scalar `exp` 4,000 times); the backward pass and the loss's sum are one loop over the points.
fn seed_step_by_hand(p: &mut [f64; 13], x: &[f64], sign: &[f64], lr: f64) -> f64 {
    let n = sign.len();
    let mut pre = Vec::with_capacity(3 * n);
    for xi in x.chunks_exact(2) {
        for j in 0..3 {
            pre.push(p[2 * j] * xi[0] + p[2 * j + 1] * xi[1] + p[6 + j]);
        }
    }
    let h = Tensor::from_vec(pre, &[3 * n]).unwrap().sigmoid();
    // t = s z; the loss is -sum log sigmoid(t), and d/dz = -s sigmoid(-t).
    let (mut t, mut minus_t) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (hi, &s) in h.as_slice().chunks_exact(3).zip(sign) {
        let z = p[12] + p[9] * hi[0] + p[10] * hi[1] + p[11] * hi[2];
        t.push(s * z);
        minus_t.push(-s * z);
    }
    let log_sig = Tensor::from_vec(t, &[n]).unwrap().log_sigmoid();
    let sig_minus = Tensor::from_vec(minus_t, &[n]).unwrap().sigmoid();
    let mut g = [0.0; 13];
    let mut loss = 0.0;
    let points = x.chunks_exact(2).zip(h.as_slice().chunks_exact(3));
    let per_point = sign
        .iter()
        .zip(log_sig.as_slice())
        .zip(sig_minus.as_slice());
    for ((xi, hi), ((&s, &ls), &sm)) in points.zip(per_point) {
        loss -= ls;
        let dz = -s * sm;
        g[12] += dz;
        for j in 0..3 {
            g[9 + j] += dz * hi[j];
            let dpre = dz * p[9 + j] * hi[j] * (1.0 - hi[j]);
            g[2 * j] += dpre * xi[0];
            g[2 * j + 1] += dpre * xi[1];
            g[6 + j] += dpre;
        }
    }
    for (pi, gi) in p.iter_mut().zip(g) {
        *pi -= lr * gi;
    }
    loss
}

/// One gradient-descent step by perturb's tape (reused): `loss` of the parameters recorded, its
/// gradient, the update `p - lr g`; returns the loss before the step.
fn perturb_step<T: Element>(
    tape: &mut TensorTape<Tensor<T>>,
    params: &mut [Tensor<T>],
    lr: T,
    loss: impl for<'t> Fn(
        &'t TensorTape<Tensor<T>>,
        &[TensorVar<'t, Tensor<T>>],
    ) -> TensorVar<'t, Tensor<T>>,
) -> T {
    let (value, grads) = {
        let vars: Vec<_> = params.iter().map(|t| tape.var(t.clone())).collect();
        let loss = loss(tape, &vars);
        let refs: Vec<_> = vars.iter().collect();
        (
            loss.value().item().unwrap(),
            tape.gradient(&loss, &refs).unwrap(),
        )
    };
    tape.clear();
    for (p, g) in params.iter_mut().zip(&grads) {
        *p = p.sub(&g.scale(lr));
    }
    value
}

/// The seed-mlp step by perturb.
fn seed_step_by_perturb(
    tape: &mut TensorTape<Tensor<f64>>,
    p: &mut [Tensor<f64>],
    x: &Tensor<f64>,
    sign: &Tensor<f64>,
    lr: f64,
) -> f64 {
    perturb_step(tape, p, lr, |tape, v| {
        let (x, sign) = (tape.constant(x.clone()), tape.constant(sign.clone()));
        seed_loss(&v[0], &v[1], &v[2], &v[3], &x, &sign)
    })
}

pub fn bench_seed_mlp(c: &mut Criterion) {
    let (x, y) = two_moons(1000, 0.1, 0);
    let sign = Tensor::vector(&y.iter().map(|&v| 2.0 * v - 1.0).collect::<Vec<_>>());
    let init: Vec<f64> = Tensor::<f64>::randn(&[13], 0.0, 0.5, 1).into_vec();
    let lr = 1e-3;
    let shapes: [&[usize]; 4] = [&[3, 2], &[3], &[3], &[1]];
    let starting_tensors = || -> Vec<Tensor<f64>> {
        let mut at = 0;
        shapes
            .iter()
            .map(|s| {
                let len = s.iter().product::<usize>();
                at += len;
                Tensor::from_vec(init[at - len..at].to_vec(), s).unwrap()
            })
            .collect()
    };
    let mut params: [f64; 13] = init.clone().try_into().unwrap();
    let mut p = starting_tensors();
    let mut tape = TensorTape::new();

    // Both steps from the same start: the same loss and the same parameters after.
    let loss_hand = seed_step_by_hand(&mut params, x.as_slice(), sign.as_slice(), lr);
    let loss_perturb = seed_step_by_perturb(&mut tape, &mut p, &x, &sign, lr);
    assert_close("seed-mlp loss", &[loss_hand], &[loss_perturb], 1e-12);
    let after: Vec<f64> = p.iter().flat_map(|t| t.to_vec()).collect();
    assert_close("seed-mlp parameters", &params, &after, 1e-12);

    let mut group = group(c, "seed_mlp_n1000");
    group.bench_function("hand_written_step", |b| {
        b.iter(|| seed_step_by_hand(&mut params, black_box(x.as_slice()), sign.as_slice(), lr))
    });
    group.bench_function("perturb_step", |b| {
        b.iter(|| seed_step_by_perturb(&mut tape, &mut p, black_box(&x), &sign, lr))
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

/// `c = a b` through matrixmultiply (perturb's GEMM, with the same threads), `a` read as
/// (m x k) and `b` as (k x n) with the given (row, column) strides, `c` row-major.
fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    sa: (usize, usize),
    b: &[f32],
    sb: (usize, usize),
    c: &mut [f32],
) {
    assert!(c.len() == m * n);
    assert!(a.len() > (m - 1) * sa.0 + (k - 1) * sa.1 && b.len() > (k - 1) * sb.0 + (n - 1) * sb.1);
    // SAFETY: the assertions above keep every read of `a` and `b` and write of `c` in bounds.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0 as isize,
            sa.1 as isize,
            b.as_ptr(),
            sb.0 as isize,
            sb.1 as isize,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `p -= lr g`, on rayon's threads from 2^18 elements, where perturb's element-wise loops
/// go parallel.
fn sgd_update(p: &mut [f32], g: &[f32], lr: f32) {
    use rayon::prelude::*;
    if p.len() >= 1 << 18 {
        p.par_chunks_mut(1 << 15)
            .zip(g.par_chunks(1 << 15))
            .for_each(|(p, g)| p.iter_mut().zip(g).for_each(|(p, g)| *p -= lr * g));
    } else {
        p.iter_mut().zip(g).for_each(|(p, g)| *p -= lr * g);
    }
}

/// Column sums of a row-major matrix with `cols` columns, into `sums`.
fn column_sums(m: &[f32], sums: &mut [f32]) {
    sums.fill(0.0);
    for row in m.chunks_exact(sums.len()) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
}

/// `a = relu(a)` where `relu`, after `a += b` along the rows.
fn add_bias(a: &mut [f32], b: &[f32], relu: bool) {
    for row in a.chunks_exact_mut(b.len()) {
        for (v, b) in row.iter_mut().zip(b) {
            *v = if relu { (*v + b).max(0.0) } else { *v + b };
        }
    }
}

/// The backward pass of a dense layer `z = a W + b` with `W` of shape (k x n): `dW = a^T dZ`,
/// `db` the column sums of `dZ`, and where `da` is asked for, `dZ W^T` where the ReLU that made
/// `a` let through (`a > 0`).
fn layer_backward(
    (a, dz, w): (&[f32], &[f32], &[f32]),
    (k, n): (usize, usize),
    dw: &mut [f32],
    db: &mut [f32],
    da: Option<&mut [f32]>,
) {
    let batch = dz.len() / n;
    sgemm((k, batch, n), a, (1, k), dz, (n, 1), dw);
    column_sums(dz, db);
    if let Some(da) = da {
        sgemm((batch, n, k), dz, (n, 1), w, (1, n), da);
        for (g, &a) in da.iter_mut().zip(a) {
            *g = if a > 0.0 { *g } else { 0.0 };
        }
    }
}

/// The 784-512-512-10 network trained by hand: its parameters `[W1, b1, W2, b2, W3, b3]`
/// (row-major, `W` of shape inputs x outputs) and the buffers of a step, allocated once and
/// reused, as a hand-written training loop keeps them.
struct MlpByHand {
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    /// The hidden layers' outputs, then the cotangents of their inputs.
    a1: Vec<f32>,
    a2: Vec<f32>,
    da1: Vec<f32>,
    da2: Vec<f32>,
    /// The logits, then their cotangent.
    dz: Vec<f32>,
}

impl MlpByHand {
    const SIZES: [usize; 4] = [784, 512, 512, 10];

    fn new(params: Vec<Vec<f32>>, batch: usize) -> Self {
        let [_, d1, d2, d3] = Self::SIZES;
        MlpByHand {
            grads: params.iter().map(|p| vec![0.0; p.len()]).collect(),
            params,
            a1: vec![0.0; batch * d1],
            a2: vec![0.0; batch * d2],
            da1: vec![0.0; batch * d1],
            da2: vec![0.0; batch * d2],
            dz: vec![0.0; batch * d3],
        }
    }

    /// One SGD step; returns the loss before the step.
    fn step(&mut self, x: &[f32], labels: &[usize], lr: f32) -> f32 {
        let [d0, d1, d2, d3] = Self::SIZES;
        let batch = labels.len();
        let (p, g) = (&mut self.params, &mut self.grads);
        // Forward: each layer's bias and ReLU in one pass over its product.
        sgemm((batch, d0, d1), x, (d0, 1), &p[0], (d1, 1), &mut self.a1);
        add_bias(&mut self.a1, &p[1], true);
        sgemm(
            (batch, d1, d2),
            &self.a1,
            (d1, 1),
            &p[2],
            (d2, 1),
            &mut self.a2,
        );
        add_bias(&mut self.a2, &p[3], true);
        sgemm(
            (batch, d2, d3),
            &self.a2,
            (d2, 1),
            &p[4],
            (d3, 1),
            &mut self.dz,
        );
        add_bias(&mut self.dz, &p[5], false);
        // The loss, and dZ = (softmax(z) - onehot) / batch in place.
        let mut loss = 0.0;
        for (row, &label) in self.dz.chunks_exact_mut(d3).zip(labels) {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut s = 0.0;
            for v in row.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            loss -= (row[label] / s).ln();
            for v in row.iter_mut() {
                *v /= s * batch as f32;
            }
            row[label] -= 1.0 / batch as f32;
        }
        // Backward, last layer first; the first layer's input needs no gradient.
        let [gw1, gb1, gw2, gb2, gw3, gb3] = &mut g[..] else {
            unreachable!("six parameters")
        };
        let (a1, a2, dz) = (&self.a1, &self.a2, &self.dz);
        layer_backward((a2, dz, &p[4]), (d2, d3), gw3, gb3, Some(&mut self.da2));
        layer_backward(
            (a1, &self.da2, &p[2]),
            (d1, d2),
            gw2,
            gb2,
            Some(&mut self.da1),
        );
        layer_backward((x, &self.da1, &p[0]), (d0, d1), gw1, gb1, None);
        for (p, g) in p.iter_mut().zip(g.iter()) {
            sgd_update(p, g, lr);
        }
        loss / batch as f32
    }
}

/// The mlp-784 step by perturb.
fn mlp_step_by_perturb(
    tape: &mut TensorTape<Tensor<f32>>,
    params: &mut [Tensor<f32>],
    x: &Tensor<f32>,
    onehot: &Tensor<f32>,
    lr: f32,
) -> f32 {
    perturb_step(tape, params, lr, |tape, v| {
        mlp_loss(v, &tape.constant(x.clone()), &tape.constant(onehot.clone()))
    })
}

pub fn bench_mlp_784(c: &mut Criterion) {
    let batch = 256;
    let sizes = MlpByHand::SIZES;
    let x = Tensor::<f32>::rand_uniform(&[batch, 784], 0.0, 1.0, 2);
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7) % 10).collect();
    let mut onehot = vec![0.0f32; batch * 10];
    for (i, &label) in labels.iter().enumerate() {
        onehot[i * 10 + label] = 1.0;
    }
    let onehot = Tensor::from_vec(onehot, &[batch, 10]).unwrap();
    let mut params: Vec<Tensor<f32>> = Vec::new();
    for (l, w) in sizes.windows(2).enumerate() {
        let scale = (2.0 / w[0] as f32).sqrt(); // He initialisation
        params.push(Tensor::randn(&[w[0], w[1]], 0.0, scale, 10 + l as u64));
        // Small non-zero biases, so that a wrong bias gradient shows in the check below.
        params.push(Tensor::randn(&[w[1]], 0.0, 0.01, 20 + l as u64));
    }
    let lr = 0.01f32;
    let mut by_hand = MlpByHand::new(params.iter().map(|t| t.to_vec()).collect(), batch);
    let mut tape = TensorTape::new();

    // Both steps from the same start: the same loss and the same parameters after (f32, and
    // the two sum in different orders).
    let loss_hand = by_hand.step(x.as_slice(), &labels, lr);
    let loss_perturb = mlp_step_by_perturb(&mut tape, &mut params, &x, &onehot, lr);
    assert_close("mlp-784 loss", &[loss_hand], &[loss_perturb], 1e-5);
    for (l, (h, p)) in by_hand.params.iter().zip(&params).enumerate() {
        assert_close(&format!("mlp-784 parameter {l}"), h, p.as_slice(), 1e-5);
    }

    let mut group = group(c, "mlp_784");
    group.sample_size(20);
    group.bench_function("hand_written_sgd_step", |bch| {
        bch.iter(|| by_hand.step(black_box(x.as_slice()), &labels, lr))
    });
    group.bench_function("perturb_sgd_step", |bch| {
        bch.iter(|| mlp_step_by_perturb(&mut tape, &mut params, black_box(&x), &onehot, lr))
    });
    let (a, b) = (
        Tensor::<f32>::ones(&[512, 512]),
        Tensor::<f32>::ones(&[512, 512]),
    );
    group.bench_function("gemm_512x512x512", |bch| {
        bch.iter(|| black_box(&a).matmul(black_box(&b)))
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

/// The gradient of the extended Rosenbrock function by hand, element by element: `g[i]` reads
/// only `x[i-1]`, `x[i]` and `x[i+1]`, so no iteration depends on another and the loop
/// vectorises (accumulating `g[i]` and `g[i+1]` term by term would carry a dependency).
pub fn rosenbrock_grad(x: &[f64], g: &mut [f64]) {
    let n = x.len();
    assert!(n >= 2 && g.len() == n);
    // The derivative in x_i of term i, 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, and of term
    // i - 1, 100 (x_i - x_{i-1}^2)^2.
    let own = |xi: f64, next: f64| -400.0 * xi * (next - xi * xi) - 2.0 * (1.0 - xi);
    let prev = |before: f64, xi: f64| 200.0 * (xi - before * before);
    g[0] = own(x[0], x[1]);
    let triples = x[..n - 2].iter().zip(&x[1..n - 1]).zip(&x[2..]);
    for (gi, ((&before, &xi), &next)) in g[1..n - 1].iter_mut().zip(triples) {
        *gi = prev(before, xi) + own(xi, next);
    }
    g[n - 1] = prev(x[n - 2], x[n - 1]);
}

/// The Rosenbrock gradient by perturb's tape, reused.
pub fn perturb_gradient(tape: &mut TensorTape<Tensor<f64>>, x: &Tensor<f64>) -> Vec<Tensor<f64>> {
    let grad = {
        let xv = tape.var(x.clone());
        let y = rosenbrock(&xv).unwrap();
        tape.gradient(&y, &[&xv]).unwrap()
    };
    tape.clear();
    grad
}

pub fn bench_rosenbrock(c: &mut Criterion) {
    let n = 10_000;
    let x = rosenbrock_point(n);
    let mut g = vec![0.0; n];
    let mut tape = TensorTape::new();
    rosenbrock_grad(x.as_slice(), &mut g);
    let by_perturb = perturb_gradient(&mut tape, &x);
    assert_close("rosenbrock gradient", &g, by_perturb[0].as_slice(), 1e-12);

    let mut group = group(c, "tensor_rosenbrock_n10000");
    group.bench_function("hand_written_gradient", |b| {
        b.iter(|| rosenbrock_grad(black_box(x.as_slice()), &mut g))
    });
    group.bench_function("perturb_gradient", |b| {
        b.iter(|| perturb_gradient(&mut tape, black_box(&x)))
    });
    // With the debugging mode on (every value and cotangent checked); off is the row above.
    group.bench_function("perturb_gradient_debug_on", |b| {
        b.iter(|| {
            perturb::debug::detect_non_finite(|| perturb_gradient(&mut tape, black_box(&x)))
                .unwrap()
        })
    });
    group.finish();
}

/// Where rayon starts to pay on this machine: a cheap element-wise operation (`+`) and an
/// expensive one (`exp`), serial and on rayon's pool, at several sizes. `kernels::map` and
/// `kernels::zip` switch at `PARALLEL_THRESHOLD`.
pub fn bench_parallel_threshold(c: &mut Criterion) {
    use rayon::prelude::*;
    let mut group = group(c, "parallel_threshold");
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

criterion::criterion_group!(
    benches,
    bench_seed_mlp,
    bench_mlp_784,
    bench_rosenbrock,
    bench_parallel_threshold
);
