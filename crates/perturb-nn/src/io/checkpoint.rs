//! Checkpoints: a training run's whole state in one file, to stop and resume it exactly.

use std::collections::BTreeMap;
use std::path::Path;

use perturb::tensor::{Element, Tensor};
use perturb::tree::Tree;

use super::format::Stored;
use super::{
    extra_entries, extra_of, fill, joined, leaves_of, named, open, shown, write_atomic, Beside,
    Expected, FileError, Header, Storable, CHECKPOINT_FORMAT,
};
use crate::module::RngState;
use crate::optim::OptimizerState;

/// Where a training run stands besides its weights and its optimiser: what a resumed run
/// needs to go on exactly as the uninterrupted run would have.
///
/// ```
/// use perturb_nn::io::TrainState;
/// use perturb_nn::module::{Context, ContextState, Mode};
///
/// let mut ctx = Context::training(42);
/// ctx.next_seed(); // one dropout mask drawn
/// let at = TrainState { step: 1, epoch: 0, rng: ctx.state().rng };
/// // Resuming: the context goes on from the same place in its random stream, so its next
/// // draw is the uninterrupted run's next draw (Context::training(seed) would start over).
/// let next = ctx.next_seed();
/// let mut resumed = Context::from_state(ContextState { mode: Mode::Training, rng: at.rng });
/// assert_eq!(resumed.next_seed(), next);
/// assert_ne!(Context::training(at.rng.seed).next_seed(), next); // the first draw again
/// assert_eq!(TrainState::default().rng.draws, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrainState {
    /// The optimiser updates (batches) taken so far.
    pub step: u64,
    /// The epochs completed so far.
    pub epoch: u64,
    /// The run's random stream: its seed (of the shuffles and the dropout masks) and how many
    /// draws were taken, as [`Context::state`](crate::module::Context::state) gives it, so that
    /// a resumed run takes the next draws rather than the first again.
    pub rng: RngState,
}

/// Step 0, epoch 0, seed 0, no draws.
impl Default for TrainState {
    fn default() -> Self {
        TrainState {
            step: 0,
            epoch: 0,
            rng: RngState { seed: 0, draws: 0 },
        }
    }
}

/// A training run's state, saved beside its model in one safetensors file: the optimiser's
/// state (by leaf path), the [`TrainState`] counters, the tensors that are not parameters
/// (as with [`save_with_extra`](super::save_with_extra)) and a [`Header`]. Written
/// atomically, so that a crash while saving leaves the previous checkpoint whole; read with
/// the same checks and errors as a model file, the optimiser's buffers checked against the
/// model's paths and shapes too.
///
/// In the file, the model's leaves are `model.PATH`, the optimiser's `optimizer.SLOT.PATH`,
/// the extra tensors `extra.NAME`; the counters are metadata entries `perturb.*`.
///
/// For a [`Module`](crate::module::Module): its [`architecture`](crate::module::Module::architecture)
/// as the header's, its [`buffers`](crate::module::Module::buffers) as `extra`, put back
/// after loading with [`load_buffers`](crate::module::Module::load_buffers).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::io::{Checkpoint, Header, TrainState};
/// use perturb_nn::optim::{Adam, Optimizer};
///
/// let dir = std::env::temp_dir().join(format!("perturb-doc-ckpt-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("run.ckpt.safetensors");
///
/// let mut model = vec![Tensor::vector(&[1.0_f64, -1.0])];
/// let mut opt = Adam::new(0.1);
/// opt.update(&mut model, &vec![Tensor::vector(&[0.5, 0.5])]).unwrap();
/// let saved = Checkpoint {
///     header: Header::new("vec 2"),
///     optimizer: opt.state(),
///     train: TrainState { step: 1, ..TrainState::default() },
///     extra: vec![],
/// };
/// saved.save(&path, &model).unwrap();
///
/// // Resume: a fresh model and optimiser, filled from the file.
/// let mut resumed = vec![Tensor::<f64>::zeros(&[2])];
/// let ckpt = Checkpoint::load(&path, &mut resumed, "vec 2").unwrap();
/// let mut opt2 = Adam::new(0.1);
/// opt2.load_state(ckpt.optimizer).unwrap();
/// assert_eq!(ckpt.train, saved.train);
/// assert_eq!(resumed[0].to_vec(), model[0].to_vec());
/// assert_eq!(opt2.steps(), 1);
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Checkpoint<T: Element> {
    /// The architecture and the caller's metadata entries.
    pub header: Header,
    /// The optimiser's state, from [`Optimizer::state`](crate::optim::Optimizer::state):
    /// its buffers must be keyed by the model's paths.
    pub optimizer: OptimizerState<T>,
    /// The counters.
    pub train: TrainState,
    /// Tensors that are not parameters, by name: a module's
    /// [`buffers`](crate::module::Module::buffers) (BatchNorm's running statistics), to put
    /// back with [`load_buffers`](crate::module::Module::load_buffers).
    pub extra: Vec<(String, Tensor<f64>)>,
}

