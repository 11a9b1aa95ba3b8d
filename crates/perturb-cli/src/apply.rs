//! `perturb predict` and `perturb eval`: apply a model saved by `perturb train --out` to data.
//!
//! The data's columns are matched to the model's inputs by name where the model file has the
//! names (files written since the names were added), in any order, and otherwise by position.
//! `predict` takes a CSV with just the input columns (new data) or with the target column too;
//! `eval` needs the target.

use std::path::{Path, PathBuf};

use perturb::tensor::Tensor;
use perturb_nn::data;

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
    /// A built-in data set name or a CSV file with a header row. Its columns are the model's
    /// input columns (matched by name, in any order, where the model knows the names) and,
    /// for `eval`, the target column; `predict` also takes a file without the target.
    #[arg(long)]
    pub data: String,
    /// The target column of the CSV (default: the column named as in training; for models
    /// without the names, the last column).
    #[arg(long)]
    pub target: Option<String>,
}

/// A CSV file's header and rows, as text with each row's line number.
struct Table {
    path: String,
    header: Vec<String>,
    rows: Vec<(u64, Vec<String>)>,
}

/// Reads a CSV file with a header row; a row with another number of fields than the header is
/// an error naming its line.
fn read_table(path: &Path) -> Result<Table, String> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{name}: file not found")
        } else {
            format!("{name}: cannot read the file: {e}")
        }
    })?;
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(0, csv::Position::line);
        format!("{name}, line {line}: {e}")
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(format!("{name}: the file is empty (expected a header row)"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.len() != header.len() {
            return Err(format!(
                "{name}, line {line}: the row has {} fields but the header has {}",
                record.len(),
                header.len()
            ));
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(format!(
            "{name}: the file has a header row but no data rows"
        ));
    }
    Ok(Table {
        path: name,
        header,
        rows,
    })
}

/// At most `max` names, then how many more.
fn list(names: &[String], max: usize) -> String {
    let mut text = names
        .iter()
        .take(max)
        .map(String::as_str)
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
    table: &Table,
    target: Option<&str>,
    need_target: bool,
) -> Result<(Vec<usize>, Option<usize>), String> {
    let (path, header) = (&table.path, &table.header);
    let d = saved.sizes[0];
    let find = |name: &str| header.iter().position(|h| h == name.trim());
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
                if header.iter().filter(|h| *h == name.trim()).count() > 1 {
                    return Err(format!(
                        "{path}: the header (line 1) has the column \"{name}\" more than once"
                    ));
                }
                let column = find(name).ok_or_else(|| {
                    format!(
                        "{path}: the header (line 1) has no column \"{name}\": the model takes the \
                         {d} inputs {}; the file's {} columns are: {}",
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
            Ok((inputs, target_col))
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
            Ok((inputs, target_col))
        }
    }
}

/// The numbers in the given columns of each row; a field that is not a finite number is an
/// error naming its line and column.
fn numbers(table: &Table, columns: &[usize]) -> Result<Vec<f64>, String> {
    let mut values = Vec::with_capacity(table.rows.len() * columns.len());
    for (line, row) in &table.rows {
        for &c in columns {
            let text = &row[c];
            let value = text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    format!(
                        "{}, line {line}, column {} ({}): \"{text}\" is not a finite number",
                        table.path,
                        c + 1,
                        table.header[c]
                    )
                })?;
            values.push(value);
        }
    }
    Ok(values)
}

/// The data's inputs as an `(n, d)` tensor, and the targets if asked for (`need_target`) or
/// present.
fn load_data(
    args: &Args,
    saved: &SavedModel,
    need_target: bool,
) -> Result<(Tensor<f64>, Option<Vec<f64>>), String> {
    let path = if data::BUILTIN_NAMES.contains(&args.data.as_str()) {
        data::data_dir().join(format!("{}.csv", args.data))
    } else {
        PathBuf::from(&args.data)
    };
    let table = read_table(&path)?;
    let (inputs, target) = columns(saved, &table, args.target.as_deref(), need_target)?;
    if need_target && target.is_none() {
        return Err(format!(
            "{}: no target column{} (the columns are: {}); name it with --target",
            table.path,
            saved
                .target_name
                .as_ref()
                .map_or(String::new(), |t| format!(" \"{t}\"")),
            list(&table.header, 12)
        ));
    }
    let x = Tensor::from_vec(numbers(&table, &inputs)?, &[table.rows.len(), inputs.len()])
        .map_err(|e| e.to_string())?;
    let y = match target {
        Some(t) if need_target => Some(numbers(&table, &[t])?),
        _ => None,
    };
    Ok((x, y))
}

/// The model's outputs on the data's features (standardised as in training), as rows.
fn outputs(saved: &SavedModel, x: &Tensor<f64>) -> Result<Vec<Vec<f64>>, String> {
    let d = saved.sizes[0];
    let scaled: Vec<f64> = x
        .as_slice()
        .chunks(d)
        .flat_map(|row| {
            row.iter()
                .zip(saved.feature_mean.iter().zip(&saved.feature_std))
                .map(|(v, (m, s))| (v - m) / s)
        })
        .collect();
    let xs = Tensor::from_vec(scaled, x.shape()).map_err(|e| e.to_string())?;
    let out = saved.model.predict(&xs).map_err(|e| e.to_string())?;
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
    let (x, _) = load_data(args, &saved, false).map_err(|e| format!("predict: {e}"))?;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for row in outputs(&saved, &x).map_err(|e| format!("predict: {e}"))? {
        if writeln!(out, "{}", predicted(&saved, &row)).is_err() {
            break; // the reader has gone away (e.g. `| head`): nothing more to say
        }
    }
    Ok(())
}

/// Prints the model's accuracy (classification) or MSE and R^2 (regression) on the data.
pub fn eval(args: &Args) -> Result<(), String> {
    let saved = load(&args.model).map_err(|e| format!("eval: {e}"))?;
    let (x, y) = load_data(args, &saved, true).map_err(|e| format!("eval: {e}"))?;
    let y = y.unwrap_or_default();
    let rows = outputs(&saved, &x).map_err(|e| format!("eval: {e}"))?;
    if saved.task == "regression" {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let sse: f64 = rows
            .iter()
            .zip(&y)
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
            .zip(&y)
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
