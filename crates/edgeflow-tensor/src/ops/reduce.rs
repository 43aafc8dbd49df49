//! Sums, means, maxima and argmax along an axis or over everything.

use crate::autograd::record;
use crate::error::Result;
use crate::kernels::reduce::{max_axis, sum_axis};
use crate::{Shape, Tensor};

fn reduced_shape(shape: &Shape, axis: usize, keepdim: bool) -> Shape {
    let mut dims = shape.dims().to_vec();
    if keepdim {
        dims[axis] = 1;
    } else {
        dims.remove(axis);
    }
    Shape::new(dims)
}

impl Tensor {
    /// Sum along `axis` (negative counts from the end); `keepdim` keeps it with size 1.
    ///
    /// # Errors
    /// An axis error when `axis` is out of range; a dtype error for non-f32 input.
    pub fn sum_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.shape().axis("sum_axis", axis)?;
        let data = self.f32_data("sum_axis")?;
        let (outer, n, inner) = self.shape().split_at_axis(ax);
        let mut out = crate::buffer::take(outer * inner);
        crate::threading::install(|| sum_axis(&data, outer, n, inner, &mut out));
        let out = Tensor::from_vec(out, reduced_shape(self.shape(), ax, keepdim))?;
        let kept = reduced_shape(self.shape(), ax, true);
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "sum_axis",
            vec![self.clone()],
            move |_, g, _| {
                // Every input element contributed once: spread the gradient back along the axis.
                let g = g.reshape(kept.clone())?;
                Ok(vec![Some(g.broadcast_to(&in_shape)?)])
            },
        ))
    }

    /// Sum of all elements, as a rank-0 tensor.
    ///
    /// # Errors
    /// A dtype error for non-f32 input.
    pub fn sum_all(&self) -> Result<Tensor> {
        let n = self.elem_count();
        self.reshape([n])?.sum_axis(0, false)
    }

    /// Mean along `axis`.
    ///
    /// # Errors
    /// As [`Tensor::sum_axis`].
    pub fn mean_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.shape().axis("mean_axis", axis)?;
        let n = self.dims()[ax].max(1);
        self.sum_axis(axis, keepdim)?.mul_scalar(1.0 / n as f32)
    }

    /// Mean of all elements, as a rank-0 tensor.
    ///
    /// # Errors
    /// A dtype error for non-f32 input.
    pub fn mean_all(&self) -> Result<Tensor> {
        let n = self.elem_count().max(1);
        self.sum_all()?.mul_scalar(1.0 / n as f32)
    }

    /// Maximum along `axis`; the gradient goes to the first maximal element.
    ///
    /// # Errors
    /// As [`Tensor::sum_axis`]; also an invalid-shape error for an empty axis.
    pub fn max_axis(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        let ax = self.shape().axis("max_axis", axis)?;
        let (outer, n, inner) = self.shape().split_at_axis(ax);
        if n == 0 {
            return Err(crate::TensorError::InvalidShape {
                op: "max_axis",
                shape: self.dims().to_vec(),
                reason: "cannot take the maximum of an empty axis".into(),
            });
        }
        let data = self.f32_data("max_axis")?;
        let (vals, idx) = max_axis(&data, outer, n, inner);
        let out = Tensor::from_vec(vals, reduced_shape(self.shape(), ax, keepdim))?;
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "max_axis",
            vec![self.clone()],
            move |_, g, _| {
                let g = g.f32_data("max_axis backward")?;
                let mut gi = crate::buffer::zeros(in_shape.elem_count());
                for o in 0..outer {
                    for j in 0..inner {
                        let k = o * inner + j;
                        gi[(o * n + idx[k] as usize) * inner + j] += g[k];
                    }
                }
                Ok(vec![Some(Tensor::from_vec(gi, in_shape.clone())?)])
            },
        ))
    }

    /// Index of the first maximum along `axis`, as an i64 tensor without that axis.
    ///
    /// # Errors
    /// As [`Tensor::max_axis`].
    pub fn argmax(&self, axis: isize) -> Result<Tensor> {
        let ax = self.shape().axis("argmax", axis)?;
        let (outer, n, inner) = self.shape().split_at_axis(ax);
        if n == 0 {
            return Err(crate::TensorError::InvalidShape {
                op: "argmax",
                shape: self.dims().to_vec(),
                reason: "cannot take the argmax of an empty axis".into(),
            });
        }
        let data = self.f32_data("argmax")?;
        let (_, idx) = max_axis(&data, outer, n, inner);
        Tensor::from_vec(
            idx.into_iter().map(i64::from).collect::<Vec<_>>(),
            reduced_shape(self.shape(), ax, false),
        )
    }
}
