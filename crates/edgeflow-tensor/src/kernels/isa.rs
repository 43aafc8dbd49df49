//! The SIMD instruction sets kernels choose from at run time.
//!
//! The crate is compiled for the baseline of its target (SSE2 on x86-64), so that one binary
//! runs on any CPU of the architecture. Hot loops are compiled a second and third time inside
//! functions that enable AVX2 or AVX-512 (the `vectorized!` macro), and the best copy the CPU
//! can run is picked once per process.
//!
//! The environment variable `EDGEFLOW_SIMD` (`avx512`, `avx2` or `none`) caps the choice, to
//! compare the copies or to test the lesser ones on a CPU that has the better.

/// An x86-64 SIMD instruction set a kernel can be compiled for.
/// Ordered from the lesser to the better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// 256-bit vectors of 8 floats (x86-64 AVX2 with FMA).
    Avx2,
    /// 512-bit vectors of 16 floats (x86-64 AVX-512F).
    Avx512,
}

impl Isa {
    /// Every instruction set of [`Isa`] this CPU runs, best first.
    pub fn available() -> Vec<Isa> {
        let mut out = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                out.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                out.push(Isa::Avx2);
            }
        }
        out
    }

    /// The best instruction set this CPU runs, at most the one `EDGEFLOW_SIMD` names; looked
    /// up once per process.
    pub fn best() -> Option<Isa> {
        static BEST: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            let available = Isa::available();
            // An empty value counts as unset.
            let cap = std::env::var(SIMD_ENV)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .and_then(|v| parse_cap(&v));
            let chosen = match cap {
                Some(Some(cap)) => available.into_iter().find(|isa| *isa <= cap),
                Some(None) => None,
                None => available.first().copied(),
            };
            tracing::debug!(simd = ?chosen, "SIMD instruction set for the kernels");
            chosen
        })
    }

    /// Floats per vector.
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => 16,
            Isa::Avx2 => 8,
        }
    }
}

/// The environment variable that caps the instruction set: `avx512`, `avx2` or `none`.
pub const SIMD_ENV: &str = "EDGEFLOW_SIMD";

/// The cap `EDGEFLOW_SIMD` sets: `Some(None)` for `none` (the portable code only), `None`
/// (with a warning) for a value it does not know.
fn parse_cap(value: &str) -> Option<Option<Isa>> {
    match value.trim().to_ascii_lowercase().as_str() {
        "avx512" => Some(Some(Isa::Avx512)),
        "avx2" => Some(Some(Isa::Avx2)),
        "none" => Some(None),
        _ => {
            tracing::warn!(
                "{SIMD_ENV}={value:?} is not one of avx512, avx2, none; using the best the CPU has"
            );
            None
        }
    }
}

/// Defines `fn $name(args)` that runs `$body(args)` compiled for the best instruction set of
/// this CPU: `$body` (an `#[inline(always)]` function of plain loops over slices) is inlined
/// into one copy per instruction set, where its loops are vectorized for it; on other CPUs
/// and architectures the baseline copy runs.
///
/// A closure would not do: its body is compiled on its own, for the baseline.
///
/// ```
/// #[inline(always)]
/// fn scale_portable(x: &mut [f32], by: f32) {
///     x.iter_mut().for_each(|v| *v *= by);
/// }
///
/// edgeflow_tensor::vectorized! {
///     /// `x *= by`, in the widest vectors this CPU has.
///     fn scale(x: &mut [f32], by: f32) = scale_portable;
/// }
///
/// let mut x = vec![1.0f32; 40];
/// scale(&mut x, 2.0);
/// assert!(x.iter().all(|&v| v == 2.0));
/// ```
#[macro_export]
macro_rules! vectorized {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) = $body:ident;) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            unsafe fn avx512($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                $body($($arg),*)
            }
            match $crate::kernels::isa::Isa::best() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::best` found AVX-512F on this CPU.
                Some($crate::kernels::isa::Isa::Avx512) => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::best` found AVX2 and FMA on this CPU.
                Some($crate::kernels::isa::Isa::Avx2) => unsafe { avx2($($arg),*) },
                _ => $body($($arg),*),
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simd_cap_reads_the_three_names_and_refuses_others() {
        assert_eq!(parse_cap("avx512"), Some(Some(Isa::Avx512)));
        assert_eq!(parse_cap(" AVX2 "), Some(Some(Isa::Avx2)));
        assert_eq!(parse_cap("none"), Some(None));
        assert_eq!(parse_cap("sse"), None);
        assert!(Isa::Avx2 < Isa::Avx512);
    }
}
