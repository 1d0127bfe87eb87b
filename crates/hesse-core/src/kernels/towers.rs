//! Pointwise derivative towers (f, f′, f″) evaluated over whole buffers.
//!
//! f64 programs evaluate [`Act::tower`] element by element in f64, exactly as stated in act.rs.
//! f32 programs (with the SIMD kernels) evaluate the same towers in f32 lanes, four elements at a
//! time, on f32 building blocks written here: eˣ and eˣ − 1 (Cephes expf), ln x (Cephes logf),
//! erf/erfc (s_erf.c's rational functions in f32), σ and its derivatives from e^−|x| (no
//! cancellation), and the rational tanh of `lanes::tanh_f32`. Each formula is the act.rs formula
//! rewritten where the f64 one would cancel in f32 (1 − σ, 1 + tanh, eˣ − 1, 1 + erf): the
//! accuracy each tower reaches is stated and tested in tests/towers_f32.rs.
//!
//! Functions whose derivatives follow from their value ([`Act::derivs_from_output`]) take f′, f″
//! from y in the reverse sweep ([`from_output`], vectorized for both element types).
#![allow(clippy::excessive_precision)] // Cephes' published coefficients, digit for digit

use super::lanes::{tanh_f32, F32Lanes, F32x4, HasLanes, Lanes};
use super::{unary, Isa};
use crate::autodiff::act::{Act, ERX, PA, PP, QA, QQ, RA, RB, SA, SB};

/// How an element type evaluates towers: f64 by [`Act::tower`], f32 in lanes (see the module).
/// A supertrait of [`HasLanes`], so every kernel element type has it.
pub trait Towers: crate::real::Real {
    /// p ← f⁽ᵒʳᵈᵉʳ⁾(x) and, when given, d ← f⁽ᵒʳᵈᵉʳ⁺¹⁾(x), for order 0 or 1.
    fn towers(isa: Isa, act: Act, order: u8, x: &[Self], p: &mut [Self], d: Option<&mut [Self]>);
}

impl Towers for f64 {
    fn towers(isa: Isa, act: Act, order: u8, x: &[f64], p: &mut [f64], d: Option<&mut [f64]>) {
        reference(isa, act, order, x, p, d)
    }
}

impl Towers for f32 {
    fn towers(isa: Isa, act: Act, order: u8, x: &[f32], p: &mut [f32], d: Option<&mut [f32]>) {
        match isa {
            Isa::Simd => f32_lanes(act, order, x, p, d),
            Isa::Scalar => reference(isa, act, order, x, p, d),
        }
    }
}

/// The element-by-element path (f64 programs, and f32 with the scalar kernels): the value by its
/// kernel and f′ from the value where the function has both, else [`Act::tower`] in f64.
fn reference<T: HasLanes>(isa: Isa, act: Act, order: u8, x: &[T], p: &mut [T], d: Option<&mut [T]>) {
    if let (0, Some(kernel)) = (order, act.value_kernel()) {
        unary(isa, kernel, x, p);
        if let Some(d) = d {
            from_output(act, p, d, None);
        }
        return;
    }
    let o = order as usize;
    match d {
        None => p.iter_mut().zip(x).for_each(|(p, &v)| *p = T::from_f64(act.tower(v.to_f64())[o])),
        Some(d) => {
            for ((p, d), &v) in p.iter_mut().zip(d.iter_mut()).zip(x) {
                let tw = act.tower(v.to_f64());
                *p = T::from_f64(tw[o]);
                *d = T::from_f64(tw[o + 1]);
            }
        }
    }
}

/// d1 ← f′ and, when given, d2 ← f″ from y = f(x) ([`Act::derivs_from_output`]), in lanes.
/// Panics if `act` has no such rule (callers check [`Act::has_derivs_from_output`]).
pub fn from_output<T: HasLanes>(act: Act, y: &[T], d1: &mut [T], d2: Option<&mut [T]>) {
    let rule = |v: T::V| act.derivs_from_output(v).expect("a function with derivatives from its output");
    match d2 {
        None => each_lane(y, [Some(d1), None], |v| {
            let [a, _] = rule(v);
            [a, a]
        }),
        Some(d2) => each_lane(y, [Some(d1), Some(d2)], rule),
    }
}

