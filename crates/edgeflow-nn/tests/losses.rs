//! Losses and metrics against hand-computed values and the shared cases NUM-02 (large logits)
//! and DAT-01 (label range).
//!
//! Expected values are worked out in the comments from the textbook formulas (computed in f64
//! here), never taken from the code under test.

use edgeflow_nn::{
    Activation, ConfusionMatrix, DenseConfig, FitOptions, ForwardCtx, Loss, Metric, NnError,
    OptimizerKind, Sequential, TensorDataset,
};
use edgeflow_tensor::Tensor;

/// Tolerance of an f32 loss against its f64 formula: `abs + rel * |expected|`.
#[derive(Clone, Copy)]
struct Tol {
    abs: f64,
    rel: f64,
}

/// The shared cases' loss tolerance (NUM-02: 1e-4 absolute).
const CASE_NUM02: Tol = Tol {
    abs: 1e-4,
    rel: 0.0,
};
/// DAT-01's loss tolerance: 1e-6 absolute.
const CASE_DAT01: Tol = Tol {
    abs: 1e-6,
    rel: 0.0,
};
/// An f32 loss of a few operations against f64.
const F32_LOSS: Tol = Tol {
    abs: 1e-6,
    rel: 1e-6,
};

fn assert_close(actual: f32, expected: f64, tol: Tol, what: &str) {
    let bound = tol.abs + tol.rel * expected.abs();
    assert!(
        actual.is_finite() && (actual as f64 - expected).abs() <= bound,
        "{what}: got {actual}, expected {expected} (bound {bound:e})"
    );
}

fn f32s(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec()).unwrap()
}

fn labels(values: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec()).unwrap()
}

fn per_sample(loss: Loss, pred: &Tensor, target: &Tensor) -> Vec<f32> {
    loss.per_sample(pred, target).unwrap().to_vec_f32().unwrap()
}

const SCCE_LOGITS: Loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
const SCCE_PROBS: Loss = Loss::SparseCategoricalCrossentropy { from_logits: false };

// ---- NUM-02: sparse cross-entropy with large logits ----

fn num02_batch1() -> (Tensor, Tensor) {
    (
        f32s(&[300.0, 100.0, 100.0, -100.0, 200.0, 500.0], &[2, 3]),
        labels(&[0, 1], &[2]),
    )
}

fn num02_batch2() -> (Tensor, Tensor) {
    (f32s(&[14.4, 50.1, 3.5], &[1, 3]), labels(&[0], &[1]))
}

/// Expected per-sample losses of NUM-02: `logsumexp(z) - z[label]`.
/// Batch 1: row 0 is 300 - 300 = 0 (the others are e^-200 away), row 1 is 500 - 200 = 300.
/// Batch 2: 50.1 - 14.4 + log(1 + e^-35.7 + e^-46.6) = 35.7.
const NUM02_BATCH1: [f64; 2] = [0.0, 300.0];
const NUM02_BATCH2: f64 = 35.7;

#[test]
fn num02_from_logits_is_exact_for_large_logits() {
    let (x, y) = num02_batch1();
    let l = per_sample(SCCE_LOGITS, &x, &y);
    assert_close(l[0], NUM02_BATCH1[0], CASE_NUM02, "NUM-02 batch 1 sample 0");
    assert_close(l[1], NUM02_BATCH1[1], CASE_NUM02, "NUM-02 batch 1 sample 1");
    let mean = SCCE_LOGITS
        .per_sample(&x, &y)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar()
        .unwrap();
    assert_close(mean, 150.0, CASE_NUM02, "NUM-02 batch 1 mean");

    let (x, y) = num02_batch2();
    let l = per_sample(SCCE_LOGITS, &x, &y);
    assert_close(l[0], NUM02_BATCH2, CASE_NUM02, "NUM-02 batch 2");
}

/// Dense with an identity kernel, zero bias and softmax: its output is the softmax of the
/// input, so cross-entropy on it must equal cross-entropy from the input as logits.
fn identity_softmax_model() -> Sequential {
    let mut model = Sequential::builder([3])
        .add(DenseConfig::new(3).activation(Activation::Softmax))
        .build(0)
        .unwrap();
    let eye = f32s(&[1., 0., 0., 0., 1., 0., 0., 0., 1.], &[3, 3]);
    model.set_weights(vec![eye, Tensor::zeros([3])]).unwrap();
    model
}

