//! Pooling: `max_pool2d` and `avg_pool2d` (kernel, stride, padding; NCHW and CHW input).
//!
//! One table row per operation and window: the forward column (`forward_support`) checks each
//! row's JVP against central differences in random directions and against its VJP, the batched
//! column (stacks of tangents, cotangents and inputs), and order two in the three nestings
//! (forward over reverse, reverse over forward, forward over forward) of `f(x)^2`; f32 agrees
//! with f64. Then values, gradients and Jacobians (`jacfwd`, `jacrev`, and the Hessian and
//! `hvp` of `sum(pool(x)^2)`, exactly `2 J^T J`) against a direct loop written here (the
//! padded input read through signed indices, not the library's clipped windows), also on an
//! input large enough to run in parallel; a window that straddles the padding, computed by hand; ties, NaN
//! and the padding's `-inf`; and errors naming the operation and the shape.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::conv::{avg_pool2d, max_pool2d, try_avg_pool2d, try_max_pool2d, Pool2d};
use perturb::tensor::ops::{AvgPool2d, MaxPool2d, MaxPool2dIndex};
use perturb::tensor::{
    hessian, hvp, jacfwd, jacrev, jvp, Array, DualTensor, Element, Op, Tensor, TensorTape,
    TensorVar,
};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

impl SplitMix {
    /// Distinct values at least 0.27 apart in a random order, about half of them negative: no
    /// ties, no change of a window's maximum under the steps used here, and windows whose
    /// maximum is below the zeros a padding by 0 would bring.
    fn separated(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let data = order
            .iter()
            .map(|&k| 0.37 * (k as f64 - n as f64 / 2.0) + self.uniform(-0.05, 0.05))
            .collect();
        Tensor::from_vec(data, shape).unwrap()
    }
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

/// The gradient of `sum(f(x) * w)` with respect to `x`, through a tape.
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

// ---- The table -----------------------------------------------------------------------------

/// One pooling with its window, applied to any array type.
#[derive(Clone, Copy, Debug)]
enum Case {
    Max(Pool2d),
    /// The window and `count_include_pad`.
    Avg(Pool2d, bool),
}

impl Case {
    fn apply<A: Array>(&self, x: &A) -> Result<A, Error> {
        match *self {
            Case::Max(pool) => try_max_pool2d(x, pool),
            Case::Avg(pool, true) => try_avg_pool2d(x, pool),
            Case::Avg(pool, false) => x.apply_op(&AvgPool2d {
                pool,
                count_include_pad: false,
            }),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Case::Max(_) => "max_pool2d",
            Case::Avg(..) => "avg_pool2d",
        }
    }
}

struct Row {
    case: Case,
    shape: &'static [usize],
    /// What the row is there for.
    about: &'static str,
}

const fn window(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Pool2d {
    Pool2d {
        kernel,
        stride,
        padding,
    }
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { case: Case::Max(window([2, 2], [2, 2], [0, 0])), shape: &[2, 3, 4, 4], about: "side by side" },
    Row { case: Case::Max(window([3, 3], [1, 1], [1, 1])), shape: &[2, 2, 5, 5], about: "overlapping, padded" },
    Row { case: Case::Max(window([3, 2], [2, 1], [1, 0])), shape: &[1, 2, 5, 4], about: "stride != kernel, rectangular" },
    Row { case: Case::Max(window([2, 2], [1, 1], [1, 1])), shape: &[3, 4, 3], about: "CHW, straddling the padding" },
    Row { case: Case::Max(window([2, 3], [3, 2], [0, 1])), shape: &[2, 1, 7, 6], about: "stride > kernel: rows skipped" },
    Row { case: Case::Avg(window([2, 2], [2, 2], [0, 0]), true), shape: &[2, 3, 4, 4], about: "side by side" },
    Row { case: Case::Avg(window([3, 3], [2, 2], [1, 1]), true), shape: &[2, 2, 5, 6], about: "padding counted" },
    Row { case: Case::Avg(window([3, 3], [1, 1], [1, 1]), false), shape: &[1, 3, 4, 4], about: "padding not counted, overlapping" },
    Row { case: Case::Avg(window([2, 3], [1, 2], [1, 1]), false), shape: &[2, 4, 5], about: "CHW, rectangular, padding not counted" },
    Row { case: Case::Avg(window([2, 3], [3, 2], [0, 1]), true), shape: &[2, 1, 7, 6], about: "stride > kernel: rows skipped" },
];

impl Row {
    fn input(&self, rng: &mut SplitMix) -> Tensor<f64> {
        match self.case {
            Case::Max(_) => rng.separated(self.shape),
            Case::Avg(..) => rng.tensor(self.shape, -2.0, 2.0),
        }
    }

    fn what(&self) -> String {
        format!(
            "{} {:?} on {:?} ({})",
            self.case.name(),
            self.case,
            self.shape,
            self.about
        )
    }
}

/// A row's operation, or its square (`squared`), as a function for the forward-mode checks.
struct RowFn {
    case: Case,
    squared: bool,
}

impl Function for RowFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = self.case.apply(xs[0])?;
        Ok(if self.squared { y.square() } else { y })
    }
}

