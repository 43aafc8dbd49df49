//! CPU kernels on plain slices. They know nothing of tensors' graphs or gradients.
//!
//! Every kernel here is portable Rust; the matrix product goes through the `gemm` crate, which
//! picks its SIMD code path (AVX-512, AVX2+FMA, NEON or scalar) at run time.

pub mod conv;
pub mod elementwise;
pub mod matmul;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
