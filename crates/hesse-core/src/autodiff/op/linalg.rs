//! Linear-algebra ops: matmul and the 2-D transpose.

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, Result};

/// matmul: op(A) [m, k] · op(B) [k, n] → [m, n] (op = transpose where `ta`/`tb`);
/// transpose: [r, c] → [c, r].
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::MatMul { ta, tb } => {
            let (a, b) = (shapes[0], shapes[1]);
            if a.len() != 2 || b.len() != 2 {
                return Err(Error::shape(format!("matmul: expected 2-D operands, got {} and {}", fmt_shape(a), fmt_shape(b))));
            }
            let (m, ka) = if *ta { (a[1], a[0]) } else { (a[0], a[1]) };
            let (kb, n) = if *tb { (b[1], b[0]) } else { (b[0], b[1]) };
            if ka != kb {
                return Err(Error::shape(format!(
                    "matmul: inner dimensions differ: {}{} · {}{}",
                    fmt_shape(a),
                    if *ta { "ᵀ" } else { "" },
                    fmt_shape(b),
                    if *tb { "ᵀ" } else { "" }
                )));
            }
            Ok(vec![m, n])
        }
        Op::Transpose => {
            if shapes[0].len() != 2 {
                return Err(Error::shape(format!("transpose: expected a 2-D operand, got {}", fmt_shape(shapes[0]))));
            }
            Ok(vec![shapes[0][1], shapes[0][0]])
        }
        _ => Err(misrouted(op, "linalg")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    match op {
        Op::MatMul { ta, tb } => dual::matmul(cx, ins[0], ins[1], *ta, *tb),
        Op::Transpose => dual::transpose(cx, ins[0]),
        _ => Err(misrouted(op, "linalg")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let g = &g;
    match op {
        // C = op(A)·op(B): ∂op(A) = ∂C·op(B)ᵀ, ∂op(B) = op(A)ᵀ·∂C, then undo the op.
        Op::MatMul { ta, tb } => {
            let (a, b) = (ins[0], ins[1]);
            if want(0) {
                gs[0] = Some(if *ta { dual::matmul(cx, b, g, *tb, true)? } else { dual::matmul(cx, g, b, false, !*tb)? });
            }
            if want(1) {
                gs[1] = Some(if *tb { dual::matmul(cx, g, a, true, *ta)? } else { dual::matmul(cx, a, g, !*ta, false)? });
            }
        }
        Op::Transpose => {
            if want(0) {
                gs[0] = Some(dual::transpose(cx, g)?);
            }
        }
        _ => return Err(misrouted(op, "linalg")),
    }
    Ok(())
}
