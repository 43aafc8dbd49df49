//! Helpers shared by the integration tests of `edgeflow-tensor`: named tolerance presets, an
//! element-wise comparison that reports the worst element, seeded random tensors, and the
//! finite-difference gradient checker (in [`gradcheck`]).
//!
//! Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod gradcheck;

use edgeflow_tensor::{Rng, Tensor};

/// How far a computed value may be from its expected value: `|got - want| <= abs + rel *
/// |want|`.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative part, scaled by the magnitude of the expected value.
    pub rel: f64,
    /// Absolute floor, for expected values at or near zero.
    pub abs: f64,
}

impl Tolerance {
    /// Whether `got` is close enough to `want`. NaN is never close; equal infinities are.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        if got == want {
            return true;
        }
        (got - want).abs() <= self.abs + self.rel * want.abs()
    }
}

/// An f32 kernel against an f64 reference (the JSON fixtures, the shared failure cases): the
/// result of a short f32 computation is within a few ulp (~1e-7 relative), so 1e-5 relative
/// leaves room for accumulation in sums of a few dozen terms. The 1e-6 floor covers expected
/// values near zero, including those below the smallest f32 normal (e.g. `softmax([89, 0])[1]
/// ~ 2.2e-39`), which f32 can only hold as a subnormal or zero.
pub const F32_VS_F64_REFERENCE: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-6,
};

/// Exact equality (integer-valued results, shape arithmetic cases).
pub const EXACT: Tolerance = Tolerance { rel: 0.0, abs: 0.0 };

/// Compares `got` with `want` element by element and panics with the worst offender.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: {} values, expected {}",
        got.len(),
        want.len()
    );
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !tol.accepts(g as f64, w) {
            let excess = (g as f64 - w).abs() - tol.abs - tol.rel * w.abs();
            if worst.is_none_or(|(_, e)| excess > e || excess.is_nan()) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        let bad = got
            .iter()
            .zip(want)
            .filter(|(&g, &w)| !tol.accepts(g as f64, w))
            .count();
        panic!(
            "{what}: {bad} of {} values out of tolerance {tol:?}; worst at {i}: got {} want {}",
            got.len(),
            got[i],
            want[i]
        );
    }
}

/// Same as [`assert_close`] with f32 expectations.
pub fn assert_close_f32(what: &str, got: &[f32], want: &[f32], tol: Tolerance) {
    let want: Vec<f64> = want.iter().map(|&w| w as f64).collect();
    assert_close(what, got, &want, tol);
}

/// A seeded f32 tensor with elements uniform in `[low, high)`.
pub fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    Tensor::rand_uniform(shape.to_vec(), low, high, &mut Rng::seed(seed))
}

/// A seeded f32 tensor whose elements are uniform in `[low, high)` in magnitude with a random
/// sign: every element is at least `low` away from zero (keeps `relu`, `abs`-like kinks out of
/// reach of a finite-difference step).
pub fn away_from_zero(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    let mut rng = Rng::seed(seed);
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| {
            let m = low + (high - low) * rng.uniform();
            if rng.uniform() < 0.5 {
                -m
            } else {
                m
            }
        })
        .collect();
    Tensor::from_vec(data, shape.to_vec()).unwrap()
}

/// A seeded f32 tensor holding a random permutation of `0, 1, ..., n-1` times `spacing`,
/// shifted by `-spacing * n / 2`: all elements distinct and at least `spacing` apart, so a
/// maximum cannot change under a perturbation smaller than `spacing / 2`.
pub fn distinct(shape: &[usize], spacing: f32, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut values: Vec<f32> = (0..n)
        .map(|i| (i as f32 - n as f32 / 2.0) * spacing)
        .collect();
    Rng::seed(seed).shuffle(&mut values);
    Tensor::from_vec(values, shape.to_vec()).unwrap()
}

/// The f32 elements of a tensor.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}
