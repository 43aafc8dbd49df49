//! Image folders: cases IMG-01 and IMG-02, layout errors, sizes, real CIFAR JPEG slices.

mod common;

use std::path::Path;

use edgeflow_data::{
    decode_image_rgb, load_cifar10_jpg, load_image_folder, read_image_rgb, DataError,
    ImageFolderOptions, OnBadImage, CIFAR10_CLASSES,
};

const MIXED: [&str; 6] = [
    "gray16.png",
    "gray_L8.png",
    "palette_P.png",
    "rgb16.png",
    "rgb8.png",
    "rgba8.png",
];

/// IMG-01 expected u8 HWC values, flattened, in the order of `MIXED` (sorted file names).
const MIXED_EXPECTED: [[u8; 12]; 6] = [
    [128, 128, 128, 255, 255, 255, 1, 1, 1, 0, 0, 0],
    [0, 0, 0, 64, 64, 64, 128, 128, 128, 255, 255, 255],
    [0, 0, 0, 200, 100, 50, 200, 100, 50, 0, 0, 0],
    [128, 1, 255, 0, 128, 1, 255, 255, 255, 18, 52, 86],
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 250, 251, 252],
    [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30],
];

#[test]
fn img01_each_png_decodes_to_rgb_u8() {
    for (name, want) in MIXED.iter().zip(MIXED_EXPECTED) {
        let img = read_image_rgb(common::fixture("img_mixed_png").join(name)).unwrap();
        assert_eq!((img.height, img.width), (2, 2), "{name}");
        assert_eq!(img.pixels, want, "{name}");
    }
}

#[test]
fn img01_folder_of_mixed_pngs() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_files(
        &common::fixture("img_mixed_png"),
        &MIXED,
        &dir.path().join("a"),
    );
    let (ds, report) = load_image_folder(dir.path(), &ImageFolderOptions::with_size(2, 2)).unwrap();
    assert_eq!(report.loaded, 6);
    assert_eq!(ds.len(), 6);
    assert_eq!(ds.image_shape(), [2, 2, 3]);
    for (i, want) in MIXED_EXPECTED.iter().enumerate() {
        assert_eq!(ds.image(i), want, "{}", MIXED[i]);
    }

    // A batch of all six is [6, 2, 2, 3]; scaled floats are u8 / 255.
    let mut batch = vec![0.0f32; 6 * 12];
    ds.fill_batch_f32(&[0, 1, 2, 3, 4, 5], 1.0 / 255.0, &mut batch)
        .unwrap();
    let gray16: Vec<f32> = batch[..12].iter().step_by(3).copied().collect();
    for (got, want) in gray16.iter().zip([0.50196, 1.0, 0.00392, 0.0]) {
        assert!((got - want).abs() < 0.002, "{got} vs {want}");
    }
}

fn corrupt_dir(files: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_files(
        &common::fixture("img_corrupt"),
        files,
        &dir.path().join("a"),
    );
    dir
}

#[test]
fn img02_ok_jpeg_pixels() {
    let img = read_image_rgb(common::fixture("img_corrupt/ok.jpg")).unwrap();
    assert_eq!((img.height, img.width), (16, 16));
    let near = |got: &[u8], want: [u8; 3]| got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 8);
    assert!(
        near(&img.pixels[..3], [0, 0, 128]),
        "{:?}",
        &img.pixels[..3]
    );
    let last = (15 * 16 + 15) * 3;
    assert!(
        near(&img.pixels[last..last + 3], [240, 240, 128]),
        "{:?}",
        &img.pixels[last..]
    );
}

#[test]
fn img02_strict_mode_names_file_and_reason() {
    for (bad, reason) in [
        ("truncated.jpg", "truncated"),
        ("empty.jpg", "empty"),
        ("not_an_image.jpg", "unknown format"),
    ] {
        let dir = corrupt_dir(&["ok.jpg", bad]);
        let err = load_image_folder(dir.path(), &ImageFolderOptions::default()).unwrap_err();
        assert!(matches!(err, DataError::BadImage { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(bad) && msg.contains(reason), "{msg}");
        // Decoding the file directly fails the same way (e.g. a predict command).
        assert!(read_image_rgb(dir.path().join("a").join(bad)).is_err());
    }
}

#[test]
fn img02_skip_mode_reports_skipped_files() {
    let dir = corrupt_dir(&["ok.jpg", "truncated.jpg", "empty.jpg", "not_an_image.jpg"]);
    let options = ImageFolderOptions {
        on_error: OnBadImage::Skip,
        ..Default::default()
    };
    let (ds, report) = load_image_folder(dir.path(), &options).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds.image_shape(), [16, 16, 3]);
    assert_eq!(report.loaded, 1);
    assert_eq!(report.skipped_count(), 3);
    let names: Vec<String> = report
        .skipped
        .iter()
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["empty.jpg", "not_an_image.jpg", "truncated.jpg"]
    );
    assert!(report.skipped[2].reason.contains("truncated"));
}

