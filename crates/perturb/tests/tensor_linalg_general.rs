//! General matrices: `solve`, `inv`, `det`, `slogdet`, `eigh`, `qr`.
//!
//! One table row per operation and layout (a vector or a matrix of right-hand sides, a batch
//! with broadcasting): the forward column (`forward_support`) checks each row's JVP against
//! central differences in random directions and against its VJP, the batched column, and
//! order two in three nestings. Then f32 against f64, the exact identities the issue names
//! (d log|det A| / dA = A^-T, solve's derivatives against the formula, inv(A) A = I, eigh of a
//! diagonal matrix, Q^T Q = I and Q R = A), the behaviour at singular matrices and repeated
//! eigenvalues, and the errors.

mod forward_support;

use forward_support::{assert_close, check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::{jvp, linalg, vjp, Array, DualTensor, Element, Tensor, TensorTape};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

impl SplitMix {
    /// A stack of well-conditioned matrices `[.., n, n]`: uniform entries in [-1, 1] plus 3 on
    /// the diagonal (diagonally dominant for n <= 3, so never near singular), each member's
    /// diagonal sign flipped at random so that determinants of both signs occur.
    fn well_conditioned(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let mut data = self.tensor(shape, -1.0, 1.0).to_vec();
        for m in 0..data.len() / (n * n) {
            let sign = if self.uniform(0.0, 1.0) < 0.5 {
                -1.0
            } else {
                1.0
            };
            for i in 0..n {
                data[m * n * n + i * n + i] += 3.0 * sign;
            }
        }
        Tensor::from_vec(data, shape).unwrap()
    }

    /// A stack of symmetric matrices `[.., n, n]` with eigenvalues at least about 1 apart:
    /// `diag(0, 1.5, 3, ..)` plus a symmetric perturbation of entries in [-0.2, 0.2] (its
    /// norm is below 0.2 n, so by Weyl's inequality the gaps stay above 1.5 - 0.4 n).
    fn symmetric(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let mut data = self.tensor(shape, -0.2, 0.2).to_vec();
        for m in 0..data.len() / (n * n) {
            let b = &mut data[m * n * n..(m + 1) * n * n];
            for i in 0..n {
                for j in 0..i {
                    b[j * n + i] = b[i * n + j];
                }
                b[i * n + i] += 1.5 * i as f64;
            }
        }
        Tensor::from_vec(data, shape).unwrap()
    }

    /// A stack of symmetric positive definite matrices: [`Self::symmetric`] plus 2 on the
    /// diagonal (for n <= 3 the eigenvalues stay above 2 - 0.2 n > 1). `solve`, `inv`, `det`
    /// and `slogdet` take their Cholesky path on these.
    fn positive_definite(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let mut data = self.symmetric(shape).to_vec();
        for (k, v) in data.iter_mut().enumerate() {
            if k % (n * n) % (n + 1) == 0 {
                *v += 2.0;
            }
        }
        Tensor::from_vec(data, shape).unwrap()
    }
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn eye(n: usize) -> Tensor<f64> {
    let mut data = vec![0.0; n * n];
    for i in 0..n {
        data[i * n + i] = 1.0;
    }
    t(&data, &[n, n])
}

// ---- The table -------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Case {
    Solve,
    Inv,
    Det,
    LogAbsDet,
    /// The eigenvalues and the squares of the eigenvectors' entries (independent of their
    /// signs), as one `[.., n + 1, n]` array.
    EighSquares,
    /// `V diag(sin w) V^T`: a matrix function, independent of the eigenvectors' signs.
    EighFunction,
    /// `Q` and `R` stacked along the rows.
    Qr,
}

impl Case {
    fn apply<A: Array>(&self, xs: &[&A]) -> Result<A, Error> {
        let a = xs[0];
        match self {
            Case::Solve => linalg::try_solve(a, xs[1]),
            Case::Inv => linalg::try_inv(a),
            Case::Det => linalg::try_det(a),
            Case::LogAbsDet => Ok(linalg::try_slogdet(a)?.1),
            Case::EighSquares => {
                let (w, v) = linalg::try_eigh(a)?;
                let w = w.try_unsqueeze(w.shape().len() - 1)?;
                A::try_concat(&[&w, &v.square()], w.shape().len() - 2)
            }
            Case::EighFunction => {
                let (w, v) = linalg::try_eigh(a)?;
                let w = w.try_unsqueeze(w.shape().len() - 1)?;
                v.try_mul(&w.sin())?.try_matmul(&v.transpose())
            }
            Case::Qr => {
                let (q, r) = linalg::try_qr(a)?;
                A::try_concat(&[&q, &r], q.shape().len() - 2)
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Domain {
    /// Well-conditioned square matrices, then uniform right-hand sides.
    General,
    /// Symmetric matrices with well separated eigenvalues.
    Symmetric,
    /// Symmetric positive definite matrices (the Cholesky path), then uniform right-hand
    /// sides.
    PositiveDefinite,
    /// The lower triangles of well-conditioned matrices (substitution alone), then uniform
    /// right-hand sides.
    Lower,
    /// Uniform entries in [-1, 1] plus 2 along the diagonal of the top square: full column
    /// rank, R's diagonal well away from 0.
    Tall,
}

struct Row {
    name: &'static str,
    case: Case,
    shapes: &'static [&'static [usize]],
    domain: Domain,
    /// Tolerance of the finite-difference checks, relative to `1 + |exact|`.
    tol: f64,
}

const G: Domain = Domain::General;
const PD: Domain = Domain::PositiveDefinite;

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "solve", case: Case::Solve, shapes: &[&[3, 3], &[3]], domain: G, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[3, 3], &[3, 2]], domain: G, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[2, 3, 3], &[2, 3]], domain: G, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[2, 1, 3, 3], &[1, 3, 3, 2]], domain: G, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[3, 3], &[2, 3, 1]], domain: G, tol: 1e-7 },
    // One vector solved with each matrix of a stack (was a shape error; triangular_solve's rule).
    Row { name: "solve", case: Case::Solve, shapes: &[&[2, 3, 3], &[3]], domain: G, tol: 1e-7 },
    Row { name: "inv", case: Case::Inv, shapes: &[&[3, 3]], domain: G, tol: 1e-7 },
    Row { name: "inv", case: Case::Inv, shapes: &[&[2, 3, 3]], domain: G, tol: 1e-7 },
    Row { name: "det", case: Case::Det, shapes: &[&[3, 3]], domain: G, tol: 1e-7 },
    Row { name: "det", case: Case::Det, shapes: &[&[2, 2, 2]], domain: G, tol: 1e-7 },
    Row { name: "slogdet", case: Case::LogAbsDet, shapes: &[&[3, 3]], domain: G, tol: 1e-7 },
    Row { name: "slogdet", case: Case::LogAbsDet, shapes: &[&[3, 2, 2]], domain: G, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[2, 3, 3], &[2, 3, 2]], domain: PD, tol: 1e-7 },
    Row { name: "inv", case: Case::Inv, shapes: &[&[3, 3]], domain: PD, tol: 1e-7 },
    Row { name: "det", case: Case::Det, shapes: &[&[2, 3, 3]], domain: PD, tol: 1e-7 },
    Row { name: "slogdet", case: Case::LogAbsDet, shapes: &[&[3, 3]], domain: PD, tol: 1e-7 },
    Row { name: "solve", case: Case::Solve, shapes: &[&[3, 3], &[3, 2]], domain: Domain::Lower, tol: 1e-7 },
    Row { name: "slogdet", case: Case::LogAbsDet, shapes: &[&[2, 3, 3]], domain: Domain::Lower, tol: 1e-7 },
    Row { name: "eigh", case: Case::EighSquares, shapes: &[&[3, 3]], domain: Domain::Symmetric, tol: 1e-7 },
    Row { name: "eigh", case: Case::EighSquares, shapes: &[&[2, 3, 3]], domain: Domain::Symmetric, tol: 1e-7 },
    Row { name: "eigh", case: Case::EighFunction, shapes: &[&[2, 3, 3]], domain: Domain::Symmetric, tol: 1e-7 },
    Row { name: "qr", case: Case::Qr, shapes: &[&[4, 3]], domain: Domain::Tall, tol: 1e-7 },
    Row { name: "qr", case: Case::Qr, shapes: &[&[2, 3, 3]], domain: Domain::Tall, tol: 1e-7 },
];

