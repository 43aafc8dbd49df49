//! Time-series classification datasets and per-channel standardisation.

use crate::error::{DataError, Result};

/// Value stored in padding positions (time steps at or after a series' length).
pub const TS_PAD_VALUE: f32 = 0.0;

/// N series of `n_channels` channels, padded to a common length.
///
/// `values` is laid out `[n, max_len, n_channels]` (time-major, channels-last: row `t` of
/// series `i` is the feature vector an RNN consumes at step `t`). Series `i` is valid for
/// `t < lengths[i]`; later steps hold [`TS_PAD_VALUE`]. Missing values (`?` in `.ts` files)
/// are NaN. Use [`TimeSeriesDataset::to_channels_first`] for the `[n, channels, len]` view
/// of sktime / tslearn.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeriesDataset {
    /// Values, `[n, max_len, n_channels]`.
    pub values: Vec<f32>,
    /// Valid length of each series.
    pub lengths: Vec<usize>,
    /// Class index of each series; `None` for unlabelled files.
    pub labels: Option<Vec<u32>>,
    /// Class names in header order (empty for unlabelled files).
    pub class_names: Vec<String>,
    /// Channels (dimensions) per time step.
    pub n_channels: usize,
    /// Padded length of every series.
    pub max_len: usize,
    /// `@problemName` of the source file, if any.
    pub problem_name: Option<String>,
}

impl TimeSeriesDataset {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether the dataset holds no series.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Values of series `index` as `[max_len, n_channels]`, or `None` if out of range.
    pub fn series(&self, index: usize) -> Option<&[f32]> {
        let per = self.max_len * self.n_channels;
        self.values.get(index * per..(index + 1) * per)
    }

    /// Value of series `index` at time `t`, channel `channel`; `None` if out of range.
    pub fn value(&self, index: usize, t: usize, channel: usize) -> Option<f32> {
        if t >= self.max_len || channel >= self.n_channels {
            return None;
        }
        self.series(index)?
            .get(t * self.n_channels + channel)
            .copied()
    }

    /// The values transposed to `[n, n_channels, max_len]` (channels-first).
    pub fn to_channels_first(&self) -> Vec<f32> {
        let (len, ch) = (self.max_len, self.n_channels);
        let mut out = vec![TS_PAD_VALUE; self.values.len()];
        for (src, dst) in self
            .values
            .chunks_exact(len * ch)
            .zip(out.chunks_exact_mut(len * ch))
        {
            for t in 0..len {
                for c in 0..ch {
                    dst[c * len + t] = src[t * ch + c];
                }
            }
        }
        out
    }

    /// Validity mask `[n, max_len]`: 1.0 where `t < lengths[i]`, else 0.0.
    pub fn mask(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len() * self.max_len];
        for (row, &l) in out.chunks_exact_mut(self.max_len.max(1)).zip(&self.lengths) {
            row[..l.min(self.max_len)].fill(1.0);
        }
        out
    }

    /// Number of series per class, or `None` for unlabelled data.
    pub fn class_counts(&self) -> Option<Vec<usize>> {
        let labels = self.labels.as_ref()?;
        let mut counts = vec![0; self.class_names.len()];
        for &l in labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        Some(counts)
    }

    /// Pads every series to `new_len` steps, e.g. to give a test set the train set's length.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if `new_len` is shorter than the current `max_len`.
    pub fn pad_to(&mut self, new_len: usize) -> Result<()> {
        if new_len < self.max_len {
            return Err(DataError::invalid(
                "new_len",
                format!(
                    "{new_len} is shorter than the current length {}",
                    self.max_len
                ),
            ));
        }
        let ch = self.n_channels;
        let mut values = vec![TS_PAD_VALUE; self.len() * new_len * ch];
        for (src, dst) in self
            .values
            .chunks_exact((self.max_len * ch).max(1))
            .zip(values.chunks_exact_mut((new_len * ch).max(1)))
        {
            dst[..src.len()].copy_from_slice(src);
        }
        self.values = values;
        self.max_len = new_len;
        Ok(())
    }

    /// Replaces NaN in valid positions (missing values) by `value`.
    pub fn fill_nan(&mut self, value: f32) {
        for v in self.values.iter_mut().filter(|v| v.is_nan()) {
            *v = value;
        }
    }

    /// Calls `f(channel, value)` for every valid, non-NaN value.
    fn for_each_valid(&self, mut f: impl FnMut(usize, f32)) {
        let ch = self.n_channels;
        for (i, &l) in self.lengths.iter().enumerate() {
            let Some(valid) = self.series(i).and_then(|s| s.get(..l * ch)) else {
                continue;
            };
            for (k, &v) in valid.iter().enumerate() {
                if !v.is_nan() {
                    f(k % ch, v);
                }
            }
        }
    }
}

/// Per-channel mean and standard deviation, fitted on a training set and applied to every
/// split, so that test data is scaled with training statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Population standard deviation of each channel; 1.0 where it is (near) zero or the
    /// channel has no value, so a constant channel is only centred.
    pub std: Vec<f32>,
}

