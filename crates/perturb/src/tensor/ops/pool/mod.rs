//! Pooling over the last two axes of NCHW input: `max_pool2d` and `avg_pool2d`, each with its
//! value, JVP, VJP and batching rule, and the routing operations their derivative rules are
//! written with.
//!
//! The input is `[N, C, H, W]` (a batch of images) or `[C, H, W]` (one image); every leading
//! plane is pooled alone. A [`Pool2d`] gives the kernel, the stride (by default the kernel)
//! and the padding, added on both sides of each spatial axis as in PyTorch, at most half the
//! kernel so that every window holds at least one element of the input. The output is
//! `[.., OH, OW]` with `OH = (H + 2 ph - kh) / sh + 1` (rounded down, as PyTorch's default
//! `ceil_mode=False`), and likewise `OW`.
//!
//! The derivative rules are linear maps written as operations of their own, so they are
//! themselves differentiable (order two and up):
//! - max pool is where each window's maximum is ([`MaxPool2dIndex`], an index
//!   tensor) and a gather of the input at those positions ([`MaxPool2d`]), whose VJP is the
//!   adjoint scatter, as PyTorch's `max_pool2d_with_indices` and its backward; the position
//!   among ties is PyTorch's (the first maximum). Its JVP picks the tangent at each maximum, as
//!   JAX's `_reduce_window_chooser_jvp_rule` does (`jax/_src/lax/windowed_reductions.py`);
//! - avg pool is linear: its JVP is avg pool of the tangent, its VJP spreads each
//!   cotangent evenly over its window (an operation whose own VJP is avg pool again),
//!   PyTorch's `avg_pool2d_backward`.

mod avg;
mod max;

use std::ops::Range;

use rayon::prelude::*;

use crate::error::Error;
use crate::tensor::dense::element_count;
use crate::tensor::kernels::Cost;
use crate::tensor::op::or_panic;
use crate::tensor::{batched, buffers, Array, Element, Op};

pub use avg::AvgPool2d;
pub use max::{MaxPool2d, MaxPool2dIndex};

/// The window of a 2-D pooling: kernel, stride and padding along (H, W).
///
/// ```
/// use perturb::tensor::conv::Pool2d;
/// let pool = Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1]);
/// assert_eq!(pool.output_shape(&[8, 4, 28, 28]).unwrap(), vec![8, 4, 14, 14]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// The window's height and width (each at least 1).
    pub kernel: [usize; 2],
    /// The step between windows along H and W (each at least 1).
    pub stride: [usize; 2],
    /// Rows and columns of padding added on both sides of H and W, each at most half the
    /// kernel along its axis.
    pub padding: [usize; 2],
}

impl Pool2d {
    /// Windows of `kernel`, side by side (stride = kernel), no padding.
    ///
    /// ```
    /// use perturb::tensor::conv::Pool2d;
    /// let pool = Pool2d::new([2, 2]);
    /// assert_eq!((pool.stride, pool.padding), ([2, 2], [0, 0]));
    /// ```
    pub fn new(kernel: [usize; 2]) -> Self {
        Pool2d {
            kernel,
            stride: kernel,
            padding: [0, 0],
        }
    }

    /// The same window with this stride.
    ///
    /// ```
    /// use perturb::tensor::conv::Pool2d;
    /// assert_eq!(Pool2d::new([3, 3]).stride([1, 2]).stride, [1, 2]);
    /// ```
    pub fn stride(self, stride: [usize; 2]) -> Self {
        Pool2d { stride, ..self }
    }

    /// The same window with this padding (on both sides of each axis).
    ///
    /// ```
    /// use perturb::tensor::conv::Pool2d;
    /// assert_eq!(Pool2d::new([3, 3]).padding([1, 0]).padding, [1, 0]);
    /// ```
    pub fn padding(self, padding: [usize; 2]) -> Self {
        Pool2d { padding, ..self }
    }

    /// The shape of the pooled result of an input of `shape` (`[N, C, H, W]` or `[C, H, W]`),
    /// or the error pooling it would give (named `pool2d`).
    ///
    /// ```
    /// use perturb::tensor::conv::Pool2d;
    /// assert_eq!(Pool2d::new([2, 3]).output_shape(&[3, 4, 7]).unwrap(), vec![3, 2, 2]);
    /// assert!(Pool2d::new([5, 5]).output_shape(&[1, 1, 4, 4]).is_err()); // the kernel does not fit
    /// ```
    pub fn output_shape(&self, shape: &[usize]) -> Result<Vec<usize>, Error> {
        Ok(geometry("pool2d", self, shape)?.out_shape)
    }
}

