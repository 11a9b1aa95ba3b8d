//! [`SoftmaxJvp`]: softmax's derivative rule `y (t - sum(y t))` as one operation, two passes
//! over memory where the composition of products, a sum and a difference takes four.

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::buffers;
use crate::tensor::dense::element_count;
use crate::tensor::kernels;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

use super::reduce::check_axes;

/// `y (t - sum(y t, axes))`, the sum kept over the `axes` so that it broadcasts, with numpy
/// broadcasting between `y` and `t`: the JVP of softmax over `axes` with output `y` along the
/// tangent `t`, and its VJP with `t` the cotangent (the Jacobian `diag(y) - y y^T` is
/// symmetric). Softmax's rules apply it so that a stack of tangents (forward mode's Jacobian,
/// where `y` is one vector and `t` a matrix) costs one weighted sum of `t`'s rows and one pass
/// that writes the result, as written by hand.
///
/// Linear in `t`, so its JVP along `t` is the operation itself; its rules are written with
/// array operations, so softmax has derivatives of every order. The axes are axes of the
/// broadcast shape; they must be in range and not repeated.
///
/// ```
/// use perturb::tensor::{ops::SoftmaxJvp, Op, Tensor};
/// let y = Tensor::vector(&[0.25_f64, 0.75]);
/// let t = Tensor::vector(&[1.0, 0.0]);
/// // sum(y t) = 0.25: [0.25 (1 - 0.25), 0.75 (0 - 0.25)].
/// let jvp = SoftmaxJvp { axes: vec![0] }.eval(&[&y, &t]).unwrap();
/// assert_eq!(jvp.to_vec(), vec![0.1875, -0.1875]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftmaxJvp {
    /// The axes of the softmax (of the broadcast shape).
    pub axes: Vec<usize>,
}

const NAME: &str = "softmax_jvp";

impl SoftmaxJvp {
    /// The broadcast shape of `y` and `t`, with the axes checked against it.
    fn shape(&self, y: &[usize], t: &[usize]) -> Result<(Vec<usize>, Vec<bool>), Error> {
        let out = kernels::broadcast_shape(NAME, y, t)?;
        let reduced = check_axes(NAME, &self.axes, &out)?;
        Ok((out, reduced))
    }

    /// The value by the composition of array operations, for the layouts the fused kernel does
    /// not take (reduced axes not next to each other).
    fn composed<A: Array>(&self, y: &A, t: &A) -> Result<A, Error> {
        let dot = y.try_mul(t)?.try_sum_axes(&self.axes, true)?;
        y.try_mul(&t.try_sub(&dot)?)
    }
}

