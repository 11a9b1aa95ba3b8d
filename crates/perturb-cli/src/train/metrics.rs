//! The metrics of a trained model: accuracy, MSE and R^2.

use perturb::tensor::Tensor;
use perturb_nn::nn::Mlp;

use super::setup::Setup;
use super::Task;

/// The MSE and R^2 of predictions, as text; R^2 is "undefined" where the targets do not vary.
pub fn regression_metrics(pred: &[f64], y: &[f64]) -> (String, String) {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let sse: f64 = pred.iter().zip(y).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = y.iter().map(|t| (t - mean).powi(2)).sum();
    let r2 = if y.len() < 2 {
        "undefined (one row)".to_string()
    } else if !(sst > 0.0 && sst.is_finite()) {
        "undefined (the target is constant)".to_string()
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

/// Prints the metrics of the trained model on the training and the test part.
pub(super) fn report(setup: &Setup, model: &Mlp<f64>) -> Result<(), String> {
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
        assert_eq!(regression_metrics(&[1.0, 2.0], &[1.0, 2.0]).1, "1.0000");
    }
}
