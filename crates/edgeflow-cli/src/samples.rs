//! Sequence datasets held as tensors: what time series and tokenized texts become before `fit`,
//! `evaluate` and `predict` see them.

use anyhow::{bail, Result};
use edgeflow_nn::{Dataset, NnError, Sequential};
use edgeflow_tensor::Tensor;

/// Inputs and targets of a split, one sample per row of the first axis.
#[derive(Debug, Clone)]
pub struct Samples {
    /// Inputs `[n, ...input_shape]`, f32 (token ids are whole numbers in f32).
    pub x: Tensor,
    /// Targets: `[n]` i64 class labels, or `[n, outputs]` f32 values for regression.
    pub y: Tensor,
    /// Regression only: the naive forecast (the last input step repeated), shaped as `y`.
    pub naive: Option<Tensor>,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.dims().first().copied().unwrap_or(0)
    }

    /// The samples at `indices`, in that order.
    ///
    /// # Errors
    /// An index out of range.
    pub fn subset(&self, indices: &[usize]) -> Result<Samples> {
        Ok(Samples {
            x: self.x.select_rows(indices)?,
            y: self.y.select_rows(indices)?,
            naive: self
                .naive
                .as_ref()
                .map(|n| n.select_rows(indices))
                .transpose()?,
        })
    }

    /// The first `n` samples of a seeded shuffle (all of them when `n` is `None` or at least
    /// the size); `flag` names the option in the error for zero.
    ///
    /// # Errors
    /// `n` = 0.
    pub fn limit(self, n: Option<usize>, seed: u64, flag: &str) -> Result<Samples> {
        match n {
            Some(0) => bail!("{flag} must be at least 1"),
            Some(n) if n < self.len() => {
                self.subset(&edgeflow_data::take_shuffled(self.len(), n, seed))
            }
            _ => Ok(self),
        }
    }
}

impl Dataset for Samples {
    fn len(&self) -> usize {
        Samples::len(self)
    }

    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor), NnError> {
        let pick = |t: &Tensor| {
            t.select_rows(indices)
                .map_err(|e| NnError::Dataset(e.to_string()))
        };
        Ok((pick(&self.x)?, pick(&self.y)?))
    }
}

/// Whether the model's loss makes it a regression model (mean squared or absolute error).
pub fn is_regression(model: &Sequential) -> bool {
    model.compile_config().is_some_and(|c| {
        matches!(
            c.loss,
            edgeflow_nn::Loss::MeanSquaredError | edgeflow_nn::Loss::MeanAbsoluteError
        )
    })
}

/// Whether the model starts with an `Embedding` layer, so that it takes token ids.
pub fn takes_tokens(model: &Sequential) -> bool {
    matches!(
        model.architecture().layers.first(),
        Some(edgeflow_nn::LayerConfig::Embedding(_))
    )
}

/// Class labels as an `[n]` i64 tensor, each mapped from the dataset's class names to the
/// model's by name, so that a file listing its classes in another order still scores right.
///
/// # Errors
/// A class the model does not know, named with `source`.
pub fn map_labels(
    labels: &[u32],
    data_names: &[String],
    model_names: &[String],
    source: &str,
) -> Result<Tensor> {
    let mapping: Vec<Option<usize>> = data_names
        .iter()
        .map(|n| model_names.iter().position(|m| m == n))
        .collect();
    let mut out = Vec::with_capacity(labels.len());
    for &l in labels {
        match mapping.get(l as usize).copied().flatten() {
            Some(i) => out.push(i as i64),
            None => {
                let name = data_names.get(l as usize).map_or("?", String::as_str);
                return Err(crate::BadInput(format!(
                    "{source}: class {name:?} is not one of the model's classes ({})",
                    model_names.join(", ")
                ))
                .into());
            }
        }
    }
    let n = out.len();
    Ok(Tensor::from_vec(out, [n])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_map_by_name() {
        let data = ["b".to_string(), "a".to_string()];
        let model = ["a".to_string(), "b".to_string()];
        let t = map_labels(&[0, 1, 1], &data, &model, "x").unwrap();
        assert_eq!(t.to_vec::<i64>().unwrap(), vec![1, 0, 0]);
        let err = map_labels(&[0], &["c".to_string()], &model, "f.ts").unwrap_err();
        assert!(format!("{err}").contains("\"c\""), "{err}");
    }

    #[test]
    fn limit_takes_a_seeded_subset() {
        let x = Tensor::from_vec((0..10).map(|v| v as f32).collect::<Vec<_>>(), [10, 1]).unwrap();
        let y = Tensor::from_vec((0..10).collect::<Vec<i64>>(), [10]).unwrap();
        let s = Samples { x, y, naive: None };
        let small = s.clone().limit(Some(4), 3, "--limit").unwrap();
        assert_eq!(small.len(), 4);
        let xs = small.x.to_vec_f32().unwrap();
        let ys = small.y.to_vec::<i64>().unwrap();
        assert!(xs.iter().zip(&ys).all(|(&x, &y)| x as i64 == y));
        assert!(s.clone().limit(Some(0), 3, "--limit").is_err());
        assert_eq!(s.limit(Some(99), 3, "--limit").unwrap().len(), 10);
    }
}
