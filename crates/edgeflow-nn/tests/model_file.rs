//! The single-file model format: exact round trips, refusal of damaged and foreign files,
//! and atomic saves.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use edgeflow_nn::layers::{PaddingConfig, Pair};
use edgeflow_nn::{
    Activation, BatchNormalizationConfig, Conv2DConfig, DenseConfig, DropoutConfig, FitOptions,
    LayerConfig, Loss, Metric, ModelMetadata, NnError, OptimizerConfig, OptimizerKind,
    Pooling2DConfig, Preprocessing, Schedule, Sequential, TensorDataset, Vocabulary, FORMAT,
};
use edgeflow_tensor::{Rng, Tensor};
use safetensors::tensor::{Dtype, TensorView};

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn metadata() -> ModelMetadata {
    ModelMetadata {
        class_names: ["cat", "dog", "ship", "truck", "frog"]
            .map(String::from)
            .to_vec(),
        preprocessing: Preprocessing {
            scale: 1.0 / 255.0,
            mean: vec![0.5, 0.4, 0.3],
            std: vec![0.25, 0.2, 0.3],
        },
        vocabulary: Some(Vocabulary {
            tokenizer: "word: lower-case alphanumeric runs".into(),
            sequence_length: 7,
            words: ["the", "café", "\"quoted\"", "x"]
                .map(String::from)
                .to_vec(),
        }),
    }
}

fn optimizer() -> OptimizerConfig {
    OptimizerConfig {
        clipnorm: Some(1.0),
        global_clipnorm: None,
        schedule: Some(Schedule::ExponentialDecay {
            decay_steps: 10,
            decay_rate: 0.9,
            staircase: true,
        }),
        kind: OptimizerKind::adam(),
    }
}

/// A small CNN with every kind of parameter (kernels, biases, batch-norm scale, offset and
/// moving statistics), trained for one epoch so nothing is at its initial value.
fn trained_cnn() -> Sequential {
    let mut model = Sequential::builder([8, 8, 3])
        .add(
            Conv2DConfig::new(4, 3)
                .activation(Activation::Relu)
                .padding(PaddingConfig::Same),
        )
        .add(LayerConfig::BatchNormalization(
            BatchNormalizationConfig::default(),
        ))
        .add(Pooling2DConfig::new(2).max())
        .add(LayerConfig::flatten())
        .add(LayerConfig::Dropout(DropoutConfig {
            rate: 0.25,
            name: None,
        }))
        .add(DenseConfig::new(5).activation(Activation::Softmax))
        .build(3)
        .unwrap();
    model.metadata = metadata();
    model
        .compile(
            optimizer(),
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            vec![Metric::Accuracy, Metric::SparseTopKAccuracy { k: 2 }],
        )
        .unwrap();
    let x = Tensor::rand_uniform([12, 8, 8, 3], 0.0, 1.0, &mut Rng::seed(1));
    let y = Tensor::from_vec((0..12).map(|i| i % 5).collect::<Vec<i64>>(), [12]).unwrap();
    let opts = FitOptions {
        batch_size: 4,
        ..FitOptions::default()
    };
    model
        .fit(&TensorDataset::new(x, y).unwrap(), None, &opts, &mut [])
        .unwrap();
    model
}

#[test]
fn save_load_predict_is_bit_identical() {
    let model = trained_cnn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.efm");
    model.save(&path).unwrap();
    let loaded = Sequential::load(&path).unwrap();

    let x = Tensor::rand_uniform([6, 8, 8, 3], 0.0, 1.0, &mut Rng::seed(2));
    assert_eq!(
        bits(&model.predict(&x, 4).unwrap()),
        bits(&loaded.predict(&x, 4).unwrap())
    );
    let names =
        |m: &Sequential| -> Vec<String> { m.named_params().into_iter().map(|(n, _)| n).collect() };
    assert_eq!(names(&model), names(&loaded));
    assert!(names(&model).contains(&"batch_normalization/moving_variance".to_string()));
    for (a, b) in model.weights().iter().zip(loaded.weights()) {
        assert_eq!(bits(a), bits(&b));
    }
    assert_eq!(model.architecture(), loaded.architecture());
}

