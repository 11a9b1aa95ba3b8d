//! Element counts are computed with checked arithmetic (reliability report S5 and C5): a shape
//! whose product of lengths overflows, or exceeds `Tensor::MAX_LEN`, is an error at
//! construction naming the operation and the shape, never a tensor whose length disagrees with
//! its shape. Shapes with a zero-length axis let the tests reach huge products without
//! allocating anything.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use perturb::tensor::ops::{Gather, PadNarrow, PadPair, ScatterAdd};
use perturb::tensor::{Array, Op, Tensor};
use perturb::Error;

const MAX: usize = Tensor::<f64>::MAX_LEN;

/// `2^63 + 1`: times 2 it wraps around to 2 in 64-bit arithmetic.
const WRAPS: usize = (1 << 63) + 1;

/// Asserts that `result` is an `InvalidArgument` error of `op` whose message names `shape`.
#[track_caller]
fn assert_too_large<V: std::fmt::Debug>(result: Result<V, Error>, op: &str, shape: &[usize]) {
    let err = result.expect_err("an overflowing shape must be refused");
    assert!(
        matches!(&err, Error::InvalidArgument { op: o, .. } if *o == op),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{op}: shape {shape:?} has more elements")),
        "{text}"
    );
}

#[test]
fn from_vec_refuses_a_shape_whose_product_wraps_around() {
    // Before: accepted, as a tensor of shape [2^63 + 1, 2] holding 2 elements.
    let result = Tensor::from_vec(vec![1.0_f64, 2.0], &[WRAPS, 2]);
    assert_too_large(result, "Tensor::from_vec", &[WRAPS, 2]);
    // A shape the buffer really fits is still fine, and so is a product of exactly MAX_LEN
    // when no buffer is needed.
    assert!(Tensor::from_vec(vec![1.0_f32, 2.0], &[1, 2, 1]).is_ok());
    assert!(Tensor::<f64>::try_zeros(&[MAX, 0]).is_ok());
}

#[test]
fn constructors_refuse_overflowing_shapes() {
    let huge = [1usize << 32, 1 << 32];
    // Before: zeros(&[2^32, 2^32]) had len() 0.
    assert_too_large(Tensor::<f64>::try_zeros(&huge), "Tensor::zeros", &huge);
    assert_too_large(Tensor::<f32>::try_ones(&huge), "Tensor::ones", &huge);
    assert_too_large(Tensor::try_full(&huge, 2.0_f64), "Tensor::full", &huge);
    // A zero-length axis does not hide the overflow of the others.
    let hidden = [0, 1 << 32, 1 << 32];
    assert_too_large(Tensor::<f64>::try_zeros(&hidden), "Tensor::zeros", &hidden);
    // Past MAX_LEN without overflowing: refused too, rather than a capacity overflow panic.
    assert_too_large(
        Tensor::<f32>::try_zeros(&[MAX + 1]),
        "Tensor::zeros",
        &[MAX + 1],
    );
}

/// Runs `f`, which must panic, and returns the panic's message and location.
fn panic_site(f: impl FnOnce()) -> (String, String) {
    let site = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&site);
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if let Some(l) = info.location() {
            *seen.lock().unwrap() = format!("{}:{}", l.file(), l.line());
        }
    }));
    let payload = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("must panic");
    panic::set_hook(previous);
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    let at = site.lock().unwrap().clone();
    (message, at)
}

