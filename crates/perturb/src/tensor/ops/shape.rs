//! Operations that move elements without changing them: reshape, permute, broadcast and its
//! adjoint, the sum down to a shape, narrow (a slice along an axis) and its adjoint. All are
//! linear, so each JVP is the operation applied to the tangent.

use crate::error::Error;
use crate::tensor::batched;
use crate::tensor::buffers;
use crate::tensor::dense::element_count;
use crate::tensor::kernels;
use crate::tensor::{Array, Cotangent, Element, Op, Tensor, VjpReads};

use super::reduce::{check_axis, split_at_axis};
use super::unary;

/// The same elements in a new shape of the same size; VJP: the cotangent reshaped back.
///
/// ```
/// use perturb::tensor::{ops::Reshape, Op, Tensor};
/// let x = Tensor::<f64>::arange(6);
/// assert_eq!(Reshape(vec![2, 3]).eval(&[&x]).unwrap().shape(), &[2, 3]);
/// assert!(Reshape(vec![4]).eval(&[&x]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reshape(pub Vec<usize>);

impl Op for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], size: usize) -> Result<A, Error> {
        A::apply(&Reshape(batched::with_stack(size, &self.0)), x)
    }

    fn batch_trailing<A: Array>(
        &self,
        x: &[&A],
        trailing: &[bool],
        size: usize,
    ) -> Option<Result<A, Error>> {
        (trailing == [true]).then(|| A::apply(&Reshape(batched::with_trailing(&self.0, size)), x))
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        super::unary("reshape", inputs)?.reshape(&self.0)
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_reshape(x[0].shape())?)])
    }
}

/// Reorders the axes: axis `i` of the result is axis `perm[i]` of the input; VJP: the
/// inverse permutation.
///
/// ```
/// use perturb::tensor::{ops::Permute, Op, Tensor};
/// let x = Tensor::<f64>::arange(6).reshape(&[2, 3]).unwrap();
/// assert_eq!(Permute(vec![1, 0]).eval(&[&x]).unwrap().to_vec(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permute(pub Vec<usize>);

impl Op for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        let perm = std::iter::once(0).chain(self.0.iter().map(|a| a + 1));
        A::apply(&Permute(perm.collect()), x)
    }

    fn batch_trailing<A: Array>(
        &self,
        x: &[&A],
        trailing: &[bool],
        _: usize,
    ) -> Option<Result<A, Error>> {
        let rank = x.first()?.shape().len().checked_sub(1)?;
        if trailing != [true] || self.0.len() != rank {
            return None;
        }
        let perm = self.0.iter().copied().chain([rank]).collect();
        Some(A::apply(&Permute(perm), x))
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = super::unary(self.name(), inputs)?;
        let n = x.ndim();
        let mut seen = vec![false; n];
        let valid = self.0.len() == n
            && self
                .0
                .iter()
                .all(|&p| p < n && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::InvalidArgument {
                op: "permute",
                reason: format!(
                    "{:?} is not a permutation of the {} axes of a tensor of shape {:?}",
                    self.0,
                    n,
                    x.shape()
                ),
            });
        }
        let (data, shape) = kernels::permute(x.as_slice(), x.shape(), &self.0);
        Ok(Tensor::from_parts(data, shape))
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, _: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        let mut inverse = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(ct.try_permute(&inverse)?)])
    }
}

/// Copies along axes of length 1 (and new leading axes) to reach the shape; VJP: the sum back
/// to the input's shape.
///
/// ```
/// use perturb::tensor::{ops::BroadcastTo, Op, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// assert_eq!(BroadcastTo(vec![2, 2]).eval(&[&x]).unwrap().to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BroadcastTo(pub Vec<usize>);

