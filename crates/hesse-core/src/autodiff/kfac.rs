//! K-FAC (Martens & Grosse 2015) for linear and conv2d layers: each layer's block of the
//! Gauss–Newton matrix approximated by a Kronecker product B ⊗ A. The layers are found by
//! pattern in any program (kfac_pattern.rs), so ONNX imports and traced models get K-FAC too.
//!
//! Conventions (hesse's; BackPACK and curvlinops differ by factors of N and 2, so check):
//! - A layer's parameters are its weight block as stored, then its bias block (they need not be
//!   adjacent in the flat vector). K-FAC works on W̄ = [W | b] [out, in + 1] (row-major, W as
//!   PyTorch's [out, in] whether the block is stored [out, in] or [in, out]), i.e. ā = [a; 1].
//! - A = (1/M) Σₘ āₘ āₘᵀ, the mean over the M input rows: the batch for an [N, in] input, every
//!   position for [N, T, in] (K-FAC "expand", Eschenhagen et al. 2023), every output position
//!   for conv2d (below).
//! - B = Σₘ Σ_c gₘ,c gₘ,cᵀ, a sum over the rows of the layer output s = a·Wᵀ + b, where gₘ,c is
//!   the output gradient at row m when column c of every position's loss-Hessian factor Lᵣ
//!   (Hℓ,ᵣ = LᵣLᵣᵀ, as in gauss_newton.rs, so it includes the loss's 1/R) is backpropagated at
//!   once. (Monte Carlo: the gradients of the loss at labels sampled from the model's predictive
//!   distribution, one per position, replace the C columns.)
//! - Then G_layer ≈ B ⊗ A on vec(W̄), exactly equal for a batch of one (one position); in
//!   PyTorch's order the entry for (W[o, i], W[o′, i′]) is B[o, o′]·A[i, i′], bias entries use
//!   i = in.
//!
//! - Conv2d (KFC, Grosse & Martens 2016, in its "expand" form, Eschenhagen et al. 2023): every
//!   output position t is treated as a sample: ā are the im2col patches [C·KH·KW; 1],
//!   A = (1/(N·T)) Σₙ,ₜ āāᵀ, B = Σₙ,ₜ Σ_c g gᵀ with g the output gradients at position t; W̄ is the
//!   weight [O, C·KH·KW] row-major (PyTorch's layout) plus the bias column. Exact when N = T = 1.
//!
//! All C columns (or S Monte Carlo samples) of every position go back in one multi-cotangent
//! reverse sweep: seed c carries Lᵣ[:, c] in every row r at once (exact where rows do not
//! interact; where they do, as in attention, the cross terms are K-FAC's approximation, as in
//! curvlinops' "expand").

use super::dual::Scalar;
use super::gauss_newton::LossKind;
use super::program::{LayerKind, Mode, Program, Run};
use crate::error::{fmt_shape, Error, Result};
use crate::kernels::conv::im2col;
use crate::kernels::{self, Conv2d, Isa, MatRef};
use crate::mem::{product, try_map, try_vec, try_zeros};
use crate::shape::numel;

/// Which B factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KfacVariant {
    /// The exact loss-Hessian factor: C backward vectors per sample.
    Exact,
    /// Monte Carlo: `samples` labels drawn from the model's predictive distribution per sample.
    MonteCarlo { samples: usize, seed: u64 },
}

/// The Kronecker factors of one linear or conv2d layer.
#[derive(Clone, Debug, PartialEq)]
pub struct KfacFactors {
    /// Index of the layer in its `sequential`, or its position among the layers found.
    pub layer: usize,
    pub kind: LayerKind,
    /// A [d_in, d_in] row-major, d_in = in + 1 with a bias.
    pub a: Vec<f64>,
    /// B [out, out] row-major.
    pub b: Vec<f64>,
    pub d_in: usize,
    pub d_out: usize,
    pub has_bias: bool,
    /// Offsets of the layer's weight and bias in the parameter vector.
    pub weight_offset: usize,
    pub bias_offset: Option<usize>,
    /// The weight block is stored [in, out] (the ONNX exporter's folded MatMul weight).
    pub weight_transposed: bool,
}

