//! Dual tensors and their primitive algebra: the one place where tangent rules live.
//!
//! A [`Dual`] is a primal tensor plus K tangents (stored [K, numel], or `None` for a zero
//! tangent, which the rules skip). Every primitive below computes its primal with the kernels and
//! its tangents by the primitive's algebraic class:
//! - linear maps L (reshape, sum, expand, add, scale): (Lx)˙ = L ẋ;
//! - bilinear maps B (mul, matmul, conv and its adjoints): B(a, b)˙ = B(ȧ, b) + B(a, ḃ);
//! - pointwise f: f(x)˙ = f′(x)·ẋ (from the derivative towers in `act.rs`);
//! - logsumexp: lse(x)˙ = Σ softmax(x)·ẋ;
//! - sparse maps M ([`SparseMap`]: slice, pad, expand, where, gather, average pooling) are
//!   linear, (Mx)˙ = M ẋ, with the adjoint Mᵀ (scatter-add); a max over candidates is the
//!   sparse map S(x) selecting each row's argmax in the primal, (S(x)x)˙ = S(x) ẋ (S is
//!   locally constant, so no second-order term).
//!
//! With K = 0 (no tangents) these are plain tensor ops; the reverse sweep in `program.rs`
//! is written with them once, so the same code gives gradients (K = 0) and, run on duals,
//! forward-over-reverse Hessian-vector products (K ≥ 1).

use super::act::Act;
use super::linearization::{fresh, Tape};
use crate::error::{Error, Result};
use crate::kernels::{self, lanes::HasLanes, Binary, Conv2d, Isa, MatRef, Reduce};
use crate::shape::{broadcast, numel};
use crate::mem::{try_copy, try_zeros};
use crate::tensor::Element;

/// What every primitive needs to know besides its operands.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    pub isa: Isa,
    /// Number of tangents carried by non-zero duals.
    pub k: usize,
    /// The integer values of the program's index inputs for this run, by slot (checked i64,
    /// never floats of the run's dtype: float32 is exact only to 2²⁴).
    pub index_inputs: &'a [std::sync::Arc<Vec<i64>>],
    /// The primal results of an earlier run to replay, or a recording of this run's
    /// (linearization.rs); None: every primal is computed.
    pub tape: Option<&'a Tape>,
}

impl Ctx<'_> {
    /// A costly primal result: `f` fills `n` zeros (or it comes from the tape in a replay). The
    /// one hook of linearization reuse: every GEMM, convolution, tower and logsumexp primal of
    /// the rules below goes through here.
    pub fn primal<T: Scalar>(&self, what: &str, n: usize, f: impl FnOnce(&mut [T]) -> Result<()>) -> Result<Vec<T>> {
        let [p] = self.primals(what, [n], |[p]| f(p))?;
        Ok(p)
    }
    /// [`Ctx::primal`] for N results computed together (a tower's value and derivative).
    pub fn primals<T: Scalar, const N: usize>(&self, what: &str, lens: [usize; N], f: impl FnOnce(&mut [Vec<T>; N]) -> Result<()>) -> Result<[Vec<T>; N]> {
        match self.tape {
            Some(t) => t.primals(what, lens, f),
            None => fresh(what, lens, f),
        }
    }
}

/// Element types the autodiff runs in.
pub trait Scalar: Element + HasLanes {}
impl<T: Element + HasLanes> Scalar for T {}

#[derive(Clone, Debug)]
pub struct Dual<T> {
    pub shape: Vec<usize>,
    pub p: Vec<T>,
    /// K tangents, [K, numel] row-major; None means all zero.
    pub t: Option<Vec<T>>,
}

impl<T: Scalar> Dual<T> {
    pub fn constant(shape: Vec<usize>, p: Vec<T>) -> Self {
        Dual { shape, p, t: None }
    }
    pub fn numel(&self) -> usize {
        self.p.len()
    }
    /// A copy (its buffers allocated fallibly).
    pub fn try_clone(&self, what: &str) -> Result<Self> {
        Ok(Dual { shape: self.shape.clone(), p: try_copy(&self.p, what)?, t: self.t.as_deref().map(|t| try_copy(t, what)).transpose()? })
    }
    /// The k-th tangent, if non-zero.
    pub fn tan(&self, k: usize) -> Option<&[T]> {
        let n = self.numel();
        self.t.as_ref().map(|t| &t[k * n..(k + 1) * n])
    }
}

/// Builds a dual whose primal is `f(a, b)` and whose k-th tangent is `tf(k)` (None: zero).
fn assemble<T: Scalar>(
    cx: &Ctx,
    shape: Vec<usize>,
    p: Vec<T>,
    any_tangent: bool,
    mut tf: impl FnMut(usize, &mut [T]) -> Result<()>,
) -> Result<Dual<T>> {
    let n = p.len();
    let t = if any_tangent && cx.k > 0 {
        let mut t = try_zeros::<T>(n * cx.k, "tangents")?;
        for k in 0..cx.k {
            tf(k, &mut t[k * n..(k + 1) * n])?;
        }
        Some(t)
    } else {
        None
    };
    Ok(Dual { shape, p, t })
}

