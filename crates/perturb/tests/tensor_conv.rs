//! Convolutions: `conv1d`, `conv2d`, `conv_transpose1d`, `conv_transpose2d` and the weight
//! gradient operation.
//!
//! One table row per operation and option set (stride 2, asymmetric padding, "same" with an
//! even kernel, dilation 2, groups 2, 1-D, transposed with output padding): the forward column
//! (`forward_support`: JVP against central differences in random directions and against the
//! VJP, the batched column, order two in the three nestings of `f(x)^2`) and f32 against f64.
//! Then conv2d against a direct seven-loop implementation written here and against an explicit
//! Toeplitz (dense matrix) product, whose transpose must be `conv_transpose2d` (the VJP) and
//! whose weight-side counterpart the weight gradient; the parallel batch path against
//! one image at a time; and the errors.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::conv::{
    conv1d, conv2d, conv_transpose2d, try_conv1d, try_conv2d, try_conv_transpose2d, Conv1dOptions,
    Conv2dOptions,
};
use perturb::tensor::ops::{Conv, ConvTranspose, ConvWeightGrad};
use perturb::tensor::{Array, Element, Tensor, TensorTape, TensorVar};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

fn assert_all_close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>, tol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    for (k, (g, w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {k}: {g} vs {w}"
        );
    }
}

// ---- The table -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Case {
    Conv2d(Conv2dOptions),
    Conv1d(Conv1dOptions),
    ConvTranspose2d(Conv2dOptions),
    ConvTranspose1d(Conv1dOptions),
    WeightGrad2d(Conv2dOptions, [usize; 2]),
}

impl Case {
    fn apply<A: Array>(&self, xs: &[&A]) -> Result<A, Error> {
        match *self {
            Case::Conv2d(o) => try_conv2d(xs[0], xs[1], o),
            Case::Conv1d(o) => try_conv1d(xs[0], xs[1], o),
            Case::ConvTranspose2d(o) => try_conv_transpose2d(xs[0], xs[1], o),
            Case::ConvTranspose1d(o) => A::apply(&ConvTranspose { options: o }, xs),
            Case::WeightGrad2d(o, kernel) => A::apply(&ConvWeightGrad { options: o, kernel }, xs),
        }
    }
}

