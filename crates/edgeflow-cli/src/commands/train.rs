//! `edgeflow train CONFIG`: trains the model a config file describes, evaluates it on the test
//! split, writes the model file and optionally a metrics JSON.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_data::ImageDataset;
use edgeflow_data::WordTokenizer;
use edgeflow_nn::{
    Callback, EarlyStopping, FitOptions, History, Loss, ModelCheckpoint, ModelMetadata,
    Preprocessing, ReduceLrOnPlateau, Sequential,
};
use serde_json::json;

use crate::config::{DataSource, SeriesTask, TrainConfig};
use crate::dataset::{load_splits, ImageSource};
use crate::progress::ProgressPrinter;
use crate::report::{ClassificationReport, RegressionReport};
use crate::samples::Samples;
use crate::Usage;

/// Options of `edgeflow train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The TOML config file describing data, model, compile and fit.
    pub config: PathBuf,
    /// Dataset folder (overrides `data.path`; for `ucr_ts`, the folder holding `problem`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of epochs (overrides `fit.epochs`).
    #[arg(long, value_parser = crate::at_least_one)]
    pub epochs: Option<usize>,
    /// Batch size (overrides `fit.batch_size`).
    #[arg(long, value_parser = crate::at_least_one)]
    pub batch_size: Option<usize>,
    /// Train on the first N samples of a seeded shuffle of the training split.
    #[arg(long, value_name = "N", value_parser = crate::at_least_one)]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N samples of a seeded shuffle of the test split.
    #[arg(long, value_name = "N", value_parser = crate::at_least_one)]
    pub limit_test: Option<usize>,
    /// Seed of weights, shuffling and sampling (overrides `fit.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the trained model.
    #[arg(long, value_name = "MODEL", default_value = "model.efm")]
    pub out: PathBuf,
    /// Write per-epoch and test figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub metrics_json: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

fn limit(ds: ImageDataset, n: Option<usize>, seed: u64, flag: &str) -> Result<ImageDataset> {
    match n {
        Some(0) => bail!("{flag} must be at least 1"),
        Some(n) if n < ds.len() => {
            Ok(ds.subset(&edgeflow_data::take_shuffled(ds.len(), n, seed))?)
        }
        _ => Ok(ds),
    }
}

/// The training data of a config, loaded and limited.
enum TrainingData {
    /// Image folders or CIFAR-10 binary files.
    Images {
        train: ImageDataset,
        test: ImageDataset,
        preprocessing: Preprocessing,
    },
    /// Time series or encoded texts, as tensors.
    Sequences {
        train: Samples,
        test: Samples,
        class_names: Vec<String>,
        preprocessing: Preprocessing,
        task: SeriesTask,
        /// The fitted tokenizer of a text folder, written beside the model.
        tokenizer: Option<(WordTokenizer, usize)>,
        /// Whether some series were padded to the model's length.
        padded: bool,
    },
}

impl TrainingData {
    fn load(
        source: &DataSource,
        input_shape: &[usize],
        args: &TrainArgs,
        seed: u64,
    ) -> Result<Self> {
        let (lt, ls) = (args.limit_train, args.limit_test);
        let (lt_flag, ls_flag) = ("--limit-train", "--limit-test");
        let test_seed = seed.wrapping_add(1);
        Ok(match source {
            DataSource::Images(src) => {
                let (train, test) = load_splits(&src.path, src.format, input_shape, src.load)?;
                TrainingData::Images {
                    train: limit(train, lt, seed, lt_flag)?,
                    test: limit(test, ls, test_seed, ls_flag)?,
                    preprocessing: Preprocessing {
                        scale: src.scale,
                        mean: src.mean.clone(),
                        std: src.std.clone(),
                    },
                }
            }
            DataSource::Ucr(src) => {
                let d = crate::series::load_training(src, input_shape)?;
                TrainingData::Sequences {
                    train: d.train.limit(lt, seed, lt_flag)?,
                    test: d.test.limit(ls, test_seed, ls_flag)?,
                    class_names: d.class_names,
                    preprocessing: d.preprocessing,
                    task: src.task,
                    tokenizer: None,
                    padded: d.padded,
                }
            }
            DataSource::Text(src) => {
                let d = crate::text::load_training(src, input_shape)?;
                TrainingData::Sequences {
                    train: d.train.limit(lt, seed, lt_flag)?,
                    test: d.test.limit(ls, test_seed, ls_flag)?,
                    class_names: d.class_names,
                    preprocessing: Preprocessing::default(),
                    task: SeriesTask::Classification,
                    tokenizer: Some((d.tokenizer, src.sequence_length)),
                    padded: false,
                }
            }
        })
    }

    fn class_names(&self) -> &[String] {
        match self {
            TrainingData::Images { train, .. } => &train.class_names,
            TrainingData::Sequences { class_names, .. } => class_names,
        }
    }

