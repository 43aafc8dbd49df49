//! Opening the dataset a config or a flag names, and feeding it to `fit` as tensors.

use std::path::Path;

use anyhow::{bail, Context, Result};
use edgeflow_data::{Augment, ImageDataset, ImageFolderOptions, Normalization, OnBadImage};
use edgeflow_nn::{Dataset, NnError, Preprocessing};
use edgeflow_tensor::Tensor;

use crate::config::{DataFormat, ImageLoad};
use crate::BadInput;

/// Where to get CIFAR-10, for error messages about a missing data folder.
const CIFAR_HINT: &str = "CIFAR-10 as JPEG folders is in ../shared/datasets/cifar10-jpg of this \
project; the official binary release (cifar-10-batches-bin) is at \
https://www.cs.toronto.edu/~kriz/cifar.html";

/// Loads the train and test splits. Image folders are read at the size of `input_shape`
/// (`[height, width, 3]`), resized to it if `load` says so; a dataset whose images do not have
/// that shape is refused.
pub fn load_splits(
    path: &Path,
    format: DataFormat,
    input_shape: &[usize],
    load: ImageLoad,
) -> Result<(ImageDataset, ImageDataset)> {
    check_folder(path, format, false)?;
    let (train, test) = match format {
        DataFormat::ImageFolder => {
            let train = load_image_split(path, "train", input_shape, load)?;
            let test = load_image_split(path, "test", input_shape, load)?;
            if train.class_names != test.class_names {
                return Err(BadInput(format!(
                    "class folders differ between train/ ({:?}) and test/ ({:?})",
                    train.class_names, test.class_names
                ))
                .into());
            }
            (train, test)
        }
        DataFormat::Cifar10Binary => edgeflow_data::load_cifar_bin_dir(path)
            .map_err(anyhow::Error::from)
            .with_context(|| in_folder(path, format, false))?,
        DataFormat::UcrTs | DataFormat::TextFolder => {
            bail!("format {:?} does not hold images", format.name())
        }
    };
    check_shape(path, &train, input_shape)?;
    Ok((train, test))
}

/// Loads the test split alone (`test/` of an image folder, `test_batch.bin` of CIFAR-10
/// binary files), for evaluation: the training images are neither needed nor decoded.
pub fn load_test_split(
    path: &Path,
    format: DataFormat,
    input_shape: &[usize],
    load: ImageLoad,
) -> Result<ImageDataset> {
    check_folder(path, format, true)?;
    let test = match format {
        DataFormat::ImageFolder => load_image_split(path, "test", input_shape, load)?,
        DataFormat::Cifar10Binary => {
            edgeflow_data::read_cifar_bin(path.join(edgeflow_data::CIFAR_TEST_FILE))
                .map_err(anyhow::Error::from)
                .with_context(|| in_folder(path, format, true))?
        }
        DataFormat::UcrTs | DataFormat::TextFolder => {
            bail!("format {:?} does not hold images", format.name())
        }
    };
    check_shape(path, &test, input_shape)?;
    Ok(test)
}

/// A missing data folder, or a file where a folder was expected, is bad input.
fn check_folder(path: &Path, format: DataFormat, test_only: bool) -> Result<()> {
    let Some(what) = not_a_folder(path) else {
        return Ok(());
    };
    Err(BadInput(format!(
        "data folder {} {what}; expected a folder with {}. {CIFAR_HINT}",
        path.display(),
        expected_layout(format, test_only)
    ))
    .into())
}

/// Why `path` is not a folder ("does not exist", "is a file, not a folder"), or `None` when
/// it is one.
pub fn not_a_folder(path: &Path) -> Option<&'static str> {
    if path.is_dir() {
        None
    } else if path.exists() {
        Some("is a file, not a folder")
    } else {
        Some("does not exist")
    }
}

fn in_folder(path: &Path, format: DataFormat, test_only: bool) -> String {
    format!(
        "cannot load {} (expected {})",
        path.display(),
        expected_layout(format, test_only)
    )
}

fn check_shape(path: &Path, images: &ImageDataset, input_shape: &[usize]) -> Result<()> {
    let shape = [images.height, images.width, images.channels];
    if shape[..] != *input_shape {
        return Err(BadInput(format!(
            "{} holds images of shape {shape:?}, the model takes {input_shape:?}",
            path.display()
        ))
        .into());
    }
    Ok(())
}

/// `root/<split>` at the model's input size, through the decoded-image cache. Skipped files
/// (only with `load.skip_bad_images`) are logged one by one and counted on standard error.
fn load_image_split(
    root: &Path,
    split: &str,
    input_shape: &[usize],
    load: ImageLoad,
) -> Result<ImageDataset> {
    let size = match *input_shape {
        [h, w, 3] => u32::try_from(h).ok().zip(u32::try_from(w).ok()),
        _ => None,
    };
    let Some((height, width)) = size else {
        bail!(
            "image folders hold RGB images, but the model takes {input_shape:?}, not \
             [height, width, 3]"
        );
    };
    let options = ImageFolderOptions {
        resize: load.resize,
        on_error: if load.skip_bad_images {
            OnBadImage::Skip
        } else {
            OnBadImage::Fail
        },
        ..ImageFolderOptions::with_size(height, width)
    };
    let cache = edgeflow_data::default_cache_dir();
    let (images, report) = edgeflow_data::cached_image_folder(root.join(split), &options, &cache)
        .map_err(anyhow::Error::from)
        .with_context(|| in_folder(root, DataFormat::ImageFolder, split == "test"))?;
    if !report.skipped.is_empty() {
        for s in &report.skipped {
            tracing::warn!(file = %s.path.display(), reason = %s.reason, "image skipped");
        }
        eprintln!(
            "{}: skipped {} unreadable image(s), kept {}",
            root.join(split).display(),
            report.skipped.len(),
            images.len()
        );
    }
    Ok(images)
}

