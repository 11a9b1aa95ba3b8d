//! Collectives on parameter trees: all-reduce (sum, mean) in buckets, and broadcast.

use perturb::num_traits::FromPrimitive;
use perturb::tensor::{Element, Tensor};
use perturb::tree::{Path, Tree};

use super::{CommError, Communicator};

/// The elements of one all-reduce message: a tree's leaves are laid end to end and reduced in
/// buckets of this many values (8 MiB of f64), so that no message (nor the thread ranks' copy of
/// it) grows with the model. The sum is element-wise, so the bucket size does not change the
/// result.
pub const BUCKET_ELEMENTS: usize = 1 << 20;

/// An element type the collectives can carry: `f32` or `f64`.
///
/// ```
/// use perturb_nn::distributed::{Reduce, Single};
/// let mut buf = [1.0_f32];
/// f32::all_reduce_sum(&Single, &mut buf).unwrap();
/// assert_eq!(buf, [1.0]);
/// ```
pub trait Reduce: Element + FromPrimitive + sealed::Sealed {
    /// The sum of `buf` over the ranks of `comm`, on every rank.
    ///
    /// ```
    /// use perturb_nn::distributed::{Reduce, Single};
    /// let mut buf = [2.0_f64];
    /// f64::all_reduce_sum(&Single, &mut buf).unwrap();
    /// assert_eq!(buf, [2.0]);
    /// ```
    fn all_reduce_sum<C: Communicator + ?Sized>(
        comm: &C,
        buf: &mut [Self],
    ) -> Result<(), CommError>;

    /// The value's bytes (little-endian), appended to `out`.
    ///
    /// ```
    /// use perturb_nn::distributed::Reduce;
    /// let mut out = Vec::new();
    /// 1.0_f32.put_bytes(&mut out);
    /// assert_eq!(out, 1.0_f32.to_le_bytes());
    /// ```
    fn put_bytes(self, out: &mut Vec<u8>);