#[test]
fn num02_model_path_with_softmax_layer_is_not_clipped() {
    let model = identity_softmax_model();
    for ((x, y), expected) in [
        (num02_batch1(), NUM02_BATCH1.to_vec()),
        (num02_batch2(), vec![NUM02_BATCH2]),
    ] {
        let probs = model.forward(&x, &mut ForwardCtx::inference()).unwrap();
        let l = per_sample(SCCE_PROBS, &probs, &y);
        for (i, (&got, &e)) in l.iter().zip(&expected).enumerate() {
            // Clipped probabilities would give 16.118 (= -ln 1e-7) instead of 300 or 35.7.
            assert_close(got, e, CASE_NUM02, &format!("model path sample {i}"));
        }
    }
}

#[test]
fn num02_evaluate_and_fit_report_the_unclipped_mean() {
    let mut model = identity_softmax_model();
    // A learning rate this small leaves the weights as they are in f32, so the loss logged
    // by `fit` is that of the identity model.
    let sgd = OptimizerKind::Sgd {
        learning_rate: 1e-12,
        momentum: 0.0,
        nesterov: false,
    };
    model
        .compile(sgd, SCCE_PROBS, vec![Metric::Accuracy])
        .unwrap();
    let (x, y) = num02_batch1();
    let data = TensorDataset::new(x, y).unwrap();
    let eval = model.evaluate(&data, 32).unwrap();
    assert!(
        (eval.loss - 150.0).abs() <= 1e-4,
        "evaluate loss {}",
        eval.loss
    );
    // Row 0 predicts class 0 (label 0), row 1 predicts class 2 (label 1).
    assert_eq!(eval.metric("accuracy"), Some(0.5));

    let opts = FitOptions {
        epochs: 1,
        shuffle: false,
        ..FitOptions::default()
    };
    let history = model.fit(&data, None, &opts, &mut []).unwrap();
    assert!((history.epochs[0].loss - 150.0).abs() <= 1e-4);
    for w in model.weights() {
        assert!(w.to_vec_f32().unwrap().iter().all(|v| v.is_finite()));
    }
}

// ---- DAT-01: label range ----

#[test]
fn dat01_good_label() {
    // -log softmax([0, 1])[1] = log(1 + e^-1) = 0.313261687518...
    let x = f32s(&[0.0, 1.0], &[1, 2]);
    let l = per_sample(SCCE_LOGITS, &x, &labels(&[1], &[1]));
    assert_close(
        l[0],
        (1.0 + (-1.0f64).exp()).ln(),
        CASE_DAT01,
        "DAT-01 good",
    );
    assert_close(l[0], 0.313261688, CASE_DAT01, "DAT-01 case value");
}

#[test]
fn dat01_bad_labels_are_errors_naming_label_and_class_count() {
    let logits = f32s(&[0.0, 1.0], &[1, 2]);
    let probs = logits.softmax(-1).unwrap();
    let plain_probs = f32s(&[0.25, 0.75], &[1, 2]);
    for bad in [2i64, 100, -1] {
        // The case stores each bad label as [[label]]: a [batch, 1] label tensor.
        let y = labels(&[bad], &[1, 1]);
        for (loss, pred, path) in [
            (SCCE_LOGITS, &logits, "from logits"),
            (SCCE_PROBS, &probs, "softmax output"),
            (SCCE_PROBS, &plain_probs, "plain probabilities"),
        ] {
            let err = match loss.per_sample(pred, &y) {
                Ok(t) => panic!("label {bad} ({path}) gave {:?}", t.to_vec_f32()),
                Err(e) => e,
            };
            assert!(matches!(err, NnError::Input(_)), "{path}: {err:?}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("index {bad} ")) || msg.contains(&format!("label {bad}")),
                "{path}: message does not name label {bad}: {msg}"
            );
            assert!(
                msg.contains("0..2"),
                "{path}: message does not name 2 classes: {msg}"
            );
        }
    }
}

#[test]
fn labels_must_be_integers_and_one_per_sample() {
    let x = f32s(&[0.0, 1.0, 2.0, 3.0], &[2, 2]);
    let float_labels = f32s(&[1.0, 0.0], &[2]);
    assert!(matches!(
        SCCE_LOGITS.per_sample(&x, &float_labels),
        Err(NnError::Input(_))
    ));
    let three = labels(&[1, 0, 1], &[3]);
    assert!(matches!(
        SCCE_LOGITS.per_sample(&x, &three),
        Err(NnError::Input(_))
    ));
}

// ---- Categorical and binary cross-entropy, MSE, MAE ----

