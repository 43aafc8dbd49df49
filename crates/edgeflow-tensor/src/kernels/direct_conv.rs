//! Direct convolution for windows with few taps, such as a network's first layer on RGB or
//! grey images.
//!
//! A 3x3 window over three channels has 27 taps. Unfolded into an im2col matrix that is the
//! inner dimension of the product, too short for a GEMM library to reach its speed, and the
//! unfolded copy is nine times the size of the image. The kernels here read the windows
//! straight from the image instead and keep a tile of outputs in SIMD registers: the forward
//! pass a few output pixels by a few filter vectors, the kernel gradient a few taps by a few
//! filter vectors.
//!
//! The code is explicit SIMD, chosen once per process from what the CPU has (AVX-512, or
//! AVX2 with FMA). Where neither is present, [`plan`] answers `None` and the caller uses the
//! im2col path.
//!
//! Results do not depend on the thread count: each output's sum runs over the taps in a fixed
//! order, and the kernel gradient adds one partial sum per image, in image order.

use std::borrow::Cow;

use rayon::prelude::*;

use super::conv::Window;
pub use super::isa::Isa;

/// Windows with more taps than this (`kernel_h * kernel_w * channels`) go through im2col and
/// the GEMM, which is faster once the inner dimension is long. Measured: the reference CNN's
/// first layer (27 taps) runs faster here, its second (288 taps) 1.5 to 2 times slower; the
/// bound between the two is a round guess, not tuned.
pub const MAX_TAPS: usize = 64;

/// Whether the direct kernels compute this convolution on `isa`: few enough taps, and a
/// filter count that is a whole number of vectors.
///
/// A window whose sizes disagree with each other (no output, no channel, padding beyond the
/// windows) or whose buffer sizes overflow `usize` is not supported either: the kernels'
/// bounds rest on these sizes.
pub fn supports(w: &Window, filters: usize, isa: Isa) -> bool {
    filters > 0 && filters.is_multiple_of(isa.lanes()) && consistent(w, filters).is_some()
}

/// `Some` when the window is consistent, has at most [`MAX_TAPS`] taps, and its buffers' sizes
/// (input, padded input, output, kernel gradient with its bias row) fit in `usize`.
fn consistent(w: &Window, filters: usize) -> Option<()> {
    let positive = [
        w.batch.max(1),
        w.channels,
        w.kernel_h,
        w.kernel_w,
        w.stride_h,
        w.stride_w,
    ];
    if positive.contains(&0) || w.out_h == 0 || w.out_w == 0 {
        return None;
    }
    let rows = (w.out_h - 1)
        .checked_mul(w.stride_h)?
        .checked_add(w.kernel_h)?;
    let cols = (w.out_w - 1)
        .checked_mul(w.stride_w)?
        .checked_add(w.kernel_w)?;
    if w.pad_top > rows || w.pad_left > cols {
        return None;
    }
    let taps = w
        .kernel_h
        .checked_mul(w.kernel_w)?
        .checked_mul(w.channels)?;
    if taps > MAX_TAPS {
        return None;
    }
    let image = |h: usize, wd: usize| {
        w.batch
            .checked_mul(h)?
            .checked_mul(wd)?
            .checked_mul(w.channels)
    };
    image(w.height, w.width)?;
    image(rows.max(w.height), cols.max(w.width))?;
    let positions = w.batch.checked_mul(w.out_h)?.checked_mul(w.out_w)?;
    positions.checked_mul(filters)?;
    (taps + 1).checked_mul(filters)?;
    Some(())
}

/// The instruction set to run this convolution with, or `None` for the im2col path: the best
/// one ([`Isa::best`]) that takes this filter count (8 or 24 filters need AVX2's narrower
/// vectors on an AVX-512 CPU).
pub fn plan(w: &Window, filters: usize) -> Option<Isa> {
    let best = Isa::best()?;
    Isa::available()
        .into_iter()
        .filter(|&isa| isa <= best)
        .find(|&isa| supports(w, filters, isa))
}

