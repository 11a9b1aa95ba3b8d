//! The layers of `perturb_nn::layers` against independent computations: hand loops for the
//! values, central finite differences for the gradients of every parameter and of the input,
//! and the behaviour of the stateful layers (dropout's seeded masks, batch normalisation's
//! running statistics).

use perturb::tensor::conv::{Conv2dOptions, Pool2d};
use perturb::tensor::{Array, DualTensor, Tensor, TensorTape};
use perturb::tree::{Path, Tree};
use perturb_nn::layers::{
    AvgPool2d, BatchNorm, Conv2d, Dropout, Embedding, Flatten, Gelu, Layer, LayerNorm, Linear,
    MaxPool2d, Relu, Sequential, Sigmoid, Silu, Softplus, Tanh,
};
use perturb_nn::module::{Buffer, Context, Mode, Module};
use perturb_nn::nn::Init;

type Model = Sequential<Tensor<f64>>;

fn randn(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::randn(shape, 0.0, 1.0, seed)
}

fn one(layer: impl Into<Layer<Tensor<f64>>>) -> Model {
    Sequential::new().push(layer)
}

/// A fresh context of `mode` with seed 5: every evaluation of a check draws the same masks.
fn context(mode: Mode) -> Context {
    let mut ctx = Context::training(5);
    ctx.set_mode(mode);
    ctx
}

/// `L = sum(model(x) * u)`, `u` a fixed random weighting of the outputs.
fn loss(model: &Model, x: &Tensor<f64>, u: &Tensor<f64>, mode: Mode) -> f64 {
    let y = model.forward(x, &mut context(mode)).unwrap();
    y.mul(u).sum_all().to_vec()[0]
}

/// Checks the tape's gradient of `L = sum(model(x) * u)` with respect to every parameter (and
/// to `x` if `wrt_input`) against a central difference of `L` along a random direction, one
/// leaf at a time: `<grad, v>` against `(L(p + h v) - L(p - h v)) / 2h`.
fn check_gradients(model: &Model, x: &Tensor<f64>, mode: Mode, wrt_input: bool) {
    let y = model.forward(x, &mut context(mode)).unwrap();
    let u = randn(y.shape(), 99);
    let tape = TensorTape::new();
    let vars = model.map(|t| tape.var(t.clone()));
    let xv = tape.var(x.clone());
    let out = vars.forward(&xv, &mut context(mode)).unwrap();
    let l = out.mul(&tape.constant(u.clone())).sum_all();
    let mut wrt = vars.leaves();
    wrt.push(&xv);
    let grads = tape.gradient(&l, &wrt).unwrap();
    assert_eq!(grads.len(), model.num_leaves() + 1);

    let h = 1e-5;
    let paths = model.paths();
    let compare = |what: &str, grad: &Tensor<f64>, plus: f64, minus: f64, v: &Tensor<f64>| {
        let fd = (plus - minus) / (2.0 * h);
        let ad = grad.mul(v).sum_all().to_vec()[0];
        let tol = 1e-6 * (1.0 + fd.abs().max(ad.abs()));
        assert!(
            (fd - ad).abs() <= tol,
            "{what}: tape {ad}, finite difference {fd} ({})",
            model.architecture()
        );
    };
    for (i, path) in paths.iter().enumerate() {
        let leaf = model.leaves()[i].clone();
        let v = randn(leaf.shape(), 1000 + i as u64);
        let moved = |s: f64| {
            let mut m = model.clone();
            let mut k = 0;
            m.visit_mut(&mut Path::root(), &mut |_, p| {
                if k == i {
                    *p = p.add(&v.scale(s));
                }
                k += 1;
            });
            loss(&m, x, &u, mode)
        };
        compare(path, &grads[i], moved(h), moved(-h), &v);
    }
    if wrt_input {
        let v = randn(x.shape(), 7);
        let plus = loss(model, &x.add(&v.scale(h)), &u, mode);
        let minus = loss(model, &x.sub(&v.scale(h)), &u, mode);
        compare("the input", grads.last().unwrap(), plus, minus, &v);
    }
}

// ---- Values against hand loops ------------------------------------------------------------

#[test]
fn linear_is_x_w_plus_b_over_the_last_axis() {
    let l = Linear {
        weight: randn(&[4, 3], 1),
        bias: Some(randn(&[3], 2)),
    };
    let x = randn(&[2, 5, 4], 3);
    let y = l.forward_eval(&x).unwrap();
    assert_eq!(y.shape(), &[2, 5, 3]);
    let (xs, w, b) = (
        x.to_vec(),
        l.weight.to_vec(),
        l.bias.clone().unwrap().to_vec(),
    );
    for r in 0..10 {
        for o in 0..3 {
            let mut s = b[o];
            for i in 0..4 {
                s += xs[r * 4 + i] * w[i * 3 + o];
            }
            assert!((y.to_vec()[r * 3 + o] - s).abs() < 1e-12);
        }
    }
    // One vector [in] gives one vector [out]: the first row of the batch's result.
    let row = l.forward_eval(&x.narrow(0, 0, 1).narrow(1, 0, 1).reshape(&[4]).unwrap());
    assert!(row.unwrap().all_close(
        &y.narrow(0, 0, 1).narrow(1, 0, 1).reshape(&[3]).unwrap(),
        1e-14
    ));
    let no_bias = l.clone().without_bias();
    let shifted = no_bias
        .forward_eval(&x)
        .unwrap()
        .add(l.bias.as_ref().unwrap());
    assert!(shifted.all_close(&y, 1e-14));
}

