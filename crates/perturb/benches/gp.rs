//! Gaussian-process benchmark (issue 15): the gradient of the negative log marginal likelihood
//! of an RBF kernel with respect to its three hyperparameters, n = 500 points.
//!
//! Run: `cargo bench -p perturb --bench gp`
//!
//! With the system allocator, the one a user's program has (benches/tensor.rs and
//! transforms.rs install mimalloc; this one does not), so the figures include what glibc's
//! allocator costs for perturb's temporaries.
//!
//! - by_hand: the closed-form gradient written on faer directly (Rasmussen & Williams, *Gaussian
//!   Processes for Machine Learning*, 2006, eq. 5.9): one Cholesky factorisation, one solve, the
//!   inverse from the factor, and one pass over the lower triangle for the three traces. Once
//!   with faer on one thread and once with its default (rayon on all cores).
//! - perturb: the same NLL written once with tensor operations (`linalg::cholesky`,
//!   `cholesky_solve`, and `slogdet` or the factor's diagonal for `log|K|`), its gradient by
//!   reverse mode, checked against the closed form before timing; see `perturb_side`.
//!
//! The kernel, with `theta = (log s, log l, log noise)`:
//!
//! ```text
//! k(x, x') = s^2 exp(-|x - x'|^2 / (2 l^2)) + noise^2 [x = x']
//! NLL      = 0.5 y^T K^-1 y + 0.5 log|K| + n/2 log(2 pi)
//! dNLL/dθ  = 0.5 tr((K^-1 - a a^T) dK/dθ),   a = K^-1 y
//! ```

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Par, Side};
use perturb::tensor::Tensor;
use std::time::Duration;

/// Points, inputs per point, and where the gradient is taken.
const N: usize = 500;
const DIM: usize = 2;
const THETA: [f64; 3] = [0.0, 0.4, -1.6]; // s = 1, l = 1.49, noise = 0.20

/// The data: `N` inputs uniform on `[0, 5]^DIM`, targets `sin(x0) cos(x1)` plus noise of
/// standard deviation 0.2, seeded. Returns the squared distances (row-major `N x N`) and `y`.
fn data() -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::<f64>::rand_uniform(&[N, DIM], 0.0, 5.0, 15).into_vec();
    let noise = Tensor::<f64>::randn(&[N], 0.0, 0.2, 16).into_vec();
    let y = (0..N)
        .map(|i| x[i * DIM].sin() * x[i * DIM + 1].cos() + noise[i])
        .collect();
    let mut d2 = vec![0.0; N * N];
    for i in 0..N {
        for j in 0..N {
            d2[i * N + j] = (0..DIM)
                .map(|k| (x[i * DIM + k] - x[j * DIM + k]).powi(2))
                .sum();
        }
    }
    (d2, y)
}

/// The NLL and its gradient by the closed form, on faer. Only the lower triangle of `K` is
/// built (faer's Cholesky reads no more), and the traces `0.5 sum_ij W_ij dK_ij` with the
/// symmetric `W = K^-1 - a a^T` run over the lower triangle, off-diagonal terms counted twice.
fn nll_and_grad_by_hand(d2: &[f64], y: &[f64], theta: [f64; 3]) -> (f64, [f64; 3]) {
    let n = y.len();
    let (s2, l2, sn2) = (
        (2.0 * theta[0]).exp(),
        (2.0 * theta[1]).exp(),
        (2.0 * theta[2]).exp(),
    );
    // Lower triangle of s^2 R (the kernel without noise), kept for dK/dθ; K adds the noise.
    let mut sr = Mat::<f64>::zeros(n, n);
    for j in 0..n {
        for i in j..n {
            sr[(i, j)] = s2 * (-0.5 / l2 * d2[i * n + j]).exp();
        }
    }
    let mut k = sr.clone();
    for i in 0..n {
        k[(i, i)] += sn2;
    }
    let llt = k.llt(Side::Lower).expect("K is positive definite");
    let a = llt.solve(faer::ColRef::from_slice(y));
    let k_inv = llt.inverse();

    let log_det: f64 = (0..n).map(|i| llt.L()[(i, i)].ln()).sum::<f64>() * 2.0;
    let fit: f64 = (0..n).map(|i| y[i] * a[i]).sum();
    let nll = 0.5 * fit + 0.5 * log_det + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();

    // dK/dlog s = 2 s^2 R, dK/dlog l = s^2 R d^2 / l^2, dK/dlog noise = 2 noise^2 I.
    let mut g = [0.0; 3];
    for j in 0..n {
        let w = k_inv[(j, j)] - a[j] * a[j];
        g[0] += w * 2.0 * sr[(j, j)];
        g[2] += w * 2.0 * sn2;
        for i in j + 1..n {
            let w = 2.0 * (k_inv[(i, j)] - a[i] * a[j]);
            let sr = sr[(i, j)];
            g[0] += w * 2.0 * sr;
            g[1] += w * sr * d2[i * n + j] / l2;
        }
    }
    (nll, g.map(|gi| 0.5 * gi))
}

/// Central differences of the NLL against the closed-form gradient, before anything is timed.
fn check_by_hand(d2: &[f64], y: &[f64]) {
    let (_, g) = nll_and_grad_by_hand(d2, y, THETA);
    let h = 1e-5;
    for (p, &gp) in g.iter().enumerate() {
        let at = |step: f64| {
            let mut t = THETA;
            t[p] += step;
            nll_and_grad_by_hand(d2, y, t).0
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (fd - gp).abs() <= 1e-6 * gp.abs().max(1.0),
            "closed-form dNLL/dθ{p} = {gp}, central difference {fd}"
        );
    }
}

