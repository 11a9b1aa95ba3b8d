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

/// `c = a x + beta c` for an m x k matrix `a` (strides `(rs, cs)`) and a vector `x` (elements
/// `incx` apart), `c`'s elements `incc` apart. matrixmultiply packs both operands before
/// multiplying, which for a single column costs more than the product itself, so this shape
/// gets plain loops: dot products along contiguous rows, or column updates (axpy) when the
/// columns are contiguous instead.
#[allow(clippy::too_many_arguments)]
fn matrix_vector<T: Scalar>(
    m: usize,
    k: usize,
    a: &[T],
    (rs, cs): (usize, usize),
    x: &[T],
    incx: usize,
    beta: T,
    c: &mut [T],
    incc: usize,
) {
    let start = |i: usize, c: &[T]| {
        if beta == T::zero() {
            T::zero()
        } else {
            beta * c[i * incc]
        }
    };
    if cs == 1 && incx == 1 {
        for i in 0..m {
            let row = &a[i * rs..i * rs + k];
            c[i * incc] = start(i, c) + dot(row, &x[..k]);
        }
    } else if rs == 1 {
        for i in 0..m {
            c[i * incc] = start(i, c);
        }
        for p in 0..k {
            let xp = x[p * incx];
            let column = &a[p * cs..p * cs + m];
            for (i, &v) in column.iter().enumerate() {
                c[i * incc] += v * xp;
            }
        }
    } else {
        for i in 0..m {
            let mut sum = start(i, c);
            for p in 0..k {
                sum += a[i * rs + p * cs] * x[p * incx];
            }
            c[i * incc] = sum;
        }
    }
}

/// `<a, b>` with four partial sums, so the compiler can keep them in vector registers.
fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::zero(); 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: T = a4
        .remainder()
        .iter()
        .zip(b4.remainder())
        .map(|(&p, &q)| p * q)
        .sum();
    for (p, q) in a4.zip(b4) {
        for j in 0..4 {
            acc[j] += p[j] * q[j];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
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
                if n == 1 {
                    return matrix_vector(m, k, a, a_strides, b, b_strides.0, beta, c, ldc);
                }
                if m == 1 {
                    // c^T = b^T a^T: the same product with the roles swapped.
                    let (b_t, a_t) = ((b_strides.1, b_strides.0), a_strides.1);
                    return matrix_vector(n, k, b, b_t, a, a_t, beta, c, 1);
                }
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
