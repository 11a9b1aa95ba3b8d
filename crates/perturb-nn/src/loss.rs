//! Loss functions, generic over [`Array`] (plain tensors or tape variables), each returning a
//! 0-dimensional array.
//!
//! ```
//! use perturb::tensor::{Array, Tensor, TensorTape};
//! use perturb_nn::loss::{logistic_nll, Reduction};
//!
//! let tape = TensorTape::new();
//! let z = tape.var(Tensor::vector(&[0.0_f64, 0.0]));
//! let y = tape.constant(Tensor::vector(&[1.0, 0.0]));
//! let loss = logistic_nll(&z, &y, Reduction::Sum).unwrap();
//! // -log sigmoid(0) twice = 2 ln 2
//! assert!((loss.value().to_vec()[0] - 2.0 * 2.0_f64.ln()).abs() < 1e-15);
//! // d/dz -log sigmoid(s z) = -s sigmoid(-s z) = -s / 2 at z = 0, with s = 2y - 1
//! assert_eq!(tape.gradient(&loss, &[&z]).unwrap()[0].to_vec(), vec![-0.5, 0.5]);
//! ```

use crate::data::is_binary_label;
use perturb::tensor::{Array, Element, Tensor};
use perturb::Error;

/// How per-example losses are combined into one number.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::{mse, Reduction};
/// let (p, t) = (Tensor::vector(&[1.0_f64, 3.0]), Tensor::vector(&[0.0, 0.0]));
/// assert_eq!(mse(&p, &t, Reduction::Sum).unwrap().to_vec(), vec![10.0]);
/// assert_eq!(mse(&p, &t, Reduction::Mean).unwrap().to_vec(), vec![5.0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// The sum over all elements (the lecture's convention).
    Sum,
    /// The mean over all elements (for the softmax cross-entropy: over the examples).
    Mean,
}

/// An error unless `a` and `b` (named `names`) have the same shape; with a hint to reshape when
/// one is an `(n, 1)` column and the other an `(n)` vector.
fn same_shape<A: Array>(
    op: &'static str,
    (a, b): (&A, &A),
    names: (&str, &str),
) -> Result<(), Error> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa == sb {
        return Ok(());
    }
    let column_vs_vector = |x: &[usize], y: &[usize]| x.len() == 2 && x[1] == 1 && y == [x[0]];
    let hint = if column_vs_vector(sa, sb) || column_vs_vector(sb, sa) {
        " (one is a column, the other a vector: reshape one to the other's shape)"
    } else {
        ""
    };
    Err(Error::InvalidArgument {
        op,
        reason: format!(
            "the {} have shape {sa:?} but the {} have shape {sb:?}; they must match{hint}",
            names.0, names.1
        ),
    })
}

fn as_f64<T: Element>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// Checks that every element of `values` satisfies `ok`; otherwise an error naming the first
/// one that does not (its value, row and, past 1-D, column) and `rule`, what it must be.
fn check_values<A: Array>(
    op: &'static str,
    what: &str,
    values: &A,
    ok: impl Fn(f64) -> bool,
    rule: &str,
) -> Result<(), Error> {
    let values = values.primal();
    let row_len = values.shape().iter().skip(1).product::<usize>().max(1);
    let bad = values
        .as_slice()
        .iter()
        .map(|&v| as_f64(v))
        .enumerate()
        .find(|&(_, v)| !ok(v));
    match bad {
        None => Ok(()),
        Some((i, v)) => {
            let place = if values.shape().len() > 1 && row_len > 1 {
                format!("row {}, column {}", i / row_len, i % row_len)
            } else {
                format!("row {}", i / row_len)
            };
            Err(Error::InvalidArgument {
                op,
                reason: format!("{what} {v} at {place} {rule}"),
            })
        }
    }
}

/// Checks that every label is 0 or 1 ([`is_binary_label`]), naming the first that is not.
fn check_binary<A: Array>(op: &'static str, labels: &A) -> Result<(), Error> {
    check_values(op, "label", labels, is_binary_label, "is not 0 or 1")
}

/// Sums `per_element` to a 0-d array, divided by `count` for [`Reduction::Mean`].
fn reduce<A: Array>(
    op: &'static str,
    per_element: &A,
    count: usize,
    reduction: Reduction,
) -> Result<A, Error> {
    let total = per_element.sum_all();
    match reduction {
        Reduction::Sum => Ok(total),
        Reduction::Mean if count == 0 => Err(Error::InvalidArgument {
            op,
            reason: "the mean of an empty batch is undefined".to_string(),
        }),
        Reduction::Mean => Ok(total.scale(A::elem(1.0 / count as f64))),
    }
}

