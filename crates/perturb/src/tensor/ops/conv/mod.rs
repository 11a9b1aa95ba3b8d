//! Convolutions over one or two spatial axes (NCW / NCHW inputs, OIW / OIHW weights), on the
//! GEMM: the images' windows are unrolled into the columns of a matrix (im2col) that one
//! product with the weight turns into the output; and a convolution's bias ([`BiasAdd`]).
//!
//! Three operations share one geometry, and each is a partial derivative of the same trilinear
//! form `B(x, w, g) = <g, conv(x, w)>`:
//! - [`Conv`]: `y = conv(x, w) = dB/dg`;
//! - [`ConvTranspose`]: `conv_transpose(g, w) = dB/dx`, the gradient of the convolution with
//!   respect to its input (the "transposed convolution" layer);
//! - [`ConvWeightGrad`]: `dB/dw`, the correlation of the input with the output's cotangent.
//!
//! So each one's VJP is the other two (Dumoulin and Visin 2016, "A guide to convolution
//! arithmetic for deep learning", section 4: the transposed convolution is the convolution's
//! gradient; JAX's `_conv_general_dilated_transpose_lhs` and `_rhs` in
//! `jax/_src/lax/convolution.py` use the same pairs), each bilinear, so the JVP is
//! `op(dx, w) + op(x, dw)`. All rules are these operations again: every order works.

mod bias;
mod kernels;
mod options;
mod plan;

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::op::or_panic;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};
pub use bias::{BiasAdd, BiasAddGrad};
pub use options::{Conv1dOptions, Conv2dOptions, ConvOptions, Padding};
use plan::*;

// ---- The operations -----------------------------------------------------------------------

/// The convolution over `D` spatial axes (really a cross-correlation, as in PyTorch and JAX):
/// input `x` `[N, C, spatial..]`, weight `w` `[O, C / groups, kernel..]`, output
/// `[N, O, out..]` with, in 2-D,
///
/// `y[n, o, i, j] = sum_{c, p, q} w[o, c, p, q] x[n, G c', i s_h + p d_h - lo_h, j s_w + q d_w - lo_w]`
///
/// where `c' = (o / (O / groups)) (C / groups) + c` (the input channels of `o`'s group), `s`
/// the stride, `d` the dilation, `lo` the padding before, and `x` zero outside. Each spatial
/// axis of the output has `(size + lo + hi - d (k - 1) - 1) / s + 1` entries.
///
/// The VJP is [`ConvTranspose`] for the input and [`ConvWeightGrad`] for the weight. A stack
/// of inputs folds into the batch axis; a stack of weights becomes more output channels of
/// one convolution (or more groups where the inputs are stacked too): one call either way.
///
/// ```
/// use perturb::tensor::{ops::Conv, conv::Conv1dOptions, Op, Tensor};
/// // A moving sum of 2 over [1, 2, 3, 4].
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[1, 1, 4]).unwrap();
/// let w = Tensor::from_vec(vec![1.0, 1.0], &[1, 1, 2]).unwrap();
/// let y = Conv { options: Conv1dOptions::default() }.eval(&[&x, &w]).unwrap();
/// assert_eq!(y.to_vec(), vec![3.0, 5.0, 7.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv<const D: usize> {
    /// Stride, padding, dilation and groups (the output padding must be zero).
    pub options: ConvOptions<D>,
}

