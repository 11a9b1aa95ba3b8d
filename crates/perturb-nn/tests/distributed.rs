//! Data-parallel training on thread ranks: the collectives add in rank order and give every
//! rank the same bits; a training run on 2 and 3 ranks equals the single-process run of the
//! same global batches (to 1e-12 in f64) with the same weights on every rank; a rank that
//! stops or hangs makes the others fail within a bounded time.

use std::time::{Duration, Instant};

use perturb::tensor::{value_and_grad_n, Array, Tensor};
use perturb_nn::data::Batches;
use perturb_nn::data::Dataset;
use perturb_nn::distributed::data_parallel::{reduce_gradients, shard};
use perturb_nn::distributed::{
    run_on_threads, CommError, Communicator, CommunicatorExt, Single, ThreadComm, BUCKET_ELEMENTS,
};
use perturb_nn::loss::{softmax_cross_entropy, Reduction};
use perturb_nn::optim::{Adam, Optimizer};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

fn random(seed: u64, shape: &[usize]) -> Tensor<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = shape.iter().product();
    Tensor::from_vec((0..n).map(|_| rng.random_range(-1.0..1.0)).collect(), shape).unwrap()
}

fn bits(t: &[Tensor<f64>]) -> Vec<u64> {
    t.iter()
        .flat_map(|t| t.as_slice().iter().map(|v| v.to_bits()))
        .collect()
}

#[test]
fn all_reduce_adds_in_rank_order_and_every_rank_gets_the_same_bits() {
    // Values of very different sizes, where the order of the additions shows.
    let inputs: Vec<Vec<f64>> = (0..3)
        .map(|r| {
            random(r, &[1000])
                .as_slice()
                .iter()
                .map(|v| v * 10f64.powi(8 * r as i32 - 8))
                .collect()
        })
        .collect();
    let expected: Vec<f64> = (0..1000)
        .map(|i| (inputs[0][i] + inputs[1][i]) + inputs[2][i])
        .collect();
    let got = run_on_threads(3, |comm| {
        let mut buf = inputs[comm.rank()].clone();
        comm.all_reduce_sum_f64(&mut buf).unwrap();
        buf
    });
    for buf in got {
        assert_eq!(buf, expected);
    }
}

#[test]
fn a_tree_larger_than_a_bucket_reduces_as_a_whole() {
    // Two leaves spanning three buckets, in f32.
    let n = BUCKET_ELEMENTS + BUCKET_ELEMENTS / 2;
    let got = run_on_threads(2, |comm| {
        let r = comm.rank() as f32;
        let mut tree = (
            Tensor::from_vec((0..n).map(|i| (i % 7) as f32 + r).collect(), &[n]).unwrap(),
            vec![Tensor::full(&[3, n / 3], 0.25 + r)],
        );
        comm.all_reduce_mean(&mut tree).unwrap();
        tree
    });
    for (a, b) in &got {
        let a = a.as_slice();
        assert!((0..n).all(|i| a[i] == (i % 7) as f32 + 0.5));
        assert!(b[0].as_slice().iter().all(|&v| v == 0.75));
    }
}

#[test]
fn broadcast_gives_every_rank_rank_0s_tree() {
    let got = run_on_threads(3, |comm| {
        let mut weights = vec![
            random(10 + comm.rank() as u64, &[4, 5]),
            random(20 + comm.rank() as u64, &[5]),
        ];
        comm.broadcast(&mut weights).unwrap();
        bits(&weights)
    });
    let rank0 = bits(&[random(10, &[4, 5]), random(20, &[5])]);
    assert!(got.iter().all(|b| *b == rank0));
}

#[test]
fn ranks_with_trees_of_other_sizes_get_an_error_naming_the_rank() {
    let got = run_on_threads(3, |comm| {
        let mut g = vec![Tensor::<f64>::zeros(&[if comm.rank() == 2 {
            5
        } else {
            4
        }])];
        comm.all_reduce_sum(&mut g)
    });
    for r in got {
        assert_eq!(
            r.unwrap_err(),
            CommError::LengthMismatch {
                op: "all_reduce_sum",
                rank: 2,
                expected: 4,
                found: 5
            }
        );
    }
}

/// A small classifier's parameters: a hidden tanh layer and a linear output.
fn mlp(seed: u64) -> Vec<Tensor<f64>> {
    vec![
        random(seed, &[4, 8]),
        random(seed + 1, &[8]),
        random(seed + 2, &[8, 3]),
        random(seed + 3, &[3]),
    ]
}

