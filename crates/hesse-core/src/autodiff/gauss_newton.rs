//! Explicit Gauss–Newton matrices: G = Σᵢ MᵢᵀMᵢ with Mᵢ = LᵢᵀJᵢ, where Jᵢ is the Jacobian of
//! sample i's network output and Hℓ,ᵢ = LᵢLᵢᵀ a closed-form factor of the loss Hessian in output
//! space. A = [M₁ᵀ … M_Nᵀ] (P × N·C) is built from Jᵀ (forward mode, K columns per pass) and the
//! factors; then G = A·Aᵀ is one SIMD SYRK, its diagonal the row sums of squares of A, and a
//! per-layer block a SYRK of a row range of A.
//!
//! The network output is taken as its rows [R, C] ([`LossKind::rows`]; the objective passes the
//! rows view of `Program::loss_rows`, so cross-entropy's classes are the last axis): a row is one
//! position, R = N·d1·… (N for an [N, C] output). Conventions (PyTorch's mean reductions, as
//! the losses in builder.rs): MSE averages over all R·C elements, so Hℓ = 2/(R·C)·I;
//! cross-entropy averages over the R positions, so Hℓ,ᵣ = (diag(p) − ppᵀ)/R with
//! p = softmax(fᵣ), whose factor is (diag(√p) − p√pᵀ)/√R; BCE with logits averages over R·C
//! elements, so Hℓ = diag(σ(1 − σ))/(R·C).