/// The transposed convolution over `D` spatial axes (PyTorch's `conv_transpose1d` / `2d`): the
/// gradient of [`Conv`] with respect to its input, as a layer. Input `[N, C_in, size..]`,
/// weight `[C_in, C_out / groups, kernel..]` (the weight of the convolution it transposes),
/// output `[N, C_out, out..]` with `out = (size - 1) s - lo - hi + d (k - 1) + 1 +
/// output_padding` per axis.
///
/// PyTorch asks `output_padding < max(stride, dilation)`; here any output padding is taken,
/// the rows the kernel does not reach being zero.
///
/// ```
/// use perturb::tensor::{ops::ConvTranspose, conv::Conv1dOptions, Op, Tensor};
/// // Each input spreads over two outputs two apart: [1, 1, 2, 2].
/// let y = Tensor::from_vec(vec![1.0_f64, 2.0], &[1, 1, 2]).unwrap();
/// let w = Tensor::from_vec(vec![1.0, 1.0], &[1, 1, 2]).unwrap();
/// let op = ConvTranspose { options: Conv1dOptions::default().stride(2) };
/// assert_eq!(op.eval(&[&y, &w]).unwrap().to_vec(), vec![1.0, 1.0, 2.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose<const D: usize> {
    /// Stride, padding, dilation, groups and output padding.
    pub options: ConvOptions<D>,
}

/// The gradient of [`Conv`] with respect to its weight: for input `x` `[N, C, size..]` and the
/// output's cotangent `g` `[N, O, out..]`, the weight-shaped `[O, C / groups, kernel..]`
///
/// `dw[o, c, p, q] = sum_{n, i, j} g[n, o, i, j] x[n, c', i s_h + p d_h - lo_h, j s_w + q d_w - lo_w]`
///
/// (the correlation of the input with the cotangent). `g` may have fewer positions than the
/// convolution's output, the missing ones counting as zero (the transposed convolution's VJP
/// needs that when its output padding reaches a stride).
///
/// ```
/// use perturb::tensor::{ops::ConvWeightGrad, conv::Conv1dOptions, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0], &[1, 1, 3]).unwrap();
/// let g = Tensor::from_vec(vec![1.0, 10.0], &[1, 1, 2]).unwrap();
/// let op = ConvWeightGrad { options: Conv1dOptions::default(), kernel: [2] };
/// // dw[0] = 1*1 + 10*2, dw[1] = 1*2 + 10*3
/// assert_eq!(op.eval(&[&x, &g]).unwrap().to_vec(), vec![21.0, 32.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvWeightGrad<const D: usize> {
    /// The options of the convolution (the output padding is ignored).
    pub options: ConvOptions<D>,
    /// The kernel's taps per spatial axis.
    pub kernel: [usize; D],
}

/// The 1-D convolution operation.
pub type Conv1d = Conv<1>;
/// The 2-D convolution operation.
pub type Conv2d = Conv<2>;
/// The 2-D transposed convolution operation.
pub type ConvTranspose2d = ConvTranspose<2>;

fn two<'a, T: ?Sized>(op: &'static str, inputs: &[&'a T]) -> Result<(&'a T, &'a T), Error> {
    match inputs {
        [a, b] => Ok((a, b)),
        _ => Err(Error::Arity {
            op,
            expected: 2,
            found: inputs.len(),
        }),
    }
}

/// The spatial sizes of `a` (`[N, C, spatial..]`).
fn sizes<const D: usize, A: Array>(a: &A) -> [usize; D] {
    spatial::<D>(a.shape())
}

/// `a` cut to `len` entries along each spatial axis (a no-op where it has no more).
fn cut<const D: usize, A: Array>(a: A, len: [usize; D]) -> Result<A, Error> {
    let mut a = a;
    for (ax, &l) in len.iter().enumerate() {
        if a.shape()[2 + ax] > l {
            a = a.try_narrow(2 + ax, 0, l)?;
        }
    }
    Ok(a)
}

/// The transposed convolution with `o`'s geometry whose output has `size` entries per spatial
/// axis, for an input of `from` entries: the output padding that makes it so.
fn transpose_to<const D: usize>(
    o: &ConvOptions<D>,
    kernel: [usize; D],
    from: [usize; D],
    size: [usize; D],
) -> ConvTranspose<D> {
    let pads = o.pads(kernel);
    let output_padding = std::array::from_fn(|a| {
        let base = (from[a].max(1) - 1) * o.stride[a] + o.dilation[a] * (kernel[a].max(1) - 1) + 1;
        (size[a] + pads[a].0 + pads[a].1).saturating_sub(base)
    });
    ConvTranspose {
        options: o.output_padding(output_padding),
    }
}

