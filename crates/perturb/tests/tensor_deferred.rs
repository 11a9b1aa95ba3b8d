//! `Deferred` arrays and `Op::output_shape`: every operation that tells its result's shape in
//! advance tells the shape its value has, and says nothing where the value would be an error;
//! deferred operations run once, only when needed, in any order and depth; their errors are
//! returned, not lost; and transforms on deferred arrays give the plain arrays' results.

use perturb::tensor::{grad, hvp, jvp, ops, Array, Deferred, Element, Op, Tensor};
use perturb::Error;

fn tensor(shape: &[usize]) -> Tensor<f64> {
    let n = shape.iter().product::<usize>();
    Tensor::from_vec((0..n).map(|i| 0.25 + 0.5 * i as f64).collect(), shape).unwrap()
}

/// `op.output_shape` against `op.eval` for inputs of these shapes: the value's shape where it
/// gives one, and where it gives none the value must be an error or the op one that does not
/// tell (`tells` false).
fn agrees<O: Op>(op: &O, shapes: &[&[usize]], tells: bool) {
    let inputs: Vec<Tensor<f64>> = shapes.iter().map(|s| tensor(s)).collect();
    let refs: Vec<&Tensor<f64>> = inputs.iter().collect();
    let value = op.eval(&refs);
    match (op.output_shape(shapes), value) {
        (Some(shape), Ok(value)) => assert_eq!(shape, value.shape(), "{} {shapes:?}", op.name()),
        (Some(shape), Err(e)) => panic!("{} {shapes:?}: said {shape:?}, eval: {e}", op.name()),
        (None, Ok(_)) => assert!(!tells, "{} {shapes:?}: no shape, eval ran", op.name()),
        (None, Err(_)) => {}
    }
}

const UNARY: &[&[&[usize]]] = &[&[&[]], &[&[4]], &[&[2, 3]], &[], &[&[2], &[2]]];
const BINARY: &[&[&[usize]]] = &[
    &[&[2, 3], &[2, 3]],
    &[&[2, 3], &[3]],
    &[&[2, 1], &[1, 3]],
    &[&[], &[4]],
    &[&[2, 3], &[2]],
    &[&[2, 3]],
    &[&[2], &[2], &[2]],
];

#[test]
fn output_shapes_are_the_values_shapes() {
    for shapes in UNARY {
        agrees(&ops::Exp, shapes, true);
        agrees(&ops::Neg, shapes, true);
        agrees(&ops::Sigmoid, shapes, true);
        agrees(&ops::Square, shapes, true);
        agrees(&ops::Scale(-2.0), shapes, true);
        agrees(&ops::AddScalar(0.5), shapes, true);
    }
    for shapes in BINARY {
        agrees(&ops::Add, shapes, true);
        agrees(&ops::Sub, shapes, true);
        agrees(&ops::Mul, shapes, true);
        agrees(&ops::Div, shapes, true);
        agrees(&ops::ScaledMul(1.5), shapes, true);
    }
    for shapes in [
        &[&[2, 3][..], &[2, 3], &[2, 3]][..],
        &[&[2, 3], &[3], &[2, 1]],
        &[&[4], &[], &[1]],
        &[&[2, 3], &[2], &[3]],
        &[&[2, 3], &[3]],
    ] {
        agrees(&ops::MulAdd(-1.5), shapes, true);
    }
    let narrow = |axis, start, len| ops::Narrow { axis, start, len };
    for (op, shapes) in [
        (narrow(0, 1, 2), &[&[4, 2][..]][..]),
        (narrow(1, 0, 2), &[&[4, 2]]),
        (narrow(1, 1, 2), &[&[4, 2]]),
        (narrow(2, 0, 1), &[&[4, 2]]),
        (narrow(0, 0, 1), &[&[4], &[4]]),
    ] {
        agrees(&op, shapes, true);
    }
    let pad = |axis, start, total| ops::PadNarrow { axis, start, total };
    for (op, shapes) in [
        (pad(0, 1, 5), &[&[3, 2][..]][..]),
        (pad(1, 1, 5), &[&[3, 2], &[3, 5]]),
        (pad(1, 1, 5), &[&[3, 2], &[3, 4]]),
        (pad(0, 3, 4), &[&[3, 2]]),
        (pad(2, 0, 4), &[&[3, 2]]),
        (pad(0, 0, 4), &[]),
    ] {
        agrees(&op, shapes, true);
    }
    let pair = |axis, total, starts| ops::PadPair {
        axis,
        total,
        starts,
    };
    for (op, shapes) in [
        (pair(0, 5, [0, 1]), &[&[2][..], &[3]][..]),
        (pair(1, 4, [1, 0]), &[&[3, 2, 2], &[3, 1, 2]]),
        (pair(1, 4, [1, 0]), &[&[3, 2, 2], &[2, 1, 2]]),
        (pair(0, 3, [0, 1]), &[&[2], &[3]]),
        (pair(1, 4, [0, 0]), &[&[3, 2], &[3]]),
        (pair(0, 4, [0, 0]), &[&[2]]),
    ] {
        agrees(&op, shapes, true);
    }
    for (target, shapes) in [
        (&[3][..], &[&[2, 3][..]][..]),
        (&[2, 1], &[&[2, 3]]),
        (&[], &[&[2, 3]]),
        (&[2], &[&[2, 3]]),
        (&[3], &[&[2, 3], &[3]]),
    ] {
        agrees(&ops::SumTo(target.to_vec()), shapes, true);
        agrees(&ops::BroadcastTo(target.to_vec()), shapes, true);
    }
    let matmul = |transpose_a, transpose_b| ops::MatMul {
        transpose_a,
        transpose_b,
    };
    for (op, shapes) in [
        (matmul(false, false), &[&[2, 3][..], &[3, 4]][..]),
        (matmul(false, false), &[&[3], &[3, 4]]),
        (matmul(false, false), &[&[2, 3], &[3]]),
        (matmul(false, false), &[&[3], &[3]]),
        (matmul(false, false), &[&[5, 2, 3], &[3, 4]]),
        (matmul(false, false), &[&[5, 1, 2, 3], &[4, 3, 2]]),
        (matmul(false, false), &[&[2, 3], &[2, 4]]),
        (matmul(false, false), &[&[], &[3]]),
        (matmul(true, false), &[&[3, 2], &[3, 4]]),
        (matmul(false, true), &[&[2, 3], &[4, 3]]),
        (matmul(true, true), &[&[3, 2], &[4, 3]]),
        (matmul(true, false), &[&[2, 3], &[3, 4]]),
        (matmul(true, false), &[&[3], &[3, 4]]),
        (matmul(false, false), &[&[2, 3]]),
    ] {
        agrees(&op, shapes, true);
    }
    // Operations that do not tell run at once.
    agrees(&ops::Softmax { axis: 1 }, &[&[2, 3]], false);
}

