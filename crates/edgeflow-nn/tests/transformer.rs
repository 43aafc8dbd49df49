//! The Transformer family: MultiHeadAttention, LayerNormalization, PositionalEncoding,
//! PositionEmbedding, TransformerEncoder, ClassToken and TakeFirst.
//!
//! * forward values against an independent numpy reference (`fixtures/attention_reference.py`):
//!   attention with and without a padding mask and a causal mask, layer normalization, and
//!   post-norm and pre-norm encoder blocks;
//! * finite-difference gradients through attention (plain, masked, causal), layer
//!   normalization and whole encoder blocks (both norm placements);
//! * masks: a fully padded sequence stays finite, padded keys have no influence, the class
//!   token extends the mask;
//! * the sinusoidal table against its formula, learned positions, dropout only in training;
//! * training on a toy sequence task, the model file, `summary()` parameter counts,
//!   configuration JSON and errors.

#[path = "recurrent_support/mod.rs"]
mod support;

use std::sync::Once;

use edgeflow_nn::layers::MaskingConfig;
use edgeflow_nn::{
    Activation, Architecture, DenseConfig, EmbeddingConfig, FitOptions, ForwardCtx, LayerConfig,
    LayerNormalizationConfig, Loss, Metric, MultiHeadAttentionConfig, NnError, OptimizerKind,
    PositionEmbeddingConfig, PositionalEncodingConfig, Sequential, TensorDataset,
    TransformerEncoderConfig,
};
use edgeflow_tensor::{no_grad, Rng, Tensor};
use serde_json::Value;
use support::{assert_close, check_model, Tolerance};

/// An f32 forward of a few matmuls, a softmax and (for the encoder) two layer normalizations
/// against the f64 numpy reference: each op rounds to ~1e-7 relative and the normalizations
/// divide by a standard deviation of order 0.1-1, so 1e-5 relative with a 1e-5 floor leaves
/// room for right answers and none for a wrong scale, mask or head layout (> 1e-2 here).
const F32_VS_F64: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-5,
};

/// Every test here uses the same kernel thread count, so that none changes another's
/// arithmetic.
fn fixed_threads() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| edgeflow_tensor::threading::set_num_threads(1));
}

fn t(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec()).unwrap()
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    vals(t).iter().map(|v| v.to_bits()).collect()
}

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape.to_vec(), -1.0, 1.0, &mut Rng::seed(seed))
}

fn model(input: &[usize], layers: Vec<LayerConfig>) -> Sequential {
    let mut b = Sequential::builder(input.to_vec());
    for l in layers {
        b = b.add(l);
    }
    b.build(7).unwrap()
}

/// Inference forward with an optional sequence mask (what `Embedding`/`Masking` would set).
fn forward(model: &Sequential, x: &Tensor, mask: Option<&Tensor>) -> Tensor {
    let mut ctx = ForwardCtx::inference();
    ctx.mask = mask.cloned();
    no_grad(|| model.forward(x, &mut ctx)).unwrap()
}

// ---- forward values against numpy ----

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/attention_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A nested JSON array, flattened.
fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

/// A nested JSON array as an f32 tensor of its own shape.
fn tensor(v: &Value) -> Tensor {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        cur = &items[0];
    }
    let data: Vec<f32> = floats(v).iter().map(|&x| x as f32).collect();
    Tensor::from_vec(data, shape).unwrap()
}

/// Keras' MultiHeadAttention weights, in edgeflow's parameter order.
fn attention_weights(w: &Value) -> Vec<Tensor> {
    ["query", "key", "value", "output"]
        .iter()
        .flat_map(|p| [&w[format!("{p}_kernel")], &w[format!("{p}_bias")]])
        .map(tensor)
        .collect()
}

#[test]
fn attention_matches_the_numpy_reference_with_padding_and_causal_masks() {
    fixed_threads();
    let r = reference();
    let s = &r["shape"];
    let n = |k: &str| s[k].as_u64().unwrap() as usize;
    let (x, mask) = (tensor(&r["x"]), tensor(&r["mask"]));
    let a = &r["attention"];
    for (case, causal, masked) in [
        ("plain", false, false),
        ("masked", false, true),
        ("causal", true, false),
        ("masked_causal", true, true),
    ] {
        let mha = MultiHeadAttentionConfig::new(n("heads"), n("key_dim"))
            .value_dim(n("value_dim"))
            .causal(causal);
        let mut m = model(&[n("steps"), n("d_model")], vec![mha.into()]);
        m.set_weights(attention_weights(&a["weights"])).unwrap();
        let y = forward(&m, &x, masked.then_some(&mask));
        assert_close(case, &vals(&y), &floats(&a[case]), F32_VS_F64);
    }
}