impl Op for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    /// Axes of length 1 after the stack's up to the target's rank, then the broadcast.
    fn batch<A: Array>(&self, x: &[&A], _: &[bool], size: usize) -> Result<A, Error> {
        let x = batched::to_rank(super::unary(self.name(), x)?, self.0.len())?;
        A::apply(&BroadcastTo(batched::with_stack(size, &self.0)), &[&x])
    }

    fn batch_trailing<A: Array>(
        &self,
        x: &[&A],
        trailing: &[bool],
        size: usize,
    ) -> Option<Result<A, Error>> {
        (trailing == [true])
            .then(|| A::apply(&BroadcastTo(batched::with_trailing(&self.0, size)), x))
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = super::unary(self.name(), inputs)?;
        check_broadcast("broadcast_to", x.shape(), &self.0)?;
        Ok(Tensor::from_parts(
            kernels::broadcast_to(x.as_slice(), x.shape(), &self.0),
            self.0.clone(),
        ))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let x = super::unary(self.name(), inputs).ok()?;
        check_broadcast("broadcast_to", x, &self.0).ok()?;
        Some(self.0.clone())
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_sum_to(x[0].shape())?)])
    }
}

/// Sums down to a shape the input is a broadcast of (over new leading axes, and over axes kept
/// with length 1); VJP: the cotangent broadcast back.
///
/// ```
/// use perturb::tensor::{ops::SumTo, Op, Tensor};
/// let x = Tensor::<f64>::ones(&[2, 3]);
/// assert_eq!(SumTo(vec![3]).eval(&[&x]).unwrap().to_vec(), vec![2.0; 3]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumTo(pub Vec<usize>);

impl Op for SumTo {
    fn name(&self) -> &'static str {
        "sum_to"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    /// The sum to the target with axes of length 1 after the stack's, then a reshape.
    fn batch<A: Array>(&self, x: &[&A], _: &[bool], size: usize) -> Result<A, Error> {
        let x = super::unary(self.name(), x)?;
        let rank = x.shape().len() - 1;
        let ones = std::iter::repeat(1).take(rank.saturating_sub(self.0.len()));
        let padded = std::iter::once(size)
            .chain(ones)
            .chain(self.0.iter().copied());
        let summed = A::apply(&SumTo(padded.collect()), &[x])?;
        summed.try_reshape(&batched::with_stack(size, &self.0))
    }

    fn batch_trailing<A: Array>(
        &self,
        x: &[&A],
        trailing: &[bool],
        size: usize,
    ) -> Option<Result<A, Error>> {
        (trailing == [true]).then(|| A::apply(&SumTo(batched::with_trailing(&self.0, size)), x))
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = super::unary(self.name(), inputs)?;
        check_broadcast("sum_to", &self.0, x.shape())?;
        Ok(Tensor::from_parts(
            kernels::sum_to(x.as_slice(), x.shape(), &self.0),
            self.0.clone(),
        ))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let x = super::unary(self.name(), inputs).ok()?;
        check_broadcast("sum_to", &self.0, x).ok()?;
        Some(self.0.clone())
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(ct.try_broadcast_to(x[0].shape())?)])
    }

    /// The cotangent passed on as it is: it broadcasts to the input's shape, and is repeated
    /// along the summed axes only when a rule needs it at full size (see [`Cotangent`]).
    fn vjp_onto<A: Array>(
        &self,
        _: &[&A],
        _: &A,
        ct: &Cotangent<A>,
        _: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        Cotangent::accumulate(&mut gathered[0], ct.clone())
    }
}

/// Checks that `small` broadcasts to exactly `big` (a shape a tensor can have).
pub(super) fn check_broadcast(
    op: &'static str,
    small: &[usize],
    big: &[usize],
) -> Result<(), Error> {
    element_count(op, big)?;
    match kernels::broadcast_shape(op, small, big) {
        Ok(shape) if shape == big => Ok(()),
        _ => Err(Error::ShapeMismatch {
            op,
            lhs: small.to_vec(),
            rhs: big.to_vec(),
        }),
    }
}

