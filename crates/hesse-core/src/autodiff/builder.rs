//! Composite operations and layers, built from the primitives of `op.rs`. Nothing here has a
//! derivative rule of its own: softmax, layer norm and the losses are differentiated (to any
//! order) through the primitives they are made of.

use super::act::Act;
use super::gauss_newton::LossKind;
use super::op::{axis as norm_axis, Op};
use super::program::{LayerKind, LayerRecord, Program};
use crate::error::{fmt_shape, Error, Result};
use crate::kernels::ConvAttrs;

impl Program {
    /// A constant of `shape` (captured tensors and numbers while tracing).
    pub fn constant(&mut self, shape: &[usize], values: Vec<f64>) -> Result<usize> {
        self.push(Op::Const(std::sync::Arc::new(values)), &[], Some(shape))
    }
    pub fn add(&mut self, a: usize, b: usize) -> Result<usize> {
        self.push(Op::Add, &[a, b], None)
    }
    pub fn sub(&mut self, a: usize, b: usize) -> Result<usize> {
        self.push(Op::Sub, &[a, b], None)
    }
    pub fn mul(&mut self, a: usize, b: usize) -> Result<usize> {
        self.push(Op::Mul, &[a, b], None)
    }
    pub fn div(&mut self, a: usize, b: usize) -> Result<usize> {
        self.push(Op::Div, &[a, b], None)
    }
    pub fn scale(&mut self, x: usize, c: f64) -> Result<usize> {
        self.push(Op::Scale(c), &[x], None)
    }
    pub fn act(&mut self, x: usize, a: Act) -> Result<usize> {
        self.push(Op::Act(a), &[x], None)
    }
    pub fn matmul(&mut self, a: usize, b: usize, ta: bool, tb: bool) -> Result<usize> {
        self.push(Op::MatMul { ta, tb }, &[a, b], None)
    }
    pub fn conv2d(&mut self, x: usize, w: usize, attrs: ConvAttrs) -> Result<usize> {
        self.push(Op::Conv2d(attrs), &[x, w], None)
    }
    pub fn reshape(&mut self, x: usize, shape: &[usize]) -> Result<usize> {
        self.push(Op::Reshape, &[x], Some(shape))
    }
    pub fn transpose(&mut self, x: usize) -> Result<usize> {
        self.push(Op::Transpose, &[x], None)
    }
    /// Output axis a is input axis perm[a].
    pub fn permute(&mut self, x: usize, perm: &[usize]) -> Result<usize> {
        self.push(Op::Permute(perm.to_vec()), &[x], None)
    }
    /// Concatenation along a Python-style axis.
    pub fn concat(&mut self, xs: &[usize], axis: i64) -> Result<usize> {
        let first = xs.first().ok_or_else(|| Error::invalid("concat: needs at least one input"))?;
        let a = norm_axis("concat", axis, self.shape(*first)?)?;
        self.push(Op::Concat { axis: a }, xs, None)
    }
    /// Σ along a Python-style axis (all when None).
    pub fn sum(&mut self, x: usize, axis: Option<i64>, keepdims: bool) -> Result<usize> {
        let axis = axis.map(|a| norm_axis("sum", a, self.shape(x).unwrap_or(&[]))).transpose()?;
        self.push(Op::Sum { axis, keepdims }, &[x], None)
    }
    /// Mean along a Python-style axis (all when None): the sum scaled by 1/count.
    pub fn mean(&mut self, x: usize, axis: Option<i64>, keepdims: bool) -> Result<usize> {
        let shape = self.shape(x)?.to_vec();
        let count: usize = match axis {
            None => shape.iter().product(),
            Some(a) => shape[norm_axis("mean", a, &shape)?],
        };
        if count == 0 {
            return Err(Error::invalid(format!("mean: cannot average an empty axis of shape {}", fmt_shape(&shape))));
        }
        let s = self.sum(x, axis, keepdims)?;
        self.scale(s, 1.0 / count as f64)
    }
    /// log Σ exp over the last axis, kept as size 1.
    pub fn logsumexp(&mut self, x: usize) -> Result<usize> {
        self.push(Op::LogSumExp, &[x], None)
    }
    /// The softmax normalizer: logsumexp(x) over the last axis, but NaN in a row with a +∞ entry.
    /// PyTorch's log_softmax is (x − m) − log Σ exp(x − m) with m the row max, so a +∞ entry
    /// makes the whole row NaN (exp(∞ − ∞)), not only that entry (x − lse would leave −∞ at the
    /// others); and so is its cross-entropy. The public logsumexp keeps torch.logsumexp's +∞.
    /// (A finite row has a finite lse ≤ max + log C, so only a +∞ entry gives lse = +∞.)
    fn softmax_normalizer(&mut self, x: usize) -> Result<usize> {
        let l = self.logsumexp(x)?;
        self.act(l, Act::PosInfToNan)
    }
    /// x − logsumexp(x) over the last axis (NaN rows where x has a +∞, as PyTorch).
    pub fn log_softmax(&mut self, x: usize) -> Result<usize> {
        let l = self.softmax_normalizer(x)?;
        self.sub(x, l)
    }
    /// exp(x − logsumexp(x)) over the last axis.
    pub fn softmax(&mut self, x: usize) -> Result<usize> {
        let ls = self.log_softmax(x)?;
        self.act(ls, Act::Exp)
    }
    /// (x − μ)/√(σ² + eps) over the last axis (no affine part; see [`Layer::LayerNorm`]).
    pub fn layer_norm(&mut self, x: usize, eps: f64) -> Result<usize> {
        let mu = self.mean(x, Some(-1), true)?;
        let xc = self.sub(x, mu)?;
        let sq = self.act(xc, Act::Square)?;
        let var = self.mean(sq, Some(-1), true)?;
        let rstd = self.act(var, Act::Rsqrt(eps))?;
        self.mul(xc, rstd)
    }
    /// x·Wᵀ + b with W [out, in] (PyTorch's layout) and b [out].
    pub fn linear(&mut self, x: usize, w: usize, b: Option<usize>) -> Result<usize> {
        let y = self.matmul(x, w, false, true)?;
        match b {
            Some(b) => self.add(y, b),
            None => Ok(y),
        }
    }

