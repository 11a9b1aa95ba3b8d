//! Reductions over axes and over all axes, cumulative sums, softmax, narrow / squeeze /
//! unsqueeze, indexing and joining; argmax and argmin (not differentiable: values, ties, NaN,
//! stacks and errors, after the table).
//!
//! One table row per operation (and per interesting axis choice): each row's VJP is checked
//! against central finite differences in random directions, in f32 against f64, and at second
//! order (a Hessian-vector product through a nested tape against a central difference of the
//! first-order VJP). The forward column (`forward_support`) checks each row's JVP against
//! central differences and against its VJP, and order two in every nesting (forward over reverse,
//! reverse over forward, forward over forward) of `f(x)^2`. Then exact values on small
//! hand-checked cases, stability for large inputs, ties in max / min, and errors.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::{jacfwd, jacrev, ops, Array, Element, Op, Tensor, TensorTape, TensorVar};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

impl SplitMix {
    /// Distinct values at least 0.27 apart in a random order: no ties, and no change of the
    /// ordering under the finite-difference steps used here.
    fn separated(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let data = order
            .iter()
            .map(|&k| 0.37 * k as f64 - 2.0 + self.uniform(-0.05, 0.05))
            .collect();
        Tensor::from_vec(data, shape).unwrap()
    }
}

