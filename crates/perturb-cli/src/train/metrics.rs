//! The metrics of a trained model: accuracy and the confusion matrix, MSE and R^2.

use std::collections::BTreeMap;

use crate::network::Network;
use perturb::tensor::Tensor;

use super::setup::Setup;
use super::Task;

/// The MSE and R^2 of predictions, as text; R^2 is "undefined" where the targets do not vary.
pub fn regression_metrics(pred: &[f64], y: &[f64]) -> (String, String) {
    let n = y.len().max(1) as f64;
    // The sum of finite targets can overflow, their mean cannot: then each is divided first.
    let sum = y.iter().sum::<f64>();
    let mean = if sum.is_finite() {
        sum / n
    } else {
        y.iter().map(|t| t / n).sum()
    };
    let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = y.iter().map(|t| (t - mean).powi(2)).sum();
    let r2 = if y.len() < 2 {
        "undefined (one row)".to_string()
    } else if sst == 0.0 {
        "undefined (the target is constant)".to_string()
    } else if !sst.is_finite() {
        "undefined (the target's spread overflows a 64-bit float)".to_string()
    } else {
        format!("{:.4}", 1.0 - sse / sst)
    };
    (format!("{:.4}", sse / n), r2)
}

/// The class one row of a classifier's outputs predicts: binary 1 where the logit is above 0
/// and 0 otherwise, multi-class the index of the largest output. NaN where an output
/// is NaN: it predicts no class (counting it as class 0 would report a broken model's share of
/// class 0 as its accuracy, and `predict` would print a class for it).
pub fn predicted_class(task: Task, row: &[f64]) -> f64 {
    if row.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    match task {
        Task::Binary => f64::from(u8::from(row[0] > 0.0)),
        _ => row
            .iter()
            .enumerate()
            .fold(0, |b, (i, &v)| if v > row[b] { i } else { b }) as f64,
    }
}

/// The share of rows whose predicted class ([`predicted_class`]) is the target.
pub(super) fn accuracy(task: Task, out: &Tensor<f64>, y: &Tensor<f64>) -> f64 {
    let width = out.shape().get(1).copied().unwrap_or(1).max(1);
    let correct = out
        .as_slice()
        .chunks(width)
        .zip(y.as_slice())
        .filter(|(row, &t)| predicted_class(task, row) == t)
        .count();
    correct as f64 / y.len().max(1) as f64
}

/// How a classifier's predictions fall against the targets: the rows of true class `t`
/// predicted as class `p`, for the classes `0..classes`. One extra row counts the targets that
/// are none of the classes and one extra column the rows predicted as no class (a NaN output);
/// each is shown only where it is not empty. Kept by the pairs that occur: a dense matrix of
/// 65 536 classes (which `--task multiclass` takes) would be 34 GB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    classes: usize,
    /// `(true, predicted)` to rows; `classes` stands for "other" (true) and "none" (predicted).
    counts: BTreeMap<(usize, usize), usize>,
}

/// The most classes a confusion matrix prints: all of them up to this many; for more, the
/// classes that occur as a target or a prediction, if they are no more than this.
const MAX_PRINTED_CLASSES: usize = 40;

impl Confusion {
    /// Counts the pairs of `predicted` classes (as [`predicted_class`] gives them) and `targets`.
    pub fn new(classes: usize, predicted: &[f64], targets: &[f64]) -> Confusion {
        let index = |v: f64| {
            let whole = v >= 0.0 && v.fract() == 0.0 && v < classes as f64;
            if whole {
                v as usize
            } else {
                classes
            }
        };
        let mut counts = BTreeMap::new();
        for (&p, &t) in predicted.iter().zip(targets) {
            *counts.entry((index(t), index(p))).or_insert(0) += 1;
        }
        Confusion { classes, counts }
    }

    /// The rows counted.
    pub fn rows(&self) -> usize {
        self.counts.values().sum()
    }

    /// The rows predicted as their target (the diagonal).
    pub fn correct(&self) -> usize {
        let k = self.classes;
        self.counts
            .iter()
            .filter(|(&(t, p), _)| t == p && t < k)
            .map(|(_, &n)| n)
            .sum()
    }

