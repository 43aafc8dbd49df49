//! The error type of the nn crate.

use std::path::PathBuf;

use edgeflow_tensor::TensorError;

/// Everything that can go wrong while building, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// A tensor operation failed inside a layer, loss or optimizer.
    #[error("{context}: {source}")]
    Tensor {
        /// Where it happened, e.g. the layer name.
        context: String,
        /// The tensor error.
        #[source]
        source: TensorError,
    },
    /// A layer or model configuration is not valid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The model was used before `compile`.
    #[error("the model must be compiled (optimizer, loss, metrics) before {0}")]
    NotCompiled(&'static str),
    /// Input data does not fit the model.
    #[error("input does not fit the model: {0}")]
    Input(String),
    /// The dataset could not provide a batch.
    #[error("dataset: {0}")]
    Dataset(String),
    /// Training diverged (a NaN or infinite loss).
    #[error("training diverged: loss became {value} at epoch {epoch}, batch {batch}")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch within the epoch.
        batch: usize,
        /// The loss value.
        value: f32,
    },
    /// A model file could not be read or written.
    #[error("model file {path}: {reason}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error on a named file.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of the nn crate.
pub type Result<T, E = NnError> = std::result::Result<T, E>;

/// Adds a context string to tensor errors.
pub(crate) trait TensorContext<T> {
    fn ctx(self, context: impl Into<String>) -> Result<T>;
}

impl<T> TensorContext<T> for std::result::Result<T, TensorError> {
    fn ctx(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| NnError::Tensor {
            context: context.into(),
            source,
        })
    }
}