impl Row {
    fn inputs(&self, rng: &mut SplitMix) -> Vec<Tensor<f64>> {
        self.shapes
            .iter()
            .enumerate()
            .map(|(i, s)| match (self.domain, i) {
                (Domain::General, 0) => rng.well_conditioned(s),
                (Domain::Symmetric, _) => rng.symmetric(s),
                (Domain::PositiveDefinite, 0) => rng.positive_definite(s),
                (Domain::Lower, 0) => {
                    let n = s[s.len() - 1];
                    let mut data = rng.well_conditioned(s).to_vec();
                    for (k, v) in data.iter_mut().enumerate() {
                        if k % n > k / n % n {
                            *v = 0.0;
                        }
                    }
                    Tensor::from_vec(data, s).unwrap()
                }
                (Domain::Tall, _) => {
                    let (m, n) = (s[s.len() - 2], s[s.len() - 1]);
                    let mut data = rng.tensor(s, -1.0, 1.0).to_vec();
                    for k in 0..data.len() / (m * n) {
                        for i in 0..n {
                            data[k * m * n + i * n + i] += 2.0;
                        }
                    }
                    Tensor::from_vec(data, s).unwrap()
                }
                _ => rng.tensor(s, -1.0, 1.0),
            })
            .collect()
    }

    fn value(&self, xs: &[Tensor<f64>]) -> Tensor<f64> {
        let refs: Vec<&Tensor<f64>> = xs.iter().collect();
        self.case.apply(&refs).unwrap()
    }

