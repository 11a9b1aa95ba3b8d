//! Element-wise functions of one tensor. Values come from the scalar engine's rules
//! ([`crate::rules`]), so both engines compute the same numbers; derivatives are written in
//! tensor operations so they can be differentiated again.

use crate::error::Error;
use crate::rules;
use crate::scalar::UnaryOp;
use crate::tensor::{Array, Element, Op, Tensor};

macro_rules! elementwise {
    ($( $(#[$doc:meta])* $name:ident, $label:literal, |$x:ident| $value:expr, |$xa:ident, $y:ident, $ct:ident| $vjp:expr; )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Op for $name {
            fn name(&self) -> &'static str {
                $label
            }

            fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
                let [input] = inputs else {
                    return Err(Error::Arity { op: $label, expected: 1, found: inputs.len() });
                };
                Ok(input.map(|$x: T| $value))
            }

            #[allow(unused_variables)]
            fn vjp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                $ct: &A,
                _needed: &[bool],
            ) -> Result<Vec<Option<A>>, Error> {
                let $xa = inputs[0];
                Ok(vec![Some($vjp)])
            }
        }
    )*};
}

elementwise! {
    /// `-x`; VJP `-ct`.
    Neg, "neg", |x| -x, |x, y, ct| ct.neg();
    /// `exp(x)`; VJP `ct * exp(x)`.
    Exp, "exp", |x| rules::Exp.func(x), |x, y, ct| ct.try_mul(y)?;
    /// `ln(x)`; VJP `ct / x`.
    Ln, "ln", |x| rules::Ln.func(x), |x, y, ct| ct.try_div(x)?;
    /// `x^2`; VJP `2 x ct`.
    Square, "square", |x| x * x, |x, y, ct| ct.try_mul(x)?.scale(A::elem(2.0));
    /// `1 / (1 + exp(-x))`, stable for large `|x|`; VJP `ct * s(x) * s(-x)`.
    Sigmoid, "sigmoid", |x| rules::Sigmoid.func(x), |x, y, ct| ct.try_mul(&y.try_mul(&x.neg().sigmoid())?)?;
}