    /// The values whose little-endian bytes are `bytes` (a trailing partial value ignored).
    ///
    /// ```
    /// use perturb_nn::distributed::Reduce;
    /// assert_eq!(f64::from_bytes(&2.5_f64.to_le_bytes()), [2.5]);
    /// ```
    fn from_bytes(bytes: &[u8]) -> Vec<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

macro_rules! reduce_impl {
    ($t:ty, $method:ident) => {
        impl Reduce for $t {
            fn all_reduce_sum<C: Communicator + ?Sized>(
                comm: &C,
                buf: &mut [Self],
            ) -> Result<(), CommError> {
                comm.$method(buf)
            }

            fn put_bytes(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn from_bytes(bytes: &[u8]) -> Vec<Self> {
                bytes
                    .chunks_exact(std::mem::size_of::<$t>())
                    .map(|c| <$t>::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect()
            }
        }
    };
}
reduce_impl!(f64, all_reduce_sum_f64);
reduce_impl!(f32, all_reduce_sum_f32);

/// Collectives on parameter trees, for every [`Communicator`]. Every rank must pass a tree of
/// the same structure and shapes.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt};
/// let got = run_on_threads(2, |comm| {
///     // Each rank draws its own weights; rank 0's win.
///     let mut weights = (Tensor::scalar(comm.rank() as f64 + 1.0), vec![Tensor::vector(&[7.0_f64])]);
///     comm.broadcast(&mut weights).unwrap();
///     weights.0.to_vec()[0]
/// });
/// assert_eq!(got, [1.0, 1.0]);
/// ```
pub trait CommunicatorExt: Communicator {
    /// Replaces every leaf of `tree` by its element-wise sum over the ranks (added in rank
    /// order, in buckets of [`BUCKET_ELEMENTS`]).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt};
    /// let got = run_on_threads(3, |comm| {
    ///     let mut g = [Tensor::vector(&[1.0_f32, comm.rank() as f32])];
    ///     comm.all_reduce_sum(&mut g).unwrap();
    ///     g[0].to_vec()
    /// });
    /// assert!(got.iter().all(|v| v == &[3.0, 3.0]));
    /// ```
    fn all_reduce_sum<T: Reduce, X: Tree<Tensor<T>>>(&self, tree: &mut X) -> Result<(), CommError> {
        if self.size() == 1 {
            // One rank: the sum is the tree itself (no copy of the model per step).
            return Ok(());
        }
        let mut flat = flatten(tree);
        for bucket in flat.chunks_mut(BUCKET_ELEMENTS) {
            T::all_reduce_sum(self, bucket)?;
        }
        write_back(tree, &flat);
        Ok(())
    }

    /// Replaces every leaf of `tree` by its element-wise mean over the ranks: the
    /// [`all_reduce_sum`](CommunicatorExt::all_reduce_sum) divided by the number of ranks.
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt};
    /// let got = run_on_threads(2, |comm| {
    ///     let mut g = Tensor::vector(&[comm.rank() as f64 * 4.0]);
    ///     comm.all_reduce_mean(&mut g).unwrap();
    ///     g.to_vec()
    /// });
    /// assert_eq!(got, [vec![2.0], vec![2.0]]);
    /// ```
    fn all_reduce_mean<T: Reduce, X: Tree<Tensor<T>>>(
        &self,
        tree: &mut X,
    ) -> Result<(), CommError> {
        self.all_reduce_sum(tree)?;
        if self.size() > 1 {
            let n = T::from_usize(self.size()).unwrap_or_else(T::one);
            tree.visit_mut(&mut Path::root(), &mut |_, leaf| {
                *leaf = leaf.map(|v| v / n);
            });
        }
        Ok(())
    }

    /// Replaces every leaf of `tree` by rank 0's. An error on a rank whose tree has another
    /// number of values than rank 0's (that rank's tree is left as it was).
    ///
    /// ```
    /// use perturb::tensor::Tensor;
    /// use perturb_nn::distributed::{run_on_threads, Communicator, CommunicatorExt};
    /// let got = run_on_threads(2, |comm| {
    ///     let mut w = vec![Tensor::<f64>::zeros(&[comm.rank() + 1])];
    ///     comm.broadcast(&mut w).map_err(|e| e.to_string())
    /// });
    /// assert!(got[0].is_ok());
    /// assert!(got[1].as_ref().unwrap_err().contains("rank 1 has 2 values where rank 0 has 1"));
    /// ```
    fn broadcast<T: Reduce, X: Tree<Tensor<T>>>(&self, tree: &mut X) -> Result<(), CommError> {
        if self.size() == 1 {
            return Ok(());
        }
        let flat = flatten(tree);
        let mut bytes = Vec::new();
        if self.rank() == 0 {
            bytes.reserve(flat.len() * std::mem::size_of::<T>());
            flat.iter().for_each(|v| v.put_bytes(&mut bytes));
        }
        self.broadcast_bytes(&mut bytes)?;
        let values = T::from_bytes(&bytes);
        if values.len() != flat.len() {
            return Err(CommError::LengthMismatch {
                op: "broadcast",
                rank: self.rank(),
                expected: values.len(),
                found: flat.len(),
            });
        }
        write_back(tree, &values);
        Ok(())
    }
}

impl<C: Communicator + ?Sized> CommunicatorExt for C {}

/// The leaves' values end to end.
fn flatten<T: Element, X: Tree<Tensor<T>>>(tree: &X) -> Vec<T> {
    let mut flat = Vec::new();
    tree.visit(&mut Path::root(), &mut |_, leaf| {
        flat.extend_from_slice(leaf.as_slice())
    });
    flat
}

/// Puts `flat` (as [`flatten`] laid it out) back into the leaves.
fn write_back<T: Element, X: Tree<Tensor<T>>>(tree: &mut X, flat: &[T]) {
    let mut at = 0;
    tree.visit_mut(&mut Path::root(), &mut |_, leaf| {
        let n = leaf.len();
        // Same length as the leaf, so the shape fits: this cannot fail.
        if let Ok(t) = Tensor::from_vec(flat[at..at + n].to_vec(), leaf.shape()) {
            *leaf = t;
        }
        at += n;
    });
}
