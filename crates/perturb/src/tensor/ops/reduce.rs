//! Reductions over one or several axes (sum, mean, max, min, logsumexp) with `keepdims`, and
//! softmax / log-softmax along an axis.
//!
//! Every reduction takes its axes as a slice: each must be an axis of the input, none repeated
//! (an error names the operation, the axis and the shape). An empty slice reduces over no axis,
//! as numpy's `axis=()` does: the result is the input (use every axis, or
//! [`sum_all`](crate::tensor::Array::sum_all), to reduce to one element). With `keepdims` the
//! reduced axes stay, with length 1, so the result broadcasts against the input.

use crate::error::Error;
use crate::rules;
use crate::scalar::UnaryOp;
use crate::tensor::batched;
use crate::tensor::buffers;
use crate::tensor::kernels::{self, narrow, wide};
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

use super::elem;
use super::unary;

/// Checks one axis against a shape.
pub(super) fn check_axis(op: &'static str, axis: usize, shape: &[usize]) -> Result<(), Error> {
    if axis < shape.len() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            reason: format!(
                "axis {axis} is out of range for a tensor of shape {shape:?} ({} axes)",
                shape.len()
            ),
        })
    }
}

/// Checks the axes of a reduction (in range, none repeated) and returns, for each axis of
/// `shape`, whether it is reduced.
pub(super) fn check_axes(
    op: &'static str,
    axes: &[usize],
    shape: &[usize],
) -> Result<Vec<bool>, Error> {
    let mut reduced = vec![false; shape.len()];
    for &axis in axes {
        check_axis(op, axis, shape)?;
        if std::mem::replace(&mut reduced[axis], true) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("axis {axis} is repeated in {axes:?} (tensor of shape {shape:?})"),
            });
        }
    }
    Ok(reduced)
}

/// The lengths before, at and after `axis`: a tensor seen as `(outer, n, inner)`.
pub(super) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    )
}

/// The shape with the reduced axes kept with length 1.
fn keep_shape(shape: &[usize], reduced: &[bool]) -> Vec<usize> {
    shape
        .iter()
        .zip(reduced)
        .map(|(&n, &r)| if r { 1 } else { n })
        .collect()
}

/// The shape of a reduction's result.
fn out_shape(shape: &[usize], reduced: &[bool], keepdims: bool) -> Vec<usize> {
    if keepdims {
        return keep_shape(shape, reduced);
    }
    shape
        .iter()
        .zip(reduced)
        .filter(|(_, &r)| !r)
        .map(|(&n, _)| n)
        .collect()
}

/// The number of elements reduced into each slot of the result.
fn reduced_count(shape: &[usize], reduced: &[bool]) -> usize {
    shape
        .iter()
        .zip(reduced)
        .filter(|(_, &r)| r)
        .map(|(&n, _)| n)
        .product()
}

/// Calls `f(flat, slot, value)` for every element of `x` (of shape `shape`) in row-major order,
/// where `slot` is the element's position in the reduced (keepdims) result.
fn for_each_slot<T: Copy>(
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    mut f: impl FnMut(usize, usize, T),
) {
    for_each_row(x, shape, reduced, |start, slot, stride, row| {
        for (k, &v) in row.iter().enumerate() {
            f(start + k, slot + k * stride, v);
        }
    });
}

/// Calls `f(flat, slot, stride, row)` for every run of `x` along its last axis (the whole of a
/// 0-dimensional `x`), where `flat` is the run's first position in `x`, `slot` its first
/// element's position in the reduced (keepdims) result and `stride` the step of that position
/// along the run (0 when the last axis is reduced).
fn for_each_row<T: Copy>(
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    mut f: impl FnMut(usize, usize, usize, &[T]),
) {
    let nd = shape.len();
    if x.is_empty() {
        return;
    }
    if nd == 0 {
        f(0, 0, 0, x);
        return;
    }
    let strides = kernels::broadcast_strides(&keep_shape(shape, reduced), shape);
    let (last, last_stride) = (shape[nd - 1], strides[nd - 1]);
    let mut index = vec![0usize; nd - 1];
    let mut base = 0usize;
    for (row, chunk) in x.chunks_exact(last).enumerate() {
        f(row * last, base, last_stride, chunk);
        // Advance the odometer over the leading axes, keeping the slot offset in step.
        for axis in (0..nd - 1).rev() {
            index[axis] += 1;
            base += strides[axis];
            if index[axis] < shape[axis] {
                break;
            }
            base -= strides[axis] * shape[axis];
            index[axis] = 0;
        }
    }
}

