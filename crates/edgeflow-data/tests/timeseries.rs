//! UCR/UEA `.ts` reader: case TS-01 fixtures, the five real problems, bad files.

mod common;

use std::path::PathBuf;

use edgeflow_data::{read_ts, standardize_train_test, ChannelStats, DataError, TimeSeriesDataset};

fn ts_fixture(name: &str) -> PathBuf {
    common::fixture("ts").join(name)
}

/// Checks the `[n, dims, len]` view against nested expected values (tolerance 1e-6: the
/// reader stores f32).
fn assert_x(ds: &TimeSeriesDataset, want: &[&[&[f32]]]) {
    let (n, dims, len) = (want.len(), want[0].len(), want[0][0].len());
    assert_eq!((ds.len(), ds.n_channels, ds.max_len), (n, dims, len));
    let x = ds.to_channels_first();
    let flat: Vec<f32> = want
        .iter()
        .flat_map(|s| s.iter().flat_map(|c| c.iter().copied()))
        .collect();
    assert_eq!(x.len(), flat.len());
    for (got, want) in x.iter().zip(flat) {
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn ts01_multivariate_string_labels() {
    let ds = read_ts(ts_fixture("multi_str_labels.ts")).unwrap();
    assert_x(
        &ds,
        &[
            &[&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]],
            &[&[-1.5, 0.0, 2.5], &[7.0, 8.0, 9.0]],
        ],
    );
    assert_eq!(ds.class_names, vec!["walk", "run"]);
    assert_eq!(ds.labels, Some(vec![1, 0]));
    assert_eq!(ds.lengths, vec![3, 3]);
    assert_eq!(ds.problem_name.as_deref(), Some("Tiny"));
    // Time-major, channels-last storage: step 1 of series 0 is (2, 5).
    assert_eq!(&ds.values[2..4], &[2.0, 5.0]);
}

#[test]
fn ts01_univariate_numeric_labels_index_by_position() {
    let ds = read_ts(ts_fixture("uni_numeric_labels_from_1.ts")).unwrap();
    assert_x(
        &ds,
        &[
            &[&[0.1, 0.2, 0.3, 0.4]],
            &[&[-0.1, -0.2, -0.3, -0.4]],
            &[&[0.5, 1.5, -2.5, 3.0]],
        ],
    );
    assert_eq!(ds.class_names, vec!["1", "2"]);
    // Label "2" is class index 1, not 2.
    assert_eq!(ds.labels, Some(vec![1, 0, 1]));
}

#[test]
fn ts01_no_labels() {
    let ds = read_ts(ts_fixture("no_labels.ts")).unwrap();
    assert_x(&ds, &[&[&[1.0, 2.0, 3.0]], &[&[4.0, 5.0, 6.0]]]);
    assert_eq!(ds.labels, None);
    assert!(ds.class_names.is_empty());
}

#[test]
fn ts01_missing_and_unequal_lengths() {
    let ds = read_ts(ts_fixture("missing_and_unequal.ts")).unwrap();
    assert_eq!(ds.lengths, vec![3, 2]);
    assert_eq!(ds.max_len, 3);
    assert_eq!(ds.labels, Some(vec![0, 1]));
    assert_eq!(ds.value(0, 0, 0), Some(1.0));
    assert!(ds.value(0, 1, 0).unwrap().is_nan());
    assert_eq!(ds.value(0, 2, 0), Some(3.0));
    // Padding is 0.0 and masked out.
    assert_eq!(ds.value(1, 2, 0), Some(0.0));
    assert_eq!(ds.mask(), vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
}

/// One real problem and its facts from the datasets README.
struct Problem {
    name: &'static str,
    n_train: usize,
    n_test: usize,
    classes: usize,
    channels: usize,
    /// `Some(len)` for equal-length problems.
    length: Option<usize>,
}

const fn problem(
    name: &'static str,
    (n_train, n_test): (usize, usize),
    classes: usize,
    channels: usize,
    length: Option<usize>,
) -> Problem {
    Problem {
        name,
        n_train,
        n_test,
        classes,
        channels,
        length,
    }
}

const PROBLEMS: [Problem; 5] = [
    problem("BasicMotions", (40, 40), 4, 6, Some(100)),
    problem("JapaneseVowels", (270, 370), 9, 12, None),
    problem("ItalyPowerDemand", (67, 1029), 2, 1, Some(24)),
    problem("GunPoint", (50, 150), 2, 1, Some(150)),
    problem("PLAID", (537, 537), 11, 1, None),
];

fn load_problem(name: &str, split: &str) -> TimeSeriesDataset {
    read_ts(
        common::dataset("ucr")
            .join(name)
            .join(format!("{name}_{split}.ts")),
    )
    .unwrap()
}

#[test]
fn real_ucr_problems_load_with_readme_counts() {
    for Problem {
        name,
        n_train,
        n_test,
        classes,
        channels,
        length,
    } in PROBLEMS
    {
        let train = load_problem(name, "TRAIN");
        let test = load_problem(name, "TEST");
        assert_eq!((train.len(), test.len()), (n_train, n_test), "{name}");
        for ds in [&train, &test] {
            assert_eq!(ds.class_names.len(), classes, "{name}");
            assert_eq!(ds.n_channels, channels, "{name}");
            assert_eq!(ds.values.len(), ds.len() * ds.max_len * channels);
            let counts = ds.class_counts().unwrap();
            assert_eq!(counts.iter().sum::<usize>(), ds.len());
            if let Some(len) = length {
                assert!(ds.lengths.iter().all(|&l| l == len), "{name}");
            }
        }
        assert!(
            train.class_counts().unwrap().iter().all(|&c| c > 0),
            "{name}"
        );
    }
}

#[test]
fn real_label_conventions_and_variable_lengths() {
    let gun = load_problem("GunPoint", "TRAIN");
    assert_eq!(gun.class_names, vec!["1", "2"]);
    let motions = load_problem("BasicMotions", "TRAIN");
    assert_eq!(
        motions.class_names,
        vec!["Standing", "Running", "Walking", "Badminton"]
    );

    let vowels = load_problem("JapaneseVowels", "TRAIN");
    assert!(vowels.lengths.iter().all(|&l| (7..=29).contains(&l)));
    assert!(vowels.lengths.iter().any(|&l| l != vowels.lengths[0]));
    assert_eq!(vowels.max_len, *vowels.lengths.iter().max().unwrap());
    assert_eq!(vowels.class_counts().unwrap(), vec![30; 9]);
    let plaid = load_problem("PLAID", "TRAIN");
    assert!(plaid.lengths.iter().any(|&l| l != plaid.lengths[0]));
}

#[test]
fn standardisation_fits_train_and_ignores_padding() {
    let mut train = load_problem("JapaneseVowels", "TRAIN");
    let mut test = load_problem("JapaneseVowels", "TEST");
    let len = train.max_len.max(test.max_len);
    train.pad_to(len).unwrap();
    test.pad_to(len).unwrap();
    let stats = standardize_train_test(&mut train, &mut test).unwrap();
    assert_eq!(stats.mean.len(), 12);

    // After standardisation the train statistics over valid steps are (0, 1).
    let refit = ChannelStats::fit(&train);
    for c in 0..12 {
        assert!(refit.mean[c].abs() < 1e-4, "channel {c}: {}", refit.mean[c]);
        assert!(
            (refit.std[c] - 1.0).abs() < 1e-4,
            "channel {c}: {}",
            refit.std[c]
        );
    }
    // Padding stays 0.
    let (i, &l) = train
        .lengths
        .iter()
        .enumerate()
        .find(|(_, &l)| l < len)
        .unwrap();
    assert_eq!(train.value(i, l, 0), Some(0.0));
}

fn write_ts(body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.ts");
    let header = "@problemName Bad\n@univariate false\n@dimensions 2\n@equalLength true\n\
                  @seriesLength 2\n@classLabel true x y\n@data\n";
    std::fs::write(&path, format!("{header}{body}")).unwrap();
    (dir, path)
}

fn expect_parse_error(body: &str, line: usize, needle: &str) {
    let (_dir, path) = write_ts(body);
    let err = read_ts(&path).unwrap_err();
    assert!(
        matches!(err, DataError::Parse { line: l, .. } if l == line),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("bad.ts") && msg.contains(&format!("line {line}")),
        "{msg}"
    );
    assert!(msg.contains(needle), "{msg}");
}

#[test]
fn malformed_lines_name_file_and_line() {
    expect_parse_error("1,2:3,4:x\n1,2:3,abc:y\n", 9, "bad number `abc`");
    expect_parse_error("1,2:3,4:x\n1,2:y\n", 9, "1 channels, expected 2");
    expect_parse_error("1,2:3,4:x\n1,2:3,4:z\n", 9, "unknown class label `z`");
    expect_parse_error("1,2:3,4,5:x\n", 8, "channel 1 has 3 values");
    expect_parse_error("1,2,3:4,5,6:x\n", 8, "@seriesLength is 2");
}

#[test]
fn missing_file_and_empty_data() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        read_ts(dir.path().join("none.ts")),
        Err(DataError::Io { .. })
    ));
    let (_dir, path) = write_ts("");
    assert!(read_ts(&path)
        .unwrap_err()
        .to_string()
        .contains("no series"));
    std::fs::write(&path, [0xFF, 0xFE, b'\n']).unwrap();
    assert!(read_ts(&path).is_err());
}