use super::dual::Scalar;
use super::program::{Program, Run, Wrt};
use crate::error::{fmt_shape, Error, Result};
use crate::kernels::{syrk, Isa};
use crate::mem::{product, try_map, try_zeros};

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

    /// Replaces A_i = Jᵢᵀ (columns of sample i, C of them, of the P × N·C matrix `a`) by A_i·Lᵢ.
    fn apply_factor<T: Scalar>(self, a: &mut [T], p: usize, f: &[T], n: usize, c: usize) -> Result<()> {
        let cols = n * c;
        match self {
            LossKind::Mse => {
                let s = T::from_f64((2.0 / cols as f64).sqrt());
                a.iter_mut().for_each(|v| *v = *v * s);
            }
            LossKind::BceWithLogits => {
                let scale = try_map(
                    f,
                    |&z| {
                        let s = 1.0 / (1.0 + (-z.to_f64()).exp());
                        T::from_f64((s * (1.0 - s) / cols as f64).sqrt())
                    },
                    "Gauss–Newton factor",
                )?;
                for row in a.chunks_exact_mut(cols) {
                    row.iter_mut().zip(&scale).for_each(|(v, &s)| *v = *v * s);
                }
            }
            LossKind::CrossEntropy => {
                // (A·L)[:, c'] = √p_c′ (A[:, c′] − Σ_c p_c A[:, c]) / √N.
                let inv_sqrt_n = 1.0 / (n as f64).sqrt();
                for i in 0..n {
                    let fi = &f[i * c..(i + 1) * c];
                    let m = fi.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.to_f64()));
                    let e: Vec<f64> = fi.iter().map(|&v| (v.to_f64() - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    let prob: Vec<f64> = e.iter().map(|v| v / z).collect();
                    for r in 0..p {
                        let block = &mut a[r * cols + i * c..r * cols + (i + 1) * c];
                        let s: f64 = block.iter().zip(&prob).map(|(v, q)| v.to_f64() * q).sum();
                        for (v, q) in block.iter_mut().zip(&prob) {
                            *v = T::from_f64(q.sqrt() * (v.to_f64() - s) * inv_sqrt_n);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// What to build from A.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GaussNewtonPart {
    /// The dense P × P matrix.
    Dense,
    /// Its diagonal (column sums of squares of the Mᵢ).
    Diagonal,
    /// The diagonal blocks of these (offset, size) parameter ranges, concatenated.
    Blocks(Vec<(usize, usize)>),
}

impl Program {
    /// Jᵀ (P × numel(f), row-major): the transposed Jacobian of node `f` with respect to the
    /// parameters, by whichever mode needs fewer directions (forward mode gives rows of Jᵀ, one
    /// per parameter; reverse mode rows of J, one per output), K directions per pass.
    pub fn jacobian_t<T: Scalar>(&self, isa: Isa, f: usize, params: &[T], inputs: &[&[T]], chunk: usize) -> Result<Vec<T>> {
        let cols = crate::shape::numel(self.shape(f)?)?;
        let p = self.n_params();
        let mut a = try_zeros::<T>(product("Jacobian (P × outputs)", &[p, cols])?, "Jacobian (P × outputs)")?;
        let base = Run { params, inputs, wrt: Wrt::Params, tangents: &[], k: 0, backward: false, cotangent: None, cotangents: &[], check_finite: false, curvature: Default::default() };
        if p <= cols {
            let chunk = chunk.clamp(1, p.max(1));
            for start in (0..p).step_by(chunk) {
                let k = chunk.min(p - start);
                let mut eye = try_zeros::<T>(product("Jacobian directions (chunk × P)", &[k, p])?, "Jacobian directions")?;
                (0..k).for_each(|r| eye[r * p + start + r] = T::ONE);
                let o = self.run(isa, f, &Run { tangents: &eye, k, ..base })?.output;
                match o.t.as_deref() {
                    Some(t) => a[start * cols..(start + k) * cols].copy_from_slice(t),
                    None => a[start * cols..(start + k) * cols].fill(T::ZERO),
                }
            }
        } else {
            let chunk = chunk.clamp(1, cols.max(1));
            for start in (0..cols).step_by(chunk) {
                let k = chunk.min(cols - start);
                let mut eye = try_zeros::<T>(product("Jacobian directions (chunk × outputs)", &[k, cols])?, "Jacobian directions")?;
                (0..k).for_each(|r| eye[r * cols + start + r] = T::ONE);
                let g = self.run(isa, f, &Run { cotangents: &eye, k, backward: true, ..base })?.grad.expect("reverse sweep ran");
                // Row r of J: ∂f_{start+r}/∂θ (all zero where no tangent came back).
                if let Some(rows) = g.t {
                    for r in 0..k {
                        for j in 0..p {
                            a[j * cols + start + r] = rows[r * p + j];
                        }
                    }
                }
            }
        }
        Ok(a)
    }

    /// A = [M₁ᵀ … M_Rᵀ] (P × R·C, row-major) for the network output at node `f`, as its rows
    /// [R, C] ([`LossKind::rows`]).
    pub fn gauss_newton_factor<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], chunk: usize) -> Result<Vec<T>> {
        let (n, c) = kind.rows(self.shape(f)?, "Gauss–Newton")?;
        let base = Run { params, inputs, wrt: Wrt::Params, tangents: &[], k: 0, backward: false, cotangent: None, cotangents: &[], check_finite: false, curvature: Default::default() };
        let fv = self.run(isa, f, &base)?.output.p;
        let mut a = self.jacobian_t(isa, f, params, inputs, chunk)?;
        if n * c > 0 {
            kind.apply_factor(&mut a, self.n_params(), &fv, n, c)?;
        }
        Ok(a)
    }

    /// The Monte Carlo factor A = [… Jᵣᵀsᵣ,ₛ …] (P × R·S): sᵣ,ₛ the loss gradient at a label drawn
    /// from the model's predictive distribution for row r (one label per position), scaled so
    /// that A·Aᵀ is an unbiased estimate of the GGN (each column one reverse sweep's cotangent,
    /// K per pass).
    #[allow(clippy::too_many_arguments)]
    pub fn gauss_newton_mc_factor<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], samples: usize, seed: u64, chunk: usize) -> Result<Vec<T>> {
        let shape = self.shape(f)?.to_vec();
        let (n, c) = kind.rows(&shape, "Monte Carlo Gauss–Newton")?;
        if samples == 0 || n * c == 0 {
            return Err(Error::invalid(format!("Monte Carlo Gauss–Newton: needs a non-empty network output (got {}) and at least one sample (got {samples})", fmt_shape(&shape))));
        }
        let p = self.n_params();
        let base = Run { params, inputs, wrt: Wrt::Params, tangents: &[], k: 0, backward: false, cotangent: None, cotangents: &[], check_finite: false, curvature: Default::default() };
        let fv = try_map(&self.run(isa, f, &base)?.output.p, |v| v.to_f64(), "Monte Carlo Gauss–Newton")?;
        let seeds = kind.output_space_seeds(&fv, n, c, super::KfacVariant::MonteCarlo { samples, seed })?; // [S, N, C]
        let cols = product("Monte Carlo Gauss–Newton (N × samples)", &[n, samples])?;
        let mut a = try_zeros::<T>(product("Monte Carlo Gauss–Newton factor (P × N × samples)", &[p, cols])?, "Monte Carlo Gauss–Newton factor")?;
        let chunk = chunk.clamp(1, cols);
        for start in (0..cols).step_by(chunk) {
            let k = chunk.min(cols - start);
            // Column j = (s, i): the seed's row i in an otherwise zero [N, C] cotangent.
            let mut cot = try_zeros::<T>(product("Monte Carlo cotangents (chunk × N × C)", &[k, n, c])?, "Monte Carlo cotangents")?;
            for r in 0..k {
                let (s, i) = ((start + r) / n, (start + r) % n);
                for q in 0..c {
                    cot[(r * n + i) * c + q] = T::from_f64(seeds[(s * n + i) * c + q]);
                }
            }
            let g = self.run(isa, f, &Run { cotangents: &cot, k, backward: true, ..base })?.grad.expect("reverse sweep ran");
            if let Some(rows) = g.t {
                for r in 0..k {
                    for j in 0..p {
                        a[j * cols + start + r] = rows[r * p + j];
                    }
                }
            }
        }
        Ok(a)
    }

    /// The Gauss–Newton matrix (or its diagonal, or diagonal blocks) by SYRK of the factor.
    #[allow(clippy::too_many_arguments)]
    pub fn gauss_newton<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], chunk: usize, part: &GaussNewtonPart) -> Result<Vec<T>> {
        self.gauss_newton_with(isa, f, kind, params, inputs, chunk, part, None)
    }

    /// [`Program::gauss_newton`], exact or (with `mc` = (samples, seed)) its Monte Carlo estimate.
    #[allow(clippy::too_many_arguments)]
    pub fn gauss_newton_with<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], chunk: usize, part: &GaussNewtonPart, mc: Option<(usize, u64)>) -> Result<Vec<T>> {
        let a = self.factor_with(isa, f, kind, params, inputs, chunk, mc)?;
        reduce_factor(isa, &a, self.n_params(), part)
    }

    /// The exact factor, or with `mc` = (samples, seed) the Monte Carlo one.
    #[allow(clippy::too_many_arguments)]
    fn factor_with<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], chunk: usize, mc: Option<(usize, u64)>) -> Result<Vec<T>> {
        match mc {
            None => self.gauss_newton_factor(isa, f, kind, params, inputs, chunk),
            Some((samples, seed)) => self.gauss_newton_mc_factor(isa, f, kind, params, inputs, samples, seed, chunk),
        }
    }

    /// [`Program::gauss_newton_with`] accumulated in f64 whatever the program's precision
    /// (the factor is built in T, then widened; the SYRK's long sums run in f64).
    #[allow(clippy::too_many_arguments)]
    pub fn gauss_newton_f64<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], chunk: usize, part: &GaussNewtonPart, mc: Option<(usize, u64)>) -> Result<Vec<f64>> {
        let a = self.factor_with(isa, f, kind, params, inputs, chunk, mc)?;
        let wide = try_map(&a, |v| v.to_f64(), "Gauss–Newton factor in f64")?;
        drop(a);
        reduce_factor(isa, &wide, self.n_params(), part)
    }
}