/// A direct convolution: `y[n, o, i, j] = b[o] + sum over the group's channels c and taps
/// (p, q) of x[n, c, i s - pad + p d, j s - pad + q d] w[o, c', p, q]`, zero outside `x`.
fn conv_by_hand(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    b: &[f64],
    (stride, pad, dil, groups): (usize, usize, usize, usize),
) -> Tensor<f64> {
    let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (o, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    assert_eq!(cg * groups, c);
    let og = o / groups;
    let oh = (h + 2 * pad - dil * (kh - 1) - 1) / stride + 1;
    let ow = (wd + 2 * pad - dil * (kw - 1) - 1) / stride + 1;
    let mut out = vec![0.0; n * o * oh * ow];
    for ni in 0..n {
        for oi in 0..o {
            let g = oi / og;
            for i in 0..oh {
                for j in 0..ow {
                    let mut s = b[oi];
                    for ci in 0..cg {
                        for p in 0..kh {
                            for q in 0..kw {
                                let r = (i * stride + p * dil) as isize - pad as isize;
                                let col = (j * stride + q * dil) as isize - pad as isize;
                                if r < 0 || col < 0 || r >= h as isize || col >= wd as isize {
                                    continue;
                                }
                                let xc = g * cg + ci;
                                let xv = x.get(&[ni, xc, r as usize, col as usize]).unwrap();
                                s += xv * w.get(&[oi, ci, p, q]).unwrap();
                            }
                        }
                    }
                    out[((ni * o + oi) * oh + i) * ow + j] = s;
                }
            }
        }
    }
    Tensor::from_vec(out, &[n, o, oh, ow]).unwrap()
}

#[test]
fn conv2d_matches_a_direct_convolution() {
    for (stride, pad, dil, groups) in [(1, 0, 1, 1), (2, 1, 1, 2), (1, 2, 2, 1), (2, 1, 2, 2)] {
        let options = Conv2dOptions::default()
            .stride(stride)
            .padding(pad)
            .dilation(dil)
            .groups(groups);
        let conv = Conv2d::<Tensor<f64>>::new(4, 6, [3, 2], options, Init::HeNormal, stride as u64)
            .unwrap();
        let conv = Conv2d {
            bias: Some(randn(&[6], 4)),
            ..conv
        };
        let x = randn(&[2, 4, 7, 6], 5);
        let y = conv.forward_eval(&x).unwrap();
        let b = conv.bias.clone().unwrap().to_vec();
        let expected = conv_by_hand(&x, &conv.weight, &b, (stride, pad, dil, groups));
        assert_eq!(y.shape(), expected.shape());
        assert!(
            y.all_close(&expected, 1e-12),
            "{stride} {pad} {dil} {groups}"
        );
        // One image [C, H, W] gives the batch's first member.
        let single = conv.forward_eval(&x.narrow(0, 0, 1).squeeze(0)).unwrap();
        assert!(single.all_close(&expected.narrow(0, 0, 1).squeeze(0), 1e-12));
    }
}

#[test]
fn pools_match_hand_loops() {
    let x = randn(&[2, 3, 5, 6], 8);
    // MaxPool2d(2): windows 2x2 side by side; the last row (index 4) is left out.
    let y = MaxPool2d::new(2).forward_eval(&x).unwrap();
    assert_eq!(y.shape(), &[2, 3, 2, 3]);
    for plane in 0..6 {
        let (n, c) = (plane / 3, plane % 3);
        for i in 0..2 {
            for j in 0..3 {
                let mut m = f64::NEG_INFINITY;
                for p in 0..2 {
                    for q in 0..2 {
                        m = m.max(x.get(&[n, c, 2 * i + p, 2 * j + q]).unwrap());
                    }
                }
                assert_eq!(y.get(&[n, c, i, j]).unwrap(), m, "plane {plane}");
            }
        }
    }
    // AvgPool2d 3x3, stride 2, padding 1: the sum of the window's cells inside x over 9.
    let pool = Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1]);
    let y = AvgPool2d::with(pool).forward_eval(&x).unwrap();
    assert_eq!(y.shape(), &[2, 3, 3, 3]);
    for n in 0..2 {
        for c in 0..3 {
            for i in 0..3 {
                for j in 0..3 {
                    let mut s = 0.0;
                    for r in (2 * i as isize - 1)..(2 * i as isize + 2) {
                        for col in (2 * j as isize - 1)..(2 * j as isize + 2) {
                            if (0..5).contains(&r) && (0..6).contains(&col) {
                                s += x.get(&[n, c, r as usize, col as usize]).unwrap();
                            }
                        }
                    }
                    assert!((y.get(&[n, c, i, j]).unwrap() - s / 9.0).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn activations_match_their_formulas() {
    let x = randn(&[7], 9);
    let xs = x.to_vec();
    let check = |layer: Layer<Tensor<f64>>, f: &dyn Fn(f64) -> f64| {
        let y = layer.forward_eval(&x).unwrap().to_vec();
        for (a, &b) in y.iter().zip(&xs) {
            assert!((a - f(b)).abs() < 1e-14, "{}", layer.architecture());
        }
    };
    check(Relu.into(), &|v| v.max(0.0));
    check(Tanh.into(), &|v| v.tanh());
    check(Sigmoid.into(), &|v| 1.0 / (1.0 + (-v).exp()));
    check(Silu.into(), &|v| v / (1.0 + (-v).exp()));
    check(Softplus.into(), &|v| (1.0 + v.exp()).ln());
    // GELU: x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, erf from perturb's own (checked
    // against Abramowitz and Stegun in its doctest).
    let phi = Tensor::vector(&xs)
        .scale(std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .to_vec();
    let y = Gelu.forward_eval(&x).unwrap().to_vec();
    for ((a, v), e) in y.iter().zip(&xs).zip(&phi) {
        assert!((a - v * (1.0 + e) / 2.0).abs() < 1e-14);
    }
}

#[test]
fn layer_norm_standardises_the_trailing_axes_then_scales_and_shifts() {
    let mut ln = LayerNorm::<Tensor<f64>>::new(&[3, 4]).unwrap();
    ln.weight = Some(randn(&[3, 4], 1));
    ln.bias = Some(randn(&[3, 4], 2));
    let x = randn(&[2, 3, 4], 3);
    let y = ln.forward_eval(&x).unwrap().to_vec();
    let (xs, w, b) = (
        x.to_vec(),
        ln.weight.clone().unwrap().to_vec(),
        ln.bias.clone().unwrap().to_vec(),
    );
    for m in 0..2 {
        let row = &xs[m * 12..(m + 1) * 12];
        let mean = row.iter().sum::<f64>() / 12.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 12.0;
        for k in 0..12 {
            let e = (row[k] - mean) / (var + 1e-5).sqrt() * w[k] + b[k];
            assert!((y[m * 12 + k] - e).abs() < 1e-12);
        }
    }
}

// ---- Gradients against finite differences ---------------------------------------------------

#[test]
fn linear_gradients() {
    let l = Linear::<Tensor<f64>>::new(4, 3, Init::XavierUniform, 1).unwrap();
    let l = Linear {
        bias: Some(randn(&[3], 2)),
        ..l
    };
    check_gradients(&one(l.clone()), &randn(&[5, 4], 3), Mode::Training, true);
    check_gradients(
        &one(l.without_bias()),
        &randn(&[2, 5, 4], 4),
        Mode::Training,
        true,
    );
}

#[test]
fn conv2d_gradients() {
    let options = Conv2dOptions::default().stride(2).padding(1).groups(2);
    let conv = Conv2d::<Tensor<f64>>::new(4, 6, [3, 3], options, Init::HeNormal, 1).unwrap();
    let conv = Conv2d {
        bias: Some(randn(&[6], 2)),
        ..conv
    };
    check_gradients(&one(conv), &randn(&[2, 4, 6, 5], 3), Mode::Training, true);
    let dilated = Conv2d::<Tensor<f64>>::new(
        2,
        3,
        [2, 2],
        Conv2dOptions::default().dilation(2),
        Init::XavierUniform,
        4,
    )
    .unwrap()
    .without_bias();
    check_gradients(
        &one(dilated),
        &randn(&[1, 2, 5, 5], 5),
        Mode::Training,
        true,
    );
}

#[test]
fn pool_flatten_and_activation_gradients() {
    let x = randn(&[2, 3, 6, 6], 1);
    for layer in [
        Layer::from(MaxPool2d::new(2)),
        AvgPool2d::with(Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1])).into(),
        Flatten.into(),
        Relu.into(),
        Tanh.into(),
        Sigmoid.into(),
        Gelu.into(),
        Silu.into(),
        Softplus.into(),
    ] {
        check_gradients(&one(layer), &x, Mode::Training, true);
    }
}

#[test]
fn norm_gradients_in_training_and_evaluation() {
    let mut ln = LayerNorm::<Tensor<f64>>::new(&[4]).unwrap();
    ln.weight = Some(randn(&[4], 1));
    ln.bias = Some(randn(&[4], 2));
    check_gradients(&one(ln), &randn(&[3, 2, 4], 3), Mode::Training, true);
    for shape in [&[6, 3][..], &[2, 3, 4, 4][..]] {
        let mut bn = BatchNorm::<Tensor<f64>>::new(3).unwrap();
        bn.weight = Some(randn(&[3], 4));
        bn.bias = Some(randn(&[3], 5));
        let x = randn(shape, 6).scale(2.0).add_scalar(1.0);
        check_gradients(&one(bn.clone()), &x, Mode::Training, true);
        check_gradients(&one(bn), &x, Mode::Evaluation, true);
    }
}

#[test]
fn dropout_gradients_use_the_same_mask() {
    let model = one(Dropout::new(0.4).unwrap());
    check_gradients(&model, &randn(&[4, 5], 1), Mode::Training, true);
}

#[test]
fn embedding_gradient_adds_each_rows_cotangents_to_its_row() {
    let e = Embedding::<Tensor<f64>>::new(5, 3, 1).unwrap();
    let x = Tensor::from_vec(vec![4.0, 0.0, 4.0, 2.0, 4.0, 1.0], &[2, 3]).unwrap();
    check_gradients(&one(e.clone()), &x, Mode::Training, false);
    // d/dW sum(E[x] * u): row r gets the sum of u's rows at the positions holding r.
    let u = randn(&[2, 3, 3], 2);
    let tape = TensorTape::new();
    let w = tape.var(e.weight.clone());
    let on_tape = Embedding { weight: w.clone() };
    let y = on_tape.forward_eval(&tape.constant(x.clone())).unwrap();
    let g = tape
        .gradient(&y.mul(&tape.constant(u.clone())).sum_all(), &[&w])
        .unwrap()
        .remove(0)
        .to_vec();
    let (us, xs) = (u.to_vec(), x.to_vec());
    for r in 0..5 {
        for d in 0..3 {
            let expected: f64 = (0..6)
                .filter(|&k| xs[k] == r as f64)
                .map(|k| us[k * 3 + d])
                .sum();
            assert!((g[r * 3 + d] - expected).abs() < 1e-14, "row {r}");
        }
    }
    assert!(g[3 * 3..4 * 3].iter().all(|&v| v == 0.0)); // index 3 never read
                                                        // In a network: embedding, flatten, linear.
    let net = Sequential::new()
        .push(e)
        .push(Flatten)
        .push(Linear::new(9, 2, Init::XavierUniform, 3).unwrap());
    assert_eq!(
        net.paths(),
        ["layers.0.weight", "layers.2.weight", "layers.2.bias"]
    );
    check_gradients(&net, &x, Mode::Training, false);
}

#[test]
fn architectures_describe_every_option() {
    let arch = |layer: Layer<Tensor<f64>>| layer.architecture();
    let options = Conv2dOptions::default()
        .strides([2, 1])
        .padding_per_side([(1, 0), (2, 2)])
        .dilation(2)
        .groups(2);
    let conv = Conv2d::<Tensor<f64>>::new(4, 6, [3, 1], options, Init::HeNormal, 0).unwrap();
    assert_eq!(
        arch(conv.without_bias().into()),
        "Conv2d(4,6,3x1,stride=2x1,pad=(1,0)x(2,2),dilation=2,groups=2,bias=false)"
    );
    let same = Conv2d::<Tensor<f64>>::new(
        1,
        1,
        [3, 3],
        Conv2dOptions::default().same(),
        Init::HeNormal,
        0,
    );
    assert_eq!(arch(same.unwrap().into()), "Conv2d(1,1,3x3,pad=same)");
    let pool = Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1]);
    assert_eq!(
        arch(MaxPool2d::with(pool).into()),
        "MaxPool2d(kernel=3,stride=2,pad=1)"
    );
    assert_eq!(arch(AvgPool2d::new(2).into()), "AvgPool2d(2)");
    assert_eq!(arch(Dropout::new(0.25).unwrap().into()), "Dropout(0.25)");
    let linear = Linear::<Tensor<f64>>::new(3, 2, Init::HeNormal, 0).unwrap();
    assert_eq!(arch(linear.without_bias().into()), "Linear(3,2,bias=false)");
    let ln = LayerNorm::<Tensor<f64>>::new(&[3, 4])
        .unwrap()
        .without_affine();
    assert_eq!(arch(ln.into()), "LayerNorm([3,4],affine=false)");
    let bn = BatchNorm::<Tensor<f64>>::new(8)
        .unwrap()
        .with_momentum(0.01)
        .unwrap();
    assert_eq!(arch(bn.into()), "BatchNorm(8,momentum=0.01)");
    assert_eq!(
        arch(Embedding::<Tensor<f64>>::new(10, 4, 0).unwrap().into()),
        "Embedding(10,4)"
    );
    let names: Vec<String> = [
        Layer::<Tensor<f64>>::from(Relu),
        Tanh.into(),
        Sigmoid.into(),
        Gelu.into(),
        Silu.into(),
        Softplus.into(),
        Flatten.into(),
    ]
    .iter()
    .map(|l| l.architecture())
    .collect();
    assert_eq!(
        names,
        ["ReLU", "Tanh", "Sigmoid", "GELU", "SiLU", "Softplus", "Flatten"]
    );
}

/// A small CNN, conv-relu-pool twice, flatten, linear, on random 8x8 images.
fn small_cnn(seed: u64) -> Model {
    let pad = Conv2dOptions::default().padding(1);
    Sequential::new()
        .push(Conv2d::new(1, 4, [3, 3], pad, Init::HeNormal, seed).unwrap())
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Conv2d::new(4, 6, [3, 3], pad, Init::HeNormal, seed + 1).unwrap())
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Flatten)
        .push(Linear::new(6 * 2 * 2, 3, Init::XavierUniform, seed + 2).unwrap())
}

