//! Every SIMD kernel against its scalar reference, on random shapes that include the awkward
//! sizes (1, 3, 17, 129: not multiples of the lane width, MR or NR) and random strides.

use hesse_core::kernels::{self, Binary, Conv2d, ConvAttrs, Isa, MatRef, Reduce, Unary};
use hesse_core::kernels::lanes::HasLanes;
use hesse_core::real::Real;
use proptest::prelude::*;

/// Sizes the kernels must handle: the awkward ones plus a random spread.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![Just(1usize), Just(3), Just(17), Just(129), 1usize..70]
}

fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(-3.0f64..3.0, n)
}

fn cast<T: Real>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn eps<T: Real>() -> f64 {
    if std::mem::size_of::<T>() == 4 { f32::EPSILON as f64 } else { f64::EPSILON }
}

#[derive(Debug, Clone)]
struct GemmCase {
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    alpha: f64,
    beta: f64,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

fn gemm_case() -> impl Strategy<Value = GemmCase> {
    (dim(), dim(), dim(), any::<bool>(), any::<bool>(), prop_oneof![Just(1.0), -2.0f64..2.0], prop_oneof![Just(0.0), Just(1.0), -1.0f64..1.0])
        .prop_flat_map(|(m, k, n, ta, tb, alpha, beta)| {
            (values(m * k), values(k * n), values(m * n)).prop_map(move |(a, b, c)| GemmCase { m, k, n, ta, tb, alpha, beta, a, b, c })
        })
}

fn check_gemm<T: Real + HasLanes>(g: &GemmCase) -> Result<(), TestCaseError> {
    let (a, b) = (cast::<T>(&g.a), cast::<T>(&g.b));
    // Stored as op(A)ᵀ when transposed, so op(A) is m×k either way.
    let av = if g.ta { MatRef::row_major(&a, g.k, g.m).t() } else { MatRef::row_major(&a, g.m, g.k) };
    let bv = if g.tb { MatRef::row_major(&b, g.n, g.k).t() } else { MatRef::row_major(&b, g.k, g.n) };
    let (alpha, beta) = (T::from_f64(g.alpha), T::from_f64(g.beta));
    let mut want = cast::<T>(&g.c);
    let mut got = want.clone();
    kernels::gemm(Isa::Scalar, alpha, av, bv, beta, &mut want).unwrap();
    kernels::gemm(Isa::Simd, alpha, av, bv, beta, &mut got).unwrap();
    for i in 0..g.m {
        for j in 0..g.n {
            // Error bound of a length-k dot product: k·ε·Σ|a||b| (plus the β·c term).
            let scale: f64 = (0..g.k).map(|p| (av.at(i, p).to_f64() * bv.at(p, j).to_f64()).abs()).sum::<f64>() * g.alpha.abs()
                + (g.beta * g.c[i * g.n + j]).abs();
            let tol = 2.0 * (g.k as f64 + 2.0) * eps::<T>() * scale + 1e-30;
            let (w, o) = (want[i * g.n + j].to_f64(), got[i * g.n + j].to_f64());
            prop_assert!((w - o).abs() <= tol, "gemm {:?} at ({i},{j}): simd {o} vs scalar {w} (tol {tol})", (g.m, g.k, g.n, g.ta, g.tb));
        }
    }
    Ok(())
}

const UNARY: [Unary; 9] = [Unary::Neg, Unary::Abs, Unary::Square, Unary::Sqrt, Unary::Relu, Unary::Exp, Unary::Log, Unary::Tanh, Unary::Sigmoid];
const BINARY: [Binary; 6] = [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Maximum, Binary::Minimum];

/// Two shapes that broadcast to `out`: suffixes of it with some dims set to 1.
fn broadcast_case() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>)> {
    proptest::collection::vec(prop_oneof![Just(1usize), Just(3), Just(17), 1usize..6], 0..4).prop_flat_map(|out| {
        let r = out.len();
        let side = move || (0..=r, proptest::collection::vec(any::<bool>(), r));
        (Just(out.clone()), side(), side()).prop_map(move |(out, (la, ma), (lb, mb))| {
            let pick = |len: usize, mask: &[bool]| (r - len..r).map(|i| if mask[i] { 1 } else { out[i] }).collect::<Vec<_>>();
            (pick(la, &ma), pick(lb, &mb), out)
        })
    })
}

