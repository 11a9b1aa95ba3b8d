//! Forward-mode Jacobians whose tangents are kept as a stack along the last axis (issue 19,
//! item 5): `A x` of the identity is `A` itself, a stack of `A`'s columns, and the operations
//! with a trailing batching rule (element-wise ones, reductions and softmax over axes, reshape,
//! permute, narrow, sum_to, broadcast_to, the matrix product on either side) keep it there;
//! the others move it to the front. Every function here goes through such rules, mixed with
//! the fallback, and its Jacobian by jacfwd must equal jacrev's, central finite differences
//! along random directions, and (for the first) a closed form.

mod forward_support;
use forward_support::SplitMix;

use perturb::tensor::{hessian, jacfwd, jacrev, ops, Array, Tensor};
use perturb::Error;

/// Deterministic pseudo-random values in [-1, 1) (the tables' splitmix64).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = SplitMix(seed);
    (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

fn t(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// The constants of the functions below: A is 12 x 5, so A x has 12 elements (a 3 x 4
/// matrix reshaped), B is 4 x 12, C is 4 x 3, u has 12 elements.
struct Consts {
    a: Tensor<f64>,
    b: Tensor<f64>,
    c: Tensor<f64>,
    u: Tensor<f64>,
}

fn consts() -> Consts {
    Consts {
        a: t(&[12, 5], 1),
        b: t(&[4, 12], 2),
        c: t(&[4, 3], 3),
        u: t(&[12], 4),
    }
}

/// The functions of x (5 elements) checked, by name; each starts from `A x`, a trailing
/// stack under jacfwd.
const NAMES: [&str; 14] = [
    "tanh(Ax)",
    "softmax(Ax)",
    "B tanh(Ax)",
    "tanh(Ax)^T B^T",
    "u . tanh(Ax)",
    "C reshape(Ax)",
    "reductions over axes of reshape(Ax)",
    "permute, narrow, sum_to, broadcast_to",
    "two trailing stacks and a scalar",
    "cumsum (no trailing rule) mixed with a trailing stack",
    "log_softmax and logsumexp over axes",
    "transposed products",
    "A x of a column, a row times B",
    "exp(x) A^T + A exp(x) (scaled bases, then products)",
];

fn f<A: Array<Elem = f64>>(name: &str, k: &Consts, x: &A) -> Result<A, Error> {
    let a = x.constant_like(&k.a);
    let b = x.constant_like(&k.b);
    let c = x.constant_like(&k.c);
    let u = x.constant_like(&k.u);
    let ax = a.try_matmul(x)?;
    Ok(match name {
        "tanh(Ax)" => ax.tanh(),
        "softmax(Ax)" => ax.try_softmax(0)?,
        "B tanh(Ax)" => b.try_matmul(&ax.tanh())?,
        "tanh(Ax)^T B^T" => ax.tanh().try_matmul(&b.transpose())?,
        "u . tanh(Ax)" => u.try_matmul(&ax.tanh())?,
        "C reshape(Ax)" => c.try_matmul(&ax.try_reshape(&[3, 4])?.sin())?,
        "reductions over axes of reshape(Ax)" => {
            let m = ax.try_reshape(&[3, 4])?;
            let s = m.try_sum_axes(&[1], false)?;
            let mean = m.square().try_mean_axes(&[0], true)?;
            let max = m.try_max_axes(&[1], true)?;
            let min = m.try_min_axes(&[0], false)?;
            let soft = m.try_softmax(1)?;
            soft.try_mul(&mean)?
                .try_add(&max)?
                .try_sum_axes(&[0], false)?
                .try_add(&min)?
                .try_add(&s.try_reshape(&[3, 1])?.try_sum_to(&[])?)?
        }
        "permute, narrow, sum_to, broadcast_to" => {
            let m = ax.try_reshape(&[3, 4])?.try_permute(&[1, 0])?; // [4, 3]
            let n = m.try_narrow(1, 1, 2)?.cos(); // [4, 2]
            let wide = n.try_reshape(&[4, 2, 1])?.try_broadcast_to(&[4, 2, 3])?;
            wide.try_mul(&m.try_unsqueeze(1)?)?.try_sum_to(&[2, 3])?
        }
        "two trailing stacks and a scalar" => {
            let first = ax.tanh();
            let second = ax.square().scale(0.5).add_scalar(1.0);
            first.try_mul(&second)?.try_div(&x.sum_all().exp())?
        }
        "cumsum (no trailing rule) mixed with a trailing stack" => {
            ax.try_cumsum(0)?.sin().try_mul(&ax.tanh())?
        }
        "log_softmax and logsumexp over axes" => {
            let m = ax.try_reshape(&[3, 4])?;
            m.try_log_softmax(0)?
                .try_add(&m.try_logsumexp(&[1], true)?)?
        }
        "transposed products" => {
            // A^T (B^T tanh(B A x))... with the transposes as flags of the product.
            let z = b.try_matmul(&ax)?.tanh(); // [4]
            let back = A::apply(
                &ops::MatMul {
                    transpose_a: true,
                    transpose_b: false,
                },
                &[&b, &z.try_reshape(&[4, 1])?],
            )?; // [12, 1]
            A::apply(
                &ops::MatMul {
                    transpose_a: true,
                    transpose_b: false,
                },
                &[&back, &a],
            )? // [1, 5]
        }
        "A x of a column, a row times B" => {
            let (ta, tb) = (
                ops::MatMul {
                    transpose_a: true,
                    transpose_b: false,
                },
                ops::MatMul {
                    transpose_a: false,
                    transpose_b: true,
                },
            );
            let (col, row) = (x.try_reshape(&[5, 1])?, x.try_reshape(&[1, 5])?);
            let column = a.try_matmul(&col)?; // [12, 1]
            let row_t = A::apply(&tb, &[&row, &a])?; // [1, 12]
            let column_t = A::apply(&ta, &[&a.transpose(), &col])?; // [12, 1]
            let row_plain = row.try_matmul(&a.transpose())?; // [1, 12]
            let products = column_t.try_mul(&row_plain.try_reshape(&[12, 1])?)?;
            column
                .tanh()
                .try_add(&row_t.try_reshape(&[12, 1])?.sin())?
                .try_add(&products.try_reshape(&[12, 1])?)?
        }
        "exp(x) A^T + A exp(x) (scaled bases, then products)" => {
            let e = x.exp().scale(2.0);
            e.try_matmul(&a.transpose())?.try_add(&a.try_matmul(&e)?)?
        }
        other => panic!("unknown function {other}"),
    })
}

/// Central differences of `f` at `x` along `v`, step `h`.
fn central(name: &str, k: &Consts, x: &Tensor<f64>, v: &Tensor<f64>, h: f64) -> Tensor<f64> {
    let plus = f(name, k, &x.add(&v.scale(h))).unwrap();
    let minus = f(name, k, &x.add(&v.scale(-h))).unwrap();
    plus.sub(&minus).scale(0.5 / h)
}

#[test]
fn jacfwd_equals_jacrev_and_central_differences_through_every_trailing_rule() {
    let k = consts();
    let x = t(&[5], 10).scale(0.5);
    for name in NAMES {
        let fwd = jacfwd(|x| f(name, &k, x), &x).unwrap();
        let rev = jacrev(|x| f(name, &k, x), &x).unwrap();
        let y = f(name, &k, &x).unwrap();
        let shape: Vec<usize> = y.shape().iter().chain(x.shape()).copied().collect();
        assert_eq!(fwd.shape(), &shape[..], "{name}: jacfwd's shape");
        assert!(
            fwd.all_close(&rev, 1e-13),
            "{name}: jacfwd {:?}\n jacrev {:?}",
            fwd.to_vec(),
            rev.to_vec()
        );
        let out = y.len();
        for seed in 0..3 {
            let v = t(&[5], 100 + seed);
            let jv = fwd.reshape(&[out, 5]).unwrap().matmul(&v);
            let fd = central(name, &k, &x, &v, 1e-5).reshape(&[out]).unwrap();
            assert!(
                jv.all_close(&fd, 1e-7),
                "{name}: J v {:?}\n central {:?}",
                jv.to_vec(),
                fd.to_vec()
            );
        }
    }
}

#[test]
fn the_jacobian_of_tanh_ax_is_diag_of_the_slope_times_a() {
    let k = consts();
    let x = t(&[5], 11);
    let j = jacfwd(|x| f("tanh(Ax)", &k, x), &x).unwrap();
    let z = k.a.matmul(&x);
    let mut exact = Vec::new();
    for i in 0..12 {
        let s = 1.0 - z.as_slice()[i].tanh().powi(2);
        exact.extend(k.a.as_slice()[5 * i..5 * i + 5].iter().map(|a| s * a));
    }
    assert!(j.all_close(&Tensor::from_vec(exact, &[12, 5]).unwrap(), 1e-15));
}

#[test]
fn jacobians_of_several_leaves_split_the_trailing_identity() {
    // tanh(A x + b) with respect to (x, b): (diag(s) A, diag(s)).
    let k = consts();
    let x = t(&[5], 12);
    let b = t(&[12], 13);
    let (jx, jb) = jacfwd(
        |(x, b)| {
            x.constant_like(&k.a)
                .try_matmul(x)?
                .try_add(b)
                .map(|z| z.tanh())
        },
        &(x.clone(), b.clone()),
    )
    .unwrap();
    let (rx, rb) = jacrev(
        |(x, b)| {
            x.constant_like(&k.a)
                .try_matmul(x)?
                .try_add(b)
                .map(|z| z.tanh())
        },
        &(x.clone(), b.clone()),
    )
    .unwrap();
    assert_eq!((jx.shape(), jb.shape()), (&[12, 5][..], &[12, 12][..]));
    assert!(jx.all_close(&rx, 1e-14) && jb.all_close(&rb, 1e-14));
    let s: Vec<f64> = k.a.matmul(&x).add(&b).tanh().to_vec();
    for (i, si) in s.iter().enumerate() {
        for j in 0..12 {
            let want = if i == j { 1.0 - si * si } else { 0.0 };
            assert!((jb.get(&[i, j]).unwrap() - want).abs() < 1e-15);
        }
    }
}

#[test]
fn the_hessian_of_a_softmax_loss_is_symmetric_and_matches_differences_of_gradients() {
    // Forward over reverse: the tangents ride through the reverse sweep's rules.
    let k = consts();
    let x = t(&[5], 14);
    let loss = |x: &Tensor<f64>| -> f64 {
        let p = k.a.matmul(x).softmax(0);
        p.mul(&k.u).sum_all().to_vec()[0]
    };
    let h = hessian(
        |x| {
            let p = x.constant_like(&k.a).try_matmul(x)?.try_softmax(0)?;
            Ok(p.try_mul(&x.constant_like(&k.u))?.sum_all())
        },
        &x,
    )
    .unwrap();
    for i in 0..5 {
        for j in 0..5 {
            let hij = h.get(&[i, j]).unwrap();
            assert!((hij - h.get(&[j, i]).unwrap()).abs() < 1e-13, "symmetric");
            // Second central difference along e_i and e_j.
            let e = |a: usize, s: f64| {
                let mut v = vec![0.0; 5];
                v[a] = s;
                Tensor::vector(&v)
            };
            let d = 1e-4;
            let at = |si: f64, sj: f64| loss(&x.add(&e(i, si * d)).add(&e(j, sj * d)));
            let fd =
                (at(1.0, 1.0) - at(1.0, -1.0) - at(-1.0, 1.0) + at(-1.0, -1.0)) / (4.0 * d * d);
            assert!(
                (hij - fd).abs() < 1e-6,
                "H[{i}][{j}] = {hij}, differences {fd}"
            );
        }
    }
}

#[test]
fn shape_errors_inside_a_trailing_stack_name_the_operation() {
    let k = consts();
    let x = t(&[5], 15);
    let err = jacfwd(
        |x| {
            x.constant_like(&k.a)
                .try_matmul(x)?
                .try_add(&x.constant_like(&k.u.reshape(&[3, 4]).unwrap()))
        },
        &x,
    )
    .unwrap_err();
    assert!(err.to_string().contains("add"), "{err}");
    let err = jacfwd(
        |x| {
            x.constant_like(&k.a)
                .try_matmul(x)?
                .try_sum_axes(&[1], false)
        },
        &x,
    )
    .unwrap_err();
    assert!(err.to_string().contains("sum_axes"), "{err}");
    let err = jacfwd(
        |x| {
            x.constant_like(&k.b)
                .try_matmul(&x.constant_like(&k.a).try_matmul(x)?.try_reshape(&[3, 4])?)
        },
        &x,
    )
    .unwrap_err();
    assert!(err.to_string().contains("matmul"), "{err}");
}
