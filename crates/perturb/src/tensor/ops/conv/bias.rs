//! A convolution's bias: [`BiasAdd`] adds one value per channel (axis 1 of `[N, C, spatial..]`)
//! and [`BiasAddGrad`], its VJP for the bias, sums each channel (TensorFlow's `BiasAdd` and
//! `BiasAddGrad` with `NCHW` data). The same as `y + b.reshape([C, 1, 1])` and its `sum_to`,
//! in one pass over contiguous blocks instead of numpy broadcasting's index walk.

use super::{batched, two, Array, Element, Error, Op, Tensor, VjpReads};
use crate::tensor::kernels::sum;
use crate::tensor::ops::{linear_jvp, unary};

/// `y + b` with `b` `[C]` added along axis 1 of `y` `[N, C, spatial..]` (at least two axes):
/// `out[n, c, ..] = y[n, c, ..] + b[c]`. Linear; VJP: the cotangent for `y`, [`BiasAddGrad`]
/// of it for `b`. An error names `bias_add` and both shapes where `b` is not `[C]`.
///
/// ```
/// use perturb::tensor::{ops::BiasAdd, Op, Tensor};
/// let y = Tensor::<f64>::zeros(&[1, 2, 2, 1]);
/// let b = Tensor::vector(&[1.0, 2.0]);
/// assert_eq!(BiasAdd.eval(&[&y, &b]).unwrap().to_vec(), vec![1.0, 1.0, 2.0, 2.0]);
/// assert!(BiasAdd.eval(&[&y, &Tensor::vector(&[1.0])]).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BiasAdd;

/// The sum of each channel (axis 1) of `g` `[N, C, spatial..]`: the `[C]` gradient of a bias
/// that [`BiasAdd`] added. Linear; VJP: each channel's cotangent spread over its channel.
///
/// ```
/// use perturb::tensor::{ops::BiasAddGrad, Op, Tensor};
/// let g = Tensor::from_vec((1..=8).map(f64::from).collect(), &[2, 2, 2]).unwrap();
/// // channel 0: 1 + 2 + 5 + 6, channel 1: 3 + 4 + 7 + 8
/// assert_eq!(BiasAddGrad.eval(&[&g]).unwrap().to_vec(), vec![14.0, 22.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BiasAddGrad;

/// The blocks of a `[N, C, spatial..]` shape: `(N, C, spatial size)`, or an error naming `op`
/// for fewer than two axes.
fn blocks(op: &'static str, shape: &[usize]) -> Result<(usize, usize, usize), Error> {
    match shape {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product())),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!("the input must be [N, C, ..] (two axes or more), got shape {shape:?}"),
        }),
    }
}

/// `b` (`[C]`) spread over `shape` (`[N, C, spatial..]`) along axis 1.
fn spread<A: Array>(b: &A, shape: &[usize]) -> Result<A, Error> {
    let column: Vec<usize> = shape[1..]
        .iter()
        .enumerate()
        .map(|(a, &len)| if a == 0 { len } else { 1 })
        .collect();
    b.try_reshape(&column)?.try_broadcast_to(shape)
}

impl Op for BiasAdd {
    fn name(&self) -> &'static str {
        "bias_add"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [y, b] = inputs else { return None };
        (y.len() >= 2 && **b == [y[1]]).then(|| y.to_vec())
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (y, b) = two(self.name(), inputs)?;
        let (_, c, s) = blocks(self.name(), y.shape())?;
        if b.shape() != [c] {
            return Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: y.shape().to_vec(),
                rhs: b.shape().to_vec(),
            });
        }
        let mut out = Vec::with_capacity(y.len());
        if s > 0 {
            for (block, &bias) in y
                .as_slice()
                .chunks_exact(s)
                .zip(b.as_slice().iter().cycle())
            {
                out.extend(block.iter().map(|&v| v + bias));
            }
        }
        Ok(Tensor::from_parts(out, y.shape().to_vec()))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(match (t[0], t[1]) {
            (None, None) => None,
            (Some(ty), None) => Some(ty.clone()),
            (Some(ty), Some(tb)) => Some(A::apply(self, &[ty, tb])?),
            (None, Some(tb)) => Some(spread(tb, x[0].shape())?),
        })
    }

    fn vjp<A: Array>(
        &self,
        _: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let db = if needed[1] {
            Some(A::apply(&BiasAddGrad, &[ct])?)
        } else {
            None
        };
        Ok(vec![needed[0].then(|| ct.clone()), db])
    }

    /// A stack of `y` alone folds into its batch axis; a stack of biases broadcasts as
    /// `[size, 1, C, 1, ..]`.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let (y, b) = two(self.name(), inputs)?;
        if stacked[0] && !stacked[1] && y.shape().len() >= 3 {
            let s = y.shape();
            let folded: Vec<usize> = [s[0] * s[1]]
                .into_iter()
                .chain(s[2..].iter().copied())
                .collect();
            return A::apply(self, &[&y.try_reshape(&folded)?, b])?.try_reshape(s);
        }
        if !stacked[1] {
            return batched::by_loop(self, inputs, stacked, size);
        }
        let y = batched::all_stacked(&[y], &[stacked[0]], size)?.remove(0);
        // The member's shape: y without the stack's axis.
        let member = &y.shape()[1..];
        blocks(self.name(), member)?;
        let b_shape: Vec<usize> = [size, 1]
            .into_iter()
            .chain(
                member[1..]
                    .iter()
                    .enumerate()
                    .map(|(a, &l)| if a == 0 { l } else { 1 }),
            )
            .collect();
        y.try_add(&b.try_reshape(&b_shape)?)
    }
}

impl Op for BiasAddGrad {
    fn name(&self) -> &'static str {
        "bias_add_grad"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [g] = inputs else { return None };
        (g.len() >= 2).then(|| vec![g[1]])
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let g = unary(self.name(), inputs)?;
        let (_, c, s) = blocks(self.name(), g.shape())?;
        let mut out = vec![T::zero(); c];
        if s > 0 && c > 0 {
            for (block, o) in g.as_slice().chunks_exact(s).zip((0..c).cycle()) {
                out[o] += sum(block);
            }
        }
        Ok(Tensor::from_parts(out, vec![c]))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(spread(ct, x[0].shape())?)])
    }

    /// The sum over every axis of a member but its channels: axes 1 and 3 on of the stack.
    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let g = unary(self.name(), inputs)?;
        let rank = g.shape().len();
        if !stacked[0] || rank < 3 {
            return batched::by_loop(self, inputs, stacked, size);
        }
        let axes: Vec<usize> = [1].into_iter().chain(3..rank).collect();
        g.try_sum_axes(&axes, false)
    }
}
