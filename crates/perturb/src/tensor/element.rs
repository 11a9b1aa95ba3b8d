//! The element types a [`Tensor`](super::Tensor) can hold: `f32` and `f64`.

use crate::scalar::Scalar;

/// An element type of [`Tensor`](super::Tensor): `f32` or `f64`.
///
/// It supplies the matrix product kernel for its type; everything else is generic.
///
/// ```
/// fn zeros<T: perturb::tensor::Element>(n: usize) -> perturb::tensor::Tensor<T> {
///     perturb::tensor::Tensor::zeros(&[n])
/// }
/// assert_eq!(zeros::<f32>(2).len(), 2);
/// ```
pub trait Element: Scalar + Send + Sync + 'static {
    /// `c = a b + beta c` for row-major `a` (m x k), `b` (k x n) and `c` (m x n), each with
    /// the given row stride (elements between rows); columns are contiguous.
    ///
    /// ```
    /// use perturb::tensor::Element;
    /// let (a, b) = ([1.0_f64, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
    /// let mut c = [0.0; 4];
    /// f64::gemm(2, 2, 2, &a, 2, &b, 2, 0.0, &mut c, 2);
    /// assert_eq!(c, a);
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        lda: usize,
        b: &[Self],
        ldb: usize,
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    );
}

macro_rules! impl_element {
    ($t:ty, $kernel:ident) => {
        impl Element for $t {
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                lda: usize,
                b: &[Self],
                ldb: usize,
                beta: Self,
                c: &mut [Self],
                ldc: usize,
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                // Bounds the raw-pointer kernel below may read and write.
                assert!(k == 0 || (a.len() >= (m - 1) * lda + k && b.len() >= (k - 1) * ldb + n));
                assert!(c.len() >= (m - 1) * ldc + n);
                // SAFETY: the asserts above keep every access of the kernel inside the slices.
                unsafe {
                    matrixmultiply::$kernel(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        lda as isize,
                        1,
                        b.as_ptr(),
                        ldb as isize,
                        1,
                        beta,
                        c.as_mut_ptr(),
                        ldc as isize,
                        1,
                    );
                }
            }
        }
    };
}
impl_element!(f32, sgemm);
impl_element!(f64, dgemm);
