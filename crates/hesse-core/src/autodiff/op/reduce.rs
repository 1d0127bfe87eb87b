//! Reductions: sum (one axis or all) and log Σ exp over the last axis.

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