#[test]
fn loaded_model_keeps_metadata_and_compile_settings() {
    let model = trained_cnn();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.efm");
    model.save(&path).unwrap();
    let loaded = Sequential::load(&path).unwrap();
    assert_eq!(loaded.metadata, metadata());
    let compile = loaded.compile_config().expect("compile settings survive");
    assert_eq!(compile.optimizer, optimizer());
    assert_eq!(
        compile.loss,
        Loss::SparseCategoricalCrossentropy { from_logits: false }
    );
    assert_eq!(
        compile.metrics,
        vec![Metric::Accuracy, Metric::SparseTopKAccuracy { k: 2 }]
    );
    assert_eq!(Some(compile), model.compile_config());
    // Trainable flags survive too: the moving statistics are not trainable.
    assert_eq!(
        loaded.trainable_param_count(),
        model.trainable_param_count()
    );
    assert!(loaded.trainable_param_count() < loaded.param_count());
}

#[test]
fn uncompiled_model_loads_uncompiled() {
    let model = tiny_model();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.efm");
    let mut plain = Sequential::from_architecture(&model.architecture(), 0).unwrap();
    plain.set_weights(model.weights()).unwrap();
    plain.save(&path).unwrap();
    assert!(Sequential::load(&path).unwrap().compile_config().is_none());
}

/// A model with six weights and short metadata, so every byte of its file can be damaged.
fn tiny_model() -> Sequential {
    let mut model = Sequential::builder([2])
        .add(DenseConfig::new(2).activation(Activation::Softmax))
        .build(9)
        .unwrap();
    model.metadata.class_names = vec!["no".into(), "yes".into()];
    model
        .compile(
            OptimizerKind::adam(),
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            vec![Metric::Accuracy],
        )
        .unwrap();
    model
}

/// Loads `path`, turning a panic into a test failure that says which damage caused it.
fn load_without_panic(path: &Path, what: &str) -> edgeflow_nn::Result<Sequential> {
    catch_unwind(AssertUnwindSafe(|| Sequential::load(path)))
        .unwrap_or_else(|_| panic!("loading a file with {what} panicked"))
}

/// The error must be about this file and name it.
fn assert_refused(result: edgeflow_nn::Result<Sequential>, path: &Path, what: &str) -> String {
    let err = match result {
        Ok(_) => panic!("a file with {what} loaded silently"),
        Err(e) => e,
    };
    match &err {
        NnError::ModelFile { path: p, .. } | NnError::Io { path: p, .. } => {
            assert_eq!(p, path, "{what}: {err}");
        }
        other => panic!("{what}: not a file error: {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "{what}: message does not name the file: {msg}"
    );
    msg
}

#[test]
fn truncated_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("tiny.efm");
    tiny_model().save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let path = dir.path().join("cut.efm");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(load_without_panic(&path, "half"), &path, "half the bytes");

    // Every shorter length, down to nothing.
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let what = format!("only {len} of {} bytes", bytes.len());
        assert_refused(load_without_panic(&path, &what), &path, &what);
    }
}

#[test]
fn every_single_byte_flip_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("tiny.efm");
    tiny_model().save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    assert!(
        bytes.len() < 4096,
        "the tiny model file is {} bytes",
        bytes.len()
    );
    assert!(Sequential::load(&good).is_ok());

    // Each of the eight single-bit flips at every position, parsed from memory (writing
    // thousands of files makes the test slow on a busy disk)...
    for pos in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[pos] ^= 1 << bit;
            let what = format!("byte {pos} ({:?}) bit {bit}", bytes[pos] as char);
            let result = catch_unwind(|| Sequential::from_bytes(&damaged))
                .unwrap_or_else(|_| panic!("parsing a file with {what} panicked"));
            assert!(result.is_err(), "a file with {what} loaded silently");
        }
    }
    // ...and the all-bits flip at every position through a file, whose name the error gives.
    let path = dir.path().join("flipped.efm");
    for pos in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[pos] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let what = format!("byte {pos} ({:?}) inverted", bytes[pos] as char);
        assert_refused(load_without_panic(&path, &what), &path, &what);
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn safetensors_file(metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
    safetensors::serialize([("dense/kernel", view)], metadata).unwrap()
}

