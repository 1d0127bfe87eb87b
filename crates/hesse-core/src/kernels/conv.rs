//! 2-D convolution (cross-correlation, as PyTorch's conv2d and ONNX Conv), NCHW input, weight
//! [O, C/groups, KH, KW], with stride, dilation, asymmetric zero padding and channel groups
//! (groups = C is depthwise).
//!
//! Output (n, o, oy, ox), with group gi = o / (O/groups) and Cg = C/groups channels per group:
//!   y[n, o, oy, ox] = Σ_{c < Cg, ky, kx} x[n, gi·Cg + c, oy·sh + ky·dh − top, ox·sw + kx·dw − left]
//!                                         · w[o, c, ky, kx]        (x = 0 outside the image)
//! OH = ⌊(H + top + bottom − (dh·(KH − 1) + 1)) / sh⌋ + 1, OW likewise.
//!
//! SIMD path (the fused kernels at the end of this file): per image and group one GEMM
//! out_gi[O/g, OH·OW] = W_gi[O/g, Cg·KH·KW] · cols_gi, with W packed once per call and cols read
//! in place from the zero-padded image for stride 1 ([`Cols`]), else im2col written straight into
//! the GEMM's panels; the input adjoint of a stride-1 conv is itself such a forward conv, and the
//! weight adjoint reads cols in place as the GEMM's A. A depthwise conv
//! (one input and one output channel per group) would be GEMMs of one row, all packing and no
//! reuse, so it runs directly instead: per tap, a row axpy (out_row += w·x_row) over the output
//! positions whose input is inside the image, vectorized along the row when the stride is 1.
//! Scalar reference: the direct seven-loop definition.

use super::gemm::{gemm_packed_a, gemm_shifted_a, gemm_simd, panel_width, BOperand, MatRef, PackedA, PackedB, ShiftedA, ShiftedB};
use super::lanes::{HasLanes, Lanes};
use super::Isa;
use crate::error::Result;
use crate::real::Real;
use crate::tensor::try_zeros;

/// The attributes of a conv2d beyond its operands' shapes (PyTorch's F.conv2d / ONNX Conv).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConvAttrs {
    /// Step between windows (rows, cols), each ≥ 1.
    pub stride: (usize, usize),
    /// Zeros added [top, left, bottom, right] (ONNX's pads order for 2-D: begins, then ends).
    pub pads: [usize; 4],
    /// Spacing between kernel taps (rows, cols), each ≥ 1.
    pub dilation: (usize, usize),
    /// Channel groups, ≥ 1, dividing both C and O.
    pub groups: usize,
}

impl Default for ConvAttrs {
    fn default() -> Self {
        ConvAttrs { stride: (1, 1), pads: [0; 4], dilation: (1, 1), groups: 1 }
    }
}

impl ConvAttrs {
    /// Stride and the same padding on both sides of each axis, no dilation, one group.
    pub fn symmetric(stride: (usize, usize), padding: (usize, usize)) -> ConvAttrs {
        ConvAttrs { stride, pads: [padding.0, padding.1, padding.0, padding.1], ..ConvAttrs::default() }
    }
}

/// Geometry of one conv2d call: operand sizes and attributes. Only [`Conv2d::new`] makes one, so
/// every field combination the kernels see has been checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub n: usize,
    /// Input channels (all groups).
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Output channels (all groups).
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: (usize, usize),
    /// [top, left, bottom, right]
    pub pads: [usize; 4],
    pub dilation: (usize, usize),
    pub groups: usize,
}

impl Conv2d {
    /// The geometry of conv2d(x [N, C, H, W], w [O, C/groups, KH, KW]) with `a`, checked so that
    /// every size and index the kernels compute fits in usize (an overflow is an error naming the
    /// shapes, never a wrapped output shape). The one conv geometry check.
    pub fn new(xs: &[usize], ws: &[usize], a: ConvAttrs) -> Result<Conv2d> {
        use crate::error::{fmt_shape, Error};
        use crate::mem::{add, mul, product};
        if xs.len() != 4 || ws.len() != 4 {
            return Err(Error::shape(format!("conv2d: expected input [N, C, H, W] and weight [O, C/groups, KH, KW], got {} and {}", fmt_shape(xs), fmt_shape(ws))));
        }
        let g = a.groups;
        if g == 0 {
            return Err(Error::invalid("conv2d: groups must be ≥ 1, got 0"));
        }
        if !xs[1].is_multiple_of(g) || !ws[0].is_multiple_of(g) {
            return Err(Error::shape(format!(
                "conv2d: groups {g} must divide the input channels and the output channels, got input {} and weight {}",
                fmt_shape(xs),
                fmt_shape(ws)
            )));
        }
        if xs[1] / g != ws[1] {
            let per = if g == 1 { String::new() } else { format!(" (channels / groups = {} / {g})", xs[1]) };
            return Err(Error::shape(format!("conv2d: input {} has {} channels per group{per} but weight {} expects {}", fmt_shape(xs), xs[1] / g, fmt_shape(ws), ws[1])));
        }
        if a.stride.0 == 0 || a.stride.1 == 0 {
            return Err(Error::invalid(format!("conv2d: stride must be ≥ 1, got {:?}", a.stride)));
        }
        if a.dilation.0 == 0 || a.dilation.1 == 0 {
            return Err(Error::invalid(format!("conv2d: dilation must be ≥ 1, got {:?}", a.dilation)));
        }
        let what = format!(
            "conv2d of input {} and weight {} with pads {:?}, dilation {:?}",
            fmt_shape(xs),
            fmt_shape(ws),
            a.pads,
            a.dilation
        );
        // H + top + bottom and W + left + right, the padded extents every index stays below, and
        // the dilated kernel extents d·(K − 1) + 1.
        let ph = add(&what, xs[2], add(&what, a.pads[0], a.pads[2])?)?;
        let pw = add(&what, xs[3], add(&what, a.pads[1], a.pads[3])?)?;
        if ws[2] == 0 || ws[3] == 0 {
            return Err(Error::shape(format!("conv2d: kernel {}×{} of weight {} is empty", ws[2], ws[3], fmt_shape(ws))));
        }
        let ekh = add(&what, mul(&what, a.dilation.0, ws[2] - 1)?, 1)?;
        let ekw = add(&what, mul(&what, a.dilation.1, ws[3] - 1)?, 1)?;
        if ph < ekh || pw < ekw {
            return Err(Error::shape(format!(
                "conv2d: kernel {}×{} (dilated to {ekh}×{ekw}) does not fit input {} with pads {:?} [top, left, bottom, right]",
                ws[2],
                ws[3],
                fmt_shape(xs),
                a.pads
            )));
        }
        let geo = Conv2d { n: xs[0], c: xs[1], h: xs[2], w: xs[3], o: ws[0], kh: ws[2], kw: ws[3], stride: a.stride, pads: a.pads, dilation: a.dilation, groups: g };
        let (oh, ow) = geo.out_hw();
        // Every buffer the kernels index: input, weight, output, and one image's im2col matrix.
        product(&what, xs)?;
        product(&what, ws)?;
        product(&what, &[geo.n, geo.o, oh, ow])?;
        product(&what, &[geo.c, geo.kh, geo.kw, oh, ow])?;
        // The SIMD path's buffers: one zero-padded image, and the im2col matrix with its columns
        // rounded up to whole GEMM panels (at most 8 wide).
        product(&what, &[geo.c, ph, pw])?;
        product(&what, &[geo.c, geo.kh, geo.kw, add(&what, oh * ow, 7)?])?;
        Ok(geo)
    }

