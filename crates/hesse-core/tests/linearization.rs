//! Linearization reuse (autodiff/linearization.rs): a product that replays the recorded primal
//! results is bitwise the fresh run's product, in f32 and f64, for the Hessian, the GGN and the
//! empirical and Monte Carlo Fisher, on an MLP, a conv net and a transformer-ish net (gather,
//! layer norm, attention softmax); a change of θ, of the data or of an index input records anew
//! instead of replaying; a tape over its bound is not kept.

use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::dual::Scalar;
use hesse_core::autodiff::op::{Indices, Pool2d};
use hesse_core::autodiff::{Act, Curvature, CurvatureOp, Linearization, LossKind, Mode, Outcome, Program, Record, Reuse, Run};
use hesse_core::kernels::{ConvAttrs, Isa};
use hesse_core::linalg::{lanczos, LanczosOpts, Which};

fn wave(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 1.0) * s).sin() * 0.9 + 0.1 * ((i * 7 % 5) as f64 - 2.0)).collect()
}

/// A program with its loss node, network output node and data (labels last).
struct Net {
    name: &'static str,
    prog: Program,
    out: usize,
    f: usize,
    inputs: Vec<Vec<f64>>,
}

fn labels(n: usize, classes: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * 5 + 1) % classes) as f64).collect()
}

fn mlp() -> Net {
    let mut prog = Program::new();
    let x = prog.input(&[16, 6]).unwrap();
    let f = prog.sequential(x, &[Layer::Linear { inputs: 6, outputs: 8, bias: true }, Layer::Act(Act::Tanh), Layer::Linear { inputs: 8, outputs: 4, bias: true }]).unwrap();
    let y = prog.input(&[16]).unwrap();
    let out = prog.cross_entropy(f, y).unwrap();
    Net { name: "mlp", prog, out, f, inputs: vec![wave(96, 0.7), labels(16, 4)] }
}

fn conv() -> Net {
    let mut prog = Program::new();
    let x = prog.input(&[2, 3, 6, 6]).unwrap();
    let c = |i, o, stride, padding| Layer::Conv2d { inputs: i, outputs: o, kernel: (3, 3), stride: (stride, stride), padding: (padding, padding), dilation: (1, 1), groups: 1, bias: true };
    let h = prog.sequential(x, &[c(3, 4, 1, 1), Layer::Act(Act::Relu)]).unwrap();
    let h = prog.max_pool2d(h, Pool2d { kernel: (2, 2), stride: (2, 2), pads: [0; 4], dilation: (1, 1), ceil_mode: false }).unwrap();
    let w = prog.param(&[4, 4, 3, 3]).unwrap();
    let h = prog.conv2d(h, w, ConvAttrs { stride: (1, 1), pads: [1, 1, 1, 1], dilation: (1, 1), groups: 1 }).unwrap();
    let h = prog.act(h, Act::GeluErf).unwrap();
    let f = prog.sequential(h, &[Layer::Flatten, Layer::Linear { inputs: 36, outputs: 3, bias: true }]).unwrap();
    let y = prog.input(&[2]).unwrap();
    let out = prog.cross_entropy(f, y).unwrap();
    Net { name: "conv", prog, out, f, inputs: vec![wave(216, 0.31), labels(2, 3)] }
}

/// Embedding gather at an index input, layer norm, one attention head (batched matmuls and a
/// softmax), mean over positions, a linear head.
fn transformer() -> (Net, usize) {
    let (b, t, v, d) = (2, 5, 7, 8);
    let mut prog = Program::new();
    let tokens = prog.index_input(&[b, t]).unwrap();
    prog.set_index_input(tokens, vec![1, 4, 6, 0, 2, 3, 3, 5, 1, 6]).unwrap();
    let e = prog.param(&[v, d]).unwrap();
    let x = prog.gather(e, 0, Indices::Input(tokens)).unwrap();
    let x = prog.layer_norm(x, 1e-5).unwrap();
    let (wq, wk, wv) = (prog.param(&[d, d]).unwrap(), prog.param(&[d, d]).unwrap(), prog.param(&[d, d]).unwrap());
    let (q, k, vv) = (prog.matmul(x, wq, false, false).unwrap(), prog.matmul(x, wk, false, false).unwrap(), prog.matmul(x, wv, false, false).unwrap());
    let s = prog.matmul(q, k, false, true).unwrap();
    let s = prog.scale(s, 1.0 / (d as f64).sqrt()).unwrap();
    let a = prog.softmax_axis(s, -1).unwrap();
    let h = prog.matmul(a, vv, false, false).unwrap();
    let h = prog.add(h, x).unwrap();
    let h = prog.mean_axes(h, Some(&[1]), false).unwrap();
    let f = prog.sequential(h, &[Layer::Act(Act::Tanh), Layer::Linear { inputs: d, outputs: 3, bias: true }]).unwrap();
    let y = prog.input(&[b]).unwrap();
    let out = prog.cross_entropy(f, y).unwrap();
    (Net { name: "transformer", prog, out, f, inputs: vec![labels(b, 3)] }, tokens)
}

