//! Convolution and pooling layers on channels-last images.

use edgeflow_tensor::{Conv2dOptions, Padding, Rng, Tensor};
use serde::{Deserialize, Serialize};

use super::dense::yes;
use super::{config_error, glorot_uniform, ForwardCtx, Layer, LayerConfig, Pair, Param};
use crate::activation::Activation;
use crate::error::{Result, TensorContext};

/// Border handling, by its Keras name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingConfig {
    /// No padding.
    #[default]
    Valid,
    /// Zero padding to `ceil(n / stride)` outputs, extra at the bottom/right.
    Same,
}

impl From<PaddingConfig> for Padding {
    fn from(p: PaddingConfig) -> Self {
        match p {
            PaddingConfig::Valid => Padding::Valid,
            PaddingConfig::Same => Padding::Same,
        }
    }
}

fn one() -> Pair {
    Pair::One(1)
}

fn two() -> Pair {
    Pair::One(2)
}

/// `Conv2D(filters, kernel_size)` with Keras defaults: strides 1, `valid`, linear, with bias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2DConfig {
    /// Number of output channels.
    pub filters: usize,
    /// Window size.
    pub kernel_size: Pair,
    /// Step between windows (default 1).
    #[serde(default = "one")]
    pub strides: Pair,
    /// `valid` (default) or `same`.
    #[serde(default)]
    pub padding: PaddingConfig,
    /// Activation of the output (default linear).
    #[serde(default)]
    pub activation: Activation,
    /// Whether to add a bias (default true).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Conv2DConfig {
    /// `filters` outputs with a square `kernel` window and Keras defaults otherwise.
    pub fn new(filters: usize, kernel: usize) -> Self {
        Conv2DConfig {
            filters,
            kernel_size: Pair::One(kernel),
            strides: one(),
            padding: PaddingConfig::Valid,
            activation: Activation::Linear,
            use_bias: true,
            name: None,
        }
    }

    /// Sets the activation.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Sets the strides.
    pub fn strides(mut self, stride: usize) -> Self {
        self.strides = Pair::One(stride);
        self
    }

    /// Sets the padding.
    pub fn padding(mut self, padding: PaddingConfig) -> Self {
        self.padding = padding;
        self
    }
}

impl From<Conv2DConfig> for LayerConfig {
    fn from(c: Conv2DConfig) -> Self {
        LayerConfig::Conv2D(c)
    }
}

/// `MaxPooling2D` / `AveragePooling2D`: pool size 2, strides equal to the pool size, `valid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pooling2DConfig {
    /// Window size (default 2).
    #[serde(default = "two")]
    pub pool_size: Pair,
    /// Step between windows (default: the pool size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strides: Option<Pair>,
    /// `valid` (default) or `same`.
    #[serde(default)]
    pub padding: PaddingConfig,
    /// Layer name; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Pooling2DConfig {
    /// A square `size` window with strides equal to it.
    pub fn new(size: usize) -> Self {
        Pooling2DConfig {
            pool_size: Pair::One(size),
            strides: None,
            padding: PaddingConfig::Valid,
            name: None,
        }
    }

    /// As a `MaxPooling2D` layer.
    pub fn max(self) -> LayerConfig {
        LayerConfig::MaxPooling2D(self)
    }

    /// As an `AveragePooling2D` layer.
    pub fn average(self) -> LayerConfig {
        LayerConfig::AveragePooling2D(self)
    }
}

fn image_input(name: &str, input: &[usize]) -> Result<(usize, usize, usize)> {
    match *input {
        [h, w, c] => Ok((h, w, c)),
        _ => Err(config_error(
            name,
            format!("expects [height, width, channels] input, got {input:?}"),
        )),
    }
}

fn out_size(name: &str, n: usize, k: usize, s: usize, p: PaddingConfig) -> Result<usize> {
    edgeflow_tensor::kernels::conv::axis_geometry(n, k, s, p.into())
        .map(|(out, _)| out)
        .ok_or_else(|| {
            config_error(
                name,
                format!(
                    "a window of {k} with stride {s} does not fit an input of {n} ({p:?} padding)"
                ),
            )
        })
}

