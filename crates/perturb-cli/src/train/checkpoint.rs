//! Checkpoints of a training run (`--checkpoint-every N`) and resuming one (`--resume DIR`).
//!
//! A checkpoint records, besides the weights and the optimiser's state, the run it belongs to:
//! the options that decide the weights (data, task, model, optimiser, learning rate, batches,
//! split, seed) and a fingerprint of the data themselves. `--resume` refuses, before training,
//! a checkpoint of another run and names each difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb::tensor::Tensor;
use perturb::tree::Tree;
use perturb_nn::io::{self, Checkpoint, Header, TrainState};
use perturb_nn::module::RngState;
use perturb_nn::optim::Optimizer;

use super::fit::{batch_rows, optimizer, Best, History, Progress};
use super::setup::Setup;
use super::{Args, OptimizerKind};

/// The folder of the checkpoints in a run's output folder.
pub const FOLDER: &str = "checkpoint";
/// The checkpoint's file in its folder (replaced, atomically, at each checkpoint).
const FILE: &str = "checkpoint.safetensors";
/// The checkpoint's own metadata entries (besides the configuration's `run.*`).
const FIRST_LOSS: &str = "first_loss";
const BEST_LOSS: &str = "best_loss";
const BEST_STEP: &str = "best_step";
const HISTORY_TRAIN: &str = "history.train";
const HISTORY_TEST: &str = "history.test";

/// The options of a run that decide its weights, by the name of their command-line option
/// without the dashes (`"data"` is `--data`), and the fingerprint of the data (which has no
/// option); differences are reported in the order of the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunConfig(BTreeMap<String, String>);

/// The key of the data's fingerprint in a [`RunConfig`].
const FINGERPRINT: &str = "data-fingerprint";
/// The key of `--data` in a [`RunConfig`].
const DATA: &str = "data";

impl RunConfig {
    /// A configuration from (option name without the dashes, value) pairs and the data.
    pub(super) fn new<'a>(
        options: impl IntoIterator<Item = (&'a str, String)>,
        data: &[&Tensor<f64>],
    ) -> RunConfig {
        let mut map: BTreeMap<String, String> = options
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        map.insert(FINGERPRINT.into(), fingerprint(data));
        RunConfig(map)
    }

    /// The configuration as metadata entries, each key prefixed with `run.`.
    pub(super) fn to_metadata(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.0.iter().map(|(k, v)| (format!("run.{k}"), v.clone()))
    }

    /// The configuration in metadata written by [`RunConfig::to_metadata`] (other entries are
    /// ignored).
    pub(super) fn from_metadata<'a>(
        metadata: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> RunConfig {
        RunConfig(
            metadata
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("run.")?.to_string(), v.clone())))
                .collect(),
        )
    }

    /// Each way this run (`self`) differs from the checkpoint's (`saved`), in words: `--lr 0.05
    /// in the checkpoint, 0.01 here`. Empty where they agree.
    pub(super) fn differences(&self, saved: &RunConfig) -> Vec<String> {
        self.differences_from(saved, "in the checkpoint", "here", "the checkpoint's")
    }

    /// Each way `self` differs from `other`, in words: `--lr 0.05 {there}, 0.01 {here}`; the
    /// data's fingerprint as "the data differ from {theirs}".
    ///
    /// `--data` is not compared where the fingerprints agree: the fingerprint identifies the
    /// data themselves, and the same file named two ways (`./b.csv` and `b.csv`, or from
    /// another folder) is the same run.
    pub(super) fn differences_from(
        &self,
        other: &RunConfig,
        there: &str,
        here: &str,
        theirs: &str,
    ) -> Vec<String> {
        let keys: std::collections::BTreeSet<&String> =
            self.0.keys().chain(other.0.keys()).collect();
        let shown = |v: Option<&String>| match v.map(String::as_str) {
            None | Some("") => "(none)".to_string(),
            Some(v) => crate::apply::shown(v),
        };
        let same_data =
            self.0.contains_key(FINGERPRINT) && self.0.get(FINGERPRINT) == other.0.get(FINGERPRINT);
        keys.into_iter()
            .filter(|k| self.0.get(*k) != other.0.get(*k))
            .filter(|k| !(same_data && k.as_str() == DATA))
            .map(|k| {
                if k == FINGERPRINT {
                    format!(
                        "the data differ from {theirs} (the same --data, other rows or columns)"
                    )
                } else {
                    format!(
                        "--{k} {} {there}, {} {here}",
                        shown(other.0.get(k)),
                        shown(self.0.get(k))
                    )
                }
            })
            .collect()
    }

    /// This configuration with more options (which a checkpoint does not record).
    pub(super) fn with_options<'a>(
        &self,
        options: impl IntoIterator<Item = (&'a str, String)>,
    ) -> RunConfig {
        let mut map = self.0.clone();
        map.extend(options.into_iter().map(|(k, v)| (k.to_string(), v)));
        RunConfig(map)
    }
}

