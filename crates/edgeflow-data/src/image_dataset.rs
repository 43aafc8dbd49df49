//! In-memory image dataset: u8 pixels in HWC order plus class labels.

use rayon::prelude::*;

use crate::error::{DataError, Result};

/// Below this many output values a batch is converted on the calling thread: spreading a
/// small copy over the pool costs more than it saves.
const PARALLEL_FILL_MIN: usize = 1 << 18;

/// N images of one size, stored contiguously as u8 in `[n, height, width, channels]` order
/// (channels-last, RGB for colour images), with one class label per image.
///
/// Invariants (checked by [`ImageDataset::new`]): `images.len() == n * height * width *
/// channels`, `labels.len() == n` and every label is `< class_names.len()`. The fields are
/// public for cheap access; code that mutates them must keep those invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDataset {
    /// Pixels of all images, `[n, height, width, channels]`, row-major.
    pub images: Vec<u8>,
    /// Class index of each image.
    pub labels: Vec<u32>,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Channels per pixel (3 for RGB).
    pub channels: usize,
    /// Class names; label `i` means `class_names[i]`.
    pub class_names: Vec<String>,
}

impl ImageDataset {
    /// Builds a dataset after checking its invariants.
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if `images` or `labels` has the wrong length,
    /// [`DataError::InvalidArgument`] if a dimension is 0 or a label is not a class index.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u32>,
        height: usize,
        width: usize,
        channels: usize,
        class_names: Vec<String>,
    ) -> Result<Self> {
        if height == 0 || width == 0 || channels == 0 {
            return Err(DataError::invalid(
                "height/width/channels",
                format!("all must be > 0, got {height}x{width}x{channels}"),
            ));
        }
        let expected = labels.len() * height * width * channels;
        if images.len() != expected {
            return Err(DataError::LengthMismatch {
                what: format!(
                    "pixels of {} images of {height}x{width}x{channels}",
                    labels.len()
                ),
                expected,
                actual: images.len(),
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= class_names.len()) {
            return Err(DataError::invalid(
                "labels",
                format!(
                    "label {bad} is not below the {} class names",
                    class_names.len()
                ),
            ));
        }
        Ok(Self {
            images,
            labels,
            height,
            width,
            channels,
            class_names,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image: `height * width * channels`.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Shape of one image as `[height, width, channels]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.height, self.width, self.channels]
    }

    /// Pixels of image `index`, `[height, width, channels]`.
    ///
    /// # Panics
    /// If `index >= self.len()`, like slice indexing; use [`ImageDataset::get_image`] for a
    /// checked version.
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.image_len();
        &self.images[index * n..(index + 1) * n]
    }

    /// Pixels of image `index`, or `None` if it is out of range.
    pub fn get_image(&self, index: usize) -> Option<&[u8]> {
        let n = self.image_len();
        self.images.get(index * n..(index + 1) * n)
    }

    /// Converts the selected images to f32 (`value * scale`) into `out`, laid out as
    /// `[indices.len(), height, width, channels]`. Use `scale = 1.0 / 255.0` for `[0, 1]`.
    ///
    /// Large batches are converted in parallel.
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if `out.len() != indices.len() * image_len()`,
    /// [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn fill_batch_f32(&self, indices: &[usize], scale: f32, out: &mut [f32]) -> Result<()> {
        let per = self.image_len();
        self.check_indices(indices)?;
        if out.len() != indices.len() * per {
            return Err(DataError::LengthMismatch {
                what: format!("f32 batch buffer for {} images", indices.len()),
                expected: indices.len() * per,
                actual: out.len(),
            });
        }

        let convert = |(dst, &index): (&mut [f32], &usize)| {
            let src = &self.images[index * per..(index + 1) * per];
            for (o, &v) in dst.iter_mut().zip(src) {
                *o = f32::from(v) * scale;
            }
        };
        if out.len() >= PARALLEL_FILL_MIN {
            out.par_chunks_mut(per)
                .zip(indices.par_iter())
                .for_each(convert);
        } else {
            out.chunks_mut(per).zip(indices.iter()).for_each(convert);
        }
        Ok(())
    }

    /// Labels of the selected images, in order.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn batch_labels(&self, indices: &[usize]) -> Result<Vec<u32>> {
        self.check_indices(indices)?;
        Ok(indices.iter().map(|&i| self.labels[i]).collect())
    }

    /// A new dataset holding copies of the selected images (in the given order, repeats
    /// allowed) with the same class names.
    ///
    /// # Errors
    /// [`DataError::IndexOutOfRange`] if an index is `>= len()`.
    pub fn subset(&self, indices: &[usize]) -> Result<ImageDataset> {
        self.check_indices(indices)?;
        let mut images = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
        }
        Ok(ImageDataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
            channels: self.channels,
            class_names: self.class_names.clone(),
        })
    }

    /// Number of images per class, indexed by label (length `class_names.len()`).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Appends all images of `other`.
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if the image shapes or class names differ.
    pub fn append(&mut self, other: &ImageDataset) -> Result<()> {
        if self.image_shape() != other.image_shape() {
            return Err(DataError::invalid(
                "other",
                format!(
                    "image shape {:?} differs from {:?}",
                    other.image_shape(),
                    self.image_shape()
                ),
            ));
        }
        if self.class_names != other.class_names {
            return Err(DataError::invalid(
                "other",
                format!(
                    "class names {:?} differ from {:?}",
                    other.class_names, self.class_names
                ),
            ));
        }
        self.images.extend_from_slice(&other.images);
        self.labels.extend_from_slice(&other.labels);
        Ok(())
    }

    fn check_indices(&self, indices: &[usize]) -> Result<()> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&index) => Err(DataError::IndexOutOfRange {
                index,
                len: self.len(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageDataset {
        // 3 images of 1x2x3; pixel values encode image index and position.
        let images: Vec<u8> = (0..18).collect();
        ImageDataset::new(images, vec![0, 1, 1], 1, 2, 3, vec!["a".into(), "b".into()]).unwrap()
    }

    #[test]
    fn new_checks_invariants() {
        let names = vec!["a".to_string()];
        assert!(matches!(
            ImageDataset::new(vec![0; 5], vec![0], 1, 2, 3, names.clone()),
            Err(DataError::LengthMismatch {
                expected: 6,
                actual: 5,
                ..
            })
        ));
        assert!(ImageDataset::new(vec![0; 6], vec![1], 1, 2, 3, names.clone()).is_err());
        assert!(ImageDataset::new(vec![], vec![], 0, 2, 3, names).is_err());
    }

    #[test]
    fn image_and_fill_batch() {
        let ds = tiny();
        assert_eq!(ds.image(1), &[6, 7, 8, 9, 10, 11]);
        assert_eq!(ds.get_image(3), None);
        let mut out = vec![0.0; 12];
        ds.fill_batch_f32(&[2, 0], 0.5, &mut out).unwrap();
        assert_eq!(&out[..6], &[6.0, 6.5, 7.0, 7.5, 8.0, 8.5]);
        assert_eq!(&out[6..], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
        assert!(matches!(
            ds.fill_batch_f32(&[3], 1.0, &mut out[..6]),
            Err(DataError::IndexOutOfRange { index: 3, len: 3 })
        ));
        assert!(matches!(
            ds.fill_batch_f32(&[0], 1.0, &mut out),
            Err(DataError::LengthMismatch {
                expected: 6,
                actual: 12,
                ..
            })
        ));
    }

    #[test]
    fn fill_batch_parallel_path_matches_serial() {
        let n = 40;
        let per = 32 * 32 * 3;
        let images: Vec<u8> = (0..n * per).map(|i| (i * 7 % 251) as u8).collect();
        let ds = ImageDataset::new(images, vec![0; n], 32, 32, 3, vec!["x".into()]).unwrap();
        let indices: Vec<usize> = (0..n).rev().cycle().take(100).collect();
        let mut out = vec![0.0; indices.len() * per];
        assert!(out.len() >= PARALLEL_FILL_MIN);
        let scale = 1.0 / 255.0;
        ds.fill_batch_f32(&indices, scale, &mut out).unwrap();
        for (b, &i) in indices.iter().enumerate() {
            for (k, &v) in ds.image(i).iter().enumerate() {
                assert_eq!(out[b * per + k], f32::from(v) * scale);
            }
        }
    }

    #[test]
    fn subset_counts_append() {
        let ds = tiny();
        let sub = ds.subset(&[1, 1]).unwrap();
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.image(1), ds.image(1));
        assert_eq!(ds.class_counts(), vec![1, 2]);
        assert!(ds.subset(&[5]).is_err());
        let mut all = ds.clone();
        all.append(&sub).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all.class_counts(), vec![1, 4]);
        assert_eq!(ds.batch_labels(&[2, 0]).unwrap(), vec![1, 0]);
    }
}
