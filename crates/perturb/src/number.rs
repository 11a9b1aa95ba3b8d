//! The num-traits boilerplate shared by every differentiable number type.
//!
//! A number type only says how to read its primal value, how to make a constant, and (in its
//! [`Scalar`](crate::Scalar) impl) how the chain rule runs for it. Everything else, `Float` with
//! its forty methods, the operators, `NumCast`, `FloatConst`, ..., is generated here and routes
//! every differentiable method through the rules in [`crate::rules`].

/// What the generated impls need from a differentiable number type.
pub(crate) trait AdNumber: Copy {
    /// The type of the value (itself possibly differentiable).
    type Primal: crate::Scalar;
    /// The value, without its derivative information.
    fn primal(self) -> Self::Primal;
    /// A constant: a number whose derivative is zero.
    fn lift(value: Self::Primal) -> Self;
}

macro_rules! forward_consts {
    ($($name:ident),*) => {$(
        #[inline]
        fn $name() -> Self { Self::lift(<Self as $crate::number::AdNumber>::Primal::$name()) }
    )*};
}

macro_rules! forward_unary {
    ($($method:ident => $rule:ident),*) => {$(
        #[inline(always)]
        #[track_caller]
        fn $method(self) -> Self {
            <Self as $crate::Scalar>::apply_unary(&$crate::rules::$rule, self)
        }
    )*};
}

macro_rules! forward_predicates {
    ($($method:ident),*) => {$(
        #[inline]
        fn $method(self) -> bool { self.primal().$method() }
    )*};
}

macro_rules! piecewise_constant {
    ($($method:ident),*) => {$(
        #[inline]
        fn $method(self) -> Self { Self::lift(self.primal().$method()) }
    )*};
}

macro_rules! binary_operator {
    ([$($g:tt)*] $ty:ty, $primal:ty; $trait:ident $method:ident $assign_trait:ident $assign_method:ident => $rule:ident) => {
        impl<$($g)*> std::ops::$trait for $ty {
            type Output = Self;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::$rule, self, rhs)
            }
        }
        impl<$($g)*> std::ops::$trait<$primal> for $ty {
            type Output = Self;
            #[inline(always)]
            #[track_caller]
            fn $method(self, rhs: $primal) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::$rule, self, Self::lift(rhs))
            }
        }
        impl<$($g)*> std::ops::$assign_trait for $ty {
            #[inline(always)]
            #[track_caller]
            fn $assign_method(&mut self, rhs: Self) {
                *self = <Self as $crate::Scalar>::apply_binary(&$crate::rules::$rule, *self, rhs);
            }
        }
        impl<$($g)*> std::ops::$assign_trait<$primal> for $ty {
            #[inline(always)]
            #[track_caller]
            fn $assign_method(&mut self, rhs: $primal) {
                *self = <Self as $crate::Scalar>::apply_binary(&$crate::rules::$rule, *self, Self::lift(rhs));
            }
        }
    };
}

