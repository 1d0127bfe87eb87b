//! MINRES (Paige & Saunders 1975) for (A + shift·I)·x = b with A symmetric and possibly
//! indefinite — where CG breaks down (a saddle point's Hessian, Newton steps off a minimum).
//!
//! Math: the Lanczos process from q₁ = b/‖b‖ gives A·Q_k = Q_{k+1}·T̄_k; MINRES picks
//! x_k = Q_k·y minimizing ‖b − M·x‖ = ‖β₁e₁ − T̄_k·y‖ over the Krylov space, solving that small
//! least-squares problem by Givens QR updated one column per step. The residual norm is
//! monotone and known without forming it (φ̄_k). Short recurrences: O(n) memory, no
//! reorthogonalization (loss of orthogonality slows convergence but does not break it).
//! This follows SciPy's `minres` (itself from Paige–Saunders' MINRES), without preconditioner.
//!
//! Breakdown: the step's pivot γ_k = ‖(γ̄_k, β_{k+1})‖ is the last diagonal of R_k, so
//! γ_k ≥ σ_min(T̄_k) ≥ σ_min(M). γ_k ≈ 0 (to rounding, relative to ‖T_k‖) happens only when the
//! Krylov space is invariant (β_{k+1} ≈ 0) AND M is singular on it — a singular system with b
//! not in the range of M. That step does not lower the exact residual (φ̄_k = φ̄_{k−1}) and its
//! direction w = (…)/γ_k is rounding noise amplified by 1/γ_k (x would blow up to ~1/ε while
//! φ̄ shrinks by a meaningless sn = β/γ), so MINRES stops before it: x_{k−1} is then the
//! minimum-residual (least-squares) iterate. The test is on ‖M·r_{k−1}‖/‖r_{k−1}‖ =
//! ‖(γ̄_k, δ̄_{k+1})‖ ≤ γ_k, which also stops a least-squares solution reached gradually (with
//! loss of orthogonality the breakdown is not clean). A tiny β_{k+1} alone (invariant space, M regular
//! on it) ends the iteration after its step. Either way the reported residual is the true
//! ‖b − M·x‖, from one more product at exit.

use super::linop::{apply_checked, LinOp};
use super::vecops::{axpy, check_finite, check_len, dot, norm, zeros};
use crate::error::{Error, Result};

/// β_{k+1} (or, with rtol below it, ‖M·r‖/‖r‖) at most this fraction of ‖T_k‖_F is a breakdown:
/// rounding level (a breakdown sits at ~10–100 ε), far below any σ_min of a usable system.
const BREAKDOWN: f64 = 1e-12;

#[derive(Clone, Debug)]
pub struct MinresOpts {
    /// Solve (A + shift·I)·x = b. NOTE the sign: it matches [`super::Shifted`] and CG's damping;
    /// SciPy's `minres(shift=σ)` solves (A − σI)·x = b. Default 0.
    pub shift: f64,
    /// Stop when the residual estimate ‖b − M·x‖ ≤ rtol·‖b‖ (converged), or when
    /// ‖M·r‖ ≤ rtol·‖T_k‖_F·‖r‖: x is then a least-squares solution (SciPy's istop = 2; the
    /// only exit of a singular system with b not in the range). Default 1e-8.
    pub rtol: f64,
    /// Most iterations (one product each). Default 1000.
    pub max_iter: usize,
}

impl Default for MinresOpts {
    fn default() -> Self {
        MinresOpts { shift: 0.0, rtol: 1e-8, max_iter: 1000 }
    }
}

#[derive(Clone, Debug)]
pub struct MinresResult {
    pub x: Vec<f64>,
    pub iterations: usize,
    /// The true ‖b − M·x‖ of the returned x (computed with one product at exit).
    pub residual_norm: f64,
    /// residual_norm ≤ rtol·‖b‖. When M is singular and b is not in its range this never holds;
    /// x is then the minimum-residual (least-squares) iterate.
    pub converged: bool,
    /// Operator products used: one per iteration, plus one for the true residual at exit.
    pub products: usize,
}

