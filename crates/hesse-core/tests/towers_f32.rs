//! The f32 lane towers (kernels/towers.rs) against float64 references, on dense grids (2²⁰
//! points a function: uniform over its useful range plus log-spaced magnitudes down to the
//! denormals) and at the extremes: ±0, denormals, where exp over/underflows, ±f32::MAX, ±∞, NaN,
//! and the kinks of the piecewise functions (PyTorch's conventions, as act.rs states them).
//!
//! Error measure: |got − ref| in ulps of max(|ref|, floor), divided by 1 + κ, κ = |x·g′(x)/g(x)|
//! the condition number of the derivative g = f⁽ᵏ⁾ being checked. An f32 input is exact but
//! every f32 intermediate is rounded, so a result as if computed at x(1 + δ), |δ| ≤ a few ε, is
//! the best an f32 evaluation can promise: its error is a few ulp times (1 + κ). The floor is
//! the smallest normal f32 (so a denormal result is measured in denormal steps), except for
//! tanh's f′, f″, which come from the f32 value as 1 − y² (the rule the reverse sweep uses on
//! the same y): there the floor is 1, i.e. the error is absolute, in ulps of 1, because
//! 1 − y² cancels once |x| ≳ 1. The bounds reached are in `SPECS`; run with `--nocapture` to
//! see the measured maxima.

use hesse_core::autodiff::act::{erf, Act};
use hesse_core::kernels::towers::{from_output, Towers};
use hesse_core::kernels::Isa;

/// One function under test: its grid, and per order the bound (in the measure above) and floor.
/// The bounds are the measured maxima rounded up (portable lanes natively; simd128 performs the
/// same IEEE operations in the same order, so the wasm build computes the same values).
struct Spec {
    act: Act,
    /// Uniform grid over [lo, hi].
    lo: f64,
    hi: f64,
    /// Bound on the cond-scaled ulp error of f, f′, f″.
    bound: [f64; 3],
    /// The floor of the ulp scale of f, f′, f″.
    floor: [f64; 3],
}

const TINY: f64 = f32::MIN_POSITIVE as f64;

fn spec(act: Act, lo: f64, hi: f64, bound: [f64; 3]) -> Spec {
    Spec { act, lo, hi, bound, floor: [TINY; 3] }
}

fn specs() -> Vec<Spec> {
    vec![
        spec(Act::Relu, -10.0, 10.0, [0.0, 0.0, 0.0]),
        spec(Act::LeakyRelu(0.1), -10.0, 10.0, [1.0, 0.5, 0.0]),
        Spec { floor: [TINY, 1.0, 1.0], ..spec(Act::Tanh, -10.0, 10.0, [8.0, 2.0, 2.0]) },
        spec(Act::Sigmoid, -30.0, 30.0, [3.0, 4.0, 5.0]),
        spec(Act::GeluErf, -12.0, 12.0, [3.0, 4.0, 3.0]),
        Spec { floor: [TINY, 1e-30, 1e-30], ..spec(Act::GeluTanh, -12.0, 12.0, [4.0, 6.0, 14.0]) },
        spec(Act::Softplus, -30.0, 30.0, [2.0, 3.0, 4.0]),
        spec(Act::SoftplusThreshold, -30.0, 30.0, [2.0, 3.0, 4.0]),
        spec(Act::Elu(1.3), -20.0, 10.0, [2.0, 2.0, 2.0]),
        spec(Act::Exp, -105.0, 90.0, [1.0, 1.0, 1.0]),
        spec(Act::Log, 0.0, 10.0, [1.0, 1.0, 1.0]),
        spec(Act::Sqrt, 0.0, 10.0, [1.0, 1.0, 1.0]),
        spec(Act::Square, -10.0, 10.0, [0.5, 0.5, 0.0]),
        spec(Act::Recip, -10.0, 10.0, [1.0, 1.0, 1.0]),
        spec(Act::Rsqrt(1e-5), 0.0, 10.0, [2.0, 4.0, 4.0]),
        spec(Act::Erf, -6.0, 6.0, [1.0, 2.0, 3.0]),
        spec(Act::Pow(3.0), -10.0, 10.0, [1.0, 1.0, 1.0]),
        spec(Act::Pow(-2.0), -10.0, 10.0, [1.0, 1.0, 2.0]),
        spec(Act::Pow(0.7), 0.0, 10.0, [2.0, 3.0, 3.0]),
        spec(Act::Pow(-1.5), 0.0, 10.0, [2.0, 3.0, 3.0]),
        spec(Act::PosInfToNan, -10.0, 10.0, [0.0, 0.0, 0.0]),
        spec(Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, -5.0, 5.0, [1.0, 0.5, 0.0]),
        spec(Act::HardSigmoid { alpha: 0.2, beta: 0.5 }, -5.0, 5.0, [1.0, 0.5, 0.0]),
        spec(Act::HardSwish, -5.0, 5.0, [2.0, 1.0, 0.5]),
        spec(Act::Silu, -30.0, 30.0, [2.0, 6.0, 7.0]),
        spec(Act::Clip { lo: -1.0, hi: 2.0 }, -5.0, 5.0, [0.0, 0.0, 0.0]),
        spec(Act::Clip { lo: f64::NEG_INFINITY, hi: 0.1 }, -5.0, 5.0, [0.5, 0.0, 0.0]),
        spec(Act::HardTanh { lo: 0.0, hi: 6.0 }, -10.0, 10.0, [0.0, 0.0, 0.0]),
        spec(Act::HardTanh { lo: -0.3, hi: 0.3 }, -1.0, 1.0, [0.5, 0.0, 0.0]),
    ]
}

