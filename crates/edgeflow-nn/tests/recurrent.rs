//! The recurrent layer family: SimpleRNN, LSTM, GRU, Bidirectional, Embedding, Masking,
//! GlobalAveragePooling1D and streaming.
//!
//! * the shared cases RNN-01 (LSTM gate order) and RNN-02 (GRU gate order, `reset_after`
//!   both ways), with Keras' packed weights loaded through `set_weights`;
//! * forward values against an independent numpy reference (`fixtures/rnn_reference.py`);
//! * finite-difference gradients through several time steps, with and without a mask;
//! * masks: padded steps keep the state, outputs there are zero, both directions of
//!   `Bidirectional` skip them;
//! * streaming one step at a time against the whole-sequence forward;
//! * training, the model file, `summary()` parameter counts, configuration JSON and errors.

#[path = "recurrent_support/mod.rs"]
mod support;

use std::sync::Once;

use edgeflow_nn::layers::{
    BidirectionalConfig, EmbeddingConfig, GruConfig, LstmConfig, MaskingConfig, MergeMode,
    RecurrentConfig, SimpleRnnConfig,
};
use edgeflow_nn::{
    Activation, Architecture, DenseConfig, FitOptions, ForwardCtx, LayerConfig, Loss, Metric,
    NnError, OptimizerKind, Sequential, TensorDataset,
};
use edgeflow_tensor::{no_grad, Rng, Tensor};
use serde_json::Value;
use support::{assert_close, check_model, Tolerance};

/// The shared cases' own tolerance: 1e-5 absolute.
const CASE_ABS: Tolerance = Tolerance {
    rel: 0.0,
    abs: 1e-5,
};

/// An f32 forward of a few dozen sigmoid/tanh/matmul steps against the f64 numpy reference:
/// each step rounds to ~1e-7 relative and four steps compound it a little, so 1e-5 relative
/// with a 1e-6 floor (for outputs near zero) is generous for right answers and far below what
/// a wrong gate, bias row or mask handling gives (> 1e-2 here).
const F32_VS_F64: Tolerance = Tolerance {
    rel: 1e-5,
    abs: 1e-6,
};

