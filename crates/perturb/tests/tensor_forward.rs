//! Forward mode for tensors and the transforms built on it.
//!
//! - The forward column for the operations the other tables do not hold (neg, exp, ln, square,
//!   sigmoid, the four broadcasting arithmetic operations, scale, add_scalar, reshape, permute,
//!   transpose, broadcast_to, sum_to, sum_all, pad_narrow): JVP against central differences and
//!   against the VJP, order two in every nesting (`forward_support`).
//! - Hessians with known closed forms: the lecture's MSE loss (`(2/N) X^T X`), the extended
//!   Rosenbrock function (tridiagonal in the chained form the benchmarks use, 2x2 blocks in the
//!   paired form), each by every nesting of the two modes; Hessian-vector products.
//! - The lecture's network: its Hessian with respect to all 13 parameters against the scalar
//!   engine's `perturb::hessian`.
//! - Jacobians by `jacfwd`, `jacrev`, `jacobian` (every `Mode`) and the `TensorFn` combinators
//!   against each other, against the scalar engine's `perturb::jacobian` and against closed
//!   forms, with the shape `output ++ input`.
//! - Derivatives of order 3 and 4 by nested `Grad`, `JacFwd`, `JacRev`.
//! - Perturbation confusion, `d/dx [x * d/dy (x + y)] = 1`, in every nesting, and a tensor version.
//! - Errors that name the operation.
//! - The checks themselves: operations with deliberately wrong rules fail them.

mod forward_support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use forward_support::{check_first_order, check_second_order, Function};
use perturb::tensor::{
    grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, ops, value_and_grad, vjp, Array, Batched,
    DualTensor, Element, Grad, Hessian, JacFwd, JacRev, Jacobian, Op, Tensor, TensorFn, TensorVar,
};
use perturb::{Error, Mode, Scalar, VectorFunction};

// ---- Helpers ---------------------------------------------------------------------------------

/// Deterministic pseudo-random values in [-1, 1) (splitmix64), as in the other tensor tests.
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

/// Values uniform in `[lo, hi)`.
fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    let n = shape.iter().product();
    let data = values(n, seed)
        .into_iter()
        .map(|v| lo + (hi - lo) * (v + 1.0) / 2.0)
        .collect();
    Tensor::from_vec(data, shape).unwrap()
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

#[track_caller]
fn assert_all_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert!(
        got.all_close(want, tol),
        "{what}:\n  got  {:?}\n  want {:?}",
        got.to_vec(),
        want.to_vec()
    );
}

/// `m v` for a row-major square matrix `m` (n x n) and a vector `v`, by hand.
fn mat_vec(m: &[f64], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    (0..n)
        .map(|i| (0..n).map(|j| m[i * n + j] * v[j]).sum())
        .collect()
}

// ---- The forward column for the operations outside the other tables -----------------------

#[derive(Clone, Copy, Debug)]
enum Core {
    Neg,
    Exp,
    Ln,
    Square,
    Sigmoid,
    Add,
    Sub,
    Mul,
    ScaledMul,
    MulAdd,
    MulSumToAll,
    MulSumToRows,
    MulSumToBlocks,
    Div,
    Scale,
    AddScalar,
    Reshape,
    Permute,
    Transpose,
    BroadcastTo,
    SumTo,
    SumAll,
    PadNarrow,
    PadNarrowOnto,
    PadPair,
    // Compositions that give the backward sweep's pending cotangent factors (`Cotangent`)
    // each of their paths: taken into a product, a change of sign, two terms gathered with
    // unequal or opposite factors, a window added onto one with another factor.
    FactorIntoMul,
    FactorIntoSquare,
    FactorIntoScaledMul,
    FactorThroughSub,
    FactorsUnequal,
    FactorsOpposite,
    FactorsOntoWindow,
    ProductsOnto,
    // Compositions whose sums hand a cotangent kept at its smaller shape to each kind of rule.
    SumIntoProducts,
    SumThroughChain,
    SumToIntoExp,
    SumsOntoWindow,
    SumToIntoBroadcastSum,
    // Compositions that give a narrow's cotangent, kept as a window until it is placed, each
    // of its paths: paired with a second window (in one pass), placed onto a sum gathered
    // before or after it, windows along different axes, windows of an intermediate value.
    WindowsPaired,
    WindowThenSum,
    SumThenWindow,
    WindowsAcrossAxes,
    WindowsOfIntermediate,
}

/// A core operation, or its element-wise square (so that linear operations have a second
/// derivative for the nested checks to find).
struct CoreFn {
    op: Core,
    squared: bool,
}

impl Function for CoreFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let x = xs[0];
        let y = match self.op {
            Core::Neg => x.neg(),
            Core::Exp => x.exp(),
            Core::Ln => x.ln(),
            Core::Square => x.square(),
            Core::Sigmoid => x.sigmoid(),
            Core::Add => x.try_add(xs[1])?,
            Core::Sub => x.try_sub(xs[1])?,
            Core::Mul => x.try_mul(xs[1])?,
            Core::ScaledMul => A::apply(&ops::ScaledMul(-1.5), &[x, xs[1]])?,
            Core::MulAdd => A::apply(&ops::MulAdd(-1.5), &[x, xs[1], xs[2]])?,
            Core::MulSumToAll => A::apply(&mul_sum_to(&[]), &[x, xs[1]])?,
            Core::MulSumToRows => A::apply(&mul_sum_to(&[3]), &[x, xs[1]])?,
            Core::MulSumToBlocks => A::apply(&mul_sum_to(&[2, 1]), &[x, xs[1]])?,
            Core::Div => x.try_div(xs[1])?,
            Core::Scale => x.scale(A::elem(-2.5)),
            Core::AddScalar => x.add_scalar(A::elem(0.75)),
            Core::Reshape => x.try_reshape(&[3, 2])?,
            Core::Permute => x.try_permute(&[2, 0, 1])?,
            Core::Transpose => x.transpose(),
            Core::BroadcastTo => x.try_broadcast_to(&[2, 3, 4])?,
            Core::SumTo => x.try_sum_to(&[3, 1])?,
            Core::SumAll => x.sum_all(),
            Core::PadNarrow => A::apply(
                &ops::PadNarrow {
                    axis: 1,
                    start: 1,
                    total: 5,
                },
                &[x],
            )?,
            Core::PadNarrowOnto => A::apply(
                &ops::PadNarrow {
                    axis: 1,
                    start: 1,
                    total: 5,
                },
                &[x, xs[1]],
            )?,
            Core::PadPair => A::apply(
                &ops::PadPair {
                    axis: 1,
                    total: 4,
                    starts: [1, 0],
                },
                &[x, xs[1]],
            )?,
            Core::FactorIntoMul => x.scale(A::elem(-2.5)).try_mul(xs[1])?.scale(A::elem(3.0)),
            Core::FactorIntoSquare => x.neg().square().scale(A::elem(-2.0)),
            Core::FactorIntoScaledMul => A::apply(&ops::ScaledMul(-1.5), &[x, xs[1]])?
                .neg()
                .scale(A::elem(0.5)),
            Core::FactorThroughSub => x.scale(A::elem(2.0)).try_sub(xs[1])?.scale(A::elem(-3.0)),
            Core::FactorsUnequal => {
                let z = x.scale(A::elem(2.0));
                z.scale(A::elem(3.0)).try_add(&z.neg())?.try_mul(x)?
            }
            Core::FactorsOpposite => {
                let z = x.scale(A::elem(-0.5));
                z.add_scalar(A::elem(1.0)).try_sub(&z.exp())?
            }
            Core::FactorsOntoWindow => {
                let n = x.shape()[0];
                let head = x.try_narrow(0, 0, n - 1)?.scale(A::elem(3.0));
                head.try_add(&x.try_narrow(0, 1, n - 1)?.neg())?
                    .try_mul(&head)?
            }
            // Recorded before `exp`, so swept after it: each product's term is added onto what
            // `exp` gathered for `x` (in one pass where the shapes allow).
            Core::ProductsOnto => {
                let product = x.try_mul(xs[1])?.scale(A::elem(3.0));
                let square = x.square();
                product
                    .try_add(&square)?
                    .try_add(&x.exp().scale(A::elem(-2.5)))?
            }
            Core::SumIntoProducts => {
                let s = x.try_mul(xs[1])?.scale(A::elem(0.5)).sum_all();
                x.try_add(xs[1])?.try_mul(&s)?
            }
            Core::SumThroughChain => {
                let chain = x.exp().scale(A::elem(2.0)).neg().add_scalar(A::elem(1.0));
                let s = chain.square().try_sub(&x.square())?.try_add(x)?.sum_all();
                x.try_mul(&s)?
            }
            Core::SumToIntoExp => x.try_mul(&x.exp().try_sum_to(&[1, 3])?)?,
            // A cotangent kept at `[3]` reaches an input of shape `[3]` that was broadcast to
            // `[2, 3]`: it must still be summed over the broadcast axis.
            Core::SumToIntoBroadcastSum => x
                .try_add(xs[1])?
                .try_sub(&xs[1].scale(A::elem(0.5)))?
                .try_sum_to(&[3])?,
            Core::SumsOntoWindow => {
                let n = x.shape()[0];
                let t = x.try_narrow(0, 1, n - 1)?.scale(A::elem(3.0)).sum_all();
                t.try_add(&x.sum_all())?
            }
            // The Rosenbrock function's two windows, `x[:-1]` and `x[1:]`.
            Core::WindowsPaired => {
                let n = x.shape()[0];
                let (head, tail) = (x.try_narrow(0, 0, n - 1)?, x.try_narrow(0, 1, n - 1)?);
                let a = tail.try_sub(&head.square())?;
                a.square()
                    .scale(A::elem(100.0))
                    .try_add(&head.add_scalar(A::elem(-1.0)).square())?
            }
            // `exp` is recorded first, so swept last: its term arrives onto the window.
            Core::WindowThenSum => {
                let n = x.shape()[0];
                let e = x.exp().sum_all();
                x.try_narrow(0, 1, n - 1)?.square().try_mul(&e)?
            }
            Core::SumThenWindow => {
                let n = x.shape()[0];
                let window = x.try_narrow(0, 0, n - 1)?;
                x.sin().sum_all().try_mul(&window)?
            }
            Core::WindowsAcrossAxes => {
                let (rows, cols) = (x.shape()[0], x.shape()[1]);
                let a = x.try_narrow(0, 1, rows - 1)?.square().sum_all();
                let b = x.try_narrow(1, 0, cols - 1)?.exp().sum_all();
                a.try_mul(&b)?
            }
            Core::WindowsOfIntermediate => {
                let n = x.shape()[0];
                let y = x.exp();
                y.try_narrow(0, 0, n - 1)?
                    .try_mul(&y.try_narrow(0, 1, n - 1)?)?
            }
        };
        Ok(if self.squared { y.square() } else { y })
    }
}

