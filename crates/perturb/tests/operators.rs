//! The arithmetic operators on every array type: each form equals the method it stands for,
//! broadcasts, takes constants on either side, panics naming the operation on a shape mismatch;
//! and functions written once with operators (`ArrayOps`) differentiate correctly under every
//! transform, against central finite differences.

use perturb::prelude::*;
use perturb::tensor::{
    grad, hessian, hvp, jacfwd, jvp, Batched, Deferred, DualTensor, TensorTape, TensorVar,
};

/// `n` distinct values of either sign, none near zero (so that `/` is well conditioned).
fn values<T: Element>(n: usize, seed: f64) -> Vec<T> {
    (0..n)
        .map(|i| {
            let v = 0.6 + ((i as f64 + 1.0) * seed).sin().abs();
            let sign = if i % 3 == 1 { -1.0 } else { 1.0 };
            T::from(sign * v).unwrap()
        })
        .collect()
}

fn tensor<T: Element>(shape: &[usize], seed: f64) -> Tensor<T> {
    Tensor::from_vec(values(shape.iter().product(), seed), shape).unwrap()
}

/// Every operator form on arrays `x` (shape `[2, 3]`) and `y` (shape `[3]`, broadcast against
/// `x` on either side), with the constants `c` (not a power of two: a true division) and `p`
/// (a power of two: a scaling), against the methods: `parts` lists every level of an array
/// (value, tangent, ...), compared exactly.
macro_rules! every_form_equals_its_method {
    ($x:expr, $y:expr, $t:ty, $parts:expr) => {{
        let (x, y) = ($x, $y);
        let parts = $parts;
        let c: $t = 3.0;
        let p: $t = 0.25;
        let constant = |c: $t| x.constant_like(&Tensor::scalar(c));
        let cases = vec![
            ("&x + &y", &x + &y, x.add(&y)),
            ("&x + y", &x + y.clone(), x.add(&y)),
            ("x + &y", x.clone() + &y, x.add(&y)),
            ("x + y", x.clone() + y.clone(), x.add(&y)),
            ("&y + &x", &y + &x, y.add(&x)),
            ("&x - &y", &x - &y, x.sub(&y)),
            ("&x - y", &x - y.clone(), x.sub(&y)),
            ("x - &y", x.clone() - &y, x.sub(&y)),
            ("x - y", x.clone() - y.clone(), x.sub(&y)),
            ("&y - &x", &y - &x, y.sub(&x)),
            ("&x * &y", &x * &y, x.mul(&y)),
            ("&x * y", &x * y.clone(), x.mul(&y)),
            ("x * &y", x.clone() * &y, x.mul(&y)),
            ("x * y", x.clone() * y.clone(), x.mul(&y)),
            ("&y * &x", &y * &x, y.mul(&x)),
            ("&x / &y", &x / &y, x.div(&y)),
            ("&x / y", &x / y.clone(), x.div(&y)),
            ("x / &y", x.clone() / &y, x.div(&y)),
            ("x / y", x.clone() / y.clone(), x.div(&y)),
            ("&y / &x", &y / &x, y.div(&x)),
            ("-&x", -&x, x.neg()),
            ("-x", -x.clone(), x.neg()),
            ("&x + c", &x + c, x.add_scalar(c)),
            ("x + c", x.clone() + c, x.add_scalar(c)),
            ("&x - c", &x - c, x.add_scalar(-c)),
            ("x - c", x.clone() - c, x.add_scalar(-c)),
            ("&x * c", &x * c, x.scale(c)),
            ("x * c", x.clone() * c, x.scale(c)),
            ("&x / c", &x / c, x.div(&constant(c))),
            ("x / c", x.clone() / c, x.div(&constant(c))),
            ("&x / p", &x / p, x.scale(1.0 / p)),
            ("x / p", x.clone() / p, x.scale(1.0 / p)),
            ("c + &x", c + &x, x.add_scalar(c)),
            ("c + x", c + x.clone(), x.add_scalar(c)),
            ("c - &x", c - &x, x.neg().add_scalar(c)),
            ("c - x", c - x.clone(), x.neg().add_scalar(c)),
            ("c * &x", c * &x, x.scale(c)),
            ("c * x", c * x.clone(), x.scale(c)),
            ("c / &x", c / &x, constant(c).div(&x)),
            ("c / x", c / x.clone(), constant(c).div(&x)),
        ];
        for (form, got, want) in cases {
            let (got, want): (Vec<Vec<$t>>, Vec<Vec<$t>>) = (parts(&got), parts(&want));
            let same = got.len() == want.len()
                && got
                    .iter()
                    .flatten()
                    .zip(want.iter().flatten())
                    .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{form} on {}: {got:?} vs {want:?}", stringify!($t));
        }
    }};
}

