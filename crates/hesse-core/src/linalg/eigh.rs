//! Dense symmetric eigensolvers: Householder tridiagonalization followed by the implicit QL
//! algorithm with Wilkinson shifts (EISPACK tred2/tql2, Numerical Recipes tqli), O(n³).
//!
//! Eigenvector layout, everywhere in this module: an n×n row-major buffer whose ROW j is the unit
//! eigenvector for `values[j]` (equivalently V stored column-major, with A = V·diag(λ)·Vᵀ).
//! Rows are what the QL rotations touch, so they stay contiguous in memory.

use super::vecops::{area, axpy, check_finite, dot, norm, zeros};
use crate::error::{Error, ErrorCode, Result};

/// Relative asymmetry max|aᵢⱼ − aⱼᵢ| / max|aᵢⱼ| above which [`eigh`] refuses the matrix.
const ASYMMETRY_TOL: f64 = 1e-6;
/// QL sweeps allowed per eigenvalue; 1–2 are typical (cubic convergence), 30 is EISPACK's limit.
const MAX_QL_SWEEPS: usize = 60;

/// Eigen-decomposition A = V·diag(λ)·Vᵀ of a dense symmetric n×n matrix `a` (row-major).
///
/// Returns `(values, vectors)`: eigenvalues ascending, and an n×n row-major buffer whose row j is
/// the unit eigenvector of `values[j]`. Reads A as (A + Aᵀ)/2.
///
/// Accuracy: backward stable; residuals ‖A·vⱼ − λⱼ·vⱼ‖ and |VᵀV − I| are O(n·ε·‖A‖).
/// Cost: about (10/3)n³ flops for the reduction and its accumulation plus ~6n³ for QL.
///
/// Errors: LENGTH_MISMATCH if a.len() ≠ n·n; INVALID_ARGUMENT if an entry is not finite or if A
/// is not symmetric (max|aᵢⱼ − aⱼᵢ| > 1e-6·max|aᵢⱼ|); OUT_OF_MEMORY for the 2n² workspace.
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
    // Scale to max|a| = 1 (no overflow in the norms below, however large A is), symmetrizing.
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
    let t0 = std::time::Instant::now();
    let (mut d, mut e, betas) = tridiagonalize(&mut m, n);
    let t1 = t0.elapsed().as_secs_f64();
    accumulate_q_transposed(&m, &betas, n, &mut w);
    let t2 = t0.elapsed().as_secs_f64();
    ql_implicit(&mut d, &mut e, &mut w, n)?;
    eprintln!("TIMING tri {t1:.2} acc {:.2} ql {:.2}", t2 - t1, t0.elapsed().as_secs_f64() - t2);
    let (mut values, vectors) = sort_ascending(&d, &w, n, what)?;
    for x in values.iter_mut() {
        *x *= amax;
    }
    Ok((values, vectors))
}

/// Eigenvalues and first eigenvector components of the symmetric tridiagonal matrix T with
/// diagonal `diag` (length m) and off-diagonal `offdiag` (length m − 1; empty when m ≤ 1).
///
/// Returns `(values ascending, first)`, where first[j] = s_j[0], the first component of the unit
/// eigenvector of values[j]. These are the Gauss quadrature nodes and (squared) weights of the
/// Lanczos process: e₁ᵀ·f(T)·e₁ = Σⱼ first[j]²·f(values[j]). O(m²).
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
    let scale = diag.iter().chain(offdiag).fold(0.0f64, |s, x| s.max(x.abs()));
    if scale == 0.0 {
        return Ok((vec![0.0; m], z)); // T = 0: any orthonormal basis, e.g. the identity
    }
    let mut d: Vec<f64> = diag.iter().map(|x| x / scale).collect();
    let mut e: Vec<f64> = offdiag.iter().map(|x| x / scale).chain(std::iter::once(0.0)).collect();
    ql_implicit(&mut d, &mut e, &mut z, ncols)?;
    let (mut values, comps) = sort_ascending(&d, &z, ncols, what)?;
    for x in values.iter_mut() {
        *x *= scale;
    }
    Ok((values, comps))
}

