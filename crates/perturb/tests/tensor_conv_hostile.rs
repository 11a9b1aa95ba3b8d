//! Hostile inputs for the convolutions, the poolings and the cumulative sum: options whose
//! arithmetic overflows `usize` or `isize` (huge stride, padding, dilation, kernel, output
//! padding, groups), empty batch, channel and spatial axes, and shapes whose element count is
//! zero while one length is huge. Each case either gives the right value (worked out by hand
//! in its comment) or an error naming the operation; none may panic, abort or hang.

use std::sync::mpsc;
use std::time::Duration;

use perturb::tensor::conv::{
    try_avg_pool2d, try_conv1d, try_conv2d, try_conv_transpose1d, try_conv_transpose2d,
    try_max_pool2d, Conv1dOptions, Conv2dOptions, Pool2d,
};
use perturb::tensor::ops::{AvgPool2d, ConvWeightGrad};
use perturb::tensor::{
    check_grads, grad, hessian, hvp, jacfwd, jacrev, Array, Batched, Op, Tensor, TensorFn,
    TensorTape,
};
use perturb::Error;

const HALF: usize = 1 << 63;

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

/// `f` run on its own thread: its result, or a failure if it has not finished in 60 s (a hang).
fn within_a_minute<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive
        .recv_timeout(Duration::from_secs(60))
        .expect("still running after 60 s (or it panicked)")
}

fn assert_error_names(result: Result<Tensor<f64>, Error>, op: &str) {
    match result {
        Err(e) => assert!(e.to_string().starts_with(op), "{op}: {e}"),
        Ok(y) => panic!("{op}: expected an error, got shape {:?}", y.shape()),
    }
}

// ---- Pooling ---------------------------------------------------------------------------------

#[test]
fn pool_padding_whose_double_overflows_is_an_error() {
    // 2 * 2^63 wraps to 0 in 64 bits: taken for "no padding" it passed the half-kernel check.
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let pool = Pool2d::new([1, 1]).padding([HALF, 0]);
    assert_error_names(try_max_pool2d(&x, pool), "max_pool2d");
    assert_error_names(try_avg_pool2d(&x, pool), "avg_pool2d");
}

#[test]
fn a_pool_window_whose_padded_input_overflows_covers_the_whole_axis() {
    // Kernel 2^64 - 1 rows padded by 2^63 - 1 on each side: the padded height 2 + 2^64 - 2
    // wraps, but the one window (stride = kernel) spans rows -(2^63 - 1) to 2^63 - 1, so it
    // covers both rows of the input: column maxima [3, 4], column sums over the whole window.
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let pool = Pool2d::new([usize::MAX, 1]).padding([usize::MAX / 2, 0]);
    let y = try_max_pool2d(&x, pool).unwrap();
    assert_eq!((y.shape(), y.to_vec()), (&[1, 1, 1, 2][..], vec![3.0, 4.0]));
    let area = usize::MAX as f64;
    let y = try_avg_pool2d(&x, pool).unwrap();
    assert_eq!(y.to_vec(), vec![4.0 / area, 6.0 / area]);
    // One more row of padding than half the kernel is refused, as always.
    let over = Pool2d::new([usize::MAX, 1]).padding([usize::MAX / 2 + 1, 0]);
    assert_error_names(try_max_pool2d(&x, over), "max_pool2d");
}

#[test]
fn a_pool_window_whose_area_overflows_averages_by_its_true_area() {
    // One element, a 2^33 x 2^33 window padded by 2^32 on each side: one window, which holds
    // the element. Its area 2^66 wraps to 4 in 64 bits.
    let k = 1usize << 33;
    let pool = Pool2d::new([k, k]).padding([k / 2, k / 2]);
    let x = t(&[3.0], &[1, 1, 1, 1]);
    assert_eq!(try_max_pool2d(&x, pool).unwrap().to_vec(), vec![3.0]);
    let area = (k as f64) * (k as f64);
    assert_eq!(try_avg_pool2d(&x, pool).unwrap().to_vec(), vec![3.0 / area]);
    let without = AvgPool2d {
        pool,
        count_include_pad: false,
    };
    assert_eq!(without.eval(&[&x]).unwrap().to_vec(), vec![3.0]);
    // The gradient of the mean: 1 / area.
    let tape = TensorTape::new();
    let xv = tape.var(x.clone());
    let y = try_avg_pool2d(&xv, pool).unwrap().sum_all();
    let g = tape.gradient(&y, &[&xv]).unwrap();
    assert_eq!(g[0].to_vec(), vec![1.0 / area]);
}

