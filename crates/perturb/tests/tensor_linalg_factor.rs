//! The Cholesky family: `triangular_solve` (every combination of lower / upper, transposed,
//! unit diagonal; vector and matrix right-hand sides; batched with broadcasting), `cholesky`
//! and `cholesky_solve`.
//!
//! One table row per operation and layout. Each row goes through the forward column
//! (`forward_support`: the JVP against central differences in random directions, against the
//! VJP, the batched column, and order two in three nestings), and through f32 against f64. Then
//! exact identities (`cholesky(L Lᵀ) = L`, a solve satisfies its equation, `cholesky_solve`
//! against an explicit inverse, the gradient of `sum(cholesky(A) * U)` against its closed form
//! for a 2 x 2 matrix) and errors (an indefinite member of a batch and its pivot, a zero on a
//! triangle's diagonal, shapes that do not fit).

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function, SplitMix};
use perturb::tensor::linalg;
use perturb::tensor::{
    check_grads, grad, hessian, hvp, jacfwd, jacrev, ops::TriangularSolve, Array, CheckOptions,
    Element, Tensor, TensorFn, TensorTape, TensorVar,
};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

impl SplitMix {
    /// A stack of `n x n` matrices with entries in `[-1, 1)` and diagonals of size 2 to 3
    /// (either sign): every triangle is diagonally dominant, so well conditioned.
    fn dominant(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let mut data = self.tensor(shape, -1.0, 1.0).to_vec();
        for (k, v) in data.iter_mut().enumerate() {
            if k % (n * n) / n == k % n {
                let sign = if self.next_u64() % 2 == 0 { 1.0 } else { -1.0 };
                *v = sign * self.uniform(2.0, 3.0);
            }
        }
        Tensor::from_vec(data, shape).unwrap()
    }

    /// A stack of lower Cholesky-like factors: entries in `[-1, 1)` below the diagonal, `[1.5,
    /// 2.5)` on it, noise above it (a triangular solve must not read it).
    fn factor(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let mut data = self.tensor(shape, -1.0, 1.0).to_vec();
        for (k, v) in data.iter_mut().enumerate() {
            if k % (n * n) / n == k % n {
                *v = self.uniform(1.5, 2.5);
            }
        }
        Tensor::from_vec(data, shape).unwrap()
    }

    /// A stack of symmetric positive definite matrices `B Bᵀ + n I`, `B` in `[-1, 1)`.
    fn spd(&mut self, shape: &[usize]) -> Tensor<f64> {
        let n = shape[shape.len() - 1];
        let b = self.tensor(shape, -1.0, 1.0);
        let eye: Vec<f64> = (0..n * n)
            .map(|k| if k / n == k % n { n as f64 } else { 0.0 })
            .collect();
        b.matmul(&b.transpose()).add(&t(&eye, &[n, n]))
    }
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

/// The lower (or upper) triangle of each matrix of a stack, its diagonal replaced by ones when
/// `unit`, built entry by entry.
fn triangle(a: &Tensor<f64>, lower: bool, unit: bool) -> Tensor<f64> {
    let n = a.shape()[a.ndim() - 1];
    let data = a
        .as_slice()
        .iter()
        .enumerate()
        .map(|(k, &v)| {
            let (i, j) = (k % (n * n) / n, k % n);
            match (i == j, if lower { j < i } else { j > i }) {
                (true, _) if unit => 1.0,
                (true, _) | (false, true) => v,
                (false, false) => 0.0,
            }
        })
        .collect();
    Tensor::from_vec(data, a.shape()).unwrap()
}

// ---- The table -----------------------------------------------------------------------------

/// One operation with its options, applied to any array type.
#[derive(Clone, Copy, Debug)]
enum Case {
    TriangularSolve(TriangularSolve),
    Cholesky,
    CholeskySolve,
    /// `cholesky_solve(cholesky(A), b)`: the Gaussian process's path.
    SolveByCholesky,
}

impl Case {
    fn apply<A: Array>(&self, xs: &[&A]) -> Result<A, Error> {
        match *self {
            Case::TriangularSolve(options) => linalg::try_triangular_solve(xs[0], xs[1], options),
            Case::Cholesky => linalg::try_cholesky(xs[0]),
            Case::CholeskySolve => linalg::try_cholesky_solve(xs[0], xs[1]),
            Case::SolveByCholesky => {
                linalg::try_cholesky_solve(&linalg::try_cholesky(xs[0])?, xs[1])
            }
        }
    }
}

impl Function for Case {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        self.apply(xs)
    }
}

