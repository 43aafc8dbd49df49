//! Streaming inference: a built sequence model run one time step per call, every recurrent
//! layer's state carried from one call to the next.

use edgeflow_tensor::{no_grad, Tensor};

use super::{ForwardCtx, Layer, StepRole};
use crate::error::{NnError, Result};
use crate::model::Sequential;

/// A [`Sequential`] model run one time step at a time, made by [`Sequential::stream`].
///
/// Each [`Stream::step`] feeds one step `[batch, ...]` (the model's input shape without its
/// `seq_len` axis) and returns the model's output for it: for a model whose recurrent layers
/// return sequences, the output the whole-sequence forward gives at that step; for one whose
/// last recurrent layer returns only its final state, the output the whole-sequence forward
/// would give if the sequence ended at that step. A sequence mask made by `Embedding` or
/// `Masking` works as in the whole-sequence forward: a padded step keeps the state.
///
/// ```
/// use edgeflow_nn::layers::LstmConfig;
/// use edgeflow_nn::{DenseConfig, Sequential};
/// use edgeflow_tensor::Tensor;
///
/// let model = Sequential::builder([10, 3])
///     .add(LstmConfig::new(8))
///     .add(DenseConfig::new(2))
///     .build(0)?;
/// let mut stream = model.stream()?;
/// for _ in 0..10 {
///     let y = stream.step(&Tensor::ones([1, 3]))?;
///     assert_eq!(y.dims(), &[1, 2]);
/// }
/// stream.reset();
/// # Ok::<(), edgeflow_nn::NnError>(())
/// ```
pub struct Stream<'a> {
    model: &'a Sequential,
    roles: Vec<StepRole>,
    /// Per layer: the carried state (empty for non-recurrent layers and before the first step).
    states: Vec<Vec<Tensor>>,
    steps: usize,
}

impl Sequential {
    /// A [`Stream`] over this model, starting from zero states.
    ///
    /// # Errors
    /// [`NnError::Config`] unless the model is made of per-step layers (`Embedding`,
    /// `Masking`, `Dense`, `Activation`, `Dropout`, `BatchNormalization`) and at least one
    /// recurrent layer (`SimpleRNN`, `LSTM`, `GRU`); the error names the first layer that
    /// needs the whole sequence (`Bidirectional`, pooling, `Flatten`, convolutions).
    pub fn stream(&self) -> Result<Stream<'_>> {
        let roles: Vec<StepRole> = self.layers.iter().map(|l| l.config().step_role()).collect();
        if let Some((layer, _)) = self
            .layers
            .iter()
            .zip(&roles)
            .find(|(_, r)| **r == StepRole::Sequence)
        {
            return Err(NnError::Config(format!(
                "layer {} ({}) needs the whole sequence and cannot run one time step at a \
                 time; streaming takes recurrent layers (SimpleRNN, LSTM, GRU) and per-step \
                 layers only",
                layer.name(),
                layer.config().type_name()
            )));
        }
        if !roles.contains(&StepRole::Recurrent) {
            return Err(NnError::Config(
                "streaming needs a model with a recurrent layer (SimpleRNN, LSTM, GRU)".into(),
            ));
        }
        Ok(Stream {
            model: self,
            states: vec![Vec::new(); roles.len()],
            roles,
            steps: 0,
        })
    }
}

impl Stream<'_> {
    /// Runs one time step `input [batch, ...input_shape[1..]]` (e.g. `[batch, features]`, or
    /// `[batch]` token ids for a model starting with `Embedding`) through the model with
    /// gradient recording off, and returns the model output for it.
    ///
    /// # Errors
    /// [`NnError::Input`] when the step does not have the model's per-step shape or its batch
    /// differs from the previous steps'; layer errors.
    pub fn step(&mut self, input: &Tensor) -> Result<Tensor> {
        let per_step = &self.model.input_shape()[1..];
        if input.rank() != per_step.len() + 1 || &input.dims()[1..] != per_step {
            return Err(NnError::Input(format!(
                "a stream step needs [batch{}], got {:?}",
                per_step
                    .iter()
                    .map(|d| format!(", {d}"))
                    .collect::<String>(),
                input.dims()
            )));
        }
        let out = no_grad(|| {
            let mut ctx = ForwardCtx::inference();
            let mut x = input.clone();
            for ((layer, role), state) in self
                .model
                .layers()
                .iter()
                .zip(&self.roles)
                .zip(&mut self.states)
            {
                x = run_layer(layer.as_ref(), *role, &x, state, &mut ctx)?;
            }
            Ok::<_, NnError>(x)
        })?;
        self.steps += 1;
        Ok(out)
    }

    /// Forgets every carried state: the next step starts a new sequence.
    pub fn reset(&mut self) {
        self.states.iter_mut().for_each(Vec::clear);
        self.steps = 0;
    }

    /// Number of steps since the stream was made or reset.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The state a recurrent layer carries, by layer name: `[h]`, or `[h, c]` for an LSTM,
    /// each `[batch, units]`; empty before the first step. `None` for an unknown name.
    pub fn state(&self, layer: &str) -> Option<&[Tensor]> {
        self.model
            .layers()
            .iter()
            .position(|l| l.name() == layer)
            .map(|i| self.states[i].as_slice())
    }
}

fn run_layer(
    layer: &dyn Layer,
    role: StepRole,
    x: &Tensor,
    state: &mut Vec<Tensor>,
    ctx: &mut ForwardCtx,
) -> Result<Tensor> {
    match role {
        StepRole::Recurrent => layer.step(x, state, ctx),
        _ => layer.forward(x, ctx),
    }
}
