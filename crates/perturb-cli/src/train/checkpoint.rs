//! Checkpoints of a training run (`--checkpoint-every N`) and resuming one (`--resume DIR`).
//!
//! A checkpoint records, besides the weights and the optimiser's state, the run it belongs to:
//! the options that decide the weights (data, task, model, optimiser, learning rate, batches,
//! split, seed) and a fingerprint of the data themselves. `--resume` refuses, before training,
//! a checkpoint of another run and names each difference.

use std::collections::BTreeMap;

use perturb::tensor::Tensor;

/// The options of a run that decide its weights, in the order they are reported, with the
/// command-line option each comes from (`"data"` is `--data`; the fingerprint of the data has
/// no option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RunConfig(BTreeMap<String, String>);

/// The key of the data's fingerprint in a [`RunConfig`].
const FINGERPRINT: &str = "data-fingerprint";

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
        let keys: std::collections::BTreeSet<&String> =
            self.0.keys().chain(saved.0.keys()).collect();
        let shown = |v: Option<&String>| match v.map(String::as_str) {
            None | Some("") => "(none)".to_string(),
            Some(v) => crate::apply::shown(v),
        };
        keys.into_iter()
            .filter(|k| self.0.get(*k) != saved.0.get(*k))
            .map(|k| {
                if k == FINGERPRINT {
                    "the data differ from the checkpoint's (the same --data, other rows or \
                     columns)"
                        .to_string()
                } else {
                    format!(
                        "--{k} {} in the checkpoint, {} here",
                        shown(saved.0.get(k)),
                        shown(self.0.get(k))
                    )
                }
            })
            .collect()
    }
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
}