    /// The value and VJP of the row's function at `xs` with cotangent `u`, through a tape.
    fn vjp<T: Element>(&self, xs: &[Tensor<T>], u: &Tensor<T>) -> (Tensor<T>, Vec<Tensor<T>>) {
        let tape = TensorTape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
        let refs: Vec<_> = vars.iter().collect();
        let y = self.case.apply(&refs).unwrap();
        let cts = tape.vjp(&y, u, &refs).unwrap();
        (y.value().clone(), cts)
    }
}

struct RowFn(Case);

impl Function for RowFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        self.0.apply(xs)
    }
}

#[test]
fn the_table_has_a_row_for_every_operation() {
    let ops = ["solve", "inv", "det", "slogdet", "eigh", "qr"];
    for op in ops {
        assert!(ROWS.iter().any(|r| r.name == op), "no row for {op}");
    }
    assert!(ROWS.iter().all(|r| ops.contains(&r.name)));
}

#[test]
fn first_order_matches_central_differences_and_the_vjp() {
    let mut rng = SplitMix(0x11a1_0001);
    for row in ROWS {
        for trial in 0..2 {
            let xs = row.inputs(&mut rng);
            let y = row.value(&xs);
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let vs: Vec<_> = xs
                .iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect();
            let what = format!("{} {:?} {:?} trial {trial}", row.name, row.shapes, row.case);
            let active = vec![true; xs.len()];
            check_first_order(&what, &RowFn(row.case), &xs, &active, &vs, &u, row.tol);
        }
    }
}

#[test]
fn second_order_in_three_nestings() {
    let mut rng = SplitMix(0x11a1_0002);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let mut dirs = || -> Vec<_> {
            xs.iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect()
        };
        let (vs, zs) = (dirs(), dirs());
        let what = format!("{} {:?} {:?}", row.name, row.shapes, row.case);
        let active = vec![true; xs.len()];
        check_second_order(&what, &RowFn(row.case), &xs, &active, &vs, &zs, &u, 1e-6);
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = SplitMix(0x11a1_0003);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let (y64, ct64) = row.vjp(&xs, &u);
        let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
        let (y32, ct32) = row.vjp(&xs32, &u.cast());
        // f32 carries about 7 digits; these are well-conditioned problems of order 3
        // (condition numbers below 10), so 1e-4 leaves room for rounding but not for a
        // wrong rule or a mixed-up member.
        let what = format!("{} {:?}", row.name, row.shapes);
        assert!(y32.all_close(&y64.cast(), 1e-4), "{what}: value");
        for (a, b) in ct32.iter().zip(&ct64) {
            assert!(a.all_close(&b.cast(), 1e-4), "{what}: vjp");
        }
    }
}

// ---- Exact identities ------------------------------------------------------------------------

#[test]
fn the_gradient_of_log_abs_det_is_the_inverse_transpose() {
    let mut rng = SplitMix(0x11a1_0004);
    let a = rng.well_conditioned(&[2, 4, 4]);
    let g = perturb::tensor::grad(|a| Ok(linalg::try_slogdet(a)?.1.sum_all()), &a).unwrap();
    // A^-T A^T = I, member by member: checks g = A^-T with no inverse computed here.
    let product = g.matmul(&a.transpose());
    assert_close(
        "A^-T A^T",
        &product,
        &Tensor::stack(&[&eye(4), &eye(4)], 0),
        1e-13,
    );
    // det's gradient is det A^-T (cofactors): det(A) g.
    let gd = perturb::tensor::grad(|a| Ok(linalg::try_det(a)?.sum_all()), &a).unwrap();
    let d = linalg::det(&a);
    let want = g.mul(&d.unsqueeze(1).unsqueeze(2));
    assert_close("d det / dA", &gd, &want, 1e-13);
}

