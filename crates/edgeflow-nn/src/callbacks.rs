//! Hooks into `fit`: progress reporting, early stopping, checkpoints, learning-rate reduction.

use std::path::PathBuf;

use edgeflow_tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Sequential;

/// Figures of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLogs {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean per-sample training loss over the epoch.
    pub loss: f64,
    /// Training metrics, by name.
    pub metrics: Vec<(String, f64)>,
    /// Validation loss, when there is validation data.
    pub val_loss: Option<f64>,
    /// Validation metrics, by name.
    pub val_metrics: Vec<(String, f64)>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Learning rate at the end of the epoch.
    pub learning_rate: f32,
}

impl EpochLogs {
    /// A figure by its Keras log name: `loss`, `accuracy`, `val_loss`, `val_accuracy`, ...
    pub fn get(&self, name: &str) -> Option<f64> {
        if name == "loss" {
            return Some(self.loss);
        }
        if name == "val_loss" {
            return self.val_loss;
        }
        if let Some(m) = name.strip_prefix("val_") {
            return self
                .val_metrics
                .iter()
                .find(|(n, _)| n == m)
                .map(|&(_, v)| v);
        }
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }
}

/// The per-epoch logs of a `fit` call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One entry per completed epoch.
    pub epochs: Vec<EpochLogs>,
    /// Samples trained on per epoch (the training data less any `validation_split` part).
    #[serde(default)]
    pub train_samples: usize,
}

impl History {
    /// The history as pretty JSON.
    ///
    /// # Errors
    /// [`serde_json::Error`] if a figure cannot be written (it never is for finite or
    /// non-finite floats, which become `null`).
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

/// Progress within an epoch, after each batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchProgress {
    /// 1-based epoch.
    pub epoch: usize,
    /// Total epochs.
    pub epochs: usize,
    /// Batches done in this epoch.
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Samples done in this epoch.
    pub samples: usize,
    /// Running mean loss of this epoch.
    pub loss: f64,
    /// Running value of the first metric, if any.
    pub metric: Option<f64>,
}

/// What a callback may change at the end of an epoch.
pub struct TrainControl<'a> {
    /// The model as it is after the epoch.
    pub model: &'a Sequential,
    /// The base learning rate; a callback may lower it.
    pub learning_rate: f32,
    /// Set to stop training after this epoch.
    pub stop: bool,
    /// Weights to load into the model when training ends.
    pub restore_weights: Option<Vec<Tensor>>,
}

/// Hooks called by `fit`. Every method has an empty default.
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _epochs: usize, _samples: usize) {}
    /// Before each epoch.
    fn on_epoch_begin(&mut self, _epoch: usize, _batches: usize) {}
    /// After each training batch.
    fn on_batch_end(&mut self, _progress: &BatchProgress) {}
    /// After each epoch, with its figures.
    ///
    /// # Errors
    /// A failure stops training with that error (e.g. a checkpoint that cannot be written).
    fn on_epoch_end(&mut self, _logs: &EpochLogs, _control: &mut TrainControl<'_>) -> Result<()> {
        Ok(())
    }
    /// After the last epoch.
    fn on_train_end(&mut self, _history: &History) {}
}

/// Whether a larger or a smaller monitored value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Smaller is better (losses).
    Min,
    /// Larger is better (accuracies).
    Max,
}

impl Mode {
    /// Keras' `auto`: `max` for names containing `acc`, `min` otherwise.
    pub fn auto(monitor: &str) -> Mode {
        if monitor.contains("acc") {
            Mode::Max
        } else {
            Mode::Min
        }
    }

    fn improved(self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        match (self, best) {
            (_, None) => true,
            (Mode::Min, Some(b)) => value < b - min_delta,
            (Mode::Max, Some(b)) => value > b + min_delta,
        }
    }
}

/// Tracks the best value of a monitored figure.
#[derive(Debug, Clone)]
struct Monitor {
    name: String,
    mode: Mode,
    min_delta: f64,
    best: Option<f64>,
    wait: usize,
}

impl Monitor {
    fn new(name: &str, min_delta: f64) -> Self {
        Monitor {
            name: name.into(),
            mode: Mode::auto(name),
            min_delta,
            best: None,
            wait: 0,
        }
    }

