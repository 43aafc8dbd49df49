//! The official CIFAR-10 binary format (`cifar-10-batches-bin`).
//!
//! A file is a sequence of 3073-byte records: 1 label byte (0..=9), then 3072 pixel bytes as
//! three 32x32 row-major planes, red, then green, then blue. [`read_cifar_bin`] converts the
//! planes to the HWC layout of [`ImageDataset`]; [`write_cifar_bin`] does the reverse.

use std::io::Write;
use std::path::Path;

use crate::error::{DataError, Result};
use crate::image_dataset::ImageDataset;

/// CIFAR-10 image side in pixels.
pub const CIFAR_SIDE: usize = 32;
/// Pixels per CIFAR-10 colour plane (32 * 32).
const PLANE: usize = CIFAR_SIDE * CIFAR_SIDE;
/// Bytes per CIFAR-10 record: 1 label byte + 3 planes.
pub const CIFAR_RECORD_BYTES: usize = 1 + 3 * PLANE;

/// The CIFAR-10 class names in label order (0 = airplane ... 9 = truck).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// File names of the five training batches in a `cifar-10-batches-bin` folder.
pub const CIFAR_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// File name of the test batch in a `cifar-10-batches-bin` folder.
pub const CIFAR_TEST_FILE: &str = "test_batch.bin";

/// Reads one CIFAR-10 binary file into a 32x32x3 HWC dataset with the CIFAR-10 class names.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, [`DataError::CifarPartialRecord`] if its
/// size is not a multiple of 3073 (naming the byte offset of the partial record), and
/// [`DataError::CifarLabel`] if a label byte is above 9 (naming the record index).
pub fn read_cifar_bin(path: impl AsRef<Path>) -> Result<ImageDataset> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    decode_cifar_bytes(&bytes, path)
}

/// Decodes the bytes of a CIFAR-10 binary file; `path` is only used in error messages.
///
/// # Errors
/// As [`read_cifar_bin`], except I/O.
pub fn decode_cifar_bytes(bytes: &[u8], path: &Path) -> Result<ImageDataset> {
    let whole = bytes.len() / CIFAR_RECORD_BYTES * CIFAR_RECORD_BYTES;
    if whole != bytes.len() {
        return Err(DataError::CifarPartialRecord {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            offset: whole as u64,
        });
    }

    let n = bytes.len() / CIFAR_RECORD_BYTES;
    let mut images = vec![0u8; n * 3 * PLANE];
    let mut labels = Vec::with_capacity(n);
    let records = bytes.chunks_exact(CIFAR_RECORD_BYTES);
    for (record_index, (record, dst)) in records.zip(images.chunks_exact_mut(3 * PLANE)).enumerate()
    {
        let (&label, planes) = record.split_first().ok_or_else(|| {
            DataError::invalid("bytes", "empty CIFAR record (internal chunking error)")
        })?;
        if usize::from(label) >= CIFAR10_CLASSES.len() {
            return Err(DataError::CifarLabel {
                path: path.to_path_buf(),
                record: record_index,
                label,
            });
        }
        labels.push(u32::from(label));
        planes_to_hwc(planes, dst);
    }

    ImageDataset::new(
        images,
        labels,
        CIFAR_SIDE,
        CIFAR_SIDE,
        3,
        cifar10_class_names(),
    )
}

/// Loads a `cifar-10-batches-bin` folder: `data_batch_1.bin` .. `data_batch_5.bin` as the
/// training set (50,000 images in the official release) and `test_batch.bin` as the test set.
///
/// # Errors
/// As [`read_cifar_bin`] for each file; a missing file is a [`DataError::Io`] naming it.
pub fn load_cifar_bin_dir(dir: impl AsRef<Path>) -> Result<(ImageDataset, ImageDataset)> {
    let dir = dir.as_ref();
    let mut train = ImageDataset::new(Vec::new(), Vec::new(), 32, 32, 3, cifar10_class_names())?;
    for name in CIFAR_TRAIN_FILES {
        train.append(&read_cifar_bin(dir.join(name))?)?;
    }
    let test = read_cifar_bin(dir.join(CIFAR_TEST_FILE))?;
    tracing::info!(dir = %dir.display(), train = train.len(), test = test.len(), "loaded CIFAR-10 binary");
    Ok((train, test))
}

