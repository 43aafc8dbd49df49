//! A cache of f32 buffers, so that the activations and gradients of one training step reuse the
//! memory of the step before instead of asking the OS for fresh pages and zeroing them.
//!
//! A buffer is returned here when the last tensor using it is dropped, and handed out again
//! for a request of exactly the same length. The cache is bounded in count per length and in
//! total bytes; beyond that, buffers are freed as usual.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buffers shorter than this are left to the allocator.
const MIN_LEN: usize = 1 << 12;
/// At most this many idle buffers of one length.
const MAX_PER_LEN: usize = 8;
/// At most this many idle bytes in total.
const MAX_BYTES: usize = 256 << 20;

#[derive(Default)]
struct Cache {
    idle: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: std::sync::OnceLock<Mutex<Cache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// A buffer of `len` elements whose contents are unspecified (but initialized) values: the
/// caller must write every element before reading any.
pub(crate) fn take(len: usize) -> Vec<f32> {
    if len >= MIN_LEN {
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = c.idle.get_mut(&len).and_then(Vec::pop) {
            c.bytes -= len * 4;
            return v;
        }
    }
    vec![0.0; len]
}

/// A buffer of `len` zeros.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut v = take(len);
    v.fill(0.0);
    v
}

/// Gives a buffer back for reuse.
pub(crate) fn recycle(v: Vec<f32>) {
    let len = v.len();
    if len < MIN_LEN || v.capacity() != len {
        return;
    }
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    if c.bytes + len * 4 > MAX_BYTES {
        return;
    }
    let slot = c.idle.entry(len).or_default();
    if slot.len() < MAX_PER_LEN {
        slot.push(v);
        c.bytes += len * 4;
    }
}

/// A cached buffer that is not a tensor's storage (a saved im2col matrix, say); it goes back
/// to the cache when dropped.
pub(crate) struct Scratch(pub(crate) Vec<f32>);

impl Scratch {
    /// A scratch buffer of `len` unspecified values (see [`take`]).
    pub(crate) fn take(len: usize) -> Self {
        Scratch(take(len))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        recycle(std::mem::take(&mut self.0));
    }
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
    }
}