/// `sum_to(-1.5 a b, to)`.
fn mul_sum_to(to: &[usize]) -> ops::MulSumTo {
    ops::MulSumTo {
        c: -1.5,
        to: to.to_vec(),
    }
}

struct CoreRow {
    name: &'static str,
    op: Core,
    /// Sets of input shapes.
    shapes: &'static [&'static [&'static [usize]]],
    /// One `[lo, hi)` range per input.
    domains: &'static [(f64, f64)],
}

const ANY: (f64, f64) = (-2.0, 2.0);
const POSITIVE: (f64, f64) = (0.3, 2.5);
const ONE: &[&[&[usize]]] = &[&[&[]], &[&[5]], &[&[2, 3]]];
const TWO: &[&[&[usize]]] = &[
    &[&[2, 3], &[2, 3]],
    &[&[2, 3], &[3]],
    &[&[2, 1], &[1, 3]],
    &[&[], &[4]],
];
const THREE: &[&[&[usize]]] = &[
    &[&[2, 3], &[2, 3], &[2, 3]],
    &[&[2, 3], &[3], &[2, 1]],
    &[&[], &[4], &[4]],
    &[&[4], &[], &[1]],
];

#[rustfmt::skip]
const CORE: &[CoreRow] = &[
    CoreRow { name: "neg", op: Core::Neg, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "exp", op: Core::Exp, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "ln", op: Core::Ln, shapes: ONE, domains: &[POSITIVE] },
    CoreRow { name: "square", op: Core::Square, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "sigmoid", op: Core::Sigmoid, shapes: ONE, domains: &[(-4.0, 4.0)] },
    CoreRow { name: "add", op: Core::Add, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "sub", op: Core::Sub, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "mul", op: Core::Mul, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "scaled_mul", op: Core::ScaledMul, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "mul_add", op: Core::MulAdd, shapes: THREE, domains: &[ANY, ANY, ANY] },
    CoreRow { name: "mul_sum_to", op: Core::MulSumToAll, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "mul_sum_to rows", op: Core::MulSumToRows, shapes: &[&[&[2, 3], &[2, 3]], &[&[2, 3], &[3]], &[&[2, 1], &[1, 3]], &[&[4, 3], &[]]], domains: &[ANY, ANY] },
    CoreRow { name: "mul_sum_to blocks", op: Core::MulSumToBlocks, shapes: &[&[&[2, 3], &[2, 3]], &[&[2, 3], &[2, 1]], &[&[], &[2, 4]]], domains: &[ANY, ANY] },
    CoreRow { name: "div", op: Core::Div, shapes: TWO, domains: &[ANY, POSITIVE] },
    CoreRow { name: "scale", op: Core::Scale, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "add_scalar", op: Core::AddScalar, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "reshape", op: Core::Reshape, shapes: &[&[&[2, 3]]], domains: &[ANY] },
    CoreRow { name: "permute", op: Core::Permute, shapes: &[&[&[2, 3, 4]]], domains: &[ANY] },
    CoreRow { name: "transpose", op: Core::Transpose, shapes: &[&[&[3, 4]]], domains: &[ANY] },
    CoreRow { name: "broadcast_to", op: Core::BroadcastTo, shapes: &[&[&[3, 1]], &[&[4]]], domains: &[ANY] },
    CoreRow { name: "sum_to", op: Core::SumTo, shapes: &[&[&[2, 3, 4]], &[&[3, 4]]], domains: &[ANY] },
    CoreRow { name: "sum_all", op: Core::SumAll, shapes: &[&[&[2, 3]], &[&[]]], domains: &[ANY] },
    CoreRow { name: "pad_narrow", op: Core::PadNarrow, shapes: &[&[&[2, 2]], &[&[3, 4, 2]]], domains: &[ANY] },
    CoreRow { name: "pad_narrow onto", op: Core::PadNarrowOnto, shapes: &[&[&[2, 2], &[2, 5]], &[&[3, 4, 2], &[3, 5, 2]]], domains: &[ANY, ANY] },
    CoreRow { name: "pad_pair", op: Core::PadPair, shapes: &[&[&[2, 2], &[2, 3]], &[&[3, 3, 2], &[3, 1, 2]]], domains: &[ANY, ANY] },
    CoreRow { name: "factor into mul", op: Core::FactorIntoMul, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "factor into square", op: Core::FactorIntoSquare, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "factor into scaled_mul", op: Core::FactorIntoScaledMul, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "factor through sub", op: Core::FactorThroughSub, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "unequal factors gathered", op: Core::FactorsUnequal, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "opposite factors gathered", op: Core::FactorsOpposite, shapes: ONE, domains: &[ANY] },
    CoreRow { name: "factors onto a window", op: Core::FactorsOntoWindow, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "products onto a gathered sum", op: Core::ProductsOnto, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "a sum's cotangent into products", op: Core::SumIntoProducts, shapes: TWO, domains: &[ANY, ANY] },
    CoreRow { name: "a sum's cotangent through a chain", op: Core::SumThroughChain, shapes: ONE, domains: &[(-1.0, 1.0)] },
    CoreRow { name: "sum_to's cotangent into exp", op: Core::SumToIntoExp, shapes: &[&[&[2, 3]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "sums onto a window", op: Core::SumsOntoWindow, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "sum_to's cotangent into a broadcast sum", op: Core::SumToIntoBroadcastSum, shapes: &[&[&[2, 3], &[3]], &[&[4, 3], &[1, 3]]], domains: &[ANY, ANY] },
    CoreRow { name: "two windows paired", op: Core::WindowsPaired, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "a sum onto a window", op: Core::WindowThenSum, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "a window onto a sum", op: Core::SumThenWindow, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
    CoreRow { name: "windows across axes", op: Core::WindowsAcrossAxes, shapes: &[&[&[4, 3]], &[&[3, 2, 2]]], domains: &[ANY] },
    CoreRow { name: "windows of an intermediate", op: Core::WindowsOfIntermediate, shapes: &[&[&[5]], &[&[4, 3]]], domains: &[ANY] },
];

/// One tensor per input.
type Tensors = Vec<Tensor<f64>>;

/// Seeded inputs and directions `v` and `z` for one row and shape set.
fn core_point(r: usize, s: usize, row: &CoreRow) -> (Tensors, Tensors, Tensors) {
    let seed = 0xF0_0000 + 100 * r as u64 + 10 * s as u64;
    let shapes = row.shapes[s];
    let xs = shapes
        .iter()
        .zip(row.domains)
        .enumerate()
        .map(|(i, (sh, &(lo, hi)))| uniform(sh, lo, hi, seed + i as u64))
        .collect();
    let vs = shapes
        .iter()
        .enumerate()
        .map(|(i, sh)| uniform(sh, -1.0, 1.0, seed + 3 + i as u64))
        .collect();
    let zs = shapes
        .iter()
        .enumerate()
        .map(|(i, sh)| uniform(sh, -1.0, 1.0, seed + 6 + i as u64))
        .collect();
    (xs, vs, zs)
}

#[test]
fn core_operations_have_rows() {
    let names: Vec<&str> = CORE.iter().map(|r| r.name).collect();
    for op in [
        "neg",
        "exp",
        "ln",
        "square",
        "sigmoid",
        "add",
        "sub",
        "mul",
        "scaled_mul",
        "mul_add",
        "mul_sum_to",
        "div",
        "scale",
        "add_scalar",
        "reshape",
        "permute",
        "transpose",
        "broadcast_to",
        "sum_to",
        "sum_all",
        "pad_narrow",
        "pad_narrow onto",
    ] {
        assert!(names.contains(&op), "no row for {op}");
    }
}

#[test]
fn core_jvps_match_central_differences_and_the_vjps() {
    for (r, row) in CORE.iter().enumerate() {
        for s in 0..row.shapes.len() {
            let (xs, vs, _) = core_point(r, s, row);
            let f = CoreFn {
                op: row.op,
                squared: false,
            };
            let y = forward_support::value(&f, &xs);
            let u = uniform(y.shape(), -1.0, 1.0, 77 + r as u64);
            let what = format!("{} {:?}", row.name, row.shapes[s]);
            let active = vec![true; xs.len()];
            check_first_order(&what, &f, &xs, &active, &vs, &u, 1e-7);
        }
    }
}

#[test]
fn core_second_order_in_every_nesting_matches_central_differences() {
    for (r, row) in CORE.iter().enumerate() {
        for s in 0..row.shapes.len() {
            let (xs, vs, zs) = core_point(r, s, row);
            for squared in [false, true] {
                let f = CoreFn {
                    op: row.op,
                    squared,
                };
                let y = forward_support::value(&f, &xs);
                let u = uniform(y.shape(), -1.0, 1.0, 99 + r as u64);
                let what = format!("{} {:?} squared {squared}", row.name, row.shapes[s]);
                let active = vec![true; xs.len()];
                check_second_order(&what, &f, &xs, &active, &vs, &zs, &u, 1e-6);
            }
        }
    }
}

// ---- Hessians with closed forms --------------------------------------------------------------

/// The lecture's linear regression loss `L(w) = sum((y - X w)^2) / N`.
struct Mse {
    x: Tensor<f64>,
    y: Tensor<f64>,
}

impl TensorFn<f64> for Mse {
    fn call<A: Array<Elem = f64>>(&self, w: &A) -> Result<A, Error> {
        let n = self.x.shape()[0] as f64;
        let fit = w.constant_like(&self.x).try_matmul(w)?;
        let residual = w.constant_like(&self.y).try_sub(&fit)?;
        Ok(residual.square().sum_all().scale(A::elem(1.0 / n)))
    }
}

#[test]
fn the_mse_hessian_is_two_over_n_xt_x_in_every_nesting() {
    let (n, d) = (7, 3);
    let x = t(&values(n * d, 11), &[n, d]);
    let mse = Mse {
        x: x.clone(),
        y: t(&values(n, 12), &[n]),
    };
    // The exact Hessian, by the formula (its entries are sums of 7 products, so the autodiff
    // results, which form the same sums in other orders, agree to rounding).
    let exact = x.transpose().matmul(&x).scale(2.0 / n as f64);
    // A quadratic: the same Hessian at every w.
    for seed in [13, 14] {
        let w = t(&values(d, seed), &[d]);
        let nestings: [(&str, Tensor<f64>); 8] = [
            ("hessian", hessian(|w| mse.call(w), &w).unwrap()),
            ("Hessian", Hessian(&mse).call(&w).unwrap()),
            ("forward over reverse", JacFwd(Grad(&mse)).call(&w).unwrap()),
            ("reverse over reverse", JacRev(Grad(&mse)).call(&w).unwrap()),
            (
                "forward over forward",
                JacFwd(JacFwd(&mse)).call(&w).unwrap(),
            ),
            (
                "reverse over forward",
                JacRev(JacFwd(&mse)).call(&w).unwrap(),
            ),
            (
                "forward over jacrev",
                JacFwd(JacRev(&mse)).call(&w).unwrap(),
            ),
            (
                "reverse over jacrev",
                JacRev(JacRev(&mse)).call(&w).unwrap(),
            ),
        ];
        for (name, h) in &nestings {
            assert_all_close(name, h, &exact, 1e-12);
        }
        for mode in [Mode::Auto, Mode::Forward, Mode::Reverse] {
            let h = jacobian(&Grad(&mse), &w, mode).unwrap();
            assert_all_close(&format!("jacobian of grad, {mode:?}"), &h, &exact, 1e-12);
        }
        // H v without forming H.
        let v = t(&values(d, seed + 100), &[d]);
        let hv = hvp(|w| mse.call(w), &w, &v).unwrap();
        let want = t(&mat_vec(exact.as_slice(), v.as_slice()), &[d]);
        assert_all_close("hvp", &hv, &want, 1e-12);
    }
    // With w a column (3, 1), as the lecture writes it, the Hessian has shape (3, 1, 3, 1).
    let mse_column = Mse {
        x: x.clone(),
        y: t(&values(n, 12), &[n, 1]),
    };
    let h = Hessian(&mse_column)
        .call(&t(&values(d, 13), &[d, 1]))
        .unwrap();
    assert_eq!(h.shape(), &[3, 1, 3, 1]);
    assert_all_close("column w", &h.reshape(&[3, 3]).unwrap(), &exact, 1e-12);
}

/// The extended Rosenbrock function in the chained form the benchmarks write
/// (`benches/tensor.rs`): `sum_{i < n-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`.
struct ChainedRosenbrock;

impl TensorFn<f64> for ChainedRosenbrock {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        let n = x.shape()[0];
        let head = x.try_narrow(0, 0, n - 1)?;
        let tail = x.try_narrow(0, 1, n - 1)?;
        let a = tail.try_sub(&head.square())?;
        let b = head.neg().add_scalar(A::elem(1.0));
        Ok(a.square()
            .scale(A::elem(100.0))
            .try_add(&b.square())?
            .sum_all())
    }
}

/// `sum_{i = 1..n/2} 100 (x_{2i} - x_{2i-1}^2)^2 + (1 - x_{2i-1})^2` (1-based): independent
/// pairs, read as the columns of `x` reshaped to `(n/2, 2)`.
struct PairedRosenbrock;

impl TensorFn<f64> for PairedRosenbrock {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        let pairs = x.try_reshape(&[x.shape()[0] / 2, 2])?;
        let odd = pairs.try_narrow(1, 0, 1)?; // x_1, x_3, ...
        let even = pairs.try_narrow(1, 1, 1)?; // x_2, x_4, ...
        let a = even.try_sub(&odd.square())?;
        let b = odd.neg().add_scalar(A::elem(1.0));
        Ok(a.square()
            .scale(A::elem(100.0))
            .try_add(&b.square())?
            .sum_all())
    }
}

/// The chained form's Hessian by hand: tridiagonal, with
/// `H_ii = [i < n-1] (1200 x_i^2 - 400 x_{i+1} + 2) + [i > 0] 200` and
/// `H_{i,i+1} = H_{i+1,i} = -400 x_i`.
fn chained_rosenbrock_hessian(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        if i + 1 < n {
            h[i * n + i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
            h[i * n + i + 1] = -400.0 * x[i];
            h[(i + 1) * n + i] = -400.0 * x[i];
        }
        if i > 0 {
            h[i * n + i] += 200.0;
        }
    }
    h
}

/// The paired form's Hessian by hand: 2x2 blocks `[[1200 a^2 - 400 b + 2, -400 a], [-400 a,
/// 200]]` for each pair `(a, b) = (x_{2i-1}, x_{2i})`, zero elsewhere.
fn paired_rosenbrock_hessian(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut h = vec![0.0; n * n];
    for k in (0..n).step_by(2) {
        let (a, b) = (x[k], x[k + 1]);
        h[k * n + k] = 1200.0 * a * a - 400.0 * b + 2.0;
        h[k * n + k + 1] = -400.0 * a;
        h[(k + 1) * n + k] = -400.0 * a;
        h[(k + 1) * n + k + 1] = 200.0;
    }
    h
}

fn check_rosenbrock<F: TensorFn<f64>>(name: &str, f: &F, n: usize, exact: fn(&[f64]) -> Vec<f64>) {
    // At the minimum x = 1 every entry is a small integer, computed exactly: the chained form
    // has 802 and 1002 on the diagonal (200 in the last place), -400 beside it.
    let ones = Tensor::<f64>::ones(&[n]);
    assert_eq!(
        hessian(|x| f.call(x), &ones).unwrap().to_vec(),
        exact(ones.as_slice()),
        "{name} at the minimum"
    );
    assert_eq!(grad(|x| f.call(x), &ones).unwrap().to_vec(), vec![0.0; n]);
    for seed in [21, 22, 23] {
        let x = uniform(&[n], -1.5, 1.5, seed);
        let want = t(&exact(x.as_slice()), &[n, n]);
        let h = hessian(|x| f.call(x), &x).unwrap();
        assert_all_close(&format!("{name} hessian"), &h, &want, 1e-12);
        // The other nestings give the same matrix.
        let rr = JacRev(Grad(f)).call(&x).unwrap();
        assert_all_close(&format!("{name} reverse over reverse"), &rr, &want, 1e-12);
        let ff = JacFwd(JacFwd(f)).call(&x).unwrap();
        assert_all_close(&format!("{name} forward over forward"), &ff, &want, 1e-12);
        let rf = JacRev(JacFwd(f)).call(&x).unwrap();
        assert_all_close(&format!("{name} reverse over forward"), &rf, &want, 1e-12);
        // H v, without forming H, against the exact matrix times v.
        let v = uniform(&[n], -1.0, 1.0, seed + 50);
        let hv = hvp(|x| f.call(x), &x, &v).unwrap();
        let want_hv = t(&mat_vec(want.as_slice(), v.as_slice()), &[n]);
        assert_all_close(&format!("{name} hvp"), &hv, &want_hv, 1e-12);
    }
}

#[test]
fn the_chained_rosenbrock_hessian_is_the_tridiagonal_matrix() {
    check_rosenbrock(
        "chained",
        &ChainedRosenbrock,
        10,
        chained_rosenbrock_hessian,
    );
    // The exact values at the minimum, written out for n = 4.
    let h = hessian(|x| ChainedRosenbrock.call(x), &Tensor::ones(&[4])).unwrap();
    #[rustfmt::skip]
    let want = vec![
        802.0, -400.0, 0.0, 0.0,
        -400.0, 1002.0, -400.0, 0.0,
        0.0, -400.0, 1002.0, -400.0,
        0.0, 0.0, -400.0, 200.0,
    ];
    assert_eq!(h.to_vec(), want);
}

#[test]
fn the_paired_rosenbrock_hessian_is_block_diagonal() {
    check_rosenbrock("paired", &PairedRosenbrock, 8, paired_rosenbrock_hessian);
}

// ---- The lecture's network -------------------------------------------------------------------

/// The lecture's network on scalars (as `tensor_lecture.rs`): 2 inputs, 3 sigmoid hidden units,
/// one output; parameters `[W (3x2, row-major), b (3), w0 (3), c]`; loss
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

/// The same network with tensor operations, of a flat parameter vector of 13 elements.
struct Network {
    x: Tensor<f64>,
    sign: Tensor<f64>,
}

impl TensorFn<f64> for Network {
    fn call<A: Array<Elem = f64>>(&self, p: &A) -> Result<A, Error> {
        let w = p.try_narrow(0, 0, 6)?.try_reshape(&[3, 2])?;
        let b = p.try_narrow(0, 6, 3)?;
        let w0 = p.try_narrow(0, 9, 3)?;
        let c = p.try_narrow(0, 12, 1)?;
        let x = p.constant_like(&self.x);
        let hidden = x.try_matmul(&w.transpose())?.try_add(&b)?.sigmoid(); // (N, 3)
        let z = hidden.try_matmul(&w0)?.try_add(&c)?; // (N)
        let margin = z.try_mul(&p.constant_like(&self.sign))?;
        Ok(margin.sigmoid().ln().sum_all().neg())
    }
}

#[test]
fn the_lecture_network_hessian_matches_the_scalar_engine() {
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
    let net = Network {
        x: t(&xs.concat(), &[n, 2]),
        sign: Tensor::vector(&ys.iter().map(|y| 2.0 * y - 1.0).collect::<Vec<_>>()),
    };
    let p = Tensor::vector(&params);

    // Value and gradient first, against the scalar engine.
    let (value, scalar_grad) = perturb::gradient(|p| scalar_loss(p, &xs, &ys), &params);
    let (loss, g) = value_and_grad(|p| net.call(p), &p).unwrap();
    assert!((loss.item().unwrap() - value).abs() <= 1e-12 * value.abs());
    assert_all_close("gradient", &g, &Tensor::vector(&scalar_grad), 1e-12);

    // The scalar engine's Hessian (forward over reverse on scalars).
    let scalar_h: Vec<f64> = perturb::hessian(|p| scalar_loss(p, &xs, &ys), &params).concat();
    let scalar_h = t(&scalar_h, &[13, 13]);
    let h = Hessian(&net).call(&p).unwrap();
    assert_eq!(h.shape(), &[13, 13]);
    assert_all_close("tensor hessian against scalar", &h, &scalar_h, 1e-10);
    // Symmetric, and not trivially so: the network couples every pair of layers.
    let ht = h.transpose();
    assert_all_close("symmetry", &h, &ht, 1e-12);
    let off_diagonal = (0..13)
        .flat_map(|i| (0..13).map(move |j| (i, j)))
        .filter(|(i, j)| i != j && h.as_slice()[i * 13 + j].abs() > 1e-3)
        .count();
    assert!(
        off_diagonal > 100,
        "{off_diagonal} sizeable off-diagonal entries"
    );
    // Reverse over reverse gives the same matrix, and H v the scalar engine's H v.
    let rr = JacRev(Grad(&net)).call(&p).unwrap();
    assert_all_close("reverse over reverse", &rr, &scalar_h, 1e-10);
    let v = t(&values(13, 9), &[13]);
    let hv = hvp(|p| net.call(p), &p, &v).unwrap();
    let want = perturb::hvp(|p| scalar_loss(p, &xs, &ys), &params, v.as_slice()).unwrap();
    assert_all_close("hvp", &hv, &Tensor::vector(&want), 1e-10);
}

// ---- Jacobians ---------------------------------------------------------------------------------

/// `tanh(A x)`, A 4 x 3.
struct TanhAx {
    a: Tensor<f64>,
}

impl TensorFn<f64> for TanhAx {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.constant_like(&self.a).try_matmul(x)?.tanh())
    }
}

