//! The primitive ops of a program, one file per family. Each family file states, side by side
//! for each of its ops, the shape rule, the forward (on duals, so forward mode comes with it)
//! and the VJP (written with the dual primitives, so the same rule differentiates again under
//! forward-over-reverse). This file holds the enum, the names, and the dispatch to the
//! families:
//!
//! | family        | ops                                     |
//! |---------------|-----------------------------------------|
//! | `elementwise` | add, sub, mul, div, scale, activations  |
//! | `linalg`      | matmul (batched, broadcast), transpose  |
//! | `shape`       | reshape, permute, concat; slice, pad, expand, where (as maps) |
//! | `reduce`      | sum, logsumexp; multi-axis sum/mean/max, softmax on any axis |
//! | `conv`        | conv2d                                  |
//! | `index`       | pick, map (sparse linear), gather (index input), max-select |
//! | `pool`        | max/average/global-average pooling (as maps) |
//!
//! The set is deliberately small. The linear rearrangements (slice, pad, expand, where with a
//! constant mask, gather at constant indices, average pooling) are one primitive, `Map`: a
//! sparse matrix M fixed when the program is built, y = M·x, VJP Mᵀ·g (a scatter-add). Max
//! reductions and max pooling are one more, `MaxMap`: per output the candidates of M's row,
//! the one largest in the primal taken (so locally a gather; VJP a scatter at the same
//! indices). Everything else (linear layers, layer norm, softmax, log-softmax, the losses) is
//! composed from primitives by the builders.

mod conv;
mod elementwise;
mod index;
mod linalg;
mod pool;
mod reduce;
mod shape;

pub use index::Indices;
pub use pool::Pool2d;

use super::act::Act;
use super::dual::{Ctx, Dual, Scalar, SparseMap};
use std::sync::Arc;
use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::kernels::ConvAttrs;
use crate::shape::{normalize_axis, numel};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// op(A)·op(B) on the last two axes (NumPy matmul for rank ≥ 2: the batch dims broadcast).
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
    /// y = M·x for a sparse map M fixed at build time (slice, pad, expand, where, constant
    /// gather, average pooling), shaped as the node.
    Map(Arc<SparseMap>),
    /// ONNX Gather of x along `axis` at the indices of index input `slot` (shape
    /// `index_shape`): out = x.shape[..axis] + index_shape + x.shape[axis+1..].
    GatherInput { axis: usize, slot: usize, index_shape: Vec<usize> },
    /// Per output element the largest of its candidates (the entries of M's row) in the
    /// primal: max reductions and max pooling.
    MaxMap(Arc<SparseMap>),
}