/// The stack along axis 0 of `a` moved into axis `t` (counted with the stack's axis, so at
/// least 1), which becomes `(g, stack, len / g)`: group-major, the stack inside each group.
fn merge<A: Array>(a: &A, t: usize, g: usize) -> Result<A, Error> {
    let s = a.shape().to_vec();
    let (b, len) = (s[0], s[t]);
    let merged: Vec<usize> = s[1..t]
        .iter()
        .copied()
        .chain([b * len])
        .chain(s[t + 1..].iter().copied())
        .collect();
    if t == 1 && g == 1 {
        return a.try_reshape(&merged);
    }
    let split: Vec<usize> = s[..t]
        .iter()
        .copied()
        .chain([g, len / g])
        .chain(s[t + 1..].iter().copied())
        .collect();
    let perm: Vec<usize> = (1..=t).chain([0]).chain(t + 1..split.len()).collect();
    a.try_reshape(&split)?
        .try_permute(&perm)?
        .try_reshape(&merged)
}

/// The inverse of [`merge`]: axis `t` of `a`, laid out `(g, b, len / g)`, split into a stack
/// of `b` along a new axis 0.
fn split<A: Array>(a: &A, t: usize, b: usize, g: usize) -> Result<A, Error> {
    let s = a.shape().to_vec();
    let len = s[t] / b;
    let out: Vec<usize> = [b]
        .into_iter()
        .chain(s[..t].iter().copied())
        .chain([len])
        .chain(s[t + 1..].iter().copied())
        .collect();
    if t == 0 && g == 1 {
        return a.try_reshape(&out);
    }
    let shape: Vec<usize> = s[..t]
        .iter()
        .copied()
        .chain([g, b, len / g])
        .chain(s[t + 1..].iter().copied())
        .collect();
    let perm: Vec<usize> = [t + 1]
        .into_iter()
        .chain(0..=t)
        .chain(t + 2..shape.len())
        .collect();
    a.try_reshape(&shape)?.try_permute(&perm)?.try_reshape(&out)
}

/// The shapes of one member of each input (the stack's axis dropped).
fn members<A: Array>(inputs: &[&A], stacked: &[bool]) -> Vec<Vec<usize>> {
    inputs
        .iter()
        .zip(stacked)
        .map(|(a, &s)| a.shape()[usize::from(s)..].to_vec())
        .collect()
}

impl<const D: usize> Op for Conv<D> {
    fn name(&self) -> &'static str {
        conv_name::<D>(["conv1d", "conv2d"])
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (x, w) = two(self.name(), inputs)?;
        let (plan, shape) = conv_plan(self.name(), &self.options, x.shape(), w.shape())?;
        Ok(Tensor::from_parts(
            plan.forward(self.name(), x.as_slice(), w.as_slice())?,
            shape,
        ))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [x, w] = inputs else { return None };
        conv_plan(self.name(), &self.options, x, w)
            .ok()
            .map(|p| p.1)
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (x, w) = (inputs[0], inputs[1]);
        let dx = tangents[0].map(|t| A::apply(self, &[t, w])).transpose()?;
        let dw = tangents[1].map(|t| A::apply(self, &[x, t])).transpose()?;
        super::sum_tangents([dx, dw], output.shape())
    }

    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (x, w) = (inputs[0], inputs[1]);
        let kernel = sizes::<D, A>(w);
        let dx = if needed[0] {
            let op = transpose_to(&self.options, kernel, sizes::<D, A>(ct), sizes::<D, A>(x));
            Some(A::apply(&op, &[ct, w])?)
        } else {
            None
        };
        let dw = if needed[1] {
            let op = ConvWeightGrad {
                options: self.options,
                kernel,
            };
            Some(A::apply(&op, &[x, ct])?)
        } else {
            None
        };
        Ok(vec![dx, dw])
    }

    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let m = members(inputs, stacked);
        let (x, w) = two(self.name(), inputs)?;
        let g = self.options.groups;
        // A stack on both sides becomes `size * g` groups: a member at a time if that wraps.
        let fits = size.checked_mul(g).is_some();
        if size == 0 || !fits || conv_plan(self.name(), &self.options, &m[0], &m[1]).is_err() {
            return batched::by_loop(self, inputs, stacked, size);
        }
        match (stacked[0], stacked[1]) {
            (true, false) => split(&A::apply(self, &[&merge(x, 1, 1)?, w])?, 0, size, 1),
            (false, true) => split(&A::apply(self, &[x, &merge(w, 1, g)?])?, 1, size, g),
            (true, true) => {
                let op = Conv {
                    options: self.options.groups(size * g),
                };
                split(
                    &A::apply(&op, &[&merge(x, 2, 1)?, &merge(w, 1, 1)?])?,
                    1,
                    size,
                    1,
                )
            }
            (false, false) => A::apply(self, &[x, w]),
        }
    }
}