macro_rules! operators_on_every_array_type {
    ($name:ident, $t:ty) => {
        #[test]
        fn $name() {
            let (x, y) = (tensor::<$t>(&[2, 3], 0.7), tensor::<$t>(&[3], 1.3));
            let (dx, dy) = (tensor::<$t>(&[2, 3], 2.1), tensor::<$t>(&[3], 0.4));
            every_form_equals_its_method!(x.clone(), y.clone(), $t, |a: &Tensor<$t>| vec![
                a.to_vec()
            ]);
            let tape = TensorTape::new();
            every_form_equals_its_method!(
                tape.var(x.clone()),
                tape.var(y.clone()),
                $t,
                |a: &TensorVar<'_, Tensor<$t>>| vec![a.value().to_vec()]
            );
            every_form_equals_its_method!(
                DualTensor::new(x.clone(), dx.clone()),
                DualTensor::new(y.clone(), dy.clone()),
                $t,
                |a: &DualTensor<Tensor<$t>>| vec![
                    a.primal_value().to_vec(),
                    a.tangent_or_zeros().to_vec()
                ]
            );
            // Stacks of 2: members of shapes [2, 3] and [3].
            every_form_equals_its_method!(
                Batched::stack(tensor::<$t>(&[2, 2, 3], 0.9)),
                Batched::stack(tensor::<$t>(&[2, 3], 1.7)),
                $t,
                |a: &Batched<Tensor<$t>>| vec![a.primal().to_vec()]
            );
            every_form_equals_its_method!(
                Deferred::new(x.clone()),
                Deferred::new(y.clone()),
                $t,
                |a: &Deferred<Tensor<$t>>| vec![a.primal().to_vec()]
            );
            // Nested: a tape over dual tensors carries value and tangent.
            let tape = TensorTape::over();
            every_form_equals_its_method!(
                tape.var(DualTensor::new(x.clone(), dx.clone())),
                tape.var(DualTensor::new(y.clone(), dy.clone())),
                $t,
                |a: &TensorVar<'_, DualTensor<Tensor<$t>>>| vec![
                    a.value().primal_value().to_vec(),
                    a.value().tangent_or_zeros().to_vec()
                ]
            );
        }
    };
}

operators_on_every_array_type!(operators_equal_methods_f64, f64);
operators_on_every_array_type!(operators_equal_methods_f32, f32);

/// The values against element-by-element arithmetic, broadcasting `y` ([3]) over the rows of
/// `x` ([2, 3]), constants on both sides: independent of the methods.
macro_rules! values_element_by_element {
    ($name:ident, $t:ty) => {
        #[test]
        fn $name() {
            let (x, y) = (tensor::<$t>(&[2, 3], 0.7), tensor::<$t>(&[3], 1.3));
            let (xs, ys) = (x.to_vec(), y.to_vec());
            let c: $t = 3.0;
            let pairwise =
                |f: fn($t, $t) -> $t| -> Vec<$t> { (0..6).map(|i| f(xs[i], ys[i % 3])).collect() };
            let each = |f: &dyn Fn($t) -> $t| -> Vec<$t> { xs.iter().map(|&v| f(v)).collect() };
            assert_eq!((&x + &y).to_vec(), pairwise(|a, b| a + b));
            assert_eq!((&x - &y).to_vec(), pairwise(|a, b| a - b));
            assert_eq!((&y - &x).to_vec(), pairwise(|a, b| b - a));
            assert_eq!((&x * &y).to_vec(), pairwise(|a, b| a * b));
            assert_eq!((&x / &y).to_vec(), pairwise(|a, b| a / b));
            assert_eq!((&y / &x).to_vec(), pairwise(|a, b| b / a));
            assert_eq!((-&x).to_vec(), each(&|v| -v));
            assert_eq!((&x + c).to_vec(), each(&|v| v + c));
            assert_eq!((&x - c).to_vec(), each(&|v| v - c));
            assert_eq!((&x * c).to_vec(), each(&|v| v * c));
            assert_eq!((&x / c).to_vec(), each(&|v| v / c));
            assert_eq!((c + &x).to_vec(), each(&|v| c + v));
            assert_eq!((c - &x).to_vec(), each(&|v| c - v));
            assert_eq!((c * &x).to_vec(), each(&|v| c * v));
            assert_eq!((c / &x).to_vec(), each(&|v| c / v));
            // A tape records them: d/dx sum(c / x) = -c / x^2.
            let tape = TensorTape::new();
            let xv = tape.var(x.clone());
            let g = tape
                .gradient(&(c / &xv).sum_all(), &[&xv])
                .unwrap()
                .remove(0);
            let want = Tensor::from_vec(each(&|v| -c / (v * v)), &[2, 3]).unwrap();
            assert!(g.all_close(&want, 4.0 * <$t>::EPSILON), "{g:?} vs {want:?}");
        }
    };
}