#[test]
fn foreign_files_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // The PNG signature and the start of an IHDR chunk of a 1x1 image.
    let png: &[u8] = &[
        0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0,
        0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89,
    ];
    let mut rng = Rng::seed(5);
    let noise: Vec<u8> = (0..4096).map(|_| rng.below(256) as u8).collect();
    let other_format: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let cases = [
        ("image.png", png.to_vec()),
        ("noise.bin", noise),
        ("empty.efm", Vec::new()),
        ("plain.safetensors", safetensors_file(None)),
        ("other.safetensors", safetensors_file(Some(other_format))),
    ];
    for (name, bytes) in cases {
        let path = write(dir.path(), name, &bytes);
        let msg = assert_refused(load_without_panic(&path, name), &path, name);
        assert!(
            msg.contains("not an edgeflow model file"),
            "{name}: unclear message: {msg}"
        );
    }
}

#[test]
fn newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let header: HashMap<String, String> = [
        ("format".to_string(), FORMAT.to_string()),
        ("format_version".to_string(), "99".to_string()),
    ]
    .into();
    let path = write(dir.path(), "future.efm", &safetensors_file(Some(header)));
    let msg = assert_refused(load_without_panic(&path, "v99"), &path, "version 99");
    assert!(msg.contains("99"), "{msg}");
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.efm");
    let err = Sequential::load(&path).err().expect("no file, no model");
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nowhere.efm"), "{err}");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn save_over_an_existing_file_leaves_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.efm");
    let first = tiny_model();
    first.save(&path).unwrap();
    let mut second = tiny_model();
    let w = second.weights();
    let doubled: Vec<Tensor> = w.iter().map(|t| t.mul_scalar(2.0).unwrap()).collect();
    second.set_weights(doubled).unwrap();
    second.save(&path).unwrap();
    assert_eq!(listing(dir.path()), vec!["model.efm".to_string()]);
    // The file holds the second model.
    let loaded = Sequential::load(&path).unwrap();
    for (a, b) in loaded.weights().iter().zip(second.weights()) {
        assert_eq!(bits(a), bits(&b));
    }
}

#[test]
fn failed_save_leaves_nothing_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("model.efm");
    let err = tiny_model().save(&path).unwrap_err();
    match &err {
        NnError::Io { path: p, .. } | NnError::ModelFile { path: p, .. } => assert_eq!(p, &path),
        other => panic!("not a file error: {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn architecture_inside_the_file_is_plain_json() {
    // A reader without edgeflow can see what the model is from the safetensors header.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnn.efm");
    trained_cnn().save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta.get("format").map(String::as_str), Some(FORMAT));
    let arch: serde_json::Value = serde_json::from_str(&meta["architecture"]).unwrap();
    assert_eq!(arch["input_shape"], serde_json::json!([8, 8, 3]));
    assert_eq!(arch["layers"][0]["type"], "Conv2D");
    assert_eq!(arch["layers"][0]["padding"], "same");
    assert_eq!(arch["layers"][2]["pool_size"], serde_json::json!(2));
    let _: Pair = serde_json::from_value(arch["layers"][2]["pool_size"].clone()).unwrap();
}

#[test]
fn set_weights_with_one_bad_tensor_changes_nothing() {
    let mut model = tiny_model();
    let before: Vec<Vec<u32>> = model.weights().iter().map(bits).collect();
    let mut weights: Vec<Tensor> = model
        .weights()
        .iter()
        .map(|t| t.mul_scalar(2.0).unwrap())
        .collect();
    let last = weights.len() - 1;
    weights[last] = Tensor::zeros([weights[last].elem_count() + 1]);

    let err = model.set_weights(weights).unwrap_err();

    assert!(matches!(err, NnError::Input(_)), "{err:?}");
    let after: Vec<Vec<u32>> = model.weights().iter().map(bits).collect();
    assert_eq!(before, after);
}
