//! Forward mode for tensors: a primal value carried with its tangent through every operation.

use std::fmt;
use std::panic::Location;

use super::anomaly;
use super::array::Array;
use super::dense::Tensor;
use super::op::Op;
use crate::error::Error;

/// A tensor with a tangent: forward mode. Every operation computes its value on the primals and
/// pushes the tangents through the operation's [`jvp`](Op::jvp), in the same pass.
///
/// A missing tangent stands for zero and costs nothing, so constants mixed into a computation
/// add no work. The primal and tangent are themselves any [`Array`]: a `DualTensor` of
/// [`TensorVar`](super::TensorVar)s is forward over reverse, a `DualTensor` of `DualTensor`s
/// forward over forward. Each nesting level is its own type, and a value from an outer level
/// enters an inner one only as a constant ([`DualTensor::constant`]), so perturbations of
/// different levels cannot be confused.
///
/// Most code uses [`jvp`](super::jvp) rather than building dual tensors by hand.
///
/// ```
/// use perturb::tensor::{Array, DualTensor, Tensor};
///
/// // d/dt sin(x + t v) at t = 0 is cos(x) * v.
/// let x = Tensor::vector(&[0.0_f64, 1.0]);
/// let v = Tensor::vector(&[1.0, 2.0]);
/// let y = DualTensor::new(x.clone(), v).sin();
/// assert_eq!(y.primal_value().to_vec(), x.sin().to_vec());
/// assert_eq!(y.tangent().unwrap().to_vec(), vec![1.0, 2.0 * 1.0_f64.cos()]);
/// ```
#[derive(Clone)]
pub struct DualTensor<A: Array> {
    primal: A,
    tangent: Option<A>,
}

impl<A: Array> DualTensor<A> {
    /// A value with a tangent (the direction in which it is perturbed).
    ///
    /// ```
    /// use perturb::tensor::{DualTensor, Tensor};
    /// let x = DualTensor::new(Tensor::vector(&[1.0_f64]), Tensor::vector(&[1.0]));
    /// assert!(x.tangent().is_some());
    /// ```
    pub fn new(primal: A, tangent: A) -> Self {
        DualTensor {
            primal,
            tangent: Some(tangent),
        }
    }

    /// A value with a tangent, or an error naming both shapes if they differ.
    ///
    /// ```
    /// use perturb::tensor::{DualTensor, Tensor};
    /// assert!(DualTensor::try_new(Tensor::<f64>::zeros(&[2]), Tensor::zeros(&[3])).is_err());
    /// ```
    pub fn try_new(primal: A, tangent: A) -> Result<Self, Error> {
        if primal.shape() != tangent.shape() {
            return Err(Error::ShapeMismatch {
                op: "DualTensor::new",
                lhs: primal.shape().to_vec(),
                rhs: tangent.shape().to_vec(),
            });
        }
        Ok(Self::new(primal, tangent))
    }

    /// A constant: tangent zero.
    ///
    /// ```
    /// use perturb::tensor::{DualTensor, Tensor};
    /// assert!(DualTensor::constant(Tensor::vector(&[1.0_f64])).tangent().is_none());
    /// ```
    pub fn constant(primal: A) -> Self {
        DualTensor {
            primal,
            tangent: None,
        }
    }

    /// A value with a tangent that may be zero (`None`).
    pub(crate) fn from_parts(primal: A, tangent: Option<A>) -> Self {
        DualTensor { primal, tangent }
    }

    /// The value (one level down).
    ///
    /// ```
    /// use perturb::tensor::{DualTensor, Tensor};
    /// let x = DualTensor::constant(Tensor::vector(&[4.0_f64]));
    /// assert_eq!(x.primal_value().to_vec(), vec![4.0]);
    /// ```
    pub fn primal_value(&self) -> &A {
        &self.primal
    }

