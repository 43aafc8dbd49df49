//! `edgeflow inspect`: summary table, shapes, class names, file size and format version.

use crate::common::{Fixture, CLASSES};

#[test]
fn shows_summary_shapes_classes_size_and_format() {
    let fx = Fixture::new();
    let model = fx.train_model();

    let run = fx.run(&["inspect", "model.efm"]).success();

    let out = &run.stdout;
    for needle in [
        "Model: \"tiny\"",
        "Layer (type)",
        "conv2d (Conv2D)",
        "flatten (Flatten)",
        "dense (Dense)",
        "Total params",
    ] {
        assert!(out.contains(needle), "summary lacks {needle:?}: {out}");
    }
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name:?} line: {out}"))
    };
    assert_eq!(field("input shape"), "[8, 8, 3]");
    assert_eq!(field("output shape"), "[2]");
    assert_eq!(field("classes"), CLASSES.join(", "));
    let size = std::fs::metadata(&model).expect("model").len();
    let shown = field("file size")
        .trim_end_matches(" bytes")
        .replace(',', "");
    assert_eq!(shown.parse::<u64>().ok(), Some(size), "{out}");
    let format = format!(
        "{} version {}",
        edgeflow_nn::FORMAT,
        edgeflow_nn::FORMAT_VERSION
    );
    assert_eq!(field("format"), format);
}
