//! Where a token sits in its sequence: the sinusoidal `PositionalEncoding`, the learned
//! `PositionEmbedding`, and the class token pair `ClassToken` / `TakeFirst`.

use edgeflow_tensor::{Rng, Shape, Tensor};
use serde::{Deserialize, Serialize};

use super::attention::check_sequence_input;
use super::sequence::sequence_mask;
use super::{config_error, glorot_uniform, ForwardCtx, Layer, LayerConfig, NameOnly, Param};
use crate::error::{Result, TensorContext};

fn max_wavelength() -> f32 {
    10_000.0
}

/// `PositionalEncoding()`: adds the fixed sinusoidal encoding of the original Transformer to
/// `input [batch, seq_len, d_model]`,
///
/// ```text
/// PE[pos, 2i]     = sin(pos / max_wavelength^(2i / d_model))
/// PE[pos, 2i + 1] = cos(pos / max_wavelength^(2i / d_model))
/// ```
///
/// with positions counted from 0. No weights; the table is computed once, at build, in f64.
/// (keras_hub's `SinePositionEncoding` returns the same table without adding it.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionalEncodingConfig {
    /// The longest wavelength, `10000` in the paper (default).
    #[serde(default = "max_wavelength")]
    pub max_wavelength: f32,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Default for PositionalEncodingConfig {
    fn default() -> Self {
        PositionalEncodingConfig {
            max_wavelength: max_wavelength(),
            name: None,
        }
    }
}

/// `PositionEmbedding(max_length)`: adds a learned vector per position, rows `0..seq_len` of
/// `embeddings [max_length, d_model]` (Glorot uniform, as keras_hub's `PositionEmbedding`,
/// which returns the rows without adding them; its `sequence_length` is accepted as an alias).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionEmbeddingConfig {
    /// Number of positions with a vector; at least the input's `seq_len`.
    #[serde(alias = "sequence_length")]
    pub max_length: usize,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl PositionEmbeddingConfig {
    /// Learned positions for sequences of up to `max_length` steps.
    pub fn new(max_length: usize) -> Self {
        PositionEmbeddingConfig {
            max_length,
            name: None,
        }
    }
}

impl From<PositionalEncodingConfig> for LayerConfig {
    fn from(c: PositionalEncodingConfig) -> Self {
        LayerConfig::PositionalEncoding(c)
    }
}

impl From<PositionEmbeddingConfig> for LayerConfig {
    fn from(c: PositionEmbeddingConfig) -> Self {
        LayerConfig::PositionEmbedding(c)
    }
}

impl LayerConfig {
    /// A `ClassToken` layer: prepends a learned `class_token [d_model]` (zeros at first, as in
    /// ViT) to every sequence, `[batch, seq_len, d_model]` to `[batch, seq_len + 1, d_model]`.
    /// A sequence mask gets a real step in front.
    pub fn class_token() -> LayerConfig {
        LayerConfig::ClassToken(NameOnly::default())
    }

    /// A `TakeFirst` layer: step 0 of each sequence, `[batch, seq_len, d_model]` to `[batch,
    /// d_model]` (the class token's output); clears the sequence mask.
    pub fn take_first() -> LayerConfig {
        LayerConfig::TakeFirst(NameOnly::default())
    }
}

/// The sinusoidal table `[seq_len, d_model]` (see [`PositionalEncodingConfig`]).
pub(super) fn sinusoidal_table(seq_len: usize, d_model: usize, max_wavelength: f32) -> Tensor {
    let mut table = Vec::with_capacity(seq_len * d_model);
    for pos in 0..seq_len {
        for dim in 0..d_model {
            let pair = (dim / 2 * 2) as f64;
            let angle = pos as f64 / (max_wavelength as f64).powf(pair / d_model as f64);
            table.push(if dim % 2 == 0 {
                angle.sin()
            } else {
                angle.cos()
            } as f32);
        }
    }
    Tensor::from_vec(table, [seq_len, d_model]).expect("the table has seq_len * d_model values")
}

fn sequence_shape(name: &str, type_name: &str, input: &[usize]) -> Result<(usize, usize)> {
    match *input {
        [seq_len, d_model] if seq_len > 0 && d_model > 0 => Ok((seq_len, d_model)),
        _ => Err(config_error(
            name,
            format!("{type_name} expects [seq_len, d_model] input, got {input:?}"),
        )),
    }
}

/// What a [`Positions`] layer does.
enum Kind {
    /// Adds a fixed table.
    Encoding(PositionalEncodingConfig, Tensor),
    /// Adds the first rows of its `embeddings`.
    Embedding(PositionEmbeddingConfig),
    /// Prepends its `class_token`.
    ClassToken,
    /// Keeps step 0.
    TakeFirst,
}

