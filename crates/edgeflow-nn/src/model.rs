//! `Sequential`: a stack of layers, built for an input shape, compiled with an optimizer, a
//! loss and metrics.

use edgeflow_tensor::{Rng, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};
use crate::layers::{ForwardCtx, Layer, LayerConfig, Param};
use crate::loss::Loss;
use crate::metrics::Metric;
use crate::optimizer::{Optimizer, OptimizerConfig};

/// The model's architecture: what the model file stores as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Model name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Shape of one input sample, without the batch axis (`[height, width, channels]`).
    pub input_shape: Vec<usize>,
    /// The layers in order.
    pub layers: Vec<LayerConfig>,
}

fn default_name() -> String {
    "sequential".into()
}

/// How raw inputs are turned into network inputs, stored with the model so that inference
/// applies the same steps as training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// Raw values are multiplied by this (1/255 for 8-bit images).
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (empty: none).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after that (empty: none).
    #[serde(default)]
    pub std: Vec<f32>,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Preprocessing {
            scale: 1.0,
            mean: Vec::new(),
            std: Vec::new(),
        }
    }
}

/// The word vocabulary of a model that reads token ids, so that a text model needs no file
/// beside it to turn text into its input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// How texts are split into words, in plain words (e.g. lower-cased alphanumeric runs).
    pub tokenizer: String,
    /// Token ids per text: the first tokens, padded with id 0 at the end.
    pub sequence_length: usize,
    /// Words in id order: word `i` has id `i + 2` (0 is padding, 1 out of vocabulary).
    pub words: Vec<String>,
}

/// What travels with a model besides its layers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Names of the output classes, in label order.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Input preprocessing.
    #[serde(default)]
    pub preprocessing: Preprocessing,
    /// The vocabulary of a model whose input is token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocabulary: Option<Vocabulary>,
}

/// What `compile` fixes: loss and metrics (the optimizer is kept separately, with its state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompileConfig {
    /// Optimizer description.
    pub optimizer: OptimizerConfig,
    /// The loss.
    pub loss: Loss,
    /// Metrics reported besides the loss.
    pub metrics: Vec<Metric>,
}

/// A linear stack of layers.
///
/// ```
/// use edgeflow_nn::{Activation, Conv2DConfig, DenseConfig, LayerConfig, Pooling2DConfig, Sequential};
///
/// let model = Sequential::builder([32, 32, 3])
///     .add(Conv2DConfig::new(32, 3).activation(Activation::Relu))
///     .add(Pooling2DConfig::new(2).max())
///     .add(LayerConfig::flatten())
///     .add(DenseConfig::new(10).activation(Activation::Softmax))
///     .build(0)?;
/// assert_eq!(model.param_count(), 896 + 72_010);
/// # Ok::<(), edgeflow_nn::NnError>(())
/// ```
pub struct Sequential {
    pub(crate) name: String,
    pub(crate) input_shape: Vec<usize>,
    pub(crate) layers: Vec<Box<dyn Layer>>,
    pub(crate) compiled: Option<(CompileConfig, Optimizer)>,
    /// Class names and preprocessing, saved with the model.
    pub metadata: ModelMetadata,
}

/// Collects layer configurations for [`Sequential::builder`].
#[derive(Debug, Clone)]
pub struct SequentialBuilder {
    arch: Architecture,
}

impl SequentialBuilder {
    /// Appends a layer.
    pub fn add(mut self, layer: impl Into<LayerConfig>) -> Self {
        self.arch.layers.push(layer.into());
        self
    }

    /// Builds the layers, initialising weights from `seed`.
    ///
    /// # Errors
    /// As [`Sequential::from_architecture`].
    pub fn build(self, seed: u64) -> Result<Sequential> {
        Sequential::from_architecture(&self.arch, seed)
    }
}

impl LayerConfig {
    /// A `Flatten` layer.
    pub fn flatten() -> LayerConfig {
        LayerConfig::Flatten(Default::default())
    }
}

impl Sequential {
    /// Starts a model for samples of `input_shape` (without the batch axis).
    pub fn builder(input_shape: impl Into<Vec<usize>>) -> SequentialBuilder {
        SequentialBuilder {
            arch: Architecture {
                name: default_name(),
                input_shape: input_shape.into(),
                layers: Vec::new(),
            },
        }
    }

    /// Builds every layer of `arch` in order, each for the output shape of the one before,
    /// with weights drawn from `seed`. Unnamed layers get Keras-style names (`conv2d`,
    /// `conv2d_1`, ...).
    ///
    /// # Errors
    /// [`NnError::Config`] naming the first layer that does not fit its input, or a duplicate
    /// layer name.
    pub fn from_architecture(arch: &Architecture, seed: u64) -> Result<Sequential> {
        if arch.input_shape.is_empty() || arch.input_shape.contains(&0) {
            return Err(NnError::Config(format!(
                "input shape {:?} must be non-empty and positive",
                arch.input_shape
            )));
        }
        let mut rng = Rng::seed(seed);
        let mut shape = arch.input_shape.clone();
        let mut layers: Vec<Box<dyn Layer>> = Vec::with_capacity(arch.layers.len());
        let mut counts = std::collections::HashMap::new();
        for config in &arch.layers {
            let name = match config.explicit_name() {
                Some(n) => n.to_string(),
                None => {
                    let stem = config.default_stem();
                    let k = counts.entry(stem.clone()).or_insert(0usize);
                    *k += 1;
                    if *k == 1 {
                        stem
                    } else {
                        format!("{stem}_{}", *k - 1)
                    }
                }
            };
            if layers.iter().any(|l| l.name() == name) {
                return Err(NnError::Config(format!("two layers are named {name:?}")));
            }
            let layer = config.build(name, &shape, &mut rng)?;
            shape = layer.output_shape().to_vec();
            layers.push(layer);
        }
        Ok(Sequential {
            name: arch.name.clone(),
            input_shape: arch.input_shape.clone(),
            layers,
            compiled: None,
            metadata: ModelMetadata::default(),
        })
    }

