//! The symmetric tridiagonal eigenproblem of the Lanczos methods (whose T_m is tridiagonal from
//! the start): implicit QL with Wilkinson shifts (EISPACK tql2, Numerical Recipes tqli). Kept
//! beside faer (which [`super::eigh()`] uses) because Lanczos and SLQ need only the first or last
//! component of each eigenvector, O(m²) here by rotating one column.
//!
//! Eigenvector layout: row j of the returned buffer belongs to values[j] (see [`Components`]).

use super::vecops::{area, check_finite, scale, zeros};
use crate::error::{Error, ErrorCode, Result};

/// QL sweeps allowed per eigenvalue; 1–2 are typical (cubic convergence), 30 is EISPACK's limit.
const MAX_QL_SWEEPS: usize = 60;
/// Rotations recorded before they are applied to the vectors (24 bytes each).
const ROTATION_BATCH: usize = 1 << 15;
/// Columns of the vectors' buffer that a batch of rotations is applied to at a time: a panel of
/// n rows × 32 columns (256 KiB at n = 1000) stays in cache while the whole batch runs over it.
const PANEL: usize = 32;

/// Eigenvalues and first eigenvector components of the symmetric tridiagonal matrix T with
/// diagonal `diag` (length m) and off-diagonal `offdiag` (length m − 1; empty when m ≤ 1).
///
/// Returns `(values ascending, first)`, where `first[j] = s_j[0]`, the first component of the unit
/// eigenvector of `values[j]`. These are the Gauss quadrature nodes and (squared) weights of the
/// Lanczos process: `e₁ᵀ·f(T)·e₁ = Σⱼ first[j]²·f(values[j])`. O(m²).
///
/// Errors: LENGTH_MISMATCH if offdiag.len() ≠ m − 1; INVALID_ARGUMENT if an entry is not finite.
pub fn eigh_tridiagonal(diag: &[f64], offdiag: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
    let (values, first) = tridiagonal_eigen(diag, offdiag, Components::First)?;
    Ok((values, first))
}

/// Which eigenvector components of a tridiagonal matrix to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Components {
    /// s_j[0] for each j (quadrature weights): m values, O(m²).
    First,
    /// s_j[m−1] for each j (Lanczos residual estimates): m values, O(m²).
    Last,
    /// Every component: m×m row-major, row j = s_j, O(m³).
    All,
}

/// Eigenvalues (ascending) of the tridiagonal (diag, offdiag) and the asked-for components of the
/// eigenvectors, row j for values[j] (one value per row for First/Last). Same errors as
/// [`eigh_tridiagonal`].
pub(crate) fn tridiagonal_eigen(diag: &[f64], offdiag: &[f64], which: Components) -> Result<(Vec<f64>, Vec<f64>)> {
    let what = "eigh_tridiagonal";
    let m = diag.len();
    if offdiag.len() != m.saturating_sub(1) {
        return Err(Error::new(
            ErrorCode::LengthMismatch,
            format!("{what}: offdiag has length {} but diag has length {m}; pass {} off-diagonal values", offdiag.len(), m.saturating_sub(1)),
        ));
    }
    check_finite(what, "diag", diag)?;
    check_finite(what, "offdiag", offdiag)?;
    // A rotation acting on rows i, i+1 of W = Sᵀ mixes each column of W independently, and
    // column c of W holds component c of every eigenvector: to get only the first (or last)
    // components it suffices to rotate that one column, started at e_c.
    let ncols = if which == Components::All { m } else { 1 };
    let mut z = zeros(area(m, ncols, what)?, what)?;
    match which {
        Components::All => (0..m).for_each(|i| z[i * m + i] = 1.0),
        Components::First if m > 0 => z[0] = 1.0,
        Components::Last if m > 0 => z[m - 1] = 1.0,
        _ => {}
    }
    // Scaled to max |entry| = 1 (no overflow in the hypot-free parts of QL).
    let smax = diag.iter().chain(offdiag).fold(0.0f64, |s, x| s.max(x.abs()));
    if smax == 0.0 {
        return Ok((vec![0.0; m], z)); // T = 0: any orthonormal basis, e.g. the identity
    }
    let mut d: Vec<f64> = diag.iter().map(|x| x / smax).collect();
    let mut e: Vec<f64> = offdiag.iter().map(|x| x / smax).chain(std::iter::once(0.0)).collect();
    ql_implicit(&mut d, &mut e, &mut z, ncols)?;
    let (mut values, comps) = sort_ascending(&d, &z, ncols, what)?;
    scale(smax, &mut values);
    Ok((values, comps))
}

