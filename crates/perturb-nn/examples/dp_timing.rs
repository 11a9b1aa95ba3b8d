//! Timings for BENCHMARKS.md's data-parallel section: all-reduce latency and bandwidth, and
//! the time of a data-parallel training step (forward, backward, gradient all-reduce, Adam)
//! of two MLPs, on thread ranks or MPI ranks. Medians of many repetitions, on rank 0.
//!
//! ```sh
//! cargo run --release -p perturb-nn --example dp_timing -- 2        # 2 thread ranks
//! cargo build --release -p perturb-nn --features mpi --example dp_timing
//! mpirun -n 2 target/release/examples/dp_timing                    # 2 MPI ranks
//! ```

use std::time::Instant;

use perturb::tensor::{value_and_grad_n, Array, Tensor};
use perturb_nn::distributed::data_parallel::{reduce_gradients, shard};
use perturb_nn::distributed::{run_on_threads, Communicator, Single};
use perturb_nn::loss::{softmax_cross_entropy, Reduction};
use perturb_nn::optim::{Adam, Optimizer};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median seconds of `f` over `reps` calls on every rank (after a few unmeasured), the
/// ranks meeting at a barrier before each.
fn time(comm: &dyn Communicator, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..reps.min(20) {
        f();
    }
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        comm.barrier().unwrap();
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    median(times)
}

fn mlp(sizes: &[usize]) -> Vec<Tensor<f64>> {
    sizes
        .windows(2)
        .enumerate()
        .flat_map(|(i, w)| {
            let scale = (2.0 / w[0] as f64).sqrt();
            [
                Tensor::randn(&[w[0], w[1]], 0.0, scale, i as u64),
                Tensor::zeros(&[w[1]]),
            ]
        })
        .collect()
}

fn bench(comm: &dyn Communicator) {
    let (rank, size) = (comm.rank(), comm.size());
    let say = |s: String| {
        if rank == 0 {
            println!("{s}");
        }
    };
    say(format!("ranks: {size}"));
    for n in [1usize, 1_000, 10_000, 100_000, 1_000_000] {
        let mut buf = vec![1.0_f64; n];
        let reps = if n >= 100_000 { 50 } else { 1000 };
        let t = time(comm, reps, || comm.all_reduce_sum_f64(&mut buf).unwrap());
        let bytes = (n * 8) as f64;
        // The bytes each rank sends (and receives) in a bandwidth-optimal all-reduce.
        let moved = 2.0 * (size as f64 - 1.0) / size as f64 * bytes;
        say(format!(
            "all-reduce {n:>8} f64 ({:>9} bytes): median {:>10.2} us, {:>7.3} GB/s of buffer, {:>7.3} GB/s moved per rank",
            n * 8,
            t * 1e6,
            bytes / t / 1e9,
            moved / t / 1e9
        ));
    }
    for (name, sizes) in [
        ("digits MLP 64-32-10", vec![64, 32, 10]),
        ("MLP 784-512-512-10", vec![784, 512, 512, 10]),
    ] {
        let batch = 64;
        let x = Tensor::randn(&[batch, sizes[0]], 0.0, 1.0, 7);
        let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
        let mine = shard(batch, rank, size);
        let xr = x.try_slice(0, mine.clone()).unwrap();
        let lr = &labels[mine.clone()];
        let mut params = mlp(&sizes);
        let mut adam: Adam<f64> = Adam::new(1e-3);
        let layers = params.len() / 2;
        let grad = |params: &[Tensor<f64>]| {
            value_and_grad_n(
                |p| {
                    let mut h = p[0].constant_like(&xr);
                    for l in 0..layers {
                        h = h.try_matmul(&p[2 * l])?.try_add(&p[2 * l + 1])?;
                        if l + 1 < layers {
                            h = h.relu();
                        }
                    }
                    softmax_cross_entropy(&h, lr, Reduction::Mean)
                },
                params,
            )
            .unwrap()
            .1
        };
        let reps = if sizes[0] > 100 { 30 } else { 300 };
        let compute = time(comm, reps, || {
            std::hint::black_box(grad(&params));
        });
        let mut g = grad(&params);
        let reduce = time(comm, reps, || {
            reduce_gradients(comm, &mut g, mine.len(), batch).unwrap()
        });
        let mut scratch = params.clone();
        let update = time(comm, reps, || adam.step(&mut scratch, &g).unwrap());
        let step = time(comm, reps, || {
            let mut g = grad(&params);
            reduce_gradients(comm, &mut g, mine.len(), batch).unwrap();
            adam.step(&mut params, &g).unwrap();
        });
        let count: usize = params.iter().map(|p| p.len()).sum();
        say(format!(
            "{name} ({count} parameters), global batch {batch}: step {:.1} us (forward+backward on {} rows {:.1} us, gradient all-reduce {:.1} us, Adam {:.1} us)",
            step * 1e6,
            mine.len(),
            compute * 1e6,
            reduce * 1e6,
            update * 1e6
        ));
    }
}

fn main() {
    #[cfg(feature = "mpi")]
    if perturb_nn::distributed::mpi_launch_size().is_some() {
        let comm = perturb_nn::distributed::Mpi::init().unwrap();
        bench(&comm);
        return;
    }
    let ranks: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    if ranks == 1 {
        bench(&Single);
    } else {
        run_on_threads(ranks, |comm| bench(&comm));
    }
}
