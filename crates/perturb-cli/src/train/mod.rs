//! `perturb train`: fit a network by gradient descent and report what it reached. With no
//! options it trains the lecture's network (2 inputs, 3 sigmoid hidden units, one output) on two
//! moons with plain gradient descent, `W <- W - alpha dNLL/dW`.

mod checkpoint;
pub(crate) use checkpoint::records_a_run;
mod fit;
mod metrics;
mod outputs;
mod ranks;
mod setup;

use std::path::{Path, PathBuf};

pub use metrics::{predicted_class, regression_metrics, Confusion};
pub use outputs::BATCH_NUMBERS;

use fit::{fit, Fit, Progress};
use metrics::report;
use outputs::{save_failed, save_outputs};
use perturb_nn::distributed::{Communicator, CommunicatorExt};
use setup::Setup;

/// What the network predicts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// From the target: 0/1 is binary, a few integers multi-class, anything else regression.
    Auto,
    /// Two classes, the lecture's logistic negative log-likelihood.
    Binary,
    /// Several classes, softmax cross-entropy.
    Multiclass,
    /// A real value, mean squared error.
    Regression,
}

/// The optimiser.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptimizerKind {
    /// Plain gradient descent, exactly as the lecture writes it.
    Gd,
    /// Gradient descent with momentum 0.9.
    Sgd,
    /// Adam.
    Adam,
}

/// The hidden units' activation.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    Sigmoid,
    Tanh,
    Relu,
    Softplus,
}

/// `perturb train`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    perturb train                                   # the lecture's network on two moons\n  \
    perturb train --data breast_cancer --hidden 16 --activation tanh --optimizer adam --lr 0.01 --epochs 150\n  \
    perturb train --data iris --hidden 8 --optimizer adam --lr 0.05 --epochs 300\n  \
    perturb train --data my.csv --target price --task regression\n  \
    perturb train --data digits --model cnn --cosine --epochs 30 --checkpoint-every 5 --out run\n  \
    perturb train --data digits --model cnn --cosine --epochs 30 --resume run/checkpoint --out run")]
pub struct Args {
    /// A built-in data set (two-moons, circles, spirals, xor, breast_cancer, digits, diabetes,
    /// iris; builtin:NAME where a file of that name is in the current folder) or the path of a
    /// CSV file with a header row (a named pipe waits until something writes to it).
    #[arg(long, default_value = "two-moons")]
    pub data: String,
    /// The column to predict, of the CSV file or the named data set (default: the last one;
    /// for a named data set, its own target); the other columns are the features.
    #[arg(long)]
    pub target: Option<String>,
    /// What to predict.
    #[arg(long, value_enum, default_value_t = Task::Auto)]
    pub task: Task,
    /// The network: a multilayer perceptron (`--hidden`, `--activation`), or a small
    /// convolutional network for square images such as digits (8x8 pixels): two blocks of a
    /// 3x3 convolution, relu and 2x2 max pooling, then a linear layer.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp)]
    pub model: ModelKind,
    /// The MLP's hidden layer sizes, comma separated (e.g. 16,16) [default: 3].
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// The MLP's hidden units' activation [default: sigmoid].
    #[arg(long, value_enum)]
    pub activation: Option<ActivationKind>,
    /// The optimiser [default: gd for the MLP, adam for the CNN].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// The learning rate alpha (default: gd 1 for classification and 0.1 for regression, sgd
    /// a tenth of that, adam 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Passes over the training data [default: 10000 for the MLP, 10 for the CNN].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Rows per gradient step, 0 for the whole training set as in the lecture [default: 0 for
    /// the MLP, 64 for the CNN].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Decay the learning rate along a cosine, from --lr in the first epoch to 0 after the
    /// last (the recipe that takes the CNN past 98.5% on digits). The rate of each epoch
    /// follows from --epochs, so a run resumed with another --epochs follows the new curve.
    #[arg(long)]
    pub cosine: bool,
    /// The share of the rows held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_fraction: f64,
    /// The seed of the data, the split, the initial weights and the batches.
    #[arg(long, default_value_t = 0, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// The folder to write to (created and checked before training): the trained model
    /// (`model.safetensors`, with the architecture, the feature names and the standardisation in
    /// its metadata, for `perturb predict` and `perturb eval`), the loss per epoch (`loss.png`,
    /// `loss.svg`) and, for a classifier of two features, its decision boundary with the data
    /// (`boundary.png`, `boundary.svg`). A run that fails leaves these files as they were and
    /// writes `failed-run.safetensors` and `failed-run-loss.png`/`.svg` instead.
    #[arg(long, default_value = "perturb-out")]
    pub out: PathBuf,
    /// Every N epochs, save a checkpoint of the run in OUT/checkpoint (the weights, the
    /// optimiser's state, the epochs done and the loss so far), replacing the previous one
    /// atomically, so that `--resume OUT/checkpoint` continues a run that was stopped. Counted
    /// in epochs: the batches of each epoch are drawn from the seed and the epoch's number, so
    /// a run resumed at the end of an epoch takes exactly the steps of an uninterrupted one.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue the run saved in the checkpoint folder DIR (OUT/checkpoint of a run with
    /// --checkpoint-every) up to --epochs in all. The run must have the checkpoint's data and
    /// options; only --epochs, --out and --checkpoint-every may change. The weights at the end
    /// are exactly those of an uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Train data-parallel on N ranks, threads of this process: each takes its share of every
    /// batch (contiguous blocks of rows, the first ranks one row more), and the gradients are
    /// summed over the ranks before each step. The weights equal those of one rank up to
    /// rounding (the order of the sums). For ranks on several machines, start perturb with
    /// `mpirun` instead (a build with `--features mpi`; see the README).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub ranks: usize,
}