/// A linear map applied to the primal and to each tangent: `f(input, output)` overwrites output.
pub fn linear<T: Scalar>(cx: &Ctx, x: &Dual<T>, shape: Vec<usize>, f: impl Fn(&[T], &mut [T]) -> Result<()>) -> Result<Dual<T>> {
    let mut p = try_zeros::<T>(numel(&shape)?, "linear map")?;
    f(&x.p, &mut p)?;
    assemble(cx, shape, p, x.t.is_some(), |k, out| f(x.tan(k).expect("has tangents"), out))
}

/// A linear map that applies to K stacked inputs in one call: `f(input, output, copies)` maps
/// `copies` stacked inputs to `copies` stacked outputs (so the tangents cost one kernel call,
/// not K: for small tensors the per-call overhead was the larger part).
pub fn linear_stacked<T: Scalar>(cx: &Ctx, x: &Dual<T>, shape: Vec<usize>, f: impl Fn(&[T], &mut [T], usize) -> Result<()>) -> Result<Dual<T>> {
    let n = numel(&shape)?;
    let mut p = try_zeros::<T>(n, "linear map")?;
    f(&x.p, &mut p, 1)?;
    let t = match &x.t {
        Some(xt) if cx.k > 0 => {
            let mut t = try_zeros::<T>(n * cx.k, "tangents")?;
            f(xt, &mut t, cx.k)?;
            Some(t)
        }
        _ => None,
    };
    Ok(Dual { shape, p, t })
}

/// `shape` with K stacked copies in front, padded with 1s to `rank` (for broadcasting tangents).
fn stacked(k: usize, shape: &[usize], rank: usize) -> Vec<usize> {
    let mut s = Vec::with_capacity(rank + 1);
    s.push(k);
    s.extend(std::iter::repeat_n(1, rank - shape.len()));
    s.extend_from_slice(shape);
    s
}

/// A bilinear map: `f(a, b, out, accumulate)` writes B(a, b) into out, or adds it when accumulate.
pub fn bilinear<T: Scalar>(
    cx: &Ctx,
    a: &Dual<T>,
    b: &Dual<T>,
    shape: Vec<usize>,
    f: impl Fn(&[T], &[T], &mut [T], bool) -> Result<()>,
) -> Result<Dual<T>> {
    let p = cx.primal("bilinear map", numel(&shape)?, |p| f(&a.p, &b.p, p, false))?;
    assemble(cx, shape, p, a.t.is_some() || b.t.is_some(), |k, out| {
        let mut acc = false;
        if let Some(at) = a.tan(k) {
            f(at, &b.p, out, false)?;
            acc = true;
        }
        if let Some(bt) = b.tan(k) {
            f(&a.p, bt, out, acc)?;
        }
        Ok(())
    })
}

/// Adds `src` into `dst` elementwise.
fn add_into<T: Scalar>(dst: &mut [T], src: &[T]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
}

/// a ∘ b for the linear ops Add and Sub, with broadcasting. A missing tangent is a scalar zero.
pub fn add_sub<T: Scalar>(cx: &Ctx, op: Binary, a: &Dual<T>, b: &Dual<T>) -> Result<Dual<T>> {
    debug_assert!(matches!(op, Binary::Add | Binary::Sub));
    let shape = broadcast(op.name(), &a.shape, &b.shape)?;
    let n = numel(&shape)?;
    let mut p = try_zeros::<T>(n, op.name())?;
    kernels::binary(cx.isa, op, &a.p, &a.shape, &b.p, &b.shape, &mut p, &shape);
    if cx.k == 0 || (a.t.is_none() && b.t.is_none()) {
        return Ok(Dual { shape, p, t: None });
    }
    // All K tangents at once, as [K, …] tensors; a missing tangent is a scalar zero.
    let (r, zero) = (shape.len(), [T::ZERO]);
    let side = |d: &Dual<T>| if d.t.is_some() { stacked(cx.k, &d.shape, r) } else { vec![] };
    let (sa, sb) = (side(a), side(b));
    let mut t = try_zeros::<T>(n * cx.k, op.name())?;
    kernels::binary(cx.isa, op, a.t.as_deref().unwrap_or(&zero), &sa, b.t.as_deref().unwrap_or(&zero), &sb, &mut t, &stacked(cx.k, &shape, r));
    Ok(Dual { shape, p, t: Some(t) })
}

pub fn add<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>) -> Result<Dual<T>> {
    add_sub(cx, Binary::Add, a, b)
}

pub fn sub<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>) -> Result<Dual<T>> {
    add_sub(cx, Binary::Sub, a, b)
}

/// Accumulates `g` into an optional running sum (gradient accumulation in the reverse sweep).
pub fn accumulate<T: Scalar>(cx: &Ctx, acc: &mut Option<Dual<T>>, g: Dual<T>) -> Result<()> {
    *acc = Some(match acc.take() {
        None => g,
        Some(mut a) if a.shape == g.shape => {
            add_into(&mut a.p, &g.p);
            a.t = match (a.t.take(), g.t) {
                (Some(mut x), Some(y)) => {
                    add_into(&mut x, &y);
                    Some(x)
                }
                (x, y) => x.or(y),
            };
            a
        }
        Some(a) => add(cx, &a, &g)?,
    });
    Ok(())
}

