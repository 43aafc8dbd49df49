//! Activation functions by their Keras names.

use edgeflow_tensor::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// An element-wise (or, for softmax, last-axis) activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Activation {
    /// Identity (Keras `"linear"` or `None`).
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Exact GELU.
    Gelu,
}

impl Activation {
    /// Applies the activation.
    ///
    /// # Errors
    /// Tensor errors of the underlying op.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            Activation::Gelu => x.gelu(),
        }
    }

    /// The Keras name.
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Gelu => "gelu",
        }
    }
}
