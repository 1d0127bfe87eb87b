//! Tensor-level ops: validate shapes and dtypes (returning errors that name the op and the
//! shapes), allocate the output without aborting, and dispatch to a kernel by dtype and [`Isa`].

use crate::error::{fmt_shape, Error, ErrorCode, Result};
use crate::kernels::{self, Binary, Conv2d, ConvAttrs, Isa, MatRef, Reduce, Unary};
use crate::kernels::lanes::HasLanes;
use crate::shape::{broadcast, normalize_axis, numel};
use crate::tensor::{try_zeros, Data, Dtype, Element, Tensor};

/// Runs `$body` with `$T` bound to the element type of `$dtype`.
macro_rules! with_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            Dtype::F32 => {
                type $T = f32;
                $body
            }
            Dtype::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}

fn same_dtype(op: &str, a: &Tensor, b: &Tensor) -> Result<Dtype> {
    if a.dtype() != b.dtype() {
        return Err(Error::new(
            ErrorCode::DtypeMismatch,
            format!(
                "{op}: operands have dtypes {} {} and {} {}; convert one with astype",
                a.dtype().name(),
                fmt_shape(a.shape()),
                b.dtype().name(),
                fmt_shape(b.shape())
            ),
        ));
    }
    Ok(a.dtype())
}

/// Elementwise `op(x)`.
pub fn unary(isa: Isa, op: Unary, x: &Tensor) -> Result<Tensor> {
    fn go<T: Element + HasLanes>(isa: Isa, op: Unary, x: &Tensor) -> Result<Tensor> {
        let xs = x.as_slice::<T>(op.name())?;
        let mut out = try_zeros::<T>(xs.len(), op.name())?;
        kernels::unary(isa, op, xs, &mut out);
        Tensor::new(out, x.shape())
    }
    with_dtype!(x.dtype(), T => go::<T>(isa, op, x))
}

/// Elementwise `a ∘ b` with NumPy broadcasting.
pub fn binary(isa: Isa, op: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    fn go<T: Element + HasLanes>(isa: Isa, op: Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let name = op.name();
        let shape = broadcast(name, a.shape(), b.shape())?;
        let mut out = try_zeros::<T>(numel(&shape)?, name)?;
        kernels::binary(isa, op, a.as_slice::<T>(name)?, a.shape(), b.as_slice::<T>(name)?, b.shape(), &mut out, &shape);
        Tensor::new(out, &shape)
    }
    let dt = same_dtype(op.name(), a, b)?;
    with_dtype!(dt, T => go::<T>(isa, op, a, b))
}

/// Reduces along `axis` (all axes when None); `keepdims` keeps it as a dimension of size 1.
pub fn reduce(isa: Isa, op: Reduce, x: &Tensor, axis: Option<i64>, keepdims: bool) -> Result<Tensor> {
    fn go<T: Element + HasLanes>(isa: Isa, op: Reduce, x: &Tensor, axis: Option<usize>, keepdims: bool) -> Result<Tensor> {
        let shape = x.shape();
        let (outer, len, inner, out_shape) = match axis {
            None => (1, x.len(), 1, if keepdims { vec![1; shape.len()] } else { vec![] }),
            Some(ax) => {
                let mut s = shape.to_vec();
                if keepdims {
                    s[ax] = 1;
                } else {
                    s.remove(ax);
                }
                (shape[..ax].iter().product(), shape[ax], shape[ax + 1..].iter().product(), s)
            }
        };
        if len == 0 && op != Reduce::Sum {
            return Err(Error::invalid(format!("{}: cannot reduce an empty axis of shape {}", op.name(), fmt_shape(shape))));
        }
        let mut out = try_zeros::<T>(outer * inner, op.name())?;
        kernels::reduce(isa, op, x.as_slice::<T>(op.name())?, outer, len, inner, &mut out);
        Tensor::new(out, &out_shape)
    }
    let axis = axis.map(|a| normalize_axis(op.name(), a, x.shape())).transpose()?;
    with_dtype!(x.dtype(), T => go::<T>(isa, op, x, axis, keepdims))
}

/// Mean along `axis` (all axes when None): the sum divided by the count.
pub fn mean(isa: Isa, x: &Tensor, axis: Option<i64>, keepdims: bool) -> Result<Tensor> {
    let count = match axis {
        None => x.len(),
        Some(a) => x.shape()[normalize_axis("mean", a, x.shape())?],
    };
    if count == 0 {
        return Err(Error::invalid(format!("mean: cannot average an empty axis of shape {}", fmt_shape(x.shape()))));
    }
    let s = reduce(isa, Reduce::Sum, x, axis, keepdims)?;
    let c = with_dtype!(x.dtype(), T => Tensor::new(vec![1.0 as T / count as T], &[])?);
    binary(isa, Binary::Mul, &s, &c)
}

/// Options of [`gemm`]: C ← α·op(A)·op(B) + β·C.
#[derive(Clone, Copy, Debug)]
pub struct GemmOptions {
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f64,
    pub beta: f64,
}

impl Default for GemmOptions {
    fn default() -> Self {
        GemmOptions { trans_a: false, trans_b: false, alpha: 1.0, beta: 0.0 }
    }
}

