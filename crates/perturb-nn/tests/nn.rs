//! Tests of layers, losses and optimisers against hand computations, finite differences and
//! small training runs.

use perturb::tensor::{Tensor, TensorTape};
use perturb_nn::loss::{
    bce_with_logits, binary_accuracy, logistic_nll, mse, softmax_cross_entropy, Reduction,
};
use perturb_nn::nn::{Activation, Init, Linear, Mlp};
use perturb_nn::optim::{clip_grad_norm, Adam, GradientDescent, Optimizer, Schedule, Sgd};
use rand::{Rng, SeedableRng};

fn t(data: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn scalar(x: &Tensor<f64>) -> f64 {
    assert_eq!(x.shape(), &[] as &[usize], "a loss must be 0-dimensional");
    x.to_vec()[0]
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Central finite difference of `f` at `x`, element by element.
fn finite_difference(f: impl Fn(&Tensor<f64>) -> f64, x: &Tensor<f64>) -> Vec<f64> {
    let h = 1e-6;
    let base = x.to_vec();
    (0..base.len())
        .map(|i| {
            let mut plus = base.clone();
            let mut minus = base.clone();
            plus[i] += h;
            minus[i] -= h;
            (f(&t(&plus, x.shape())) - f(&t(&minus, x.shape()))) / (2.0 * h)
        })
        .collect()
}

/// Checks that the tape's gradient of `loss` at `x` matches a central finite difference.
fn check_gradient(
    loss: impl for<'t> Fn(
        &perturb::tensor::TensorVar<'t, Tensor<f64>>,
    ) -> perturb::tensor::TensorVar<'t, Tensor<f64>>,
    plain: impl Fn(&Tensor<f64>) -> f64,
    x: &Tensor<f64>,
) {
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let l = loss(&xv);
    let grad = tape.gradient(&l, &[&xv]).unwrap().remove(0).to_vec();
    let fd = finite_difference(plain, x);
    for (g, f) in grad.iter().zip(&fd) {
        assert!(
            (g - f).abs() < 1e-6,
            "tape {grad:?} vs finite difference {fd:?}"
        );
    }
}

// ---- nn ---------------------------------------------------------------------------------------

#[test]
fn lecture_network_has_13_parameters() {
    let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 42).unwrap();
    // W (2x3) = 6, b = 3, w0 (3x1) = 3, c = 1
    assert_eq!(net.num_parameters(), 13);
    let shapes: Vec<(String, Vec<usize>)> = net
        .parameters()
        .into_iter()
        .map(|(n, p)| (n, p.shape().to_vec()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            ("layer0.weight".to_string(), vec![2, 3]),
            ("layer0.bias".to_string(), vec![3]),
            ("layer1.weight".to_string(), vec![3, 1]),
            ("layer1.bias".to_string(), vec![1]),
        ]
    );
    // Xavier uniform bound for the first layer: sqrt(6 / (2 + 3))
    let a = (6.0_f64 / 5.0).sqrt();
    assert!(net.layers[0].weight.to_vec().iter().all(|w| w.abs() <= a));
    // biases start at zero; weights are not all zero
    assert_eq!(net.layers[0].bias.as_ref().unwrap().to_vec(), vec![0.0; 3]);
    assert!(net.layers[0].weight.to_vec().iter().any(|&w| w != 0.0));
}

#[test]
fn lecture_network_forward_matches_hand_computation() {
    let mut net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 0).unwrap();
    let w = [[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]];
    let b = [0.01, -0.02, 0.03];
    let w0 = [1.0, -2.0, 0.5];
    let c = 0.25;
    net.load_params(&[
        t(
            &[w[0][0], w[0][1], w[0][2], w[1][0], w[1][1], w[1][2]],
            &[2, 3],
        ),
        t(&b, &[3]),
        t(&w0, &[3, 1]),
        t(&[c], &[1]),
    ])
    .unwrap();
    let xs = [[1.0, 2.0], [-0.5, 0.3], [0.0, 0.0]];
    let x = t(&[1.0, 2.0, -0.5, 0.3, 0.0, 0.0], &[3, 2]);
    let z = net.predict(&x).unwrap();
    assert_eq!(z.shape(), &[3, 1]);
    // The lecture's formula: h_j = sigmoid(x . W[:, j] + b_j), z = sum_j w0_j h_j + c (no
    // activation on the output).
    for (row, xi) in xs.iter().enumerate() {
        let mut expected = c;
        for j in 0..3 {
            let h = sigmoid(xi[0] * w[0][j] + xi[1] * w[1][j] + b[j]);
            expected += w0[j] * h;
        }
        assert!((z.to_vec()[row] - expected).abs() < 1e-14, "row {row}");
    }
    // The same model on tape variables gives the same numbers.
    let tape = TensorTape::new();
    let vars: Vec<_> = net
        .param_tensors()
        .into_iter()
        .map(|p| tape.var(p))
        .collect();
    let zv = net.forward(&vars, &tape.constant(x)).unwrap();
    assert_eq!(zv.value().to_vec(), z.to_vec());
}

