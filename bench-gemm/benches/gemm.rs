//! C = A B for row-major square matrices and for the shapes of the mlp-784 step, through
//! matrixmultiply, gemm and faer, single-threaded and on all cores, in one run.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn mm_matrixmultiply(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    unsafe {
        matrixmultiply::sgemm(
            m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0,
            c.as_mut_ptr(), n as isize, 1,
        );
    }
}

fn mm_gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], par: gemm::Parallelism) {
    unsafe {
        gemm::gemm(
            m, n, k, c.as_mut_ptr(), 1, n as isize, false, a.as_ptr(), 1, k as isize,
            b.as_ptr(), 1, n as isize, 0.0, 1.0, false, false, false, par,
        );
    }
}

fn mm_faer(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32], par: faer::Par) {
    let a = faer::MatRef::from_row_major_slice(a, m, k);
    let b = faer::MatRef::from_row_major_slice(b, k, n);
    let c = faer::MatMut::from_row_major_slice_mut(c, m, n);
    faer::linalg::matmul::matmul(c, faer::Accum::Replace, a, b, 1.0, par);
}

fn bench(c: &mut Criterion) {
    let shapes: [(usize, usize, usize); 5] =
        [(64, 64, 64), (256, 256, 256), (512, 512, 512), (256, 784, 512), (256, 512, 512)];
    let mut group = c.benchmark_group("sgemm");
    group.sample_size(20);
    for (m, k, n) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 * 0.1).collect();
        let mut out = vec![0.0f32; m * n];
        let id = format!("{m}x{k}x{n}");
        group.throughput(Throughput::Elements((2 * m * k * n) as u64));
        group.bench_function(BenchmarkId::new("matrixmultiply", &id), |bch| {
            bch.iter(|| mm_matrixmultiply(m, k, n, black_box(&a), &b, &mut out))
        });
        group.bench_function(BenchmarkId::new("gemm_1thread", &id), |bch| {
            bch.iter(|| mm_gemm(m, k, n, black_box(&a), &b, &mut out, gemm::Parallelism::None))
        });
        group.bench_function(BenchmarkId::new("gemm_rayon", &id), |bch| {
            bch.iter(|| mm_gemm(m, k, n, black_box(&a), &b, &mut out, gemm::Parallelism::Rayon(0)))
        });
        group.bench_function(BenchmarkId::new("faer_1thread", &id), |bch| {
            bch.iter(|| mm_faer(m, k, n, black_box(&a), &b, &mut out, faer::Par::Seq))
        });
        group.bench_function(BenchmarkId::new("faer_rayon", &id), |bch| {
            bch.iter(|| mm_faer(m, k, n, black_box(&a), &b, &mut out, faer::Par::rayon(0)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
