//! Errors of composite tensor functions name the function the caller called and its own
//! arguments (the fourth hunt), not the operation it is built on. Each test failed before the
//! fix committed with it.

use perturb::tensor::{Array, Tensor};

/// `stack` with an axis past the end said "unsqueeze: cannot insert axis 2 into a tensor of
/// shape [2]".
#[test]
fn stack_along_an_axis_out_of_range_names_stack() {
    let v = Tensor::<f64>::ones(&[2]);
    let err = Tensor::try_stack(&[&v, &v], 2).unwrap_err().to_string();
    assert!(err.starts_with("stack:"), "{err}");
    assert!(
        err.contains("axis 2") && err.contains("[2]") && err.contains("at most 1"),
        "{err}"
    );
    // The last axis itself is fine.
    assert_eq!(Tensor::try_stack(&[&v, &v], 1).unwrap().shape(), &[2, 2]);
}

/// `slice(1, 2..5)` of a `[2, 3]` tensor said "narrow: the range 2..2+3 is out of range": the
/// wrong function and a range the caller never wrote.
#[test]
fn slice_out_of_range_names_slice_and_the_range_given() {
    let m = Tensor::<f64>::ones(&[2, 3]);
    let err = m.try_slice(1, 2..5).unwrap_err().to_string();
    assert!(
        err.starts_with("slice:") && err.contains("2..5") && err.contains("length 3"),
        "{err}"
    );
    let err = m.try_slice(2, 0..1).unwrap_err().to_string();
    assert!(err.starts_with("slice:") && err.contains("axis 2"), "{err}");
    assert_eq!(m.try_slice(1, 1..3).unwrap().shape(), &[2, 2]);
    assert_eq!(m.try_slice(1, 3..3).unwrap().shape(), &[2, 0]);
}