#[test]
fn forward_rejects_bad_params_and_inputs() {
    let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Tanh, Init::HeNormal, 0).unwrap();
    let mut p = net.param_tensors();
    assert!(net.forward(&p, &Tensor::zeros(&[4, 3])).is_err()); // 3 inputs, not 2
    p[1] = Tensor::zeros(&[4]);
    let err = net.forward(&p, &Tensor::zeros(&[4, 2])).unwrap_err();
    assert!(err.to_string().contains("Linear::forward"), "{err}");
    assert!(Mlp::<f64>::new(&[], Activation::Tanh, Init::HeNormal, 0).is_err());
}

#[test]
fn init_is_seeded_and_scaled() {
    let a = Linear::<f64>::new(400, 300, true, Init::HeNormal, 9);
    let b = Linear::<f64>::new(400, 300, true, Init::HeNormal, 9);
    assert_eq!(a.weight.to_vec(), b.weight.to_vec());
    // He normal: variance 2 / fan_in = 0.005; 120,000 samples estimate it within a few %.
    let w = a.weight.to_vec();
    let var = w.iter().map(|x| x * x).sum::<f64>() / w.len() as f64;
    assert!((var - 0.005).abs() < 0.0003, "{var}");
}

#[test]
fn activations_match_their_formulas() {
    let x = t(&[-2.0, 0.0, 1.5], &[3]);
    type Case = (Activation, fn(f64) -> f64);
    let cases: [Case; 5] = [
        (Activation::Sigmoid, sigmoid),
        (Activation::Tanh, f64::tanh),
        (Activation::Relu, |v| v.max(0.0)),
        (Activation::Softplus, |v| v.exp().ln_1p()),
        (Activation::Identity, |v| v),
    ];
    for (act, f) in cases {
        let y = act.apply(&x).to_vec();
        for (yi, xi) in y.iter().zip(x.to_vec()) {
            assert!((yi - f(xi)).abs() < 1e-15, "{act:?} at {xi}");
        }
    }
}

// ---- losses -----------------------------------------------------------------------------------

#[test]
fn logistic_nll_matches_hand_computation_and_finite_difference() {
    let z = t(&[1.5, -0.3, 2.0], &[3]);
    let y = t(&[1.0, 0.0, 0.0], &[3]);
    // -log sigmoid(s z) = ln(1 + exp(-s z)), s = 2y - 1 = [1, -1, -1]
    let expected = (-1.5_f64).exp().ln_1p() + (-0.3_f64).exp().ln_1p() + 2.0_f64.exp().ln_1p();
    let sum = scalar(&logistic_nll(&z, &y, Reduction::Sum).unwrap());
    let mean = scalar(&logistic_nll(&z, &y, Reduction::Mean).unwrap());
    assert!((sum - expected).abs() < 1e-14);
    assert!((mean - expected / 3.0).abs() < 1e-14);
    let yc = y.clone();
    check_gradient(
        |zv| logistic_nll(zv, &zv.tape_constant(&yc), Reduction::Sum).unwrap(),
        |zp| scalar(&logistic_nll(zp, &y, Reduction::Sum).unwrap()),
        &z,
    );
}

#[test]
fn logistic_nll_is_stable_at_800() {
    let z = t(&[800.0, -800.0, 800.0, -800.0], &[4]);
    let y = t(&[1.0, 0.0, 0.0, 1.0], &[4]);
    // right with certainty: ln(1 + e^-800) = 0 in f64; wrong: ln(1 + e^800) = 800 each
    assert_eq!(
        scalar(&logistic_nll(&z, &y, Reduction::Sum).unwrap()),
        1600.0
    );
    let tape = TensorTape::new();
    let zv = tape.var(z);
    let l = logistic_nll(&zv, &tape.constant(y), Reduction::Sum).unwrap();
    let g = tape.gradient(&l, &[&zv]).unwrap().remove(0).to_vec();
    // d/dz = -s sigmoid(-s z): 0 where right, -s where wrong (s = +1 for y = 1, -1 for y = 0)
    assert_eq!(g, vec![0.0, 0.0, 1.0, -1.0]);
}

