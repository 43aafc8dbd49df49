//! The training configuration file (TOML): data, model, compile and fit sections.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use edgeflow_data::Augment;
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
    /// The config file's folder, where relative data paths start.
    #[serde(skip)]
    pub base: PathBuf,
}

/// Supported dataset layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// `path/{train,test}/{class}/*.jpg|png`.
    ImageFolder,
    /// `path/data_batch_{1..5}.bin` and `path/test_batch.bin`.
    Cifar10Binary,
    /// UCR/UEA `.ts` time series: a train and a test file.
    UcrTs,
    /// `path/{class}/*` text files split by a `train|test<TAB>class/file` list.
    TextFolder,
}

impl DataFormat {
    /// The name written in a config file.
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::ImageFolder => "image_folder",
            DataFormat::Cifar10Binary => "cifar10_binary",
            DataFormat::UcrTs => "ucr_ts",
            DataFormat::TextFolder => "text_folder",
        }
    }
}

/// What the model learns from the data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Class labels (the default).
    #[default]
    Classification,
    /// Forecasting the last steps of each series from the steps before them (`ucr_ts` only).
    Regression,
}

/// The `[data]` section as written. Which keys apply depends on `format`; [`DataConfig::source`]
/// checks them and resolves the paths.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Layout of the data.
    pub format: DataFormat,
    /// Dataset folder; relative paths are taken from the config file's folder.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Images: multiplier applied to raw 8-bit pixels (1/255 scales to [0, 1]).
    #[serde(default)]
    pub scale: Option<f32>,
    /// Images: optional per-channel mean subtracted after scaling.
    #[serde(default)]
    pub mean: Option<Vec<f32>>,
    /// Images: optional per-channel standard deviation divided by after that.
    #[serde(default)]
    pub std: Option<Vec<f32>>,
    /// Images: random changes to each training batch (never to validation or test data).
    #[serde(default)]
    pub augment: Option<Augment>,
    /// `image_folder`: scale images of another size to the model's input size (default false:
    /// such an image is an error).
    #[serde(default)]
    pub resize: Option<bool>,
    /// `image_folder`: leave out unreadable or damaged images, with a warning and a count
    /// (default false: such an image stops the run, naming the file).
    #[serde(default)]
    pub skip_bad_images: Option<bool>,
    /// `ucr_ts`: the training `.ts` file.
    #[serde(default)]
    pub train: Option<PathBuf>,
    /// `ucr_ts`: the test `.ts` file.
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// `ucr_ts`: problem name; the files are `{path}/{problem}/{problem}_{TRAIN,TEST}.ts`.
    #[serde(default)]
    pub problem: Option<String>,
    /// `ucr_ts`: standardise each channel with the training mean and std (default true).
    #[serde(default)]
    pub standardize: Option<bool>,
    /// `ucr_ts`: classification (default) or regression.
    #[serde(default)]
    pub task: Option<TaskKind>,
    /// `ucr_ts` regression: how many final steps of each series are the target (default 1).
    #[serde(default)]
    pub target_steps: Option<usize>,
    /// `text_folder`: the split list, relative to `path` (default `split.tsv`).
    #[serde(default)]
    pub split: Option<PathBuf>,
    /// `text_folder`: vocabulary size including the padding and OOV ids (default 20000).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// `text_folder`: tokens kept from the start of each text (default 200).
    #[serde(default)]
    pub sequence_length: Option<usize>,
}

/// Image preprocessing of the `[data]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFiles {
    /// The dataset folder.
    pub path: PathBuf,
    /// `image_folder` or `cifar10_binary`.
    pub format: DataFormat,
    /// Pixel multiplier.
    pub scale: f32,
    /// Per-channel mean (empty: none).
    pub mean: Vec<f32>,
    /// Per-channel std (empty: none).
    pub std: Vec<f32>,
    /// How image files are read.
    pub load: ImageLoad,
}

/// How the files of an image folder are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageLoad {
    /// Scale images of another size to the model's input size.
    pub resize: bool,
    /// Leave out unreadable images (counted and logged) instead of failing.
    pub skip_bad_images: bool,
}

/// The task of a time-series dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesTask {
    /// Class labels.
    Classification,
    /// The last `target_steps` steps are the target, the steps before them the input.
    Regression {
        /// Steps forecast.
        target_steps: usize,
    },
}

