//! Portable lanes: arrays with the lane counts of simd128, so the SIMD kernels' structure
//! (blocking, packing, tails, reduction order) runs and is tested natively.

use super::Lanes;
use crate::real::Real;

#[derive(Clone, Copy)]
pub struct F32x4([f32; 4]);
#[derive(Clone, Copy)]
pub struct F64x2([f64; 2]);

macro_rules! portable_lanes {
    ($name:ident, $t:ty, $w:expr, $tanh:expr) => {
        impl $name {
            #[inline(always)]
            fn zip(self, o: Self, f: impl Fn($t, $t) -> $t) -> Self {
                let mut r = self.0;
                for i in 0..$w {
                    r[i] = f(self.0[i], o.0[i]);
                }
                $name(r)
            }
            #[inline(always)]
            fn select(self, o: Self, t: Self, f: Self, pick: impl Fn($t, $t) -> bool) -> Self {
                let mut r = f.0;
                for i in 0..$w {
                    if pick(self.0[i], o.0[i]) {
                        r[i] = t.0[i];
                    }
                }
                $name(r)
            }
        }
        impl Lanes for $name {
            type Elem = $t;
            const WIDTH: usize = $w;
            #[inline(always)]
            fn splat(x: $t) -> Self {
                $name([x; $w])
            }
            #[inline(always)]
            unsafe fn load(p: *const $t) -> Self {
                $name(std::ptr::read_unaligned(p as *const [$t; $w]))
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $t) {
                std::ptr::write_unaligned(p as *mut [$t; $w], self.0)
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self.zip(o, |a, b| a + b)
            }
            #[inline(always)]
            fn sub(self, o: Self) -> Self {
                self.zip(o, |a, b| a - b)
            }
            #[inline(always)]
            fn mul(self, o: Self) -> Self {
                self.zip(o, |a, b| a * b)
            }
            #[inline(always)]
            fn div(self, o: Self) -> Self {
                self.zip(o, |a, b| a / b)
            }
            #[inline(always)]
            fn max(self, o: Self) -> Self {
                self.zip(o, Real::max)
            }
            #[inline(always)]
            fn min(self, o: Self) -> Self {
                self.zip(o, Real::min)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                self.map(Real::sqrt)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn neg(self) -> Self {
                self.map(|x| -x)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                self.map(Real::abs)
            }
            #[inline(always)]
            fn lt_select(self, o: Self, t: Self, f: Self) -> Self {
                self.select(o, t, f, |a, b| a < b)
            }
            #[inline(always)]
            fn le_select(self, o: Self, t: Self, f: Self) -> Self {
                self.select(o, t, f, |a, b| a <= b)
            }
            #[inline(always)]
            fn eq_select(self, o: Self, t: Self, f: Self) -> Self {
                self.select(o, t, f, |a, b| a == b)
            }
            #[inline(always)]
            fn any_lt(self, o: Self) -> bool {
                (0..$w).any(|i| self.0[i] < o.0[i])
            }
            #[inline(always)]
            fn all_lt(self, o: Self) -> bool {
                (0..$w).all(|i| self.0[i] < o.0[i])
            }
            #[inline(always)]
            fn sum(self) -> $t {
                // Pairwise halving, the same order as simd128.rs.
                let mut s = self.0;
                let mut h = $w / 2;
                while h > 0 {
                    for i in 0..h {
                        s[i] += s[i + h];
                    }
                    h /= 2;
                }
                s[0]
            }
            #[inline(always)]
            fn reduce_max(self) -> $t {
                self.0.iter().copied().fold(self.0[0], Real::max)
            }
        }
    };
}
impl super::F32Lanes for F32x4 {
    #[inline(always)]
    fn mul_pow2(self, n: Self) -> Self {
        self.zip(n, |x, n| x * f32::from_bits(((n as i32 + 127) as u32) << 23))
    }
    #[inline(always)]
    fn split_exponent(self) -> (Self, Self) {
        let b = self.0.map(f32::to_bits);
        (F32x4(b.map(|b| f32::from_bits((b & 0x007f_ffff) | 0x3f80_0000))), F32x4(b.map(|b| ((b >> 23) & 0xff) as i32 as f32 - 127.0)))
    }
}

// f32 uses the same tanh approximation as the simd128 lanes (see `lanes::tanh_f32`).
portable_lanes!(F32x4, f32, 4, super::tanh_f32);
portable_lanes!(F64x2, f64, 2, |v: F64x2| v.map(Real::tanh));