    /// Mean over all elements of (pred − target)² (PyTorch's MSELoss).
    pub fn mse(&mut self, pred: usize, target: usize) -> Result<usize> {
        self.same_shape("mse", pred, target)?;
        let d = self.sub(pred, target)?;
        let sq = self.act(d, Act::Square)?;
        self.mean(sq, None, false)
    }
    /// Cross-entropy as PyTorch's `CrossEntropyLoss` (class indices, no weights, reduction
    /// 'mean'): logits [N, C] with labels [N], or [N, C, d1, …] with labels [N, d1, …] (the class
    /// axis is 1), the mean over the N·d1·… positions of −log softmax(logits)[label]. Logits
    /// [N, d1, …, C] with labels [N, d1, …] (the class axis last, as a sequence model's per-token
    /// logits [N, T, C] come) are taken too, when the PyTorch reading does not fit the shapes;
    /// shapes that fit both are refused as ambiguous ([`ce_class_axis`]; the objective's
    /// `classAxis` says which). Out-of-range labels are an error at run time.
    pub fn cross_entropy(&mut self, logits: usize, labels: usize) -> Result<usize> {
        let (rows, targets) = self.loss_rows(LossKind::CrossEntropy, logits, labels)?;
        self.cross_entropy_rows(rows, targets)
    }

    /// The loss `kind` of `pred` and `target` as its rows: (pred as [R, C], target as [R] for
    /// cross-entropy, else [R, C]). A row is one position of the output, the unit the empirical
    /// and Monte Carlo Fisher and K-FAC treat as a sample (curvlinops' convention): cross-entropy
    /// with the class axis moved last, so R = N·d1·… and C the classes; MSE and BCE over the last
    /// axis ([N, …, D] → [N·…, D]; [N] → [N, 1]; a scalar → [1, 1]). The loss of the rows equals
    /// the loss of the original shapes (the same elements, the same means), so the Gauss–Newton
    /// split at the rows is the split at `pred` (a permutation and a reshape are linear). Adds no
    /// node where the shapes already are rows.
    pub fn loss_rows(&mut self, kind: LossKind, pred: usize, target: usize) -> Result<(usize, usize)> {
        self.loss_rows_with(kind, pred, target, None)
    }

