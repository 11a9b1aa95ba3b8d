//! Model files and checkpoints: any parameter tree of `Tensor<f32>` or `Tensor<f64>` saved as
//! [safetensors](https://huggingface.co/docs/safetensors), atomically.
//!
//! A model file holds one tensor per leaf, named by the leaf's [path](perturb::tree::Path)
//! (`layers.0.weight`), and in its header's metadata a format tag (`format`:
//! [`MODEL_FORMAT`]), the model's `architecture` (a string the caller chooses that says which
//! structure the tensors fill, such as `"mlp 4-16-3 tanh"`), the element type (`dtype`:
//! `"F32"` or `"F64"`) and the caller's own entries ([`Header::metadata`]). Any safetensors
//! reader (Python's included) opens it.
//!
//! Loading fills a model of the expected structure (typically freshly constructed) and checks
//! everything first: the format, the architecture (both names in the error), the element
//! type, every tensor's presence and shape (the path and both shapes in the error), no tensor
//! too many, and that every number is finite; the model is unchanged on any error. Nothing is
//! allocated for the data before the header has been checked against the model, and a header
//! may not pass the 100 MB the safetensors format allows.
//!
//! Tensors that are not parameters (BatchNorm's running statistics) are stored beside the
//! tree with [`save_with_extra`] and read back with [`load_into_with_extra`], under their own
//! names; [`load_into`] refuses a file that has them, so that they are not silently lost.
//! [`Checkpoint`] adds the optimiser's state and the training counters.
//!
//! ```
//! use std::collections::BTreeMap;
//! use perturb::tensor::Tensor;
//! use perturb_nn::io::{self, Header};
//!
//! let dir = std::env::temp_dir().join(format!("perturb-doc-io-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("model.safetensors");
//!
//! let mut model = BTreeMap::new();
//! model.insert("weight".to_string(), Tensor::from_vec(vec![1.0_f64, -2.0], &[1, 2]).unwrap());
//! model.insert("bias".to_string(), Tensor::vector(&[0.5]));
//! io::save(&path, &model, &Header::new("linear 2-1").with("trained_on", "toy data")).unwrap();
//!
//! // A fresh model of the same structure is filled from the file.
//! let mut fresh = model.clone();
//! fresh.insert("weight".to_string(), Tensor::zeros(&[1, 2]));
//! let header = io::load_into(&mut fresh, &path, "linear 2-1").unwrap();
//! assert_eq!(fresh["weight"].to_vec(), [1.0, -2.0]);
//! assert_eq!(header.metadata["trained_on"], "toy data");
//!
//! // Another architecture is refused, and the model is unchanged.
//! let err = io::load_into(&mut fresh, &path, "linear 3-1").unwrap_err().to_string();
//! assert!(err.contains("'linear 2-1'") && err.contains("'linear 3-1'"), "{err}");
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod atomic;
mod checkpoint;
mod format;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use perturb::tensor::Tensor;
use perturb::tree::{Path as TreePath, Tree};

use crate::module::Module;

pub use atomic::write_atomic;
pub use checkpoint::{Checkpoint, TrainState};
pub use format::Storable;
use format::{Contents, Opened, Stored};

/// The `format` entry of a model file written by [`save`].
pub const MODEL_FORMAT: &str = "perturb-model-1";
/// The `format` entry of a checkpoint written by [`Checkpoint::save`].
pub const CHECKPOINT_FORMAT: &str = "perturb-checkpoint-1";

/// The metadata entries perturb writes itself; the caller's entries may not use these names
/// nor start with `perturb.`.
const RESERVED: [&str; 3] = ["format", "architecture", "dtype"];
/// The metadata entry listing the extra tensors (a JSON list of names).
const EXTRA: &str = "perturb.extra";