impl ChannelStats {
    /// Fits the statistics on valid (`t < length`), non-NaN values only: padding and missing
    /// values do not bias them.
    pub fn fit(ds: &TimeSeriesDataset) -> Self {
        let ch = ds.n_channels;
        let (mut n, mut sum) = (vec![0u64; ch], vec![0f64; ch]);
        ds.for_each_valid(|c, v| {
            n[c] += 1;
            sum[c] += f64::from(v);
        });
        let mean: Vec<f64> = sum
            .iter()
            .zip(&n)
            .map(|(&s, &k)| if k > 0 { s / k as f64 } else { 0.0 })
            .collect();

        // Second pass on centred values: more accurate than sum of squares.
        let mut sq = vec![0f64; ch];
        ds.for_each_valid(|c, v| sq[c] += (f64::from(v) - mean[c]).powi(2));
        let std = sq
            .iter()
            .zip(&n)
            .map(|(&s, &k)| if k > 0 { (s / k as f64).sqrt() } else { 0.0 })
            .map(|s| if s > 1e-12 { s as f32 } else { 1.0 })
            .collect();
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std,
        }
    }

    /// Standardises `ds` in place: `(v - mean) / std` on valid positions; padding keeps
    /// [`TS_PAD_VALUE`] and NaN stays NaN.
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if `ds` has a different number of channels.
    pub fn apply(&self, ds: &mut TimeSeriesDataset) -> Result<()> {
        let ch = ds.n_channels;
        if ch != self.mean.len() {
            return Err(DataError::LengthMismatch {
                what: "channels of the dataset versus the fitted statistics".into(),
                expected: self.mean.len(),
                actual: ch,
            });
        }
        let per = ds.max_len * ch;
        for (i, &l) in ds.lengths.iter().enumerate() {
            // A length beyond max_len breaks the invariant; such a series is left alone.
            let range = i * per..i * per + l * ch;
            let Some(series) = ds.values.get_mut(range).filter(|_| l <= ds.max_len) else {
                continue;
            };
            for step in series.chunks_exact_mut(ch) {
                for ((v, &m), &s) in step.iter_mut().zip(&self.mean).zip(&self.std) {
                    *v = (*v - m) / s;
                }
            }
        }
        Ok(())
    }
}

/// Fits [`ChannelStats`] on `train` and applies them to `train` and `test`.
///
/// # Errors
/// As [`ChannelStats::apply`] if the two sets have different channel counts.
pub fn standardize_train_test(
    train: &mut TimeSeriesDataset,
    test: &mut TimeSeriesDataset,
) -> Result<ChannelStats> {
    let stats = ChannelStats::fit(train);
    stats.apply(train)?;
    stats.apply(test)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two series of 2 channels, lengths 3 and 2 (last step of series 1 is padding).
    fn sample() -> TimeSeriesDataset {
        TimeSeriesDataset {
            values: vec![
                1.0,
                10.0,
                2.0,
                f32::NAN,
                3.0,
                30.0,
                4.0,
                40.0,
                5.0,
                50.0,
                0.0,
                0.0,
            ],
            lengths: vec![3, 2],
            labels: Some(vec![0, 1]),
            class_names: vec!["a".into(), "b".into()],
            n_channels: 2,
            max_len: 3,
            problem_name: None,
        }
    }

    #[test]
    fn views_and_mask() {
        let ds = sample();
        assert_eq!(ds.value(1, 1, 1), Some(50.0));
        assert_eq!(ds.value(1, 3, 0), None);
        let cf = ds.to_channels_first();
        assert_eq!(&cf[..3], &[1.0, 2.0, 3.0]);
        assert_eq!(&cf[9..], &[40.0, 50.0, 0.0]);
        assert_eq!(ds.mask(), vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
        assert_eq!(ds.class_counts(), Some(vec![1, 1]));
    }

    #[test]
    fn pad_to_keeps_values() {
        let mut ds = sample();
        ds.pad_to(4).unwrap();
        assert_eq!(ds.max_len, 4);
        assert_eq!(ds.value(1, 1, 0), Some(5.0));
        assert_eq!(ds.value(1, 3, 1), Some(0.0));
        assert!(ds.pad_to(2).is_err());
    }

    #[test]
    fn stats_ignore_nan_and_padding() {
        let mut ds = sample();
        let stats = ChannelStats::fit(&ds);
        // channel 0: 1,2,3,4,5 -> mean 3, var 2; channel 1: 10,30,40,50 -> mean 32.5
        assert!((stats.mean[0] - 3.0).abs() < 1e-6);
        assert!((stats.std[0] - 2f32.sqrt()).abs() < 1e-6);
        assert!((stats.mean[1] - 32.5).abs() < 1e-5);
        stats.apply(&mut ds).unwrap();
        assert!((ds.value(0, 0, 0).unwrap() + 2.0 / 2f32.sqrt()).abs() < 1e-6);
        assert!(ds.value(0, 1, 1).unwrap().is_nan());
        assert_eq!(ds.value(1, 2, 0), Some(0.0));
        let mut other = sample();
        other.n_channels = 1;
        assert!(stats.apply(&mut other).is_err());
    }
}