impl Op for SoftmaxJvp {
    fn name(&self) -> &'static str {
        NAME
    }

    const VJP_READS: VjpReads = VjpReads::INPUTS;

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [y, t] = inputs else {
            return Err(Error::Arity {
                op: NAME,
                expected: 2,
                found: inputs.len(),
            });
        };
        let (out, reduced) = self.shape(y.shape(), t.shape())?;
        let total = element_count(NAME, &out)?;
        let Some(view) = View::of(&out, &reduced, y.shape()) else {
            return self.composed(*y, *t);
        };
        if total == 0 {
            return Ok(Tensor::from_parts(Vec::new(), out));
        }
        // `t` at full size (a copy only where it was broadcast: a tangent rarely is).
        let full_t;
        let t_data = if t.shape() == out.as_slice() {
            t.as_slice()
        } else {
            full_t = kernels::broadcast_to(t.as_slice(), t.shape(), &out);
            &full_t
        };
        Ok(Tensor::from_parts(view.run(y.as_slice(), t_data), out))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [y, t] = inputs else { return None };
        self.shape(y, t).ok().map(|(out, _)| out)
    }

    /// `op(y, dt) + dy (t - sum(y t)) - y sum(dy t)`.
    fn jvp<A: Array>(
        &self,
        x: &[&A],
        out: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (y, t) = (x[0], x[1]);
        let along_t = tangents[1].map(|dt| A::apply(self, &[y, dt])).transpose()?;
        let along_y = tangents[0]
            .map(|dy| {
                let sum_yt = y.try_mul(t)?.try_sum_axes(&self.axes, true)?;
                let sum_dyt = dy.try_mul(t)?.try_sum_axes(&self.axes, true)?;
                dy.try_mul(&t.try_sub(&sum_yt)?)?
                    .try_sub(&y.try_mul(&sum_dyt)?)
            })
            .transpose()?;
        super::sum_tangents([along_t, along_y], out.shape())
    }

    /// For `t`: `op(y, g)` (symmetric in `t`); for `y`: `g (t - sum(y t)) - t sum(g y)`; each
    /// summed down to its input's shape.
    fn vjp<A: Array>(
        &self,
        x: &[&A],
        out: &A,
        g: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (y, t) = (x[0], x[1]);
        let for_y = if needed[0] {
            let sum_yt = y.try_mul(t)?.try_sum_axes(&self.axes, true)?;
            let sum_gy = g.try_mul(y)?.try_sum_axes(&self.axes, true)?;
            let term = g
                .try_mul(&t.try_sub(&sum_yt)?)?
                .try_sub(&t.try_mul(&sum_gy)?)?;
            Some(super::to_input(&term, out.shape(), y)?)
        } else {
            None
        };
        let for_t = if needed[1] {
            Some(super::to_input(&A::apply(self, &[y, g])?, out.shape(), t)?)
        } else {
            None
        };
        Ok(vec![for_y, for_t])
    }

    /// Stacks along the leading axis: each stacked input given axes of length 1 up to the
    /// members' rank (as an element-wise operation), the axes moved past the stack's.
    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], _: usize) -> Result<A, Error> {
        let rank = member_rank(x, stacked);
        let aligned = x
            .iter()
            .zip(stacked)
            .map(|(x, &s)| {
                if s {
                    batched::to_rank(*x, rank)
                } else {
                    Ok((*x).clone())
                }
            })
            .collect::<Result<Vec<A>, Error>>()?;
        let op = SoftmaxJvp {
            axes: batched::shift_axes(&self.axes),
        };
        A::apply(&op, &[&aligned[0], &aligned[1]])
    }

    /// Stacks along the last axis: the operation unchanged (a single value gets an axis of
    /// length 1 at its end), as long as the axes are the members' own.
    fn batch_trailing<A: Array>(
        &self,
        x: &[&A],
        trailing: &[bool],
        _: usize,
    ) -> Option<Result<A, Error>> {
        let rank = member_rank(x, trailing);
        self.axes
            .iter()
            .all(|&a| a < rank)
            .then(|| batched::elementwise_trailing(self, x, trailing))
    }
}

/// The rank of the members' broadcast shape: the largest rank of an input, less the stack's
/// axis for a stacked one.
fn member_rank<A: Array>(x: &[&A], stacked: &[bool]) -> usize {
    x.iter()
        .zip(stacked)
        .map(|(x, &s)| x.shape().len() - usize::from(s))
        .max()
        .unwrap_or(0)
}

/// The broadcast shape seen as `(outer, n, inner)` around the reduced axes (which must be next
/// to each other), and how `y` repeats in it: `y` is `(y_outer, n, inner / repeat)`, repeated
/// over the leading blocks of `outer` and each of its elements `repeat` times along `inner`
/// (one vector against a stack of tangents along the last axis). A `y` broadcast any other
/// way is copied out to the full shape first.
struct View {
    outer: usize,
    n: usize,
    inner: usize,
    y_outer: usize,
    repeat: usize,
    /// `y`'s shape, where it must be copied out to the full shape.
    spread: Option<Vec<usize>>,
    out: Vec<usize>,
}

