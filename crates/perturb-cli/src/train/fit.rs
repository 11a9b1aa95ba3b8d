//! The training loop.

use indicatif::{ProgressBar, ProgressStyle};
use perturb::tensor::{Array, Tensor, TensorTape};
use perturb_nn::data;
use perturb_nn::distributed::data_parallel::{reduce_gradients, shard};
use perturb_nn::distributed::Communicator;
use perturb_nn::loss::{logistic_nll, mse, softmax_cross_entropy, Reduction};
use perturb_nn::optim::{Adam, GradientDescent, Optimizer, Schedule, Sgd};

use super::metrics::accuracy;
use super::setup::Setup;
use super::{Args, OptimizerKind, Task};

/// Where training stopped because the loss or a gradient was not finite.
pub(super) struct Divergence {
    pub(super) loss: f64,
    pub(super) step: usize,
    pub(super) epoch: usize,
}

/// The parameters with the lowest loss on the whole training part seen so far (finite by
/// construction), and the step before which they were reached.
pub(super) struct Best {
    pub(super) loss: f64,
    pub(super) step: usize,
    pub(super) params: Vec<Tensor<f64>>,
}

impl Best {
    pub(super) fn offer(best: &mut Option<Best>, loss: f64, step: usize, params: &[Tensor<f64>]) {
        if loss.is_finite() && !matches!(best, Some(b) if b.loss <= loss) {
            *best = Some(Best {
                loss,
                step,
                params: params.to_vec(),
            });
        }
    }
}

/// What a training run reached.
pub(super) struct Fit {
    pub(super) params: Vec<Tensor<f64>>,
    pub(super) history: History,
    /// The training loss of the initial weights and of the final ones.
    pub(super) first_loss: f64,
    pub(super) final_loss: f64,
    pub(super) best: Option<Best>,
    pub(super) diverged: Option<Divergence>,
}

/// What the training loop carries from one epoch to the next: all that a checkpoint holds.
/// The batches of an epoch are drawn from the seed and the epoch's number, so a run continued
/// from the state at the end of an epoch takes exactly the steps of an uninterrupted one.
pub(super) struct Progress {
    /// The epochs done.
    pub(super) epochs: usize,
    /// The gradient steps taken.
    pub(super) step: usize,
    pub(super) params: Vec<Tensor<f64>>,
    pub(super) optimizer: Box<dyn Optimizer<f64>>,
    pub(super) history: History,
    /// The training loss of the initial weights.
    pub(super) first_loss: f64,
    pub(super) best: Option<Best>,
}

impl Progress {
    /// The state before the first step: the initial weights, a fresh optimiser.
    pub(super) fn start(args: &Args, setup: &Setup) -> Progress {
        // (The epochs and steps are counted from 0; a resumed run reads them from its
        // checkpoint instead.)
        let params = setup.model.param_tensors();
        let first_loss = setup.training_loss(&params);
        let mut best = None;
        Best::offer(&mut best, first_loss, 0, &params);
        Progress {
            epochs: 0,
            step: 0,
            optimizer: optimizer(args.optimizer_kind(), setup.lr),
            params,
            history: History::default(),
            first_loss,
            best,
        }
    }
}

/// The rows of each step over a training part of `train_rows`: all of them (full-batch:
/// `--batch-size 0`, the MLP's default, or a size at least `train_rows`), else `--batch-size`.
/// An epoch takes `train_rows.div_ceil(batch_rows)` steps (the last batch may be smaller).
pub(super) fn batch_rows(args: &Args, train_rows: usize) -> usize {
    match args.batch_rows() {
        0 => train_rows,
        rows => rows.min(train_rows),
    }
}

/// The optimiser of `kind` at learning rate `lr`, in its initial state.
pub(super) fn optimizer(kind: OptimizerKind, lr: f64) -> Box<dyn Optimizer<f64>> {
    match kind {
        OptimizerKind::Gd => Box::new(GradientDescent::new(lr)),
        OptimizerKind::Sgd => Box::new(Sgd::new(lr, 0.9, false)),
        OptimizerKind::Adam => Box::new(Adam::new(lr)),
    }
}

