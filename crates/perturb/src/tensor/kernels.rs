//! Loops over plain buffers, shared by the operations: element-wise maps, broadcasting,
//! reductions to a shape, axis permutation. No allocation per element; rayon above a size
//! threshold.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::buffers;
use super::dense::element_count;
use super::element::Element;
use crate::error::Error;

/// How much work one element of an element-wise loop is, which decides where rayon's pool
/// starts to pay. Measured on the project's 2-core machine (BENCHMARKS.md,
/// `parallel_threshold`): handing work to the pool costs about 15-20 µs, so `+` gains only from
/// about 2^18 elements and `exp` from about 2^14.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cost {
    /// A few arithmetic instructions per element (`+`, `*`, comparisons, `abs`).
    Cheap,
    /// A libm call or a division per element (`exp`, `ln`, `tanh`, `sigmoid`, `powf`).
    Transcendental,
}

impl Cost {
    /// The element count from which a loop of this cost runs on rayon's pool.
    pub(crate) fn parallel_threshold(self) -> usize {
        match self {
            Cost::Cheap => 1 << 18,
            Cost::Transcendental => 1 << 14,
        }
    }
}

/// `f` applied to every element.
pub(crate) fn map<T: Element>(x: &[T], cost: Cost, f: impl Fn(T) -> T + Sync + Send) -> Vec<T> {
    build(x.len(), cost, |out, start| {
        map_into(out, &x[start..start + out.len()], &f)
    })
}

/// `f` applied to corresponding elements of two slices of the same length.
pub(crate) fn zip<T: Element>(
    a: &[T],
    b: &[T],
    cost: Cost,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Vec<T> {
    debug_assert_eq!(a.len(), b.len());
    build(a.len(), cost, |out, start| {
        let end = start + out.len();
        zip_into(out, &a[start..end], &b[start..end], &f)
    })
}

/// `f` applied to corresponding elements of three slices of the same length.
pub(crate) fn zip3<T: Element>(
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> T + Sync + Send,
) -> Vec<T> {
    debug_assert!(a.len() == b.len() && a.len() == c.len());
    build(a.len(), Cost::Cheap, |out, start| {
        let end = start + out.len();
        zip3_into(out, &a[start..end], &b[start..end], &c[start..end], &f)
    })
}

/// `n` elements written by `fill(chunk, start)` as [`par_build`] does, in parallel from
/// `cost`'s threshold and in one call below it.
pub(crate) fn build<T: Element>(
    n: usize,
    cost: Cost,
    fill: impl Fn(&mut [MaybeUninit<T>], usize) + Sync,
) -> Vec<T> {
    if n >= cost.parallel_threshold() {
        return par_build(n, fill);
    }
    let mut out = buffers::take(n);
    fill(&mut out.spare_capacity_mut()[..n], 0);
    // SAFETY: as in `par_build`, `fill` writes every element of the chunk it is given.
    unsafe { out.set_len(n) };
    out
}

/// Elements per task of the parallel loops.
const CHUNK: usize = 1 << 13;

/// `n` elements written in parallel, chunk by chunk: `fill(chunk, start)` must write every
/// element of `chunk`, which holds elements `start .. start + chunk.len()`.
fn par_build<T: Element>(n: usize, fill: impl Fn(&mut [MaybeUninit<T>], usize) + Sync) -> Vec<T> {
    let mut out = buffers::take(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| fill(chunk, i * CHUNK));
    // SAFETY: the chunks cover the first `n` elements, and every `fill` (`map_into`, `zip_into`,
    // `zip3_into`, `vmath::map`'s) writes every element of its chunk: each zips the chunk with
    // input slices it has asserted are of its length.
    unsafe { out.set_len(n) };
    out
}

// The loops of `build`'s chunks are functions of their own, not inlined: their slices then
// arrive as arguments the compiler knows do not overlap. Inlined into rayon's closures, a loop
// whose `f` captured a constant (`scale`'s factor) reloaded it for every element and was not
// vectorised: 115-250 µs against 34-55 µs serial for 401,408 f32 (the mlp-784 update).
//
// They are compiled for the default target only (SSE2: two `f64` a vector). Compiled also for
// AVX2 (`dispatch!` below) they ran 40% fewer instructions but took the same time or up to 4%
// more (BENCHMARKS.md, "Element-wise loops on AVX2"): at the sizes where they run on one thread
// they wait on the caches, not on instructions.

/// Runs `$body` compiled for AVX2 and FMA where this CPU has them ([`vmath::vectorised`]),
/// else for the default target: `$name` is the AVX2 copy's name, `$args` its arguments. The
/// results are the same bit for bit: Rust never fuses a multiply and an add on its own, and an
/// explicit `mul_add` is correctly rounded on either path. Used by the fused chain's block
/// loops, which work in L1 and so are bound by instructions.
macro_rules! dispatch {
    ($name:ident($($arg:ident: $ty:ty),*) $body:block) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $name<T: Element>($($arg: $ty),*) $body
            if $crate::tensor::vmath::vectorised() {
                // SAFETY: `vectorised` checked that this CPU has AVX2 and FMA.
                return unsafe { $name($($arg),*) };
            }
        }
        $body
    }};
}
pub(crate) use dispatch;

