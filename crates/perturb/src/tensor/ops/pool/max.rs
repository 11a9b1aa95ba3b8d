//! Max pooling as where the maxima are and a routing through them, PyTorch's
//! `max_pool2d_with_indices` and its backward:
//! - [`MaxPool2dIndex`] finds each window's maximum and gives its position as a tensor of
//!   offsets (piecewise constant: no derivative);
//! - [`MaxPool2d`] reads the input at those offsets (a gather, linear in the input); its VJP is
//!   [`MaxPool2dScatter`], which adds each cotangent at its offset, and the scatter's VJP is
//!   the gather again, so every order works.
//!
//! The index is an input of the routing operations, not a value cached inside them: under
//! `vmap` it is stacked with the input, and a second-order rule reads the same tensor. Only the
//! forward compares elements; the backward adds without searching.
//!
//! An offset counts from the window's first element inside the input, in the input's rows:
//! `r * W + c` for row `r` and column `c` of the window (its padding left out), so that reading
//! it is one addition. The position among ties is PyTorch's: the first maximum in row-major
//! order, or the first NaN in a window with one.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    fold_stack, geometry, geometry_back, mismatch, pair, per_plane, pooled_shape, Geometry, Pool2d,
};
use crate::error::Error;
use crate::tensor::ops::{elem, unary};
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

/// Where each window's maximum is (the result has the pooled shape): its offset from the
/// window's first element inside the input, `r * W + c` (row `r`, column `c` of the window,
/// the padding left out), as a whole number of the element type. Not differentiable (a maximum's position is piecewise constant):
/// its JVP and VJP are zero. [`MaxPool2d`] reads the input at these offsets.
///
/// An error names `max_pool2d_index` where the offsets could pass the whole numbers the element
/// type holds exactly (`f32`: 2^24, reached only by windows of `kh` rows over an input wider
/// than `2^24 / (kh - 1)`).
///
/// ```
/// use perturb::tensor::conv::Pool2d;
/// use perturb::tensor::{ops::MaxPool2dIndex, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 4.0, 2.0, 3.0, 0.0, 0.0, 5.0, 5.0], &[1, 2, 4]).unwrap();
/// let index = MaxPool2dIndex { pool: Pool2d::new([2, 2]) }.eval(&[&x]).unwrap();
/// // The 4 is at row 0, column 1 of its window; the first 5 at row 1, column 0 (W = 4).
/// assert_eq!(index.to_vec(), vec![1.0, 4.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dIndex {
    /// The window.
    pub pool: Pool2d,
}

impl Op for MaxPool2dIndex {
    fn name(&self) -> &'static str {
        "max_pool2d_index"
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
        // The last element of the tallest and widest window inside the input.
        let [kh, kw] = [self.pool.kernel[0].min(g.h), self.pool.kernel[1].min(g.w)];
        let last = (kh - 1).saturating_mul(g.w).saturating_add(kw - 1);
        if last as f64 > 2.0 / T::epsilon().to_f64_value() {
            return Err(Error::InvalidArgument {
                op: self.name(),
                reason: format!(
                    "offsets in windows of {:?} over an input of shape {:?} reach {last}, past \
                     the whole numbers {} holds exactly",
                    self.pool.kernel,
                    x.shape(),
                    std::any::type_name::<T>()
                ),
            });
        }
        // Each element's offset in a window inside the input (at most the input's size).
        let codes: Vec<T> = if self.pool.padding == [0, 0] {
            (0..kh)
                .flat_map(|r| (0..kw).map(move |c| code(r * g.w + c)))
                .collect()
        } else {
            Vec::new()
        };
        let g = g.tiled();
        let data = per_plane(g.planes, g.out_plane(), g.work(&self.pool), |p, out| {
            argmax_plane(&g, &self.pool, &codes, g.plane(x.as_slice(), p), out)
        });
        Ok(Tensor::from_parts(data, g.out_shape))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, _: &[Option<&A>]) -> Result<Option<A>, Error> {
        Ok(None)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, _: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![None])
    }
}

/// An offset as an element.
fn code<T: Element>(offset: usize) -> T {
    elem(offset as f64)
}

