//! Optimizers with Keras defaults and update rules, gradient clipping and learning-rate
//! schedules.

use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result, TensorContext};

fn lr_default() -> f32 {
    1e-3
}
fn lr_sgd() -> f32 {
    1e-2
}
fn beta_1() -> f32 {
    0.9
}
fn beta_2() -> f32 {
    0.999
}
fn epsilon() -> f32 {
    1e-7
}
fn rho() -> f32 {
    0.9
}
fn weight_decay() -> f32 {
    0.004
}

/// The update rule and its hyper-parameters, with Keras' defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum OptimizerKind {
    /// `v = momentum * v - lr * g; w += v` (Nesterov: `w += momentum * v - lr * g`).
    Sgd {
        /// Step size (default 0.01).
        #[serde(default = "lr_sgd")]
        learning_rate: f32,
        /// Momentum (default 0).
        #[serde(default)]
        momentum: f32,
        /// Nesterov momentum (default false).
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam as in Keras: bias correction folded into the step size, epsilon added to `sqrt(v)`.
    Adam {
        /// Step size (default 0.001).
        #[serde(default = "lr_default")]
        learning_rate: f32,
        /// First-moment decay (default 0.9).
        #[serde(default = "beta_1")]
        beta_1: f32,
        /// Second-moment decay (default 0.999).
        #[serde(default = "beta_2")]
        beta_2: f32,
        /// Added to the denominator (default 1e-7).
        #[serde(default = "epsilon")]
        epsilon: f32,
    },
    /// Adam with decoupled weight decay: `w -= lr * weight_decay * w` before the Adam step.
    #[serde(rename = "adamw")]
    AdamW {
        /// Step size (default 0.001).
        #[serde(default = "lr_default")]
        learning_rate: f32,
        /// First-moment decay (default 0.9).
        #[serde(default = "beta_1")]
        beta_1: f32,
        /// Second-moment decay (default 0.999).
        #[serde(default = "beta_2")]
        beta_2: f32,
        /// Added to the denominator (default 1e-7).
        #[serde(default = "epsilon")]
        epsilon: f32,
        /// Decay factor (default 0.004).
        #[serde(default = "weight_decay")]
        weight_decay: f32,
    },
    /// RMSprop as in Keras: `v = rho * v + (1 - rho) * g^2; w -= lr * g / sqrt(v + epsilon)`.
    Rmsprop {
        /// Step size (default 0.001).
        #[serde(default = "lr_default")]
        learning_rate: f32,
        /// Decay of the squared-gradient average (default 0.9).
        #[serde(default = "rho")]
        rho: f32,
        /// Added under the square root (default 1e-7).
        #[serde(default = "epsilon")]
        epsilon: f32,
    },
}

impl OptimizerKind {
    /// Adam with Keras defaults.
    pub fn adam() -> Self {
        OptimizerKind::Adam {
            learning_rate: lr_default(),
            beta_1: beta_1(),
            beta_2: beta_2(),
            epsilon: epsilon(),
        }
    }

    /// The configured base learning rate.
    pub fn learning_rate(&self) -> f32 {
        match *self {
            OptimizerKind::Sgd { learning_rate, .. }
            | OptimizerKind::Adam { learning_rate, .. }
            | OptimizerKind::AdamW { learning_rate, .. }
            | OptimizerKind::Rmsprop { learning_rate, .. } => learning_rate,
        }
    }

    fn slots(&self) -> usize {
        match self {
            OptimizerKind::Sgd { momentum, .. } => usize::from(*momentum != 0.0),
            OptimizerKind::Adam { .. } | OptimizerKind::AdamW { .. } => 2,
            OptimizerKind::Rmsprop { .. } => 1,
        }
    }
}

/// How the learning rate changes with the number of steps taken (`step` counts batches).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Schedule {
    /// `lr * gamma ^ floor(step / step_size)`.
    StepDecay {
        /// Steps between drops.
        step_size: u64,
        /// Factor of each drop.
        gamma: f32,
    },
    /// Keras `ExponentialDecay`: `lr * rate ^ (step / decay_steps)`, floored when `staircase`.
    ExponentialDecay {
        /// Steps per decay period.
        decay_steps: u64,
        /// Factor per period.
        decay_rate: f32,
        /// Whether to decay in whole periods.
        #[serde(default)]
        staircase: bool,
    },
    /// Keras `CosineDecay`: from `lr` down to `alpha * lr` over `decay_steps`, then constant.
    CosineDecay {
        /// Length of the decay in steps.
        decay_steps: u64,
        /// Final fraction of the learning rate (default 0).
        #[serde(default)]
        alpha: f32,
    },
}