/// `out[i] = f(x[i])`.
#[inline(never)]
fn map_into<T: Element>(out: &mut [MaybeUninit<T>], x: &[T], f: &impl Fn(T) -> T) {
    assert_eq!(out.len(), x.len());
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f(v));
    }
}

/// `out[i] = f(a[i], b[i])`.
#[inline(never)]
fn zip_into<T: Element>(out: &mut [MaybeUninit<T>], a: &[T], b: &[T], f: &impl Fn(T, T) -> T) {
    assert!(out.len() == a.len() && out.len() == b.len());
    for (o, (&x, &y)) in out.iter_mut().zip(a.iter().zip(b)) {
        o.write(f(x, y));
    }
}

/// `out[i] = f(a[i], b[i], c[i])`.
#[inline(never)]
fn zip3_into<T: Element>(
    out: &mut [MaybeUninit<T>],
    a: &[T],
    b: &[T],
    c: &[T],
    f: &impl Fn(T, T, T) -> T,
) {
    assert!(out.len() == a.len() && out.len() == b.len() && out.len() == c.len());
    for (o, ((&x, &y), &z)) in out.iter_mut().zip(a.iter().zip(b).zip(c)) {
        o.write(f(x, y, z));
    }
}

/// The shape two shapes broadcast to (numpy's rules: align on the right, a length of 1
/// stretches), or a shape error naming `op` (also when the result has more elements than a
/// tensor can hold, as `[2^32, 1]` and `[1, 2^32]` would).
pub(crate) fn broadcast_shape(
    op: &'static str,
    a: &[usize],
    b: &[usize],
) -> Result<Vec<usize>, Error> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: a.to_vec(),
                    rhs: b.to_vec(),
                })
            }
        };
    }
    element_count(op, &out)?;
    Ok(out)
}

/// Row-major strides of `shape` seen from the broadcast shape `out`: 0 along stretched axes.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; out.len()];
    let offset = out.len() - shape.len();
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        strides[i + offset] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    strides
}

/// Calls `f(out_index, a_offset, b_offset)` for every element of `out` in row-major order.
fn for_each_broadcast(
    out: &[usize],
    sa: &[usize],
    sb: &[usize],
    mut f: impl FnMut(usize, usize, usize),
) {
    let total: usize = out.iter().product();
    if total == 0 {
        return;
    }
    let nd = out.len();
    let mut index = vec![0usize; nd];
    let (mut oa, mut ob) = (0usize, 0usize);
    for flat in 0..total {
        f(flat, oa, ob);
        // Advance the odometer, keeping the two offsets in step.
        for axis in (0..nd).rev() {
            index[axis] += 1;
            oa += sa[axis];
            ob += sb[axis];
            if index[axis] < out[axis] {
                break;
            }
            oa -= sa[axis] * out[axis];
            ob -= sb[axis] * out[axis];
            index[axis] = 0;
        }
    }
}