/// What can go wrong reading or writing a model file or checkpoint: each error names the file
/// and the cause (and the tensor, where one is at fault).
///
/// ```
/// let mut model = vec![perturb::tensor::Tensor::vector(&[0.0_f64])];
/// let err = perturb_nn::io::load_into(&mut model, "no-such-model.safetensors", "mlp")
///     .unwrap_err();
/// assert!(err.to_string().starts_with("no-such-model.safetensors: cannot read"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read or written.
    #[error("{file}: cannot {action} the file: {source}")]
    Io {
        /// The file.
        file: String,
        /// `"read"` or `"write"`.
        action: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid safetensors: truncated, corrupt, or not safetensors at all.
    #[error("{file} is not a valid safetensors file (corrupt or truncated?): {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is valid safetensors but not a perturb model file (or checkpoint) of this
    /// kind: no `format` entry, or another one.
    #[error("{file}: {reason}")]
    NotPerturb {
        /// The file.
        file: String,
        /// What the file is instead.
        reason: String,
    },
    /// The file holds a model of another architecture.
    #[error("{file}: the file holds a model of architecture '{found}', not '{expected}'")]
    Architecture {
        /// The file.
        file: String,
        /// The architecture asked for.
        expected: String,
        /// The file's architecture.
        found: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("{file}: the tensor '{tensor}' is missing (a model of another structure?)")]
    MissingTensor {
        /// The file.
        file: String,
        /// The tensor's name (the leaf's path).
        tensor: String,
    },
    /// The file has a tensor the model does not.
    #[error("{file}: the file has a tensor '{tensor}' that the model does not (a model of another structure?)")]
    ExtraTensor {
        /// The file.
        file: String,
        /// The tensor's name.
        tensor: String,
    },
    /// A tensor's shape differs from the model's leaf.
    #[error("{file}: the tensor '{tensor}' has shape {found:?}, the model's has {expected:?}")]
    Shape {
        /// The file.
        file: String,
        /// The tensor's name (the leaf's path).
        tensor: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// The file holds numbers of another type.
    #[error("{file}: {what} holds {found} numbers, expected {expected}")]
    Dtype {
        /// The file.
        file: String,
        /// `the file` or `the tensor 'NAME'`.
        what: String,
        /// The type asked for (`F32`, `F64`).
        expected: String,
        /// The file's type.
        found: String,
    },
    /// A number is NaN or infinite (weights must be finite, to save as to load).
    #[error(
        "{file}: the tensor '{tensor}' holds {value} at index {index}: the values must be finite"
    )]
    NotFinite {
        /// The file.
        file: String,
        /// The tensor's name.
        tensor: String,
        /// The index of the number, in row-major order.
        index: usize,
        /// The number.
        value: f64,
    },
    /// Something else about the file or the arguments is wrong: a metadata entry that
    /// cannot be read, a reserved metadata name, a name used twice.
    #[error("{file}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a file says about its model besides the tensors: the architecture and the caller's
/// own metadata entries.
///
/// ```
/// use perturb_nn::io::Header;
/// let h = Header::new("mlp 4-16-3").with("task", "multiclass");
/// assert_eq!(h.architecture, "mlp 4-16-3");
/// assert_eq!(h.metadata["task"], "multiclass");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Which structure the tensors fill: loading asks for it by name.
    pub architecture: String,
    /// Free entries (the feature names, the task, ...). The names `format`, `architecture`,
    /// `dtype` and those starting with `perturb.` are perturb's own.
    pub metadata: BTreeMap<String, String>,
}

impl Header {
    /// A header with this architecture and no other entries.
    ///
    /// ```
    /// assert!(perturb_nn::io::Header::new("cnn").metadata.is_empty());
    /// ```
    pub fn new(architecture: impl Into<String>) -> Self {
        Header {
            architecture: architecture.into(),
            metadata: BTreeMap::new(),
        }
    }

    /// The same header with the entry `key` set to `value`.
    ///
    /// ```
    /// let h = perturb_nn::io::Header::new("cnn").with("epochs", "10");
    /// assert_eq!(h.metadata.len(), 1);
    /// ```
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The file's whole metadata: this header's entries, checked not to use perturb's names,
    /// then `format`, `architecture` and `dtype`.
    fn to_metadata<T: Storable>(
        &self,
        file: &str,
        format: &str,
    ) -> Result<BTreeMap<String, String>, FileError> {
        if let Some(key) = self.metadata.keys().find(|k| is_reserved(k)) {
            return Err(FileError::Invalid {
                file: file.into(),
                reason: format!(
                    "the metadata entry '{key}' is perturb's own (format, architecture, dtype \
                     and perturb.*); choose another name"
                ),
            });
        }
        let mut out = self.metadata.clone();
        out.insert("format".into(), format.into());
        out.insert("architecture".into(), self.architecture.clone());
        out.insert("dtype".into(), T::DTYPE.into());
        Ok(out)
    }
}