/// Implicit QL with Wilkinson shifts on the symmetric tridiagonal T (diagonal d, off-diagonal
/// e, e[n−1] = 0 on entry; both overwritten; d ends as the eigenvalues, unsorted).
///
/// Each rotation Gᵢ of rows/columns (i, i+1) of T is applied as Gᵢᵀ to rows i, i+1 of `z`
/// (n rows of `ncols`): starting from z = Qᵀ (or e_c), z ends as Sᵀ·Qᵀ, i.e. row j is the
/// eigenvector (component) of d[j]. The shift is the eigenvalue of the leading 2×2 block closest
/// to d[l] (Wilkinson), which makes convergence cubic for symmetric T.
///
/// The rotations depend on d and e only, so they are recorded and applied to z in batches, one
/// column panel at a time: the same operations in the same order (bitwise the same z), but z
/// streams through memory once per batch instead of once per sweep, which for n ≳ 1000 (z beyond
/// the caches) is most of the time.
///
/// Errors: INVALID_ARGUMENT (not seen for finite input) if an eigenvalue needs more than
/// [`MAX_QL_SWEEPS`] sweeps.
pub(crate) fn ql_implicit(d: &mut [f64], e: &mut [f64], z: &mut [f64], ncols: usize) -> Result<()> {
    let n = d.len();
    let mut rotations: Vec<(usize, f64, f64)> = Vec::with_capacity(ROTATION_BATCH.min(n.saturating_mul(n)));
    // The scale of T: an off-diagonal is negligible next to its neighbours or to ‖T‖ (EISPACK's
    // tql2 keeps the running version of this). Without the second test, a cluster of eigenvalues
    // near zero (a low-rank matrix: Gauss–Newton matrices are) never splits and QL stalls.
    let norm = (0..n).map(|i| d[i].abs() + e.get(i).map_or(0.0, |x| x.abs())).fold(0.0, f64::max);
    for l in 0..n {
        let mut sweeps = 0;
        loop {
            // Find the first negligible off-diagonal e[m] at or after l: T splits there.
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd || e[m].abs() <= f64::EPSILON * norm {
                    break;
                }
                m += 1;
            }
            if m == l {
                break; // d[l] has converged
            }
            sweeps += 1;
            if sweeps > MAX_QL_SWEEPS {
                return Err(Error::invalid(format!(
                    "eigh_tridiagonal: the QL iteration did not converge for eigenvalue {l} after {MAX_QL_SWEEPS} sweeps; the matrix may contain extreme values"
                )));
            }
            if rotations.len() + (m - l) > ROTATION_BATCH {
                apply_rotations(z, ncols, &rotations);
                rotations.clear();
            }
            // Wilkinson shift from the 2×2 block at l, folded into the first rotation's g.
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut i = m;
            let mut deflated = false;
            // Chase the bulge from the bottom (m) up to l with Givens rotations.
            while i > l {
                i -= 1;
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // Underflow: T splits at i+1; undo the partial shift and restart the search.
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                rotations.push((i, c, s));
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    apply_rotations(z, ncols, &rotations);
    Ok(())
}

/// Applies the recorded rotations in order, rows (i, i+1) of z ← (c·zᵢ − s·zᵢ₊₁, s·zᵢ + c·zᵢ₊₁),
/// one [`PANEL`] of columns at a time (columns transform independently).
fn apply_rotations(z: &mut [f64], ncols: usize, rotations: &[(usize, f64, f64)]) {
    for c0 in (0..ncols).step_by(PANEL) {
        let c1 = (c0 + PANEL).min(ncols);
        for &(i, c, s) in rotations {
            let (top, bottom) = z[i * ncols..(i + 2) * ncols].split_at_mut(ncols);
            for (zi, zj) in top[c0..c1].iter_mut().zip(bottom[c0..c1].iter_mut()) {
                let (x, y) = (*zi, *zj);
                *zi = c * x - s * y;
                *zj = s * x + c * y;
            }
        }
    }
}

/// Sorts the eigenvalues ascending and permutes the rows of z (n rows of `ncols`) to match.
pub(crate) fn sort_ascending(d: &[f64], z: &[f64], ncols: usize, what: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by(|&i, &j| d[i].total_cmp(&d[j]));
    let values = order.iter().map(|&i| d[i]).collect();
    let mut rows = zeros(z.len(), what)?;
    if ncols > 0 {
        for (dst, &src) in rows.chunks_exact_mut(ncols).zip(&order) {
            dst.copy_from_slice(&z[src * ncols..(src + 1) * ncols]);
        }
    }
    Ok((values, rows))
}
