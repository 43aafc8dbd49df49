//! `edgeflow predict`: top-K answers with class names for good images, and a per-file report
//! for files that cannot be classified, without stopping at the first.

use crate::common::{json, write_png, Fixture, CLASSES, EXIT_INPUT, SIDE};

/// Good images, a truncated PNG and a text file named `.png`, in that order on the command
/// line. Returns the fixture (model trained) and the file names.
fn fixture_with_images() -> (Fixture, [&'static str; 4]) {
    let fx = Fixture::new();
    fx.train_model();
    let names = ["good_blue.png", "good_red.png", "truncated.png", "text.png"];
    write_png(&fx.path(names[0]), SIDE, SIDE, 0, 7);
    write_png(&fx.path(names[1]), SIDE, SIDE, 1, 7);
    let full = std::fs::read(fx.path(names[0])).expect("png");
    std::fs::write(fx.path(names[2]), &full[..full.len() / 2]).expect("truncate");
    fx.write(names[3], "this is not an image\n");
    (fx, names)
}

/// `(class, probability)` pairs of a text answer `file: class p, class p`.
fn parse_text_answer(line: &str) -> Vec<(String, f64)> {
    let (_, answers) = line.split_once(": ").expect("file: answers");
    answers
        .split(", ")
        .map(|a| {
            let (class, p) = a.rsplit_once(' ').expect("class p");
            (class.to_string(), p.parse().expect("probability"))
        })
        .collect()
}

#[test]
fn text_answers_good_files_and_names_bad_ones() {
    let (fx, names) = fixture_with_images();

    let run = fx.run(&[
        "predict",
        "model.efm",
        names[0],
        names[2],
        names[1],
        names[3],
    ]);

    let run = run.fails(EXIT_INPUT, &[names[2], names[3], "2 of 4 files"]);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "one line per good file: {run:#?}");
    for (line, name) in lines.iter().zip([names[0], names[1]]) {
        assert!(line.starts_with(&format!("{name}: ")), "{line}");
        // The default top 3 is cut to the 2 classes there are.
        let answers = parse_text_answer(line);
        assert_eq!(answers.len(), CLASSES.len(), "{line}");
        for (class, p) in &answers {
            assert!(CLASSES.contains(&class.as_str()), "{line}");
            assert!((0.0..=1.0).contains(p), "{line}");
        }
        assert!(answers[0].1 >= answers[1].1, "not sorted: {line}");
    }
}

#[test]
fn top_k_is_honoured() {
    let (fx, names) = fixture_with_images();

    let run = fx.run(&["predict", "model.efm", names[0], names[1], "--top", "1"]);

    let run = run.success();
    for line in run.stdout.lines() {
        assert_eq!(parse_text_answer(line).len(), 1, "{line}");
    }
    assert_eq!(run.stdout.lines().count(), 2);
}

#[test]
fn json_is_one_object_per_line() {
    let (fx, names) = fixture_with_images();

    let args = ["predict", "model.efm", "--json", "--top", "1"];
    let run = fx.run(&[&args[..], &names[..]].concat());

    let run = run.fails(EXIT_INPUT, &["2 of 4 files"]);
    let docs: Vec<_> = run.stdout.lines().map(json).collect();
    assert_eq!(docs.len(), names.len(), "{run:#?}");
    for (doc, name) in docs.iter().zip(names) {
        assert_eq!(doc["file"].as_str(), Some(name), "{doc}");
    }
    for good in &docs[..2] {
        let top = good["top"].as_array().expect("top");
        assert_eq!(top.len(), 1, "{good}");
        let class = top[0]["class"].as_str().expect("class");
        assert!(CLASSES.contains(&class), "{good}");
        let p = top[0]["probability"].as_f64().expect("probability");
        assert!((0.0..=1.0).contains(&p), "{good}");
    }
    for (bad, name) in docs[2..].iter().zip(&names[2..]) {
        let error = bad["error"].as_str().expect("error");
        assert!(error.contains(name), "{bad}");
    }
}

#[test]
fn corrupt_fixture_jpegs_are_reported_by_name() {
    let fixtures = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/cases/fixtures/img_corrupt"
    );
    if !std::path::Path::new(fixtures).is_dir() {
        eprintln!("skipped: no shared fixtures in this checkout");
        return;
    }
    let fx = Fixture::new();
    fx.train_model();
    let bad = ["empty.jpg", "truncated.jpg", "not_an_image.jpg"];
    let mut args = vec!["predict".to_string(), "model.efm".into()];
    args.extend(bad.iter().map(|b| format!("{fixtures}/{b}")));

    let run = fx.run(&args);

    run.fails(EXIT_INPUT, &bad);
}

#[test]
fn wrong_image_size_names_file_and_both_sizes() {
    let fx = Fixture::new();
    fx.train_model();
    write_png(&fx.path("small.png"), 4, 6, 0, 0);

    let run = fx.run(&["predict", "model.efm", "small.png"]);

    run.fails(
        EXIT_INPUT,
        &["small.png", "[6, 4, 3]", "[8, 8, 3]", "--resize"],
    );
}

#[test]
fn a_model_trained_on_logits_answers_with_probabilities() {
    // A linear last layer with `from_logits = true`: its raw outputs are logits, which can be
    // negative or above one; predict must show their softmax.
    let fx = Fixture::new();
    let text = crate::common::CONFIG
        .replace("units = 2\nactivation = \"softmax\"", "units = 2")
        .replace(
            "loss = \"sparse_categorical_crossentropy\"",
            "loss = \"sparse_categorical_crossentropy\"\nfrom_logits = true",
        );
    assert!(text.contains("from_logits = true") && !text.contains("\"softmax\""));
    fx.write("config.toml", &text);
    fx.train_model();
    write_png(&fx.path("blue.png"), SIDE, SIDE, 0, 7);

    let run = fx
        .run(&["predict", "model.efm", "blue.png", "--json"])
        .success();
    let doc = json(run.stdout.lines().next().expect("one answer"));
    let probs: Vec<f64> = doc["top"]
        .as_array()
        .expect("top")
        .iter()
        .map(|a| a["probability"].as_f64().expect("probability"))
        .collect();
    assert_eq!(probs.len(), CLASSES.len(), "{doc}");
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)), "{doc}");
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-5, "{doc}");
}
