//! `Deferred` arrays of plain tensors run chains of element-wise operations fused: the values
//! equal the unfused operations' bit for bit, each operation runs once per block and never
//! twice (shared subexpressions, regions cut at their size limit), an operation whose kernel
//! refuses reports its own error, deep chains do not exhaust the stack, and the transforms on
//! deferred arrays (gradient, forward mode, `hvp`) give the plain arrays' results.

use std::cell::Cell;

use perturb::tensor::fusion::Operand;
use perturb::tensor::{grad, hvp, jvp, ops, Array, Deferred, Element, Op, Tensor};
use perturb::Error;

// The benchmarks' Rosenbrock function (`common::rosenbrock`).
const GROUP_SUFFIX: &str = "";
#[path = "../benches/suites/common.rs"]
#[allow(dead_code)]
mod common;
use common::rosenbrock;

/// 1,000 elements: two blocks of a chain, the second short. Below the default
/// `fusion::min_len`: each test sets it to `MIN_LEN` first (all tests of this file set the same).
const N: usize = 1000;
const MIN_LEN: usize = 64;

fn fuse_from_64() {
    perturb::tensor::fusion::set_min_len(MIN_LEN);
}

fn point(n: usize, seed: f64) -> Tensor<f64> {
    Tensor::from_vec(
        (0..n)
            .map(|i| (seed * (i as f64 + 1.0)).sin() * 1.5)
            .collect(),
        &[n],
    )
    .unwrap()
}

fn bits(x: &Tensor<f64>) -> Vec<u64> {
    x.as_slice().iter().map(|v| v.to_bits()).collect()
}

thread_local! {
    /// Elements computed by `Counted`, fused (in blocks) and unfused (by `eval`).
    static FUSED: Cell<usize> = const { Cell::new(0) };
    static UNFUSED: Cell<usize> = const { Cell::new(0) };
}

/// `x / 2 + 1/4`, counting the elements it computes; a block kernel of one element is the
/// question whether it has one, not counted.
#[derive(Clone, Debug)]
struct Counted;

impl Op for Counted {
    fn name(&self) -> &'static str {
        "counted"
    }
    const ELEMENTWISE: bool = true;
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        UNFUSED.with(|c| c.set(c.get() + x[0].len()));
        Ok(x[0].map(|v| v * T::from_f64(0.5).unwrap() + T::from_f64(0.25).unwrap()))
    }
    fn eval_block<T: Element>(&self, x: &[Operand<'_, T>], out: &mut [T]) -> bool {
        let [Operand::Slice(x)] = x else { return false };
        if out.len() > 1 {
            FUSED.with(|c| c.set(c.get() + out.len()));
        }
        for (o, &v) in out.iter_mut().zip(*x) {
            *o = v * T::from_f64(0.5).unwrap() + T::from_f64(0.25).unwrap();
        }
        true
    }
    fn output_shape(&self, x: &[&[usize]]) -> Option<Vec<usize>> {
        Some(x[0].to_vec())
    }
    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].map(|t| t.scale(A::elem(0.5))))
    }
}

fn counts() -> (usize, usize) {
    (FUSED.with(Cell::take), UNFUSED.with(Cell::take))
}

/// Element-wise operations of every kind a chain takes: unary, binary, with a 0-d and a
/// one-element operand, scaled products and `mul_add`, the exponential family.
fn mixed<A: Array>(x: &A, y: &A, c: &A, one: &A) -> Result<A, Error> {
    let a = x.exp().try_mul(y)?.add_scalar(A::elem(0.5));
    let b = A::apply(&ops::ScaledMul(-2.0), &[&a, x])?.try_sub(c)?;
    let d = A::apply(&ops::MulAdd(0.25), &[&b, &a, y])?.sigmoid();
    d.try_div(&x.square().add_scalar(A::elem(1.0)))?
        .try_mul(one)?
        .tanh()
        .try_add(&b.scale(A::elem(1e-3)))
}

#[test]
fn fused_values_equal_the_unfused_operations_bit_for_bit() {
    fuse_from_64();
    let (x, y) = (point(N, 0.37), point(N, 1.91));
    let (c, one) = (
        Tensor::scalar(0.125),
        Tensor::from_vec(vec![-1.5], &[1]).unwrap(),
    );
    let eager = mixed(&x, &y, &c, &one).unwrap();
    let d = |t: &Tensor<f64>| Deferred::new(t.clone());
    counts();
    let fused = mixed(&d(&x), &d(&y), &d(&c), &d(&one))
        .unwrap()
        .apply_op(&Counted)
        .unwrap();
    assert!(!fused.is_computed());
    let value = fused.value().unwrap();
    assert_eq!(value.shape(), &[N]);
    assert_eq!(bits(&value), bits(&eager.apply_op(&Counted).unwrap()));
    // `Counted` ran fused, on its two blocks (the plain run above is the one unfused run).
    assert_eq!(counts(), (N, N));
}

