//! Arithmetic on two tensors with numpy broadcasting, and with a constant.

use crate::error::Error;
use crate::rules;
use crate::scalar::BinaryOp;
use crate::tensor::fusion::{self, Operand};
use crate::tensor::kernels;
use crate::tensor::{Array, Cotangent, Element, Op, Tensor, VjpReads};

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
            const VJP_READS: VjpReads = <Self as Shortcuts>::READS;

            fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
                super::binary_eval($label, inputs, kernels::Cost::$cost, |$a: T, $b: T| $value)
            }

            fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
                fusion::zip_block(inputs, out, |$a: T, $b: T| $value)
            }

            fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
                super::broadcast_output(2, inputs)
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
                    if let Some(sum) = Self::both_tangents(inputs, ta, tb) {
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

            fn vjp_onto<A: Array>(
                &self,
                inputs: &[&A],
                y: &A,
                ct: &Cotangent<A>,
                needed: &[bool],
                gathered: &mut [Option<Cotangent<A>>],
            ) -> Result<(), Error> {
                match Self::factored_onto(inputs, y, ct, needed, gathered) {
                    Some(done) => done,
                    None => super::vjp_then_gather(self, inputs, y, ct, needed, gathered),
                }
            }
        }
    )*};
}

/// Where an operation does better than its general rule: the JVP with both tangents present
/// in fewer passes (`ta - tb` rather than `tb` negated and then added; `ta b + a tb` as a
/// product added onto a product), and a backward step that takes the cotangent's pending factor
/// into a constant it has anyway and adds its terms onto what was gathered (`None`: the general
/// rule).
trait Shortcuts {
    const READS: VjpReads = VjpReads::ALL;

    fn both_tangents<A: Array>(_: &[&A], _: &A, _: &A) -> Option<Result<A, Error>> {
        None
    }

    fn factored_onto<A: Array>(
        _: &[&A],
        _: &A,
        _: &Cotangent<A>,
        _: &[bool],
        _: &mut [Option<Cotangent<A>>],
    ) -> Option<Result<(), Error>> {
        None
    }
}

impl Shortcuts for Add {
    const READS: VjpReads = VjpReads::NOTHING;

    /// `(g, g)`: passed on, factor and all.
    fn factored_onto<A: Array>(
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Option<Result<(), Error>> {
        Some(signed_onto(x, y, ct, needed, gathered, [1.0, 1.0]))
    }
}
impl Shortcuts for Div {}
impl Shortcuts for Pow {}
impl Shortcuts for Sub {
    const READS: VjpReads = VjpReads::NOTHING;

    fn both_tangents<A: Array>(_: &[&A], ta: &A, tb: &A) -> Option<Result<A, Error>> {
        Some(ta.try_sub(tb))
    }

    /// `(g, -g)`: the negation is a change of factor.
    fn factored_onto<A: Array>(
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Option<Result<(), Error>> {
        Some(signed_onto(x, y, ct, needed, gathered, [1.0, -1.0]))
    }
}
impl Shortcuts for Mul {
    const READS: VjpReads = VjpReads::OTHER_INPUTS;

    /// `ta b + a tb` in two passes (a product, then a product added onto it).
    fn both_tangents<A: Array>(x: &[&A], ta: &A, tb: &A) -> Option<Result<A, Error>> {
        Some(ScaledMul(1.0).jvp_of_both(x, ta, tb))
    }