/// The lecture's logistic negative log-likelihood from logits `z` and labels `y` in {0, 1}:
/// `-sum_i log sigmoid((2 y_i - 1) z_i)`, computed with the stable `log_sigmoid` (finite at
/// logits of +-800). `logits` and `labels` must have the same shape, and every label must be 0
/// or 1: an error names the first that is not (its value and row), since with `2 y - 1` a
/// label of 2 would silently act as a heavier 1 and a label of 0.5 would carry no gradient.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::{logistic_nll, Reduction};
/// let z = Tensor::vector(&[800.0_f64, -800.0]);
/// let y = Tensor::vector(&[0.0, 1.0]);
/// // both badly wrong: -log sigmoid(-800) = 800 each
/// assert_eq!(logistic_nll(&z, &y, Reduction::Sum).unwrap().to_vec(), vec![1600.0]);
/// assert!(logistic_nll(&z, &Tensor::vector(&[1.0]), Reduction::Sum).is_err());
/// let err = logistic_nll(&z, &Tensor::vector(&[1.0, 2.0]), Reduction::Sum).unwrap_err();
/// assert!(err.to_string().contains("label 2 at row 1"), "{err}");
/// ```
pub fn logistic_nll<A: Array>(logits: &A, labels: &A, reduction: Reduction) -> Result<A, Error> {
    let op = "logistic_nll";
    same_shape(op, (logits, labels), ("logits", "labels"))?;
    check_binary(op, labels)?;
    let sign = labels.scale(A::elem(2.0)).add_scalar(A::elem(-1.0));
    let per = logits.try_mul(&sign)?.log_sigmoid().neg();
    reduce(op, &per, logits.shape().iter().product(), reduction)
}

/// Binary cross-entropy from logits `z` and targets `t` in [0, 1]:
/// `-[t log sigmoid(z) + (1 - t) log sigmoid(-z)]` per element, stable for large `|z|`.
/// `logits` and `targets` must have the same shape; a target that is not in `[0, 1]` (or is
/// NaN) is an error naming it.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::{bce_with_logits, Reduction};
/// assert!(bce_with_logits(&Tensor::vector(&[0.0_f64]), &Tensor::vector(&[1.5]), Reduction::Sum).is_err());
/// let z = Tensor::vector(&[0.0_f64, 0.0]);
/// let t = Tensor::vector(&[1.0, 0.25]);
/// // at z = 0 every term is ln 2 whatever the target
/// let l = bce_with_logits(&z, &t, Reduction::Mean).unwrap().to_vec()[0];
/// assert!((l - 2.0_f64.ln()).abs() < 1e-15);
/// ```
pub fn bce_with_logits<A: Array>(
    logits: &A,
    targets: &A,
    reduction: Reduction,
) -> Result<A, Error> {
    let op = "bce_with_logits";
    same_shape(op, (logits, targets), ("logits", "targets"))?;
    let in_unit = |t: f64| (0.0..=1.0).contains(&t);
    check_values(op, "target", targets, in_unit, "is not in [0, 1]")?;
    let pos = targets.try_mul(&logits.log_sigmoid())?;
    let one_minus = targets.neg().add_scalar(A::elem(1.0));
    let neg = one_minus.try_mul(&logits.neg().log_sigmoid())?;
    let per = pos.try_add(&neg)?.neg();
    reduce(op, &per, logits.shape().iter().product(), reduction)
}

