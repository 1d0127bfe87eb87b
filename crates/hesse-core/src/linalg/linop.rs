//! The operator abstraction: a symmetric linear map known only through its products (a Hessian
//! through HVPs, a Gauss–Newton matrix through GGN products), plus a dense matrix and the shifted
//! operator A + λI built on it.

use super::iteration::{drive, not_done, not_requested, Iteration};
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

/// Checks a product handed to an iteration's `provide` (see [`super::Iteration`]): length n,
/// then every entry finite. A NaN fed into a Krylov recurrence would otherwise surface far away
/// as a meaningless "converged" flag or negative-curvature report. Every algorithm in this
/// module receives its products through here.
pub(crate) fn check_product(what: &str, n: usize, out: &[f64]) -> Result<()> {
    check_len(what, "the output vector", out.len(), n)?;
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
    drive(op, SymmetryCheck::new(op.size(), seed)?, "check_symmetric")
}

/// [`check_symmetric`] as a reverse-communication iteration: requests u, then v (Gaussian,
/// from the seed); `finish` gives the gap or the "not symmetric" error.
pub struct SymmetryCheck {
    u: Vec<f64>,
    v: Vec<f64>,
    au: Vec<f64>,
    av: Vec<f64>,
    got: usize,
}

impl SymmetryCheck {
    pub fn new(n: usize, seed: u64) -> Result<SymmetryCheck> {
        let what = "check_symmetric";
        let mut rng = Rng::new(seed);
        let (mut u, mut v) = (zeros(n, what)?, zeros(n, what)?);
        rng.fill_gaussian(&mut u);
        rng.fill_gaussian(&mut v);
        Ok(SymmetryCheck { u, v, au: zeros(n, what)?, av: zeros(n, what)?, got: 0 })
    }
}

impl Iteration for SymmetryCheck {
    type Output = f64;
    fn size(&self) -> usize {
        self.u.len()
    }
    fn request(&self) -> Option<&[f64]> {
        match self.got {
            0 => Some(&self.u),
            1 => Some(&self.v),
            _ => None,
        }
    }
    fn provide(&mut self, product: &[f64]) -> Result<()> {
        let what = "check_symmetric";
        check_product(what, self.u.len(), product)?;
        match self.got {
            0 => self.au.copy_from_slice(product),
            1 => self.av.copy_from_slice(product),
            _ => return Err(not_requested(what)),
        }
        self.got += 1;
        Ok(())
    }
    fn products(&self) -> usize {
        self.got
    }
    fn max_products(&self) -> usize {
        2
    }
    fn finish(self) -> Result<f64> {
        if self.got < 2 {
            return Err(not_done("check_symmetric"));
        }
        self.gap()
    }
}

impl SymmetryCheck {
    /// The relative gap of the two products, or the "not symmetric" error. Precondition: both
    /// products provided.
    pub(crate) fn gap(&self) -> Result<f64> {
        let (u, v, au, av) = (&self.u, &self.v, &self.au, &self.av);
        let scale = (norm(u) * norm(av)).max(norm(au) * norm(v));
        if scale == 0.0 {
            return Ok(0.0); // A·u = A·v = 0: the zero operator (on these probes) is symmetric
        }
        let (uav, auv) = (dot(u, av), dot(au, v));
        let gap = (uav - auv).abs() / scale;
        if gap > SYMMETRY_TOL {
            return Err(Error::invalid(format!(
                "operator is not symmetric: ⟨u, A·v⟩ = {uav:e} but ⟨A·u, v⟩ = {auv:e} (relative gap {gap:.2e} > {SYMMETRY_TOL:e}); \
             these methods need a symmetric operator such as a Hessian, Gauss–Newton or Fisher product"
            )));
        }
        Ok(gap)
    }
}