/// σ(x) = 1/(1 + e⁻ˣ) and σ′ = e/(1 + e)², e = e^−|x|, accurate in both tails.
fn sig(x: f64) -> (f64, f64) {
    let e = (-x.abs()).exp();
    (1.0 / (1.0 + (-x).exp()), e / ((1.0 + e) * (1.0 + e)))
}

/// Φ(x), the normal CDF: from erf where 1 + erf does not cancel, and below −3 as φ(x)·R(−x),
/// R(t) = 1/(t + 1/(t + 2/(t + 3/(t + …)))) the Mills ratio (Laplace's continued fraction,
/// evaluated bottom-up from depth 200: converged to f64 for t ≥ 3).
fn ncdf(x: f64) -> f64 {
    if x >= -3.0 {
        return 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
    }
    let t = -x;
    let mut r = t;
    for k in (1..=200).rev() {
        r = t + k as f64 / r;
    }
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt() / r
}

/// [f, f′, f″] in f64, accurate to well below f32's ulp. This is `Act::tower` except where the
/// f64 formula itself cancels beyond f32 accuracy in a tail (1 − σ for large x, 1 + erf and
/// 1 + tanh far left, eˣ − 1 near 0); those use the same functions without the cancellation, and
/// `references_match_the_f64_towers` checks they are the same functions where both are accurate.
fn reference(act: Act, x: f64) -> [f64; 3] {
    match act {
        Act::Sigmoid => {
            let (s, d) = sig(x);
            [s, d, -d * (0.5 * x).tanh()]
        }
        Act::Softplus => {
            let (s, d) = sig(x);
            [act.tower(x)[0], s, d]
        }
        Act::SoftplusThreshold if x <= 20.0 => reference(Act::Softplus, x),
        Act::Silu => {
            let (s, d) = sig(x);
            [x * s, s + x * d, d * (2.0 - x * (0.5 * x).tanh())]
        }
        Act::GeluErf => {
            let (p, phi) = (ncdf(x), (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt());
            [x * p, p + x * phi, phi * (2.0 - x * x)]
        }
        Act::GeluTanh => {
            // ½x(1 + tanh u) = x·σ(2u).
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let (v, dv, ddv) = (2.0 * k * (x + 0.044715 * x * x * x), 2.0 * k * (1.0 + 3.0 * 0.044715 * x * x), 2.0 * k * 6.0 * 0.044715 * x);
            let (s, d) = sig(v);
            [x * s, s + x * d * dv, 2.0 * d * dv + x * d * (-(0.5 * v).tanh() * dv * dv + ddv)]
        }
        Act::Elu(a) if x <= 0.0 => [a * x.exp_m1(), a * x.exp(), a * x.exp()],
        _ => act.tower(x),
    }
}

/// The f32 tower through the public entry point: (f⁽ᵒ⁾, f⁽ᵒ⁺¹⁾) for order o.
fn run(act: Act, order: u8, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut p, mut d) = (vec![0f32; x.len()], vec![0f32; x.len()]);
    f32::towers(Isa::Simd, act, order, x, &mut p, Some(&mut d));
    (p, d)
}

