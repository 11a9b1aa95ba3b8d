//! Hostile checks of max pooling by index (`MaxPool2dIndex` + the gather `MaxPool2d`, whose
//! backward is a scatter-add), `bias_add`, and convolutions of small images in blocks of
//! several images: ties, NaN and infinities in windows, padding, strides, forward = reverse,
//! second order, f32, batch sizes around the block size.

mod forward_support;
use forward_support::SplitMix;

use perturb::tensor::conv::{self, Conv2dOptions, Pool2d};
use perturb::tensor::{grad, hessian, jacfwd, jacrev, Array, Tensor};

/// Deterministic pseudo-random values in [-1, 1) (the tables' splitmix64).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed);
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

fn t(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// Max pooling by direct loops: for each window (clipped to the input), the value and flat
/// position of its first maximum (a NaN wins at once, as in PyTorch).
fn reference(
    x: &Tensor<f64>,
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
) -> (Vec<f64>, Vec<usize>) {
    let sh = x.shape();
    let (planes, h, w) = (sh[0] * sh[1], sh[2], sh[3]);
    let oh = (h + 2 * p[0] - k[0]) / s[0] + 1;
    let ow = (w + 2 * p[1] - k[1]) / s[1] + 1;
    let xs = x.as_slice();
    let (mut vals, mut at) = (Vec::new(), Vec::new());
    for plane in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(f64, usize)> = None;
                for dy in 0..k[0] {
                    for dx in 0..k[1] {
                        let (y, xx) = (
                            (oy * s[0] + dy) as isize - p[0] as isize,
                            (ox * s[1] + dx) as isize - p[1] as isize,
                        );
                        if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                            continue;
                        }
                        let i = plane * h * w + y as usize * w + xx as usize;
                        let v = xs[i];
                        best = match best {
                            None => Some((v, i)),
                            Some((m, _)) if !m.is_nan() && (v > m || v.is_nan()) => Some((v, i)),
                            keep => keep,
                        };
                    }
                }
                let (v, i) = best.expect("every window holds an input element");
                vals.push(v);
                at.push(i);
            }
        }
    }
    (vals, at)
}

/// Checks values, the gradient of sum(c * y) (c at the maximum's position), and jacfwd = jacrev
/// (the Jacobian a 0/1 matrix with one 1 per row, at the first maximum).
fn check(x: &Tensor<f64>, k: [usize; 2], s: [usize; 2], p: [usize; 2], label: &str) {
    let pool = Pool2d::new(k).stride(s).padding(p);
    let y = conv::try_max_pool2d(x, pool).unwrap();
    let (vals, at) = reference(x, k, s, p);
    let got = y.to_vec();
    assert_eq!(got.len(), vals.len(), "{label}: output length");
    for (g, v) in got.iter().zip(&vals) {
        assert!(
            g == v || (g.is_nan() && v.is_nan()),
            "{label}: values {got:?} vs {vals:?}"
        );
    }
    let c = t(y.shape(), 77);
    let g = grad(
        |x| {
            Ok(conv::try_max_pool2d(x, pool)?
                .try_mul(&x.constant_like(&c))?
                .sum_all())
        },
        x,
    )
    .unwrap();
    let mut want = vec![0.0; x.len()];
    for (o, &i) in at.iter().enumerate() {
        want[i] += c.as_slice()[o];
    }
    assert_eq!(g.to_vec(), want, "{label}: gradient");
    let fwd = jacfwd(|x| conv::try_max_pool2d(x, pool), x).unwrap();
    let rev = jacrev(|x| conv::try_max_pool2d(x, pool), x).unwrap();
    let n = x.len();
    let mut exact = vec![0.0; at.len() * n];
    for (o, &i) in at.iter().enumerate() {
        exact[o * n + i] = 1.0;
    }
    assert_eq!(fwd.to_vec(), exact, "{label}: jacfwd");
    assert_eq!(rev.to_vec(), exact, "{label}: jacrev");
}

