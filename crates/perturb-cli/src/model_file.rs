//! Saved models: the weights of an [`Mlp`] in the safetensors format, with the architecture,
//! the task, the standardisation and the names of the feature and target columns in its
//! metadata, so `perturb predict` and `perturb eval` can rebuild the model and apply it to new
//! data. The names were added after the first files were written: a file without them still
//! loads, and its data columns are then matched by count.

use std::collections::HashMap;
use std::path::Path;

use perturb::tensor::Tensor;
use perturb_nn::nn::{Activation, Init, Mlp};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// The value of the `format` metadata entry; a file without it is not a perturb model.
const FORMAT: &str = "perturb-mlp-1";

/// Everything needed to apply a trained model to raw features.
pub struct SavedModel {
    pub model: Mlp<f64>,
    pub sizes: Vec<usize>,
    /// Lower-case name, as `activation_from` reads it.
    pub activation: String,
    pub task: String,
    pub feature_mean: Vec<f64>,
    pub feature_std: Vec<f64>,
    pub target_mean: f64,
    pub target_std: f64,
    /// The feature columns' names, in the model's input order (absent in older files).
    pub feature_names: Option<Vec<String>>,
    /// The target column's name (absent in older files).
    pub target_name: Option<String>,
}

fn numbers(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:e}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_numbers(key: &str, text: &str) -> Result<Vec<f64>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("metadata entry {key} holds '{t}', not a number"))
        })
        .collect()
}

pub fn activation_from(name: &str) -> Result<Activation, String> {
    Ok(match name {
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        "softplus" => Activation::Softplus,
        other => return Err(format!("unknown activation '{other}'")),
    })
}

/// Writes the model to `path` (a `.safetensors` file).
pub fn save(path: &Path, m: &SavedModel) -> Result<(), String> {
    let params = m.model.param_tensors();
    let names: Vec<String> = m.model.parameters().into_iter().map(|(n, _)| n).collect();
    let bytes: Vec<Vec<u8>> = params
        .iter()
        .map(|p| p.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::new();
    for ((name, p), b) in names.iter().zip(&params).zip(&bytes) {
        let view = TensorView::new(Dtype::F64, p.shape().to_vec(), b)
            .map_err(|e| format!("saving {name}: {e}"))?;
        views.push((name.clone(), view));
    }
    let mut metadata: HashMap<String, String> = [
        ("format", FORMAT.to_string()),
        (
            "sizes",
            m.sizes
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("activation", m.activation.clone()),
        ("task", m.task.clone()),
        ("feature_mean", numbers(&m.feature_mean)),
        ("feature_std", numbers(&m.feature_std)),
        ("target_mean", format!("{:e}", m.target_mean)),
        ("target_std", format!("{:e}", m.target_std)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    // Names may hold commas: JSON keeps them apart.
    if let Some(names) = &m.feature_names {
        let json = serde_json::to_string(names).map_err(|e| format!("saving the names: {e}"))?;
        metadata.insert("feature_names".into(), json);
    }
    if let Some(name) = &m.target_name {
        metadata.insert("target_name".into(), name.clone());
    }
    let data = safetensors::serialize(views, &Some(metadata))
        .map_err(|e| format!("saving {}: {e}", path.display()))?;
    std::fs::write(path, data).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads a model written by [`save`]; every way the file can be wrong is an error that says
/// what is wrong (missing, not safetensors, truncated, not a perturb model, another
/// architecture).
pub fn load(path: &Path) -> Result<SavedModel, String> {
    let where_ = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read the model {where_}: {e}"))?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| {
        format!("{where_} is not a valid safetensors file (corrupt or truncated?): {e:?}")
    })?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| format!("{where_}: {e:?}"))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        meta.get(key).cloned().ok_or_else(|| {
            format!("{where_}: the metadata has no '{key}': not a model saved by perturb train")
        })
    };
    if get("format")? != FORMAT {
        return Err(format!(
            "{where_}: format '{}' is not {FORMAT}",
            get("format")?
        ));
    }
    let sizes: Vec<usize> = get("sizes")?
        .split(',')
        .map(|t| {
            t.parse()
                .map_err(|_| format!("{where_}: bad layer size '{t}'"))
        })
        .collect::<Result<_, _>>()?;
    let activation = get("activation")?;
    let mut model = Mlp::new(
        &sizes,
        activation_from(&activation).map_err(|e| format!("{where_}: {e}"))?,
        Init::XavierUniform,
        0,
    )
    .map_err(|e| format!("{where_}: {e}"))?;
    let mut params = Vec::new();
    for (name, expected) in model.parameters() {
        let view = file.tensor(&name).map_err(|_| {
            format!("{where_}: the tensor '{name}' is missing: a model of another architecture?")
        })?;
        if view.dtype() != Dtype::F64 || view.shape() != expected.shape() {
            return Err(format!(
                "{where_}: '{name}' is {:?} {:?}, expected F64 {:?}: a model of another architecture?",
                view.dtype(),
                view.shape(),
                expected.shape()
            ));
        }
        let values: Vec<f64> = view
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        params.push(Tensor::from_vec(values, view.shape()).map_err(|e| format!("{where_}: {e}"))?);
    }
    model
        .load_params(&params)
        .map_err(|e| format!("{where_}: {e}"))?;
    let feature_mean = parse_numbers("feature_mean", &get("feature_mean")?)?;
    let feature_std = parse_numbers("feature_std", &get("feature_std")?)?;
    if feature_mean.len() != sizes[0] || feature_std.len() != sizes[0] {
        return Err(format!(
            "{where_}: the standardisation has {} entries for {} inputs",
            feature_mean.len(),
            sizes[0]
        ));
    }
    let scalar = |key: &str| -> Result<f64, String> {
        get(key)?
            .parse()
            .map_err(|_| format!("{where_}: metadata entry {key} is not a number"))
    };
    let feature_names = match meta.get("feature_names") {
        None => None,
        Some(json) => {
            let names: Vec<String> = serde_json::from_str(json).map_err(|e| {
                format!("{where_}: metadata entry feature_names is not a list of names: {e}")
            })?;
            if names.len() != sizes[0] {
                return Err(format!(
                    "{where_}: the metadata names {} features for {} inputs",
                    names.len(),
                    sizes[0]
                ));
            }
            Some(names)
        }
    };
    Ok(SavedModel {
        model,
        sizes,
        activation,
        task: get("task")?,
        feature_mean,
        feature_std,
        target_mean: scalar("target_mean")?,
        target_std: scalar("target_std")?,
        feature_names,
        target_name: meta.get("target_name").cloned(),
    })
}
