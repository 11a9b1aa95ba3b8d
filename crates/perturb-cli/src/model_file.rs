//! Saved models: a [`Network`] in the library's model file ([`io::save`]: safetensors, the
//! layers' weights under their paths), with the architecture, the task, the standardisation and
//! the names of the feature and target columns in its header, so `perturb predict` and
//! `perturb eval` can rebuild the model and apply it to new data.
//!
//! Files of the CLI's first format (`perturb-mlp-1`, written before the library had model
//! files) are still read, by the reader below. Their column names were added after the first
//! of them were written: a file without them still loads, and its data columns are then matched
//! by count.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use perturb::tensor::Tensor;
use perturb::tree::Tree;
use perturb_nn::data::Standardizer;
use perturb_nn::io::{self, FileError, Header};
use perturb_nn::nn::{mlp_parameters, Activation};

use crate::network::{image_side, Architecture, Network};
use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors};

/// The metadata entry naming the network: `mlp` (with `sizes` and `activation`) or `cnn`
/// (with `image_side`, `channels` as `C1,C2`, and `outputs`), in a model file of the library's
/// format ([`io::save`], the tensors under their paths in the layers: `layers.0.weight`, ...).
const MODEL: &str = "model";
/// The `format` of the CLI's first model files, still read: an MLP (`sizes`, `activation`),
/// its tensors named `layer0.weight`, `layer0.bias`, `layer1.weight`, ...
const OLD_MLP_FORMAT: &str = "perturb-mlp-1";
/// The most channels a CNN's layer may have in a model file.
const MAX_CHANNELS: usize = 4096;
/// The longest header a model file may have (the limit of the safetensors format itself).
const MAX_HEADER: u64 = 100_000_000;
/// The most layers a model file may describe.
const MAX_LAYERS: usize = 1000;
/// The tasks `perturb train` saves.
const TASKS: [&str; 3] = ["binary", "multiclass", "regression"];

/// Everything needed to apply a trained model to raw features.
pub struct SavedModel {
    pub model: Network,
    pub task: String,
    /// The standardisation of the features, fitted in training.
    pub scaler: Standardizer<f64>,
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

/// Writes the model to `path` (a `.safetensors` file) with the library's model files
/// ([`io::save`], atomic: a crash or a full disk leaves the previous file whole): the layers'
/// weights under their paths, the architecture, the task, the standardisation and the column
/// names in the metadata.
pub fn save(path: &Path, m: &SavedModel) -> Result<(), String> {
    let mut header = Header::new(m.model.describe());
    header.metadata = metadata(m)?;
    io::save(path, m.model.layers(), &header).map_err(|e| e.to_string())
}

/// The metadata entries of a model file besides the library's own.
fn metadata(m: &SavedModel) -> Result<BTreeMap<String, String>, String> {
    let mut metadata: BTreeMap<String, String> = architecture(&m.model)
        .into_iter()
        .chain([
            ("task", m.task.clone()),
            ("feature_mean", numbers(m.scaler.mean())),
            ("feature_std", numbers(m.scaler.std())),
            ("target_mean", format!("{:e}", m.target_mean)),
            ("target_std", format!("{:e}", m.target_std)),
        ])
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
    Ok(metadata)
}

/// The tensor `name` of a safetensors file, which must be F64 of `shape` and finite (weights);
/// an error in words naming the tensor otherwise.
fn finite_tensor(file: &SafeTensors, name: &str, shape: &[usize]) -> Result<Tensor<f64>, String> {
    let view = file.tensor(name).map_err(|e| in_words(&e))?;
    if view.dtype() != Dtype::F64 || view.shape() != shape {
        return Err(format!(
            "'{name}' is {:?} {:?}, expected F64 {shape:?}",
            view.dtype(),
            view.shape()
        ));
    }
    let values: Vec<f64> = view
        .data()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "the tensor '{name}' holds {} at index {i}: the weights must be finite",
            values[i]
        ));
    }
    Tensor::from_vec(values, shape).map_err(|e| e.to_string())
}