/// Two f32 computations of the same values by different routes (one step at a time against
/// the whole sequence, the backward direction against a forward run on reversed input): the
/// matmuls may sum in another order, so they agree to rounding, not bit for bit.
const SAME_F32: Tolerance = Tolerance {
    rel: 0.0,
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

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
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

fn predict(model: &Sequential, x: &Tensor) -> Tensor {
    model.predict(x, 64).unwrap()
}

/// Forward with an explicit sequence mask (what `Embedding`/`Masking` would set).
fn forward_masked(model: &Sequential, x: &Tensor, mask: &Tensor) -> Tensor {
    let mut ctx = ForwardCtx::inference();
    ctx.mask = Some(mask.clone());
    no_grad(|| model.forward(x, &mut ctx)).unwrap()
}

/// `x [batch, seq_len, features]` with the time axis reversed.
fn reversed(x: &Tensor) -> Tensor {
    let steps = x.dims()[1];
    let parts: Vec<Tensor> = (0..steps)
        .rev()
        .map(|s| x.narrow(1, s, 1).unwrap())
        .collect();
    Tensor::concat(&parts, 1).unwrap()
}

/// Column `start..start+len` of the last axis, as a flat vector.
fn columns(x: &Tensor, start: usize, len: usize) -> Vec<f32> {
    vals(&x.narrow(-1, start, len).unwrap())
}

// ---- RNN-01 and RNN-02 ----

const RNN_SEQUENCE: [f32; 3] = [1.0, -1.0, 0.5];

#[allow(clippy::excessive_precision)]
const RNN01_H: [f64; 3] = [0.231765183, 0.0458214364, 0.168051928];
#[allow(clippy::excessive_precision)]
const RNN01_C_FINAL: f64 = 0.355802572;
/// What comes out when the Keras arrays are read in ONNX gate order (i, o, f, c).
#[allow(clippy::excessive_precision)]
const RNN01_WRONG_H: [f64; 3] = [0.0400047368, -0.120430598, -0.103132003];
#[allow(clippy::excessive_precision)]
const RNN01_WRONG_C_FINAL: f64 = -0.151756252;

/// Asserts that no value is within 1e-3 of the corresponding wrong value.
fn assert_not_near(what: &str, got: &[f32], wrong: &[f64]) {
    for (g, w) in got.iter().zip(wrong) {
        assert!(
            (*g as f64 - w).abs() > 1e-3,
            "{what}: {got:?} reproduces a known wrong result {wrong:?}"
        );
    }
}

#[test]
fn rnn01_lstm_reads_keras_packed_weights_in_ifco_order() {
    fixed_threads();
    let mut m = model(
        &[3, 1],
        vec![LstmConfig::new(1).return_sequences(true).into()],
    );
    m.set_weights(vec![
        t(&[0.5, -0.4, 0.9, 0.3], &[1, 4]),
        t(&[0.1, 0.2, -0.3, 0.4], &[1, 4]),
        t(&[0.0, 1.0, 0.1, -0.2], &[4]),
    ])
    .unwrap();

    let h = vals(&predict(&m, &t(&RNN_SEQUENCE, &[1, 3, 1])));
    assert_close("RNN-01 h", &h, &RNN01_H, CASE_ABS);
    assert_not_near("RNN-01 h", &h, &RNN01_WRONG_H);

    // The cell state is not an output; the stream exposes it after the last step.
    let mut stream = m.stream().unwrap();
    for x in RNN_SEQUENCE {
        stream.step(&t(&[x], &[1, 1])).unwrap();
    }
    let c = vals(&stream.state("lstm").unwrap()[1]);
    assert_close("RNN-01 c_final", &c, &[RNN01_C_FINAL], CASE_ABS);
    assert_not_near("RNN-01 c_final", &c, &[RNN01_WRONG_C_FINAL]);
}

#[allow(clippy::excessive_precision)]
const RNN02_RESET_AFTER: [f64; 3] = [0.257283149, -0.300333258, 0.0452166321];
#[allow(clippy::excessive_precision)]
const RNN02_RESET_BEFORE: [f64; 3] = [0.235297242, -0.362953182, -0.0299969581];
#[allow(clippy::excessive_precision)]
const RNN02_WRONG_SWAPPED_ZR: [f64; 3] = [0.454364588, 0.158139218, 0.302269462];
#[allow(clippy::excessive_precision)]
const RNN02_WRONG_FORMULA: [f64; 3] = [0.28365178, -0.265364269, 0.112960356];

fn rnn02_h(reset_after: bool, bias: Tensor) -> Vec<f32> {
    let gru = GruConfig::new(1)
        .reset_after(reset_after)
        .return_sequences(true);
    let mut m = model(&[3, 1], vec![gru.into()]);
    m.set_weights(vec![
        t(&[0.5, -0.6, 0.9], &[1, 3]),
        t(&[0.3, 0.7, -0.5], &[1, 3]),
        bias,
    ])
    .unwrap();
    vals(&predict(&m, &t(&RNN_SEQUENCE, &[1, 3, 1])))
}

#[test]
fn rnn02_gru_gate_order_and_both_reset_variants() {
    fixed_threads();
    // reset_after: bias [2, 3] = input row, recurrent row.
    let after = rnn02_h(true, t(&[0.1, 0.0, -0.1, 0.0, 0.2, 0.3], &[2, 3]));
    assert_close("RNN-02 reset_after", &after, &RNN02_RESET_AFTER, CASE_ABS);
    assert_not_near("RNN-02 reset_after", &after, &RNN02_WRONG_SWAPPED_ZR);
    assert_not_near("RNN-02 reset_after", &after, &RNN02_WRONG_FORMULA);

    // reset_before: one bias row, the case's input bias (its recurrent bias is zero).
    let before = rnn02_h(false, t(&[0.1, 0.0, -0.1], &[3]));
    assert_close(
        "RNN-02 reset_before",
        &before,
        &RNN02_RESET_BEFORE,
        CASE_ABS,
    );
}

// ---- forward values against numpy ----

fn reference() -> Value {
    let text = include_str!("fixtures/rnn_reference.json");
    serde_json::from_str(text).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn packed(v: &Value) -> Vec<Tensor> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let shape: Vec<usize> = w["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let values: Vec<f32> = floats(&w["values"]).iter().map(|&x| x as f32).collect();
            Tensor::from_vec(values, shape).unwrap()
        })
        .collect()
}

fn reference_layer(case: &Value, units: usize, return_sequences: bool) -> RecurrentConfig {
    match case["layer"].as_str().unwrap() {
        "SimpleRNN" => SimpleRnnConfig::new(units)
            .return_sequences(return_sequences)
            .into(),
        "LSTM" => LstmConfig::new(units)
            .return_sequences(return_sequences)
            .into(),
        "GRU" => GruConfig::new(units)
            .reset_after(case["reset_after"].as_bool().unwrap())
            .return_sequences(return_sequences)
            .into(),
        other => panic!("unknown layer {other}"),
    }
}

