//! The broadcasting kernels' fast paths against a reference written element by element.

use perturb::tensor::{ops, Array, Tensor};

/// Reference broadcast: index `out` by its multi-index, map to the input with numpy's rules.
fn reference_broadcast(x: &Tensor<f64>, to: &[usize]) -> Vec<f64> {
    let from = x.shape();
    let total: usize = to.iter().product();
    (0..total)
        .map(|flat| {
            let mut rem = flat;
            let mut idx = vec![0; to.len()];
            for axis in (0..to.len()).rev() {
                idx[axis] = rem % to[axis];
                rem /= to[axis];
            }
            let offset = to.len() - from.len();
            let src: Vec<usize> = (0..from.len())
                .map(|i| if from[i] == 1 { 0 } else { idx[i + offset] })
                .collect();
            x.get(&src).unwrap()
        })
        .collect()
}

/// Reference sum: add each element of `x` into the slot it broadcasts from.
fn reference_sum_to(x: &Tensor<f64>, to: &[usize]) -> Vec<f64> {
    let from = x.shape().to_vec();
    let mut out = vec![0.0; to.iter().product()];
    let probe = Tensor::from_vec((0..out.len()).map(|i| i as f64).collect(), to).unwrap();
    let slots = reference_broadcast(&probe, &from);
    for (v, slot) in x.as_slice().iter().zip(slots) {
        out[slot as usize] += v;
    }
    out
}

#[test]
fn sum_to_and_broadcast_to_agree_with_the_reference_on_every_layout() {
    let cases: [(&[usize], &[usize]); 15] = [
        (&[4, 3], &[3]),          // leading (a bias over a batch)
        (&[1000, 3], &[3]),       // leading, many short rows: blocks of whole rows and a rest
        (&[70, 1], &[1]),         // leading, rows of one value
        (&[50, 2], &[2]),         // leading, less than one block past the first
        (&[0, 3], &[3]),          // leading, no rows
        (&[7, 2], &[2]),          // leading, each narrow width
        (&[5, 4], &[1, 4]),       // leading, each narrow width
        (&[6, 5], &[5]),          // leading, wider
        (&[4, 3], &[1, 3]),       // leading, kept axis
        (&[2, 4, 3], &[3]),       // several leading axes
        (&[4, 3], &[4, 1]),       // trailing
        (&[2, 3, 4], &[2, 1, 1]), // several trailing axes
        (&[2, 3, 4], &[3, 1]),    // general
        (&[2, 3, 4], &[1, 3, 1]), // general
        (&[3, 4], &[]),           // to a scalar
    ];
    for (big, small) in cases {
        let n: usize = big.iter().product();
        let x = Tensor::from_vec((0..n).map(|i| (i as f64).sin()).collect(), big).unwrap();
        let summed = x.try_sum_to(small).unwrap();
        let expected = reference_sum_to(&x, small);
        assert_eq!(summed.shape(), small);
        for (a, b) in summed.as_slice().iter().zip(&expected) {
            assert!((a - b).abs() < 1e-12, "sum_to {big:?} -> {small:?}");
        }
        let m: usize = small.iter().product();
        let s = Tensor::from_vec((0..m).map(|i| i as f64 + 0.5).collect(), small).unwrap();
        let spread = s.try_broadcast_to(big).unwrap();
        assert_eq!(
            spread.to_vec(),
            reference_broadcast(&s, big),
            "broadcast {small:?} -> {big:?}"
        );
    }
}

