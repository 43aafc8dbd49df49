//! Softmax, cross-entropy, layer normalization and dropout.

use crate::autograd::record;
use crate::error::{Result, TensorError};
use crate::kernels::softmax::{log_softmax_rows, softmax_rows};
use crate::rng::Rng;
use crate::{DType, Tensor};

/// Runs a row kernel along `axis` by moving that axis last and back.
fn along_axis(
    op: &'static str,
    x: &Tensor,
    axis: isize,
    kernel: fn(&[f32], usize, &mut [f32]),
) -> Result<(Tensor, usize)> {
    let ax = x.shape().axis(op, axis)?;
    let last = x.rank() - 1;
    let moved = if ax == last {
        x.detach()
    } else {
        x.detach().transpose(ax as isize, -1)?
    };
    let data = moved.f32_data(op)?;
    let cols = moved.dims()[last];
    let mut out = crate::buffer::take(data.len());
    crate::threading::install(|| kernel(&data, cols, &mut out));
    let out = Tensor::from_vec(out, moved.shape().clone())?;
    let out = if ax == last {
        out
    } else {
        out.transpose(ax as isize, -1)?.contiguous()
    };
    Ok((out, ax))
}

fn labels_as_indices(
    op: &'static str,
    labels: &Tensor,
    rows: usize,
    classes: usize,
) -> Result<Vec<usize>> {
    labels.expect_dtype(op, DType::I64)?;
    if labels.elem_count() != rows {
        return Err(TensorError::InvalidShape {
            op,
            shape: labels.dims().to_vec(),
            reason: format!("expected one label per row ({rows})"),
        });
    }
    labels
        .to_vec::<i64>()?
        .into_iter()
        .enumerate()
        .map(|(position, l)| {
            if l < 0 || l as usize >= classes {
                Err(TensorError::IndexOutOfRange {
                    op,
                    index: l,
                    position,
                    limit: classes,
                })
            } else {
                Ok(l as usize)
            }
        })
        .collect()
}

fn rows_and_classes(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
    match x.dims() {
        &[rows, classes] if classes > 0 => Ok((rows, classes)),
        dims => Err(TensorError::InvalidShape {
            op,
            shape: dims.to_vec(),
            reason: "expected [batch, classes] with at least one class".into(),
        }),
    }
}