/// The network `perturb train` fits.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A multilayer perceptron.
    Mlp,
    /// A small convolutional network for square images.
    Cnn,
}

/// The MLP's hidden layer sizes when `--hidden` is not given.
const DEFAULT_HIDDEN: [usize; 1] = [3];

impl Args {
    /// The MLP's hidden layer sizes.
    fn hidden_sizes(&self) -> &[usize] {
        self.hidden.as_deref().unwrap_or(&DEFAULT_HIDDEN)
    }

    /// The MLP's activation.
    fn activation_kind(&self) -> ActivationKind {
        self.activation.unwrap_or(ActivationKind::Sigmoid)
    }

    /// The optimiser: the lecture's gradient descent for the MLP, Adam for the CNN (plain
    /// gradient descent at the lecture's rate diverges there), unless one is given.
    fn optimizer_kind(&self) -> OptimizerKind {
        self.optimizer.unwrap_or(match self.model {
            ModelKind::Mlp => OptimizerKind::Gd,
            ModelKind::Cnn => OptimizerKind::Adam,
        })
    }

    /// The epochs of the run: the lecture's 10000 for the MLP, 10 for the CNN (an epoch of
    /// minibatches there), unless given.
    fn epoch_count(&self) -> usize {
        self.epochs.unwrap_or(match self.model {
            ModelKind::Mlp => 10000,
            ModelKind::Cnn => 10,
        })
    }

    /// The rows per step: the whole training part for the MLP (0), 64 for the CNN, unless
    /// given.
    fn batch_rows(&self) -> usize {
        self.batch_size.unwrap_or(match self.model {
            ModelKind::Mlp => 0,
            ModelKind::Cnn => 64,
        })
    }
}

/// Parses a seed: a whole number from 0 to 2^64 - 1.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "the seed must be a whole number from 0 to {}, got {text}",
            u64::MAX
        )
    })
}

/// A number in at most about a dozen characters: `0.25`, `1e-300`, not 300 digits; six
/// significant digits where the shortest exact form is longer.
pub fn compact(v: f64) -> String {
    let plain = format!("{v}");
    if plain.len() <= 12 || !v.is_finite() {
        return plain;
    }
    let trim = |t: String| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    };
    let magnitude = v.abs().log10().floor() as i32;
    if (-4..6).contains(&magnitude) {
        trim(format!("{v:.*}", (5 - magnitude) as usize))
    } else {
        let text = format!("{v:.5e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        format!("{}e{exponent}", trim(mantissa.to_string()))
    }
}

/// The name of a failed run's files in the output folder.
const FAILED: &str = "failed-run";

/// Runs the command: on one rank, on `--ranks` thread ranks, or as one of the processes of
/// an MPI job ([`ranks::run`] decides).
pub fn run(args: &Args) -> Result<(), String> {
    ranks::run(args)
}