/// Where the windows of a pooling fall on an input of a given shape.
#[derive(Clone, Debug)]
struct Geometry {
    /// The number of planes (the product of the leading axes).
    planes: usize,
    /// The input's spatial size.
    h: usize,
    w: usize,
    /// The windows along H and along W.
    rows: Windows,
    cols: Windows,
    /// The result's shape.
    out_shape: Vec<usize>,
}

impl Geometry {
    fn in_plane(&self) -> usize {
        self.h * self.w
    }

    fn out_plane(&self) -> usize {
        self.rows.count * self.cols.count
    }

    /// Elements read in all (at most): where the loops start to pay for rayon's pool.
    fn work(&self, pool: &Pool2d) -> usize {
        (self.planes * self.out_plane())
            .saturating_mul(pool.kernel[0])
            .saturating_mul(pool.kernel[1])
    }

    /// Each window's rows and columns, in the output's (row-major) order.
    fn windows(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        self.rows
            .iter()
            .flat_map(|rows| self.cols.iter().map(move |cols| (rows.clone(), cols)))
    }

    /// Input plane `p` of `data` (of the input's shape).
    fn plane<'a, T>(&self, data: &'a [T], p: usize) -> &'a [T] {
        &data[p * self.in_plane()..(p + 1) * self.in_plane()]
    }

    /// The pooled result: `f(p, rows, cols)` for each window of each plane `p`.
    fn per_window<T: Element>(
        &self,
        pool: &Pool2d,
        f: impl Fn(usize, &Range<usize>, &Range<usize>) -> T + Sync,
    ) -> Vec<T> {
        per_plane(self.planes, self.out_plane(), self.work(pool), |p, out| {
            for (o, (rows, cols)) in out.iter_mut().zip(self.windows()) {
                *o = f(p, &rows, &cols);
            }
        })
    }

    /// The same pooling with planes stacked into taller ones where that changes nothing: no
    /// padding along H and windows that tile it exactly (`H` a multiple of the stride, which
    /// equals the kernel: a 2 x 2 pooling of an 8 x 8 image), so no window straddles two planes
    /// of a stack. The loops then run over a few tall planes, not one short call per plane
    /// (the digits network's 4 x 4 outputs: 16 windows a plane). Stacks of at least 256
    /// windows, as many planes as divide the count evenly, so that a large batch still splits
    /// over rayon's pool. The result's shape (`out_shape`) is unchanged; offsets in the index
    /// count from each window's first element, so they are unchanged too.
    fn tiled(&self) -> Geometry {
        let rows = self.rows;
        let exact =
            rows.padding == 0 && rows.stride == rows.kernel && self.h == rows.count * rows.stride;
        let per_plane = self.out_plane().max(1);
        if !exact || self.planes < 2 || per_plane >= 256 {
            return self.clone();
        }
        let want = 256usize.div_ceil(per_plane).min(self.planes);
        let q = (want..=self.planes)
            .find(|q| self.planes % q == 0)
            .unwrap_or(self.planes);
        let h = self.h * q;
        Geometry {
            planes: self.planes / q,
            h,
            rows: Windows::new(h, rows.kernel, rows.stride, 0),
            ..self.clone()
        }
    }

    /// The shape of an input: the output's leading axes and the spatial size.
    fn in_shape(&self) -> Vec<usize> {
        let lead = &self.out_shape[..self.out_shape.len() - 2];
        lead.iter().copied().chain([self.h, self.w]).collect()
    }
}

/// The windows along one axis of length `n`, each clipped to the input (the padding left
/// out), computed when asked for: an empty batch may have more of them than memory holds.
#[derive(Clone, Copy, Debug)]
struct Windows {
    n: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    /// The number of windows (output positions).
    count: usize,
}

impl Windows {
    /// The windows of a kernel that fits (`n + 2 padding >= kernel`, `2 padding <= kernel`):
    /// `(n + 2 padding - kernel) / stride + 1`, written as `n - (kernel - 2 padding)` so that
    /// no step overflows.
    fn new(n: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        let count = (n - (kernel - 2 * padding)) / stride + 1;
        Windows {
            n,
            kernel,
            stride,
            padding,
            count,
        }
    }

    fn iter(&self) -> impl Iterator<Item = Range<usize>> + '_ {
        (0..self.count).map(|o| {
            let start = o * self.stride;
            let end = start.saturating_add(self.kernel - self.padding).min(self.n);
            start.saturating_sub(self.padding)..end
        })
    }
}

