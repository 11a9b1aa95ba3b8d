//! `einsum`: Einstein summation over one or two operands, lowered to existing operations
//! (diagonal, sum over axes, permute, reshape, the matrix product), so its derivatives at
//! every order and its batching come from theirs.

use std::collections::HashMap;

use super::basic::try_diagonal;
use crate::error::Error;
use crate::tensor::array::or_panic;
use crate::tensor::dense::element_count;
use crate::tensor::Array;

/// Einstein summation, as `numpy.einsum` / `jnp.einsum` for one or two operands:
/// `spec` names each operand's axes by a letter (`"ij,jk->ik"`), and the letters after `->`
/// the result's axes, in order.
///
/// - A letter repeated on one operand takes the diagonal over those axes (`"ii->i"`).
/// - A letter absent from the result is summed over (`"ii->"`, the trace).
/// - A letter on both operands multiplies them along that axis: kept if it is in the result
///   (a batch axis, `"bij,bjk->bik"`), else contracted (`"i,i->"`, `"ij,jk->ik"`).
///
/// Without `->` the result has the letters that appear exactly once, in alphabetical order
/// (`"ij,jk"` is `"ij,jk->ik"`), as in numpy. Letters are ASCII `a-z` and `A-Z`; an axis
/// named twice must have one length (no broadcasting), and there is no ellipsis (`...`).
///
/// Lowered to operations perturb differentiates: the diagonals, a sum over the letters only
/// one operand has and the result has not, then one (batched) matrix product
/// `[batch, left, contracted] @ [batch, contracted, right]` between permutes and reshapes.
///
/// An error names `einsum`, the spec and the operands' shapes for a spec that cannot be
/// parsed, a number of operands other than the spec's (or than one or two), a term whose
/// number of letters is not its operand's number of axes, a result letter that is repeated
/// or on no operand, one letter given two lengths, and a result with more elements than a
/// tensor can hold.
///
/// ```
/// use perturb::tensor::{linalg, Array, Tensor};
/// let a = Tensor::from_vec(vec![1.0_f64, 2.0, 3.0, 4.0], &[2, 2]).unwrap();
/// let b = Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0], &[2, 2]).unwrap();
/// let ab = linalg::try_einsum("ij,jk->ik", &[&a, &b]).unwrap();
/// assert_eq!(ab.to_vec(), a.matmul(&b).to_vec());
/// assert_eq!(linalg::try_einsum("ii->", &[&a]).unwrap().to_vec(), vec![5.0]);
/// assert_eq!(linalg::try_einsum("ij->ji", &[&a]).unwrap().to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
/// assert!(linalg::try_einsum("ij,jk->ik", &[&a]).is_err()); // one operand for two terms
/// ```
#[track_caller]
pub fn try_einsum<A: Array>(spec: &str, operands: &[&A]) -> Result<A, Error> {
    let fail = |why: String| {
        let shapes: Vec<&[usize]> = operands.iter().map(|x| x.shape()).collect();
        // A long spec is shown by its start: the message stays readable.
        const SHOWN: usize = 80;
        let count = spec.chars().count();
        let shown = if count > SHOWN {
            let start: String = spec.chars().take(SHOWN).collect();
            format!("{start:?}... ({count} characters)")
        } else {
            format!("{spec:?}")
        };
        Error::InvalidArgument {
            op: "einsum",
            reason: format!("{why} (spec {shown}, operand shapes {shapes:?})"),
        }
    };
    let parsed = Spec::parse(spec, operands).map_err(fail)?;
    let out_shape: Vec<usize> = parsed.output.iter().map(|c| parsed.sizes[c]).collect();
    element_count("einsum", &out_shape).map_err(|e| match e {
        Error::InvalidArgument { reason, .. } => fail(format!("the result's {reason}")),
        other => other,
    })?;
    // With an empty axis on an operand, each entry of the result is a sum over nothing (or
    // there is none): zeros, made without the lowering, whose intermediates can be far larger
    // than the operands and the result (the sum of `[0, 2^40]` over its first axis is 2^40
    // zeros, for a result `[2^40, 0]`).
    if let Some(empty) = operands.iter().find(|x| x.shape().contains(&0)) {
        return empty.try_sum_to(&[])?.try_broadcast_to(&out_shape);
    }
    // Each operand with its diagonals taken, then the letters it alone has and the result
    // has not summed over.
    let mut terms = Vec::with_capacity(operands.len());
    for (k, (x, letters)) in operands.iter().zip(&parsed.inputs).enumerate() {
        let (x, letters) = diagonals((*x).clone(), letters.clone())?;
        let elsewhere = |c: &char| {
            parsed.output.contains(c)
                || parsed
                    .inputs
                    .iter()
                    .enumerate()
                    .any(|(j, other)| j != k && other.contains(c))
        };
        let summed: Vec<usize> = (0..letters.len())
            .filter(|&i| !elsewhere(&letters[i]))
            .collect();
        let kept: Vec<char> = letters.iter().copied().filter(elsewhere).collect();
        let x = if summed.is_empty() {
            x
        } else {
            x.try_sum_axes(&summed, false)?
        };
        terms.push((x, kept));
    }
    let mut terms = terms.into_iter();
    let (a, la) = terms.next().ok_or_else(|| fail("no operand".to_string()))?;
    let Some((b, lb)) = terms.next() else {
        return permute_to(&a, &la, &parsed.output);
    };
    contract(&a, &la, &b, &lb, &parsed.output, &parsed.sizes)
}