/// The metadata entries that describe the network's architecture.
fn architecture(net: &Network) -> Vec<(&'static str, String)> {
    let list = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
    match net.architecture() {
        Architecture::Mlp { sizes, activation } => vec![
            (MODEL, "mlp".to_string()),
            ("sizes", list(sizes)),
            ("activation", format!("{activation:?}").to_lowercase()),
        ],
        Architecture::Cnn {
            side,
            channels,
            outputs,
        } => vec![
            (MODEL, "cnn".to_string()),
            ("image_side", side.to_string()),
            ("channels", list(channels)),
            ("outputs", outputs.to_string()),
        ],
    }
}

/// The architecture of `kind` (`mlp` or `cnn`) in a file's metadata (`get` reads an entry,
/// an error if it is missing), checked before anything is allocated: sizes, channels and the
/// parameter count bounded.
fn read_architecture(
    kind: &str,
    get: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Architecture, String> {
    if kind == "mlp" {
        let sizes = parse_sizes(&get("sizes")?)?;
        let activation = activation_from(&get("activation")?)?;
        return Ok(Architecture::Mlp { sizes, activation });
    }
    if kind != "cnn" {
        return Err(format!(
            "the metadata entry {MODEL} holds '{}', not mlp or cnn: not a model of perturb train",
            crate::apply::shown(kind)
        ));
    }
    let number = |key: &str, text: &str, max: usize| -> Result<usize, String> {
        text.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                format!(
                    "the metadata entry {key} holds '{text}', not a whole number from 1 to {max}"
                )
            })
    };
    let side = number("image_side", &get("image_side")?, 1 << 16)?;
    image_side(side * side)?;
    let channels_text = get("channels")?;
    let channels: Vec<usize> = channels_text
        .split(',')
        .take(3)
        .map(|c| number("channels", c, MAX_CHANNELS))
        .collect::<Result<_, _>>()?;
    let [c1, c2] = channels[..] else {
        return Err(format!(
            "the metadata entry channels holds '{channels_text}', not two channel counts"
        ));
    };
    let outputs = number("outputs", &get("outputs")?, perturb_nn::data::MAX_CLASSES)?;
    let arch = Architecture::Cnn {
        side,
        channels: [c1, c2],
        outputs,
    };
    // Each factor is bounded above, so the products cannot overflow.
    let count: usize = arch
        .shapes()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    if count > perturb_nn::nn::MAX_PARAMETERS {
        return Err(format!(
            "a cnn of {side}x{side} images with channels {c1},{c2} has {count} parameters, \
             more than the {} a model may have",
            perturb_nn::nn::MAX_PARAMETERS
        ));
    }
    Ok(arch)
}

/// A safetensors error in words.
fn in_words(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::InvalidHeader => "the header is not UTF-8 text".into(),
        SafeTensorError::InvalidHeaderStart => "the header does not start with '{'".into(),
        SafeTensorError::InvalidHeaderDeserialization => {
            "the header is not the JSON of a safetensors file".into()
        }
        SafeTensorError::HeaderTooLarge => {
            format!("the header is longer than the {MAX_HEADER} bytes a header may have")
        }
        SafeTensorError::HeaderTooSmall => "the file is shorter than 8 bytes".into(),
        SafeTensorError::InvalidHeaderLength => "the header length runs past the file's end".into(),
        SafeTensorError::TensorNotFound(name) => format!("there is no tensor '{name}'"),
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's byte range does not fit its shape and type".into()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("the byte range of the tensor '{name}' does not follow the one before it")
        }
        SafeTensorError::IoError(e) => format!("read error: {e}"),
        SafeTensorError::JsonError(e) => format!("bad JSON: {e}"),
        SafeTensorError::InvalidTensorView(dtype, shape, bytes) => {
            format!("{bytes} bytes cannot hold a {dtype:?} tensor of shape {shape:?}")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensors in the header do not cover the data exactly (a truncated file?)".into()
        }
        SafeTensorError::ValidationOverflow => "a tensor's size overflows".into(),
    }
}

/// The layer sizes in the `sizes` entry, checked by [`check_sizes`].
fn parse_sizes(text: &str) -> Result<Vec<usize>, String> {
    let sizes: Vec<usize> = text
        .split(',')
        .take(MAX_LAYERS + 1)
        .map(|t| {
            t.trim()
                .parse()
                .map_err(|_| format!("bad layer size '{t}' in the metadata entry sizes"))
        })
        .collect::<Result<_, _>>()?;
    check_sizes(&sizes).map_err(|e| format!("the metadata entry sizes: {e}"))?;
    Ok(sizes)
}