/// MINRES on (A + shift·I)·x = b from x₀ = 0.
///
/// PRECONDITION: A symmetric (indefinite is fine).
/// Errors: LENGTH_MISMATCH if b does not have length n; INVALID_ARGUMENT if shift or rtol is not
/// finite, rtol < 0, or b or a product is not finite; operator errors pass through.
pub fn minres<O: LinOp + ?Sized>(op: &mut O, b: &[f64], opts: &MinresOpts) -> Result<MinresResult> {
    let what = "minres";
    let n = op.size();
    check_len(what, "b", b.len(), n)?;
    check_finite(what, "b", b)?;
    if !opts.shift.is_finite() {
        return Err(Error::invalid(format!("{what}: shift = {} must be finite", opts.shift)));
    }
    if !(opts.rtol >= 0.0 && opts.rtol.is_finite()) {
        return Err(Error::invalid(format!("{what}: rtol = {} must be finite and ≥ 0", opts.rtol)));
    }
    let mut x = zeros(n, what)?;
    let beta1 = norm(b);
    if beta1 == 0.0 {
        return Ok(MinresResult { x, iterations: 0, residual_norm: 0.0, converged: true, products: 0 });
    }
    let thresh = opts.rtol * beta1;
    let ls_tol = opts.rtol.max(BREAKDOWN);
    // Lanczos vectors: r1, r2 are the previous two unnormalized ones, y the new one.
    let mut r1 = crate::mem::try_copy(b, what)?;
    let mut r2 = crate::mem::try_copy(b, what)?;
    let mut y = zeros(n, what)?;
    let mut v = zeros(n, what)?;
    // w, w1, w2: the last three search directions (columns of Q_k·R_k⁻¹).
    let (mut w, mut w1, mut w2) = (zeros(n, what)?, zeros(n, what)?, zeros(n, what)?);
    let (mut beta, mut oldb) = (beta1, 0.0);
    let (mut dbar, mut epsln, mut phibar) = (0.0, 0.0, beta1);
    let (mut cs, mut sn) = (-1.0f64, 0.0f64);
    // ‖T_k‖_F² (SciPy's tnorm2): the scale that γ and β are "tiny" against.
    let mut tnorm2 = 0.0;
    let mut iterations = 0;
    while iterations < opts.max_iter && phibar > thresh {
        iterations += 1;
        // Lanczos step: v = r2/β, y = M·v − (β/β_old)·r1 − (α/β)·r2.
        for (vi, ri) in v.iter_mut().zip(&r2) {
            *vi = ri / beta;
        }
        apply_checked(op, &v, &mut y, what)?;
        axpy(opts.shift, &v, &mut y);
        if iterations >= 2 {
            axpy(-beta / oldb, &r1, &mut y);
        }
        let alfa = dot(&v, &y);
        axpy(-alfa / beta, &r2, &mut y);
        std::mem::swap(&mut r1, &mut r2); // r1 ← r2
        r2.copy_from_slice(&y); //           r2 ← y
        oldb = beta;
        beta = norm(&r2);
        tnorm2 += alfa * alfa + oldb * oldb + beta * beta;
        // Apply the previous rotation to the new column of T̄, then make the new one.
        let oldeps = epsln;
        let delta = cs * dbar + sn * alfa;
        let gbar = sn * dbar - cs * alfa;
        epsln = sn * beta;
        dbar = -cs * beta;
        // ‖M·r_{k−1}‖ = φ̄_{k−1}·‖(γ̄_k, δ̄_{k+1})‖ (SciPy's Arnorm): r_{k−1} ⟂ range(M) to
        // `ls_tol` makes x_{k−1} a least-squares solution. It bounds γ_k from below, so this also
        // stops a singular pivot before it is used (see the module doc).
        if gbar.hypot(dbar) <= ls_tol * tnorm2.sqrt() {
            break;
        }
        let gamma = gbar.hypot(beta);
        cs = gbar / gamma;
        sn = beta / gamma;
        let phi = cs * phibar;
        phibar *= sn;
        // w = (v − ε_old·w1 − δ·w2)/γ, then x += φ·w.
        std::mem::swap(&mut w1, &mut w2);
        std::mem::swap(&mut w2, &mut w); // (w1, w2, w) ← (w2_old, w_old, w1_old): w is scratch
        for (((wi, vi), a), b2) in w.iter_mut().zip(&v).zip(&w1).zip(&w2) {
            *wi = (vi - oldeps * a - delta * b2) / gamma;
        }
        axpy(phi, &w, &mut x);
        if beta <= BREAKDOWN * tnorm2.sqrt() {
            break; // invariant Krylov space: x is the exact minimizer; the next v would be noise/β
        }
    }
    // The true residual b − M·x (y is free scratch now).
    apply_checked(op, &x, &mut y, what)?;
    axpy(opts.shift, &x, &mut y);
    let residual_norm = y.iter().zip(b).map(|(mx, bi)| (bi - mx) * (bi - mx)).sum::<f64>().sqrt();
    Ok(MinresResult { x, iterations, residual_norm, converged: residual_norm <= thresh, products: iterations + 1 })
}
