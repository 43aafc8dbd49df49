//! The Transformer encoder block.

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::attention::{check_sequence_input, Heads};
use super::normalization::Norm;
use super::sequence::sequence_mask;
use super::{config_error, glorot_uniform, ForwardCtx, Layer, LayerConfig, Param};
use crate::activation::Activation;
use crate::error::{Result, TensorContext};

fn relu() -> Activation {
    Activation::Relu
}

fn layer_norm_epsilon() -> f32 {
    1e-5
}

/// `TransformerEncoder(num_heads, ff_dim)`: one encoder block on `[batch, seq_len, d_model]`,
/// shaped and defaulted as keras_hub's `TransformerEncoder` (whose `intermediate_dim` and
/// `normalize_first` are accepted as aliases of `ff_dim` and `norm_first`).
///
/// ```text
/// post-norm (norm_first = false, the original paper):
///   x = LayerNorm(x + Dropout(MHA(x)))
///   x = LayerNorm(x + Dropout(Dense_d_model(activation(Dense_ff_dim(x)))))
/// pre-norm (norm_first = true):
///   x = x + Dropout(MHA(LayerNorm(x)))
///   x = x + Dropout(Dense_d_model(activation(Dense_ff_dim(LayerNorm(x)))))
/// ```
///
/// `MHA` is self-attention as [`super::MultiHeadAttentionConfig`] with `num_heads` heads of
/// `key_dim` (default `d_model / num_heads`) and the block's `dropout` on its weights too. A
/// pre-norm stack usually ends with a `LayerNormalization` of its own, which the block does
/// not add. The sequence mask ([`ForwardCtx::mask`]) reaches the attention and is passed on.
///
/// Defaults follow keras_hub: `dropout` 0 (the paper used 0.1: set it explicitly),
/// `activation` relu, `norm_first` false, `layer_norm_epsilon` 1e-5. Weights are named as
/// keras_hub's sublayers: `self_attention_layer/{query,key,value,attention_output}/...`,
/// `self_attention_layer_norm/{gamma,beta}`, `feedforward_layer_norm/{gamma,beta}`,
/// `feedforward_intermediate_dense/{kernel,bias}` and `feedforward_output_dense/{kernel,bias}`.
///
/// A stack is several blocks in a row; mean pooling over the real steps makes a classifier:
///
/// ```
/// use edgeflow_nn::{
///     Activation, DenseConfig, EmbeddingConfig, LayerConfig, PositionalEncodingConfig,
///     Sequential, TransformerEncoderConfig,
/// };
///
/// let model = Sequential::builder([100])
///     .add(EmbeddingConfig::new(20_000, 64).mask_zero(true))
///     .add(PositionalEncodingConfig::default())
///     .add(TransformerEncoderConfig::new(4, 128))
///     .add(TransformerEncoderConfig::new(4, 128))
///     .add(LayerConfig::global_average_pooling_1d())
///     .add(DenseConfig::new(2).activation(Activation::Softmax))
///     .build(0)?;
/// assert_eq!(model.param_count(), 20_000 * 64 + 2 * 33_472 + 130);
/// # Ok::<(), edgeflow_nn::NnError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformerEncoderConfig {
    /// Number of attention heads.
    pub num_heads: usize,
    /// Size of each head's query, key and value vectors (default `d_model / num_heads`,
    /// which must then divide evenly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_dim: Option<usize>,
    /// Width of the feed-forward hidden layer.
    #[serde(alias = "intermediate_dim")]
    pub ff_dim: usize,
    /// Dropout rate on the attention weights, the attention output and the feed-forward
    /// output, training only (default 0).
    #[serde(default)]
    pub dropout: f32,
    /// Activation of the feed-forward hidden layer (default relu; gelu is the other usual one).
    #[serde(default = "relu")]
    pub activation: Activation,
    /// Normalize before each sublayer (pre-norm) instead of after the residual sum (default
    /// false: post-norm).
    #[serde(default, alias = "normalize_first")]
    pub norm_first: bool,
    /// Epsilon of both layer normalizations (default 1e-5).
    #[serde(default = "layer_norm_epsilon")]
    pub layer_norm_epsilon: f32,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl TransformerEncoderConfig {
    /// An encoder block with `num_heads` heads and a feed-forward width of `ff_dim`, keras_hub
    /// defaults otherwise.
    pub fn new(num_heads: usize, ff_dim: usize) -> Self {
        TransformerEncoderConfig {
            num_heads,
            key_dim: None,
            ff_dim,
            dropout: 0.0,
            activation: relu(),
            norm_first: false,
            layer_norm_epsilon: layer_norm_epsilon(),
            name: None,
        }
    }

    /// Sets `key_dim`.
    pub fn key_dim(mut self, key_dim: usize) -> Self {
        self.key_dim = Some(key_dim);
        self
    }

    /// Sets the dropout rate.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Sets the feed-forward activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets `norm_first` (pre-norm).
    pub fn norm_first(mut self, yes: bool) -> Self {
        self.norm_first = yes;
        self
    }

    /// Sets `layer_norm_epsilon`.
    pub fn layer_norm_epsilon(mut self, epsilon: f32) -> Self {
        self.layer_norm_epsilon = epsilon;
        self
    }
}

