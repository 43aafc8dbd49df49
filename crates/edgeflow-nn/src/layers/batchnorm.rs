//! Batch normalization over the last (channel) axis.

use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{config_error, ForwardCtx, Layer, LayerConfig, Param};
use crate::error::{Result, TensorContext};

fn momentum() -> f32 {
    0.99
}

fn epsilon() -> f32 {
    1e-3
}

/// `BatchNormalization()` with Keras defaults: momentum 0.99, epsilon 1e-3, learned scale
/// (`gamma`, ones) and offset (`beta`, zeros), moving mean zeros and moving variance ones.
///
/// Training normalizes with the batch's mean and (biased) variance and moves the moving
/// statistics towards them; inference uses the moving statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormalizationConfig {
    /// Weight of the old value in the moving statistics.
    #[serde(default = "momentum")]
    pub momentum: f32,
    /// Added to the variance before the square root.
    #[serde(default = "epsilon")]
    pub epsilon: f32,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Default for BatchNormalizationConfig {
    fn default() -> Self {
        BatchNormalizationConfig {
            momentum: momentum(),
            epsilon: epsilon(),
            name: None,
        }
    }
}

struct BatchNorm {
    name: String,
    config: BatchNormalizationConfig,
    /// gamma, beta (trainable), moving_mean, moving_variance (state).
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &BatchNormalizationConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    let Some(&channels) = input.last() else {
        return Err(config_error(
            &name,
            "BatchNormalization needs an input with a channel axis",
        ));
    };
    if !(0.0..=1.0).contains(&c.momentum) || c.epsilon <= 0.0 {
        return Err(config_error(
            &name,
            "momentum must be in [0, 1] and epsilon positive",
        ));
    }
    let params = vec![
        Param::trainable("gamma", Tensor::ones([channels])),
        Param::trainable("beta", Tensor::zeros([channels])),
        Param::state("moving_mean", Tensor::zeros([channels])),
        Param::state("moving_variance", Tensor::ones([channels])),
    ];
    Ok(Box::new(BatchNorm {
        name,
        config: c.clone(),
        params,
        output_shape: input.to_vec(),
    }))
}

impl BatchNorm {
    fn moving_update(&self, moving: &Tensor, batch: &Tensor) -> edgeflow_tensor::Result<Tensor> {
        let m = self.config.momentum;
        moving
            .mul_scalar(m)?
            .add(&batch.detach().mul_scalar(1.0 - m)?)
    }

    fn train_forward(
        &self,
        input: &Tensor,
        ctx: &mut ForwardCtx,
    ) -> edgeflow_tensor::Result<Tensor> {
        let channels = self.params[0].value.elem_count();
        let flat = input.reshape([input.elem_count() / channels.max(1), channels])?;
        let mean = flat.mean_axis(0, false)?;
        let centered = flat.sub(&mean)?;
        let var = centered.square()?.mean_axis(0, false)?;
        let normed = centered.div(&var.add_scalar(self.config.epsilon)?.sqrt()?)?;
        let out = normed
            .mul(&self.params[0].value)?
            .add(&self.params[1].value)?;
        let new_mean = self.moving_update(&self.params[2].value, &mean)?;
        let new_var = self.moving_update(&self.params[3].value, &var)?;
        ctx.state_updates
            .push((format!("{}/moving_mean", self.name), new_mean));
        ctx.state_updates
            .push((format!("{}/moving_variance", self.name), new_var));
        out.reshape(input.shape().clone())
    }

    fn inference_forward(&self, input: &Tensor) -> edgeflow_tensor::Result<Tensor> {
        let p = &self.params;
        let std = p[3].value.add_scalar(self.config.epsilon)?.sqrt()?;
        let scale = p[0].value.div(&std)?;
        let shift = p[1].value.sub(&p[2].value.mul(&scale)?)?;
        input.mul(&scale)?.add(&shift)
    }
}

impl Layer for BatchNorm {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::BatchNormalization(BatchNormalizationConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        if ctx.training {
            self.train_forward(input, ctx).ctx(&self.name)
        } else {
            self.inference_forward(input).ctx(&self.name)
        }
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
