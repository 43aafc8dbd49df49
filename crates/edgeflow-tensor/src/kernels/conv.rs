//! Window geometry shared by convolution and pooling, and the im2col / col2im transforms that
//! turn a channels-last convolution into one matrix product.

use rayon::prelude::*;

use crate::vectorized;

/// How a sliding window treats the border, with Keras' meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Padding {
    /// No padding: only windows that fit inside the input; `out = floor((n - k) / s) + 1`.
    #[default]
    Valid,
    /// Zero padding so that `out = ceil(n / s)`; when the total padding is odd the extra row or
    /// column goes at the bottom or right, as in TensorFlow.
    Same,
}

/// Sizes of a 2-D sliding-window operation on a `[batch, height, width, channels]` input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Batch size.
    pub batch: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Rows of zeros above the input.
    pub pad_top: usize,
    /// Columns of zeros left of the input.
    pub pad_left: usize,
}

/// Output size and leading padding of one axis, or `None` when no window fits.
pub fn axis_geometry(n: usize, k: usize, s: usize, padding: Padding) -> Option<(usize, usize)> {
    if k == 0 || s == 0 || n == 0 {
        return None;
    }
    match padding {
        Padding::Valid => (n >= k).then(|| ((n - k) / s + 1, 0)),
        Padding::Same => {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(n);
            Some((out, total / 2))
        }
    }
}

impl Window {
    /// Number of output positions over the batch.
    pub fn out_positions(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }

    /// Length of one im2col row: `kernel_h * kernel_w * channels`.
    pub fn patch_len(&self) -> usize {
        self.kernel_h * self.kernel_w * self.channels
    }

    fn in_image(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Rows and columns of the (padded) input that the windows span: `(out_h - 1) * stride_h +
    /// kernel_h` by the same across.
    pub fn span(&self) -> (usize, usize) {
        (
            (self.out_h - 1) * self.stride_h + self.kernel_h,
            (self.out_w - 1) * self.stride_w + self.kernel_w,
        )
    }

    /// Whether every window lies inside the image with no padding at all, so the input can be
    /// read in place.
    pub fn fits_without_padding(&self) -> bool {
        let (rows, cols) = self.span();
        self.pad_top == 0 && self.pad_left == 0 && rows <= self.height && cols <= self.width
    }

    /// Input row and column of window tap (`ky`, `kx`) at output (`oy`, `ox`), if inside.
    #[inline]
    pub fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride_h + ky).checked_sub(self.pad_top)?;
        let x = (ox * self.stride_w + kx).checked_sub(self.pad_left)?;
        (y < self.height && x < self.width).then_some((y, x))
    }
}

/// Unfolds every window of `input` (`[batch, height, width, channels]`) into a row of `cols`
/// (`[batch * out_h * out_w, kernel_h * kernel_w * channels]`); padded taps are zero.
pub fn im2col(w: &Window, input: &[f32], cols: &mut [f32]) {
    let patch = w.patch_len();
    let per_image = w.out_h * w.out_w * patch;
    cols[..w.batch * per_image]
        .par_chunks_mut(per_image)
        .zip(input.par_chunks(w.in_image()))
        .for_each(|(dst, img)| im2col_image(w, img, dst));
}

vectorized! {
    /// One image's windows, compiled for the best SIMD instruction set of the CPU, where the
    /// fixed-size copies of [`copy_run`] become single vector moves.
    fn im2col_image(w: &Window, img: &[f32], dst: &mut [f32]) = im2col_image_portable;
}

#[inline(always)]
fn im2col_image_portable(w: &Window, img: &[f32], dst: &mut [f32]) {
    let c = w.channels;
    let run = w.kernel_w * c;
    if run == 9 && w.fits_without_padding() {
        // A 3x3 window over three channels (the first layer of an RGB network): fixed-size
        // copies, with no bounds logic per window.
        return im2col_unpadded::<9>(w, img, dst);
    }
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = &mut dst[(oy * w.out_w + ox) * w.patch_len()..][..w.patch_len()];
            for ky in 0..w.kernel_h {
                let seg = &mut row[ky * run..(ky + 1) * run];
                let y = (oy * w.stride_h + ky).wrapping_sub(w.pad_top);
                let x0 = (ox * w.stride_w).wrapping_sub(w.pad_left);
                if y < w.height && x0 < w.width && x0 + w.kernel_w <= w.width {
                    // The whole kernel row lies inside the image: one contiguous copy.
                    let start = (y * w.width + x0) * c;
                    copy_run(seg, &img[start..start + run]);
                    continue;
                }
                for kx in 0..w.kernel_w {
                    let d = &mut seg[kx * c..(kx + 1) * c];
                    match w.source(oy, ox, ky, kx) {
                        Some((y, x)) => d.copy_from_slice(&img[(y * w.width + x) * c..][..c]),
                        None => d.fill(0.0),
                    }
                }
            }
        }
    }
}