/// Folds every element into its slot of the reduced (keepdims) result.
fn fold<T: Element>(
    x: &[T],
    shape: &[usize],
    reduced: &[bool],
    init: T,
    f: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut out = buffers::filled(keep_shape(shape, reduced).iter().product(), init);
    for_each_row(x, shape, reduced, |_, slot, stride, row| {
        if stride == 0 {
            // A reduced last axis: the run folds into one slot, kept in a register meanwhile
            // (through memory it was a store and a load per element: 3.5 ns each for `max`).
            out[slot] = row.iter().fold(out[slot], |acc, &v| f(acc, v));
        } else {
            for (k, &v) in row.iter().enumerate() {
                let s = slot + k * stride;
                out[s] = f(out[s], v);
            }
        }
    });
    out
}

/// The larger of two values, NaN if either is.
pub(super) fn max_nan<T: Element>(acc: T, v: T) -> T {
    if v.is_nan() || v > acc {
        v
    } else {
        acc
    }
}

/// The smaller of two values, NaN if either is.
pub(super) fn min_nan<T: Element>(acc: T, v: T) -> T {
    if v.is_nan() || v < acc {
        v
    } else {
        acc
    }
}

/// The shift that makes `exp(x - shift)` safe: the maximum where it is finite, else 0.
fn safe_shift<T: Element>(m: T) -> T {
    if m.is_finite() {
        m
    } else {
        T::zero()
    }
}

/// The parts of each slot's logsumexp `shift + ln(sum exp(x - shift))`, with the slot's maximum
/// as shift: the shifts and the logarithms. Where the maximum is finite, one of the terms is
/// exactly `e^0 = 1`, and the logarithm is `ln_1p` of the others: a nearly certain slot (logits
/// -30 and 0) has `ln(1 + 9.4e-14)`, which `ln` of the rounded sum gets wrong by 1e-3
/// relative in f64 (and as 0 in f32 for `1 + 4.1e-8`).
fn logsumexp_parts<T: Element>(x: &[T], shape: &[usize], reduced: &[bool]) -> (Vec<T>, Vec<T>) {
    let max = fold(x, shape, reduced, T::neg_infinity(), max_nan);
    let shift: Vec<T> = max.iter().copied().map(safe_shift).collect();
    // The sum of the terms other than the first at the maximum (when that is finite), added
    // in f64 (see [`kernels::wide`]).
    let mut rest = vec![0.0_f64; shift.len()];
    let mut skipped = vec![false; shift.len()];
    for_each_slot(x, shape, reduced, |_, slot, v| {
        if v == max[slot] && !skipped[slot] && max[slot].is_finite() {
            skipped[slot] = true;
        } else {
            rest[slot] += wide(rules::Exp.func(v - shift[slot]));
        }
    });
    let logs = rest
        .iter()
        .zip(&skipped)
        .map(|(&r, &skipped)| {
            narrow(if skipped {
                r.ln_1p()
            } else {
                rules::Ln.func(r)
            })
        })
        .collect();
    (shift, logs)
}

