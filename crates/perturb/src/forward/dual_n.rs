//! `DualN<T, N>`: a value and `N` tangents, a fixed count chosen at compile time.

use std::fmt;
use std::panic::Location;

use crate::debug;
use crate::number::{impl_ad_number, AdNumber};
use crate::scalar::{scale_tangent, BinaryOp, Scalar, UnaryOp};

/// A dual number carrying `N` tangents at once: one forward pass gives the derivatives along `N`
/// directions, e.g. the partials with respect to `N` inputs (the lecture's `forward_grads`).
///
/// It lives on the stack and is `Copy`; for a count known only at run time use
/// [`DualVec`](crate::DualVec).
///
/// ```
/// use perturb::DualN;
///
/// // f(x, y) = x y^2 at (3, 2): both partials in one pass.
/// let [x, y] = DualN::<f64, 2>::variables([3.0, 2.0]);
/// let f = x * y * y;
/// assert_eq!(f.value(), 12.0);
/// assert_eq!(f.tangents(), &[4.0, 12.0]);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DualN<T, const N: usize> {
    value: T,
    tangents: [T; N],
}

impl<T: Scalar, const N: usize> DualN<T, N> {
    /// A number with the given value and tangents.
    ///
    /// ```
    /// let d = perturb::DualN::new(1.0_f64, [0.5, 2.0]);
    /// assert_eq!(d.tangents(), &[0.5, 2.0]);
    /// ```
    #[inline]
    pub fn new(value: T, tangents: [T; N]) -> Self {
        DualN { value, tangents }
    }

    /// A constant: all tangents 0.
    ///
    /// ```
    /// let c = perturb::DualN::<f64, 3>::constant(2.0);
    /// assert_eq!(c.tangents(), &[0.0; 3]);
    /// ```
    #[inline]
    pub fn constant(value: T) -> Self {
        DualN {
            value,
            tangents: [T::zero(); N],
        }
    }

    /// The `i`-th of `N` inputs: tangent 1 in slot `i`, 0 elsewhere.
    /// Returns `None` if `i >= N`.
    ///
    /// ```
    /// let x = perturb::DualN::<f64, 2>::variable(5.0, 1).unwrap();
    /// assert_eq!(x.tangents(), &[0.0, 1.0]);
    /// ```
    #[inline]
    pub fn variable(value: T, i: usize) -> Option<Self> {
        let mut d = Self::constant(value);
        *d.tangents.get_mut(i)? = T::one();
        Some(d)
    }

    /// `N` inputs seeded with the unit directions, ready for one forward pass.
    ///
    /// ```
    /// let [a, b] = perturb::DualN::<f64, 2>::variables([1.0, 2.0]);
    /// assert_eq!((a.tangents(), b.tangents()), (&[1.0, 0.0], &[0.0, 1.0]));
    /// ```
    pub fn variables(values: [T; N]) -> [Self; N] {
        let mut i = 0;
        values.map(|v| {
            let mut d = Self::constant(v);
            d.tangents[i] = T::one();
            i += 1;
            d
        })
    }

    /// The primal value.
    ///
    /// ```
    /// assert_eq!(perturb::DualN::<f64, 1>::constant(4.0).value(), 4.0);
    /// ```
    #[inline]
    pub fn value(self) -> T {
        self.value
    }

    /// The `N` tangents.
    ///
    /// ```
    /// assert_eq!(perturb::DualN::new(0.0_f64, [1.0]).tangents(), &[1.0]);
    /// ```
    #[inline]
    pub fn tangents(&self) -> &[T; N] {
        &self.tangents
    }
}

impl<T: Scalar, const N: usize> AdNumber for DualN<T, N> {
    type Primal = T;
    #[inline(always)]
    fn primal(self) -> T {
        self.value
    }
    #[inline(always)]
    fn lift(value: T) -> Self {
        DualN::constant(value)
    }
}

impl<T: Scalar, const N: usize> Scalar for DualN<T, N> {
    const ORDER: usize = T::ORDER + 1;

    #[inline(always)]
    fn is_exact_zero(self) -> bool {
        self.value.is_exact_zero() && self.tangents.iter().all(|t| t.is_exact_zero())
    }

    fn first_non_finite(self) -> Option<f64> {
        self.value
            .first_non_finite()
            .or_else(|| self.tangents.iter().find_map(|t| t.first_non_finite()))
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
fn unary<T: Scalar, O: UnaryOp, const N: usize>(op: &O, x: DualN<T, N>) -> DualN<T, N> {
    let value = op.func(x.value);
    let d = op.grads(x.value, value);
    DualN {
        value,
        tangents: x.tangents.map(|t| scale_tangent(d, t)),
    }
}

#[inline(always)]
fn binary<T: Scalar, O: BinaryOp, const N: usize>(
    op: &O,
    a: DualN<T, N>,
    b: DualN<T, N>,
) -> DualN<T, N> {
    let value = op.func(a.value, b.value);
    let (da, db) = op.grads(a.value, b.value, value);
    let mut tangents = a.tangents;
    for (t, &tb) in tangents.iter_mut().zip(&b.tangents) {
        *t = scale_tangent(da, *t) + scale_tangent(db, tb);
    }
    DualN { value, tangents }
}

impl_ad_number!([T: Scalar, const N: usize] DualN<T, N>, T);

/// Shows `value + [t1, t2, ...]·ε`.
impl<T: Scalar, const N: usize> fmt::Display for DualN<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} + {:?}ε", self.value, self.tangents)
    }
}
