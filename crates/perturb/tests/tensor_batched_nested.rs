//! `Batched::primal` of a stack of stacks puts the outer stack's axis first, then the inner's,
//! then the value's, whichever layout each stack has; checked against the values placed by hand.

use perturb::tensor::{Array, Batched, Tensor};

/// `t` of shape `[2, 3, 4]` with element `[i, o, k]` = `100 i + 10 o + k`.
fn numbered() -> Tensor<f64> {
    let data = (0..24)
        .map(|n| f64::from(100 * (n / 12) + 10 * ((n / 4) % 3) + n % 4))
        .collect();
    Tensor::from_vec(data, &[2, 3, 4]).unwrap()
}

#[test]
fn a_stack_of_stacks_has_the_outer_axis_first() {
    // Inner stack: 2 values of shape [3, 4]; the outer stack takes their axis 0: 3 values of [4].
    let nested = Batched::stack(Batched::stack(numbered()));
    assert_eq!(nested.shape(), &[4]);
    let p = nested.primal();
    assert_eq!(p.shape(), &[3, 2, 4]);
    for o in 0..3 {
        for i in 0..2 {
            for k in 0..4 {
                let want = (100 * i + 10 * o + k) as f64;
                assert_eq!(p.as_slice()[(o * 2 + i) * 4 + k], want, "[{o}, {i}, {k}]");
            }
        }
    }
}