impl<const D: usize> Op for ConvTranspose<D> {
    fn name(&self) -> &'static str {
        conv_name::<D>(["conv_transpose1d", "conv_transpose2d"])
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (y, w) = two(self.name(), inputs)?;
        let (plan, shape) = transpose_plan(self.name(), &self.options, y.shape(), w.shape())?;
        Ok(Tensor::from_parts(
            plan.backward_input(self.name(), y.as_slice(), w.as_slice())?,
            shape,
        ))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [y, w] = inputs else { return None };
        transpose_plan(self.name(), &self.options, y, w)
            .ok()
            .map(|p| p.1)
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (y, w) = (inputs[0], inputs[1]);
        let dy = tangents[0].map(|t| A::apply(self, &[t, w])).transpose()?;
        let dw = tangents[1].map(|t| A::apply(self, &[y, t])).transpose()?;
        super::sum_tangents([dy, dw], output.shape())
    }

    /// `<h, conv_transpose(y, w)> = B(h, w, y)`: the input's term is `conv(h, w)` (cut to
    /// the input's size, which an output padding of a stride or more exceeds) and the
    /// weight's is the weight gradient at input `h` and cotangent `y`.
    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (y, w) = (inputs[0], inputs[1]);
        let options = self.options.without_output_padding();
        let dy = if needed[0] {
            let conv = A::apply(&Conv { options }, &[ct, w])?;
            Some(cut(conv, sizes::<D, A>(y))?)
        } else {
            None
        };
        let dw = if needed[1] {
            let op = ConvWeightGrad {
                options,
                kernel: sizes::<D, A>(w),
            };
            Some(A::apply(&op, &[ct, y])?)
        } else {
            None
        };
        Ok(vec![dy, dw])
    }

    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let m = members(inputs, stacked);
        let (y, w) = two(self.name(), inputs)?;
        let g = self.options.groups;
        let fits = size.checked_mul(g).is_some();
        if size == 0 || !fits || transpose_plan(self.name(), &self.options, &m[0], &m[1]).is_err() {
            return batched::by_loop(self, inputs, stacked, size);
        }
        match (stacked[0], stacked[1]) {
            (true, false) => split(&A::apply(self, &[&merge(y, 1, 1)?, w])?, 0, size, 1),
            (false, true) => split(&A::apply(self, &[y, &merge(w, 2, 1)?])?, 1, size, g),
            (true, true) => {
                let op = ConvTranspose {
                    options: self.options.groups(size * g),
                };
                split(
                    &A::apply(&op, &[&merge(y, 2, 1)?, &merge(w, 1, 1)?])?,
                    1,
                    size,
                    1,
                )
            }
            (false, false) => A::apply(self, &[y, w]),
        }
    }
}