/// The offsets of the maxima of `plane`'s windows, into `out` (in the output's order); `codes`
/// as [`argmax_unpadded`] reads them, for windows without padding.
fn argmax_plane<T: Element>(g: &Geometry, pool: &Pool2d, codes: &[T], plane: &[T], out: &mut [T]) {
    if pool.padding == [0, 0] {
        // The common kernels get loops of their own, unrolled.
        let (stride, out) = (pool.stride, out);
        return match pool.kernel {
            [2, 2] if stride == [2, 2] => argmax_2x2(plane, g, codes, out),
            [2, 2] => argmax_unpadded(plane, g, codes, [2, 2], stride, out),
            [3, 3] => argmax_unpadded(plane, g, codes, [3, 3], stride, out),
            kernel => argmax_unpadded(plane, g, codes, kernel, stride, out),
        };
    }
    let w = g.w;
    let mut out = out.iter_mut();
    for rows in g.rows.iter() {
        for cols in g.cols.iter() {
            let (mut best, mut max) = (0, plane[rows.start * w + cols.start]);
            for (r, i) in rows.clone().enumerate() {
                let line = &plane[i * w + cols.start..i * w + cols.end];
                for (c, &v) in line.iter().enumerate() {
                    if takes(v, max) {
                        (best, max) = (r * w + c, v);
                    }
                }
            }
            *out.next().expect("one offset per window") = code(best);
        }
    }
}

/// Whether `v` replaces `max` as a window's maximum: it is larger, or the first NaN.
#[inline(always)]
fn takes<T: Element>(v: T, max: T) -> bool {
    v > max || (v.is_nan() && !max.is_nan())
}

/// [`argmax_plane`] for the commonest pooling, 2 x 2 windows at stride 2 without padding: a
/// row of windows at a time, each window's four elements compared by selects rather than
/// branches, so that the windows of a row are independent lanes the compiler vectorises (a
/// branch per element chained each window's compares: about 10 ns a window). Same result as
/// [`argmax_unpadded`], ties and NaN included; `codes` are the offsets `[0, 1, W, W + 1]`.
fn argmax_2x2<T: Element>(plane: &[T], g: &Geometry, codes: &[T], out: &mut [T]) {
    let (w, cols) = (g.w, g.cols.count);
    let [c0, c1, c2, c3] = [codes[0], codes[1], codes[2], codes[3]];
    // The running (offset, maximum) and a contender: `takes` as a select, lane by lane.
    let step = |(best, max): (T, T), v: T, at: T| {
        let t = (v > max) | (v.is_nan() & !max.is_nan());
        (if t { at } else { best }, if t { v } else { max })
    };
    for (rows, out) in plane.chunks_exact(2 * w).zip(out.chunks_exact_mut(cols)) {
        let (top, bottom) = rows.split_at(w);
        let pairs = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        for (o, (a, b)) in out.iter_mut().zip(pairs) {
            let m = step((c0, a[0]), a[1], c1);
            let m = step(m, b[0], c2);
            *o = step(m, b[1], c3).0;
        }
    }
}

/// [`argmax_plane`] for windows inside the input (no padding), each read straight from its
/// first element; inlined so that a constant `kernel` unrolls the window. `codes` are the
/// offsets of a window's elements, made elements once rather than converted per window.
#[inline(always)]
fn argmax_unpadded<T: Element>(
    plane: &[T],
    g: &Geometry,
    codes: &[T],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    out: &mut [T],
) {
    let w = g.w;
    for (oy, out) in out.chunks_exact_mut(g.cols.count).enumerate() {
        for (ox, o) in out.iter_mut().enumerate() {
            let start = oy * sh * w + ox * sw;
            let (mut best, mut max) = (codes[0], plane[start]);
            for r in 0..kh {
                let (line, codes) = (&plane[start + r * w..][..kw], &codes[r * kw..][..kw]);
                for (&v, &at) in line.iter().zip(codes) {
                    if takes(v, max) {
                        (best, max) = (at, v);
                    }
                }
            }
            *o = best;
        }
    }
}