/// Runs `f` over `x` in lanes (the tail padded with zeros), storing its k-th output into
/// `outs[k]` where given.
#[inline(always)]
fn each_lane<T: HasLanes, const N: usize>(x: &[T], mut outs: [Option<&mut [T]>; N], f: impl Fn(T::V) -> [T::V; N]) {
    assert!(outs.iter().flatten().all(|o| o.len() == x.len()), "towers: input and output lengths differ");
    let w = <T::V as Lanes>::WIDTH;
    let body = x.len() / w * w;
    for i in (0..body).step_by(w) {
        // SAFETY: i + w ≤ body ≤ the length of x and of every output (checked above).
        let r = f(unsafe { T::V::load(x.as_ptr().add(i)) });
        for (o, v) in outs.iter_mut().zip(r) {
            if let Some(o) = o {
                unsafe { v.store(o.as_mut_ptr().add(i)) }
            }
        }
    }
    if body < x.len() {
        let n = x.len() - body;
        let mut buf = [T::ZERO; 4];
        buf[..n].copy_from_slice(&x[body..]);
        // SAFETY: buf holds 4 ≥ WIDTH elements.
        let r = f(unsafe { T::V::load(buf.as_ptr()) });
        for (o, v) in outs.iter_mut().zip(r) {
            if let Some(o) = o {
                let mut out = [T::ZERO; 4];
                unsafe { v.store(out.as_mut_ptr()) };
                o[body..].copy_from_slice(&out[..n]);
            }
        }
    }
}

type V = F32x4;

#[inline(always)]
fn c(x: f32) -> V {
    V::splat(x)
}