impl Schedule {
    /// The learning rate at `step` for base rate `lr`.
    pub fn rate(&self, lr: f32, step: u64) -> f32 {
        match *self {
            Schedule::StepDecay { step_size, gamma } => {
                lr * gamma.powi((step / step_size.max(1)) as i32)
            }
            Schedule::ExponentialDecay {
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let p = step as f64 / decay_steps.max(1) as f64;
                let p = if staircase { p.floor() } else { p };
                lr * (decay_rate as f64).powf(p) as f32
            }
            Schedule::CosineDecay { decay_steps, alpha } => {
                let p = (step.min(decay_steps) as f64 / decay_steps.max(1) as f64) as f32;
                let cosine = 0.5 * (1.0 + (std::f32::consts::PI * p).cos());
                lr * ((1.0 - alpha) * cosine + alpha)
            }
        }
    }
}

/// A full optimizer description: rule, optional clipping, optional schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The update rule.
    #[serde(flatten)]
    pub kind: OptimizerKind,
    /// Clip each gradient tensor to this L2 norm (Keras `clipnorm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clipnorm: Option<f32>,
    /// Clip all gradients together to this global L2 norm (Keras `global_clipnorm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_clipnorm: Option<f32>,
    /// Learning-rate schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

impl From<OptimizerKind> for OptimizerConfig {
    fn from(kind: OptimizerKind) -> Self {
        OptimizerConfig {
            kind,
            clipnorm: None,
            global_clipnorm: None,
            schedule: None,
        }
    }
}

/// An optimizer with its state (moment estimates per parameter, step count).
#[derive(Debug, Clone)]
pub struct Optimizer {
    config: OptimizerConfig,
    base_lr: f32,
    iterations: u64,
    slots: Vec<Vec<Vec<f32>>>,
}

impl Optimizer {
    /// A fresh optimizer.
    ///
    /// # Errors
    /// [`NnError::Config`] for a non-positive learning rate or out-of-range decay factors.
    pub fn new(config: OptimizerConfig) -> Result<Self> {
        let lr = config.kind.learning_rate();
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(NnError::Config(format!(
                "learning rate must be positive, got {lr}"
            )));
        }
        if let OptimizerKind::Adam { beta_1, beta_2, .. }
        | OptimizerKind::AdamW { beta_1, beta_2, .. } = config.kind
        {
            if !(0.0..1.0).contains(&beta_1) || !(0.0..1.0).contains(&beta_2) {
                return Err(NnError::Config(format!(
                    "beta_1 {beta_1} and beta_2 {beta_2} must be in [0, 1)"
                )));
            }
        }
        Ok(Optimizer {
            base_lr: lr,
            config,
            iterations: 0,
            slots: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// Number of steps taken.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The base learning rate (before the schedule).
    pub fn base_learning_rate(&self) -> f32 {
        self.base_lr
    }

    /// Changes the base learning rate (what `ReduceLROnPlateau` does).
    pub fn set_base_learning_rate(&mut self, lr: f32) {
        self.base_lr = lr;
    }

    /// The learning rate of the next step.
    pub fn current_learning_rate(&self) -> f32 {
        match &self.config.schedule {
            Some(s) => s.rate(self.base_lr, self.iterations),
            None => self.base_lr,
        }
    }

    /// Applies one update to `params` from their gradients (same order; `None` = no gradient).
    ///
    /// # Errors
    /// [`NnError::Input`] when the number of gradients differs from the number of parameters,
    /// or a gradient's shape from its parameter's.
    pub fn step(&mut self, params: &mut [&mut Tensor], grads: &[Option<Tensor>]) -> Result<()> {
        if grads.len() != params.len() {
            return Err(NnError::Input(format!(
                "optimizer step: {} gradients for {} parameters",
                grads.len(),
                params.len()
            )));
        }
        let mut grads: Vec<Option<Vec<f32>>> = grads
            .iter()
            .zip(params.iter())
            .map(|(g, p)| check_grad(g.as_ref(), p))
            .collect::<Result<_>>()?;
        self.clip(&mut grads);
        // Fresh state for a new parameter list: another count, or another size anywhere.
        let fits = self.slots.len() == params.len()
            && self
                .slots
                .iter()
                .zip(params.iter())
                .all(|(s, p)| s.iter().all(|v| v.len() == p.elem_count()));
        if !fits {
            let n = self.config.kind.slots();
            self.slots = params
                .iter()
                .map(|p| vec![vec![0.0; p.elem_count()]; n])
                .collect();
        }
        let lr = self.current_learning_rate();
        self.iterations += 1;
        let t = self.iterations;
        for ((p, g), slots) in params.iter_mut().zip(&grads).zip(&mut self.slots) {
            let Some(g) = g else { continue };
            let kind = &self.config.kind;
            p.update_f32(|w| apply_rule(kind, lr, t, w, g, slots))
                .ctx("optimizer step")?;
        }
        Ok(())
    }

    fn clip(&self, grads: &mut [Option<Vec<f32>>]) {
        if let Some(max) = self.config.clipnorm {
            for g in grads.iter_mut().flatten() {
                let norm = l2_norm(std::iter::once(&*g));
                scale_if_above(std::iter::once(g), norm, max);
            }
        }
        if let Some(max) = self.config.global_clipnorm {
            let norm = l2_norm(grads.iter().flatten());
            scale_if_above(grads.iter_mut().flatten(), norm, max);
        }
    }
}

fn check_grad(g: Option<&Tensor>, p: &Tensor) -> Result<Option<Vec<f32>>> {
    let Some(g) = g else { return Ok(None) };
    if g.dims() != p.dims() {
        return Err(NnError::Input(format!(
            "gradient shape {:?} differs from parameter shape {:?}",
            g.dims(),
            p.dims()
        )));
    }
    g.to_vec_f32().map(Some).ctx("gradient")
}

/// The joint L2 norm of several gradient tensors, accumulated in f64.
fn l2_norm<'a>(grads: impl Iterator<Item = &'a Vec<f32>>) -> f32 {
    grads
        .flatten()
        .map(|&v| (v as f64) * (v as f64))
        .sum::<f64>()
        .sqrt() as f32
}

/// Scales the tensors by `max / norm` when their norm is above `max`.
fn scale_if_above<'a>(grads: impl Iterator<Item = &'a mut Vec<f32>>, norm: f32, max: f32) {
    if norm > max && norm > 0.0 {
        let s = max / norm;
        grads.flatten().for_each(|v| *v *= s);
    }
}

