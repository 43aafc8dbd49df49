//! Shape-only and parameter-free layers: Flatten, GlobalAveragePooling2D, Dropout, Activation.

use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{config_error, ForwardCtx, Layer, LayerConfig, NameOnly};
use crate::activation::Activation;
use crate::error::{Result, TensorContext};

/// `Dropout(rate)`: during training zeroes a fraction `rate` of the inputs and scales the rest
/// by `1 / (1 - rate)`; does nothing at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropoutConfig {
    /// Fraction of inputs to drop, in `[0, 1)`.
    pub rate: f32,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `Activation(activation)` as a layer of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationConfig {
    /// The function.
    pub activation: Activation,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Which parameter-free transformation a [`Simple`] layer applies.
#[derive(Clone, Copy)]
enum Kind {
    Flatten,
    GlobalAverage,
    Dropout(f32),
    Activation(Activation),
}

struct Simple {
    name: String,
    kind: Kind,
    output_shape: Vec<usize>,
}

fn simple(name: String, kind: Kind, output_shape: Vec<usize>) -> Result<Box<dyn Layer>> {
    Ok(Box::new(Simple {
        name,
        kind,
        output_shape,
    }))
}

pub(super) fn build_flatten(name: String, input: &[usize]) -> Result<Box<dyn Layer>> {
    simple(name, Kind::Flatten, vec![input.iter().product()])
}

pub(super) fn build_global_pool(name: String, input: &[usize]) -> Result<Box<dyn Layer>> {
    match *input {
        [_, _, c] => simple(name, Kind::GlobalAverage, vec![c]),
        _ => Err(config_error(
            &name,
            format!("expects [height, width, channels] input, got {input:?}"),
        )),
    }
}

pub(super) fn build_dropout(
    c: &DropoutConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    if !(0.0..1.0).contains(&c.rate) {
        return Err(config_error(
            &name,
            format!("dropout rate {} is outside [0, 1)", c.rate),
        ));
    }
    simple(name, Kind::Dropout(c.rate), input.to_vec())
}

pub(super) fn build_activation(
    c: &ActivationConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    simple(name, Kind::Activation(c.activation), input.to_vec())
}

impl Layer for Simple {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match self.kind {
            Kind::Flatten => LayerConfig::Flatten(NameOnly { name }),
            Kind::GlobalAverage => LayerConfig::GlobalAveragePooling2D(NameOnly { name }),
            Kind::Dropout(rate) => LayerConfig::Dropout(DropoutConfig { rate, name }),
            Kind::Activation(activation) => {
                LayerConfig::Activation(ActivationConfig { activation, name })
            }
        }
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        match self.kind {
            Kind::Flatten => input.flatten_batch(),
            Kind::GlobalAverage => input
                .mean_axis(1, false)
                .and_then(|t| t.mean_axis(1, false)),
            Kind::Dropout(rate) if ctx.training => input.dropout(rate, &mut ctx.rng),
            Kind::Dropout(_) => Ok(input.clone()),
            Kind::Activation(a) => a.apply(input),
        }
        .ctx(&self.name)
    }
}
