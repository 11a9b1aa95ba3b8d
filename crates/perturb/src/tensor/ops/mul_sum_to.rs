//! [`MulSumTo`]: a product summed down to a smaller shape, the reverse rule of a product whose
//! input was broadcast.

use crate::error::Error;
use crate::tensor::{kernels, Array, Cotangent, Element, Op, Tensor, VjpReads};

use super::binary::{product_onto, product_term, stretched_against};
use super::{elem, ScaledMul, SumTo};

/// `sum_to(c a b, to)` for a constant `c`: the product of `a` and `b` (numpy broadcasting)
/// summed down to the shape `to`, which it must broadcast to. Its value is one pass with no
/// buffer for the product where the layout allows (`a` and `b` of the product's shape or one
/// value; `to` one value, a row, or one value per trailing block), else the product and then
/// [`SumTo`].
///
/// It is the cotangent of a broadcast input of a product: `x * s` for a scalar `s` gives `s`
/// the term `sum(g x)`, by hand a dot product. Linear in each input: JVP `op(ta, b) +
/// op(a, tb)`; the VJP term of `a` is `c g b` (`g` stretched back over the summed axes) summed
/// to `a`'s shape, itself a product or one of these.
///
/// ```
/// use perturb::tensor::{ops::MulSumTo, Op, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![5.0_f64, 6.0, 7.0, 8.0], &[2, 2]).unwrap();
/// let dot = MulSumTo { c: 2.0, to: vec![] }.eval(&[&a, &b]).unwrap();
/// assert_eq!(dot.to_vec(), vec![2.0 * (5.0 + 12.0 + 21.0 + 32.0)]);
/// let columns = MulSumTo { c: 1.0, to: vec![2] }.eval(&[&a, &b]).unwrap();
/// assert_eq!(columns.to_vec(), vec![5.0 + 21.0, 12.0 + 32.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MulSumTo {
    /// The constant factor.
    pub c: f64,
    /// The shape the product is summed down to.
    pub to: Vec<usize>,
}

impl MulSumTo {
    /// The shape of the product, checked against `to`.
    fn product_shape(&self, a: &[usize], b: &[usize]) -> Result<Vec<usize>, Error> {
        let out = kernels::broadcast_shape("mul_sum_to", a, b)?;
        super::shape::check_broadcast("mul_sum_to", &self.to, &out)?;
        Ok(out)
    }
}

impl Op for MulSumTo {
    fn name(&self) -> &'static str {
        "mul_sum_to"
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: "mul_sum_to",
                expected: 2,
                found: inputs.len(),
            });
        };
        let out = self.product_shape(a.shape(), b.shape())?;
        let c: T = elem(self.c);
        match kernels::product_sum_to(c, a.as_slice(), b.as_slice(), &out, &self.to) {
            Some(data) => Ok(Tensor::from_parts(data, self.to.clone())),
            None => SumTo(self.to.clone()).eval(&[&ScaledMul(self.c).eval(&[a, b])?]),
        }
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [a, b] = inputs else { return None };
        self.product_shape(a, b).ok()?;
        Some(self.to.clone())
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let da = t[0].map(|ta| A::apply(self, &[ta, x[1]])).transpose()?;
        let db = t[1].map(|tb| A::apply(self, &[x[0], tb])).transpose()?;
        super::sum_tangents([da, db], y.shape())
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        g: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let out = self.product_shape(x[0].shape(), x[1].shape())?;
        (0..2)
            .map(|i| {
                if !needed[i] {
                    return Ok(None);
                }
                let other = x[1 - i];
                let g = stretched_against(g, other, &out)?;
                product_term(self.c, &g, other, x[i]).map(Some)
            })
            .collect()
    }

    /// The terms with the cotangent's factor taken into the constant, each added onto its
    /// input's gathered cotangent in the same pass where the shapes allow.
    fn vjp_onto<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &Cotangent<A>,
        needed: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        let out = self.product_shape(x[0].shape(), x[1].shape())?;
        let c = self.c * ct.factor;
        for i in 0..2 {
            if needed[i] {
                product_onto(&mut gathered[i], c, &ct.value, x[1 - i], x[i], &out)?;
            }
        }
        Ok(())
    }

    /// The stack of products ([`ScaledMul`]'s rule), then [`SumTo`]'s.
    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let product = ScaledMul(self.c).batch(x, stacked, size)?;
        SumTo(self.to.clone()).batch(&[&product], &[true], size)
    }
}
