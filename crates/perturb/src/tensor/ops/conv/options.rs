//! The convolutions' options: stride, padding (per side or "same"), dilation, groups and
//! output padding, with their builder methods.

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
    pub(super) fn pads(&self, kernel: [usize; D]) -> [(usize, usize); D] {
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
    pub(super) fn without_output_padding(mut self) -> Self {
        self.output_padding = [0; D];
        self
    }
}
