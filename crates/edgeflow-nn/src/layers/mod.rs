//! Layers: their configurations (Keras names and defaults) and their built forms.
//!
//! Every layer reads the same way: a `*Config` struct with Keras defaults that serializes to the
//! model file, a build step that knows the input shape and creates the parameters, and a
//! `forward`.

mod batchnorm;
mod conv;
mod core;
mod dense;

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

pub use self::batchnorm::BatchNormalizationConfig;
pub use self::conv::{Conv2DConfig, PaddingConfig, Pooling2DConfig};
pub use self::core::{ActivationConfig, DropoutConfig};
pub use self::dense::DenseConfig;
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
}

impl ForwardCtx {
    /// Context for inference: no dropout, moving statistics.
    pub fn inference() -> Self {
        ForwardCtx {
            training: false,
            rng: Rng::seed(0),
            state_updates: Vec::new(),
        }
    }

    /// Context for a training step.
    pub fn training(rng: Rng) -> Self {
        ForwardCtx {
            training: true,
            rng,
            state_updates: Vec::new(),
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