/// Checks that a network of these layer sizes can be saved and loaded: at most
/// [`MAX_LAYERS`] sizes, and what [`Mlp::new`] checks before allocating ([`mlp_parameters`]:
/// at least two sizes, none 0, at most [`perturb_nn::nn::MAX_PARAMETERS`] parameters).
pub fn check_sizes(sizes: &[usize]) -> Result<(), String> {
    if sizes.len() > MAX_LAYERS {
        return Err(format!(
            "a network has at most {MAX_LAYERS} layer sizes, not {}",
            sizes.len()
        ));
    }
    mlp_parameters(sizes).map(drop).map_err(|e| e.to_string())
}

/// Reads a model written by [`save`]; every way the file can be wrong is an error that says
/// what is wrong (missing, not safetensors, truncated, not a perturb model, another
/// architecture, non-finite numbers). Nothing is allocated for the weights before the header
/// has been checked against the architecture, and a file that is not a regular file (a device,
/// a pipe) is read only as far as its header says.
pub fn load(path: &Path) -> Result<SavedModel, String> {
    let where_ = path.display().to_string();
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read the model {where_}: {e}");
    let file = std::fs::File::open(path).map_err(|e| cannot(&e))?;
    let info = file.metadata().map_err(|e| cannot(&e))?;
    if info.is_dir() {
        return Err(cannot(&"it is a folder, not a model file"));
    }
    let len = info.is_file().then_some(info.len());
    match io::read_header(path) {
        Ok(header) => from_library_file(path, len, &header),
        // Not of the library's formats: the CLI's first format, or no model at all.
        Err(FileError::NotPerturb { .. }) => read(std::io::BufReader::new(file), len, &where_),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads a model file of the library's format whose header is `header`: the architecture and
/// the rest from the metadata, checked, then the weights into the layers (by [`io::load_into`],
/// which checks every tensor). A file too short for the weights its metadata describes is
/// refused before anything is allocated for them.
fn from_library_file(path: &Path, len: Option<u64>, header: &Header) -> Result<SavedModel, String> {
    let where_ = path.display().to_string();
    let meta = &header.metadata;
    let get = |key: &str| {
        meta.get(key).cloned().ok_or_else(|| {
            format!("the metadata has no '{key}': not a model saved by perturb train")
        })
    };
    if !meta.contains_key(MODEL) && crate::train::records_a_run(meta) {
        let folder = match path.parent().map(Path::display).map(|p| p.to_string()) {
            Some(p) if !p.is_empty() => p,
            _ => ".".to_string(),
        };
        return Err(format!(
            "{where_} is a checkpoint of perturb train (--checkpoint-every), not a model file: \
             give the run's model (OUT/model.safetensors), or continue the run with perturb \
             train ... --resume {folder}"
        ));
    }
    let arch = read_architecture(&get(MODEL).map_err(|e| format!("{where_}: {e}"))?, &get)
        .map_err(|e| format!("{where_}: {e}"))?;
    let count: u64 = arch
        .shapes()
        .iter()
        .map(|(_, s)| s.iter().product::<usize>() as u64)
        .sum();
    if len.is_some_and(|len| len < 8 * count) {
        return Err(format!(
            "{where_} is not a valid safetensors file (corrupt or truncated?): its metadata \
             describes {count} weights, more than its {} bytes can hold",
            len.unwrap_or(0)
        ));
    }
    let skeleton = arch.initial(0).map_err(|e| format!("{where_}: {e}"))?;
    let mut layers = skeleton.layers().clone();
    io::load_into(&mut layers, path, &skeleton.describe()).map_err(|e| e.to_string())?;
    let model = skeleton
        .with_params(&layers.flatten())
        .map_err(|e| format!("{where_}: {e}"))?;
    described(model, meta, &where_)
}

/// Reads a model from `reader`: `len` is the length of the file where known (a regular file),
/// `where_` names it in the errors.
fn read(mut reader: impl Read, len: Option<u64>, where_: &str) -> Result<SavedModel, String> {
    let invalid = |why: String| {
        format!("{where_} is not a valid safetensors file (corrupt or truncated?): {why}")
    };
    // Up to `n` more bytes onto `buf`; whether all `n` came before the end of the file.
    let mut take = |buf: &mut Vec<u8>, n: u64| -> Result<bool, String> {
        let before = buf.len();
        reader
            .by_ref()
            .take(n)
            .read_to_end(buf)
            .map_err(|e| format!("cannot read the model {where_}: {e}"))?;
        Ok((buf.len() - before) as u64 == n)
    };
    let mut buf = Vec::new();
    if !take(&mut buf, 8)? {
        return Err(invalid(format!(
            "it has {} bytes, fewer than the 8 of a header length",
            buf.len()
        )));
    }
    let n = u64::from_le_bytes(buf[..8].try_into().unwrap_or([0; 8]));
    if n > MAX_HEADER {
        return Err(invalid(format!(
            "the header length is {n} bytes, more than the {MAX_HEADER} a header may have"
        )));
    }
    if len.is_some_and(|len| 8 + n > len) {
        return Err(invalid(format!(
            "the header length ({n} bytes) runs past the end of the file"
        )));
    }
    if !take(&mut buf, n)? {
        return Err(invalid("the file ends inside the header".into()));
    }
    let header: Metadata = serde_json::from_slice(&buf[8..]).map_err(|e| {
        invalid(format!(
            "the header is not the JSON of a safetensors file: {e}"
        ))
    })?;
    let tensors = header.tensors();
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |key: &str| {
        meta.get(key).cloned().ok_or_else(|| {
            format!("{where_}: the metadata has no '{key}': not a model saved by perturb train")
        })
    };
    let format = get("format")?;
    if format != OLD_MLP_FORMAT {
        return Err(format!(
            "{where_}: format '{}' is not {OLD_MLP_FORMAT}: not a model saved by perturb train",
            crate::apply::shown(&format)
        ));
    }
    let arch = read_architecture("mlp", &|key| {
        get(key).map_err(|e| e.trim_start_matches(&format!("{where_}: ")).to_string())
    })
    .map_err(|e| format!("{where_}: {e}"))?;
    // The tensors the architecture needs, checked in the header before any data is read.
    // (The first format named an MLP's tensors layer0.weight, layer0.bias, layer1.weight, ...)
    let expected: Vec<(String, Vec<usize>)> = arch
        .shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (_, shape))| {
            (
                format!("layer{}.{}", i / 2, ["weight", "bias"][i % 2]),
                shape,
            )
        })
        .collect();
    for (name, shape) in &expected {
        let info = tensors.get(name).ok_or_else(|| {
            format!("{where_}: the tensor '{name}' is missing: a model of another architecture?")
        })?;
        if info.dtype != Dtype::F64 || &info.shape != shape {
            return Err(format!(
                "{where_}: '{name}' is {:?} {:?}, expected F64 {shape:?}: a model of another \
                 architecture?",
                info.dtype, info.shape
            ));
        }
    }
    // The data: up to the last byte any tensor claims, within the cap.
    let data_len = tensors
        .values()
        .map(|t| t.data_offsets.1 as u64)
        .max()
        .unwrap_or(0);
    if data_len > 8 * perturb_nn::nn::MAX_PARAMETERS as u64 {
        return Err(invalid(format!(
            "its tensors claim {data_len} bytes, more than a model file may hold"
        )));
    }
    if let Some(len) = len {
        if len - 8 - n != data_len {
            return Err(invalid(format!(
                "the header's tensors take {data_len} bytes, the file has {} after the header",
                len - 8 - n
            )));
        }
    }
    if !take(&mut buf, data_len)? {
        return Err(invalid("the file ends inside the tensor data".into()));
    }
    let file = SafeTensors::deserialize(&buf).map_err(|e| invalid(in_words(&e)))?;
    let mut params = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        params.push(finite_tensor(&file, name, shape).map_err(|e| format!("{where_}: {e}"))?);
    }
    let model = arch
        .with_params(&params)
        .map_err(|e| format!("{where_}: {e}"))?;
    let meta: BTreeMap<String, String> = meta.into_iter().collect();
    described(model, &meta, where_)
}