fn log_sum_exp(z: &[f64]) -> f64 {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

#[test]
fn categorical_crossentropy_from_logits() {
    let loss = Loss::CategoricalCrossentropy { from_logits: true };
    let x = f32s(&[1.0, 2.0, 3.0, 100.0, -100.0, 0.0], &[2, 3]);
    let t = f32s(&[0.0, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]);
    let l = per_sample(loss, &x, &t);
    // Row 0: log(e + e^2 + e^3) - 3 = 0.407605964...
    assert_close(
        l[0],
        log_sum_exp(&[1.0, 2.0, 3.0]) - 3.0,
        F32_LOSS,
        "cce row 0",
    );
    // Row 1: logsumexp(100, -100, 0) + 100 = 200 (+ e^-100): finite, not clipped.
    assert_close(l[1], 200.0, F32_LOSS, "cce extreme row");
}

#[test]
fn categorical_crossentropy_from_probabilities() {
    let loss = Loss::CategoricalCrossentropy { from_logits: false };
    let p = f32s(&[0.2, 0.3, 0.5, 0.25, 0.25, 0.5], &[2, 3]);
    // Row 0 one-hot on class 1: -ln 0.3. Row 1 soft target [0.5, 0.5, 0]: -ln 0.25 = ln 4.
    let t = f32s(&[0.0, 1.0, 0.0, 0.5, 0.5, 0.0], &[2, 3]);
    let l = per_sample(loss, &p, &t);
    assert_close(l[0], -(0.3f64.ln()), F32_LOSS, "cce probs row 0");
    assert_close(l[1], 4.0f64.ln(), F32_LOSS, "cce probs soft row");
    // A zero probability of the true class is clipped to 1e-7: -ln(1e-7) = 16.118...
    let p0 = f32s(&[1.0, 0.0], &[1, 2]);
    let l = per_sample(loss, &p0, &f32s(&[0.0, 1.0], &[1, 2]));
    assert_close(
        l[0],
        -(1e-7f64.ln()),
        Tol {
            abs: 1e-4,
            rel: 0.0,
        },
        "clipped",
    );
}

#[test]
fn categorical_crossentropy_on_a_softmax_output_uses_its_logits() {
    let loss = Loss::CategoricalCrossentropy { from_logits: false };
    let probs = f32s(&[100.0, -100.0, 0.0], &[1, 3]).softmax(-1).unwrap();
    let l = per_sample(loss, &probs, &f32s(&[0.0, 1.0, 0.0], &[1, 3]));
    assert_close(l[0], 200.0, F32_LOSS, "softmax output, extreme");
}

/// Binary cross-entropy of one logit: `max(z, 0) - z t + log(1 + e^-|z|)`.
fn bce_logit(z: f64, t: f64) -> f64 {
    z.max(0.0) - z * t + (1.0 + (-z.abs()).exp()).ln()
}

#[test]
fn binary_crossentropy_from_logits_including_extremes() {
    let loss = Loss::BinaryCrossentropy { from_logits: true };
    // Row 0 averages two outputs; rows 1-3 are the extremes.
    let z = f32s(
        &[0.0, 2.0, 100.0, 100.0, -100.0, -100.0, 100.0, -100.0],
        &[4, 2],
    );
    let t = f32s(&[1.0, 0.25, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[4, 2]);
    let l = per_sample(loss, &z, &t);
    // (ln 2 + 1.626928...) / 2
    let row0 = (bce_logit(0.0, 1.0) + bce_logit(2.0, 0.25)) / 2.0;
    assert_close(l[0], row0, F32_LOSS, "bce row 0");
    // A logit of 100 against target 0 costs 100; against target 1 costs ~0.
    assert_close(l[1], 50.0, F32_LOSS, "bce +100");
    assert_close(l[2], 50.0, F32_LOSS, "bce -100");
    assert_close(l[3], 0.0, F32_LOSS, "bce confident and right");
}

#[test]
fn binary_crossentropy_from_probabilities_including_extremes() {
    let loss = Loss::BinaryCrossentropy { from_logits: false };
    let p = f32s(&[0.8, 0.8], &[2, 1]);
    let t = f32s(&[1.0, 0.0], &[2, 1]);
    let l = per_sample(loss, &p, &t);
    assert_close(l[0], -(0.8f64.ln()), F32_LOSS, "bce p=0.8 t=1");
    assert_close(l[1], -(0.2f64.ln()), F32_LOSS, "bce p=0.8 t=0");

    // Sigmoid of +-100 is exactly 1 or 0 in f32; the clip keeps the loss finite, near
    // -ln(1e-7) = 16.1 (the f32 value of 1 - 1e-7 is 1 - 1.19e-7, so 15.94).
    let extreme = f32s(&[100.0, -100.0], &[2, 1]).sigmoid().unwrap();
    let l = per_sample(loss, &extreme, &f32s(&[0.0, 1.0], &[2, 1]));
    for v in l {
        assert!(
            v.is_finite() && (15.9..16.2).contains(&v),
            "clipped bce {v}"
        );
    }
}

#[test]
fn mean_squared_and_absolute_error() {
    let p = f32s(&[1.0, 2.0, 3.0, 1.5, -2.0, 0.0], &[2, 3]);
    let t = f32s(&[0.0, 0.0, 0.0, 0.5, 1.0, 0.0], &[2, 3]);
    // MSE: (1 + 4 + 9) / 3 and (1 + 9 + 0) / 3. MAE: (1 + 2 + 3) / 3 and (1 + 3 + 0) / 3.
    let mse = per_sample(Loss::MeanSquaredError, &p, &t);
    assert_close(mse[0], 14.0 / 3.0, F32_LOSS, "mse row 0");
    assert_close(mse[1], 10.0 / 3.0, F32_LOSS, "mse row 1");
    let mae = per_sample(Loss::MeanAbsoluteError, &p, &t);
    assert_close(mae[0], 2.0, F32_LOSS, "mae row 0");
    assert_close(mae[1], 4.0 / 3.0, F32_LOSS, "mae row 1");

    let wrong = f32s(&[0.0, 0.0], &[1, 2]);
    assert!(Loss::MeanSquaredError.per_sample(&p, &wrong).is_err());
}

#[test]
fn mse_of_a_nan_prediction_is_nan() {
    let p = f32s(&[f32::NAN, 1.0], &[1, 2]);
    let t = f32s(&[0.0, 1.0], &[1, 2]);
    assert!(per_sample(Loss::MeanSquaredError, &p, &t)[0].is_nan());
}

/// A NaN prediction must give a NaN loss, so that `fit` reports divergence. MAE is built on
/// `relu(d) + relu(-d)`; `relu` once mapped NaN to 0 (TensorFlow and PyTorch keep NaN), which
/// made the loss finite and let training go on.
#[test]
fn mae_of_a_nan_prediction_is_nan() {
    let p = f32s(&[f32::NAN, 1.0], &[1, 2]);
    let t = f32s(&[0.0, 1.0], &[1, 2]);
    let l = per_sample(Loss::MeanAbsoluteError, &p, &t);
    assert!(l[0].is_nan(), "MAE of a NaN prediction is {}", l[0]);
}

#[test]
fn loss_names_parse_as_keras_spells_them() {
    assert_eq!(
        Loss::from_name("sparse_categorical_crossentropy", true).unwrap(),
        SCCE_LOGITS
    );
    assert_eq!(
        Loss::from_name("mse", false).unwrap(),
        Loss::MeanSquaredError
    );
    assert_eq!(
        Loss::from_name("mae", false).unwrap(),
        Loss::MeanAbsoluteError
    );
    assert!(matches!(
        Loss::from_name("hinge", false),
        Err(NnError::Config(_))
    ));
}

// ---- Metrics ----

#[test]
fn sparse_accuracy_counts_argmax_hits() {
    let p = f32s(&[0.1, 0.9, 0.8, 0.2, 0.3, 0.7], &[3, 2]);
    let y = labels(&[1, 1, 1], &[3]);
    let hits = Metric::Accuracy.correct(&SCCE_PROBS, &p, &y).unwrap();
    assert_eq!(hits, 2.0);
}

#[test]
fn categorical_accuracy_compares_argmaxes() {
    let loss = Loss::CategoricalCrossentropy { from_logits: false };
    let p = f32s(&[0.1, 0.7, 0.2, 0.5, 0.3, 0.2, 0.1, 0.1, 0.8], &[3, 3]);
    let t = f32s(&[0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[3, 3]);
    assert_eq!(Metric::Accuracy.correct(&loss, &p, &t).unwrap(), 2.0);
}

#[test]
fn binary_accuracy_thresholds_probabilities_at_half_and_logits_at_zero() {
    let probs = Loss::BinaryCrossentropy { from_logits: false };
    let p = f32s(&[0.6, 0.4, 0.9, 0.2], &[4, 1]);
    let t = f32s(&[1.0, 1.0, 0.0, 0.0], &[4, 1]);
    assert_eq!(Metric::Accuracy.correct(&probs, &p, &t).unwrap(), 2.0);

    let logits = Loss::BinaryCrossentropy { from_logits: true };
    let z = f32s(&[0.3, -0.3, 2.0, -5.0], &[4, 1]);
    assert_eq!(Metric::Accuracy.correct(&logits, &z, &t).unwrap(), 2.0);

    // With two outputs per sample each output counts for half a sample.
    let p2 = f32s(&[0.6, 0.4], &[1, 2]);
    let t2 = f32s(&[1.0, 1.0], &[1, 2]);
    assert_eq!(Metric::Accuracy.correct(&probs, &p2, &t2).unwrap(), 0.5);
}

#[test]
fn sparse_top_k_accuracy() {
    let p = f32s(&[0.1, 0.2, 0.3, 0.4, 0.4, 0.3, 0.2, 0.1], &[2, 4]);
    let y = labels(&[1, 3], &[2]);
    // Row 0 ranks 3, 2, 1, 0; row 1 ranks 0, 1, 2, 3. Label 1 of row 0 is third, label 3 of
    // row 1 is fourth.
    let hits = |k| {
        Metric::SparseTopKAccuracy { k }
            .correct(&SCCE_PROBS, &p, &y)
            .unwrap()
    };
    assert_eq!(hits(1), 0.0);
    assert_eq!(hits(2), 0.0);
    assert_eq!(hits(3), 1.0);
    assert_eq!(hits(4), 2.0);
    assert_eq!(
        Metric::from_name("sparse_top_3_accuracy").unwrap(),
        Metric::SparseTopKAccuracy { k: 3 }
    );
    assert_eq!(
        Metric::from_name("sparse_top_k_accuracy").unwrap(),
        Metric::SparseTopKAccuracy { k: 5 }
    );
    assert!(Metric::from_name("sparse_top_0_accuracy").is_err());
}

#[test]
fn metric_label_out_of_range_is_an_error() {
    let p = f32s(&[0.1, 0.9], &[1, 2]);
    let err = Metric::Accuracy
        .correct(&SCCE_PROBS, &p, &labels(&[5], &[1]))
        .unwrap_err();
    assert!(err.to_string().contains('5'), "{err}");
}

#[test]
fn accuracy_of_a_regression_loss_is_refused_at_compile() {
    let mut model = Sequential::builder([2])
        .add(DenseConfig::new(1))
        .build(0)
        .unwrap();
    let err = model
        .compile(
            OptimizerKind::adam(),
            Loss::MeanSquaredError,
            vec![Metric::Accuracy],
        )
        .unwrap_err();
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
}

#[test]
fn confusion_matrix_and_per_class_accuracy() {
    let mut cm = ConfusionMatrix::new(3);
    // (truth, predicted): class 0 twice right once wrong, class 1 once wrong, class 2 none.
    for (t, p) in [(0, 0), (0, 0), (0, 2), (1, 0)] {
        cm.add(t, p);
    }
    cm.add(7, 0); // outside the range: ignored
    assert_eq!(cm.get(0, 0), 2);
    assert_eq!(cm.get(0, 2), 1);
    assert_eq!(cm.get(1, 0), 1);
    assert_eq!(cm.counts.iter().sum::<u64>(), 4);
    assert_eq!(
        cm.per_class_accuracy(),
        vec![Some(2.0 / 3.0), Some(0.0), None]
    );
}

#[test]
fn evaluate_fills_the_confusion_matrix() {
    let mut model = identity_softmax_model();
    model
        .compile(OptimizerKind::adam(), SCCE_PROBS, vec![Metric::Accuracy])
        .unwrap();
    // Argmax of each row: 0, 1, 2, 2; labels 0, 1, 1, 2.
    let x = f32s(&[5., 0., 0., 0., 5., 0., 0., 0., 5., 1., 2., 3.], &[4, 3]);
    let y = labels(&[0, 1, 1, 2], &[4]);
    let eval = model
        .evaluate(&TensorDataset::new(x, y).unwrap(), 3)
        .unwrap();
    let cm = eval
        .confusion
        .as_ref()
        .expect("sparse labels give a confusion matrix");
    assert_eq!(cm.counts, vec![1, 0, 0, 0, 1, 1, 0, 0, 1]);
    assert_eq!(
        cm.per_class_accuracy(),
        vec![Some(1.0), Some(0.5), Some(1.0)]
    );
    assert_eq!(eval.metric("accuracy"), Some(0.75));
    assert_eq!(eval.samples, 4);
}
