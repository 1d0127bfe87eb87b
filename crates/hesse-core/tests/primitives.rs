//! Every primitive op, one loop: for each entry of the registry (each `Op` variant, and each
//! activation, with representative attributes) in f64,
//! - the JVP (forward on duals) against central differences of the value,
//! - adjointness of forward and reverse: ⟨u, J v⟩ = ⟨Jᵀu, v⟩,
//! - the HVP of the second-order probe s(θ) = Σ w·f(θ)² (forward-over-reverse through the op's
//!   VJP) against central differences of the gradient.
//!
//! `variant` below is an exhaustive match over `Op` and `Act` with no wildcard: a new variant
//! does not compile until it is named there, and the test fails until the registry has a case
//! of it. So no primitive ships untested.

use hesse_core::autodiff::op::{Indices, Pool2d};
use hesse_core::autodiff::{Act, Op, Program, Run, Wrt};
use hesse_core::Isa;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The registry name of an op (its variant; activations by their own variant).
fn variant(op: &Op) -> &'static str {
    match op {
        Op::Param { .. } => "Param",
        Op::Input { .. } => "Input",
        Op::Const(_) => "Const",
        Op::Add => "Add",
        Op::Sub => "Sub",
        Op::Mul => "Mul",
        Op::Div => "Div",
        Op::Scale(_) => "Scale",
        Op::MatMul { .. } => "MatMul",
        Op::Conv2d { .. } => "Conv2d",
        Op::Reshape => "Reshape",
        Op::Transpose => "Transpose",
        Op::Permute(_) => "Permute",
        Op::Concat { .. } => "Concat",
        Op::Sum { .. } => "Sum",
        Op::LogSumExp => "LogSumExp",
        Op::Pick => "Pick",
        Op::Map(_) => "Map",
        Op::GatherInput { .. } => "GatherInput",
        Op::MaxMap(_) => "MaxMap",
        Op::Act(a) => match a {
            Act::Relu => "Act::Relu",
            Act::LeakyRelu(_) => "Act::LeakyRelu",
            Act::Tanh => "Act::Tanh",
            Act::Sigmoid => "Act::Sigmoid",
            Act::GeluErf => "Act::GeluErf",
            Act::GeluTanh => "Act::GeluTanh",
            Act::Softplus => "Act::Softplus",
            Act::SoftplusThreshold => "Act::SoftplusThreshold",
            Act::Elu(_) => "Act::Elu",
            Act::Exp => "Act::Exp",
            Act::Log => "Act::Log",
            Act::Sqrt => "Act::Sqrt",
            Act::Square => "Act::Square",
            Act::Recip => "Act::Recip",
            Act::Rsqrt(_) => "Act::Rsqrt",
            Act::Erf => "Act::Erf",
            Act::Pow(_) => "Act::Pow",
            Act::PosInfToNan => "Act::PosInfToNan",
        },
    }
}

/// Every variant name `variant` can return (kept in step with it by the count check below).
const ALL: &[&str] = &[
    "Param", "Input", "Const", "Add", "Sub", "Mul", "Div", "Scale", "MatMul", "Conv2d", "Reshape", "Transpose", "Permute", "Concat", "Sum", "LogSumExp", "Pick", "Map",
    "GatherInput", "MaxMap", "Act::Relu", "Act::LeakyRelu", "Act::Tanh", "Act::Sigmoid", "Act::GeluErf", "Act::GeluTanh", "Act::Softplus", "Act::SoftplusThreshold",
    "Act::Elu", "Act::Exp", "Act::Log", "Act::Sqrt", "Act::Square", "Act::Recip", "Act::Rsqrt", "Act::Erf", "Act::Pow", "Act::PosInfToNan",
];

/// One primitive under test: a program whose output node applies it to parameter leaves θ.
struct Case {
    name: String,
    prog: Program,
    out: usize,
    theta: Vec<f64>,
    inputs: Vec<Vec<f64>>,
}

fn wave(n: usize, s: f64, off: f64) -> Vec<f64> {
    // Distinct values (no ties for max-type ops), away from kinks at 0 by construction below.
    (0..n).map(|i| ((i as f64 + 1.0) * s).sin() * 0.9 + 0.013 * i as f64 + off).collect()
}

/// A case: parameter blocks of `shapes` (θ from `wave`, shifted by `off`: > 1 keeps log, sqrt
/// and recip in their domains), then `build` on their node ids returns the op's node.
fn case(name: &str, shapes: &[&[usize]], off: f64, build: impl FnOnce(&mut Program, &[usize]) -> usize) -> Case {
    let mut prog = Program::new();
    let ps: Vec<usize> = shapes.iter().map(|s| prog.param(s).unwrap()).collect();
    let out = build(&mut prog, &ps);
    let theta = wave(prog.n_params(), 0.77, off);
    Case { name: name.to_string(), prog, out, theta, inputs: vec![] }
}

