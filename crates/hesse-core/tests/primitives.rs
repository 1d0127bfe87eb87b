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
use hesse_core::autodiff::{Act, Curvature, Mode, Op, Program, Run, Wrt};
use hesse_core::kernels::ConvAttrs;
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
            Act::HardSigmoid { .. } => "Act::HardSigmoid",
            Act::HardSwish => "Act::HardSwish",
            Act::Silu => "Act::Silu",
            Act::Clip { .. } => "Act::Clip",
            Act::HardTanh { .. } => "Act::HardTanh",
        },
    }
}

/// Every variant name `variant` can return (kept in step with it by the count check below).
const ALL: &[&str] = &[
    "Param", "Input", "Const", "Add", "Sub", "Mul", "Div", "Scale", "MatMul", "Conv2d", "Reshape", "Transpose", "Permute", "Concat", "Sum", "LogSumExp", "Pick", "Map",
    "GatherInput", "MaxMap", "Act::Relu", "Act::LeakyRelu", "Act::Tanh", "Act::Sigmoid", "Act::GeluErf", "Act::GeluTanh", "Act::Softplus", "Act::SoftplusThreshold",
    "Act::Elu", "Act::Exp", "Act::Log", "Act::Sqrt", "Act::Square", "Act::Recip", "Act::Rsqrt", "Act::Erf", "Act::Pow", "Act::PosInfToNan",
    "Act::HardSigmoid", "Act::HardSwish", "Act::Silu", "Act::Clip", "Act::HardTanh",
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
        case("matmul batched · 2-D (folds)", &[&[2, 3, 4], &[5, 4]], 0.0, |p, x| p.push(Op::MatMul { ta: false, tb: true }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched · 2-D, no transpose", &[&[2, 2, 3, 4], &[4, 2]], 0.0, |p, x| p.push(Op::MatMul { ta: false, tb: false }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched, Q·Kᵀ", &[&[2, 3, 4], &[2, 5, 4]], 0.0, |p, x| p.push(Op::MatMul { ta: false, tb: true }, &[x[0], x[1]], None).unwrap()),
        case("matmul batched, Aᵀ·B", &[&[2, 4, 3], &[1, 4, 2]], 0.0, |p, x| p.push(Op::MatMul { ta: true, tb: false }, &[x[0], x[1]], None).unwrap()),
        case("conv2d stride, padding", &[&[2, 2, 5, 4], &[3, 2, 3, 2]], 0.0, |p, x| p.push(Op::Conv2d(ConvAttrs::symmetric((2, 1), (1, 0))), &[x[0], x[1]], None).unwrap()),
        case("conv2d grouped, dilated, asymmetric pads", &[&[1, 4, 6, 5], &[6, 2, 2, 3]], 0.0, |p, x| {
            p.push(Op::Conv2d(ConvAttrs { stride: (1, 2), pads: [1, 0, 0, 2], dilation: (2, 1), groups: 2 }), &[x[0], x[1]], None).unwrap()
        }),
        // Depthwise (groups = C = O) takes the direct SIMD path, not the per-group GEMMs.
        case("conv2d depthwise, strided, SAME_UPPER-like pads", &[&[2, 3, 5, 6], &[3, 1, 3, 3]], 0.0, |p, x| {
            p.push(Op::Conv2d(ConvAttrs { stride: (2, 2), pads: [1, 1, 1, 2], dilation: (1, 2), groups: 3 }), &[x[0], x[1]], None).unwrap()
        }),
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
    let acts: [(Act, f64); 23] = [
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
        (Act::HardSigmoid { alpha: 0.8, beta: 0.5 }, 0.0),
        (Act::HardSwish, 0.0),
        (Act::Silu, 0.0),
        (Act::Clip { lo: -0.5, hi: 0.5 }, 0.0),
        (Act::HardTanh { lo: -0.3, hi: 0.6 }, 0.0),
    ];
    for (a, off) in acts {
        v.push(case(&format!("act {}", a.name()), &[&[7]], off, move |p, x| p.push(Op::Act(a), &[x[0]], None).unwrap()));
    }
    v
}

fn run(c: &Case, theta: &[f64], tangents: &[f64], k: usize, backward: bool, cotangent: Option<&[f64]>, out: usize) -> hesse_core::autodiff::Outcome<f64> {
    let inputs: Vec<&[f64]> = c.inputs.iter().map(|v| v.as_slice()).collect();
    let mode = match (backward || cotangent.is_some(), k, cotangent) {
        (false, 0, _) => Mode::Value,
        (false, _, _) => Mode::Jvp { tangents, k },
        (true, 0, None) => Mode::Grad,
        (true, 0, Some(cotangent)) => Mode::Vjp { cotangent },
        (true, _, cotangent) => Mode::Hvp { tangents, k, cotangent, curvature: Curvature::Hessian },
    };
    let r = Run { params: theta, inputs: &inputs, wrt: Wrt::Params, mode, check_finite: true };
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
        Op::Conv2d(ConvAttrs::default()), Op::Reshape, Op::Transpose, Op::Permute(vec![]), Op::Concat { axis: 0 }, Op::Sum { axis: None, keepdims: false },
        Op::LogSumExp, Op::Pick, Op::Map(m.clone()), Op::GatherInput { axis: 0, slot: 0, index_shape: vec![] }, Op::MaxMap(m),
    ];
    let acts = [
        Act::Relu, Act::LeakyRelu(0.1), Act::Tanh, Act::Sigmoid, Act::GeluErf, Act::GeluTanh, Act::Softplus, Act::SoftplusThreshold, Act::Elu(1.0), Act::Exp, Act::Log,
        Act::Sqrt, Act::Square, Act::Recip, Act::Rsqrt(0.0), Act::Erf, Act::Pow(2.0), Act::PosInfToNan, Act::HardSigmoid { alpha: 1.0, beta: 0.0 }, Act::HardSwish, Act::Silu,
        Act::Clip { lo: 0.0, hi: 1.0 }, Act::HardTanh { lo: 0.0, hi: 1.0 },
    ];
    let names: BTreeSet<&str> = ops.iter().chain(acts.map(Op::Act).iter()).map(variant).collect();
    assert_eq!(names, ALL.iter().copied().collect::<BTreeSet<_>>());
}