/// Where each window of a plane of `g` starts: the offset in the plane of its first element
/// inside the input, in the output's order (what an index's offsets count from). Computed once
/// per call for [`each_position`], which the planes share; as long as a plane of the result,
/// so only for a batch that has one.
fn window_starts(g: &Geometry, pool: &Pool2d) -> Vec<usize> {
    let ([sh, sw], [ph, pw]) = (pool.stride, pool.padding);
    (0..g.rows.count)
        .flat_map(|oy| {
            let top = (oy * sh).saturating_sub(ph) * g.w;
            (0..g.cols.count).map(move |ox| top + (ox * sw).saturating_sub(pw))
        })
        .collect()
}

/// `f(o, i)` for each window `o` of one plane (`starts` from [`window_starts`]) and the
/// position `i` in the plane its offset in `index` (that plane's offsets) points to; `Err(o)`
/// at the first offset that is not a whole number or leaves the plane (`len` elements).
fn each_position<T: Element>(
    starts: &[usize],
    len: usize,
    index: &[T],
    mut f: impl FnMut(usize, usize),
) -> Result<(), usize> {
    for (o, (&code, &start)) in index.iter().zip(starts).enumerate() {
        let v = code.to_f64_value();
        // Signed, whose conversions are one instruction each way: a NaN becomes 0, unequal
        // to `v` once converted back, and a value past `isize` saturates, past the plane.
        let offset = v as isize;
        let i = start.saturating_add_signed(offset);
        if offset as f64 != v || offset < 0 || i >= len {
            return Err(o);
        }
        f(o, i);
    }
    Ok(())
}

/// The error for an index holding something other than an offset inside the input: the first
/// such value, found again.
fn bad_index<T: Element>(op: &'static str, g: &Geometry, pool: &Pool2d, index: &[T]) -> Error {
    let starts = window_starts(g, pool);
    let (plane, o) = (0..g.planes)
        .find_map(|p| {
            let plane = &index[p * g.out_plane()..(p + 1) * g.out_plane()];
            each_position(&starts, g.in_plane(), plane, |_, _| {})
                .err()
                .map(|o| (p, o))
        })
        .unwrap_or((0, 0));
    Error::InvalidArgument {
        op,
        reason: format!(
            "the index holds {} at window {o} of plane {plane}, not a whole-number offset inside \
             the input of shape {:?} (offsets count from each window's first element, r * W + c)",
            index[plane * g.out_plane() + o],
            g.in_shape()
        ),
    }
}

/// The input at each window's offset: inputs `x` and `index` (the pooled shape, offsets as
/// [`MaxPool2dIndex`] gives them), so that with the index of `x` it is the maximum of each
/// window (`torch.nn.functional.max_pool2d`: the padding never wins, a window holding a NaN
/// gives NaN). Linear in `x`; JVP: the tangent at the same offsets; VJP: the cotangent added at
/// them (a scatter, whose own VJP is this gather). The index has no derivative. An error names
/// `max_pool2d` for an index of another shape or holding something other than an offset inside
/// the input.
///
/// ```
/// use perturb::tensor::conv::Pool2d;
/// use perturb::tensor::{ops::{MaxPool2d, MaxPool2dIndex}, Op, Tensor};
/// let x = Tensor::from_vec((0..16).map(f64::from).collect(), &[1, 1, 4, 4]).unwrap();
/// let pool = Pool2d::new([2, 2]);
/// let index = MaxPool2dIndex { pool }.eval(&[&x]).unwrap();
/// let op = MaxPool2d { pool };
/// let y = op.eval(&[&x, &index]).unwrap();
/// assert_eq!((y.shape(), y.to_vec()), (&[1, 1, 2, 2][..], vec![5.0, 7.0, 13.0, 15.0]));
/// let ct = op.vjp(&[&x, &index], &y, &Tensor::ones(&[1, 1, 2, 2]), &[true, false]).unwrap();
/// let g = ct[0].as_ref().unwrap().to_vec();
/// assert_eq!((g[5], g[7], g[13], g[15], g.iter().sum::<f64>()), (1.0, 1.0, 1.0, 1.0, 4.0));
/// assert!(op.eval(&[&x, &Tensor::full(&[1, 1, 2, 2], 0.5)]).is_err()); // not a whole number
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// The window.
    pub pool: Pool2d,
}

