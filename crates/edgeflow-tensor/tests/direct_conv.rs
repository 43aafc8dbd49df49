//! The direct convolution kernels (`kernels::direct_conv`) on every instruction set this CPU
//! runs, against the f64 reference: the forward pass with bias and relu, and the kernel and
//! bias gradients with and without the relu's mask, on random geometries with padding and
//! strides. Where the CPU has none of the instruction sets there is nothing to run and the
//! tests say so.

use edgeflow_tensor::kernels::conv::{axis_geometry, conv2d_reference, Window};
use edgeflow_tensor::kernels::direct_conv::{self, Isa, MAX_TAPS};
use edgeflow_tensor::{Padding, Rng};
use proptest::prelude::*;

fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed(seed);
    (0..n).map(|_| 2.0 * rng.uniform() - 1.0).collect()
}

/// Error bound of an f32 sum of `terms` products against the exact value (see
/// `properties.rs`).
fn dot_bound(terms: usize, abs_sum: f64) -> f64 {
    (terms + 2) as f64 * f32::EPSILON as f64 * abs_sum + 1e-30
}

#[derive(Debug, Clone)]
struct Case {
    w: Window,
    filters: usize,
    seed: u64,
}

/// Random geometries the direct kernels take: up to `MAX_TAPS` taps, filter counts of one to
/// four 16-float vectors (so whole vectors of 8 too), odd sizes, strides and both paddings.
fn case() -> impl Strategy<Value = Case> {
    (
        // Widths up to 40 give rows of more than one 12- or 16-pixel tile.
        (1usize..4, 1usize..10, 1usize..40, 1usize..5),
        (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        (prop_oneof![Just(8usize), Just(16), Just(24), Just(32), Just(64)]),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_filter_map(
            "no window fits, or too many taps",
            |((batch, height, width, channels), (kh, kw, sh, sw), filters, same, seed)| {
                let padding = if same { Padding::Same } else { Padding::Valid };
                let (out_h, pad_top) = axis_geometry(height, kh, sh, padding)?;
                let (out_w, pad_left) = axis_geometry(width, kw, sw, padding)?;
                let w = Window {
                    batch,
                    height,
                    width,
                    channels,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride_h: sh,
                    stride_w: sw,
                    out_h,
                    out_w,
                    pad_top,
                    pad_left,
                };
                (w.patch_len() <= MAX_TAPS).then_some(Case { w, filters, seed })
            },
        )
}

impl Case {
    fn inputs(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let w = &self.w;
        let x = random_vec(w.batch * w.height * w.width * w.channels, self.seed);
        let k = random_vec(w.patch_len() * self.filters, !self.seed);
        let b = random_vec(self.filters, self.seed ^ 7);
        (x, k, b)
    }

    /// The input value under window tap `tap` of output position `pos`, 0 in the padding.
    fn tap(&self, x: &[f32], pos: usize, tap: usize) -> f64 {
        let w = &self.w;
        let (b, oy, ox) = (
            pos / (w.out_h * w.out_w),
            pos / w.out_w % w.out_h,
            pos % w.out_w,
        );
        let c = w.channels;
        let (ky, kx, ch) = (tap / (w.kernel_w * c), tap / c % w.kernel_w, tap % c);
        match w.source(oy, ox, ky, kx) {
            Some((y, xx)) => x[((b * w.height + y) * w.width + xx) * c + ch] as f64,
            None => 0.0,
        }
    }
}

fn isas_for(filters: usize) -> Vec<Isa> {
    let all = Isa::available();
    if all.is_empty() {
        eprintln!("this CPU has neither AVX-512 nor AVX2+FMA: the direct kernels do not run");
    }
    all.into_iter()
        .filter(|isa| filters.is_multiple_of(isa.lanes()))
        .collect()
}

fn check_forward(c: &Case, relu: bool, with_bias: bool) -> Result<(), TestCaseError> {
    let (x, k, b) = c.inputs();
    let w = &c.w;
    let n_out = w.out_positions() * c.filters;
    let want = conv2d_reference(w, &x, &k, c.filters);
    let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
    let bound = conv2d_reference(w, &abs(&x), &abs(&k), c.filters);
    for isa in isas_for(c.filters) {
        let mut out = vec![f32::NAN; n_out];
        let bias = with_bias.then_some(&b[..]);
        direct_conv::forward(isa, w, &x, &k, bias, relu, c.filters, &mut out);
        for (i, &got) in out.iter().enumerate() {
            let f = i % c.filters;
            let mut r = want[i] as f64 + if with_bias { b[f] as f64 } else { 0.0 };
            if relu && r < 0.0 {
                // As `Tensor::relu`: NaN and -0.0 pass through.
                r = 0.0;
            }
            let tol = dot_bound(w.patch_len() + 1, bound[i] as f64 + b[f].abs() as f64);
            prop_assert!(
                (got as f64 - r).abs() <= tol,
                "{:?} out[{}] = {} but the reference is {}",
                isa,
                i,
                got,
                r
            );
        }
    }
    Ok(())
}

fn check_kernel_grad(c: &Case, masked: bool) -> Result<(), TestCaseError> {
    let (x, _, _) = c.inputs();
    let w = &c.w;
    let (patch, f) = (w.patch_len(), c.filters);
    let n_out = w.out_positions() * f;
    let g = random_vec(n_out, c.seed ^ 11);
    // A relu output: zero about half the time, as after a real relu.
    let y: Vec<f32> = random_vec(n_out, c.seed ^ 13)
        .iter()
        .map(|v| v.max(0.0))
        .collect();
    let gm = |i: usize| {
        if masked && y[i] <= 0.0 {
            0.0
        } else {
            g[i] as f64
        }
    };
    let mut want_k = vec![(0.0f64, 0.0f64); patch * f];
    let mut want_b = vec![(0.0f64, 0.0f64); f];
    for pos in 0..w.out_positions() {
        for j in 0..f {
            let d = gm(pos * f + j);
            want_b[j].0 += d;
            want_b[j].1 += d.abs();
            for t in 0..patch {
                let v = c.tap(&x, pos, t);
                want_k[t * f + j].0 += v * d;
                want_k[t * f + j].1 += (v * d).abs();
            }
        }
    }
    for isa in isas_for(f) {
        let mut gk = vec![f32::NAN; patch * f];
        let mut gb = vec![f32::NAN; f];
        let mask = masked.then_some(&y[..]);
        direct_conv::kernel_grad(isa, w, &x, &g, mask, f, &mut gk, Some(&mut gb));
        let terms = w.out_positions();
        for (i, (&got, &(r, abs))) in gk.iter().zip(&want_k).enumerate() {
            prop_assert!(
                (got as f64 - r).abs() <= dot_bound(terms, abs),
                "{:?} grad_kernel[{}] = {} but the reference is {}",
                isa,
                i,
                got,
                r
            );
        }
        for (i, (&got, &(r, abs))) in gb.iter().zip(&want_b).enumerate() {
            prop_assert!(
                (got as f64 - r).abs() <= dot_bound(terms, abs),
                "{:?} grad_bias[{}] = {} but the reference is {}",
                isa,
                i,
                got,
                r
            );
        }
        // Without a bias gradient to write, the kernel gradient is the same.
        let mut gk2 = vec![f32::NAN; patch * f];
        direct_conv::kernel_grad(isa, w, &x, &g, mask, f, &mut gk2, None);
        prop_assert_eq!(&gk, &gk2);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn forward_matches_the_reference(c in case(), relu in any::<bool>(), bias in any::<bool>()) {
        check_forward(&c, relu, bias)?;
    }

    #[test]
    fn kernel_and_bias_gradients_match_the_reference(c in case(), masked in any::<bool>()) {
        check_kernel_grad(&c, masked)?;
    }
}

#[test]
fn the_first_layer_of_the_reference_cnn_runs_direct_where_the_cpu_allows() {
    let w = Window {
        batch: 32,
        height: 32,
        width: 32,
        channels: 3,
        kernel_h: 3,
        kernel_w: 3,
        stride_h: 1,
        stride_w: 1,
        out_h: 30,
        out_w: 30,
        pad_top: 0,
        pad_left: 0,
    };
    assert_eq!(direct_conv::plan(&w, 32), Isa::best());
    // The second layer's 288 taps go through im2col and the GEMM.
    let second = Window {
        channels: 32,
        height: 15,
        width: 15,
        out_h: 13,
        out_w: 13,
        ..w
    };
    assert_eq!(direct_conv::plan(&second, 64), None);
    // A filter count that is not a whole number of vectors does too.
    assert_eq!(direct_conv::plan(&w, 10), None);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let Some(isa) = Isa::best() else {
        eprintln!("no direct-kernel instruction set on this CPU");
        return;
    };
    let w = Window {
        batch: 6,
        height: 17,
        width: 19,
        channels: 3,
        kernel_h: 3,
        kernel_w: 3,
        stride_h: 1,
        stride_w: 2,
        out_h: 17,
        out_w: 10,
        pad_top: 1,
        pad_left: 1,
    };
    let f = 32;
    let x = random_vec(w.batch * w.height * w.width * 3, 1);
    let k = random_vec(27 * f, 2);
    let g = random_vec(w.out_positions() * f, 3);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut out = vec![0.0; w.out_positions() * f];
            direct_conv::forward(isa, &w, &x, &k, None, true, f, &mut out);
            let (mut gk, mut gb) = (vec![0.0; 27 * f], vec![0.0; f]);
            direct_conv::kernel_grad(isa, &w, &x, &g, Some(&out), f, &mut gk, Some(&mut gb));
            (out, gk, gb)
        })
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let (one, two) = (run(1), run(2));
    assert_eq!(bits(&one.0), bits(&two.0));
    assert_eq!(bits(&one.1), bits(&two.1));
    assert_eq!(bits(&one.2), bits(&two.2));
}

#[test]
fn inconsistent_or_overflowing_windows_are_not_supported() {
    let w = rgb_5x5();
    for isa in Isa::available() {
        assert!(direct_conv::supports(&w, 16, isa));
        let bad = [
            Window { out_h: 0, ..w },
            Window { out_w: 0, ..w },
            Window { channels: 0, ..w },
            Window { stride_w: 0, ..w },
            Window { pad_left: 6, ..w },
            // Sizes whose products wrap around `usize`.
            Window {
                height: 1 << 62,
                width: 4,
                ..w
            },
            Window {
                batch: usize::MAX / 2,
                ..w
            },
        ];
        for b in bad {
            assert!(!direct_conv::supports(&b, 16, isa), "{b:?}");
        }
    }
}

/// NaN and -0.0 come out of the fused relu as they do out of `Tensor::relu`, on every
/// instruction set: the relu is `if v < 0 { 0 } else { v }`.
#[test]
fn the_fused_relu_passes_nan_and_negative_zero_through() {
    let w = rgb_5x5();
    let f = 16;
    let mut x = vec![0.0f32; 75];
    x[3 * (2 * 5 + 2)] = f32::NAN; // the centre pixel: every window holds it
    let k = vec![-1.0f32; 27 * f];
    let bias = vec![-0.0f32; f];
    for isa in Isa::available() {
        let mut out = vec![1.0; 9 * f];
        direct_conv::forward(isa, &w, &x, &k, Some(&bias), true, f, &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{isa:?}: {out:?}");
        // All zeros times -1 plus -0.0 is -0.0, which the relu keeps.
        let zeros = vec![0.0f32; 75];
        direct_conv::forward(isa, &w, &zeros, &k, Some(&bias), true, f, &mut out);
        assert!(
            out.iter().all(|v| v.to_bits() == (-0.0f32).to_bits()),
            "{isa:?}: {out:?}"
        );
    }
}

/// A valid 3x3 window over a 5x5 RGB image.
fn rgb_5x5() -> Window {
    Window {
        batch: 1,
        height: 5,
        width: 5,
        channels: 3,
        kernel_h: 3,
        kernel_w: 3,
        stride_h: 1,
        stride_w: 1,
        out_h: 3,
        out_w: 3,
        pad_top: 0,
        pad_left: 0,
    }
}
