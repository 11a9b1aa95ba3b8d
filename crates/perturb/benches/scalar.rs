//! Scalar-engine benchmarks (issues 2 and 19). Each group runs its baseline in the same
//! process: the plain f64 function, and for Rosenbrock a hand-written analytic gradient
//! computed per element (no dependency from one element to the next, so it vectorises), checked
//! against perturb's before timing. The system allocator, which a user of the library has.
//!
//! Run: `cargo bench -p perturb --bench scalar`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use num_traits::Float;
use perturb::{Dual, Tape};

/// Extended Rosenbrock, written once for any float type.
fn rosenbrock<T: Float>(x: &[T]) -> T {
    let hundred = T::from(100.0).unwrap();
    let one = T::one();
    let mut sum = T::zero();
    for i in 0..x.len() - 1 {
        let a = x[i + 1] - x[i] * x[i];
        let b = one - x[i];
        sum = sum + hundred * a * a + b * b;
    }
    sum
}

/// The analytic gradient of `rosenbrock`, by hand: each `g[i]` from `x[i - 1..=i + 1]`, with
/// no dependency from one element to the next, so the loop vectorises.
fn rosenbrock_grad(x: &[f64], g: &mut [f64]) {
    let n = x.len();
    assert!(n >= 2 && g.len() == n);
    g[0] = -400.0 * x[0] * (x[1] - x[0] * x[0]) - 2.0 * (1.0 - x[0]);
    for (gi, w) in g[1..n - 1].iter_mut().zip(x.windows(3)) {
        let (prev, xi, next) = (w[0], w[1], w[2]);
        *gi = 200.0 * (xi - prev * prev) - 400.0 * xi * (next - xi * xi) - 2.0 * (1.0 - xi);
    }
    g[n - 1] = 200.0 * (x[n - 1] - x[n - 2] * x[n - 2]);
}

/// Rosenbrock's gradient on a reused tape: record, sweep, clear (keeping the buffers).
fn tape_gradient(tape: &mut Tape<f64>, x: &[f64]) -> Vec<f64> {
    let grad = {
        let xs = tape.vars(x);
        let y = rosenbrock(&xs);
        tape.gradient_wrt(y, &xs).unwrap()
    };
    tape.clear();
    grad
}

/// Panics unless the hand-written gradient agrees with perturb's (to 1e-12, relative).
fn check_hand_written(x: &[f64]) {
    let mut g = vec![0.0; x.len()];
    rosenbrock_grad(x, &mut g);
    let (_, expected) = perturb::gradient(|x| rosenbrock(x), x);
    for (i, (a, b)) in g.iter().zip(&expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
            "hand-written gradient [{i}] = {a}, perturb's = {b}"
        );
    }
}

/// The chain x <- sin(x) * 1.0001 + 0.1 x^2 - ln(1 + x^2), 250,000 times (9 operations each).
fn chain<T: Float>(x0: T, steps: usize) -> T {
    let c1 = T::from(1.0001).unwrap();
    let c2 = T::from(0.1).unwrap();
    let one = T::one();
    let mut x = x0;
    for _ in 0..steps {
        x = x.sin() * c1 + c2 * x * x - (one + x * x).ln();
    }
    x
}

const N: usize = 10_000;
const N_LARGE: usize = 1_000_000;
const STEPS: usize = 250_000;

fn bench_rosenbrock(c: &mut Criterion) {
    let x: Vec<f64> = (0..N).map(|i| 0.5 + 0.001 * (i % 100) as f64).collect();
    check_hand_written(&x);
    let mut group = c.benchmark_group("rosenbrock_n10000");
    group.bench_function("plain_f64_value", |b| b.iter(|| rosenbrock(black_box(&x))));
    let mut g = vec![0.0; N];
    group.bench_function("hand_written_gradient", |b| {
        b.iter(|| rosenbrock_grad(black_box(&x), &mut g))
    });
    let mut tape = Tape::with_capacity(8 * N);
    group.bench_function("tape_gradient", |b| {
        b.iter(|| tape_gradient(&mut tape, black_box(&x)))
    });
    group.bench_function("functional_gradient", |b| {
        b.iter(|| perturb::gradient(|x| rosenbrock(x), black_box(&x)))
    });
    // The same tape gradient with the debugging mode on: every operation checks its value and
    // the sweep every cotangent (the rows above have it off, which is the default).
    group.bench_function("tape_gradient_debug_on", |b| {
        b.iter(|| {
            perturb::debug::detect_non_finite(|| tape_gradient(&mut tape, black_box(&x))).unwrap()
        })
    });
    group.finish();
}

/// `perturb::gradient` against a reused tape at 10^6 inputs (9 million nodes): what a tape made
/// per call costs once it outgrows the caches.
fn bench_rosenbrock_large(c: &mut Criterion) {
    let x: Vec<f64> = (0..N_LARGE)
        .map(|i| 0.5 + 0.001 * (i % 100) as f64)
        .collect();
    check_hand_written(&x);
    let mut group = c.benchmark_group("rosenbrock_n1000000");
    group.sample_size(10);
    let mut g = vec![0.0; N_LARGE];
    group.bench_function("hand_written_gradient", |b| {
        b.iter(|| rosenbrock_grad(black_box(&x), &mut g))
    });
    let mut tape = Tape::with_capacity(9 * N_LARGE);
    group.bench_function("tape_gradient", |b| {
        b.iter(|| tape_gradient(&mut tape, black_box(&x)))
    });
    group.bench_function("functional_gradient", |b| {
        b.iter(|| perturb::gradient(|x| rosenbrock(x), black_box(&x)))
    });
    group.finish();
}

fn bench_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain_250k");
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("plain_f64_value", STEPS), |b| {
        b.iter(|| chain(black_box(0.5_f64), STEPS))
    });
    group.bench_function(BenchmarkId::new("dual_derivative", STEPS), |b| {
        b.iter(|| chain(Dual::variable(black_box(0.5_f64)), STEPS).tangent())
    });
    let mut tape = Tape::with_capacity(9 * STEPS + 1);
    group.bench_function(BenchmarkId::new("tape_derivative", STEPS), |b| {
        b.iter(|| {
            let d = {
                let x0 = tape.var(black_box(0.5_f64));
                let y = chain(x0, STEPS);
                tape.gradient_wrt(y, &[x0]).unwrap()[0]
            };
            tape.clear();
            d
        })
    });
    group.bench_function(BenchmarkId::new("functional_derivative", STEPS), |b| {
        b.iter(|| perturb::gradient(|x| chain(x[0], STEPS), &[black_box(0.5_f64)]).1[0])
    });
    group.finish();
    let tape = Tape::new();
    let _ = chain(tape.var(0.5_f64), STEPS);
    eprintln!(
        "chain: {} nodes recorded, {} bytes per node, {:.1} MB of tape",
        tape.len(),
        Tape::<f64>::bytes_per_node(),
        (tape.len() * Tape::<f64>::bytes_per_node()) as f64 / 1e6
    );
}

criterion_group!(
    benches,
    bench_rosenbrock,
    bench_rosenbrock_large,
    bench_chain
);
criterion_main!(benches);
