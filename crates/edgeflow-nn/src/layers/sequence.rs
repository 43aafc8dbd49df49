//! Layers for sequences besides the recurrent ones: `Embedding` and `Masking`, which start a
//! sequence mask, and `GlobalAveragePooling1D`, which averages over the unmasked steps.

use edgeflow_tensor::{DType, Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::{config_error, ForwardCtx, Layer, LayerConfig, NameOnly, Param};
use crate::error::{NnError, Result, TensorContext};

/// `Embedding(input_dim, output_dim)`: token ids `[batch, seq_len]` to vectors
/// `[batch, seq_len, output_dim]`, rows of a trainable `embeddings [input_dim, output_dim]`
/// table initialised uniform in `[-0.05, 0.05)` as Keras does.
///
/// The ids may be i64, or f32 holding whole numbers (what datasets give today). With
/// `mask_zero`, id 0 is padding: the layer sets [`ForwardCtx::mask`] to 0 where the id is 0
/// and 1 elsewhere, so that later recurrent and pooling layers skip those steps (id 0 still
/// has a row, so a vocabulary of `n` words needs `input_dim = n + 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingConfig {
    /// Vocabulary size: ids are in `0..input_dim`.
    pub input_dim: usize,
    /// Size of each vector.
    pub output_dim: usize,
    /// Treat id 0 as padding and start a sequence mask (default false).
    #[serde(default)]
    pub mask_zero: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl EmbeddingConfig {
    /// An embedding of `input_dim` ids into `output_dim` dimensions, without masking.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        EmbeddingConfig {
            input_dim,
            output_dim,
            mask_zero: false,
            name: None,
        }
    }

    /// Sets `mask_zero`.
    pub fn mask_zero(mut self, yes: bool) -> Self {
        self.mask_zero = yes;
        self
    }
}

/// `Masking(mask_value)`: for padded variable-length series `[batch, seq_len, features]`,
/// marks a step as padding when every feature equals `mask_value` (default 0). It sets
/// [`ForwardCtx::mask`] and, as Keras does, outputs the input with padded steps zeroed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// The value that marks padding.
    #[serde(default)]
    pub mask_value: f32,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl MaskingConfig {
    /// Masking of steps whose features all equal `mask_value`.
    pub fn new(mask_value: f32) -> Self {
        MaskingConfig {
            mask_value,
            name: None,
        }
    }
}

impl From<EmbeddingConfig> for LayerConfig {
    fn from(c: EmbeddingConfig) -> Self {
        LayerConfig::Embedding(c)
    }
}

impl From<MaskingConfig> for LayerConfig {
    fn from(c: MaskingConfig) -> Self {
        LayerConfig::Masking(c)
    }
}

impl LayerConfig {
    /// A `GlobalAveragePooling1D` layer: `[batch, seq_len, features]` to `[batch, features]`,
    /// the mean over the steps the sequence mask keeps.
    pub fn global_average_pooling_1d() -> LayerConfig {
        LayerConfig::GlobalAveragePooling1D(NameOnly::default())
    }
}

/// The sequence mask for `input [batch, seq_len, ...]`, checked to be `[batch, seq_len]`.
///
/// # Errors
/// [`NnError::Input`] naming the layer when a mask is set but does not fit the input.
pub(super) fn sequence_mask(
    name: &str,
    ctx: &ForwardCtx,
    input: &Tensor,
) -> Result<Option<Tensor>> {
    let Some(m) = &ctx.mask else {
        return Ok(None);
    };
    let want = &input.dims()[..2.min(input.rank())];
    if m.dims() != want {
        return Err(NnError::Input(format!(
            "layer {name}: the sequence mask has shape {:?}, the input {:?} needs {want:?}",
            m.dims(),
            input.dims()
        )));
    }
    Ok(Some(m.clone()))
}

