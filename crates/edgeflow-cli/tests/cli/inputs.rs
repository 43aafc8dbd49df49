//! Flags and inputs a new user gets wrong: output paths, zero counts, wrong-size and damaged
//! images, layer arguments in a config, and what `evaluate` needs to read.

use crate::common::{json, write_png, Fixture, EXIT_INPUT, EXIT_RUN, EXIT_USAGE, SIDE};

#[test]
fn an_output_path_in_a_missing_folder_is_refused_before_training() {
    let fx = Fixture::new();

    let out = fx.run(&["train", "config.toml", "-q", "--out", "no/such/dir/m.efm"]);
    let metrics = fx.run(&[
        "train",
        "config.toml",
        "-q",
        "--metrics-json",
        "no/such/dir/m.json",
    ]);
    let folder = fx.run(&["train", "config.toml", "-q", "--out", "data"]);

    out.fails(
        EXIT_USAGE,
        &["--out", "no/such/dir/m.efm", "does not exist"],
    );
    metrics.fails(EXIT_USAGE, &["--metrics-json", "does not exist"]);
    folder.fails(EXIT_USAGE, &["--out", "is a folder"]);
    assert!(!fx.path("model.efm").exists(), "nothing was trained");
}

#[test]
fn zero_counts_on_the_command_line_are_usage_errors() {
    let fx = Fixture::new();
    fx.train_model();

    for args in [
        &["train", "config.toml", "-q", "--batch-size", "0"][..],
        &["train", "config.toml", "-q", "--epochs", "0"],
        &["train", "config.toml", "-q", "--limit-train", "0"],
        &["train", "config.toml", "-q", "--threads", "0"],
        &[
            "evaluate",
            "model.efm",
            "--data",
            "data",
            "--batch-size",
            "0",
        ],
        &["predict", "model.efm", "data/test/red/00.png", "--top", "0"],
    ] {
        let run = fx.run(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}: {run:#?}");
        assert!(run.stderr.contains("at least 1"), "{args:?}: {run:#?}");
    }
}

#[cfg(unix)]
#[test]
fn model_files_get_the_permissions_of_any_new_file() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();

    fx.train_model();

    // A file made the ordinary way in the same folder shows what the umask allows.
    let plain = fx.write("plain.txt", "x");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode();
    assert_eq!(mode(&fx.path("model.efm")) & 0o777, mode(&plain) & 0o777);
}

#[test]
fn evaluate_reads_only_the_test_split() {
    let fx = Fixture::new();
    fx.train_model();
    std::fs::remove_dir_all(fx.path("data/train")).expect("remove train/");

    let run = fx.run(&["evaluate", "model.efm", "--data", "data", "--json"]);

    let doc = json(run.success().stdout.trim());
    assert_eq!(doc["samples"].as_u64(), Some(6));
}

#[test]
fn a_data_path_that_is_a_file_is_called_a_file() {
    let fx = Fixture::new();
    fx.train_model();

    let run = fx.run(&["evaluate", "model.efm", "--data", "config.toml"]);

    run.fails(EXIT_INPUT, &["config.toml", "is a file, not a folder"]);
}

#[test]
fn wrong_size_images_are_refused_unless_resize_is_asked_for() {
    let fx = Fixture::new();
    fx.train_model();
    let big = fx.path("big/test/red/00.png");
    write_png(&big, 2 * SIDE, 2 * SIDE, 1, 0);
    write_png(&fx.path("big/test/blue/00.png"), SIDE, SIDE, 0, 0);

    let eval_plain = fx.run(&["evaluate", "model.efm", "--data", "big", "--json"]);
    let eval_resized = fx.run(&[
        "evaluate",
        "model.efm",
        "--data",
        "big",
        "--resize",
        "--json",
    ]);
    let predict_plain = fx.run(&["predict", "model.efm", "big/test/red/00.png"]);
    let predict_resized = fx.run(&["predict", "model.efm", "big/test/red/00.png", "--resize"]);

    eval_plain.fails(EXIT_INPUT, &["00.png", "16x16"]);
    assert_eq!(
        json(eval_resized.success().stdout.trim())["samples"].as_u64(),
        Some(2)
    );
    predict_plain.fails(EXIT_INPUT, &["00.png"]);
    assert!(predict_resized.success().stdout.contains("red"));
}

#[test]
fn the_config_can_resize_images_and_skip_damaged_ones() {
    let fx = Fixture::new();
    write_png(&fx.path("data/train/red/big.png"), 2 * SIDE, 2 * SIDE, 1, 7);
    fx.write("data/train/blue/broken.png", "not a png at all");
    let strict = fx.run(&["train", "config.toml", "-q", "--out", "strict.efm"]);
    let (_, _) = fx.config_with(
        "lenient.toml",
        "scale = 0.00392156862745098",
        "scale = 0.00392156862745098\nresize = true\nskip_bad_images = true",
    );

    let lenient = fx.run(&[
        "train",
        "lenient.toml",
        "-q",
        "--out",
        "lenient.efm",
        "--metrics-json",
        "m.json",
    ]);

    strict.fails(EXIT_INPUT, &[]);
    let lenient = lenient.success();
    assert!(lenient.stderr.contains("skipped 1"), "{lenient:#?}");
    let metrics = json(&std::fs::read_to_string(fx.path("m.json")).expect("metrics"));
    // The 12 images, the 16x16 one resized in, the damaged one left out.
    assert_eq!(metrics["train_samples"].as_u64(), Some(13));
}

