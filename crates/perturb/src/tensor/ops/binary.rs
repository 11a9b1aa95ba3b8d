//! Arithmetic on two tensors with numpy broadcasting, and with a constant.

use crate::error::Error;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

use super::elem;

/// The cotangent `ct` of a broadcast result, summed back to `input`'s shape where it was
/// stretched.
fn unbroadcast<A: Array>(ct: A, input: &A) -> Result<A, Error> {
    if ct.shape() == input.shape() {
        Ok(ct)
    } else {
        ct.try_sum_to(input.shape())
    }
}

macro_rules! broadcasting {
    ($( $(#[$doc:meta])* $name:ident, $label:literal, |$a:ident, $b:ident| $value:expr,
        |$xa:ident, $xb:ident, $y:ident, $ct:ident| ($da:expr, $db:expr); )*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Op for $name {
            fn name(&self) -> &'static str {
                $label
            }

            fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
                let [x, z] = inputs else {
                    return Err(Error::Arity { op: $label, expected: 2, found: inputs.len() });
                };
                let (data, shape) = kernels::broadcast_zip(
                    $label, x.as_slice(), x.shape(), z.as_slice(), z.shape(), |$a: T, $b: T| $value,
                )?;
                Ok(Tensor::from_parts(data, shape))
            }

            #[allow(unused_variables)]
            fn vjp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                $ct: &A,
                needed: &[bool],
            ) -> Result<Vec<Option<A>>, Error> {
                let ($xa, $xb) = (inputs[0], inputs[1]);
                let da = if needed[0] { Some(unbroadcast($da, $xa)?) } else { None };
                let db = if needed[1] { Some(unbroadcast($db, $xb)?) } else { None };
                Ok(vec![da, db])
            }
        }
    )*};
}

broadcasting! {
    /// `a + b`; VJP `(ct, ct)`, each summed back to its input's shape.
    Add, "add", |a, b| a + b, |a, b, y, ct| (ct.clone(), ct.clone());
    /// `a - b`; VJP `(ct, -ct)`.
    Sub, "sub", |a, b| a - b, |a, b, y, ct| (ct.clone(), ct.neg());
    /// `a * b`; VJP `(ct b, ct a)`.
    Mul, "mul", |a, b| a * b, |a, b, y, ct| (ct.try_mul(b)?, ct.try_mul(a)?);
    /// `a / b`; VJP `(ct / b, -ct y / b)`.
    Div, "div", |a, b| a / b, |a, b, y, ct| (ct.try_div(b)?, ct.try_mul(y)?.try_div(b)?.neg());
}

/// `c x` for a constant `c` (kept as `f64`, exact for both element types); VJP `c ct`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale(pub f64);

impl Op for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c: T = elem(self.0);
        Ok(inputs[0].map(|x| c * x))
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(self, &[ct])?)])
    }
}

/// `x + c` for a constant `c`; VJP `ct`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddScalar(pub f64);

impl Op for AddScalar {
    fn name(&self) -> &'static str {
        "add_scalar"
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c: T = elem(self.0);
        Ok(inputs[0].map(|x| x + c))
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.clone())])
    }
}
