//! Silent wrong derivatives of the tensor engine at the edge points of its rules, each checked
//! in every mode and nesting (reverse, forward, forward over reverse, reverse over reverse,
//! forward over forward, reverse over forward, `hvp`) against an exact value and the scalar
//! engine.

use perturb::tensor::{hvp, Array, Grad, JacFwd, JacRev, Tensor, TensorFn};
use perturb::{Error, Float};

/// The Hessian of `f` at `x` by the four nestings of `jacfwd` / `jacrev` over `grad` /
/// `jacfwd`, and by `hvp` along each unit vector, row-major; each labelled.
fn hessians<F: TensorFn<f64> + Copy>(f: F, x: &Tensor<f64>) -> Vec<(&'static str, Vec<f64>)> {
    let n = x.len();
    let by_hvp = (0..n)
        .flat_map(|i| {
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let e = Tensor::from_vec(e, x.shape()).unwrap();
            hvp(|x| f.call(x), x, &e).unwrap().to_vec()
        })
        .collect();
    vec![
        ("fwd over rev", JacFwd(Grad(f)).call(x).unwrap().to_vec()),
        ("rev over rev", JacRev(Grad(f)).call(x).unwrap().to_vec()),
        ("fwd over fwd", JacFwd(JacFwd(f)).call(x).unwrap().to_vec()),
        ("rev over fwd", JacRev(JacFwd(f)).call(x).unwrap().to_vec()),
        ("hvp", by_hvp),
    ]
}

/// `x[0]^x[1]`.
#[derive(Clone, Copy)]
struct Pow;
impl TensorFn<f64> for Pow {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        Ok(x.try_narrow(0, 0, 1)?
            .try_pow(&x.try_narrow(0, 1, 1)?)?
            .sum_all())
    }
}

#[test]
fn pow_has_a_symmetric_hessian_where_the_exponent_is_zero() {
    // a^b at (2, 0): f_aa = b (b-1) a^(b-2) = 0, f_ab = a^(b-1) (1 + b ln a) = 1/2,
    // f_bb = a^b ln(a)^2 = ln(2)^2. The base's partial replaced a by 1 wherever b = 0, so its
    // derivative in b was 1^(b-1) = 1, not 1/2: H[0][1] = 1 and H[1][0] = 1/2.
    let ln2 = 2.0_f64.ln();
    let want = [0.0, 0.5, 0.5, ln2 * ln2];
    let scalar = perturb::hessian(|v| v[0].powf(v[1]), &[2.0_f64, 0.0]);
    assert_eq!(scalar.concat(), want);
    for (mode, h) in hessians(Pow, &Tensor::vector(&[2.0, 0.0])) {
        assert_eq!(h, want, "{mode}");
    }
    // At (0, 0) the partial in the base stays the constant 0 (as the scalar rule's), so every
    // second derivative is finite.
    let scalar = perturb::hessian(|v| v[0].powf(v[1]), &[0.0_f64, 0.0]).concat();
    for (mode, h) in hessians(Pow, &Tensor::vector(&[0.0, 0.0])) {
        assert_eq!(h, scalar, "{mode}");
    }
}
