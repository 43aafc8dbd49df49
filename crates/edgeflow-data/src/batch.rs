//! Index-level pipeline helpers: batching, seeded shuffling and splitting.
//!
//! All randomness comes from [`ChaCha8Rng`] seeded with a `u64`, so the same seed gives the
//! same order on every platform and run.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{DataError, Result};

/// A deterministic random generator for `seed`.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Mixes a base seed with an epoch (or any other counter) into a new seed (SplitMix64), so
/// each epoch gets its own shuffle from one user seed.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `0..n` in a seeded random order.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut seeded_rng(seed));
    indices
}

/// Number of batches one epoch over `n` samples gives.
///
/// # Errors
/// As [`batches`]: batch size 0, or no batch at all.
pub fn steps_per_epoch(n: usize, batch_size: usize, drop_remainder: bool) -> Result<usize> {
    if batch_size == 0 {
        return Err(DataError::invalid("batch_size", "must be at least 1"));
    }
    let steps = if drop_remainder {
        n / batch_size
    } else {
        n.div_ceil(batch_size)
    };
    if steps == 0 {
        return Err(DataError::NoBatches {
            num_samples: n,
            batch_size,
            drop_remainder,
        });
    }
    Ok(steps)
}

/// The sample indices of each batch of one epoch over `n` samples.
///
/// Without `shuffle` the order is `0..n`; with `Some(seed)` it is [`shuffled_indices`]. Every
/// sample appears exactly once, except those of a final partial batch when
/// `drop_remainder` is true. By default (`drop_remainder = false`) the last batch may be
/// smaller than `batch_size`, and `batch_size > n` gives one batch of `n`.
///
/// # Errors
/// [`DataError::InvalidArgument`] for `batch_size == 0`; [`DataError::NoBatches`] when the
/// epoch would have no batch (`n == 0`, or `drop_remainder` with `batch_size > n`), so that
/// training cannot silently do nothing.
pub fn batches(
    n: usize,
    batch_size: usize,
    shuffle: Option<u64>,
    drop_remainder: bool,
) -> Result<Vec<Vec<usize>>> {
    let steps = steps_per_epoch(n, batch_size, drop_remainder)?;
    let order = match shuffle {
        Some(seed) => shuffled_indices(n, seed),
        None => (0..n).collect(),
    };
    Ok(order
        .chunks(batch_size)
        .take(steps)
        .map(<[usize]>::to_vec)
        .collect())
}

/// The first `min(limit, n)` indices of a seeded shuffle of `0..n`: a random sample without
/// replacement, e.g. to train on a slice of a large dataset.
pub fn take_shuffled(n: usize, limit: usize, seed: u64) -> Vec<usize> {
    let mut indices = shuffled_indices(n, seed);
    indices.truncate(limit);
    indices
}

/// Splits `0..n` into (train, validation) after a seeded shuffle; the validation part has
/// `round(n * validation_fraction)` indices. Both parts are in shuffled order.
///
/// # Errors
/// [`DataError::InvalidArgument`] unless `0 <= validation_fraction < 1`.
pub fn train_val_split(
    n: usize,
    validation_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_fraction(validation_fraction)?;
    let mut train = shuffled_indices(n, seed);
    let n_val = val_count(n, validation_fraction);
    let val = train.split_off(n - n_val);
    Ok((train, val))
}

/// Like [`train_val_split`], but splits each class separately so both parts keep the class
/// proportions. Returned indices are sorted.
///
/// # Errors
/// [`DataError::InvalidArgument`] unless `0 <= validation_fraction < 1`.
pub fn stratified_split(
    labels: &[u32],
    validation_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_fraction(validation_fraction)?;
    let mut per_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        per_class.entry(l).or_default().push(i);
    }

    let mut rng = seeded_rng(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for mut members in per_class.into_values() {
        members.shuffle(&mut rng);
        let n_val = val_count(members.len(), validation_fraction);
        val.extend_from_slice(&members[members.len() - n_val..]);
        members.truncate(members.len() - n_val);
        train.extend(members);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((train, val))
}

fn check_fraction(fraction: f64) -> Result<()> {
    if (0.0..1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(DataError::invalid(
            "validation_fraction",
            format!("{fraction} is not in [0, 1)"),
        ))
    }
}

fn val_count(n: usize, fraction: f64) -> usize {
    // The fraction is < 1, so the rounded count never exceeds n.
    ((n as f64 * fraction).round() as usize).min(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_batch_size_is_an_error() {
        assert!(matches!(
            batches(10, 0, None, false),
            Err(DataError::InvalidArgument { .. })
        ));
        assert!(matches!(
            batches(0, 4, None, false),
            Err(DataError::NoBatches { .. })
        ));
    }

    #[test]
    fn shuffle_is_seeded_and_a_permutation() {
        let a = batches(100, 7, Some(42), false).unwrap();
        assert_eq!(a, batches(100, 7, Some(42), false).unwrap());
        assert_ne!(a, batches(100, 7, Some(43), false).unwrap());
        let mut all: Vec<usize> = a.concat();
        assert_ne!(all, (0..100).collect::<Vec<_>>());
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_ne!(epoch_seed(1, 0), epoch_seed(1, 1));
    }

    #[test]
    fn take_shuffled_is_prefix_of_shuffle() {
        let t = take_shuffled(50, 10, 7);
        assert_eq!(t.len(), 10);
        assert_eq!(t[..], shuffled_indices(50, 7)[..10]);
        assert_eq!(take_shuffled(5, 10, 7).len(), 5);
    }

    #[test]
    fn splits() {
        let (train, val) = train_val_split(10, 0.25, 3).unwrap();
        assert_eq!((train.len(), val.len()), (7, 3));
        let mut all = [train, val].concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert!(train_val_split(10, 1.0, 3).is_err());
        assert!(train_val_split(10, f64::NAN, 3).is_err());

        let labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
        let (train, val) = stratified_split(&labels, 0.25, 1).unwrap();
        let val_labels: Vec<u32> = val.iter().map(|&i| labels[i]).collect();
        assert_eq!(val_labels, vec![0, 1, 1]);
        assert_eq!(train.len(), 9);
    }
}