/// c·x
pub fn scale<T: Scalar>(cx: &Ctx, x: &Dual<T>, c: f64) -> Result<Dual<T>> {
    let c = T::from_f64(c);
    linear_stacked(cx, x, x.shape.clone(), |i, o, _| {
        o.iter_mut().zip(i).for_each(|(o, &v)| *o = c * v);
        Ok(())
    })
}

/// Elementwise a·b with broadcasting (bilinear: (ab)˙ = ȧb + aḃ, each term one call over all K).
pub fn mul<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>) -> Result<Dual<T>> {
    let shape = broadcast("mul", &a.shape, &b.shape)?;
    let n = numel(&shape)?;
    let mut p = try_zeros::<T>(n, "mul")?;
    kernels::binary(cx.isa, Binary::Mul, &a.p, &a.shape, &b.p, &b.shape, &mut p, &shape);
    if cx.k == 0 || (a.t.is_none() && b.t.is_none()) {
        return Ok(Dual { shape, p, t: None });
    }
    let (r, k) = (shape.len(), cx.k);
    let out = stacked(k, &shape, r);
    let mut t = try_zeros::<T>(n * k, "mul")?;
    if let Some(at) = &a.t {
        kernels::binary(cx.isa, Binary::Mul, at, &stacked(k, &a.shape, r), &b.p, &b.shape, &mut t, &out);
    }
    if let Some(bt) = &b.t {
        if a.t.is_some() {
            let mut tmp = try_zeros::<T>(n * k, "mul")?;
            kernels::binary(cx.isa, Binary::Mul, &a.p, &a.shape, bt, &stacked(k, &b.shape, r), &mut tmp, &out);
            add_into(&mut t, &tmp);
        } else {
            kernels::binary(cx.isa, Binary::Mul, &a.p, &a.shape, bt, &stacked(k, &b.shape, r), &mut t, &out);
        }
    }
    Ok(Dual { shape, p, t: Some(t) })
}

/// op(A)·op(B) for 2-D A, B (bilinear). All K tangent products of each term are one GEMM:
/// Σ op(Ȧₖ)·op(B) stacks the op(Ȧₖ) as rows of a [K·m, k] matrix (its layout is then exactly
/// the tangents' [K, m, n]); op(A)·op(Ḃₖ) stacks the op(Ḃₖ)ᵀ as rows of a [K·n, k] matrix, whose
/// product [m, K·n] is permuted into place. Blocks already in the stacked layout are not copied.
pub fn matmul<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>, ta: bool, tb: bool) -> Result<Dual<T>> {
    fn view<T: Scalar>(x: &[T], rows: usize, cols: usize, t: bool) -> MatRef<'_, T> {
        let v = MatRef::row_major(x, rows, cols);
        if t {
            v.t()
        } else {
            v
        }
    }
    let (ar, ac) = (a.shape[0], a.shape[1]);
    let (br, bc) = (b.shape[0], b.shape[1]);
    let (m, depth, n) = (if ta { ac } else { ar }, if ta { ar } else { ac }, if tb { br } else { bc });
    let gemm = |x: MatRef<T>, y: MatRef<T>, out: &mut [T]| kernels::gemm(cx.isa, T::ONE, x, y, T::ZERO, out);
    let p = cx.primal("matmul", m * n, |p| gemm(view(&a.p, ar, ac, ta), view(&b.p, br, bc, tb), p))?;
    let k = cx.k;
    // (An empty product has zero tangents; its loops below would run over K·m for nothing.)
    if k == 0 || (a.t.is_none() && b.t.is_none()) || m * n == 0 {
        return Ok(Dual { shape: vec![m, n], p, t: None });
    }
    let mut t = try_zeros::<T>(k * m * n, "matmul tangents")?;
    if let Some(at) = &a.t {
        // One direction needs no stacking: op(Ȧ) is read through a (transposed) view.
        let stacked = if ta && k > 1 { block_transpose(at, k, ar, ac)? } else { std::borrow::Cow::Borrowed(at.as_slice()) };
        let rows = if ta && k == 1 { view(&stacked, ar, ac, true) } else { MatRef::row_major(&stacked, k * m, depth) };
        gemm(rows, view(&b.p, br, bc, tb), &mut t)?;
    }
    if let (Some(bt), 1) = (&b.t, k) {
        // One direction: op(A)·op(Ḃ) is [m, n], already t's layout, so it accumulates in place
        // (β = 1 after the first term), with no wide product to permute.
        let beta = if a.t.is_some() { T::ONE } else { T::ZERO };
        kernels::gemm(cx.isa, T::ONE, view(&a.p, ar, ac, ta), view(bt, br, bc, tb), beta, &mut t)?;
    } else if let Some(bt) = &b.t {
        let stacked = if tb { std::borrow::Cow::Borrowed(bt.as_slice()) } else { block_transpose(bt, k, br, bc)? };
        let mut wide = try_zeros::<T>(m * k * n, "matmul tangents")?;
        gemm(view(&a.p, ar, ac, ta), MatRef::row_major(&stacked, k * n, depth).t(), &mut wide)?;
        for kk in 0..k {
            for i in 0..m {
                add_into(&mut t[(kk * m + i) * n..(kk * m + i + 1) * n], &wide[i * k * n + kk * n..i * k * n + (kk + 1) * n]);
            }
        }
    }
    Ok(Dual { shape: vec![m, n], p, t: Some(t) })
}