fn bitwise_eq<T: Real>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits() || (x.is_nan() && y.is_nan()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn gemm_simd_matches_scalar_f32(g in gemm_case()) { check_gemm::<f32>(&g)?; }

    #[test]
    fn gemm_simd_matches_scalar_f64(g in gemm_case()) { check_gemm::<f64>(&g)?; }

    /// Same scalar formula lane by lane, and exactly rounded vector ops: results are identical.
    #[test]
    fn unary_simd_equals_scalar(n in dim(), op in proptest::sample::select(UNARY.to_vec()), seed in values(129)) {
        let x64: Vec<f64> = (0..n).map(|i| seed[i % seed.len()] * (1.0 + i as f64 / 7.0)).collect();
        for f64_mode in [false, true] {
            if f64_mode {
                let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                kernels::unary(Isa::Scalar, op, &x64, &mut a);
                kernels::unary(Isa::Simd, op, &x64, &mut b);
                prop_assert!(bitwise_eq(&a, &b), "{op:?} f64 n={n}");
            } else {
                let x = cast::<f32>(&x64);
                let (mut a, mut b) = (vec![0.0f32; n], vec![0.0f32; n]);
                kernels::unary(Isa::Scalar, op, &x, &mut a);
                kernels::unary(Isa::Simd, op, &x, &mut b);
                if op == Unary::Tanh {
                    // f32 tanh lanes use a rational approximation (see tanh_f32_accuracy).
                    prop_assert!(a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= 6e-7 * p.abs().max(1e-30)), "{op:?} f32 n={n}");
                } else {
                    prop_assert!(bitwise_eq(&a, &b), "{op:?} f32 n={n}");
                }
            }
        }
    }

    #[test]
    fn binary_broadcast_simd_equals_scalar((sa, sb, so) in broadcast_case(), op in proptest::sample::select(BINARY.to_vec()), seed in values(64)) {
        let fill = |s: &[usize], k: usize| -> Vec<f32> {
            let n: usize = s.iter().product();
            (0..n).map(|i| (seed[(i + k) % seed.len()] + 0.1 * i as f64) as f32).collect()
        };
        let (a, b) = (fill(&sa, 0), fill(&sb, 7));
        let n: usize = so.iter().product();
        let (mut want, mut got) = (vec![0.0f32; n], vec![0.0f32; n]);
        kernels::binary(Isa::Scalar, op, &a, &sa, &b, &sb, &mut want, &so);
        kernels::binary(Isa::Simd, op, &a, &sa, &b, &sb, &mut got, &so);
        prop_assert!(bitwise_eq(&want, &got), "{op:?} {sa:?} ∘ {sb:?} → {so:?}");
        // And the reference itself against direct NumPy-style indexing.
        let strides = |s: &[usize]| { let mut st = vec![0; so.len()]; let mut acc = 1; for i in (0..s.len()).rev() { st[so.len() - s.len() + i] = if s[i] == 1 { 0 } else { acc }; acc *= s[i]; } st };
        let (ta, tb) = (strides(&sa), strides(&sb));
        for flat in 0..n {
            let (mut rem, mut ia, mut ib) = (flat, 0, 0);
            for d in (0..so.len()).rev() { let k = rem % so[d]; rem /= so[d]; ia += k * ta[d]; ib += k * tb[d]; }
            let (x, y) = (a[ia], b[ib]);
            let e = match op { Binary::Add => x + y, Binary::Sub => x - y, Binary::Mul => x * y, Binary::Div => x / y, Binary::Maximum => x.max(y), Binary::Minimum => x.min(y) };
            prop_assert_eq!(want[flat].to_bits(), e.to_bits());
        }
    }

    #[test]
    fn reduce_simd_matches_scalar(outer in 1usize..5, len in dim(), inner in prop_oneof![Just(1usize), Just(3), Just(17), 1usize..9], seed in values(97)) {
        let n = outer * len * inner;
        let x64: Vec<f64> = (0..n).map(|i| seed[i % seed.len()] * 4.0 + (i % 5) as f64).collect();
        for op in [Reduce::Sum, Reduce::Max, Reduce::LogSumExp] {
            let (mut a, mut b) = (vec![0.0; outer * inner], vec![0.0; outer * inner]);
            kernels::reduce(Isa::Scalar, op, &x64, outer, len, inner, &mut a);
            kernels::reduce(Isa::Simd, op, &x64, outer, len, inner, &mut b);
            let x32 = cast::<f32>(&x64);
            let (mut a32, mut b32) = (vec![0.0f32; outer * inner], vec![0.0f32; outer * inner]);
            kernels::reduce(Isa::Scalar, op, &x32, outer, len, inner, &mut a32);
            kernels::reduce(Isa::Simd, op, &x32, outer, len, inner, &mut b32);
            for i in 0..a.len() {
                let scale = 16.0 * len as f64; // |x| ≤ 16, so |Σx| ≤ 16·len
                prop_assert!((a[i] - b[i]).abs() <= 4.0 * len as f64 * f64::EPSILON * scale, "{op:?} f64");
                prop_assert!(((a32[i] - b32[i]) as f64).abs() <= 4.0 * len as f64 * f32::EPSILON as f64 * scale, "{op:?} f32");
                if op == Reduce::Max { prop_assert_eq!(a[i], b[i]); }
            }
        }
    }

    /// Forward and both adjoints, SIMD and scalar, against the naive conv of this file (f64),
    /// over random groups (depthwise included), dilations, asymmetric pads and strides.
    #[test]
    fn conv2d_kernels_match_naive(n in 1usize..3, groups in 1usize..4, cg in 1usize..3, og in 1usize..3, h in 1usize..9, w in 1usize..9,
                                  kh in 1usize..4, kw in 1usize..4, s in (1usize..3, 1usize..3), d in (1usize..3, 1usize..3),
                                  pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), seed in values(53)) {
        let (c, o) = (groups * cg, groups * og);
        let a = ConvAttrs { stride: s, pads: [pads.0, pads.1, pads.2, pads.3], dilation: d, groups };
        prop_assume!(h + pads.0 + pads.2 > d.0 * (kh - 1) && w + pads.1 + pads.3 > d.1 * (kw - 1));
        let g = Conv2d::new(&[n, c, h, w], &[o, cg, kh, kw], a).unwrap();
        check_conv_kernels(&g, &seed)?;
    }
}