#[test]
fn bce_with_logits_matches_hand_computation_and_finite_difference() {
    let z = t(&[0.7, -1.2, 3.0], &[3, 1]);
    let y = t(&[0.3, 1.0, 0.0], &[3, 1]);
    // -(t ln p + (1 - t) ln(1 - p)) with p = sigmoid(z) computed directly
    let expected: f64 = [(0.7, 0.3), (-1.2, 1.0), (3.0, 0.0)]
        .iter()
        .map(|&(zi, ti): &(f64, f64)| {
            let p = sigmoid(zi);
            -(ti * p.ln() + (1.0 - ti) * (1.0 - p).ln())
        })
        .sum();
    let sum = scalar(&bce_with_logits(&z, &y, Reduction::Sum).unwrap());
    assert!((sum - expected).abs() < 1e-13, "{sum} vs {expected}");
    let mean = scalar(&bce_with_logits(&z, &y, Reduction::Mean).unwrap());
    assert!((mean - expected / 3.0).abs() < 1e-13);
    // with 0/1 targets it is the logistic NLL
    let y01 = t(&[1.0, 0.0, 1.0], &[3, 1]);
    let a = scalar(&bce_with_logits(&z, &y01, Reduction::Sum).unwrap());
    let b = scalar(&logistic_nll(&z, &y01, Reduction::Sum).unwrap());
    assert!((a - b).abs() < 1e-14);
    let yc = y.clone();
    check_gradient(
        |zv| bce_with_logits(zv, &zv.tape_constant(&yc), Reduction::Mean).unwrap(),
        |zp| scalar(&bce_with_logits(zp, &y, Reduction::Mean).unwrap()),
        &z,
    );
}

#[test]
fn softmax_cross_entropy_matches_hand_computation_and_finite_difference() {
    let z = t(&[1.0, 2.0, 3.0, 0.5, -0.5, 0.0], &[2, 3]);
    let labels = [2, 0];
    // -ln(e^3 / (e^1 + e^2 + e^3)) - ln(e^0.5 / (e^0.5 + e^-0.5 + e^0))
    let e = f64::exp;
    let expected =
        -(e(3.0) / (e(1.0) + e(2.0) + e(3.0))).ln() - (e(0.5) / (e(0.5) + e(-0.5) + e(0.0))).ln();
    let sum = scalar(&softmax_cross_entropy(&z, &labels, Reduction::Sum).unwrap());
    assert!((sum - expected).abs() < 1e-14, "{sum} vs {expected}");
    let mean = scalar(&softmax_cross_entropy(&z, &labels, Reduction::Mean).unwrap());
    assert!((mean - expected / 2.0).abs() < 1e-14);
    check_gradient(
        |zv| softmax_cross_entropy(zv, &labels, Reduction::Sum).unwrap(),
        |zp| scalar(&softmax_cross_entropy(zp, &labels, Reduction::Sum).unwrap()),
        &z,
    );
    // errors name the loss and the shapes
    let err = softmax_cross_entropy(&z, &[0], Reduction::Sum).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("softmax_cross_entropy") && msg.contains("[2, 3]"),
        "{msg}"
    );
    assert!(softmax_cross_entropy(&z, &[0, 3], Reduction::Sum).is_err());
    assert!(softmax_cross_entropy(&t(&[1.0], &[1]), &[0], Reduction::Sum).is_err());
}

#[test]
fn mse_matches_hand_computation_and_finite_difference() {
    let p = t(&[1.0, 2.0, 3.0], &[3]);
    let y = t(&[0.5, 2.5, 5.0], &[3]);
    // 0.5^2 + 0.5^2 + 2^2 = 4.5, mean 1.5
    assert_eq!(scalar(&mse(&p, &y, Reduction::Sum).unwrap()), 4.5);
    assert_eq!(scalar(&mse(&p, &y, Reduction::Mean).unwrap()), 1.5);
    let yc = y.clone();
    check_gradient(
        |pv| mse(pv, &pv.tape_constant(&yc), Reduction::Mean).unwrap(),
        |pp| scalar(&mse(pp, &y, Reduction::Mean).unwrap()),
        &p,
    );
}

#[test]
fn loss_shape_mismatches_are_errors_naming_loss_and_shapes() {
    let a = Tensor::<f64>::zeros(&[3, 1]);
    let b = Tensor::<f64>::zeros(&[3]);
    for (name, err) in [
        (
            "logistic_nll",
            logistic_nll(&a, &b, Reduction::Sum).unwrap_err(),
        ),
        (
            "bce_with_logits",
            bce_with_logits(&a, &b, Reduction::Sum).unwrap_err(),
        ),
        ("mse", mse(&a, &b, Reduction::Sum).unwrap_err()),
    ] {
        let msg = err.to_string();
        assert!(
            msg.contains(name) && msg.contains("shape [3, 1] but the") && msg.contains("[3]"),
            "{msg}"
        );
        assert!(msg.contains("reshape"), "{msg}");
    }
    let empty = Tensor::<f64>::zeros(&[0]);
    assert!(mse(&empty, &empty, Reduction::Mean).is_err());
    assert_eq!(scalar(&mse(&empty, &empty, Reduction::Sum).unwrap()), 0.0);
}

