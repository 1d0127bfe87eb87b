//! Small dense f64 vector kernels (dot, norm, axpy), Gram–Schmidt against a stored basis, and the
//! fallible allocation and length checks that every linalg entry point shares.

use crate::error::{Error, ErrorCode, Result};

/// ⟨a, b⟩ over the common length. Four partial sums let the compiler vectorize the loop (it may
/// not reassociate one running sum) and make the rounding error grow more slowly than one sum.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        s[0] += x[0] * y[0];
        s[1] += x[1] * y[1];
        s[2] += x[2] * y[2];
        s[3] += x[3] * y[3];
    }
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

/// Euclidean norm ‖a‖₂ (no rescaling: entries near 1e154 overflow; operators here are Hessians
/// and their probes, far from that range).
pub fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// y ← y + alpha·x over the common length.
pub fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// x ← alpha·x.
pub fn scale(alpha: f64, x: &mut [f64]) {
    for xi in x.iter_mut() {
        *xi *= alpha;
    }
}

/// Removes from `w` its components along the orthonormal rows of `basis` (rows of length
/// `w.len()`), by classical Gram–Schmidt run twice ("twice is enough", Kahan/Parlett: one pass
/// of CGS loses orthogonality like κ·ε, the second brings it to ε). `coef` receives the summed
/// coefficients of both passes (length = number of rows), so the caller can fold them into its
/// recurrence coefficients.
pub fn orthogonalize(basis: &[f64], w: &mut [f64], coef: &mut Vec<f64>) {
    let n = w.len();
    coef.clear();
    if n == 0 {
        return; // (chunks_exact(0) would panic)
    }
    let rows = basis.len() / n;
    // coef[..rows] holds the first pass, coef[rows..] the second; summed at the end. The scratch
    // is the caller's, reused across calls (rows ≤ the Krylov dimension: small).
    coef.resize(2 * rows, 0.0);
    for pass in 0..2 {
        let c = &mut coef[pass * rows..(pass + 1) * rows];
        // Classical GS: all coefficients from the same w, then one combined update. Unlike
        // modified GS this reads the basis in long contiguous sweeps.
        for (ci, q) in c.iter_mut().zip(basis.chunks_exact(n)) {
            *ci = dot(q, w);
        }
        for (ci, q) in c.iter().zip(basis.chunks_exact(n)) {
            axpy(-ci, q, w);
        }
    }
    for i in 0..rows {
        coef[i] += coef[rows + i];
    }
    coef.truncate(rows);
}

/// A zeroed f64 vector of `n` elements, or OUT_OF_MEMORY naming `what`.
pub(crate) fn zeros(n: usize, what: &str) -> Result<Vec<f64>> {
    crate::tensor::try_zeros::<f64>(n, what)
}

/// `rows·cols` with overflow reported as OUT_OF_MEMORY (a product that wraps could never be
/// allocated anyway).
pub(crate) fn area(rows: usize, cols: usize, what: &str) -> Result<usize> {
    rows.checked_mul(cols)
        .ok_or_else(|| Error::new(ErrorCode::OutOfMemory, format!("{what}: {rows}×{cols} elements do not fit in memory")))
}

/// Makes room for one more row of `n` in a basis that will hold at most `max_rows` rows: grows
/// geometrically (amortized O(1) copies) but never past `max_rows·n`, so a basis of 300 rows of
/// a million parameters does not reserve twice what it can ever use.
pub(crate) fn reserve_row(v: &mut Vec<f64>, n: usize, max_rows: usize, what: &str) -> Result<()> {
    if v.capacity() - v.len() >= n || n == 0 {
        return Ok(());
    }
    let rows = v.len() / n;
    let target = (2 * rows).max(8).min(max_rows).max(rows + 1); // (not clamp: it panics if 8 > max)
    let extra = (target - rows).saturating_mul(n);
    crate::mem::try_reserve_exact(v, extra, what)
}

/// Reserves room for `extra` more elements.
pub(crate) fn reserve(v: &mut Vec<f64>, extra: usize, what: &str) -> Result<()> {
    crate::mem::try_reserve(v, extra, what)
}

/// LENGTH_MISMATCH unless `got == want`; the message names the function, the argument and both
/// lengths.
pub(crate) fn check_len(what: &str, name: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::LengthMismatch,
            format!("{what}: {name} has length {got} but the operator has size {want}; pass a vector of length {want}"),
        ))
    }
}

/// INVALID_ARGUMENT unless every entry is finite; names the first bad index.
pub(crate) fn check_finite(what: &str, name: &str, v: &[f64]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::invalid(format!("{what}: {name}[{i}] = {} is not finite; pass finite values", v[i]))),
    }
}
