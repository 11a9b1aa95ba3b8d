//! Average pooling: [`AvgPool2d`] and its VJP, the spread of each cotangent over its window.

use std::ops::Range;

use super::{fold_stack, geometry, geometry_back, per_plane, pooled_shape, Geometry, Pool2d};
use crate::error::Error;
use crate::tensor::ops::{elem, linear_jvp, unary};
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

/// The mean of each window (`torch.nn.functional.avg_pool2d`). With `count_include_pad`
/// (PyTorch's default, and [`avg_pool2d`](super::avg_pool2d)'s) every window is divided by `kh * kw`, the padding
/// counting as zeros; without it, by the number of input elements the window covers.
/// Linear: JVP avg pool of the tangent; VJP each cotangent spread evenly over its window (an
/// operation whose own VJP is avg pool again).
///
/// ```
/// use perturb::tensor::conv::Pool2d;
/// use perturb::tensor::{ops::AvgPool2d, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[1, 2, 2]).unwrap();
/// let pool = Pool2d::new([2, 2]).stride([1, 1]).padding([1, 1]);
/// // The corner window covers one element: 1 / 4 with the padding counted, 1 / 1 without.
/// let with = AvgPool2d { pool, count_include_pad: true }.eval(&[&x]).unwrap();
/// let without = AvgPool2d { pool, count_include_pad: false }.eval(&[&x]).unwrap();
/// assert_eq!((with.to_vec()[0], without.to_vec()[0]), (0.25, 1.0));
/// assert_eq!(with.to_vec()[4], 2.5); // the middle window covers all four
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// The window.
    pub pool: Pool2d,
    /// Divide by the whole window, padding included (PyTorch's default), rather than by the
    /// input elements it covers.
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// What each window is divided by (in `f64`: the kernel's area can pass `usize::MAX`).
    fn divisor(&self, rows: &Range<usize>, cols: &Range<usize>) -> f64 {
        if self.count_include_pad {
            self.pool.kernel[0] as f64 * self.pool.kernel[1] as f64
        } else {
            (rows.len() * cols.len()) as f64
        }
    }
}

impl Op for AvgPool2d {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        fold_stack(self, x, stacked, size)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        pooled_shape(self.name(), &self.pool, inputs)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let g = geometry(self.name(), &self.pool, x.shape())?;
        let data = g.per_window(&self.pool, |p, rows, cols| {
            let plane = g.plane(x.as_slice(), p);
            let window = || {
                rows.clone()
                    .flat_map(|i| &plane[i * g.w + cols.start..i * g.w + cols.end])
            };
            let divisor = elem::<T>(self.divisor(rows, cols));
            let sum = window().fold(T::zero(), |sum, &v| sum + v);
            if sum.is_finite() {
                sum / divisor
            } else {
                // The sum overflowed (or an element is not finite): each element divided
                // first, so that a mean that fits is not lost to the sum's overflow.
                window().fold(T::zero(), |sum, &v| sum + v / divisor)
            }
        });
        Ok(Tensor::from_parts(data, g.out_shape))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let shape = x[0].shape();
        let spread = AvgPool2dSpread {
            avg: *self,
            hw: [shape[shape.len() - 2], shape[shape.len() - 1]],
        };
        Ok(vec![Some(A::apply(&spread, &[ct])?)])
    }
}

/// Avg pool's VJP (its transpose): a cotangent of the pooled shape `[.., OH, OW]` to zeros of
/// the input's `[.., H, W]` with each element divided by its window's divisor and added over
/// the window. Linear; VJP: the [`AvgPool2d`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AvgPool2dSpread {
    avg: AvgPool2d,
    /// The input's spatial size.
    hw: [usize; 2],
}

impl AvgPool2dSpread {
    fn geometry(&self, shape: &[usize]) -> Result<Geometry, Error> {
        geometry_back(self.name(), &self.avg.pool, self.hw, shape)
    }
}

impl Op for AvgPool2dSpread {
    fn name(&self) -> &'static str {
        "avg_pool2d_spread"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        fold_stack(self, x, stacked, size)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [c] = inputs else { return None };
        self.geometry(c).ok().map(|g| g.in_shape())
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let c = unary(self.name(), inputs)?;
        let g = self.geometry(c.shape())?;
        let cs = c.as_slice();
        let data = per_plane(g.planes, g.in_plane(), g.work(&self.avg.pool), |p, out| {
            let ct = &cs[p * g.out_plane()..(p + 1) * g.out_plane()];
            for ((rows, cols), &c) in g.windows().zip(ct) {
                let share = c / elem::<T>(self.avg.divisor(&rows, &cols));
                for i in rows.clone() {
                    for v in &mut out[i * g.w + cols.start..i * g.w + cols.end] {
                        *v += share;
                    }
                }
            }
        });
        Ok(Tensor::from_parts(data, g.in_shape()))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(&self.avg, &[ct])?)])
    }
}