    /// `(f g b, f g a)`, each added onto its input's gathered cotangent in the same pass.
    fn factored_onto<A: Array>(
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Option<Result<(), Error>> {
        Some(ScaledMul(ct.factor).terms_onto(x, y, &ct.value, needed, gathered))
    }
}

/// The terms `sign_i g` of a sum or difference, passed on without a pass over the elements
/// (the sign goes into the factor) except where an input was broadcast.
fn signed_onto<A: Array>(
    x: &[&A],
    y: &A,
    ct: &Cotangent<A>,
    needed: &[bool],
    gathered: &mut [Option<Cotangent<A>>],
    signs: [f64; 2],
) -> Result<(), Error> {
    for (i, sign) in signs.into_iter().enumerate() {
        if needed[i] {
            let value = super::to_input(&ct.value, y.shape(), x[i])?;
            Cotangent::accumulate(&mut gathered[i], Cotangent::scaled(value, sign * ct.factor))?;
        }
    }
    Ok(())
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

/// `d a^b / da = b a^(b-1)`, which is 0 where `b = 0`; at `a = b = 0` a constant 0 (the
/// scalar rule's convention, rather than `0 * 0^-1 = NaN`). Where `b = 0` but `a != 0` the
/// product `b a^(b-1)` itself is kept: its derivative in `b` there is the mixed second
/// derivative `a^(b-1) (1 + b ln a) = 1 / a` (a base replaced by 1 wherever `b = 0` made it 1,
/// and the Hessian of `a^b` at `(2, 0)` not symmetric). At `a = b = 0` the base is replaced by
/// 1 inside the branch not taken, so that no infinity reaches its derivatives.
fn pow_base_slope<A: Array>(a: &A, b: &A) -> Result<A, Error> {
    let zero = constant::<A>(0.0);
    let origin = a.try_equal(&zero)?.try_mul(&b.try_equal(&zero)?)?;
    let base = origin.try_select(&constant(1.0), a)?;
    let slope = b.try_mul(&base.try_pow(&b.add_scalar(A::elem(-1.0)))?)?;
    origin.try_select(&zero, &slope)
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

impl Scale {
    /// The value of one element: the one closure behind `eval` and `eval_block`.
    fn value<T: Element>(self) -> impl Fn(T) -> T + Sync + Send {
        let c: T = elem(self.0);
        move |x| c * x
    }
}

impl Op for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }

    const ELEMENTWISE: bool = true;
    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(super::unary("scale", inputs)?.map_with(kernels::Cost::Cheap, self.value()))
    }

    fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
        fusion::map_block(inputs, out, self.value())
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        super::broadcast_output(1, inputs)
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| A::apply(self, &[t])).transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(self, &[ct])?)])
    }

    /// `c g` as a change of the cotangent's factor: no pass over the elements.
    fn vjp_onto<A: Array>(
        &self,
        _: &[&A],
        _: &A,
        ct: &Cotangent<A>,
        _: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        let term = Cotangent::scaled(ct.value.clone(), self.0 * ct.factor);
        super::gather(gathered, [Some(term)])
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

impl AddScalar {
    /// The value of one element: the one closure behind `eval` and `eval_block`.
    fn value<T: Element>(self) -> impl Fn(T) -> T + Sync + Send {
        let c: T = elem(self.0);
        move |x| x + c
    }
}

impl Op for AddScalar {
    fn name(&self) -> &'static str {
        "add_scalar"
    }

    const ELEMENTWISE: bool = true;
    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        Ok(super::unary("add_scalar", inputs)?.map_with(kernels::Cost::Cheap, self.value()))
    }

    fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
        fusion::map_block(inputs, out, self.value())
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        super::broadcast_output(1, inputs)
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(t[0].cloned())
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.clone())])
    }

    /// The cotangent passed on as it is (factor, and smaller shape if it has one).
    fn vjp_onto<A: Array>(
        &self,
        _: &[&A],
        _: &A,
        ct: &Cotangent<A>,
        _: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        Cotangent::accumulate(&mut gathered[0], ct.clone())
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

    /// The value of one element: the one closure behind `eval` and `eval_block`.
    fn value<T: Element>(self) -> impl Fn(T, T) -> T + Sync + Send {
        let c: T = elem(self.0);
        move |x, y| c * (x * y)
    }
}

impl Op for ScaledMul {
    fn name(&self) -> &'static str {
        "scaled_mul"
    }

    const ELEMENTWISE: bool = true;
    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        super::binary_eval("scaled_mul", inputs, kernels::Cost::Cheap, self.value())
    }

    fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
        fusion::zip_block(inputs, out, self.value())
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        super::broadcast_output(2, inputs)
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let tangent = match (t[0], t[1]) {
            (Some(ta), Some(tb)) => self.jvp_of_both(x, ta, tb)?,
            (Some(ta), None) => self.of(ta, x[1])?,
            (None, Some(tb)) => self.of(x[0], tb)?,
            (None, None) => return Ok(None),
        };
        super::sum_tangents([Some(tangent)], y.shape())
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        g: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let term = |i: usize| {
            needed[i]
                .then(|| product_term(self.0, g, x[1 - i], x[i]))
                .transpose()
        };
        Ok(vec![term(0)?, term(1)?])
    }

    /// The terms with the cotangent's factor taken into the constant, `(c f g b, c f g a)`, each
    /// added onto its input's gathered cotangent in the same pass.
    fn vjp_onto<A: Array>(
        &self,
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        ScaledMul(self.0 * ct.factor).terms_onto(x, y, &ct.value, needed, gathered)
    }
}

