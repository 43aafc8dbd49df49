//! `edgeflow predict MODEL FILE...`: the top classes of image files.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use edgeflow_data::read_image_rgb;
use edgeflow_nn::Sequential;
use edgeflow_tensor::Tensor;
use serde_json::json;

use crate::BadInput;

/// Options of `edgeflow predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file.
    pub model: PathBuf,
    /// JPEG or PNG images of the model's input size.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How many classes to list per image.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Reads one image as a preprocessed `[1, h, w, c]` input, or says why it cannot.
fn load_input(model: &Sequential, path: &PathBuf) -> Result<Tensor> {
    let img = read_image_rgb(path)?;
    let expected = model.input_shape();
    let shape = [img.height as usize, img.width as usize, 3];
    if expected != shape {
        return Err(BadInput(format!(
            "{}: image is {}x{}x3, the model takes {:?}",
            path.display(),
            img.height,
            img.width,
            expected
        ))
        .into());
    }
    let pre = &model.metadata.preprocessing;
    let mut x: Vec<f32> = img.pixels.iter().map(|&p| p as f32 * pre.scale).collect();
    if !pre.mean.is_empty() {
        edgeflow_data::Normalization::new(pre.mean.clone(), pre.std.clone())?.apply(&mut x)?;
    }
    Ok(Tensor::from_vec(x, [1, shape[0], shape[1], shape[2]])?)
}

/// Runs the command. Files that cannot be read are reported by name; the others are still
/// answered, and the command then fails, as bad input if every failure was one.
pub fn run(args: &PredictArgs) -> Result<()> {
    let model = Sequential::load(&args.model)?;
    let mut failures = 0;
    let mut input_failures = 0;
    for path in &args.files {
        let probs =
            match load_input(&model, path).and_then(|x| Ok(model.predict(&x, 1)?.to_vec_f32()?)) {
                Ok(p) => p,
                Err(e) => {
                    failures += 1;
                    if crate::exit_code(&e) == 3 {
                        input_failures += 1;
                    }
                    report_failure(args.json, path, &e);
                    continue;
                }
            };
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let name = |i: usize| {
            model
                .metadata
                .class_names
                .get(i)
                .cloned()
                .unwrap_or_else(|| i.to_string())
        };
        let top: Vec<(String, f32)> = order
            .iter()
            .take(args.top.max(1))
            .map(|&i| (name(i), probs[i]))
            .collect();
        if args.json {
            let top: Vec<_> = top
                .iter()
                .map(|(c, p)| json!({ "class": c, "probability": p }))
                .collect();
            println!("{}", json!({ "file": path, "top": top }));
        } else {
            let text: Vec<String> = top.iter().map(|(c, p)| format!("{c} {p:.4}")).collect();
            println!("{}: {}", path.display(), text.join(", "));
        }
    }
    if failures > 0 {
        let message = format!(
            "{failures} of {} files could not be classified",
            args.files.len()
        );
        if input_failures == failures {
            return Err(BadInput(message).into());
        }
        bail!(message);
    }
    Ok(())
}

fn report_failure(json: bool, path: &PathBuf, e: &anyhow::Error) {
    if json {
        println!("{}", json!({ "file": path, "error": format!("{e:#}") }));
    } else {
        eprintln!("error: {e:#}");
    }
}