/// See [`try_einsum`]; panics where it returns an error.
///
/// ```
/// use perturb::tensor::{linalg, Tensor};
/// let x = Tensor::vector(&[1.0_f64, 2.0, 3.0]);
/// assert_eq!(linalg::einsum("i,i->", &[&x, &x]).to_vec(), vec![14.0]);
/// // A stack of matrix products.
/// let a = Tensor::<f64>::ones(&[4, 2, 3]);
/// let b = Tensor::<f64>::ones(&[4, 3, 5]);
/// assert_eq!(linalg::einsum("bij,bjk->bik", &[&a, &b]).shape(), &[4, 2, 5]);
/// ```
#[track_caller]
pub fn einsum<A: Array>(spec: &str, operands: &[&A]) -> A {
    or_panic(try_einsum(spec, operands))
}

/// A parsed spec: each operand's letters, the result's, and each letter's length.
struct Spec {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
    sizes: HashMap<char, usize>,
}

impl Spec {
    /// Parses and checks `spec` against the operands' shapes; the error is the reason alone.
    fn parse<A: Array>(spec: &str, operands: &[&A]) -> Result<Spec, String> {
        let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
        let (lhs, rhs) = match spec.split_once("->") {
            Some((lhs, rhs)) => (lhs, Some(rhs)),
            None => (spec.as_str(), None),
        };
        let letters = |term: &str| -> Result<Vec<char>, String> {
            if term.contains('.') {
                return Err("the ellipsis (...) is not supported".to_string());
            }
            match term.chars().find(|c| !c.is_ascii_alphabetic()) {
                Some(c) => Err(format!("{c:?} is not a letter a-z or A-Z")),
                None => Ok(term.chars().collect()),
            }
        };
        let inputs = lhs.split(',').map(letters).collect::<Result<Vec<_>, _>>()?;
        if inputs.len() != operands.len() {
            return Err(format!(
                "the spec has {} operand terms for {} operands",
                inputs.len(),
                operands.len()
            ));
        }
        if !(1..=2).contains(&inputs.len()) {
            return Err(format!(
                "einsum takes one or two operands, got {}",
                inputs.len()
            ));
        }
        let mut sizes = HashMap::new();
        for (k, (term, x)) in inputs.iter().zip(operands).enumerate() {
            if term.len() != x.shape().len() {
                return Err(format!(
                    "term {k} has {} letters for an operand with {} axes",
                    term.len(),
                    x.shape().len()
                ));
            }
            for (&c, &n) in term.iter().zip(x.shape()) {
                let known = *sizes.entry(c).or_insert(n);
                if known != n {
                    return Err(format!("axis {c:?} has lengths {known} and {n}"));
                }
            }
        }
        let output = match rhs {
            Some(rhs) => letters(rhs)?,
            None => {
                let mut once: Vec<char> = sizes
                    .keys()
                    .copied()
                    .filter(|c| inputs.iter().flatten().filter(|d| *d == c).count() == 1)
                    .collect();
                once.sort_unstable();
                once
            }
        };
        for (i, c) in output.iter().enumerate() {
            if output[..i].contains(c) {
                return Err(format!("the result names axis {c:?} twice"));
            }
            if !sizes.contains_key(c) {
                return Err(format!("the result's axis {c:?} is on no operand"));
            }
        }
        Ok(Spec {
            inputs,
            output,
            sizes,
        })
    }
}