#[test]
fn ties_go_to_the_first_maximum_in_every_mode() {
    // Values from {0, 1}: every window has ties.
    let x = Tensor::from_vec(
        values(2 * 2 * 5 * 6, 3)
            .iter()
            .map(|v| (*v > 0.0) as u8 as f64)
            .collect(),
        &[2, 2, 5, 6],
    )
    .unwrap();
    for (k, s, p) in [
        ([2, 2], [2, 2], [0, 0]),
        ([3, 3], [1, 1], [0, 0]),
        ([3, 2], [2, 1], [1, 1]),
        ([2, 3], [1, 3], [1, 0]),
        ([4, 4], [3, 2], [2, 2]),
        ([1, 1], [1, 1], [0, 0]),
    ] {
        check(&x, k, s, p, &format!("ties k {k:?} s {s:?} p {p:?}"));
        let constant = Tensor::full(&[1, 1, 5, 6], -2.5);
        check(
            &constant,
            k,
            s,
            p,
            &format!("constant k {k:?} s {s:?} p {p:?}"),
        );
    }
}

#[test]
fn nan_and_infinities_in_windows() {
    let mut v = values(2 * 4 * 5, 5);
    v[0] = f64::NEG_INFINITY;
    v[1] = f64::NEG_INFINITY;
    v[5] = f64::NEG_INFINITY;
    v[6] = f64::NEG_INFINITY;
    v[8] = f64::NAN;
    v[13] = f64::INFINITY;
    v[14] = f64::INFINITY;
    v[20] = f64::NAN;
    v[21] = f64::NAN;
    v[30..40].fill(f64::NEG_INFINITY);
    let x = Tensor::from_vec(v, &[1, 2, 4, 5]).unwrap();
    for (k, s, p) in [
        ([2, 2], [1, 1], [0, 0]),
        ([2, 2], [2, 2], [1, 1]),
        ([3, 3], [1, 2], [1, 1]),
        ([2, 3], [2, 1], [1, 0]),
    ] {
        check(&x, k, s, p, &format!("non-finite k {k:?} s {s:?} p {p:?}"));
    }
}

#[test]
fn odd_shapes_three_d_inputs_and_f32() {
    let x = t(&[3, 1, 7, 3], 8);
    check(&x, [3, 2], [2, 1], [1, 1], "odd");
    check(&x, [7, 3], [1, 1], [0, 0], "one window per plane");
    // A [C, H, W] input: the same pooling as its [1, C, H, W].
    let pool = Pool2d::new([2, 2]).stride([1, 2]).padding([1, 1]);
    let three = t(&[2, 3, 4], 9);
    let four = three.reshape(&[1, 2, 3, 4]).unwrap();
    let j3 = jacfwd(|x| conv::try_max_pool2d(x, pool), &three).unwrap();
    let j4 = jacrev(|x| conv::try_max_pool2d(x, pool), &four).unwrap();
    assert_eq!(j3.to_vec(), j4.to_vec());
    // f32: the gradient equals f64's (0/1 routing, positions the same).
    let x32 = Tensor::from_vec(x.to_vec().iter().map(|&v| v as f32).collect(), x.shape()).unwrap();
    let g32 = grad(
        |x| {
            Ok(
                conv::try_max_pool2d(x, Pool2d::new([3, 2]).stride([2, 1]).padding([1, 1]))?
                    .square()
                    .sum_all(),
            )
        },
        &x32,
    )
    .unwrap();
    let g64 = grad(
        |x| {
            Ok(
                conv::try_max_pool2d(x, Pool2d::new([3, 2]).stride([2, 1]).padding([1, 1]))?
                    .square()
                    .sum_all(),
            )
        },
        &x,
    )
    .unwrap();
    for (a, b) in g32.to_vec().iter().zip(g64.to_vec()) {
        assert!((f64::from(*a) - b).abs() < 1e-6, "{a} vs {b}");
    }
}

