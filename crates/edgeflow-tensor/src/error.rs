//! The error type of the tensor crate.

use crate::DType;

/// Everything that can go wrong in a tensor operation called through the public API.
///
/// Each variant names the operation at fault and carries the shapes or values the caller needs
/// to find the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// Two shapes that an operation needs to agree do not.
    #[error("{op}: shape mismatch between {lhs:?} and {rhs:?}")]
    ShapeMismatch {
        /// The operation, e.g. `add` or `matmul`.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Vec<usize>,
        /// Shape of the second operand.
        rhs: Vec<usize>,
    },
    /// An operand has a shape the operation cannot take.
    #[error("{op}: invalid shape {shape:?}: {reason}")]
    InvalidShape {
        /// The operation.
        op: &'static str,
        /// The shape at fault.
        shape: Vec<usize>,
        /// What was expected instead.
        reason: String,
    },
    /// An axis outside the tensor's rank.
    #[error("{op}: axis {axis} is out of range for a tensor of rank {rank}")]
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis asked for (negative axes count from the end).
        axis: isize,
        /// The rank of the tensor.
        rank: usize,
    },
    /// An operand has the wrong element type.
    #[error("{op}: expected dtype {expected:?}, got {actual:?}")]
    DTypeMismatch {
        /// The operation.
        op: &'static str,
        /// The dtype the operation needs.
        expected: DType,
        /// The dtype it got.
        actual: DType,
    },
    /// An index (a class label, an embedding id, a slice bound) is outside its range.
    #[error("{op}: index {index} at position {position} is out of range 0..{limit}")]
    IndexOutOfRange {
        /// The operation.
        op: &'static str,
        /// The offending value.
        index: i64,
        /// Where it sits in the index tensor (flat position).
        position: usize,
        /// The exclusive upper bound.
        limit: usize,
    },
    /// A parameter of an operation (stride, rate, pool size...) is not allowed.
    #[error("{op}: invalid argument: {reason}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The buffer handed to a constructor does not hold as many elements as the shape needs.
    #[error("{op}: {len} elements cannot fill shape {shape:?} ({expected} needed)")]
    ElementCount {
        /// The constructor.
        op: &'static str,
        /// Number of elements given.
        len: usize,
        /// The requested shape.
        shape: Vec<usize>,
        /// Number of elements the shape needs.
        expected: usize,
    },
    /// `backward` was called on something that cannot start a backward pass.
    #[error("backward: {0}")]
    Backward(String),
    /// The operation exists but not for this combination of inputs.
    #[error("{op}: unsupported: {reason}")]
    Unsupported {
        /// The operation.
        op: &'static str,
        /// Which case is not supported.
        reason: String,
    },
}

/// Result alias for tensor operations.
pub type Result<T, E = TensorError> = std::result::Result<T, E>;