/// Whether the metadata of a file (of the library's formats) is a checkpoint's written by
/// [`save`]: it records a run.
pub(crate) fn records_a_run(metadata: &BTreeMap<String, String>) -> bool {
    !RunConfig::from_metadata(metadata).0.is_empty()
}

/// Writes the state of the run to `dir`/checkpoint.safetensors with the library's checkpoint
/// (atomically): the weights, the optimiser's state and the step and epoch counters; the best
/// weights so far as extra tensors (`best.PATH`); in the metadata the run's configuration
/// (`run.*`), the first loss, the best loss and its step, and the loss history.
pub(super) fn save(
    dir: &Path,
    args: &Args,
    setup: &Setup,
    progress: &Progress,
) -> Result<(), String> {
    let net = setup
        .model
        .with_params(&progress.params)
        .map_err(|e| e.to_string())?;
    let mut header = Header::new(net.describe())
        .with(FIRST_LOSS, progress.first_loss.to_string())
        .with(HISTORY_TRAIN, points(&progress.history.train))
        .with(HISTORY_TEST, points(&progress.history.test));
    header.metadata.extend(setup.config.to_metadata());
    let mut extra = Vec::new();
    if let Some(best) = &progress.best {
        header = header
            .with(BEST_LOSS, best.loss.to_string())
            .with(BEST_STEP, best.step.to_string());
        let names = param_names(setup);
        extra.extend(
            names
                .iter()
                .zip(&best.params)
                .map(|(n, t)| (format!("best.{n}"), t.clone())),
        );
    }
    let checkpoint = Checkpoint {
        header,
        optimizer: progress.optimizer.state(),
        train: TrainState {
            step: progress.step as u64,
            epoch: progress.epochs as u64,
            // The batches are drawn from the seed and the epoch: no stream to carry on.
            rng: RngState {
                seed: args.seed,
                draws: 0,
            },
        },
        extra,
    };
    checkpoint
        .save(dir.join(FILE), net.layers())
        .map_err(|e| e.to_string())
}

/// Creates the checkpoint folder `dir` and checks, before training, that a checkpoint can be
/// written there.
pub(super) fn prepare(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "--checkpoint-every: {shown} is a file; the checkpoints go to a folder of that name"
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--checkpoint-every: cannot create {shown}: {e}"))?;
    if dir.join(FILE).is_dir() {
        return Err(format!(
            "--checkpoint-every: {} is a folder; the run would write a file there",
            dir.join(FILE).display()
        ));
    }
    let probe = dir.join(".write-probe");
    crate::out_dir::write_bytes(&probe, b"perturb")
        .and_then(|()| std::fs::remove_file(&probe).map_err(|e| e.to_string()))
        .map_err(|e| format!("--checkpoint-every: cannot write to {shown}: {e}"))
}