/// A binary operation with one operand broadcast as a row over the other (a bias added to a
/// batch, on either side), against the reference broadcast then the operation element by
/// element: row lengths below, at and above the kernel's block, with and without a rest.
#[test]
fn broadcast_rows_in_binary_operations_agree_with_the_reference() {
    for (big, small) in [
        (&[1000, 3][..], &[3][..]),
        (&[70, 1], &[1, 1]),
        (&[50, 2], &[2]),
        (&[5, 64], &[64]),
        (&[4, 100], &[1, 100]),
        (&[3, 7, 5], &[5]),
    ] {
        let n: usize = big.iter().product();
        let x = Tensor::from_vec((0..n).map(|i| (i as f64).sin()).collect(), big).unwrap();
        let m: usize = small.iter().product();
        let s = Tensor::from_vec((0..m).map(|i| i as f64 + 0.5).collect(), small).unwrap();
        let spread = reference_broadcast(&s, big);
        let sums: Vec<f64> = x
            .as_slice()
            .iter()
            .zip(&spread)
            .map(|(a, b)| a + b)
            .collect();
        let left: Vec<f64> = x
            .as_slice()
            .iter()
            .zip(&spread)
            .map(|(a, b)| b - a)
            .collect();
        assert_eq!(x.try_add(&s).unwrap().to_vec(), sums, "{big:?} + {small:?}");
        assert_eq!(s.try_sub(&x).unwrap().to_vec(), left, "{small:?} - {big:?}");
    }
}

/// `MulSumTo`, a product summed down without its buffer where the layout allows, against the
/// reference sum of the element-by-element product, on each layout (fused and not): a scalar,
/// rows, trailing blocks, an operand of one value, an operand that is itself broadcast, and an
/// empty product.
#[test]
fn mul_sum_to_agrees_with_the_reference_on_every_layout() {
    type Case = (&'static [usize], &'static [usize], &'static [usize]);
    let cases: [Case; 12] = [
        (&[4, 3], &[4, 3], &[]),              // a dot product
        (&[33, 5], &[33, 5], &[1, 1]),        // a dot product, with a tail past the eight sums
        (&[4, 3], &[], &[]),                  // one value times a sum
        (&[1], &[4, 3], &[1]),                // one value first
        (&[4, 3], &[4, 3], &[3]),             // rows
        (&[2, 4, 3], &[1], &[4, 3]),          // rows of several leading axes, one value
        (&[4, 3], &[4, 3], &[4, 1]),          // trailing blocks
        (&[2, 3, 4], &[2, 3, 4], &[2, 1, 1]), // trailing blocks of several axes
        (&[4, 3], &[3], &[]),                 // `b` broadcast: no fused loop
        (&[4, 1], &[1, 3], &[4, 1]),          // both broadcast
        (&[2, 3, 4], &[2, 3, 4], &[3, 1]),    // a general layout
        (&[0, 3], &[0, 3], &[3]),             // an empty product sums to zeros
    ];
    for (seed, (sa, sb, to)) in cases.into_iter().enumerate() {
        let filled = |shape: &[usize], k: f64| {
            let n = shape.iter().product();
            let v = (0..n)
                .map(|i| (k * (i + 1) as f64 + seed as f64).sin())
                .collect();
            Tensor::from_vec(v, shape).unwrap()
        };
        let (a, b) = (filled(sa, 1.3), filled(sb, 0.7));
        let got = Tensor::apply(
            &ops::MulSumTo {
                c: -1.5,
                to: to.to_vec(),
            },
            &[&a, &b],
        )
        .unwrap();
        let out: Vec<usize> = a.try_add(&b).unwrap().shape().to_vec();
        let (ba, bb) = (reference_broadcast(&a, &out), reference_broadcast(&b, &out));
        let product: Vec<f64> = ba.iter().zip(&bb).map(|(x, y)| -1.5 * x * y).collect();
        let want = reference_sum_to(&Tensor::from_vec(product, &out).unwrap(), to);
        assert_eq!(got.shape(), to, "{sa:?} * {sb:?} -> {to:?}");
        for (g, w) in got.as_slice().iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-12,
                "{sa:?} * {sb:?} -> {to:?}: {g} against {w}"
            );
        }
    }
    // A shape the product does not broadcast to is an error naming the operation.
    let (a, b) = (Tensor::<f64>::ones(&[4, 3]), Tensor::<f64>::ones(&[3]));
    let err = Tensor::apply(
        &ops::MulSumTo {
            c: 1.0,
            to: vec![4],
        },
        &[&a, &b],
    )
    .unwrap_err();
    assert!(err.to_string().contains("mul_sum_to"), "{err}");
    let err = Tensor::apply(
        &ops::MulSumTo { c: 1.0, to: vec![] },
        &[&a, &Tensor::ones(&[2])],
    );
    assert!(err.unwrap_err().to_string().contains("mul_sum_to"));
}

