//! Reductions along one axis. The input is viewed as [outer, len, inner] (the axis in the
//! middle) and the output as [outer, inner].
//!
//! SIMD: with inner = 1 each output reduces a contiguous row (vector accumulator, then a lane
//! reduction); with inner > 1 whole rows of `inner` outputs are accumulated as vectors.

use super::lanes::{HasLanes, Lanes};
use super::Isa;
use crate::real::Real;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Σ x
    Sum,
    /// max x (NaN-propagating)
    Max,
    /// log Σ exp x, computed as m + log Σ exp(x − m) with m = max x (no overflow).
    LogSumExp,
}

impl Reduce {
    pub fn name(self) -> &'static str {
        match self {
            Reduce::Sum => "sum",
            Reduce::Max => "max",
            Reduce::LogSumExp => "logsumexp",
        }
    }
}

/// PRECONDITION: `x.len() == outer*len*inner`, `out.len() == outer*inner`, `len ≥ 1` for Max
/// and LogSumExp (the ops layer rejects empty max reductions).
pub fn reduce<T: Real + HasLanes>(isa: Isa, op: Reduce, x: &[T], outer: usize, len: usize, inner: usize, out: &mut [T]) {
    assert_eq!(x.len(), outer * len * inner);
    assert_eq!(out.len(), outer * inner);
    if out.is_empty() {
        return;
    }
    if len == 0 {
        // Empty axis: the identity of the reduction (0 for sums, −∞ for max and logsumexp).
        out.fill(if op == Reduce::Sum { T::ZERO } else { T::NEG_INFINITY });
        return;
    }
    match isa {
        Isa::Scalar => reference(op, x, outer, len, inner, out),
        Isa::Simd if inner == 1 => {
            for (o, row) in out.iter_mut().zip(x.chunks_exact(len.max(1))) {
                *o = simd_row(op, row);
            }
        }
        Isa::Simd => {
            for (o, block) in out.chunks_exact_mut(inner).zip(x.chunks_exact(len * inner)) {
                simd_columns(op, block, len, inner, o);
            }
        }
    }
}

fn reference<T: Real>(op: Reduce, x: &[T], outer: usize, len: usize, inner: usize, out: &mut [T]) {
    for o in 0..outer {
        for i in 0..inner {
            let at = |l: usize| x[(o * len + l) * inner + i];
            let max = || (0..len).map(at).fold(T::NEG_INFINITY, Real::max);
            out[o * inner + i] = match op {
                Reduce::Sum => (0..len).fold(T::ZERO, |s, l| s + at(l)),
                Reduce::Max => max(),
                Reduce::LogSumExp => lse_finish(max(), |m| (0..len).fold(T::ZERO, |s, l| s + (at(l) - m).exp())),
            };
        }
    }
}

/// m + log Σ exp(x − m); an all −∞ row gives −∞ and a +∞ max gives +∞ (no ∞ − ∞ = NaN).
#[inline(always)]
fn lse_finish<T: Real>(m: T, sum_exp: impl FnOnce(T) -> T) -> T {
    if m == T::NEG_INFINITY || m == -T::NEG_INFINITY || m.is_nan() {
        return m;
    }
    m + sum_exp(m).ln()
}

fn simd_row<T: Real + HasLanes>(op: Reduce, row: &[T]) -> T {
    let w = <T::V as Lanes>::WIDTH;
    let body = row.len() / w * w;
    let fold = |init: T, fv: &dyn Fn(T::V, T::V) -> T::V, fs: &dyn Fn(T, T) -> T, lanes: &dyn Fn(T::V) -> T| {
        let mut acc = T::V::splat(init);
        for c in row[..body].chunks_exact(w) {
            // SAFETY: `c` has exactly `w` elements.
            acc = fv(acc, unsafe { T::V::load(c.as_ptr()) });
        }
        row[body..].iter().fold(lanes(acc), |s, &v| fs(s, v))
    };
    let max = || fold(T::NEG_INFINITY, &|a, b| a.max(b), &|a, b| a.max(b), &|v| v.reduce_max());
    match op {
        Reduce::Sum => fold(T::ZERO, &|a, b| a.add(b), &|a, b| a + b, &|v| v.sum()),
        Reduce::Max => max(),
        Reduce::LogSumExp => lse_finish(max(), |m| {
            let mv = T::V::splat(m);
            let mut acc = T::V::splat(T::ZERO);
            for c in row[..body].chunks_exact(w) {
                // SAFETY: `c` has exactly `w` elements.
                acc = acc.add(unsafe { T::V::load(c.as_ptr()) }.sub(mv).map(Real::exp));
            }
            row[body..].iter().fold(acc.sum(), |s, &v| s + (v - m).exp())
        }),
    }
}

/// out[i] = reduce over l of block[l*inner + i], for all i at once, `w` lanes at a time.
fn simd_columns<T: Real + HasLanes>(op: Reduce, block: &[T], len: usize, inner: usize, out: &mut [T]) {
    let init = if op == Reduce::Sum { T::ZERO } else { T::NEG_INFINITY };
    out.fill(init);
    let combine_rows = |out: &mut [T], f: &dyn Fn(T::V, T::V) -> T::V, fs: &dyn Fn(T, T) -> T, pre: &dyn Fn(T::V, usize) -> T::V, pres: &dyn Fn(T, usize) -> T| {
        let w = <T::V as Lanes>::WIDTH;
        let body = inner / w * w;
        for l in 0..len {
            let row = &block[l * inner..(l + 1) * inner];
            for j in (0..body).step_by(w) {
                // SAFETY: j + w ≤ body ≤ inner = row.len() = out.len().
                unsafe {
                    let v = pre(T::V::load(row.as_ptr().add(j)), j);
                    f(T::V::load(out.as_ptr().add(j)), v).store(out.as_mut_ptr().add(j));
                }
            }
            for j in body..inner {
                out[j] = fs(out[j], pres(row[j], j));
            }
        }
    };
    match op {
        Reduce::Sum => combine_rows(out, &|a, b| a.add(b), &|a, b| a + b, &|v, _| v, &|v, _| v),
        Reduce::Max => combine_rows(out, &|a, b| a.max(b), &Real::max, &|v, _| v, &|v, _| v),
        Reduce::LogSumExp => {
            let mut m = out.to_vec();
            combine_rows(&mut m, &|a, b| a.max(b), &Real::max, &|v, _| v, &|v, _| v);
            // Shift by a finite max only (an all −∞ or ±∞/NaN column is finished below).
            let shift: Vec<T> = m.iter().map(|&v| if v == T::NEG_INFINITY || v == -T::NEG_INFINITY || v.is_nan() { T::ZERO } else { v }).collect();
            out.fill(T::ZERO);
            combine_rows(
                out,
                &|a, b| a.add(b),
                &|a, b| a + b,
                // SAFETY: j + w ≤ inner = shift.len().
                &|v, j| v.sub(unsafe { T::V::load(shift.as_ptr().add(j)) }).map(Real::exp),
                &|v, j| (v - shift[j]).exp(),
            );
            for (o, &mx) in out.iter_mut().zip(&m) {
                let sum_exp = *o;
                *o = lse_finish(mx, |_| sum_exp);
            }
        }
    }
}