#[test]
fn panicking_constructors_report_the_callers_line() {
    const HUGE: [usize; 2] = [1 << 32, 1 << 32];
    type Case = (&'static str, Box<dyn FnOnce()>);
    let cases: Vec<Case> = vec![
        (
            "Tensor::zeros",
            Box::new(|| drop(Tensor::<f64>::zeros(&HUGE))),
        ),
        (
            "Tensor::ones",
            Box::new(|| drop(Tensor::<f32>::ones(&HUGE))),
        ),
        (
            "Tensor::full",
            Box::new(|| drop(Tensor::full(&HUGE, 1.0_f64))),
        ),
        (
            "Tensor::randn",
            Box::new(|| drop(Tensor::<f64>::randn(&HUGE, 0.0, 1.0, 1))),
        ),
        (
            "Tensor::rand_uniform",
            Box::new(|| drop(Tensor::<f64>::rand_uniform(&HUGE, 0.0, 1.0, 1))),
        ),
        (
            "Tensor::arange",
            Box::new(|| drop(Tensor::<f64>::arange(usize::MAX))),
        ),
        (
            "Tensor::linspace",
            Box::new(|| drop(Tensor::linspace(0.0_f64, 1.0, usize::MAX))),
        ),
    ];
    for (op, f) in cases {
        let (message, at) = panic_site(f);
        assert!(message.starts_with(&format!("{op}: shape ")), "{message}");
        assert!(
            message.contains("has more elements than a tensor can hold"),
            "{message}"
        );
        // The closure in this file, not a line inside perturb.
        assert!(
            at.starts_with(file!()),
            "{op} panicked at {at}, not at the caller's line"
        );
    }
}

#[test]
fn reshape_refuses_an_overflowing_shape_even_with_no_elements() {
    // Before: reshaping a 0-element tensor to [2^32, 2^32] succeeded.
    let empty = Tensor::<f64>::zeros(&[0]);
    assert_too_large(
        empty.reshape(&[1 << 32, 1 << 32]),
        "reshape",
        &[1 << 32, 1 << 32],
    );
    assert_too_large(
        empty.try_reshape(&[0, 1 << 32, 1 << 32]),
        "reshape",
        &[0, 1 << 32, 1 << 32],
    );
    assert_too_large(
        Tensor::<f64>::zeros(&[2]).try_reshape(&[WRAPS, 2]),
        "reshape",
        &[WRAPS, 2],
    );
}

#[test]
fn broadcasting_refuses_a_result_too_large() {
    // Two valid (empty) tensors whose broadcast has 2^80 elements along its nonzero axes.
    let a = Tensor::<f64>::zeros(&[0, 1 << 40, 1]);
    let b = Tensor::<f64>::zeros(&[0, 1, 1 << 40]);
    let out = [0, 1 << 40, 1 << 40];
    assert_too_large(a.try_add(&b), "add", &out);
    assert_too_large(a.try_maximum(&b), "maximum", &out);
    assert_too_large(a.try_broadcast_to(&out), "broadcast_to", &out);
    assert_too_large(a.try_select(&b, &a), "where", &out);
}

#[test]
fn matmul_refuses_a_product_too_large() {
    // [2^40, 0] @ [0, 2^40] has 2^80 elements: before, m * n wrapped to 0 and the product was a
    // tensor of shape [2^40, 2^40] holding nothing.
    let a = Tensor::<f64>::zeros(&[1 << 40, 0]);
    let b = Tensor::<f64>::zeros(&[0, 1 << 40]);
    assert_too_large(a.try_matmul(&b), "matmul", &[1 << 40, 1 << 40]);
    // Batched, where the batch axes broadcast to more than fits.
    let a = Tensor::<f64>::zeros(&[1 << 40, 1, 1, 0]);
    let b = Tensor::<f64>::zeros(&[1, 1 << 40, 0, 1]);
    assert_too_large(a.try_matmul(&b), "matmul", &[1 << 40, 1 << 40]);
}

#[test]
fn joining_refuses_lengths_that_add_up_past_the_limit() {
    let x = Tensor::<f64>::zeros(&[MAX, 0]);
    assert_too_large(Tensor::try_concat(&[&x, &x], 0), "concat", &[2 * MAX, 0]);
    // Sixteen of them add up to more than usize::MAX along the axis.
    let many = vec![&x; 17];
    let err = Tensor::try_concat(&many, 0).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("concat: the lengths along axis 0"),
        "{err}"
    );
    assert_too_large(Tensor::try_stack(&[&x, &x], 0), "concat", &[2, MAX, 0]);
}

#[test]
fn index_operations_refuse_results_too_large() {
    let x = Tensor::<f64>::zeros(&[1, 1 << 50, 0]);
    let indices = vec![0; 1 << 11];
    assert_too_large(
        x.try_index_select(0, indices.clone()),
        "index_select",
        &[1 << 11, 1 << 50, 0],
    );
    assert_too_large(
        x.try_index_add(0, vec![0], 1 << 11),
        "index_add",
        &[1 << 11, 1 << 50, 0],
    );
    // A gather index shape that wraps around to its two elements.
    let small = Tensor::<f64>::zeros(&[1, 2]);
    let gather = Gather {
        axis: 0,
        index: vec![0, 0].into(),
        index_shape: vec![WRAPS, 2],
    };
    assert_too_large(gather.eval(&[&small]), "gather", &[WRAPS, 2]);
    let scatter = ScatterAdd {
        axis: 0,
        index: vec![0, 0].into(),
        shape: vec![WRAPS, 2],
    };
    assert_too_large(scatter.eval(&[&small]), "scatter_add", &[WRAPS, 2]);
}

