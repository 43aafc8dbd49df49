//! Cache of decoded image folders, so that a second load skips JPEG/PNG decoding.
//!
//! A cache file is named after a 128-bit key hashed from the cache format version, the
//! canonical root path, the loading options, and every listed file's relative path, label,
//! size and modification time; editing, adding or removing an image changes the key. Layout
//! (all integers little-endian):
//!
//! ```text
//! magic "EFIMGC01" | u32 version | u128 key | u64 header_len | header (JSON)
//! | labels: count x u32 | pixels: count x height x width x channels u8
//! ```
//!
//! Files are written to a temporary name and renamed into place, so readers never see a
//! partial file from a concurrent writer. A file whose magic, version, key, header or total
//! length does not match is ignored with a warning and rebuilt. Pixel bytes carry no
//! checksum: bit rot inside them would go unnoticed. Stale cache files are not deleted.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::image_dataset::ImageDataset;
use crate::image_folder::{
    build_from_listing, check_same_classes, list_image_folder, ImageFolderOptions, LoadReport,
    SkippedFile,
};
use crate::layout::Listing;

const MAGIC: &[u8; 8] = b"EFIMGC01";
const VERSION: u32 = 1;
/// Upper bound on the JSON header, so a corrupt length cannot trigger a huge allocation.
const MAX_HEADER: u64 = 64 << 20;

/// The cache folder used when none is given: `$EDGEFLOW_CACHE_DIR` if set and not empty,
/// else `<system temp dir>/edgeflow-cache`.
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("EDGEFLOW_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir().join("edgeflow-cache"),
    }
}

/// Like [`crate::load_image_folder`], but stores the decoded dataset under `cache_dir` and
/// reuses it while no source file changed (see the module docs for the key). The returned
/// report has `from_cache` set on a cache hit. Failing to write the cache is logged and does
/// not fail the load.
///
/// # Errors
/// As [`crate::load_image_folder`]; cache problems are never errors.
pub fn cached_image_folder(
    root: impl AsRef<Path>,
    options: &ImageFolderOptions,
    cache_dir: impl AsRef<Path>,
) -> Result<(ImageDataset, LoadReport)> {
    let listing = list_image_folder(root.as_ref())?;
    let key = cache_key(&listing, options);
    let path = cache_dir.as_ref().join(format!("imgfolder-{key:032x}.efc"));

    if path.is_file() {
        match read_cache(&path, key) {
            Ok((ds, report)) => {
                tracing::debug!(cache = %path.display(), images = ds.len(), "image cache hit");
                return Ok((ds, report));
            }
            Err(e) => {
                tracing::warn!(cache = %path.display(), error = %e, "ignoring bad cache file")
            }
        }
    }

    let (ds, report) = build_from_listing(&listing, options)?;
    if let Err(e) = write_cache(&path, key, &ds, &report) {
        tracing::warn!(cache = %path.display(), error = %e, "cannot write image cache");
    }
    Ok((ds, report))
}

/// [`crate::load_cifar10_jpg`] through the cache: `root/train` and `root/test` at 32x32.
///
/// # Errors
/// As [`crate::load_cifar10_jpg`].
pub fn load_cifar10_jpg_cached(
    root: impl AsRef<Path>,
    cache_dir: impl AsRef<Path>,
) -> Result<(ImageDataset, ImageDataset)> {
    let root = root.as_ref();
    let options = ImageFolderOptions::with_size(32, 32);
    let (train, _) = cached_image_folder(root.join("train"), &options, cache_dir.as_ref())?;
    let (test, _) = cached_image_folder(root.join("test"), &options, cache_dir.as_ref())?;
    check_same_classes(root, &train, &test)?;
    Ok((train, test))
}

/// FNV-1a, 128-bit: stable across runs and Rust versions, unlike `DefaultHasher`.
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_3b0b_bc2a_d16d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// Writes a length-prefixed field so that field boundaries cannot shift.
    fn field(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
}

fn cache_key(listing: &Listing, options: &ImageFolderOptions) -> u128 {
    let mut h = Fnv128(Fnv128::OFFSET);
    h.field(MAGIC);
    h.field(&VERSION.to_le_bytes());
    let root = std::fs::canonicalize(&listing.root).unwrap_or_else(|_| listing.root.clone());
    h.field(root.as_os_str().as_encoded_bytes());
    h.field(
        serde_json::to_string(options)
            .unwrap_or_default()
            .as_bytes(),
    );
    for name in &listing.class_names {
        h.field(name.as_bytes());
    }
    for f in &listing.files {
        let rel = f.path.strip_prefix(&listing.root).unwrap_or(&f.path);
        h.field(rel.as_os_str().as_encoded_bytes());
        h.write(&f.label.to_le_bytes());
        h.write(&f.size.to_le_bytes());
        h.write(&f.mtime_ns.to_le_bytes());
    }
    h.0
}

#[derive(Serialize, Deserialize)]
struct Header {
    count: usize,
    height: usize,
    width: usize,
    channels: usize,
    class_names: Vec<String>,
    skipped: Vec<SkippedFile>,
}

/// Why a cache file was rejected (only ever logged).
#[derive(Debug, thiserror::Error)]
enum CacheError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Data(#[from] DataError),
}