/// y[n, o, oy, ox] = Σ_{c, ky, kx} x[n, (o / (O/G))·Cg + c, oy·sh + ky·dh − top, ox·sw + kx·dw − left]·w[o, c, ky, kx]:
/// PyTorch's conv2d written out as loops, independent of the kernels' indexing. The output size
/// is computed here too: ⌊(H + top + bottom − dh(KH − 1) − 1)/sh⌋ + 1.
fn naive_conv(xs: [usize; 4], ws: [usize; 4], a: ConvAttrs, x: &[f64], wt: &[f64]) -> (Vec<f64>, usize, usize) {
    let [n, c, h, w] = xs;
    let [o, cg, kh, kw] = ws;
    let [top, left, bottom, right] = a.pads.map(|p| p as i64);
    let (sh, sw, dh, dw) = (a.stride.0 as i64, a.stride.1 as i64, a.dilation.0 as i64, a.dilation.1 as i64);
    let oh = ((h as i64 + top + bottom - dh * (kh as i64 - 1) - 1) / sh + 1) as usize;
    let ow = ((w as i64 + left + right - dw * (kw as i64 - 1) - 1) / sw + 1) as usize;
    let og = o / a.groups;
    assert_eq!(cg * a.groups, c);
    let mut y = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = 0.0;
                    for ci in 0..cg {
                        let ic = (oc / og) * cg + ci;
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = oy as i64 * sh + ky as i64 * dh - top;
                                let ix = ox as i64 * sw + kx as i64 * dw - left;
                                if iy >= 0 && iy < h as i64 && ix >= 0 && ix < w as i64 {
                                    s += x[((b * c + ic) * h + iy as usize) * w + ix as usize] * wt[((oc * cg + ci) * kh + ky) * kw + kx];
                                }
                            }
                        }
                    }
                    y[((b * o + oc) * oh + oy) * ow + ox] = s;
                }
            }
        }
    }
    (y, oh, ow)
}