/// Where a row's matrix is drawn from (the right-hand sides are uniform in `[-1, 1)`).
#[derive(Clone, Copy, Debug)]
enum Domain {
    Dominant,
    Factor,
    Spd,
}

struct Row {
    name: &'static str,
    case: Case,
    /// The matrix's shape, then the right-hand side's (if any).
    shapes: &'static [&'static [usize]],
    domain: Domain,
}

const fn tri(lower: bool, transpose: bool, unit_diagonal: bool) -> Case {
    Case::TriangularSolve(TriangularSolve {
        lower,
        transpose,
        unit_diagonal,
    })
}

const TS: &str = "triangular_solve";

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Every combination of the options, a vector and a matrix of right-hand sides.
    Row { name: TS, case: tri(true, false, false), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, false, false), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, true, false), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, true, false), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, false, true), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, false, true), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, true, true), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, true, true), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, false, false), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, false, false), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, false), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, false), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, false, true), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, false, true), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, true), shapes: &[&[3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, true), shapes: &[&[3, 3], &[3, 2]], domain: Domain::Dominant },
    // Batched: a stack of vectors; one vector for a stack of matrices; leading axes that
    // broadcast both ways; one matrix for a stack of right-hand sides.
    Row { name: TS, case: tri(true, false, false), shapes: &[&[2, 3, 3], &[2, 3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, false), shapes: &[&[2, 3, 3], &[3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(true, true, false), shapes: &[&[2, 3, 3], &[3, 1, 3, 2]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, false, true), shapes: &[&[2, 1, 3, 3], &[1, 2, 3]], domain: Domain::Dominant },
    Row { name: TS, case: tri(false, true, false), shapes: &[&[3, 3], &[2, 3, 2]], domain: Domain::Dominant },
    Row { name: "cholesky", case: Case::Cholesky, shapes: &[&[3, 3]], domain: Domain::Spd },
    Row { name: "cholesky", case: Case::Cholesky, shapes: &[&[1, 1]], domain: Domain::Spd },
    Row { name: "cholesky", case: Case::Cholesky, shapes: &[&[2, 4, 4]], domain: Domain::Spd },
    Row { name: "cholesky", case: Case::Cholesky, shapes: &[&[2, 1, 3, 3]], domain: Domain::Spd },
    Row { name: "cholesky_solve", case: Case::CholeskySolve, shapes: &[&[3, 3], &[3]], domain: Domain::Factor },
    Row { name: "cholesky_solve", case: Case::CholeskySolve, shapes: &[&[3, 3], &[3, 2]], domain: Domain::Factor },
    Row { name: "cholesky_solve", case: Case::CholeskySolve, shapes: &[&[2, 3, 3], &[2, 3]], domain: Domain::Factor },
    Row { name: "cholesky_solve", case: Case::CholeskySolve, shapes: &[&[1, 3, 3], &[2, 3, 2]], domain: Domain::Factor },
    Row { name: "cholesky then cholesky_solve", case: Case::SolveByCholesky, shapes: &[&[3, 3], &[3]], domain: Domain::Spd },
    Row { name: "cholesky then cholesky_solve", case: Case::SolveByCholesky, shapes: &[&[2, 3, 3], &[1, 3, 2]], domain: Domain::Spd },
];

impl Row {
    fn inputs(&self, rng: &mut SplitMix) -> Vec<Tensor<f64>> {
        let matrix = match self.domain {
            Domain::Dominant => rng.dominant(self.shapes[0]),
            Domain::Factor => rng.factor(self.shapes[0]),
            Domain::Spd => rng.spd(self.shapes[0]),
        };
        std::iter::once(matrix)
            .chain(self.shapes[1..].iter().map(|s| rng.tensor(s, -1.0, 1.0)))
            .collect()
    }

    fn value(&self, xs: &[Tensor<f64>]) -> Tensor<f64> {
        let refs: Vec<&Tensor<f64>> = xs.iter().collect();
        self.case.apply(&refs).unwrap()
    }

    /// The value and VJP with cotangent `u`, through a tape, in `T`.
    fn vjp<T: Element>(&self, xs: &[Tensor<T>], u: &Tensor<T>) -> (Tensor<T>, Vec<Tensor<T>>) {
        let tape = TensorTape::new();
        let vars: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
        let refs: Vec<_> = vars.iter().collect();
        let y = self.case.apply(&refs).unwrap();
        let cts = tape.vjp(&y, u, &refs).unwrap();
        (y.value().clone(), cts)
    }
}

#[test]
fn the_table_has_a_row_for_every_operation_and_option() {
    let names = [
        TS,
        "cholesky",
        "cholesky_solve",
        "cholesky then cholesky_solve",
    ];
    for name in names {
        assert!(ROWS.iter().any(|r| r.name == name), "no row for {name}");
    }
    assert!(ROWS.iter().all(|r| names.contains(&r.name)));
    // Every combination of the triangular solve's options, with a vector and with a matrix.
    for bits in 0..8 {
        let options = TriangularSolve {
            lower: bits & 1 != 0,
            transpose: bits & 2 != 0,
            unit_diagonal: bits & 4 != 0,
        };
        for rank in [1, 2] {
            assert!(
                ROWS.iter().any(
                    |r| matches!(r.case, Case::TriangularSolve(o) if o == options)
                        && r.shapes[1].len() == rank
                ),
                "no row for {options:?} with a right-hand side of rank {rank}"
            );
        }
    }
}

/// A row's point: its inputs, an output weight `u`, two directions per input (in every entry,
/// not symmetric: entries a rule must ignore are perturbed too), and a label.
struct Point {
    xs: Vec<Tensor<f64>>,
    u: Tensor<f64>,
    vs: Vec<Tensor<f64>>,
    zs: Vec<Tensor<f64>>,
    active: Vec<bool>,
    what: String,
}

impl Row {
    fn point(&self, rng: &mut SplitMix) -> Point {
        let xs = self.inputs(rng);
        let u = rng.tensor(self.value(&xs).shape(), -1.0, 1.0);
        let mut directions = || -> Vec<_> {
            xs.iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect()
        };
        let (vs, zs) = (directions(), directions());
        Point {
            active: vec![true; xs.len()],
            what: format!("{} {:?} {:?}", self.name, self.case, self.shapes),
            xs,
            u,
            vs,
            zs,
        }
    }
}

#[test]
fn first_order_matches_central_differences_reverse_mode_and_the_batched_column() {
    let mut rng = SplitMix(0x5eed_f001);
    for row in ROWS {
        let p = row.point(&mut rng);
        check_first_order(&p.what, &row.case, &p.xs, &p.active, &p.vs, &p.u, 1e-7);
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    let mut rng = SplitMix(0x5eed_f002);
    for row in ROWS {
        let p = row.point(&mut rng);
        check_second_order(
            &p.what, &row.case, &p.xs, &p.active, &p.vs, &p.zs, &p.u, 1e-5,
        );
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = SplitMix(0x5eed_f003);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let (y64, ct64) = row.vjp(&xs, &u);
        let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
        let (y32, ct32) = row.vjp(&xs32, &u.cast());
        // f32 carries about 7 digits (eps 1.2e-7); the matrices are well conditioned (the
        // triangles diagonally dominant, B Bᵀ + n I) and of order 4 at most, so 1e-5 leaves
        // room for rounding but not for a wrong rule.
        let what = format!("{} {:?} {:?}", row.name, row.case, row.shapes);
        assert!(y32.all_close(&y64.cast(), 1e-5), "{what}: value");
        for (i, (a, b)) in ct32.iter().zip(&ct64).enumerate() {
            assert!(a.all_close(&b.cast(), 1e-5), "{what}: vjp of input {i}");
        }
    }
}

// ---- Exact identities ----------------------------------------------------------------------

#[test]
fn cholesky_of_l_lt_is_l() {
    let mut rng = SplitMix(0x5eed_f004);
    for shape in [&[1, 1][..], &[4, 4], &[3, 2, 5, 5]] {
        let l = triangle(&rng.factor(shape), true, false);
        let a = l.matmul(&l.transpose());
        let got = linalg::cholesky(&a);
        assert!(got.all_close(&l, 1e-13), "{shape:?}: {got:?} vs {l:?}");
        assert!(linalg::cholesky(&a.cast::<f32>()).all_close(&l.cast(), 1e-5));
    }
}

#[test]
fn a_triangular_solve_satisfies_its_equation() {
    let mut rng = SplitMix(0x5eed_f005);
    for bits in 0..8 {
        let options = TriangularSolve {
            lower: bits & 1 != 0,
            transpose: bits & 2 != 0,
            unit_diagonal: bits & 4 != 0,
        };
        for (sa, sb) in [
            (&[4, 4][..], &[4][..]),
            (&[4, 4], &[4, 3]),
            (&[2, 1, 4, 4], &[1, 3, 4, 2]),
            (&[2, 4, 4], &[3, 1, 4, 2]),
            (&[3, 4, 4], &[3, 4]),
            (&[4, 4], &[3, 4, 2]),
            (&[1, 4, 4], &[5, 4]),
        ] {
            let a = rng.dominant(sa);
            let b = rng.tensor(sb, -1.0, 1.0);
            let x = linalg::triangular_solve(&a, &b, options);
            // op(T) x, with op(T) built entry by entry.
            let mut op_t = triangle(&a, options.lower, options.unit_diagonal);
            if options.transpose {
                op_t = op_t.transpose();
            }
            let vector = sb.len() == 1 || sb.len() + 1 == sa.len();
            let back = if vector {
                op_t.matmul(&x.unsqueeze(x.ndim())).squeeze(x.ndim())
            } else {
                op_t.matmul(&x)
            };
            let want = b.try_broadcast_to(back.shape()).unwrap();
            assert!(back.all_close(&want, 1e-13), "{options:?} {sa:?} {sb:?}");
        }
    }
}

/// The inverse of an `n x n` matrix by Gauss-Jordan elimination with partial pivoting: an
/// independent reference.
fn inverse(a: &[f64], n: usize) -> Vec<f64> {
    let mut m: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let mut row = a[i * n..(i + 1) * n].to_vec();
            row.extend((0..n).map(|j| if i == j { 1.0 } else { 0.0 }));
            row
        })
        .collect();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        let pivot = m[c][c];
        m[c].iter_mut().for_each(|v| *v /= pivot);
        for r in 0..n {
            if r != c {
                let f = m[r][c];
                let pivot_row = m[c].clone();
                m[r].iter_mut()
                    .zip(&pivot_row)
                    .for_each(|(v, p)| *v -= f * p);
            }
        }
    }
    m.into_iter().flat_map(|row| row[n..].to_vec()).collect()
}