struct Embedding {
    name: String,
    config: EmbeddingConfig,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build_embedding(
    c: &EmbeddingConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    if c.input_dim == 0 || c.output_dim == 0 {
        return Err(config_error(
            &name,
            "input_dim and output_dim must be positive",
        ));
    }
    if c.mask_zero && input.len() != 1 {
        return Err(config_error(
            &name,
            format!("mask_zero needs [seq_len] token ids as input, got {input:?}"),
        ));
    }
    let table = Tensor::rand_uniform([c.input_dim, c.output_dim], -0.05, 0.05, rng);
    let mut output_shape = input.to_vec();
    output_shape.push(c.output_dim);
    Ok(Box::new(Embedding {
        name,
        config: c.clone(),
        params: vec![Param::trainable("embeddings", table)],
        output_shape,
    }))
}

impl Embedding {
    /// The ids as i64, each checked to be a whole number in `0..input_dim`.
    fn token_ids(&self, input: &Tensor) -> Result<Tensor> {
        let limit = self.config.input_dim;
        let bad = |pos: usize, what: String| {
            NnError::Input(format!(
                "layer {}: token id {what} at position {pos} is not an integer in 0..{limit}",
                self.name
            ))
        };
        let ids: Vec<i64> = match input.dtype() {
            DType::I64 => input.to_vec::<i64>().ctx(&self.name)?,
            DType::F32 => {
                let values = input.to_vec_f32().ctx(&self.name)?;
                let mut ids = Vec::with_capacity(values.len());
                for (pos, &v) in values.iter().enumerate() {
                    if v.fract() != 0.0 || !v.is_finite() {
                        return Err(bad(pos, v.to_string()));
                    }
                    ids.push(v as i64);
                }
                ids
            }
            other => {
                return Err(NnError::Input(format!(
                    "layer {}: token ids must be i64 or f32, got {other:?}",
                    self.name
                )))
            }
        };
        if let Some((pos, id)) = ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id < 0 || id as usize >= limit)
        {
            return Err(bad(pos, id.to_string()));
        }
        Tensor::from_vec(ids, input.dims().to_vec()).ctx(&self.name)
    }
}

impl Layer for Embedding {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Embedding(EmbeddingConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let ids = self.token_ids(input)?;
        let out = self.params[0].value.embedding(&ids).ctx(&self.name)?;

        if self.config.mask_zero {
            let keep: Vec<f32> = ids
                .to_vec::<i64>()
                .ctx(&self.name)?
                .iter()
                .map(|&id| if id == 0 { 0.0 } else { 1.0 })
                .collect();
            ctx.mask = Some(Tensor::from_vec(keep, ids.dims().to_vec()).ctx(&self.name)?);
        }
        Ok(out)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}

/// `Masking` and `GlobalAveragePooling1D`: no parameters.
struct MaskOrPool {
    name: String,
    /// `Some(mask_value)` for `Masking`, `None` for the pooling.
    mask_value: Option<f32>,
    output_shape: Vec<usize>,
}

pub(super) fn build_masking(
    c: &MaskingConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    if input.len() < 2 {
        return Err(config_error(
            &name,
            format!("Masking expects [seq_len, features] input, got {input:?}"),
        ));
    }
    Ok(Box::new(MaskOrPool {
        name,
        mask_value: Some(c.mask_value),
        output_shape: input.to_vec(),
    }))
}

pub(super) fn build_global_pool_1d(name: String, input: &[usize]) -> Result<Box<dyn Layer>> {
    let &[_, features] = input else {
        return Err(config_error(
            &name,
            format!("GlobalAveragePooling1D expects [seq_len, features] input, got {input:?}"),
        ));
    };
    Ok(Box::new(MaskOrPool {
        name,
        mask_value: None,
        output_shape: vec![features],
    }))
}

/// 0 where every feature (last axis) of `input` equals `value`, else 1; shape `input` minus
/// its last axis.
fn padding_mask(input: &Tensor, value: f32) -> edgeflow_tensor::Result<Tensor> {
    let features = input.dims().last().copied().unwrap_or(1).max(1);
    let keep: Vec<f32> = input
        .to_vec_f32()?
        .chunks(features)
        .map(|step| {
            if step.iter().all(|&x| x == value) {
                0.0
            } else {
                1.0
            }
        })
        .collect();
    Tensor::from_vec(
        keep,
        input.dims()[..input.rank().saturating_sub(1)].to_vec(),
    )
}

impl MaskOrPool {
    fn masking(&self, input: &Tensor, value: f32, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let mask = padding_mask(input, value).ctx(&self.name)?;
        let mut column = mask.dims().to_vec();
        column.push(1);
        let out = input
            .mul(&mask.reshape(column).ctx(&self.name)?)
            .ctx(&self.name)?;
        ctx.mask = Some(mask);
        Ok(out)
    }

    /// Mean over the unmasked steps; a sequence with no unmasked step gives zeros.
    fn pool(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let mask = sequence_mask(&self.name, ctx, input)?;
        ctx.mask = None;
        let Some(mask) = mask else {
            return input.mean_axis(1, false).ctx(&self.name);
        };
        let (batch, steps) = (input.dims()[0], input.dims()[1]);
        let pooled = (|| {
            let sum = input
                .mul(&mask.reshape([batch, steps, 1])?)?
                .sum_axis(1, false)?;
            let count = mask.sum_axis(1, true)?.clamp(1.0, f32::MAX)?;
            sum.div(&count)
        })();
        pooled.ctx(&self.name)
    }
}

impl Layer for MaskOrPool {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match self.mask_value {
            Some(mask_value) => LayerConfig::Masking(MaskingConfig { mask_value, name }),
            None => LayerConfig::GlobalAveragePooling1D(NameOnly { name }),
        }
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        match self.mask_value {
            Some(value) => self.masking(input, value, ctx),
            None => self.pool(input, ctx),
        }
    }
}
