//! `fit`, `evaluate` and `predict` end to end: learning a separable problem, determinism,
//! training versus inference mode, batching (shared case DAT-02), validation split,
//! callbacks and the errors of bad calls.
//!
//! Most checks use tiny models whose losses can be worked out by hand: a one-weight Dense
//! layer set with `set_weights`, trained by plain SGD.

use std::sync::Once;

use edgeflow_nn::callbacks::BatchProgress;
use edgeflow_nn::{
    batch_indices, Activation, BatchNormalizationConfig, Callback, DenseConfig, DropoutConfig,
    EarlyStopping, FitOptions, ForwardCtx, History, LayerConfig, Loss, Metric, ModelCheckpoint,
    NnError, OptimizerKind, ReduceLrOnPlateau, Sequential, TensorDataset,
};
use edgeflow_tensor::{Rng, Tensor};

/// Every test in this binary uses the same kernel thread count, so that one test setting it
/// cannot change the arithmetic of another running beside it.
fn fixed_threads() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| edgeflow_tensor::threading::set_num_threads(2));
}

fn f32s(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec()).unwrap()
}

fn sgd(learning_rate: f32) -> OptimizerKind {
    OptimizerKind::Sgd {
        learning_rate,
        momentum: 0.0,
        nesterov: false,
    }
}

