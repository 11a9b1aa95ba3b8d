//! `perturb predict` and `perturb eval`: apply a model saved by `perturb train --out` to data.

use std::path::PathBuf;

use perturb::tensor::Tensor;
use perturb_nn::data::{self, Dataset, TargetColumn};

use crate::model_file::{load, SavedModel};

/// `perturb predict` / `perturb eval`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    perturb train --data breast_cancer --hidden 16 --optimizer adam --lr 0.01 --epochs 150 --out run\n  \
    perturb eval --model run/model.safetensors --data breast_cancer\n  \
    perturb predict --model run/model.safetensors --data new_rows.csv")]
pub struct Args {
    /// The model file written by `perturb train --out DIR` (DIR/model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// A built-in data set name or a CSV file with the same feature columns as in training.
    #[arg(long)]
    pub data: String,
    /// The target column of the CSV (default: the last one).
    #[arg(long)]
    pub target: Option<String>,
}

fn load_data(args: &Args, op: &str) -> Result<Dataset<f64>, String> {
    let result = if data::BUILTIN_NAMES.contains(&args.data.as_str()) {
        data::builtin(&args.data)
    } else {
        let target = args
            .target
            .clone()
            .map_or(TargetColumn::Last, TargetColumn::Name);
        data::load_csv(PathBuf::from(&args.data), target)
    };
    result.map_err(|e| format!("{op}: {e}"))
}

/// The model's outputs on the data's features (standardised as in training), as rows.
fn outputs(saved: &SavedModel, x: &Tensor<f64>, op: &str) -> Result<Vec<Vec<f64>>, String> {
    let d = saved.sizes[0];
    if x.shape().get(1) != Some(&d) {
        return Err(format!(
            "{op}: the data has {} features, the model takes {d}",
            x.shape().get(1).copied().unwrap_or(0)
        ));
    }
    let scaled: Vec<f64> = x
        .as_slice()
        .chunks(d)
        .flat_map(|row| {
            row.iter()
                .zip(saved.feature_mean.iter().zip(&saved.feature_std))
                .map(|(v, (m, s))| (v - m) / s)
        })
        .collect();
    let xs = Tensor::from_vec(scaled, x.shape()).map_err(|e| format!("{op}: {e}"))?;
    let out = saved.model.predict(&xs).map_err(|e| format!("{op}: {e}"))?;
    let width = out.shape().get(1).copied().unwrap_or(1).max(1);
    Ok(out.as_slice().chunks(width).map(<[f64]>::to_vec).collect())
}

/// The prediction for one row of outputs: a class, a probability-backed label, or a value.
fn predicted(saved: &SavedModel, row: &[f64]) -> f64 {
    match saved.task.as_str() {
        "multiclass" => row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b }) as f64,
        "regression" => row[0] * saved.target_std + saved.target_mean,
        _ => f64::from(u8::from(row[0] > 0.0)),
    }
}

/// Prints one prediction per row.
pub fn predict(args: &Args) -> Result<(), String> {
    let saved = load(&args.model).map_err(|e| format!("predict: {e}"))?;
    let data = load_data(args, "predict")?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for row in outputs(&saved, &data.x, "predict")? {
        if writeln!(out, "{}", predicted(&saved, &row)).is_err() {
            break; // the reader has gone away (e.g. `| head`): nothing more to say
        }
    }
    Ok(())
}

/// Prints the model's accuracy (classification) or MSE and R^2 (regression) on the data.
pub fn eval(args: &Args) -> Result<(), String> {
    let saved = load(&args.model).map_err(|e| format!("eval: {e}"))?;
    let data = load_data(args, "eval")?;
    let rows = outputs(&saved, &data.x, "eval")?;
    let y = data.y.as_slice();
    if saved.task == "regression" {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let sse: f64 = rows
            .iter()
            .zip(y)
            .map(|(r, t)| (predicted(&saved, r) - t).powi(2))
            .sum();
        let sst: f64 = y.iter().map(|t| (t - mean).powi(2)).sum();
        println!(
            "{} rows: MSE {:.4}, R^2 {:.4}",
            y.len(),
            sse / y.len() as f64,
            1.0 - sse / sst
        );
    } else {
        let correct = rows
            .iter()
            .zip(y)
            .filter(|(r, &t)| predicted(&saved, r) == t)
            .count();
        println!(
            "{} rows: accuracy {:.2}%",
            y.len(),
            100.0 * correct as f64 / y.len() as f64
        );
    }
    Ok(())
}