#[test]
fn layer_normalization_matches_the_numpy_reference() {
    fixed_threads();
    let r = reference();
    let ln = &r["layer_norm"];
    let x = tensor(&r["x"]);
    let mut m = model(
        &x.dims()[1..],
        vec![LayerNormalizationConfig::default().into()],
    );
    m.set_weights(vec![tensor(&ln["gamma"]), tensor(&ln["beta"])])
        .unwrap();
    let y = forward(&m, &x, None);
    assert_close("layer_norm", &vals(&y), &floats(&ln["output"]), F32_VS_F64);
}

fn encoder_weights(w: &Value) -> Vec<Tensor> {
    let mut out = attention_weights(&w["attention"]);
    for (group, a, b) in [
        ("attention_norm", "gamma", "beta"),
        ("ff_norm", "gamma", "beta"),
        ("intermediate", "kernel", "bias"),
        ("output", "kernel", "bias"),
    ] {
        out.push(tensor(&w[group][a]));
        out.push(tensor(&w[group][b]));
    }
    out
}

#[test]
fn encoder_blocks_match_the_numpy_reference_post_and_pre_norm() {
    fixed_threads();
    let r = reference();
    let s = &r["shape"];
    let n = |k: &str| s[k].as_u64().unwrap() as usize;
    let (x, mask) = (tensor(&r["x"]), tensor(&r["mask"]));
    let e = &r["encoder"];
    for (case, norm_first, activation) in [
        ("post_norm_relu_masked", false, Activation::Relu),
        ("pre_norm_gelu_masked", true, Activation::Gelu),
    ] {
        let block = TransformerEncoderConfig::new(n("heads"), n("ff_dim"))
            .norm_first(norm_first)
            .activation(activation);
        let mut m = model(&[n("steps"), n("d_model")], vec![block.into()]);
        m.set_weights(encoder_weights(&e["weights"])).unwrap();
        let y = forward(&m, &x, Some(&mask));
        assert_close(case, &vals(&y), &floats(&e[case]), F32_VS_F64);
    }
}

// ---- gradients ----

/// One sample with a trailing pad, one with an interior gap.
fn grad_mask() -> Tensor {
    t(&[1., 1., 1., 0., 1., 0., 1., 1.], &[2, 4])
}

#[test]
fn attention_gradients_match_finite_differences_plain_masked_and_causal() {
    fixed_threads();
    let x = uniform(&[2, 4, 4], 3);
    for (name, causal, mask) in [
        ("plain", false, None),
        ("masked", false, Some(grad_mask())),
        ("causal", true, None),
        ("masked causal", true, Some(grad_mask())),
    ] {
        let mha = MultiHeadAttentionConfig::new(2, 2)
            .value_dim(3)
            .causal(causal);
        let mut m = model(&[4, 4], vec![mha.into()]);
        // Non-zero biases, so that their gradients are exercised from a generic point.
        let w: Vec<Tensor> = m
            .weights()
            .iter()
            .enumerate()
            .map(|(i, w)| uniform(w.dims(), 100 + i as u64).mul_scalar(0.8).unwrap())
            .collect();
        m.set_weights(w).unwrap();
        let report = check_model(name, &mut m, &x, mask.as_ref());
        assert!(report.compared > 100, "{name}: {report:?}");
    }
}

#[test]
fn layer_normalization_gradients_match_finite_differences() {
    fixed_threads();
    let x = uniform(&[2, 3, 5], 4);
    for (center, scale) in [(true, true), (false, true), (true, false)] {
        let ln = LayerNormalizationConfig::default()
            .center(center)
            .scale(scale);
        let mut m = model(&[3, 5], vec![ln.into()]);
        let w: Vec<Tensor> = m
            .weights()
            .iter()
            .enumerate()
            .map(|(i, w)| uniform(w.dims(), 200 + i as u64))
            .collect();
        m.set_weights(w).unwrap();
        check_model(&format!("layer norm {center} {scale}"), &mut m, &x, None);
    }
}

