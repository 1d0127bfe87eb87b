//! Conjugate gradients for (A + λI)·x = b with A symmetric: the inner solver of Hessian-free /
//! truncated-Newton optimization (Martens 2010), which needs three things beyond a plain solver:
//! damping λ, a warm start x0, and an honest report when the curvature is not positive (a
//! Hessian is indefinite away from a minimum) instead of a silent divergence.
//!
//! Math (Hestenes–Stiefel): r₀ = b − M·x₀, p₀ = r₀; αₖ = rₖᵀrₖ / pₖᵀMpₖ, xₖ₊₁ = xₖ + αₖpₖ,
//! rₖ₊₁ = rₖ − αₖMpₖ, pₖ₊₁ = rₖ₊₁ + (rₖ₊₁ᵀrₖ₊₁ / rₖᵀrₖ)·pₖ, with M = A + λI. For SPD M each step
//! minimizes the quadratic model q(x) = ½xᵀMx − bᵀx over the growing Krylov space; pₖᵀMpₖ ≤ 0
//! proves M is not positive definite along pₖ.

use super::linop::{apply_checked, LinOp};
use super::vecops::{axpy, check_finite, check_len, dot, norm, zeros};
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct CgOpts {
    /// λ ≥ 0: solve (A + λI)·x = b (Levenberg–Marquardt / Tikhonov damping). Default 0.
    pub damping: f64,
    /// Warm start (HF reuses the previous solution); None = 0. Costs one extra product.
    pub x0: Option<Vec<f64>>,
    /// Stop when ‖r‖ ≤ max(rtol·‖b‖, atol). Defaults 1e-6 and 0.
    pub rtol: f64,
    pub atol: f64,
    /// Most iterations (one product each). Default 1000.
    pub max_iter: usize,
    /// Do not stop on the tolerance before this many iterations (HF's minimum); an exactly zero
    /// residual or non-positive curvature still stops. Default 0.
    pub min_iter: usize,
}

impl Default for CgOpts {
    fn default() -> Self {
        CgOpts { damping: 0.0, x0: None, rtol: 1e-6, atol: 0.0, max_iter: 1000, min_iter: 0 }
    }
}

impl CgOpts {
    /// Default options with damping λ. INVALID_ARGUMENT if λ < 0 or not finite: a negative λ
    /// would move the spectrum toward (or past) zero, the opposite of damping.
    pub fn with_damping(damping: f64) -> Result<CgOpts> {
        check_damping(damping)?;
        Ok(CgOpts { damping, ..CgOpts::default() })
    }
}

fn check_damping(damping: f64) -> Result<()> {
    if !(damping >= 0.0 && damping.is_finite()) {
        return Err(Error::invalid(format!(
            "cg: damping must be ≥ 0 and finite (it adds λ·I to the operator), got {damping}; to shift the spectrum down use Shifted"
        )));
    }
    Ok(())
}

/// A direction along which M = A + λI has non-positive curvature.
#[derive(Clone, Debug)]
pub struct NegativeCurvature {
    /// The search direction p with pᵀ·M·p ≤ 0 (not normalized).
    pub direction: Vec<f64>,
    /// Its Rayleigh quotient pᵀ·M·p / pᵀp ≤ 0, an upper bound on M's smallest eigenvalue.
    pub rayleigh: f64,
}

#[derive(Clone, Debug)]
pub struct CgResult {
    /// The last iterate (before the non-positive direction, if one was met).
    pub x: Vec<f64>,
    pub iterations: usize,
    /// ‖r‖ of the recursively updated residual, which equals ‖b − M·x‖ up to rounding that grows
    /// like ε·κ(M)·‖b‖ (recomputing it would cost a product).
    pub residual_norm: f64,
    /// ‖r‖ ≤ max(rtol·‖b‖, atol) at exit.
    pub converged: bool,
    /// Set when pᵀMp ≤ 0 stopped the iteration (M not positive definite): not an error, the
    /// caller decides (raise the damping, take the direction, or use MINRES).
    pub negative_curvature: Option<NegativeCurvature>,
    /// q(xₖ) = ½xₖᵀMxₖ − bᵀxₖ for k = 0..=iterations (x₀ first), computed without products as
    /// −½·xₖᵀ(b + rₖ): for HF's CG backtracking and its relative-progress stopping rule.
    pub model: Vec<f64>,
    /// Operator products used.
    pub products: usize,
}

/// Conjugate gradients on (A + λI)·x = b.
///
/// PRECONDITION: A symmetric; A + λI positive definite for convergence (otherwise the iteration
/// stops at the first direction of non-positive curvature and reports it).
///
/// Errors: LENGTH_MISMATCH if b or x0 does not have length n; INVALID_ARGUMENT if damping < 0,
/// rtol or atol is negative, or b, x0 or a product is not finite; operator errors pass through.
pub fn cg<O: LinOp + ?Sized>(op: &mut O, b: &[f64], opts: &CgOpts) -> Result<CgResult> {
    let what = "cg";
    let n = op.size();
    check_len(what, "b", b.len(), n)?;
    check_finite(what, "b", b)?;
    check_damping(opts.damping)?;
    for (name, t) in [("rtol", opts.rtol), ("atol", opts.atol)] {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(Error::invalid(format!("{what}: {name} = {t} must be finite and ≥ 0")));
        }
    }
    let lambda = opts.damping;
    let mut products = 0;
    let mut r = crate::mem::try_copy(b, what)?;
    let mut ap = zeros(n, what)?;
    let mut x = match &opts.x0 {
        Some(x0) => {
            check_len(what, "x0", x0.len(), n)?;
            check_finite(what, "x0", x0)?;
            if x0.iter().any(|&v| v != 0.0) {
                apply_checked(op, x0, &mut ap, what)?;
                products += 1;
                axpy(lambda, x0, &mut ap);
                axpy(-1.0, &ap, &mut r); // r₀ = b − M·x₀
            }
            crate::mem::try_copy(x0, what)?
        }
        None => zeros(n, what)?,
    };
    let model_of = |x: &[f64], r: &[f64]| -0.5 * (dot(x, b) + dot(x, r));
    let mut model = vec![model_of(&x, &r)];
    let thresh = (opts.rtol * norm(b)).max(opts.atol);
    let mut p = crate::mem::try_copy(&r, what)?;
    let mut rr = dot(&r, &r);
    let mut iterations = 0;
    let mut negative_curvature = None;
    loop {
        let rn = rr.sqrt();
        if rn == 0.0 || (iterations >= opts.min_iter && rn <= thresh) || iterations == opts.max_iter {
            break;
        }
        apply_checked(op, &p, &mut ap, what)?;
        products += 1;
        axpy(lambda, &p, &mut ap);
        let pap = dot(&p, &ap);
        if pap <= 0.0 {
            let rayleigh = pap / dot(&p, &p);
            negative_curvature = Some(NegativeCurvature { direction: p, rayleigh });
            break;
        }
        let alpha = rr / pap;
        axpy(alpha, &p, &mut x);
        axpy(-alpha, &ap, &mut r);
        let rr_next = dot(&r, &r);
        let beta = rr_next / rr;
        rr = rr_next;
        for (pi, ri) in p.iter_mut().zip(&r) {
            *pi = ri + beta * *pi;
        }
        iterations += 1;
        model.push(model_of(&x, &r));
    }
    let residual_norm = rr.sqrt();
    Ok(CgResult { x, iterations, residual_norm, converged: residual_norm <= thresh, negative_curvature, model, products })
}
