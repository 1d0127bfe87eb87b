//! Indexing ops: pick (x[i, labels[i]], the gather of cross-entropy).

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, ErrorCode, Result};

/// pick: values [N, C] and labels [N] → [N].
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::Pick => {
            let (x, l) = (shapes[0], shapes[1]);
            if x.len() != 2 || l.len() != 1 || x[0] != l[0] {
                return Err(Error::shape(format!("pick: expected values [N, C] and labels [N], got {} and {}", fmt_shape(x), fmt_shape(l))));
            }
            Ok(vec![x[0]])
        }
        _ => Err(misrouted(op, "index")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    match op {
        Op::Pick => dual::pick(cx, ins[0], &labels(&ins[1].p, ins[0].shape[1])?),
        _ => Err(misrouted(op, "index")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    match op {
        // The adjoint of a gather: g[i] scattered back to [i, labels[i]], zero elsewhere.
        Op::Pick => {
            if want(0) {
                let c = ins[0].shape[1];
                gs[0] = Some(dual::unpick(cx, &g, &labels(&ins[1].p, c)?, c)?);
            }
        }
        _ => return Err(misrouted(op, "index")),
    }
    Ok(())
}

/// Class labels (stored as floats) as indices, each checked to be an integer in 0..classes.
fn labels<T: Scalar>(labels: &[T], classes: usize) -> Result<Vec<usize>> {
    let mut out = crate::mem::try_vec(labels.len(), "labels")?;
    for (i, &l) in labels.iter().enumerate() {
        let v = l.to_f64();
        if !(v >= 0.0 && v < classes as f64 && v.fract() == 0.0) {
            return Err(Error::new(ErrorCode::InvalidArgument, format!("cross_entropy: label {v} at index {i} is not a class index in 0..{classes}")));
        }
        out.push(v as usize);
    }
    Ok(out)
}
