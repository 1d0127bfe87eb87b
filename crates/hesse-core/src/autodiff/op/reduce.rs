//! Reductions: sum (one axis or all) and log Σ exp over the last axis (primitives); sums and
//! means over several axes, max over several axes (a `MaxMap`), and softmax, log-softmax and
//! logsumexp on any axis (composites, built here).

use super::{misrouted, Op};
use crate::autodiff::act::Act;
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, Result};

/// sum: the axis removed (kept as 1 with `keepdims`; all axes when None); logsumexp: the last
/// axis kept as 1 (it must be non-empty).
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::Sum { axis, keepdims } => Ok(match axis {
            None if *keepdims => vec![1; shapes[0].len()],
            None => vec![],
            Some(a) => {
                let mut s = shapes[0].to_vec();
                if *a >= s.len() {
                    return Err(Error::invalid(format!("sum: axis {a} is out of range for shape {}", fmt_shape(&s))));
                }
                if *keepdims {
                    s[*a] = 1;
                } else {
                    s.remove(*a);
                }
                s
            }
        }),
        Op::LogSumExp => {
            let mut s = shapes[0].to_vec();
            match s.last_mut() {
                Some(l) if *l > 0 => *l = 1,
                _ => return Err(Error::shape(format!("logsumexp: needs a non-empty last axis, got {}", fmt_shape(shapes[0])))),
            }
            Ok(s)
        }
        _ => Err(misrouted(op, "reduce")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    match op {
        Op::Sum { axis, keepdims } => dual::sum(cx, ins[0], *axis, *keepdims),
        Op::LogSumExp => dual::logsumexp(cx, ins[0]),
        _ => Err(misrouted(op, "reduce")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], out: &Dual<T>, g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let (x, g) = (ins[0], &g);
    match op {
        // ∂ of a sum is the gradient broadcast back over the summed axis.
        Op::Sum { axis, .. } => {
            if want(0) {
                let mut kept = x.shape.clone();
                match axis {
                    Some(a) => kept[*a] = 1,
                    None => kept.iter_mut().for_each(|d| *d = 1),
                }
                let g_kept = dual::reshape(cx, g, kept)?;
                gs[0] = Some(dual::expand(cx, &g_kept, &x.shape)?);
            }
        }
        // ∂ lse(x) = softmax(x)·∂x, softmax(x) = exp(x − lse(x)) (lse is the forward value).
        Op::LogSumExp => {
            if want(0) {
                let soft = dual::pointwise(cx, Act::Exp, 0, &dual::sub(cx, x, out)?)?;
                gs[0] = Some(dual::mul(cx, g, &soft)?);
            }
        }
        _ => return Err(misrouted(op, "reduce")),
    }
    Ok(())
}

// ---- several axes at once, max, and the softmax family on any axis (composites) ----

use crate::autodiff::dual::SparseMap;
use crate::autodiff::program::Program;
use crate::shape::numel;

/// The reduced shape and the (sorted, distinct) axes of a multi-axis reduction. None: all axes;
/// an empty list reduces nothing (numpy's `axis=()`).
fn reduced(op: &str, xs: &[usize], axes: Option<&[i64]>, keepdims: bool) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut ax: Vec<usize> = match axes {
        None => (0..xs.len()).collect(),
        Some(a) => a.iter().map(|&a| super::axis(op, a, xs)).collect::<Result<_>>()?,
    };
    ax.sort_unstable();
    if ax.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::invalid(format!("{op}: axes {:?} repeat an axis of {}", axes.unwrap_or(&[]), fmt_shape(xs))));
    }
    let out = (0..xs.len()).filter_map(|a| if ax.contains(&a) { keepdims.then_some(1) } else { Some(xs[a]) }).collect();
    Ok((out, ax))
}

