//! Cholesky and LU with partial pivoting of one symmetric positive definite f64 matrix at
//! n = 64, 256, 1024, through faer (one thread and rayon on all cores) and nalgebra, in one run;
//! faer alone also at n = 128 and 512, to place the size from which its threads pay.
//!
//! Both crates copy the input before factoring in place (faer inside `llt`/`partial_piv_lu`,
//! nalgebra by the `clone` its consuming `cholesky`/`lu` need), so the copy is in every figure.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

/// `A = B B^T / n + I` with `B` filled from a fixed linear congruential generator, row-major.
fn spd(n: usize) -> Vec<f64> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let b: Vec<f64> = (0..n * n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum();
            let v = dot / n as f64 + if i == j { 1.0 } else { 0.0 };
            a[i * n + j] = v;
            a[j * n + i] = v;
        }
    }
    a
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decomp");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in [64usize, 128, 256, 512, 1024] {
        let a = spd(n);
        let fa = faer::Mat::<f64>::from_fn(n, n, |i, j| a[i * n + j]);
        let na = nalgebra::DMatrix::<f64>::from_row_slice(n, n, &a);
        // Both crates must be doing the same work: their Cholesky factors agree.
        let (fl, nl) = (
            fa.llt(faer::Side::Lower).unwrap(),
            na.clone().cholesky().unwrap().unpack(),
        );
        let diff = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| (fl.L()[(i, j)] - nl[(i, j)]).abs())
            .fold(0.0, f64::max);
        assert!(
            diff < 1e-10,
            "faer and nalgebra Cholesky factors differ by {diff} at n = {n}"
        );
        for (name, par) in [
            ("faer_1thread", faer::Par::Seq),
            ("faer_rayon", faer::Par::rayon(0)),
        ] {
            faer::set_global_parallelism(par);
            group.bench_function(BenchmarkId::new(format!("cholesky/{name}"), n), |bch| {
                bch.iter(|| black_box(&fa).llt(faer::Side::Lower).unwrap())
            });
            group.bench_function(BenchmarkId::new(format!("lu/{name}"), n), |bch| {
                bch.iter(|| black_box(&fa).partial_piv_lu())
            });
        }
        if !matches!(n, 64 | 256 | 1024) {
            continue;
        }
        group.bench_function(BenchmarkId::new("cholesky/nalgebra", n), |bch| {
            bch.iter(|| black_box(&na).clone().cholesky().unwrap())
        });
        group.bench_function(BenchmarkId::new("lu/nalgebra", n), |bch| {
            bch.iter(|| black_box(&na).clone().lu())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