/// `f(a, b)` with numpy broadcasting; returns the values and their shape.
pub(crate) fn broadcast_zip<T: Element>(
    op: &'static str,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    cost: Cost,
    f: impl Fn(T, T) -> T + Sync + Send,
) -> Result<(Vec<T>, Vec<usize>), Error> {
    if a_shape == b_shape {
        return Ok((zip(a, b, cost, f), a_shape.to_vec()));
    }
    let out = broadcast_shape(op, a_shape, b_shape)?;
    if b.len() == 1 {
        let y = b[0];
        return Ok((map(a, cost, |x| f(x, y)), out));
    }
    if a.len() == 1 {
        let x = a[0];
        return Ok((map(b, cost, |y| f(x, y)), out));
    }
    if a_shape == out.as_slice() {
        if let Some(data) = zip_with_small(a, &out, b, b_shape, &f) {
            return Ok((data, out));
        }
    }
    if b_shape == out.as_slice() {
        if let Some(data) = zip_with_small(b, &out, a, a_shape, |y, x| f(x, y)) {
            return Ok((data, out));
        }
    }
    let sa = broadcast_strides(a_shape, &out);
    let sb = broadcast_strides(b_shape, &out);
    let mut data = buffers::take(out.iter().product());
    for_each_broadcast(&out, &sa, &sb, |_, ia, ib| data.push(f(a[ia], b[ib])));
    Ok((data, out))
}

/// `f(big, small)` element by element where `small` broadcasts to `big`'s shape `out` as a row
/// repeated over the leading axes (a bias added to a batch) or as one value per trailing block;
/// `None` for the other layouts.
fn zip_with_small<T: Element>(
    big: &[T],
    out: &[usize],
    small: &[T],
    small_shape: &[usize],
    f: impl Fn(T, T) -> T,
) -> Option<Vec<T>> {
    if big.is_empty() || small.is_empty() {
        return None;
    }
    let mut data = buffers::take(big.len());
    match layout(out, small_shape) {
        Layout::Leading(_) => {
            // Whole copies of a short row at a time, so that the inner loop is long.
            let row = repeated_row(small);
            let mut chunks = big.chunks_exact(row.len());
            for chunk in &mut chunks {
                data.extend(chunk.iter().zip(row.iter()).map(|(&x, &y)| f(x, y)));
            }
            // A whole number of `small` rows, fewer than in `row`.
            let rest = chunks.remainder();
            data.extend(rest.iter().zip(row.iter()).map(|(&x, &y)| f(x, y)));
        }
        Layout::Trailing(block) => {
            for (chunk, &y) in big.chunks_exact(block).zip(small) {
                data.extend(chunk.iter().map(|&x| f(x, y)));
            }
        }
        _ => return None,
    }
    Some(data)
}

/// `row` repeated to whole copies of at least 64 elements, or `row` itself where it is that
/// long: a loop over each copy of a row of one to a few elements (a bias, a scalar's
/// cotangent) costs several times its work, a loop over 64 elements does not.
fn repeated_row<T: Copy>(row: &[T]) -> std::borrow::Cow<'_, [T]> {
    const MIN: usize = 64;
    if row.len() >= MIN || row.is_empty() {
        std::borrow::Cow::Borrowed(row)
    } else {
        std::borrow::Cow::Owned(row.repeat(MIN.div_ceil(row.len())))
    }
}

/// How a shape `to` sits inside a shape `from` it broadcasts to, for the two layouts with a
/// fast loop: `Leading(rows)` when only leading axes differ (`to` is one row of `from`, as a
/// bias is of a batch), `Trailing(block)` when only trailing axes differ (each element of `to`
/// stands for a contiguous block of `from`).
enum Layout {
    Same,
    Leading(usize),
    Trailing(usize),
    General,
}

