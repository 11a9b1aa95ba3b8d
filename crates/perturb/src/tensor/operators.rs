//! `+ - * /` and unary `-` for tensors and tape variables, by reference and by value, with a
//! tensor or a constant on the right. They panic where the `try_` methods of
//! [`Array`] return an error, pointing at the caller's line.

use std::ops;

use num_traits::Float;

use super::array::Array;
use super::dense::Tensor;
use super::element::Element;
use super::tape::TensorVar;

macro_rules! operators {
    ([$($g:tt)*] $ty:ty) => {
        operators!(@bin [$($g)*] $ty, Add add);
        operators!(@bin [$($g)*] $ty, Sub sub);
        operators!(@bin [$($g)*] $ty, Mul mul);
        operators!(@bin [$($g)*] $ty, Div div);

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

/// `array op constant`, for each element type (a generic `A::Elem` would overlap with the
/// array-on-the-right impls as far as coherence can tell).
macro_rules! scalar_operators {
    ([$($g:tt)*] $ty:ty, $elem:ty) => {
        scalar_operators!(@one [$($g)*] $ty, $elem, Add add Array::add_scalar, |c: $elem| c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Sub sub Array::add_scalar, |c: $elem| -c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Mul mul Array::scale, |c: $elem| c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Div div div_scalar, |c: $elem| c);
    };
    (@one [$($g:tt)*] $ty:ty, $elem:ty, $trait:ident $method:ident $with_scalar:path, $constant:expr) => {
        impl<$($g)*> ops::$trait<$elem> for &$ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                $with_scalar(self, ($constant)(rhs))
            }
        }
        impl<$($g)*> ops::$trait<$elem> for $ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                $with_scalar(&self, ($constant)(rhs))
            }
        }
    };
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

operators!([T: Element] Tensor<T>);
operators!(['t, A: Array] TensorVar<'t, A>);
scalar_operators!([T: Element] Tensor<T>, T);
scalar_operators!(['t, A: Array<Elem = f64>] TensorVar<'t, A>, f64);
scalar_operators!(['t, A: Array<Elem = f32>] TensorVar<'t, A>, f32);
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