impl VectorFunction for TanhAx {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let n = self.a.shape()[1];
        self.a
            .as_slice()
            .chunks(n)
            .map(|row| {
                let mut s = S::zero();
                for (&aij, &xj) in row.iter().zip(x) {
                    s += S::from(aij).unwrap() * xj;
                }
                s.tanh()
            })
            .collect()
    }
}

/// `softmax(x)` of a vector.
struct Softmax;

impl TensorFn<f64> for Softmax {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        x.try_softmax(0)
    }
}

impl VectorFunction for Softmax {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let e: Vec<S> = x.iter().map(|&v| v.exp()).collect();
        let total = e.iter().fold(S::zero(), |a, &b| a + b);
        e.into_iter().map(|v| v / total).collect()
    }
}

/// `x * sum(x)`.
struct TimesSum;

impl TensorFn<f64> for TimesSum {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        x.try_mul(&x.sum_all())
    }
}

impl VectorFunction for TimesSum {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let total = x.iter().fold(S::zero(), |a, &b| a + b);
        x.iter().map(|&v| v * total).collect()
    }
}

/// `sigmoid(X B)` of a 2 x 3 matrix `X`, B 3 x 2: a 2-D input and a 2-D output.
struct SigmoidXb {
    b: Tensor<f64>,
}