    fn preprocessing(&self) -> &Preprocessing {
        match self {
            TrainingData::Images { preprocessing, .. }
            | TrainingData::Sequences { preprocessing, .. } => preprocessing,
        }
    }

    fn train_len(&self) -> usize {
        match self {
            TrainingData::Images { train, .. } => train.len(),
            TrainingData::Sequences { train, .. } => train.len(),
        }
    }

    fn regression_steps(&self) -> Option<usize> {
        match self {
            TrainingData::Sequences {
                task: SeriesTask::Regression { target_steps },
                ..
            } => Some(*target_steps),
            _ => None,
        }
    }

    /// Refuses a model whose output or loss cannot learn this data.
    fn check_model(&self, model: &Sequential, loss: &Loss) -> Result<()> {
        let regression_loss = matches!(loss, Loss::MeanSquaredError | Loss::MeanAbsoluteError);
        if let TrainingData::Sequences {
            tokenizer: Some((tok, _)),
            ..
        } = self
        {
            crate::text::check_embedding(model, tok)?;
        }
        let Some(steps) = self.regression_steps() else {
            if regression_loss {
                bail!(
                    "loss {} is for regression; set task = \"regression\" in [data] (ucr_ts) \
                     or use a classification loss",
                    loss.name()
                );
            }
            return check_classes(model, loss, self.class_names());
        };
        if !regression_loss {
            bail!(
                "task = \"regression\" needs loss mean_squared_error or mean_absolute_error, \
                 not {}",
                loss.name()
            );
        }
        let channels = model.input_shape().last().copied().unwrap_or(1);
        if model.output_shape() != [steps * channels] {
            bail!(
                "the model outputs {:?}, but forecasting {steps} step(s) of {channels} \
                 channel(s) needs [{}]: set the units of the last Dense layer to {}",
                model.output_shape(),
                steps * channels,
                steps * channels
            );
        }
        Ok(())
    }
}

/// Refuses a model whose output cannot represent the dataset's classes.
fn check_classes(model: &Sequential, loss: &Loss, classes: &[String]) -> Result<()> {
    let sparse = matches!(loss, Loss::SparseCategoricalCrossentropy { .. });
    let units = model.output_shape().last().copied().unwrap_or(0);
    if sparse && units != classes.len() {
        bail!(
            "the last layer has {units} outputs but the data has {} classes ({}); set the \
             units of the last Dense layer to {}",
            classes.len(),
            classes.join(", "),
            classes.len()
        );
    }
    Ok(())
}

/// Warns when padded series reach a model that cannot tell padding from data.
fn warn_unmasked_padding(model: &Sequential, data: &TrainingData) {
    let TrainingData::Sequences { padded: true, .. } = data else {
        return;
    };
    let masked = matches!(
        model.architecture().layers.first(),
        Some(edgeflow_nn::LayerConfig::Masking(_))
    );
    if !masked {
        tracing::warn!(
            "series shorter than seq_len are padded with 0.0 at the end, but the model does \
             not start with a Masking layer, so it reads the padding as data"
        );
    }
}

/// Runs the command.
pub fn run(args: &TrainArgs, threads: usize) -> Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    apply_overrides(&mut config, args);
    let seed = config.fit.seed;
    let source = config
        .data
        .source(&config.base, args.data.as_deref())
        .with_context(|| format!("{}: [data]", args.config.display()))?;

    check_output(&args.out, "--out")?;
    if let Some(c) = &config.fit.checkpoint {
        check_output(&c.path, "[fit.checkpoint] path")?;
    }
    if let Some(path) = &args.metrics_json {
        check_output(path, "--metrics-json")?;
    }
    let load_start = Instant::now();
    let data = TrainingData::load(&source, &config.model.input_shape, args, seed)?;
    tracing::info!(
        train = data.train_len(),
        seconds = load_start.elapsed().as_secs_f64(),
        "data loaded"
    );

    let mut model = Sequential::from_architecture(&config.model, seed)
        .with_context(|| format!("{}: [model]", args.config.display()))?;
    let (optimizer, loss, metrics) = config.compile_parts()?;
    data.check_model(&model, &loss)?;
    warn_unmasked_padding(&model, &data);
    model.compile(optimizer, loss, metrics)?;
    model.metadata = ModelMetadata {
        class_names: data.class_names().to_vec(),
        preprocessing: data.preprocessing().clone(),
        vocabulary: match &data {
            TrainingData::Sequences {
                tokenizer: Some((tok, seq_len)),
                ..
            } => Some(crate::text::vocabulary(tok, *seq_len)),
            _ => None,
        },
    };
    if !args.quiet {
        print!("{}", model.summary());
    }

    let history = fit(&mut model, &data, &config, args.quiet)?;
    let (test_line, test_json) = test_figures(&model, &data, config.fit.batch_size)?;
    if !args.quiet {
        println!("Test: {test_line}");
    }
    model.save(&args.out)?;
    if !args.quiet {
        println!("Model written to {}", args.out.display());
    }
    if let Some(path) = &args.metrics_json {
        write_metrics(path, &history, test_json, threads)?;
    }
    Ok(())
}