    /// The share of the rows predicted as their target (0 of no rows).
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.rows().max(1) as f64
    }

    /// The classes the matrix shows: all of them, or beyond [`MAX_PRINTED_CLASSES`] those
    /// that occur as a target or a prediction.
    fn shown(&self) -> Vec<usize> {
        let k = self.classes;
        if k <= MAX_PRINTED_CLASSES {
            return (0..k).collect();
        }
        let occurring: std::collections::BTreeSet<usize> = self
            .counts
            .keys()
            .flat_map(|&(t, p)| [t, p])
            .filter(|&c| c < k)
            .collect();
        occurring.into_iter().collect()
    }

    /// The matrix of the [`shown`](Self::shown) classes as rows of counts, with the extra row
    /// and column where they are not empty.
    pub fn matrix(&self) -> Vec<Vec<usize>> {
        let k = self.classes;
        let other_row = self.counts.keys().any(|&(t, _)| t == k);
        let none_column = self.counts.keys().any(|&(_, p)| p == k);
        let shown = self.shown();
        let rows = shown.iter().copied().chain(other_row.then_some(k));
        let columns: Vec<usize> = shown
            .iter()
            .copied()
            .chain(none_column.then_some(k))
            .collect();
        rows.map(|t| {
            columns
                .iter()
                .map(|&p| self.counts.get(&(t, p)).copied().unwrap_or(0))
                .collect()
        })
        .collect()
    }
}

impl std::fmt::Display for Confusion {
    /// The matrix, its columns aligned on the right:
    ///
    /// ```text
    /// confusion matrix (rows: the true class, columns: the predicted class):
    ///   true\pred   0   1
    ///           0  12   1
    ///           1   0   7
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = self.classes;
        let shown = self.shown();
        if shown.len() > MAX_PRINTED_CLASSES {
            return write!(
                f,
                "confusion matrix: not printed, {} of the {k} classes occur (at most \
                 {MAX_PRINTED_CLASSES} are printed)",
                shown.len()
            );
        }
        let matrix = self.matrix();
        let label = |i: usize, extra: &str| match shown.get(i) {
            Some(c) => c.to_string(),
            None => extra.to_string(),
        };
        let row_labels: Vec<String> = (0..matrix.len()).map(|i| label(i, "other")).collect();
        let columns = matrix.first().map_or(shown.len(), Vec::len);
        let column_labels: Vec<String> = (0..columns).map(|j| label(j, "none")).collect();
        let corner = "true\\pred";
        let first = row_labels
            .iter()
            .map(String::len)
            .chain([corner.len()])
            .max()
            .unwrap_or(0);
        let width = matrix
            .iter()
            .flatten()
            .map(|n| n.to_string().len())
            .chain(column_labels.iter().map(String::len))
            .max()
            .unwrap_or(1);
        writeln!(
            f,
            "confusion matrix (rows: the true class, columns: the predicted class):"
        )?;
        write!(f, "  {corner:>first$}")?;
        for c in &column_labels {
            write!(f, "  {c:>width$}")?;
        }
        for (label, row) in row_labels.iter().zip(&matrix) {
            write!(f, "\n  {label:>first$}")?;
            for n in row {
                write!(f, "  {n:>width$}")?;
            }
        }
        if shown.len() < k {
            write!(
                f,
                "\n  (the {} classes that occur, of {k}: every other row and column is 0)",
                shown.len()
            )?;
        }
        if self.counts.keys().any(|&(t, _)| t == k) {
            write!(
                f,
                "\n  (other: targets that are none of the classes 0..{})",
                k.saturating_sub(1)
            )?;
        }
        if self.counts.keys().any(|&(_, p)| p == k) {
            write!(
                f,
                "\n  (none: rows whose outputs are not numbers, no class predicted)"
            )?;
        }
        Ok(())
    }
}

