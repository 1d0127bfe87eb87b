//! Pointwise functions as derivative towers: each is stated once as (f, f′, f″).
//!
//! Why three: the forward pass on dual numbers needs f and f′ (tangent = f′(x)·ẋ); the reverse
//! sweep's rule gx = gy·f′(x), run on dual numbers for forward-over-reverse, needs the tangent of
//! f′(x), which is f″(x)·ẋ. Nothing else about an activation is needed anywhere.

use crate::kernels::lanes::Lanes;
use crate::real::Real;

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Act {
    Relu,
    /// max(x, 0) + slope·min(x, 0)
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    /// x·Φ(x), Φ the standard normal CDF (PyTorch's gelu, approximate='none').
    GeluErf,
    /// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) (approximate='tanh').
    GeluTanh,
    /// log(1 + eˣ) (exact, no threshold; used by BCE-with-logits).
    Softplus,
    /// PyTorch's Softplus(beta=1, threshold=20): x itself where x > 20.
    SoftplusThreshold,
    /// x for x > 0, α(eˣ − 1) otherwise.
    Elu(f64),
    Exp,
    Log,
    Sqrt,
    Square,
    /// 1/x
    Recip,
    /// (x + eps)^(-1/2) (the layer-norm rstd).
    Rsqrt(f64),
    /// erf x (ONNX's Erf: PyTorch exports GELU as x·(1 + erf(x/√2))/2).
    Erf,
    /// xᵖ for a constant p (ONNX's Pow with a constant exponent).
    Pow(f64),
    /// x, but NaN at +∞ (f′ = 1): the softmax normalizer (see `Program::log_softmax`).
    PosInfToNan,
    /// max(0, min(1, αx + β)) (ONNX HardSigmoid; PyTorch's hardsigmoid is α = 1/6, β = 1/2).
    HardSigmoid { alpha: f64, beta: f64 },
    /// x·relu6(x + 3)/6 (PyTorch's hardswish, ONNX HardSwish).
    HardSwish,
    /// x·σ(x) (SiLU, swish).
    Silu,
    /// min(max(x, lo), hi), torch.clamp / ONNX Clip (±∞ for an absent bound; all hi if lo > hi).
    Clip { lo: f64, hi: f64 },
    /// The same function as F.hardtanh(x, lo, hi) (relu6 = hardtanh(0, 6)), which differs from
    /// Clip only in f′ at the bounds (see the tower).
    HardTanh { lo: f64, hi: f64 },
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
const GELU_C: f64 = 0.044715;

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Relu => "relu",
            Act::LeakyRelu(_) => "leaky_relu",
            Act::Tanh => "tanh",
            Act::Sigmoid => "sigmoid",
            Act::GeluErf => "gelu",
            Act::GeluTanh => "gelu_tanh",
            Act::Softplus => "softplus_exact",
            Act::SoftplusThreshold => "softplus",
            Act::Elu(_) => "elu",
            Act::Exp => "exp",
            Act::Log => "log",
            Act::Sqrt => "sqrt",
            Act::Square => "square",
            Act::Recip => "recip",
            Act::Rsqrt(_) => "rsqrt",
            Act::Erf => "erf",
            Act::Pow(_) => "pow",
            Act::PosInfToNan => "pos_inf_to_nan",
            Act::HardSigmoid { .. } => "hard_sigmoid",
            Act::HardSwish => "hard_swish",
            Act::Silu => "silu",
            Act::Clip { .. } => "clip",
            Act::HardTanh { .. } => "hardtanh",
        }
    }

    /// The `order`-th derivative (0, 1 or 2) at x.
    #[inline]
    pub fn eval<T: Real>(self, order: u8, x: T) -> T {
        T::from_f64(self.tower(x.to_f64())[order as usize])
    }

    /// [f′(x), f″(x)] from y = f(x) alone, for functions whose derivatives are functions of
    /// their value: the reverse sweep then needs no transcendental at all (it has y). In the
    /// program's own precision (a few multiplies per element of every pass), over lanes so that
    /// `kernels::towers::from_output` runs it vectorized; f64 lanes give the scalar f64 results
    /// bit for bit (the same IEEE operations, in the same order, no fused multiply-add).
    #[inline(always)]
    pub fn derivs_from_output<V: Lanes>(self, y: V) -> Option<[V; 2]> {
        let one = V::splat(V::Elem::ONE);
        let zero = V::splat(V::Elem::ZERO);
        match self {
            Act::Tanh => {
                let d = one.sub(y.mul(y));
                Some([d, y.add(y).neg().mul(d)])
            }
            Act::Sigmoid => {
                let d = y.mul(one.sub(y));
                Some([d, d.mul(one.sub(y.add(y)))])
            }
            Act::Exp => Some([y, y]),
            Act::Relu => Some([zero.lt_select(y, one, zero), zero]),
            _ => None,
        }
    }

    /// Whether [`Act::derivs_from_output`] has a rule for this function.
    pub fn has_derivs_from_output(self) -> bool {
        self.derivs_from_output(crate::kernels::lanes::F64x2::splat(0.0)).is_some()
    }

    /// The elementwise kernel that computes f itself (SIMD where it has a vector form), for
    /// functions whose derivatives then follow from the value ([`Act::derivs_from_output`]).
    pub fn value_kernel(self) -> Option<crate::kernels::Unary> {
        use crate::kernels::Unary;
        match self {
            Act::Tanh => Some(Unary::Tanh),
            Act::Sigmoid => Some(Unary::Sigmoid),
            Act::Exp => Some(Unary::Exp),
            Act::Relu => Some(Unary::Relu),
            _ => None,
        }
    }

    /// [f(x), f′(x), f″(x)] in f64 with one evaluation of the transcendental: what f64 programs
    /// (and f32 ones on the scalar kernels) evaluate. f32 programs on the SIMD kernels evaluate the
    /// same derivatives in f32 lanes, rewritten where these formulas would cancel in f32
    /// (`kernels::towers`; accuracy tested against these in tests/towers_f32.rs).
    pub fn tower(self, x: f64) -> [f64; 3] {
        let pick = |f: f64, d1: f64, d2: f64| [f, d1, d2];
        match self {
            Act::Relu => {
                if x.is_nan() {
                    [x; 3]
                } else if x > 0.0 {
                    pick(x, 1.0, 0.0)
                } else {
                    pick(0.0, 0.0, 0.0)
                }
            }
            Act::LeakyRelu(s) => {
                if x > 0.0 {
                    pick(x, 1.0, 0.0)
                } else {
                    pick(s * x, s, 0.0)
                }
            }
            Act::Tanh => {
                let y = x.tanh();
                let d = 1.0 - y * y;
                pick(y, d, -2.0 * y * d)
            }
            Act::Sigmoid => {
                let s = sigmoid(x);
                let d = s * (1.0 - s);
                pick(s, d, d * (1.0 - 2.0 * s))
            }
            Act::GeluErf => {
                let phi = INV_SQRT_2PI * (-0.5 * x * x).exp();
                let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
                pick(x * cdf, cdf + x * phi, phi * (2.0 - x * x))
            }
            Act::GeluTanh => {
                let u = SQRT_2_OVER_PI * (x + GELU_C * x * x * x);
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
                let ddu = SQRT_2_OVER_PI * 6.0 * GELU_C * x;
                let t = u.tanh();
                let sech2 = 1.0 - t * t;
                let f = 0.5 * x * (1.0 + t);
                let d1 = 0.5 * (1.0 + t) + 0.5 * x * sech2 * du;
                let d2 = sech2 * du + 0.5 * x * sech2 * (ddu - 2.0 * t * du * du);
                pick(f, d1, d2)
            }
            Act::Softplus => {
                // log(1 + eˣ) = max(x, 0) + log1p(e^−|x|): no overflow for large |x|.
                let s = sigmoid(x);
                pick(x.max(0.0) + (-x.abs()).exp().ln_1p(), s, s * (1.0 - s))
            }
            Act::SoftplusThreshold => {
                if x > 20.0 {
                    pick(x, 1.0, 0.0)
                } else {
                    Act::Softplus.tower(x)
                }
            }
            Act::Elu(a) => {
                if x > 0.0 {
                    pick(x, 1.0, 0.0)
                } else {
                    let e = x.exp();
                    pick(a * (e - 1.0), a * e, a * e)
                }
            }
            Act::Exp => {
                let e = x.exp();
                pick(e, e, e)
            }
            Act::Log => pick(x.ln(), 1.0 / x, -1.0 / (x * x)),
            Act::Sqrt => {
                let r = x.sqrt();
                pick(r, 0.5 / r, -0.25 / (r * x))
            }
            Act::Square => pick(x * x, 2.0 * x, 2.0),
            Act::Recip => pick(1.0 / x, -1.0 / (x * x), 2.0 / (x * x * x)),
            // d erf(x) = 2/√π · e^(−x²) dx
            Act::Erf => {
                let d = 2.0 * INV_SQRT_2PI * std::f64::consts::SQRT_2 * (-x * x).exp();
                pick(erf(x), d, -2.0 * x * d)
            }
            // d xᵖ = p·xᵖ⁻¹ dx
            Act::Pow(p) => pick(x.powf(p), p * x.powf(p - 1.0), p * (p - 1.0) * x.powf(p - 2.0)),
            Act::PosInfToNan => {
                if x == f64::INFINITY {
                    [f64::NAN; 3]
                } else {
                    pick(x, 1.0, 0.0)
                }
            }
            Act::Rsqrt(eps) => {
                let v = x + eps;
                let r = 1.0 / v.sqrt();
                pick(r, -0.5 * r / v, 0.75 * r / (v * v))
            }
            // Piecewise linear in t = αx + β. f′ = α strictly inside 0 < t < 1 and 0 at and
            // beyond the kinks (PyTorch's hardsigmoid_backward: α where −3 < x < 3); f″ = 0.
            Act::HardSigmoid { alpha, beta } => {
                if x.is_nan() {
                    return [x; 3];
                }
                let t = alpha * x + beta;
                pick(t.clamp(0.0, 1.0), if t > 0.0 && t < 1.0 { alpha } else { 0.0 }, 0.0)
            }
            // f = x·relu6(x + 3)/6: 0 below −3, x(x + 3)/6 on [−3, 3], x above 3. PyTorch's
            // hardswish_backward takes the inner branch on the closed interval (f′ = x/3 + 1/2,
            // so −1/2 at −3 and 3/2 at 3) and its double backward takes f″ = 1/3 on the open
            // interval only (0 at ±3); both are kept here, digit for digit.
            Act::HardSwish => {
                if x.is_nan() {
                    return [x; 3];
                }
                let f = x * (x + 3.0).clamp(0.0, 6.0) / 6.0;
                let d1 = if x < -3.0 {
                    0.0
                } else if x <= 3.0 {
                    x / 3.0 + 0.5
                } else {
                    1.0
                };
                pick(f, d1, if x > -3.0 && x < 3.0 { 1.0 / 3.0 } else { 0.0 })
            }
            // f = xσ, f′ = σ + xσ(1 − σ) = σ(1 + x(1 − σ)), f″ = σ(1 − σ)(2 + x(1 − 2σ)).
            Act::Silu => {
                let s = sigmoid(x);
                pick(x * s, s * (1.0 + x * (1.0 - s)), s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s)))
            }
            // torch.clamp's backward passes the gradient where lo ≤ x ≤ hi (closed; nowhere if
            // lo > hi, where f ≡ hi); F.hardtanh's where lo < x < hi (open; so relu6′(0) = 0, as
            // relu′(0) = 0). f″ = 0 for both. NaN stays NaN (clamp propagates it).
            Act::Clip { lo, hi } | Act::HardTanh { lo, hi } => {
                if x.is_nan() {
                    return [x; 3];
                }
                let inside = if matches!(self, Act::Clip { .. }) { lo <= x && x <= hi } else { lo < x && x < hi };
                pick(x.max(lo).min(hi), if inside { 1.0 } else { 0.0 }, 0.0)
            }
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

