//! `edgeflow train`: the model file, the metrics JSON, the command-line overrides, quiet mode
//! and reproducibility, on the tiny 8x8 dataset.

use serde_json::Value;

use crate::common::{
    assert_keys, cifar_jpegs, json, Fixture, CLASSES, CONFIG, EXIT_INPUT, EXIT_USAGE,
    TEST_PER_CLASS, TRAIN_PER_CLASS,
};

const EPOCH_KEYS: [&str; 6] = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
];

/// Trains with `extra` arguments after the config and returns the parsed metrics JSON.
fn train_metrics(fx: &Fixture, extra: &[&str]) -> Value {
    let mut args = vec!["train", "config.toml", "--out", "model.efm"];
    args.extend_from_slice(&["--metrics-json", "metrics.json"]);
    args.extend_from_slice(extra);
    fx.run(&args).success();
    json(&std::fs::read_to_string(fx.path("metrics.json")).expect("metrics file"))
}

fn losses(metrics: &Value) -> Vec<f64> {
    metrics["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .map(|e| e["loss"].as_f64().expect("loss"))
        .collect()
}

#[test]
fn happy_path_writes_model_and_documented_metrics() {
    let fx = Fixture::new();

    let run = fx.run(&[
        "train",
        "config.toml",
        "--out",
        "model.efm",
        "--metrics-json",
        "metrics.json",
    ]);

    let run = run.success();
    assert!(run.stdout.contains("Total params"), "{}", run.stdout);
    assert!(run.stdout.contains("Epoch 2/2"), "{}", run.stdout);
    assert!(run.stdout.contains("Model written to model.efm"));
    assert!(
        std::fs::metadata(fx.path("model.efm"))
            .expect("model")
            .len()
            > 0
    );

    let m = json(&std::fs::read_to_string(fx.path("metrics.json")).expect("metrics"));
    assert_keys(&m, &["epochs", "test", "threads", "train_samples"]);
    let epochs = m["epochs"].as_array().expect("epochs array");
    assert_eq!(epochs.len(), 2, "fit.epochs = 2 in the config");
    for (i, e) in epochs.iter().enumerate() {
        assert_keys(e, &EPOCH_KEYS);
        assert_eq!(e["epoch"].as_u64(), Some(i as u64 + 1));
        assert!(e["loss"].as_f64().expect("loss").is_finite());
        let acc = e["accuracy"].as_f64().expect("accuracy");
        assert!((0.0..=1.0).contains(&acc));
        // No validation split in the config.
        assert!(
            e["val_loss"].is_null() && e["val_accuracy"].is_null(),
            "{e}"
        );
        assert!(e["seconds"].as_f64().expect("seconds") >= 0.0);
    }
    assert_keys(&m["test"], &["loss", "accuracy", "samples"]);
    let test_samples = (TEST_PER_CLASS * CLASSES.len()) as u64;
    assert_eq!(m["test"]["samples"].as_u64(), Some(test_samples));
    let train_samples = (TRAIN_PER_CLASS * CLASSES.len()) as u64;
    assert_eq!(m["train_samples"].as_u64(), Some(train_samples));
    assert!(m["threads"].as_u64().expect("threads") >= 1);
}

#[test]
fn validation_split_fills_val_metrics() {
    let fx = Fixture::new();
    fx.config_with(
        "config.toml",
        "seed = 0",
        "seed = 0\nvalidation_split = 0.25",
    );

    let m = train_metrics(&fx, &["--threads", "1"]);

    for e in m["epochs"].as_array().expect("epochs") {
        assert!(e["val_loss"].as_f64().expect("val_loss").is_finite(), "{e}");
        let acc = e["val_accuracy"].as_f64().expect("val_accuracy");
        assert!((0.0..=1.0).contains(&acc), "{e}");
    }
}

#[test]
fn overrides_take_effect() {
    let fx = Fixture::new();

    let m = train_metrics(
        &fx,
        &[
            "--epochs",
            "3",
            "--batch-size",
            "2",
            "--limit-train",
            "5",
            "--limit-test",
            "4",
            "--seed",
            "9",
            "--threads",
            "1",
        ],
    );

    assert_eq!(m["epochs"].as_array().expect("epochs").len(), 3);
    assert_eq!(m["train_samples"].as_u64(), Some(5));
    assert_eq!(m["test"]["samples"].as_u64(), Some(4));
    assert_eq!(m["threads"].as_u64(), Some(1));
}

#[test]
fn batch_size_and_seed_overrides_change_training() {
    let fx = Fixture::new();
    let run = |seed: &str, batch: &str| {
        let args = [
            "-q",
            "--threads",
            "1",
            "--seed",
            seed,
            "--batch-size",
            batch,
        ];
        losses(&train_metrics(&fx, &args))
    };

    let reference = run("3", "4");
    let other_seed = run("4", "4");
    let other_batch = run("3", "3");

    assert_ne!(reference, other_seed, "--seed did not change the run");
    assert_ne!(
        reference, other_batch,
        "--batch-size did not change the run"
    );

    // A batch size of zero is refused on the command line, before anything runs.
    let zero = fx.run(&["train", "config.toml", "-q", "--batch-size", "0"]);
    zero.fails(EXIT_USAGE, &["--batch-size", "at least 1"]);
}

#[test]
fn same_seed_on_one_thread_is_reproducible() {
    let fx = Fixture::new();
    let args = ["--seed", "5", "--threads", "1", "--quiet"];

    let first = train_metrics(&fx, &args);
    let second = train_metrics(&fx, &args);

    assert_eq!(losses(&first), losses(&second));
    assert_eq!(first["test"]["loss"], second["test"]["loss"]);
    assert_eq!(first["test"]["accuracy"], second["test"]["accuracy"]);
}

#[test]
fn quiet_prints_nothing() {
    let fx = Fixture::new();

    let run = fx.run(&["train", "config.toml", "--quiet", "--out", "model.efm"]);

    let run = run.success();
    assert_eq!(run.stdout, "", "--quiet wrote to stdout");
    assert_eq!(run.stderr, "", "--quiet wrote to stderr");
    assert!(fx.path("model.efm").is_file());
}

/// Regression: image folders used to be read at 32x32 whatever the model's input shape, so the
/// 8x8 fixture was refused and an 8x8 model failed inside `fit` with exit code 1.
#[test]
fn image_size_follows_the_model_input_shape() {
    let fx = Fixture::new();
    let (config, _) = fx.config_with("big.toml", "[8, 8, 3]", "[16, 16, 3]");

    let run = fx.run(&["train", config.to_str().expect("utf-8"), "-q"]);

    run.fails(EXIT_INPUT, &["8x8", "16x16", "00.png"]);
}

/// The reference job's data format on a real slice of CIFAR-10: 32x32 JPEGs.
#[test]
fn trains_on_a_slice_of_cifar10_jpegs() {
    let fx = Fixture::empty();
    for (split, n) in [("train", 4), ("test", 2)] {
        for class in ["airplane", "cat"] {
            let Some(files) = cifar_jpegs(split, class, n) else {
                eprintln!("skipped: no shared CIFAR-10 JPEG folder in this checkout");
                return;
            };
            for f in files {
                let name = f.file_name().expect("name").to_str().expect("utf-8");
                let to = fx.path(&format!("data/{split}/{class}/{name}"));
                std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                std::fs::copy(&f, to).expect("copy");
            }
        }
    }
    fx.write("config.toml", &CONFIG.replace("[8, 8, 3]", "[32, 32, 3]"));

    let m = train_metrics(&fx, &["--threads", "1", "-q"]);

    assert_eq!(m["train_samples"].as_u64(), Some(8));
    assert_eq!(m["test"]["samples"].as_u64(), Some(4));
    let run = fx.run(&["inspect", "model.efm"]).success();
    assert!(run.stdout.contains("airplane, cat"), "{}", run.stdout);
}