/// `out = input ⋆ kernel + bias`, then `max(0, ·)` when `relu`, on `isa`.
///
/// `input` is `[batch, height, width, channels]`, `kernel` `[kernel_h, kernel_w, channels,
/// filters]`, `bias` `[filters]` and `out` `[batch, out_h, out_w, filters]`.
///
/// # Panics
/// When [`supports`] is false for `isa`, `isa` is not in [`Isa::available`], or a slice is
/// shorter than its shape.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    isa: Isa,
    w: &Window,
    input: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    filters: usize,
    out: &mut [f32],
) {
    check(isa, w, filters, input, kernel);
    assert!(
        out.len() >= w.out_positions() * filters,
        "direct conv: output too small"
    );
    assert!(
        bias.is_none_or(|b| b.len() >= filters),
        "direct conv: bias too small"
    );
    let (g, image) = unpadded(w, filters, input);
    let row = w.out_w * filters;
    out[..w.out_positions() * filters]
        .par_chunks_mut(row)
        .with_min_len(4)
        .enumerate()
        .for_each(|(r, dst)| {
            let (b, oy) = (r / w.out_h, r % w.out_h);
            let img = &image[b * g.image_len()..][..g.image_len()];
            // SAFETY: `check` tied `isa` to this CPU and the filter count to whole vectors, and
            // the asserts above and `Geometry` keep every read inside `img`, `kernel` and
            // `bias` and every write inside `dst`.
            unsafe {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => x86::forward_row_avx512(&g, img, kernel, bias, relu, oy, dst),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => x86::forward_row_avx2(&g, img, kernel, bias, relu, oy, dst),
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!("checked by `check`"),
                }
            }
        });
}

/// The kernel's gradient `grad_kernel[tap][f] = Σ_pos patch(pos)[tap] · g'[pos][f]`, and, when
/// `grad_bias` is given, `grad_bias[f] = Σ_pos g'[pos][f]`, where `g'` is the output gradient
/// `grad_out`, zeroed where `relu_out` (the forward output after a fused relu) is not positive.
/// Both outputs are overwritten.
///
/// # Panics
/// As [`forward`].
#[allow(clippy::too_many_arguments)]
pub fn kernel_grad(
    isa: Isa,
    w: &Window,
    input: &[f32],
    grad_out: &[f32],
    relu_out: Option<&[f32]>,
    filters: usize,
    grad_kernel: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    check(isa, w, filters, input, grad_kernel);
    let n_out = w.out_positions() * filters;
    assert!(grad_out.len() >= n_out, "direct conv: gradient too small");
    assert!(
        relu_out.is_none_or(|y| y.len() >= n_out),
        "direct conv: output too small"
    );
    let patch = w.patch_len();
    assert!(
        grad_kernel.len() >= patch * filters,
        "direct conv: kernel gradient too small"
    );
    let (g, image) = unpadded(w, filters, input);
    let per_out = w.out_h * w.out_w * filters;
    // One partial sum per image (kernel gradient, then bias gradient), added in image order.
    let partials: Vec<Vec<f32>> = (0..w.batch)
        .into_par_iter()
        .map(|b| {
            let mut part = vec![0.0f32; (patch + 1) * filters];
            let img = &image[b * g.image_len()..][..g.image_len()];
            let gout = &grad_out[b * per_out..][..per_out];
            let mask = relu_out.map(|y| &y[b * per_out..][..per_out]);
            // SAFETY: as in `forward`; `part` holds `patch + 1` rows of `filters`.
            unsafe {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => x86::kernel_grad_image_avx512(&g, img, gout, mask, &mut part),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => x86::kernel_grad_image_avx2(&g, img, gout, mask, &mut part),
                    #[cfg(not(target_arch = "x86_64"))]
                    _ => unreachable!("checked by `check`"),
                }
            }
            part
        })
        .collect();
    let gk = &mut grad_kernel[..patch * filters];
    gk.fill(0.0);
    let mut gb = vec![0.0f32; filters];
    for part in &partials {
        let (k, b) = part.split_at(patch * filters);
        gk.iter_mut().zip(k).for_each(|(d, s)| *d += s);
        gb.iter_mut().zip(b).for_each(|(d, s)| *d += s);
    }
    if let Some(dst) = grad_bias {
        dst[..filters].copy_from_slice(&gb);
    }
}

