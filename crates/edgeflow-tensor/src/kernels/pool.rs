//! Max and average pooling over `[batch, height, width, channels]` inputs.

use rayon::prelude::*;

use super::conv::Window;
use super::isa::Isa;
use crate::vectorized;

fn image_len(w: &Window) -> usize {
    w.height * w.width * w.channels
}

fn out_image_len(w: &Window) -> usize {
    w.out_h * w.out_w * w.channels
}

/// Max pooling. Writes the maxima to `out` and, for each, the index inside its image of the
/// input element that won (the first one on ties), for the backward pass. Padding never wins.
pub fn max_pool(w: &Window, input: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    out.par_chunks_mut(out_image_len(w))
        .zip(argmax.par_chunks_mut(out_image_len(w)))
        .zip(input.par_chunks(image_len(w)))
        .for_each(|((o, a), img)| {
            if is_plain_2x2(w) {
                max_pool_2x2_image(w, img, o, a)
            } else {
                max_pool_image(w, img, o, a)
            }
        });
}

/// The common case, 2x2 windows with stride 2 and no padding, has a loop of its own.
fn is_plain_2x2(w: &Window) -> bool {
    (
        w.kernel_h, w.kernel_w, w.stride_h, w.stride_w, w.pad_top, w.pad_left,
    ) == (2, 2, 2, 2, 0, 0)
        && 2 * w.out_h <= w.height
        && 2 * w.out_w <= w.width
}

vectorized! {
    /// `max_pool_image` for [`is_plain_2x2`] windows: every tap is inside the image, so the four
    /// taps are read at fixed offsets without bounds logic. Compiled for the best SIMD instruction
    /// set of the CPU, where the compare-and-select of each channel becomes vector blends.
    fn max_pool_2x2_image(w: &Window, img: &[f32], out: &mut [f32], argmax: &mut [u32]) =
        max_pool_2x2_portable;
}

/// The 2x2 loop itself, inlined into each instruction set's copy by `vectorized!`.
#[inline(always)]
fn max_pool_2x2_portable(w: &Window, img: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    let c = w.channels;
    let row = w.width * c;
    let out_row = w.out_w * c;
    for oy in 0..w.out_h {
        let top = 2 * oy * row;
        let (r0, r1) = (&img[top..top + row], &img[top + row..top + 2 * row]);
        let o = &mut out[oy * out_row..][..out_row];
        let a = &mut argmax[oy * out_row..][..out_row];
        for ox in 0..w.out_w {
            let x0 = 2 * ox * c;
            let (o, a) = (&mut o[ox * c..][..c], &mut a[ox * c..][..c]);
            let taps = [
                &r0[x0..x0 + c],
                &r0[x0 + c..x0 + 2 * c],
                &r1[x0..x0 + c],
                &r1[x0 + c..x0 + 2 * c],
            ];
            let first = (top + x0) as u32;
            let offsets = [0, c as u32, row as u32, (row + c) as u32];
            for ch in 0..c {
                let (mut m, mut at) = (taps[0][ch], first + ch as u32);
                for t in 1..4 {
                    let v = taps[t][ch];
                    // A NaN wins, so that it propagates; among equal values the earlier tap
                    // stays.
                    let wins = v > m || v.is_nan();
                    m = if wins { v } else { m };
                    at = if wins {
                        first + offsets[t] + ch as u32
                    } else {
                        at
                    };
                }
                o[ch] = m;
                a[ch] = at;
            }
        }
    }
}

/// Takes each lane of `v` (input index `src + lane`) where it beats `o`. A NaN wins, so that it
/// propagates instead of vanishing; among equal values the earlier tap stays.
#[inline]
fn blend_max(o: &mut [f32], a: &mut [u32], v: &[f32], src: usize) {
    let lanes = o
        .iter_mut()
        .zip(a.iter_mut())
        .zip(v.iter().zip(src as u32..));
    for ((o, a), (&v, i)) in lanes {
        // All ones where `v` wins; blending with masks keeps LLVM from turning the selects
        // back into conditional scalar stores.
        let mask = 0u32.wrapping_sub(u32::from((v > *o) | v.is_nan()));
        *o = f32::from_bits((v.to_bits() & mask) | (o.to_bits() & !mask));
        *a = (i & mask) | (*a & !mask);
    }
}

fn max_pool_image(w: &Window, img: &[f32], out: &mut [f32], argmax: &mut [u32]) {
    let c = w.channels;
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let base = (oy * w.out_w + ox) * c;
            let o = &mut out[base..base + c];
            let a = &mut argmax[base..base + c];
            let mut first = true;
            for ky in 0..w.kernel_h {
                for kx in 0..w.kernel_w {
                    let Some((y, x)) = w.source(oy, ox, ky, kx) else {
                        continue;
                    };
                    let src = (y * w.width + x) * c;
                    let v = &img[src..src + c];
                    if first {
                        o.copy_from_slice(v);
                        a.iter_mut().zip(src as u32..).for_each(|(a, i)| *a = i);
                        first = false;
                        continue;
                    }
                    blend_max(o, a, v, src);
                }
            }
            if first {
                // No tap inside the input; `same` padding never produces this.
                o.fill(f32::NEG_INFINITY);
                a.fill(u32::MAX);
            }
        }
    }
}

