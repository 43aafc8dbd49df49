//! Per-channel normalisation and seeded image augmentation on HWC buffers.

use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::batch::{epoch_seed, seeded_rng};
use crate::error::{DataError, Result};
use crate::image_dataset::ImageDataset;

/// Per-channel normalisation `(x - mean[c]) / std[c]` for channels-last f32 data.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Mean of each channel.
    pub mean: Vec<f32>,
    /// Standard deviation of each channel (all > 0).
    pub std: Vec<f32>,
}

impl Normalization {
    /// Builds a normalisation from known statistics (e.g. the usual CIFAR-10 figures).
    ///
    /// # Errors
    /// [`DataError::InvalidArgument`] if the lengths differ, are 0, or a std is not > 0.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.len() != std.len() || mean.is_empty() {
            return Err(DataError::invalid(
                "mean/std",
                format!(
                    "need equal, non-zero lengths, got {} and {}",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if let Some(s) = std.iter().find(|s| !(**s > 0.0 && s.is_finite())) {
            return Err(DataError::invalid(
                "std",
                format!("{s} is not a positive number"),
            ));
        }
        Ok(Self { mean, std })
    }

    /// Fits per-channel mean and population std of `value * scale` over every pixel of `ds`
    /// (exact: computed from per-channel histograms of the u8 values). A channel with zero
    /// spread gets std 1.0. An empty dataset gives mean 0, std 1.
    pub fn fit(ds: &ImageDataset, scale: f32) -> Self {
        let ch = ds.channels;
        if ch == 0 {
            return Self {
                mean: Vec::new(),
                std: Vec::new(),
            };
        }
        let hist = ds
            .images
            .par_chunks(ch * 4096)
            .fold(
                || vec![[0u64; 256]; ch],
                |mut h, chunk| {
                    for px in chunk.chunks_exact(ch) {
                        for (hc, &v) in h.iter_mut().zip(px) {
                            hc[usize::from(v)] += 1;
                        }
                    }
                    h
                },
            )
            .reduce(|| vec![[0u64; 256]; ch], add_histograms);

        let (mean, std) = hist
            .iter()
            .map(|h| histogram_stats(h, f64::from(scale)))
            .unzip();
        Self { mean, std }
    }

    /// Normalises `data` in place; its last dimension must be the channels, so `data.len()`
    /// must be a multiple of `mean.len()`.
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if it is not; [`DataError::InvalidArgument`] if `mean` is
    /// empty or `std` has another length.
    pub fn apply(&self, data: &mut [f32]) -> Result<()> {
        let ch = self.mean.len();
        if ch == 0 || self.std.len() != ch {
            return Err(DataError::invalid(
                "normalization",
                format!(
                    "needs as many means as standard deviations, at least one: got {} and {}",
                    ch,
                    self.std.len()
                ),
            ));
        }
        if !data.len().is_multiple_of(ch) {
            return Err(DataError::LengthMismatch {
                what: format!("channels-last data with {ch} channels"),
                expected: data.len() / ch * ch,
                actual: data.len(),
            });
        }
        let inv: Vec<f32> = self.std.iter().map(|s| 1.0 / s).collect();
        for px in data.chunks_exact_mut(ch) {
            for ((v, &m), &k) in px.iter_mut().zip(&self.mean).zip(&inv) {
                *v = (*v - m) * k;
            }
        }
        Ok(())
    }
}

fn add_histograms(mut a: Vec<[u64; 256]>, b: Vec<[u64; 256]>) -> Vec<[u64; 256]> {
    for (ha, hb) in a.iter_mut().zip(&b) {
        for (x, y) in ha.iter_mut().zip(hb) {
            *x += y;
        }
    }
    a
}

fn histogram_stats(h: &[u64; 256], scale: f64) -> (f32, f32) {
    let n: u64 = h.iter().sum();
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = h
        .iter()
        .enumerate()
        .map(|(v, &k)| v as f64 * k as f64)
        .sum::<f64>()
        / n as f64;
    let var = h
        .iter()
        .enumerate()
        .map(|(v, &k)| (v as f64 - mean).powi(2) * k as f64)
        .sum::<f64>()
        / n as f64;
    let std = var.sqrt() * scale;
    (
        (mean * scale) as f32,
        if std > 1e-12 { std as f32 } else { 1.0 },
    )
}

/// Random crop after zero-padding and random horizontal flip, as used for CIFAR training.
///
/// The image is conceptually padded by `pad` zero pixels on every side, a window of the
/// original size is taken at a uniform random offset in `0..=2 * pad` along each axis, and
/// then, if `flip`, mirrored left-right with probability 1/2. Random draws, in order:
/// row offset, column offset, flip (only when `flip` is set).
///
/// In a config file it is the table `{ pad = 4, flip = true }`; a missing key takes its default
/// (no crop, no flip).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// Zero padding in pixels on each side before cropping (0 = no crop).
    pub pad: usize,
    /// Whether to flip horizontally with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// Augments one `[height, width, channels]` u8 image from `input` into `out`.
    ///
    /// # Errors
    /// [`DataError::LengthMismatch`] if either buffer is not `height * width * channels` long.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        input: &[u8],
        [height, width, channels]: [usize; 3],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<()> {
        let len = height * width * channels;
        for (what, actual) in [
            ("augment input", input.len()),
            ("augment output", out.len()),
        ] {
            if actual != len {
                let what = format!("{what} for {height}x{width}x{channels}");
                return Err(DataError::LengthMismatch {
                    what,
                    expected: len,
                    actual,
                });
            }
        }
        if len == 0 {
            // An image with no pixels has nothing to move or flip.
            return Ok(());
        }
        let dy = rng.gen_range(0..=2 * self.pad);
        let dx = rng.gen_range(0..=2 * self.pad);
        let flip = self.flip && rng.gen_bool(0.5);

        let row = width * channels;
        for (y, dst_row) in out.chunks_exact_mut(row).enumerate() {
            // Source row y + dy - pad, if inside the original image.
            let src_row = (y + dy).checked_sub(self.pad).filter(|&sy| sy < height);
            for (x, dst_px) in dst_row.chunks_exact_mut(channels).enumerate() {
                let xx = if flip { width - 1 - x } else { x };
                let sx = (xx + dx).checked_sub(self.pad).filter(|&sx| sx < width);
                match (src_row, sx) {
                    (Some(sy), Some(sx)) => {
                        let at = (sy * width + sx) * channels;
                        dst_px.copy_from_slice(&input[at..at + channels]);
                    }
                    _ => dst_px.fill(0),
                }
            }
        }
        Ok(())
    }
}

/// Augments the selected images into a new u8 buffer `[indices.len(), height, width,
/// channels]`, in parallel. Sample `k` of the batch uses its own generator seeded from
/// `(seed, k)`, so the result does not depend on the thread count; pass a different seed
/// per batch and epoch (see [`epoch_seed`]).
///
/// # Errors
/// [`DataError::IndexOutOfRange`] if an index is `>= ds.len()`.
pub fn augment_batch(
    ds: &ImageDataset,
    indices: &[usize],
    augment: &Augment,
    seed: u64,
) -> Result<Vec<u8>> {
    let per = ds.image_len();
    if let Some(&index) = indices.iter().find(|&&i| i >= ds.len()) {
        return Err(DataError::IndexOutOfRange {
            index,
            len: ds.len(),
        });
    }
    let mut out = vec![0u8; indices.len() * per];
    out.par_chunks_mut(per.max(1))
        .zip(indices.par_iter())
        .enumerate()
        .try_for_each(|(k, (dst, &i))| {
            let mut rng = seeded_rng(epoch_seed(seed, k as u64));
            augment.apply(ds.image(i), ds.image_shape(), &mut rng, dst)
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    #[test]
    fn empty_statistics_and_empty_images_are_not_panics() {
        let empty = Normalization {
            mean: vec![],
            std: vec![],
        };
        let uneven = Normalization {
            mean: vec![0.5, 0.5],
            std: vec![1.0],
        };
        let mut data = vec![1.0f32; 4];
        assert!(matches!(
            empty.apply(&mut data),
            Err(DataError::InvalidArgument { .. })
        ));
        assert!(matches!(
            uneven.apply(&mut data),
            Err(DataError::InvalidArgument { .. })
        ));

        let aug = Augment { pad: 2, flip: true };
        let mut rng = StepRng::new(0, 1);
        for shape in [[4, 0, 3], [0, 4, 3], [4, 4, 0]] {
            assert!(
                aug.apply(&[], shape, &mut rng, &mut []).is_ok(),
                "{shape:?}"
            );
        }
    }

    /// 2x3 image with 1 channel, values 1..=6.
    const IMG: [u8; 6] = [1, 2, 3, 4, 5, 6];

    #[test]
    fn no_op_augment_copies() {
        let mut out = [0u8; 6];
        let aug = Augment::default();
        aug.apply(&IMG, [2, 3, 1], &mut seeded_rng(0), &mut out)
            .unwrap();
        assert_eq!(out, IMG);
    }

    #[test]
    fn crop_and_flip_semantics() {
        // A generator whose draws are all 0: offset (0, 0) after padding 1 = shift down-right.
        let mut zeros = StepRng::new(0, 0);
        let mut out = [9u8; 6];
        Augment {
            pad: 1,
            flip: false,
        }
        .apply(&IMG, [2, 3, 1], &mut zeros, &mut out)
        .unwrap();
        assert_eq!(out, [0, 0, 0, 0, 1, 2]);

        // Every possible output of pad 1 + flip is a shifted, maybe mirrored, copy.
        for seed in 0..50 {
            let aug = Augment { pad: 1, flip: true };
            aug.apply(&IMG, [2, 3, 1], &mut seeded_rng(seed), &mut out)
                .unwrap();
            assert!(out.iter().all(|v| *v <= 6));
        }
        assert!(Augment::default()
            .apply(&IMG, [2, 2, 1], &mut zeros, &mut out)
            .is_err());
    }

    #[test]
    fn flip_only_mirrors_rows() {
        let aug = Augment { pad: 0, flip: true };
        let mut seen_flip = false;
        for seed in 0..20 {
            let mut out = [0u8; 6];
            aug.apply(&IMG, [2, 3, 1], &mut seeded_rng(seed), &mut out)
                .unwrap();
            assert!(out == IMG || out == [3, 2, 1, 6, 5, 4]);
            seen_flip |= out != IMG;
        }
        assert!(seen_flip);
    }

    #[test]
    fn batch_is_deterministic() {
        let images: Vec<u8> = (0..4 * 8 * 8 * 3).map(|i| (i % 200) as u8 + 1).collect();
        let ds = ImageDataset::new(images, vec![0; 4], 8, 8, 3, vec!["c".into()]).unwrap();
        let aug = Augment { pad: 2, flip: true };
        let a = augment_batch(&ds, &[3, 1, 0], &aug, 5).unwrap();
        assert_eq!(a, augment_batch(&ds, &[3, 1, 0], &aug, 5).unwrap());
        assert_eq!(a.len(), 3 * 192);
        assert!(augment_batch(&ds, &[4], &aug, 5).is_err());
    }

    #[test]
    fn normalization_fit_and_apply() {
        // Two RGB pixels: R 0/255, G 100/100, B 10/30.
        let ds = ImageDataset::new(
            vec![0, 100, 10, 255, 100, 30],
            vec![0],
            1,
            2,
            3,
            vec!["c".into()],
        )
        .unwrap();
        let norm = Normalization::fit(&ds, 1.0 / 255.0);
        assert!((norm.mean[0] - 0.5).abs() < 1e-6 && (norm.std[0] - 0.5).abs() < 1e-6);
        assert!((norm.mean[1] - 100.0 / 255.0).abs() < 1e-6 && norm.std[1] == 1.0);
        assert!((norm.std[2] - 10.0 / 255.0).abs() < 1e-6);
        let mut data = vec![1.0, 0.0, 20.0 / 255.0];
        norm.apply(&mut data).unwrap();
        assert!((data[0] - 1.0).abs() < 1e-5 && (data[2]).abs() < 1e-5);
        assert!(norm.apply(&mut [0.0; 4]).is_err());
        assert!(Normalization::new(vec![0.0], vec![0.0]).is_err());
        assert!(Normalization::new(vec![0.0, 1.0], vec![1.0]).is_err());
    }
}
