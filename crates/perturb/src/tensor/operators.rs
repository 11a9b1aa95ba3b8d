//! `+ - * /` and unary `-` for every array type ([`Tensor`], [`TensorVar`], [`DualTensor`],
//! [`Batched`], [`Deferred`]), by reference and by value, with an array of the same type or a
//! constant of its element type on the right, and a constant (`f32` or `f64`) on the left.
//! Arrays broadcast as in the methods. They panic where the `try_` methods of [`Array`]
//! return an error, pointing at the caller's line.
//!
//! [`ArrayOps`] names the owned forms, so that generic code can use them (see the
//! [prelude](crate::prelude)).

use std::ops;

use num_traits::Float;

use super::array::Array;
use super::batched::Batched;
use super::deferred::Deferred;
use super::dense::Tensor;
use super::dual::DualTensor;
use super::element::Element;
use super::tape::TensorVar;

/// Declares a trait by its bounds (`Self` the array type) and implements it for every type
/// that has them, from one list.
macro_rules! bounds_trait {
    ($(#[$doc:meta])* pub trait $name:ident: $($bounds:tt)+) => {
        $(#[$doc])*
        pub trait $name: $($bounds)+ {}
        impl<A> $name for A where A: $($bounds)+ {}
    };
}

bounds_trait! {
    /// An [`Array`] with the arithmetic operators, owned on the left: `x + y`, `x + &y`,
    /// `x + c` (a constant of the element type), the same for `-`, `*` and `/`, and `-x`, all
    /// broadcasting and panicking on a shape mismatch like [`Array::add`]. Every array type is one
    /// (a blanket impl): bound generic code by `A: ArrayOps` instead of `A: Array` to write it with
    /// operators.
    ///
    /// Only the owned forms can be named here: the bounds a trait states about `&Self` are not
    /// implied where the trait is used, so `&x + &y` needs `x.clone() + y` in generic code
    /// (arrays are handles to shared storage: a clone copies no elements). Concrete types have
    /// every form. See the [prelude](crate::prelude) for the idiom.
    ///
    /// A trait of its own rather than bounds of [`Array`]: in code bounded by them, a method
    /// call on an owned array with an operator's name (`x.mul(&y)`) would become the
    /// operator's and move `x`, which existing generic code does not expect.
    ///
    /// ```
    /// use perturb::prelude::*;
    ///
    /// // sum((x - 1)^2 * w) for any array type with f64 elements.
    /// fn weighted<A: ArrayOps<Elem = f64>>(x: &A, w: &A) -> A {
    ///     ((x.clone() - 1.0).square() * w).sum_all()
    /// }
    /// let x = Tensor::vector(&[2.0, 3.0]);
    /// let w = Tensor::vector(&[1.0, 0.5]);
    /// assert_eq!(weighted(&x, &w).to_vec(), vec![1.0 + 2.0]);
    /// ```
    pub trait ArrayOps: Array
        + ops::Add<Output = Self>
        + ops::Sub<Output = Self>
        + ops::Mul<Output = Self>
        + ops::Div<Output = Self>
        + for<'a> ops::Add<&'a Self, Output = Self>
        + for<'a> ops::Sub<&'a Self, Output = Self>
        + for<'a> ops::Mul<&'a Self, Output = Self>
        + for<'a> ops::Div<&'a Self, Output = Self>
        + ops::Add<<Self as Array>::Elem, Output = Self>
        + ops::Sub<<Self as Array>::Elem, Output = Self>
        + ops::Mul<<Self as Array>::Elem, Output = Self>
        + ops::Div<<Self as Array>::Elem, Output = Self>
        + ops::Neg<Output = Self>
}

/// `array op array` and `-array`, for both owned and borrowed operands.
macro_rules! array_operators {
    ([$($g:tt)*] $ty:ty) => {
        array_operators!(@bin [$($g)*] $ty, Add add);
        array_operators!(@bin [$($g)*] $ty, Sub sub);
        array_operators!(@bin [$($g)*] $ty, Mul mul);
        array_operators!(@bin [$($g)*] $ty, Div div);

        impl<$($g)*> ops::Neg for &$ty {
            type Output = $ty;
            #[track_caller]
            fn neg(self) -> $ty {
                Array::neg(self)
            }
        }
        impl<$($g)*> ops::Neg for $ty {
            type Output = $ty;
            #[track_caller]
            fn neg(self) -> $ty {
                Array::neg(&self)
            }
        }
    };
    (@bin [$($g:tt)*] $ty:ty, $trait:ident $method:ident) => {
        impl<$($g)*> ops::$trait<&$ty> for &$ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: &$ty) -> $ty {
                Array::$method(self, rhs)
            }
        }
        impl<$($g)*> ops::$trait<$ty> for &$ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $ty) -> $ty {
                Array::$method(self, &rhs)
            }
        }
        impl<$($g)*> ops::$trait<$ty> for $ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $ty) -> $ty {
                Array::$method(&self, &rhs)
            }
        }
        impl<$($g)*> ops::$trait<&$ty> for $ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: &$ty) -> $ty {
                Array::$method(&self, rhs)
            }
        }
    };
}

