//! Convolutions over one or two spatial axes (NCW / NCHW inputs, OIW / OIHW weights), on the
//! GEMM: each image's windows are unrolled into the columns of a matrix (im2col) that one
//! product with the weight turns into the output.
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

use std::ops::Range;

use rayon::prelude::*;

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::dense::element_count;
use crate::tensor::kernels::Cost;
use crate::tensor::op::or_panic;
use crate::tensor::{Array, Element, Op, Tensor, VjpReads};

// ---- Options -----------------------------------------------------------------------------

/// How many zeros a convolution adds around its input along each spatial axis.
///
/// ```
/// use perturb::tensor::conv::{Conv2dOptions, Padding};
/// let o = Conv2dOptions::default().padding_per_side([(1, 0), (2, 2)]);
/// assert_eq!(o.padding, Padding::Explicit([(1, 0), (2, 2)]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding<const D: usize> {
    /// `(lo, hi)`: zeros before and after the input, per spatial axis (H then W in 2-D).
    Explicit([(usize, usize); D]),
    /// The output as large as the input (stride 1 only): `dilation * (kernel - 1)` zeros per
    /// axis, half before and half after, the odd one after (as PyTorch's `padding="same"` and
    /// JAX's `"SAME"`).
    Same,
}

/// The options of a convolution over `D` spatial axes (1: NCW, 2: NCHW), with PyTorch's
/// meaning: `stride`, `padding` (per side, or [`Padding::Same`]), `dilation` (the kernel's
/// taps this far apart), `groups` (the channels split into this many independent
/// convolutions), and `output_padding` (transposed convolutions only: extra rows at the end
/// of the output, to pick among the input sizes a strided convolution maps to one size).
///
/// The default is stride 1, no padding, dilation 1, one group; the builder methods change one
/// option each.
///
/// ```
/// use perturb::tensor::conv::{Conv2dOptions, Padding};
/// let o = Conv2dOptions::default().stride(2).padding(1).groups(2);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ([2, 2], Padding::Explicit([(1, 1); 2]), [1, 1], 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvOptions<const D: usize> {
    /// The step between windows, per spatial axis.
    pub stride: [usize; D],
    /// The zeros around the input.
    pub padding: Padding<D>,
    /// The spacing of the kernel's taps, per spatial axis (1: adjacent).
    pub dilation: [usize; D],
    /// The number of channel groups: input channel group `i` feeds output channel group `i`.
    pub groups: usize,
    /// Transposed convolutions only: rows added at the end of each spatial axis of the output.
    pub output_padding: [usize; D],
}

/// The options of a 1-D convolution (NCW).
pub type Conv1dOptions = ConvOptions<1>;
/// The options of a 2-D convolution (NCHW).
pub type Conv2dOptions = ConvOptions<2>;

impl<const D: usize> Default for ConvOptions<D> {
    /// Stride 1, no padding, dilation 1, one group, no output padding.
    ///
    /// ```
    /// use perturb::tensor::conv::{Conv1dOptions, Padding};
    /// let o = Conv1dOptions::default();
    /// assert_eq!((o.stride, o.padding, o.groups), ([1], Padding::Explicit([(0, 0)]), 1));
    /// ```
    fn default() -> Self {
        ConvOptions {
            stride: [1; D],
            padding: Padding::Explicit([(0, 0); D]),
            dilation: [1; D],
            groups: 1,
            output_padding: [0; D],
        }
    }
}

