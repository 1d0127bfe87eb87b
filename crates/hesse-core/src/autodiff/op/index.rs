//! Indexing ops: pick (x[i, labels[i]], the gather of cross-entropy); `Map`, a sparse linear map
//! fixed at build time (the primitive under slice, pad, expand, where, constant gather and
//! average pooling); `GatherInput`, ONNX Gather at the indices of an index input; `MaxMap`, the
//! largest of each output's candidates. Also the builders of gather.

use super::{misrouted, Op};
use crate::autodiff::dual::{self, Ctx, Dual, Scalar, SparseMap};
use crate::autodiff::program::Program;
use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::shape::numel;
use std::sync::Arc;

/// pick: values [N, C] and labels [N] → [N]. map / max-map: the node's shape (numel = M's rows),
/// the input of M's column count. gather: x.shape[..axis] + index_shape + x.shape[axis+1..].
pub(super) fn infer_shape(op: &Op, shapes: &[&[usize]], target: Option<&[usize]>) -> Result<Vec<usize>> {
    match op {
        Op::Pick => {
            let (x, l) = (shapes[0], shapes[1]);
            if x.len() != 2 || l.len() != 1 || x[0] != l[0] {
                return Err(Error::shape(format!("pick: expected values [N, C] and labels [N], got {} and {}", fmt_shape(x), fmt_shape(l))));
            }
            Ok(vec![x[0]])
        }
        Op::Map(m) | Op::MaxMap(m) => {
            let t = target.ok_or_else(|| Error::invalid(format!("{}: needs an output shape", m.label)))?;
            m.check()?;
            if numel(shapes[0])? != m.in_len || numel(t)? != m.rows() {
                return Err(Error::shape(format!("{}: the map takes {} values to {}, got input {} and output {}", m.label, m.in_len, m.rows(), fmt_shape(shapes[0]), fmt_shape(t))));
            }
            Ok(t.to_vec())
        }
        Op::GatherInput { axis, index_shape, .. } => gather_shape(shapes[0], *axis, index_shape),
        _ => Err(misrouted(op, "index")),
    }
}

pub(super) fn eval<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], shape: &[usize]) -> Result<Dual<T>> {
    let x = ins[0];
    match op {
        Op::Pick => dual::pick(cx, x, &labels(&ins[1].p, x.shape[1])?),
        // y = M·x
        Op::Map(m) => dual::sparse_apply(cx, x, m, shape.to_vec()),
        Op::GatherInput { axis, slot, .. } => dual::sparse_apply(cx, x, &input_gather_map(cx, &x.shape, *axis, *slot)?, shape.to_vec()),
        // y = S(x)·x with S(x) the argmax selection of each row (piecewise linear).
        Op::MaxMap(m) => dual::sparse_apply(cx, x, &dual::argmax_map(&x.p, m)?, shape.to_vec()),
        _ => Err(misrouted(op, "index")),
    }
}