#[test]
fn pooling_an_empty_batch_of_huge_planes_allocates_nothing() {
    // No element, but 2^40 rows: the windows must not be listed one by one (16 TB).
    let x = Tensor::<f64>::zeros(&[0, 1, 1 << 40, 1]);
    let y = try_max_pool2d(&x, Pool2d::new([1, 1])).unwrap();
    assert_eq!(y.shape(), &[0, 1, 1 << 40, 1]);
    let y = try_avg_pool2d(&x, Pool2d::new([2, 1])).unwrap();
    assert_eq!(y.shape(), &[0, 1, 1 << 39, 1]);
}

// ---- Convolutions ---------------------------------------------------------------------------

#[test]
fn same_padding_with_a_dilation_that_overflows_is_an_error() {
    let x = t(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 4]);
    let w = t(&[1.0, 1.0, 1.0], &[1, 1, 3]);
    let o = Conv1dOptions::default().same().dilation(HALF + 1);
    assert_error_names(try_conv1d(&x, &w, o), "conv1d");
    assert_error_names(try_conv_transpose1d(&x, &w, o), "conv_transpose1d");
}

#[test]
fn a_result_larger_than_memory_is_an_error_not_an_abort() {
    // A 4 x 4 image padded by 2^24 on each side, a 3 x 3 kernel: the output is
    // (4 + 2^25 - 2)^2, about 2^50 elements, which a tensor may hold (under 2^60) but whose
    // 2^53 bytes no address space does. The allocation used to abort the process.
    let x = Tensor::<f64>::ones(&[1, 1, 4, 4]);
    let w = Tensor::<f64>::ones(&[1, 1, 3, 3]);
    let o = Conv2dOptions::default().padding(1 << 24);
    let y = within_a_minute(move || try_conv2d(&x, &w, o));
    assert_error_names(y, "conv2d");
    // The transposed convolution of a 2 x 2 input with stride 2^24: 2^24 + 1 rows and
    // columns, again about 2^48 elements and 2^51 bytes.
    let y = Tensor::<f64>::ones(&[1, 1, 2, 2]);
    let w = Tensor::<f64>::ones(&[1, 1, 1, 1]);
    let o = Conv2dOptions::default().stride(1 << 24);
    let x = within_a_minute(move || try_conv_transpose2d(&y, &w, o));
    assert_error_names(x, "conv_transpose2d");
}

