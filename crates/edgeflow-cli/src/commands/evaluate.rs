//! `edgeflow evaluate MODEL --data DIR`: loss, accuracy, per-class accuracy and the confusion
//! matrix of a saved model on a test split.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use edgeflow_nn::{ConfusionMatrix, Sequential};
use serde_json::json;

use crate::dataset::{detect_format, load_splits, ImageSource};
use crate::BadInput;

/// Options of `edgeflow evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model file.
    pub model: PathBuf,
    /// Dataset folder (image folders with train/ and test/, or CIFAR-10 binary files).
    #[arg(long)]
    pub data: PathBuf,
    /// Samples per inference batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Print `{"loss", "accuracy", "samples"}` as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn run(args: &EvaluateArgs) -> Result<()> {
    let model = Sequential::load(&args.model)?;
    let format = detect_format(&args.data);
    let (_, test) = load_splits(&args.data, format, model.input_shape())?;
    let names = &model.metadata.class_names;
    if !names.is_empty() && names != &test.class_names {
        return Err(BadInput(format!(
            "the model was trained on classes {names:?} but {} has {:?}",
            args.data.display(),
            test.class_names
        ))
        .into());
    }
    let eval = model.evaluate(
        &ImageSource::new(&test, &model.metadata.preprocessing)?,
        args.batch_size,
    )?;
    let accuracy = eval.metric("accuracy");
    if args.json {
        println!(
            "{}",
            json!({ "loss": eval.loss, "accuracy": accuracy, "samples": eval.samples })
        );
        return Ok(());
    }
    println!("samples:  {}", eval.samples);
    println!("loss:     {:.4}", eval.loss);
    if let Some(a) = accuracy {
        println!("accuracy: {a:.4}");
    }
    if let Some(cm) = &eval.confusion {
        print_confusion(cm, &test.class_names);
    }
    Ok(())
}

fn print_confusion(cm: &ConfusionMatrix, names: &[String]) {
    let label = |i: usize| names.get(i).cloned().unwrap_or_else(|| i.to_string());
    let width = (0..cm.classes)
        .map(|i| label(i).len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("\nper-class accuracy:");
    for (i, acc) in cm.per_class_accuracy().iter().enumerate() {
        let acc = acc.map_or("-".to_string(), |a| format!("{a:.4}"));
        println!("  {:<width$}  {acc}", label(i));
    }
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