/// `exp(x - m) / sum(exp(x - m))` over the reduced axes of each slot, `m` the slot's maximum:
/// softmax over several axes, with each exponential computed once.
///
/// Where `m` is infinite, the weights are the limit along the maximum's ties: 1 shared
/// equally among the entries equal to `m`, 0 elsewhere (`[inf, 1]` gives `[1, 0]`, the limit
/// as the first entry grows; `[inf, inf, 1]` gives `[1/2, 1/2, 0]`; `[-inf, -inf]`, where
/// every entry ties at the maximum, `[1/2, 1/2]`, the limit of `[t, t]` as `t` falls). There
/// logsumexp equals the maximum, and these are the maximum's derivative with ties shared
/// equally (as [`MaxAxes`]), so the weights still sum to 1 (the derivative of
/// `logsumexp(x + c) = logsumexp(x) + c`). `exp(x - m)` is NaN there (`inf - inf`), which
/// JAX's logsumexp and softmax (`jax/_src/ops/special.py`, `jax/_src/nn/functions.py`) return
/// as they are. A NaN in the slot still makes every weight NaN.
fn softmax_over<T: Element>(x: &Tensor<T>, reduced: &[bool]) -> Tensor<T> {
    let max = fold(x.as_slice(), x.shape(), reduced, T::neg_infinity(), max_nan);
    let mut data = buffers::filled(x.len(), T::zero());
    // Added in f64 (see [`kernels::wide`]).
    let mut sums = vec![0.0_f64; max.len()];
    for_each_slot(x.as_slice(), x.shape(), reduced, |flat, slot, v| {
        let m = max[slot];
        data[flat] = if m.is_infinite() {
            if v == m {
                T::one()
            } else {
                T::zero()
            }
        } else {
            rules::Exp.func(v - m)
        };
        sums[slot] += wide(data[flat]);
    });
    let sums: Vec<T> = sums.into_iter().map(narrow).collect();
    for_each_slot(x.as_slice(), x.shape(), reduced, |flat, slot, _| {
        data[flat] /= sums[slot];
    });
    Tensor::from_parts(data, x.shape().to_vec())
}

/// The JVP of softmax over `axes` with output `y`: `y (t - sum(t y))`, one operation
/// ([`SoftmaxJvp`](super::SoftmaxJvp)). The Jacobian `diag(y) - y y^T` is symmetric, so it is
/// the VJP too.
fn softmax_jvp<A: Array>(axes: &[usize], y: &A, t: &A) -> Result<A, Error> {
    let op = super::SoftmaxJvp {
        axes: axes.to_vec(),
    };
    A::apply(&op, &[y, t])
}

/// Softmax over several axes ([`softmax_over`]): the weights of [`LogSumExp`]'s derivative,
/// computed from `x - max` rather than as `exp(x - logsumexp(x))`, whose rounded logsumexp
/// loses `|x| eps` (0.49989 for 0.5 in f32 at `x = [1e4, 1e4]`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SoftmaxAxes {
    axes: Vec<usize>,
}

impl Op for SoftmaxAxes {
    fn name(&self) -> &'static str {
        "softmax_axes"
    }

    const VJP_READS: VjpReads = VjpReads::OUTPUT;

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(&SoftmaxAxes { axes }, x)
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &self.axes, x.shape())?;
        Ok(softmax_over(x, &reduced))
    }

    fn jvp<A: Array>(&self, _: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| softmax_jvp(&self.axes, y, t)).transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(softmax_jvp(&self.axes, y, ct)?)])
    }
}

/// A cotangent of a reduction's result reshaped to the keepdims shape, so that it broadcasts
/// against the input.
fn ct_keep<A: Array>(ct: &A, keep: &[usize]) -> Result<A, Error> {
    if ct.shape() == keep {
        Ok(ct.clone())
    } else {
        ct.try_reshape(keep)
    }
}

macro_rules! axes_op {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The axes reduced over (an empty list reduces over none).
            pub axes: Vec<usize>,
            /// Whether the reduced axes stay in the result, with length 1.
            pub keepdims: bool,
        }
    };
}

