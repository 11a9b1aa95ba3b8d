//! Reductions of `f32` tensors over long axes (the fourth hunt): the sums inside softmax,
//! logsumexp, the vector norm, cumsum and sums over leading or middle axes were running sums
//! in `f32`, which drop every term below half an ulp of the sum so far. Each test failed
//! before the fix committed with it, but the last, which guards the blocked column sums of
//! that fix (it hangs without their check for rows of no columns); the expected values are
//! the same functions of the same numbers in `f64`, to `f32` precision.

use perturb::tensor::{grad, linalg, Array, Tensor};

/// `2^20` logits: one at 0, then the rest at -17 (`e^-17 = 4.1e-8`, below half an ulp of 1
/// in `f32`).
fn peaked(first: bool) -> Vec<f64> {
    let n = 1 << 20;
    let mut x = vec![-17.0_f64; n];
    x[if first { 0 } else { n - 1 }] = 0.0;
    x
}

fn close(got: f32, want: f64, what: &str) {
    assert!(
        ((got as f64) - want).abs() <= 1e-5 * want.abs(),
        "{what}: {got} in f32, {want} in f64"
    );
}

/// The sum of the softmax's exponentials began with the peak's 1, and then each `e^-17` was
/// lost: the peak's weight was 1.0 instead of 0.9583 (with the peak last, the small terms
/// were summed first and it was right).
#[test]
fn f32_softmax_over_a_long_axis_counts_every_term() {
    for first in [true, false] {
        let x64 = Tensor::vector(&peaked(first));
        let x32 = x64.cast::<f32>();
        let peak = if first { 0 } else { x64.len() - 1 };
        let want = x64.softmax(0).to_vec()[peak];
        assert!((want - 0.9583).abs() < 1e-4, "{want}");
        close(x32.softmax(0).to_vec()[peak], want, "softmax, peak");
        close(
            x32.softmax(0).to_vec()[1],
            x64.softmax(0).to_vec()[1],
            "softmax, tail",
        );
        close(
            x32.log_softmax(0).to_vec()[peak],
            x64.log_softmax(0).to_vec()[peak],
            "log_softmax, peak",
        );
        close(
            x32.logsumexp(&[0], false).to_vec()[0],
            x64.logsumexp(&[0], false).to_vec()[0],
            "logsumexp",
        );
    }
}

/// `2^25` equal logits: the f32 sum of their exponentials stopped at `2^24`, so each weight
/// was `2^-24`, twice `2^-25`, and logsumexp was `ln 2^24`.
#[test]
fn f32_softmax_of_more_than_2_to_the_24_equal_logits_is_uniform() {
    let n = 1usize << 25;
    let x = Tensor::<f32>::zeros(&[n]);
    assert_eq!(x.softmax(0).to_vec()[0], 1.0 / n as f32);
    close(x.logsumexp_all().to_vec()[0], (n as f64).ln(), "logsumexp");
}

/// The norm of `[1, 1e-4, ..]` (`2^20` entries of `1e-4`) is `sqrt(1 + 2^20 1e-8) = 1.00523`;
/// each square `1e-8` was lost against the running sum 1, giving 1.
#[test]
fn f32_vector_norm_of_a_long_vector_counts_every_square() {
    let mut x = vec![1e-4_f64; 1 << 20];
    x[0] = 1.0;
    let x64 = Tensor::vector(&x);
    let want = linalg::vector_norm(&x64).to_vec()[0];
    assert!((want - 1.00523).abs() < 1e-5, "{want}");
    close(
        linalg::vector_norm(&x64.cast::<f32>()).to_vec()[0],
        want,
        "vector_norm",
    );
    let m = x64.reshape(&[1024, 1024]).unwrap().cast::<f32>();
    close(linalg::matrix_norm(&m).to_vec()[0], want, "matrix_norm");
}

/// The cumulative sum of `[1, 1e-8, ..]` (`2^20` entries of `1e-8`) ends at `1.0105`; in an
/// `f32` running sum each `1e-8` was lost against 1, and so in the reverse rule. `f64` and `-0.0` are as before.
#[test]
fn f32_cumsum_of_a_long_axis_counts_every_term() {
    let n = 1 << 20;
    let mut x = vec![1e-8_f64; n];
    x[0] = 1.0;
    let want = 1.0 + (n - 1) as f64 * 1e-8;
    let x64 = Tensor::vector(&x);
    let x32 = x64.cast::<f32>();
    close(x32.cumsum(0).to_vec()[n - 1], want, "cumsum");
    assert!((x64.cumsum(0).to_vec()[n - 1] - want).abs() < 1e-9);
    // The reverse rule (the reversed cumulative sum of the cotangent) on a stack of two rows:
    // d/dx_0 sum(cumsum(x) c) = c_0 + .. + c_{n-1}, with c the entries reversed.
    let mut c = x.clone();
    c.reverse();
    let c32 = Tensor::vector(&c).cast::<f32>();
    let c2 = Tensor::try_stack(&[&c32, &c32], 0).unwrap();
    let g = grad(
        |x| Ok(x.try_cumsum(1)?.try_mul(&x.constant_like(&c2))?.sum_all()),
        &Tensor::<f32>::zeros(&[2, n]),
    )
    .unwrap()
    .to_vec();
    close(g[0], want, "reverse cumsum, row 0");
    close(g[n], want, "reverse cumsum, row 1");
    assert_eq!(
        Tensor::vector(&[-0.0_f64]).cumsum(0).to_vec()[0].to_bits(),
        (-0.0_f64).to_bits()
    );
}

