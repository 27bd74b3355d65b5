//! Loops of our own compiled for the vector units the CPU has, decided at run time.
//!
//! The crate is built for the x86-64 baseline (SSE2), so a float loop runs four lanes
//! wide. Compiled again with AVX-512 it runs sixteen, with the same floats: every lane is
//! its own sum, in the same order, and Rust never fuses a multiply and an add into one
//! rounding. So decoding gives the same pixels on every path.

/// Runs `f` with its loops compiled for AVX-512F where the CPU has it. `f` must be a
/// closure marked `#[inline(always)]` (and whatever it calls too), or it keeps its
/// baseline code.
#[inline(always)]
pub(super) fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { avx512(f) };
    }
    f()
}
