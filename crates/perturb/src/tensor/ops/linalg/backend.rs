//! The dense kernels the linear-algebra operations' values run on: one matrix at a time,
//! row-major in and out, computed by faer (chosen over nalgebra by measurement, BENCHMARKS.md).
//!
//! faer's traits carry bounds that perturb's generic code cannot state, so each kernel is a
//! generic function over faer's `RealField`, instantiated for `f32` and `f64` by the sealed
//! [`Dense`] trait that [`Element`](crate::tensor::Element) requires. The operations call
//! `T::cholesky(..)` and so on; nothing else in perturb names faer.

use faer::linalg::triangular_solve as tri;
use faer::traits::RealField;
use faer::{Mat, MatRef, Par, Side};

/// The matrices' kernels, one matrix each, row-major `[rows, cols]` slices in and out.
/// Implemented for `f32` and `f64` only (sealed: the trait is not nameable outside perturb).
pub trait Dense: Sized + Copy {
    /// The lower Cholesky factor `L` of a symmetric positive definite `n x n` matrix `a`
    /// (only its lower triangle is read), zeros above the diagonal; `Err(pivot)` (zero-based)
    /// at the first pivot that is not positive.
    fn cholesky(a: &[Self], n: usize) -> Result<Vec<Self>, usize>;

    /// The inverse `(L L^T)^-1` of a symmetric positive definite matrix from its lower
    /// Cholesky factor `l` (`n x n`, only its lower triangle read): faer's triangular inverse
    /// and triangular product, about `n^3 / 3` multiply-adds, where a solve with the identity
    /// takes `n^3`. Both triangles of the symmetric result are written.
    fn cholesky_inverse(l: &[Self], n: usize) -> Vec<Self>;

    /// `c = alpha a b`, or `c += alpha a b` when `add`, for an `m x k` matrix `a` and a
    /// `k x n` matrix `b` read with `(row, column)` strides (one of each pair 1: row-major,
    /// or column-major for a transpose) and a row-major `m x n` matrix `c` with rows `ldc`
    /// apart: faer's matrix product, on one thread below order 1024 like the factorisations (the
    /// Cholesky VJP's blocks). Panics if a view reaches past its slice.
    #[allow(clippy::too_many_arguments)]
    fn matmul_into(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: &[Self],
        a_strides: (usize, usize),
        b: &[Self],
        b_strides: (usize, usize),
        add: bool,
        c: &mut [Self],
        ldc: usize,
    );

    /// `x` with `op(a) x = b` for a triangular `n x n` matrix `a` (its `lower` or upper
    /// triangle, the diagonal taken as ones when `unit_diagonal`), `op` the transpose when
    /// `transpose`, and `b` `n x nrhs`. A zero on the diagonal gives infinities, not an error:
    /// the caller checks the diagonal.
    fn triangular_solve(
        a: &[Self],
        n: usize,
        b: &[Self],
        nrhs: usize,
        shape: Triangle,
    ) -> Vec<Self>;

    /// `x` with `op(a) x = b` for a general `n x n` matrix `a` by LU with partial pivoting,
    /// `op` the transpose when `transpose`, `b` being `n x nrhs`; `Err(pivot)` (zero-based) at
    /// the first exactly-zero pivot of `U`.
    fn lu_solve(
        a: &[Self],
        n: usize,
        b: &[Self],
        nrhs: usize,
        transpose: bool,
    ) -> Result<Vec<Self>, usize>;

    /// The diagonal of `U` in the LU decomposition of an `n x n` matrix with partial pivoting,
    /// and whether the row permutation is odd: `det a` is the product of the diagonal, negated
    /// for an odd permutation. From the first exactly-zero pivot on (a singular matrix) the
    /// diagonal is zeros, unless `a` holds a NaN or an infinity.
    fn lu_diagonal(a: &[Self], n: usize) -> (Vec<Self>, bool);

    /// The eigenvalues of a symmetric `n x n` matrix (only its lower triangle is read), in
    /// ascending order, and the eigenvectors as the columns of an `n x n` row-major matrix;
    /// `Err` with faer's reason if the iteration did not converge. NaN values and vectors if
    /// the lower triangle holds a NaN or an infinity.
    fn eigh(a: &[Self], n: usize) -> Result<(Vec<Self>, Vec<Self>), String>;

    /// The reduced QR decomposition of an `m x n` matrix: `q` is `m x k` with orthonormal
    /// columns and `r` is `k x n` upper triangular, `k = min(m, n)`.
    fn qr(a: &[Self], m: usize, n: usize) -> (Vec<Self>, Vec<Self>);
}

/// Which triangle of a matrix a triangular solve reads, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Triangle {
    /// The lower triangle (else the upper).
    pub lower: bool,
    /// Solve with the transpose of the triangle.
    pub transpose: bool,
    /// Take the diagonal as ones, without reading it.
    pub unit_diagonal: bool,
}

/// Parallelism for one matrix of order `n`: faer's threads did not pay below n = 1024 on
/// this project's machine (BENCHMARKS.md, "Decompositions": up to 2x slower at 256, 4x for
/// LU at 64), and the operations already run the members of a batch in parallel.
fn par(n: usize) -> Par {
    if n >= 1024 {
        Par::rayon(0)
    } else {
        Par::Seq
    }
}

