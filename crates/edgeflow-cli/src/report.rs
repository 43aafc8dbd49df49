//! Test-set figures shared by `train` and `evaluate`: loss, accuracy, per-class precision,
//! recall and F1 and the confusion matrix for classifiers; MSE and MAE beside the naive
//! forecast for regression models.

use anyhow::Result;
use edgeflow_data::ChannelStats;
use edgeflow_nn::{ConfusionMatrix, Dataset, Sequential};
use serde_json::{json, Value};

use crate::samples::Samples;

/// Precision, recall and F1 of one class (`None` where the ratio has no samples).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScores {
    /// Class name.
    pub class: String,
    /// Correct predictions of the class over all predictions of it.
    pub precision: Option<f64>,
    /// Correct predictions of the class over its samples.
    pub recall: Option<f64>,
    /// Harmonic mean of precision and recall.
    pub f1: Option<f64>,
    /// Samples of the class.
    pub support: u64,
}

/// Scores of every class from a confusion matrix.
pub fn class_scores(cm: &ConfusionMatrix, names: &[String]) -> Vec<ClassScores> {
    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
    (0..cm.classes)
        .map(|c| {
            let hits = cm.get(c, c);
            let support: u64 = (0..cm.classes).map(|p| cm.get(c, p)).sum();
            let predicted: u64 = (0..cm.classes).map(|t| cm.get(t, c)).sum();
            let precision = ratio(hits, predicted);
            let recall = ratio(hits, support);
            let f1 = match (precision, recall) {
                (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                (Some(_), Some(_)) => Some(0.0),
                _ => None,
            };
            ClassScores {
                class: names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect()
}

/// The class whose precision, recall and F1 a two-class model reports: `spam` when there is
/// one, else the second class (label 1, the positive class of a binary problem).
pub fn positive_class(names: &[String]) -> Option<usize> {
    if names.len() != 2 {
        return None;
    }
    Some(names.iter().position(|n| n == "spam").unwrap_or(1))
}

/// Figures of a classifier on a test set.
#[derive(Debug, Clone)]
pub struct ClassificationReport {
    /// Mean loss.
    pub loss: f64,
    /// Accuracy, when compiled with it.
    pub accuracy: Option<f64>,
    /// Samples evaluated.
    pub samples: usize,
    /// Class names in label order.
    pub names: Vec<String>,
    /// The confusion matrix (sparse labels only).
    pub confusion: Option<ConfusionMatrix>,
}

impl ClassificationReport {
    /// Evaluates `model` on `data`.
    ///
    /// # Errors
    /// Evaluation errors.
    pub fn evaluate(
        model: &Sequential,
        data: &dyn Dataset,
        batch_size: usize,
        names: &[String],
    ) -> Result<Self> {
        let eval = model.evaluate(data, batch_size)?;
        Ok(ClassificationReport {
            loss: eval.loss,
            accuracy: eval.metric("accuracy"),
            samples: eval.samples,
            names: names.to_vec(),
            confusion: eval.confusion,
        })
    }

    /// Scores of every class.
    pub fn scores(&self) -> Vec<ClassScores> {
        self.confusion
            .as_ref()
            .map(|cm| class_scores(cm, &self.names))
            .unwrap_or_default()
    }

    /// The positive class's scores, for a two-class model.
    pub fn positive(&self) -> Option<ClassScores> {
        positive_class(&self.names).and_then(|i| self.scores().into_iter().nth(i))
    }

    /// `{"loss", "accuracy", "samples"}`, plus `positive_class`, `precision`, `recall` and
    /// `f1` for a two-class model.
    pub fn json(&self) -> Value {
        let mut doc = json!({
            "loss": self.loss,
            "accuracy": self.accuracy,
            "samples": self.samples,
        });
        if let Some(p) = self.positive() {
            doc["positive_class"] = json!(p.class);
            doc["precision"] = json!(p.precision);
            doc["recall"] = json!(p.recall);
            doc["f1"] = json!(p.f1);
        }
        doc
    }

    /// One line: loss, accuracy and the positive class's scores.
    pub fn summary_line(&self) -> String {
        let mut line = format!("loss {:.4}", self.loss);
        if let Some(a) = self.accuracy {
            line.push_str(&format!(", accuracy {a:.4}"));
        }
        if let Some(p) = self.positive() {
            line.push_str(&format!(
                ", {} precision {} recall {} F1 {}",
                p.class,
                fmt4(p.precision),
                fmt4(p.recall),
                fmt4(p.f1)
            ));
        }
        line
    }
}

/// `0.1234`, or `-` for a missing value.
pub fn fmt4(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Figures of a forecasting model on a test set, in the data file's units (the model works
/// in standardised units; errors are scaled back by each channel's std).
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionReport {
    /// Mean loss, in standardised units.
    pub loss: f64,
    /// Mean squared error, data units.
    pub mse: f64,
    /// Mean absolute error, data units.
    pub mae: f64,
    /// MSE of the naive forecast (the last input step repeated), data units.
    pub naive_mse: f64,
    /// MAE of the naive forecast, data units.
    pub naive_mae: f64,
    /// MAE in standardised units (what the model sees).
    pub mae_standardized: f64,
    /// Samples evaluated.
    pub samples: usize,
}

/// (MSE, MAE) of `pred` against `target`, both `[n, outputs]` flattened, each difference
/// scaled by `scale[j % channels]`.
fn errors(pred: &[f32], target: &[f32], scale: &[f32]) -> (f64, f64) {
    let ch = scale.len().max(1);
    let (mut sq, mut abs) = (0.0f64, 0.0f64);
    for (j, (&p, &t)) in pred.iter().zip(target).enumerate() {
        let d = f64::from(p - t) * f64::from(scale.get(j % ch).copied().unwrap_or(1.0));
        sq += d * d;
        abs += d.abs();
    }
    let n = pred.len().max(1) as f64;
    (sq / n, abs / n)
}

impl RegressionReport {
    /// Evaluates `model` on `samples` (whose `naive` must be set).
    ///
    /// # Errors
    /// Evaluation errors; samples without a naive forecast.
    pub fn evaluate(
        model: &Sequential,
        samples: &Samples,
        batch_size: usize,
        stats: Option<&ChannelStats>,
    ) -> Result<Self> {
        let eval = model.evaluate(samples, batch_size)?;
        let pred = model.predict(&samples.x, batch_size)?.to_vec_f32()?;
        let target = samples.y.to_vec_f32()?;
        let naive = samples
            .naive
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no naive forecast for these samples"))?
            .to_vec_f32()?;
        let scale = stats.map_or(vec![1.0], |s| s.std.clone());
        let (mse, mae) = errors(&pred, &target, &scale);
        let (naive_mse, naive_mae) = errors(&naive, &target, &scale);
        let (_, mae_standardized) = errors(&pred, &target, &[1.0]);
        Ok(RegressionReport {
            loss: eval.loss,
            mse,
            mae,
            naive_mse,
            naive_mae,
            mae_standardized,
            samples: eval.samples,
        })
    }

    /// Every figure, by name.
    pub fn json(&self) -> Value {
        json!({
            "loss": self.loss,
            "mse": self.mse,
            "mae": self.mae,
            "naive_mse": self.naive_mse,
            "naive_mae": self.naive_mae,
            "mae_standardized": self.mae_standardized,
            "samples": self.samples,
        })
    }

    /// One line: MSE and MAE beside the naive forecast's.
    pub fn summary_line(&self) -> String {
        format!(
            "loss {:.4}, MSE {:.4}, MAE {:.4} (naive forecast, repeating the last input step: \
             MSE {:.4}, MAE {:.4})",
            self.loss, self.mse, self.mae, self.naive_mse, self.naive_mae
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_recall_f1_from_the_confusion_matrix() {
        let mut cm = ConfusionMatrix::new(2);
        // truth ham: 8 right, 2 called spam; truth spam: 3 right, 1 called ham.
        for (t, p, n) in [(0, 0, 8), (0, 1, 2), (1, 1, 3), (1, 0, 1)] {
            (0..n).for_each(|_| cm.add(t, p));
        }
        let names = ["ham".to_string(), "spam".to_string()];
        let s = class_scores(&cm, &names);
        assert_eq!(s[1].precision, Some(3.0 / 5.0));
        assert_eq!(s[1].recall, Some(3.0 / 4.0));
        let f1 = s[1].f1.unwrap();
        assert!((f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert_eq!(s[0].support, 10);
        assert_eq!(positive_class(&names), Some(1));
        assert_eq!(
            positive_class(&["spam".to_string(), "ham".to_string()]),
            Some(0)
        );
        assert_eq!(positive_class(&names[..1]), None);
    }

    #[test]
    fn errors_are_scaled_per_channel() {
        let (mse, mae) = errors(&[1.0, 2.0], &[0.0, 0.0], &[2.0, 3.0]);
        assert_eq!(mae, (2.0 + 6.0) / 2.0);
        assert_eq!(mse, (4.0 + 36.0) / 2.0);
    }
}