values_element_by_element!(values_match_element_by_element_f64, f64);
values_element_by_element!(values_match_element_by_element_f32, f32);

// ---- Shape errors panic, naming the operation and the shapes ----------------------------

fn mismatched() -> (Tensor<f64>, Tensor<f64>) {
    (Tensor::zeros(&[2, 3]), Tensor::ones(&[4]))
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not match")]
fn tensor_add_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = &a + &b;
}

#[test]
#[should_panic(expected = "sub: shapes [2, 3] and [4] do not match")]
fn tensor_sub_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = a - b;
}

#[test]
#[should_panic(expected = "mul: shapes [2, 3] and [4] do not match")]
fn tensor_mul_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = a * &b;
}

#[test]
#[should_panic(expected = "div: shapes [2, 3] and [4] do not match")]
fn tensor_div_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = &a / b;
}

#[test]
#[should_panic(expected = "mul: shapes [2, 3] and [4] do not match")]
fn tape_variable_mismatch_panics() {
    let (a, b) = mismatched();
    let tape = TensorTape::new();
    let _ = &tape.var(a) * &tape.var(b);
}

#[test]
#[should_panic(expected = "div: shapes [2, 3] and [4] do not match")]
fn dual_tensor_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = DualTensor::constant(a) / DualTensor::constant(b);
}

#[test]
#[should_panic(expected = "sub: shapes [2, 3] and [4] do not match")]
fn batched_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = Batched::single(a) - Batched::single(b);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not match")]
fn deferred_mismatch_panics() {
    let (a, b) = mismatched();
    let _ = Deferred::new(a) + &Deferred::new(b);
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not match")]
fn generic_code_mismatch_panics() {
    fn generic<A: ArrayOps>(a: &A, b: &A) -> A {
        a.clone() + b
    }
    let (a, b) = mismatched();
    let _ = generic(&a, &b);
}

/// Where a panic in `f` points, run on its own thread (the panic hook is global: other
/// threads' panics go to the hook that was there before).
fn panic_location(f: fn()) -> (String, u32) {
    type Seen = std::sync::Arc<std::sync::Mutex<Option<(String, u32)>>>;
    let seen: Seen = Default::default();
    let name = "panic-location";
    let previous = std::sync::Arc::new(std::panic::take_hook());
    {
        let (seen, previous) = (seen.clone(), previous.clone());
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(name) {
                let at = info.location().unwrap();
                *seen.lock().unwrap() = Some((at.file().to_string(), at.line()));
            } else {
                previous(info);
            }
        }));
    }
    let outcome = std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap()
        .join();
    let _ = std::panic::take_hook();
    assert!(outcome.is_err(), "no panic");
    let at = seen.lock().unwrap().take();
    at.expect("the hook saw the panic")
}

/// The line each case below expects its panic at: the one after it stores it.
static EXPECTED_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn expect_line(line: u32) {
    EXPECTED_LINE.store(line, std::sync::atomic::Ordering::SeqCst);
}

fn tensor_case() {
    let (a, b) = mismatched();
    expect_line(line!() + 1);
    let _ = &a - &b;
}

fn tape_case() {
    let (a, b) = mismatched();
    let tape = TensorTape::new();
    let (a, b) = (tape.var(a), tape.var(b));
    expect_line(line!() + 1);
    let _ = 2.0 * a + &b;
}

fn dual_case() {
    let (a, b) = mismatched();
    let (a, b) = (DualTensor::constant(a), DualTensor::constant(b));
    expect_line(line!() + 1);
    let _ = 2.0 / a + b;
}