/// The LU factorisation with partial pivoting of an `n x n` matrix, in place (`L` unit lower
/// below the diagonal, `U` on and above it), with the row permutation and its inverse.
/// Called directly rather than through `Mat::partial_piv_lu`, which takes faer's global
/// parallelism setting rather than [`par`].
///
/// What is factored is `R a C` ([`equilibrate`]): the rows and then the columns of `a` whose
/// largest magnitude is below `sqrt(MIN_POSITIVE)` or above `sqrt(MAX)` scaled by powers of
/// two to a largest magnitude near 1. faer scales each column below a pivot by the pivot's
/// reciprocal, which overflows for a subnormal pivot (`0 * inf = NaN`), so `diag(1e-310, 1)`
/// had determinant NaN and `1e-310 I` was "singular"; and the elimination of
/// `[[1e308, 1e308], [-1e308, 1e308]]` overflowed (`U_11 = inf`), so the solve of
/// `(1e308, 0)` was `(1, 0)`, not `(0.5, 0.5)`. Matrices without such rows or columns are
/// factored as they are.
struct Lu<F: RealField> {
    lu: Mat<F>,
    perm: Vec<usize>,
    perm_inv: Vec<usize>,
    /// The diagonals of `R` and `C`.
    rows: Vec<F>,
    cols: Vec<F>,
}

/// The power of two that brings `max` to `[1, 2)` (or as near as a finite power of two can)
/// when it is positive and below `sqrt(MIN_POSITIVE)`, or finite and above `sqrt(MAX)`; 1 for
/// other values (zero, ordinary, or not finite).
fn scale_to_one<F: RealField + Copy>(max: F) -> F {
    let (one, two) = (F::one_impl(), F::one_impl() + F::one_impl());
    let mut s = one;
    let tiny = F::sqrt_impl(&F::min_positive_impl());
    let huge = F::sqrt_impl(&F::max_positive_impl());
    if max > F::zero_impl() && max < tiny {
        // Stopping short of overflowing the scale: from 2^-1074, 2^1022 reaches 2^-52.
        let limit = F::max_positive_impl() / two;
        while max * s < one && s < limit {
            s *= two;
        }
    } else if max > huge && F::is_finite_impl(&max) {
        while max * s >= two {
            s /= two;
        }
    }
    s
}

/// Scales the rows, then the columns, of `m` whose largest magnitude is below
/// `sqrt(MIN_POSITIVE)` or above `sqrt(MAX)` by powers of two to near 1 ([`scale_to_one`];
/// exact but for entries that become subnormal, far below the row's rounding), returning the
/// scales of the rows and of the columns: `m` becomes `R m C`. faer's LU and triangular
/// solves multiply by the reciprocal of a pivot or a diagonal entry, which overflows for a
/// subnormal one, and their elimination overflows on rows near `MAX`.
fn equilibrate<F: RealField + Copy>(m: &mut Mat<F>) -> (Vec<F>, Vec<F>) {
    // Column by column (faer's matrices are column-major; along rows every read missed the
    // cache), and no pass at all where every scale is 1 (an exact no-op skipped): at n = 500
    // this was 10% of the Gaussian-process benchmark.
    let (r, c) = (m.nrows(), m.ncols());
    let one = F::one_impl();
    let mut row_max = vec![F::zero_impl(); r];
    for j in 0..c {
        for (i, big) in row_max.iter_mut().enumerate() {
            let x = F::abs_impl(&m[(i, j)]);
            if x > *big {
                *big = x;
            }
        }
    }
    let rows: Vec<F> = row_max.into_iter().map(scale_to_one).collect();
    if rows.iter().any(|&s| s != one) {
        for j in 0..c {
            for (i, &s) in rows.iter().enumerate() {
                m[(i, j)] *= s;
            }
        }
    }
    let cols: Vec<F> = (0..c)
        .map(|j| {
            let big = (0..r)
                .map(|i| F::abs_impl(&m[(i, j)]))
                .fold(F::zero_impl(), |big, x| if x > big { x } else { big });
            scale_to_one(big)
        })
        .collect();
    for (j, &s) in cols.iter().enumerate() {
        if s != one {
            for i in 0..r {
                m[(i, j)] *= s;
            }
        }
    }
    (rows, cols)
}

/// `x` with each row `i` multiplied by `scales[i]`.
fn scale_rows<F: RealField + Copy>(x: &mut Mat<F>, scales: &[F]) {
    if scales.iter().all(|&s| s == F::one_impl()) {
        return;
    }
    for (i, &s) in scales.iter().enumerate() {
        for j in 0..x.ncols() {
            x[(i, j)] *= s;
        }
    }
}

impl<F: RealField + Copy> Lu<F> {
    fn new(a: &[F], n: usize) -> Self {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::lu::partial_pivoting::factor;
        let mut lu = view(a, n, n).to_owned();
        let (rows, cols) = equilibrate(&mut lu);
        let (mut perm, mut perm_inv) = (vec![0usize; n], vec![0usize; n]);
        let par = par(n);
        let mut mem = MemBuffer::new(factor::lu_in_place_scratch::<usize, F>(
            n,
            n,
            par,
            Default::default(),
        ));
        factor::lu_in_place(
            lu.as_mut(),
            &mut perm,
            &mut perm_inv,
            par,
            MemStack::new(&mut mem),
            Default::default(),
        );
        Lu {
            lu,
            perm,
            perm_inv,
            rows,
            cols,
        }
    }

    /// The first exactly-zero pivot of `U`.
    fn zero_pivot(&self) -> Option<usize> {
        (0..self.lu.nrows()).find(|&i| self.lu[(i, i)] == F::zero_impl())
    }

