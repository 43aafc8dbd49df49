//! Model description: parameter counts, output shapes and layer names as Keras reports them,
//! the summary table, the architecture JSON, and the shared cases CONV-01 and POOL-01 run
//! through one-layer models.

use edgeflow_nn::layers::{PaddingConfig, Pair};
use edgeflow_nn::{
    Activation, Architecture, BatchNormalizationConfig, Conv2DConfig, DenseConfig, LayerConfig,
    NnError, Pooling2DConfig, Sequential,
};
use edgeflow_tensor::Tensor;

/// The CIFAR-10 reference model of the project.
fn cifar_model() -> Sequential {
    Sequential::builder([32, 32, 3])
        .add(Conv2DConfig::new(32, 3).activation(Activation::Relu))
        .add(Pooling2DConfig::new(2).max())
        .add(Conv2DConfig::new(64, 3).activation(Activation::Relu))
        .add(Pooling2DConfig::new(2).max())
        .add(LayerConfig::flatten())
        .add(DenseConfig::new(64).activation(Activation::Relu))
        .add(DenseConfig::new(10).activation(Activation::Softmax))
        .build(0)
        .unwrap()
}

/// (name, output shape, parameters) as Keras' `model.summary()` prints them for this model:
/// conv 3*3*3*32 + 32 = 896, 3*3*32*64 + 64 = 18,496; dense 2304*64 + 64 = 147,520 and
/// 64*10 + 10 = 650.
const CIFAR_LAYERS: [(&str, &[usize], usize); 7] = [
    ("conv2d", &[30, 30, 32], 896),
    ("max_pooling2d", &[15, 15, 32], 0),
    ("conv2d_1", &[13, 13, 64], 18_496),
    ("max_pooling2d_1", &[6, 6, 64], 0),
    ("flatten", &[2304], 0),
    ("dense", &[64], 147_520),
    ("dense_1", &[10], 650),
];

#[test]
fn cifar_model_counts_shapes_and_names_match_keras() {
    let model = cifar_model();
    assert_eq!(model.param_count(), 167_562);
    assert_eq!(model.trainable_param_count(), 167_562);
    assert_eq!(model.layers().len(), CIFAR_LAYERS.len());
    for (layer, (name, shape, params)) in model.layers().iter().zip(CIFAR_LAYERS) {
        assert_eq!(layer.name(), name);
        assert_eq!(layer.output_shape(), shape, "{name}");
        let count: usize = layer.params().iter().map(|p| p.value.elem_count()).sum();
        assert_eq!(count, params, "{name}");
    }
    assert_eq!(model.output_shape(), &[10]);
}

#[test]
fn summary_text_shows_keras_numbers() {
    let text = cifar_model().summary();
    for needle in [
        "conv2d (Conv2D)",
        "max_pooling2d (MaxPooling2D)",
        "conv2d_1 (Conv2D)",
        "max_pooling2d_1 (MaxPooling2D)",
        "flatten (Flatten)",
        "dense (Dense)",
        "dense_1 (Dense)",
        "(None, 30, 30, 32)",
        "(None, 15, 15, 32)",
        "(None, 13, 13, 64)",
        "(None, 6, 6, 64)",
        "(None, 2304)",
        "(None, 64)",
        "(None, 10)",
        "896",
        "18,496",
        "147,520",
        "650",
        // 167,562 f32 values are 670,248 bytes = 654.54 KB, as Keras prints.
        "Total params: 167,562 (654.54 KB)",
        "Trainable params: 167,562",
        "Non-trainable params: 0",
    ] {
        assert!(text.contains(needle), "summary lacks {needle:?}:\n{text}");
    }
    // Layers are listed in order.
    let at = |s: &str| text.find(s).unwrap();
    assert!(at("conv2d (") < at("max_pooling2d (") && at("dense (") < at("dense_1 ("));
}

#[test]
fn batch_norm_statistics_count_as_non_trainable() {
    // Dense(4) on 3 inputs: 16; BatchNormalization of 4 channels: 4 gamma + 4 beta trainable,
    // 4 moving mean + 4 moving variance not.
    let model = Sequential::builder([3])
        .add(DenseConfig::new(4))
        .add(LayerConfig::BatchNormalization(
            BatchNormalizationConfig::default(),
        ))
        .build(0)
        .unwrap();
    assert_eq!(model.param_count(), 32);
    assert_eq!(model.trainable_param_count(), 24);
    let text = model.summary();
    assert!(
        text.contains("batch_normalization (BatchNormalization)"),
        "{text}"
    );
    assert!(text.contains("Total params: 32"), "{text}");
    assert!(text.contains("Trainable params: 24"), "{text}");
    assert!(text.contains("Non-trainable params: 8"), "{text}");
}