/// The kernels of geometry `g` (forward, grad input, grad weight; SIMD and scalar) against
/// [`naive_conv`]: the forward directly, the adjoints through their defining identities
/// ⟨gy, conv(x, w)⟩ = ⟨gx(gy, w), x⟩ = ⟨gw(x, gy), w⟩ and against the naive conv's own
/// derivative columns (gx[i] = ⟨gy, conv(eᵢ, w)⟩) on small cases.
fn check_conv_kernels(g: &Conv2d, seed: &[f64]) -> Result<(), TestCaseError> {
    let (oh, ow) = g.out_hw();
    let xs = [g.n, g.c, g.h, g.w];
    let ws = g.weight_shape();
    let x: Vec<f64> = (0..xs.iter().product()).map(|i| seed[i % 53]).collect();
    let wt: Vec<f64> = (0..ws.iter().product()).map(|i| seed[(i * 7 + 3) % 53]).collect();
    let gy: Vec<f64> = (0..g.n * g.o * oh * ow).map(|i| seed[(i * 11 + 5) % 53]).collect();
    let (want, noh, now) = naive_conv(xs, ws, g.attrs(), &x, &wt);
    prop_assert_eq!((noh, now), (oh, ow), "output size {:?}", g);
    let taps = (g.cg() * g.kh * g.kw) as f64;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    // The naive conv's own adjoints, by linearity: gx[i] = ⟨gy, conv(eᵢ, w)⟩, gw[j] = ⟨gy, conv(x, eⱼ)⟩.
    let unit = |len: usize, i: usize| (0..len).map(|j| if i == j { 1.0 } else { 0.0 }).collect::<Vec<_>>();
    let small = x.len() + wt.len() <= 400;
    for isa in [Isa::Scalar, Isa::Simd] {
        let mut y = vec![f64::NAN; want.len()];
        kernels::conv2d(isa, g, &x, &wt, &mut y).unwrap();
        for i in 0..y.len() {
            prop_assert!((y[i] - want[i]).abs() <= 1e-12 * taps * 9.0, "{:?} conv2d {:?} at {}: {} vs {}", isa, g, i, y[i], want[i]);
        }
        let (mut gx, mut gw) = (vec![f64::NAN; x.len()], vec![f64::NAN; wt.len()]);
        kernels::conv2d_grad_input(isa, g, &gy, &wt, &mut gx).unwrap();
        kernels::conv2d_grad_weight(isa, g, &x, &gy, &mut gw).unwrap();
        let lhs = dot(&gy, &want);
        let tol = 1e-11 * (1.0 + dot(&gy.iter().map(|v| v.abs()).collect::<Vec<_>>(), &want.iter().map(|v| v.abs()).collect::<Vec<_>>()));
        prop_assert!((lhs - dot(&gx, &x)).abs() <= tol, "{:?} input adjoint {:?}: {} vs {}", isa, g, lhs, dot(&gx, &x));
        prop_assert!((lhs - dot(&gw, &wt)).abs() <= tol, "{:?} weight adjoint {:?}: {} vs {}", isa, g, lhs, dot(&gw, &wt));
        if small {
            for i in 0..x.len() {
                let col = dot(&gy, &naive_conv(xs, ws, g.attrs(), &unit(x.len(), i), &wt).0);
                prop_assert!((gx[i] - col).abs() <= 1e-12 * (1.0 + col.abs()) * 9.0, "{:?} gx {:?} at {}: {} vs {}", isa, g, i, gx[i], col);
            }
            for j in 0..wt.len() {
                let col = dot(&gy, &naive_conv(xs, ws, g.attrs(), &x, &unit(wt.len(), j)).0);
                prop_assert!((gw[j] - col).abs() <= 1e-12 * (1.0 + col.abs()) * 9.0 * (g.n * oh * ow) as f64, "{:?} gw {:?} at {}: {} vs {}", isa, g, j, gw[j], col);
            }
        }
    }
    Ok(())
}

/// Named geometries the exporters emit: depthwise 3×3 (MobileNet), a dilated grouped conv with
/// asymmetric pads (ONNX's SAME_UPPER puts the extra pad at the end), a strided 1×1, a kernel
/// that only fits with padding, and one that reads padding only in some taps.
#[test]
fn conv2d_named_geometries_match_naive() {
    let seed: Vec<f64> = (0..53).map(|i| ((i as f64 * 0.7311).sin() * 2.9).fract() * 3.0).collect();
    let cases: [([usize; 4], [usize; 4], ConvAttrs); 6] = [
        ([2, 6, 7, 7], [6, 1, 3, 3], ConvAttrs { stride: (1, 1), pads: [1, 1, 1, 1], dilation: (1, 1), groups: 6 }),
        ([1, 4, 8, 6], [8, 1, 3, 3], ConvAttrs { stride: (2, 2), pads: [0, 0, 1, 1], dilation: (1, 1), groups: 4 }),
        ([2, 6, 9, 8], [4, 3, 3, 2], ConvAttrs { stride: (1, 2), pads: [2, 0, 1, 3], dilation: (2, 3), groups: 2 }),
        ([1, 3, 5, 5], [5, 3, 1, 1], ConvAttrs { stride: (2, 2), pads: [0; 4], dilation: (1, 1), groups: 1 }),
        ([1, 2, 2, 2], [3, 2, 3, 3], ConvAttrs { stride: (1, 1), pads: [1, 1, 0, 0], dilation: (1, 1), groups: 1 }),
        ([1, 2, 4, 4], [2, 1, 2, 2], ConvAttrs { stride: (3, 3), pads: [3, 0, 0, 3], dilation: (3, 3), groups: 2 }),
    ];
    for (xs, ws, a) in cases {
        let g = Conv2d::new(&xs, &ws, a).unwrap_or_else(|e| panic!("{xs:?} {ws:?} {a:?}: {}", e.message));
        check_conv_kernels(&g, &seed).unwrap();
    }
}