/// A resolved `ucr_ts` section.
#[derive(Debug, Clone, PartialEq)]
pub struct UcrSource {
    /// The training file.
    pub train: PathBuf,
    /// The test file.
    pub test: PathBuf,
    /// Standardise channels with the training statistics.
    pub standardize: bool,
    /// Classification or regression.
    pub task: SeriesTask,
}

/// A resolved `text_folder` section.
#[derive(Debug, Clone, PartialEq)]
pub struct TextSource {
    /// The folder of class sub-folders.
    pub root: PathBuf,
    /// The split list.
    pub split_file: PathBuf,
    /// Vocabulary size including the padding and OOV ids.
    pub max_tokens: usize,
    /// Tokens per text.
    pub sequence_length: usize,
}

/// The `[data]` section, checked and with its paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// Image folders or CIFAR-10 binary files.
    Images(ImageFiles),
    /// UCR/UEA time series.
    Ucr(UcrSource),
    /// A text folder with a split list.
    Text(TextSource),
}

/// Default `text_folder` vocabulary size.
pub const DEFAULT_MAX_TOKENS: usize = 20_000;
/// Default `text_folder` sequence length.
pub const DEFAULT_SEQUENCE_LENGTH: usize = 200;
/// Default `text_folder` split list.
pub const DEFAULT_SPLIT_FILE: &str = "split.tsv";

impl DataConfig {
    /// The keys given in the section, by name.
    fn given_keys(&self) -> Vec<&'static str> {
        let keys = [
            ("path", self.path.is_some()),
            ("scale", self.scale.is_some()),
            ("mean", self.mean.is_some()),
            ("std", self.std.is_some()),
            ("augment", self.augment.is_some()),
            ("resize", self.resize.is_some()),
            ("skip_bad_images", self.skip_bad_images.is_some()),
            ("train", self.train.is_some()),
            ("test", self.test.is_some()),
            ("problem", self.problem.is_some()),
            ("standardize", self.standardize.is_some()),
            ("task", self.task.is_some()),
            ("target_steps", self.target_steps.is_some()),
            ("split", self.split.is_some()),
            ("max_tokens", self.max_tokens.is_some()),
            ("sequence_length", self.sequence_length.is_some()),
        ];
        keys.iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Refuses keys that the format does not read.
    fn check_keys(&self) -> Result<()> {
        let allowed: &[&str] = match self.format {
            DataFormat::ImageFolder => &[
                "path",
                "scale",
                "mean",
                "std",
                "augment",
                "resize",
                "skip_bad_images",
                "task",
            ],
            DataFormat::Cifar10Binary => &["path", "scale", "mean", "std", "augment", "task"],
            DataFormat::UcrTs => &[
                "path",
                "train",
                "test",
                "problem",
                "standardize",
                "task",
                "target_steps",
            ],
            DataFormat::TextFolder => &["path", "split", "max_tokens", "sequence_length", "task"],
        };
        let stray: Vec<&str> = self
            .given_keys()
            .into_iter()
            .filter(|k| !allowed.contains(k))
            .collect();
        if !stray.is_empty() {
            bail!(
                "format {:?} does not read {}; its keys are {}",
                self.format.name(),
                stray.join(", "),
                allowed.join(", ")
            );
        }
        if self.format != DataFormat::UcrTs && self.task == Some(TaskKind::Regression) {
            bail!(
                "task = \"regression\" needs format \"ucr_ts\"; format {:?} is for \
                 classification",
                self.format.name()
            );
        }
        Ok(())
    }