impl Program {
    /// K-FAC factors of every linear and conv2d layer found by pattern
    /// ([`Program::kfac_layers`]) for the network output at node `f` under `kind`'s loss (f its
    /// rows [R, C], see [`LossKind::rows`]). An error if no layer is found.
    #[allow(clippy::too_many_arguments)]
    pub fn kfac<T: Scalar>(&self, isa: Isa, f: usize, kind: LossKind, params: &[T], inputs: &[&[T]], variant: KfacVariant) -> Result<Vec<KfacFactors>> {
        let shape = self.shape(f)?.to_vec();
        let (n, c) = kind.rows(&shape, "K-FAC")?;
        let cover = self.kfac_layers(f)?;
        let layers = cover.layers;
        if layers.is_empty() {
            return Err(Error::invalid(format!(
                "K-FAC: the model has no linear or conv2d layers (a MatMul/Gemm or Conv2d by a parameter used once, see kfac_pattern.rs); {} parameter block(s) match no pattern",
                cover.uncovered.len()
            )));
        }
        if let KfacVariant::MonteCarlo { samples: 0, .. } = variant {
            return Err(Error::invalid("K-FAC: Monte Carlo needs at least one sample"));
        }
        let base = Run::at(params, inputs, Mode::Value);
        if n == 0 || c == 0 {
            return Err(Error::invalid(format!("K-FAC: needs a non-empty batch and output, got a network output {}", fmt_shape(&shape))));
        }
        let fv = try_map(&self.run(isa, f, &base)?.output.p, |v| v.to_f64(), "K-FAC outputs")?;
        let seeds = kind.output_space_seeds(&fv, n, c, variant)?;
        let k = seeds.len() / (n * c);
        let seeds_t = try_map(&seeds, |&v| T::from_f64(v), "K-FAC seeds")?;
        drop(seeds);
        let capture: Vec<usize> = layers.iter().flat_map(|l| [l.input, l.output]).collect();
        let o = self.run_capture(isa, f, &Run { mode: Mode::Vjps { cotangents: &seeds_t, k }, ..base }, &capture)?;

        let mut out = Vec::with_capacity(layers.len());
        for (li, l) in layers.iter().enumerate() {
            let (a_val, _) = &o.captured[2 * li];
            let (s_val, s_grad) = &o.captured[2 * li + 1];
            let has_bias = l.bias.is_some();
            let (d_in_raw, d_out) = (l.d_in, l.d_out);
            // Rows of ā (one per input row: a position of a linear layer's input, an output
            // position of a conv), and the layout of s's gradients [K, …]: `positions` values of
            // one output channel are `stride` apart (conv2d: [K, N, O, T]; linear: [K, M, out]).
            let (patches, positions) = match (l.kind, l.conv) {
                (LayerKind::Conv2d, Some((kernel, attrs))) => {
                    let (xs, ss) = (&a_val.shape, &s_val.shape);
                    let g = Conv2d::new(xs, &[d_out, xs[1], kernel.0, kernel.1], attrs)?;
                    let t = ss[2] * ss[3];
                    let img = g.c * g.h * g.w;
                    let mut col = try_zeros::<T>(product("K-FAC patches (C·KH·KW × positions)", &[d_in_raw, t])?, "K-FAC patches")?;
                    let mut p = try_vec(product("K-FAC patches (N × positions × C·KH·KW)", &[g.n, t, d_in_raw])?, "K-FAC patches")?;
                    for i in 0..g.n {
                        im2col(&g, &a_val.p[i * img..(i + 1) * img], &mut col);
                        for tt in 0..t {
                            p.extend((0..d_in_raw).map(|r| col[r * t + tt].to_f64()));
                        }
                    }
                    (p, t)
                }
                _ => (try_map(&a_val.p, |v| v.to_f64(), "K-FAC inputs")?, 1),
            };
            let d_in = d_in_raw + usize::from(has_bias);
            // One input row per output row (a linear layer's rows; a conv's N·T positions).
            let rows = if d_out == 0 { 0 } else { numel(&s_val.shape)? / d_out };
            if patches.len() != rows * d_in_raw {
                return Err(Error::shape(format!(
                    "K-FAC: layer {} maps {} to {}: {} input rows of {d_in_raw} for {rows} output rows of {d_out}",
                    l.index,
                    fmt_shape(&a_val.shape),
                    fmt_shape(&s_val.shape),
                    patches.len() / d_in_raw.max(1)
                )));
            }
            // A = mean over rows of āāᵀ, ā = [patch; 1]: PᵀP/count (one GEMM over the patch
            // matrix P [rows, d_in_raw], transposed as a view), bordered by P's column sums/count
            // and rows/count for the bias.
            let count = rows.max(1) as f64;
            let mut a = try_zeros(product("K-FAC A (d_in × d_in)", &[d_in, d_in])?, "K-FAC A")?;
            let pm = MatRef::row_major(&patches, rows, d_in_raw);
            let mut ptp = try_zeros(d_in_raw * d_in_raw, "K-FAC A")?;
            kernels::gemm(isa, 1.0 / count, pm.t(), pm, 0.0, &mut ptp)?;
            for i in 0..d_in_raw {
                a[i * d_in..i * d_in + d_in_raw].copy_from_slice(&ptp[i * d_in_raw..(i + 1) * d_in_raw]);
            }
            if has_bias {
                // P's column sums in one row-major pass.
                let mut sums = try_zeros::<f64>(d_in_raw, "K-FAC A")?;
                for row in patches.chunks_exact(d_in_raw.max(1)).take(rows) {
                    sums.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                }
                for (j, &sj) in sums.iter().enumerate() {
                    a[j * d_in + d_in_raw] = sj / count;
                    a[d_in_raw * d_in + j] = sj / count;
                }
                a[d_in_raw * d_in + d_in_raw] = rows as f64 / count;
            }
            // B = Σ over seeds and output rows of g gᵀ: the gradient tangents are blocks
            // G [d_out, positions] ([K·N, O, T] for conv2d, [K·M, out] with T = 1 for linear),
            // and B = Σ_blocks G·Gᵀ, one GEMM per block (for T = 1 one GEMM of all of them).
            let mut b = try_zeros(product("K-FAC B (d_out × d_out)", &[d_out, d_out])?, "K-FAC B")?;
            if let Some(gt) = s_grad.as_ref().and_then(|g| g.t.as_ref()).filter(|_| d_out > 0) {
                let g = try_map(gt, |v| v.to_f64(), "K-FAC B")?;
                let blocks = g.len() / (d_out * positions);
                if positions == 1 {
                    let gm = MatRef::row_major(&g, blocks, d_out);
                    kernels::gemm(isa, 1.0, gm.t(), gm, 0.0, &mut b)?;
                } else {
                    for kn in 0..blocks {
                        let gm = MatRef::row_major(&g[kn * d_out * positions..(kn + 1) * d_out * positions], d_out, positions);
                        kernels::gemm(isa, 1.0, gm, gm.t(), 1.0, &mut b)?;
                    }
                }
            }
            out.push(KfacFactors {
                layer: l.index,
                kind: l.kind,
                a,
                b,
                d_in,
                d_out,
                has_bias,
                weight_offset: l.weight.0,
                bias_offset: l.bias.map(|b| b.0),
                weight_transposed: l.weight_transposed,
            });
        }
        Ok(out)
    }
}

