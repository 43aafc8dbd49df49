//! Full CIFAR-10 JPEG counts: 60,000 decodes are too slow for a debug CI run, so this is
//! ignored by default. Run it in release:
//!
//! ```text
//! cargo test --release -p edgeflow-data --test cifar_full -- --ignored
//! ```

mod common;

use edgeflow_data::{load_cifar10_jpg, CIFAR10_CLASSES};

#[test]
#[ignore = "decodes all 60,000 JPEGs; run in release with --ignored"]
fn full_cifar10_jpg_counts() {
    let (train, test) = load_cifar10_jpg(common::dataset("cifar10-jpg")).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.class_names, CIFAR10_CLASSES.to_vec());
    assert_eq!(train.class_counts(), vec![5_000; 10]);
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    assert_eq!(train.image_shape(), [32, 32, 3]);
}
