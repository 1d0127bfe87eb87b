//! Shape ops: reshape, permute, concat. All linear; their VJPs are the inverse rearrangement.

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, Result};
use crate::shape::numel;

/// reshape: the target (same element count); permute: out[a] = in[perm[a]]; concat: the
/// inputs' common shape with the axis lengths added.
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]], target: Option<&[usize]>) -> Result<Vec<usize>> {
    match op {
        Op::Reshape => {
            let t = target.ok_or_else(|| Error::invalid("reshape needs a target shape"))?;
            if numel(t)? != numel(shapes[0])? {
                return Err(Error::shape(format!("reshape: cannot reshape {} to {}", fmt_shape(shapes[0]), fmt_shape(t))));
            }
            Ok(t.to_vec())
        }
        Op::Permute(perm) => {
            let s = shapes[0];
            let mut seen = vec![false; s.len()];
            if perm.len() != s.len() || !perm.iter().all(|&a| a < s.len() && !std::mem::replace(&mut seen[a], true)) {
                return Err(Error::invalid(format!("permute: {perm:?} is not a permutation of the {} axes of {}", s.len(), fmt_shape(s))));
            }
            Ok(perm.iter().map(|&a| s[a]).collect())
        }
        Op::Concat { axis } => {
            let first = shapes.first().ok_or_else(|| Error::invalid("concat: needs at least one input"))?;
            if *axis >= first.len() {
                return Err(Error::invalid(format!("concat: axis {axis} is out of range for {}", fmt_shape(first))));
            }
            let mut out = first.to_vec();
            out[*axis] = 0;
            for s in shapes {
                if s.len() != first.len() || s.iter().zip(first.iter()).enumerate().any(|(i, (a, b))| i != *axis && a != b) {
                    return Err(Error::shape(format!("concat along axis {axis}: {} and {} differ off that axis", fmt_shape(first), fmt_shape(s))));
                }
                out[*axis] = crate::mem::add("concat", out[*axis], s[*axis])?;
            }
            Ok(out)
        }
        _ => Err(misrouted(op, "shape")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], shape: &[usize]) -> Result<Dual<T>> {
    match op {
        Op::Reshape => dual::reshape(cx, ins[0], shape.to_vec()),
        Op::Permute(perm) => dual::permute(cx, ins[0], perm),
        Op::Concat { axis } => dual::concat(cx, ins, *axis, shape.to_vec()),
        _ => Err(misrouted(op, "shape")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let g = &g;
    match op {
        Op::Reshape => {
            if want(0) {
                gs[0] = Some(dual::reshape(cx, g, ins[0].shape.clone())?);
            }
        }
        // The adjoint of a permutation is the inverse permutation.
        Op::Permute(perm) => {
            if want(0) {
                let mut inv = vec![0; perm.len()];
                perm.iter().enumerate().for_each(|(o, &i)| inv[i] = o);
                gs[0] = Some(dual::permute(cx, g, &inv)?);
            }
        }
        // The adjoint of concatenation slices the gradient back into the inputs' parts.
        Op::Concat { axis } => {
            let mut at = 0;
            for (j, x) in ins.iter().enumerate() {
                let len = x.shape[*axis];
                if want(j) {
                    gs[j] = Some(dual::slice(cx, g, *axis, at, len)?);
                }
                at += len;
            }
        }
        _ => return Err(misrouted(op, "shape")),
    }
    Ok(())
}