impl ScaledMul {
    /// `c (ta b + a tb)`: a product, then a product added onto it.
    fn jvp_of_both<A: Array>(self, x: &[&A], ta: &A, tb: &A) -> Result<A, Error> {
        MulAdd(self.0).of(&self.of(ta, x[1])?, x[0], tb)
    }

    /// The terms `c g b` and `c g a` added onto the cotangents gathered for `a` and `b`; `y`
    /// is the product.
    fn terms_onto<A: Array>(
        self,
        x: &[&A],
        y: &A,
        g: &A,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        for i in 0..2 {
            if needed[i] {
                product_onto(&mut gathered[i], self.0, g, x[1 - i], x[i], y.shape())?;
            }
        }
        Ok(())
    }
}

/// Adds the cotangent term `c g other` of `input` onto its slot: in the same pass as the
/// product ([`MulAdd`]) where the slot already holds a sum of `input`'s shape, else as a term
/// of its own (summed back over broadcast axes). `g` is the cotangent of a product of shape
/// `out`, possibly kept smaller ([`Cotangent`]); it is broadcast by the product itself where
/// that gives `out`, else stretched first.
pub(super) fn product_onto<A: Array>(
    slot: &mut Option<Cotangent<A>>,
    c: f64,
    g: &A,
    other: &A,
    input: &A,
    out: &[usize],
) -> Result<(), Error> {
    let g = &stretched_against(g, other, out)?;
    if let Some(sum) = slot.take() {
        // A window waiting to be placed (a narrow's cotangent) is placed first.
        let sum = sum.settled()?;
        let fits = sum.factor.is_normal()
            && sum.value.shape() == input.shape()
            && kernels::broadcast_shape("mul_add", g.shape(), other.shape())
                .is_ok_and(|s| s == input.shape());
        if fits {
            // f s + c g o = f (s + (c / f) g o): the sum keeps its factor.
            let value = MulAdd(c / sum.factor).of(&sum.value, g, other)?;
            *slot = Some(Cotangent::scaled(value, sum.factor));
            return Ok(());
        }
        *slot = Some(sum);
    }
    Cotangent::accumulate(slot, Cotangent::new(product_term(c, g, other, input)?))
}

/// `g`, the cotangent of a product of shape `out` possibly kept smaller, as it is where the
/// product with `other` broadcasts it to `out` anyway, else stretched to `out` first.
pub(super) fn stretched_against<A: Array>(g: &A, other: &A, out: &[usize]) -> Result<A, Error> {
    if g.shape() == out
        || kernels::broadcast_shape("mul", g.shape(), other.shape()).is_ok_and(|s| s == out)
    {
        Ok(g.clone())
    } else {
        g.try_broadcast_to(out)
    }
}

/// The cotangent term `c g other` of `input` in a product, summed back to `input`'s shape
/// (in the same pass as the product, [`MulSumTo`](super::MulSumTo), where it was broadcast).
/// `g` and `other` broadcast to the product's shape.
pub(super) fn product_term<A: Array>(c: f64, g: &A, other: &A, input: &A) -> Result<A, Error> {
    let out = kernels::broadcast_shape("mul", g.shape(), other.shape())?;
    if out == input.shape() {
        return ScaledMul(c).of(g, other);
    }
    let to = input.shape().to_vec();
    A::apply(&super::MulSumTo { c, to }, &[g, other])
}

