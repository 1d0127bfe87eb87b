//! Composite operations and layers, built from the primitives of `op.rs`. Nothing here has a
//! derivative rule of its own: softmax, layer norm and the losses are differentiated (to any
//! order) through the primitives they are made of.

use super::act::Act;
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
    /// Mean over the batch of −log softmax(logits)[label] (PyTorch's CrossEntropyLoss with class
    /// indices). `labels` holds N class indices as numbers; out-of-range labels are an error at run time.
    pub fn cross_entropy(&mut self, logits: usize, labels: usize) -> Result<usize> {
        let (ls, ys) = (self.shape(logits)?.to_vec(), self.shape(labels)?.to_vec());
        if ls.len() != 2 || ys.len() != 1 || ls[0] != ys[0] {
            return Err(Error::shape(format!(
                "cross_entropy: expected logits [N, C] and labels [N], got {} and {}",
                fmt_shape(&ls),
                fmt_shape(&ys)
            )));
        }
        // Σᵢ lse(xᵢ) − Σᵢ xᵢ[yᵢ]: the label's logit is picked, not weighted by a one-hot (a
        // −∞ logit elsewhere would give 0 · (−∞) = NaN; PyTorch's answer is finite).
        let lse = self.softmax_normalizer(logits)?;
        let picked = self.push(Op::Pick, &[logits, labels], None)?;
        let total_lse = self.sum(lse, None, false)?;
        let total_picked = self.sum(picked, None, false)?;
        let nll = self.sub(total_lse, total_picked)?;
        self.scale(nll, 1.0 / ls[0] as f64)
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
                    Layer::Conv2d { kernel, stride, padding, .. } => Some((kernel, stride, padding)),
                    _ => None,
                };
                self.layers.push(LayerRecord { index, kind, input: h, output: out, weight: blocks[0], bias: blocks.get(1).copied(), conv });
            }
            h = out;
        }
        Ok(h)
    }
}

/// The layers of `nn.sequential`; parameters are created in PyTorch's named_parameters order.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// y = x·Wᵀ + b, W [out, in], b [out].
    Linear { inputs: usize, outputs: usize, bias: bool },
    /// W [out, in, kh, kw], b [out].
    Conv2d { inputs: usize, outputs: usize, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize), bias: bool },
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
            Layer::Conv2d { inputs, outputs, kernel, stride, padding, bias } => {
                let w = p.param(&[outputs, inputs, kernel.0, kernel.1])?;
                let y = p.conv2d(x, w, ConvAttrs::symmetric(stride, padding))?;
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