/// `2^20` rows per result: the first 1, the others `1e-8`, in `f32`.
fn rows_then_small(shape: &[usize], first: &[usize]) -> Tensor<f32> {
    let n: usize = shape.iter().product();
    let mut x = vec![1e-8_f32; n];
    for &i in first {
        x[i] = 1.0;
    }
    Tensor::from_vec(x, shape).unwrap()
}

/// Sums over a leading axis (`[2^20, 2]`, `[2^20, 5]`) and over axes around a kept one (a
/// batch norm's `[N, C, H]` over N and H) added each row into an `f32` running sum: every
/// `1e-8` after the first 1 was lost (1 instead of 1.0105), and the mean of more than `2^24`
/// ones per result was below 1.
#[test]
fn f32_sums_over_leading_and_middle_axes_count_every_term() {
    let want = 1.0 + ((1 << 20) - 1) as f64 * (1e-8_f32 as f64);
    let x = rows_then_small(&[1 << 20, 2], &[0, 1]);
    for (i, v) in x.sum_axes(&[0], false).to_vec().into_iter().enumerate() {
        close(v, want, &format!("[2^20, 2] column {i}"));
    }
    let x = rows_then_small(&[1 << 20, 5], &[0, 1, 2, 3, 4]);
    for (i, v) in x.sum_axes(&[0], false).to_vec().into_iter().enumerate() {
        close(v, want, &format!("[2^20, 5] column {i}"));
    }
    // [N, C, H] = [2^10, 2, 2^10] over N and H: the first of each channel is (0, c, 0).
    let x = rows_then_small(&[1 << 10, 2, 1 << 10], &[0, 1 << 10]);
    for (i, v) in x.sum_axes(&[0, 2], false).to_vec().into_iter().enumerate() {
        close(v, want, &format!("channel {i}"));
    }
    let mean = x.mean_axes(&[0, 2], false).to_vec();
    close(mean[0], want / (1 << 20) as f64, "mean, channel 0");
}

/// The gradient of a scale broadcast over rows, `d/ds sum(x * s)` for `x` `[2^20, 3]` and `s`
/// `[3]`, is the column sums of `x`: its reverse rule summed the rows into `f32` running sums
/// too.
#[test]
fn f32_gradient_of_a_row_broadcast_scale_counts_every_row() {
    let want = 1.0 + ((1 << 20) - 1) as f64 * (1e-8_f32 as f64);
    let x = rows_then_small(&[1 << 20, 3], &[0, 1, 2]);
    let g = grad(
        |s| Ok(s.constant_like(&x).try_mul(s)?.sum_all()),
        &Tensor::<f32>::ones(&[3]),
    )
    .unwrap()
    .to_vec();
    for (i, v) in g.into_iter().enumerate() {
        close(v, want, &format!("column {i}"));
    }
}

/// Rows of no columns are summed without a pass over the rows: `[2^40, 0]` over its first
/// axis is `[0]` at once, in both element types.
#[test]
fn sums_of_many_empty_rows_take_no_time() {
    let x = Tensor::<f32>::zeros(&[1 << 40, 0]);
    assert_eq!(x.sum_axes(&[0], false).shape(), &[0]);
    assert_eq!(x.mean_axes(&[0], true).shape(), &[1, 0]);
    let y = Tensor::<f64>::zeros(&[1 << 40, 0]);
    assert_eq!(y.sum_axes(&[0], false).shape(), &[0]);
}

/// `[1, 1e-8 x 2^20]`: every `1e-8` after the first `1` in the same running sum is below half
/// an ulp of it in `f32`.
fn one_then_small(n: usize) -> Vec<f64> {
    let mut x = vec![1e-8_f64; n];
    x[0] = 1.0;
    x
}

