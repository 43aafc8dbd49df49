//! Fused recurrent-cell arithmetic.

use crate::autograd::record;
use crate::error::{Result, TensorError};
use crate::kernels::recurrent::{lstm_cell_backward, lstm_cell_forward};
use crate::Tensor;

impl Tensor {
    /// The element-wise part of one LSTM step, as a single operation: `self` holds the gate
    /// pre-activations `z [batch, 4 * units]` (packed `i, f, c, o`, as Keras does, i.e.
    /// `x·W + h·U + b`) and `c_prev [batch, units]` the previous cell memory. Returns `[batch,
    /// 2 * units]`: the new output `h = σ(o)·tanh(c)` in the first `units` columns, the new
    /// memory `c = σ(f)·c_prev + σ(i)·tanh(g)` in the rest.
    ///
    /// The gates use the logistic sigmoid and the cell `tanh`; other activations need the
    /// unfused ops. The backward pass recomputes the gates, so nothing is kept but the inputs.
    ///
    /// # Errors
    /// A shape mismatch unless `self` is `[batch, 4 * units]` and `c_prev` `[batch, units]`;
    /// a dtype error for non-f32 operands.
    pub fn lstm_cell(&self, c_prev: &Tensor) -> Result<Tensor> {
        const OP: &str = "lstm_cell";
        let (&[batch, width], &[cb, units]) = (self.dims(), c_prev.dims()) else {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                lhs: self.dims().to_vec(),
                rhs: c_prev.dims().to_vec(),
            });
        };
        if cb != batch || width != 4 * units {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                lhs: self.dims().to_vec(),
                rhs: c_prev.dims().to_vec(),
            });
        }

        let (z, cp) = (self.f32_data(OP)?, c_prev.f32_data(OP)?);
        let mut hc = crate::buffer::take(batch * 2 * units);
        lstm_cell_forward(&z, &cp, units, &mut hc);
        let out = Tensor::from_vec(hc, [batch, 2 * units])?;

        Ok(record(
            out,
            OP,
            vec![self.clone(), c_prev.clone()],
            move |inputs, g, _| {
                let z = inputs[0].f32_data(OP)?;
                let cp = inputs[1].f32_data(OP)?;
                let g = g.f32_data(OP)?;
                let mut dz = crate::buffer::take(batch * 4 * units);
                let mut dcp = crate::buffer::take(batch * units);
                lstm_cell_backward(&z, &cp, units, &g, &mut dz, &mut dcp);
                Ok(vec![
                    Some(Tensor::from_vec(dz, [batch, 4 * units])?),
                    Some(Tensor::from_vec(dcp, [batch, units])?),
                ])
            },
        ))
    }
}
