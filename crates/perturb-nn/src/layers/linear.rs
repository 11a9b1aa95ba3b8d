//! [`Linear`]: `y = x W + b`.

use perturb::tensor::{Array, Element, Tensor};
use perturb::Error;
use perturb::Tree;

use super::{check_param, in_layer, init_weight};
use crate::module::{Context, Module};
use crate::nn::Init;

/// A fully connected layer `y = x W + b`: `x` of shape `[.., in]` (any leading axes, usually
/// a batch `[N, in]`), the weight `W` of shape `[in, out]`, the bias `b` of shape `[out]`.
///
/// Its parameters are the leaves `weight` and (if it has one) `bias`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb::tree::Tree;
/// use perturb_nn::layers::Linear;
/// use perturb_nn::module::Module;
/// let l = Linear {
///     weight: Tensor::from_vec(vec![1.0, 2.0], &[2, 1]).unwrap(),
///     bias: Some(Tensor::vector(&[0.5])),
/// };
/// let x = Tensor::from_vec(vec![3.0, 4.0], &[1, 2]).unwrap();
/// // 3 * 1 + 4 * 2 + 0.5
/// assert_eq!(l.forward_eval(&x).unwrap().to_vec(), [11.5]);
/// assert_eq!(l.paths(), ["weight", "bias"]);
/// ```
#[derive(Tree, Clone, Debug, PartialEq)]
pub struct Linear<A> {
    /// The weight, shape `[in, out]`.
    pub weight: A,
    /// The bias, shape `[out]`, if the layer has one.
    pub bias: Option<A>,
}

impl<T: Element> Linear<Tensor<T>> {
    /// A layer from `inputs` to `outputs` features, its weight drawn from `init` with `seed`
    /// (fans `inputs` and `outputs`), its bias zero. An error if a size is 0 or the weight
    /// would have more than [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS) elements.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Linear;
    /// use perturb_nn::nn::Init;
    /// let l = Linear::<Tensor<f32>>::new(4, 3, Init::HeNormal, 5).unwrap();
    /// assert_eq!((l.weight.shape(), l.bias.unwrap().shape()), (&[4, 3][..], &[3][..]));
    /// let err = Linear::<Tensor<f32>>::new(4, 0, Init::HeNormal, 5).unwrap_err();
    /// assert!(err.to_string().starts_with("Linear::new: "), "{err}");
    /// assert!(Linear::<Tensor<f32>>::new(1 << 40, 1 << 40, Init::HeNormal, 5).is_err());
    /// ```
    pub fn new(inputs: usize, outputs: usize, init: Init, seed: u64) -> Result<Self, Error> {
        let op = "Linear::new";
        Ok(Linear {
            weight: init_weight(op, init, &[inputs, outputs], inputs, outputs, seed)?,
            bias: Some(Tensor::zeros(&[outputs])),
        })
    }
}

impl<A> Linear<A> {
    /// The same layer without its bias.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Linear;
    /// use perturb_nn::nn::Init;
    /// let l = Linear::<Tensor<f64>>::new(2, 2, Init::HeNormal, 0).unwrap().without_bias();
    /// assert!(l.bias.is_none());
    /// ```
    pub fn without_bias(self) -> Self {
        Linear { bias: None, ..self }
    }
}

impl<A: Array> Linear<A> {
    /// The number of input features (the weight's rows).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Linear;
    /// use perturb_nn::nn::Init;
    /// let l = Linear::<Tensor<f64>>::new(4, 3, Init::HeNormal, 0).unwrap();
    /// assert_eq!((l.inputs(), l.outputs()), (4, 3));
    /// ```
    pub fn inputs(&self) -> usize {
        self.weight.shape().first().copied().unwrap_or(0)
    }

    /// The number of output features (the weight's columns).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Linear;
    /// use perturb_nn::nn::Init;
    /// assert_eq!(Linear::<Tensor<f64>>::new(4, 3, Init::HeNormal, 0).unwrap().outputs(), 3);
    /// ```
    pub fn outputs(&self) -> usize {
        self.weight.shape().get(1).copied().unwrap_or(0)
    }
}

impl<A: Array> Module<A> for Linear<A> {
    /// `x W + b` over the last axis of `x`; an error naming `Linear::forward` if `x`'s last
    /// axis is not the layer's inputs (or the parameters were replaced by ones of other shapes).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Linear;
    /// use perturb_nn::module::Module;
    /// use perturb_nn::nn::Init;
    /// let l = Linear::<Tensor<f64>>::new(3, 2, Init::HeNormal, 0).unwrap();
    /// assert_eq!(l.forward_eval(&Tensor::zeros(&[4, 5, 3])).unwrap().shape(), &[4, 5, 2]);
    /// let err = l.forward_eval(&Tensor::zeros(&[4, 2])).unwrap_err().to_string();
    /// assert!(err.starts_with("Linear::forward: "), "{err}");
    /// ```
    fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
        let op = "Linear::forward";
        if self.weight.shape().len() != 2 {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the weight must be a matrix [in, out], got shape {:?}",
                    self.weight.shape()
                ),
            });
        }
        let (inputs, outputs) = (self.inputs(), self.outputs());
        if let Some(b) = &self.bias {
            check_param(op, "bias", b, &[outputs])?;
        }
        let shape = x.shape();
        let Some((&features, lead)) = shape.split_last() else {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("the input must be [.., {inputs}], got a scalar"),
            });
        };
        if features != inputs {
            return Err(Error::InvalidArgument {
                op,
                reason: format!(
                    "the input has {features} features (shape {shape:?}), the layer expects {inputs}"
                ),
            });
        }
        let y = if lead.len() == 1 {
            x.try_matmul(&self.weight)
        } else {
            let rows = lead.iter().product();
            let out: Vec<usize> = lead.iter().copied().chain([outputs]).collect();
            x.try_reshape(&[rows, inputs])
                .and_then(|x| x.try_matmul(&self.weight))
                .and_then(|y| y.try_reshape(&out))
        }
        .map_err(|e| in_layer(op, e))?;
        match &self.bias {
            Some(b) => y.try_add(b).map_err(|e| in_layer(op, e)),
            None => Ok(y),
        }
    }

    fn architecture(&self) -> String {
        let bias = if self.bias.is_some() {
            ""
        } else {
            ",bias=false"
        };
        format!("Linear({},{}{bias})", self.inputs(), self.outputs())
    }
}
