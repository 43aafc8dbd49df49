//! Layers: their configurations (Keras names and defaults) and their built forms.
//!
//! Every layer reads the same way: a `*Config` struct with Keras defaults that serializes to the
//! model file, a build step that knows the input shape and creates the parameters, and a
//! `forward`.

mod attention;
mod batchnorm;
mod bidirectional;
mod cell;
mod conv;
mod core;
mod dense;
mod normalization;
mod position;
mod recurrent;
mod sequence;
mod stream;
mod transformer;

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

pub use self::attention::MultiHeadAttentionConfig;
pub use self::batchnorm::BatchNormalizationConfig;
pub use self::bidirectional::{BidirectionalConfig, MergeMode};
pub use self::conv::{Conv2DConfig, PaddingConfig, Pooling2DConfig};
pub use self::core::{ActivationConfig, DropoutConfig};
pub use self::dense::DenseConfig;
pub use self::normalization::LayerNormalizationConfig;
pub use self::position::{PositionEmbeddingConfig, PositionalEncodingConfig};
pub use self::recurrent::{GruConfig, LstmConfig, RecurrentConfig, SimpleRnnConfig};
pub use self::sequence::{EmbeddingConfig, MaskingConfig};
pub use self::stream::Stream;
pub use self::transformer::TransformerEncoderConfig;
use crate::error::Result;

/// A trainable or state tensor of a layer.
#[derive(Debug, Clone)]
pub struct Param {
    /// The name inside its layer, e.g. `kernel`, `bias`, `moving_mean`.
    pub name: String,
    /// The current value.
    pub value: Tensor,
    /// Whether the optimizer updates it (moving statistics are not trainable).
    pub trainable: bool,
}

impl Param {
    pub(crate) fn trainable(name: &str, value: Tensor) -> Self {
        Param {
            name: name.into(),
            value: value.with_requires_grad(true),
            trainable: true,
        }
    }

    pub(crate) fn state(name: &str, value: Tensor) -> Self {
        Param {
            name: name.into(),
            value,
            trainable: false,
        }
    }
}

/// Per-call state of a forward pass.
#[derive(Debug)]
pub struct ForwardCtx {
    /// Training mode: dropout active, batch normalization uses batch statistics.
    pub training: bool,
    /// Random stream for dropout.
    pub rng: Rng,
    /// New values of non-trainable state (moving statistics), keyed by `layer/param`, applied
    /// by the caller after the step.
    pub state_updates: Vec<(String, Tensor)>,
    /// The sequence mask of the batch, `[batch, seq_len]` f32: 1 for a real step, 0 for
    /// padding. Set by `Embedding` (with `mask_zero`) and `Masking`; read by the recurrent
    /// layers (a padded step keeps the state) and `GlobalAveragePooling1D` (mean over the
    /// real steps); cleared by the layers that remove the time axis. Per-step layers such as
    /// `Dense` pass it on untouched. `None`: every step is real.
    pub mask: Option<Tensor>,
}

impl ForwardCtx {
    /// Context for inference: no dropout, moving statistics.
    pub fn inference() -> Self {
        ForwardCtx {
            training: false,
            rng: Rng::seed(0),
            state_updates: Vec::new(),
            mask: None,
        }
    }

    /// Context for a training step.
    pub fn training(rng: Rng) -> Self {
        ForwardCtx {
            training: true,
            rng,
            state_updates: Vec::new(),
            mask: None,
        }
    }
}