#[test]
fn cholesky_solve_matches_an_explicit_inverse() {
    let mut rng = SplitMix(0x5eed_f006);
    let n = 5;
    let a = rng.spd(&[3, n, n]);
    let b = rng.tensor(&[3, n, 2], -1.0, 1.0);
    let x = linalg::cholesky_solve(&linalg::cholesky(&a), &b);
    for m in 0..3 {
        let inv = inverse(&a.as_slice()[m * n * n..(m + 1) * n * n], n);
        let want = t(&inv, &[n, n]).matmul(&b.narrow(0, m, 1).squeeze(0));
        assert!(
            x.narrow(0, m, 1).squeeze(0).all_close(&want, 1e-13),
            "member {m}"
        );
    }
    // A vector right-hand side, and one shared by the stack.
    let v = rng.tensor(&[n], -1.0, 1.0);
    let xv = linalg::cholesky_solve(&linalg::cholesky(&a), &v);
    for m in 0..3 {
        let inv = inverse(&a.as_slice()[m * n * n..(m + 1) * n * n], n);
        let want = t(&inv, &[n, n]).matmul(&v);
        assert!(
            xv.narrow(0, m, 1).squeeze(0).all_close(&want, 1e-13),
            "member {m}"
        );
    }
}

/// The gradient of `sum(cholesky(A) * U)` for a 2 x 2 matrix, by hand from
/// `l11 = sqrt(a11)`, `l21 = a21 / l11`, `l22 = sqrt(a22 - l21^2)` (`a12` is not read):
/// `d/da11 = u11 / (2 l11) - u21 l21 / (2 a11) + u22 l21^2 / (2 a11 l22)`,
/// `d/da21 = u21 / l11 - u22 l21 / (l11 l22)`, `d/da22 = u22 / (2 l22)`, `d/da12 = 0`.
#[test]
fn the_gradient_of_a_weighted_cholesky_factor_matches_its_closed_form() {
    let mut rng = SplitMix(0x5eed_f007);
    for _ in 0..5 {
        let a = rng.spd(&[2, 2]);
        // Not symmetric: the entry above the diagonal must not count.
        let a = a.add(&t(&[0.0, rng.uniform(-1.0, 1.0), 0.0, 0.0], &[2, 2]));
        let u = rng.tensor(&[2, 2], -1.0, 1.0);
        let g = grad(
            |x| {
                Ok(linalg::try_cholesky(x)?
                    .try_mul(&x.constant_like(&u))?
                    .sum_all())
            },
            &a,
        )
        .unwrap();
        let (a11, a21, a22) = (a.to_vec()[0], a.to_vec()[2], a.to_vec()[3]);
        let (u11, u21, u22) = (u.to_vec()[0], u.to_vec()[2], u.to_vec()[3]);
        let l11 = a11.sqrt();
        let l21 = a21 / l11;
        let l22 = (a22 - l21 * l21).sqrt();
        let want = [
            u11 / (2.0 * l11) - u21 * l21 / (2.0 * a11) + u22 * l21 * l21 / (2.0 * a11 * l22),
            0.0,
            u21 / l11 - u22 * l21 / (l11 * l22),
            u22 / (2.0 * l22),
        ];
        assert!(g.all_close(&t(&want, &[2, 2]), 1e-14), "{g:?} vs {want:?}");
    }
}