fn bench(c: &mut Criterion) {
    let (d2, y) = data();
    check_by_hand(&d2, &y);
    perturb_side::check(&d2, &y);

    let mut group = c.benchmark_group("gp_nll_grad_500");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (name, par) in [
        ("by_hand_faer_1thread", Par::Seq),
        ("by_hand_faer_rayon", Par::rayon(0)),
    ] {
        faer::set_global_parallelism(par);
        group.bench_function(name, |b| {
            b.iter(|| nll_and_grad_by_hand(black_box(&d2), &y, THETA))
        });
    }
    perturb_side::bench(&mut group, &d2, &y);
    group.finish();
}

/// The perturb side: the NLL written once for any [`Array`](perturb::tensor::Array) with
/// `perturb::tensor::linalg`, its gradient by reverse mode.
mod perturb_side {
    use super::{nll_and_grad_by_hand, N, THETA};
    use criterion::{black_box, measurement::WallTime, BenchmarkGroup};
    use perturb::tensor::{linalg, value_and_grad, Array, Tensor, TensorVar};
    use perturb::Error;

    /// How `log|K|` is taken: as the issue names it, or from the Cholesky factor already at
    /// hand (`2 sum log L_ii`), which spares a second factorisation and its derivative.
    #[derive(Clone, Copy)]
    pub enum LogDet {
        Slogdet,
        FactorDiagonal,
    }

    /// The NLL of `theta = [log s, log l, log noise]` (shape `[3]`), given the squared
    /// distances `d2` (`[n, n]`), the identity `eye` (`[n, n]`) and the targets `y` (`[n, 1]`).
    pub fn nll<A: Array>(theta: &A, d2: &A, eye: &A, y: &A, how: LogDet) -> Result<A, Error> {
        let n = y.shape()[0];
        let two_theta = theta.scale(A::elem(2.0));
        let s2 = two_theta.try_narrow(0, 0, 1)?.exp();
        let inv_l2 = two_theta.try_narrow(0, 1, 1)?.neg().exp();
        let sn2 = two_theta.try_narrow(0, 2, 1)?.exp();
        let r = d2.try_mul(&inv_l2.scale(A::elem(-0.5)))?.exp();
        let k = r.try_mul(&s2)?.try_add(&eye.try_mul(&sn2)?)?;
        let l = linalg::try_cholesky(&k)?;
        let a = linalg::try_cholesky_solve(&l, y)?;
        let log_det = match how {
            LogDet::Slogdet => linalg::try_slogdet(&k)?.1,
            LogDet::FactorDiagonal => l
                .try_reshape(&[n * n])?
                .try_index_select(0, (0..n).map(|i| i * (n + 1)).collect())?
                .ln()
                .sum_all()
                .scale(A::elem(2.0)),
        };
        let constant = 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln();
        Ok(y.try_mul(&a)?
            .sum_all()
            .try_add(&log_det)?
            .scale(A::elem(0.5))
            .add_scalar(A::elem(constant)))
    }

    /// The inputs as tensors: theta, d2, eye, y.
    fn tensors(d2: &[f64], y: &[f64]) -> [Tensor<f64>; 4] {
        let eye = (0..N * N).map(|i| f64::from(i % (N + 1) == 0)).collect();
        [
            Tensor::vector(&THETA),
            Tensor::from_vec(d2.to_vec(), &[N, N]).unwrap(),
            Tensor::from_vec(eye, &[N, N]).unwrap(),
            Tensor::from_vec(y.to_vec(), &[N, 1]).unwrap(),
        ]
    }

    fn value_and_gradient(t: &[Tensor<f64>; 4], how: LogDet) -> (Tensor<f64>, Tensor<f64>) {
        let [theta, d2, eye, y] = t;
        let c = |x: &Tensor<f64>| TensorVar::constant(x.clone());
        value_and_grad(|th| nll(th, &c(d2), &c(eye), &c(y), how), theta).unwrap()
    }

    /// perturb's NLL and gradient against the closed form.
    pub fn check(d2: &[f64], y: &[f64]) {
        let (nll0, g0) = nll_and_grad_by_hand(d2, y, THETA);
        for how in [LogDet::Slogdet, LogDet::FactorDiagonal] {
            let (nll1, g1) = value_and_gradient(&tensors(d2, y), how);
            let nll1 = nll1.to_vec()[0];
            assert!(
                (nll1 - nll0).abs() <= 1e-9 * nll0.abs().max(1.0),
                "NLL {nll1}, by hand {nll0}"
            );
            for (a, b) in g1.to_vec().iter().zip(g0) {
                assert!(
                    (a - b).abs() <= 1e-8 * b.abs().max(1.0),
                    "perturb {a}, by hand {b}"
                );
            }
        }
    }

    pub fn bench(group: &mut BenchmarkGroup<'_, WallTime>, d2: &[f64], y: &[f64]) {
        let t = tensors(d2, y);
        for (name, how) in [
            ("perturb_slogdet", LogDet::Slogdet),
            ("perturb_factor_diagonal", LogDet::FactorDiagonal),
        ] {
            group.bench_function(name, |b| b.iter(|| value_and_gradient(black_box(&t), how)));
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