    /// [`Program::loss_rows`] with cross-entropy's class axis given (see [`ce_class_axis`]; a
    /// NumPy-style axis, negative from the end), or inferred from the shapes when None.
    pub fn loss_rows_with(&mut self, kind: LossKind, pred: usize, target: usize, class_axis: Option<i64>) -> Result<(usize, usize)> {
        let (ps, ts) = (self.shape(pred)?.to_vec(), self.shape(target)?.to_vec());
        match kind {
            LossKind::CrossEntropy => {
                let explicit = class_axis.map(|a| norm_axis("cross_entropy: class axis", a, &ps)).transpose()?;
                let axis = ce_class_axis(&ps, &ts, explicit)?;
                let r = ps.len();
                if r == 2 {
                    return Ok((pred, target));
                }
                let classes = ps[axis];
                let rows = crate::mem::product("cross_entropy: positions", &ts)?;
                // Class axis last: output axis a is input axis perm[a].
                let last = if axis == r - 1 {
                    pred
                } else {
                    let perm: Vec<usize> = (0..r).filter(|&a| a != axis).chain([axis]).collect();
                    self.permute(pred, &perm)?
                };
                let p2 = self.reshape(last, &[rows, classes])?;
                let t1 = self.reshape(target, &[rows])?;
                Ok((p2, t1))
            }
            LossKind::Mse | LossKind::BceWithLogits => {
                self.same_shape(if kind == LossKind::Mse { "mse" } else { "bce_with_logits" }, pred, target)?;
                let rows = match ps.len() {
                    2 => return Ok((pred, target)),
                    0 => [1, 1],
                    1 => [ps[0], 1],
                    r => [crate::mem::product("loss rows", &ps[..r - 1])?, ps[r - 1]],
                };
                Ok((self.reshape(pred, &rows)?, self.reshape(target, &rows)?))
            }
        }
    }

    /// Mean over the rows of −log softmax(logits)[label], logits [R, C], labels [R].
    fn cross_entropy_rows(&mut self, logits: usize, labels: usize) -> Result<usize> {
        let n = self.shape(logits)?[0];
        // Σᵢ (lse(xᵢ) − xᵢ[yᵢ]): the label's logit is picked, not weighted by a one-hot (a
        // −∞ logit elsewhere would give 0 · (−∞) = NaN; PyTorch's answer is finite). Each row's
        // difference is taken before the sum, as PyTorch's per-sample losses: Σ lse − Σ picked
        // cancels catastrophically when one row's logits are huge (rows [0, 0] and [1e30, −1e30]
        // gave 0 instead of log(2)/2; found by the fuzz suite).
        let lse = self.softmax_normalizer(logits)?; // [R, 1]
        let lse = self.reshape(lse, &[n])?;
        let picked = self.push(Op::Pick, &[logits, labels], None)?; // [R]
        let per_row = self.sub(lse, picked)?;
        let nll = self.sum(per_row, None, false)?;
        self.scale(nll, 1.0 / n as f64)
    }
    /// Mean over all elements of softplus(z) − y·z (PyTorch's BCEWithLogitsLoss).
    pub fn bce_with_logits(&mut self, logits: usize, target: usize) -> Result<usize> {
        self.same_shape("bce_with_logits", logits, target)?;
        let sp = self.act(logits, Act::Softplus)?;
        let yz = self.mul(target, logits)?;
        let l = self.sub(sp, yz)?;
        self.mean(l, None, false)
    }

    fn same_shape(&self, op: &str, a: usize, b: usize) -> Result<()> {
        let (sa, sb) = (self.shape(a)?, self.shape(b)?);
        if sa != sb {
            return Err(Error::shape(format!("{op}: prediction {} and target {} differ in shape", fmt_shape(sa), fmt_shape(sb))));
        }
        Ok(())
    }

    /// Applies `layers` in order to `x`, creating their parameters (weight, then bias) as it goes.
    pub fn sequential(&mut self, x: usize, layers: &[Layer]) -> Result<usize> {
        let mut h = x;
        for (index, layer) in layers.iter().enumerate() {
            let n_params = self.n_params();
            let out = layer.apply(self, h)?;
            if let Some(kind) = match layer {
                Layer::Linear { .. } => Some(LayerKind::Linear),
                Layer::Conv2d { .. } => Some(LayerKind::Conv2d),
                _ => None,
            } {
                let blocks: Vec<(usize, usize)> = self.param_blocks().into_iter().filter(|(off, _)| *off >= n_params).map(|(off, s)| (off, s.iter().product())).collect();
                let conv = match *layer {
                    Layer::Conv2d { kernel, stride, padding, dilation, groups, .. } => Some((kernel, conv_layer_attrs(stride, padding, dilation, groups))),
                    _ => None,
                };
                self.layers.push(LayerRecord { index, kind, input: h, output: out, weight: blocks[0], bias: blocks.get(1).copied(), conv });
            }
            h = out;
        }
        Ok(h)
    }
}

