//! `edgeflow-nn` owns what a Keras user recognises: layers with Keras names and defaults,
//! losses, metrics, optimizers, the `Sequential` model with `compile`, `fit`, `evaluate` and
//! `predict`, callbacks, and the single-file model format.
//!
//! It computes through `edgeflow-tensor` and leaves decoding files and parsing command lines to
//! `edgeflow-data` and the `edgeflow` binary.
#![warn(missing_docs)]

mod activation;
pub mod callbacks;
mod data;
mod error;
mod fit;
mod io;
pub mod layers;
mod loss;
mod metrics;
mod model;
pub mod optimizer;
mod summary;

pub use activation::Activation;
pub use callbacks::{
    Callback, EarlyStopping, EpochLogs, History, ModelCheckpoint, ReduceLrOnPlateau,
};
pub use data::{batch_indices, Dataset, Subset, TensorDataset};
pub use error::{NnError, Result};
pub use fit::{Evaluation, FitOptions};
pub use io::{FORMAT, FORMAT_VERSION};
pub use layers::{
    BatchNormalizationConfig, BidirectionalConfig, Conv2DConfig, DenseConfig, DropoutConfig,
    EmbeddingConfig, ForwardCtx, GruConfig, Layer, LayerConfig, LayerNormalizationConfig,
    LstmConfig, MaskingConfig, MergeMode, MultiHeadAttentionConfig, PaddingConfig, Pooling2DConfig,
    PositionEmbeddingConfig, PositionalEncodingConfig, RecurrentConfig, SimpleRnnConfig, Stream,
    TransformerEncoderConfig,
};
pub use loss::Loss;
pub use metrics::{ConfusionMatrix, Metric};
pub use model::{
    Architecture, CompileConfig, ModelMetadata, Preprocessing, Sequential, Vocabulary,
};
pub use optimizer::{Optimizer, OptimizerConfig, OptimizerKind, Schedule};
pub use summary::thousands;