    /// The attributes this geometry was made with.
    pub fn attrs(&self) -> ConvAttrs {
        ConvAttrs { stride: self.stride, pads: self.pads, dilation: self.dilation, groups: self.groups }
    }

    /// Output height and width: ⌊(H + top + bottom − (d·(K − 1) + 1)) / s⌋ + 1 (valid for a
    /// geometry from [`Conv2d::new`], which checked that no term overflows or goes negative).
    pub fn out_hw(&self) -> (usize, usize) {
        let [top, left, bottom, right] = self.pads;
        (
            (self.h + top + bottom - (self.dilation.0 * (self.kh - 1) + 1)) / self.stride.0 + 1,
            (self.w + left + right - (self.dilation.1 * (self.kw - 1) + 1)) / self.stride.1 + 1,
        )
    }

    /// The weight's shape [O, C/groups, KH, KW].
    pub fn weight_shape(&self) -> [usize; 4] {
        [self.o, self.c / self.groups, self.kh, self.kw]
    }

    /// One input and one output channel per group (groups = C = O): the direct SIMD path.
    #[inline]
    pub fn is_depthwise(&self) -> bool {
        self.cg() == 1 && self.og() == 1
    }

    /// Input channels per group.
    #[inline(always)]
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    #[inline(always)]
    pub fn og(&self) -> usize {
        self.o / self.groups
    }

    /// Input pixel read by output (oy, ox) at kernel tap (ky, kx), or None in the zero padding.
    #[inline(always)]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride.0 + ky * self.dilation.0).checked_sub(self.pads[0])?;
        let x = (ox * self.stride.1 + kx * self.dilation.1).checked_sub(self.pads[1])?;
        (y < self.h && x < self.w).then_some((y, x))
    }

    /// Index of x[n, ci, y, xx].
    #[inline(always)]
    fn xi(&self, n: usize, ci: usize, y: usize, xx: usize) -> usize {
        ((n * self.c + ci) * self.h + y) * self.w + xx
    }

    /// Index of w[o, c, ky, kx] (c within the group).
    #[inline(always)]
    fn wi(&self, o: usize, c: usize, ky: usize, kx: usize) -> usize {
        ((o * self.cg() + c) * self.kh + ky) * self.kw + kx
    }
}

pub fn conv2d<T: Real + HasLanes>(isa: Isa, g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    assert_eq!(x.len(), g.n * g.c * g.h * g.w);
    assert_eq!(wt.len(), g.o * g.cg() * g.kh * g.kw);
    assert_eq!(out.len(), g.n * g.o * oh * ow);
    if x.is_empty() || wt.is_empty() || out.is_empty() {
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
        Isa::Simd if g.is_depthwise() => {
            depthwise(g, x, wt, out);
            Ok(())
        }
        Isa::Simd => conv2d_fused(g, x, wt, Tangents::NONE, Some(out), None),
    }
}

/// Output positions [lo, hi) of one axis whose input index o·s + off − pad (off = k·d, one tap)
/// lies in [0, len): lo = ⌈(pad − off)/s⌉⁺, hi = min(out_len, ⌊(len + pad − off − 1)/s⌋ + 1).
#[inline]
fn inside(out_len: usize, len: usize, s: usize, off: usize, pad: usize) -> (usize, usize) {
    let lo = if pad > off { (pad - off).div_ceil(s) } else { 0 };
    let hi = if len + pad > off { out_len.min((len + pad - off - 1) / s + 1) } else { 0 };
    (lo.min(hi), hi)
}

/// y += a·x (equal lengths), in lanes.
#[inline]
fn axpy<T: Real + HasLanes>(a: T, x: &[T], y: &mut [T]) {
    let w = <T::V as Lanes>::WIDTH;
    let body = x.len() / w * w;
    let av = T::V::splat(a);
    for (yc, xc) in y[..body].chunks_exact_mut(w).zip(x[..body].chunks_exact(w)) {
        // SAFETY: both chunks have exactly `w` elements.
        unsafe { av.mul_add(T::V::load(xc.as_ptr()), T::V::load(yc.as_ptr())).store(yc.as_mut_ptr()) }
    }
    for (yv, &xv) in y[body..].iter_mut().zip(&x[body..]) {
        *yv += a * xv;
    }
}