#[test]
fn a_sum_that_ends_a_chain_is_added_in_the_same_pass_with_the_same_bits() {
    fuse_from_64();
    // Lengths with a short last block and a remainder past the last multiple of 8, one of
    // exactly two blocks, and one of a single short block.
    for n in [N, 1024, 100] {
        let (x, y) = (point(n, 0.37), point(n, 1.91));
        let (c, one) = (
            Tensor::scalar(0.125),
            Tensor::from_vec(vec![-1.5], &[1]).unwrap(),
        );
        let eager = mixed(&x, &y, &c, &one).unwrap().apply_op(&Counted).unwrap();
        let d = |t: &Tensor<f64>| Deferred::new(t.clone());
        let chain = || {
            mixed(&d(&x), &d(&y), &d(&c), &d(&one))
                .unwrap()
                .apply_op(&Counted)
                .unwrap()
        };
        // Nothing else holds the summed value: it lives only in the chain's blocks.
        let total = chain().sum_all();
        counts();
        let value = total.value().unwrap();
        assert_eq!(value.shape(), &[] as &[usize]);
        assert_eq!(bits(&value), bits(&eager.sum_all()), "n = {n}");
        assert_eq!(counts(), (n, 0), "`Counted` ran once, fused");
        // Held, and many operations from the inputs: written out in the same pass.
        let held = chain();
        let total = held.sum_all();
        assert_eq!(bits(&total.value().unwrap()), bits(&eager.sum_all()));
        assert!(held.is_computed());
        assert_eq!(bits(&held.value().unwrap()), bits(&eager));
        assert_eq!(counts(), (n, 0), "`Counted` ran once, fused");
    }
    // A summed operation one step from a computed value is left pending even though held
    // (unfused, it would be computed and kept, by `eval`).
    let x = Deferred::new(point(N, 0.5));
    let cheap = x.apply_op(&Counted).unwrap();
    counts();
    let sum = cheap.sum_all().value().unwrap();
    assert_eq!(counts(), (N, 0));
    assert!(!cheap.is_computed());
    let plain = point(N, 0.5).apply_op(&Counted).unwrap();
    assert_eq!(bits(&sum), bits(&plain.sum_all()));
    // A one-element operand broadcast to the whole sum, and a chain of one operation.
    let x = Deferred::new(point(N, 0.5));
    let sum = x
        .try_mul(&Deferred::new(Tensor::scalar(3.0)))
        .unwrap()
        .sum_all();
    let plain = point(N, 0.5)
        .try_mul(&Tensor::scalar(3.0))
        .unwrap()
        .sum_all();
    assert_eq!(bits(&sum.value().unwrap()), bits(&plain));
    // A sum whose operand fails reports the operation that failed.
    let bad = x
        .square()
        .add_scalar(-1.0)
        .apply_op(&CheckedLn)
        .unwrap()
        .sum_all();
    let err = bad.value().unwrap_err().to_string();
    assert!(
        err.contains("checked_ln") && err.contains("not positive"),
        "{err}"
    );
}

#[test]
fn held_values_are_written_out_unless_cheap_to_compute_again() {
    fuse_from_64();
    let x = Deferred::new(point(N, 0.8));
    let half = x.apply_op(&Counted).unwrap();
    let inner = half.apply_op(&Counted).unwrap().exp();
    let left = inner.apply_op(&Counted).unwrap();
    let right = inner.square().apply_op(&Counted).unwrap();
    counts();
    let sum = left.try_add(&right).unwrap().value().unwrap();
    assert_eq!(counts(), (4 * N, 0));
    // Held here and three operations from `x`: written out. The other held values are one
    // or two operations from a written one: left pending.
    assert!(inner.is_computed());
    assert!(!half.is_computed() && !left.is_computed() && !right.is_computed());
    let inner0 = point(N, 0.8)
        .apply_op(&Counted)
        .unwrap()
        .apply_op(&Counted)
        .unwrap()
        .exp();
    let left0 = inner0.apply_op(&Counted).unwrap();
    let right0 = inner0.square().apply_op(&Counted).unwrap();
    let half0 = point(N, 0.8).apply_op(&Counted).unwrap();
    assert_eq!(bits(&sum), bits(&left0.add(&right0)));
    counts();
    // Asked for, they are computed again from what was written: `right` with `square`
    // (fused), `left` and `half` alone (unfused); `inner` not at all.
    assert_eq!(bits(&right.value().unwrap()), bits(&right0));
    assert_eq!(counts(), (N, 0));
    assert_eq!(bits(&left.value().unwrap()), bits(&left0));
    assert_eq!(bits(&inner.value().unwrap()), bits(&inner0));
    assert_eq!(bits(&half.value().unwrap()), bits(&half0));
    assert_eq!(counts(), (0, 2 * N));
    // Then kept.
    for held in [&half, &inner, &left, &right] {
        assert!(held.is_computed());
        held.value().unwrap();
    }
    assert_eq!(counts(), (0, 0));
}

