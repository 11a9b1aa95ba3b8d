//! Training the digits MLP (64-64-10, tanh, softmax cross-entropy, full-batch gradient descent,
//! 20 epochs) with perturb, next to the same training written by hand in the same run, on the
//! same threads (the GEMM's and rayon's; set `RAYON_NUM_THREADS` and `MATMUL_NUM_THREADS` to
//! change both sides at once). Both return the last epoch's loss, and are checked to end at the
//! same weights and loss before anything is timed.
//!
//! Run: `cargo bench -p perturb-nn --bench training`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use perturb::tensor::{Array, Tensor, TensorTape};
use perturb_nn::data::{builtin, Standardizer};
use perturb_nn::loss::{softmax_cross_entropy, Reduction};
use perturb_nn::nn::{Activation, Init, Mlp};
use perturb_nn::optim::{GradientDescent, Optimizer};

const EPOCHS: usize = 20;
const LR: f64 = 0.5;

/// `c = op(a) op(b)` through matrixmultiply, `a` read as (m x k), `b` as (k x n), with the
/// given (row, column) strides.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    sa: (isize, isize),
    b: &[f64],
    sb: (isize, isize),
    c: &mut [f64],
) {
    // SAFETY: the callers pass buffers of exactly these sizes and strides.
    unsafe {
        matrixmultiply::dgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            sa.0,
            sa.1,
            b.as_ptr(),
            sb.0,
            sb.1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Column sums of a row-major matrix with `cols` columns.
fn column_sums(m: &[f64], cols: usize) -> Vec<f64> {
    let mut sums = vec![0.0; cols];
    for row in m.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    sums
}

/// The same training by hand: forward, backward and update of a 64-64-10 tanh network; returns
/// the last epoch's loss. Threads as perturb's: the GEMM is the same matrixmultiply with its
/// threads, and `tanh` runs through perturb's vectorised `Tensor::tanh` (on rayon's threads
/// above its size threshold, as in perturb's forward pass). The softmax uses libm's `exp` and
/// `ln`, as perturb's `log_softmax` does.
fn train_by_hand(x: &[f64], labels: &[usize], params: &mut [Vec<f64>]) -> f64 {
    let (n, d, h, c) = (labels.len(), 64, 64, 10);
    let (mut z, mut dw1, mut dw2, mut dh) = (
        vec![0.0; n * c],
        vec![0.0; d * h],
        vec![0.0; h * c],
        vec![0.0; n * h],
    );
    let mut pre = vec![0.0; n * h];
    let mut loss = 0.0;
    for _ in 0..EPOCHS {
        let [w1, b1, w2, b2] = params else {
            unreachable!()
        };
        gemm(n, d, h, x, (d as isize, 1), w1, (h as isize, 1), &mut pre);
        for row in pre.chunks_exact_mut(h) {
            row.iter_mut().zip(b1.iter()).for_each(|(v, b)| *v += b);
        }
        let a = Tensor::from_vec(std::mem::take(&mut pre), &[n * h])
            .unwrap()
            .tanh()
            .into_vec();
        gemm(n, h, c, &a, (h as isize, 1), w2, (c as isize, 1), &mut z);
        // The mean loss, and dZ = (softmax(z) - onehot) / n in place.
        loss = 0.0;
        for (row, &label) in z.chunks_exact_mut(c).zip(labels) {
            row.iter_mut().zip(b2.iter()).for_each(|(v, b)| *v += b);
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for v in row.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            loss -= (row[label] / s).ln();
            for v in row.iter_mut() {
                *v /= s * n as f64;
            }
            row[label] -= 1.0 / n as f64;
        }
        loss /= n as f64;
        gemm(h, n, c, &a, (1, h as isize), &z, (c as isize, 1), &mut dw2); // A^T dZ
        let db2 = column_sums(&z, c);
        gemm(n, c, h, &z, (c as isize, 1), w2, (1, c as isize), &mut dh); // dZ W2^T
        for (g, &v) in dh.iter_mut().zip(&a) {
            *g *= 1.0 - v * v;
        }
        gemm(d, n, h, x, (1, d as isize), &dh, (h as isize, 1), &mut dw1); // X^T dA
        let db1 = column_sums(&dh, h);
        for (p, g) in [(&mut *w1, &dw1), (&mut *w2, &dw2)] {
            p.iter_mut().zip(g).for_each(|(p, g)| *p -= LR * g);
        }
        b1.iter_mut().zip(&db1).for_each(|(p, g)| *p -= LR * g);
        b2.iter_mut().zip(&db2).for_each(|(p, g)| *p -= LR * g);
        pre = a;
    }
    loss
}

/// The training by perturb; returns the weights and the last epoch's loss.
fn train_with_perturb(
    model: &Mlp<f64>,
    x: &Tensor<f64>,
    labels: &[usize],
) -> (Vec<Tensor<f64>>, f64) {
    let mut params = model.param_tensors();
    let mut gd = GradientDescent::new(LR);
    let mut tape = TensorTape::new();
    let mut last = 0.0;
    for _ in 0..EPOCHS {
        let grads = {
            let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
            let logits = model.forward(&vars, &tape.constant(x.clone())).unwrap();
            let loss = softmax_cross_entropy(&logits, labels, Reduction::Mean).unwrap();
            last = loss.value().item().unwrap();
            let refs: Vec<_> = vars.iter().collect();
            tape.gradient(&loss, &refs).unwrap()
        };
        tape.clear();
        gd.step(&mut params, &grads).unwrap();
    }
    (params, last)
}

fn bench(c: &mut Criterion) {
    let data = builtin("digits").unwrap();
    let x = Standardizer::fit(&data.x)
        .unwrap()
        .transform(&data.x)
        .unwrap();
    let labels: Vec<usize> = data.y.as_slice().iter().map(|&v| v as usize).collect();
    let model = Mlp::new(&[64, 64, 10], Activation::Tanh, Init::XavierUniform, 0).unwrap();

    // Both trainings start from the same weights and must end at the same weights.
    let (by_perturb, loss_perturb) = train_with_perturb(&model, &x, &labels);
    let mut by_hand: Vec<Vec<f64>> = model.param_tensors().iter().map(|t| t.to_vec()).collect();
    let loss_hand = train_by_hand(x.as_slice(), &labels, &mut by_hand);
    assert!(
        (loss_perturb - loss_hand).abs() < 1e-9,
        "the two losses disagree: {loss_perturb} against {loss_hand}"
    );
    for (p, h) in by_perturb.iter().zip(&by_hand) {
        let worst = p
            .as_slice()
            .iter()
            .zip(h)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-9, "the two trainings disagree by {worst}");
    }

    let mut group = c.benchmark_group("digits_mlp_20_epochs");
    group.sample_size(10);
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            let mut params: Vec<Vec<f64>> =
                model.param_tensors().iter().map(|t| t.to_vec()).collect();
            let loss = train_by_hand(black_box(x.as_slice()), &labels, &mut params);
            (params, loss)
        })
    });
    group.bench_function("perturb", |b| {
        b.iter(|| train_with_perturb(&model, black_box(&x), &labels))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