impl<const D: usize> ConvOptions<D> {
    /// The same stride along every spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().stride(2).stride, [2, 2]);
    /// ```
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = [stride; D];
        self
    }

    /// A stride per spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().strides([1, 2]).stride, [1, 2]);
    /// ```
    pub fn strides(mut self, stride: [usize; D]) -> Self {
        self.stride = stride;
        self
    }

    /// `padding` zeros on both sides of every spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::{Conv1dOptions, Padding};
    /// assert_eq!(Conv1dOptions::default().padding(2).padding, Padding::Explicit([(2, 2)]));
    /// ```
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = Padding::Explicit([(padding, padding); D]);
        self
    }

    /// `(lo, hi)` zeros before and after, per spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::{Conv2dOptions, Padding};
    /// let o = Conv2dOptions::default().padding_per_side([(0, 1), (1, 0)]);
    /// assert_eq!(o.padding, Padding::Explicit([(0, 1), (1, 0)]));
    /// ```
    pub fn padding_per_side(mut self, padding: [(usize, usize); D]) -> Self {
        self.padding = Padding::Explicit(padding);
        self
    }

    /// [`Padding::Same`]: the output as large as the input.
    ///
    /// ```
    /// use perturb::tensor::conv::{Conv2dOptions, Padding};
    /// assert_eq!(Conv2dOptions::default().same().padding, Padding::Same);
    /// ```
    pub fn same(mut self) -> Self {
        self.padding = Padding::Same;
        self
    }

    /// The same dilation along every spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().dilation(2).dilation, [2, 2]);
    /// ```
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = [dilation; D];
        self
    }

    /// A dilation per spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().dilations([2, 1]).dilation, [2, 1]);
    /// ```
    pub fn dilations(mut self, dilation: [usize; D]) -> Self {
        self.dilation = dilation;
        self
    }

    /// The number of channel groups.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().groups(4).groups, 4);
    /// ```
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The output padding of a transposed convolution, per spatial axis.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// assert_eq!(Conv2dOptions::default().output_padding([1, 0]).output_padding, [1, 0]);
    /// ```
    pub fn output_padding(mut self, output_padding: [usize; D]) -> Self {
        self.output_padding = output_padding;
        self
    }

    /// `(lo, hi)` per axis for a kernel of `kernel` taps per axis.
    fn pads(&self, kernel: [usize; D]) -> [(usize, usize); D] {
        match self.padding {
            Padding::Explicit(p) => p,
            Padding::Same => std::array::from_fn(|a| {
                // Saturated, the extent `total + 1` overflows too, which the plans report.
                let total = self.dilation[a].saturating_mul(kernel[a].saturating_sub(1));
                (total / 2, total - total / 2)
            }),
        }
    }

    /// Options for the operations that apply them internally: no output padding.
    fn without_output_padding(mut self) -> Self {
        self.output_padding = [0; D];
        self
    }
}

// ---- Geometry -----------------------------------------------------------------------------

/// A convolution's geometry, resolved and lifted to two spatial axes (a 1-D one has a height
/// of 1): `x` the input's channels and spatial size, `y` the output's, and the index map
/// `x[.., i * stride + tap * dilation - pad]` for output position `i` and kernel tap `tap`,
/// zero outside the input.
#[derive(Clone, Copy, Debug)]
struct Plan {
    n: usize,
    groups: usize,
    cx: usize,
    cy: usize,
    x: [usize; 2],
    y: [usize; 2],
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dilation: [usize; 2],
}