#[test]
fn encoder_gradients_match_finite_differences_post_and_pre_norm() {
    fixed_threads();
    let x = uniform(&[2, 4, 4], 5);
    for norm_first in [false, true] {
        // GELU rather than relu: a kink between the two probes would spoil the difference.
        let block = TransformerEncoderConfig::new(2, 6)
            .norm_first(norm_first)
            .activation(Activation::Gelu);
        let mut m = model(&[4, 4], vec![block.into()]);
        let w: Vec<Tensor> = m
            .weights()
            .iter()
            .enumerate()
            .map(|(i, w)| uniform(w.dims(), 300 + i as u64).mul_scalar(0.8).unwrap())
            .collect();
        m.set_weights(w).unwrap();
        let name = format!("encoder norm_first={norm_first}");
        let report = check_model(&name, &mut m, &x, Some(&grad_mask()));
        assert!(report.compared > 150, "{name}: {report:?}");
    }
}

// ---- masks ----

#[test]
fn padded_keys_have_no_influence_and_padded_queries_get_the_output_bias() {
    fixed_threads();
    let mut m = model(&[4, 6], vec![MultiHeadAttentionConfig::new(2, 3).into()]);
    let w: Vec<Tensor> = m
        .weights()
        .iter()
        .enumerate()
        .map(|(i, w)| uniform(w.dims(), 400 + i as u64))
        .collect();
    let out_bias = vals(w.last().unwrap());
    m.set_weights(w).unwrap();
    let mask = t(&[1., 1., 0., 1.], &[1, 4]);
    let x = uniform(&[1, 4, 6], 9);
    let base = vals(&forward(&m, &x, Some(&mask)));

    // Changing the padded step's input changes nothing at the real steps.
    let mut other = vals(&x);
    other[12..18].iter_mut().for_each(|v| *v = 50.0);
    let changed = vals(&forward(&m, &t(&other, &[1, 4, 6]), Some(&mask)));
    for step in [0, 1, 3] {
        assert_eq!(
            base[step * 6..(step + 1) * 6],
            changed[step * 6..(step + 1) * 6],
            "step {step}"
        );
    }
    // The padded query: zero attention weights, so the output bias alone.
    assert_eq!(&base[12..18], &out_bias[..]);
}

#[test]
fn with_a_causal_mask_no_step_sees_a_later_one() {
    fixed_threads();
    let m = model(
        &[5, 4],
        vec![MultiHeadAttentionConfig::new(2, 3).causal(true).into()],
    );
    let x = uniform(&[1, 5, 4], 11);
    let base = vals(&forward(&m, &x, None));
    let mut later = vals(&x);
    later[12..].iter_mut().for_each(|v| *v = -7.0);
    let changed = vals(&forward(&m, &t(&later, &[1, 5, 4]), None));
    assert_eq!(base[..12], changed[..12], "steps 0..3 saw a later step");
    assert_ne!(base[12..], changed[12..]);
}

#[test]
fn a_fully_masked_sequence_gives_finite_outputs_and_gradients() {
    fixed_threads();
    let m = model(
        &[5],
        vec![
            EmbeddingConfig::new(10, 8).mask_zero(true).into(),
            PositionalEncodingConfig::default().into(),
            TransformerEncoderConfig::new(2, 16).into(),
            TransformerEncoderConfig::new(2, 16).norm_first(true).into(),
            MultiHeadAttentionConfig::new(2, 4).causal(true).into(),
            LayerConfig::global_average_pooling_1d(),
            DenseConfig::new(3).activation(Activation::Softmax).into(),
        ],
    );
    let ids = t(&[0., 0., 0., 0., 0., 3., 4., 0., 0., 0.], &[2, 5]);
    let y = m.predict(&ids, 8).unwrap();
    assert!(vals(&y).iter().all(|v| v.is_finite()), "{:?}", vals(&y));

    let mut ctx = ForwardCtx::training(Rng::seed(1));
    let out = m.forward(&ids, &mut ctx).unwrap();
    let grads = out.sum_all().unwrap().backward().unwrap();
    for (name, p) in m.named_params() {
        if let Some(g) = grads.get(&p.value) {
            assert!(vals(g).iter().all(|v| v.is_finite()), "{name}");
        }
    }
}

