//! Model files and checkpoints: exact round trips (bit for bit, byte for byte), the errors for
//! every way a file can be wrong (with the model unchanged), atomic writes, and hostile bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb::tensor::{Array, Tensor};
use perturb::Tree;
use perturb_nn::io::{
    self, Checkpoint, FileError, Header, Storable, TrainState, CHECKPOINT_FORMAT, MODEL_FORMAT,
};
use perturb_nn::module::RngState;
use perturb_nn::optim::{Adam, Optimizer, Sgd};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("perturb-model-files-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A layer as a user writes it.
#[derive(Tree, Clone, Debug)]
struct Layer<A> {
    weight: A,
    bias: Option<A>,
}

/// Two layers and a map: leaves `0.0.weight`, `0.0.bias`, `0.1.weight`, `1.scale`.
type Net<T> = (Vec<Layer<Tensor<T>>>, BTreeMap<String, Tensor<T>>);

/// Values that a lossy format would change: -0.0, the smallest subnormal, the largest and
/// smallest normal numbers, numbers with all mantissa bits set.
fn special<T: Storable>() -> Vec<T> {
    let f = |x: f64| T::from_f64(x).unwrap();
    vec![
        f(-0.0),
        T::min_positive_value() / f(2.0),
        T::min_positive_value() * T::epsilon(), // the smallest subnormal
        T::max_value(),
        T::min_value(),
        T::min_positive_value(),
        f(1.0) / f(3.0),
        f(-0.1),
    ]
}

/// A net whose leaves hold `special` values and then `start`, `start + 1`, ...
fn net<T: Storable>(start: f64) -> Net<T> {
    let mut k = start;
    let mut t = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        let mut data = special::<T>();
        data.truncate(n);
        while data.len() < n {
            data.push(T::from_f64(k).unwrap());
            k += 1.0;
        }
        Tensor::from_vec(data, shape).unwrap()
    };
    let layers = vec![
        Layer {
            weight: t(&[3, 4]),
            bias: Some(t(&[4])),
        },
        Layer {
            weight: t(&[4, 2]),
            bias: None,
        },
    ];
    let mut map = BTreeMap::new();
    map.insert("scale".to_string(), t(&[]));
    (layers, map)
}

/// A net of the same structure, all zeros: what a loader fills.
fn template<T: Storable>() -> Net<T> {
    net::<T>(0.0).map(|t| Tensor::zeros(t.shape()))
}

fn bits<T: Storable>(tree: &Net<T>) -> Vec<Vec<u64>> {
    let leaf = |t: &Tensor<T>| -> Vec<u64> {
        let mut bytes = Vec::new();
        t.as_slice().iter().for_each(|x| x.write_le(&mut bytes));
        bytes
            .chunks(T::SIZE)
            .map(|c| c.iter().fold(0, |a, &b| a << 8 | b as u64))
            .collect()
    };
    tree.leaves().into_iter().map(leaf).collect()
}

