//! A finite-difference gradient checker for any function of f32 tensors.
//!
//! For inputs `x_1..x_n` and a function `y = f(x_1..x_n)` of any output shape, the checker
//! draws a fixed random tensor `R` of `y`'s shape and compares, element by element, the
//! analytic gradient of the projected loss `L = sum(y * R)` computed by `backward()` with the
//! central difference `(L(x + h e_j) - L(x - h e_j)) / (2h)`.
//!
//! Why these numbers:
//! * Projecting with a random `R` (instead of `sum(y)`) checks every output's contribution with
//!   a different weight, so a gradient that is swapped, transposed or summed over the wrong
//!   axis cannot cancel out.
//! * The forward runs in f32, but `L` is accumulated in f64 from the f32 outputs, so the sum
//!   adds no rounding of its own. The kernels are deterministic, so outputs that do not depend
//!   on the perturbed element are bit-identical in the two evaluations and cancel exactly; the
//!   remaining noise is a few ulp (~1e-7 relative) of the outputs that do depend on it, which
//!   the division by `2h = 2e-2` lifts to ~1e-5 per unit of output: well under the floor.
//! * The denominator is the step actually taken, `(x + h) - (x - h)` as rounded in f32, not
//!   `2h`.
//! * The truncation error of a central difference is `h^2 / 6 * f'''`, ~2e-5 for `h = 1e-2`
//!   and well-behaved functions.
//! * Hence [`GRAD_F32`]: 1e-2 relative (a wrong factor, index or missing term is far larger)
//!   with a 1e-3 absolute floor for gradients at or near zero.
//! * Finite differences are meaningless across a kink (relu at 0, clamp bounds, a tie in a
//!   maximum), so the tests keep inputs further than `h` from them.

use std::fmt::Write as _;

use edgeflow_tensor::{no_grad, Result, Tensor};

use super::{uniform, Tolerance};

/// Analytic vs central-difference gradient of an f32 forward: see the module documentation.
pub const GRAD_F32: Tolerance = Tolerance {
    rel: 1e-2,
    abs: 1e-3,
};

/// Set this environment variable to print each passing check's [`Report`] (with
/// `--nocapture`).
pub const VERBOSE_ENV: &str = "EDGEFLOW_GRADCHECK_VERBOSE";

/// Settings of one check.
#[derive(Debug, Clone, Copy)]
pub struct GradCheck {
    /// Finite-difference step `h`.
    pub step: f32,
    /// How close analytic and numerical gradients must be.
    pub tol: Tolerance,
    /// Seed of the projection tensor `R`.
    pub seed: u64,
}

/// The default check: `h = 1e-2`, [`GRAD_F32`].
pub const DEFAULT: GradCheck = GradCheck {
    step: 1e-2,
    tol: GRAD_F32,
    seed: 0x5eed,
};

/// What a passing check measured, for the curious (`--nocapture`).
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Number of gradient elements compared.
    pub compared: usize,
    /// Largest `|analytic - numerical|`.
    pub max_abs_err: f64,
    /// Largest error as a fraction of what the tolerance allows (passing means <= 1).
    pub max_tol_ratio: f64,
}

/// Checks the gradients of `f` with respect to every tensor in `inputs` (an array, slice or
/// vector) with [`DEFAULT`] settings. Panics with the offending elements when they disagree.
pub fn check(
    name: &str,
    inputs: impl Into<Vec<Tensor>>,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Report {
    check_with(&DEFAULT, name, inputs, f)
}

/// [`check`] with explicit settings.
pub fn check_with(
    cfg: &GradCheck,
    name: &str,
    inputs: impl Into<Vec<Tensor>>,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Report {
    let inputs: Vec<Tensor> = inputs.into();
    let base: Vec<Vec<f32>> = inputs.iter().map(|t| t.to_vec_f32().unwrap()).collect();
    let leaves: Vec<Tensor> = inputs
        .iter()
        .zip(&base)
        .map(|(t, v)| Tensor::from_vec(v.clone(), t.dims().to_vec()).unwrap())
        .map(|t| t.with_requires_grad(true))
        .collect();

    let out = f(&leaves).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    assert!(
        out.requires_grad(),
        "{name}: the output does not depend on the inputs"
    );
    let r = uniform(out.dims(), -1.0, 1.0, cfg.seed);
    let r64: Vec<f64> = r.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
    let grads = out.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();

    let loss = |values: &[Vec<f32>]| -> f64 {
        let ts: Vec<Tensor> = values
            .iter()
            .zip(&inputs)
            .map(|(v, t)| Tensor::from_vec(v.clone(), t.dims().to_vec()).unwrap())
            .collect();
        let y = no_grad(|| f(&ts)).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
        let y = y.to_vec_f32().unwrap();
        y.iter().zip(&r64).map(|(&y, &r)| y as f64 * r).sum()
    };

    let mut report = Report {
        compared: 0,
        max_abs_err: 0.0,
        max_tol_ratio: 0.0,
    };
    let mut failures = String::new();
    for (i, leaf) in leaves.iter().enumerate() {
        let analytic = match grads.get(leaf) {
            Some(g) => {
                assert_eq!(
                    g.dims(),
                    leaf.dims(),
                    "{name}: gradient {i} has the wrong shape"
                );
                g.to_vec_f32().unwrap()
            }
            None => vec![0.0; leaf.elem_count()],
        };
        let mut values = base.clone();
        for j in 0..base[i].len() {
            let x = base[i][j];
            values[i][j] = x + cfg.step;
            let plus = loss(&values);
            values[i][j] = x - cfg.step;
            let minus = loss(&values);
            values[i][j] = x;
            let numerical = (plus - minus) / ((x + cfg.step) as f64 - (x - cfg.step) as f64);

            let a = analytic[j] as f64;
            let err = (a - numerical).abs();
            let allowed = cfg.tol.abs + cfg.tol.rel * a.abs().max(numerical.abs());
            report.compared += 1;
            report.max_abs_err = report.max_abs_err.max(err);
            report.max_tol_ratio = report.max_tol_ratio.max(err / allowed);
            if err > allowed || err.is_nan() {
                let _ = writeln!(
                    failures,
                    "  input {i} {:?} element {j}: analytic {a:.6} numerical {numerical:.6}",
                    leaf.dims()
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: gradients disagree ({:?}):\n{failures}",
        cfg.tol
    );
    if std::env::var_os(VERBOSE_ENV).is_some() {
        eprintln!("{name}: {report:?}");
    }
    report
}