// ---- positions ----

#[test]
fn sinusoidal_encoding_equals_the_formula() {
    fixed_threads();
    let (steps, d) = (50, 16);
    let m = model(
        &[steps, d],
        vec![PositionalEncodingConfig::default().into()],
    );
    let ones = Tensor::ones([1, steps, d]);
    let table = vals(&forward(&m, &ones, None));
    for (pos, dim) in [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
        (7, 4),
        (7, 5),
        (49, 14),
        (49, 15),
    ] {
        let i = (dim / 2) as f64;
        let angle = pos as f64 / 10_000f64.powf(2.0 * i / d as f64);
        let want = if dim % 2 == 0 {
            angle.sin()
        } else {
            angle.cos()
        };
        let got = table[pos * d + dim] as f64 - 1.0;
        assert!(
            (got - want).abs() < 1e-6,
            "PE[{pos}, {dim}] = {got}, want {want}"
        );
    }
    assert!(m.named_params().is_empty());
}

#[test]
fn position_embedding_adds_the_first_rows_and_learns_them() {
    fixed_threads();
    let m = model(&[3, 2], vec![PositionEmbeddingConfig::new(5).into()]);
    let table = vals(&m.weights()[0]);
    let y = vals(&forward(&m, &Tensor::zeros([2, 3, 2]), None));
    assert_eq!(y[..6], table[..6]);
    assert_eq!(y[6..], table[..6]);

    let err = Sequential::builder([6, 2])
        .add(PositionEmbeddingConfig::new(5))
        .build(0)
        .err()
        .unwrap();
    assert!(err.to_string().contains("max_length 5"), "{err}");
}

#[test]
fn class_token_prepends_a_real_step_and_take_first_reads_it() {
    fixed_threads();
    let mut m = model(
        &[3, 4],
        vec![
            LayerConfig::class_token(),
            MultiHeadAttentionConfig::new(2, 2).into(),
            LayerConfig::take_first(),
        ],
    );
    assert_eq!(m.layers()[0].output_shape(), &[4, 4]);
    assert_eq!(m.output_shape(), &[4]);
    let x = uniform(&[2, 3, 4], 6);
    let mut ctx = ForwardCtx::inference();
    ctx.mask = Some(t(&[1., 1., 0., 1., 0., 0.], &[2, 3]));
    m.layers()[0].forward(&x, &mut ctx).unwrap();
    assert_eq!(
        vals(ctx.mask.as_ref().unwrap()),
        [1., 1., 1., 0., 1., 1., 0., 0.]
    );
    let w: Vec<Tensor> = m
        .weights()
        .iter()
        .enumerate()
        .map(|(i, w)| uniform(w.dims(), 500 + i as u64))
        .collect();
    m.set_weights(w).unwrap();
    check_model(
        "class token",
        &mut m,
        &x,
        Some(&t(&[1., 1., 0., 1., 0., 1.], &[2, 3])),
    );
}

// ---- dropout, recording ----

#[test]
fn dropout_acts_in_training_only_and_inference_records_nothing() {
    fixed_threads();
    let m = model(
        &[6, 8],
        vec![TransformerEncoderConfig::new(2, 16).dropout(0.5).into()],
    );
    let x = uniform(&[2, 6, 8], 10);
    let a = forward(&m, &x, None);
    assert_eq!(bits(&a), bits(&forward(&m, &x, None)));
    let trained = m
        .forward(&x, &mut ForwardCtx::training(Rng::seed(2)))
        .unwrap();
    assert_ne!(bits(&a), bits(&trained));
    assert!(trained.requires_grad());
    assert!(!a.requires_grad() && !a.has_grad_fn());
}

// ---- training ----