/// A built layer.
pub trait Layer: Send + Sync {
    /// The unique name in its model, e.g. `conv2d_1`.
    fn name(&self) -> &str;
    /// The configuration it was built from.
    fn config(&self) -> LayerConfig;
    /// Output shape without the batch dimension.
    fn output_shape(&self) -> &[usize];
    /// Runs the layer on a batch (`[batch, ...input_shape]`).
    ///
    /// # Errors
    /// Tensor errors, with the layer name as context.
    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor>;
    /// The parameters, trainable first.
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }
    /// The parameters, mutably (same order as [`Layer::params`]).
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
    /// Runs one time step of a recurrent layer for a [`Stream`]: `input [batch, features]`,
    /// `state` the layer's carried state (empty before the first step), updated in place.
    /// Returns the step's output `[batch, units]`.
    ///
    /// # Errors
    /// [`crate::NnError::Config`] for layers that are not recurrent (the default); input and
    /// tensor errors.
    fn step(
        &self,
        input: &Tensor,
        state: &mut Vec<Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Tensor> {
        let _ = (input, state, ctx);
        Err(config_error(
            self.name(),
            "is not a recurrent layer and cannot run one time step at a time",
        ))
    }
}

/// How a layer takes part in a [`Stream`], which runs a model one time step at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRole {
    /// Works on the last axis alone, so it runs on one step as on a whole sequence (`Dense`,
    /// `Embedding`, `Masking`, activations).
    PerStep,
    /// Carries a state from step to step through [`Layer::step`].
    Recurrent,
    /// Needs the whole sequence (or has no time axis to step along): cannot stream.
    Sequence,
}

/// One layer of a model description, tagged by its Keras class name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum LayerConfig {
    /// Fully connected layer.
    Dense(DenseConfig),
    /// 2-D convolution.
    Conv2D(Conv2DConfig),
    /// 2-D max pooling.
    MaxPooling2D(Pooling2DConfig),
    /// 2-D average pooling.
    AveragePooling2D(Pooling2DConfig),
    /// Mean over height and width.
    GlobalAveragePooling2D(NameOnly),
    /// Flattens all but the batch axis.
    Flatten(NameOnly),
    /// Dropout.
    Dropout(DropoutConfig),
    /// Batch normalization.
    BatchNormalization(BatchNormalizationConfig),
    /// A standalone activation.
    Activation(ActivationConfig),
    /// Simple recurrent layer.
    #[serde(rename = "SimpleRNN")]
    SimpleRnn(SimpleRnnConfig),
    /// Long short-term memory.
    #[serde(rename = "LSTM")]
    Lstm(LstmConfig),
    /// Gated recurrent unit.
    #[serde(rename = "GRU")]
    Gru(GruConfig),
    /// A recurrent layer run in both directions.
    Bidirectional(BidirectionalConfig),
    /// Token ids to vectors.
    Embedding(EmbeddingConfig),
    /// Marks padded steps of a series.
    Masking(MaskingConfig),
    /// Mean over the (unmasked) steps of a sequence.
    GlobalAveragePooling1D(NameOnly),
    /// Multi-head self-attention.
    MultiHeadAttention(MultiHeadAttentionConfig),
    /// Layer normalization over the last axis.
    LayerNormalization(LayerNormalizationConfig),
    /// Adds the sinusoidal position encoding.
    PositionalEncoding(PositionalEncodingConfig),
    /// Adds a learned vector per position.
    PositionEmbedding(PositionEmbeddingConfig),
    /// A Transformer encoder block.
    TransformerEncoder(TransformerEncoderConfig),
    /// Prepends a learned class token to each sequence.
    ClassToken(NameOnly),
    /// Keeps the first step of each sequence.
    TakeFirst(NameOnly),
}