/// Writes `dataset` in the CIFAR-10 binary format (one record per image).
///
/// # Errors
/// [`DataError::InvalidArgument`] if the images are not 32x32x3 or a label is above 9 (the
/// format stores labels of CIFAR-10 only), [`DataError::Io`] if writing fails.
pub fn write_cifar_bin(path: impl AsRef<Path>, dataset: &ImageDataset) -> Result<()> {
    let path = path.as_ref();
    if dataset.image_shape() != [CIFAR_SIDE, CIFAR_SIDE, 3] {
        return Err(DataError::invalid(
            "dataset",
            format!(
                "CIFAR-10 binary needs 32x32x3 images, got {:?}",
                dataset.image_shape()
            ),
        ));
    }
    if let Some(pos) = dataset.labels.iter().position(|&l| l > 9) {
        return Err(DataError::invalid(
            "dataset",
            format!(
                "image {pos} has label {}, the format allows 0..=9",
                dataset.labels[pos]
            ),
        ));
    }

    let mut bytes = Vec::with_capacity(dataset.len() * CIFAR_RECORD_BYTES);
    let mut record = vec![0u8; CIFAR_RECORD_BYTES];
    for (i, &label) in dataset.labels.iter().enumerate() {
        // Labels were checked to be <= 9 above, so the cast is exact.
        record[0] = label as u8;
        hwc_to_planes(dataset.image(i), &mut record[1..]);
        bytes.extend_from_slice(&record);
    }
    write_file(path, &bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = std::fs::File::create(path).map_err(|e| DataError::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| DataError::io("write", path, e))?;
    file.flush().map_err(|e| DataError::io("write", path, e))
}

/// The CIFAR-10 class names as owned strings.
pub fn cifar10_class_names() -> Vec<String> {
    CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Converts R, G, B planes (`3 * PLANE` bytes) to interleaved HWC (`PLANE * 3` bytes).
fn planes_to_hwc(planes: &[u8], dst: &mut [u8]) {
    let (r, gb) = planes.split_at(PLANE);
    let (g, b) = gb.split_at(PLANE);
    for (((px, &r), &g), &b) in dst.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
        px.copy_from_slice(&[r, g, b]);
    }
}

/// Converts interleaved HWC to R, G, B planes; the inverse of [`planes_to_hwc`].
fn hwc_to_planes(hwc: &[u8], dst: &mut [u8]) {
    let (r, gb) = dst.split_at_mut(PLANE);
    let (g, b) = gb.split_at_mut(PLANE);
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        r[i] = px[0];
        g[i] = px[1];
        b[i] = px[2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_round_trip() {
        let planes: Vec<u8> = (0..3 * PLANE).map(|i| (i % 253) as u8).collect();
        let mut hwc = vec![0; 3 * PLANE];
        planes_to_hwc(&planes, &mut hwc);
        assert_eq!(&hwc[..3], &[planes[0], planes[PLANE], planes[2 * PLANE]]);
        let mut back = vec![0; 3 * PLANE];
        hwc_to_planes(&hwc, &mut back);
        assert_eq!(back, planes);
    }

    #[test]
    fn partial_record_and_bad_label() {
        let p = Path::new("x.bin");
        let err = decode_cifar_bytes(&[0u8; CIFAR_RECORD_BYTES + 5], p).unwrap_err();
        assert!(matches!(
            err,
            DataError::CifarPartialRecord {
                size: 3078,
                offset: 3073,
                ..
            }
        ));
        let mut bytes = vec![0u8; 2 * CIFAR_RECORD_BYTES];
        bytes[CIFAR_RECORD_BYTES] = 200;
        let err = decode_cifar_bytes(&bytes, p).unwrap_err();
        assert!(matches!(
            err,
            DataError::CifarLabel {
                record: 1,
                label: 200,
                ..
            }
        ));
        assert_eq!(decode_cifar_bytes(&[], p).unwrap().len(), 0);
    }
}
