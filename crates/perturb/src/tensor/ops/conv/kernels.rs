//! The kernels on a [`Plan`](super::plan::Plan): im2col, col2im and the products per group,
//! in blocks that bound the unrolled matrix, over rayon for large batches. Small images go
//! in blocks of whole images, one product per block over all their positions: a product per
//! image of a small image is too narrow to pay for packing the weight each time (the digits'
//! 4 x 4 images: 16 columns against 288 x 64 weights).

use std::ops::Range;

use rayon::prelude::*;

use super::plan::*;
use crate::error::Error;
use crate::tensor::kernels::Cost;
use crate::tensor::{buffers, Element};

/// For small images, where each element of an image's unrolled matrix comes from: its offset
/// in the image's group of channels, or for a zero of the padding a slot after the group, one
/// per output position (distinct within a row, so that [`Plan::col2im`]'s adjoint, which adds
/// into them, does not chain its additions through one slot). Built once per call, it makes unrolling a gather of
/// one load per element; row by row, an 8 x 8 or 4 x 4 image cost a `memset` or `memcpy` call
/// of a few elements per output row and tap.
struct GatherTable(Vec<u32>);

impl GatherTable {
    /// The same table transposed, `positions x rows` (for [`Plan::unroll_rows`]).
    fn by_position(&self, rows: usize, positions: usize) -> GatherTable {
        let mut t = Vec::with_capacity(self.0.len());
        for p in 0..positions {
            t.extend((0..rows).map(|r| self.0[r * positions + p]));
        }
        GatherTable(t)
    }
}

// ---- Kernels ------------------------------------------------------------------------------

/// The most elements of an unrolled (im2col) block: 2^22, 32 MiB of `f64` per thread. A layer
/// whose whole unrolled image fits (a 3 x 3 kernel over 256 channels and a 56 x 56 output is
/// 7 million: two blocks) is done in one product per group.
pub(super) const SCRATCH: usize = 1 << 22;

/// The most elements of an unrolled block of several small images: 2^16, 256 KiB of `f32`,
/// which stays in the L2 cache with the weight (a block of all 64 of the digits' 4 x 4 images,
/// 1.2 MB, was no faster than one image at a time).
const BLOCK: usize = 1 << 16;

/// Output positions per image under which images are unrolled in blocks of several: the
/// digits' 8 x 8 and 4 x 4 images (64 and 16) were measured faster in blocks; a 28 x 28 image
/// (784) is not blocked.
const SMALL: usize = 256;

/// `len` zeros, or an error naming `op` where the memory cannot be had: a shape a tensor may
/// hold can still be more than the machine has (a 4 x 4 image padded by 2^20 on each side
/// convolves to 2^42 elements, 35 TB of `f64`), and `vec!` would abort the process.
///
/// A result the buffer pool can keep comes from it (a freed tensor's buffer, reused): with the
/// system allocator, a fresh 6 MB output is mapped, faulted in and handed back on every call.
fn try_zeros<T: Element>(op: &'static str, len: usize) -> Result<Vec<T>, Error> {
    try_result(op, len, false)
}

/// `len` elements, zeros or whatever a pooled buffer held ([`buffers::stale`]), for a result
/// every element of which the products write (`beta = 0`): the forward convolution's output,
/// which zeroing cost a pass over 6 MB per call in the conv benchmark. Errors as
/// [`try_zeros`].
fn try_overwritten<T: Element>(op: &'static str, len: usize) -> Result<Vec<T>, Error> {
    try_result(op, len, true)
}

/// [`try_zeros`], or [`try_overwritten`] when `stale` is allowed.
fn try_result<T: Element>(op: &'static str, len: usize, stale: bool) -> Result<Vec<T>, Error> {
    if len.saturating_mul(std::mem::size_of::<T>()) <= buffers::limit() {
        return Ok(if stale {
            buffers::stale(len)
        } else {
            buffers::filled(len, T::zero())
        });
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        invalid(
            op,
            format!(
                "the result has {len} elements, more than memory can hold ({} bytes)",
                len.saturating_mul(std::mem::size_of::<T>())
            ),
        )
    })?;
    v.resize(len, T::zero());
    Ok(v)
}

impl Plan {
    /// Rows of the unrolled matrix: input channels per group times kernel taps.
    pub(super) fn rows(&self) -> usize {
        self.cx / self.groups * self.k[0] * self.k[1]
    }