/// Reads the checkpoint in `dir` (`--resume DIR`) for this run, checked before training: it
/// must be a whole checkpoint of this run's data and options (each difference is named), with
/// epochs left to do.
pub(super) fn load(dir: &Path, args: &Args, setup: &Setup) -> Result<Progress, String> {
    let shown = dir.display();
    let file = checkpoint_file(dir)?;
    let fail = |e: &dyn std::fmt::Display| format!("--resume {shown}: {e}");
    let header = io::read_header(&file).map_err(|e| fail(&e))?;
    if !records_a_run(&header.metadata) {
        return Err(fail(&format!(
            "{} is not a checkpoint of perturb train (a model file?): it records no run",
            file.display()
        )));
    }
    let differences = setup
        .config
        .differences(&RunConfig::from_metadata(&header.metadata));
    if !differences.is_empty() {
        return Err(fail(&format!(
            "the checkpoint is of another run: {}. A resumed run takes the options of the run \
             it continues; only --epochs, --out and --checkpoint-every may change",
            differences.join("; ")
        )));
    }
    let mut layers = setup.model.layers().clone();
    let checkpoint = Checkpoint::<f64>::load(&file, &mut layers, &setup.model.describe())
        .map_err(|e| fail(&e))?;
    let epochs = checkpoint.train.epoch as usize;
    if epochs >= args.epoch_count() {
        return Err(fail(&format!(
            "the checkpoint has done {epochs} epochs, and --epochs {} leaves none to do; \
             --epochs counts all the epochs of the run, ask for more than {epochs}",
            args.epoch_count()
        )));
    }
    let meta = &checkpoint.header.metadata;
    let entry = |key: &str| -> Result<&String, String> {
        meta.get(key)
            .ok_or_else(|| fail(&format!("{}: the metadata has no '{key}'", file.display())))
    };
    let number = |key: &str| -> Result<f64, String> {
        entry(key)?.parse().map_err(|_| {
            fail(&format!(
                "{}: the metadata entry {key} is not a number",
                file.display()
            ))
        })
    };
    let best = match meta.get(BEST_LOSS) {
        None => None,
        Some(_) => {
            let by_name: BTreeMap<&str, &Tensor<f64>> = checkpoint
                .extra
                .iter()
                .map(|(n, t)| (n.as_str(), t))
                .collect();
            let params = setup
                .model
                .shapes()
                .into_iter()
                .map(|(n, shape)| {
                    let best = by_name.get(format!("best.{n}").as_str()).ok_or_else(|| {
                        fail(&format!(
                            "{}: the best weights lack 'best.{n}'",
                            file.display()
                        ))
                    })?;
                    // (Extra tensors have any shape in the file: the model's is checked here.)
                    if best.shape() != shape {
                        return Err(fail(&format!(
                            "{}: the best weights' 'best.{n}' has shape {:?}, the model's {shape:?}",
                            file.display(),
                            best.shape()
                        )));
                    }
                    Ok((*best).clone())
                })
                .collect::<Result<_, _>>()?;
            let step = entry(BEST_STEP)?.parse().map_err(|_| {
                fail(&format!(
                    "{}: the metadata entry {BEST_STEP} is not a whole number",
                    file.display()
                ))
            })?;
            Some(Best {
                loss: number(BEST_LOSS)?,
                step,
                params,
            })
        }
    };
    let history = |key: &str| -> Result<Vec<(f64, f64)>, String> {
        parse_points(entry(key)?).ok_or_else(|| {
            fail(&format!(
                "{}: the metadata entry {key} is not a list of epoch:loss",
                file.display()
            ))
        })
    };
    let optimizer_steps = checkpoint.optimizer.steps;
    let mut optimizer = optimizer(args.optimizer_kind(), setup.lr);
    optimizer
        .load_state(checkpoint.optimizer)
        .map_err(|e| fail(&format!("{}: the optimiser's state: {e}", file.display())))?;
    let progress = Progress {
        epochs,
        step: usize::try_from(checkpoint.train.step).unwrap_or(usize::MAX),
        params: layers.flatten(),
        optimizer,
        history: History {
            train: history(HISTORY_TRAIN)?,
            test: history(HISTORY_TEST)?,
        },
        first_loss: number(FIRST_LOSS)?,
        best,
    };
    let batch = batch_rows(args, setup.train.len());
    let counted = match args.optimizer_kind() {
        // Gradient descent keeps no state, no count either.
        OptimizerKind::Gd => 0,
        OptimizerKind::Sgd | OptimizerKind::Adam => progress.step as u64,
    };
    agree(
        &progress,
        setup.train.len().div_ceil(batch),
        optimizer_steps,
        counted,
    )
    .map_err(|why| {
        fail(&format!(
            "{}: the checkpoint's records disagree: {why} (a damaged or edited file?)",
            file.display()
        ))
    })?;
    Ok(progress)
}