impl TensorFn<f64> for SigmoidXb {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.try_matmul(&x.constant_like(&self.b))?.sigmoid())
    }
}

impl VectorFunction for SigmoidXb {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        let b = self.b.as_slice();
        let mut out = Vec::new();
        for i in 0..2 {
            for k in 0..2 {
                let mut s = S::zero();
                for j in 0..3 {
                    s += x[i * 3 + j] * S::from(b[j * 2 + k]).unwrap();
                }
                out.push(s.sigmoid());
            }
        }
        out
    }
}

/// `sum(x^2)`: one output element, so `Mode::Auto` runs reverse mode.
struct SumSquares;

impl TensorFn<f64> for SumSquares {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.square().sum_all())
    }
}

impl VectorFunction for SumSquares {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        vec![x.iter().fold(S::zero(), |a, &b| a + b * b)]
    }
}

/// `sin(c x)` of a 0-dimensional `x`, `c = [1, 2, 3]`: a Jacobian of shape `[3] ++ []`.
struct SinOfScalar;

impl TensorFn<f64> for SinOfScalar {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.constant_like(&Tensor::vector(&[1.0, 2.0, 3.0]))
            .try_mul(x)?
            .sin())
    }
}

impl VectorFunction for SinOfScalar {
    fn eval<S: Scalar>(&self, x: &[S]) -> Vec<S> {
        (1..=3)
            .map(|c| (S::from(c).unwrap() * x[0]).sin())
            .collect()
    }
}