/// Conv2d::new is the one geometry check: each bad geometry is an error naming what is wrong.
#[test]
fn conv2d_geometry_errors_name_the_problem() {
    let a = ConvAttrs::default();
    let err = |xs: &[usize], ws: &[usize], a: ConvAttrs| Conv2d::new(xs, ws, a).unwrap_err().message;
    assert!(err(&[1, 4, 5, 5], &[4, 2, 3, 3], ConvAttrs { groups: 3, ..a }).contains("groups 3 must divide"));
    assert!(err(&[1, 4, 5, 5], &[6, 1, 3, 3], ConvAttrs { groups: 4, ..a }).contains("groups 4 must divide"));
    assert!(err(&[1, 4, 5, 5], &[4, 2, 3, 3], ConvAttrs { groups: 4, ..a }).contains("1 channels per group"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { groups: 0, ..a }).contains("groups must be ≥ 1"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { dilation: (0, 1), ..a }).contains("dilation must be ≥ 1"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { stride: (1, 0), ..a }).contains("stride must be ≥ 1"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { dilation: (3, 1), ..a }).contains("dilated to 7×3"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { dilation: (usize::MAX, 1), ..a }).contains("conv2d of input [1, 4, 5, 5]"));
    assert!(err(&[1, 4, 5, 5], &[4, 4, 3, 3], ConvAttrs { pads: [usize::MAX, 0, 1, 0], ..a }).contains("conv2d of input"));
    // A dilated kernel that fits only thanks to asymmetric padding.
    let g = Conv2d::new(&[1, 1, 3, 3], &[1, 1, 3, 3], ConvAttrs { dilation: (2, 2), pads: [0, 2, 2, 0], ..a }).unwrap();
    assert_eq!(g.out_hw(), (1, 1));
}

#[test]
fn gemm_known_values() {
    let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [5.0f32, 6.0, 7.0, 8.0]);
    for isa in [Isa::Scalar, Isa::Simd] {
        let mut c = [f32::NAN; 4]; // β = 0 must overwrite NaN
        kernels::gemm(isa, 1.0, MatRef::row_major(&a, 2, 2), MatRef::row_major(&b, 2, 2), 0.0, &mut c).unwrap();
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        let mut c = [1.0f32; 4];
        kernels::gemm(isa, 2.0, MatRef::row_major(&a, 2, 2).t(), MatRef::row_major(&b, 2, 2), 1.0, &mut c).unwrap();
        // AᵀB = [[26, 30], [38, 44]]
        assert_eq!(c, [53.0, 61.0, 77.0, 89.0]);
    }
}

#[test]
fn logsumexp_known_values_and_infinities() {
    for isa in [Isa::Scalar, Isa::Simd] {
        let mut out = [0.0f64; 1];
        kernels::reduce(isa, Reduce::LogSumExp, &[1.0, 2.0, 3.0], 1, 3, 1, &mut out);
        assert!((out[0] - 3.40760596444438).abs() < 1e-14);
        kernels::reduce(isa, Reduce::LogSumExp, &[1000.0, 1000.0], 1, 2, 1, &mut out);
        assert!((out[0] - (1000.0 + 2f64.ln())).abs() < 1e-12, "no overflow");
        kernels::reduce(isa, Reduce::LogSumExp, &[f64::NEG_INFINITY; 5], 1, 5, 1, &mut out);
        assert_eq!(out[0], f64::NEG_INFINITY);
        let mut cols = [0.0f64; 2];
        kernels::reduce(isa, Reduce::LogSumExp, &[f64::NEG_INFINITY, 0.0, f64::NEG_INFINITY, 0.0], 1, 2, 2, &mut cols);
        assert_eq!(cols[0], f64::NEG_INFINITY);
        assert!((cols[1] - 2f64.ln()).abs() < 1e-15);
    }
}

