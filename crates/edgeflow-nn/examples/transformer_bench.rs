//! Training and inference throughput of a Transformer encoder stack on random data.
//!
//! `cargo run --release -p edgeflow-nn --example transformer_bench -- [train_steps]
//! [infer_batches]`: two `TransformerEncoder` blocks (d_model 64, 4 heads, ff 128) between a
//! sinusoidal `PositionalEncoding` and a mean-pooled softmax head, at sequence lengths 64,
//! 128 and 256 with batches of 32, timed after one warm-up step. Tokens/s counts
//! `batch * seq_len` per step. With `--features profile`, a per-op table follows each row.
use std::time::Instant;

use edgeflow_nn::{
    Activation, DenseConfig, FitOptions, LayerConfig, Loss, Metric, OptimizerKind,
    PositionalEncodingConfig, Sequential, TensorDataset, TransformerEncoderConfig,
};
use edgeflow_tensor::{Rng, Tensor};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const D_MODEL: usize = 64;
const HEADS: usize = 4;
const FF_DIM: usize = 128;
const BLOCKS: usize = 2;
const BATCH: usize = 32;

fn encoder(seq_len: usize) -> Result<Sequential, edgeflow_nn::NnError> {
    let mut b = Sequential::builder([seq_len, D_MODEL]).add(PositionalEncodingConfig::default());
    for _ in 0..BLOCKS {
        b = b.add(TransformerEncoderConfig::new(HEADS, FF_DIM));
    }
    b.add(LayerConfig::global_average_pooling_1d())
        .add(DenseConfig::new(2).activation(Activation::Softmax))
        .build(0)
}

fn data(samples: usize, seq_len: usize) -> Result<TensorDataset, Box<dyn std::error::Error>> {
    let mut rng = Rng::seed(1);
    let x = Tensor::rand_uniform([samples, seq_len, D_MODEL], -1.0, 1.0, &mut rng);
    let y: Vec<i64> = (0..samples).map(|i| (i % 2) as i64).collect();
    Ok(TensorDataset::new(x, Tensor::from_vec(y, [samples])?)?)
}

/// Seconds per training step over `steps` steps of `fit`, after one warm-up step.
fn time_training(
    model: &mut Sequential,
    seq_len: usize,
    steps: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    model.compile(
        OptimizerKind::adam(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        vec![Metric::Accuracy],
    )?;
    let opts = FitOptions {
        epochs: 1,
        batch_size: BATCH,
        ..FitOptions::default()
    };
    model.fit(&data(BATCH, seq_len)?, None, &opts, &mut [])?;
    let train = data(steps * BATCH, seq_len)?;
    let started = Instant::now();
    model.fit(&train, None, &opts, &mut [])?;
    Ok(started.elapsed().as_secs_f64() / steps as f64)
}

/// Seconds per batch of `predict` (gradients off) over `batches` batches, after a warm-up.
fn time_inference(
    model: &Sequential,
    seq_len: usize,
    batches: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let x = Tensor::rand_uniform(
        [batches * BATCH, seq_len, D_MODEL],
        -1.0,
        1.0,
        &mut Rng::seed(2),
    );
    model.predict(&x.narrow(0, 0, BATCH)?, BATCH)?;
    let started = Instant::now();
    model.predict(&x, BATCH)?;
    Ok(started.elapsed().as_secs_f64() / batches as f64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (steps, batches) = (arg(1, 10), arg(2, 20));
    println!(
        "TransformerEncoder x{BLOCKS} (d_model {D_MODEL}, {HEADS} heads, ff {FF_DIM}), batch \
         {BATCH}, {} threads, {steps} training steps, {batches} inference batches",
        edgeflow_tensor::threading::num_threads()
    );
    println!(
        "{:>7} | {:>10} | {:>14} | {:>10} | {:>14}",
        "seq_len", "train ms", "train tokens/s", "infer ms", "infer tokens/s"
    );
    for seq_len in [64, 128, 256] {
        let mut model = encoder(seq_len)?;
        #[cfg(feature = "profile")]
        edgeflow_tensor::profile::reset();
        let train = time_training(&mut model, seq_len, steps)?;
        let infer = time_inference(&model, seq_len, batches)?;
        let tokens = (BATCH * seq_len) as f64;
        println!(
            "{seq_len:>7} | {:>10.1} | {:>14.0} | {:>10.1} | {:>14.0}",
            train * 1e3,
            tokens / train,
            infer * 1e3,
            tokens / infer
        );
        #[cfg(feature = "profile")]
        println!("{}", edgeflow_tensor::profile::report());
    }
    Ok(())
}
