//! Explicit Gauss–Newton matrices: G = Σᵢ MᵢᵀMᵢ with Mᵢ = LᵢᵀJᵢ, where Jᵢ is the Jacobian of
//! sample i's network output and Hℓ,ᵢ = LᵢLᵢᵀ a closed-form factor of the loss Hessian in output
//! space. A = [M₁ᵀ … M_Nᵀ] (P × N·C) is built from Jᵀ (forward mode, K columns per pass) and the
//! factors; then G = A·Aᵀ is one SIMD SYRK, its diagonal the row sums of squares of A, and a
//! per-layer block a SYRK of a row range of A.
//!
//! The loss-Hessian factors Lᵢ and their conventions live in `loss_hessian.rs` (one home for
//! the loss algebra, shared with K-FAC and the Monte Carlo curvatures).

use super::dual::Scalar;
pub use super::loss_hessian::LossKind;
use super::program::{Mode, Program, Run};
use crate::error::{fmt_shape, Error, Result};
use crate::kernels::{syrk, Isa};
use crate::mem::{product, try_map, try_zeros};

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
        let base = Run::at(params, inputs, Mode::Value);
        if p <= cols {
            let chunk = chunk.clamp(1, p.max(1));
            for start in (0..p).step_by(chunk) {
                let k = chunk.min(p - start);
                let mut eye = try_zeros::<T>(product("Jacobian directions (chunk × P)", &[k, p])?, "Jacobian directions")?;
                (0..k).for_each(|r| eye[r * p + start + r] = T::ONE);
                let o = self.run(isa, f, &Run { mode: Mode::Jvp { tangents: &eye, k }, ..base })?.output;
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
                let g = self.run(isa, f, &Run { mode: Mode::Vjps { cotangents: &eye, k }, ..base })?.grad.expect("reverse sweep ran");
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
        let base = Run::at(params, inputs, Mode::Value);
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
        let base = Run::at(params, inputs, Mode::Value);
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
            let g = self.run(isa, f, &Run { mode: Mode::Vjps { cotangents: &cot, k }, ..base })?.grad.expect("reverse sweep ran");
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
