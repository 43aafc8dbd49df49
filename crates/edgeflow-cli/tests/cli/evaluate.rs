//! `edgeflow evaluate`: the text report (loss, accuracy, per-class table, confusion matrix) and
//! the JSON form, on the tiny dataset's test split.

use crate::common::{assert_keys, json, Fixture, CLASSES, EXIT_INPUT, TEST_PER_CLASS};

/// Train and evaluate compute the same test loss; they may batch differently.
const LOSS_TOLERANCE: f64 = 1e-5;

#[test]
fn text_report_has_loss_accuracy_per_class_and_confusion() {
    let fx = Fixture::new();
    fx.train_model();

    let run = fx
        .run(&["evaluate", "model.efm", "--data", "data"])
        .success();

    let out = &run.stdout;
    let samples = TEST_PER_CLASS * CLASSES.len();
    assert!(out.contains(&format!("samples:  {samples}")), "{out}");
    assert!(out.contains("loss:"), "{out}");
    assert!(out.contains("accuracy:"), "{out}");
    let (per_class, confusion) = out
        .split_once("per-class accuracy:")
        .and_then(|(_, rest)| rest.split_once("confusion matrix"))
        .unwrap_or_else(|| panic!("no per-class table or confusion matrix: {out}"));
    for class in CLASSES {
        assert!(
            per_class.contains(class),
            "per-class table lacks {class}: {out}"
        );
    }

    // One row per true class, counts summing to the number of samples.
    let mut total = 0;
    for class in CLASSES {
        // The title's tail and the column header come first.
        let row = confusion
            .lines()
            .skip(2)
            .find(|l| l.trim_start().starts_with(class))
            .unwrap_or_else(|| panic!("no confusion row for {class}: {out}"));
        let counts: Vec<usize> = row
            .split_whitespace()
            .skip(1)
            .map(|c| c.parse().expect("count"))
            .collect();
        assert_eq!(counts.len(), CLASSES.len(), "{row}");
        assert_eq!(counts.iter().sum::<usize>(), TEST_PER_CLASS, "{row}");
        total += counts.iter().sum::<usize>();
    }
    assert_eq!(total, samples);
}

#[test]
fn json_has_loss_accuracy_samples_and_agrees_with_train() {
    let fx = Fixture::new();
    let train = [
        "train",
        "config.toml",
        "-q",
        "--threads",
        "1",
        "--out",
        "model.efm",
        "--metrics-json",
        "metrics.json",
    ];
    fx.run(&train).success();

    let run = fx.run(&["evaluate", "model.efm", "--data", "data", "--json"]);

    let run = run.success();
    let doc = json(run.stdout.trim());
    assert_keys(&doc, &["loss", "accuracy", "samples"]);
    let samples = (TEST_PER_CLASS * CLASSES.len()) as u64;
    assert_eq!(doc["samples"].as_u64(), Some(samples));
    let accuracy = doc["accuracy"].as_f64().expect("accuracy");
    assert!((0.0..=1.0).contains(&accuracy));
    let metrics = json(&std::fs::read_to_string(fx.path("metrics.json")).expect("metrics"));
    let train_loss = metrics["test"]["loss"].as_f64().expect("train's test loss");
    let loss = doc["loss"].as_f64().expect("loss");
    assert!(
        (loss - train_loss).abs() <= LOSS_TOLERANCE * train_loss.abs().max(1.0),
        "evaluate loss {loss} vs train's test loss {train_loss}"
    );
}

/// Regression: classes that differ from the model's exited with 1, not as bad input data.
#[test]
fn other_classes_than_the_model_is_bad_input() {
    let fx = Fixture::new();
    fx.train_model();
    for split in ["train", "test"] {
        let png = fx.path(&format!("data/{split}/green/00.png"));
        crate::common::write_png(&png, 8, 8, 0, 99);
    }

    let run = fx.run(&["evaluate", "model.efm", "--data", "data"]);

    run.fails(EXIT_INPUT, &["green", "blue", "red"]);
}
