//! Broadcasting arithmetic between tensors, and with scalars.

use crate::autograd::record;
use crate::error::Result;
use crate::kernels::elementwise::{broadcast_map, zip_map, Strided};
use crate::shape::{broadcast_shape, broadcast_strides};
use crate::{DType, Shape, Tensor};

#[derive(Clone, Copy)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    fn name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
        }
    }
}

fn apply(op: BinOp, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let name = op.name();
    a.expect_dtype(name, DType::F32)?;
    b.expect_dtype(name, DType::F32)?;
    let shape = broadcast_shape(name, a.shape(), b.shape())?;
    let mut out = crate::buffer::take(shape.elem_count());
    let f = move |x: f32, y: f32| match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
    };
    crate::threading::install(|| {
        if a.dims() == b.dims() && a.is_contiguous() && b.is_contiguous() {
            let (x, y) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
            zip_map(x, y, &mut out, f);
        } else {
            let sa = broadcast_strides(a.shape(), a.strides(), &shape);
            let sb = broadcast_strides(b.shape(), b.strides(), &shape);
            let da = Strided {
                data: f32_storage(a),
                offset: a.offset(),
                strides: &sa,
            };
            let db = Strided {
                data: f32_storage(b),
                offset: b.offset(),
                strides: &sb,
            };
            broadcast_map(shape.dims(), da, db, &mut out, f);
        }
    });
    let out = Tensor::from_vec(out, shape)?;
    Ok(record(
        out,
        name,
        vec![a.clone(), b.clone()],
        move |inputs, g, needs| binary_backward(op, inputs, g, needs),
    ))
}

fn f32_storage(t: &Tensor) -> &[f32] {
    match t.storage() {
        crate::dtype::Storage::F32(v) => v,
        // Both operands were checked to be f32 before this is called.
        _ => unreachable!("binary operands are checked to be f32"),
    }
}

fn binary_backward(
    op: BinOp,
    inputs: &[Tensor],
    g: &Tensor,
    needs: &[bool],
) -> Result<Vec<Option<Tensor>>> {
    let (a, b) = (&inputs[0], &inputs[1]);
    let ga = match (needs[0], op) {
        (false, _) => None,
        (true, BinOp::Add | BinOp::Sub) => Some(g.clone()),
        (true, BinOp::Mul) => Some(g.mul(b)?),
        (true, BinOp::Div) => Some(g.div(b)?),
    };
    let gb = match (needs[1], op) {
        (false, _) => None,
        (true, BinOp::Add) => Some(g.clone()),
        (true, BinOp::Sub) => Some(g.neg()?),
        (true, BinOp::Mul) => Some(g.mul(a)?),
        // d(a/b)/db = -a / b^2
        (true, BinOp::Div) => Some(g.mul(a)?.div(&b.mul(b)?)?.neg()?),
    };
    Ok(vec![
        ga.map(|t| t.sum_to_shape(a.shape())).transpose()?,
        gb.map(|t| t.sum_to_shape(b.shape())).transpose()?,
    ])
}

impl Tensor {
    /// Element-wise `self + rhs` with NumPy broadcasting.
    ///
    /// # Errors
    /// A shape mismatch naming both shapes when they do not broadcast; a dtype error for non-f32.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        apply(BinOp::Add, self, rhs)
    }

    /// Element-wise `self - rhs` with broadcasting. Errors as [`Tensor::add`].
    ///
    /// # Errors
    /// As [`Tensor::add`].
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        apply(BinOp::Sub, self, rhs)
    }

    /// Element-wise `self * rhs` with broadcasting.
    ///
    /// # Errors
    /// As [`Tensor::add`].
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        apply(BinOp::Mul, self, rhs)
    }

    /// Element-wise `self / rhs` with broadcasting.
    ///
    /// # Errors
    /// As [`Tensor::add`].
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        apply(BinOp::Div, self, rhs)
    }

    /// Sums a gradient of a broadcast result back down to `shape`, the shape of the operand
    /// that was broadcast.
    ///
    /// # Errors
    /// A shape mismatch when `self` could not have come from broadcasting `shape`.
    pub fn sum_to_shape(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let extra = self.rank().checked_sub(shape.rank()).ok_or_else(|| {
            crate::TensorError::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.dims().to_vec(),
                rhs: shape.dims().to_vec(),
            }
        })?;
        let mut t = self.clone();
        for _ in 0..extra {
            t = t.sum_axis(0, false)?;
        }
        for (axis, &d) in shape.dims().iter().enumerate() {
            if d == 1 && t.dims()[axis] != 1 {
                t = t.sum_axis(axis as isize, true)?;
            }
        }
        if t.dims() != shape.dims() {
            return Err(crate::TensorError::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.dims().to_vec(),
                rhs: shape.dims().to_vec(),
            });
        }
        Ok(t)
    }
}