mod no_panic {
    //! The new builders with arbitrary attributes: an `Err` or a program that runs (value,
    //! gradient, HVP) to an `Ok` or an `Err`; never a panic.
    use super::*;
    use proptest::prelude::*;

    fn shape() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(0usize..4, 0..4)
    }
    fn big() -> impl Strategy<Value = i64> {
        prop_oneof![-6i64..6, Just(i64::MAX), Just(i64::MIN), Just(i64::MAX / 2)]
    }

    #[derive(Clone, Debug)]
    enum Step {
        Slice(Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>),
        Pad(Vec<i64>, f64),
        Expand(Vec<usize>),
        Where(Vec<usize>, Vec<bool>),
        Gather(i64, Vec<usize>, Vec<i64>),
        GatherInput(i64, Vec<usize>, Vec<i64>),
        Reduce(u8, Option<Vec<i64>>, bool),
        Softmax(i64),
        Pool(bool, [usize; 2], [usize; 2], [usize; 4], [usize; 2], bool, bool),
        MatMul(Vec<usize>, bool, bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        let v = |s: BoxedStrategy<i64>| prop::collection::vec(s, 0..4);
        prop_oneof![
            // (mostly matching lengths: the interesting cases are past the length check)
            (0usize..4)
                .prop_flat_map(|n| {
                    let v = |s: BoxedStrategy<i64>| prop::collection::vec(s, n..=n);
                    (v(big().boxed()), v(big().boxed()), prop::option::of(v((-5i64..5).boxed())), prop::option::of(v(big().boxed())))
                })
                .prop_map(|(a, b, c, d)| Step::Slice(a, b, c, d)),
            (v(big().boxed()), v(big().boxed()), prop::option::of(v((-5i64..5).boxed())), prop::option::of(v(big().boxed()))).prop_map(|(a, b, c, d)| Step::Slice(a, b, c, d)),
            (prop::collection::vec(-3i64..4, 0..9), prop_oneof![Just(0.0), Just(1.5)]).prop_map(|(p, v)| Step::Pad(p, v)),
            shape().prop_map(Step::Expand),
            (shape(), prop::collection::vec(any::<bool>(), 0..30)).prop_map(|(s, m)| Step::Where(s, m)),
            (-4i64..4, shape(), prop::collection::vec(-5i64..5, 0..30)).prop_map(|(a, s, i)| Step::Gather(a, s, i)),
            (-4i64..4, shape(), prop::collection::vec(prop_oneof![-5i64..5, Just(i64::MIN), Just(i64::MAX)], 0..30)).prop_map(|(a, s, i)| Step::GatherInput(a, s, i)),
            (0u8..3, prop::option::of(prop::collection::vec(-4i64..4, 0..4)), any::<bool>()).prop_map(|(o, a, k)| Step::Reduce(o, a, k)),
            (-4i64..4).prop_map(Step::Softmax),
            (any::<bool>(), [0usize..4, 0usize..4], [0usize..3, 0usize..3], [0usize..3, 0usize..3, 0usize..3, 0usize..3], [0usize..3, 1usize..3], any::<bool>(), any::<bool>())
                .prop_map(|(m, k, s, p, d, c, i)| Step::Pool(m, k, s, p, d, c, i)),
            (shape(), any::<bool>(), any::<bool>()).prop_map(|(s, a, b)| Step::MatMul(s, a, b)),
        ]
    }

    fn apply(p: &mut Program, x: usize, s: &Step) -> hesse_core::Result<usize> {
        match s.clone() {
            Step::Slice(a, b, c, d) => p.slice(x, &a, &b, c.as_deref(), d.as_deref()),
            Step::Pad(q, v) => p.pad(x, &q, v),
            Step::Expand(t) => p.expand(x, &t),
            Step::Where(ms, m) => {
                let y = p.param(&[1])?;
                p.where_const(&ms, &m, x, y)
            }
            Step::Gather(a, s, i) => p.gather(x, a, Indices::Const { shape: s, values: i }),
            Step::GatherInput(a, s, i) => {
                let slot = p.index_input(&s)?;
                // (a wrong length is refused; the slot keeps its zeros)
                let _ = p.set_index_input(slot, i);
                p.gather(x, a, Indices::Input(slot))
            }
            Step::Reduce(o, a, k) => match o {
                0 => p.sum_axes(x, a.as_deref(), k),
                1 => p.mean_axes(x, a.as_deref(), k),
                _ => p.max_axes(x, a.as_deref(), k),
            },
            Step::Softmax(a) => p.log_softmax_axis(x, a),
            Step::Pool(m, k, st, pads, d, c, i) => {
                let g = Pool2d { kernel: (k[0], k[1]), stride: (st[0], st[1]), pads, dilation: (d[0], d[1]), ceil_mode: c };
                if m {
                    p.max_pool2d(x, g)
                } else {
                    p.avg_pool2d(x, g, i)
                }
            }
            Step::MatMul(s, a, b) => {
                let w = p.param(&s)?;
                p.push(Op::MatMul { ta: a, tb: b }, &[x, w], None)
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
        #[test]
        fn no_builder_or_run_panics(xs in prop::collection::vec(0usize..4, 0..5), steps in prop::collection::vec(step(), 1..4)) {
            let mut p = Program::new();
            let mut x = p.param(&xs).unwrap();
            for s in &steps {
                if let Ok(y) = apply(&mut p, x, s) {
                    x = y;
                }
            }
            let theta = wave(p.n_params(), 0.3, 0.0);
            let v = wave(p.n_params(), 0.7, 0.1);
            let n = p.shape(x).unwrap().iter().product::<usize>();
            let cot = wave(n, 0.2, 0.0);
            for (k, backward) in [(0, false), (1, false), (0, true), (1, true)] {
                let mode = match (k, backward) {
                    (0, false) => Mode::Value,
                    (_, false) => Mode::Jvp { tangents: &v, k },
                    (0, true) => Mode::Vjp { cotangent: &cot },
                    (_, true) => Mode::Hvp { tangents: &v, k, cotangent: Some(&cot), curvature: Curvature::Hessian },
                };
                let r = Run::at(&theta, &[], mode);
                let _ = p.run(Isa::Simd, x, &r);
            }
        }
    }
}
