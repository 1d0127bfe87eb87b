//! Spectral density by stochastic Lanczos quadrature (Ubaru, Chen, Saad 2017; for Hessians
//! Ghorbani, Krishnan, Xiao 2019; PyHessian's `density`).
//!
//! Math: the spectral density φ(t) = (1/n)·Σᵢ δ(t − λᵢ) satisfies ∫f·φ = tr(f(A))/n. For a
//! Rademacher probe z and q = z/‖z‖ (‖z‖² = n), E[qᵀ·f(A)·q] = tr(f(A))/n, and m Lanczos steps
//! from q give the m-point Gauss quadrature qᵀ·f(A)·q ≈ Σⱼ τⱼ²·f(θⱼ), exact for polynomials of
//! degree ≤ 2m − 1: nodes θⱼ are the eigenvalues of T_m, weights τⱼ² the squared first
//! components of its eigenvectors (they sum to 1). Averaging over probes gives a discrete
//! measure whose Gaussian smoothing is the density estimate.

use super::tridiag::eigh_tridiagonal;
use super::krylov::Krylov;
use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::LinOp;
use super::rng::Rng;
use super::vecops::zeros;
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct SlqOpts {
    /// Rademacher probes averaged. Default 10 (the statistical error falls as 1/√probes).
    pub probes: usize,
    /// Lanczos steps per probe (capped at n; fewer if the probe's Krylov space is exhausted).
    /// Memory: steps·n f64. Default 80.
    pub steps: usize,
    /// Grid points of the density. Default 1000.
    pub grid_points: usize,
    /// Gaussian kernel width, relative to the spectral range [min θ, max θ] of the nodes (the
    /// width is sigma·(max θ − min θ), or sigma·max(|θ|, 1) when the range is a single point).
    /// Default 1e-2.
    pub sigma: f64,
    pub seed: u64,
}

impl Default for SlqOpts {
    fn default() -> Self {
        SlqOpts { probes: 10, steps: 80, grid_points: 1000, sigma: 1e-2, seed: 0 }
    }
}

/// The averaged quadrature: a discrete probability measure Σⱼ wⱼ·δ(t − θⱼ) that approximates the
/// spectral density (weights already divided by the number of probes; they sum to 1).
#[derive(Clone, Debug)]
pub struct SlqQuadrature {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
    pub probes: usize,
    /// Operator products used.
    pub products: usize,
}

impl SlqQuadrature {
    /// Σⱼ wⱼ·θⱼ^p, an unbiased estimate of tr(A^p)/n for every p ≤ 2·steps − 1 (the quadrature is
    /// exact for such polynomials, so only the probes' randomness remains).
    pub fn moment(&self, p: i32) -> f64 {
        self.nodes.iter().zip(&self.weights).map(|(t, w)| w * t.powi(p)).sum()
    }

    /// The smoothed density on a uniform grid: φ(t) = Σⱼ wⱼ·N(t; θⱼ, s²), s = sigma·range,
    /// the grid spanning [min θ − 5s, max θ + 5s] (so the kernels' tails are inside), then
    /// scaled so that its trapezoid integral over the grid is exactly 1.
    ///
    /// Errors: INVALID_ARGUMENT if grid_points < 2 or sigma is not finite and > 0.
    pub fn density(&self, grid_points: usize, sigma: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let what = "slq_density";
        check_density_args(what, grid_points, sigma)?;
        let lo = self.nodes.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.nodes.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let range = hi - lo;
        let width = if range > 0.0 { sigma * range } else { sigma * lo.abs().max(1.0) };
        let (a, b) = (lo - 5.0 * width, hi + 5.0 * width);
        let h = (b - a) / (grid_points - 1) as f64;
        let mut grid = zeros(grid_points, what)?;
        grid.iter_mut().enumerate().for_each(|(i, g)| *g = a + h * i as f64);
        let mut density = zeros(grid_points, what)?;
        let c = 1.0 / (width * (2.0 * std::f64::consts::PI).sqrt());
        for (t, d) in grid.iter().zip(density.iter_mut()) {
            *d = self.nodes.iter().zip(&self.weights).map(|(th, w)| w * c * (-0.5 * ((t - th) / width).powi(2)).exp()).sum();
        }
        // The kernels' mass outside ±5s (≈ 6e-7) and the trapezoid error are normalized away.
        let integral = h * (density.iter().sum::<f64>() - 0.5 * (density[0] + density[grid_points - 1]));
        if integral > 0.0 {
            density.iter_mut().for_each(|d| *d /= integral);
        }
        Ok((grid, density))
    }
}

/// The smoothed spectral density and what it cost.
#[derive(Clone, Debug)]
pub struct SlqDensity {
    pub grid: Vec<f64>,
    pub density: Vec<f64>,
    pub products: usize,
}

/// The density options' checks (before spending products).
pub fn check_density_args(what: &str, grid_points: usize, sigma: f64) -> Result<()> {
    if grid_points < 2 {
        return Err(Error::invalid(format!("{what}: grid_points = {grid_points}; pass at least 2")));
    }
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(Error::invalid(format!("{what}: sigma = {sigma} must be finite and > 0 (it is relative to the spectral range)")));
    }
    Ok(())
}

fn check_opts(what: &str, opts: &SlqOpts) -> Result<()> {
    if opts.probes == 0 || opts.steps == 0 {
        return Err(Error::invalid(format!("{what}: probes = {} and steps = {} must both be ≥ 1", opts.probes, opts.steps)));
    }
    Ok(())
}

