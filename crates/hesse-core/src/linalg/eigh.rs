//! Dense symmetric eigensolver: Householder tridiagonalization, then the implicit QL algorithm
//! with Wilkinson shifts on the tridiagonal (see [`super::tridiag`]); EISPACK tred2/tql2's
//! method, O(n³), arranged for row-major memory.
//!
//! Eigenvector layout: an n×n row-major buffer whose ROW j is the unit eigenvector for
//! `values[j]` (equivalently V stored column-major, with A = V·diag(λ)·Vᵀ). Rows are what the QL
//! rotations touch, so they stay contiguous in memory.

use super::tridiag::{ql_implicit, sort_ascending};
use super::vecops::{area, axpy, check_finite, dot, norm, scale, zeros};
use crate::error::{Error, ErrorCode, Result};

/// Relative asymmetry max|aᵢⱼ − aⱼᵢ| / max|aᵢⱼ| above which [`eigh`] refuses the matrix.
const ASYMMETRY_TOL: f64 = 1e-6;
/// Rows of Qᵀ built together, so each reflector read from memory serves this many rows.
const ROW_BLOCK: usize = 16;

/// Eigen-decomposition A = V·diag(λ)·Vᵀ of a dense symmetric n×n matrix `a` (row-major).
///
/// Returns `(values, vectors)`: eigenvalues ascending, and an n×n row-major buffer whose row j is
/// the unit eigenvector of `values[j]`. Reads A as (A + Aᵀ)/2.
///
/// Accuracy: backward stable; residuals ‖A·vⱼ − λⱼ·vⱼ‖ and |VᵀV − I| are O(n·ε·‖A‖).
/// Cost: about (2/3 + 4/3)·n³ flops for the reduction and Qᵀ, plus ~3n³ for QL's rotations;
/// memory 2n² f64. Natively ~1 s for n = 1000.
///
/// Errors: LENGTH_MISMATCH if a.len() ≠ n·n; INVALID_ARGUMENT if an entry is not finite or if A
/// is not symmetric (max|aᵢⱼ − aⱼᵢ| > 1e-6·max|aᵢⱼ|); OUT_OF_MEMORY for the workspace.
pub fn eigh(a: &[f64], n: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let what = "eigh";
    let nn = area(n, n, what)?;
    if a.len() != nn {
        return Err(Error::new(
            ErrorCode::LengthMismatch,
            format!("eigh: {} values for a {n}×{n} matrix; pass n·n values in row-major order", a.len()),
        ));
    }
    check_finite(what, "a", a)?;
    let amax = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let mut w = zeros(nn, what)?;
    if amax == 0.0 {
        for i in 0..n {
            w[i * n + i] = 1.0;
        }
        return Ok((vec![0.0; n], w));
    }
    // Scale to max|a| = 1 (no overflow or underflow in the norms below, however large or small
    // A is), symmetrizing.
    let mut m = zeros(nn, what)?;
    for i in 0..n {
        for j in 0..n {
            let (x, y) = (a[i * n + j], a[j * n + i]);
            if (x - y).abs() > ASYMMETRY_TOL * amax {
                return Err(Error::invalid(format!(
                    "eigh: the matrix is not symmetric: a[{i}][{j}] = {x:e} but a[{j}][{i}] = {y:e}; pass a symmetric matrix \
                     (or (A + Aᵀ)/2 if the asymmetry is rounding)"
                )));
            }
            m[i * n + j] = 0.5 * (x + y) / amax;
        }
    }
    let (mut d, mut e, betas) = tridiagonalize(&mut m, n, what)?;
    q_transposed(&m, &betas, n, &mut w);
    ql_implicit(&mut d, &mut e, &mut w, n)?;
    let (mut values, vectors) = sort_ascending(&d, &w, n, what)?;
    scale(amax, &mut values);
    Ok((values, vectors))
}

