//! `+ - * /` and unary `-` for tensors and tape variables, by reference and by value, with a
//! tensor or a constant on the right. They panic where the `try_` methods of
//! [`Array`] return an error, pointing at the caller's line.

use std::ops;

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
        scalar_operators!(@one [$($g)*] $ty, $elem, Add add add_scalar, |c: $elem| c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Sub sub add_scalar, |c: $elem| -c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Mul mul scale, |c: $elem| c);
        scalar_operators!(@one [$($g)*] $ty, $elem, Div div scale, |c: $elem| c.recip());
    };
    (@one [$($g:tt)*] $ty:ty, $elem:ty, $trait:ident $method:ident $with_scalar:ident, $constant:expr) => {
        impl<$($g)*> ops::$trait<$elem> for &$ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                Array::$with_scalar(self, ($constant)(rhs))
            }
        }
        impl<$($g)*> ops::$trait<$elem> for $ty {
            type Output = $ty;
            #[track_caller]
            fn $method(self, rhs: $elem) -> $ty {
                Array::$with_scalar(&self, ($constant)(rhs))
            }
        }
    };
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