#[test]
fn automatic_names_follow_keras_stems() {
    let model = Sequential::builder([8, 8, 2])
        .add(Pooling2DConfig::new(2).average())
        .add(LayerConfig::BatchNormalization(
            BatchNormalizationConfig::default(),
        ))
        .add(LayerConfig::GlobalAveragePooling2D(Default::default()))
        .add(DenseConfig::new(3))
        .add(DenseConfig {
            name: Some("logits".into()),
            ..DenseConfig::new(2)
        })
        .add(DenseConfig::new(2))
        .build(0)
        .unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "average_pooling2d",
            "batch_normalization",
            "global_average_pooling2d",
            "dense",
            "logits",
            "dense_1"
        ]
    );
    let params: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    assert!(params.contains(&"logits/kernel".to_string()), "{params:?}");
}

#[test]
fn duplicate_layer_names_are_refused() {
    let named = |n: &str| DenseConfig {
        name: Some(n.into()),
        ..DenseConfig::new(2)
    };
    let err = Sequential::builder([2])
        .add(named("same"))
        .add(named("same"))
        .build(0)
        .err()
        .expect("two layers named alike");
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("same"), "{err}");
}

#[test]
fn layers_that_do_not_fit_their_input_are_config_errors_naming_the_layer() {
    // A 3x3 window on a 2x2 image.
    let err = Sequential::builder([2, 2, 1])
        .add(Conv2DConfig::new(1, 3))
        .build(0)
        .err()
        .expect("the window does not fit");
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("conv2d"), "{err}");
    // Conv2D on a flat input.
    let err = Sequential::builder([10])
        .add(Conv2DConfig::new(1, 3))
        .build(0)
        .err()
        .expect("Conv2D needs an image");
    assert!(matches!(err, NnError::Config(_)), "{err:?}");
}

// ---- Architecture JSON ----

#[test]
fn architecture_round_trips_through_json() {
    let model = cifar_model();
    let arch = model.architecture();
    let text = serde_json::to_string_pretty(&arch).unwrap();
    let back: Architecture = serde_json::from_str(&text).unwrap();
    assert_eq!(back, arch);
    let rebuilt = Sequential::from_architecture(&back, 1).unwrap();
    assert_eq!(rebuilt.param_count(), 167_562);
    assert_eq!(rebuilt.summary(), model.summary());
}

#[test]
fn keras_style_json_builds_with_defaults() {
    let text = r#"{
        "input_shape": [32, 32, 3],
        "layers": [
            {"type": "Conv2D", "filters": 32, "kernel_size": 3, "activation": "relu"},
            {"type": "MaxPooling2D"},
            {"type": "Conv2D", "filters": 64, "kernel_size": [3, 3], "activation": "relu"},
            {"type": "MaxPooling2D", "pool_size": [2, 2]},
            {"type": "Flatten"},
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"}
        ]
    }"#;
    let arch: Architecture = serde_json::from_str(text).unwrap();
    assert_eq!(arch.name, "sequential");
    let model = Sequential::from_architecture(&arch, 0).unwrap();
    assert_eq!(model.param_count(), 167_562);
    assert_eq!(model.summary(), cifar_model().summary());
}

fn parse(text: &str) -> Result<Architecture, serde_json::Error> {
    serde_json::from_str(text)
}

#[test]
fn unknown_layer_types_and_fields_are_errors() {
    let unknown_type = r#"{"input_shape": [4], "layers": [{"type": "Conv3D", "filters": 2}]}"#;
    let err = parse(unknown_type).unwrap_err();
    assert!(err.to_string().contains("Conv3D"), "{err}");

    // A Keras argument edgeflow does not have must not be ignored silently.
    let unknown_field = r#"{"input_shape": [4],
        "layers": [{"type": "Dense", "units": 2, "kernel_initializer": "he_normal"}]}"#;
    let err = parse(unknown_field).unwrap_err();
    assert!(err.to_string().contains("kernel_initializer"), "{err}");

    let typo = r#"{"input_shape": [4], "layers": [{"type": "Dense", "unit": 2}]}"#;
    assert!(parse(typo).is_err());

    let top_level = r#"{"input_shape": [4], "layers": [], "optimizer": "adam"}"#;
    let err = parse(top_level).unwrap_err();
    assert!(err.to_string().contains("optimizer"), "{err}");

    let bad_padding = r#"{"input_shape": [4, 4, 1],
        "layers": [{"type": "MaxPooling2D", "padding": "full"}]}"#;
    assert!(parse(bad_padding).is_err());
}

#[test]
fn empty_or_zero_input_shape_is_a_config_error() {
    for shape in [vec![], vec![4, 0]] {
        let arch = Architecture {
            name: "m".into(),
            input_shape: shape.clone(),
            layers: vec![],
        };
        let err = Sequential::from_architecture(&arch, 0)
            .err()
            .expect("bad input shape");
        assert!(matches!(err, NnError::Config(_)), "{shape:?}: {err:?}");
    }
}

// ---- CONV-01: `same` padding with stride 2, through a one-layer model ----

/// `arange(36)` as a `[1, 6, 6, 1]` image.
fn arange_image(h: usize, w: usize) -> Tensor {
    Tensor::arange(h * w).reshape([1, h, w, 1]).unwrap()
}