#[test]
fn small_cnn_paths_shapes_and_gradients() {
    let cnn = small_cnn(10);
    assert_eq!(
        cnn.architecture(),
        "Sequential[Conv2d(1,4,3x3,pad=1),ReLU,MaxPool2d(2),Conv2d(4,6,3x3,pad=1),ReLU,\
         MaxPool2d(2),Flatten,Linear(24,3)]"
    );
    assert_eq!(
        cnn.paths(),
        [
            "layers.0.weight",
            "layers.0.bias",
            "layers.3.weight",
            "layers.3.bias",
            "layers.7.weight",
            "layers.7.bias"
        ]
    );
    let x = randn(&[5, 1, 8, 8], 11);
    assert_eq!(cnn.forward_eval(&x).unwrap().shape(), &[5, 3]);
    // Non-zero biases so that every parameter matters.
    let cnn = cnn.map(|t| t.add(&randn(t.shape(), 12).scale(0.1)));
    check_gradients(&cnn, &x, Mode::Training, true);
}

/// Buffers as comparable values.
fn plain(buffers: Vec<(String, Tensor<f64>)>) -> Vec<(String, Vec<f64>)> {
    buffers.into_iter().map(|(p, t)| (p, t.to_vec())).collect()
}

#[test]
fn forward_mode_through_a_network_agrees_with_reverse_mode() {
    // The same Sequential on dual tensors: the tangent of L = sum(net(x) * u) along a random
    // direction v in every parameter is <grad L, v> from the tape.
    let mut net = small_cnn(20);
    net.layers.insert(1, BatchNorm::new(4).unwrap().into());
    net.layers.push(Gelu.into());
    let x = randn(&[4, 1, 8, 8], 21);
    let u = randn(&[4, 3], 22);
    let directions = net.map(|t| randn(t.shape(), 23 + t.len() as u64));

    let duals = net
        .zip_map(&directions, |p, v| DualTensor::new(p.clone(), v.clone()))
        .unwrap();
    let y = duals
        .forward(&DualTensor::constant(x.clone()), &mut Context::training(0))
        .unwrap();
    let l = y.mul(&DualTensor::constant(u.clone())).sum_all();
    let forward = l.tangent().unwrap().to_vec()[0];

    let tape = TensorTape::new();
    let vars = net.map(|t| tape.var(t.clone()));
    let y = vars
        .forward(&tape.constant(x), &mut Context::training(0))
        .unwrap();
    let l = y.mul(&tape.constant(u)).sum_all();
    let grads = tape.gradient(&l, &vars.leaves()).unwrap();
    let reverse: f64 = grads
        .iter()
        .zip(directions.leaves())
        .map(|(g, v)| g.mul(v).sum_all().to_vec()[0])
        .sum();
    assert!(
        (forward - reverse).abs() <= 1e-10 * (1.0 + reverse.abs()),
        "forward {forward}, reverse {reverse}"
    );
}

