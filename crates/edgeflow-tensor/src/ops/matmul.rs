//! Matrix products, plain and batched.

use crate::autograd::record;
use crate::dtype::Storage;
use crate::error::{Result, TensorError};
use crate::kernels::matmul::{sgemm, MatRef};
use crate::{DType, Shape, Tensor};

/// The matrix at batch position `flat` of a tensor of rank >= 2, read through its strides.
fn matrix_at(t: &Tensor, flat: usize) -> MatRef<'_> {
    let Storage::F32(all) = t.storage() else {
        unreachable!("matmul operands are checked f32")
    };
    let r = t.rank();
    let mut offset = t.offset();
    let mut rem = flat;
    for d in (0..r - 2).rev() {
        offset += (rem % t.dims()[d]) * t.strides()[d];
        rem /= t.dims()[d];
    }
    MatRef {
        data: &all[offset..],
        rows: t.dims()[r - 2],
        cols: t.dims()[r - 1],
        row_stride: t.strides()[r - 2],
        col_stride: t.strides()[r - 1],
    }
}

fn mismatch(a: &Tensor, b: &Tensor) -> TensorError {
    TensorError::ShapeMismatch {
        op: "matmul",
        lhs: a.dims().to_vec(),
        rhs: b.dims().to_vec(),
    }
}

/// `a · b` for operands of equal rank >= 2 and equal leading (batch) dimensions.
fn batched_product(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let r = a.rank();
    if b.rank() != r || a.dims()[..r - 2] != b.dims()[..r - 2] || a.dims()[r - 1] != b.dims()[r - 2]
    {
        return Err(mismatch(a, b));
    }
    let (m, n) = (a.dims()[r - 2], b.dims()[r - 1]);
    let batch: usize = a.dims()[..r - 2].iter().product();
    let mut out = crate::buffer::take(batch * m * n);
    crate::threading::install(|| {
        for (i, c) in out.chunks_mut((m * n).max(1)).enumerate().take(batch) {
            sgemm(matrix_at(a, i), matrix_at(b, i), c, false);
        }
    });
    let mut dims = a.dims()[..r - 2].to_vec();
    dims.extend([m, n]);
    Tensor::from_vec(out, Shape::new(dims))
}

impl Tensor {
    /// Matrix product.
    ///
    /// * `[m, k] · [k, n] -> [m, n]`
    /// * `[..., m, k] · [k, n] -> [..., m, n]` (a dense layer on a batch of sequences)
    /// * `[..., m, k] · [..., k, n] -> [..., m, n]` with equal leading dimensions.
    ///
    /// Transposed views are read in place, without a copy.
    ///
    /// # Errors
    /// A shape mismatch naming both shapes; a dtype error unless both are f32.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.expect_dtype("matmul", DType::F32)?;
        rhs.expect_dtype("matmul", DType::F32)?;
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(mismatch(self, rhs));
        }
        if self.rank() > 2 && rhs.rank() == 2 {
            // Fold the leading dimensions into the rows; the reshape carries the gradient.
            let k = self.dims()[self.rank() - 1];
            // Checked before folding, so that the error names the caller's shapes.
            if rhs.dims()[0] != k {
                return Err(mismatch(self, rhs));
            }
            let rows: usize = self.dims()[..self.rank() - 1].iter().product();
            let flat = self.reshape([rows, k])?.matmul(rhs)?;
            let mut dims = self.dims()[..self.rank() - 1].to_vec();
            dims.push(rhs.dims()[1]);
            return flat.reshape(dims);
        }
        let out = batched_product(self, rhs)?;
        Ok(record(
            out,
            "matmul",
            vec![self.clone(), rhs.clone()],
            |inputs, g, needs| {
                let (a, b) = (&inputs[0], &inputs[1]);
                let ga = if needs[0] {
                    Some(batched_product(g, &b.transpose(-1, -2)?)?)
                } else {
                    None
                };
                let gb = if needs[1] {
                    Some(batched_product(&a.transpose(-1, -2)?, g)?)
                } else {
                    None
                };
                Ok(vec![ga, gb])
            },
        ))
    }
}
