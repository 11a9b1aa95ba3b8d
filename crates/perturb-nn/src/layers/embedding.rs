//! [`Embedding`]: a table of vectors looked up by integer index.

use perturb::tensor::{Array, Element, Tensor};
use perturb::Error;
use perturb::Tree;

use super::in_layer;
use super::init::parameter_count;
use crate::module::{Context, Module};

/// A table of `num` vectors of length `dim` (the leaf `weight`, shape `[num, dim]`), looked up
/// by index: an input of indices of shape `[..]` gives `[.., dim]`. The input holds the
/// indices as numbers (`0.0, 1.0, ...`, so that an `Embedding` fits in a
/// [`Sequential`](super::Sequential)); it is not differentiated. The table's gradient adds
/// each output row's cotangent to the row it was read from (through
/// [`Array::try_index_select`]).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::layers::Embedding;
/// use perturb_nn::module::Module;
/// let e = Embedding { weight: Tensor::from_vec(vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0], &[3, 2]).unwrap() };
/// let y = e.forward_eval(&Tensor::from_vec(vec![2.0, 0.0, 2.0], &[1, 3]).unwrap()).unwrap();
/// assert_eq!(y.shape(), &[1, 3, 2]);
/// assert_eq!(y.to_vec(), [20.0, 21.0, 0.0, 1.0, 20.0, 21.0]);
/// let err = e.forward_eval(&Tensor::vector(&[3.0])).unwrap_err().to_string();
/// assert!(err.starts_with("Embedding::forward: "), "{err}");
/// ```
#[derive(Tree, Clone, Debug, PartialEq)]
pub struct Embedding<A> {
    /// The table, shape `[num, dim]`: row `i` is the vector of index `i`.
    pub weight: A,
}

impl<T: Element> Embedding<Tensor<T>> {
    /// A table of `num` vectors of length `dim` drawn from `N(0, 1)` with `seed` (PyTorch's
    /// initialisation); an error if a size is 0 or the table would have more than
    /// [`MAX_PARAMETERS`](crate::nn::MAX_PARAMETERS) elements.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Embedding;
    /// let e = Embedding::<Tensor<f64>>::new(10, 4, 0).unwrap();
    /// assert_eq!(e.weight.shape(), &[10, 4]);
    /// assert!(Embedding::<Tensor<f64>>::new(0, 4, 0).is_err());
    /// ```
    pub fn new(num: usize, dim: usize, seed: u64) -> Result<Self, Error> {
        parameter_count("Embedding::new", &[num, dim])?;
        Ok(Embedding {
            weight: Tensor::randn(&[num, dim], T::zero(), T::one(), seed),
        })
    }
}

impl<A: Array> Embedding<A> {
    /// The rows at `indices`, shape `[indices.len(), dim]`; an error naming
    /// `Embedding::lookup` for an index out of range.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::layers::Embedding;
    /// let e = Embedding { weight: Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap() };
    /// assert_eq!(e.lookup(&[1, 1]).unwrap().to_vec(), [3.0, 4.0, 3.0, 4.0]);
    /// assert!(e.lookup(&[2]).is_err());
    /// ```
    pub fn lookup(&self, indices: &[usize]) -> Result<A, Error> {
        let op = "Embedding::lookup";
        let num = self.check_weight(op)?;
        if let Some(&i) = indices.iter().find(|&&i| i >= num) {
            return Err(Error::InvalidArgument {
                op,
                reason: format!("the index {i} is out of range for a table of {num} rows"),
            });
        }
        self.weight
            .try_index_select(0, indices.to_vec())
            .map_err(|e| in_layer(op, e))
    }

    /// The number of rows, or an error if the weight is not a matrix.
    fn check_weight(&self, op: &'static str) -> Result<usize, Error> {
        match self.weight.shape() {
            [num, _] => Ok(*num),
            shape => Err(Error::InvalidArgument {
                op,
                reason: format!("the table must be a matrix [num, dim], got shape {shape:?}"),
            }),
        }
    }
}

impl<A: Array> Module<A> for Embedding<A> {
    fn forward(&self, x: &A, _: &mut Context) -> Result<A, Error> {
        let op = "Embedding::forward";
        let num = self.check_weight(op)?;
        let values = x.primal().cast::<f64>().into_vec();
        let mut indices = Vec::with_capacity(values.len());
        for v in values {
            if !(v >= 0.0 && v < num as f64 && v.fract() == 0.0) {
                return Err(Error::InvalidArgument {
                    op,
                    reason: format!(
                        "the input holds {v}, not an index in 0..{num} (a whole number)"
                    ),
                });
            }
            indices.push(v as usize);
        }
        let dim = self.weight.shape()[1];
        let shape: Vec<usize> = x.shape().iter().copied().chain([dim]).collect();
        self.lookup(&indices)?
            .try_reshape(&shape)
            .map_err(|e| in_layer(op, e))
    }

    fn architecture(&self) -> String {
        let shape = self.weight.shape();
        let dim = |i: usize| shape.get(i).copied().unwrap_or(0);
        format!("Embedding({},{})", dim(0), dim(1))
    }
}
