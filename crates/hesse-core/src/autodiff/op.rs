//! The primitive ops of a program. Each op states, side by side, its shape rule, its forward
//! (on duals, so forward mode comes with it) and its VJP (written with the dual primitives, so
//! the same rule differentiates again under forward-over-reverse).
//!
//! The set is deliberately small; everything else (linear layers, layer norm, softmax,
//! log-softmax, the losses) is composed from it by the builders in `program.rs`.

use super::act::Act;
use super::dual::{self, Ctx, Dual, Scalar};
use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::kernels::{Conv2d, ConvAttrs};
use crate::shape::{broadcast, normalize_axis, numel};

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A slice of the flat parameter vector, starting at `offset`.
    Param { offset: usize },
    /// The `slot`-th data input.
    Input { slot: usize },
    /// A constant tensor captured while tracing (values in f64, cast to the run's dtype; shared,
    /// so that copying a program, e.g. for an operator's snapshot, copies no data).
    Const(std::sync::Arc<Vec<f64>>),
    Add,
    Sub,
    Mul,
    Div,
    /// c·x
    Scale(f64),
    /// op(A)·op(B), 2-D.
    MatMul { ta: bool, tb: bool },
    /// conv2d(x [N, C, H, W], w [O, C/groups, KH, KW]) with stride, pads [top, left, bottom,
    /// right], dilation and groups (PyTorch's F.conv2d, ONNX Conv).
    Conv2d(ConvAttrs),
    /// Same elements, the node's shape.
    Reshape,
    /// 2-D transpose.
    Transpose,
    /// Axis permutation: output axis a is input axis perm[a].
    Permute(Vec<usize>),
    /// Concatenation of all inputs along `axis`.
    Concat { axis: usize },
    Sum { axis: Option<usize>, keepdims: bool },
    Act(Act),
    /// log Σ exp over the last axis, kept as size 1.
    LogSumExp,
    /// x[i, labels[i]] for x [N, C] and integer class labels [N] (stored as floats): a gather
    /// along the last axis, linear in x, not differentiable in the labels. (Cross-entropy picks
    /// with it instead of summing one-hot · logits, whose 0 · (−∞) would be NaN.)
    Pick,
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Param { .. } => "param",
            Op::Input { .. } => "input",
            Op::Const(_) => "constant",
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Scale(_) => "scale",
            Op::MatMul { .. } => "matmul",
            Op::Conv2d(_) => "conv2d",
            Op::Reshape => "reshape",
            Op::Transpose => "transpose",
            Op::Permute(_) => "permute",
            Op::Concat { .. } => "concat",
            Op::Sum { .. } => "sum",
            Op::Act(a) => a.name(),
            Op::LogSumExp => "logsumexp",
            Op::Pick => "pick",
        }
    }

    /// The output shape for inputs of `shapes` (`target` for Reshape), or an error naming the op.
    pub fn infer_shape(&self, shapes: &[&[usize]], target: Option<&[usize]>) -> Result<Vec<usize>> {
        let name = self.name();
        match self {
            Op::Param { .. } | Op::Input { .. } => Ok(target.ok_or_else(|| Error::invalid("a leaf needs a shape"))?.to_vec()),
            Op::Const(v) => {
                let t = target.ok_or_else(|| Error::invalid("a constant needs a shape"))?;
                if numel(t)? != v.len() {
                    return Err(Error::new(ErrorCode::LengthMismatch, format!("constant: {} values for shape {}", v.len(), fmt_shape(t))));
                }
                Ok(t.to_vec())
            }
            Op::Add | Op::Sub | Op::Mul | Op::Div => broadcast(name, shapes[0], shapes[1]),
            Op::Scale(_) | Op::Act(_) => Ok(shapes[0].to_vec()),
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
            Op::Conv2d(a) => {
                let g = Conv2d::new(shapes[0], shapes[1], *a)?;
                let (oh, ow) = g.out_hw();
                Ok(vec![g.n, g.o, oh, ow])
            }
            Op::Reshape => {
                let t = target.ok_or_else(|| Error::invalid("reshape needs a target shape"))?;
                if numel(t)? != numel(shapes[0])? {
                    return Err(Error::shape(format!("reshape: cannot reshape {} to {}", fmt_shape(shapes[0]), fmt_shape(t))));
                }
                Ok(t.to_vec())
            }
            Op::Transpose => {
                if shapes[0].len() != 2 {
                    return Err(Error::shape(format!("transpose: expected a 2-D operand, got {}", fmt_shape(shapes[0]))));
                }
                Ok(vec![shapes[0][1], shapes[0][0]])
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
            Op::Pick => {
                let (x, l) = (shapes[0], shapes[1]);
                if x.len() != 2 || l.len() != 1 || x[0] != l[0] {
                    return Err(Error::shape(format!("pick: expected values [N, C] and labels [N], got {} and {}", fmt_shape(x), fmt_shape(l))));
                }
                Ok(vec![x[0]])
            }
        }
    }

    /// The forward pass on duals (so it is also the JVP).
    pub fn eval<T: Scalar>(&self, cx: &Ctx, ins: &[&Dual<T>], shape: &[usize]) -> Result<Dual<T>> {
        let x = match (self, ins.first()) {
            (Op::Const(v), _) => return Ok(Dual::constant(shape.to_vec(), crate::mem::try_map(v, |&x| T::from_f64(x), "constant")?)),
            (_, Some(x)) => *x,
            (_, None) => return Err(Error::invalid(format!("{}: a leaf has no forward rule (the program sets its value)", self.name()))),
        };
        match self {
            Op::Param { .. } | Op::Input { .. } | Op::Const(_) => unreachable!("handled above: leaves have no inputs"),
            Op::Add => dual::add(cx, x, ins[1]),
            Op::Sub => dual::sub(cx, x, ins[1]),
            Op::Mul => dual::mul(cx, x, ins[1]),
            // a / b = a · (1/b)
            Op::Div => dual::mul(cx, x, &dual::pointwise(cx, Act::Recip, 0, ins[1])?),
            Op::Scale(c) => dual::scale(cx, x, *c),
            Op::MatMul { ta, tb } => dual::matmul(cx, x, ins[1], *ta, *tb),
            Op::Conv2d(a) => dual::conv2d(cx, Conv2d::new(&x.shape, &ins[1].shape, *a)?, x, ins[1]),
            Op::Reshape => dual::reshape(cx, x, shape.to_vec()),
            Op::Transpose => dual::transpose(cx, x),
            Op::Permute(perm) => dual::permute(cx, x, perm),
            Op::Concat { axis } => dual::concat(cx, ins, *axis, shape.to_vec()),
            Op::Sum { axis, keepdims } => dual::sum(cx, x, *axis, *keepdims),
            Op::Act(a) => dual::pointwise(cx, *a, 0, x),
            Op::LogSumExp => dual::logsumexp(cx, x),
            Op::Pick => dual::pick(cx, x, &labels(&ins[1].p, x.shape[1])?),
        }
    }

    /// Gradients of ⟨g, op(ins)⟩ with respect to each input (None where `needs[j]` is false or
    /// the op is not differentiable in that input). `out` is the forward value.
    pub fn vjp<T: Scalar>(&self, cx: &Ctx, ins: &[&Dual<T>], out: &Dual<T>, g: Dual<T>, needs: &[bool]) -> Result<Vec<Option<Dual<T>>>> {
        let want = |j: usize| needs.get(j).copied().unwrap_or(false);
        let Some(&x) = ins.first() else {
            return Ok(Vec::new()); // leaves: nothing to propagate to
        };
        let g_owned = g;
        let g = &g_owned;
        let shape_of = |j: usize| ins[j].shape.clone();
        let mut gs: Vec<Option<Dual<T>>> = vec![None; ins.len()];
        match self {
            Op::Param { .. } | Op::Input { .. } | Op::Const(_) => {}
            // The adjoint of a gather: g[i] scattered back to [i, labels[i]], zero elsewhere.
            Op::Pick => {
                if want(0) {
                    gs[0] = Some(dual::unpick(cx, g, &labels(&ins[1].p, x.shape[1])?, x.shape[1])?);
                }
            }
            // (a ± b)ᵀ: the gradient, summed over the dims each operand was broadcast along.
            Op::Add | Op::Sub => {
                if want(0) {
                    gs[0] = Some(dual::sum_to(cx, g, &shape_of(0))?);
                }
                if want(1) {
                    let gb = dual::sum_to_owned(cx, g_owned, &shape_of(1))?;
                    gs[1] = Some(if *self == Op::Sub { dual::scale(cx, &gb, -1.0)? } else { gb });
                }
            }
            // ∂(ab) = b·∂a + a·∂b
            Op::Mul => {
                if want(0) {
                    gs[0] = Some(dual::sum_to(cx, &dual::mul(cx, g, ins[1])?, &shape_of(0))?);
                }
                if want(1) {
                    gs[1] = Some(dual::sum_to(cx, &dual::mul(cx, g, x)?, &shape_of(1))?);
                }
            }
            // ∂(a/b) = ∂a/b − a·∂b/b²
            Op::Div => {
                if want(0) {
                    let rb = dual::pointwise(cx, Act::Recip, 0, ins[1])?;
                    gs[0] = Some(dual::sum_to(cx, &dual::mul(cx, g, &rb)?, &shape_of(0))?);
                }
                if want(1) {
                    let drb = dual::pointwise(cx, Act::Recip, 1, ins[1])?; // −1/b²
                    gs[1] = Some(dual::sum_to(cx, &dual::mul(cx, &dual::mul(cx, g, x)?, &drb)?, &shape_of(1))?);
                }
            }
            Op::Scale(c) => {
                if want(0) {
                    gs[0] = Some(dual::scale(cx, g, *c)?);
                }
            }
            // C = op(A)·op(B): ∂op(A) = ∂C·op(B)ᵀ, ∂op(B) = op(A)ᵀ·∂C, then undo the op.
            Op::MatMul { ta, tb } => {
                let (a, b) = (x, ins[1]);
                if want(0) {
                    gs[0] = Some(if *ta { dual::matmul(cx, b, g, *tb, true)? } else { dual::matmul(cx, g, b, false, !*tb)? });
                }
                if want(1) {
                    gs[1] = Some(if *tb { dual::matmul(cx, g, a, true, *ta)? } else { dual::matmul(cx, a, g, !*ta, false)? });
                }
            }
            // conv2d is bilinear in (x, w); its two adjoints are bilinear too (kernels/conv.rs).
            Op::Conv2d(a) => {
                let geo = Conv2d::new(&x.shape, &ins[1].shape, *a)?;
                if want(0) {
                    gs[0] = Some(dual::conv2d_grad_input(cx, geo, g, ins[1])?);
                }
                if want(1) {
                    gs[1] = Some(dual::conv2d_grad_weight(cx, geo, x, g)?);
                }
            }
            Op::Reshape => {
                if want(0) {
                    gs[0] = Some(dual::reshape(cx, g, shape_of(0))?);
                }
            }
            Op::Transpose => {
                if want(0) {
                    gs[0] = Some(dual::transpose(cx, g)?);
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
            // ∂f(x) = f′(x)·∂x
            Op::Act(a) => {
                if want(0) {
                    gs[0] = Some(dual::mul(cx, g, &dual::pointwise_with_output(cx, *a, 1, x, Some(&out.p))?)?);
                }
            }
            // ∂ lse(x) = softmax(x)·∂x, softmax(x) = exp(x − lse(x)) (lse is the forward value).
            Op::LogSumExp => {
                if want(0) {
                    let soft = dual::pointwise(cx, Act::Exp, 0, &dual::sub(cx, x, out)?)?;
                    gs[0] = Some(dual::mul(cx, g, &soft)?);
                }
            }
        }
        Ok(gs)
    }
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

/// Resolves a Python-style axis for the builders.
pub fn axis(op: &str, axis: i64, shape: &[usize]) -> Result<usize> {
    normalize_axis(op, axis, shape)
}

