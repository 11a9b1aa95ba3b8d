//! [`Cotangent`]: a cotangent in the backward sweep, its constant factor not yet applied.

use super::array::Array;
use super::ops;
use crate::error::Error;

/// A cotangent in the backward sweep: `factor * value`, the constant factor not yet applied,
/// and `value` possibly of a smaller shape that broadcasts to its node's.
///
/// A VJP is linear in its cotangent, so a constant factor can ride along until something
/// multiplies anyway (the rule of a product takes it into its own constant) or the result is
/// read: a scaling in the forward pass costs no pass over the elements in the backward pass.
/// Likewise the cotangent of a sum (`sum_all`, `sum_to`) is its output's cotangent repeated
/// along the summed axes: it stays unrepeated until a rule needs it at full size, and a
/// product's rule broadcasts it in the pass it makes anyway. And the cotangent a
/// [`Narrow`](ops::Narrow) gathers for its input is kept as a window of it until the next term
/// arrives, so that both are placed in one pass ([`PadPair`](ops::PadPair) for `x[:-1]` and
/// `x[1:]`); [`into_value`](Cotangent::into_value) and the other readers place it.
///
/// ```
/// use perturb::tensor::{Cotangent, Tensor};
/// let ct = Cotangent::scaled(Tensor::vector(&[1.0_f64, 2.0]), -3.0);
/// assert_eq!(ct.into_value().unwrap().to_vec(), vec![-3.0, -6.0]);
/// ```
#[derive(Clone, Debug)]
pub struct Cotangent<A> {
    /// The array, before the factor.
    pub value: A,
    /// The constant the array is still to be multiplied by.
    pub factor: f64,
    /// Set while `value` is only a window of its node's array, zero elsewhere (a
    /// [`Narrow`](ops::Narrow)'s cotangent gathered for its input): the padding that puts it in
    /// place, deferred so that a second window or a sum gathered for the same input is added in
    /// the same pass (`x[:-1]` and `x[1:]` in one pass, not two). Only a gathered sum can be
    /// windowed: the sweep settles it before a rule reads it as its cotangent.
    window: Option<ops::PadNarrow>,
}

impl<A: Array> Cotangent<A> {
    /// A cotangent with nothing left to apply (factor 1).
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// assert_eq!(Cotangent::new(Tensor::vector(&[2.0_f64])).factor, 1.0);
    /// ```
    pub fn new(value: A) -> Self {
        Self::scaled(value, 1.0)
    }

    /// `factor * value`, not yet multiplied out.
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// let ct = Cotangent::scaled(Tensor::vector(&[2.0_f64]), 0.5);
    /// assert_eq!(ct.into_value().unwrap().to_vec(), vec![1.0]);
    /// ```
    pub fn scaled(value: A, factor: f64) -> Self {
        Cotangent {
            value,
            factor,
            window: None,
        }
    }

    /// `factor * pad(value)`, the padding deferred: see the `window` field.
    pub(crate) fn windowed(value: A, factor: f64, pad: ops::PadNarrow) -> Self {
        Cotangent {
            value,
            factor,
            window: Some(pad),
        }
    }

    /// The same cotangent with a deferred window put in place (no work if there is none).
    pub(crate) fn settled(self) -> Result<Self, Error> {
        match self.window {
            None => Ok(self),
            Some(pad) => Ok(Self::scaled(A::apply(&pad, &[&self.value])?, self.factor)),
        }
    }

    /// The cotangent as one array, the factor multiplied in (no work when it is 1).
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// let ct = Cotangent::scaled(Tensor::vector(&[1.0_f64, -1.0]), 2.0);
    /// assert_eq!(ct.into_value().unwrap().to_vec(), vec![2.0, -2.0]);
    /// ```
    pub fn into_value(self) -> Result<A, Error> {
        let settled = self.settled()?;
        if settled.factor == 1.0 {
            Ok(settled.value)
        } else {
            A::apply(&ops::Scale(settled.factor), &[&settled.value])
        }
    }