/// Checks a pooling of an input of `shape` and places its windows; the errors name `op`,
/// the shape and the window.
fn geometry(op: &'static str, pool: &Pool2d, shape: &[usize]) -> Result<Geometry, Error> {
    let bad = |reason: String| Error::InvalidArgument { op, reason };
    let Pool2d {
        kernel,
        stride,
        padding,
    } = *pool;
    if !(3..=4).contains(&shape.len()) {
        return Err(bad(format!(
            "the input must be [N, C, H, W] or [C, H, W], got shape {shape:?}"
        )));
    }
    if kernel.contains(&0) || stride.contains(&0) {
        return Err(bad(format!(
            "the kernel {kernel:?} and the stride {stride:?} must be at least 1 (input shape {shape:?})"
        )));
    }
    // `padding > kernel / 2` is `2 padding > kernel` without the product, which can wrap.
    if (0..2).any(|d| padding[d] > kernel[d] / 2) {
        return Err(bad(format!(
            "the padding {padding:?} is more than half the kernel {kernel:?} (input shape {shape:?})"
        )));
    }
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let fits = (0..2).all(|d| [h, w][d] >= kernel[d] - 2 * padding[d]);
    if h == 0 || w == 0 || !fits {
        return Err(bad(format!(
            "the kernel {kernel:?} does not fit in the input of shape {shape:?} padded by {padding:?}"
        )));
    }
    let rows = Windows::new(h, kernel[0], stride[0], padding[0]);
    let cols = Windows::new(w, kernel[1], stride[1], padding[1]);
    let lead = &shape[..shape.len() - 2];
    let out_shape: Vec<usize> = lead
        .iter()
        .copied()
        .chain([rows.count, cols.count])
        .collect();
    element_count(op, &out_shape)?;
    Ok(Geometry {
        planes: lead.iter().product(),
        h,
        w,
        rows,
        cols,
        out_shape,
    })
}

/// Where the windows fall on an input of spatial size `hw` that a cotangent of `shape` (the
/// pooled shape) came from, for the VJPs that go back from the pooled shape to the input's;
/// an error naming `op` if `shape` is not the pooled shape.
fn geometry_back(
    op: &'static str,
    pool: &Pool2d,
    hw: [usize; 2],
    shape: &[usize],
) -> Result<Geometry, Error> {
    let lead = &shape[..shape.len().saturating_sub(2)];
    let input: Vec<usize> = lead.iter().copied().chain(hw).collect();
    let g = geometry(op, pool, &input)?;
    if g.out_shape != shape {
        return Err(mismatch(op, &g.in_shape(), shape));
    }
    Ok(g)
}

/// `planes` planes of `plane_len` elements, from zeros, each written by `fill(p, plane)`; in
/// parallel over the planes when `work` (elements read in all) is large.
fn per_plane<T: Element>(
    planes: usize,
    plane_len: usize,
    work: usize,
    fill: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    // From the buffer pool: a batch's planes are often past the allocator's mmap threshold.
    let mut out = buffers::take(planes * plane_len);
    out.resize(planes * plane_len, T::zero());
    if out.is_empty() {
        return out;
    }
    if work >= Cost::Cheap.parallel_threshold() {
        out.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(p, plane)| fill(p, plane));
    } else {
        for (p, plane) in out.chunks_mut(plane_len).enumerate() {
            fill(p, plane);
        }
    }
    out
}

/// The operation mapped over a stack: the stack folded into the leading (N) axis of a batch
/// of images, or taken as that axis for a stack of single images.
fn fold_stack<O: Op, A: Array>(
    op: &O,
    inputs: &[&A],
    stacked: &[bool],
    size: usize,
) -> Result<A, Error> {
    let xs = batched::all_stacked(inputs, stacked, size)?;
    let rank = xs[0].shape().len();
    if xs.iter().any(|x| x.shape().len() != rank) || !(4..=5).contains(&rank) {
        // Not pooling inputs: the loop reports the error.
        return batched::by_loop(op, inputs, stacked, size);
    }
    if rank == 4 {
        return A::apply(op, &xs.iter().collect::<Vec<_>>());
    }
    let merged = xs
        .iter()
        .map(|x| {
            let s = x.shape();
            x.try_reshape(&[s[0] * s[1], s[2], s[3], s[4]])
        })
        .collect::<Result<Vec<A>, Error>>()?;
    let y = A::apply(op, &merged.iter().collect::<Vec<_>>())?;
    let n = xs[0].shape()[1];
    let shape: Vec<usize> = [size, n]
        .into_iter()
        .chain(y.shape()[1..].iter().copied())
        .collect();
    y.try_reshape(&shape)
}

/// [`Op::output_shape`] of a pooling of one input.
fn pooled_shape(op: &'static str, pool: &Pool2d, inputs: &[&[usize]]) -> Option<Vec<usize>> {
    let [x] = inputs else { return None };
    geometry(op, pool, x).ok().map(|g| g.out_shape)
}

