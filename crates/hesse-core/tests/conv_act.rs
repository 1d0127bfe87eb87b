//! conv2d (groups, dilation, asymmetric pads, stride) and the activation towers as program
//! primitives, in f64: JVP against central differences of the forward value, ⟨u, J·v⟩ = ⟨Jᵀu, v⟩
//! (the reverse rule is the adjoint of the forward one), and the HVP of ⟨u, y(θ)⟩ against
//! central differences of its VJP, under both kernel families.

use hesse_core::autodiff::{Act, Curvature, Mode, Program, Run};
use hesse_core::kernels::ConvAttrs;
use hesse_core::Isa;
use proptest::prelude::*;

fn wave(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 1.0) * s).sin() * 0.9 + 0.1 * ((i * 7 % 5) as f64 - 2.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(p, q)| p * q).sum()
}

fn axpy(a: &[f64], s: f64, b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(p, q)| p + s * q).collect()
}

/// A run of `prog`'s node `out` with respect to the parameters: (value with K = 1 tangent J·v,
/// gradient Jᵀu with its tangent (∂/∂θ Jᵀu)·v) for cotangent `u` (None: no reverse sweep).
fn run(prog: &Program, isa: Isa, out: usize, params: &[f64], v: &[f64], u: Option<&[f64]>) -> (Vec<f64>, Vec<f64>, Option<(Vec<f64>, Vec<f64>)>) {
    let mode = match u {
        None => Mode::Jvp { tangents: v, k: 1 },
        Some(_) => Mode::Hvp { tangents: v, k: 1, cotangent: u, curvature: Curvature::Hessian },
    };
    let r = Run { check_finite: true, ..Run::at(params, &[], mode) };
    let o = prog.run(isa, out, &r).unwrap();
    let n = o.output.p.len();
    let grad = o.grad.map(|g| (g.p.clone(), g.t.unwrap_or_else(|| vec![0.0; params.len()])));
    (o.output.p, o.output.t.unwrap_or_else(|| vec![0.0; n]), grad)
}

/// The three checks for one primitive output `out` of `prog` at `params`; `what` names it.
fn check(prog: &Program, out: usize, params: &[f64], what: &str) -> Result<(), String> {
    let p = params.len();
    let n = prog.shape(out).unwrap().iter().product::<usize>();
    let v = wave(p, 0.71);
    let u = wave(n, 1.37);
    for isa in [Isa::Simd, Isa::Scalar] {
        let (y, jv, g) = run(prog, isa, out, params, &v, Some(&u));
        let (jtu, hv) = g.unwrap();
        let eps = 1e-6;
        let (yp, _, _) = run(prog, isa, out, &axpy(params, eps, &v), &v, None);
        let (ym, _, _) = run(prog, isa, out, &axpy(params, -eps, &v), &v, None);
        let scale = 1.0 + y.iter().fold(0f64, |m, x| m.max(x.abs()));
        for i in 0..n {
            let fd = (yp[i] - ym[i]) / (2.0 * eps);
            if (fd - jv[i]).abs() > 1e-6 * scale {
                return Err(format!("{what} {isa:?}: J·v[{i}] = {} but central differences give {fd}", jv[i]));
            }
        }
        let (lhs, rhs) = (dot(&u, &jv), dot(&jtu, &v));
        if (lhs - rhs).abs() > 1e-11 * (1.0 + lhs.abs()) {
            return Err(format!("{what} {isa:?}: ⟨u, Jv⟩ = {lhs} but ⟨Jᵀu, v⟩ = {rhs}"));
        }
        let eps = 1e-5;
        let (_, _, gp) = run(prog, isa, out, &axpy(params, eps, &v), &v, Some(&u));
        let (_, _, gm) = run(prog, isa, out, &axpy(params, -eps, &v), &v, Some(&u));
        let (gp, gm) = (gp.unwrap().0, gm.unwrap().0);
        let hscale = 1.0 + hv.iter().fold(0f64, |m, x| m.max(x.abs()));
        for i in 0..p {
            let fd = (gp[i] - gm[i]) / (2.0 * eps);
            if (fd - hv[i]).abs() > 1e-6 * hscale {
                return Err(format!("{what} {isa:?}: HVP[{i}] = {} but central differences of the VJP give {fd}", hv[i]));
            }
        }
    }
    Ok(())
}