impl<const D: usize> Op for ConvWeightGrad<D> {
    fn name(&self) -> &'static str {
        conv_name::<D>(["conv1d_weight_grad", "conv2d_weight_grad"])
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (x, g) = two(self.name(), inputs)?;
        let o = self.options.without_output_padding();
        let (plan, shape) = weight_grad_plan(self.name(), &o, self.kernel, x.shape(), g.shape())?;
        Ok(Tensor::from_parts(
            plan.backward_weight(x.as_slice(), g.as_slice()),
            shape,
        ))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [x, g] = inputs else { return None };
        let o = self.options.without_output_padding();
        weight_grad_plan(self.name(), &o, self.kernel, x, g)
            .ok()
            .map(|p| p.1)
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn jvp<A: Array>(
        &self,
        inputs: &[&A],
        output: &A,
        tangents: &[Option<&A>],
    ) -> Result<Option<A>, Error> {
        let (x, g) = (inputs[0], inputs[1]);
        let dx = tangents[0].map(|t| A::apply(self, &[t, g])).transpose()?;
        let dg = tangents[1].map(|t| A::apply(self, &[x, t])).transpose()?;
        super::sum_tangents([dx, dg], output.shape())
    }

    /// `<k, dw(x, g)> = B(x, k, g)`: the input's term is `conv_transpose(g, k)` (to the
    /// input's size) and the cotangent's is `conv(x, k)` (cut to its size).
    fn vjp<A: Array>(
        &self,
        inputs: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let (x, g) = (inputs[0], inputs[1]);
        let options = self.options.without_output_padding();
        let dx = if needed[0] {
            let op = transpose_to(&options, self.kernel, sizes::<D, A>(g), sizes::<D, A>(x));
            Some(A::apply(&op, &[g, ct])?)
        } else {
            None
        };
        let dg = if needed[1] {
            let conv = A::apply(&Conv { options }, &[x, ct])?;
            Some(cut(conv, sizes::<D, A>(g))?)
        } else {
            None
        };
        Ok(vec![dx, dg])
    }

    fn batch<A: Array>(&self, inputs: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let m = members(inputs, stacked);
        let (x, g) = two(self.name(), inputs)?;
        let o = self.options.without_output_padding();
        let groups = self.options.groups;
        let fits = size.checked_mul(groups).is_some();
        if size == 0
            || !fits
            || weight_grad_plan(self.name(), &o, self.kernel, &m[0], &m[1]).is_err()
        {
            return batched::by_loop(self, inputs, stacked, size);
        }
        match (stacked[0], stacked[1]) {
            (true, false) => split(&A::apply(self, &[&merge(x, 2, groups)?, g])?, 1, size, 1),
            (false, true) => split(
                &A::apply(self, &[x, &merge(g, 2, groups)?])?,
                0,
                size,
                groups,
            ),
            (true, true) => {
                let op = ConvWeightGrad {
                    options: self.options.groups(size * groups),
                    kernel: self.kernel,
                };
                split(
                    &A::apply(&op, &[&merge(x, 2, 1)?, &merge(g, 2, 1)?])?,
                    0,
                    size,
                    1,
                )
            }
            (false, false) => A::apply(self, &[x, g]),
        }
    }
}

// ---- The functions ------------------------------------------------------------------------

/// The 2-D convolution of `x` `[N, C, H, W]` with `w` `[O, C / groups, kH, kW]`: see [`Conv`]
/// for the formula. Add a bias `b` `[O]` with [`try_bias_add`]. Errors name the
/// operation and both shapes: channels that do not match, groups that do not divide them, a
/// kernel larger than the padded input, an input with an empty spatial axis, a zero stride or
/// dilation, "same" with a stride.
///
/// ```
/// use perturb::tensor::conv::{try_conv2d, Conv2dOptions};
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// let x = Tensor::<f64>::ones(&[1, 1, 3, 3]);
/// let w = Tensor::<f64>::ones(&[2, 1, 2, 2]);
/// let y = try_conv2d(&x, &w, Conv2dOptions::default().padding(1)).unwrap();
/// assert_eq!(y.shape(), &[1, 2, 4, 4]);
/// assert_eq!(y.to_vec()[..4], [1.0, 2.0, 2.0, 1.0]); // corners see one input, edges two
///
/// // The gradient of the sum with respect to the weight: each tap sees 9 inputs.
/// let tape = TensorTape::new();
/// let wv = tape.var(w.clone());
/// let y = try_conv2d(&tape.constant(x.clone()), &wv, Conv2dOptions::default().padding(1)).unwrap();
/// let g = tape.gradient(&y.sum_all(), &[&wv]).unwrap();
/// assert_eq!(g[0].to_vec(), vec![9.0; 8]);
///
/// assert!(try_conv2d(&x, &Tensor::ones(&[2, 3, 2, 2]), Conv2dOptions::default()).is_err());
/// ```
pub fn try_conv2d<A: Array>(x: &A, w: &A, options: Conv2dOptions) -> Result<A, Error> {
    A::apply(&Conv { options }, &[x, w])
}