fn check(isa: Isa, w: &Window, filters: usize, input: &[f32], kernel: &[f32]) {
    assert!(
        supports(w, filters, isa),
        "direct conv: unsupported geometry"
    );
    assert!(
        Isa::available().contains(&isa),
        "direct conv: {isa:?} not on this CPU"
    );
    // `supports` found these products free of overflow.
    let in_len = w.batch * w.height * w.width * w.channels;
    assert!(input.len() >= in_len, "direct conv: input too small");
    assert!(
        kernel.len() >= w.patch_len() * filters,
        "direct conv: kernel too small"
    );
}

/// The sizes the SIMD loops work with: an input without padding, in which every window of
/// the output lies inside the image.
struct Geometry {
    /// Floats per input row (`width * channels`).
    pitch: usize,
    /// Input rows per image.
    rows: usize,
    /// Floats between the windows of neighbouring output pixels (`stride_w * channels`).
    step: usize,
    /// Input rows between neighbouring output rows.
    stride_h: usize,
    /// Floats in one kernel row of a window (`kernel_w * channels`), contiguous in the input.
    run: usize,
    kernel_h: usize,
    out_h: usize,
    out_w: usize,
    filters: usize,
}

impl Geometry {
    fn image_len(&self) -> usize {
        self.rows * self.pitch
    }
}

/// The input as the SIMD loops read it: `input` itself when every window lies inside the
/// image, otherwise a copy with the padding's zeros written out.
fn unpadded<'a>(w: &Window, filters: usize, input: &'a [f32]) -> (Geometry, Cow<'a, [f32]>) {
    let c = w.channels;
    let (rows, cols, data) = if w.fits_without_padding() {
        (w.height, w.width, Cow::Borrowed(input))
    } else {
        let (rows, cols) = w.span();
        let image = rows * cols * c;
        let mut padded = vec![0.0f32; w.batch * image];
        padded
            .par_chunks_mut(image)
            .zip(input.par_chunks(w.height * w.width * c))
            .for_each(|(dst, src)| {
                for y in 0..w.height {
                    let py = y + w.pad_top;
                    if py >= rows {
                        break;
                    }
                    let n = w.width.min(cols - w.pad_left);
                    dst[(py * cols + w.pad_left) * c..][..n * c]
                        .copy_from_slice(&src[y * w.width * c..][..n * c]);
                }
            });
        (rows, cols, Cow::Owned(padded))
    };
    let g = Geometry {
        pitch: cols * c,
        rows,
        step: w.stride_w * c,
        stride_h: w.stride_h,
        run: w.kernel_w * c,
        kernel_h: w.kernel_h,
        out_h: w.out_h,
        out_w: w.out_w,
        filters,
    };
    (g, data)
}

/// The operations the tiles need from a SIMD vector of floats.
///
/// # Safety
/// Every method needs the vector's instruction set on the running CPU; loads and stores need
/// `LANES` valid floats at the pointer.
trait Vector: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn splat(p: *const f32) -> Self;
    /// `self + a * b`, fused.
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn relu(self) -> Self;
    /// `self` where `y > 0`, else 0.
    unsafe fn where_positive(self, y: Self) -> Self;
    unsafe fn store(self, p: *mut f32);
}

