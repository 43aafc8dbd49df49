//! Operations on tensors: each checks its operands, calls a kernel and records how to
//! differentiate itself.

mod binary;
mod conv;
mod matmul;
mod nn;
mod recurrent;
mod reduce;
mod shape_ops;
mod unary;

pub use conv::Conv2dOptions;