    /// Output positions per image.
    pub(super) fn positions(&self) -> usize {
        self.y[0] * self.y[1]
    }

    pub(super) fn x_image(&self) -> usize {
        self.cx * self.x[0] * self.x[1]
    }

    /// A 1 x 1 kernel at stride 1 without padding: the input is already its unrolled matrix.
    pub(super) fn is_pointwise(&self) -> bool {
        self.k == [1, 1] && self.stride == [1, 1] && self.pad == [0, 0] && self.x == self.y
    }

    /// Multiply-adds per image, which decides when the batch is split over rayon's pool (the
    /// same threshold as a cheap element-wise loop's element count).
    pub(super) fn parallel(&self) -> bool {
        let work = self
            .rows()
            .saturating_mul(self.positions())
            .saturating_mul(self.cy);
        self.n >= 2 && self.n.saturating_mul(work) >= Cost::Cheap.parallel_threshold()
    }

    /// The output positions `i` of axis `a` whose tap `t` lands inside the input:
    /// `0 <= i * stride + t * dilation - pad < x`, as `lo..hi`, and the offset
    /// `t * dilation - pad`. In `i128`: stride, padding and dilation may each pass `isize::MAX`.
    pub(super) fn valid(&self, a: usize, t: usize) -> (usize, usize, i128) {
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
    pub(super) fn at(&self, a: usize, i: usize, off: i128) -> usize {
        (i as i128 * self.stride[a] as i128 + off) as usize
    }

    /// The output positions one unrolled block covers: all of them, unless `rows() x
    /// positions()` passes [`SCRATCH`] elements (a long kernel over a long input: a 2^21-tap
    /// kernel over 2^22 samples would need 2^42), then as many as fit, at least one.
    pub(super) fn span(&self) -> usize {
        let p = self.positions().max(1);
        if self.is_pointwise() {
            return p;
        }
        (SCRATCH / self.rows().max(1)).clamp(1, p)
    }

    /// The output positions `0..positions()` in blocks of [`span`](Plan::span).
    pub(super) fn spans(&self) -> impl Iterator<Item = Range<usize>> {
        let (p, step) = (self.positions(), self.span());
        (0..p).step_by(step).map(move |a| a..(a + step).min(p))
    }

    /// For each output row `oy` that output positions `span` reach, the row, the columns
    /// `a..b` of it in the span, and where they start in the span.
    pub(super) fn span_rows(
        &self,
        span: &Range<usize>,
    ) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let (wy, span) = (self.y[1], span.clone());
        (span.start / wy..span.end.div_ceil(wy)).map(move |oy| {
            let (a, b) = (span.start.max(oy * wy), span.end.min((oy + 1) * wy));
            (oy, a - oy * wy, b - oy * wy, a - span.start)
        })
    }