/// `x` with each letter repeated in `letters` reduced to the diagonal over its axes: the two
/// axes moved last and replaced by their diagonal, until every letter is named once.
fn diagonals<A: Array>(mut x: A, mut letters: Vec<char>) -> Result<(A, Vec<char>), Error> {
    while let Some((p, q)) = repeated(&letters) {
        let rest: Vec<usize> = (0..letters.len()).filter(|&i| i != p && i != q).collect();
        let perm: Vec<usize> = rest.iter().copied().chain([p, q]).collect();
        x = try_diagonal(&x.try_permute(&perm)?)?;
        let c = letters[p];
        letters = rest.iter().map(|&i| letters[i]).chain([c]).collect();
    }
    Ok((x, letters))
}

/// The first two positions that hold the same letter.
fn repeated(letters: &[char]) -> Option<(usize, usize)> {
    (0..letters.len()).find_map(|q| {
        letters[..q]
            .iter()
            .position(|&c| c == letters[q])
            .map(|p| (p, q))
    })
}

/// `x`, whose axes are named `from`, with its axes put in the order `to` (the same letters).
fn permute_to<A: Array>(x: &A, from: &[char], to: &[char]) -> Result<A, Error> {
    let perm: Vec<usize> = to
        .iter()
        .map(|c| from.iter().position(|d| d == c).unwrap_or(usize::MAX))
        .collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x.clone());
    }
    x.try_permute(&perm)
}

/// The product of two operands whose letters are each named once and each on the other
/// operand or the result: one matrix product
/// `[batch, left, contracted] @ [batch, contracted, right]`, then the result's order.
fn contract<A: Array>(
    a: &A,
    la: &[char],
    b: &A,
    lb: &[char],
    output: &[char],
    sizes: &HashMap<char, usize>,
) -> Result<A, Error> {
    let batch: Vec<char> = output
        .iter()
        .copied()
        .filter(|c| la.contains(c) && lb.contains(c))
        .collect();
    let contracted: Vec<char> = la
        .iter()
        .copied()
        .filter(|c| lb.contains(c) && !output.contains(c))
        .collect();
    let left: Vec<char> = la.iter().copied().filter(|c| !lb.contains(c)).collect();
    let right: Vec<char> = lb.iter().copied().filter(|c| !la.contains(c)).collect();
    let size = |letters: &[char]| letters.iter().map(|c| sizes[c]).product::<usize>();
    let (nb, nl, nc, nr) = (size(&batch), size(&left), size(&contracted), size(&right));
    let order = |parts: [&[char]; 3]| parts.concat();
    let a_order = order([&batch, &left, &contracted]);
    let b_order = order([&batch, &contracted, &right]);
    let (a_shape, b_shape) = if batch.is_empty() {
        (vec![nl, nc], vec![nc, nr])
    } else {
        (vec![nb, nl, nc], vec![nb, nc, nr])
    };
    let a = permute_to(a, la, &a_order)?.try_reshape(&a_shape)?;
    let b = permute_to(b, lb, &b_order)?.try_reshape(&b_shape)?;
    let product_letters = order([&batch, &left, &right]);
    let product_shape: Vec<usize> = product_letters.iter().map(|c| sizes[c]).collect();
    let product = a.try_matmul(&b)?.try_reshape(&product_shape)?;
    permute_to(&product, &product_letters, output)
}