fn layout(from: &[usize], to: &[usize]) -> Layout {
    if from == to {
        return Layout::Same;
    }
    let aligned: Vec<usize> = std::iter::repeat(1)
        .take(from.len() - to.len())
        .chain(to.iter().copied())
        .collect();
    let split = aligned.iter().zip(from).take_while(|(a, f)| a != f).count();
    if aligned[..split].iter().all(|&a| a == 1) && aligned[split..] == from[split..] {
        return Layout::Leading(from[..split].iter().product());
    }
    let split = aligned.iter().zip(from).take_while(|(a, f)| a == f).count();
    if aligned[split..].iter().all(|&a| a == 1) {
        return Layout::Trailing(from[split..].iter().product());
    }
    Layout::General
}

/// The sum of a slice, in eight running sums: one running sum is a chain of dependent additions
/// that runs at a quarter of the speed or less, and eight sums also round off less. In `f32`
/// the running sums are carried into `f64` every [`RunningSum::CARRY`] rounds (see [`wide`]).
pub(crate) fn sum<T: Element>(x: &[T]) -> T {
    let mut total = RunningSum::new();
    total.add(x);
    total.finish()
}

/// [`sum`] a piece at a time (a fused chain's blocks): the same eight running sums carried
/// from piece to piece, so that pieces whose lengths are multiples of 8, all but the last,
/// give the bits of one [`sum`] of the whole.
///
/// A type narrower than `f64` carries its eight sums into eight `f64` sums every
/// [`CARRY`](Self::CARRY) rounds of eight: an `f32` running sum stops growing at `2^24` times
/// its terms and drops every term below half an ulp of the sum so far (eight of them made
/// `sum_all` of `2^28` ones `2^27`). `f64` sums are never carried, so their bits are the eight
/// plain running sums'.
pub(crate) struct RunningSum<T> {
    acc: [T; 8],
    /// The rounds of eight added into `acc` since it was last carried into `wide`.
    rounds: usize,
    wide: Option<[f64; 8]>,
    /// The elements past the last multiple of 8, added one by one.
    tail: T,
}

impl<T: Element> RunningSum<T> {
    /// Rounds of eight a narrow type adds in `T` before carrying (2,048 elements).
    pub(crate) const CARRY: usize = 256;

    pub(crate) fn new() -> Self {
        RunningSum {
            acc: [T::zero(); 8],
            rounds: 0,
            wide: None,
            tail: T::zero(),
        }
    }

    /// How many more rounds `acc` takes before it is carried (never, for `f64`).
    fn room(&self) -> usize {
        if narrower_than_f64::<T>() {
            Self::CARRY - self.rounds
        } else {
            usize::MAX
        }
    }

    /// Counts `n` rounds added into `acc`, and carries it into `wide` when it is full.
    fn counted(&mut self, n: usize) {
        if !narrower_than_f64::<T>() {
            return;
        }
        self.rounds += n;
        if self.rounds == Self::CARRY {
            let carried = self.wide.get_or_insert([0.0; 8]);
            for (w, a) in carried.iter_mut().zip(&mut self.acc) {
                *w += wide(*a);
                *a = T::zero();
            }
            self.rounds = 0;
        }
    }

    /// Adds the next piece.
    pub(crate) fn add(&mut self, x: &[T]) {
        let mut chunks = x.chunks_exact(8);
        self.tail = chunks.remainder().iter().fold(self.tail, |a, &v| a + v);
        while chunks.len() > 0 {
            let n = chunks.len().min(self.room());
            for chunk in chunks.by_ref().take(n) {
                for (a, &v) in self.acc.iter_mut().zip(chunk) {
                    *a += v;
                }
            }
            self.counted(n);
        }
    }

