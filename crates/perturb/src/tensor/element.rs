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
    /// `c = a b + beta c`, `a` being m x k, `b` k x n and `c` m x n (row-major, rows `ldc`
    /// apart). `a` and `b` are read through (row stride, column stride) pairs, so a transposed
    /// operand needs no copy: a row-major k x m buffer read with strides `(1, m)` is its
    /// transpose. Panics if a stride reaches past a slice.
    ///
    /// ```
    /// use perturb::tensor::Element;
    /// let (a, b) = ([1.0_f64, 2.0, 3.0, 4.0], [1.0, 0.0, 0.0, 1.0]);
    /// let mut c = [0.0; 4];
    /// f64::gemm(2, 2, 2, &a, (2, 1), &b, (2, 1), 0.0, &mut c, 2);
    /// assert_eq!(c, a);
    /// f64::gemm(2, 2, 2, &a, (1, 2), &b, (2, 1), 0.0, &mut c, 2); // a transposed
    /// assert_eq!(c, [1.0, 3.0, 2.0, 4.0]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: &[Self],
        a_strides: (usize, usize),
        b: &[Self],
        b_strides: (usize, usize),
        beta: Self,
        c: &mut [Self],
        ldc: usize,
    );
}

/// Whether `rows x cols` read with `strides` stays inside `len` elements.
fn fits(len: usize, rows: usize, cols: usize, (rs, cs): (usize, usize)) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

macro_rules! impl_element {
    ($t:ty, $kernel:ident) => {
        impl Element for $t {
            fn gemm(
                m: usize,
                k: usize,
                n: usize,
                a: &[Self],
                a_strides: (usize, usize),
                b: &[Self],
                b_strides: (usize, usize),
                beta: Self,
                c: &mut [Self],
                ldc: usize,
            ) {
                if m == 0 || n == 0 {
                    return;
                }
                // Bounds the raw-pointer kernel below may read and write.
                assert!(fits(a.len(), m, k, a_strides) && fits(b.len(), k, n, b_strides));
                assert!(fits(c.len(), m, n, (ldc, 1)));
                // SAFETY: the asserts above keep every access of the kernel inside the slices.
                unsafe {
                    matrixmultiply::$kernel(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        a_strides.0 as isize,
                        a_strides.1 as isize,
                        b.as_ptr(),
                        b_strides.0 as isize,
                        b_strides.1 as isize,
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
