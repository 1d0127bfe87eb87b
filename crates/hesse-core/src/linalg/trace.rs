//! Stochastic trace and diagonal estimators from products only: Hutchinson (1989), Hutch++
//! (Meyer, Musco, Musco, Woodruff 2021) and the Bekas–Kokiopoulou–Saad (2007) diagonal.
//! All probes are Rademacher (±1), the minimum-variance choice for Hutchinson.

use super::iteration::{drive, not_done, not_requested, Iteration};
use super::linop::{check_product, LinOp};
use super::rng::Rng;
use super::vecops::{area, dot, norm, orthogonalize, reserve, scale, zeros};
use crate::error::{Error, Result};

/// A scalar estimate and what it cost.
#[derive(Clone, Debug)]
pub struct TraceEstimate {
    pub trace: f64,
    /// Standard error of the Monte Carlo part (sample standard deviation / √samples). 0 when the
    /// estimate is exact (n ≤ 1, or a Hutch++ sketch that spans the whole space); otherwise NaN
    /// when fewer than 2 samples were averaged. For Hutch++ it covers the complement term only
    /// (the sketch term is exact).
    pub std_error: f64,
    /// Operator products used.
    pub products: usize,
}

/// A diagonal estimate and what it cost.
#[derive(Clone, Debug)]
pub struct DiagonalEstimate {
    pub diagonal: Vec<f64>,
    pub products: usize,
}

fn check_samples(what: &str, name: &str, samples: usize, min: usize) -> Result<()> {
    if samples < min {
        return Err(Error::invalid(format!("{what}: {name} = {samples} is too small; pass {name} ≥ {min}")));
    }
    Ok(())
}

/// Mean and standard error of the mean of `xs` (NaN error for fewer than 2).
fn mean_and_error(xs: &[f64]) -> (f64, f64) {
    let s = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / s;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (s - 1.0);
    (mean, (var / s).sqrt())
}

/// Hutchinson's estimator tr(A) ≈ (1/s)·Σᵢ zᵢᵀ·A·zᵢ with s Rademacher probes zᵢ.
///
/// Unbiased; Var = 2(‖A‖_F² − Σᵢ aᵢᵢ²)/s, so the error is O(‖A‖_F/√s). Costs s products.
/// Errors: INVALID_ARGUMENT if samples = 0; errors of the operator pass through.
pub fn hutchinson_trace<O: LinOp + ?Sized>(op: &mut O, samples: usize, seed: u64) -> Result<TraceEstimate> {
    drive(op, HutchinsonTrace::new(op.size(), samples, seed)?, "hutchinson_trace")
}

/// [`hutchinson_trace`] as a reverse-communication iteration (see [`super::Iteration`]): the
/// requests are the probes z.
pub struct HutchinsonTrace {
    samples: usize,
    rng: Rng,
    z: Vec<f64>,
    xs: Vec<f64>,
}

impl HutchinsonTrace {
    pub fn new(n: usize, samples: usize, seed: u64) -> Result<HutchinsonTrace> {
        let what = "hutchinson_trace";
        check_samples(what, "samples", samples, 1)?;
        let mut it = HutchinsonTrace { samples, rng: Rng::new(seed), z: zeros(n, what)?, xs: crate::mem::try_vec(samples.min(1 << 20), what)? };
        it.rng.fill_rademacher(&mut it.z);
        Ok(it)
    }
}

impl Iteration for HutchinsonTrace {
    type Output = TraceEstimate;
    fn size(&self) -> usize {
        self.z.len()
    }
    fn request(&self) -> Option<&[f64]> {
        (self.xs.len() < self.samples).then_some(&self.z[..])
    }
    fn provide(&mut self, az: &[f64]) -> Result<()> {
        let what = "hutchinson_trace";
        if self.xs.len() == self.samples {
            return Err(not_requested(what));
        }
        check_product(what, self.z.len(), az)?;
        crate::mem::try_reserve(&mut self.xs, 1, what)?;
        self.xs.push(dot(&self.z, az));
        if self.xs.len() < self.samples {
            self.rng.fill_rademacher(&mut self.z);
        }
        Ok(())
    }
    fn products(&self) -> usize {
        self.xs.len()
    }
    fn max_products(&self) -> usize {
        self.samples
    }
    fn finish(self) -> Result<TraceEstimate> {
        if self.xs.len() < self.samples {
            return Err(not_done("hutchinson_trace"));
        }
        let (trace, std_error) = mean_and_error(&self.xs);
        // n ≤ 1: zᵀAz = a₁₁ for z = ±1 (every probe is exact), so there is no error to estimate.
        let std_error = if self.z.len() <= 1 { 0.0 } else { std_error };
        Ok(TraceEstimate { trace, std_error, products: self.samples })
    }
}

