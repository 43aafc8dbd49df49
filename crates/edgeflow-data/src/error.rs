//! The crate's error type.

use std::path::PathBuf;

/// Result alias used throughout `edgeflow-data`.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Everything that can go wrong between files on disk and batches.
///
/// Each variant names what the user needs to fix the input: the file, the record or line, and
/// the expected versus actual value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An I/O operation on a file or folder failed.
    #[error("cannot {action} `{path}`")]
    Io {
        /// What was being done, e.g. "read" or "create".
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A CIFAR-10 binary file does not hold a whole number of 3073-byte records.
    #[error(
        "CIFAR-10 binary file `{path}` is {size} bytes, not a multiple of the 3073-byte record \
         (1 label byte + 3072 pixel bytes): a partial record starts at byte offset {offset}"
    )]
    CifarPartialRecord {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// Byte offset at which the incomplete record starts.
        offset: u64,
    },

    /// A CIFAR-10 record has a label outside `0..=9`.
    #[error(
        "CIFAR-10 binary file `{path}`: record {record} has label {label}, outside the range 0..=9"
    )]
    CifarLabel {
        /// The file.
        path: PathBuf,
        /// Zero-based index of the record.
        record: usize,
        /// The label byte found.
        label: u8,
    },

    /// An image file could not be decoded.
    #[error("cannot decode image `{path}`: {reason}")]
    BadImage {
        /// The image file.
        path: PathBuf,
        /// Why: empty, truncated, unknown format, ...
        reason: String,
    },

    /// An image does not have the expected size and resizing was not requested.
    #[error(
        "image `{path}` is {actual_height}x{actual_width} (height x width) but \
         {expected_height}x{expected_width} was expected; set `resize` to scale it"
    )]
    ImageSize {
        /// The image file.
        path: PathBuf,
        /// Expected height in pixels.
        expected_height: u32,
        /// Expected width in pixels.
        expected_width: u32,
        /// Actual height in pixels.
        actual_height: u32,
        /// Actual width in pixels.
        actual_width: u32,
    },

    /// A dataset folder does not have the `root/<class_name>/<files>` layout.
    #[error("bad dataset folder `{path}`: {problem}; expected the layout {expected}")]
    Layout {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong.
        problem: String,
        /// The expected layout, e.g. `root/<class_name>/<image files>`.
        expected: &'static str,
    },

    /// Two splits of one dataset have different class folders.
    #[error(
        "class folders differ between `{first}` ({first_classes:?}) and `{second}` \
         ({second_classes:?})"
    )]
    ClassMismatch {
        /// The first split's folder.
        first: PathBuf,
        /// Classes found there.
        first_classes: Vec<String>,
        /// The second split's folder.
        second: PathBuf,
        /// Classes found there.
        second_classes: Vec<String>,
    },

    /// A line of a text file (`.ts` series, split list) is malformed.
    #[error("`{path}` line {line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },

    /// A feature of an input file that this crate does not support.
    #[error("`{path}`: {feature} is not supported")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The unsupported feature.
        feature: String,
    },

    /// Batching would produce no batch at all: an epoch would silently do nothing.
    #[error(
        "{num_samples} samples with batch size {batch_size} (drop_remainder = {drop_remainder}) \
         give 0 batches per epoch"
    )]
    NoBatches {
        /// Number of samples.
        num_samples: usize,
        /// Requested batch size.
        batch_size: usize,
        /// Whether a final partial batch would be dropped.
        drop_remainder: bool,
    },

    /// An index is outside the dataset.
    #[error("index {index} is out of range for a dataset of {len} samples")]
    IndexOutOfRange {
        /// The offending index.
        index: usize,
        /// Number of samples in the dataset.
        len: usize,
    },

    /// A buffer or array has the wrong length for the requested layout.
    #[error("{what}: expected {expected} elements, got {actual}")]
    LengthMismatch {
        /// Which buffer.
        what: String,
        /// Expected number of elements.
        expected: usize,
        /// Actual number of elements.
        actual: usize,
    },

    /// An argument is outside its valid range.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// Why it is invalid.
        reason: String,
    },
}

impl DataError {
    /// Builds an [`DataError::Io`] for `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Builds an [`DataError::InvalidArgument`].
    pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            name,
            reason: reason.into(),
        }
    }
}
