//! 2-D convolution and pooling on channels-last (`[batch, height, width, channels]`) input.

use std::sync::Arc;

use crate::autograd::record;
use crate::buffer::Scratch;
use crate::error::{Result, TensorError};
use crate::kernels::conv::{axis_geometry, col2im, im2col, Padding, Window};
use crate::kernels::direct_conv::{self, Isa};
use crate::kernels::matmul::{sgemm, MatRef};
use crate::kernels::pool;
use crate::kernels::reduce::column_sums;
use crate::{DType, Tensor};

/// Stride and padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// `(vertical, horizontal)` step between windows.
    pub strides: (usize, usize),
    /// Border handling.
    pub padding: Padding,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            strides: (1, 1),
            padding: Padding::Valid,
        }
    }
}

fn window(op: &'static str, input: &Tensor, k: (usize, usize), o: Conv2dOptions) -> Result<Window> {
    let &[batch, height, width, channels] = input.dims() else {
        return Err(TensorError::InvalidShape {
            op,
            shape: input.dims().to_vec(),
            reason: "expected [batch, height, width, channels]".into(),
        });
    };
    if channels == 0 {
        // The kernels split their work per image and per output pixel, both empty here.
        return Err(TensorError::InvalidShape {
            op,
            shape: input.dims().to_vec(),
            reason: "expected at least one channel".into(),
        });
    }
    if o.strides.0 == 0 || o.strides.1 == 0 || k.0 == 0 || k.1 == 0 {
        return Err(TensorError::InvalidArgument {
            op,
            reason: format!("window {k:?} and strides {:?} must be positive", o.strides),
        });
    }
    let too_small = || TensorError::InvalidShape {
        op,
        shape: input.dims().to_vec(),
        reason: format!(
            "a {}x{} window does not fit with {:?} padding",
            k.0, k.1, o.padding
        ),
    };
    let (out_h, pad_top) =
        axis_geometry(height, k.0, o.strides.0, o.padding).ok_or_else(too_small)?;
    let (out_w, pad_left) =
        axis_geometry(width, k.1, o.strides.1, o.padding).ok_or_else(too_small)?;
    Ok(Window {
        batch,
        height,
        width,
        channels,
        kernel_h: k.0,
        kernel_w: k.1,
        stride_h: o.strides.0,
        stride_w: o.strides.1,
        out_h,
        out_w,
        pad_top,
        pad_left,
    })
}

/// Whether the convolution reads each input pixel exactly once in order, so the input itself
/// is its im2col matrix.
fn is_pointwise(w: &Window) -> bool {
    w.kernel_h == 1 && w.kernel_w == 1 && w.stride_h == 1 && w.stride_w == 1
}

fn check_conv_operands(input: &Tensor, kernel: &Tensor, bias: Option<&Tensor>) -> Result<usize> {
    input.expect_dtype("conv2d", DType::F32)?;
    kernel.expect_dtype("conv2d", DType::F32)?;
    let &[_, _, kc, filters] = kernel.dims() else {
        return Err(TensorError::InvalidShape {
            op: "conv2d",
            shape: kernel.dims().to_vec(),
            reason: "the kernel must be [kernel_h, kernel_w, in_channels, filters]".into(),
        });
    };
    if input.rank() == 4 && input.dims()[3] != kc {
        return Err(TensorError::ShapeMismatch {
            op: "conv2d",
            lhs: input.dims().to_vec(),
            rhs: kernel.dims().to_vec(),
        });
    }
    if let Some(b) = bias {
        b.expect_dtype("conv2d", DType::F32)?;
        if b.dims() != [filters] {
            return Err(TensorError::ShapeMismatch {
                op: "conv2d bias",
                lhs: kernel.dims().to_vec(),
                rhs: b.dims().to_vec(),
            });
        }
    }
    Ok(filters)
}

impl Tensor {
    /// 2-D convolution (cross-correlation, as in Keras) of a `[batch, height, width, channels]`
    /// input with a `[kernel_h, kernel_w, channels, filters]` kernel and optional `[filters]`
    /// bias, giving `[batch, out_h, out_w, filters]`.
    ///
    /// Runs as one matrix product over the unfolded windows (im2col), or, for windows of few
    /// taps (a first layer on RGB images) on CPUs with AVX2 or AVX-512, as a direct SIMD
    /// convolution that reads the windows in place (`kernels::direct_conv`).
    ///
    /// # Errors
    /// Shape errors naming both shapes when input, kernel and bias disagree, or when the window
    /// does not fit; an invalid-argument error for a zero stride.
    pub fn conv2d(
        &self,
        kernel: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        conv2d_impl(self, kernel, bias, opts, false)
    }