#[test]
fn padding_and_stride_past_isize_give_the_right_windows() {
    // Input [1, 2, 3, 4, 5], padding 2^63 before, stride 2^62, one tap of weight 10: the
    // windows start at i 2^62 - 2^63 for i = 0, 1, 2 (the padded length 2^63 + 5 minus 1, over
    // 2^62, plus 1 is 3): -2^63 and -2^62 are padding, 0 is the first element.
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1, 1, 5]);
    let w = t(&[10.0], &[1, 1, 1]);
    let o = Conv1dOptions::default()
        .padding_per_side([(HALF, 0)])
        .stride(1 << 62);
    let y = try_conv1d(&x, &w, o).unwrap();
    assert_eq!(y.to_vec(), vec![0.0, 0.0, 10.0]);
    // The VJP: the cotangent [1, 2, 3] reaches x[0] through the third window only.
    let tape = TensorTape::new();
    let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
    let y = try_conv1d(&xv, &wv, o).unwrap();
    let ct = tape.constant(t(&[1.0, 2.0, 3.0], &[1, 1, 3]));
    let g = tape
        .gradient(&y.try_mul(&ct).unwrap().sum_all(), &[&xv, &wv])
        .unwrap();
    assert_eq!(g[0].to_vec(), vec![30.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(g[1].to_vec(), vec![3.0]);
}

#[test]
fn a_transposed_convolution_with_a_stride_past_isize_places_its_inputs() {
    // Inputs [1, 2] at stride 2^63, one tap of 10, 2^63 - 5 cut before: input i lands at
    // i 2^63 - (2^63 - 5), so the first falls before the output and the second at 5. The
    // output has (2 - 1) 2^63 + 1 - (2^63 - 5) = 6 positions.
    let y = t(&[1.0, 2.0], &[1, 1, 2]);
    let w = t(&[10.0], &[1, 1, 1]);
    let o = Conv1dOptions::default()
        .stride(HALF)
        .padding_per_side([(HALF - 5, 0)]);
    let x = try_conv_transpose1d(&y, &w, o).unwrap();
    assert_eq!(x.to_vec(), vec![0.0, 0.0, 0.0, 0.0, 0.0, 20.0]);
}

#[test]
fn an_output_padding_that_overflows_is_an_error() {
    let y = t(&[1.0, 2.0], &[1, 1, 2]);
    let w = t(&[1.0, 1.0], &[1, 1, 2]);
    let o = Conv1dOptions::default().output_padding([usize::MAX]);
    assert_error_names(try_conv_transpose1d(&y, &w, o), "conv_transpose1d");
}

#[test]
fn a_transposed_convolution_from_no_channels_is_zeros_without_unrolling_the_kernel() {
    // No input channel, a 2^29 x 2^29 kernel (no element: its first axis is 0), cut to a
    // 1 x 1 output: zeros, without a 2^58-row unrolled matrix.
    let k = 1usize << 29;
    let y = Tensor::<f64>::zeros(&[1, 0, 1, 1]);
    let w = Tensor::<f64>::zeros(&[0, 1, k, k]);
    let o = Conv2dOptions::default().padding_per_side([(k - 1, 0), (k - 1, 0)]);
    let x = try_conv_transpose2d(&y, &w, o).unwrap();
    assert_eq!((x.shape(), x.to_vec()), (&[1, 1, 1, 1][..], vec![0.0]));
}

#[test]
fn a_weight_gradient_with_no_channels_and_many_groups_returns() {
    // No channel at all, 2^60 groups: an empty weight gradient, not 2^60 empty products.
    let x = Tensor::<f64>::zeros(&[1, 0, 2, 2]);
    let g = Tensor::<f64>::zeros(&[1, 0, 2, 2]);
    let op = ConvWeightGrad {
        options: Conv2dOptions::default().groups(1 << 60),
        kernel: [1, 1],
    };
    let dw = within_a_minute(move || op.eval(&[&x, &g]).map(|d| d.shape().to_vec()));
    assert_eq!(dw.unwrap(), vec![0, 0, 1, 1]);
}

#[test]
fn a_stack_through_a_convolution_with_many_groups_does_not_overflow() {
    // 2^60 groups of no channel, a stack of 16 inputs and weights: the stack folded into the
    // groups would need 2^64 of them.
    let x = Batched::stack(Tensor::<f64>::zeros(&[16, 1, 0, 3, 3]));
    let w = Batched::stack(Tensor::<f64>::zeros(&[16, 0, 0, 1, 1]));
    let o = Conv2dOptions::default().groups(1 << 60);
    let y = try_conv2d(&x, &w, o).unwrap();
    assert_eq!(y.into_stack().unwrap().shape(), &[16, 1, 0, 3, 3]);
}

// ---- Small networks through every transform ---------------------------------------------------

/// splitmix64: a seeded generator, so the tests need no dependency.
fn uniform(seed: &mut u64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// A network of its flattened parameters, with a vector output.
trait Network: TensorFn<f64> {
    const PARAMS: usize;
}

/// The parameters `p` split into tensors of `shapes`, in order.
fn unpack<A: Array<Elem = f64>>(p: &A, shapes: &[&[usize]]) -> Result<Vec<A>, Error> {
    let mut at = 0;
    shapes
        .iter()
        .map(|s| {
            let n = s.iter().product();
            let part = p.try_narrow(0, at, n)?.try_reshape(s);
            at += n;
            part
        })
        .collect()
}

fn flat<A: Array<Elem = f64>>(y: A) -> Result<A, Error> {
    let n = y.shape().iter().product();
    y.try_reshape(&[n])
}

/// conv2d (padding 1) -> gelu -> max_pool2d 2x2 at stride 1 -> silu -> avg_pool2d 2x2 ->
/// cumsum over the channels; parameters: the input [2, 2, 5, 5], then the weight [3, 2, 3, 3].
struct Cnn;

impl TensorFn<f64> for Cnn {
    fn call<A: Array<Elem = f64>>(&self, p: &A) -> Result<A, Error> {
        let [x, w] = &unpack(p, &[&[2, 2, 5, 5], &[3, 2, 3, 3]])?[..] else {
            unreachable!()
        };
        let y = try_conv2d(x, w, Conv2dOptions::default().padding(1))?.gelu();
        let y = try_max_pool2d(&y, Pool2d::new([2, 2]).stride([1, 1]))?.silu();
        flat(try_avg_pool2d(&y, Pool2d::new([2, 2]))?.try_cumsum(1)?)
    }
}

impl Network for Cnn {
    const PARAMS: usize = 2 * 2 * 5 * 5 + 3 * 2 * 3 * 3;
}

/// conv2d in 2 groups at dilation 2 -> gelu_tanh -> max_pool2d 3x3 at stride 2 padded by 1
/// -> conv_transpose2d in 2 groups at stride 2 with output padding 1 -> erf -> conv1d of the
/// rows at stride 2; parameters: the input [1, 2, 4, 4], the weights [2, 1, 3, 3],
/// [2, 1, 3, 3] and [1, 2, 2].
struct Decoder;

impl TensorFn<f64> for Decoder {
    fn call<A: Array<Elem = f64>>(&self, p: &A) -> Result<A, Error> {
        let shapes: [&[usize]; 4] = [&[1, 2, 4, 4], &[2, 1, 3, 3], &[2, 1, 3, 3], &[1, 2, 2]];
        let [x, w1, w2, w3] = &unpack(p, &shapes)?[..] else {
            unreachable!()
        };
        let o = Conv2dOptions::default().groups(2).dilation(2).padding(2);
        let y = try_conv2d(x, w1, o)?.gelu_tanh();
        let y = try_max_pool2d(&y, Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1]))?;
        let o = Conv2dOptions::default()
            .groups(2)
            .stride(2)
            .padding(1)
            .output_padding([1, 1]);
        let y = try_conv_transpose2d(&y, w2, o)?.erf();
        let y = y.try_reshape(&[1, 2, 16])?;
        flat(try_conv1d(&y, w3, Conv1dOptions::default().stride(2))?)
    }
}

