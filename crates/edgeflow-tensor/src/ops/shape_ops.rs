//! Reshaping, views, concatenation and row gathers.

use crate::autograd::{record, record_part};
use crate::dtype::Storage;
use crate::error::{Result, TensorError};
use crate::shape::broadcast_strides;
use crate::tensor::gather_strided;
use crate::{DType, Shape, Tensor};

impl Tensor {
    /// The same elements in a new shape with the same element count. A view when `self` is
    /// contiguous, a copy otherwise.
    ///
    /// # Errors
    /// [`TensorError::ElementCount`] when the counts differ.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(TensorError::ElementCount {
                op: "reshape",
                len: self.elem_count(),
                shape: shape.dims().to_vec(),
                expected: shape.elem_count(),
            });
        }
        let src = self.contiguous();
        let strides = shape.contiguous_strides();
        let out = src.view(shape, strides, src.offset());
        let in_shape = self.shape().clone();
        Ok(record(out, "reshape", vec![src], move |_, g, _| {
            Ok(vec![Some(g.reshape(in_shape.clone())?)])
        }))
    }

    /// `[d0, d1, ...]` to `[d0, d1 * ...]`: what Keras' `Flatten` does to a batch.
    ///
    /// # Errors
    /// An invalid-shape error for a rank-0 tensor.
    pub fn flatten_batch(&self) -> Result<Tensor> {
        let Some((&batch, rest)) = self.dims().split_first() else {
            return Err(TensorError::InvalidShape {
                op: "flatten",
                shape: vec![],
                reason: "needs at least one dimension".into(),
            });
        };
        self.reshape([batch, rest.iter().product()])
    }

    /// A copy of `self` stretched to `shape` by broadcasting.
    ///
    /// # Errors
    /// A shape mismatch when `self` does not broadcast to `shape`.
    pub fn broadcast_to(&self, shape: &Shape) -> Result<Tensor> {
        let target = crate::shape::broadcast_shape("broadcast_to", self.shape(), shape)?;
        if &target != shape {
            return Err(TensorError::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.dims().to_vec(),
                rhs: shape.dims().to_vec(),
            });
        }
        let strides = broadcast_strides(self.shape(), self.strides(), shape);
        let data = match self.storage() {
            Storage::F32(v) => gather_strided(v, shape.dims(), &strides, self.offset()),
            _ => {
                return Err(TensorError::DTypeMismatch {
                    op: "broadcast_to",
                    expected: DType::F32,
                    actual: self.dtype(),
                })
            }
        };
        let out = Tensor::from_vec(data, shape.clone())?;
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "broadcast_to",
            vec![self.clone()],
            move |_, g, _| Ok(vec![Some(g.sum_to_shape(&in_shape)?)]),
        ))
    }

    /// Swaps two axes, as a view.
    ///
    /// # Errors
    /// An axis error when either axis is out of range.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            self.shape().axis("transpose", a)?,
            self.shape().axis("transpose", b)?,
        );
        let mut axes: Vec<usize> = (0..self.rank()).collect();
        axes.swap(a, b);
        self.permute(&axes)
    }

    /// Reorders the axes: axis `i` of the result is axis `axes[i]` of `self`. A view.
    ///
    /// # Errors
    /// An invalid-argument error when `axes` is not a permutation of `0..rank`.
    pub fn permute(&self, axes: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        let valid = axes.len() == self.rank()
            && axes
                .iter()
                .all(|&a| a < self.rank() && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(TensorError::InvalidArgument {
                op: "permute",
                reason: format!("{axes:?} is not a permutation of the {} axes", self.rank()),
            });
        }
        let dims: Vec<usize> = axes.iter().map(|&a| self.dims()[a]).collect();
        let strides: Vec<usize> = axes.iter().map(|&a| self.strides()[a]).collect();
        let out = self.view(Shape::new(dims), strides, self.offset());
        let mut inverse = vec![0; axes.len()];
        for (i, &a) in axes.iter().enumerate() {
            inverse[a] = i;
        }
        Ok(record(
            out,
            "permute",
            vec![self.clone()],
            move |_, g, _| Ok(vec![Some(g.permute(&inverse)?.contiguous())]),
        ))
    }

    /// Elements `start..start + len` along `axis`, as a view.
    ///
    /// # Errors
    /// An axis error, or an invalid-argument error when the range leaves the axis.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let ax = self.shape().axis("narrow", axis)?;
        if start + len > self.dims()[ax] {
            return Err(TensorError::InvalidArgument {
                op: "narrow",
                reason: format!(
                    "range {start}..{} is outside axis {ax} of shape {:?}",
                    start + len,
                    self.dims()
                ),
            });
        }
        let mut dims = self.dims().to_vec();
        dims[ax] = len;
        let offset = self.offset() + start * self.strides()[ax];
        let out = self.view(Shape::new(dims), self.strides().to_vec(), offset);
        let in_shape = self.shape().clone();
        let part_shape = in_shape.clone();
        Ok(record_part(
            out,
            "narrow",
            self.clone(),
            move |_, g, _| Ok(vec![Some(pad_into(g, &in_shape, ax, start)?)]),
            move |g, acc| add_part(g, &part_shape, ax, start, acc),
        ))
    }

    /// Joins tensors of equal shape but for `axis` along that axis.
    ///
    /// # Errors
    /// An invalid-argument error for an empty list, a shape mismatch naming the first pair that
    /// disagrees off the axis.
    pub fn concat(tensors: &[Tensor], axis: isize) -> Result<Tensor> {
        let first = tensors
            .first()
            .ok_or_else(|| TensorError::InvalidArgument {
                op: "concat",
                reason: "no tensors to join".into(),
            })?;
        let ax = first.shape().axis("concat", axis)?;
        for t in tensors {
            first.expect_dtype("concat", DType::F32)?;
            t.expect_dtype("concat", DType::F32)?;
            let same_rank = t.rank() == first.rank();
            if !same_rank || (0..t.rank()).any(|d| d != ax && t.dims()[d] != first.dims()[d]) {
                return Err(TensorError::ShapeMismatch {
                    op: "concat",
                    lhs: first.dims().to_vec(),
                    rhs: t.dims().to_vec(),
                });
            }
        }
        let sizes: Vec<usize> = tensors.iter().map(|t| t.dims()[ax]).collect();
        let mut dims = first.dims().to_vec();
        dims[ax] = sizes.iter().sum();
        let (outer, _, inner) = Shape::new(dims.clone()).split_at_axis(ax);
        let parts: Vec<Vec<f32>> = tensors
            .iter()
            .map(Tensor::to_vec_f32)
            .collect::<Result<_>>()?;
        let mut out = Vec::with_capacity(dims.iter().product());
        for o in 0..outer {
            for (p, &s) in parts.iter().zip(&sizes) {
                out.extend_from_slice(&p[o * s * inner..(o + 1) * s * inner]);
            }
        }
        let out = Tensor::from_vec(out, dims)?;
        Ok(record(
            out,
            "concat",
            tensors.to_vec(),
            move |_, g, needs| {
                let mut start = 0;
                let mut grads = Vec::with_capacity(sizes.len());
                for (&s, &need) in sizes.iter().zip(needs) {
                    grads.push(if need {
                        Some(g.narrow(ax as isize, start, s)?.contiguous())
                    } else {
                        None
                    });
                    start += s;
                }
                Ok(grads)
            },
        ))
    }

    /// Rows of `self` along axis 0 at `indices` (a batch of samples), for any dtype.
    ///
    /// # Errors
    /// An index error naming the first index past the end; an invalid-shape error for rank 0.
    pub fn select_rows(&self, indices: &[usize]) -> Result<Tensor> {
        let Some((&rows, rest)) = self.dims().split_first() else {
            return Err(TensorError::InvalidShape {
                op: "select_rows",
                shape: vec![],
                reason: "needs at least one dimension".into(),
            });
        };
        if let Some((pos, &bad)) = indices.iter().enumerate().find(|(_, &i)| i >= rows) {
            return Err(TensorError::IndexOutOfRange {
                op: "select_rows",
                index: bad as i64,
                position: pos,
                limit: rows,
            });
        }
        let row: usize = rest.iter().product();
        let src = self.contiguous();
        let off = src.offset();
        fn pick<T: Copy>(v: &[T], off: usize, row: usize, idx: &[usize]) -> Vec<T> {
            let mut out = Vec::with_capacity(idx.len() * row);
            for &i in idx {
                out.extend_from_slice(&v[off + i * row..off + (i + 1) * row]);
            }
            out
        }
        let storage = match src.storage() {
            Storage::F32(v) => Storage::F32(pick(v, off, row, indices)),
            Storage::U8(v) => Storage::U8(pick(v, off, row, indices)),
            Storage::I8(v) => Storage::I8(pick(v, off, row, indices)),
            Storage::I32(v) => Storage::I32(pick(v, off, row, indices)),
            Storage::I64(v) => Storage::I64(pick(v, off, row, indices)),
        };
        let mut dims = self.dims().to_vec();
        dims[0] = indices.len();
        let out = Tensor::from_storage(storage, Shape::new(dims));
        let idx = indices.to_vec();
        let in_shape = self.shape().clone();
        Ok(record(
            out,
            "select_rows",
            vec![self.clone()],
            move |_, g, _| {
                let g = g.f32_data("select_rows backward")?;
                let mut gi = vec![0.0; in_shape.elem_count()];
                for (k, &i) in idx.iter().enumerate() {
                    let dst = &mut gi[i * row..(i + 1) * row];
                    dst.iter_mut()
                        .zip(&g[k * row..(k + 1) * row])
                        .for_each(|(d, s)| *d += s);
                }
                Ok(vec![Some(Tensor::from_vec(gi, in_shape.clone())?)])
            },
        ))
    }

    /// Embedding lookup: rows of the `[vocab, dim]` table `self` at the i64 `ids` of any shape,
    /// giving `[..ids.shape, dim]`. The gradient adds into the rows that were read.
    ///
    /// # Errors
    /// A dtype error unless `ids` is i64; an index error naming the first id outside the table.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(TensorError::InvalidShape {
                op: "embedding",
                shape: self.dims().to_vec(),
                reason: "the table must be [vocab, dim]".into(),
            });
        }
        ids.expect_dtype("embedding", DType::I64)?;
        let vocab = self.dims()[0];
        let raw = ids.to_vec::<i64>()?;
        let mut idx = Vec::with_capacity(raw.len());
        for (pos, &id) in raw.iter().enumerate() {
            if id < 0 || id as usize >= vocab {
                return Err(TensorError::IndexOutOfRange {
                    op: "embedding",
                    index: id,
                    position: pos,
                    limit: vocab,
                });
            }
            idx.push(id as usize);
        }
        let rows = self.select_rows(&idx)?;
        let mut dims = ids.dims().to_vec();
        dims.push(self.dims()[1]);
        rows.reshape(dims)
    }
}