/// Hutch++: tr(A) = tr(QᵀAQ) + tr((I−QQᵀ)·A·(I−QQᵀ)), with Q an orthonormal basis of the
/// sketch A·S (S: n×⌊m/3⌋ Rademacher). The first term is exact (⌊m/3⌋ products for A·Q); the
/// second is Hutchinson on the complement with the remaining products. The sketch captures the
/// top eigenspace, so the Monte Carlo part only sees the tail: error O(‖A‖_F/m) for PSD A
/// instead of O(‖A‖_F/√m) — a large gain when the spectrum decays (Hessians typically do).
///
/// `matvecs` is the total budget m; the products used can be fewer when the sketch has rank
/// < ⌊m/3⌋ (its dependent columns are dropped and their budget goes to the complement).
/// Memory: 2·⌊m/3⌋·n f64. Errors: INVALID_ARGUMENT if matvecs < 3; operator errors pass through.
pub fn hutch_pp_trace<O: LinOp + ?Sized>(op: &mut O, matvecs: usize, seed: u64) -> Result<TraceEstimate> {
    drive(op, HutchPpTrace::new(op.size(), matvecs, seed)?, "hutch_pp_trace")
}

/// Where [`HutchPpTrace`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PpPhase {
    /// Product `i` of the sketch A·S (request: the Rademacher column z).
    Sketch(usize),
    /// Product of basis column j for tr(QᵀAQ) (request: q_j).
    Exact(usize),
    /// Complement probe i (request: the projected probe z).
    Complement(usize),
    Done,
}

/// [`hutch_pp_trace`] as a reverse-communication iteration (see [`super::Iteration`]).
pub struct HutchPpTrace {
    n: usize,
    matvecs: usize,
    k: usize,
    rng: Rng,
    z: Vec<f64>,
    az: Vec<f64>,
    q: Vec<f64>,
    coef: Vec<f64>,
    exact: f64,
    xs: Vec<f64>,
    samples: usize,
    products: usize,
    phase: PpPhase,
}

impl HutchPpTrace {
    pub fn new(n: usize, matvecs: usize, seed: u64) -> Result<HutchPpTrace> {
        let what = "hutch_pp_trace";
        check_samples(what, "matvecs", matvecs, 3)?;
        let k = (matvecs / 3).min(n);
        // Q = orth(A·S), column by column: CGS2 against the accepted columns; a column that keeps
        // less than 1e-10 of its norm is in their span (rank-deficient sketch) and is dropped.
        let mut q: Vec<f64> = Vec::new();
        reserve(&mut q, area(k, n, what)?, what)?;
        let (z, az) = (zeros(n, what)?, zeros(n, what)?);
        let mut it = HutchPpTrace { n, matvecs, k, rng: Rng::new(seed), z, az, q, coef: Vec::new(), exact: 0.0, xs: Vec::new(), samples: 0, products: 0, phase: PpPhase::Done };
        it.enter(PpPhase::Sketch(0))?;
        Ok(it)
    }

    fn rank(&self) -> usize {
        self.q.len().checked_div(self.n).unwrap_or(0)
    }

    /// Moves to `phase`, skipping empty phases, and prepares its request.
    fn enter(&mut self, mut phase: PpPhase) -> Result<()> {
        let what = "hutch_pp_trace";
        loop {
            match phase {
                PpPhase::Sketch(i) if i < self.k => {
                    self.rng.fill_rademacher(&mut self.z);
                    break;
                }
                PpPhase::Sketch(_) => phase = PpPhase::Exact(0),
                PpPhase::Exact(j) if j < self.rank() => break,
                PpPhase::Exact(_) => {
                    // Hutchinson on the complement: g' = (I−QQᵀ)g, then g'ᵀ·A·g'.
                    let r = self.rank();
                    self.samples = self.matvecs.saturating_sub(self.k + r);
                    self.xs = crate::mem::try_vec(self.samples.min(1 << 20), what)?;
                    phase = if r < self.n { PpPhase::Complement(0) } else { PpPhase::Done };
                }
                PpPhase::Complement(i) if i < self.samples => {
                    self.rng.fill_rademacher(&mut self.z);
                    orthogonalize(&self.q, &mut self.z, &mut self.coef);
                    break;
                }
                PpPhase::Complement(_) | PpPhase::Done => {
                    phase = PpPhase::Done;
                    break;
                }
            }
        }
        self.phase = phase;
        Ok(())
    }
}

