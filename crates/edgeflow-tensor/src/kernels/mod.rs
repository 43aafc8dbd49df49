//! CPU kernels on plain slices. They know nothing of tensors' graphs or gradients.
//!
//! The kernels are portable Rust, but for two: the matrix product goes through the `gemm`
//! crate, which picks its SIMD code path (AVX-512, AVX2+FMA, NEON or scalar) at run time, and
//! [`direct_conv`] is explicit x86-64 SIMD, also chosen at run time, with the portable im2col
//! path as its fallback.

pub mod conv;
pub mod direct_conv;
pub mod elementwise;
pub mod isa;
pub mod matmul;
pub mod pool;
pub mod recurrent;
pub mod reduce;
pub mod softmax;
