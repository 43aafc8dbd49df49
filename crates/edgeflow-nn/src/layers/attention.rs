//! Multi-head self-attention with Keras' weight layout, and the attention core that
//! `TransformerEncoder` shares.

use edgeflow_tensor::{is_grad_enabled, Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::dense::yes;
use super::sequence::sequence_mask;
use super::{config_error, glorot_uniform, ForwardCtx, Layer, LayerConfig, Param};
use crate::error::{NnError, Result, TensorContext};

/// What a masked score gets added: Keras' large negative number for f32. Finite on purpose: a
/// row whose every score is masked stays finite through the softmax (`-inf` would give NaN).
const MASKED: f32 = -1e9;

/// `MultiHeadAttention(num_heads, key_dim)` used as self-attention: query, key and value are
/// all the input `[batch, seq_len, d_model]`; the output has the same shape.
///
/// Per head `h`: `softmax(Q_h·K_hᵀ/√key_dim + mask)·V_h` with `Q_h = input·W^Q_h + b^Q_h`
/// (and so on); the heads are concatenated and projected back to `d_model` by `W^O`.
///
/// Weights as Keras' `EinsumDense` sublayers, named `query/kernel [d_model, num_heads,
/// key_dim]`, `query/bias [num_heads, key_dim]`, the same for `key` and for `value` (with
/// `value_dim`), `attention_output/kernel [num_heads, value_dim, d_model]` and
/// `attention_output/bias [d_model]`. Kernels are Glorot uniform with Keras' fans for a
/// rank-3 kernel (`fan_in = d_model * num_heads`, `fan_out = d_model * key_dim` for the
/// projections; `num_heads * value_dim` and `num_heads * d_model` for the output), biases zero.
///
/// The sequence mask ([`ForwardCtx::mask`], kept for the next layer) hides padded keys: their
/// scores get `-1e9` added, so they receive exactly zero weight. A padded query has every key
/// masked, as in Keras (query mask and key mask are combined); like Keras 3's masked softmax
/// it gets **zero** attention weights, not a uniform row, so its output is
/// `attention_output/bias` and never NaN. With `causal`, query `i` sees only keys `0..=i`.
/// `dropout` drops attention weights during training only.
///
/// Memory: the only `[batch, num_heads, seq_len, seq_len]` tensors are those of the current
/// batch's scores; with gradient recording off none outlives the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttentionConfig {
    /// Number of attention heads.
    pub num_heads: usize,
    /// Size of each head's query and key vectors.
    pub key_dim: usize,
    /// Size of each head's value vectors (default `key_dim`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_dim: Option<usize>,
    /// Dropout rate on the attention weights, training only (default 0).
    #[serde(default)]
    pub dropout: f32,
    /// Whether the four projections have biases (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Each position attends only to itself and earlier ones (default false; Keras'
    /// `use_causal_mask` call argument, accepted under that name too).
    #[serde(default, alias = "use_causal_mask")]
    pub causal: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl MultiHeadAttentionConfig {
    /// Self-attention with `num_heads` heads of size `key_dim` and Keras defaults.
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttentionConfig {
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            causal: false,
            name: None,
        }
    }

    /// Sets `value_dim`.
    pub fn value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// Sets the attention dropout rate.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Sets `use_bias`.
    pub fn use_bias(mut self, yes: bool) -> Self {
        self.use_bias = yes;
        self
    }

    /// Sets `causal`.
    pub fn causal(mut self, yes: bool) -> Self {
        self.causal = yes;
        self
    }

    pub(super) fn heads(&self) -> Heads {
        Heads {
            num_heads: self.num_heads,
            key_dim: self.key_dim,
            value_dim: self.value_dim.unwrap_or(self.key_dim),
            use_bias: self.use_bias,
            causal: self.causal,
            dropout: self.dropout,
        }
    }
}

impl From<MultiHeadAttentionConfig> for LayerConfig {
    fn from(c: MultiHeadAttentionConfig) -> Self {
        LayerConfig::MultiHeadAttention(c)
    }
}