#[test]
fn second_order_through_max_pool_and_bias_add() {
    // f = sum(bias_add(maxpool(x), b)^3): H by forward over reverse equals jacfwd of the
    // gradient and the exact 6 y at the routed positions.
    let x = t(&[1, 2, 4, 4], 10);
    let b = t(&[2], 11);
    let pool = Pool2d::new([2, 2]).stride([1, 1]).padding([1, 1]);
    fn f<A: Array<Elem = f64>>(x: &A, b: &Tensor<f64>, pool: Pool2d) -> Result<A, perturb::Error> {
        let y = conv::try_bias_add(&conv::try_max_pool2d(x, pool)?, &x.constant_like(b))?;
        Ok(y.pow_scalar(3.0).sum_all())
    }
    let h = hessian(|x| f(x, &b, pool), &x).unwrap();
    let jg = jacfwd(|x| grad(|x| f(x, &b, pool), x), &x).unwrap();
    assert!(h.all_close(&jg, 1e-12));
    let (_, at) = reference(&x, [2, 2], [1, 1], [1, 1]);
    let y = conv::try_bias_add(&conv::try_max_pool2d(&x, pool).unwrap(), &b).unwrap();
    let mut exact = vec![0.0; 32 * 32];
    for (o, &i) in at.iter().enumerate() {
        exact[i * 32 + i] += 6.0 * y.as_slice()[o];
    }
    assert!(h
        .reshape(&[32 * 32])
        .unwrap()
        .all_close(&Tensor::vector(&exact), 1e-12));
}

#[test]
fn bias_add_jacobians_with_respect_to_both_inputs() {
    for shape in [
        vec![2, 3, 2, 2],
        vec![3, 1, 4],
        vec![1, 3, 1, 1],
        vec![2, 3],
    ] {
        let y = t(&shape, 12);
        let c = shape[1];
        let b = t(&[c], 13);
        let (jy, jb) = jacfwd(
            |(y, b)| conv::try_bias_add(y, b).map(|z| z.tanh()),
            &(y.clone(), b.clone()),
        )
        .unwrap();
        let (ry, rb) = jacrev(
            |(y, b)| conv::try_bias_add(y, b).map(|z| z.tanh()),
            &(y.clone(), b.clone()),
        )
        .unwrap();
        assert!(
            jy.all_close(&ry, 1e-14) && jb.all_close(&rb, 1e-14),
            "{shape:?}"
        );
        // Exact: d tanh(y + b_c)/db_c summed over the positions of channel c.
        let z = conv::try_bias_add(&y, &b).unwrap().tanh();
        let n = z.len();
        let per_channel: usize = shape[2..].iter().product();
        for i in 0..n {
            let ch = (i / per_channel) % c;
            for k in 0..c {
                let want = if k == ch {
                    1.0 - z.as_slice()[i].powi(2)
                } else {
                    0.0
                };
                assert!((jb.as_slice()[i * c + k] - want).abs() < 1e-14, "{shape:?}");
            }
        }
    }
}

/// Convolution by direct loops (no padding, stride 1, groups 1).
fn conv_direct(x: &Tensor<f64>, w: &Tensor<f64>) -> Tensor<f64> {
    let (n, ci, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (co, kh, kw) = (w.shape()[0], w.shape()[2], w.shape()[3]);
    let (oh, ow) = (h - kh + 1, wd - kw + 1);
    let (xs, ws) = (x.as_slice(), w.as_slice());
    let mut out = vec![0.0; n * co * oh * ow];
    for b in 0..n {
        for o in 0..co {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = 0.0;
                    for c in 0..ci {
                        for dy in 0..kh {
                            for dx in 0..kw {
                                acc += xs[((b * ci + c) * h + y + dy) * wd + xx + dx]
                                    * ws[((o * ci + c) * kh + dy) * kw + dx];
                            }
                        }
                    }
                    out[((b * co + o) * oh + y) * ow + xx] = acc;
                }
            }
        }
    }
    Tensor::from_vec(out, &[n, co, oh, ow]).unwrap()
}