impl Network for Decoder {
    const PARAMS: usize = 32 + 18 + 18 + 4;
}

/// The mean square of a network's output: a scalar loss.
struct Loss<F>(F);

impl<F: TensorFn<f64>> TensorFn<f64> for Loss<F> {
    fn call<A: Array<Elem = f64>>(&self, p: &A) -> Result<A, Error> {
        Ok(self.0.call(p)?.square().mean_all())
    }
}

fn params<F: Network>(seed: u64) -> Tensor<f64> {
    let mut seed = seed;
    Tensor::from_vec(uniform(&mut seed, F::PARAMS), &[F::PARAMS]).unwrap()
}

fn grads_pass_at_order_two<F: Network>(f: F) {
    let report = check_grads(&Loss(f), &params::<F>(7), &Default::default()).unwrap();
    assert!(report.passes(1e-6), "{report:?}");
}

fn jacobians_agree<F: Network>(f: F) {
    let (p, n) = (params::<F>(7), F::PARAMS);
    let fwd = jacfwd(|p| f.call(p), &p).unwrap();
    let rev = jacrev(|p| f.call(p), &p).unwrap();
    let m = f.call(&p).unwrap().shape()[0];
    assert_eq!(fwd.shape(), &[m, n]);
    assert!(fwd.all_close(&rev, 1e-12), "jacfwd vs jacrev");
    let h = 1e-6;
    let (j, pv) = (fwd.to_vec(), p.to_vec());
    for c in 0..n {
        let at = |d: f64| {
            let mut q = pv.clone();
            q[c] += d;
            f.call(&Tensor::from_vec(q, &[n]).unwrap())
                .unwrap()
                .to_vec()
        };
        let (up, down) = (at(h), at(-h));
        for r in 0..m {
            let fd = (up[r] - down[r]) / (2.0 * h);
            let got = j[r * n + c];
            assert!(
                (got - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
                "J[{r}, {c}] = {got}, central difference {fd}"
            );
        }
    }
}

fn hessians_agree<F: Network>(f: F) {
    let (p, n) = (params::<F>(7), F::PARAMS);
    let loss = Loss(f);
    let hess = hessian(|p| loss.call(p), &p).unwrap();
    assert_eq!(hess.shape(), &[n, n]);
    let hv = hess.to_vec();
    for r in 0..n {
        for c in 0..r {
            let (a, b) = (hv[r * n + c], hv[c * n + r]);
            assert!(
                (a - b).abs() <= 1e-10 * (1.0 + a.abs()),
                "H[{r}, {c}] = {a}, H[{c}, {r}] = {b}"
            );
        }
    }
    let v = params::<F>(11);
    let by_hvp = hvp(|p| loss.call(p), &p, &v).unwrap().to_vec();
    let g = |d: f64| {
        let q = p.try_add(&v.scale(d)).unwrap();
        grad(|p| loss.call(p), &q).unwrap().to_vec()
    };
    let (up, down) = (g(1e-5), g(-1e-5));
    let vv = v.to_vec();
    for r in 0..n {
        let by_hessian: f64 = (0..n).map(|c| hv[r * n + c] * vv[c]).sum();
        let fd = (up[r] - down[r]) / 2e-5;
        let got = by_hvp[r];
        assert!(
            (got - by_hessian).abs() <= 1e-10 * (1.0 + by_hessian.abs()),
            "row {r}: hvp {got} vs H v {by_hessian}"
        );
        assert!(
            (got - fd).abs() <= 1e-6 * (1.0 + fd.abs()),
            "row {r}: hvp {got} vs difference {fd}"
        );
    }
}

#[test]
fn check_grads_passes_on_small_networks_at_order_two() {
    grads_pass_at_order_two(Cnn);
    grads_pass_at_order_two(Decoder);
}

#[test]
fn jacfwd_and_jacrev_of_small_networks_agree_with_central_differences() {
    jacobians_agree(Cnn);
    jacobians_agree(Decoder);
}

#[test]
fn hessian_and_hvp_of_small_networks_agree_with_differences_of_the_gradient() {
    hessians_agree(Cnn);
    hessians_agree(Decoder);
}

// ---- Empty axes through the gradients ---------------------------------------------------------

/// The value and the gradient of `sum(conv2d(x, w))` with respect to both, on the tape.
fn conv_and_grads(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    o: Conv2dOptions,
) -> Result<(Tensor<f64>, Vec<Tensor<f64>>), Error> {
    let tape = TensorTape::new();
    let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
    let y = try_conv2d(&xv, &wv, o)?;
    let g = tape.gradient(&y.sum_all(), &[&xv, &wv])?;
    Ok((y.value().clone(), g))
}

#[test]
fn empty_batch_and_channels_have_empty_or_zero_gradients() {
    let o = Conv2dOptions::default().padding(1);
    // No image: an empty output, a zero weight gradient.
    let (y, g) = conv_and_grads(
        &Tensor::zeros(&[0, 2, 3, 3]),
        &Tensor::ones(&[4, 2, 3, 3]),
        o,
    )
    .unwrap();
    assert_eq!(
        (y.shape(), g[0].shape()),
        (&[0, 4, 3, 3][..], &[0, 2, 3, 3][..])
    );
    assert_eq!(g[1].to_vec(), vec![0.0; 72]);
    // No input channel: zeros out, and an empty weight gradient.
    let (y, g) = conv_and_grads(
        &Tensor::zeros(&[1, 0, 3, 3]),
        &Tensor::ones(&[4, 0, 3, 3]),
        o,
    )
    .unwrap();
    assert_eq!(y.to_vec(), vec![0.0; 36]);
    assert_eq!(
        (g[0].shape(), g[1].shape()),
        (&[1, 0, 3, 3][..], &[4, 0, 3, 3][..])
    );
    // No output channel: nothing flows back.
    let (y, g) = conv_and_grads(
        &Tensor::ones(&[1, 2, 3, 3]),
        &Tensor::ones(&[0, 2, 3, 3]),
        o,
    )
    .unwrap();
    assert_eq!(y.shape(), &[1, 0, 3, 3]);
    assert_eq!(g[0].to_vec(), vec![0.0; 18]);
}

#[test]
fn an_input_with_an_empty_spatial_axis_is_refused_by_the_convolution() {
    // Height 0 padded by 1: the forward pass alone used to accept it (zeros from the padding)
    // while its gradient failed inside conv_transpose2d ("the padding (1, 1) removes the whole
    // output"), which refuses an empty output as PyTorch does. Now the convolution refuses the
    // input, as the poolings do.
    let x = Tensor::<f64>::zeros(&[1, 1, 0, 3]);
    let w = Tensor::<f64>::ones(&[1, 1, 1, 1]);
    let e = conv_and_grads(&x, &w, Conv2dOptions::default().padding(1)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("conv2d: the input is empty along spatial axis 0"),
        "{e}"
    );
    let e = try_conv1d(
        &Tensor::<f64>::zeros(&[1, 1, 0]),
        &Tensor::ones(&[1, 1, 1]),
        Conv1dOptions::default().padding(2),
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("conv1d: the input is empty"),
        "{e}"
    );
}

#[test]
fn an_average_whose_sum_overflows_is_still_the_average() {
    // Four elements of 3e38 in f32 (1.5e308 in f64): their sum overflows, their mean does
    // not. Dividing by 4 is exact, so the mean is the element itself.
    let big = Tensor::from_vec(vec![3e38_f32; 4], &[1, 1, 2, 2]).unwrap();
    assert_eq!(
        try_avg_pool2d(&big, Pool2d::new([2, 2])).unwrap().to_vec(),
        vec![3e38]
    );
    let big = t(&[1.5e308, 1.5e308, 1.5e308, -1.5e308], &[1, 1, 2, 2]);
    assert_eq!(
        try_avg_pool2d(&big, Pool2d::new([2, 2])).unwrap().to_vec(),
        vec![0.75e308]
    );
    // Infinities and NaN still give what the sum gives.
    let inf = t(&[f64::INFINITY, 1.0, 1.0, 1.0], &[1, 1, 2, 2]);
    assert_eq!(
        try_avg_pool2d(&inf, Pool2d::new([2, 2])).unwrap().to_vec(),
        vec![f64::INFINITY]
    );
    let both = t(&[f64::INFINITY, f64::NEG_INFINITY, 1.0, 1.0], &[1, 1, 2, 2]);
    assert!(try_avg_pool2d(&both, Pool2d::new([2, 2])).unwrap().to_vec()[0].is_nan());
}

// ---- Found in files this test's author may not edit (reported; run with --ignored) -----------

/// `f''` of an element-wise function at `x`, by the Hessian of `sum(f(x))`.
fn second<T: perturb::tensor::Element>(
    f: impl for<'t> Fn(
        &perturb::tensor::TensorVar<'t, perturb::tensor::DualTensor<Batched<Tensor<T>>>>,
    ) -> perturb::tensor::TensorVar<
        't,
        perturb::tensor::DualTensor<Batched<Tensor<T>>>,
    >,
    x: T,
) -> T {
    hessian(|v| Ok(f(v).sum_all()), &Tensor::vector(&[x]))
        .unwrap()
        .to_vec()[0]
}