fn conv_model(padding: PaddingConfig, kernel: [[f32; 3]; 3]) -> Sequential {
    let config = Conv2DConfig {
        use_bias: false,
        ..Conv2DConfig::new(1, 3).strides(2).padding(padding)
    };
    let mut model = Sequential::builder([6, 6, 1]).add(config).build(0).unwrap();
    // Kernel layout [height, width, in_channels, filters].
    let k = Tensor::from_vec(kernel.concat(), [3, 3, 1, 1]).unwrap();
    model.set_weights(vec![k]).unwrap();
    model
}

const ONES3X3: [[f32; 3]; 3] = [[1.0; 3]; 3];
const ASYM3X3: [[f32; 3]; 3] = [[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]];

fn assert_image(out: &Tensor, hw: [usize; 2], expected: &[f32], what: &str) {
    assert_eq!(out.dims(), &[1, hw[0], hw[1], 1], "{what}");
    let got = out.to_vec_f32().unwrap();
    // CONV-01's tolerance is 1e-4 absolute; POOL-01 is exact and passes that too.
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-4,
            "{what}[{i}]: {got:?} vs {expected:?}"
        );
    }
}

#[test]
fn conv01_same_padding_stride_two_pads_bottom_right() {
    let x = arange_image(6, 6);
    let model = conv_model(PaddingConfig::Same, ONES3X3);
    assert_eq!(model.output_shape(), &[3, 3, 1]);
    let out = model.predict(&x, 1).unwrap();
    let expected = [63., 81., 63., 171., 189., 135., 168., 180., 126.];
    assert_image(&out, [3, 3], &expected, "ones3x3 same");

    let model = conv_model(PaddingConfig::Same, ASYM3X3);
    let out = model.predict(&x, 1).unwrap();
    let expected = [11., 19., 9., 59., 67., 45., 105., 113., 121.];
    assert_image(&out, [3, 3], &expected, "asym3x3 same");

    let model = conv_model(PaddingConfig::Valid, ONES3X3);
    assert_eq!(model.output_shape(), &[2, 2, 1]);
    let out = model.predict(&x, 1).unwrap();
    assert_image(&out, [2, 2], &[63., 81., 171., 189.], "ones3x3 valid");
}

// ---- POOL-01: max-pooling shapes, through a one-layer model ----

fn pool_model(hw: [usize; 2], pool: usize, stride: usize, padding: PaddingConfig) -> Sequential {
    let config = Pooling2DConfig {
        pool_size: Pair::Two([pool, pool]),
        strides: Some(Pair::Two([stride, stride])),
        padding,
        name: None,
    };
    Sequential::builder([hw[0], hw[1], 1])
        .add(config.max())
        .build(0)
        .unwrap()
}

#[test]
fn pool01_max_pooling_shapes_and_values() {
    use PaddingConfig::{Same, Valid};
    type Case<'a> = (
        &'a str,
        [usize; 2],
        usize,
        usize,
        PaddingConfig,
        [usize; 2],
        &'a [f32],
    );
    let cases: [Case; 5] = [
        (
            "a_valid_k2_s2_5x5",
            [5, 5],
            2,
            2,
            Valid,
            [2, 2],
            &[6., 8., 16., 18.],
        ),
        (
            "b_same_k2_s2_5x5",
            [5, 5],
            2,
            2,
            Same,
            [3, 3],
            &[6., 8., 9., 16., 18., 19., 21., 23., 24.],
        ),
        (
            "c_same_k1_s2_6x7",
            [6, 7],
            1,
            2,
            Same,
            [3, 4],
            &[0., 2., 4., 6., 14., 16., 18., 20., 28., 30., 32., 34.],
        ),
        (
            "d_same_k3_s4_8x10",
            [8, 10],
            3,
            4,
            Same,
            [2, 3],
            &[22., 26., 29., 62., 66., 69.],
        ),
        (
            "e_valid_k3_s4_8x10",
            [8, 10],
            3,
            4,
            Valid,
            [2, 2],
            &[22., 26., 62., 66.],
        ),
    ];
    for (name, hw, pool, stride, padding, out_hw, expected) in cases {
        let model = pool_model(hw, pool, stride, padding);
        assert_eq!(model.output_shape(), &[out_hw[0], out_hw[1], 1], "{name}");
        let out = model.predict(&arange_image(hw[0], hw[1]), 1).unwrap();
        assert!(
            out.to_vec_f32().unwrap().iter().all(|v| v.is_finite()),
            "{name}"
        );
        assert_image(&out, out_hw, expected, name);
    }
}

#[test]
fn pool01_through_json_config() {
    // The same layer described the way a config file would.
    let text = r#"{"input_shape": [5, 5, 1],
        "layers": [{"type": "MaxPooling2D", "pool_size": 2, "strides": 2, "padding": "same"}]}"#;
    let arch: Architecture = serde_json::from_str(text).unwrap();
    let model = Sequential::from_architecture(&arch, 0).unwrap();
    let out = model.predict(&arange_image(5, 5), 1).unwrap();
    let expected = [6., 8., 9., 16., 18., 19., 21., 23., 24.];
    assert_image(&out, [3, 3], &expected, "json b_same_k2_s2_5x5");
}