    /// The windows at output positions `span` of one group of one image (`x`: `cx / groups`
    /// channels) as columns `col..col + span.len()` of `cols` (`rows()` rows `ld` apart):
    /// im2col.
    pub(super) fn im2col<T: Element>(
        &self,
        x: &[T],
        cols: &mut [T],
        (ld, col): (usize, usize),
        span: &Range<usize>,
    ) {
        let [hx, wx] = self.x;
        let sw = self.stride[1];
        let whole = span.len() == self.positions();
        let mut rows = cols
            .chunks_mut(ld)
            .map(|row| &mut row[col..col + span.len()]);
        let ys: Vec<_> = (0..self.k[0]).map(|ki| self.valid(0, ki)).collect();
        let xs: Vec<_> = (0..self.k[1]).map(|kj| self.valid(1, kj)).collect();
        for c in 0..self.cx / self.groups {
            let image = &x[c * hx * wx..(c + 1) * hx * wx];
            for &tap_y in &ys {
                let (ylo, yhi, yoff) = tap_y;
                for &tap_x in &xs {
                    let (xlo, xhi, xoff) = tap_x;
                    let row = rows.next().expect("rows() rows");
                    if whole {
                        self.im2col_row(image, row, tap_y, tap_x);
                        continue;
                    }
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

    /// One row of a whole image's unrolled matrix (tap `(ylo, yhi, yoff)`, `(xlo, xhi, xoff)`
    /// from [`valid`](Plan::valid) of one channel `image`): the short path of
    /// [`im2col`](Plan::im2col) for a span of every output position, which small images
    /// (digits' 8 x 8) always take.
    fn im2col_row<T: Element>(
        &self,
        image: &[T],
        row: &mut [T],
        (ylo, yhi, yoff): (usize, usize, i128),
        (xlo, xhi, xoff): (usize, usize, i128),
    ) {
        let (wx, wy, sw) = (self.x[1], self.y[1], self.stride[1]);
        if ylo >= yhi || xlo >= xhi {
            row.fill(T::zero());
            return;
        }
        row[..ylo * wy].fill(T::zero());
        row[yhi * wy..].fill(T::zero());
        let start = self.at(1, xlo, xoff);
        for oy in ylo..yhi {
            let out = &mut row[oy * wy..(oy + 1) * wy];
            out[..xlo].fill(T::zero());
            out[xhi..].fill(T::zero());
            let iy = self.at(0, oy, yoff);
            let line = &image[iy * wx + start..(iy + 1) * wx];
            let out = &mut out[xlo..xhi];
            if sw == 1 {
                out.copy_from_slice(&line[..out.len()]);
            } else {
                for (o, v) in out.iter_mut().zip(line.iter().step_by(sw)) {
                    *o = *v;
                }
            }
        }
    }

    /// The adjoint of [`im2col`](Plan::im2col): columns `col..col + span.len()` of `cols`
    /// (rows `ld` apart; output positions `span`) added back into the windows they came from
    /// (`x` one group of one image, added to).
    pub(super) fn col2im<T: Element>(
        &self,
        cols: &[T],
        (ld, col): (usize, usize),
        x: &mut [T],
        span: &Range<usize>,
    ) {
        let [hx, wx] = self.x;
        let sw = self.stride[1];
        let whole = span.len() == self.positions();
        let mut rows = cols.chunks(ld).map(|row| &row[col..col + span.len()]);
        let ys: Vec<_> = (0..self.k[0]).map(|ki| self.valid(0, ki)).collect();
        let xs: Vec<_> = (0..self.k[1]).map(|kj| self.valid(1, kj)).collect();
        for c in 0..self.cx / self.groups {
            let image = &mut x[c * hx * wx..(c + 1) * hx * wx];
            for &tap_y in &ys {
                let (ylo, yhi, yoff) = tap_y;
                for &tap_x in &xs {
                    let (xlo, xhi, xoff) = tap_x;
                    let row = rows.next().expect("rows() rows");
                    if whole {
                        self.col2im_row(row, image, tap_y, tap_x);
                        continue;
                    }
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

    /// The adjoint of [`im2col_row`](Plan::im2col_row): one row of a whole image's unrolled
    /// matrix added back into the channel `image`.
    fn col2im_row<T: Element>(
        &self,
        row: &[T],
        image: &mut [T],
        (ylo, yhi, yoff): (usize, usize, i128),
        (xlo, xhi, xoff): (usize, usize, i128),
    ) {
        let (wx, wy, sw) = (self.x[1], self.y[1], self.stride[1]);
        if ylo >= yhi || xlo >= xhi {
            return;
        }
        let start = self.at(1, xlo, xoff);
        for oy in ylo..yhi {
            let seg = &row[oy * wy + xlo..oy * wy + xhi];
            let iy = self.at(0, oy, yoff);
            let line = &mut image[iy * wx + start..(iy + 1) * wx];
            if sw == 1 {
                for (o, &v) in line.iter_mut().zip(seg) {
                    *o += v;
                }
            } else {
                for (o, &v) in line.iter_mut().step_by(sw).zip(seg) {
                    *o += v;
                }
            }
        }
    }

    /// Whole images per unrolled block: for small images (under [`SMALL`] output positions)
    /// as many as [`BLOCK`] holds, the product of a block being one GEMM wide enough to pay
    /// for packing the weight; otherwise 1, the product of one image being wide already (and
    /// written straight into the output, where a block's is copied there).
    pub(super) fn images_per_block(&self) -> usize {
        let image = self.rows().saturating_mul(self.positions()).max(1);
        if self.positions() >= SMALL || self.is_pointwise() || self.span() < self.positions() {
            return 1;
        }
        (BLOCK / image).clamp(1, self.n.max(1))
    }

    /// The images in blocks of at most [`images_per_block`](Plan::images_per_block), at least
    /// one block per thread for a large batch.
    fn block_len(&self) -> usize {
        let threads = if self.parallel() {
            rayon::current_num_threads().max(1)
        } else {
            1
        };
        self.images_per_block().min(self.n.div_ceil(threads)).max(1)
    }

    /// `f(images, chunk, scratch)` for each block of images and its `chunk` of `out`
    /// (`out.len() / n` per image), in parallel for a large batch; `scratch` is three buffers
    /// per thread, kept from block to block.
    fn for_each_block<T: Element>(
        &self,
        out: &mut [T],
        f: impl Fn(Range<usize>, &mut [T], &mut [Vec<T>; 3]) + Sync + Send,
    ) {
        if self.n == 0 || out.is_empty() {
            return;
        }
        let (each, len) = (out.len() / self.n, self.block_len());
        let images = |b: usize, chunk: &[T]| b * len..b * len + chunk.len() / each;
        if self.parallel() {
            out.par_chunks_mut(len * each)
                .enumerate()
                .for_each_init(Default::default, |s, (b, chunk)| {
                    f(images(b, chunk), chunk, s)
                });
        } else {
            let mut s = Default::default();
            for (b, chunk) in out.chunks_mut(len * each).enumerate() {
                f(images(b, chunk), chunk, &mut s);
            }
        }
    }

    /// The unrolled windows of group `gi` of `images` (of `x`, whole images) at positions
    /// `span`, side by side in `cols` (`rows()` rows of `images.len() * span.len()`); by the
    /// [`GatherTable`] where one is given (small images, every position).
    fn unroll<T: Element>(
        &self,
        x: &[T],
        gi: usize,
        images: &Range<usize>,
        span: &Range<usize>,
        cols: &mut [T],
        table: Option<&GatherTable>,
    ) {
        let xg = self.cx / self.groups * self.x[0] * self.x[1];
        let (len, ld) = (span.len(), images.len() * span.len());
        if let Some(table) = table {
            let mut padded = vec![T::zero(); xg + len];
            for (j, i) in images.clone().enumerate() {
                padded[..xg].copy_from_slice(&x[i * self.x_image() + gi * xg..][..xg]);
                for (row, taps) in cols.chunks_mut(ld).zip(table.0.chunks_exact(len)) {
                    for (o, &t) in row[j * len..(j + 1) * len].iter_mut().zip(taps) {
                        *o = padded[t as usize];
                    }
                }
            }
            return;
        }
        for (j, i) in images.clone().enumerate() {
            let x = &x[i * self.x_image() + gi * xg..][..xg];
            self.im2col(x, cols, (ld, j * len), span);
        }
    }

    /// [`unroll`](Plan::unroll) by a table in [`GatherTable::by_position`]'s order: each
    /// image's windows one output position per row of `cols` (`images.len() * positions()`
    /// rows of `rows()`), the transpose of `unroll`'s layout.
    fn unroll_rows<T: Element>(
        &self,
        x: &[T],
        gi: usize,
        images: &Range<usize>,
        cols: &mut [T],
        table: &GatherTable,
    ) {
        let xg = self.cx / self.groups * self.x[0] * self.x[1];
        let (k, len) = (self.rows(), self.positions());
        let mut padded = vec![T::zero(); xg + len];
        for (i, block) in images.clone().zip(cols.chunks_exact_mut(k * len)) {
            padded[..xg].copy_from_slice(&x[i * self.x_image() + gi * xg..][..xg]);
            for (o, &t) in block.iter_mut().zip(&table.0) {
                *o = padded[t as usize];
            }
        }
    }

    /// The [`GatherTable`] of this convolution where its images are unrolled in blocks of
    /// several (small images), else `None`.
    fn gather_table(&self) -> Option<GatherTable> {
        let (p, xg) = (
            self.positions(),
            self.cx / self.groups * self.x[0] * self.x[1],
        );
        if self.images_per_block() <= 1 || self.span() < p || u32::try_from(xg + p).is_err() {
            return None;
        }
        let [hx, wx] = self.x;
        let mut table = Vec::with_capacity(self.rows() * p);
        for c in 0..self.cx / self.groups {
            for ki in 0..self.k[0] {
                let (ylo, yhi, yoff) = self.valid(0, ki);
                for kj in 0..self.k[1] {
                    let (xlo, xhi, xoff) = self.valid(1, kj);
                    for oy in 0..self.y[0] {
                        for ox in 0..self.y[1] {
                            let inside = (ylo..yhi).contains(&oy) && (xlo..xhi).contains(&ox);
                            let at = if inside {
                                c * hx * wx + self.at(0, oy, yoff) * wx + self.at(1, ox, xoff)
                            } else {
                                xg + oy * self.y[1] + ox
                            };
                            table.push(at as u32);
                        }
                    }
                }
            }
        }
        Some(GatherTable(table))
    }

    /// The adjoint of the gather by `table`: one image's columns `col..col + positions()` of
    /// `cols` (rows `ld` apart) added into the slots they were read from (`padded`, scratch
    /// zeroed here), then the group's slots added to `x`.
    fn fold<T: Element>(
        &self,
        cols: &[T],
        (ld, col): (usize, usize),
        x: &mut [T],
        table: &GatherTable,
        padded: &mut Vec<T>,
    ) {
        let len = self.positions();
        padded.clear();
        padded.resize(x.len() + len, T::zero());
        for (row, taps) in cols.chunks(ld).zip(table.0.chunks_exact(len)) {
            for (&v, &t) in row[col..col + len].iter().zip(taps) {
                padded[t as usize] += v;
            }
        }
        for (o, &v) in x.iter_mut().zip(padded.iter()) {
            *o += v;
        }
    }

    /// Channels `channels` of `images` of `a` (`[N, cy, positions()]`) at positions `span`,
    /// as the rows of `out`, the images side by side: from batch-major to channel-major.
    fn gather_channels<T: Element>(
        &self,
        a: &[T],
        channels: Range<usize>,
        images: &Range<usize>,
        span: &Range<usize>,
        out: &mut [T],
    ) {
        let (p, len) = (self.positions(), span.len());
        let ld = images.len() * len;
        for (row, c) in out.chunks_exact_mut(ld).zip(channels) {
            for (seg, i) in row.chunks_exact_mut(len).zip(images.clone()) {
                let from = (i * self.cy + c) * p + span.start;
                seg.copy_from_slice(&a[from..from + len]);
            }
        }
    }

    /// `y = conv(x, w)`: per block of images, group and block of positions, im2col then
    /// `W cols`; a block of several images is one product, its rows moved to their images.
    pub(super) fn forward<T: Element>(
        &self,
        op: &'static str,
        x: &[T],
        w: &[T],
    ) -> Result<Vec<T>, Error> {
        let (k, p, g) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / g, self.cy / g);
        let xg = cg * self.x[0] * self.x[1];
        let mut y = try_overwritten(op, self.n * self.cy * p)?;
        let table = self.gather_table();
        self.for_each_block(&mut y, |images, y, [cols, out, _]| {
            for gi in 0..g {
                let w = &w[gi * og * k..(gi + 1) * og * k];
                for span in self.spans() {
                    let (len, ld) = (span.len(), images.len() * span.len());
                    if images.len() == 1 && self.is_pointwise() {
                        let x = &x[images.start * self.x_image() + gi * xg..][..xg];
                        T::gemm(
                            og,
                            k,
                            p,
                            w,
                            (k, 1),
                            x,
                            (p, 1),
                            T::zero(),
                            &mut y[gi * og * p..],
                            p,
                        );
                        continue;
                    }
                    cols.resize(k * ld, T::zero());
                    self.unroll(x, gi, &images, &span, cols, table.as_ref());
                    if images.len() == 1 {
                        let y = &mut y[gi * og * p + span.start..];
                        T::gemm(og, k, len, w, (k, 1), cols, (len, 1), T::zero(), y, p);
                        continue;
                    }
                    out.resize(og * ld, T::zero());
                    T::gemm(og, k, ld, w, (k, 1), cols, (ld, 1), T::zero(), out, ld);
                    for (row, o) in out.chunks_exact(ld).zip(gi * og..) {
                        for (seg, j) in row.chunks_exact(len).zip(0..) {
                            y[(j * self.cy + o) * p..][..len].copy_from_slice(seg);
                        }
                    }
                }
            }
        });
        Ok(y)
    }

    /// `x = conv_transpose(y, w)`: per block of images, group and block of positions,
    /// `W^T y` then col2im.
    pub(super) fn backward_input<T: Element>(
        &self,
        op: &'static str,
        y: &[T],
        w: &[T],
    ) -> Result<Vec<T>, Error> {
        let (k, p, g) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / g, self.cy / g);
        let xg = cg * self.x[0] * self.x[1];
        let mut x = try_zeros(op, self.n * self.x_image())?;
        if self.cy == 0 {
            // No input channel: zeros, without unrolling a kernel that may be huge (a weight
            // with no output channel holds no element whatever its other lengths).
            return Ok(x);
        }
        let table = self.gather_table();
        self.for_each_block(&mut x, |images, x, [cols, ys, padded]| {
            for gi in 0..g {
                let w = &w[gi * og * k..(gi + 1) * og * k];
                for span in self.spans() {
                    let (len, ld) = (span.len(), images.len() * span.len());
                    let (b, ldb): (&[T], usize) = if images.len() == 1 {
                        (&y[(images.start * self.cy + gi * og) * p + span.start..], p)
                    } else {
                        ys.resize(og * ld, T::zero());
                        self.gather_channels(y, gi * og..(gi + 1) * og, &images, &span, ys);
                        (ys, ld)
                    };
                    if images.len() == 1 && self.is_pointwise() {
                        let x = &mut x[gi * xg..(gi + 1) * xg];
                        T::gemm(k, og, p, w, (1, k), b, (ldb, 1), T::zero(), x, p);
                        continue;
                    }
                    cols.resize(k * ld, T::zero());
                    T::gemm(k, og, ld, w, (1, k), b, (ldb, 1), T::zero(), cols, ld);
                    for j in 0..images.len() {
                        let x = &mut x[j * self.x_image() + gi * xg..][..xg];
                        match &table {
                            Some(table) => self.fold(cols, (ld, j * len), x, table, padded),
                            None => self.col2im(cols, (ld, j * len), x, &span),
                        }
                    }
                }
            }
        });
        Ok(x)
    }

    /// `dw = sum over images of g cols^T`, per block of images, group and block of positions
    /// (a block of several images is one product over all their positions); the images split
    /// into one run per thread for a large batch, each with its own sum, added in order at the
    /// end.
    pub(super) fn backward_weight<T: Element>(&self, x: &[T], g: &[T]) -> Vec<T> {
        let (k, p, groups) = (self.rows(), self.positions(), self.groups);
        let (cg, og) = (self.cx / groups, self.cy / groups);
        let xg = cg * self.x[0] * self.x[1];
        if self.cy * k == 0 {
            // An empty gradient: no loop over the groups, which channels of length 0 do not
            // bound.
            return Vec::new();
        }
        let table = self.gather_table();
        let row_table = table.as_ref().map(|t| t.by_position(k, p));
        let run = |run: Range<usize>| {
            let mut dw = vec![T::zero(); self.cy * k];
            let (mut cols, mut gs) = (Vec::new(), Vec::new());
            let step = self.images_per_block();
            for start in run.clone().step_by(step) {
                let images = start..(start + step).min(run.end);
                for gi in 0..groups {
                    let dw = &mut dw[gi * og * k..(gi + 1) * og * k];
                    for span in self.spans() {
                        let ld = images.len() * span.len();
                        let (a, lda): (&[T], usize) = if images.len() == 1 {
                            (&g[(images.start * self.cy + gi * og) * p + span.start..], p)
                        } else {
                            gs.resize(og * ld, T::zero());
                            self.gather_channels(
                                g,
                                gi * og..(gi + 1) * og,
                                &images,
                                &span,
                                &mut gs,
                            );
                            (&gs, ld)
                        };
                        // With a table, the windows are unrolled one position per row
                        // (`ld x k`), so that both factors are read along their rows: the
                        // product of the transposed `k x ld` layout ran at under half the
                        // rate (the digits' 64 x 224 x 288, one thread: 108 -> 64 us).
                        let (b, b_strides): (&[T], _) = if let Some(rows) = &row_table {
                            cols.resize(ld * k, T::zero());
                            self.unroll_rows(x, gi, &images, &mut cols, rows);
                            (&cols, (k, 1))
                        } else if images.len() == 1 && self.is_pointwise() {
                            (&x[images.start * self.x_image() + gi * xg..][..xg], (1, ld))
                        } else {
                            cols.resize(k * ld, T::zero());
                            self.unroll(x, gi, &images, &span, &mut cols, table.as_ref());
                            (&cols, (1, ld))
                        };
                        T::gemm(og, ld, k, a, (lda, 1), b, b_strides, T::one(), dw, k);
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