/// The gradient of `L = sum(model(x) * u)` with respect to every parameter, on a tape.
fn parameter_gradient(model: &Model, x: &Tensor<f64>, u: &Tensor<f64>) -> Vec<Tensor<f64>> {
    let tape = TensorTape::new();
    let vars = model.map(|t| tape.var(t.clone()));
    let y = vars
        .forward(&tape.constant(x.clone()), &mut context(Mode::Training))
        .unwrap();
    let l = y.mul(&tape.constant(u.clone())).sum_all();
    tape.gradient(&l, &vars.leaves()).unwrap()
}

#[test]
fn second_order_through_layers_matches_differences_of_gradients() {
    // Reverse over reverse: the model on a tape whose sweep is recorded on another, so the
    // Hessian-vector product H v is the gradient of <grad L, v>; against
    // (grad L(p + h v) - grad L(p - h v)) / 2h.
    let model = Sequential::new()
        .push(Linear::new(3, 5, Init::XavierUniform, 1).unwrap())
        .push(LayerNorm::new(&[5]).unwrap())
        .push(Tanh)
        .push(BatchNorm::new(5).unwrap())
        .push(Softplus)
        .push(Linear::new(5, 2, Init::XavierUniform, 2).unwrap());
    let model = model.map(|t| t.add(&randn(t.shape(), 3).scale(0.1)));
    let (x, u) = (randn(&[6, 3], 4), randn(&[6, 2], 5));
    let v = model.map(|t| randn(t.shape(), 6 + t.len() as u64));

    let inner = TensorTape::new();
    let outer = TensorTape::<perturb::tensor::TensorVar<Tensor<f64>>>::over();
    let p_inner = model.map(|t| inner.var(t.clone()));
    let p_outer = p_inner.map(|t| outer.var(t.clone()));
    let y = p_outer
        .forward(
            &outer.constant(inner.constant(x.clone())),
            &mut context(Mode::Training),
        )
        .unwrap();
    let l = y.mul(&outer.constant(inner.constant(u.clone()))).sum_all();
    let g = outer.gradient(&l, &p_outer.leaves()).unwrap();
    let gv = g
        .iter()
        .zip(v.leaves())
        .map(|(g, v)| g.mul(&inner.constant(v.clone())).sum_all())
        .reduce(|a, b| a.add(&b))
        .unwrap();
    let hv = inner.gradient(&gv, &p_inner.leaves()).unwrap();

    let h = 1e-5;
    let step = |s: f64| model.zip_map(&v, |p, v| p.add(&v.scale(s))).unwrap();
    let (plus, minus) = (
        parameter_gradient(&step(h), &x, &u),
        parameter_gradient(&step(-h), &x, &u),
    );
    for (i, path) in model.paths().iter().enumerate() {
        let fd = plus[i].sub(&minus[i]).scale(1.0 / (2.0 * h));
        let scale = 1.0 + fd.abs().max_all().to_vec()[0];
        let err = hv[i].sub(&fd).abs().max_all().to_vec()[0];
        assert!(err <= 1e-6 * scale, "{path}: |Hv - fd| = {err}");
    }
}