fn batched_case() {
    let (a, b) = mismatched();
    let (a, b) = (Batched::single(a), Batched::single(b));
    expect_line(line!() + 1);
    let _ = a * 4.0 * b;
}

fn deferred_case() {
    let (a, b) = mismatched();
    let (a, b) = (Deferred::new(a), Deferred::new(b));
    expect_line(line!() + 1);
    let _ = &a / &b - 1.0;
}

#[test]
fn a_panic_points_at_the_callers_line() {
    let cases: [fn(); 5] = [
        tensor_case,
        tape_case,
        dual_case,
        batched_case,
        deferred_case,
    ];
    for case in cases {
        let at = panic_location(case);
        let line = EXPECTED_LINE.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(at, (file!().to_string(), line));
    }
}

// ---- Generic functions under every transform ----------------------------------------------

/// Rosenbrock, `sum(100 (x[1..] - x[..n-1]^2)^2 + (1 - x[..n-1])^2)`, for any element type:
/// constants through `A::elem`.
fn rosenbrock<A: ArrayOps>(x: &A) -> A {
    let n = x.shape()[0];
    let (head, tail) = (x.narrow(0, 0, n - 1), x.narrow(0, 1, n - 1));
    let one_minus = -head.clone() + A::elem(1.0);
    ((tail - head.square()).square() * A::elem(100.0) + one_minus.square()).sum_all()
}

/// The same written with `try_` methods, the form it replaces.
fn rosenbrock_try<A: Array>(x: &A) -> Result<A, Error> {
    let n = x.shape()[0];
    let (head, tail) = (x.try_narrow(0, 0, n - 1)?, x.try_narrow(0, 1, n - 1)?);
    let a = tail.try_sub(&head.square())?.square().scale(A::elem(100.0));
    let b = head.neg().add_scalar(A::elem(1.0)).square();
    Ok(a.try_add(&b)?.sum_all())
}

/// Sizes of the MLP: 3 inputs, 4 hidden units, 1 output, 5 samples.
const IN: usize = 3;
const HIDDEN: usize = 4;
const SAMPLES: usize = 5;
const PARAMETERS: usize = IN * HIDDEN + HIDDEN + HIDDEN + 1;

/// A one-hidden-layer MLP's loss with its parameters packed into one vector `w`
/// (`W1 [3, 4]`, `b1 [4]`, `W2 [4, 1]`, `b2 [1]`): mean squared error of `tanh(X W1 + b1) W2
/// + b2` against `y`, plus `0.01 sum(w^2)`, on fixed data. Constants of f64.
fn mlp_loss<A: ArrayOps<Elem = f64>>(w: &A) -> A {
    let x = w.constant_like(&tensor(&[SAMPLES, IN], 0.37));
    let y = w.constant_like(&tensor(&[SAMPLES, 1], 1.91));
    let mut at = 0;
    let mut take = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        at += n;
        w.narrow(0, at - n, n).try_reshape(shape).unwrap()
    };
    let (w1, b1, w2, b2) = (
        take(&[IN, HIDDEN]),
        take(&[HIDDEN]),
        take(&[HIDDEN, 1]),
        take(&[1]),
    );
    let hidden = (x.matmul(&w1) + b1).tanh();
    let error = hidden.matmul(&w2) + b2 - y;
    error.square().mean_all() + w.square().sum_all() * 0.01
}

/// The central difference of `f` at `x` along `v`, step `h`.
fn central(f: &dyn Fn(&Tensor<f64>) -> Tensor<f64>, x: &Tensor<f64>, v: &Tensor<f64>) -> Vec<f64> {
    let h = 1e-5;
    let plus = f(&(x + &(v * h)));
    let minus = f(&(x - &(v * h)));
    ((plus - minus) / (2.0 * h)).to_vec()
}