#[test]
fn all_images_bad_in_skip_mode_is_an_error() {
    let dir = corrupt_dir(&["empty.jpg"]);
    let options = ImageFolderOptions {
        on_error: OnBadImage::Skip,
        ..Default::default()
    };
    let err = load_image_folder(dir.path(), &options).unwrap_err();
    assert!(
        err.to_string().contains("none of its 1 image files"),
        "{err}"
    );
}

fn expect_layout_error(root: &Path, needle: &str) {
    let err = load_image_folder(root, &ImageFolderOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Layout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("root/<class_name>/<image files") && msg.contains(needle),
        "{msg}"
    );
}

#[test]
fn layout_errors_explain_expected_layout() {
    let dir = tempfile::tempdir().unwrap();
    expect_layout_error(&dir.path().join("missing"), "cannot be opened");

    std::fs::write(dir.path().join("loose.png"), b"x").unwrap();
    expect_layout_error(dir.path(), "no class sub-folders");

    std::fs::create_dir(dir.path().join("cat")).unwrap();
    std::fs::write(dir.path().join("cat/readme.txt"), b"x").unwrap();
    expect_layout_error(dir.path(), "class folder `cat` holds no usable file");

    expect_layout_error(&dir.path().join("loose.png"), "not a folder");
}

fn write_png(path: &Path, width: u32, height: u32, rgb: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(width, height, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

#[test]
fn wrong_size_is_an_error_unless_resizing() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a/1.png"), 4, 4, [10, 20, 30]);
    write_png(&dir.path().join("b/2.png"), 6, 3, [40, 50, 60]);

    let err = load_image_folder(dir.path(), &ImageFolderOptions::with_size(4, 4)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::ImageSize { .. }));
    assert!(
        msg.contains("2.png") && msg.contains("3x6") && msg.contains("4x4"),
        "{msg}"
    );

    // Without image_size the first image fixes the size.
    assert!(load_image_folder(dir.path(), &ImageFolderOptions::default()).is_err());

    let options = ImageFolderOptions {
        resize: true,
        ..ImageFolderOptions::with_size(4, 4)
    };
    let (ds, _) = load_image_folder(dir.path(), &options).unwrap();
    assert_eq!(ds.image_shape(), [4, 4, 3]);
    assert_eq!(ds.labels, vec![0, 1]);
    assert!(ds.image(1).chunks(3).all(|px| px == [40, 50, 60]));

    let bad = ImageFolderOptions {
        resize: true,
        ..Default::default()
    };
    assert!(matches!(
        load_image_folder(dir.path(), &bad),
        Err(DataError::InvalidArgument { .. })
    ));
}

#[test]
fn truncated_png_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/x.png");
    write_png(&path, 8, 8, [1, 2, 3]);
    let bytes = std::fs::read(&path).unwrap();
    let err = decode_image_rgb(&bytes[..bytes.len() / 2], &path).unwrap_err();
    assert!(matches!(err, DataError::BadImage { .. }), "{err:?}");
}

#[test]
fn real_cifar_jpeg_slice() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_cifar_slice("train", 3, dir.path());
    let (ds, report) =
        load_image_folder(dir.path(), &ImageFolderOptions::with_size(32, 32)).unwrap();
    assert_eq!(ds.len(), 30);
    assert_eq!(report.skipped_count(), 0);
    assert_eq!(ds.class_names, CIFAR10_CLASSES.to_vec());
    assert_eq!(ds.class_counts(), vec![3; 10]);
    assert_eq!(ds.labels[..4], [0, 0, 0, 1]);
    // Real photos: not blank.
    let first = ds.image(0);
    assert!(first.iter().any(|&v| v != first[0]));
}

#[test]
fn cifar10_jpg_train_test_slices_and_class_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_cifar_slice("train", 2, &dir.path().join("train"));
    common::copy_cifar_slice("test", 1, &dir.path().join("test"));
    let (train, test) = load_cifar10_jpg(dir.path()).unwrap();
    assert_eq!((train.len(), test.len()), (20, 10));
    assert_eq!(test.class_counts(), vec![1; 10]);

    std::fs::remove_dir_all(dir.path().join("test/truck")).unwrap();
    let err = load_cifar10_jpg(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::ClassMismatch { .. }), "{err:?}");
}

#[test]
fn jpeg_cut_inside_scan_data_is_truncated_not_grey_filled() {
    // The JPEG decoder alone fills the missing part of a cut scan with grey; the loader must
    // report it instead (IMG-02 "never silently grey-filled pixels").
    let path = common::dataset("cifar10-jpg/train/cat/0000.jpg");
    let bytes = std::fs::read(&path).unwrap();
    assert!(decode_image_rgb(&bytes, &path).is_ok());
    for cut in [bytes.len() - 2, bytes.len() * 8 / 10] {
        let err = decode_image_rgb(&bytes[..cut], &path).unwrap_err();
        assert!(
            err.to_string().contains("truncated JPEG"),
            "cut {cut}: {err}"
        );
    }
}