/// Output pixels `ox0..ox0 + P` of output row `oy`, filters `f0..f0 + NV * LANES`.
///
/// # Safety
/// As [`Vector`]; the pixels, filters and their windows lie inside the slices.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tile<V: Vector, const P: usize, const NV: usize>(
    g: &Geometry,
    img: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    oy: usize,
    ox0: usize,
    f0: usize,
    dst: &mut [f32],
) {
    let f = g.filters;
    let mut acc = [[V::zero(); NV]; P];
    if let Some(b) = bias {
        let bv: [V; NV] = std::array::from_fn(|v| V::load(b.as_ptr().add(f0 + v * V::LANES)));
        acc.iter_mut().for_each(|a| *a = bv);
    }
    let src0 = img.as_ptr().add(oy * g.stride_h * g.pitch + ox0 * g.step);
    for ky in 0..g.kernel_h {
        let src = src0.add(ky * g.pitch);
        let k = kernel.as_ptr().add(ky * g.run * f + f0);
        for t in 0..g.run {
            let kv: [V; NV] = std::array::from_fn(|v| V::load(k.add(t * f + v * V::LANES)));
            for (p, a) in acc.iter_mut().enumerate() {
                let x = V::splat(src.add(p * g.step + t));
                for v in 0..NV {
                    a[v] = a[v].mul_add(x, kv[v]);
                }
            }
        }
    }
    let out = dst.as_mut_ptr().add(ox0 * f + f0);
    for (p, a) in acc.iter().enumerate() {
        for (v, &val) in a.iter().enumerate() {
            let val = if relu { val.relu() } else { val };
            val.store(out.add(p * f + v * V::LANES));
        }
    }
}

/// One output row, in tiles of `P` pixels by `NV` vectors of filters. The last tile of a row
/// overlaps the one before it rather than running short: it recomputes a few pixels with
/// the same result.
///
/// # Safety
/// As [`forward_tile`], for the whole row; `g.filters` is a multiple of `NV * LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_row<V: Vector, const P: usize, const NV: usize>(
    g: &Geometry,
    img: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    oy: usize,
    dst: &mut [f32],
) {
    for f0 in (0..g.filters).step_by(NV * V::LANES) {
        if g.out_w < P {
            for ox in 0..g.out_w {
                forward_tile::<V, 1, NV>(g, img, kernel, bias, relu, oy, ox, f0, dst);
            }
            continue;
        }
        let mut ox = 0;
        while ox < g.out_w {
            let start = ox.min(g.out_w - P);
            forward_tile::<V, P, NV>(g, img, kernel, bias, relu, oy, start, f0, dst);
            ox += P;
        }
    }
}

/// The kernel gradient of taps `t0..t0 + T` of kernel row `ky` and filters `f0..f0 + NV *
/// LANES` over every output pixel of one image, written to `part`; with `bias`, also the
/// filters' bias gradient (row `patch` of `part`).
///
/// # Safety
/// As [`Vector`]; the taps and filters lie inside the window and the filter count.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn grad_tile<V: Vector, const T: usize, const NV: usize>(
    g: &Geometry,
    img: &[f32],
    grad: &[f32],
    mask: Option<&[f32]>,
    ky: usize,
    t0: usize,
    f0: usize,
    bias: bool,
    part: &mut [f32],
) {
    let f = g.filters;
    let mut acc = [[V::zero(); NV]; T];
    let mut bacc = [V::zero(); NV];
    for oy in 0..g.out_h {
        let src_row = img.as_ptr().add((oy * g.stride_h + ky) * g.pitch + t0);
        let pos0 = oy * g.out_w * f + f0;
        for ox in 0..g.out_w {
            let at = pos0 + ox * f;
            let gv: [V; NV] = std::array::from_fn(|v| {
                let d = V::load(grad.as_ptr().add(at + v * V::LANES));
                match mask {
                    Some(m) => d.where_positive(V::load(m.as_ptr().add(at + v * V::LANES))),
                    None => d,
                }
            });
            if bias {
                for v in 0..NV {
                    bacc[v] = bacc[v].add(gv[v]);
                }
            }
            let src = src_row.add(ox * g.step);
            for (t, a) in acc.iter_mut().enumerate() {
                let x = V::splat(src.add(t));
                for v in 0..NV {
                    a[v] = a[v].mul_add(x, gv[v]);
                }
            }
        }
    }
    let out = part.as_mut_ptr().add((ky * g.run + t0) * f + f0);
    for (t, a) in acc.iter().enumerate() {
        for (v, val) in a.iter().enumerate() {
            val.store(out.add(t * f + v * V::LANES));
        }
    }
    if bias {
        let out = part.as_mut_ptr().add(g.kernel_h * g.run * f + f0);
        for (v, val) in bacc.iter().enumerate() {
            val.store(out.add(v * V::LANES));
        }
    }
}

