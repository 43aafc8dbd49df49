//! Shapes, strides and broadcasting rules.

use crate::error::{Result, TensorError};

/// The dimensions of a tensor, outermost first (`[batch, height, width, channels]` for images).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar).
    pub fn elem_count(&self) -> usize {
        self.0.iter().product()
    }

    /// Row-major (C order) strides of this shape, in elements.
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![1; self.0.len()];
        for i in (0..self.0.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * self.0[i + 1];
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) to an index.
    ///
    /// # Errors
    /// [`TensorError::AxisOutOfRange`] naming `op` when the axis does not exist.
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let resolved = if axis < 0 { axis + rank } else { axis };
        if resolved < 0 || resolved >= rank {
            return Err(TensorError::AxisOutOfRange {
                op,
                axis,
                rank: self.rank(),
            });
        }
        Ok(resolved as usize)
    }

    /// Splits the shape around `axis` into (product before, size of axis, product after).
    pub(crate) fn split_at_axis(&self, axis: usize) -> (usize, usize, usize) {
        let outer = self.0[..axis].iter().product();
        let inner = self.0[axis + 1..].iter().product();
        (outer, self.0[axis], inner)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

/// The shape two operands broadcast to, NumPy style (dimensions aligned from the right, a size
/// of 1 stretches).
///
/// # Errors
/// [`TensorError::ShapeMismatch`] naming `op` when a pair of dimensions differs and neither is 1.
pub fn broadcast_shape(op: &'static str, lhs: &Shape, rhs: &Shape) -> Result<Shape> {
    let rank = lhs.rank().max(rhs.rank());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let l = dim_from_right(lhs, rank - 1 - i);
        let r = dim_from_right(rhs, rank - 1 - i);
        *o = match (l, r) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(TensorError::ShapeMismatch {
                    op,
                    lhs: lhs.dims().to_vec(),
                    rhs: rhs.dims().to_vec(),
                })
            }
        };
    }
    Ok(Shape(out))
}

fn dim_from_right(shape: &Shape, k: usize) -> usize {
    if k < shape.rank() {
        shape.0[shape.rank() - 1 - k]
    } else {
        1
    }
}

/// Strides that read a tensor of `shape`/`strides` as if it had the (broadcast) shape `target`:
/// stretched dimensions get stride 0.
pub(crate) fn broadcast_strides(shape: &Shape, strides: &[usize], target: &Shape) -> Vec<usize> {
    let offset = target.rank() - shape.rank();
    (0..target.rank())
        .map(|i| {
            if i < offset || shape.0[i - offset] == 1 {
                0
            } else {
                strides[i - offset]
            }
        })
        .collect()
}
