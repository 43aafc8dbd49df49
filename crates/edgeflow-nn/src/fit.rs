//! `fit`, `evaluate` and `predict`.

use std::time::Instant;

use edgeflow_tensor::{no_grad, Rng, Tensor};

use crate::callbacks::{BatchProgress, Callback, EpochLogs, History, TrainControl};
use crate::data::{batch_indices, Dataset, Subset};
use crate::error::{NnError, Result, TensorContext};
use crate::layers::ForwardCtx;
use crate::loss::Loss;
use crate::metrics::{argmax, ConfusionMatrix, Metric};
use crate::model::Sequential;
use crate::optimizer::Optimizer;

/// Settings of a `fit` call, with Keras' defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Passes over the training data (default 1).
    pub epochs: usize,
    /// Samples per gradient step (default 32); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Reshuffle the training samples every epoch (default true).
    pub shuffle: bool,
    /// Seed of shuffling and dropout (default 0).
    pub seed: u64,
    /// Fraction of the training data held out for validation, taken from the end before any
    /// shuffling as Keras does (default 0). Ignored when validation data is given.
    pub validation_split: f32,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation_split: 0.0,
        }
    }
}

/// Result of `evaluate`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Mean per-sample loss.
    pub loss: f64,
    /// Metrics by name.
    pub metrics: Vec<(String, f64)>,
    /// Number of samples.
    pub samples: usize,
    /// Confusion matrix, for integer-label classification.
    pub confusion: Option<ConfusionMatrix>,
}

impl Evaluation {
    /// A metric by name.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| v)
    }
}

/// Running sums of loss and metric hits over an epoch.
struct Tally {
    loss_sum: f64,
    hits: Vec<f64>,
    samples: usize,
}

impl Tally {
    fn new(metrics: usize) -> Self {
        Tally {
            loss_sum: 0.0,
            hits: vec![0.0; metrics],
            samples: 0,
        }
    }

    fn add(
        &mut self,
        loss: &Loss,
        metrics: &[Metric],
        out: &Tensor,
        y: &Tensor,
        per_sample: &Tensor,
    ) -> Result<()> {
        let losses = per_sample.to_vec_f32().ctx("loss")?;
        self.loss_sum += losses.iter().map(|&l| l as f64).sum::<f64>();
        for (h, m) in self.hits.iter_mut().zip(metrics) {
            *h += m.correct(loss, out, y)?;
        }
        self.samples += losses.len();
        Ok(())
    }

    fn loss(&self) -> f64 {
        self.loss_sum / self.samples.max(1) as f64
    }

    fn metrics(&self, metrics: &[Metric]) -> Vec<(String, f64)> {
        metrics
            .iter()
            .zip(&self.hits)
            .map(|(m, &h)| (m.name(), h / self.samples.max(1) as f64))
            .collect()
    }
}