fn is_reserved(key: &str) -> bool {
    RESERVED.contains(&key) || key.starts_with("perturb.")
}

/// A leaf's name in a file: `prefix.path`, or either alone when the other is empty.
fn joined(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// The leaves of `tree`, named by their paths below `prefix`.
fn named<'a, T: Storable, X: Tree<Tensor<T>>>(
    prefix: &str,
    tree: &'a X,
) -> Vec<(String, &'a dyn Stored)> {
    let leaves = tree.named_leaves().into_iter();
    leaves
        .map(|(p, t)| (joined(prefix, &p), t as &dyn Stored))
        .collect()
}

/// The extra tensors as file entries named below `prefix`, and the metadata entry listing
/// their names.
fn extra_entries<'a>(
    prefix: &str,
    extra: &'a [(String, Tensor<f64>)],
    metadata: &mut BTreeMap<String, String>,
) -> Vec<(String, &'a dyn Stored)> {
    if !extra.is_empty() {
        let names: Vec<&String> = extra.iter().map(|(n, _)| n).collect();
        // A list of strings always serialises.
        let list = serde_json::to_string(&names).unwrap_or_default();
        metadata.insert(EXTRA.into(), list);
    }
    let entries = extra
        .iter()
        .map(|(n, t)| (joined(prefix, n), t as &dyn Stored));
    entries.collect()
}

/// The path as the errors show it.
fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A file on disk, its header read.
type FileReader = Opened<std::io::BufReader<std::fs::File>>;

/// Opens `path` and checks its header: the `format` entry (`format`), the architecture and
/// the element type `T`. Returns the file, its header and its extra tensors' names.
fn open<T: Storable>(
    path: &Path,
    format: &str,
    architecture: &str,
) -> Result<(FileReader, Header, Vec<String>), FileError> {
    let opened = open_any(path)?;
    let file = opened.file.clone();
    let header = header_of(&opened, &[format])?;
    if header.architecture != architecture {
        return Err(FileError::Architecture {
            file,
            expected: architecture.into(),
            found: header.architecture,
        });
    }
    let dtype = opened.metadata.get("dtype").map_or("", String::as_str);
    if dtype != T::DTYPE {
        return Err(FileError::Dtype {
            file,
            what: "the file".into(),
            expected: T::DTYPE.into(),
            found: dtype.into(),
        });
    }
    let extra = match opened.metadata.get(EXTRA) {
        None => Vec::new(),
        Some(json) => serde_json::from_str(json).map_err(|e| FileError::Invalid {
            file: file.clone(),
            reason: format!("the metadata entry {EXTRA} is not a list of names: {e}"),
        })?,
    };
    Ok((opened, header, extra))
}

/// Opens `path` and reads its header (only).
fn open_any(path: &Path) -> Result<FileReader, FileError> {
    let file = shown(path);
    let cannot = |source| FileError::Io {
        file: file.clone(),
        action: "read",
        source,
    };
    let f = std::fs::File::open(path).map_err(cannot)?;
    let info = f.metadata().map_err(cannot)?;
    if info.is_dir() {
        return Err(FileError::Invalid {
            file,
            reason: "it is a folder, not a model file".into(),
        });
    }
    // A device or a pipe has no length: it is read only as far as its header says.
    let len = info.is_file().then_some(info.len());
    Opened::new(std::io::BufReader::new(f), len, &file)
}

/// The header of an opened file whose `format` is one of `formats`.
fn header_of<R>(opened: &Opened<R>, formats: &[&str]) -> Result<Header, FileError> {
    let not_perturb = |reason: String| FileError::NotPerturb {
        file: opened.file.clone(),
        reason,
    };
    let Some(format) = opened.metadata.get("format") else {
        return Err(not_perturb(
            "the metadata has no 'format' entry: not a file saved by perturb".into(),
        ));
    };
    if !formats.contains(&format.as_str()) {
        let hint = match format.as_str() {
            MODEL_FORMAT => " (a model file: load it with io::load_into)",
            CHECKPOINT_FORMAT => " (a checkpoint: load it with Checkpoint::load)",
            _ => "",
        };
        return Err(not_perturb(format!(
            "the file's format is '{format}'{hint}, not {}",
            formats.join(" or ")
        )));
    }
    let Some(architecture) = opened.metadata.get("architecture") else {
        return Err(not_perturb(
            "the metadata has no 'architecture' entry".into(),
        ));
    };
    let metadata = opened.metadata.iter().filter(|(k, _)| !is_reserved(k));
    Ok(Header {
        architecture: architecture.clone(),
        metadata: metadata.map(|(k, v)| (k.clone(), v.clone())).collect(),
    })
}

