//! Normalisation layers: [`LayerNorm`] (over each member's trailing axes) and [`BatchNorm`]
//! (over the batch, per channel, with running statistics for evaluation).

use perturb::tensor::{Array, Element, Tensor};
use perturb::tree::Path;
use perturb::Error;
use perturb::Tree;

use super::init::parameter_count;
use super::{check_param, in_layer};
use crate::module::{Buffer, Context, Module};

/// `(x - mean) / sqrt(var + eps)` with the mean and (biased) variance over `axes`, kept as
/// axes of length 1.
///
/// The statistics are those of `x` less its first element over `axes` (each group's own
/// shift, which changes neither the result nor its derivative in exact arithmetic): the
/// rounded mean of raw values can miss a constant group's value by an ulp, and that ulp over
/// `sqrt(eps)` would be the output (five f32 16777215s gave 0.999995 each, not 0).
///
/// The centred values are divided by a power of two per group (see [`group_scale`]) before
/// they are squared, and `eps` with them, so that the variance cannot overflow where the
/// values do not: f32 `[1e20, -1e20]` standardised to `[0, 0]` (its variance 1e40 was inf)
/// for `[1, -1]`. The division is exact, so every result that did not overflow keeps its
/// bits; the variance returned is the unscaled one (inf where it overflows).
fn standardise<A: Array>(x: &A, axes: &[usize], eps: f64) -> Result<(A, A, A), Error> {
    let first = axes
        .iter()
        .try_fold(x.clone(), |first, &axis| first.try_slice(axis, 0..1))?;
    let shifted = x.try_sub(&first)?;
    let mean = shifted.try_mean_axes(axes, true)?;
    let centred = shifted.try_sub(&mean)?;
    let scale = group_scale(&centred.primal(), axes)?;
    let squared_scale = centred.constant_like(&scale.square());
    let unit = centred.try_div(&centred.constant_like(&scale))?;
    let unit_var = unit.square().try_mean_axes(axes, true)?;
    let unit_eps = squared_scale.recip().scale(A::elem(eps));
    let y = unit.try_div(&unit_var.try_add(&unit_eps)?.sqrt())?;
    let var = unit_var.try_mul(&squared_scale)?;
    Ok((y, mean.try_add(&first)?, var))
}

/// Per group over `axes`, the largest power of two not above the largest `|c|`, or 1 where
/// that is at most 1 (or not finite): dividing by it is exact, `eps` divided by its square
/// never overflows, and a group whose values are at most 1 is left as it is.
fn group_scale<T: Element>(centred: &Tensor<T>, axes: &[usize]) -> Result<Tensor<T>, Error> {
    let largest = centred.abs().try_max_axes(axes, true)?;
    Ok(largest.map(|m| {
        let m = m.to_f64().unwrap_or(f64::NAN);
        let power = if m > 1.0 && m.is_finite() {
            2f64.powi(m.log2().floor() as i32)
        } else {
            1.0
        };
        T::from_f64(power).unwrap_or_else(T::one)
    }))
}

/// An error naming `op` unless `eps` is finite and not negative.
fn check_eps(op: &'static str, eps: f64) -> Result<(), Error> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            reason: format!("eps {eps} must be finite and not negative"),
        })
    }
}

/// `y * weight + bias`, each (if present) reshaped to `shape` first.
fn affine<A: Array>(
    y: A,
    weight: Option<&A>,
    bias: Option<&A>,
    shape: &[usize],
) -> Result<A, Error> {
    let y = match weight {
        Some(w) => y.try_mul(&w.try_reshape(shape)?)?,
        None => y,
    };
    match bias {
        Some(b) => y.try_add(&b.try_reshape(shape)?),
        None => Ok(y),
    }
}

/// Layer normalisation: each member standardised over its trailing axes `shape` (mean 0,
/// variance 1, with `eps` added to the variance), then scaled by `weight` and shifted by
/// `bias` (both of shape `shape`, leaves `weight` and `bias`; ones and zeros at first).
/// The same in training and evaluation.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::LayerNorm;
/// use perturb_nn::module::Module;
/// let ln = LayerNorm::<Tensor<f64>>::new(&[2]).unwrap().with_eps(0.0).unwrap();
/// // rows [1, 3] and [0, 10]: each becomes [-1, 1]
/// let y = ln.forward_eval(&Tensor::from_vec(vec![1.0, 3.0, 0.0, 10.0], &[2, 2]).unwrap()).unwrap();
/// assert_eq!(y.to_vec(), [-1.0, 1.0, -1.0, 1.0]);
/// assert_eq!(ln.architecture(), "LayerNorm([2],eps=0)");
/// ```
#[derive(Tree, Clone, Debug, PartialEq)]
pub struct LayerNorm<A> {
    /// The scale, of the normalised shape (`None`: no scale).
    pub weight: Option<A>,
    /// The shift, of the normalised shape (`None`: no shift).
    pub bias: Option<A>,
    #[tree(skip)]
    shape: Vec<usize>,
    #[tree(skip)]
    eps: f64,
}