/// Σ x·y (equal lengths), in lanes.
#[inline]
fn dot<T: Real + HasLanes>(x: &[T], y: &[T]) -> T {
    let w = <T::V as Lanes>::WIDTH;
    let body = x.len() / w * w;
    let mut acc = T::V::splat(T::ZERO);
    for (xc, yc) in x[..body].chunks_exact(w).zip(y[..body].chunks_exact(w)) {
        // SAFETY: both chunks have exactly `w` elements.
        acc = unsafe { T::V::load(xc.as_ptr()).mul_add(T::V::load(yc.as_ptr()), acc) };
    }
    let mut s = acc.sum();
    for (&xv, &yv) in x[body..].iter().zip(&y[body..]) {
        s += xv * yv;
    }
    s
}

/// For each (image, output channel o, reading input channel o / (O/groups) alone) and each tap
/// (ky, kx): the output rows and the span of each row whose input is inside the image, with the
/// input offset of the span's first element: `f(n, o, ci, tap index, oy, iy, (ox_lo, ox_hi), ix_lo)`.
/// The one walk the three depthwise kernels share.
fn depthwise_taps(g: &Conv2d, mut f: impl FnMut(usize, usize, usize, usize, usize, usize, (usize, usize), usize)) {
    let (oh, ow) = g.out_hw();
    for n in 0..g.n {
        for o in 0..g.o {
            let ci = o / g.og();
            for ky in 0..g.kh {
                let (ylo, yhi) = inside(oh, g.h, g.stride.0, ky * g.dilation.0, g.pads[0]);
                for kx in 0..g.kw {
                    let (xlo, xhi) = inside(ow, g.w, g.stride.1, kx * g.dilation.1, g.pads[1]);
                    if xlo == xhi {
                        continue;
                    }
                    let ix_lo = xlo * g.stride.1 + kx * g.dilation.1 - g.pads[1];
                    for oy in ylo..yhi {
                        let iy = oy * g.stride.0 + ky * g.dilation.0 - g.pads[0];
                        f(n, o, ci, (o * g.kh + ky) * g.kw + kx, oy, iy, (xlo, xhi), ix_lo);
                    }
                }
            }
        }
    }
}

/// The depthwise forward: out[n, o, oy, lo..hi] += w[o, tap] · x[n, ci, iy, ix_lo ..(step sw)].
fn depthwise<T: Real + HasLanes>(g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) {
    let (oh, ow) = g.out_hw();
    let sw = g.stride.1;
    out.fill(T::ZERO);
    depthwise_taps(g, |n, o, ci, tap, oy, iy, (lo, hi), ix| {
        let row = &mut out[((n * g.o + o) * oh + oy) * ow..][lo..hi];
        let src = &x[g.xi(n, ci, iy, 0)..][ix..];
        let wv = wt[tap];
        if sw == 1 {
            axpy(wv, &src[..hi - lo], row);
        } else {
            row.iter_mut().enumerate().for_each(|(j, y)| *y += wv * src[j * sw]);
        }
    });
}