/// Calls `grad_tile` with a tap count `T` of `1..=12` known at compile time.
macro_rules! grad_tile_of_width {
    ($v:ty, $nv:literal, $width:expr, ($($arg:expr),*)) => {
        match $width {
            1 => grad_tile::<$v, 1, $nv>($($arg),*),
            2 => grad_tile::<$v, 2, $nv>($($arg),*),
            3 => grad_tile::<$v, 3, $nv>($($arg),*),
            4 => grad_tile::<$v, 4, $nv>($($arg),*),
            5 => grad_tile::<$v, 5, $nv>($($arg),*),
            6 => grad_tile::<$v, 6, $nv>($($arg),*),
            7 => grad_tile::<$v, 7, $nv>($($arg),*),
            8 => grad_tile::<$v, 8, $nv>($($arg),*),
            9 => grad_tile::<$v, 9, $nv>($($arg),*),
            10 => grad_tile::<$v, 10, $nv>($($arg),*),
            11 => grad_tile::<$v, 11, $nv>($($arg),*),
            12 => grad_tile::<$v, 12, $nv>($($arg),*),
            other => unreachable!("tap tile of {other}"),
        }
    };
}

/// The kernel (and bias) gradient of one image, in tiles of at most `max_taps` taps of one
/// kernel row by `NV` vectors of filters. The bias gradient rides along the first tile of
/// each filter block.
macro_rules! kernel_grad_image {
    ($v:ty, $nv:literal, $max_taps:expr, $g:expr, $img:expr, $grad:expr, $mask:expr, $part:expr) => {{
        let g: &Geometry = $g;
        for f0 in (0..g.filters).step_by($nv * <$v as Vector>::LANES) {
            for ky in 0..g.kernel_h {
                for t0 in (0..g.run).step_by($max_taps) {
                    let width = ($max_taps).min(g.run - t0);
                    let bias = ky == 0 && t0 == 0;
                    grad_tile_of_width!(
                        $v,
                        $nv,
                        width,
                        (g, $img, $grad, $mask, ky, t0, f0, bias, $part)
                    );
                }
            }
        }
    }};
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{forward_row, grad_tile, Geometry, Vector};

    #[derive(Clone, Copy)]
    struct F32x16(__m512);

    impl Vector for F32x16 {
        const LANES: usize = 16;
        #[inline(always)]
        unsafe fn zero() -> Self {
            F32x16(_mm512_setzero_ps())
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x16(_mm512_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            F32x16(_mm512_set1_ps(*p))
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            F32x16(_mm512_fmadd_ps(a.0, b.0, self.0))
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            F32x16(_mm512_add_ps(self.0, b.0))
        }
        #[inline(always)]
        unsafe fn relu(self) -> Self {
            // Zero first: `max` returns its second operand for a NaN or two zeros, so NaN
            // and -0.0 pass through as they do in `if v < 0 { 0 } else { v }`.
            F32x16(_mm512_max_ps(_mm512_setzero_ps(), self.0))
        }
        #[inline(always)]
        unsafe fn where_positive(self, y: Self) -> Self {
            let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(y.0, _mm512_setzero_ps());
            F32x16(_mm512_maskz_mov_ps(m, self.0))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm512_storeu_ps(p, self.0)
        }
    }

    #[derive(Clone, Copy)]
    struct F32x8(__m256);

    impl Vector for F32x8 {
        const LANES: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> Self {
            F32x8(_mm256_setzero_ps())
        }
        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            F32x8(_mm256_loadu_ps(p))
        }
        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            F32x8(_mm256_broadcast_ss(&*p))
        }
        #[inline(always)]
        unsafe fn mul_add(self, a: Self, b: Self) -> Self {
            F32x8(_mm256_fmadd_ps(a.0, b.0, self.0))
        }
        #[inline(always)]
        unsafe fn add(self, b: Self) -> Self {
            F32x8(_mm256_add_ps(self.0, b.0))
        }
        #[inline(always)]
        unsafe fn relu(self) -> Self {
            // Zero first, as for AVX-512.
            F32x8(_mm256_max_ps(_mm256_setzero_ps(), self.0))
        }
        #[inline(always)]
        unsafe fn where_positive(self, y: Self) -> Self {
            let m = _mm256_cmp_ps::<_CMP_GT_OQ>(y.0, _mm256_setzero_ps());
            F32x8(_mm256_and_ps(self.0, m))
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            _mm256_storeu_ps(p, self.0)
        }
    }

    /// The two entry points of one instruction set: `$forward` runs one output row, `$grad`
    /// one image's kernel gradient. Two vectors of filters per tile when the filter count
    /// allows, else one, with the tile sizes given.
    ///
    /// Register budgets: AVX-512 has 32 vector registers, AVX2 16. A forward tile holds P x NV
    /// accumulators, NV kernel vectors and one broadcast; a gradient tile T x NV accumulators,
    /// NV gradient vectors, NV bias sums and one broadcast.
    macro_rules! entry_points {
        ($feature:literal, $v:ty, $forward:ident, $grad:ident,
         forward tiles ($p2:literal, $p1:literal), gradient taps ($t2:literal, $t1:literal)) => {
            /// # Safety
            #[doc = concat!("`", $feature, "` on this CPU; the slices as [`super::forward_row`] needs them.")]
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $forward(
                g: &Geometry,
                img: &[f32],
                kernel: &[f32],
                bias: Option<&[f32]>,
                relu: bool,
                oy: usize,
                dst: &mut [f32],
            ) {
                if g.filters.is_multiple_of(2 * <$v as Vector>::LANES) {
                    forward_row::<$v, $p2, 2>(g, img, kernel, bias, relu, oy, dst)
                } else {
                    forward_row::<$v, $p1, 1>(g, img, kernel, bias, relu, oy, dst)
                }
            }

            /// # Safety
            #[doc = concat!("`", $feature, "` on this CPU; `part` holds `patch + 1` rows of the filter count.")]
            #[target_feature(enable = $feature)]
            pub(super) unsafe fn $grad(
                g: &Geometry,
                img: &[f32],
                grad: &[f32],
                mask: Option<&[f32]>,
                part: &mut [f32],
            ) {
                if g.filters.is_multiple_of(2 * <$v as Vector>::LANES) {
                    kernel_grad_image!($v, 2, $t2, g, img, grad, mask, part)
                } else {
                    kernel_grad_image!($v, 1, $t1, g, img, grad, mask, part)
                }
            }
        };
    }

    entry_points!("avx512f", F32x16, forward_row_avx512, kernel_grad_image_avx512,
        forward tiles (12, 16), gradient taps (12, 12));
    entry_points!("avx2,fma", F32x8, forward_row_avx2, kernel_grad_image_avx2,
        forward tiles (6, 8), gradient taps (5, 12));
}
