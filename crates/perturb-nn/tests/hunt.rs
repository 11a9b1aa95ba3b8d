//! perturb-nn against independent references on edge inputs (closed forms, the exact data a
//! transform must give back). Each test failed before its fix.

use perturb::tensor::Tensor;
use perturb_nn::data::Standardizer;

/// `inverse_transform` computed `z * std + mean` directly: for a column holding +-1.7e308 the
/// standardised -1.73 times std 1.47e308 overflowed, so -1.7e308 came back as -inf.
/// `transform` of a value far outside the fitted data (1e10 in a column of std 5e-301) gave
/// inf, silently, for the model's input. Both are now errors naming the row and column when no
/// finite result exists, and exact where one does.
#[test]
fn standardizer_round_trips_at_the_float_limits_and_refuses_overflow() {
    let x = Tensor::from_vec(vec![1.7e308_f64, 1.7e308, 1.7e308, -1.7e308], &[4, 1]).unwrap();
    let s = Standardizer::fit(&x).unwrap();
    let back = s.inverse_transform(&s.transform(&x).unwrap()).unwrap();
    for (b, x) in back.to_vec().into_iter().zip(x.to_vec()) {
        assert!((b - x).abs() <= 1e-15 * x.abs(), "{b} for {x}");
    }
    // f32 too: +-3e38 near f32::MAX.
    let x32 = Tensor::from_vec(vec![3e38_f32, 3e38, 3e38, -3e38], &[4, 1]).unwrap();
    let s32 = Standardizer::fit(&x32).unwrap();
    let back = s32
        .inverse_transform(&s32.transform(&x32).unwrap())
        .unwrap();
    for (b, x) in back.to_vec().into_iter().zip(x32.to_vec()) {
        assert!((b - x).abs() <= 1e-6 * x.abs(), "{b} for {x}");
    }

    let tiny = Tensor::from_vec(vec![1e-300, 2e-300], &[2, 1]).unwrap();
    let s = Standardizer::fit(&tiny).unwrap();
    let far = Tensor::from_vec(vec![0.0, 1e10], &[2, 1]).unwrap();
    let err = s.transform(&far).unwrap_err().to_string();
    assert!(
        err.contains("row 1, column 0") && err.contains("1e10"),
        "{err}"
    );
    let err = Standardizer::fit(&x)
        .unwrap()
        .inverse_transform(&Tensor::from_vec(vec![-1.0, 5.0], &[2, 1]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 1, column 0"), "{err}");
    // Non-finite inputs are passed through as they are (they are not an overflow).
    let nan = Tensor::from_vec(vec![f64::NAN], &[1, 1]).unwrap();
    assert!(s.transform(&nan).unwrap().to_vec()[0].is_nan());
}

/// `Mlp::new` seeded layer `l` with `seed + l`, so networks built with consecutive seeds (runs
/// meant to be independent) shared layers: layer 1 of seed 0 was layer 0 of seed 1, weight for
/// weight. Found by comparing the layers of networks of seeds 0..4.
#[test]
fn networks_of_different_seeds_share_no_layer() {
    use perturb_nn::nn::{Activation, Init, Mlp};
    let nets: Vec<Mlp<f64>> = (0..4)
        .map(|seed| Mlp::new(&[5, 5, 5, 5], Activation::Tanh, Init::XavierUniform, seed).unwrap())
        .collect();
    let weights: Vec<Vec<f64>> = nets
        .iter()
        .flat_map(|n| n.layers.iter().map(|l| l.weight.to_vec()))
        .collect();
    for (i, a) in weights.iter().enumerate() {
        for b in &weights[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Still deterministic by seed.
    let again = Mlp::<f64>::new(&[5, 5, 5, 5], Activation::Tanh, Init::XavierUniform, 2).unwrap();
    assert_eq!(
        again.param_tensors()[2].to_vec(),
        nets[2].param_tensors()[2].to_vec()
    );
}

/// Hyperparameters were checked in f64, then converted to the parameters' type: for f32,
/// lr 1e-50 became 0 (no update, Ok), lr 1e300 became inf (parameters -inf/NaN, Ok), eps
/// 1e-50 became 0 (0/0 = NaN for a zero gradient, Ok), beta2 = 1 - 1e-9 became 1 (bias
/// correction 1 - 1^t = 0, NaN, Ok). Now each is an error naming it and the type, with
/// nothing updated. Found stepping f32 optimisers with extreme settings.
#[test]
fn hyperparameters_that_f32_cannot_hold_are_errors() {
    use perturb_nn::optim::{Adam, GradientDescent, Optimizer, Sgd};
    let p0 = vec![Tensor::vector(&[1.0_f32, -2.0])];
    let g = [Tensor::vector(&[0.0_f32, 0.5])];
    let mut cases: Vec<(&str, Box<dyn Optimizer<f32>>)> = vec![
        ("lr", Box::new(GradientDescent::new(1e-50))),
        ("lr", Box::new(GradientDescent::new(1e300))),
        ("lr", Box::new(Sgd::new(1e-50, 0.9, false))),
        ("momentum", Box::new(Sgd::new(0.1, 1.0 - 1e-9, true))),
        ("eps", Box::new(Adam::new(0.1).with_betas(0.9, 0.999))),
        (
            "beta2",
            Box::new(Adam::new(0.1).with_betas(0.9, 1.0 - 1e-9)),
        ),
        (
            "weight_decay",
            Box::new(Adam::new(0.1).with_weight_decay(1e-60, true)),
        ),
    ];
    if let Some((_, opt)) = cases.get_mut(4) {
        // Adam's fields are public; reach eps through a fresh optimiser.
        let mut adam = Adam::<f32>::new(0.1);
        adam.eps = 1e-50;
        *opt = Box::new(adam);
    }
    for (name, mut opt) in cases {
        let mut p = p0.clone();
        let err = opt.step(&mut p, &g).unwrap_err().to_string();
        assert!(err.contains(name) && err.contains("f32"), "{name}: {err}");
        assert_eq!(p[0].to_vec(), p0[0].to_vec(), "{name}: params changed");
    }
    // In f64 the same small settings are fine.
    let mut p = vec![Tensor::vector(&[1.0_f64])];
    GradientDescent::new(1e-50)
        .step(&mut p, &[Tensor::vector(&[1.0])])
        .unwrap();
    let mut adam = Adam::<f64>::new(0.1).with_betas(0.9, 1.0 - 1e-9);
    adam.eps = 1e-50;
    adam.step(&mut p, &[Tensor::vector(&[0.0])]).unwrap();
    assert!(p[0].to_vec()[0].is_finite());
}

/// `Init::weight` (public) had no size check: `(2^40, 2^40)` overflowed the element count (a
/// debug panic inside the tensor code, a wrapped shape in release) and `(2^20, 2^20)` asked for
/// 8 TB. It now panics with a message naming it and the sizes before allocating, as
/// `Linear::new` does; a matrix with a 0 side is still an empty matrix.
#[test]
fn init_weight_refuses_huge_matrices_before_allocating() {
    use perturb_nn::nn::Init;
    for (a, b) in [(1_usize << 40, 1_usize << 40), (1 << 20, 1 << 20)] {
        let caught = std::panic::catch_unwind(|| Init::HeNormal.weight::<f32>(a, b, 0));
        let message = caught
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(message.contains("Init::weight") && message.contains(&a.to_string()));
    }
    assert_eq!(Init::XavierUniform.weight::<f64>(0, 3, 0).shape(), &[0, 3]);
}

/// The generators reserved `n` rows up front: `two_moons(usize::MAX, ..)` panicked with
/// "capacity overflow" and `xor(1 << 40, ..)` aborted the process on a failed allocation,
/// though they return a `Result`. Now an error names the generator and the cap.
#[test]
fn generators_refuse_absurd_row_counts() {
    use perturb_nn::data::{circles, spirals, two_moons, xor, MAX_GENERATED_ROWS};
    for n in [usize::MAX, 1 << 40, MAX_GENERATED_ROWS + 1] {
        let errors = [
            two_moons::<f64>(n, 0.1, 0).unwrap_err().to_string(),
            circles::<f64>(n, 0.1, 0.5, 0).unwrap_err().to_string(),
            spirals::<f64>(n, 0.1, 0).unwrap_err().to_string(),
            xor::<f64>(n, 0.1, 0).unwrap_err().to_string(),
        ];
        for (e, name) in errors
            .iter()
            .zip(["two_moons", "circles", "spirals", "xor"])
        {
            assert!(e.contains(name) && e.contains("rows"), "{e}");
        }
    }
}

/// `softmax_cross_entropy` with one label too few said "shapes [3, 2] and [2] do not match"
/// (U9's kind: which shapes, and what should match?). Now it counts rows and labels.
#[test]
fn softmax_cross_entropy_counts_rows_and_labels() {
    use perturb_nn::loss::{softmax_cross_entropy, Reduction};
    let z = Tensor::<f64>::zeros(&[3, 2]);
    let err = softmax_cross_entropy(&z, &[0, 1], Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(err.contains("3 rows") && err.contains("2 labels"), "{err}");
}

/// `Mlp::load_params` (how saved weights enter a model) accepted NaN and infinite values:
/// every prediction was then NaN, and a classifier read as class 0 everywhere. Now an error
/// names the parameter and the element, with the model unchanged.
#[test]
fn load_params_refuses_weights_that_are_not_finite() {
    use perturb_nn::nn::{Activation, Init, Mlp};
    let mut net = Mlp::<f64>::new(&[2, 2, 1], Activation::Tanh, Init::XavierUniform, 0).unwrap();
    let before = net.param_tensors();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut p = before.clone();
        p[3] = Tensor::vector(&[bad]);
        let err = net.load_params(&p).unwrap_err().to_string();
        assert!(
            err.contains("layer1.bias") && err.contains("element 0"),
            "{err}"
        );
        assert_eq!(
            net.param_tensors()
                .iter()
                .map(Tensor::to_vec)
                .collect::<Vec<_>>(),
            before.iter().map(Tensor::to_vec).collect::<Vec<_>>()
        );
    }
}

/// The CSV reader's errors quoted a field's bytes raw: an escape sequence in a column name
/// or a value (`ESC [31m`) reached whoever printed the error, a terminal recoloured by a data
/// file. Both are now shown with their control characters escaped.
#[test]
fn csv_errors_show_control_characters_escaped() {
    use perturb_nn::data::{load_csv_from_reader, TargetColumn};
    for bytes in [
        &b"a,b\xff\x1b[31mRED,y\n1,2,0\n"[..],
        b"a,b,y\n1,\x1b[31mRED,0\n",
    ] {
        let err = load_csv_from_reader(bytes, "hostile.csv", TargetColumn::Last)
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\x1b'), "{err:?}");
        assert!(err.contains("\\u{1b}[31mRED"), "{err:?}");
    }
}

/// A test fraction of 1e-300 was shown in full decimal in the error ("test_fraction
/// 0.000...0001", 300 zeros): now in its shortest exact form.
#[test]
fn a_tiny_test_fraction_is_shown_short_in_the_error() {
    let d = perturb_nn::data::xor::<f64>(20, 0.0, 0).unwrap();
    for fraction in [1e-300, -1e-300] {
        let err = perturb_nn::data::train_test_split(&d, fraction, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1e-300") && err.len() < 200, "{err}");
    }
}