/// The elements `start .. start + len` along `axis` (a slice of that axis), a view of the same
/// buffer when they are contiguous; VJP: the cotangent padded back with zeros ([`PadNarrow`]),
/// or added into its window of the cotangent gathered so far ([`Op::vjp_onto`]).
///
/// ```
/// use perturb::tensor::{ops::Narrow, Op, Tensor};
/// let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).unwrap();
/// let y = Narrow { axis: 1, start: 1, len: 2 }.eval(&[&x]).unwrap();
/// assert_eq!(y.to_vec(), vec![2.0, 3.0, 5.0, 6.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Narrow {
    /// The axis sliced.
    pub axis: usize,
    /// The first index kept.
    pub start: usize,
    /// How many indices are kept.
    pub len: usize,
}

impl Op for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], _: &[bool], _: usize) -> Result<A, Error> {
        A::apply(
            &Narrow {
                axis: self.axis + 1,
                start: self.start,
                len: self.len,
            },
            x,
        )
    }

    batch_trailing_over!([axis]);

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let x = unary(self.name(), inputs)?;
        check_window(self.name(), x.shape(), self.axis, self.start, self.len)?;
        let (outer, n, inner) = split_at_axis(x.shape(), self.axis);
        let mut shape = x.shape().to_vec();
        shape[self.axis] = self.len;
        // A window along the first axis that is longer than one (all before it have length 1)
        // is one contiguous run: share the buffer.
        if outer == 1 {
            if let Some(view) = x.window(self.start * inner, shape.clone()) {
                return Ok(view);
            }
        }
        let mut data = buffers::take(outer * self.len * inner);
        if self.len * inner > 0 {
            for block in x.as_slice().chunks_exact(n * inner) {
                data.extend_from_slice(&block[self.start * inner..(self.start + self.len) * inner]);
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        let x = unary(self.name(), inputs).ok()?;
        check_window(self.name(), x, self.axis, self.start, self.len).ok()?;
        let mut shape = x.to_vec();
        shape[self.axis] = self.len;
        Some(shape)
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        super::linear_jvp(self, t)
    }

    fn vjp<A: Array>(&self, x: &[&A], _: &A, ct: &A, _: &[bool]) -> Result<Vec<Option<A>>, Error> {
        Ok(vec![Some(A::apply(&self.adjoint(x[0]), &[ct])?)])
    }

    /// Gathers the cotangent for the input as a window, its padding deferred: added onto a
    /// sum already gathered, or onto a second window when one arrives, in one pass, rather than
    /// padded with zeros and then added ([`Cotangent`]).
    fn vjp_onto<A: Array>(
        &self,
        x: &[&A],
        y: &A,
        ct: &Cotangent<A>,
        _: &[bool],
        gathered: &mut [Option<Cotangent<A>>],
    ) -> Result<(), Error> {
        let ct = ct.clone().stretched(y.shape())?;
        let window = Cotangent::windowed(ct.value, ct.factor, self.adjoint(x[0]));
        Cotangent::accumulate(&mut gathered[0], window)
    }
}

impl Narrow {
    /// The padding that puts a window of `x`'s shape back in place.
    fn adjoint<A: Array>(&self, x: &A) -> PadNarrow {
        PadNarrow {
            axis: self.axis,
            start: self.start,
            total: x.shape()[self.axis],
        }
    }
}

