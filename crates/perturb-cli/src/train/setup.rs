//! The data, loaded, split and standardised, and the network to train, checked.

use perturb::tensor::Tensor;
use perturb_nn::data::{self, DataError, Dataset, Standardizer, TargetColumn};
use perturb_nn::nn::Activation;

use crate::network::{image_side, Architecture, Network, CNN_CHANNELS};

use super::checkpoint::RunConfig;
use super::fit::loss_of;
use super::{compact, ActivationKind, Args, ModelKind, OptimizerKind, Task};
use crate::data_arg::Source;

/// The data, split and standardised, and the network to train, checked.
pub(super) struct Setup {
    /// The data's name for titles: a file's name without its folder.
    pub(super) name: String,
    pub(super) task: Task,
    /// The network's inputs (the data's features) and outputs (1, or the classes).
    pub(super) inputs: usize,
    pub(super) outputs: usize,
    pub(super) lr: f64,
    pub(super) rows: usize,
    pub(super) train: Dataset<f64>,
    pub(super) test: Dataset<f64>,
    /// The test targets on the training targets' (standardised) scale.
    pub(super) test_y: Tensor<f64>,
    /// The features in their own units, for the decision-boundary picture.
    pub(super) raw: (Tensor<f64>, Tensor<f64>),
    pub(super) scaler: Standardizer<f64>,
    pub(super) target_scale: (f64, f64),
    pub(super) feature_names: Vec<String>,
    pub(super) target_name: String,
    /// The network with its initial weights.
    pub(super) model: Network,
    /// A note on the inferred task, printed after the header.
    pub(super) note: Option<String>,
    /// What a checkpoint of this run records of it, and a resumed run must match.
    pub(super) config: RunConfig,
}

impl Setup {
    pub(super) fn new(args: &Args) -> Result<Setup, String> {
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
        let scaler = match args.model {
            ModelKind::Mlp => Standardizer::fit_named(&train.x, names),
            // An image's pixels share one scale: per-pixel standardisation would blow up the
            // nearly constant border pixels (digits: 96.5% test accuracy, against 98%+).
            ModelKind::Cnn => Standardizer::fit_pooled(&train.x),
        }
        .map_err(|e| cannot_scale(&e))?;
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
        let inputs = dataset.n_features();
        let model = network(args, inputs, classes)?;
        let lr = args
            .lr
            .unwrap_or_else(|| default_lr(task, args.optimizer_kind()));
        let config = run_config(args, task, lr, &train, &test);
        Ok(Setup {
            name: data_name(&args.data),
            task,
            inputs,
            outputs: classes,
            lr,
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
            config,
        })
    }

    pub(super) fn print_header(&self, args: &Args) {
        println!(
            "perturb train: {} ({} rows, {} features) as {}, {}, {:?} at lr {}{}, {} epochs",
            args.data,
            self.rows,
            self.inputs,
            format!("{:?}", self.task).to_lowercase(),
            self.model.describe(),
            args.optimizer_kind(),
            compact(self.lr),
            if args.cosine { " (cosine decay)" } else { "" },
            args.epoch_count()
        );
        if let Some(note) = &self.note {
            println!("note: {note}");
        }
    }

    /// The network with the given parameters.
    pub(super) fn model_with(&self, params: &[Tensor<f64>]) -> Result<Network, String> {
        self.model
            .with_params(params)
            .map_err(|e| format!("train: {e}"))
    }

    /// The loss on the whole training part with the given parameters (NaN if it cannot be
    /// computed).
    pub(super) fn training_loss(&self, params: &[Tensor<f64>]) -> f64 {
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
pub(super) fn default_lr(task: Task, optimizer: OptimizerKind) -> f64 {
    let gd = if task == Task::Regression { 0.1 } else { 1.0 };
    match optimizer {
        OptimizerKind::Gd => gd,
        OptimizerKind::Sgd => gd / 10.0,
        OptimizerKind::Adam => 0.01,
    }
}

/// A standardisation error, with what to do about it.
pub(super) fn cannot_scale(e: &DataError) -> String {
    format!("{e}; the data cannot be standardised as they are, rescale the column")
}

/// `x` standardised by `scaler`; a value that standardises to a number too large for the
/// arithmetic (far outside the training part's range) is an error naming its column.
pub(super) fn standardised(
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
pub(super) fn outputs(task: Task, source: &str, dataset: &Dataset<f64>) -> Result<usize, String> {
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
pub(super) fn regression_note(y: &Tensor<f64>) -> Option<String> {
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

/// The name of a data set for a title: a CSV file's name without its folder.
fn data_name(data: &str) -> String {
    std::path::Path::new(data)
        .file_name()
        .map_or_else(|| data.to_string(), |n| n.to_string_lossy().into_owned())
}

pub(super) fn load(args: &Args) -> Result<Dataset<f64>, String> {
    match crate::data_arg::resolve(&args.data, args.seed)? {
        Source::Named(dataset) => match &args.target {
            Some(target) => crate::data_arg::with_target(dataset, target, &args.data),
            None => Ok(dataset),
        },
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
pub(super) fn resolve_task(task: Task, data: &Dataset<f64>) -> Task {
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

/// The network `args` ask for, with `inputs` inputs and `outputs` outputs, initialised from the
/// seed; an error, before anything is allocated, for sizes too large for a model file or data
/// that are not square images for the CNN.
fn network(args: &Args, inputs: usize, outputs: usize) -> Result<Network, String> {
    let architecture = match args.model {
        ModelKind::Mlp => {
            let mut sizes = vec![inputs];
            sizes.extend(args.hidden_sizes());
            sizes.push(outputs);
            crate::model_file::check_sizes(&sizes).map_err(|e| format!("--hidden: {e}"))?;
            let activation = match args.activation_kind() {
                ActivationKind::Sigmoid => Activation::Sigmoid,
                ActivationKind::Tanh => Activation::Tanh,
                ActivationKind::Relu => Activation::Relu,
                ActivationKind::Softplus => Activation::Softplus,
            };
            Architecture::Mlp { sizes, activation }
        }
        ModelKind::Cnn => Architecture::Cnn {
            side: image_side(inputs).map_err(|e| format!("{}: {e}", args.data))?,
            channels: CNN_CHANNELS,
            outputs,
        },
    };
    architecture.initial(args.seed).map_err(|e| e.to_string())
}

/// The options of the run that decide its weights, and its data (split and standardised).
fn run_config(
    args: &Args,
    task: Task,
    lr: f64,
    train: &Dataset<f64>,
    test: &Dataset<f64>,
) -> RunConfig {
    let lower = |v: &dyn std::fmt::Debug| format!("{v:?}").to_lowercase();
    let mut options = vec![
        ("data", args.data.clone()),
        ("target", args.target.clone().unwrap_or_default()),
        ("task", lower(&task)),
        ("model", lower(&args.model)),
        ("optimizer", lower(&args.optimizer_kind())),
        ("lr", lr.to_string()),
        ("batch-size", args.batch_rows().to_string()),
        ("cosine", args.cosine.to_string()),
        ("test-fraction", args.test_fraction.to_string()),
        ("seed", args.seed.to_string()),
    ];
    if args.model == ModelKind::Mlp {
        let hidden: Vec<String> = args.hidden_sizes().iter().map(usize::to_string).collect();
        options.push(("hidden", hidden.join(",")));
        options.push(("activation", lower(&args.activation_kind())));
    }
    RunConfig::new(options, &[&train.x, &train.y, &test.x, &test.y])
}