#[test]
fn conv2d_known_values() {
    // 1×1×3×3 input 1..9, 2×2 kernel of ones, stride 1, padding 0 → sums of 2×2 windows.
    let x: Vec<f64> = (1..=9).map(|v| v as f64).collect();
    let g = Conv2d::new(&[1, 1, 3, 3], &[1, 1, 2, 2], ConvAttrs::default()).unwrap();
    for isa in [Isa::Scalar, Isa::Simd] {
        let mut out = [0.0; 4];
        kernels::conv2d(isa, &g, &x, &[1.0; 4], &mut out).unwrap();
        assert_eq!(out, [12.0, 16.0, 24.0, 28.0]);
    }
    // Padding 1, stride 2: corners see only the inside.
    let g = Conv2d::new(&[1, 1, 3, 3], &[1, 1, 2, 2], ConvAttrs::symmetric((2, 2), (1, 1))).unwrap();
    let mut out = [0.0; 4];
    kernels::conv2d(Isa::Simd, &g, &x, &[1.0; 4], &mut out).unwrap();
    assert_eq!(out, [1.0, 5.0, 11.0, 28.0]);
}

/// The conv backward kernels are the adjoints of conv2d: ⟨gy, conv(x, w)⟩ = ⟨gx(gy, w), x⟩ =
/// ⟨gw(x, gy), w⟩, and their SIMD and scalar versions agree.
#[test]
fn conv2d_backward_kernels_are_adjoints() {
    let g = Conv2d::new(&[2, 3, 7, 6], &[4, 3, 3, 2], ConvAttrs::symmetric((2, 1), (1, 1))).unwrap();
    let (oh, ow) = g.out_hw();
    let f = |i: usize, s: f64| ((i as f64 * s).sin() * 1.7).fract();
    let x: Vec<f64> = (0..g.n * g.c * g.h * g.w).map(|i| f(i, 0.37)).collect();
    let w: Vec<f64> = (0..g.o * g.c * g.kh * g.kw).map(|i| f(i, 0.91)).collect();
    let gy: Vec<f64> = (0..g.n * g.o * oh * ow).map(|i| f(i, 1.13)).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let mut y = vec![0.0; gy.len()];
    kernels::conv2d(Isa::Simd, &g, &x, &w, &mut y).unwrap();
    for isa in [Isa::Simd, Isa::Scalar] {
        let mut gx = vec![0.0; x.len()];
        let mut gw = vec![0.0; w.len()];
        kernels::conv2d_grad_input(isa, &g, &gy, &w, &mut gx).unwrap();
        kernels::conv2d_grad_weight(isa, &g, &x, &gy, &mut gw).unwrap();
        let (lhs, a, b) = (dot(&gy, &y), dot(&gx, &x), dot(&gw, &w));
        assert!((lhs - a).abs() < 1e-12 * lhs.abs().max(1.0), "{isa:?} input adjoint {lhs} vs {a}");
        assert!((lhs - b).abs() < 1e-12 * lhs.abs().max(1.0), "{isa:?} weight adjoint {lhs} vs {b}");
    }
}

/// The f32 tanh approximation of the SIMD lanes against f64 tanh: a dense grid over the whole
/// range where tanh is not ±1 in f32, tiny arguments, and the saturated tails.
#[test]
fn tanh_f32_accuracy() {
    let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-5).collect();
    xs.extend([1e-30f32, -1e-20, 1e-8, 3e-4, 8.0, -9.5, 20.0, -1e4, f32::MAX, f32::MIN]);
    let mut got = vec![0f32; xs.len()];
    kernels::unary(Isa::Simd, Unary::Tanh, &xs, &mut got);
    let mut worst = 0f64;
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).tanh();
        worst = worst.max((g as f64 - want).abs() / want.abs().max(1e-300));
    }
    assert!(worst < 6e-7, "worst relative error {worst}");
}

/// SYRK (lower blocks only, mirrored) equals the full product A·Aᵀ, across block boundaries.
#[test]
fn syrk_equals_a_times_a_transposed() {
    for (n, k) in [(1, 1), (3, 17), (193, 5), (400, 33)] {
        let a: Vec<f64> = (0..n * k).map(|i| ((i as f64) * 0.731).sin()).collect();
        let c = kernels::syrk(Isa::Simd, &a, n, k).unwrap();
        let mut want = vec![0.0; n * n];
        kernels::gemm(Isa::Scalar, 1.0, MatRef::row_major(&a, n, k), MatRef::row_major(&a, n, k).t(), 0.0, &mut want).unwrap();
        for i in 0..n * n {
            assert!((c[i] - want[i]).abs() <= 1e-12 * (k as f64), "n={n} k={k} at {i}");
        }
    }
}