axes_op! {
    /// The sum over axes; VJP: the cotangent broadcast back over the reduced axes.
    ///
    /// ```
    /// use perturb::tensor::{ops::SumAxes, Op, Tensor};
    /// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
    /// let y = SumAxes { axes: vec![1], keepdims: false }.eval(&[&x]).unwrap();
    /// assert_eq!(y.to_vec(), vec![6.0, 15.0]);
    /// ```
    SumAxes
}

impl Op for SumAxes {
    fn name(&self) -> &'static str {
        "sum_axes"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(
            &SumAxes {
                axes,
                keepdims: self.keepdims,
            },
            x,
        )
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &self.axes, x.shape())?;
        let keep = keep_shape(x.shape(), &reduced);
        Ok(Tensor::from_parts(
            kernels::sum_to(x.as_slice(), x.shape(), &keep),
            out_shape(x.shape(), &reduced, self.keepdims),
        ))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let reduced = check_axes(self.name(), &self.axes, x[0].shape())?;
        let keep = keep_shape(x[0].shape(), &reduced);
        Ok(vec![Some(
            ct_keep(ct, &keep)?.try_broadcast_to(x[0].shape())?,
        )])
    }
}

axes_op! {
    /// The mean over axes (NaN over an empty axis), finite wherever it fits even if the sum
    /// overflows (such slots are summed again with each element divided first); VJP: the
    /// cotangent broadcast back and divided by the number of elements averaged.
    ///
    /// ```
    /// use perturb::tensor::{ops::MeanAxes, Op, Tensor};
    /// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let y = MeanAxes { axes: vec![0], keepdims: true }.eval(&[&x]).unwrap();
    /// assert_eq!((y.shape(), y.to_vec()), (&[1, 2][..], vec![2.0, 3.0]));
    /// ```
    MeanAxes
}

impl Op for MeanAxes {
    fn name(&self) -> &'static str {
        "mean_axes"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(
            &MeanAxes {
                axes,
                keepdims: self.keepdims,
            },
            x,
        )
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &self.axes, x.shape())?;
        let keep = keep_shape(x.shape(), &reduced);
        let count: T = elem(reduced_count(x.shape(), &reduced) as f64);
        let mut data = kernels::sum_to(x.as_slice(), x.shape(), &keep);
        let mut overflowed = false;
        for v in &mut data {
            *v /= count;
            overflowed |= !v.is_finite();
        }
        if overflowed && count > T::zero() {
            // A sum overflowed (or an element is not finite): there, each element divided
            // first, so that a mean that fits is not lost to the sum's overflow (as
            // avg_pool2d). Only then: the common case pays one test per slot.
            let scaled = fold(x.as_slice(), x.shape(), &reduced, T::zero(), |acc, v| {
                acc + v / count
            });
            for (v, s) in data.iter_mut().zip(scaled) {
                if !v.is_finite() {
                    *v = s;
                }
            }
        }
        Ok(Tensor::from_parts(
            data,
            out_shape(x.shape(), &reduced, self.keepdims),
        ))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let reduced = check_axes(self.name(), &self.axes, x[0].shape())?;
        let keep = keep_shape(x[0].shape(), &reduced);
        let count = reduced_count(x[0].shape(), &reduced) as f64;
        let back = ct_keep(ct, &keep)?.try_broadcast_to(x[0].shape())?;
        Ok(vec![Some(back.scale(A::elem(1.0 / count)))])
    }
}

/// The value of a max or min reduction; an error over an empty axis (unless the result is
/// empty too).
fn extremum<T: Element>(
    op: &'static str,
    axes: &[usize],
    keepdims: bool,
    inputs: &[&Tensor<T>],
    init: T,
    f: fn(T, T) -> T,
) -> Result<Tensor<T>, Error> {
    let x = unary(op, inputs)?;
    let reduced = check_axes(op, axes, x.shape())?;
    let out = out_shape(x.shape(), &reduced, keepdims);
    if reduced_count(x.shape(), &reduced) == 0 && out.iter().product::<usize>() > 0 {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "cannot reduce over the empty axes {axes:?} of a tensor of shape {:?}",
                x.shape()
            ),
        });
    }
    Ok(Tensor::from_parts(
        fold(x.as_slice(), x.shape(), &reduced, init, f),
        out,
    ))
}