fn round_trip<T: Storable>(name: &str) {
    let dir = scratch(name);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let model = net::<T>(1.0);
    let header = Header::new("net 3-4-2").with("note", "a \"quoted\", comma'd note");
    io::save(&a, &model, &header).unwrap();
    let mut loaded = template::<T>();
    assert_ne!(bits(&loaded), bits(&model));
    let back = io::load_into(&mut loaded, &a, "net 3-4-2").unwrap();
    assert_eq!(back, header);
    assert_eq!(
        bits(&loaded),
        bits(&model),
        "{name}: the numbers, bit for bit"
    );
    assert_eq!(
        loaded.0[0].weight.as_slice()[0].to_f64().unwrap().to_bits(),
        (-0.0f64).to_bits()
    );
    io::save(&b, &loaded, &back).unwrap();
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "{name}: the bytes"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn save_load_save_is_exact_for_f64_and_f32() {
    round_trip::<f64>("exact64");
    round_trip::<f32>("exact32");
}

#[test]
fn a_model_file_is_plain_safetensors_named_by_the_tree_paths() {
    let dir = scratch("plain");
    let path = dir.join("m.safetensors");
    let model = net::<f64>(1.0);
    io::save(
        &path,
        &model,
        &Header::new("net").with("task", "regression"),
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Read with the safetensors crate itself: names, shapes, values, metadata.
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = file.names().into_iter().cloned().collect();
    names.sort();
    let mut paths = model.paths();
    paths.sort();
    assert_eq!(names, paths);
    assert_eq!(paths, ["0.0.bias", "0.0.weight", "0.1.weight", "1.scale"]);
    let w = file.tensor("0.1.weight").unwrap();
    assert_eq!(w.shape(), [4, 2]);
    let first = f64::from_le_bytes(w.data()[..8].try_into().unwrap());
    assert_eq!(first, model.0[1].weight.as_slice()[0]);
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["format"], MODEL_FORMAT);
    assert_eq!(meta["architecture"], "net");
    assert_eq!(meta["dtype"], "F64");
    assert_eq!(meta["task"], "regression");
    assert_eq!(meta.len(), 4);
    std::fs::remove_dir_all(&dir).ok();
}

/// The file's JSON header.
fn header_of(bytes: &[u8]) -> Value {
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

/// Loads `bytes` (written to a file) into a fresh template; on an error, checks that the
/// template is unchanged and that the message is one line naming the file.
fn load_bytes(dir: &Path, bytes: &[u8]) -> Result<Net<f64>, FileError> {
    let path = dir.join("edited.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let mut model = template::<f64>();
    match io::load_into(&mut model, &path, "net") {
        Ok(_) => Ok(model),
        Err(e) => {
            assert_eq!(
                bits(&model),
                bits(&template::<f64>()),
                "changed on an error: {e}"
            );
            let text = e.to_string();
            assert!(
                text.contains("edited.safetensors") && !text.contains('\n'),
                "{text}"
            );
            Err(e)
        }
    }
}

fn valid_file(dir: &Path) -> Vec<u8> {
    let path = dir.join("valid.safetensors");
    io::save(&path, &net::<f64>(1.0), &Header::new("net")).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn every_way_a_file_can_be_wrong_is_a_clear_error_and_the_model_is_unchanged() {
    let dir = scratch("errors");
    let bytes = valid_file(&dir);
    assert!(load_bytes(&dir, &bytes).is_ok());
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut h = header_of(&bytes);
        f(&mut h);
        with_header(&bytes, &h)
    };
    let msg = |r: Result<Net<f64>, FileError>| r.unwrap_err().to_string();

    // Another architecture: both names.
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| h["__metadata__"]["architecture"] = json!("cnn")),
    ));
    assert!(err.contains("'cnn'") && err.contains("'net'"), "{err}");
    // A tensor missing: its path.
    let mut fewer = template::<f64>();
    fewer.0[0].bias = None;
    let fewer_path = dir.join("fewer.safetensors");
    io::save(&fewer_path, &fewer, &Header::new("net")).unwrap();
    let err = msg(load_bytes(&dir, &std::fs::read(&fewer_path).unwrap()));
    assert!(err.contains("the tensor '0.0.bias' is missing"), "{err}");
    // A tensor too many.
    let mut more = net::<f64>(1.0);
    more.1.insert("shift".into(), Tensor::vector(&[1.0]));
    io::save(&fewer_path, &more, &Header::new("net")).unwrap();
    let err = msg(load_bytes(&dir, &std::fs::read(&fewer_path).unwrap()));
    assert!(
        err.contains("a tensor '1.shift' that the model does not"),
        "{err}"
    );
    // A wrong shape: the path and both shapes.
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| h["0.1.weight"]["shape"] = json!([2, 4])),
    ));
    assert!(
        err.contains("'0.1.weight' has shape [2, 4], the model's has [4, 2]"),
        "{err}"
    );
    // A wrong type: f64 numbers for an f32 model.
    let path = dir.join("valid.safetensors");
    let mut as_f32 = template::<f32>();
    let err = io::load_into(&mut as_f32, &path, "net").unwrap_err();
    assert!(matches!(err, FileError::Dtype { .. }), "{err}");
    assert!(
        err.to_string().contains("holds F64 numbers, expected F32"),
        "{err}"
    );
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| h["1.scale"]["dtype"] = json!("F32")),
    ));
    assert!(
        err.contains("'1.scale' holds F32 numbers, expected F64"),
        "{err}"
    );
    // Truncated anywhere: in the length, the header, the data.
    for cut in [0, 5, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        let err = msg(load_bytes(&dir, &bytes[..cut]));
        assert!(
            err.contains("not a valid safetensors file"),
            "cut at {cut}: {err}"
        );
    }
    // Corrupt: bytes after the end, a header that is not JSON, overlapping byte ranges.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(msg(load_bytes(&dir, &longer)).contains("after the header"));
    let mut garbled = bytes.clone();
    garbled[9] = b'!';
    assert!(msg(load_bytes(&dir, &garbled)).contains("not the JSON"));
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| h["1.scale"]["data_offsets"] = json!([0, 8])),
    ));
    assert!(err.contains("not a valid safetensors file"), "{err}");
    // Not a perturb file: no format, another format, a checkpoint.
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| drop(h["__metadata__"].as_object_mut().unwrap().remove("format"))),
    ));
    assert!(err.contains("no 'format' entry"), "{err}");
    let err = msg(load_bytes(
        &dir,
        &edit(&|h| h["__metadata__"]["format"] = json!("perturb-mlp-1")),
    ));
    assert!(
        err.contains("'perturb-mlp-1'") && err.contains(MODEL_FORMAT),
        "{err}"
    );
    let plain = safetensors::serialize(
        Vec::<(String, safetensors::tensor::TensorView)>::new(),
        &None,
    )
    .unwrap();
    assert!(msg(load_bytes(&dir, &plain)).contains("no 'format' entry"));
    // Numbers that are not finite: the path and the index.
    let mut nan = bytes.clone();
    let end = nan.len();
    nan[end - 8..].copy_from_slice(&f64::NAN.to_le_bytes());
    let err = msg(load_bytes(&dir, &nan));
    let last = header_of(&bytes)
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .max_by_key(|(_, v)| v["data_offsets"][1].as_u64())
        .map(|(k, _)| k.clone())
        .unwrap();
    assert!(
        err.contains(&format!("'{last}' holds NaN at index")),
        "{err}"
    );
    nan[end - 8..].copy_from_slice(&f64::NEG_INFINITY.to_le_bytes());
    assert!(msg(load_bytes(&dir, &nan)).contains("holds -inf"));
    // A folder, a missing file, /dev/zero (read only as far as its header says).
    let mut model = template::<f64>();
    assert!(io::load_into(&mut model, &dir, "net")
        .unwrap_err()
        .to_string()
        .contains("folder"));
    let err = io::load_into(&mut model, dir.join("none"), "net").unwrap_err();
    assert!(matches!(err, FileError::Io { .. }), "{err}");
    if Path::new("/dev/zero").exists() {
        let err = io::load_into(&mut model, "/dev/zero", "net").unwrap_err();
        assert!(matches!(err, FileError::Corrupt { .. }), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_header_too_long_is_refused_before_it_is_read() {
    let dir = scratch("long");
    let mut bytes = valid_file(&dir);
    bytes[..8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let err = load_bytes(&dir, &bytes).unwrap_err().to_string();
    assert!(
        err.contains("more than the 100000000 a header may have"),
        "{err}"
    );
    // Sizes that would need exabytes: refused from the header, before any data is read.
    let mut h = header_of(&valid_file(&dir));
    h["1.scale"]["shape"] = json!([u64::MAX / 2, 4]);
    let err = load_bytes(&dir, &with_header(&valid_file(&dir), &h)).unwrap_err();
    assert!(matches!(err, FileError::Shape { .. }), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn saving_refuses_what_could_not_be_loaded() {
    let dir = scratch("refuse");
    let path = dir.join("m.safetensors");
    let mut model = net::<f64>(1.0);
    model
        .1
        .insert("scale".into(), Tensor::scalar(f64::INFINITY));
    let err = io::save(&path, &model, &Header::new("net"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'1.scale' holds inf at index 0"), "{err}");
    let model = net::<f64>(1.0);
    for key in ["format", "dtype", "architecture", "perturb.extra"] {
        let err = io::save(&path, &model, &Header::new("net").with(key, "x")).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("'{key}' is perturb's own")),
            "{err}"
        );
    }
    let clash = [("1.scale".to_string(), Tensor::scalar(0.0))];
    let err = io::save_with_extra(&path, &model, &clash, &Header::new("net")).unwrap_err();
    assert!(
        err.to_string().contains("two tensors are named '1.scale'"),
        "{err}"
    );
    assert!(!path.exists(), "nothing written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_save_leaves_the_previous_file_whole() {
    let dir = scratch("atomic");
    let path = dir.join("m.safetensors");
    io::save(&path, &net::<f64>(1.0), &Header::new("net")).unwrap();
    let before = std::fs::read(&path).unwrap();
    // A path whose parent is a file: nothing can be written there.
    let err = io::save(path.join("inner"), &net::<f64>(2.0), &Header::new("net")).unwrap_err();
    assert!(
        matches!(
            err,
            FileError::Io {
                action: "write",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("m.safetensors/inner"), "{err}");
    // A folder in the way of the rename: the folder stays, no temporary file is left.
    let folder = dir.join("taken");
    std::fs::create_dir_all(folder.join("x")).unwrap();
    assert!(io::save(&folder, &net::<f64>(2.0), &Header::new("net")).is_err());
    assert!(folder.join("x").is_dir());
    // A save refused (a NaN) over the old file.
    let mut bad = net::<f64>(2.0);
    bad.1.insert("scale".into(), Tensor::scalar(f64::NAN));
    assert!(io::save(&path, &bad, &Header::new("net")).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["m.safetensors", "taken"]);
    // A temporary file left by a crash does not disturb loading or the next save.
    std::fs::write(dir.join(".m.safetensors.tmp-1-0"), b"half a mod").unwrap();
    io::load_into(&mut template::<f64>(), &path, "net").unwrap();
    io::save(&path, &net::<f64>(3.0), &Header::new("net")).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn extra_tensors_are_kept_beside_the_tree() {
    let dir = scratch("extra");
    let path = dir.join("m.safetensors");
    let extra = vec![
        ("stats.var".to_string(), Tensor::vector(&[4.0, 5.0])),
        ("stats.mean".to_string(), Tensor::vector(&[-0.0, 1e-310])),
    ];
    // An f32 model with f64 statistics.
    io::save_with_extra(&path, &net::<f32>(1.0), &extra, &Header::new("net")).unwrap();
    let mut model = template::<f32>();
    let err = io::load_into(&mut model, &path, "net")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 tensor(s) beside the model ('stats.var'"),
        "{err}"
    );
    let (_, back) = io::load_into_with_extra(&mut model, &path, "net").unwrap();
    assert_eq!(bits(&model), bits(&net::<f32>(1.0)));
    let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["stats.var", "stats.mean"], "in the order saved");
    for ((_, a), (_, b)) in back.iter().zip(&extra) {
        let (a, b): (Vec<u64>, Vec<u64>) = (
            a.as_slice().iter().map(|x| x.to_bits()).collect(),
            b.as_slice().iter().map(|x| x.to_bits()).collect(),
        );
        assert_eq!(a, b);
    }
    // Extra tensors too large for any file: refused from the header.
    let bytes = std::fs::read(&path).unwrap();
    let mut h = header_of(&bytes);
    h["stats.var"]["shape"] = json!([u64::MAX / 2, 4]);
    std::fs::write(&path, with_header(&bytes, &h)).unwrap();
    let err = io::load_into_with_extra(&mut model, &path, "net").unwrap_err();
    assert!(err.to_string().contains("numbers a file may hold"), "{err}");
    std::fs::write(&path, &bytes).unwrap();
    // An extra tensor the list names but the file lacks.
    let bytes = std::fs::read(&path).unwrap();
    let mut h = header_of(&bytes);
    h["__metadata__"]["perturb.extra"] = json!(r#"["stats.var","stats.mean","stats.count"]"#);
    std::fs::write(&path, with_header(&bytes, &h)).unwrap();
    let err = io::load_into_with_extra(&mut model, &path, "net").unwrap_err();
    assert!(
        err.to_string().contains("'stats.count' is missing"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A checkpoint of `net` after three Adam steps on a tree.
fn trained<T: Storable>() -> (Net<T>, Adam<T>) {
    let mut model = net::<T>(1.0).map(|t| {
        let v: Vec<T> = t
            .as_slice()
            .iter()
            .map(|&x| T::from_f64(x.to_f64().unwrap().clamp(-10.0, 10.0)).unwrap())
            .collect();
        Tensor::from_vec(v, t.shape()).unwrap()
    });
    let mut opt = Adam::new(0.01).with_weight_decay(0.01, true);
    for k in 0..3 {
        let f = |x: f64| T::from_f64(x).unwrap();
        let grads = model.map(|t| t.scale(f(0.5 + k as f64)).add_scalar(f(-1.0)));
        opt.update(&mut model, &grads).unwrap();
    }
    (model, opt)
}

fn checkpoint_round_trip<T: Storable>(name: &str) {
    let dir = scratch(name);
    let (a, b) = (dir.join("a.ckpt"), dir.join("b.ckpt"));
    let (model, opt) = trained::<T>();
    let saved = Checkpoint {
        header: Header::new("net").with("run", "7"),
        optimizer: opt.state(),
        train: TrainState {
            step: 3,
            epoch: 1,
            rng: RngState {
                seed: u64::MAX,
                draws: 12,
            },
        },
        extra: vec![("bn.running_mean".into(), Tensor::vector(&[-0.0, 5e-324]))],
    };
    saved.save(&a, &model).unwrap();
    let mut fresh = template::<T>();
    let back = Checkpoint::load(&a, &mut fresh, "net").unwrap();
    assert_eq!(bits(&fresh), bits(&model));
    assert_eq!(back.train, saved.train);
    assert_eq!(back.header, saved.header);
    assert_eq!(
        (back.optimizer.kind.as_str(), back.optimizer.steps),
        ("Adam", 3)
    );
    for (slot, buffers) in &saved.optimizer.slots {
        for (path, t) in buffers {
            let u = &back.optimizer.slots[slot][path];
            assert_eq!(t.shape(), u.shape());
            assert!(
                t.as_slice()
                    .iter()
                    .zip(u.as_slice())
                    .all(|(x, y)| x.to_f64().unwrap().to_bits() == y.to_f64().unwrap().to_bits()),
                "{slot}.{path}"
            );
        }
    }
    assert_eq!(back.extra[0].1.as_slice()[1].to_bits(), 5e-324f64.to_bits());
    back.save(&b, &fresh).unwrap();
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "{name}: the bytes"
    );
    // The header is readable alone, for a checkpoint as for a model.
    assert_eq!(io::read_header(&a).unwrap(), saved.header);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_save_load_save_is_exact_for_f64_and_f32() {
    checkpoint_round_trip::<f64>("ckpt64");
    checkpoint_round_trip::<f32>("ckpt32");
}

#[test]
fn training_resumed_from_a_checkpoint_goes_on_bit_for_bit() {
    let dir = scratch("resume");
    let path = dir.join("run.ckpt");
    let grads = |model: &Net<f64>, k: u64| model.map(|t| t.scale(0.1 * k as f64).add_scalar(0.3));
    let (mut model, mut opt) = trained::<f64>();
    let ckpt = Checkpoint {
        header: Header::new("net"),
        optimizer: opt.state(),
        train: TrainState {
            step: 3,
            ..TrainState::default()
        },
        extra: vec![],
    };
    ckpt.save(&path, &model).unwrap();
    for k in 3..8 {
        let g = grads(&model, k);
        opt.update(&mut model, &g).unwrap();
    }
    let mut resumed = template::<f64>();
    let back = Checkpoint::load(&path, &mut resumed, "net").unwrap();
    let mut opt2 = Adam::new(0.01).with_weight_decay(0.01, true);
    opt2.load_state(back.optimizer).unwrap();
    for k in back.train.step..8 {
        let g = grads(&resumed, k);
        opt2.update(&mut resumed, &g).unwrap();
    }
    assert_eq!(bits(&resumed), bits(&model));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_errors_name_the_cause() {
    let dir = scratch("ckpt-errors");
    let path = dir.join("run.ckpt");
    let (model, opt) = trained::<f64>();
    let ckpt = Checkpoint {
        header: Header::new("net"),
        optimizer: opt.state(),
        train: TrainState::default(),
        extra: vec![],
    };
    // An optimiser's state for another model is refused at save.
    let mut other = opt.state();
    other.slots.get_mut("v").unwrap().remove("1.scale");
    let bad = Checkpoint {
        optimizer: other,
        ..ckpt.clone()
    };
    let err = bad.save(&path, &model).unwrap_err().to_string();
    assert!(err.contains("'v' has no buffer for '1.scale'"), "{err}");
    assert!(!path.exists());
    ckpt.save(&path, &model).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // A model file is not a checkpoint, and a checkpoint is not a model file.
    let mut fresh = template::<f64>();
    let err = io::load_into(&mut fresh, &path, "net")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(CHECKPOINT_FORMAT) && err.contains("Checkpoint::load"),
        "{err}"
    );
    let model_path = dir.join("m.safetensors");
    io::save(&model_path, &model, &Header::new("net")).unwrap();
    let err = Checkpoint::<f64>::load(&model_path, &mut fresh, "net").unwrap_err();
    assert!(matches!(err, FileError::NotPerturb { .. }), "{err}");
    // Another architecture; an optimiser buffer missing; a counter that is not a number.
    let err = Checkpoint::<f64>::load(&path, &mut fresh, "cnn").unwrap_err();
    assert!(matches!(err, FileError::Architecture { .. }), "{err}");
    let edited = |f: &dyn Fn(&mut Value)| {
        let mut h = header_of(&bytes);
        f(&mut h);
        std::fs::write(&path, with_header(&bytes, &h)).unwrap();
        let mut fresh = template::<f64>();
        let err = Checkpoint::<f64>::load(&path, &mut fresh, "net").unwrap_err();
        assert_eq!(bits(&fresh), bits(&template::<f64>()));
        err.to_string()
    };
    let err = edited(&|h| drop(h.as_object_mut().unwrap().remove("optimizer.m.0.0.bias")));
    assert!(err.contains("'optimizer.m.0.0.bias' is missing"), "{err}");
    let err = edited(&|h| h["__metadata__"]["perturb.step"] = json!("-1"));
    assert!(
        err.contains("'perturb.step' is not a whole number"),
        "{err}"
    );
    let err = edited(&|h| h["__metadata__"]["perturb.optimizer.slots"] = json!("m"));
    assert!(err.contains("not a list of names"), "{err}");
    // A state of another optimiser is refused by the optimiser, not the file.
    std::fs::write(&path, &bytes).unwrap();
    let back = Checkpoint::load(&path, &mut fresh, "net").unwrap();
    assert!(Sgd::<f64>::new(0.1, 0.9, false)
        .load_state(back.optimizer)
        .is_err());
    std::fs::remove_dir_all(&dir).ok();
}

/// A JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..64).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::hash_map(".{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = scratch("prop-bytes");
        let result = load_bytes(&dir, &bytes);
        std::fs::remove_dir_all(&dir).ok();
        prop_assert!(result.is_err());
    }

    #[test]
    fn random_edits_of_a_valid_file_never_panic(
        key in prop_oneof![
            Just("__metadata__"), Just("0.0.weight"), Just("0.0.bias"), Just("1.scale"),
            Just("new"),
        ],
        field in prop_oneof![
            Just("dtype"), Just("shape"), Just("data_offsets"), Just("format"),
            Just("architecture"), Just("dtype"), Just("perturb.extra"),
        ],
        value in prop_oneof![
            any_json(),
            prop::collection::vec(0u64..200, 0..4).prop_map(Value::from),
            prop::collection::vec(any::<u64>(), 0..3).prop_map(Value::from),
            Just(json!("F32")), Just(json!("F64")), Just(json!("net")),
            Just(json!(MODEL_FORMAT)), Just(json!("[\"0.0.bias\"]")),
        ],
        flip in any::<Option<(prop::sample::Index, u8)>>(),
    ) {
        let dir = scratch("prop-edit");
        let bytes = valid_file(&dir);
        let mut h = header_of(&bytes);
        h[key][field] = value;
        let mut edited = with_header(&bytes, &h);
        if let Some((at, byte)) = flip {
            let i = at.index(edited.len());
            edited[i] ^= byte;
        }
        let result = load_bytes(&dir, &edited);
        std::fs::remove_dir_all(&dir).ok();
        if let Ok(model) = result {
            // What loads is usable: the template's shapes, finite numbers.
            let shapes = |m: &Net<f64>| m.leaves().iter().map(|t| t.shape().to_vec()).collect::<Vec<_>>();
            prop_assert_eq!(shapes(&model), shapes(&template::<f64>()));
            prop_assert!(model.leaves().iter().all(|t| t.as_slice().iter().all(|x| x.is_finite())));
        }
    }

    #[test]
    fn random_edits_of_a_checkpoint_never_panic(
        key in prop_oneof![
            Just("__metadata__"), Just("model.0.0.bias"), Just("optimizer.v.1.scale"),
            Just("extra.stats"),
        ],
        field in prop_oneof![
            Just("shape"), Just("data_offsets"), Just("dtype"), Just("perturb.step"),
            Just("perturb.rng_seed"), Just("perturb.optimizer"), Just("perturb.optimizer.slots"),
            Just("perturb.optimizer.steps"), Just("perturb.extra"),
        ],
        value in prop_oneof![
            any_json(),
            prop::collection::vec(0u64..200, 0..4).prop_map(Value::from),
            Just(json!("18446744073709551616")), Just(json!("[\"m\",\"m\"]")),
            Just(json!("[\"v\",\"velocity\"]")), Just(json!("[\"stats\",\"stats\"]")),
        ],
    ) {
        let dir = scratch("prop-ckpt");
        let path = dir.join("run.ckpt");
        let (model, opt) = trained::<f64>();
        let ckpt = Checkpoint {
            header: Header::new("net"),
            optimizer: opt.state(),
            train: TrainState::default(),
            extra: vec![("stats".into(), Tensor::vector(&[1.0, 2.0]))],
        };
        ckpt.save(&path, &model).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut h = header_of(&bytes);
        h[key][field] = value;
        std::fs::write(&path, with_header(&bytes, &h)).unwrap();
        let mut fresh = template::<f64>();
        let result = Checkpoint::<f64>::load(&path, &mut fresh, "net");
        std::fs::remove_dir_all(&dir).ok();
        match result {
            Ok(back) => {
                // What loads fits the model: every buffer has its leaf's shape.
                for buffers in back.optimizer.slots.values() {
                    for (leaf, t) in model.named_leaves() {
                        prop_assert_eq!(buffers[&leaf].shape(), t.shape());
                    }
                }
            }
            Err(e) => prop_assert_eq!(bits(&fresh), bits(&template::<f64>()), "{}", e),
        }
    }
}
