//! Optimizer update rules, gradient clipping and learning-rate schedules.
//!
//! The update rules are checked against `fixtures/optimizer_reference.json`, written in float64
//! by `fixtures/optimizer_reference.py` from the Keras formulas; clipping and schedules against
//! numbers worked out by hand in the comments.

use edgeflow_nn::{NnError, Optimizer, OptimizerConfig, OptimizerKind, Schedule};
use edgeflow_tensor::Tensor;
use serde::Deserialize;

/// Tolerance of an f32 computation against a float64 reference: `abs + rel * |expected|`.
#[derive(Clone, Copy)]
struct Tol {
    abs: f64,
    rel: f64,
}

/// Three f32 optimizer steps against float64: the decay factors alone (`1 - 0.999` in f32)
/// carry a relative error near 1e-5 into each step.
const F32_STEPS: Tol = Tol {
    abs: 1e-6,
    rel: 1e-5,
};

/// Closed-form arithmetic on a handful of f32 values.
const F32_EXACTISH: Tol = Tol {
    abs: 1e-6,
    rel: 1e-6,
};

fn assert_close(actual: f64, expected: f64, tol: Tol, what: &str) {
    let bound = tol.abs + tol.rel * expected.abs();
    assert!(
        (actual - expected).abs() <= bound,
        "{what}: got {actual}, expected {expected} (bound {bound:e})"
    );
}

#[derive(Deserialize)]
struct Reference {
    shapes: Vec<Vec<usize>>,
    w0: Vec<Vec<f32>>,
    grads: Vec<Vec<Vec<f32>>>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    optimizer: OptimizerConfig,
    /// Parameters after each step: `expected[step][tensor][element]`.
    expected: Vec<Vec<Vec<f64>>>,
}

fn reference() -> Reference {
    let text = include_str!("fixtures/optimizer_reference.json");
    serde_json::from_str(text).expect("fixtures/optimizer_reference.json parses")
}

fn tensors(values: &[Vec<f32>], shapes: &[Vec<usize>]) -> Vec<Tensor> {
    values
        .iter()
        .zip(shapes)
        .map(|(v, s)| Tensor::from_vec(v.clone(), s.clone()).unwrap())
        .collect()
}

fn step(opt: &mut Optimizer, params: &mut [Tensor], grads: Vec<Tensor>) {
    let mut refs: Vec<&mut Tensor> = params.iter_mut().collect();
    let grads: Vec<Option<Tensor>> = grads.into_iter().map(Some).collect();
    opt.step(&mut refs, &grads).unwrap();
}

fn run_case(reference: &Reference, case: &Case) {
    let mut opt = Optimizer::new(case.optimizer.clone()).unwrap();
    let mut params = tensors(&reference.w0, &reference.shapes);
    for (t, (grads, expected)) in reference.grads.iter().zip(&case.expected).enumerate() {
        step(&mut opt, &mut params, tensors(grads, &reference.shapes));
        for (i, (p, e)) in params.iter().zip(expected).enumerate() {
            let got = p.to_vec_f32().unwrap();
            assert_eq!(got.len(), e.len());
            for (j, (&g, &e)) in got.iter().zip(e).enumerate() {
                let what = format!("{} step {} tensor {i} element {j}", case.name, t + 1);
                assert_close(g as f64, e, F32_STEPS, &what);
            }
        }
    }
    assert_eq!(opt.iterations(), 3, "{}", case.name);
}

fn reference_case(name: &str) {
    let reference = reference();
    let case = reference
        .cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name} in the fixture"));
    run_case(&reference, case);
}

#[test]
fn fixture_covers_every_rule() {
    let names: Vec<String> = reference().cases.into_iter().map(|c| c.name).collect();
    for expected in [
        "sgd_plain",
        "sgd_momentum",
        "sgd_nesterov",
        "rmsprop_keras_defaults",
        "rmsprop_lr0.01_rho0.8",
        "adam_keras_defaults",
        "adam_lr0.05_b1_0.8_b2_0.99_eps1e-3",
        "adamw_keras_defaults",
        "adamw_lr0.01_wd0.1",
    ] {
        assert!(names.iter().any(|n| n == expected), "missing {expected}");
    }
}

#[test]
fn sgd_plain_matches_reference() {
    reference_case("sgd_plain");
}

#[test]
fn sgd_momentum_matches_reference() {
    reference_case("sgd_momentum");
}

#[test]
fn sgd_nesterov_matches_reference() {
    reference_case("sgd_nesterov");
}

