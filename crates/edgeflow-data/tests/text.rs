//! Text folders, split lists and tokenizers on SpamAssassin and on small bad inputs.

mod common;

use std::path::Path;

use edgeflow_data::{
    load_text_folder, load_text_split, read_split_file, DataError, Split, WordTokenizer, OOV_ID,
};

#[test]
fn spamassassin_folder_and_split() {
    let root = common::dataset("spamassassin");
    let all = load_text_folder(&root).unwrap();
    assert_eq!(all.class_names, vec!["ham", "spam"]);
    assert_eq!(all.class_counts(), vec![4150, 1896]);
    assert_eq!(all.len(), all.paths.len());

    let (train, test) = load_text_split(&root, root.join("split.tsv")).unwrap();
    assert_eq!((train.len(), test.len()), (4837, 1209));
    assert_eq!(train.class_names, all.class_names);
    // Stratified 80/20: both splits hold both classes in about the corpus proportion.
    let [ham, spam] = train.class_counts()[..] else {
        panic!("two classes")
    };
    assert_eq!(ham + spam, 4837);
    assert!((spam as f64 / 4837.0 - 1896.0 / 6046.0).abs() < 0.01);
    assert!(train.texts.iter().all(|t| !t.is_empty()));

    // A word vocabulary fitted on the training split.
    let tok = WordTokenizer::fit(&train.texts, 20_000, 2).unwrap();
    assert_eq!(tok.vocab_size(), 20_000);
    let ids = tok.encode_batch(&test.texts[..8], 64);
    assert_eq!(ids.len(), 8 * 64);
    assert!(ids.iter().all(|&id| (id as usize) < tok.vocab_size()));
    assert!(ids.iter().any(|&id| id > OOV_ID));
}

fn class_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, bytes) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn invalid_utf8_is_decoded_lossily() {
    let dir = tempfile::tempdir().unwrap();
    class_tree(
        dir.path(),
        &[("a/1.txt", b"ok \xFF\xFE end"), ("b/2.txt", b"")],
    );
    let ds = load_text_folder(dir.path()).unwrap();
    assert_eq!(ds.texts[0], "ok \u{FFFD}\u{FFFD} end");
    assert_eq!(ds.texts[1], "");
    assert_eq!(ds.labels, vec![0, 1]);
}

#[test]
fn text_layout_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_text_folder(dir.path().join("missing")).unwrap_err();
    assert!(
        err.to_string().contains("root/<class_name>/<text files>"),
        "{err}"
    );
    assert!(matches!(
        load_text_folder(dir.path()),
        Err(DataError::Layout { .. })
    ));
    std::fs::create_dir(dir.path().join("empty_class")).unwrap();
    let err = load_text_folder(dir.path()).unwrap_err();
    assert!(err.to_string().contains("empty_class"), "{err}");
}

#[test]
fn split_file_order_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    class_tree(
        root,
        &[("ham/1", b"one"), ("ham/2", b"two"), ("spam/3", b"three")],
    );
    let split = root.join("split.tsv");

    std::fs::write(&split, "test\tspam/3\n\ntrain\tham/2\r\ntrain\tham/1\n").unwrap();
    let entries = read_split_file(&split).unwrap();
    assert_eq!(entries[0].split, Split::Test);
    assert_eq!(entries[2].line, 4);
    let (train, test) = load_text_split(root, &split).unwrap();
    assert_eq!(train.texts, vec!["two", "one"]);
    assert_eq!(test.texts, vec!["three"]);
    assert_eq!(test.labels, vec![1]);

    let cases: [(&str, usize, &str); 5] = [
        ("train\tham/1\nvalid\tham/2\n", 2, "unknown split `valid`"),
        ("train ham/1\n", 1, "expected `train|test<TAB>class/file`"),
        (
            "train\t../etc/passwd\n",
            1,
            "not a relative `class/file` path",
        ),
        ("train\tham\n", 1, "not a relative `class/file` path"),
        ("train\tham/1\ntest\teggs/1\n", 2, "unknown class folder"),
    ];
    for (text, line, needle) in cases {
        std::fs::write(&split, text).unwrap();
        let err = load_text_split(root, &split).unwrap_err();
        assert!(
            matches!(err, DataError::Parse { line: l, .. } if l == line),
            "{err:?}"
        );
        assert!(err.to_string().contains(needle), "{err}");
    }

    std::fs::write(&split, "train\tham/404\n").unwrap();
    let err = load_text_split(root, &split).unwrap_err();
    assert!(
        matches!(err, DataError::Io { .. }) && err.to_string().contains("404"),
        "{err}"
    );
}
