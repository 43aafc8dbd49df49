//! Recurrent layers: `SimpleRNN`, `LSTM` and `GRU`, with Keras' gate order, packed weight
//! layout, initializers and defaults.
//!
//! Input `[batch, seq_len, features]`; output the last state `[batch, units]` or, with
//! `return_sequences`, every step's output `[batch, seq_len, units]`. A sequence mask in
//! [`ForwardCtx::mask`] makes padded steps keep the state and output zeros.

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::cell::{Cell, CellKind};
use super::sequence::sequence_mask;
use super::{config_error, ForwardCtx, Layer, LayerConfig, Param};
use crate::activation::Activation;
use crate::error::{NnError, Result, TensorContext};

fn tanh() -> Activation {
    Activation::Tanh
}

fn sigmoid() -> Activation {
    Activation::Sigmoid
}

fn yes() -> bool {
    true
}

/// `SimpleRNN(units)`: `h_t = activation(x_t · kernel + h_{t-1} · recurrent_kernel + bias)`.
///
/// Weights as Keras: `kernel [features, units]` (Glorot uniform), `recurrent_kernel [units,
/// units]` (orthogonal), `bias [units]` (zeros).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimpleRnnConfig {
    /// Size of the state and of the output.
    pub units: usize,
    /// Activation of the state (default tanh).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Whether to add a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Output every step (`[batch, seq_len, units]`) instead of the last state (default false).
    #[serde(default)]
    pub return_sequences: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `LSTM(units)` with Keras' gate order `i, f, c, o`:
///
/// ```text
/// [i f c o] = x_t · kernel + h_{t-1} · recurrent_kernel + bias
/// i, f, o   = recurrent_activation(i, f, o)      c~ = activation(c)
/// c_t = f * c_{t-1} + i * c~                      h_t = o * activation(c_t)
/// ```
///
/// Weights packed as Keras: `kernel [features, 4*units]` (Glorot uniform), `recurrent_kernel
/// [units, 4*units]` (orthogonal), `bias [4*units]` (zeros, the forget block ones when
/// `unit_forget_bias`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LstmConfig {
    /// Size of the state and of the output.
    pub units: usize,
    /// Activation of the candidate and of the cell output (default tanh).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Activation of the gates (default sigmoid, the logistic function).
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
    /// Whether to add a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Initialise the forget-gate bias to one (default true).
    #[serde(default = "yes")]
    pub unit_forget_bias: bool,
    /// Output every step (`[batch, seq_len, units]`) instead of the last state (default false).
    #[serde(default)]
    pub return_sequences: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `GRU(units)` with Keras' gate order `z, r, h`:
///
/// ```text
/// z = recurrent_activation(x·Wz + bz_in + h·Uz + bz_rec)
/// r = recurrent_activation(x·Wr + br_in + h·Ur + br_rec)
/// reset_after:  n = activation(x·Wh + bh_in + r * (h·Uh + bh_rec))
/// reset_before: n = activation(x·Wh + (r * h)·Uh + bh)
/// h' = z * h + (1 - z) * n
/// ```
///
/// Weights packed as Keras: `kernel [features, 3*units]`, `recurrent_kernel [units, 3*units]`,
/// `bias [2, 3*units]` (input row, recurrent row) when `reset_after`, else `[3*units]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GruConfig {
    /// Size of the state and of the output.
    pub units: usize,
    /// Activation of the candidate (default tanh).
    #[serde(default = "tanh")]
    pub activation: Activation,
    /// Activation of the gates (default sigmoid).
    #[serde(default = "sigmoid")]
    pub recurrent_activation: Activation,
    /// Whether to add a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Apply the reset gate after the recurrent matmul (default true, Keras' and cuDNN's
    /// convention).
    #[serde(default = "yes")]
    pub reset_after: bool,
    /// Output every step (`[batch, seq_len, units]`) instead of the last state (default false).
    #[serde(default)]
    pub return_sequences: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl SimpleRnnConfig {
    /// A `SimpleRNN` with `units` units and Keras defaults.
    pub fn new(units: usize) -> Self {
        SimpleRnnConfig {
            units,
            activation: tanh(),
            use_bias: true,
            return_sequences: false,
            name: None,
        }
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

impl LstmConfig {
    /// An `LSTM` with `units` units and Keras defaults.
    pub fn new(units: usize) -> Self {
        LstmConfig {
            units,
            activation: tanh(),
            recurrent_activation: sigmoid(),
            use_bias: true,
            unit_forget_bias: true,
            return_sequences: false,
            name: None,
        }
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }
}

impl GruConfig {
    /// A `GRU` with `units` units and Keras defaults (`reset_after` true).
    pub fn new(units: usize) -> Self {
        GruConfig {
            units,
            activation: tanh(),
            recurrent_activation: sigmoid(),
            use_bias: true,
            reset_after: true,
            return_sequences: false,
            name: None,
        }
    }

    /// Sets `return_sequences`.
    pub fn return_sequences(mut self, yes: bool) -> Self {
        self.return_sequences = yes;
        self
    }

    /// Sets `reset_after`.
    pub fn reset_after(mut self, yes: bool) -> Self {
        self.reset_after = yes;
        self
    }
}

/// One of the recurrent layer configurations, tagged by its Keras class name: what
/// `Bidirectional` wraps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RecurrentConfig {
    /// A `SimpleRNN`.
    #[serde(rename = "SimpleRNN")]
    SimpleRnn(SimpleRnnConfig),
    /// An `LSTM`.
    #[serde(rename = "LSTM")]
    Lstm(LstmConfig),
    /// A `GRU`.
    #[serde(rename = "GRU")]
    Gru(GruConfig),
}

impl RecurrentConfig {
    /// The Keras class name.
    pub fn type_name(&self) -> &'static str {
        match self {
            RecurrentConfig::SimpleRnn(_) => "SimpleRNN",
            RecurrentConfig::Lstm(_) => "LSTM",
            RecurrentConfig::Gru(_) => "GRU",
        }
    }

    /// Whether every step's output is returned.
    pub fn return_sequences(&self) -> bool {
        match self {
            RecurrentConfig::SimpleRnn(c) => c.return_sequences,
            RecurrentConfig::Lstm(c) => c.return_sequences,
            RecurrentConfig::Gru(c) => c.return_sequences,
        }
    }

    /// The explicit layer name, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            RecurrentConfig::SimpleRnn(c) => c.name.as_deref(),
            RecurrentConfig::Lstm(c) => c.name.as_deref(),
            RecurrentConfig::Gru(c) => c.name.as_deref(),
        }
    }

    /// The same layer with `return_sequences` set to `yes`.
    pub fn with_return_sequences(mut self, yes: bool) -> Self {
        match &mut self {
            RecurrentConfig::SimpleRnn(c) => c.return_sequences = yes,
            RecurrentConfig::Lstm(c) => c.return_sequences = yes,
            RecurrentConfig::Gru(c) => c.return_sequences = yes,
        }
        self
    }

    fn with_name(&self, name: String) -> RecurrentConfig {
        let mut c = self.clone();
        match &mut c {
            RecurrentConfig::SimpleRnn(c) => c.name = Some(name),
            RecurrentConfig::Lstm(c) => c.name = Some(name),
            RecurrentConfig::Gru(c) => c.name = Some(name),
        }
        c
    }

    pub(crate) fn cell(&self) -> Cell {
        match self {
            RecurrentConfig::SimpleRnn(c) => Cell {
                kind: CellKind::Simple,
                units: c.units,
                activation: c.activation,
                recurrent_activation: c.activation,
                use_bias: c.use_bias,
            },
            RecurrentConfig::Lstm(c) => Cell {
                kind: CellKind::Lstm {
                    unit_forget_bias: c.unit_forget_bias,
                },
                units: c.units,
                activation: c.activation,
                recurrent_activation: c.recurrent_activation,
                use_bias: c.use_bias,
            },
            RecurrentConfig::Gru(c) => Cell {
                kind: CellKind::Gru {
                    reset_after: c.reset_after,
                },
                units: c.units,
                activation: c.activation,
                recurrent_activation: c.recurrent_activation,
                use_bias: c.use_bias,
            },
        }
    }

    /// Into the matching [`LayerConfig`] variant.
    pub fn into_layer_config(self) -> LayerConfig {
        match self {
            RecurrentConfig::SimpleRnn(c) => LayerConfig::SimpleRnn(c),
            RecurrentConfig::Lstm(c) => LayerConfig::Lstm(c),
            RecurrentConfig::Gru(c) => LayerConfig::Gru(c),
        }
    }
}

impl From<SimpleRnnConfig> for RecurrentConfig {
    fn from(c: SimpleRnnConfig) -> Self {
        RecurrentConfig::SimpleRnn(c)
    }
}

impl From<LstmConfig> for RecurrentConfig {
    fn from(c: LstmConfig) -> Self {
        RecurrentConfig::Lstm(c)
    }
}

impl From<GruConfig> for RecurrentConfig {
    fn from(c: GruConfig) -> Self {
        RecurrentConfig::Gru(c)
    }
}

impl From<SimpleRnnConfig> for LayerConfig {
    fn from(c: SimpleRnnConfig) -> Self {
        LayerConfig::SimpleRnn(c)
    }
}