#[test]
fn solve_derivatives_match_the_formula() {
    let mut rng = SplitMix(0x11a1_0005);
    let a = rng.well_conditioned(&[3, 3]);
    let b = rng.tensor(&[3, 2], -1.0, 1.0);
    let (da, db) = (
        rng.tensor(&[3, 3], -1.0, 1.0),
        rng.tensor(&[3, 2], -1.0, 1.0),
    );
    let x = linalg::solve(&a, &b);
    assert_close("A X = B", &a.matmul(&x), &b, 1e-14);
    let a_inv = linalg::inv(&a);
    // JVP: dX = A^-1 (dB - dA X).
    let dual = linalg::solve(
        &DualTensor::new(a.clone(), da.clone()),
        &DualTensor::new(b.clone(), db.clone()),
    );
    let want = a_inv.matmul(&db.sub(&da.matmul(&x)));
    assert_close("dX", &dual.into_parts().1, &want, 1e-14);
    // VJP: B̄ = A^-T X̄, Ā = -B̄ X^T.
    let ct = rng.tensor(&[3, 2], -1.0, 1.0);
    let tape = TensorTape::new();
    let (av, bv) = (tape.var(a.clone()), tape.var(b.clone()));
    let y = linalg::solve(&av, &bv);
    let g = tape.vjp(&y, &ct, &[&av, &bv]).unwrap();
    let b_bar = a_inv.transpose().matmul(&ct);
    assert_close("B̄", &g[1], &b_bar, 1e-14);
    assert_close("Ā", &g[0], &b_bar.matmul(&x.transpose()).neg(), 1e-14);
}

/// A symmetric positive definite matrix goes to Cholesky; with two rows swapped (`P A`, not
/// symmetric) it goes to LU: `solve(P A, P B) = solve(A, B)`, `inv(P A) P = inv(A)`,
/// `det(P A) = -det(A)`, and the same `ln |det|` with the opposite sign.
#[test]
fn cholesky_and_lu_paths_agree() {
    let mut rng = SplitMix(0x11a1_0010);
    let a = rng.positive_definite(&[2, 4, 4]);
    let b = rng.tensor(&[2, 4, 3], -1.0, 1.0);
    let swap = |m: &Tensor<f64>| m.index_select(1, vec![1, 0, 2, 3]);
    let (pa, pb) = (swap(&a), swap(&b));
    let x = linalg::solve(&a, &b);
    assert_close("A X = B", &a.matmul(&x), &b, 1e-14);
    assert_close("solve", &x, &linalg::solve(&pa, &pb), 1e-14);
    let p = eye(4).index_select(0, vec![1, 0, 2, 3]);
    let inv_pa_p = linalg::inv(&pa).matmul(&p);
    assert_close("inv", &linalg::inv(&a), &inv_pa_p, 1e-14);
    assert_close("det", &linalg::det(&a), &linalg::det(&pa).neg(), 1e-13);
    let ((s, l), (ps, pl)) = (linalg::slogdet(&a), linalg::slogdet(&pa));
    assert_eq!(
        (s.to_vec(), ps.to_vec()),
        (vec![1.0, 1.0], vec![-1.0, -1.0])
    );
    assert_close("logabsdet", &l, &pl, 1e-14);
    // The gradient through the Cholesky path: A^-T, so A^-T A^T = I.
    let g = perturb::tensor::grad(|a| Ok(linalg::try_slogdet(a)?.1.sum_all()), &a).unwrap();
    let i4 = eye(4);
    assert_close(
        "A^-T A^T",
        &g.matmul(&a.transpose()),
        &Tensor::stack(&[&i4, &i4], 0),
        1e-14,
    );
}