fn softmax_jvp(axes: &[usize]) -> ops::SoftmaxJvp {
    ops::SoftmaxJvp {
        axes: axes.to_vec(),
    }
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// `x + h v`.
fn step(x: &Tensor<f64>, h: f64, v: &Tensor<f64>) -> Tensor<f64> {
    let data = x
        .as_slice()
        .iter()
        .zip(v.as_slice())
        .map(|(a, b)| a + h * b);
    Tensor::from_vec(data.collect(), x.shape()).unwrap()
}

fn assert_close(got: &Tensor<f64>, expected: &[f64], shape: &[usize], tol: f64, what: &str) {
    assert_eq!(got.shape(), shape, "{what}: shape");
    let want = t(expected, shape);
    assert!(
        got.all_close(&want, tol),
        "{what}: {:?} vs {:?}",
        got.to_vec(),
        expected
    );
}

// ---- The table -------------------------------------------------------------------------------

/// One operation with its arguments, applied to any array type.
#[derive(Clone, Copy, Debug)]
enum Case {
    Sum(&'static [usize], bool),
    Mean(&'static [usize], bool),
    Max(&'static [usize], bool),
    Min(&'static [usize], bool),
    LogSumExp(&'static [usize], bool),
    Softmax(usize),
    LogSoftmax(usize),
    /// `SoftmaxJvp` over these axes, of two inputs `y` and `t`.
    SoftmaxJvp(&'static [usize]),
    Squeeze(usize),
    SqueezeAll,
    Unsqueeze(usize),
    Narrow(usize, usize, usize),
    Slice(usize, usize, usize),
    IndexSelect(usize, &'static [usize]),
    IndexAdd(usize, &'static [usize], usize),
    Gather(usize, &'static [usize], &'static [usize]),
    ScatterAdd(usize, &'static [usize], &'static [usize]),
    Concat(usize),
    Stack(usize),
    MeanAll,
    MaxAll,
    MinAll,
    LogSumExpAll,
    CumSum(usize),
}

impl Case {
    fn apply<A: Array>(&self, xs: &[&A]) -> Result<A, Error> {
        let x = xs[0];
        match *self {
            Case::Sum(axes, k) => x.try_sum_axes(axes, k),
            Case::Mean(axes, k) => x.try_mean_axes(axes, k),
            Case::Max(axes, k) => x.try_max_axes(axes, k),
            Case::Min(axes, k) => x.try_min_axes(axes, k),
            Case::LogSumExp(axes, k) => x.try_logsumexp(axes, k),
            Case::Softmax(axis) => x.try_softmax(axis),
            Case::LogSoftmax(axis) => x.try_log_softmax(axis),
            Case::SoftmaxJvp(axes) => A::apply(&softmax_jvp(axes), &[x, xs[1]]),
            Case::Squeeze(axis) => x.try_squeeze(axis),
            Case::SqueezeAll => Ok(x.squeeze_all()),
            Case::Unsqueeze(axis) => x.try_unsqueeze(axis),
            Case::Narrow(axis, start, len) => x.try_narrow(axis, start, len),
            Case::Slice(axis, start, end) => x.try_slice(axis, start..end),
            Case::IndexSelect(axis, idx) => x.try_index_select(axis, idx.to_vec()),
            Case::IndexAdd(axis, idx, len) => x.try_index_add(axis, idx.to_vec(), len),
            Case::Gather(axis, idx, shape) => x.try_gather(axis, idx.to_vec(), shape),
            Case::ScatterAdd(axis, idx, shape) => x.try_scatter_add(axis, idx.to_vec(), shape),
            Case::Concat(axis) => A::try_concat(xs, axis),
            Case::Stack(axis) => A::try_stack(xs, axis),
            Case::MeanAll => Ok(x.mean_all()),
            Case::MaxAll => x.try_max_all(),
            Case::MinAll => x.try_min_all(),
            Case::LogSumExpAll => Ok(x.logsumexp_all()),
            Case::CumSum(axis) => x.try_cumsum(axis),
        }
    }
}

/// Where a row's inputs are drawn from.
#[derive(Clone, Copy, Debug)]
enum Domain {
    Uniform(f64, f64),
    /// Distinct, well separated values (max / min: no ties near the point).
    Separated,
}

struct Row {
    name: &'static str,
    case: Case,
    shapes: &'static [&'static [usize]],
    domain: Domain,
    /// Relative tolerance of the finite-difference checks.
    tol: f64,
}

const U: Domain = Domain::Uniform(-2.0, 2.0);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "sum_axes", case: Case::Sum(&[1], false), shapes: &[&[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "sum_axes", case: Case::Sum(&[0, 2], true), shapes: &[&[2, 3, 4]], domain: U, tol: 1e-8 },
    Row { name: "sum_axes", case: Case::Sum(&[], false), shapes: &[&[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "sum_axes", case: Case::Sum(&[1, 0], false), shapes: &[&[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "mean_axes", case: Case::Mean(&[1], false), shapes: &[&[2, 3, 4]], domain: U, tol: 1e-8 },
    Row { name: "mean_axes", case: Case::Mean(&[0, 1], true), shapes: &[&[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "max_axes", case: Case::Max(&[1], false), shapes: &[&[3, 4]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "max_axes", case: Case::Max(&[0, 2], true), shapes: &[&[2, 3, 4]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "min_axes", case: Case::Min(&[0], true), shapes: &[&[3, 4]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "min_axes", case: Case::Min(&[2, 1], false), shapes: &[&[2, 3, 4]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "logsumexp", case: Case::LogSumExp(&[1], false), shapes: &[&[3, 4]], domain: Domain::Uniform(-3.0, 3.0), tol: 1e-7 },
    Row { name: "logsumexp", case: Case::LogSumExp(&[0, 2], true), shapes: &[&[2, 3, 4]], domain: Domain::Uniform(-3.0, 3.0), tol: 1e-7 },
    Row { name: "softmax", case: Case::Softmax(1), shapes: &[&[3, 4]], domain: U, tol: 1e-7 },
    Row { name: "softmax", case: Case::Softmax(0), shapes: &[&[2, 3, 4]], domain: U, tol: 1e-7 },
    Row { name: "log_softmax", case: Case::LogSoftmax(1), shapes: &[&[3, 4]], domain: U, tol: 1e-7 },
    Row { name: "log_softmax", case: Case::LogSoftmax(1), shapes: &[&[2, 3, 4]], domain: U, tol: 1e-7 },
    // softmax's rule: one softmax per row, per column, y repeated along the last axis (a
    // stack of tangents), over leading blocks, over two axes, t broadcast, y broadcast along
    // the reduced axis, axes apart, no axis.
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[1]), shapes: &[&[3, 4], &[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[0]), shapes: &[&[3, 4], &[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[0]), shapes: &[&[4, 1], &[4, 3]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[1]), shapes: &[&[3, 4], &[2, 3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[1, 0]), shapes: &[&[2, 3, 1], &[2, 3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[1]), shapes: &[&[2, 3, 4], &[3, 1]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[0]), shapes: &[&[1, 4], &[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[0, 2]), shapes: &[&[2, 3, 4], &[2, 3, 4]], domain: U, tol: 1e-8 },
    Row { name: "softmax_jvp", case: Case::SoftmaxJvp(&[]), shapes: &[&[3], &[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "squeeze", case: Case::Squeeze(1), shapes: &[&[2, 1, 3]], domain: U, tol: 1e-8 },
    Row { name: "squeeze_all", case: Case::SqueezeAll, shapes: &[&[1, 3, 1, 2]], domain: U, tol: 1e-8 },
    Row { name: "unsqueeze", case: Case::Unsqueeze(1), shapes: &[&[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "narrow", case: Case::Narrow(1, 1, 3), shapes: &[&[4, 5]], domain: U, tol: 1e-8 },
    Row { name: "narrow", case: Case::Narrow(0, 2, 1), shapes: &[&[3, 4, 2]], domain: U, tol: 1e-8 },
    Row { name: "slice", case: Case::Slice(0, 1, 4), shapes: &[&[6]], domain: U, tol: 1e-8 },
    Row { name: "index_select", case: Case::IndexSelect(0, &[3, 0, 3, 1]), shapes: &[&[4, 3]], domain: U, tol: 1e-8 },
    Row { name: "index_select", case: Case::IndexSelect(1, &[4, 4, 0]), shapes: &[&[2, 5, 2]], domain: U, tol: 1e-8 },
    Row { name: "index_add", case: Case::IndexAdd(0, &[1, 1, 3], 4), shapes: &[&[3, 2]], domain: U, tol: 1e-8 },
    Row { name: "gather", case: Case::Gather(1, &[0, 3, 2, 2, 1, 0], &[3, 2]), shapes: &[&[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "gather", case: Case::Gather(0, &[2, 0, 1, 2, 0, 0, 2, 1], &[2, 4]), shapes: &[&[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "gather", case: Case::Gather(1, &[3, 1, 1, 0, 2, 3], &[2, 3]), shapes: &[&[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "scatter_add", case: Case::ScatterAdd(1, &[1, 1, 3, 0, 2, 2], &[3, 4]), shapes: &[&[3, 2]], domain: U, tol: 1e-8 },
    Row { name: "scatter_add", case: Case::ScatterAdd(0, &[2, 0, 2, 1], &[3, 4]), shapes: &[&[2, 2]], domain: U, tol: 1e-8 },
    Row { name: "concat", case: Case::Concat(0), shapes: &[&[2, 3], &[4, 3], &[1, 3]], domain: U, tol: 1e-8 },
    Row { name: "concat", case: Case::Concat(1), shapes: &[&[2, 1], &[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "stack", case: Case::Stack(1), shapes: &[&[2, 3], &[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "stack", case: Case::Stack(2), shapes: &[&[2, 3], &[2, 3], &[2, 3]], domain: U, tol: 1e-8 },
    Row { name: "mean_all", case: Case::MeanAll, shapes: &[&[2, 3, 2]], domain: U, tol: 1e-8 },
    Row { name: "mean_all", case: Case::MeanAll, shapes: &[&[]], domain: U, tol: 1e-8 },
    Row { name: "max_all", case: Case::MaxAll, shapes: &[&[3, 4]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "min_all", case: Case::MinAll, shapes: &[&[2, 3, 2]], domain: Domain::Separated, tol: 1e-8 },
    Row { name: "logsumexp_all", case: Case::LogSumExpAll, shapes: &[&[3, 4]], domain: Domain::Uniform(-3.0, 3.0), tol: 1e-7 },
    Row { name: "cumsum", case: Case::CumSum(1), shapes: &[&[3, 4]], domain: U, tol: 1e-8 },
    Row { name: "cumsum", case: Case::CumSum(0), shapes: &[&[3, 2, 2]], domain: U, tol: 1e-8 },
    Row { name: "cumsum", case: Case::CumSum(2), shapes: &[&[2, 2, 5]], domain: U, tol: 1e-8 },
];

impl Row {
    fn inputs(&self, rng: &mut SplitMix) -> Vec<Tensor<f64>> {
        self.shapes
            .iter()
            .map(|s| match self.domain {
                Domain::Uniform(lo, hi) => rng.tensor(s, lo, hi),
                Domain::Separated => rng.separated(s),
            })
            .collect()
    }

    fn value(&self, xs: &[Tensor<f64>]) -> Tensor<f64> {
        let refs: Vec<&Tensor<f64>> = xs.iter().collect();
        self.case.apply(&refs).unwrap()
    }

    /// The VJP of the row's operation at `xs` with cotangent `u`, through a tape.
    fn vjp<T: Element>(&self, xs: &[Tensor<T>], u: &Tensor<T>) -> (Tensor<T>, Vec<Tensor<T>>) {
        let tape = TensorTape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
        let refs: Vec<&TensorVar<'_, Tensor<T>>> = vars.iter().collect();
        let y = self.case.apply(&refs).unwrap();
        let cts = tape.vjp(&y, u, &refs).unwrap();
        (y.value().clone(), cts)
    }

    /// The gradient of `<u, f(x)^2>` (the first-order VJP of the squared operation).
    fn squared_grad(&self, xs: &[Tensor<f64>], u: &Tensor<f64>) -> Vec<Tensor<f64>> {
        let tape = TensorTape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
        let refs: Vec<_> = vars.iter().collect();
        let y = self.case.apply(&refs).unwrap().square();
        tape.vjp(&y, u, &refs).unwrap()
    }
}

#[test]
fn the_table_has_a_row_for_every_operation() {
    let ops = [
        "sum_axes",
        "mean_axes",
        "max_axes",
        "min_axes",
        "logsumexp",
        "softmax",
        "log_softmax",
        "softmax_jvp",
        "squeeze",
        "squeeze_all",
        "unsqueeze",
        "narrow",
        "slice",
        "index_select",
        "index_add",
        "gather",
        "scatter_add",
        "concat",
        "stack",
        "mean_all",
        "max_all",
        "min_all",
        "logsumexp_all",
        "cumsum",
    ];
    for op in ops {
        assert!(ROWS.iter().any(|r| r.name == op), "no row for {op}");
    }
    assert!(ROWS.iter().all(|r| ops.contains(&r.name)));
}

#[test]
fn vjps_match_central_differences_in_random_directions() {
    let mut rng = SplitMix(0x5eed_0001);
    let h = 1e-6;
    for row in ROWS {
        for trial in 0..3 {
            let xs = row.inputs(&mut rng);
            let y = row.value(&xs);
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let vs: Vec<_> = xs
                .iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect();
            let (y_tape, cts) = row.vjp(&xs, &u);
            assert_eq!(y_tape.to_vec(), y.to_vec(), "{}: taped value", row.name);
            // <J^T u, v> from the tape against <u, J v> by central differences.
            let reverse: f64 = cts.iter().zip(&vs).map(|(c, v)| dot(c, v)).sum();
            let plus: Vec<_> = xs.iter().zip(&vs).map(|(x, v)| step(x, h, v)).collect();
            let minus: Vec<_> = xs.iter().zip(&vs).map(|(x, v)| step(x, -h, v)).collect();
            let central = (dot(&u, &row.value(&plus)) - dot(&u, &row.value(&minus))) / (2.0 * h);
            assert!(
                (reverse - central).abs() <= row.tol * reverse.abs().max(1.0),
                "{} {:?} trial {trial}: vjp {reverse} vs central difference {central}",
                row.name,
                row.case
            );
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = SplitMix(0x5eed_0002);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let (y64, ct64) = row.vjp(&xs, &u);
        let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
        let (y32, ct32) = row.vjp(&xs32, &u.cast());
        // f32 carries about 7 digits (eps 1.2e-7); these operations add at most a few dozen
        // terms of size up to e^3, so 1e-5 relative leaves room for rounding but not for a
        // wrong rule.
        assert!(y32.all_close(&y64.cast(), 1e-5), "{}: value", row.name);
        for (a, b) in ct32.iter().zip(&ct64) {
            assert!(
                a.all_close(&b.cast(), 1e-5),
                "{} {:?}: vjp",
                row.name,
                row.case
            );
        }
    }
}

#[test]
fn second_order_matches_a_central_difference_of_the_first() {
    // F(x) = <u, f(x)^2>: its Hessian-vector product exercises each VJP rule with a cotangent
    // that depends on x, i.e. the VJP of the VJP.
    let mut rng = SplitMix(0x5eed_0003);
    let h = 1e-5;
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let vs: Vec<_> = xs
            .iter()
            .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
            .collect();

        let inner = TensorTape::new();
        let xi: Vec<_> = xs.iter().map(|x| inner.var(x.clone())).collect();
        let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
        let xo: Vec<_> = xi.iter().map(|x| outer.var(x.clone())).collect();
        let xo_refs: Vec<_> = xo.iter().collect();
        let f = row.case.apply(&xo_refs).unwrap().square();
        let grads = outer.vjp(&f, &inner.constant(u.clone()), &xo_refs).unwrap();
        let mut gv = inner.constant(Tensor::scalar(0.0));
        for (g, v) in grads.iter().zip(&vs) {
            gv = gv.add(&g.mul(&inner.constant(v.clone())).sum_all());
        }
        let xi_refs: Vec<_> = xi.iter().collect();
        let hv = inner.gradient(&gv, &xi_refs).unwrap();

        let plus: Vec<_> = xs.iter().zip(&vs).map(|(x, v)| step(x, h, v)).collect();
        let minus: Vec<_> = xs.iter().zip(&vs).map(|(x, v)| step(x, -h, v)).collect();
        let (gp, gm) = (row.squared_grad(&plus, &u), row.squared_grad(&minus, &u));
        for (k, hk) in hv.iter().enumerate() {
            let fd = step(&gp[k], -1.0, &gm[k]).map(|d| d / (2.0 * h));
            assert!(
                hk.all_close(&fd, 1e-6),
                "{} {:?} input {k}: Hv {:?} vs central difference {:?}",
                row.name,
                row.case,
                hk.to_vec(),
                fd.to_vec()
            );
        }
    }
}

/// A row's operation, or its square (`squared`), as a function for the forward-mode checks.
struct RowFn {
    case: Case,
    squared: bool,
}

impl Function for RowFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = self.case.apply(xs)?;
        Ok(if self.squared { y.square() } else { y })
    }
}

#[test]
fn jvps_match_central_differences_and_the_vjps() {
    let mut rng = SplitMix(0x5eed_0004);
    for row in ROWS {
        for trial in 0..3 {
            let xs = row.inputs(&mut rng);
            let y = row.value(&xs);
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let vs: Vec<_> = xs
                .iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect();
            let what = format!("{} {:?} trial {trial}", row.name, row.case);
            let f = RowFn {
                case: row.case,
                squared: false,
            };
            let active = vec![true; xs.len()];
            check_first_order(&what, &f, &xs, &active, &vs, &u, row.tol);
        }
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    // Of f(x)^2, as above: most of these operations are linear, so f itself has no second
    // derivative; squaring makes every nesting differentiate each rule with an x-dependent
    // direction.
    let mut rng = SplitMix(0x5eed_0005);
    for row in ROWS {
        for trial in 0..2 {
            let xs = row.inputs(&mut rng);
            let y = row.value(&xs);
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let mut direction = || -> Vec<Tensor<f64>> {
                xs.iter()
                    .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                    .collect()
            };
            let (vs, zs) = (direction(), direction());
            let what = format!("{} {:?} squared, trial {trial}", row.name, row.case);
            let f = RowFn {
                case: row.case,
                squared: true,
            };
            let active = vec![true; xs.len()];
            check_second_order(&what, &f, &xs, &active, &vs, &zs, &u, 1e-6);
        }
    }
}

// ---- Exact values --------------------------------------------------------------------------

/// `x = [[1, 2, 3], [4, 5, 6]]`.
fn m23() -> Tensor<f64> {
    t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])
}

/// The gradient of `sum(f(x) * w)` with respect to `x`.
fn grad_of(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    f: impl for<'a> Fn(&TensorVar<'a, Tensor<f64>>) -> TensorVar<'a, Tensor<f64>>,
) -> Tensor<f64> {
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let y = f(&xv);
    tape.vjp(&y, w, &[&xv]).unwrap().remove(0)
}

#[test]
fn sums_and_means_on_a_small_matrix() {
    let x = m23();
    // Column sums 1+4, 2+5, 3+6; row sums 1+2+3, 4+5+6; all 21.
    assert_close(
        &x.sum_axes(&[0], false),
        &[5.0, 7.0, 9.0],
        &[3],
        0.0,
        "sum 0",
    );
    assert_close(&x.sum_axes(&[1], true), &[6.0, 15.0], &[2, 1], 0.0, "sum 1");
    assert_close(&x.sum_axes(&[0, 1], false), &[21.0], &[], 0.0, "sum all");
    assert_close(
        &x.sum_axes(&[1, 0], true),
        &[21.0],
        &[1, 1],
        0.0,
        "sum all kept",
    );
    // No axes: the input itself.
    assert_close(
        &x.sum_axes(&[], false),
        &x.to_vec(),
        &[2, 3],
        0.0,
        "sum none",
    );
    // Means: the sums divided by 2 (axis 0), 3 (axis 1) and 6.
    assert_close(
        &x.mean_axes(&[0], false),
        &[2.5, 3.5, 4.5],
        &[3],
        0.0,
        "mean 0",
    );
    assert_close(&x.mean_axes(&[1], false), &[2.0, 5.0], &[2], 0.0, "mean 1");
    assert_close(
        &x.mean_axes(&[0, 1], true),
        &[3.5],
        &[1, 1],
        0.0,
        "mean all",
    );

    // d/dx sum(sum_axes(x, 1) * [1, 10]): each row gets its weight.
    let g = grad_of(&x, &t(&[1.0, 10.0], &[2]), |x| x.sum_axes(&[1], false));
    assert_close(
        &g,
        &[1.0, 1.0, 1.0, 10.0, 10.0, 10.0],
        &[2, 3],
        0.0,
        "sum grad",
    );
    // The mean over 3 columns: the weights divided by 3.
    let g = grad_of(&x, &t(&[3.0, 30.0], &[2, 1]), |x| x.mean_axes(&[1], true));
    assert_close(
        &g,
        &[1.0, 1.0, 1.0, 10.0, 10.0, 10.0],
        &[2, 3],
        1e-15,
        "mean grad",
    );
}

#[test]
fn max_and_min_on_a_small_matrix() {
    let x = t(&[1.0, 5.0, 3.0, 2.0], &[2, 2]);
    // Column maxima max(1, 3), max(5, 2); row minima min(1, 5), min(3, 2).
    assert_close(&x.max_axes(&[0], false), &[3.0, 5.0], &[2], 0.0, "max 0");
    assert_close(&x.min_axes(&[1], true), &[1.0, 2.0], &[2, 1], 0.0, "min 1");
    assert_close(&x.max_axes(&[0, 1], false), &[5.0], &[], 0.0, "max all");
    // The cotangent of each column's maximum goes to the row holding it: (1, 0) gets 10,
    // (0, 1) gets 20.
    let g = grad_of(&x, &t(&[10.0, 20.0], &[2]), |x| x.max_axes(&[0], false));
    assert_close(&g, &[0.0, 20.0, 10.0, 0.0], &[2, 2], 0.0, "max grad");
    let g = grad_of(&x, &t(&[10.0, 20.0], &[2, 1]), |x| x.min_axes(&[1], true));
    assert_close(&g, &[10.0, 0.0, 0.0, 20.0], &[2, 2], 0.0, "min grad");
    // NaN propagates to the result.
    let n = t(&[1.0, f64::NAN, 3.0], &[3]);
    assert!(n.max_axes(&[0], false).to_vec()[0].is_nan());
    assert!(n.min_axes(&[0], false).to_vec()[0].is_nan());
}

/// The `softmax_jvp` rows of the table: their axes and shapes, and inputs `y` and `t` drawn
/// from `seed`.
type JvpPoint = (
    &'static [usize],
    &'static [&'static [usize]],
    Tensor<f64>,
    Tensor<f64>,
);

fn softmax_jvp_points(seed: u64) -> Vec<JvpPoint> {
    let mut rng = SplitMix(seed);
    ROWS.iter()
        .filter_map(|row| match row.case {
            Case::SoftmaxJvp(axes) => {
                let y = rng.tensor(row.shapes[0], -2.0, 2.0);
                Some((axes, row.shapes, y, rng.tensor(row.shapes[1], -2.0, 2.0)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn softmax_jvp_equals_its_composition_and_a_hand_computed_value() {
    // Against `y (t - sum(y t))` composed of products, a sum and a difference, in every
    // layout of the table (the fused kernel, its copies of a broadcast input, the composition
    // it falls back to).
    for (axes, shapes, y, t) in softmax_jvp_points(0x5eed_0006) {
        let fused = softmax_jvp(axes).eval(&[&y, &t]).unwrap();
        let dot = y.mul(&t).sum_axes(axes, true);
        let composed = y.mul(&t.sub(&dot));
        assert_eq!(fused.shape(), composed.shape(), "{axes:?} {shapes:?}");
        assert!(
            fused.all_close(&composed, 1e-14),
            "{axes:?} {shapes:?}: {:?} vs {:?}",
            fused.to_vec(),
            composed.to_vec()
        );
    }
    // y = [1/4, 3/4] repeated along a stack of two tangents, t's columns [1, 0] and [0, 1]:
    // sum(y t) = 1/4 and 3/4; y (t - sum) = [3/16, -3/16] and [-3/16, 3/16].
    let y = t(&[0.25, 0.75], &[2, 1]);
    let stack = t(&[1.0, 0.0, 0.0, 1.0], &[2, 2]);
    let got = softmax_jvp(&[0]).eval(&[&y, &stack]).unwrap();
    let c = 3.0 / 16.0;
    assert_close(
        &got,
        &[c, -c, -c, c],
        &[2, 2],
        1e-16,
        "softmax_jvp of a stack",
    );
}

/// `op(y, t)` on any array type.
fn apply_pair<A: Array>(op: &ops::SoftmaxJvp, y: &A, t: &A) -> Result<A, Error> {
    A::apply(op, &[y, t])
}

#[test]
fn softmax_jvp_under_jacfwd_equals_jacrev() {
    // jacfwd keeps its tangents as a stack along the last axis: with respect to t alone (y a
    // single value) and to both inputs (two stacks), through the trailing batching rule;
    // jacrev's stacks of cotangents run along the first axis.
    for (axes, shapes, y, t) in softmax_jvp_points(0x5eed_0007) {
        let op = softmax_jvp(axes);
        let fwd = jacfwd(|t| apply_pair(&op, &t.constant_like(&y), t), &t).unwrap();
        let rev = jacrev(|t| apply_pair(&op, &t.constant_like(&y), t), &t).unwrap();
        assert!(fwd.all_close(&rev, 1e-14), "{axes:?} {shapes:?}: along t");
        let (fy, ft) = jacfwd(|(y, t)| apply_pair(&op, y, t), &(y.clone(), t.clone())).unwrap();
        let (ry, rt) = jacrev(|(y, t)| apply_pair(&op, y, t), &(y.clone(), t.clone())).unwrap();
        assert!(
            fy.all_close(&ry, 1e-14),
            "{axes:?} {shapes:?}: along y of both"
        );
        assert!(
            ft.all_close(&rt, 1e-14),
            "{axes:?} {shapes:?}: along t of both"
        );
        assert!(
            ft.all_close(&fwd, 1e-14),
            "{axes:?} {shapes:?}: t alone and of both"
        );
    }
}

#[test]
fn softmax_jvp_errors_name_the_operation_and_the_cause() {
    let (y, t3) = (t(&[0.5, 0.5, 0.0], &[3]), t(&[1.0, 2.0, 3.0], &[3]));
    let errors = [
        (softmax_jvp(&[0]).eval(&[&y]), "takes 2 inputs"),
        (softmax_jvp(&[1]).eval(&[&y, &t3]), "axis 1 is out of range"),
        (softmax_jvp(&[0, 0]).eval(&[&y, &t3]), "axis 0 is repeated"),
        (softmax_jvp(&[0]).eval(&[&y, &t(&[1.0; 4], &[4])]), "[4]"),
    ];
    for (result, cause) in errors {
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains("softmax_jvp") && message.contains(cause),
            "{message}"
        );
    }
}

#[test]
fn logsumexp_softmax_and_log_softmax_on_a_small_vector() {
    // x = [0, ln 3]: e^x = [1, 3], so logsumexp = ln 4, softmax = [1/4, 3/4].
    let l3 = 3.0_f64.ln();
    let x = t(&[0.0, l3], &[2]);
    assert_close(
        &x.logsumexp(&[0], false),
        &[4.0_f64.ln()],
        &[],
        1e-15,
        "lse",
    );
    assert_close(&x.softmax(0), &[0.25, 0.75], &[2], 1e-15, "softmax");
    let ls = [-(4.0_f64.ln()), l3 - 4.0_f64.ln()];
    assert_close(&x.log_softmax(0), &ls, &[2], 1e-15, "log_softmax");
    // d logsumexp / dx = softmax.
    let g = grad_of(&x, &Tensor::scalar(1.0), |x| x.logsumexp(&[0], false));
    assert_close(&g, &[0.25, 0.75], &[2], 1e-15, "lse grad");
    // softmax VJP with ct = [1, 0]: y (ct - <ct, y>) = [1/4 (1 - 1/4), 3/4 (0 - 1/4)].
    let g = grad_of(&x, &t(&[1.0, 0.0], &[2]), |x| x.softmax(0));
    assert_close(&g, &[3.0 / 16.0, -3.0 / 16.0], &[2], 1e-15, "softmax grad");
    // log_softmax VJP with ct = [1, 0]: ct - softmax sum(ct) = [1 - 1/4, -3/4].
    let g = grad_of(&x, &t(&[1.0, 0.0], &[2]), |x| x.log_softmax(0));
    assert_close(&g, &[0.75, -0.75], &[2], 1e-15, "log_softmax grad");

    // Along axis 1 of a matrix, each row on its own: rows [0, 0] and [ln 3, 0].
    let m = t(&[0.0, 0.0, l3, 0.0], &[2, 2]);
    let p = [0.5, 0.5, 0.75, 0.25];
    assert_close(&m.softmax(1), &p, &[2, 2], 1e-15, "softmax rows");
    let lse = [2.0_f64.ln(), 4.0_f64.ln()];
    assert_close(&m.logsumexp(&[1], false), &lse, &[2], 1e-15, "lse rows");

    // The Hessian of logsumexp is diag(p) - p p^T: at p = [1/4, 3/4], times v = [1, 0],
    // [1/4 - 1/16, -3/16].
    let inner = TensorTape::new();
    let xi = inner.var(x.clone());
    let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
    let xo = outer.var(xi.clone());
    let g = outer
        .gradient(&xo.logsumexp(&[0], false), &[&xo])
        .unwrap()
        .remove(0);
    let v = inner.constant(t(&[1.0, 0.0], &[2]));
    let hv = inner.gradient(&g.mul(&v).sum_all(), &[&xi]).unwrap();
    assert_close(
        &hv[0],
        &[3.0 / 16.0, -3.0 / 16.0],
        &[2],
        1e-15,
        "lse hessian",
    );
}

#[test]
fn reductions_over_all_axes_on_a_small_matrix() {
    let x = m23();
    // 21 / 6, the largest and the smallest entry, and ln(e^1 + ... + e^6) as
    // 6 + ln(1 + e^-1 + ... + e^-5).
    assert_close(&x.mean_all(), &[3.5], &[], 0.0, "mean_all");
    assert_close(&x.max_all(), &[6.0], &[], 0.0, "max_all");
    assert_close(&x.min_all(), &[1.0], &[], 0.0, "min_all");
    let lse = 6.0 + (0..6).map(|k| (-f64::from(k)).exp()).sum::<f64>().ln();
    assert_close(&x.logsumexp_all(), &[lse], &[], 1e-15, "logsumexp_all");
    // The same numbers as the reductions over every axis, and as sum_all's shape.
    assert_eq!(x.mean_all().to_vec(), x.mean_axes(&[0, 1], false).to_vec());
    assert_eq!(
        x.logsumexp_all().to_vec(),
        x.logsumexp(&[1, 0], false).to_vec()
    );
    assert_eq!(x.max_all().shape(), x.sum_all().shape());
    // A 0-dimensional array is its own mean, maximum, minimum and logsumexp.
    let s = Tensor::scalar(2.5);
    for y in [s.mean_all(), s.max_all(), s.min_all(), s.logsumexp_all()] {
        assert_eq!((y.shape(), y.item()), (&[][..], Some(2.5)));
    }
    // Gradients: 1/6 each (times the cotangent 6); all to the maximum (1, 2) and the minimum
    // (0, 0); a tie splits.
    let g = grad_of(&x, &Tensor::scalar(6.0), |x| x.mean_all());
    assert_close(&g, &[1.0; 6], &[2, 3], 1e-15, "mean_all grad");
    let g = grad_of(&x, &Tensor::scalar(1.0), |x| x.max_all());
    assert_close(
        &g,
        &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        &[2, 3],
        0.0,
        "max_all grad",
    );
    let g = grad_of(&x, &Tensor::scalar(1.0), |x| x.min_all());
    assert_close(
        &g,
        &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        &[2, 3],
        0.0,
        "min_all grad",
    );
    let tie = t(&[3.0, 1.0, 3.0, 2.0], &[2, 2]);
    let g = grad_of(&tie, &Tensor::scalar(1.0), |x| x.max_all());
    assert_close(&g, &[0.5, 0.0, 0.5, 0.0], &[2, 2], 0.0, "max_all tie");
    // Nothing to reduce: NaN mean, -inf logsumexp (numpy's), max and min an error naming
    // the reduction and the shape.
    let empty = Tensor::<f64>::zeros(&[2, 0]);
    assert!(empty.mean_all().item().unwrap().is_nan());
    assert_eq!(empty.logsumexp_all().item(), Some(f64::NEG_INFINITY));
    for (e, op) in [
        (empty.try_max_all().unwrap_err(), "max_axes"),
        (empty.try_min_all().unwrap_err(), "min_axes"),
    ] {
        let m = message(e);
        assert!(
            m.starts_with(&format!("{op}: ")) && m.contains("[2, 0]"),
            "{m}"
        );
    }
    // NaN anywhere makes max_all and min_all NaN.
    let n = t(&[1.0, f64::NAN, 3.0, 0.0], &[2, 2]);
    assert!(n.max_all().item().unwrap().is_nan() && n.min_all().item().unwrap().is_nan());
}

#[test]
#[should_panic(expected = "max_axes: cannot reduce over the empty axes")]
fn max_all_of_nothing_panics_with_the_error() {
    let _ = Tensor::<f64>::zeros(&[0]).max_all();
}

#[test]
fn cumsum_on_a_small_matrix_and_its_gradient_summed_from_the_other_end() {
    use perturb::tensor::jvp;
    let x = m23();
    // Down the columns: [1, 2, 3], [1+4, 2+5, 3+6]; along the rows: [1, 1+2, 1+2+3], ...
    assert_close(
        &x.cumsum(0),
        &[1.0, 2.0, 3.0, 5.0, 7.0, 9.0],
        &[2, 3],
        0.0,
        "cumsum 0",
    );
    assert_close(
        &x.cumsum(1),
        &[1.0, 3.0, 6.0, 4.0, 9.0, 15.0],
        &[2, 3],
        0.0,
        "cumsum 1",
    );
    // The gradient of sum(cumsum(x, 1) * w): entry k reaches outputs k..n, so it gets
    // w_k + ... + w_{n-1}.
    let w = t(&[1.0, 10.0, 100.0, 2.0, 20.0, 200.0], &[2, 3]);
    let g = grad_of(&x, &w, |x| x.cumsum(1));
    let want = [111.0, 110.0, 100.0, 222.0, 220.0, 200.0];
    assert_close(&g, &want, &[2, 3], 0.0, "cumsum grad");
    // Forward mode: the cumulative sum of the tangent.
    let (y, dy) = jvp(|x| x.try_cumsum(1), &x, &w).unwrap();
    assert_eq!(
        (y.to_vec(), dy.to_vec()),
        (x.cumsum(1).to_vec(), w.cumsum(1).to_vec())
    );
    // Empty axes and axes of length 1.
    assert_eq!(Tensor::<f64>::zeros(&[2, 0]).cumsum(1).shape(), &[2, 0]);
    assert_eq!(Tensor::<f64>::zeros(&[0, 3]).cumsum(1).shape(), &[0, 3]);
    assert_eq!(x.unsqueeze(1).cumsum(1).to_vec(), x.to_vec());
    // A 0-dimensional array has no axis to sum along.
    let m = message(Tensor::scalar(1.0).try_cumsum(0).unwrap_err());
    assert!(m.starts_with("cumsum: ") && m.contains("axis 0"), "{m}");
}

// ---- argmax and argmin ---------------------------------------------------------------------

#[test]
fn argmax_and_argmin_on_small_matrices_with_ties_nan_and_infinities() {
    let x = t(&[1.0, 7.0, 3.0, 4.0, 0.0, 6.0], &[2, 3]);
    // Rows [1, 7, 3] and [4, 0, 6]; columns [1, 4], [7, 0], [3, 6].
    let a = x.argmax(1);
    assert_eq!((a.shape(), a.as_slice()), (&[2][..], &[1, 2][..]));
    assert_eq!(x.argmax(0).as_slice(), &[1, 0, 1]);
    assert_eq!(x.argmin(1).as_slice(), &[0, 1]);
    assert_eq!(x.argmin(0).as_slice(), &[0, 1, 0]);
    // Ties go to the first position (-0 and 0 are equal).
    let ties = t(&[2.0, 5.0, 5.0, 1.0, 1.0, 0.0, -0.0, 0.0, -1.0], &[3, 3]);
    assert_eq!(ties.argmax(1).as_slice(), &[1, 0, 0]);
    assert_eq!(ties.argmin(1).as_slice(), &[0, 2, 2]);
    assert_eq!(ties.argmin(0).as_slice(), &[2, 2, 2]);
    // NaN counts as the extreme for both, the first NaN (np.argmax([1, nan, 3, nan]) = 1, and
    // np.argmin gives 1 too): the position holds what max_axes and min_axes return.
    let nan = Tensor::vector(&[1.0, f64::NAN, 3.0, f64::NAN]);
    assert_eq!(nan.argmax(0).item(), Some(1));
    assert_eq!(nan.argmin(0).item(), Some(1));
    assert_eq!(Tensor::vector(&[f64::NAN, 5.0]).argmin(0).item(), Some(0));
    // Infinities are ordinary values.
    let inf = Tensor::vector(&[f64::NEG_INFINITY, f64::NEG_INFINITY, -1e308]);
    assert_eq!(
        (inf.argmax(0).item(), inf.argmin(0).item()),
        (Some(2), Some(0))
    );
    // f32 agrees.
    assert_eq!(x.cast::<f32>().argmax(1), x.argmax(1));
    // The indices pick the extrema: along each axis of a random 3-axis tensor, gathering at
    // argmax / argmin gives max_axes / min_axes.
    let mut rng = SplitMix(0x5eed_00a1);
    let r = rng.tensor(&[3, 4, 5], -1.0, 1.0);
    for axis in 0..3 {
        let mut keep = r.shape().to_vec();
        keep[axis] = 1;
        for (i, m) in [
            (r.argmax(axis), r.max_axes(&[axis], true)),
            (r.argmin(axis), r.min_axes(&[axis], true)),
        ] {
            let mut shape = r.shape().to_vec();
            shape.remove(axis);
            assert_eq!(i.shape(), &shape[..]);
            let picked = r.try_gather(axis, i.into_vec(), &keep).unwrap();
            assert_eq!(picked.to_vec(), m.to_vec(), "axis {axis}");
        }
    }
}

#[test]
fn argmax_and_argmin_errors_and_empty_results() {
    let x = m23();
    // A bad axis names the operation, the axis and the shape (a_bad_axis_is_an_error... too).
    for (e, op) in [
        (x.try_argmax(2).unwrap_err(), "argmax"),
        (x.try_argmin(5).unwrap_err(), "argmin"),
        (Tensor::scalar(1.0).try_argmax(0).unwrap_err(), "argmax"),
    ] {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        let m = message(e);
        assert!(
            m.starts_with(&format!("{op}: ")) && m.contains("axis "),
            "{m}"
        );
    }
    // An empty axis with positions off it: nothing to choose from.
    let e = Tensor::<f64>::zeros(&[2, 0]).try_argmax(1).unwrap_err();
    let m = message(e);
    assert!(
        m.starts_with("argmax: ") && m.contains("axis 1") && m.contains("[2, 0]"),
        "{m}"
    );
    assert!(Tensor::<f64>::zeros(&[0, 3]).try_argmin(0).is_err());
    // No position off the axis: an empty result, empty axis or not.
    let none = Tensor::<f64>::zeros(&[0, 3]).argmax(1);
    assert!(none.is_empty() && none.shape() == [0]);
    assert_eq!(Tensor::<f64>::zeros(&[3, 2]).argmax(1).len(), 3);
    assert_eq!(Tensor::<f64>::zeros(&[0, 0]).argmin(1).shape(), &[0]);
    assert_eq!(none.item(), None);
}

#[test]
#[should_panic(expected = "argmax: axis 2 is out of range for a tensor of shape [2, 3]")]
fn argmax_panics_with_the_error() {
    let _ = m23().argmax(2);
}

#[test]
fn argmax_and_argmin_on_every_array_type_stacks_included() {
    use perturb::tensor::{jacfwd, Batched, DualTensor};
    let mut rng = SplitMix(0x5eed_00a2);
    let x = rng.tensor(&[2, 3, 4], -1.0, 1.0);
    let want = (x.argmax(2), x.argmin(1));
    // Tape variables and dual tensors read their values.
    let tape = TensorTape::new();
    let v = tape.var(x.clone());
    assert_eq!((v.argmax(2), v.argmin(1)), want);
    let d = DualTensor::new(x.clone(), Tensor::ones(&[2, 3, 4]));
    assert_eq!((d.argmax(2), d.argmin(1)), want);
    // A stack of 2 members of shape [3, 4]: each member's positions, the stack's axis first,
    // as the stack's plain value has it; the axis is a member's axis.
    let stack = Batched::stack(x.clone());
    assert_eq!(stack.shape(), &[3, 4]);
    let (a, b) = (stack.argmax(1), stack.argmin(0));
    assert_eq!((a.shape(), b.shape()), (&[2, 3][..], &[2, 4][..]));
    assert_eq!((a, b), want);
    for member in 0..2 {
        let m = x.narrow(0, member, 1).squeeze(0);
        let (a, b) = (stack.argmax(1), stack.argmin(0));
        assert_eq!(
            a.as_slice()[3 * member..3 * member + 3],
            *m.argmax(1).as_slice()
        );
        assert_eq!(
            b.as_slice()[4 * member..4 * member + 4],
            *m.argmin(0).as_slice()
        );
    }
    // The axis is checked against a member's shape.
    let m = message(stack.try_argmax(2).unwrap_err());
    assert!(m.contains("[3, 4]") && !m.contains("[2, 3, 4]"), "{m}");
    // Used inside a function transformed by jacfwd (dual tensors of stacks): x[argmax x] has
    // the one-hot Jacobian at the maximum.
    let v = Tensor::vector(&[0.5, 2.0, -1.0, 1.5]);
    let j = jacfwd(|x| x.try_index_select(0, x.argmax(0).into_vec()), &v).unwrap();
    assert_eq!(
        (j.shape(), j.to_vec()),
        (&[1, 4][..], vec![0.0, 1.0, 0.0, 0.0])
    );
}

#[test]
fn squeeze_unsqueeze_narrow_and_slice() {
    let x = m23();
    assert_eq!(x.unsqueeze(0).shape(), &[1, 2, 3]);
    assert_eq!(x.unsqueeze(1).squeeze(1).shape(), &[2, 3]);
    assert_eq!(x.unsqueeze(2).unsqueeze(0).squeeze_all().shape(), &[2, 3]);
    assert_eq!(
        Tensor::<f64>::ones(&[1, 1]).squeeze_all().shape(),
        &[] as &[usize]
    );
    // Columns 1..3 of each row: [2, 3] and [5, 6].
    assert_close(
        &x.narrow(1, 1, 2),
        &[2.0, 3.0, 5.0, 6.0],
        &[2, 2],
        0.0,
        "narrow",
    );
    assert_close(
        &x.narrow(0, 1, 1),
        &[4.0, 5.0, 6.0],
        &[1, 3],
        0.0,
        "narrow rows",
    );
    assert_close(&x.narrow(1, 3, 0), &[], &[2, 0], 0.0, "narrow empty");
    let s = x.try_slice(1, 0..1).unwrap();
    assert_close(&s, &[1.0, 4.0], &[2, 1], 0.0, "slice");
    // The gradient of a narrow is the cotangent padded with zeros.
    let g = grad_of(&x, &t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]), |x| {
        x.narrow(1, 1, 2)
    });
    assert_close(
        &g,
        &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0],
        &[2, 3],
        0.0,
        "narrow grad",
    );
    // Squeeze and unsqueeze pass the cotangent through, reshaped.
    let g = grad_of(&x, &t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 1, 3]), |x| {
        x.unsqueeze(1)
    });
    assert_close(&g, &m23().to_vec(), &[2, 3], 0.0, "unsqueeze grad");
}

#[test]
fn a_window_of_rows_is_a_view_that_behaves_as_a_copy() {
    let x = Tensor::<f64>::arange(24).reshape(&[4, 3, 2]).unwrap();
    let rows = x.narrow(0, 1, 2);
    // The same buffer, two rows (six elements) in: no copy.
    assert_eq!(rows.as_slice().as_ptr(), x.as_slice()[6..].as_ptr());
    assert_eq!(rows.len(), 12);
    assert_eq!(rows.to_vec(), (6..18).map(f64::from).collect::<Vec<_>>());
    // A view of a view, reshaped, indexed, and taken apart.
    let inner = rows.narrow(0, 1, 1).reshape(&[6]).unwrap();
    assert_eq!(inner.to_vec(), (12..18).map(f64::from).collect::<Vec<_>>());
    assert_eq!(inner.get(&[5]), Some(17.0));
    assert_eq!(inner.item(), None);
    assert_eq!(inner.clone().into_vec(), inner.to_vec());
    assert_eq!(x.narrow(0, 3, 1).narrow(1, 2, 1).to_vec(), vec![22.0, 23.0]);
    assert!(x
        .narrow(1, 0, 1)
        .narrow(0, 1, 1)
        .all_close(&t(&[6.0, 7.0], &[1, 1, 2]), 0.0));
    // Operations on views read only the window.
    assert_eq!(inner.sum_all().item(), Some((12..18).sum::<i32>() as f64));
    assert_eq!(
        format!("{}", x.narrow(0, 0, 1).narrow(1, 1, 1)),
        format!("{}", t(&[2.0, 3.0], &[1, 1, 2]))
    );
    // The gradient through overlapping windows adds where they overlap.
    let v = Tensor::vector(&[1.0, 2.0, 3.0, 4.0]);
    let g = grad_of(&v, &t(&[1.0; 1], &[]), |x| {
        let head = x.narrow(0, 0, 3);
        let tail = x.narrow(0, 1, 3);
        head.mul(&tail).sum_all()
    });
    assert_close(&g, &[2.0, 4.0, 6.0, 3.0], &[4], 0.0, "overlapping windows");
}

#[test]
fn index_select_gather_and_their_adjoints() {
    let v = t(&[10.0, 20.0, 30.0], &[3]);
    // Entries 2, 0, 2.
    let s = v.index_select(0, vec![2, 0, 2]);
    assert_close(&s, &[30.0, 10.0, 30.0], &[3], 0.0, "index_select");
    // The repeated entry 2 collects the cotangents 1 and 3; entry 0 gets 2, entry 1 nothing.
    let g = grad_of(&v, &t(&[1.0, 2.0, 3.0], &[3]), |x| {
        x.index_select(0, vec![2, 0, 2])
    });
    assert_close(&g, &[2.0, 0.0, 4.0], &[3], 0.0, "index_select grad");
    let a = t(&[1.0, 2.0, 3.0], &[3]);
    let added = a.try_index_add(0, vec![2, 0, 2], 3).unwrap();
    assert_close(&added, &[2.0, 0.0, 4.0], &[3], 0.0, "index_add");

    let x = m23();
    // Rows of x taken per (row, position): row 0 takes columns 2, 2; row 1 takes 0, 1.
    let g = x.try_gather(1, vec![2, 2, 0, 1], &[2, 2]).unwrap();
    assert_close(&g, &[3.0, 3.0, 4.0, 5.0], &[2, 2], 0.0, "gather");
    // Along axis 0 with a [1, 3] index: x[1][0], x[0][1], x[1][2].
    let g = x.try_gather(0, vec![1, 0, 1], &[1, 3]).unwrap();
    assert_close(&g, &[4.0, 2.0, 6.0], &[1, 3], 0.0, "gather axis 0");
    // Gradient of the first gather with cotangent [[1, 2], [3, 4]]: (0, 2) gets 1 + 2, (1, 0)
    // gets 3, (1, 1) gets 4.
    let ct = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let d = grad_of(&x, &ct, |x| {
        x.try_gather(1, vec![2, 2, 0, 1], &[2, 2]).unwrap()
    });
    assert_close(
        &d,
        &[0.0, 0.0, 3.0, 3.0, 4.0, 0.0],
        &[2, 3],
        0.0,
        "gather grad",
    );
    let s = ct.try_scatter_add(1, vec![2, 2, 0, 1], &[2, 3]).unwrap();
    assert_close(
        &s,
        &[0.0, 0.0, 3.0, 3.0, 4.0, 0.0],
        &[2, 3],
        0.0,
        "scatter_add",
    );
}

#[test]
fn concat_and_stack() {
    let a = t(&[1.0, 2.0], &[2, 1]);
    let b = t(&[3.0, 4.0, 5.0, 6.0], &[2, 2]);
    // Row by row: [1 | 3 4] and [2 | 5 6].
    let c = Tensor::concat(&[&a, &b], 1);
    assert_close(&c, &[1.0, 3.0, 4.0, 2.0, 5.0, 6.0], &[2, 3], 0.0, "concat");
    let c0 = Tensor::concat(&[&b, &b.narrow(0, 0, 1)], 0);
    assert_close(
        &c0,
        &[3.0, 4.0, 5.0, 6.0, 3.0, 4.0],
        &[3, 2],
        0.0,
        "concat 0",
    );
    // Each input gets its columns of the cotangent back.
    let tape = TensorTape::new();
    let (av, bv) = (tape.var(a.clone()), tape.var(b.clone()));
    let y = TensorVar::concat(&[&av, &bv], 1);
    let ct = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    let g = tape.vjp(&y, &ct, &[&av, &bv]).unwrap();
    assert_close(&g[0], &[1.0, 4.0], &[2, 1], 0.0, "concat grad a");
    assert_close(&g[1], &[2.0, 3.0, 5.0, 6.0], &[2, 2], 0.0, "concat grad b");
    // A constant among the inputs is not differentiated, the others still are.
    let y = TensorVar::concat(&[&tape.constant(a.clone()), &bv], 1);
    let g = tape.vjp(&y, &ct, &[&bv]).unwrap();
    assert_close(
        &g[0],
        &[2.0, 3.0, 5.0, 6.0],
        &[2, 2],
        0.0,
        "concat grad const",
    );

    let p = t(&[1.0, 2.0], &[2]);
    let q = t(&[3.0, 4.0], &[2]);
    // Stacked as rows [1 2; 3 4], or as columns [1 3; 2 4].
    assert_close(
        &Tensor::stack(&[&p, &q], 0),
        &[1.0, 2.0, 3.0, 4.0],
        &[2, 2],
        0.0,
        "stack 0",
    );
    assert_close(
        &Tensor::stack(&[&p, &q], 1),
        &[1.0, 3.0, 2.0, 4.0],
        &[2, 2],
        0.0,
        "stack 1",
    );
    let s = Tensor::stack(&[&Tensor::scalar(1.0), &Tensor::scalar(2.0)], 0);
    assert_close(&s, &[1.0, 2.0], &[2], 0.0, "stack scalars");
}

// ---- Stability and ties ------------------------------------------------------------------------

#[test]
fn logsumexp_is_exact_near_700() {
    let x = t(&[700.0, 700.5, 699.0], &[3]);
    let y = x.logsumexp(&[0], false).to_vec()[0];
    // ln(e^700 + e^700.5 + e^699) = 700.5 + ln(e^-0.5 + 1 + e^-1.5), each term well inside
    // double range.
    let exact = 700.5 + (1.0 + (-0.5_f64).exp() + (-1.5_f64).exp()).ln();
    assert!((y - exact).abs() <= 1e-12 * exact, "{y} vs {exact}");
    // Its gradient, the softmax exp(x - y), is finite and sums to 1 (to 1e-12: x - y near 700
    // carries an absolute rounding error of about 1e-13, as any input that large does).
    let g = grad_of(&x, &Tensor::scalar(1.0), |x| x.logsumexp(&[0], false));
    assert!(g.to_vec().iter().all(|p| p.is_finite()));
    assert!((g.to_vec().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Where e^x overflows: ln(3 e^1000) = 1000 + ln 3; and where it underflows.
    let big = t(&[1000.0; 3], &[3]).logsumexp(&[0], false).to_vec()[0];
    assert_eq!(big, 1000.0 + 3.0_f64.ln());
    let small = t(&[-1000.0; 3], &[3]).logsumexp(&[0], false).to_vec()[0];
    assert_eq!(small, -1000.0 + 3.0_f64.ln());
    // In f32, where e^100 already overflows: 100 + ln 2.
    let f = Tensor::vector(&[100.0_f32, 100.0])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert!((f - (100.0 + 2.0_f32.ln())).abs() <= 1e-5);
    // All -inf: ln 0 = -inf; +inf stays +inf.
    let all_neg = t(&[f64::NEG_INFINITY; 2], &[2])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert_eq!(all_neg, f64::NEG_INFINITY);
    let pos = t(&[f64::INFINITY, 0.0], &[2])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert_eq!(pos, f64::INFINITY);
}

#[test]
fn softmax_and_log_softmax_of_large_values_are_finite() {
    let x = t(&[1000.0, -1000.0, 0.0, 999.0], &[4]);
    let ls = x.log_softmax(0).to_vec();
    assert!(ls.iter().all(|v| v.is_finite()), "{ls:?}");
    // x - 1000 - ln(1 + e^-1 + ...): the largest two entries, the rest negligible.
    let z = (1.0 + (-1.0_f64).exp()).ln();
    let exact = [-z, -2000.0 - z, -1000.0 - z, -1.0 - z];
    assert!(t(&ls, &[4]).all_close(&t(&exact, &[4]), 1e-15), "{ls:?}");
    let p = x.softmax(0).to_vec();
    assert!(p.iter().all(|v| v.is_finite()));
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    // Gradients stay finite too.
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let g = grad_of(&x, &w, |x| x.log_softmax(0));
    assert!(g.to_vec().iter().all(|v| v.is_finite()));
    let g = grad_of(&x, &w, |x| x.softmax(0));
    assert!(g.to_vec().iter().all(|v| v.is_finite()));
    // f32 at +-200, where e^200 overflows f32.
    let y = Tensor::vector(&[200.0_f32, -200.0]).log_softmax(0).to_vec();
    assert_eq!(y, vec![0.0, -400.0]);
}

#[test]
fn ties_in_max_and_min_share_the_cotangent_equally() {
    let x = t(&[1.0, 4.0, 4.0, 4.0, 0.0, 4.0], &[2, 3]);
    // Row maxima: both rows tie at 4 in two places, each gets half its row's cotangent.
    let g = grad_of(&x, &t(&[2.0, 6.0], &[2]), |x| x.max_axes(&[1], false));
    assert_close(
        &g,
        &[0.0, 1.0, 1.0, 3.0, 0.0, 3.0],
        &[2, 3],
        0.0,
        "row max ties",
    );
    // The maximum over everything: four 4s, a quarter each.
    let g = grad_of(&x, &Tensor::scalar(1.0), |x| x.max_axes(&[0, 1], false));
    assert_close(
        &g,
        &[0.0, 0.25, 0.25, 0.25, 0.0, 0.25],
        &[2, 3],
        0.0,
        "all max ties",
    );
    // Three-way tie for a minimum: a third each.
    let y = t(&[2.0, 2.0, 5.0, 2.0], &[4]);
    let g = grad_of(&y, &Tensor::scalar(3.0), |x| x.min_axes(&[0], false));
    assert_close(&g, &[1.0, 1.0, 0.0, 1.0], &[4], 1e-15, "min ties");
    // Column minima of x: 1 (column 0) and 0 (column 1) alone, column 2 ties at 4.
    let g = grad_of(&x, &t(&[1.0, 1.0, 1.0], &[1, 3]), |x| {
        x.min_axes(&[0], true)
    });
    assert_close(
        &g,
        &[1.0, 0.0, 0.5, 0.0, 1.0, 0.5],
        &[2, 3],
        0.0,
        "column min ties",
    );
}

// ---- Errors ------------------------------------------------------------------------------------

fn message(e: Error) -> String {
    e.to_string()
}

#[test]
fn a_bad_axis_is_an_error_naming_the_op_the_axis_and_the_shape() {
    let x = m23();
    for (e, op) in [
        (x.try_sum_axes(&[2], false).unwrap_err(), "sum_axes"),
        (x.try_mean_axes(&[0, 5], true).unwrap_err(), "mean_axes"),
        (x.try_max_axes(&[3], false).unwrap_err(), "max_axes"),
        (x.try_min_axes(&[2], false).unwrap_err(), "min_axes"),
        (x.try_logsumexp(&[2], false).unwrap_err(), "logsumexp"),
        (x.try_softmax(2).unwrap_err(), "softmax"),
        (x.try_log_softmax(7).unwrap_err(), "log_softmax"),
        (x.try_narrow(2, 0, 1).unwrap_err(), "narrow"),
        (x.try_index_select(2, vec![0]).unwrap_err(), "index_select"),
        (x.try_gather(2, vec![0; 6], &[2, 3]).unwrap_err(), "gather"),
        (Tensor::try_concat(&[&x, &x], 2).unwrap_err(), "concat"),
        (x.try_cumsum(2).unwrap_err(), "cumsum"),
        (x.try_argmax(2).unwrap_err(), "argmax"),
        (x.try_argmin(3).unwrap_err(), "argmin"),
    ] {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{op}: {e:?}");
        let m = message(e);
        assert!(m.starts_with(&format!("{op}: ")), "{m}");
        assert!(m.contains("axis ") && m.contains("[2, 3]"), "{m}");
    }
    // A repeated axis.
    let m = message(x.try_sum_axes(&[1, 0, 1], false).unwrap_err());
    assert!(
        m.contains("sum_axes") && m.contains("axis 1") && m.contains("repeated"),
        "{m}"
    );
    // Squeeze of an axis that is not of length 1, unsqueeze past the end.
    let m = message(x.try_squeeze(0).unwrap_err());
    assert!(
        m.contains("squeeze") && m.contains("axis 0") && m.contains("[2, 3]"),
        "{m}"
    );
    let m = message(x.try_unsqueeze(3).unwrap_err());
    assert!(
        m.contains("unsqueeze") && m.contains("axis 3") && m.contains("[2, 3]"),
        "{m}"
    );
    // Stack past the end.
    assert!(Tensor::try_stack(&[&x, &x], 3).is_err());
}

#[test]
fn ranges_and_indices_out_of_range_are_errors_naming_index_and_length() {
    let x = m23();
    let m = message(x.try_narrow(1, 2, 2).unwrap_err());
    assert!(m.starts_with("narrow: ") && m.contains("length 3"), "{m}");
    // start + len overflows usize: still an error, not a panic.
    assert!(x.try_narrow(1, usize::MAX, 2).is_err());
    assert!(x.try_slice(1, 1..4).is_err());
    let m = message(x.try_index_select(1, vec![0, 5]).unwrap_err());
    assert!(m.starts_with("index_select: "), "{m}");
    assert!(m.contains("index 5") && m.contains("length 3"), "{m}");
    let m = message(x.try_gather(0, vec![0, 1, 2], &[1, 3]).unwrap_err());
    assert!(
        m.starts_with("gather: ") && m.contains("index 2") && m.contains("length 2"),
        "{m}"
    );
    let m = message(x.try_index_add(0, vec![4, 0], 3).unwrap_err());
    assert!(m.starts_with("index_add: ") && m.contains("index 4") && m.contains("length 3"));
    let m = message(
        x.try_scatter_add(0, vec![0, 1, 9, 0, 0, 0], &[3, 3])
            .unwrap_err(),
    );
    assert!(
        m.starts_with("scatter_add: ") && m.contains("index 9"),
        "{m}"
    );
    // The index's shape does not fit: too many elements, too few axes, longer than the input.
    assert!(matches!(
        x.try_gather(1, vec![0; 5], &[2, 3]),
        Err(Error::ElementCount { .. })
    ));
    assert!(matches!(
        x.try_gather(1, vec![0; 3], &[3]),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        x.try_gather(1, vec![0; 3], &[3, 1]),
        Err(Error::ShapeMismatch { .. })
    ));
    // An index_add whose input does not have one entry per index.
    assert!(matches!(
        x.try_index_add(0, vec![0], 3),
        Err(Error::LengthMismatch { .. })
    ));
    // Max over an empty axis has no value.
    let e = Tensor::<f64>::zeros(&[2, 0]);
    let m = message(e.try_max_axes(&[1], false).unwrap_err());
    assert!(m.starts_with("max_axes: ") && m.contains("[2, 0]"), "{m}");
    assert!(e.try_min_axes(&[1], false).is_err());
    // ... but an empty result is fine.
    assert_eq!(e.max_axes(&[0], false).shape(), &[0]);
}

#[test]
fn mismatched_shapes_in_concat_and_stack_are_errors_naming_the_shapes() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[2, 4]);
    let e = Tensor::try_concat(&[&a, &b], 0).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "concat", .. }));
    let m = message(e);
    assert!(m.contains("[2, 3]") && m.contains("[2, 4]"), "{m}");
    // Along axis 1 they fit.
    assert_eq!(Tensor::concat(&[&a, &b], 1).shape(), &[2, 7]);
    // A different number of axes.
    let c = Tensor::<f64>::zeros(&[2, 3, 1]);
    assert!(Tensor::try_concat(&[&a, &c], 0).is_err());
    let m = message(Tensor::try_stack(&[&a, &a, &b], 0).unwrap_err());
    assert!(
        m.starts_with("stack: ") && m.contains("[2, 3]") && m.contains("[2, 4]"),
        "{m}"
    );
    // Nothing to join.
    let none: [&Tensor<f64>; 0] = [];
    assert!(message(Tensor::try_concat(&none, 0).unwrap_err()).starts_with("concat: "));
    assert!(message(Tensor::try_stack(&none, 0).unwrap_err()).starts_with("stack: "));
}

#[test]
fn errors_come_through_tape_variables_too() {
    let tape = TensorTape::new();
    let x = tape.var(m23());
    assert!(x.try_sum_axes(&[2], false).is_err());
    assert!(x.try_index_select(0, vec![2]).is_err());
    let y = tape.var(Tensor::zeros(&[3, 3]));
    // Two rows and three rows side by side.
    assert!(matches!(
        TensorVar::try_concat(&[&x, &y], 1),
        Err(Error::ShapeMismatch { op: "concat", .. })
    ));
}

#[test]
#[should_panic(expected = "softmax: axis 2 is out of range")]
fn the_panicking_forms_panic_with_the_error() {
    let _ = m23().softmax(2);
}

#[test]
fn padding_onto_a_tensor_of_the_wrong_shape_or_with_three_inputs_is_an_error() {
    use perturb::tensor::{ops::PadNarrow, Op};
    let pad = PadNarrow {
        axis: 0,
        start: 1,
        total: 4,
    };
    let x = t(&[1.0, 2.0], &[2]);
    let err = pad
        .eval(&[&x, &t(&[0.0; 3], &[3])])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pad_narrow") && err.contains("[4]") && err.contains("[3]"),
        "{err}"
    );
    let err = pad.eval(&[&x, &x, &x]).unwrap_err().to_string();
    assert!(
        err.contains("pad_narrow") && err.contains("1 or 2 inputs") && err.contains("found 3"),
        "{err}"
    );
    // Through a tape: the same error, no panic.
    let tape = TensorTape::new();
    let v = tape.var(x.clone());
    let onto = tape.constant(t(&[0.0; 5], &[5]));
    assert!(Array::apply(&pad, &[&v, &onto]).is_err());
}

#[test]
fn padding_onto_a_stack_or_from_a_stack_equals_padding_each_member() {
    use perturb::tensor::{ops::PadNarrow, Op};
    let pad = PadNarrow {
        axis: 0,
        start: 1,
        total: 4,
    };
    let windows = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]);
    let ontos = t(&(10..22).map(f64::from).collect::<Vec<_>>(), &[3, 4]);
    let window = t(&[1.0, 2.0], &[2]);
    let onto = t(&[10.0, 20.0, 30.0, 40.0], &[4]);
    let member = |stack: &Tensor<f64>, i: usize| stack.narrow(0, i, 1).squeeze(0);
    for (stacked, expected) in [
        (
            [true, false],
            (0..3)
                .map(|i| pad.eval(&[&member(&windows, i), &onto]).unwrap())
                .collect::<Vec<_>>(),
        ),
        (
            [false, true],
            (0..3)
                .map(|i| pad.eval(&[&window, &member(&ontos, i)]).unwrap())
                .collect(),
        ),
        (
            [true, true],
            (0..3)
                .map(|i| {
                    pad.eval(&[&member(&windows, i), &member(&ontos, i)])
                        .unwrap()
                })
                .collect(),
        ),
    ] {
        let inputs = [
            if stacked[0] { &windows } else { &window },
            if stacked[1] { &ontos } else { &onto },
        ];
        let got = pad.batch(&inputs, &stacked, 3).unwrap();
        let want: Vec<f64> = expected.iter().flat_map(|m| m.to_vec()).collect();
        assert_close(&got, &want, &[3, 4], 0.0, "pad_narrow onto, batched");
    }
}

// ---- Precision near |x| = 700..1e4 (reliability report, section 7) -----------------------

/// The relative difference of `got` from `want`.
fn rel(got: f64, want: f64) -> f64 {
    ((got - want) / want).abs()
}

/// The weights of a two-element logsumexp at `[a, a + d]`, by the closed form from `d` alone
/// (no large number is involved, so it is accurate to an ulp or two):
/// `1 / (1 + e^d)` and `e^d / (1 + e^d)`.
fn two_weights(d: f64) -> [f64; 2] {
    let e = d.exp();
    [1.0 / (1.0 + e), e / (1.0 + e)]
}

#[test]
fn logsumexp_gradient_keeps_full_precision_for_large_inputs() {
    use perturb::tensor::grad;
    // f64 at +-800: before, exp(x - lse) lost |x| eps, 5.5e-14 relative.
    for a in [800.0, -800.0, 700.25, 1e4] {
        for d in [0.0, 0.5, -1.25, 3.0] {
            let x = Tensor::vector(&[a, a + d]);
            let g = grad(|x| Ok(x.logsumexp(&[0], false)), &x).unwrap();
            let want = two_weights(d);
            for (got, want) in g.as_slice().iter().zip(want) {
                assert!(
                    rel(*got, want) < 4.0 * f64::EPSILON,
                    "at {a}, {d}: {got} vs {want}"
                );
            }
        }
    }
    // f32 at 1e4: before, 0.49989 for 0.5. The reference is the closed form in f64.
    for (a, d) in [(1e4_f32, 0.0_f32), (1e4, -1.5), (-1e4, 2.0), (750.0, 0.25)] {
        let x = Tensor::vector(&[a, a + d]);
        let g = grad(|x| Ok(x.logsumexp(&[0], false)), &x).unwrap();
        let want = two_weights(f64::from(d));
        for (got, want) in g.as_slice().iter().zip(want) {
            let err = rel(f64::from(*got), want);
            assert!(
                err < 4.0 * f64::from(f32::EPSILON),
                "at {a}, {d}: {got} vs {want}"
            );
        }
    }
    // Several axes at once, forward mode too: the weights sum to 1 and follow the closed form.
    let x = Tensor::from_vec(vec![900.0, 900.5, 900.0, 900.5], &[2, 2]).unwrap();
    let (_, t) = perturb::tensor::jvp(
        |x| x.try_logsumexp(&[0, 1], false),
        &x,
        &Tensor::from_vec(vec![0.0, 1.0, 0.0, 0.0], &[2, 2]).unwrap(),
    )
    .unwrap();
    let want = two_weights(0.5)[1] / 2.0;
    assert!(
        rel(t.to_vec()[0], want) < 4.0 * f64::EPSILON,
        "{t:?} vs {want}"
    );
}

#[test]
fn logsumexp_hessian_keeps_full_precision_for_large_inputs() {
    // H = diag(w) - w w^T with the closed-form weights; the rule is written in differentiable
    // operations, so the Hessian comes from the same code.
    let x = Tensor::vector(&[800.0, 800.5]);
    let h = perturb::tensor::hessian(|x| x.try_logsumexp(&[0], false), &x).unwrap();
    let w = two_weights(0.5);
    let want = [
        w[0] - w[0] * w[0],
        -w[0] * w[1],
        -w[1] * w[0],
        w[1] - w[1] * w[1],
    ];
    for (got, want) in h.as_slice().iter().zip(want) {
        assert!(rel(*got, want) < 1e-14, "{h:?} vs {want:?}");
    }
}

struct LogSumExpFn;
impl perturb::tensor::TensorFn<f64> for LogSumExpFn {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        // Weighted, so that the first and second derivatives are not symmetric in the inputs.
        let w = x.constant_like(&Tensor::vector(&[1.0, -2.0, 0.5]));
        x.try_logsumexp(&[0], false)?
            .try_mul(&x.try_softmax(0)?.try_mul(&w)?.sum_all())
    }
}

#[test]
fn logsumexp_and_softmax_derivatives_pass_check_grads_at_order_two() {
    use perturb::tensor::{check_grads, CheckOptions};
    // The step is relative to max |x|: near 700 it is cut so that the difference's
    // truncation error stays below the tolerance.
    for (x, step) in [
        (Tensor::vector(&[0.3, -1.2, 0.8]), 1e-5),
        (Tensor::vector(&[700.3, 701.2, 699.8]), 1.5e-7),
    ] {
        let options = CheckOptions {
            step,
            ..CheckOptions::default()
        };
        let report = check_grads(&LogSumExpFn, &x, &options).unwrap();
        assert!(report.passes(1e-6), "{report}");
    }
}

#[test]
fn a_nearly_certain_row_uses_ln_1p() {
    // logsumexp([-30, 0]) = ln(1 + t) with t = e^-30 = 9.4e-14: ln(1 + t) = t - t^2/2 + ...,
    // to well under an ulp. Before, ln of the rounded 1 + t was 1e-3 off.
    let t = (-30.0_f64).exp();
    let want = t - t * t / 2.0;
    let x = Tensor::vector(&[-30.0, 0.0]);
    let got = x.logsumexp(&[0], false).to_vec()[0];
    assert!(rel(got, want) < 2.0 * f64::EPSILON, "{got} vs {want}");
    // log_softmax of the certain class is -ln(1 + t); the other's is -30 - ln(1 + t).
    let ls = x.log_softmax(0).to_vec();
    assert!(rel(ls[1], -want) < 2.0 * f64::EPSILON, "{ls:?}");
    assert_eq!(ls[0], -30.0 - want);
    // With the maximum tied, the other maximum's term counts in full: ln(2 + t).
    let tied = Tensor::vector(&[0.0, -30.0, 0.0])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert!(rel(tied, (2.0 + t).ln()) < 2.0 * f64::EPSILON);
    // f32: ln(1 + 4.1e-8) was 0; the exponential is taken in f32, the reference in f64.
    let t32 = f64::from((-17.0_f32).exp());
    let got = Tensor::vector(&[0.0_f32, -17.0])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert!(
        rel(f64::from(got), t32) < 4.0 * f64::from(f32::EPSILON),
        "{got} vs {t32}"
    );
    // Infinite and empty rows keep their values.
    let inf = Tensor::vector(&[f64::INFINITY, 0.0])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert_eq!(inf, f64::INFINITY);
    let none = Tensor::vector(&[f64::NEG_INFINITY; 2])
        .logsumexp(&[0], false)
        .to_vec()[0];
    assert_eq!(none, f64::NEG_INFINITY);
    let empty = Tensor::<f64>::zeros(&[0]).logsumexp(&[0], false).to_vec()[0];
    assert_eq!(empty, f64::NEG_INFINITY);
}

/// Reductions over nothing give numpy's values (README, "NaN and empty tensors"): sum 0, mean
/// NaN (0 / 0, not an error), logsumexp -inf, softmax an empty tensor; max and min are an
/// error. Their gradients are empty, with no NaN.
#[test]
fn reductions_over_nothing_follow_numpy() {
    use perturb::tensor::grad;
    let empty = Tensor::<f64>::zeros(&[0]);
    assert_eq!(empty.sum_axes(&[0], false).item(), Some(0.0));
    assert!(empty.mean_axes(&[0], false).item().unwrap().is_nan());
    assert_eq!(empty.logsumexp(&[0], false).item(), Some(f64::NEG_INFINITY));
    assert_eq!(empty.softmax(0).shape(), &[0]);
    assert!(empty.try_max_axes(&[0], false).is_err());
    assert!(empty.try_min_axes(&[0], false).is_err());
    // Rows of nothing: one NaN per row for the mean.
    let rows = Tensor::<f64>::zeros(&[3, 0]);
    let means = rows.mean_axes(&[1], false);
    assert_eq!(means.shape(), &[3]);
    assert!(means.as_slice().iter().all(|m| m.is_nan()));
    let g = grad(|x| Ok(x.mean_axes(&[0], false)), &empty).unwrap();
    assert_eq!(g.shape(), &[0]);
}

#[test]
fn a_mean_whose_sum_overflows_is_the_mean_and_other_slots_are_unchanged() {
    // Over axis 1 of [[1.5e308, 1.5e308, 1.5e308], [1, 2, 4], [inf, 1, 1], [inf, -inf, 1]]: the
    // first sum overflows, but the mean 1.5e308 fits (each element divided by 3 first); the
    // second is (1 + 2 + 4) / 3 as before, bit for bit; infinities and NaN as the sum gives them.
    let inf = f64::INFINITY;
    let x = t(
        &[
            1.5e308, 1.5e308, 1.5e308, 1.0, 2.0, 4.0, inf, 1.0, 1.0, inf, -inf, 1.0,
        ],
        &[4, 3],
    );
    let y = x.try_mean_axes(&[1], false).unwrap().to_vec();
    assert_eq!(&y[..3], &[1.5e308, 7.0 / 3.0, inf]);
    assert!(y[3].is_nan(), "{y:?}");
    // f32: four 3e38 (the sum is 1.2e39).
    let big = Tensor::from_vec(vec![3e38_f32; 4], &[2, 2]).unwrap();
    assert_eq!(
        big.try_mean_axes(&[0, 1], false).unwrap().to_vec(),
        vec![3e38]
    );
    // An empty axis still gives NaN (0 / 0), not the 0 of an empty rescaled sum.
    let empty = Tensor::<f64>::zeros(&[2, 0]);
    let y = empty.try_mean_axes(&[1], false).unwrap().to_vec();
    assert!(y.len() == 2 && y.iter().all(|v| v.is_nan()), "{y:?}");
    // The gradient does not depend on the value: 1/3 each.
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let g = tape
        .gradient(&xv.try_mean_axes(&[1], false).unwrap().sum_all(), &[&xv])
        .unwrap()
        .remove(0);
    assert_eq!(g.to_vec(), vec![1.0 / 3.0; 12]);
}

/// The gradient of `logsumexp_all` at `x` (by the tape) and the Hessian's first row (forward
/// over reverse).
fn logsumexp_gradient_and_hessian_row(x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let x = t(x, &[x.len()]);
    let g = perturb::tensor::grad(|v| Ok(v.logsumexp_all()), &x).unwrap();
    let h = perturb::tensor::hessian(|v| Ok(v.logsumexp_all()), &x).unwrap();
    (g.to_vec(), h.to_vec()[..x.len()].to_vec())
}

#[test]
fn logsumexp_and_softmax_where_the_maximum_is_infinite_take_the_limit_along_the_ties() {
    // logsumexp([inf, 1]) = inf; its gradient softmax([inf, 1]) is [1, 0], the limit as the
    // first entry grows (it was [NaN, 0]: exp(inf - inf)), and the Hessian the derivative of
    // that constant, 0. Several infinite maxima share the 1 equally, as max's gradient does at
    // ties; where every entry is -inf they all tie at the maximum, giving [1/2, 1/2], the limit
    // of [t, t] as t falls (it was [NaN, NaN]; JAX gives NaN in both cases), and the Hessian
    // diag(y) - y y^T at y = [1/2, 1/2], that of equal finite entries.
    let (inf, ninf) = (f64::INFINITY, f64::NEG_INFINITY);
    assert_eq!(t(&[inf, 1.0], &[2]).logsumexp_all().to_vec(), vec![inf]);
    let (g, h) = logsumexp_gradient_and_hessian_row(&[inf, 1.0]);
    assert_eq!((g, h), (vec![1.0, 0.0], vec![0.0, 0.0]));
    let (g, _) = logsumexp_gradient_and_hessian_row(&[inf, 1.0, inf, ninf]);
    assert_eq!(g, vec![0.5, 0.0, 0.5, 0.0]);
    assert_eq!(t(&[ninf, ninf], &[2]).logsumexp_all().to_vec(), vec![ninf]);
    let (g, h) = logsumexp_gradient_and_hessian_row(&[ninf, ninf]);
    assert_eq!((g, h), (vec![0.5, 0.5], vec![0.25, -0.25]));
    // A finite maximum beside -inf entries is unchanged: weight 0 there.
    let (g, _) = logsumexp_gradient_and_hessian_row(&[ninf, 0.0, 0.0]);
    assert_eq!(g, vec![0.0, 0.5, 0.5]);
    // NaN still makes every weight NaN.
    let (g, _) = logsumexp_gradient_and_hessian_row(&[inf, f64::NAN]);
    assert!(g.iter().all(|v| v.is_nan()), "{g:?}");
    // softmax itself, per row of a matrix, in f64 and f32.
    let x = t(&[inf, 1.0, 2.0, ninf, ninf, ninf, 0.0, 3.0, inf], &[3, 3]);
    let want = [
        1.0,
        0.0,
        0.0,
        1.0 / 3.0,
        1.0 / 3.0,
        1.0 / 3.0,
        0.0,
        0.0,
        1.0,
    ];
    assert_eq!(x.try_softmax(1).unwrap().to_vec(), want.to_vec());
    let x32 = Tensor::from_vec(x.to_vec().iter().map(|&v| v as f32).collect(), &[3, 3]).unwrap();
    let want32: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(x32.try_softmax(1).unwrap().to_vec(), want32);
}
