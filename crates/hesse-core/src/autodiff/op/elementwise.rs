//! Elementwise ops: add, sub, mul, div (NumPy broadcasting), scale, and the pointwise
//! activations. Shape rule: the broadcast of the operands (one operand: its shape).

use super::{misrouted, Op};
use crate::autodiff::act::Act;
use crate::autodiff::dual::{self, Ctx, Dual, Scalar};
use crate::error::Result;
use crate::shape::broadcast;

pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    match op {
        Op::Add | Op::Sub | Op::Mul | Op::Div => broadcast(op.name(), shapes[0], shapes[1]),
        Op::Scale(_) | Op::Act(_) => Ok(shapes[0].to_vec()),
        _ => Err(misrouted(op, "elementwise")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>]) -> Result<Dual<T>> {
    let x = ins[0];
    match op {
        Op::Add => dual::add(cx, x, ins[1]),
        Op::Sub => dual::sub(cx, x, ins[1]),
        Op::Mul => dual::mul(cx, x, ins[1]),
        // a / b = a · (1/b)
        Op::Div => dual::mul(cx, x, &dual::pointwise(cx, Act::Recip, 0, ins[1])?),
        Op::Scale(c) => dual::scale(cx, x, *c),
        Op::Act(a) => dual::pointwise(cx, *a, 0, x),
        _ => Err(misrouted(op, "elementwise")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], out: &Dual<T>, g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let x = ins[0];
    let shape_of = |j: usize| ins[j].shape.clone();
    match op {
        // (a ± b)ᵀ: the gradient, summed over the dims each operand was broadcast along.
        Op::Add | Op::Sub => {
            if want(0) {
                gs[0] = Some(dual::sum_to(cx, &g, &shape_of(0))?);
            }
            if want(1) {
                let gb = dual::sum_to_owned(cx, g, &shape_of(1))?;
                gs[1] = Some(if *op == Op::Sub { dual::scale(cx, &gb, -1.0)? } else { gb });
            }
        }
        // ∂(ab) = b·∂a + a·∂b
        Op::Mul => {
            if want(0) {
                gs[0] = Some(dual::sum_to(cx, &dual::mul(cx, &g, ins[1])?, &shape_of(0))?);
            }
            if want(1) {
                gs[1] = Some(dual::sum_to(cx, &dual::mul(cx, &g, x)?, &shape_of(1))?);
            }
        }
        // ∂(a/b) = ∂a/b − a·∂b/b²
        Op::Div => {
            if want(0) {
                let rb = dual::pointwise(cx, Act::Recip, 0, ins[1])?;
                gs[0] = Some(dual::sum_to(cx, &dual::mul(cx, &g, &rb)?, &shape_of(0))?);
            }
            if want(1) {
                let drb = dual::pointwise(cx, Act::Recip, 1, ins[1])?; // −1/b²
                gs[1] = Some(dual::sum_to(cx, &dual::mul(cx, &dual::mul(cx, &g, x)?, &drb)?, &shape_of(1))?);
            }
        }
        Op::Scale(c) => {
            if want(0) {
                gs[0] = Some(dual::scale(cx, &g, *c)?);
            }
        }
        // ∂f(x) = f′(x)·∂x
        Op::Act(a) => {
            if want(0) {
                gs[0] = Some(dual::mul(cx, &g, &dual::pointwise_with_output(cx, *a, 1, x, Some(&out.p))?)?);
            }
        }
        _ => return Err(misrouted(op, "elementwise")),
    }
    Ok(())
}