impl<T: Element> LayerNorm<Tensor<T>> {
    /// Normalisation over trailing axes of `shape`, with a scale of ones, a shift of zeros and
    /// `eps = 1e-5`; an error if `shape` is empty, has a 0, or has more than
    /// [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS) elements.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::LayerNorm;
    /// let ln = LayerNorm::<Tensor<f32>>::new(&[3, 4]).unwrap();
    /// assert_eq!(ln.weight.unwrap().shape(), &[3, 4]);
    /// assert!(LayerNorm::<Tensor<f32>>::new(&[]).is_err());
    /// ```
    pub fn new(shape: &[usize]) -> Result<Self, Error> {
        let op = "LayerNorm::new";
        if shape.is_empty() {
            return Err(Error::InvalidArgument {
                op,
                reason: "the normalised shape needs at least one axis".into(),
            });
        }
        parameter_count(op, shape)?;
        Ok(LayerNorm {
            weight: Some(Tensor::ones(shape)),
            bias: Some(Tensor::zeros(shape)),
            shape: shape.to_vec(),
            eps: 1e-5,
        })
    }
}

impl<A> LayerNorm<A> {
    /// The same layer with `eps` added to the variance; an error unless `eps` is finite and
    /// not negative.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::LayerNorm;
    /// let ln = LayerNorm::<Tensor<f64>>::new(&[2]).unwrap();
    /// assert_eq!(ln.clone().with_eps(1e-3).unwrap().eps(), 1e-3);
    /// assert!(ln.with_eps(-1.0).is_err());
    /// ```
    pub fn with_eps(self, eps: f64) -> Result<Self, Error> {
        check_eps("LayerNorm::with_eps", eps)?;
        Ok(LayerNorm { eps, ..self })
    }

    /// The same layer without scale and shift.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::LayerNorm;
    /// assert!(LayerNorm::<Tensor<f64>>::new(&[2]).unwrap().without_affine().weight.is_none());
    /// ```
    pub fn without_affine(self) -> Self {
        LayerNorm {
            weight: None,
            bias: None,
            ..self
        }
    }

    /// The trailing shape normalised over.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::LayerNorm;
    /// assert_eq!(LayerNorm::<Tensor<f64>>::new(&[4]).unwrap().shape(), [4]);
    /// ```
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The constant added to the variance.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::LayerNorm;
    /// assert_eq!(LayerNorm::<Tensor<f64>>::new(&[4]).unwrap().eps(), 1e-5);
    /// ```
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl<A: Array> Module<A> for LayerNorm<A> {
    fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
        let op = "LayerNorm::forward";
        let (rank, k) = (x.shape().len(), self.shape.len());
        if rank < k || x.shape()[rank - k..] != self.shape[..] {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the input's shape {:?} does not end with the normalised shape {:?}",
                    x.shape(),
                    self.shape
                ),
            });
        }
        for (what, p) in [("weight", &self.weight), ("bias", &self.bias)] {
            if let Some(p) = p {
                check_param(op, what, p, &self.shape)?;
            }
        }
        let axes: Vec<usize> = (rank - k..rank).collect();
        standardise(x, &axes, self.eps)
            .and_then(|(y, _, _)| affine(y, self.weight.as_ref(), self.bias.as_ref(), &self.shape))
            .map_err(|e| in_layer(op, e))
    }

    fn architecture(&self) -> String {
        let mut s = format!("LayerNorm({:?}", self.shape).replace(' ', "");
        if self.eps != 1e-5 {
            s += &format!(",eps={}", self.eps);
        }
        if self.weight.is_none() && self.bias.is_none() {
            s += ",affine=false";
        }
        s + ")"
    }
}

