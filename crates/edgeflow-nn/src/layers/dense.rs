//! The fully connected layer.

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::{config_error, glorot_uniform, Layer, LayerConfig, Param};
use crate::activation::Activation;
use crate::error::{Result, TensorContext};
use crate::layers::ForwardCtx;

/// `Dense(units)`: `activation(input · kernel + bias)` on the last axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseConfig {
    /// Output size.
    pub units: usize,
    /// Activation applied to the output (default linear).
    #[serde(default)]
    pub activation: Activation,
    /// Whether to add a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

pub(super) fn yes() -> bool {
    true
}

impl DenseConfig {
    /// A dense layer with `units` outputs, linear activation and a bias.
    pub fn new(units: usize) -> Self {
        DenseConfig {
            units,
            activation: Activation::Linear,
            use_bias: true,
            name: None,
        }
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

impl From<DenseConfig> for LayerConfig {
    fn from(c: DenseConfig) -> Self {
        LayerConfig::Dense(c)
    }
}

struct Dense {
    name: String,
    config: DenseConfig,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &DenseConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let Some(&fan_in) = input.last() else {
        return Err(config_error(
            &name,
            "Dense needs an input with at least one axis",
        ));
    };
    if c.units == 0 || fan_in == 0 {
        return Err(config_error(
            &name,
            format!("units {} and input size {fan_in} must be positive", c.units),
        ));
    }
    let mut params = vec![Param::trainable(
        "kernel",
        glorot_uniform(&[fan_in, c.units], fan_in, c.units, rng),
    )];
    if c.use_bias {
        params.push(Param::trainable("bias", Tensor::zeros([c.units])));
    }
    let mut output_shape = input.to_vec();
    *output_shape.last_mut().expect("input has an axis") = c.units;
    Ok(Box::new(Dense {
        name,
        config: c.clone(),
        params,
        output_shape,
    }))
}

impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Dense(DenseConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, _ctx: &mut ForwardCtx) -> Result<Tensor> {
        let mut y = input.matmul(&self.params[0].value).ctx(&self.name)?;
        if let Some(bias) = self.params.get(1) {
            y = y.add(&bias.value).ctx(&self.name)?;
        }
        self.config.activation.apply(&y).ctx(&self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
