//! Silent wrong answers of the scalar engine at the edges of its rules, each against an exact
//! value.

use perturb::{hessian, Float};

#[test]
fn powf_keeps_its_mixed_second_derivative_at_a_zero_exponent() {
    // f(a, b) = a^b at (2, 0): f_ab = a^(b-1) (1 + b ln a) = 1/2, f_aa = b (b-1) a^(b-2) = 0,
    // f_bb = a^b ln(a)^2 = ln(2)^2. The partial in a was a constant 0 wherever b == 0, so its
    // derivative in b (the mixed term) came out 0.
    let h = hessian(|v| v[0].powf(v[1]), &[2.0_f64, 0.0]);
    let ln2 = 2.0_f64.ln();
    assert_eq!(h[0], vec![0.0, 0.5]);
    assert_eq!(h[1][0], 0.5);
    assert!((h[1][1] - ln2 * ln2).abs() < 1e-15);
}

#[test]
fn gradient_wrt_an_intermediate_value_is_its_adjoint_not_zero() {
    // The sweep of gradient_wrt zeroes the slots of operations as it goes (to keep its buffer
    // clean); asked about an intermediate, it read that zero.
    let tape = perturb::Tape::new();
    let x = tape.var(1.5_f64);
    let t = x * x;
    let y = t * 3.0 + x;
    assert_eq!(tape.gradient(y).unwrap()[t], 3.0);
    assert_eq!(tape.gradient_wrt(y, &[t, x]).unwrap(), vec![3.0, 10.0]);
    // And the buffer is clean for the next call.
    assert_eq!(tape.gradient_wrt(t, &[x, t]).unwrap(), vec![3.0, 1.0]);
}
