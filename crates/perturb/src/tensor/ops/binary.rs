//! Arithmetic on two tensors with numpy broadcasting, and with a constant.

use crate::error::Error;
use crate::rules;
use crate::scalar::BinaryOp;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor};

use super::elem;

/// The cotangent `ct` of a broadcast result, summed back to `input`'s shape where it was
/// stretched.
pub(super) fn unbroadcast<A: Array>(ct: A, input: &A) -> Result<A, Error> {
    if ct.shape() == input.shape() {
        Ok(ct)
    } else {
        ct.try_sum_to(input.shape())
    }
}

macro_rules! broadcasting {
    ($( $(#[$doc:meta])* $name:ident, $label:literal, $cost:ident, |$a:ident, $b:ident| $value:expr,
        |$xa:ident, $xb:ident, $y:ident, $g:ident| ($da:expr, $db:expr); )*) => {$(
        $(#[$doc])*
        ///
        /// Its VJP agrees with central differences in both arguments:
        ///
        #[doc = concat!("```\nuse perturb::tensor::{ops::", stringify!($name), ", Op, Tensor};\n",
            "let f = |a: f64, b: f64| ", stringify!($name), ".eval(&[&Tensor::vector(&[a]), &Tensor::vector(&[b])]).unwrap().as_slice()[0];\n",
            "let (a, b) = (Tensor::vector(&[0.5_f64]), Tensor::vector(&[1.5]));\n",
            "let y = ", stringify!($name), ".eval(&[&a, &b]).unwrap();\n",
            "let ct = ", stringify!($name), ".vjp(&[&a, &b], &y, &Tensor::vector(&[1.0]), &[true, true]).unwrap();\n",
            "let (da, db) = (ct[0].as_ref().unwrap().as_slice()[0], ct[1].as_ref().unwrap().as_slice()[0]);\n",
            "assert!((da - (f(0.5 + 1e-6, 1.5) - f(0.5 - 1e-6, 1.5)) / 2e-6).abs() < 1e-6);\n",
            "assert!((db - (f(0.5, 1.5 + 1e-6) - f(0.5, 1.5 - 1e-6)) / 2e-6).abs() < 1e-6);\n```")]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;

        impl Op for $name {
            fn name(&self) -> &'static str {
                $label
            }

            const ELEMENTWISE: bool = true;

            fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
                super::binary_eval($label, inputs, kernels::Cost::$cost, |$a: T, $b: T| $value)
            }

            #[allow(unused_variables)]
            fn jvp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                tangents: &[Option<&A>],
            ) -> Result<Option<A>, Error> {
                let ($xa, $xb) = (inputs[0], inputs[1]);
                if let (Some(ta), Some(tb)) = (tangents[0], tangents[1]) {
                    if let Some(sum) = Self::both_tangents(ta, tb) {
                        return super::sum_tangents([Some(sum?)], $y.shape());
                    }
                }
                let da = match tangents[0] { Some($g) => Some($da), None => None };
                let db = match tangents[1] { Some($g) => Some($db), None => None };
                super::sum_tangents([da, db], $y.shape())
            }

            #[allow(unused_variables)]
            fn vjp<A: Array>(
                &self,
                inputs: &[&A],
                $y: &A,
                $g: &A,
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

/// The JVP of a linear combination with both tangents present, in one pass where the op has
/// one (`ta - tb`, rather than `tb` negated and then added); `None` to add the two terms.
trait BothTangents {
    fn both_tangents<A: Array>(_: &A, _: &A) -> Option<Result<A, Error>> {
        None
    }
}

impl BothTangents for Add {}
impl BothTangents for Mul {}
impl BothTangents for Div {}
impl BothTangents for Pow {}
impl BothTangents for Sub {
    fn both_tangents<A: Array>(ta: &A, tb: &A) -> Option<Result<A, Error>> {
        Some(ta.try_sub(tb))
    }
}

// Each rule gives its two terms as the products of `g` with the local partial derivatives. The
// VJP takes `g` = the output's cotangent and sums each term back to its input's shape; the JVP
// takes `g` = each input's tangent and adds the terms.
broadcasting! {
    /// `a + b`; terms `(g, g)`.
    Add, "add", Cheap, |a, b| a + b, |a, b, y, g| (g.clone(), g.clone());
    /// `a - b`; terms `(g, -g)`.
    Sub, "sub", Cheap, |a, b| a - b, |a, b, y, g| (g.clone(), g.neg());
    /// `a * b`; terms `(g b, g a)`.
    Mul, "mul", Cheap, |a, b| a * b, |a, b, y, g| (g.try_mul(b)?, g.try_mul(a)?);
    /// `a / b`; terms `(g / b, -g y / b)`.
    Div, "div", Cheap, |a, b| a / b, |a, b, y, g| (g.try_div(b)?, g.try_mul(y)?.try_div(b)?.neg());
    /// `a^b` (`a.powf(b)`, as [`rules::Powf`]); terms `(g b a^(b-1), g a^b ln a)`, with the
    /// scalar rule's conventions: the first is 0 where `b = 0`, the second 0 where `a <= 0`.
    Pow, "pow", Transcendental, |a, b| rules::Powf.func(a, b), |a, b, y, g| (
        g.try_mul(&pow_base_slope(a, b)?)?,
        g.try_mul(&pow_exponent_slope(a, y)?)?
    );
}

/// A 0-dimensional constant, broadcast against anything.
fn constant<A: Array>(c: f64) -> A {
    A::lift(Tensor::scalar(A::elem(c)))
}

/// `d a^b / da = b a^(b-1)`, and 0 where `b = 0`. The base is replaced by 1 where `b = 0`, so
/// the product is `0 * 1` there (not `0 * 0^-1 = NaN` at `a = 0`) and stays finite when
/// differentiated again.
fn pow_base_slope<A: Array>(a: &A, b: &A) -> Result<A, Error> {
    let nonzero = b.try_not_equal(&constant(0.0))?;
    let base = nonzero.try_select(a, &constant(1.0))?;
    b.try_mul(&base.try_pow(&b.add_scalar(A::elem(-1.0)))?)
}

/// `d a^b / db = a^b ln a` where `a > 0`, and 0 elsewhere (selected, not multiplied by a mask,
/// so an infinite `a^b` at `a = 0` gives 0 rather than NaN). `y` is `a^b`.
fn pow_exponent_slope<A: Array>(a: &A, y: &A) -> Result<A, Error> {
    let zero = constant::<A>(0.0);
    let positive = a.try_greater(&zero)?;
    let base = positive.try_select(a, &constant(1.0))?;
    positive.try_select(&y.try_mul(&base.ln())?, &zero)
}

/// `c x` for a constant `c` (kept as `f64`, exact for both element types); VJP `c ct`.
///
/// ```
/// use perturb::tensor::{ops::Scale, Op, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// assert_eq!(Scale(3.0).eval(&[&x]).unwrap().to_vec(), vec![3.0, 6.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scale(pub f64);

impl Op for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c: T = elem(self.0);
        Ok(super::unary("scale", inputs)?.map_with(kernels::Cost::Cheap, |x| c * x))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| A::apply(self, &[t])).transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(self, &[ct])?)])
    }
}

