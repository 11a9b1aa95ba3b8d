//! Determinants whose LU pivots are far apart in size (the fourth hunt). The first test failed
//! before the fix committed with it; the second held and guards that ordinary determinants
//! keep their bits. Expected values are closed forms (products of powers of ten).

use perturb::tensor::{grad, jvp, linalg, Array, Tensor};

fn m(v: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(v.to_vec(), &[3, 3]).unwrap()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-14 * want.abs(),
        "{what}: {got:e}, want {want:e}"
    );
}

/// The pivots `1e200, 1e200, 1e-200` multiplied left to right overflowed to `inf` (and
/// `1e-200, 1e-200, 1e200` underflowed to 0), though the determinant is `1e200` (`1e-200`):
/// triangular, symmetric (Cholesky) and general (LU) matrices alike, and the gradient
/// `det A A^-T` was `inf` and NaN.
#[test]
fn det_of_a_matrix_with_pivots_far_apart_in_size_is_finite() {
    let diagonal = m(&[1e200, 0.0, 0.0, 0.0, 1e200, 0.0, 0.0, 0.0, 1e-200]);
    close(linalg::det(&diagonal).to_vec()[0], 1e200, "diagonal");
    let tiny = m(&[1e-200, 0.0, 0.0, 0.0, 1e-200, 0.0, 0.0, 0.0, 1e200]);
    close(
        linalg::det(&tiny).to_vec()[0],
        1e-200,
        "diagonal, small first",
    );
    // Symmetric with a positive diagonal (tried by Cholesky): det = (1e400 - 1) 1e-200.
    let symmetric = m(&[1e200, 1.0, 0.0, 1.0, 1e200, 0.0, 0.0, 0.0, 1e-200]);
    close(linalg::det(&symmetric).to_vec()[0], 1e200, "symmetric");
    // General (LU): the third row's 0.5 does not change the determinant.
    let general = m(&[1e200, 1.0, 0.0, 1.0, 1e200, 0.0, 0.5, 0.0, 1e-200]);
    close(linalg::det(&general).to_vec()[0], 1e200, "general");
    let g32 = linalg::det(&m(&[1e30, 1.0, 0.0, 1.0, 1e30, 0.0, 0.5, 0.0, 1e-30]).cast::<f32>());
    assert!(
        ((g32.to_vec()[0] as f64) - 1e30).abs() <= 1e-6 * 1e30,
        "f32: {g32:?}"
    );
    // d det / dA = det A A^-T = diag(1, 1, 1e400 = inf) for the diagonal one.
    let g = grad(|a| linalg::try_det(a), &diagonal).unwrap().to_vec();
    assert_eq!(g[..8], [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], "{g:?}");
    let (_, t) = jvp(
        linalg::try_det,
        &diagonal,
        &m(&[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    )
    .unwrap();
    close(t.to_vec()[0], 1.0, "jvp");
}

/// Where no partial product leaves the float range the value is the plain product's, bit
/// for bit.
#[test]
fn det_of_an_ordinary_matrix_is_the_plain_product_of_its_pivots() {
    let a = Tensor::from_vec(vec![0.0_f64, 2.0, 3.0, 1.0], &[2, 2]).unwrap();
    assert_eq!(linalg::det(&a).to_vec(), vec![-6.0]);
    let d = m(&[0.1, 0.0, 0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.7]);
    assert_eq!(linalg::det(&d).to_vec()[0], 0.1 * 0.3 * 0.7);
    let stack = Tensor::try_stack(&[&a, &a.scale(2.0)], 0).unwrap();
    assert_eq!(linalg::det(&stack).to_vec(), vec![-6.0, -24.0]);
}