impl From<TransformerEncoderConfig> for LayerConfig {
    fn from(c: TransformerEncoderConfig) -> Self {
        LayerConfig::TransformerEncoder(c)
    }
}

struct TransformerEncoder {
    name: String,
    config: TransformerEncoderConfig,
    heads: Heads,
    norm: Norm,
    /// Attention, attention norm, feed-forward norm, intermediate dense, output dense.
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &TransformerEncoderConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let d_model = input.last().copied().unwrap_or(0);
    let key_dim = match (c.key_dim, c.num_heads) {
        (Some(k), _) => k,
        // Refused by the check below, which names num_heads.
        (None, 0) => 0,
        (None, h) if d_model % h == 0 => d_model / h,
        (None, _) => {
            return Err(config_error(
                &name,
                format!(
                    "d_model {d_model} is not a multiple of num_heads {}: set key_dim",
                    c.num_heads
                ),
            ))
        }
    };
    let heads = Heads {
        num_heads: c.num_heads,
        key_dim,
        value_dim: key_dim,
        use_bias: true,
        causal: false,
        dropout: c.dropout,
    };
    heads.check(&name, input)?;
    if c.ff_dim == 0 {
        return Err(config_error(&name, "ff_dim must be positive"));
    }
    if c.layer_norm_epsilon.is_nan() || c.layer_norm_epsilon <= 0.0 {
        return Err(config_error(&name, "layer_norm_epsilon must be positive"));
    }

    let norm = Norm {
        epsilon: c.layer_norm_epsilon,
        center: true,
        scale: true,
    };
    let mut params = heads.init("self_attention_layer/", d_model, rng);
    params.extend(norm.init("self_attention_layer_norm/", d_model));
    params.extend(norm.init("feedforward_layer_norm/", d_model));
    params.extend(dense_params(
        "feedforward_intermediate_dense/",
        d_model,
        c.ff_dim,
        rng,
    ));
    params.extend(dense_params(
        "feedforward_output_dense/",
        c.ff_dim,
        d_model,
        rng,
    ));
    Ok(Box::new(TransformerEncoder {
        name,
        config: c.clone(),
        heads,
        norm,
        params,
        output_shape: input.to_vec(),
    }))
}

/// A dense sublayer's Glorot-uniform `kernel [fan_in, units]` and zero `bias [units]`.
fn dense_params(prefix: &str, fan_in: usize, units: usize, rng: &mut Rng) -> [Param; 2] {
    [
        Param::trainable(
            &format!("{prefix}kernel"),
            glorot_uniform(&[fan_in, units], fan_in, units, rng),
        ),
        Param::trainable(&format!("{prefix}bias"), Tensor::zeros([units])),
    ]
}

impl TransformerEncoder {
    /// The parameter groups: attention, attention norm, feed-forward norm, feed-forward dense.
    fn groups(&self) -> (&[Param], &[Param], &[Param], &[Param]) {
        let (attention, rest) = self.params.split_at(self.heads.param_len());
        let (attention_norm, rest) = rest.split_at(self.norm.param_len());
        let (ff_norm, dense) = rest.split_at(self.norm.param_len());
        (attention, attention_norm, ff_norm, dense)
    }

    fn dropout(&self, x: Tensor, ctx: &mut ForwardCtx) -> edgeflow_tensor::Result<Tensor> {
        if ctx.training && self.config.dropout > 0.0 {
            x.dropout(self.config.dropout, &mut ctx.rng)
        } else {
            Ok(x)
        }
    }

    fn feed_forward(&self, dense: &[Param], x: &Tensor) -> edgeflow_tensor::Result<Tensor> {
        let hidden = x.matmul(&dense[0].value)?.add(&dense[1].value)?;
        let hidden = self.config.activation.apply(&hidden)?;
        hidden.matmul(&dense[2].value)?.add(&dense[3].value)
    }

    fn block(
        &self,
        input: &Tensor,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> edgeflow_tensor::Result<Tensor> {
        let (attention, attention_norm, ff_norm, dense) = self.groups();
        let pre_norm = self.config.norm_first;

        let attention_in = if pre_norm {
            self.norm.forward(attention_norm, input)?
        } else {
            input.clone()
        };
        let attended = self.heads.forward(attention, &attention_in, mask, ctx)?;
        let mut x = input.add(&self.dropout(attended, ctx)?)?;
        if !pre_norm {
            x = self.norm.forward(attention_norm, &x)?;
        }

        let ff_in = if pre_norm {
            self.norm.forward(ff_norm, &x)?
        } else {
            x.clone()
        };
        let ff = self.feed_forward(dense, &ff_in)?;
        let mut x = x.add(&self.dropout(ff, ctx)?)?;
        if !pre_norm {
            x = self.norm.forward(ff_norm, &x)?;
        }
        Ok(x)
    }
}

impl Layer for TransformerEncoder {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::TransformerEncoder(TransformerEncoderConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        check_sequence_input(&self.name, input, &self.output_shape)?;
        let mask = sequence_mask(&self.name, ctx, input)?;
        self.block(input, mask.as_ref(), ctx).ctx(&self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
