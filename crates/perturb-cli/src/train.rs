//! `perturb train`: fit a network by gradient descent and report what it reached. With no
//! options it trains the lecture's network (2 inputs, 3 sigmoid hidden units, one output) on two
//! moons with plain gradient descent, `W <- W - alpha dNLL/dW`.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use perturb::tensor::{Array, Tensor, TensorTape};
use perturb_nn::data::{self, Dataset, Standardizer, TargetColumn};
use perturb_nn::loss::{logistic_nll, mse, softmax_cross_entropy, Reduction};
use perturb_nn::nn::{Activation, Init, Mlp};
use perturb_nn::optim::{Adam, GradientDescent, Optimizer, Sgd};

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
    /// iris) or the path of a CSV file with a header row.
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
    /// The learning rate alpha.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub lr: f64,
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
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The folder to write to: the trained model (`model.safetensors`, with the architecture,
    /// the feature names and the standardisation in its metadata, for `perturb predict` and
    /// `perturb eval`), the loss per epoch (`loss.png`, `loss.svg`) and, for a classifier of
    /// two features, its decision boundary with the data (`boundary.png`, `boundary.svg`).
    #[arg(long, default_value = "perturb-out")]
    pub out: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> Result<(), String> {
    check(args)?;
    let dataset = load(args)?;
    let task = resolve_task(args.task, &dataset);
    let (mut train, mut test) = data::train_test_split(&dataset, args.test_fraction, args.seed)
        .map_err(|e| format!("train: {e}"))?;
    // The features in their own units, for the decision-boundary picture.
    let raw = (train.x.clone(), test.x.clone());
    let scaler = Standardizer::fit(&train.x).map_err(|e| format!("train: {e}"))?;
    train.x = scaler
        .transform(&train.x)
        .map_err(|e| format!("train: {e}"))?;
    test.x = scaler
        .transform(&test.x)
        .map_err(|e| format!("train: {e}"))?;
    // A regression target is standardised too (on the training part), and predictions are
    // mapped back before the metrics.
    let target_scale = if task == Task::Regression {
        let y = train.y.as_slice();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64;
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        train.y = train.y.map(|v| (v - mean) / std);
        (mean, std)
    } else {
        (0.0, 1.0)
    };
    // The test targets on the training targets' scale, for the test loss.
    let test_y = test.y.map(|v| (v - target_scale.0) / target_scale.1);

    let classes = match task {
        Task::Multiclass => class_count(&dataset.y)?,
        _ => 1,
    };
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
    let mut model =
        Mlp::new(&sizes, activation, init, args.seed).map_err(|e| format!("train: {e}"))?;
    let mut params = model.param_tensors();
    let mut optimizer: Box<dyn Optimizer<f64>> = match args.optimizer {
        OptimizerKind::Gd => Box::new(GradientDescent::new(args.lr)),
        OptimizerKind::Sgd => Box::new(Sgd::new(args.lr, 0.9, false)),
        OptimizerKind::Adam => Box::new(Adam::new(args.lr)),
    };

    println!(
        "perturb train: {} ({} rows, {} features) as {}, network {:?} with {:?} units, {:?} at lr {}, {} epochs",
        args.data,
        dataset.len(),
        dataset.n_features(),
        format!("{task:?}").to_lowercase(),
        sizes,
        activation,
        args.optimizer,
        args.lr,
        args.epochs
    );
    let bar = ProgressBar::new(args.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} epochs  {msg}")
            .map_err(|e| format!("train: {e}"))?,
    );
    let batch = if args.batch_size == 0 {
        train.len()
    } else {
        args.batch_size
    };
    let mut tape = TensorTape::new();
    let mut last_good = params.clone();
    let mut step = 0usize;
    // The loss per epoch: the training loss (the mean over the epoch's batches) every epoch,
    // the test loss (before the epoch's steps) at about 200 epochs.
    let mut history = History::default();
    let test_every = (args.epochs / 200).max(1);
    for epoch in 0..args.epochs {
        if epoch % test_every == 0 || epoch + 1 == args.epochs {
            if let Ok(test_loss) = model
                .forward(&params, &test.x)
                .and_then(|out| loss_of(task, &out, &test_y))
            {
                let value = test_loss.item().unwrap_or(f64::NAN);
                history.test.push(((epoch + 1) as f64, value));
            }
        }
        let batches = data::Batches::new(&train, batch, args.seed.wrapping_add(epoch as u64))
            .map_err(|e| format!("train: {e}"))?;
        let (mut loss_sum, mut rows) = (0.0, 0usize);
        for (x, y) in batches {
            let batch_rows = y.len();
            let (loss, grads) = {
                let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
                let out = model
                    .forward(&vars, &tape.constant(x))
                    .map_err(|e| format!("train: {e}"))?;
                let loss = loss_of(task, &out, &y).map_err(|e| format!("train: {e}"))?;
                let refs: Vec<_> = vars.iter().collect();
                let grads = tape
                    .gradient(&loss, &refs)
                    .map_err(|e| format!("train: {e}"))?;
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
                model
                    .load_params(&last_good)
                    .map_err(|e| format!("train: {e}"))?;
                let names = (&dataset.feature_names, &dataset.target_name);
                save(
                    &args.out,
                    &model,
                    &sizes,
                    args,
                    task,
                    &scaler,
                    target_scale,
                    names,
                )?;
                let [png, svg] = loss_picture(args, task, &sizes, &history)?;
                return Err(format!(
                    "train: the loss became {loss} at step {step} (epoch {epoch}); lower --lr; \
                     the last good weights are saved in {}, the loss until then in {} and {}",
                    args.out.join("model.safetensors").display(),
                    png.display(),
                    svg.display()
                ));
            }
            last_good.clone_from(&params);
            optimizer
                .step(&mut params, &grads)
                .map_err(|e| format!("train: {e}"))?;
            loss_sum += loss * batch_rows as f64;
            rows += batch_rows;
        }
        let epoch_loss = loss_sum / rows.max(1) as f64;
        history.train.push(((epoch + 1) as f64, epoch_loss));
        if epoch % 50 == 0 || epoch + 1 == args.epochs {
            let accuracy = match task {
                Task::Regression => String::new(),
                _ => model
                    .forward(&params, &train.x)
                    .ok()
                    .map(|out| {
                        format!(
                            "  train accuracy {:.1}%",
                            100.0 * accuracy(task, &out, &train.y)
                        )
                    })
                    .unwrap_or_default(),
            };
            bar.set_message(format!("loss {epoch_loss:.4}{accuracy}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    model
        .load_params(&params)
        .map_err(|e| format!("train: {e}"))?;
    report(task, &model, &train, &test, target_scale)?;

    let dir = &args.out;
    let names = (&dataset.feature_names, &dataset.target_name);
    save(
        dir,
        &model,
        &sizes,
        args,
        task,
        &scaler,
        target_scale,
        names,
    )?;
    let model_path = dir.join("model.safetensors");
    println!("written to {}:", dir.display());
    println!(
        "  {}  the model (perturb predict --model {} --data new.csv)",
        model_path.display(),
        model_path.display()
    );
    let [png, svg] = loss_picture(args, task, &sizes, &history)?;
    println!("  {}, {}  the loss per epoch", png.display(), svg.display());
    if dataset.n_features() == 2 && task != Task::Regression {
        let classes = if task == Task::Multiclass {
            sizes[sizes.len() - 1]
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
        let (train_points, test_points) = (points(&raw.0, &train.y), points(&raw.1, &test.y));
        let test_accuracy = model
            .predict(&test.x)
            .map(|out| accuracy(task, &out, &test.y))
            .unwrap_or(f64::NAN);
        let plot = crate::plot::Boundary {
            title: format!(
                "{}: network {sizes:?}, test accuracy {:.1}%",
                data_name(&args.data),
                100.0 * test_accuracy
            ),
            axes: [
                dataset.feature_names[0].clone(),
                dataset.feature_names[1].clone(),
            ],
            class_names: (0..classes)
                .map(|c| format!("{} = {c}", dataset.target_name))
                .collect(),
            train: &train_points,
            test: &test_points,
        };
        let probabilities = |grid: &[[f64; 2]]| -> Result<Vec<Vec<f64>>, String> {
            class_probabilities(task, &model, &scaler, grid).map_err(|e| format!("train: {e}"))
        };
        let [png, svg] =
            crate::plot::boundary(dir, &plot, &probabilities).map_err(|e| format!("train: {e}"))?;
        println!(
            "  {}, {}  the decision boundary with the data",
            png.display(),
            svg.display()
        );
    }
    Ok(())
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

/// Draws `loss.png` and `loss.svg` in the output folder.
fn loss_picture(
    args: &Args,
    task: Task,
    sizes: &[usize],
    history: &History,
) -> Result<[PathBuf; 2], String> {
    let loss_name = match task {
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
        "{}: network {sizes:?}, {:?} at lr {}",
        data_name(&args.data),
        args.optimizer,
        args.lr
    );
    crate::plot::loss_curve(&args.out, &title, loss_name, &series)
        .map_err(|e| format!("train: {e}"))
}

/// The model's class probabilities at points given in the features' own units: binary
/// `[1 - p, p]` with `p = sigmoid(logit)`, multi-class the softmax.
fn class_probabilities(
    task: Task,
    model: &Mlp<f64>,
    scaler: &Standardizer<f64>,
    points: &[[f64; 2]],
) -> Result<Vec<Vec<f64>>, String> {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let x = Tensor::from_vec(flat, &[points.len(), 2]).map_err(|e| e.to_string())?;
    let x = scaler.transform(&x).map_err(|e| e.to_string())?;
    let out = model.predict(&x).map_err(|e| e.to_string())?;
    let width = out.shape().get(1).copied().unwrap_or(1).max(1);
    Ok(out
        .as_slice()
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
        .collect())
}

/// Writes `dir/model.safetensors`.
#[allow(clippy::too_many_arguments)]
fn save(
    dir: &std::path::Path,
    model: &Mlp<f64>,
    sizes: &[usize],
    args: &Args,
    task: Task,
    scaler: &Standardizer<f64>,
    (target_mean, target_std): (f64, f64),
    (feature_names, target_name): (&Vec<String>, &String),
) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("train: cannot create {}: {e}", dir.display()))?;
    let saved = crate::model_file::SavedModel {
        model: model.clone(),
        sizes: sizes.to_vec(),
        activation: format!("{:?}", args.activation).to_lowercase(),
        task: format!("{task:?}").to_lowercase(),
        feature_mean: scaler.mean().to_vec(),
        feature_std: scaler.std().to_vec(),
        target_mean,
        target_std,
        feature_names: Some(feature_names.clone()),
        target_name: Some(target_name.clone()),
    };
    crate::model_file::save(&dir.join("model.safetensors"), &saved)
        .map_err(|e| format!("train: {e}"))
}

fn check(args: &Args) -> Result<(), String> {
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(format!(
            "train: --lr must be a positive number, got {}",
            args.lr
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
            args.test_fraction
        ));
    }
    Ok(())
}

fn load(args: &Args) -> Result<Dataset<f64>, String> {
    let generated = match args.data.as_str() {
        "two-moons" | "two_moons" | "moons" => Some(data::two_moons(200, 0.1, args.seed)),
        "circles" => Some(data::circles(200, 0.1, 0.5, args.seed)),
        "spirals" => Some(data::spirals(200, 0.1, args.seed)),
        "xor" => Some(data::xor(200, 0.1, args.seed)),
        _ => None,
    };
    let result = match generated {
        Some(d) => d,
        None if data::BUILTIN_NAMES.contains(&args.data.as_str()) => data::builtin(&args.data),
        None => {
            let target = args
                .target
                .clone()
                .map_or(TargetColumn::Last, TargetColumn::Name);
            data::load_csv(PathBuf::from(&args.data), target)
        }
    };
    result.map_err(|e| format!("train: {e}"))
}

fn resolve_task(task: Task, data: &Dataset<f64>) -> Task {
    if task != Task::Auto {
        return task;
    }
    let y = data.y.as_slice();
    if y.iter().all(|&v| v == 0.0 || v == 1.0) {
        Task::Binary
    } else if y.iter().all(|&v| v >= 0.0 && v == v.trunc() && v < 20.0) {
        Task::Multiclass
    } else {
        Task::Regression
    }
}

fn class_count(y: &Tensor<f64>) -> Result<usize, String> {
    let mut max = 0usize;
    for &v in y.as_slice() {
        if !(v >= 0.0 && v == v.trunc()) {
            return Err(format!(
                "train: a multi-class target must hold class numbers 0, 1, 2, ...; found {v}"
            ));
        }
        max = max.max(v as usize);
    }
    Ok(max + 1)
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
            let labels: Vec<usize> = y.as_slice().iter().map(|&v| v as usize).collect();
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

/// The share of rows whose predicted class is the target (binary: logit > 0).
fn accuracy(task: Task, out: &Tensor<f64>, y: &Tensor<f64>) -> f64 {
    let y = y.as_slice();
    let correct = if task == Task::Multiclass {
        let c = out.shape().get(1).copied().unwrap_or(1).max(1);
        out.as_slice()
            .chunks(c)
            .zip(y)
            .filter(|(row, &t)| {
                row.iter()
                    .enumerate()
                    .fold(0, |b, (i, &v)| if v > row[b] { i } else { b })
                    == t as usize
            })
            .count()
    } else {
        out.as_slice()
            .iter()
            .zip(y)
            .filter(|(z, &t)| (**z > 0.0) == (t > 0.5))
            .count()
    };
    correct as f64 / y.len().max(1) as f64
}

fn report(
    task: Task,
    model: &Mlp<f64>,
    train: &Dataset<f64>,
    test: &Dataset<f64>,
    (y_mean, y_std): (f64, f64),
) -> Result<(), String> {
    println!(
        "trained. metrics on the training part ({} rows) and the held-out test part ({} rows):",
        train.len(),
        test.len()
    );
    for (name, part) in [("train", train), ("test", test)] {
        let out = model.predict(&part.x).map_err(|e| format!("train: {e}"))?;
        // The training targets were standardised for regression: undo it for the metrics.
        let y_owned: Vec<f64> = if name == "train" && task == Task::Regression {
            part.y
                .as_slice()
                .iter()
                .map(|v| v * y_std + y_mean)
                .collect()
        } else {
            part.y.to_vec()
        };
        let y = y_owned.as_slice();
        match task {
            Task::Regression => {
                let pred: Vec<f64> = out.as_slice().iter().map(|p| p * y_std + y_mean).collect();
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
                let sst: f64 = y.iter().map(|t| (t - mean).powi(2)).sum();
                println!(
                    "  {name:<5}  MSE {:.4}   R^2 {:.4}",
                    sse / y.len() as f64,
                    1.0 - sse / sst
                );
            }
            _ => {
                let share = accuracy(task, &out, &part.y);
                println!("  {name:<5}  accuracy {:.2}%", 100.0 * share);
            }
        }
    }
    Ok(())
}