#[test]
fn a_bad_layer_argument_is_reported_at_its_own_line_and_layer() {
    let fx = Fixture::new();
    let (unknown, unknown_line) = fx.config_with("a.toml", "units = 2", "unitz = 2");
    let (wrong_type, wrong_line) = fx.config_with("b.toml", "units = 2", "units = \"2\"");
    let (variant, variant_line) = fx.config_with(
        "c.toml",
        "activation = \"softmax\"",
        "activation = \"sotfmax\"",
    );

    for (path, line) in [
        (unknown, unknown_line),
        (wrong_type, wrong_line),
        (variant, variant_line),
    ] {
        let run = fx.run(&["train", path.to_str().expect("utf-8"), "-q"]);
        let expect = format!("line {line}:");
        run.fails(EXIT_RUN, &[expect.as_str(), "layer 3 (Dense)"]);
    }
}

#[test]
fn callbacks_from_the_config_stop_early_and_save_the_best_model() {
    let fx = Fixture::new();
    // With patience 1 on three validation images the validation loss stops improving long
    // before 30 epochs; the rate is halved after every epoch that does not improve.
    let (config, _) = fx.config_with(
        "cb.toml",
        "seed = 0",
        "seed = 0\nepochs = 30\nvalidation_split = 0.25\n\n[fit.early_stopping]\n\
         monitor = \"val_loss\"\npatience = 1\nrestore_best_weights = true\n\n\
         [fit.reduce_lr_on_plateau]\nfactor = 0.5\npatience = 0\n\n\
         [fit.checkpoint]\npath = \"best.efm\"\nsave_best_only = true",
    );
    let config = config.to_str().expect("utf-8").to_string();
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("epochs = 2\n", "");
    std::fs::write(&config, text).expect("config");

    let run = fx.run(&[
        "train",
        config.as_str(),
        "-q",
        "--threads",
        "1",
        "--metrics-json",
        "m.json",
    ]);

    run.success();
    let metrics = json(&std::fs::read_to_string(fx.path("m.json")).expect("metrics"));
    let epochs = metrics["epochs"].as_array().expect("epochs").len();
    assert!(epochs < 30, "early stopping never stopped: {epochs} epochs");
    assert!(fx.path("best.efm").is_file(), "no checkpoint written");
    fx.run(&["inspect", "best.efm"]).success();
}

#[test]
fn a_callback_watching_validation_figures_needs_validation_data() {
    let fx = Fixture::new();
    let (config, _) = fx.config_with(
        "cb.toml",
        "seed = 0",
        "seed = 0\n\n[fit.early_stopping]\npatience = 2",
    );
    let (typo, _) = fx.config_with(
        "typo.toml",
        "seed = 0",
        "seed = 0\n\n[fit.checkpoint]\npath = \"b.efm\"\nmonitor = \"acuracy\"",
    );

    let run = fx.run(&["train", config.to_str().expect("utf-8"), "-q"]);
    let typo = fx.run(&["train", typo.to_str().expect("utf-8"), "-q"]);

    run.fails(
        EXIT_RUN,
        &["[fit.early_stopping]", "val_loss", "validation_split"],
    );
    typo.fails(EXIT_RUN, &["[fit.checkpoint]", "acuracy"]);
}

#[test]
fn augmentation_changes_training_only_and_repeats_with_the_seed() {
    let fx = Fixture::new();
    let (augmented, _) = fx.config_with(
        "aug.toml",
        "scale = 0.00392156862745098",
        "scale = 0.00392156862745098\naugment = { pad = 2, flip = true }",
    );
    let augmented = augmented.to_str().expect("utf-8").to_string();
    let train = |config: &str, out: &str| {
        let metrics = format!("{out}.json");
        fx.run(&[
            "train",
            config,
            "-q",
            "--threads",
            "1",
            "--out",
            out,
            "--metrics-json",
            &metrics,
        ])
        .success();
        json(&std::fs::read_to_string(fx.path(&metrics)).expect("metrics"))
    };

    let plain = train("config.toml", "plain.efm");
    let first = train(&augmented, "a1.efm");
    let second = train(&augmented, "a2.efm");

    let loss = |m: &serde_json::Value| m["epochs"][0]["loss"].as_f64().expect("loss");
    assert_ne!(loss(&plain), loss(&first), "augmentation changed nothing");
    assert_eq!(loss(&first), loss(&second), "same seed, other augmentation");
    assert_eq!(first["test"]["loss"], second["test"]["loss"]);
    // The test figures are of unchanged images: `evaluate`, which never augments, agrees.
    let evaluated = fx.run(&[
        "evaluate",
        "a1.efm",
        "--data",
        "data",
        "--json",
        "--threads",
        "1",
    ]);
    let evaluated = json(evaluated.success().stdout.trim());
    let (a, b) = (
        evaluated["loss"].as_f64().expect("loss"),
        first["test"]["loss"].as_f64().expect("loss"),
    );
    assert!((a - b).abs() <= 1e-5, "evaluate {a}, train's test {b}");
}
