//! Seeded initialisation of a layer's weights of any shape, from [`Init`] and the layer's fans.

use perturb::tensor::{Element, Tensor};
use perturb::Error;

use crate::nn::{Init, MAX_PARAMETERS};

/// A tensor of `shape` drawn from `init` with `seed`, for a layer whose units each read
/// `fan_in` inputs and feed `fan_out` outputs (a linear layer's inputs and outputs; a
/// convolution's input channels per group times the kernel's size, and its output channels
/// times the kernel's size, as PyTorch counts them).
///
/// - [`Init::XavierUniform`]: `U(-a, a)` with `a = sqrt(6 / (fan_in + fan_out))`;
/// - [`Init::HeNormal`]: `N(0, 2 / fan_in)`.
///
/// An error naming `op` if an axis of `shape` is 0 or the tensor would have more than
/// [`MAX_PARAMETERS`] elements (checked before anything is allocated).
///
/// ```
/// use perturb_nn::layers::init_weight;
/// use perturb_nn::nn::Init;
/// let w = init_weight::<f64>("demo", Init::XavierUniform, &[4, 1, 3, 3], 9, 36, 0).unwrap();
/// let a = (6.0_f64 / 45.0).sqrt();
/// assert!(w.to_vec().iter().all(|v| v.abs() <= a));
/// assert_eq!(w.to_vec(), init_weight::<f64>("demo", Init::XavierUniform, &[4, 1, 3, 3], 9, 36, 0).unwrap().to_vec());
/// let err = init_weight::<f64>("demo", Init::HeNormal, &[4, 0], 4, 0, 0).unwrap_err();
/// assert!(err.to_string().starts_with("demo: "), "{err}");
/// ```
pub fn init_weight<T: Element>(
    op: &'static str,
    init: Init,
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    seed: u64,
) -> Result<Tensor<T>, Error> {
    parameter_count(op, shape)?;
    let elem = |x: f64| T::from_f64(x).unwrap_or_else(T::nan);
    Ok(match init {
        Init::XavierUniform => {
            let a = (6.0 / fan_in.saturating_add(fan_out).max(1) as f64).sqrt();
            Tensor::rand_uniform(shape, elem(-a), elem(a), seed)
        }
        Init::HeNormal => {
            let std = (2.0 / fan_in.max(1) as f64).sqrt();
            Tensor::randn(shape, elem(0.0), elem(std), seed)
        }
    })
}

/// The number of elements of a parameter of `shape`, or an error naming `op` if an axis is 0
/// or the count (with checked arithmetic) is over [`MAX_PARAMETERS`].
pub(crate) fn parameter_count(op: &'static str, shape: &[usize]) -> Result<usize, Error> {
    if shape.contains(&0) {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("a parameter of shape {shape:?} has an axis of size 0"),
        });
    }
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) if n <= MAX_PARAMETERS => Ok(n),
        _ => Err(Error::InvalidArgument {
            op,
            reason: format!(
                "a parameter of shape {shape:?} has more than {MAX_PARAMETERS} elements"
            ),
        }),
    }
}