/// Prints the metrics of the trained model on the training and the test part.
pub(super) fn report(setup: &Setup, model: &Network) -> Result<(), String> {
    let (task, (y_mean, y_std)) = (setup.task, setup.target_scale);
    println!(
        "trained. metrics on the training part ({} rows) and the held-out test part ({} rows):",
        setup.train.len(),
        setup.test.len()
    );
    for (name, part) in [("train", &setup.train), ("test", &setup.test)] {
        let out = model.predict(&part.x).map_err(|e| format!("train: {e}"))?;
        if task == Task::Regression {
            // The training targets were standardised: undo it for the metrics.
            let y: Vec<f64> = if name == "train" {
                part.y
                    .as_slice()
                    .iter()
                    .map(|v| v * y_std + y_mean)
                    .collect()
            } else {
                part.y.to_vec()
            };
            let pred: Vec<f64> = out.as_slice().iter().map(|p| p * y_std + y_mean).collect();
            let (mse, r2) = regression_metrics(&pred, &y);
            println!("  {name:<5}  MSE {mse}   R^2 {r2}");
        } else {
            let share = accuracy(task, &out, &part.y);
            println!("  {name:<5}  accuracy {:.2}%", 100.0 * share);
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_nan_output_predicts_no_class() {
        let (binary, multi) = (Task::Binary, Task::Multiclass);
        assert_eq!(predicted_class(binary, &[0.5]), 1.0);
        assert_eq!(predicted_class(binary, &[-0.5]), 0.0);
        assert_eq!(predicted_class(multi, &[0.1, 2.0, -1.0]), 1.0);
        assert_eq!(predicted_class(multi, &[0.5]), 0.0);
        // Both were class 0 (a NaN is never above 0, nor above the first output).
        assert!(predicted_class(binary, &[f64::NAN]).is_nan());
        assert!(predicted_class(multi, &[f64::NAN, 1.0, 2.0]).is_nan());
        let out = Tensor::from_vec(vec![f64::NAN, -1.0], &[2, 1]).unwrap();
        assert_eq!(accuracy(binary, &out, &Tensor::vector(&[0.0, 0.0])), 0.5);
    }

    #[test]
    fn r_squared_is_undefined_without_variation() {
        assert_eq!(
            regression_metrics(&[3.0, 3.0], &[3.25, 3.25]).1,
            "undefined (the target is constant)"
        );
        assert_eq!(regression_metrics(&[1.0], &[2.0]).1, "undefined (one row)");
        // Found by hunt 3: a target whose squares overflow was called constant.
        assert_eq!(
            regression_metrics(&[0.0, 0.0], &[1e200, -1e200]).1,
            "undefined (the target's spread overflows a 64-bit float)"
        );
        assert_eq!(
            regression_metrics(&[0.0, 0.0], &[1e308, 1e308]).1,
            "undefined (the target is constant)"
        );
        assert_eq!(regression_metrics(&[1.0, 2.0], &[1.0, 2.0]).1, "1.0000");
    }

    #[test]
    fn the_confusion_matrix_counts_true_against_predicted() {
        // Targets 0 0 1 2 2 2, predictions 0 1 1 2 0 2: by hand, row 0 = [1 1 0],
        // row 1 = [0 1 0], row 2 = [1 0 2]; 4 of 6 correct.
        let m = Confusion::new(
            3,
            &[0.0, 1.0, 1.0, 2.0, 0.0, 2.0],
            &[0.0, 0.0, 1.0, 2.0, 2.0, 2.0],
        );
        assert_eq!(
            m.matrix(),
            vec![vec![1, 1, 0], vec![0, 1, 0], vec![1, 0, 2]]
        );
        assert_eq!((m.rows(), m.correct()), (6, 4));
        assert_eq!(
            m.to_string(),
            "confusion matrix (rows: the true class, columns: the predicted class):\n\
             \x20 true\\pred  0  1  2\n\
             \x20         0  1  1  0\n\
             \x20         1  0  1  0\n\
             \x20         2  1  0  2"
        );
    }

    /// Found by hunt 3: the matrix was dense, `(classes + 1)^2` counts, so `perturb eval` of a
    /// model of 65 536 classes (which `--task multiclass` takes) asked for 34 GB and aborted
    /// (under a 4 GB limit, after 2.4 s). Now the pairs that occur are kept, and beyond 40
    /// classes the matrix shows those that occur.
    #[test]
    fn a_confusion_matrix_of_65536_classes_shows_the_classes_that_occur() {
        let m = Confusion::new(
            65_536,
            &[0.0, 0.0, 3.0, 65_535.0],
            &[0.0, 3.0, 3.0, 70_000.0],
        );
        assert_eq!((m.rows(), m.correct()), (4, 2));
        // Rows and columns 0, 3 and 65535 (a prediction), then the target 70000 as "other".
        assert_eq!(
            m.matrix(),
            vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 0, 0], vec![0, 0, 1]]
        );
        let text = m.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  true\\pred      0      3  65535", "{text}");
        assert_eq!(lines[5], "      other      0      0      1", "{text}");
        assert!(
            text.contains("the 3 classes that occur, of 65536"),
            "{text}"
        );
        // More classes occur than a matrix prints: a line says so.
        let many: Vec<f64> = (0..100).map(f64::from).collect();
        let m = Confusion::new(65_536, &many, &many);
        assert_eq!(m.accuracy(), 1.0);
        assert_eq!(
            m.to_string(),
            "confusion matrix: not printed, 100 of the 65536 classes occur (at most 40 are \
             printed)"
        );
    }

    #[test]
    fn the_confusion_matrix_shows_no_class_and_other_targets_apart() {
        // A NaN prediction is column "none"; a target 7 (not a class) is row "other"; counts
        // of two digits widen every column.
        let mut predicted = vec![0.0; 10];
        predicted.push(f64::NAN);
        predicted.push(1.0);
        let mut targets = vec![0.0; 10];
        targets.push(1.0);
        targets.push(7.0);
        let m = Confusion::new(2, &predicted, &targets);
        assert_eq!(
            m.matrix(),
            vec![vec![10, 0, 0], vec![0, 0, 1], vec![0, 1, 0]]
        );
        assert_eq!((m.rows(), m.correct()), (12, 10));
        let text = m.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  true\\pred     0     1  none");
        assert_eq!(lines[2], "          0    10     0     0");
        assert_eq!(lines[4], "      other     0     1     0");
        assert!(
            text.contains("none of the classes 0..1") && text.contains("no class"),
            "{text}"
        );
    }
}
