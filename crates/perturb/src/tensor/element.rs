//! The element types a [`Tensor`](super::Tensor) can hold: `f32` and `f64`.

use crate::scalar::Scalar;

/// An element type of [`Tensor`](super::Tensor): `f32` or `f64`.
///
/// It supplies the matrix product kernel for its type and, through a sealed bound (no other
/// type can be an element), the dense decompositions; everything else is generic.
///
/// ```
/// fn zeros<T: perturb::tensor::Element>(n: usize) -> perturb::tensor::Tensor<T> {
///     perturb::tensor::Tensor::zeros(&[n])
/// }
/// assert_eq!(zeros::<f32>(2).len(), 2);
/// ```
pub trait Element: Scalar + Send + Sync + crate::tensor::ops::Dense + 'static {
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
/// Computed with checked arithmetic: a product that wraps around must not pass for a small one
/// (strides `(2^63, 1)` over three rows reached `2^64`, that is 0, and the kernel read past
/// `a`). The strides must also fit in `isize`, as the kernel takes them, even where a single
/// row or column never uses its stride.
fn fits(len: usize, rows: usize, cols: usize, (rs, cs): (usize, usize)) -> bool {
    let last = || {
        (rows - 1)
            .checked_mul(rs)?
            .checked_add((cols - 1).checked_mul(cs)?)
    };
    let max = isize::MAX as usize;
    rows == 0 || cols == 0 || (rs <= max && cs <= max && last().is_some_and(|last| last < len))
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
    if cs == 1 && incx == 1 && rs == k && (1..=4).contains(&k) {
        // Rows of one to four contiguous elements (a layer with a handful of inputs): one
        // unrolled loop over the rows, not a dot-product call per row.
        return match k {
            1 => short_rows::<T, 1>(m, a, x, beta, c, incc),
            2 => short_rows::<T, 2>(m, a, x, beta, c, incc),
            3 => short_rows::<T, 3>(m, a, x, beta, c, incc),
            _ => short_rows::<T, 4>(m, a, x, beta, c, incc),
        };
    }
    if rs == 1 && cs == m && (1..=4).contains(&m) {
        // The transpose of such rows (a layer's weight gradient): `K` running sums.
        return match m {
            1 => short_columns::<T, 1>(k, a, x, incx, beta, c, incc),
            2 => short_columns::<T, 2>(k, a, x, incx, beta, c, incc),
            3 => short_columns::<T, 3>(k, a, x, incx, beta, c, incc),
            _ => short_columns::<T, 4>(k, a, x, incx, beta, c, incc),
        };
    }
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

/// `beta c + sum`, with `c` ignored (not multiplied: it may be NaN) when `beta` is zero, as BLAS
/// does.
fn plus_beta<T: Scalar>(beta: T, c: T, sum: T) -> T {
    if beta == T::zero() {
        sum
    } else {
        beta * c + sum
    }
}

/// `c = a x + beta c` for `m` contiguous rows of `K` elements each.
fn short_rows<T: Scalar, const K: usize>(
    m: usize,
    a: &[T],
    x: &[T],
    beta: T,
    c: &mut [T],
    incc: usize,
) {
    let x: [T; K] = std::array::from_fn(|p| x[p]);
    let rows = a.chunks_exact(K).take(m);
    for (row, ci) in rows.zip(c.iter_mut().step_by(incc)) {
        let mut sum = T::zero();
        for p in 0..K {
            sum += row[p] * x[p];
        }
        *ci = plus_beta(beta, *ci, sum);
    }
}

/// `c = a x + beta c` for `a` the transpose of `k` contiguous rows of `K` elements each.
fn short_columns<T: Scalar, const K: usize>(
    k: usize,
    a: &[T],
    x: &[T],
    incx: usize,
    beta: T,
    c: &mut [T],
    incc: usize,
) {
    let mut sums = [T::zero(); K];
    for (row, &xp) in a.chunks_exact(K).take(k).zip(x.iter().step_by(incx)) {
        for (sum, &v) in sums.iter_mut().zip(row) {
            *sum += v * xp;
        }
    }
    for (ci, sum) in c.iter_mut().step_by(incc).zip(sums) {
        *ci = plus_beta(beta, *ci, sum);
    }
}

/// `c = a b + beta c` for an inner dimension `k <= 4` and `n <= 8` columns (a layer with a
/// handful of inputs and outputs): `b` is copied into a small dense block, then each element
/// of `c` is an unrolled `k`-term dot product of a row of `a` with a column of the block.
/// matrixmultiply would pack all of `a` for a product this thin.
#[allow(clippy::too_many_arguments)]
fn short_inner<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_strides: (usize, usize),
    b: &[T],
    (brs, bcs): (usize, usize),
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let mut block = [[T::zero(); 8]; 4];
    for (p, row) in block.iter_mut().enumerate().take(k) {
        for (j, v) in row.iter_mut().enumerate().take(n) {
            *v = b[p * brs + j * bcs];
        }
    }
    match k {
        1 => short_inner_rows::<T, 1>(m, n, a, a_strides, &block, beta, c, ldc),
        2 => short_inner_rows::<T, 2>(m, n, a, a_strides, &block, beta, c, ldc),
        3 => short_inner_rows::<T, 3>(m, n, a, a_strides, &block, beta, c, ldc),
        _ => short_inner_rows::<T, 4>(m, n, a, a_strides, &block, beta, c, ldc),
    }
}