/// The four layers of this file: they differ only in what they do to the time axis.
struct Positions {
    name: String,
    kind: Kind,
    params: Vec<Param>,
    input_shape: Vec<usize>,
    output_shape: Vec<usize>,
}

pub(super) fn build_encoding(
    c: &PositionalEncodingConfig,
    name: String,
    input: &[usize],
) -> Result<Box<dyn Layer>> {
    let (seq_len, d_model) = sequence_shape(&name, "PositionalEncoding", input)?;
    if !(c.max_wavelength.is_finite() && c.max_wavelength > 1.0) {
        return Err(config_error(
            &name,
            "max_wavelength must be finite and above 1",
        ));
    }
    let table = sinusoidal_table(seq_len, d_model, c.max_wavelength);
    Ok(positions(
        name,
        Kind::Encoding(c.clone(), table),
        vec![],
        input,
    ))
}

pub(super) fn build_embedding(
    c: &PositionEmbeddingConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let (seq_len, d_model) = sequence_shape(&name, "PositionEmbedding", input)?;
    if c.max_length < seq_len {
        return Err(config_error(
            &name,
            format!(
                "max_length {} is shorter than the input's {seq_len} steps",
                c.max_length
            ),
        ));
    }
    let table = glorot_uniform(&[c.max_length, d_model], c.max_length, d_model, rng);
    let params = vec![Param::trainable("embeddings", table)];
    Ok(positions(name, Kind::Embedding(c.clone()), params, input))
}

pub(super) fn build_class_token(name: String, input: &[usize]) -> Result<Box<dyn Layer>> {
    let (_, d_model) = sequence_shape(&name, "ClassToken", input)?;
    let params = vec![Param::trainable("class_token", Tensor::zeros([d_model]))];
    Ok(positions(name, Kind::ClassToken, params, input))
}

pub(super) fn build_take_first(name: String, input: &[usize]) -> Result<Box<dyn Layer>> {
    sequence_shape(&name, "TakeFirst", input)?;
    Ok(positions(name, Kind::TakeFirst, vec![], input))
}

fn positions(name: String, kind: Kind, params: Vec<Param>, input: &[usize]) -> Box<dyn Layer> {
    let output_shape = match kind {
        Kind::ClassToken => vec![input[0] + 1, input[1]],
        Kind::TakeFirst => vec![input[1]],
        Kind::Encoding(..) | Kind::Embedding(_) => input.to_vec(),
    };
    Box::new(Positions {
        name,
        kind,
        params,
        input_shape: input.to_vec(),
        output_shape,
    })
}

impl Positions {
    fn prepend_token(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let (batch, d_model) = (input.dims()[0], input.dims()[2]);
        let token = self.params[0]
            .value
            .reshape([1, 1, d_model])
            .and_then(|t| t.broadcast_to(&Shape::new(vec![batch, 1, d_model])))
            .and_then(|t| Tensor::concat(&[t, input.clone()], 1))
            .ctx(&self.name)?;
        if let Some(mask) = sequence_mask(&self.name, ctx, input)? {
            let real = Tensor::ones([batch, 1]);
            let mask = Tensor::concat(&[real, mask], 1).ctx(&self.name)?;
            ctx.mask = Some(mask);
        }
        Ok(token)
    }
}

impl Layer for Positions {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        let name = Some(self.name.clone());
        match &self.kind {
            Kind::Encoding(c, _) => {
                LayerConfig::PositionalEncoding(PositionalEncodingConfig { name, ..c.clone() })
            }
            Kind::Embedding(c) => {
                LayerConfig::PositionEmbedding(PositionEmbeddingConfig { name, ..c.clone() })
            }
            Kind::ClassToken => LayerConfig::ClassToken(NameOnly { name }),
            Kind::TakeFirst => LayerConfig::TakeFirst(NameOnly { name }),
        }
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        check_sequence_input(&self.name, input, &self.input_shape)?;
        let seq_len = self.input_shape[0];
        match &self.kind {
            Kind::Encoding(_, table) => input.add(table).ctx(&self.name),
            Kind::Embedding(_) => self.params[0]
                .value
                .narrow(0, 0, seq_len)
                .and_then(|rows| input.add(&rows))
                .ctx(&self.name),
            Kind::ClassToken => self.prepend_token(input, ctx),
            Kind::TakeFirst => {
                ctx.mask = None;
                let d_model = self.input_shape[1];
                input
                    .narrow(1, 0, 1)
                    .and_then(|t| t.reshape([input.dims()[0], d_model]))
                    .ctx(&self.name)
            }
        }
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