    /// Adds the products `a[i] b[i]` of the next piece (`a` and `b` of one length).
    pub(crate) fn add_products(&mut self, a: &[T], b: &[T]) {
        let (mut chunks_a, mut chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
        self.tail = (chunks_a.remainder().iter().zip(chunks_b.remainder()))
            .fold(self.tail, |s, (&x, &y)| s + x * y);
        while chunks_a.len() > 0 {
            let n = chunks_a.len().min(self.room());
            for (ca, cb) in chunks_a.by_ref().take(n).zip(chunks_b.by_ref().take(n)) {
                for ((s, &x), &y) in self.acc.iter_mut().zip(ca).zip(cb) {
                    *s += x * y;
                }
            }
            self.counted(n);
        }
    }

    /// Adds a piece of `n` elements that all equal `v`.
    pub(crate) fn add_repeated(&mut self, v: T, n: usize) {
        let mut rounds = n / 8;
        while rounds > 0 {
            let k = rounds.min(self.room());
            for _ in 0..k {
                for a in &mut self.acc {
                    *a += v;
                }
            }
            self.counted(k);
            rounds -= k;
        }
        for _ in 0..n % 8 {
            self.tail += v;
        }
    }

    pub(crate) fn finish(self) -> T {
        let acc = self.acc;
        match self.wide {
            None => {
                ((acc[0] + acc[1]) + (acc[2] + acc[3]))
                    + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
                    + self.tail
            }
            Some(carried) => {
                let w: [f64; 8] = std::array::from_fn(|i| carried[i] + wide(acc[i]));
                let total = ((w[0] + w[1]) + (w[2] + w[3])) + ((w[4] + w[5]) + (w[6] + w[7]));
                narrow(total + wide(self.tail))
            }
        }
    }
}

/// Whether `T` is narrower than `f64`, so that its running sums are carried into `f64` (by
/// [`RunningSum`] and the column sums alike).
fn narrower_than_f64<T>() -> bool {
    std::mem::size_of::<T>() < std::mem::size_of::<f64>()
}

/// How many rows the column sums ([`column_sums`], [`sum_rows`]) add in `T` before carrying
/// their partial sums into f64: 256 for a type narrower than f64, so that each result's error
/// stays about that many ulps however many rows there are (an f32 running sum stops growing at
/// `2^24` times its terms and drops every term below half an ulp of the sum so far), and all
/// of them for f64, whose adds are then those of one running sum.
fn rows_per_carry<T: Element>() -> usize {
    if narrower_than_f64::<T>() {
        256
    } else {
        usize::MAX
    }
}

/// The sums of the `K` columns of the first `rows` rows of `x` (rows of `K` elements), in
/// registers, carried into f64 every [`rows_per_carry`] rows.
fn column_sums<T: Element, const K: usize>(x: &[T], rows: usize, out: &mut [T]) {
    let every = rows_per_carry::<T>();
    let (mut sums, mut wide, mut left) = ([T::zero(); K], [0.0_f64; K], every);
    for row in x.chunks_exact(K).take(rows) {
        for (sum, &v) in sums.iter_mut().zip(row) {
            *sum += v;
        }
        left -= 1;
        if left == 0 {
            for (w, s) in wide.iter_mut().zip(sums.iter_mut()) {
                *w += s.to_f64_value();
                *s = T::zero();
            }
            left = every;
        }
    }
    for ((o, w), s) in out.iter_mut().zip(wide).zip(sums) {
        *o = narrow(w + s.to_f64_value());
    }
}

/// The sums of `width` columns over `rows` rows: `add(partial, r)` adds row `r` into partial
/// sums of type `T`, carried into f64 every [`rows_per_carry`] rows.
pub(crate) fn sum_rows<T: Element>(
    width: usize,
    rows: usize,
    mut add: impl FnMut(&mut [T], usize),
) -> Vec<T> {
    if width == 0 {
        // No columns: nothing to add, however many (empty) rows.
        return Vec::new();
    }
    let every = rows_per_carry::<T>();
    let (mut partial, mut wide) = (vec![T::zero(); width], vec![0.0_f64; width]);
    let carry = |partial: &mut [T], wide: &mut [f64]| {
        for (w, p) in wide.iter_mut().zip(partial.iter_mut()) {
            *w += p.to_f64_value();
            *p = T::zero();
        }
    };
    let mut left = every;
    for r in 0..rows {
        add(&mut partial, r);
        left -= 1;
        if left == 0 {
            carry(&mut partial, &mut wide);
            left = every;
        }
    }
    carry(&mut partial, &mut wide);
    wide.into_iter().map(narrow).collect()
}

/// `v` as an `f64`, the accumulator of running sums whose terms would otherwise be lost: an
/// `f32` running sum stops growing once it reaches `2^24` times the terms added (the softmax
/// of `2^25` equal logits was `2^-24` each, twice the right value), and drops each term below
/// half an ulp of the sum so far long before that. For `f64` it changes nothing.
pub(crate) fn wide<T: Element>(v: T) -> f64 {
    v.to_f64_value()
}

/// An `f64` running sum (see [`wide`]) rounded back to `T`.
pub(crate) fn narrow<T: Element>(v: f64) -> T {
    T::from_f64(v).unwrap_or_else(T::nan)
}

/// Sums `x` (of shape `from`) down to `to`, a shape `from` is a broadcast of: the adjoint of
/// broadcasting. Where each result adds the rows of `x` one at a time (a leading axis summed,
/// or axes that are neither leading nor trailing), the running sums are kept in f64: in f32
/// they stop growing at `2^24` times the terms (the mean over `[256, C, 512, 256]` of ones but
/// the channels was 0.5) and drop each term below half an ulp of the sum so far. For f64 the
/// adds are the same.
pub(crate) fn sum_to<T: Element>(x: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    let mut out = buffers::filled(to.iter().product(), T::zero());
    match layout(from, to) {
        Layout::Same => out.copy_from_slice(x),
        Layout::Leading(_) if out.len() == 1 => out[0] = sum(x),
        Layout::Leading(rows) if (2..=4).contains(&out.len()) => {
            // A bias of a few units: running sums in registers, not a loop per row.
            match out.len() {
                2 => column_sums::<T, 2>(x, rows, &mut out),
                3 => column_sums::<T, 3>(x, rows, &mut out),
                _ => column_sums::<T, 4>(x, rows, &mut out),
            }
        }
        Layout::Leading(rows) => {
            let width = out.len();
            let sums = sum_rows(width, rows, |partial, r| {
                for (p, &v) in partial.iter_mut().zip(&x[r * width..(r + 1) * width]) {
                    *p += v;
                }
            });
            out.copy_from_slice(&sums);
        }
        Layout::Trailing(block) => {
            for (o, chunk) in out.iter_mut().zip(x.chunks_exact(block.max(1))) {
                *o = sum(chunk);
            }
        }
        Layout::General => {
            let st = broadcast_strides(to, from);
            let zeros = vec![0; from.len()];
            let mut sums = vec![0.0_f64; out.len()];
            for_each_broadcast(from, &st, &zeros, |flat, it, _| {
                sums[it] += x[flat].to_f64_value()
            });
            for (o, s) in out.iter_mut().zip(sums) {
                *o = narrow(s);
            }
        }
    }
    out
}

/// `c a b` summed down to `to` without the product's buffer: one pass where `a` and `b` each
/// have the broadcast shape `out` (or are one value) and `to` is one value, a row of `out`
/// repeated over its leading axes, or one value per trailing block of `out`; `None` for the
/// other layouts. The reverse rule of a product with a broadcast input (a learnt scale, a
/// bias-like factor) is such a sum, and by hand it is one loop.
pub(crate) fn product_sum_to<T: Element>(
    c: T,
    a: &[T],
    b: &[T],
    out: &[usize],
    to: &[usize],
) -> Option<Vec<T>> {
    let total: usize = out.iter().product();
    let fits = |x: &[T]| x.len() == total || x.len() == 1;
    if total == 0 || !fits(a) || !fits(b) {
        return None;
    }
    // One operand of one value is a factor of the sum; `a` is then the other.
    let (a, b, c) = match (a.len() == total, b.len() == total) {
        (true, true) => (a, Some(b), c),
        (true, false) => (a, None, c * b[0]),
        (false, true) => (b, None, c * a[0]),
        (false, false) => return None,
    };
    let dot = |range: std::ops::Range<usize>| match b {
        Some(b) => dot(&a[range.clone()], &b[range]),
        None => sum(&a[range]),
    };
    let mut sums = buffers::filled(to.iter().product(), T::zero());
    match layout(out, to) {
        Layout::Leading(_) if sums.len() == 1 => sums[0] = dot(0..total),
        Layout::Leading(_) => {
            let width = sums.len();
            sums = sum_rows(width, total / width, |partial, r| {
                let row = &a[r * width..(r + 1) * width];
                match b {
                    Some(b) => {
                        let other = &b[r * width..(r + 1) * width];
                        for ((s, &x), &y) in partial.iter_mut().zip(row).zip(other) {
                            *s += x * y;
                        }
                    }
                    None => partial.iter_mut().zip(row).for_each(|(s, &x)| *s += x),
                }
            });
        }
        Layout::Trailing(block) => {
            for (i, s) in sums.iter_mut().enumerate() {
                *s = dot(i * block..(i + 1) * block);
            }
        }
        Layout::Same | Layout::General => return None,
    }
    sums.iter_mut().for_each(|s| *s = c * *s);
    Some(sums)
}

/// The sum of `a[i] b[i]`, in eight running sums carried into `f64` as [`sum`]'s are.
pub(crate) fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    debug_assert_eq!(a.len(), b.len());
    let mut total = RunningSum::new();
    total.add_products(a, b);
    total.finish()
}