#[test]
fn forward_values_match_the_numpy_reference_with_and_without_a_mask() {
    fixed_threads();
    let r = reference();
    let dim = |k: &str| r[k].as_u64().unwrap() as usize;
    let (batch, steps, features, units) =
        (dim("batch"), dim("seq_len"), dim("features"), dim("units"));
    let xs: Vec<f32> = floats(&r["x"]).iter().map(|&v| v as f32).collect();
    let x = t(&xs, &[batch, steps, features]);

    for case in r["cases"].as_array().unwrap() {
        let label = format!("{} reset_after={}", case["layer"], case["reset_after"]);
        for return_sequences in [true, false] {
            let layer = reference_layer(case, units, return_sequences).into_layer_config();
            // Padded steps hold zeros, so Masking(0) recovers the reference's mask.
            let mut masked = model(
                &[steps, features],
                vec![MaskingConfig::new(0.0).into(), layer.clone()],
            );
            let mut plain = model(&[steps, features], vec![layer]);
            masked.set_weights(packed(&case["weights"])).unwrap();
            plain.set_weights(packed(&case["weights"])).unwrap();

            let key = if return_sequences {
                "sequences"
            } else {
                "final"
            };
            let want_masked = floats(&case[format!("{key}_masked")]);
            let want_plain = floats(&case[format!("{key}_unmasked")]);
            let what = format!("{label} {key}");
            assert_close(
                &format!("{what} masked"),
                &vals(&predict(&masked, &x)),
                &want_masked,
                F32_VS_F64,
            );
            assert_close(
                &format!("{what} unmasked"),
                &vals(&predict(&plain, &x)),
                &want_plain,
                F32_VS_F64,
            );
        }
    }
}

#[test]
fn bidirectional_matches_the_numpy_reference_with_a_mask() {
    fixed_threads();
    let r = reference();
    let case = &r["bidirectional_lstm"];
    let xs: Vec<f32> = floats(&r["x"]).iter().map(|&v| v as f32).collect();
    let x = t(&xs, &[2, 4, 2]);
    for return_sequences in [true, false] {
        let bi = BidirectionalConfig::new(LstmConfig::new(3).return_sequences(return_sequences));
        let mut m = model(&[4, 2], vec![MaskingConfig::new(0.0).into(), bi.into()]);
        m.set_weights(packed(&case["weights"])).unwrap();
        let key = if return_sequences {
            "concat_sequences_masked"
        } else {
            "concat_final_masked"
        };
        assert_close(
            key,
            &vals(&predict(&m, &x)),
            &floats(&case[key]),
            F32_VS_F64,
        );
    }
}

// ---- gradients ----

/// Mask with an interior and a trailing padded step in one sample, a leading real stretch and
/// an interior gap in the other.
fn grad_mask() -> Tensor {
    t(&[1., 1., 0., 1., 0., 1., 0., 1., 1., 1.], &[2, 5])
}

fn grad_check(name: &str, layer: LayerConfig, extra: Option<LayerConfig>) {
    let mut layers = vec![layer];
    layers.extend(extra);
    let mut m = model(&[5, 2], layers);
    // Non-zero biases, so their gradients and every term they enter are exercised.
    let w: Vec<Tensor> = m
        .weights()
        .iter()
        .enumerate()
        .map(|(i, w)| {
            w.add(&uniform(w.dims(), 100 + i as u64).mul_scalar(0.3).unwrap())
                .unwrap()
        })
        .collect();
    m.set_weights(w).unwrap();
    let x = uniform(&[2, 5, 2], 11);
    check_model(&format!("{name} unmasked"), &mut m, &x, None);
    check_model(&format!("{name} masked"), &mut m, &x, Some(&grad_mask()));
}

#[test]
fn simple_rnn_gradients_match_finite_differences() {
    fixed_threads();
    for rs in [true, false] {
        let layer = SimpleRnnConfig::new(3).return_sequences(rs).into();
        grad_check(&format!("SimpleRNN rs={rs}"), layer, None);
    }
}

#[test]
fn lstm_gradients_match_finite_differences() {
    fixed_threads();
    for rs in [true, false] {
        let layer = LstmConfig::new(3).return_sequences(rs).into();
        grad_check(&format!("LSTM rs={rs}"), layer, None);
    }
}

#[test]
fn gru_gradients_match_finite_differences_for_both_reset_variants() {
    fixed_threads();
    for reset_after in [true, false] {
        for rs in [true, false] {
            let layer = GruConfig::new(3)
                .reset_after(reset_after)
                .return_sequences(rs)
                .into();
            grad_check(
                &format!("GRU reset_after={reset_after} rs={rs}"),
                layer,
                None,
            );
        }
    }
}

#[test]
fn bidirectional_and_masked_pooling_gradients_match_finite_differences() {
    fixed_threads();
    let bi = BidirectionalConfig::new(GruConfig::new(2).return_sequences(true))
        .merge_mode(MergeMode::Ave);
    grad_check("Bidirectional(GRU) ave", bi.into(), None);
    let lstm = LstmConfig::new(3).return_sequences(true).into();
    grad_check(
        "LSTM -> GlobalAveragePooling1D",
        lstm,
        Some(LayerConfig::global_average_pooling_1d()),
    );
}