/// All three derivatives at x: orders 0 and 1 (so both output sets of both orders are used).
fn run3(act: Act, x: &[f32]) -> [Vec<f32>; 3] {
    let (f, d1) = run(act, 0, x);
    let (d1b, d2) = run(act, 1, x);
    for (i, (a, b)) in d1.iter().zip(&d1b).enumerate() {
        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{act:?}: f′ differs between orders at {}", x[i]);
    }
    let mut p = vec![0f32; x.len()];
    f32::towers(Isa::Simd, act, 0, x, &mut p, None);
    assert!(p.iter().zip(&f).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())), "{act:?}: value-only differs");
    [f, d1, d2]
}

/// The ulp of an f32 of magnitude m (for m below the normal range: the denormal step).
fn ulp(m: f64) -> f64 {
    let m = m.max(TINY);
    2f64.powi(m.log2().floor() as i32 - 23)
}

/// 2²⁰ points: half uniform over [lo, hi], half ±10^u with u uniform in [−45, 39] (every binade,
/// denormals and overflow included), all rounded to f32, plus the extremes.
fn grid(lo: f64, hi: f64) -> Vec<f32> {
    let n = 1 << 19;
    let mut xs: Vec<f32> = (0..n).map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32).collect();
    for i in 0..n {
        let m = 10f64.powf(-45.0 + 84.0 * i as f64 / n as f64) as f32;
        xs.push(if i % 2 == 0 { m } else { -m });
    }
    let mut extremes = vec![0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, f32::MAX, -f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0, -1.0];
    for v in [20.0f32, 88.0, 88.72, 88.73, 89.0, 103.0, 103.97, 104.0, 150.0, 1e10, 1e20, 1e30] {
        extremes.extend([v, -v, v.next_up(), -v.next_up(), v.next_down(), -v.next_down()]);
    }
    xs.extend(extremes);
    xs
}

/// Checks one function over xs: the largest measured error per order, and the violations.
fn check(s: &Spec, xs: &[f32], fails: &mut Vec<String>) -> [f64; 3] {
    let got = run3(s.act, xs);
    let mut worst = [0f64; 3];
    let mut worst_at = [0f32; 3];
    for (i, &x) in xs.iter().enumerate() {
        let xd = x as f64;
        let r = reference(s.act, xd);
        for k in 0..3 {
            let (g, want) = (got[k][i] as f64, r[k]);
            let w32 = want as f32;
            if want.is_nan() || g.is_nan() {
                // At ±∞ the f64 towers' NaN is often an ∞·0 artifact (GELU's f′(∞)); elsewhere NaN
                // must match NaN.
                if !(x.is_infinite() && want.is_nan() || want.is_nan() == g.is_nan()) {
                    fails.push(format!("{:?} f{} at {x:e}: got {g:e}, want {want:e}", s.act, "′".repeat(k)));
                }
                continue;
            }
            if w32.is_infinite() || g.is_infinite() {
                if g as f32 != w32 {
                    fails.push(format!("{:?} f{} at {x:e}: got {g:e}, want {want:e}", s.act, "′".repeat(k)));
                }
                continue;
            }
            let kappa = condition(s.act, k, xd, &r);
            let e = (g - want).abs() / ulp(want.abs().max(s.floor[k])) / (1.0 + kappa);
            if e > worst[k] {
                worst[k] = e;
                worst_at[k] = x;
            }
            if e > s.bound[k] {
                fails.push(format!("{:?} f{} at {x:e}: got {g:e}, want {want:e}: {e:.2} ulp/(1 + κ), κ = {kappa:.3e}, bound {}", s.act, "′".repeat(k), s.bound[k]));
            }
        }
    }
    println!("{:<48} {:>8.2} {:>8.2} {:>8.2}   (worst at {:e}, {:e}, {:e})", format!("{:?}", s.act), worst[0], worst[1], worst[2], worst_at[0], worst_at[1], worst_at[2]);
    worst
}

/// κ = |x·g′/g| for g = f⁽ᵏ⁾ (g′ from the next level where the tower has it, else a central
/// difference of the reference), capped at 10⁸ (so exact zeros of g still need an error below
/// 10⁻³⁶). xᵖ is e^(p ln x) in f32: its f32 error grows with |p ln x|, not |p|.
fn condition(act: Act, k: usize, x: f64, r: &[f64; 3]) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let slope = if k < 2 {
        r[k + 1]
    } else {
        let h = 1e-6 * x.abs();
        (reference(act, x + h)[2] - reference(act, x - h)[2]) / (2.0 * h)
    };
    let mut kappa = (x * slope / r[k]).abs();
    if let Act::Pow(p) = act {
        kappa = kappa.max(((p - k as f64) * x.abs().ln()).abs());
    }
    if kappa.is_nan() {
        1e8
    } else {
        kappa.min(1e8)
    }
}

