//! The arithmetic of the recurrent cells (SimpleRNN, LSTM, GRU) shared by the recurrent layers
//! and `Bidirectional`: weight initialisation in Keras' packed layout, the input projection of
//! a whole sequence, one time step, a masked loop over time and a single streaming step.
//!
//! Backpropagation through time comes from the autograd graph the loop records.

use edgeflow_tensor::{Result, Rng, Tensor};

use super::{glorot_uniform, Param};
use crate::activation::Activation;

/// Which recurrence a [`Cell`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// `h = act(x·W + h·U + b)`.
    Simple,
    /// Gates `i, f, c, o` packed in that order (Keras).
    Lstm {
        /// Forget-gate bias initialised to one.
        unit_forget_bias: bool,
    },
    /// Gates `z, r, h` packed in that order (Keras).
    Gru {
        /// Reset gate applied after the recurrent matmul, with a separate recurrent bias.
        reset_after: bool,
    },
}

/// Everything that defines a recurrent cell but its weights.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub kind: CellKind,
    pub units: usize,
    pub activation: Activation,
    pub recurrent_activation: Activation,
    pub use_bias: bool,
}

/// A cell's weights for one forward pass, with the bias split into the part added to the
/// input projection and the part added to the recurrent projection (GRU `reset_after`).
pub(crate) struct Weights<'a> {
    kernel: &'a Tensor,
    recurrent: &'a Tensor,
    input_bias: Option<Tensor>,
    recurrent_bias: Option<Tensor>,
}

impl Cell {
    /// Number of packed gate blocks.
    fn gates(&self) -> usize {
        match self.kind {
            CellKind::Simple => 1,
            CellKind::Lstm { .. } => 4,
            CellKind::Gru { .. } => 3,
        }
    }

    /// Whether the state carries a cell memory besides `h` (LSTM).
    fn has_memory(&self) -> bool {
        matches!(self.kind, CellKind::Lstm { .. })
    }

    /// Keras' initial weights: Glorot-uniform `kernel [input_dim, gates*units]`, orthogonal
    /// `recurrent_kernel [units, gates*units]`, zero `bias` (`[2, 3*units]` for a GRU with
    /// `reset_after`, else `[gates*units]`) with the LSTM forget block at one when
    /// `unit_forget_bias`. Parameter names get `prefix` in front.
    pub fn init(&self, prefix: &str, input_dim: usize, rng: &mut Rng) -> Vec<Param> {
        let (u, width) = (self.units, self.gates() * self.units);
        let mut params = vec![
            Param::trainable(
                &format!("{prefix}kernel"),
                glorot_uniform(&[input_dim, width], input_dim, width, rng),
            ),
            Param::trainable(
                &format!("{prefix}recurrent_kernel"),
                orthogonal(u, width, rng),
            ),
        ];
        if self.use_bias {
            let bias = match self.kind {
                CellKind::Gru { reset_after: true } => Tensor::zeros([2, width]),
                CellKind::Lstm {
                    unit_forget_bias: true,
                } => {
                    let mut b = vec![0.0; width];
                    b[u..2 * u].fill(1.0);
                    Tensor::from_vec(b, [width]).expect("length matches the shape")
                }
                _ => Tensor::zeros([width]),
            };
            params.push(Param::trainable(&format!("{prefix}bias"), bias));
        }
        params
    }

