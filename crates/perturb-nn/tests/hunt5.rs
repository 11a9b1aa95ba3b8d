//! perturb-nn's layers, optimisers and data-parallel pieces against closed forms and f64
//! references on extreme-but-legal inputs. Each test failed before its fix.

use perturb::tensor::{Array, Tensor, TensorTape};
use perturb::tree::Tree;
use perturb_nn::layers::{BatchNorm, LayerNorm};
use perturb_nn::module::{Context, Module};

/// `(x - mean) / sqrt(var + eps)` of each row in f64 from the row's values (the reference).
fn standardised_f64(row: &[f64], eps: f64) -> Vec<f64> {
    let n = row.len() as f64;
    let mean = row.iter().sum::<f64>() / n;
    let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    row.iter()
        .map(|x| (x - mean) / (var + eps).sqrt())
        .collect()
}

/// LayerNorm and BatchNorm took the mean of the raw values, which rounds: for a constant f32
/// row the mean missed the value by an ulp, and that ulp, divided by sqrt(1e-5), came out as
/// the normalised value. A row of five 16777215s normalised to 0.999995 each, five
/// 1000000.0625s (written 1_000_000.06) to -0.99872, three 12345.678s to 0.29507 (all should
/// be 0: a constant row has nothing to normalise); in f64, five 2^53 - 1s gave 0.999995.
/// BatchNorm's running statistics took the same error: after five 16777215s, mean 1677721.4
/// and variance 1.025 for 1677721.5 and 0.9 (momentum 0.1 from 0 and 1). The statistics are
/// now taken of the values less the first of each normalised group (a shift that changes
/// nothing in exact arithmetic), so a constant row is exactly 0 and a nearly constant one is
/// as exact as its spread allows.
#[test]
fn norm_layers_give_zero_for_a_constant_row_however_large() {
    let cases: [(f32, usize); 4] = [
        (16777215.0, 5),
        (1_000_000.06, 5),
        (12345.678, 3),
        (12345.678, 7),
    ];
    for (c, n) in cases {
        let ln = LayerNorm::<Tensor<f32>>::new(&[n]).unwrap();
        let y = ln
            .forward_eval(&Tensor::from_vec(vec![c; n], &[1, n]).unwrap())
            .unwrap();
        assert_eq!(y.to_vec(), vec![0.0; n], "LayerNorm f32 of {n} x {c}");
        let bn = BatchNorm::<Tensor<f32>>::new(1).unwrap();
        let x = Tensor::from_vec(vec![c; n], &[n, 1]).unwrap();
        let y = bn.forward(&x, &mut Context::training(0)).unwrap();
        assert_eq!(y.to_vec(), vec![0.0; n], "BatchNorm f32 of {n} x {c}");
        // The running mean moves to the batch's mean, c, and the variance stays 0.
        let stats = bn.buffers();
        let (mean, var) = (stats[0].1.to_vec()[0], stats[1].1.to_vec()[0]);
        assert_eq!(
            (mean, var),
            (0.1 * f64::from(c), 0.9),
            "BatchNorm statistics of {c}"
        );
    }
    let c = 9007199254740991.0_f64;
    let ln = LayerNorm::<Tensor<f64>>::new(&[5]).unwrap();
    let y = ln
        .forward_eval(&Tensor::from_vec(vec![c; 5], &[1, 5]).unwrap())
        .unwrap();
    assert_eq!(y.to_vec(), vec![0.0; 5], "LayerNorm f64 of 5 x {c}");

    // A nearly constant f32 row against the f64 reference of the same values.
    let row: Vec<f32> = vec![16777215.0, 16777215.0, 16777214.0, 16777215.0, 16777215.0];
    let want = standardised_f64(&row.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), 1e-5);
    let ln = LayerNorm::<Tensor<f32>>::new(&[5]).unwrap();
    let got = ln
        .forward_eval(&Tensor::from_vec(row, &[1, 5]).unwrap())
        .unwrap();
    for (g, w) in got.to_vec().iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{g} for {w}");
    }

    // The gradient of a constant row: d sum(w * LayerNorm(x)) / dx = (w - mean(w)) / sqrt(eps)
    // at a constant x (the variance term vanishes with the centred values).
    let tape = TensorTape::new();
    let x = tape.var(Tensor::from_vec(vec![12345.678_f32; 3], &[1, 3]).unwrap());
    let w = tape.constant(Tensor::from_vec(vec![1.0_f32, 2.0, 6.0], &[1, 3]).unwrap());
    let ln = LayerNorm::<Tensor<f32>>::new(&[3])
        .unwrap()
        .map(|t| tape.constant(t.clone()));
    let loss = ln.forward_eval(&x).unwrap().try_mul(&w).unwrap().sum_all();
    let g = tape.gradient(&loss, &[&x]).unwrap()[0].to_vec();
    let scale = 1.0 / 1e-5_f64.sqrt();
    for (g, w) in g.iter().zip([1.0, 2.0, 6.0]) {
        let want = (w - 3.0) * scale;
        assert!(
            (f64::from(*g) - want).abs() < 1e-4 * scale,
            "{g} for {want}"
        );
    }
}