/// Softmax cross-entropy from logits of shape `(N, C)` and one class index per row:
/// `-sum_i log softmax(z_i)[label_i]` (or its mean over the `N` rows). An error if `logits`
/// is not 2-dimensional, `labels` does not have `N` entries, or a label is not below `C`.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::{softmax_cross_entropy, Reduction};
/// let z = Tensor::from_vec(vec![0.0_f64, 0.0, 0.0, 0.0], &[2, 2]).unwrap();
/// // uniform over 2 classes: ln 2 per row
/// let l = softmax_cross_entropy(&z, &[0, 1], Reduction::Sum).unwrap().to_vec()[0];
/// assert!((l - 2.0 * 2.0_f64.ln()).abs() < 1e-15);
/// assert!(softmax_cross_entropy(&z, &[0, 2], Reduction::Sum).is_err()); // class 2 of 2
/// let err = softmax_cross_entropy(&z, &[0], Reduction::Sum).unwrap_err().to_string();
/// assert!(err.contains("2 rows (shape [2, 2]) but there are 1 labels"), "{err}");
/// ```
pub fn softmax_cross_entropy<A: Array>(
    logits: &A,
    labels: &[usize],
    reduction: Reduction,
) -> Result<A, Error> {
    let op = "softmax_cross_entropy";
    let shape = logits.shape();
    if shape.len() != 2 {
        return Err(Error::InvalidArgument {
            op,
            reason: format!("logits must have shape (N, C), got {shape:?}"),
        });
    }
    let (n, c) = (shape[0], shape[1]);
    if labels.len() != n {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "the logits have {n} rows (shape {shape:?}) but there are {} labels; give one \
                 label per row",
                labels.len()
            ),
        });
    }
    if let Some((row, bad)) = labels.iter().enumerate().find(|(_, &l)| l >= c) {
        return Err(Error::InvalidArgument {
            op,
            reason: format!(
                "label {bad} at row {row} is out of range: the logits (shape {shape:?}) have \
                 {c} classes, 0 to {}",
                c.saturating_sub(1)
            ),
        });
    }
    let picked = logits
        .try_log_softmax(1)?
        .try_gather(1, labels.to_vec(), &[n, 1])?
        .neg();
    reduce(op, &picked, n, reduction)
}

/// Mean squared error's numerator and its mean: `sum (p - t)^2`, or that divided by the
/// number of elements. `predictions` and `targets` must have the same shape, and a target that
/// is not finite is an error naming it (NaN predictions, say from a diverging run, give a NaN
/// loss for the caller to see).
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::{mse, Reduction};
/// let p = Tensor::vector(&[1.0_f64, 2.0]);
/// assert_eq!(mse(&p, &Tensor::vector(&[0.0, 0.0]), Reduction::Mean).unwrap().to_vec(), vec![2.5]);
/// assert!(mse(&p, &Tensor::vector(&[0.0]), Reduction::Mean).is_err());
/// assert!(mse(&p, &Tensor::vector(&[0.0, f64::NAN]), Reduction::Mean).is_err());
/// ```
pub fn mse<A: Array>(predictions: &A, targets: &A, reduction: Reduction) -> Result<A, Error> {
    let op = "mse";
    same_shape(op, (predictions, targets), ("predictions", "targets"))?;
    check_values(op, "target", targets, f64::is_finite, "is not finite")?;
    let per = predictions.try_sub(targets)?.square();
    reduce(op, &per, predictions.shape().iter().product(), reduction)
}

/// The fraction of rows whose logit has the sign of its 0/1 label (logit > 0 predicts 1); for
/// monitoring binary classifiers. An error if the shapes differ, a label is not 0 or 1, or a
/// logit is NaN (it predicts nothing: counting it as class 0 would report the share of 0
/// labels as the accuracy of a broken model); NaN for an empty batch.
///
/// ```
/// use perturb::tensor::Tensor;
/// use perturb_nn::loss::binary_accuracy;
/// let z = Tensor::vector(&[2.0_f64, -1.0, 0.5]);
/// let y = Tensor::vector(&[1.0, 0.0, 0.0]);
/// assert_eq!(binary_accuracy(&z, &y).unwrap(), 2.0 / 3.0);
/// assert!(binary_accuracy(&z, &Tensor::vector(&[1.0, 2.0, 0.0])).is_err());
/// let nan = Tensor::vector(&[f64::NAN, 1.0, 1.0]);
/// assert!(binary_accuracy(&nan, &y).unwrap_err().to_string().contains("logit NaN at row 0"));
/// ```
pub fn binary_accuracy<T: Element>(logits: &Tensor<T>, labels: &Tensor<T>) -> Result<f64, Error> {
    let op = "binary_accuracy";
    same_shape(op, (logits, labels), ("logits", "labels"))?;
    check_binary(op, labels)?;
    check_values(op, "logit", logits, |z| !z.is_nan(), "predicts no class")?;
    let zero = T::zero();
    let half = T::from_f64(0.5).unwrap_or_else(T::nan);
    let correct = logits
        .as_slice()
        .iter()
        .zip(labels.as_slice())
        .filter(|(&z, &y)| (z > zero) == (y > half))
        .count();
    Ok(correct as f64 / logits.len() as f64)
}
