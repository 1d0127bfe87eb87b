//! The loss algebra in output space, stated once: for each loss with a closed-form Hessian in
//! the network output, the factor Lᵣ of Hℓ,ᵣ = LᵣLᵣᵀ for one row r (one position) of the output,
//! and the Monte Carlo alternative (scaled loss gradients at labels drawn from the model). The
//! explicit Gauss–Newton matrix right-multiplies Jᵀ's sample blocks by Lᵣ
//! ([`RowFactor::apply_right`]); K-FAC's B, the Monte Carlo GGN and the Monte Carlo Fisher use
//! Lᵣ's columns or the sampled gradients as backward seeds ([`LossKind::output_space_seeds`]).
//!
//! The output is taken as its rows [R, C] ([`LossKind::rows`]; the objective passes the rows
//! view of `Program::loss_rows`, so cross-entropy's classes are the last axis): a row is one
//! position, R = N·d1·… (N for an [N, C] output). Conventions (PyTorch's mean reductions, as
//! the losses in builder.rs):
//! - MSE averages over all R·C elements: Hℓ = 2/(R·C)·I, Lᵣ = √(2/(R·C))·I;
//! - cross-entropy averages over the R positions: Hℓ,ᵣ = (diag(p) − ppᵀ)/R with p = softmax(fᵣ),
//!   Lᵣ = (diag(√p) − p√pᵀ)/√R (since (diag(√p) − p√pᵀ)(diag(√p) − √p pᵀ) = diag(p) − ppᵀ,
//!   using Σ p = 1);
//! - BCE with logits averages over R·C elements: Hℓ = diag(σ(1 − σ))/(R·C), Lᵣ its square root.

use super::dual::Scalar;
use super::kfac::KfacVariant;
use crate::error::{fmt_shape, Error, Result};
use crate::linalg::Rng;
use crate::mem::{product, try_zeros};

/// The losses whose output-space Hessian has a closed-form factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    Mse,
    CrossEntropy,
    BceWithLogits,
}

impl LossKind {
    /// The rows (R, C) of a network output of `shape` under this loss: the last axis is the row
    /// ([N, …, C] → R = N·…; [N] → (N, 1); a scalar → (1, 1)). Cross-entropy needs its rows view
    /// [R, C] itself (classes last, `Program::loss_rows`): reading an [N, C, d…] output's last axis
    /// as the classes would be silently wrong, so another rank is refused.
    pub fn rows(self, shape: &[usize], what: &str) -> Result<(usize, usize)> {
        match shape.len() {
            0 if self != LossKind::CrossEntropy => Ok((1, 1)),
            1 if self != LossKind::CrossEntropy => Ok((shape[0], 1)),
            2 => Ok((shape[0], shape[1])),
            r if self != LossKind::CrossEntropy && r > 2 => Ok((product(what, &shape[..r - 1])?, shape[r - 1])),
            _ => Err(Error::shape(format!(
                "{what}: cross-entropy's network output must be its rows [R, C] (positions × classes; the objective passes them, or build them with Program::loss_rows), got {}",
                fmt_shape(shape)
            ))),
        }
    }

    pub fn parse(name: &str) -> Result<LossKind> {
        match name {
            "mse" => Ok(LossKind::Mse),
            "cross_entropy" | "ce" => Ok(LossKind::CrossEntropy),
            "bce_with_logits" | "bce" => Ok(LossKind::BceWithLogits),
            _ => Err(Error::invalid(format!("no Gauss–Newton factor for loss '{name}': use mse, cross_entropy or bce_with_logits (or the Hessian)"))),
        }
    }

}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// softmax of one row, stabilized by its max.
fn softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|v| v / z).collect()
}

/// The factor Lᵣ of one row's loss Hessian (C × C).
pub(crate) enum RowFactor {
    /// diag(d) (MSE, BCE).
    Diagonal(Vec<f64>),
    /// (diag(√p) − p√pᵀ)·s (cross-entropy, s = 1/√R).
    Softmax { p: Vec<f64>, s: f64 },
}

impl RowFactor {
    /// Column j of Lᵣ into `out` (C values).
    pub(crate) fn column(&self, j: usize, out: &mut [f64]) {
        match self {
            RowFactor::Diagonal(d) => {
                out.fill(0.0);
                out[j] = d[j];
            }
            // L[a, j] = √p_j·(δ_aj − p_a)·s.
            RowFactor::Softmax { p, s } => {
                for (a, o) in out.iter_mut().enumerate() {
                    *o = p[j].sqrt() * ((if a == j { 1.0 } else { 0.0 }) - p[a]) * s;
                }
            }
        }
    }

    /// b ← b·Lᵣ for a row vector b of C values (one row of Jᵀ's block for this row):
    /// diagonal: b_j·d_j; softmax: (b·L)_j = √p_j·(b_j − Σₐ p_a b_a)·s.
    pub(crate) fn apply_right<T: Scalar>(&self, b: &mut [T]) {
        match self {
            RowFactor::Diagonal(d) => b.iter_mut().zip(d).for_each(|(v, &dj)| *v = T::from_f64(v.to_f64() * dj)),
            RowFactor::Softmax { p, s } => {
                let dot: f64 = b.iter().zip(p).map(|(v, q)| v.to_f64() * q).sum();
                for (v, q) in b.iter_mut().zip(p) {
                    *v = T::from_f64(q.sqrt() * (v.to_f64() - dot) * s);
                }
            }
        }
    }
}