/// `Element::gemm` against a triple loop, for the matrix-vector and vector-matrix shapes and
/// the small outputs (which take their own loops) and general ones, with every combination of transposed operands and
/// with `beta` zero (where `c` may hold NaN and must not be read) and non-zero.
#[test]
fn gemm_matches_a_triple_loop_for_vector_shapes_and_strides() {
    use perturb::tensor::Element;
    let value = |i: usize| ((i * 37 + 11) % 17) as f64 / 7.0 - 1.0;
    for (m, k, n) in [
        (5, 7, 1),
        (1, 7, 5),
        (1, 1, 1),
        (4, 3, 6),
        (9, 1, 1),
        (1, 6, 1),
        (7, 2, 3),
        (3, 4, 9),
        (6, 1, 5),
        (5, 9, 4),
        // Outputs of at most 4 x 4 over a long inner dimension (a small layer's weight
        // gradient), each layout: `a` transposed and `b` not is the contiguous fast path.
        (3, 9, 2),
        (2, 12, 4),
        (4, 6, 3),
    ] {
        let a: Vec<f64> = (0..m * k).map(value).collect();
        let b: Vec<f64> = (0..k * n).map(|i| value(i + 100)).collect();
        for (ta, tb, beta) in [
            (false, false, 0.0),
            (true, false, 0.0),
            (false, true, 0.5),
            (true, true, -2.0),
        ] {
            // A transposed operand is stored as its transpose and read with swapped strides.
            let (a_buf, a_strides) = if ta {
                let t: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
                (t, (1, m))
            } else {
                (a.clone(), (k, 1))
            };
            let (b_buf, b_strides) = if tb {
                let t: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
                (t, (1, k))
            } else {
                (b.clone(), (n, 1))
            };
            let c0: Vec<f64> = (0..m * n).map(|i| value(i + 200)).collect();
            let mut c = if beta == 0.0 {
                vec![f64::NAN; m * n]
            } else {
                c0.clone()
            };
            f64::gemm(
                m, k, n, &a_buf, a_strides, &b_buf, b_strides, beta, &mut c, n,
            );
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                    let want = dot
                        + if beta == 0.0 {
                            0.0
                        } else {
                            beta * c0[i * n + j]
                        };
                    let got = c[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{m}x{k}x{n} ta={ta} tb={tb} beta={beta}: c[{i},{j}] = {got}, want {want}"
                    );
                }
            }
        }
    }
}

