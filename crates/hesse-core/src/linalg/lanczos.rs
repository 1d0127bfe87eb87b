//! Extreme eigenpairs of a symmetric operator by the Lanczos method with full
//! reorthogonalization (no restarts): the Hessian's top or bottom eigenvalues from HVPs alone.
//!
//! Math: after m steps (see [`super::krylov`]) the eigenpairs (θᵢ, sᵢ) of T_m give Ritz pairs
//! (θᵢ, yᵢ = Q_m·sᵢ) with the exact residual norm ‖A·yᵢ − θᵢ·yᵢ‖ = |β_{m−1}|·|sᵢ[m−1]|, which costs
//! nothing to evaluate. For symmetric A some eigenvalue lies within that residual of θᵢ, and
//! extreme Ritz values converge first (Kaniel–Paige–Saad), typically in a few dozen steps.

use super::tridiag::{tridiagonal_eigen, Components};
use super::krylov::Krylov;
use super::linop::{check_symmetric, LinOp};
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
    let what = "lanczos";
    let n = op.size();
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
    let mut products = 0;
    if opts.check_symmetry {
        check_symmetric(op, opts.seed ^ 0x5EED_5EED)?;
        products += 2;
    }
    let mut rng = Rng::new(opts.seed);
    let mut start = zeros(n, what)?;
    rng.fill_gaussian(&mut start);
    let mut kry = Krylov::new(n, &start, max_iter, what)?;
    let (mut theta, mut wanted, mut residuals, mut converged);
    loop {
        let more = kry.step(op, Some(&mut rng), what)?;
        let m = kry.len();
        if m < k {
            if !more {
                return Err(Error::invalid(format!("{what}: could not extend the Krylov basis beyond {m} vectors (k = {k}, n = {n})")));
            }
            continue;
        }
        let (vals, last) = tridiagonal_eigen(&kry.alpha, &kry.beta[..m - 1], Components::Last)?;
        let beta_m = kry.beta[m - 1];
        wanted = select(m, k, which);
        residuals = wanted.iter().map(|&i| (beta_m * last[i]).abs()).collect::<Vec<f64>>();
        let floor = 64.0 * f64::EPSILON * vals.iter().fold(0.0f64, |s, x| s.max(x.abs()));
        converged = !more || wanted.iter().zip(&residuals).all(|(&i, r)| *r <= (opts.tol * vals[i].abs()).max(floor));
        theta = vals;
        if converged || m >= max_iter {
            break;
        }
    }
    let m = kry.len();
    let values = wanted.iter().map(|&i| theta[i]).collect();
    let vectors = if opts.vectors {
        // yᵢ = Q_m·sᵢ = Σⱼ sᵢ[j]·q_j: needs the full eigenvectors of T_m (O(m³), m small).
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
    Ok(LanczosResult { values, vectors, residuals, iterations: m, products: products + kry.products, converged })
}

/// Indices (into the m ascending Ritz values) of the k wanted ones, in output order.
fn select(m: usize, k: usize, which: Which) -> Vec<usize> {
    match which {
        Which::Largest => (m - k..m).rev().collect(),
        Which::Smallest => (0..k).collect(),
        Which::Both => (0..k / 2).chain(m - (k - k / 2)..m).collect(),
    }
}
