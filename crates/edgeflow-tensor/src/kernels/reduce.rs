//! Reductions along one axis of a tensor viewed as `[outer, axis, inner]`.

use rayon::prelude::*;

use crate::threading::PARALLEL_MIN_WORK;
use crate::vectorized;

/// Sums over the middle axis of `x` seen as `[outer, n, inner]`; `out` is `[outer, inner]`.
/// Accumulates in an order fixed by the sizes alone, so results do not depend on the
/// thread count.
pub fn sum_axis(x: &[f32], outer: usize, n: usize, inner: usize, out: &mut [f32]) {
    if inner == 0 {
        return;
    }
    if outer == 1 && n * inner >= PARALLEL_MIN_WORK && inner > 1 {
        sum_rows_blocked(x, n, inner, out);
        return;
    }
    let body = |o: usize, dst: &mut [f32]| {
        let block = &x[o * n * inner..(o + 1) * n * inner];
        if inner == 1 {
            // A plain sum: accumulate in f64 so long rows lose no precision.
            dst[0] = block.iter().map(|&v| v as f64).sum::<f64>() as f32;
            return;
        }
        add_rows(block, inner, dst);
    };
    if outer * n * inner < PARALLEL_MIN_WORK || outer == 1 {
        out.chunks_mut(inner)
            .enumerate()
            .for_each(|(o, d)| body(o, d));
    } else {
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(o, d)| body(o, d));
    }
}

vectorized! {
    /// `dst = sum of the rows of block` (row length `inner`), row after row, so the result is
    /// the same in every instruction set's copy.
    fn add_rows(block: &[f32], inner: usize, dst: &mut [f32]) = add_rows_portable;
}

#[inline(always)]
fn add_rows_portable(block: &[f32], inner: usize, dst: &mut [f32]) {
    dst.fill(0.0);
    for row in block.chunks_exact(inner) {
        dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
    }
}

/// Rows per partial sum of [`sum_rows_blocked`]; fixed, so results do not depend on threads.
const ROW_BLOCK: usize = 1024;

/// Sum of the `n` rows of a `[n, inner]` matrix: blocks of rows are summed in parallel, then
/// the partial sums are added in block order.
fn sum_rows_blocked(x: &[f32], n: usize, inner: usize, out: &mut [f32]) {
    let partials: Vec<Vec<f32>> = x[..n * inner]
        .par_chunks(ROW_BLOCK * inner)
        .map(|block| {
            let mut p = vec![0.0; inner];
            add_rows(block, inner, &mut p);
            p
        })
        .collect();
    out.fill(0.0);
    for p in partials {
        out.iter_mut().zip(&p).for_each(|(o, v)| *o += v);
    }
}

/// Maximum over the middle axis of `[outer, n, inner]` and the index (along that axis) of the
/// first maximum. NaN counts as the maximum.
pub fn max_axis(x: &[f32], outer: usize, n: usize, inner: usize) -> (Vec<f32>, Vec<u32>) {
    let mut vals = vec![f32::NEG_INFINITY; outer * inner];
    let mut idx = vec![0u32; outer * inner];
    for o in 0..outer {
        for i in 0..n {
            for j in 0..inner {
                let v = x[(o * n + i) * inner + j];
                let (best, at) = (&mut vals[o * inner + j], &mut idx[o * inner + j]);
                if i == 0 || v > *best || (v.is_nan() && !best.is_nan()) {
                    *best = v;
                    *at = i as u32;
                }
            }
        }
    }
    (vals, idx)
}

/// Sum of the rows of a row-major `[rows, cols]` matrix: the bias gradient of a dense or
/// convolution layer.
pub fn column_sums(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; cols];
    sum_axis(x, 1, rows, cols, &mut out);
    out
}
