//! The scalar engine at hostile arguments (the fourth hunt). The test failed before the fix
//! committed with it.

use perturb::{Dual, Float};

/// `d/dx x^n = n x^(n-1)` computed `n - 1` in `i32`: for `n = i32::MIN` that overflowed, a
/// panic in a debug build and, wrapped to `i32::MAX`, `n x^(2^31 - 1)` in a release build
/// (`-inf` at `x = 2`, where the slope underflows to -0).
#[test]
fn the_slope_of_x_to_the_smallest_i32_power_is_right() {
    let n = i32::MIN;
    let (value, slope) = perturb::derivative(|x| x.powi(n), 1.0_f64);
    assert_eq!((value, slope), (1.0, n as f64));
    let (_, slope) = perturb::derivative(|x| x.powi(n), 2.0_f64);
    assert_eq!(slope, 0.0, "{slope}");
    let (_, slope) = perturb::derivative(|x| x.powi(n), -1.0_f64);
    assert_eq!(slope, -(n as f64), "{slope}");
    // The second derivative at 1, n (n - 1), by nested forward mode and by reverse mode.
    let x = Dual::new(Dual::variable(1.0_f64), Dual::new(1.0, 0.0));
    let y = x.powi(n);
    let want = (n as f64) * (n as f64 - 1.0);
    assert!(
        (y.tangent().tangent() - want).abs() <= 1e-15 * want,
        "{y:?}"
    );
    let (_, g) = perturb::gradient(|v| v[0].powi(n), &[1.0_f64]);
    assert_eq!(g, vec![n as f64]);
}