/// conv2d(x, w) with both operands parameters, alone and followed by SiLU (so the HVP has both
/// the bilinear cross term and a curvature term through the conv).
fn conv_program(xs: [usize; 4], ws: [usize; 4], a: ConvAttrs, then_silu: bool) -> (Program, usize, Vec<f64>) {
    let mut prog = Program::new();
    let x = prog.param(&xs).unwrap();
    let w = prog.param(&ws).unwrap();
    let mut y = prog.conv2d(x, w, a).unwrap();
    if then_silu {
        y = prog.act(y, Act::Silu).unwrap();
    }
    let params = wave(prog.n_params(), 0.37);
    (prog, y, params)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn conv2d_primitive_jvp_adjoint_hvp(n in 1usize..3, groups in 1usize..4, cg in 1usize..3, og in 1usize..3, h in 1usize..7, w in 1usize..7,
                                        kh in 1usize..4, kw in 1usize..4, s in (1usize..3, 1usize..3), d in (1usize..3, 1usize..3),
                                        pads in (0usize..3, 0usize..3, 0usize..3, 0usize..3), silu in any::<bool>()) {
        prop_assume!(h + pads.0 + pads.2 > d.0 * (kh - 1) && w + pads.1 + pads.3 > d.1 * (kw - 1));
        let a = ConvAttrs { stride: s, pads: [pads.0, pads.1, pads.2, pads.3], dilation: d, groups };
        let (prog, out, params) = conv_program([n, groups * cg, h, w], [groups * og, cg, kh, kw], a, silu);
        check(&prog, out, &params, &format!("conv2d {a:?} x [{n}, {}, {h}, {w}] w [{}, {cg}, {kh}, {kw}] silu {silu}", groups * cg, groups * og)).map_err(TestCaseError::fail)?;
    }
}

/// The named geometries of MobileNet-style blocks: depthwise 3×3 stride 2 with SAME_UPPER-like
/// pads, and a grouped dilated conv.
#[test]
fn conv2d_primitive_named_geometries() {
    let cases = [
        ([2, 4, 7, 7], [4, 1, 3, 3], ConvAttrs { stride: (2, 2), pads: [0, 0, 1, 1], dilation: (1, 1), groups: 4 }),
        ([1, 6, 8, 9], [4, 3, 3, 2], ConvAttrs { stride: (1, 2), pads: [2, 0, 1, 3], dilation: (2, 3), groups: 2 }),
    ];
    for (xs, ws, a) in cases {
        for silu in [false, true] {
            let (prog, out, params) = conv_program(xs, ws, a, silu);
            check(&prog, out, &params, &format!("conv2d {a:?}")).unwrap();
        }
    }
}

/// Each new (and each checked) tower as a program primitive on values away from its kinks
/// (central differences straddling a kink measure neither side).
#[test]
fn activation_primitives_jvp_adjoint_hvp() {
    let acts = [
        (Act::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, &[-3.0, 3.0][..]),
        (Act::HardSigmoid { alpha: 0.2, beta: 0.4 }, &[-2.0, 3.0]),
        (Act::HardSwish, &[-3.0, 3.0]),
        (Act::Silu, &[]),
        (Act::Clip { lo: -1.0, hi: 2.0 }, &[-1.0, 2.0]),
        (Act::HardTanh { lo: 0.0, hi: 6.0 }, &[0.0, 6.0]),
        (Act::GeluErf, &[]),
        (Act::GeluTanh, &[]),
        (Act::Elu(1.3), &[0.0]),
        (Act::LeakyRelu(0.1), &[0.0]),
        (Act::SoftplusThreshold, &[20.0]),
    ];
    for (act, kinks) in acts {
        let mut prog = Program::new();
        let x = prog.param(&[40]).unwrap();
        let y = prog.act(x, act).unwrap();
        // Values over [−8, 24], nudged off the kinks.
        let params: Vec<f64> = wave(40, 0.53)
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 8 == 0 { 19.0 + 3.0 * v } else { 5.0 * v + 1.0 })
            .map(|v| if kinks.iter().any(|k| (v - k).abs() < 1e-2) { v + 0.05 } else { v })
            .collect();
        check(&prog, y, &params, act.name()).unwrap();
    }
}