// ---- masks ----

#[test]
fn padded_steps_keep_the_state_and_output_zeros() {
    fixed_threads();
    // Sample 0: real, pad, real, pad, real; sample 1: real, real, real, pad, pad.
    let x = uniform(&[2, 5, 2], 3);
    let mask = t(&[1., 0., 1., 0., 1., 1., 1., 1., 0., 0.], &[2, 5]);
    let real: [&[usize]; 2] = [&[0, 2, 4], &[0, 1, 2]];
    for layer in [
        RecurrentConfig::from(SimpleRnnConfig::new(3)),
        LstmConfig::new(3).into(),
        GruConfig::new(3).into(),
        GruConfig::new(3).reset_after(false).into(),
    ] {
        let name = layer.type_name();
        let last = model(&[5, 2], vec![layer.clone().into_layer_config()]);
        let mut all = model(
            &[5, 2],
            vec![layer
                .clone()
                .with_return_sequences(true)
                .into_layer_config()],
        );
        let mut short = model(&[3, 2], vec![layer.into_layer_config()]);
        all.set_weights(last.weights()).unwrap();
        short.set_weights(last.weights()).unwrap();

        let final_masked = forward_masked(&last, &x, &mask);
        let outputs = vals(&forward_masked(&all, &x, &mask));
        for (b, steps) in real.iter().enumerate() {
            // The same layer on only the real steps ends in the same state.
            let picked: Vec<Tensor> = steps
                .iter()
                .map(|&s| x.narrow(0, b, 1).unwrap().narrow(1, s, 1).unwrap())
                .collect();
            let compact = Tensor::concat(&picked, 1).unwrap();
            let want = vals(&predict(&short, &compact));
            let got = vals(&final_masked.narrow(0, b, 1).unwrap());
            assert_close(
                &format!("{name} sample {b} final"),
                &got,
                &f64s(&want),
                SAME_F32,
            );
            // Padded steps output exact zeros.
            for s in (0..5).filter(|s| !steps.contains(s)) {
                let at = &outputs[(b * 5 + s) * 3..(b * 5 + s + 1) * 3];
                assert_eq!(at, &[0.0; 3], "{name} sample {b} step {s}");
            }
        }
    }
}

#[test]
fn a_streamed_padded_step_leaves_every_state_bit_identical() {
    fixed_threads();
    let m = model(
        &[4, 2],
        vec![
            MaskingConfig::new(0.0).into(),
            LstmConfig::new(3).into(),
            DenseConfig::new(2).into(),
        ],
    );
    let mut stream = m.stream().unwrap();
    stream.step(&t(&[0.3, -0.7], &[1, 2])).unwrap();
    let before: Vec<Vec<u32>> = stream.state("lstm").unwrap().iter().map(bits).collect();
    let y_before = stream.step(&t(&[0.3, -0.7], &[1, 2])).unwrap();
    let before2: Vec<Vec<u32>> = stream.state("lstm").unwrap().iter().map(bits).collect();
    assert_ne!(before, before2, "a real step moves the state");
    let y_pad = stream.step(&t(&[0.0, 0.0], &[1, 2])).unwrap();
    let after: Vec<Vec<u32>> = stream.state("lstm").unwrap().iter().map(bits).collect();
    assert_eq!(before2, after, "h and c are unchanged by a padded step");
    assert_eq!(
        bits(&y_before),
        bits(&y_pad),
        "the output still reflects the kept state"
    );
}

#[test]
fn a_mask_that_does_not_fit_the_input_is_an_input_error() {
    fixed_threads();
    let m = model(&[5, 2], vec![LstmConfig::new(3).into()]);
    let mut ctx = ForwardCtx::inference();
    ctx.mask = Some(Tensor::ones([2, 4]));
    let err = m.forward(&uniform(&[2, 5, 2], 1), &mut ctx).unwrap_err();
    assert!(matches!(err, NnError::Input(_)), "{err}");
    assert!(err.to_string().contains("lstm"), "{err}");
}

#[test]
fn global_average_pooling_1d_averages_only_the_real_steps() {
    fixed_threads();
    let m = model(&[3, 2], vec![LayerConfig::global_average_pooling_1d()]);
    let x = t(
        &[1., 2., 3., 4., 100., 100., 5., 6., 7., 8., 9., 10.],
        &[2, 3, 2],
    );
    let mask = t(&[1., 1., 0., 1., 1., 1.], &[2, 3]);
    assert_eq!(vals(&forward_masked(&m, &x, &mask)), vec![2., 3., 7., 8.]);
    // Without a mask every step counts.
    let want = [104. / 3., 106. / 3., 7., 8.];
    assert_close("unmasked", &vals(&predict(&m, &x)), &want, SAME_F32);
}

