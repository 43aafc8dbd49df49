//! The element-wise part of an LSTM step, fused into one pass: from the gate pre-activations
//! and the previous cell memory to the new output and memory, and back.
//!
//! Gates are packed `i, f, c, o` (Keras) in each row of `z [batch, 4 * units]`; the gate
//! activation is the logistic sigmoid and the cell activation `tanh`, Keras' defaults.

use super::elementwise::sigmoid;

/// Forward: for each row, `c = σ(f)·c_prev + σ(i)·tanh(g)` and `h = σ(o)·tanh(c)`, written to
/// `hc [batch, 2 * units]` as `h` then `c`. `z` is `[batch, 4 * units]`, `c_prev` `[batch,
/// units]`.
pub fn lstm_cell_forward(z: &[f32], c_prev: &[f32], units: usize, hc: &mut [f32]) {
    let rows = z.chunks_exact(4 * units).zip(c_prev.chunks_exact(units));
    for ((z, cp), out) in rows.zip(hc.chunks_exact_mut(2 * units)) {
        let (h, c) = out.split_at_mut(units);
        for j in 0..units {
            let i = sigmoid(z[j]);
            let f = sigmoid(z[units + j]);
            let g = z[2 * units + j].tanh();
            let o = sigmoid(z[3 * units + j]);
            c[j] = f * cp[j] + i * g;
            h[j] = o * c[j].tanh();
        }
    }
}

/// Backward of [`lstm_cell_forward`]: from the gradient of `hc` (`dh` then `dc` per row) to
/// the gradients of `z` (`dz [batch, 4 * units]`) and `c_prev` (`dc_prev [batch, units]`).
/// The gates are recomputed from `z`, so the forward pass keeps nothing but its inputs.
pub fn lstm_cell_backward(
    z: &[f32],
    c_prev: &[f32],
    units: usize,
    grad_hc: &[f32],
    dz: &mut [f32],
    dc_prev: &mut [f32],
) {
    let inputs = z.chunks_exact(4 * units).zip(c_prev.chunks_exact(units));
    let grads = dz
        .chunks_exact_mut(4 * units)
        .zip(dc_prev.chunks_exact_mut(units));
    for (((z, cp), g_hc), (dz, dcp)) in inputs.zip(grad_hc.chunks_exact(2 * units)).zip(grads) {
        let (dh, dc_out) = g_hc.split_at(units);
        for j in 0..units {
            let i = sigmoid(z[j]);
            let f = sigmoid(z[units + j]);
            let g = z[2 * units + j].tanh();
            let o = sigmoid(z[3 * units + j]);
            let tc = (f * cp[j] + i * g).tanh();

            let dc = dc_out[j] + dh[j] * o * (1.0 - tc * tc);
            dz[j] = dc * g * i * (1.0 - i);
            dz[units + j] = dc * cp[j] * f * (1.0 - f);
            dz[2 * units + j] = dc * i * (1.0 - g * g);
            dz[3 * units + j] = dh[j] * tc * o * (1.0 - o);
            dcp[j] = dc * f;
        }
    }
}
