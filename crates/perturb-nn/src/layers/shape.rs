//! [`Flatten`]: a batch of arrays to a batch of rows.

use perturb::tensor::Array;
use perturb::{Error, Tree};

use super::in_layer;
use crate::module::{Context, Module};

/// Flattens each member of a batch: `[N, d1, d2, ..]` to `[N, d1 * d2 * ..]` (between the
/// convolutions and the linear layers of a CNN); no parameters.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::Flatten;
/// use perturb_nn::module::Module;
/// let y = Flatten.forward_eval(&Tensor::<f64>::zeros(&[5, 2, 3, 4])).unwrap();
/// assert_eq!(y.shape(), &[5, 24]);
/// let err = Flatten.forward_eval(&Tensor::<f64>::zeros(&[5])).unwrap_err().to_string();
/// assert!(err.starts_with("Flatten::forward: "), "{err}");
/// ```
#[derive(Tree, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl<A: Array> Module<A> for Flatten {
    fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
        let op = "Flatten::forward";
        match x.shape() {
            [n, rest @ ..] if !rest.is_empty() => {
                let row = rest.iter().product();
                x.try_reshape(&[*n, row]).map_err(|e| in_layer(op, e))
            }
            shape => Err(Error::InvalidArgument {
                op,
                reason: format!("needs a batch [N, ..] of at least two axes, got shape {shape:?}"),
            }),
        }
    }

    fn architecture(&self) -> String {
        "Flatten".into()
    }
}