/// Copies `x` (of shape `from`) to the broadcast shape `to`.
pub(crate) fn broadcast_to<T: Element>(x: &[T], from: &[usize], to: &[usize]) -> Vec<T> {
    let total: usize = to.iter().product();
    match layout(to, from) {
        Layout::Same => buffers::collect(total, x.iter().copied()),
        Layout::Leading(_) => {
            let mut out = buffers::take(total);
            let row = repeated_row(x);
            if !row.is_empty() {
                for _ in 0..total / row.len() {
                    out.extend_from_slice(&row);
                }
                // A whole number of copies of `x`, fewer than in `row`.
                out.extend_from_slice(&row[..total % row.len()]);
            }
            out
        }
        Layout::Trailing(block) => {
            let mut out = buffers::take(total);
            for &v in x {
                out.resize(out.len() + block, v);
            }
            out
        }
        Layout::General => {
            let sf = broadcast_strides(from, to);
            let zeros = vec![0; to.len()];
            let mut out = buffers::take(total);
            for_each_broadcast(to, &sf, &zeros, |_, i, _| out.push(x[i]));
            out
        }
    }
}

/// The axes of `x` (of shape `shape`) reordered by `perm`: axis `i` of the result is axis
/// `perm[i]` of `x`.
pub(crate) fn permute<T: Element>(
    x: &[T],
    shape: &[usize],
    perm: &[usize],
) -> (Vec<T>, Vec<usize>) {
    let out: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut in_strides = vec![0; shape.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        in_strides[i] = stride;
        stride *= shape[i];
    }
    let permuted: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    if x.is_empty() {
        // Nothing to move; the tiles below would walk the rows of a [2^40, 0] matrix.
        return (Vec::new(), out);
    }
    if let [rows, cols] = out[..] {
        // The common case, a matrix transpose, in cache-sized tiles.
        if perm == [1, 0] {
            let mut data = buffers::filled(rows * cols, T::zero());
            const TILE: usize = 32;
            for r0 in (0..rows).step_by(TILE) {
                for c0 in (0..cols).step_by(TILE) {
                    for r in r0..(r0 + TILE).min(rows) {
                        for c in c0..(c0 + TILE).min(cols) {
                            data[r * cols + c] = x[c * rows + r];
                        }
                    }
                }
            }
            return (data, out);
        }
    }
    let zeros = vec![0; out.len()];
    let mut data = buffers::take(x.len());
    for_each_broadcast(&out, &permuted, &zeros, |_, i, _| data.push(x[i]));
    (data, out)
}

/// Row-major `(m x k) @ (k x n)`.
pub(crate) fn matmul<T: Element>(a: &[T], b: &[T], m: usize, k: usize, n: usize) -> Vec<T> {
    // `gemm` with `beta = 0` writes every element without reading it.
    let mut c = buffers::stale(m * n);
    T::gemm(m, k, n, a, (k, 1), b, (n, 1), T::zero(), &mut c, n);
    c
}
