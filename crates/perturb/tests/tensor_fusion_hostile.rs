//! Hostile tests of fused chains and `Deferred` arrays (hunt 3): every element-wise operation a
//! chain runs, in `f32` and `f64`, with NaN, the infinities, -0.0 and subnormals among the
//! values, at sizes around the block length and the fusion limits (2^14, 2^18, where the unfused
//! operations switch to rayon's threads and a chain stays on one), with one-element operands
//! on either side; shared values asked for in every order and twice, views into a larger
//! buffer, length 0 and 1, the transforms on deferred arrays against plain ones (all bit for
//! bit), and a chain asked for a node it does not have.
//!
//! Every test of this file sets `fusion::min_len` to 0 (it is global): all sizes fuse.

use perturb::tensor::fusion::{self, Chain};
use perturb::tensor::{grad, hvp, jacfwd, jvp, ops, vjp, Array, Deferred, Element, Op, Tensor};
use perturb::Error;

fn fuse_everything() {
    fusion::set_min_len(0);
}

const SPECIAL: [f64; 10] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    1e-310,
    700.0,
    -700.0,
    1e300,
    -1e-300,
];

/// `n` values in [-4, 4], every 37th a special one.
fn values<T: Element>(n: usize, seed: u64) -> Tensor<T> {
    let mut s = seed;
    let v = (0..n)
        .map(|i| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let f = if i % 37 == 3 {
                SPECIAL[(i / 37) % SPECIAL.len()]
            } else {
                (s >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0
            };
            T::from_f64(f).unwrap()
        })
        .collect();
    Tensor::from_vec(v, &[n]).unwrap()
}

/// `values` with the non-finite ones replaced: for the transforms.
fn finite(n: usize, seed: u64) -> Tensor<f64> {
    values::<f64>(n, seed).map(|v| {
        if v.is_finite() {
            v.clamp(-3.0, 3.0)
        } else {
            0.5
        }
    })
}

fn same_bits<T: Element>(what: &str, fused: &Tensor<T>, plain: &Tensor<T>) {
    assert_eq!(fused.shape(), plain.shape(), "{what}");
    let bits = |x: &Tensor<T>| -> Vec<u64> {
        x.as_slice()
            .iter()
            .map(|v| v.to_f64_value().to_bits())
            .collect()
    };
    let (f, p) = (bits(fused), bits(plain));
    if let Some(i) = f.iter().zip(&p).position(|(a, b)| a != b) {
        panic!(
            "{what}: at {i}, fused {:?}, unfused {:?}",
            fused.as_slice()[i],
            plain.as_slice()[i]
        );
    }
}

/// Each unary operation a chain runs, followed by `neg` (a region of one operation runs
/// unfused).
fn unary<A: Array>(x: &A) -> Vec<(&'static str, A)> {
    macro_rules! each {
        ($($op:expr),*) => { vec![$(($op.name(), x.apply_op(&$op).unwrap().neg())),*] }
    }
    each!(
        ops::Neg,
        ops::Exp,
        ops::Ln,
        ops::Square,
        ops::Sigmoid,
        ops::Sqrt,
        ops::Abs,
        ops::Sin,
        ops::Cos,
        ops::Tanh,
        ops::Relu,
        ops::Softplus,
        ops::LogSigmoid,
        ops::Recip,
        ops::Log1p,
        ops::Expm1,
        ops::Erf,
        ops::Gelu,
        ops::GeluTanh,
        ops::Silu,
        ops::Scale(-2.5),
        ops::AddScalar(0.25)
    )
}

/// Each binary operation a chain runs, followed by `neg`.
fn binary<A: Array>(a: &A, b: &A) -> Vec<(&'static str, A)> {
    macro_rules! each {
        ($($op:expr),*) => { vec![$(($op.name(), A::apply(&$op, &[a, b]).unwrap().neg())),*] }
    }
    each!(
        ops::Add,
        ops::Sub,
        ops::Mul,
        ops::Div,
        ops::Pow,
        ops::ScaledMul(-1.5)
    )
}

fn deferred<T: Element>(x: &Tensor<T>) -> Deferred<Tensor<T>> {
    Deferred::new(x.clone())
}