/// Batch normalisation over `[N, C]` (1-D) or `[N, C, ..]` (2-D: `[N, C, H, W]`): each
/// channel standardised by its mean and variance, then scaled by `weight` and shifted by
/// `bias` (leaves of shape `[C]`, ones and zeros at first).
///
/// - In training, the statistics are the batch's (over every axis but the channels; the
///   biased variance), and the running statistics are updated:
///   `running = (1 - momentum) running + momentum batch` (the unbiased variance, as PyTorch).
/// - In evaluation, the running statistics are used (as constants) and left unchanged.
///
/// The running mean and variance are [`Buffer`]s, not leaves: optimisers do not touch them,
/// model files save them through [`Module::buffers`] (paths `running_mean` and
/// `running_var`). They are shared by clones and by the model mapped to tape variables, so
/// that a training step on the mapped model updates the model's statistics; use
/// [`Module::deep_clone`] for a copy of its own.
///
/// ```
/// use perturb::tensor::{Array, Tensor, TensorTape};
/// use perturb::tree::Tree;
/// use perturb_nn::layers::BatchNorm;
/// use perturb_nn::module::{Context, Module};
/// let bn = BatchNorm::<Tensor<f64>>::new(1).unwrap().with_momentum(0.5).unwrap();
/// let x = Tensor::from_vec(vec![1.0, 3.0], &[2, 1]).unwrap();
/// let tape = TensorTape::new();
/// let on_tape = bn.map(|t| tape.var(t.clone()));
/// let y = on_tape.forward(&tape.constant(x.clone()), &mut Context::training(0)).unwrap();
/// // batch mean 2, biased variance 1: y = [-1, 1] (up to eps)
/// assert!(y.value().all_close(&Tensor::from_vec(vec![-1.0, 1.0], &[2, 1]).unwrap(), 1e-5));
/// // running mean 0.5 * 0 + 0.5 * 2 = 1; running var 0.5 * 1 + 0.5 * 2 (unbiased) = 1.5
/// let stats = bn.buffers();
/// assert_eq!((stats[0].1.to_vec(), stats[1].1.to_vec()), (vec![1.0], vec![1.5]));
/// ```
#[derive(Tree, Clone, Debug)]
pub struct BatchNorm<A> {
    /// The scale per channel, shape `[C]` (`None`: no scale).
    pub weight: Option<A>,
    /// The shift per channel, shape `[C]` (`None`: no shift).
    pub bias: Option<A>,
    #[tree(skip)]
    running_mean: Buffer,
    #[tree(skip)]
    running_var: Buffer,
    #[tree(skip)]
    momentum: f64,
    #[tree(skip)]
    eps: f64,
}

impl<T: Element> BatchNorm<Tensor<T>> {
    /// Batch normalisation of `channels` channels: scale ones, shift zeros, running mean 0
    /// and variance 1, `momentum = 0.1`, `eps = 1e-5` (PyTorch's defaults); an error if
    /// `channels` is 0 or over [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// use perturb_nn::module::Module;
    /// let bn = BatchNorm::<Tensor<f64>>::new(3).unwrap();
    /// assert_eq!(bn.channels(), 3);
    /// assert_eq!(bn.architecture(), "BatchNorm(3)");
    /// assert!(BatchNorm::<Tensor<f64>>::new(0).is_err());
    /// ```
    pub fn new(channels: usize) -> Result<Self, Error> {
        parameter_count("BatchNorm::new", &[channels])?;
        Ok(BatchNorm {
            weight: Some(Tensor::ones(&[channels])),
            bias: Some(Tensor::zeros(&[channels])),
            running_mean: Buffer::new(Tensor::zeros(&[channels])),
            running_var: Buffer::new(Tensor::ones(&[channels])),
            momentum: 0.1,
            eps: 1e-5,
        })
    }
}

