//! Element types and the storage that holds them.

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float: activations, weights, gradients.
    F32,
    /// Unsigned byte: raw image pixels, quantized activations.
    U8,
    /// Signed byte: quantized weights.
    I8,
    /// 32-bit integer: quantized accumulators.
    I32,
    /// 64-bit integer: class labels and token ids.
    I64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::U8 | DType::I8 => 1,
            DType::I64 => 8,
        }
    }
}

/// A contiguous buffer of elements of one dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Storage {
    F32(Vec<f32>),
    U8(Vec<u8>),
    I8(Vec<i8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::F32(v) = self {
            crate::buffer::recycle(std::mem::take(v));
        }
    }
}

impl Storage {
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::U8(_) => DType::U8,
            Storage::I8(_) => DType::I8,
            Storage::I32(_) => DType::I32,
            Storage::I64(_) => DType::I64,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::F32(v) => v.len(),
            Storage::U8(v) => v.len(),
            Storage::I8(v) => v.len(),
            Storage::I32(v) => v.len(),
            Storage::I64(v) => v.len(),
        }
    }
}

pub(crate) mod sealed {
    use super::Storage;

    /// Moves element vectors in and out of [`Storage`]; not implementable outside the crate.
    pub trait Sealed: Sized {
        fn into_storage(v: Vec<Self>) -> Storage;
        fn slice_of(s: &Storage) -> Option<&[Self]>;
    }
}

/// Element types that a tensor can be built from and read back as.
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The dtype tag of this element type.
    const DTYPE: DType;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
        }
        impl sealed::Sealed for $t {
            fn into_storage(v: Vec<Self>) -> Storage {
                Storage::$variant(v)
            }
            fn slice_of(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}

element!(f32, F32);
element!(u8, U8);
element!(i8, I8);
element!(i32, I32);
element!(i64, I64);