/// Checks that a checkpoint's counters and records agree with one another, as those of every
/// run of `perturb train` do, which resuming relies on: the steps are the epochs done times
/// `steps_per_epoch`, the optimiser counted `counted` of them (it counted `optimizer_steps`),
/// the loss history has a point per epoch done and none ahead, the best weights are of a
/// step taken, the best loss is finite and the first not NaN. A file that disagrees was
/// damaged or edited; a run resumed from it would not be the run it continues (other Adam
/// steps, a wrapped step count, epochs done twice), silently. The reason names the entry.
fn agree(
    progress: &Progress,
    steps_per_epoch: usize,
    optimizer_steps: u64,
    counted: u64,
) -> Result<(), String> {
    let (epochs, step) = (progress.epochs, progress.step);
    let expected = epochs.checked_mul(steps_per_epoch);
    if expected != Some(step) {
        return Err(format!(
            "perturb.step is {step}, but {epochs} epochs of {steps_per_epoch} steps make {}",
            expected.map_or("more than can be counted".to_string(), |n| n.to_string())
        ));
    }
    if optimizer_steps != counted {
        return Err(format!(
            "perturb.optimizer.steps is {optimizer_steps}, but the optimiser takes {counted} \
             steps in {step} steps of the run"
        ));
    }
    let whole = (1..=epochs).map(|e| e as f64);
    if !progress.history.train.iter().map(|p| p.0).eq(whole) {
        return Err(format!(
            "{HISTORY_TRAIN} is not one loss for each of the epochs 1 to {epochs}"
        ));
    }
    let test = &progress.history.test;
    let ahead = |e: f64| !(e >= 1.0 && e <= epochs as f64 && e.fract() == 0.0);
    if test.iter().any(|p| ahead(p.0)) || test.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(format!(
            "{HISTORY_TEST} is not a loss for some of the epochs 1 to {epochs}, in order"
        ));
    }
    if let Some(best) = &progress.best {
        if best.step > step {
            return Err(format!(
                "{BEST_STEP} is {}, after the {step} steps taken",
                best.step
            ));
        }
        if !best.loss.is_finite() {
            return Err(format!("{BEST_LOSS} is {}, not a finite loss", best.loss));
        }
    }
    // (An infinite first loss is possible where the batches are smaller than the data; a
    // NaN is not, and would make every run "worse than it started".)
    if progress.first_loss.is_nan() {
        return Err(format!(
            "{FIRST_LOSS} is NaN, but a run whose first loss is NaN stops at its first step, \
             before any checkpoint"
        ));
    }
    Ok(())
}

