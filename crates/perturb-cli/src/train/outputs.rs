//! What a run writes to its output folder: the model, the pictures, a failed run's weights.

use std::path::{Path, PathBuf};

use crate::network::Network;
use perturb::tensor::Tensor;
use perturb_nn::data::Standardizer;

use super::fit::{Fit, History};
use super::metrics::accuracy;
use super::setup::Setup;
use super::{compact, Args, Task, FAILED};

/// Saves a failed run apart from the folder's model: the weights with the lowest training loss
/// (if any had a finite loss) in `failed-run.safetensors` and the loss curve in
/// `failed-run-loss.png`/`.svg`. Returns a sentence saying what was written where.
pub(super) fn save_failed(args: &Args, setup: &Setup, fit: &Fit) -> Result<String, String> {
    let dir = &args.out;
    let kept = format!(
        "{} is left as it was",
        dir.join(crate::out_dir::MODEL).display()
    );
    let [png, svg] = loss_picture(args, setup, &fit.history, &format!("{FAILED}-loss"))?;
    let weights = match &fit.best {
        Some(best) => {
            let path = dir.join(format!("{FAILED}.safetensors"));
            save_model(&path, setup, &setup.model_with(&best.params)?)?;
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
pub(super) fn save_outputs(
    args: &Args,
    setup: &Setup,
    model: &Network,
    history: &History,
) -> Result<(), String> {
    let dir = &args.out;
    let model_path = dir.join(crate::out_dir::MODEL);
    let replaced = model_path.exists();
    save_model(&model_path, setup, model)?;
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
    if let Some(n) = args.checkpoint_every {
        let folder = dir.join(super::checkpoint::FOLDER);
        println!(
            "  {}  the checkpoint of the last multiple of {n} epochs (perturb train ... \
             --epochs MORE --resume {})",
            folder.display(),
            folder.display()
        );
    }
    let stale = ["boundary.png", "boundary.svg"].map(|f| dir.join(f));
    let classifier = setup.inputs == 2 && setup.task != Task::Regression;
    let too_many = classifier && setup.outputs > crate::plot::MAX_BOUNDARY_CLASSES;
    if too_many {
        println!(
            "  no decision boundary: {} classes are more than the picture is drawn for (at most \
             {})",
            setup.outputs,
            crate::plot::MAX_BOUNDARY_CLASSES
        );
    }
    if classifier && !too_many {
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
pub(super) fn boundary_picture(
    setup: &Setup,
    model: &Network,
    dir: &Path,
) -> Result<[PathBuf; 2], String> {
    let task = setup.task;
    let classes = if task == Task::Multiclass {
        setup.outputs
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
            "{}: {}, test accuracy {:.1}%",
            setup.name,
            setup.model.describe(),
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

/// Draws `STEM.png` and `STEM.svg` in the output folder: the loss per epoch.
pub(super) fn loss_picture(
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
        "{}: {}, {:?} at lr {}",
        setup.name,
        setup.model.describe(),
        args.optimizer_kind(),
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
pub(super) fn class_probabilities(
    task: Task,
    model: &Network,
    scaler: &Standardizer<f64>,
    points: &[[f64; 2]],
) -> Result<Vec<Vec<f64>>, String> {
    let widest = model.widest();
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
pub(super) fn probabilities_of(task: Task, out: &Tensor<f64>) -> Vec<Vec<f64>> {
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
pub(super) fn save_model(path: &Path, setup: &Setup, model: &Network) -> Result<(), String> {
    let saved = crate::model_file::SavedModel {
        model: model.clone(),
        task: format!("{:?}", setup.task).to_lowercase(),
        scaler: setup.scaler.clone(),
        target_mean: setup.target_scale.0,
        target_std: setup.target_scale.1,
        feature_names: Some(setup.feature_names.clone()),
        target_name: Some(setup.target_name.clone()),
    };
    crate::model_file::save(path, &saved).map_err(|e| format!("train: {e}"))
}
