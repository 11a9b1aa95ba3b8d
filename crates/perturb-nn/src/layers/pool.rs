//! [`MaxPool2d`] and [`AvgPool2d`]: pooling over the last two axes of NCHW input.

use perturb::tensor::conv::{try_avg_pool2d, try_max_pool2d, Pool2d};
use perturb::tensor::Array;
use perturb::{Error, Tree};

use super::conv::pair;
use super::in_layer;
use crate::module::{Context, Module};

/// How a pooling reads in an architecture string: `Name(2)` for windows of 2x2 side by side,
/// else every option.
fn describe(name: &str, p: &Pool2d) -> String {
    if p.kernel[0] == p.kernel[1] && p.stride == p.kernel && p.padding == [0, 0] {
        format!("{name}({})", p.kernel[0])
    } else {
        format!(
            "{name}(kernel={},stride={},pad={})",
            pair(p.kernel),
            pair(p.stride),
            pair(p.padding)
        )
    }
}

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $text:literal, $function:ident, $op:literal) => {
        $(#[$doc])*
        #[derive(Tree, Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            /// The window: kernel, stride and padding.
            pub pool: Pool2d,
        }

        impl $name {
            /// Windows of `kernel` x `kernel`, side by side (stride `kernel`), no padding.
            ///
            /// ```
            #[doc = concat!("use perturb_nn::layers::", stringify!($name), ";")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::new(2).pool.stride, [2, 2]);")]
            /// ```
            pub fn new(kernel: usize) -> Self {
                $name { pool: Pool2d::new([kernel, kernel]) }
            }

            /// Any window: kernel, stride and padding per axis.
            ///
            /// ```
            /// use perturb::tensor::conv::Pool2d;
            /// use perturb::tensor::Tensor;
            #[doc = concat!("use perturb_nn::layers::", stringify!($name), ";")]
            /// use perturb_nn::module::Module;
            #[doc = concat!("let p = ", stringify!($name), "::with(Pool2d::new([3, 3]).stride([2, 2]).padding([1, 1]));")]
            /// let y = p.forward_eval(&Tensor::<f64>::zeros(&[1, 2, 8, 8])).unwrap();
            /// assert_eq!(y.shape(), &[1, 2, 4, 4]);
            /// ```
            pub fn with(pool: Pool2d) -> Self {
                $name { pool }
            }
        }


        impl<A: Array> Module<A> for $name {
            fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
                $function(x, self.pool).map_err(|e| in_layer($op, e))
            }

            fn architecture(&self) -> String {
                describe($text, &self.pool)
            }
        }
    };
}

pool_layer! {
    /// The maximum of each window over the last two axes of `[N, C, H, W]` or `[C, H, W]`
    /// ([`perturb::tensor::conv::max_pool2d`]); no parameters.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::MaxPool2d;
    /// use perturb_nn::module::Module;
    /// let x = Tensor::from_vec((1..=16).map(f64::from).collect(), &[1, 1, 4, 4]).unwrap();
    /// // the maxima of the four 2x2 blocks: 6, 8, 14, 16
    /// assert_eq!(MaxPool2d::new(2).forward_eval(&x).unwrap().to_vec(), [6.0, 8.0, 14.0, 16.0]);
    /// assert_eq!(Module::<Tensor<f64>>::architecture(&MaxPool2d::new(2)), "MaxPool2d(2)");
    /// let err = MaxPool2d::new(5).forward_eval(&x).unwrap_err().to_string();
    /// assert!(err.starts_with("MaxPool2d::forward: "), "{err}");
    /// ```
    MaxPool2d, "MaxPool2d", try_max_pool2d, "MaxPool2d::forward"
}

pool_layer! {
    /// The mean of each window over the last two axes of `[N, C, H, W]` or `[C, H, W]`
    /// ([`perturb::tensor::conv::avg_pool2d`]; padding counts as zeros in the mean, as
    /// PyTorch's default); no parameters.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::AvgPool2d;
    /// use perturb_nn::module::Module;
    /// let x = Tensor::from_vec((1..=16).map(f64::from).collect(), &[1, 1, 4, 4]).unwrap();
    /// // the means of the four 2x2 blocks: (1+2+5+6)/4 = 3.5, 5.5, 11.5, 13.5
    /// assert_eq!(AvgPool2d::new(2).forward_eval(&x).unwrap().to_vec(), [3.5, 5.5, 11.5, 13.5]);
    /// ```
    AvgPool2d, "AvgPool2d", try_avg_pool2d, "AvgPool2d::forward"
}
