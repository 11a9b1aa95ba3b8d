//! The lecture's vector examples through the tensor engine, with exact values, and the
//! lecture's network through the tensor engine and the scalar engine.

use perturb::tensor::{Array, Tensor, TensorTape};
use perturb::Scalar;

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

/// Deterministic pseudo-random values in [-1, 1) (splitmix64).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn mse_gradient_is_minus_two_over_n_xt_residual() {
    // a = X w, b = y - a, c = b^2, g = sum(c), L = g / N: dL/dw = -(2/N) X^T (y - X w).
    let (n, d) = (7, 3);
    let x = t(&values(n * d, 1), &[n, d]);
    let y = t(&values(n, 2), &[n, 1]);
    let w0 = t(&values(d, 3), &[d, 1]);
    let tape = TensorTape::new();
    let w = tape.var(w0.clone());
    let a = tape.constant(x.clone()).matmul(&w);
    let b = tape.constant(y.clone()).sub(&a);
    let c = b.square();
    let g = c.sum_all();
    let l = g.scale(1.0 / n as f64);
    let grad = tape.gradient(&l, &[&w]).unwrap().remove(0);
    let exact = x
        .transpose()
        .matmul(&y.sub(&x.matmul(&w0)))
        .scale(-2.0 / n as f64);
    assert!(grad.all_close(&exact, 1e-14), "{grad} vs {exact}");
}

#[test]
fn the_jacobian_of_a_x_is_a() {
    // One VJP per output row with a unit cotangent: row i of the Jacobian.
    let (m, n) = (3, 4);
    let a = t(&values(m * n, 4), &[m, n]);
    let tape = TensorTape::new();
    let x = tape.var(t(&values(n, 5), &[n]));
    let y = tape.constant(a.clone()).matmul(&x);
    for i in 0..m {
        let mut e = vec![0.0; m];
        e[i] = 1.0;
        let row = tape.vjp(&y, &Tensor::vector(&e), &[&x]).unwrap().remove(0);
        assert_eq!(row.to_vec(), a.as_slice()[i * n..(i + 1) * n].to_vec());
    }
}

#[test]
fn the_jacobian_of_x_squared_is_diag_2x() {
    let x0 = values(5, 6);
    let tape = TensorTape::new();
    let x = tape.var(Tensor::vector(&x0));
    let y = x.square();
    for i in 0..5 {
        let mut e = vec![0.0; 5];
        e[i] = 1.0;
        let row = tape
            .vjp(&y, &Tensor::vector(&e), &[&x])
            .unwrap()
            .remove(0)
            .to_vec();
        let mut expected = vec![0.0; 5];
        expected[i] = 2.0 * x0[i];
        assert_eq!(row, expected);
    }
}

/// The lecture's network on plain scalars, written once: 2 inputs, 3 sigmoid hidden units, one
/// output; parameters `[W (3x2, row-major), b (3), w0 (3), c]`; loss
/// `-sum_i log sigmoid((2 y_i - 1) z_i)`.
fn scalar_loss<S: Scalar>(p: &[S], x: &[[f64; 2]], y: &[f64]) -> S {
    let c = |v: f64| S::from(v).unwrap();
    let mut loss = S::zero();
    for (xi, &yi) in x.iter().zip(y) {
        let mut z = p[12];
        for j in 0..3 {
            let pre = p[2 * j] * c(xi[0]) + p[2 * j + 1] * c(xi[1]) + p[6 + j];
            z += p[9 + j] * pre.sigmoid();
        }
        loss -= (z * c(2.0 * yi - 1.0)).sigmoid().ln();
    }
    loss
}

/// The same network with tensor operations.
fn tensor_loss<A: Array>(w: &A, b: &A, w0: &A, c: &A, x: &A, sign: &A) -> A {
    let hidden = x.matmul(&w.transpose()).add(b).sigmoid(); // (N, 3)
    let z = hidden.matmul(w0).add(c); // (N)
    z.mul(sign).sigmoid().ln().sum_all().neg()
}

#[test]
fn the_lecture_network_has_the_same_gradient_in_both_engines() {
    let n = 20;
    let xs: Vec<[f64; 2]> = values(2 * n, 7)
        .chunks(2)
        .map(|c| [2.0 * c[0], 2.0 * c[1]])
        .collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|p| if p[0] * p[1] > 0.0 { 1.0 } else { 0.0 })
        .collect();
    let params = values(13, 8);

    let (value, scalar_grad) = perturb::gradient(|p| scalar_loss(p, &xs, &ys), &params);

    let tape = TensorTape::new();
    let w = tape.var(t(&params[0..6], &[3, 2]));
    let b = tape.var(t(&params[6..9], &[3]));
    let w0 = tape.var(t(&params[9..12], &[3]));
    let c = tape.var(t(&params[12..13], &[1]));
    let x = tape.constant(t(&xs.concat(), &[n, 2]));
    let sign = tape.constant(Tensor::vector(
        &ys.iter().map(|y| 2.0 * y - 1.0).collect::<Vec<_>>(),
    ));
    let loss = tensor_loss(&w, &b, &w0, &c, &x, &sign);
    assert!((loss.value().item().unwrap() - value).abs() < 1e-12 * value.abs());
    let grads = tape.gradient(&loss, &[&w, &b, &w0, &c]).unwrap();
    let tensor_grad: Vec<f64> = grads.iter().flat_map(|g| g.to_vec()).collect();
    for (i, (a, s)) in tensor_grad.iter().zip(&scalar_grad).enumerate() {
        assert!(
            (a - s).abs() < 1e-12,
            "parameter {i}: tensor {a} vs scalar {s}"
        );
    }
}
