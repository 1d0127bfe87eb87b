//! K-FAC's layers found by pattern in any program (an `nn.sequential`, an ONNX import, a traced
//! function), not only in the layers `sequential` recorded.
//!
//! - **Linear**: `MatMul(x, W)` (no transpose of x) whose weight operand is a parameter block
//!   used nowhere else, either directly or through a 2-D transpose (`Transpose`, `Permute([1,0])`)
//!   also used once. With op(W) the [in, out] matrix of the product, the block is stored either
//!   [out, in] (PyTorch's nn.Linear, `Gemm(transB=1)`, `matmul(x, Wᵀ)`) or [in, out] (the ONNX
//!   exporter's folded `MatMul(x, Wᵀ)` initializer): `weight_transposed` says which. x may have
//!   any rank ≥ 1: every row of its last axis is one input (a position, K-FAC "expand" for
//!   [N, T, D]). Then optionally Reshapes that keep the last axis (the importer's
//!   [N·T, D] → [N, T, D]) and an `Add` of a bias: a parameter [out] used once, directly or
//!   reshaped, broadcast along the last axis only (`Add(b, ·)`, bias first, as the exporter
//!   writes it, or `Add(·, b)`).
//! - **Conv2d**: `Conv2d(x, W)` with W a parameter [O, C, KH, KW] used once, C the input's
//!   channels (a grouped conv has fewer: not matched) and the output the size of an undilated
//!   conv; optionally an `Add` of a bias [O] broadcast over [1, O, 1, 1] (reshaped or not).
//!
//! Each intermediate of a match (the product, its reshapes) must have exactly one consumer among
//! the nodes the network output depends on, so the gradient at the layer output is the weight's
//! whole gradient. Parameter blocks no pattern claims (layer norm's affine, embeddings, shared
//! or recurrent weights, grouped convs, …) are reported in `uncovered`, never dropped silently.

use super::op::Op;
use crate::kernels::{Conv2d, ConvAttrs};
use super::program::{LayerKind, Program};
use crate::error::{Error, Result};
use crate::shape::numel;

/// A linear or conv2d layer found in a program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KfacLayer {
    /// The layer's index in its `sequential` (PyTorch's module index) where `sequential` built
    /// it, else its position among the layers found (in parameter order).
    pub index: usize,
    pub kind: LayerKind,
    /// The node whose rows are the layer's inputs: linear, the last axis of x; conv2d, x [N, C, H, W].
    pub input: usize,
    /// The layer's output s (after the bias), whose gradients give B.
    pub output: usize,
    /// Offset and size of the weight block in the parameter vector.
    pub weight: (usize, usize),
    /// Linear only: the weight block is stored [in, out] (rather than [out, in]).
    pub weight_transposed: bool,
    pub bias: Option<(usize, usize)>,
    /// Inputs per row (in, or C·KH·KW for conv2d), without the bias's 1.
    pub d_in: usize,
    pub d_out: usize,
    /// Conv2d: kernel and attributes (groups 1: a grouped conv's weight is block-sparse, no single A ⊗ B).
    pub conv: Option<((usize, usize), ConvAttrs)>,
}

/// The layers K-FAC covers, and the parameter blocks (offset, size) it does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KfacCoverage {
    pub layers: Vec<KfacLayer>,
    pub uncovered: Vec<(usize, usize)>,
}

