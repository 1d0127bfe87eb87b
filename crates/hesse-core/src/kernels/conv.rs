//! 2-D convolution (cross-correlation, as PyTorch's conv2d), NCHW input, OIHW weight.
//!
//! SIMD path: im2col per image, then one packed GEMM out[O, OH·OW] = W[O, C·KH·KW] · cols.
//! Scalar reference: the direct seven-loop definition.

use super::gemm::{gemm_simd, MatRef};
use super::lanes::HasLanes;
use super::Isa;
use crate::error::Result;
use crate::real::Real;
use crate::tensor::try_zeros;

/// Geometry of one conv2d call (validated by the ops layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    pub padding: (usize, usize),
}

impl Conv2d {
    /// The geometry of conv2d(x [N, C, H, W], w [O, C, KH, KW]) with `stride` and `padding`,
    /// checked so that every size and index the kernels compute fits in usize (an overflow is an
    /// error naming the shapes, never a wrapped output shape).
    pub fn new(xs: &[usize], ws: &[usize], stride: (usize, usize), padding: (usize, usize)) -> Result<Conv2d> {
        use crate::error::{fmt_shape, Error};
        use crate::mem::{add, mul, product};
        if xs.len() != 4 || ws.len() != 4 {
            return Err(Error::shape(format!("conv2d: expected input [N, C, H, W] and weight [O, C, KH, KW], got {} and {}", fmt_shape(xs), fmt_shape(ws))));
        }
        if xs[1] != ws[1] {
            return Err(Error::shape(format!("conv2d: input {} has {} channels but weight {} expects {}", fmt_shape(xs), xs[1], fmt_shape(ws), ws[1])));
        }
        if stride.0 == 0 || stride.1 == 0 {
            return Err(Error::invalid(format!("conv2d: stride must be ≥ 1, got {stride:?}")));
        }
        let what = format!("conv2d of input {} and weight {} with padding {padding:?}", fmt_shape(xs), fmt_shape(ws));
        // H + 2p and W + 2p, the padded extents every output index stays below.
        let ph = add(&what, xs[2], mul(&what, 2, padding.0)?)?;
        let pw = add(&what, xs[3], mul(&what, 2, padding.1)?)?;
        if ws[2] == 0 || ws[3] == 0 || ph < ws[2] || pw < ws[3] {
            return Err(Error::shape(format!("conv2d: kernel {}×{} does not fit input {} with padding {padding:?}", ws[2], ws[3], fmt_shape(xs))));
        }
        let g = Conv2d { n: xs[0], c: xs[1], h: xs[2], w: xs[3], o: ws[0], kh: ws[2], kw: ws[3], stride, padding };
        let (oh, ow) = g.out_hw();
        // Every buffer the kernels index: input, weight, output, and one image's im2col matrix.
        product(&what, xs)?;
        product(&what, ws)?;
        product(&what, &[g.n, g.o, oh, ow])?;
        product(&what, &[g.c, g.kh, g.kw, oh, ow])?;
        Ok(g)
    }

    /// Output height and width: ⌊(H + 2p − K) / s⌋ + 1 (valid for a geometry from [`Conv2d::new`]).
    pub fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.padding.0 - self.kh) / self.stride.0 + 1,
            (self.w + 2 * self.padding.1 - self.kw) / self.stride.1 + 1,
        )
    }

    /// Input pixel read by output (oy, ox) at kernel tap (ky, kx), or None in the zero padding.
    #[inline(always)]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride.0 + ky).checked_sub(self.padding.0)?;
        let x = (ox * self.stride.1 + kx).checked_sub(self.padding.1)?;
        (y < self.h && x < self.w).then_some((y, x))
    }
}

pub fn conv2d<T: Real + HasLanes>(isa: Isa, g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    assert_eq!(x.len(), g.n * g.c * g.h * g.w);
    assert_eq!(wt.len(), g.o * g.c * g.kh * g.kw);
    assert_eq!(out.len(), g.n * g.o * oh * ow);
    if x.is_empty() || wt.is_empty() {
        // No channels or taps (or nothing to do): the sum is empty. Returning here also keeps
        // the loops below from running over a huge dim of an empty operand.
        out.fill(T::ZERO);
        return Ok(());
    }
    match isa {
        Isa::Scalar => {
            reference(g, x, wt, out);
            Ok(())
        }
        Isa::Simd => im2col_gemm(g, x, wt, out),
    }
}

fn reference<T: Real>(g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) {
    let (oh, ow) = g.out_hw();
    for n in 0..g.n {
        for o in 0..g.o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = T::ZERO;
                    for c in 0..g.c {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                    s += x[((n * g.c + c) * g.h + y) * g.w + xx] * wt[((o * g.c + c) * g.kh + ky) * g.kw + kx];
                                }
                            }
                        }
                    }
                    out[((n * g.o + o) * oh + oy) * ow + ox] = s;
                }
            }
        }
    }
}