#[test]
fn paddings_refuse_results_too_large() {
    // Before: 16 * 2^60 wrapped to 0 and the padding loop ran into a capacity overflow.
    let x = Tensor::<f64>::zeros(&[16, 1]);
    let pad = PadNarrow {
        axis: 1,
        start: 0,
        total: 1 << 60,
    };
    assert_too_large(pad.eval(&[&x]), "pad_narrow", &[16, 1 << 60]);
    let pair = PadPair {
        axis: 1,
        total: 1 << 60,
        starts: [0, 1],
    };
    assert_too_large(pair.eval(&[&x, &x]), "pad_pair", &[16, 1 << 60]);
    // A start past the end, or a start + len that overflows, names the range.
    let err = x.try_narrow(1, usize::MAX, 2).unwrap_err();
    assert!(err.to_string().starts_with("narrow: the range"), "{err}");
}

#[test]
fn display_visits_only_the_entries_it_shows() {
    let t = Tensor::<f64>::arange(10);
    assert_eq!(t.to_string(), "[0, 1, 2, ..., 7, 8, 9]");
    assert_eq!(Tensor::<f64>::arange(3).to_string(), "[0, 1, 2]");
    // Before, the loop walked all 2^40 rows of this empty tensor (skipping each).
    let empty = Tensor::<f64>::zeros(&[1 << 40, 0]);
    assert_eq!(empty.to_string(), "[[], [], [], ..., [], [], []]");
}

/// Empty results of operations that loop over the blocks around an axis return at once: before,
/// each walked the 2^40 (empty) blocks of these tensors, or copied an operand out to the
/// batch's size, which for the matrix product was 48 TB.
#[test]
fn empty_results_do_not_walk_their_outer_axes() {
    let x = Tensor::<f64>::zeros(&[1 << 40, 0]);
    assert_eq!(x.index_select(1, vec![]).shape(), &[1 << 40, 0]);
    assert_eq!(
        x.try_index_add(1, vec![], 0).unwrap().shape(),
        &[1 << 40, 0]
    );
    assert_eq!(Tensor::concat(&[&x, &x], 1).shape(), &[1 << 40, 0]);
    assert_eq!(x.transpose().shape(), &[0, 1 << 40]);
    let pad = PadNarrow {
        axis: 1,
        start: 0,
        total: 0,
    };
    assert_eq!(pad.eval(&[&x]).unwrap().shape(), &[1 << 40, 0]);
    let pair = PadPair {
        axis: 1,
        total: 0,
        starts: [0, 0],
    };
    assert_eq!(pair.eval(&[&x, &x]).unwrap().shape(), &[1 << 40, 0]);
    let batch = Tensor::<f64>::zeros(&[1 << 40, 0, 3]);
    let y = batch.matmul(&Tensor::zeros(&[3, 2]));
    assert_eq!((y.shape(), y.len()), (&[1 << 40, 0, 2][..], 0));
}

/// linspace between ends whose difference overflows: before, the step was inf and the first
/// value `start + inf * 0` was NaN.
#[test]
fn linspace_between_far_ends_stays_finite() {
    let t = Tensor::linspace(-1e308_f64, 1e308, 5);
    assert_eq!(t.to_vec(), vec![-1e308, -5e307, 0.0, 5e307, 1e308]);
    let t = Tensor::linspace(f32::MAX, -f32::MAX, 3);
    assert_eq!(t.to_vec(), vec![f32::MAX, 0.0, -f32::MAX]);
    // Ends that are infinite stay as IEEE arithmetic gives them.
    let t = Tensor::linspace(0.0_f64, f64::INFINITY, 2);
    assert_eq!(t.to_vec(), vec![0.0, f64::INFINITY]);
}