#[test]
fn a_shared_dag_is_not_recomputed_along_each_path() {
    fuse_from_64();
    // Each level reads the one below three times: 3^60 paths, 60 * 4 operations, cut into
    // regions of at most 64.
    let x0 = point(N, 0.5);
    let mut x = Deferred::new(x0.clone());
    let mut plain = x0;
    for _ in 0..60 {
        let h = x.apply_op(&Counted).unwrap();
        x = h.try_mul(&h).unwrap().scale(0.25).try_add(&h).unwrap();
        let h = plain.apply_op(&Counted).unwrap();
        plain = h.mul(&h).scale(0.25).add(&h);
    }
    counts();
    assert_eq!(bits(&x.value().unwrap()), bits(&plain));
    let (fused, unfused) = counts();
    assert_eq!(
        fused + unfused,
        60 * N,
        "each `counted` once: {fused} + {unfused}"
    );
    assert!(fused > 50 * N, "mostly fused: {fused}");
}

#[test]
fn a_chain_held_at_every_step_is_computed_again_only_boundedly() {
    fuse_from_64();
    // Every value held, then each asked for from the last down, as a backward sweep reads
    // them: recomputing from scratch each time would be 200 * 201 / 2 runs of `counted`.
    let mut held = vec![Deferred::new(point(N, 0.2))];
    for _ in 0..200 {
        let next = held[held.len() - 1].apply_op(&Counted).unwrap();
        held.push(next);
    }
    counts();
    for x in held.iter().rev() {
        x.value().unwrap();
    }
    let (fused, unfused) = counts();
    assert!(fused + unfused <= 3 * 200 * N, "{fused} + {unfused}");
    let mut plain = point(N, 0.2);
    for _ in 0..200 {
        plain = plain.apply_op(&Counted).unwrap();
    }
    assert_eq!(bits(&held[200].value().unwrap()), bits(&plain));
}

#[test]
fn the_fused_inputs_of_one_operation_share_one_chain() {
    fuse_from_64();
    // `a` feeds both operands of the product and is held by nothing else: one chain computes
    // it once for both, and writes it nowhere.
    let x = Deferred::new(point(N, 0.6));
    let a = x.apply_op(&Counted).unwrap();
    let (p, q) = (a.exp(), a.sin());
    drop(a);
    counts();
    let dot = p.matmul(&q).value().unwrap();
    assert_eq!(counts(), (N, 0));
    let a0 = point(N, 0.6).apply_op(&Counted).unwrap();
    assert_eq!(bits(&dot), bits(&a0.exp().matmul(&a0.sin())));
}

#[test]
fn arrays_of_2_18_elements_and_more_run_unfused() {
    fuse_from_64();
    // There the unfused operations run on rayon's threads; a chain would run on one.
    for (len, fused) in [((1 << 18) - 1, true), (1 << 18, false)] {
        let x = Deferred::new(Tensor::<f64>::ones(&[len]));
        let y = x
            .apply_op(&Counted)
            .unwrap()
            .exp()
            .apply_op(&Counted)
            .unwrap();
        counts();
        assert_eq!(y.value().unwrap().shape(), &[len]);
        let want = if fused { (2 * len, 0) } else { (0, 2 * len) };
        assert_eq!(counts(), want, "{len} elements");
    }
}

#[test]
fn a_deep_chain_is_fused_without_recursion() {
    fuse_from_64();
    let mut x = Deferred::new(Tensor::<f64>::zeros(&[100]));
    for _ in 0..100_000 {
        x = x.add_scalar(1.0);
    }
    assert_eq!(x.value().unwrap().to_vec(), vec![100_000.0; 100]);
    let mut y = Deferred::new(Tensor::<f64>::zeros(&[100]));
    for _ in 0..100_000 {
        y = y.add_scalar(1.0).exp().ln();
    }
    drop(y);
}