/// A symmetric matrix with a positive diagonal that is not positive definite: Cholesky fails
/// at pivot 1 (1 - 2^2 < 0; the unit test in lu.rs checks that the path is LU) and LU gives
/// the values (det by cofactors: 1 (1 2 - 0.5^2) - 2 (2
/// 2 - 0) = -6.25).
#[test]
fn symmetric_indefinite_matrices_fall_back_to_lu() {
    let a = t(&[1.0, 2.0, 0.0, 2.0, 1.0, 0.5, 0.0, 0.5, 2.0], &[3, 3]);
    assert!((linalg::det(&a).to_vec()[0] + 6.25).abs() < 1e-14);
    let (sign, logabsdet) = linalg::slogdet(&a);
    assert_eq!(sign.to_vec(), vec![-1.0]);
    assert!((logabsdet.to_vec()[0] - 6.25_f64.ln()).abs() < 1e-14);
    let b = t(&[1.0, -2.0, 0.5], &[3]);
    assert_close("A x = b", &a.matmul(&linalg::solve(&a, &b)), &b, 1e-14);
    assert_close("inv(A) A", &linalg::inv(&a).matmul(&a), &eye(3), 1e-14);
}

#[test]
fn inverse_times_matrix_is_the_identity_and_det_matches_cofactors() {
    let mut rng = SplitMix(0x11a1_0006);
    let a = rng.well_conditioned(&[3, 3, 3]);
    let i3 = eye(3);
    let product = linalg::inv(&a).matmul(&a);
    assert_close(
        "inv(A) A",
        &product,
        &Tensor::stack(&[&i3, &i3, &i3], 0),
        1e-14,
    );
    // det by the rule of Sarrus, member by member, and slogdet's parts against it.
    let d = linalg::det(&a).to_vec();
    let (sign, logabs) = linalg::slogdet(&a);
    for (k, m) in a.to_vec().chunks(9).enumerate() {
        let sarrus = m[0] * m[4] * m[8] + m[1] * m[5] * m[6] + m[2] * m[3] * m[7]
            - m[2] * m[4] * m[6]
            - m[1] * m[3] * m[8]
            - m[0] * m[5] * m[7];
        assert!(
            (d[k] - sarrus).abs() < 1e-13 * sarrus.abs(),
            "det member {k}"
        );
        assert_eq!(sign.to_vec()[k], sarrus.signum(), "sign member {k}");
        assert!((logabs.to_vec()[k] - sarrus.abs().ln()).abs() < 1e-14);
    }
}

