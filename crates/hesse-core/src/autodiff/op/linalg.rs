//! Linear-algebra ops: matmul (batched, NumPy semantics on rank ≥ 2) and the 2-D transpose.

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, Result};
use crate::shape::broadcast;

/// matmul: op(A) [..., m, k] · op(B) [..., k, n] → [batch, m, n] with op a transpose of the last
/// two axes where `ta`/`tb` and batch the broadcast of both operands' leading axes.
pub(super) fn matmul_shape(a: &[usize], b: &[usize], ta: bool, tb: bool) -> Result<Vec<usize>> {
    if a.len() < 2 || b.len() < 2 {
        return Err(Error::shape(format!("matmul: expected operands of rank ≥ 2, got {} and {}", fmt_shape(a), fmt_shape(b))));
    }
    let (ra, rb) = (a.len(), b.len());
    let (m, ka) = if ta { (a[ra - 1], a[ra - 2]) } else { (a[ra - 2], a[ra - 1]) };
    let (kb, n) = if tb { (b[rb - 1], b[rb - 2]) } else { (b[rb - 2], b[rb - 1]) };
    if ka != kb {
        return Err(Error::shape(format!(
            "matmul: inner dimensions differ: {}{} · {}{}",
            fmt_shape(a),
            if ta { "ᵀ" } else { "" },
            fmt_shape(b),
            if tb { "ᵀ" } else { "" }
        )));
    }
    let mut out = broadcast("matmul", &a[..ra - 2], &b[..rb - 2])
        .map_err(|_| Error::shape(format!("matmul: the batch dimensions of {} and {} cannot be broadcast together", fmt_shape(a), fmt_shape(b))))?;
    out.extend([m, n]);
    crate::shape::numel(&out)?;
    Ok(out)
}

/// Whether A [..., m, k] (not transposed) times a 2-D B folds A's batch into its rows: one
/// [B·m, k]·op(B) GEMM instead of B small ones (a linear layer on [N, T, d] activations).
fn folds(a: &[usize], b: &[usize], ta: bool) -> bool {
    a.len() > 2 && b.len() == 2 && !ta
}

/// A dual [..., r, c] viewed as [(...)·r, c] (a copy; reshape is linear).
fn rows<T: Scalar>(cx: &Ctx, x: &Dual<T>) -> Result<Dual<T>> {
    let c = *x.shape.last().expect("rank ≥ 2");
    dual::reshape(cx, x, vec![x.numel().checked_div(c).unwrap_or(0), c])
}

/// Batched op(A)·op(B) on duals (bilinear: the 2-D rule per batch, or one GEMM when it folds).
fn bmm<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>, ta: bool, tb: bool) -> Result<Dual<T>> {
    let shape = matmul_shape(&a.shape, &b.shape, ta, tb)?;
    if folds(&a.shape, &b.shape, ta) && a.numel() > 0 {
        let y = dual::matmul(cx, &rows(cx, a)?, b, false, tb)?;
        return dual::reshape(cx, &y, shape);
    }
    dual::batched_matmul(cx, a, b, ta, tb, shape)
}

/// transpose: [r, c] → [c, r].
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::MatMul { ta, tb } => matmul_shape(shapes[0], shapes[1], *ta, *tb),
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
        Op::MatMul { ta, tb } => bmm(cx, ins[0], ins[1], *ta, *tb),
        Op::Transpose => dual::transpose(cx, ins[0]),
        _ => Err(misrouted(op, "linalg")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let g = &g;
    match op {
        // C = op(A)·op(B) per batch: ∂op(A) = ∂C·op(B)ᵀ, ∂op(B) = op(A)ᵀ·∂C, then undo the op;
        // an operand broadcast over batch dims gets the sum over them (sum_to its shape).
        Op::MatMul { ta, tb } => {
            let (a, b) = (ins[0], ins[1]);
            if want(0) {
                let ga = if *ta { bmm(cx, b, g, *tb, true)? } else { bmm(cx, g, b, false, !*tb)? };
                gs[0] = Some(dual::sum_to_owned(cx, ga, &a.shape)?);
            }
            if want(1) {
                let gb = if folds(&a.shape, &b.shape, *ta) && a.numel() > 0 {
                    // Σ over the batch of the per-batch adjoints is one GEMM over the folded rows.
                    let (af, gf) = (rows(cx, a)?, rows(cx, g)?);
                    if *tb {
                        dual::matmul(cx, &gf, &af, true, false)?
                    } else {
                        dual::matmul(cx, &af, &gf, true, false)?
                    }
                } else if *tb {
                    bmm(cx, g, a, true, *ta)?
                } else {
                    bmm(cx, a, g, !*ta, false)?
                };
                gs[1] = Some(dual::sum_to_owned(cx, gb, &b.shape)?);
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