struct Row {
    name: &'static str,
    case: Case,
    shapes: [&'static [usize]; 2],
}

fn o2() -> Conv2dOptions {
    Conv2dOptions::default()
}

fn o1() -> Conv1dOptions {
    Conv1dOptions::default()
}

fn rows() -> Vec<Row> {
    let row = |name, case, shapes| Row { name, case, shapes };
    vec![
        row("conv2d", Case::Conv2d(o2()), [&[2, 2, 5, 5], &[3, 2, 3, 3]]),
        row(
            "conv2d",
            Case::Conv2d(o2().stride(2)),
            [&[2, 2, 6, 5], &[3, 2, 3, 2]],
        ),
        row(
            "conv2d",
            Case::Conv2d(o2().padding_per_side([(1, 0), (0, 2)])),
            [&[1, 2, 4, 5], &[2, 2, 3, 3]],
        ),
        // An even kernel along W: the extra zero goes after.
        row(
            "conv2d",
            Case::Conv2d(o2().same()),
            [&[1, 2, 5, 4], &[2, 2, 3, 2]],
        ),
        row(
            "conv2d",
            Case::Conv2d(o2().dilation(2).padding(1)),
            [&[1, 2, 7, 6], &[2, 2, 3, 2]],
        ),
        row(
            "conv2d",
            Case::Conv2d(o2().groups(2).strides([2, 1])),
            [&[2, 4, 5, 5], &[6, 2, 3, 3]],
        ),
        // 1 x 1 kernel: the input is its own unrolled matrix.
        row(
            "conv2d",
            Case::Conv2d(o2().groups(2)),
            [&[2, 4, 3, 3], &[2, 2, 1, 1]],
        ),
        row(
            "conv1d",
            Case::Conv1d(o1().stride(2).padding_per_side([(1, 2)])),
            [&[2, 3, 7], &[4, 3, 3]],
        ),
        row(
            "conv1d",
            Case::Conv1d(o1().groups(3).dilation(2).same()),
            [&[1, 3, 8], &[3, 1, 3]],
        ),
        row(
            "conv_transpose2d",
            Case::ConvTranspose2d(o2().stride(2).padding(1).output_padding([1, 0])),
            [&[2, 3, 3, 3], &[3, 2, 3, 3]],
        ),
        row(
            "conv_transpose2d",
            Case::ConvTranspose2d(o2().groups(2).dilation(2).padding(1)),
            [&[1, 4, 3, 4], &[4, 1, 2, 3]],
        ),
        // Output padding as large as the stride (allowed as the dilation is larger): the
        // VJP's convolution is one longer than the input and is cut.
        row(
            "conv_transpose2d",
            Case::ConvTranspose2d(o2().dilation(2).output_padding([1, 1])),
            [&[1, 2, 3, 3], &[2, 2, 2, 2]],
        ),
        row(
            "conv_transpose1d",
            Case::ConvTranspose1d(o1().stride(3).padding_per_side([(1, 0)])),
            [&[2, 2, 4], &[2, 3, 3]],
        ),
        row(
            "conv2d_weight_grad",
            Case::WeightGrad2d(o2().padding(1).stride(2), [3, 3]),
            [&[2, 2, 5, 5], &[2, 3, 3, 3]],
        ),
        row(
            "conv2d_weight_grad",
            Case::WeightGrad2d(o2().groups(2).dilation(2), [2, 2]),
            [&[2, 4, 5, 5], &[2, 6, 3, 3]],
        ),
        // A cotangent shorter than the convolution's 3 x 3 output (rows past it count as
        // zero): its VJP's convolution is cut to it.
        row(
            "conv2d_weight_grad",
            Case::WeightGrad2d(o2(), [3, 3]),
            [&[1, 2, 5, 5], &[1, 2, 2, 3]],
        ),
    ]
}

#[test]
fn the_table_has_a_row_for_every_operation() {
    let ops = [
        "conv1d",
        "conv2d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv2d_weight_grad",
    ];
    let rows = rows();
    for op in ops {
        assert!(rows.iter().any(|r| r.name == op), "no row for {op}");
    }
    assert!(rows.iter().all(|r| ops.contains(&r.name)));
    // The name each row's operation reports is the row's.
    for r in &rows {
        let x = Tensor::<f64>::zeros(&[1, 1, 1, 1, 1]);
        let err = r.case.apply(&[&x, &x]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:", r.name)), "{err}");
    }
}

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

fn inputs(row: &Row, rng: &mut SplitMix) -> Vec<Tensor<f64>> {
    row.shapes
        .iter()
        .map(|s| rng.tensor(s, -1.0, 1.0))
        .collect()
}

#[test]
fn jvps_match_central_differences_the_vjps_and_the_batched_column() {
    let mut rng = SplitMix(0xc0_0001);
    for row in rows() {
        for trial in 0..2 {
            let xs = inputs(&row, &mut rng);
            let y = RowFn {
                case: row.case,
                squared: false,
            };
            let out = forward_support::value(&y, &xs);
            let u = rng.tensor(out.shape(), -1.0, 1.0);
            let vs: Vec<_> = xs
                .iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect();
            let what = format!("{} {:?} trial {trial}", row.name, row.case);
            check_first_order(&what, &y, &xs, &[true, true], &vs, &u, 1e-7);
        }
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    // Of f(x)^2: the operations are bilinear, so squaring gives every nesting a direction that
    // depends on the point (and the VJPs' own VJPs, the other two operations, run).
    let mut rng = SplitMix(0xc0_0002);
    for row in rows() {
        let xs = inputs(&row, &mut rng);
        let f = RowFn {
            case: row.case,
            squared: true,
        };
        let out = forward_support::value(&f, &xs);
        let u = rng.tensor(out.shape(), -1.0, 1.0);
        let vs: Vec<_> = xs
            .iter()
            .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
            .collect();
        let zs: Vec<_> = xs
            .iter()
            .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
            .collect();
        let what = format!("{} {:?} squared", row.name, row.case);
        check_second_order(&what, &f, &xs, &[true, true], &vs, &zs, &u, 1e-6);
    }
}

/// The value and the VJP with cotangent `u`, through a tape.
fn value_and_vjp<T: Element>(
    case: Case,
    xs: &[Tensor<T>],
    u: &Tensor<T>,
) -> (Tensor<T>, Vec<Tensor<T>>) {
    let tape = TensorTape::new();
    let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
    let refs: Vec<&TensorVar<'_, Tensor<T>>> = vars.iter().collect();
    let y = case.apply(&refs).unwrap();
    let cts = tape.vjp(&y, u, &refs).unwrap();
    (y.value().clone(), cts)
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = SplitMix(0xc0_0003);
    for row in rows() {
        let xs = inputs(&row, &mut rng);
        let y = row.case.apply(&xs.iter().collect::<Vec<_>>()).unwrap();
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let (y64, ct64) = value_and_vjp(row.case, &xs, &u);
        let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
        let (y32, ct32) = value_and_vjp(row.case, &xs32, &u.cast());
        // Sums of at most ~100 products of numbers in [-1, 1]: f32's eps 1.2e-7 times that
        // leaves 1e-5 for rounding but not for a wrong index.
        assert!(
            y32.cast::<f64>().all_close(&y64, 1e-5),
            "{}: value",
            row.name
        );
        for (a, b) in ct32.iter().zip(&ct64) {
            assert!(a.cast::<f64>().all_close(b, 1e-5), "{}: vjp", row.name);
        }
    }
}

// ---- An independent reference: the direct loops and the Toeplitz matrix ----------------------

/// Explicit options for the reference: stride, (lo, hi) padding, dilation, groups.
#[derive(Clone, Copy, Debug)]
struct Geo {
    stride: [usize; 2],
    pad: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Geo {
    fn options(&self) -> Conv2dOptions {
        o2().strides(self.stride)
            .padding_per_side(self.pad)
            .dilations(self.dilation)
            .groups(self.groups)
    }

    fn out(&self, x: &[usize], w: &[usize]) -> [usize; 2] {
        std::array::from_fn(|a| {
            let padded = x[2 + a] + self.pad[a].0 + self.pad[a].1;
            (padded - self.dilation[a] * (w[2 + a] - 1) - 1) / self.stride[a] + 1
        })
    }

    /// Calls `f(y index, x index, w index)` for every term `w * x` of the convolution, the
    /// seven loops of its definition (image, output channel, output row, output column,
    /// input channel of the group, kernel row, kernel column), skipping the padding.
    fn for_each_term(&self, x: &[usize], w: &[usize], mut f: impl FnMut(usize, usize, usize)) {
        let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
        let (o, cg, kh, kw) = (w[0], w[1], w[2], w[3]);
        let [ho, wo] = self.out(x, w);
        let og = o / self.groups;
        for b in 0..n {
            for oc in 0..o {
                let group = oc / og;
                for i in 0..ho {
                    for j in 0..wo {
                        for ci in 0..cg {
                            for p in 0..kh {
                                for q in 0..kw {
                                    let r = (i * self.stride[0] + p * self.dilation[0]) as isize
                                        - self.pad[0].0 as isize;
                                    let s = (j * self.stride[1] + q * self.dilation[1]) as isize
                                        - self.pad[1].0 as isize;
                                    if r < 0 || s < 0 || r >= h as isize || s >= wd as isize {
                                        continue;
                                    }
                                    let ch = group * cg + ci;
                                    let xi = ((b * c + ch) * h + r as usize) * wd + s as usize;
                                    let yi = ((b * o + oc) * ho + i) * wo + j;
                                    let wi = ((oc * cg + ci) * kh + p) * kw + q;
                                    f(yi, xi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn y_shape(&self, x: &[usize], w: &[usize]) -> Vec<usize> {
        let [ho, wo] = self.out(x, w);
        vec![x[0], w[0], ho, wo]
    }

    /// The convolution by the seven loops.
    fn direct(&self, x: &Tensor<f64>, w: &Tensor<f64>) -> Tensor<f64> {
        let shape = self.y_shape(x.shape(), w.shape());
        let mut y = vec![0.0; shape.iter().product()];
        let (xv, wv) = (x.as_slice(), w.as_slice());
        self.for_each_term(x.shape(), w.shape(), |yi, xi, wi| y[yi] += wv[wi] * xv[xi]);
        Tensor::from_vec(y, &shape).unwrap()
    }

    /// The dense matrix `M` with `vec(conv(x, w)) = M vec(x)` (row-major vectors).
    fn toeplitz(&self, x_shape: &[usize], w: &Tensor<f64>) -> Tensor<f64> {
        let rows: usize = self.y_shape(x_shape, w.shape()).iter().product();
        let cols: usize = x_shape.iter().product();
        let mut m = vec![0.0; rows * cols];
        let wv = w.as_slice();
        self.for_each_term(x_shape, w.shape(), |yi, xi, wi| m[yi * cols + xi] += wv[wi]);
        Tensor::from_vec(m, &[rows, cols]).unwrap()
    }

    /// The dense matrix `N` with `vec(conv(x, w)) = N vec(w)`.
    fn toeplitz_in_w(&self, x: &Tensor<f64>, w_shape: &[usize]) -> Tensor<f64> {
        let rows: usize = self.y_shape(x.shape(), w_shape).iter().product();
        let cols: usize = w_shape.iter().product();
        let mut m = vec![0.0; rows * cols];
        let xv = x.as_slice();
        self.for_each_term(x.shape(), w_shape, |yi, xi, wi| m[yi * cols + wi] += xv[xi]);
        Tensor::from_vec(m, &[rows, cols]).unwrap()
    }
}

/// Reference cases: (geometry, input shape, weight shape).
fn reference_cases() -> Vec<(Geo, [usize; 4], [usize; 4])> {
    let geo = |stride, pad, dilation, groups| Geo {
        stride,
        pad,
        dilation,
        groups,
    };
    vec![
        (
            geo([1, 1], [(0, 0); 2], [1, 1], 1),
            [2, 3, 5, 6],
            [4, 3, 3, 3],
        ),
        (
            geo([1, 1], [(1, 1); 2], [1, 1], 1),
            [1, 1, 4, 4],
            [2, 1, 3, 3],
        ),
        (
            geo([2, 2], [(1, 1); 2], [1, 1], 1),
            [2, 2, 7, 6],
            [3, 2, 3, 3],
        ),
        (
            geo([1, 2], [(2, 0), (0, 1)], [1, 1], 1),
            [1, 2, 5, 5],
            [2, 2, 2, 3],
        ),
        (
            geo([1, 1], [(1, 1); 2], [2, 2], 1),
            [1, 2, 6, 7],
            [2, 2, 3, 3],
        ),
        (
            geo([2, 1], [(0, 1), (1, 0)], [1, 2], 2),
            [2, 4, 6, 5],
            [4, 2, 2, 2],
        ),
        (
            geo([1, 1], [(0, 0); 2], [1, 1], 3),
            [1, 6, 3, 4],
            [6, 2, 1, 1],
        ),
        (
            geo([3, 2], [(2, 2), (1, 1)], [2, 1], 1),
            [1, 1, 8, 5],
            [2, 1, 2, 3],
        ),
    ]
}

#[test]
fn conv2d_matches_the_direct_seven_loop_definition() {
    let mut rng = SplitMix(0xc0_0004);
    for (geo, xs, ws) in reference_cases() {
        let (x, w) = (rng.tensor(&xs, -1.0, 1.0), rng.tensor(&ws, -1.0, 1.0));
        let got = conv2d(&x, &w, geo.options());
        assert_all_close(&format!("{geo:?}"), &got, &geo.direct(&x, &w), 1e-13);
    }
}

#[test]
fn same_padding_puts_the_odd_zero_after() {
    // PyTorch's padding="same": d (k - 1) zeros per axis, the lower half before.
    let mut rng = SplitMix(0xc0_0005);
    let (x, w) = (
        rng.tensor(&[1, 2, 5, 6], -1.0, 1.0),
        rng.tensor(&[3, 2, 4, 3], -1.0, 1.0),
    );
    let got = conv2d(&x, &w, o2().same().dilation(2));
    // Kernel 4 x 3 at dilation 2: 6 zeros along H (3 + 3), 4 along W (2 + 2).
    let geo = Geo {
        stride: [1, 1],
        pad: [(3, 3), (2, 2)],
        dilation: [2, 2],
        groups: 1,
    };
    assert_all_close("same, dilation 2", &got, &geo.direct(&x, &w), 1e-13);
    let got = conv2d(&x, &w, o2().same());
    let geo = Geo {
        pad: [(1, 2), (1, 1)],
        dilation: [1, 1],
        ..geo
    };
    assert_eq!(got.shape(), &[1, 3, 5, 6]);
    assert_all_close("same, even kernel", &got, &geo.direct(&x, &w), 1e-13);
}

#[test]
fn conv1d_is_conv2d_with_a_height_of_one() {
    let mut rng = SplitMix(0xc0_0006);
    let (x, w) = (
        rng.tensor(&[2, 4, 9], -1.0, 1.0),
        rng.tensor(&[6, 2, 3], -1.0, 1.0),
    );
    let o = o1()
        .stride(2)
        .padding_per_side([(2, 1)])
        .dilation(2)
        .groups(2);
    let got = conv1d(&x, &w, o);
    let geo = Geo {
        stride: [1, 2],
        pad: [(0, 0), (2, 1)],
        dilation: [1, 2],
        groups: 2,
    };
    let want = geo.direct(
        &x.reshape(&[2, 4, 1, 9]).unwrap(),
        &w.reshape(&[6, 2, 1, 3]).unwrap(),
    );
    assert_all_close("conv1d", &got, &want.reshape(got.shape()).unwrap(), 1e-13);
}

#[test]
fn conv2d_is_a_toeplitz_product_whose_transpose_is_the_transposed_convolution() {
    let mut rng = SplitMix(0xc0_0007);
    for (geo, xs, ws) in reference_cases() {
        let (x, w) = (rng.tensor(&xs, -1.0, 1.0), rng.tensor(&ws, -1.0, 1.0));
        let m = geo.toeplitz(&xs, &w);
        let y = conv2d(&x, &w, geo.options());
        let mx = m.matmul(&x.reshape(&[x.len()]).unwrap());
        assert_all_close(
            &format!("{geo:?}: M x"),
            &y.reshape(&[y.len()]).unwrap(),
            &mx,
            1e-13,
        );

        // The VJP: dx = M^T g, by the operation and through the tape.
        let g = rng.tensor(y.shape(), -1.0, 1.0);
        let mtg = m.transpose().matmul(&g.reshape(&[g.len()]).unwrap());
        let mut ct = o2()
            .strides(geo.stride)
            .padding_per_side(geo.pad)
            .dilations(geo.dilation)
            .groups(geo.groups);
        let tape = TensorTape::new();
        let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
        let cts = tape
            .vjp(&conv2d(&xv, &wv, geo.options()), &g, &[&xv, &wv])
            .unwrap();
        assert_all_close(
            &format!("{geo:?}: dx"),
            &cts[0].reshape(&[x.len()]).unwrap(),
            &mtg,
            1e-13,
        );
        // The same through conv_transpose2d with the output padding that restores x's size.
        ct.output_padding = std::array::from_fn(|a| {
            let base =
                (y.shape()[2 + a] - 1) * geo.stride[a] + geo.dilation[a] * (ws[2 + a] - 1) + 1;
            xs[2 + a] + geo.pad[a].0 + geo.pad[a].1 - base
        });
        let dx = conv_transpose2d(&g, &w, ct);
        assert_all_close(
            &format!("{geo:?}: conv_transpose2d"),
            &dx.reshape(&[x.len()]).unwrap(),
            &mtg,
            1e-13,
        );

        // dw = N^T g, N the matrix of w -> conv(x, w).
        let n = geo.toeplitz_in_w(&x, &ws);
        let ntg = n.transpose().matmul(&g.reshape(&[g.len()]).unwrap());
        assert_all_close(
            &format!("{geo:?}: dw"),
            &cts[1].reshape(&[w.len()]).unwrap(),
            &ntg,
            1e-13,
        );
    }
}

#[test]
fn a_large_batch_runs_in_parallel_and_matches_one_image_at_a_time() {
    // 8 images of 4 x 16 x 16, 8 filters 3 x 3: 8 * 36 * 256 * 8 = 590k multiply-adds, past
    // the parallel threshold (2^18); one image is below it.
    let mut rng = SplitMix(0xc0_0008);
    let o = o2().padding(1).groups(2);
    let (x, w) = (
        rng.tensor(&[8, 4, 16, 16], -1.0, 1.0),
        rng.tensor(&[8, 2, 3, 3], -1.0, 1.0),
    );
    let g = rng.tensor(&[8, 8, 16, 16], -1.0, 1.0);
    let grads = |x: &Tensor<f64>, g: &Tensor<f64>| {
        let tape = TensorTape::new();
        let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
        let y = conv2d(&xv, &wv, o);
        let mut cts = tape.vjp(&y, g, &[&xv, &wv]).unwrap();
        (y.value().clone(), cts.remove(0), cts.remove(0))
    };
    let (y, dx, dw) = grads(&x, &g);
    let mut dw_sum = Tensor::zeros(w.shape());
    for i in 0..8 {
        let one = |t: &Tensor<f64>| t.narrow(0, i, 1);
        let (yi, dxi, dwi) = grads(&one(&x), &one(&g));
        assert_all_close("y", &one(&y), &yi, 1e-13);
        assert_all_close("dx", &one(&dx), &dxi, 1e-13);
        dw_sum = dw_sum.add(&dwi);
    }
    assert_all_close("dw", &dw, &dw_sum, 1e-12);
}

/// Small images go in blocks of several, unrolled by a gather table built from the geometry;
/// one image alone takes the row-by-row path. Both must give the same value and gradients for
/// every reference geometry (strides, uneven padding, dilation, groups, a 1 x 1 kernel).
#[test]
fn blocks_of_small_images_match_one_image_at_a_time() {
    let mut rng = SplitMix(0xc0_0009);
    for (geo, [_, c, h, wd], ws) in reference_cases() {
        let x = rng.tensor(&[5, c, h, wd], -1.0, 1.0);
        let w = rng.tensor(&ws, -1.0, 1.0);
        let grads = |x: &Tensor<f64>, g: Option<&Tensor<f64>>| {
            let tape = TensorTape::new();
            let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
            let y = conv2d(&xv, &wv, geo.options());
            let g = g
                .cloned()
                .unwrap_or_else(|| y.value().map(|v| v.sin() + 0.5));
            let mut cts = tape.vjp(&y, &g, &[&xv, &wv]).unwrap();
            (y.value().clone(), g, cts.remove(0), cts.remove(0))
        };
        let (y, g, dx, dw) = grads(&x, None);
        let mut dw_sum = Tensor::zeros(w.shape());
        for i in 0..5 {
            let one = |t: &Tensor<f64>| t.narrow(0, i, 1);
            let (yi, _, dxi, dwi) = grads(&one(&x), Some(&one(&g)));
            let what = format!("{geo:?}, image {i}");
            assert_all_close(&format!("y, {what}"), &one(&y), &yi, 1e-13);
            assert_all_close(&format!("dx, {what}"), &one(&dx), &dxi, 1e-13);
            dw_sum = dw_sum.add(&dwi);
        }
        assert_all_close(&format!("dw, {geo:?}"), &dw, &dw_sum, 1e-12);
        assert_all_close(&format!("y, {geo:?}"), &y, &geo.direct(&x, &w), 1e-13);
    }
}

/// The forward result is written into a pooled buffer without zeroing it first: whatever a
/// freed tensor left there must never show. A NaN-filled tensor of the result's size is freed
/// just before each convolution (so the pool hands its buffer back), for every reference
/// geometry at a batch large enough to use the pool; the result must equal the direct loop.
#[test]
fn a_dirty_pooled_buffer_never_shows_in_a_result() {
    let mut rng = SplitMix(0xc0_000a);
    for (geo, [_, c, h, wd], ws) in reference_cases() {
        let x = rng.tensor(&[16, c, h, wd], -1.0, 1.0);
        let w = rng.tensor(&ws, -1.0, 1.0);
        let want = geo.direct(&x, &w);
        drop(Tensor::full(want.shape(), f64::NAN));
        let got = conv2d(&x, &w, geo.options());
        assert_all_close(&format!("{geo:?}"), &got, &want, 1e-13);
    }
}

// ---- Errors ----------------------------------------------------------------------------------

fn err2(x: &[usize], w: &[usize], o: Conv2dOptions) -> String {
    try_conv2d(&Tensor::<f64>::zeros(x), &Tensor::zeros(w), o)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_shapes_and_options_are_errors_naming_the_operation_and_both_shapes() {
    /// What is wrong, the input and weight shapes, the options, a phrase of the message.
    type Bad = (
        &'static str,
        [usize; 4],
        [usize; 4],
        Conv2dOptions,
        &'static str,
    );
    let cases: Vec<Bad> = vec![
        ("channels", [1, 3, 5, 5], [2, 2, 3, 3], o2(), "3 channels"),
        (
            "groups",
            [1, 4, 5, 5],
            [3, 2, 3, 3],
            o2().groups(2),
            "not a multiple",
        ),
        (
            "groups and channels",
            [1, 3, 5, 5],
            [2, 1, 3, 3],
            o2().groups(2),
            "channels",
        ),
        (
            "kernel",
            [1, 1, 2, 5],
            [1, 1, 3, 3],
            o2(),
            "padded input only 2",
        ),
        (
            "dilated kernel",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().dilation(3),
            "spans 7",
        ),
        (
            "stride",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().stride(0),
            "at least 1",
        ),
        (
            "dilation",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().dilation(0),
            "at least 1",
        ),
        (
            "zero groups",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().groups(0),
            "at least 1",
        ),
        (
            "same with stride",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().same().stride(2),
            "stride 1",
        ),
        (
            "output padding",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            o2().output_padding([1, 0]),
            "transposed",
        ),
        ("empty kernel", [1, 1, 5, 5], [1, 1, 0, 3], o2(), "empty"),
    ];
    for (what, x, w, o, needle) in cases {
        let e = err2(&x, &w, o);
        assert!(e.starts_with("conv2d: "), "{what}: {e}");
        assert!(e.contains(needle), "{what}: {e}");
        assert!(
            e.contains(&format!("{x:?}")) && e.contains(&format!("{w:?}")),
            "{what}: {e}"
        );
    }
    // Wrong ranks.
    let e = try_conv2d(
        &Tensor::<f64>::zeros(&[1, 5, 5]),
        &Tensor::zeros(&[1, 1, 3, 3]),
        o2(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("4 axes") && e.contains("[1, 5, 5]"), "{e}");
    let e = try_conv1d(
        &Tensor::<f64>::zeros(&[1, 2, 5]),
        &Tensor::zeros(&[1, 1, 3]),
        o1(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("conv1d: ") && e.contains("[1, 2, 5]"), "{e}");
    // Transposed: the weight's first axis is the input's channels; padding can eat the output.
    let tr = |y: &[usize], w: &[usize], o| {
        try_conv_transpose2d(&Tensor::<f64>::zeros(y), &Tensor::zeros(w), o)
            .unwrap_err()
            .to_string()
    };
    let e = tr(&[1, 2, 3, 3], &[3, 1, 3, 3], o2());
    assert!(
        e.starts_with("conv_transpose2d: ") && e.contains("[3, 1, 3, 3]"),
        "{e}"
    );
    let e = tr(&[1, 2, 1, 1], &[2, 1, 1, 1], o2().padding(1));
    assert!(e.contains("removes the whole output"), "{e}");
    let e = tr(&[1, 3, 2, 2], &[3, 1, 1, 1], o2().groups(2));
    assert!(e.contains("not a multiple"), "{e}");
    // The weight gradient: the batch sizes must agree.
    let op = ConvWeightGrad {
        options: o2(),
        kernel: [3, 3],
    };
    let e = Tensor::apply(
        &op,
        &[
            &Tensor::<f64>::zeros(&[2, 1, 5, 5]),
            &Tensor::zeros(&[3, 1, 3, 3]),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("conv2d_weight_grad: ") && e.contains("differ"),
        "{e}"
    );
    // Arity.
    let e = Tensor::apply(&Conv { options: o2() }, &[&Tensor::<f64>::zeros(&[1])]).unwrap_err();
    assert!(matches!(e, Error::Arity { .. }), "{e}");
}

#[test]
#[should_panic(expected = "conv2d: the input has 3 channels")]
fn the_plain_form_panics_with_the_error() {
    conv2d(
        &Tensor::<f64>::zeros(&[1, 3, 5, 5]),
        &Tensor::zeros(&[2, 2, 3, 3]),
        o2(),
    );
}
