//! SIMD lanes: the vector type the SIMD kernels are written against.
//!
//! On wasm32 with `+simd128` the lanes are `v128` registers driven by `core::arch::wasm32`
//! intrinsics (`simd128.rs`). Natively they are fixed-size arrays (`portable.rs`) with the same
//! lane counts, so `cargo test` exercises every SIMD kernel's blocking, packing and tail handling
//! on the host; the wasm build is additionally checked against the scalar kernels from JS.

use crate::real::Real;

/// A short vector of `WIDTH` elements of `Elem` (4 × f32 or 2 × f64: one 128-bit register).
pub trait Lanes: Copy {
    type Elem: Real;
    const WIDTH: usize;
    fn splat(x: Self::Elem) -> Self;
    /// Loads `WIDTH` elements from `s[0..WIDTH]` (unaligned).
    ///
    /// # Safety
    /// `p` must point at `WIDTH` readable elements.
    unsafe fn load(p: *const Self::Elem) -> Self;
    /// # Safety
    /// `p` must point at `WIDTH` writable elements.
    unsafe fn store(self, p: *mut Self::Elem);
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// NaN-propagating lane-wise max/min (as NumPy's maximum/minimum).
    fn max(self, o: Self) -> Self;
    fn min(self, o: Self) -> Self;
    fn sqrt(self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    /// `self * b + c` (two roundings on simd128, which has no fused multiply-add).
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        self.mul(b).add(c)
    }
    /// Applies a scalar function to each lane (for ops without a vector formula).
    #[inline(always)]
    fn map(self, f: impl Fn(Self::Elem) -> Self::Elem) -> Self {
        let mut buf = [Self::Elem::ZERO; 4];
        // SAFETY: WIDTH <= 4 for every lane type.
        unsafe {
            self.store(buf.as_mut_ptr());
            for x in buf.iter_mut().take(Self::WIDTH) {
                *x = f(*x);
            }
            Self::load(buf.as_ptr())
        }
    }
    /// Lane-wise `if self < o { t } else { f }` (false for NaN, as the scalar comparison).
    fn lt_select(self, o: Self, t: Self, f: Self) -> Self;
    /// Lane-wise `if self <= o { t } else { f }`.
    fn le_select(self, o: Self, t: Self, f: Self) -> Self;
    /// Lane-wise `if self == o { t } else { f }` (`x.eq_select(x, v, x)` keeps NaN lanes NaN).
    fn eq_select(self, o: Self, t: Self, f: Self) -> Self;
    /// Whether some lane has self < o (lets a piecewise approximation skip pieces no lane needs).
    fn any_lt(self, o: Self) -> bool;
    /// Whether every lane has self < o (false if any lane is NaN).
    fn all_lt(self, o: Self) -> bool;
    fn sum(self) -> Self::Elem;
    fn reduce_max(self) -> Self::Elem;
    /// tanh lane by lane (libm by default; f32 lanes override with a rational approximation).
    #[inline(always)]
    fn tanh(self) -> Self {
        self.map(Real::tanh)
    }
    /// Copies the WIDTH × WIDTH block whose row i starts at `src + i·ss`, transposed, to rows
    /// starting at `dst + j·ds`: dst[j][i] = src[i][j]. GEMM packing gathers panels this way from
    /// operands stored across the panel (a row-major A, a transposed B). Scalar by default;
    /// simd128 lanes do it with shuffles in registers.
    ///
    /// # Safety
    /// Rows `src + i·ss` must hold WIDTH readable and rows `dst + j·ds` WIDTH writable
    /// elements (i, j < WIDTH), the two blocks not overlapping.
    #[inline(always)]
    unsafe fn transpose_block(src: *const Self::Elem, ss: usize, dst: *mut Self::Elem, ds: usize) {
        for i in 0..Self::WIDTH {
            for j in 0..Self::WIDTH {
                *dst.add(j * ds + i) = *src.add(i * ss + j);
            }
        }
    }
}

/// tanh for f32 lanes: the [13/6] minimax rational approximation used by Eigen and XLA
/// (`generic_fast_tanh_float`), on inputs clamped to ±7.905 (beyond which tanh rounds to ±1).
/// A few ulp; tested against f64 tanh on a dense grid. It is what makes f32 tanh layers cheap:
/// libm's tanhf costs ~17 ns an element in wasm.
#[inline(always)]
pub fn tanh_f32<V: Lanes<Elem = f32>>(x: V) -> V {
    let c = V::splat;
    let x = x.min(c(7.905_311)).max(c(-7.905_311));
    let x2 = x.mul(x);
    let p = c(-2.760_768_5e-16)
        .mul_add(x2, c(2.000_187_9e-13))
        .mul_add(x2, c(-8.604_671_5e-11))
        .mul_add(x2, c(5.122_297e-8))
        .mul_add(x2, c(1.485_722_4e-5))
        .mul_add(x2, c(6.372_619_3e-4))
        .mul_add(x2, c(4.893_524_6e-3));
    let q = c(1.198_258_4e-6).mul_add(x2, c(1.185_347_1e-4)).mul_add(x2, c(2.268_434_6e-3)).mul_add(x2, c(4.893_525e-3));
    // Below |x| = 4·10⁻⁴, tanh x rounds to x itself (x³/3 < ½ulp), and x·p would lose bits to
    // the denormals for |x| ≲ 10⁻³⁵.
    x.abs().lt_select(c(4e-4), x, x.mul(p).div(q))
}

/// The bit-level operations of f32 lanes that exp and log need (see `towers.rs`).
pub trait F32Lanes: Lanes<Elem = f32> {
    /// self·2ⁿ for integer-valued lanes n with −126 ≤ n ≤ 127 (2ⁿ assembled from its exponent
    /// bits, (n + 127) << 23).
    fn mul_pow2(self, n: Self) -> Self;
    /// (m, e) with self = m·2ᵉ, m ∈ [1, 2), e an integer, for positive normal finite lanes
    /// (other lanes get meaningless values that callers replace).
    fn split_exponent(self) -> (Self, Self);
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[path = "simd128.rs"]
mod imp;

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[path = "portable.rs"]
mod imp;

pub use imp::{F32x4, F64x2};

/// The lane type of each element type, and its reusable kernel scratch.
pub trait HasLanes: Real + super::towers::Towers {
    type V: Lanes<Elem = Self>;
    /// Runs `f` on a scratch buffer of at least `n` elements, reused across calls (GEMM packing
    /// happens thousands of times per Hessian; allocating each time showed up in profiles).
    /// Falls back to a fresh allocation when the scratch is already in use.
    fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> crate::Result<R>;
}

thread_local! {
    static SCRATCH_F32: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    static SCRATCH_F64: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

macro_rules! scratch_impl {
    ($key:ident) => {
        fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [Self]) -> R) -> crate::Result<R> {
            $key.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => {
                    if buf.len() < n {
                        let extra = n - buf.len();
                        crate::mem::try_reserve(&mut buf, extra, "kernel scratch")?;
                        buf.resize(n, Self::ZERO);
                    }
                    Ok(f(&mut buf[..n]))
                }
                Err(_) => Ok(f(&mut crate::tensor::try_zeros::<Self>(n, "kernel scratch")?)),
            })
        }
    };
}

impl HasLanes for f32 {
    type V = F32x4;
    scratch_impl!(SCRATCH_F32);
}
impl HasLanes for f64 {
    type V = F64x2;
    scratch_impl!(SCRATCH_F64);
}