/// [`short_inner`] for `K`, the inner dimension, known at compile time.
#[allow(clippy::too_many_arguments)]
fn short_inner_rows<T: Scalar, const K: usize>(
    m: usize,
    n: usize,
    a: &[T],
    (ars, acs): (usize, usize),
    block: &[[T; 8]; 4],
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    for i in 0..m {
        let ai: [T; K] = std::array::from_fn(|p| a[i * ars + p * acs]);
        for (j, cij) in c[i * ldc..i * ldc + n].iter_mut().enumerate() {
            let mut sum = T::zero();
            for p in 0..K {
                sum += ai[p] * block[p][j];
            }
            *cij = plus_beta(beta, *cij, sum);
        }
    }
}

/// `c = a b + beta c` for an output of at most 4 x 4 (the weight gradient of a small layer,
/// a long inner dimension): `M x N` running sums of the outer products of each column of `a`
/// and row of `b`.
#[allow(clippy::too_many_arguments)]
fn small_output<T: Scalar, const M: usize, const N: usize>(
    k: usize,
    a: &[T],
    (ars, acs): (usize, usize),
    b: &[T],
    (brs, bcs): (usize, usize),
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    let mut sums = [[T::zero(); N]; M];
    let mut add = |column: [T; M], row: [T; N]| {
        for (sums_i, &ai) in sums.iter_mut().zip(&column) {
            for (sum, &bj) in sums_i.iter_mut().zip(&row) {
                *sum += ai * bj;
            }
        }
    };
    if (ars, acs, brs, bcs) == (1, M, N, 1) {
        // `a` the transpose of `k` contiguous rows of `M`, `b` `k` contiguous rows of `N` (a
        // layer's weight gradient): no index arithmetic.
        for (column, row) in a.chunks_exact(M).zip(b.chunks_exact(N)).take(k) {
            add(
                std::array::from_fn(|i| column[i]),
                std::array::from_fn(|j| row[j]),
            );
        }
    } else {
        for p in 0..k {
            add(
                std::array::from_fn(|i| a[i * ars + p * acs]),
                std::array::from_fn(|j| b[p * brs + j * bcs]),
            );
        }
    }
    for (i, sums_i) in sums.iter().enumerate() {
        for (j, &sum) in sums_i.iter().enumerate() {
            let cij = &mut c[i * ldc + j];
            *cij = plus_beta(beta, *cij, sum);
        }
    }
}

/// [`small_output`] for the run-time `m x n`, each 2 to 4 (a vector goes to
/// [`matrix_vector`]); `false` for other sizes, which it leaves alone.
#[allow(clippy::too_many_arguments)]
fn small_output_dispatch<T: Scalar>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    a_strides: (usize, usize),
    b: &[T],
    b_strides: (usize, usize),
    beta: T,
    c: &mut [T],
    ldc: usize,
) -> bool {
    macro_rules! sizes {
        ($(($mm:literal, $nn:literal)),*) => {
            match (m, n) {
                $(($mm, $nn) => small_output::<T, $mm, $nn>(k, a, a_strides, b, b_strides, beta, c, ldc),)*
                _ => return false,
            }
        };
    }
    sizes!(
        (2, 2),
        (2, 3),
        (2, 4),
        (3, 2),
        (3, 3),
        (3, 4),
        (4, 2),
        (4, 3),
        (4, 4)
    );
    true
}

/// `<a, b>` with four partial sums, so the compiler can keep them in vector registers. They
/// are added lane by lane (`0 + 2`, `1 + 3`) at the end: `(0 + 1) + (2 + 3)` made the
/// compiler pair lanes 0 and 2 inside the loop, with two shuffles per four elements (1.6x a
/// plain loop's instructions).
pub(crate) fn dot<T: Scalar>(a: &[T], b: &[T]) -> T {
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
    ((acc[0] + acc[2]) + (acc[1] + acc[3])) + tail
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
                if (1..=4).contains(&k) && n <= 8 {
                    return short_inner(m, k, n, a, a_strides, b, b_strides, beta, c, ldc);
                }
                if small_output_dispatch(m, k, n, a, a_strides, b, b_strides, beta, c, ldc) {
                    return;
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
