//! Hostile arguments to the tensor constructors (the fourth hunt): every value that
//! `Tensor::rand_uniform` returns lies in `[low, high)`, at the float limits and where the
//! interval is two adjacent floats. Each test failed before the fix committed with it.

use perturb::tensor::Tensor;

/// `low + (high - low) u` with `high - low = 2e308` overflowed: every draw was `inf`.
#[test]
fn rand_uniform_between_ends_whose_difference_overflows_stays_in_range() {
    let x = Tensor::<f64>::rand_uniform(&[1000], -1e308, 1e308, 3).to_vec();
    assert!(
        x.iter().all(|v| (-1e308..1e308).contains(v)),
        "{:?}",
        &x[..4]
    );
    // Both signs are drawn (the values are spread, not stuck at one end).
    assert!(x.iter().any(|&v| v < -1e307) && x.iter().any(|&v| v > 1e307));
    let y = Tensor::<f32>::rand_uniform(&[1000], -f32::MAX, f32::MAX, 3).to_vec();
    assert!(
        y.iter().all(|v| (-f32::MAX..f32::MAX).contains(v)),
        "{:?}",
        &y[..4]
    );
}

/// Between two adjacent floats `[1, 1 + eps)` the only value is 1, but `1 + eps u` rounds to
/// `high` for about half the draws, and so does an `f32` draw `u` rounded to 1.
#[test]
fn rand_uniform_never_returns_its_upper_end() {
    let high = 1.0 + f64::EPSILON;
    let x = Tensor::<f64>::rand_uniform(&[1000], 1.0, high, 5).to_vec();
    assert!(
        x.iter().all(|&v| v == 1.0),
        "{} draws equal high",
        x.iter().filter(|&&v| v == high).count()
    );
    let high32 = 1.0 + f32::EPSILON;
    let y = Tensor::<f32>::rand_uniform(&[1000], 1.0, high32, 5).to_vec();
    assert!(
        y.iter().all(|&v| v == 1.0),
        "{} f32 draws equal high",
        y.iter().filter(|&&v| v == high32).count()
    );
    // An empty interval gives its one end, without looping.
    assert_eq!(
        Tensor::<f64>::rand_uniform(&[3], 2.0, 2.0, 1).to_vec(),
        vec![2.0; 3]
    );
}