/// The adjoint of [`Narrow`]: places the input at `start ..` along `axis` in zeros of length
/// `total` along that axis, or, given a second input of the result's shape, adds the input into
/// that window of it (`onto + pad(x)` in one pass: how the backward sweep gathers a narrow's
/// cotangent). VJP: the matching [`Narrow`] of the cotangent, and the cotangent itself for `onto`.
///
/// ```
/// use perturb::tensor::{ops::PadNarrow, Op, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0]);
/// let pad = PadNarrow { axis: 0, start: 1, total: 4 };
/// assert_eq!(pad.eval(&[&x]).unwrap().to_vec(), vec![0.0, 1.0, 2.0, 0.0]);
/// let onto = Tensor::vector(&[10.0, 20.0, 30.0, 40.0]);
/// assert_eq!(pad.eval(&[&x, &onto]).unwrap().to_vec(), vec![10.0, 21.0, 32.0, 40.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PadNarrow {
    /// The axis padded.
    pub axis: usize,
    /// Where the input starts along the axis.
    pub start: usize,
    /// The result's length along the axis.
    pub total: usize,
}

impl PadNarrow {
    /// The result's shape for inputs of these shapes, or the error that names what is wrong.
    fn shape_of(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, Error> {
        let (x, onto) = match inputs {
            [x] => (*x, None),
            [x, onto] => (*x, Some(*onto)),
            _ => {
                return Err(Error::InvalidArgument {
                    op: self.name(),
                    reason: format!(
                        "takes 1 or 2 inputs (the window, and optionally the tensor to add it \
                         onto), found {}",
                        inputs.len()
                    ),
                })
            }
        };
        check_axis(self.name(), self.axis, x)?;
        let mut shape = x.to_vec();
        let len = shape[self.axis];
        shape[self.axis] = self.total;
        check_window(self.name(), &shape, self.axis, self.start, len)?;
        element_count(self.name(), &shape)?;
        match onto {
            Some(onto) if onto != shape.as_slice() => Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: shape,
                rhs: onto.to_vec(),
            }),
            _ => Ok(shape),
        }
    }
}

impl Op for PadNarrow {
    fn name(&self) -> &'static str {
        "pad_narrow"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        // A stack that shares one `onto` gets it repeated.
        let pad = PadNarrow {
            axis: self.axis + 1,
            ..*self
        };
        one_axis_in(&pad, x, stacked, size)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
        let shape = self.shape_of(&shapes)?;
        if let Some(empty) = empty_result(&shape) {
            return Ok(empty);
        }
        let (x, onto) = (inputs[0], inputs.get(1));
        let len = x.shape()[self.axis];
        let (outer, _, inner) = split_at_axis(&shape, self.axis);
        // Each element written once: what lies before the window, the window, what lies after.
        let (before, after) = (self.start * inner, (self.total - self.start - len) * inner);
        let mut data = buffers::take(outer * self.total * inner);
        let width = self.total * inner;
        for o in 0..outer {
            let block = &x.as_slice()[o * len * inner..(o + 1) * len * inner];
            // Element loops, not `extend_from_slice`: glibc's `memmove` measured about three
            // times slower here for this copy (the Rosenbrock gradient's pads), and `.copied()`
            // would be turned back into that `memmove`.
            #[allow(clippy::map_clone)]
            match onto {
                None => {
                    data.resize(data.len() + before, T::zero());
                    data.extend(block.iter().map(|&v| v));
                    data.resize(data.len() + after, T::zero());
                }
                Some(onto) => {
                    let row = &onto.as_slice()[o * width..(o + 1) * width];
                    let (head, rest) = row.split_at(before);
                    let (window, tail) = rest.split_at(block.len());
                    data.extend(head.iter().map(|&v| v));
                    data.extend(window.iter().zip(block).map(|(&a, &b)| a + b));
                    data.extend(tail.iter().map(|&v| v));
                }
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        self.shape_of(inputs).ok()
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        match t {
            [Some(tx)] | [Some(tx), None] => A::apply(self, &[*tx]).map(Some),
            [Some(tx), Some(tonto)] => A::apply(self, &[*tx, *tonto]).map(Some),
            [None, Some(tonto)] => Ok(Some((*tonto).clone())),
            _ => Ok(None),
        }
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        let narrow = Narrow {
            axis: self.axis,
            start: self.start,
            len: x[0].shape()[self.axis],
        };
        let mut cts = vec![needed[0].then(|| A::apply(&narrow, &[ct])).transpose()?];
        if x.len() == 2 {
            cts.push(needed[1].then(|| ct.clone()));
        }
        Ok(cts)
    }
}

/// Two windows placed along `axis` in zeros of length `total` and added:
/// `pad(a at starts[0]) + pad(b at starts[1])` in one pass, where they overlap or not. It is how
/// the backward sweep gathers the cotangents of two narrows of one tensor (`x[:-1]` and
/// `x[1:]`): the first is kept as a window until the second arrives ([`Cotangent`]). The
/// inputs' shapes may differ only along `axis`. Linear: JVP the same placement of the tangents,
/// VJP the two [`Narrow`]s of the cotangent.
///
/// ```
/// use perturb::tensor::{ops::PadPair, Op, Tensor};
/// let (a, b) = (Tensor::vector(&[1.0_f64, 2.0]), Tensor::vector(&[10.0, 20.0, 30.0]));
/// let pair = PadPair { axis: 0, total: 5, starts: [0, 1] };
/// assert_eq!(pair.eval(&[&a, &b]).unwrap().to_vec(), vec![1.0, 12.0, 20.0, 30.0, 0.0]);
/// assert!(PadPair { axis: 0, total: 3, starts: [0, 1] }.eval(&[&a, &b]).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PadPair {
    /// The axis padded.
    pub axis: usize,
    /// The result's length along the axis.
    pub total: usize,
    /// Where each input starts along the axis.
    pub starts: [usize; 2],
}