/// The tensors a file must hold: each name once, of its type, with its shape where the
/// model gives one.
struct Expected<'a, R> {
    opened: &'a Opened<R>,
    names: BTreeSet<String>,
}

impl<'a, R> Expected<'a, R> {
    fn new(opened: &'a Opened<R>) -> Self {
        Expected {
            opened,
            names: BTreeSet::new(),
        }
    }

    /// The tensor `name` must be in the file, of `dtype`, with `shape` if given.
    fn tensor(
        &mut self,
        name: &str,
        dtype: &str,
        shape: Option<&[usize]>,
    ) -> Result<(), FileError> {
        let file = || self.opened.file.clone();
        let Some(listed) = self.opened.tensors.get(name) else {
            return Err(FileError::MissingTensor {
                file: file(),
                tensor: name.into(),
            });
        };
        if let Some(shape) = shape.filter(|s| *s != listed.shape.as_slice()) {
            return Err(FileError::Shape {
                file: file(),
                tensor: name.into(),
                expected: shape.to_vec(),
                found: listed.shape.clone(),
            });
        }
        if listed.dtype != dtype {
            return Err(FileError::Dtype {
                file: file(),
                what: format!("the tensor '{name}'"),
                expected: dtype.into(),
                found: listed.dtype.clone(),
            });
        }
        if !self.names.insert(name.to_string()) {
            return Err(FileError::Invalid {
                file: file(),
                reason: format!("the name '{name}' is used twice"),
            });
        }
        Ok(())
    }

    /// Every leaf of `tree` must be in the file at its path below `prefix`, with its shape.
    fn tree<T: Storable, X: Tree<Tensor<T>>>(
        &mut self,
        prefix: &str,
        tree: &X,
    ) -> Result<(), FileError> {
        for (name, t) in tree.named_leaves() {
            self.tensor(&joined(prefix, &name), T::DTYPE, Some(t.shape()))?;
        }
        Ok(())
    }