/// K row-major [rows, cols] blocks → K [cols, rows] blocks.
fn block_transpose<T: Scalar>(x: &[T], k: usize, rows: usize, cols: usize) -> Result<std::borrow::Cow<'static, [T]>> {
    let mut out = try_zeros::<T>(x.len(), "matmul tangents")?;
    for kk in 0..k {
        let (src, dst) = (&x[kk * rows * cols..(kk + 1) * rows * cols], &mut out[kk * rows * cols..(kk + 1) * rows * cols]);
        for r in 0..rows {
            for c in 0..cols {
                dst[c * rows + r] = src[r * cols + c];
            }
        }
    }
    Ok(std::borrow::Cow::Owned(out))
}

fn with_acc<T: Scalar>(out: &mut [T], acc: bool, f: impl FnOnce(&mut [T]) -> Result<()>) -> Result<()> {
    if acc {
        let mut tmp = try_zeros::<T>(out.len(), "accumulate")?;
        f(&mut tmp)?;
        add_into(out, &tmp);
        Ok(())
    } else {
        f(out)
    }
}

/// A bilinear map whose kernel computes the primal and/or all K tangents B(ȧₖ, b) + B(a, ḃₖ)
/// in one call, `f(a, b, tangents, out, tangent_out)` (None skips that part): conv2d's fused
/// kernels, which share each image's prepared operand between the tangent terms. The primal is
/// its own call, through [`Ctx::primal`], so a replay takes it from the tape.
fn bilinear_fused<T: Scalar>(
    cx: &Ctx,
    a: &Dual<T>,
    b: &Dual<T>,
    shape: Vec<usize>,
    f: impl Fn(&[T], &[T], kernels::conv::Tangents<T>, Option<&mut [T]>, Option<&mut [T]>) -> Result<()>,
) -> Result<Dual<T>> {
    let n = numel(&shape)?;
    let p = cx.primal("bilinear map", n, |p| f(&a.p, &b.p, kernels::conv::Tangents::NONE, Some(p), None))?;
    let t = if cx.k > 0 && (a.t.is_some() || b.t.is_some()) {
        let mut t = try_zeros::<T>(n * cx.k, "tangents")?;
        f(&a.p, &b.p, kernels::conv::Tangents { k: cx.k, a: a.t.as_deref(), b: b.t.as_deref() }, None, Some(&mut t))?;
        Some(t)
    } else {
        None
    };
    Ok(Dual { shape, p, t })
}

/// conv2d(x, w) (bilinear).
pub fn conv2d<T: Scalar>(cx: &Ctx, g: Conv2d, x: &Dual<T>, w: &Dual<T>) -> Result<Dual<T>> {
    let (oh, ow) = g.out_hw();
    let shape = vec![g.n, g.o, oh, ow];
    if kernels::conv::fused(cx.isa, &g) {
        return bilinear_fused(cx, x, w, shape, |xs, ws, tan, y, ty| kernels::conv::conv2d_fused(&g, xs, ws, tan, y, ty));
    }
    bilinear(cx, x, w, shape, |xs, ws, out, acc| with_acc(out, acc, |o| kernels::conv2d(cx.isa, &g, xs, ws, o)))
}

/// The input-adjoint of conv2d, bilinear in (gy, w).
pub fn conv2d_grad_input<T: Scalar>(cx: &Ctx, g: Conv2d, gy: &Dual<T>, w: &Dual<T>) -> Result<Dual<T>> {
    let shape = vec![g.n, g.c, g.h, g.w];
    if kernels::conv::fused(cx.isa, &g) {
        return bilinear_fused(cx, gy, w, shape, |gys, ws, tan, gx, tgx| kernels::conv::grad_input_fused(&g, gys, ws, tan, gx, tgx));
    }
    bilinear(cx, gy, w, shape, |gys, ws, out, acc| with_acc(out, acc, |o| kernels::conv2d_grad_input(cx.isa, &g, gys, ws, o)))
}

/// The weight-adjoint of conv2d, bilinear in (x, gy).
pub fn conv2d_grad_weight<T: Scalar>(cx: &Ctx, g: Conv2d, x: &Dual<T>, gy: &Dual<T>) -> Result<Dual<T>> {
    let shape = g.weight_shape().to_vec();
    if kernels::conv::fused(cx.isa, &g) {
        return bilinear_fused(cx, x, gy, shape, |xs, gys, tan, gw, tgw| kernels::conv::grad_weight_fused(&g, xs, gys, tan, gw, tgw));
    }
    bilinear(cx, x, gy, shape, |xs, gys, out, acc| with_acc(out, acc, |o| kernels::conv2d_grad_weight(cx.isa, &g, xs, gys, o)))
}

/// Same elements, new shape.
pub fn reshape<T: Scalar>(cx: &Ctx, x: &Dual<T>, shape: Vec<usize>) -> Result<Dual<T>> {
    linear_stacked(cx, x, shape, |i, o, _| {
        o.copy_from_slice(i);
        Ok(())
    })
}