/// Element-wise operations large enough to run on rayon's pool (from 2^18 elements for cheap
/// ones, 2^14 for transcendental ones), with lengths that do and do not fill the last chunk,
/// give exactly the serial loop's values, element for element.
#[test]
fn parallel_element_wise_loops_match_the_serial_loop_exactly() {
    for n in [
        (1 << 14) + 7,
        1 << 18,
        (1 << 18) + (1 << 13),
        (1 << 18) + 12_345,
    ] {
        let a: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37).sin() * 3.0).collect();
        let b: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.11).cos() + 0.5).collect();
        let (ta, tb) = (
            Tensor::from_vec(a.clone(), &[n]).unwrap(),
            Tensor::from_vec(b.clone(), &[n]).unwrap(),
        );
        let check = |what: &str, got: Tensor<f64>, want: &dyn Fn(usize) -> f64| {
            assert_eq!(got.len(), n, "{what} n {n}");
            for (i, &g) in got.as_slice().iter().enumerate() {
                assert_eq!(g.to_bits(), want(i).to_bits(), "{what} n {n} element {i}");
            }
        };
        check("scale", ta.scale(-2.5), &|i| -2.5 * a[i]);
        check("add_scalar", ta.add_scalar(0.75), &|i| a[i] + 0.75);
        // The exponential family's loop may be vectorised (a few ulps from libm): its
        // reference is the same loop run serially, on pieces below the threshold.
        let serial = |f: &dyn Fn(&Tensor<f64>) -> Tensor<f64>| -> Vec<f64> {
            a.chunks(1 << 12)
                .flat_map(|c| f(&Tensor::vector(c)).to_vec())
                .collect()
        };
        let (exp, log_sigmoid) = (serial(&|t| t.exp()), serial(&|t| t.log_sigmoid()));
        check("exp", ta.exp(), &|i| exp[i]);
        check("log_sigmoid", ta.log_sigmoid(), &|i| log_sigmoid[i]);
        check("sub", ta.sub(&tb), &|i| a[i] - b[i]);
        check("mul", ta.mul(&tb), &|i| a[i] * b[i]);
        check("div", ta.div(&tb), &|i| a[i] / b[i]);
        let mul_add = Tensor::apply(&ops::MulAdd(-1.5), &[&ta, &tb, &ta]).unwrap();
        check("mul_add", mul_add, &|i| a[i] + -1.5 * (b[i] * a[i]));
        let mask = ta.try_greater(&tb).unwrap();
        check("greater", mask.clone(), &|i| {
            f64::from(u8::from(a[i] > b[i]))
        });
        check("select", mask.try_select(&ta, &tb).unwrap(), &|i| {
            a[i].max(b[i])
        });
        check("clamp", ta.try_clamp(-0.5, 1.25).unwrap(), &|i| {
            a[i].clamp(-0.5, 1.25)
        });
        // A reduction over the last axis (folded in a register per row) and over the first.
        let m = n / 8 * 8;
        let rows = ta.narrow(0, 0, m).try_reshape(&[m / 8, 8]).unwrap();
        let row_max = rows.max_axes(&[1], false);
        let col_min = rows.min_axes(&[0], false);
        for (r, &got) in row_max.as_slice().iter().enumerate() {
            let want = a[8 * r..8 * r + 8].iter().copied().fold(f64::MIN, f64::max);
            assert_eq!(got, want, "max of row {r}, n {n}");
        }
        for (c, &got) in col_min.as_slice().iter().enumerate() {
            let want = (0..m / 8).map(|r| a[8 * r + c]).fold(f64::MAX, f64::min);
            assert_eq!(got, want, "min of column {c}, n {n}");
        }
    }
    // f32 as well: the mlp-784 update's size.
    let n = 784 * 512;
    let a: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
    let scaled = Tensor::from_vec(a.clone(), &[784, 512])
        .unwrap()
        .scale(0.01);
    for (i, &g) in scaled.as_slice().iter().enumerate() {
        assert_eq!(
            g.to_bits(),
            (0.01 * a[i]).to_bits(),
            "f32 scale element {i}"
        );
    }
}

/// gemm checks its strides with checked arithmetic: strides whose reach wraps around 2^64
/// passed the bounds check before (2 * 2^63 = 0) and the kernel read far past `a`.
#[test]
fn gemm_refuses_strides_whose_reach_wraps_around() {
    use perturb::tensor::Element;
    let (m, k, n) = (3, 8, 16);
    let a = vec![1.0_f64; k * 2];
    let b = vec![1.0_f64; k * n];
    let mut c = vec![0.0_f64; m * n];
    let wraps = std::panic::catch_unwind(move || {
        f64::gemm(m, k, n, &a, (1 << 63, 1), &b, (n, 1), 0.0, &mut c, n);
    });
    assert!(wraps.is_err(), "strides reaching past the slice must panic");
    // A stride past isize::MAX on a single column (k = 1), which the kernel would take as
    // negative.
    let (a, b) = (vec![1.0_f64; m], vec![1.0_f64; n]);
    let mut c = vec![0.0_f64; m * n];
    let negative = std::panic::catch_unwind(move || {
        f64::gemm(m, 1, n, &a, (1, usize::MAX), &b, (n, 1), 0.0, &mut c, n);
    });
    assert!(negative.is_err(), "a stride past isize::MAX must panic");
    // The same shapes with strides that fit are fine.
    let a = vec![1.0_f64; m * k];
    let b = vec![1.0_f64; k * n];
    let mut c = vec![0.0_f64; m * n];
    f64::gemm(m, k, n, &a, (k, 1), &b, (n, 1), 0.0, &mut c, n);
    assert!(c.iter().all(|&v| v == k as f64));
}
