//! The pieces of a data-parallel training step: which rows of each global mini-batch a rank
//! takes, and the reduction that turns the ranks' gradients into the batch's.
//!
//! A step on every rank: take this rank's [`shard`] of the batch (`x.try_slice(0, rows)`), compute the
//! mean loss over it and its gradient, [`reduce_gradients`], then the optimiser's update.
//! Every rank then holds the gradient of the mean loss over the whole batch, the same bits on
//! every rank, and takes the same step: the weights stay equal on every rank without being
//! sent again.
//!
//! ```
//! use perturb::tensor::{value_and_grad_n, Array, Tensor};
//! use perturb_nn::distributed::data_parallel::{reduce_gradients, shard};
//! use perturb_nn::distributed::{run_on_threads, Communicator};
//!
//! // The mean of (w x)^2 over a batch of 5 rows, its gradient in w on 2 ranks.
//! let x = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0, 5.0], &[5, 1]).unwrap();
//! let w = Tensor::from_vec(vec![0.5_f64], &[1, 1]).unwrap();
//! let grads = run_on_threads(2, |comm| {
//!     let rows = shard(5, comm.rank(), comm.size()); // 0..3, then 3..5
//!     let mine = x.try_slice(0, rows.clone()).unwrap();
//!     let (_, mut g) = value_and_grad_n(
//!         |p| {
//!             let y = p[0].constant_like(&mine).matmul(&p[0]);
//!             Ok(y.mul(&y).mean_all())
//!         },
//!         &[w.clone()],
//!     )
//!     .unwrap();
//!     reduce_gradients(&comm, &mut g, rows.len(), 5).unwrap();
//!     g[0].to_vec()[0]
//! });
//! // d/dw mean((w x)^2) = 2 w mean(x^2) = 2 * 0.5 * 11 = 11, on both ranks.
//! assert!((grads[0] - 11.0).abs() < 1e-12 && grads[0] == grads[1]);
//! ```

use std::ops::Range;

use perturb::tensor::Tensor;
use perturb::tree::{Path, Tree};

use super::{CommError, CommunicatorExt, Reduce};

/// The rows of a batch of `rows` rows that rank `rank` of `size` takes: contiguous blocks in
/// the batch's order, rank 0 first, the first `rows % size` ranks one row more than the others.
/// A rank gets no rows when the batch has fewer rows than there are ranks.
///
/// ```
/// use perturb_nn::distributed::data_parallel::shard;
/// let parts: Vec<_> = (0..3).map(|r| shard(10, r, 3)).collect();
/// assert_eq!(parts, [0..4, 4..7, 7..10]);
/// assert_eq!(shard(1, 1, 2), 1..1);
/// ```
pub fn shard(rows: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    let (base, extra) = (rows / size, rows % size);
    let start = rank * base + rank.min(extra);
    let len = if rank < size {
        base + usize::from(rank < extra)
    } else {
        0
    };
    let start = start.min(rows);
    start..(start + len).min(rows)
}

/// Turns this rank's gradient of the mean loss over its `local_rows` rows of a global batch of
/// `global_rows` rows into the gradient of the mean loss over the whole batch, on every rank:
/// each rank's gradient weighted by its share of the rows (`local_rows / global_rows`), then
/// summed over the ranks ([`all_reduce_sum`](CommunicatorExt::all_reduce_sum), in rank
/// order). With equal shares this is the mean of the ranks' gradients. A rank with no rows
/// contributes zeros, whatever its tree holds (its mean loss over no rows is NaN). Any tree
/// reduces, so the loss can travel in the same message: `(grads, loss)`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::distributed::data_parallel::reduce_gradients;
/// use perturb_nn::distributed::{run_on_threads, Communicator};
/// let got = run_on_threads(2, |comm| {
///     // Rank 0 saw 3 rows with a mean gradient 1, rank 1 one row with gradient 5.
///     let (g, rows) = if comm.rank() == 0 { (1.0, 3) } else { (5.0, 1) };
///     let mut tree = (vec![Tensor::vector(&[g])], Tensor::scalar(g));
///     reduce_gradients(&comm, &mut tree, rows, 4).unwrap();
///     tree.1.to_vec()[0]
/// });
/// assert_eq!(got, [2.0, 2.0]); // (3 * 1 + 1 * 5) / 4
/// ```
pub fn reduce_gradients<C, T, X>(
    comm: &C,
    grads: &mut X,
    local_rows: usize,
    global_rows: usize,
) -> Result<(), CommError>
where
    C: CommunicatorExt + ?Sized,
    T: Reduce,
    X: Tree<Tensor<T>>,
{
    // One rank with the whole batch: nothing to weigh (and the result stays bit for bit that
    // of a run without a communicator).
    if local_rows == 0 {
        // Nothing to weigh: the mean loss over no rows is 0 / 0, and NaN * 0 would be NaN.
        grads.visit_mut(&mut Path::root(), &mut |_, leaf| {
            *leaf = Tensor::zeros(leaf.shape());
        });
    } else if local_rows != global_rows {
        let share = T::from_usize(local_rows).unwrap_or_else(T::zero)
            / T::from_usize(global_rows.max(1)).unwrap_or_else(T::one);
        grads.visit_mut(&mut Path::root(), &mut |_, leaf| {
            *leaf = leaf.map(|v| v * share);
        });
    }
    comm.all_reduce_sum(grads)
}