fn reference<T: Real>(g: &Conv2d, x: &[T], wt: &[T], out: &mut [T]) {
    let (oh, ow) = g.out_hw();
    for n in 0..g.n {
        for o in 0..g.o {
            let c0 = (o / g.og()) * g.cg(); // the group's first input channel
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = T::ZERO;
                    for c in 0..g.cg() {
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                    s += x[g.xi(n, c0 + c, y, xx)] * wt[g.wi(o, c, ky, kx)];
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

/// For each row r = (c·KH + ky)·KW + kx of one image's im2col matrix and each output row oy:
/// `f(r, c, oy, Some((iy, (ox_lo, ox_hi), ix_lo)))` where the tap reads input row iy over the
/// output span [ox_lo, ox_hi) starting at input column ix_lo (step sw), or `f(r, c, oy, None)`
/// where the whole output row reads padding. The span bounds come from [`inside`] once per tap,
/// so the copy loops below carry no per-element bounds test (a per-element `source` test was
/// most of im2col's and col2im's time).
fn col_rows(g: &Conv2d, mut f: impl FnMut(usize, usize, usize, Option<(usize, (usize, usize), usize)>)) {
    let (oh, ow) = g.out_hw();
    for c in 0..g.c {
        for ky in 0..g.kh {
            let (ylo, yhi) = inside(oh, g.h, g.stride.0, ky * g.dilation.0, g.pads[0]);
            for kx in 0..g.kw {
                let r = (c * g.kh + ky) * g.kw + kx;
                let (xlo, xhi) = inside(ow, g.w, g.stride.1, kx * g.dilation.1, g.pads[1]);
                for oy in 0..oh {
                    if oy < ylo || oy >= yhi || xlo == xhi {
                        f(r, c, oy, None);
                    } else {
                        let iy = oy * g.stride.0 + ky * g.dilation.0 - g.pads[0];
                        f(r, c, oy, Some((iy, (xlo, xhi), xlo * g.stride.1 + kx * g.dilation.1 - g.pads[1])));
                    }
                }
            }
        }
    }
}

/// cols[(c·KH + ky)·KW + kx, oy·OW + ox] = image pixel read at that tap (0 in the padding), for
/// all C channels of one image (so group gi's rows are the block gi·Cg·KH·KW .. (gi+1)·Cg·KH·KW).
pub fn im2col<T: Real>(g: &Conv2d, img: &[T], col: &mut [T]) {
    let (oh, ow) = g.out_hw();
    let (cols, sw) = (oh * ow, g.stride.1);
    col_rows(g, |r, c, oy, span| {
        let dst = &mut col[r * cols + oy * ow..][..ow];
        match span {
            None => dst.fill(T::ZERO),
            Some((iy, (lo, hi), ix)) => {
                dst[..lo].fill(T::ZERO);
                dst[hi..].fill(T::ZERO);
                let src = &img[(c * g.h + iy) * g.w + ix..];
                if sw == 1 {
                    dst[lo..hi].copy_from_slice(&src[..hi - lo]);
                } else {
                    dst[lo..hi].iter_mut().enumerate().for_each(|(j, d)| *d = src[j * sw]);
                }
            }
        }
    });
}

/// One output row's entries of tap row r: the pixels `src[(ox − lo)·sw]` over the span
/// [lo, hi) and zeros outside it, handed to `put(ox0, ox1, pixels)` in three runs, where
/// `pixels` is None for zeros or Some(src) with entry ox = src[(ox − ox0)·sw].
#[inline(always)]
fn row_runs<'s, T: Real>(ow: usize, span: Option<(&'s [T], (usize, usize))>, mut put: impl FnMut(usize, usize, Option<&'s [T]>)) {
    match span {
        None => put(0, ow, None),
        Some((src, (lo, hi))) => {
            put(0, lo, None);
            put(lo, hi, Some(src));
            put(hi, ow, None);
        }
    }
}

/// dst[i] = the run's entries: zeros, or src[(from + i)·sw].
#[inline(always)]
fn write_run<T: Real>(dst: &mut [T], pixels: Option<&[T]>, from: usize, sw: usize) {
    match pixels {
        None => dst.fill(T::ZERO),
        Some(src) if sw == 1 => dst.copy_from_slice(&src[from..from + dst.len()]),
        Some(src) => dst.iter_mut().enumerate().for_each(|(i, d)| *d = src[(from + i) * sw]),
    }
}

/// [`im2col`] written straight into the GEMM's B panels ([`PackedB`] of depth C·KH·KW, columns
/// the OH·OW output positions; group gi is rows gi·Cg·KH·KW..): the forward GEMM then packs
/// nothing. `buf` holds `PackedB::len(C·KH·KW, OH·OW)` values, zero where a panel pads past OH·OW
/// (never written). Each output row is written in runs that stay inside one panel (contiguous).
fn im2col_packed<T: Real + HasLanes>(g: &Conv2d, img: &[T], buf: &mut [T]) {
    let (_, ow) = g.out_hw();
    let (depth, sw, nr) = (g.c * g.kh * g.kw, g.stride.1, panel_width::<T>());
    col_rows(g, |r, c, oy, span| {
        let src = span.map(|(iy, lohi, ix)| (&img[(c * g.h + iy) * g.w + ix..], lohi));
        row_runs(ow, src, |a, b, pixels| {
            let mut ox = a;
            while ox < b {
                let pos = oy * ow + ox;
                let run = (nr - pos % nr).min(b - ox);
                let at = PackedB::<T>::index(depth, r, pos);
                write_run(&mut buf[at..at + run], pixels, ox - a, sw);
                ox += run;
            }
        });
    });
}

/// The adjoint of [`im2col`]: img[c, y, x] += Σ of the cols entries that read it.
fn col2im<T: Real + HasLanes>(g: &Conv2d, col: &[T], img: &mut [T]) {
    let (oh, ow) = g.out_hw();
    let (cols, sw) = (oh * ow, g.stride.1);
    col_rows(g, |r, c, oy, span| {
        if let Some((iy, (lo, hi), ix)) = span {
            let src = &col[r * cols + oy * ow..][lo..hi];
            let dst = &mut img[(c * g.h + iy) * g.w + ix..];
            if sw == 1 {
                axpy(T::ONE, src, &mut dst[..hi - lo]);
            } else {
                src.iter().enumerate().for_each(|(j, &v)| dst[j * sw] += v);
            }
        }
    });
}

/// The per-group blocks of the GEMMs: (rows of one group's cols = Cg·KH·KW, cols = OH·OW).
fn gemm_dims(g: &Conv2d) -> (usize, usize) {
    let (oh, ow) = g.out_hw();
    (g.cg() * g.kh * g.kw, oh * ow)
}

/// ∂⟨gy, conv2d(x, w)⟩/∂x: gx [N, C, H, W] from gy [N, O, OH, OW] (overwrites gx).
/// SIMD: [`grad_input_fused`]. Reference: scatter loops.
pub fn conv2d_grad_input<T: Real + HasLanes>(isa: Isa, g: &Conv2d, gy: &[T], wt: &[T], gx: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    let og = g.og();
    gx.fill(T::ZERO);
    if gx.is_empty() || gy.is_empty() || wt.is_empty() {
        return Ok(());
    }
    match isa {
        // gx[n, ci, iy, ix_lo ..] += w[o, tap] · gy[n, o, oy, lo..hi] (the forward's axpy, transposed).
        Isa::Simd if g.is_depthwise() => {
            let sw = g.stride.1;
            depthwise_taps(g, |n, o, ci, tap, oy, iy, (lo, hi), ix| {
                let src = &gy[((n * g.o + o) * oh + oy) * ow..][lo..hi];
                let dst = &mut gx[g.xi(n, ci, iy, 0)..][ix..];
                let wv = wt[tap];
                if sw == 1 {
                    axpy(wv, src, &mut dst[..hi - lo]);
                } else {
                    src.iter().enumerate().for_each(|(j, &v)| dst[j * sw] += wv * v);
                }
            });
        }
        Isa::Simd => grad_input_fused(g, gy, wt, Tangents::NONE, Some(gx), None)?,
        Isa::Scalar => {
            for n in 0..g.n {
                for o in 0..g.o {
                    let c0 = (o / og) * g.cg();
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let gv = gy[((n * g.o + o) * oh + oy) * ow + ox];
                            for c in 0..g.cg() {
                                for ky in 0..g.kh {
                                    for kx in 0..g.kw {
                                        if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                            gx[g.xi(n, c0 + c, y, xx)] += gv * wt[g.wi(o, c, ky, kx)];
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

/// ∂⟨gy, conv2d(x, w)⟩/∂w: gw [O, C/groups, KH, KW] (overwrites gw).
/// SIMD: [`grad_weight_fused`]. Reference: direct loops.
pub fn conv2d_grad_weight<T: Real + HasLanes>(isa: Isa, g: &Conv2d, x: &[T], gy: &[T], gw: &mut [T]) -> Result<()> {
    let (oh, ow) = g.out_hw();
    let og = g.og();
    gw.fill(T::ZERO);
    if gw.is_empty() || gy.is_empty() || x.is_empty() {
        return Ok(());
    }
    match isa {
        // gw[o, tap] = Σ over images and rows of ⟨gy[n, o, oy, lo..hi], x[n, ci, iy, ix_lo ..]⟩.
        Isa::Simd if g.is_depthwise() => {
            let sw = g.stride.1;
            depthwise_taps(g, |n, o, ci, tap, oy, iy, (lo, hi), ix| {
                let gyr = &gy[((n * g.o + o) * oh + oy) * ow..][lo..hi];
                let xr = &x[g.xi(n, ci, iy, 0)..][ix..];
                gw[tap] += if sw == 1 { dot(gyr, &xr[..hi - lo]) } else { gyr.iter().enumerate().fold(T::ZERO, |s, (j, &v)| s + v * xr[j * sw]) };
            });
        }
        Isa::Simd => grad_weight_fused(g, x, gy, Tangents::NONE, Some(gw), None)?,
        Isa::Scalar => {
            for o in 0..g.o {
                let c0 = (o / og) * g.cg();
                for c in 0..g.cg() {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let mut s = T::ZERO;
                            for n in 0..g.n {
                                for oy in 0..oh {
                                    for ox in 0..ow {
                                        if let Some((y, xx)) = g.source(oy, ox, ky, kx) {
                                            s += gy[((n * g.o + o) * oh + oy) * ow + ox] * x[g.xi(n, c0 + c, y, xx)];
                                        }
                                    }
                                }
                            }
                            gw[g.wi(o, c, ky, kx)] = s;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// K stacked tangents ([K, len] each, None: zero) of a conv kernel's two operands, for the fused
/// kernels below, which compute a bilinear B(a, b) and/or its tangents B(ȧₖ, b) + B(a, ḃₖ) in
/// one pass over the images, so that what depends on one image of one operand (its padded copy
/// or im2col, or the column matrix before col2im) is built once and used by every term that
/// needs it, and the second tangent term accumulates into the first (β = 1, no temporary).
#[derive(Clone, Copy, Debug)]
pub struct Tangents<'a, T> {
    pub k: usize,
    pub a: Option<&'a [T]>,
    pub b: Option<&'a [T]>,
}

impl<T> Tangents<'_, T> {
    pub const NONE: Self = Tangents { k: 0, a: None, b: None };
    fn any(&self) -> bool {
        self.k > 0 && (self.a.is_some() || self.b.is_some())
    }
}

/// Whether [`conv2d_fused`] and its adjoints apply (the SIMD GEMM path); otherwise the caller
/// composes the plain kernels (scalar reference, depthwise).
pub fn fused(isa: Isa, g: &Conv2d) -> bool {
    isa == Isa::Simd && !g.is_depthwise()
}

/// Group gi's block of a [O, Cg·KH·KW] weight, row-major [O/g, Cg·KH·KW].
#[inline]
fn weight_gi<'w, T: Copy>(g: &Conv2d, w: &'w [T], gi: usize) -> MatRef<'w, T> {
    let (kg, og) = (gemm_dims(g).0, g.og());
    MatRef::row_major(&w[gi * og * kg..(gi + 1) * og * kg], og, kg)
}

/// Image n, group gi of an output-shaped [N, O, OH·OW] tensor: row-major [O/g, OH·OW].
#[inline]
fn out_gi<'y, T: Copy>(g: &Conv2d, y: &'y [T], n: usize, gi: usize) -> MatRef<'y, T> {
    let (cols, og) = (gemm_dims(g).1, g.og());
    MatRef::row_major(&y[(n * g.o + gi * og) * cols..(n * g.o + (gi + 1) * og) * cols], og, cols)
}

/// Where image n, group gi sits in an output-shaped tensor.
#[inline]
fn out_range(g: &Conv2d, n: usize, gi: usize) -> std::ops::Range<usize> {
    let (cols, og) = (gemm_dims(g).1, g.og());
    (n * g.o + gi * og) * cols..(n * g.o + (gi + 1) * og) * cols
}

/// `t[kk]`'s block of `len` values at `at` (tangent kk of one image).
#[inline]
fn tan_at<T>(t: &[T], kk: usize, total: usize, at: usize, len: usize) -> &[T] {
    &t[kk * total + at..][..len]
}

/// One image zero-padded on all sides ([C, H + top + bottom, W + left + right]), so that every
/// tap of every output position reads it in place: tap row (c, ky, kx) of group gi's im2col
/// matrix at output (oy, ox) is image[gi·Cg·Hp·Wp + shift(c, ky, kx) + oy·sh·Wp + ox·sw].
struct Padded<T> {
    image: Vec<T>,
    hp: usize,
    wp: usize,
}

impl<T: Real> Padded<T> {
    /// The padded image, with `extra` more zero columns on the right (for a wide output).
    fn new(g: &Conv2d, extra: usize) -> Result<Self> {
        let [top, left, bottom, right] = g.pads;
        let (hp, wp) = (g.h + top + bottom, g.w + left + right + extra);
        Ok(Padded { image: try_zeros(crate::mem::product("conv2d padded image", &[g.c, hp, wp])?, "conv2d padded image")?, hp, wp })
    }
    /// Copies in one image (C·H·W values); the border stays zero.
    fn load(&mut self, g: &Conv2d, img: &[T]) {
        let (top, left) = (g.pads[0], g.pads[1]);
        for c in 0..g.c {
            for y in 0..g.h {
                self.image[(c * self.hp + top + y) * self.wp + left..][..g.w].copy_from_slice(&img[(c * g.h + y) * g.w..][..g.w]);
            }
        }
    }
    /// shift(c, ky, kx) = (c·Hp + ky·dh)·Wp + kx·dw for the Cg·KH·KW rows of a group.
    fn shifts(&self, g: &Conv2d) -> Result<Vec<usize>> {
        let mut offs = crate::mem::try_vec(gemm_dims(g).0, "conv2d shifts")?;
        for c in 0..g.cg() {
            for ky in 0..g.kh {
                offs.extend((0..g.kw).map(|kx| (c * self.hp + ky * g.dilation.0) * self.wp + kx * g.dilation.1));
            }
        }
        Ok(offs)
    }
    /// Group gi's channels.
    fn group(&self, g: &Conv2d, gi: usize) -> &[T] {
        let len = g.cg() * self.hp * self.wp;
        &self.image[gi * len..(gi + 1) * len]
    }
}

/// One image of conv2d's right operand B = cols [C·KH·KW, OH·OW] as the GEMM reads it: im2col
/// panels ([`im2col_packed`]), or, for a stride-1 conv, the [`Padded`] image read in place
/// ([`ShiftedB`]), which writes 1.1× the image instead of KH·KW×. ShiftedB needs output rows of
/// whole panels, so where OW is not a multiple of the panel width the GEMM computes a wide output
/// of OW′ = OW rounded up columns (the image padded OW′ − OW more on the right, so the extra
/// columns read zeros or pixels, finite, and are dropped) into `wide` [O/g, OH·OW′], compacted.
enum Cols<T> {
    Packed(Vec<T>),
    Shifted { padded: Padded<T>, offs: Vec<usize>, wide: Vec<T> },
}

impl<T: Real + HasLanes> Cols<T> {
    fn new(g: &Conv2d) -> Result<Self> {
        let (_, ow) = g.out_hw();
        let (kg, cols) = gemm_dims(g);
        if g.stride == (1, 1) {
            let owp = ow.next_multiple_of(panel_width::<T>());
            let padded = Padded::new(g, owp - ow)?;
            let offs = padded.shifts(g)?;
            let wide = if owp == ow { Vec::new() } else { try_zeros(crate::mem::product("conv2d wide output", &[g.og(), cols / ow.max(1), owp])?, "conv2d wide output")? };
            return Ok(Cols::Shifted { padded, offs, wide });
        }
        Ok(Cols::Packed(try_zeros(PackedB::<T>::len(g.groups * kg, cols), "conv2d im2col")?))
    }

    /// Makes this image (C·H·W values) the operand.
    fn load(&mut self, g: &Conv2d, img: &[T]) {
        match self {
            Cols::Packed(col) => im2col_packed(g, img, col),
            Cols::Shifted { padded, .. } => padded.load(g, img),
        }
    }

    /// c ← a·B_gi + β·c for group gi's rows of B.
    fn gemm(&mut self, g: &Conv2d, a: &PackedA<T>, gi: usize, beta: T, c: &mut [T]) -> Result<()> {
        let (kg, cols) = gemm_dims(g);
        match self {
            Cols::Packed(col) => gemm_packed_a(T::ONE, a, BOperand::Packed(PackedB { data: col, depth: g.groups * kg, row0: gi * kg, k: kg, n: cols }), beta, c),
            Cols::Shifted { padded, offs, wide } => {
                let (oh, ow) = g.out_hw();
                let owp = ow.next_multiple_of(panel_width::<T>());
                let b = BOperand::Shifted(ShiftedB { image: padded.group(g, gi), offs, ow: owp, pitch: padded.wp, n: oh * owp });
                if owp == ow {
                    return gemm_packed_a(T::ONE, a, b, beta, c);
                }
                gemm_packed_a(T::ONE, a, b, T::ZERO, wide)?;
                // c = β·c + the first OW columns of each wide row (one output channel's row oy).
                for (crow, wrow) in c.chunks_exact_mut(ow).zip(wide.chunks_exact(owp)) {
                    for (cv, &wv) in crow.iter_mut().zip(wrow) {
                        *cv = if beta == T::ZERO { wv } else { beta * *cv + wv };
                    }
                }
                Ok(())
            }
        }
    }
}

/// The K stacked weights [K, O, Cg, KH, KW] packed per tangent and group for the GEMMs of every
/// image: [kk · groups + gi].
fn pack_weights<T: Real + HasLanes>(g: &Conv2d, w: &[T], k: usize) -> Result<Vec<PackedA<T>>> {
    let w_len = g.o * gemm_dims(g).0;
    let mut out = crate::mem::try_vec(k * g.groups, "packed weights")?;
    for kk in 0..k {
        for gi in 0..g.groups {
            out.push(PackedA::pack(weight_gi(g, &w[kk * w_len..(kk + 1) * w_len], gi))?);
        }
    }
    Ok(out)
}

/// y = conv2d(x, w) (when `y` is given) and ẏₖ = conv2d(ẋₖ, w) + conv2d(x, ẇₖ) into `ty`
/// ([K, len(y)], required when a tangent is), fused as [`Tangents`] says. PRECONDITION: the
/// operands have the lengths of `g` (as [`conv2d`]); `fused(Isa::Simd, g)`.
pub fn conv2d_fused<T: Real + HasLanes>(g: &Conv2d, x: &[T], wt: &[T], tan: Tangents<T>, mut y: Option<&mut [T]>, mut ty: Option<&mut [T]>) -> Result<()> {
    let cols = gemm_dims(g).1;
    let img_len = g.c * g.h * g.w;
    let y_len = g.n * g.o * cols;
    let mut col = Cols::new(g)?;
    let mut col_t = if tan.any() && tan.a.is_some() { Some(Cols::new(g)?) } else { None };
    let w_p = pack_weights(g, wt, 1)?;
    let tw_p = match tan.b {
        Some(tw) if tan.any() => pack_weights(g, tw, tan.k)?,
        _ => Vec::new(),
    };
    for n in 0..g.n {
        // x's image serves the primal and the terms conv2d(x, ẇₖ).
        if y.is_some() || (tan.any() && tan.b.is_some()) {
            col.load(g, &x[n * img_len..(n + 1) * img_len]);
        }
        for gi in 0..g.groups {
            if let Some(y) = y.as_deref_mut() {
                col.gemm(g, &w_p[gi], gi, T::ZERO, &mut y[out_range(g, n, gi)])?;
            }
        }
        if !tan.any() {
            continue;
        }
        let ty = ty.as_deref_mut().expect("tangent output");
        for kk in 0..tan.k {
            let dst = |gi: usize| {
                let r = out_range(g, n, gi);
                (kk * y_len + r.start)..(kk * y_len + r.end)
            };
            if tan.b.is_some() {
                for gi in 0..g.groups {
                    col.gemm(g, &tw_p[kk * g.groups + gi], gi, T::ZERO, &mut ty[dst(gi)])?;
                }
            }
            if let (Some(tx), Some(col_t)) = (tan.a, col_t.as_mut()) {
                col_t.load(g, tan_at(tx, kk, g.n * img_len, n * img_len, img_len));
                let beta = if tan.b.is_some() { T::ONE } else { T::ZERO };
                for gi in 0..g.groups {
                    col_t.gemm(g, &w_p[gi], gi, beta, &mut ty[dst(gi)])?;
                }
            }
        }
    }
    Ok(())
}

/// The stride-1 input adjoint as a forward convolution: gx = conv2d(gy, w′) with pads
/// d·(K − 1) − pad on each side, w′[gi·Cg + c, o, ky, kx] = w[gi·(O/g) + o, c, KH−1−ky, KW−1−kx]
/// (each group's weight transposed in channels and flipped in space), so that
/// gx[c, y, x] = Σ_{o, ky, kx} gy[o, y + pad − ky·d, x + pad − kx·d]·w[o, c, ky, kx] needs no
/// col2im and reads gy in place ([`Cols`]). None where a pad exceeds the dilated kernel.
fn transposed_geometry(g: &Conv2d) -> Option<Conv2d> {
    if g.stride != (1, 1) {
        return None;
    }
    let (ekh, ekw) = (g.dilation.0 * (g.kh - 1), g.dilation.1 * (g.kw - 1));
    let [top, left, bottom, right] = g.pads;
    let pads = [ekh.checked_sub(top)?, ekw.checked_sub(left)?, ekh.checked_sub(bottom)?, ekw.checked_sub(right)?];
    let (oh, ow) = g.out_hw();
    let a = ConvAttrs { stride: (1, 1), pads, dilation: g.dilation, groups: g.groups };
    Conv2d::new(&[g.n, g.o, oh, ow], &[g.c, g.og(), g.kh, g.kw], a).ok()
}

/// w′ of [`transposed_geometry`] for K stacked weights [K, O, Cg, KH, KW] → [K, C, O/g, KH, KW].
fn flip_weights<T: Real>(g: &Conv2d, w: &[T], k: usize) -> Result<Vec<T>> {
    let (og, cg, taps) = (g.og(), g.cg(), g.kh * g.kw);
    let len = g.o * cg * taps;
    let mut out = try_zeros::<T>(k * len, "conv2d flipped weights")?;
    for kk in 0..k {
        let (src, dst) = (&w[kk * len..(kk + 1) * len], &mut out[kk * len..(kk + 1) * len]);
        for gi in 0..g.groups {
            for o in 0..og {
                for c in 0..cg {
                    for t in 0..taps {
                        dst[((gi * cg + c) * og + o) * taps + (taps - 1 - t)] = src[((gi * og + o) * cg + c) * taps + t];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// gx = conv2dᵀ_x(gy, w) (when given) and ġxₖ = conv2dᵀ_x(ġyₖ, w) + conv2dᵀ_x(gy, ẇₖ), with
/// a = gy and b = w in [`Tangents`]. Stride 1: the forward conv of [`transposed_geometry`].
/// Otherwise per image the column matrix W_giᵀ·gy_gi, and for each tangent the sum
/// W_giᵀ·ġy_gi + Ẇ_giᵀ·gy_gi, each scattered by one col2im (it is linear).
pub fn grad_input_fused<T: Real + HasLanes>(g: &Conv2d, gy: &[T], wt: &[T], tan: Tangents<T>, mut gx: Option<&mut [T]>, mut tgx: Option<&mut [T]>) -> Result<()> {
    if let Some(gt) = transposed_geometry(g) {
        let wf = flip_weights(g, wt, 1)?;
        let twf = match tan.b {
            Some(tw) if tan.any() => Some(flip_weights(g, tw, tan.k)?),
            _ => None,
        };
        let tan = Tangents { k: tan.k, a: tan.a, b: twf.as_deref() };
        return conv2d_fused(&gt, gy, &wf, tan, gx, tgx);
    }
    let (kg, cols) = gemm_dims(g);
    let (img_len, w_len) = (g.c * g.h * g.w, g.o * kg);
    let (y_len, x_len) = (g.n * g.o * cols, g.n * img_len);
    let mut col = try_zeros::<T>(g.groups * kg * cols, "conv2d backward")?;
    let col_gi = |gi: usize| gi * kg * cols..(gi + 1) * kg * cols;
    if let Some(gx) = gx.as_deref_mut() {
        gx.fill(T::ZERO);
    }
    if let Some(t) = tgx.as_deref_mut() {
        t.fill(T::ZERO);
    }
    for n in 0..g.n {
        if let Some(gx) = gx.as_deref_mut() {
            for gi in 0..g.groups {
                let r = col_gi(gi);
                gemm_simd(T::ONE, weight_gi(g, wt, gi).t(), out_gi(g, gy, n, gi), T::ZERO, &mut col[r])?;
            }
            col2im(g, &col, &mut gx[n * img_len..(n + 1) * img_len]);
        }
        if !tan.any() {
            continue;
        }
        let tgx = tgx.as_deref_mut().expect("tangent output");
        for kk in 0..tan.k {
            for gi in 0..g.groups {
                let r = col_gi(gi);
                let mut beta = T::ZERO;
                if let Some(tgy) = tan.a {
                    gemm_simd(T::ONE, weight_gi(g, wt, gi).t(), out_gi(g, &tgy[kk * y_len..(kk + 1) * y_len], n, gi), T::ZERO, &mut col[r.clone()])?;
                    beta = T::ONE;
                }
                if let Some(tw) = tan.b {
                    gemm_simd(T::ONE, weight_gi(g, &tw[kk * w_len..(kk + 1) * w_len], gi).t(), out_gi(g, gy, n, gi), beta, &mut col[r])?;
                }
            }
            col2im(g, &col, &mut tgx[kk * x_len + n * img_len..][..img_len]);
        }
    }
    Ok(())
}

/// gw = conv2dᵀ_w(x, gy) (when given) and ġwₖ = conv2dᵀ_w(ẋₖ, gy) + conv2dᵀ_w(x, ġyₖ), with
/// a = x and b = gy in [`Tangents`], as gwᵀ_gi = Σₙ colsₙ,gi · gyₙ,giᵀ ([Cg·KH·KW, O/g]): the
/// columns are read in place from each [`Padded`] image ([`ShiftedA`], any stride), which serves
/// the primal and every ġy term; one transpose at the end gives [O, Cg, KH, KW].
pub fn grad_weight_fused<T: Real + HasLanes>(g: &Conv2d, x: &[T], gy: &[T], tan: Tangents<T>, gw: Option<&mut [T]>, tgw: Option<&mut [T]>) -> Result<()> {
    let (kg, cols) = gemm_dims(g);
    let (og, img_len, w_len) = (g.og(), g.c * g.h * g.w, g.o * kg);
    let y_len = g.n * g.o * cols;
    let (oh, ow) = g.out_hw();
    let mut img = Padded::new(g, 0)?;
    let mut img_t = if tan.any() && tan.a.is_some() { Some(Padded::new(g, 0)?) } else { None };
    let offs = img.shifts(g)?;
    let mut posoff = crate::mem::try_vec(cols, "conv2d positions")?;
    for oy in 0..oh {
        posoff.extend((0..ow).map(|ox| oy * g.stride.0 * img.wp + ox * g.stride.1));
    }
    // gwᵀ per group, [groups, kg, og], for the primal and each tangent.
    let mut acc = try_zeros::<T>(if gw.is_some() { w_len } else { 0 }, "conv2d backward")?;
    let mut tacc = try_zeros::<T>(if tan.any() { tan.k * w_len } else { 0 }, "conv2d backward")?;
    let at = |gi: usize| gi * kg * og..(gi + 1) * kg * og;
    let gemm = |im: &Padded<T>, gy: &[T], n: usize, gi: usize, c: &mut [T]| {
        gemm_shifted_a(T::ONE, ShiftedA { image: im.group(g, gi), offs: &offs, posoff: &posoff }, out_gi(g, gy, n, gi).t(), T::ONE, c)
    };
    for n in 0..g.n {
        // x's image serves the primal and the terms conv2dᵀ_w(x, ġyₖ).
        if gw.is_some() || (tan.any() && tan.b.is_some()) {
            img.load(g, &x[n * img_len..(n + 1) * img_len]);
        }
        if gw.is_some() {
            for gi in 0..g.groups {
                gemm(&img, gy, n, gi, &mut acc[at(gi)])?;
            }
        }
        if !tan.any() {
            continue;
        }
        for kk in 0..tan.k {
            let out = &mut tacc[kk * w_len..(kk + 1) * w_len];
            if let Some(tgy) = tan.b {
                for gi in 0..g.groups {
                    gemm(&img, &tgy[kk * y_len..(kk + 1) * y_len], n, gi, &mut out[at(gi)])?;
                }
            }
            if let (Some(tx), Some(img_t)) = (tan.a, img_t.as_mut()) {
                img_t.load(g, tan_at(tx, kk, g.n * img_len, n * img_len, img_len));
                for gi in 0..g.groups {
                    gemm(img_t, gy, n, gi, &mut out[at(gi)])?;
                }
            }
        }
    }
    // [groups, kg, og] → [groups, og, kg] = [O, Cg, KH, KW].
    let untranspose = |src: &[T], dst: &mut [T]| {
        for gi in 0..g.groups {
            for r in 0..kg {
                for o in 0..og {
                    dst[(gi * og + o) * kg + r] = src[(gi * kg + r) * og + o];
                }
            }
        }
    };
    if let Some(gw) = gw {
        untranspose(&acc, gw);
    }
    if let Some(tgw) = tgw {
        if tan.any() {
            for kk in 0..tan.k {
                untranspose(&tacc[kk * w_len..(kk + 1) * w_len], &mut tgw[kk * w_len..(kk + 1) * w_len]);
            }
        } else {
            tgw.fill(T::ZERO);
        }
    }
    Ok(())
}
