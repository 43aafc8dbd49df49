//! Sequence data through the binary: `ucr_ts` classification of variable-length series,
//! `ucr_ts` regression (forecasting the last step), and `text_folder` classification with its
//! vocabulary file, each trained, evaluated and used for prediction; plus the errors of these
//! formats. Every dataset is a few series or texts written to a temp dir.

use crate::common::{assert_keys, json, Fixture, EXIT_INPUT, EXIT_RUN};

/// Train and evaluate compute the same test loss; they may batch differently.
const LOSS_TOLERANCE: f64 = 1e-5;

/// The classes of the tiny `.ts` files, in header order.
const SERIES_CLASSES: [&str; 2] = ["up", "down"];

/// A `.ts` file of `n` two-channel series of 3 to 6 steps: class `up` rises, `down` falls.
fn classification_ts(n: usize, seed: usize) -> String {
    let mut text = String::from(
        "# tiny test problem\n@problemName Tiny\n@timeStamps false\n@missing true\n\
         @univariate false\n@dimensions 2\n@equalLength false\n@classLabel true up down\n@data\n",
    );
    for i in 0..n {
        let len = 3 + (i + seed) % 4;
        let class = i % 2;
        let sign = if class == 0 { 1.0 } else { -1.0 };
        let channel = |offset: f32| -> Vec<String> {
            (0..len)
                .map(|t| {
                    format!(
                        "{:.3}",
                        offset + sign * t as f32 * 0.5 + (i % 3) as f32 * 0.1
                    )
                })
                .collect()
        };
        let mut second = channel(2.0);
        if i == 1 {
            // One missing value, which becomes the training mean.
            second[0] = "?".into();
        }
        text.push_str(&format!(
            "{}:{}:{}\n",
            channel(0.0).join(","),
            second.join(","),
            SERIES_CLASSES[class]
        ));
    }
    text
}

/// The config for the classification files: Masking -> GRU(4) -> Dense(2, softmax).
const SERIES_CONFIG: &str = r#"[data]
format = "ucr_ts"
train = "ts/Tiny_TRAIN.ts"
test = "ts/Tiny_TEST.ts"

[model]
input_shape = [6, 2]

[[model.layers]]
type = "Masking"

[[model.layers]]
type = "GRU"
units = 4

[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"

[compile]
optimizer = { type = "adam", learning_rate = 0.01 }
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 3
batch_size = 4
"#;

fn series_fixture() -> Fixture {
    let fx = Fixture::empty();
    fx.write("ts/Tiny_TRAIN.ts", &classification_ts(12, 0));
    fx.write("ts/Tiny_TEST.ts", &classification_ts(6, 1));
    fx.write("config.toml", SERIES_CONFIG);
    fx
}

/// Trains `config.toml` quietly on one thread with a metrics file; returns the metrics.
fn train(fx: &Fixture) -> serde_json::Value {
    fx.run(&[
        "train",
        "config.toml",
        "-q",
        "--threads",
        "1",
        "--out",
        "model.efm",
        "--metrics-json",
        "metrics.json",
    ])
    .success();
    json(&std::fs::read_to_string(fx.path("metrics.json")).expect("metrics"))
}

#[track_caller]
fn assert_same_loss(evaluated: &serde_json::Value, metrics: &serde_json::Value) {
    let a = evaluated["loss"].as_f64().expect("loss");
    let b = metrics["test"]["loss"].as_f64().expect("train's test loss");
    assert!(
        (a - b).abs() <= LOSS_TOLERANCE * b.abs().max(1.0),
        "evaluate loss {a} vs train's test loss {b}"
    );
}

#[test]
fn ucr_series_of_varying_length_train_evaluate_and_predict() {
    let fx = series_fixture();

    let metrics = train(&fx);
    let evaluated = fx.run(&[
        "evaluate",
        "model.efm",
        "--data",
        "ts/Tiny_TEST.ts",
        "--json",
    ]);
    let predicted = fx.run(&["predict", "model.efm", "ts/Tiny_TEST.ts", "--top", "1"]);

    assert_eq!(metrics["train_samples"].as_u64(), Some(12));
    assert_eq!(metrics["test"]["samples"].as_u64(), Some(6));
    let doc = json(evaluated.success().stdout.trim());
    assert_keys(&doc, &["loss", "accuracy", "samples", "f1"]);
    assert_eq!(doc["samples"].as_u64(), Some(6));
    assert_same_loss(&doc, &metrics);
    let out = predicted.success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "one answer per series: {out}");
    for (i, line) in lines.iter().enumerate() {
        let prefix = format!("ts/Tiny_TEST.ts#{}: ", i + 1);
        assert!(line.starts_with(&prefix), "{line}");
        let class = line[prefix.len()..].split(' ').next().expect("class");
        assert!(SERIES_CLASSES.contains(&class), "{line}");
    }
    let text = fx
        .run(&["evaluate", "model.efm", "--data", "ts/Tiny_TEST.ts"])
        .success()
        .stdout;
    for needle in ["samples:  6", "accuracy:", "precision", "confusion matrix"] {
        assert!(text.contains(needle), "{needle:?} missing: {text}");
    }
}