fn registry() -> Vec<Case> {
    let konst = |p: &mut Program, shape: &[usize], s: f64| {
        let n = shape.iter().product();
        p.constant(shape, wave(n, s, 0.3)).unwrap()
    };
    let mut v = vec![
        case("add (broadcast)", &[&[2, 3], &[3]], 0.0, |p, x| p.push(Op::Add, &[x[0], x[1]], None).unwrap()),
        case("sub (broadcast)", &[&[3], &[2, 1]], 0.0, |p, x| p.push(Op::Sub, &[x[0], x[1]], None).unwrap()),
        case("mul (broadcast)", &[&[2, 3], &[2, 1]], 0.0, |p, x| p.push(Op::Mul, &[x[0], x[1]], None).unwrap()),
        case("div (broadcast)", &[&[2, 3], &[3]], 1.5, |p, x| p.push(Op::Div, &[x[0], x[1]], None).unwrap()),
        case("scale", &[&[4]], 0.0, |p, x| p.push(Op::Scale(-1.7), &[x[0]], None).unwrap()),
        case("matmul 2-D, transposes", &[&[3, 2], &[4, 3]], 0.0, |p, x| p.push(Op::MatMul { ta: true, tb: true }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched, broadcast", &[&[2, 1, 3, 2], &[3, 2, 4]], 0.0, |p, x| p.push(Op::MatMul { ta: false, tb: false }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched, Q·Kᵀ", &[&[2, 3, 4], &[2, 5, 4]], 0.0, |p, x| p.push(Op::MatMul { ta: false, tb: true }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched, Aᵀ·B", &[&[2, 4, 3], &[1, 4, 2]], 0.0, |p, x| p.push(Op::MatMul { ta: true, tb: false }, &[x[0], x[1]], None).unwrap()),
        case("conv2d stride, padding", &[&[2, 2, 5, 4], &[3, 2, 3, 2]], 0.0, |p, x| p.push(Op::Conv2d { stride: (2, 1), padding: (1, 0) }, &[x[0], x[1]], None).unwrap()),
        case("reshape", &[&[2, 6]], 0.0, |p, x| p.push(Op::Reshape, &[x[0]], Some(&[3, 4])).unwrap()),
        case("transpose", &[&[2, 3]], 0.0, |p, x| p.push(Op::Transpose, &[x[0]], None).unwrap()),
        case("permute", &[&[2, 3, 4]], 0.0, |p, x| p.push(Op::Permute(vec![2, 0, 1]), &[x[0]], None).unwrap()),
        case("concat", &[&[2, 3], &[2, 1]], 0.0, |p, x| p.push(Op::Concat { axis: 1 }, &[x[0], x[1]], None).unwrap()),
        case("sum axis keepdims", &[&[2, 3, 2]], 0.0, |p, x| p.push(Op::Sum { axis: Some(1), keepdims: true }, &[x[0]], None).unwrap()),
        case("sum all", &[&[2, 3]], 0.0, |p, x| p.push(Op::Sum { axis: None, keepdims: false }, &[x[0]], None).unwrap()),
        case("logsumexp", &[&[3, 4]], 0.0, |p, x| p.push(Op::LogSumExp, &[x[0]], None).unwrap()),
        case("pick (labels constant)", &[&[3, 4]], 0.0, move |p, x| {
            let l = p.constant(&[3], vec![2.0, 0.0, 3.0]).unwrap();
            p.push(Op::Pick, &[x[0], l], None).unwrap()
        }),
        case("const and input leaves", &[&[2, 3]], 0.0, move |p, x| {
            let c = konst(p, &[2, 3], 0.4);
            let s = p.push(Op::Mul, &[x[0], c], None).unwrap();
            let i = p.input(&[3]).unwrap();
            p.push(Op::Mul, &[s, i], None).unwrap()
        }),
        case("map: gather at constant indices", &[&[4, 3]], 0.0, |p, x| p.gather(x[0], 0, Indices::Const { shape: vec![2, 2], values: vec![3, -4, 1, 3] }).unwrap()),
        case("map: gather on an inner axis", &[&[2, 4, 3]], 0.0, |p, x| p.gather(x[0], -2, Indices::Const { shape: vec![3], values: vec![1, -1, 1] }).unwrap()),
        case("map: slice with negative steps", &[&[4, 5]], 0.0, |p, x| p.slice(x[0], &[-1, 0], &[i64::MIN, i64::MAX], Some(&[0, 1]), Some(&[-2, 2])).unwrap()),
        case("map: pad with a crop", &[&[2, 3]], 0.0, |p, x| p.pad(x[0], &[1, -1, 2, 1], 0.0).unwrap()),
        case("map: pad with a value", &[&[3]], 0.0, |p, x| p.pad(x[0], &[2, 1], -3.0).unwrap()),
        case("map: expand", &[&[3, 1]], 0.0, |p, x| p.expand(x[0], &[2, 3, 4]).unwrap()),
        case("map: where (constant mask)", &[&[2, 3], &[3]], 0.0, |p, x| p.where_const(&[2, 1], &[true, false], x[0], x[1]).unwrap()),
        case("map: avg pool, count_include_pad, ceil", &[&[1, 2, 5, 5]], 0.0, |p, x| {
            p.avg_pool2d(x[0], Pool2d { kernel: (3, 2), stride: (2, 2), pads: [1, 0, 1, 1], dilation: (1, 1), ceil_mode: true }, true).unwrap()
        }),
        case("map: avg pool, no pad counting", &[&[1, 1, 4, 4]], 0.0, |p, x| {
            p.avg_pool2d(x[0], Pool2d { kernel: (2, 2), stride: (1, 2), pads: [1, 1, 0, 1], dilation: (1, 1), ceil_mode: false }, false).unwrap()
        }),
        case("max-map: max over axes", &[&[3, 2, 4]], 0.0, |p, x| p.max_axes(x[0], Some(&[0, 2]), false).unwrap()),
        case("max-map: max pool, dilation, ceil", &[&[1, 2, 6, 5]], 0.0, |p, x| {
            p.max_pool2d(x[0], Pool2d { kernel: (2, 2), stride: (2, 1), pads: [1, 0, 0, 1], dilation: (2, 1), ceil_mode: true }).unwrap()
        }),
    ];
    // GatherInput: indices from an index input (staged, i64), here an embedding lookup.
    let mut g = case("gather at an index input", &[&[5, 2]], 0.0, |p, x| {
        let slot = p.index_input(&[2, 3]).unwrap();
        p.set_index_input(slot, vec![4, 0, -1, 2, 2, 1]).unwrap();
        p.gather(x[0], 0, Indices::Input(slot)).unwrap()
    });
    g.inputs = vec![];
    v.push(g);
    // The "input" leaf case needs its data.
    for c in v.iter_mut().filter(|c| c.name == "const and input leaves") {
        c.inputs = vec![vec![0.5, -1.25, 2.0]];
    }
    // Every activation, on a domain where it is smooth (θ ≠ kinks; > 0 where needed).
    let acts: [(Act, f64); 18] = [
        (Act::Relu, 0.05),
        (Act::LeakyRelu(0.1), 0.05),
        (Act::Tanh, 0.0),
        (Act::Sigmoid, 0.0),
        (Act::GeluErf, 0.0),
        (Act::GeluTanh, 0.0),
        (Act::Softplus, 0.0),
        (Act::SoftplusThreshold, 0.0),
        (Act::Elu(0.7), 0.05),
        (Act::Exp, 0.0),
        (Act::Log, 1.2),
        (Act::Sqrt, 1.2),
        (Act::Square, 0.0),
        (Act::Recip, 1.2),
        (Act::Rsqrt(1e-5), 1.2),
        (Act::Erf, 0.0),
        (Act::Pow(2.5), 1.2),
        (Act::PosInfToNan, 0.0),
    ];
    for (a, off) in acts {
        v.push(case(&format!("act {}", a.name()), &[&[7]], off, move |p, x| p.push(Op::Act(a), &[x[0]], None).unwrap()));
    }
    v
}

fn run(c: &Case, theta: &[f64], tangents: &[f64], k: usize, backward: bool, cotangent: Option<&[f64]>, out: usize) -> hesse_core::autodiff::Outcome<f64> {
    let inputs: Vec<&[f64]> = c.inputs.iter().map(|v| v.as_slice()).collect();
    let r = Run { params: theta, inputs: &inputs, wrt: Wrt::Params, tangents, k, backward, cotangent, cotangents: &[], check_finite: true, curvature: Default::default() };
    c.prog.run(Isa::Simd, out, &r).unwrap_or_else(|e| panic!("{}: {e}", c.name))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn close(name: &str, what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{name}: {what}: lengths");
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{name}: {what}[{i}] = {g}, want {w} (tol {tol}·{scale})");
    }
}

#[test]
fn every_primitive_jvp_adjoint_and_hvp_against_differences() {
    let mut cases = registry();
    // Coverage: every variant appears in some case's program, and the variant list is complete.
    assert_eq!(ALL.iter().collect::<BTreeSet<_>>().len(), ALL.len());
    let mut seen = BTreeSet::new();
    for c in &cases {
        for n in c.prog.nodes() {
            let name = variant(&n.op);
            assert!(ALL.contains(&name), "{name} is missing from ALL");
            seen.insert(name);
        }
    }
    let missing: Vec<_> = ALL.iter().filter(|n| !seen.contains(*n)).collect();
    assert!(missing.is_empty(), "primitives without a registry case: {missing:?}");

    let eps = 1e-5;
    for c in &mut cases {
        let n = c.theta.len();
        let y = run(c, &c.theta, &[], 0, false, None, c.out).output.p;
        let m = y.len();
        let v = wave(n, 1.91, -0.2);
        let u = wave(m, 0.53, 0.1);
        // JVP vs central differences.
        let jv = run(c, &c.theta, &v, 1, false, None, c.out).output.t.expect("a tangent");
        let shifted = |s: f64| -> Vec<f64> { c.theta.iter().zip(&v).map(|(t, d)| t + s * d).collect() };
        let (yp, ym) = (run(c, &shifted(eps), &[], 0, false, None, c.out).output.p, run(c, &shifted(-eps), &[], 0, false, None, c.out).output.p);
        let fd: Vec<f64> = yp.iter().zip(&ym).map(|(a, b)| (a - b) / (2.0 * eps)).collect();
        close(&c.name, "J·v vs differences", &jv, &fd, 1e-6);
        // ⟨u, J v⟩ = ⟨Jᵀu, v⟩
        let jtu = run(c, &c.theta, &[], 0, true, Some(&u), c.out).grad.expect("a gradient").p;
        let (l, r) = (dot(&u, &jv), dot(&jtu, &v));
        assert!((l - r).abs() <= 1e-12 * (1.0 + l.abs()), "{}: ⟨u, Jv⟩ = {l} but ⟨Jᵀu, v⟩ = {r}", c.name);
        // HVP of s = Σ w·f² against differences of ∇s.
        let out_shape = c.prog.shape(c.out).unwrap().to_vec();
        let w = c.prog.constant(&out_shape, wave(m, 0.29, 0.2)).unwrap();
        let sq = c.prog.push(Op::Act(Act::Square), &[c.out], None).unwrap();
        let ws = c.prog.push(Op::Mul, &[w, sq], None).unwrap();
        let s = c.prog.push(Op::Sum { axis: None, keepdims: false }, &[ws], None).unwrap();
        let hv = run(c, &c.theta, &v, 1, true, None, s).grad.expect("a gradient").t.expect("H·v");
        let (gp, gm) = (run(c, &shifted(eps), &[], 0, true, None, s).grad.unwrap().p, run(c, &shifted(-eps), &[], 0, true, None, s).grad.unwrap().p);
        let fdh: Vec<f64> = gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * eps)).collect();
        close(&c.name, "H·v vs differences of the gradient", &hv, &fdh, 1e-6);
    }
}

#[test]
fn the_variant_list_matches_the_match() {
    // A representative of every variant `variant` names, so that ALL cannot hold a stale name.
    let m = Arc::new(hesse_core::autodiff::dual::SparseMap { label: "m", in_len: 0, offsets: vec![0], cols: vec![], weights: None });
    let ops = [
        Op::Param { offset: 0 }, Op::Input { slot: 0 }, Op::Const(Arc::new(vec![])), Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Scale(1.0), Op::MatMul { ta: false, tb: false },
        Op::Conv2d { stride: (1, 1), padding: (0, 0) }, Op::Reshape, Op::Transpose, Op::Permute(vec![]), Op::Concat { axis: 0 }, Op::Sum { axis: None, keepdims: false },
        Op::LogSumExp, Op::Pick, Op::Map(m.clone()), Op::GatherInput { axis: 0, slot: 0, index_shape: vec![] }, Op::MaxMap(m),
    ];
    let acts = [
        Act::Relu, Act::LeakyRelu(0.1), Act::Tanh, Act::Sigmoid, Act::GeluErf, Act::GeluTanh, Act::Softplus, Act::SoftplusThreshold, Act::Elu(1.0), Act::Exp, Act::Log,
        Act::Sqrt, Act::Square, Act::Recip, Act::Rsqrt(0.0), Act::Erf, Act::Pow(2.0), Act::PosInfToNan,
    ];
    let names: BTreeSet<&str> = ops.iter().chain(acts.map(Op::Act).iter()).map(variant).collect();
    assert_eq!(names, ALL.iter().copied().collect::<BTreeSet<_>>());
}
