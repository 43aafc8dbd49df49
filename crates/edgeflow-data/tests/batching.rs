//! Case DAT-02: batch sizes, steps per epoch, drop-remainder, per-sample loss weighting.

use edgeflow_data::{batches, steps_per_epoch, DataError};

const N: usize = 10;

fn sizes(batch_size: usize, drop_remainder: bool) -> Vec<usize> {
    batches(N, batch_size, None, drop_remainder)
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect()
}

#[test]
fn dat02_batch_sizes_keep_remainder() {
    let expected: [(usize, &[usize]); 5] = [
        (4, &[4, 4, 2]),
        (2, &[2, 2, 2, 2, 2]),
        (5, &[5, 5]),
        (10, &[10]),
        (32, &[10]),
    ];
    for (batch_size, want) in expected {
        assert_eq!(sizes(batch_size, false), want, "batch size {batch_size}");
    }
}

#[test]
fn dat02_steps_per_epoch() {
    for (batch_size, steps) in [(4, 3), (2, 5), (5, 2), (10, 1), (32, 1)] {
        assert_eq!(
            steps_per_epoch(N, batch_size, false).unwrap(),
            steps,
            "batch size {batch_size}"
        );
        assert_eq!(batches(N, batch_size, Some(1), false).unwrap().len(), steps);
    }
}

#[test]
fn dat02_drop_remainder() {
    assert_eq!(sizes(4, true), vec![4, 4]);
    assert_eq!(steps_per_epoch(N, 4, true).unwrap(), 2);
    // 0 batches is an explicit error, never a silent empty epoch.
    let err = batches(N, 32, None, true).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::NoBatches {
                num_samples: 10,
                batch_size: 32,
                drop_remainder: true
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("0 batches"));
    assert!(steps_per_epoch(N, 32, true).is_err());
}

#[test]
fn dat02_each_sample_exactly_once_per_epoch() {
    for batch_size in [1, 2, 3, 4, 5, 7, 10, 32] {
        for shuffle in [None, Some(0), Some(99)] {
            let mut seen: Vec<usize> = batches(N, batch_size, shuffle, false).unwrap().concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..N).collect::<Vec<_>>(), "{batch_size} {shuffle:?}");
        }
    }
}

#[test]
fn dat02_loss_weighting_over_batches() {
    // The batches give the right weights: batch means use the real batch size, and the epoch
    // loss is the per-sample mean (1.6), not the mean of batch means (5/3).
    let losses = [1.0f64, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.0, 3.0];
    let b = batches(N, 4, None, false).unwrap();
    let means: Vec<f64> = b
        .iter()
        .map(|ix| ix.iter().map(|&i| losses[i]).sum::<f64>() / ix.len() as f64)
        .collect();
    assert_eq!(means, vec![1.0, 2.0, 2.0]);
    let weighted: f64 = b
        .iter()
        .zip(&means)
        .map(|(ix, m)| m * ix.len() as f64)
        .sum::<f64>();
    let epoch = weighted / b.iter().map(Vec::len).sum::<usize>() as f64;
    assert!((epoch - 1.6).abs() < 1e-6);
}