/// General matrix multiply of 2-D tensors; `c` (m×n) is required when β ≠ 0.
pub fn gemm(isa: Isa, a: &Tensor, b: &Tensor, c: Option<&Tensor>, opt: GemmOptions) -> Result<Tensor> {
    fn go<T: Element + HasLanes>(isa: Isa, a: &Tensor, b: &Tensor, c: Option<&Tensor>, opt: GemmOptions) -> Result<Tensor> {
        let (sa, sb) = (a.shape(), b.shape());
        let mut av = MatRef::row_major(a.as_slice::<T>("matmul")?, sa[0], sa[1]);
        let mut bv = MatRef::row_major(b.as_slice::<T>("matmul")?, sb[0], sb[1]);
        if opt.trans_a {
            av = av.t();
        }
        if opt.trans_b {
            bv = bv.t();
        }
        if av.cols != bv.rows {
            return Err(Error::shape(format!(
                "matmul: inner dimensions differ: op(A) is {}×{} and op(B) is {}×{} (A {}{}, B {}{})",
                av.rows,
                av.cols,
                bv.rows,
                bv.cols,
                fmt_shape(sa),
                if opt.trans_a { " transposed" } else { "" },
                fmt_shape(sb),
                if opt.trans_b { " transposed" } else { "" },
            )));
        }
        let (m, n) = (av.rows, bv.cols);
        let mut out = try_zeros::<T>(m.checked_mul(n).ok_or_else(|| Error::new(ErrorCode::OutOfMemory, "matmul: output too large"))?, "matmul")?;
        if opt.beta != 0.0 {
            let c = c.ok_or_else(|| Error::invalid("matmul: beta ≠ 0 needs a C matrix"))?;
            if c.shape() != [m, n] {
                return Err(Error::shape(format!("matmul: C is {} but op(A)·op(B) is [{m}, {n}]", fmt_shape(c.shape()))));
            }
            out.copy_from_slice(c.as_slice::<T>("matmul")?);
        }
        kernels::gemm(isa, T::from_f64(opt.alpha), av, bv, T::from_f64(opt.beta), &mut out)?;
        Tensor::new(out, &[m, n])
    }
    if a.ndim() != 2 || b.ndim() != 2 {
        return Err(Error::shape(format!(
            "matmul: expected 2-D matrices, got {} and {}",
            fmt_shape(a.shape()),
            fmt_shape(b.shape())
        )));
    }
    let dt = same_dtype("matmul", a, b)?;
    if let Some(c) = c {
        same_dtype("matmul", a, c)?;
    }
    with_dtype!(dt, T => go::<T>(isa, a, b, c, opt))
}

/// A·B of 2-D tensors.
pub fn matmul(isa: Isa, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    gemm(isa, a, b, None, GemmOptions::default())
}

/// The transpose of a 2-D tensor (a copy).
pub fn transpose(x: &Tensor) -> Result<Tensor> {
    fn go<T: Element>(x: &Tensor) -> Result<Tensor> {
        let (r, c) = (x.shape()[0], x.shape()[1]);
        let xs = x.as_slice::<T>("transpose")?;
        let mut out = try_zeros::<T>(xs.len(), "transpose")?;
        if out.is_empty() {
            return Tensor::new(out, &[c, r]); // (no loop over a huge dim of an empty matrix)
        }
        for i in 0..r {
            for j in 0..c {
                out[j * r + i] = xs[i * c + j];
            }
        }
        Tensor::new(out, &[c, r])
    }
    if x.ndim() != 2 {
        return Err(Error::shape(format!("transpose: expected a 2-D matrix, got {}", fmt_shape(x.shape()))));
    }
    with_dtype!(x.dtype(), T => go::<T>(x))
}

/// conv2d(x [N, C, H, W], w [O, C/groups, KH, KW]) → [N, O, OH, OW], as PyTorch's F.conv2d (no bias).
pub fn conv2d(isa: Isa, x: &Tensor, w: &Tensor, attrs: ConvAttrs) -> Result<Tensor> {
    let g = Conv2d::new(x.shape(), w.shape(), attrs)?;
    let (oh, ow) = g.out_hw();
    let out_shape = [g.n, g.o, oh, ow];
    fn go<T: Element + HasLanes>(isa: Isa, g: &Conv2d, x: &Tensor, w: &Tensor, out_shape: &[usize]) -> Result<Tensor> {
        let mut out = try_zeros::<T>(numel(out_shape)?, "conv2d")?;
        kernels::conv2d(isa, g, x.as_slice::<T>("conv2d")?, w.as_slice::<T>("conv2d")?, &mut out)?;
        Tensor::new(out, out_shape)
    }
    let dt = same_dtype("conv2d", x, w)?;
    with_dtype!(dt, T => go::<T>(isa, &g, x, w, &out_shape))
}

/// A copy converted to `dtype`.
pub fn astype(x: &Tensor, dtype: Dtype) -> Result<Tensor> {
    use crate::mem::try_map;
    match (x.data(), dtype) {
        (Data::F32(v), Dtype::F32) => Tensor::new(try_map(v, |&e| e, "astype")?, x.shape()),
        (Data::F32(v), Dtype::F64) => Tensor::new(try_map(v, |&e| e as f64, "astype")?, x.shape()),
        (Data::F64(v), Dtype::F32) => Tensor::new(try_map(v, |&e| e as f32, "astype")?, x.shape()),
        (Data::F64(v), Dtype::F64) => Tensor::new(try_map(v, |&e| e, "astype")?, x.shape()),
    }
}