/// One rank's run: check the arguments and the output folder, load and check the data,
/// agree with the other ranks, train, report, and save (or, for a run that failed, save apart
/// and say so). Only rank 0 prints, and writes files.
fn run_rank(args: &Args, comm: &dyn Communicator) -> Result<(), String> {
    let lead = comm.rank() == 0;
    let folder = args.out.join(checkpoint::FOLDER);
    // What can fail on one rank alone; the ranks then agree, so that all stop or none.
    let prepared = (|| {
        check(args)?;
        if lead {
            crate::out_dir::prepare(&args.out).map_err(|e| format!("train: {e}"))?;
            if args.checkpoint_every.is_some() {
                checkpoint::prepare(&folder).map_err(|e| format!("train: {e}"))?;
            }
        }
        let setup = Setup::new(args).map_err(|e| format!("train: {e}"))?;
        let start = match &args.resume {
            Some(dir) => checkpoint::load(dir, args, &setup).map_err(|e| format!("train: {e}"))?,
            None => Progress::start(args, &setup),
        };
        Ok((setup, start))
    })();
    let (setup, mut start) = ranks::agree(comm, prepared)?;
    ranks::same_config(comm, args, &setup)?;
    // Every rank drew the same weights from the seed (or read the same checkpoint); rank 0's
    // are sent to all the same, so that nothing else can make them differ.
    comm.broadcast(&mut start.params)
        .map_err(|e| alone(comm, format!("train: {e}")))?;
    if lead {
        setup.print_header(args);
        if comm.size() > 1 {
            println!("data-parallel on {} ranks", comm.size());
        }
        if start.epochs > 0 {
            println!(
                "resuming after epoch {} (step {}) from {}",
                start.epochs,
                start.step,
                args.resume.as_deref().unwrap_or(Path::new("")).display()
            );
        }
    }
    let fit = fit(args, &setup, start, comm, &mut |progress| {
        // A checkpoint that cannot be written does not stop the run (the previous one stays
        // whole); it is said at once.
        if !lead {
            return;
        }
        if let Err(e) = checkpoint::save(&folder, args, &setup, progress) {
            eprintln!(
                "perturb: train: warning: the checkpoint after epoch {} was not written: {e}",
                progress.epochs
            );
        }
    })
    .map_err(|e| alone(comm, e))?;
    // Every rank took the same steps: they reach the same verdict; rank 0 writes.
    let saved = |fit: &Fit| match lead {
        true => save_failed(args, &setup, fit),
        false => Ok("(rank 0 saves the run)".to_string()),
    };
    if let Some(stop) = &fit.diverged {
        let saved = saved(&fit)?;
        let cause = if stop.step == 1 {
            "the loss of the initial weights is not finite: the data cannot be trained on as \
             they are (check for columns of huge or tiny values)"
                .to_string()
        } else {
            format!(
                "the training diverged; lower --lr (it was {})",
                compact(setup.lr)
            )
        };
        return Err(format!(
            "train: the loss became {} at step {} (epoch {}): {cause}. {saved}",
            stop.loss, stop.step, stop.epoch
        ));
    }
    let model = setup.model_with(&fit.params)?;
    if lead {
        report(&setup, &model)?;
    }
    // NaN counts as worse.
    let improved = fit.final_loss <= fit.first_loss;
    if !improved {
        let saved = saved(&fit)?;
        let or_adam = match args.optimizer_kind() {
            OptimizerKind::Adam => "",
            OptimizerKind::Gd | OptimizerKind::Sgd => " or try --optimizer adam",
        };
        return Err(format!(
            "train: the final training loss ({}) is higher than the first ({}): the training \
             did not converge; lower --lr (it was {}){or_adam}. {saved}",
            compact(fit.final_loss),
            compact(fit.first_loss),
            compact(setup.lr)
        ));
    }
    match lead {
        true => save_outputs(args, &setup, &model, &fit.history),
        false => Ok(()),
    }
}

/// An error of this rank alone, while the others may be waiting for it in a collective:
/// this rank gives up on the run ([`Communicator::abort`]: under MPI, the job ends here).
fn alone(comm: &dyn Communicator, error: String) -> String {
    comm.abort(&error);
    error
}

fn check(args: &Args) -> Result<(), String> {
    if let Some(lr) = args.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(format!(
            "train: --lr must be a positive number, got {}",
            compact(lr)
        ));
    }
    if args.epochs == Some(0) {
        return Err("train: --epochs must be at least 1".into());
    }
    if args.hidden_sizes().contains(&0) {
        return Err("train: --hidden sizes must be at least 1".into());
    }
    if args.model == ModelKind::Cnn {
        for (given, option) in [
            (args.hidden.is_some(), "--hidden"),
            (args.activation.is_some(), "--activation"),
        ] {
            if given {
                return Err(format!(
                    "train: {option} is an option of --model mlp; the cnn's layers are fixed \
                     (see perturb train --help)"
                ));
            }
        }
    }
    match args.checkpoint_every {
        Some(0) => return Err("train: --checkpoint-every must be at least 1 (epochs)".into()),
        Some(n) if n > args.epoch_count() => {
            return Err(format!(
                "train: --checkpoint-every {n} is more than the {} epochs of the run: no \
                 checkpoint would be written",
                args.epoch_count()
            ))
        }
        _ => {}
    }
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        return Err(format!(
            "train: --test-fraction must be between 0 and 1, got {}",
            compact(args.test_fraction)
        ));
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn numbers_print_compactly() {
        assert_eq!(compact(1.0), "1");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(1e-300), "1e-300");
        assert_eq!(compact(1.3451215466247124), "1.34512");
        assert_eq!(compact(1234567.8912345), "1.23457e6");
        assert_eq!(compact(f64::INFINITY), "inf");
    }
}
