//! What the CNN's test (`tests/cnn_digits.rs`) and benchmark (`benches/cnn.rs`) share: the
//! digits split, the network, and one training epoch (batch 64, Adam), so that the benchmark
//! times exactly the training the test checks.

use perturb::tensor::{Array, Tensor, TensorTape};
use perturb::tree::Tree;
use perturb_nn::data::{builtin, train_test_split, Batches, Dataset};
use perturb_nn::layers::Sequential;
use perturb_nn::loss::{softmax_cross_entropy, Reduction};
use perturb_nn::models::small_cnn;
use perturb_nn::module::{Context, Module};
use perturb_nn::optim::{Adam, Optimizer};

/// The split every result and benchmark of the CNN uses (and `bench-torch/` reads): 20% test,
/// shuffled with this seed.
pub const TEST_FRACTION: f64 = 0.2;
/// The split's seed.
pub const SPLIT_SEED: u64 = 16;
/// The two convolutions' output channels.
pub const CHANNELS: [usize; 2] = [32, 64];
/// Rows per training batch.
pub const BATCH: usize = 64;
/// Adam's base learning rate, decayed to 0 along a cosine over the [`EPOCHS`] of the test.
pub const LR: f64 = 1e-2;
/// The epochs of the test's training.
pub const EPOCHS: usize = 10;

pub type Cnn = Sequential<Tensor<f32>>;

/// The digits' `(train, test)` split, in `f64` as `train_test_split` gives it.
pub fn digits_split() -> (Dataset<f64>, Dataset<f64>) {
    let digits = builtin("digits").unwrap();
    train_test_split(&digits, TEST_FRACTION, SPLIT_SEED).unwrap()
}

/// A part of the split as the network reads it: `f32` pixels scaled by 1/16 into [0, 1].
pub fn scaled(d: &Dataset<f64>) -> Dataset<f32> {
    let x = d.x.cast::<f32>().scale(1.0 / 16.0);
    Dataset::new(
        x,
        d.y.cast(),
        d.feature_names.clone(),
        d.target_name.clone(),
    )
    .unwrap()
}

/// The digits CNN with its initial weights from `seed`.
pub fn digits_cnn(seed: u64) -> Cnn {
    small_cnn(8, CHANNELS, 10, seed).unwrap()
}

/// Rows `(N, 64)` as images `(N, 1, 8, 8)`.
fn images<A: Array>(x: &A) -> A {
    x.try_reshape(&[x.shape()[0], 1, 8, 8]).unwrap()
}

/// The labels of `y` as class indices.
fn labels(y: &Tensor<f32>) -> Vec<usize> {
    y.as_slice().iter().map(|&v| v as usize).collect()
}

/// One epoch of training: every row of `train` once, in shuffled batches of [`BATCH`] (the
/// order from `seed`), each a forward pass, the gradient of the mean softmax cross-entropy
/// and an Adam step. Returns the updated network.
pub fn train_epoch(mut model: Cnn, adam: &mut Adam<f32>, train: &Dataset<f32>, seed: u64) -> Cnn {
    let mut tape = TensorTape::new();
    let mut ctx = Context::training(seed);
    for (x, y) in Batches::new(train, BATCH, seed).unwrap() {
        let grads = {
            let vars = model.map(|t| tape.var(t.clone()));
            let logits = vars.forward(&images(&tape.constant(x)), &mut ctx).unwrap();
            let loss = softmax_cross_entropy(&logits, &labels(&y), Reduction::Mean).unwrap();
            model
                .unflatten(tape.gradient(&loss, &vars.leaves()).unwrap())
                .unwrap()
        };
        tape.clear();
        adam.update(&mut model, &grads).unwrap();
    }
    model
}

/// How many rows of `data` the network classifies correctly (the largest logit).
pub fn correct(model: &Cnn, data: &Dataset<f32>) -> usize {
    let predicted = model.forward_eval(&images(&data.x)).unwrap().argmax(1);
    let truth = labels(&data.y);
    predicted
        .as_slice()
        .iter()
        .zip(&truth)
        .filter(|(p, t)| p == t)
        .count()
}