#[test]
fn ucr_path_and_problem_name_the_two_files() {
    let fx = series_fixture();
    fx.write(
        "config.toml",
        &SERIES_CONFIG.replace(
            "train = \"ts/Tiny_TRAIN.ts\"\ntest = \"ts/Tiny_TEST.ts\"",
            "path = \".\"\nproblem = \"ts\"\nstandardize = false",
        ),
    );
    std::fs::rename(fx.path("ts/Tiny_TRAIN.ts"), fx.path("ts/ts_TRAIN.ts")).expect("mv");
    std::fs::rename(fx.path("ts/Tiny_TEST.ts"), fx.path("ts/ts_TEST.ts")).expect("mv");

    let metrics = train(&fx);

    assert_eq!(metrics["test"]["samples"].as_u64(), Some(6));
}

#[test]
fn predict_json_numbers_the_series() {
    let fx = series_fixture();
    train(&fx);

    let run = fx.run(&["predict", "model.efm", "ts/Tiny_TEST.ts", "--json"]);

    let out = run.success().stdout;
    let docs: Vec<_> = out.lines().map(json).collect();
    assert_eq!(docs.len(), 6);
    for (i, doc) in docs.iter().enumerate() {
        assert_eq!(doc["file"].as_str(), Some("ts/Tiny_TEST.ts"), "{doc}");
        assert_eq!(doc["series"].as_u64(), Some(i as u64 + 1), "{doc}");
        assert_eq!(doc["top"].as_array().expect("top").len(), 2, "{doc}");
    }
}

/// Day-like univariate series of 6 steps; the forecast target is the last one.
fn forecast_ts(n: usize, seed: usize) -> (String, Vec<[f32; 6]>) {
    let mut text = String::from(
        "@problemName Days\n@univariate true\n@equalLength true\n@seriesLength 6\n\
         @classLabel true 1 2\n@data\n",
    );
    let mut series = Vec::new();
    for i in 0..n {
        let base = ((i * 7 + seed) % 5) as f32;
        let s = [0.0f32, 1.0, 2.0, 3.0, 2.5, 1.5].map(|v| 10.0 + v * (1.0 + base * 0.2));
        let values: Vec<String> = s.iter().map(|v| format!("{v:.3}")).collect();
        text.push_str(&format!("{}:{}\n", values.join(","), 1 + i % 2));
        series.push(s.map(|v| (v * 1000.0).round() / 1000.0));
    }
    (text, series)
}

const FORECAST_CONFIG: &str = r#"[data]
format = "ucr_ts"
train = "days_TRAIN.ts"
test = "days_TEST.ts"
task = "regression"
target_steps = 1

[model]
input_shape = [5, 1]

[[model.layers]]
type = "LSTM"
units = 4

[[model.layers]]
type = "Dense"
units = 1

[compile]
optimizer = "adam"
loss = "mean_squared_error"

[fit]
epochs = 2
batch_size = 4
"#;