impl Program {
    /// Σ over several axes (Python-style; None: all). Shape rule: the axes removed (kept as 1
    /// with `keepdims`). One single-axis sum per axis, innermost first.
    pub fn sum_axes(&mut self, x: usize, axes: Option<&[i64]>, keepdims: bool) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let (out, ax) = reduced("sum", &xs, axes, keepdims)?;
        if axes.is_none() {
            return self.sum(x, None, keepdims);
        }
        let mut y = x;
        for &a in ax.iter().rev() {
            y = self.sum(y, Some(a as i64), true)?;
        }
        if self.shape(y)? != out.as_slice() {
            y = self.reshape(y, &out)?;
        }
        Ok(y)
    }

    /// The mean over several axes: their sum scaled by 1/Π d_a (an empty reduced axis is an error).
    pub fn mean_axes(&mut self, x: usize, axes: Option<&[i64]>, keepdims: bool) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let (_, ax) = reduced("mean", &xs, axes, keepdims)?;
        let count: usize = ax.iter().map(|&a| xs[a]).product();
        if count == 0 {
            return Err(Error::invalid(format!("mean: cannot average an empty axis of shape {}", fmt_shape(&xs))));
        }
        let s = self.sum_axes(x, axes, keepdims)?;
        if count == 1 {
            return Ok(s);
        }
        self.scale(s, 1.0 / count as f64)
    }

    /// The maximum over several axes (a `MaxMap`: each output's candidates are the inputs that
    /// reduce to it). Its derivative takes the first maximal entry in row-major order (a
    /// subgradient; at ties PyTorch's amax splits the gradient evenly instead, max(dim) takes
    /// one entry). NaN propagates. An empty reduced axis is an error.
    pub fn max_axes(&mut self, x: usize, axes: Option<&[i64]>, keepdims: bool) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let (out, ax) = reduced("max", &xs, axes, keepdims)?;
        let n = numel(&xs)?;
        if ax.iter().any(|&a| xs[a] == 0) {
            return Err(Error::invalid(format!("max: cannot take the maximum over an empty axis of {}", fmt_shape(&xs))));
        }
        // Output (kept) strides over the input's axes: 0 on reduced axes.
        let kept: Vec<usize> = (0..xs.len()).map(|a| if ax.contains(&a) { 1 } else { xs[a] }).collect();
        let ks = crate::shape::strides(&kept);
        let rows = numel(&kept)?;
        // CSR by counting: every input element belongs to exactly one output row.
        let row_of = |e: usize| -> usize {
            let mut rem = e;
            let mut r = 0;
            for a in (0..xs.len()).rev() {
                let i = rem % xs[a];
                rem /= xs[a];
                if !ax.contains(&a) {
                    r += i * ks[a];
                }
            }
            r
        };
        let mut offsets: Vec<usize> = crate::mem::try_vec(rows + 1, "max")?;
        offsets.resize(rows + 1, 0);
        for e in 0..n {
            offsets[row_of(e) + 1] += 1;
        }
        for r in 0..rows {
            offsets[r + 1] += offsets[r];
        }
        let mut fill = crate::mem::try_copy(&offsets, "max")?;
        let mut cols = crate::mem::try_vec(n, "max")?;
        cols.resize(n, 0);
        for e in 0..n {
            let r = row_of(e);
            cols[fill[r]] = e;
            fill[r] += 1;
        }
        let m = SparseMap { label: "max", in_len: n, offsets, cols, weights: None };
        self.max_map(x, m, &out)
    }

    /// `f` applied over the last axis after moving `axis` there, then moved back.
    fn on_axis(&mut self, op: &str, x: usize, axis: i64, f: impl FnOnce(&mut Self, usize) -> Result<usize>) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let a = super::axis(op, axis, &xs)?;
        let last = xs.len() - 1;
        if a == last {
            return f(self, x);
        }
        let mut perm: Vec<usize> = (0..xs.len()).collect();
        perm.swap(a, last);
        let t = self.permute(x, &perm)?;
        let y = f(self, t)?;
        self.permute(y, &perm) // (a swap is its own inverse)
    }

    /// softmax over a Python-style axis (the last-axis rule, moved there and back).
    pub fn softmax_axis(&mut self, x: usize, axis: i64) -> Result<usize> {
        self.on_axis("softmax", x, axis, |p, t| p.softmax(t))
    }
    /// log-softmax over a Python-style axis.
    pub fn log_softmax_axis(&mut self, x: usize, axis: i64) -> Result<usize> {
        self.on_axis("log_softmax", x, axis, |p, t| p.log_softmax(t))
    }
    /// log Σ exp over a Python-style axis, kept as size 1.
    pub fn logsumexp_axis(&mut self, x: usize, axis: i64) -> Result<usize> {
        self.on_axis("logsumexp", x, axis, |p, t| p.logsumexp(t))
    }
}
