//! The `--data` argument of `train`, `eval` and `predict`, resolved the same way by all three:
//! a generated data set (two-moons, circles, spirals, xor: 200 points with noise 0.1 from
//! `--seed`), a bundled real data set (breast_cancer, digits, diabetes, iris), or a CSV file.
//!
//! A file in the current folder with the name of a data set is not silently shadowed: that is
//! an error asking for `./NAME` (the file) or `builtin:NAME` (the data set).

use std::path::PathBuf;

use perturb::tensor::Tensor;
use perturb_nn::data::{self, Dataset};

/// The generated data sets, by their names (and aliases).
const GENERATED: [&str; 6] = [
    "two-moons",
    "two_moons",
    "moons",
    "circles",
    "spirals",
    "xor",
];
/// The prefix that names a data set explicitly, even where a file has its name.
const PREFIX: &str = "builtin:";
/// How many points a generated data set has, and their noise.
const POINTS: usize = 200;
const NOISE: f64 = 0.1;

/// Where a `--data` value points.
pub enum Source {
    /// A generated or bundled data set, loaded.
    Named(Dataset<f64>),
    /// A CSV file.
    File(PathBuf),
}

/// Resolves `--data`: a data set name (generated ones drawn with `seed`), `builtin:NAME`, or
/// the path of a file (which must not be a folder).
pub fn resolve(data: &str, seed: u64) -> Result<Source, String> {
    let (name, explicit) = match data.strip_prefix(PREFIX) {
        Some(name) => (name, true),
        None => (data, false),
    };
    let known = GENERATED.contains(&name) || data::BUILTIN_NAMES.contains(&name);
    if explicit && !known {
        return Err(format!(
            "--data {data}: no built-in data set \"{name}\"; the built-in ones are {}, {}",
            GENERATED.join(", "),
            data::BUILTIN_NAMES.join(", ")
        ));
    }
    if known {
        if !explicit && std::path::Path::new(name).exists() {
            return Err(format!(
                "--data {name}: a file of that name is in this folder, and {name} is also a \
                 built-in data set; write --data ./{name} for the file or --data {PREFIX}{name} \
                 for the built-in data set"
            ));
        }
        let loaded = match name {
            "two-moons" | "two_moons" | "moons" => data::two_moons(POINTS, NOISE, seed),
            "circles" => data::circles(POINTS, NOISE, 0.5, seed),
            "spirals" => data::spirals(POINTS, NOISE, seed),
            "xor" => data::xor(POINTS, NOISE, seed),
            _ => data::builtin(name),
        };
        return loaded.map(Source::Named).map_err(|e| e.to_string());
    }
    let path = PathBuf::from(data);
    if path.is_dir() {
        return Err(format!(
            "--data {data} is a folder; give a CSV file or a data set name"
        ));
    }
    Ok(Source::File(path))
}

/// A named data set as a table: its header (the features' names, then the target's) and the
/// value at a row and a column of that header.
pub fn table(data: &Dataset<f64>) -> (Vec<String>, impl Fn(usize, usize) -> f64 + '_) {
    let d = data.n_features();
    let mut header = data.feature_names.clone();
    header.push(data.target_name.clone());
    let (x, y) = (data.x.as_slice(), data.y.as_slice());
    (
        header,
        move |r: usize, c: usize| if c < d { x[r * d + c] } else { y[r] },
    )
}

/// A named data set (`--data NAME`) with its column `target` as the target (`--target`): its
/// own target, or one of its features, whose place the old target then takes at the end of
/// the features; an error listing the columns where it has no such column.
pub fn with_target(
    data: Dataset<f64>,
    target: &str,
    shown_as: &str,
) -> Result<Dataset<f64>, String> {
    if data.target_name == target.trim() {
        return Ok(data);
    }
    let (header, field) = table(&data);
    let Some(t) = header.iter().position(|h| h == target.trim()) else {
        return Err(format!(
            "--target {}: the data set {shown_as} has no such column; its columns are: {}",
            crate::apply::shown(target),
            crate::apply::list(&header, 12)
        ));
    };
    let d = data.n_features();
    let n = data.len();
    let features: Vec<usize> = (0..=d).filter(|&c| c != t).collect();
    let field = &field;
    let x = (0..n)
        .flat_map(|r| features.iter().map(move |&c| field(r, c)))
        .collect();
    let y: Vec<f64> = (0..n).map(|r| field(r, t)).collect();
    let names = features.iter().map(|&c| header[c].clone()).collect();
    let x = Tensor::from_vec(x, &[n, d]).map_err(|e| e.to_string())?;
    Dataset::new(x, Tensor::vector(&y), names, header[t].clone()).map_err(|e| e.to_string())
}
