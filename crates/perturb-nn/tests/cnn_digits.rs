//! The small CNN of issue 16 on the digits data (8x8 images): a result that could fail, with
//! fixed seeds. The split is also what `bench-torch/` trains PyTorch's copy of the network on:
//! `bench-torch/digits_split.csv` names its rows, and a test here checks that file against
//! [`train_test_split`].

use std::collections::HashMap;
use std::path::PathBuf;

use perturb_nn::data::{builtin, train_test_split, Dataset};

/// The split every result and benchmark of the CNN uses: 20% test, shuffled with this seed.
const TEST_FRACTION: f64 = 0.2;
const SPLIT_SEED: u64 = 16;

fn split() -> (Dataset<f64>, Dataset<f64>) {
    let digits = builtin("digits").unwrap();
    train_test_split(&digits, TEST_FRACTION, SPLIT_SEED).unwrap()
}

/// The row indices, into the full data set, of each row of `part`, found by matching the rows'
/// bits (pixels and label); a duplicated row takes the first index not yet used, so two equal
/// rows get two indices that select the same data.
fn row_indices(
    full: &Dataset<f64>,
    part: &Dataset<f64>,
    unused: &mut HashMap<Vec<u64>, Vec<usize>>,
) -> Vec<usize> {
    let d = full.n_features();
    let key = |data: &Dataset<f64>, r: usize| -> Vec<u64> {
        let x = &data.x.as_slice()[r * d..(r + 1) * d];
        x.iter()
            .chain([&data.y.as_slice()[r]])
            .map(|v| v.to_bits())
            .collect()
    };
    if unused.is_empty() {
        for r in (0..full.len()).rev() {
            unused.entry(key(full, r)).or_default().push(r);
        }
    }
    (0..part.len())
        .map(|r| {
            unused
                .get_mut(&key(part, r))
                .and_then(Vec::pop)
                .unwrap_or_else(|| panic!("row {r} of the split is not a row of digits left"))
        })
        .collect()
}

/// `bench-torch/digits_split.csv`'s text for the split: `row,part`, the training rows in the
/// order of the training set, then the test rows.
fn split_csv() -> String {
    let full = builtin("digits").unwrap();
    let (train, test) = split();
    let mut unused = HashMap::new();
    let mut text = String::from("row,part\n");
    for (part, name) in [(&train, "train"), (&test, "test")] {
        for r in row_indices(&full, part, &mut unused) {
            text.push_str(&format!("{r},{name}\n"));
        }
    }
    text
}

#[test]
fn pytorch_trains_on_the_same_split() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench-torch/digits_split.csv");
    let expected = split_csv();
    if std::env::var_os("PERTURB_WRITE_SPLIT").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "{} does not hold the split of train_test_split(digits, {TEST_FRACTION}, {SPLIT_SEED}); \
         regenerate it with PERTURB_WRITE_SPLIT=1 cargo test -p perturb-nn --test cnn_digits",
        path.display()
    );
    // 1797 rows: round(0.2 * 1797) = 359 test rows, 1438 training rows, each row once.
    let mut rows: Vec<usize> = found
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(found.lines().filter(|l| l.ends_with(",test")).count(), 359);
    rows.sort_unstable();
    assert_eq!(rows, (0..1797).collect::<Vec<_>>());
}

// ---- prototype (before the layers land) --------------------------------------------------
use perturb::tensor::conv::{conv2d, max_pool2d, Conv2dOptions, Pool2d};
use perturb::tensor::{Array, Tensor, TensorTape};
use perturb_nn::data::Batches;
use perturb_nn::loss::{softmax_cross_entropy, Reduction};
use perturb_nn::optim::{Adam, Optimizer, Schedule};

const C1: usize = 32;
const C2: usize = 64;

fn init(seed: u64) -> Vec<Tensor<f32>> {
    let u = |shape: &[usize], fan_in: usize, s: u64| {
        let a = 1.0 / (fan_in as f32).sqrt();
        Tensor::rand_uniform(shape, -a, a, seed * 10 + s)
    };
    vec![
        u(&[C1, 1, 3, 3], 9, 0),
        u(&[C1], 9, 1),
        u(&[C2, C1, 3, 3], C1 * 9, 2),
        u(&[C2], C1 * 9, 3),
        u(&[C2 * 4, 10], C2 * 4, 4),
        u(&[10], C2 * 4, 5),
    ]
}

fn forward<A: Array<Elem = f32>>(p: &[A], x: &A) -> A {
    let n = x.shape()[0];
    let x = x.try_reshape(&[n, 1, 8, 8]).unwrap();
    let opts = Conv2dOptions::default().padding(1);
    let pool = Pool2d::new([2, 2]);
    let h = conv2d(&x, &p[0], opts)
        .add(&p[1].try_reshape(&[1, C1, 1, 1]).unwrap())
        .relu();
    let h = max_pool2d(&h, pool);
    let h = conv2d(&h, &p[2], opts)
        .add(&p[3].try_reshape(&[1, C2, 1, 1]).unwrap())
        .relu();
    let h = max_pool2d(&h, pool).try_reshape(&[n, C2 * 4]).unwrap();
    h.matmul(&p[4]).add(&p[5])
}

fn scaled(d: &Dataset<f64>) -> Dataset<f32> {
    Dataset::new(
        d.x.cast::<f32>().scale(1.0 / 16.0),
        d.y.cast(),
        d.feature_names.clone(),
        d.target_name.clone(),
    )
    .unwrap()
}

#[test]
fn prototype_cnn() {
    let (train, test) = split();
    let (train, test) = (scaled(&train), scaled(&test));
    let epochs: usize = std::env::var("EPOCHS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 0..std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1u64)
    {
        let mut params = init(seed);
        let mut adam = Adam::new(3e-3);
        let sched = Schedule::Cosine {
            total: epochs,
            min_lr: 0.0,
        };
        let mut tape = TensorTape::new();
        let t0 = std::time::Instant::now();
        for e in 0..epochs {
            adam.lr = sched.lr_at(3e-3, e);
            for (x, y) in Batches::new(&train, 64, seed * 1000 + e as u64).unwrap() {
                let labels: Vec<usize> = y.as_slice().iter().map(|&v| v as usize).collect();
                let grads = {
                    let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
                    let logits = forward(&vars, &tape.constant(x));
                    let loss = softmax_cross_entropy(&logits, &labels, Reduction::Mean).unwrap();
                    let refs: Vec<_> = vars.iter().collect();
                    tape.gradient(&loss, &refs).unwrap()
                };
                tape.clear();
                adam.step(&mut params, &grads).unwrap();
            }
        }
        let el = t0.elapsed();
        let logits = forward(&params, &test.x);
        let pred = logits.argmax(1);
        let correct = pred
            .as_slice()
            .iter()
            .zip(test.y.as_slice())
            .filter(|(p, y)| **p as f32 == **y)
            .count();
        eprintln!(
            "seed {seed}: {correct}/{} = {:.4} in {:?} ({:?}/epoch)",
            test.len(),
            correct as f64 / test.len() as f64,
            el,
            el / epochs as u32
        );
    }
}