impl Program {
    /// The linear and conv2d layers the network output at node `f` depends on, by pattern (see
    /// the module docs), in parameter order, and the parameter blocks no layer covers.
    pub fn kfac_layers(&self, f: usize) -> Result<KfacCoverage> {
        let nodes = self.nodes();
        if f >= nodes.len() {
            return Err(Error::invalid(format!("K-FAC: no node {f} in this program")));
        }
        let anc = self.ancestors(f);
        // Consumers among the nodes f depends on (an op reading a node twice counts twice).
        let mut uses = vec![0usize; f + 1];
        let mut user = vec![usize::MAX; f + 1];
        for i in (0..=f).filter(|&i| anc[i]) {
            for &j in &nodes[i].ins {
                uses[j] += 1;
                user[j] = i;
            }
        }
        let only_user = |j: usize| (uses[j] == 1 && user[j] != usize::MAX).then_some(user[j]);
        let is_param = |j: usize| matches!(nodes[j].op, Op::Param { .. });
        let offset = |j: usize| match nodes[j].op {
            Op::Param { offset } => offset,
            _ => unreachable!("checked to be a parameter"),
        };
        // A weight operand: a parameter used once, or a 2-D transpose of one (both used once).
        let weight_view = |b: usize| -> Option<(usize, bool)> {
            if uses[b] != 1 {
                return None;
            }
            match &nodes[b].op {
                Op::Param { .. } => Some((b, false)),
                Op::Transpose => Some(nodes[b].ins[0]).filter(|&p| is_param(p) && uses[p] == 1).map(|p| (p, true)),
                Op::Permute(perm) if perm.as_slice() == [1, 0] => Some(nodes[b].ins[0]).filter(|&p| is_param(p) && uses[p] == 1).map(|p| (p, true)),
                _ => None,
            }
        };
        // A bias operand for an output of `rank` axes: a parameter of d values used once, as is
        // or reshaped (the reshape used once), whose shape right-aligned to the output is 1 on
        // every axis but `axis`, where it is d.
        let bias_view = |b: usize, rank: usize, axis: usize, d: usize| -> Option<usize> {
            if uses[b] != 1 {
                return None;
            }
            let p = match nodes[b].op {
                Op::Param { .. } => b,
                Op::Reshape => Some(nodes[b].ins[0]).filter(|&p| is_param(p) && uses[p] == 1)?,
                _ => return None,
            };
            let s = &nodes[b].shape;
            if numel(&nodes[p].shape).ok()? != d || s.len() > rank || axis < rank - s.len() {
                return None;
            }
            let lead = rank - s.len();
            s.iter().enumerate().all(|(i, &v)| v == if lead + i == axis { d } else { 1 }).then_some(p)
        };
        // An Add of `out` and a bias (either order) that keeps out's shape: (the add, the bias).
        let bias_add = |out: usize, axis: usize, d: usize| -> Option<(usize, usize)> {
            let u = only_user(out)?;
            let n = &nodes[u];
            if !matches!(n.op, Op::Add) || n.shape != nodes[out].shape || n.ins[0] == n.ins[1] {
                return None;
            }
            let other = if n.ins[0] == out { n.ins[1] } else { n.ins[0] };
            bias_view(other, n.shape.len(), axis, d).map(|p| (u, p))
        };
        let block = |p: usize| (offset(p), nodes[p].shape.iter().product::<usize>());

        let mut layers = Vec::new();
        for m in (0..=f).filter(|&m| anc[m]) {
            let node = &nodes[m];
            match &node.op {
                Op::MatMul { ta: false, tb, .. } => {
                    let (x, b) = (node.ins[0], node.ins[1]);
                    let Some((w, view_t)) = weight_view(b) else { continue };
                    let ws = &nodes[w].shape;
                    if ws.len() != 2 {
                        continue;
                    }
                    // op(b) is [in, out]; the block is [out, in] unless tb and the view agree.
                    let weight_transposed = *tb == view_t;
                    let (d_out, d_in) = if weight_transposed { (ws[1], ws[0]) } else { (ws[0], ws[1]) };
                    if nodes[x].shape.last() != Some(&d_in) || node.shape.last() != Some(&d_out) {
                        continue;
                    }
                    let mut out = m;
                    while let Some(u) = only_user(out).filter(|&u| matches!(nodes[u].op, Op::Reshape) && nodes[u].shape.last() == Some(&d_out)) {
                        out = u;
                    }
                    let rank = nodes[out].shape.len();
                    let bias = if rank == 0 { None } else { bias_add(out, rank - 1, d_out) };
                    if let Some((add, _)) = bias {
                        out = add;
                    }
                    layers.push(KfacLayer { index: 0, kind: LayerKind::Linear, input: x, output: out, weight: block(w), weight_transposed, bias: bias.map(|(_, p)| block(p)), d_in, d_out, conv: None });
                }
                Op::Conv2d(attrs) if attrs.groups == 1 => {
                    let (x, w) = (node.ins[0], node.ins[1]);
                    let (xs, ws) = (&nodes[x].shape, &nodes[w].shape);
                    if !is_param(w) || uses[w] != 1 || ws.len() != 4 || xs.len() != 4 || xs[1] != ws[1] {
                        continue;
                    }
                    // The output must be that of this geometry (a dilated conv's is smaller).
                    let Ok(g) = Conv2d::new(xs, ws, *attrs) else { continue };
                    let (oh, ow) = g.out_hw();
                    if node.shape != [g.n, g.o, oh, ow] {
                        continue;
                    }
                    let bias = bias_add(m, 1, ws[0]);
                    let out = bias.map_or(m, |(add, _)| add);
                    let d_in = ws[1] * ws[2] * ws[3];
                    layers.push(KfacLayer { index: 0, kind: LayerKind::Conv2d, input: x, output: out, weight: block(w), weight_transposed: false, bias: bias.map(|(_, p)| block(p)), d_in, d_out: ws[0], conv: Some(((ws[2], ws[3]), *attrs)) });
                }
                _ => {}
            }
        }
        layers.sort_by_key(|l| l.weight.0);
        for (i, l) in layers.iter_mut().enumerate() {
            l.index = self.layers().iter().find(|r| r.weight.0 == l.weight.0).map_or(i, |r| r.index);
        }
        let claimed = |off: usize| layers.iter().any(|l| l.weight.0 == off || l.bias.map(|b| b.0) == Some(off));
        let uncovered = self.param_blocks().into_iter().map(|(off, s)| (off, s.iter().product::<usize>())).filter(|&(off, _)| !claimed(off)).collect();
        Ok(KfacCoverage { layers, uncovered })
    }
}