#[test]
fn a_large_batch_in_parallel_gives_each_members_factor_and_solve() {
    // 40 members of order 12: enough work for the members to run on rayon's pool.
    let mut rng = SplitMix(0x5eed_f008);
    let a = rng.spd(&[40, 12, 12]);
    let b = rng.tensor(&[40, 12, 3], -1.0, 1.0);
    let l = linalg::cholesky(&a);
    let x = linalg::cholesky_solve(&l, &b);
    for m in [0, 17, 39] {
        let am = a.narrow(0, m, 1).squeeze(0);
        let lm = linalg::cholesky(&am);
        assert_eq!(
            l.narrow(0, m, 1).squeeze(0).to_vec(),
            lm.to_vec(),
            "member {m}"
        );
        let xm = linalg::cholesky_solve(&lm, &b.narrow(0, m, 1).squeeze(0));
        assert_eq!(
            x.narrow(0, m, 1).squeeze(0).to_vec(),
            xm.to_vec(),
            "member {m}"
        );
    }
}

// ---- The transforms through a Gaussian process ----------------------------------------------

/// The negative log marginal likelihood of a Gaussian process with an RBF kernel, as a function
/// of its hyperparameters `[ln length, ln signal, ln noise]`: `K = s² exp(-D / 2l²) + σ² I`,
/// `L = cholesky(K)`, `½ yᵀ K⁻¹ y + Σ ln L_ii` (the constant dropped).
struct GaussianProcess {
    /// Squared distances between 6 points on a line.
    distances: Tensor<f64>,
    y: Tensor<f64>,
}