/// `array op constant`, the constant of the array's element type `$elem`. For a wrapper
/// array the generics read `[E: Element, A: Array<Elem = E>]`: with the element a type
/// parameter `E`, coherence sees that these impls cannot overlap the array-on-the-right ones
/// (an array type is never an [`Element`]), which it cannot for the projection `A::Elem`.
macro_rules! scalar_operators {
    ([$($g:tt)*] $ty:ty, $elem:ty) => {
        scalar_operators!(@one [$($g)*] $ty, $elem, Add add Array::add_scalar);
        scalar_operators!(@one [$($g)*] $ty, $elem, Sub sub sub_scalar);
        scalar_operators!(@one [$($g)*] $ty, $elem, Mul mul Array::scale);
        scalar_operators!(@one [$($g)*] $ty, $elem, Div div div_scalar);
    };
    (@one [$($g:tt)*] $ty:ty, $elem:ty, $trait:ident $method:ident $with_scalar:path) => {
        impl<$($g)*> ops::$trait<$elem> for &$ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                $with_scalar(self, rhs)
            }
        }
        impl<$($g)*> ops::$trait<$elem> for $ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                $with_scalar(&self, rhs)
            }
        }
    };
}

/// `constant op array`, for each element type in turn: the constant's type is the trait's
/// `Self`, which the orphan rule lets this crate name only concretely.
macro_rules! left_scalar_operators {
    ([$($g:tt)*] $ty:ty, $elem:ty) => {
        left_scalar_operators!(@one [$($g)*] $ty, $elem, Add add Array::add_scalar);
        left_scalar_operators!(@one [$($g)*] $ty, $elem, Sub sub scalar_sub);
        left_scalar_operators!(@one [$($g)*] $ty, $elem, Mul mul Array::scale);
        left_scalar_operators!(@one [$($g)*] $ty, $elem, Div div scalar_div);
    };
    (@one [$($g:tt)*] $ty:ty, $elem:ty, $trait:ident $method:ident $with_scalar:path) => {
        impl<$($g)*> ops::$trait<&$ty> for $elem {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: &$ty) -> $ty {
                $with_scalar(rhs, self)
            }
        }
        impl<$($g)*> ops::$trait<$ty> for $elem {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $ty) -> $ty {
                $with_scalar(&rhs, self)
            }
        }
    };
}

/// All the operators of a wrapper array type `$ty` over `A` (`$lt` its lifetime, if any;
/// `$extra` more bounds on `A`).
macro_rules! every_operator {
    ([$($lt:lifetime)?] $ty:ty $(, $($extra:tt)*)?) => {
        array_operators!([$($lt,)? A: Array $($($extra)*)?] $ty);
        scalar_operators!([$($lt,)? A: Array<Elem = E> $($($extra)*)?, E: Element] $ty, E);
        left_scalar_operators!([$($lt,)? A: Array<Elem = f64> $($($extra)*)?] $ty, f64);
        left_scalar_operators!([$($lt,)? A: Array<Elem = f32> $($($extra)*)?] $ty, f32);
    };
}

/// `x - c`.
#[track_caller]
fn sub_scalar<A: Array>(x: &A, c: A::Elem) -> A {
    x.add_scalar(-c)
}

/// `c - x`, as `-x + c` (exactly `c - x` in floating point).
#[track_caller]
fn scalar_sub<A: Array>(x: &A, c: A::Elem) -> A {
    Array::neg(x).add_scalar(c)
}

