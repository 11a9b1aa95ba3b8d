//! The workloads of the allocator benchmarks (issue 19), shared by `allocator.rs` (the system
//! allocator) and `allocator_mimalloc.rs`: each runs with the buffer pool off and on, in that
//! order, within one criterion group, so the two settings are measured in the same process.
//! (Off first: glibc's behaviour depends on the heap's history, and a run after the pool's
//! buffers were freed at once found the heap laid out so that it kept its pages.)
//! The workloads are those of `tensor.rs` and `transforms.rs`, copied.

use std::time::{Duration, Instant};

use criterion::{black_box, Criterion};
use perturb::tensor::{buffers, hvp, Array, DualTensor, Tensor, TensorTape};

/// Runs every workload with the pool off and on; `allocator` names the allocator in the rows.
pub fn all(c: &mut Criterion, allocator: &str) {
    rosenbrock_gradient(c, allocator);
    rosenbrock_hvp(c, allocator);
    seed_mlp_step(c, allocator);
    seed_mlp_jvp(c, allocator);
    mlp_784_step(c, allocator);
    buffers::set_enabled(true);
}

/// `f` benchmarked as `{allocator}_pool_off`, then `{allocator}_pool_on`, in `group`.
fn on_and_off(c: &mut Criterion, group: &str, allocator: &str, mut f: impl FnMut()) {
    let mut group = c.benchmark_group(group);
    for on in [false, true] {
        buffers::set_enabled(on);
        let name = format!("{allocator}_pool_{}", if on { "on" } else { "off" });
        group.bench_function(name, |b| b.iter_custom(|iters| median_times(iters, &mut f)));
    }
    buffers::set_enabled(true);
    group.finish();
}

/// `iters` runs of `f`, each timed, reported as `iters` times their median: on a machine shared
/// with other jobs the scheduler takes the thread away for milliseconds at a time, which a
/// total over many runs of 30 µs counts and a median leaves out. (Each call of `Instant::now`
/// costs about 25 ns.)
fn median_times(iters: u64, f: &mut impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .map_or(Duration::ZERO, |&t| t * iters as u32)
}

/// The extended Rosenbrock function with tensor operations (as in `tensor.rs`).
fn rosenbrock<A: Array>(x: &A) -> Result<A, perturb::Error> {
    let n = x.shape()[0];
    let head = x.try_narrow(0, 0, n - 1)?;
    let tail = x.try_narrow(0, 1, n - 1)?;
    let a = tail.try_sub(&head.square())?;
    let b = head.add_scalar(A::elem(-1.0));
    a.square()
        .scale(A::elem(100.0))
        .try_add(&b.square())
        .map(|s| s.sum_all())
}

fn rosenbrock_point(n: usize) -> Tensor<f64> {
    let x = (0..n).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect();
    Tensor::from_vec(x, &[n]).unwrap()
}

fn rosenbrock_gradient(c: &mut Criterion, allocator: &str) {
    let x = rosenbrock_point(10_000);
    let mut tape = TensorTape::new();
    on_and_off(c, "alloc_rosenbrock_gradient_n10000", allocator, || {
        let grad = {
            let xv = tape.var(black_box(&x).clone());
            let y = rosenbrock(&xv).unwrap();
            tape.gradient(&y, &[&xv]).unwrap()
        };
        tape.clear();
        black_box(grad);
    });
}

fn rosenbrock_hvp(c: &mut Criterion, allocator: &str) {
    let x = rosenbrock_point(10_000);
    let v = Tensor::<f64>::ones(&[10_000]);
    on_and_off(c, "alloc_rosenbrock_hvp_n10000", allocator, || {
        black_box(hvp(|x| rosenbrock(x), black_box(&x), &v).unwrap());
    });
}

/// The lecture's loss (as in `tensor.rs`).
fn seed_loss<A: Array>(w: &A, b: &A, w0: &A, c: &A, x: &A, sign: &A) -> A {
    let hidden = x.matmul(&w.transpose()).add(b).sigmoid();
    let z = hidden.matmul(w0).add(c);
    z.mul(sign).log_sigmoid().sum_all().neg()
}

/// 1000 points, their signs and the 13 parameters of the lecture's network.
fn seed_data() -> (Tensor<f64>, Tensor<f64>, Vec<Tensor<f64>>) {
    let n = 1000;
    let x = Tensor::<f64>::randn(&[n, 2], 0.0, 1.0, 3);
    let sign: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let shapes: [&[usize]; 4] = [&[3, 2], &[3], &[3], &[1]];
    let params = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Tensor::randn(s, 0.0, 0.5, 10 + i as u64))
        .collect();
    (x, Tensor::vector(&sign), params)
}

fn seed_mlp_step(c: &mut Criterion, allocator: &str) {
    let (x, sign, mut p) = seed_data();
    let mut tape = TensorTape::new();
    on_and_off(c, "alloc_seed_mlp_step_n1000", allocator, || {
        let grads = {
            let vars: Vec<_> = p.iter().map(|t| tape.var(t.clone())).collect();
            let loss = seed_loss(
                &vars[0],
                &vars[1],
                &vars[2],
                &vars[3],
                &tape.constant(black_box(&x).clone()),
                &tape.constant(sign.clone()),
            );
            let refs: Vec<_> = vars.iter().collect();
            tape.gradient(&loss, &refs).unwrap()
        };
        tape.clear();
        for (pi, g) in p.iter_mut().zip(&grads) {
            *pi = pi.sub(&g.scale(1e-3));
        }
    });
}

fn seed_mlp_jvp(c: &mut Criterion, allocator: &str) {
    let (x, sign, params) = seed_data();
    let tangents: Vec<Tensor<f64>> = params
        .iter()
        .enumerate()
        .map(|(i, p)| Tensor::randn(p.shape(), 0.0, 1.0, 20 + i as u64))
        .collect();
    on_and_off(c, "alloc_seed_mlp_jvp_n1000", allocator, || {
        let d: Vec<DualTensor<Tensor<f64>>> = params
            .iter()
            .zip(&tangents)
            .map(|(p, t)| DualTensor::new(p.clone(), t.clone()))
            .collect();
        black_box(seed_loss(
            &d[0],
            &d[1],
            &d[2],
            &d[3],
            &DualTensor::constant(black_box(&x).clone()),
            &DualTensor::constant(sign.clone()),
        ));
    });
}

/// The f32 MLP 784-512-512-10's loss (as in `tensor.rs`).
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

fn mlp_784_step(c: &mut Criterion, allocator: &str) {
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
        let scale = (2.0 / w[0] as f32).sqrt();
        params.push(Tensor::randn(&[w[0], w[1]], 0.0, scale, 10 + l as u64));
        params.push(Tensor::zeros(&[w[1]]));
    }
    let mut tape = TensorTape::new();
    on_and_off(c, "alloc_mlp_784_step", allocator, || {
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
            *p = p.sub(&g.scale(0.01));
        }
    });
}