    /// The weights in `params` (`kernel`, `recurrent_kernel`, then `bias` when used), as made
    /// by [`Cell::init`].
    pub fn weights<'a>(&self, params: &'a [Param]) -> Result<Weights<'a>> {
        let bias = self.use_bias.then(|| &params[2].value);
        let (input_bias, recurrent_bias) = match (bias, self.kind) {
            (Some(b), CellKind::Gru { reset_after: true }) => {
                (Some(b.narrow(0, 0, 1)?), Some(b.narrow(0, 1, 1)?))
            }
            (b, _) => (b.cloned(), None),
        };
        Ok(Weights {
            kernel: &params[0].value,
            recurrent: &params[1].value,
            input_bias,
            recurrent_bias,
        })
    }

    /// Whether the LSTM step can use the fused [`Tensor::lstm_cell`]: it computes Keras'
    /// default activations (sigmoid gates, tanh cell) only.
    fn has_fused_lstm_cell(&self) -> bool {
        self.activation == Activation::Tanh && self.recurrent_activation == Activation::Sigmoid
    }

    /// The zero initial state: `[h]`, or `[h, c]` for an LSTM, each `[batch, units]`.
    pub fn zero_state(&self, batch: usize) -> Vec<Tensor> {
        let n = if self.has_memory() { 2 } else { 1 };
        vec![Tensor::zeros([batch, self.units]); n]
    }

    /// `input · kernel + input bias` for inputs `[..., features]`, giving `[..., gates*units]`:
    /// one matmul for every time step at once.
    pub fn project(&self, w: &Weights<'_>, input: &Tensor) -> Result<Tensor> {
        let xw = input.matmul(w.kernel)?;
        match &w.input_bias {
            Some(b) => xw.add(b),
            None => Ok(xw),
        }
    }

    /// One time step from the projected input `xw [batch, gates*units]` and `state`; returns
    /// the new state, `h` first.
    pub fn step(&self, w: &Weights<'_>, xw: &Tensor, state: &[Tensor]) -> Result<Vec<Tensor>> {
        let h = &state[0];
        let u = self.units;
        let (act, rec) = (self.activation, self.recurrent_activation);
        match self.kind {
            CellKind::Simple => Ok(vec![act.apply(&xw.add(&h.matmul(w.recurrent)?)?)?]),
            CellKind::Lstm { .. } if self.has_fused_lstm_cell() => {
                let z = xw.add(&h.matmul(w.recurrent)?)?;
                let hc = z.lstm_cell(&state[1])?;
                Ok(vec![hc.narrow(1, 0, u)?, hc.narrow(1, u, u)?])
            }
            CellKind::Lstm { .. } => {
                let z = xw.add(&h.matmul(w.recurrent)?)?;
                let i = rec.apply(&z.narrow(1, 0, u)?)?;
                let f = rec.apply(&z.narrow(1, u, u)?)?;
                let g = act.apply(&z.narrow(1, 2 * u, u)?)?;
                let o = rec.apply(&z.narrow(1, 3 * u, u)?)?;
                let c = f.mul(&state[1])?.add(&i.mul(&g)?)?;
                let h = o.mul(&act.apply(&c)?)?;
                Ok(vec![h, c])
            }
            CellKind::Gru { reset_after } => Ok(vec![self.gru_step(w, xw, h, reset_after)?]),
        }
    }

    /// The GRU update `h' = z*h + (1-z)*n` in either reset variant (see `GruConfig`).
    fn gru_step(
        &self,
        w: &Weights<'_>,
        xw: &Tensor,
        h: &Tensor,
        reset_after: bool,
    ) -> Result<Tensor> {
        let u = self.units;
        let (act, rec) = (self.activation, self.recurrent_activation);
        let block = |t: &Tensor, k: usize| t.narrow(1, k * u, u);
        let (z, pre_n) = if reset_after {
            let mut hu = h.matmul(w.recurrent)?;
            if let Some(b) = &w.recurrent_bias {
                hu = hu.add(b)?;
            }
            let z = rec.apply(&block(xw, 0)?.add(&block(&hu, 0)?)?)?;
            let r = rec.apply(&block(xw, 1)?.add(&block(&hu, 1)?)?)?;
            (z, block(xw, 2)?.add(&r.mul(&block(&hu, 2)?)?)?)
        } else {
            let hu = h.matmul(&w.recurrent.narrow(1, 0, 2 * u)?)?;
            let z = rec.apply(&block(xw, 0)?.add(&block(&hu, 0)?)?)?;
            let r = rec.apply(&block(xw, 1)?.add(&block(&hu, 1)?)?)?;
            let rh = r.mul(h)?.matmul(&w.recurrent.narrow(1, 2 * u, u)?)?;
            (z, block(xw, 2)?.add(&rh)?)
        };
        let n = act.apply(&pre_n)?;
        // z*h + (1-z)*n, written as n + z*(h - n) to save an op.
        n.add(&z.mul(&h.sub(&n)?)?)
    }

    /// Runs the cell over `input [batch, seq_len, features]` from a zero state, last step
    /// first when `reverse`. With a `mask [batch, seq_len]` (1 real, 0 padding) a padded step
    /// keeps the state and outputs zeros. Returns the last state's `h [batch, units]`, or with
    /// `return_sequences` every step's output `[batch, seq_len, units]` in input order.
    pub fn run(
        &self,
        w: &Weights<'_>,
        input: &Tensor,
        mask: Option<&Tensor>,
        reverse: bool,
        return_sequences: bool,
    ) -> Result<Tensor> {
        let (batch, steps) = (input.dims()[0], input.dims()[1]);
        let width = self.gates() * self.units;
        let xw = self.project(w, input)?;

        let mut state = self.zero_state(batch);
        let mut outputs = vec![None; steps];
        let order: Vec<usize> = if reverse {
            (0..steps).rev().collect()
        } else {
            (0..steps).collect()
        };
        for t in order {
            let xw_t = xw.narrow(1, t, 1)?.reshape([batch, width])?;
            let new = self.step(w, &xw_t, &state)?;
            let m = mask.map(|m| m.narrow(1, t, 1)).transpose()?;
            let out = masked_update(&mut state, new, m.as_ref())?;
            if return_sequences {
                outputs[t] = Some(out.reshape([batch, 1, self.units])?);
            }
        }

        if return_sequences {
            let outputs: Vec<Tensor> = outputs.into_iter().flatten().collect();
            Tensor::concat(&outputs, 1)
        } else {
            Ok(state.swap_remove(0))
        }
    }

    /// One streaming step: `input [batch, features]`, `state` carried between calls (empty
    /// before the first), `mask [batch, 1]` for this step. Returns this step's output: the
    /// per-step output when `return_sequences` (zero at a padded step), else the state `h`.
    pub fn stream_step(
        &self,
        w: &Weights<'_>,
        input: &Tensor,
        state: &mut Vec<Tensor>,
        mask: Option<&Tensor>,
        return_sequences: bool,
    ) -> Result<Tensor> {
        if state.is_empty() {
            *state = self.zero_state(input.dims()[0]);
        }
        let xw = self.project(w, input)?;
        let new = self.step(w, &xw, state)?;
        let out = masked_update(state, new, mask)?;
        Ok(if return_sequences {
            out
        } else {
            state[0].clone()
        })
    }
}