/// Transpose of a 2-D dual.
pub fn transpose<T: Scalar>(cx: &Ctx, x: &Dual<T>) -> Result<Dual<T>> {
    let (r, c) = (x.shape[0], x.shape[1]);
    linear(cx, x, vec![c, r], move |i, o| {
        for a in 0..r {
            for b in 0..c {
                o[b * r + a] = i[a * c + b];
            }
        }
        Ok(())
    })
}

/// Σ along `axis` (all when None), keeping it as size 1 when `keepdims`.
pub fn sum<T: Scalar>(cx: &Ctx, x: &Dual<T>, axis: Option<usize>, keepdims: bool) -> Result<Dual<T>> {
    let s = &x.shape;
    let (outer, len, inner, shape) = match axis {
        None => (1, x.numel(), 1, if keepdims { vec![1; s.len()] } else { vec![] }),
        Some(ax) => {
            let mut o = s.clone();
            if keepdims {
                o[ax] = 1;
            } else {
                o.remove(ax);
            }
            (s[..ax].iter().product(), s[ax], s[ax + 1..].iter().product(), o)
        }
    };
    // K stacked copies are K times as many outer blocks.
    linear_stacked(cx, x, shape, move |i, o, copies| {
        kernels::reduce(cx.isa, Reduce::Sum, i, outer * copies, len, inner, o);
        Ok(())
    })
}

/// Broadcasts x to `shape` (the adjoint of [`sum_to`]).
pub fn expand<T: Scalar>(cx: &Ctx, x: &Dual<T>, shape: &[usize]) -> Result<Dual<T>> {
    let xs = x.shape.clone();
    let out = shape.to_vec();
    if broadcast("expand", &xs, &out)? != out {
        return Err(Error::shape(format!("expand: {xs:?} does not broadcast to {out:?}")));
    }
    let r = out.len();
    linear_stacked(cx, x, out.clone(), move |i, o, copies| {
        kernels::binary(cx.isa, Binary::Add, i, &stacked(copies, &xs, r), &[T::ZERO], &[], o, &stacked(copies, &out, r));
        Ok(())
    })
}

/// Sums x down to `shape` (the reverse of broadcasting: leading dims and dims that are 1 in `shape`).
pub fn sum_to<T: Scalar>(cx: &Ctx, x: &Dual<T>, shape: &[usize]) -> Result<Dual<T>> {
    if x.shape == shape {
        return x.try_clone("gradient");
    }
    sum_to_owned(cx, x.try_clone("gradient")?, shape)
}

/// [`sum_to`] taking ownership (no copy when nothing is broadcast).
pub fn sum_to_owned<T: Scalar>(cx: &Ctx, x: Dual<T>, shape: &[usize]) -> Result<Dual<T>> {
    let mut cur = x;
    while cur.shape.len() > shape.len() {
        cur = sum(cx, &cur, Some(0), false)?;
    }
    for (ax, &d) in shape.iter().enumerate() {
        if d == 1 && cur.shape[ax] != 1 {
            cur = sum(cx, &cur, Some(ax), true)?;
        }
    }
    Ok(cur)
}

/// The `order`-th derivative of a pointwise function: value f⁽ᵒʳᵈᵉʳ⁾(x), tangent f⁽ᵒʳᵈᵉʳ⁺¹⁾(x)·ẋ
/// (one tower evaluation per element gives both). `y = f(x)`, when given and the function allows
/// it, replaces the evaluation at x (the reverse sweep passes the forward output).
pub fn pointwise<T: Scalar>(cx: &Ctx, act: Act, order: u8, x: &Dual<T>) -> Result<Dual<T>> {
    pointwise_with_output(cx, act, order, x, None)
}

pub fn pointwise_with_output<T: Scalar>(cx: &Ctx, act: Act, order: u8, x: &Dual<T>, y: Option<&[T]>) -> Result<Dual<T>> {
    let need_d = x.t.is_some() && cx.k > 0;
    let [p, d] = cx.primals(act.name(), [x.numel(), if need_d { x.numel() } else { 0 }], |[p, d]| {
        let dd = if need_d { Some(&mut d[..]) } else { None };
        match y {
            // f′ and f″ from the forward value: no transcendental.
            Some(y) if order == 1 && act.has_derivs_from_output() => kernels::towers::from_output(act, y, p, dd),
            _ => T::towers(cx.isa, act, order, &x.p, p, dd),
        }
        Ok(())
    })?;
    assemble(cx, x.shape.clone(), p, need_d, |k, out| {
        let xt = x.tan(k).expect("has tangents");
        out.iter_mut().zip(xt).zip(&d).for_each(|((o, &t), &dv)| *o = dv * t);
        Ok(())
    })
}