/// Row-major products of the factors' dense matrices: C = op(X)·op(Y), X [r, k] (or [k, r] when
/// tx), by the SIMD GEMM (a transpose is a view).
fn matmul(x: &[f64], y: &[f64], r: usize, k: usize, c: usize, tx: bool, ty: bool) -> Result<Vec<f64>> {
    let mut out = try_zeros(r * c, "K-FAC product")?;
    let xm = if tx { MatRef::row_major(x, k, r).t() } else { MatRef::row_major(x, r, k) };
    let ym = if ty { MatRef::row_major(y, c, k).t() } else { MatRef::row_major(y, k, c) };
    kernels::gemm(Isa::Simd, 1.0, xm, ym, 0.0, &mut out)?;
    Ok(out)
}

impl KfacFactors {
    /// Number of parameters of the layer (weight and bias).
    pub fn size(&self) -> usize {
        self.d_out * self.d_in
    }

    /// The layer's values (its weight block as stored, then its bias) as W̄ [out, d_in].
    fn to_bar(&self, v: &[f64]) -> Result<Vec<f64>> {
        let (o, di, raw) = (self.d_out, self.d_in, self.d_in - usize::from(self.has_bias));
        let mut m = try_zeros(o * di, "K-FAC product")?;
        for r in 0..o {
            for i in 0..raw {
                m[r * di + i] = v[self.weight_index(r, i)];
            }
            if self.has_bias {
                m[r * di + raw] = v[o * raw + r];
            }
        }
        Ok(m)
    }

    fn from_bar(&self, m: &[f64]) -> Result<Vec<f64>> {
        let (o, di, raw) = (self.d_out, self.d_in, self.d_in - usize::from(self.has_bias));
        let mut v = try_zeros(o * di, "K-FAC product")?;
        for r in 0..o {
            for i in 0..raw {
                v[self.weight_index(r, i)] = m[r * di + i];
            }
            if self.has_bias {
                v[o * raw + r] = m[r * di + raw];
            }
        }
        Ok(v)
    }

    /// Where W[r, i] (PyTorch's [out, in]) sits in the weight block: [out, in] or [in, out].
    fn weight_index(&self, r: usize, i: usize) -> usize {
        let raw = self.d_in - usize::from(self.has_bias);
        if self.weight_transposed {
            i * self.d_out + r
        } else {
            r * raw + i
        }
    }

