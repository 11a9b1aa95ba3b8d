//! `Dual<T>`: a value and one tangent, `x + x' ε` with `ε² = 0`.

use std::fmt;
use std::panic::Location;

use crate::debug;
use crate::number::{impl_ad_number, AdNumber};
use crate::scalar::{scale_tangent, BinaryOp, Scalar, UnaryOp};

/// A dual number: a primal value and the tangent (directional derivative) carried with it.
///
/// Forward mode in its simplest form: seed the input you differentiate by with tangent 1
/// ([`Dual::variable`]), everything else with 0 ([`Dual::constant`]), and the tangent of the
/// output is the derivative — "if I perturb x by 1, how does the output change?".
///
/// `T` may itself be a dual number or a tape variable: `Dual<Dual<f64>>` gives second
/// derivatives, `Dual<Var<f64>>` Hessian-vector products. The nesting is in the type, so the
/// perturbations of two levels can never be confused.
///
/// ```
/// use perturb::Dual;
/// use num_traits::Float;
///
/// let x = Dual::variable(2.0_f64);
/// let y = (x * x).ln(); // d/dx log(x^2) = 2/x
/// assert_eq!(y.value(), 4.0_f64.ln());
/// assert_eq!(y.tangent(), 1.0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Dual<T> {
    value: T,
    tangent: T,
}

impl<T: Scalar> Dual<T> {
    /// A dual number with the given value and tangent.
    ///
    /// ```
    /// let d = perturb::Dual::new(1.0_f64, 0.5);
    /// assert_eq!((d.value(), d.tangent()), (1.0, 0.5));
    /// ```
    #[inline]
    pub fn new(value: T, tangent: T) -> Self {
        Dual { value, tangent }
    }

    /// The input being differentiated by: tangent 1.
    ///
    /// ```
    /// assert_eq!(perturb::Dual::variable(3.0_f64).tangent(), 1.0);
    /// ```
    #[inline]
    pub fn variable(value: T) -> Self {
        Dual {
            value,
            tangent: T::one(),
        }
    }

    /// A constant: tangent 0.
    ///
    /// ```
    /// assert_eq!(perturb::Dual::constant(3.0_f64).tangent(), 0.0);
    /// ```
    #[inline]
    pub fn constant(value: T) -> Self {
        Dual {
            value,
            tangent: T::zero(),
        }
    }

    /// The primal value.
    ///
    /// ```
    /// assert_eq!(perturb::Dual::new(1.5_f64, 2.0).value(), 1.5);
    /// ```
    #[inline]
    pub fn value(self) -> T {
        self.value
    }

    /// The tangent: the derivative of this value along the seeded direction.
    ///
    /// ```
    /// assert_eq!(perturb::Dual::new(1.5_f64, 2.0).tangent(), 2.0);
    /// ```
    #[inline]
    pub fn tangent(self) -> T {
        self.tangent
    }
}

impl<T: Scalar> AdNumber for Dual<T> {
    type Primal = T;
    #[inline(always)]
    fn primal(self) -> T {
        self.value
    }
    #[inline(always)]
    fn lift(value: T) -> Self {
        Dual::constant(value)
    }
}

impl<T: Scalar> Scalar for Dual<T> {
    const ORDER: usize = T::ORDER + 1;

    #[inline(always)]
    fn is_exact_zero(self) -> bool {
        self.value.is_exact_zero() && self.tangent.is_exact_zero()
    }

    fn first_non_finite(self) -> Option<f64> {
        self.value
            .first_non_finite()
            .or_else(|| self.tangent.first_non_finite())
    }

    #[inline(always)]
    #[track_caller]
    fn apply_unary<O: UnaryOp>(op: &O, x: Self) -> Self {
        let y = unary(op, x);
        if debug::enabled() {
            debug::check_scalar(op.name(), Location::caller(), &[x], y);
        }
        y
    }

    #[inline(always)]
    #[track_caller]
    fn apply_binary<O: BinaryOp>(op: &O, a: Self, b: Self) -> Self {
        let y = binary(op, a, b);
        if debug::enabled() {
            debug::check_scalar(op.name(), Location::caller(), &[a, b], y);
        }
        y
    }
}

#[inline(always)]
fn unary<T: Scalar, O: UnaryOp>(op: &O, x: Dual<T>) -> Dual<T> {
    let value = op.func(x.value);
    Dual {
        value,
        tangent: scale_tangent(op.grads(x.value, value), x.tangent),
    }
}

#[inline(always)]
fn binary<T: Scalar, O: BinaryOp>(op: &O, a: Dual<T>, b: Dual<T>) -> Dual<T> {
    let value = op.func(a.value, b.value);
    let (da, db) = op.grads(a.value, b.value, value);
    Dual {
        value,
        tangent: scale_tangent(da, a.tangent) + scale_tangent(db, b.tangent),
    }
}

impl_ad_number!([T: Scalar] Dual<T>, T);

/// Shows `value + tangent·ε`.
impl<T: Scalar> fmt::Display for Dual<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {}ε", self.value, self.tangent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_rule_and_constants() {
        let x = Dual::variable(3.0_f64);
        let y = x * x * 2.0 + 1.0;
        assert_eq!(y.value(), 19.0);
        assert_eq!(y.tangent(), 12.0);
        assert_eq!(format!("{}", Dual::new(1.0_f64, 2.0)), "1 + 2ε");
    }
}
