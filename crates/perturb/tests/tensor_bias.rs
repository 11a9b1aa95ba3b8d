//! A convolution's bias: `bias_add` (one value per channel, axis 1) and its gradient
//! `BiasAddGrad` (the sum of each channel).
//!
//! The forward column (`forward_support`: JVP against central differences, against the VJP and
//! each input alone, the batched column) and order two in every nesting of `f^2`, for ranks 2,
//! 3 and 4; values against numpy broadcasting (`y + b.reshape([C, 1, ..])`, the same one
//! addition per element, so bit for bit) and the gradient against `sum_axes`; through a tape
//! after a convolution; errors naming the operation.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::conv::{bias_add, conv2d, try_bias_add, Conv2dOptions};
use perturb::tensor::ops::{BiasAdd, BiasAddGrad};
use perturb::tensor::{Array, Op, Tensor, TensorTape};
use perturb::Error;

/// `bias_add(y, b)`, squared if `squared`.
struct Add {
    squared: bool,
}

impl Function for Add {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = try_bias_add(xs[0], xs[1])?;
        Ok(if self.squared { y.square() } else { y })
    }
}

/// `BiasAddGrad(g)`, squared if `squared`.
struct Grad {
    squared: bool,
}

impl Function for Grad {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = A::apply(&BiasAddGrad, &[xs[0]])?;
        Ok(if self.squared { y.square() } else { y })
    }
}

const SHAPES: [&[usize]; 4] = [&[2, 3, 4, 5], &[3, 2, 3], &[4, 3], &[2, 3, 1, 2, 2]];

#[test]
fn first_and_second_order_match_central_differences_the_vjps_and_batch() {
    let mut rng = SplitMix(0xb1a5_0001);
    for shape in SHAPES {
        let (y, b) = (
            rng.tensor(shape, -1.0, 1.0),
            rng.tensor(&[shape[1]], -1.0, 1.0),
        );
        let xs = [y.clone(), b.clone()];
        let vs = [
            rng.tensor(shape, -1.0, 1.0),
            rng.tensor(&[shape[1]], -1.0, 1.0),
        ];
        let zs = [
            rng.tensor(shape, -1.0, 1.0),
            rng.tensor(&[shape[1]], -1.0, 1.0),
        ];
        let u = rng.tensor(shape, -1.0, 1.0);
        let what = format!("bias_add on {shape:?}");
        check_first_order(
            &what,
            &Add { squared: false },
            &xs,
            &[true, true],
            &vs,
            &u,
            1e-8,
        );
        check_second_order(
            &what,
            &Add { squared: true },
            &xs,
            &[true, true],
            &vs,
            &zs,
            &u,
            1e-6,
        );
        // The bias alone: its tangent spread over the channels.
        check_first_order(
            &what,
            &Add { squared: false },
            &xs,
            &[false, true],
            &vs,
            &u,
            1e-8,
        );

        let what = format!("bias_add_grad on {shape:?}");
        let u = rng.tensor(&[shape[1]], -1.0, 1.0);
        let (v, z) = (rng.tensor(shape, -1.0, 1.0), rng.tensor(shape, -1.0, 1.0));
        check_first_order(
            &what,
            &Grad { squared: false },
            std::slice::from_ref(&y),
            &[true],
            std::slice::from_ref(&v),
            &u,
            1e-8,
        );
        check_second_order(
            &what,
            &Grad { squared: true },
            &[y],
            &[true],
            &[v],
            &[z],
            &u,
            1e-6,
        );
    }
}