    /// `op(a)^-1 b` for `b` `n x nrhs`, `op` the transpose when `transpose`: with `S = R a C`
    /// factored, `a x = b` is `S y = R b`, `x = C y`, and `a^T x = b` is `S^T y = C b`,
    /// `x = R y`.
    fn solve(&self, b: &[F], nrhs: usize, transpose: bool) -> Vec<F> {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::lu::partial_pivoting::solve;
        let n = self.lu.nrows();
        let perm = faer::perm::PermRef::new_checked(&self.perm, &self.perm_inv, n);
        let (before, after) = if transpose {
            (&self.cols, &self.rows)
        } else {
            (&self.rows, &self.cols)
        };
        let mut x = view(b, n, nrhs).to_owned();
        scale_rows(&mut x, before);
        let par = par(n);
        let mut mem = MemBuffer::new(solve::solve_in_place_scratch::<usize, F>(n, nrhs, par));
        let (lu, stack) = (self.lu.as_ref(), MemStack::new(&mut mem));
        if transpose {
            solve::solve_transpose_in_place(lu, lu, perm, x.as_mut(), par, stack);
        } else {
            solve::solve_in_place(lu, lu, perm, x.as_mut(), par, stack);
        }
        scale_rows(&mut x, after);
        row_major(x.as_ref())
    }
}

/// `a` (`rows x cols`) read with `(row, column)` strides, one of them 1.
fn strided<F: RealField>(
    a: &[F],
    rows: usize,
    cols: usize,
    (rs, cs): (usize, usize),
) -> MatRef<'_, F> {
    if cs == 1 {
        MatRef::from_row_major_slice_with_stride(a, rows, cols, rs)
    } else {
        assert_eq!(rs, 1, "a view needs one stride of 1");
        MatRef::from_column_major_slice_with_stride(a, rows, cols, cs)
    }
}

#[allow(clippy::too_many_arguments)]
fn matmul_into<F: RealField + Copy>(
    (m, k, n): (usize, usize, usize),
    alpha: F,
    a: &[F],
    a_strides: (usize, usize),
    b: &[F],
    b_strides: (usize, usize),
    add: bool,
    c: &mut [F],
    ldc: usize,
) {
    // The transpose of a column-major view: faer 0.24.4's `from_row_major_slice_with_stride_mut`
    // gives a column-major view (row stride 1), not the row-major one it names.
    let c = faer::MatMut::from_column_major_slice_with_stride_mut(c, n, m, ldc).transpose_mut();
    let accum = if add {
        faer::Accum::Add
    } else {
        faer::Accum::Replace
    };
    faer::linalg::matmul::matmul(
        c,
        accum,
        strided(a, m, k, a_strides),
        strided(b, k, n, b_strides),
        alpha,
        par(m.max(k).max(n)),
    );
}

fn view<F: RealField>(a: &[F], rows: usize, cols: usize) -> MatRef<'_, F> {
    MatRef::from_row_major_slice(a, rows, cols)
}

/// A faer matrix back to a row-major vector.
fn row_major<F: RealField + Copy>(m: MatRef<'_, F>) -> Vec<F> {
    let (rows, cols) = (m.nrows(), m.ncols());
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        for j in 0..cols {
            out.push(m[(i, j)]);
        }
    }
    out
}

/// The lower Cholesky factor of the row-major `out` (`n x n`), in place; `Err(pivot)` where
/// the matrix is not positive definite.
fn cholesky_in_place<F: RealField + Copy>(out: &mut [F], n: usize) -> Result<(), usize> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor;
    // Factored in place in a row-major copy (the transpose of a column-major view): faer reads
    // and writes only the lower triangle of any layout, and the copies into its column-major
    // layout and back were 6% of the Gaussian-process benchmark at n = 500.
    let l = faer::MatMut::from_column_major_slice_mut(out, n, n).transpose_mut();
    let par = par(n);
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<F>(
        n,
        par,
        Default::default(),
    ));
    factor::cholesky_in_place(
        l,
        Default::default(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map_err(|e| match e {
        faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => index,
    })?;
    for i in 0..n {
        out[i * n + i + 1..(i + 1) * n].fill(F::zero_impl());
    }
    Ok(())
}

fn cholesky_inverse<F: RealField + Copy>(l: &[F], n: usize) -> Vec<F> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::inverse;
    let l = view(l, n, n).to_owned();
    let mut inv = Mat::<F>::zeros(n, n);
    let par = par(n);
    let mut mem = MemBuffer::new(inverse::inverse_scratch::<F>(n, par));
    inverse::inverse(inv.as_mut(), l.as_ref(), par, MemStack::new(&mut mem));
    // faer writes the lower triangle.
    let mut out = row_major(inv.as_ref());
    for i in 0..n {
        for j in i + 1..n {
            out[i * n + j] = out[j * n + i];
        }
    }
    out
}