fn every_operation_at<T: Element + 'static>(n: usize) {
    let kind = std::any::type_name::<T>();
    let (x, y, z) = (values::<T>(n, 1), values::<T>(n, 2), values::<T>(n, 3));
    for ((name, fused), (_, plain)) in unary(&deferred(&x)).into_iter().zip(unary(&x)) {
        same_bits(
            &format!("{name}, {n} {kind}"),
            &fused.value().unwrap(),
            &plain,
        );
    }
    let zero_d = Tensor::scalar(T::from_f64(1.3).unwrap());
    let one = Tensor::from_vec(vec![T::from_f64(-0.7).unwrap()], &[1]).unwrap();
    for (a, b) in [
        (&x, &y),
        (&x, &zero_d),
        (&zero_d, &x),
        (&one, &y),
        (&y, &one),
    ] {
        let pairs = binary(&deferred(a), &deferred(b))
            .into_iter()
            .zip(binary(a, b));
        for ((name, fused), (_, plain)) in pairs {
            let what = format!("{name} of {:?} and {:?}, {kind}", a.shape(), b.shape());
            same_bits(&what, &fused.value().unwrap(), &plain);
        }
    }
    // `mul_add` on three runs, and with each operand in turn a 0-d one.
    let op = ops::MulAdd(0.75);
    for k in 0..4 {
        let mut inputs = [x.clone(), y.clone(), z.clone()];
        if k < 3 {
            inputs[k] = zero_d.clone();
        }
        let plain = Tensor::apply(&op, &inputs.iter().collect::<Vec<_>>())
            .unwrap()
            .neg();
        let inputs: Vec<_> = inputs.iter().map(deferred).collect();
        let fused = Deferred::apply(&op, &inputs.iter().collect::<Vec<_>>())
            .unwrap()
            .neg();
        same_bits(
            &format!("mul_add, operand {k} 0-d, {n} {kind}"),
            &fused.value().unwrap(),
            &plain,
        );
    }
}

#[test]
fn every_operation_equals_its_unfused_value_bit_for_bit_at_every_size() {
    fuse_everything();
    // Around the block (512), the default `min_len` (2^14: transcendental operations go to
    // rayon's threads there, a chain does not) and the upper limit (2^18: unfused from there).
    for n in [
        2,
        511,
        513,
        (1 << 14) - 1,
        (1 << 14) + 1,
        (1 << 18) - 1,
        (1 << 18) + 1,
    ] {
        every_operation_at::<f64>(n);
        every_operation_at::<f32>(n);
    }
}

#[test]
fn shared_values_asked_for_in_any_order_and_twice() {
    fuse_everything();
    let x = values::<f64>(1500, 5);
    fn build<A: Array>(x: &A) -> Vec<A> {
        let a = x.exp();
        let b = a.try_mul(x).unwrap();
        let c = b.try_add(&a).unwrap();
        let d = c.sin().try_mul(&b).unwrap();
        let e = d.try_sub(&a).unwrap().cos();
        vec![a, b, c, d, e]
    }
    let plain = build(&x);
    for order in [
        [4, 3, 2, 1, 0],
        [0, 1, 2, 3, 4],
        [2, 4, 0, 3, 1],
        [3, 3, 4, 4, 1],
    ] {
        let fused = build(&deferred(&x));
        for k in order.into_iter().chain(0..5) {
            let what = format!("value {k}, order {order:?}");
            same_bits(&what, &fused[k].value().unwrap(), &plain[k]);
        }
    }
    // Handles to the middle of the DAG dropped before anything is computed.
    let fused = build(&deferred(&x));
    let (e, b) = (fused[4].clone(), fused[1].clone());
    drop(fused);
    same_bits("e, the rest dropped", &e.value().unwrap(), &plain[4]);
    same_bits("b, after e", &b.value().unwrap(), &plain[1]);
}

#[test]
fn views_into_a_larger_buffer_and_lengths_0_and_1() {
    fuse_everything();
    let n = 1500;
    let big = values::<f64>(3 * n, 7);
    let x = big.narrow(0, n + 3, n);
    let y = big
        .reshape(&[3, n])
        .unwrap()
        .narrow(0, 2, 1)
        .reshape(&[n])
        .unwrap();
    fn f<A: Array>(x: &A, y: &A) -> A {
        x.exp().try_mul(y).unwrap().sin().try_add(x).unwrap()
    }
    same_bits(
        "views",
        &f(&deferred(&x), &deferred(&y)).value().unwrap(),
        &f(&x, &y),
    );
    let half = Tensor::scalar(0.5);
    for shape in [vec![0], vec![0, 3], vec![1], vec![1, 1], vec![], vec![2, 1]] {
        let len = shape.iter().product();
        let x = Tensor::from_vec(values::<f64>(len, 3).to_vec(), &shape).unwrap();
        same_bits(
            &format!("{shape:?}"),
            &f(&deferred(&x), &deferred(&half)).value().unwrap(),
            &f(&x, &half),
        );
        fn g<A: Array>(c: &A, x: &A) -> A {
            c.try_sub(&x.sigmoid()).unwrap().square()
        }
        same_bits(
            &format!("{shape:?}, 0-d on the left"),
            &g(&deferred(&half), &deferred(&x)).value().unwrap(),
            &g(&half, &x),
        );
    }
}

fn loss<A: Array>(x: &A) -> Result<A, Error> {
    let a = x.square().add_scalar(A::elem(0.5)).sigmoid();
    let b = x.neg().exp().try_mul(&a)?;
    let c = b.try_div(&x.square().add_scalar(A::elem(1.0)))?.tanh();
    c.try_add(&a.scale(A::elem(0.3)))?
        .try_mul(&x.sin())
        .map(|v| v.sum_all())
}

