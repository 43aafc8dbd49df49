//! Element-wise maps, with and without broadcasting.

use rayon::prelude::*;

use crate::threading::PARALLEL_MIN_WORK;
use crate::vectorized;

const CHUNK: usize = 1 << 14;

/// The logistic function, written so that `exp` only ever sees a non-positive argument.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `out[i] = f(x[i])`, split across threads for large inputs.
pub fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    if x.len() < PARALLEL_MIN_WORK {
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
        return;
    }
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            o.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
        });
}

/// `out[i] = f(a[i], b[i])` for equal-length slices.
pub fn zip_map(a: &[f32], b: &[f32], out: &mut [f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    if a.len() < PARALLEL_MIN_WORK {
        out.iter_mut()
            .zip(a.iter().zip(b))
            .for_each(|(o, (&x, &y))| *o = f(x, y));
        return;
    }
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            o.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (&x, &y))| *o = f(x, y))
        });
}

/// A strided operand of a broadcast map.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The underlying elements.
    pub data: &'a [f32],
    /// Offset of element zero.
    pub offset: usize,
    /// Strides over the output's dimensions (0 where the operand is broadcast).
    pub strides: &'a [usize],
}

/// `out = f(a, b)` over the row-major output of shape `dims`, reading each operand through its
/// own strides. Used for broadcasting and for non-contiguous views.
pub fn broadcast_map(
    dims: &[usize],
    a: Strided<'_>,
    b: Strided<'_>,
    out: &mut [f32],
    f: impl Fn(f32, f32) -> f32 + Sync,
) {
    if dims.is_empty() {
        out[0] = f(a.data[a.offset], b.data[b.offset]);
        return;
    }
    let last = dims.len() - 1;
    let row = dims[last];
    if row == 0 {
        return;
    }
    let outer: Vec<usize> = dims[..last].to_vec();
    let (sa, sb) = (a.strides[last], b.strides[last]);
    let do_row = |r: usize, o: &mut [f32]| {
        // Decompose the row number into the outer multi-index to find both operands' offsets.
        let (mut oa, mut ob, mut rem) = (a.offset, b.offset, r);
        for d in (0..last).rev() {
            let i = rem % outer[d];
            rem /= outer[d];
            oa += i * a.strides[d];
            ob += i * b.strides[d];
        }
        for (j, o) in o.iter_mut().enumerate() {
            *o = f(a.data[oa + j * sa], b.data[ob + j * sb]);
        }
    };
    if out.len() < PARALLEL_MIN_WORK {
        out.chunks_mut(row)
            .enumerate()
            .for_each(|(r, o)| do_row(r, o));
    } else {
        out.par_chunks_mut(row)
            .enumerate()
            .for_each(|(r, o)| do_row(r, o));
    }
}

/// Adds `bias` (when given) to every row of the `[rows, bias.len()]` matrix `x`, then applies
/// `max(x, 0)` when `relu` (NaN stays NaN): a layer's output after its matrix product, in one
/// pass split across threads.
pub fn add_bias_relu(x: &mut [f32], cols: usize, bias: Option<&[f32]>, relu: bool) {
    if cols == 0 || (bias.is_none() && !relu) {
        return;
    }
    let rows_per_task = (CHUNK / cols).max(1);
    if x.len() < PARALLEL_MIN_WORK {
        return bias_relu_rows(x, cols, bias, relu);
    }
    x.par_chunks_mut(rows_per_task * cols)
        .for_each(|rows| bias_relu_rows(rows, cols, bias, relu));
}

vectorized! {
    fn bias_relu_rows(x: &mut [f32], cols: usize, bias: Option<&[f32]>, relu: bool) =
        bias_relu_rows_portable;
}

#[inline(always)]
fn bias_relu_rows_portable(x: &mut [f32], cols: usize, bias: Option<&[f32]>, relu: bool) {
    let clamp = |v: f32| if relu && v < 0.0 { 0.0 } else { v };
    for row in x.chunks_exact_mut(cols) {
        match bias {
            Some(b) => row.iter_mut().zip(b).for_each(|(v, b)| *v = clamp(*v + b)),
            None => row.iter_mut().for_each(|v| *v = clamp(*v)),
        }
    }
}

/// `out = g` where `y > 0`, else 0: the gradient through a relu whose output was `y`. Split
/// across threads for large inputs.
pub fn where_positive(g: &[f32], y: &[f32], out: &mut [f32]) {
    if g.len() < PARALLEL_MIN_WORK {
        return where_positive_chunk(g, y, out);
    }
    out.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK).zip(y.par_chunks(CHUNK)))
        .for_each(|(o, (g, y))| where_positive_chunk(g, y, o));
}

vectorized! {
    fn where_positive_chunk(g: &[f32], y: &[f32], out: &mut [f32]) = where_positive_portable;
}

#[inline(always)]
fn where_positive_portable(g: &[f32], y: &[f32], out: &mut [f32]) {
    for ((o, &g), &y) in out.iter_mut().zip(g).zip(y) {
        *o = if y > 0.0 { g } else { 0.0 };
    }
}