#[test]
fn embedding_mask_zero_and_masking_set_the_mask_and_pooling_clears_it() {
    fixed_threads();
    let emb = model(
        &[4],
        vec![EmbeddingConfig::new(5, 3).mask_zero(true).into()],
    );
    let mut ctx = ForwardCtx::inference();
    emb.forward(&t(&[1., 2., 0., 0., 4., 0., 3., 0.], &[2, 4]), &mut ctx)
        .unwrap();
    assert_eq!(
        vals(ctx.mask.as_ref().unwrap()),
        vec![1., 1., 0., 0., 1., 0., 1., 0.]
    );

    let masking = model(
        &[3, 2],
        vec![
            MaskingConfig::new(-1.0).into(),
            LayerConfig::global_average_pooling_1d(),
        ],
    );
    let x = t(
        &[1., 2., -1., -1., 3., -1., 5., 6., 7., 8., 9., 10.],
        &[2, 3, 2],
    );
    let mut ctx = ForwardCtx::inference();
    let y = masking.forward(&x, &mut ctx).unwrap();
    // Only a step whose features are all -1 is padding; (3, -1) is real.
    assert_eq!(vals(&y), vec![2., 0.5, 7., 8.]);
    assert!(
        ctx.mask.is_none(),
        "pooling removes the time axis and the mask"
    );
}

// ---- Bidirectional ----

#[test]
fn bidirectional_output_shapes_for_every_merge_mode() {
    fixed_threads();
    let x = uniform(&[3, 5, 4], 2);
    for (mode, width) in [
        (MergeMode::Concat, 12),
        (MergeMode::Sum, 6),
        (MergeMode::Mul, 6),
        (MergeMode::Ave, 6),
    ] {
        for rs in [true, false] {
            let bi =
                BidirectionalConfig::new(GruConfig::new(6).return_sequences(rs)).merge_mode(mode);
            let m = model(&[5, 4], vec![bi.into()]);
            let want: Vec<usize> = if rs { vec![5, width] } else { vec![width] };
            assert_eq!(m.output_shape(), &want[..], "{mode:?} rs={rs}");
            let mut full = vec![3];
            full.extend(&want);
            assert_eq!(predict(&m, &x).dims(), &full[..], "{mode:?} rs={rs}");
            assert_eq!(m.param_count(), 2 * 3 * 6 * (4 + 6 + 2));
        }
    }
}

/// A Bidirectional(GRU) with both directions given the weights of a plain GRU.
fn mirrored(rs: bool, steps: usize) -> (Sequential, Sequential) {
    let gru = GruConfig::new(3).return_sequences(rs);
    let uni = model(&[steps, 2], vec![gru.clone().into()]);
    let mut bi = model(&[steps, 2], vec![BidirectionalConfig::new(gru).into()]);
    let w = uni.weights();
    bi.set_weights(w.iter().chain(&w).cloned().collect())
        .unwrap();
    (uni, bi)
}

#[test]
fn the_backward_direction_reads_the_sequence_reversed() {
    fixed_threads();
    let x = uniform(&[2, 5, 2], 5);
    let (uni, bi) = mirrored(false, 5);
    let out = predict(&bi, &x);
    let fwd = vals(&predict(&uni, &x));
    let bwd = vals(&predict(&uni, &reversed(&x)));
    assert_close("forward half", &columns(&out, 0, 3), &f64s(&fwd), SAME_F32);
    assert_close("backward half", &columns(&out, 3, 3), &f64s(&bwd), SAME_F32);
    assert!(
        fwd.iter().zip(&bwd).any(|(a, b)| (a - b).abs() > 1e-3),
        "the test input must tell the directions apart"
    );

    // With return_sequences the backward outputs are put back in input order.
    let (uni, bi) = mirrored(true, 5);
    let out = predict(&bi, &x);
    let bwd = reversed(&predict(&uni, &reversed(&x)));
    assert_close(
        "backward sequence",
        &columns(&out, 3, 3),
        &f64s(&vals(&bwd)),
        SAME_F32,
    );
}

#[test]
fn with_a_mask_the_backward_direction_reads_each_sequence_reversed_within_its_length() {
    fixed_threads();
    // Sample 1 is 3 steps long, right-padded to 5.
    let mut x = vals(&uniform(&[2, 5, 2], 9));
    x[16..20].fill(0.0);
    let x = t(&x, &[2, 5, 2]);
    let (uni3, _) = mirrored(false, 3);
    let (_, bi) = mirrored(false, 5);
    let mut masked = model(
        &[5, 2],
        vec![
            MaskingConfig::new(0.0).into(),
            BidirectionalConfig::new(GruConfig::new(3)).into(),
        ],
    );
    masked.set_weights(bi.weights()).unwrap();
    let out = predict(&masked, &x);

    let sample1 = x.narrow(0, 1, 1).unwrap().narrow(1, 0, 3).unwrap();
    let want_bwd = vals(&predict(&uni3, &reversed(&sample1)));
    let want_fwd = vals(&predict(&uni3, &sample1));
    let got = out.narrow(0, 1, 1).unwrap();
    assert_close(
        "sample 1 forward",
        &columns(&got, 0, 3),
        &f64s(&want_fwd),
        SAME_F32,
    );
    assert_close(
        "sample 1 backward",
        &columns(&got, 3, 3),
        &f64s(&want_bwd),
        SAME_F32,
    );
}