/// Every way of computing the Jacobian of `f` at `x` agrees, with shape `out ++ in`, and with
/// `exact` (a closed form) where given.
fn check_jacobians<F: TensorFn<f64> + VectorFunction>(
    name: &str,
    f: &F,
    x: &Tensor<f64>,
    out_shape: &[usize],
    exact: Option<Tensor<f64>>,
) {
    let shape: Vec<usize> = out_shape.iter().chain(x.shape()).copied().collect();
    let fwd = jacfwd(|x| f.call(x), x).unwrap();
    let rev = jacrev(|x| f.call(x), x).unwrap();
    assert_eq!(fwd.shape(), &shape[..], "{name}: jacfwd shape");
    assert_eq!(rev.shape(), &shape[..], "{name}: jacrev shape");
    assert_all_close(&format!("{name}: jacfwd against jacrev"), &fwd, &rev, 1e-14);
    // The scalar engine's Jacobian (rows = flat outputs, columns = flat inputs) is the tensor
    // Jacobian flattened, in both of its modes.
    for mode in [Mode::Forward, Mode::Reverse] {
        let (_, rows) = perturb::jacobian(f, x.as_slice(), mode).unwrap();
        let scalar = t(&rows.concat(), &shape);
        assert_all_close(
            &format!("{name}: scalar engine {mode:?}"),
            &fwd,
            &scalar,
            1e-13,
        );
    }
    for mode in [Mode::Auto, Mode::Forward, Mode::Reverse] {
        let j = jacobian(f, x, mode).unwrap();
        assert_all_close(&format!("{name}: jacobian {mode:?}"), &j, &fwd, 1e-14);
        let j = Jacobian { f, mode }.call(x).unwrap();
        assert_all_close(&format!("{name}: Jacobian {mode:?}"), &j, &fwd, 1e-14);
    }
    assert_all_close(
        &format!("{name}: JacFwd"),
        &JacFwd(f).call(x).unwrap(),
        &fwd,
        0.0,
    );
    assert_all_close(
        &format!("{name}: JacRev"),
        &JacRev(f).call(x).unwrap(),
        &rev,
        0.0,
    );
    if let Some(exact) = exact {
        assert_all_close(&format!("{name}: closed form"), &fwd, &exact, 1e-14);
    }
}

#[test]
fn jacfwd_jacrev_jacobian_and_the_scalar_engine_agree() {
    // tanh(A x): J = diag(1 - tanh(A x)^2) A.
    let a = t(&values(12, 31), &[4, 3]);
    let x = t(&values(3, 32), &[3]);
    let y = a.matmul(&x).tanh();
    let exact: Vec<f64> = (0..4)
        .flat_map(|i| {
            let s = 1.0 - y.as_slice()[i] * y.as_slice()[i];
            a.as_slice()[3 * i..3 * i + 3]
                .iter()
                .map(move |aij| s * aij)
                .collect::<Vec<_>>()
        })
        .collect();
    check_jacobians(
        "tanh(A x)",
        &TanhAx { a },
        &x,
        &[4],
        Some(t(&exact, &[4, 3])),
    );

    // softmax: J = diag(p) - p p^T.
    let x = t(&values(5, 33), &[5]);
    let p = x.softmax(0).to_vec();
    let exact: Vec<f64> = (0..25)
        .map(|k| {
            let (i, j) = (k / 5, k % 5);
            p[i] * (if i == j { 1.0 } else { 0.0 }) - p[i] * p[j]
        })
        .collect();
    check_jacobians("softmax", &Softmax, &x, &[5], Some(t(&exact, &[5, 5])));

    // x * sum(x): J = sum(x) I + x 1^T.
    let x = t(&values(4, 34), &[4]);
    let s: f64 = x.as_slice().iter().sum();
    let exact: Vec<f64> = (0..16)
        .map(|k| {
            let (i, j) = (k / 4, k % 4);
            x.as_slice()[i] + if i == j { s } else { 0.0 }
        })
        .collect();
    check_jacobians("x * sum(x)", &TimesSum, &x, &[4], Some(t(&exact, &[4, 4])));

    // sigmoid(X B), X 2 x 3: J[i, k, i', j] = [i = i'] s'(Y_ik) B_jk, shape (2, 2, 2, 3).
    let b = t(&values(6, 35), &[3, 2]);
    let xm = t(&values(6, 36), &[2, 3]);
    let y = xm.matmul(&b).sigmoid();
    let mut exact = vec![0.0; 24];
    for i in 0..2 {
        for k in 0..2 {
            let yik = y.as_slice()[i * 2 + k];
            for j in 0..3 {
                exact[((i * 2 + k) * 2 + i) * 3 + j] = yik * (1.0 - yik) * b.as_slice()[j * 2 + k];
            }
        }
    }
    check_jacobians(
        "sigmoid(X B)",
        &SigmoidXb { b },
        &xm,
        &[2, 2],
        Some(t(&exact, &[2, 2, 2, 3])),
    );

    // sum(x^2): shape [] ++ [5], the gradient 2x.
    let x = t(&values(5, 37), &[5]);
    check_jacobians("sum(x^2)", &SumSquares, &x, &[], Some(x.scale(2.0)));

    // sin(c x) of a scalar: shape [3] ++ [], c cos(c x).
    let x0 = 0.3;
    let exact: Vec<f64> = (1..=3).map(|c| c as f64 * (c as f64 * x0).cos()).collect();
    check_jacobians(
        "sin(c x)",
        &SinOfScalar,
        &Tensor::scalar(x0),
        &[3],
        Some(t(&exact, &[3])),
    );
}

#[test]
fn jacobians_of_constant_functions_and_empty_inputs_have_the_right_shape() {
    // A function that ignores its input: zeros of shape out ++ in, by both modes.
    let c = t(&[1.0, 2.0], &[2]);
    let x = t(&[0.5, 0.25, 0.125], &[3]);
    let fwd = jacfwd(|x| Ok(x.constant_like(&c)), &x).unwrap();
    let rev = jacrev(|x| Ok(x.constant_like(&c)), &x).unwrap();
    for j in [&fwd, &rev] {
        assert_eq!(j.shape(), &[2, 3]);
        assert!(j.to_vec().iter().all(|&v| v == 0.0));
    }
    // An input with no elements: a Jacobian with no columns.
    let empty = Tensor::<f64>::zeros(&[0]);
    let fwd = jacfwd(|x| Ok(x.exp()), &empty).unwrap();
    let rev = jacrev(|x| Ok(x.exp()), &empty).unwrap();
    assert_eq!((fwd.shape(), rev.shape()), (&[0, 0][..], &[0, 0][..]));
    let fwd = jacfwd(|x| Ok(x.sum_all().add_scalar(1.0)), &empty).unwrap();
    assert_eq!(fwd.shape(), &[0]);
}

// ---- Higher orders ---------------------------------------------------------------------------

/// `sum(sin(x))`.
struct SumSin;

impl TensorFn<f64> for SumSin {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.sin().sum_all())
    }
}

/// `exp(x^2)`, element-wise (one element for the scalars used here).
struct ExpSquare;

impl TensorFn<f64> for ExpSquare {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.square().exp())
    }
}

/// `exp(x^2)` and its first four derivatives, by hand: with `e = exp(x^2)`,
/// `f' = 2x e`, `f'' = (2 + 4x^2) e`, `f''' = (12x + 8x^3) e`, `f'''' = (12 + 48x^2 + 16x^4) e`.
fn exp_square_derivatives(x: f64) -> [f64; 5] {
    let e = (x * x).exp();
    [
        e,
        2.0 * x * e,
        (2.0 + 4.0 * x * x) * e,
        (12.0 * x + 8.0 * x.powi(3)) * e,
        (12.0 + 48.0 * x * x + 16.0 * x.powi(4)) * e,
    ]
}