impl Iteration for HutchPpTrace {
    type Output = TraceEstimate;
    fn size(&self) -> usize {
        self.n
    }
    fn request(&self) -> Option<&[f64]> {
        let n = self.n;
        match self.phase {
            PpPhase::Sketch(_) | PpPhase::Complement(_) => Some(&self.z),
            PpPhase::Exact(j) => Some(&self.q[j * n..(j + 1) * n]),
            PpPhase::Done => None,
        }
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let (what, n) = ("hutch_pp_trace", self.n);
        if self.phase == PpPhase::Done {
            return Err(not_requested(what));
        }
        check_product(what, n, product)?;
        self.products += 1;
        match self.phase {
            PpPhase::Sketch(i) => {
                let az = &mut self.az;
                az.copy_from_slice(product);
                let before = norm(az);
                orthogonalize(&self.q, az, &mut self.coef);
                let after = norm(az);
                if after > 1e-10 * before && after > 0.0 {
                    scale(1.0 / after, az);
                    self.q.extend_from_slice(az);
                }
                self.enter(PpPhase::Sketch(i + 1))
            }
            PpPhase::Exact(j) => {
                // tr(QᵀAQ) = Σⱼ qⱼᵀ·A·qⱼ, exact.
                self.exact += dot(&self.q[j * n..(j + 1) * n], product);
                self.enter(PpPhase::Exact(j + 1))
            }
            PpPhase::Complement(i) => {
                crate::mem::try_reserve(&mut self.xs, 1, what)?;
                self.xs.push(dot(&self.z, product));
                self.enter(PpPhase::Complement(i + 1))
            }
            PpPhase::Done => unreachable!("checked above"),
        }
    }
    fn products(&self) -> usize {
        self.products
    }
    fn max_products(&self) -> usize {
        self.matvecs
    }
    fn finish(self) -> Result<TraceEstimate> {
        if self.phase != PpPhase::Done {
            return Err(not_done("hutch_pp_trace"));
        }
        let (r, n, xs) = (self.rank(), self.n, &self.xs);
        // r = n: Q is a basis of the whole space, tr(QᵀAQ) = tr(A) and the complement is {0}: exact.
        let (rest, std_error) = if r == n { (0.0, 0.0) } else if xs.is_empty() { (0.0, f64::NAN) } else { mean_and_error(xs) };
        Ok(TraceEstimate { trace: self.exact + rest, std_error, products: self.products })
    }
}

/// Diagonal estimate diag(A) ≈ (1/s)·Σᵢ zᵢ ⊙ (A·zᵢ) with s Rademacher probes (Bekas et al.;
/// the estimator behind AdaHessian's Hessian diagonal).
///
/// Unbiased; entry i has variance Σ_{j≠i} aᵢⱼ²/s. Costs s products.
/// Errors: INVALID_ARGUMENT if samples = 0; errors of the operator pass through.
pub fn hutchinson_diagonal<O: LinOp + ?Sized>(op: &mut O, samples: usize, seed: u64) -> Result<DiagonalEstimate> {
    drive(op, HutchinsonDiagonal::new(op.size(), samples, seed)?, "hutchinson_diagonal")
}

/// [`hutchinson_diagonal`] as a reverse-communication iteration (see [`super::Iteration`]): the
/// requests are the probes z.
pub struct HutchinsonDiagonal {
    samples: usize,
    done: usize,
    rng: Rng,
    z: Vec<f64>,
    acc: Vec<f64>,
}

impl HutchinsonDiagonal {
    pub fn new(n: usize, samples: usize, seed: u64) -> Result<HutchinsonDiagonal> {
        let what = "hutchinson_diagonal";
        check_samples(what, "samples", samples, 1)?;
        let mut it = HutchinsonDiagonal { samples, done: 0, rng: Rng::new(seed), z: zeros(n, what)?, acc: zeros(n, what)? };
        it.rng.fill_rademacher(&mut it.z);
        Ok(it)
    }
}

impl Iteration for HutchinsonDiagonal {
    type Output = DiagonalEstimate;
    fn size(&self) -> usize {
        self.z.len()
    }
    fn request(&self) -> Option<&[f64]> {
        (self.done < self.samples).then_some(&self.z[..])
    }
    fn provide(&mut self, az: &[f64]) -> Result<()> {
        let what = "hutchinson_diagonal";
        if self.done == self.samples {
            return Err(not_requested(what));
        }
        check_product(what, self.z.len(), az)?;
        for ((a, zi), azi) in self.acc.iter_mut().zip(&self.z).zip(az) {
            *a += zi * azi;
        }
        self.done += 1;
        if self.done < self.samples {
            self.rng.fill_rademacher(&mut self.z);
        }
        Ok(())
    }
    fn products(&self) -> usize {
        self.done
    }
    fn max_products(&self) -> usize {
        self.samples
    }
    fn finish(mut self) -> Result<DiagonalEstimate> {
        if self.done < self.samples {
            return Err(not_done("hutchinson_diagonal"));
        }
        scale(1.0 / self.samples as f64, &mut self.acc);
        Ok(DiagonalEstimate { diagonal: self.acc, products: self.samples })
    }
}
