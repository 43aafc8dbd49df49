//! Single-precision matrix product through the `gemm` crate.

use gemm::{gemm, Parallelism};

use crate::threading::{num_threads, PARALLEL_MIN_WORK};

/// A read-only matrix view: element (i, j) is at `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Distance between rows, in elements.
    pub row_stride: usize,
    /// Distance between columns, in elements.
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose, as a view of the same data.
    pub fn t(self) -> Self {
        MatRef {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn max_index(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
    }
}

/// `c = a · b` (or `c += a · b` when `accumulate`), `c` row-major `a.rows x b.cols`.
///
/// # Panics
/// When the inner dimensions differ or a view reaches past its slice: callers check shapes
/// before they get here.
pub fn sgemm(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "sgemm: inner dimensions differ");
    assert!(c.len() >= m * n, "sgemm: output too small");
    assert!(
        m == 0 || k == 0 || a.max_index() < a.data.len(),
        "sgemm: lhs view out of bounds"
    );
    assert!(
        k == 0 || n == 0 || b.max_index() < b.data.len(),
        "sgemm: rhs view out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    if m * n <= SPLIT_K_MAX_OUTPUT && k >= 2 * SPLIT_K_CHUNK {
        sgemm_split_k(a, b, c, accumulate);
        return;
    }
    let threads = num_threads();
    let parallelism = if threads > 1 && 2 * m * n * k >= PARALLEL_MIN_WORK * 4 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every element the views address inside their slices, and
    // `c` holds the m x n output with row stride n; `c` is a unique borrow, so it aliases nothing.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Outputs at most this large (a small weight gradient) are computed by splitting `k`.
const SPLIT_K_MAX_OUTPUT: usize = 512 * 128;
/// Length of each `k` slice; fixed, so results do not depend on the thread count.
const SPLIT_K_CHUNK: usize = 1024;

/// `a · b` for a small output and a long inner dimension (`colsᵀ · grad` of a convolution): the
/// GEMM library cannot split such a product across threads, so slices of `k` are multiplied in
/// parallel and their partial products added in slice order.
fn sgemm_split_k(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], accumulate: bool) {
    use rayon::prelude::*;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let starts: Vec<usize> = (0..k).step_by(SPLIT_K_CHUNK).collect();
    let partials: Vec<Vec<f32>> = starts
        .par_iter()
        .map(|&s| {
            let len = SPLIT_K_CHUNK.min(k - s);
            let a_part = MatRef {
                data: &a.data[s * a.col_stride..],
                cols: len,
                ..a
            };
            let b_part = MatRef {
                data: &b.data[s * b.row_stride..],
                rows: len,
                ..b
            };
            let mut part = vec![0.0f32; m * n];
            single_threaded(a_part, b_part, &mut part);
            part
        })
        .collect();
    let out = &mut c[..m * n];
    if !accumulate {
        out.fill(0.0);
    }
    for p in partials {
        out.iter_mut().zip(&p).for_each(|(o, v)| *o += v);
    }
}

/// `c = a · b` on the calling thread.
fn single_threaded(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // SAFETY: as in `sgemm`: the callers' views stay inside their slices and `c` holds m x n.
    unsafe {
        gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Plain triple-loop product, the reference the fast path is tested against.
pub fn sgemm_reference(a: MatRef<'_>, b: MatRef<'_>, c: &mut [f32], accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a.data[i * a.row_stride + p * a.col_stride] as f64
                    * b.data[p * b.row_stride + j * b.col_stride] as f64;
            }
            let out = &mut c[i * n + j];
            *out = if accumulate {
                *out + acc as f32
            } else {
                acc as f32
            };
        }
    }
}