/// See [`try_conv2d`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::conv::{conv2d, Conv2dOptions};
/// use perturb::tensor::{Array, Tensor};
/// let x = Tensor::<f32>::ones(&[2, 3, 8, 8]);
/// let w = Tensor::<f32>::ones(&[4, 3, 3, 3]);
/// assert_eq!(conv2d(&x, &w, Conv2dOptions::default().stride(2).padding(1)).shape(), &[2, 4, 4, 4]);
/// ```
#[track_caller]
pub fn conv2d<A: Array>(x: &A, w: &A, options: Conv2dOptions) -> A {
    or_panic(try_conv2d(x, w, options))
}

/// The 1-D convolution of `x` `[N, C, L]` with `w` `[O, C / groups, k]` (see [`Conv`]; it runs
/// on the 2-D kernel with a height of 1).
///
/// ```
/// use perturb::tensor::conv::{try_conv1d, Conv1dOptions};
/// use perturb::tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[1, 1, 4]).unwrap();
/// let w = Tensor::from_vec(vec![1.0, -1.0], &[1, 1, 2]).unwrap();
/// let y = try_conv1d(&x, &w, Conv1dOptions::default().same()).unwrap();
/// assert_eq!(y.to_vec(), vec![-1.0, -1.0, -1.0, 4.0]); // the extra zero goes after
/// assert!(try_conv1d(&x, &w, Conv1dOptions::default().stride(0)).is_err());
/// ```
pub fn try_conv1d<A: Array>(x: &A, w: &A, options: Conv1dOptions) -> Result<A, Error> {
    A::apply(&Conv { options }, &[x, w])
}

/// See [`try_conv1d`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::conv::{conv1d, Conv1dOptions};
/// use perturb::tensor::{Array, Tensor};
/// let y = conv1d(&Tensor::<f64>::ones(&[1, 2, 5]), &Tensor::ones(&[3, 2, 3]), Conv1dOptions::default());
/// assert_eq!((y.shape(), y.to_vec()[0]), (&[1, 3, 3][..], 6.0));
/// ```
#[track_caller]
pub fn conv1d<A: Array>(x: &A, w: &A, options: Conv1dOptions) -> A {
    or_panic(try_conv1d(x, w, options))
}

/// The 2-D transposed convolution of `x` `[N, C_in, H, W]` with `w`
/// `[C_in, C_out / groups, kH, kW]` (PyTorch's `conv_transpose2d`): the gradient of
/// [`conv2d`] with respect to its input, as a layer; see [`ConvTranspose`].
///
/// ```
/// use perturb::tensor::conv::{try_conv_transpose2d, Conv2dOptions};
/// use perturb::tensor::{Array, Tensor};
/// let x = Tensor::<f64>::ones(&[1, 2, 3, 3]);
/// let w = Tensor::<f64>::ones(&[2, 1, 3, 3]);
/// let o = Conv2dOptions::default().stride(2).padding(1).output_padding([1, 1]);
/// let y = try_conv_transpose2d(&x, &w, o).unwrap();
/// assert_eq!(y.shape(), &[1, 1, 6, 6]); // (3 - 1) 2 - 2 + 2 + 1 + 1
/// assert!(try_conv_transpose2d(&x, &Tensor::ones(&[3, 1, 3, 3]), o).is_err());
/// ```
pub fn try_conv_transpose2d<A: Array>(x: &A, w: &A, options: Conv2dOptions) -> Result<A, Error> {
    A::apply(&ConvTranspose { options }, &[x, w])
}

