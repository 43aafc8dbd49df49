//! UCR/UEA `.ts` time series for the `ucr_ts` format: reading, standardising with training
//! statistics, padding to the model's length, and splitting series into forecast inputs and
//! targets.
//!
//! Variable-length series are padded at the end with 0.0 up to the model's `seq_len`, after
//! standardisation, so a model for them should start with `Masking` (mask value 0). Missing
//! values (`?`) become 0.0 after standardisation, i.e. the training mean.

use std::path::Path;

use anyhow::{Context, Result};
use edgeflow_data::{ChannelStats, TimeSeriesDataset};
use edgeflow_nn::{Preprocessing, Sequential};
use edgeflow_tensor::Tensor;

use crate::config::{SeriesTask, UcrSource};
use crate::samples::{map_labels, Samples};
use crate::BadInput;

/// The train and test splits of a `ucr_ts` config, ready for `fit`.
pub struct SeriesTraining {
    /// Training samples.
    pub train: Samples,
    /// Test samples.
    pub test: Samples,
    /// Class names in label order (empty for regression).
    pub class_names: Vec<String>,
    /// The channel statistics as the model stores them (empty mean and std: none).
    pub preprocessing: Preprocessing,
    /// Whether some series were padded to the model's length.
    pub padded: bool,
}

/// `[seq_len, channels]` of a time-series model's input shape.
///
/// # Errors
/// Any other rank.
pub fn series_shape(input_shape: &[usize]) -> Result<(usize, usize)> {
    match *input_shape {
        [len, channels] => Ok((len, channels)),
        _ => Err(BadInput(format!(
            "time series need a model input_shape of [seq_len, channels], got {input_shape:?}"
        ))
        .into()),
    }
}

/// Reads a `.ts` file, checking that its series have `channels` channels.
///
/// # Errors
/// I/O and parse errors (naming the file and line); another channel count.
pub fn read_series(path: &Path, channels: usize) -> Result<TimeSeriesDataset> {
    if !path.is_file() {
        return Err(BadInput(format!(
            "time-series file {} does not exist; the ucr_ts format reads UCR/UEA .ts files \
             such as ../shared/datasets/ucr/BasicMotions/BasicMotions_TRAIN.ts",
            path.display()
        ))
        .into());
    }
    let ds = edgeflow_data::read_ts(path)?;
    if ds.n_channels != channels {
        return Err(BadInput(format!(
            "{}: series have {} channels, the model takes {channels} (input_shape [seq_len, \
             {channels}])",
            path.display(),
            ds.n_channels
        ))
        .into());
    }
    Ok(ds)
}

/// Loads, standardises and shapes both splits of `src` for a model of `input_shape`.
///
/// # Errors
/// Unreadable or malformed files; series that do not fit the model (too long, too short for a
/// forecast, another channel count); unlabelled files for classification.
pub fn load_training(src: &UcrSource, input_shape: &[usize]) -> Result<SeriesTraining> {
    let (input_len, channels) = series_shape(input_shape)?;
    let mut train = read_series(&src.train, channels)?;
    let mut test = read_series(&src.test, channels)?;
    let stats = src.standardize.then(|| ChannelStats::fit(&train));
    standardize(&mut train, stats.as_ref(), &src.train)?;
    standardize(&mut test, stats.as_ref(), &src.test)?;

    let class_names = match src.task {
        SeriesTask::Classification => train.class_names.clone(),
        SeriesTask::Regression { .. } => Vec::new(),
    };
    let padded = [&train, &test]
        .iter()
        .any(|d| d.lengths.iter().any(|&l| l < input_len));
    let shape = |ds: TimeSeriesDataset, path: &Path| match src.task {
        SeriesTask::Classification => classification_samples(ds, input_len, &class_names, path),
        SeriesTask::Regression { target_steps } => {
            forecast_samples(&ds, input_len, target_steps, path)
        }
    };
    let train = shape(train, &src.train)?;
    let test = shape(test, &src.test)?;
    let preprocessing = match stats {
        Some(s) => Preprocessing {
            scale: 1.0,
            mean: s.mean,
            std: s.std,
        },
        None => Preprocessing::default(),
    };
    Ok(SeriesTraining {
        train,
        test,
        class_names,
        preprocessing,
        padded,
    })
}

/// Applies stored channel statistics (if any), then replaces missing values by 0.
///
/// # Errors
/// Statistics for another channel count.
pub fn standardize(
    ds: &mut TimeSeriesDataset,
    stats: Option<&ChannelStats>,
    path: &Path,
) -> Result<()> {
    if let Some(s) = stats {
        s.apply(ds)
            .with_context(|| format!("cannot standardise {}", path.display()))?;
    }
    ds.fill_nan(0.0);
    Ok(())
}

/// The channel statistics a model stores in its preprocessing, if it has any.
pub fn model_stats(model: &Sequential) -> Option<ChannelStats> {
    let pre = &model.metadata.preprocessing;
    (!pre.mean.is_empty()).then(|| ChannelStats {
        mean: pre.mean.clone(),
        std: pre.std.clone(),
    })
}