impl GaussianProcess {
    fn new() -> Self {
        let xs: [f64; 6] = [0.0, 0.4, 1.1, 1.5, 2.3, 3.0];
        let n = xs.len();
        let d = (0..n * n)
            .map(|k| (xs[k / n] - xs[k % n]).powi(2))
            .collect::<Vec<_>>();
        GaussianProcess {
            distances: t(&d, &[n, n]),
            y: t(&[0.3, 0.8, 0.2, -0.4, -0.9, 0.1], &[n]),
        }
    }
}

impl TensorFn<f64> for GaussianProcess {
    fn call<A: Array<Elem = f64>>(&self, theta: &A) -> Result<A, Error> {
        let n = self.y.shape()[0];
        let at = |i| theta.try_narrow(0, i, 1);
        let eye = theta.constant_like(&t(
            &(0..n * n)
                .map(|k| if k / n == k % n { 1.0 } else { 0.0 })
                .collect::<Vec<_>>(),
            &[n, n],
        ));
        let scaled = theta
            .constant_like(&self.distances)
            .try_mul(&at(0)?.scale(-2.0).exp().scale(-0.5))?;
        let k = scaled
            .exp()
            .try_mul(&at(1)?.scale(2.0).exp())?
            .try_add(&eye.try_mul(&at(2)?.scale(2.0).exp())?)?;
        let l = linalg::try_cholesky(&k)?;
        let y = theta.constant_like(&self.y);
        let fit = y
            .try_mul(&linalg::try_cholesky_solve(&l, &y)?)?
            .sum_all()
            .scale(0.5);
        let log_det = l.try_mul(&eye)?.try_sum_axes(&[1], false)?.ln().sum_all();
        fit.try_add(&log_det)
    }
}

