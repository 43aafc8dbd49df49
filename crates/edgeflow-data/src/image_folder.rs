//! Image-folder datasets (`root/<class_name>/<image files>`, like Keras
//! `image_dataset_from_directory`) and JPEG/PNG decoding to RGB u8.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::image_dataset::ImageDataset;
use crate::layout::{has_extension, list_class_folders, Listing};

/// File extensions (case-insensitive) picked up in class folders; other files are ignored.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The layout named in error messages.
pub(crate) const IMAGE_LAYOUT: &str = "root/<class_name>/<image files (.jpg, .jpeg, .png)>";

/// What to do with an image file that cannot be read or decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnBadImage {
    /// Stop with an error naming the file and the reason (the default).
    #[default]
    Fail,
    /// Leave the image out, log a warning, and list it in [`LoadReport::skipped`].
    Skip,
}

/// Options of [`load_image_folder`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageFolderOptions {
    /// Expected image size as `(height, width)`. `None`: every image must have the size of
    /// the first one.
    pub image_size: Option<(u32, u32)>,
    /// Resize images of another size to `image_size` with bilinear filtering. If false, an
    /// image of another size is a [`DataError::ImageSize`] error (whatever `on_error` says:
    /// it is a configuration problem, not a damaged file). Needs `image_size`.
    pub resize: bool,
    /// What to do with files that cannot be read or decoded.
    pub on_error: OnBadImage,
}

impl ImageFolderOptions {
    /// Options expecting `height x width` images, no resizing, failing on bad files.
    pub fn with_size(height: u32, width: u32) -> Self {
        Self {
            image_size: Some((height, width)),
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        match self.image_size {
            None if self.resize => Err(DataError::invalid(
                "resize",
                "resizing needs `image_size` to be set",
            )),
            Some((h, w)) if h == 0 || w == 0 => Err(DataError::invalid(
                "image_size",
                format!("{h}x{w} has a zero side"),
            )),
            _ => Ok(()),
        }
    }
}

/// A file left out of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it was left out.
    pub reason: String,
}

/// What happened while loading an image folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    /// Number of images in the returned dataset.
    pub loaded: usize,
    /// Files left out under [`OnBadImage::Skip`], in listing order.
    pub skipped: Vec<SkippedFile>,
    /// Whether the dataset came from the decoded-array cache.
    pub from_cache: bool,
}

impl LoadReport {
    /// Number of skipped files.
    pub fn skipped_count(&self) -> usize {
        self.skipped.len()
    }
}

/// A decoded RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
    /// Pixels, `[height, width, 3]`, RGB u8.
    pub pixels: Vec<u8>,
}

/// Reads and decodes a JPEG or PNG file to RGB u8 (see [`decode_image_rgb`]).
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, [`DataError::BadImage`] if it cannot be
/// decoded.
pub fn read_image_rgb(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    decode_image_rgb(&bytes, path)
}

/// Decodes JPEG or PNG bytes to RGB u8; `path` is only used in error messages.
///
/// The format is guessed from the content, not the extension. Conversions: grey is copied to
/// R, G and B; alpha is dropped (no compositing); palettes are expanded; 16-bit samples keep
/// their high byte (`v >> 8`). A JPEG without its end-of-image marker is reported as
/// truncated rather than decoded with filler pixels.
///
/// # Errors
/// [`DataError::BadImage`] naming the reason: empty file, unknown format, truncated, or the
/// decoder's message.
pub fn decode_image_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    let bad = |reason: String| DataError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(bad("empty file (0 bytes)".into()));
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png)) => f,
        Ok(other) => {
            return Err(bad(format!(
                "unsupported format {other:?} (JPEG or PNG needed)"
            )))
        }
        Err(_) => return Err(bad("unknown format: neither JPEG nor PNG".into())),
    };
    if format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
        return Err(bad(format!(
            "truncated JPEG: no end-of-image marker in {} bytes",
            bytes.len()
        )));
    }

    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| bad(format!("{format:?} decoding failed: {e}")))?;
    let (width, height) = (decoded.width(), decoded.height());
    Ok(RgbImage {
        height,
        width,
        pixels: to_rgb8(decoded),
    })
}