impl From<LstmConfig> for LayerConfig {
    fn from(c: LstmConfig) -> Self {
        LayerConfig::Lstm(c)
    }
}

impl From<GruConfig> for LayerConfig {
    fn from(c: GruConfig) -> Self {
        LayerConfig::Gru(c)
    }
}

/// Checks a recurrent layer's settings and input `[seq_len, features]`; returns `features`.
pub(super) fn check_recurrent(c: &RecurrentConfig, name: &str, input: &[usize]) -> Result<usize> {
    let &[_, features] = input else {
        return Err(config_error(
            name,
            format!(
                "{} expects [seq_len, features] input, got {input:?}",
                c.type_name()
            ),
        ));
    };
    if c.cell().units == 0 {
        return Err(config_error(name, "units must be positive"));
    }
    Ok(features)
}

/// Output shape (without the batch axis) of a recurrent layer on `[seq_len, features]`.
pub(super) fn recurrent_output_shape(
    return_sequences: bool,
    input: &[usize],
    width: usize,
) -> Vec<usize> {
    if return_sequences {
        vec![input[0], width]
    } else {
        vec![width]
    }
}

struct Recurrent {
    name: String,
    config: RecurrentConfig,
    cell: Cell,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build(
    c: &RecurrentConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let features = check_recurrent(c, &name, input)?;
    let cell = c.cell();
    let params = cell.init("", features, rng);
    let output_shape = recurrent_output_shape(c.return_sequences(), input, cell.units);
    Ok(Box::new(Recurrent {
        name,
        config: c.clone(),
        cell,
        params,
        output_shape,
    }))
}

/// Checks that a recurrent layer got `[batch, seq_len, features]` with the features it was
/// built for.
pub(super) fn check_input(name: &str, input: &Tensor, features: usize) -> Result<()> {
    match *input.dims() {
        [_, _, f] if f == features => Ok(()),
        _ => Err(NnError::Input(format!(
            "layer {name}: expected input [batch, seq_len, {features}], got {:?}",
            input.dims()
        ))),
    }
}

/// The mask of one streaming step as `[batch, 1]`, from a `[batch]` or `[batch, 1]` mask.
pub(super) fn step_mask(name: &str, ctx: &ForwardCtx, batch: usize) -> Result<Option<Tensor>> {
    let Some(m) = &ctx.mask else {
        return Ok(None);
    };
    if m.elem_count() != batch || m.dims().first() != Some(&batch) {
        return Err(NnError::Input(format!(
            "layer {name}: a step mask of shape {:?} does not fit a batch of {batch}",
            m.dims()
        )));
    }
    m.reshape([batch, 1]).map(Some).ctx(name)
}

/// Checks a streaming step's input `[batch, features]` against the carried state.
pub(super) fn check_step_input(
    name: &str,
    input: &Tensor,
    features: usize,
    state: &[Tensor],
) -> Result<()> {
    let fits = matches!(*input.dims(), [_, f] if f == features);
    let same_batch = state.first().is_none_or(|h| h.dims()[0] == input.dims()[0]);
    if !fits || !same_batch {
        return Err(NnError::Input(format!(
            "layer {name}: a step needs [batch, {features}] with the batch of the previous \
             steps, got {:?}",
            input.dims()
        )));
    }
    Ok(())
}

impl Layer for Recurrent {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        self.config.with_name(self.name.clone()).into_layer_config()
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let features = self.params[0].value.dims()[0];
        check_input(&self.name, input, features)?;
        let mask = sequence_mask(&self.name, ctx, input)?;

        let w = self.cell.weights(&self.params).ctx(&self.name)?;
        let return_sequences = self.config.return_sequences();
        let out = self
            .cell
            .run(&w, input, mask.as_ref(), false, return_sequences)
            .ctx(&self.name)?;

        if !return_sequences {
            ctx.mask = None;
        }
        Ok(out)
    }

    fn step(
        &self,
        input: &Tensor,
        state: &mut Vec<Tensor>,
        ctx: &mut ForwardCtx,
    ) -> Result<Tensor> {
        let features = self.params[0].value.dims()[0];
        check_step_input(&self.name, input, features, state)?;
        let mask = step_mask(&self.name, ctx, input.dims()[0])?;

        let w = self.cell.weights(&self.params).ctx(&self.name)?;
        let return_sequences = self.config.return_sequences();
        let out = self
            .cell
            .stream_step(&w, input, state, mask.as_ref(), return_sequences)
            .ctx(&self.name)?;

        if !return_sequences {
            ctx.mask = None;
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
