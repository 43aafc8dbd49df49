//! Property tests of the fast kernels against their scalar references, on random shapes that
//! include odd sizes and SIMD remainder tails, and of thread-count independence.

mod common;

use std::sync::Mutex;

use edgeflow_tensor::kernels::conv::{axis_geometry, conv2d_reference, Window};
use edgeflow_tensor::kernels::matmul::{sgemm, sgemm_reference, MatRef};
use edgeflow_tensor::{threading, Conv2dOptions, Padding, Rng, Tensor, TensorError};
use proptest::prelude::*;

/// Few cases per property keep the suite fast; the shapes are drawn anew on every run. A
/// failure prints its minimal input; nothing is written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// `set_num_threads` is process-wide: tests that change it take turns.
static THREADS: Mutex<()> = Mutex::new(());

fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed(seed);
    (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect()
}

/// Error bound of an f32 sum of `terms` products (summed in any order, with or without FMA)
/// against the exactly rounded value: `(terms + 2) * eps * sum(|a| |b|)`, the classic
/// `gamma_n` bound of a dot product with a little room for the final rounding of the reference.
fn dot_bound(terms: usize, abs_sum: f64) -> f64 {
    (terms + 2) as f64 * f32::EPSILON as f64 * abs_sum + 1e-30
}

// ---------------------------------------------------------------------------------------------
// sgemm

/// A matrix of `rows x cols` stored so that `MatRef` exercises strides: optionally transposed
/// (the view is `.t()` of the stored matrix) and with `pad` unused elements after each stored
/// row.
struct Stored {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
    transposed: bool,
    pad: usize,
}

impl Stored {
    fn new(rows: usize, cols: usize, transposed: bool, pad: usize, seed: u64) -> Self {
        let (sr, sc) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        Stored {
            data: random_vec(sr * (sc + pad), seed),
            rows,
            cols,
            transposed,
            pad,
        }
    }

    fn view(&self) -> MatRef<'_> {
        let (sr, sc) = if self.transposed {
            (self.cols, self.rows)
        } else {
            (self.rows, self.cols)
        };
        let stored = MatRef {
            data: &self.data,
            rows: sr,
            cols: sc,
            row_stride: sc + self.pad,
            col_stride: 1,
        };
        if self.transposed {
            stored.t()
        } else {
            stored
        }
    }
}

fn at(m: MatRef<'_>, i: usize, j: usize) -> f32 {
    m.data[i * m.row_stride + j * m.col_stride]
}