/// The VJP of a max or min reduction: the cotangent goes to the positions that attain the
/// extremum, split evenly among ties.
/// The JVP of a maximum or minimum: the tangent at the positions of the extremum (averaged
/// among ties), the transpose of [`extremum_vjp`].
fn extremum_jvp<A: Array>(
    op: &'static str,
    axes: &[usize],
    keepdims: bool,
    x: &A,
    y: &A,
    t: Option<&A>,
) -> Result<Option<A>, Error> {
    let Some(t) = t else { return Ok(None) };
    let reduced = check_axes(op, axes, x.shape())?;
    let keep = keep_shape(x.shape(), &reduced);
    let mask = ArgmaxMask {
        axes: axes.to_vec(),
    };
    let share = A::apply(&mask, &[x, &ct_keep(y, &keep)?])?;
    Ok(Some(share.try_mul(t)?.try_sum_axes(axes, keepdims)?))
}

fn extremum_vjp<A: Array>(
    op: &'static str,
    axes: &[usize],
    x: &A,
    y: &A,
    ct: &A,
) -> Result<Vec<Option<A>>, Error> {
    let reduced = check_axes(op, axes, x.shape())?;
    let keep = keep_shape(x.shape(), &reduced);
    let share = A::apply(
        &ArgmaxMask {
            axes: axes.to_vec(),
        },
        &[x, &ct_keep(y, &keep)?],
    )?;
    Ok(vec![Some(share.try_mul(&ct_keep(ct, &keep)?)?)])
}

axes_op! {
    /// The maximum over axes (NaN if any reduced element is); VJP: the cotangent routed to the
    /// positions of the maximum, split evenly among ties (none where the maximum is NaN).
    ///
    /// ```
    /// use perturb::tensor::{ops::MaxAxes, Op, Tensor};
    /// let x = Tensor::from_vec(vec![1.0_f64, 5.0, 3.0, 4.0], &[2, 2]).unwrap();
    /// let op = MaxAxes { axes: vec![1], keepdims: false };
    /// let y = op.eval(&[&x]).unwrap();
    /// assert_eq!(y.to_vec(), vec![5.0, 4.0]);
    /// let ct = op.vjp(&[&x], &y, &Tensor::vector(&[1.0, 2.0]), &[true]).unwrap();
    /// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![0.0, 1.0, 0.0, 2.0]);
    /// ```
    MaxAxes
}

impl Op for MaxAxes {
    fn name(&self) -> &'static str {
        "max_axes"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(
            &MaxAxes {
                axes,
                keepdims: self.keepdims,
            },
            x,
        )
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        extremum(
            self.name(),
            &self.axes,
            self.keepdims,
            inputs,
            T::neg_infinity(),
            max_nan,
        )
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        extremum_jvp(self.name(), &self.axes, self.keepdims, x[0], y, t[0])
    }

    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        extremum_vjp(self.name(), &self.axes, x[0], y, ct)
    }
}

axes_op! {
    /// The minimum over axes (NaN if any reduced element is); VJP: the cotangent routed to the
    /// positions of the minimum, split evenly among ties (none where the minimum is NaN).
    ///
    /// ```
    /// use perturb::tensor::{ops::MinAxes, Op, Tensor};
    /// let x = Tensor::vector(&[2.0_f64, 1.0, 1.0]);
    /// let op = MinAxes { axes: vec![0], keepdims: false };
    /// let y = op.eval(&[&x]).unwrap();
    /// assert_eq!(y.to_vec(), vec![1.0]);
    /// // A tie: each minimum gets half.
    /// let ct = op.vjp(&[&x], &y, &Tensor::scalar(1.0), &[true]).unwrap();
    /// assert_eq!(ct[0].as_ref().unwrap().to_vec(), vec![0.0, 0.5, 0.5]);
    /// ```
    MinAxes
}