/// cols[(c·KH + ky)·KW + kx, oy·OW + ox] = image pixel read at that tap (0 in the padding).
pub fn im2col<T: Real>(g: &Conv2d, img: &[T], col: &mut [T]) {
    let (oh, ow) = g.out_hw();
    let cols = oh * ow;
    for c in 0..g.c {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let dst = &mut col[r * cols..(r + 1) * cols];
                for oy in 0..oh {
                    for ox in 0..ow {
                        dst[oy * ow + ox] = match g.source(oy, ox, ky, kx) {
                            Some((y, xx)) => img[(c * g.h + y) * g.w + xx],
                            None => T::ZERO,
                        };
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: img[c, y, x] += Σ of the cols entries that read it.
fn col2im<T: Real>(g: &Conv2d, col: &[T], img: &mut [T]) {
    let (oh, ow) = g.out_hw();
    let cols = oh * ow;
    for c in 0..g.c {
        for ky in 0..g.kh {
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let src = &col[r * cols..(r + 1) * cols];
                for oy in 0..oh {
                    for ox in 0..ow {
                        if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                            img[(c * g.h + y) * g.w + xx] += src[oy * ow + ox];
                        }
                    }
                }
            }
        }
    }
}

fn im2col_gemm<T: Real + HasLanes>(g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    let (rows, cols) = (g.c * g.kh * g.kw, oh * ow);
    let mut col = try_zeros::<T>(rows * cols, "conv2d im2col")?;
    let img_len = g.c * g.h * g.w;
    for n in 0..g.n {
        im2col(g, &x[n * img_len..(n + 1) * img_len], &mut col);
        let dst = &mut out[n * g.o * cols..(n + 1) * g.o * cols];
        gemm_simd(T::ONE, MatRef::row_major(wt, g.o, rows), MatRef::row_major(&col, rows, cols), T::ZERO, dst)?;
    }
    Ok(())
}

/// ∂⟨gy, conv2d(x, w)⟩/∂x: gx [N, C, H, W] from gy [N, O, OH, OW] (overwrites gx).
/// SIMD: per image, cols = Wᵀ·gy (a GEMM), then col2im. Reference: scatter loops.
pub fn conv2d_grad_input<T: Real + HasLanes>(isa: Isa, g: &Conv2d, gy: &[T], wt: &[T], gx: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    let (rows, cols) = (g.c * g.kh * g.kw, oh * ow);
    let img_len = g.c * g.h * g.w;
    gx.fill(T::ZERO);
    if gx.is_empty() || gy.is_empty() || wt.is_empty() {
        return Ok(());
    }
    match isa {
        Isa::Simd => {
            let mut col = try_zeros::<T>(rows * cols, "conv2d backward")?;
            for n in 0..g.n {
                let gyn = &gy[n * g.o * cols..(n + 1) * g.o * cols];
                gemm_simd(T::ONE, MatRef::row_major(wt, g.o, rows).t(), MatRef::row_major(gyn, g.o, cols), T::ZERO, &mut col)?;
                col2im(g, &col, &mut gx[n * img_len..(n + 1) * img_len]);
            }
        }
        Isa::Scalar => {
            for n in 0..g.n {
                for o in 0..g.o {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let gv = gy[((n * g.o + o) * oh + oy) * ow + ox];
                            for c in 0..g.c {
                                for ky in 0..g.kh {
                                    for kx in 0..g.kw {
                                        if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                            gx[((n * g.c + c) * g.h + y) * g.w + xx] += gv * wt[((o * g.c + c) * g.kh + ky) * g.kw + kx];
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// ∂⟨gy, conv2d(x, w)⟩/∂w: gw [O, C, KH, KW] (overwrites gw).
/// SIMD: gw = Σₙ gyₙ · colsₙᵀ (GEMMs accumulating with β = 1). Reference: direct loops.
pub fn conv2d_grad_weight<T: Real + HasLanes>(isa: Isa, g: &Conv2d, x: &[T], gy: &[T], gw: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    let (rows, cols) = (g.c * g.kh * g.kw, oh * ow);
    let img_len = g.c * g.h * g.w;
    gw.fill(T::ZERO);
    if gw.is_empty() || gy.is_empty() || x.is_empty() {
        return Ok(());
    }
    match isa {
        Isa::Simd => {
            let mut col = try_zeros::<T>(rows * cols, "conv2d backward")?;
            for n in 0..g.n {
                im2col(g, &x[n * img_len..(n + 1) * img_len], &mut col);
                let gyn = &gy[n * g.o * cols..(n + 1) * g.o * cols];
                gemm_simd(T::ONE, MatRef::row_major(gyn, g.o, cols), MatRef::row_major(&col, rows, cols).t(), T::ONE, gw)?;
            }
        }
        Isa::Scalar => {
            for o in 0..g.o {
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let mut s = T::ZERO;
                            for n in 0..g.n {
                                for oy in 0..oh {
                                    for ox in 0..ow {
                                        if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                            s += gy[((n * g.o + o) * oh + oy) * ow + ox] * x[((n * g.c + c) * g.h + y) * g.w + xx];
                                        }
                                    }
                                }
                            }
                            gw[((o * g.c + c) * g.kh + ky) * g.kw + kx] = s;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
