//! Stochastic trace and diagonal estimators from products only: Hutchinson (1989), Hutch++
//! (Meyer, Musco, Musco, Woodruff 2021) and the Bekas–Kokiopoulou–Saad (2007) diagonal.
//! All probes are Rademacher (±1), the minimum-variance choice for Hutchinson.

use super::linop::{apply_checked, LinOp};
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
    let what = "hutchinson_trace";
    check_samples(what, "samples", samples, 1)?;
    let n = op.size();
    let mut rng = Rng::new(seed);
    let (mut z, mut az) = (zeros(n, what)?, zeros(n, what)?);
    let mut xs = crate::mem::try_vec(samples.min(1 << 20), what)?;
    for _ in 0..samples {
        rng.fill_rademacher(&mut z);
        apply_checked(op, &z, &mut az, what)?;
        xs.push(dot(&z, &az));
    }
    let (trace, std_error) = mean_and_error(&xs);
    // n ≤ 1: zᵀAz = a₁₁ for z = ±1 (every probe is exact), so there is no error to estimate.
    let std_error = if n <= 1 { 0.0 } else { std_error };
    Ok(TraceEstimate { trace, std_error, products: samples })
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
    let what = "hutch_pp_trace";
    check_samples(what, "matvecs", matvecs, 3)?;
    let n = op.size();
    let mut rng = Rng::new(seed);
    let k = (matvecs / 3).min(n);
    let (mut z, mut az) = (zeros(n, what)?, zeros(n, what)?);
    // Q = orth(A·S), column by column: CGS2 against the accepted columns; a column that keeps
    // less than 1e-10 of its norm is in their span (rank-deficient sketch) and is dropped.
    let mut q: Vec<f64> = Vec::new();
    reserve(&mut q, area(k, n, what)?, what)?;
    let mut coef = Vec::new();
    let mut products = 0;
    for _ in 0..k {
        rng.fill_rademacher(&mut z);
        apply_checked(op, &z, &mut az, what)?;
        products += 1;
        let before = norm(&az);
        orthogonalize(&q, &mut az, &mut coef);
        let after = norm(&az);
        if after > 1e-10 * before && after > 0.0 {
            scale(1.0 / after, &mut az);
            q.extend_from_slice(&az);
        }
    }
    let r = q.len().checked_div(n).unwrap_or(0);
    // tr(QᵀAQ) = Σⱼ qⱼᵀ·A·qⱼ, exact.
    let mut exact = 0.0;
    for j in 0..r {
        apply_checked(op, &q[j * n..(j + 1) * n], &mut az, what)?;
        exact += dot(&q[j * n..(j + 1) * n], &az);
    }
    products += r;
    // Hutchinson on the complement: g' = (I−QQᵀ)g, then g'ᵀ·A·g' (= gᵀ(I−QQᵀ)A(I−QQᵀ)g).
    let samples = matvecs.saturating_sub(k + r);
    let mut xs = crate::mem::try_vec(samples.min(1 << 20), what)?;
    if r < n {
        for _ in 0..samples {
            rng.fill_rademacher(&mut z);
            orthogonalize(&q, &mut z, &mut coef);
            apply_checked(op, &z, &mut az, what)?;
            xs.push(dot(&z, &az));
        }
        products += samples;
    }
    // r = n: Q is a basis of the whole space, tr(QᵀAQ) = tr(A) and the complement is {0}: exact.
    let (rest, std_error) = if r == n { (0.0, 0.0) } else if xs.is_empty() { (0.0, f64::NAN) } else { mean_and_error(&xs) };
    Ok(TraceEstimate { trace: exact + rest, std_error, products })
}

/// Diagonal estimate diag(A) ≈ (1/s)·Σᵢ zᵢ ⊙ (A·zᵢ) with s Rademacher probes (Bekas et al.;
/// the estimator behind AdaHessian's Hessian diagonal).
///
/// Unbiased; entry i has variance Σ_{j≠i} aᵢⱼ²/s. Costs s products.
/// Errors: INVALID_ARGUMENT if samples = 0; errors of the operator pass through.
pub fn hutchinson_diagonal<O: LinOp + ?Sized>(op: &mut O, samples: usize, seed: u64) -> Result<DiagonalEstimate> {
    let what = "hutchinson_diagonal";
    check_samples(what, "samples", samples, 1)?;
    let n = op.size();
    let mut rng = Rng::new(seed);
    let (mut z, mut az, mut acc) = (zeros(n, what)?, zeros(n, what)?, zeros(n, what)?);
    for _ in 0..samples {
        rng.fill_rademacher(&mut z);
        apply_checked(op, &z, &mut az, what)?;
        for ((a, zi), azi) in acc.iter_mut().zip(&z).zip(&az) {
            *a += zi * azi;
        }
    }
    scale(1.0 / samples as f64, &mut acc);
    Ok(DiagonalEstimate { diagonal: acc, products: samples })
}