// s_erf.c's coefficients (W. J. Cody), digit for digit: erf below in f64, and the f32 lanes
// (`kernels::towers`) evaluate the same rational functions rounded to f32.
// erf(x) = x + x·PP(x²)/QQ(x²) for |x| < 0.84375; EFX = 2/√π − 1.
#[allow(clippy::excessive_precision)]
pub(crate) const EFX: f64 = 1.28379167095512586316e-01;
#[allow(clippy::excessive_precision)]
pub(crate) const PP: [f64; 5] = [1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02, -5.77027029648944159157e-03, -2.37630166566501626084e-05];
#[allow(clippy::excessive_precision)]
pub(crate) const QQ: [f64; 5] = [3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03, 1.32494738004321644526e-04, -3.96022827877536812320e-06];
// erf(x) = ERX + PA(s)/QA(s), s = |x| − 1, for 0.84375 ≤ |x| < 1.25.
#[allow(clippy::excessive_precision)]
pub(crate) const ERX: f64 = 8.45062911510467529297e-01;
#[allow(clippy::excessive_precision)]
pub(crate) const PA: [f64; 7] = [-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01, 3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02, -2.16637559486879084300e-03];
#[allow(clippy::excessive_precision)]
pub(crate) const QA: [f64; 6] = [1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02, 1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02];
// erfc(x) = exp(−x² − 0.5625 + R(s)/S(s))/x, s = 1/x², with RA/SA for 1.25 ≤ x < 1/0.35 and
// RB/SB for 1/0.35 ≤ x < 28.
#[allow(clippy::excessive_precision)]
pub(crate) const RA: [f64; 8] = [-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01, -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02, -8.12874355063065934246e+01, -9.81432934416914548592e+00];
#[allow(clippy::excessive_precision)]
pub(crate) const SA: [f64; 8] = [1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02, 6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02, 6.57024977031928170135e+00, -6.04244152148580987438e-02];
#[allow(clippy::excessive_precision)]
pub(crate) const RB: [f64; 7] = [-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01, -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03, -4.83519191608651397019e+02];
#[allow(clippy::excessive_precision)]
pub(crate) const SB: [f64; 7] = [3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03, 3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02, -2.24409524465858183362e+01];

