//! The small linear-algebra functions of `perturb::tensor::linalg`: `trace`, `diagonal`,
//! `diag`, `eye`, `outer`, `vector_norm`, `matrix_norm` and `einsum`.
//!
//! One table row per function (and per interesting shape or spec, batched rows among them):
//! the forward column (`forward_support`) checks each row's JVP against central differences in
//! random directions and against its VJP, the batched column (stacks of tangents, cotangents
//! and inputs), and order two in every nesting (forward over reverse, reverse over forward,
//! forward over forward) of `f(x)^2`; f32 is checked against f64; a composition of them all
//! passes `check_grads` at order two, and `jacfwd` (the basis stack) agrees with `jacrev`. Then
//! exact values: the trace
//! of a known matrix, `diag` and `diagonal` round trips, `einsum` against a brute-force loop
//! over every index and against `matmul`, the norm and its first and second derivatives at
//! exactly 0, and the errors.

mod forward_support;

use forward_support::{check_first_order, check_second_order, Function};
use perturb::tensor::{
    check_grads, grad, hessian, jacfwd, jacrev, jvp, linalg, Array, CheckOptions, DualTensor,
    Element, Tensor, TensorFn, TensorTape,
};
use perturb::Error;

// ---- Helpers -------------------------------------------------------------------------------

/// Seeded random tensors: each draw `Tensor::rand_uniform` with the next seed.
struct Seeds(u64);

impl Seeds {
    fn tensor(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor<f64> {
        self.0 += 1;
        Tensor::rand_uniform(shape, lo, hi, self.0)
    }
}

fn t(values: &[f64], shape: &[usize]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), shape).unwrap()
}

fn assert_close(got: &Tensor<f64>, want: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}: shape");
    assert!(
        got.all_close(want, tol),
        "{what}: {:?} vs {:?}",
        got.to_vec(),
        want.to_vec()
    );
}

// ---- The table -------------------------------------------------------------------------------

