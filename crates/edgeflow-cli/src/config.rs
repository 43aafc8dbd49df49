//! The training configuration file (TOML): data, model, compile and fit sections.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgeflow_nn::{Architecture, Loss, Metric, OptimizerConfig, OptimizerKind};
use serde::Deserialize;

/// A whole training configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Where the data is and how to read it.
    pub data: DataConfig,
    /// The model, layer by layer.
    pub model: Architecture,
    /// Optimizer, loss and metrics.
    pub compile: CompileSection,
    /// Epochs, batch size, validation.
    #[serde(default)]
    pub fit: FitSection,
}

/// Supported dataset layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// `path/{train,test}/{class}/*.jpg|png`.
    ImageFolder,
    /// `path/data_batch_{1..5}.bin` and `path/test_batch.bin`.
    Cifar10Binary,
}

/// The `[data]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset folder; relative paths are taken from the config file's folder.
    pub path: PathBuf,
    /// Layout of the folder.
    pub format: DataFormat,
    /// Multiplier applied to raw 8-bit pixels (1/255 scales to [0, 1]).
    #[serde(default = "one")]
    pub scale: f32,
    /// Optional per-channel mean subtracted after scaling.
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Optional per-channel standard deviation divided by after that.
    #[serde(default)]
    pub std: Vec<f32>,
}

fn one() -> f32 {
    1.0
}

/// An optimizer written as a name (`"adam"`) or as a table with settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OptimizerSpec {
    /// Keras name with defaults.
    Name(String),
    /// `{ type = "adam", learning_rate = 0.001, ... }`.
    Full(OptimizerConfig),
}

/// The `[compile]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileSection {
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// Keras loss name.
    pub loss: String,
    /// Whether the model outputs logits.
    #[serde(default)]
    pub from_logits: bool,
    /// Keras metric names.
    #[serde(default)]
    pub metrics: Vec<String>,
}

/// The `[fit]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSection {
    /// Passes over the training data.
    #[serde(default = "epochs")]
    pub epochs: usize,
    /// Samples per step.
    #[serde(default = "batch_size")]
    pub batch_size: usize,
    /// Fraction of training data held out for validation.
    #[serde(default)]
    pub validation_split: f32,
    /// Reshuffle every epoch.
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Seed of weights, shuffling and dropout.
    #[serde(default)]
    pub seed: u64,
}

fn epochs() -> usize {
    1
}
fn batch_size() -> usize {
    32
}
fn yes() -> bool {
    true
}

impl Default for FitSection {
    fn default() -> Self {
        FitSection {
            epochs: 1,
            batch_size: 32,
            validation_split: 0.0,
            shuffle: true,
            seed: 0,
        }
    }
}

impl TrainConfig {
    /// Reads and checks a config file. Syntax and unknown names are reported with the line.
    pub fn load(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: TrainConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if config.data.path.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            config.data.path = base.join(&config.data.path);
        }
        config
            .compile_parts()
            .with_context(|| format!("{}: [compile]", path.display()))?;
        Ok(config)
    }

    /// The optimizer, loss and metrics of the `[compile]` section.
    pub fn compile_parts(&self) -> Result<(OptimizerConfig, Loss, Vec<Metric>)> {
        let c = &self.compile;
        let optimizer = match &c.optimizer {
            OptimizerSpec::Full(o) => o.clone(),
            OptimizerSpec::Name(name) => optimizer_by_name(name)?,
        };
        let loss = Loss::from_name(&c.loss, c.from_logits)?;
        let metrics = c
            .metrics
            .iter()
            .map(|m| Metric::from_name(m))
            .collect::<Result<_, _>>()?;
        Ok((optimizer, loss, metrics))
    }
}

fn optimizer_by_name(name: &str) -> Result<OptimizerConfig> {
    let known = ["sgd", "adam", "adamw", "rmsprop"];
    let key = name.to_ascii_lowercase();
    if !known.contains(&key.as_str()) {
        bail!("unknown optimizer {name:?}; known: {}", known.join(", "));
    }
    let table = serde_json::json!({ "type": key });
    let kind: OptimizerKind = serde_json::from_value(table)?;
    Ok(kind.into())
}