/// See [`try_conv_transpose2d`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::conv::{conv_transpose2d, Conv2dOptions};
/// use perturb::tensor::{Array, Tensor};
/// let y = conv_transpose2d(&Tensor::<f64>::ones(&[1, 1, 2, 2]), &Tensor::ones(&[1, 1, 2, 2]), Conv2dOptions::default());
/// assert_eq!(y.to_vec(), vec![1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
/// ```
#[track_caller]
pub fn conv_transpose2d<A: Array>(x: &A, w: &A, options: Conv2dOptions) -> A {
    or_panic(try_conv_transpose2d(x, w, options))
}

/// The 1-D transposed convolution (PyTorch's `conv_transpose1d`): [`try_conv_transpose2d`]
/// over one spatial axis.
///
/// ```
/// use perturb::tensor::conv::{try_conv_transpose1d, Conv1dOptions};
/// use perturb::tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0], &[1, 1, 2]).unwrap();
/// let w = Tensor::from_vec(vec![1.0, 10.0], &[1, 1, 2]).unwrap();
/// let y = try_conv_transpose1d(&x, &w, Conv1dOptions::default()).unwrap();
/// assert_eq!(y.to_vec(), vec![1.0, 12.0, 20.0]);
/// ```
pub fn try_conv_transpose1d<A: Array>(x: &A, w: &A, options: Conv1dOptions) -> Result<A, Error> {
    A::apply(&ConvTranspose { options }, &[x, w])
}

/// See [`try_conv_transpose1d`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::conv::{conv_transpose1d, Conv1dOptions};
/// use perturb::tensor::{Array, Tensor};
/// let y = conv_transpose1d(&Tensor::<f64>::ones(&[1, 1, 3]), &Tensor::ones(&[1, 2, 1]), Conv1dOptions::default());
/// assert_eq!(y.shape(), &[1, 2, 3]);
/// ```
#[track_caller]
pub fn conv_transpose1d<A: Array>(x: &A, w: &A, options: Conv1dOptions) -> A {
    or_panic(try_conv_transpose1d(x, w, options))
}

/// `y` `[N, C, spatial..]` plus `b` `[C]` along the channels (axis 1), a convolution's bias:
/// `y + b.reshape([C, 1, 1])` in one pass, with the bias's gradient summed per channel in one
/// pass too ([`BiasAdd`]). An error names `bias_add` and both shapes where `b` is not `[C]`.
///
/// ```
/// use perturb::tensor::conv::{conv2d, try_bias_add, Conv2dOptions};
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// let tape = TensorTape::new();
/// let x = tape.constant(Tensor::<f64>::ones(&[2, 1, 3, 3]));
/// let (w, b) = (tape.var(Tensor::ones(&[4, 1, 2, 2])), tape.var(Tensor::zeros(&[4])));
/// let y = try_bias_add(&conv2d(&x, &w, Conv2dOptions::default()), &b).unwrap();
/// // The bias's gradient counts the outputs of each channel: 2 images of 2 x 2.
/// let g = tape.gradient(&y.sum_all(), &[&b]).unwrap();
/// assert_eq!(g[0].to_vec(), vec![8.0; 4]);
/// assert!(try_bias_add(&y, &b.try_reshape(&[2, 2]).unwrap()).is_err());
/// ```
pub fn try_bias_add<A: Array>(y: &A, b: &A) -> Result<A, Error> {
    A::apply(&BiasAdd, &[y, b])
}

/// See [`try_bias_add`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::conv::bias_add;
/// use perturb::tensor::Tensor;
/// let y = bias_add(&Tensor::<f32>::zeros(&[1, 2, 1, 2]), &Tensor::vector(&[1.0, -1.0]));
/// assert_eq!(y.to_vec(), vec![1.0, 1.0, -1.0, -1.0]);
/// ```
#[track_caller]
pub fn bias_add<A: Array>(y: &A, b: &A) -> A {
    or_panic(try_bias_add(y, b))
}
