//! Dense symmetric eigendecomposition and Cholesky factorization, by faer (pure Rust, built for
//! wasm32 with simd128): blocked Householder tridiagonalization (its trailing updates are GEMMs),
//! then implicit QR on the tridiagonal for the eigenvalues alone, or divide and conquer with the
//! eigenvectors; Cholesky is faer's blocked left-looking LLᵀ.
//!
//! This module owns what faer does not: the checks in the user's terms (lengths, finiteness,
//! symmetry), scaling by a power of 4 near max|aᵢⱼ| (so that no intermediate overflows or
//! underflows, however large or small A is; a power of 4 because then the scaling and its square
//! root, for Cholesky, are exact), fallible allocation of every buffer, and faer's errors as
//! [`Error`]s.
//! Everything runs sequentially (`Par::Seq`): wasm has no threads.
//!
//! Eigenvector layout: an n×n row-major buffer whose ROW j is the unit eigenvector for
//! `values[j]` (equivalently V stored column-major, with A = V·diag(λ)·Vᵀ): faer writes its
//! column-major V straight into it.

use super::vecops::{area, check_finite, scale, zeros};
use crate::error::{Error, ErrorCode, Result};
use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch, LltError};
use faer::linalg::evd::{self, ComputeEigenvectors, EvdError};
use faer::{MatMut, MatRef, Par};

/// Relative asymmetry max|aᵢⱼ − aⱼᵢ| / max|aᵢⱼ| above which a matrix is refused as not symmetric.
const ASYMMETRY_TOL: f64 = 1e-6;

/// Eigen-decomposition A = V·diag(λ)·Vᵀ of a dense symmetric n×n matrix `a` (row-major).
///
/// Returns `(values, vectors)`: eigenvalues ascending, and an n×n row-major buffer whose row j is
/// the unit eigenvector of `values[j]`. Reads A as (A + Aᵀ)/2.
///
/// Accuracy: backward stable; residuals ‖A·vⱼ − λⱼ·vⱼ‖ and |VᵀV − I| are O(n·ε·‖A‖).
/// Cost: ~4/3·n³ flops for the reduction, a few n³ for divide and conquer and the back
/// transformation, all but the first half of the reduction in GEMMs; memory ≈ 3n² f64.
///
/// Errors: LENGTH_MISMATCH if a.len() ≠ n·n; INVALID_ARGUMENT if an entry is not finite, if A
/// is not symmetric (max|aᵢⱼ − aⱼᵢ| > 1e-6·max|aᵢⱼ|) or (not seen for finite input) if the
/// iteration does not converge; OUT_OF_MEMORY for the workspace.
pub fn eigh(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let what = "eigh";
    let (m, s) = symmetrized(a, n, what)?;
    let mut w = zeros(area(n, n, what)?, what)?;
    if s == 0.0 {
        (0..n).for_each(|i| w[i * n + i] = 1.0);
        return Ok((vec![0.0; n], w));
    }
    let values = decompose(&m, n, Some(&mut w), what)?;
    Ok((scaled(values, s), w))
}

/// The eigenvalues of a dense symmetric n×n matrix (row-major), ascending, without the
/// eigenvectors: the same reduction as [`eigh`] but QR on the tridiagonal without accumulating
/// rotations, about a third of eigh's time for large n. Same checks and errors as [`eigh`].
pub fn eigvalsh(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let what = "eigvalsh";
    let (m, s) = symmetrized(a, n, what)?;
    if s == 0.0 {
        return Ok(vec![0.0; n]);
    }
    Ok(scaled(decompose(&m, n, None, what)?, s))
}

/// The Cholesky factor of a symmetric positive definite n×n matrix `a` (row-major): the lower
/// triangular L with A = L·Lᵀ and a positive diagonal, n×n row-major (zeros above the diagonal).
/// Reads A as (A + Aᵀ)/2. Cost n³/3 flops.
///
/// Errors: those of [`eigh`] for the input, and INVALID_ARGUMENT naming the pivot if A is not
/// positive definite (to working precision).
pub fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>> {
    let what = "cholesky";
    let (mut m, s) = symmetrized(a, n, what)?;
    let not_pd = |k: usize| {
        Error::invalid(format!(
            "cholesky: the {n}×{n} matrix is not positive definite (pivot {k} ≤ 0 after elimination); \
             add a damping λI, or use eigh for an indefinite matrix"
        ))
    };
    if n == 0 {
        return Ok(m);
    }
    if s == 0.0 {
        return Err(not_pd(0));
    }
    let mut buf = workspace(cholesky_in_place_scratch::<f64>(n, Par::Seq, Default::default()), what)?;
    // faer wants column-major; the row-major buffer read column-major is Aᵀ = A.
    let view = MatMut::from_column_major_slice_mut(&mut m, n, n);
    cholesky_in_place(view, Default::default(), Par::Seq, MemStack::new(&mut buf), Default::default()).map_err(|e| match e {
        LltError::NonPositivePivot { index } => not_pd(index),
    })?;
    // faer left L in the lower triangle of the column-major view (the strict upper part is
    // untouched): entry (i, j), i ≥ j, at m[j·n + i]. Row-major L wants it at m[i·n + j].
    let root = s.sqrt(); // exact: s is a power of 4
    for i in 0..n {
        for j in 0..i {
            m[i * n + j] = m[j * n + i] * root;
            m[j * n + i] = 0.0;
        }
        m[i * n + i] *= root;
    }
    Ok(m)
}

