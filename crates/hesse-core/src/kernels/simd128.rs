//! wasm simd128 lanes: one `v128` register per value.
//!
//! Built with `+relaxed-simd` as well (the second wasm build, `hesse_relaxed_bg.wasm`),
//! `mul_add` is `f32x4.relaxed_madd` / `f64x2.relaxed_madd`: one instruction that the engine may
//! lower to a fused multiply-add (one rounding) or to mul then add (two), per machine. Every
//! kernel written with `mul_add` (the GEMM microkernel and tile update, the activation towers)
//! takes it; results differ from the simd128 build by rounding only.

use super::Lanes;
use core::arch::wasm32::*;

#[derive(Clone, Copy)]
pub struct F32x4(v128);
#[derive(Clone, Copy)]
pub struct F64x2(v128);

impl Lanes for F32x4 {
    type Elem = f32;
    const WIDTH: usize = 4;
    #[inline(always)]
    fn tanh(self) -> Self {
        super::tanh_f32(self)
    }
    #[inline(always)]
    fn splat(x: f32) -> Self {
        F32x4(f32x4_splat(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F32x4(v128_load(p as *const v128))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        v128_store(p as *mut v128, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        F32x4(f32x4_add(self.0, o.0))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        F32x4(f32x4_sub(self.0, o.0))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        F32x4(f32x4_mul(self.0, o.0))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        F32x4(f32x4_div(self.0, o.0))
    }
    // f32x4.max/min propagate NaN, as NumPy's maximum/minimum.
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        F32x4(f32x4_max(self.0, o.0))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        F32x4(f32x4_min(self.0, o.0))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        F32x4(f32x4_sqrt(self.0))
    }
    #[inline(always)]
    fn neg(self) -> Self {
        F32x4(f32x4_neg(self.0))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F32x4(f32x4_abs(self.0))
    }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        F32x4(f32x4_relaxed_madd(self.0, b.0, c.0))
    }
    #[inline(always)]
    fn lt_select(self, o: Self, t: Self, f: Self) -> Self {
        F32x4(v128_bitselect(t.0, f.0, f32x4_lt(self.0, o.0)))
    }
    #[inline(always)]
    fn le_select(self, o: Self, t: Self, f: Self) -> Self {
        F32x4(v128_bitselect(t.0, f.0, f32x4_le(self.0, o.0)))
    }
    #[inline(always)]
    fn eq_select(self, o: Self, t: Self, f: Self) -> Self {
        F32x4(v128_bitselect(t.0, f.0, f32x4_eq(self.0, o.0)))
    }
    #[inline(always)]
    fn any_lt(self, o: Self) -> bool {
        v128_any_true(f32x4_lt(self.0, o.0))
    }
    #[inline(always)]
    fn all_lt(self, o: Self) -> bool {
        i32x4_all_true(f32x4_lt(self.0, o.0))
    }
    #[inline(always)]
    fn sum(self) -> f32 {
        // Pairwise: (l0 + l2) + (l1 + l3), the same order portable.rs uses.
        let s = f32x4_add(self.0, i32x4_shuffle::<2, 3, 0, 1>(self.0, self.0));
        f32x4_extract_lane::<0>(s) + f32x4_extract_lane::<1>(s)
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        let s = f32x4_max(self.0, i32x4_shuffle::<2, 3, 0, 1>(self.0, self.0));
        let s = f32x4_max(s, i32x4_shuffle::<1, 0, 3, 2>(s, s));
        f32x4_extract_lane::<0>(s)
    }
    /// Rows a, b, c, d: interleave pairs (a0 b0 a1 b1 | a2 b2 a3 b3, likewise c/d), then take
    /// 64-bit halves (a0 b0 c0 d0, …).
    #[inline(always)]
    unsafe fn transpose_block(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        let r = |i: usize| v128_load(src.add(i * ss) as *const v128);
        let (a, b, c, d) = (r(0), r(1), r(2), r(3));
        let (ab_lo, ab_hi) = (i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
        let (cd_lo, cd_hi) = (i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
        v128_store(dst as *mut v128, i64x2_shuffle::<0, 2>(ab_lo, cd_lo));
        v128_store(dst.add(ds) as *mut v128, i64x2_shuffle::<1, 3>(ab_lo, cd_lo));
        v128_store(dst.add(2 * ds) as *mut v128, i64x2_shuffle::<0, 2>(ab_hi, cd_hi));
        v128_store(dst.add(3 * ds) as *mut v128, i64x2_shuffle::<1, 3>(ab_hi, cd_hi));
    }
}

impl super::F32Lanes for F32x4 {
    #[inline(always)]
    fn mul_pow2(self, n: Self) -> Self {
        let bits = i32x4_shl(i32x4_add(i32x4_trunc_sat_f32x4(n.0), i32x4_splat(127)), 23);
        F32x4(f32x4_mul(self.0, bits))
    }
    #[inline(always)]
    fn split_exponent(self) -> (Self, Self) {
        let m = v128_or(v128_and(self.0, i32x4_splat(0x007f_ffff)), i32x4_splat(0x3f80_0000));
        let e = i32x4_sub(v128_and(u32x4_shr(self.0, 23), i32x4_splat(0xff)), i32x4_splat(127));
        (F32x4(m), F32x4(f32x4_convert_i32x4(e)))
    }
}

impl Lanes for F64x2 {
    type Elem = f64;
    const WIDTH: usize = 2;
    #[inline(always)]
    fn splat(x: f64) -> Self {
        F64x2(f64x2_splat(x))
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        F64x2(v128_load(p as *const v128))
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        v128_store(p as *mut v128, self.0)
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        F64x2(f64x2_add(self.0, o.0))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        F64x2(f64x2_sub(self.0, o.0))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        F64x2(f64x2_mul(self.0, o.0))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        F64x2(f64x2_div(self.0, o.0))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        F64x2(f64x2_max(self.0, o.0))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        F64x2(f64x2_min(self.0, o.0))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        F64x2(f64x2_sqrt(self.0))
    }
    #[inline(always)]
    fn neg(self) -> Self {
        F64x2(f64x2_neg(self.0))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        F64x2(f64x2_abs(self.0))
    }
    #[cfg(target_feature = "relaxed-simd")]
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        F64x2(f64x2_relaxed_madd(self.0, b.0, c.0))
    }
    #[inline(always)]
    fn lt_select(self, o: Self, t: Self, f: Self) -> Self {
        F64x2(v128_bitselect(t.0, f.0, f64x2_lt(self.0, o.0)))
    }
    #[inline(always)]
    fn le_select(self, o: Self, t: Self, f: Self) -> Self {
        F64x2(v128_bitselect(t.0, f.0, f64x2_le(self.0, o.0)))
    }
    #[inline(always)]
    fn eq_select(self, o: Self, t: Self, f: Self) -> Self {
        F64x2(v128_bitselect(t.0, f.0, f64x2_eq(self.0, o.0)))
    }
    #[inline(always)]
    fn any_lt(self, o: Self) -> bool {
        v128_any_true(f64x2_lt(self.0, o.0))
    }
    #[inline(always)]
    fn all_lt(self, o: Self) -> bool {
        i64x2_all_true(f64x2_lt(self.0, o.0))
    }
    #[inline(always)]
    fn sum(self) -> f64 {
        f64x2_extract_lane::<0>(self.0) + f64x2_extract_lane::<1>(self.0)
    }
    #[inline(always)]
    fn reduce_max(self) -> f64 {
        let s = f64x2_max(self.0, i64x2_shuffle::<1, 0>(self.0, self.0));
        f64x2_extract_lane::<0>(s)
    }
    #[inline(always)]
    unsafe fn transpose_block(src: *const f64, ss: usize, dst: *mut f64, ds: usize) {
        let (a, b) = (v128_load(src as *const v128), v128_load(src.add(ss) as *const v128));
        v128_store(dst as *mut v128, i64x2_shuffle::<0, 2>(a, b));
        v128_store(dst.add(ds) as *mut v128, i64x2_shuffle::<1, 3>(a, b));
    }
}