/// Implements num-traits' `Float`, `Num`, `NumCast`, `FloatConst`, `FromPrimitive`, the
/// operators, comparisons, `Sum` and `Product` for a type implementing `AdNumber` and `Scalar`.
macro_rules! impl_ad_number {
    ([$($g:tt)*] $ty:ty, $primal:ty) => {
        $crate::number::binary_operator!([$($g)*] $ty, $primal; Add add AddAssign add_assign => Add);
        $crate::number::binary_operator!([$($g)*] $ty, $primal; Sub sub SubAssign sub_assign => Sub);
        $crate::number::binary_operator!([$($g)*] $ty, $primal; Mul mul MulAssign mul_assign => Mul);
        $crate::number::binary_operator!([$($g)*] $ty, $primal; Div div DivAssign div_assign => Div);
        $crate::number::binary_operator!([$($g)*] $ty, $primal; Rem rem RemAssign rem_assign => Rem);

        impl<$($g)*> std::ops::Neg for $ty {
            type Output = Self;
            #[inline(always)]
            #[track_caller]
            fn neg(self) -> Self {
                <Self as $crate::Scalar>::apply_unary(&$crate::rules::Neg, self)
            }
        }

        /// Compares the values only; derivatives do not take part.
        impl<$($g)*> PartialEq for $ty {
            #[inline]
            fn eq(&self, other: &Self) -> bool { self.primal() == other.primal() }
        }

        /// Orders by value only; derivatives do not take part.
        impl<$($g)*> PartialOrd for $ty {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                self.primal().partial_cmp(&other.primal())
            }
        }

        impl<$($g)*> Default for $ty {
            #[inline]
            fn default() -> Self { Self::lift(<$primal>::zero()) }
        }

        /// Adds from the first element (no extra node for a starting zero); an empty sum is
        /// `-0.0`, as for `f64`.
        impl<$($g)*> std::iter::Sum for $ty {
            fn sum<I: Iterator<Item = Self>>(mut iter: I) -> Self {
                match iter.next() {
                    Some(first) => iter.fold(first, |acc, x| acc + x),
                    None => Self::lift(<$primal>::neg_zero()),
                }
            }
        }

        /// Multiplies from the first element; an empty product is 1.
        impl<$($g)*> std::iter::Product for $ty {
            fn product<I: Iterator<Item = Self>>(mut iter: I) -> Self {
                match iter.next() {
                    Some(first) => iter.fold(first, |acc, x| acc * x),
                    None => Self::lift(<$primal>::one()),
                }
            }
        }

        impl<$($g)*> num_traits::Zero for $ty {
            #[inline]
            fn zero() -> Self { Self::lift(<$primal>::zero()) }
            #[inline]
            fn is_zero(&self) -> bool { self.primal().is_zero() }
        }

        impl<$($g)*> num_traits::One for $ty {
            #[inline]
            fn one() -> Self { Self::lift(<$primal>::one()) }
        }

        impl<$($g)*> num_traits::Num for $ty {
            type FromStrRadixErr = <$primal as num_traits::Num>::FromStrRadixErr;
            fn from_str_radix(s: &str, radix: u32) -> Result<Self, Self::FromStrRadixErr> {
                <$primal as num_traits::Num>::from_str_radix(s, radix).map(Self::lift)
            }
        }

        impl<$($g)*> num_traits::ToPrimitive for $ty {
            #[inline]
            fn to_i64(&self) -> Option<i64> { self.primal().to_i64() }
            #[inline]
            fn to_u64(&self) -> Option<u64> { self.primal().to_u64() }
            #[inline]
            fn to_f64(&self) -> Option<f64> { self.primal().to_f64() }
            #[inline]
            fn to_f32(&self) -> Option<f32> { self.primal().to_f32() }
        }

        impl<$($g)*> num_traits::NumCast for $ty {
            #[inline]
            fn from<P: num_traits::ToPrimitive>(n: P) -> Option<Self> {
                <$primal as num_traits::NumCast>::from(n).map(Self::lift)
            }
        }

        impl<$($g)*> num_traits::FromPrimitive for $ty {
            #[inline]
            fn from_i64(n: i64) -> Option<Self> { <$primal>::from_i64(n).map(Self::lift) }
            #[inline]
            fn from_u64(n: u64) -> Option<Self> { <$primal>::from_u64(n).map(Self::lift) }
            #[inline]
            fn from_f64(n: f64) -> Option<Self> { <$primal>::from_f64(n).map(Self::lift) }
            #[inline]
            fn from_f32(n: f32) -> Option<Self> { <$primal>::from_f32(n).map(Self::lift) }
        }

        impl<$($g)*> num_traits::FloatConst for $ty {
            $crate::number::forward_consts!(E, FRAC_1_PI, FRAC_1_SQRT_2, FRAC_2_PI, FRAC_2_SQRT_PI,
                FRAC_PI_2, FRAC_PI_3, FRAC_PI_4, FRAC_PI_6, FRAC_PI_8, LN_10, LN_2, LOG10_E,
                LOG2_E, PI, SQRT_2, TAU, LOG10_2, LOG2_10);
        }

        impl<$($g)*> num_traits::Float for $ty {
            $crate::number::forward_consts!(nan, infinity, neg_infinity, neg_zero, min_value,
                min_positive_value, epsilon, max_value);
            $crate::number::forward_predicates!(is_nan, is_infinite, is_finite, is_normal,
                is_subnormal, is_sign_positive, is_sign_negative);
            $crate::number::piecewise_constant!(floor, ceil, round, trunc, signum);
            $crate::number::forward_unary!(abs => Abs, recip => Recip, sqrt => Sqrt,
                cbrt => Cbrt, exp => Exp, exp2 => Exp2, exp_m1 => ExpM1, ln => Ln, log2 => Log2,
                log10 => Log10, ln_1p => Ln1p, sin => Sin, cos => Cos, tan => Tan, asin => Asin,
                acos => Acos, atan => Atan, sinh => Sinh, cosh => Cosh, tanh => Tanh,
                asinh => Asinh, acosh => Acosh, atanh => Atanh);

            #[inline]
            fn classify(self) -> std::num::FpCategory { self.primal().classify() }
            #[inline]
            fn integer_decode(self) -> (u64, i16, i8) { self.primal().integer_decode() }
            #[inline]
            #[track_caller]
            fn fract(self) -> Self { self - self.trunc() }
            #[inline]
            #[track_caller]
            fn mul_add(self, a: Self, b: Self) -> Self { self * a + b }
            #[inline]
            #[track_caller]
            fn powi(self, n: i32) -> Self {
                <Self as $crate::Scalar>::apply_unary(&$crate::rules::Powi(n), self)
            }
            #[inline]
            #[track_caller]
            fn powf(self, n: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Powf, self, n)
            }
            #[inline]
            #[track_caller]
            fn log(self, base: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Log, self, base)
            }
            #[inline]
            #[track_caller]
            fn max(self, other: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Max, self, other)
            }
            #[inline]
            #[track_caller]
            fn min(self, other: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Min, self, other)
            }
            #[inline]
            #[track_caller]
            fn abs_sub(self, other: Self) -> Self {
                if self <= other { Self::lift(<$primal>::zero()) } else { self - other }
            }
            #[inline]
            #[track_caller]
            fn hypot(self, other: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Hypot, self, other)
            }
            #[inline]
            #[track_caller]
            fn atan2(self, other: Self) -> Self {
                <Self as $crate::Scalar>::apply_binary(&$crate::rules::Atan2, self, other)
            }
            #[inline]
            #[track_caller]
            fn sin_cos(self) -> (Self, Self) { (self.sin(), self.cos()) }
            #[inline]
            #[track_caller]
            fn to_degrees(self) -> Self { self * <$primal>::from_f64(180.0 / std::f64::consts::PI).unwrap_or_else(<$primal>::nan) }
            #[inline]
            #[track_caller]
            fn to_radians(self) -> Self { self * <$primal>::from_f64(std::f64::consts::PI / 180.0).unwrap_or_else(<$primal>::nan) }
        }
    };
}

pub(crate) use {
    binary_operator, forward_consts, forward_predicates, forward_unary, impl_ad_number,
    piecewise_constant,
};