fn curvatures(f: usize) -> [Curvature; 4] {
    [Curvature::Hessian, Curvature::Ggn { output: f }, Curvature::EmpiricalFisher { output: f }, Curvature::MonteCarloFisher { output: f, kind: LossKind::CrossEntropy, samples: 2, seed: 3 }]
}

fn cast<T: Scalar>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

fn bits<T: Scalar>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

/// The bits of everything a run returns: output, its tangents, gradient, its tangents.
fn all_bits<T: Scalar>(o: &Outcome<T>) -> [Vec<u64>; 4] {
    let g = o.grad.as_ref().expect("backward ran");
    [bits(&o.output.p), bits(o.output.t.as_deref().unwrap_or(&[])), bits(&g.p), bits(g.t.as_deref().unwrap_or(&[]))]
}

/// Runs `products` products C·vⱼ (K directions each) through `lin` and fresh, asserting bitwise
/// equality; returns the last product's H·v bits.
#[allow(clippy::too_many_arguments)]
fn products<T: Scalar>(net: &Net, lin: &mut Linearization<T>, params: &[T], inputs: &[Vec<T>], curvature: Curvature, k: usize, products: usize, seed: f64) -> Vec<u64> {
    let ins: Vec<&[T]> = inputs.iter().map(|x| x.as_slice()).collect();
    let p = net.prog.n_params();
    let mut last = vec![];
    for j in 0..products {
        let v: Vec<T> = cast(&wave(k * p, seed + 0.37 * j as f64));
        let r = Run::at(params, &ins, Mode::Hvp { tangents: &v, k, cotangent: None, curvature });
        let fresh = net.prog.run(Isa::Simd, net.out, &r).unwrap();
        let reused = lin.run(&net.prog, Isa::Simd, net.out, &r).unwrap();
        let (a, b) = (all_bits(&fresh), all_bits(&reused));
        assert_eq!(a, b, "{} {curvature:?} K={k} product {j}: replay differs from the fresh run", net.name);
        assert!(a[3].iter().any(|&x| x != 0), "{} {curvature:?}: the product is zero, the test would prove nothing", net.name);
        last = a[3].clone();
    }
    last
}

fn replays_match_fresh_runs<T: Scalar>(net: &Net) {
    let p = net.prog.n_params();
    let params: Vec<T> = cast(&wave(p, 0.53).iter().map(|x| 0.6 * x).collect::<Vec<_>>());
    let inputs: Vec<Vec<T>> = net.inputs.iter().map(|x| cast(x)).collect();
    for curvature in curvatures(net.f) {
        for k in [1, 3] {
            let mut lin = Linearization::<T>::new(Record::First);
            products(net, &mut lin, &params, &inputs, curvature, k, 4, 0.9);
            let s = lin.stats();
            assert_eq!((s.fresh, s.recorded, s.replayed), (0, 1, 3), "{} {curvature:?}: {s:?}", net.name);
            assert!(s.tape_bytes > 0);
            // A new θ: recorded anew (replaying the old tape would give the old point's product).
            let moved: Vec<T> = params.iter().enumerate().map(|(i, &x)| if i % 3 == 0 { x + T::from_f64(0.125) } else { x }).collect();
            products(net, &mut lin, &moved, &inputs, curvature, k, 2, 1.7);
            // New data (x, or the labels of the token model).
            let mut data = inputs.clone();
            let x = &mut data[0];
            x[0] += T::from_f64(if net.name == "transformer" { 1.0 } else { 0.5 });
            if net.name == "transformer" {
                x[0] = T::from_f64((x[0].to_f64() as usize % 3) as f64);
            }
            products(net, &mut lin, &moved, &data, curvature, k, 2, 2.3);
            // Another mode (K) at the same point: recorded anew too.
            products(net, &mut lin, &moved, &data, curvature, k + 1, 2, 2.9);
            let s = lin.stats();
            assert_eq!((s.recorded, s.replayed), (4, 6), "{} {curvature:?}: {s:?}", net.name);
        }
    }
}

#[test]
fn mlp_replays_are_bitwise_fresh_runs() {
    replays_match_fresh_runs::<f32>(&mlp());
    replays_match_fresh_runs::<f64>(&mlp());
}

#[test]
fn conv_net_replays_are_bitwise_fresh_runs() {
    replays_match_fresh_runs::<f32>(&conv());
    replays_match_fresh_runs::<f64>(&conv());
}