fn apply_rule(
    kind: &OptimizerKind,
    lr: f32,
    t: u64,
    w: &mut [f32],
    g: &[f32],
    slots: &mut [Vec<f32>],
) {
    match *kind {
        OptimizerKind::Sgd {
            momentum, nesterov, ..
        } => {
            if momentum == 0.0 {
                w.iter_mut().zip(g).for_each(|(w, g)| *w -= lr * g);
                return;
            }
            for ((w, g), v) in w.iter_mut().zip(g).zip(slots[0].iter_mut()) {
                *v = momentum * *v - lr * g;
                *w += if nesterov { momentum * *v - lr * g } else { *v };
            }
        }
        OptimizerKind::Adam {
            beta_1,
            beta_2,
            epsilon,
            ..
        } => adam(lr, t, beta_1, beta_2, epsilon, w, g, slots),
        OptimizerKind::AdamW {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            ..
        } => {
            w.iter_mut().for_each(|w| *w -= *w * weight_decay * lr);
            adam(lr, t, beta_1, beta_2, epsilon, w, g, slots);
        }
        OptimizerKind::Rmsprop { rho, epsilon, .. } => {
            for ((w, g), v) in w.iter_mut().zip(g).zip(slots[0].iter_mut()) {
                *v = rho * *v + (1.0 - rho) * g * g;
                *w -= lr * g / (*v + epsilon).sqrt();
            }
        }
    }
}

edgeflow_tensor::vectorized! {
    /// One Adam update of a slice, in the widest vectors this CPU has (the same operations in
    /// the same order as the scalar loop, so the same bits). `rates` is `[alpha, beta_1,
    /// beta_2, epsilon]`.
    fn adam_update(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], rates: [f32; 4]) =
        adam_update_portable;
}

#[inline(always)]
fn adam_update_portable(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], rates: [f32; 4]) {
    let [alpha, b1, b2, eps] = rates;
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += (g - *m) * (1.0 - b1);
        *v += (g * g - *v) * (1.0 - b2);
        *w -= alpha * *m / (v.sqrt() + eps);
    }
}

/// Parameters with more elements than this are updated by several threads.
const PARALLEL_CHUNK: usize = 1 << 14;

#[allow(clippy::too_many_arguments)]
fn adam(
    lr: f32,
    t: u64,
    b1: f32,
    b2: f32,
    eps: f32,
    w: &mut [f32],
    g: &[f32],
    slots: &mut [Vec<f32>],
) {
    // Keras folds the bias corrections into the step size.
    let t = t as i32;
    let alpha = lr * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t));
    let (m, v) = slots.split_at_mut(1);
    let rates = [alpha, b1, b2, eps];
    let update = |w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]| {
        adam_update(w, g, m, v, rates);
    };
    if w.len() < PARALLEL_CHUNK {
        update(w, g, &mut m[0], &mut v[0]);
        return;
    }
    // Every element is updated on its own, so splitting the work changes no result.
    use rayon::prelude::*;
    edgeflow_tensor::threading::install(|| {
        w.par_chunks_mut(PARALLEL_CHUNK)
            .zip(g.par_chunks(PARALLEL_CHUNK))
            .zip(m[0].par_chunks_mut(PARALLEL_CHUNK))
            .zip(v[0].par_chunks_mut(PARALLEL_CHUNK))
            .for_each(|(((w, g), m), v)| update(w, g, m, v));
    });
}