    /// The extra tensors `names` (below `prefix`) must be in the file; if `beside` is
    /// [`Beside::Exactly`], they must be those, with those shapes.
    fn extra(&mut self, prefix: &str, names: &[String], beside: &Beside) -> Result<(), FileError> {
        let file = || self.opened.file.clone();
        match beside {
            Beside::Refuse => {
                if let Some(first) = names.first() {
                    return Err(FileError::Invalid {
                        file: file(),
                        reason: format!(
                            "the file holds {} tensor(s) beside the model ('{first}', ...), \
                             which would be lost: load it with load_into_with_extra",
                            names.len()
                        ),
                    });
                }
            }
            Beside::Any => {}
            Beside::Exactly(wanted) => {
                if let Some((missing, _)) = wanted.iter().find(|(n, _)| !names.contains(n)) {
                    return Err(FileError::MissingTensor {
                        file: file(),
                        tensor: joined(prefix, missing),
                    });
                }
                if let Some(stray) = names.iter().find(|n| !wanted.iter().any(|(w, _)| w == *n)) {
                    return Err(FileError::ExtraTensor {
                        file: file(),
                        tensor: joined(prefix, stray),
                    });
                }
            }
        }
        for name in names {
            let shape = match beside {
                Beside::Exactly(wanted) => wanted
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.shape()),
                _ => None,
            };
            self.tensor(&joined(prefix, name), f64::DTYPE, shape)?;
        }
        Ok(())
    }

    /// The file must hold no other tensor.
    fn nothing_else(&self) -> Result<(), FileError> {
        match self
            .opened
            .tensors
            .keys()
            .find(|k| !self.names.contains(*k))
        {
            Some(name) => Err(FileError::ExtraTensor {
                file: self.opened.file.clone(),
                tensor: name.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// What a load does with the tensors stored beside the tree.
enum Beside<'a> {
    /// A file with any is an error (they would be lost).
    Refuse,
    /// They are read, whatever they are.
    Any,
    /// They must be these (names and shapes): a module's buffers.
    Exactly(&'a [(String, Tensor<f64>)]),
}

/// The leaves of `tree`, read from `contents` at their paths below `prefix` (all checked
/// before anything is changed).
fn leaves_of<T: Storable, X: Tree<Tensor<T>>>(
    contents: &Contents,
    prefix: &str,
    tree: &X,
) -> Result<Vec<Tensor<T>>, FileError> {
    let paths = tree.paths().into_iter();
    paths
        .map(|p| contents.tensor::<T>(&joined(prefix, &p)))
        .collect()
}

/// The extra tensors `names`, read from `contents` below `prefix`.
fn extra_of(
    contents: &Contents,
    prefix: &str,
    names: Vec<String>,
) -> Result<Vec<(String, Tensor<f64>)>, FileError> {
    let read = |n: String| Ok((contents.tensor::<f64>(&joined(prefix, &n))?, n));
    names
        .into_iter()
        .map(|n| read(n).map(|(t, n)| (n, t)))
        .collect()
}

/// Puts `leaves` (one per leaf, in order) into `tree`.
fn fill<T: Storable, X: Tree<Tensor<T>>>(tree: &mut X, leaves: Vec<Tensor<T>>) {
    let mut leaves = leaves.into_iter();
    tree.visit_mut(&mut TreePath::root(), &mut |_, leaf| {
        if let Some(t) = leaves.next() {
            *leaf = t;
        }
    });
}

/// Saves the parameter tree `tree` to `path` as a model file (see the [module](self)):
/// atomically, so that a crash mid-save leaves the previous file whole. An error if a
/// number is not finite (the tensor named), if two leaves have the same path, or if a
/// metadata entry uses one of perturb's names.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, Header};
/// let dir = std::env::temp_dir().join(format!("perturb-doc-save-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("m.safetensors");
/// let model = (Tensor::vector(&[1.0_f32, 2.0]), vec![Tensor::scalar(3.0_f32)]);
/// io::save(&path, &model, &Header::new("pair")).unwrap();
/// let bad = (Tensor::vector(&[1.0_f32, f32::NAN]), vec![Tensor::scalar(3.0_f32)]);
/// let err = io::save(&path, &bad, &Header::new("pair")).unwrap_err().to_string();
/// assert!(err.contains("'0'") && err.contains("NaN at index 1"), "{err}");
/// // The first file is still there, whole.
/// let mut back = model.clone();
/// io::load_into(&mut back, &path, "pair").unwrap();
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save<T: Storable, X: Tree<Tensor<T>>>(
    path: impl AsRef<Path>,
    tree: &X,
    header: &Header,
) -> Result<(), FileError> {
    save_with_extra(path, tree, &[], header)
}

/// [`save`], with tensors that are not parameters beside the tree (a module's
/// [`buffers`](crate::module::Module::buffers), such as BatchNorm's running statistics, which
/// are `f64` whatever the model's type), each under its own name, which may not be a path of
/// the tree. Read them back with [`load_into_with_extra`]; [`save_module`] does both for a
/// module.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, Header};
/// let dir = std::env::temp_dir().join(format!("perturb-doc-extra-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("bn.safetensors");
/// let params = vec![Tensor::vector(&[1.0_f32, 1.0])]; // the scale
/// let stats = vec![("running_mean".to_string(), Tensor::vector(&[0.25, -0.5]))];
/// io::save_with_extra(&path, &params, &stats, &Header::new("bn 2")).unwrap();
///
/// let mut fresh = vec![Tensor::<f32>::zeros(&[2])];
/// // load_into refuses the file: its running statistics would be lost.
/// assert!(io::load_into(&mut fresh, &path, "bn 2").is_err());
/// let (_, extra) = io::load_into_with_extra(&mut fresh, &path, "bn 2").unwrap();
/// assert_eq!(extra[0].0, "running_mean");
/// assert_eq!(extra[0].1.to_vec(), [0.25, -0.5]);
/// assert_eq!(fresh[0].to_vec(), [1.0, 1.0]);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save_with_extra<T: Storable, X: Tree<Tensor<T>>>(
    path: impl AsRef<Path>,
    tree: &X,
    extra: &[(String, Tensor<f64>)],
    header: &Header,
) -> Result<(), FileError> {
    let path = path.as_ref();
    let file = shown(path);
    let mut metadata = header.to_metadata::<T>(&file, MODEL_FORMAT)?;
    let mut tensors = named("", tree);
    tensors.extend(extra_entries("", extra, &mut metadata));
    write_atomic(path, &format::encode(&file, &metadata, &tensors)?)
}

/// Fills `model` (a tree of the expected structure and shapes, typically freshly
/// constructed) from the model file `path`, which must be of `architecture` and hold `T`s;
/// returns the file's [`Header`]. Every way the file can be wrong is an error and leaves
/// `model` unchanged (see the [module](self)), and so is a file with extra tensors (use
/// [`load_into_with_extra`]).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, FileError, Header};
/// let dir = std::env::temp_dir().join(format!("perturb-doc-load-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("m.safetensors");
/// io::save(&path, &vec![Tensor::vector(&[1.0_f64, 2.0])], &Header::new("v2")).unwrap();
///
/// let mut wrong = vec![Tensor::<f64>::zeros(&[3])];
/// let err = io::load_into(&mut wrong, &path, "v2").unwrap_err();
/// assert!(matches!(err, FileError::Shape { .. }));
/// assert!(err.to_string().contains("'0' has shape [2], the model's has [3]"), "{err}");
/// let mut as_f32 = vec![Tensor::<f32>::zeros(&[2])];
/// assert!(matches!(io::load_into(&mut as_f32, &path, "v2"), Err(FileError::Dtype { .. })));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_into<T: Storable, X: Tree<Tensor<T>>>(
    model: &mut X,
    path: impl AsRef<Path>,
    architecture: &str,
) -> Result<Header, FileError> {
    let loaded = load_model(model, path.as_ref(), architecture, Beside::Refuse)?;
    fill(model, loaded.leaves);
    Ok(loaded.header)
}

/// [`load_into`] for a file written by [`save_with_extra`]: also returns the extra tensors,
/// by name, in the order they were saved (none for a file written by [`save`]).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, Header};
/// let dir = std::env::temp_dir().join(format!("perturb-doc-lwe-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("m.safetensors");
/// io::save(&path, &Tensor::scalar(2.0_f64), &Header::new("one")).unwrap();
/// let mut m = Tensor::scalar(0.0_f64);
/// let (header, extra) = io::load_into_with_extra(&mut m, &path, "one").unwrap();
/// assert_eq!((m.to_vec(), extra.len(), header.architecture.as_str()), (vec![2.0], 0, "one"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[allow(clippy::type_complexity)]
pub fn load_into_with_extra<T: Storable, X: Tree<Tensor<T>>>(
    model: &mut X,
    path: impl AsRef<Path>,
    architecture: &str,
) -> Result<(Header, Vec<(String, Tensor<f64>)>), FileError> {
    let loaded = load_model(model, path.as_ref(), architecture, Beside::Any)?;
    fill(model, loaded.leaves);
    Ok((loaded.header, loaded.extra))
}

/// Saves `module` to `path` as a model file: its parameters, its
/// [`architecture`](Module::architecture) and its [`buffers`](Module::buffers) (BatchNorm's
/// running statistics) beside them, with the caller's `metadata` entries; atomically.
///
/// ```
/// use std::collections::BTreeMap;
/// use perturb::tensor::Tensor;
/// use perturb_nn::io;
/// use perturb_nn::layers::{BatchNorm, Linear, Relu, Sequential};
/// use perturb_nn::module::{Context, Module};
/// use perturb_nn::nn::Init;
///
/// let dir = std::env::temp_dir().join(format!("perturb-doc-module-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("net.safetensors");
/// let net = || {
///     Sequential::<Tensor<f64>>::new()
///         .push(Linear::new(3, 4, Init::HeNormal, 1).unwrap())
///         .push(BatchNorm::new(4).unwrap())
///         .push(Relu)
/// };
/// let trained = net();
/// let x = Tensor::from_vec((0..6).map(f64::from).collect(), &[2, 3]).unwrap();
/// trained.forward(&x, &mut Context::training(0)).unwrap(); // moves the running statistics
/// let meta = BTreeMap::from([("epochs".to_string(), "1".to_string())]);
/// io::save_module(&path, &trained, &meta).unwrap();
///
/// let mut loaded = net().deep_clone();
/// let header = io::load_module(&mut loaded, &path).unwrap();
/// assert_eq!(header.metadata["epochs"], "1");
/// // The same outputs in evaluation, which uses the running statistics.
/// let (a, b) = (trained.forward_eval(&x).unwrap(), loaded.forward_eval(&x).unwrap());
/// assert_eq!(a.to_vec(), b.to_vec());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn save_module<T: Storable, M: Module<Tensor<T>>>(
    path: impl AsRef<Path>,
    module: &M,
    metadata: &BTreeMap<String, String>,
) -> Result<(), FileError> {
    let header = Header {
        architecture: module.architecture(),
        metadata: metadata.clone(),
    };
    save_with_extra(path, module, &module.buffers(), &header)
}

/// Fills `module` (freshly constructed with the same architecture) from the model file
/// `path` written by [`save_module`]: its parameters and its buffers, after checking
/// everything ([`load_into`]'s checks, the architecture being
/// [`module.architecture()`](Module::architecture), and the buffers' names and shapes);
/// `module` is unchanged on any error. Returns the file's [`Header`].
///
/// ```
/// use std::collections::BTreeMap;
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, FileError};
/// use perturb_nn::layers::Linear;
/// use perturb_nn::nn::Init;
/// let dir = std::env::temp_dir().join(format!("perturb-doc-lm-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("linear.safetensors");
/// let layer = Linear::<Tensor<f64>>::new(2, 3, Init::XavierUniform, 0).unwrap();
/// io::save_module(&path, &layer, &BTreeMap::new()).unwrap();
/// let mut other = Linear::<Tensor<f64>>::new(2, 4, Init::XavierUniform, 0).unwrap();
/// let err = io::load_module(&mut other, &path).unwrap_err();
/// assert!(matches!(err, FileError::Architecture { .. }), "{err}");
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_module<T: Storable, M: Module<Tensor<T>>>(
    module: &mut M,
    path: impl AsRef<Path>,
) -> Result<Header, FileError> {
    let path = path.as_ref();
    let buffers = module.buffers();
    let architecture = module.architecture();
    let loaded = load_model(module, path, &architecture, Beside::Exactly(&buffers))?;
    module
        .load_buffers(&loaded.extra)
        .map_err(|e| FileError::Invalid {
            file: shown(path),
            reason: e.to_string(),
        })?;
    fill(module, loaded.leaves);
    Ok(loaded.header)
}