#[test]
fn rmsprop_matches_reference() {
    reference_case("rmsprop_keras_defaults");
    reference_case("rmsprop_lr0.01_rho0.8");
}

#[test]
fn adam_matches_reference() {
    reference_case("adam_keras_defaults");
    reference_case("adam_lr0.05_b1_0.8_b2_0.99_eps1e-3");
}

#[test]
fn adamw_matches_reference() {
    reference_case("adamw_keras_defaults");
    reference_case("adamw_lr0.01_wd0.1");
}

#[test]
fn adam_first_step_by_hand() {
    // At t = 1 with Keras defaults: m = 0.1 g, v = 0.001 g^2,
    // alpha = 1e-3 * sqrt(0.001) / 0.1, so the step is
    // 1e-3 * sqrt(0.001) / 0.1 * 0.1 g / (sqrt(0.001) |g| + 1e-7) ~= 1e-3 * sign(g).
    // For g = 0.5: 1e-3 * 0.5 * sqrt(0.001) / (0.5 * sqrt(0.001) + 1e-7) = 9.99367...e-4.
    let mut opt = Optimizer::new(OptimizerKind::adam().into()).unwrap();
    let mut params = vec![Tensor::from_vec(vec![1.0f32], [1]).unwrap()];
    step(
        &mut opt,
        &mut params,
        vec![Tensor::from_vec(vec![0.5f32], [1]).unwrap()],
    );
    let s = 0.001f64.sqrt();
    let expected = 1.0 - 1e-3 * 0.5 * s / (0.5 * s + 1e-7);
    let got = params[0].to_vec_f32().unwrap()[0] as f64;
    assert_close(got, expected, F32_EXACTISH, "adam step 1");
}