/// Converts any decoded image to RGB u8 with the rules of [`decode_image_rgb`].
fn to_rgb8(img: DynamicImage) -> Vec<u8> {
    let high = |v: u16| (v >> 8) as u8;
    match img {
        DynamicImage::ImageRgb8(b) => b.into_raw(),
        DynamicImage::ImageLuma16(b) => b.as_raw().iter().flat_map(|&v| [high(v); 3]).collect(),
        DynamicImage::ImageLumaA16(b) => b
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [high(p[0]); 3])
            .collect(),
        DynamicImage::ImageRgb16(b) => b.as_raw().iter().map(|&v| high(v)).collect(),
        DynamicImage::ImageRgba16(b) => b
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [high(p[0]), high(p[1]), high(p[2])])
            .collect(),
        // 8-bit grey, grey+alpha and RGBA: image's conversion replicates grey and drops alpha.
        other => other.into_rgb8().into_raw(),
    }
}

/// Whether a JPEG stream has an end-of-image marker after its first start-of-scan.
///
/// Walks the marker segments up to the first SOS (so a JPEG thumbnail inside an EXIF segment
/// cannot fool it), then looks for `FF D9`; inside entropy-coded data `FF` is always followed
/// by `00` or a restart marker, so the first `FF D9` there is the real end. Streams whose
/// structure it does not understand are left to the decoder (returns true).
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let mut i = 2;
    loop {
        let (Some(&ff), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        if ff != 0xFF {
            return true;
        }
        match marker {
            0xFF => i += 1,
            0xDA => break,
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => i += 2,
            _ => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 2), bytes.get(i + 3)) else {
                    return false;
                };
                i += 2 + usize::from(u16::from_be_bytes([hi, lo]));
            }
        }
    }
    bytes
        .get(i..)
        .is_some_and(|rest| rest.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Loads `root/<class_name>/<image files>` into an [`ImageDataset`].
///
/// Class names are the sorted sub-folder names (label = position); files are sorted by name
/// within a class; only `.jpg`, `.jpeg` and `.png` files (any case) are read, other files and
/// names starting with `.` are ignored. Images are decoded in parallel with the rules of
/// [`decode_image_rgb`].
///
/// # Errors
/// [`DataError::Layout`] if `root` is missing, has no class sub-folder, or a class folder
/// has no image file; [`DataError::BadImage`] / [`DataError::Io`] for an unreadable image
/// under [`OnBadImage::Fail`] (the first in listing order); [`DataError::ImageSize`] for an
/// image of the wrong size; [`DataError::InvalidArgument`] for inconsistent options.
pub fn load_image_folder(
    root: impl AsRef<Path>,
    options: &ImageFolderOptions,
) -> Result<(ImageDataset, LoadReport)> {
    options.validate()?;
    let listing = list_image_folder(root.as_ref())?;
    build_from_listing(&listing, options)
}

/// Lists an image folder without decoding anything.
pub(crate) fn list_image_folder(root: &Path) -> Result<Listing> {
    list_class_folders(root, IMAGE_LAYOUT, |p| has_extension(p, &IMAGE_EXTENSIONS))
}

/// Decodes every listed file and assembles the dataset.
pub(crate) fn build_from_listing(
    listing: &Listing,
    options: &ImageFolderOptions,
) -> Result<(ImageDataset, LoadReport)> {
    options.validate()?;
    let decoded: Vec<Result<RgbImage>> = listing
        .files
        .par_iter()
        .map(|f| decode_for_dataset(&f.path, options))
        .collect();
    let parts = assemble(listing, decoded, options)?;

    let Some((h, w)) = parts.size else {
        return Err(nothing_decoded(listing, &parts.report));
    };
    let mut report = parts.report;
    report.loaded = parts.labels.len();
    tracing::info!(
        root = %listing.root.display(),
        loaded = report.loaded,
        skipped = report.skipped_count(),
        "loaded image folder"
    );
    let (h, w) = (h as usize, w as usize);
    let ds = ImageDataset::new(
        parts.images,
        parts.labels,
        h,
        w,
        3,
        listing.class_names.clone(),
    )?;
    Ok((ds, report))
}

/// Decoded images gathered in listing order.
struct Assembled {
    images: Vec<u8>,
    labels: Vec<u32>,
    /// (height, width) of every image; `None` if no image was decoded and none was expected.
    size: Option<(u32, u32)>,
    report: LoadReport,
}

/// Concatenates decoded images in listing order, applying `on_error` and the size check;
/// with `OnBadImage::Fail` the first failure in listing order is returned, so the error does
/// not depend on thread timing.
fn assemble(
    listing: &Listing,
    decoded: Vec<Result<RgbImage>>,
    options: &ImageFolderOptions,
) -> Result<Assembled> {
    let mut out = Assembled {
        images: Vec::new(),
        labels: Vec::new(),
        size: options.image_size,
        report: LoadReport::default(),
    };
    for (file, result) in listing.files.iter().zip(decoded) {
        let img = match result {
            Ok(img) => img,
            Err(e @ (DataError::BadImage { .. } | DataError::Io { .. }))
                if options.on_error == OnBadImage::Skip =>
            {
                tracing::warn!(file = %file.path.display(), error = %e, "skipping bad image");
                let skipped = SkippedFile {
                    path: file.path.clone(),
                    reason: e.to_string(),
                };
                out.report.skipped.push(skipped);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (eh, ew) = *out.size.get_or_insert((img.height, img.width));
        if (img.height, img.width) != (eh, ew) {
            return Err(size_error(&file.path, (eh, ew), (img.height, img.width)));
        }
        out.images.extend_from_slice(&img.pixels);
        out.labels.push(file.label);
    }
    Ok(out)
}

fn nothing_decoded(listing: &Listing, report: &LoadReport) -> DataError {
    let first = report
        .skipped
        .first()
        .map_or(String::new(), |s| format!("; first: {}", s.reason));
    DataError::Layout {
        path: listing.root.clone(),
        problem: format!(
            "none of its {} image files could be decoded{first}",
            listing.files.len()
        ),
        expected: IMAGE_LAYOUT,
    }
}

fn size_error(path: &Path, expected: (u32, u32), actual: (u32, u32)) -> DataError {
    DataError::ImageSize {
        path: path.to_path_buf(),
        expected_height: expected.0,
        expected_width: expected.1,
        actual_height: actual.0,
        actual_width: actual.1,
    }
}

/// Reads and decodes one file, resizing it if the options ask for it.
fn decode_for_dataset(path: &Path, options: &ImageFolderOptions) -> Result<RgbImage> {
    let img = read_image_rgb(path)?;
    match options.image_size {
        Some((h, w)) if options.resize && (img.height, img.width) != (h, w) => {
            resize_image_rgb(img, h, w, path)
        }
        _ => Ok(img),
    }
}

/// Scales `img` to `height x width` with bilinear filtering (an image already of that size is
/// returned as it is). `path` names the image in errors.
///
/// # Errors
/// [`DataError::InvalidArgument`] for a zero side; [`DataError::BadImage`] if the pixel buffer
/// does not hold `img.height x img.width x 3` bytes.
pub fn resize_image_rgb(img: RgbImage, height: u32, width: u32, path: &Path) -> Result<RgbImage> {
    if height == 0 || width == 0 {
        return Err(DataError::invalid(
            "resize",
            format!("{height}x{width} has a zero side"),
        ));
    }
    if (img.height, img.width) == (height, width) {
        return Ok(img);
    }
    resize_rgb(img, height, width).ok_or_else(|| DataError::BadImage {
        path: path.to_path_buf(),
        reason: "decoded pixel buffer does not match its size".into(),
    })
}

/// Bilinear resize; `None` only if the pixel buffer does not match the stated size.
fn resize_rgb(img: RgbImage, height: u32, width: u32) -> Option<RgbImage> {
    let buf = image::RgbImage::from_raw(img.width, img.height, img.pixels)?;
    let resized =
        image::imageops::resize(&buf, width, height, image::imageops::FilterType::Triangle);
    Some(RgbImage {
        height,
        width,
        pixels: resized.into_raw(),
    })
}

/// Loads `root/train` and `root/test` of a CIFAR-10 JPEG folder (32x32, see
/// [`load_image_folder`]); both must have the same class folders.
///
/// # Errors
/// As [`load_image_folder`], plus [`DataError::ClassMismatch`] if the class folders differ.
pub fn load_cifar10_jpg(root: impl AsRef<Path>) -> Result<(ImageDataset, ImageDataset)> {
    let root = root.as_ref();
    let options = ImageFolderOptions::with_size(32, 32);
    let (train, _) = load_image_folder(root.join("train"), &options)?;
    let (test, _) = load_image_folder(root.join("test"), &options)?;
    check_same_classes(root, &train, &test)?;
    Ok((train, test))
}

/// Checks that a train and a test split under `root` have the same class names.
pub(crate) fn check_same_classes(
    root: &Path,
    train: &ImageDataset,
    test: &ImageDataset,
) -> Result<()> {
    if train.class_names == test.class_names {
        return Ok(());
    }
    Err(DataError::ClassMismatch {
        first: root.join("train"),
        first_classes: train.class_names.clone(),
        second: root.join("test"),
        second_classes: test.class_names.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_end_marker_walk() {
        // SOI, APP0 (length 4: 2 payload bytes), SOS (length 2), data, EOI.
        let ok = [
            0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 1, 2, 0xFF, 0xDA, 0, 2, 9, 0xFF, 0, 0xFF, 0xD9,
        ];
        assert!(jpeg_has_end_marker(&ok));
        assert!(!jpeg_has_end_marker(&ok[..ok.len() - 1]));
        assert!(!jpeg_has_end_marker(&ok[..5]));
        // An EOI hidden inside an APP segment does not count.
        let hidden = [
            0xFF, 0xD8, 0xFF, 0xE1, 0, 4, 0xFF, 0xD9, 0xFF, 0xDA, 0, 2, 9, 9,
        ];
        assert!(!jpeg_has_end_marker(&hidden));
    }

    #[test]
    fn sixteen_bit_keeps_high_byte() {
        let buf = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![0x80FF, 0x0100])
            .unwrap();
        assert_eq!(
            to_rgb8(DynamicImage::ImageLuma16(buf)),
            vec![128, 128, 128, 1, 1, 1]
        );
    }

    #[test]
    fn bad_bytes_are_named() {
        let p = Path::new("a/b.png");
        let msg = decode_image_rgb(&[], p).unwrap_err().to_string();
        assert!(msg.contains("a/b.png") && msg.contains("empty"), "{msg}");
        let msg = decode_image_rgb(b"hello world", p).unwrap_err().to_string();
        assert!(msg.contains("unknown format"), "{msg}");
    }

    #[test]
    fn options_validation() {
        let opts = ImageFolderOptions {
            resize: true,
            ..Default::default()
        };
        assert!(matches!(
            opts.validate(),
            Err(DataError::InvalidArgument { .. })
        ));
        assert!(ImageFolderOptions::with_size(0, 3).validate().is_err());
        assert!(ImageFolderOptions::with_size(2, 3).validate().is_ok());
    }
}