/// The model with what its file's metadata `meta` says besides the architecture: the task
/// (checked against the outputs), the standardisation (one entry per input, finite, std > 0)
/// and the column names; an error naming the file (`where_`) and the entry otherwise.
fn described(
    model: Network,
    meta: &BTreeMap<String, String>,
    where_: &str,
) -> Result<SavedModel, String> {
    let get = |key: &str| {
        meta.get(key).cloned().ok_or_else(|| {
            format!("{where_}: the metadata has no '{key}': not a model saved by perturb train")
        })
    };
    let task = get("task")?;
    if !TASKS.contains(&task.as_str()) {
        return Err(format!(
            "{where_}: unknown task '{}' (expected one of {})",
            crate::apply::shown(&task),
            TASKS.join(", ")
        ));
    }
    let (inputs, outputs) = (model.inputs(), model.outputs());
    if task != "multiclass" && outputs != 1 {
        return Err(format!(
            "{where_}: a {task} model has one output, the metadata says {outputs}"
        ));
    }
    let numbers_of = |key: &str| -> Result<Vec<f64>, String> {
        let values = parse_numbers(key, &get(key)?).map_err(|e| format!("{where_}: {e}"))?;
        if values.len() != inputs {
            return Err(format!(
                "{where_}: the standardisation ({key}) has {} entries for {inputs} inputs",
                values.len(),
            ));
        }
        Ok(values)
    };
    let scaler = Standardizer::from_parts(numbers_of("feature_mean")?, numbers_of("feature_std")?)
        .map_err(|e| format!("{where_}: the features' standardisation: {e}"))?;
    let scalar = |key: &str| -> Result<f64, String> {
        get(key)?
            .parse()
            .map_err(|_| format!("{where_}: metadata entry {key} is not a number"))
    };
    let (target_mean, target_std) = (scalar("target_mean")?, scalar("target_std")?);
    Standardizer::from_parts(vec![target_mean], vec![target_std])
        .map_err(|e| format!("{where_}: the target's standardisation: {e}"))?;
    let feature_names = match meta.get("feature_names") {
        None => None,
        Some(json) => {
            let names: Vec<String> = serde_json::from_str(json).map_err(|e| {
                format!("{where_}: metadata entry feature_names is not a list of names: {e}")
            })?;
            if names.len() != inputs {
                return Err(format!(
                    "{where_}: the metadata names {} features for {inputs} inputs",
                    names.len(),
                ));
            }
            Some(names)
        }
    };
    Ok(SavedModel {
        model,
        task,
        scaler,
        target_mean,
        target_std,
        feature_names,
        target_name: meta.get("target_name").cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// The number of cases of each property test below.
    const CASES: u32 = 256;

    /// A valid model file of the first format: the iris model of tests/fixtures (4 inputs,
    /// 5 tanh hidden units, 3 classes), written by the code of that format.
    fn valid() -> Vec<u8> {
        include_bytes!("../tests/fixtures/old-mlp-iris.safetensors").to_vec()
    }

    fn from_bytes(bytes: &[u8]) -> Result<SavedModel, String> {
        read(bytes, Some(bytes.len() as u64), "m.safetensors")
    }

    /// The file's JSON header.
    fn header(bytes: &[u8]) -> Value {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        serde_json::from_slice(&bytes[8..8 + n]).unwrap()
    }

    /// The file with its header replaced by `header` (the data kept).
    fn with_header(bytes: &[u8], header: &Value) -> Vec<u8> {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let text = serde_json::to_string(header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&bytes[8 + n..]);
        out
    }

    fn with_metadata(key: &str, value: &str) -> Vec<u8> {
        let bytes = valid();
        let mut h = header(&bytes);
        h["__metadata__"][key] = json!(value);
        with_header(&bytes, &h)
    }

    /// An error must name the file and be one line of words, not a Debug dump.
    fn assert_clear(result: Result<SavedModel, String>) -> String {
        let err = result.err().expect("an error");
        assert!(err.contains("m.safetensors"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        err
    }

    #[test]
    fn a_model_file_of_the_first_format_reads_back() {
        let bytes = valid();
        let m = from_bytes(&bytes).unwrap();
        assert_eq!((m.model.inputs(), m.model.outputs()), (4, 3));
        assert_eq!(m.model.describe(), "network [4, 5, 3] with Tanh units");
        assert_eq!(m.task, "multiclass");
        assert_eq!(m.feature_names.as_ref().map(Vec::len), Some(4));
        assert!(m.scaler.std().iter().all(|s| *s > 0.0));
        // Without a known length (a pipe) too.
        assert!(read(&bytes[..], None, "m.safetensors").is_ok());
    }

    /// A scratch folder for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("perturb-model-file-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_saved_cnn_reads_back_bit_for_bit_and_its_bad_geometry_is_refused() {
        let cnn = Architecture::Cnn {
            side: 4,
            channels: [2, 3],
            outputs: 2,
        }
        .initial(5)
        .unwrap();
        let dir = scratch("cnn");
        let path = dir.join("m.safetensors");
        save(
            &path,
            &SavedModel {
                model: cnn.clone(),
                task: "multiclass".into(),
                scaler: Standardizer::from_parts(vec![0.0; 16], vec![1.0; 16]).unwrap(),
                target_mean: 0.0,
                target_std: 1.0,
                feature_names: None,
                target_name: None,
            },
        )
        .unwrap();
        let m = load(&path).unwrap();
        let bits = |n: &Network| -> Vec<u64> {
            n.param_tensors()
                .iter()
                .flat_map(|t| t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                .collect()
        };
        assert_eq!(bits(&m.model), bits(&cnn));
        assert_eq!(m.model.describe(), cnn.describe());
        let x = Tensor::from_vec((0..32).map(f64::from).collect(), &[2, 16]).unwrap();
        assert_eq!(
            m.model.predict(&x).unwrap().to_vec(),
            cnn.predict(&x).unwrap().to_vec()
        );
        let bytes = std::fs::read(&path).unwrap();
        let edited = dir.join("edited").join("m.safetensors");
        std::fs::create_dir_all(edited.parent().unwrap()).unwrap();
        let edit = |key: &str, value: &str| {
            let mut h = header(&bytes);
            h["__metadata__"][key] = json!(value);
            std::fs::write(&edited, with_header(&bytes, &h)).unwrap();
            load(&edited)
        };
        for (key, value, expected) in [
            ("image_side", "3", "a 3x3 image"),
            // Another geometry is another architecture for the library's reader.
            (
                "image_side",
                "5",
                "the file holds a model of architecture 'cnn 4x4",
            ),
            ("image_side", "8", "not 'cnn 8x8"),
            ("image_side", "-4", "not a whole number from 1"),
            ("channels", "0,3", "not a whole number from 1 to 4096"),
            ("channels", "2", "not two channel counts"),
            ("channels", "2,3,4", "not two channel counts"),
            ("image_side", "65536", "more than the"),
            ("channels", "400,400", "more than its"),
            ("outputs", "0", "outputs holds '0'"),
            ("model", "rnn", "holds 'rnn', not mlp or cnn"),
            ("task", "ranking", "unknown task 'ranking'"),
            ("feature_std", "1", "1 entries for 16 inputs"),
        ] {
            let err = assert_clear(edit(key, value));
            assert!(err.contains(expected), "{key}={value}: {err}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn sizes_that_would_allocate_without_bound_are_refused_first() {
        for sizes in [
            "2,3,1000000000",
            "2,1000000000000,1",
            "4294967296,4294967296,1",
            "2,9223372036854775808,2",
            "18446744073709551615,18446744073709551615",
            "4,0,3",
            "4",
            "",
        ] {
            let err = assert_clear(from_bytes(&with_metadata("sizes", sizes)));
            assert!(err.contains("sizes"), "{sizes}: {err}");
        }
        // Sizes that fit the cap but not the tensors: the shapes are compared first.
        let err = assert_clear(from_bytes(&with_metadata("sizes", "4,5000,3")));
        assert!(err.contains("expected F64 [4, 5000]"), "{err}");
    }

    #[test]
    fn non_finite_or_non_positive_standardisation_and_weights_are_refused() {
        for (key, value, expected) in [
            ("feature_std", "0e0,1,1,1", "features' standardisation"),
            (
                "feature_std",
                "-1,1,1,1",
                "feature 0: std -1 is not a finite number > 0",
            ),
            (
                "feature_std",
                "NaN,1,1,1",
                "feature 0: std NaN is not a finite number > 0",
            ),
            (
                "feature_std",
                "1,inf,1,1",
                "feature 1: std inf is not a finite number > 0",
            ),
            ("target_std", "0", "the target's standardisation"),
            (
                "feature_mean",
                "inf,1,1,1",
                "feature 0: mean inf is not finite",
            ),
            ("target_mean", "NaN", "the target's standardisation"),
            ("task", "ranking", "unknown task 'ranking'"),
        ] {
            let err = assert_clear(from_bytes(&with_metadata(key, value)));
            assert!(err.contains(expected), "{key}={value}: {err}");
        }
        let mut bytes = valid();
        let end = bytes.len();
        bytes[end - 8..].copy_from_slice(&f64::NAN.to_le_bytes());
        let err = assert_clear(from_bytes(&bytes));
        assert!(
            err.contains("holds NaN at index") && err.contains("the weights must be finite"),
            "{err}"
        );
    }

    #[test]
    fn structural_errors_are_in_words() {
        let bytes = valid();
        let mut long = bytes.clone();
        long[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let mut h = header(&bytes);
        h["layer1.bias"]["data_offsets"] = json!([0, 24]);
        for (file, expected) in [
            (bytes[..5].to_vec(), "fewer than the 8 of a header length"),
            (long, "more than the 100000000 a header may have"),
            (bytes[..bytes.len() - 1].to_vec(), "the file has"),
            (with_header(&bytes, &h), "does not follow the one before it"),
        ] {
            let err = assert_clear(from_bytes(&file));
            assert!(err.contains(expected), "{err}");
            for debug in [
                "HeaderTooLarge",
                "MetadataIncompleteBuffer",
                "InvalidOffset(",
            ] {
                assert!(!err.contains(debug), "{err}");
            }
        }
    }

    #[test]
    fn an_endless_stream_is_read_only_as_far_as_the_header_says() {
        // /dev/zero as a model: a header length of 0, then an empty header.
        let err = read(std::io::repeat(0), None, "m.safetensors")
            .err()
            .unwrap();
        assert!(err.contains("not the JSON"), "{err}");
        // A valid header followed by endless data: only the data it claims is read.
        let bytes = valid();
        let endless = std::io::Read::chain(&bytes[..], std::io::repeat(0));
        assert!(read(endless, None, "m.safetensors").is_ok());
    }

    /// Any JSON value, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::hash_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A key of the valid file's header: a tensor or a metadata entry.
    fn any_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("layer0.weight".to_string()),
            Just("layer0.bias".to_string()),
            Just("layer1.weight".to_string()),
            Just("layer1.bias".to_string()),
            Just("__metadata__".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(CASES))]

        #[test]
        fn arbitrary_bytes_are_an_error_not_a_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..512),
            known in any::<bool>(),
        ) {
            let len = known.then_some(bytes.len() as u64);
            let _ = assert_clear(read(&bytes[..], len, "m.safetensors"));
        }

        #[test]
        fn a_random_header_length_is_an_error(n in any::<u64>(), known in any::<bool>()) {
            let mut bytes = valid();
            let real = u64::from_le_bytes(bytes[..8].try_into().unwrap());
            prop_assume!(n != real);
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            let len = known.then_some(bytes.len() as u64);
            let _ = assert_clear(read(&bytes[..], len, "m.safetensors"));
        }

        #[test]
        fn a_random_json_header_is_an_error(header in any_json()) {
            let _ = assert_clear(from_bytes(&with_header(&valid(), &header)));
        }

        #[test]
        fn random_edits_of_a_valid_header_never_panic(
            key in any_key(),
            field in prop_oneof![
                Just("dtype"), Just("shape"), Just("data_offsets"), Just("sizes"),
                Just("feature_std"), Just("feature_mean"), Just("feature_names"),
                Just("activation"), Just("format"), Just("target_std"),
            ],
            value in prop_oneof![
                any_json(),
                prop::collection::vec(any::<u64>(), 0..4).prop_map(Value::from),
                prop::collection::vec(0u64..10, 0..4).prop_map(Value::from),
                "[0-9,]{0,24}".prop_map(Value::from),
                "(-?[0-9.e]{1,6}|NaN|inf)(,(-?[0-9.e]{1,6}|NaN|inf)){0,4}".prop_map(Value::from),
            ],
        ) {
            let bytes = valid();
            let mut h = header(&bytes);
            h[key.as_str()][field] = value;
            if let Ok(m) = from_bytes(&with_header(&bytes, &h)) {
                // What loads is usable: its shapes fit and its numbers are finite.
                prop_assert!(m.scaler.std().iter().all(|s| s.is_finite() && *s > 0.0));
                prop_assert_eq!(m.scaler.mean().len(), m.model.inputs());
                let x = Tensor::zeros(&[1, m.model.inputs()]);
                prop_assert!(m.model.predict(&x).is_ok());
            }
        }
    }
}