#[test]
fn the_table_has_a_row_for_every_operation() {
    let ops = ["max_pool2d", "avg_pool2d"];
    for op in ops {
        assert!(ROWS.iter().any(|r| r.case.name() == op), "no row for {op}");
    }
    // Both avg pool conventions, and both ranks, for each operation.
    assert!(ROWS.iter().any(|r| matches!(r.case, Case::Avg(_, true))));
    assert!(ROWS.iter().any(|r| matches!(r.case, Case::Avg(_, false))));
    for op in ops {
        for rank in [3, 4] {
            assert!(ROWS
                .iter()
                .any(|r| r.case.name() == op && r.shape.len() == rank));
        }
    }
}

#[test]
fn jvps_match_central_differences_and_the_vjps_and_batch() {
    let mut rng = SplitMix(0x9001_0001);
    for row in ROWS {
        for trial in 0..2 {
            let x = row.input(&mut rng);
            let y = row.case.apply(&x).unwrap();
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let v = rng.tensor(x.shape(), -1.0, 1.0);
            let f = RowFn {
                case: row.case,
                squared: false,
            };
            let what = format!("{} trial {trial}", row.what());
            check_first_order(&what, &f, &[x], &[true], &[v], &u, 1e-8);
        }
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    // Of f(x)^2: pooling is linear (avg) or piecewise linear (max), so f itself has no second
    // derivative; squaring makes every nesting differentiate each rule with an x-dependent
    // direction.
    let mut rng = SplitMix(0x9001_0002);
    for row in ROWS {
        let x = row.input(&mut rng);
        let y = row.case.apply(&x).unwrap();
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let v = rng.tensor(x.shape(), -1.0, 1.0);
        let z = rng.tensor(x.shape(), -1.0, 1.0);
        let f = RowFn {
            case: row.case,
            squared: true,
        };
        let what = format!("{} squared", row.what());
        check_second_order(&what, &f, &[x], &[true], &[v], &[z], &u, 1e-6);
    }
}

/// The value and the VJP with cotangent `u`, through a tape.
fn value_and_vjp<T: Element>(case: Case, x: &Tensor<T>, u: &Tensor<T>) -> (Tensor<T>, Tensor<T>) {
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let y = case.apply(&xv).unwrap();
    let ct = tape.vjp(&y, u, &[&xv]).unwrap().remove(0);
    (y.value().clone(), ct)
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = SplitMix(0x9001_0003);
    for row in ROWS {
        let x = row.input(&mut rng);
        let u = rng.tensor(row.case.apply(&x).unwrap().shape(), -1.0, 1.0);
        let (y64, ct64) = value_and_vjp(row.case, &x, &u);
        let (y32, ct32) = value_and_vjp(row.case, &x.cast::<f32>(), &u.cast());
        // f32 carries about 7 digits; a window sums at most 9 terms of size 2 (a maximum is
        // exact), so 1e-5 leaves room for rounding but not for a wrong window or divisor.
        assert!(y32.all_close(&y64.cast(), 1e-5), "{}: value", row.what());
        assert!(ct32.all_close(&ct64.cast(), 1e-5), "{}: vjp", row.what());
    }
}

#[test]
fn output_shape_tells_the_shape_eval_gives() {
    let mut rng = SplitMix(0x9001_0004);
    for row in ROWS {
        let x = row.input(&mut rng);
        let y = row.case.apply(&x).unwrap();
        let told = match row.case {
            Case::Max(pool) => {
                let index = MaxPool2dIndex { pool }.output_shape(&[row.shape]);
                let gather = MaxPool2d { pool }.output_shape(&[row.shape, y.shape()]);
                assert_eq!(index, gather, "{}", row.what());
                index
            }
            Case::Avg(pool, count_include_pad) => AvgPool2d {
                pool,
                count_include_pad,
            }
            .output_shape(&[row.shape]),
        };
        assert_eq!(told.as_deref(), Some(y.shape()), "{}", row.what());
    }
    // Shapes it cannot pool: no shape.
    let op = MaxPool2dIndex {
        pool: Pool2d::new([3, 3]),
    };
    assert_eq!(op.output_shape(&[&[1, 1, 2, 2]]), None);
    assert_eq!(op.output_shape(&[&[4, 4]]), None);
    // An index of another shape than the pooled one.
    let op = MaxPool2d {
        pool: Pool2d::new([2, 2]),
    };
    assert_eq!(
        op.output_shape(&[&[1, 1, 4, 4], &[1, 1, 2, 2]]),
        Some(vec![1, 1, 2, 2])
    );
    assert_eq!(op.output_shape(&[&[1, 1, 4, 4], &[1, 1, 2, 1]]), None);
}

// ---- Against a direct loop -----------------------------------------------------------------

/// Pooling by the definition: for each output position, the window's elements read from the
/// padded input through signed indices, those in the padding skipped. Returns the result and,
/// for max pool, each output's position in the input (the first maximum, or the first NaN).
fn direct(case: Case, x: &Tensor<f64>) -> (Tensor<f64>, Vec<usize>) {
    let (pool, avg) = match case {
        Case::Max(pool) => (pool, None),
        Case::Avg(pool, include) => (pool, Some(include)),
    };
    let s = x.shape();
    let (h, w) = (s[s.len() - 2] as isize, s[s.len() - 1] as isize);
    let planes: usize = s[..s.len() - 2].iter().product();
    let [kh, kw] = pool.kernel.map(|k| k as isize);
    let [sh, sw] = pool.stride.map(|k| k as isize);
    let [ph, pw] = pool.padding.map(|k| k as isize);
    let oh = (h + 2 * ph - kh) / sh + 1;
    let ow = (w + 2 * pw - kw) / sw + 1;
    let xs = x.as_slice();
    let (mut out, mut at) = (Vec::new(), Vec::new());
    for p in 0..planes {
        for i in 0..oh {
            for j in 0..ow {
                let (mut best, mut best_at, mut sum, mut count) = (f64::NEG_INFINITY, None, 0.0, 0);
                for a in 0..kh {
                    for b in 0..kw {
                        let (r, c) = (i * sh - ph + a, j * sw - pw + b);
                        if r < 0 || r >= h || c < 0 || c >= w {
                            continue;
                        }
                        let k = p * (h * w) as usize + (r * w + c) as usize;
                        let v = xs[k];
                        if best_at.is_none() || v > best || (v.is_nan() && !best.is_nan()) {
                            (best, best_at) = (v, Some(k));
                        }
                        sum += v;
                        count += 1;
                    }
                }
                match avg {
                    None => {
                        out.push(best);
                        at.push(best_at.expect("a window with no element of the input"));
                    }
                    Some(true) => out.push(sum / (kh * kw) as f64),
                    Some(false) => out.push(sum / count as f64),
                }
            }
        }
    }
    let mut shape = s[..s.len() - 2].to_vec();
    shape.extend([oh as usize, ow as usize]);
    (t(&out, &shape), at)
}

/// The VJP by the definition: each cotangent added at its window's maximum (max pool), or
/// divided by its divisor and added over its window (avg pool).
fn direct_vjp(case: Case, x: &Tensor<f64>, ct: &Tensor<f64>) -> Tensor<f64> {
    let mut g = vec![0.0; x.len()];
    match case {
        Case::Max(_) => {
            let (_, at) = direct(case, x);
            for (&k, &c) in at.iter().zip(ct.as_slice()) {
                g[k] += c;
            }
        }
        Case::Avg(..) => {
            // Avg pool is linear: column k of its matrix is the pooling of the k-th unit
            // input, so its transpose applied to ct is <ct, pool(e_k)> in slot k.
            for (k, gk) in g.iter_mut().enumerate() {
                let mut e = vec![0.0; x.len()];
                e[k] = 1.0;
                let (y, _) = direct(case, &t(&e, x.shape()));
                *gk = forward_support::dot(&y, ct);
            }
        }
    }
    t(&g, x.shape())
}

#[test]
fn values_and_vjps_match_a_direct_loop() {
    let mut rng = SplitMix(0x9001_0005);
    for row in ROWS {
        let x = row.input(&mut rng);
        let (want, _) = direct(row.case, &x);
        let u = rng.tensor(want.shape(), -1.0, 1.0);
        let (y, ct) = value_and_vjp(row.case, &x, &u);
        assert_eq!(y.shape(), want.shape(), "{}: shape", row.what());
        assert!(y.all_close(&want, 1e-14), "{}: value", row.what());
        let want_ct = direct_vjp(row.case, &x, &u);
        assert!(ct.all_close(&want_ct, 1e-14), "{}: vjp", row.what());
    }
}

#[test]
fn a_large_input_pooled_in_parallel_matches_the_direct_loop() {
    // 8 x 16 planes of 32 x 32 with 3 x 3 windows: about 1.2 million elements read, past the
    // size from which the planes are pooled on rayon's pool.
    let mut rng = SplitMix(0x9001_0006);
    let x = rng.tensor(&[8, 16, 32, 32], -2.0, 2.0);
    let pool = window([3, 3], [1, 1], [1, 1]);
    for case in [
        Case::Max(pool),
        Case::Avg(pool, true),
        Case::Avg(pool, false),
    ] {
        let (want, at) = direct(case, &x);
        let u = rng.tensor(want.shape(), -1.0, 1.0);
        let (y, ct) = value_and_vjp(case, &x, &u);
        assert!(y.all_close(&want, 1e-14), "{case:?}: value");
        if let Case::Max(_) = case {
            let mut g = vec![0.0; x.len()];
            for (&k, &c) in at.iter().zip(u.as_slice()) {
                g[k] += c;
            }
            assert!(ct.all_close(&t(&g, x.shape()), 1e-14), "{case:?}: vjp");
        } else {
            // The transpose identity <u, P x> = <P^T u, x>, exact up to rounding.
            let lhs = forward_support::dot(&u, &y);
            let rhs = forward_support::dot(&ct, &x);
            assert!(
                (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0),
                "{case:?}: {lhs} vs {rhs}"
            );
        }
    }
}

/// The Jacobian of a pooling at `x` by the direct loop, `[outputs, inputs]`: 1 at each
/// output's maximum (max pool), the pooling of each unit input as a column (avg pool, linear).
fn direct_jacobian(case: Case, x: &Tensor<f64>) -> Tensor<f64> {
    let (y, at) = direct(case, x);
    let (m, n) = (y.len(), x.len());
    let mut j = vec![0.0; m * n];
    for k in 0..n {
        let column = match case {
            Case::Max(_) => (0..m).map(|o| f64::from(at[o] == k)).collect(),
            Case::Avg(..) => {
                let mut e = vec![0.0; n];
                e[k] = 1.0;
                direct(case, &t(&e, x.shape())).0.to_vec()
            }
        };
        for (o, c) in column.into_iter().enumerate() {
            j[o * n + k] = c;
        }
    }
    t(&j, &[m, n])
}

#[test]
fn jacobians_hessian_and_hvp_match_the_direct_loop() {
    // Pooling is piecewise linear, so the Hessian of sum(pool(x)^2) is exactly 2 J^T J.
    let mut rng = SplitMix(0x9001_0008);
    let x = rng.separated(&[1, 2, 4, 4]);
    let n = x.len();
    for case in [
        Case::Max(window([3, 3], [1, 1], [1, 1])),
        Case::Max(window([2, 2], [2, 2], [0, 0])),
        Case::Avg(window([2, 3], [2, 1], [1, 1]), false),
        Case::Avg(window([3, 3], [1, 1], [1, 1]), true),
    ] {
        let want = direct_jacobian(case, &x);
        let m = want.shape()[0];
        let jf = jacfwd(|x| case.apply(x), &x)
            .unwrap()
            .reshape(&[m, n])
            .unwrap();
        let jr = jacrev(|x| case.apply(x), &x)
            .unwrap()
            .reshape(&[m, n])
            .unwrap();
        assert!(jf.all_close(&want, 1e-15), "{case:?}: jacfwd");
        assert!(jr.all_close(&want, 1e-15), "{case:?}: jacrev");
        let h = hessian(|x| Ok(case.apply(x)?.square().sum_all()), &x)
            .unwrap()
            .reshape(&[n, n])
            .unwrap();
        let jtj = want.transpose().matmul(&want).scale(2.0);
        assert!(h.all_close(&jtj, 1e-14), "{case:?}: hessian");
        let v = rng.tensor(x.shape(), -1.0, 1.0);
        let hv = hvp(|x| Ok(case.apply(x)?.square().sum_all()), &x, &v).unwrap();
        let want_hv = jtj.matmul(&v.reshape(&[n]).unwrap());
        assert!(
            hv.reshape(&[n]).unwrap().all_close(&want_hv, 1e-13),
            "{case:?}: hvp"
        );
    }
}

// ---- Exact cases -----------------------------------------------------------------------------

#[test]
fn a_window_that_straddles_the_padding() {
    // x = [[1, 2], [3, 4]] padded by 1 to 4 x 4, 2 x 2 windows with stride 1: nine windows,
    // the corner ones holding one element of x and three of padding. By hand:
    //   max:                    the largest element of x each window covers;
    //   avg, padding counted:   the sum of the elements covered / 4;
    //   avg, padding left out:  the sum / the number of elements covered.
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let pool = window([2, 2], [1, 1], [1, 1]);
    let max = max_pool2d(&x, pool);
    assert_eq!(max.shape(), &[1, 1, 3, 3]);
    assert_eq!(max.to_vec(), [1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 3.0, 4.0, 4.0]);
    let counted = avg_pool2d(&x, pool);
    assert_eq!(
        counted.to_vec(),
        [0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0]
    );
    let left_out = x.apply_op(&AvgPool2d {
        pool,
        count_include_pad: false,
    });
    assert_eq!(
        left_out.unwrap().to_vec(),
        [1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]
    );
    // Gradients of the sums: each element gets, per window covering it, 1 where it is the
    // maximum (max), 1/4 (counted), 1/covered (left out). x_11 = 4 is the maximum of the four
    // windows covering it, x_00 = 1 only of its corner window.
    let ones = Tensor::ones(&[1, 1, 3, 3]);
    let g = grad_of(&x, &ones, |x| max_pool2d(x, pool));
    assert_eq!(g.to_vec(), [1.0, 2.0, 2.0, 4.0]);
    let g = grad_of(&x, &ones, |x| avg_pool2d(x, pool));
    assert_eq!(g.to_vec(), [1.0; 4]);
    let g = grad_of(&x, &ones, |x| {
        x.apply_op(&AvgPool2d {
            pool,
            count_include_pad: false,
        })
        .unwrap()
    });
    // x_00 is covered by windows of 1, 2, 2 and 4 elements: 1 + 1/2 + 1/2 + 1/4.
    assert_eq!(g.to_vec(), [2.25; 4]);
}

#[test]
fn the_padding_never_wins_a_maximum() {
    // Every element negative: were the padding a zero, the border windows would give 0.
    let x = t(&[-5.0, -1.0, -3.0, -2.0, -9.0, -4.0], &[1, 1, 2, 3]);
    let y = max_pool2d(&x, window([3, 3], [1, 1], [1, 1]));
    assert_eq!(y.to_vec(), [-1.0; 6]);
    // All -inf: the result is -inf, and the derivative goes to the window's first element.
    let x = Tensor::full(&[1, 1, 2, 2], f64::NEG_INFINITY);
    let pool = window([2, 2], [1, 1], [1, 1]);
    assert!(max_pool2d(&x, pool)
        .to_vec()
        .iter()
        .all(|&v| v == f64::NEG_INFINITY));
    let g = grad_of(&x, &Tensor::ones(&[1, 1, 3, 3]), |x| max_pool2d(x, pool));
    // Window (i, j) covers x[i-1..=i][j-1..=j]; its first element in x is x[max(i-1,0)][max(j-1,0)].
    assert_eq!(g.to_vec(), [4.0, 2.0, 2.0, 1.0]);
}

#[test]
fn ties_send_the_derivative_to_the_first_maximum() {
    // Constant input, overlapping 2 x 2 windows with stride 1 on 3 x 3: every window ties, and
    // its derivative goes to its top-left element (row-major first), as in PyTorch.
    let x = Tensor::full(&[1, 1, 3, 3], 2.0);
    let pool = window([2, 2], [1, 1], [0, 0]);
    let g = grad_of(&x, &t(&[1.0, 10.0, 100.0, 1000.0], &[1, 1, 2, 2]), |x| {
        max_pool2d(x, pool)
    });
    assert_eq!(
        g.to_vec(),
        [1.0, 10.0, 0.0, 100.0, 1000.0, 0.0, 0.0, 0.0, 0.0]
    );
    // The JVP picks the tangent at the same positions.
    let v = Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]).unwrap();
    let (_, dy) = jvp(
        |x: &DualTensor<Tensor<f64>>| try_max_pool2d(x, pool),
        &x,
        &v,
    )
    .unwrap();
    assert_eq!(dy.to_vec(), [1.0, 2.0, 4.0, 5.0]);
    // A tie between a later larger value: [1, 3, 3, 2] -> the first 3.
    let x = t(&[1.0, 3.0, 3.0, 2.0], &[1, 1, 2, 2]);
    let g = grad_of(&x, &Tensor::ones(&[1, 1, 1, 1]), |x| {
        max_pool2d(x, Pool2d::new([2, 2]))
    });
    assert_eq!(g.to_vec(), [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn a_nan_in_a_window_gives_nan_there_and_only_there() {
    let nan = f64::NAN;
    // Two 2 x 2 windows side by side; the first holds a NaN after its maximum 7.
    let x = t(&[1.0, 7.0, 5.0, 6.0, nan, 2.0, 3.0, 4.0], &[1, 1, 2, 4]);
    let y = max_pool2d(&x, Pool2d::new([2, 2])).to_vec();
    assert!(y[0].is_nan(), "{y:?}");
    assert_eq!(y[1], 6.0);
    // The derivative of the NaN window goes to the NaN, as in PyTorch.
    let g = grad_of(&x, &t(&[1.0, 2.0], &[1, 1, 1, 2]), |x| {
        max_pool2d(x, Pool2d::new([2, 2]))
    });
    assert_eq!(g.to_vec(), [0.0, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.0]);
    // Avg pool: the NaN reaches its window's mean only.
    let y = avg_pool2d(&x, Pool2d::new([2, 2])).to_vec();
    assert!(y[0].is_nan());
    assert_eq!(y[1], 4.5); // (5 + 6 + 3 + 4) / 4
}

#[test]
fn a_stack_of_images_maps_over_the_batch_axis() {
    // Pooling [N, C, H, W] equals pooling each [C, H, W] image: the two ranks agree.
    let mut rng = SplitMix(0x9001_0007);
    let x = rng.tensor(&[3, 2, 5, 5], -2.0, 2.0);
    let pool = window([3, 3], [2, 2], [1, 1]);
    for case in [
        Case::Max(pool),
        Case::Avg(pool, true),
        Case::Avg(pool, false),
    ] {
        let y = case.apply(&x).unwrap();
        for n in 0..3 {
            let image = x.narrow(0, n, 1).squeeze(0);
            let want = case.apply(&image).unwrap();
            assert_eq!(
                y.narrow(0, n, 1).squeeze(0).to_vec(),
                want.to_vec(),
                "{case:?}"
            );
        }
    }
}

// ---- The index and the routing --------------------------------------------------------------

/// `x` with values from a handful, so that most windows hold ties.
fn tied(rng: &mut SplitMix, shape: &[usize]) -> Tensor<f64> {
    rng.tensor(shape, -2.0, 2.0).map(|v| v.round())
}

/// The offsets `MaxPool2dIndex` should give: each window's first maximum (from the direct
/// loop) counted from the window's first element inside the input, `r * W + c`.
fn direct_index(pool: Pool2d, x: &Tensor<f64>) -> Vec<f64> {
    let (_, at) = direct(Case::Max(pool), x);
    let s = x.shape();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    let out = pool.output_shape(s).unwrap();
    let (oh, ow) = (out[out.len() - 2], out[out.len() - 1]);
    at.iter()
        .enumerate()
        .map(|(o, &k)| {
            let (i, j) = ((o / ow) % oh, o % ow);
            let top = (i * pool.stride[0]).saturating_sub(pool.padding[0]);
            let left = (j * pool.stride[1]).saturating_sub(pool.padding[1]);
            let (r, c) = ((k % (h * w)) / w, k % w);
            ((r - top) * w + (c - left)) as f64
        })
        .collect()
}

#[test]
fn the_index_is_the_offset_of_each_windows_first_maximum() {
    let mut rng = SplitMix(0x9001_0008);
    for row in ROWS {
        let Case::Max(pool) = row.case else { continue };
        for x in [row.input(&mut rng), tied(&mut rng, row.shape)] {
            let index = MaxPool2dIndex { pool }.eval(&[&x]).unwrap();
            assert_eq!(index.to_vec(), direct_index(pool, &x), "{}", row.what());
            let y = MaxPool2d { pool }.eval(&[&x, &index]).unwrap();
            assert_eq!(
                y.to_vec(),
                direct(row.case, &x).0.to_vec(),
                "{}",
                row.what()
            );
        }
    }
    // Kernels other than the unrolled 2x2 and 3x3, with ties, without padding.
    for (kernel, stride) in [([1, 1], [1, 1]), ([2, 3], [1, 2]), ([4, 1], [3, 1])] {
        let pool = window(kernel, stride, [0, 0]);
        let x = tied(&mut rng, &[2, 3, 7, 6]);
        let index = MaxPool2dIndex { pool }.eval(&[&x]).unwrap();
        assert_eq!(index.to_vec(), direct_index(pool, &x), "{pool:?}");
    }
}

/// The 2 x 2, stride 2 windows have a loop of their own (selects, vectorised): ties, NaN
/// (alone, several, first in a window or last), odd sizes that leave a row or a column out,
/// and planes stacked into taller ones (an 8 x 8 batch), in f64 and f32.
#[test]
fn two_by_two_windows_at_stride_two_find_the_first_maximum_and_the_first_nan() {
    let mut rng = SplitMix(0x9001_0009);
    let pool = window([2, 2], [2, 2], [0, 0]);
    for shape in [
        [2, 3, 7, 6],
        [1, 1, 5, 7],
        [3, 4, 8, 8],
        [64, 2, 4, 4],
        [1, 2, 2, 2],
    ] {
        let mut values = tied(&mut rng, &shape).to_vec();
        for v in values.iter_mut() {
            if rng.next_u64() % 5 == 0 {
                *v = f64::NAN;
            }
        }
        let x = Tensor::from_vec(values, &shape).unwrap();
        let index = MaxPool2dIndex { pool }.eval(&[&x]).unwrap();
        assert_eq!(index.to_vec(), direct_index(pool, &x), "{shape:?}");
        let single = MaxPool2dIndex { pool }.eval(&[&x.cast::<f32>()]).unwrap();
        assert_eq!(
            single.cast::<f64>().to_vec(),
            index.to_vec(),
            "{shape:?} in f32"
        );
    }
}

/// `MaxPool2d` at a fixed index (not the input's own maxima), squared if `squared`.
struct Routed {
    pool: Pool2d,
    index: Tensor<f64>,
    squared: bool,
}

impl Function for Routed {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let index = xs[0].constant_like(&self.index);
        let y = A::apply(&MaxPool2d { pool: self.pool }, &[xs[0], &index])?;
        Ok(if self.squared { y.square() } else { y })
    }
}

/// A random offset inside each window of `pool` over an input of `shape`.
fn random_index(rng: &mut SplitMix, pool: Pool2d, shape: &[usize]) -> Tensor<f64> {
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let out = pool.output_shape(shape).unwrap();
    let (oh, ow) = (out[out.len() - 2], out[out.len() - 1]);
    let len: usize = out.iter().product();
    let data = (0..len)
        .map(|o| {
            let (i, j) = ((o / ow) % oh, o % ow);
            let span = |at: usize, a: usize, n: usize| {
                let start = (at * pool.stride[a]).saturating_sub(pool.padding[a]);
                let end = (at * pool.stride[a] + pool.kernel[a] - pool.padding[a]).min(n);
                end - start
            };
            let r = rng.next_u64() as usize % span(i, 0, h);
            let c = rng.next_u64() as usize % span(j, 1, w);
            (r * w + c) as f64
        })
        .collect();
    Tensor::from_vec(data, &out).unwrap()
}

#[test]
fn the_routing_at_any_index_matches_differences_batches_and_order_two() {
    // The gather and its scatter are linear in the input at any index: first order against
    // central differences, the VJP and stacks; order two in every nesting, through the square.
    let mut rng = SplitMix(0x9001_0009);
    for row in ROWS {
        let Case::Max(pool) = row.case else { continue };
        let x = rng.tensor(row.shape, -2.0, 2.0);
        let index = random_index(&mut rng, pool, row.shape);
        let u = rng.tensor(index.shape(), -1.0, 1.0);
        let (v, z) = (
            rng.tensor(row.shape, -1.0, 1.0),
            rng.tensor(row.shape, -1.0, 1.0),
        );
        let what = format!("{} at a random index", row.what());
        let f = |squared| Routed {
            pool,
            index: index.clone(),
            squared,
        };
        check_first_order(
            &what,
            &f(false),
            std::slice::from_ref(&x),
            &[true],
            std::slice::from_ref(&v),
            &u,
            1e-8,
        );
        check_second_order(&what, &f(true), &[x], &[true], &[v], &[z], &u, 1e-6);
    }
}

#[test]
fn a_bad_index_is_an_error_naming_the_operation() {
    let pool = Pool2d::new([2, 2]);
    let x = Tensor::<f64>::ones(&[1, 1, 4, 4]);
    let op = MaxPool2d { pool };
    // Offsets reach 5 (row 1, column 1 of a window of a 4-wide input); 11 from the last
    // window's first element (10) leaves the plane.
    for bad in [0.5, -1.0, f64::NAN, 11.0, 2f64.powi(64), 1e300] {
        let index = t(&[0.0, 5.0, 0.0, bad], &[1, 1, 2, 2]);
        let m = op.eval(&[&x, &index]).unwrap_err().to_string();
        assert!(
            m.starts_with("max_pool2d: the index holds") && m.contains("window 3 of plane 0"),
            "{m}"
        );
        let ct = Tensor::ones(&[1, 1, 2, 2]);
        let e = op.vjp(&[&x, &index], &ct, &ct, &[true, false]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("max_pool2d_scatter: the index holds"),
            "{e}"
        );
    }
    let m = op
        .eval(&[&x, &Tensor::zeros(&[1, 1, 2, 1])])
        .unwrap_err()
        .to_string();
    assert!(
        m.starts_with("max_pool2d") && m.contains("[1, 1, 2, 1]"),
        "{m}"
    );
    // 5 from the last window's first element (10) is the last element: no error.
    let index = t(&[0.0, 0.0, 0.0, 5.0], &[1, 1, 2, 2]);
    assert!(op.eval(&[&x, &index]).is_ok());
}

#[test]
fn offsets_past_what_f32_counts_exactly_are_an_error() {
    // A window of 18 rows over an input 2^20 wide reaches offset 17 * 2^20 > 2^24; 17 rows
    // reach 2^24 exactly, which f32 holds.
    let op = |rows| MaxPool2dIndex {
        pool: Pool2d::new([rows, 1]),
    };
    let x = Tensor::<f32>::zeros(&[1, 17, 1 << 20]);
    assert!(op(17).eval(&[&x]).is_ok());
    let x = Tensor::<f32>::zeros(&[1, 18, 1 << 20]);
    let m = op(18).eval(&[&x]).unwrap_err().to_string();
    assert!(
        m.starts_with("max_pool2d_index") && m.contains("f32"),
        "{m}"
    );
    // f64 counts them.
    let x = Tensor::<f64>::zeros(&[1, 18, 4]);
    assert_eq!(op(18).eval(&[&x]).unwrap().to_vec(), vec![0.0; 4]);
}

// ---- Errors ----------------------------------------------------------------------------------

/// The message of a pooling's error, checked to name the operation.
fn error_of(case: Case, shape: &[usize]) -> String {
    let x = Tensor::<f64>::zeros(shape);
    let e = case.apply(&x).unwrap_err();
    let message = e.to_string();
    assert!(message.starts_with(case.name()), "{message}");
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    message
}

#[test]
fn bad_windows_and_shapes_are_errors_naming_the_operation_and_the_shape() {
    for case in [
        Case::Max(window([5, 2], [1, 1], [1, 0])),
        Case::Avg(window([5, 2], [1, 1], [1, 0]), true),
    ] {
        // 4 + 2 rows of padded input < a kernel of 5 rows.
        let m = error_of(case, &[1, 1, 2, 3]);
        assert!(
            m.contains("does not fit") && m.contains("[1, 1, 2, 3]"),
            "{m}"
        );
    }
    let m = error_of(Case::Max(window([2, 2], [0, 1], [0, 0])), &[1, 1, 4, 4]);
    assert!(
        m.contains("stride [0, 1]") && m.contains("[1, 1, 4, 4]"),
        "{m}"
    );
    let m = error_of(Case::Avg(window([0, 2], [1, 1], [0, 0]), false), &[1, 4, 4]);
    assert!(
        m.contains("kernel [0, 2]") && m.contains("[1, 4, 4]"),
        "{m}"
    );
    let m = error_of(Case::Max(window([3, 3], [1, 1], [2, 1])), &[1, 1, 4, 4]);
    assert!(
        m.contains("more than half the kernel") && m.contains("[1, 1, 4, 4]"),
        "{m}"
    );
    for shape in [&[4, 4][..], &[2, 1, 1, 4, 4], &[]] {
        let m = error_of(Case::Max(Pool2d::new([2, 2])), shape);
        assert!(m.contains(&format!("{shape:?}")), "{m}");
        let m = error_of(Case::Avg(Pool2d::new([2, 2]), true), shape);
        assert!(m.contains(&format!("{shape:?}")), "{m}");
    }
    // An empty image: no window holds an element, even where the padding would let it fit.
    let m = error_of(Case::Max(window([2, 2], [1, 1], [1, 1])), &[1, 1, 0, 3]);
    assert!(m.contains("[1, 1, 0, 3]"), "{m}");
    // An empty batch is no error: an empty result.
    let y = max_pool2d(&Tensor::<f64>::zeros(&[0, 3, 4, 4]), Pool2d::new([2, 2]));
    assert_eq!(y.shape(), &[0, 3, 2, 2]);
}

#[test]
#[should_panic(expected = "avg_pool2d: the kernel [3, 3] does not fit")]
fn the_panicking_forms_panic_with_the_error() {
    let _ = avg_pool2d(&Tensor::<f64>::zeros(&[1, 2, 2]), Pool2d::new([3, 3]));
}
