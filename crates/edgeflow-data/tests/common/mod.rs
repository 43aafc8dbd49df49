//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The read-only `shared/` folder beside the repository.
pub fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

/// `shared/cases/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    shared().join("cases/fixtures").join(name)
}

/// `shared/datasets/<name>`.
pub fn dataset(name: &str) -> PathBuf {
    shared().join("datasets").join(name)
}

/// Copies `files` from `src_dir` into `dst_dir` (created if needed).
pub fn copy_files(src_dir: &Path, files: &[&str], dst_dir: &Path) {
    std::fs::create_dir_all(dst_dir).unwrap();
    for f in files {
        std::fs::copy(src_dir.join(f), dst_dir.join(f)).unwrap();
    }
}

/// Copies the first `per_class` JPEGs of each class of `cifar10-jpg/<split>` into
/// `dst/<class>/`.
pub fn copy_cifar_slice(split: &str, per_class: usize, dst: &Path) {
    let src = dataset("cifar10-jpg").join(split);
    for class in edgeflow_data::CIFAR10_CLASSES {
        let mut names: Vec<String> = std::fs::read_dir(src.join(class))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let names: Vec<&str> = names.iter().take(per_class).map(String::as_str).collect();
        copy_files(&src.join(class), &names, &dst.join(class));
    }
}
