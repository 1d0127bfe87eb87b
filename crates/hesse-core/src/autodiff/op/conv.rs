//! Convolution: conv2d(x [N, C, H, W], w [O, C, KH, KW]) → [N, O, OH, OW], bilinear in (x, w).

use super::{conv_geometry, misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::Result;

/// OH = (H + 2·ph − KH) / sh + 1, OW alike (checked by the geometry).
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::Conv2d { stride, padding } => {
            let g = conv_geometry(shapes[0], shapes[1], *stride, *padding)?;
            let (oh, ow) = g.out_hw();
            Ok(vec![g.n, g.o, oh, ow])
        }
        _ => Err(misrouted(op, "conv")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    match op {
        Op::Conv2d { stride, padding } => dual::conv2d(cx, conv_geometry(&ins[0].shape, &ins[1].shape, *stride, *padding)?, ins[0], ins[1]),
        _ => Err(misrouted(op, "conv")),
    }
}

/// The adjoints: ∂x = conv2dᵀ_x(g, w), ∂w = conv2dᵀ_w(x, g) (each bilinear itself).
pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    match op {
        Op::Conv2d { stride, padding } => {
            let geo = conv_geometry(&ins[0].shape, &ins[1].shape, *stride, *padding)?;
            if want(0) {
                gs[0] = Some(dual::conv2d_grad_input(cx, geo, &g, ins[1])?);
            }
            if want(1) {
                gs[1] = Some(dual::conv2d_grad_weight(cx, geo, ins[0], &g)?);
            }
        }
        _ => return Err(misrouted(op, "conv")),
    }
    Ok(())
}