impl PadPair {
    /// The result's shape for inputs of these shapes, or the error that names what is wrong.
    fn shape_of(&self, inputs: &[&[usize]]) -> Result<Vec<usize>, Error> {
        let [a, b] = inputs else {
            return Err(Error::Arity {
                op: self.name(),
                expected: 2,
                found: inputs.len(),
            });
        };
        check_axis(self.name(), self.axis, a)?;
        let mut shape = a.to_vec();
        shape[self.axis] = self.total;
        let mut b_padded = b.to_vec();
        if let Some(len) = b_padded.get_mut(self.axis) {
            *len = self.total;
        }
        if b_padded != shape {
            return Err(Error::ShapeMismatch {
                op: self.name(),
                lhs: a.to_vec(),
                rhs: b.to_vec(),
            });
        }
        for (&start, x) in self.starts.iter().zip([a, b]) {
            check_window(self.name(), &shape, self.axis, start, x[self.axis])?;
        }
        element_count(self.name(), &shape)?;
        Ok(shape)
    }

    /// The single padding of input `i`, for when the other has no tangent.
    fn single(&self, i: usize) -> PadNarrow {
        PadNarrow {
            axis: self.axis,
            start: self.starts[i],
            total: self.total,
        }
    }
}

impl Op for PadPair {
    fn name(&self) -> &'static str {
        "pad_pair"
    }

    const VJP_READS: VjpReads = VjpReads::NOTHING;

    fn batch<A: Array>(&self, x: &[&A], stacked: &[bool], size: usize) -> Result<A, Error> {
        let pair = PadPair {
            axis: self.axis + 1,
            ..*self
        };
        one_axis_in(&pair, x, stacked, size)
    }

    fn eval<T: Element>(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>, Error> {
        let shapes: Vec<&[usize]> = inputs.iter().map(|x| x.shape()).collect();
        let shape = self.shape_of(&shapes)?;
        if let Some(empty) = empty_result(&shape) {
            return Ok(empty);
        }
        let (a, b) = (inputs[0], inputs[1]);
        let lens = [a.shape()[self.axis], b.shape()[self.axis]];
        let (outer, _, inner) = split_at_axis(&shape, self.axis);
        // Cut the axis where a window starts or ends; each piece is zeros, one window, or both.
        let mut cuts = vec![0, self.total];
        for (&start, &len) in self.starts.iter().zip(&lens) {
            cuts.extend([start, start + len]);
        }
        cuts.sort_unstable();
        cuts.dedup();
        let (a, b) = (a.as_slice(), b.as_slice());
        let mut data = buffers::take(outer * self.total * inner);
        for o in 0..outer {
            // Where the piece `p..q` of the axis lies in input `i`, if that input covers it.
            let part = |i: usize, p: usize, q: usize| {
                let (start, len) = (self.starts[i], lens[i]);
                let block = o * len * inner;
                (start <= p && q <= start + len)
                    .then(|| block + (p - start) * inner..block + (q - start) * inner)
            };
            for piece in cuts.windows(2) {
                let (p, q) = (piece[0], piece[1]);
                // Element loops, as in `PadNarrow`, rather than `memmove`.
                #[allow(clippy::map_clone)]
                match (part(0, p, q), part(1, p, q)) {
                    (Some(x), Some(y)) => data.extend(a[x].iter().zip(&b[y]).map(|(&u, &v)| u + v)),
                    (Some(x), None) => data.extend(a[x].iter().map(|&v| v)),
                    (None, Some(y)) => data.extend(b[y].iter().map(|&v| v)),
                    (None, None) => data.resize(data.len() + (q - p) * inner, T::zero()),
                }
            }
        }
        Ok(Tensor::from_parts(data, shape))
    }

    fn output_shape(&self, inputs: &[&[usize]]) -> Option<Vec<usize>> {
        self.shape_of(inputs).ok()
    }

    fn jvp<A: Array>(&self, _: &[&A], _: &A, t: &[Option<&A>]) -> Result<Option<A>, Error> {
        match t {
            [Some(ta), Some(tb)] => A::apply(self, &[*ta, *tb]).map(Some),
            [Some(ta), None] => A::apply(&self.single(0), &[*ta]).map(Some),
            [None, Some(tb)] => A::apply(&self.single(1), &[*tb]).map(Some),
            _ => Ok(None),
        }
    }

    fn vjp<A: Array>(
        &self,
        x: &[&A],
        _: &A,
        ct: &A,
        needed: &[bool],
    ) -> Result<Vec<Option<A>>, Error> {
        (0..2)
            .map(|i| {
                let narrow = Narrow {
                    axis: self.axis,
                    start: self.starts[i],
                    len: x[i].shape()[self.axis],
                };
                needed[i].then(|| A::apply(&narrow, &[ct])).transpose()
            })
            .collect()
    }
}