#[test]
fn eigh_of_a_diagonal_matrix_is_its_sorted_diagonal() {
    let a = t(&[3.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 2.0], &[3, 3]);
    let (w, v) = linalg::eigh(&a);
    assert_eq!(w.to_vec(), vec![-1.0, 2.0, 3.0]);
    // The eigenvectors are the unit vectors e1, e2, e0 (up to sign).
    let abs: Vec<f64> = v.to_vec().iter().map(|x| x.abs()).collect();
    assert_eq!(abs, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn eigh_reconstructs_and_its_upper_triangle_is_not_read() {
    let mut rng = SplitMix(0x11a1_0007);
    let a = rng.symmetric(&[2, 4, 4]);
    let (w, v) = linalg::eigh(&a);
    let recon = v.mul(&w.unsqueeze(1)).matmul(&v.transpose());
    assert_close("V diag(w) V^T", &recon, &a, 1e-13);
    assert_close(
        "V^T V",
        &v.transpose().matmul(&v),
        &Tensor::stack(&[&eye(4), &eye(4)], 0),
        1e-13,
    );
    // Garbage above the diagonal changes nothing, and gets no gradient.
    let upper = rng.tensor(&[4, 4], -5.0, 5.0).mul(&t(
        &[
            0., 1., 1., 1., 0., 0., 1., 1., 0., 0., 0., 1., 0., 0., 0., 0.,
        ],
        &[4, 4],
    ));
    let noisy = a.add(&upper);
    assert_eq!(linalg::eigh(&noisy).0.to_vec(), w.to_vec());
    let g =
        perturb::tensor::grad(|a| Ok(linalg::try_eigh(a)?.0.square().sum_all()), &noisy).unwrap();
    for (k, x) in g.to_vec().iter().enumerate() {
        if k % 4 > (k / 4) % 4 {
            assert_eq!(*x, 0.0, "entry {k} above the diagonal");
        }
    }
}

#[test]
fn eigh_at_repeated_eigenvalues_has_finite_derivatives_with_f_zero() {
    // At the identity every pair of eigenvalues is equal: F = 0, so dV = 0 exactly and
    // dw = diag(V^T dA_eff V), finite (JAX would give infinities here).
    let mut rng = SplitMix(0x11a1_0008);
    let da = rng.tensor(&[3, 3], -1.0, 1.0);
    let (packed, tangent) = jvp(packed_eigh, &eye(3), &da).unwrap();
    let v = packed.narrow(0, 1, 3);
    assert!(tangent.to_vec().iter().all(|x| x.is_finite()));
    assert!(
        tangent.narrow(0, 1, 3).to_vec().iter().all(|&x| x == 0.0),
        "dV"
    );
    let sym = da.mul(&t(&[1., 0., 0., 1., 1., 0., 1., 1., 1.], &[3, 3]));
    let sym = sym.add(&sym.transpose()).sub(&da.mul(&eye(3)));
    let m = v.transpose().matmul(&sym).matmul(&v);
    let diag: Vec<f64> = (0..3).map(|i| m.to_vec()[i * 4]).collect();
    assert_close(
        "dw",
        &tangent.narrow(0, 0, 1).squeeze(0),
        &Tensor::vector(&diag),
        1e-15,
    );
}

/// The eigenvalues over the eigenvectors, `[n + 1, n]`.
fn packed_eigh<A: Array>(a: &A) -> Result<A, Error> {
    let (w, v) = linalg::try_eigh(a)?;
    A::try_concat(&[&w.unsqueeze(0), &v], 0)
}

#[test]
fn qr_factors_are_orthonormal_and_triangular_and_reproduce_the_matrix() {
    let mut rng = SplitMix(0x11a1_0009);
    let a = rng.tensor(&[3, 5, 3], -1.0, 1.0);
    let (q, r) = linalg::qr(&a);
    assert_eq!((q.shape(), r.shape()), (&[3, 5, 3][..], &[3, 3, 3][..]));
    let i3 = eye(3);
    assert_close(
        "Q^T Q",
        &q.transpose().matmul(&q),
        &Tensor::stack(&[&i3, &i3, &i3], 0),
        1e-14,
    );
    assert_close("Q R", &q.matmul(&r), &a, 1e-14);
    for (k, x) in r.to_vec().iter().enumerate() {
        if (k % 9) % 3 < (k % 9) / 3 {
            assert_eq!(*x, 0.0, "R entry {k} below the diagonal");
        }
    }
}

#[test]
fn large_batches_run_in_parallel_and_name_the_singular_member() {
    // 120 members of order 8: past the threshold at which the members run on rayon's pool.
    let mut rng = SplitMix(0x11a1_000a);
    let a = rng.well_conditioned(&[120, 8, 8]);
    let b = rng.tensor(&[120, 8], -1.0, 1.0);
    let x = linalg::solve(&a, &b);
    for k in [0, 77, 119] {
        let one = linalg::solve(&a.narrow(0, k, 1).squeeze(0), &b.narrow(0, k, 1).squeeze(0));
        assert_eq!(
            x.narrow(0, k, 1).squeeze(0).to_vec(),
            one.to_vec(),
            "member {k}"
        );
    }
    let mut data = a.to_vec();
    data[77 * 64..78 * 64].fill(0.0);
    data[90 * 64..91 * 64].fill(0.0);
    let singular = t(&data, &[120, 8, 8]);
    match linalg::try_solve(&singular, &b) {
        Err(Error::Singular { op, member, .. }) => assert_eq!((op, member), ("solve", vec![77])),
        other => panic!("expected Singular at member 77, got {other:?}"),
    }
}

// ---- Singular matrices and errors --------------------------------------------------------------

#[test]
fn singular_matrices_are_errors_naming_the_member() {
    let ok = eye(2);
    let bad = t(&[1.0, 2.0, 2.0, 4.0], &[2, 2]);
    let stack = Tensor::stack(&[&ok, &ok, &ok, &bad], 0)
        .reshape(&[2, 2, 2, 2])
        .unwrap();
    // One right-hand side, broadcast: a matrix [2, 1], as b.ndim is not a.ndim - 1.
    let b = t(&[1.0, 1.0], &[2, 1]);
    for (op, result) in [
        ("solve", linalg::try_solve(&stack, &b)),
        ("inv", linalg::try_inv(&stack)),
    ] {
        match result {
            Err(e @ Error::Singular { .. }) => {
                let Error::Singular {
                    op: name,
                    ref member,
                    ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!((name, member.clone()), (op, vec![1, 1]));
                assert!(e.to_string().contains("at batch index [1, 1]"), "{e}");
            }
            other => panic!("{op}: expected Singular, got {other:?}"),
        }
    }
    // A single matrix: no member index.
    match linalg::try_solve(&bad, &b) {
        Err(Error::Singular { member, .. }) => assert!(member.is_empty()),
        other => panic!("expected Singular, got {other:?}"),
    }
}

#[test]
fn singular_determinants_are_zero_and_their_derivatives_errors() {
    let bad = t(&[1.0, 2.0, 2.0, 4.0], &[2, 2]);
    let zero = Tensor::<f64>::zeros(&[2, 2]);
    for a in [&bad, &zero] {
        let (sign, logabs) = linalg::slogdet(a);
        assert_eq!(
            (sign.to_vec(), logabs.to_vec()),
            (vec![0.0], vec![f64::NEG_INFINITY])
        );
        assert_eq!(linalg::det(a).to_vec(), vec![0.0]);
    }
    // The derivative: forward and reverse both report the singular matrix.
    let da = Tensor::ones(&[2, 2]);
    let forward = jvp(|a| Ok(linalg::try_slogdet(a)?.1), &bad, &da);
    assert!(
        matches!(forward, Err(Error::Singular { op: "slogdet", .. })),
        "{forward:?}"
    );
    let forward = jvp(linalg::try_det, &bad, &da);
    assert!(
        matches!(forward, Err(Error::Singular { op: "det", .. })),
        "{forward:?}"
    );
    let reverse = vjp(
        |a| Ok(linalg::try_slogdet(a)?.1),
        &bad,
        &Tensor::scalar(1.0),
    );
    assert!(reverse.is_err(), "{reverse:?}");
    let err = reverse.unwrap_err().to_string();
    assert!(err.contains("slogdet") && err.contains("singular"), "{err}");
}

#[test]
fn shapes_that_do_not_fit_are_errors_naming_both() {
    let a = eye(3);
    let err = linalg::try_solve(&a, &Tensor::vector(&[1.0, 2.0])).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "solve",
            lhs: vec![3, 3],
            rhs: vec![2]
        }
    );
    let err = linalg::try_solve(&a, &Tensor::zeros(&[2, 2])).unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "solve",
            lhs: vec![3, 3],
            rhs: vec![2, 2]
        }
    );
    // Leading axes that do not broadcast.
    let err = linalg::try_solve(
        &Tensor::<f64>::zeros(&[2, 3, 3]),
        &Tensor::zeros(&[3, 3, 1]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        Error::ShapeMismatch {
            op: "solve",
            lhs: vec![2, 3, 3],
            rhs: vec![3, 3, 1]
        }
    );
    let not_square = Tensor::<f64>::zeros(&[2, 3]);
    for (op, err) in [
        (
            "solve",
            linalg::try_solve(&not_square, &Tensor::zeros(&[2])).unwrap_err(),
        ),
        ("inv", linalg::try_inv(&not_square).unwrap_err()),
        ("det", linalg::try_det(&not_square).unwrap_err()),
        ("slogdet", linalg::try_slogdet(&not_square).unwrap_err()),
        ("eigh", linalg::try_eigh(&not_square).unwrap_err()),
        ("qr", linalg::try_qr(&not_square).unwrap_err()),
        (
            "det",
            linalg::try_det(&Tensor::<f64>::zeros(&[3])).unwrap_err(),
        ),
    ] {
        match &err {
            Error::InvalidArgument { op: name, reason } => {
                assert_eq!(*name, op);
                assert!(
                    reason.contains("[2, 3]") || reason.contains("[3]"),
                    "{reason}"
                );
            }
            other => panic!("{op}: {other:?}"),
        }
    }
    let nan = t(&[1.0, 0.0, f64::NAN, 1.0], &[2, 2]);
    let err = linalg::try_eigh(&nan).unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
}