/// `x + c` for a constant `c`; VJP `ct`.
///
/// ```
/// use perturb::tensor::{ops::AddScalar, Op, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// assert_eq!(AddScalar(0.5).eval(&[&x]).unwrap().to_vec(), vec![1.5, 2.5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AddScalar(pub f64);

impl Op for AddScalar {
    fn name(&self) -> &'static str {
        "add_scalar"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c: T = elem(self.0);
        Ok(super::unary("add_scalar", inputs)?.map_with(kernels::Cost::Cheap, |x| x + c))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].cloned())
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.clone())])
    }
}

/// `c a b` for a constant `c`, with numpy broadcasting: a product and a scaling in one pass.
/// Terms `(c g b, c g a)`, themselves scaled products. It is what `square`'s rule `2 x g` is
/// written with, so that rule costs one pass over the elements rather than two.
///
/// ```
/// use perturb::tensor::{ops::ScaledMul, Op, Tensor};
/// let (a, b) = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[3.0, 4.0]));
/// assert_eq!(ScaledMul(2.0).eval(&[&a, &b]).unwrap().to_vec(), vec![6.0, 16.0]);
/// let ct = ScaledMul(2.0).vjp(&[&a, &b], &a, &Tensor::vector(&[1.0, 1.0]), &[true, true]).unwrap();
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![6.0, 8.0]);
/// assert_eq!(ct[1].as_ref().unwrap().to_vec(), vec![2.0, 4.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaledMul(pub f64);

impl ScaledMul {
    /// `c a b` in any array type.
    fn of<A: Array>(self, a: &A, b: &A) -> Result<A, Error> {
        A::apply(&self, &[a, b])
    }
}

impl Op for ScaledMul {
    fn name(&self) -> &'static str {
        "scaled_mul"
    }

    const ELEMENTWISE: bool = true;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c: T = elem(self.0);
        super::binary_eval("scaled_mul", inputs, kernels::Cost::Cheap, move |x, y| {
            c * (x * y)
        })
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let da = t[0].map(|t| self.of(t, x[1])).transpose()?;
        let db = t[1].map(|t| self.of(x[0], t)).transpose()?;
        super::sum_tangents([da, db], y.shape())
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        g: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let term = |i: usize| -> Result<Option<A>, Error> {
            needed[i]
                .then(|| unbroadcast(self.of(g, x[1 - i])?, x[i]))
                .transpose()
        };
        Ok(vec![term(0)?, term(1)?])
    }
}
