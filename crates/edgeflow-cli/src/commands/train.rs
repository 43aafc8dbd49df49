//! `edgeflow train CONFIG`: trains the model a config file describes, evaluates it on the test
//! split, writes the model file and optionally a metrics JSON.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use edgeflow_data::ImageDataset;
use edgeflow_nn::{Callback, FitOptions, History, Loss, ModelMetadata, Preprocessing, Sequential};
use serde_json::json;

use crate::config::TrainConfig;
use crate::dataset::{load_splits, ImageSource};
use crate::progress::ProgressPrinter;

/// Options of `edgeflow train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The TOML config file describing data, model, compile and fit.
    pub config: PathBuf,
    /// Dataset folder (overrides `data.path`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Number of epochs (overrides `fit.epochs`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size (overrides `fit.batch_size`).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Train on the first N samples of a seeded shuffle of the training split.
    #[arg(long, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N samples of a seeded shuffle of the test split.
    #[arg(long, value_name = "N")]
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

/// Runs the command.
pub fn run(args: &TrainArgs, threads: usize) -> Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    apply_overrides(&mut config, args);
    let seed = config.fit.seed;

    let load_start = Instant::now();
    let (train, test) = load_splits(
        &config.data.path,
        config.data.format,
        &config.model.input_shape,
    )?;
    let train = limit(train, args.limit_train, seed, "--limit-train")?;
    let test = limit(test, args.limit_test, seed.wrapping_add(1), "--limit-test")?;
    tracing::info!(
        train = train.len(),
        test = test.len(),
        seconds = load_start.elapsed().as_secs_f64(),
        "data loaded"
    );

    let mut model = Sequential::from_architecture(&config.model, seed)
        .with_context(|| format!("{}: [model]", args.config.display()))?;
    let (optimizer, loss, metrics) = config.compile_parts()?;
    check_classes(&model, &loss, &train.class_names)?;
    model.compile(optimizer, loss, metrics)?;
    model.metadata = ModelMetadata {
        class_names: train.class_names.clone(),
        preprocessing: Preprocessing {
            scale: config.data.scale,
            mean: config.data.mean.clone(),
            std: config.data.std.clone(),
        },
    };
    if !args.quiet {
        print!("{}", model.summary());
    }

    let train_src = ImageSource::new(&train, &model.metadata.preprocessing)?;
    let test_src = ImageSource::new(&test, &model.metadata.preprocessing)?;
    let opts = FitOptions {
        epochs: config.fit.epochs,
        batch_size: config.fit.batch_size,
        shuffle: config.fit.shuffle,
        seed,
        validation_split: config.fit.validation_split,
    };
    let mut printer = ProgressPrinter::new();
    let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
    if !args.quiet {
        callbacks.push(&mut printer);
    }
    let history = model.fit(&train_src, None, &opts, &mut callbacks)?;

    let eval = model.evaluate(&test_src, config.fit.batch_size)?;
    let accuracy = eval.metric("accuracy");
    if !args.quiet {
        let acc = accuracy
            .map(|a| format!(", accuracy {a:.4}"))
            .unwrap_or_default();
        println!(
            "Test: loss {:.4}{acc} on {} samples",
            eval.loss, eval.samples
        );
    }
    model.save(&args.out)?;
    if !args.quiet {
        println!("Model written to {}", args.out.display());
    }
    if let Some(path) = &args.metrics_json {
        let test_json = json!({ "loss": eval.loss, "accuracy": accuracy, "samples": eval.samples });
        write_metrics(path, &history, test_json, threads, train.len())?;
    }
    Ok(())
}

fn apply_overrides(config: &mut TrainConfig, args: &TrainArgs) {
    if let Some(d) = &args.data {
        config.data.path = d.clone();
    }
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
    train_samples: usize,
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
        "train_samples": train_samples,
        "peak_rss_mb": crate::peak_rss_mb(),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}