#[test]
fn values_match_broadcasting_and_sum_axes() {
    let mut rng = SplitMix(0xb1a5_0002);
    for shape in SHAPES {
        let (y, b) = (
            rng.tensor(shape, -3.0, 3.0),
            rng.tensor(&[shape[1]], -3.0, 3.0),
        );
        let column: Vec<usize> = shape[1..]
            .iter()
            .enumerate()
            .map(|(a, &l)| if a == 0 { l } else { 1 })
            .collect();
        let want = y.add(&b.try_reshape(&column).unwrap());
        assert_eq!(bias_add(&y, &b).to_vec(), want.to_vec(), "{shape:?}");
        let axes: Vec<usize> = (0..shape.len()).filter(|&a| a != 1).collect();
        let sums = BiasAddGrad.eval(&[&y]).unwrap();
        assert!(
            sums.all_close(&y.sum_axes(&axes, false), 1e-12),
            "{shape:?}"
        );
    }
    // Empty batches and empty planes: empty results, zero sums.
    let y = Tensor::<f64>::zeros(&[0, 3, 2]);
    assert_eq!(bias_add(&y, &Tensor::ones(&[3])).shape(), &[0, 3, 2]);
    assert_eq!(BiasAddGrad.eval(&[&y]).unwrap().to_vec(), vec![0.0; 3]);
    let y = Tensor::<f64>::zeros(&[2, 3, 0]);
    assert_eq!(BiasAddGrad.eval(&[&y]).unwrap().to_vec(), vec![0.0; 3]);
}

#[test]
fn after_a_convolution_the_gradients_are_those_of_broadcasting() {
    // The layer's use: conv2d then the bias, through a tape, in f32 and f64.
    let mut rng = SplitMix(0xb1a5_0003);
    let (x, w, b) = (
        rng.tensor(&[3, 2, 5, 5], -1.0, 1.0),
        rng.tensor(&[4, 2, 3, 3], -1.0, 1.0),
        rng.tensor(&[4], -1.0, 1.0),
    );
    let u = rng.tensor(&[3, 4, 5, 5], -1.0, 1.0);
    let o = Conv2dOptions::default().padding(1);
    let grads = |fused: bool| {
        let tape = TensorTape::new();
        let (xv, wv, bv) = (
            tape.var(x.clone()),
            tape.var(w.clone()),
            tape.var(b.clone()),
        );
        let y = conv2d(&xv, &wv, o);
        let y = if fused {
            bias_add(&y, &bv)
        } else {
            y.add(&bv.try_reshape(&[4, 1, 1]).unwrap())
        };
        (
            y.value().clone(),
            tape.vjp(&y, &u, &[&xv, &wv, &bv]).unwrap(),
        )
    };
    let ((y1, g1), (y2, g2)) = (grads(true), grads(false));
    assert_eq!(y1.to_vec(), y2.to_vec());
    for (a, b) in g1.iter().zip(&g2) {
        assert!(a.all_close(b, 1e-12));
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_operation_and_both_shapes() {
    let y = Tensor::<f64>::zeros(&[2, 3, 4]);
    let m = try_bias_add(&y, &Tensor::zeros(&[4]))
        .unwrap_err()
        .to_string();
    assert!(
        m.starts_with("bias_add") && m.contains("[2, 3, 4]") && m.contains("[4]"),
        "{m}"
    );
    let m = try_bias_add(&y, &Tensor::zeros(&[1, 3]))
        .unwrap_err()
        .to_string();
    assert!(m.starts_with("bias_add") && m.contains("[1, 3]"), "{m}");
    let m = try_bias_add(&Tensor::<f64>::zeros(&[3]), &Tensor::zeros(&[3]))
        .unwrap_err()
        .to_string();
    assert!(m.starts_with("bias_add") && m.contains("[3]"), "{m}");
    let m = BiasAddGrad
        .eval(&[&Tensor::<f64>::zeros(&[3])])
        .unwrap_err()
        .to_string();
    assert!(m.starts_with("bias_add_grad") && m.contains("[3]"), "{m}");
    assert_eq!(
        BiasAdd.output_shape(&[&[2, 3, 4], &[3]]),
        Some(vec![2, 3, 4])
    );
    assert_eq!(BiasAdd.output_shape(&[&[2, 3, 4], &[4]]), None);
    assert_eq!(BiasAddGrad.output_shape(&[&[2, 3, 4]]), Some(vec![3]));
}
