//! Element-wise functions of one tensor: activations, exp, log, sqrt and scalar arithmetic.

use std::f32::consts::FRAC_2_SQRT_PI;

use crate::autograd::record;
use crate::error::Result;
use crate::kernels::elementwise::{map, sigmoid, zip_map};
use crate::Tensor;

/// Runs `f` over the elements of `x` into a new tensor of the same shape.
fn map_tensor(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(f32) -> f32 + Sync + Send,
) -> Result<Tensor> {
    let data = x.f32_data(op)?;
    let mut out = crate::buffer::take(data.len());
    crate::threading::install(|| map(&data, &mut out, f));
    Tensor::from_vec(out, x.shape().clone())
}

/// Combines two same-shape f32 tensors element-wise (gradient rules of unary functions).
fn zip_tensor(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Result<Tensor> {
    let (x, y) = (a.f32_data(op)?, b.f32_data(op)?);
    let mut out = crate::buffer::take(x.len());
    crate::threading::install(|| zip_map(&x, &y, &mut out, f));
    Tensor::from_vec(out, a.shape().clone())
}

/// A unary op whose derivative is a function of the input: `dy/dx = d(x)`.
fn unary_by_input(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(f32) -> f32 + Sync + Send,
    d: impl Fn(f32) -> f32 + Sync + Send + Copy + 'static,
) -> Result<Tensor> {
    let out = map_tensor(op, x, f)?;
    Ok(record(out, op, vec![x.clone()], move |inputs, g, _| {
        Ok(vec![Some(zip_tensor(op, g, &inputs[0], move |g, x| {
            g * d(x)
        })?)])
    }))
}

/// A unary op whose derivative is cheaper from the output: `dy/dx = d(y)`.
fn unary_by_output(
    op: &'static str,
    x: &Tensor,
    f: impl Fn(f32) -> f32 + Sync + Send,
    d: impl Fn(f32) -> f32 + Sync + Send + Copy + 'static,
) -> Result<Tensor> {
    let out = map_tensor(op, x, f)?;
    let saved = out.clone();
    Ok(record(out, op, vec![x.clone()], move |_, g, _| {
        Ok(vec![Some(zip_tensor(op, g, &saved, move |g, y| g * d(y))?)])
    }))
}

fn erf(x: f32) -> f32 {
    erf_f64(x as f64) as f32
}

/// The error function in f64: its Maclaurin series below 2.5 and the continued fraction of
/// erfc above, each accurate far beyond f32 precision in its range.
fn erf_f64(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 2.5 {
        // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)).
        let mut term = ax;
        let mut sum = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
            if n > 200.0 {
                break;
            }
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        // Continued fraction for erfc, converges fast for larger arguments.
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        1.0 - (-ax * ax).exp() / (ax + f) / std::f64::consts::PI.sqrt()
    };
    r.copysign(x)
}

fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

fn gelu_grad(x: f32) -> f32 {
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = (-0.5 * x * x).exp() * FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2 * 0.5;
    cdf + x * pdf
}

impl Tensor {
    /// `max(x, 0)`; NaN stays NaN (so a diverged value is not hidden); the gradient at exactly
    /// 0 is 0.
    ///
    /// # Errors
    /// A dtype error for non-f32 input (as for every op below).
    pub fn relu(&self) -> Result<Tensor> {
        unary_by_output(
            "relu",
            self,
            |x| if x < 0.0 { 0.0 } else { x },
            |y| if y > 0.0 { 1.0 } else { 0.0 },
        )
    }

    /// The logistic function `1 / (1 + exp(-x))`, computed without overflow.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn sigmoid(&self) -> Result<Tensor> {
        unary_by_output("sigmoid", self, sigmoid, |y| y * (1.0 - y))
    }

    /// Hyperbolic tangent.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn tanh(&self) -> Result<Tensor> {
        unary_by_output("tanh", self, f32::tanh, |y| 1.0 - y * y)
    }

    /// GELU in its exact form, `x * Phi(x)` with the normal CDF (Keras `approximate=False`).
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn gelu(&self) -> Result<Tensor> {
        unary_by_input("gelu", self, gelu, gelu_grad)
    }

    /// `e^x`.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn exp(&self) -> Result<Tensor> {
        unary_by_output("exp", self, f32::exp, |y| y)
    }

    /// Natural logarithm (`-inf` at 0, NaN below).
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn log(&self) -> Result<Tensor> {
        unary_by_input("log", self, f32::ln, |x| 1.0 / x)
    }

    /// Square root.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn sqrt(&self) -> Result<Tensor> {
        unary_by_output("sqrt", self, f32::sqrt, |y| 0.5 / y)
    }

    /// `-x`.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn neg(&self) -> Result<Tensor> {
        unary_by_input("neg", self, |x| -x, |_| -1.0)
    }

    /// `x * x`.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn square(&self) -> Result<Tensor> {
        unary_by_input("square", self, |x| x * x, |x| 2.0 * x)
    }

    /// `x * factor`.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn mul_scalar(&self, factor: f32) -> Result<Tensor> {
        unary_by_input("mul_scalar", self, move |x| x * factor, move |_| factor)
    }

    /// `x + value`.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn add_scalar(&self, value: f32) -> Result<Tensor> {
        unary_by_input("add_scalar", self, move |x| x + value, |_| 1.0)
    }

    /// `x` limited to `[min, max]`; the gradient is 1 inside and 0 where clipped.
    ///
    /// # Errors
    /// As [`Tensor::relu`].
    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        unary_by_input(
            "clamp",
            self,
            move |x| x.clamp(min, max),
            move |x| if x >= min && x <= max { 1.0 } else { 0.0 },
        )
    }

    /// f32 copy of an integer or byte tensor (or of an f32 one), times `scale`: turns a batch of
    /// u8 pixels into network input. No gradient flows through it.
    ///
    /// # Errors
    /// None in practice; the signature matches the other ops.
    pub fn to_f32_scaled(&self, scale: f32) -> Result<Tensor> {
        use crate::dtype::Storage;
        let t = self.contiguous();
        let n = t.elem_count();
        let o = t.offset();
        let data: Vec<f32> = match t.storage() {
            Storage::F32(v) => v[o..o + n].iter().map(|&x| x * scale).collect(),
            Storage::U8(v) => v[o..o + n].iter().map(|&x| x as f32 * scale).collect(),
            Storage::I8(v) => v[o..o + n].iter().map(|&x| x as f32 * scale).collect(),
            Storage::I32(v) => v[o..o + n].iter().map(|&x| x as f32 * scale).collect(),
            Storage::I64(v) => v[o..o + n].iter().map(|&x| x as f32 * scale).collect(),
        };
        Tensor::from_vec(data, t.shape().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from standard tables (Abramowitz & Stegun, table 7.1).
        for (x, e) in [
            (0.0, 0.0),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
        ] {
            assert!((erf(x) - e).abs() < 1e-6, "erf({x}) = {} vs {e}", erf(x));
            assert!((erf(-x) + e).abs() < 1e-6);
        }
        assert!((erf(3.0) - 0.999_977_9).abs() < 1e-6);
        assert_eq!(erf(30.0), 1.0);
    }

    #[test]
    fn sigmoid_is_finite_at_extremes() {
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
    }
}