#[test]
fn gelu_and_erf_have_finite_second_derivatives_far_out() {
    // gelu'' = phi(x) (2 - x^2) and erf'' = -2x (2 / sqrt(pi)) exp(-x^2) both tend to 0; where
    // 2x overflows (|x| >= 9e307 in f64, 1.7e38 in f32) they came out NaN (1e155 is fine).
    for x in [1e155, -1e155, 1e308, -1e308] {
        assert_eq!(second(|v| v.gelu(), x), 0.0, "gelu''({x:e})");
        assert_eq!(second(|v| v.erf(), x), 0.0, "erf''({x:e})");
    }
    for x in [3e38_f32, -3e38] {
        assert_eq!(second(|v| v.gelu(), x), 0.0, "gelu''({x:e}) in f32");
        assert_eq!(second(|v| v.erf(), x), 0.0, "erf''({x:e}) in f32");
    }
}

#[test]
fn gelu_and_silu_slopes_at_infinity_are_their_limits() {
    let slope = |f: &dyn Fn(&Tensor<f64>) -> f64, x: f64| f(&Tensor::vector(&[x]));
    let gelu = |x: &Tensor<f64>| grad(|v| Ok(v.gelu().sum_all()), x).unwrap().to_vec()[0];
    let silu = |x: &Tensor<f64>| grad(|v| Ok(v.silu().sum_all()), x).unwrap().to_vec()[0];
    assert_eq!(slope(&gelu, f64::INFINITY), 1.0);
    assert_eq!(slope(&silu, f64::INFINITY), 1.0);
    assert_eq!(slope(&gelu, f64::NEG_INFINITY), 0.0);
    assert_eq!(slope(&silu, f64::NEG_INFINITY), 0.0);
}