/// The attention computation and its weights' layout, without a layer around it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    pub num_heads: usize,
    pub key_dim: usize,
    pub value_dim: usize,
    pub use_bias: bool,
    pub causal: bool,
    pub dropout: f32,
}

/// Projection indices into the parameter list.
const QUERY: usize = 0;
const KEY: usize = 1;
const VALUE: usize = 2;
const OUTPUT: usize = 3;

impl Heads {
    /// Checks the settings for inputs `[seq_len, d_model]`; returns `d_model`.
    pub fn check(&self, name: &str, input: &[usize]) -> Result<usize> {
        let &[_, d_model] = input else {
            return Err(config_error(
                name,
                format!("attention expects [seq_len, d_model] input, got {input:?}"),
            ));
        };
        if self.num_heads == 0 || self.key_dim == 0 || self.value_dim == 0 || d_model == 0 {
            return Err(config_error(
                name,
                "num_heads, key_dim, value_dim and d_model must be positive",
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(config_error(
                name,
                format!("dropout rate {} is outside [0, 1)", self.dropout),
            ));
        }
        Ok(d_model)
    }

    /// Number of parameters per projection: kernel, and bias when used.
    fn per_projection(&self) -> usize {
        if self.use_bias {
            2
        } else {
            1
        }
    }

    /// Number of parameter tensors.
    pub fn param_len(&self) -> usize {
        4 * self.per_projection()
    }

    /// Keras' initial weights (see [`MultiHeadAttentionConfig`]), names prefixed by `prefix`.
    pub fn init(&self, prefix: &str, d_model: usize, rng: &mut Rng) -> Vec<Param> {
        let (h, dk, dv) = (self.num_heads, self.key_dim, self.value_dim);
        let mut params = Vec::with_capacity(self.param_len());
        for (part, width) in [("query", dk), ("key", dk), ("value", dv)] {
            // Keras' fans of a rank-3 kernel treat the leading axis as a receptive field.
            let kernel = glorot_uniform(&[d_model, h, width], d_model * h, d_model * width, rng);
            params.push(Param::trainable(&format!("{prefix}{part}/kernel"), kernel));
            if self.use_bias {
                let bias = Tensor::zeros([h, width]);
                params.push(Param::trainable(&format!("{prefix}{part}/bias"), bias));
            }
        }
        let kernel = glorot_uniform(&[h, dv, d_model], h * dv, h * d_model, rng);
        params.push(Param::trainable(
            &format!("{prefix}attention_output/kernel"),
            kernel,
        ));
        if self.use_bias {
            params.push(Param::trainable(
                &format!("{prefix}attention_output/bias"),
                Tensor::zeros([d_model]),
            ));
        }
        params
    }

    /// Kernel and bias of projection `which` (`QUERY` ... `OUTPUT`).
    fn weights<'a>(&self, params: &'a [Param], which: usize) -> (&'a Tensor, Option<&'a Tensor>) {
        let i = which * self.per_projection();
        let bias = self.use_bias.then(|| &params[i + 1].value);
        (&params[i].value, bias)
    }

    /// `input [batch, seq_len, d_model]` projected to `[batch, seq_len, num_heads, width]`.
    fn project(
        &self,
        params: &[Param],
        which: usize,
        input: &Tensor,
        width: usize,
    ) -> edgeflow_tensor::Result<Tensor> {
        let (batch, len, d_model) = (input.dims()[0], input.dims()[1], input.dims()[2]);
        let (kernel, bias) = self.weights(params, which);
        let cols = self.num_heads * width;
        let mut y = input.matmul(&kernel.reshape([d_model, cols])?)?;
        if let Some(b) = bias {
            y = y.add(&b.reshape([cols])?)?;
        }
        y.reshape([batch, len, self.num_heads, width])
    }

    /// Self-attention of `input [batch, seq_len, d_model]` with the `[batch, seq_len]` sequence
    /// mask `mask` (1 real, 0 padding). `params` as made by [`Heads::init`].
    pub fn forward(
        &self,
        params: &[Param],
        input: &Tensor,
        mask: Option<&Tensor>,
        ctx: &mut ForwardCtx,
    ) -> edgeflow_tensor::Result<Tensor> {
        let (batch, len) = (input.dims()[0], input.dims()[1]);
        let (h, dk, dv) = (self.num_heads, self.key_dim, self.value_dim);

        // Scaling the query rather than the scores touches seq_len times fewer elements.
        let q = self
            .project(params, QUERY, input, dk)?
            .mul_scalar(1.0 / (dk as f32).sqrt())?
            .permute(&[0, 2, 1, 3])?;
        let k_t = self
            .project(params, KEY, input, dk)?
            .permute(&[0, 2, 3, 1])?;
        let v = self
            .project(params, VALUE, input, dv)?
            .permute(&[0, 2, 1, 3])?;

        let mut scores = q.matmul(&k_t)?;
        if let Some(bias) = self.score_bias(mask, batch, len)? {
            scores = scores.add(&bias)?;
        }
        let mut weights = scores.softmax(-1)?;
        if !is_grad_enabled() {
            // A softmax output keeps its logits for a cross-entropy; nothing needs them here, and
            // without a graph letting them go leaves one score-sized tensor alive, not two.
            weights = weights.detach();
        }
        drop(scores);
        if ctx.training && self.dropout > 0.0 {
            weights = weights.dropout(self.dropout, &mut ctx.rng)?;
        }

        let mut context =
            weights
                .matmul(&v)?
                .permute(&[0, 2, 1, 3])?
                .reshape([batch, len, h * dv])?;
        if let Some(m) = mask {
            // A padded query's row is fully masked: zero weights, as Keras 3 gives.
            context = context.mul(&m.reshape([batch, len, 1])?)?;
        }
        let (kernel, bias) = self.weights(params, OUTPUT);
        let d_model = kernel.dims()[2];
        let mut out = context.matmul(&kernel.reshape([h * dv, d_model])?)?;
        if let Some(b) = bias {
            out = out.add(b)?;
        }
        Ok(out)
    }

    /// The additive score mask: `[batch, 1, 1, seq_len]` for padded keys, `[1, 1, seq_len,
    /// seq_len]` for causality, `[batch, 1, seq_len, seq_len]` for both; `None` without either.
    fn score_bias(
        &self,
        mask: Option<&Tensor>,
        batch: usize,
        len: usize,
    ) -> edgeflow_tensor::Result<Option<Tensor>> {
        let keys = match mask {
            Some(m) => Some(
                m.detach()
                    .add_scalar(-1.0)?
                    .mul_scalar(-MASKED)?
                    .reshape([batch, 1, 1, len])?,
            ),
            None => None,
        };
        let causal = if self.causal {
            let future: Vec<f32> = (0..len * len)
                .map(|i| if i % len > i / len { MASKED } else { 0.0 })
                .collect();
            Some(Tensor::from_vec(future, [1, 1, len, len])?)
        } else {
            None
        };
        match (keys, causal) {
            (Some(k), Some(c)) => k.add(&c).map(Some),
            (k, c) => Ok(k.or(c)),
        }
    }
}

struct MultiHeadAttention {
    name: String,
    config: MultiHeadAttentionConfig,
    heads: Heads,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &MultiHeadAttentionConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let heads = c.heads();
    let d_model = heads.check(&name, input)?;
    let params = heads.init("", d_model, rng);
    Ok(Box::new(MultiHeadAttention {
        name,
        config: c.clone(),
        heads,
        params,
        output_shape: input.to_vec(),
    }))
}

/// Checks that a layer built for `[seq_len, d_model]` got `[batch, seq_len, d_model]`.
pub(super) fn check_sequence_input(name: &str, input: &Tensor, built: &[usize]) -> Result<()> {
    if input.rank() != 3 || input.dims()[1..] != *built {
        return Err(NnError::Input(format!(
            "layer {name}: expected input [batch, {}, {}], got {:?}",
            built[0],
            built[1],
            input.dims()
        )));
    }
    Ok(())
}

impl Layer for MultiHeadAttention {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::MultiHeadAttention(MultiHeadAttentionConfig {
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
        self.heads
            .forward(&self.params, input, mask.as_ref(), ctx)
            .ctx(&self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}