/// Checks `a` (length, finite, symmetric) and returns ((A + Aᵀ)/2 / s, s) with s the largest
/// power of 4 ≤ max|aᵢⱼ| (so the scaled entries are below 4 in magnitude; s = 0 and the copy
/// all zero for the zero matrix).
fn symmetrized(a: &[f64], n: usize, what: &str) -> Result<(Vec<f64>, f64)> {
    let nn = area(n, n, what)?;
    if a.len() != nn {
        return Err(Error::new(
            ErrorCode::LengthMismatch,
            format!("{what}: {} values for a {n}×{n} matrix; pass n·n values in row-major order", a.len()),
        ));
    }
    check_finite(what, "a", a)?;
    let amax = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut m = zeros(nn, what)?;
    if amax == 0.0 {
        return Ok((m, 0.0));
    }
    // 2^e with e even, e ≤ log₂ max|aᵢⱼ|, kept normal (for a subnormal A the scaled entries
    // are then below 1, still far from underflow).
    let e = (2 * (amax.log2() / 2.0).floor() as i32).clamp(-1022, 1022);
    let s = f64::from_bits(((e + 1023) as u64) << 52);
    for i in 0..n {
        for j in 0..=i {
            let (x, y) = (a[i * n + j], a[j * n + i]);
            if (x - y).abs() > ASYMMETRY_TOL * amax {
                return Err(Error::invalid(format!(
                    "{what}: the matrix is not symmetric: a[{i}][{j}] = {x:e} but a[{j}][{i}] = {y:e}; pass a symmetric matrix \
                     (or (A + Aᵀ)/2 if the asymmetry is rounding)"
                )));
            }
            let v = 0.5 * (x / s + y / s); // x + y could overflow
            m[i * n + j] = v;
            m[j * n + i] = v;
        }
    }
    Ok((m, s))
}

/// faer's self-adjoint EVD of the symmetric `m` (n ≥ 1), eigenvectors into `u` (n×n, written
/// column-major, i.e. row j is the eigenvector of values[j]) if given. Returns the eigenvalues
/// ascending (faer leaves them unsorted in some cases, e.g. a diagonal input).
fn decompose(m: &[f64], n: usize, mut u: Option<&mut [f64]>, what: &str) -> Result<Vec<f64>> {
    let vectors = if u.is_some() { ComputeEigenvectors::Yes } else { ComputeEigenvectors::No };
    let mut buf = workspace(evd::self_adjoint_evd_scratch::<f64>(n, vectors, Par::Seq, Default::default()), what)?;
    let mut s = zeros(n, what)?;
    let a = MatRef::from_row_major_slice(m, n, n); // symmetric: either layout reads the same
    let diag = faer::ColMut::from_slice_mut(&mut s).as_diagonal_mut();
    let view = u.as_deref_mut().map(|u| MatMut::from_column_major_slice_mut(u, n, n));
    evd::self_adjoint_evd(a, diag, view, Par::Seq, MemStack::new(&mut buf), Default::default()).map_err(|e| match e {
        EvdError::NoConvergence => Error::invalid(format!("{what}: the tridiagonal eigenvalue iteration did not converge for this {n}×{n} matrix")),
    })?;
    if s.windows(2).all(|p| p[0] <= p[1]) {
        return Ok(s);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| s[i].total_cmp(&s[j]));
    if let Some(u) = u {
        let mut old = zeros(u.len(), what)?; // only on this rare path
        old.copy_from_slice(u);
        for (dst, &src) in u.chunks_exact_mut(n).zip(&order) {
            dst.copy_from_slice(&old[src * n..(src + 1) * n]);
        }
    }
    Ok(order.iter().map(|&i| s[i]).collect())
}

/// faer's scratch memory, or OUT_OF_MEMORY naming `what` and the size.
fn workspace(req: StackReq, what: &str) -> Result<MemBuffer> {
    MemBuffer::try_new(req).map_err(|_| {
        let mib = req.size_bytes() as f64 / (1u64 << 20) as f64;
        Error::new(ErrorCode::OutOfMemory, format!("{what}: could not allocate {mib:.1} MiB of workspace"))
    })
}

fn scaled(mut values: Vec<f64>, s: f64) -> Vec<f64> {
    scale(s, &mut values);
    values
}