#[test]
fn small_images_in_blocks_match_direct_loops_and_per_image_gradients() {
    // 16 channels x 3 x 3 = 144 rows per output position, 10 x 15 = 150 positions (under 256):
    // 21600 unrolled elements per image, 3 images per block of 2^16. Batches around 3.
    let w = t(&[4, 16, 3, 3], 21);
    for n in [1, 2, 3, 4, 5, 6, 7] {
        let x = t(&[n, 16, 12, 17], 30 + n as u64);
        let y = conv::try_conv2d(&x, &w, Conv2dOptions::default()).unwrap();
        assert!(y.all_close(&conv_direct(&x, &w), 1e-12), "value, batch {n}");
        let c = t(y.shape(), 40);
        let (gx, gw) = grad(|(x, w)| loss(x, w, &c), &(x.clone(), w.clone())).unwrap();
        // Per image: each image alone (one image per block), the weight's gradients summed.
        let mut gw_sum = Tensor::zeros(w.shape());
        for b in 0..n {
            let xb = x.narrow(0, b, 1);
            let cb = c.narrow(0, b, 1);
            let (gxb, gwb) = grad(|(x, w)| loss(x, w, &cb), &(xb, w.clone())).unwrap();
            assert!(
                gx.narrow(0, b, 1).all_close(&gxb, 1e-12),
                "d/dx, image {b} of {n}"
            );
            gw_sum = gw_sum.add(&gwb);
        }
        assert!(gw.all_close(&gw_sum, 1e-12), "d/dw, batch {n}");
    }
}

fn loss<A: Array<Elem = f64>>(x: &A, w: &A, c: &Tensor<f64>) -> Result<A, perturb::Error> {
    let y = conv::try_conv2d(x, w, Conv2dOptions::default())?;
    Ok(y.try_mul(&x.constant_like(c))?.sum_all())
}

/// A small CNN's loss of its parameters (conv weight [3, 2, 2, 2], bias [3], linear [2, 12]):
/// conv, bias_add, tanh, max pool, a linear layer, log-softmax, the loss of class 1.
fn cnn<A: Array<Elem = f64>>(
    (w, b, l): &(A, A, A),
    images: &Tensor<f64>,
) -> Result<A, perturb::Error> {
    let x = w.constant_like(images); // [2, 2, 4, 5]
    let y = conv::try_conv2d(&x, w, Conv2dOptions::default().padding(1))?; // [2, 3, 5, 6]
    let y = conv::try_bias_add(&y, b)?.tanh();
    let p = conv::try_max_pool2d(&y, Pool2d::new([3, 3]).stride([2, 3]).padding([1, 1]))?; // [2, 3, 3, 2]
    let flat = p.try_reshape(&[2, 18])?.try_narrow(1, 3, 12)?;
    let logits = flat.try_matmul(&l.transpose())?; // [2, 2]
    Ok(logits
        .try_log_softmax(1)?
        .try_narrow(1, 1, 1)?
        .sum_all()
        .scale(-1.0))
}

#[test]
fn hessian_of_a_small_cnn_by_three_routes_and_differences_of_gradients() {
    let images = t(&[2, 2, 4, 5], 80);
    let params = (
        t(&[3, 2, 2, 2], 81),
        t(&[3], 82).scale(0.1),
        t(&[2, 12], 83),
    );
    let (hw, _, _) = hessian(|p| cnn(p, &images), &params).unwrap();
    // Rows for w of the Hessian: jacfwd and jacrev of the gradient with respect to w.
    let gw = |w: &Tensor<f64>| {
        grad(
            |p| cnn(p, &images),
            &(w.clone(), params.1.clone(), params.2.clone()),
        )
        .unwrap()
        .0
    };
    let (fw, _, _) = jacfwd(
        |(w, b, l)| Ok(grad(|p| cnn(p, &images), &(w.clone(), b.clone(), l.clone()))?.0),
        &params,
    )
    .unwrap();
    let (rw, _, _) = jacrev(
        |(w, b, l)| Ok(grad(|p| cnn(p, &images), &(w.clone(), b.clone(), l.clone()))?.0),
        &params,
    )
    .unwrap();
    assert!(hw.0.all_close(&fw, 1e-12), "hessian vs jacfwd of grad");
    assert!(fw.all_close(&rw, 1e-12), "jacfwd vs jacrev of grad");
    let v = t(&[3, 2, 2, 2], 84);
    let h = 1e-5;
    let fd = gw(&params.0.add(&v.scale(h)))
        .sub(&gw(&params.0.add(&v.scale(-h))))
        .scale(0.5 / h);
    let hv = fw
        .reshape(&[24, 24])
        .unwrap()
        .matmul(&v.reshape(&[24]).unwrap());
    assert!(
        hv.all_close(&fd.reshape(&[24]).unwrap(), 1e-6),
        "{:?}\n{:?}",
        hv.to_vec(),
        fd.to_vec()
    );
}