fn scalar_of(t: Tensor<f64>) -> f64 {
    assert_eq!(t.shape(), &[] as &[usize], "a 0-dimensional result");
    t.item().unwrap()
}

#[track_caller]
fn assert_rel(what: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn nested_grad_gives_the_third_and_fourth_derivatives() {
    for x0 in [0.7, -1.3] {
        let x = Tensor::scalar(x0);
        // sin: -cos and sin at orders 3 and 4.
        let d3 = scalar_of(Grad(Grad(Grad(SumSin))).call(&x).unwrap());
        assert_rel("sin'''", d3, -x0.cos(), 1e-15);
        let d4 = scalar_of(Grad(Grad(Grad(Grad(SumSin)))).call(&x).unwrap());
        assert_rel("sin''''", d4, x0.sin(), 1e-15);

        let want = exp_square_derivatives(x0);
        let d = [
            scalar_of(Grad(ExpSquare).call(&x).unwrap()),
            scalar_of(Grad(Grad(ExpSquare)).call(&x).unwrap()),
            scalar_of(Grad(Grad(Grad(ExpSquare))).call(&x).unwrap()),
            scalar_of(Grad(Grad(Grad(Grad(ExpSquare)))).call(&x).unwrap()),
        ];
        for (k, (&got, &w)) in d.iter().zip(&want[1..]).enumerate() {
            assert_rel(&format!("exp(x^2) order {} by Grad", k + 1), got, w, 1e-14);
        }
        // The same to order 4 through every mode: forward only, and alternating.
        let forward = JacFwd(JacFwd(JacFwd(JacFwd(ExpSquare))));
        assert_rel(
            "order 4 forward",
            scalar_of(forward.call(&x).unwrap()),
            want[4],
            1e-14,
        );
        let reverse = JacRev(JacRev(JacRev(JacRev(ExpSquare))));
        assert_rel(
            "order 4 reverse",
            scalar_of(reverse.call(&x).unwrap()),
            want[4],
            1e-14,
        );
        let mixed = Grad(JacFwd(Grad(JacFwd(ExpSquare))));
        assert_rel(
            "order 4 mixed",
            scalar_of(mixed.call(&x).unwrap()),
            want[4],
            1e-14,
        );
        let mixed = JacFwd(JacRev(JacFwd(JacRev(ExpSquare))));
        assert_rel(
            "order 4 mixed",
            scalar_of(mixed.call(&x).unwrap()),
            want[4],
            1e-14,
        );
        // Order 3 as the Hessian of the derivative.
        let h = Hessian(JacFwd(ExpSquare)).call(&x).unwrap();
        assert_rel("order 3 by Hessian", scalar_of(h), want[3], 1e-14);
    }
}

// ---- Perturbation confusion ------------------------------------------------------------------

// d/dx [x * d/dy (x + y)] at x = 3, y = 5 is 1: the inner derivative is 1 whatever x is. An
// implementation that let the inner derivative see the outer perturbation of x would give 2.

#[test]
fn perturbation_confusion_forward_over_forward() {
    let x0 = Tensor::scalar(3.0_f64);
    let (value, d) = jvp(
        |x: &DualTensor<Tensor<f64>>| {
            let (_, inner) = jvp(
                |y: &DualTensor<DualTensor<Tensor<f64>>>| {
                    DualTensor::constant(x.clone()).try_add(y)
                },
                &DualTensor::lift(Tensor::scalar(5.0)),
                &DualTensor::lift(Tensor::scalar(1.0)),
            )?;
            x.try_mul(&inner)
        },
        &x0,
        &Tensor::scalar(1.0),
    )
    .unwrap();
    assert_eq!((value.to_vec(), d.to_vec()), (vec![3.0], vec![1.0]));
}

#[test]
fn perturbation_confusion_reverse_over_reverse() {
    let d = grad(
        |x| {
            let inner = grad(
                |y| TensorVar::constant(x.clone()).try_add(y),
                &TensorVar::constant(Tensor::scalar(5.0)),
            )?;
            x.try_mul(&inner)
        },
        &Tensor::scalar(3.0_f64),
    )
    .unwrap();
    assert_eq!(d.to_vec(), vec![1.0]);
}

#[test]
fn perturbation_confusion_forward_over_reverse_and_reverse_over_forward() {
    let x0 = Tensor::scalar(3.0_f64);
    let (_, d) = jvp(
        |x: &DualTensor<Tensor<f64>>| {
            let inner = grad(
                |y| TensorVar::constant(x.clone()).try_add(y),
                &DualTensor::lift(Tensor::scalar(5.0)),
            )?;
            x.try_mul(&inner)
        },
        &x0,
        &Tensor::scalar(1.0),
    )
    .unwrap();
    assert_eq!(d.to_vec(), vec![1.0], "forward over reverse");

    let d = grad(
        |x| {
            let (_, inner) = jvp(
                |y| DualTensor::constant(x.clone()).try_add(y),
                &TensorVar::constant(Tensor::scalar(5.0)),
                &TensorVar::constant(Tensor::scalar(1.0)),
            )?;
            x.try_mul(&inner)
        },
        &x0,
    )
    .unwrap();
    assert_eq!(d.to_vec(), vec![1.0], "reverse over forward");

    // An inner derivative that does depend on x: d/dx [x * d/dy (x y)] = d/dx x^2 = 2x = 6.
    let (_, d) = jvp(
        |x: &DualTensor<Tensor<f64>>| {
            let (_, inner) = jvp(
                |y: &DualTensor<DualTensor<Tensor<f64>>>| {
                    DualTensor::constant(x.clone()).try_mul(y)
                },
                &DualTensor::lift(Tensor::scalar(5.0)),
                &DualTensor::lift(Tensor::scalar(1.0)),
            )?;
            x.try_mul(&inner)
        },
        &x0,
        &Tensor::scalar(1.0),
    )
    .unwrap();
    assert_eq!(d.to_vec(), vec![6.0], "forward over forward, x y");
}

/// The tensor version: `f(x) = x * grad_y [sum(x y) + sum(y^2) / 2]` at `y0`, which is
/// `x * (x + y0)`, so its Jacobian is `diag(2 x + y0)`. Confusing the levels would add the
/// outer perturbation of `x` to the inner gradient.
#[test]
fn perturbation_confusion_with_tensors_in_every_nesting() {
    let x0 = t(&[0.5, -1.25, 2.0], &[3]);
    let y0 = t(&[1.0, 0.25, -3.0], &[3]);
    let diag: Vec<f64> = x0
        .as_slice()
        .iter()
        .zip(y0.as_slice())
        .map(|(x, y)| 2.0 * x + y)
        .collect();
    let mut exact = vec![0.0; 9];
    for i in 0..3 {
        exact[i * 4] = diag[i];
    }
    let exact = t(&exact, &[3, 3]);

    fn inner<A: Array<Elem = f64>>(x: &A, y: &A) -> Result<A, Error> {
        let half_square = y.square().sum_all().scale(A::elem(0.5));
        x.try_mul(y)?.sum_all().try_add(&half_square)
    }

    // Forward over reverse.
    let j = jacfwd(
        |x| {
            let g = grad(
                |y| inner(&TensorVar::constant(x.clone()), y),
                &x.constant_like(&y0),
            )?;
            x.try_mul(&g)
        },
        &x0,
    )
    .unwrap();
    assert_all_close("forward over reverse", &j, &exact, 1e-15);
    // Reverse over reverse.
    let j = jacrev(
        |x| {
            let g = grad(
                |y| inner(&TensorVar::constant(x.clone()), y),
                &x.constant_like(&y0),
            )?;
            x.try_mul(&g)
        },
        &x0,
    )
    .unwrap();
    assert_all_close("reverse over reverse", &j, &exact, 1e-15);
    // Forward over forward: the inner gradient by jacfwd.
    let j = jacfwd(
        |x| {
            let g = jacfwd(
                |y| inner(&DualTensor::constant(Batched::single(x.clone())), y),
                &x.constant_like(&y0),
            )?;
            x.try_mul(&g)
        },
        &x0,
    )
    .unwrap();
    assert_all_close("forward over forward", &j, &exact, 1e-15);
    // Reverse over forward.
    let j = jacrev(
        |x| {
            let g = jacfwd(
                |y| inner(&DualTensor::constant(Batched::single(x.clone())), y),
                &x.constant_like(&y0),
            )?;
            x.try_mul(&g)
        },
        &x0,
    )
    .unwrap();
    assert_all_close("reverse over forward", &j, &exact, 1e-15);
}

// ---- Errors ------------------------------------------------------------------------------------

#[test]
fn stacks_of_different_sizes_are_an_error_naming_the_operation() {
    let a = Batched::stack(Tensor::<f64>::zeros(&[2, 3]));
    let b = Batched::stack(Tensor::<f64>::zeros(&[4, 3]));
    let err = a.try_add(&b).unwrap_err().to_string();
    assert!(
        err.contains("add") && err.contains('2') && err.contains('4'),
        "{err}"
    );
    // A scalar has no axis to stack along.
    assert!(Batched::try_stack(Tensor::scalar(1.0_f64)).is_err());
    // A single value is not a stack; it repeats to any size.
    let one = Batched::single(Tensor::vector(&[1.0_f64, 2.0]));
    assert!(one.clone().into_stack().is_err());
    assert_eq!(one.into_stack_of(2).unwrap().shape(), &[2, 2]);
    // Shape errors inside a batched pass name the operation and the shapes one member sees.
    let m = Tensor::<f64>::zeros(&[2, 2]);
    let err = jacfwd(|x| x.constant_like(&m).try_matmul(x), &Tensor::zeros(&[3]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("matmul") && err.contains("[2, 2]") && err.contains("[3]"),
        "{err}"
    );
}

#[test]
fn a_tangent_of_the_wrong_shape_is_an_error_naming_jvp_and_both_shapes() {
    let x = Tensor::<f64>::zeros(&[2]);
    let err = jvp(|x| Ok(x.exp()), &x, &Tensor::zeros(&[3])).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "jvp",
            lhs: vec![2],
            rhs: vec![3],
        }
    );
    assert_eq!(err.to_string(), "jvp: shapes [2] and [3] do not match");
    // The same through hvp, which pushes the direction forward.
    let err = hvp(|x| Ok(x.square().sum_all()), &x, &Tensor::zeros(&[2, 1])).unwrap_err();
    let m = err.to_string();
    assert!(m.contains("[2]") && m.contains("[2, 1]"), "{m}");
    // A dual tensor built by hand.
    let err = DualTensor::try_new(x.clone(), Tensor::zeros(&[1, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "DualTensor::new: shapes [2] and [1, 2] do not match"
    );
}

#[test]
fn grad_of_a_function_with_several_output_elements_is_an_error_naming_grad() {
    let x = Tensor::vector(&[1.0_f64, 2.0]);
    let err = grad(|x| Ok(x.exp()), &x).unwrap_err();
    assert_eq!(
        err,
        Error::NotAScalar {
            op: "grad",
            shape: vec![2],
        }
    );
    let m = err.to_string();
    assert!(m.starts_with("grad: ") && m.contains("[2]"), "{m}");
    assert!(value_and_grad(|x| Ok(x.exp()), &x).is_err());
    // Through the combinators and the Hessian.
    struct Exp;
    impl TensorFn<f64> for Exp {
        fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
            Ok(x.exp())
        }
    }
    assert!(matches!(
        Grad(Exp).call(&x),
        Err(Error::NotAScalar { op: "grad", .. })
    ));
    assert!(matches!(
        Hessian(Exp).call(&x),
        Err(Error::NotAScalar { op: "grad", .. })
    ));
    assert!(matches!(
        hessian(|x| Ok(x.exp()), &x),
        Err(Error::NotAScalar { op: "grad", .. })
    ));
    // A one-element output of any shape is fine.
    let g = grad(|x| x.sum_all().try_reshape(&[1, 1]), &x).unwrap();
    assert_eq!(g.to_vec(), vec![1.0, 1.0]);
}

/// `x^2` with a JVP that returns a tangent of the wrong shape.
#[derive(Clone, Debug)]
struct BadShape;

impl Op for BadShape {
    fn name(&self) -> &'static str {
        "bad_shape"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(x[0].map(|v| v * v))
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        Ok(Some(t.try_mul(x[0])?.sum_all()))
    }
}

