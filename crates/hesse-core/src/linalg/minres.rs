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

use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::{check_product, LinOp};
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
    drive(op, MinresIteration::new(op.size(), b, opts)?, "minres")
}

/// Where [`MinresIteration`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A Lanczos step's product M·v is pending (request v).
    Step,
    /// The true residual's product M·x is pending (request x).
    Residual,
    Done,
}

/// [`minres()`] as a reverse-communication iteration (see [`super::Iteration`]): one product
/// per iteration, then one for the true residual.
pub struct MinresIteration {
    b: Vec<f64>,
    shift: f64,
    max_iter: usize,
    thresh: f64,
    ls_tol: f64,
    x: Vec<f64>,
    // Lanczos vectors: r1, r2 are the previous two unnormalized ones, y the new one.
    r1: Vec<f64>,
    r2: Vec<f64>,
    y: Vec<f64>,
    v: Vec<f64>,
    // w, w1, w2: the last three search directions (columns of Q_k·R_k⁻¹).
    w: Vec<f64>,
    w1: Vec<f64>,
    w2: Vec<f64>,
    beta: f64,
    oldb: f64,
    dbar: f64,
    epsln: f64,
    phibar: f64,
    cs: f64,
    sn: f64,
    /// ‖T_k‖_F² (SciPy's tnorm2): the scale that γ and β are "tiny" against.
    tnorm2: f64,
    iterations: usize,
    residual_norm: f64,
    phase: Phase,
}

impl MinresIteration {
    /// Validates the arguments (same errors as [`minres()`]) for an operator of size n.
    pub fn new(n: usize, b: &[f64], opts: &MinresOpts) -> Result<MinresIteration> {
        let what = "minres";
        check_len(what, "b", b.len(), n)?;
        check_finite(what, "b", b)?;
        if !opts.shift.is_finite() {
            return Err(Error::invalid(format!("{what}: shift = {} must be finite", opts.shift)));
        }
        if !(opts.rtol >= 0.0 && opts.rtol.is_finite()) {
            return Err(Error::invalid(format!("{what}: rtol = {} must be finite and ≥ 0", opts.rtol)));
        }
        let x = zeros(n, what)?;
        let beta1 = norm(b);
        let mut it = MinresIteration {
            b: crate::mem::try_copy(b, what)?,
            shift: opts.shift,
            max_iter: opts.max_iter,
            thresh: opts.rtol * beta1,
            ls_tol: opts.rtol.max(BREAKDOWN),
            x,
            r1: Vec::new(),
            r2: Vec::new(),
            y: Vec::new(),
            v: Vec::new(),
            w: Vec::new(),
            w1: Vec::new(),
            w2: Vec::new(),
            beta: beta1,
            oldb: 0.0,
            dbar: 0.0,
            epsln: 0.0,
            phibar: beta1,
            cs: -1.0,
            sn: 0.0,
            tnorm2: 0.0,
            iterations: 0,
            residual_norm: 0.0,
            phase: Phase::Done,
        };
        if beta1 == 0.0 {
            return Ok(it); // x = 0 solves it exactly, no product needed
        }
        it.r1 = crate::mem::try_copy(b, what)?;
        it.r2 = crate::mem::try_copy(b, what)?;
        it.y = zeros(n, what)?;
        it.v = zeros(n, what)?;
        (it.w, it.w1, it.w2) = (zeros(n, what)?, zeros(n, what)?, zeros(n, what)?);
        it.next();
        Ok(it)
    }

    /// The loop test: another iteration (v = r2/β, request v), or the true residual (request x).
    fn next(&mut self) {
        if self.iterations < self.max_iter && self.phibar > self.thresh {
            self.iterations += 1;
            // Lanczos step: v = r2/β, y = M·v − (β/β_old)·r1 − (α/β)·r2.
            for (vi, ri) in self.v.iter_mut().zip(&self.r2) {
                *vi = ri / self.beta;
            }
            self.phase = Phase::Step;
        } else {
            self.phase = Phase::Residual;
        }
    }

