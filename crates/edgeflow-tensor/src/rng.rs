//! A seeded random number generator for initializers, dropout and shuffling.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Shape, Tensor};

/// A deterministic random stream: the same seed gives the same numbers on every platform.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A stream from a 64-bit seed.
    pub fn seed(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform sample from `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        self.0.gen::<f32>()
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n.max(1))
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.0.gen::<f64>().max(f64::MIN_POSITIVE);
        let u2 = self.0.gen::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// An independent stream derived from this one (for a layer or a worker).
    pub fn fork(&mut self) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(self.0.gen()))
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.0.gen_range(0..=i);
            items.swap(i, j);
        }
    }
}

impl Tensor {
    /// An f32 tensor of samples uniform in `[low, high)`.
    pub fn rand_uniform(shape: impl Into<Shape>, low: f32, high: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.elem_count())
            .map(|_| low + (high - low) * rng.uniform())
            .collect();
        Tensor::from_storage(crate::dtype::Storage::F32(data), shape)
    }

    /// An f32 tensor of normal samples with the given mean and standard deviation.
    pub fn rand_normal(shape: impl Into<Shape>, mean: f32, std: f32, rng: &mut Rng) -> Tensor {
        let shape = shape.into();
        let data = (0..shape.elem_count())
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::from_storage(crate::dtype::Storage::F32(data), shape)
    }
}