/// Geometries past the GEMM's blocking (depth C·KH·KW > KC = 256, OH·OW > NC = 1024), where the
/// im2col panels (`PackedB`) or the shifted image (`ShiftedB`) are read block by block, with groups and strides: f64 against the
/// naive conv, and f32 SIMD against the f32 scalar kernels (the f32 panels are twice as wide).
#[test]
fn conv2d_kernels_match_naive_past_the_gemm_blocks() {
    let seed: Vec<f64> = (0..53).map(|i| ((i * 37 % 53) as f64 / 26.5) - 1.0).collect();
    for (xs, ws, a) in [
        ([2, 32, 34, 34], [8, 32, 3, 3], ConvAttrs::symmetric((1, 1), (1, 1))),
        ([1, 64, 33, 35], [6, 32, 3, 3], ConvAttrs { groups: 2, ..ConvAttrs::symmetric((1, 1), (1, 1)) }),
        ([2, 40, 20, 21], [5, 40, 3, 2], ConvAttrs { stride: (2, 1), pads: [1, 0, 2, 1], dilation: (1, 2), groups: 1 }),
        // OW = 32 and 16, multiples of both panel widths: B read in place from the padded image.
        ([2, 32, 40, 32], [8, 32, 3, 3], ConvAttrs::symmetric((1, 1), (1, 1))),
        ([1, 16, 12, 16], [4, 8, 3, 3], ConvAttrs { stride: (1, 1), pads: [2, 2, 2, 2], dilation: (2, 2), groups: 2 }),
        ([3, 5, 9, 8], [7, 5, 2, 1], ConvAttrs { stride: (1, 1), pads: [0, 1, 1, 0], dilation: (1, 1), groups: 1 }),
    ] {
        let g = Conv2d::new(&xs, &ws, a).unwrap();
        check_conv_kernels(&g, &seed).unwrap();
        let (oh, ow) = g.out_hw();
        let x: Vec<f32> = (0..xs.iter().product()).map(|i| seed[i % 53] as f32).collect();
        let wt: Vec<f32> = (0..ws.iter().product()).map(|i| seed[(i * 7 + 3) % 53] as f32).collect();
        let gy: Vec<f32> = (0..g.n * g.o * oh * ow).map(|i| seed[(i * 11 + 5) % 53] as f32).collect();
        let run = |isa: Isa| {
            let (mut y, mut gx, mut gw) = (vec![f32::NAN; gy.len()], vec![f32::NAN; x.len()], vec![f32::NAN; wt.len()]);
            kernels::conv2d(isa, &g, &x, &wt, &mut y).unwrap();
            kernels::conv2d_grad_input(isa, &g, &gy, &wt, &mut gx).unwrap();
            kernels::conv2d_grad_weight(isa, &g, &x, &gy, &mut gw).unwrap();
            (y, gx, gw)
        };
        let (want, got) = (run(Isa::Scalar), run(Isa::Simd));
        // Sums of ≤ 1e5 products of values in [−1, 1]: f32 reassociation error ≤ len·ε·Σ|terms|.
        for (name, w, o, terms) in [("conv2d", &want.0, &got.0, g.cg() * 9), ("grad input", &want.1, &got.1, g.og() * 9), ("grad weight", &want.2, &got.2, g.n * oh * ow)] {
            let tol = 2.0 * terms as f32 * f32::EPSILON * terms as f32;
            for (i, (a, b)) in w.iter().zip(o.iter()).enumerate() {
                assert!((a - b).abs() <= tol, "f32 {name} {g:?} at {i}: simd {b} vs scalar {a} (tol {tol})");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The fused conv kernels (primal and K tangents in one pass, sharing each image's im2col)
    /// against the plain scalar kernels composed by bilinearity: B(ȧₖ, b) + B(a, ḃₖ), for K = 2,
    /// each operand's tangent present or absent, over groups, strides, dilations and pads.
    #[test]
    fn fused_conv_tangents_are_the_bilinear_sums(n in 1usize..3, groups in 1usize..3, cg in 1usize..4, og in 1usize..4, h in 2usize..8, w in 2usize..8,
                                                  kh in 1usize..4, kw in 1usize..4, s in (1usize..3, 1usize..3), pads in (0usize..2, 0usize..2, 0usize..2, 0usize..2),
                                                  which in 1usize..4, seed in values(53)) {
        let (c, o) = (groups * cg, groups * og);
        prop_assume!(h + pads.0 + pads.2 >= kh && w + pads.1 + pads.3 >= kw && !(cg == 1 && og == 1 && groups > 1));
        let a = ConvAttrs { stride: s, pads: [pads.0, pads.1, pads.2, pads.3], dilation: (1, 1), groups };
        let g = Conv2d::new(&[n, c, h, w], &[o, cg, kh, kw], a).unwrap();
        prop_assume!(kernels::conv::fused(Isa::Simd, &g));
        let (oh, ow) = g.out_hw();
        let k = 2;
        let fill = |len: usize, m: usize| (0..len).map(|i| seed[(i * m + 1) % 53]).collect::<Vec<f64>>();
        let (xl, wl, yl) = (n * c * h * w, o * cg * kh * kw, n * o * oh * ow);
        let (x, wt, gy) = (fill(xl, 3), fill(wl, 5), fill(yl, 7));
        let (tx, tw, tgy) = (fill(k * xl, 11), fill(k * wl, 13), fill(k * yl, 17));
        let (use_a, use_b) = (which & 1 != 0, which & 2 != 0);
        // One plain kernel `f(a, b) → out` (scalar reference), the tangent sum by bilinearity.
        let sum = |f: &dyn Fn(&[f64], &[f64], &mut [f64]), a: &[f64], b: &[f64], ta: &[f64], tb: &[f64], out_len: usize| {
            let (al, bl) = (a.len(), b.len());
            let mut t = vec![0.0; k * out_len];
            for kk in 0..k {
                let mut tmp = vec![0.0; out_len];
                if use_a { f(&ta[kk * al..(kk + 1) * al], b, &mut tmp); t[kk * out_len..(kk + 1) * out_len].iter_mut().zip(&tmp).for_each(|(d, v)| *d += v); }
                if use_b { f(a, &tb[kk * bl..(kk + 1) * bl], &mut tmp); t[kk * out_len..(kk + 1) * out_len].iter_mut().zip(&tmp).for_each(|(d, v)| *d += v); }
            }
            let mut p = vec![0.0; out_len];
            f(a, b, &mut p);
            (p, t)
        };
        let close = |what: &str, got: &[f64], want: &[f64]| -> Result<(), TestCaseError> {
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()) * 64.0, "{what} {g:?} at {i}: fused {a} vs composed {b}");
            }
            Ok(())
        };
        type Plain = fn(Isa, &Conv2d, &[f64], &[f64], &mut [f64]) -> hesse_core::Result<()>;
        type Fused = fn(&Conv2d, &[f64], &[f64], kernels::conv::Tangents<f64>, Option<&mut [f64]>, Option<&mut [f64]>) -> hesse_core::Result<()>;
        let cases: [(&str, Plain, Fused, (&[f64], &[f64]), (&[f64], &[f64]), usize); 3] = [
            ("conv2d", kernels::conv2d, kernels::conv::conv2d_fused, (&x, &wt), (&tx, &tw), yl),
            ("grad input", kernels::conv2d_grad_input, kernels::conv::grad_input_fused, (&gy, &wt), (&tgy, &tw), xl),
            ("grad weight", kernels::conv2d_grad_weight, kernels::conv::grad_weight_fused, (&x, &gy), (&tx, &tgy), wl),
        ];
        for (what, plain, fused, (a, b), (ta, tb), len) in cases {
            let (p, t) = sum(&|a: &[f64], b: &[f64], o: &mut [f64]| plain(Isa::Scalar, &g, a, b, o).unwrap(), a, b, ta, tb, len);
            let (mut fp, mut ft) = (vec![f64::NAN; len], vec![f64::NAN; k * len]);
            fused(&g, a, b, kernels::conv::Tangents { k, a: use_a.then_some(ta), b: use_b.then_some(tb) }, Some(&mut fp), Some(&mut ft)).unwrap();
            close(what, &fp, &p)?;
            close(&format!("{what} tangents"), &ft, &t)?;
            // The primal alone and the tangents alone (a replay takes the primal from its tape).
            let (mut fp1, mut ft1) = (vec![f64::NAN; len], vec![f64::NAN; k * len]);
            fused(&g, a, b, kernels::conv::Tangents::NONE, Some(&mut fp1), None).unwrap();
            fused(&g, a, b, kernels::conv::Tangents { k, a: use_a.then_some(ta), b: use_b.then_some(tb) }, None, Some(&mut ft1)).unwrap();
            close(what, &fp1, &p)?;
            close(&format!("{what} tangents alone"), &ft1, &t)?;
        }
    }
}

/// A tiny output whose zero-padded input would not fit the address space (huge pads, a dilated
/// kernel spanning them): refused by the geometry, so the SIMD path never sizes that buffer.
#[test]
fn conv2d_geometry_refuses_a_padded_image_past_usize() {
    let big = 1usize << (usize::BITS / 2);
    let a = ConvAttrs { stride: (1, 1), pads: [big / 2; 4], dilation: (big, big), groups: 1 };
    let e = Conv2d::new(&[1, 1, 1, 1], &[1, 1, 2, 2], a).unwrap_err();
    assert!(e.to_string().contains("conv2d"), "{e}");
}