    /// Checks the keys against the format and resolves relative paths from `base` (the config
    /// file's folder). `data_override` (the `--data` flag) replaces `path` and is taken as it
    /// is.
    ///
    /// # Errors
    /// A key the format does not read, a missing required key, or a zero size.
    pub fn source(&self, base: &Path, data_override: Option<&Path>) -> Result<DataSource> {
        self.check_keys()?;
        let resolve = |p: &Path| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.to_path_buf()
            }
        };
        let path = match data_override {
            Some(p) => Some(p.to_path_buf()),
            None => self.path.as_deref().map(resolve),
        };
        let need_path = || {
            path.clone()
                .ok_or_else(|| anyhow::anyhow!("format {:?} needs `path`", self.format.name()))
        };
        Ok(match self.format {
            DataFormat::ImageFolder | DataFormat::Cifar10Binary => DataSource::Images(ImageFiles {
                path: need_path()?,
                format: self.format,
                scale: self.scale.unwrap_or(1.0),
                mean: self.mean.clone().unwrap_or_default(),
                std: self.std.clone().unwrap_or_default(),
                load: ImageLoad {
                    resize: self.resize.unwrap_or(false),
                    skip_bad_images: self.skip_bad_images.unwrap_or(false),
                },
            }),
            DataFormat::UcrTs => DataSource::Ucr(self.ucr_source(path, &resolve)?),
            DataFormat::TextFolder => {
                let root = need_path()?;
                let split = self
                    .split
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_SPLIT_FILE));
                let max_tokens = self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
                if max_tokens < 3 {
                    bail!("max_tokens = {max_tokens} leaves no word besides pad and OOV");
                }
                let sequence_length = self.sequence_length.unwrap_or(DEFAULT_SEQUENCE_LENGTH);
                if sequence_length == 0 {
                    bail!("sequence_length must be at least 1");
                }
                DataSource::Text(TextSource {
                    split_file: root.join(split),
                    root,
                    max_tokens,
                    sequence_length,
                })
            }
        })
    }

    fn ucr_source(
        &self,
        path: Option<PathBuf>,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Result<UcrSource> {
        let (train, test) = match (&self.train, &self.test, &self.problem, path) {
            (Some(train), Some(test), None, None) => (resolve(train), resolve(test)),
            (None, None, Some(problem), Some(path)) => {
                let dir = path.join(problem);
                (
                    dir.join(format!("{problem}_TRAIN.ts")),
                    dir.join(format!("{problem}_TEST.ts")),
                )
            }
            _ => bail!(
                "format \"ucr_ts\" needs either `train` and `test` (the two .ts files) \
                 or `path` and `problem` (for {{path}}/{{problem}}/{{problem}}_TRAIN.ts and \
                 _TEST.ts), not a mix (`--data` stands for `path`)"
            ),
        };
        let task = match self.task.unwrap_or_default() {
            TaskKind::Classification => {
                if self.target_steps.is_some() {
                    bail!("target_steps applies to task = \"regression\" only");
                }
                SeriesTask::Classification
            }
            TaskKind::Regression => {
                let target_steps = self.target_steps.unwrap_or(1);
                if target_steps == 0 {
                    bail!("target_steps must be at least 1");
                }
                SeriesTask::Regression { target_steps }
            }
        };
        Ok(UcrSource {
            train,
            test,
            standardize: self.standardize.unwrap_or(true),
            task,
        })
    }
}

/// An optimizer written as a name (`"adam"`) or as a table with settings.
#[derive(Debug, Clone)]
pub enum OptimizerSpec {
    /// Keras name with defaults.
    Name(String),
    /// `{ type = "adam", learning_rate = 0.001, ... }`.
    Full(OptimizerConfig),
}

impl<'de> Deserialize<'de> for OptimizerSpec {
    /// Checks the name or the table while parsing, so that a mistake is reported with the
    /// line of the `optimizer` key.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        match toml::Value::deserialize(d)? {
            toml::Value::String(name) => {
                optimizer_by_name(&name).map_err(|e| D::Error::custom(format!("{e:#}")))?;
                Ok(OptimizerSpec::Name(name))
            }
            table @ toml::Value::Table(_) => table
                .try_into()
                .map(OptimizerSpec::Full)
                .map_err(|e: toml::de::Error| D::Error::custom(e.message())),
            other => Err(D::Error::custom(format!(
                "optimizer must be a name such as \"adam\" or a table such as \
                 {{ type = \"adam\", learning_rate = 0.001 }}, not {}",
                other.type_str()
            ))),
        }
    }
}

/// A loss name, checked while parsing so that a mistake is reported with its line.
fn known_loss<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let name = String::deserialize(d)?;
    Loss::from_name(&name, false).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// Metric names, checked while parsing so that a mistake is reported with its line.
fn known_metrics<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    for name in &names {
        Metric::from_name(name).map_err(serde::de::Error::custom)?;
    }
    Ok(names)
}

