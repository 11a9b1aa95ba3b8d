//! [`Dropout`]: random zeros in training, the identity in evaluation.

use perturb::tensor::{Array, Tensor};
use perturb::{Error, Tree};

use crate::module::{Context, Module};

/// Inverted dropout: in training, each element is zeroed with probability `p` and the others
/// scaled by `1 / (1 - p)` (so the expected value is unchanged); in evaluation, the identity.
/// No parameters.
///
/// The mask is drawn from a seed taken from the [`Context`]'s stream
/// ([`Context::next_seed`]), one per forward pass of this layer: the same context state gives
/// the same masks, so a resumed run replays them.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::Dropout;
/// use perturb_nn::module::{Context, Module};
/// let drop = Dropout::new(0.25).unwrap();
/// let x = Tensor::<f64>::ones(&[1000]);
/// let y = drop.forward(&x, &mut Context::training(3)).unwrap().to_vec();
/// assert!(y.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
/// let zeros = y.iter().filter(|&&v| v == 0.0).count();
/// assert!((200..300).contains(&zeros), "{zeros}");
/// let again = drop.forward(&x, &mut Context::training(3)).unwrap().to_vec();
/// assert_eq!(y, again); // the same seed, the same mask
/// ```
#[derive(Tree, Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Dropout with probability `p` of zeroing an element; an error unless `0 <= p <= 1`.
    ///
    /// ```
    /// use perturb_nn::layers::Dropout;
    /// assert_eq!(Dropout::new(0.5).unwrap().p(), 0.5);
    /// let err = Dropout::new(1.5).unwrap_err().to_string();
    /// assert!(err.starts_with("Dropout::new: "), "{err}");
    /// assert!(Dropout::new(f64::NAN).is_err());
    /// ```
    pub fn new(p: f64) -> Result<Self, Error> {
        if (0.0..=1.0).contains(&p) {
            Ok(Dropout { p })
        } else {
            Err(Error::InvalidArgument {
                op: "Dropout::new",
                reason: format!("the probability {p} is not in [0, 1]"),
            })
        }
    }

    /// The probability of zeroing an element.
    ///
    /// ```
    /// assert_eq!(perturb_nn::layers::Dropout::new(0.1).unwrap().p(), 0.1);
    /// ```
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl<A: Array> Module<A> for Dropout {
    fn forward(&self, x: &A, ctx: &mut Context) -> Result<A, Error> {
        if !ctx.is_training() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let (p, keep) = (self.p, 1.0 / (1.0 - self.p));
        // Drawn and compared in f64 whatever the element type: an f32 draw can round up to
        // exactly 1, which p = 1 would keep (scaled by 1 / 0 = inf).
        let u = Tensor::<f64>::rand_uniform(x.shape(), 0.0, 1.0, ctx.next_seed());
        // u < p is dropped: P = p. With p = 1 every element is.
        let mask = u.map(move |u| if u < p { 0.0 } else { keep });
        x.try_mul(&x.constant_like(&mask.cast::<A::Elem>()))
    }

    fn architecture(&self) -> String {
        format!("Dropout({})", self.p)
    }
}
