//! What `fit`, `evaluate` and `predict` read batches from.

use edgeflow_tensor::{Rng, Tensor};

use crate::error::{NnError, Result};

/// A source of (input, target) batches addressed by sample index.
pub trait Dataset: Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inputs and targets of the samples at `indices`, stacked along a new batch axis.
    ///
    /// # Errors
    /// [`NnError::Dataset`] when a sample cannot be produced.
    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor)>;

    /// The batch for training step `step` (counted from 0 across the epochs of a `fit` call):
    /// [`Dataset::batch`] with any change meant for training only, such as random
    /// augmentation, which should depend on nothing but `step` and the dataset's own seed so
    /// that a run repeats. Evaluation and validation read [`Dataset::batch`].
    ///
    /// # Errors
    /// As [`Dataset::batch`].
    fn train_batch(&self, indices: &[usize], step: u64) -> Result<(Tensor, Tensor)> {
        let _ = step;
        self.batch(indices)
    }
}

/// A dataset held as two tensors whose first axis is the sample.
#[derive(Debug, Clone)]
pub struct TensorDataset {
    x: Tensor,
    y: Tensor,
}

impl TensorDataset {
    /// Pairs inputs and targets.
    ///
    /// # Errors
    /// [`NnError::Input`] when their first dimensions differ.
    pub fn new(x: Tensor, y: Tensor) -> Result<Self> {
        if x.dims().first() != y.dims().first() {
            return Err(NnError::Input(format!(
                "inputs {:?} and targets {:?} hold different numbers of samples",
                x.dims(),
                y.dims()
            )));
        }
        Ok(TensorDataset { x, y })
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.x.dims().first().copied().unwrap_or(0)
    }

    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        let pick = |t: &Tensor| {
            t.select_rows(indices)
                .map_err(|e| NnError::Dataset(e.to_string()))
        };
        Ok((pick(&self.x)?, pick(&self.y)?))
    }
}

/// A view of some samples of another dataset.
pub struct Subset<'a> {
    inner: &'a dyn Dataset,
    indices: Vec<usize>,
}

impl<'a> Subset<'a> {
    /// The samples of `inner` at `indices`, in that order.
    pub fn new(inner: &'a dyn Dataset, indices: Vec<usize>) -> Self {
        Subset { inner, indices }
    }

    /// The inner dataset's indices of the samples at `indices` of this subset.
    fn map(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.indices[i]).collect()
    }
}

impl Dataset for Subset<'_> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor)> {
        self.inner.batch(&self.map(indices))
    }

    fn train_batch(&self, indices: &[usize], step: u64) -> Result<(Tensor, Tensor)> {
        self.inner.train_batch(&self.map(indices), step)
    }
}

/// Splits `0..n` into batches of `batch_size`, the last one partial, optionally shuffled.
///
/// # Errors
/// [`NnError::Config`] for a zero batch size.
pub fn batch_indices(
    n: usize,
    batch_size: usize,
    shuffle: Option<&mut Rng>,
) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(NnError::Config("batch size must be at least 1".into()));
    }
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(rng) = shuffle {
        rng.shuffle(&mut order);
    }
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}