#[test]
fn losses_reject_labels_and_targets_outside_their_domain() {
    // S3: labels 1/2 trained "to 100%" (sign 2y - 1 = 1 or 3); 0.5 gave no gradient.
    let z = t(&[0.5, -0.5, 1.0], &[3]);
    for (labels, bad) in [
        ([0.0, 1.0, 2.0], "label 2 at row 2"),
        ([0.5, 1.0, 0.0], "label 0.5 at row 0"),
        ([0.0, -1.0, 1.0], "label -1 at row 1"),
        ([0.0, f64::NAN, 1.0], "label NaN at row 1"),
    ] {
        let y = t(&labels, &[3]);
        let msg = logistic_nll(&z, &y, Reduction::Mean)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("logistic_nll") && msg.contains(bad), "{msg}");
        assert!(msg.contains("not 0 or 1"), "{msg}");
        let msg = binary_accuracy(&z, &y).unwrap_err().to_string();
        assert!(
            msg.contains("binary_accuracy") && msg.contains(bad),
            "{msg}"
        );
    }
    // A NaN logit predicts nothing; it was counted as class 0.
    let msg = binary_accuracy(&t(&[1.0, f64::NAN, -1.0], &[3]), &t(&[1.0, 0.0, 0.0], &[3]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("logit NaN at row 1"), "{msg}");
    // Infinite logits are clear predictions.
    let acc = binary_accuracy(
        &t(&[f64::INFINITY, f64::NEG_INFINITY], &[2]),
        &t(&[1.0, 0.0], &[2]),
    );
    assert_eq!(acc.unwrap(), 1.0);
    // The same through tape variables, and for a column of labels.
    let tape = TensorTape::new();
    let zv = tape.var(t(&[0.5, -0.5], &[2, 1]));
    let msg = logistic_nll(&zv, &tape.constant(t(&[1.0, 3.0], &[2, 1])), Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("label 3 at row 1"), "{msg}");
    // BCE targets are probabilities in [0, 1]; MSE targets must be finite.
    let msg = bce_with_logits(&z, &t(&[0.5, 1.5, 0.0], &[3]), Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("target 1.5 at row 1"), "{msg}");
    assert!(bce_with_logits(&z, &t(&[0.5, f64::NAN, 0.0], &[3]), Reduction::Sum).is_err());
    let msg = mse(&z, &t(&[0.5, 1.0, f64::INFINITY], &[3]), Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("mse") && msg.contains("target inf at row 2"),
        "{msg}"
    );
    // Softmax cross-entropy names the row and the class count.
    let logits = Tensor::<f64>::zeros(&[2, 3]);
    let msg = softmax_cross_entropy(&logits, &[0, 7], Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("label 7 at row 1") && msg.contains("3 classes"),
        "{msg}"
    );
}

/// Makes a tape constant on the same tape as `self`: tape variables in the loss closures get
/// their labels this way.
trait TapeConstant<'t> {
    fn tape_constant(&self, value: &Tensor<f64>) -> perturb::tensor::TensorVar<'t, Tensor<f64>>;
}

impl<'t> TapeConstant<'t> for perturb::tensor::TensorVar<'t, Tensor<f64>> {
    fn tape_constant(&self, value: &Tensor<f64>) -> perturb::tensor::TensorVar<'t, Tensor<f64>> {
        perturb::tensor::TensorVar::constant(value.clone())
    }
}

// ---- optimisers -------------------------------------------------------------------------------

#[test]
fn gradient_descent_step_is_exactly_w_minus_lr_g() {
    let w = t(&[0.3, -1.7, 2.0, 0.0], &[2, 2]);
    let g = t(&[0.11, 2.5, -0.3, 1e-3], &[2, 2]);
    let lr = 0.07;
    let mut p = vec![w.clone()];
    GradientDescent::new(lr)
        .step(&mut p, std::slice::from_ref(&g))
        .unwrap();
    // The lecture's update, element by element in f64: bit-for-bit equal.
    let expected: Vec<f64> = w
        .to_vec()
        .iter()
        .zip(g.to_vec())
        .map(|(w, g)| w - lr * g)
        .collect();
    assert_eq!(p[0].to_vec(), expected);
    assert_eq!(p[0].shape(), &[2, 2]);
}