fn basis(n: usize, i: usize) -> Tensor<f64> {
    let mut e = vec![0.0; n];
    e[i] = 1.0;
    Tensor::vector(&e)
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

/// `$f`, a generic function written once, on plain tensors and under grad, jvp, jacfwd,
/// hessian and hvp (each calls it at its own array type), against central differences: of `$f`
/// for first order, of its gradient for second order.
macro_rules! every_transform_matches_central_differences {
    ($f:ident, $x:expr) => {{
        let x: &Tensor<f64> = $x;
        let what = stringify!($f);
        let f = |x: &Tensor<f64>| $f(x);
        let df = |x: &Tensor<f64>| grad(|x| Ok($f(x)), x).unwrap();
        let n = x.shape()[0];
        let directions: Vec<Tensor<f64>> = (0..n).map(|i| basis(n, i)).collect();
        let fd_grad: Vec<f64> = directions.iter().flat_map(|e| central(&f, x, e)).collect();
        close(&df(x).to_vec(), &fd_grad, 1e-7, &format!("{what}: grad"));

        let v = tensor::<f64>(&[n], 2.9);
        let (value, slope) = jvp(|x| Ok($f(x)), x, &v).unwrap();
        assert_eq!(value.to_vec(), f(x).to_vec(), "{what}: jvp value");
        close(
            &slope.to_vec(),
            &central(&f, x, &v),
            1e-7,
            &format!("{what}: jvp"),
        );

        let j = jacfwd(|x| Ok($f(x)), x).unwrap();
        close(&j.to_vec(), &fd_grad, 1e-7, &format!("{what}: jacfwd"));

        // Column i of the Hessian: the central difference of the gradient along e_i.
        let fd_hessian: Vec<f64> = directions.iter().flat_map(|e| central(&df, x, e)).collect();
        let h = hessian(|x| Ok($f(x)), x).unwrap();
        assert_eq!(h.shape(), &[n, n]);
        close(&h.to_vec(), &fd_hessian, 1e-6, &format!("{what}: hessian"));

        let hv = hvp(|x| Ok($f(x)), x, &v).unwrap();
        close(
            &hv.to_vec(),
            &central(&df, x, &v),
            1e-6,
            &format!("{what}: hvp"),
        );
    }};
}

#[test]
fn rosenbrock_written_with_operators_under_every_transform() {
    let x = Tensor::vector(&[-1.2, 1.0, 0.7, 1.4]);
    // The same value as the try_ form, bit for bit, on plain tensors and on a tape.
    assert_eq!(
        rosenbrock(&x).to_vec(),
        rosenbrock_try(&x).unwrap().to_vec()
    );
    let g = grad(|x| Ok(rosenbrock(x)), &x).unwrap();
    assert_eq!(
        g.to_vec(),
        grad(|x| rosenbrock_try(x), &x).unwrap().to_vec()
    );
    every_transform_matches_central_differences!(rosenbrock, &x);
    // At the minimum (1, 1) the Hessian is [[802, -400], [-400, 200]]: d2/dx0^2 of
    // 100 (x1 - x0^2)^2 + (1 - x0)^2 is 1200 x0^2 - 400 x1 + 2, d2/dx0dx1 = -400 x0, d2/dx1^2 = 200.
    let h = hessian(|x| Ok(rosenbrock(x)), &Tensor::vector(&[1.0, 1.0])).unwrap();
    assert_eq!(h.to_vec(), vec![802.0, -400.0, -400.0, 200.0]);
}

#[test]
fn rosenbrock_in_f32_agrees_with_f64() {
    let x64 = Tensor::vector(&[-1.2, 1.0, 0.7]);
    let x32 = Tensor::vector(&[-1.2_f32, 1.0, 0.7]);
    let g64 = grad(|x| Ok(rosenbrock(x)), &x64).unwrap().to_vec();
    let g32 = grad(|x| Ok(rosenbrock(x)), &x32).unwrap().to_vec();
    for (a, b) in g64.iter().zip(&g32) {
        assert!(
            (a - f64::from(*b)).abs() <= 1e-5 * a.abs().max(1.0),
            "{g64:?} vs {g32:?}"
        );
    }
}

#[test]
fn mlp_loss_written_with_operators_under_every_transform() {
    let w = tensor::<f64>(&[PARAMETERS], 0.53) * 0.5;
    every_transform_matches_central_differences!(mlp_loss, &w);
}

/// The idiom the prelude documents: in code bounded by `ArrayOps`, a method with an
/// operator's name called by its path keeps the value (`h.mul(y)` would be the operator's and
/// move `h`).
fn method_on_a_reference<A: ArrayOps>(x: &A, y: &A) -> A {
    let h = x.clone() * y;
    let k = Array::mul(&h, y);
    h + k
}

#[test]
fn method_forms_on_references_keep_the_value() {
    let (x, y) = (Tensor::vector(&[2.0_f64, 3.0]), Tensor::vector(&[5.0, 7.0]));
    // x y + x y^2
    assert_eq!(
        method_on_a_reference(&x, &y).to_vec(),
        vec![10.0 + 50.0, 21.0 + 147.0]
    );
}
