//! Hostile inputs for `perturb::tensor::linalg` and the dense kernels under it: subnormal and
//! extreme values, derivatives near the norm's singular point, empty and huge shapes,
//! malformed specs. Each test here failed before the fix its comment names; the expected
//! values are exact identities (stated beside each) or closed forms.

use perturb::tensor::{
    grad, hessian, hvp, jacfwd, jacrev, jvp, linalg, vjp, Array, Batched, Tensor,
};

/// `x / |x|` for `x = (3, 4) * 2^-1070` (f64) is exactly representable as the nearest doubles to
/// `(0.6, 0.8)`: the two entries are subnormal (48 and 64 times the least subnormal 2^-1074),
/// their norm `5 * 2^-1070` is exact, and `1 / |x|` overflows. The gradient of the norm there
/// was `[inf, inf]` in every mode (the rule multiplied by `1 / |x|`).
#[test]
fn the_norm_gradient_at_a_subnormal_vector_is_its_direction_in_every_mode() {
    let x = Tensor::vector(&[f64::from_bits(48), f64::from_bits(64)]);
    let want = [0.6, 0.8];
    let close = |got: Vec<f64>, what: &str| {
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-15),
            "{what}: {got:?}"
        );
    };
    assert_eq!(linalg::vector_norm(&x).to_vec(), vec![f64::from_bits(80)]);
    close(
        grad(|x| linalg::try_vector_norm(x), &x).unwrap().to_vec(),
        "grad",
    );
    close(
        jacfwd(|x| linalg::try_vector_norm(x), &x).unwrap().to_vec(),
        "jacfwd",
    );
    close(
        jacrev(|x| linalg::try_vector_norm(x), &x).unwrap().to_vec(),
        "jacrev",
    );
    let ct = Tensor::scalar(1.0);
    close(
        vjp(|x| linalg::try_vector_norm(x), &x, &ct)
            .unwrap()
            .1
            .to_vec(),
        "vjp",
    );
    for (i, w) in want.iter().enumerate() {
        let mut e = vec![0.0; 2];
        e[i] = 1.0;
        let (_, d) = jvp(|x| linalg::try_vector_norm(x), &x, &Tensor::vector(&e)).unwrap();
        assert!((d.to_vec()[0] - w).abs() < 1e-15, "jvp {i}: {d:?}");
    }
    // The Frobenius norm, and a stack whose second member is ordinary: one Batched pass.
    let m = x.reshape(&[1, 2]).unwrap();
    close(
        grad(|x| linalg::try_matrix_norm(x), &m).unwrap().to_vec(),
        "matrix_norm",
    );
    let stack = Tensor::from_vec(
        vec![f64::from_bits(48), f64::from_bits(64), 3.0, 4.0],
        &[2, 2],
    );
    let g = grad(
        |x| linalg::try_vector_norm(x),
        &Batched::stack(stack.unwrap()),
    )
    .unwrap()
    .into_stack()
    .unwrap();
    close(g.to_vec()[..2].to_vec(), "batched, subnormal member");
    close(g.to_vec()[2..].to_vec(), "batched, ordinary member");
    // f32: (3, 4) * 2^-145, where 1 / |x| overflows f32 too.
    let x32 = Tensor::vector(&[f32::from_bits(48), f32::from_bits(64)]);
    let g32 = grad(|x| linalg::try_vector_norm(x), &x32).unwrap().to_vec();
    assert!(
        (g32[0] - 0.6).abs() < 1e-7 && (g32[1] - 0.8).abs() < 1e-7,
        "f32: {g32:?}"
    );
}

/// Near 0 the norm's Hessian `(I - u u^T) / |x|` (u = x / |x|) is large but representable: at
/// `x = (1e-200, 0, 0)` it is `diag(0, 1e200, 1e200)`. It was `-inf` and NaN (the rule's
/// `1 / |x|` differentiated to `-1 / |x|^2`, which overflows). Through the norm, `|x|^2` has
/// Hessian `2 I` there (at exactly 0 the convention makes it 0, see `Norm`).
#[test]
fn the_norm_hessian_near_zero_is_finite_in_every_mode() {
    let x = Tensor::vector(&[1e-200_f64, 0.0, 0.0]);
    let want = [0.0, 0.0, 0.0, 0.0, 1e200, 0.0, 0.0, 0.0, 1e200];
    let close = |got: &[f64], want: &[f64], what: &str| {
        assert!(
            got.iter()
                .zip(want)
                .all(|(g, w)| (g - w).abs() <= 1e-12 * w.abs().max(1.0)),
            "{what}: {got:?}"
        );
    };
    let h = hessian(|x| linalg::try_vector_norm(x), &x).unwrap();
    close(&h.to_vec(), &want, "hessian (forward over reverse)");
    let h = jacrev(|x| grad(|x| linalg::try_vector_norm(x), x), &x).unwrap();
    close(&h.to_vec(), &want, "reverse over reverse");
    let h = jacfwd(|x| jacfwd(|x| linalg::try_vector_norm(x), x), &x).unwrap();
    close(&h.to_vec(), &want, "forward over forward");
    for i in 0..3 {
        let mut e = vec![0.0; 3];
        e[i] = 1.0;
        let hv = hvp(|x| linalg::try_vector_norm(x), &x, &Tensor::vector(&e)).unwrap();
        close(&hv.to_vec(), &want[3 * i..3 * i + 3], "hvp");
    }
    let h = hessian(|x| Ok(linalg::try_vector_norm(x)?.square()), &x).unwrap();
    let two_i = [2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0];
    close(&h.to_vec(), &two_i, "|x|^2 through the norm");
}