#[test]
fn optimisers_reject_mismatched_grads() {
    let mut p = vec![Tensor::<f64>::zeros(&[2])];
    let bad_len: Vec<Tensor<f64>> = vec![];
    let bad_shape = vec![Tensor::<f64>::zeros(&[3])];
    let mut gd = GradientDescent::new(0.1);
    let mut sgd = Sgd::new(0.1, 0.9, false);
    let mut adam = Adam::new(0.1);
    let opts: [&mut dyn Optimizer<f64>; 3] = [&mut gd, &mut sgd, &mut adam];
    for opt in opts {
        assert!(opt.step(&mut p, &bad_len).is_err());
        let err = opt.step(&mut p, &bad_shape).unwrap_err().to_string();
        assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
        assert_eq!(p[0].to_vec(), vec![0.0, 0.0]); // nothing updated
    }
    // state made for one shape refuses another
    let mut sgd = Sgd::new(0.1, 0.9, false);
    sgd.step(&mut p, &[Tensor::ones(&[2])]).unwrap();
    let mut q = vec![Tensor::<f64>::zeros(&[3])];
    let msg = sgd
        .step(&mut q, &[Tensor::ones(&[3])])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("params[0] has shape [3], but the optimiser's state was made for [2]"),
        "{msg}"
    );
    // Which tensor disagrees is named.
    let mut two = vec![Tensor::<f64>::zeros(&[2]), Tensor::zeros(&[4])];
    let msg = GradientDescent::new(0.1)
        .step(&mut two, &[Tensor::ones(&[2]), Tensor::ones(&[5])])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("grads[1] has shape [5], but params[1] has shape [4]"),
        "{msg}"
    );
}

#[test]
fn sgd_momentum_first_two_steps() {
    let (g1, g2) = (t(&[1.0], &[1]), t(&[2.0], &[1]));
    // Plain momentum, lr 0.1, mu 0.9: v1 = 1, w1 = -0.1; v2 = 0.9 * 1 + 2 = 2.9,
    // w2 = -0.1 - 0.1 * 2.9 = -0.39.
    let mut p = vec![t(&[0.0], &[1])];
    let mut opt = Sgd::new(0.1, 0.9, false);
    opt.step(&mut p, std::slice::from_ref(&g1)).unwrap();
    assert!((p[0].to_vec()[0] - -0.1).abs() < 1e-15);
    opt.step(&mut p, std::slice::from_ref(&g2)).unwrap();
    assert!((p[0].to_vec()[0] - -0.39).abs() < 1e-15);
    // Nesterov: w1 = -0.1 (1 + 0.9 * 1) = -0.19; v2 = 2.9, w2 = -0.19 - 0.1 (2 + 0.9 * 2.9)
    // = -0.19 - 0.461 = -0.651.
    let mut p = vec![t(&[0.0], &[1])];
    let mut opt = Sgd::new(0.1, 0.9, true);
    opt.step(&mut p, std::slice::from_ref(&g1)).unwrap();
    assert!((p[0].to_vec()[0] - -0.19).abs() < 1e-15);
    opt.step(&mut p, std::slice::from_ref(&g2)).unwrap();
    assert!((p[0].to_vec()[0] - -0.651).abs() < 1e-15);
}

#[test]
fn adam_first_two_steps() {
    let mut p = vec![t(&[1.0], &[1])];
    let mut opt = Adam::new(0.1);
    opt.step(&mut p, &[t(&[0.5], &[1])]).unwrap();
    // m1 = 0.1 * 0.5 = 0.05, v1 = 0.001 * 0.25 = 0.00025; m^ = 0.05 / 0.1 = 0.5,
    // v^ = 0.00025 / 0.001 = 0.25; w1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8) ~ 0.900000002
    let w1 = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8);
    assert!((p[0].to_vec()[0] - w1).abs() < 1e-14);
    assert!((w1 - 0.900000002).abs() < 1e-12);
    opt.step(&mut p, &[t(&[-1.0], &[1])]).unwrap();
    // m2 = 0.9 * 0.05 + 0.1 * -1 = -0.055, v2 = 0.999 * 0.00025 + 0.001 * 1 = 0.00124975;
    // m^ = -0.055 / (1 - 0.81) = -0.28947..., v^ = 0.00124975 / (1 - 0.998001) = 0.62519...;
    // w2 = w1 + 0.1 * 0.28947 / (sqrt(0.62519) + 1e-8) ~ w1 + 0.036610
    let m_hat = -0.055 / 0.19;
    let v_hat = 0.00124975 / 0.001999;
    let w2 = w1 - 0.1 * m_hat / (f64::sqrt(v_hat) + 1e-8);
    assert!(
        (p[0].to_vec()[0] - w2).abs() < 1e-12,
        "{:?} vs {w2}",
        p[0].to_vec()
    );
    assert!((w2 - w1 - 0.036610).abs() < 1e-6);
    assert_eq!(opt.steps(), 2);
}

#[test]
fn adamw_decays_weights_apart_from_the_gradient() {
    let mut p = vec![t(&[2.0], &[1])];
    let mut opt = Adam::new(0.1).with_weight_decay(0.1, true);
    opt.step(&mut p, &[t(&[0.5], &[1])]).unwrap();
    // w = 2 - 0.1 * 0.1 * 2 = 1.98, then the Adam step of ~0.1 as above: 1.88
    let expected = 2.0 - 0.1 * 0.1 * 2.0 - 0.1 * 0.5 / (0.5 + 1e-8);
    assert!((p[0].to_vec()[0] - expected).abs() < 1e-14);
    // L2 (coupled): the gradient is 0.5 + 0.1 * 2 = 0.7, m^ = 0.7, v^ = 0.49: w = 2 - ~0.1
    let mut p = vec![t(&[2.0], &[1])];
    let mut opt = Adam::new(0.1).with_weight_decay(0.1, false);
    opt.step(&mut p, &[t(&[0.5], &[1])]).unwrap();
    let expected = 2.0 - 0.1 * 0.7 / (0.7 + 1e-8);
    assert!((p[0].to_vec()[0] - expected).abs() < 1e-14);
}

