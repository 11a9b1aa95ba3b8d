//! Hostile tests of the model pieces (model files, optimiser state, layers): what a careless or
//! malicious user, or a corrupt file, feeds them gives a clear error or the right answer, never
//! a panic, a NaN or a silently wrong file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use perturb::tensor::conv::{Conv2dOptions, Pool2d};
use perturb::tensor::Tensor;
use perturb::Tree;
use perturb_nn::io::{self, Checkpoint, FileError, Header, TrainState};
use perturb_nn::layers::{
    AvgPool2d, BatchNorm, Conv2d, Dropout, Embedding, Flatten, Gelu, Layer, LayerNorm, MaxPool2d,
    Relu, Sequential, Tanh,
};
use perturb_nn::module::{Context, ContextState, Mode, Module, RngState};
use perturb_nn::nn::Init;
use perturb_nn::optim::{Adam, Optimizer, OptimizerState, Sgd};

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perturb-hostile-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `state` saved in a checkpoint at `path` with `model`, and read back (as a resumed run
/// reads it).
fn through_checkpoint(
    path: &Path,
    model: &mut Vec<Tensor<f64>>,
    state: OptimizerState<f64>,
) -> OptimizerState<f64> {
    let ckpt = Checkpoint {
        header: Header::new("m"),
        optimizer: state,
        train: TrainState::default(),
        extra: vec![],
    };
    ckpt.save(path, &*model).unwrap();
    Checkpoint::load(path, model, "m").unwrap().optimizer
}

#[test]
fn a_step_count_at_its_limit_from_a_checkpoint_is_an_error_not_an_overflow() {
    let dir = scratch("steps");
    let path = dir.join("run.ckpt");
    let g = vec![Tensor::vector(&[1.0_f64])];
    let optimisers: [(&str, Box<dyn Optimizer<f64>>); 2] = [
        ("Adam::step", Box::new(Adam::new(0.1))),
        ("Sgd::step", Box::new(Sgd::new(0.1, 0.9, false))),
    ];
    for (op, mut opt) in optimisers {
        let mut model = vec![Tensor::vector(&[1.0_f64])];
        opt.step(&mut model, &g).unwrap();
        // A hostile (or hand-edited) checkpoint: perturb.optimizer.steps = u64::MAX.
        let mut state = opt.state();
        state.steps = u64::MAX;
        opt.load_state(through_checkpoint(&path, &mut model, state))
            .unwrap();
        let before = model[0].to_vec();
        // Was: "attempt to add with overflow" (a panic) in a debug build, a count wrapped to 0
        // in a release build.
        let err = opt.step(&mut model, &g).unwrap_err().to_string();
        assert!(
            err.starts_with(op) && err.contains("cannot count more"),
            "{err}"
        );
        assert_eq!(
            model[0].to_vec(),
            before,
            "{op}: nothing is updated on an error"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn adam_state_with_a_negative_second_moment_from_a_checkpoint_is_refused() {
    let dir = scratch("adam-v");
    let path = dir.join("run.ckpt");
    let mut model = vec![Tensor::vector(&[1.0_f64, 2.0])];
    let g = vec![Tensor::vector(&[0.5, 0.5])];
    let mut opt = Adam::new(0.1);
    opt.step(&mut model, &g).unwrap();
    // A corrupt checkpoint: finite numbers (so the file passes every check of the format),
    // but v, an average of squares, is negative.
    let mut state = opt.state();
    let v = state.slots.get_mut("v").unwrap().get_mut("0").unwrap();
    *v = Tensor::vector(&[0.25, -0.25]);
    let back = through_checkpoint(&path, &mut model, state);
    let mut resumed = Adam::new(0.1);
    // Was: accepted, and the next step made the weight NaN (sqrt of a negative number).
    let err = resumed.load_state(back).unwrap_err().to_string();
    assert!(
        err.starts_with("Adam::load_state") && err.contains("'0'") && err.contains("-0.25"),
        "{err}"
    );
    assert_eq!(resumed.steps(), 0, "the optimiser is unchanged");
    std::fs::remove_dir_all(&dir).ok();
}

/// A state that has counted steps but holds no buffers (a checkpoint whose optimiser tensors
/// and slot list were lost: `perturb.optimizer.slots` `[]`, the file otherwise whole) was
/// taken as is: the next update made fresh zero moments and went on at step 3, so Adam's
/// bias correction `1 - beta^3` scaled moments of one step (a step of 0.64 lr where the
/// uninterrupted run, with the same gradient, steps by lr): other weights than the uninterrupted run's, silently. Sgd's velocity restarted too.
#[test]
fn an_optimiser_state_with_steps_but_no_buffers_is_refused_at_the_next_update() {
    let dir = scratch("no-buffers");
    let path = dir.join("run.ckpt");
    let mut model = vec![Tensor::vector(&[1.0_f64, 2.0])];
    let g = vec![Tensor::vector(&[0.5, 0.5])];
    type Fresh = fn() -> Box<dyn Optimizer<f64>>;
    let fresh: [Fresh; 2] = [
        || Box::new(Adam::new(0.1)),
        || Box::new(Sgd::new(0.1, 0.9, false)),
    ];
    for fresh in fresh {
        let mut opt = fresh();
        opt.step(&mut model, &g).unwrap();
        opt.step(&mut model, &g).unwrap();
        let mut state = opt.state();
        assert_eq!(state.steps, 2);
        state.slots.clear();
        let back = through_checkpoint(&path, &mut model, state);
        let mut resumed = fresh();
        resumed.load_state(back).unwrap();
        let before = model.clone();
        let err = resumed.step(&mut model, &g).unwrap_err().to_string();
        assert!(
            err.contains("2 steps") && err.contains("no buffers"),
            "{err}"
        );
        assert_eq!(
            model[0].to_vec(),
            before[0].to_vec(),
            "the weights are unchanged"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batch_norm_with_a_negative_running_variance_from_a_file_is_an_error_not_nan() {
    let dir = scratch("bn");
    let path = dir.join("bn.safetensors");
    let bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    // Finite numbers, so the file passes every check of the format; but no variance is < 0.
    let stats = vec![
        ("running_mean".to_string(), Tensor::vector(&[0.0, 0.0])),
        ("running_var".to_string(), Tensor::vector(&[-1.0, 1.0])),
    ];
    let arch = Module::<Tensor<f64>>::architecture(&bn);
    io::save_with_extra(&path, &bn, &stats, &Header::new(arch)).unwrap();
    let mut loaded = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    io::load_module(&mut loaded, &path).unwrap();
    // Was: Ok([NaN, 0.999995]), the NaN spreading silently through the rest of a network.
    let err = loaded
        .forward_eval(&Tensor::ones(&[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("BatchNorm::forward") && err.contains("channel 0") && err.contains("-1"),
        "{err}"
    );
    // Variance 0 with eps 0 is refused too (1 / sqrt(0) = inf); variance 0 with eps > 0 is fine.
    let zero = vec![
        ("running_mean".to_string(), Tensor::vector(&[0.0, 0.0])),
        ("running_var".to_string(), Tensor::vector(&[0.0, 1.0])),
    ];
    let eps0 = BatchNorm::<Tensor<f64>>::new(2)
        .unwrap()
        .with_eps(0.0)
        .unwrap();
    eps0.load_buffers(&zero).unwrap();
    assert!(eps0.forward_eval(&Tensor::ones(&[1, 2])).is_err());
    loaded.load_buffers(&zero).unwrap();
    // 1 / sqrt(0 + 1e-5) and 1 / sqrt(1 + 1e-5), the weights 1 and biases 0 of a new layer.
    let y = loaded
        .forward_eval(&Tensor::ones(&[1, 2]))
        .unwrap()
        .to_vec();
    assert_eq!(y, [1.0 / 1e-5_f64.sqrt(), 1.0 / (1.0 + 1e-5_f64).sqrt()]);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn saving_through_a_symbolic_link_updates_the_file_it_points_to() {
    let dir = scratch("link");
    std::fs::create_dir_all(dir.join("run7")).unwrap();
    let target = dir.join("run7/model.safetensors");
    let link = dir.join("latest.safetensors");
    io::save(
        &target,
        &vec![Tensor::vector(&[1.0_f64])],
        &Header::new("m"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    io::save(&link, &vec![Tensor::vector(&[2.0_f64])], &Header::new("m")).unwrap();
    // Was: the link replaced by a new file, and run7/model.safetensors silently still [1.0].
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mut back = vec![Tensor::vector(&[0.0_f64])];
    io::load_into(&mut back, &target, "m").unwrap();
    assert_eq!(back[0].to_vec(), [2.0]);
    // No temporary file is left beside either.
    assert_eq!(std::fs::read_dir(dir.join("run7")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn links_planted_at_the_temporary_names_are_not_written_through() {
    let dir = scratch("planted");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    // In a shared folder, another user plants links at the predictable temporary names
    // (.NAME.tmp-PID-N), pointing at a file of ours.
    for n in 0..2048 {
        let name = format!(".model.safetensors.tmp-{}-{n}", std::process::id());
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    let path = dir.join("model.safetensors");
    io::save(&path, &vec![Tensor::vector(&[1.0_f64])], &Header::new("m")).unwrap();
    // Was: the save opened the planted link, wrote the model into victim.txt and renamed
    // the link over model.safetensors.
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    let mut back = vec![Tensor::vector(&[0.0_f64])];
    io::load_into(&mut back, &path, "m").unwrap();
    assert_eq!(back[0].to_vec(), [1.0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn saving_over_a_private_model_keeps_it_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("mode");
    let path = dir.join("model.safetensors");
    let model = vec![Tensor::vector(&[1.0_f64])];
    io::save(&path, &model, &Header::new("m")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    io::save(&path, &model, &Header::new("m")).unwrap();
    // Was 0o644 (the umask's default for a new file): readable by every user.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_header_too_long_to_load_is_refused_when_saving() {
    let dir = scratch("long-header");
    let path = dir.join("model.safetensors");
    let model = vec![Tensor::vector(&[1.0_f32])];
    io::save(&path, &model, &Header::new("m")).unwrap();
    // One metadata entry of 100 MB: the safetensors format allows a header of 100 MB at most.
    let huge = Header::new("m").with("notes", "x".repeat(100_000_000));
    let err = io::save(&path, &model, &huge).unwrap_err();
    // Was: saved, and then refused by every load ("more than the 100000000 a header may
    // have"): a model that cannot be read back, in place of the good one.
    assert!(matches!(err, FileError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("could not be loaded"), "{err}");
    let mut back = vec![Tensor::vector(&[0.0_f32])];
    io::load_into(&mut back, &path, "m").unwrap();
    assert_eq!(back[0].to_vec(), [1.0]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dropout_of_probability_one_zeroes_every_f32_element() {
    // Found by search: with Context::training(362), the uniform draw at index 2605 of the
    // dropout mask is within 2^-25 of 1, which rounds to exactly 1.0 as an f32.
    let x = Tensor::<f32>::ones(&[4096]);
    let y = Dropout::new(1.0)
        .unwrap()
        .forward(&x, &mut Context::training(362))
        .unwrap()
        .to_vec();
    // Was: y[2605] = inf (the draw 1.0 was kept, scaled by 1 / (1 - 1)).
    assert!(
        y.iter().all(|&v| v == 0.0),
        "{:?}",
        y.iter().find(|v| **v != 0.0)
    );
    // f64 masks are what they were: zero or 1 / (1 - p), about p of them zero.
    let y = Dropout::new(0.25)
        .unwrap()
        .forward(&Tensor::<f64>::ones(&[4000]), &mut Context::training(1))
        .unwrap()
        .to_vec();
    let zeros = y.iter().filter(|&&v| v == 0.0).count();
    assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
    assert!((900..1100).contains(&zeros), "{zeros}");
}

// What held up: each of these is an error or the right answer already.

#[test]
fn leaves_whose_paths_collide_are_refused_everywhere() {
    // {"a": {"b.c": x}, "a.b": {"c": y}}: both leaves are at "a.b.c".
    let mut tree: BTreeMap<String, BTreeMap<String, Tensor<f64>>> = BTreeMap::new();
    tree.insert(
        "a".into(),
        BTreeMap::from([("b.c".to_string(), Tensor::vector(&[1.0]))]),
    );
    tree.insert(
        "a.b".into(),
        BTreeMap::from([("c".to_string(), Tensor::vector(&[2.0]))]),
    );
    assert_eq!(tree.paths(), ["a.b.c", "a.b.c"]);
    let dir = scratch("collide");
    let path = dir.join("m");
    let err = io::save(&path, &tree, &Header::new("t")).unwrap_err();
    assert!(
        err.to_string().contains("two tensors are named 'a.b.c'"),
        "{err}"
    );
    // A file with one "a.b.c" does not fill both leaves with it.
    let one = BTreeMap::from([(
        "a".to_string(),
        BTreeMap::from([("b.c".to_string(), Tensor::vector(&[1.0]))]),
    )]);
    io::save(&path, &one, &Header::new("t")).unwrap();
    let err = io::load_into(&mut tree, &path, "t").unwrap_err();
    assert!(err.to_string().contains("'a.b.c' is used twice"), "{err}");
    // An optimiser would share one leaf's moments between both.
    let grads = tree.clone();
    let err = Adam::new(0.1).update(&mut tree, &grads).unwrap_err();
    assert!(
        err.to_string().contains("two leaves have the path 'a.b.c'"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn empty_trees_and_zero_element_leaves_round_trip() {
    let dir = scratch("zero");
    let model = vec![
        Tensor::<f64>::zeros(&[0]),
        Tensor::zeros(&[3, 0]),
        Tensor::scalar(1.5),
    ];
    io::save(dir.join("m"), &model, &Header::new("z")).unwrap();
    let mut back = vec![
        Tensor::zeros(&[0]),
        Tensor::zeros(&[3, 0]),
        Tensor::scalar(0.0),
    ];
    io::load_into(&mut back, dir.join("m"), "z").unwrap();
    assert_eq!(back[2].to_vec(), [1.5]);
    assert_eq!(back[1].shape(), [3, 0]);
    let mut wrong = vec![
        Tensor::zeros(&[0, 3]),
        Tensor::zeros(&[3, 0]),
        Tensor::scalar(0.0),
    ];
    assert!(matches!(
        io::load_into(&mut wrong, dir.join("m"), "z"),
        Err(FileError::Shape { .. })
    ));
    let mut empty: Vec<Tensor<f64>> = vec![];
    io::save(dir.join("e"), &empty, &Header::new("z")).unwrap();
    io::load_into(&mut empty, dir.join("e"), "z").unwrap();
    // An empty model does not take a file with tensors.
    assert!(matches!(
        io::load_into(&mut empty, dir.join("m"), "z"),
        Err(FileError::ExtraTensor { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_folder_is_neither_saved_over_nor_loaded() {
    let dir = scratch("folder");
    let model = vec![Tensor::vector(&[1.0_f64])];
    let err = io::save(&dir, &model, &Header::new("m")).unwrap_err();
    assert!(matches!(err, FileError::Io { .. }), "{err}");
    let err = io::load_into(&mut model.clone(), &dir, "m").unwrap_err();
    assert!(err.to_string().contains("it is a folder"), "{err}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn layers_given_degenerate_settings_or_inputs_say_why() {
    let x = Tensor::<f64>::zeros(&[1, 1, 4, 4]);
    let conv = Conv2d {
        weight: Tensor::ones(&[1, 1, 2, 2]),
        bias: None,
        options: Conv2dOptions::default().strides([0, 1]),
    };
    let cases: Vec<(Result<Tensor<f64>, perturb::Error>, &str)> = vec![
        (conv.forward_eval(&x), "stride [0, 1]"),
        (MaxPool2d::new(0).forward_eval(&x), "must be at least 1"),
        (AvgPool2d::new(9).forward_eval(&x), "does not fit"),
        (
            AvgPool2d::with(Pool2d::new([2, 2]).stride([0, 0])).forward_eval(&x),
            "must be at least 1",
        ),
    ];
    for (result, expected) in cases {
        let err = result.unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
    // Batch normalisation in training needs two values per channel (an unbiased variance of
    // one value would divide by n - 1 = 0).
    let bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    for shape in [&[1, 2][..], &[1, 2, 1, 1], &[0, 2]] {
        let err = bn
            .forward(&Tensor::zeros(shape), &mut Context::training(0))
            .unwrap_err();
        assert!(
            err.to_string().contains("more than one value per channel"),
            "{err}"
        );
    }
    assert_eq!(
        bn.buffers()[1].1.to_vec(),
        [1.0, 1.0],
        "the statistics did not move"
    );
    // Embedding indices must be whole numbers in range.
    let emb = Embedding::<Tensor<f64>>::new(3, 2, 0).unwrap();
    for v in [f64::NAN, -1.0, 3.0, 0.5, f64::INFINITY] {
        let err = emb.forward_eval(&Tensor::vector(&[v])).unwrap_err();
        assert!(
            err.to_string().contains("not an index in 0..3"),
            "{v}: {err}"
        );
    }
    assert_eq!(
        emb.forward_eval(&Tensor::zeros(&[0])).unwrap().shape(),
        [0, 2]
    );
    assert!(Dropout::new(f64::NAN).is_err());
}

#[test]
fn layers_that_differ_outside_their_weights_have_different_architectures() {
    // load_module trusts the architecture string for what the weights do not show: two of
    // these with one string would load each other's files silently.
    let conv = |options: Conv2dOptions| {
        Conv2d::<Tensor<f64>>::new(4, 4, [3, 3], options, Init::HeNormal, 0).unwrap()
    };
    let o = Conv2dOptions::default;
    let layers: Vec<Layer<Tensor<f64>>> = vec![
        conv(o()).into(),
        conv(o().stride(2)).into(),
        conv(o().strides([1, 2])).into(),
        conv(o().padding(1)).into(),
        conv(o().padding_per_side([(1, 0), (1, 0)])).into(),
        conv(o().padding_per_side([(1, 1), (0, 0)])).into(),
        conv(o().same()).into(),
        conv(o().dilation(2)).into(),
        conv(o().groups(2)).into(),
        conv(o()).without_bias().into(),
        MaxPool2d::new(2).into(),
        MaxPool2d::with(Pool2d::new([2, 2]).stride([1, 1])).into(),
        MaxPool2d::with(Pool2d::new([2, 2]).padding([1, 1])).into(),
        AvgPool2d::new(2).into(),
        Dropout::new(0.1).unwrap().into(),
        Dropout::new(0.1 + 1e-16).unwrap().into(),
        LayerNorm::new(&[4]).unwrap().into(),
        LayerNorm::new(&[4]).unwrap().with_eps(1e-6).unwrap().into(),
        LayerNorm::new(&[4]).unwrap().without_affine().into(),
        LayerNorm::new(&[2, 2]).unwrap().into(),
        BatchNorm::new(4).unwrap().into(),
        BatchNorm::new(4)
            .unwrap()
            .with_momentum(0.2)
            .unwrap()
            .into(),
        BatchNorm::new(4).unwrap().with_eps(1e-3).unwrap().into(),
        BatchNorm::new(4).unwrap().without_affine().into(),
        Relu.into(),
        Tanh.into(),
        Gelu.into(),
        Flatten.into(),
    ];
    let names: Vec<String> = layers.iter().map(|l| l.architecture()).collect();
    let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:#?}");
    // Nor does a Sequential's string run two layers together.
    let one = Sequential::new().push(Relu).push(Tanh);
    let other = Sequential::new().push(Tanh).push(Relu);
    assert_ne!(
        Module::<Tensor<f64>>::architecture(&one),
        Module::<Tensor<f64>>::architecture(&other)
    );
}

#[test]
fn a_random_stream_at_the_end_of_its_counter_wraps_without_a_panic() {
    let end = RngState {
        seed: u64::MAX,
        draws: u64::MAX,
    };
    let mut ctx = Context::from_state(ContextState {
        mode: Mode::Training,
        rng: end,
    });
    let y = Dropout::new(0.5)
        .unwrap()
        .forward(&Tensor::<f64>::ones(&[8]), &mut ctx)
        .unwrap();
    assert!(y.to_vec().iter().all(|&v| v == 0.0 || v == 2.0));
    assert_eq!(ctx.state().rng.draws, 0);
}

/// The file at `path` with its header's JSON changed by `edit` (the data kept).
fn edit_header(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    edit_header_text(path, |text| {
        let mut header: serde_json::Value = serde_json::from_str(text).unwrap();
        edit(&mut header);
        header.to_string()
    });
}

#[test]
fn tensors_of_other_types_or_absurd_sizes_are_refused_before_their_data_is_read() {
    let dir = scratch("dtypes");
    let path = dir.join("m.safetensors");
    let model = vec![Tensor::vector(&[1.0_f64, 2.0])];
    let stats = vec![("stats".to_string(), Tensor::vector(&[3.0, 4.0]))];
    for (tensor, dtype) in [
        ("0", "F16"),
        ("0", "BF16"),
        ("stats", "I64"),
        ("stats", "BOOL"),
    ] {
        io::save_with_extra(&path, &model, &stats, &Header::new("m")).unwrap();
        edit_header(&path, |h| h[tensor]["dtype"] = dtype.into());
        let mut back = model.clone();
        let err = io::load_into_with_extra(&mut back, &path, "m").unwrap_err();
        assert!(matches!(err, FileError::Dtype { .. }), "{dtype}: {err}");
        assert!(err.to_string().contains(dtype), "{err}");
        assert_eq!(back[0].to_vec(), [1.0, 2.0]);
    }
    // A tensor beside the model (whose shape nothing constrains) claiming 2^62 numbers.
    io::save_with_extra(&path, &model, &stats, &Header::new("m")).unwrap();
    edit_header(&path, |h| {
        h["stats"]["shape"] = serde_json::json!([1u64 << 31, 1u64 << 31])
    });
    let err = io::load_into_with_extra(&mut model.clone(), &path, "m").unwrap_err();
    assert!(err.to_string().contains("numbers a file may hold"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The header of the file at `path` replaced by `edit` of its JSON text (padding removed).
fn edit_header_text(path: &Path, edit: impl Fn(&str) -> String) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let text = edit(std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end());
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// The safetensors format disallows a name given twice in the header: readers disagree on
/// which entry counts (one that keeps the first sees a tensor of 4 `F32`s where this one sees
/// 2 `F64`s, over the same bytes). Both of these files loaded, the last entry silently
/// winning: a tensor listed twice, first with another type and shape, and the metadata's
/// `architecture` given twice, first as another model's.
#[test]
fn a_name_given_twice_in_the_header_is_refused() {
    let dir = scratch("twice");
    let path = dir.join("m.safetensors");
    let model = vec![Tensor::vector(&[1.0_f64, 2.0])];
    let twice_tensor = |h: &str| {
        let first = r#""0":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"#;
        h.replacen(r#""0":"#, &format!("{first}\"0\":"), 1)
    };
    let twice_metadata = |h: &str| {
        h.replacen(
            r#""architecture":"#,
            r#""architecture":"other","architecture":"#,
            1,
        )
    };
    for (edit, name) in [
        (&twice_tensor as &dyn Fn(&str) -> String, "'0'"),
        (&twice_metadata, "'architecture'"),
    ] {
        io::save(&path, &model, &Header::new("m")).unwrap();
        edit_header_text(&path, edit);
        let mut back = vec![Tensor::vector(&[0.0, 0.0])];
        let err = io::load_into(&mut back, &path, "m").unwrap_err();
        assert!(matches!(err, FileError::Corrupt { .. }), "{name}: {err}");
        let text = err.to_string();
        assert!(text.contains(name) && text.contains("twice"), "{text}");
        assert_eq!(back[0].to_vec(), [0.0, 0.0]);
        let err = io::read_header(&path).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