/// Adds `g` (a part of `shape` along `axis` from `start`) onto that part of `acc`, a
/// contiguous buffer of `shape`.
fn add_part(g: &Tensor, shape: &Shape, axis: usize, start: usize, acc: &mut [f32]) -> Result<()> {
    let (outer, n, inner) = shape.split_at_axis(axis);
    let len = g.dims()[axis];
    let src = g.f32_data("narrow backward")?;
    if acc.len() != shape.elem_count() || src.len() != outer * len * inner {
        return Err(TensorError::Backward(format!(
            "narrow: gradient of {} elements for a part of {} in {:?}",
            src.len(),
            acc.len(),
            shape.dims()
        )));
    }
    for o in 0..outer {
        let dst = &mut acc[(o * n + start) * inner..(o * n + start + len) * inner];
        let part = &src[o * len * inner..(o + 1) * len * inner];
        dst.iter_mut().zip(part).for_each(|(d, s)| *d += s);
    }
    Ok(())
}

/// A zero tensor of `shape` with `g` written at `start` along `axis` (gradient of `narrow`).
fn pad_into(g: &Tensor, shape: &Shape, axis: usize, start: usize) -> Result<Tensor> {
    let mut out = vec![0.0; shape.elem_count()];
    add_part(g, shape, axis, start, &mut out)?;
    Tensor::from_vec(out, shape.clone())
}