/// The f32 lanes tower of `act`, over the buffer: one loop per function (and per output set),
/// so that each is straight-line lane code and unused derivatives are never computed.
fn f32_lanes(act: Act, order: u8, x: &[f32], p: &mut [f32], d: Option<&mut [f32]>) {
    macro_rules! drive {
        ($f:expr) => {{
            let f = $f;
            match (order, d) {
                (0, None) => each_lane(x, [Some(p)], |v| [f(v)[0]]),
                (0, Some(d)) => each_lane(x, [Some(p), Some(d)], |v| {
                    let t = f(v);
                    [t[0], t[1]]
                }),
                (_, None) => each_lane(x, [Some(p)], |v| [f(v)[1]]),
                (_, Some(d)) => each_lane(x, [Some(p), Some(d)], |v| {
                    let t = f(v);
                    [t[1], t[2]]
                }),
            }
        }};
    }
    match act {
        Act::Relu => drive!(relu),
        Act::LeakyRelu(s) => drive!(|x| leaky_relu(s as f32, x)),
        Act::Tanh => drive!(tanh),
        Act::Sigmoid => drive!(sigmoid),
        Act::GeluErf => drive!(gelu_erf),
        Act::GeluTanh => drive!(gelu_tanh),
        Act::Softplus => drive!(softplus),
        Act::SoftplusThreshold => drive!(|x: V| {
            let [f, d1, d2] = softplus(x);
            let big = c(20.0);
            [big.lt_select(x, x, f), big.lt_select(x, c(1.0), d1), big.lt_select(x, c(0.0), d2)]
        }),
        Act::Elu(a) => drive!(|x| elu(a as f32, x)),
        Act::Exp => drive!(|x| {
            let e = exp_f32(x);
            [e, e, e]
        }),
        Act::Log => drive!(|x: V| {
            let r = c(1.0).div(x);
            [ln_f32(x), r, r.mul(r).neg()]
        }),
        Act::Sqrt => drive!(|x: V| {
            let r = x.sqrt();
            let d1 = c(0.5).div(r);
            // −¼/(√x·x) as −½·f′/x: √x·x overflows f32 long before the result underflows.
            [r, d1, c(-0.5).mul(d1).div(x)]
        }),
        Act::Square => drive!(|x: V| [x.mul(x), x.add(x), c(2.0)]),
        Act::Recip => drive!(|x: V| {
            let r = c(1.0).div(x);
            let r2 = r.mul(r);
            [r, r2.neg(), c(2.0).mul(r2).mul(r)]
        }),
        Act::Rsqrt(eps) => drive!(|x: V| {
            let v = x.add(c(eps as f32));
            let r = c(1.0).div(v.sqrt());
            let rv = r.div(v);
            [r, c(-0.5).mul(rv), c(0.75).mul(rv).div(v)]
        }),
        Act::Erf => drive!(|x: V| {
            // d erf(x) = 2/√π · e^(−x²) dx
            let d = c(std::f32::consts::FRAC_2_SQRT_PI).mul(exp_f32(x.mul(x).neg()));
            [erf_f32(x), d, c(-2.0).mul(x.mul(d))]
        }),
        Act::Pow(q) => {
            // f = xᵖ, f′ = p·xᵖ⁻¹, f″ = p(p − 1)·xᵖ⁻²
            let (p0, p1, p2) = (Power::new(1.0, q), Power::new(q, q - 1.0), Power::new(q * (q - 1.0), q - 2.0));
            drive!(|x: V| {
                let l = ln_f32(x.abs());
                [p0.eval(x, l), p1.eval(x, l), p2.eval(x, l)]
            })
        }
        Act::PosInfToNan => drive!(|x: V| {
            let inf = c(f32::INFINITY);
            let nan = c(f32::NAN);
            [x.eq_select(inf, nan, x), x.eq_select(inf, nan, c(1.0)), x.eq_select(inf, nan, c(0.0))]
        }),
        Act::HardSigmoid { alpha, beta } => drive!(|x: V| {
            let t = c(alpha as f32).mul(x).add(c(beta as f32));
            let zero = c(0.0);
            let d1 = zero.lt_select(t, t.lt_select(c(1.0), c(alpha as f32), zero), zero);
            nan_at_nan(x, [t.max(zero).min(c(1.0)), d1, zero])
        }),
        Act::HardSwish => drive!(|x: V| {
            let (zero, m3, p3) = (c(0.0), c(-3.0), c(3.0));
            let f = x.mul(x.add(p3).max(zero).min(c(6.0)).div(c(6.0)));
            // f′ = x/3 + ½ on the closed [−3, 3] and f″ = ⅓ on the open (−3, 3) (act.rs).
            let d1 = x.lt_select(m3, zero, x.le_select(p3, x.div(p3).add(c(0.5)), c(1.0)));
            let d2 = m3.lt_select(x, x.lt_select(p3, c(1.0 / 3.0), zero), zero);
            nan_at_nan(x, [f, d1, d2])
        }),
        Act::Silu => drive!(silu),
        Act::Clip { lo, hi } | Act::HardTanh { lo, hi } => {
            let closed = matches!(act, Act::Clip { .. });
            // The f64 bounds as f32 comparisons that agree with comparing in f64: x ≥ lo ⇔
            // x ≥ (lo rounded up), x > lo ⇔ x > (lo rounded down), and mirrored for hi.
            let (lo_up, lo_dn, hi_up, hi_dn) = (round_up(lo), round_dn(lo), round_up(hi), round_dn(hi));
            let (lo32, hi32) = (c(lo as f32), c(hi as f32));
            drive!(|x: V| {
                let (one, zero) = (c(1.0), c(0.0));
                let inside = if closed {
                    c(lo_up).le_select(x, x.le_select(c(hi_dn), one, zero), zero)
                } else {
                    c(lo_dn).lt_select(x, x.lt_select(c(hi_up), one, zero), zero)
                };
                nan_at_nan(x, [x.max(lo32).min(hi32), inside, zero])
            })
        }
    }
}

/// The smallest f32 ≥ v and the largest f32 ≤ v (±∞ stay ±∞).
fn round_up(v: f64) -> f32 {
    let f = v as f32;
    if (f as f64) < v {
        f.next_up()
    } else {
        f
    }
}
fn round_dn(v: f64) -> f32 {
    let f = v as f32;
    if (f as f64) > v {
        f.next_down()
    } else {
        f
    }
}

/// NaN in every output lane where x is NaN (the piecewise towers of act.rs return [x; 3] there).
#[inline(always)]
fn nan_at_nan(x: V, t: [V; 3]) -> [V; 3] {
    t.map(|v| x.eq_select(x, v, x))
}

#[inline(always)]
fn relu(x: V) -> [V; 3] {
    let (zero, one) = (c(0.0), c(1.0));
    nan_at_nan(x, [zero.lt_select(x, x, zero), zero.lt_select(x, one, zero), zero])
}