#[test]
fn regression_reports_mse_mae_and_the_naive_forecast_in_file_units() {
    let fx = Fixture::empty();
    fx.write("days_TRAIN.ts", &forecast_ts(10, 0).0);
    let (test_text, test_series) = forecast_ts(5, 3);
    fx.write("days_TEST.ts", &test_text);
    fx.write("config.toml", FORECAST_CONFIG);

    let metrics = train(&fx);
    let evaluated = fx.run(&["evaluate", "model.efm", "--data", "days_TEST.ts", "--json"]);
    let predicted = fx.run(&["predict", "model.efm", "days_TEST.ts"]);

    let doc = json(evaluated.success().stdout.trim());
    assert_keys(
        &doc,
        &["loss", "mse", "mae", "naive_mae", "naive_mse", "samples"],
    );
    assert_same_loss(&doc, &metrics);
    assert_eq!(metrics["test"]["mae"], doc["mae"]);
    // The naive forecast repeats step 5; its error in the file's units, computed here.
    let naive: f64 = test_series
        .iter()
        .map(|s| f64::from((s[5] - s[4]).abs()))
        .sum::<f64>()
        / test_series.len() as f64;
    let got = doc["naive_mae"].as_f64().expect("naive_mae");
    assert!(
        (got - naive).abs() < 1e-4,
        "naive MAE {got}, expected {naive}"
    );
    let out = predicted.success().stdout;
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(
        out.lines()
            .all(|l| l.contains("forecast") && l.contains("actual")),
        "{out}"
    );
}

#[test]
fn regression_output_units_must_match_the_target() {
    let fx = Fixture::empty();
    fx.write("days_TRAIN.ts", &forecast_ts(4, 0).0);
    fx.write("days_TEST.ts", &forecast_ts(2, 0).0);
    fx.write(
        "config.toml",
        &FORECAST_CONFIG.replace("units = 1", "units = 3"),
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_RUN, &["[3]", "[1]", "units"]);
}

/// Ham and spam messages with a few telling words each.
fn write_text_folder(fx: &Fixture) {
    let mut split = String::new();
    for i in 0..8 {
        let ham =
            format!("From: friend{i}@example.org\nSubject: lunch\n\nsee you at lunch on day {i}");
        let spam = format!(
            "From: win{i}@prize.biz\nSubject: WIN MONEY\n\nclaim your free prize money now {i}"
        );
        fx.write(&format!("mail/ham/h{i}.txt"), &ham);
        fx.write(&format!("mail/spam/s{i}.txt"), &spam);
        let which = if i < 6 { "train" } else { "test" };
        split.push_str(&format!("{which}\tham/h{i}.txt\n{which}\tspam/s{i}.txt\n"));
    }
    fx.write("mail/split.tsv", &split);
}

const TEXT_CONFIG: &str = r#"[data]
format = "text_folder"
path = "mail"
max_tokens = 40
sequence_length = 12

[model]
input_shape = [12]

[[model.layers]]
type = "Embedding"
input_dim = 40
output_dim = 4
mask_zero = true

[[model.layers]]
type = "LSTM"
units = 4

[[model.layers]]
type = "Dense"
units = 2
activation = "softmax"

[compile]
optimizer = { type = "adam", learning_rate = 0.01 }
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 3
batch_size = 4
"#;

fn text_fixture() -> Fixture {
    let fx = Fixture::empty();
    write_text_folder(&fx);
    fx.write("config.toml", TEXT_CONFIG);
    fx
}

#[test]
fn a_split_list_without_test_entries_is_bad_input() {
    let fx = text_fixture();
    train(&fx);
    fx.write(
        "mail/train_only.tsv",
        "train\tham/h0.txt\ntrain\tspam/s0.txt\n",
    );

    let run = fx.run(&[
        "evaluate",
        "model.efm",
        "--data",
        "mail",
        "--split",
        "mail/train_only.tsv",
    ]);

    run.fails(EXIT_INPUT, &["train_only.tsv", "no `test` entries"]);
}