#[test]
fn errors_inside_forward_mode_name_the_operation() {
    // A rule that returns a tangent of the wrong shape.
    let x = Tensor::vector(&[1.0_f64, 2.0]);
    let err = jvp(|x| x.apply_op(&BadShape), &x, &Tensor::ones(&[2])).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "bad_shape",
            lhs: vec![2],
            rhs: vec![],
        }
    );
    // The same rule inside hvp, which pushes tangents forward only where the sweep reads them
    // (here `square` reads the rule's output).
    let err = hvp(
        |x| Ok(x.apply_op(&BadShape)?.square().sum_all()),
        &x,
        &Tensor::ones(&[2]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "bad_shape",
            lhs: vec![2],
            rhs: vec![],
        }
    );
    // Shapes that do not broadcast, on dual tensors.
    let a = DualTensor::new(Tensor::<f64>::zeros(&[2, 3]), Tensor::zeros(&[2, 3]));
    let b = DualTensor::constant(Tensor::<f64>::zeros(&[4]));
    let err = a.try_add(&b).unwrap_err();
    assert_eq!(err.to_string(), "add: shapes [2, 3] and [4] do not match");
    // ... and inside the transforms.
    let m = Tensor::<f64>::zeros(&[3, 4]);
    let err = jacfwd(|x| x.constant_like(&m).try_matmul(x), &x).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "matmul", .. }),
        "{err}"
    );
    let err = jacrev(|x| x.constant_like(&m).try_matmul(x), &x).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { op: "matmul", .. }),
        "{err}"
    );
    // A cotangent of the wrong shape.
    let err = vjp(|x| Ok(x.exp()), &x, &Tensor::ones(&[3])).unwrap_err();
    assert!(err.to_string().starts_with("TensorTape::vjp: "), "{err}");
}

// ---- The checks catch wrong rules ------------------------------------------------------------

/// `a * b` with a JVP that drops the second input's term (the VJP is right).
#[derive(Clone, Debug)]
struct DropsATerm;

impl Op for DropsATerm {
    fn name(&self) -> &'static str {
        "drops_a_term"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        ops::Mul.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| t.try_mul(x[1])).transpose()
    }
    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, n: &[bool]) -> Result<Vec<Option<A>>, Error> {
        ops::Mul.vjp(x, y, ct, n)
    }
}

/// `sin` with a JVP off by a relative 1e-9: within any finite-difference tolerance, but not
/// the transpose of the (right) VJP.
#[derive(Clone, Debug)]
struct SlightlyOff;

impl Op for SlightlyOff {
    fn name(&self) -> &'static str {
        "slightly_off"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        ops::Sin.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| Ok(t.try_mul(&x[0].cos())?.scale(A::elem(1.0 + 1e-9))))
            .transpose()
    }
    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, n: &[bool]) -> Result<Vec<Option<A>>, Error> {
        ops::Sin.vjp(x, y, ct, n)
    }
}

/// `sin` whose JVP takes its slope `cos(x)` as a plain constant: right at first order, but
/// the slope is not differentiated, so every second-order nesting through the JVP is wrong (the
/// VJP, the transposed JVP, too).
#[derive(Clone, Debug)]
struct ConstantSlope;

impl Op for ConstantSlope {
    fn name(&self) -> &'static str {
        "constant_slope"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        ops::Sin.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let slope = A::lift(x[0].primal().cos());
        t[0].map(|t| t.try_mul(&slope)).transpose()
    }
}

/// `sin` with a right JVP and a VJP whose slope is a plain constant: only forward over
/// reverse (which differentiates the VJP) can see it.
#[derive(Clone, Debug)]
struct ConstantVjpSlope;

impl Op for ConstantVjpSlope {
    fn name(&self) -> &'static str {
        "constant_vjp_slope"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        ops::Sin.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        ops::Sin.jvp(x, y, t)
    }
    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_mul(&A::lift(x[0].primal().cos()))?)])
    }
}

struct Apply<O>(O);

impl<O: Op> Function for Apply<O> {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        A::apply(&self.0, xs)
    }
}