/// `d + c a b` for a constant `c`, with numpy broadcasting: a scaled product added onto a
/// tensor, in one pass where the three have one shape. Terms `(g, c g b, c g a)`. The backward
/// sweep adds a product's cotangent term onto what it has gathered with it, and the JVP of a
/// product with both tangents is a product and one of these, not two products and a sum.
///
/// ```
/// use perturb::tensor::{ops::MulAdd, Op, Tensor};
/// let (d, a, b) = (Tensor::vector(&[1.0_f64, 1.0]), Tensor::vector(&[2.0, 3.0]), Tensor::vector(&[4.0, 5.0]));
/// assert_eq!(MulAdd(0.5).eval(&[&d, &a, &b]).unwrap().to_vec(), vec![5.0, 8.5]);
/// let ct = MulAdd(0.5).vjp(&[&d, &a, &b], &d, &Tensor::vector(&[1.0, 2.0]), &[true, true, true]).unwrap();
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![1.0, 2.0]);
/// assert_eq!(ct[1].as_ref().unwrap().to_vec(), vec![2.0, 5.0]);
/// assert_eq!(ct[2].as_ref().unwrap().to_vec(), vec![1.0, 3.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MulAdd(pub f64);

impl MulAdd {
    /// `d + c a b` in any array type.
    fn of<A: Array>(self, d: &A, a: &A, b: &A) -> Result<A, Error> {
        A::apply(&self, &[d, a, b])
    }

    /// The value of one element: the one closure behind `eval` (where the three have one
    /// shape; broadcast, `eval` computes the same `s + (c (x y))` in two passes) and
    /// `eval_block`.
    fn value<T: Element>(self) -> impl Fn(T, T, T) -> T + Sync + Send {
        let c: T = elem(self.0);
        move |s, x, y| s + c * (x * y)
    }
}

impl Op for MulAdd {
    fn name(&self) -> &'static str {
        "mul_add"
    }

    const ELEMENTWISE: bool = true;
    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [d, a, b] = inputs else {
            return Err(Error::Arity {
                op: "mul_add",
                expected: 3,
                found: inputs.len(),
            });
        };
        if d.shape() == a.shape() && a.shape() == b.shape() {
            let data = kernels::zip3(d.as_slice(), a.as_slice(), b.as_slice(), self.value());
            return Ok(Tensor::from_parts(data, d.shape().to_vec()));
        }
        // Shape errors name this operation, not the two it falls back to.
        let ab = kernels::broadcast_shape("mul_add", a.shape(), b.shape())?;
        kernels::broadcast_shape("mul_add", d.shape(), &ab)?;
        let product = ScaledMul(self.0).eval(&[a, b])?;
        super::binary_eval("mul_add", &[d, &product], kernels::Cost::Cheap, |s, p| {
            s + p
        })
    }

    fn eval_block<T: Element>(&self, inputs: &[Operand<'_, T>], out: &mut [T]) -> bool {
        fusion::zip3_block(inputs, out, self.value())
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        super::broadcast_output(3, inputs)
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        // td + c ta b + c a tb, each product added onto the sum so far.
        let mut sum = t[0].cloned();
        for (tangent, other) in [(t[1], x[2]), (t[2], x[1])] {
            let Some(tangent) = tangent else { continue };
            sum = Some(match sum {
                Some(s) => self.of(&s, tangent, other)?,
                None => ScaledMul(self.0).of(tangent, other)?,
            });
        }
        super::sum_tangents([sum], y.shape())
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        g: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let product = |i: usize| {
            needed[i]
                .then(|| product_term(self.0, g, x[3 - i], x[i]))
                .transpose()
        };
        let dd = needed[0]
            .then(|| unbroadcast(g.clone(), x[0]))
            .transpose()?;
        Ok(vec![dd, product(1)?, product(2)?])
    }

    /// `g` passed on to `d` with its factor; the two products added onto what was gathered.
    fn vjp_onto<A: Array>(
        &self,
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        if needed[0] {
            let value = super::to_input(&ct.value, y.shape(), x[0])?;
            Cotangent::accumulate(&mut gathered[0], Cotangent::scaled(value, ct.factor))?;
        }
        let c = self.0 * ct.factor;
        for i in 1..3 {
            if needed[i] {
                product_onto(&mut gathered[i], c, &ct.value, x[3 - i], x[i], y.shape())?;
            }
        }
        Ok(())
    }
}