impl Tensor {
    /// Softmax along `axis`, stable for any finite input. Along the last axis the result
    /// remembers its input, so a cross-entropy on it can use the exact logits.
    ///
    /// # Errors
    /// An axis error; a dtype error for non-f32 input.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        let (out, ax) = along_axis("softmax", self, axis, softmax_rows)?;
        let saved = out.clone();
        let mut out = record(out, "softmax", vec![self.clone()], move |_, g, _| {
            // dx = y * (g - sum(g * y))
            let gy = g.mul(&saved)?;
            let s = gy.sum_axis(ax as isize, true)?;
            Ok(vec![Some(gy.sub(&saved.mul(&s)?)?)])
        });
        // Only a softmax over the last axis is what a cross-entropy on `[batch, classes]`
        // recomputes from the logits; over any other axis the probabilities must be used as
        // they are.
        if ax == self.rank() - 1 {
            std::sync::Arc::make_mut(&mut out.inner).softmax_logits = Some(self.clone());
        }
        Ok(out)
    }

    /// Log-softmax along `axis`: `x - logsumexp(x)`, finite for any finite input.
    ///
    /// # Errors
    /// As [`Tensor::softmax`].
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        let (out, ax) = along_axis("log_softmax", self, axis, log_softmax_rows)?;
        let saved = out.clone();
        Ok(record(
            out,
            "log_softmax",
            vec![self.clone()],
            move |_, g, _| {
                // dx = g - softmax(x) * sum(g)
                let s = g.sum_axis(ax as isize, true)?;
                Ok(vec![Some(g.sub(&saved.exp()?.mul(&s)?)?)])
            },
        ))
    }

    /// Per-sample cross-entropy `logsumexp(z) - z[label]` of `[batch, classes]` logits and
    /// `[batch]` i64 labels, as `[batch]`. Exact for any finite logits (no clipping).
    ///
    /// # Errors
    /// An index error naming the first label outside `0..classes`; shape and dtype errors.
    pub fn sparse_cross_entropy_with_logits(&self, labels: &Tensor) -> Result<Tensor> {
        const OP: &str = "sparse_cross_entropy";
        let (rows, classes) = rows_and_classes(OP, self)?;
        let idx = labels_as_indices(OP, labels, rows, classes)?;
        let mut logp = vec![0.0f32; rows * classes];
        log_softmax_rows(&self.f32_data(OP)?, classes, &mut logp);
        let loss: Vec<f32> = idx
            .iter()
            .enumerate()
            .map(|(r, &l)| -logp[r * classes + l])
            .collect();
        let out = Tensor::from_vec(loss, [rows])?;
        Ok(record(out, OP, vec![self.clone()], move |_, g, _| {
            // d/dz = softmax(z) - onehot(label), scaled by each sample's output gradient.
            let g = g.f32_data(OP)?;
            let mut gz: Vec<f32> = logp.iter().map(|&lp| lp.exp()).collect();
            for (r, &l) in idx.iter().enumerate() {
                gz[r * classes + l] -= 1.0;
                gz[r * classes..(r + 1) * classes]
                    .iter_mut()
                    .for_each(|v| *v *= g[r]);
            }
            Ok(vec![Some(Tensor::from_vec(gz, [rows, classes])?)])
        }))
    }

    /// Per-sample cross-entropy of `[batch, classes]` probabilities and `[batch]` i64 labels.
    ///
    /// When `self` came from [`Tensor::softmax`], the loss is computed from the logits instead,
    /// exactly. Otherwise probabilities are clipped to `[epsilon, 1 - epsilon]` first, as Keras
    /// does, so that `log(0)` cannot occur.
    ///
    /// # Errors
    /// As [`Tensor::sparse_cross_entropy_with_logits`].
    pub fn sparse_cross_entropy_from_probs(&self, labels: &Tensor, epsilon: f32) -> Result<Tensor> {
        if let Some(logits) = self.softmax_logits() {
            if logits.rank() == 2 {
                return logits.sparse_cross_entropy_with_logits(labels);
            }
        }
        const OP: &str = "sparse_cross_entropy";
        let (rows, classes) = rows_and_classes(OP, self)?;
        let idx = labels_as_indices(OP, labels, rows, classes)?;
        let flat: Vec<usize> = idx
            .iter()
            .enumerate()
            .map(|(r, &l)| r * classes + l)
            .collect();
        let picked = self.reshape([rows * classes])?.select_rows(&flat)?;
        picked.clamp(epsilon, 1.0 - epsilon)?.log()?.neg()
    }

    /// Layer normalization over the last axis: `(x - mean) / sqrt(var + epsilon) * gamma + beta`
    /// with `gamma` and `beta` of shape `[last]`.
    ///
    /// # Errors
    /// A shape mismatch when `gamma` or `beta` does not match the last axis.
    pub fn layer_norm(&self, gamma: &Tensor, beta: &Tensor, epsilon: f32) -> Result<Tensor> {
        let last = *self.dims().last().unwrap_or(&0);
        for p in [gamma, beta] {
            if p.dims() != [last] {
                return Err(TensorError::ShapeMismatch {
                    op: "layer_norm",
                    lhs: self.dims().to_vec(),
                    rhs: p.dims().to_vec(),
                });
            }
        }
        let centered = self.sub(&self.mean_axis(-1, true)?)?;
        let var = centered.square()?.mean_axis(-1, true)?;
        let normed = centered.div(&var.add_scalar(epsilon)?.sqrt()?)?;
        normed.mul(gamma)?.add(beta)
    }

    /// Inverted dropout: zeroes each element with probability `rate` and scales the rest by
    /// `1 / (1 - rate)`, so inference needs no rescaling. The mask comes from `rng`.
    ///
    /// # Errors
    /// An invalid-argument error unless `0 <= rate < 1`.
    pub fn dropout(&self, rate: f32, rng: &mut Rng) -> Result<Tensor> {
        if !(0.0..1.0).contains(&rate) {
            return Err(TensorError::InvalidArgument {
                op: "dropout",
                reason: format!("rate {rate} is outside [0, 1)"),
            });
        }
        if rate == 0.0 {
            return Ok(self.clone());
        }
        let keep = 1.0 / (1.0 - rate);
        let mask: Vec<f32> = (0..self.elem_count())
            .map(|_| if rng.uniform() < rate { 0.0 } else { keep })
            .collect();
        self.mul(&Tensor::from_vec(mask, self.shape().clone())?)
    }
}
