//! Elementwise binary kernels with NumPy broadcasting.
//!
//! The output is walked as rows of its last dimension; along a row each operand's stride is 1
//! (it varies) or 0 (it is broadcast), which gives four SIMD loops: vector∘vector,
//! vector∘scalar, scalar∘vector, scalar∘scalar. Outer dims are walked with an odometer.

use super::lanes::{HasLanes, Lanes};
use super::Isa;
use crate::real::Real;
use crate::shape::{broadcast_strides, numel};

pub trait BinaryKernel {
    fn f<T: Real>(a: T, b: T) -> T;
    fn fv<V: Lanes>(a: V, b: V) -> V;
}

macro_rules! binary_ops {
    ($( $(#[$doc:meta])* $name:ident => |$a:ident, $b:ident| $f:expr, vector |$va:ident, $vb:ident| $fv:expr ;)*) => {
        /// The binary ops hesse has kernels for.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Binary { $($name),* }
        $(
            $(#[$doc])*
            pub struct $name;
            impl BinaryKernel for $name {
                #[inline(always)]
                fn f<T: Real>($a: T, $b: T) -> T { $f }
                #[inline(always)]
                fn fv<V: Lanes>($va: V, $vb: V) -> V { $fv }
            }
        )*
        /// `out = a ∘ b` with broadcasting; `out_shape` is the broadcast of the two shapes.
        #[allow(clippy::too_many_arguments)]
        pub fn binary<T: Real + HasLanes>(isa: Isa, op: Binary, a: &[T], a_shape: &[usize], b: &[T], b_shape: &[usize], out: &mut [T], out_shape: &[usize]) {
            match op { $(Binary::$name => run::<T, $name>(isa, a, a_shape, b, b_shape, out, out_shape)),* }
        }
        impl Binary {
            pub fn name(self) -> &'static str {
                match self { $(Binary::$name => stringify!($name)),* }
            }
        }
    };
}

binary_ops! {
    /// a + b
    Add => |a, b| a + b, vector |a, b| a.add(b);
    /// a − b
    Sub => |a, b| a - b, vector |a, b| a.sub(b);
    /// a · b
    Mul => |a, b| a * b, vector |a, b| a.mul(b);
    /// a / b
    Div => |a, b| a / b, vector |a, b| a.div(b);
    /// max(a, b), NaN-propagating
    Maximum => |a, b| a.max(b), vector |a, b| a.max(b);
    /// min(a, b), NaN-propagating
    Minimum => |a, b| a.min(b), vector |a, b| a.min(b);
}

fn run<T: Real + HasLanes, K: BinaryKernel>(
    isa: Isa,
    a: &[T],
    a_shape: &[usize],
    b: &[T],
    b_shape: &[usize],
    out: &mut [T],
    out_shape: &[usize],
) {
    let n = numel(out_shape).expect("binary: output shape was validated");
    assert_eq!(out.len(), n, "binary: output length");
    if n == 0 {
        return;
    }
    // Treat a scalar output as one row of one element.
    let shape: Vec<usize> = if out_shape.is_empty() { vec![1] } else { out_shape.to_vec() };
    let sa = broadcast_strides(if a_shape.is_empty() { &[1] } else { a_shape }, &shape);
    let sb = broadcast_strides(if b_shape.is_empty() { &[1] } else { b_shape }, &shape);
    let (shape, sa, sb) = coalesce(&shape, &sa, &sb);
    let d = shape.len() - 1;
    let row = shape[d];
    let (ia, ib) = (sa[d], sb[d]);
    let mut idx = vec![0usize; d];
    let (mut oa, mut ob) = (0usize, 0usize);
    for r in 0..n / row {
        let o = &mut out[r * row..(r + 1) * row];
        match isa {
            Isa::Scalar => {
                for (j, v) in o.iter_mut().enumerate() {
                    *v = K::f(a[oa + j * ia], b[ob + j * ib]);
                }
            }
            Isa::Simd => simd_row::<T, K>(&a[oa..], ia, &b[ob..], ib, o),
        }
        // Advance the odometer over the outer dims.
        for k in (0..d).rev() {
            idx[k] += 1;
            oa += sa[k];
            ob += sb[k];
            if idx[k] < shape[k] {
                break;
            }
            oa -= sa[k] * shape[k];
            ob -= sb[k] * shape[k];
            idx[k] = 0;
        }
    }
}

/// Merges adjacent dims that both operands walk alike (contiguously, or both broadcast), so
/// that rows are as long as possible: [K, 32, 1] + [K, 32, 1] becomes one row of 32·K, and
/// [K, 32, 5] + [5] rows of 5 under one outer dim of 32·K. Size-1 dims are dropped first.
fn coalesce(shape: &[usize], sa: &[usize], sb: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut s, mut a, mut b): (Vec<usize>, Vec<usize>, Vec<usize>) = (vec![], vec![], vec![]);
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let (Some(&la), Some(&lb)) = (a.last(), b.last()) {
            // The previous (outer) dim continues this one if its stride is this one's times its size.
            if la == sa[i] * shape[i] && lb == sb[i] * shape[i] {
                let l = s.len() - 1;
                s[l] *= shape[i];
                a[l] = sa[i];
                b[l] = sb[i];
                continue;
            }
        }
        s.push(shape[i]);
        a.push(sa[i]);
        b.push(sb[i]);
    }
    if s.is_empty() {
        return (vec![1], vec![0], vec![0]);
    }
    (s, a, b)
}

/// One output row; `ia`/`ib` are 1 (operand varies along the row) or 0 (broadcast). Each of
/// the four stride cases gets its own monomorphized loop (no branch per element).
#[inline(always)]
fn simd_row<T: Real + HasLanes, K: BinaryKernel>(a: &[T], ia: usize, b: &[T], ib: usize, o: &mut [T]) {
    let n = o.len();
    assert!((ia == 0 || a.len() >= n) && (ib == 0 || b.len() >= n) && !a.is_empty() && !b.is_empty());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (sa, sb) = (T::V::splat(a[0]), T::V::splat(b[0]));
    // SAFETY (all four): the assert bounds every load; a varying operand has ≥ n elements.
    match (ia, ib) {
        (0, 0) => row_loop::<T, K>(o, |_| sa, |_| sb),
        (0, _) => row_loop::<T, K>(o, |_| sa, |j| unsafe { T::V::load(pb.add(j)) }),
        (_, 0) => row_loop::<T, K>(o, |j| unsafe { T::V::load(pa.add(j)) }, |_| sb),
        _ => row_loop::<T, K>(o, |j| unsafe { T::V::load(pa.add(j)) }, |j| unsafe { T::V::load(pb.add(j)) }),
    }
    let body = n / <T::V as Lanes>::WIDTH * <T::V as Lanes>::WIDTH;
    for j in body..n {
        o[j] = K::f(a[j * ia], b[j * ib]);
    }
}

#[inline(always)]
fn row_loop<T: Real + HasLanes, K: BinaryKernel>(o: &mut [T], la: impl Fn(usize) -> T::V, lb: impl Fn(usize) -> T::V) {
    let w = <T::V as Lanes>::WIDTH;
    for (c, chunk) in o.chunks_exact_mut(w).enumerate() {
        // SAFETY: `chunk` has exactly `w` elements.
        unsafe { K::fv(la(c * w), lb(c * w)).store(chunk.as_mut_ptr()) }
    }
}
