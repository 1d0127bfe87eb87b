//! Power iteration with deflation (PyHessian's `eigenvalues`, Yao et al. 2020): the top-k
//! eigenvalues by magnitude, one at a time, each run on the operator with the previous
//! eigenvectors projected out. Kept as a baseline to compare [`super::lanczos()`] against: it
//! needs far more products when |λ_{i+1}/λᵢ| is close to 1 (error ∝ |λ_{i+1}/λᵢ|^{2t}).

use super::linop::{apply_checked, LinOp};
use super::rng::Rng;
use super::vecops::{area, axpy, dot, norm, orthogonalize, reserve, scale, zeros};
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct PowerOpts {
    /// Most iterations (= products) per eigenpair. Default 1000.
    pub max_iter: usize,
    /// Stop an eigenpair when its Rayleigh quotient changes by ≤ tol·|λ| between two iterations
    /// (PyHessian's rule; it can stop early when convergence is slow: see the residuals).
    /// Default 1e-8.
    pub tol: f64,
    /// Seed of the Gaussian start vectors.
    pub seed: u64,
}

impl Default for PowerOpts {
    fn default() -> Self {
        PowerOpts { max_iter: 1000, tol: 1e-8, seed: 0 }
    }
}

#[derive(Clone, Debug)]
pub struct PowerResult {
    /// The eigenvalue estimates (Rayleigh quotients, signed), in the order found: by decreasing
    /// magnitude when each run converged.
    pub values: Vec<f64>,
    /// k×n row-major, row i the unit vector whose Rayleigh quotient is `values[i]`.
    pub vectors: Vec<f64>,
    /// ‖A·vᵢ − λᵢ·vᵢ‖ of the returned vectors (on the deflated operator).
    pub residuals: Vec<f64>,
    /// Iterations used by each eigenpair.
    pub iterations: Vec<usize>,
    /// Operator products used in all.
    pub products: usize,
    /// Whether every eigenpair met the tolerance within max_iter.
    pub converged: bool,
}

/// Top-k eigenpairs by magnitude by power iteration with deflation: for i = 0..k, iterate
/// v ← P·A·v/‖P·A·v‖ with P = I − Σ_{j<i} vⱼvⱼᵀ, λ = vᵀ·A·v.
///
/// PRECONDITION: `op` is symmetric. With eigenvalues ±λ of equal magnitude the iteration does
/// not converge to either: v settles into a two-cycle a·u₊ ± b·u₋ whose Rayleigh quotient
/// λ(a² − b²)/(a² + b²) is constant but no eigenvalue, so a stop needs a small residual too
/// (below); such a run reports converged = false.
///
/// Errors: INVALID_ARGUMENT if k = 0 or k > n, max_iter = 0, or tol is negative or not finite;
/// errors of the operator pass through.
pub fn power_iteration<O: LinOp + ?Sized>(op: &mut O, k: usize, opts: &PowerOpts) -> Result<PowerResult> {
    let what = "power_iteration";
    let n = op.size();
    if k == 0 || k > n {
        return Err(Error::invalid(format!("{what}: k = {k} is out of range; ask for 1 ≤ k ≤ n = {n} eigenvalues")));
    }
    if opts.max_iter == 0 {
        return Err(Error::invalid(format!("{what}: max_iter must be ≥ 1")));
    }
    if !(opts.tol >= 0.0 && opts.tol.is_finite()) {
        return Err(Error::invalid(format!("{what}: tol = {} must be finite and ≥ 0", opts.tol)));
    }
    let mut rng = Rng::new(opts.seed);
    let mut found: Vec<f64> = Vec::new(); // the converged vectors, rows of length n
    reserve(&mut found, area(k, n, what)?, what)?;
    let (mut v, mut av) = (zeros(n, what)?, zeros(n, what)?);
    let mut coef = Vec::new();
    let (mut values, mut residuals, mut iterations) = (Vec::new(), Vec::new(), Vec::new());
    let (mut products, mut converged) = (0, true);
    for _ in 0..k {
        rng.fill_gaussian(&mut v);
        orthogonalize(&found, &mut v, &mut coef);
        scale(1.0 / norm(&v), &mut v);
        let (mut prev, mut done, mut iters) = (f64::NAN, false, 0);
        let mut lambda;
        loop {
            apply_checked(op, &v, &mut av, what)?;
            products += 1;
            iters += 1;
            // Deflation: project the product off the found eigenvectors, i.e. iterate with
            // P·A·P (v is already ⟂ them), whose top eigenpair is the next one of A.
            orthogonalize(&found, &mut av, &mut coef);
            lambda = dot(&v, &av);
            let avn = norm(&av);
            // A steady Rayleigh quotient alone is not an eigenvalue (the ±λ two-cycle above has
            // one; the fuzz suite found "converged" values of −1.716 for a spectrum ±3.05, ±0.91,
            // 0). So also ‖A·v − λ·v‖ ≤ max(10·√tol, 1e-6)·‖A·v‖: at a true stop the Rayleigh
            // error is ≈ residual²/gap, so tol on λ means about √tol on the residual.
            let steady = (lambda - prev).abs() <= opts.tol * lambda.abs();
            let resid = || av.iter().zip(&v).map(|(a, x)| (a - lambda * x) * (a - lambda * x)).sum::<f64>().sqrt();
            if avn == 0.0 || (steady && resid() <= (10.0 * opts.tol.sqrt()).max(1e-6) * avn) {
                done = true; // (‖A·v‖ = 0: v is in the deflated operator's null space, λ = 0)
                break;
            }
            if iters == opts.max_iter {
                break; // v and av still belong together: λ and the residual below are v's
            }
            prev = lambda;
            v.copy_from_slice(&av);
            scale(1.0 / avn, &mut v);
        }
        converged &= done;
        axpy(-lambda, &v, &mut av);
        let residual = norm(&av);
        values.push(lambda);
        residuals.push(residual);
        iterations.push(iters);
        crate::mem::try_reserve(&mut found, v.len(), what)?;
        found.extend_from_slice(&v);
    }
    Ok(PowerResult { values, vectors: found, residuals, iterations, products, converged })
}