/// Sequences of 4..=8 tokens out of 4, one-hot `[8, 4]`, right-padded with all-zero steps;
/// the label is whether the first token appears again later. No single position decides it:
/// the model must compare tokens, i.e. attend, and ignore the padding.
fn repeat_task(n: usize, seed: u64) -> TensorDataset {
    const VOCAB: usize = 4;
    let mut rng = Rng::seed(seed);
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let len = 4 + rng.below(5);
        let first = rng.below(VOCAB);
        // The other steps draw from the other tokens; every other sample plants a repeat.
        let mut tokens: Vec<usize> = (1..len)
            .map(|_| (first + 1 + rng.below(VOCAB - 1)) % VOCAB)
            .collect();
        let repeat = i % 2 == 0;
        if repeat {
            tokens[rng.below(len - 1)] = first;
        }
        let mut steps = vec![0.0f32; 8 * VOCAB];
        for (step, token) in std::iter::once(first).chain(tokens).enumerate() {
            steps[step * VOCAB + token] = 1.0;
        }
        labels.push(i64::from(repeat));
        x.extend(steps);
    }
    TensorDataset::new(
        t(&x, &[n, 8, VOCAB]),
        Tensor::from_vec(labels, [n]).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_small_transformer_learns_a_padded_sequence_task() {
    fixed_threads();
    let mut m = model(
        &[8, 4],
        vec![
            MaskingConfig::new(0.0).into(),
            DenseConfig::new(32).into(),
            PositionalEncodingConfig::default().into(),
            TransformerEncoderConfig::new(4, 64).into(),
            LayerConfig::global_average_pooling_1d(),
            DenseConfig::new(2).activation(Activation::Softmax).into(),
        ],
    );
    let adam = OptimizerKind::Adam {
        learning_rate: 0.003,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    m.compile(adam, loss, vec![Metric::Accuracy]).unwrap();
    let train = repeat_task(1024, 1);
    let opts = FitOptions {
        epochs: 30,
        batch_size: 32,
        ..FitOptions::default()
    };
    let history = m.fit(&train, None, &opts, &mut []).unwrap();
    let test = m.evaluate(&repeat_task(512, 2), 64).unwrap();
    let acc = test.metric("accuracy").unwrap();
    println!(
        "repeat task: train loss {:.4} -> {:.4}, held-out accuracy {acc:.4}",
        history.epochs[0].loss,
        history.epochs.last().unwrap().loss
    );
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

// ---- model file, summary, configuration ----

#[test]
fn transformer_models_round_trip_through_the_model_file_bit_for_bit() {
    fixed_threads();
    let dir = tempfile::tempdir().unwrap();
    let class_token_model = model(
        &[6],
        vec![
            EmbeddingConfig::new(12, 8).mask_zero(true).into(),
            PositionEmbeddingConfig::new(10).into(),
            LayerConfig::class_token(),
            TransformerEncoderConfig::new(2, 16)
                .norm_first(true)
                .activation(Activation::Gelu)
                .into(),
            LayerNormalizationConfig::default().into(),
            LayerConfig::take_first(),
            DenseConfig::new(3).into(),
        ],
    );
    let ids = t(&[1., 5., 7., 0., 0., 0., 11., 2., 3., 4., 0., 6.], &[2, 6]);
    let series_model = model(
        &[5, 4],
        vec![
            PositionalEncodingConfig::default().into(),
            MultiHeadAttentionConfig::new(2, 3)
                .value_dim(5)
                .causal(true)
                .use_bias(false)
                .into(),
            TransformerEncoderConfig::new(4, 8).key_dim(3).into(),
            LayerConfig::global_average_pooling_1d(),
        ],
    );
    let series = uniform(&[3, 5, 4], 8);
    for (i, (m, x)) in [(class_token_model, ids), (series_model, series)]
        .iter()
        .enumerate()
    {
        let json = serde_json::to_string(&m.architecture()).unwrap();
        let back: Architecture = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m.architecture(), "architecture JSON round trip");

        let path = dir.path().join(format!("m{i}.efm"));
        m.save(&path).unwrap();
        let loaded = Sequential::load(&path).unwrap();
        assert_eq!(loaded.architecture(), m.architecture());
        assert_eq!(
            bits(&loaded.predict(x, 64).unwrap()),
            bits(&m.predict(x, 64).unwrap())
        );
    }
}

#[test]
fn summary_parameter_counts_equal_keras() {
    let cases: [(Vec<usize>, LayerConfig, usize, &str); 7] = [
        // q/k/v kernels 3 * 64*4*16, biases 3 * 4*16, output kernel 4*16*64, bias 64.
        (
            vec![10, 64],
            MultiHeadAttentionConfig::new(4, 16).into(),
            16_640,
            "multi_head_attention (MultiHeadAttention)",
        ),
        // No biases; value_dim 4: 2 * 8*2*3 + 8*2*4 + 2*4*8.
        (
            vec![5, 8],
            MultiHeadAttentionConfig::new(2, 3)
                .value_dim(4)
                .use_bias(false)
                .into(),
            224,
            "multi_head_attention (MultiHeadAttention)",
        ),
        (
            vec![10, 64],
            LayerNormalizationConfig::default().into(),
            128,
            "layer_normalization (LayerNormalization)",
        ),
        (
            vec![10, 64],
            LayerNormalizationConfig::default().center(false).into(),
            64,
            "layer_normalization (LayerNormalization)",
        ),
        // keras_hub TransformerEncoder(intermediate_dim=128, num_heads=4) on d_model 64:
        // attention 16,640 + two norms 2*128 + 64*128+128 + 128*64+64.
        (
            vec![10, 64],
            TransformerEncoderConfig::new(4, 128).into(),
            33_472,
            "transformer_encoder (TransformerEncoder)",
        ),
        (
            vec![10, 64],
            PositionEmbeddingConfig::new(20).into(),
            1_280,
            "position_embedding (PositionEmbedding)",
        ),
        (
            vec![10, 64],
            PositionalEncodingConfig::default().into(),
            0,
            "positional_encoding (PositionalEncoding)",
        ),
    ];
    for (input, layer, count, row) in cases {
        let m = model(&input, vec![layer]);
        assert_eq!(m.param_count(), count, "{row}");
        let summary = m.summary();
        let line = summary
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{summary}"));
        assert!(line.ends_with(&edgeflow_nn::thousands(count)), "{line}");
    }
}

#[test]
fn configuration_json_uses_keras_names_and_defaults() {
    let parse = |s: &str| serde_json::from_str::<LayerConfig>(s);
    assert_eq!(
        parse(r#"{"type": "MultiHeadAttention", "num_heads": 4, "key_dim": 16}"#).unwrap(),
        MultiHeadAttentionConfig::new(4, 16).into()
    );
    assert_eq!(
        parse(
            r#"{"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 8, "value_dim": 4,
                "dropout": 0.1, "use_bias": false, "use_causal_mask": true}"#
        )
        .unwrap(),
        MultiHeadAttentionConfig::new(2, 8)
            .value_dim(4)
            .dropout(0.1)
            .use_bias(false)
            .causal(true)
            .into()
    );
    let ln = parse(r#"{"type": "LayerNormalization"}"#).unwrap();
    assert_eq!(ln, LayerNormalizationConfig::default().into());
    assert_eq!(LayerNormalizationConfig::default().epsilon, 1e-3);
    assert_eq!(
        parse(r#"{"type": "TransformerEncoder", "num_heads": 4, "ff_dim": 128}"#).unwrap(),
        TransformerEncoderConfig::new(4, 128).into()
    );
    // keras_hub's argument names.
    assert_eq!(
        parse(
            r#"{"type": "TransformerEncoder", "num_heads": 4, "intermediate_dim": 128,
                "normalize_first": true, "activation": "gelu", "dropout": 0.1}"#
        )
        .unwrap(),
        TransformerEncoderConfig::new(4, 128)
            .norm_first(true)
            .activation(Activation::Gelu)
            .dropout(0.1)
            .into()
    );
    let defaults = TransformerEncoderConfig::new(4, 128);
    assert_eq!(
        (defaults.dropout, defaults.activation, defaults.norm_first),
        (0.0, Activation::Relu, false)
    );
    assert_eq!(defaults.layer_norm_epsilon, 1e-5);
    assert_eq!(
        parse(r#"{"type": "PositionEmbedding", "sequence_length": 20}"#).unwrap(),
        PositionEmbeddingConfig::new(20).into()
    );
    assert_eq!(
        parse(r#"{"type": "PositionalEncoding"}"#).unwrap(),
        PositionalEncodingConfig::default().into()
    );
    assert!(parse(r#"{"type": "ClassToken"}"#).is_ok());
    assert!(parse(r#"{"type": "TakeFirst"}"#).is_ok());
    let err = parse(r#"{"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 2, "x": 1}"#)
        .unwrap_err();
    assert!(err.to_string().contains('x'), "{err}");

    let m = model(
        &[5, 8],
        vec![
            MultiHeadAttentionConfig::new(2, 4).into(),
            LayerNormalizationConfig::default().into(),
            TransformerEncoderConfig::new(2, 8).into(),
            TransformerEncoderConfig::new(2, 8).into(),
        ],
    );
    let names: Vec<&str> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(
        names,
        [
            "multi_head_attention",
            "layer_normalization",
            "transformer_encoder",
            "transformer_encoder_1"
        ]
    );
    let params: Vec<String> = m.named_params().into_iter().map(|(n, _)| n).collect();
    assert!(params.contains(&"multi_head_attention/attention_output/kernel".into()));
    assert!(params.contains(&"transformer_encoder_1/feedforward_intermediate_dense/kernel".into()));
    assert!(params.contains(&"transformer_encoder/self_attention_layer/query/bias".into()));
}

#[test]
fn initial_weights_follow_keras_initializers() {
    let m = model(
        &[5, 8],
        vec![
            MultiHeadAttentionConfig::new(2, 3).value_dim(4).into(),
            LayerNormalizationConfig::default().into(),
        ],
    );
    let p = m.named_params();
    let get = |name: &str| p.iter().find(|(n, _)| n == name).unwrap().1.value.clone();
    // Keras' fans of a rank-3 kernel [a, b, c]: fan_in = a * b, fan_out = a * c.
    for (name, dims, fan_in, fan_out) in [
        ("query/kernel", [8, 2, 3], 16, 24),
        ("value/kernel", [8, 2, 4], 16, 32),
        ("attention_output/kernel", [2, 4, 8], 8, 16),
    ] {
        let w = get(&format!("multi_head_attention/{name}"));
        assert_eq!(w.dims(), dims);
        let limit = (6.0 / (fan_in + fan_out) as f32).sqrt();
        let v = vals(&w);
        assert!(v.iter().all(|x| x.abs() <= limit), "{name}");
        assert!(v.iter().any(|x| x.abs() > 0.6 * limit), "{name}");
    }
    assert_eq!(get("multi_head_attention/key/bias").dims(), [2, 3]);
    assert!(vals(&get("multi_head_attention/query/bias"))
        .iter()
        .all(|&v| v == 0.0));
    assert_eq!(vals(&get("layer_normalization/gamma")), vec![1.0; 8]);
    assert_eq!(vals(&get("layer_normalization/beta")), vec![0.0; 8]);
}

#[test]
fn settings_and_inputs_that_do_not_fit_are_clear_errors() {
    let build = |input: &[usize], layer: LayerConfig| {
        Sequential::builder(input.to_vec())
            .add(layer)
            .build(0)
            .err()
            .map(|e| e.to_string())
    };
    let e = build(&[5, 10], TransformerEncoderConfig::new(4, 8).into()).unwrap();
    assert!(
        e.contains("transformer_encoder") && e.contains("key_dim"),
        "{e}"
    );
    assert!(build(
        &[5, 10],
        TransformerEncoderConfig::new(4, 8).key_dim(3).into()
    )
    .is_none());
    let e = build(&[5, 8], MultiHeadAttentionConfig::new(0, 4).into()).unwrap();
    assert!(e.contains("num_heads"), "{e}");
    let e = build(
        &[5, 8],
        MultiHeadAttentionConfig::new(2, 4).dropout(1.0).into(),
    )
    .unwrap();
    assert!(e.contains("dropout"), "{e}");
    let e = build(&[8], MultiHeadAttentionConfig::new(2, 4).into()).unwrap();
    assert!(e.contains("[seq_len, d_model]"), "{e}");

    let m = model(&[4, 6], vec![MultiHeadAttentionConfig::new(2, 3).into()]);
    let mut ctx = ForwardCtx::inference();
    ctx.mask = Some(Tensor::ones([2, 5]));
    let err = m.forward(&uniform(&[2, 4, 6], 1), &mut ctx).err().unwrap();
    assert!(matches!(err, NnError::Input(_)), "{err}");
}