// ---- streaming ----

#[test]
fn streaming_step_by_step_matches_the_whole_sequence() {
    fixed_threads();
    let m = model(
        &[6, 2],
        vec![
            SimpleRnnConfig::new(4).return_sequences(true).into(),
            LstmConfig::new(3).return_sequences(true).into(),
            GruConfig::new(3)
                .reset_after(false)
                .return_sequences(true)
                .into(),
            DenseConfig::new(2).activation(Activation::Softmax).into(),
        ],
    );
    let x = uniform(&[2, 6, 2], 4);
    let full = predict(&m, &x);
    let mut stream = m.stream().unwrap();
    let run = |stream: &mut edgeflow_nn::layers::Stream<'_>| -> Vec<Vec<f32>> {
        (0..6)
            .map(|s| {
                let step = x.narrow(1, s, 1).unwrap().reshape([2, 2]).unwrap();
                vals(&stream.step(&step).unwrap())
            })
            .collect()
    };
    let first = run(&mut stream);
    for (s, got) in first.iter().enumerate() {
        let want = vals(&full.narrow(1, s, 1).unwrap());
        assert_close(&format!("step {s}"), got, &f64s(&want), SAME_F32);
    }
    assert_eq!(stream.steps(), 6);

    stream.reset();
    assert_eq!(stream.steps(), 0);
    assert!(stream.state("lstm").unwrap().is_empty());
    assert_eq!(
        run(&mut stream),
        first,
        "after reset the stream starts over"
    );
}

#[test]
fn streaming_a_masked_token_model_matches_every_prefix() {
    fixed_threads();
    let layers = vec![
        EmbeddingConfig::new(10, 4).mask_zero(true).into(),
        GruConfig::new(3).into(),
        DenseConfig::new(2).into(),
    ];
    let m = model(&[6], layers.clone());
    // Sample 1 has padding inside and at the end.
    let ids = t(&[3., 1., 4., 1., 5., 9., 2., 6., 0., 5., 0., 0.], &[2, 6]);
    let mut stream = m.stream().unwrap();
    for s in 0..6 {
        let got = vals(
            &stream
                .step(&ids.narrow(1, s, 1).unwrap().reshape([2]).unwrap())
                .unwrap(),
        );
        // What the whole-sequence forward gives when the sequence ends at step s.
        let mut prefix = model(&[s + 1], layers.clone());
        prefix.set_weights(m.weights()).unwrap();
        let want = vals(&predict(&prefix, &ids.narrow(1, 0, s + 1).unwrap()));
        assert_close(&format!("prefix {s}"), &got, &f64s(&want), SAME_F32);
    }
}

#[test]
fn streaming_refuses_models_and_steps_it_cannot_run() {
    fixed_threads();
    let bi = model(
        &[4, 2],
        vec![BidirectionalConfig::new(LstmConfig::new(2)).into()],
    );
    let err = bi.stream().err().expect("Bidirectional needs the future");
    assert!(matches!(err, NnError::Config(_)), "{err}");
    assert!(err.to_string().contains("bidirectional"), "{err}");

    let pooled = model(
        &[4, 2],
        vec![
            LstmConfig::new(2).return_sequences(true).into(),
            LayerConfig::global_average_pooling_1d(),
        ],
    );
    let err = pooled
        .stream()
        .err()
        .expect("pooling needs the whole sequence");
    assert!(
        err.to_string().contains("global_average_pooling1d"),
        "{err}"
    );

    let dense = model(&[4, 2], vec![DenseConfig::new(2).into()]);
    assert!(matches!(dense.stream(), Err(NnError::Config(_))));

    let m = model(&[4, 2], vec![LstmConfig::new(2).into()]);
    let mut stream = m.stream().unwrap();
    let err = stream.step(&Tensor::ones([1, 4, 2])).unwrap_err();
    assert!(matches!(err, NnError::Input(_)), "{err}");
    stream.step(&Tensor::ones([1, 2])).unwrap();
    let err = stream.step(&Tensor::ones([3, 2])).unwrap_err();
    assert!(matches!(err, NnError::Input(_)), "a changed batch: {err}");
}