/// Whether [`equilibrate`] would leave the triangle (`lower`, else upper, with the diagonal)
/// of the row-major `n x n` matrix `a` as it is: every row's and column's largest magnitude in
/// range. Read in place, row by row.
fn triangle_in_range<F: RealField + Copy>(a: &[F], n: usize, lower: bool) -> bool {
    let columns = |i: usize| if lower { 0..i + 1 } else { i..n };
    // Every entry zero or of a magnitude in [sqrt(MIN_POSITIVE), sqrt(MAX)]: then so is every
    // row's and column's largest. One branch-free pass, where the exact check below keeps two
    // running maxima (it was 8% of the Gaussian-process benchmark, four solves at n = 500).
    let (tiny, huge) = (
        F::sqrt_impl(&F::min_positive_impl()),
        F::sqrt_impl(&F::max_positive_impl()),
    );
    let ordinary = (0..n).all(|i| {
        a[i * n..(i + 1) * n][columns(i)]
            .iter()
            .fold(true, |ok, x| {
                let m = F::abs_impl(x);
                ok & ((m == F::zero_impl()) | ((m >= tiny) & (m <= huge)))
            })
    });
    if ordinary {
        return true;
    }
    let one = F::one_impl();
    let mut col_max = vec![F::zero_impl(); n];
    for i in 0..n {
        let mut row_max = F::zero_impl();
        for j in columns(i) {
            let x = F::abs_impl(&a[i * n + j]);
            if x > row_max {
                row_max = x;
            }
            if x > col_max[j] {
                col_max[j] = x;
            }
        }
        if scale_to_one(row_max) != one {
            return false;
        }
    }
    col_max.into_iter().all(|m| scale_to_one(m) == one)
}

fn triangular_solve<F: RealField + Copy>(
    a: &[F],
    n: usize,
    b: &[F],
    nrhs: usize,
    shape: Triangle,
) -> Vec<F> {
    let mut x = Mat::<F>::zeros(n, nrhs);
    x.copy_from(view(b, n, nrhs));
    let solve = |t: MatRef<'_, F>, x: faer::MatMut<'_, F>| {
        // op(t) is lower triangular when t is lower and not transposed, or upper and
        // transposed.
        let (m, lower) = if shape.transpose {
            (t.transpose(), !shape.lower)
        } else {
            (t, shape.lower)
        };
        let par = par(n);
        match (lower, shape.unit_diagonal) {
            (true, false) => tri::solve_lower_triangular_in_place(m, x, par),
            (true, true) => tri::solve_unit_lower_triangular_in_place(m, x, par),
            (false, false) => tri::solve_upper_triangular_in_place(m, x, par),
            (false, true) => tri::solve_unit_upper_triangular_in_place(m, x, par),
        }
    };
    // A unit diagonal has no reciprocal to overflow (and would not stay unit if scaled), and a
    // triangle in range needs no scaling: faer reads the triangle in place, no copy.
    if shape.unit_diagonal || triangle_in_range(a, n, shape.lower) {
        solve(view(a, n, n), x.as_mut());
        return row_major(x.as_ref());
    }
    // The triangle read, alone (the other may hold anything), as `t`.
    let mut t = Mat::<F>::zeros(n, n);
    if shape.lower {
        t.copy_from_triangular_lower(view(a, n, n));
    } else {
        t.copy_from_triangular_upper(view(a, n, n));
    }
    // With `S = R t C` (both diagonal, so `S` is triangular like `t`): `t x = b` is
    // `S y = R b`, `x = C y`, and `t^T x = b` is `S^T y = C b`, `x = R y`.
    let (rows, cols) = equilibrate(&mut t);
    let (before, after) = if shape.transpose {
        (&cols, &rows)
    } else {
        (&rows, &cols)
    };
    scale_rows(&mut x, before);
    solve(t.as_ref(), x.as_mut());
    scale_rows(&mut x, after);
    row_major(x.as_ref())
}

fn lu_solve<F: RealField + Copy>(
    a: &[F],
    n: usize,
    b: &[F],
    nrhs: usize,
    transpose: bool,
) -> Result<Vec<F>, usize> {
    let lu = Lu::new(a, n);
    match lu.zero_pivot() {
        Some(pivot) => Err(pivot),
        None => Ok(lu.solve(b, nrhs, transpose)),
    }
}

fn lu_diagonal<F: RealField + Copy>(a: &[F], n: usize) -> (Vec<F>, bool) {
    let Lu {
        lu,
        perm,
        rows,
        cols,
        ..
    } = Lu::new(a, n);
    // A permutation's parity: n minus its number of cycles.
    let mut seen = vec![false; n];
    let mut cycles = 0;
    for start in 0..n {
        if seen[start] {
            continue;
        }
        cycles += 1;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = perm[i];
        }
    }
    // det a = det(R a C) / (det R det C): pivot i divided by the scales of its row and column.
    let mut diagonal: Vec<F> = (0..n)
        .map(|i| lu[(i, i)] / rows[perm[i]] / cols[i])
        .collect();
    // Past an exactly-zero pivot faer's elimination scales the column below it (zeros, the
    // pivot being the largest) by `1 / 0`: 0 * inf = NaN, and every later pivot is NaN. The
    // matrix is singular, so the determinant is 0: the pivots from there on are reported as
    // zeros (unless the matrix itself holds a NaN or an infinity, whose NaN is honest).
    if let Some(k) = diagonal.iter().position(|&d| d == F::zero_impl()) {
        if a.iter().all(F::is_finite_impl) {
            diagonal[k..].fill(F::zero_impl());
        }
    }
    (diagonal, (n - cycles) % 2 == 1)
}

fn eigh<F: RealField + Copy>(a: &[F], n: usize) -> Result<(Vec<F>, Vec<F>), String> {
    // faer's decomposition subtracts 1 from n (a panic for n = 0).
    if n == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    // On a NaN or an infinity faer's iteration runs to its limit before it reports no
    // convergence: over 300 s at n = 100 (debug build). NaN at once instead, as for small n.
    if (0..n).any(|i| !a[i * n..=i * n + i].iter().all(F::is_finite_impl)) {
        return Ok((vec![F::nan_impl(); n], vec![F::nan_impl(); n * n]));
    }
    let (scaled, back) = normalised(a, (0..n).flat_map(|i| (0..=i).map(move |j| i * n + j)));
    let evd = view(&scaled, n, n)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| format!("{e:?}"))?;
    let values = (0..n).map(|i| back.apply(evd.S()[i])).collect();
    Ok((values, row_major(evd.U())))
}

