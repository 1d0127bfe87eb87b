//! Shape ops: reshape, permute, concat (primitives), and the builders of slice, pad, expand and
//! where, each a `Map` (index.rs). All linear; their VJPs are the inverse rearrangement (for a
//! map, its transpose: a scatter-add).

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

// ---- slice, pad, expand, where: linear rearrangements, each a `Map` (y = M·x, VJP Mᵀ·g) ----

use crate::autodiff::dual::SparseMap;
use crate::autodiff::program::Program;
use crate::shape::strides;

/// The map out[i] = x[src(i)] (0 where src is None) over the row-major multi-indices i of
/// `out_shape`.
pub(super) fn map_by_index(label: &'static str, in_len: usize, out_shape: &[usize], src: impl Fn(&[usize]) -> Option<usize>) -> Result<SparseMap> {
    let n = numel(out_shape)?;
    let mut idx = vec![0usize; out_shape.len()];
    let mut cols = crate::mem::try_vec(n, label)?;
    for _ in 0..n {
        cols.push(src(&idx));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < out_shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    SparseMap::gather(label, in_len, cols.into_iter())
}

/// One axis of an ONNX Slice after its clamping rules: (start, step, count).
fn slice_axis(d: usize, start: i64, end: i64, step: i64) -> (i128, i128, usize) {
    let (d, mut s, mut e, st) = (d as i128, start as i128, end as i128, step as i128);
    if s < 0 {
        s += d;
    }
    if e < 0 {
        e += d;
    }
    if st > 0 {
        (s, e) = (s.clamp(0, d), e.clamp(0, d));
    } else {
        (s, e) = (s.clamp(0, (d - 1).max(0)), e.clamp(-1, d - 1));
    }
    // count = max(0, ⌈(e − s)/step⌉)
    let count = if d == 0 {
        0 // (an empty axis has nothing to take, whatever the clamped bounds say)
    } else if st > 0 {
        (e - s + st - 1).div_euclid(st)
    } else {
        (s - e + (-st) - 1).div_euclid(-st)
    };
    (s, st, count.max(0) as usize)
}

impl Program {
    /// ONNX Slice: per listed axis (Python-style; default 0..starts.len()), the elements
    /// start, start + step, … before end, with ONNX's rules: negative start/end count from the
    /// end, then clamp to [0, d] (step > 0) or [0, d−1] / [−1, d−1] (step < 0); step ≠ 0
    /// (default 1). Shape rule: axis a gets max(0, ⌈(end − start)/step⌉).
    pub fn slice(&mut self, x: usize, starts: &[i64], ends: &[i64], axes: Option<&[i64]>, steps: Option<&[i64]>) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let r = xs.len();
        let default_axes: Vec<i64> = (0..starts.len() as i64).collect();
        let axes = axes.unwrap_or(&default_axes);
        let ones = vec![1i64; starts.len()];
        let steps = steps.unwrap_or(&ones);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(Error::invalid(format!(
                "slice: starts, ends, axes and steps must have one entry per sliced axis, got {}, {}, {} and {} (x {})",
                starts.len(),
                ends.len(),
                axes.len(),
                steps.len(),
                fmt_shape(&xs)
            )));
        }
        let mut start = vec![0i128; r];
        let mut step = vec![1i128; r];
        let mut out = xs.clone();
        let mut seen = vec![false; r];
        for j in 0..starts.len() {
            let a = super::axis("slice", axes[j], &xs)?;
            if std::mem::replace(&mut seen[a], true) {
                return Err(Error::invalid(format!("slice: axis {} is listed twice (axes {axes:?}, x {})", axes[j], fmt_shape(&xs))));
            }
            if steps[j] == 0 {
                return Err(Error::invalid(format!("slice: step 0 on axis {a} of {}", fmt_shape(&xs))));
            }
            let (s, st, c) = slice_axis(xs[a], starts[j], ends[j], steps[j]);
            (start[a], step[a], out[a]) = (s, st, c);
        }
        let st = strides(&xs);
        let m = map_by_index("slice", numel(&xs)?, &out, |i| Some(i.iter().enumerate().map(|(a, &k)| (start[a] + step[a] * k as i128) as usize * st[a]).sum()))?;
        self.map(x, m, &out)
    }

    /// ONNX Pad, constant mode: pads = [b₁…b_r, e₁…e_r] (negative crops), `value` outside.
    /// Shape rule: axis a gets b_a + d_a + e_a (≥ 0). y = M·x + value·(1 − M·1).
    pub fn pad(&mut self, x: usize, pads: &[i64], value: f64) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let r = xs.len();
        if pads.len() != 2 * r {
            return Err(Error::invalid(format!("pad: pads needs 2·rank = {} entries [begins…, ends…] for {}, got {}", 2 * r, fmt_shape(&xs), pads.len())));
        }
        let mut out = vec![0usize; r];
        for a in 0..r {
            let len = xs[a] as i128 + pads[a] as i128 + pads[r + a] as i128;
            if len < 0 {
                return Err(Error::shape(format!("pad: pads {pads:?} crop axis {a} of {} below zero", fmt_shape(&xs))));
            }
            out[a] = usize::try_from(len).map_err(|_| Error::shape(format!("pad: axis {a} of {} padded by {pads:?} is too large", fmt_shape(&xs))))?;
        }
        numel(&out)?;
        let st = strides(&xs);
        let src = |i: &[usize]| -> Option<usize> {
            let mut off = 0usize;
            for a in 0..r {
                let k = i[a] as i128 - pads[a] as i128;
                if k < 0 || k >= xs[a] as i128 {
                    return None;
                }
                off += k as usize * st[a];
            }
            Some(off)
        };
        let m = map_by_index("pad", numel(&xs)?, &out, src)?;
        if value == 0.0 {
            return self.map(x, m, &out);
        }
        // value where the map's row is empty (a padded position), 0 where it takes x
        let mut fill = crate::mem::try_vec(m.rows(), "pad")?;
        fill.extend(m.offsets.windows(2).map(|w| if w[0] == w[1] { value } else { 0.0 }));
        let y = self.map(x, m, &out)?;
        let c = self.constant(&out, fill)?;
        self.add(y, c)
    }

    /// ONNX Expand: x broadcast with `shape` in both directions (numpy rules); the output is
    /// broadcast(x.shape, shape). Its adjoint sums over the broadcast axes.
    pub fn expand(&mut self, x: usize, shape: &[usize]) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let out = crate::shape::broadcast("expand", &xs, shape)?;
        let bs = crate::shape::broadcast_strides(&xs, &out);
        let m = map_by_index("expand", numel(&xs)?, &out, |i| Some(i.iter().zip(&bs).map(|(k, s)| k * s).sum()))?;
        self.map(x, m, &out)
    }

    /// where(mask, x, y) with a constant boolean mask: out = x where mask else y, all three
    /// broadcast together (the output shape). A `Map` from concat(x, y) (both flattened).
    pub fn where_const(&mut self, mask_shape: &[usize], mask: &[bool], x: usize, y: usize) -> Result<usize> {
        if numel(mask_shape)? != mask.len() {
            return Err(Error::new(crate::error::ErrorCode::LengthMismatch, format!("where: {} mask values for a mask of shape {}", mask.len(), fmt_shape(mask_shape))));
        }
        let (xs, ys) = (self.shape(x)?.to_vec(), self.shape(y)?.to_vec());
        let out = crate::shape::broadcast("where", &crate::shape::broadcast("where", mask_shape, &xs)?, &ys)?;
        let (nx, ny) = (numel(&xs)?, numel(&ys)?);
        let (bm, bx, by) = (crate::shape::broadcast_strides(mask_shape, &out), crate::shape::broadcast_strides(&xs, &out), crate::shape::broadcast_strides(&ys, &out));
        let dot = |i: &[usize], s: &[usize]| i.iter().zip(s).map(|(k, s)| k * s).sum::<usize>();
        let total = crate::mem::add("where", nx, ny)?;
        let m = map_by_index("where", total, &out, |i| Some(if mask[dot(i, &bm)] { dot(i, &bx) } else { nx + dot(i, &by) }))?;
        let fx = self.reshape(x, &[nx])?;
        let fy = self.reshape(y, &[ny])?;
        let both = self.concat(&[fx, fy], 0)?;
        self.map(both, m, &out)
    }
}