#[test]
fn transforms_on_deferred_arrays_equal_the_plain_ones_bit_for_bit() {
    fuse_everything();
    for n in [100, 1500] {
        let (x, v) = (finite(n, 11), finite(n, 12));
        let g = grad(|x| loss(x), &deferred(&x)).unwrap();
        same_bits("grad", &g.value().unwrap(), &grad(|x| loss(x), &x).unwrap());
        let (y, t) = jvp(loss, &deferred(&x), &deferred(&v)).unwrap();
        let (y0, t0) = jvp(loss, &x, &v).unwrap();
        same_bits("jvp value", &y.value().unwrap(), &y0);
        same_bits("jvp tangent", &t.value().unwrap(), &t0);
        let ct = Tensor::scalar(1.7);
        let (_, c) = vjp(|x| loss(x), &deferred(&x), &deferred(&ct)).unwrap();
        let (_, c0) = vjp(|x| loss(x), &x, &ct).unwrap();
        same_bits("vjp", &c.value().unwrap(), &c0);
        let h = hvp(|x| loss(x), &deferred(&x), &deferred(&v)).unwrap();
        same_bits(
            "hvp",
            &h.value().unwrap(),
            &hvp(|x| loss(x), &x, &v).unwrap(),
        );
    }
    let x = finite(100, 13);
    let j = jacfwd(|x| Ok(x.sin().try_mul(x)?.exp()), &deferred(&x)).unwrap();
    let j0 = jacfwd(|x| Ok(x.sin().try_mul(x)?.exp()), &x).unwrap();
    same_bits("jacfwd", &j.value().unwrap(), &j0);
}

#[test]
fn errors_name_the_operation() {
    fuse_everything();
    let x = deferred(&values::<f64>(1500, 1));
    let y = deferred(&values::<f64>(1501, 2));
    let err = x.exp().sin().try_add(&y).unwrap_err().to_string();
    assert!(err.contains("add") && err.contains("1501"), "{err}");
    let err = Deferred::apply(&ops::MulAdd(1.0), &[&x.exp(), &x.sin()]).unwrap_err();
    assert!(err.to_string().contains("mul_add"), "{err}");
}

/// Found by this hunt: `Chain::eval` and `Chain::sum` indexed their nodes with the output
/// they were given, and panicked ("index out of bounds") on one the chain does not have.
#[test]
fn a_chain_asked_for_a_node_it_does_not_have_is_an_error() {
    let mut chain = Chain::<f64>::new(&[2]);
    let x = chain.leaf(Tensor::vector(&[1.0, 2.0])).unwrap();
    let y = chain.apply(&ops::Exp, &[x]).unwrap();
    for bad in [y + 1, usize::MAX] {
        let err = chain.eval(&[y, bad]).unwrap_err().to_string();
        assert!(
            err.contains("fusion::Chain::eval") && err.contains("not a node"),
            "{err}"
        );
        let err = chain.sum(bad).unwrap_err().to_string();
        assert!(
            err.contains("fusion::Chain::sum") && err.contains("not a node"),
            "{err}"
        );
    }
    // The chain still works.
    assert_eq!(chain.sum(x).unwrap(), 3.0);
    assert_eq!(chain.eval(&[y]).unwrap()[0].as_slice()[0], 1.0_f64.exp());
}

/// Found by this hunt: `Chain::new` multiplied the shape's lengths unchecked, so a shape whose
/// product overflows panicked ("attempt to multiply with overflow") in a debug build and in a
/// release build wrapped around: `[2^63 + 1, 2]` made a chain of 2 elements whose `eval` gave
/// a tensor of that shape holding 2 values (the length/shape disagreement of the reliability
/// report's S5). Now `eval` and `sum` return the tensors' own element-count error.
#[test]
fn a_chain_over_a_shape_too_large_for_a_tensor_is_an_error() {
    const WRAPS: usize = (1 << 63) + 1;
    // The second wraps around to 0, the third does not overflow but would need 2^60 elements.
    for shape in [
        vec![WRAPS, 2],
        vec![1 << 40, 1 << 40],
        vec![1 << 40, 1 << 20],
    ] {
        let mut chain = Chain::<f64>::new(&shape);
        let one = chain.leaf(Tensor::scalar(1.0)).unwrap();
        let y = chain.apply(&ops::Exp, &[one]).unwrap();
        let err = chain.eval(&[y]).unwrap_err().to_string();
        assert!(
            err.contains("fusion::Chain::new") && err.contains("more elements"),
            "{err}"
        );
        let err = chain.sum(y).unwrap_err().to_string();
        assert!(err.contains("more elements"), "{err}");
    }
}

/// Found by this hunt: the sum of a chain with no elements whose output is a 0-d input was
/// that value times 0, NaN for an infinite or NaN value; a sum of no elements is 0, as
/// `sum_all` of an empty tensor is.
#[test]
fn the_sum_of_no_elements_is_0() {
    for v in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 2.5] {
        let mut chain = Chain::<f64>::new(&[0, 3]);
        let s = chain.leaf(Tensor::scalar(v)).unwrap();
        assert_eq!(chain.sum(s).unwrap(), 0.0, "{v}");
        let e = chain.apply(&ops::Exp, &[s]).unwrap();
        assert_eq!(chain.sum(e).unwrap(), 0.0, "exp({v})");
    }
    let empty = Tensor::<f64>::zeros(&[0, 3]).sum_all();
    assert_eq!(empty.as_slice(), &[0.0]);
}