/// The training loop: from the epoch `progress` has reached to `args.epoch_count()`, passes over the
/// training part in batches; `at_checkpoint` sees the state after every `--checkpoint-every`
/// epochs. Stops at the first step whose loss or gradient is not finite.
///
/// Data-parallel on the ranks of `comm`: each rank takes its share of every batch
/// ([`shard`]) and the gradients are summed over the ranks, weighted by their rows, before
/// each step, so every rank takes the same steps. Only rank 0 shows the progress bar.
pub(super) fn fit(
    args: &Args,
    setup: &Setup,
    mut progress: Progress,
    comm: &dyn Communicator,
    at_checkpoint: &mut dyn FnMut(&Progress),
) -> Result<Fit, String> {
    let train_err = |e: perturb::Error| format!("train: {e}");
    let (task, train, model) = (setup.task, &setup.train, &setup.model);
    let bar = if comm.rank() == 0 {
        ProgressBar::new(args.epoch_count() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {msg}")
            .map_err(|e| format!("train: {e}"))?,
    );
    bar.set_position(progress.epochs as u64);
    let batch = batch_rows(args, train.len());
    let full_batch = batch == train.len();
    let mut tape = TensorTape::new();
    // The optimiser keeps its state under the parameters' names (a checkpoint's too).
    let names = super::checkpoint::param_names(setup);
    // The loss per epoch: the training loss (the mean over the epoch's batches) every epoch,
    // the test loss (before the epoch's steps) at about 200 epochs.
    let test_every = (args.epoch_count() / 200).max(1);
    let mut shown_accuracy = String::new();
    for epoch in progress.epochs..args.epoch_count() {
        let Progress {
            step,
            params,
            optimizer,
            history,
            best,
            ..
        } = &mut progress;
        if epoch % test_every == 0 || epoch + 1 == args.epoch_count() {
            if let Ok(test_loss) = model
                .forward(params, &setup.test.x)
                .and_then(|out| loss_of(task, &out, &setup.test_y))
            {
                let value = test_loss.item().unwrap_or(f64::NAN);
                history.test.push(((epoch + 1) as f64, value));
            }
        }
        if args.cosine {
            let schedule = Schedule::Cosine {
                total: args.epoch_count(),
                min_lr: 0.0,
            };
            optimizer.set_lr(schedule.lr_at(setup.lr, epoch));
        }
        let batches = data::Batches::new(train, batch, args.seed.wrapping_add(epoch as u64))
            .map_err(|e| format!("train: {e}"))?;
        let (mut loss_sum, mut rows) = (0.0, 0usize);
        for (x, y) in batches {
            let batch_rows = y.len();
            let mine = shard(batch_rows, comm.rank(), comm.size());
            let (loss, grads) = if mine.is_empty() {
                // More ranks than rows: this rank adds nothing.
                let zeros = params.iter().map(|p| Tensor::zeros(p.shape())).collect();
                (0.0, zeros)
            } else {
                let (x, y) = if mine.len() == batch_rows {
                    (x, y)
                } else {
                    let rows = |t: &Tensor<f64>| t.try_slice(0, mine.clone()).map_err(train_err);
                    (rows(&x)?, rows(&y)?)
                };
                let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
                let out = model.forward(&vars, &tape.constant(x)).map_err(train_err)?;
                let loss = loss_of(task, &out, &y).map_err(train_err)?;
                let refs: Vec<_> = vars.iter().collect();
                let grads = tape.gradient(&loss, &refs).map_err(train_err)?;
                (loss.value().item().unwrap_or(f64::NAN), grads)
            };
            // The batch's mean loss and gradient, on every rank (one message for both).
            let mut both = (grads, Tensor::scalar(loss));
            reduce_gradients(comm, &mut both, mine.len(), batch_rows)
                .map_err(|e| format!("train: {e}"))?;
            let (grads, loss) = (both.0, both.1.item().unwrap_or(f64::NAN));
            tape.clear();
            *step += 1;
            if !loss.is_finite()
                || grads
                    .iter()
                    .any(|g| g.as_slice().iter().any(|v| !v.is_finite()))
            {
                bar.abandon();
                let step = *step;
                return Ok(Fit {
                    final_loss: f64::NAN,
                    params: progress.params,
                    history: progress.history,
                    first_loss: progress.first_loss,
                    best: progress.best,
                    diverged: Some(Divergence { loss, step, epoch }),
                });
            }
            if full_batch {
                Best::offer(best, loss, *step - 1, params);
            }
            optimizer
                .update_leaves(&names, params, &grads)
                .map_err(train_err)?;
            loss_sum += loss * batch_rows as f64;
            rows += batch_rows;
        }
        if !full_batch {
            Best::offer(best, setup.training_loss(params), *step, params);
        }
        let epoch_loss = loss_sum / rows.max(1) as f64;
        history.train.push(((epoch + 1) as f64, epoch_loss));
        // The loss is shown every epoch; the accuracy (a pass over the training data) every 50.
        if task != Task::Regression && (epoch % 50 == 0 || epoch + 1 == args.epoch_count()) {
            shown_accuracy = model
                .forward(params, &train.x)
                .ok()
                .map(|out| {
                    format!(
                        "  train accuracy {:.1}%",
                        100.0 * accuracy(task, &out, &train.y)
                    )
                })
                .unwrap_or_default();
        }
        bar.set_message(format!("loss {epoch_loss:.4}{shown_accuracy}"));
        bar.inc(1);
        progress.epochs = epoch + 1;
        if args
            .checkpoint_every
            .is_some_and(|n| progress.epochs % n == 0)
        {
            bar.suspend(|| at_checkpoint(&progress));
        }
    }
    bar.finish_and_clear();
    Ok(Fit {
        final_loss: setup.training_loss(&progress.params),
        params: progress.params,
        history: progress.history,
        first_loss: progress.first_loss,
        best: progress.best,
        diverged: None,
    })
}

/// The loss per epoch of a run.
#[derive(Default)]
pub(super) struct History {
    pub(super) train: Vec<(f64, f64)>,
    pub(super) test: Vec<(f64, f64)>,
}

/// The task's loss of a batch, as a 0-d array.
pub(super) fn loss_of<A: Array<Elem = f64>>(
    task: Task,
    out: &A,
    y: &Tensor<f64>,
) -> Result<A, perturb::Error> {
    let n = y.len();
    match task {
        Task::Multiclass => {
            let (labels, _) =
                data::class_labels(y).map_err(|e| perturb::Error::InvalidArgument {
                    op: "train",
                    reason: e.to_string(),
                })?;
            softmax_cross_entropy(out, &labels, Reduction::Mean)
        }
        Task::Regression => mse(
            &out.try_reshape(&[n])?,
            &A::lift(y.clone()),
            Reduction::Mean,
        ),
        _ => logistic_nll(
            &out.try_reshape(&[n])?,
            &A::lift(y.clone()),
            Reduction::Mean,
        ),
    }
}