/// The message of the panic `f` raises (it must raise one).
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the check should have failed");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn the_checks_fail_on_wrong_rules() {
    let xs = [
        uniform(&[2, 3], -2.0, 2.0, 41),
        uniform(&[3], -2.0, 2.0, 42),
    ];
    let vs = [
        uniform(&[2, 3], -1.0, 1.0, 43),
        uniform(&[3], -1.0, 1.0, 44),
    ];
    let zs = [
        uniform(&[2, 3], -1.0, 1.0, 45),
        uniform(&[3], -1.0, 1.0, 46),
    ];
    let u = uniform(&[2, 3], -1.0, 1.0, 47);
    let both = [true, true];

    // The reference rules pass.
    check_first_order("mul", &Apply(ops::Mul), &xs, &both, &vs, &u, 1e-7);
    check_second_order("mul", &Apply(ops::Mul), &xs, &both, &vs, &zs, &u, 1e-6);
    check_first_order("sin", &Apply(ops::Sin), &xs[..1], &[true], &vs, &u, 1e-7);
    check_second_order(
        "sin",
        &Apply(ops::Sin),
        &xs[..1],
        &[true],
        &vs,
        &zs,
        &u,
        1e-6,
    );

    // A dropped term: J v is wrong against the central difference.
    let m =
        panic_message(|| check_first_order("drop", &Apply(DropsATerm), &xs, &both, &vs, &u, 1e-7));
    assert!(m.contains("J v against a central difference"), "{m}");

    // A JVP off by 1e-9: only the transpose check sees it.
    let m = panic_message(|| {
        check_first_order("off", &Apply(SlightlyOff), &xs[..1], &[true], &vs, &u, 1e-7)
    });
    assert!(m.contains("<u, J v> against <J^T u, v>"), "{m}");

    // An undifferentiated slope: first order passes, second order fails.
    check_first_order(
        "const",
        &Apply(ConstantSlope),
        &xs[..1],
        &[true],
        &vs,
        &u,
        1e-7,
    );
    let m = panic_message(|| {
        check_second_order(
            "const",
            &Apply(ConstantSlope),
            &xs[..1],
            &[true],
            &vs,
            &zs,
            &u,
            1e-6,
        )
    });
    assert!(m.contains("forward over reverse"), "{m}");

    // An undifferentiated slope in the VJP alone: forward over reverse sees it.
    check_first_order(
        "vjp",
        &Apply(ConstantVjpSlope),
        &xs[..1],
        &[true],
        &vs,
        &u,
        1e-7,
    );
    let m = panic_message(|| {
        check_second_order(
            "vjp",
            &Apply(ConstantVjpSlope),
            &xs[..1],
            &[true],
            &vs,
            &zs,
            &u,
            1e-6,
        )
    });
    assert!(m.contains("forward over reverse"), "{m}");
}

/// `sin` with a right VJP and a JVP whose slope `cos(x)` is a plain constant: right at first
/// order, and forward over reverse (which runs the VJP) is right too, but reverse over forward
/// and forward over forward differentiate the JVP and miss the second-order term.
#[derive(Clone, Debug)]
struct ConstantJvpSlope;

impl Op for ConstantJvpSlope {
    fn name(&self) -> &'static str {
        "constant_jvp_slope"
    }
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        ops::Sin.eval(x)
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let slope = A::lift(x[0].primal().cos());
        t[0].map(|t| t.try_mul(&slope)).transpose()
    }
    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, n: &[bool]) -> Result<Vec<Option<A>>, Error> {
        ops::Sin.vjp(x, y, ct, n)
    }
}

#[test]
fn a_wrong_jvp_with_a_right_vjp_fails_the_nestings_through_the_jvp() {
    let xs = [uniform(&[5], -2.0, 2.0, 51)];
    let vs = [uniform(&[5], -1.0, 1.0, 52)];
    let zs = [uniform(&[5], -1.0, 1.0, 53)];
    let u = uniform(&[5], -1.0, 1.0, 54);
    let f = Apply(ConstantJvpSlope);
    check_first_order("jvp", &f, &xs, &[true], &vs, &u, 1e-7);
    // Forward over reverse runs the VJP (right); reverse over forward runs the JVP on tape
    // variables, whose constant slope drops the second-order term.
    let fwd_rev = forward_support::jvp_of_vjp(&f, &xs, &[true], &u, &vs);
    let rev_fwd = forward_support::vjp_of_jvp(&f, &xs, &[true], &vs, &u);
    assert!(!fwd_rev[0].all_close(&rev_fwd[0], 1e-6));
    let m = panic_message(|| check_second_order("jvp", &f, &xs, &[true], &vs, &zs, &u, 1e-6));
    assert!(m.contains("reverse over forward"), "{m}");
    // Forward over forward finds no second-order term at all (the slope is a constant), where
    // the true one is -sin(x) v z.
    let (_, fwd_fwd) = forward_support::jvp_of_jvp(&f, &xs, &[true], &vs, &zs);
    assert!(fwd_fwd.to_vec().iter().all(|&d| d == 0.0));
}

// ---- Jacobians without the identity written out -----------------------------------------------

/// Functions through every operation that `jacfwd` and `jacrev` run on the identity's diagonal
/// alone (negation, scaling, a product with a value, sums of two such stacks, reshapes, matrix
/// products on either side, as vectors, columns and rows) and some that must write the stack
/// out (a value of a larger shape, `exp`, a sum).
fn basis_case<A: Array<Elem = f64>>(case: usize, x: &A) -> Result<A, Error> {
    let k = x.shape()[0];
    let m = x.constant_like(&t(&values(3 * k, 41), &[3, k]));
    let m2 = x.constant_like(&t(&values(2 * k, 42), &[k, 2]));
    let u = x.constant_like(&t(&values(k, 43), &[k]));
    let u2 = x.constant_like(&t(&values(2 * k, 44), &[2, k]));
    Ok(match case {
        0 => x.neg().scale(3.0),
        1 => x.try_mul(&u)?.try_add(x)?,
        2 => u.try_mul(x)?.try_sub(&x.square())?,
        3 => m.try_matmul(x)?.tanh(),
        4 => x.try_matmul(&m2)?,
        5 => m.try_matmul(&x.try_reshape(&[k, 1])?)?,
        6 => x.try_reshape(&[1, k])?.try_matmul(&m2)?,
        7 => x.try_mul(&u2)?,
        8 => x.exp().try_mul(&u)?,
        _ => m.try_matmul(&x.sin())?.sum_all().try_mul(x)?,
    })
}

#[test]
fn jacobians_from_the_identity_diagonal_equal_those_from_the_full_identity() {
    let k = 4;
    let x = t(&values(k, 40), &[k]);
    let eye = |n: usize| {
        let mut e = vec![0.0; n * n];
        e.iter_mut().step_by(n + 1).for_each(|v| *v = 1.0);
        t(&e, &[n, n])
    };
    for case in 0..10 {
        let y = basis_case(case, &x).unwrap();
        let out = y.shape().to_vec();
        let n_out: usize = out.iter().product();
        let shape: Vec<usize> = out.iter().chain(x.shape()).copied().collect();

        // The full identity as a stack of tangents: one column of the Jacobian per member.
        let (_, columns) = jvp(
            |d| basis_case(case, d),
            &Batched::single(x.clone()),
            &Batched::stack(eye(k)),
        )
        .unwrap();
        let perm: Vec<usize> = (1..=out.len()).chain([0]).collect();
        let dense_fwd = columns
            .into_stack()
            .unwrap()
            .try_permute(&perm)
            .unwrap()
            .reshape(&shape)
            .unwrap();
        let fwd = jacfwd(|d| basis_case(case, d), &x).unwrap();
        assert_all_close(&format!("case {case}: jacfwd"), &fwd, &dense_fwd, 1e-15);

        // The full identity as a stack of cotangents: one row per member.
        let seeds = Batched::stack(eye(n_out).reshape(&[&[n_out][..], &out].concat()).unwrap());
        let (_, rows) = vjp(|v| basis_case(case, v), &Batched::single(x.clone()), &seeds).unwrap();
        let dense_rev = rows.into_stack().unwrap().reshape(&shape).unwrap();
        let rev = jacrev(|v| basis_case(case, v), &x).unwrap();
        assert_all_close(&format!("case {case}: jacrev"), &rev, &dense_rev, 1e-15);
        assert_all_close(
            &format!("case {case}: jacfwd and jacrev"),
            &fwd,
            &rev,
            1e-14,
        );
    }
}

#[test]
fn zeros_off_the_diagonal_stay_zero_against_an_infinite_factor() {
    // d/dx (x * u) with u = [2, inf]: the diagonal is u; the zeros beside the infinite element
    // are exact zeros (JAX's symbolic zeros), not 0 * inf = NaN.
    let u = t(&[2.0, f64::INFINITY], &[2]);
    let x = t(&[0.5, 0.25], &[2]);
    let j = jacfwd(|d| d.try_mul(&d.constant_like(&u)), &x).unwrap();
    assert_eq!(j.to_vec(), vec![2.0, 0.0, 0.0, f64::INFINITY]);
}
