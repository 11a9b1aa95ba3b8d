//! `perturb train`: fit a network by gradient descent and report what it reached. With no
//! options it trains the lecture's network (2 inputs, 3 sigmoid hidden units, one output) on two
//! moons with plain gradient descent, `W <- W - alpha dNLL/dW`.

use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use perturb::tensor::{Array, Tensor, TensorTape};
use perturb_nn::data::{self, DataError, Dataset, Standardizer, TargetColumn};
use perturb_nn::loss::{logistic_nll, mse, softmax_cross_entropy, Reduction};
use perturb_nn::nn::{Activation, Init, Mlp};
use perturb_nn::optim::{Adam, GradientDescent, Optimizer, Sgd};

use crate::data_arg::Source;

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
    perturb train --data my.csv --target price --task regression")]
pub struct Args {
    /// A built-in data set (two-moons, circles, spirals, xor, breast_cancer, digits, diabetes,
    /// iris; builtin:NAME where a file of that name is in the current folder) or the path of a
    /// CSV file with a header row (a named pipe waits until something writes to it).
    #[arg(long, default_value = "two-moons")]
    pub data: String,
    /// The CSV column to predict (default: the last one).
    #[arg(long)]
    pub target: Option<String>,
    /// What to predict.
    #[arg(long, value_enum, default_value_t = Task::Auto)]
    pub task: Task,
    /// Hidden layer sizes, comma separated (e.g. 16,16).
    #[arg(long, value_delimiter = ',', default_value = "3")]
    pub hidden: Vec<usize>,
    /// The hidden units' activation.
    #[arg(long, value_enum, default_value_t = ActivationKind::Sigmoid)]
    pub activation: ActivationKind,
    /// The optimiser.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Gd)]
    pub optimizer: OptimizerKind,
    /// The learning rate alpha (default: gd 1 for classification and 0.1 for regression, sgd
    /// a tenth of that, adam 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Passes over the training data.
    #[arg(long, default_value_t = 10000)]
    pub epochs: usize,
    /// Rows per gradient step (0: the whole training set, as in the lecture).
    #[arg(long, default_value_t = 0)]
    pub batch_size: usize,
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

/// The MSE and R^2 of predictions, as text; R^2 is "undefined" where the targets do not vary.
pub fn regression_metrics(pred: &[f64], y: &[f64]) -> (String, String) {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = y.iter().map(|t| (t - mean).powi(2)).sum();
    let r2 = if y.len() < 2 {
        "undefined (one row)".to_string()
    } else if !(sst > 0.0 && sst.is_finite()) {
        "undefined (the target is constant)".to_string()
    } else {
        format!("{:.4}", 1.0 - sse / sst)
    };
    (format!("{:.4}", sse / n), r2)
}

/// The name of a failed run's files in the output folder.
const FAILED: &str = "failed-run";

/// Runs the command: check the arguments and the output folder, load and check the data,
/// train, report, and save (or, for a run that failed, save apart and say so).
pub fn run(args: &Args) -> Result<(), String> {
    check(args)?;
    crate::out_dir::prepare(&args.out).map_err(|e| format!("train: {e}"))?;
    let setup = Setup::new(args).map_err(|e| format!("train: {e}"))?;
    setup.print_header(args);
    let fit = fit(args, &setup)?;
    if let Some(stop) = &fit.diverged {
        let saved = save_failed(args, &setup, &fit)?;
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
    report(&setup, &model)?;
    // NaN counts as worse.
    let improved = fit.final_loss <= fit.first_loss;
    if !improved {
        let saved = save_failed(args, &setup, &fit)?;
        return Err(format!(
            "train: the final training loss ({}) is higher than the first ({}): the training \
             did not converge; lower --lr (it was {}) or try --optimizer adam. {saved}",
            compact(fit.final_loss),
            compact(fit.first_loss),
            compact(setup.lr)
        ));
    }
    save_outputs(args, &setup, &model, &fit.history)
}

/// The data, split and standardised, and the network to train, checked.
struct Setup {
    /// The data's name for titles: a file's name without its folder.
    name: String,
    task: Task,
    sizes: Vec<usize>,
    activation: Activation,
    lr: f64,
    rows: usize,
    train: Dataset<f64>,
    test: Dataset<f64>,
    /// The test targets on the training targets' (standardised) scale.
    test_y: Tensor<f64>,
    /// The features in their own units, for the decision-boundary picture.
    raw: (Tensor<f64>, Tensor<f64>),
    scaler: Standardizer<f64>,
    target_scale: (f64, f64),
    feature_names: Vec<String>,
    target_name: String,
    model: Mlp<f64>,
    /// A note on the inferred task, printed after the header.
    note: Option<String>,
}

impl Setup {
    fn new(args: &Args) -> Result<Setup, String> {
        let dataset = load(args)?;
        let task = resolve_task(args.task, &dataset);
        let classes = outputs(task, &args.data, &dataset)?;
        let note = (args.task == Task::Auto && task == Task::Regression)
            .then(|| regression_note(&dataset.y))
            .flatten();
        let (mut train, mut test) = data::train_test_split(&dataset, args.test_fraction, args.seed)
            .map_err(|e| e.to_string())?;
        let raw = (train.x.clone(), test.x.clone());
        let names = &dataset.feature_names;
        let scaler = Standardizer::fit_named(&train.x, names).map_err(|e| cannot_scale(&e))?;
        train.x = standardised(&scaler, &train.x, names)?;
        test.x = standardised(&scaler, &test.x, names)?;
        // A regression target is standardised too (on the training part), and predictions are
        // mapped back before the metrics.
        let target_scale = if task == Task::Regression {
            let column = train
                .y
                .reshape(&[train.len(), 1])
                .map_err(|e| e.to_string())?;
            let target =
                Standardizer::fit_named(&column, std::slice::from_ref(&dataset.target_name))
                    .map_err(|e| cannot_scale(&e))?;
            let scale = (target.mean()[0], target.std()[0]);
            train.y = train.y.map(|v| (v - scale.0) / scale.1);
            scale
        } else {
            (0.0, 1.0)
        };
        let test_y = test.y.map(|v| (v - target_scale.0) / target_scale.1);
        let mut sizes = vec![dataset.n_features()];
        sizes.extend(&args.hidden);
        sizes.push(classes);
        let activation = match args.activation {
            ActivationKind::Sigmoid => Activation::Sigmoid,
            ActivationKind::Tanh => Activation::Tanh,
            ActivationKind::Relu => Activation::Relu,
            ActivationKind::Softplus => Activation::Softplus,
        };
        let init = if matches!(activation, Activation::Relu) {
            Init::HeNormal
        } else {
            Init::XavierUniform
        };
        crate::model_file::check_sizes(&sizes).map_err(|e| format!("--hidden: {e}"))?;
        let model = Mlp::new(&sizes, activation, init, args.seed).map_err(|e| e.to_string())?;
        Ok(Setup {
            name: data_name(&args.data),
            task,
            sizes,
            activation,
            lr: args.lr.unwrap_or_else(|| default_lr(task, args.optimizer)),
            rows: dataset.len(),
            train,
            test,
            test_y,
            raw,
            scaler,
            target_scale,
            feature_names: dataset.feature_names,
            target_name: dataset.target_name,
            model,
            note,
        })
    }

    fn print_header(&self, args: &Args) {
        println!(
            "perturb train: {} ({} rows, {} features) as {}, network {:?} with {:?} units, {:?} at lr {}, {} epochs",
            args.data,
            self.rows,
            self.sizes[0],
            format!("{:?}", self.task).to_lowercase(),
            self.sizes,
            self.activation,
            args.optimizer,
            compact(self.lr),
            args.epochs
        );
        if let Some(note) = &self.note {
            println!("note: {note}");
        }
    }

    /// The network with the given parameters.
    fn model_with(&self, params: &[Tensor<f64>]) -> Result<Mlp<f64>, String> {
        let mut model = self.model.clone();
        model
            .load_params(params)
            .map_err(|e| format!("train: {e}"))?;
        Ok(model)
    }

    /// The loss on the whole training part with the given parameters (NaN if it cannot be
    /// computed).
    fn training_loss(&self, params: &[Tensor<f64>]) -> f64 {
        self.model
            .forward(params, &self.train.x)
            .and_then(|out| loss_of(self.task, &out, &self.train.y))
            .ok()
            .and_then(|l| l.item())
            .unwrap_or(f64::NAN)
    }
}

/// The default learning rate: the lecture's 1 for gradient descent on a classifier; for a
/// regression's mean squared error (curvature 2 in the output bias, so gradient descent at
/// lr 1 oscillates), 0.1; momentum (which multiplies the steps by about 10) a tenth of those;
/// Adam 0.01.
fn default_lr(task: Task, optimizer: OptimizerKind) -> f64 {
    let gd = if task == Task::Regression { 0.1 } else { 1.0 };
    match optimizer {
        OptimizerKind::Gd => gd,
        OptimizerKind::Sgd => gd / 10.0,
        OptimizerKind::Adam => 0.01,
    }
}

/// A standardisation error, with what to do about it.
fn cannot_scale(e: &DataError) -> String {
    format!("{e}; the data cannot be standardised as they are, rescale the column")
}

/// `x` standardised by `scaler`; a value that standardises to a number too large for the
/// arithmetic (far outside the training part's range) is an error naming its column.
fn standardised(
    scaler: &Standardizer<f64>,
    x: &Tensor<f64>,
    names: &[String],
) -> Result<Tensor<f64>, String> {
    let scaled = scaler.transform(x).map_err(|e| e.to_string())?;
    let d = names.len().max(1);
    match scaled.as_slice().iter().position(|v| !v.is_finite()) {
        None => Ok(scaled),
        Some(i) => Err(format!(
            "the column \"{}\" cannot be standardised: a value standardises to {}; its values \
             are too large or too small for the arithmetic, rescale them",
            crate::apply::shown(&names[i % d]),
            scaled.as_slice()[i]
        )),
    }
}

/// The number of outputs of the network for `task`, after the library's checks of the labels
/// (binary 0 or 1, multi-class whole numbers below [`data::MAX_CLASSES`]); an error names the
/// data, the target column and the data row (counted from 1).
fn outputs(task: Task, source: &str, dataset: &Dataset<f64>) -> Result<usize, String> {
    let checked = match task {
        Task::Binary => data::check_binary_labels(&dataset.y).map(|()| 1),
        Task::Multiclass => data::class_labels(&dataset.y).map(|(_, classes)| classes),
        Task::Regression | Task::Auto => Ok(1),
    };
    checked.map_err(|e| match e {
        DataError::BadLabel {
            row, value, rule, ..
        } => format!(
            "{source}: the target \"{}\" of data row {} is {value}: {rule} (--task {})",
            crate::apply::shown(&dataset.target_name),
            row + 1,
            format!("{task:?}").to_lowercase()
        ),
        e => e.to_string(),
    })
}

/// For a target that `--task auto` takes for a regression although it holds only class labels
/// ([`data::class_labels`]: whole numbers from 0), a note that says so.
fn regression_note(y: &Tensor<f64>) -> Option<String> {
    data::class_labels(y).ok()?;
    let mut distinct: Vec<f64> = y.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    Some(format!(
        "the target holds only whole numbers ({} distinct values) and is trained as a \
         regression; if they are classes, use --task multiclass",
        distinct.len()
    ))
}

/// Where training stopped because the loss or a gradient was not finite.
struct Divergence {
    loss: f64,
    step: usize,
    epoch: usize,
}

/// The parameters with the lowest loss on the whole training part seen so far (finite by
/// construction), and the step before which they were reached.
struct Checkpoint {
    loss: f64,
    step: usize,
    params: Vec<Tensor<f64>>,
}

impl Checkpoint {
    fn offer(best: &mut Option<Checkpoint>, loss: f64, step: usize, params: &[Tensor<f64>]) {
        if loss.is_finite() && !matches!(best, Some(b) if b.loss <= loss) {
            *best = Some(Checkpoint {
                loss,
                step,
                params: params.to_vec(),
            });
        }
    }
}

/// What a training run reached.
struct Fit {
    params: Vec<Tensor<f64>>,
    history: History,
    /// The training loss of the initial weights and of the final ones.
    first_loss: f64,
    final_loss: f64,
    best: Option<Checkpoint>,
    diverged: Option<Divergence>,
}

/// The training loop: `args.epochs` passes over the training part in batches. Stops at the
/// first step whose loss or gradient is not finite.
fn fit(args: &Args, setup: &Setup) -> Result<Fit, String> {
    let train_err = |e: perturb::Error| format!("train: {e}");
    let (task, train, model) = (setup.task, &setup.train, &setup.model);
    let mut params = model.param_tensors();
    let mut optimizer: Box<dyn Optimizer<f64>> = match args.optimizer {
        OptimizerKind::Gd => Box::new(GradientDescent::new(setup.lr)),
        OptimizerKind::Sgd => Box::new(Sgd::new(setup.lr, 0.9, false)),
        OptimizerKind::Adam => Box::new(Adam::new(setup.lr)),
    };
    let bar = ProgressBar::new(args.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {msg}")
            .map_err(|e| format!("train: {e}"))?,
    );
    let full_batch = args.batch_size == 0 || args.batch_size >= train.len();
    let batch = if full_batch {
        train.len()
    } else {
        args.batch_size
    };
    let first_loss = setup.training_loss(&params);
    let mut best = None;
    Checkpoint::offer(&mut best, first_loss, 0, &params);
    let mut tape = TensorTape::new();
    let mut step = 0usize;
    // The loss per epoch: the training loss (the mean over the epoch's batches) every epoch,
    // the test loss (before the epoch's steps) at about 200 epochs.
    let mut history = History::default();
    let test_every = (args.epochs / 200).max(1);
    let mut shown_accuracy = String::new();
    for epoch in 0..args.epochs {
        if epoch % test_every == 0 || epoch + 1 == args.epochs {
            if let Ok(test_loss) = model
                .forward(&params, &setup.test.x)
                .and_then(|out| loss_of(task, &out, &setup.test_y))
            {
                let value = test_loss.item().unwrap_or(f64::NAN);
                history.test.push(((epoch + 1) as f64, value));
            }
        }
        let batches = data::Batches::new(train, batch, args.seed.wrapping_add(epoch as u64))
            .map_err(|e| format!("train: {e}"))?;
        let (mut loss_sum, mut rows) = (0.0, 0usize);
        for (x, y) in batches {
            let batch_rows = y.len();
            let (loss, grads) = {
                let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
                let out = model.forward(&vars, &tape.constant(x)).map_err(train_err)?;
                let loss = loss_of(task, &out, &y).map_err(train_err)?;
                let refs: Vec<_> = vars.iter().collect();
                let grads = tape.gradient(&loss, &refs).map_err(train_err)?;
                (loss.value().item().unwrap_or(f64::NAN), grads)
            };
            tape.clear();
            step += 1;
            if !loss.is_finite()
                || grads
                    .iter()
                    .any(|g| g.as_slice().iter().any(|v| !v.is_finite()))
            {
                bar.abandon();
                return Ok(Fit {
                    final_loss: f64::NAN,
                    params,
                    history,
                    first_loss,
                    best,
                    diverged: Some(Divergence { loss, step, epoch }),
                });
            }
            if full_batch {
                Checkpoint::offer(&mut best, loss, step - 1, &params);
            }
            optimizer.step(&mut params, &grads).map_err(train_err)?;
            loss_sum += loss * batch_rows as f64;
            rows += batch_rows;
        }
        if !full_batch {
            Checkpoint::offer(&mut best, setup.training_loss(&params), step, &params);
        }
        let epoch_loss = loss_sum / rows.max(1) as f64;
        history.train.push(((epoch + 1) as f64, epoch_loss));
        // The loss is shown every epoch; the accuracy (a pass over the training data) every 50.
        if task != Task::Regression && (epoch % 50 == 0 || epoch + 1 == args.epochs) {
            shown_accuracy = model
                .forward(&params, &train.x)
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
    }
    bar.finish_and_clear();
    Ok(Fit {
        final_loss: setup.training_loss(&params),
        params,
        history,
        first_loss,
        best,
        diverged: None,
    })
}

/// Saves a failed run apart from the folder's model: the weights with the lowest training loss
/// (if any had a finite loss) in `failed-run.safetensors` and the loss curve in
/// `failed-run-loss.png`/`.svg`. Returns a sentence saying what was written where.
fn save_failed(args: &Args, setup: &Setup, fit: &Fit) -> Result<String, String> {
    let dir = &args.out;
    let kept = format!(
        "{} is left as it was",
        dir.join(crate::out_dir::MODEL).display()
    );
    let [png, svg] = loss_picture(args, setup, &fit.history, &format!("{FAILED}-loss"))?;
    let weights = match &fit.best {
        Some(best) => {
            let path = dir.join(format!("{FAILED}.safetensors"));
            save_model(&path, setup, &setup.model_with(&best.params)?, args)?;
            format!(
                "the weights with the lowest training loss ({} after {} steps) are saved in {}",
                compact(best.loss),
                best.step,
                path.display()
            )
        }
        None => "no weights had a finite training loss, none are saved".to_string(),
    };
    Ok(format!(
        "{kept}; {weights}; the loss until then is in {} and {}",
        png.display(),
        svg.display()
    ))
}

/// Writes a successful run's files (each atomically) and says what was written: the model, the
/// loss pictures, and the decision boundary or, where this run draws none, the removal of an
/// earlier run's boundary pictures.
fn save_outputs(
    args: &Args,
    setup: &Setup,
    model: &Mlp<f64>,
    history: &History,
) -> Result<(), String> {
    let dir = &args.out;
    let model_path = dir.join(crate::out_dir::MODEL);
    let replaced = model_path.exists();
    save_model(&model_path, setup, model, args)?;
    println!("written to {}:", dir.display());
    println!(
        "  {}  the model{} (perturb predict --model {} --data new.csv)",
        model_path.display(),
        if replaced {
            ", replacing the previous model"
        } else {
            ""
        },
        model_path.display()
    );
    let [png, svg] = loss_picture(args, setup, history, "loss")?;
    println!("  {}, {}  the loss per epoch", png.display(), svg.display());
    let stale = ["boundary.png", "boundary.svg"].map(|f| dir.join(f));
    if setup.sizes[0] == 2 && setup.task != Task::Regression {
        let [png, svg] = boundary_picture(setup, model, dir)?;
        println!(
            "  {}, {}  the decision boundary with the data",
            png.display(),
            svg.display()
        );
    } else if stale.iter().any(|p| p.exists()) {
        for path in &stale {
            if path.exists() {
                std::fs::remove_file(path)
                    .map_err(|e| format!("train: cannot remove {}: {e}", path.display()))?;
            }
        }
        println!(
            "  removed {} and {}: an earlier run's decision boundary (this run draws none)",
            stale[0].display(),
            stale[1].display()
        );
    }
    Ok(())
}

/// Draws the decision boundary of a classifier of two features into `dir`.
fn boundary_picture(setup: &Setup, model: &Mlp<f64>, dir: &Path) -> Result<[PathBuf; 2], String> {
    let task = setup.task;
    let classes = if task == Task::Multiclass {
        setup.sizes[setup.sizes.len() - 1]
    } else {
        2
    };
    let points = |x: &Tensor<f64>, y: &Tensor<f64>| -> Vec<([f64; 2], usize)> {
        x.as_slice()
            .chunks_exact(2)
            .zip(y.as_slice())
            .map(|(p, &c)| ([p[0], p[1]], c as usize))
            .collect()
    };
    let (train_points, test_points) = (
        points(&setup.raw.0, &setup.train.y),
        points(&setup.raw.1, &setup.test.y),
    );
    let test_accuracy = model
        .predict(&setup.test.x)
        .map(|out| accuracy(task, &out, &setup.test.y))
        .unwrap_or(f64::NAN);
    let plot = crate::plot::Boundary {
        title: format!(
            "{}: network {:?}, test accuracy {:.1}%",
            setup.name,
            setup.sizes,
            100.0 * test_accuracy
        ),
        axes: [
            setup.feature_names[0].clone(),
            setup.feature_names[1].clone(),
        ],
        class_names: (0..classes)
            .map(|c| format!("{} = {c}", setup.target_name))
            .collect(),
        train: &train_points,
        test: &test_points,
    };
    let probabilities = |grid: &[[f64; 2]]| -> Result<Vec<Vec<f64>>, String> {
        class_probabilities(task, model, &setup.scaler, grid).map_err(|e| format!("train: {e}"))
    };
    crate::plot::boundary(dir, &plot, &probabilities).map_err(|e| format!("train: {e}"))
}

/// The loss per epoch of a run.
#[derive(Default)]
struct History {
    train: Vec<(f64, f64)>,
    test: Vec<(f64, f64)>,
}

/// The name of a data set for a title: a CSV file's name without its folder.
fn data_name(data: &str) -> String {
    std::path::Path::new(data)
        .file_name()
        .map_or_else(|| data.to_string(), |n| n.to_string_lossy().into_owned())
}

/// Draws `STEM.png` and `STEM.svg` in the output folder: the loss per epoch.
fn loss_picture(
    args: &Args,
    setup: &Setup,
    history: &History,
    stem: &str,
) -> Result<[PathBuf; 2], String> {
    let loss_name = match setup.task {
        Task::Multiclass => "loss (softmax cross-entropy)",
        Task::Regression => "loss (MSE, standardised target)",
        _ => "loss (logistic NLL)",
    };
    let series = [
        crate::plot::Series {
            label: "training".into(),
            points: history.train.clone(),
        },
        crate::plot::Series {
            label: "test".into(),
            points: history.test.clone(),
        },
    ];
    let title = format!(
        "{}: network {:?}, {:?} at lr {}",
        setup.name,
        setup.sizes,
        args.optimizer,
        compact(setup.lr)
    );
    crate::plot::loss_curve(&args.out, stem, &title, loss_name, &series)
        .map_err(|e| format!("train: {e}"))
}

/// How many numbers one batch of inference may hold in its widest layer (8 MB of f64): the
/// rows are split into batches of at most this over the widest layer's size.
pub const BATCH_NUMBERS: usize = 1 << 20;

/// The model's class probabilities at points given in the features' own units: binary
/// `[1 - p, p]` with `p = sigmoid(logit)`, multi-class the softmax. The points go through the
/// network in batches bounded by [`BATCH_NUMBERS`], so a wide network does not need one huge
/// matrix for the whole grid.
fn class_probabilities(
    task: Task,
    model: &Mlp<f64>,
    scaler: &Standardizer<f64>,
    points: &[[f64; 2]],
) -> Result<Vec<Vec<f64>>, String> {
    let widest = model
        .layers
        .iter()
        .map(|l| l.weight.shape().iter().copied().max().unwrap_or(1))
        .max()
        .unwrap_or(1);
    let rows = (BATCH_NUMBERS / widest.max(1)).max(1);
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(rows) {
        let flat: Vec<f64> = chunk.iter().flatten().copied().collect();
        let x = Tensor::from_vec(flat, &[chunk.len(), 2]).map_err(|e| e.to_string())?;
        let x = scaler.transform(&x).map_err(|e| e.to_string())?;
        let logits = model.predict(&x).map_err(|e| e.to_string())?;
        out.extend(probabilities_of(task, &logits));
    }
    Ok(out)
}

/// Class probabilities from a batch of the network's outputs.
fn probabilities_of(task: Task, out: &Tensor<f64>) -> Vec<Vec<f64>> {
    let width = out.shape().get(1).copied().unwrap_or(1).max(1);
    out.as_slice()
        .chunks(width)
        .map(|row| {
            if task == Task::Multiclass {
                let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let exp: Vec<f64> = row.iter().map(|v| (v - top).exp()).collect();
                let sum: f64 = exp.iter().sum();
                exp.iter().map(|v| v / sum).collect()
            } else {
                let p = 1.0 / (1.0 + (-row[0]).exp());
                vec![1.0 - p, p]
            }
        })
        .collect()
}

/// Writes the model with the run's metadata to `path`, atomically.
fn save_model(path: &Path, setup: &Setup, model: &Mlp<f64>, args: &Args) -> Result<(), String> {
    let saved = crate::model_file::SavedModel {
        model: model.clone(),
        sizes: setup.sizes.clone(),
        activation: format!("{:?}", args.activation).to_lowercase(),
        task: format!("{:?}", setup.task).to_lowercase(),
        scaler: setup.scaler.clone(),
        target_mean: setup.target_scale.0,
        target_std: setup.target_scale.1,
        feature_names: Some(setup.feature_names.clone()),
        target_name: Some(setup.target_name.clone()),
    };
    crate::model_file::save(path, &saved).map_err(|e| format!("train: {e}"))
}

fn check(args: &Args) -> Result<(), String> {
    if let Some(lr) = args.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(format!(
            "train: --lr must be a positive number, got {}",
            compact(lr)
        ));
    }
    if args.epochs == 0 {
        return Err("train: --epochs must be at least 1".into());
    }
    if args.hidden.contains(&0) {
        return Err("train: --hidden sizes must be at least 1".into());
    }
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        return Err(format!(
            "train: --test-fraction must be between 0 and 1, got {}",
            compact(args.test_fraction)
        ));
    }
    Ok(())
}

fn load(args: &Args) -> Result<Dataset<f64>, String> {
    match crate::data_arg::resolve(&args.data, args.seed)? {
        Source::Named(dataset) => Ok(dataset),
        Source::File(path) => {
            let target = args
                .target
                .clone()
                .map_or(TargetColumn::Last, TargetColumn::Name);
            data::load_csv(path, target).map_err(|e| e.to_string())
        }
    }
}

/// The task `--task auto` stands for: binary for 0/1 labels, multi-class for class labels
/// 0..19 (the library's checks of each), regression otherwise.
fn resolve_task(task: Task, data: &Dataset<f64>) -> Task {
    if task != Task::Auto {
        return task;
    }
    if data::check_binary_labels(&data.y).is_ok() {
        Task::Binary
    } else if data::class_labels(&data.y).is_ok_and(|(_, classes)| classes <= 20) {
        Task::Multiclass
    } else {
        Task::Regression
    }
}

/// The task's loss of a batch, as a 0-d array.
fn loss_of<A: Array<Elem = f64>>(
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

/// The class one row of a classifier's outputs predicts: binary 1 where the logit is above 0
/// and 0 otherwise, multi-class the index of the largest output. NaN where an output
/// is NaN: it predicts no class (counting it as class 0 would report a broken model's share of
/// class 0 as its accuracy, and `predict` would print a class for it).
pub fn predicted_class(task: Task, row: &[f64]) -> f64 {
    if row.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    match task {
        Task::Binary => f64::from(u8::from(row[0] > 0.0)),
        _ => row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b }) as f64,
    }
}

