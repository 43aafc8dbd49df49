//! `edgeflow inspect MODEL`: what a model file holds.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgeflow_nn::Sequential;

/// Options of `edgeflow inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file.
    pub model: PathBuf,
}

/// Runs the command.
pub fn run(args: &InspectArgs) -> Result<()> {
    let model = Sequential::load(&args.model)?;
    let size = std::fs::metadata(&args.model)
        .with_context(|| format!("{}", args.model.display()))?
        .len();
    print!("{}", model.summary());
    println!("input shape:    {:?}", model.input_shape());
    println!("output shape:   {:?}", model.output_shape());
    println!(
        "classes:        {}",
        if model.metadata.class_names.is_empty() {
            "-".into()
        } else {
            model.metadata.class_names.join(", ")
        }
    );
    let pre = &model.metadata.preprocessing;
    if pre.mean.is_empty() {
        println!("preprocessing:  scale {}", pre.scale);
    } else {
        println!(
            "preprocessing:  scale {}, per-channel mean {:?}, std {:?}",
            pre.scale, pre.mean, pre.std
        );
    }
    if let Some(v) = &model.metadata.vocabulary {
        println!(
            "vocabulary:     {} words ({}), {} ids per text",
            edgeflow_nn::thousands(v.words.len()),
            v.tokenizer,
            v.sequence_length
        );
    } else if crate::samples::takes_tokens(&model) {
        println!("vocabulary:     none (the model cannot read text)");
    }
    if let Some(c) = model.compile_config() {
        let metrics: Vec<String> = c.metrics.iter().map(|m| m.name()).collect();
        println!(
            "loss:           {} (metrics: {})",
            c.loss.name(),
            metrics.join(", ")
        );
    }
    println!(
        "file size:      {} bytes",
        edgeflow_nn::thousands(size as usize)
    );
    println!(
        "format:         {} version {}",
        edgeflow_nn::FORMAT,
        edgeflow_nn::FORMAT_VERSION
    );
    Ok(())
}