/// A model written as a user struct of layers, its tree derived, its forward pass by hand.
#[derive(perturb::Tree, Clone, Debug)]
struct Net<A> {
    embed: Embedding<A>,
    norm: BatchNorm<A>,
    head: Linear<A>,
}

impl<A: Array> Module<A> for Net<A> {
    fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, perturb::Error> {
        let h = self.embed.forward(x, ctx)?; // [N, dim]
        let h = self.norm.forward(&h, ctx)?.tanh();
        self.head.forward(&h, ctx)
    }

    fn architecture(&self) -> String {
        format!(
            "Net[{},{},{}]",
            self.embed.architecture(),
            self.norm.architecture(),
            self.head.architecture()
        )
    }

    fn visit_buffers(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Buffer)) {
        path.with("norm", |p| self.norm.visit_buffers(p, f));
    }

    fn visit_buffers_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut Buffer)) {
        path.with("norm", |p| self.norm.visit_buffers_mut(p, f));
    }
}

#[test]
fn a_user_struct_of_layers_is_a_module_with_named_parameters_and_buffers() {
    let net = Net {
        embed: Embedding::new(6, 4, 1).unwrap(),
        norm: BatchNorm::new(4).unwrap(),
        head: Linear::new(4, 2, Init::XavierUniform, 2).unwrap(),
    };
    assert_eq!(
        net.paths(),
        [
            "embed.weight",
            "norm.weight",
            "norm.bias",
            "head.weight",
            "head.bias"
        ]
    );
    let names: Vec<String> = net.buffers().into_iter().map(|(p, _)| p).collect();
    assert_eq!(names, ["norm.running_mean", "norm.running_var"]);
    assert_eq!(
        net.architecture(),
        "Net[Embedding(6,4),BatchNorm(4),Linear(4,2)]"
    );
    let x = Tensor::vector(&[0.0, 5.0, 2.0, 2.0, 1.0]);
    // Its gradients through the derived tree, by the same check as the built-in layers'.
    let tape = TensorTape::new();
    let vars = net.map(|t| tape.var(t.clone()));
    let y = vars
        .forward(&tape.constant(x.clone()), &mut Context::training(0))
        .unwrap();
    let grads = tape
        .gradient(&y.square().sum_all(), &vars.leaves())
        .unwrap();
    let h = 1e-6;
    for (i, g) in grads.iter().enumerate() {
        let v = randn(g.shape(), 40 + i as u64);
        let at = |s: f64| {
            let mut k = 0;
            let moved = net.map(|t| {
                k += 1;
                if k - 1 == i {
                    t.add(&v.scale(s))
                } else {
                    t.clone()
                }
            });
            let y = moved.forward(&x, &mut Context::training(0)).unwrap();
            y.square().sum_all().to_vec()[0]
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        let ad = g.mul(&v).sum_all().to_vec()[0];
        assert!(
            (fd - ad).abs() < 1e-6 * (1.0 + ad.abs()),
            "{i}: {ad} vs {fd}"
        );
    }
}

// ---- Stateful layers --------------------------------------------------------------------------

#[test]
fn dropout_masks_are_seeded_resumable_and_off_in_evaluation() {
    let model = Sequential::new()
        .push(Dropout::new(0.5).unwrap())
        .push(Dropout::new(0.5).unwrap());
    let x = Tensor::<f64>::ones(&[400]);
    let mut ctx = Context::training(42);
    let first = model.forward(&x, &mut ctx).unwrap().to_vec();
    let saved = ctx.state();
    let second = model.forward(&x, &mut ctx).unwrap().to_vec();
    assert_ne!(first, second, "each pass draws new masks");
    assert_eq!(
        ctx.state().rng.draws,
        4,
        "one draw per dropout layer per pass"
    );
    // A run resumed from the saved state replays the second pass exactly.
    let mut resumed = Context::from_state(saved);
    assert_eq!(model.forward(&x, &mut resumed).unwrap().to_vec(), second);
    // Two layers of p = 1/2 keep a quarter, scaled by 4.
    assert!(first.iter().all(|&v| v == 0.0 || v == 4.0));
    let kept = first.iter().filter(|&&v| v == 4.0).count();
    assert!((60..140).contains(&kept), "{kept} of 400 kept");
    // Evaluation: the identity, and no draws.
    let mut eval = Context::evaluation();
    assert_eq!(model.forward(&x, &mut eval).unwrap().to_vec(), x.to_vec());
    assert_eq!(eval.state().rng.draws, 0);
    // p = 0 keeps everything; p = 1 drops everything.
    let all = Dropout::new(1.0).unwrap();
    assert!(all
        .forward(&x, &mut Context::training(0))
        .unwrap()
        .to_vec()
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn batch_norm_running_statistics_update_in_training_serve_evaluation_and_escape_the_optimiser() {
    let bn = BatchNorm::<Tensor<f64>>::new(2)
        .unwrap()
        .with_momentum(0.25)
        .unwrap();
    let model = one(bn);
    assert_eq!(model.paths(), ["layers.0.weight", "layers.0.bias"]);
    let x = randn(&[3, 2, 2, 2], 1).scale(3.0).add_scalar(2.0);
    let xs = x.to_vec();
    // Per-channel mean and unbiased variance over N, H, W by hand (12 values per channel).
    let channel = |c: usize| -> Vec<f64> {
        (0..3)
            .flat_map(|n| (0..4).map(move |k| (n * 2 + c) * 4 + k))
            .map(|i| xs[i])
            .collect()
    };
    let stats: Vec<(f64, f64)> = (0..2)
        .map(|c| {
            let v = channel(c);
            let mean = v.iter().sum::<f64>() / 12.0;
            let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 11.0;
            (mean, var)
        })
        .collect();

    // Training on the model mapped to tape variables updates the model's own statistics.
    let tape = TensorTape::new();
    let vars = model.map(|t| tape.var(t.clone()));
    let out = vars
        .forward(&tape.constant(x.clone()), &mut Context::training(0))
        .unwrap();
    let buffers = model.buffers();
    assert_eq!(buffers[0].0, "layers.0.running_mean");
    assert_eq!(buffers[1].0, "layers.0.running_var");
    for (c, &(mean, var)) in stats.iter().enumerate() {
        assert!((buffers[0].1.to_vec()[c] - 0.25 * mean).abs() < 1e-12);
        assert!((buffers[1].1.to_vec()[c] - (0.75 + 0.25 * var)).abs() < 1e-12);
    }
    // A gradient step changes the parameters only.
    let grads = tape
        .gradient(&out.square().sum_all(), &vars.leaves())
        .unwrap();
    let grads = model.unflatten(grads).unwrap();
    let stepped = model.zip_map(&grads, |p, g| p.sub(&g.scale(0.1))).unwrap();
    assert_eq!(plain(stepped.buffers()), plain(model.buffers()));

    // Evaluation uses the running statistics and leaves them as they are.
    let before = model.buffers();
    let y = model.forward_eval(&x).unwrap();
    assert_eq!(plain(model.buffers()), plain(before.clone()));
    let (rm, rv) = (before[0].1.to_vec(), before[1].1.to_vec());
    for (i, (a, b)) in y.to_vec().iter().zip(&xs).enumerate() {
        let c = (i / 4) % 2;
        let e = (b - rm[c]) / (rv[c] + 1e-5).sqrt();
        assert!((a - e).abs() < 1e-12);
    }

    // Clones share the statistics; deep clones do not.
    let deep = model.deep_clone();
    let shared = model.clone();
    let zeros = vec![
        ("layers.0.running_mean".to_string(), Tensor::zeros(&[2])),
        ("layers.0.running_var".to_string(), Tensor::ones(&[2])),
    ];
    deep.load_buffers(&zeros).unwrap();
    assert_eq!(plain(model.buffers()), plain(before.clone()));
    shared.load_buffers(&zeros).unwrap();
    assert_eq!(plain(model.buffers()), plain(zeros));
}

#[test]
fn load_buffers_refuses_missing_extra_duplicate_and_misshapen_values() {
    let model = one(BatchNorm::<Tensor<f64>>::new(2).unwrap());
    let good = model.buffers();
    let err =
        |values: &[(String, Tensor<f64>)]| model.load_buffers(values).unwrap_err().to_string();
    assert!(err(&good[..1]).contains("no value for the buffer 'layers.0.running_var'"));
    let mut extra = good.clone();
    extra.push(("layers.1.running_mean".into(), Tensor::zeros(&[2])));
    assert!(err(&extra).contains("'layers.1.running_mean' is not a buffer"));
    let mut twice = good.clone();
    twice.push(good[0].clone());
    assert!(err(&twice).contains("given twice"));
    let mut misshapen = good.clone();
    misshapen[1].1 = Tensor::zeros(&[3]);
    let e = err(&misshapen);
    assert!(
        e.contains("'layers.0.running_var'") && e.contains("[3]"),
        "{e}"
    );
    // Nothing was written by the refused loads.
    assert_eq!(plain(model.buffers()), plain(good));
}

// ---- Training by hand ----------------------------------------------------------------------

#[test]
fn a_hand_written_sgd_loop_trains_the_model_in_place() {
    // XOR through Linear-Tanh-Linear; the parameters live in `model`, each step updates them
    // in place, leaf by leaf in the tree's order (the gradients' order).
    let mut model = Sequential::new()
        .push(Linear::new(2, 8, Init::XavierUniform, 1).unwrap())
        .push(Tanh)
        .push(Linear::new(8, 1, Init::XavierUniform, 2).unwrap());
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]).unwrap();
    let y = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[4, 1]).unwrap();
    let mse = |m: &Model| {
        m.forward_eval(&x)
            .unwrap()
            .sub(&y)
            .square()
            .mean_all()
            .to_vec()[0]
    };
    let start = mse(&model);
    let mut ctx = Context::training(0);
    for _ in 0..500 {
        let tape = TensorTape::new();
        let vars = model.map(|t| tape.var(t.clone()));
        let out = vars.forward(&tape.constant(x.clone()), &mut ctx).unwrap();
        let l = out.sub(&tape.constant(y.clone())).square().mean_all();
        let grads = tape.gradient(&l, &vars.leaves()).unwrap();
        let mut k = 0;
        model.visit_mut(&mut Path::root(), &mut |_, p| {
            *p = p.sub(&grads[k].scale(0.05));
            k += 1;
        });
    }
    let end = mse(&model);
    assert!(end < 0.05 && end < start / 4.0, "{start} -> {end}");
}

