//! Training progress on the terminal: a bar per epoch and a line per finished epoch.

use std::time::Instant;

use edgeflow_nn::callbacks::{BatchProgress, TrainControl};
use edgeflow_nn::{Callback, EpochLogs};
use indicatif::{ProgressBar, ProgressStyle};

/// Draws an epoch bar with samples/s, ETA, running loss and accuracy, and prints a Keras-like
/// summary line when the epoch ends.
pub struct ProgressPrinter {
    bar: Option<ProgressBar>,
    started: Instant,
    epochs: usize,
}

impl ProgressPrinter {
    /// A printer; the epoch count comes with `on_train_begin`.
    pub fn new() -> Self {
        ProgressPrinter {
            bar: None,
            started: Instant::now(),
            epochs: 0,
        }
    }
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed_precise}, ETA {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Callback for ProgressPrinter {
    fn on_train_begin(&mut self, epochs: usize, samples: usize) {
        self.epochs = epochs;
        println!("Training on {samples} samples for {epochs} epochs");
    }

    fn on_epoch_begin(&mut self, epoch: usize, batches: usize) {
        let bar = ProgressBar::new(batches as u64).with_style(style());
        bar.set_prefix(format!("Epoch {epoch}/{}", self.epochs));
        self.bar = Some(bar);
        self.started = Instant::now();
    }

    fn on_batch_end(&mut self, p: &BatchProgress) {
        let Some(bar) = &self.bar else { return };
        // Redrawing every batch costs more than the batch on small models.
        if !p.batch.is_multiple_of(10) && p.batch != p.batches {
            return;
        }
        let rate = p.samples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let metric = p.metric.map(|m| format!(" acc {m:.4}")).unwrap_or_default();
        bar.set_position(p.batch as u64);
        bar.set_message(format!("loss {:.4}{metric} {rate:.0} samples/s", p.loss));
    }

    fn on_epoch_end(
        &mut self,
        logs: &EpochLogs,
        _: &mut TrainControl<'_>,
    ) -> edgeflow_nn::Result<()> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        println!("{}", epoch_line(logs, self.epochs));
        Ok(())
    }
}

/// `Epoch 3/10 - 12.1s - loss: 0.9876 - accuracy: 0.6543 - val_loss: ...`
pub fn epoch_line(logs: &EpochLogs, epochs: usize) -> String {
    let mut line = format!(
        "Epoch {}/{epochs} - {:.1}s - loss: {:.4}",
        logs.epoch, logs.seconds, logs.loss
    );
    for (name, v) in &logs.metrics {
        line.push_str(&format!(" - {name}: {v:.4}"));
    }
    if let Some(v) = logs.val_loss {
        line.push_str(&format!(" - val_loss: {v:.4}"));
    }
    for (name, v) in &logs.val_metrics {
        line.push_str(&format!(" - val_{name}: {v:.4}"));
    }
    line
}