impl Sequential {
    /// Trains the model: `epochs` passes over `train` in batches, each batch one optimizer
    /// step on the mean per-sample loss. Reports through `callbacks` and returns the
    /// per-epoch history.
    ///
    /// # Errors
    /// [`NnError::NotCompiled`] before `compile`; [`NnError::Config`] for an empty dataset or
    /// zero batch size; [`NnError::Diverged`] when the loss becomes NaN or infinite; dataset
    /// and callback errors.
    pub fn fit(
        &mut self,
        train: &dyn Dataset,
        validation: Option<&dyn Dataset>,
        opts: &FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let (compile, _) = self.compiled.as_ref().ok_or(NnError::NotCompiled("fit"))?;
        // Callbacks see the model during training (a checkpoint saves it), so the compile
        // settings stay in place, beside a fresh stand-in for the optimizer borrowed here.
        let stand_in = Some((compile.clone(), Optimizer::new(compile.optimizer.clone())?));
        let (compile, mut optimizer) =
            std::mem::replace(&mut self.compiled, stand_in).ok_or(NnError::NotCompiled("fit"))?;
        let result = self.fit_inner(
            train,
            validation,
            opts,
            callbacks,
            &compile.loss,
            &compile.metrics,
            &mut optimizer,
        );
        self.compiled = Some((compile, optimizer));
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn fit_inner(
        &mut self,
        train: &dyn Dataset,
        validation: Option<&dyn Dataset>,
        opts: &FitOptions,
        callbacks: &mut [&mut dyn Callback],
        loss: &Loss,
        metrics: &[Metric],
        optimizer: &mut Optimizer,
    ) -> Result<History> {
        // Validation data given outright replaces `validation_split`, which then costs the
        // training data nothing (as in Keras).
        let split = if validation.is_some() {
            if opts.validation_split > 0.0 {
                tracing::warn!("validation data given: validation_split is ignored");
            }
            0.0
        } else {
            opts.validation_split
        };
        let (train_part, split_part) = split_validation(train, split)?;
        let validation = validation.or(split_part.as_ref().map(|s| s as &dyn Dataset));
        let train: &dyn Dataset = train_part.as_ref().map_or(train, |s| s as &dyn Dataset);
        if train.is_empty() {
            return Err(NnError::Config("the training dataset is empty".into()));
        }
        let mut rng = Rng::seed(opts.seed);
        let mut history = History {
            train_samples: train.len(),
            ..History::default()
        };
        callbacks
            .iter_mut()
            .for_each(|c| c.on_train_begin(opts.epochs, train.len()));
        for epoch in 1..=opts.epochs {
            let start = Instant::now();
            let batches = batch_indices(
                train.len(),
                opts.batch_size,
                opts.shuffle.then_some(&mut rng),
            )?;
            callbacks
                .iter_mut()
                .for_each(|c| c.on_epoch_begin(epoch, batches.len()));
            let mut tally = Tally::new(metrics.len());
            for (b, idx) in batches.iter().enumerate() {
                // The whole step runs on a kernel-pool thread, so each of its many small ops
                // calls its kernel right there instead of handing it to the pool.
                // Steps are numbered across epochs, so training-only changes to a batch
                // (augmentation) differ from step to step and repeat with the seed.
                let step = ((epoch - 1) * batches.len() + b) as u64;
                edgeflow_tensor::threading::install(|| {
                    let (x, y) = train.train_batch(idx, step)?;
                    self.train_step(&x, &y, loss, metrics, optimizer, &mut rng, &mut tally)
                })
                .map_err(|e| diverged_at(e, epoch, b))?;
                let progress = BatchProgress {
                    epoch,
                    epochs: opts.epochs,
                    batch: b + 1,
                    batches: batches.len(),
                    samples: tally.samples,
                    loss: tally.loss(),
                    metric: tally.metrics(metrics).first().map(|m| m.1),
                };
                callbacks.iter_mut().for_each(|c| c.on_batch_end(&progress));
            }
            let val = validation
                .map(|v| self.evaluate_with(v, opts.batch_size, loss, metrics))
                .transpose()?;
            let logs = EpochLogs {
                epoch,
                loss: tally.loss(),
                metrics: tally.metrics(metrics),
                val_loss: val.as_ref().map(|v| v.loss),
                val_metrics: val.map(|v| v.metrics).unwrap_or_default(),
                seconds: start.elapsed().as_secs_f64(),
                learning_rate: optimizer.current_learning_rate(),
            };
            tracing::info!(
                epoch,
                loss = logs.loss,
                seconds = logs.seconds,
                "epoch finished"
            );
            let stop = self.end_of_epoch(&logs, optimizer, callbacks)?;
            history.epochs.push(logs);
            if stop {
                break;
            }
        }
        callbacks.iter_mut().for_each(|c| c.on_train_end(&history));
        Ok(history)
    }

    /// Runs the epoch-end callbacks and applies what they decided; returns whether to stop.
    fn end_of_epoch(
        &mut self,
        logs: &EpochLogs,
        optimizer: &mut Optimizer,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<bool> {
        let mut control = TrainControl {
            model: self,
            learning_rate: optimizer.base_learning_rate(),
            stop: false,
            restore_weights: None,
        };
        for c in callbacks.iter_mut() {
            c.on_epoch_end(logs, &mut control)?;
        }
        let TrainControl {
            learning_rate,
            stop,
            restore_weights,
            ..
        } = control;
        optimizer.set_base_learning_rate(learning_rate);
        if let Some(w) = restore_weights {
            self.set_weights(w)?;
        }
        Ok(stop)
    }

    #[allow(clippy::too_many_arguments)]
    fn train_step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        loss: &Loss,
        metrics: &[Metric],
        optimizer: &mut Optimizer,
        rng: &mut Rng,
        tally: &mut Tally,
    ) -> Result<()> {
        let mut ctx = ForwardCtx::training(rng.fork());
        let grads = {
            let out = self.forward(x, &mut ctx)?;
            let per_sample = loss.per_sample(&out, y)?;
            let mean = per_sample.mean_all().ctx("loss")?;
            let value = mean.to_scalar().ctx("loss")?;
            if !value.is_finite() {
                return Err(NnError::Diverged {
                    epoch: 0,
                    batch: 0,
                    value,
                });
            }
            tally.add(loss, metrics, &out.detach(), y, &per_sample)?;
            mean.backward().ctx("backward")?
            // The graph is dropped here, so parameters are updated in place below.
        };
        let mut params = self.params_mut();
        let grads: Vec<Option<Tensor>> = params
            .iter()
            .map(|(_, p)| {
                if p.trainable {
                    grads.get(&p.value).cloned()
                } else {
                    None
                }
            })
            .collect();
        let mut values: Vec<&mut Tensor> = params.iter_mut().map(|(_, p)| &mut p.value).collect();
        optimizer.step(&mut values, &grads)?;
        drop(values);
        for (key, value) in ctx.state_updates {
            if let Some((_, p)) = params.iter_mut().find(|(n, _)| *n == key) {
                p.value = value.detach();
            }
        }
        Ok(())
    }

    /// Loss and metrics over `data`, in batches, with gradient recording off.
    ///
    /// # Errors
    /// [`NnError::NotCompiled`] before `compile`; dataset and input errors.
    pub fn evaluate(&self, data: &dyn Dataset, batch_size: usize) -> Result<Evaluation> {
        let (compile, _) = self
            .compiled
            .as_ref()
            .ok_or(NnError::NotCompiled("evaluate"))?;
        self.evaluate_with(data, batch_size, &compile.loss, &compile.metrics)
    }

    fn evaluate_with(
        &self,
        data: &dyn Dataset,
        batch_size: usize,
        loss: &Loss,
        metrics: &[Metric],
    ) -> Result<Evaluation> {
        let sparse = matches!(loss, Loss::SparseCategoricalCrossentropy { .. });
        let classes = self.output_shape().last().copied().unwrap_or(0);
        let mut confusion = sparse.then(|| ConfusionMatrix::new(classes));
        let mut tally = Tally::new(metrics.len());
        no_grad(|| -> Result<()> {
            for idx in batch_indices(data.len(), batch_size, None)? {
                let (x, y) = data.batch(&idx)?;
                let out = self.forward(&x, &mut ForwardCtx::inference())?;
                let per_sample = loss.per_sample(&out, &y)?;
                tally.add(loss, metrics, &out, &y, &per_sample)?;
                if let Some(cm) = confusion.as_mut() {
                    record_confusion(cm, &out, &y)?;
                }
            }
            Ok(())
        })?;
        Ok(Evaluation {
            loss: tally.loss(),
            metrics: tally.metrics(metrics),
            samples: tally.samples,
            confusion,
        })
    }

    /// Model outputs for `input` (`[n, ...input_shape]`), computed in batches with gradient
    /// recording off and layers in inference mode.
    ///
    /// # Errors
    /// [`NnError::Input`] naming the expected shape when `input` does not fit.
    pub fn predict(&self, input: &Tensor, batch_size: usize) -> Result<Tensor> {
        // Checked whole, so the error names the caller's shape rather than a batch's, and an
        // empty input of the wrong shape is refused too.
        self.check_input(input.dims())?;
        let n = input.dims()[0];
        no_grad(|| {
            let mut outs = Vec::new();
            for idx in batch_indices(n, batch_size, None)? {
                let x = input.narrow(0, idx[0], idx.len()).ctx("predict")?;
                outs.push(self.forward(&x, &mut ForwardCtx::inference())?);
            }
            if outs.is_empty() {
                let mut dims = vec![0];
                dims.extend_from_slice(self.output_shape());
                return Ok(Tensor::zeros(dims));
            }
            Tensor::concat(&outs, 0).ctx("predict")
        })
    }
}

fn record_confusion(cm: &mut ConfusionMatrix, out: &Tensor, y: &Tensor) -> Result<()> {
    let scores = out.to_vec_f32().ctx("confusion")?;
    let labels = y.to_vec::<i64>().ctx("confusion")?;
    for (row, &l) in scores.chunks(cm.classes.max(1)).zip(&labels) {
        cm.add(l as usize, argmax(row));
    }
    Ok(())
}

fn diverged_at(e: NnError, epoch: usize, batch: usize) -> NnError {
    match e {
        NnError::Diverged { value, .. } => NnError::Diverged {
            epoch,
            batch,
            value,
        },
        other => other,
    }
}

/// The training and validation parts of `data` for a Keras-style `validation_split`.
fn split_validation(
    data: &dyn Dataset,
    split: f32,
) -> Result<(Option<Subset<'_>>, Option<Subset<'_>>)> {
    if split == 0.0 {
        return Ok((None, None));
    }
    if !(0.0..1.0).contains(&split) {
        return Err(NnError::Config(format!(
            "validation_split {split} is outside [0, 1)"
        )));
    }
    let n = data.len();
    let val = ((n as f64) * split as f64).round() as usize;
    if val == 0 || val == n {
        return Err(NnError::Config(format!(
            "validation_split {split} of {n} samples leaves one side empty"
        )));
    }
    let cut = n - val;
    Ok((
        Some(Subset::new(data, (0..cut).collect())),
        Some(Subset::new(data, (cut..n).collect())),
    ))
}