/// The class axis of cross-entropy logits `ls` for labels `ts`. Given (`explicit`, any axis
/// but the batch axis 0): checked to fit, labels = logits without that axis. Inferred: 1 when
/// ts = [N, d1, …] and ls = [N, C, d1, …] (PyTorch's placement; [N, C] with [N] is its rank-2
/// case), or the last axis when ts = ls without it ([N, d1, …, C] with [N, d1, …]); shapes that
/// fit both readings (an [N, K, K] output with labels [N, K]) are refused as ambiguous rather
/// than read one way silently.
pub fn ce_class_axis(ls: &[usize], ts: &[usize], explicit: Option<usize>) -> Result<usize> {
    let r = ls.len();
    let fits = |a: usize| a >= 1 && a < r && ts.len() + 1 == r && ls[..a] == ts[..a] && ls[a + 1..] == ts[a..];
    if let Some(a) = explicit {
        if fits(a) {
            return Ok(a);
        }
        return Err(Error::shape(format!(
            "cross_entropy: with the class axis {a}, logits {} need labels of their shape without axis {a} (and the batch axis 0 is not a class axis), got {}",
            fmt_shape(ls),
            fmt_shape(ts)
        )));
    }
    match (fits(1), r >= 1 && fits(r - 1)) {
        (true, true) if r > 2 => Err(Error::shape(format!(
            "cross_entropy: logits {} with labels {} fit both PyTorch's class axis 1 ([N, C, d1, …]) and the class axis last ([N, d1, …, C]); say which (the objective's classAxis option: 1 or -1)",
            fmt_shape(ls),
            fmt_shape(ts)
        ))),
        (true, _) => Ok(1),
        (false, true) => Ok(r - 1),
        (false, false) => Err(Error::shape(format!(
            "cross_entropy: expected logits [N, C] with labels [N], or [N, C, d1, …] with labels [N, d1, …] (PyTorch's class axis 1), or [N, d1, …, C] with labels [N, d1, …] (class axis last), got {} and {}",
            fmt_shape(ls),
            fmt_shape(ts)
        ))),
    }
}

/// A conv layer's attributes (PyTorch's nn.Conv2d pads both sides alike).
fn conv_layer_attrs(stride: (usize, usize), padding: (usize, usize), dilation: (usize, usize), groups: usize) -> ConvAttrs {
    ConvAttrs { dilation, groups, ..ConvAttrs::symmetric(stride, padding) }
}

/// The layers of `nn.sequential`; parameters are created in PyTorch's named_parameters order.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// y = x·Wᵀ + b, W [out, in], b [out].
    Linear { inputs: usize, outputs: usize, bias: bool },
    /// W [out, in/groups, kh, kw], b [out] (PyTorch's nn.Conv2d: padding on both sides).
    Conv2d { inputs: usize, outputs: usize, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize), dilation: (usize, usize), groups: usize, bias: bool },
    /// [N, ...] → [N, prod(...)].
    Flatten,
    Act(Act),
    /// Over the last axis of size `dim`, with affine weight [dim] and bias [dim].
    LayerNorm { dim: usize, eps: f64 },
}

impl Layer {
    fn apply(&self, p: &mut Program, x: usize) -> Result<usize> {
        match *self {
            Layer::Linear { inputs, outputs, bias } => {
                let xs = p.shape(x)?;
                if xs.len() != 2 || xs[1] != inputs {
                    return Err(Error::shape(format!("linear({inputs} → {outputs}): expected input [N, {inputs}], got {}", fmt_shape(xs))));
                }
                let w = p.param(&[outputs, inputs])?;
                let b = if bias { Some(p.param(&[outputs])?) } else { None };
                p.linear(x, w, b)
            }
            Layer::Conv2d { inputs, outputs, kernel, stride, padding, dilation, groups, bias } => {
                // Checked before the weight [out, in/groups, kh, kw] is made of it.
                if groups == 0 || inputs % groups != 0 || outputs % groups != 0 {
                    return Err(Error::invalid(format!("conv2d({inputs} → {outputs}): groups {groups} must be ≥ 1 and divide both channel counts")));
                }
                let w = p.param(&[outputs, inputs / groups, kernel.0, kernel.1])?;
                let y = p.conv2d(x, w, conv_layer_attrs(stride, padding, dilation, groups))?;
                if !bias {
                    return Ok(y);
                }
                let b = p.param(&[outputs])?;
                let b4 = p.reshape(b, &[1, outputs, 1, 1])?;
                p.add(y, b4)
            }
            Layer::Flatten => {
                let s = p.shape(x)?.to_vec();
                if s.is_empty() {
                    return Err(Error::shape("flatten: needs a batch dimension, got a scalar"));
                }
                p.reshape(x, &[s[0], s[1..].iter().product()])
            }
            Layer::Act(a) => p.act(x, a),
            Layer::LayerNorm { dim, eps } => {
                let s = p.shape(x)?;
                if s.last() != Some(&dim) {
                    return Err(Error::shape(format!("layer_norm({dim}): the last axis of {} is not {dim}", fmt_shape(s))));
                }
                let n = p.layer_norm(x, eps)?;
                let w = p.param(&[dim])?;
                let b = p.param(&[dim])?;
                let y = p.mul(n, w)?;
                p.add(y, b)
            }
        }
    }
}
