//! The cumulative sum along an axis.

use crate::error::Error;
use crate::tensor::kernels::{narrow, wide};
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

use super::reduce::{check_axis, split_at_axis};
use super::unary;

/// The cumulative sum along `axis`: `y[.., k, ..] = x[.., 0, ..] + ... + x[.., k, ..]`, or with
/// `reverse` from the other end, `y[.., k, ..] = x[.., k, ..] + ... + x[.., n - 1, ..]`.
/// Linear, so its JVP is the cumulative sum of the tangent; its VJP is the transpose, a lower
/// triangular matrix of ones turned upper: the cotangent summed from the other end.
///
/// ```
/// use perturb::tensor::{ops::CumSum, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// let y = CumSum { axis: 1, reverse: false }.eval(&[&x]).unwrap();
/// assert_eq!(y.to_vec(), vec![1.0, 3.0, 6.0, 4.0, 9.0, 15.0]);
/// let ct = CumSum { axis: 1, reverse: false }
///     .vjp(&[&x], &y, &Tensor::ones(&[2, 3]), &[true])
///     .unwrap();
/// // x[.., 0] reaches all three outputs, x[.., 2] only the last.
/// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![3.0, 2.0, 1.0, 3.0, 2.0, 1.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CumSum {
    /// The axis summed along.
    pub axis: usize,
    /// Whether the sums run from the last entry back to the first.
    pub reverse: bool,
}

impl Op for CumSum {
    fn name(&self) -> &'static str {
        "cumsum"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        match inputs {
            [x] if self.axis < x.len() => Some(x.to_vec()),
            _ => None,
        }
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let shifted = CumSum {
            axis: self.axis + 1,
            ..*self
        };
        A::apply(&shifted, x)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        check_axis(self.name(), self.axis, x.shape())?;
        let (outer, n, inner) = split_at_axis(x.shape(), self.axis);
        let mut data = x.to_vec();
        // The running sums of the `inner` runs, in f64 (see [`wide`]): an f32 running sum
        // drops every term below half an ulp of the sum so far.
        let mut running = vec![0.0_f64; inner];
        for block in data.chunks_exact_mut((n * inner).max(1)).take(outer) {
            for step in 0..n {
                // Each run along the axis is `inner` apart.
                let k = if self.reverse { n - 1 - step } else { step };
                for (i, sum) in running.iter_mut().enumerate() {
                    let v = &mut block[k * inner + i];
                    // The first term as it is (-0.0 stays -0.0), then added on.
                    *sum = if step == 0 { wide(*v) } else { *sum + wide(*v) };
                    *v = narrow(*sum);
                }
            }
        }
        Ok(Tensor::from_parts(data, x.shape().to_vec()))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let transpose = CumSum {
            reverse: !self.reverse,
            ..*self
        };
        Ok(vec![Some(A::apply(&transpose, &[ct])?)])
    }
}