// ---- Infinities the output never reads -------------------------------------------------------

/// One of three losses over a 1 x 5 row: a strided convolution through gelu, max pool, avg
/// pool, each squared and summed.
struct Tail(u8);

impl TensorFn<f64> for Tail {
    fn call<A: Array<Elem = f64>>(&self, v: &A) -> Result<A, Error> {
        let pool = Pool2d::new([1, 2]);
        let y = match self.0 {
            0 => {
                let w = v.constant_like(&t(&[0.3, -0.7], &[1, 1, 1, 2]));
                try_conv2d(v, &w, Conv2dOptions::default().stride(2))?.gelu()
            }
            1 => try_max_pool2d(v, pool)?,
            _ => try_avg_pool2d(v, pool)?,
        };
        Ok(y.square().sum_all())
    }
}

#[test]
fn an_infinity_no_window_reads_leaves_every_derivative_finite() {
    // Width 5, windows of 2 at stride 2: the last column is never read. An infinity there
    // must not reach the value, the gradients or the Hessian (no 0 * inf).
    let x = t(&[0.5, -1.0, 2.0, 0.25, f64::INFINITY], &[1, 1, 1, 5]);
    for f in [Tail(0), Tail(1), Tail(2)] {
        let value = f.call(&x).unwrap().to_vec()[0];
        let g = grad(|v| f.call(v), &x).unwrap().to_vec();
        let h = hessian(|v| f.call(v), &x).unwrap().to_vec();
        assert!(value.is_finite(), "loss {}: {value}", f.0);
        assert!(
            g.iter().chain(&h).all(|v| v.is_finite()),
            "loss {}: {g:?} {h:?}",
            f.0
        );
        assert_eq!((g[4], h[24]), (0.0, 0.0), "loss {}", f.0);
    }
    // The weight's gradient: the taps see columns 0, 2 and 1, 3.
    let w = t(&[0.3, -0.7], &[1, 1, 1, 2]);
    let o = Conv2dOptions::default().stride(2);
    let g = grad(
        |v| Ok(try_conv2d(&v.constant_like(&x), v, o)?.sum_all()),
        &w,
    )
    .unwrap();
    assert_eq!(g.to_vec(), vec![0.5 + 2.0, -1.0 + 0.25]);
}