pub(super) fn vjp<T: Scalar>(op: &Op, cx: &Ctx, ins: &[&Dual<T>], g: Dual<T>, want: &dyn Fn(usize) -> bool, gs: &mut [Option<Dual<T>>]) -> Result<()> {
    let x = ins[0];
    match op {
        // The adjoint of a gather: g[i] scattered back to [i, labels[i]], zero elsewhere.
        Op::Pick => {
            if want(0) {
                let c = x.shape[1];
                gs[0] = Some(dual::unpick(cx, &g, &labels(&ins[1].p, c)?, c)?);
            }
        }
        // ∂x = Mᵀ·g (scatter-add).
        Op::Map(m) => {
            if want(0) {
                gs[0] = Some(dual::sparse_apply_t(cx, &g, m, x.shape.clone())?);
            }
        }
        Op::GatherInput { axis, slot, .. } => {
            if want(0) {
                gs[0] = Some(dual::sparse_apply_t(cx, &g, &input_gather_map(cx, &x.shape, *axis, *slot)?, x.shape.clone())?);
            }
        }
        // ∂x = S(x)ᵀ·g: the gradient goes to the selected (argmax) entry; S is locally
        // constant in x, so the rule has no second-order term.
        Op::MaxMap(m) => {
            if want(0) {
                gs[0] = Some(dual::sparse_apply_t(cx, &g, &dual::argmax_map(&x.p, m)?, x.shape.clone())?);
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

/// ONNX Gather's shape rule: x.shape[..axis] + indices.shape + x.shape[axis+1..].
fn gather_shape(x: &[usize], axis: usize, index_shape: &[usize]) -> Result<Vec<usize>> {
    if axis >= x.len() {
        return Err(Error::invalid(format!("gather: axis {axis} is out of range for {}", fmt_shape(x))));
    }
    let mut out = x[..axis].to_vec();
    out.extend_from_slice(index_shape);
    out.extend_from_slice(&x[axis + 1..]);
    numel(&out)?;
    Ok(out)
}

/// The gather map of x (shape `xs`) along `axis` at `indices`: out[o, j, i] = x[o, idx[j], i].
/// A negative index counts from the end once (numpy take); outside [−d, d) is an error naming
/// the index, its position and the bound.
fn gather_map(xs: &[usize], axis: usize, indices: &[i64]) -> Result<SparseMap> {
    let d = xs[axis];
    let (outer, inner): (usize, usize) = (xs[..axis].iter().product(), xs[axis + 1..].iter().product());
    let mut resolved = crate::mem::try_vec(indices.len(), "gather")?;
    for (j, &v) in indices.iter().enumerate() {
        let w = if v < 0 { v as i128 + d as i128 } else { v as i128 };
        if w < 0 || w >= d as i128 {
            return Err(Error::invalid(format!("gather: index {v} at position {j} is out of range for axis {axis} of size {d} of {} (valid: −{d}..{d})", fmt_shape(xs))));
        }
        resolved.push(w as usize);
    }
    let n = crate::mem::product("gather", &[outer, indices.len(), inner])?;
    let cols = (0..n).map(|e| {
        let (o, rest) = (e / (indices.len() * inner), e % (indices.len() * inner));
        let (j, i) = (rest / inner, rest % inner);
        Some((o * d + resolved[j]) * inner + i)
    });
    SparseMap::gather("gather", numel(xs)?, cols)
}

/// The gather map at this run's values of index input `slot`.
fn input_gather_map(cx: &Ctx, xs: &[usize], axis: usize, slot: usize) -> Result<SparseMap> {
    let idx = cx.index_inputs.get(slot).ok_or_else(|| Error::invalid(format!("gather: no index input slot {slot}")))?;
    gather_map(xs, axis, idx)
}

/// Where a gather's indices come from.
#[derive(Clone, Debug)]
pub enum Indices {
    /// Fixed integers of `shape`.
    Const { shape: Vec<usize>, values: Vec<i64> },
    /// The index input of this slot (staged per run).
    Input(usize),
}

impl Program {
    /// ONNX Gather (numpy take) of node x along a Python-style axis: linear in x, its VJP a
    /// scatter-add; not differentiable in the indices (integers).
    pub fn gather(&mut self, x: usize, axis: i64, indices: Indices) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let a = super::axis("gather", axis, &xs)?;
        match indices {
            Indices::Const { shape, values } => {
                if numel(&shape)? != values.len() {
                    return Err(Error::new(ErrorCode::LengthMismatch, format!("gather: {} indices for an index shape {}", values.len(), fmt_shape(&shape))));
                }
                let out = gather_shape(&xs, a, &shape)?;
                let m = gather_map(&xs, a, &values)?;
                self.push(Op::Map(Arc::new(m)), &[x], Some(&out))
            }
            Indices::Input(slot) => {
                let index_shape = self.index_input_shape(slot).ok_or_else(|| Error::invalid(format!("gather: no index input slot {slot} (the program has {})", self.n_index_inputs())))?.to_vec();
                self.push(Op::GatherInput { axis: a, slot, index_shape }, &[x], None)
            }
        }
    }

    /// A `Map` node: y = M·x shaped `shape`.
    pub(crate) fn map(&mut self, x: usize, m: SparseMap, shape: &[usize]) -> Result<usize> {
        self.push(Op::Map(Arc::new(m)), &[x], Some(shape))
    }

    /// A `MaxMap` node: per output element, the largest of its candidates.
    pub(crate) fn max_map(&mut self, x: usize, m: SparseMap, shape: &[usize]) -> Result<usize> {
        self.push(Op::MaxMap(Arc::new(m)), &[x], Some(shape))
    }
}
