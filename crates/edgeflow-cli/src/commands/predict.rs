//! `edgeflow predict MODEL FILE...`: the top classes of image files, of text files (one message
//! per file) or of each series of `.ts` files, or the forecast of each series for a
//! forecasting model.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use edgeflow_data::{read_image_rgb, ChannelStats, WordTokenizer};
use edgeflow_nn::Sequential;
use edgeflow_tensor::Tensor;
use serde_json::json;

use crate::samples::{is_regression, takes_tokens};
use crate::series;
use crate::BadInput;

/// Options of `edgeflow predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file.
    pub model: PathBuf,
    /// JPEG or PNG images of the model's input size; text files (one message each) for a
    /// model that takes token ids; UCR/UEA .ts files (one answer per series) for a
    /// time-series model.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How many classes to list per answer (at least 1).
    #[arg(long, default_value_t = 3, value_parser = crate::at_least_one)]
    pub top: usize,
    /// Images: scale an image of another size to the model's input size (bilinear) instead of
    /// refusing it.
    #[arg(long)]
    pub resize: bool,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the model reads, with what it needs to read it.
enum InputKind {
    Images,
    Texts(WordTokenizer),
    Series(Option<ChannelStats>),
}

/// One answer: class probabilities, or a forecast (with the known values when the file has
/// them), in the data's units.
enum Answer {
    Classes(Vec<f32>),
    Forecast {
        forecast: Vec<f32>,
        actual: Option<Vec<f32>>,
    },
}