#[test]
fn a_nan_reaches_only_the_windows_and_taps_that_read_it() {
    // A 5 x 5 input with NaN at (0, 0), a 3 x 3 kernel: only output (0, 0) reads it (tap
    // (0, 0)), so only that output and that tap of the weight's gradient are NaN; the input's
    // gradient does not read the input at all.
    let mut v: Vec<f64> = (0..25).map(|i| f64::from(i) / 10.0).collect();
    v[0] = f64::NAN;
    let x = t(&v, &[1, 1, 5, 5]);
    let w = t(&[0.5; 9], &[1, 1, 3, 3]);
    for o in [Conv2dOptions::default(), Conv2dOptions::default().stride(2)] {
        let tape = TensorTape::new();
        let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
        let y = try_conv2d(&xv, &wv, o).unwrap();
        let nan: Vec<bool> = y.value().to_vec().iter().map(|v| v.is_nan()).collect();
        assert!(
            nan[0] && nan[1..].iter().all(|n| !n),
            "{:?}",
            y.value().to_vec()
        );
        let g = tape.gradient(&y.sum_all(), &[&xv, &wv]).unwrap();
        assert!(g[0].to_vec().iter().all(|v| v.is_finite()));
        let dw = g[1].to_vec();
        assert!(
            dw[0].is_nan() && dw[1..].iter().all(|v| v.is_finite()),
            "{dw:?}"
        );
    }
}

#[test]
fn an_empty_stack_goes_through_every_operation() {
    // A Batched stack of no member: each operation gives an empty stack of its output's shape.
    let x = Batched::stack(Tensor::<f64>::zeros(&[0, 1, 2, 4, 4]));
    let w = Batched::single(Tensor::<f64>::ones(&[3, 2, 2, 2]));
    let y = try_conv2d(&x, &w, Conv2dOptions::default()).unwrap();
    assert_eq!(y.into_stack_of(0).unwrap().shape(), &[0, 1, 3, 3, 3]);
    let y = try_conv_transpose2d(
        &x,
        &Batched::single(Tensor::ones(&[2, 3, 2, 2])),
        Conv2dOptions::default(),
    )
    .unwrap();
    assert_eq!(y.into_stack_of(0).unwrap().shape(), &[0, 1, 3, 5, 5]);
    let y = try_max_pool2d(&x, Pool2d::new([2, 2])).unwrap();
    assert_eq!(y.into_stack_of(0).unwrap().shape(), &[0, 1, 2, 2, 2]);
    let y = try_avg_pool2d(&x, Pool2d::new([2, 2])).unwrap();
    assert_eq!(y.into_stack_of(0).unwrap().shape(), &[0, 1, 2, 2, 2]);
    let y = x.try_cumsum(3).unwrap();
    assert_eq!(y.into_stack_of(0).unwrap().shape(), &[0, 1, 2, 4, 4]);
}

#[test]
fn a_mean_whose_sum_overflows_is_still_the_mean() {
    // As avg_pool2d above: four f32 3e38 have the mean 3e38, not inf.
    let big = Tensor::from_vec(vec![3e38_f32; 4], &[2, 2]).unwrap();
    assert_eq!(big.mean_all().to_vec(), vec![3e38]);
    let big = t(&[1.5e308; 4], &[4]);
    assert_eq!(big.mean_all().to_vec(), vec![1.5e308]);
}

// ---- Unrolled matrices too large for one block ----------------------------------------------

