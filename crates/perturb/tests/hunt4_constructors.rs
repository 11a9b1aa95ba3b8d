//! Hostile arguments to the tensor constructors (the fourth hunt): every value that
//! `Tensor::rand_uniform` returns lies in `[low, high)`, at the float limits and where the
//! interval is two adjacent floats; parameters no distribution has (a negative standard
//! deviation, ends the wrong way round, a NaN) are errors naming the constructor. Each test
//! failed before the fix committed with it.

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

/// `randn` with a negative standard deviation returned the mirror image of the distribution,
/// and `rand_uniform(low > high)` values from `(high, low]`, both without a word; a NaN or
/// infinite parameter filled the tensor with NaN or infinities. Each is now an error naming
/// the constructor and the parameter (as PyTorch's `normal_` and `uniform_` check).
#[test]
fn random_constructors_reject_parameters_no_distribution_has() {
    let cases: Vec<(Result<Tensor<f64>, _>, &str)> = vec![
        (
            Tensor::try_randn(&[3], 0.0, -1.0, 1),
            "Tensor::randn: the standard deviation is -1",
        ),
        (
            Tensor::try_randn(&[3], 0.0, f64::NAN, 1),
            "Tensor::randn: the standard deviation is NaN",
        ),
        (
            Tensor::try_randn(&[3], 0.0, f64::INFINITY, 1),
            "Tensor::randn: the standard deviation is inf",
        ),
        (
            Tensor::try_randn(&[3], f64::NAN, 1.0, 1),
            "Tensor::randn: the mean is NaN",
        ),
        (
            Tensor::try_rand_uniform(&[3], 1.0, 0.0, 1),
            "Tensor::rand_uniform: low 1 is above high 0",
        ),
        (
            Tensor::try_rand_uniform(&[3], f64::NAN, 1.0, 1),
            "Tensor::rand_uniform: the interval [NaN, 1)",
        ),
        (
            Tensor::try_rand_uniform(&[3], 0.0, f64::INFINITY, 1),
            "Tensor::rand_uniform: the interval [0, inf)",
        ),
        (
            Tensor::try_randn(&[1 << 32, 1 << 32], 0.0, 1.0, 1),
            "Tensor::randn: shape",
        ),
    ];
    for (got, want) in cases {
        let err = got.expect_err(want).to_string();
        assert!(err.starts_with(want), "{err:?} should start with {want:?}");
    }
    // The edges of what is allowed: a point mass.
    assert_eq!(
        Tensor::<f64>::try_randn(&[2], 3.0, 0.0, 1)
            .unwrap()
            .to_vec(),
        vec![3.0; 2]
    );
    assert_eq!(
        Tensor::<f32>::try_rand_uniform(&[2], 5.0, 5.0, 1)
            .unwrap()
            .to_vec(),
        vec![5.0; 2]
    );
}

/// The panicking forms say the same thing.
#[test]
#[should_panic(expected = "Tensor::rand_uniform: low 2 is above high -2")]
fn rand_uniform_with_its_ends_the_wrong_way_round_panics_with_the_error() {
    Tensor::<f32>::rand_uniform(&[4], 2.0, -2.0, 0);
}
