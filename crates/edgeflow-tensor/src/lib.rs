//! `edgeflow-tensor` owns the `Tensor` type, its shapes and dtypes, the CPU kernels that compute
//! on it, the thread pool they run on and reverse-mode automatic differentiation.
//!
//! It knows nothing of layers, files or datasets: those live in `edgeflow-nn` and
//! `edgeflow-data`.
//!
//! ```
//! use edgeflow_tensor::Tensor;
//!
//! let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2])?.with_requires_grad(true);
//! let x = Tensor::from_vec(vec![1.0f32, 1.0], [1, 2])?;
//! let loss = x.matmul(&w)?.sum_all()?;
//! let grads = loss.backward()?;
//! assert_eq!(grads.get(&w).unwrap().to_vec_f32()?, vec![1.0, 1.0, 1.0, 1.0]);
//! # Ok::<(), edgeflow_tensor::TensorError>(())
//! ```
#![warn(missing_docs)]

mod autograd;
mod buffer;
mod dtype;
mod error;
pub mod kernels;
mod ops;
#[cfg(feature = "profile")]
pub mod profile;
mod rng;
mod shape;
mod tensor;
pub mod threading;

pub use autograd::{is_grad_enabled, no_grad, Gradients};
pub use dtype::{DType, Element};
pub use error::{Result, TensorError};
pub use kernels::conv::Padding;
pub use ops::Conv2dOptions;
pub use rng::Rng;
pub use shape::{broadcast_shape, Shape};
pub use tensor::{Tensor, TensorId};