impl Op for MinAxes {
    fn name(&self) -> &'static str {
        "min_axes"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(
            &MinAxes {
                axes,
                keepdims: self.keepdims,
            },
            x,
        )
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        extremum(
            self.name(),
            &self.axes,
            self.keepdims,
            inputs,
            T::infinity(),
            min_nan,
        )
    }

    fn jvp<A: Array>(&self, x: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        extremum_jvp(self.name(), &self.axes, self.keepdims, x[0], y, t[0])
    }

    fn vjp<A: Array>(&self, x: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        extremum_vjp(self.name(), &self.axes, x[0], y, ct)
    }
}

/// The share of a max or min reduction's cotangent each input element gets: inputs `x` and the
/// extremum `m` in the keepdims shape; `1 / ties` where `x` equals `m`, 0 elsewhere, and 0
/// everywhere in a slot whose extremum is NaN (a comparison decided by a NaN passes no
/// derivative, as for `maximum`). Piecewise constant, so not differentiated (VJP `None`).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ArgmaxMask {
    axes: Vec<usize>,
}

impl Op for ArgmaxMask {
    fn name(&self) -> &'static str {
        "argmax_mask"
    }

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let x = batched::all_stacked(x, stacked, size)?;
        let axes = batched::shift_axes(&self.axes);
        A::apply(&ArgmaxMask { axes }, &[&x[0], &x[1]])
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let [x, m] = inputs else {
            return Err(Error::Arity {
                op: self.name(),
                expected: 2,
                found: inputs.len(),
            });
        };
        let reduced = check_axes(self.name(), &self.axes, x.shape())?;
        if m.shape() != keep_shape(x.shape(), &reduced) {
            return Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: x.shape().to_vec(),
                rhs: m.shape().to_vec(),
            });
        }
        let m = m.as_slice();
        let hit = |v: T, slot: usize| v == m[slot];
        let mut ties = vec![0usize; m.len()];
        for_each_slot(x.as_slice(), x.shape(), &reduced, |_, slot, v| {
            if hit(v, slot) {
                ties[slot] += 1;
            }
        });
        let mut share = buffers::filled(x.len(), T::zero());
        for_each_slot(x.as_slice(), x.shape(), &reduced, |flat, slot, v| {
            if hit(v, slot) {
                share[flat] = T::one() / elem::<T>(ties[slot] as f64);
            }
        });
        Ok(Tensor::from_parts(share, x.shape().to_vec()))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None, None])
    }
}

axes_op! {
    /// `ln(sum(exp(x)))` over axes, computed as `m + ln(sum(exp(x - m)))` with `m` the maximum,
    /// so it neither overflows nor underflows for large `|x|`, and with `ln_1p` for a nearly
    /// certain slot; VJP: the cotangent times the softmax, computed as `exp(x - m) / sum`.
    ///
    /// ```
    /// use perturb::tensor::{ops::LogSumExp, Op, Tensor};
    /// let x = Tensor::vector(&[1000.0_f64, 1000.0]);
    /// let y = LogSumExp { axes: vec![0], keepdims: false }.eval(&[&x]).unwrap();
    /// // ln(2 e^1000) = 1000 + ln 2
    /// assert_eq!(y.to_vec(), vec![1000.0 + 2.0_f64.ln()]);
    /// ```
    LogSumExp
}