    /// `relu(conv2d(...))` in one op: the activation is applied in place on the convolution's
    /// output and folded into its backward pass, saving a pass over the largest tensors of a
    /// CNN and their memory.
    ///
    /// # Errors
    /// As [`Tensor::conv2d`].
    pub fn conv2d_relu(
        &self,
        kernel: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        conv2d_impl(self, kernel, bias, opts, true)
    }

    /// Max pooling over `[batch, height, width, channels]` with window `pool`. The gradient
    /// goes to the first maximal element of each window; padding never wins.
    ///
    /// # Errors
    /// As [`Tensor::conv2d`] for the input shape and window.
    pub fn max_pool2d(&self, pool: (usize, usize), opts: Conv2dOptions) -> Result<Tensor> {
        let w = window("max_pool2d", self, pool, opts)?;
        let input = self.f32_data("max_pool2d")?;
        let n_out = w.out_positions() * w.channels;
        let (mut out, mut argmax) = (crate::buffer::take(n_out), vec![0u32; n_out]);
        crate::threading::install(|| pool::max_pool(&w, &input, &mut out, &mut argmax));
        let out = Tensor::from_vec(out, [w.batch, w.out_h, w.out_w, w.channels])?;
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "max_pool2d",
            vec![self.clone()],
            move |_, g, _| {
                let g = g.f32_data("max_pool2d backward")?;
                let mut gi = crate::buffer::take(in_shape.elem_count());
                crate::threading::install(|| pool::max_pool_backward(&w, &g, &argmax, &mut gi));
                Ok(vec![Some(Tensor::from_vec(gi, in_shape.clone())?)])
            },
        ))
    }

    /// Average pooling; with `same` padding each window averages only the real elements.
    ///
    /// # Errors
    /// As [`Tensor::max_pool2d`].
    pub fn avg_pool2d(&self, pool: (usize, usize), opts: Conv2dOptions) -> Result<Tensor> {
        let w = window("avg_pool2d", self, pool, opts)?;
        let input = self.f32_data("avg_pool2d")?;
        let mut out = crate::buffer::take(w.out_positions() * w.channels);
        crate::threading::install(|| pool::avg_pool(&w, &input, &mut out));
        let out = Tensor::from_vec(out, [w.batch, w.out_h, w.out_w, w.channels])?;
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "avg_pool2d",
            vec![self.clone()],
            move |_, g, _| {
                let g = g.f32_data("avg_pool2d backward")?;
                let mut gi = crate::buffer::take(in_shape.elem_count());
                crate::threading::install(|| pool::avg_pool_backward(&w, &g, &mut gi));
                Ok(vec![Some(Tensor::from_vec(gi, in_shape.clone())?)])
            },
        ))
    }
}

/// What a convolution's backward pass keeps from its forward pass.
enum Saved {
    /// The unfolded input (im2col) the forward product read.
    Cols(Arc<Scratch>),
    /// Nothing: the direct kernels read the input again, on this instruction set.
    Direct(Isa),
}

fn conv2d_impl(
    input_t: &Tensor,
    kernel: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv2dOptions,
    relu: bool,
) -> Result<Tensor> {
    let filters = check_conv_operands(input_t, kernel, bias)?;
    let w = window(
        "conv2d",
        input_t,
        (kernel.dims()[0], kernel.dims()[1]),
        opts,
    )?;
    let input = input_t.f32_data("conv2d")?;
    let kmat = kernel.f32_data("conv2d")?;
    let bias_data = bias.map(|b| b.f32_data("conv2d")).transpose()?;
    let (rows, patch) = (w.out_positions(), w.patch_len());
    let mut out = crate::buffer::take(rows * filters);
    let saved = crate::threading::install(|| {
        if let Some(isa) = direct_conv::plan(&w, filters) {
            let b = bias_data.as_deref();
            direct_conv::forward(isa, &w, &input, &kmat, b, relu, filters, &mut out);
            return Saved::Direct(isa);
        }
        let cols = if is_pointwise(&w) {
            Scratch(input.to_vec())
        } else {
            let mut cols = Scratch::take(rows * patch);
            im2col(&w, &input, &mut cols);
            cols
        };
        let a = MatRef::row_major(&cols, rows, patch);
        sgemm(a, MatRef::row_major(&kmat, patch, filters), &mut out, false);
        let b = bias_data.as_deref();
        crate::kernels::elementwise::add_bias_relu(&mut out, filters, b, relu);
        Saved::Cols(Arc::new(cols))
    });
    let out = Tensor::from_vec(out, [w.batch, w.out_h, w.out_w, filters])?;
    let mut inputs = vec![input_t.clone(), kernel.clone()];
    inputs.extend(bias.cloned());
    let name = if relu { "conv2d_relu" } else { "conv2d" };
    // The output is kept (it shares the buffer, no copy) to mask the gradient of the relu.
    let relu_out = relu.then(|| out.detach());
    Ok(record(out, name, inputs, move |inputs, g, needs| {
        conv2d_backward(&w, &saved, inputs, g, relu_out.as_ref(), needs)
    }))
}