    /// The architecture, with every layer's name filled in.
    pub fn architecture(&self) -> Architecture {
        Architecture {
            name: self.name.clone(),
            input_shape: self.input_shape.clone(),
            layers: self.layers.iter().map(|l| l.config()).collect(),
        }
    }

    /// Shape of one input sample.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Shape of one output sample.
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map_or(&self.input_shape, |l| l.output_shape())
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Sets the optimizer, loss and metrics used by `fit` and `evaluate`.
    ///
    /// # Errors
    /// [`NnError::Config`] for an invalid optimizer or a metric that does not fit the loss.
    pub fn compile(
        &mut self,
        optimizer: impl Into<OptimizerConfig>,
        loss: Loss,
        metrics: Vec<Metric>,
    ) -> Result<()> {
        for m in &metrics {
            m.check(&loss)?;
        }
        let optimizer = optimizer.into();
        let state = Optimizer::new(optimizer.clone())?;
        self.compiled = Some((
            CompileConfig {
                optimizer,
                loss,
                metrics,
            },
            state,
        ));
        Ok(())
    }

    /// The compile settings, if compiled.
    pub fn compile_config(&self) -> Option<&CompileConfig> {
        self.compiled.as_ref().map(|(c, _)| c)
    }

    /// Every parameter as (`layer/param`, parameter), in layer order.
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        self.layers
            .iter()
            .flat_map(|l| {
                l.params()
                    .into_iter()
                    .map(move |p| (format!("{}/{}", l.name(), p.name), p))
            })
            .collect()
    }

    pub(crate) fn params_mut(&mut self) -> Vec<(String, &mut Param)> {
        self.layers
            .iter_mut()
            .flat_map(|l| {
                let name = l.name().to_string();
                l.params_mut()
                    .into_iter()
                    .map(move |p| (format!("{name}/{}", p.name), p))
            })
            .collect()
    }

    /// Copies of all parameter values (cheap: buffers are shared until written).
    pub fn weights(&self) -> Vec<Tensor> {
        self.named_params()
            .into_iter()
            .map(|(_, p)| p.value.clone())
            .collect()
    }

    /// Restores parameter values taken with [`Sequential::weights`].
    ///
    /// # Errors
    /// [`NnError::Input`] when the count or a shape differs.
    pub fn set_weights(&mut self, weights: Vec<Tensor>) -> Result<()> {
        let mut params = self.params_mut();
        if params.len() != weights.len() {
            return Err(NnError::Input(format!(
                "{} weights for {} parameters",
                weights.len(),
                params.len()
            )));
        }
        // Every tensor is checked before any is taken, so a bad list changes nothing.
        for ((name, p), w) in params.iter().zip(&weights) {
            if w.dims() != p.value.dims() || w.dtype() != p.value.dtype() {
                return Err(NnError::Input(format!(
                    "{name}: {:?} {:?} for a parameter of {:?} {:?}",
                    w.dtype(),
                    w.dims(),
                    p.value.dtype(),
                    p.value.dims()
                )));
            }
        }
        for ((_, p), w) in params.iter_mut().zip(weights) {
            p.value = w.detach().with_requires_grad(p.trainable);
        }
        Ok(())
    }

    /// Total number of parameter elements.
    pub fn param_count(&self) -> usize {
        self.named_params()
            .iter()
            .map(|(_, p)| p.value.elem_count())
            .sum()
    }

    /// Number of trainable parameter elements.
    pub fn trainable_param_count(&self) -> usize {
        self.named_params()
            .iter()
            .filter(|(_, p)| p.trainable)
            .map(|(_, p)| p.value.elem_count())
            .sum()
    }

    /// Runs the layers on a batch `[batch, ...input_shape]`.
    ///
    /// # Errors
    /// [`NnError::Input`] naming the expected and actual shape; layer errors.
    pub fn forward(&self, input: &Tensor, ctx: &mut ForwardCtx) -> Result<Tensor> {
        self.check_input(input.dims())?;
        let mut x = input.clone();
        for layer in &self.layers {
            x = layer.forward(&x, ctx)?;
        }
        Ok(x)
    }

    /// Checks that `dims` is `[batch, ...input_shape]`.
    ///
    /// # Errors
    /// [`NnError::Input`] naming the expected and actual shape.
    pub(crate) fn check_input(&self, dims: &[usize]) -> Result<()> {
        if dims.len() != self.input_shape.len() + 1 || dims[1..] != self.input_shape[..] {
            return Err(NnError::Input(format!(
                "expected a batch of shape [batch, {}], got {dims:?}",
                self.input_shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            )));
        }
        Ok(())
    }

    /// A Keras-style table of layers, output shapes and parameter counts, with totals.
    pub fn summary(&self) -> String {
        crate::summary::render(self)
    }
}
