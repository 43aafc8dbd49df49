//! The `Tensor` type: a shared buffer seen through a shape, strides and an offset.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::autograd::Node;
use crate::dtype::{Element, Storage};
use crate::error::{Result, TensorError};
use crate::{DType, Shape};

/// Identifies a tensor across clones; gradients are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array on the CPU.
///
/// Cloning a tensor is cheap: clones share the buffer. Views (`reshape` of a contiguous tensor,
/// `transpose`, `narrow`) share it too; operations that need contiguous memory copy only when the
/// input is not.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) id: TensorId,
    pub(crate) storage: Arc<Storage>,
    pub(crate) shape: Shape,
    pub(crate) strides: Vec<usize>,
    pub(crate) offset: usize,
    pub(crate) requires_grad: bool,
    pub(crate) node: Option<Arc<Node>>,
    /// For the output of a softmax: its input, so that a cross-entropy loss can work from the
    /// logits (exact and stable) instead of from rounded probabilities.
    pub(crate) softmax_logits: Option<Tensor>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({:?}, {:?}", self.dtype(), self.dims())?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        write!(f, ")")
    }
}

impl Tensor {
    pub(crate) fn from_storage(storage: Storage, shape: Shape) -> Self {
        let strides = shape.contiguous_strides();
        Tensor {
            inner: Arc::new(Inner {
                id: TensorId::next(),
                storage: Arc::new(storage),
                shape,
                strides,
                offset: 0,
                requires_grad: false,
                node: None,
                softmax_logits: None,
            }),
        }
    }

