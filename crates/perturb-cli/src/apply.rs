//! `perturb predict` and `perturb eval`: apply a model saved by `perturb train --out` to data.
//!
//! The data's columns are matched to the model's inputs by name where the model file has the
//! names (files written since the names were added), in any order, and otherwise by position.
//! `predict` takes a CSV with just the input columns (new data) or with the target column too;
//! `eval` needs the target.

use std::path::{Path, PathBuf};

use perturb::tensor::Tensor;
use perturb_nn::data::{CsvReader, Dataset};

use crate::data_arg::Source;
use crate::model_file::{load, SavedModel};
use crate::train::{predicted_class, Confusion, Task};

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
    /// A data set name, resolved as `perturb train --data` resolves it (two-moons, circles,
    /// spirals, xor, breast_cancer, digits, diabetes, iris; builtin:NAME), or a CSV file with a
    /// header row. Its columns are the model's input columns (matched by name, in any order,
    /// where the model knows the names) and, for `eval`, the target column; `predict` also
    /// takes a file without the target.
    #[arg(long)]
    pub data: String,
    /// The target column of the CSV (default: the column named as in training; for models
    /// without the names, the last column).
    #[arg(long)]
    pub target: Option<String>,
    /// The seed of a generated data set (two-moons, circles, spirals, xor): the same seed as
    /// `perturb train --seed` gives the same points.
    #[arg(long, default_value_t = 0, value_parser = crate::train::parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
}

/// The data's inputs, row by row in the model's input order, and the targets where asked for.
struct Columns {
    x: Vec<f64>,
    y: Option<Vec<f64>>,
}

/// Reads the columns the model needs from a CSV file with a header row, straight into numbers
/// (the other columns are not kept), with the library's reader and its errors (naming the
/// file, line and column).
fn read_csv(
    path: &Path,
    saved: &SavedModel,
    target: Option<&str>,
    need_target: bool,
) -> Result<Columns, String> {
    let name = path.display().to_string();
    let csv = CsvReader::open(path).map_err(|e| e.to_string())?;
    let (inputs, target) = columns(saved, &name, csv.header(), target, need_target)?;
    let target = target.filter(|_| need_target);
    let d = inputs.len();
    let wanted: Vec<usize> = inputs.into_iter().chain(target).collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    csv.read_columns(&wanted, |k, v| if k < d { x.push(v) } else { y.push(v) })
        .map_err(|e| e.to_string())?;
    Ok(Columns {
        x,
        y: target.map(|_| y),
    })
}

/// The columns the model needs from a named data set, chosen by the same rules as a file's.
fn dataset_columns(
    data: &Dataset<f64>,
    saved: &SavedModel,
    name: &str,
    target: Option<&str>,
    need_target: bool,
) -> Result<Columns, String> {
    let (header, field) = crate::data_arg::table(data);
    let (inputs, target) = columns(saved, name, &header, target, need_target)?;
    let field = &field;
    Ok(Columns {
        x: (0..data.len())
            .flat_map(|r| inputs.iter().map(move |&c| field(r, c)))
            .collect(),
        y: target
            .filter(|_| need_target)
            .map(|t| (0..data.len()).map(|r| field(r, t)).collect()),
    })
}

/// A column name for a message: at most 60 characters (a file's header may hold names of
/// megabytes).
pub fn shown(name: &str) -> String {
    match name.char_indices().nth(60) {
        Some((end, _)) => format!("{}...", &name[..end]),
        None => name.to_string(),
    }
}

/// At most `max` names (each [`shown`]), then how many more.
pub fn list(names: &[String], max: usize) -> String {
    let mut text = names
        .iter()
        .take(max)
        .map(|name| shown(name))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > max {
        text.push_str(&format!(", ... ({} in all)", names.len()));
    }
    text
}

/// The columns of the table that hold the model's inputs, in the model's order, and the
/// target column if there is one (`need_target`: it must be there).
fn columns(
    saved: &SavedModel,
    path: &str,
    header: &[String],
    target: Option<&str>,
    need_target: bool,
) -> Result<(Vec<usize>, Option<usize>), String> {
    let d = saved.model.inputs();
    let find = |name: &str| header.iter().position(|h| h == name.trim());
    let need = |inputs: Vec<usize>, target_col: Option<usize>| {
        if need_target && target_col.is_none() {
            return Err(format!(
                "{path}: no target column{} (the columns are: {}); name it with --target",
                saved
                    .target_name
                    .as_ref()
                    .map_or(String::new(), |t| format!(" \"{t}\"")),
                list(header, 12)
            ));
        }
        Ok((inputs, target_col))
    };
    if let (Some(name), Some(names)) = (target, &saved.feature_names) {
        if names.iter().any(|n| n.trim() == name.trim()) {
            return Err(format!(
                "--target {name} is one of the model's inputs, not its target{}",
                saved
                    .target_name
                    .as_ref()
                    .map_or(String::new(), |t| format!(
                        " (the target in training was \"{t}\")"
                    ))
            ));
        }
    }
    let target_col = match target {
        Some(name) => Some(find(name).ok_or_else(|| {
            format!(
                "{path}: no target column \"{name}\" in the header (line 1); the columns are: {}",
                list(header, 12)
            )
        })?),
        None => saved.target_name.as_deref().and_then(find),
    };
    match &saved.feature_names {
        Some(names) => {
            let mut inputs = Vec::with_capacity(d);
            for name in names {
                let column = find(name).ok_or_else(|| {
                    format!(
                        "{path}: the header (line 1) has no column \"{}\": the model takes the \
                         {d} inputs {}; the file's {} columns are: {}",
                        shown(name),
                        list(names, 12),
                        header.len(),
                        list(header, 12)
                    )
                })?;
                inputs.push(column);
            }
            // Any other column is the target or a mistake.
            let others: Vec<usize> = (0..header.len())
                .filter(|c| !inputs.contains(c) && Some(*c) != target_col)
                .collect();
            let target_col = match (target_col, others.as_slice()) {
                (None, [only]) if need_target => Some(*only),
                (_, []) => target_col,
                (_, extra) => {
                    let extra: Vec<String> = extra.iter().map(|&c| header[c].clone()).collect();
                    return Err(format!(
                        "{path}: the header (line 1) has {} column(s) that are neither inputs of \
                         the model nor its target{}: {} (name the target with --target)",
                        extra.len(),
                        saved
                            .target_name
                            .as_ref()
                            .map_or(String::new(), |t| format!(" (\"{t}\")")),
                        list(&extra, 12)
                    ));
                }
            };
            need(inputs, target_col)
        }
        // A model file without names: the columns by position, the target by name or last.
        None => {
            let target_col = match target_col {
                Some(t) => Some(t),
                None if header.len() == d + 1 => Some(d),
                None => None,
            };
            let inputs: Vec<usize> = (0..header.len())
                .filter(|&c| Some(c) != target_col)
                .collect();
            if inputs.len() != d {
                return Err(format!(
                    "{path}: the file has {} columns, the model takes {d} inputs{}",
                    header.len(),
                    if need_target {
                        " and the target"
                    } else {
                        " (and, optionally, the target)"
                    }
                ));
            }
            need(inputs, target_col)
        }
    }
}