/// The name of a convolution operation over `D` spatial axes.
fn conv_name<const D: usize>(base: [&'static str; 2]) -> &'static str {
    if D == 1 {
        base[0]
    } else {
        base[1]
    }
}

fn invalid(op: &'static str, reason: String) -> Error {
    Error::InvalidArgument { op, reason }
}

/// `a` as two axes, a 1-D value behind a leading `fill`.
fn lift<const D: usize>(a: [usize; D], fill: usize) -> [usize; 2] {
    match D {
        1 => [fill, a[0]],
        _ => [a[0], a[1]],
    }
}

/// The spatial part of a `[N, C, spatial..]` shape (checked to have `D + 2` axes).
fn spatial<const D: usize>(shape: &[usize]) -> [usize; D] {
    std::array::from_fn(|a| shape[2 + a])
}

/// The options' own checks, and the ranks of the two operands.
fn check_common<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    (a_name, a): (&str, &[usize]),
    (b_name, b): (&str, &[usize]),
) -> Result<(), Error> {
    if D == 0 || D > 2 {
        return Err(invalid(
            op,
            format!("convolutions over {D} spatial axes are not supported (1 or 2)"),
        ));
    }
    let rank = D + 2;
    if a.len() != rank || b.len() != rank {
        return Err(invalid(
            op,
            format!(
                "the {a_name} {a:?} and the {b_name} {b:?} must both have {rank} axes \
                 ({D} spatial)"
            ),
        ));
    }
    if o.stride.contains(&0) || o.dilation.contains(&0) || o.groups == 0 {
        return Err(invalid(
            op,
            format!(
                "stride {:?}, dilation {:?} and groups {} must be at least 1 \
                 ({a_name} {a:?}, {b_name} {b:?})",
                o.stride, o.dilation, o.groups
            ),
        ));
    }
    if o.padding == Padding::Same && o.stride.iter().any(|&s| s != 1) {
        return Err(invalid(
            op,
            format!(
                "\"same\" padding needs stride 1, got {:?} ({a_name} {a:?}, {b_name} {b:?})",
                o.stride
            ),
        ));
    }
    Ok(())
}

/// The extent `dilation * (k - 1) + 1` of each kernel axis, and an error naming `op` for an
/// empty kernel or input axis (as the transposed convolution, which is the gradient, refuses
/// them), or a kernel larger than the padded input (`size + lo + hi` per axis).
fn extents<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    kernel: [usize; D],
    size: [usize; D],
    pads: [(usize, usize); D],
    shapes: String,
) -> Result<[usize; D], Error> {
    let mut out = [0; D];
    for a in 0..D {
        if kernel[a] == 0 {
            return Err(invalid(op, format!("the kernel is empty ({shapes})")));
        }
        if size[a] == 0 {
            return Err(invalid(
                op,
                format!("the input is empty along spatial axis {a} ({shapes})"),
            ));
        }
        let extent = o.dilation[a]
            .checked_mul(kernel[a] - 1)
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| invalid(op, format!("the kernel's extent overflows ({shapes})")))?;
        let padded = size[a]
            .checked_add(pads[a].0)
            .and_then(|s| s.checked_add(pads[a].1))
            .ok_or_else(|| invalid(op, format!("the padding overflows ({shapes})")))?;
        if extent > padded {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the kernel spans {extent} (dilation {}) but the \
                     padded input only {padded} ({shapes})",
                    o.dilation[a]
                ),
            ));
        }
        out[a] = extent;
    }
    Ok(out)
}

fn make_plan<const D: usize>(
    o: &ConvOptions<D>,
    (n, cx, cy): (usize, usize, usize),
    x: [usize; D],
    y: [usize; D],
    kernel: [usize; D],
    pads: [(usize, usize); D],
) -> Plan {
    Plan {
        n,
        groups: o.groups,
        cx,
        cy,
        x: lift(x, 1),
        y: lift(y, 1),
        k: lift(kernel, 1),
        stride: lift(o.stride, 1),
        pad: lift(pads.map(|p| p.0), 0),
        dilation: lift(o.dilation, 1),
    }
}

/// The geometry of `conv(x, w)` (weight `[O, C / groups, kernel..]`) and the output's shape.
fn conv_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    x: &[usize],
    w: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", x), ("weight", w))?;
    let shapes = format!("input {x:?}, weight {w:?}");
    if o.output_padding.iter().any(|&p| p != 0) {
        return Err(invalid(
            op,
            format!(
                "output_padding {:?} applies to transposed convolutions only ({shapes})",
                o.output_padding
            ),
        ));
    }
    let (n, c, out_c, per_group) = (x[0], x[1], w[0], w[1]);
    if per_group.checked_mul(o.groups) != Some(c) {
        return Err(invalid(
            op,
            format!(
                "the input has {c} channels but the weight takes {per_group} per group \
                 x {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    if out_c % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the weight's {out_c} output channels are not a multiple of the {} groups \
                 ({shapes})",
                o.groups
            ),
        ));
    }
    let kernel = spatial::<D>(w);
    let size = spatial::<D>(x);
    let pads = o.pads(kernel);
    let ext = extents(op, o, kernel, size, pads, shapes)?;
    let out: [usize; D] =
        std::array::from_fn(|a| (size[a] + pads[a].0 + pads[a].1 - ext[a]) / o.stride[a] + 1);
    let shape: Vec<usize> = [n, out_c].into_iter().chain(out).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, c, out_c), size, out, kernel, pads), shape))
}