impl View {
    /// The view, or `None` where the reduced axes are not next to each other.
    fn of(out: &[usize], reduced: &[bool], y: &[usize]) -> Option<View> {
        let r = out.len();
        let (a0, a1) = match reduced.iter().position(|&b| b) {
            // No axis: a "sum" of one element at each position.
            None => (r, r),
            Some(a0) => {
                let a1 = a0 + reduced[a0..].iter().take_while(|&&b| b).count();
                if reduced[a1..].iter().any(|&b| b) {
                    return None;
                }
                (a0, a1)
            }
        };
        let len = |axes: std::ops::Range<usize>| out[axes].iter().product::<usize>();
        let (outer, n, inner) = (len(0..a0), len(a0..a1), len(a1..r));
        // Axis i of y (padded on the left to the full rank) is stretched: length 1, not 1 in out.
        let padded: Vec<usize> = std::iter::repeat(1)
            .take(r - y.len())
            .chain(y.iter().copied())
            .collect();
        let stretched: Vec<bool> = (0..r).map(|i| padded[i] != out[i]).collect();
        // The axes y keeps are [lo, hi); outside them it is stretched or the length is 1.
        let lo = stretched[..a0]
            .iter()
            .rposition(|&s| s)
            .map_or(0, |i| i + 1);
        let hi = stretched[a1..]
            .iter()
            .position(|&s| s)
            .map_or(r, |i| a1 + i);
        let repeats_in_blocks = stretched[a0..a1].iter().all(|&s| !s)
            && (0..lo).chain(hi..r).all(|i| stretched[i] || out[i] == 1);
        let view = if repeats_in_blocks {
            View {
                outer,
                n,
                inner,
                y_outer: len(lo..a0),
                repeat: len(hi..r),
                spread: None,
                out: out.to_vec(),
            }
        } else {
            View {
                outer,
                n,
                inner,
                y_outer: outer,
                repeat: 1,
                spread: Some(y.to_vec()),
                out: out.to_vec(),
            }
        };
        Some(view)
    }

    /// `y (t - sum(y t))` with `t` at full size: for each block of `outer`, the sums over the
    /// `n` rows of `inner` elements, then the result row by row.
    fn run<T: Element>(&self, y: &[T], t: &[T]) -> Vec<T> {
        let full_y;
        let y = match &self.spread {
            Some(shape) => {
                full_y = kernels::broadcast_to(y, shape, &self.out);
                &full_y[..]
            }
            None => y,
        };
        let (n, inner, repeat) = (self.n, self.inner, self.repeat);
        let inner_y = inner / repeat;
        let mut out = buffers::take(self.outer * n * inner);
        for o in 0..self.outer {
            let ys = &y[(o % self.y_outer) * n * inner_y..][..n * inner_y];
            let ts = &t[o * n * inner..][..n * inner];
            if inner == 1 {
                // One softmax along contiguous elements: a dot product, then one pass.
                let s = kernels::dot(ys, ts);
                out.extend(ys.iter().zip(ts).map(|(&y, &t)| y * (t - s)));
                continue;
            }
            let rows = || ts.chunks_exact(inner).zip(ys.chunks_exact(inner_y));
            // The sums over the rows, carried into f64 as every sum is (see `kernels::wide`).
            let sums = kernels::sum_rows(inner, n, |sums: &mut [T], r| {
                let t_row = &ts[r * inner..][..inner];
                let y_row = &ys[r * inner_y..][..inner_y];
                if repeat == 1 {
                    for ((s, &t), &y) in sums.iter_mut().zip(t_row).zip(y_row) {
                        *s += y * t;
                    }
                } else {
                    let blocks = sums
                        .chunks_exact_mut(repeat)
                        .zip(t_row.chunks_exact(repeat));
                    for ((s, t), &y) in blocks.zip(y_row) {
                        for (s, &t) in s.iter_mut().zip(t) {
                            *s += y * t;
                        }
                    }
                }
            });
            for (t_row, y_row) in rows() {
                if repeat == 1 {
                    let values = t_row.iter().zip(y_row).zip(&sums);
                    out.extend(values.map(|((&t, &y), &s)| y * (t - s)));
                } else {
                    let blocks = t_row.chunks_exact(repeat).zip(sums.chunks_exact(repeat));
                    for ((t, s), &y) in blocks.zip(y_row) {
                        out.extend(t.iter().zip(s).map(|(&t, &s)| y * (t - s)));
                    }
                }
            }
        }
        out
    }
}