    /// A tensor holding `data` in row-major order with the given shape.
    ///
    /// # Errors
    /// [`TensorError::ElementCount`] when `data.len()` is not the shape's element count.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(TensorError::ElementCount {
                op: "from_vec",
                len: data.len(),
                shape: shape.dims().to_vec(),
                expected: shape.elem_count(),
            });
        }
        Ok(Self::from_storage(T::into_storage(data), shape))
    }

    /// A tensor copied from a slice, see [`Tensor::from_vec`].
    ///
    /// # Errors
    /// As [`Tensor::from_vec`].
    pub fn from_slice<T: Element>(data: &[T], shape: impl Into<Shape>) -> Result<Self> {
        Self::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 f32 tensor.
    pub fn scalar(value: f32) -> Self {
        Self::from_storage(Storage::F32(vec![value]), Shape::new(vec![]))
    }

    /// An f32 tensor filled with `value`.
    pub fn full(value: f32, shape: impl Into<Shape>) -> Self {
        let shape = shape.into();
        Self::from_storage(Storage::F32(vec![value; shape.elem_count()]), shape)
    }

    /// An f32 tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>) -> Self {
        Self::full(0.0, shape)
    }

    /// An f32 tensor of ones.
    pub fn ones(shape: impl Into<Shape>) -> Self {
        Self::full(1.0, shape)
    }

    /// An f32 tensor of zeros with the shape of `self`.
    pub fn zeros_like(&self) -> Self {
        Self::zeros(self.shape().clone())
    }

    /// `0, 1, ..., n-1` as f32.
    pub fn arange(n: usize) -> Self {
        Self::from_storage(
            Storage::F32((0..n).map(|i| i as f32).collect()),
            Shape::new(vec![n]),
        )
    }

    /// The unique id of this tensor (shared by its clones).
    pub fn id(&self) -> TensorId {
        self.inner.id
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.inner.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.inner.shape.dims()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.inner.shape.rank()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.inner.shape.elem_count()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.inner.storage.dtype()
    }

    /// The strides, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.inner.strides
    }

    /// Whether the elements lie in row-major order without gaps.
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.dims().iter().zip(&self.inner.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Whether gradients flow to this tensor in a backward pass.
    pub fn requires_grad(&self) -> bool {
        self.inner.requires_grad
    }

    /// Whether this tensor was made by a recorded operation (and so is not a leaf).
    pub fn has_grad_fn(&self) -> bool {
        self.inner.node.is_some()
    }

    /// Marks a leaf tensor (a parameter) as one whose gradient `backward` computes.
    ///
    /// The result shares the buffer and keeps the id.
    pub fn with_requires_grad(self, requires_grad: bool) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.requires_grad = requires_grad;
        Tensor {
            inner: Arc::new(inner),
        }
    }

    /// The same data cut loose from the graph: no gradient flows through the result.
    pub fn detach(&self) -> Self {
        let mut inner = (*self.inner).clone();
        inner.id = TensorId::next();
        inner.requires_grad = false;
        inner.node = None;
        inner.softmax_logits = None;
        Tensor {
            inner: Arc::new(inner),
        }
    }

    /// The logits this tensor is the softmax of, when it was made by [`Tensor::softmax`] over
    /// the last axis.
    pub fn softmax_logits(&self) -> Option<&Tensor> {
        self.inner.softmax_logits.as_ref()
    }

    /// The contiguous elements as a slice, without copying.
    ///
    /// # Errors
    /// [`TensorError::DTypeMismatch`] for another dtype, [`TensorError::Unsupported`] when the
    /// tensor is a non-contiguous view (call [`Tensor::contiguous`] first).
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        let all = T::slice_of(&self.inner.storage).ok_or(TensorError::DTypeMismatch {
            op: "as_slice",
            expected: T::DTYPE,
            actual: self.dtype(),
        })?;
        if !self.is_contiguous() {
            return Err(TensorError::Unsupported {
                op: "as_slice",
                reason: "the tensor is a non-contiguous view".into(),
            });
        }
        let start = self.inner.offset;
        Ok(&all[start..start + self.elem_count()])
    }

    /// The elements in row-major order, copied.
    ///
    /// # Errors
    /// [`TensorError::DTypeMismatch`] for another dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if let Ok(s) = self.as_slice::<T>() {
            return Ok(s.to_vec());
        }
        let all = T::slice_of(&self.inner.storage).ok_or(TensorError::DTypeMismatch {
            op: "to_vec",
            expected: T::DTYPE,
            actual: self.dtype(),
        })?;
        Ok(gather_strided(
            all,
            self.dims(),
            &self.inner.strides,
            self.inner.offset,
        ))
    }

    /// The f32 elements in row-major order, copied.
    ///
    /// # Errors
    /// [`TensorError::DTypeMismatch`] when the tensor is not f32.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        self.to_vec::<f32>()
    }

    /// The single value of a one-element f32 tensor.
    ///
    /// # Errors
    /// [`TensorError::InvalidShape`] when the tensor has more than one element.
    pub fn to_scalar(&self) -> Result<f32> {
        if self.elem_count() != 1 {
            return Err(TensorError::InvalidShape {
                op: "to_scalar",
                shape: self.dims().to_vec(),
                reason: "expected exactly one element".into(),
            });
        }
        Ok(self.to_vec_f32()?[0])
    }

    /// A contiguous tensor with the same elements: `self` when it already is, else a copy.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let storage = match &*self.inner.storage {
            Storage::F32(v) => Storage::F32(self.gather(v)),
            Storage::U8(v) => Storage::U8(self.gather(v)),
            Storage::I8(v) => Storage::I8(self.gather(v)),
            Storage::I32(v) => Storage::I32(self.gather(v)),
            Storage::I64(v) => Storage::I64(self.gather(v)),
        };
        let out = Tensor::from_storage(storage, self.shape().clone());
        crate::autograd::record(out, "contiguous", vec![self.clone()], |_, g, _| {
            Ok(vec![Some(g.clone())])
        })
    }

    fn gather<T: Copy>(&self, all: &[T]) -> Vec<T> {
        gather_strided(all, self.dims(), &self.inner.strides, self.inner.offset)
    }

    /// Updates the f32 elements of a leaf tensor in place (optimizer steps).
    ///
    /// The buffer is copied first only when something else still shares it. The id stays.
    ///
    /// # Errors
    /// [`TensorError::DTypeMismatch`] when the tensor is not f32.
    pub fn update_f32(&mut self, f: impl FnOnce(&mut [f32])) -> Result<()> {
        if self.dtype() != DType::F32 {
            return Err(TensorError::DTypeMismatch {
                op: "update_f32",
                expected: DType::F32,
                actual: self.dtype(),
            });
        }
        if !self.is_contiguous()
            || self.inner.offset != 0
            || self.inner.storage.len() != self.elem_count()
        {
            let id = self.id();
            let requires_grad = self.requires_grad();
            let mut fresh = Tensor::from_vec(self.to_vec_f32()?, self.shape().clone())?;
            Arc::get_mut(&mut fresh.inner)
                .expect("fresh tensor is unshared")
                .id = id;
            *self = fresh.with_requires_grad(requires_grad);
        }
        let inner = Arc::make_mut(&mut self.inner);
        match Arc::make_mut(&mut inner.storage) {
            Storage::F32(v) => f(v),
            _ => unreachable!("dtype checked above"),
        }
        Ok(())
    }

    pub(crate) fn view(&self, shape: Shape, strides: Vec<usize>, offset: usize) -> Tensor {
        Tensor {
            inner: Arc::new(Inner {
                id: TensorId::next(),
                storage: self.inner.storage.clone(),
                shape,
                strides,
                offset,
                requires_grad: false,
                node: None,
                softmax_logits: None,
            }),
        }
    }

    pub(crate) fn offset(&self) -> usize {
        self.inner.offset
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Checks the dtype, naming `op` in the error.
    pub(crate) fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype() != dtype {
            return Err(TensorError::DTypeMismatch {
                op,
                expected: dtype,
                actual: self.dtype(),
            });
        }
        Ok(())
    }

    /// The contiguous f32 data of `self` (copying a view), naming `op` in a dtype error.
    pub(crate) fn f32_data(&self, op: &'static str) -> Result<std::borrow::Cow<'_, [f32]>> {
        self.expect_dtype(op, DType::F32)?;
        match self.as_slice::<f32>() {
            Ok(s) => Ok(std::borrow::Cow::Borrowed(s)),
            Err(_) => Ok(std::borrow::Cow::Owned(self.to_vec_f32()?)),
        }
    }
}

/// Copies the elements of a strided view into a row-major vector.
pub(crate) fn gather_strided<T: Copy>(
    all: &[T],
    dims: &[usize],
    strides: &[usize],
    offset: usize,
) -> Vec<T> {
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    if dims.is_empty() {
        out.push(all[offset]);
        return out;
    }
    let last = dims.len() - 1;
    let mut index = vec![0usize; dims.len()];
    loop {
        let base: usize = offset + index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>();
        match strides[last] {
            1 => out.extend_from_slice(&all[base..base + dims[last]]),
            0 => out.extend(std::iter::repeat_n(all[base], dims[last])),
            step => out.extend((0..dims[last]).map(|j| all[base + j * step])),
        }
        // Advance the multi-index over all but the last dimension.
        let mut d = last;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
}