/// Adam (beta1 0.9, beta2 0.999, eps 1e-8, lr `lr`) on one weight from `w` in f64, the
/// gradients scaled by `scale` first (a power of two: Adam's steps do not depend on the
/// gradients' size, up to eps).
fn adam_f64(lr: f64, w: f64, grads: &[f64], scale: f64) -> Vec<f64> {
    let (b1, b2, eps) = (0.9_f64, 0.999_f64, 1e-8);
    let (mut m, mut v, mut w) = (0.0, 0.0, w);
    let mut out = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let g = g * scale;
        let t = t as i32 + 1;
        m = b1 * m + (1.0 - b1) * g;
        v = b2 * v + (1.0 - b2) * g * g;
        w -= lr * (m / (1.0 - b1.powi(t))) / ((v / (1.0 - b2.powi(t))).sqrt() + eps);
        out.push(w);
    }
    out
}

/// Adam divided the second moment by its bias correction before the square root,
/// `sqrt(v / (1 - beta2^t))`: at the first step `v = (1 - beta2) g^2` over `1 - beta2` is
/// `g^2`, which overflows for |g| > 1.8e19 in f32 (1.3e154 in f64) although `v` itself does
/// not. The denominator was inf and the step 0: with lr 0.1, a first gradient of 1e20 (f32)
/// or 1e155 (f64) left the weight 1 at 1.0 (for 0.9), and a second step of gradient 1 at 1.0
/// (for 0.832994), silently. It is now `sqrt(v) / sqrt(1 - beta2^t)`, as PyTorch forms it.
#[test]
fn adam_steps_with_gradients_whose_square_overflows_after_bias_correction() {
    use perturb_nn::optim::{Adam, Optimizer};
    let grads = [1e20, 1.0, -3e19];
    // f32: the reference in f64, which holds 1e40.
    let want = adam_f64(0.1, 1.0, &grads, 1.0);
    let mut p = vec![Tensor::vector(&[1.0_f32])];
    let mut opt = Adam::new(0.1);
    for (g, w) in grads.iter().zip(&want) {
        opt.step(&mut p, &[Tensor::vector(&[*g as f32])]).unwrap();
        let got = f64::from(p[0].to_vec()[0]);
        assert!(
            (got - w).abs() < 1e-6,
            "f32 Adam after gradient {g}: {got} for {w}"
        );
    }
    // f64 at 1e155: the reference on the gradients scaled by 2^-300 (exact).
    let grads = [1e155, 1.0, -3e154];
    let scale = 2f64.powi(-300);
    let want = adam_f64(0.1, 1.0, &grads, scale);
    let mut p = vec![Tensor::vector(&[1.0_f64])];
    let mut opt = Adam::new(0.1);
    for (k, (g, w)) in grads.iter().zip(&want).enumerate() {
        opt.step(&mut p, &[Tensor::vector(&[*g])]).unwrap();
        let got = p[0].to_vec()[0];
        assert!((got - w).abs() < 1e-12, "f64 Adam step {k}: {got} for {w}");
    }
}