    /// The rest of one iteration, y = M·v − … given A·v in y. Returns false to stop early
    /// (breakdown or a least-squares solution).
    fn step(&mut self) -> bool {
        let y = &mut self.y;
        axpy(self.shift, &self.v, y);
        if self.iterations >= 2 {
            axpy(-self.beta / self.oldb, &self.r1, y);
        }
        let alfa = dot(&self.v, y);
        axpy(-alfa / self.beta, &self.r2, y);
        std::mem::swap(&mut self.r1, &mut self.r2); // r1 ← r2
        self.r2.copy_from_slice(y); //                 r2 ← y
        self.oldb = self.beta;
        self.beta = norm(&self.r2);
        let (beta, oldb) = (self.beta, self.oldb);
        self.tnorm2 += alfa * alfa + oldb * oldb + beta * beta;
        // Apply the previous rotation to the new column of T̄, then make the new one.
        let oldeps = self.epsln;
        let delta = self.cs * self.dbar + self.sn * alfa;
        let gbar = self.sn * self.dbar - self.cs * alfa;
        self.epsln = self.sn * beta;
        self.dbar = -self.cs * beta;
        // ‖M·r_{k−1}‖ = φ̄_{k−1}·‖(γ̄_k, δ̄_{k+1})‖ (SciPy's Arnorm): r_{k−1} ⟂ range(M) to
        // `ls_tol` makes x_{k−1} a least-squares solution. It bounds γ_k from below, so this also
        // stops a singular pivot before it is used (see the module doc).
        if gbar.hypot(self.dbar) <= self.ls_tol * self.tnorm2.sqrt() {
            return false;
        }
        let gamma = gbar.hypot(beta);
        self.cs = gbar / gamma;
        self.sn = beta / gamma;
        let phi = self.cs * self.phibar;
        self.phibar *= self.sn;
        // w = (v − ε_old·w1 − δ·w2)/γ, then x += φ·w.
        std::mem::swap(&mut self.w1, &mut self.w2);
        std::mem::swap(&mut self.w2, &mut self.w); // (w1, w2, w) ← (w2_old, w_old, w1_old): w is scratch
        for (((wi, vi), a), b2) in self.w.iter_mut().zip(&self.v).zip(&self.w1).zip(&self.w2) {
            *wi = (vi - oldeps * a - delta * b2) / gamma;
        }
        axpy(phi, &self.w, &mut self.x);
        // Invariant Krylov space: x is the exact minimizer; the next v would be noise/β.
        beta > BREAKDOWN * self.tnorm2.sqrt()
    }
}

impl Iteration for MinresIteration {
    type Output = MinresResult;
    fn size(&self) -> usize {
        self.x.len()
    }
    fn request(&self) -> Option<&[f64]> {
        match self.phase {
            Phase::Step => Some(&self.v),
            Phase::Residual => Some(&self.x),
            Phase::Done => None,
        }
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "minres";
        if self.phase == Phase::Done {
            return Err(not_requested(what));
        }
        check_product(what, self.x.len(), product)?;
        self.y.copy_from_slice(product);
        if self.phase == Phase::Step {
            if self.step() {
                self.next();
            } else {
                self.phase = Phase::Residual;
            }
            return Ok(());
        }
        // The true residual b − M·x (y is free scratch now).
        axpy(self.shift, &self.x, &mut self.y);
        self.residual_norm = self.y.iter().zip(&self.b).map(|(mx, bi)| (bi - mx) * (bi - mx)).sum::<f64>().sqrt();
        self.phase = Phase::Done;
        Ok(())
    }
    fn products(&self) -> usize {
        match self.phase {
            Phase::Step => self.iterations - 1,
            Phase::Residual => self.iterations,
            Phase::Done if self.r1.is_empty() => 0,
            Phase::Done => self.iterations + 1,
        }
    }
    fn max_products(&self) -> usize {
        if self.r1.is_empty() { 0 } else { self.max_iter.saturating_add(1) }
    }
    fn finish(self) -> Result<MinresResult> {
        if self.phase != Phase::Done {
            return Err(not_done("minres"));
        }
        if self.r1.is_empty() {
            return Ok(MinresResult { x: self.x, iterations: 0, residual_norm: 0.0, converged: true, products: 0 });
        }
        let converged = self.residual_norm <= self.thresh;
        Ok(MinresResult { x: self.x, iterations: self.iterations, residual_norm: self.residual_norm, converged, products: self.iterations + 1 })
    }
}
