//! [`Conv2d`]: a 2-D convolution over NCHW input, with a bias per output channel.

use perturb::tensor::conv::{try_bias_add, try_conv2d, Conv2dOptions, Padding};
use perturb::tensor::{Array, Element, Tensor};
use perturb::Error;
use perturb::Tree;

use super::{check_param, in_layer, init_weight};
use crate::module::{Context, Module};
use crate::nn::Init;

/// A 2-D convolution (PyTorch's `Conv2d`, as a cross-correlation): input `[N, C_in, H, W]`
/// (or one image `[C_in, H, W]`), weight `[C_out, C_in / groups, kh, kw]`, bias `[C_out]`,
/// with the stride, padding, dilation and groups of its [`Conv2dOptions`]
/// ([`perturb::tensor::conv::conv2d`] does the work).
///
/// Its parameters are the leaves `weight` and (if it has one) `bias`; the options are not
/// parameters.
///
/// ```
/// use perturb::tensor::conv::Conv2dOptions;
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::Conv2d;
/// use perturb_nn::module::Module;
/// // A 2x2 kernel of ones sums each window; bias 1.
/// let conv = Conv2d {
///     weight: Tensor::ones(&[1, 1, 2, 2]),
///     bias: Some(Tensor::vector(&[1.0])),
///     options: Conv2dOptions::default(),
/// };
/// let x = Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]).unwrap();
/// // windows [1 2 4 5], [2 3 5 6], [4 5 7 8], [5 6 8 9]
/// assert_eq!(conv.forward_eval(&x).unwrap().to_vec(), [13.0, 17.0, 25.0, 29.0]);
/// ```
#[derive(Tree, Clone, Debug, PartialEq)]
pub struct Conv2d<A> {
    /// The kernels, shape `[C_out, C_in / groups, kh, kw]`.
    pub weight: A,
    /// The bias, shape `[C_out]`, if the layer has one.
    pub bias: Option<A>,
    /// Stride, padding, dilation and groups (`output_padding` is not used).
    #[tree(skip)]
    pub options: Conv2dOptions,
}

impl<T: Element> Conv2d<Tensor<T>> {
    /// A convolution from `inputs` to `outputs` channels with a `kernel` (height, width) and
    /// `options`; the weight drawn from `init` with `seed` (fans `inputs / groups * kh * kw`
    /// and `outputs * kh * kw`, as PyTorch counts them), the bias zero. An error naming
    /// `Conv2d::new` if a size, the stride, the dilation or the groups is 0, the groups do not
    /// divide both channel counts, or the weight would have more than
    /// [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS) elements.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Conv2d;
    /// use perturb_nn::nn::Init;
    /// let c = Conv2d::<Tensor<f32>>::new(4, 6, [3, 3], Conv2dOptions::default().groups(2), Init::HeNormal, 0).unwrap();
    /// assert_eq!(c.weight.shape(), &[6, 2, 3, 3]);
    /// let err = Conv2d::<Tensor<f32>>::new(3, 6, [3, 3], Conv2dOptions::default().groups(2), Init::HeNormal, 0)
    ///     .unwrap_err();
    /// assert!(err.to_string().starts_with("Conv2d::new: "), "{err}");
    /// ```
    pub fn new(
        inputs: usize,
        outputs: usize,
        kernel: [usize; 2],
        options: Conv2dOptions,
        init: Init,
        seed: u64,
    ) -> Result<Self, Error> {
        let op = "Conv2d::new";
        let invalid = |reason: String| Err(Error::InvalidArgument { op, reason });
        let g = options.groups;
        if g == 0 || inputs % g != 0 || outputs % g != 0 {
            return invalid(format!(
                "{g} groups must divide both the {inputs} input and the {outputs} output channels"
            ));
        }
        if options.stride.contains(&0) || options.dilation.contains(&0) {
            return invalid(format!(
                "the stride {:?} and dilation {:?} must be at least 1",
                options.stride, options.dilation
            ));
        }
        let shape = [outputs, inputs / g, kernel[0], kernel[1]];
        let taps = kernel[0].saturating_mul(kernel[1]);
        let (fan_in, fan_out) = (
            (inputs / g).saturating_mul(taps),
            outputs.saturating_mul(taps),
        );
        Ok(Conv2d {
            weight: init_weight(op, init, &shape, fan_in, fan_out, seed)?,
            bias: Some(Tensor::zeros(&[outputs])),
            options,
        })
    }
}