    /// The tangent, `None` where it is zero.
    ///
    /// ```
    /// use perturb::tensor::{Array, DualTensor, Tensor};
    /// let x = DualTensor::new(Tensor::vector(&[3.0_f64]), Tensor::vector(&[1.0]));
    /// assert_eq!(x.square().tangent().unwrap().to_vec(), vec![6.0]);
    /// ```
    pub fn tangent(&self) -> Option<&A> {
        self.tangent.as_ref()
    }

    /// The tangent, with zeros where it is zero.
    ///
    /// ```
    /// use perturb::tensor::{DualTensor, Tensor};
    /// let x = DualTensor::constant(Tensor::vector(&[3.0_f64]));
    /// assert_eq!(x.tangent_or_zeros().to_vec(), vec![0.0]);
    /// ```
    pub fn tangent_or_zeros(&self) -> A {
        self.tangent
            .clone()
            .unwrap_or_else(|| A::lift(Tensor::zeros(self.primal.shape())))
    }

    /// The value and the tangent (zeros where it is zero).
    ///
    /// ```
    /// use perturb::tensor::{Array, DualTensor, Tensor};
    /// let (y, dy) = DualTensor::new(Tensor::vector(&[0.0_f64]), Tensor::vector(&[1.0])).exp().into_parts();
    /// assert_eq!((y.to_vec(), dy.to_vec()), (vec![1.0], vec![1.0]));
    /// ```
    pub fn into_parts(self) -> (A, A) {
        let tangent = self.tangent_or_zeros();
        (self.primal, tangent)
    }
}

impl<A: Array> fmt::Debug for DualTensor<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DualTensor")
            .field("primal", &self.primal)
            .field("tangent", &self.tangent)
            .finish()
    }
}

impl<A: Array> Array for DualTensor<A> {
    type Elem = A::Elem;

    #[track_caller]
    fn apply<O: Op>(op: &O, inputs: &[&Self]) -> Result<Self, Error> {
        let primals: Vec<&A> = inputs.iter().map(|x| &x.primal).collect();
        let primal = A::apply(op, &primals)?;
        // A tangent exactly zero at every level is no tangent: a zero times an infinite slope
        // (sqrt at 0 of an input the direction does not move) gives 0, not NaN.
        let tangents: Vec<Option<&A>> = inputs
            .iter()
            .map(|x| x.tangent.as_ref().filter(|t| !t.is_zero()))
            .collect();
        let tangent = if tangents.iter().any(Option::is_some) {
            checked_tangent(op.name(), &primal, op.jvp(&primals, &primal, &tangents)?)?
        } else {
            None
        };
        if crate::debug::enabled() {
            // Reported, not returned: an operator cannot fail, and the first report wins.
            let location = Location::caller();
            anomaly::check_value(op.name(), &primals, &primal, location);
            if let Some(t) = &tangent {
                let _ = anomaly::check_tangent(op.name(), &primals, t, Some(location));
            }
        }
        Ok(DualTensor { primal, tangent })
    }

    fn lift(value: Tensor<Self::Elem>) -> Self {
        DualTensor::constant(A::lift(value))
    }

    fn primal(&self) -> Tensor<Self::Elem> {
        self.primal.primal()
    }

    fn shape(&self) -> &[usize] {
        self.primal.shape()
    }

    fn is_zero(&self) -> bool {
        self.primal.is_zero() && self.tangent.as_ref().map_or(true, Array::is_zero)
    }
}

/// A JVP's result, or an error naming the operation and both shapes if it does not have its
/// output's shape (a custom operation's rule can get it wrong).
pub(crate) fn checked_tangent<A: Array>(
    op: &'static str,
    output: &A,
    tangent: Option<A>,
) -> Result<Option<A>, Error> {
    match tangent {
        Some(t) if t.shape() != output.shape() => Err(Error::ShapeMismatch {
            op,
            lhs: output.shape().to_vec(),
            rhs: t.shape().to_vec(),
        }),
        tangent => Ok(tangent),
    }
}