struct Conv2D {
    name: String,
    config: Conv2DConfig,
    params: Vec<Param>,
    output_shape: Vec<usize>,
}

pub(super) fn build_conv(
    c: &Conv2DConfig,
    name: String,
    input: &[usize],
    rng: &mut Rng,
) -> Result<Box<dyn Layer>> {
    let (h, w, ch) = image_input(&name, input)?;
    let ((kh, kw), (sh, sw)) = (c.kernel_size.hw(), c.strides.hw());
    if c.filters == 0 {
        return Err(config_error(&name, "filters must be positive"));
    }
    let output_shape = vec![
        out_size(&name, h, kh, sh, c.padding)?,
        out_size(&name, w, kw, sw, c.padding)?,
        c.filters,
    ];
    let kernel = glorot_uniform(
        &[kh, kw, ch, c.filters],
        kh * kw * ch,
        kh * kw * c.filters,
        rng,
    );
    let mut params = vec![Param::trainable("kernel", kernel)];
    if c.use_bias {
        params.push(Param::trainable("bias", Tensor::zeros([c.filters])));
    }
    Ok(Box::new(Conv2D {
        name,
        config: c.clone(),
        params,
        output_shape,
    }))
}

impl Layer for Conv2D {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        LayerConfig::Conv2D(Conv2DConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        })
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, _ctx: &mut ForwardCtx) -> Result<Tensor> {
        let opts = Conv2dOptions {
            strides: self.config.strides.hw(),
            padding: self.config.padding.into(),
        };
        let bias = self.params.get(1).map(|p| &p.value);
        let kernel = &self.params[0].value;
        if self.config.activation == Activation::Relu {
            // One fused op: the relu costs no extra pass over the output.
            return input.conv2d_relu(kernel, bias, opts).ctx(&self.name);
        }
        let y = input.conv2d(kernel, bias, opts).ctx(&self.name)?;
        self.config.activation.apply(&y).ctx(&self.name)
    }

    fn params(&self) -> Vec<&Param> {
        self.params.iter().collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.params.iter_mut().collect()
    }
}

#[derive(Clone, Copy)]
pub(super) enum PoolKind {
    Max,
    Average,
}

struct Pool2D {
    name: String,
    config: Pooling2DConfig,
    kind: PoolKind,
    output_shape: Vec<usize>,
}

impl Pool2D {
    fn options(&self) -> ((usize, usize), Conv2dOptions) {
        let pool = self.config.pool_size.hw();
        let strides = self.config.strides.map_or(pool, Pair::hw);
        (
            pool,
            Conv2dOptions {
                strides,
                padding: self.config.padding.into(),
            },
        )
    }
}

pub(super) fn build_pool(
    c: &Pooling2DConfig,
    name: String,
    input: &[usize],
    kind: PoolKind,
) -> Result<Box<dyn Layer>> {
    let (h, w, ch) = image_input(&name, input)?;
    let (ph, pw) = c.pool_size.hw();
    let (sh, sw) = c.strides.map_or((ph, pw), Pair::hw);
    let output_shape = vec![
        out_size(&name, h, ph, sh, c.padding)?,
        out_size(&name, w, pw, sw, c.padding)?,
        ch,
    ];
    Ok(Box::new(Pool2D {
        name,
        config: c.clone(),
        kind,
        output_shape,
    }))
}

impl Layer for Pool2D {
    fn name(&self) -> &str {
        &self.name
    }

    fn config(&self) -> LayerConfig {
        let c = Pooling2DConfig {
            name: Some(self.name.clone()),
            ..self.config.clone()
        };
        match self.kind {
            PoolKind::Max => LayerConfig::MaxPooling2D(c),
            PoolKind::Average => LayerConfig::AveragePooling2D(c),
        }
    }

    fn output_shape(&self) -> &[usize] {
        &self.output_shape
    }

    fn forward(&self, input: &Tensor, _ctx: &mut ForwardCtx) -> Result<Tensor> {
        let (pool, opts) = self.options();
        match self.kind {
            PoolKind::Max => input.max_pool2d(pool, opts),
            PoolKind::Average => input.avg_pool2d(pool, opts),
        }
        .ctx(&self.name)
    }
}