fn read_cache(
    path: &Path,
    key: u128,
) -> std::result::Result<(ImageDataset, LoadReport), CacheError> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::new(file);

    let header_len = read_prefix(&mut r, key)?;
    let mut header = vec![0u8; header_len as usize];
    r.read_exact(&mut header)?;
    let header: Header =
        serde_json::from_slice(&header).map_err(|e| CacheError::Invalid(format!("header: {e}")))?;
    let pixels_len = check_total_length(&header, header_len, file_len)?;

    let mut label_bytes = vec![0u8; header.count * 4];
    r.read_exact(&mut label_bytes)?;
    let labels = label_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut images = vec![0u8; pixels_len];
    r.read_exact(&mut images)?;

    let (h, w, c) = (header.height, header.width, header.channels);
    let ds = ImageDataset::new(images, labels, h, w, c, header.class_names)?;
    let report = LoadReport {
        loaded: ds.len(),
        skipped: header.skipped,
        from_cache: true,
    };
    Ok((ds, report))
}

/// Bytes before the JSON header: magic, version, key, header length.
const PREFIX_LEN: usize = 8 + 4 + 16 + 8;

/// Checks magic, version and key; returns the header length.
fn read_prefix(r: &mut impl Read, key: u128) -> std::result::Result<u64, CacheError> {
    let invalid = |m: &str| CacheError::Invalid(m.to_string());
    let mut prefix = [0u8; PREFIX_LEN];
    r.read_exact(&mut prefix)
        .map_err(|_| invalid("file too short for a cache header"))?;

    let (magic, rest) = prefix.split_at(8);
    let (version, rest) = rest.split_at(4);
    let (stored_key, header_len) = rest.split_at(16);
    if magic != MAGIC || version != VERSION.to_le_bytes() {
        return Err(invalid("not an edgeflow image cache of this version"));
    }
    if stored_key != key.to_le_bytes() {
        return Err(invalid("cache key mismatch"));
    }
    let header_len = u64::from_le_bytes(header_len.try_into().map_err(|_| invalid("header"))?);
    if header_len > MAX_HEADER {
        return Err(invalid("header length out of range"));
    }
    Ok(header_len)
}

/// Checks that the file is exactly as long as its header says; returns the pixel byte count.
/// Uses checked arithmetic: a corrupt header must not overflow or allocate huge buffers.
fn check_total_length(
    header: &Header,
    header_len: u64,
    file_len: u64,
) -> std::result::Result<usize, CacheError> {
    let pixels_len = [header.count, header.height, header.width, header.channels]
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let labels_len = header.count.checked_mul(4);
    let total = match (pixels_len, labels_len) {
        (Some(p), Some(l)) => [header_len, l as u64, p as u64]
            .iter()
            .try_fold(PREFIX_LEN as u64, |acc, &n| acc.checked_add(n)),
        _ => None,
    };
    match (total, pixels_len) {
        (Some(t), Some(p)) if t == file_len => Ok(p),
        _ => Err(CacheError::Invalid(
            "file length does not match its header".into(),
        )),
    }
}

fn write_cache(
    path: &Path,
    key: u128,
    ds: &ImageDataset,
    report: &LoadReport,
) -> std::result::Result<(), CacheError> {
    let dir = path
        .parent()
        .ok_or_else(|| CacheError::Invalid("cache path has no folder".into()))?;
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".tmp-{}-{nanos}.efc", std::process::id()));

    let result = write_cache_file(&tmp, key, ds, report).and_then(|()| {
        std::fs::rename(&tmp, path)?;
        Ok(())
    });
    if result.is_err() {
        // Best effort: a leftover temp file is harmless, it never matches a cache name.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_cache_file(
    path: &Path,
    key: u128,
    ds: &ImageDataset,
    report: &LoadReport,
) -> std::result::Result<(), CacheError> {
    let header = Header {
        count: ds.len(),
        height: ds.height,
        width: ds.width,
        channels: ds.channels,
        class_names: ds.class_names.clone(),
        skipped: report.skipped.clone(),
    };
    let header = serde_json::to_vec(&header).map_err(|e| CacheError::Invalid(e.to_string()))?;

    let mut w = BufWriter::new(File::create(path)?);
    w.write_all(MAGIC)?;
    w.write_all(&VERSION.to_le_bytes())?;
    w.write_all(&key.to_le_bytes())?;
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    for l in &ds.labels {
        w.write_all(&l.to_le_bytes())?;
    }
    w.write_all(&ds.images)?;
    w.into_inner().map_err(|e| e.into_error())?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        let mut h = Fnv128(Fnv128::OFFSET);
        h.write(b"");
        assert_eq!(h.0, Fnv128::OFFSET);
        let mut a = Fnv128(Fnv128::OFFSET);
        a.write(b"a");
        let mut b = Fnv128(Fnv128::OFFSET);
        b.write(b"b");
        assert_ne!(a.0, b.0);
    }

    #[test]
    fn default_dir_ends_in_edgeflow_cache_without_env() {
        if std::env::var_os("EDGEFLOW_CACHE_DIR").is_none() {
            assert!(default_cache_dir().ends_with("edgeflow-cache"));
        }
    }

    #[test]
    fn rejects_foreign_and_truncated_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.efc");
        std::fs::write(&p, b"garbage that is long enough to hold a header......").unwrap();
        assert!(read_cache(&p, 1).is_err());
        let ds = ImageDataset::new(vec![1, 2, 3], vec![0], 1, 1, 3, vec!["c".into()]).unwrap();
        write_cache(&p, 7, &ds, &LoadReport::default()).unwrap();
        let (back, report) = read_cache(&p, 7).unwrap();
        assert_eq!(back, ds);
        assert!(report.from_cache);
        assert!(read_cache(&p, 8).is_err());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_cache(&p, 7).is_err());
    }
}