/// Reduces the symmetric matrix `a` (n×n row-major; only the upper triangle is read and kept
/// up to date) to tridiagonal form T = Qᵀ·A·Q with Q = H₀·H₁·…·H_{n−3},
/// Hₖ = I − βₖ·vₖ·vₖᵀ acting on indices k+1..n.
///
/// Returns (d, e, β): T's diagonal, its off-diagonal (length n, e[n−1] = 0 for QL) and the βₖ.
/// Each vₖ is left in row k of `a`, columns k+1..n (entries no longer needed).
/// Working on one triangle halves the memory traffic, which is what bounds this loop for large n.
fn tridiagonalize(a: &mut [f64], n: usize, what: &str) -> Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let mut e = zeros(n, what)?;
    let mut betas = zeros(n.saturating_sub(2), what)?;
    let mut p = zeros(n, what)?;
    for k in 0..n.saturating_sub(2) {
        let m = n - k - 1; // the reflector acts on the m indices k+1..n
        let (head, tail) = a.split_at_mut((k + 1) * n);
        let v = &mut head[k * n + k + 1..k * n + n]; // x = A[k, k+1..] (= column k by symmetry)
        let x0 = v[0];
        let tail_norm = norm(&v[1..]);
        if tail_norm == 0.0 {
            e[k] = x0; // already tridiagonal in this column: Hₖ = I (βₖ = 0)
            continue;
        }
        // Hₖ·x = α·e₁ with α = −sign(x₀)·‖x‖: v = x − α·e₁ adds magnitudes (no cancellation),
        // and vᵀv = 2‖x‖(‖x‖ + |x₀|), so β = 2/vᵀv below.
        let xn = x0.hypot(tail_norm);
        let alpha = if x0 >= 0.0 { -xn } else { xn };
        v[0] = x0 - alpha;
        let beta = 1.0 / (xn * (xn + x0.abs()));
        betas[k] = beta;
        e[k] = alpha;
        // Two-sided update of the trailing block B (rows/cols k+1..n) without forming Hₖ:
        // p = β·B·v, K = β/2·vᵀp, w = p − K·v, then B ← B − v·wᵀ − w·vᵀ (Golub–Van Loan 8.3.1).
        // B·v from the upper triangle: row i gives pᵢ += Σ_{j≥i} bᵢⱼvⱼ and pⱼ += bᵢⱼvᵢ (j > i).
        let p = &mut p[..m];
        p.fill(0.0);
        for i in 0..m {
            let row = &tail[i * n + k + 1 + i..i * n + n];
            p[i] += dot(row, &v[i..]);
            axpy(v[i], &row[1..], &mut p[i + 1..]);
        }
        scale(beta, p);
        let kk = 0.5 * beta * dot(v, p);
        axpy(-kk, v, p);
        for i in 0..m {
            let row = &mut tail[i * n + k + 1 + i..i * n + n];
            axpy(-v[i], &p[i..], row);
            axpy(-p[i], &v[i..], row);
        }
    }
    if n >= 2 {
        e[n - 2] = a[(n - 2) * n + n - 1];
    }
    let d = (0..n).map(|i| a[i * n + i]).collect();
    Ok((d, e, betas))
}

/// Writes Qᵀ = H_{n−3}·…·H₁·H₀ into `w` (n×n row-major, zeroed on entry), from the reflectors
/// left in `a` by [`tridiagonalize`]; its rows are what the QL rotations turn into eigenvectors.
///
/// Row r of Qᵀ is e_rᵀ·H_{n−3}·…·H₀, and e_rᵀ·Hₖ = e_rᵀ while k ≥ r (Hₖ only touches the
/// indices after k), so row r starts as e_r at H_{r−1} and each later factor is a dot and an
/// axpy on its columns k+1..n: rows are independent and contiguous. Rows go in blocks of [`ROW_BLOCK`] so
/// that each reflector, read once from memory, is applied to the whole block.
fn q_transposed(a: &[f64], betas: &[f64], n: usize, w: &mut [f64]) {
    for r in 0..n {
        w[r * n + r] = 1.0;
    }
    for r0 in (0..n).step_by(ROW_BLOCK) {
        let r1 = (r0 + ROW_BLOCK).min(n);
        for k in (0..betas.len().min(r1.saturating_sub(1))).rev() {
            let beta = betas[k];
            if beta == 0.0 {
                continue;
            }
            let v = &a[k * n + k + 1..k * n + n];
            for r in r0.max(k + 1)..r1 {
                let row = &mut w[r * n + k + 1..r * n + n];
                let c = beta * dot(row, v);
                axpy(-c, v, row);
            }
        }
    }
}
