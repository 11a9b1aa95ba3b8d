//! The activations as layers without parameters: [`Relu`], [`Tanh`], [`Sigmoid`], [`Gelu`],
//! [`Silu`], [`Softplus`].

use perturb::tensor::Array;
use perturb::{Error, Tree};

use crate::module::{Context, Module};

macro_rules! activations {
    ($( $(#[$doc:meta])* $name:ident => $method:ident, $text:literal; )*) => {$(
        $(#[$doc])*
        #[derive(Tree, Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name;


        impl<A: Array> Module<A> for $name {
            fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
                Ok(x.$method())
            }

            fn architecture(&self) -> String {
                $text.into()
            }
        }
    )*};
}

activations! {
    /// `max(x, 0)` element-wise ([`Array::relu`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Relu;
    /// use perturb_nn::module::Module;
    /// let y = Relu.forward_eval(&Tensor::vector(&[-1.0_f64, 2.0])).unwrap();
    /// assert_eq!(y.to_vec(), [0.0, 2.0]);
    /// ```
    Relu => relu, "ReLU";
    /// `tanh(x)` element-wise ([`Array::tanh`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Tanh;
    /// use perturb_nn::module::Module;
    /// assert_eq!(Tanh.forward_eval(&Tensor::vector(&[0.0_f64])).unwrap().to_vec(), [0.0]);
    /// ```
    Tanh => tanh, "Tanh";
    /// The logistic sigmoid `1 / (1 + exp(-x))` element-wise ([`Array::sigmoid`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Sigmoid;
    /// use perturb_nn::module::Module;
    /// assert_eq!(Sigmoid.forward_eval(&Tensor::vector(&[0.0_f64])).unwrap().to_vec(), [0.5]);
    /// ```
    Sigmoid => sigmoid, "Sigmoid";
    /// GELU, exact: `x Phi(x)` element-wise ([`Array::gelu`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Gelu;
    /// use perturb_nn::module::Module;
    /// assert_eq!(Gelu.forward_eval(&Tensor::vector(&[0.0_f64, 40.0])).unwrap().to_vec(), [0.0, 40.0]);
    /// ```
    Gelu => gelu, "GELU";
    /// SiLU (swish): `x sigmoid(x)` element-wise ([`Array::silu`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Silu;
    /// use perturb_nn::module::Module;
    /// assert_eq!(Silu.forward_eval(&Tensor::vector(&[0.0_f64])).unwrap().to_vec(), [0.0]);
    /// ```
    Silu => silu, "SiLU";
    /// `ln(1 + exp(x))` element-wise ([`Array::softplus`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Softplus;
    /// use perturb_nn::module::Module;
    /// let y = Softplus.forward_eval(&Tensor::vector(&[0.0_f64])).unwrap();
    /// assert_eq!(y.to_vec(), [2.0_f64.ln()]);
    /// ```
    Softplus => softplus, "Softplus";
}