const STEP: &str = "perturb.step";
const EPOCH: &str = "perturb.epoch";
const RNG_SEED: &str = "perturb.rng_seed";
const RNG_DRAWS: &str = "perturb.rng_draws";
const OPTIMIZER: &str = "perturb.optimizer";
const OPTIMIZER_STEPS: &str = "perturb.optimizer.steps";
const OPTIMIZER_SLOTS: &str = "perturb.optimizer.slots";

impl<T: Storable> Checkpoint<T> {
    /// Saves this checkpoint with `model` to `path`, atomically. An error, with nothing
    /// written, if the optimiser's buffers are not keyed by the model's paths with the
    /// model's shapes, a slot's name is empty or has a dot, a number is not finite, or a
    /// metadata entry uses one of perturb's names.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::io::{Checkpoint, Header, TrainState};
    /// use perturb_nn::optim::{Optimizer, Sgd};
    /// let path = std::env::temp_dir().join(format!("perturb-doc-ck-{}", std::process::id()));
    /// let mut opt = Sgd::new(0.1, 0.9, false);
    /// let mut other = vec![Tensor::vector(&[1.0_f64])];
    /// let grads = other.clone();
    /// opt.step(&mut other, &grads).unwrap();
    /// let ckpt = Checkpoint {
    ///     header: Header::new("m"),
    ///     optimizer: opt.state(), // keyed by "0"
    ///     train: TrainState::default(),
    ///     extra: vec![],
    /// };
    /// let model = (Tensor::vector(&[1.0_f64]),); // its leaf is "0" too
    /// ckpt.save(&path, &model).unwrap();
    /// let err = ckpt.save(&path, &vec![model.0.clone(); 2]).unwrap_err().to_string();
    /// assert!(err.contains("'velocity'") && err.contains("'1'"), "{err}");
    /// std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn save<X: Tree<Tensor<T>>>(
        &self,
        path: impl AsRef<Path>,
        model: &X,
    ) -> Result<(), FileError> {
        let path = path.as_ref();
        let file = shown(path);
        let invalid = |reason: String| FileError::Invalid {
            file: file.clone(),
            reason: format!("the optimiser's state does not fit the model: {reason}"),
        };
        let leaves = model.named_leaves();
        let state = &self.optimizer;
        for (slot, buffers) in &state.slots {
            if slot.is_empty() || slot.contains('.') {
                return Err(invalid(format!(
                    "the slot name '{slot}' is empty or has a dot"
                )));
            }
            for (leaf, t) in &leaves {
                match buffers.get(leaf) {
                    None => return Err(invalid(format!("'{slot}' has no buffer for '{leaf}'"))),
                    Some(b) if b.shape() != t.shape() => {
                        return Err(invalid(format!(
                            "'{slot}' of '{leaf}' has shape {:?}, the model's has {:?}",
                            b.shape(),
                            t.shape()
                        )))
                    }
                    Some(_) => {}
                }
            }
            if buffers.len() != leaves.len() {
                let stray = buffers
                    .keys()
                    .find(|k| !leaves.iter().any(|(l, _)| l == *k));
                return Err(invalid(format!(
                    "'{slot}' has a buffer for '{}', which the model lacks",
                    stray.map_or("", String::as_str)
                )));
            }
        }
        let mut metadata = self.header.to_metadata::<T>(&file, CHECKPOINT_FORMAT)?;
        let slots: Vec<&String> = state.slots.keys().collect();
        for (key, value) in [
            (STEP, self.train.step.to_string()),
            (EPOCH, self.train.epoch.to_string()),
            (RNG_SEED, self.train.rng.seed.to_string()),
            (RNG_DRAWS, self.train.rng.draws.to_string()),
            (OPTIMIZER, state.kind.clone()),
            (OPTIMIZER_STEPS, state.steps.to_string()),
            // A list of strings always serialises.
            (
                OPTIMIZER_SLOTS,
                serde_json::to_string(&slots).unwrap_or_default(),
            ),
        ] {
            metadata.insert(key.into(), value);
        }
        let mut tensors = named("model", model);
        for (slot, buffers) in &state.slots {
            // In the model's leaf order (all present: checked above).
            let prefix = joined("optimizer", slot);
            let by_leaf = leaves.iter().filter_map(|(leaf, _)| {
                let b = buffers.get(leaf)?;
                Some((joined(&prefix, leaf), b as &dyn Stored))
            });
            tensors.extend(by_leaf);
        }
        tensors.extend(extra_entries("extra", &self.extra, &mut metadata));
        write_atomic(path, &super::format::encode(&file, &metadata, &tensors)?)
    }

    /// Fills `model` (of the expected structure and shapes, typically freshly constructed)
    /// from the checkpoint `path`, which must be of `architecture` and hold `T`s, and returns
    /// the rest of the checkpoint. Every way the file can be wrong is an error, as for
    /// [`load_into`](super::load_into), and leaves `model` unchanged.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::io::{self, Checkpoint, FileError, Header};
    /// let dir = std::env::temp_dir().join(format!("perturb-doc-ckl-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("model.safetensors");
    /// io::save(&path, &vec![Tensor::vector(&[1.0_f64])], &Header::new("m")).unwrap();
    /// // A model file is not a checkpoint.
    /// let err = Checkpoint::load(&path, &mut vec![Tensor::vector(&[0.0_f64])], "m");
    /// assert!(matches!(err, Err(FileError::NotPerturb { .. })));
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn load<X: Tree<Tensor<T>>>(
        path: impl AsRef<Path>,
        model: &mut X,
        architecture: &str,
    ) -> Result<Self, FileError> {
        let (opened, header, extra) = open::<T>(path.as_ref(), CHECKPOINT_FORMAT, architecture)?;
        let file = opened.file.clone();
        let entry = |key: &str| {
            opened.metadata.get(key).ok_or_else(|| FileError::Invalid {
                file: file.clone(),
                reason: format!("the metadata has no '{key}' entry"),
            })
        };
        let number = |key: &str| {
            entry(key)?.parse::<u64>().map_err(|_| FileError::Invalid {
                file: file.clone(),
                reason: format!("the metadata entry '{key}' is not a whole number"),
            })
        };
        let train = TrainState {
            step: number(STEP)?,
            epoch: number(EPOCH)?,
            rng: RngState {
                seed: number(RNG_SEED)?,
                draws: number(RNG_DRAWS)?,
            },
        };
        let kind = entry(OPTIMIZER)?.clone();
        let steps = number(OPTIMIZER_STEPS)?;
        let slots: Vec<String> =
            serde_json::from_str(entry(OPTIMIZER_SLOTS)?).map_err(|e| FileError::Invalid {
                file: file.clone(),
                reason: format!("the metadata entry {OPTIMIZER_SLOTS} is not a list of names: {e}"),
            })?;
        let mut expected = Expected::new(&opened);
        expected.tree("model", model)?;
        for slot in &slots {
            expected.tree(&joined("optimizer", slot), model)?;
        }
        expected.extra("extra", &extra, &Beside::Any)?;
        expected.nothing_else()?;
        let contents = opened.read()?;
        let leaves = leaves_of(&contents, "model", model)?;
        let mut optimizer = OptimizerState {
            kind,
            steps,
            slots: BTreeMap::new(),
        };
        for slot in slots {
            let buffers = leaves_of(&contents, &joined("optimizer", &slot), model)?;
            let by_path = model.paths().into_iter().zip(buffers).collect();
            optimizer.slots.insert(slot, by_path);
        }
        let extra = extra_of(&contents, "extra", extra)?;
        fill(model, leaves);
        Ok(Checkpoint {
            header,
            optimizer,
            train,
            extra,
        })
    }
}