/// Configuration of a layer with no settings but its name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameOnly {
    /// Layer name; generated from the type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl LayerConfig {
    /// The Keras class name, e.g. `Conv2D`.
    pub fn type_name(&self) -> &'static str {
        match self {
            LayerConfig::Dense(_) => "Dense",
            LayerConfig::Conv2D(_) => "Conv2D",
            LayerConfig::MaxPooling2D(_) => "MaxPooling2D",
            LayerConfig::AveragePooling2D(_) => "AveragePooling2D",
            LayerConfig::GlobalAveragePooling2D(_) => "GlobalAveragePooling2D",
            LayerConfig::Flatten(_) => "Flatten",
            LayerConfig::Dropout(_) => "Dropout",
            LayerConfig::BatchNormalization(_) => "BatchNormalization",
            LayerConfig::Activation(_) => "Activation",
            LayerConfig::SimpleRnn(_) => "SimpleRNN",
            LayerConfig::Lstm(_) => "LSTM",
            LayerConfig::Gru(_) => "GRU",
            LayerConfig::Bidirectional(_) => "Bidirectional",
            LayerConfig::Embedding(_) => "Embedding",
            LayerConfig::Masking(_) => "Masking",
            LayerConfig::GlobalAveragePooling1D(_) => "GlobalAveragePooling1D",
            LayerConfig::MultiHeadAttention(_) => "MultiHeadAttention",
            LayerConfig::LayerNormalization(_) => "LayerNormalization",
            LayerConfig::PositionalEncoding(_) => "PositionalEncoding",
            LayerConfig::PositionEmbedding(_) => "PositionEmbedding",
            LayerConfig::TransformerEncoder(_) => "TransformerEncoder",
            LayerConfig::ClassToken(_) => "ClassToken",
            LayerConfig::TakeFirst(_) => "TakeFirst",
        }
    }

    /// The explicit name, if the configuration has one.
    pub fn explicit_name(&self) -> Option<&str> {
        match self {
            LayerConfig::Dense(c) => c.name.as_deref(),
            LayerConfig::Conv2D(c) => c.name.as_deref(),
            LayerConfig::MaxPooling2D(c) | LayerConfig::AveragePooling2D(c) => c.name.as_deref(),
            LayerConfig::GlobalAveragePooling2D(c) | LayerConfig::Flatten(c) => c.name.as_deref(),
            LayerConfig::Dropout(c) => c.name.as_deref(),
            LayerConfig::BatchNormalization(c) => c.name.as_deref(),
            LayerConfig::Activation(c) => c.name.as_deref(),
            LayerConfig::SimpleRnn(c) => c.name.as_deref(),
            LayerConfig::Lstm(c) => c.name.as_deref(),
            LayerConfig::Gru(c) => c.name.as_deref(),
            LayerConfig::Bidirectional(c) => c.name.as_deref(),
            LayerConfig::Embedding(c) => c.name.as_deref(),
            LayerConfig::Masking(c) => c.name.as_deref(),
            LayerConfig::GlobalAveragePooling1D(c) => c.name.as_deref(),
            LayerConfig::MultiHeadAttention(c) => c.name.as_deref(),
            LayerConfig::LayerNormalization(c) => c.name.as_deref(),
            LayerConfig::PositionalEncoding(c) => c.name.as_deref(),
            LayerConfig::PositionEmbedding(c) => c.name.as_deref(),
            LayerConfig::TransformerEncoder(c) => c.name.as_deref(),
            LayerConfig::ClassToken(c) | LayerConfig::TakeFirst(c) => c.name.as_deref(),
        }
    }

    /// How the layer takes part in a [`Stream`]. Layers not listed here need the whole
    /// sequence.
    pub fn step_role(&self) -> StepRole {
        match self {
            LayerConfig::SimpleRnn(_) | LayerConfig::Lstm(_) | LayerConfig::Gru(_) => {
                StepRole::Recurrent
            }
            LayerConfig::Dense(_)
            | LayerConfig::Dropout(_)
            | LayerConfig::BatchNormalization(_)
            | LayerConfig::LayerNormalization(_)
            | LayerConfig::Activation(_)
            | LayerConfig::Embedding(_)
            | LayerConfig::Masking(_) => StepRole::PerStep,
            _ => StepRole::Sequence,
        }
    }

    /// Keras' automatic name stem: `Conv2D` -> `conv2d`, `MaxPooling2D` -> `max_pooling2d`.
    pub fn default_stem(&self) -> String {
        let mut out = String::new();
        let name = self.type_name();
        for (i, ch) in name.chars().enumerate() {
            let prev_lower = i > 0 && name.as_bytes()[i - 1].is_ascii_lowercase();
            if ch.is_ascii_uppercase() && prev_lower {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        }
        out
    }

    /// Builds the layer for inputs of `input_shape` (without the batch axis).
    ///
    /// # Errors
    /// [`crate::NnError::Config`] naming the layer when the settings or the input shape do not
    /// fit.
    pub fn build(
        &self,
        name: String,
        input_shape: &[usize],
        rng: &mut Rng,
    ) -> Result<Box<dyn Layer>> {
        match self {
            LayerConfig::Dense(c) => dense::build(c, name, input_shape, rng),
            LayerConfig::Conv2D(c) => conv::build_conv(c, name, input_shape, rng),
            LayerConfig::MaxPooling2D(c) => {
                conv::build_pool(c, name, input_shape, conv::PoolKind::Max)
            }
            LayerConfig::AveragePooling2D(c) => {
                conv::build_pool(c, name, input_shape, conv::PoolKind::Average)
            }
            LayerConfig::GlobalAveragePooling2D(_) => core::build_global_pool(name, input_shape),
            LayerConfig::Flatten(_) => core::build_flatten(name, input_shape),
            LayerConfig::Dropout(c) => core::build_dropout(c, name, input_shape),
            LayerConfig::BatchNormalization(c) => batchnorm::build(c, name, input_shape),
            LayerConfig::Activation(c) => core::build_activation(c, name, input_shape),
            LayerConfig::SimpleRnn(c) => {
                recurrent::build(&c.clone().into(), name, input_shape, rng)
            }
            LayerConfig::Lstm(c) => recurrent::build(&c.clone().into(), name, input_shape, rng),
            LayerConfig::Gru(c) => recurrent::build(&c.clone().into(), name, input_shape, rng),
            LayerConfig::Bidirectional(c) => bidirectional::build(c, name, input_shape, rng),
            LayerConfig::Embedding(c) => sequence::build_embedding(c, name, input_shape, rng),
            LayerConfig::Masking(c) => sequence::build_masking(c, name, input_shape),
            LayerConfig::GlobalAveragePooling1D(_) => {
                sequence::build_global_pool_1d(name, input_shape)
            }
            LayerConfig::MultiHeadAttention(c) => attention::build(c, name, input_shape, rng),
            LayerConfig::LayerNormalization(c) => normalization::build(c, name, input_shape),
            LayerConfig::PositionalEncoding(c) => position::build_encoding(c, name, input_shape),
            LayerConfig::PositionEmbedding(c) => {
                position::build_embedding(c, name, input_shape, rng)
            }
            LayerConfig::TransformerEncoder(c) => transformer::build(c, name, input_shape, rng),
            LayerConfig::ClassToken(_) => position::build_class_token(name, input_shape),
            LayerConfig::TakeFirst(_) => position::build_take_first(name, input_shape),
        }
    }
}

/// A `(height, width)` pair written either as one number or as two, as Keras accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pair {
    /// The same value for both axes.
    One(usize),
    /// `[height, width]`.
    Two([usize; 2]),
}

impl Pair {
    /// As `(height, width)`.
    pub fn hw(self) -> (usize, usize) {
        match self {
            Pair::One(v) => (v, v),
            Pair::Two([h, w]) => (h, w),
        }
    }
}

/// Glorot (Xavier) uniform initialisation, Keras' default for kernels:
/// `U(-l, l)` with `l = sqrt(6 / (fan_in + fan_out))`.
pub(crate) fn glorot_uniform(
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    rng: &mut Rng,
) -> Tensor {
    let limit = (6.0 / (fan_in + fan_out).max(1) as f32).sqrt();
    Tensor::rand_uniform(shape.to_vec(), -limit, limit, rng)
}

pub(crate) fn config_error(layer: &str, msg: impl std::fmt::Display) -> crate::NnError {
    crate::NnError::Config(format!("layer {layer}: {msg}"))
}