// ---- training ----

/// Token sequences of length 3..=8 over ids 1..=9, right-padded with 0 to 8; the label is
/// whether the last real token is 5 or more. Solving it needs the state carried across the
/// padding, i.e. the mask.
fn last_token_task(n: usize, seed: u64) -> TensorDataset {
    let mut rng = Rng::seed(seed);
    let (mut ids, mut labels) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let len = 3 + rng.below(6);
        let mut row = vec![0.0f32; 8];
        for v in row.iter_mut().take(len) {
            *v = (1 + rng.below(9)) as f32;
        }
        labels.push(i64::from(row[len - 1] >= 5.0));
        ids.extend(row);
    }
    TensorDataset::new(t(&ids, &[n, 8]), Tensor::from_vec(labels, [n]).unwrap()).unwrap()
}

#[test]
fn embedding_lstm_classifier_learns_a_padded_sequence_task() {
    fixed_threads();
    let mut m = model(
        &[8],
        vec![
            EmbeddingConfig::new(10, 8).mask_zero(true).into(),
            LstmConfig::new(16).into(),
            DenseConfig::new(2).activation(Activation::Softmax).into(),
        ],
    );
    let adam = OptimizerKind::Adam {
        learning_rate: 0.02,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    m.compile(adam, loss, vec![Metric::Accuracy]).unwrap();
    let train = last_token_task(512, 1);
    let opts = FitOptions {
        epochs: 12,
        batch_size: 32,
        ..FitOptions::default()
    };
    let history = m.fit(&train, None, &opts, &mut []).unwrap();
    let test = m.evaluate(&last_token_task(256, 2), 64).unwrap();
    let acc = test.metric("accuracy").unwrap();
    println!(
        "last-token task: train loss {:.4} -> {:.4}, held-out accuracy {acc:.4}",
        history.epochs[0].loss,
        history.epochs.last().unwrap().loss
    );
    assert!(acc >= 0.95, "held-out accuracy {acc}");
}

// ---- model file, summary, configuration ----

#[test]
fn recurrent_models_round_trip_through_the_model_file_bit_for_bit() {
    fixed_threads();
    let dir = tempfile::tempdir().unwrap();
    let token_model = model(
        &[6],
        vec![
            EmbeddingConfig::new(12, 4).mask_zero(true).into(),
            BidirectionalConfig::new(LstmConfig::new(3).return_sequences(true))
                .merge_mode(MergeMode::Sum)
                .into(),
            GruConfig::new(3)
                .reset_after(false)
                .return_sequences(true)
                .into(),
            SimpleRnnConfig::new(2).activation(Activation::Relu).into(),
            DenseConfig::new(2).into(),
        ],
    );
    let ids = t(&[1., 5., 7., 0., 0., 0., 11., 2., 3., 4., 0., 6.], &[2, 6]);
    let series_model = model(
        &[5, 2],
        vec![
            MaskingConfig::new(0.0).into(),
            GruConfig::new(4).return_sequences(true).into(),
            LayerConfig::global_average_pooling_1d(),
        ],
    );
    let series = uniform(&[3, 5, 2], 8);
    for (i, (m, x)) in [(token_model, ids), (series_model, series)]
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
        assert_eq!(bits(&predict(&loaded, x)), bits(&predict(m, x)));
    }
}