#[test]
fn text_folder_trains_a_one_file_model_and_reports_spam_f1() {
    let fx = text_fixture();

    let metrics = train(&fx);
    let evaluated = fx.run(&["evaluate", "model.efm", "--data", "mail", "--json"]);
    let predicted = fx.run(&[
        "predict",
        "model.efm",
        "mail/spam/s7.txt",
        "mail/ham/h7.txt",
    ]);

    // The vocabulary travels inside the model file: nothing is written beside it.
    let beside: Vec<_> = std::fs::read_dir(fx.path("."))
        .expect("fixture dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("model.efm"))
        .collect();
    assert_eq!(beside, ["model.efm"]);
    assert_eq!(metrics["train_samples"].as_u64(), Some(12));
    assert_eq!(metrics["test"]["positive_class"].as_str(), Some("spam"));
    let doc = json(evaluated.success().stdout.trim());
    assert_keys(
        &doc,
        &["loss", "accuracy", "precision", "recall", "f1", "samples"],
    );
    assert_eq!(
        doc["samples"].as_u64(),
        Some(4),
        "the test split of split.tsv"
    );
    assert_eq!(doc["positive_class"].as_str(), Some("spam"));
    assert_same_loss(&doc, &metrics);
    let out = predicted.success().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("mail/spam/s7.txt: "), "{out}");
    assert!(lines[1].starts_with("mail/ham/h7.txt: "), "{out}");
}

#[test]
fn a_text_model_without_its_vocabulary_is_refused() {
    let fx = text_fixture();
    train(&fx);
    // The same network saved without a vocabulary, as the Rust API leaves it by default.
    let mut model = edgeflow_nn::Sequential::load(fx.path("model.efm")).expect("load");
    model.metadata.vocabulary = None;
    model.save(fx.path("bare.efm")).expect("save");

    let inspect = fx.run(&["inspect", "model.efm"]).success();
    let evaluate = fx.run(&["evaluate", "bare.efm", "--data", "mail"]);
    let predict = fx.run(&["predict", "bare.efm", "mail/ham/h7.txt"]);

    assert!(inspect.stdout.contains("vocabulary:"), "{}", inspect.stdout);
    for run in [evaluate, predict] {
        run.fails(EXIT_INPUT, &["bare.efm", "no vocabulary"]);
    }
}

#[test]
fn text_sequence_length_must_match_the_input_shape() {
    let fx = text_fixture();
    fx.write(
        "config.toml",
        &TEXT_CONFIG.replace("sequence_length = 12", "sequence_length = 10"),
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_INPUT, &["sequence_length = 10", "[10]"]);
}

#[test]
fn malformed_ts_line_is_reported_with_file_and_line() {
    let fx = series_fixture();
    let good = classification_ts(12, 0);
    // Line 12 is the third series; give it a value that is not a number.
    let bad: Vec<String> = good
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 11 {
                l.replacen("0.", "x.", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    fx.write("ts/Tiny_TRAIN.ts", &(bad.join("\n") + "\n"));

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_INPUT, &["Tiny_TRAIN.ts", "line 12"]);
}

#[test]
fn series_longer_than_the_model_are_refused_with_the_length_to_use() {
    let fx = series_fixture();
    fx.write("config.toml", &SERIES_CONFIG.replace("[6, 2]", "[4, 2]"));

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_INPUT, &["Tiny_TRAIN.ts", "seq_len 4", "at least 6"]);
}

#[test]
fn unknown_format_lists_the_known_ones() {
    let fx = series_fixture();
    fx.write(
        "config.toml",
        &SERIES_CONFIG.replace("\"ucr_ts\"", "\"csv_series\""),
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &[
            "config.toml",
            "csv_series",
            "image_folder",
            "cifar10_binary",
            "ucr_ts",
            "text_folder",
        ],
    );
}

#[test]
fn keys_of_another_format_are_refused() {
    let fx = series_fixture();
    fx.write(
        "config.toml",
        &SERIES_CONFIG.replace("[model]", "max_tokens = 100\n\n[model]"),
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_RUN, &["config.toml", "ucr_ts", "max_tokens"]);
}

#[test]
fn series_model_wants_a_ts_file() {
    let fx = series_fixture();
    train(&fx);

    let run = fx.run(&["evaluate", "model.efm", "--data", "ts"]);

    run.fails(EXIT_INPUT, &[".ts file", "ts"]);
}