    /// The cotangent as one array of `shape` (the node's): the factor multiplied in and the
    /// value broadcast to `shape` if it is kept smaller.
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// let ct = Cotangent::scaled(Tensor::scalar(1.0_f64), 2.0);
    /// assert_eq!(ct.into_value_of(&[3]).unwrap().to_vec(), vec![2.0, 2.0, 2.0]);
    /// ```
    pub fn into_value_of(self, shape: &[usize]) -> Result<A, Error> {
        let value = self.into_value()?;
        if value.shape() == shape {
            Ok(value)
        } else {
            value.try_broadcast_to(shape)
        }
    }

    /// The same cotangent with its value at full size, `shape` (the node's); the factor stays.
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// let ct = Cotangent::scaled(Tensor::scalar(1.0_f64), 2.0).stretched(&[2]).unwrap();
    /// assert_eq!((ct.value.to_vec(), ct.factor), (vec![1.0, 1.0], 2.0));
    /// ```
    pub fn stretched(self, shape: &[usize]) -> Result<Self, Error> {
        let this = self.settled()?;
        if this.value.shape() == shape {
            Ok(this)
        } else {
            let value = this.value.try_broadcast_to(shape)?;
            Ok(Self::scaled(value, this.factor))
        }
    }

    /// Adds `term` into `slot` (`None`: nothing gathered yet), in one pass when the two
    /// factors are equal or opposite, which is the usual case.
    ///
    /// ```
    /// use perturb::tensor::{Cotangent, Tensor};
    /// let mut slot = Some(Cotangent::scaled(Tensor::vector(&[5.0_f64]), 2.0));
    /// Cotangent::accumulate(&mut slot, Cotangent::scaled(Tensor::vector(&[1.0]), -2.0)).unwrap();
    /// assert_eq!(slot.unwrap().into_value().unwrap().to_vec(), vec![8.0]); // 2*5 - 2*1
    /// ```
    pub fn accumulate(slot: &mut Option<Self>, term: Self) -> Result<(), Error> {
        *slot = Some(match slot.take() {
            None => term,
            Some(sum) => sum.plus(term)?,
        });
        Ok(())
    }

    /// `self + term`: windows with the same factor are put in place in the pass that adds
    /// them, the rest as [`accumulate`](Cotangent::accumulate) says.
    fn plus(self, term: Self) -> Result<Self, Error> {
        if self.factor == term.factor {
            let full = |w: &Self, pad: &ops::PadNarrow| {
                let mut shape = w.value.shape().to_vec();
                shape[pad.axis] = pad.total;
                shape
            };
            let placed = match (&self.window, &term.window) {
                (Some(p), Some(q)) if p.axis == q.axis && p.total == q.total => {
                    let pair = ops::PadPair {
                        axis: p.axis,
                        total: p.total,
                        starts: [p.start, q.start],
                    };
                    Some(A::apply(&pair, &[&self.value, &term.value])?)
                }
                (Some(p), None) if term.value.shape() == full(&self, p) => {
                    Some(A::apply(p, &[&self.value, &term.value])?)
                }
                (None, Some(q)) if self.value.shape() == full(&term, q) => {
                    Some(A::apply(q, &[&term.value, &self.value])?)
                }
                _ => None,
            };
            if let Some(value) = placed {
                return Ok(Self::scaled(value, self.factor));
            }
        }
        let (sum, term) = (self.settled()?, term.settled()?);
        Ok(if sum.factor == term.factor {
            Self::scaled(sum.value.try_add(&term.value)?, sum.factor)
        } else if sum.factor == -term.factor {
            Self::scaled(sum.value.try_sub(&term.value)?, sum.factor)
        } else {
            Self::new(sum.into_value()?.try_add(&term.into_value()?)?)
        })
    }
}