/// The `[compile]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileSection {
    /// The optimizer.
    pub optimizer: OptimizerSpec,
    /// Keras loss name.
    #[serde(deserialize_with = "known_loss")]
    pub loss: String,
    /// Whether the model outputs logits.
    #[serde(default)]
    pub from_logits: bool,
    /// Keras metric names.
    #[serde(default, deserialize_with = "known_metrics")]
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
    /// `[fit.early_stopping]`: stop when the monitored figure stops improving.
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingSection>,
    /// `[fit.reduce_lr_on_plateau]`: lower the learning rate when it stops improving.
    #[serde(default)]
    pub reduce_lr_on_plateau: Option<ReduceLrSection>,
    /// `[fit.checkpoint]`: save the model after epochs (or only improving ones).
    #[serde(default)]
    pub checkpoint: Option<CheckpointSection>,
}

/// Keras' `EarlyStopping` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingSection {
    /// The figure watched (default `val_loss`); a name ending in `accuracy` must go up.
    #[serde(default = "val_loss")]
    pub monitor: String,
    /// Epochs without improvement before stopping (default 0, as in Keras).
    #[serde(default)]
    pub patience: usize,
    /// The smallest change that counts as an improvement (default 0).
    #[serde(default)]
    pub min_delta: f64,
    /// Load the best epoch's weights when stopping (default false).
    #[serde(default)]
    pub restore_best_weights: bool,
}

/// Keras' `ReduceLROnPlateau` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceLrSection {
    /// The figure watched (default `val_loss`).
    #[serde(default = "val_loss")]
    pub monitor: String,
    /// Multiplier of the learning rate, in (0, 1) (default 0.1).
    #[serde(default = "tenth")]
    pub factor: f32,
    /// Epochs without improvement before lowering the rate (default 10).
    #[serde(default = "ten")]
    pub patience: usize,
    /// The lowest rate (default 0).
    #[serde(default)]
    pub min_lr: f32,
}

/// Keras' `ModelCheckpoint` arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSection {
    /// The model file written, taken from the current folder like `--out`.
    pub path: PathBuf,
    /// The figure watched (default `val_loss`).
    #[serde(default = "val_loss")]
    pub monitor: String,
    /// Save only when the monitored figure improves (default false: after every epoch).
    #[serde(default)]
    pub save_best_only: bool,
}

fn val_loss() -> String {
    "val_loss".into()
}
fn tenth() -> f32 {
    0.1
}
fn ten() -> usize {
    10
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
            early_stopping: None,
            reduce_lr_on_plateau: None,
            checkpoint: None,
        }
    }
}

