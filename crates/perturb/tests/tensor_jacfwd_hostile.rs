//! Hostile checks of forward-mode Jacobians (issue 19): every operation family through
//! `jacfwd`, once on the identity itself (a basis stack) and once after `A x` (a stack along
//! the last axis), against `jacrev` and central finite differences along random directions.
//! Also: several leaves of different shapes (a scalar among them), 0-d inputs, a function
//! returning its input, the input used twice, jacfwd of jacfwd against the Hessian.

mod forward_support;
use forward_support::SplitMix;

use perturb::tensor::conv::{self, Conv2dOptions, Pool2d};
use perturb::tensor::{hessian, jacfwd, jacrev, linalg, ops, Array, Tensor};

fn eye(n: usize) -> Tensor<f64> {
    linalg::try_eye(n).unwrap()
}
use perturb::Error;

/// Deterministic pseudo-random values in [-1, 1) (the tables' splitmix64).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed);
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

fn t(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// The operation families checked; each maps 12 elements to some output.
const NAMES: [&str; 30] = [
    "identity",
    "x used twice",
    "solve",
    "inv",
    "slogdet",
    "det",
    "cholesky",
    "eigh",
    "qr",
    "conv2d",
    "conv2d grouped, strided, padded",
    "max_pool2d",
    "max_pool2d padded",
    "avg_pool2d",
    "bias_add",
    "cumsum",
    "einsum",
    "gather",
    "index_select and index_add",
    "scatter_add",
    "where",
    "maximum and clamp",
    "max and min over axes",
    "size-1 axes",
    "broadcast against the stack",
    "concat and stack",
    "scalar output",
    "triangular_solve and cholesky_solve",
    "norms",
    "diag, trace, outer",
];

fn f<A: Array<Elem = f64>>(name: &str, x: &A) -> Result<A, Error> {
    let c = |shape: &[usize], seed: u64| x.constant_like(&t(shape, seed));
    let m = x.try_narrow(0, 0, 9)?.try_reshape(&[3, 3])?;
    let well = m.try_add(&x.constant_like(&eye(3).scale(3.0)))?;
    let spd = well
        .try_matmul(&well.transpose())?
        .try_add(&x.constant_like(&eye(3)))?;
    Ok(match name {
        "identity" => x.clone(),
        "x used twice" => x.try_mul(x)?.try_add(x)?,
        "solve" => linalg::try_solve(&well, &x.try_narrow(0, 9, 3)?)?,
        "inv" => linalg::try_inv(&well)?,
        "slogdet" => linalg::try_slogdet(&well)?.1,
        "det" => linalg::try_det(&well)?,
        "cholesky" => linalg::try_cholesky(&spd)?,
        "eigh" => {
            let (w, v) = linalg::try_eigh(&spd)?;
            // The squares of the eigenvectors' elements do not depend on their signs.
            w.try_unsqueeze(0)?.try_add(&v.square())?
        }
        "qr" => {
            let (q, r) = linalg::try_qr(&well)?;
            q.try_add(&r)?
        }
        "conv2d" => conv::try_conv2d(
            &x.try_reshape(&[1, 1, 3, 4])?,
            &c(&[2, 1, 2, 2], 7),
            Conv2dOptions::default(),
        )?,
        "conv2d grouped, strided, padded" => conv::try_conv2d(
            &x.try_reshape(&[1, 2, 2, 3])?,
            &c(&[4, 1, 2, 2], 8),
            Conv2dOptions::default().stride(2).padding(1).groups(2),
        )?,
        "max_pool2d" => conv::try_max_pool2d(&x.try_reshape(&[2, 1, 2, 3])?, Pool2d::new([2, 2]))?,
        "max_pool2d padded" => conv::try_max_pool2d(
            &x.try_reshape(&[1, 2, 2, 3])?,
            Pool2d::new([2, 2]).stride([1, 2]).padding([1, 1]),
        )?,
        "avg_pool2d" => conv::try_avg_pool2d(
            &x.try_reshape(&[1, 1, 3, 4])?,
            Pool2d::new([2, 2]).stride([1, 1]).padding([1, 0]),
        )?,
        "bias_add" => {
            let y = x.try_reshape(&[1, 3, 2, 2])?.sin();
            conv::try_bias_add(&y, &x.try_narrow(0, 2, 3)?)?
        }
        "cumsum" => x.try_reshape(&[3, 4])?.try_cumsum(1)?.sin(),
        "einsum" => {
            let a = x.try_reshape(&[3, 4])?;
            linalg::try_einsum("ij,kj->ik", &[&a, &a.tanh()])?
        }
        "gather" => x
            .try_reshape(&[3, 4])?
            .try_gather(1, vec![3, 0, 0, 2, 1, 1], &[3, 2])?
            .exp(),
        "index_select and index_add" => x
            .try_reshape(&[3, 4])?
            .try_index_select(1, vec![2, 2, 0])?
            .square()
            .try_index_add(1, vec![1, 1, 3], 5)?,
        "scatter_add" => x.try_reshape(&[3, 4])?.cos().try_scatter_add(
            0,
            vec![1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0],
            &[2, 4],
        )?,
        "where" => {
            let mask = x
                .constant_like(&t(&[12], 9))
                .try_greater(&x.constant_like(&Tensor::scalar(0.0)))?;
            mask.try_select(&x.exp(), &x.square())?
        }
        "maximum and clamp" => x
            .try_maximum(&c(&[12], 10))?
            .try_add(&x.try_clamp(-0.3, 0.4)?)?
            .try_mul(x)?,
        "max and min over axes" => {
            let a = x.try_reshape(&[2, 3, 2])?;
            a.try_max_axes(&[1], false)?
                .try_add(
                    &a.try_min_axes(&[0, 2], true)?
                        .try_reshape(&[1, 3, 1])?
                        .try_sum_axes(&[1], false)?,
                )?
                .try_mul(&a.try_max_all()?)?
        }
        "size-1 axes" => {
            let a = x.try_reshape(&[1, 12, 1])?.tanh();
            a.try_sum_axes(&[0, 2], true)?
                .try_squeeze(2)?
                .try_softmax(1)?
                .try_add(&a.try_mean_axes(&[2], false)?)?
        }
        "broadcast against the stack" => {
            let col = x.try_reshape(&[12, 1])?;
            let row = x.sin().try_reshape(&[1, 12])?;
            col.try_mul(&row)?
                .try_add(&x.sum_all())?
                .try_add(&c(&[12, 1], 11))?
        }
        "concat and stack" => {
            let a = x.try_narrow(0, 0, 5)?.exp();
            let b = x.try_narrow(0, 5, 7)?;
            let both = A::try_concat(&[&a, &x.square(), &b], 0)?;
            A::try_stack(&[&both, &both.tanh()], 1)?
        }
        "scalar output" => x.square().sum_all().sqrt(),
        "triangular_solve and cholesky_solve" => {
            let l = linalg::try_cholesky(&spd)?;
            let b = x.try_narrow(0, 9, 3)?.try_reshape(&[3, 1])?;
            linalg::try_cholesky_solve(&l, &b)?.try_add(&linalg::try_triangular_solve(
                &l,
                &b,
                ops::TriangularSolve {
                    lower: true,
                    transpose: true,
                    unit_diagonal: false,
                },
            )?)?
        }
        "norms" => linalg::try_matrix_norm(&well)?.try_add(
            &linalg::try_vector_norm(&x.try_reshape(&[3, 4])?)?.try_sum_axes(&[0], false)?,
        )?,
        "diag, trace, outer" => {
            let d = linalg::try_diagonal(&well)?;
            linalg::try_outer(&d, &x.try_narrow(0, 9, 3)?)?
                .try_add(&linalg::try_trace(&spd)?)?
                .try_add(&linalg::try_diag(&d.exp())?)?
        }
        other => panic!("unknown function {other}"),
    })
}

/// `f`, after `A x` when `pre` (so that jacfwd's tangents arrive as a trailing stack).
fn g<A: Array<Elem = f64>>(name: &str, pre: bool, x: &A) -> Result<A, Error> {
    if pre {
        let a = x.constant_like(&t(&[12, 12], 3).scale(0.3).add(&eye(12)));
        f(name, &a.try_matmul(x)?)
    } else {
        f(name, x)
    }
}

fn central(name: &str, pre: bool, x: &Tensor<f64>, v: &Tensor<f64>, h: f64) -> Tensor<f64> {
    let plus = g(name, pre, &x.add(&v.scale(h))).unwrap();
    let minus = g(name, pre, &x.add(&v.scale(-h))).unwrap();
    plus.sub(&minus).scale(0.5 / h)
}

#[test]
fn jacfwd_equals_jacrev_and_central_differences_for_every_family() {
    let x = t(&[12], 20).scale(0.8);
    let mut failures = Vec::new();
    for name in NAMES {
        for pre in [false, true] {
            let label = format!("{name} (after A x: {pre})");
            let fwd = match jacfwd(|x| g(name, pre, x), &x) {
                Ok(j) => j,
                Err(e) => {
                    failures.push(format!("{label}: jacfwd failed: {e}"));
                    continue;
                }
            };
            let rev = jacrev(|x| g(name, pre, x), &x).unwrap();
            let y = g(name, pre, &x).unwrap();
            let shape: Vec<usize> = y.shape().iter().chain(x.shape()).copied().collect();
            if fwd.shape() != &shape[..] {
                failures.push(format!("{label}: jacfwd's shape {:?}", fwd.shape()));
                continue;
            }
            if !fwd.all_close(&rev, 1e-10) {
                failures.push(format!(
                    "{label}: jacfwd {:?}\n jacrev {:?}",
                    fwd.to_vec(),
                    rev.to_vec()
                ));
            }
            let out = y.len();
            for seed in 0..2 {
                let v = t(&[12], 200 + seed);
                let jv = fwd.reshape(&[out, 12]).unwrap().matmul(&v);
                let fd = central(name, pre, &x, &v, 1e-6).reshape(&[out]).unwrap();
                if !jv.all_close(&fd, 1e-6) {
                    failures.push(format!(
                        "{label}: J v {:?}\n central {:?}",
                        jv.to_vec(),
                        fd.to_vec()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Central differences of a function of a tree of three leaves along one direction per leaf.
fn tree_f<A: Array<Elem = f64>>((s, v, m): &(A, A, A)) -> Result<A, Error> {
    // s: [], v: [3], m: [2, 2]: out [2, 3].
    let outer = m.try_sum_axes(&[1], true)?.try_mul(&v.try_unsqueeze(0)?)?; // [2, 3]
    outer
        .try_mul(s)?
        .sin()
        .try_add(&v.try_matmul(&v.constant_like(&t(&[3, 3], 50)))?)?
        .try_add(&s.square())
}

#[test]
// The closures name a lifetime the function paths cannot (a higher-ranked bound).
#[allow(clippy::redundant_closure)]
fn trees_of_leaves_of_different_shapes_a_scalar_among_them() {
    let x = (Tensor::scalar(0.7), t(&[3], 51), t(&[2, 2], 52));
    let (fs, fv, fm) = jacfwd(|x| tree_f(x), &x).unwrap();
    let (rs, rv, rm) = jacrev(|x| tree_f(x), &x).unwrap();
    assert_eq!(
        (fs.shape(), fv.shape(), fm.shape()),
        (&[2, 3][..], &[2, 3, 3][..], &[2, 3, 2, 2][..])
    );
    assert!(fs.all_close(&rs, 1e-13) && fv.all_close(&rv, 1e-13) && fm.all_close(&rm, 1e-13));
    // J (ds, dv, dm) against central differences.
    let d = (Tensor::scalar(-0.4), t(&[3], 53), t(&[2, 2], 54));
    let h = 1e-6;
    let at = |k: f64| {
        tree_f(&(
            x.0.add(&d.0.scale(k)),
            x.1.add(&d.1.scale(k)),
            x.2.add(&d.2.scale(k)),
        ))
        .unwrap()
    };
    let fd = at(h).sub(&at(-h)).scale(0.5 / h);
    let jd = fs.scale(d.0.to_vec()[0]).add(&fv.matmul(&d.1)).add(
        &fm.reshape(&[2, 3, 4])
            .unwrap()
            .matmul(&d.2.reshape(&[4]).unwrap()),
    );
    assert!(
        jd.all_close(&fd, 1e-7),
        "{:?} vs {:?}",
        jd.to_vec(),
        fd.to_vec()
    );
}

#[test]
fn a_function_returning_one_leaf_of_a_tree_or_its_input() {
    let x = (t(&[2], 55), t(&[3], 56));
    let (ja, jb) = jacfwd(|(_, b)| Ok(b.clone()), &x).unwrap();
    assert_eq!(ja.to_vec(), vec![0.0; 6]);
    assert_eq!(jb.to_vec(), eye(3).to_vec());
    // One leaf: the identity itself, and a scalar input.
    let j = jacfwd(|x| Ok(x.clone()), &t(&[2, 3], 57)).unwrap();
    assert_eq!(j.reshape(&[6, 6]).unwrap().to_vec(), eye(6).to_vec());
    let j = jacfwd(|x| Ok(x.clone()), &Tensor::scalar(2.0)).unwrap();
    assert_eq!((j.shape(), j.to_vec()), (&[][..], vec![1.0]));
    // A constant output: zeros.
    let j = jacfwd(|x| Ok(x.constant_like(&t(&[2], 58))), &t(&[3], 59)).unwrap();
    assert_eq!((j.shape(), j.to_vec()), (&[2, 3][..], vec![0.0; 6]));
}

#[test]
fn scalar_inputs_broadcast_against_vectors() {
    // f(s) = [sin(s) c, s^2]: 0-d input, [4] output.
    let c = t(&[3], 60);
    let f = |s: &_| -> Result<_, Error> {
        let s: &perturb::tensor::DualTensor<perturb::tensor::Batched<Tensor<f64>>> = s;
        A3::try_concat(
            &[
                &s.sin().try_mul(&s.constant_like(&c))?,
                &s.square().try_unsqueeze(0)?,
            ],
            0,
        )
    };
    type A3 = perturb::tensor::DualTensor<perturb::tensor::Batched<Tensor<f64>>>;
    let s = Tensor::scalar(0.3_f64);
    let j = jacfwd(f, &s).unwrap();
    let mut want: Vec<f64> = c.to_vec().iter().map(|ci| 0.3_f64.cos() * ci).collect();
    want.push(0.6);
    assert_eq!(j.shape(), &[4]);
    assert!(j.all_close(&Tensor::vector(&want), 1e-15));
}

fn scalar_loss<A: Array<Elem = f64>>(x: &A) -> Result<A, Error> {
    let m = x.try_reshape(&[2, 3])?;
    let p = m.try_softmax(1)?;
    let a = x.constant_like(&t(&[3, 2], 61));
    p.try_matmul(&a)?
        .tanh()
        .sum_all()
        .try_add(&m.try_logsumexp(&[0], false)?.square().sum_all())
}

#[test]
#[allow(clippy::redundant_closure)] // as above
fn jacfwd_of_jacfwd_and_of_jacrev_equal_the_hessian() {
    let x = t(&[6], 62);
    let h = hessian(|x| scalar_loss(x), &x).unwrap();
    let ff = jacfwd(|x| jacfwd(|x| scalar_loss(x), x), &x).unwrap();
    let fr = jacfwd(|x| jacrev(|x| scalar_loss(x), x), &x).unwrap();
    let rf = jacrev(|x| jacfwd(|x| scalar_loss(x), x), &x).unwrap();
    assert_eq!(ff.shape(), &[6, 6]);
    assert!(
        ff.all_close(&h, 1e-12),
        "{:?}\n{:?}",
        ff.to_vec(),
        h.to_vec()
    );
    assert!(fr.all_close(&h, 1e-12) && rf.all_close(&h, 1e-12));
    // Against second central differences of the value.
    let v = |x: &Tensor<f64>| scalar_loss(x).unwrap().to_vec()[0];
    let e = |i: usize| {
        let mut d = vec![0.0; 6];
        d[i] = 1e-4;
        Tensor::vector(&d)
    };
    for i in 0..6 {
        for j in 0..6 {
            let (ei, ej) = (e(i), e(j));
            let fd = (v(&x.add(&ei).add(&ej)) - v(&x.add(&ei).sub(&ej)) - v(&x.sub(&ei).add(&ej))
                + v(&x.sub(&ei).sub(&ej)))
                / 4e-8;
            assert!((ff.get(&[i, j]).unwrap() - fd).abs() < 1e-5, "H[{i}][{j}]");
        }
    }
}

#[test]
fn vmap_of_jacfwd_equals_jacfwd_of_each_member() {
    use perturb::tensor::Batched;
    let xs = t(&[3, 12], 63).scale(0.8);
    for name in [
        "solve",
        "max_pool2d padded",
        "conv2d",
        "cumsum",
        "broadcast against the stack",
        "identity",
    ] {
        for pre in [false, true] {
            let stacked = Batched::stack(xs.clone());
            let j = match jacfwd(|x| g(name, pre, x), &stacked) {
                // A Jacobian that does not depend on x (a linear f) is one
                // value for all members.
                Ok(j) => j.into_stack_of(3).unwrap(),
                Err(e) => panic!("{name}: {e}"),
            };
            for b in 0..3 {
                let x = xs.narrow(0, b, 1).reshape(&[12]).unwrap();
                let one = jacfwd(|x| g(name, pre, x), &x).unwrap();
                let got = j.narrow(0, b, 1).reshape(one.shape()).unwrap();
                assert!(got.all_close(&one, 1e-12), "{name} ({pre}), member {b}");
            }
        }
    }
}

fn ties<A: Array<Elem = f64>>(x: &A, pre: bool) -> Result<A, Error> {
    // Values with ties: x itself has repeated entries; A x with A a 0/1 selection repeats too.
    let z = if pre {
        let sel = t(&[8, 6], 70).map(|v| if v > 0.0 { 1.0 } else { 0.0 });
        x.constant_like(&sel).try_matmul(x)?
    } else {
        A::try_concat(&[x, &x.try_narrow(0, 0, 2)?], 0)?
    };
    let m = z.try_reshape(&[2, 4])?;
    m.try_max_axes(&[1], true)?
        .try_add(&m.try_min_axes(&[0], false)?)?
        .try_add(&m.try_max_all()?)?
        .try_add(&m.try_maximum(&m.try_narrow(1, 0, 1)?)?)?
        .try_add(&z.try_min_all()?)
}

#[test]
fn ties_in_max_and_min_split_the_derivative_alike_in_both_modes() {
    // Repeated values: [1, 3, 3, -2, 1, 3] and so ties in every reduction above.
    let x = Tensor::vector(&[1.0, 3.0, 3.0, -2.0, 1.0, 3.0]);
    for pre in [false, true] {
        let fwd = jacfwd(|x| ties(x, pre), &x).unwrap();
        let rev = jacrev(|x| ties(x, pre), &x).unwrap();
        assert!(
            fwd.all_close(&rev, 1e-14),
            "pre {pre}: {:?}\n{:?}",
            fwd.to_vec(),
            rev.to_vec()
        );
        // The derivative along a direction that keeps the ties (all ones: every element moves
        // alike) is the finite difference.
        let ones = Tensor::ones(&[6]);
        let h = 1e-6;
        let fd = ties(&x.add(&ones.scale(h)), pre)
            .unwrap()
            .sub(&ties(&x.add(&ones.scale(-h)), pre).unwrap())
            .scale(0.5 / h);
        let out = fd.len();
        let jv = fwd.reshape(&[out, 6]).unwrap().matmul(&ones);
        assert!(
            jv.all_close(&fd.reshape(&[out]).unwrap(), 1e-8),
            "pre {pre}"
        );
    }
}

#[test]
fn stacks_of_one_and_of_none() {
    // One input element: the stack's axis has length 1, beside axes of length 1.
    for name in [
        "size-1 axes",
        "broadcast against the stack",
        "scalar output",
        "x used twice",
    ] {
        let x = Tensor::vector(&[0.4]);
        let wide = |x: &_| -> Result<_, Error> {
            let x: &perturb::tensor::DualTensor<perturb::tensor::Batched<Tensor<f64>>> = x;
            let a = x.constant_like(&t(&[12, 1], 71));
            f(name, &a.try_matmul(x)?)
        };
        let fwd = jacfwd(wide, &x).unwrap();
        let rev = jacrev(
            |x| f(name, &x.constant_like(&t(&[12, 1], 71)).try_matmul(x)?),
            &x,
        )
        .unwrap();
        assert!(fwd.all_close(&rev, 1e-13), "{name}");
        let y = |s: f64| f(name, &t(&[12, 1], 71).matmul(&Tensor::vector(&[s]))).unwrap();
        let fd = y(0.4 + 1e-6).sub(&y(0.4 - 1e-6)).scale(0.5e6);
        assert!(
            fwd.reshape(fd.shape()).unwrap().all_close(&fd, 1e-7),
            "{name}"
        );
    }
    // No input elements: an empty Jacobian of the right shape.
    let x = Tensor::<f64>::zeros(&[0]);
    let a = t(&[3, 0], 72);
    let fwd = jacfwd(|x| Ok(x.constant_like(&a).try_matmul(x)?.tanh()), &x).unwrap();
    let rev = jacrev(|x| Ok(x.constant_like(&a).try_matmul(x)?.tanh()), &x).unwrap();
    assert_eq!((fwd.shape(), rev.shape()), (&[3, 0][..], &[3, 0][..]));
    let fwd = jacfwd(
        |x| x.square().try_reshape(&[0, 2]),
        &Tensor::<f64>::zeros(&[2, 0]),
    )
    .unwrap();
    assert_eq!(fwd.shape(), &[0, 2, 2, 0]);
}

/// `m x` (x on the right, `m`'s flag `flag`) or `x m` (on the left), x scaled by 2 if `scaled`.
fn product<A: Array<Elem = f64>>(
    x: &A,
    m: &Tensor<f64>,
    x_left: bool,
    flag: bool,
    scaled: bool,
) -> Result<A, Error> {
    use perturb::tensor::ops::MatMul;
    let x = if scaled { x.scale(2.0) } else { x.clone() };
    let m = x.constant_like(m);
    if x_left {
        A::apply(
            &MatMul {
                transpose_a: false,
                transpose_b: flag,
            },
            &[&x, &m],
        )
    } else {
        A::apply(
            &MatMul {
                transpose_a: flag,
                transpose_b: false,
            },
            &[&m, &x],
        )
    }
}

#[test]
fn products_of_the_identity_itself_with_every_transpose_flag() {
    // x as a vector, a column or a row, on either side of a matrix with each flag; the
    // identity itself (unit) and scaled.
    let mut checked = 0;
    for (xshape, left_of_x, right_of_x) in [
        (vec![5], [4, 5], [5, 3]),
        (vec![5, 1], [4, 5], [1, 3]),
        (vec![1, 5], [4, 1], [5, 3]),
    ] {
        let x = t(&xshape, 97);
        for (x_left, mshape) in [(false, left_of_x), (true, right_of_x)] {
            for (flag, scaled) in [(false, false), (true, false), (false, true), (true, true)] {
                let m = t(&if flag { [mshape[1], mshape[0]] } else { mshape }, 95);
                // A transpose flag needs two matrices: a vector beside one is an error.
                let Ok(y) = product(&x, &m, x_left, flag, scaled) else {
                    assert_eq!(xshape.len(), 1);
                    continue;
                };
                let fwd = jacfwd(|x| product(x, &m, x_left, flag, scaled), &x).unwrap();
                let rev = jacrev(|x| product(x, &m, x_left, flag, scaled), &x).unwrap();
                let lab = format!("{xshape:?} left {x_left} flag {flag} scaled {scaled}");
                assert!(fwd.all_close(&rev, 1e-14), "{lab}");
                let v = t(&xshape, 98);
                let moved = product(&x.add(&v.scale(1e-6)), &m, x_left, flag, scaled).unwrap();
                let fd = moved.sub(&y).scale(1e6).reshape(&[y.len()]).unwrap();
                let jv = fwd
                    .reshape(&[y.len(), 5])
                    .unwrap()
                    .matmul(&v.reshape(&[5]).unwrap());
                assert!(jv.all_close(&fd, 1e-6), "{lab}");
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        3 * 2 * 4 - 4,
        "every case but a vector beside a transposed matrix"
    );
}

fn softmax_of_ax<A: Array>(x: &A, a: &Tensor<A::Elem>) -> Result<A, Error> {
    x.constant_like(a).try_matmul(x)?.tanh().try_softmax(0)
}

#[test]
fn f32_jacobians_agree_in_both_modes_and_with_f64() {
    let a = t(&[7, 4], 99);
    let x = t(&[4], 100);
    let a32 = Tensor::from_vec(a.to_vec().iter().map(|&v| v as f32).collect(), &[7, 4]).unwrap();
    let x32 = Tensor::from_vec(x.to_vec().iter().map(|&v| v as f32).collect(), &[4]).unwrap();
    let fwd = jacfwd(|x| softmax_of_ax(x, &a32), &x32).unwrap();
    let rev = jacrev(|x| softmax_of_ax(x, &a32), &x32).unwrap();
    let exact = jacfwd(|x| softmax_of_ax(x, &a), &x).unwrap();
    assert!(fwd.all_close(&rev, 1e-6));
    for (f, e) in fwd.to_vec().iter().zip(exact.to_vec()) {
        assert!((f64::from(*f) - e).abs() < 1e-6, "{f} vs {e}");
    }
}
