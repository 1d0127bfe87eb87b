//! Extreme eigenpairs of a symmetric operator by the Lanczos method with full
//! reorthogonalization (no restarts): the Hessian's top or bottom eigenvalues from HVPs alone.
//!
//! Math: after m steps (see [`super::krylov`]) the eigenpairs (θᵢ, sᵢ) of T_m give Ritz pairs
//! (θᵢ, yᵢ = Q_m·sᵢ) with the exact residual norm ‖A·yᵢ − θᵢ·yᵢ‖ = |β_{m−1}|·|sᵢ[m−1]|, which costs
//! nothing to evaluate. For symmetric A some eigenvalue lies within that residual of θᵢ, and
//! extreme Ritz values converge first (Kaniel–Paige–Saad), typically in a few dozen steps.

use super::tridiag::{tridiagonal_eigen, Components};
use super::krylov::Krylov;
use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::{LinOp, SymmetryCheck};
use super::rng::Rng;
use super::vecops::{area, axpy, zeros};
use crate::error::{Error, Result};

/// Which end of the spectrum [`lanczos()`] returns (algebraic order, not magnitude).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// The k algebraically largest eigenvalues, descending.
    Largest,
    /// The k algebraically smallest eigenvalues, ascending.
    Smallest,
    /// ⌊k/2⌋ smallest and ⌈k/2⌉ largest (SciPy's "BE"), all ascending.
    Both,
}

#[derive(Clone, Debug)]
pub struct LanczosOpts {
    /// Most Lanczos steps (= operator products, plus 2 for the symmetry check); capped at n.
    /// Memory is (steps taken)·n f64 for the basis. Default 300.
    pub max_iter: usize,
    /// Stop when every wanted Ritz pair has ‖A·y − θ·y‖ ≤ tol·|θ| (the residual is floored at
    /// 64·ε·‖T‖, the rounding level, so eigenvalues at 0 can converge). The eigenvalue error is
    /// at most the residual, and about residual²/gap when θ is separated by `gap` from the rest
    /// of the spectrum. Default 1e-8.
    pub tol: f64,
    /// Seed of the Gaussian start vector (and of restart vectors, and of the symmetry check).
    pub seed: u64,
    /// Whether to return Ritz vectors (k·n f64). Default true.
    pub vectors: bool,
    /// Run [`check_symmetric`] first (2 products). Default false.
    pub check_symmetry: bool,
}

impl Default for LanczosOpts {
    fn default() -> Self {
        LanczosOpts { max_iter: 300, tol: 1e-8, seed: 0, vectors: true, check_symmetry: false }
    }
}

#[derive(Clone, Debug)]
pub struct LanczosResult {
    /// The k eigenvalue estimates (Ritz values), ordered as [`Which`] says.
    pub values: Vec<f64>,
    /// k×n row-major, row i the unit Ritz vector of `values[i]`; None unless `opts.vectors`.
    pub vectors: Option<Vec<f64>>,
    /// ‖A·yᵢ − θᵢ·yᵢ‖ for each value (from the Lanczos relation, exact up to rounding).
    pub residuals: Vec<f64>,
    /// Lanczos steps taken.
    pub iterations: usize,
    /// Operator products used (steps, plus 2 if the symmetry check ran).
    pub products: usize,
    /// Whether every residual met the tolerance (or the Krylov space was exhausted, where the
    /// values are exact). False when max_iter ran out first: the values are then still the best
    /// estimates of this subspace, with the residuals saying how good.
    pub converged: bool,
}

/// The k extreme eigenvalues of the symmetric operator `op` (and Ritz vectors), by Lanczos with
/// full reorthogonalization from a Gaussian start vector.
///
/// PRECONDITION: `op` is symmetric (checked cheaply when `opts.check_symmetry`).
/// LIMITATION: a single-vector Krylov method sees one copy of a repeated eigenvalue; further
/// copies appear only from rounding, after the first has converged, so with exact multiplicities
/// the k values may skip some copies. Close but distinct eigenvalues are found (more steps).
///
/// Errors: INVALID_ARGUMENT if k = 0 or k > n, if max_iter < k, if tol is negative or not
/// finite, if the operator is not symmetric (with the check) or returns a non-finite value;
/// errors of the operator pass through; OUT_OF_MEMORY for the basis.
pub fn lanczos<O: LinOp + ?Sized>(op: &mut O, k: usize, which: Which, opts: &LanczosOpts) -> Result<LanczosResult> {
    drive(op, LanczosIteration::new(op.size(), k, which, opts)?, "lanczos")
}

/// [`lanczos()`] as a reverse-communication iteration (see [`super::Iteration`]): the symmetry
/// check's two products (with `check_symmetry`), then one per Lanczos step.
pub struct LanczosIteration {
    n: usize,
    k: usize,
    which: Which,
    tol: f64,
    vectors: bool,
    max_iter: usize,
    symmetry: Option<SymmetryCheck>,
    rng: Rng,
    kry: Krylov,
    /// Whether a Lanczos step's product is pending (false before the symmetry check is done,
    /// and at the end).
    stepping: bool,
    theta: Vec<f64>,
    wanted: Vec<usize>,
    residuals: Vec<f64>,
    converged: bool,
}