/// G = A·Aᵀ (or its diagonal, or diagonal blocks) from the factor A [P, cols].
fn reduce_factor<T: Scalar>(isa: Isa, a: &[T], p: usize, part: &GaussNewtonPart) -> Result<Vec<T>> {
    let cols = if p == 0 { 0 } else { a.len() / p };
    match part {
        GaussNewtonPart::Dense => syrk(isa, a, p, cols),
        GaussNewtonPart::Diagonal => {
            let mut d = try_zeros(p, "Gauss–Newton diagonal")?;
            if cols > 0 {
                d.iter_mut().zip(a.chunks_exact(cols)).for_each(|(d, row)| *d = row.iter().fold(T::ZERO, |s, &v| s + v * v));
            }
            Ok(d)
        }
        GaussNewtonPart::Blocks(ranges) => {
            // Validate every range and size the result before any work.
            let mut total = 0usize;
            for &(off, size) in ranges {
                if off.checked_add(size).is_none_or(|end| end > p) {
                    return Err(Error::invalid(format!("Gauss–Newton block at offset {off} of size {size} is outside the {p} parameters")));
                }
                total = crate::mem::add("Gauss–Newton blocks", total, product("Gauss–Newton block (size × size)", &[size, size])?)?;
            }
            let mut out = crate::mem::try_vec(total, "Gauss–Newton blocks")?;
            for &(off, size) in ranges {
                out.extend(syrk(isa, &a[off * cols..(off + size) * cols], size, cols)?);
            }
            Ok(out)
        }
    }
}