fn tensor_bits(t: &Tensor) -> Vec<u32> {
    t.to_vec_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn bits(weights: &[Tensor]) -> Vec<Vec<u32>> {
    weights.iter().map(tensor_bits).collect()
}

fn param(model: &Sequential, name: &str) -> Vec<f32> {
    model
        .named_params()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .1
        .value
        .to_vec_f32()
        .unwrap()
}

// ---- (a) learning a separable problem ----

/// 90 points in three well separated clusters around the corners of a triangle of radius 3,
/// each jittered by at most 0.5 in each coordinate; labels 0, 1, 2.
fn three_clusters() -> TensorDataset {
    let mut rng = Rng::seed(7);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..90usize {
        let class = i % 3;
        let angle = std::f32::consts::TAU * class as f32 / 3.0;
        x.push(3.0 * angle.cos() + rng.uniform() - 0.5);
        x.push(3.0 * angle.sin() + rng.uniform() - 0.5);
        y.push(class as i64);
    }
    TensorDataset::new(f32s(&x, &[90, 2]), Tensor::from_vec(y, [90]).unwrap()).unwrap()
}

fn classifier(seed: u64) -> Sequential {
    Sequential::builder([2])
        .add(DenseConfig::new(16).activation(Activation::Relu))
        .add(LayerConfig::Dropout(DropoutConfig {
            rate: 0.1,
            name: None,
        }))
        .add(DenseConfig::new(3).activation(Activation::Softmax))
        .build(seed)
        .unwrap()
}

fn train_classifier(seed: u64, epochs: usize) -> (Sequential, History) {
    let mut model = classifier(seed);
    let adam = OptimizerKind::Adam {
        learning_rate: 0.02,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    model
        .compile(
            adam,
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            vec![Metric::Accuracy],
        )
        .unwrap();
    let opts = FitOptions {
        epochs,
        batch_size: 8,
        seed,
        ..FitOptions::default()
    };
    let history = model.fit(&three_clusters(), None, &opts, &mut []).unwrap();
    (model, history)
}

#[test]
fn separable_three_class_problem_reaches_full_training_accuracy() {
    fixed_threads();
    let (model, history) = train_classifier(1, 30);
    let eval = model.evaluate(&three_clusters(), 16).unwrap();
    assert_eq!(eval.metric("accuracy"), Some(1.0), "loss {}", eval.loss);
    let first = &history.epochs[0];
    let last = history.epochs.last().unwrap();
    assert!(
        last.loss < first.loss / 4.0,
        "loss {} -> {}",
        first.loss,
        last.loss
    );
    assert_eq!(history.epochs.len(), 30);
}

// ---- (b) determinism ----

#[test]
fn same_seed_gives_bit_identical_weights_and_other_seeds_differ() {
    fixed_threads();
    let (a, ha) = train_classifier(3, 3);
    let (b, hb) = train_classifier(3, 3);
    assert_eq!(bits(&a.weights()), bits(&b.weights()));
    let losses = |h: &History| {
        h.epochs
            .iter()
            .map(|e| e.loss.to_bits())
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(&ha), losses(&hb));

    let (c, _) = train_classifier(4, 3);
    assert_ne!(bits(&a.weights()), bits(&c.weights()));
}

#[test]
fn fit_seed_alone_changes_the_result() {
    fixed_threads();
    // Same initial weights, different shuffling and dropout streams.
    let run = |fit_seed| {
        let mut model = classifier(5);
        model
            .compile(
                sgd(0.1),
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                vec![],
            )
            .unwrap();
        let opts = FitOptions {
            epochs: 2,
            batch_size: 8,
            seed: fit_seed,
            ..FitOptions::default()
        };
        model.fit(&three_clusters(), None, &opts, &mut []).unwrap();
        bits(&model.weights())
    };
    assert_eq!(run(10), run(10));
    assert_ne!(run(10), run(11));
}

// ---- (c) batch normalization and dropout: training versus inference ----

fn bn_dropout_model() -> Sequential {
    Sequential::builder([4])
        .add(DenseConfig::new(8))
        .add(LayerConfig::BatchNormalization(
            BatchNormalizationConfig::default(),
        ))
        .add(LayerConfig::Dropout(DropoutConfig {
            rate: 0.5,
            name: None,
        }))
        .add(DenseConfig::new(3).activation(Activation::Softmax))
        .build(11)
        .unwrap()
}

fn random_batch(seed: u64, n: usize) -> Tensor {
    Tensor::rand_uniform([n, 4], -1.0, 1.0, &mut Rng::seed(seed))
}

#[test]
fn inference_is_repeatable_and_training_mode_differs() {
    fixed_threads();
    let model = bn_dropout_model();
    let x = random_batch(1, 16);
    let p1 = model.predict(&x, 5).unwrap();
    let p2 = model.predict(&x, 5).unwrap();
    assert_eq!(tensor_bits(&p1), tensor_bits(&p2));
    // The batch size of `predict` does not change inference results.
    let p3 = model.predict(&x, 16).unwrap();
    assert_eq!(tensor_bits(&p1), tensor_bits(&p3));

    let train = |seed| {
        model
            .forward(&x, &mut ForwardCtx::training(Rng::seed(seed)))
            .unwrap()
    };
    let t1 = train(1);
    assert_ne!(tensor_bits(&t1), tensor_bits(&p1));
    // Batch statistics are the same on every training pass; only the dropout mask moves.
    assert_eq!(tensor_bits(&t1), tensor_bits(&train(1)));
    assert_ne!(tensor_bits(&t1), tensor_bits(&train(2)));
    // A training pass leaves the model as it was.
    assert_eq!(
        tensor_bits(&p1),
        tensor_bits(&model.predict(&x, 5).unwrap())
    );
}

#[test]
fn fit_moves_batch_norm_statistics() {
    fixed_threads();
    let mut model = bn_dropout_model();
    let mean0 = param(&model, "batch_normalization/moving_mean");
    let var0 = param(&model, "batch_normalization/moving_variance");
    assert_eq!(mean0, vec![0.0; 8]);
    assert_eq!(var0, vec![1.0; 8]);
    model
        .compile(
            OptimizerKind::adam(),
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            vec![],
        )
        .unwrap();
    let y = Tensor::from_vec((0..32).map(|i| i % 3).collect::<Vec<i64>>(), [32]).unwrap();
    let data = TensorDataset::new(random_batch(2, 32), y).unwrap();
    model
        .fit(&data, None, &FitOptions::default(), &mut [])
        .unwrap();
    assert_ne!(param(&model, "batch_normalization/moving_mean"), mean0);
    assert_ne!(param(&model, "batch_normalization/moving_variance"), var0);
}

#[test]
fn batch_norm_moving_statistics_follow_keras_momentum() {
    fixed_threads();
    // One batch of [[1, 2], [3, 4], [5, 6], [7, 8]]: mean [4, 5], biased variance 5 for both
    // channels. With momentum 0.99: moving_mean = 0.01 * [4, 5] = [0.04, 0.05] and
    // moving_variance = 0.99 * 1 + 0.01 * 5 = 1.04.
    let mut model = Sequential::builder([2])
        .add(LayerConfig::BatchNormalization(
            BatchNormalizationConfig::default(),
        ))
        .build(0)
        .unwrap();
    model
        .compile(sgd(1e-12), Loss::MeanSquaredError, vec![])
        .unwrap();
    let x = f32s(&[1., 2., 3., 4., 5., 6., 7., 8.], &[4, 2]);
    let data = TensorDataset::new(x, Tensor::zeros([4, 2])).unwrap();
    let opts = FitOptions {
        batch_size: 4,
        shuffle: false,
        ..FitOptions::default()
    };
    model.fit(&data, None, &opts, &mut []).unwrap();
    let close = |a: &[f32], e: &[f32]| a.iter().zip(e).all(|(a, e)| (a - e).abs() <= 1e-6);
    let mean = param(&model, "batch_normalization/moving_mean");
    let var = param(&model, "batch_normalization/moving_variance");
    assert!(close(&mean, &[0.04, 0.05]), "moving mean {mean:?}");
    assert!(close(&var, &[1.04, 1.04]), "moving variance {var:?}");

    // Inference normalizes with them: (1 - 0.04) / sqrt(1.04 + 0.001) = 0.940940...
    let out = model
        .predict(&f32s(&[1.0, 2.0], &[1, 2]), 1)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let expected = [0.96 / 1.041f32.sqrt(), 1.95 / 1.041f32.sqrt()];
    assert!(close(&out, &expected), "{out:?} vs {expected:?}");
}

// ---- (d) DAT-02: batching edges and the epoch loss ----

/// Per-sample losses of DAT-02, in order.
const DAT02_LOSSES: [f32; 10] = [1., 1., 1., 1., 2., 2., 2., 2., 1., 3.];

/// `y = x` (a Dense kernel of 1, no bias) under mean absolute error against 0: the loss of
/// each sample is its input. SGD with a learning rate of 1e-12 leaves the kernel at exactly 1
/// in f32, so every batch sees the same model.
fn identity_model() -> Sequential {
    let mut model = Sequential::builder([1])
        .add(DenseConfig {
            use_bias: false,
            ..DenseConfig::new(1)
        })
        .build(0)
        .unwrap();
    model.set_weights(vec![Tensor::ones([1, 1])]).unwrap();
    model
        .compile(sgd(1e-12), Loss::MeanAbsoluteError, vec![])
        .unwrap();
    model
}

fn dat02_data() -> TensorDataset {
    TensorDataset::new(f32s(&DAT02_LOSSES, &[10, 1]), Tensor::zeros([10, 1])).unwrap()
}

/// Records the batch structure of each epoch.
#[derive(Default)]
struct Recorder {
    batches_per_epoch: Vec<usize>,
    progress: Vec<BatchProgress>,
}

impl Callback for Recorder {
    fn on_epoch_begin(&mut self, _epoch: usize, batches: usize) {
        self.batches_per_epoch.push(batches);
    }

    fn on_batch_end(&mut self, progress: &BatchProgress) {
        self.progress.push(*progress);
    }
}

#[test]
fn dat02_batch_indices_keep_the_remainder() {
    let expected: [(usize, &[usize]); 5] = [
        (4, &[4, 4, 2]),
        (2, &[2, 2, 2, 2, 2]),
        (5, &[5, 5]),
        (10, &[10]),
        (32, &[10]),
    ];
    for (batch, sizes) in expected {
        let got: Vec<usize> = batch_indices(10, batch, None)
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(got, sizes, "batch size {batch}");
        // Each sample exactly once per epoch, shuffled or not.
        let mut rng = Rng::seed(batch as u64);
        for order in [
            batch_indices(10, batch, None).unwrap(),
            batch_indices(10, batch, Some(&mut rng)).unwrap(),
        ] {
            let mut seen: Vec<usize> = order.concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
    }
    assert!(matches!(
        batch_indices(10, 0, None),
        Err(NnError::Config(_))
    ));
}

#[test]
fn dat02_epoch_loss_is_the_per_sample_mean() {
    fixed_threads();
    // Steps per epoch from the case: 3, 5, 2, 1, 1.
    let steps = [(4, 3usize), (2, 5), (5, 2), (10, 1), (32, 1)];
    for (batch, expected_steps) in steps {
        let mut model = identity_model();
        let mut rec = Recorder::default();
        let opts = FitOptions {
            batch_size: batch,
            shuffle: false,
            ..FitOptions::default()
        };
        let history = model
            .fit(&dat02_data(), None, &opts, &mut [&mut rec])
            .unwrap();
        assert_eq!(rec.batches_per_epoch, vec![expected_steps], "batch {batch}");
        // 16 / 10 = 1.6 whatever the batch size; the mean of batch means would be 5/3 at 4.
        let loss = history.epochs[0].loss;
        assert!(
            (loss - 1.6).abs() <= 1e-6,
            "batch {batch}: epoch loss {loss}"
        );
    }
}

#[test]
fn dat02_batch_means_with_batch_four() {
    fixed_threads();
    let mut model = identity_model();
    let mut rec = Recorder::default();
    let opts = FitOptions {
        batch_size: 4,
        shuffle: false,
        ..FitOptions::default()
    };
    model
        .fit(&dat02_data(), None, &opts, &mut [&mut rec])
        .unwrap();
    // Running (samples, mean loss) after each batch: (4, 1.0), (8, 1.5), (10, 1.6). The
    // batch means that follow are 1.0, 2.0 and (1 + 3) / 2 = 2.0, not (1 + 3) / 4.
    let samples: Vec<usize> = rec.progress.iter().map(|p| p.samples).collect();
    assert_eq!(samples, vec![4, 8, 10]);
    let mut batch_means = Vec::new();
    let (mut prev_n, mut prev_sum) = (0usize, 0.0f64);
    for p in &rec.progress {
        let sum = p.loss * p.samples as f64;
        batch_means.push((sum - prev_sum) / (p.samples - prev_n) as f64);
        (prev_n, prev_sum) = (p.samples, sum);
    }
    for (got, expected) in batch_means.iter().zip([1.0, 2.0, 2.0]) {
        assert!(
            (got - expected).abs() <= 1e-6,
            "batch means {batch_means:?}"
        );
    }
    // `evaluate` aggregates the same way.
    let eval = model.evaluate(&dat02_data(), 4).unwrap();
    assert!(
        (eval.loss - 1.6).abs() <= 1e-6,
        "evaluate loss {}",
        eval.loss
    );
    assert_eq!(eval.samples, 10);
}

// ---- (e) validation split ----

#[test]
fn validation_split_holds_out_the_last_samples() {
    fixed_threads();
    // 20% of 10: samples 8 and 9 (losses 1 and 3) validate, the first eight train (mean 1.5).
    // 30%: samples 7, 8, 9 (2, 1, 3) validate, the first seven train (10 / 7). Shuffling
    // happens after the split.
    for (split, train_loss, val_loss) in [(0.2f32, 1.5, 2.0), (0.3, 10.0 / 7.0, 2.0)] {
        let mut model = identity_model();
        let opts = FitOptions {
            batch_size: 3,
            validation_split: split,
            ..FitOptions::default()
        };
        let history = model.fit(&dat02_data(), None, &opts, &mut []).unwrap();
        let logs = &history.epochs[0];
        assert!(
            (logs.loss - train_loss).abs() <= 1e-6,
            "split {split}: {logs:?}"
        );
        let val = logs.val_loss.expect("validation loss");
        assert!((val - val_loss).abs() <= 1e-6, "split {split}: {logs:?}");
    }
}

#[test]
fn validation_data_replaces_the_split_and_all_samples_train() {
    fixed_threads();
    let opts = |split: f32| FitOptions {
        batch_size: 3,
        shuffle: false,
        validation_split: split,
        ..FitOptions::default()
    };
    let val = dat02_data();

    let plain = identity_model()
        .fit(&dat02_data(), Some(&val), &opts(0.0), &mut [])
        .unwrap();
    let both = identity_model()
        .fit(&dat02_data(), Some(&val), &opts(0.3), &mut [])
        .unwrap();
    let split_only = identity_model()
        .fit(&dat02_data(), None, &opts(0.3), &mut [])
        .unwrap();

    assert_eq!(both.train_samples, 10);
    assert_eq!(split_only.train_samples, 7);
    assert_eq!(both.epochs[0].loss, plain.epochs[0].loss);
    assert_eq!(both.epochs[0].val_loss, plain.epochs[0].val_loss);
}

#[test]
fn validation_split_outside_the_unit_interval_is_a_config_error() {
    for split in [1.0f32, -0.1, 0.01] {
        let mut model = identity_model();
        let opts = FitOptions {
            validation_split: split,
            ..FitOptions::default()
        };
        let err = model.fit(&dat02_data(), None, &opts, &mut []).unwrap_err();
        assert!(matches!(err, NnError::Config(_)), "split {split}: {err:?}");
    }
}

// ---- (f) callbacks ----

/// `y = w x` with w = 0, trained by SGD (lr 0.1, MSE) on x = 1, y = 1 and validated on
/// x = 1, y = 0. Each epoch is one step w += 0.2 (1 - w): w = 0.2, 0.36, 0.488, ... so the
/// validation loss w^2 = 0.04, 0.1296, 0.238 gets worse every epoch after the first.
fn drifting_model() -> (Sequential, TensorDataset, TensorDataset) {
    let mut model = Sequential::builder([1])
        .add(DenseConfig {
            use_bias: false,
            ..DenseConfig::new(1)
        })
        .build(0)
        .unwrap();
    model.set_weights(vec![Tensor::zeros([1, 1])]).unwrap();
    model
        .compile(sgd(0.1), Loss::MeanSquaredError, vec![])
        .unwrap();
    let train = TensorDataset::new(Tensor::ones([1, 1]), Tensor::ones([1, 1])).unwrap();
    let val = TensorDataset::new(Tensor::ones([1, 1]), Tensor::zeros([1, 1])).unwrap();
    (model, train, val)
}

fn weight(model: &Sequential) -> f32 {
    model.weights()[0].to_vec_f32().unwrap()[0]
}

fn fit_epochs(epochs: usize) -> FitOptions {
    FitOptions {
        epochs,
        batch_size: 1,
        shuffle: false,
        ..FitOptions::default()
    }
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    fixed_threads();
    let (mut model, train, val) = drifting_model();
    let mut stop = EarlyStopping::new("val_loss", 2).restore_best_weights(true);
    let history = model
        .fit(&train, Some(&val), &fit_epochs(10), &mut [&mut stop])
        .unwrap();
    // Best at epoch 1; epochs 2 and 3 do not improve; patience 2 stops after epoch 3.
    assert_eq!(history.epochs.len(), 3);
    assert_eq!(stop.stopped_epoch, Some(3));
    let val_losses: Vec<f64> = history.epochs.iter().map(|e| e.val_loss.unwrap()).collect();
    for (got, expected) in val_losses.iter().zip([0.04, 0.1296, 0.238144]) {
        assert!((got - expected).abs() <= 1e-6, "{val_losses:?}");
    }
    assert!(
        (weight(&model) - 0.2).abs() <= 1e-6,
        "w = {}",
        weight(&model)
    );

    // Without restoring, the weights of the last epoch stay.
    let (mut model, train, val) = drifting_model();
    let mut stop = EarlyStopping::new("val_loss", 2);
    model
        .fit(&train, Some(&val), &fit_epochs(10), &mut [&mut stop])
        .unwrap();
    assert!(
        (weight(&model) - 0.488).abs() <= 1e-6,
        "w = {}",
        weight(&model)
    );
}

/// [`drifting_model`] validated on its training sample instead: the validation loss
/// (1 - w)^2 = 0.64, 0.4096, 0.262 improves every epoch.
fn improving_model() -> (Sequential, TensorDataset, TensorDataset) {
    let (model, train, _) = drifting_model();
    let val = TensorDataset::new(Tensor::ones([1, 1]), Tensor::ones([1, 1])).unwrap();
    (model, train, val)
}

#[test]
fn patience_zero_acts_only_on_an_epoch_that_does_not_improve() {
    fixed_threads();
    let (mut model, train, val) = improving_model();
    let mut stop = EarlyStopping::new("val_loss", 0);
    let mut reduce = ReduceLrOnPlateau::new("val_loss").with(0.5, 0, 0.0);
    let history = model
        .fit(
            &train,
            Some(&val),
            &fit_epochs(4),
            &mut [&mut stop, &mut reduce],
        )
        .unwrap();
    assert_eq!(
        history.epochs.len(),
        4,
        "improving epochs never stop training"
    );
    assert_eq!(stop.stopped_epoch, None);
    let rates: Vec<f32> = history.epochs.iter().map(|e| e.learning_rate).collect();
    assert_eq!(rates, vec![0.1; 4], "improving epochs never lower the rate");

    // On the drifting model the first epoch that does not improve (the second) stops it.
    let (mut model, train, val) = drifting_model();
    let mut stop = EarlyStopping::new("val_loss", 0);
    let history = model
        .fit(&train, Some(&val), &fit_epochs(10), &mut [&mut stop])
        .unwrap();
    assert_eq!(history.epochs.len(), 2);
    assert_eq!(stop.stopped_epoch, Some(2));
}

#[test]
fn reduce_lr_on_plateau_lowers_the_learning_rate() {
    fixed_threads();
    // Patience 1, factor 0.5: after epoch 2 (no improvement) the rate drops to 0.05, so
    // epoch 3 steps w = 0.36 + 0.05 * 2 * (1 - 0.36) = 0.424 instead of 0.488.
    let (mut model, train, val) = drifting_model();
    let mut reduce = ReduceLrOnPlateau::new("val_loss").with(0.5, 1, 0.0);
    let history = model
        .fit(&train, Some(&val), &fit_epochs(3), &mut [&mut reduce])
        .unwrap();
    assert!(
        (weight(&model) - 0.424).abs() <= 1e-6,
        "w = {}",
        weight(&model)
    );
    let rates: Vec<f32> = history.epochs.iter().map(|e| e.learning_rate).collect();
    assert_eq!(rates, vec![0.1, 0.1, 0.05]);

    // A floor of 0.08 stops the drop there: w = 0.36 + 0.08 * 2 * 0.64 = 0.4624.
    let (mut model, train, val) = drifting_model();
    let mut reduce = ReduceLrOnPlateau::new("val_loss").with(0.5, 1, 0.08);
    model
        .fit(&train, Some(&val), &fit_epochs(3), &mut [&mut reduce])
        .unwrap();
    assert!(
        (weight(&model) - 0.4624).abs() <= 1e-6,
        "w = {}",
        weight(&model)
    );
}

fn checkpoint_weight(path: &std::path::Path) -> f32 {
    let loaded = Sequential::load(path).expect("checkpoint loads");
    assert!(loaded.compile_config().is_some());
    weight(&loaded)
}

#[test]
fn model_checkpoint_saves_only_on_improvement_when_best_only() {
    fixed_threads();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("best.efm");

    // Validation gets worse after epoch 1: the file keeps w = 0.2, not 0.488.
    let (mut model, train, val) = drifting_model();
    let mut ckpt = ModelCheckpoint::new(&path, "val_loss", true);
    model
        .fit(&train, Some(&val), &fit_epochs(3), &mut [&mut ckpt])
        .unwrap();
    assert!((checkpoint_weight(&path) - 0.2).abs() <= 1e-6);
    let out = Sequential::load(&path)
        .unwrap()
        .predict(&Tensor::ones([1, 1]), 1)
        .unwrap();
    assert!((out.to_vec_f32().unwrap()[0] - 0.2).abs() <= 1e-6);

    // Saving every epoch leaves the last weights.
    let (mut model, train, val) = drifting_model();
    let mut ckpt = ModelCheckpoint::new(&path, "val_loss", false);
    model
        .fit(&train, Some(&val), &fit_epochs(3), &mut [&mut ckpt])
        .unwrap();
    assert!((checkpoint_weight(&path) - 0.488).abs() <= 1e-6);

    // When validation keeps improving (validated on y = 1), the best is the last epoch.
    let (mut model, train, _) = drifting_model();
    let improving = TensorDataset::new(Tensor::ones([1, 1]), Tensor::ones([1, 1])).unwrap();
    let best = dir.path().join("improving.efm");
    let mut ckpt = ModelCheckpoint::new(&best, "val_loss", true);
    model
        .fit(&train, Some(&improving), &fit_epochs(3), &mut [&mut ckpt])
        .unwrap();
    assert!((checkpoint_weight(&best) - 0.488).abs() <= 1e-6);
}

#[test]
fn checkpoint_written_during_fit_keeps_the_compile_settings() {
    // Regression: `fit` used to take the compile settings out of the model while training,
    // so a checkpoint saved from a callback loaded as an uncompiled model.
    fixed_threads();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.efm");
    let (mut model, train, val) = drifting_model();
    let mut ckpt = ModelCheckpoint::new(&path, "val_loss", false);
    model
        .fit(&train, Some(&val), &fit_epochs(1), &mut [&mut ckpt])
        .unwrap();
    let loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.compile_config(), model.compile_config());
    assert!(model.compile_config().is_some());
}

#[test]
fn checkpoint_that_cannot_be_written_stops_fit_with_the_path() {
    fixed_threads();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("model.efm");
    let (mut model, train, val) = drifting_model();
    let mut ckpt = ModelCheckpoint::new(&path, "val_loss", false);
    let err = model
        .fit(&train, Some(&val), &fit_epochs(3), &mut [&mut ckpt])
        .unwrap_err();
    assert!(err.to_string().contains("model.efm"), "{err}");
}

// ---- (g) errors of bad calls ----

#[test]
fn fit_and_evaluate_before_compile_are_not_compiled_errors() {
    let mut model = Sequential::builder([1])
        .add(DenseConfig::new(1))
        .build(0)
        .unwrap();
    let err = model
        .fit(&dat02_data(), None, &FitOptions::default(), &mut [])
        .unwrap_err();
    assert!(matches!(err, NnError::NotCompiled("fit")), "{err:?}");
    let err = model.evaluate(&dat02_data(), 4).unwrap_err();
    assert!(matches!(err, NnError::NotCompiled(_)), "{err:?}");
}

#[test]
fn empty_dataset_and_zero_batch_size_are_config_errors() {
    let mut model = identity_model();
    let empty = TensorDataset::new(Tensor::zeros([0, 1]), Tensor::zeros([0, 1])).unwrap();
    let err = model
        .fit(&empty, None, &FitOptions::default(), &mut [])
        .unwrap_err();
    assert!(matches!(err, NnError::Config(_)), "{err:?}");

    let zero = FitOptions {
        batch_size: 0,
        ..FitOptions::default()
    };
    let err = model.fit(&dat02_data(), None, &zero, &mut []).unwrap_err();
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
    let err = model.evaluate(&dat02_data(), 0).unwrap_err();
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
    let err = model.predict(&Tensor::zeros([3, 1]), 0).unwrap_err();
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
}

#[test]
fn mismatched_inputs_and_targets_are_input_errors() {
    let err = TensorDataset::new(Tensor::zeros([3, 1]), Tensor::zeros([2, 1])).unwrap_err();
    assert!(matches!(err, NnError::Input(_)), "{err:?}");
}

#[test]
fn predict_with_a_wrong_shape_names_both_shapes() {
    let model = Sequential::builder([4])
        .add(DenseConfig::new(2))
        .build(0)
        .unwrap();
    for dims in [vec![3, 5], vec![3, 4, 1], vec![4], vec![0, 5]] {
        let x = Tensor::zeros(dims.clone());
        let err = match model.predict(&x, 2) {
            Ok(out) => panic!("input {dims:?} gave an output of {:?}", out.dims()),
            Err(e) => e,
        };
        assert!(matches!(err, NnError::Input(_)), "{dims:?}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("[batch, 4]"), "{dims:?}: {msg}");
        assert!(msg.contains(&format!("{dims:?}")), "{dims:?}: {msg}");
    }
    // An empty batch of the right shape is fine.
    let out = model.predict(&Tensor::zeros([0, 4]), 2).unwrap();
    assert_eq!(out.dims(), &[0, 2]);
}

#[test]
fn a_nan_loss_is_a_diverged_error_with_its_position() {
    fixed_threads();
    let mut model = identity_model();
    // Mean squared error: MAE would hide the NaN (see losses.rs, mae_of_a_nan_prediction_is_nan).
    model
        .compile(sgd(1e-12), Loss::MeanSquaredError, vec![])
        .unwrap();
    let x = f32s(&[1.0, 2.0, f32::NAN, 4.0], &[4, 1]);
    let data = TensorDataset::new(x, Tensor::zeros([4, 1])).unwrap();
    let opts = FitOptions {
        batch_size: 2,
        shuffle: false,
        ..FitOptions::default()
    };
    let err = model.fit(&data, None, &opts, &mut []).unwrap_err();
    assert!(
        matches!(err, NnError::Diverged { epoch: 1, batch: 1, value } if value.is_nan()),
        "{err:?}"
    );
}