impl LossKind {
    /// Lᵣ for row `row` (C values of the network output) of an output of R rows.
    pub(crate) fn row_factor(self, row: &[f64], r: usize) -> RowFactor {
        let c = row.len();
        match self {
            LossKind::Mse => RowFactor::Diagonal(vec![(2.0 / (r * c) as f64).sqrt(); c]),
            LossKind::BceWithLogits => RowFactor::Diagonal(
                row.iter()
                    .map(|&z| {
                        let s = sigmoid(z);
                        (s * (1.0 - s) / (r * c) as f64).sqrt()
                    })
                    .collect(),
            ),
            LossKind::CrossEntropy => RowFactor::Softmax { p: softmax(row), s: 1.0 / (r as f64).sqrt() },
        }
    }

    /// Replaces each sample block of Jᵀ (`a`, P × R·C row-major: row q's C columns of output
    /// row r) by its product with Lᵣ: A = [L₁ᵀJ₁ … L_RᵀJ_R]ᵀ, so that G = A·Aᵀ.
    pub(crate) fn apply_factor<T: Scalar>(self, a: &mut [T], p: usize, f: &[T], r: usize, c: usize) -> Result<()> {
        let cols = r * c;
        for i in 0..r {
            let row: Vec<f64> = f[i * c..(i + 1) * c].iter().map(|v| v.to_f64()).collect();
            let l = self.row_factor(&row, r);
            for q in 0..p {
                l.apply_right(&mut a[q * cols + i * c..q * cols + (i + 1) * c]);
            }
        }
        Ok(())
    }

    /// Seeds [K, N, C] for reverse sweeps from the network output (row n of seed k is one backward
    /// vector of sample n): the loss-Hessian factor's columns (exact) or scaled loss gradients at
    /// labels drawn from the model (Monte Carlo). K-FAC's B, the Monte Carlo GGN and the Monte
    /// Carlo Fisher all use these.
    pub(crate) fn output_space_seeds(self, f: &[f64], n: usize, c: usize, variant: KfacVariant) -> Result<Vec<f64>> {
        if n * c == 0 {
            return Ok(Vec::new()); // (an empty batch or output: no loop over the other)
        }
        match variant {
            KfacVariant::Exact => {
                let mut u = try_zeros(product("output-space seeds (C × N × C)", &[c, n, c])?, "output-space seeds")?;
                for i in 0..n {
                    let l = self.row_factor(&f[i * c..(i + 1) * c], n);
                    for col in 0..c {
                        l.column(col, &mut u[(col * n + i) * c..(col * n + i + 1) * c]);
                    }
                }
                Ok(u)
            }
            KfacVariant::MonteCarlo { samples, seed } => {
                // Seed s, row i: ∇ℓᵢ at a sampled label, scaled by 1/√(N·S) so that the sum over
                // samples estimates Σᵢ Hℓ,ᵢ/N (ℓᵢ the per-sample loss, the objective their mean).
                let mut rng = Rng::new(seed);
                let scale = 1.0 / ((n * samples) as f64).sqrt();
                let mut u = try_zeros(product("Monte Carlo seeds (samples × N × C)", &[samples, n, c])?, "Monte Carlo seeds")?;
                for s in 0..samples {
                    for i in 0..n {
                        let row = &f[i * c..(i + 1) * c];
                        let out = &mut u[(s * n + i) * c..(s * n + i + 1) * c];
                        match self {
                            // y ~ Cat(softmax f): ∇ = p − onehot(y).
                            LossKind::CrossEntropy => {
                                let p = softmax(row);
                                let (mut acc, r, mut y) = (0.0, rng.uniform(), c - 1);
                                for (j, &q) in p.iter().enumerate() {
                                    acc += q;
                                    if r < acc {
                                        y = j;
                                        break;
                                    }
                                }
                                for (j, o) in out.iter_mut().enumerate() {
                                    *o = scale * (p[j] - if j == y { 1.0 } else { 0.0 });
                                }
                            }
                            // ℓᵢ = ‖f − y‖²/C is −log N(y; f, (C/2)I): ∇ = (2/C)(f − y) = −(2/C)ε.
                            LossKind::Mse => {
                                for o in out.iter_mut() {
                                    *o = scale * (-2.0 / c as f64) * rng.gaussian() * (c as f64 / 2.0).sqrt();
                                }
                            }
                            // ℓᵢ = (1/C)·Σ bce: ∇ of −log p is σ − y, y ~ Bernoulli(σ); ×1/√C.
                            LossKind::BceWithLogits => {
                                for (j, o) in out.iter_mut().enumerate() {
                                    let s = sigmoid(row[j]);
                                    let y = if rng.uniform() < s { 1.0 } else { 0.0 };
                                    *o = scale * (s - y) / (c as f64).sqrt();
                                }
                            }
                        }
                    }
                }
                Ok(u)
            }
        }
    }
}