/// The batching rule of a padding: `shifted` (the same padding one axis further in, past the
/// stack's axis) on all inputs along the stack, those not stacked repeated.
fn one_axis_in<A: Array, O: Op>(
    shifted: &O,
    x: &[&A],
    stacked: &[bool],
    size: usize,
) -> Result<A, Error> {
    let spread = batched::all_stacked(x, stacked, size)?;
    A::apply(shifted, &spread.iter().collect::<Vec<_>>())
}

/// The result of an operation whose (checked) shape has no elements: loops over the blocks
/// around an axis return early with it, rather than walk `outer` empty blocks (up to 2^60).
pub(super) fn empty_result<T: Element>(shape: &[usize]) -> Option<Tensor<T>> {
    shape
        .contains(&0)
        .then(|| Tensor::from_parts(Vec::new(), shape.to_vec()))
}

/// Checks that `start .. start + len` lies inside `axis` of `shape`.
pub(super) fn check_window(
    op: &'static str,
    shape: &[usize],
    axis: usize,
    start: usize,
    len: usize,
) -> Result<(), Error> {
    check_axis(op, axis, shape)?;
    match start.checked_add(len) {
        Some(end) if end <= shape[axis] => Ok(()),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!(
                "the range {start}..{start}+{len} is out of range for axis {axis} of length {} \
                 (shape {shape:?})",
                shape[axis]
            ),
        }),
    }
}