impl Op for LogSumExp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let axes = batched::shift_axes(&self.axes);
        A::apply(
            &LogSumExp {
                axes,
                keepdims: self.keepdims,
            },
            x,
        )
    }

    batch_trailing_over!(axes);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &self.axes, x.shape())?;
        let (shift, logs) = logsumexp_parts(x.as_slice(), x.shape(), &reduced);
        let data = shift.iter().zip(&logs).map(|(&m, &l)| m + l).collect();
        Ok(Tensor::from_parts(
            data,
            out_shape(x.shape(), &reduced, self.keepdims),
        ))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        let softmax = self.weights(x[0])?;
        Ok(Some(
            softmax
                .try_mul(t)?
                .try_sum_axes(&self.axes, self.keepdims)?,
        ))
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let reduced = check_axes(self.name(), &self.axes, x[0].shape())?;
        let keep = keep_shape(x[0].shape(), &reduced);
        let softmax = self.weights(x[0])?;
        Ok(vec![Some(softmax.try_mul(&ct_keep(ct, &keep)?)?)])
    }
}

impl LogSumExp {
    /// The derivative's weights, the softmax of `x` over the axes, as a differentiable
    /// operation ([`SoftmaxAxes`]) so that second derivatives follow.
    fn weights<A: Array>(&self, x: &A) -> Result<A, Error> {
        A::apply(
            &SoftmaxAxes {
                axes: self.axes.clone(),
            },
            &[x],
        )
    }
}

/// `exp(x) / sum(exp(x))` along an axis, computed with the maximum subtracted; VJP
/// `y * (ct - sum(ct * y, axis))`.
///
/// ```
/// use perturb::tensor::{ops::Softmax, Op, Tensor};
/// let x = Tensor::vector(&[0.0_f64, 0.0, 0.0, 0.0]);
/// assert_eq!(Softmax { axis: 0 }.eval(&[&x]).unwrap().to_vec(), vec![0.25; 4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// The axis normalized along.
    pub axis: usize,
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        A::apply(
            &Softmax {
                axis: self.axis + 1,
            },
            x,
        )
    }

    batch_trailing_over!([axis]);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &[self.axis], x.shape())?;
        Ok(softmax_over(x, &reduced))
    }

    fn jvp<A: Array>(&self, _: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| softmax_jvp(&[self.axis], y, t)).transpose()
    }

    fn vjp<A: Array>(&self, _: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(softmax_jvp(&[self.axis], y, ct)?)])
    }
}

/// `x - logsumexp(x)` along an axis, finite for large `|x|`; VJP
/// `ct - softmax(x) * sum(ct, axis)`, with `softmax(x) = exp(y)`.
///
/// ```
/// use perturb::tensor::{ops::LogSoftmax, Op, Tensor};
/// let x = Tensor::vector(&[1000.0_f64, 1000.0]);
/// let y = LogSoftmax { axis: 0 }.eval(&[&x]).unwrap();
/// // ln(1/2) each
/// assert_eq!(y.to_vec(), vec![-(2.0_f64.ln()); 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSoftmax {
    /// The axis normalized along.
    pub axis: usize,
}

impl Op for LogSoftmax {
    fn name(&self) -> &'static str {
        "log_softmax"
    }

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        A::apply(
            &LogSoftmax {
                axis: self.axis + 1,
            },
            x,
        )
    }

    batch_trailing_over!([axis]);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        let reduced = check_axes(self.name(), &[self.axis], x.shape())?;
        let (shift, logs) = logsumexp_parts(x.as_slice(), x.shape(), &reduced);
        let mut data = buffers::filled(x.len(), T::zero());
        for_each_slot(x.as_slice(), x.shape(), &reduced, |flat, slot, v| {
            data[flat] = (v - shift[slot]) - logs[slot];
        });
        Ok(Tensor::from_parts(data, x.shape().to_vec()))
    }

    fn jvp<A: Array>(&self, _: &[&A], y: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        let Some(t) = t[0] else { return Ok(None) };
        let mean = y.exp().try_mul(t)?.try_sum_axes(&[self.axis], true)?;
        Ok(Some(t.try_sub(&mean)?))
    }

    fn vjp<A: Array>(&self, _: &[&A], y: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let total = ct.try_sum_axes(&[self.axis], true)?;
        Ok(vec![Some(ct.try_sub(&y.exp().try_mul(&total)?)?)])
    }
}