/// conv2d (one group) at `x` `[N, C, H, W]`, `w` `[O, C, kh, kw]` by direct loops, with the
/// VJPs of a cotangent `ct` of the output's shape: `(y, dx, dw)`.
#[allow(clippy::type_complexity)]
fn direct_conv2d(
    x: &Tensor<f64>,
    w: &Tensor<f64>,
    ct: &Tensor<f64>,
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (&[n, c, h, wd], &[o, _, kh, kw], &[_, _, oh, ow]) = (x.shape(), w.shape(), ct.shape())
    else {
        unreachable!()
    };
    let (xs, ws, cs) = (x.as_slice(), w.as_slice(), ct.as_slice());
    let (mut y, mut dx, mut dw) = (
        vec![0.0; n * o * oh * ow],
        vec![0.0; xs.len()],
        vec![0.0; ws.len()],
    );
    for b in 0..n {
        for oc in 0..o {
            for i in 0..oh {
                for j in 0..ow {
                    let out = ((b * o + oc) * oh + i) * ow + j;
                    for ic in 0..c {
                        for p in 0..kh {
                            let r = (i * stride[0] + p * dilation[0]) as isize - pad[0] as isize;
                            if r < 0 || r >= h as isize {
                                continue;
                            }
                            for q in 0..kw {
                                let s =
                                    (j * stride[1] + q * dilation[1]) as isize - pad[1] as isize;
                                if s < 0 || s >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * c + ic) * h + r as usize) * wd + s as usize;
                                let wi = ((oc * c + ic) * kh + p) * kw + q;
                                y[out] += ws[wi] * xs[xi];
                                dx[xi] += cs[out] * ws[wi];
                                dw[wi] += cs[out] * xs[xi];
                            }
                        }
                    }
                }
            }
        }
    }
    (y, dx, dw)
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-11 * (1.0 + w.abs()),
            "{what}[{k}]: {g} vs {w}"
        );
    }
}

#[test]
fn unrolled_images_over_the_block_size_match_direct_loops() {
    // Each case unrolls to more than 2^22 elements per image (rows x positions), so im2col
    // and col2im run on blocks of output positions that start and end inside output rows:
    // 4096 x 1681, 4608 x 2916 at stride 2, and a 1-D kernel of 3000 taps over 6000 samples.
    // Input shape, weight shape, stride, padding (both sides), dilation.
    type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2], [usize; 2]);
    let cases: [Case; 3] = [
        ([2, 4, 70, 70], [2, 4, 32, 32], [1, 1], [1, 1], [1, 1]),
        ([1, 2, 150, 150], [1, 2, 48, 48], [2, 2], [2, 1], [1, 1]),
        ([2, 1, 1, 6000], [1, 1, 1, 3000], [1, 1], [0, 0], [1, 1]),
    ];
    let mut seed = 3;
    for (xs, ws, stride, pad, dilation) in cases {
        let x = Tensor::from_vec(uniform(&mut seed, xs.iter().product()), &xs).unwrap();
        let w = Tensor::from_vec(uniform(&mut seed, ws.iter().product()), &ws).unwrap();
        let o = Conv2dOptions::default()
            .strides(stride)
            .padding_per_side([(pad[0], pad[0]), (pad[1], pad[1])])
            .dilations(dilation);
        let tape = TensorTape::new();
        let (xv, wv) = (tape.var(x.clone()), tape.var(w.clone()));
        let y = try_conv2d(&xv, &wv, o).unwrap();
        let ct = Tensor::from_vec(uniform(&mut seed, y.value().len()), y.shape()).unwrap();
        let g = tape
            .gradient(
                &y.try_mul(&tape.constant(ct.clone())).unwrap().sum_all(),
                &[&xv, &wv],
            )
            .unwrap();
        let (want_y, want_dx, want_dw) = direct_conv2d(&x, &w, &ct, stride, pad, dilation);
        close("y", &y.value().to_vec(), &want_y);
        close("dx", &g[0].to_vec(), &want_dx);
        close("dw", &g[1].to_vec(), &want_dw);
    }
}

#[test]
fn cumsum_of_an_empty_axis_and_of_infinities() {
    // An empty axis: an empty result and an empty gradient, along it or beside it.
    let e = Tensor::<f64>::zeros(&[2, 0, 3]);
    for axis in 0..3 {
        assert_eq!(e.try_cumsum(axis).unwrap().shape(), &[2, 0, 3]);
        let g = grad(|v| Ok(v.try_cumsum(axis)?.sum_all()), &e).unwrap();
        assert_eq!(g.shape(), &[2, 0, 3]);
    }
    // inf then -inf: the running sums are 1, inf, inf, NaN; the gradient of their sum does
    // not read x (the sums are linear), so it is 4, 3, 2, 1 as for any x.
    let x = Tensor::vector(&[1.0, f64::INFINITY, 2.0, f64::NEG_INFINITY]);
    let y = x.try_cumsum(0).unwrap().to_vec();
    assert_eq!(&y[..3], &[1.0, f64::INFINITY, f64::INFINITY]);
    assert!(y[3].is_nan());
    let g = grad(|v| Ok(v.try_cumsum(0)?.sum_all()), &x).unwrap();
    assert_eq!(g.to_vec(), vec![4.0, 3.0, 2.0, 1.0]);
}