/// Reads one image as a preprocessed `[1, h, w, c]` input, or says why it cannot.
fn load_image(model: &Sequential, path: &Path, resize: bool) -> Result<Tensor> {
    let mut img = read_image_rgb(path)?;
    let expected = model.input_shape();
    if let (true, &[h, w, 3]) = (resize, expected) {
        let (h, w) = (u32::try_from(h)?, u32::try_from(w)?);
        img = edgeflow_data::resize_image_rgb(img, h, w, path)?;
    }
    let shape = [img.height as usize, img.width as usize, 3];
    if expected != shape {
        return Err(BadInput(format!(
            "{}: image is {:?} (height, width, channels), the model takes {:?}; --resize \
             scales it to the model's size",
            path.display(),
            shape,
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

/// Reads one text file (lossy UTF-8) as `[1, seq_len]` token ids.
fn load_text(model: &Sequential, tokenizer: &WordTokenizer, path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path)
        .map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    crate::text::encode_texts(&[text], tokenizer, model.input_shape()[0])
}

/// The answers for one file: one for an image or a text, one per series of a `.ts` file.
fn answer_file(
    model: &Sequential,
    kind: &InputKind,
    path: &Path,
    resize: bool,
) -> Result<Vec<Answer>> {
    let x = match kind {
        InputKind::Images => load_image(model, path, resize)?,
        InputKind::Texts(tok) => load_text(model, tok, path)?,
        InputKind::Series(stats) => return answer_series(model, stats.as_ref(), path),
    };
    let probs = probabilities(model, &model.predict(&x, 1)?)?.to_vec_f32()?;
    Ok(vec![Answer::Classes(probs)])
}

/// The model's outputs as class probabilities: a model trained on logits
/// (`from_logits = true`) gets the softmax or sigmoid its loss applied.
fn probabilities(model: &Sequential, outputs: &Tensor) -> Result<Tensor> {
    Ok(match model.compile_config() {
        Some(c) => c.loss.probabilities(outputs)?,
        None => outputs.clone(),
    })
}

/// One answer per series of a `.ts` file. A forecasting model takes series of its `seq_len`
/// steps, or of `seq_len` plus the forecast steps (the last ones are then shown as the known
/// values).
fn answer_series(
    model: &Sequential,
    stats: Option<&ChannelStats>,
    path: &Path,
) -> Result<Vec<Answer>> {
    let (input_len, channels) = series::series_shape(model.input_shape())?;
    let mut ds = series::read_series(path, channels)?;
    series::standardize(&mut ds, stats, path)?;
    let outputs = model.output_shape().iter().product::<usize>().max(1);

    if !is_regression(model) {
        let x = series::padded_inputs(ds, input_len, path)?;
        let probs = probabilities(model, &model.predict(&x, 64)?)?.to_vec_f32()?;
        return Ok(probs
            .chunks(outputs)
            .map(|p| Answer::Classes(p.to_vec()))
            .collect());
    }
    let steps = (outputs / channels.max(1)).max(1);
    let (x, actual) = if ds.lengths.iter().all(|&l| l == input_len) {
        (series::padded_inputs(ds, input_len, path)?, None)
    } else {
        let s = series::forecast_samples(&ds, input_len, steps, path)?;
        (s.x, Some(s.y.to_vec_f32()?))
    };
    let pred = model.predict(&x, 64)?.to_vec_f32()?;
    let actual: Vec<Option<&[f32]>> = match &actual {
        Some(a) => a.chunks(outputs).map(Some).collect(),
        None => vec![None; pred.len() / outputs],
    };
    Ok(pred
        .chunks(outputs)
        .zip(actual)
        .map(|(p, a)| Answer::Forecast {
            forecast: series::to_data_units(p, stats),
            actual: a.map(|a| series::to_data_units(a, stats)),
        })
        .collect())
}

/// Runs the command. Files that cannot be read are reported by name; the others are still
/// answered, and the command then fails, as bad input if every failure was one.
pub fn run(args: &PredictArgs) -> Result<()> {
    let model = Sequential::load(&args.model)?;
    let kind = if takes_tokens(&model) {
        InputKind::Texts(crate::text::tokenizer_of(&args.model, &model)?)
    } else if model.input_shape().len() == 2 {
        InputKind::Series(series::model_stats(&model))
    } else {
        InputKind::Images
    };
    let mut out = std::io::stdout().lock();
    let mut failures = 0;
    let mut input_failures = 0;
    for path in &args.files {
        match answer_file(&model, &kind, path, args.resize) {
            Ok(answers) => {
                let numbered = matches!(kind, InputKind::Series(_));
                for (i, answer) in answers.iter().enumerate() {
                    let series = numbered.then_some(i + 1);
                    let printed = print_answer(&mut out, &model, args, path, series, answer);
                    // A reader that stops early (`| head`) is not an error.
                    match printed {
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                        other => other?,
                    }
                }
            }
            Err(e) => {
                failures += 1;
                if crate::exit_code(&e) == 3 {
                    input_failures += 1;
                }
                report_failure(&mut out, args.json, path, &e);
            }
        }
    }
    if failures > 0 {
        let message = format!(
            "{failures} of {} files could not be answered",
            args.files.len()
        );
        if input_failures == failures {
            return Err(BadInput(message).into());
        }
        bail!(message);
    }
    Ok(())
}

/// Prints one answer: `FILE: class p, ...` (`FILE#N` for series N of a `.ts` file), or one
/// JSON object.
fn print_answer(
    out: &mut impl Write,
    model: &Sequential,
    args: &PredictArgs,
    path: &Path,
    series: Option<usize>,
    answer: &Answer,
) -> std::io::Result<()> {
    let label = match series {
        Some(n) => format!("{}#{n}", path.display()),
        None => path.display().to_string(),
    };
    let mut doc = json!({ "file": path });
    if let Some(n) = series {
        doc["series"] = json!(n);
    }
    match answer {
        Answer::Classes(probs) => {
            let top = top_classes(model, probs, args.top);
            if args.json {
                let top: Vec<_> = top
                    .iter()
                    .map(|(c, p)| json!({ "class": c, "probability": p }))
                    .collect();
                doc["top"] = json!(top);
                writeln!(out, "{doc}")
            } else {
                let text: Vec<String> = top.iter().map(|(c, p)| format!("{c} {p:.4}")).collect();
                writeln!(out, "{label}: {}", text.join(", "))
            }
        }
        Answer::Forecast { forecast, actual } => {
            if args.json {
                doc["forecast"] = json!(forecast);
                if let Some(a) = actual {
                    doc["actual"] = json!(a);
                }
                writeln!(out, "{doc}")
            } else {
                let known = actual
                    .as_ref()
                    .map(|a| format!(" (actual {})", join4(a)))
                    .unwrap_or_default();
                writeln!(out, "{label}: forecast {}{known}", join4(forecast))
            }
        }
    }
}

fn join4(values: &[f32]) -> String {
    let v: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
    v.join(" ")
}

/// The `top` most probable classes, by name, most probable first.
fn top_classes(model: &Sequential, probs: &[f32], top: usize) -> Vec<(String, f32)> {
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
    order
        .iter()
        .take(top.max(1))
        .map(|&i| (name(i), probs[i]))
        .collect()
}

fn report_failure(out: &mut impl Write, json: bool, path: &Path, e: &anyhow::Error) {
    if json {
        // A closed stdout is noticed at the next answer; the failure still counts.
        let _ = writeln!(
            out,
            "{}",
            json!({ "file": path, "error": format!("{e:#}") })
        );
    } else {
        eprintln!("error: {e:#}");
    }
}
