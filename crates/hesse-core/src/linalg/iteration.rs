//! Reverse communication (ARPACK's pattern): every algorithm of this module is a state machine
//! that asks for one product at a time instead of calling an operator. The caller reads the
//! vector to multiply ([`Iteration::request`]), computes A·v however it likes (in Rust, in a
//! JS function, in a worker, on a GPU, awaited or not) and hands it back
//! ([`Iteration::provide`]); when nothing more is requested, [`Iteration::finish`] gives the
//! result. The synchronous functions ([`super::lanczos()`], [`super::cg()`], …) are [`drive`]
//! over the same state machines, so both paths run the same floating-point operations in the
//! same order and agree bitwise.
//!
//! `provide` checks the product (length n, every entry finite: `check_product`, with the
//! messages the operator path always had); after an error the iteration must not be used
//! further (the caller drops it).

use super::linop::LinOp;
use super::vecops::{check_len, zeros};
use crate::error::{Error, Result};

/// An algorithm waiting for operator products.
pub trait Iteration {
    type Output;
    /// n: the length of every requested vector and of every product.
    fn size(&self) -> usize;
    /// The vector v whose product A·v is wanted next, or None when the algorithm is done.
    fn request(&self) -> Option<&[f64]>;
    /// Hands over A·v for the vector of the last `request`, and advances to the next request
    /// (or to the end). LENGTH_MISMATCH / INVALID_ARGUMENT (non-finite entry) as for an operator;
    /// INVALID_ARGUMENT when nothing was requested.
    fn provide(&mut self, product: &[f64]) -> Result<()>;
    /// Products provided so far.
    fn products(&self) -> usize;
    /// The most products the algorithm can ask for (for progress reports; the run may use fewer).
    fn max_products(&self) -> usize;
    /// The result; INVALID_ARGUMENT while a product is still requested.
    fn finish(self) -> Result<Self::Output>;
}

/// Runs `it` to the end on `op`: the synchronous algorithms are this loop.
pub fn drive<O: LinOp + ?Sized, I: Iteration>(op: &mut O, mut it: I, what: &str) -> Result<I::Output> {
    let n = it.size();
    check_len(what, "the operator", op.size(), n)?;
    let mut out = zeros(n, what)?;
    while let Some(v) = it.request() {
        op.apply(v, &mut out)?;
        it.provide(&out)?;
    }
    it.finish()
}

/// The error of `provide` without a pending request.
pub(crate) fn not_requested(what: &str) -> Error {
    Error::invalid(format!("{what}: a product was provided but none was requested (the iteration is done)"))
}

/// The error of `finish` while a product is pending.
pub(crate) fn not_done(what: &str) -> Error {
    Error::invalid(format!("{what}: the iteration is not done; provide the requested products first"))
}