    /// The layer's values (weight block, then bias) out of a full parameter vector.
    pub fn gather(&self, full: &[f64]) -> Result<Vec<f64>> {
        let w = self.d_out * (self.d_in - usize::from(self.has_bias));
        let end = |off: usize, n: usize| off.checked_add(n).filter(|&e| e <= full.len());
        let (Some(we), bias) = (end(self.weight_offset, w), self.bias_offset.map(|b| (b, end(b, self.d_out)))) else {
            return Err(Error::new(crate::ErrorCode::LengthMismatch, format!("K-FAC layer {}: its parameters lie outside a vector of {}", self.layer, full.len())));
        };
        let mut v = try_vec(self.size(), "K-FAC layer values")?;
        v.extend_from_slice(&full[self.weight_offset..we]);
        match bias {
            Some((b, Some(be))) => v.extend_from_slice(&full[b..be]),
            Some((_, None)) => return Err(Error::new(crate::ErrorCode::LengthMismatch, format!("K-FAC layer {}: its bias lies outside a vector of {}", self.layer, full.len()))),
            None => {}
        }
        Ok(v)
    }

    /// Writes the layer's values (weight block, then bias) into a full parameter vector.
    pub fn scatter(&self, layer: &[f64], full: &mut [f64]) -> Result<()> {
        let _ = self.gather(full)?; // (bounds)
        self.check_len(layer, "result")?;
        let w = self.d_out * (self.d_in - usize::from(self.has_bias));
        full[self.weight_offset..self.weight_offset + w].copy_from_slice(&layer[..w]);
        if let Some(b) = self.bias_offset {
            full[b..b + self.d_out].copy_from_slice(&layer[w..]);
        }
        Ok(())
    }

    fn check_len(&self, v: &[f64], what: &str) -> Result<()> {
        if v.len() != self.size() {
            return Err(Error::new(crate::ErrorCode::LengthMismatch, format!("K-FAC {what} for layer {}: expected {} values (the layer's parameters), got {}", self.layer, self.size(), v.len())));
        }
        Ok(())
    }

    /// (B ⊗ A)·v for the layer's values v (weight block as stored, then bias): B·W̄·A.
    pub fn mvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        self.check_len(v, "product")?;
        let (o, di) = (self.d_out, self.d_in);
        let bw = matmul(&self.b, &self.to_bar(v)?, o, o, di, false, false)?;
        self.from_bar(&matmul(&bw, &self.a, o, di, di, false, false)?)
    }

    /// The eigendecompositions that apply (B ⊗ A + λI)⁻¹ exactly: with A = Q_A Λ_A Q_Aᵀ and
    /// B = Q_B Λ_B Q_Bᵀ, (B ⊗ A + λI)⁻¹ = (Q_B ⊗ Q_A)(Λ_B ⊗ Λ_A + λI)⁻¹(Q_B ⊗ Q_A)ᵀ.
    pub fn inverse(&self, damping: f64) -> Result<KfacInverse> {
        if !(damping > 0.0) || !damping.is_finite() {
            return Err(Error::invalid(format!("K-FAC inverse: damping must be > 0 (B ⊗ A is only positive semidefinite), got {damping}")));
        }
        let (la, va) = crate::linalg::eigh(&self.a, self.d_in)?;
        let (lb, vb) = crate::linalg::eigh(&self.b, self.d_out)?;
        Ok(KfacInverse { factors: self.clone(), la, va, lb, vb, damping })
    }
}

/// (B ⊗ A + λI)⁻¹ for one layer, from the eigendecompositions of A and B.
#[derive(Clone, Debug)]
pub struct KfacInverse {
    factors: KfacFactors,
    la: Vec<f64>,
    /// Row j: eigenvector of A for la[j].
    va: Vec<f64>,
    lb: Vec<f64>,
    vb: Vec<f64>,
    damping: f64,
}

impl KfacInverse {
    /// (B ⊗ A + λI)⁻¹·v for the layer's values v (weight block as stored, then bias).
    pub fn apply(&self, v: &[f64]) -> Result<Vec<f64>> {
        let f = &self.factors;
        f.check_len(v, "inverse")?;
        let (o, di) = (f.d_out, f.d_in);
        // Y = Q_Bᵀ W̄ Q_A (rows of v* are the eigenvectors, so Q_Bᵀ = vb and Q_A = vaᵀ).
        let t = matmul(&self.vb, &f.to_bar(v)?, o, o, di, false, false)?;
        let mut y = matmul(&t, &self.va, o, di, di, false, true)?;
        for r in 0..o {
            for c in 0..di {
                y[r * di + c] /= self.lb[r] * self.la[c] + self.damping;
            }
        }
        // W̄ = Q_B Y Q_Aᵀ.
        let t = matmul(&self.vb, &y, o, o, di, true, false)?;
        f.from_bar(&matmul(&t, &self.va, o, di, di, false, false)?)
    }
}