impl Op for MaxPool2d {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        fold_stack(self, x, stacked, size)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [x, index] = inputs else { return None };
        let g = geometry(self.name(), &self.pool, x).ok()?;
        (g.out_shape == *index).then_some(g.out_shape)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (x, index) = pair(self.name(), inputs)?;
        let g = geometry(self.name(), &self.pool, x.shape())?;
        if index.shape() != g.out_shape {
            return Err(mismatch(self.name(), x.shape(), index.shape()));
        }
        let (xs, is) = (x.as_slice(), index.as_slice());
        let (g0, g) = (&g, g.tiled());
        // None for an empty batch, whose planes may be huge (and the table as long).
        let starts = if g.planes == 0 {
            Vec::new()
        } else {
            window_starts(&g, &self.pool)
        };
        let bad = AtomicBool::new(false);
        let data = per_plane(
            g.planes,
            g.out_plane(),
            g.out_plane() * g.planes,
            |p, out| {
                let plane = g.plane(xs, p);
                let index = &is[p * g.out_plane()..(p + 1) * g.out_plane()];
                if each_position(&starts, g.in_plane(), index, |o, i| out[o] = plane[i]).is_err() {
                    bad.store(true, Ordering::Relaxed);
                }
            },
        );
        if bad.into_inner() {
            return Err(bad_index(self.name(), g0, &self.pool, is));
        }
        Ok(Tensor::from_parts(data, g.out_shape))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[0].map(|t| A::apply(self, &[t, x[1]])).transpose()
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let dx = if needed[0] {
            let shape = x[0].shape();
            let scatter = MaxPool2dScatter {
                pool: self.pool,
                hw: [shape[shape.len() - 2], shape[shape.len() - 1]],
            };
            Some(A::apply(&scatter, &[x[1], ct])?)
        } else {
            None
        };
        Ok(vec![dx, None])
    }
}

/// [`MaxPool2d`]'s VJP: inputs `index` and a cotangent `c`, both of the pooled shape; zeros of
/// the input's shape (`[.., H, W]`, `hw` its last two lengths) with each element of `c` added
/// at its window's offset. Linear in `c`, VJP: [`MaxPool2d`]; the index has no derivative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct MaxPool2dScatter {
    pool: Pool2d,
    /// The input's spatial size.
    hw: [usize; 2],
}

impl MaxPool2dScatter {
    fn geometry(&self, shape: &[usize]) -> Result<Geometry, Error> {
        geometry_back(self.name(), &self.pool, self.hw, shape)
    }
}

impl Op for MaxPool2dScatter {
    fn name(&self) -> &'static str {
        "max_pool2d_scatter"
    }

    const VJP_READS: VjpReads = VjpReads::OTHER_INPUTS;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        fold_stack(self, x, stacked, size)
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let [index, c] = inputs else { return None };
        let g = self.geometry(c).ok()?;
        (index == c).then(|| g.in_shape())
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let (index, c) = pair(self.name(), inputs)?;
        let g = self.geometry(c.shape())?;
        if index.shape() != c.shape() {
            return Err(mismatch(self.name(), index.shape(), c.shape()));
        }
        let (cs, is) = (c.as_slice(), index.as_slice());
        let (g0, g) = (&g, g.tiled());
        // None for an empty batch, whose planes may be huge (and the table as long).
        let starts = if g.planes == 0 {
            Vec::new()
        } else {
            window_starts(&g, &self.pool)
        };
        let bad = AtomicBool::new(false);
        let data = per_plane(
            g.planes,
            g.in_plane(),
            g.out_plane() * g.planes,
            |p, out| {
                let ct = &cs[p * g.out_plane()..(p + 1) * g.out_plane()];
                let index = &is[p * g.out_plane()..(p + 1) * g.out_plane()];
                if each_position(&starts, g.in_plane(), index, |o, i| out[i] += ct[o]).is_err() {
                    bad.store(true, Ordering::Relaxed);
                }
            },
        );
        if bad.into_inner() {
            return Err(bad_index(self.name(), g0, &self.pool, is));
        }
        Ok(Tensor::from_parts(data, g0.in_shape()))
    }

    fn jvp<A: Array>(&self, x: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        t[1].map(|t| A::apply(self, &[x[0], t])).transpose()
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let dc = if needed[1] {
            Some(A::apply(&MaxPool2d { pool: self.pool }, &[ct, x[0]])?)
        } else {
            None
        };
        Ok(vec![None, dc])
    }
}
