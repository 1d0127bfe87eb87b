//! Pooling over [N, C, H, W], each a map fixed at build time: max pooling a `MaxMap` (the
//! window's taps inside the input as candidates; the maximum taken in the primal, its
//! tangent and VJP a gather/scatter at that index), average pooling a `Map` with weights
//! 1/divisor, global average pooling the mean over H and W.
//!
//! Shape rule (PyTorch's, which ONNX follows): with pads [top, left, bottom, right],
//! OH = ⌊(H + top + bottom − dil·(KH − 1) − 1)/stride⌋ + 1, ⌈…⌉ with `ceil_mode` — but a last
//! window that would start inside the bottom padding is dropped ((OH − 1)·stride ≥ H + top).

use crate::autodiff::dual::SparseMap;
use crate::autodiff::program::Program;
use crate::error::{fmt_shape, Error, Result};
use crate::shape::numel;

/// A 2-D pooling window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    /// [top, left, bottom, right]
    pub pads: [usize; 4],
    pub dilation: (usize, usize),
    pub ceil_mode: bool,
}

/// One spatial axis of a window: input size, kernel, stride, pads before/after, dilation.
struct Axis {
    d: usize,
    k: usize,
    s: usize,
    lo: usize,
    hi: usize,
    dil: usize,
}

/// One spatial output size.
fn out_len(op: &str, what: &str, a: Axis, ceil: bool) -> Result<usize> {
    let Axis { d, k, s, lo, hi, dil } = a;
    if k == 0 || s == 0 || dil == 0 {
        return Err(Error::invalid(format!("{op}: kernel, stride and dilation must be ≥ 1 ({what}: kernel {k}, stride {s}, dilation {dil})")));
    }
    let reach = dil as i128 * (k as i128 - 1);
    if lo as i128 > reach || hi as i128 > reach {
        // (else a window could lie entirely in the padding, with no input to pool)
        return Err(Error::invalid(format!("{op}: pads {lo}, {hi} on {what} must be at most dilation·(kernel − 1) = {reach}")));
    }
    let span = reach + 1;
    let total = d as i128 + lo as i128 + hi as i128;
    if total < span {
        return Err(Error::shape(format!("{op}: the {what} window (extent {span}) is larger than the padded input ({total})")));
    }
    let s = s as i128;
    let mut n = if ceil { (total - span + s - 1) / s + 1 } else { (total - span) / s + 1 };
    if ceil && (n - 1) * s >= d as i128 + lo as i128 {
        n -= 1;
    }
    Ok(n as usize)
}

/// The windows of a pooling: the output shape, per output its taps inside the input (CSR:
/// `offsets`, flat input indices `cols`), and the window's size clipped to the padded input
/// (average pooling's divisor with count_include_pad).
struct Windows {
    out: Vec<usize>,
    offsets: Vec<usize>,
    cols: Vec<usize>,
    padded: Vec<usize>,
}

fn windows(op: &'static str, xs: &[usize], p: &Pool2d) -> Result<Windows> {
    if xs.len() != 4 {
        return Err(Error::shape(format!("{op}: expected x [N, C, H, W], got {}", fmt_shape(xs))));
    }
    let (n, c, h, w) = (xs[0], xs[1], xs[2], xs[3]);
    let [top, left, bottom, right] = p.pads;
    let oh = out_len(op, "height", Axis { d: h, k: p.kernel.0, s: p.stride.0, lo: top, hi: bottom, dil: p.dilation.0 }, p.ceil_mode)?;
    let ow = out_len(op, "width", Axis { d: w, k: p.kernel.1, s: p.stride.1, lo: left, hi: right, dil: p.dilation.1 }, p.ceil_mode)?;
    let out = vec![n, c, oh, ow];
    let rows = numel(&out)?;
    let taps = crate::mem::product(op, &[rows, p.kernel.0, p.kernel.1])?;
    let mut offsets = crate::mem::try_vec(rows + 1, op)?;
    let mut cols = crate::mem::try_vec(taps, op)?;
    // The padded window size PyTorch divides by with count_include_pad: the window clipped to
    // the padded input (it can overhang it in ceil mode).
    let mut padded = crate::mem::try_vec(rows, op)?;
    offsets.push(0);
    for nc in 0..n * c {
        for i in 0..oh {
            for j in 0..ow {
                let (h0, w0) = (i as i64 * p.stride.0 as i64 - top as i64, j as i64 * p.stride.1 as i64 - left as i64);
                // (spans fit i64: out_len checked each against the padded input)
                let span = |k: usize, dil: usize| dil as i64 * (k as i64 - 1) + 1;
                let (h_end, w_end) = ((h0 + span(p.kernel.0, p.dilation.0)).min(h as i64 + bottom as i64), (w0 + span(p.kernel.1, p.dilation.1)).min(w as i64 + right as i64));
                padded.push(((h_end - h0) * (w_end - w0)) as usize);
                for a in 0..p.kernel.0 {
                    for b in 0..p.kernel.1 {
                        let (y, x) = (h0 + a as i64 * p.dilation.0 as i64, w0 + b as i64 * p.dilation.1 as i64);
                        if y >= 0 && (y as usize) < h && x >= 0 && (x as usize) < w {
                            cols.push((nc * h + y as usize) * w + x as usize);
                        }
                    }
                }
                offsets.push(cols.len());
            }
        }
    }
    Ok(Windows { out, offsets, cols, padded })
}

impl Program {
    /// Max pooling (ONNX MaxPool / `F.max_pool2d`): per window, the largest input tap (padding
    /// never wins; the first maximal tap in row-major window order on ties).
    pub fn max_pool2d(&mut self, x: usize, p: Pool2d) -> Result<usize> {
        let xs = self.shape(x)?.to_vec();
        let Windows { out, offsets, cols, .. } = windows("max_pool2d", &xs, &p)?;
        let m = SparseMap { label: "max_pool2d", in_len: numel(&xs)?, offsets, cols, weights: None };
        self.max_map(x, m, &out)
    }

    /// Average pooling (ONNX AveragePool / `F.avg_pool2d`, dilation 1): the window's sum over
    /// its divisor, which is the window clipped to the padded input with `count_include_pad`,
    /// else the number of taps inside the input.
    pub fn avg_pool2d(&mut self, x: usize, p: Pool2d, count_include_pad: bool) -> Result<usize> {
        if p.dilation != (1, 1) {
            return Err(Error::invalid(format!("avg_pool2d: dilation {:?} is not supported (only 1)", p.dilation)));
        }
        let xs = self.shape(x)?.to_vec();
        let Windows { out, offsets, cols, padded } = windows("avg_pool2d", &xs, &p)?;
        let mut weights = crate::mem::try_vec(cols.len(), "avg_pool2d")?;
        for r in 0..offsets.len() - 1 {
            let taps = offsets[r + 1] - offsets[r];
            let div = if count_include_pad { padded[r] } else { taps };
            weights.extend(std::iter::repeat_n(1.0 / div as f64, taps));
        }
        let m = SparseMap { label: "avg_pool2d", in_len: numel(&xs)?, offsets, cols, weights: Some(weights) };
        self.map(x, m, &out)
    }

    /// Global average pooling: [N, C, H, W] → [N, C, 1, 1], the mean over H and W.
    pub fn global_avg_pool(&mut self, x: usize) -> Result<usize> {
        let xs = self.shape(x)?;
        if xs.len() != 4 {
            return Err(Error::shape(format!("global_avg_pool: expected x [N, C, H, W], got {}", fmt_shape(xs))));
        }
        self.mean_axes(x, Some(&[2, 3]), true)
    }
}