#[inline(always)]
fn leaky_relu(s: f32, x: V) -> [V; 3] {
    let zero = c(0.0);
    [zero.lt_select(x, x, c(s).mul(x)), zero.lt_select(x, c(1.0), c(s)), zero]
}

/// tanh with f′ = 1 − y², f″ = −2y(1 − y²) from the value: the rule the reverse sweep uses on the
/// same f32 y (so f′ is accurate to a few ulp of 1, not of itself, once |x| ≳ 1).
#[inline(always)]
fn tanh(x: V) -> [V; 3] {
    let y = tanh_f32(x);
    let [d1, d2] = Act::Tanh.derivs_from_output(y).expect("tanh has derivatives from its value");
    [y, d1, d2]
}

#[inline(always)]
fn sigmoid(x: V) -> [V; 3] {
    let s = Sigmoid::new(x);
    [s.s, s.ds, s.ds.mul(s.one_minus_2s)]
}

/// f = xσ, f′ = σ + xσ(1 − σ), f″ = σ(1 − σ)(2 + x(1 − 2σ)).
#[inline(always)]
fn silu(x: V) -> [V; 3] {
    let s = Sigmoid::new(x);
    [x.mul(s.s), x.mul_add(s.ds, s.s), s.ds.mul(x.mul_add(s.one_minus_2s, c(2.0)))]
}

/// log(1 + eˣ) = max(x, 0) + log1p(e^−|x|); f′ = σ(x), f″ = σ(1 − σ).
#[inline(always)]
fn softplus(x: V) -> [V; 3] {
    let s = Sigmoid::new(x);
    let zero = c(0.0);
    [zero.lt_select(x, x, zero).add(log1p_f32(s.e)), s.s, s.ds]
}

/// x > 0: (x, 1, 0); else α(eˣ − 1), αeˣ, αeˣ (eˣ − 1 without cancellation near 0).
#[inline(always)]
fn elu(a: f32, x: V) -> [V; 3] {
    let zero = c(0.0);
    let (e, em) = exp_expm1(x.min(zero));
    let ae = c(a).mul(e);
    [zero.lt_select(x, x, c(a).mul(em)), zero.lt_select(x, c(1.0), ae), zero.lt_select(x, zero, ae)]
}