/// [`im2col_image`] for windows that all lie inside the image, with kernel rows of `RUN`
/// floats (`kernel_w * channels`).
fn im2col_unpadded<const RUN: usize>(w: &Window, img: &[f32], dst: &mut [f32]) {
    let (c, patch) = (w.channels, w.patch_len());
    let step = w.stride_w * c;
    for (oy, rows) in dst
        .chunks_exact_mut(w.out_w * patch)
        .take(w.out_h)
        .enumerate()
    {
        for ky in 0..w.kernel_h {
            let line = &img[(oy * w.stride_h + ky) * w.width * c..][..w.width * c];
            for (ox, row) in rows.chunks_exact_mut(patch).enumerate() {
                // Both lengths are the constant RUN, so the copy compiles to a few moves.
                row[ky * RUN..][..RUN].copy_from_slice(&line[ox * step..][..RUN]);
            }
        }
    }
}

/// Copies a short run. Runs of a few floats (a 3x3 window over RGB is 9) are the common case
/// of a network's first layer, and a `memcpy` call per run would cost more than the copy.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) {
        if let (Ok(d), Ok(s)) = (<&mut [f32; N]>::try_from(dst), <&[f32; N]>::try_from(src)) {
            *d = *s;
        }
    }
    match dst.len() {
        3 => fixed::<3>(dst, src),
        6 => fixed::<6>(dst, src),
        9 => fixed::<9>(dst, src),
        12 => fixed::<12>(dst, src),
        15 => fixed::<15>(dst, src),
        // Kernel rows of 3 pixels over 16 or 32 channels, and other runs of whole vectors
        // up to 128 floats: with AVX-512 (`im2col_image` is compiled for it) a constant-size
        // copy of up to 512 bytes becomes a few vector moves instead of a `memcpy` call.
        16 => fixed::<16>(dst, src),
        32 => fixed::<32>(dst, src),
        48 => fixed::<48>(dst, src),
        64 => fixed::<64>(dst, src),
        // Larger constant copies are left to `memcpy` again: halves stay inline.
        96 => {
            fixed::<48>(&mut dst[..48], &src[..48]);
            fixed::<48>(&mut dst[48..], &src[48..]);
        }
        128 => {
            fixed::<64>(&mut dst[..64], &src[..64]);
            fixed::<64>(&mut dst[64..], &src[64..]);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// The adjoint of [`im2col`]: adds every row of `cols` back onto the input positions it was
/// read from. `input_grad` is overwritten.
pub fn col2im(w: &Window, cols: &[f32], input_grad: &mut [f32]) {
    let per_image = w.out_h * w.out_w * w.patch_len();
    input_grad[..w.batch * w.in_image()]
        .par_chunks_mut(w.in_image())
        .zip(cols.par_chunks(per_image))
        .for_each(|(img, src)| col2im_image(w, src, img));
}

vectorized! {
    /// One image of [`col2im`], compiled for the best SIMD instruction set of the CPU.
    fn col2im_image(w: &Window, src: &[f32], img: &mut [f32]) = col2im_image_portable;
}

#[inline(always)]
fn col2im_image_portable(w: &Window, src: &[f32], img: &mut [f32]) {
    img.fill(0.0);
    let c = w.channels;
    for oy in 0..w.out_h {
        for ox in 0..w.out_w {
            let row = &src[(oy * w.out_w + ox) * w.patch_len()..][..w.patch_len()];
            for ky in 0..w.kernel_h {
                for kx in 0..w.kernel_w {
                    if let Some((y, x)) = w.source(oy, ox, ky, kx) {
                        let s = &row[(ky * w.kernel_w + kx) * c..][..c];
                        let d = &mut img[(y * w.width + x) * c..][..c];
                        d.iter_mut().zip(s).for_each(|(d, s)| *d += s);
                    }
                }
            }
        }
    }
}

/// Direct convolution, one output at a time: the reference the fast path is tested against.
/// `kernel` is `[kernel_h, kernel_w, channels, filters]`; `out` is `[batch, out_h, out_w,
/// filters]`.
pub fn conv2d_reference(w: &Window, input: &[f32], kernel: &[f32], filters: usize) -> Vec<f32> {
    let mut out = vec![0.0; w.out_positions() * filters];
    for b in 0..w.batch {
        for oy in 0..w.out_h {
            for ox in 0..w.out_w {
                for f in 0..filters {
                    let mut acc = 0.0f64;
                    for ky in 0..w.kernel_h {
                        for kx in 0..w.kernel_w {
                            let Some((y, x)) = w.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            for ch in 0..w.channels {
                                let i = ((b * w.height + y) * w.width + x) * w.channels + ch;
                                let k = ((ky * w.kernel_w + kx) * w.channels + ch) * filters + f;
                                acc += input[i] as f64 * kernel[k] as f64;
                            }
                        }
                    }
                    out[((b * w.out_h + oy) * w.out_w + ox) * filters + f] = acc as f32;
                }
            }
        }
    }
    out
}