/// Guesses the format of a data folder from what it contains.
pub fn detect_format(path: &Path) -> DataFormat {
    if path.join(edgeflow_data::CIFAR_TEST_FILE).is_file() {
        DataFormat::Cifar10Binary
    } else {
        DataFormat::ImageFolder
    }
}

/// What a data folder of `format` holds; with `test_only`, just what evaluation reads.
fn expected_layout(format: DataFormat, test_only: bool) -> &'static str {
    match (format, test_only) {
        (DataFormat::ImageFolder, false) => {
            "train/<class>/*.jpg and test/<class>/*.jpg (PNG also read)"
        }
        (DataFormat::ImageFolder, true) => "test/<class>/*.jpg (PNG also read)",
        (DataFormat::Cifar10Binary, false) => {
            "data_batch_1.bin ... data_batch_5.bin and test_batch.bin"
        }
        (DataFormat::Cifar10Binary, true) => "test_batch.bin",
        (DataFormat::UcrTs, _) => "NAME_TRAIN.ts and NAME_TEST.ts",
        (DataFormat::TextFolder, _) => "<class>/<text files> and a split list",
    }
}

/// An image dataset seen through the model's preprocessing, with optional augmentation of
/// training batches.
pub struct ImageSource<'a> {
    images: &'a ImageDataset,
    scale: f32,
    normalization: Option<Normalization>,
    augment: Option<(Augment, u64)>,
}

impl<'a> ImageSource<'a> {
    /// Wraps `images`, applying `pre` to every batch.
    pub fn new(images: &'a ImageDataset, pre: &Preprocessing) -> Result<Self> {
        let normalization = if pre.mean.is_empty() && pre.std.is_empty() {
            None
        } else {
            Some(Normalization::new(pre.mean.clone(), pre.std.clone())?)
        };
        Ok(ImageSource {
            images,
            scale: pre.scale,
            normalization,
            augment: None,
        })
    }

    /// Augments every training batch (see [`Dataset::train_batch`]) with `augment`, drawn from
    /// `seed` and the step number.
    pub fn with_augment(mut self, augment: Augment, seed: u64) -> Self {
        self.augment = Some((augment, seed));
        self
    }

    /// The f32 input batch `[n, height, width, channels]` of the images at `indices`,
    /// augmented with the seed `augment_seed` when given and augmentation is on.
    pub fn inputs(&self, indices: &[usize], augment_seed: Option<u64>) -> Result<Tensor, NnError> {
        let ds = self.images;
        let mut buf = vec![0.0f32; indices.len() * ds.image_len()];
        let fail = |e: edgeflow_data::DataError| NnError::Dataset(e.to_string());
        match (&self.augment, augment_seed) {
            (Some((augment, _)), Some(seed)) => {
                let raw = edgeflow_data::augment_batch(ds, indices, augment, seed).map_err(fail)?;
                let scale = self.scale;
                buf.iter_mut()
                    .zip(&raw)
                    .for_each(|(o, &v)| *o = f32::from(v) * scale);
            }
            _ => ds
                .fill_batch_f32(indices, self.scale, &mut buf)
                .map_err(fail)?,
        }
        if let Some(n) = &self.normalization {
            n.apply(&mut buf).map_err(fail)?;
        }
        Tensor::from_vec(buf, [indices.len(), ds.height, ds.width, ds.channels])
            .map_err(|e| NnError::Dataset(e.to_string()))
    }
}

impl Dataset for ImageSource<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn batch(&self, indices: &[usize]) -> Result<(Tensor, Tensor), NnError> {
        self.batch_with(indices, None)
    }

    fn train_batch(&self, indices: &[usize], step: u64) -> Result<(Tensor, Tensor), NnError> {
        let seed = self
            .augment
            .as_ref()
            .map(|(_, seed)| edgeflow_data::epoch_seed(*seed, step));
        self.batch_with(indices, seed)
    }
}

impl ImageSource<'_> {
    fn batch_with(
        &self,
        indices: &[usize],
        augment_seed: Option<u64>,
    ) -> Result<(Tensor, Tensor), NnError> {
        // `inputs` checks the indices, so the label lookups below stay in range.
        let x = self.inputs(indices, augment_seed)?;
        let labels: Vec<i64> = indices
            .iter()
            .map(|&i| i64::from(self.images.labels[i]))
            .collect();
        let y = Tensor::from_vec(labels, [indices.len()])
            .map_err(|e| NnError::Dataset(e.to_string()))?;
        Ok((x, y))
    }
}