const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// f = xΦ(x), f′ = Φ + xφ, f″ = φ(2 − x²), with Φ(x) = ½erfc(−x/√2) so that the left tail keeps
/// its relative accuracy. φ(x) and the tail of Φ underflow f32 beyond |x| = 16, so the
/// transcendentals see x clamped there (x² then stays finite: f″ = 0, not 0·∞).
#[inline(always)]
fn gelu_erf(x: V) -> [V; 3] {
    let xc = x.max(c(-16.0)).min(c(16.0));
    let x2 = xc.mul(xc);
    let phi = c(FRAC_1_SQRT_2PI).mul(exp_f32(c(-0.5).mul(x2)));
    let z = xc.mul(c(std::f32::consts::FRAC_1_SQRT_2));
    let erfc = Erf::new(z.abs()).erfc();
    let half = c(0.5).mul(erfc);
    let cdf = c(0.0).le_select(x, c(1.0).sub(half), half);
    [x.mul(cdf), x.mul_add(phi, cdf), phi.mul(c(2.0).sub(x2))]
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044715;

/// GELU's tanh form as ½x(1 + tanh u) = x·σ(v), v = 2u = 2√(2/π)(x + 0.044715x³): the σ of
/// [`Sigmoid`] keeps the left tail, where 1 + tanh u cancels. With S = σ(v), D = σ′(v):
/// f = xS, f′ = S + xDv′, f″ = 2Dv′ + xD((1 − 2S)v′² + v″) (act.rs's tower, rewritten).
/// Beyond |x| = 12, S is exactly 0 or 1 and D = 0; x is clamped there for v, v′, v″ so that
/// v′² stays finite.
#[inline(always)]
fn gelu_tanh(x: V) -> [V; 3] {
    let xc = x.max(c(-12.0)).min(c(12.0));
    let x2 = xc.mul(xc);
    let k = c(2.0 * SQRT_2_OVER_PI);
    let v = k.mul(xc).mul(c(GELU_C).mul_add(x2, c(1.0)));
    let dv = k.mul(c(3.0 * GELU_C).mul_add(x2, c(1.0)));
    let ddv = c(2.0 * SQRT_2_OVER_PI * 6.0 * GELU_C).mul(xc);
    let s = Sigmoid::new(v);
    let ddv_ = s.ds.mul(dv);
    let d2 = c(2.0).mul(ddv_).add(x.mul(s.one_minus_2s.mul(ddv_).mul_add(dv, s.ds.mul(ddv))));
    [x.mul(s.s), x.mul_add(ddv_, s.s), d2]
}

/// σ(x) and its derivatives from e = e^−|x| ∈ (0, 1], none by a cancelling difference:
/// σ = (x ≥ 0 ? 1 : e)/(1 + e), σ′ = σ(1 − σ) = e/(1 + e)², and 1 − 2σ = ±(e − 1)/(1 + e)
/// with e − 1 = expm1(−|x|) (− for x ≥ 0).
struct Sigmoid {
    e: V,
    s: V,
    ds: V,
    one_minus_2s: V,
}

impl Sigmoid {
    #[inline(always)]
    fn new(x: V) -> Self {
        let (e, em) = exp_expm1(x.abs().neg());
        let inv = c(1.0).div(c(1.0).add(e));
        let zero = c(0.0);
        let t = em.mul(inv);
        Sigmoid { e, s: zero.le_select(x, c(1.0), e).mul(inv), ds: e.mul(inv).mul(inv), one_minus_2s: zero.le_select(x, t, t.neg()) }
    }
}

/// log(1 + u) for u ≥ 0 without losing u when 1 + u rounds: log(w)·u/(w − 1) with w = 1 + u
/// (the quotient corrects w's rounding to first order; Goldberg 1991, thm. 4), and u itself
/// where w = 1.
#[inline(always)]
fn log1p_f32(u: V) -> V {
    let w = c(1.0).add(u);
    let one = c(1.0);
    w.eq_select(one, u, ln_f32(w).mul(u.div(w.sub(one))))
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO (Cephes): LN2_HI has 9 significant bits, so n·LN2_HI is exact.
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
/// 1.5·2²³: (v + ROUND) − ROUND rounds |v| < 2²² to the nearest integer (ties to even).
const ROUND: f32 = 12_582_912.0;

#[inline(always)]
fn round(v: V) -> V {
    v.add(c(ROUND)).sub(c(ROUND))
}

/// e^(hi + lo) for |lo| ≪ |hi|, lo entering after the exact reduction of hi (which an f32 sum
/// hi + lo would round away): x = n·ln2 + r, |r| ≲ ½ln2, eʳ by Cephes expf's degree-7
/// polynomial, 2ⁿ applied in two halves so that results down to the denormals (n ≥ −150) are
/// formed. Arguments are clamped to [−104, 88.8]: beyond, e^x is 0 or ∞ in f32. ≤ 1 ulp
/// (tested through the towers); NaN propagates.
#[inline(always)]
fn exp_parts(hi: V, lo: V) -> V {
    let hi = hi.min(c(88.8)).max(c(-104.0));
    let n = round(hi.add(lo).mul(c(LOG2E)));
    let r = n.mul_add(c(-LN2_HI), hi);
    let r = n.mul_add(c(-LN2_LO), r).add(lo);
    let p = c(1.9875691500e-4)
        .mul_add(r, c(1.3981999507e-3))
        .mul_add(r, c(8.3334519073e-3))
        .mul_add(r, c(4.1665795894e-2))
        .mul_add(r, c(1.6666665459e-1))
        .mul_add(r, c(5.0000001201e-1));
    let y = p.mul_add(r.mul(r), r).add(c(1.0));
    let n1 = round(n.mul(c(0.5)));
    y.mul_pow2(n1).mul_pow2(n.sub(n1))
}

/// eˣ in f32 lanes (see [`exp_parts`]).
#[inline(always)]
pub fn exp_f32(x: V) -> V {
    exp_parts(x, c(0.0))
}

/// (eˣ, eˣ − 1): below |x| = ½ln2, eˣ − 1 by its Taylor series to x⁸/8! (truncation < 10⁻⁹
/// relative), where eˣ − 1 would cancel.
#[inline(always)]
fn exp_expm1(x: V) -> (V, V) {
    let e = exp_f32(x);
    let q = c(1.0 / 40320.0)
        .mul_add(x, c(1.0 / 5040.0))
        .mul_add(x, c(1.0 / 720.0))
        .mul_add(x, c(1.0 / 120.0))
        .mul_add(x, c(1.0 / 24.0))
        .mul_add(x, c(1.0 / 6.0))
        .mul_add(x, c(0.5));
    let series = x.mul(x).mul_add(q, x);
    (e, x.abs().lt_select(c(0.346_573_6), series, e.sub(c(1.0))))
}

/// ln x in f32 lanes (Cephes logf): x = m·2ᵉ with m ∈ [√½, √2), ln m = f − f²/2 + f³P(f),
/// f = m − 1, and e·ln2 added in two parts. Denormals are scaled by 2²³ first. ≤ 1 ulp;
/// ln 0 = −∞, ln x<0 = NaN, ln ∞ = ∞, NaN propagates.
#[inline(always)]
pub fn ln_f32(x: V) -> V {
    let tiny = c(f32::MIN_POSITIVE);
    let xs = x.lt_select(tiny, x.mul(c(8_388_608.0)), x);
    let (m, e) = xs.split_exponent();
    let big = c(std::f32::consts::SQRT_2).le_select(m, c(1.0), c(0.0));
    let f = m.mul(c(1.0).sub(c(0.5).mul(big))).sub(c(1.0));
    let e = e.add(big).add(x.lt_select(tiny, c(-23.0), c(0.0)));
    let z = f.mul(f);
    let y = c(7.0376836292e-2)
        .mul_add(f, c(-1.1514610310e-1))
        .mul_add(f, c(1.1676998740e-1))
        .mul_add(f, c(-1.2420140846e-1))
        .mul_add(f, c(1.4249322787e-1))
        .mul_add(f, c(-1.6668057665e-1))
        .mul_add(f, c(2.0000714765e-1))
        .mul_add(f, c(-2.4999993993e-1))
        .mul_add(f, c(3.3333331174e-1))
        .mul(f)
        .mul(z);
    let y = e.mul_add(c(LN2_LO), y);
    let y = c(-0.5).mul_add(z, y);
    let r = e.mul_add(c(LN2_HI), f.add(y));
    let zero = c(0.0);
    let inf = c(f32::INFINITY);
    let r = x.lt_select(zero, c(f32::NAN), x.eq_select(zero, c(f32::NEG_INFINITY), x.eq_select(inf, inf, r)));
    x.eq_select(x, r, x)
}

/// Horner: coef[0] + z·(coef[1] + z·(…)) in f32, the f64 coefficients rounded.
#[inline(always)]
fn horner<const N: usize>(z: V, coef: &[f64; N]) -> V {
    let mut acc = c(coef[N - 1] as f32);
    for k in (0..N - 1).rev() {
        acc = acc.mul_add(z, c(coef[k] as f32));
    }
    acc
}

/// 1 + z·(coef[0] + z·(…)): s_erf.c's denominators.
#[inline(always)]
fn horner1<const N: usize>(z: V, coef: &[f64; N]) -> V {
    horner(z, coef).mul_add(z, c(1.0))
}

/// s_erf.c's pieces at a = |z|. Each piece is computed only if some lane needs it (a 4-lane
/// group of typical pre-activations mostly spans one or two of the five ranges), and each lane
/// then selects its own; pieces no lane needs are left 0, never selected.
struct Erf {
    a: V,
    /// PP/QQ(a²): erf(z) = z + z·ratio for |z| < 0.84375.
    ratio: V,
    /// PA/QA(a − 1): erf(a) = ERX + mid for 0.84375 ≤ a < 1.25.
    mid: V,
    /// erfc(a) for a ≥ 1.25 (and NaN): exp(−a² − 0.5625 + R/S(1/a²))/a, a² split as
    /// ah² + (a − ah)(a + ah) with ah = a to 8 significant bits (Veltkamp), so that −ah² − 0.5625
    /// is exact and the reduction in [`exp_parts`] keeps the rest (s_erf.c's trick, in f32).
    tail: V,
}

impl Erf {
    #[inline(always)]
    fn new(a: V) -> Self {
        let zero = c(0.0);
        let (b1, b2, b3) = (c(0.84375), c(1.25), c(1.0 / 0.35));
        let ratio = if a.any_lt(b1) {
            let z = a.mul(a);
            horner(z, &PP).div(horner1(z, &QQ))
        } else {
            zero
        };
        let mid = if a.lt_select(b1, b2, a).any_lt(b2) {
            let s = a.sub(c(1.0));
            horner(s, &PA).div(horner1(s, &QA))
        } else {
            zero
        };
        let tail = if a.all_lt(b2) {
            zero
        } else {
            // erfc(10.5) is below f32's denormals: clamping keeps every term finite.
            let at = a.max(b2).min(c(10.5));
            let s = c(1.0).div(at.mul(at));
            let ra = if a.lt_select(b2, b3, a).any_lt(b3) { horner(s, &RA).div(horner1(s, &SA)) } else { zero };
            let rb = if a.all_lt(b3) { zero } else { horner(s, &RB).div(horner1(s, &SB)) };
            let rs = at.lt_select(b3, ra, rb);
            let t = at.mul(c(65_537.0));
            let ah = t.sub(t.sub(at));
            let hi = c(-0.5625).sub(ah.mul(ah));
            let lo = ah.sub(at).mul(ah.add(at)).add(rs);
            exp_parts(hi, lo).div(at)
        };
        Erf { a, ratio, mid, tail }
    }
    /// erf(z) for z of absolute value a (odd: the small piece keeps the sign of z, −0 included).
    #[inline(always)]
    fn erf(&self, z: V) -> V {
        let big = self.a.lt_select(c(1.25), c(ERX as f32).add(self.mid), c(1.0).sub(self.tail));
        self.a.lt_select(c(0.84375), z.mul_add(self.ratio, z), z.lt_select(c(0.0), big.neg(), big))
    }
    /// erfc(a).
    #[inline(always)]
    fn erfc(&self) -> V {
        let one_minus_erx = (1.0 - ERX) as f32;
        let small = self.a.mul_add(self.ratio, self.a);
        self.a.lt_select(c(0.84375), c(1.0).sub(small), self.a.lt_select(c(1.25), c(one_minus_erx).sub(self.mid), self.tail))
    }
}

/// erf x in f32 lanes (NaN propagates).
#[inline(always)]
fn erf_f32(x: V) -> V {
    x.eq_select(x, Erf::new(x.abs()).erf(x), x)
}

/// k·xᵠ for constants k, q, chosen once per call: small integers by repeated multiplication
/// (exact signs, ≤ |q| + 1 roundings; k first, and 1/x for q < 0, so that no intermediate
/// overflows where the result does not), ±½ by square roots, the rest as ±e^(q·ln|x| + ln|k|)
/// (k inside the exponential for the same reason; NaN for finite x < 0, as powf).
#[derive(Clone, Copy)]
enum Power {
    Const(f32),
    Int(f32, i32),
    Sqrt(f32),
    Rsqrt(f32),
    General { sign: f32, ln_k: f32, q: f32 },
}

impl Power {
    fn new(k: f64, q: f64) -> Self {
        match q {
            0.0 => Power::Const(k as f32),
            0.5 => Power::Sqrt(k as f32),
            -0.5 => Power::Rsqrt(k as f32),
            _ if q.fract() == 0.0 && q.abs() <= 16.0 => Power::Int(k as f32, q as i32),
            _ => Power::General { sign: k.signum() as f32, ln_k: k.abs().ln() as f32, q: q as f32 },
        }
    }
    /// k·xᵠ given l = ln|x|.
    #[inline(always)]
    fn eval(self, x: V, l: V) -> V {
        match self {
            Power::Const(k) => c(k),
            Power::Int(k, n) => {
                let b = if n < 0 { c(1.0).div(x) } else { x };
                let mut r = c(k).mul(b);
                for _ in 1..n.unsigned_abs() {
                    r = r.mul(b);
                }
                r
            }
            Power::Sqrt(k) => c(k).mul(x.sqrt()),
            Power::Rsqrt(k) => c(k).div(x.sqrt()),
            Power::General { sign, ln_k, q } => {
                let r = c(sign).mul(exp_f32(c(q).mul_add(l, c(ln_k))));
                x.eq_select(c(f32::NEG_INFINITY), r, x.lt_select(c(0.0), c(f32::NAN), r))
            }
        }
    }
}