/// The family file that holds an op's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Leaf,
    Elementwise,
    Linalg,
    Shape,
    Reduce,
    Conv,
    Index,
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
            Op::Map(m) | Op::MaxMap(m) => m.label,
            Op::GatherInput { .. } => "gather",
        }
    }

    fn family(&self) -> Family {
        match self {
            Op::Param { .. } | Op::Input { .. } | Op::Const(_) => Family::Leaf,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Scale(_) | Op::Act(_) => Family::Elementwise,
            Op::MatMul { .. } | Op::Transpose => Family::Linalg,
            Op::Reshape | Op::Permute(_) | Op::Concat { .. } => Family::Shape,
            Op::Sum { .. } | Op::LogSumExp => Family::Reduce,
            Op::Conv2d(_) => Family::Conv,
            Op::Pick | Op::Map(_) | Op::GatherInput { .. } | Op::MaxMap(_) => Family::Index,
        }
    }

    /// The output shape for inputs of `shapes` (`target` for Reshape), or an error naming the op.
    pub fn infer_shape(&self, shapes: &[&[usize]], target: Option<&[usize]>) -> Result<Vec<usize>> {
        match self.family() {
            Family::Leaf => leaf_shape(self, target),
            Family::Elementwise => elementwise::infer_shape(self, shapes),
            Family::Linalg => linalg::infer_shape(self, shapes),
            Family::Shape => shape::infer_shape(self, shapes, target),
            Family::Reduce => reduce::infer_shape(self, shapes),
            Family::Conv => conv::infer_shape(self, shapes),
            Family::Index => index::infer_shape(self, shapes, target),
        }
    }

    /// The forward pass on duals (so it is also the JVP).
    pub fn eval<T: Scalar>(&self, cx: &Ctx, ins: &[&Dual<T>], shape: &[usize]) -> Result<Dual<T>> {
        if let Op::Const(v) = self {
            return Ok(Dual::constant(shape.to_vec(), crate::mem::try_map(v, |&x| T::from_f64(x), "constant")?));
        }
        if ins.is_empty() {
            return Err(Error::invalid(format!("{}: a leaf has no forward rule (the program sets its value)", self.name())));
        }
        match self.family() {
            Family::Leaf => Err(Error::invalid(format!("{}: a leaf has no forward rule (the program sets its value)", self.name()))),
            Family::Elementwise => elementwise::eval(self, cx, ins),
            Family::Linalg => linalg::eval(self, cx, ins),
            Family::Shape => shape::eval(self, cx, ins, shape),
            Family::Reduce => reduce::eval(self, cx, ins),
            Family::Conv => conv::eval(self, cx, ins),
            Family::Index => index::eval(self, cx, ins, shape),
        }
    }

    /// Gradients of ⟨g, op(ins)⟩ with respect to each input (None where `needs[j]` is false or
    /// the op is not differentiable in that input). `out` is the forward value.
    pub fn vjp<T: Scalar>(&self, cx: &Ctx, ins: &[&Dual<T>], out: &Dual<T>, g: Dual<T>, needs: &[bool]) -> Result<Vec<Option<Dual<T>>>> {
        if ins.is_empty() {
            return Ok(Vec::new()); // leaves: nothing to propagate to
        }
        let want = |j: usize| needs.get(j).copied().unwrap_or(false);
        let mut gs: Vec<Option<Dual<T>>> = vec![None; ins.len()];
        match self.family() {
            Family::Leaf => {}
            Family::Elementwise => elementwise::vjp(self, cx, ins, out, g, &want, &mut gs)?,
            Family::Linalg => linalg::vjp(self, cx, ins, g, &want, &mut gs)?,
            Family::Shape => shape::vjp(self, cx, ins, g, &want, &mut gs)?,
            Family::Reduce => reduce::vjp(self, cx, ins, out, g, &want, &mut gs)?,
            Family::Conv => conv::vjp(self, cx, ins, g, &want, &mut gs)?,
            Family::Index => index::vjp(self, cx, ins, g, &want, &mut gs)?,
        }
        Ok(gs)
    }
}

/// Leaves take the node's shape; a constant's values must fill it.
fn leaf_shape(op: &Op, target: Option<&[usize]>) -> Result<Vec<usize>> {
    match op {
        Op::Const(v) => {
            let t = target.ok_or_else(|| Error::invalid("a constant needs a shape"))?;
            if numel(t)? != v.len() {
                return Err(Error::new(ErrorCode::LengthMismatch, format!("constant: {} values for shape {}", v.len(), fmt_shape(t))));
            }
            Ok(t.to_vec())
        }
        _ => Ok(target.ok_or_else(|| Error::invalid("a leaf needs a shape"))?.to_vec()),
    }
}

/// The error of a family function handed an op of another family (a dispatch bug, reported
/// rather than panicking).
fn misrouted(op: &Op, family: &str) -> Error {
    Error::invalid(format!("{}: not a {family} op (internal dispatch error)", op.name()))
}

/// Resolves a Python-style axis for the builders.
pub fn axis(op: &str, axis: i64, shape: &[usize]) -> Result<usize> {
    normalize_axis(op, axis, shape)
}