#[test]
fn transformer_replays_are_bitwise_fresh_runs() {
    replays_match_fresh_runs::<f32>(&transformer().0);
    replays_match_fresh_runs::<f64>(&transformer().0);
}

/// Staging other index values (the tokens) changes the program's version: the old tape is not
/// replayed, and the product is the fresh one at the new tokens (which differs from the old).
#[test]
fn new_index_input_records_anew() {
    let (mut net, slot) = transformer();
    let params: Vec<f64> = wave(net.prog.n_params(), 0.41);
    let inputs = vec![net.inputs[0].clone()];
    let mut lin = Linearization::<f64>::new(Record::First);
    let before = products(&net, &mut lin, &params, &inputs, Curvature::Hessian, 1, 3, 0.6);
    net.prog.set_index_input(slot, vec![6, 6, 0, 1, 2, 5, 4, 3, 2, 1]).unwrap();
    let after = products(&net, &mut lin, &params, &inputs, Curvature::Hessian, 1, 3, 0.6);
    assert_ne!(before, after, "other tokens, same product: the test would not see a stale tape");
    let s = lin.stats();
    assert_eq!((s.recorded, s.replayed), (2, 4), "{s:?}");
}

/// `Record::Repeat` records at the second run of a point and replays from the third; a point
/// that changes every run (a batched objective staging its batches in turn) never records.
#[test]
fn record_on_repeat() {
    let net = mlp();
    let params: Vec<f32> = cast(&wave(net.prog.n_params(), 0.29));
    let inputs: Vec<Vec<f32>> = net.inputs.iter().map(|x| cast(x)).collect();
    let mut lin = Linearization::<f32>::new(Record::Repeat);
    products(&net, &mut lin, &params, &inputs, Curvature::Ggn { output: net.f }, 1, 5, 0.3);
    assert_eq!(lin.stats(), Reuse { fresh: 1, recorded: 1, replayed: 3, tape_bytes: lin.stats().tape_bytes });
    let mut lin = Linearization::<f32>::new(Record::Repeat);
    let other: Vec<Vec<f32>> = vec![inputs[0].iter().map(|x| -x).collect(), inputs[1].clone()];
    for b in 0..4 {
        products(&net, &mut lin, &params, if b % 2 == 0 { &inputs } else { &other }, Curvature::Hessian, 1, 1, 0.3 + b as f64);
    }
    let s = lin.stats();
    assert_eq!((s.fresh, s.recorded, s.replayed, s.tape_bytes), (4, 0, 0, 0), "{s:?}");
}

/// A tape over its bound is dropped: every product runs fresh (and is still right).
#[test]
fn tape_over_its_bound_is_not_kept() {
    let net = conv();
    let params: Vec<f64> = wave(net.prog.n_params(), 0.37);
    let inputs: Vec<Vec<f64>> = net.inputs.clone();
    let mut lin = Linearization::<f64>::with_cap(Record::First, 1024);
    products(&net, &mut lin, &params, &inputs, Curvature::Hessian, 1, 3, 0.5);
    let s = lin.stats();
    assert_eq!((s.fresh, s.recorded, s.replayed, s.tape_bytes), (2, 1, 0, 0), "{s:?}");
}

/// Lanczos on a curvature operator with a linearization: the same Ritz values, bit for bit, as
/// with fresh products, and all products but the first replayed.
#[test]
fn lanczos_with_reuse_is_bitwise_lanczos_without() {
    let (net, _) = transformer();
    let params: Vec<f32> = cast(&wave(net.prog.n_params(), 0.47));
    let inputs: Vec<Vec<f32>> = net.inputs.iter().map(|x| cast(x)).collect();
    let ins: Vec<&[f32]> = inputs.iter().map(|x| x.as_slice()).collect();
    let opts = LanczosOpts { tol: 1e-6, seed: 4, ..LanczosOpts::default() };
    for curvature in curvatures(net.f) {
        let mut plain = CurvatureOp { prog: &net.prog, isa: Isa::Simd, out: net.out, params: &params, inputs: &ins, curvature, products: 0, linearization: None };
        let a = lanczos(&mut plain, 3, Which::Largest, &opts).unwrap();
        let mut lin = Linearization::new(Record::First);
        let mut reused = CurvatureOp { prog: &net.prog, isa: Isa::Simd, out: net.out, params: &params, inputs: &ins, curvature, products: 0, linearization: Some(&mut lin) };
        let b = lanczos(&mut reused, 3, Which::Largest, &opts).unwrap();
        assert_eq!(a.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "{curvature:?}");
        assert_eq!(a.products, b.products);
        let s = lin.stats();
        assert_eq!((s.recorded, s.replayed), (1, b.products - 1), "{curvature:?}: {s:?}");
    }
}