#[test]
fn f32_towers_are_within_their_bounds_on_dense_grids() {
    println!("{:<48} {:>8} {:>8} {:>8}   max ulp/(1 + κ) of f, f′, f″", "function", "f", "f′", "f″");
    let mut fails = Vec::new();
    for s in specs() {
        check(&s, &grid(s.lo, s.hi), &mut fails);
    }
    let mut shown = std::collections::HashMap::new();
    for f in &fails {
        let n = shown.entry(f.split(" f").next().unwrap_or("").to_string()).or_insert(0);
        *n += 1;
        if *n <= 4 {
            println!("FAIL {f}");
        }
    }
    assert!(fails.is_empty(), "{} points out of bounds", fails.len());
}

/// The tail-safe references are the f64 towers where the latter do not cancel.
#[test]
fn references_match_the_f64_towers() {
    for s in specs() {
        for i in 0..=600 {
            let x = -3.0 + 6.0 * i as f64 / 600.0;
            let x = if s.lo >= 0.0 { x.abs() + 0.01 } else { x };
            let (r, t) = (reference(s.act, x), s.act.tower(x));
            for k in 0..3 {
                assert!(r[k] == t[k] || (r[k] - t[k]).abs() <= 1e-12 * (1.0 + t[k].abs()), "{:?} f{} at {x}: {} vs {}", s.act, "′".repeat(k), r[k], t[k]);
            }
        }
    }
    // Φ's continued fraction against erf-based values where both are accurate.
    for x in [-3.0, -3.5, -4.0] {
        let a = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
        let t = -x;
        let mut r = t;
        for k in (1..=200).rev() {
            r = t + k as f64 / r;
        }
        let b = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt() / r;
        assert!((a - b).abs() <= 1e-11 * a, "Φ({x}): {a} vs {b}");
    }
}

/// At the kinks the f32 towers make PyTorch's choices, exactly as the f64 towers do.
#[test]
fn kinks_follow_the_f64_towers_exactly() {
    let cases: Vec<(Act, Vec<f32>)> = vec![
        (Act::Relu, vec![0.0, -0.0]),
        (Act::LeakyRelu(0.1), vec![0.0, -0.0]),
        (Act::Elu(1.3), vec![0.0, -0.0]),
        (Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, vec![-3.0, 3.0, 0.0]),
        (Act::HardSwish, vec![-3.0, 3.0, -3.5, 3.5, 0.0]),
        (Act::HardTanh { lo: 0.0, hi: 6.0 }, vec![0.0, 6.0]),
        (Act::Clip { lo: 0.0, hi: 6.0 }, vec![0.0, 6.0, 6.5]),
        (Act::Clip { lo: 3.0, hi: 1.0 }, vec![0.0, 2.0, 5.0]),
        (Act::SoftplusThreshold, vec![20.5, 21.0]),
        (Act::PosInfToNan, vec![f32::INFINITY, 1.0]),
    ];
    for (act, xs) in cases {
        let got = run3(act, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = act.tower(x as f64).map(|v| v as f32);
            for k in 0..3 {
                let g = got[k][i];
                assert!(g == want[k] || (g.is_nan() && want[k].is_nan()), "{act:?} f{} at {x}: {g} vs {}", "′".repeat(k), want[k]);
            }
        }
    }
    // Softplus at the threshold itself is still log1p(eˣ): f″ = σ(1 − σ) = e⁻²⁰ to an ulp, not 0.
    let at20 = run3(Act::SoftplusThreshold, &[20.0]);
    assert!((at20[2][0] as f64 / (-20f64).exp() - 1.0).abs() < 1e-6 && at20[0][0] == 20.0, "{at20:?}");
    // GELU at 0: f′ = ½, f″ = 2φ(0) (erf form) and √(2/π) (tanh form), to an ulp.
    let g = run3(Act::GeluErf, &[0.0]);
    assert_eq!(g[1][0], 0.5);
    assert!((g[2][0] as f64 - 0.797_884_560_802_865_4).abs() <= 1e-7);
    let g = run3(Act::GeluTanh, &[0.0]);
    assert_eq!(g[1][0], 0.5);
    assert!((g[2][0] as f64 - 0.797_884_560_802_865_4).abs() <= 1e-7);
}