/// log Σ exp along the last axis, keeping it (size 1). Tangent: Σ softmax(x)·ẋ.
pub fn logsumexp<T: Scalar>(cx: &Ctx, x: &Dual<T>) -> Result<Dual<T>> {
    let len = *x.shape.last().ok_or_else(|| Error::shape("logsumexp: needs at least one dimension"))?;
    let rows = x.numel() / len.max(1);
    let mut shape = x.shape.clone();
    *shape.last_mut().unwrap() = 1;
    let [p, soft] = cx.primals("logsumexp", [rows, if x.t.is_some() { x.numel() } else { 0 }], |[p, soft]| {
        kernels::reduce(cx.isa, Reduce::LogSumExp, &x.p, rows, len, 1, p);
        soft.iter_mut().zip(&x.p).enumerate().for_each(|(i, (s, &v))| *s = (v - p[i / len]).exp());
        Ok(())
    })?;
    assemble(cx, shape, p, x.t.is_some(), |k, out| {
        let xt = x.tan(k).expect("has tangents");
        for (r, o) in out.iter_mut().enumerate() {
            *o = (0..len).fold(T::ZERO, |s, j| s + soft[r * len + j] * xt[r * len + j]);
        }
        Ok(())
    })
}

/// The matching blocks of a `part` ([outer, len, inner] around an axis) and of the slice at
/// offset `at` of that axis of a `whole` ([outer, total, inner]): (part range, whole range).
fn axis_blocks(outer: usize, len: usize, inner: usize, total: usize, at: usize) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> {
    let n = if len * inner == 0 { 0 } else { outer }; // (empty parts: no loop over outer)
    (0..n).map(move |o| {
        let (p, w) = (o * len * inner, (o * total + at) * inner);
        (p..p + len * inner, w..w + len * inner)
    })
}

/// [outer, inner] around `axis` of `shape`.
fn around(shape: &[usize], axis: usize) -> (usize, usize) {
    (shape[..axis].iter().product(), shape[axis + 1..].iter().product())
}

/// Concatenation along `axis` (linear in each input; a missing tangent is zero).
pub fn concat<T: Scalar>(cx: &Ctx, xs: &[&Dual<T>], axis: usize, shape: Vec<usize>) -> Result<Dual<T>> {
    let (outer, inner) = around(&shape, axis);
    let total = shape[axis];
    let n = numel(&shape)?;
    // The primal (k = None) or tangent k of every input, each into its slice of `out`.
    let fill = |out: &mut [T], k: Option<usize>| {
        let mut at = 0;
        for x in xs {
            let len = x.shape[axis];
            if let Some(v) = k.map_or(Some(x.p.as_slice()), |k| x.tan(k)) {
                for (pr, wr) in axis_blocks(outer, len, inner, total, at) {
                    out[wr].copy_from_slice(&v[pr]);
                }
            }
            at += len;
        }
    };
    let mut p = try_zeros::<T>(n, "concat")?;
    fill(&mut p, None);
    let any = xs.iter().any(|x| x.t.is_some());
    assemble(cx, shape.clone(), p, any, |k, out| {
        fill(out, Some(k));
        Ok(())
    })
}

/// The slice [start, start + len) of `x` along `axis` (the adjoint of concatenation).
pub fn slice<T: Scalar>(cx: &Ctx, x: &Dual<T>, axis: usize, start: usize, len: usize) -> Result<Dual<T>> {
    let (outer, inner) = around(&x.shape, axis);
    let total = x.shape[axis];
    let mut shape = x.shape.clone();
    shape[axis] = len;
    linear_stacked(cx, x, shape, move |i, o, copies| {
        // Copies stack as extra outer blocks.
        for (pr, wr) in axis_blocks(outer * copies, len, inner, total, start) {
            o[pr].copy_from_slice(&i[wr]);
        }
        Ok(())
    })
}

/// x[i, labels[i]] for x [N, C] (a gather along the last axis; linear in x). Tangents are
/// gathered alike, so an entry that is not picked (even −∞) never meets a zero weight.
pub fn pick<T: Scalar>(cx: &Ctx, x: &Dual<T>, labels: &[usize]) -> Result<Dual<T>> {
    let (n, c) = (labels.len(), x.shape[1]);
    linear_stacked(cx, x, vec![n], |i, o, copies| {
        for k in 0..copies {
            for (r, &l) in labels.iter().enumerate() {
                o[k * n + r] = i[(k * n + r) * c + l];
            }
        }
        Ok(())
    })
}

/// The adjoint of [`pick`]: g [N] scattered to [i, labels[i]] of an [N, C] zero.
pub fn unpick<T: Scalar>(cx: &Ctx, g: &Dual<T>, labels: &[usize], c: usize) -> Result<Dual<T>> {
    let n = labels.len();
    linear_stacked(cx, g, vec![n, c], |i, o, copies| {
        o.fill(T::ZERO);
        for k in 0..copies {
            for (r, &l) in labels.iter().enumerate() {
                o[(k * n + r) * c + l] = i[k * n + r];
            }
        }
        Ok(())
    })
}

/// Axis permutation: out[i_{perm[0]}, …] = x[i_0, …], i.e. output axis a is input axis perm[a].
pub fn permute<T: Scalar>(cx: &Ctx, x: &Dual<T>, perm: &[usize]) -> Result<Dual<T>> {
    let shape: Vec<usize> = perm.iter().map(|&a| x.shape[a]).collect();
    let in_strides = crate::shape::strides(&x.shape);
    let stride_of_out: Vec<usize> = perm.iter().map(|&a| in_strides[a]).collect();
    let (n, out_shape) = (x.numel(), shape.clone());
    linear_stacked(cx, x, shape, move |i, o, copies| {
        for c in 0..copies {
            let (src, dst) = (&i[c * n..(c + 1) * n], &mut o[c * n..(c + 1) * n]);
            let mut idx = vec![0usize; out_shape.len()];
            let mut off = 0usize;
            for d in dst.iter_mut() {
                *d = src[off];
                for k in (0..idx.len()).rev() {
                    idx[k] += 1;
                    off += stride_of_out[k];
                    if idx[k] < out_shape[k] {
                        break;
                    }
                    off -= stride_of_out[k] * out_shape[k];
                    idx[k] = 0;
                }
            }
        }
        Ok(())
    })
}

