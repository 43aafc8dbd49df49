//! Metrics computed during training and evaluation.

use edgeflow_tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::loss::Loss;

/// A metric by its Keras name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Metric {
    /// Fraction of correct predictions; what counts as correct follows the loss (argmax against
    /// the label, or a 0.5 threshold for binary outputs), as Keras' `"accuracy"` does.
    Accuracy,
    /// Fraction of samples whose label is among the `k` highest scores.
    SparseTopKAccuracy {
        /// How many top scores count.
        k: usize,
    },
}

impl Metric {
    /// Parses `accuracy`/`acc` or `sparse_top_k_accuracy` (k = 5, Keras' default) or
    /// `sparse_top_<k>_accuracy`.
    ///
    /// # Errors
    /// [`NnError::Config`] for another name.
    pub fn from_name(name: &str) -> Result<Metric> {
        if matches!(name, "accuracy" | "acc") {
            return Ok(Metric::Accuracy);
        }
        if name == "sparse_top_k_accuracy" {
            return Ok(Metric::SparseTopKAccuracy { k: 5 });
        }
        let k = name
            .strip_prefix("sparse_top_")
            .and_then(|r| r.strip_suffix("_accuracy"));
        match k.and_then(|k| k.parse().ok()) {
            Some(k) if k > 0 => Ok(Metric::SparseTopKAccuracy { k }),
            _ => Err(NnError::Config(format!(
                "unknown metric {name:?}; known: accuracy, sparse_top_k_accuracy, sparse_top_<k>_accuracy"
            ))),
        }
    }

    /// The name used in logs and history (`accuracy`, `sparse_top_5_accuracy`).
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".into(),
            Metric::SparseTopKAccuracy { k } => format!("sparse_top_{k}_accuracy"),
        }
    }

    /// Checks that the metric makes sense with `loss`.
    ///
    /// # Errors
    /// [`NnError::Config`] when it does not (accuracy of a regression loss).
    pub fn check(&self, loss: &Loss) -> Result<()> {
        let ok = match self {
            Metric::Accuracy => !matches!(loss, Loss::MeanSquaredError | Loss::MeanAbsoluteError),
            Metric::SparseTopKAccuracy { .. } => {
                matches!(loss, Loss::SparseCategoricalCrossentropy { .. })
            }
        };
        if ok {
            Ok(())
        } else {
            Err(NnError::Config(format!(
                "metric {} does not apply to loss {}",
                self.name(),
                loss.name()
            )))
        }
    }

    /// Number of correct samples in a batch.
    ///
    /// # Errors
    /// [`NnError::Input`] when predictions and targets do not fit.
    pub fn correct(&self, loss: &Loss, pred: &Tensor, target: &Tensor) -> Result<f64> {
        let input =
            |e: edgeflow_tensor::TensorError| NnError::Input(format!("{}: {e}", self.name()));
        let scores = pred.to_vec_f32().map_err(input)?;
        let classes = *pred.dims().last().unwrap_or(&1);
        match (self, loss) {
            (Metric::Accuracy, Loss::BinaryCrossentropy { from_logits }) => {
                let threshold = if *from_logits { 0.0 } else { 0.5 };
                let t = target.to_vec_f32().map_err(input)?;
                Ok(scores
                    .iter()
                    .zip(&t)
                    .filter(|(&p, &t)| (p > threshold) == (t > 0.5))
                    .count() as f64
                    / classes.max(1) as f64)
            }
            (Metric::Accuracy, Loss::CategoricalCrossentropy { .. }) => {
                let t = target.to_vec_f32().map_err(input)?;
                Ok(scores
                    .chunks(classes)
                    .zip(t.chunks(classes))
                    .filter(|(p, t)| argmax(p) == argmax(t))
                    .count() as f64)
            }
            (Metric::Accuracy, _) => top_k_hits(&scores, classes, &labels(target)?, 1),
            (Metric::SparseTopKAccuracy { k }, _) => {
                top_k_hits(&scores, classes, &labels(target)?, *k)
            }
        }
    }
}

fn labels(target: &Tensor) -> Result<Vec<i64>> {
    if target.dtype() != DType::I64 {
        return Err(NnError::Input(format!(
            "accuracy needs i64 labels, got {:?}",
            target.dtype()
        )));
    }
    target
        .to_vec::<i64>()
        .map_err(|e| NnError::Input(e.to_string()))
}

/// Index of the first maximum.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

fn top_k_hits(scores: &[f32], classes: usize, labels: &[i64], k: usize) -> Result<f64> {
    let mut hits = 0usize;
    for (row, &label) in scores.chunks(classes.max(1)).zip(labels) {
        let Some(&target) = usize::try_from(label).ok().and_then(|l| row.get(l)) else {
            return Err(NnError::Input(format!(
                "label {label} is outside 0..{classes}"
            )));
        };
        // The label is in the top k when fewer than k scores beat it (ties favour the label).
        if row.iter().filter(|&&s| s > target).count() < k {
            hits += 1;
        }
    }
    Ok(hits as f64)
}

/// Counts of (true class, predicted class) pairs: `matrix[true][predicted]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    /// Number of classes.
    pub classes: usize,
    /// Row-major `classes x classes` counts.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        ConfusionMatrix {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds one sample; labels outside the range are ignored.
    pub fn add(&mut self, truth: usize, predicted: usize) {
        if truth < self.classes && predicted < self.classes {
            self.counts[truth * self.classes + predicted] += 1;
        }
    }

    /// The count for a (true, predicted) pair.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Accuracy of each true class (`None` for a class with no samples).
    pub fn per_class_accuracy(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|c| {
                let row = &self.counts[c * self.classes..(c + 1) * self.classes];
                let total: u64 = row.iter().sum();
                (total > 0).then(|| row[c] as f64 / total as f64)
            })
            .collect()
    }
}
