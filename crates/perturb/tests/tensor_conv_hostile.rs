//! Hostile inputs for the convolutions, the poolings and the cumulative sum: options whose
//! arithmetic overflows `usize` or `isize` (huge stride, padding, dilation, kernel, output
//! padding, groups), empty batch, channel and spatial axes, and shapes whose element count is
//! zero while one length is huge. Each case either gives the right value (worked out by hand
//! in its comment) or an error naming the operation; none may panic, abort or hang.

use perturb::tensor::conv::{try_avg_pool2d, try_max_pool2d, Pool2d};
use perturb::tensor::ops::AvgPool2d;
use perturb::tensor::{Array, Op, Tensor, TensorTape};
use perturb::Error;

const HALF: usize = 1 << 63;

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
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