/// The data's inputs as an `(n, d)` tensor, standardised as in training, and the targets if
/// asked for (`need_target`: they must be there).
fn load_data(
    args: &Args,
    saved: &SavedModel,
    need_target: bool,
) -> Result<(Tensor<f64>, Option<Vec<f64>>), String> {
    let target = args.target.as_deref();
    let Columns { x, y } = match crate::data_arg::resolve(&args.data, args.seed)? {
        Source::Named(data) => dataset_columns(&data, saved, &args.data, target, need_target)?,
        Source::File(path) => read_csv(&path, saved, target, need_target)?,
    };
    let d = saved.model.inputs().max(1);
    let rows = x.len() / d;
    let x = Tensor::from_vec(x, &[rows, d]).map_err(|e| e.to_string())?;
    let x = saved.scaler.transform(&x).map_err(|e| e.to_string())?;
    Ok((x, y))
}

/// The model's prediction for each row of the (standardised) inputs; the rows go through the
/// network in batches bounded in memory.
fn predictions(saved: &SavedModel, x: &Tensor<f64>) -> Result<Vec<f64>, String> {
    let d = saved.model.inputs().max(1);
    let widest = saved.model.widest().max(1);
    let batch = (crate::train::BATCH_NUMBERS / widest).max(1);
    let mut predictions = Vec::with_capacity(x.len() / d);
    for chunk in x.as_slice().chunks(batch * d) {
        let xs =
            Tensor::from_vec(chunk.to_vec(), &[chunk.len() / d, d]).map_err(|e| e.to_string())?;
        let out = saved.model.predict(&xs).map_err(|e| e.to_string())?;
        let width = out.shape().get(1).copied().unwrap_or(1).max(1);
        predictions.extend(
            out.as_slice()
                .chunks(width)
                .map(|row| predicted(saved, row)),
        );
    }
    Ok(predictions)
}

/// The prediction for one row of outputs: a class, a probability-backed label, or a value.
fn predicted(saved: &SavedModel, row: &[f64]) -> f64 {
    match saved.task.as_str() {
        "regression" => row[0] * saved.target_std + saved.target_mean,
        "multiclass" => predicted_class(Task::Multiclass, row),
        _ => predicted_class(Task::Binary, row),
    }
}

/// Prints one prediction per row.
pub fn predict(args: &Args) -> Result<(), String> {
    let saved = load(&args.model).map_err(|e| format!("predict: {e}"))?;
    let (x, _) = load_data(args, &saved, false).map_err(|e| format!("predict: {e}"))?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for p in predictions(&saved, &x).map_err(|e| format!("predict: {e}"))? {
        if writeln!(out, "{p}").is_err() {
            break; // the reader has gone away (e.g. `| head`): nothing more to say
        }
    }
    Ok(())
}

/// Prints the model's accuracy and confusion matrix (classification) or MSE and R^2
/// (regression) on the data.
pub fn eval(args: &Args) -> Result<(), String> {
    let saved = load(&args.model).map_err(|e| format!("eval: {e}"))?;
    let (x, y) = load_data(args, &saved, true).map_err(|e| format!("eval: {e}"))?;
    let y = y.unwrap_or_default();
    let pred = predictions(&saved, &x).map_err(|e| format!("eval: {e}"))?;
    let report = if saved.task == "regression" {
        let (mse, r2) = crate::train::regression_metrics(&pred, &y);
        format!("{} rows: MSE {mse}, R^2 {r2}", y.len())
    } else {
        let classes = match saved.task.as_str() {
            "multiclass" => saved.model.outputs(),
            _ => 2,
        };
        let confusion = Confusion::new(classes, &pred, &y);
        format!(
            "{} rows: accuracy {:.2}%\n{confusion}",
            y.len(),
            100.0 * confusion.accuracy()
        )
    };
    use std::io::Write as _;
    // A reader that has gone away (`| head -1`) has what it wanted.
    writeln!(std::io::stdout().lock(), "{report}").ok();
    Ok(())
}