/// Inputs `[n, input_len, channels]`, each series padded at the end with 0.0.
///
/// # Errors
/// A series longer than `input_len`, named by its position in the file.
pub fn padded_inputs(mut ds: TimeSeriesDataset, input_len: usize, path: &Path) -> Result<Tensor> {
    if let Some((i, &len)) = ds.lengths.iter().enumerate().find(|(_, &l)| l > input_len) {
        return Err(BadInput(format!(
            "{}: series {} has {len} steps, more than the model's seq_len {input_len}; set \
             input_shape[0] to the longest series of train and test (here at least {})",
            path.display(),
            i + 1,
            ds.max_len
        ))
        .into());
    }
    ds.pad_to(input_len)?;
    let (n, channels) = (ds.len(), ds.n_channels);
    Ok(Tensor::from_vec(ds.values, [n, input_len, channels])?)
}

/// Padded inputs and labels mapped to `class_names` (the model's, in label order).
///
/// # Errors
/// As [`padded_inputs`]; an unlabelled file; a class the model does not know.
pub fn classification_samples(
    ds: TimeSeriesDataset,
    input_len: usize,
    class_names: &[String],
    path: &Path,
) -> Result<Samples> {
    let Some(labels) = ds.labels.clone() else {
        return Err(BadInput(format!(
            "{}: the series have no class labels (`@classLabel false`), which classification \
             needs",
            path.display()
        ))
        .into());
    };
    let y = map_labels(
        &labels,
        &ds.class_names,
        class_names,
        &path.display().to_string(),
    )?;
    let x = padded_inputs(ds, input_len, path)?;
    Ok(Samples { x, y, naive: None })
}

/// Splits every series into its first `input_len` steps (the input) and its last
/// `target_steps` steps (the target, flattened to `[target_steps * channels]`); the naive
/// forecast repeats the last input step.
///
/// # Errors
/// A series whose length is not `input_len + target_steps`.
pub fn forecast_samples(
    ds: &TimeSeriesDataset,
    input_len: usize,
    target_steps: usize,
    path: &Path,
) -> Result<Samples> {
    let want = input_len + target_steps;
    if let Some((i, &len)) = ds.lengths.iter().enumerate().find(|(_, &l)| l != want) {
        return Err(BadInput(format!(
            "{}: series {} has {len} steps; a forecast of {target_steps} step(s) from the \
             model's seq_len {input_len} needs series of exactly {want} steps",
            path.display(),
            i + 1
        ))
        .into());
    }
    let ch = ds.n_channels;
    let (mut x, mut y, mut naive) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ds.len() {
        // Every series has `want <= max_len` steps, checked above.
        let s = &ds.series(i).expect("index below len")[..want * ch];
        x.extend_from_slice(&s[..input_len * ch]);
        y.extend_from_slice(&s[input_len * ch..]);
        let last = &s[(input_len - 1) * ch..input_len * ch];
        for _ in 0..target_steps {
            naive.extend_from_slice(last);
        }
    }
    let n = ds.len();
    Ok(Samples {
        x: Tensor::from_vec(x, [n, input_len, ch])?,
        y: Tensor::from_vec(y, [n, target_steps * ch])?,
        naive: Some(Tensor::from_vec(naive, [n, target_steps * ch])?),
    })
}

/// Forecast values back in the file's units: `value * std + mean` of the value's channel
/// (values are laid out `[steps, channels]`).
pub fn to_data_units(values: &[f32], stats: Option<&ChannelStats>) -> Vec<f32> {
    let Some(s) = stats else {
        return values.to_vec();
    };
    let ch = s.mean.len().max(1);
    values
        .iter()
        .enumerate()
        .map(|(j, &v)| v * s.std[j % ch] + s.mean[j % ch])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_series() -> TimeSeriesDataset {
        TimeSeriesDataset {
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0],
            lengths: vec![4, 2],
            labels: Some(vec![1, 0]),
            class_names: vec!["a".into(), "b".into()],
            n_channels: 1,
            max_len: 4,
            problem_name: None,
        }
    }

    #[test]
    fn forecast_split_and_naive() {
        let mut ds = two_series();
        ds.lengths = vec![4, 4];
        ds.values = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let s = forecast_samples(&ds, 3, 1, Path::new("f.ts")).unwrap();
        assert_eq!(s.x.dims(), &[2, 3, 1]);
        assert_eq!(s.y.to_vec_f32().unwrap(), vec![4.0, 8.0]);
        assert_eq!(s.naive.unwrap().to_vec_f32().unwrap(), vec![3.0, 7.0]);
        let err = forecast_samples(&two_series(), 3, 1, Path::new("f.ts")).unwrap_err();
        assert!(format!("{err}").contains("series 2 has 2 steps"), "{err}");
    }

    #[test]
    fn classification_pads_and_refuses_long_series() {
        let names = ["a".to_string(), "b".to_string()];
        let s = classification_samples(two_series(), 5, &names, Path::new("f.ts")).unwrap();
        assert_eq!(s.x.dims(), &[2, 5, 1]);
        assert_eq!(&s.x.to_vec_f32().unwrap()[5..], &[5.0, 6.0, 0.0, 0.0, 0.0]);
        assert_eq!(s.y.to_vec::<i64>().unwrap(), vec![1, 0]);
        let err = classification_samples(two_series(), 3, &names, Path::new("f.ts")).unwrap_err();
        assert!(format!("{err}").contains("series 1 has 4 steps"), "{err}");
    }

    #[test]
    fn data_units_undo_the_standardisation() {
        let stats = ChannelStats {
            mean: vec![1.0, 10.0],
            std: vec![2.0, 5.0],
        };
        assert_eq!(
            to_data_units(&[0.5, 1.0, -1.0, 0.0], Some(&stats)),
            vec![2.0, 15.0, -1.0, 10.0]
        );
        assert_eq!(to_data_units(&[0.5], None), vec![0.5]);
    }
}
