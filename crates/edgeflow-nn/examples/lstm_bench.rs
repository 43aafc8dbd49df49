//! LSTM throughput and streaming latency, beside `../shared/REFERENCE.md`'s Keras figures:
//!
//! * training: LSTM(64) -> Dense(4, softmax) on BasicMotions shapes (batches of 32 series of
//!   100 steps and 6 channels, random data), Adam, in sequences per second;
//! * streaming: one LSTM(64) step at batch 1 through [`Sequential::stream`], in microseconds
//!   (median, 10th and 90th percentile over many steps).
//!
//! `cargo run --release -p edgeflow-nn --example lstm_bench -- [train_batches] [stream_steps]`
//! (defaults 60 and 20000). `EDGEFLOW_NUM_THREADS` sets the kernel thread count.
use std::time::Instant;

use edgeflow_nn::{
    Activation, DenseConfig, FitOptions, Loss, LstmConfig, Metric, OptimizerKind, Sequential,
    TensorDataset,
};
use edgeflow_tensor::{Rng, Tensor};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `../shared/REFERENCE.md`: BasicMotions LSTM training, Keras, sequences per second.
const KERAS_TRAIN_SEQ_PER_S: f64 = 500.0;
/// `../shared/REFERENCE.md`: KERAS_LSTM_STEP_LATENCY_US.
const KERAS_LSTM_STEP_LATENCY_US: f64 = 350.0;

const BATCH: usize = 32;
const STEPS: usize = 100;
const CHANNELS: usize = 6;
const CLASSES: usize = 4;
const UNITS: usize = 64;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn model() -> Result<Sequential, edgeflow_nn::NnError> {
    Sequential::builder([STEPS, CHANNELS])
        .add(LstmConfig::new(UNITS))
        .add(DenseConfig::new(CLASSES).activation(Activation::Softmax))
        .build(0)
}

/// Sequences per second of `batches` training steps (after two warm-up steps).
fn train_throughput(batches: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let mut model = model()?;
    model.compile(
        OptimizerKind::adam(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        vec![Metric::Accuracy],
    )?;
    let data = |n: usize, seed: u64| -> Result<TensorDataset, Box<dyn std::error::Error>> {
        let mut rng = Rng::seed(seed);
        let x = Tensor::rand_uniform([n, STEPS, CHANNELS], -1.0, 1.0, &mut rng);
        let labels: Vec<i64> = (0..n).map(|i| (i % CLASSES) as i64).collect();
        Ok(TensorDataset::new(x, Tensor::from_vec(labels, [n])?)?)
    };
    let opts = FitOptions {
        epochs: 1,
        batch_size: BATCH,
        ..Default::default()
    };
    model.fit(&data(2 * BATCH, 2)?, None, &opts, &mut [])?;

    let n = batches * BATCH;
    let train = data(n, 1)?;
    #[cfg(feature = "profile")]
    edgeflow_tensor::profile::reset();
    let start = Instant::now();
    model.fit(&train, None, &opts, &mut [])?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    #[cfg(feature = "profile")]
    println!("{}", edgeflow_tensor::profile::report());
    Ok(rate)
}

/// Microseconds per stream step at batch 1, sorted.
fn step_latencies(steps: usize) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let model = model()?;
    let mut stream = model.stream()?;
    let mut rng = Rng::seed(3);
    let inputs: Vec<Tensor> = (0..STEPS)
        .map(|_| Tensor::rand_uniform([1, CHANNELS], -1.0, 1.0, &mut rng))
        .collect();
    for x in inputs.iter().take(20) {
        stream.step(x)?;
    }
    let mut times = Vec::with_capacity(steps);
    for i in 0..steps {
        // A new sequence every STEPS steps, as a device classifying windows would.
        if i % STEPS == 0 {
            stream.reset();
        }
        let x = &inputs[i % STEPS];
        let start = Instant::now();
        let y = stream.step(x)?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(y);
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches = arg(1, 60).max(1);
    let steps = arg(2, 20_000).max(1);
    let threads = edgeflow_tensor::threading::num_threads();
    println!(
        "LSTM({UNITS}) -> Dense({CLASSES}), input [{BATCH}, {STEPS}, {CHANNELS}], {threads} \
         thread(s)"
    );

    let rate = train_throughput(batches)?;
    println!(
        "training:  {rate:.0} sequences/s over {batches} batches ({:.1} ms per batch); Keras \
         ~{KERAS_TRAIN_SEQ_PER_S:.0} sequences/s, ratio {:.2}",
        BATCH as f64 / rate * 1e3,
        rate / KERAS_TRAIN_SEQ_PER_S
    );

    let times = step_latencies(steps)?;
    let median = percentile(&times, 0.5);
    println!(
        "streaming: {median:.1} us per step at batch 1 (median of {steps}; p10 {:.1}, p90 \
         {:.1}); Keras ~{KERAS_LSTM_STEP_LATENCY_US:.0} us, ratio {:.3}",
        percentile(&times, 0.1),
        percentile(&times, 0.9),
        median / KERAS_LSTM_STEP_LATENCY_US
    );
    Ok(())
}