#[test]
fn schedules_at_chosen_steps() {
    assert_eq!(Schedule::Constant.lr_at(0.3, 1000), 0.3);
    let s = Schedule::Step {
        every: 3,
        gamma: 0.1,
    };
    // gamma^(step / 3): steps 0..2 -> 1, 3..5 -> 0.1, 7 -> 0.01
    assert_eq!(s.lr_at(2.0, 2), 2.0);
    assert!((s.lr_at(2.0, 3) - 0.2).abs() < 1e-15);
    assert!((s.lr_at(2.0, 7) - 0.02).abs() < 1e-15);
    let c = Schedule::Cosine {
        total: 4,
        min_lr: 0.1,
    };
    // 0.1 + 0.5 (1.1 - 0.1)(1 + cos(pi k / 4)): k=0 -> 1.1, k=1 -> 0.1 + 0.5 (1 + 0.70711)
    // = 0.95355, k=2 -> 0.6, k>=4 -> 0.1
    assert_eq!(c.lr_at(1.1, 0), 1.1);
    assert!((c.lr_at(1.1, 1) - 0.953_553_390_593_273_8).abs() < 1e-12);
    assert!((c.lr_at(1.1, 2) - 0.6).abs() < 1e-15);
    assert_eq!(c.lr_at(1.1, 4), 0.1);
    assert_eq!(c.lr_at(1.1, 10), 0.1);
    // an optimiser follows a schedule through set_lr
    let mut opt = GradientDescent::new(1.1);
    Optimizer::<f64>::set_lr(&mut opt, c.lr_at(1.1, 2));
    assert!((opt.lr - 0.6).abs() < 1e-15);
}

#[test]
fn clip_grad_norm_scales_to_max_norm() {
    let mut g = vec![t(&[1.0, 2.0, 2.0], &[3]), t(&[4.0], &[1])];
    // sqrt(1 + 4 + 4 + 16) = 5
    let before = clip_grad_norm(&mut g, 2.0).unwrap();
    assert_eq!(before, 5.0);
    let after: f64 = g
        .iter()
        .flat_map(|x| x.to_vec())
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt();
    assert!((after - 2.0).abs() < 1e-15);
    // direction kept: each scaled by 2 / 5
    assert!((g[0].to_vec()[1] - 0.8).abs() < 1e-15);
    // already within the bound: unchanged
    let mut g = vec![t(&[0.3, 0.4], &[2])];
    assert!((clip_grad_norm(&mut g, 1.0).unwrap() - 0.5).abs() < 1e-15);
    assert_eq!(g[0].to_vec(), vec![0.3, 0.4]);
}