/// Moves `state` to `new` where the mask `m [batch, 1]` is 1 and keeps it where it is 0
/// (`s + m*(new - s)`); returns the step's output `m * h_new`.
fn masked_update(state: &mut Vec<Tensor>, new: Vec<Tensor>, m: Option<&Tensor>) -> Result<Tensor> {
    let Some(m) = m else {
        *state = new;
        return Ok(state[0].clone());
    };
    let out = new[0].mul(m)?;
    for (s, n) in state.iter_mut().zip(new) {
        *s = s.add(&n.sub(s)?.mul(m)?)?;
    }
    Ok(out)
}

/// Keras' `Orthogonal` initializer (gain 1) for a `[rows, cols]` matrix: the Q factor of a
/// `[max, min]` standard normal matrix with the signs of R's diagonal folded in, transposed
/// when `rows < cols`, so the result has orthonormal rows or columns, whichever are fewer.
///
/// Q comes from modified Gram-Schmidt in f64, run twice per column so that orthogonality
/// holds to rounding; Gram-Schmidt's R has a positive diagonal, which is the sign convention
/// Keras applies after its QR.
pub(crate) fn orthogonal(rows: usize, cols: usize, rng: &mut Rng) -> Tensor {
    let (n, k) = (rows.max(cols), rows.min(cols));
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(k);
    while basis.len() < k {
        let mut v: Vec<f64> = (0..n).map(|_| rng.normal() as f64).collect();
        for _ in 0..2 {
            for q in &basis {
                let d: f64 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(q).for_each(|(x, q)| *x -= d * q);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        // A draw (almost) inside the span of the previous columns has no usable direction;
        // with normal samples this practically never happens, and a redraw fixes it.
        if norm > 1e-6 {
            basis.push(v.into_iter().map(|x| x / norm).collect());
        }
    }

    let mut out = vec![0.0f32; rows * cols];
    for (j, q) in basis.iter().enumerate() {
        for (i, &x) in q.iter().enumerate() {
            // Column j of the [n, k] Q is `q`; when rows < cols the result is Q transposed.
            let at = if rows >= cols {
                i * cols + j
            } else {
                j * cols + i
            };
            out[at] = x as f32;
        }
    }
    Tensor::from_vec(out, [rows, cols]).expect("length matches the shape")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(m: &[f32], rows: usize, cols: usize, by_rows: bool) -> Vec<f64> {
        let k = if by_rows { rows } else { cols };
        let at = |v: usize, e: usize| {
            if by_rows {
                m[v * cols + e]
            } else {
                m[e * cols + v]
            }
        };
        let len = if by_rows { cols } else { rows };
        let mut g = vec![0.0; k * k];
        for a in 0..k {
            for b in 0..k {
                g[a * k + b] = (0..len).map(|e| at(a, e) as f64 * at(b, e) as f64).sum();
            }
        }
        g
    }

    #[test]
    fn orthogonal_has_orthonormal_rows_or_columns() {
        for (rows, cols) in [(4, 16), (5, 5), (12, 3), (1, 4)] {
            let t = orthogonal(rows, cols, &mut Rng::seed(3));
            assert_eq!(t.dims(), &[rows, cols]);
            let m = t.to_vec_f32().unwrap();
            let k = rows.min(cols);
            let g = gram(&m, rows, cols, rows < cols);
            for a in 0..k {
                for b in 0..k {
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((g[a * k + b] - want).abs() < 1e-5, "{rows}x{cols} {a},{b}");
                }
            }
        }
    }

    #[test]
    fn lstm_init_sets_only_the_forget_bias() {
        let cell = Cell {
            kind: CellKind::Lstm {
                unit_forget_bias: true,
            },
            units: 2,
            activation: Activation::Tanh,
            recurrent_activation: Activation::Sigmoid,
            use_bias: true,
        };
        let p = cell.init("", 3, &mut Rng::seed(0));
        assert_eq!(p[0].value.dims(), &[3, 8]);
        assert_eq!(p[1].value.dims(), &[2, 8]);
        assert_eq!(
            p[2].value.to_vec_f32().unwrap(),
            vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
    }
}
