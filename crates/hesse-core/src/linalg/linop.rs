//! The operator abstraction: a symmetric linear map known only through its products (a Hessian
//! through HVPs, a Gauss–Newton matrix through GGN products), plus a dense matrix and the shifted
//! operator A + λI built on it.

use super::rng::Rng;
use super::vecops::{axpy, check_len, dot, norm, zeros};
use crate::error::{Error, ErrorCode, Result};

/// A symmetric linear operator of dimension n, known only through products.
///
/// CONTRACT for implementors: `apply` computes out = A·v for the same A on every call (the
/// Krylov methods here assume it), writes every entry of `out`, and returns an error rather than
/// panicking on bad input. Symmetry is the caller's promise; [`check_symmetric`] tests it cheaply.
pub trait LinOp {
    fn size(&self) -> usize;
    /// out = A·v (out.len() == v.len() == size()).
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()>;
}

/// Lets a caller lend an operator (`&mut op`) to an algorithm or wrap a borrowed one in
/// [`Shifted`] without giving it up.
impl<O: LinOp + ?Sized> LinOp for &mut O {
    fn size(&self) -> usize {
        (**self).size()
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        (**self).apply(v, out)
    }
}

/// Applies `op` after checking the lengths, and rejects a non-finite product: a NaN fed into a
/// Krylov recurrence would otherwise surface far away as a meaningless "converged" flag or
/// negative-curvature report. Every algorithm in this module calls the operator through here.
pub(crate) fn apply_checked<O: LinOp + ?Sized>(op: &mut O, v: &[f64], out: &mut [f64], what: &str) -> Result<()> {
    let n = op.size();
    check_len(what, "the input vector", v.len(), n)?;
    check_len(what, "the output vector", out.len(), n)?;
    op.apply(v, out)?;
    if let Some(i) = out.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(format!(
            "{what}: the operator returned a non-finite value ({}) at index {i}; check the model's parameters and loss for NaN/inf",
            out[i]
        )));
    }
    Ok(())
}

/// A dense n×n matrix, row-major, as an operator (tests, small problems, an explicit Hessian).
/// It is not required to be symmetric (so [`check_symmetric`] can be tested on it), but the
/// algorithms of this module assume it is.
#[derive(Clone, Debug)]
pub struct Dense {
    n: usize,
    a: Vec<f64>,
}

impl Dense {
    /// PRECONDITION: a.len() == n·n (row-major); otherwise LENGTH_MISMATCH naming both.
    pub fn new(a: Vec<f64>, n: usize) -> Result<Dense> {
        match n.checked_mul(n) {
            Some(nn) if nn == a.len() => Ok(Dense { n, a }),
            _ => Err(Error::new(
                ErrorCode::LengthMismatch,
                format!("Dense::new: {} values for a {n}×{n} matrix; pass n·n values in row-major order", a.len()),
            )),
        }
    }
    pub fn n(&self) -> usize {
        self.n
    }
    /// The row-major entries.
    pub fn data(&self) -> &[f64] {
        &self.a
    }
}

impl LinOp for Dense {
    fn size(&self) -> usize {
        self.n
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.apply_ref(v, out)
    }
}

impl Dense {
    /// `out[i] = Σⱼ a[i·n + j]·v[j]`; LENGTH_MISMATCH if v or out is not of length n.
    pub fn apply_ref(&self, v: &[f64], out: &mut [f64]) -> Result<()> {
        check_len("Dense::apply", "v", v.len(), self.n)?;
        check_len("Dense::apply", "out", out.len(), self.n)?;
        if self.n == 0 {
            return Ok(());
        }
        for (o, row) in out.iter_mut().zip(self.a.chunks_exact(self.n)) {
            *o = dot(row, v);
        }
        Ok(())
    }
}

/// The operator A + shift·I (damping, or moving a spectrum to make it definite).
#[derive(Clone, Debug)]
pub struct Shifted<O> {
    pub op: O,
    pub shift: f64,
}

impl<O: LinOp> LinOp for Shifted<O> {
    fn size(&self) -> usize {
        self.op.size()
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.op.apply(v, out)?;
        check_len("Shifted::apply", "out", out.len(), v.len())?;
        axpy(self.shift, v, out);
        Ok(())
    }
}

/// Relative asymmetry above which [`check_symmetric`] rejects an operator. Far above f64
/// rounding (~1e-16) and above f32 HVP rounding (~1e-7), far below any real asymmetry.
pub const SYMMETRY_TOL: f64 = 1e-6;

/// Tests symmetry with two products: for Gaussian u, v (from `seed`),
/// gap = |⟨u, A·v⟩ − ⟨A·u, v⟩| / max(‖u‖·‖A·v‖, ‖A·u‖·‖v‖).
///
/// For symmetric A the gap is rounding only. For a non-symmetric A its expected size is about
/// ‖A − Aᵀ‖_F / (√n·‖A‖_F): a one-sided test that catches real asymmetry (an operator that is
/// not a Hessian, a bug in a product), not a proof of symmetry.
///
/// Returns the gap when it is ≤ [`SYMMETRY_TOL`]; otherwise INVALID_ARGUMENT
/// "operator is not symmetric …". Costs 2 products. Errors of `apply` pass through.
pub fn check_symmetric<O: LinOp + ?Sized>(op: &mut O, seed: u64) -> Result<f64> {
    let n = op.size();
    let what = "check_symmetric";
    let mut rng = Rng::new(seed);
    let (mut u, mut v) = (zeros(n, what)?, zeros(n, what)?);
    rng.fill_gaussian(&mut u);
    rng.fill_gaussian(&mut v);
    let (mut au, mut av) = (zeros(n, what)?, zeros(n, what)?);
    apply_checked(op, &u, &mut au, what)?;
    apply_checked(op, &v, &mut av, what)?;
    let scale = (norm(&u) * norm(&av)).max(norm(&au) * norm(&v));
    if scale == 0.0 {
        return Ok(0.0); // A·u = A·v = 0: the zero operator (on these probes) is symmetric
    }
    let (uav, auv) = (dot(&u, &av), dot(&au, &v));
    let gap = (uav - auv).abs() / scale;
    if gap > SYMMETRY_TOL {
        return Err(Error::invalid(format!(
            "operator is not symmetric: ⟨u, A·v⟩ = {uav:e} but ⟨A·u, v⟩ = {auv:e} (relative gap {gap:.2e} > {SYMMETRY_TOL:e}); \
             these methods need a symmetric operator such as a Hessian, Gauss–Newton or Fisher product"
        )));
    }
    Ok(gap)
}