#[test]
fn clip_grad_norm_of_huge_gradients_and_bad_bounds() {
    // The norm of 1e200-sized gradients overflowed to inf, so they were left unclipped.
    let mut g = vec![t(&[3e200], &[1]), t(&[4e200], &[1])];
    let norm = clip_grad_norm(&mut g, 1.0).unwrap();
    assert!((norm / 5e200 - 1.0).abs() < 1e-15, "{norm}");
    assert!((g[0].to_vec()[0] - 0.6).abs() < 1e-15 && (g[1].to_vec()[0] - 0.8).abs() < 1e-15);
    // f32 gradients whose norm exceeds f32's range are scaled, not zeroed.
    let mut g = vec![Tensor::vector(&[3e38_f32, 3e38])];
    let norm = clip_grad_norm(&mut g, 1.0).unwrap();
    assert!(norm > f32::MAX as f64);
    let v = g[0].to_vec();
    assert!(
        (v[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6,
        "{v:?}"
    );
    // A NaN bound zeroed every gradient (NaN.max(0) = 0); now it is an error, as is a negative one.
    let mut g = vec![t(&[1.0, 2.0], &[2])];
    for bad in [f64::NAN, -1.0] {
        let msg = clip_grad_norm(&mut g, bad).unwrap_err().to_string();
        assert!(
            msg.contains("clip_grad_norm") && msg.contains("max_norm"),
            "{msg}"
        );
    }
    assert_eq!(g[0].to_vec(), vec![1.0, 2.0]);
}

#[test]
fn optimisers_reject_bad_hyperparameters_and_leave_params_alone() {
    // S8: GradientDescent::new(NaN).step(..) turned the parameters to NaN and returned Ok.
    let p0 = vec![t(&[1.0, 2.0], &[2])];
    let g = [t(&[0.5, -0.5], &[2])];
    let mut cases: Vec<(Box<dyn Optimizer<f64>>, &str)> = vec![
        (
            Box::new(GradientDescent::new(f64::NAN)),
            "lr must be finite",
        ),
        (
            Box::new(GradientDescent::new(-0.1)),
            "lr must be finite and >= 0, got -0.1",
        ),
        (Box::new(GradientDescent::new(f64::INFINITY)), "lr"),
        (
            Box::new(Sgd::new(0.1, 1.0, false)),
            "momentum must be in [0, 1), got 1",
        ),
        (Box::new(Sgd::new(0.1, f64::NAN, true)), "momentum"),
        (Box::new(Sgd::new(-1.0, 0.9, false)), "lr"),
        (Box::new(Adam::new(f64::NAN)), "lr"),
        (
            Box::new(Adam::new(0.1).with_betas(1.0, 0.999)),
            "beta1 must be in [0, 1)",
        ),
        (Box::new(Adam::new(0.1).with_betas(0.9, -0.1)), "beta2"),
        (
            Box::new(Adam::new(0.1).with_weight_decay(-0.01, true)),
            "weight_decay",
        ),
        (
            Box::new(Adam::new(0.1).with_weight_decay(f64::NAN, false)),
            "weight_decay",
        ),
    ];
    let mut zero_eps = Adam::new(0.1);
    zero_eps.eps = 0.0;
    cases.push((Box::new(zero_eps), "eps must be finite and > 0"));
    for (mut opt, expected) in cases {
        let mut p = p0.clone();
        let msg = opt.step(&mut p, &g).unwrap_err().to_string();
        assert!(msg.contains("::step") && msg.contains(expected), "{msg}");
        assert_eq!(p[0].to_vec(), p0[0].to_vec(), "{msg}");
    }
    // A learning rate set later (e.g. by a schedule) is checked at the next step.
    let mut opt = Sgd::new(0.1, 0.9, false);
    let mut p = p0.clone();
    opt.step(&mut p, &g).unwrap();
    opt.set_lr(f64::NAN);
    let before = p[0].to_vec();
    assert!(opt.step(&mut p, &g).is_err());
    assert_eq!(p[0].to_vec(), before);
    // The edges that are allowed: lr 0, momentum and betas 0.
    let mut p = p0.clone();
    GradientDescent::new(0.0).step(&mut p, &g).unwrap();
    Sgd::new(0.1, 0.0, false).step(&mut p, &g).unwrap();
    Adam::new(0.1)
        .with_betas(0.0, 0.0)
        .step(&mut p, &g)
        .unwrap();
    assert!(p[0].to_vec().iter().all(|v| v.is_finite()));
}

#[test]
fn mlp_and_linear_reject_empty_and_huge_sizes() {
    // S8: Mlp::new(&[2, 0, 1]) and Mlp::new(&[0, 0]) succeeded.
    for sizes in [&[2, 0, 1][..], &[0, 0], &[0, 3], &[3, 0]] {
        let msg = Mlp::<f64>::new(sizes, Activation::Tanh, Init::HeNormal, 0)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("Mlp::new") && msg.contains("is 0"),
            "{sizes:?}: {msg}"
        );
    }
    // Sizes whose element counts overflow usize, or that ask for more than MAX_PARAMETERS,
    // are errors before anything is allocated (from a model file they aborted or wrapped).
    let huge = [
        vec![2, 3, 1_000_000_000],
        vec![2, 1_000_000_000_000, 1],
        vec![4_294_967_296, 4_294_967_296, 1],
        vec![2, 9_223_372_036_854_775_808, 2],
        vec![usize::MAX, usize::MAX],
    ];
    for sizes in huge {
        let msg = Mlp::<f64>::new(&sizes, Activation::Tanh, Init::HeNormal, 0)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("Mlp::new") && msg.contains("parameters"),
            "{sizes:?}: {msg}"
        );
    }
    assert!(Linear::<f64>::try_new(0, 1, true, Init::HeNormal, 0).is_err());
    assert!(Linear::<f64>::try_new(1 << 31, 1, false, Init::HeNormal, 0).is_err());
    assert!(
        std::panic::catch_unwind(|| Linear::<f64>::new(3, 0, true, Init::HeNormal, 0)).is_err()
    );
}

