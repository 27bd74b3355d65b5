//! A safe wrapper around the `gemm` crate's matrix product, for the kernels that candle
//! runs too slowly on the CPU.

/// Threads one product may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The rayon pool (for one large product).
    All,
    /// The calling thread (for many small products already run in parallel).
    One,
}

/// `dst[m×n] (+)= lhs[m×k] · rhs[k×n]`, each given by its row and column strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    threads: Threads,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index the GEMM touches inside the slices, and
    // `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        raw_gemm(
            (m, n, k),
            (dst.as_mut_ptr(), n),
            accumulate,
            (lhs, lhs_rs, lhs_cs),
            (rhs, rhs_rs, rhs_cs),
            threads,
        )
    }
}

/// [`gemm`] into a strided destination: `dst[i·dst_rs + j] = (lhs · rhs)[i][j]` for
/// `i < m`, `j < n`, each row of the result written where the caller's layout puts it.
///
/// # Safety
/// `dst` must be valid for writes at every `i·dst_rs + j` (`i < m`, `j < n`), and no
/// other thread may touch those elements during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_to_rows(
    (m, n, k): (usize, usize, usize),
    dst: *mut f32,
    dst_rs: usize,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the inputs' extents are asserted above; the destination's is the caller's.
    unsafe {
        raw_gemm(
            (m, n, k),
            (dst, dst_rs),
            false,
            (lhs, lhs_rs, lhs_cs),
            (rhs, rhs_rs, rhs_cs),
            Threads::One,
        )
    }
}

/// The `gemm` crate's product with our conventions: row-major destination with row stride
/// `dst_rs`, `alpha = beta = 1`.
///
/// # Safety
/// Every element the product reads or writes must lie inside the given buffers, and the
/// destination must not alias the inputs.
unsafe fn raw_gemm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
    threads: Threads,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            match threads {
                Threads::All => gemm::Parallelism::Rayon(0),
                Threads::One => gemm::Parallelism::None,
            },
        );
    }
}