// ---- Through the transforms --------------------------------------------------------------------

/// A scalar built from every operation of this file, of one matrix `x` `[3, 3]`: each sees a
/// well-conditioned matrix (or a symmetric one with separated eigenvalues) near the point
/// used below, and the eigenvectors enter only through sign-independent terms.
struct Everything;

impl perturb::tensor::TensorFn<f64> for Everything {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        let b = x.narrow(1, 0, 2);
        let s = linalg::try_solve(x, &b)?.square().sum_all();
        let i = linalg::try_inv(x)?.sum_all();
        let d = linalg::try_det(x)?;
        let l = linalg::try_slogdet(x)?.1;
        let sym = x.add(&x.transpose());
        let (w, v) = linalg::try_eigh(&sym)?;
        let e = w.sin().sum_all().add(&v.square().narrow(0, 0, 1).sum_all());
        let (q, r) = linalg::try_qr(x)?;
        let qr = q.narrow(1, 0, 1).sum_all().mul(&r.sum_all());
        Ok(s.add(&i).add(&d).add(&l).add(&e).add(&qr))
    }
}

fn point() -> Tensor<f64> {
    t(&[3.1, 0.4, -0.2, 0.3, -2.9, 0.5, 0.1, 0.6, 4.2], &[3, 3])
}