fn qr<F: RealField + Copy>(a: &[F], m: usize, n: usize) -> (Vec<F>, Vec<F>) {
    let (scaled, back) = normalised(a, 0..a.len());
    let qr = view(&scaled, m, n).qr();
    let r = row_major(qr.thin_R()).into_iter().map(|v| back.apply(v));
    (row_major(qr.compute_thin_Q().as_ref()), r.collect())
}

/// A scaling by `2^k` as two factors `2^(k/2)` and `2^(k - k/2)`, each representable.
#[derive(Clone, Copy)]
struct PowerOfTwo<F>(F, F);

impl<F: RealField + Copy> PowerOfTwo<F> {
    fn new(k: i32) -> Self {
        let factor = |k: i32| F::from_f64_impl(2f64.powi(k));
        PowerOfTwo(factor(k / 2), factor(k - k / 2))
    }

    fn apply(&self, v: F) -> F {
        v * self.0 * self.1
    }
}

/// `a` scaled by a power of two (exactly) so that its largest magnitude among the entries
/// `read` is in `[1, 2)`, and the scaling back, when that magnitude is outside
/// `[MIN_POSITIVE^(1/4), MAX^(1/4)]` (else `a` as it is). faer's eigendecomposition and QR
/// square entries on the way: `diag(1e308, -1e308)` had eigenvalues `(-inf, inf)` and the QR
/// of `[[t, t], [t, -t]]` (`t = 1e-310`) had `R = 0`.
fn normalised<F: RealField + Copy>(
    a: &[F],
    read: impl Iterator<Item = usize>,
) -> (Vec<F>, PowerOfTwo<F>) {
    let max = read
        .map(|i| F::abs_impl(&a[i]))
        .fold(F::zero_impl(), |big, x| if x > big { x } else { big });
    let (one, two) = (F::one_impl(), F::one_impl() + F::one_impl());
    let (low, high) = (
        F::sqrt_impl(&F::sqrt_impl(&F::min_positive_impl())),
        F::sqrt_impl(&F::sqrt_impl(&F::max_positive_impl())),
    );
    if !(F::is_finite_impl(&max) && max > F::zero_impl()) || (max >= low && max <= high) {
        return (a.to_vec(), PowerOfTwo::new(0));
    }
    // max 2^k in [1, 2): halving and doubling are exact here (max >= 2, or below 1).
    let (mut v, mut k) = (max, 0i32);
    while v >= two {
        v /= two;
        k -= 1;
    }
    while v < one {
        v *= two;
        k += 1;
    }
    let to = PowerOfTwo::new(k);
    (
        a.iter().map(|&x| to.apply(x)).collect(),
        PowerOfTwo::new(-k),
    )
}

macro_rules! impl_dense {
    ($t:ty) => {
        impl Dense for $t {
            fn cholesky(a: &[Self], n: usize) -> Result<Vec<Self>, usize> {
                // The copy factored in place, in a buffer from the tensors' pool.
                let mut out = crate::tensor::buffers::collect(a.len(), a.iter().copied());
                cholesky_in_place(&mut out, n)?;
                Ok(out)
            }
            fn cholesky_inverse(l: &[Self], n: usize) -> Vec<Self> {
                cholesky_inverse(l, n)
            }
            fn matmul_into(
                mkn: (usize, usize, usize),
                alpha: Self,
                a: &[Self],
                a_strides: (usize, usize),
                b: &[Self],
                b_strides: (usize, usize),
                add: bool,
                c: &mut [Self],
                ldc: usize,
            ) {
                matmul_into(mkn, alpha, a, a_strides, b, b_strides, add, c, ldc)
            }
            fn triangular_solve(
                a: &[Self],
                n: usize,
                b: &[Self],
                nrhs: usize,
                shape: Triangle,
            ) -> Vec<Self> {
                triangular_solve(a, n, b, nrhs, shape)
            }
            fn lu_solve(
                a: &[Self],
                n: usize,
                b: &[Self],
                nrhs: usize,
                transpose: bool,
            ) -> Result<Vec<Self>, usize> {
                lu_solve(a, n, b, nrhs, transpose)
            }
            fn lu_diagonal(a: &[Self], n: usize) -> (Vec<Self>, bool) {
                lu_diagonal(a, n)
            }
            fn eigh(a: &[Self], n: usize) -> Result<(Vec<Self>, Vec<Self>), String> {
                eigh(a, n)
            }
            fn qr(a: &[Self], m: usize, n: usize) -> (Vec<Self>, Vec<Self>) {
                qr(a, m, n)
            }
        }
    };
}

impl_dense!(f32);
impl_dense!(f64);

#[cfg(test)]
mod tests {
    use super::*;

    /// `a b` for row-major matrices, by loops.
    fn product(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        (0..m * n)
            .map(|ij| (0..k).map(|p| a[ij / n * k + p] * b[p * n + ij % n]).sum())
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    const SPD: [f64; 9] = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];