/// `ln(x)` for `x > 0` only: an error naming the operation otherwise; its block kernel
/// refuses a block with a value out of its domain, so a fused chain holding it falls back.
#[derive(Clone, Debug)]
struct CheckedLn;

impl Op for CheckedLn {
    fn name(&self) -> &'static str {
        "checked_ln"
    }
    const ELEMENTWISE: bool = true;
    fn eval<T: Element>(&self, x: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        if x[0].as_slice().iter().any(|&v| v <= T::zero()) {
            return Err(Error::InvalidArgument {
                op: "checked_ln",
                reason: "a value is not positive".into(),
            });
        }
        Ok(x[0].map(|v| v.ln()))
    }
    fn eval_block<T: Element>(&self, x: &[Operand<'_, T>], out: &mut [T]) -> bool {
        let [Operand::Slice(x)] = x else { return false };
        if x.iter().any(|&v| v <= T::zero()) && out.len() > 1 {
            return false;
        }
        out.iter_mut().zip(*x).for_each(|(o, &v)| *o = v.ln());
        true
    }
    fn output_shape(&self, x: &[&[usize]]) -> Option<Vec<usize>> {
        Some(x[0].to_vec())
    }
    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| t.try_div(x[0])).transpose()
    }
}

#[test]
fn an_error_in_a_fused_region_names_the_operation() {
    fuse_from_64();
    let x = Deferred::new(point(N, 0.3));
    let fine = x
        .square()
        .add_scalar(1.0)
        .apply_op(&CheckedLn)
        .unwrap()
        .exp();
    let want = point(N, 0.3)
        .square()
        .add_scalar(1.0)
        .apply_op(&CheckedLn)
        .unwrap()
        .exp();
    assert_eq!(bits(&fine.value().unwrap()), bits(&want));
    let bad = x
        .square()
        .add_scalar(-1.0)
        .apply_op(&CheckedLn)
        .unwrap()
        .exp();
    let err = bad.value().unwrap_err().to_string();
    assert!(
        err.contains("checked_ln") && err.contains("not positive"),
        "{err}"
    );
    let again = bad.value().unwrap_err().to_string();
    assert!(again.contains("could not be computed"), "{again}");
}

/// Its Hessian times `v`, row by row.
fn rosenbrock_hvp(x: &[f64], v: &[f64]) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| {
            let mut h = 0.0;
            if i + 1 < n {
                h += (1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0) * v[i]
                    - 400.0 * x[i] * v[i + 1];
            }
            if i > 0 {
                h += 200.0 * v[i] - 400.0 * x[i - 1] * v[i - 1];
            }
            h
        })
        .collect()
}

#[test]
fn transforms_on_fused_deferred_arrays_match_plain_ones() {
    fuse_from_64();
    let x = point(N, 0.11);
    let v = point(N, 2.3);
    // Reverse mode and forward mode on deferred arrays: the plain results, bit for bit.
    let plain = grad(|x| rosenbrock(x), &x).unwrap();
    let deferred = grad(|x| rosenbrock(x), &Deferred::new(x.clone())).unwrap();
    assert_eq!(bits(&deferred.value().unwrap()), bits(&plain));
    let (y, t) = jvp(
        rosenbrock,
        &Deferred::new(x.clone()),
        &Deferred::new(v.clone()),
    )
    .unwrap();
    let (y0, t0) = jvp(rosenbrock, &x, &v).unwrap();
    assert_eq!(bits(&y.value().unwrap()), bits(&y0));
    assert_eq!(bits(&t.value().unwrap()), bits(&t0));
    // `hvp` (on deferred arrays inside): the Hessian by hand, forward over reverse on plain
    // arrays, and central differences of the gradient.
    let hv = hvp(|x| rosenbrock(x), &x, &v).unwrap();
    let by_hand = Tensor::vector(&rosenbrock_hvp(x.as_slice(), v.as_slice()));
    assert!(
        hv.all_close(&by_hand, 1e-10),
        "hvp against the Hessian by hand"
    );
    let (_, fwd_rev) = jvp(|x| grad(|x| rosenbrock(x), x), &x, &v).unwrap();
    assert!(hv.all_close(&fwd_rev, 1e-10));
    let h = 1e-5;
    let g = |s: f64| grad(|x| rosenbrock(x), &x.add(&v.scale(s))).unwrap();
    let fd = g(h).sub(&g(-h)).scale(0.5 / h);
    assert!(hv.all_close(&fd, 1e-5), "hvp against central differences");
}