#[allow(clippy::excessive_precision)] // the published constants, digit for digit
/// erf to full f64 precision (std has none). W. J. Cody's rational approximations (as in
/// FreeBSD's libm s_erf.c): |error| < 1 ulp-ish, far below what the golden tests resolve.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    let r = if ax < 0.84375 {
        let z = x * x;
        let p = PP[0] + z * (PP[1] + z * (PP[2] + z * (PP[3] + z * PP[4])));
        let q = 1.0 + z * (QQ[0] + z * (QQ[1] + z * (QQ[2] + z * (QQ[3] + z * QQ[4]))));
        return if ax < 1e-300 { x + EFX * x } else { x + x * (p / q) };
    } else if ax < 1.25 {
        let s = ax - 1.0;
        let p = PA[0] + s * (PA[1] + s * (PA[2] + s * (PA[3] + s * (PA[4] + s * (PA[5] + s * PA[6])))));
        let q = 1.0 + s * (QA[0] + s * (QA[1] + s * (QA[2] + s * (QA[3] + s * (QA[4] + s * QA[5])))));
        ERX + p / q
    } else if ax >= 6.0 {
        1.0 - 1e-300
    } else {
        1.0 - erfc_tail(ax)
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// erfc(x) for 1.25 ≤ x < 6 (s_erf.c's ra/sa and rb/sb ranges).
#[allow(clippy::excessive_precision)]
fn erfc_tail(x: f64) -> f64 {
    let s = 1.0 / (x * x);
    let (r, q) = if x < 1.0 / 0.35 {
        (
            RA[0] + s * (RA[1] + s * (RA[2] + s * (RA[3] + s * (RA[4] + s * (RA[5] + s * (RA[6] + s * RA[7])))))),
            1.0 + s * (SA[0] + s * (SA[1] + s * (SA[2] + s * (SA[3] + s * (SA[4] + s * (SA[5] + s * (SA[6] + s * SA[7]))))))),
        )
    } else {
        (
            RB[0] + s * (RB[1] + s * (RB[2] + s * (RB[3] + s * (RB[4] + s * (RB[5] + s * RB[6]))))),
            1.0 + s * (SB[0] + s * (SB[1] + s * (SB[2] + s * (SB[3] + s * (SB[4] + s * (SB[5] + s * SB[6])))))),
        )
    };
    // z = x rounded to 32 significant bits, as s_erf.c does, so exp(-z²) is computed exactly.
    let z = f64::from_bits(x.to_bits() & 0xffff_ffff_0000_0000);
    (-z * z - 0.5625).exp() * ((z - x) * (z + x) + r / q).exp() / x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::lanes::F64x2;

    #[test]
    fn erf_matches_known_values() {
        // erf values from mpmath at 30 digits.
        for (x, want) in [(0.1, 0.112462916018284892203), (0.5, 0.520499877813046537682), (1.0, 0.842700792949714869341), (2.0, 0.995322265018952734162), (3.5, 0.999999256901627658587), (-0.7, -0.677801193837418472976)] {
            assert!((erf(x) - want).abs() < 2e-16, "erf({x}) = {} want {want}", erf(x));
        }
    }

    /// Each tower's f′ and f″ against central differences of the level below.
    #[test]
    fn towers_are_consistent_with_finite_differences() {
        let acts = [Act::Relu, Act::LeakyRelu(0.1), Act::Tanh, Act::Sigmoid, Act::GeluErf, Act::GeluTanh, Act::Softplus, Act::SoftplusThreshold, Act::Elu(1.3), Act::Exp, Act::Log, Act::Sqrt, Act::Square, Act::Recip, Act::Rsqrt(1e-5), Act::Erf, Act::Pow(3.0), Act::Pow(-1.5), Act::Pow(0.7),
            Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, Act::HardSigmoid { alpha: 0.2, beta: 0.5 }, Act::HardSwish, Act::Silu,
            Act::Clip { lo: -1.0, hi: 2.0 }, Act::Clip { lo: f64::NEG_INFINITY, hi: 0.5 }, Act::HardTanh { lo: 0.0, hi: 6.0 }];
        for act in acts {
            for x in [-4.1, -2.3, -0.7, 0.31, 1.4, 3.9, 7.5] {
                let x = if matches!(act, Act::Log | Act::Sqrt | Act::Rsqrt(_) | Act::Pow(_)) { x.abs() } else { x };
                for order in 0..2u8 {
                    let h = 1e-5;
                    let o = order as usize;
                    let fd = (act.tower(x + h)[o] - act.tower(x - h)[o]) / (2.0 * h);
                    let exact = act.tower(x)[o + 1];
                    if let Some(d) = act.derivs_from_output(F64x2::splat(act.tower(x)[0])) {
                        assert!((d[o].reduce_max() - exact).abs() <= 1e-12 * (1.0 + exact.abs()), "{act:?} from output");
                    }
                    assert!((fd - exact).abs() <= 1e-6 * (1.0 + exact.abs()), "{act:?} order {} at {x}: fd {fd} vs {exact}", order + 1);
                }
            }
        }
    }

    /// Values against their defining formulas (written independently of the towers).
    #[test]
    fn new_activations_match_their_formulas() {
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        for x in [-7.0, -3.0, -2.9, -0.4, 0.0, 1.1, 2.99, 3.0, 6.0, 6.5] {
            let relu6 = |v: f64| v.max(0.0).min(6.0);
            // αx + β and PyTorch's (x + 3)/6 round differently (an ulp).
            assert!((Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }.tower(x)[0] - (x + 3.0).max(0.0).min(6.0) / 6.0).abs() <= 4e-16);
            assert_eq!(Act::HardSwish.tower(x)[0], x * relu6(x + 3.0) / 6.0);
            assert!((Act::Silu.tower(x)[0] - x * sig(x)).abs() <= 1e-15 * (1.0 + x.abs()));
            assert_eq!(Act::HardTanh { lo: 0.0, hi: 6.0 }.tower(x)[0], relu6(x));
            assert_eq!(Act::Clip { lo: -1.0, hi: 2.0 }.tower(x)[0], x.max(-1.0).min(2.0));
        }
        // torch.clamp with min > max gives max everywhere, with gradient 0.
        assert_eq!(Act::Clip { lo: 3.0, hi: 1.0 }.tower(0.0), [1.0, 0.0, 0.0]);
        assert_eq!(Act::Clip { lo: 3.0, hi: 1.0 }.tower(5.0), [1.0, 0.0, 0.0]);
        for act in [Act::HardSigmoid { alpha: 0.2, beta: 0.5 }, Act::HardSwish, Act::Clip { lo: 0.0, hi: 1.0 }, Act::HardTanh { lo: 0.0, hi: 1.0 }, Act::Silu] {
            assert!(act.tower(f64::NAN).iter().all(|v| v.is_nan()), "{act:?} at NaN");
        }
    }

    /// At the kinks each tower returns what PyTorch's backward (and double backward) returns
    /// there: the derivative is a choice at a kink, and hesse's choice is PyTorch's.
    #[test]
    fn kinks_follow_pytorch() {
        let d = |a: Act, x: f64| [a.tower(x)[1], a.tower(x)[2]];
        // hardsigmoid_backward: 1/6 where −3 < x < 3 (open), else 0; double backward 0.
        let hs = Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 };
        assert_eq!(d(hs, -3.0), [0.0, 0.0]);
        assert_eq!(d(hs, 3.0), [0.0, 0.0]);
        assert_eq!(d(hs, 0.0), [1.0 / 6.0, 0.0]);
        // hardswish_backward: x/3 + 1/2 on the closed [−3, 3]; double backward 1/3 on (−3, 3).
        assert_eq!(d(Act::HardSwish, -3.0), [-0.5, 0.0]);
        assert_eq!(d(Act::HardSwish, 3.0), [1.5, 0.0]);
        assert_eq!(d(Act::HardSwish, 0.0), [0.5, 1.0 / 3.0]);
        assert_eq!(d(Act::HardSwish, -3.5), [0.0, 0.0]);
        assert_eq!(d(Act::HardSwish, 3.5), [1.0, 0.0]);
        // hardtanh_backward (relu6): 0 at both bounds; clamp's backward: 1 at both bounds.
        let relu6 = Act::HardTanh { lo: 0.0, hi: 6.0 };
        assert_eq!(d(relu6, 0.0), [0.0, 0.0]);
        assert_eq!(d(relu6, 6.0), [0.0, 0.0]);
        let clip = Act::Clip { lo: 0.0, hi: 6.0 };
        assert_eq!(d(clip, 0.0), [1.0, 0.0]);
        assert_eq!(d(clip, 6.0), [1.0, 0.0]);
        assert_eq!(d(clip, 6.5), [0.0, 0.0]);
        // relu: threshold_backward on the result, 0 at 0.
        assert_eq!(d(Act::Relu, 0.0), [0.0, 0.0]);
        // leaky_relu_backward: x > 0 ? 1 : slope, so slope at 0.
        assert_eq!(d(Act::LeakyRelu(0.1), 0.0), [0.1, 0.0]);
        // elu_backward (is_result = false): x ≤ 0 ? α·eˣ : 1, so α at 0; its double backward α·eˣ there.
        assert_eq!(d(Act::Elu(1.3), 0.0), [1.3, 1.3]);
        assert_eq!(Act::Elu(1.3).tower(0.0)[0], 0.0);
        // softplus (β = 1, threshold 20): x > 20 is the identity; x = 20 is still log1p(eˣ).
        let sp = Act::SoftplusThreshold;
        assert_eq!(sp.tower(20.5), [20.5, 1.0, 0.0]);
        let at20 = sp.tower(20.0);
        assert!((at20[0] - (20.0 + (-20f64).exp().ln_1p())).abs() < 1e-13 && at20[1] < 1.0 && at20[2] > 0.0, "{at20:?}");
        // GELU (erf): f′(0) = Φ(0) = 1/2, f″(0) = 2φ(0) = 2/√(2π); tanh form: f′(0) = 1/2,
        // f″(0) = √(2/π).
        let g = Act::GeluErf.tower(0.0);
        assert_eq!([g[1], g[2]], [0.5, 2.0 * INV_SQRT_2PI]);
        let g = Act::GeluTanh.tower(0.0);
        assert_eq!([g[1], g[2]], [0.5, SQRT_2_OVER_PI]);
        // GELU against PyTorch's published formula values at x = 1 (erf: 0.8413447460685429).
        assert!((Act::GeluErf.tower(1.0)[0] - 0.841_344_746_068_542_9).abs() < 1e-15);
        assert!((Act::GeluTanh.tower(1.0)[0] - 0.5 * (1.0 + (SQRT_2_OVER_PI * (1.0 + GELU_C)).tanh())).abs() < 1e-15);
    }
}
