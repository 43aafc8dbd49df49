//! CIFAR-10 binary format: case DAT-01 fixtures, writer round trips, bad files.

mod common;

use edgeflow_data::{
    load_cifar_bin_dir, load_image_folder, read_cifar_bin, write_cifar_bin, DataError,
    ImageDataset, ImageFolderOptions, CIFAR10_CLASSES, CIFAR_TEST_FILE, CIFAR_TRAIN_FILES,
};

fn rgb(ds: &ImageDataset, i: usize, y: usize, x: usize) -> [u8; 3] {
    let px = &ds.image(i)[(y * 32 + x) * 3..][..3];
    [px[0], px[1], px[2]]
}

#[test]
fn dat01_two_records_layout_and_pixels() {
    let ds = read_cifar_bin(common::fixture("cifar_bin/two_records.bin")).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.labels, vec![3, 9]);
    assert_eq!(ds.image_shape(), [32, 32, 3]);
    assert_eq!(ds.class_names, CIFAR10_CLASSES.to_vec());

    let record0 = [
        ((0, 0), [0, 255, 7]),
        ((0, 31), [31, 224, 7]),
        ((31, 0), [224, 31, 7]),
        ((5, 7), [167, 88, 7]),
        ((31, 31), [255, 0, 7]),
    ];
    let record1 = [
        ((0, 0), [0, 0, 0]),
        ((0, 31), [0, 248, 0]),
        ((31, 0), [0, 0, 248]),
        ((5, 7), [0, 56, 40]),
        ((31, 31), [0, 248, 248]),
    ];
    for ((y, x), want) in record0 {
        assert_eq!(rgb(&ds, 0, y, x), want, "record 0 at ({y},{x})");
    }
    for ((y, x), want) in record1 {
        assert_eq!(rgb(&ds, 1, y, x), want, "record 1 at ({y},{x})");
    }

    // The whole generating rule, not only the listed pixels.
    for y in 0..32 {
        for x in 0..32 {
            let r = ((32 * y + x) % 256) as u8;
            assert_eq!(rgb(&ds, 0, y, x), [r, 255 - r, 7]);
            assert_eq!(rgb(&ds, 1, y, x), [0, 8 * x as u8, 8 * y as u8]);
        }
    }
}

#[test]
fn dat01_trailing_partial_record_is_an_error() {
    let path = common::fixture("cifar_bin/trailing_partial.bin");
    let err = read_cifar_bin(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CifarPartialRecord {
                size: 6246,
                offset: 6146,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("trailing_partial.bin") && msg.contains("6246"),
        "{msg}"
    );
    assert!(msg.contains("3073") && msg.contains("6146"), "{msg}");
}

#[test]
fn dat01_label_out_of_range_names_record() {
    let err = read_cifar_bin(common::fixture("cifar_bin/label_10.bin")).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CifarLabel {
                record: 1,
                label: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("label_10.bin") && msg.contains("record 1"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_cifar_bin(dir.path().join("nope.bin")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(err.to_string().contains("nope.bin"));
}

#[test]
fn round_trip_real_images() {
    // Binary files written from real CIFAR JPEGs (2 per class) read back identically.
    let dir = tempfile::tempdir().unwrap();
    common::copy_cifar_slice("test", 2, &dir.path().join("jpg"));
    let (ds, _) = load_image_folder(
        dir.path().join("jpg"),
        &ImageFolderOptions::with_size(32, 32),
    )
    .unwrap();
    assert_eq!(ds.len(), 20);

    let bin = dir.path().join("out.bin");
    write_cifar_bin(&bin, &ds).unwrap();
    assert_eq!(std::fs::metadata(&bin).unwrap().len(), 20 * 3073);
    let back = read_cifar_bin(&bin).unwrap();
    assert_eq!(back, ds);
}

#[test]
fn round_trip_fixture_bytes_exactly() {
    let src = common::fixture("cifar_bin/two_records.bin");
    let ds = read_cifar_bin(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.bin");
    write_cifar_bin(&out, &ds).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), std::fs::read(src).unwrap());
}

#[test]
fn load_dir_of_six_files() {
    let dir = tempfile::tempdir().unwrap();
    let ds = read_cifar_bin(common::fixture("cifar_bin/two_records.bin")).unwrap();
    for name in CIFAR_TRAIN_FILES {
        write_cifar_bin(dir.path().join(name), &ds).unwrap();
    }
    let one = ds.subset(&[1]).unwrap();
    write_cifar_bin(dir.path().join(CIFAR_TEST_FILE), &one).unwrap();
    let (train, test) = load_cifar_bin_dir(dir.path()).unwrap();
    assert_eq!(train.len(), 10);
    assert_eq!(train.labels, [3, 9].repeat(5));
    assert_eq!(test, one);

    std::fs::remove_file(dir.path().join("data_batch_4.bin")).unwrap();
    let err = load_cifar_bin_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("data_batch_4.bin"), "{err}");
}

#[test]
fn writer_rejects_what_the_format_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let small = ImageDataset::new(vec![0; 12], vec![0], 2, 2, 3, vec!["a".into()]).unwrap();
    assert!(matches!(
        write_cifar_bin(dir.path().join("a.bin"), &small),
        Err(DataError::InvalidArgument { .. })
    ));
    let names: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let label_10 = ImageDataset::new(vec![0; 3072], vec![10], 32, 32, 3, names).unwrap();
    assert!(write_cifar_bin(dir.path().join("b.bin"), &label_10).is_err());
}
