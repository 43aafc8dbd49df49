//! Bad input: every case ends with an `error:` message that says what is wrong and where, the
//! documented exit code (1 failed run or bad config, 2 usage, 3 bad data or model file), and no
//! panic.

use crate::common::{write_png, Fixture, EXIT_INPUT, EXIT_RUN, EXIT_USAGE};

/// Regression: a missing data folder exited with 1 instead of the bad-input code 3.
#[test]
fn missing_data_folder_says_layout_and_where_cifar10_is() {
    let fx = Fixture::new();
    fx.train_model();

    let train = fx.run(&["train", "config.toml", "-q", "--data", "nowhere"]);
    let evaluate = fx.run(&["evaluate", "model.efm", "--data", "nowhere"]);

    train.fails(
        EXIT_INPUT,
        &["nowhere", "does not exist", "train/<class>", "cifar10-jpg"],
    );
    // Evaluation reads only the test split, and says so.
    assert!(
        !evaluate.stderr.contains("train/"),
        "evaluate asks for a train split: {}",
        evaluate.stderr
    );
    evaluate.fails(
        EXIT_INPUT,
        &["nowhere", "does not exist", "test/<class>", "cifar10-jpg"],
    );
}

#[test]
fn data_folder_without_train_split_is_refused() {
    let fx = Fixture::new();
    std::fs::rename(fx.path("data/train"), fx.path("elsewhere")).expect("move");

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_INPUT, &["data/train", "expected", "<class"]);
}

#[test]
fn images_directly_in_the_data_folder_are_refused() {
    let fx = Fixture::empty();
    fx.write("config.toml", crate::common::CONFIG);
    for i in 0..3 {
        write_png(&fx.path(&format!("data/{i}.png")), 8, 8, 0, i);
    }

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_INPUT, &["data/train", "expected", "<class"]);
}

#[test]
fn unknown_layer_type_names_the_config_line() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with("config.toml", "\"Flatten\"", "\"Flattn\"");

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &["config.toml", &format!("line {line}"), "Flattn", "Flatten"],
    );
}

#[test]
fn unknown_optimizer_is_named_with_the_known_ones() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with("config.toml", "\"adam\"", "\"adamax9\"");

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &[
            "config.toml",
            &format!("line {line}"),
            "adamax9",
            "known",
            "sgd",
        ],
    );
}

#[test]
fn unknown_optimizer_type_in_a_table_names_the_line() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with(
        "config.toml",
        "\"adam\"",
        "{ type = \"adamax9\", learning_rate = 0.01 }",
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &["config.toml", &format!("line {line}"), "adamax9", "adam"],
    );
}

#[test]
fn unknown_metric_names_the_line() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with("config.toml", "[\"accuracy\"]", "[\"acuracy\"]");

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &["config.toml", &format!("line {line}"), "acuracy"],
    );
}

#[test]
fn unknown_loss_is_named_with_the_known_ones() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with(
        "config.toml",
        "\"sparse_categorical_crossentropy\"",
        "\"hinge_loss9\"",
    );

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(
        EXIT_RUN,
        &[
            "config.toml",
            &format!("line {line}"),
            "hinge_loss9",
            "known",
            "categorical_crossentropy",
        ],
    );
}

#[test]
fn toml_syntax_error_names_the_line() {
    let fx = Fixture::new();
    let (_, line) = fx.config_with("config.toml", "epochs = 2", "epochs = = 2");

    let run = fx.run(&["train", "config.toml", "-q"]);

    run.fails(EXIT_RUN, &["config.toml", &format!("line {line}")]);
}

#[test]
fn missing_config_file_is_named() {
    let fx = Fixture::new();

    let run = fx.run(&["train", "absent.toml", "-q"]);

    run.fails(EXIT_RUN, &["absent.toml"]);
}

#[test]
fn bad_command_line_is_a_usage_error() {
    let fx = Fixture::new();

    for args in [
        &["train"][..],
        &["train", "config.toml", "--epochs", "many"],
        &["predict", "model.efm"],
        &["frobnicate"],
    ] {
        let run = fx.run(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}: {run:#?}");
        assert!(!run.stderr.contains("panicked"), "{run:#?}");
    }
}

#[test]
fn files_that_are_not_models_are_refused_by_every_command() {
    let fx = Fixture::new();
    fx.write("notes.efm", "just some text\n");
    fx.write("empty.efm", "");
    write_png(&fx.path("image.png"), 8, 8, 0, 0);
    std::fs::copy(fx.path("image.png"), fx.path("image.efm")).expect("copy");
    write_png(&fx.path("input.png"), 8, 8, 0, 0);

    for model in ["notes.efm", "empty.efm", "image.efm"] {
        for args in [
            &["inspect", model][..],
            &["evaluate", model, "--data", "data"],
            &["predict", model, "input.png"],
        ] {
            let run = fx.run(args);
            run.fails(EXIT_INPUT, &[model, "not an edgeflow model file"]);
        }
    }
}

#[test]
fn missing_model_file_is_named() {
    let fx = Fixture::new();
    write_png(&fx.path("input.png"), 8, 8, 0, 0);

    for args in [
        &["inspect", "absent.efm"][..],
        &["evaluate", "absent.efm", "--data", "data"],
        &["predict", "absent.efm", "input.png"],
    ] {
        let run = fx.run(args);
        run.fails(EXIT_INPUT, &["absent.efm", "No such file"]);
    }
}