impl LanczosIteration {
    /// Validates the arguments (same errors as [`lanczos()`]) for an operator of size n.
    pub fn new(n: usize, k: usize, which: Which, opts: &LanczosOpts) -> Result<LanczosIteration> {
        let what = "lanczos";
        if k == 0 || k > n {
            return Err(Error::invalid(format!("{what}: k = {k} is out of range; ask for 1 ≤ k ≤ n = {n} eigenvalues")));
        }
        if !(opts.tol >= 0.0 && opts.tol.is_finite()) {
            return Err(Error::invalid(format!("{what}: tol = {} must be finite and ≥ 0", opts.tol)));
        }
        let max_iter = opts.max_iter.min(n);
        if max_iter < k {
            return Err(Error::invalid(format!("{what}: max_iter = {} is less than k = {k}; allow at least k steps", opts.max_iter)));
        }
        let symmetry = if opts.check_symmetry { Some(SymmetryCheck::new(n, opts.seed ^ 0x5EED_5EED)?) } else { None };
        let mut rng = Rng::new(opts.seed);
        let mut start = zeros(n, what)?;
        rng.fill_gaussian(&mut start);
        let kry = Krylov::new(n, &start, max_iter, what)?;
        let mut it = LanczosIteration {
            n,
            k,
            which,
            tol: opts.tol,
            vectors: opts.vectors,
            max_iter,
            symmetry,
            rng,
            kry,
            stepping: false,
            theta: Vec::new(),
            wanted: Vec::new(),
            residuals: Vec::new(),
            converged: false,
        };
        if it.symmetry.is_none() {
            it.stepping = it.kry.begin_step(what)?;
        }
        Ok(it)
    }

    /// After a step: the Ritz values and their residuals; whether to stop.
    fn after_step(&mut self, more: bool) -> Result<bool> {
        let (what, k, n) = ("lanczos", self.k, self.n);
        let m = self.kry.len();
        if m < k {
            if !more {
                return Err(Error::invalid(format!("{what}: could not extend the Krylov basis beyond {m} vectors (k = {k}, n = {n})")));
            }
            return Ok(false);
        }
        let (vals, last) = tridiagonal_eigen(&self.kry.alpha, &self.kry.beta[..m - 1], Components::Last)?;
        let beta_m = self.kry.beta[m - 1];
        self.wanted = select(m, k, self.which);
        self.residuals = self.wanted.iter().map(|&i| (beta_m * last[i]).abs()).collect::<Vec<f64>>();
        let floor = 64.0 * f64::EPSILON * vals.iter().fold(0.0f64, |s, x| s.max(x.abs()));
        self.converged = !more || self.wanted.iter().zip(&self.residuals).all(|(&i, r)| *r <= (self.tol * vals[i].abs()).max(floor));
        self.theta = vals;
        Ok(self.converged || m >= self.max_iter)
    }
}

impl Iteration for LanczosIteration {
    type Output = LanczosResult;
    fn size(&self) -> usize {
        self.n
    }
    fn request(&self) -> Option<&[f64]> {
        match &self.symmetry {
            Some(s) if s.request().is_some() => s.request(),
            _ if self.stepping => Some(self.kry.request()),
            _ => None,
        }
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "lanczos";
        if let Some(s) = self.symmetry.as_mut().filter(|s| s.request().is_some()) {
            s.provide(product)?;
            if s.request().is_none() {
                s.gap()?; // the "not symmetric" error, or on to Lanczos
                self.stepping = self.kry.begin_step(what)?;
            }
            return Ok(());
        }
        if !self.stepping {
            return Err(not_requested(what));
        }
        let more = self.kry.end_step(product, Some(&mut self.rng), what)?;
        self.stepping = !self.after_step(more)? && self.kry.begin_step(what)?;
        Ok(())
    }
    fn products(&self) -> usize {
        self.symmetry.as_ref().map_or(0, |s| s.products()) + self.kry.products
    }
    fn max_products(&self) -> usize {
        self.symmetry.as_ref().map_or(0, |_| 2) + self.max_iter
    }
    fn finish(self) -> Result<LanczosResult> {
        if self.request().is_some() {
            return Err(not_done("lanczos"));
        }
        let (kry, n, k, wanted, theta) = (self.kry, self.n, self.k, self.wanted, self.theta);
        let m = kry.len();
        let values = wanted.iter().map(|&i| theta[i]).collect();
        let vectors = if self.vectors {
            // yᵢ = Q_m·sᵢ = Σⱼ sᵢ[j]·q_j: needs the full eigenvectors of T_m (O(m³), m small).
            let what = "lanczos";
            let (_, s) = tridiagonal_eigen(&kry.alpha, &kry.beta[..m - 1], Components::All)?;
            let mut y = zeros(area(k, n, what)?, what)?;
            for (yi, &i) in y.chunks_exact_mut(n).zip(&wanted) {
                for (j, sij) in s[i * m..(i + 1) * m].iter().enumerate() {
                    axpy(*sij, kry.q(j), yi);
                }
            }
            Some(y)
        } else {
            None
        };
        let products = self.symmetry.map_or(0, |_| 2) + kry.products;
        Ok(LanczosResult { values, vectors, residuals: self.residuals, iterations: m, products, converged: self.converged })
    }
}

/// Indices (into the m ascending Ritz values) of the k wanted ones, in output order.
fn select(m: usize, k: usize, which: Which) -> Vec<usize> {
    match which {
        Which::Largest => (m - k..m).rev().collect(),
        Which::Smallest => (0..k).collect(),
        Which::Both => (0..k / 2).chain(m - (k - k / 2)..m).collect(),
    }
}