/// `c / x`, a true division (`c * (1 / x)` would round twice).
#[track_caller]
fn scalar_div<A: Array>(x: &A, c: A::Elem) -> A {
    Array::div(&x.constant_like(&Tensor::scalar(c)), x)
}

/// `x / c`: a scaling by `1 / c` where that is exact (`c` a power of two with a finite
/// reciprocal), which costs no pass over the elements backwards; otherwise a true division by
/// a constant. `x * (1 / c)` differs from `x / c` in the last bit for most `c`, and overflows
/// for a subnormal `c`: `1e-10 / 1e-310` is 1e300, where `1e-10 * (1 / 1e-310)` is inf.
#[track_caller]
fn div_scalar<A: Array>(x: &A, c: A::Elem) -> A {
    let reciprocal = c.recip();
    let (mantissa, _, _) = c.integer_decode();
    if reciprocal.is_finite() && mantissa.is_power_of_two() {
        x.scale(reciprocal)
    } else {
        Array::div(x, &x.constant_like(&Tensor::scalar(c)))
    }
}

array_operators!([T: Element] Tensor<T>);
scalar_operators!([T: Element] Tensor<T>, T);
left_scalar_operators!([] Tensor<f64>, f64);
left_scalar_operators!([] Tensor<f32>, f32);
every_operator!(['t] TensorVar<'t, A>);
every_operator!([] DualTensor<A>);
every_operator!([] Batched<A>);
every_operator!([] Deferred<A>, + 'static);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::TensorTape;

    #[test]
    fn operators_match_methods() {
        let a = Tensor::vector(&[1.0_f64, 2.0]);
        let b = Tensor::vector(&[3.0_f64, 5.0]);
        assert_eq!((&a + &b).to_vec(), vec![4.0, 7.0]);
        assert_eq!((&a - &b).to_vec(), vec![-2.0, -3.0]);
        assert_eq!((&a * &b).to_vec(), vec![3.0, 10.0]);
        assert_eq!((&b / 2.0).to_vec(), vec![1.5, 2.5]);
        // Division by a constant is a division, not a product with a rounded reciprocal:
        // before, 0.3 / 3 came out 1 ulp off and 1e-10 / 1e-310 as inf.
        let x = Tensor::vector(&[0.3_f64, 1e-10, 7.0, 0.0, -2.5]);
        for c in [
            3.0,
            1e-310,
            0.1,
            4.0,
            0.0,
            -0.0,
            f64::INFINITY,
            2.0_f64.powi(-1074),
        ] {
            let want: Vec<f64> = x.as_slice().iter().map(|&v| v / c).collect();
            let got = (&x / c).to_vec();
            let same = got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "x / {c:e}: {got:?} vs {want:?}");
        }
        let small = Tensor::vector(&[1e-30_f32, 0.7]);
        let got = (&small / 1e-39_f32).to_vec();
        assert_eq!(got, vec![1e-30_f32 / 1e-39, 0.7 / 1e-39]);
        // On a tape too, with the derivative 1 / c.
        let tape = TensorTape::new();
        let v = tape.var(Tensor::vector(&[1e-10_f64]));
        let y = (&v / 1e-310).sum_all();
        assert_eq!(y.value().item(), Some(1e-10 / 1e-310));
        let g = tape.gradient(&y, &[&v]).unwrap().remove(0);
        assert_eq!(g.item(), Some(1.0 / 1e-310));
        assert_eq!((&a - 1.0).to_vec(), vec![0.0, 1.0]);
        assert_eq!((-a.clone()).to_vec(), vec![-1.0, -2.0]);
        let tape = TensorTape::new();
        let x = tape.var(a.clone());
        let y = (&x * &x + 1.0).sum_all();
        assert_eq!(
            tape.gradient(&y, &[&x]).unwrap()[0].to_vec(),
            vec![2.0, 4.0]
        );
    }

    #[test]
    fn a_shape_mismatch_panics_naming_the_operation_and_shapes() {
        let a = Tensor::<f64>::zeros(&[2, 3]);
        let b = Tensor::<f64>::zeros(&[4]);
        let err = std::panic::catch_unwind(|| &a + &b).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert_eq!(msg, "add: shapes [2, 3] and [4] do not match");
    }
}