/// Points `(epoch, loss)` as text: `1:0.69,2:0.52` (each number in its shortest exact form; a
/// loss may be inf or NaN).
fn points(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(e, l)| format!("{e}:{l}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The points of [`points`], `None` where the text is not such a list.
fn parse_points(text: &str) -> Option<Vec<(f64, f64)>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(',')
        .map(|p| {
            let (e, l) = p.split_once(':')?;
            Some((e.parse().ok()?, l.parse().ok()?))
        })
        .collect()
}

/// The names of the network's parameters, which are also the optimiser's paths for them.
pub(super) fn param_names(setup: &Setup) -> Vec<String> {
    setup.model.shapes().into_iter().map(|(n, _)| n).collect()
}

/// The checkpoint file of the folder `dir` given to `--resume`; `dir` may also be a run's
/// output folder with a checkpoint folder in it.
fn checkpoint_file(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if !dir.exists() {
        return Err(format!("--resume {shown}: no such folder"));
    }
    if !dir.is_dir() {
        return Err(format!(
            "--resume {shown} is a file; give the checkpoint folder (OUT/{FOLDER} of a run with \
             --checkpoint-every)"
        ));
    }
    for file in [dir.join(FILE), dir.join(FOLDER).join(FILE)] {
        if file.is_file() {
            return Ok(file);
        }
    }
    Err(format!(
        "--resume {shown}: no {FILE} in the folder (nor in {FOLDER}/ under it): a run writes \
         one with --checkpoint-every N"
    ))
}

/// A fingerprint of tensors (their shapes and values): FNV-1a over the bytes, in hex. Not a
/// cryptographic hash: it tells a changed data file from the same one, not an adversary.
fn fingerprint(data: &[&Tensor<f64>]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for t in data {
        feed(&(t.shape().len() as u64).to_le_bytes());
        for &d in t.shape() {
            feed(&(d as u64).to_le_bytes());
        }
        for v in t.as_slice() {
            feed(&v.to_bits().to_le_bytes());
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lr: &str, x: &Tensor<f64>) -> RunConfig {
        RunConfig::new(
            [
                ("lr", lr.to_string()),
                ("seed", "0".to_string()),
                ("target", String::new()),
            ],
            &[x],
        )
    }

    #[test]
    fn a_configuration_round_trips_through_metadata_and_names_its_differences() {
        let x = Tensor::vector(&[1.0, 2.0]);
        let a = config("0.05", &x);
        let metadata: BTreeMap<String, String> = a
            .to_metadata()
            .chain([("format".to_string(), "other".to_string())])
            .collect();
        assert_eq!(RunConfig::from_metadata(&metadata), a);
        assert!(a.differences(&a).is_empty());
        let b = config("0.01", &x);
        assert_eq!(
            b.differences(&a),
            ["--lr 0.05 in the checkpoint, 0.01 here"]
        );
        // Other data, the same options: only the data are named.
        let c = config("0.05", &Tensor::vector(&[1.0, 2.5]));
        let diff = c.differences(&a);
        assert_eq!(diff.len(), 1);
        assert!(diff[0].starts_with("the data differ"), "{diff:?}");
        // The same data named another way: no difference; other data named another way: both.
        let mut renamed = a.clone();
        renamed.0.insert(DATA.into(), "./b.csv".into());
        let mut named = a.clone();
        named.0.insert(DATA.into(), "b.csv".into());
        assert!(renamed.differences(&named).is_empty());
        let mut other = c.clone();
        other.0.insert(DATA.into(), "./b.csv".into());
        assert_eq!(
            other.differences(&named)[0],
            "--data b.csv in the checkpoint, ./b.csv here"
        );
        // An option the checkpoint lacks (an older one) counts as a difference.
        let mut d = a.clone();
        d.0.insert("model".into(), "cnn".into());
        assert_eq!(
            d.differences(&a),
            ["--model (none) in the checkpoint, cnn here"]
        );
    }

    #[test]
    fn the_fingerprint_sees_shapes_and_single_bits() {
        let x = Tensor::vector(&[1.0, 2.0, 3.0, 4.0]);
        let same = Tensor::vector(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(fingerprint(&[&x]), fingerprint(&[&same]));
        let reshaped = x.reshape(&[2, 2]).unwrap();
        assert_ne!(fingerprint(&[&x]), fingerprint(&[&reshaped]));
        let nudged = Tensor::vector(&[1.0, 2.0, 3.0, f64::from_bits(4.0f64.to_bits() + 1)]);
        assert_ne!(fingerprint(&[&x]), fingerprint(&[&nudged]));
        // FNV-1a of no bytes is its offset basis.
        assert_eq!(fingerprint(&[]), "cbf29ce484222325");
    }

    #[test]
    fn loss_histories_round_trip_exactly_through_text() {
        let history = [(1.0, 0.1 + 0.2), (2.0, f64::INFINITY), (3.0, 1e-300)];
        let back = parse_points(&points(&history)).unwrap();
        assert_eq!(back.len(), 3);
        for (a, b) in history.iter().zip(&back) {
            assert_eq!(
                (a.0.to_bits(), a.1.to_bits()),
                (b.0.to_bits(), b.1.to_bits())
            );
        }
        assert!(parse_points(&points(&[(1.0, f64::NAN)])).unwrap()[0]
            .1
            .is_nan());
        assert_eq!(parse_points(""), Some(vec![]));
        assert_eq!(parse_points("1:0.5,2"), None);
        assert_eq!(parse_points("1:x"), None);
    }
}