/// `sum_all`, and the sums over trailing axes, added `f32` running sums that dropped each
/// `1e-8` after the `1` in their lane (1.0092 instead of 1.0105) and stopped growing at `2^24`
/// times their terms (`2^28` ones summed to `2^27`). Eight sums of up to 2,048 elements each
/// are now carried into `f64`.
#[test]
fn f32_sum_all_and_trailing_sums_count_every_term() {
    let x64 = Tensor::vector(&one_then_small(1 << 20));
    let want = x64.sum_all().item().unwrap();
    close(x64.cast::<f32>().sum_all().item().unwrap(), want, "sum_all");
    close(
        x64.cast::<f32>().mean_all().item().unwrap(),
        want / (1 << 20) as f64,
        "mean_all",
    );
    // Rows of a matrix summed along their (trailing) axis.
    let rows = x64.try_reshape(&[2, 1 << 19]).unwrap();
    let sums = rows.cast::<f32>().sum_axes(&[1], false).to_vec();
    for (got, want) in sums.iter().zip(rows.sum_axes(&[1], false).to_vec()) {
        close(*got, want, "sum over the last axis");
    }
}

/// The fused sum that ends a chain of `f32` operations carries at the same places as
/// `sum_all`, so the two have the same bits past the carry (10,000 elements: blocks of 512
/// with a short last one, more than one carry).
#[test]
fn f32_fused_sum_has_the_bits_of_sum_all_past_the_carry() {
    use perturb::tensor::Deferred;
    perturb::tensor::fusion::set_min_len(64);
    let x = Tensor::vector(
        &(0..10_000)
            .map(|i| (0.37 * i as f64).sin())
            .collect::<Vec<_>>(),
    )
    .cast::<f32>();
    let f = |x: &Deferred<Tensor<f32>>| x.square().scale(3.0).add_scalar(0.5);
    let eager = x.square().scale(3.0).add_scalar(0.5).sum_all();
    let fused = f(&Deferred::new(x.clone())).sum_all().value().unwrap();
    assert_eq!(
        fused.item().unwrap().to_bits(),
        eager.item().unwrap().to_bits()
    );
}

/// Softmax's JVP and VJP `y (t - sum(y t))` added the weighted sum in `f32` running sums
/// (one along a contiguous axis, one per column along a leading axis): with equal logits and
/// `t = 2^20 [1, 1e-8 x (2^20 - 1)]` each `y t` after the first `1` in a lane was lost, and the
/// derivative was off by 0.5%. The sums are now carried into `f64` as every sum is.
#[test]
fn f32_softmax_derivatives_over_a_long_axis_count_every_term() {
    use perturb::tensor::{jvp, vjp};
    let n = 1usize << 20;
    let t64 = Tensor::vector(&one_then_small(n)).scale(n as f64);
    for columns in [1, 2] {
        // Along the only axis, and along the leading axis of `[2^20, 2]`.
        let shape = if columns == 1 { vec![n] } else { vec![n, 2] };
        let x64 = Tensor::<f64>::zeros(&shape);
        let t64 = t64.try_broadcast_to(&[columns, n]).unwrap();
        let t64 = t64.transpose().try_reshape(&shape).unwrap();
        let (x32, t32) = (x64.cast::<f32>(), t64.cast::<f32>());
        let (_, want) = jvp(|x| Ok(x.softmax(0)), &x64, &t64).unwrap();
        let (_, got) = jvp(|x| Ok(x.softmax(0)), &x32, &t32).unwrap();
        let (_, want_vjp) = vjp(|x| Ok(x.softmax(0)), &x64, &t64).unwrap();
        let (_, got_vjp) = vjp(|x| Ok(x.softmax(0)), &x32, &t32).unwrap();
        let (want, got) = (want.to_vec(), got.to_vec());
        let (want_vjp, got_vjp) = (want_vjp.to_vec(), got_vjp.to_vec());
        for i in [0, 1, columns * n - 1] {
            close(got[i], want[i], &format!("jvp [{i}] of {shape:?}"));
            close(got_vjp[i], want_vjp[i], &format!("vjp [{i}] of {shape:?}"));
        }
    }
}

/// The gradient of a scale by one value, `sum((s x) x)` with respect to `s`, is the dot
/// product of the cotangent `x` and `x`: it was one `f32` running sum per lane, which lost
/// every `x_i^2 = 1e-8` after the first `1` in its lane (1.0092 for 1.0105).
#[test]
fn f32_gradient_of_a_scalar_scale_counts_every_term() {
    let mut x = vec![1e-4_f64; 1 << 20];
    x[0] = 1.0;
    let x64 = Tensor::vector(&x);
    let want = x64.square().sum_all().item().unwrap();
    let x = x64.cast::<f32>();
    let g = grad(
        |s| {
            let x = s.constant_like(&x);
            Ok(x.try_mul(s)?.try_mul(&x)?.sum_all())
        },
        &Tensor::<f32>::scalar(2.0),
    )
    .unwrap();
    close(g.item().unwrap(), want, "d sum((s x) x) / ds");
}
