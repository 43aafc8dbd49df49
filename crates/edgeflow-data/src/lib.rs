//! `edgeflow-data` owns everything between files on disk and training batches: dataset
//! readers (CIFAR-10 binary, image folders of JPEG/PNG, text folders, UCR/UEA `.ts` time
//! series), a cache of decoded image arrays, tokenizers, and index-level pipeline helpers
//! (batching, seeded shuffling and splits, normalisation, augmentation).
//!
//! It returns plain arrays (`Vec<u8>`, `Vec<f32>`, `Vec<u32>`) with documented layouts, always
//! channels-last; wrapping them into tensors is left to other crates, and this crate depends
//! on no other edgeflow crate.
//!
//! ```no_run
//! use edgeflow_data::{batches, default_cache_dir, load_cifar10_jpg_cached};
//!
//! let (train, _test) = load_cifar10_jpg_cached("../shared/datasets/cifar10-jpg", default_cache_dir())?;
//! let mut input = vec![0.0f32; 32 * train.image_len()];
//! for batch in batches(train.len(), 32, Some(7), false)? {
//!     let input = &mut input[..batch.len() * train.image_len()];
//!     train.fill_batch_f32(&batch, 1.0 / 255.0, input)?; // [batch, 32, 32, 3]
//! }
//! # Ok::<(), edgeflow_data::DataError>(())
//! ```
#![warn(missing_docs)]

mod batch;
mod cache;
mod cifar_bin;
mod error;
mod image_dataset;
mod image_folder;
mod layout;
mod text;
mod timeseries;
mod tokenize;
mod transform;
mod ucr;

pub use batch::{
    batches, epoch_seed, seeded_rng, shuffled_indices, steps_per_epoch, stratified_split,
    take_shuffled, train_val_split,
};
pub use cache::{cached_image_folder, default_cache_dir, load_cifar10_jpg_cached};
pub use cifar_bin::{
    cifar10_class_names, decode_cifar_bytes, load_cifar_bin_dir, read_cifar_bin, write_cifar_bin,
    CIFAR10_CLASSES, CIFAR_RECORD_BYTES, CIFAR_SIDE, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES,
};
pub use error::{DataError, Result};
pub use image_dataset::ImageDataset;
pub use image_folder::{
    decode_image_rgb, load_cifar10_jpg, load_image_folder, read_image_rgb, resize_image_rgb,
    ImageFolderOptions, LoadReport, OnBadImage, RgbImage, SkippedFile, IMAGE_EXTENSIONS,
};
pub use text::{
    load_text_folder, load_text_split, read_split_file, Split, SplitEntry, TextDataset,
};
pub use timeseries::{standardize_train_test, ChannelStats, TimeSeriesDataset, TS_PAD_VALUE};
pub use tokenize::{word_tokens, ByteTokenizer, WordTokenizer, OOV_ID, PAD_ID};
pub use transform::{augment_batch, Augment, Normalization};
pub use ucr::{parse_ts, read_ts};