/// A sparse linear map y = M·x in CSR form: y[i] = Σ_{e ∈ offsets[i]..offsets[i+1]} w[e]·x[cols[e]]
/// (w = 1 without weights; a row with no entries is 0). Slice, pad, expand, where, gather with
/// constant indices and average pooling are all such maps; their adjoint Mᵀ is the scatter-add
/// gx[cols[e]] += w[e]·g[i]. `label` names the op in errors.
/// (Deserialize: serialize.rs, which reads the label back by name.)
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SparseMap {
    pub label: &'static str,
    /// numel of the input.
    pub in_len: usize,
    /// numel(out) + 1 row starts.
    pub offsets: Vec<usize>,
    pub cols: Vec<usize>,
    pub weights: Option<Vec<f64>>,
}

impl SparseMap {
    /// Checks the CSR structure (monotone offsets ending at cols.len(), columns below in_len,
    /// one weight per entry), so that applying the map cannot index out of bounds.
    pub fn check(&self) -> Result<()> {
        let ok = self.offsets.first() == Some(&0)
            && self.offsets.last() == Some(&self.cols.len())
            && self.offsets.windows(2).all(|w| w[0] <= w[1])
            && self.cols.iter().all(|&c| c < self.in_len)
            && self.weights.as_ref().is_none_or(|w| w.len() == self.cols.len());
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(format!("{}: malformed sparse map ({} rows, {} entries, {} inputs)", self.label, self.rows(), self.cols.len(), self.in_len)))
        }
    }
    /// Rows (numel of the output).
    pub fn rows(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    /// A map with one entry per row (a gather): y[i] = x[cols[i]], or 0 where cols[i] is None.
    pub fn gather(label: &'static str, in_len: usize, cols: impl ExactSizeIterator<Item = Option<usize>>) -> Result<SparseMap> {
        let n = cols.len();
        let mut offsets = crate::mem::try_vec(crate::mem::add(label, n, 1)?, label)?;
        let mut cs = crate::mem::try_vec(n, label)?;
        offsets.push(0);
        for c in cols {
            if let Some(c) = c {
                cs.push(c);
            }
            offsets.push(cs.len());
        }
        Ok(SparseMap { label, in_len, offsets, cols: cs, weights: None })
    }
    /// The map's value on one stacked copy: out (rows) from x (in_len).
    fn apply_one<T: Scalar>(&self, x: &[T], out: &mut [T]) {
        for (i, o) in out.iter_mut().enumerate() {
            let r = self.offsets[i]..self.offsets[i + 1];
            *o = match &self.weights {
                None => self.cols[r].iter().fold(T::ZERO, |s, &c| s + x[c]),
                Some(w) => self.cols[r.clone()].iter().zip(&w[r]).fold(T::ZERO, |s, (&c, &wv)| s + T::from_f64(wv) * x[c]),
            };
        }
    }
    /// The adjoint on one stacked copy: gx (in_len, overwritten) from g (rows).
    fn apply_t_one<T: Scalar>(&self, g: &[T], gx: &mut [T]) {
        gx.fill(T::ZERO);
        for (i, &gi) in g.iter().enumerate() {
            for e in self.offsets[i]..self.offsets[i + 1] {
                let w = self.weights.as_ref().map_or(T::ONE, |w| T::from_f64(w[e]));
                gx[self.cols[e]] += w * gi;
            }
        }
    }
}

/// y = M·x for a sparse map M (linear), shaped `shape` (numel = M's rows).
pub fn sparse_apply<T: Scalar>(cx: &Ctx, x: &Dual<T>, m: &SparseMap, shape: Vec<usize>) -> Result<Dual<T>> {
    let (rows, cols) = (m.rows(), m.in_len);
    if x.numel() != cols || numel(&shape)? != rows {
        return Err(Error::shape(format!("{}: the map takes {cols} values to {rows}, got an operand of shape {:?} and output shape {:?}", m.label, x.shape, shape)));
    }
    linear_stacked(cx, x, shape, |i, o, copies| {
        for c in 0..copies {
            m.apply_one(&i[c * cols..(c + 1) * cols], &mut o[c * rows..(c + 1) * rows]);
        }
        Ok(())
    })
}

/// gx = Mᵀ·g (the scatter-add adjoint of [`sparse_apply`]), shaped `in_shape`.
pub fn sparse_apply_t<T: Scalar>(cx: &Ctx, g: &Dual<T>, m: &SparseMap, in_shape: Vec<usize>) -> Result<Dual<T>> {
    let (rows, cols) = (m.rows(), m.in_len);
    if g.numel() != rows || numel(&in_shape)? != cols {
        return Err(Error::shape(format!("{}ᵀ: the adjoint takes {rows} values to {cols}, got a gradient of shape {:?} and input shape {:?}", m.label, g.shape, in_shape)));
    }
    linear_stacked(cx, g, in_shape, |i, o, copies| {
        for c in 0..copies {
            m.apply_t_one(&i[c * rows..(c + 1) * rows], &mut o[c * cols..(c + 1) * cols]);
        }
        Ok(())
    })
}