/// Reduces the symmetric matrix `a` (n×n row-major, both triangles stored) to tridiagonal form
/// T = Qᵀ·A·Q with Q = H₀·H₁·…·H_{n−3}, Hₖ = I − βₖ·vₖ·vₖᵀ acting on indices k+1..n.
///
/// Returns (d, e, β): T's diagonal, its off-diagonal (length n, e[n−1] = 0 for QL) and the βₖ.
/// Each vₖ is left in row k of `a`, columns k+1..n (entries no longer needed).
fn tridiagonalize(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut e = vec![0.0; n];
    let mut betas = vec![0.0; n.saturating_sub(2)];
    let mut p = vec![0.0; n];
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
        let p = &mut p[..m];
        for (i, pi) in p.iter_mut().enumerate() {
            *pi = beta * dot(&tail[i * n + k + 1..i * n + n], v);
        }
        let kk = 0.5 * beta * dot(v, p);
        axpy(-kk, v, p);
        for i in 0..m {
            let row = &mut tail[i * n + k + 1..i * n + n];
            axpy(-v[i], p, row);
            axpy(-p[i], v, row);
        }
    }
    if n >= 2 {
        e[n - 2] = a[(n - 2) * n + n - 1];
    }
    let d = (0..n).map(|i| a[i * n + i]).collect();
    (d, e, betas)
}

/// Writes Qᵀ into `w` (n×n row-major, zeroed on entry), from the reflectors left in `a` by
/// [`tridiagonalize`]. Q = H₀·(H₁·(…·H_{n−3})) is built from the innermost factor outward: when
/// Hₖ is applied, the partial product differs from I only in rows/columns k+1..n, so each step
/// costs 4(n−k)² flops instead of 4n². A final in-place transpose gives Qᵀ, whose rows the QL
/// rotations then turn into eigenvectors.
fn accumulate_q_transposed(a: &[f64], betas: &[f64], n: usize, w: &mut [f64]) {
    for i in 0..n {
        w[i * n + i] = 1.0;
    }
    let mut t = vec![0.0; n];
    for k in (0..betas.len()).rev() {
        let beta = betas[k];
        if beta == 0.0 {
            continue;
        }
        let v = &a[k * n + k + 1..k * n + n];
        // Hₖ·M = M − β·v·(vᵀM) on the block rows/cols k+1..n: t = vᵀM, then the rank-1 update.
        let t = &mut t[k + 1..n];
        t.fill(0.0);
        for (i, vi) in v.iter().enumerate() {
            let r = (k + 1 + i) * n;
            axpy(*vi, &w[r + k + 1..r + n], t);
        }
        for (i, vi) in v.iter().enumerate() {
            let r = (k + 1 + i) * n;
            axpy(-beta * vi, t, &mut w[r + k + 1..r + n]);
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            w.swap(i * n + j, j * n + i);
        }
    }
}

/// Implicit QL with Wilkinson shifts on the symmetric tridiagonal T (diagonal d, off-diagonal
/// e, e[n−1] = 0 on entry; both overwritten; d ends as the eigenvalues, unsorted).
///
/// Each rotation Gᵢ of rows/columns (i, i+1) of T is applied as Gᵢᵀ to rows i, i+1 of `z`
/// (n rows of `ncols`): starting from z = Qᵀ (or e_c), z ends as Sᵀ·Qᵀ, i.e. row j is the
/// eigenvector (component) of d[j]. The shift is the eigenvalue of the leading 2×2 block closest
/// to d[l] (Wilkinson), which makes convergence cubic for symmetric T.
///
/// Errors: INVALID_ARGUMENT (cannot happen for finite input in practice) if an eigenvalue needs
/// more than [`MAX_QL_SWEEPS`] sweeps.
fn ql_implicit(d: &mut [f64], e: &mut [f64], z: &mut [f64], ncols: usize) -> Result<()> {
    let n = d.len();
    for l in 0..n {
        let mut sweeps = 0;
        loop {
            // Find the first negligible off-diagonal e[m] at or after l: T splits there.
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
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
                    "eigh: the QL iteration did not converge for eigenvalue {l} after {MAX_QL_SWEEPS} sweeps; the matrix may contain extreme values"
                )));
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
                rotate_rows(z, ncols, i, c, s);
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    Ok(())
}

/// Rows (i, i+1) of z ← (c·zᵢ − s·zᵢ₊₁, s·zᵢ + c·zᵢ₊₁).
#[inline]
fn rotate_rows(z: &mut [f64], ncols: usize, i: usize, c: f64, s: f64) {
    let (top, bottom) = z[i * ncols..(i + 2) * ncols].split_at_mut(ncols);
    for (zi, zj) in top.iter_mut().zip(bottom.iter_mut()) {
        let (x, y) = (*zi, *zj);
        *zi = c * x - s * y;
        *zj = s * x + c * y;
    }
}

/// Sorts the eigenvalues ascending and permutes the rows of z (n rows of `ncols`) to match.
fn sort_ascending(d: &[f64], z: &[f64], ncols: usize, what: &str) -> Result<(Vec<f64>, Vec<f64>)> {
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