    #[test]
    fn cholesky_reproduces_the_matrix_and_names_the_pivot() {
        let l = f64::cholesky(&SPD, 3).unwrap();
        assert_eq!((l[1], l[2], l[5]), (0.0, 0.0, 0.0));
        let lt: Vec<f64> = (0..9).map(|ij| l[ij % 3 * 3 + ij / 3]).collect();
        assert!(close(&product(&l, &lt, 3, 3, 3), &SPD));
        // The leading 2x2 minor of [[1, 2], [2, 1]] is -3: pivot 1 fails.
        assert_eq!(f64::cholesky(&[1.0, 2.0, 2.0, 1.0], 2), Err(1));
    }

    /// The product against loops, for each layout of `a` and `b`, into a window of a wider
    /// `c` (rows `ldc` apart) that is replaced or added to; entries outside the window kept.
    #[test]
    fn matmul_into_matches_loops_for_every_layout() {
        let (m, k, n, ldc) = (5, 3, 4, 6);
        let value = |i: usize| (i as f64 * 0.37).sin();
        let a_rows: Vec<f64> = (0..m * k).map(value).collect();
        let b_rows: Vec<f64> = (0..k * n).map(|i| value(i + 50)).collect();
        let expected = product(&a_rows, &b_rows, m, k, n);
        let a_cols: Vec<f64> = (0..m * k).map(|ij| a_rows[ij % m * k + ij / m]).collect();
        let b_cols: Vec<f64> = (0..k * n).map(|ij| b_rows[ij % k * n + ij / k]).collect();
        for (a, a_strides) in [(&a_rows, (k, 1)), (&a_cols, (1, m))] {
            for (b, b_strides) in [(&b_rows, (n, 1)), (&b_cols, (1, k))] {
                for add in [false, true] {
                    let mut c = vec![1.0; m * ldc];
                    f64::matmul_into(
                        (m, k, n),
                        -2.0,
                        a,
                        a_strides,
                        b,
                        b_strides,
                        add,
                        &mut c,
                        ldc,
                    );
                    for i in 0..m {
                        for j in 0..ldc {
                            let want = if j >= n {
                                1.0
                            } else {
                                f64::from(u8::from(add)) - 2.0 * expected[i * n + j]
                            };
                            let got = c[i * ldc + j];
                            assert!(
                                (got - want).abs() < 1e-14,
                                "{a_strides:?} {b_strides:?} {add}: ({i}, {j}) {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Factored in place in row-major order, past faer's blocking: NaN above the diagonal is
    /// not read, and `L Lᵀ` gives the matrix back.
    #[test]
    fn cholesky_of_a_large_matrix_reads_only_the_lower_triangle() {
        let n = 150;
        let b: Vec<f64> = (0..n * n).map(|i| (i as f64 * 0.61).sin()).collect();
        let mut a = product(
            &b,
            &(0..n * n)
                .map(|ij| b[ij % n * n + ij / n])
                .collect::<Vec<_>>(),
            n,
            n,
            n,
        );
        for i in 0..n {
            a[i * n + i] += n as f64;
        }
        let l = f64::cholesky(&a, n).unwrap();
        let lt: Vec<f64> = (0..n * n).map(|ij| l[ij % n * n + ij / n]).collect();
        let back = product(&l, &lt, n, n, n);
        assert!(back.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-9));
        let mut noisy = a.clone();
        for i in 0..n {
            noisy[i * n + i + 1..(i + 1) * n].fill(f64::NAN);
        }
        assert_eq!(f64::cholesky(&noisy, n).unwrap(), l);
    }

    #[test]
    fn the_inverse_from_the_cholesky_factor_is_the_inverse() {
        let inv = f64::cholesky_inverse(&f64::cholesky(&SPD, 3).unwrap(), 3);
        let eye = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        assert!(close(&product(&SPD, &inv, 3, 3, 3), &eye));
        assert_eq!((inv[1], inv[2], inv[5]), (inv[3], inv[6], inv[7]));
    }

    #[test]
    fn solves_satisfy_their_equations() {
        let b = [1.0, -2.0, 0.5, 3.0, 0.0, 1.0];
        let x = f64::lu_solve(&SPD, 3, &b, 2, false).unwrap();
        assert!(close(&product(&SPD, &x, 3, 3, 2), &b));
        let a = [1.0, 2.0, 0.0, 3.0, 1.0, 4.0, 0.0, 1.0, 1.0];
        let at: Vec<f64> = (0..9).map(|ij| a[ij % 3 * 3 + ij / 3]).collect();
        let x = f64::lu_solve(&a, 3, &b, 2, true).unwrap();
        assert!(close(&product(&at, &x, 3, 3, 2), &b));
        assert_eq!(
            f64::lu_solve(&[1.0, 2.0, 2.0, 4.0], 2, &[1.0, 1.0], 1, false),
            Err(1)
        );
        for (lower, transpose, unit_diagonal) in [
            (true, false, false),
            (false, true, false),
            (true, true, true),
        ] {
            let shape = Triangle {
                lower,
                transpose,
                unit_diagonal,
            };
            let t: Vec<f64> = (0..9)
                .map(|ij| {
                    let (i, j) = (ij / 3, ij % 3);
                    let inside = if lower { j <= i } else { j >= i };
                    match (inside, i == j && unit_diagonal) {
                        (_, true) => 1.0,
                        (true, false) => a[ij] + 1.0,
                        (false, false) => 0.0,
                    }
                })
                .collect();
            let op: Vec<f64> = if transpose {
                (0..9).map(|ij| t[ij % 3 * 3 + ij / 3]).collect()
            } else {
                t.clone()
            };
            // Entries outside the triangle (and a unit diagonal) must not be read.
            let noisy: Vec<f64> = a.iter().map(|v| v + 1.0).collect();
            let x = f64::triangular_solve(&noisy, 3, &b, 2, shape);
            assert!(close(&product(&op, &x, 3, 3, 2), &b), "{shape:?}");
        }
    }

    /// A singular matrix whose elimination meets an all-zero column had NaN pivots after it
    /// (faer scales that column by 1 / 0), so det was NaN, not 0.
    #[test]
    fn lu_diagonal_of_a_singular_matrix_gives_determinant_zero() {
        // The zero matrix, a zero first column, and equal first two columns (after the first
        // step of elimination the second column is zero from the diagonal down).
        let cases: [&[f64]; 3] = [
            &[0.0; 4],
            &[0.0, 1.0, 0.0, 2.0],
            &[1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 3.0],
        ];
        for a in cases {
            let n = if a.len() == 4 { 2 } else { 3 };
            let (d, _) = f64::lu_diagonal(a, n);
            assert_eq!(d.iter().product::<f64>(), 0.0, "{a:?}: {d:?}");
            assert!(d.iter().all(|v| !v.is_nan()), "{a:?}: {d:?}");
            let (d, _) = f32::lu_diagonal(&a.iter().map(|&v| v as f32).collect::<Vec<_>>(), n);
            assert_eq!(d.iter().product::<f32>(), 0.0, "f32 {a:?}: {d:?}");
        }
        // A NaN in the matrix stays NaN.
        let (d, _) = f64::lu_diagonal(&[0.0, f64::NAN, 0.0, 1.0], 2);
        assert!(d.iter().product::<f64>().is_nan(), "{d:?}");
    }

    /// A subnormal pivot made faer's LU NaN (it multiplies by the pivot's reciprocal, which
    /// overflows): det diag(1e-310, 1) was NaN and `1e-310 I` was singular. The determinants
    /// here are exact products of powers of two and small integers.
    #[test]
    fn lu_and_triangular_solves_at_the_ends_of_the_range_are_right() {
        let tiny = f64::from_bits(1 << 40); // 2^-1034, subnormal
        let cases: [(&[f64], f64); 4] = [
            (&[tiny, 0.0, 0.0, 1.0], tiny),
            (&[tiny, 0.0, 0.0, tiny], 0.0), // tiny^2 underflows
            (&[tiny, 1.0, 0.0, 1.0], tiny),
            (&[0.0, tiny, 2.0, 3.0], -2.0 * tiny),
        ];
        for (a, det) in cases {
            let (d, odd) = f64::lu_diagonal(a, 2);
            let got = d.iter().product::<f64>() * if odd { -1.0 } else { 1.0 };
            assert_eq!(got, det, "{a:?}: {d:?}");
        }
        // tiny I x = tiny (1, 2): x = (1, 2) exactly, and so for the transpose.
        for transpose in [false, true] {
            let x = f64::lu_solve(
                &[tiny, 0.0, 0.0, tiny],
                2,
                &[tiny, 2.0 * tiny],
                1,
                transpose,
            );
            assert_eq!(x, Ok(vec![1.0, 2.0]), "transpose {transpose}");
        }
        // [[tiny, 1], [0, 1]] x = (tiny, 0): x = (1, 0); its transpose [[tiny, 0], [1, 1]]
        // with (tiny, 2) gives (1, 1).
        let a = [tiny, 1.0, 0.0, 1.0];
        assert_eq!(
            f64::lu_solve(&a, 2, &[tiny, 0.0], 1, false),
            Ok(vec![1.0, 0.0])
        );
        assert_eq!(
            f64::lu_solve(&a, 2, &[tiny, 2.0], 1, true),
            Ok(vec![1.0, 1.0])
        );
        // Triangular solves divided by way of the diagonal's reciprocal, too: [[t, 0], [1, 1]]
        // x = (t, 1) gave (inf, -inf), not (1, 0). Each option, with the other triangle
        // holding NaN (never read).
        let nan = f64::NAN;
        let cases = [
            (true, false, [tiny, nan, 1.0, 1.0], [tiny, 1.0], [1.0, 0.0]),
            (false, false, [1.0, 1.0, nan, tiny], [1.0, tiny], [0.0, 1.0]),
            (true, true, [tiny, nan, 1.0, 1.0], [tiny, 0.0], [1.0, 0.0]),
            (false, true, [1.0, 1.0, nan, tiny], [1.0, 1.0], [1.0, 0.0]),
        ];
        for (lower, transpose, a, b, x) in cases {
            let shape = Triangle {
                lower,
                transpose,
                unit_diagonal: false,
            };
            assert_eq!(
                f64::triangular_solve(&a, 2, &b, 1, shape),
                x.to_vec(),
                "{shape:?}"
            );
        }
        // Rows near MAX overflowed the elimination: U_11 = 1e308 + 1e308 = inf, and the solve
        // of (1e308, 0) was (1, 0), not (0.5, 0.5); the transpose likewise.
        let big = [1e308, 1e308, -1e308, 1e308];
        assert_eq!(
            f64::lu_solve(&big, 2, &[1e308, 0.0], 1, false),
            Ok(vec![0.5, 0.5])
        );
        assert_eq!(
            f64::lu_solve(&big, 2, &[0.0, 1e308], 1, true),
            Ok(vec![0.5, 0.5])
        );
        // [[1, 0], [1e308, 1e308]] x = (1e308, 1e308): x = (1e308, 1 - 1e308), not -inf.
        let lower = Triangle {
            lower: true,
            ..Default::default()
        };
        let x = f64::triangular_solve(&[1.0, 0.0, 1e308, 1e308], 2, &[1e308, 1e308], 1, lower);
        assert_eq!(x, vec![1e308, 1.0 - 1e308]);
        let tiny32 = f32::from_bits(1 << 10); // 2^-139
        let (d, _) = f32::lu_diagonal(&[tiny32, 0.0, 0.0, 1.0], 2);
        assert_eq!(d.iter().product::<f32>(), tiny32, "{d:?}");
    }

    /// faer's eigendecomposition panicked for n = 0 ("attempt to subtract with overflow"), and
    /// on a NaN or an infinity ran to its iteration limit: 392 s for this 100 x 100 matrix in a
    /// debug build, then `Err(NoConvergence)`; a 2 x 2 gave NaN at once.
    #[test]
    fn eigh_of_empty_and_non_finite_matrices_answers_at_once() {
        assert_eq!(f64::eigh(&[], 0), Ok((vec![], vec![])));
        assert_eq!(f32::eigh(&[], 0), Ok((vec![], vec![])));
        let n: usize = 100;
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut a: Vec<f64> = (0..n * n)
                .map(|ij| 1.0 / (1.0 + (ij / n).abs_diff(ij % n) as f64))
                .collect();
            a[7 * n + 5] = bad;
            a[5 * n + 7] = bad;
            let start = std::time::Instant::now();
            let (w, v) = f64::eigh(&a, n).unwrap();
            assert!(
                start.elapsed().as_secs() < 5,
                "{bad}: {:?}",
                start.elapsed()
            );
            assert!(w.iter().chain(&v).all(|x| x.is_nan()), "{bad}");
        }
        // Above the diagonal is not read: a NaN there changes nothing.
        let (w, _) = f64::eigh(&[2.0, f64::NAN, 1.0, 2.0], 2).unwrap();
        assert!(close(&w, &[1.0, 3.0]), "{w:?}");
    }

    /// faer's eigendecomposition and QR overflowed or underflowed where the answer is
    /// representable: `eigh diag(1e308, -1e308)` was `(-inf, inf)`, the eigenvalues of
    /// `[[t, t], [t, -t]]` (`+-sqrt(2) t`) were `+-1e-310` for `t = 1e-310` and `+-inf` for
    /// `t = MAX / 2`, and the QR of the latter two had `R = 0` or infinite.
    #[test]
    fn eigh_and_qr_of_extreme_matrices_are_scaled() {
        let s = std::f64::consts::SQRT_2;
        for t in [1e-310, 1e-300, f64::MAX / 2.0, 1e308] {
            let a = [t, t, t, -t];
            let (w, v) = f64::eigh(&a, 2).unwrap();
            let rel = |x: f64, y: f64| ((x - y) / y).abs();
            assert!(
                rel(w[0], -s * t) < 1e-12 && rel(w[1], s * t) < 1e-12,
                "{t:e}: {w:?}"
            );
            // The eigenvector of sqrt(2) t is (cos 22.5°, sin 22.5°) up to sign.
            let c = (std::f64::consts::PI / 8.0).cos();
            assert!((v[1].abs() - c).abs() < 1e-12, "{t:e}: {v:?}");
            let (q, r) = f64::qr(&a, 2, 2);
            // R = [[-+sqrt(2) t, 0], [0, +-sqrt(2) t]]: |R_00| = |R_11| = sqrt(2) t.
            assert!(
                rel(r[0].abs(), s * t) < 1e-12 && rel(r[3].abs(), s * t) < 1e-12,
                "{t:e}: {r:?}"
            );
            assert!((q[0].abs() - s / 2.0).abs() < 1e-12, "{t:e}: {q:?}");
        }
        let (w, _) = f64::eigh(&[1e308, 0.0, 0.0, -1e308], 2).unwrap();
        assert_eq!(w, vec![-1e308, 1e308]);
        let (w, _) = f32::eigh(&[3e38, 0.0, 0.0, -3e38], 2).unwrap();
        assert_eq!(w, vec![-3e38, 3e38]);
    }

    #[test]
    fn lu_diagonal_eigh_and_qr_match_closed_forms() {
        // det [[0, 2], [3, 1]] = -6: one row swap, U = [[3, 1], [0, 2]].
        assert_eq!(
            f64::lu_diagonal(&[0.0, 2.0, 3.0, 1.0], 2),
            (vec![3.0, 2.0], true)
        );
        // A 3-cycle of rows is even: det = 2 * 3 * 4.
        let cycled = [0.0, 3.0, 0.0, 0.0, 0.0, 4.0, 2.0, 0.0, 0.0];
        let (d, odd) = f64::lu_diagonal(&cycled, 3);
        assert_eq!((d.iter().product::<f64>().abs(), odd), (24.0, false));
        assert_eq!(f64::lu_diagonal(&[1.0, 2.0, 2.0, 4.0], 2).0[1], 0.0);
        let (w, v) = f64::eigh(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
        assert!(close(&w, &[1.0, 3.0]));
        let s = std::f64::consts::FRAC_1_SQRT_2;
        assert!(close(
            &[v[0].abs(), v[1].abs(), v[2].abs(), v[3].abs()],
            &[s, s, s, s]
        ));
        assert!((v[0] * v[1] + v[2] * v[3]).abs() < 1e-15);
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let (q, r) = f64::qr(&a, 3, 2);
        assert_eq!(r[2], 0.0);
        assert!(close(&product(&q, &r, 3, 2, 2), &a));
    }
}
