//! Loss functions, per sample, with Keras names and semantics.

use edgeflow_tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result, TensorContext};

/// Probabilities are clipped to `[EPSILON, 1 - EPSILON]` before a logarithm, as in Keras.
pub const EPSILON: f32 = 1e-7;

/// A loss function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Loss {
    /// Cross-entropy of integer class labels (`[batch]` i64) against `[batch, classes]`.
    SparseCategoricalCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Cross-entropy of one-hot (or soft) `[batch, classes]` f32 targets.
    CategoricalCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Binary cross-entropy of `[batch, k]` f32 targets in `[0, 1]`, averaged over `k`.
    BinaryCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Squared error averaged over the last axis.
    MeanSquaredError,
    /// Absolute error averaged over the last axis.
    MeanAbsoluteError,
}

impl Loss {
    /// Parses a Keras loss name (`sparse_categorical_crossentropy`, `categorical_crossentropy`,
    /// `binary_crossentropy`, `mean_squared_error`/`mse`, `mean_absolute_error`/`mae`).
    ///
    /// # Errors
    /// [`NnError::Config`] listing the known names.
    pub fn from_name(name: &str, from_logits: bool) -> Result<Loss> {
        Ok(match name {
            "sparse_categorical_crossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits }
            }
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits },
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits },
            "mean_squared_error" | "mse" => Loss::MeanSquaredError,
            "mean_absolute_error" | "mae" => Loss::MeanAbsoluteError,
            other => {
                return Err(NnError::Config(format!(
                    "unknown loss {other:?}; known: sparse_categorical_crossentropy, \
                     categorical_crossentropy, binary_crossentropy, mean_squared_error, \
                     mean_absolute_error"
                )))
            }
        })
    }

    /// The Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
        }
    }

    /// Turns a model's outputs into what the loss reads them as: class probabilities from
    /// logits (softmax over the last axis for the categorical losses, the logistic sigmoid for
    /// binary cross-entropy) when the loss was set `from_logits`; the outputs unchanged
    /// otherwise.
    ///
    /// # Errors
    /// Tensor errors (a non-f32 or rank-0 prediction).
    pub fn probabilities(&self, pred: &Tensor) -> Result<Tensor> {
        let out = match *self {
            Loss::SparseCategoricalCrossentropy { from_logits: true }
            | Loss::CategoricalCrossentropy { from_logits: true } => pred.softmax(-1),
            Loss::BinaryCrossentropy { from_logits: true } => pred.sigmoid(),
            _ => return Ok(pred.clone()),
        };
        out.ctx("probabilities")
    }

    /// The loss of each sample, `[batch]`. The batch loss is its mean; the epoch loss is the
    /// mean over all samples (not the mean of batch means).
    ///
    /// # Errors
    /// [`NnError::Input`] when targets do not fit the predictions (a label outside the class
    /// range names the label, its position and the class count).
    pub fn per_sample(&self, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
        match *self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let labels = sparse_labels(pred, target)?;
                let out = if from_logits {
                    pred.sparse_cross_entropy_with_logits(&labels)
                } else {
                    pred.sparse_cross_entropy_from_probs(&labels, EPSILON)
                };
                out.map_err(|e| NnError::Input(format!("sparse_categorical_crossentropy: {e}")))
            }
            Loss::CategoricalCrossentropy { from_logits } => categorical(pred, target, from_logits),
            Loss::BinaryCrossentropy { from_logits } => binary(pred, target, from_logits),
            Loss::MeanSquaredError => same_shape(pred, target, "mean_squared_error")
                .and_then(|_| pred.sub(target)?.square()?.mean_axis(-1, false))
                .ctx("mean_squared_error"),
            Loss::MeanAbsoluteError => same_shape(pred, target, "mean_absolute_error")
                .and_then(|_| {
                    let d = pred.sub(target)?;
                    d.relu()?.add(&d.neg()?.relu()?)?.mean_axis(-1, false)
                })
                .ctx("mean_absolute_error"),
        }
    }
}

fn same_shape(pred: &Tensor, target: &Tensor, op: &'static str) -> edgeflow_tensor::Result<()> {
    if pred.dims() != target.dims() {
        return Err(edgeflow_tensor::TensorError::ShapeMismatch {
            op,
            lhs: pred.dims().to_vec(),
            rhs: target.dims().to_vec(),
        });
    }
    Ok(())
}

/// Labels as a flat i64 `[batch]` tensor; `[batch, 1]` is accepted too, as in Keras.
fn sparse_labels(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    if target.dtype() != DType::I64 {
        return Err(NnError::Input(format!(
            "sparse_categorical_crossentropy needs integer (i64) labels, got {:?}",
            target.dtype()
        )));
    }
    let batch = pred.dims().first().copied().unwrap_or(0);
    if target.elem_count() != batch {
        return Err(NnError::Input(format!(
            "{} labels for a batch of {batch} predictions {:?}",
            target.elem_count(),
            pred.dims()
        )));
    }
    target.reshape([batch]).ctx("labels")
}

fn log_probs(pred: &Tensor, from_logits: bool) -> edgeflow_tensor::Result<Tensor> {
    match (from_logits, pred.softmax_logits()) {
        (true, _) => pred.log_softmax(-1),
        // The output of a softmax: work from its logits, exactly.
        (false, Some(logits)) => logits.log_softmax(-1),
        (false, None) => pred.clamp(EPSILON, 1.0 - EPSILON)?.log(),
    }
}

fn categorical(pred: &Tensor, target: &Tensor, from_logits: bool) -> Result<Tensor> {
    same_shape(pred, target, "categorical_crossentropy")
        .and_then(|_| {
            log_probs(pred, from_logits)?
                .mul(target)?
                .sum_axis(-1, false)?
                .neg()
        })
        .ctx("categorical_crossentropy")
}

fn binary(pred: &Tensor, target: &Tensor, from_logits: bool) -> Result<Tensor> {
    let per_element = |_| {
        if from_logits {
            // max(z, 0) - z * t + log(1 + exp(-|z|)): never overflows.
            let abs = pred.relu()?.add(&pred.neg()?.relu()?)?;
            let softplus = abs.neg()?.exp()?.add_scalar(1.0)?.log()?;
            pred.relu()?.sub(&pred.mul(target)?)?.add(&softplus)
        } else {
            let p = pred.clamp(EPSILON, 1.0 - EPSILON)?;
            let pos = target.mul(&p.log()?)?;
            let neg = target
                .neg()?
                .add_scalar(1.0)?
                .mul(&p.neg()?.add_scalar(1.0)?.log()?)?;
            pos.add(&neg)?.neg()
        }
    };
    same_shape(pred, target, "binary_crossentropy")
        .and_then(per_element)
        .and_then(|t| t.mean_axis(-1, false))
        .ctx("binary_crossentropy")
}