#[test]
fn summary_parameter_counts_equal_keras() {
    fixed_threads();
    let cases: [(Vec<usize>, LayerConfig, usize, &str); 6] = [
        (
            vec![10, 6],
            LstmConfig::new(64).into(),
            18_176,
            "lstm (LSTM)",
        ),
        (vec![10, 12], GruConfig::new(64).into(), 14_976, "gru (GRU)"),
        (
            vec![10, 12],
            GruConfig::new(64).reset_after(false).into(),
            14_784,
            "gru (GRU)",
        ),
        // units * (features + units + 1) = 32 * 41.
        (
            vec![10, 8],
            SimpleRnnConfig::new(32).into(),
            1_312,
            "simple_rnn (SimpleRNN)",
        ),
        (
            vec![100],
            EmbeddingConfig::new(20_000, 64).into(),
            1_280_000,
            "embedding (Embedding)",
        ),
        (
            vec![10, 6],
            BidirectionalConfig::new(LstmConfig::new(64)).into(),
            36_352,
            "bidirectional (Bidirectional)",
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
    let bi = model(
        &[10, 6],
        vec![BidirectionalConfig::new(LstmConfig::new(64)).into()],
    );
    assert!(bi.summary().contains("(None, 128)"), "{}", bi.summary());
}

#[test]
fn configuration_json_uses_keras_names_and_defaults() {
    let parse = |s: &str| serde_json::from_str::<LayerConfig>(s);
    assert_eq!(
        parse(r#"{"type": "LSTM", "units": 4}"#).unwrap(),
        LstmConfig::new(4).into()
    );
    assert_eq!(
        parse(r#"{"type": "GRU", "units": 4}"#).unwrap(),
        GruConfig::new(4).into()
    );
    assert_eq!(
        parse(r#"{"type": "SimpleRNN", "units": 4, "return_sequences": true}"#).unwrap(),
        SimpleRnnConfig::new(4).return_sequences(true).into()
    );
    assert_eq!(
        parse(
            r#"{"type": "Bidirectional", "layer": {"type": "GRU", "units": 2},
                "merge_mode": "mul"}"#
        )
        .unwrap(),
        BidirectionalConfig::new(GruConfig::new(2))
            .merge_mode(MergeMode::Mul)
            .into()
    );
    assert_eq!(
        parse(r#"{"type": "Embedding", "input_dim": 100, "output_dim": 8}"#).unwrap(),
        EmbeddingConfig::new(100, 8).into()
    );
    assert_eq!(
        parse(r#"{"type": "Masking"}"#).unwrap(),
        MaskingConfig::new(0.0).into()
    );
    assert!(parse(r#"{"type": "GlobalAveragePooling1D"}"#).is_ok());
    let err = parse(r#"{"type": "LSTM", "units": 4, "stateful": true}"#).unwrap_err();
    assert!(err.to_string().contains("stateful"), "{err}");
    assert!(parse(r#"{"type": "Bidirectional", "layer": {"type": "Dense", "units": 2}}"#).is_err());

    let m = model(
        &[5, 3],
        vec![
            SimpleRnnConfig::new(2).return_sequences(true).into(),
            LstmConfig::new(2).return_sequences(true).into(),
            GruConfig::new(2).into(),
        ],
    );
    let names: Vec<&str> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["simple_rnn", "lstm", "gru"]);
}

#[test]
fn initial_weights_follow_keras_initializers() {
    let m = model(
        &[5, 6],
        vec![
            LstmConfig::new(4).return_sequences(true).into(),
            GruConfig::new(4).into(),
        ],
    );
    let p = m.named_params();
    let get = |name: &str| p.iter().find(|(n, _)| n == name).unwrap().1.value.clone();

    // Orthogonal recurrent kernels [units, gates*units]: U·Uᵀ = I.
    for (name, width) in [("lstm/recurrent_kernel", 16), ("gru/recurrent_kernel", 12)] {
        let u = get(name);
        assert_eq!(u.dims(), &[4, width]);
        let gram = vals(&u.matmul(&u.transpose(0, 1).unwrap()).unwrap());
        let eye: Vec<f64> = (0..16)
            .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
            .collect();
        assert_close(
            name,
            &gram,
            &eye,
            Tolerance {
                rel: 0.0,
                abs: 1e-5,
            },
        );
    }
    // Glorot-uniform kernel: limit sqrt(6 / (6 + 16)).
    let limit = (6.0f32 / 22.0).sqrt();
    assert!(vals(&get("lstm/kernel")).iter().all(|v| v.abs() <= limit));
    let bias = vals(&get("lstm/bias"));
    assert_eq!(&bias[..4], &[0.0; 4]);
    assert_eq!(&bias[4..8], &[1.0; 4], "unit_forget_bias");
    assert_eq!(&bias[8..], &[0.0; 8]);
    assert_eq!(get("gru/bias").dims(), &[2, 12], "reset_after bias rows");

    let emb = model(&[3], vec![EmbeddingConfig::new(50, 8).into()]);
    assert!(vals(&emb.weights()[0]).iter().all(|v| v.abs() <= 0.05));
}

#[test]
fn embedding_takes_integer_ids_in_f32_or_i64_and_names_a_bad_one() {
    fixed_threads();
    let m = model(&[3], vec![EmbeddingConfig::new(5, 2).into()]);
    let from_f32 = predict(&m, &t(&[0., 4., 2.], &[1, 3]));
    let from_i64 = m
        .forward(
            &Tensor::from_vec(vec![0i64, 4, 2], [1, 3]).unwrap(),
            &mut ForwardCtx::inference(),
        )
        .unwrap();
    assert_eq!(bits(&from_f32), bits(&from_i64));
    let table = vals(&m.weights()[0]);
    assert_eq!(
        vals(&from_f32),
        [&table[0..2], &table[8..10], &table[4..6]].concat()
    );

    for (bad, shown) in [(2.5f32, "2.5"), (5.0, "5"), (-1.0, "-1")] {
        let err = m.predict(&t(&[0., bad, 1.], &[1, 3]), 1).unwrap_err();
        assert!(matches!(err, NnError::Input(_)), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("embedding") && msg.contains(shown), "{msg}");
        assert!(msg.contains("position 1"), "{msg}");
    }
}