#[test]
fn keras_defaults_when_fields_are_omitted() {
    let adam: OptimizerConfig = serde_json::from_str(r#"{"type": "adam"}"#).unwrap();
    assert_eq!(adam.kind, OptimizerKind::adam());
    let sgd: OptimizerConfig = serde_json::from_str(r#"{"type": "sgd"}"#).unwrap();
    assert_eq!(
        sgd.kind,
        OptimizerKind::Sgd {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false
        }
    );
    let rms: OptimizerConfig = serde_json::from_str(r#"{"type": "rmsprop"}"#).unwrap();
    assert_eq!(
        rms.kind,
        OptimizerKind::Rmsprop {
            learning_rate: 1e-3,
            rho: 0.9,
            epsilon: 1e-7
        }
    );
    let adamw: OptimizerConfig = serde_json::from_str(r#"{"type": "adamw"}"#).unwrap();
    assert_eq!(
        adamw.kind,
        OptimizerKind::AdamW {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            weight_decay: 0.004
        }
    );
}

#[test]
fn config_with_clipping_and_schedule_parses_and_round_trips() {
    let text = r#"{"type": "adam", "learning_rate": 0.01, "clipnorm": 1.0,
        "global_clipnorm": 5.0,
        "schedule": {"type": "cosine_decay", "decay_steps": 100, "alpha": 0.1}}"#;
    let config: OptimizerConfig = serde_json::from_str(text).unwrap();
    assert_eq!(config.kind.learning_rate(), 0.01);
    assert_eq!(config.clipnorm, Some(1.0));
    assert_eq!(config.global_clipnorm, Some(5.0));
    assert_eq!(
        config.schedule,
        Some(Schedule::CosineDecay {
            decay_steps: 100,
            alpha: 0.1
        })
    );
    let again: OptimizerConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(again, config);
}

#[test]
fn unknown_optimizer_or_field_is_rejected() {
    assert!(serde_json::from_str::<OptimizerConfig>(r#"{"type": "adagrad"}"#).is_err());
    // `lr` is the Keras 2 spelling; a typo must not silently fall back to the default.
    assert!(serde_json::from_str::<OptimizerConfig>(r#"{"type": "adam", "lr": 0.1}"#).is_err());
}

#[test]
fn invalid_hyper_parameters_are_config_errors() {
    let zero_lr = OptimizerKind::Sgd {
        learning_rate: 0.0,
        momentum: 0.0,
        nesterov: false,
    };
    assert!(matches!(
        Optimizer::new(zero_lr.into()),
        Err(NnError::Config(_))
    ));
    let bad_beta = OptimizerKind::Adam {
        learning_rate: 1e-3,
        beta_1: 1.0,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    assert!(matches!(
        Optimizer::new(bad_beta.into()),
        Err(NnError::Config(_))
    ));
}

#[test]
fn gradient_shape_mismatch_is_an_input_error() {
    let mut opt = Optimizer::new(OptimizerKind::adam().into()).unwrap();
    let mut w = Tensor::zeros([2, 2]);
    let g = Some(Tensor::zeros([4]));
    let err = opt.step(&mut [&mut w], &[g]).unwrap_err();
    assert!(matches!(err, NnError::Input(_)), "{err}");
    assert!(err.to_string().contains("[4]") && err.to_string().contains("[2, 2]"));
}

/// Plain SGD with learning rate 1 from zero weights: the weights end up as minus the
/// (clipped) gradients.
fn clipped(clipnorm: Option<f32>, global_clipnorm: Option<f32>) -> Vec<Vec<f32>> {
    let config = OptimizerConfig {
        clipnorm,
        global_clipnorm,
        ..OptimizerKind::Sgd {
            learning_rate: 1.0,
            momentum: 0.0,
            nesterov: false,
        }
        .into()
    };
    let mut opt = Optimizer::new(config).unwrap();
    let mut params = vec![Tensor::zeros([2]), Tensor::zeros([1]), Tensor::zeros([2])];
    let grads = vec![
        Tensor::from_vec(vec![3.0f32, 4.0], [2]).unwrap(),
        Tensor::from_vec(vec![12.0f32], [1]).unwrap(),
        Tensor::from_vec(vec![0.3f32, -0.4], [2]).unwrap(),
    ];
    step(&mut opt, &mut params, grads);
    params
        .iter()
        .map(|p| p.to_vec_f32().unwrap().iter().map(|v| -v).collect())
        .collect()
}

fn assert_vecs(actual: &[Vec<f32>], expected: &[&[f64]], what: &str) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(a.len(), e.len());
        for (j, (&a, &e)) in a.iter().zip(e.iter()).enumerate() {
            assert_close(a as f64, e, F32_EXACTISH, &format!("{what} [{i}][{j}]"));
        }
    }
}

#[test]
fn clipnorm_scales_each_tensor_on_its_own() {
    // Norms: |[3, 4]| = 5, |[12]| = 12, |[0.3, -0.4]| = 0.5. With clipnorm 1 the first two
    // are scaled to norm 1, the third is under the limit and stays.
    let got = clipped(Some(1.0), None);
    assert_vecs(&got, &[&[0.6, 0.8], &[1.0], &[0.3, -0.4]], "clipnorm 1");
}

#[test]
fn global_clipnorm_scales_all_tensors_together() {
    // Global norm: sqrt(9 + 16 + 144 + 0.09 + 0.16) = sqrt(169.25) = 13.0096...; with
    // global_clipnorm 6.5 everything is scaled by 6.5 / 13.00961 = 0.499630...
    let s = 6.5 / 169.25f64.sqrt();
    let got = clipped(None, Some(6.5));
    assert_vecs(
        &got,
        &[&[3.0 * s, 4.0 * s], &[12.0 * s], &[0.3 * s, -0.4 * s]],
        "global_clipnorm 6.5",
    );
    // Under the limit nothing changes.
    let got = clipped(None, Some(20.0));
    assert_vecs(&got, &[&[3.0, 4.0], &[12.0], &[0.3, -0.4]], "global 20");
}

#[test]
fn step_decay_by_hand() {
    let s = Schedule::StepDecay {
        step_size: 10,
        gamma: 0.5,
    };
    for (step, expected) in [(0, 0.1), (9, 0.1), (10, 0.05), (19, 0.05), (25, 0.025)] {
        assert_close(
            s.rate(0.1, step) as f64,
            expected,
            F32_EXACTISH,
            &format!("step decay at {step}"),
        );
    }
}

#[test]
fn exponential_decay_by_hand() {
    let smooth = Schedule::ExponentialDecay {
        decay_steps: 100,
        decay_rate: 0.96,
        staircase: false,
    };
    let stairs = Schedule::ExponentialDecay {
        decay_steps: 100,
        decay_rate: 0.96,
        staircase: true,
    };
    // 0.1 * 0.96^(step / 100), with the exponent floored for the staircase.
    let cases = [
        (0u64, 0.1, 0.1),
        (50, 0.1 * 0.96f64.sqrt(), 0.1),
        (99, 0.1 * 0.96f64.powf(0.99), 0.1),
        (100, 0.096, 0.096),
        (150, 0.1 * 0.96f64.powf(1.5), 0.096),
        (250, 0.1 * 0.96f64.powf(2.5), 0.09216),
    ];
    for (step, smooth_expected, stairs_expected) in cases {
        let what = format!("exponential decay at {step}");
        assert_close(
            smooth.rate(0.1, step) as f64,
            smooth_expected,
            F32_EXACTISH,
            &what,
        );
        assert_close(
            stairs.rate(0.1, step) as f64,
            stairs_expected,
            F32_EXACTISH,
            &format!("{what} (staircase)"),
        );
    }
}

#[test]
fn cosine_decay_by_hand() {
    // Keras: lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(step, decay) / decay)) + alpha).
    let s = Schedule::CosineDecay {
        decay_steps: 100,
        alpha: 0.1,
    };
    let half_sqrt2 = std::f64::consts::FRAC_1_SQRT_2;
    let cases = [
        (0u64, 0.1),
        (25, 0.1 * (0.9 * 0.5 * (1.0 + half_sqrt2) + 0.1)),
        (50, 0.1 * (0.9 * 0.5 + 0.1)),
        (75, 0.1 * (0.9 * 0.5 * (1.0 - half_sqrt2) + 0.1)),
        (100, 0.01),
        (150, 0.01),
    ];
    for (step, expected) in cases {
        assert_close(
            s.rate(0.1, step) as f64,
            expected,
            F32_EXACTISH,
            &format!("cosine decay at {step}"),
        );
    }
    let to_zero = Schedule::CosineDecay {
        decay_steps: 100,
        alpha: 0.0,
    };
    assert_close(to_zero.rate(0.1, 100) as f64, 0.0, F32_EXACTISH, "alpha 0");
}

#[test]
fn schedule_is_read_at_the_iteration_count_before_the_step() {
    // Keras evaluates the schedule at `iterations` (0 for the first step). With SGD, lr 1,
    // halving every step and gradient 1: w = -1, -1.5, -1.75.
    let config = OptimizerConfig {
        schedule: Some(Schedule::StepDecay {
            step_size: 1,
            gamma: 0.5,
        }),
        ..OptimizerKind::Sgd {
            learning_rate: 1.0,
            momentum: 0.0,
            nesterov: false,
        }
        .into()
    };
    let mut opt = Optimizer::new(config).unwrap();
    let mut params = vec![Tensor::zeros([1])];
    for expected in [-1.0, -1.5, -1.75] {
        step(&mut opt, &mut params, vec![Tensor::ones([1])]);
        let got = params[0].to_vec_f32().unwrap()[0] as f64;
        assert_close(got, expected, F32_EXACTISH, "scheduled sgd");
    }
    assert_close(
        opt.current_learning_rate() as f64,
        0.125,
        F32_EXACTISH,
        "next rate",
    );
    assert_eq!(opt.base_learning_rate(), 1.0);
}

#[test]
fn a_gradient_list_that_does_not_match_the_parameters_is_an_error() {
    let mut opt = Optimizer::new(OptimizerKind::adam().into()).unwrap();
    let mut a = Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap();
    let mut b = Tensor::from_vec(vec![3.0f32], [1]).unwrap();
    let one_grad = [Some(Tensor::from_vec(vec![0.5f32, 0.5], [2]).unwrap())];

    let err = opt.step(&mut [&mut a, &mut b], &one_grad).unwrap_err();

    assert!(matches!(err, NnError::Input(_)), "{err:?}");
    assert_eq!(
        a.to_vec_f32().unwrap(),
        vec![1.0, 2.0],
        "nothing was updated"
    );
}

#[test]
fn reused_on_parameters_of_other_sizes_the_state_starts_afresh() {
    // One Adam step from fresh state moves each weight by about 1e-3 * sign(g).
    let mut opt = Optimizer::new(OptimizerKind::adam().into()).unwrap();
    let mut first = Tensor::from_vec(vec![0.0f32; 3], [3]).unwrap();
    let grad3 = [Some(Tensor::from_vec(vec![-100.0f32; 3], [3]).unwrap())];
    opt.step(&mut [&mut first], &grad3).unwrap();

    let mut other = Tensor::from_vec(vec![0.0f32; 2], [2]).unwrap();
    let grad2 = [Some(Tensor::from_vec(vec![1.0f32; 2], [2]).unwrap())];
    opt.step(&mut [&mut other], &grad2).unwrap();

    for w in other.to_vec_f32().unwrap() {
        assert!(w < 0.0, "moved against its own gradient only: {w}");
    }
}
