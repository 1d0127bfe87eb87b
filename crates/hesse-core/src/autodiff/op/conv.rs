//! Convolution: conv2d(x [N, C, H, W], w [O, C/groups, KH, KW]) → [N, O, OH, OW] with stride,
//! pads [top, left, bottom, right], dilation and groups (PyTorch's F.conv2d, ONNX Conv);
//! bilinear in (x, w). The geometry and its checks are `kernels::Conv2d::new`.

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::Result;
use crate::kernels::Conv2d;

/// OH = ⌊(H + top + bottom − (dh·(KH − 1) + 1)) / sh⌋ + 1, OW alike (checked by the geometry,
/// which also checks C = groups · w.shape[1] and that groups divides O).
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::Conv2d(a) => {
            let g = Conv2d::new(shapes[0], shapes[1], *a)?;
            let (oh, ow) = g.out_hw();
            Ok(vec![g.n, g.o, oh, ow])
        }
        _ => Err(misrouted(op, "conv")),
    }
}

/// y = conv2d(x, w); ẏ = conv2d(ẋ, w) + conv2d(x, ẇ) (dual::bilinear).
pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    match op {
        Op::Conv2d(a) => dual::conv2d(cx, Conv2d::new(&ins[0].shape, &ins[1].shape, *a)?, ins[0], ins[1]),
        _ => Err(misrouted(op, "conv")),
    }
}

/// The adjoints: ∂x = conv2dᵀ_x(g, w), ∂w = conv2dᵀ_w(x, g) (each bilinear itself, per group).
pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    match op {
        Op::Conv2d(a) => {
            let geo = Conv2d::new(&ins[0].shape, &ins[1].shape, *a)?;
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
