//! Helpers of tests/recurrent.rs: named tolerance presets, an element-wise comparison that
//! reports the worst element, and a finite-difference gradient checker for whole models.
//!
//! The checker follows `edgeflow-tensor/tests/common/gradcheck.rs`, adapted to a model: the
//! leaves are the model's parameters (changed through `set_weights`) and its input.
//!
//! For a model `y = f(x; w)` and a fixed random tensor `R` of `y`'s shape, it compares the
//! analytic gradient of the projected loss `L = sum(y * R)` from `backward()` with the central
//! difference `(L(v + h e_j) - L(v - h e_j)) / (2h)` for every element `v_j` of every
//! parameter and of the input:
//! * projecting with a random `R` weighs every output (every time step, every unit)
//!   differently, so a gradient that goes to the wrong step or gate cannot cancel out;
//! * the forward runs in f32 but `L` is summed in f64, and the denominator is the step
//!   actually taken in f32;
//! * the truncation error of a central difference with `h = 1e-2` is ~`h^2/6 * f'''`, a few
//!   1e-5 for the smooth sigmoid/tanh recurrences here, hence [`GRAD_F32`]: 1e-2 relative
//!   with a 1e-3 absolute floor, far below what a missing term or a wrong factor gives.
#![allow(dead_code)]

use std::fmt::Write as _;

use edgeflow_nn::{ForwardCtx, Sequential};
use edgeflow_tensor::{no_grad, Rng, Tensor};

/// How far a computed value may be from its expected value: `|got - want| <= abs + rel *
/// |want|`.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    /// Relative part.
    pub rel: f64,
    /// Absolute floor.
    pub abs: f64,
}

impl Tolerance {
    /// Whether `got` is close enough to `want`; NaN never is.
    pub fn accepts(&self, got: f64, want: f64) -> bool {
        (got - want).abs() <= self.abs + self.rel * want.abs()
    }
}

/// Analytic against central-difference gradients of an f32 forward (see the module docs).
pub const GRAD_F32: Tolerance = Tolerance {
    rel: 1e-2,
    abs: 1e-3,
};

/// Compares `got` with `want` element by element and panics naming the worst offender.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], tol: Tolerance) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if !tol.accepts(g as f64, w) {
            let excess = (g as f64 - w).abs();
            if worst.is_none_or(|(_, e)| excess > e || excess.is_nan()) {
                worst = Some((i, excess));
            }
        }
    }
    if let Some((i, _)) = worst {
        panic!(
            "{what}: out of tolerance {tol:?}; worst at {i}: got {} want {}\n\
             got  {got:?}\n want {want:?}",
            got[i], want[i]
        );
    }
}

/// What a passing check measured.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Number of gradient elements compared.
    pub compared: usize,
    /// Largest error as a fraction of what the tolerance allows (passing means <= 1).
    pub max_tol_ratio: f64,
}

/// Checks the gradients of `sum(model(input) * R)` with respect to every parameter of `model`
/// and to `input`, with `mask` as the sequence mask (`ForwardCtx::mask`), in inference mode.
/// Panics listing the elements that disagree. The model's weights are restored afterwards.
pub fn check_model(
    name: &str,
    model: &mut Sequential,
    input: &Tensor,
    mask: Option<&Tensor>,
) -> Report {
    let step = 1e-2f32;
    let base: Vec<Vec<f32>> = model
        .weights()
        .iter()
        .chain(std::iter::once(input))
        .map(|t| t.to_vec_f32().unwrap())
        .collect();
    let shapes: Vec<Vec<usize>> = model
        .weights()
        .iter()
        .chain(std::iter::once(input))
        .map(|t| t.dims().to_vec())
        .collect();
    let n_params = base.len() - 1;

    // Analytic gradients.
    let leaf = input.detach().with_requires_grad(true);
    let mut ctx = ForwardCtx::inference();
    ctx.mask = mask.cloned();
    let out = model.forward(&leaf, &mut ctx).unwrap();
    let r = Tensor::rand_uniform(out.dims().to_vec(), -1.0, 1.0, &mut Rng::seed(0x5eed));
    let r64: Vec<f64> = r.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
    let grads = out.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let params: Vec<Tensor> = model.weights();
    let analytic: Vec<Vec<f32>> = params
        .iter()
        .chain(std::iter::once(&leaf))
        .zip(&base)
        .map(|(t, b)| match grads.get(t) {
            Some(g) => g.to_vec_f32().unwrap(),
            None => vec![0.0; b.len()],
        })
        .collect();

    let loss = |model: &mut Sequential, values: &[Vec<f32>]| -> f64 {
        let ts: Vec<Tensor> = values
            .iter()
            .zip(&shapes)
            .map(|(v, s)| Tensor::from_vec(v.clone(), s.clone()).unwrap())
            .collect();
        model.set_weights(ts[..n_params].to_vec()).unwrap();
        let mut ctx = ForwardCtx::inference();
        ctx.mask = mask.cloned();
        let y = no_grad(|| model.forward(&ts[n_params], &mut ctx)).unwrap();
        let y = y.to_vec_f32().unwrap();
        y.iter().zip(&r64).map(|(&y, &r)| y as f64 * r).sum()
    };

    let mut report = Report {
        compared: 0,
        max_tol_ratio: 0.0,
    };
    let mut failures = String::new();
    let mut values = base.clone();
    for i in 0..base.len() {
        for j in 0..base[i].len() {
            let x = base[i][j];
            values[i][j] = x + step;
            let plus = loss(model, &values);
            values[i][j] = x - step;
            let minus = loss(model, &values);
            values[i][j] = x;
            let numerical = (plus - minus) / ((x + step) as f64 - (x - step) as f64);

            let a = analytic[i][j] as f64;
            let err = (a - numerical).abs();
            let allowed = GRAD_F32.abs + GRAD_F32.rel * a.abs().max(numerical.abs());
            report.compared += 1;
            report.max_tol_ratio = report.max_tol_ratio.max(err / allowed);
            if err > allowed || err.is_nan() {
                let what = if i == n_params {
                    "input".to_string()
                } else {
                    model.named_params()[i].0.clone()
                };
                let _ = writeln!(
                    failures,
                    "  {what} element {j}: analytic {a:.6} numerical {numerical:.6}"
                );
            }
        }
    }
    let restore: Vec<Tensor> = base[..n_params]
        .iter()
        .zip(&shapes)
        .map(|(v, s)| Tensor::from_vec(v.clone(), s.clone()).unwrap())
        .collect();
    model.set_weights(restore).unwrap();
    assert!(
        failures.is_empty(),
        "{name}: gradients disagree ({GRAD_F32:?}):\n{failures}"
    );
    report
}
