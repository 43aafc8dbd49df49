//! The thread pool every kernel runs on.
//!
//! The pool size comes from [`set_num_threads`], else from the `EDGEFLOW_NUM_THREADS`
//! environment variable, else from the number of available cores. Kernels split work in a way
//! that depends only on the sizes and the thread count, so a fixed thread count gives
//! bit-identical results from run to run.

use std::sync::{Arc, OnceLock, RwLock};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// Environment variable read for the default thread count.
pub const NUM_THREADS_ENV: &str = "EDGEFLOW_NUM_THREADS";

fn slot() -> &'static RwLock<Option<Arc<ThreadPool>>> {
    static POOL: OnceLock<RwLock<Option<Arc<ThreadPool>>>> = OnceLock::new();
    POOL.get_or_init(|| RwLock::new(None))
}

fn default_threads() -> usize {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(value) = std::env::var(NUM_THREADS_ENV) else {
        return cores();
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            let n = cores();
            tracing::warn!(
                "{NUM_THREADS_ENV}={value:?} is not a positive whole number; using {n} threads"
            );
            n
        }
    }
}

fn build(threads: usize) -> Arc<ThreadPool> {
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("edgeflow-{i}"))
        .start_handler(|_| flush_denormals_to_zero())
        .build()
        // Building a pool fails only when the OS refuses to spawn threads.
        .expect("the OS refused to start the edgeflow thread pool");
    Arc::new(pool)
}

/// Makes this thread's floating-point unit treat subnormal numbers as zero (x86 FTZ and DAZ).
///
/// Gradients of a trained network drift into the subnormal range, where x86 arithmetic is
/// slower by orders of magnitude; TensorFlow and PyTorch set the same mode on their CPU
/// threads. Values that small are far below what f32 training can resolve anyway.
pub fn flush_denormals_to_zero() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reading and writing MXCSR only changes how this thread rounds subnormal
    // results; SSE is part of the x86_64 baseline.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        const FTZ: u32 = 1 << 15;
        const DAZ: u32 = 1 << 6;
        _mm_setcsr(_mm_getcsr() | FTZ | DAZ);
    }
}

/// The pool kernels run on, created on first use.
pub fn pool() -> Arc<ThreadPool> {
    if let Some(p) = slot().read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut guard = slot().write().unwrap_or_else(|e| e.into_inner());
    guard
        .get_or_insert_with(|| build(default_threads()))
        .clone()
}

/// Sets the number of threads kernels use from now on (at least 1).
pub fn set_num_threads(threads: usize) {
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(build(threads));
}

/// The number of threads kernels use.
pub fn num_threads() -> usize {
    pool().current_num_threads()
}

/// Runs `f` inside the kernel pool, so that rayon calls in it use that pool.
///
/// The pool's threads flush subnormals to zero (see [`flush_denormals_to_zero`]). When the
/// caller is itself a rayon thread, `f` runs right there, with the same mode set only for the
/// call: the caller's own floating-point mode is restored afterwards.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        // Already on a pool thread: nested work stays where it is.
        let _mode = ScopedFlushToZero::enter();
        return f();
    }
    pool().install(f)
}

/// FTZ and DAZ on the current thread until dropped, then the previous mode again.
struct ScopedFlushToZero {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl ScopedFlushToZero {
    fn enter() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: reading MXCSR has no effect; SSE is part of the x86_64 baseline.
            #[allow(deprecated)]
            let saved = unsafe { std::arch::x86_64::_mm_getcsr() };
            flush_denormals_to_zero();
            ScopedFlushToZero { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        ScopedFlushToZero {}
    }
}

impl Drop for ScopedFlushToZero {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: writes back the value read in `enter`, a valid MXCSR of this thread.
        #[allow(deprecated)]
        unsafe {
            std::arch::x86_64::_mm_setcsr(self.saved);
        }
    }
}

/// Below this many floating-point operations a kernel stays on the calling thread.
pub(crate) const PARALLEL_MIN_WORK: usize = 1 << 15;
