//! One process: every collective is the identity.

use super::{CommError, Communicator};

/// The communicator of a run in one process: rank 0 of 1; every collective leaves its input
/// as it is. Training code written for a [`Communicator`] runs unchanged, and bit for bit as
/// it would without one, on `Single`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::distributed::{CommunicatorExt, Single};
/// let mut grads = vec![Tensor::vector(&[1.0_f64, 2.0])];
/// Single.all_reduce_mean(&mut grads).unwrap();
/// assert_eq!(grads[0].to_vec(), [1.0, 2.0]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_sum_f64(&self, _buf: &mut [f64]) -> Result<(), CommError> {
        Ok(())
    }

    fn all_reduce_sum_f32(&self, _buf: &mut [f32]) -> Result<(), CommError> {
        Ok(())
    }

    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) -> Result<(), CommError> {
        Ok(())
    }

    fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, CommError> {
        Ok(vec![bytes.to_vec()])
    }

    fn barrier(&self) -> Result<(), CommError> {
        Ok(())
    }

    fn abort(&self, _reason: &str) {}
}
