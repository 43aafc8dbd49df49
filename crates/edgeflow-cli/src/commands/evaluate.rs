//! `edgeflow evaluate MODEL --data PATH`: loss, accuracy, per-class precision, recall and F1
//! and the confusion matrix of a saved classifier on a test split; MSE and MAE beside the
//! naive forecast for a forecasting model.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;
use edgeflow_nn::{ConfusionMatrix, Sequential};

use crate::config::ImageLoad;
use crate::dataset::{detect_format, load_test_split, ImageSource};
use crate::report::{fmt4, ClassificationReport, RegressionReport};
use crate::samples::{is_regression, takes_tokens};
use crate::series;
use crate::BadInput;

/// Options of `edgeflow evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model file.
    pub model: PathBuf,
    /// Test data: an image folder with test/<class>/ (train/ is not read), a folder of CIFAR-10
    /// binary files (test_batch.bin is read), a UCR/UEA .ts file (time-series models), or a
    /// text folder (models that take token ids).
    #[arg(long)]
    pub data: PathBuf,
    /// Text folders: the split list whose test entries are evaluated (default: DATA/split.tsv
    /// when it exists, else every file of the folder).
    #[arg(long, value_name = "FILE")]
    pub split: Option<PathBuf>,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 256, value_parser = crate::at_least_one)]
    pub batch_size: usize,
    /// Image folders: scale images of another size to the model's input size.
    #[arg(long)]
    pub resize: bool,
    /// Image folders: leave out unreadable images (counted on standard error) instead of
    /// failing.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// Print the figures as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> Result<()> {
    let model = Sequential::load(&args.model)?;
    if takes_tokens(&model) {
        return run_text(args, &model);
    }
    if model.input_shape().len() == 2 {
        return run_series(args, &model);
    }
    let format = detect_format(&args.data);
    let load = ImageLoad {
        resize: args.resize,
        skip_bad_images: args.skip_bad_images,
    };
    let test = load_test_split(&args.data, format, model.input_shape(), load)?;
    let names = &model.metadata.class_names;
    if !names.is_empty() && names != &test.class_names {
        return Err(BadInput(format!(
            "the model was trained on classes {names:?} but {} has {:?}",
            args.data.display(),
            test.class_names
        ))
        .into());
    }
    let src = ImageSource::new(&test, &model.metadata.preprocessing)?;
    let report = ClassificationReport::evaluate(&model, &src, args.batch_size, &test.class_names)?;
    print_classification(&report, args.json, None);
    Ok(())
}

fn run_text(args: &EvaluateArgs, model: &Sequential) -> Result<()> {
    let tokenizer = crate::text::tokenizer_of(&args.model, model)?;
    let (texts, what) = crate::text::evaluation_texts(&args.data, args.split.as_deref())?;
    let names = &model.metadata.class_names;
    let samples = crate::text::text_samples(
        &texts,
        &tokenizer,
        model.input_shape()[0],
        names,
        &args.data.display().to_string(),
    )?;
    let report = ClassificationReport::evaluate(model, &samples, args.batch_size, names)?;
    print_classification(&report, args.json, Some(&what));
    Ok(())
}

fn run_series(args: &EvaluateArgs, model: &Sequential) -> Result<()> {
    let path = &args.data;
    if !is_ts_file(path) {
        return Err(BadInput(format!(
            "{} takes time series: give --data a UCR/UEA .ts file such as \
             ../shared/datasets/ucr/BasicMotions/BasicMotions_TEST.ts, not {}",
            args.model.display(),
            path.display()
        ))
        .into());
    }
    let (input_len, channels) = series::series_shape(model.input_shape())?;
    let mut ds = series::read_series(path, channels)?;
    let stats = series::model_stats(model);
    series::standardize(&mut ds, stats.as_ref(), path)?;

    if is_regression(model) {
        let steps = model.output_shape().iter().product::<usize>() / channels.max(1);
        let samples = series::forecast_samples(&ds, input_len, steps.max(1), path)?;
        let report = RegressionReport::evaluate(model, &samples, args.batch_size, stats.as_ref())?;
        print_regression(&report, args.json);
        return Ok(());
    }
    let names = &model.metadata.class_names;
    let samples = series::classification_samples(ds, input_len, names, path)?;
    let report = ClassificationReport::evaluate(model, &samples, args.batch_size, names)?;
    print_classification(&report, args.json, None);
    Ok(())
}

/// Whether `path` names a `.ts` file (by its extension).
pub fn is_ts_file(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ts"))
}

fn print_classification(report: &ClassificationReport, json: bool, what: Option<&str>) {
    if json {
        println!("{}", report.json());
        return;
    }
    match what {
        Some(w) => println!("samples:  {} ({w})", report.samples),
        None => println!("samples:  {}", report.samples),
    }
    println!("loss:     {:.4}", report.loss);
    if let Some(a) = report.accuracy {
        println!("accuracy: {a:.4}");
    }
    if let Some(cm) = &report.confusion {
        print_scores(report);
        print_confusion(cm, &report.names);
    }
}

fn print_regression(report: &RegressionReport, json: bool) {
    if json {
        println!("{}", report.json());
        return;
    }
    println!("samples:    {}", report.samples);
    println!("loss:       {:.4} (standardised units)", report.loss);
    println!("MSE:        {:.4}", report.mse);
    println!("MAE:        {:.4}", report.mae);
    println!(
        "naive MSE:  {:.4} (repeating the last input step)",
        report.naive_mse
    );
    println!("naive MAE:  {:.4}", report.naive_mae);
}

fn print_scores(report: &ClassificationReport) {
    let scores = report.scores();
    let width = scores
        .iter()
        .map(|s| s.class.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("\nper-class accuracy:");
    println!(
        "  {:<width$}  accuracy  precision  recall  F1      samples",
        "class"
    );
    let accuracy = report
        .confusion
        .as_ref()
        .map(ConfusionMatrix::per_class_accuracy)
        .unwrap_or_default();
    for (s, acc) in scores.iter().zip(accuracy) {
        println!(
            "  {:<width$}  {:<8}  {:<9}  {:<6}  {:<6}  {}",
            s.class,
            fmt4(acc),
            fmt4(s.precision),
            fmt4(s.recall),
            fmt4(s.f1),
            s.support
        );
    }
}

fn print_confusion(cm: &ConfusionMatrix, names: &[String]) {
    let label = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let width = (0..cm.classes)
        .map(|i| label(i).len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("\nconfusion matrix (rows: true class, columns: predicted class):");
    print!("  {:<width$}", "");
    for j in 0..cm.classes {
        print!(" {:>6}", &label(j)[..label(j).len().min(6)]);
    }
    println!();
    for i in 0..cm.classes {
        print!("  {:<width$}", label(i));
        for j in 0..cm.classes {
            print!(" {:>6}", cm.get(i, j));
        }
        println!();
    }
}