#[test]
fn check_grads_hessian_and_hvp_agree_through_a_gaussian_process() {
    let gp = GaussianProcess::new();
    let theta = t(&[-0.2, 0.1, -1.0], &[3]);
    let report = check_grads(&gp, &theta, &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{:?}", report.worst());
    let h = hessian(|x| gp.call(x), &theta).unwrap();
    assert_eq!(h.shape(), &[3, 3]);
    assert!(h.all_close(&h.transpose(), 1e-12), "{h:?}");
    let v = t(&[0.5, -1.0, 0.25], &[3]);
    let hv = hvp(|x| gp.call(x), &theta, &v).unwrap();
    assert!(
        hv.all_close(&h.matmul(&v), 1e-12),
        "{hv:?} vs {:?}",
        h.matmul(&v)
    );
    // The Hessian against a central difference of the gradient.
    let g = |x: &Tensor<f64>| grad(|x| gp.call(x), x).unwrap();
    let step = 1e-5;
    let fd = g(&theta.add(&v.scale(step)))
        .sub(&g(&theta.sub(&v.scale(step))))
        .scale(0.5 / step);
    assert!(hv.all_close(&fd, 1e-7), "{hv:?} vs {fd:?}");
}

/// `<U, chol(A)> + <w, cholesky_solve(chol(A), b)>`, for any array type.
fn weighted<A: Array>(a: &A, u: &A, w: &A, b: &A) -> A {
    let l = linalg::cholesky(a);
    l.mul(u)
        .sum_all()
        .add(&linalg::cholesky_solve(&l, b).mul(w).sum_all())
}

#[test]
fn reverse_over_reverse_matches_a_central_difference_of_the_gradient() {
    let mut rng = SplitMix(0x5eed_f00c);
    for shape in [&[4, 4][..], &[2, 3, 3]] {
        let n = shape[shape.len() - 1];
        let a0 = rng.spd(shape);
        let u = rng.tensor(shape, -1.0, 1.0);
        let b = rng.tensor(&[n], -1.0, 1.0);
        let w = rng.tensor(&shape[..shape.len() - 1], -1.0, 1.0);
        let v = rng.tensor(shape, -1.0, 1.0);
        // The Hessian along v by a tape over a tape: each VJP rule recorded and swept again.
        let inner = TensorTape::new();
        let ai = inner.var(a0.clone());
        let outer = TensorTape::<TensorVar<Tensor<f64>>>::over();
        let ao = outer.var(ai.clone());
        let c = |x: &Tensor<f64>| outer.constant(inner.constant(x.clone()));
        let y = weighted(&ao, &c(&u), &c(&w), &c(&b));
        let g = outer.gradient(&y, &[&ao]).unwrap();
        let along = g[0].mul(&inner.constant(v.clone())).sum_all();
        let hv = inner.gradient(&along, &[&ai]).unwrap().remove(0);
        let gradient = |x: &Tensor<f64>| {
            grad(
                |a| {
                    Ok(weighted(
                        a,
                        &a.constant_like(&u),
                        &a.constant_like(&w),
                        &a.constant_like(&b),
                    ))
                },
                x,
            )
            .unwrap()
        };
        let h = 1e-5;
        let fd = gradient(&a0.add(&v.scale(h)))
            .sub(&gradient(&a0.sub(&v.scale(h))))
            .scale(0.5 / h);
        assert!(hv.all_close(&fd, 1e-7), "{shape:?}: {hv:?} vs {fd:?}");
    }
}

#[test]
fn jacfwd_and_jacrev_of_cholesky_agree() {
    let a = SplitMix(0x5eed_f00b).spd(&[2, 3, 3]);
    let forward = jacfwd(linalg::try_cholesky, &a).unwrap();
    let reverse = jacrev(|x| linalg::try_cholesky(x), &a).unwrap();
    assert_eq!(forward.shape(), &[2, 3, 3, 2, 3, 3]);
    assert!(forward.all_close(&reverse, 1e-12));
    // Nothing flows from above the diagonal: d L / d a[m, 0, 2] is zero.
    assert!(forward
        .as_slice()
        .iter()
        .enumerate()
        .all(|(k, &d)| k % 9 != 2 || d == 0.0));
}

// ---- Errors --------------------------------------------------------------------------------

#[test]
fn an_indefinite_member_is_named_with_its_pivot() {
    let mut rng = SplitMix(0x5eed_f009);
    let mut data = rng.spd(&[2, 3, 3, 3]).to_vec();
    // Member [1, 0]: its leading 2 x 2 minor [[1, 2], [2, 1]] has determinant -3 (pivot 1);
    // member [1, 2]: a negative first entry (pivot 0). The first of them is reported.
    let at = |m: usize| m * 9;
    data[at(3)..at(3) + 5].copy_from_slice(&[1.0, 0.0, 0.0, 2.0, 1.0]);
    data[at(5)] = -1.0;
    let a = t(&data, &[2, 3, 3, 3]);
    match linalg::try_cholesky(&a) {
        Err(Error::NotPositiveDefinite { op, member, pivot }) => {
            assert_eq!((op, member, pivot), ("cholesky", vec![1, 0], 1));
        }
        other => panic!("expected NotPositiveDefinite, got {other:?}"),
    }
    let only_last = a.narrow(1, 2, 1);
    match linalg::try_cholesky(&only_last) {
        Err(e @ Error::NotPositiveDefinite { .. }) => {
            assert_eq!(
                e.to_string(),
                "cholesky: the matrix at batch index [1, 0] is not positive definite: pivot 0 \
                 (the leading minor of order 1) is not positive"
            );
        }
        other => panic!("expected NotPositiveDefinite, got {other:?}"),
    }
    // In a large batch, on rayon's pool: still the first failing member.
    let mut big = rng.spd(&[40, 12, 12]).to_vec();
    for m in [33, 7, 21] {
        big[m * 144 + 5 * 13] = -50.0;
    }
    match linalg::try_cholesky(&t(&big, &[40, 12, 12])) {
        Err(Error::NotPositiveDefinite { member, pivot, .. }) => {
            assert_eq!((member, pivot), (vec![7], 5));
        }
        other => panic!("expected NotPositiveDefinite, got {other:?}"),
    }
    // Through a tape, the same error.
    let tape = TensorTape::new();
    assert!(matches!(
        linalg::try_cholesky(&tape.var(t(&[1.0, 2.0, 2.0, 1.0], &[2, 2]))),
        Err(Error::NotPositiveDefinite { pivot: 1, .. })
    ));
}

#[test]
#[should_panic(expected = "cholesky: the matrix is not positive definite: pivot 1")]
fn the_plain_cholesky_panics_with_the_error() {
    linalg::cholesky(&t(&[1.0, 2.0, 2.0, 1.0], &[2, 2]));
}

#[test]
fn a_zero_on_a_diagonal_that_is_read_is_singular() {
    let mut a = SplitMix(0x5eed_f00a).dominant(&[3, 3, 3]).to_vec();
    a[2 * 9 + 4] = 0.0; // member 2, entry (1, 1)
    let a = t(&a, &[3, 3, 3]);
    let b = Tensor::ones(&[3]);
    for lower in [true, false] {
        for transpose in [true, false] {
            let options = TriangularSolve {
                lower,
                transpose,
                unit_diagonal: false,
            };
            match linalg::try_triangular_solve(&a, &b, options) {
                Err(e @ Error::Singular { .. }) => assert_eq!(
                    e.to_string(),
                    "triangular_solve: the matrix at batch index [2] is singular: diagonal \
                     entry (1, 1) is zero"
                ),
                other => panic!("expected Singular, got {other:?}"),
            }
            // With a unit diagonal the zero is not read.
            let unit = TriangularSolve {
                unit_diagonal: true,
                ..options
            };
            assert!(linalg::try_triangular_solve(&a, &b, unit).is_ok());
        }
    }
    // cholesky_solve names itself.
    let l = t(&[2.0, 0.0, 1.0, 0.0], &[2, 2]);
    assert!(matches!(
        linalg::try_cholesky_solve(&l, &Tensor::ones(&[2])),
        Err(Error::Singular {
            op: "cholesky_solve",
            ..
        })
    ));
}

#[test]
fn shapes_that_do_not_fit_are_errors_naming_the_operation_and_both_shapes() {
    let lower = TriangularSolve {
        lower: true,
        ..Default::default()
    };
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[2]),          // a not square
        (&[3], &[3]),             // a not a matrix
        (&[3, 3], &[4]),          // b's length
        (&[3, 3], &[2, 2]),       // b's rows
        (&[2, 3, 3], &[3, 3, 1]), // leading axes that do not broadcast
        (&[3, 3], &[]),           // b a scalar
    ];
    for (sa, sb) in cases {
        let (a, b) = (Tensor::<f64>::ones(sa), Tensor::<f64>::ones(sb));
        for (name, result) in [
            (
                "triangular_solve",
                linalg::try_triangular_solve(&a, &b, lower),
            ),
            ("cholesky_solve", linalg::try_cholesky_solve(&a, &b)),
        ] {
            let message = result.expect_err("a shape error").to_string();
            assert!(
                message.starts_with(name)
                    && message.contains(&format!("{sa:?}"))
                    && message.contains(&format!("{sb:?}")),
                "{name} {sa:?} {sb:?}: {message}"
            );
        }
    }
    for shape in [&[3][..], &[2, 3], &[2, 3, 2]] {
        let message = linalg::try_cholesky(&Tensor::<f64>::ones(shape))
            .expect_err("a shape error")
            .to_string();
        assert!(
            message.starts_with("cholesky") && message.contains(&format!("{shape:?}")),
            "{message}"
        );
    }
}

#[test]
fn empty_matrices_and_batches_give_empty_results() {
    let l = linalg::cholesky(&Tensor::<f64>::zeros(&[2, 0, 0]));
    assert_eq!(l.shape(), &[2, 0, 0]);
    let l = linalg::cholesky(&Tensor::<f64>::zeros(&[0, 3, 3]));
    assert_eq!(l.shape(), &[0, 3, 3]);
    let x = linalg::cholesky_solve(&Tensor::<f64>::zeros(&[0, 0]), &Tensor::zeros(&[0, 4]));
    assert_eq!(x.shape(), &[0, 4]);
}