/// Checks `sgemm` against `sgemm_reference` for one problem, element by element.
fn check_sgemm(a: &Stored, b: &Stored, c0: &[f32], accumulate: bool) -> Result<(), TestCaseError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (mut fast, mut reference) = (c0.to_vec(), c0.to_vec());
    sgemm(a.view(), b.view(), &mut fast, accumulate);
    sgemm_reference(a.view(), b.view(), &mut reference, accumulate);

    for i in 0..m {
        for j in 0..n {
            let mut abs_sum: f64 = (0..k)
                .map(|p| (at(a.view(), i, p) as f64 * at(b.view(), p, j) as f64).abs())
                .sum();
            if accumulate {
                abs_sum += c0[i * n + j].abs() as f64;
            }
            let (f, r) = (fast[i * n + j], reference[i * n + j]);
            let err = (f as f64 - r as f64).abs();
            prop_assert!(
                err <= dot_bound(k + 1, abs_sum),
                "c[{i},{j}] = {f} vs {r} ({m}x{k}x{n})"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    /// Small and odd sizes: every remainder tail of the SIMD tiles, transposed and padded
    /// (row stride larger than the row) views, with and without accumulation.
    #[test]
    fn sgemm_matches_the_reference(
        m in 1usize..70,
        k in 1usize..70,
        n in 1usize..70,
        ta in any::<bool>(),
        tb in any::<bool>(),
        pads in (0usize..3, 0usize..3),
        accumulate in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let a = Stored::new(m, k, ta, pads.0, seed);
        let b = Stored::new(k, n, tb, pads.1, seed ^ 1);
        check_sgemm(&a, &b, &random_vec(m * n, seed ^ 2), accumulate)?;
    }
}

proptest! {
    #![proptest_config(config(6))]

    /// Sizes past the kernel's cache blocking and its threshold for using threads.
    #[test]
    fn large_sgemm_matches_the_reference(
        m in 64usize..260,
        k in 64usize..300,
        n in 64usize..260,
        ta in any::<bool>(),
        accumulate in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let a = Stored::new(m, k, ta, 1, seed);
        let b = Stored::new(k, n, !ta, 0, seed ^ 1);
        check_sgemm(&a, &b, &random_vec(m * n, seed ^ 2), accumulate)?;
    }
}

// ---------------------------------------------------------------------------------------------
// conv2d

#[derive(Debug, Clone)]
struct ConvCase {
    batch: usize,
    height: usize,
    width: usize,
    channels: usize,
    filters: usize,
    kernel: (usize, usize),
    strides: (usize, usize),
    padding: Padding,
    seed: u64,
}

fn conv_case(max_hw: usize, max_c: usize) -> impl Strategy<Value = ConvCase> {
    (
        (1usize..3, 1..=max_hw, 1..=max_hw, 1..=max_c, 1usize..7),
        (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        prop_oneof![Just(Padding::Valid), Just(Padding::Same)],
        any::<u64>(),
    )
        .prop_map(
            |((batch, height, width, channels, filters), (kh, kw, sh, sw), padding, seed)| {
                ConvCase {
                    batch,
                    height,
                    width,
                    channels,
                    filters,
                    kernel: (kh, kw),
                    strides: (sh, sw),
                    padding,
                    seed,
                }
            },
        )
}

impl ConvCase {
    fn tensors(&self) -> (Tensor, Tensor) {
        let shape = [self.batch, self.height, self.width, self.channels];
        let x = Tensor::from_vec(random_vec(shape.iter().product(), self.seed), shape).unwrap();
        let kshape = [self.kernel.0, self.kernel.1, self.channels, self.filters];
        let k = Tensor::from_vec(random_vec(kshape.iter().product(), !self.seed), kshape).unwrap();
        (x, k)
    }

    fn options(&self) -> Conv2dOptions {
        Conv2dOptions {
            strides: self.strides,
            padding: self.padding,
        }
    }

    /// The window geometry, built independently of the op from the shared axis formula; `None`
    /// when no window fits.
    fn window(&self) -> Option<Window> {
        let (out_h, pad_top) =
            axis_geometry(self.height, self.kernel.0, self.strides.0, self.padding)?;
        let (out_w, pad_left) =
            axis_geometry(self.width, self.kernel.1, self.strides.1, self.padding)?;
        Some(Window {
            batch: self.batch,
            height: self.height,
            width: self.width,
            channels: self.channels,
            kernel_h: self.kernel.0,
            kernel_w: self.kernel.1,
            stride_h: self.strides.0,
            stride_w: self.strides.1,
            out_h,
            out_w,
            pad_top,
            pad_left,
        })
    }
}

fn abs_values(t: &Tensor) -> Vec<f32> {
    t.to_vec_f32().unwrap().iter().map(|v| v.abs()).collect()
}

fn dot(a: &[f32], b: &[f32]) -> (f64, f64) {
    a.iter().zip(b).fold((0.0, 0.0), |(s, abs), (&x, &y)| {
        let p = x as f64 * y as f64;
        (s + p, abs + p.abs())
    })
}

/// The fast convolution against `conv2d_reference`, element by element.
fn check_conv_forward(case: &ConvCase) -> Result<(), TestCaseError> {
    let (x, k) = case.tensors();
    let got = x.conv2d(&k, None, case.options());
    let Some(w) = case.window() else {
        // Only a `valid` window larger than the input has no output.
        prop_assert_eq!(case.padding, Padding::Valid);
        let is_shape_error = matches!(got, Err(TensorError::InvalidShape { .. }));
        prop_assert!(is_shape_error, "{:?}", got);
        return Ok(());
    };
    let got = got.unwrap();
    prop_assert_eq!(got.dims(), &[w.batch, w.out_h, w.out_w, case.filters]);
    let (xv, kv) = (x.to_vec_f32().unwrap(), k.to_vec_f32().unwrap());
    let want = conv2d_reference(&w, &xv, &kv, case.filters);
    // The same sums over |x| |k| give each output's error bound.
    let abs = conv2d_reference(&w, &abs_values(&x), &abs_values(&k), case.filters);
    for (i, (g, r)) in got.to_vec_f32().unwrap().iter().zip(&want).enumerate() {
        let err = (*g as f64 - *r as f64).abs();
        let bound = dot_bound(w.patch_len(), abs[i] as f64);
        prop_assert!(err <= bound, "out[{}]: {} vs {}", i, g, r);
    }
    Ok(())
}

/// The convolution is linear in its input and in its kernel, so for `L = <conv(x, k), g>` the
/// gradients must satisfy `<x, dL/dx> = <k, dL/dk> = L`.
fn check_conv_adjoint(case: &ConvCase) -> Result<(), TestCaseError> {
    let (x, k) = case.tensors();
    let (x, k) = (x.with_requires_grad(true), k.with_requires_grad(true));
    let y = x.conv2d(&k, None, case.options()).unwrap();
    let g = random_vec(y.elem_count(), case.seed ^ 3);
    let g = Tensor::from_vec(g, y.dims().to_vec()).unwrap();
    let grads = y.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
    let (gx, gk) = (grads.get(&x).unwrap(), grads.get(&k).unwrap());

    let v = |t: &Tensor| t.to_vec_f32().unwrap();
    let (l, l_abs) = dot(&v(&y), &v(&g));
    let (lx, lx_abs) = dot(&v(&x), &v(gx));
    let (lk, lk_abs) = dot(&v(&k), &v(gk));
    let terms = case.window().unwrap().patch_len().max(y.elem_count());
    let bound = dot_bound(terms, l_abs + lx_abs.max(lk_abs));
    prop_assert!((lx - l).abs() <= bound, "<x, dx> = {} but L = {}", lx, l);
    prop_assert!((lk - l).abs() <= bound, "<k, dk> = {} but L = {}", lk, l);
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn conv2d_matches_the_direct_reference(case in conv_case(12, 5)) {
        check_conv_forward(&case)?;
    }

    /// The unfolding kept for 3x3 windows over three channels without padding (the first layer
    /// of an RGB network) has a loop of its own.
    #[test]
    fn conv2d_of_rgb_3x3_valid_windows_matches_the_direct_reference(
        case in conv_case(12, 5).prop_map(|c| ConvCase {
            channels: 3,
            kernel: (3, 3),
            padding: Padding::Valid,
            height: c.height.max(3),
            width: c.width.max(3),
            ..c
        })
    ) {
        check_conv_forward(&case)?;
        check_conv_adjoint(&case)?;
    }

    /// Checks the backward pass (col2im and both transposed products) on every random
    /// geometry.
    #[test]
    fn conv2d_backward_is_the_adjoint_of_the_forward(case in conv_case(10, 4)) {
        prop_assume!(case.window().is_some());
        check_conv_adjoint(&case)?;
    }
}

// ---------------------------------------------------------------------------------------------
// One thread and two give the same bits

/// conv2d forward and all three gradients, and a batched matmul with its gradients, all as
/// flat f32 vectors.
fn conv_and_matmul(case: &ConvCase, mk: (usize, usize, usize)) -> Vec<Vec<f32>> {
    let (x, k) = case.tensors();
    let (x, k) = (x.with_requires_grad(true), k.with_requires_grad(true));
    let bias = Tensor::from_vec(random_vec(case.filters, 5), [case.filters]).unwrap();
    let bias = bias.with_requires_grad(true);
    let y = x.conv2d(&k, Some(&bias), case.options()).unwrap();
    let gc = y.square().unwrap().sum_all().unwrap().backward().unwrap();

    let (m, kk, n) = mk;
    let a = Tensor::from_vec(random_vec(2 * m * kk, 6), [2, m, kk])
        .unwrap()
        .with_requires_grad(true);
    let b = Tensor::from_vec(random_vec(kk * n, 7), [kk, n])
        .unwrap()
        .with_requires_grad(true);
    let p = a.matmul(&b).unwrap();
    let gm = p.square().unwrap().sum_all().unwrap().backward().unwrap();

    let v = |t: &Tensor| t.to_vec_f32().unwrap();
    vec![
        v(&y),
        v(gc.get(&x).unwrap()),
        v(gc.get(&k).unwrap()),
        v(gc.get(&bias).unwrap()),
        v(&p),
        v(gm.get(&a).unwrap()),
        v(gm.get(&b).unwrap()),
    ]
}

fn large_case() -> impl Strategy<Value = (ConvCase, (usize, usize, usize))> {
    // Big enough that every kernel crosses its threshold for splitting work across threads.
    let conv = (
        2usize..5,
        9usize..20,
        9usize..20,
        3usize..9,
        // 16 and 32 also take the direct kernels (few taps, whole SIMD vectors of filters).
        prop_oneof![8usize..20, Just(32)],
        1usize..3,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(batch, height, width, channels, filters, s, same, seed)| ConvCase {
                batch,
                height,
                width,
                channels,
                filters,
                kernel: (3, 3),
                strides: (s, s),
                padding: if same { Padding::Same } else { Padding::Valid },
                seed,
            },
        );
    (conv, (40usize..130, 40usize..130, 40usize..130))
}

proptest! {
    #![proptest_config(config(12))]

    #[test]
    fn one_and_two_threads_give_identical_bits((case, mk) in large_case()) {
        let _turn = THREADS.lock().unwrap_or_else(|e| e.into_inner());
        threading::set_num_threads(1);
        let one = conv_and_matmul(&case, mk);
        threading::set_num_threads(2);
        prop_assert_eq!(threading::num_threads(), 2);
        let two = conv_and_matmul(&case, mk);
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            prop_assert!(same, "result {} differs between 1 and 2 threads", i);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// max pooling

/// Max pooling, one window at a time: the value and the input index of the first maximum (a
/// NaN wins), or `None` where the window holds only padding.
fn max_pool_reference(x: &[f32], dims: [usize; 4], w: &Window) -> (Vec<f32>, Vec<Option<usize>>) {
    let [n, h, wd, c] = dims;
    let (mut out, mut at) = (Vec::new(), Vec::new());
    for b in 0..n {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                for ch in 0..c {
                    let mut best: Option<(f32, usize)> = None;
                    for ky in 0..w.kernel_h {
                        for kx in 0..w.kernel_w {
                            let Some((y, xx)) = w.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            let i = ((b * h + y) * wd + xx) * c + ch;
                            let v = x[i];
                            if best.is_none_or(|(m, _)| v > m || v.is_nan()) {
                                best = Some((v, i));
                            }
                        }
                    }
                    out.push(best.map_or(f32::NEG_INFINITY, |(v, _)| v));
                    at.push(best.map(|(_, i)| i));
                }
            }
        }
    }
    (out, at)
}

/// Input dims, window, strides, padding and seed of one pooling case.
type PoolCase = ([usize; 4], (usize, usize), (usize, usize), Padding, u64);

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (
        (1usize..3, 2usize..12, 2usize..12, 1usize..40),
        prop_oneof![
            // The common 2x2 / stride 2 window has loops of its own.
            Just(((2usize, 2usize), (2usize, 2usize))),
            ((1usize..4, 1usize..4), (1usize..4, 1usize..4)),
        ],
        prop_oneof![Just(Padding::Valid), Just(Padding::Same)],
        any::<u64>(),
    )
        .prop_map(|((n, h, w, c), (k, s), p, seed)| ([n, h, w, c], k, s, p, seed))
}

proptest! {
    #![proptest_config(config(48))]

    /// Values drawn from a handful of levels, so that windows hold ties, and the odd NaN.
    #[test]
    fn max_pool_matches_the_reference_with_ties_and_nans(
        (dims, k, s, padding, seed) in pool_case()
    ) {
        let len: usize = dims.iter().product();
        let mut rng = Rng::seed(seed);
        let x: Vec<f32> = (0..len)
            .map(|_| {
                let u = rng.uniform();
                if u < 0.02 { f32::NAN } else { (u * 4.0).floor() - 2.0 }
            })
            .collect();
        let (out_h, pad_top) = axis_geometry(dims[1], k.0, s.0, padding).unwrap_or((0, 0));
        let (out_w, pad_left) = axis_geometry(dims[2], k.1, s.1, padding).unwrap_or((0, 0));
        prop_assume!(out_h > 0 && out_w > 0);
        let w = Window {
            batch: dims[0], height: dims[1], width: dims[2], channels: dims[3],
            kernel_h: k.0, kernel_w: k.1, stride_h: s.0, stride_w: s.1,
            out_h, out_w, pad_top, pad_left,
        };
        let t = Tensor::from_vec(x.clone(), dims).unwrap().with_requires_grad(true);
        let opts = Conv2dOptions { strides: s, padding };
        let y = t.max_pool2d(k, opts).unwrap();
        let (want, at) = max_pool_reference(&x, dims, &w);
        let got = y.to_vec_f32().unwrap();
        prop_assert_eq!(got.len(), want.len());
        for (i, (g, r)) in got.iter().zip(&want).enumerate() {
            prop_assert!(g.to_bits() == r.to_bits() || (g.is_nan() && r.is_nan()),
                "out[{}] = {} but the reference is {}", i, g, r);
        }
        // Each output's gradient lands on its first maximum; the rest of the input gets 0.
        let g = random_vec(want.len(), seed ^ 1);
        let gt = Tensor::from_vec(g.clone(), y.dims().to_vec()).unwrap();
        let grads = y.mul(&gt).unwrap().sum_all().unwrap().backward().unwrap();
        let mut expect = vec![0.0f32; len];
        for (j, a) in at.iter().enumerate() {
            if let Some(i) = a {
                expect[*i] += g[j];
            }
        }
        let gx = grads.get(&t).unwrap().to_vec_f32().unwrap();
        prop_assert_eq!(gx, expect);
    }
}