/// One function with its arguments, applied to any array type.
#[derive(Clone, Copy, Debug)]
enum Case {
    Trace,
    Diagonal,
    Diag,
    Outer,
    VectorNorm,
    MatrixNorm,
    Einsum(&'static str),
}

impl Case {
    fn apply<A: Array>(&self, xs: &[&A]) -> Result<A, Error> {
        let x = xs[0];
        match *self {
            Case::Trace => linalg::try_trace(x),
            Case::Diagonal => linalg::try_diagonal(x),
            Case::Diag => linalg::try_diag(x),
            Case::Outer => linalg::try_outer(x, xs[1]),
            Case::VectorNorm => linalg::try_vector_norm(x),
            Case::MatrixNorm => linalg::try_matrix_norm(x),
            Case::Einsum(spec) => linalg::try_einsum(spec, xs),
        }
    }
}

struct Row {
    name: &'static str,
    case: Case,
    shapes: &'static [&'static [usize]],
    /// Relative tolerance of the finite-difference checks.
    tol: f64,
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    Row { name: "trace", case: Case::Trace, shapes: &[&[3, 3]], tol: 1e-8 },
    Row { name: "trace", case: Case::Trace, shapes: &[&[2, 3, 3]], tol: 1e-8 },
    Row { name: "trace", case: Case::Trace, shapes: &[&[2, 4]], tol: 1e-8 },
    Row { name: "diagonal", case: Case::Diagonal, shapes: &[&[3, 3]], tol: 1e-8 },
    Row { name: "diagonal", case: Case::Diagonal, shapes: &[&[3, 4]], tol: 1e-8 },
    Row { name: "diagonal", case: Case::Diagonal, shapes: &[&[2, 2, 4, 3]], tol: 1e-8 },
    Row { name: "diag", case: Case::Diag, shapes: &[&[3]], tol: 1e-8 },
    Row { name: "diag", case: Case::Diag, shapes: &[&[2, 3]], tol: 1e-8 },
    Row { name: "outer", case: Case::Outer, shapes: &[&[3], &[4]], tol: 1e-8 },
    Row { name: "outer", case: Case::Outer, shapes: &[&[2, 3], &[2, 4]], tol: 1e-8 },
    Row { name: "outer", case: Case::Outer, shapes: &[&[2, 1, 3], &[4, 2]], tol: 1e-8 },
    Row { name: "vector_norm", case: Case::VectorNorm, shapes: &[&[4]], tol: 1e-7 },
    Row { name: "vector_norm", case: Case::VectorNorm, shapes: &[&[2, 3, 4]], tol: 1e-7 },
    Row { name: "matrix_norm", case: Case::MatrixNorm, shapes: &[&[3, 4]], tol: 1e-7 },
    Row { name: "matrix_norm", case: Case::MatrixNorm, shapes: &[&[2, 3, 3]], tol: 1e-7 },
    Row { name: "einsum", case: Case::Einsum("ij,jk->ik"), shapes: &[&[3, 4], &[4, 2]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("bij,bjk->bik"), shapes: &[&[2, 3, 4], &[2, 4, 2]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("i,i->"), shapes: &[&[5], &[5]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ii->"), shapes: &[&[4, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ij->ji"), shapes: &[&[3, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ii->i"), shapes: &[&[3, 3]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("iji->j"), shapes: &[&[3, 2, 3]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ijk->ki"), shapes: &[&[2, 3, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("i,j->ij"), shapes: &[&[3], &[2]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ij,j->i"), shapes: &[&[3, 4], &[4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ijk,jl->lik"), shapes: &[&[2, 3, 2], &[3, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("bii,bj->jb"), shapes: &[&[2, 3, 3], &[2, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ab,bc->"), shapes: &[&[2, 3], &[3, 4]], tol: 1e-8 },
    Row { name: "einsum", case: Case::Einsum("ij,jk"), shapes: &[&[2, 3], &[3, 2]], tol: 1e-8 },
];

impl Row {
    fn inputs(&self, rng: &mut Seeds) -> Vec<Tensor<f64>> {
        self.shapes
            .iter()
            .map(|s| rng.tensor(s, -2.0, 2.0))
            .collect()
    }

    fn value(&self, xs: &[Tensor<f64>]) -> Tensor<f64> {
        let refs: Vec<&Tensor<f64>> = xs.iter().collect();
        self.case.apply(&refs).unwrap()
    }

    /// The value and the VJP of the row's function at `xs` with cotangent `u`, through a tape.
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
fn the_table_has_a_row_for_every_function() {
    let functions = [
        "trace",
        "diagonal",
        "diag",
        "outer",
        "vector_norm",
        "matrix_norm",
        "einsum",
    ];
    for f in functions {
        assert!(ROWS.iter().any(|r| r.name == f), "no row for {f}");
    }
    assert!(ROWS.iter().all(|r| functions.contains(&r.name)));
    // Every einsum spec the issue names has its row.
    for spec in ["ij,jk->ik", "bij,bjk->bik", "i,i->", "ii->", "ij->ji"] {
        assert!(
            ROWS.iter()
                .any(|r| matches!(r.case, Case::Einsum(s) if s == spec)),
            "no row for einsum {spec:?}"
        );
    }
}

/// A row's function, or its square (`squared`), for the forward-support checks.
struct RowFn {
    case: Case,
    squared: bool,
}

impl Function for RowFn {
    fn call<A: Array<Elem = f64>>(&self, xs: &[&A]) -> Result<A, Error> {
        let y = self.case.apply(xs)?;
        Ok(if self.squared { y.square() } else { y })
    }
}

#[test]
fn first_order_and_the_batched_column_match_central_differences_and_the_vjps() {
    let mut rng = Seeds(0x11a1_0001);
    for row in ROWS {
        for trial in 0..2 {
            let xs = row.inputs(&mut rng);
            let y = row.value(&xs);
            let u = rng.tensor(y.shape(), -1.0, 1.0);
            let vs: Vec<_> = xs
                .iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect();
            let what = format!("{} {:?} {:?} trial {trial}", row.name, row.case, row.shapes);
            let f = RowFn {
                case: row.case,
                squared: false,
            };
            check_first_order(&what, &f, &xs, &vec![true; xs.len()], &vs, &u, row.tol);
        }
    }
}

#[test]
fn second_order_in_every_nesting_matches_central_differences() {
    // Of f(x)^2: most of these functions are linear or bilinear, so squaring makes every
    // nesting differentiate each rule with a direction that depends on x.
    let mut rng = Seeds(0x11a1_0002);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let mut direction = || -> Vec<Tensor<f64>> {
            xs.iter()
                .map(|x| rng.tensor(x.shape(), -1.0, 1.0))
                .collect()
        };
        let (vs, zs) = (direction(), direction());
        let what = format!("{} {:?} {:?} squared", row.name, row.case, row.shapes);
        let f = RowFn {
            case: row.case,
            squared: true,
        };
        let active = vec![true; xs.len()];
        check_second_order(&what, &f, &xs, &active, &vs, &zs, &u, 1e-6);
        // The norms are not linear: their own second derivative too.
        if matches!(row.case, Case::VectorNorm | Case::MatrixNorm) {
            let f = RowFn {
                case: row.case,
                squared: false,
            };
            check_second_order(&what, &f, &xs, &active, &vs, &zs, &u, 1e-6);
        }
    }
}

#[test]
fn f32_agrees_with_f64() {
    let mut rng = Seeds(0x11a1_0003);
    for row in ROWS {
        let xs = row.inputs(&mut rng);
        let y = row.value(&xs);
        let u = rng.tensor(y.shape(), -1.0, 1.0);
        let (y64, ct64) = row.vjp(&xs, &u);
        let xs32: Vec<Tensor<f32>> = xs.iter().map(|x| x.cast()).collect();
        let (y32, ct32) = row.vjp(&xs32, &u.cast());
        // f32 carries about 7 digits (eps 1.2e-7); these functions sum at most a dozen terms
        // of size up to 4, so 1e-5 leaves room for rounding but not for a wrong rule.
        assert!(
            y32.all_close(&y64.cast(), 1e-5),
            "{} {:?}: value",
            row.name,
            row.case
        );
        for (a, b) in ct32.iter().zip(&ct64) {
            assert!(
                a.all_close(&b.cast(), 1e-5),
                "{} {:?}: vjp",
                row.name,
                row.case
            );
        }
    }
}

/// Every function at once, composed: `|diag(diagonal(X X^T))|_F + tr(outer(x0, x1)) + |X^T|`
/// summed, with `X` the `[3, 3]` input and `x0`, `x1` its rows (`einsum` for the products).
struct Composite;

impl TensorFn<f64> for Composite {
    fn call<A: Array<Elem = f64>>(&self, x: &A) -> Result<A, Error> {
        let gram = linalg::try_einsum("ij,kj->ik", &[x, x])?;
        let d = linalg::try_matrix_norm(&linalg::try_diag(&linalg::try_diagonal(&gram)?)?)?;
        let rows = |i| x.try_narrow(0, i, 1)?.try_squeeze(0);
        let tr = linalg::try_trace(&linalg::try_outer(&rows(0)?, &rows(1)?)?)?;
        let n = linalg::try_vector_norm(&linalg::try_einsum("ij->ji", &[x])?)?.sum_all();
        d.try_add(&tr)?.try_add(&n)
    }
}

#[test]
fn a_composition_of_every_function_passes_check_grads_at_order_two() {
    let x = Tensor::rand_uniform(&[3, 3], -1.0, 1.0, 42);
    let report = check_grads(&Composite, &x, &CheckOptions::default()).unwrap();
    assert!(report.passes(1e-6), "{report:?}");
}

#[test]
fn jacfwd_and_jacrev_agree_through_einsum_diagonal_and_the_norm() {
    // jacfwd pushes the identity basis (a stack stored by its diagonal) through every rule.
    let x = Tensor::rand_uniform(&[2, 3], -1.0, 1.0, 7);
    let fwd = jacfwd(einsum_then_norm, &x).unwrap();
    let rev = jacrev(|x| einsum_then_norm(x), &x).unwrap();
    assert_eq!(fwd.shape(), &[2, 2, 2, 3]);
    assert_close(&fwd, &rev, 1e-14, "jacfwd against jacrev");
}

/// `[vector_norm(x x^T), diagonal(x x^T)]` stacked: `[2, 2]` for an `x` of `[2, 3]`.
fn einsum_then_norm<A: Array>(x: &A) -> Result<A, Error> {
    let gram = linalg::try_einsum("ij,kj->ik", &[x, x])?;
    A::try_stack(
        &[
            &linalg::try_vector_norm(&gram)?,
            &linalg::try_diagonal(&gram)?,
        ],
        0,
    )
}

// ---- Exact values --------------------------------------------------------------------------

#[test]
fn trace_diagonal_diag_and_eye_on_known_matrices() {
    // [[1, 2, 3], [4, 5, 6], [7, 8, 9]]: trace 1 + 5 + 9 = 15.
    let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], &[3, 3]);
    assert_eq!(linalg::trace(&a).to_vec(), vec![15.0]);
    assert_eq!(linalg::trace(&a).shape(), &[] as &[usize]);
    assert_eq!(linalg::diagonal(&a).to_vec(), vec![1.0, 5.0, 9.0]);
    // A stack of two: the second is a - 10, trace 15 - 30.
    let stack = Tensor::stack(&[&a, &a.add_scalar(-10.0)], 0);
    assert_eq!(linalg::trace(&stack).to_vec(), vec![15.0, -15.0]);
    assert_eq!(
        linalg::diagonal(&stack).to_vec(),
        vec![1.0, 5.0, 9.0, -9.0, -5.0, -1.0]
    );
    // Non-square: [2, 3] has 2 diagonal entries, [3, 2] too.
    let wide = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(linalg::diagonal(&wide).to_vec(), vec![1.0, 5.0]);
    assert_eq!(linalg::diagonal(&wide.transpose()).to_vec(), vec![1.0, 5.0]);
    assert_eq!(linalg::trace(&wide).to_vec(), vec![6.0]);
    // diag puts the vector on the diagonal, zeros elsewhere.
    let d = linalg::diag(&t(&[1.0, -2.0, 3.0], &[3]));
    assert_eq!(
        d.to_vec(),
        vec![1.0, 0.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0, 3.0]
    );
    // The identity, f32 and f64, and an empty one.
    assert_eq!(
        linalg::eye::<f64>(3).to_vec(),
        linalg::diag(&Tensor::<f64>::ones(&[3])).to_vec()
    );
    assert_eq!(linalg::eye::<f32>(2).to_vec(), vec![1.0_f32, 0.0, 0.0, 1.0]);
    assert_eq!(linalg::eye::<f64>(0).shape(), &[0, 0]);
    assert_eq!(linalg::eye::<f64>(3).matmul(&a).to_vec(), a.to_vec());
    assert_eq!(linalg::trace(&linalg::eye::<f64>(4)).to_vec(), vec![4.0]);
}

#[test]
fn diag_and_diagonal_are_inverse_round_trips() {
    let mut rng = Seeds(0x11a1_0004);
    // diagonal(diag(v)) = v, for a vector and a stack of them.
    for shape in [&[4][..], &[2, 3, 5]] {
        let v = rng.tensor(shape, -1.0, 1.0);
        assert_eq!(linalg::diagonal(&linalg::diag(&v)).to_vec(), v.to_vec());
    }
    // diag(diagonal(M)) keeps M's diagonal and zeros the rest: M * I.
    let m = rng.tensor(&[2, 4, 4], -1.0, 1.0);
    let back = linalg::diag(&linalg::diagonal(&m));
    assert_eq!(back.to_vec(), m.mul(&linalg::eye(4)).to_vec());
    // Their gradients are each other: the VJP of diagonal puts the cotangent on a diagonal.
    let g = grad(
        |x| {
            Ok(linalg::try_diagonal(x)?
                .mul(&x.constant_like(&t(&[1.0, 2.0], &[2])))
                .sum_all())
        },
        &Tensor::zeros(&[2, 2]),
    )
    .unwrap();
    assert_eq!(g.to_vec(), vec![1.0, 0.0, 0.0, 2.0]);
}

#[test]
fn outer_on_known_vectors_and_broadcast_stacks() {
    let a = t(&[1.0, 2.0], &[2]);
    let b = t(&[3.0, 4.0, 5.0], &[3]);
    let o = linalg::outer(&a, &b);
    assert_eq!(o.shape(), &[2, 3]);
    assert_eq!(o.to_vec(), vec![3.0, 4.0, 5.0, 6.0, 8.0, 10.0]);
    // Against the matrix product of a column and a row.
    assert_eq!(o.to_vec(), a.unsqueeze(1).matmul(&b.unsqueeze(0)).to_vec());
    // A stack of two vectors against one vector: broadcast.
    let stack = t(&[1.0, 2.0, -1.0, 0.0], &[2, 2]);
    let so = linalg::outer(&stack, &b);
    assert_eq!(so.shape(), &[2, 2, 3]);
    assert_eq!(
        so.to_vec(),
        vec![3.0, 4.0, 5.0, 6.0, 8.0, 10.0, -3.0, -4.0, -5.0, 0.0, 0.0, 0.0]
    );
}

/// `einsum` by brute force: every assignment of indices to the letters, the operands'
/// entries multiplied and added into the result's entry. An independent reference for any
/// spec with an explicit result.
fn naive_einsum(spec: &str, xs: &[&Tensor<f64>]) -> Tensor<f64> {
    let (lhs, out) = spec.split_once("->").unwrap();
    let terms: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let out: Vec<char> = out.chars().collect();
    let mut letters: Vec<char> = terms.iter().flatten().copied().collect();
    letters.sort_unstable();
    letters.dedup();
    let size = |c: char| {
        for (term, x) in terms.iter().zip(xs) {
            if let Some(p) = term.iter().position(|&d| d == c) {
                return x.shape()[p];
            }
        }
        unreachable!()
    };
    let sizes: Vec<usize> = letters.iter().map(|&c| size(c)).collect();
    let out_shape: Vec<usize> = out.iter().map(|&c| size(c)).collect();
    let mut result = vec![0.0; out_shape.iter().product()];
    let mut index = vec![0usize; letters.len()];
    let of = |index: &[usize], c: char| index[letters.iter().position(|&d| d == c).unwrap()];
    let flat = |shape: &[usize], at: &[usize]| at.iter().zip(shape).fold(0, |f, (i, n)| f * n + i);
    loop {
        if sizes.iter().all(|&n| n > 0) {
            let mut product = 1.0;
            for (term, x) in terms.iter().zip(xs) {
                let at: Vec<usize> = term.iter().map(|&c| of(&index, c)).collect();
                product *= x.as_slice()[flat(x.shape(), &at)];
            }
            let at: Vec<usize> = out.iter().map(|&c| of(&index, c)).collect();
            result[flat(&out_shape, &at)] += product;
        }
        // The next assignment, the last letter fastest.
        let mut k = letters.len();
        loop {
            if k == 0 {
                return Tensor::from_vec(result, &out_shape).unwrap();
            }
            k -= 1;
            index[k] += 1;
            if index[k] < sizes[k] {
                break;
            }
            index[k] = 0;
        }
    }
}

#[test]
fn einsum_matches_a_brute_force_loop_and_matmul() {
    let mut rng = Seeds(0x11a1_0005);
    for row in ROWS {
        let Case::Einsum(spec) = row.case else {
            continue;
        };
        let xs = row.inputs(&mut rng);
        let refs: Vec<&Tensor<f64>> = xs.iter().collect();
        let got = linalg::einsum(spec, &refs);
        let explicit = if spec.contains("->") {
            spec.to_string()
        } else {
            format!("{spec}->ik") // the one implicit row: "ij,jk"
        };
        assert_close(&got, &naive_einsum(&explicit, &refs), 1e-13, spec);
    }
    // The named contractions against the operations they stand for.
    let a = rng.tensor(&[3, 4], -1.0, 1.0);
    let b = rng.tensor(&[4, 5], -1.0, 1.0);
    assert_close(
        &linalg::einsum("ij,jk->ik", &[&a, &b]),
        &a.matmul(&b),
        1e-14,
        "matmul",
    );
    let sa = rng.tensor(&[2, 3, 4], -1.0, 1.0);
    let sb = rng.tensor(&[2, 4, 5], -1.0, 1.0);
    assert_close(
        &linalg::einsum("bij,bjk->bik", &[&sa, &sb]),
        &sa.matmul(&sb),
        1e-14,
        "batched matmul",
    );
    let v = rng.tensor(&[6], -1.0, 1.0);
    assert_close(
        &linalg::einsum("i,i->", &[&v, &v]),
        &v.square().sum_all(),
        1e-14,
        "dot",
    );
    let s = rng.tensor(&[4, 4], -1.0, 1.0);
    assert_close(
        &linalg::einsum("ii->", &[&s]),
        &linalg::trace(&s),
        1e-15,
        "trace",
    );
    assert_eq!(
        linalg::einsum("ij->ji", &[&a]).to_vec(),
        a.transpose().to_vec()
    );
    assert_eq!(linalg::einsum("ij->ij", &[&a]).to_vec(), a.to_vec());
    // Spaces are ignored; the implicit result is the letters named once, in order.
    assert_close(
        &linalg::einsum(" ij , jk ", &[&a, &b]),
        &a.matmul(&b),
        1e-14,
        "implicit",
    );
    assert_eq!(
        linalg::einsum("ji", &[&a]).to_vec(),
        a.transpose().to_vec(),
        "implicit 'ji' is 'ji->ij', the transpose (as numpy)"
    );
    // A zero-length axis sums to zeros.
    let e = Tensor::<f64>::zeros(&[3, 0]);
    let f = Tensor::<f64>::zeros(&[0, 2]);
    assert_eq!(
        linalg::einsum("ij,jk->ik", &[&e, &f]).to_vec(),
        vec![0.0; 6]
    );
}

// ---- The norm at 0 and at the ends of the range ------------------------------------------

#[test]
fn the_norms_on_known_values_and_far_from_1() {
    assert_eq!(
        linalg::vector_norm(&t(&[3.0, 4.0], &[2])).to_vec(),
        vec![5.0]
    );
    let stack = t(&[3.0, 4.0, 0.0, 0.0, -5.0, 12.0], &[3, 2]);
    assert_eq!(linalg::vector_norm(&stack).to_vec(), vec![5.0, 0.0, 13.0]);
    // Frobenius: sqrt(1 + 4 + 4 + 16) = 5.
    let m = t(&[1.0, 2.0, 2.0, 4.0], &[2, 2]);
    assert_eq!(linalg::matrix_norm(&m).to_vec(), vec![5.0]);
    // An empty vector has norm 0.
    assert_eq!(
        linalg::vector_norm(&Tensor::<f64>::zeros(&[2, 0])).to_vec(),
        vec![0.0; 2]
    );
    // Scaled by the largest magnitude: no overflow at 1e200 (whose square is inf in f64) nor
    // underflow at 1e-200 (whose square is 0), nor in f32 at 1e30 / 1e-30.
    let big = linalg::vector_norm(&t(&[3e200, 4e200], &[2])).to_vec()[0];
    assert!((big / 5e200 - 1.0).abs() < 1e-15, "{big}");
    let small = linalg::vector_norm(&t(&[3e-200, 4e-200], &[2])).to_vec()[0];
    assert!((small / 5e-200 - 1.0).abs() < 1e-15, "{small}");
    let big32 = linalg::vector_norm(&Tensor::vector(&[3e30_f32, 4e30])).to_vec()[0];
    assert!((big32 / 5e30 - 1.0).abs() < 1e-6, "{big32}");
    let small32 = linalg::vector_norm(&Tensor::vector(&[3e-30_f32, 4e-30])).to_vec()[0];
    assert!((small32 / 5e-30 - 1.0).abs() < 1e-6, "{small32}");
    // NaN passes through; an infinity gives infinity.
    assert!(linalg::vector_norm(&t(&[1.0, f64::NAN], &[2])).to_vec()[0].is_nan());
    assert_eq!(
        linalg::vector_norm(&t(&[1.0, f64::INFINITY], &[2])).to_vec(),
        vec![f64::INFINITY]
    );
    // The gradient x / |x| stays exact at 1e-200, where |x|^2 is 0.
    let g = grad(|x| linalg::try_vector_norm(x), &t(&[3e-200, 4e-200], &[2])).unwrap();
    assert_close(&g, &t(&[0.6, 0.8], &[2]), 1e-15, "gradient at 1e-200");
}

/// `vector_norm` (`trailing` 1) or `matrix_norm` (2).
fn norm<A: Array>(trailing: usize, x: &A) -> Result<A, Error> {
    if trailing == 1 {
        linalg::try_vector_norm(x)
    } else {
        linalg::try_matrix_norm(x)
    }
}

#[test]
fn the_norms_have_derivative_0_at_0_at_first_and_second_order() {
    // The chosen values (the subgradient 0 at the origin, and 0 for the second derivative
    // there): every mode, every nesting, finite and exactly 0.
    for (trailing, shape) in [(1, &[3][..]), (2, &[2, 3][..])] {
        let zero = Tensor::<f64>::zeros(shape);
        let dir = Tensor::<f64>::ones(shape);
        assert_eq!(norm(trailing, &zero).unwrap().to_vec(), vec![0.0]);
        // Reverse mode.
        let g = grad(|x| norm(trailing, x), &zero).unwrap();
        assert_eq!(g.to_vec(), vec![0.0; zero.len()], "gradient at 0");
        // Forward mode.
        let (_, d) = jvp(|x| norm(trailing, x), &zero, &dir).unwrap();
        assert_eq!(d.to_vec(), vec![0.0], "JVP at 0");
        // The Hessian (forward over reverse, batched) ...
        let h = hessian(|x| norm(trailing, x), &zero).unwrap();
        assert_eq!(
            h.to_vec(),
            vec![0.0; zero.len() * zero.len()],
            "Hessian at 0"
        );
        // ... forward over forward ...
        let (_, d2) = jvp(
            |x: &DualTensor<Tensor<f64>>| {
                Ok(jvp(|y| norm(trailing, y), x, &DualTensor::lift(dir.clone()))?.1)
            },
            &zero,
            &dir,
        )
        .unwrap();
        assert_eq!(d2.to_vec(), vec![0.0], "forward over forward at 0");
        // ... and reverse over reverse: the gradient of <grad |x|, dir>.
        let tape = TensorTape::new();
        let x = tape.var(zero.clone());
        let outer = TensorTape::<perturb::tensor::TensorVar<Tensor<f64>>>::over();
        let xo = outer.var(x.clone());
        let g = outer
            .gradient(&norm(trailing, &xo).unwrap(), &[&xo])
            .unwrap();
        let along = g[0].mul(&tape.constant(dir.clone())).sum_all();
        let hv = tape.gradient(&along, &[&x]).unwrap();
        assert_eq!(
            hv[0].to_vec(),
            vec![0.0; zero.len()],
            "reverse over reverse at 0"
        );
    }
    // One member of a stack at 0, the other not: each gets its own derivative.
    let x = t(&[0.0, 0.0, 3.0, 4.0], &[2, 2]);
    let g = grad(|x| Ok(linalg::try_vector_norm(x)?.sum_all()), &x).unwrap();
    assert_close(&g, &t(&[0.0, 0.0, 0.6, 0.8], &[2, 2]), 1e-15, "a stack");
    assert_eq!(&g.to_vec()[..2], &[0.0, 0.0]);
    // Through a composition: |x - y| at x = y (a distance), gradient 0 rather than NaN.
    let y = t(&[1.0, 2.0, 3.0], &[3]);
    let g = grad(
        |x| linalg::try_vector_norm(&x.sub(&x.constant_like(&y))),
        &y,
    )
    .unwrap();
    assert_eq!(g.to_vec(), vec![0.0; 3]);
}

// ---- Errors --------------------------------------------------------------------------------

fn message<A>(r: Result<A, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_shapes_are_errors_naming_the_function_and_the_shapes() {
    let v = Tensor::<f64>::zeros(&[3]);
    let s = Tensor::<f64>::scalar(1.0);
    for (what, m) in [
        ("trace", message(linalg::try_trace(&v))),
        ("diagonal", message(linalg::try_diagonal(&v))),
        ("diag", message(linalg::try_diag(&s))),
        ("outer", message(linalg::try_outer(&v, &s))),
        ("norm", message(linalg::try_vector_norm(&s))),
        ("norm", message(linalg::try_matrix_norm(&v))),
    ] {
        assert!(m.starts_with(what), "{what}: {m}");
    }
    assert!(message(linalg::try_trace(&v)).contains("[3]"));
    assert!(message(linalg::try_matrix_norm(&v)).contains("[3]"));
    // Leading axes that do not broadcast: both shapes named.
    let m = message(linalg::try_outer(
        &Tensor::<f64>::zeros(&[2, 3]),
        &Tensor::<f64>::zeros(&[4, 3]),
    ));
    assert!(
        m.contains("outer") && m.contains("[2, 3]") && m.contains("[4, 3]"),
        "{m}"
    );
    assert!(message(linalg::try_eye::<f64>(usize::MAX)).contains("eye"));
    // Through tape variables too.
    let tape = TensorTape::new();
    assert!(linalg::try_trace(&tape.var(v.clone())).is_err());
}

#[test]
fn bad_einsum_specs_are_errors_naming_the_spec_and_the_shapes() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let b = Tensor::<f64>::zeros(&[4, 2]);
    let cases: [(&str, Vec<&Tensor<f64>>, &str); 10] = [
        ("ij,jk->ik", vec![&a], "2 operand terms for 1 operands"),
        (
            "ij,jk,kl->il",
            vec![&a, &a, &a],
            "one or two operands, got 3",
        ),
        (
            "ijk->i",
            vec![&a],
            "term 0 has 3 letters for an operand with 2 axes",
        ),
        ("ij,jk->ik", vec![&a, &b], "axis 'j' has lengths 3 and 4"),
        ("ii->i", vec![&a], "axis 'i' has lengths 2 and 3"),
        ("ij->iz", vec![&a], "axis 'z' is on no operand"),
        ("ij->ii", vec![&a], "names axis 'i' twice"),
        ("i1->i", vec![&a], "'1' is not a letter"),
        ("...ij->ij", vec![&a], "ellipsis"),
        ("ij->i->j", vec![&a], "'-' is not a letter"),
    ];
    for (spec, ops, reason) in cases {
        let m = message(linalg::try_einsum(spec, &ops));
        assert!(m.starts_with("einsum"), "{spec}: {m}");
        assert!(m.contains(reason), "{spec}: {m}");
        assert!(m.contains(&format!("{spec:?}")), "{spec}: {m}");
        assert!(m.contains("[2, 3]"), "{spec}: {m}");
    }
    assert!(linalg::try_einsum::<Tensor<f64>>("", &[]).is_err());
}

#[test]
#[should_panic(expected = "einsum")]
fn the_panicking_form_panics_with_the_error() {
    let a = Tensor::<f64>::zeros(&[2, 3]);
    let _ = linalg::einsum("ii->", &[&a]);
}

#[test]
#[should_panic(expected = "trace")]
fn the_panicking_trace_panics_with_the_error() {
    let _ = linalg::trace(&Tensor::<f64>::zeros(&[3]));
}