impl<A> Conv2d<A> {
    /// The same layer without its bias.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Conv2d;
    /// use perturb_nn::nn::Init;
    /// let c = Conv2d::<Tensor<f64>>::new(1, 2, [3, 3], Conv2dOptions::default(), Init::HeNormal, 0).unwrap();
    /// assert!(c.without_bias().bias.is_none());
    /// ```
    pub fn without_bias(self) -> Self {
        Conv2d { bias: None, ..self }
    }
}

impl<A: Array> Module<A> for Conv2d<A> {
    /// The convolution of `x` plus the bias; an error naming `Conv2d::forward` if `x` is not
    /// `[N, C_in, H, W]` or `[C_in, H, W]` with the layer's input channels, or the kernel
    /// (dilated) does not fit the padded input.
    ///
    /// ```
    /// use perturb::tensor::conv::Conv2dOptions;
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Conv2d;
    /// use perturb_nn::module::Module;
    /// use perturb_nn::nn::Init;
    /// let c = Conv2d::<Tensor<f64>>::new(3, 4, [3, 3], Conv2dOptions::default().stride(2).padding(1), Init::HeNormal, 0).unwrap();
    /// assert_eq!(c.forward_eval(&Tensor::zeros(&[2, 3, 8, 8])).unwrap().shape(), &[2, 4, 4, 4]);
    /// let err = c.forward_eval(&Tensor::zeros(&[2, 1, 8, 8])).unwrap_err().to_string();
    /// assert!(err.starts_with("Conv2d::forward: ") && err.contains("3 input channels"), "{err}");
    /// ```
    fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
        let op = "Conv2d::forward";
        let w = self.weight.shape();
        if w.len() != 4 {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("the weight must be [C_out, C_in / groups, kh, kw], got {w:?}"),
            });
        }
        let (outputs, inputs) = (w[0], w[1].saturating_mul(self.options.groups));
        let channel_axis = match x.shape().len() {
            4 => 1,
            3 => 0,
            _ => {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the input must be [N, C, H, W] or [C, H, W], got shape {:?}",
                        x.shape()
                    ),
                })
            }
        };
        let channels = x.shape()[channel_axis];
        if channels != inputs {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the input has {channels} channels (shape {:?}), the layer expects \
                     {inputs} input channels",
                    x.shape()
                ),
            });
        }
        if let Some(b) = &self.bias {
            check_param(op, "bias", b, &[outputs])?;
        }
        // One image [C, H, W] is a batch of one; the bias goes along the channels in one pass.
        let with_bias = |x: &A| {
            let y = try_conv2d(x, &self.weight, self.options)?;
            match &self.bias {
                Some(b) => try_bias_add(&y, b),
                None => Ok(y),
            }
        };
        if channel_axis == 0 {
            x.try_unsqueeze(0)
                .and_then(|x| with_bias(&x))
                .and_then(|y| y.try_squeeze(0))
        } else {
            with_bias(x)
        }
        .map_err(|e| in_layer(op, e))
    }

    fn architecture(&self) -> String {
        let w = self.weight.shape();
        let dim = |i: usize| w.get(i).copied().unwrap_or(0);
        let o = &self.options;
        let mut s = format!(
            "Conv2d({},{},{}x{}",
            dim(1).saturating_mul(o.groups),
            dim(0),
            dim(2),
            dim(3)
        );
        if o.stride != [1, 1] {
            s += &format!(",stride={}", pair(o.stride));
        }
        match o.padding {
            Padding::Same => s += ",pad=same",
            Padding::Explicit(p) if p == [(0, 0); 2] => {}
            Padding::Explicit([(a, b), (c, d)]) if a == b && c == d => {
                s += &format!(",pad={}", pair([a, c]))
            }
            Padding::Explicit([(a, b), (c, d)]) => s += &format!(",pad=({a},{b})x({c},{d})"),
        }
        if o.dilation != [1, 1] {
            s += &format!(",dilation={}", pair(o.dilation));
        }
        if o.groups != 1 {
            s += &format!(",groups={}", o.groups);
        }
        if self.bias.is_none() {
            s += ",bias=false";
        }
        s + ")"
    }
}

/// `n` for `[n, n]`, else `hxw`: how a pair of sizes reads in an architecture string.
pub(super) fn pair([h, w]: [usize; 2]) -> String {
    if h == w {
        h.to_string()
    } else {
        format!("{h}x{w}")
    }
}