#[test]
fn f32_models_run_and_differentiate() {
    let cnn = small_cnn(3).map(|t| t.cast::<f32>());
    let x = Tensor::<f32>::randn(&[2, 1, 8, 8], 0.0, 1.0, 4);
    let tape = TensorTape::new();
    let vars = cnn.map(|t| tape.var(t.clone()));
    let out = vars
        .forward(&tape.constant(x), &mut Context::training(0))
        .unwrap();
    let grads = tape.gradient(&out.sum_all(), &vars.leaves()).unwrap();
    for (g, p) in grads.iter().zip(cnn.leaves()) {
        assert_eq!(g.shape(), p.shape());
    }
}

// ---- Errors --------------------------------------------------------------------------------

fn message<T: std::fmt::Debug>(r: Result<T, perturb::Error>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn bad_sizes_are_refused_when_building_with_the_layer_named() {
    let starts = |m: String, with: &str| assert!(m.starts_with(with), "{m}");
    starts(
        message(Linear::<Tensor<f64>>::new(0, 3, Init::HeNormal, 0)),
        "Linear::new: ",
    );
    starts(
        message(Linear::<Tensor<f64>>::new(
            1 << 33,
            1 << 33,
            Init::HeNormal,
            0,
        )),
        "Linear::new: ",
    );
    starts(
        message(Linear::<Tensor<f64>>::new(usize::MAX, 3, Init::HeNormal, 0)),
        "Linear::new: ",
    );
    let conv = |i, o, k, options| Conv2d::<Tensor<f64>>::new(i, o, k, options, Init::HeNormal, 0);
    starts(
        message(conv(3, 4, [0, 3], Conv2dOptions::default())),
        "Conv2d::new: ",
    );
    starts(
        message(conv(3, 4, [3, 3], Conv2dOptions::default().groups(2))),
        "Conv2d::new: ",
    );
    starts(
        message(conv(2, 4, [3, 3], Conv2dOptions::default().groups(0))),
        "Conv2d::new: ",
    );
    starts(
        message(conv(2, 4, [3, 3], Conv2dOptions::default().stride(0))),
        "Conv2d::new: ",
    );
    starts(message(Dropout::new(-0.1)), "Dropout::new: ");
    starts(
        message(BatchNorm::<Tensor<f64>>::new(0)),
        "BatchNorm::new: ",
    );
    starts(
        message(LayerNorm::<Tensor<f64>>::new(&[2, 0])),
        "LayerNorm::new: ",
    );
    starts(
        message(Embedding::<Tensor<f64>>::new(3, 0, 0)),
        "Embedding::new: ",
    );
}

#[test]
fn bad_inputs_are_refused_in_the_forward_pass_with_the_layer_named() {
    let eval = |layer: Layer<Tensor<f64>>, x: Tensor<f64>| message(layer.forward_eval(&x));
    let check = |m: String, parts: &[&str]| {
        assert!(parts.iter().all(|p| m.contains(p)), "{m}");
    };
    let linear = Linear::<Tensor<f64>>::new(3, 2, Init::HeNormal, 0).unwrap();
    check(
        eval(linear.clone().into(), Tensor::zeros(&[4, 2])),
        &["Linear::forward", "2 features"],
    );
    check(
        eval(linear.into(), Tensor::scalar(1.0)),
        &["Linear::forward", "scalar"],
    );
    let conv =
        Conv2d::<Tensor<f64>>::new(3, 2, [3, 3], Conv2dOptions::default(), Init::HeNormal, 0)
            .unwrap();
    check(
        eval(conv.clone().into(), Tensor::zeros(&[1, 2, 5, 5])),
        &["Conv2d::forward", "2 channels"],
    );
    check(
        eval(conv.clone().into(), Tensor::zeros(&[5, 5])),
        &["Conv2d::forward", "[N, C, H, W]"],
    );
    check(
        eval(conv.into(), Tensor::zeros(&[1, 3, 2, 2])),
        &["Conv2d::forward"],
    );
    check(
        eval(MaxPool2d::new(3).into(), Tensor::zeros(&[1, 1, 2, 2])),
        &["MaxPool2d::forward"],
    );
    check(
        eval(AvgPool2d::new(2).into(), Tensor::zeros(&[2])),
        &["AvgPool2d::forward"],
    );
    check(
        eval(Flatten.into(), Tensor::zeros(&[4])),
        &["Flatten::forward"],
    );
    let bn = BatchNorm::<Tensor<f64>>::new(3).unwrap();
    check(
        eval(bn.clone().into(), Tensor::zeros(&[4, 2])),
        &["BatchNorm::forward", "[N, 3]"],
    );
    let one_per_channel = bn.forward(&Tensor::zeros(&[1, 3]), &mut Context::training(0));
    check(
        message(one_per_channel),
        &["BatchNorm::forward", "more than one value"],
    );
    let ln = LayerNorm::<Tensor<f64>>::new(&[4]).unwrap();
    check(
        eval(ln.into(), Tensor::zeros(&[4, 3])),
        &["LayerNorm::forward", "[4]"],
    );
    let e = Embedding::<Tensor<f64>>::new(3, 2, 0).unwrap();
    check(
        eval(e.clone().into(), Tensor::vector(&[1.5])),
        &["Embedding::forward", "1.5"],
    );
    check(
        eval(e.clone().into(), Tensor::vector(&[-1.0])),
        &["Embedding::forward"],
    );
    check(
        eval(e.into(), Tensor::vector(&[f64::NAN])),
        &["Embedding::forward"],
    );
    // Options set by hand to a number of groups whose product overflows.
    let mut huge =
        Conv2d::<Tensor<f64>>::new(2, 2, [1, 1], Conv2dOptions::default(), Init::HeNormal, 0)
            .unwrap();
    huge.options.groups = usize::MAX;
    check(
        eval(huge.into(), Tensor::zeros(&[1, 2, 3, 3])),
        &["Conv2d::forward", "channels"],
    );
    // A parameter replaced by one of another shape.
    let broken = Linear {
        weight: Tensor::<f64>::zeros(&[3, 2]),
        bias: Some(Tensor::zeros(&[3])),
    };
    check(
        eval(broken.into(), Tensor::zeros(&[1, 3])),
        &["Linear::forward", "bias"],
    );
}

#[test]
fn sequential_errors_name_the_layer_index_and_architecture() {
    let model = small_cnn(0);
    let m = message(model.forward_eval(&randn(&[2, 1, 6, 6], 0)));
    // 6x6 -> pool 3x3 -> pool 1x1 -> 6 features, the linear layer expects 24.
    assert!(
        m.starts_with("Sequential::forward: layer 7 (Linear(24,3)): Linear::forward: "),
        "{m}"
    );
}