fn data() -> Dataset<f64> {
    let x = random(99, &[50, 4]);
    let y: Vec<f64> = x
        .as_slice()
        .chunks(4)
        .map(|r| {
            if r[0] + r[1] > 0.3 {
                2.0
            } else if r[2] > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Dataset::new(
        x,
        Tensor::vector(&y),
        vec!["a".into(), "b".into(), "c".into(), "d".into()],
        "y".into(),
    )
    .unwrap()
}

/// This rank's mean loss over its rows of the batch, and its gradient; zeros for no rows.
fn local_step(p: &[Tensor<f64>], x: &Tensor<f64>, y: &Tensor<f64>) -> (f64, Vec<Tensor<f64>>) {
    if y.is_empty() {
        return (0.0, p.iter().map(|t| Tensor::zeros(t.shape())).collect());
    }
    let labels: Vec<usize> = y.as_slice().iter().map(|&v| v as usize).collect();
    let (loss, grads) = value_and_grad_n(
        |p| {
            let h = p[0]
                .constant_like(x)
                .try_matmul(&p[0])?
                .try_add(&p[1])?
                .tanh();
            let out = h.try_matmul(&p[2])?.try_add(&p[3])?;
            softmax_cross_entropy(&out, &labels, Reduction::Mean)
        },
        p,
    )
    .unwrap();
    (loss.item().unwrap(), grads)
}

/// Trains with Adam for two epochs of batches of `batch` rows on `comm`'s ranks; returns the
/// weights and the loss of each step.
fn train(comm: &dyn Communicator, batch: usize) -> (Vec<Tensor<f64>>, Vec<f64>) {
    let data = data();
    // Every rank starts from its own draw; rank 0's is broadcast.
    let mut params = mlp(comm.rank() as u64 * 100);
    comm.broadcast(&mut params).unwrap();
    let mut adam: Adam<f64> = Adam::new(0.05);
    let mut losses = Vec::new();
    for epoch in 0..2 {
        for (x, y) in Batches::new(&data, batch, epoch).unwrap() {
            let global = y.len();
            let rows = shard(global, comm.rank(), comm.size());
            let x = x.try_slice(0, rows.clone()).unwrap();
            let y = y.try_slice(0, rows.clone()).unwrap();
            let (loss, grads) = local_step(&params, &x, &y);
            let mut both = (grads, Tensor::scalar(loss));
            reduce_gradients(comm, &mut both, rows.len(), global).unwrap();
            adam.step(&mut params, &both.0).unwrap();
            losses.push(both.1.item().unwrap());
        }
    }
    (params, losses)
}

#[test]
fn training_on_2_and_3_ranks_equals_one_process_with_the_same_weights_on_every_rank() {
    // Batches of 10 (even and uneven shares), 7 (the last batch of an epoch has 1 row: a rank
    // with none) and the whole set.
    for batch in [10, 7, 50] {
        let (single, single_losses) = train(&Single, batch);
        for ranks in [2, 3] {
            let runs = run_on_threads(ranks, |comm| train(&comm, batch));
            for (rank, (params, losses)) in runs.iter().enumerate() {
                // The same bits on every rank.
                assert_eq!(bits(params), bits(&runs[0].0), "batch {batch}, rank {rank}");
                assert_eq!(losses, &runs[0].1);
            }
            let (params, losses) = &runs[0];
            for (a, b) in params.iter().zip(&single) {
                for (u, v) in a.as_slice().iter().zip(b.as_slice()) {
                    assert!(
                        (u - v).abs() <= 1e-12,
                        "batch {batch}, {ranks} ranks: {u} vs {v}"
                    );
                }
            }
            for (u, v) in losses.iter().zip(&single_losses) {
                assert!((u - v).abs() <= 1e-12, "loss: {u} vs {v}");
            }
            // Not trivially equal: the weights moved, and the reassociation shows in the bits
            // somewhere (or the test would not be testing a reduction).
            assert!(bits(params) != bits(&mlp(0)));
        }
    }
}

#[test]
fn the_same_rank_count_reproduces_a_run_bit_for_bit() {
    let a = run_on_threads(3, |comm| train(&comm, 10).0);
    let b = run_on_threads(3, |comm| train(&comm, 10).0);
    assert_eq!(bits(&a[0]), bits(&b[0]));
}

#[test]
fn a_rank_that_panics_makes_the_others_fail_at_once_not_hang() {
    let start = Instant::now();
    let outcome = std::panic::catch_unwind(|| {
        run_on_threads(3, |comm| {
            if comm.rank() == 1 {
                panic!("rank 1 dies");
            }
            let mut buf = [1.0];
            let r = comm.all_reduce_sum_f64(&mut buf);
            // The survivors see rank 1 gone, well before the 120 s timeout.
            assert_eq!(
                r,
                Err(CommError::RankLeft {
                    op: "all_reduce_sum",
                    rank: 1
                })
            );
        })
    });
    assert!(
        outcome.is_err(),
        "the panic is raised again by run_on_threads"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_rank_that_hangs_makes_the_others_time_out() {
    let ranks = ThreadComm::group_with_timeout(2, Duration::from_millis(200));
    let start = Instant::now();
    let errors: Vec<CommError> = std::thread::scope(|s| {
        let mut it = ranks.into_iter();
        let (r0, r1) = (it.next().unwrap(), it.next().unwrap());
        let waiting = s.spawn(move || r0.barrier().unwrap_err());
        // Rank 1 is alive but never arrives until rank 0 gave up.
        let late = s.spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            r1.barrier().unwrap_err()
        });
        vec![waiting.join().unwrap(), late.join().unwrap()]
    });
    assert!(
        matches!(&errors[0], CommError::Timeout { op: "barrier", missing, .. } if missing == &[1]),
        "{errors:?}"
    );
    // Rank 0 has gone when rank 1 arrives.
    assert_eq!(
        errors[1],
        CommError::RankLeft {
            op: "barrier",
            rank: 0
        }
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

proptest! {
    #[test]
    fn the_shards_cover_every_row_once_in_order(rows in 0usize..200, size in 1usize..20) {
        let parts: Vec<_> = (0..size).map(|r| shard(rows, r, size)).collect();
        let mut next = 0;
        for p in &parts {
            prop_assert_eq!(p.start, next);
            next = p.end;
        }
        prop_assert_eq!(next, rows);
        let (min, max) = (parts.iter().map(|p| p.len()).min(), parts.iter().map(|p| p.len()).max());
        prop_assert!(max.unwrap() - min.unwrap() <= 1);
    }
}