/// A model file read and checked, not yet put into its model.
struct Loaded<T> {
    header: Header,
    /// One per leaf of the model, in order.
    leaves: Vec<Tensor<T>>,
    extra: Vec<(String, Tensor<f64>)>,
}

/// Reads the model file `path` for `model`, of `architecture`, checking everything.
fn load_model<T: Storable, X: Tree<Tensor<T>>>(
    model: &X,
    path: &Path,
    architecture: &str,
    beside: Beside,
) -> Result<Loaded<T>, FileError> {
    let (opened, header, extra) = open::<T>(path, MODEL_FORMAT, architecture)?;
    let mut expected = Expected::new(&opened);
    expected.tree("", model)?;
    expected.extra("", &extra, &beside)?;
    expected.nothing_else()?;
    let contents = opened.read()?;
    Ok(Loaded {
        header,
        leaves: leaves_of(&contents, "", model)?,
        extra: extra_of(&contents, "", extra)?,
    })
}

/// The [`Header`] of a model file or checkpoint, read without its tensors: to learn which
/// architecture to construct before loading.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{self, Header};
/// let dir = std::env::temp_dir().join(format!("perturb-doc-header-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("m.safetensors");
/// io::save(&path, &Tensor::scalar(1.0_f32), &Header::new("mlp 2-3-1").with("k", "v")).unwrap();
/// let header = io::read_header(&path).unwrap();
/// assert_eq!(header, Header::new("mlp 2-3-1").with("k", "v"));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_header(path: impl AsRef<Path>) -> Result<Header, FileError> {
    header_of(
        &open_any(path.as_ref())?,
        &[MODEL_FORMAT, CHECKPOINT_FORMAT],
    )
}