impl FitSection {
    /// Refuses callback settings that cannot work: a validation figure watched without
    /// validation data, a figure no epoch reports, a factor outside (0, 1). `metrics` are the
    /// names the metrics log under (`accuracy`, `sparse_top_5_accuracy`).
    ///
    /// # Errors
    /// Names the section and the setting at fault.
    pub fn check_callbacks(&self, metrics: &[String]) -> Result<()> {
        let watched = [
            (
                "early_stopping",
                self.early_stopping.as_ref().map(|c| &c.monitor),
            ),
            (
                "reduce_lr_on_plateau",
                self.reduce_lr_on_plateau.as_ref().map(|c| &c.monitor),
            ),
            ("checkpoint", self.checkpoint.as_ref().map(|c| &c.monitor)),
        ];
        for (section, monitor) in watched {
            let Some(monitor) = monitor else { continue };
            let figure = monitor.strip_prefix("val_").unwrap_or(monitor);
            if figure != "loss" && !metrics.iter().any(|m| m == figure) {
                bail!(
                    "[fit.{section}] monitors {monitor:?}, which no epoch reports; the figures \
                     are loss and the metrics of [compile] ({}), with a val_ prefix for \
                     validation",
                    metrics.join(", ")
                );
            }
            if monitor.starts_with("val_") && self.validation_split == 0.0 {
                bail!(
                    "[fit.{section}] monitors {monitor:?} but there is no validation data: set \
                     validation_split in [fit], or monitor a training figure"
                );
            }
        }
        if let Some(r) = &self.reduce_lr_on_plateau {
            if !(r.factor > 0.0 && r.factor < 1.0) {
                bail!(
                    "[fit.reduce_lr_on_plateau] factor {} is outside (0, 1)",
                    r.factor
                );
            }
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Reads and checks a config file. Syntax and unknown names are reported with the line.
    pub fn load(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut config: TrainConfig = toml::from_str(&text).map_err(|e| {
            match e
                .span()
                .and_then(|span| table_error(&text, span.start, e.message()))
            {
                Some(located) => anyhow::anyhow!("{}: {located}", path.display()),
                None => anyhow::anyhow!("{}: {e}", path.display()),
            }
        })?;
        config.base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let (_, _, metrics) = config
            .compile_parts()
            .with_context(|| format!("{}: [compile]", path.display()))?;
        let logged: Vec<String> = metrics.iter().map(Metric::name).collect();
        config
            .fit
            .check_callbacks(&logged)
            .with_context(|| format!("{}", path.display()))?;
        config
            .data
            .source(&config.base, None)
            .with_context(|| format!("{}: [data]", path.display()))?;
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

/// A clearer report for an error the TOML reader pins on the `[[model.layers]]` array (as it
/// does for a layer's arguments, which are read after its `type`): the line of the key at
/// fault and its layer, when the message names the key (`unknown field`) or quotes its value
/// (`invalid type: string "…"`, `unknown variant`). `None` when the error is elsewhere or
/// names nothing that can be found.
fn table_error(text: &str, offset: usize, message: &str) -> Option<String> {
    const HEADER: &str = "[[model.layers]]";
    let lines: Vec<&str> = text.lines().collect();
    let reported = text[..offset.min(text.len())].matches('\n').count();
    if lines.get(reported)?.trim() != HEADER {
        return None;
    }
    let key_of = |l: &str| l.split('=').next().map(|k| k.trim().to_string());
    let value_of = |l: &str| l.split_once('=').map(|(_, v)| v.to_string());
    let named = between(message, "unknown field `", "`");
    let quoted = between(message, "string \"", "\"").or(between(message, "unknown variant `", "`"));
    // The fields the failing layer takes, as the message lists them after "expected".
    let expected: Vec<&str> = message
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let header_of = |i: usize| {
        (0..=i)
            .rev()
            .find(|&h| lines[h].trim_start().starts_with('['))
    };
    // Another layer may use the same key rightly: the table at fault is one whose other keys
    // are all fields the failing layer takes.
    let table_fits = |h: usize, unknown: &str| {
        lines[h + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter_map(|l| key_of(l).filter(|k| !k.is_empty() && !k.starts_with('#')))
            .all(|k| k == "type" || k == unknown || expected.contains(&k.as_str()))
    };
    let at_fault = (reported..lines.len()).find(|&i| match (named, quoted) {
        (Some(k), _) => {
            key_of(lines[i]).as_deref() == Some(k) && header_of(i).is_some_and(|h| table_fits(h, k))
        }
        (None, Some(v)) => value_of(lines[i]).is_some_and(|x| x.contains(&format!("\"{v}\""))),
        (None, None) => false,
    })?;

    // The layer table holding that line: its header, number and type.
    let header = header_of(at_fault)?;
    if lines[header].trim() != HEADER {
        return None;
    }
    let layer = lines[..=header]
        .iter()
        .filter(|l| l.trim() == HEADER)
        .count();
    let layer_type = lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find(|l| key_of(l).as_deref() == Some("type"))
        .and_then(|l| value_of(l))
        .map(|v| {
            v.split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_string()
        });
    let what = match layer_type {
        Some(t) => format!("layer {layer} ({t})"),
        None => format!("layer {layer}"),
    };
    Some(format!(
        "line {}: {}, in {what}, the [[model.layers]] table at line {}",
        at_fault + 1,
        message.trim_end(),
        header + 1
    ))
}

/// The text between the first `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
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

#[cfg(test)]
mod tests {
    use super::*;
    use edgeflow_nn::Sequential;

    /// Every config shipped in `examples/` parses, names a known optimizer, loss and metrics,
    /// and builds its model, so a typo in an example fails CI rather than a user's first run.
    #[test]
    fn every_example_config_loads_and_builds() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("examples folder")
            .map(|e| e.expect("examples entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        assert!(
            paths.len() >= 7,
            "expected the seven example configs, found {paths:?}"
        );

        for path in &paths {
            let config =
                TrainConfig::load(path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            let model = Sequential::from_architecture(&config.model, 0)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(model.param_count() > 0, "{}: no parameters", path.display());
        }
    }
}
