//! Decoded-array cache of image folders.

mod common;

use std::path::{Path, PathBuf};

use edgeflow_data::{
    cached_image_folder, default_cache_dir, load_cifar10_jpg, load_cifar10_jpg_cached,
    load_image_folder, ImageFolderOptions, OnBadImage,
};

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn small_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_cifar_slice("test", 2, dir.path());
    dir
}

#[test]
fn second_load_comes_from_cache_and_matches() {
    let data = small_folder();
    let cache = tempfile::tempdir().unwrap();
    let options = ImageFolderOptions::with_size(32, 32);

    let (first, report1) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    assert!(!report1.from_cache);
    assert_eq!(
        cache_files(cache.path()).len(),
        1,
        "one cache file, no temp file left"
    );
    let (second, report2) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    assert!(report2.from_cache);
    assert_eq!(second, first);
    assert_eq!(first, load_image_folder(data.path(), &options).unwrap().0);

    // Other options give another cache entry.
    let other = ImageFolderOptions {
        on_error: OnBadImage::Skip,
        ..options.clone()
    };
    let (_, report3) = cached_image_folder(data.path(), &other, cache.path()).unwrap();
    assert!(!report3.from_cache);
    assert_eq!(cache_files(cache.path()).len(), 2);
}

#[test]
fn corrupt_or_foreign_cache_file_is_rebuilt() {
    let data = small_folder();
    let cache = tempfile::tempdir().unwrap();
    let options = ImageFolderOptions::with_size(32, 32);
    let (good, _) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    let file = cache_files(cache.path()).pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();

    let damaged: [Vec<u8>; 4] = [
        b"not a cache".to_vec(),
        Vec::new(),
        bytes[..bytes.len() - 10].to_vec(),
        [&bytes[..20], &[0xAB; 16][..], &bytes[36..]].concat(),
    ];
    for content in damaged {
        std::fs::write(&file, content).unwrap();
        let (ds, report) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
        assert!(!report.from_cache);
        assert_eq!(ds, good);
        // Rebuilt and usable again.
        assert!(
            cached_image_folder(data.path(), &options, cache.path())
                .unwrap()
                .1
                .from_cache
        );
    }
}

#[test]
fn changed_source_file_invalidates_cache() {
    let data = small_folder();
    let cache = tempfile::tempdir().unwrap();
    let options = ImageFolderOptions::with_size(32, 32);
    let (before, _) = cached_image_folder(data.path(), &options, cache.path()).unwrap();

    // Replace the first image by another real JPEG (different size in bytes).
    let first = data.path().join("airplane/0000.jpg");
    let replacement = data.path().join("truck/0001.jpg");
    std::fs::copy(&replacement, &first).unwrap();
    let (after, report) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    assert!(!report.from_cache);
    assert_ne!(after.image(0), before.image(0));

    std::fs::remove_file(data.path().join("cat/0000.jpg")).unwrap();
    let (fewer, report) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    assert!(!report.from_cache);
    assert_eq!(fewer.len(), before.len() - 1);
}

#[test]
fn skip_report_survives_the_cache() {
    let data = tempfile::tempdir().unwrap();
    common::copy_files(
        &common::fixture("img_corrupt"),
        &["ok.jpg", "empty.jpg"],
        &data.path().join("a"),
    );
    let cache = tempfile::tempdir().unwrap();
    let options = ImageFolderOptions {
        on_error: OnBadImage::Skip,
        ..Default::default()
    };
    let (_, first) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    let (ds, second) = cached_image_folder(data.path(), &options, cache.path()).unwrap();
    assert!(second.from_cache);
    assert_eq!(ds.len(), 1);
    assert_eq!(second.skipped, first.skipped);
    assert_eq!(second.skipped_count(), 1);
}

#[test]
fn unwritable_cache_dir_still_loads() {
    let data = small_folder();
    let blocker = tempfile::NamedTempFile::new().unwrap();
    // The "cache dir" is a regular file, so the cache cannot be written.
    let (ds, report) = cached_image_folder(
        data.path(),
        &ImageFolderOptions::with_size(32, 32),
        blocker.path(),
    )
    .unwrap();
    assert_eq!(ds.len(), 20);
    assert!(!report.from_cache);
}

#[test]
fn cifar_train_test_through_cache() {
    let root = tempfile::tempdir().unwrap();
    common::copy_cifar_slice("train", 1, &root.path().join("train"));
    common::copy_cifar_slice("test", 1, &root.path().join("test"));
    let cache = tempfile::tempdir().unwrap();
    let direct = load_cifar10_jpg(root.path()).unwrap();
    assert_eq!(
        load_cifar10_jpg_cached(root.path(), cache.path()).unwrap(),
        direct
    );
    assert_eq!(
        load_cifar10_jpg_cached(root.path(), cache.path()).unwrap(),
        direct
    );
    assert_eq!(cache_files(cache.path()).len(), 2);
}

#[test]
fn default_cache_dir_honours_env() {
    // The only test in this binary that reads or writes the variable.
    std::env::set_var("EDGEFLOW_CACHE_DIR", "/some/where");
    assert_eq!(default_cache_dir(), PathBuf::from("/some/where"));
    std::env::set_var("EDGEFLOW_CACHE_DIR", "");
    assert_eq!(
        default_cache_dir(),
        std::env::temp_dir().join("edgeflow-cache")
    );
    std::env::remove_var("EDGEFLOW_CACHE_DIR");
    assert_eq!(
        default_cache_dir(),
        std::env::temp_dir().join("edgeflow-cache")
    );
}