fn fit(
    model: &mut Sequential,
    data: &TrainingData,
    config: &TrainConfig,
    quiet: bool,
) -> Result<History> {
    let opts = FitOptions {
        epochs: config.fit.epochs,
        batch_size: config.fit.batch_size,
        shuffle: config.fit.shuffle,
        seed: config.fit.seed,
        validation_split: config.fit.validation_split,
    };
    let mut printer = ProgressPrinter::new();
    let mut stop = config.fit.early_stopping.as_ref().map(|c| {
        EarlyStopping::new(&c.monitor, c.patience)
            .min_delta(c.min_delta)
            .restore_best_weights(c.restore_best_weights)
    });
    let mut reduce = config
        .fit
        .reduce_lr_on_plateau
        .as_ref()
        .map(|c| ReduceLrOnPlateau::new(&c.monitor).with(c.factor, c.patience, c.min_lr));
    let mut checkpoint = config
        .fit
        .checkpoint
        .as_ref()
        .map(|c| ModelCheckpoint::new(&c.path, &c.monitor, c.save_best_only));
    let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
    if !quiet {
        callbacks.push(&mut printer);
    }
    if let Some(c) = stop.as_mut() {
        callbacks.push(c);
    }
    if let Some(c) = reduce.as_mut() {
        callbacks.push(c);
    }
    if let Some(c) = checkpoint.as_mut() {
        callbacks.push(c);
    }
    let history = match data {
        TrainingData::Images {
            train,
            preprocessing,
            ..
        } => {
            let mut src = ImageSource::new(train, preprocessing)?;
            if let Some(augment) = config.data.augment.filter(|a| a.pad > 0 || a.flip) {
                // Its own stream, apart from the weights' and the shuffle's.
                src = src.with_augment(augment, config.fit.seed.wrapping_add(2));
            }
            model.fit(&src, None, &opts, &mut callbacks)?
        }
        TrainingData::Sequences { train, .. } => model.fit(train, None, &opts, &mut callbacks)?,
    };
    Ok(history)
}

/// The test figures as a line of text and as JSON.
fn test_figures(
    model: &Sequential,
    data: &TrainingData,
    batch_size: usize,
) -> Result<(String, serde_json::Value)> {
    let names = data.class_names();
    let report = match data {
        TrainingData::Images {
            test,
            preprocessing,
            ..
        } => {
            let src = ImageSource::new(test, preprocessing)?;
            ClassificationReport::evaluate(model, &src, batch_size, names)?
        }
        TrainingData::Sequences { test, .. } if data.regression_steps().is_some() => {
            let stats = crate::series::model_stats(model);
            let r = RegressionReport::evaluate(model, test, batch_size, stats.as_ref())?;
            let line = format!("{} on {} samples", r.summary_line(), r.samples);
            return Ok((line, r.json()));
        }
        TrainingData::Sequences { test, .. } => {
            ClassificationReport::evaluate(model, test, batch_size, names)?
        }
    };
    let line = format!("{} on {} samples", report.summary_line(), report.samples);
    Ok((line, report.json()))
}

/// Refuses an output path that cannot be written at the end of training: a folder, or a file
/// in a folder that does not exist. Checked before the data is loaded, so that no run is lost.
fn check_output(path: &Path, flag: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let problem = if path.is_dir() {
        Some("is a folder")
    } else if !dir.is_dir() {
        Some("is in a folder that does not exist")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Usage(format!("{flag} {} {p}", path.display())).into()),
        None => Ok(()),
    }
}

fn apply_overrides(config: &mut TrainConfig, args: &TrainArgs) {
    if let Some(e) = args.epochs {
        config.fit.epochs = e;
    }
    if let Some(b) = args.batch_size {
        config.fit.batch_size = b;
    }
    if let Some(s) = args.seed {
        config.fit.seed = s;
    }
}

fn write_metrics(
    path: &std::path::Path,
    history: &History,
    test: serde_json::Value,
    threads: usize,
) -> Result<()> {
    let epochs: Vec<_> = history
        .epochs
        .iter()
        .map(|e| {
            json!({
                "epoch": e.epoch,
                "loss": e.loss,
                "accuracy": e.get("accuracy"),
                "val_loss": e.val_loss,
                "val_accuracy": e.get("val_accuracy"),
                "seconds": e.seconds,
            })
        })
        .collect();
    let doc = json!({
        "epochs": epochs,
        "test": test,
        "threads": threads,
        "train_samples": history.train_samples,
        "peak_rss_mb": crate::peak_rss_mb(),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}
