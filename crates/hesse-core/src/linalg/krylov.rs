//! The Lanczos process with full reorthogonalization, shared by [`super::lanczos()`] (extreme
//! eigenpairs) and [`super::slq`] (spectral density).
//!
//! After m steps from a unit q₀ it holds an orthonormal basis Q_m = [q₀ … q_{m−1}] of the Krylov
//! space span{q₀, A·q₀, …, A^{m−1}·q₀} and the tridiagonal T_m = Q_mᵀ·A·Q_m (diagonal α,
//! off-diagonal β), with the Lanczos relation A·Q_m = Q_m·T_m + β_{m−1}·q_m·e_mᵀ.
//!
//! Memory: the basis is kept (m·n f64), because full reorthogonalization needs it; that is the
//! price of never seeing the spurious copies ("ghosts") of converged Ritz values that plain
//! three-term Lanczos produces in floating point.

use super::linop::check_product;
use super::rng::Rng;
use super::vecops::{axpy, check_len, dot, norm, orthogonalize, reserve_row, scale, zeros};
use crate::error::{Error, Result};

/// β ≤ BREAKDOWN·‖T‖ means the Krylov space is invariant: what is left after reorthogonalization
/// is rounding noise (~n·ε·‖A‖), not a direction of A.
const BREAKDOWN: f64 = 1e-12;

pub(crate) struct Krylov {
    n: usize,
    /// The most steps the caller will take (sizes the basis allocation).
    max_steps: usize,
    /// Rows q₀ … q_{m−1}, each of length n.
    pub basis: Vec<f64>,
    /// α₀ … α_{m−1}: the diagonal of T_m.
    pub alpha: Vec<f64>,
    /// β₀ … β_{m−1}: β_j couples q_j and q_{j+1}; β_{m−1} is the norm of the last residual (0 where
    /// the process was restarted after an invariant subspace).
    pub beta: Vec<f64>,
    /// q_m, the next basis vector (unit), or empty when the process cannot continue.
    next: Vec<f64>,
    w: Vec<f64>,
    coef: Vec<f64>,
    /// A running lower bound on ‖A‖ (the largest row sum of |T| so far), the breakdown scale.
    tnorm: f64,
    pub products: usize,
}

impl Krylov {
    /// Starts from `start` (normalized here); `max_steps` bounds the basis memory the caller
    /// will need. INVALID_ARGUMENT if `start` is zero or not finite.
    pub fn new(n: usize, start: &[f64], max_steps: usize, what: &str) -> Result<Krylov> {
        check_len(what, "the start vector", start.len(), n)?;
        let s = norm(start);
        if !(s > 0.0 && s.is_finite()) {
            return Err(Error::invalid(format!("{what}: the start vector has norm {s}; pass a non-zero finite vector")));
        }
        let mut next = crate::mem::try_copy(start, what)?;
        scale(1.0 / s, &mut next);
        Ok(Krylov { n, max_steps, basis: Vec::new(), alpha: Vec::new(), beta: Vec::new(), next, w: zeros(n, what)?, coef: Vec::new(), tnorm: 0.0, products: 0 })
    }

    /// Number of steps taken (the dimension m of T_m).
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Row j of the basis.
    pub fn q(&self, j: usize) -> &[f64] {
        &self.basis[j * self.n..(j + 1) * self.n]
    }

    /// The first half of a step (reverse communication): appends q_m to the basis; the product
    /// A·q_m is then wanted, [`Krylov::request`] is q_m and [`Krylov::end_step`] takes it.
    /// Returns false (and changes nothing) when the process cannot continue.
    pub fn begin_step(&mut self, what: &str) -> Result<bool> {
        if self.next.is_empty() {
            return Ok(false);
        }
        reserve_row(&mut self.basis, self.n, self.max_steps, what)?;
        self.basis.extend_from_slice(&self.next);
        Ok(true)
    }

    /// The vector of the pending step's product (q_m, the last basis row).
    pub fn request(&self) -> &[f64] {
        &self.next
    }

    /// The second half of a step: with `product` = A·q_m (checked: length n, finite), appends
    /// α_m and β_m to T.
    ///
    /// Returns whether another step is possible. When β_m is negligible the Krylov space is
    /// invariant under A: with `restart`, the process continues from a fresh random vector
    /// orthogonal to the basis and β_m is recorded as 0 (T becomes block diagonal, every block
    /// exact); without, it stops there (for quadrature the space is then exhausted exactly).
    /// It also stops once the basis spans all of Rⁿ. Precondition: `begin_step` returned true.
    pub fn end_step(&mut self, product: &[f64], restart: Option<&mut Rng>, what: &str) -> Result<bool> {
        let n = self.n;
        check_product(what, n, product)?;
        let j = self.len();
        self.w.copy_from_slice(product);
        self.products += 1;
        let q = &self.basis[j * n..];
        let mut alpha = dot(q, &self.w);
        // Three-term recurrence, then full reorthogonalization (CGS2) against every stored q:
        // in exact arithmetic the latter removes nothing; in floating point it removes the
        // components along converged Ritz vectors that the recurrence lets grow.
        axpy(-alpha, q, &mut self.w);
        if j > 0 {
            axpy(-self.beta[j - 1], &self.basis[(j - 1) * n..j * n], &mut self.w);
        }
        orthogonalize(&self.basis, &mut self.w, &mut self.coef);
        alpha += self.coef[j]; // the part of w along q_j that the recurrence missed belongs in α_j
        let beta = norm(&self.w);
        self.alpha.push(alpha);
        self.tnorm = self.tnorm.max(alpha.abs() + beta + if j > 0 { self.beta[j - 1] } else { 0.0 });
        if j + 1 == n {
            self.beta.push(beta);
            self.next.clear(); // the basis spans Rⁿ: T_n is similar to A, nothing left to find
            return Ok(false);
        }
        if beta > BREAKDOWN * self.tnorm {
            self.beta.push(beta);
            self.next.copy_from_slice(&self.w);
            scale(1.0 / beta, &mut self.next);
            return Ok(true);
        }
        // Invariant subspace found.
        let Some(rng) = restart else {
            self.beta.push(beta);
            self.next.clear();
            return Ok(false);
        };
        rng.fill_gaussian(&mut self.w);
        let before = norm(&self.w);
        orthogonalize(&self.basis, &mut self.w, &mut self.coef);
        let after = norm(&self.w);
        // A random vector keeps about √((n−m)/n) of its norm; losing more than 1 − 1e-6 of it
        // means the basis already spans Rⁿ numerically.
        if after <= 1e-6 * before {
            self.beta.push(beta);
            self.next.clear();
            return Ok(false);
        }
        self.beta.push(0.0);
        self.next.copy_from_slice(&self.w);
        scale(1.0 / after, &mut self.next);
        Ok(true)
    }
}
