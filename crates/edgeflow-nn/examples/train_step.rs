//! Times training steps of the CIFAR-10 reference CNN on random data.
//!
//! `cargo run --release -p edgeflow-nn --example train_step -- [steps]`; add
//! `--features profile` for a per-op table.
use std::time::Instant;

use edgeflow_nn::{
    Activation, Conv2DConfig, DenseConfig, FitOptions, LayerConfig, Loss, Metric, OptimizerKind,
    Pooling2DConfig, Sequential, TensorDataset,
};
use edgeflow_tensor::{Rng, Tensor};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut model = Sequential::builder([32, 32, 3])
        .add(Conv2DConfig::new(32, 3).activation(Activation::Relu))
        .add(Pooling2DConfig::new(2).max())
        .add(Conv2DConfig::new(64, 3).activation(Activation::Relu))
        .add(Pooling2DConfig::new(2).max())
        .add(LayerConfig::flatten())
        .add(DenseConfig::new(64).activation(Activation::Relu))
        .add(DenseConfig::new(10).activation(Activation::Softmax))
        .build(0)?;
    println!("{}", model.summary());
    model.compile(
        OptimizerKind::adam(),
        Loss::SparseCategoricalCrossentropy { from_logits: false },
        vec![Metric::Accuracy],
    )?;
    let n = steps * 32;
    let mut rng = Rng::seed(1);
    let x = Tensor::rand_uniform([n, 32, 32, 3], 0.0, 1.0, &mut rng);
    let y = Tensor::from_vec((0..n).map(|i| (i % 10) as i64).collect::<Vec<_>>(), [n])?;
    let data = TensorDataset::new(x, y)?;
    #[cfg(feature = "profile")]
    edgeflow_tensor::profile::reset();
    let t = Instant::now();
    let opts = FitOptions {
        epochs: 1,
        batch_size: 32,
        ..Default::default()
    };
    model.fit(&data, None, &opts, &mut [])?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "{steps} steps: {:.2} ms/step, {:.0} samples/s, est. epoch {:.1} s",
        s * 1e3 / steps as f64,
        n as f64 / s,
        s / steps as f64 * 1563.0
    );
    #[cfg(feature = "profile")]
    println!("{}", edgeflow_tensor::profile::report());
    Ok(())
}