/// `reduce_gradients` weighed each rank's gradient by its share of the rows, so a rank with no
/// rows multiplied by 0, but the mean loss over no rows is 0 / 0 = NaN, and NaN * 0 is NaN: on
/// the last batch of an epoch with fewer rows than ranks (1 row on 2 ranks), a loss sent with
/// the gradients (`(grads, loss)`, as the function's documentation suggests) came back NaN on
/// every rank for the batch's 0.25 (the gradient, 1, survived only because the empty rank's
/// was 0 rather than NaN). A rank with no rows now contributes zeros, whatever it holds.
#[test]
fn reduce_gradients_ignores_what_a_rank_without_rows_holds() {
    use perturb::tensor::value_and_grad_n;
    use perturb_nn::distributed::data_parallel::{reduce_gradients, shard};
    use perturb_nn::distributed::{run_on_threads, Communicator};
    // The mean of (w x)^2 over a batch of one row, x = 1, w = 0.5: loss 0.25, gradient
    // 2 w x^2 = 1.
    let x = Tensor::from_vec(vec![1.0_f64], &[1, 1]).unwrap();
    let w = Tensor::from_vec(vec![0.5_f64], &[1, 1]).unwrap();
    let got = run_on_threads(2, |comm| {
        let rows = shard(1, comm.rank(), comm.size());
        let mine = x.try_slice(0, rows.clone()).unwrap();
        let (loss, g) = value_and_grad_n(
            |p| {
                let y = p[0].constant_like(&mine).matmul(&p[0]);
                Ok(y.mul(&y).mean_all())
            },
            std::slice::from_ref(&w),
        )
        .unwrap();
        let mut tree = (g, loss);
        reduce_gradients(&comm, &mut tree, rows.len(), 1).unwrap();
        (tree.0[0].to_vec()[0], tree.1.to_vec()[0])
    });
    assert_eq!(got, [(1.0, 0.25), (1.0, 0.25)]);
}

/// LayerNorm and BatchNorm squared the centred values, which overflowed where the values did
/// not: f32 `[1e20, -1e20, 3e19]` normalised to `[0, 0, 0]` (the variance 6.8e39 was inf), f64
/// `[1e200, -1e200, 3e199]` too. The centred values are now divided by a power of two per
/// group first; the expected values are the f64 (for f32) or rescaled (for f64) reference.
/// The gradient stays finite and matches the gradient at the same row scaled down.
#[test]
fn norm_layers_of_values_whose_squares_overflow_are_right() {
    let row = [1e20_f64, -1e20, 3e19];
    let want = standardised_f64(&row, 0.0);
    let x32 = Tensor::from_vec(row.iter().map(|&v| v as f32).collect(), &[1, 3]).unwrap();
    let y = LayerNorm::<Tensor<f32>>::new(&[3])
        .unwrap()
        .forward_eval(&x32)
        .unwrap();
    for (g, w) in y.to_vec().iter().zip(&want) {
        assert!(
            (f64::from(*g) - w).abs() < 1e-6,
            "LayerNorm f32: {g} for {w}"
        );
    }
    let bn = BatchNorm::<Tensor<f32>>::new(1).unwrap();
    let y = bn
        .forward(
            &x32.try_reshape(&[3, 1]).unwrap(),
            &mut Context::training(0),
        )
        .unwrap();
    for (g, w) in y.to_vec().iter().zip(&want) {
        assert!(
            (f64::from(*g) - w).abs() < 1e-6,
            "BatchNorm f32: {g} for {w}"
        );
    }
    // f64 at 1e200: the reference of the row divided by 1e180 (the result does not change).
    let x64 = Tensor::from_vec(row.iter().map(|v| v * 1e180).collect(), &[1, 3]).unwrap();
    let y = LayerNorm::<Tensor<f64>>::new(&[3])
        .unwrap()
        .forward_eval(&x64)
        .unwrap();
    for (g, w) in y.to_vec().iter().zip(&want) {
        assert!((g - w).abs() < 1e-12, "LayerNorm f64: {g} for {w}");
    }
    // d sum(w * LayerNorm(x)) / dx at 1e200 is the gradient at 1e10 (where eps is as
    // negligible) divided by 1e190.
    let weights = Tensor::from_vec(vec![1.0_f64, 2.0, 6.0], &[1, 3]).unwrap();
    let gradient_at = |x: Tensor<f64>| {
        let tape = TensorTape::new();
        let xv = tape.var(x);
        let w = tape.constant(weights.clone());
        let ln = LayerNorm::<Tensor<f64>>::new(&[3])
            .unwrap()
            .map(|t| tape.constant(t.clone()));
        let y = ln.forward_eval(&xv).unwrap().try_mul(&w).unwrap().sum_all();
        tape.gradient(&y, &[&xv]).unwrap().remove(0).to_vec()
    };
    let big = gradient_at(x64.clone());
    let small = gradient_at(x64.scale(1e-190));
    for (b, s) in big.iter().zip(&small) {
        assert!(
            b.is_finite() && (b * 1e190 - s).abs() < 1e-9 * s.abs(),
            "{b} vs {s}"
        );
    }
}