#[test]
fn only_what_is_asked_for_runs_each_once() {
    let x = Deferred::new(tensor(&[3]));
    let e = x.exp();
    let shared = e.scale(2.0);
    let left = shared.add_scalar(1.0);
    let right = shared.square();
    let unused = right.sum_all();
    assert!(!e.is_computed() && !unused.is_computed());
    let sum = left.add(&right).value().unwrap();
    let want: Vec<f64> = tensor(&[3])
        .to_vec()
        .iter()
        .map(|v| {
            let s = 2.0 * v.exp();
            s + 1.0 + s * s
        })
        .collect();
    assert_eq!(sum.to_vec(), want);
    assert!(e.is_computed() && shared.is_computed() && right.is_computed());
    assert!(!unused.is_computed());
    // An operation that does not tell its shape runs at once, with its inputs.
    let y = Deferred::new(tensor(&[2, 3])).exp();
    let soft = y.softmax(1);
    assert!(y.is_computed() && soft.is_computed());
}

#[test]
fn a_long_chain_is_computed_without_recursion() {
    let mut x = Deferred::new(Tensor::scalar(0.0_f64));
    for _ in 0..200_000 {
        x = x.add_scalar(1.0);
    }
    assert_eq!(x.value().unwrap().to_vec(), vec![200_000.0]);
    // And dropped without being computed, also without recursion.
    let mut y = Deferred::new(Tensor::scalar(0.0_f64));
    for _ in 0..200_000 {
        y = y.add_scalar(1.0);
    }
    assert!(!y.is_computed());
    drop(y);
}

/// Tells a shape and then fails, or gives another shape than it told.
#[derive(Clone, Debug)]
struct Broken {
    fails: bool,
}

impl Op for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        if self.fails {
            return Err(Error::InvalidArgument {
                op: "broken",
                reason: "it always fails".into(),
            });
        }
        x[0].try_reshape(&[x[0].len()])
    }
    fn output_shape(&self, x: &[&[usize]]) -> Option<Vec<usize>> {
        Some(x[0].to_vec())
    }
    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].cloned())
    }
}

#[test]
fn a_deferred_error_is_returned_and_stays_an_error() {
    let x = Deferred::new(tensor(&[2]));
    let y = x.apply_op(&Broken { fails: true }).unwrap().exp();
    let err = y.value().unwrap_err().to_string();
    assert!(
        err.contains("broken") && err.contains("always fails"),
        "{err}"
    );
    let again = y.value().unwrap_err().to_string();
    assert!(
        again.contains("broken") && again.contains("could not be computed"),
        "{again}"
    );
    // A result of another shape than told is an error naming the operation.
    let z = Deferred::new(tensor(&[2, 2]))
        .apply_op(&Broken { fails: false })
        .unwrap();
    let err = z.value().unwrap_err().to_string();
    assert!(
        err.contains("broken") && err.contains("[2, 2]") && err.contains("[4]"),
        "{err}"
    );
}

/// A chained Rosenbrock-like sum, for any array type.
fn chained<A: Array>(x: &A) -> Result<A, Error> {
    let n = x.shape()[0];
    let (head, tail) = (x.try_narrow(0, 0, n - 1)?, x.try_narrow(0, 1, n - 1)?);
    Ok(tail.try_sub(&head.square())?.square().sum_all())
}

#[test]
fn transforms_on_deferred_arrays_match_plain_ones() {
    let x = tensor(&[5]);
    let v = Tensor::vector(&[1.0, -1.0, 0.5, 2.0, 0.0]);
    let plain = grad(|x| chained(x), &x).unwrap();
    let deferred = grad(|x| chained(x), &Deferred::new(x.clone())).unwrap();
    assert_eq!(deferred.value().unwrap().to_vec(), plain.to_vec());
    let (y, t) = jvp(
        chained,
        &Deferred::new(x.clone()),
        &Deferred::new(v.clone()),
    )
    .unwrap();
    let (y0, t0) = jvp(chained, &x, &v).unwrap();
    assert_eq!(y.value().unwrap().to_vec(), y0.to_vec());
    assert_eq!(t.value().unwrap().to_vec(), t0.to_vec());
    // `hvp` itself runs on deferred arrays, and agrees with forward over reverse.
    let hv = hvp(|x| chained(x), &x, &v).unwrap();
    let (_, want) = jvp(|x| grad(|x| chained(x), x), &x, &v).unwrap();
    assert!(hv.all_close(&want, 1e-12), "{hv:?} vs {want:?}");
}
