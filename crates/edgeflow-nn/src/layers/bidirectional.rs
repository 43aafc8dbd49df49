//! `Bidirectional`: a recurrent layer run forwards and, with separate weights, backwards over
//! the sequence, the two outputs merged.

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::cell::Cell;
use super::recurrent::{check_input, check_recurrent, recurrent_output_shape, RecurrentConfig};
use super::sequence::sequence_mask;
use super::{ForwardCtx, Layer, LayerConfig, Param};
use crate::error::{Result, TensorContext};

/// How `Bidirectional` combines the forward and backward outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeMode {
    /// Forward then backward along the last axis (`2*units` wide). The default.
    #[default]
    Concat,
    /// Element-wise sum.
    Sum,
    /// Element-wise product.
    Mul,
    /// Element-wise mean.
    Ave,
}

/// `Bidirectional(layer, merge_mode)`: two copies of a recurrent `layer` with their own
/// weights, one reading the sequence from the first step to the last, the other from the last
/// to the first. With `return_sequences` the backward outputs are put back in input order, so
/// step `t` of the result merges both directions' outputs at step `t`.
///
/// With a sequence mask, both copies skip the padded steps (the state is carried over them),
/// so the backward copy reads each sequence reversed within its own length, as Keras does.
///
/// Parameters are named `forward_<layer>/kernel`, ..., `backward_<layer>/kernel`, ...
/// (`<layer>` is `lstm`, `gru` or `simple_rnn`), forward first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidirectionalConfig {
    /// The recurrent layer to run both ways.
    pub layer: RecurrentConfig,
    /// How to combine the two directions (default `concat`).
    #[serde(default)]
    pub merge_mode: MergeMode,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl BidirectionalConfig {
    /// Both directions of `layer`, concatenated.
    pub fn new(layer: impl Into<RecurrentConfig>) -> Self {
        BidirectionalConfig {
            layer: layer.into(),
            merge_mode: MergeMode::Concat,
            name: None,
        }
    }

    /// Sets the merge mode.
    pub fn merge_mode(mut self, mode: MergeMode) -> Self {
        self.merge_mode = mode;
        self
    }
}

impl From<BidirectionalConfig> for LayerConfig {
    fn from(c: BidirectionalConfig) -> Self {
        LayerConfig::Bidirectional(c)
    }
}

struct Bidirectional {
    name: String,
    config: BidirectionalConfig,
    cell: Cell,
    /// The forward copy's parameters, then the backward copy's.
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

/// Keras' name stem of a recurrent class: `LSTM` -> `lstm`, `SimpleRNN` -> `simple_rnn`.
fn stem(layer: &RecurrentConfig) -> &'static str {
    match layer {
        RecurrentConfig::SimpleRnn(_) => "simple_rnn",
        RecurrentConfig::Lstm(_) => "lstm",
        RecurrentConfig::Gru(_) => "gru",
    }
}

pub(super) fn build(
    c: &BidirectionalConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let features = check_recurrent(&c.layer, &name, input)?;
    let cell = c.layer.cell();
    let stem = stem(&c.layer);
    let mut params = cell.init(&format!("forward_{stem}/"), features, rng);
    params.extend(cell.init(&format!("backward_{stem}/"), features, rng));
    let width = match c.merge_mode {
        MergeMode::Concat => 2 * cell.units,
        _ => cell.units,
    };
    let output_shape = recurrent_output_shape(c.layer.return_sequences(), input, width);
    Ok(Box::new(Bidirectional {
        name,
        config: c.clone(),
        cell,
        params,
        output_shape,
    }))
}

impl Bidirectional {
    fn merge(&self, fwd: &Tensor, bwd: &Tensor) -> edgeflow_tensor::Result<Tensor> {
        match self.config.merge_mode {
            MergeMode::Concat => Tensor::concat(&[fwd.clone(), bwd.clone()], -1),
            MergeMode::Sum => fwd.add(bwd),
            MergeMode::Mul => fwd.mul(bwd),
            MergeMode::Ave => fwd.add(bwd)?.mul_scalar(0.5),
        }
    }
}

impl Layer for Bidirectional {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Bidirectional(BidirectionalConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        let features = self.params[0].value.dims()[0];
        check_input(&self.name, input, features)?;
        let mask = sequence_mask(&self.name, ctx, input)?;

        let half = self.params.len() / 2;
        let return_sequences = self.config.layer.return_sequences();
        let run = |params: &[Param], reverse: bool| {
            let w = self.cell.weights(params)?;
            self.cell
                .run(&w, input, mask.as_ref(), reverse, return_sequences)
        };
        let out = (|| {
            let fwd = run(&self.params[..half], false)?;
            let bwd = run(&self.params[half..], true)?;
            self.merge(&fwd, &bwd)
        })()
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
