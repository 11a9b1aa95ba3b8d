//! The matrix product's VJP in every layout (plain, transposed operands, matrix-vector,
//! vector-matrix, batched with broadcasting) against central finite differences, at first and
//! second order; and its JVP (the forward column, `forward_support`) against central
//! differences and against the VJP, with order two in every nesting (forward over reverse,
//! reverse over forward, forward over forward) of the product and of its square.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function};
use perturb::tensor::{ops::MatMul, Array, Tensor, TensorTape, TensorVar};
use perturb::Error;

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

fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// `<u, f(a, b)>` for the product with the given flags, written once for any array type.
fn objective<A: Array>(op: MatMul, a: &A, b: &A, u: &A) -> A {
    A::apply(&op, &[a, b]).unwrap().mul(u).sum_all()
}

/// Every layout: the product's flags and the two operands' shapes.
fn cases() -> Vec<(MatMul, Vec<usize>, Vec<usize>)> {
    let plain = MatMul::default();
    let flags = |transpose_a, transpose_b| MatMul {
        transpose_a,
        transpose_b,
    };
    vec![
        (plain, vec![3, 4], vec![4, 2]),
        (flags(true, false), vec![4, 3], vec![4, 2]),
        (flags(false, true), vec![3, 4], vec![2, 4]),
        (flags(true, true), vec![4, 3], vec![2, 4]),
        (plain, vec![3, 4], vec![4]),
        (plain, vec![4], vec![4, 2]),
        (plain, vec![2, 3, 4], vec![4, 2]),
        (plain, vec![2, 1, 3, 4], vec![3, 4, 2]),
    ]
}

#[test]
fn first_and_second_order_match_finite_differences_in_every_layout() {
    for (seed, (op, sa, sb)) in cases().into_iter().enumerate() {
        let seed = seed as u64 * 10;
        let (a0, b0) = (random(&sa, seed), random(&sb, seed + 1));
        let out = Tensor::apply(&op, &[&a0, &b0]).unwrap();
        let u = random(out.shape(), seed + 2);
        let (va, vb) = (random(&sa, seed + 3), random(&sb, seed + 4));

        // First order: <grad, v> against a central difference along v.
        let tape = TensorTape::new();
        let (a, b) = (tape.var(a0.clone()), tape.var(b0.clone()));
        let y = objective(op, &a, &b, &tape.constant(u.clone()));
        let g = tape.gradient(&y, &[&a, &b]).unwrap();
        let analytic = dot(&g[0], &va) + dot(&g[1], &vb);
        let h = 1e-6;
        let at = |t: f64| {
            objective(op, &a0.add(&va.scale(t)), &b0.add(&vb.scale(t)), &u)
                .item()
                .unwrap()
        };
        let fd = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (analytic - fd).abs() < 1e-7,
            "{op:?} {sa:?} {sb:?}: {analytic} vs {fd}"
        );

        // Second order: the directional derivative of <grad, v> along v, by nesting tapes,
        // against a central difference of the first-order VJP.
        let inner = TensorTape::new();
        let (ai, bi) = (inner.var(a0.clone()), inner.var(b0.clone()));
        let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
        let (ao, bo) = (outer.var(ai.clone()), outer.var(bi.clone()));
        // Square the product so the second derivative is not zero.
        let uo = outer.constant(inner.constant(u.clone()));
        let prod = TensorVar::apply(&op, &[&ao, &bo]).unwrap();
        let y2 = prod.square().mul(&uo).sum_all();
        let g2 = outer.gradient(&y2, &[&ao, &bo]).unwrap();
        let dir = g2[0]
            .mul(&inner.constant(va.clone()))
            .sum_all()
            .add(&g2[1].mul(&inner.constant(vb.clone())).sum_all());
        let hv = inner.gradient(&dir, &[&ai, &bi]).unwrap();
        let second = dot(&hv[0], &va) + dot(&hv[1], &vb);
        let grad_dot_v = |t: f64| {
            let tape = TensorTape::new();
            let a = tape.var(a0.add(&va.scale(t)));
            let b = tape.var(b0.add(&vb.scale(t)));
            let p = TensorVar::apply(&op, &[&a, &b]).unwrap();
            let y = p.square().mul(&tape.constant(u.clone())).sum_all();
            let g = tape.gradient(&y, &[&a, &b]).unwrap();
            dot(&g[0], &va) + dot(&g[1], &vb)
        };
        let fd2 = (grad_dot_v(h) - grad_dot_v(-h)) / (2.0 * h);
        assert!(
            (second - fd2).abs() < 1e-6 * fd2.abs().max(1.0),
            "{op:?} {sa:?} {sb:?}: {second} vs {fd2}"
        );
    }
}

/// The product `op(a) @ op(b)`, or its element-wise square, for the forward-mode checks.
struct Product {
    op: MatMul,
    squared: bool,
}

impl Function for Product {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = A::apply(&self.op, xs)?;
        Ok(if self.squared { y.square() } else { y })
    }
}