/// The geometry of `conv_transpose(y, w)` (weight `[C_y, C_x / groups, kernel..]`, the weight
/// of the convolution it transposes) and the output's shape.
fn transpose_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    y: &[usize],
    w: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", y), ("weight", w))?;
    let shapes = format!("input {y:?}, weight {w:?}");
    let (n, cy, w_in, per_group) = (y[0], y[1], w[0], w[1]);
    if cy != w_in {
        return Err(invalid(
            op,
            format!("the input has {cy} channels but the weight's first axis {w_in} ({shapes})"),
        ));
    }
    if cy % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the input's {cy} channels are not a multiple of the {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    let kernel = spatial::<D>(w);
    let size = spatial::<D>(y);
    let pads = o.pads(kernel);
    let mut out = [0; D];
    for a in 0..D {
        if kernel[a] == 0 || size[a] == 0 {
            return Err(invalid(
                op,
                format!("empty kernel or input along spatial axis {a} ({shapes})"),
            ));
        }
        // (size - 1) stride + dilation (k - 1) + 1 + output_padding - lo - hi
        let full = (size[a] - 1)
            .checked_mul(o.stride[a])
            .and_then(|v| v.checked_add(o.dilation[a].checked_mul(kernel[a] - 1)?))
            .and_then(|v| v.checked_add(1)?.checked_add(o.output_padding[a]))
            .ok_or_else(|| invalid(op, format!("the output size overflows ({shapes})")))?;
        let cut = pads[a].0.saturating_add(pads[a].1);
        if cut >= full {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the padding {:?} removes the whole output of \
                     {full} ({shapes})",
                    pads[a]
                ),
            ));
        }
        out[a] = full - cut;
    }
    let cx = per_group
        .checked_mul(o.groups)
        .ok_or_else(|| invalid(op, format!("the channel count overflows ({shapes})")))?;
    let shape: Vec<usize> = [n, cx].into_iter().chain(out).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, cx, cy), out, size, kernel, pads), shape))
}

/// The geometry of the weight gradient `dB/dw` of `conv(x, w)` at cotangent `g`, for a kernel
/// of `kernel` taps, and its shape `[C_g, C_x / groups, kernel..]`. `g` may be shorter than
/// the convolution's output (the rows past its end count as zeros).
fn weight_grad_plan<const D: usize>(
    op: &'static str,
    o: &ConvOptions<D>,
    kernel: [usize; D],
    x: &[usize],
    g: &[usize],
) -> Result<(Plan, Vec<usize>), Error> {
    check_common(op, o, ("input", x), ("cotangent", g))?;
    let shapes = format!("input {x:?}, cotangent {g:?}, kernel {kernel:?}");
    let (n, cx, n_g, cy) = (x[0], x[1], g[0], g[1]);
    if n != n_g {
        return Err(invalid(
            op,
            format!("the batch sizes {n} and {n_g} differ ({shapes})"),
        ));
    }
    if cx % o.groups != 0 || cy % o.groups != 0 {
        return Err(invalid(
            op,
            format!(
                "the channel counts {cx} and {cy} must be multiples of the {} groups ({shapes})",
                o.groups
            ),
        ));
    }
    let size = spatial::<D>(x);
    let out = spatial::<D>(g);
    let pads = o.pads(kernel);
    let ext = extents(op, o, kernel, size, pads, shapes.clone())?;
    for a in 0..D {
        let longest = (size[a] + pads[a].0 + pads[a].1 - ext[a]) / o.stride[a] + 1;
        if out[a] > longest {
            return Err(invalid(
                op,
                format!(
                    "along spatial axis {a} the cotangent has {} positions, the convolution \
                     only {longest} ({shapes})",
                    out[a]
                ),
            ));
        }
    }
    let shape: Vec<usize> = [cy, cx / o.groups].into_iter().chain(kernel).collect();
    element_count(op, &shape)?;
    Ok((make_plan(o, (n, cx, cy), size, out, kernel, pads), shape))
}

// ---- Kernels ------------------------------------------------------------------------------

/// The most elements of an unrolled (im2col) block: 2^22, 32 MiB of `f64` per thread. A layer
/// whose whole unrolled image fits (a 3 x 3 kernel over 256 channels and a 56 x 56 output is
/// 7 million: two blocks) is done in one product per group.
const SCRATCH: usize = 1 << 22;

