//! Power iteration with deflation (PyHessian's `eigenvalues`, Yao et al. 2020): the top-k
//! eigenvalues by magnitude, one at a time, each run on the operator with the previous
//! eigenvectors projected out. Kept as a baseline to compare [`super::lanczos()`] against: it
//! needs far more products when |λ_{i+1}/λᵢ| is close to 1 (error ∝ |λ_{i+1}/λᵢ|^{2t}).

use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::{check_product, LinOp};
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
    drive(op, PowerIteration::new(op.size(), k, opts)?, "power_iteration")
}

/// [`power_iteration`] as a reverse-communication iteration (see [`super::Iteration`]): one
/// product per iteration of each eigenpair in turn; the request is the current unit v.
pub struct PowerIteration {
    k: usize,
    max_iter: usize,
    tol: f64,
    rng: Rng,
    /// The converged vectors, rows of length n.
    found: Vec<f64>,
    v: Vec<f64>,
    av: Vec<f64>,
    coef: Vec<f64>,
    values: Vec<f64>,
    residuals: Vec<f64>,
    iterations: Vec<usize>,
    products: usize,
    converged: bool,
    /// The current eigenpair's previous Rayleigh quotient and iterations.
    prev: f64,
    iters: usize,
}

impl PowerIteration {
    /// Validates the arguments (same errors as [`power_iteration`]) for an operator of size n.
    pub fn new(n: usize, k: usize, opts: &PowerOpts) -> Result<PowerIteration> {
        let what = "power_iteration";
        if k == 0 || k > n {
            return Err(Error::invalid(format!("{what}: k = {k} is out of range; ask for 1 ≤ k ≤ n = {n} eigenvalues")));
        }
        if opts.max_iter == 0 {
            return Err(Error::invalid(format!("{what}: max_iter must be ≥ 1")));
        }
        if !(opts.tol >= 0.0 && opts.tol.is_finite()) {
            return Err(Error::invalid(format!("{what}: tol = {} must be finite and ≥ 0", opts.tol)));
        }
        let mut found: Vec<f64> = Vec::new();
        reserve(&mut found, area(k, n, what)?, what)?;
        let mut it = PowerIteration {
            k,
            max_iter: opts.max_iter,
            tol: opts.tol,
            rng: Rng::new(opts.seed),
            found,
            v: zeros(n, what)?,
            av: zeros(n, what)?,
            coef: Vec::new(),
            values: Vec::new(),
            residuals: Vec::new(),
            iterations: Vec::new(),
            products: 0,
            converged: true,
            prev: f64::NAN,
            iters: 0,
        };
        it.start_pair();
        Ok(it)
    }

    /// A Gaussian start vector ⟂ the found eigenvectors, normalized.
    fn start_pair(&mut self) {
        self.rng.fill_gaussian(&mut self.v);
        orthogonalize(&self.found, &mut self.v, &mut self.coef);
        scale(1.0 / norm(&self.v), &mut self.v);
        (self.prev, self.iters) = (f64::NAN, 0);
    }

    fn done(&self) -> bool {
        self.values.len() == self.k
    }
}

impl Iteration for PowerIteration {
    type Output = PowerResult;
    fn size(&self) -> usize {
        self.v.len()
    }
    fn request(&self) -> Option<&[f64]> {
        (!self.done()).then_some(&self.v[..])
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "power_iteration";
        if self.done() {
            return Err(not_requested(what));
        }
        check_product(what, self.v.len(), product)?;
        self.av.copy_from_slice(product);
        self.products += 1;
        self.iters += 1;
        let (v, av) = (&mut self.v, &mut self.av);
        // Deflation: project the product off the found eigenvectors, i.e. iterate with
        // P·A·P (v is already ⟂ them), whose top eigenpair is the next one of A.
        orthogonalize(&self.found, av, &mut self.coef);
        let lambda = dot(v, av);
        let avn = norm(av);
        // A steady Rayleigh quotient alone is not an eigenvalue (the ±λ two-cycle above has
        // one; the fuzz suite found "converged" values of −1.716 for a spectrum ±3.05, ±0.91,
        // 0). So also ‖A·v − λ·v‖ ≤ max(10·√tol, 1e-6)·‖A·v‖: at a true stop the Rayleigh
        // error is ≈ residual²/gap, so tol on λ means about √tol on the residual.
        let steady = (lambda - self.prev).abs() <= self.tol * lambda.abs();
        let resid = || av.iter().zip(v.iter()).map(|(a, x)| (a - lambda * x) * (a - lambda * x)).sum::<f64>().sqrt();
        // (‖A·v‖ = 0: v is in the deflated operator's null space, λ = 0)
        let done = avn == 0.0 || (steady && resid() <= (10.0 * self.tol.sqrt()).max(1e-6) * avn);
        // At max_iter, v and av still belong together: λ and the residual below are v's.
        if !done && self.iters < self.max_iter {
            self.prev = lambda;
            v.copy_from_slice(av);
            scale(1.0 / avn, v);
            return Ok(());
        }
        self.converged &= done;
        axpy(-lambda, v, av);
        let residual = norm(av);
        self.values.push(lambda);
        self.residuals.push(residual);
        self.iterations.push(self.iters);
        crate::mem::try_reserve(&mut self.found, v.len(), what)?;
        self.found.extend_from_slice(v);
        if !self.done() {
            self.start_pair();
        }
        Ok(())
    }
    fn products(&self) -> usize {
        self.products
    }
    fn max_products(&self) -> usize {
        self.k.saturating_mul(self.max_iter)
    }
    fn finish(self) -> Result<PowerResult> {
        if !self.done() {
            return Err(not_done("power_iteration"));
        }
        let (values, vectors, residuals, iterations) = (self.values, self.found, self.residuals, self.iterations);
        Ok(PowerResult { values, vectors, residuals, iterations, products: self.products, converged: self.converged })
    }
}