#[test]
fn check_grads_passes_at_order_two_through_every_operation() {
    use perturb::tensor::{check_grads, CheckOptions};
    let report = check_grads(&Everything, &point(), &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{report:?}");
}

#[test]
fn jacfwd_agrees_with_jacrev_and_the_hessian_is_symmetric() {
    use perturb::tensor::{hessian, jacfwd, jacrev, TensorFn};
    let x = point();
    // jacfwd pushes the basis stack (Batched) through every batching rule at once.
    let each = |x: &Tensor<f64>| -> Vec<Tensor<f64>> {
        let fwd = jacfwd(
            |x| {
                Ok(linalg::try_slogdet(x)?
                    .1
                    .add(&linalg::try_inv(x)?.sum_all()))
            },
            x,
        );
        let rev = jacrev(
            |x| {
                Ok(linalg::try_slogdet(x)?
                    .1
                    .add(&linalg::try_inv(x)?.sum_all()))
            },
            x,
        );
        let fwd_e = jacfwd(|x| Ok(linalg::try_eigh(x)?.0), x);
        let rev_e = jacrev(|x| Ok(linalg::try_eigh(x)?.0), x);
        let fwd_q = jacfwd(|x| Ok(linalg::try_qr(x)?.1), x);
        let rev_q = jacrev(|x| Ok(linalg::try_qr(x)?.1), x);
        vec![
            fwd.unwrap(),
            rev.unwrap(),
            fwd_e.unwrap(),
            rev_e.unwrap(),
            fwd_q.unwrap(),
            rev_q.unwrap(),
        ]
    };
    let j = each(&x);
    for k in [0, 2, 4] {
        assert_close("jacfwd against jacrev", &j[k], &j[k + 1], 1e-13);
    }
    let h = hessian(|x| Everything.call(x), &x).unwrap();
    assert_eq!(h.shape(), &[3, 3, 3, 3]);
    let flat = h.reshape(&[9, 9]).unwrap();
    assert_close("H = H^T", &flat, &flat.transpose(), 1e-10);
}

#[test]
fn empty_matrices_and_batches_give_empty_results() {
    let none = Tensor::<f64>::zeros(&[0, 0]);
    assert_eq!(linalg::det(&none).to_vec(), vec![1.0]); // the empty product
    assert_eq!(linalg::slogdet(&none).1.to_vec(), vec![0.0]);
    assert_eq!(linalg::solve(&none, &Tensor::zeros(&[0])).shape(), &[0]);
    assert_eq!(linalg::inv(&none).shape(), &[0, 0]);
    assert_eq!(linalg::eigh(&none).0.shape(), &[0]);
    let (q, r) = linalg::qr(&Tensor::<f64>::zeros(&[3, 0]));
    assert_eq!((q.shape(), r.shape()), (&[3, 0][..], &[0, 0][..]));
    let batch = Tensor::<f64>::zeros(&[0, 2, 2]);
    assert_eq!(linalg::det(&batch).shape(), &[0]);
    assert_eq!(
        linalg::solve(&batch, &Tensor::zeros(&[0, 2])).shape(),
        &[0, 2]
    );
    assert_eq!(linalg::eigh(&batch).1.shape(), &[0, 2, 2]);
    assert_eq!(linalg::qr(&batch).0.shape(), &[0, 2, 2]);
}

#[test]
fn inputs_that_are_not_finite_do_not_panic() {
    let nan = t(&[1.0, f64::NAN, 0.5, 2.0], &[2, 2]);
    let inf = t(&[f64::INFINITY, 0.0, 0.0, 1.0], &[2, 2]);
    // A NaN spreads through the solution: reported (as a matrix singular to working
    // precision, or an input not finite). An infinity may still give a finite solution
    // ([[inf, 0], [0, 1]] x = [1, 1] has x = [0, 1]).
    assert!(matches!(
        linalg::try_solve(&nan, &Tensor::vector(&[1.0, 1.0])),
        Err(Error::Singular { .. })
    ));
    for a in [&nan, &inf] {
        let _ = linalg::try_solve(a, &Tensor::vector(&[1.0, 1.0]));
        assert!(linalg::try_eigh(&a.transpose()).is_err());
        let _ = (
            linalg::try_det(a),
            linalg::try_slogdet(a),
            linalg::try_qr(a),
        );
    }
}