/// The share of rows whose predicted class ([`predicted_class`]) is the target.
fn accuracy(task: Task, out: &Tensor<f64>, y: &Tensor<f64>) -> f64 {
    let width = out.shape().get(1).copied().unwrap_or(1).max(1);
    let correct = out
        .as_slice()
        .chunks(width)
        .zip(y.as_slice())
        .filter(|(row, &t)| predicted_class(task, row) == t)
        .count();
    correct as f64 / y.len().max(1) as f64
}

/// Prints the metrics of the trained model on the training and the test part.
fn report(setup: &Setup, model: &Mlp<f64>) -> Result<(), String> {
    let (task, (y_mean, y_std)) = (setup.task, setup.target_scale);
    println!(
        "trained. metrics on the training part ({} rows) and the held-out test part ({} rows):",
        setup.train.len(),
        setup.test.len()
    );
    for (name, part) in [("train", &setup.train), ("test", &setup.test)] {
        let out = model.predict(&part.x).map_err(|e| format!("train: {e}"))?;
        if task == Task::Regression {
            // The training targets were standardised: undo it for the metrics.
            let y: Vec<f64> = if name == "train" {
                part.y
                    .as_slice()
                    .iter()
                    .map(|v| v * y_std + y_mean)
                    .collect()
            } else {
                part.y.to_vec()
            };
            let pred: Vec<f64> = out.as_slice().iter().map(|p| p * y_std + y_mean).collect();
            let (mse, r2) = regression_metrics(&pred, &y);
            println!("  {name:<5}  MSE {mse}   R^2 {r2}");
        } else {
            let share = accuracy(task, &out, &part.y);
            println!("  {name:<5}  accuracy {:.2}%", 100.0 * share);
        }
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

    #[test]
    fn a_nan_output_predicts_no_class() {
        let (binary, multi) = (Task::Binary, Task::Multiclass);
        assert_eq!(predicted_class(binary, &[0.5]), 1.0);
        assert_eq!(predicted_class(binary, &[-0.5]), 0.0);
        assert_eq!(predicted_class(multi, &[0.1, 2.0, -1.0]), 1.0);
        assert_eq!(predicted_class(multi, &[0.5]), 0.0);
        // Both were class 0 (a NaN is never above 0, nor above the first output).
        assert!(predicted_class(binary, &[f64::NAN]).is_nan());
        assert!(predicted_class(multi, &[f64::NAN, 1.0, 2.0]).is_nan());
        let out = Tensor::from_vec(vec![f64::NAN, -1.0], &[2, 1]).unwrap();
        assert_eq!(accuracy(binary, &out, &Tensor::vector(&[0.0, 0.0])), 0.5);
    }

    #[test]
    fn r_squared_is_undefined_without_variation() {
        assert_eq!(
            regression_metrics(&[3.0, 3.0], &[3.25, 3.25]).1,
            "undefined (the target is constant)"
        );
        assert_eq!(regression_metrics(&[1.0], &[2.0]).1, "undefined (one row)");
        assert_eq!(regression_metrics(&[1.0, 2.0], &[1.0, 2.0]).1, "1.0000");
    }
}