/// f64 programs keep the f64 towers: every f64 result is `Act::tower`'s (or, for the functions
/// with a value kernel, that kernel's value and its from-output derivative), bit for bit.
#[test]
fn f64_towers_are_unchanged() {
    let xs: Vec<f64> = (0..2000).map(|i| -9.0 + 18.0 * i as f64 / 1999.0).chain([0.0, -0.0, f64::INFINITY, f64::NAN]).collect();
    for s in specs() {
        let xs: Vec<f64> = xs.iter().map(|&x| if s.lo >= 0.0 { x.abs() } else { x }).collect();
        for order in 0..2u8 {
            let (mut p, mut d) = (vec![0f64; xs.len()], vec![0f64; xs.len()]);
            f64::towers(Isa::Simd, s.act, order, &xs, &mut p, Some(&mut d));
            for (i, &x) in xs.iter().enumerate() {
                let t = s.act.tower(x);
                let o = order as usize;
                let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
                if order == 0 && s.act.value_kernel().is_some() {
                    // tanh, σ, exp, relu: the value by its kernel (libm), f′ from it.
                    assert!((p[i] - t[0]).abs() <= 4.0 * f64::EPSILON * t[0].abs() || same(p[i], t[0]), "{:?} at {x}", s.act);
                } else {
                    assert!(same(p[i], t[o]) && same(d[i], t[o + 1]), "{:?} order {order} at {x}: {} {} vs {:?}", s.act, p[i], d[i], t);
                }
            }
        }
    }
}

/// The vectorized from-output rules give the scalar formulas bit for bit, in both precisions,
/// at every length (tails of 1–3 elements included).
#[test]
fn from_output_matches_the_scalar_rules() {
    fn scalar(act: Act, y: f64) -> [f64; 2] {
        match act {
            Act::Tanh => [1.0 - y * y, -(y + y) * (1.0 - y * y)],
            Act::Sigmoid => [y * (1.0 - y), y * (1.0 - y) * (1.0 - (y + y))],
            Act::Exp => [y, y],
            Act::Relu => [if y > 0.0 { 1.0 } else { 0.0 }, 0.0],
            _ => unreachable!(),
        }
    }
    for act in [Act::Tanh, Act::Sigmoid, Act::Exp, Act::Relu] {
        assert!(act.has_derivs_from_output());
        for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 33] {
            let y: Vec<f64> = (0..n).map(|i| -1.2 + 2.3 * i as f64 / n as f64).collect();
            let (mut d1, mut d2) = (vec![0.0; n], vec![0.0; n]);
            from_output(act, &y, &mut d1, Some(&mut d2));
            let y32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
            let (mut e1, mut e2) = (vec![0f32; n], vec![0f32; n]);
            from_output(act, &y32, &mut e1, Some(&mut e2));
            let mut e1only = vec![0f32; n];
            from_output(act, &y32, &mut e1only, None);
            for i in 0..n {
                let want = scalar(act, y[i]);
                assert_eq!([d1[i].to_bits(), d2[i].to_bits()], want.map(f64::to_bits), "{act:?} f64 at {}", y[i]);
                let v = y32[i];
                let want32 = match act {
                    Act::Tanh => [1.0 - v * v, -(v + v) * (1.0 - v * v)],
                    Act::Sigmoid => [v * (1.0 - v), v * (1.0 - v) * (1.0 - (v + v))],
                    Act::Exp => [v, v],
                    _ => [if v > 0.0 { 1.0 } else { 0.0 }, 0.0],
                };
                assert_eq!([e1[i].to_bits(), e2[i].to_bits(), e1only[i].to_bits()], [want32[0].to_bits(), want32[1].to_bits(), want32[0].to_bits()], "{act:?} f32 at {v}");
            }
        }
    }
    assert!(!Act::GeluErf.has_derivs_from_output());
}

/// Lengths that are not multiples of the lane width give the same values as the full lanes.
#[test]
fn tails_match_the_body() {
    let xs: Vec<f32> = (0..37).map(|i| -4.0 + 0.23 * i as f32).collect();
    for s in specs() {
        let full = run3(s.act, &xs);
        for n in [1usize, 2, 3, 5, 6, 7] {
            let part = run3(s.act, &xs[xs.len() - n..]);
            for k in 0..3 {
                for i in 0..n {
                    let (a, b) = (part[k][i], full[k][xs.len() - n + i]);
                    assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{:?} tail {n}", s.act);
                }
            }
        }
    }
}
