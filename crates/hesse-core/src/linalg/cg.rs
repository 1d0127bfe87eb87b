//! Conjugate gradients for (A + λI)·x = b with A symmetric: the inner solver of Hessian-free /
//! truncated-Newton optimization (Martens 2010), which needs three things beyond a plain solver:
//! damping λ, a warm start x0, and an honest report when the curvature is not positive (a
//! Hessian is indefinite away from a minimum) instead of a silent divergence.
//!
//! Math (Hestenes–Stiefel): r₀ = b − M·x₀, p₀ = r₀; αₖ = rₖᵀrₖ / pₖᵀMpₖ, xₖ₊₁ = xₖ + αₖpₖ,
//! rₖ₊₁ = rₖ − αₖMpₖ, pₖ₊₁ = rₖ₊₁ + (rₖ₊₁ᵀrₖ₊₁ / rₖᵀrₖ)·pₖ, with M = A + λI. For SPD M each step
//! minimizes the quadratic model q(x) = ½xᵀMx − bᵀx over the growing Krylov space; pₖᵀMpₖ ≤ 0
//! proves M is not positive definite along pₖ.

use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::{check_product, LinOp};
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
    drive(op, CgIteration::new(op.size(), b, opts)?, "cg")
}

/// [`cg()`] as a reverse-communication iteration (see [`super::Iteration`]): the warm start's
/// product M·x₀ (when x₀ ≠ 0), then one product A·pₖ per iteration.
pub struct CgIteration {
    lambda: f64,
    b: Vec<f64>,
    x: Vec<f64>,
    r: Vec<f64>,
    p: Vec<f64>,
    ap: Vec<f64>,
    rr: f64,
    thresh: f64,
    model: Vec<f64>,
    min_iter: usize,
    max_iter: usize,
    iterations: usize,
    products: usize,
    /// Whether the pending product is the warm start's A·x₀ (request x) rather than A·p.
    warm: bool,
    done: bool,
    negative_curvature: Option<NegativeCurvature>,
    warm_products: usize,
}

impl CgIteration {
    /// Validates the arguments (same errors as [`cg()`]) for an operator of size n.
    pub fn new(n: usize, b: &[f64], opts: &CgOpts) -> Result<CgIteration> {
        let what = "cg";
        check_len(what, "b", b.len(), n)?;
        check_finite(what, "b", b)?;
        check_damping(opts.damping)?;
        for (name, t) in [("rtol", opts.rtol), ("atol", opts.atol)] {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(Error::invalid(format!("{what}: {name} = {t} must be finite and ≥ 0")));
            }
        }
        let (x, warm) = match &opts.x0 {
            Some(x0) => {
                check_len(what, "x0", x0.len(), n)?;
                check_finite(what, "x0", x0)?;
                (crate::mem::try_copy(x0, what)?, x0.iter().any(|&v| v != 0.0))
            }
            None => (zeros(n, what)?, false),
        };
        let mut it = CgIteration {
            lambda: opts.damping,
            b: crate::mem::try_copy(b, what)?,
            x,
            r: crate::mem::try_copy(b, what)?,
            p: Vec::new(),
            ap: zeros(n, what)?,
            rr: 0.0,
            thresh: (opts.rtol * norm(b)).max(opts.atol),
            model: Vec::new(),
            min_iter: opts.min_iter,
            max_iter: opts.max_iter,
            iterations: 0,
            products: 0,
            warm,
            done: false,
            negative_curvature: None,
            warm_products: usize::from(warm),
        };
        if !warm {
            it.begin()?;
        }
        Ok(it)
    }

    /// q(x) = ½xᵀMx − bᵀx = −½·xᵀ(b + r), without a product.
    fn model_of(&self) -> f64 {
        -0.5 * (dot(&self.x, &self.b) + dot(&self.x, &self.r))
    }

    /// With r₀ final: the model at x₀, p₀ = r₀, and the first stopping test.
    fn begin(&mut self) -> Result<()> {
        self.model = vec![self.model_of()];
        self.p = crate::mem::try_copy(&self.r, "cg")?;
        self.rr = dot(&self.r, &self.r);
        self.test();
        Ok(())
    }

    /// The stopping test before each iteration.
    fn test(&mut self) {
        let rn = self.rr.sqrt();
        self.done = rn == 0.0 || (self.iterations >= self.min_iter && rn <= self.thresh) || self.iterations == self.max_iter;
    }
}

impl Iteration for CgIteration {
    type Output = CgResult;
    fn size(&self) -> usize {
        self.x.len()
    }
    fn request(&self) -> Option<&[f64]> {
        if self.warm {
            Some(&self.x)
        } else if self.done {
            None
        } else {
            Some(&self.p)
        }
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "cg";
        if self.request().is_none() {
            return Err(not_requested(what));
        }
        check_product(what, self.x.len(), product)?;
        self.products += 1;
        self.ap.copy_from_slice(product);
        let lambda = self.lambda;
        if self.warm {
            axpy(lambda, &self.x, &mut self.ap);
            axpy(-1.0, &self.ap, &mut self.r); // r₀ = b − M·x₀
            self.warm = false;
            return self.begin();
        }
        let (p, ap) = (&mut self.p, &mut self.ap);
        axpy(lambda, p, ap);
        let pap = dot(p, ap);
        if pap <= 0.0 {
            let rayleigh = pap / dot(p, p);
            self.negative_curvature = Some(NegativeCurvature { direction: std::mem::take(p), rayleigh });
            self.done = true;
            return Ok(());
        }
        let alpha = self.rr / pap;
        axpy(alpha, p, &mut self.x);
        axpy(-alpha, ap, &mut self.r);
        let rr_next = dot(&self.r, &self.r);
        let beta = rr_next / self.rr;
        self.rr = rr_next;
        for (pi, ri) in p.iter_mut().zip(&self.r) {
            *pi = ri + beta * *pi;
        }
        self.iterations += 1;
        let m = self.model_of();
        crate::mem::try_reserve(&mut self.model, 1, what)?;
        self.model.push(m);
        self.test();
        Ok(())
    }
    fn products(&self) -> usize {
        self.products
    }
    fn max_products(&self) -> usize {
        self.max_iter.saturating_add(self.warm_products)
    }
    fn finish(self) -> Result<CgResult> {
        if self.request().is_some() {
            return Err(not_done("cg"));
        }
        let residual_norm = self.rr.sqrt();
        let converged = residual_norm <= self.thresh;
        Ok(CgResult { x: self.x, iterations: self.iterations, residual_norm, converged, negative_curvature: self.negative_curvature, model: self.model, products: self.products })
    }
}