/// Gradient of max pooling: each output gradient goes to the input element that won.
/// `input_grad` is overwritten.
pub fn max_pool_backward(w: &Window, grad_out: &[f32], argmax: &[u32], input_grad: &mut [f32]) {
    input_grad
        .par_chunks_mut(image_len(w))
        .zip(grad_out.par_chunks(out_image_len(w)))
        .zip(argmax.par_chunks(out_image_len(w)))
        .for_each(|((gi, go), a)| {
            // The one-pass loop pays only where it is vectorized; compiled for the baseline
            // alone (SSE2), clearing and scattering is several times faster.
            if is_plain_2x2(w) && Isa::best().is_some() {
                return max_pool_2x2_backward_image(w, go, a, gi);
            }
            gi.fill(0.0);
            for (g, &idx) in go.iter().zip(a) {
                if idx != u32::MAX {
                    gi[idx as usize] += g;
                }
            }
        });
}

vectorized! {
    /// [`max_pool_backward`] of one image for [`is_plain_2x2`] windows, which do not overlap:
    /// each input element is written once, with its window's gradient or zero, and no separate
    /// pass clears the image first. Compiled per instruction set like [`max_pool_2x2_image`].
    fn max_pool_2x2_backward_image(w: &Window, grad: &[f32], argmax: &[u32], gi: &mut [f32]) =
        max_pool_2x2_backward_portable;
}

#[inline(always)]
fn max_pool_2x2_backward_portable(w: &Window, grad: &[f32], argmax: &[u32], gi: &mut [f32]) {
    let c = w.channels;
    let row = w.width * c;
    let out_row = w.out_w * c;
    let covered = 2 * w.out_w * c;
    for oy in 0..w.out_h {
        let top = 2 * oy * row;
        let (r0, r1) = gi[top..top + 2 * row].split_at_mut(row);
        let g = &grad[oy * out_row..][..out_row];
        let a = &argmax[oy * out_row..][..out_row];
        for ox in 0..w.out_w {
            let x0 = 2 * ox * c;
            let (g, a) = (&g[ox * c..][..c], &a[ox * c..][..c]);
            let first = (top + x0) as u32;
            let (t0, t1) = r0[x0..x0 + 2 * c].split_at_mut(c);
            let (t2, t3) = r1[x0..x0 + 2 * c].split_at_mut(c);
            let offsets = [0, c as u32, row as u32, (row + c) as u32];
            for ch in 0..c {
                let at = a[ch].wrapping_sub(first + ch as u32);
                t0[ch] = if at == offsets[0] { g[ch] } else { 0.0 };
                t1[ch] = if at == offsets[1] { g[ch] } else { 0.0 };
                t2[ch] = if at == offsets[2] { g[ch] } else { 0.0 };
                t3[ch] = if at == offsets[3] { g[ch] } else { 0.0 };
            }
        }
        // An odd width leaves a last column no window reads.
        r0[covered..].fill(0.0);
        r1[covered..].fill(0.0);
    }
    // An odd height leaves a last row.
    gi[2 * w.out_h * row..].fill(0.0);
}

/// Number of input elements (not padding) under the window at (`oy`, `ox`).
fn window_count(w: &Window, oy: usize, ox: usize) -> usize {
    (0..w.kernel_h)
        .flat_map(|ky| (0..w.kernel_w).map(move |kx| (ky, kx)))
        .filter(|&(ky, kx)| w.source(oy, ox, ky, kx).is_some())
        .count()
}

/// Average pooling; with `same` padding each window is divided by the number of real (not
/// padded) elements under it, as in TensorFlow.
pub fn avg_pool(w: &Window, input: &[f32], out: &mut [f32]) {
    out.par_chunks_mut(out_image_len(w))
        .zip(input.par_chunks(image_len(w)))
        .for_each(|(o, img)| {
            let c = w.channels;
            for oy in 0..w.out_h {
                for ox in 0..w.out_w {
                    let dst = &mut o[(oy * w.out_w + ox) * c..][..c];
                    dst.fill(0.0);
                    for ky in 0..w.kernel_h {
                        for kx in 0..w.kernel_w {
                            let Some((y, x)) = w.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            let src = &img[(y * w.width + x) * c..][..c];
                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                        }
                    }
                    let inv = 1.0 / window_count(w, oy, ox).max(1) as f32;
                    dst.iter_mut().for_each(|d| *d *= inv);
                }
            }
        });
}

/// Gradient of average pooling. `input_grad` is overwritten.
pub fn avg_pool_backward(w: &Window, grad_out: &[f32], input_grad: &mut [f32]) {
    input_grad
        .par_chunks_mut(image_len(w))
        .zip(grad_out.par_chunks(out_image_len(w)))
        .for_each(|(gi, go)| {
            let c = w.channels;
            gi.fill(0.0);
            for oy in 0..w.out_h {
                for ox in 0..w.out_w {
                    let inv = 1.0 / window_count(w, oy, ox).max(1) as f32;
                    let g = &go[(oy * w.out_w + ox) * c..][..c];
                    for ky in 0..w.kernel_h {
                        for kx in 0..w.kernel_w {
                            let Some((y, x)) = w.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            let d = &mut gi[(y * w.width + x) * c..][..c];
                            d.iter_mut().zip(g).for_each(|(d, g)| *d += g * inv);
                        }
                    }
                }
            }
        });
}