#[test]
fn linear_forward_names_the_feature_counts_that_disagree() {
    // U9: "Linear::forward: shapes [4, 3] and [2, 3] do not match".
    let l = Linear::<f64>::new(2, 3, true, Init::HeNormal, 0);
    let msg = l.predict(&Tensor::zeros(&[4, 3])).unwrap_err().to_string();
    assert!(
        msg.contains("Linear::forward") && msg.contains("input has 3 features"),
        "{msg}"
    );
    assert!(msg.contains("expects 2"), "{msg}");
    let msg = l.predict(&Tensor::zeros(&[2])).unwrap_err().to_string();
    assert!(msg.contains("(N, 2)") && msg.contains("[2]"), "{msg}");
    let msg = l
        .forward(
            &[Tensor::zeros(&[2, 4]), Tensor::zeros(&[3])],
            &Tensor::zeros(&[1, 2]),
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("weight has shape [2, 4], expected [2, 3]"),
        "{msg}"
    );
    let mut net = Mlp::<f64>::new(&[2, 3, 1], Activation::Tanh, Init::HeNormal, 0).unwrap();
    let mut p = net.param_tensors();
    p[3] = Tensor::zeros(&[2]);
    let msg = net.load_params(&p).unwrap_err().to_string();
    assert!(
        msg.contains("layer1.bias has shape [2], expected [1]"),
        "{msg}"
    );
}

// ---- training ---------------------------------------------------------------------------------

/// Loss and gradients of `loss_fn` at `params` for the model `net` on `(x, y)`.
fn loss_and_grads(
    net: &Mlp<f64>,
    params: &[Tensor<f64>],
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    reduction: Reduction,
    bce: bool,
) -> (f64, Vec<Tensor<f64>>) {
    let tape = TensorTape::new();
    let vars: Vec<_> = params.iter().map(|p| tape.var(p.clone())).collect();
    let z = net.forward(&vars, &tape.constant(x.clone())).unwrap();
    let yc = tape.constant(y.clone());
    let loss = if bce {
        bce_with_logits(&z, &yc, reduction).unwrap()
    } else {
        logistic_nll(&z, &yc, reduction).unwrap()
    };
    let refs: Vec<_> = vars.iter().collect();
    let grads = tape.gradient(&loss, &refs).unwrap();
    (loss.value().to_vec()[0], grads)
}

#[test]
fn lecture_network_gradient_descent_decreases_loss() {
    // Two separable clusters around (-1.5, -1.5) (label 0) and (1.5, 1.5) (label 1).
    let n = 20;
    let noise = Tensor::<f64>::randn(&[n, 2], 0.0, 0.5, 3).to_vec();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let centre = if i < n / 2 { -1.5 } else { 1.5 };
        x.push(centre + noise[2 * i]);
        x.push(centre + noise[2 * i + 1]);
        y.push(if i < n / 2 { 0.0 } else { 1.0 });
    }
    let (x, y) = (t(&x, &[n, 2]), t(&y, &[n, 1]));
    let net = Mlp::<f64>::new(&[2, 3, 1], Activation::Sigmoid, Init::XavierUniform, 1).unwrap();
    let mut params = net.param_tensors();
    let mut opt = GradientDescent::new(0.05);
    let (first, _) = loss_and_grads(&net, &params, &x, &y, Reduction::Sum, false);
    let mut last = first;
    for _ in 0..300 {
        let (loss, grads) = loss_and_grads(&net, &params, &x, &y, Reduction::Sum, false);
        // a small enough step on this smooth loss never goes up
        assert!(loss <= last + 1e-12, "{loss} > {last}");
        last = loss;
        opt.step(&mut params, &grads).unwrap();
    }
    assert!(last < 0.5 * first, "{first} -> {last}");
    let z = net.forward(&params, &x).unwrap();
    assert_eq!(binary_accuracy(&z, &y).unwrap(), 1.0);
}

#[test]
fn xor_mlp_with_adam_reaches_95_percent() {
    // 200 points uniform in [-1, 1]^2, away from the axes by 0.05; label 1 where x0 x1 > 0.
    let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
    let n = 200;
    let mut x = Vec::new();
    let mut y = Vec::new();
    while y.len() < n {
        let (a, b): (f64, f64) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
        if a.abs() < 0.05 || b.abs() < 0.05 {
            continue;
        }
        x.extend([a, b]);
        y.push(if a * b > 0.0 { 1.0 } else { 0.0 });
    }
    let (x, y) = (t(&x, &[n, 2]), t(&y, &[n, 1]));
    let mut net =
        Mlp::<f64>::new(&[2, 16, 16, 1], Activation::Tanh, Init::XavierUniform, 7).unwrap();
    let mut params = net.param_tensors();
    let mut opt = Adam::new(0.01);
    let before = binary_accuracy(&net.forward(&params, &x).unwrap(), &y).unwrap();
    for _ in 0..500 {
        let (_, grads) = loss_and_grads(&net, &params, &x, &y, Reduction::Mean, true);
        opt.step(&mut params, &grads).unwrap();
    }
    net.load_params(&params).unwrap();
    let acc = binary_accuracy(&net.predict(&x).unwrap(), &y).unwrap();
    assert!(acc >= 0.95, "accuracy {before} -> {acc}");
}
