//! Softmax and log-softmax over the rows of a row-major matrix, stable for any finite logits.

use rayon::prelude::*;

use crate::threading::PARALLEL_MIN_WORK;

fn for_rows(x: &[f32], cols: usize, out: &mut [f32], f: impl Fn(&[f32], &mut [f32]) + Sync) {
    if cols == 0 {
        return;
    }
    if x.len() < PARALLEL_MIN_WORK {
        x.chunks(cols)
            .zip(out.chunks_mut(cols))
            .for_each(|(x, o)| f(x, o));
    } else {
        x.par_chunks(cols)
            .zip(out.par_chunks_mut(cols))
            .for_each(|(x, o)| f(x, o));
    }
}

fn row_max(x: &[f32]) -> f32 {
    x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `out = exp(x - max) / sum(exp(x - max))` per row. Subtracting the row maximum keeps every
/// exponent at or below zero, so nothing overflows.
pub fn softmax_rows(x: &[f32], cols: usize, out: &mut [f32]) {
    for_rows(x, cols, out, |x, o| {
        let m = row_max(x);
        let m = if m.is_finite() { m } else { 0.0 };
        let mut sum = 0.0f32;
        for (o, &v) in o.iter_mut().zip(x) {
            *o = (v - m).exp();
            sum += *o;
        }
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|o| *o *= inv);
    });
}

/// `out = x - max - ln(sum(exp(x - max)))` per row.
pub fn log_softmax_rows(x: &[f32], cols: usize, out: &mut [f32]) {
    for_rows(x, cols, out, |x, o| {
        let m = row_max(x);
        let m = if m.is_finite() { m } else { 0.0 };
        let sum: f32 = x.iter().map(|&v| (v - m).exp()).sum();
        let shift = m + sum.ln();
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = v - shift);
    });
}