impl Plan {
    /// Rows of the unrolled matrix: input channels per group times kernel taps.
    fn rows(&self) -> usize {
        self.cx / self.groups * self.k[0] * self.k[1]
    }

    /// Output positions per image.
    fn positions(&self) -> usize {
        self.y[0] * self.y[1]
    }

    fn x_image(&self) -> usize {
        self.cx * self.x[0] * self.x[1]
    }

    /// A 1 x 1 kernel at stride 1 without padding: the input is already its unrolled matrix.
    fn is_pointwise(&self) -> bool {
        self.k == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0] && self.x == self.y
    }

    /// Multiply-adds per image, which decides when the batch is split over rayon's pool (the
    /// same threshold as a cheap element-wise loop's element count).
    fn parallel(&self) -> bool {
        let work = self
            .rows()
            .saturating_mul(self.positions())
            .saturating_mul(self.cy);
        self.n >= 2 && self.n.saturating_mul(work) >= Cost::Cheap.parallel_threshold()
    }

    /// The output positions `i` of axis `a` whose tap `t` lands inside the input:
    /// `0 <= i * stride + t * dilation - pad < x`, as `lo..hi`, and the offset
    /// `t * dilation - pad`. In `i128`: stride, padding and dilation may each pass `isize::MAX`.
    fn valid(&self, a: usize, t: usize) -> (usize, usize, i128) {
        let s = self.stride[a] as i128;
        let off = t as i128 * self.dilation[a] as i128 - self.pad[a] as i128;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let room = self.x[a] as i128 - off;
        let hi = if room <= 0 {
            0
        } else {
            ((room + s - 1) / s).min(self.y[a] as i128)
        };
        (lo.min(hi) as usize, hi as usize, off)
    }

    /// The input position `i * stride + off` of output position `i` along axis `a`, for an
    /// `i` that [`valid`](Plan::valid) gave.
    fn at(&self, a: usize, i: usize, off: i128) -> usize {
        (i as i128 * self.stride[a] as i128 + off) as usize
    }

    /// The output positions one unrolled block covers: all of them, unless `rows() x
    /// positions()` passes [`SCRATCH`] elements (a long kernel over a long input: a 2^21-tap
    /// kernel over 2^22 samples would need 2^42), then as many as fit, at least one.
    fn span(&self) -> usize {
        let p = self.positions().max(1);
        if self.is_pointwise() {
            return p;
        }
        (SCRATCH / self.rows().max(1)).clamp(1, p)
    }

    /// The output positions `0..positions()` in blocks of [`span`](Plan::span).
    fn spans(&self) -> impl Iterator<Item = Range<usize>> {
        let (p, step) = (self.positions(), self.span());
        (0..p).step_by(step).map(move |a| a..(a + step).min(p))
    }

    /// For each output row `oy` that output positions `span` reach, the row, the columns
    /// `a..b` of it in the span, and where they start in the span.
    fn span_rows(&self, span: &Range<usize>) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let (wy, span) = (self.y[1], span.clone());
        (span.start / wy..span.end.div_ceil(wy)).map(move |oy| {
            let (a, b) = (span.start.max(oy * wy), span.end.min((oy + 1) * wy));
            (oy, a - oy * wy, b - oy * wy, a - span.start)
        })
    }

    /// The windows at output positions `span` of one group of one image (`x`: `cx / groups`
    /// channels) as the columns of `cols` (`rows() x span.len()`): im2col.
    fn im2col<T: Element>(&self, x: &[T], cols: &mut [T], span: &Range<usize>) {
        let [hx, wx] = self.x;
        let sw = self.stride[1];
        let mut rows = cols.chunks_exact_mut(span.len());
        for c in 0..self.cx / self.groups {
            let image = &x[c * hx * wx..(c + 1) * hx * wx];
            for ki in 0..self.k[0] {
                let (ylo, yhi, yoff) = self.valid(0, ki);
                for kj in 0..self.k[1] {
                    let (xlo, xhi, xoff) = self.valid(1, kj);
                    let row = rows.next().expect("rows() rows");
                    for (oy, a, b, at) in self.span_rows(span) {
                        let seg = &mut row[at..at + b - a];
                        if oy < ylo || oy >= yhi {
                            seg.fill(T::zero());
                            continue;
                        }
                        // The valid columns of this row inside the span, from `a`.
                        let (lo, hi) = (xlo.clamp(a, b), xhi.clamp(a, b));
                        seg[..lo - a].fill(T::zero());
                        seg[hi - a..].fill(T::zero());
                        if lo == hi {
                            continue;
                        }
                        let iy = self.at(0, oy, yoff);
                        let line = &image[iy * wx..(iy + 1) * wx];
                        let start = self.at(1, lo, xoff);
                        let seg = &mut seg[lo - a..hi - a];
                        if sw == 1 {
                            seg.copy_from_slice(&line[start..start + seg.len()]);
                        } else {
                            for (o, v) in seg.iter_mut().zip(line[start..].iter().step_by(sw)) {
                                *o = *v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of [`im2col`](Plan::im2col): each column of `cols` (output positions
    /// `span`) added back into the window it came from (`x` one group of one image, added to).
    fn col2im<T: Element>(&self, cols: &[T], x: &mut [T], span: &Range<usize>) {
        let [hx, wx] = self.x;
        let sw = self.stride[1];
        let mut rows = cols.chunks_exact(span.len());
        for c in 0..self.cx / self.groups {
            let image = &mut x[c * hx * wx..(c + 1) * hx * wx];
            for ki in 0..self.k[0] {
                let (ylo, yhi, yoff) = self.valid(0, ki);
                for kj in 0..self.k[1] {
                    let (xlo, xhi, xoff) = self.valid(1, kj);
                    let row = rows.next().expect("rows() rows");
                    for (oy, a, b, at) in self.span_rows(span) {
                        let (lo, hi) = (xlo.clamp(a, b), xhi.clamp(a, b));
                        if oy < ylo || oy >= yhi || lo == hi {
                            continue;
                        }
                        let seg = &row[at + lo - a..at + hi - a];
                        let iy = self.at(0, oy, yoff);
                        let line = &mut image[iy * wx..(iy + 1) * wx];
                        let start = self.at(1, lo, xoff);
                        if sw == 1 {
                            for (o, &v) in line[start..start + seg.len()].iter_mut().zip(seg) {
                                *o += v;
                            }
                        } else {
                            for (o, &v) in line[start..].iter_mut().step_by(sw).zip(seg) {
                                *o += v;
                            }
                        }
                    }
                }
            }
        }
    }

    /// `f(image, chunk, scratch)` for each image's `chunk` of `out` (`out.len() / n` each), in
    /// parallel for a large batch; `scratch` is a buffer of `rows() x span()` per thread.
    fn for_each_image<T: Element>(
        &self,
        out: &mut [T],
        f: impl Fn(usize, &mut [T], &mut Vec<T>) + Sync + Send,
    ) {
        if self.n == 0 || out.is_empty() {
            return;
        }
        let each = out.len() / self.n;
        let len = if self.is_pointwise() {
            0
        } else {
            self.rows() * self.span()
        };
        let scratch = || vec![T::zero(); len];
        if self.parallel() {
            out.par_chunks_mut(each)
                .enumerate()
                .for_each_init(scratch, |s, (i, chunk)| f(i, chunk, s));
        } else {
            let mut s = scratch();
            for (i, chunk) in out.chunks_mut(each).enumerate() {
                f(i, chunk, &mut s);
            }
        }
    }

    /// `y = conv(x, w)`: per group and block of output positions, im2col then `W cols`.
    fn forward<T: Element>(&self, x: &[T], w: &[T]) -> Vec<T> {
        let (k, p, g) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / g, self.cy / g);
        let xg = cg * self.x[0] * self.x[1];
        let mut y = vec![T::zero(); self.n * self.cy * p];
        self.for_each_image(&mut y, |i, y, scratch| {
            for gi in 0..g {
                let x = &x[i * self.x_image() + gi * xg..][..xg];
                let w = &w[gi * og * k..(gi + 1) * og * k];
                let y = &mut y[gi * og * p..(gi + 1) * og * p];
                for span in self.spans() {
                    let n = span.len();
                    let cols: &[T] = if self.is_pointwise() {
                        x
                    } else {
                        let cols = &mut scratch[..k * n];
                        self.im2col(x, cols, &span);
                        cols
                    };
                    let y = &mut y[span.start..];
                    T::gemm(og, k, n, w, (k, 1), cols, (n, 1), T::zero(), y, p);
                }
            }
        });
        y
    }

    /// `x = conv_transpose(y, w)`: per group and block of positions, `W^T y` then col2im.
    fn backward_input<T: Element>(&self, y: &[T], w: &[T]) -> Vec<T> {
        let (k, p, g) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / g, self.cy / g);
        let xg = cg * self.x[0] * self.x[1];
        let mut x = vec![T::zero(); self.n * self.x_image()];
        if self.cy == 0 {
            // No input channel: zeros, without unrolling a kernel that may be huge (a weight
            // with no output channel holds no element whatever its other lengths).
            return x;
        }
        self.for_each_image(&mut x, |i, x, scratch| {
            for gi in 0..g {
                let y = &y[(i * self.cy + gi * og) * p..][..og * p];
                let w = &w[gi * og * k..(gi + 1) * og * k];
                let x = &mut x[gi * xg..(gi + 1) * xg];
                if self.is_pointwise() {
                    T::gemm(k, og, p, w, (1, k), y, (p, 1), T::zero(), x, p);
                    continue;
                }
                for span in self.spans() {
                    let n = span.len();
                    let cols = &mut scratch[..k * n];
                    let y = &y[span.start..];
                    T::gemm(k, og, n, w, (1, k), y, (p, 1), T::zero(), cols, n);
                    self.col2im(cols, x, &span);
                }
            }
        });
        x
    }

    /// `dw = sum over images of g cols^T`, per group and block of positions; the images split
    /// into one run per thread for a large batch, each with its own sum, added in order at the
    /// end.
    fn backward_weight<T: Element>(&self, x: &[T], g: &[T]) -> Vec<T> {
        let (k, p, groups) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / groups, self.cy / groups);
        let xg = cg * self.x[0] * self.x[1];
        if self.cy * k == 0 {
            // An empty gradient: no loop over the groups, which channels of length 0 do not
            // bound.
            return Vec::new();
        }
        let run = |images: std::ops::Range<usize>| {
            let mut dw = vec![T::zero(); self.cy * k];
            let mut scratch = Vec::new();
            for i in images {
                for gi in 0..groups {
                    let x = &x[i * self.x_image() + gi * xg..][..xg];
                    let g = &g[(i * self.cy + gi * og) * p..][..og * p];
                    let dw = &mut dw[gi * og * k..(gi + 1) * og * k];
                    for span in self.spans() {
                        let n = span.len();
                        let cols: &[T] = if self.is_pointwise() {
                            x
                        } else {
                            scratch.resize(k * n, T::zero());
                            self.im2col(x, &mut scratch[..k * n], &span);
                            &scratch[..k * n]
                        };
                        let g = &g[span.start..];
                        T::gemm(og, n, k, g, (p, 1), cols, (1, n), T::one(), dw, k);
                    }
                }
            }
            dw
        };
        if !self.parallel() {
            return run(0..self.n);
        }
        let runs = rayon::current_num_threads().clamp(1, self.n);
        let per = self.n.div_ceil(runs);
        let parts: Vec<Vec<T>> = (0..runs)
            .into_par_iter()
            .map(|r| run(r * per..((r + 1) * per).min(self.n)))
            .collect();
        let mut parts = parts.into_iter();
        let mut dw = parts.next().unwrap_or_else(|| vec![T::zero(); self.cy * k]);
        for part in parts {
            for (a, b) in dw.iter_mut().zip(part) {
                *a += b;
            }
        }
        dw
    }
}

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
            plan.forward(x.as_slice(), w.as_slice()),
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
            plan.backward_input(y.as_slice(), w.as_slice()),
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
/// for the formula. Add a bias `b` `[O]` as `y + b.reshape([O, 1, 1])`. Errors name the
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
