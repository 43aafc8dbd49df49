//! Layer normalization over the last axis.

use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::dense::yes;
use super::{config_error, ForwardCtx, Layer, LayerConfig, Param};
use crate::error::{NnError, Result, TensorContext};

fn epsilon() -> f32 {
    1e-3
}

/// `LayerNormalization()` with Keras defaults: each step's last axis (`[..., features]`) is
/// normalized to `(x - mean) / sqrt(var + epsilon)` with its own mean and (biased) variance,
/// then scaled by `gamma [features]` (ones) and shifted by `beta [features]` (zeros).
///
/// Unlike batch normalization it has no moving statistics: training and inference compute the
/// same thing. Only Keras' default `axis=-1` is supported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormalizationConfig {
    /// Added to the variance before the square root (default 1e-3, as Keras).
    #[serde(default = "epsilon")]
    pub epsilon: f32,
    /// Learn the offset `beta` (default true).
    #[serde(default = "yes")]
    pub center: bool,
    /// Learn the scale `gamma` (default true).
    #[serde(default = "yes")]
    pub scale: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Default for LayerNormalizationConfig {
    fn default() -> Self {
        LayerNormalizationConfig {
            epsilon: epsilon(),
            center: true,
            scale: true,
            name: None,
        }
    }
}

impl LayerNormalizationConfig {
    /// Sets `epsilon`.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets `center` (learn `beta`).
    pub fn center(mut self, yes: bool) -> Self {
        self.center = yes;
        self
    }

    /// Sets `scale` (learn `gamma`).
    pub fn scale(mut self, yes: bool) -> Self {
        self.scale = yes;
        self
    }
}

impl From<LayerNormalizationConfig> for LayerConfig {
    fn from(c: LayerNormalizationConfig) -> Self {
        LayerConfig::LayerNormalization(c)
    }
}

/// A layer normalization's weights: which of `gamma` and `beta` it has.
#[derive(Debug, Clone, Copy)]
pub(super) struct Norm {
    pub epsilon: f32,
    pub center: bool,
    pub scale: bool,
}

impl Norm {
    /// `gamma` (ones) when `scale`, then `beta` (zeros) when `center`, names prefixed.
    pub fn init(&self, prefix: &str, features: usize) -> Vec<Param> {
        let mut params = Vec::with_capacity(2);
        if self.scale {
            params.push(Param::trainable(
                &format!("{prefix}gamma"),
                Tensor::ones([features]),
            ));
        }
        if self.center {
            params.push(Param::trainable(
                &format!("{prefix}beta"),
                Tensor::zeros([features]),
            ));
        }
        params
    }

    /// Number of parameter tensors.
    pub fn param_len(&self) -> usize {
        usize::from(self.center) + usize::from(self.scale)
    }

    /// Normalizes the last axis of `input` with `params` as made by [`Norm::init`].
    pub fn forward(&self, params: &[Param], input: &Tensor) -> edgeflow_tensor::Result<Tensor> {
        let features = input.dims().last().copied().unwrap_or(0);
        let mut next = params.iter().map(|p| &p.value);
        let ones;
        let gamma = if self.scale {
            next.next().expect("init made gamma")
        } else {
            ones = Tensor::ones([features]);
            &ones
        };
        let zeros;
        let beta = if self.center {
            next.next().expect("init made beta")
        } else {
            zeros = Tensor::zeros([features]);
            &zeros
        };
        input.layer_norm(gamma, beta, self.epsilon)
    }
}

struct LayerNormalization {
    name: String,
    config: LayerNormalizationConfig,
    norm: Norm,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &LayerNormalizationConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    let Some(&features) = input.last() else {
        return Err(config_error(
            &name,
            "LayerNormalization needs an input with a feature axis",
        ));
    };
    if c.epsilon.is_nan() || c.epsilon <= 0.0 {
        return Err(config_error(&name, "epsilon must be positive"));
    }
    let norm = Norm {
        epsilon: c.epsilon,
        center: c.center,
        scale: c.scale,
    };
    Ok(Box::new(LayerNormalization {
        name,
        config: c.clone(),
        params: norm.init("", features),
        norm,
        output_shape: input.to_vec(),
    }))
}

impl Layer for LayerNormalization {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::LayerNormalization(LayerNormalizationConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, _ctx: &mut ForwardCtx) -> Result<Tensor> {
        let features = self.output_shape[self.output_shape.len() - 1];
        if input.dims().last() != Some(&features) {
            return Err(NnError::Input(format!(
                "layer {}: expected {features} features on the last axis, got {:?}",
                self.name,
                input.dims()
            )));
        }
        self.norm.forward(&self.params, input).ctx(&self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