/// The map selecting, in each row of `m`, the entry where the primal `x` is largest (the first
/// such entry on ties; NaN wins, as PyTorch's max propagates it): the local linear map of a max
/// over each row's candidates. An empty row is an error.
pub fn argmax_map<T: Scalar>(x: &[T], m: &SparseMap) -> Result<SparseMap> {
    let rows = m.rows();
    let mut cols = crate::mem::try_vec(rows, m.label)?;
    for i in 0..rows {
        let r = &m.cols[m.offsets[i]..m.offsets[i + 1]];
        let Some(&first) = r.first() else {
            return Err(Error::invalid(format!("{}: output element {i} has no input element to take the maximum of", m.label)));
        };
        let mut best = first;
        for &c in &r[1..] {
            let (v, b) = (x[c].to_f64(), x[best].to_f64());
            if b.is_nan() {
                break;
            }
            if v > b || v.is_nan() {
                best = c;
            }
        }
        cols.push(Some(best));
    }
    SparseMap::gather(m.label, m.in_len, cols.into_iter())
}

/// Batched op(A)·op(B) (NumPy matmul on rank ≥ 2, batch dims broadcast; bilinear, the
/// tangent rule of [`matmul`]): one GEMM per output batch index on views of the operands'
/// blocks (broadcast operands reuse theirs), and per tangent k the two terms
/// op(Ȧₖ)·op(B) + op(A)·op(Ḃₖ) accumulated into its block.
pub fn batched_matmul<T: Scalar>(cx: &Ctx, a: &Dual<T>, b: &Dual<T>, ta: bool, tb: bool, shape: Vec<usize>) -> Result<Dual<T>> {
    if a.shape.len() == 2 && b.shape.len() == 2 {
        return matmul(cx, a, b, ta, tb);
    }
    fn view<T: Scalar>(x: &[T], rows: usize, cols: usize, t: bool) -> MatRef<'_, T> {
        let v = MatRef::row_major(x, rows, cols);
        if t {
            v.t()
        } else {
            v
        }
    }
    let r = shape.len();
    let mn = shape[r - 2] * shape[r - 1];
    let batch = &shape[..r - 2];
    let nb = numel(batch)?;
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (ar, ac, br, bc) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 2], b.shape[rb - 1]);
    let (asz, bsz) = (ar * ac, br * bc);
    // Block offsets of each output batch index in a and b (0 along broadcast batch dims).
    let sa = crate::shape::broadcast_strides(&a.shape[..ra - 2], batch);
    let sb = crate::shape::broadcast_strides(&b.shape[..rb - 2], batch);
    let out_n = numel(&shape)?;
    // Block offsets (in a, in b) of each output batch index.
    let mut offs = crate::mem::try_vec(nb, "matmul")?;
    let mut idx = vec![0usize; batch.len()];
    for _ in 0..nb {
        let oa = idx.iter().zip(&sa).map(|(i, s)| i * s).sum::<usize>() * asz;
        let ob = idx.iter().zip(&sb).map(|(i, s)| i * s).sum::<usize>() * bsz;
        offs.push((oa, ob));
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < batch[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    let blocks = |oa: usize, ob: usize| (view(&a.p[oa..oa + asz], ar, ac, ta), view(&b.p[ob..ob + bsz], br, bc, tb));
    let p = cx.primal("matmul", out_n, |p| {
        for (bi, &(oa, ob)) in offs.iter().enumerate() {
            let (pa, pb) = blocks(oa, ob);
            kernels::gemm(cx.isa, T::ONE, pa, pb, T::ZERO, &mut p[bi * mn..(bi + 1) * mn])?;
        }
        Ok(())
    })?;
    let any_t = cx.k > 0 && (a.t.is_some() || b.t.is_some());
    let mut t = if any_t { Some(try_zeros::<T>(crate::mem::product("matmul tangents", &[cx.k, out_n])?, "matmul tangents")?) } else { None };
    let (na, nbn) = (a.numel(), b.numel());
    if let Some(t) = &mut t {
        for (bi, &(oa, ob)) in offs.iter().enumerate() {
            let (pa, pb) = blocks(oa, ob);
            for k in 0..cx.k {
                let out = &mut t[k * out_n + bi * mn..k * out_n + (bi + 1) * mn];
                if let Some(at) = &a.t {
                    let d = view(&at[k * na + oa..k * na + oa + asz], ar, ac, ta);
                    kernels::gemm(cx.isa, T::ONE, d, pb, T::ONE, out)?;
                }
                if let Some(bt) = &b.t {
                    let d = view(&bt[k * nbn + ob..k * nbn + ob + bsz], br, bc, tb);
                    kernels::gemm(cx.isa, T::ONE, pa, d, T::ONE, out)?;
                }
            }
        }
    }
    Ok(Dual { shape, p, t })
}