fn loss_with<A: Array<Elem = f64>>(
    x: &A,
    w: &A,
    c: &Tensor<f64>,
    o: Conv2dOptions,
) -> Result<A, perturb::Error> {
    let y = conv::try_conv2d(x, w, o)?;
    Ok(y.try_mul(&x.constant_like(c))?.sum_all())
}

#[test]
fn grouped_strided_dilated_convolutions_in_blocks_equal_one_image_at_a_time() {
    // 2 groups of 8 channels x 3 x 3 = 72 rows; a 13 x 21 image, padding 1, stride [1, 2],
    // dilation 2: 11 x 10 = 110 positions (under 256), 7920 per image: 8 per block. Batches
    // around 8.
    let opts = Conv2dOptions::default()
        .padding(1)
        .strides([1, 2])
        .dilation(2)
        .groups(2);
    let w = t(&[6, 8, 3, 3], 90);
    for n in [7, 8, 9, 17] {
        let x = t(&[n, 16, 13, 21], 91 + n as u64);
        let y = conv::try_conv2d(&x, &w, opts).unwrap();
        let c = t(y.shape(), 92);
        let (gx, gw) = grad(|(x, w)| loss_with(x, w, &c, opts), &(x.clone(), w.clone())).unwrap();
        let mut gw_sum = Tensor::zeros(w.shape());
        for b in 0..n {
            let xb = x.narrow(0, b, 1);
            let yb = conv::try_conv2d(&xb, &w, opts).unwrap();
            assert!(
                y.narrow(0, b, 1).all_close(&yb, 1e-12),
                "value, image {b} of {n}"
            );
            let cb = c.narrow(0, b, 1);
            let (gxb, gwb) = grad(|(x, w)| loss_with(x, w, &cb, opts), &(xb, w.clone())).unwrap();
            assert!(
                gx.narrow(0, b, 1).all_close(&gxb, 1e-12),
                "d/dx, image {b} of {n}"
            );
            gw_sum = gw_sum.add(&gwb);
        }
        assert!(gw.all_close(&gw_sum, 1e-11), "d/dw, batch {n}");
    }
}

#[test]
fn jacobians_of_a_convolution_whose_tangent_stack_spans_many_blocks() {
    // jacfwd pushes 672 basis tangents through as 672 images of 16 x 6 x 7 (20 positions,
    // 22 images per block, the last block partial), jacrev pulls 80 rows back.
    let w = t(&[4, 16, 3, 3], 93);
    let x = t(&[1, 16, 6, 7], 94);
    let f = |x: &_| -> Result<_, perturb::Error> {
        let x: &perturb::tensor::DualTensor<perturb::tensor::Batched<Tensor<f64>>> = x;
        Ok(conv::try_conv2d(x, &x.constant_like(&w), Conv2dOptions::default())?.sin())
    };
    let fwd = jacfwd(f, &x).unwrap();
    let rev = jacrev(
        |x| Ok(conv::try_conv2d(x, &x.constant_like(&w), Conv2dOptions::default())?.sin()),
        &x,
    )
    .unwrap();
    assert_eq!(fwd.shape(), &[1, 4, 4, 5, 1, 16, 6, 7]);
    assert!(fwd.all_close(&rev, 1e-13));
    // Exact: cos(y) times the weight at the offset of each input in each window.
    let y = conv_direct(&x, &w);
    let (ys, ws, j) = (y.as_slice(), w.as_slice(), fwd.as_slice());
    for o in 0..4 {
        for (oy, ox) in (0..4).flat_map(|a| (0..5).map(move |b| (a, b))) {
            let out = (o * 4 + oy) * 5 + ox;
            for c in 0..16 {
                for (iy, ix) in (0..6).flat_map(|a| (0..7).map(move |b| (a, b))) {
                    let (dy, dx) = (iy as isize - oy as isize, ix as isize - ox as isize);
                    let wv = if (0..3).contains(&dy) && (0..3).contains(&dx) {
                        ws[((o * 16 + c) * 3 + dy as usize) * 3 + dx as usize]
                    } else {
                        0.0
                    };
                    let got = j[out * 672 + (c * 6 + iy) * 7 + ix];
                    assert!((got - ys[out].cos() * wv).abs() < 1e-13);
                }
            }
        }
    }
}