impl<A> BatchNorm<A> {
    /// The same layer with this momentum (the weight of each batch in the running
    /// statistics); an error unless `0 <= momentum <= 1`.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// let bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    /// assert_eq!(bn.clone().with_momentum(0.3).unwrap().momentum(), 0.3);
    /// let err = bn.with_momentum(1.5).unwrap_err().to_string();
    /// assert!(err.starts_with("BatchNorm::with_momentum: "), "{err}");
    /// ```
    pub fn with_momentum(self, momentum: f64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::InvalidArgument {
                op: "BatchNorm::with_momentum",
                reason: format!("the momentum {momentum} is not in [0, 1]"),
            });
        }
        Ok(BatchNorm { momentum, ..self })
    }

    /// The same layer with `eps` added to the variance; an error unless `eps` is finite and
    /// not negative.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// let bn = BatchNorm::<Tensor<f64>>::new(2).unwrap();
    /// assert_eq!(bn.clone().with_eps(1e-3).unwrap().eps(), 1e-3);
    /// assert!(bn.with_eps(f64::NAN).is_err());
    /// ```
    pub fn with_eps(self, eps: f64) -> Result<Self, Error> {
        check_eps("BatchNorm::with_eps", eps)?;
        Ok(BatchNorm { eps, ..self })
    }

    /// The same layer without scale and shift.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// assert!(BatchNorm::<Tensor<f64>>::new(2).unwrap().without_affine().bias.is_none());
    /// ```
    pub fn without_affine(self) -> Self {
        BatchNorm {
            weight: None,
            bias: None,
            ..self
        }
    }

    /// The number of channels.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// assert_eq!(BatchNorm::<Tensor<f64>>::new(5).unwrap().channels(), 5);
    /// ```
    pub fn channels(&self) -> usize {
        self.running_mean.shape()[0]
    }

    /// The weight of each batch in the running statistics.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// assert_eq!(BatchNorm::<Tensor<f64>>::new(5).unwrap().momentum(), 0.1);
    /// ```
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The constant added to the variance.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::BatchNorm;
    /// assert_eq!(BatchNorm::<Tensor<f64>>::new(5).unwrap().eps(), 1e-5);
    /// ```
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl<A: Array> Module<A> for BatchNorm<A> {
    fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, Error> {
        let op = "BatchNorm::forward";
        let channels = self.channels();
        let shape = x.shape();
        if shape.len() < 2 || shape[1] != channels {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the input must be [N, {channels}] or [N, {channels}, ..], got shape {shape:?}"
                ),
            });
        }
        for (what, p) in [("weight", &self.weight), ("bias", &self.bias)] {
            if let Some(p) = p {
                check_param(op, what, p, &[channels])?;
            }
        }
        // [C, 1, .., 1]: broadcasts against [N, C, ..] channel by channel.
        let per_channel: Vec<usize> = [channels]
            .into_iter()
            .chain(std::iter::repeat(1).take(shape.len() - 2))
            .collect();
        let y = if ctx.is_training() {
            let axes: Vec<usize> = [0].into_iter().chain(2..shape.len()).collect();
            let n: usize = axes.iter().map(|&a| shape[a]).product();
            if n < 2 {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "training needs more than one value per channel, got shape {shape:?}"
                    ),
                });
            }
            let (y, mean, var) = standardise(x, &axes, self.eps).map_err(|e| in_layer(op, e))?;
            let unbiased = n as f64 / (n - 1) as f64;
            self.update(&self.running_mean, &mean.primal(), 1.0)?;
            self.update(&self.running_var, &var.primal(), unbiased)?;
            y
        } else {
            // y = (x - mean) / sqrt(var + eps) = x * scale + shift, the running statistics
            // as constants.
            let (mean, var) = (
                self.running_mean.get().to_vec(),
                self.running_var.get().to_vec(),
            );
            // Statistics put back by hand or from a file may be anything finite: a variance
            // (plus eps) that is not positive would make every output of its channel NaN.
            let bad = mean.iter().zip(&var).position(|(m, v)| {
                !(m.is_finite() && v.is_finite() && *v >= 0.0 && v + self.eps > 0.0)
            });
            if let Some(c) = bad {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the running statistics of channel {c} (mean {}, variance {}, eps {}) \
                         are not a finite mean and a variance >= 0 with variance + eps > 0",
                        mean[c], var[c], self.eps
                    ),
                });
            }
            let scale: Vec<f64> = var.iter().map(|v| 1.0 / (v + self.eps).sqrt()).collect();
            let shift: Vec<f64> = mean.iter().zip(&scale).map(|(m, s)| -m * s).collect();
            let constant = |v: Vec<f64>| -> Result<A, Error> {
                let t = Tensor::from_vec(v, &per_channel)?.cast::<A::Elem>();
                Ok(x.constant_like(&t))
            };
            x.try_mul(&constant(scale)?)
                .and_then(|y| y.try_add(&constant(shift)?))
                .map_err(|e| in_layer(op, e))?
        };
        affine(y, self.weight.as_ref(), self.bias.as_ref(), &per_channel)
            .map_err(|e| in_layer(op, e))
    }

    fn architecture(&self) -> String {
        let mut s = format!("BatchNorm({}", self.channels());
        if self.momentum != 0.1 {
            s += &format!(",momentum={}", self.momentum);
        }
        if self.eps != 1e-5 {
            s += &format!(",eps={}", self.eps);
        }
        if self.weight.is_none() && self.bias.is_none() {
            s += ",affine=false";
        }
        s + ")"
    }

    fn visit_buffers(&self, path: &mut Path, f: &mut dyn FnMut(&Path, &Buffer)) {
        path.with("running_mean", |p| f(p, &self.running_mean));
        path.with("running_var", |p| f(p, &self.running_var));
    }

    fn visit_buffers_mut(&mut self, path: &mut Path, f: &mut dyn FnMut(&Path, &mut Buffer)) {
        path.with("running_mean", |p| f(p, &mut self.running_mean));
        path.with("running_var", |p| f(p, &mut self.running_var));
    }
}

impl<A: Array> BatchNorm<A> {
    /// `running = (1 - momentum) running + momentum * factor * batch`, `batch` the batch's
    /// statistic per channel (any shape with `C` elements).
    fn update<T: Element>(
        &self,
        running: &Buffer,
        batch: &Tensor<T>,
        factor: f64,
    ) -> Result<(), Error> {
        let m = self.momentum;
        let old = running.get();
        let new: Vec<f64> = old
            .as_slice()
            .iter()
            .zip(batch.cast::<f64>().as_slice())
            .map(|(r, b)| (1.0 - m) * r + m * factor * b)
            .collect();
        running.set(Tensor::from_vec(new, old.shape())?)
    }
}