/// The gradient `g` where the relu output `y` is positive, zero elsewhere.
fn relu_mask(g: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (gd, yd) = (
        g.f32_data("conv2d_relu backward")?,
        y.f32_data("conv2d_relu backward")?,
    );
    let mut out = crate::buffer::take(gd.len());
    crate::threading::install(|| crate::kernels::elementwise::where_positive(&gd, &yd, &mut out));
    Tensor::from_vec(out, g.shape().clone())
}

/// The gradients of a convolution's input, kernel and bias (those `needs` asks for) from the
/// output gradient `g`; `relu_out` is the output of a fused relu, whose gradient is applied
/// first.
fn conv2d_backward(
    w: &Window,
    saved: &Saved,
    inputs: &[Tensor],
    g: &Tensor,
    relu_out: Option<&Tensor>,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let kernel = &inputs[1];
    let filters = kernel.dims()[3];
    let (rows, patch) = (w.out_positions(), w.patch_len());
    let has_bias = inputs.len() == 3;
    // The direct kernel-gradient applies the relu's gradient itself (and sums the bias
    // gradient); everything else reads the masked gradient.
    let direct_grads = matches!(saved, Saved::Direct(_)) && needs[1];
    let needs_masked = needs[0] || (!direct_grads && (needs[1] || has_bias && needs[2]));
    let masked = match relu_out {
        Some(y) if needs_masked => Some(relu_mask(g, y)?),
        _ => None,
    };
    let gm = masked.as_ref().unwrap_or(g).f32_data("conv2d backward")?;
    let gmat = MatRef::row_major(&gm, rows, filters);
    crate::threading::install(|| {
        let g_input = if needs[0] {
            let kmat = kernel.f32_data("conv2d backward")?;
            let mut dcols = Scratch::take(rows * patch);
            sgemm(
                gmat,
                MatRef::row_major(&kmat, patch, filters).t(),
                &mut dcols,
                false,
            );
            let gi = if is_pointwise(w) {
                std::mem::take(&mut dcols.0)
            } else {
                let mut gi = crate::buffer::take(inputs[0].elem_count());
                col2im(w, &dcols, &mut gi);
                gi
            };
            Some(Tensor::from_vec(gi, inputs[0].shape().clone())?)
        } else {
            None
        };
        let mut g_bias = None;
        let g_kernel = match (saved, needs[1]) {
            (_, false) => None,
            (Saved::Direct(isa), true) => {
                let x = inputs[0].f32_data("conv2d backward")?;
                let raw = g.f32_data("conv2d backward")?;
                let y = relu_out
                    .map(|y| y.f32_data("conv2d backward"))
                    .transpose()?;
                let mut gk = crate::buffer::take(patch * filters);
                let mut gb = vec![0.0f32; filters];
                let want_bias = has_bias && needs[2];
                direct_conv::kernel_grad(
                    *isa,
                    w,
                    &x,
                    &raw,
                    y.as_deref(),
                    filters,
                    &mut gk,
                    want_bias.then_some(&mut gb[..]),
                );
                if want_bias {
                    g_bias = Some(gb);
                }
                Some(Tensor::from_vec(gk, kernel.shape().clone())?)
            }
            (Saved::Cols(cols), true) => {
                let mut gk = crate::buffer::take(patch * filters);
                sgemm(
                    MatRef::row_major(cols, rows, patch).t(),
                    gmat,
                    &mut gk,
                    false,
                );
                Some(Tensor::from_vec(gk, kernel.shape().clone())?)
            }
        };
        let mut grads = vec![g_input, g_kernel];
        if has_bias {
            let gb = needs[2].then(|| {
                let sums = g_bias.unwrap_or_else(|| column_sums(&gm, rows, filters));
                Tensor::from_vec(sums, [filters])
            });
            grads.push(gb.transpose()?);
        }
        Ok(grads)
    })
}