/// Runs the probes and returns the averaged quadrature (see the module doc). Each probe costs
/// min(steps, n) products (fewer when its Krylov space is exhausted, where the quadrature is
/// exact). PRECONDITION: `op` symmetric.
///
/// Errors: INVALID_ARGUMENT if probes or steps is 0 or n = 0; operator errors pass through;
/// OUT_OF_MEMORY for the basis.
pub fn slq_quadrature<O: LinOp + ?Sized>(op: &mut O, opts: &SlqOpts) -> Result<SlqQuadrature> {
    drive(op, SlqIteration::new(op.size(), opts)?, "slq")
}

/// [`slq_quadrature`] as a reverse-communication iteration (see [`super::Iteration`]): one
/// product per Lanczos step of each probe in turn.
pub struct SlqIteration {
    n: usize,
    probes: usize,
    steps: usize,
    rng: Rng,
    z: Vec<f64>,
    /// The current probe's Lanczos process; None when every probe is done.
    kry: Option<Krylov>,
    probe: usize,
    nodes: Vec<f64>,
    weights: Vec<f64>,
    products: usize,
}

impl SlqIteration {
    /// Validates the options (same errors as [`slq_quadrature`]) for an operator of size n.
    pub fn new(n: usize, opts: &SlqOpts) -> Result<SlqIteration> {
        let what = "slq";
        check_opts(what, opts)?;
        if n == 0 {
            return Err(Error::invalid(format!("{what}: the operator has size 0; there is no spectrum to estimate")));
        }
        let mut it = SlqIteration {
            n,
            probes: opts.probes,
            steps: opts.steps.min(n),
            rng: Rng::new(opts.seed),
            z: zeros(n, what)?,
            kry: None,
            probe: 0,
            nodes: Vec::new(),
            weights: Vec::new(),
            products: 0,
        };
        it.start_probe()?;
        Ok(it)
    }

    /// Starts probe `self.probe` (a Rademacher start vector) and its first step.
    fn start_probe(&mut self) -> Result<()> {
        let what = "slq";
        self.rng.fill_rademacher(&mut self.z);
        let mut kry = Krylov::new(self.n, &self.z, self.steps, what)?;
        let more = kry.len() < self.steps && kry.begin_step(what)?;
        self.kry = Some(kry);
        if !more {
            self.end_probe()?;
        }
        Ok(())
    }

    /// The probe's quadrature (nodes: eigenvalues of T_m; weights: squared first components);
    /// then the next probe, if any.
    fn end_probe(&mut self) -> Result<()> {
        let kry = self.kry.take().expect("a probe is running");
        self.products += kry.products;
        let m = kry.len();
        let (theta, first) = eigh_tridiagonal(&kry.alpha, &kry.beta[..m - 1])?;
        self.nodes.extend_from_slice(&theta);
        self.weights.extend(first.iter().map(|t| t * t / self.probes as f64));
        self.probe += 1;
        if self.probe < self.probes {
            self.start_probe()?;
        }
        Ok(())
    }
}

impl Iteration for SlqIteration {
    type Output = SlqQuadrature;
    fn size(&self) -> usize {
        self.n
    }
    fn request(&self) -> Option<&[f64]> {
        self.kry.as_ref().map(|k| k.request())
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "slq";
        let Some(kry) = self.kry.as_mut() else { return Err(not_requested(what)) };
        // No restart on breakdown: an exhausted Krylov space means the quadrature is already
        // exact for this probe (q lies in an invariant subspace).
        let more = kry.end_step(product, None, what)?;
        if !(more && kry.len() < self.steps && kry.begin_step(what)?) {
            self.end_probe()?;
        }
        Ok(())
    }
    fn products(&self) -> usize {
        self.products + self.kry.as_ref().map_or(0, |k| k.products)
    }
    fn max_products(&self) -> usize {
        self.probes.saturating_mul(self.steps)
    }
    fn finish(self) -> Result<SlqQuadrature> {
        if self.kry.is_some() {
            return Err(not_done("slq"));
        }
        Ok(SlqQuadrature { nodes: self.nodes, weights: self.weights, probes: self.probes, products: self.products })
    }
}

/// Moments tr(A^p)/n ≈ Σⱼ wⱼ·θⱼ^p for p = 1..=max_power by SLQ, and the products used.
/// Exact in expectation when max_power ≤ 2·steps − 1. Same errors as [`slq_quadrature`].
pub fn slq_moments<O: LinOp + ?Sized>(op: &mut O, opts: &SlqOpts, max_power: i32) -> Result<(Vec<f64>, usize)> {
    let q = slq_quadrature(op, opts)?;
    Ok(((1..=max_power).map(|p| q.moment(p)).collect(), q.products))
}

/// The spectral density estimate on `opts.grid_points` points (see [`SlqQuadrature::density`]):
/// it integrates to 1 on the grid (trapezoid rule). Costs probes·min(steps, n) products.
/// Errors: those of [`slq_quadrature`] and [`SlqQuadrature::density`].
pub fn slq_density<O: LinOp + ?Sized>(op: &mut O, opts: &SlqOpts) -> Result<SlqDensity> {
    check_density_args("slq_density", opts.grid_points, opts.sigma)?; // before spending products
    let q = slq_quadrature(op, opts)?;
    let (grid, density) = q.density(opts.grid_points, opts.sigma)?;
    Ok(SlqDensity { grid, density, products: q.products })
}