    /// Records the epoch; returns whether it improved, or `None` when the figure is missing.
    fn update(&mut self, logs: &EpochLogs) -> Option<bool> {
        let value = logs.get(&self.name)?;
        let better = self.mode.improved(value, self.best, self.min_delta);
        if better {
            self.best = Some(value);
            self.wait = 0;
        } else {
            self.wait += 1;
        }
        Some(better)
    }
}

fn missing(name: &str) {
    tracing::warn!(
        monitor = name,
        "monitored figure is not in the epoch logs; callback skipped"
    );
}

/// Stops training when the monitored figure has not improved for `patience` epochs.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    restore_best_weights: bool,
    best_weights: Option<Vec<Tensor>>,
    /// The epoch training stopped at, if it stopped early.
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Watches `monitor` (e.g. `val_loss`) with the given patience.
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: Monitor::new(monitor, 0.0),
            patience,
            restore_best_weights: false,
            best_weights: None,
            stopped_epoch: None,
        }
    }

    /// Sets the smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.monitor.min_delta = min_delta.abs();
        self
    }

    /// At the end, load the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, logs: &EpochLogs, control: &mut TrainControl<'_>) -> Result<()> {
        let Some(better) = self.monitor.update(logs) else {
            missing(&self.monitor.name);
            return Ok(());
        };
        if better {
            // An improving epoch never stops training, whatever the patience (as in Keras).
            if self.restore_best_weights {
                self.best_weights = Some(control.model.weights());
            }
            return Ok(());
        }
        if self.monitor.wait >= self.patience {
            control.stop = true;
            self.stopped_epoch = Some(logs.epoch);
            tracing::info!(epoch = logs.epoch, monitor = %self.monitor.name, "early stopping");
            if self.restore_best_weights {
                control.restore_weights = self.best_weights.clone();
            }
        }
        Ok(())
    }
}

/// Saves the model after each epoch, or only when the monitored figure improves.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: Monitor,
    save_best_only: bool,
}

impl ModelCheckpoint {
    /// Saves to `path` whenever `monitor` improves (`save_best_only`) or after every epoch.
    pub fn new(path: impl Into<PathBuf>, monitor: &str, save_best_only: bool) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: Monitor::new(monitor, 0.0),
            save_best_only,
        }
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, logs: &EpochLogs, control: &mut TrainControl<'_>) -> Result<()> {
        let better = self.monitor.update(logs);
        if better.is_none() {
            missing(&self.monitor.name);
        }
        if !self.save_best_only || better == Some(true) {
            control.model.save(&self.path)?;
            tracing::info!(epoch = logs.epoch, path = %self.path.display(), "checkpoint saved");
        }
        Ok(())
    }
}

/// Multiplies the learning rate by `factor` when the monitored figure has not improved for
/// `patience` epochs (Keras defaults: factor 0.1, patience 10, min_delta 1e-4).
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    monitor: Monitor,
    factor: f32,
    patience: usize,
    min_lr: f32,
}

impl ReduceLrOnPlateau {
    /// Watches `monitor` with Keras' defaults.
    pub fn new(monitor: &str) -> Self {
        ReduceLrOnPlateau {
            monitor: Monitor::new(monitor, 1e-4),
            factor: 0.1,
            patience: 10,
            min_lr: 0.0,
        }
    }

    /// Sets the factor (in `(0, 1)`), patience and floor.
    pub fn with(mut self, factor: f32, patience: usize, min_lr: f32) -> Self {
        self.factor = factor;
        self.patience = patience;
        self.min_lr = min_lr;
        self
    }
}

impl Callback for ReduceLrOnPlateau {
    fn on_epoch_end(&mut self, logs: &EpochLogs, control: &mut TrainControl<'_>) -> Result<()> {
        match self.monitor.update(logs) {
            None => {
                missing(&self.monitor.name);
                return Ok(());
            }
            // An improving epoch never lowers the rate, whatever the patience (as in Keras).
            Some(true) => return Ok(()),
            Some(false) => {}
        }
        if self.monitor.wait >= self.patience {
            let new_lr = (control.learning_rate * self.factor).max(self.min_lr);
            if new_lr < control.learning_rate {
                tracing::info!(epoch = logs.epoch, lr = new_lr, "reducing learning rate");
                control.learning_rate = new_lr;
            }
            self.monitor.wait = 0;
        }
        Ok(())
    }
}