/// The two inputs of a routing operation, or an arity error.
fn pair<'a, T>(op: &'static str, inputs: &[&'a T]) -> Result<(&'a T, &'a T), Error> {
    match inputs {
        [a, b] => Ok((a, b)),
        _ => Err(Error::Arity {
            op,
            expected: 2,
            found: inputs.len(),
        }),
    }
}

/// The error for a second input whose shape does not go with the first's.
fn mismatch(op: &'static str, x: &[usize], other: &[usize]) -> Error {
    Error::ShapeMismatch {
        op,
        lhs: x.to_vec(),
        rhs: other.to_vec(),
    }
}

// ---- The functions -------------------------------------------------------------------------

/// The maximum of each window of `x` (`[N, C, H, W]` or `[C, H, W]`): the padding never wins,
/// a window with a NaN gives NaN, and the derivative goes to the first maximum of each window.
/// It is [`MaxPool2d`] of `x` at [`MaxPool2dIndex`] of `x`: the maxima are found once, and the
/// backward adds at their positions without searching again. An error names `max_pool2d` and
/// the shape for an input of another rank, a zero kernel or stride, padding over half the
/// kernel, or a kernel larger than the padded input.
///
/// ```
/// use perturb::tensor::conv::{try_max_pool2d, Pool2d};
/// use perturb::tensor::Tensor;
/// let x = Tensor::from_vec(vec![1.0_f64, -2.0, 3.0, -4.0], &[1, 1, 2, 2]).unwrap();
/// // 3x3 windows with stride 1 over the input padded by 1: every window holds the 3.
/// let y = try_max_pool2d(&x, Pool2d::new([3, 3]).stride([1, 1]).padding([1, 1])).unwrap();
/// assert_eq!(y.to_vec(), vec![3.0; 4]);
/// assert!(try_max_pool2d(&x, Pool2d::new([3, 3])).is_err()); // does not fit unpadded
/// ```
pub fn try_max_pool2d<A: Array>(x: &A, pool: Pool2d) -> Result<A, Error> {
    // The window checked here, so that an error names the function called.
    geometry("max_pool2d", &pool, x.shape())?;
    let index = A::apply(&MaxPool2dIndex { pool }, &[x])?;
    A::apply(&MaxPool2d { pool }, &[x, &index])
}

/// [`try_max_pool2d`], panicking on error.
///
/// ```
/// use perturb::tensor::conv::{max_pool2d, Pool2d};
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::from_vec(vec![1.0_f64, 4.0, 2.0, 3.0], &[1, 1, 2, 2]).unwrap());
/// let y = max_pool2d(&x, Pool2d::new([2, 2])).sum_all();
/// assert_eq!(tape.gradient(&y, &[&x]).unwrap()[0].to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
/// ```
#[track_caller]
pub fn max_pool2d<A: Array>(x: &A, pool: Pool2d) -> A {
    or_panic(try_max_pool2d(x, pool))
}

/// The mean of each window of `x` (`[N, C, H, W]` or `[C, H, W]`), the padding counted as
/// zeros in the divisor `kh * kw` (PyTorch's default `count_include_pad=True`); apply
/// [`AvgPool2d`] with `count_include_pad: false` to divide by the elements a window covers.
/// Errors as [`try_max_pool2d`]'s, naming `avg_pool2d`.
///
/// ```
/// use perturb::tensor::conv::{try_avg_pool2d, Pool2d};
/// use perturb::tensor::Tensor;
/// let x = Tensor::from_vec((1..=8).map(f64::from).collect(), &[2, 2, 2]).unwrap();
/// let y = try_avg_pool2d(&x, Pool2d::new([2, 2])).unwrap();
/// assert_eq!((y.shape(), y.to_vec()), (&[2, 1, 1][..], vec![2.5, 6.5]));
/// ```
pub fn try_avg_pool2d<A: Array>(x: &A, pool: Pool2d) -> Result<A, Error> {
    let op = AvgPool2d {
        pool,
        count_include_pad: true,
    };
    A::apply(&op, &[x])
}

/// [`try_avg_pool2d`], panicking on error.
///
/// ```
/// use perturb::tensor::conv::{avg_pool2d, Pool2d};
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// let tape = TensorTape::new();
/// let x = tape.var(Tensor::<f64>::ones(&[1, 1, 2, 2]));
/// let y = avg_pool2d(&x, Pool2d::new([2, 2])).sum_all();
/// assert_eq!(tape.gradient(&y, &[&x]).unwrap()[0].to_vec(), vec![0.25; 4]);
/// ```
#[track_caller]
pub fn avg_pool2d<A: Array>(x: &A, pool: Pool2d) -> A {
    or_panic(try_avg_pool2d(x, pool))
}