#[test]
fn forward_mode_matches_finite_differences_and_reverse_in_every_layout() {
    for (seed, (op, sa, sb)) in cases().into_iter().enumerate() {
        let seed = 1000 + seed as u64 * 10;
        let xs = [random(&sa, seed), random(&sb, seed + 1)];
        let out = Tensor::apply(&op, &[&xs[0], &xs[1]]).unwrap();
        let u = random(out.shape(), seed + 2);
        let vs = [random(&sa, seed + 3), random(&sb, seed + 4)];
        let zs = [random(&sa, seed + 5), random(&sb, seed + 6)];
        for squared in [false, true] {
            let what = format!("{op:?} {sa:?} {sb:?} squared {squared}");
            let f = Product { op, squared };
            check_first_order(&what, &f, &xs, &[true, true], &vs, &u, 1e-8);
            // The product is bilinear: its second derivative is the cross term
            // op(v_a) op(z_b) + op(z_a) op(v_b), which every nesting must find.
            check_second_order(&what, &f, &xs, &[true, true], &vs, &zs, &u, 1e-6);
        }
    }
}

#[test]
fn transposed_operands_give_the_same_product_as_an_explicit_transpose() {
    let a = random(&[4, 3], 1);
    let b = random(&[2, 4], 2);
    let flagged = Tensor::apply(
        &MatMul {
            transpose_a: true,
            transpose_b: true,
        },
        &[&a, &b],
    )
    .unwrap();
    let explicit = a.transpose().matmul(&b.transpose());
    assert!(flagged.all_close(&explicit, 1e-15));
    // Flags on a non-matrix operand are an error, not a panic.
    let v = random(&[4], 3);
    assert!(Tensor::apply(
        &MatMul {
            transpose_a: true,
            transpose_b: false
        },
        &[&v, &b]
    )
    .is_err());
}

/// `Element::gemm` against a plain triple loop for every path it takes (a vector operand, a
/// short inner dimension, a small output, matrixmultiply's kernel), operands plain or
/// transposed (read through strides), `beta` zero or not, rows of `c` padded.
#[test]
fn every_gemm_path_matches_a_triple_loop() {
    use perturb::tensor::Element;
    let dims = [0, 1, 2, 3, 4, 5, 8, 9, 17];
    let mut seed = 100;
    for &m in &dims {
        for &k in &dims {
            for &n in &dims {
                for (ta, tb, beta) in [
                    (false, false, 0.0),
                    (true, false, 0.5),
                    (false, true, 0.0),
                    (true, true, -1.5),
                ] {
                    seed += 3;
                    let a = values(m * k, seed);
                    let b = values(k * n, seed + 1);
                    let ldc = n + 2;
                    let c0 = values(m * ldc, seed + 2);
                    // A transposed operand is stored as its transpose, read with swapped strides.
                    let a_strides = if ta { (1, m) } else { (k, 1) };
                    let b_strides = if tb { (1, k) } else { (n, 1) };
                    let mut c = c0.clone();
                    f64::gemm(m, k, n, &a, a_strides, &b, b_strides, beta, &mut c, ldc);
                    for i in 0..m {
                        for j in 0..n {
                            let mut want = beta * c0[i * ldc + j];
                            for p in 0..k {
                                want += a[i * a_strides.0 + p * a_strides.1]
                                    * b[p * b_strides.0 + j * b_strides.1];
                            }
                            let got = c[i * ldc + j];
                            assert!(
                                (got - want).abs() <= 1e-13 * (1.0 + want.abs()),
                                "m {m} k {k} n {n} ta {ta} tb {tb} beta {beta}: c[{i}][{j}] = {got}, expected {want}"
                            );
                        }
                        // The padding between rows is left alone.
                        for j in n..ldc {
                            assert_eq!(c[i * ldc + j], c0[i * ldc + j], "padding of row {i}");
                        }
                    }
                }
            }
        }
    }
}

/// The error names the inner dimensions that differ (reliability report U9): "shapes [2, 3]
/// and [2, 3] do not match" did not say which lengths.
#[test]
fn a_mismatch_names_the_inner_dimensions() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let message = |op: MatMul, x: &Tensor<f64>, y: &Tensor<f64>| {
        use perturb::tensor::Op;
        op.eval(&[x, y]).unwrap_err().to_string()
    };
    let plain = MatMul::default();
    assert_eq!(
        a.try_matmul(&a).unwrap_err().to_string(),
        "matmul: the inner dimensions differ: [2, 3] has 3 columns, [2, 3] has 2 rows"
    );
    let v = Tensor::<f64>::zeros(&[2]);
    assert_eq!(
        message(plain, &a, &v),
        "matmul: the inner dimensions differ: [2, 3] has 3 columns, [2] has 2 elements"
    );
    let batched = Tensor::<f64>::zeros(&[4, 2, 3]);
    assert_eq!(
        message(plain, &batched, &batched),
        "matmul: the inner dimensions differ: [4, 2, 3] has 3 columns, [4, 2, 3] has 2 rows"
    );
    let at = MatMul {
        transpose_a: true,
        transpose_b: false,
    };
    assert_eq!(
        message(at, &a, &Tensor::zeros(&[3, 2])),
        "matmul: the inner dimensions differ: [2, 3] transposed has 2 columns, [3, 2] has 3 rows"
    );
    // Batch axes that do not broadcast are still a shape mismatch.
    let err = batched.try_matmul(&Tensor::zeros(&[5, 3, 2])).unwrap_err();
    assert!(
        matches!(err, Error::ShapeMismatch { op: "matmul", .. }),
        "{err}"
    );
}
