//! Property: no sequence of builder calls and no request to any entry point panics. Programs are
//! built from arbitrary ops, shapes (including sizes near usize::MAX) and node ids (including ids
//! that do not exist); then `run`, the explicit Gauss–Newton, K-FAC, the Jacobian and the
//! curvature operator (under Lanczos and CG) are called with arbitrary arguments. Every outcome
//! must be Ok or an Err; a panic fails the test (in wasm it would kill the instance).

use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::{Act, Curvature, CurvatureOp, GaussNewtonPart, KfacVariant, LossKind, Mode, Program, Run, Wrt};
use hesse_core::linalg::{self, CgOpts, LanczosOpts, Which};
use hesse_core::Isa;
use hesse_core::kernels::ConvAttrs;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Input(Vec<usize>),
    Param(Vec<usize>),
    Const(Vec<usize>, usize),
    Binary(u8, usize, usize),
    Scale(usize, f64),
    Act(u8, usize, f64),
    MatMul(usize, usize, bool, bool),
    Conv(usize, usize, ConvAttrs),
    Reshape(usize, Vec<usize>),
    Transpose(usize),
    Permute(usize, Vec<usize>),
    Concat(Vec<usize>, i64),
    Sum(usize, Option<i64>, bool),
    Mean(usize, Option<i64>, bool),
    LastAxis(u8, usize),
    Loss(u8, usize, usize),
    Sequential(usize, Vec<Layer>),
    /// A whole model as the TS layer builds one: x [n, …] → (conv2d → act → flatten →)
    /// linear → act → linear → loss with targets (so the curvature entry points have work).
    Model { n: usize, d: usize, hidden: usize, classes: usize, conv: Option<(usize, usize, usize, usize, usize)>, act: u8, loss: u8 },
}

/// Mostly small sizes, sometimes ones that overflow products or any allocation (never sizes in
/// between: natively a 64 GB buffer could be allocated lazily and then filled).
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![12 => 1usize..4, 2 => Just(0usize), 1 => Just(usize::MAX / 2 + 1), 1 => Just(usize::MAX)]
}
fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..5)
}
/// A node as an offset back from the newest (0: the last node), or an id that does not exist.
fn node() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0usize..3, 4 => 0usize..14, 1 => Just(usize::MAX)]
}
fn resolve(p: &Program, pick: usize) -> usize {
    let n = p.nodes().len();
    if pick == usize::MAX || n == 0 {
        pick
    } else {
        n - 1 - pick % n
    }
}
fn pair() -> impl Strategy<Value = (usize, usize)> {
    (dim(), dim())
}
fn act(i: u8, a: f64) -> Act {
    [Act::Relu, Act::Tanh, Act::Sigmoid, Act::Exp, Act::Log, Act::Sqrt, Act::Square, Act::Recip, Act::Softplus, Act::SoftplusThreshold, Act::GeluErf, Act::Elu(a), Act::LeakyRelu(a), Act::Pow(a), Act::PosInfToNan,
     Act::HardSigmoid { alpha: a, beta: 0.5 }, Act::HardSwish, Act::Silu, Act::Clip { lo: a, hi: 1.0 }, Act::HardTanh { lo: 0.0, hi: a }][i as usize % 20]
}
fn layer() -> impl Strategy<Value = Layer> {
    prop_oneof![
        (dim(), dim(), any::<bool>()).prop_map(|(inputs, outputs, bias)| Layer::Linear { inputs, outputs, bias }),
        (dim(), dim(), pair(), pair(), pair(), pair(), dim(), any::<bool>())
            .prop_map(|(inputs, outputs, kernel, stride, padding, dilation, groups, bias)| Layer::Conv2d { inputs, outputs, kernel, stride, padding, dilation, groups, bias }),
        Just(Layer::Flatten),
        (any::<u8>(), -2.0..2.0f64).prop_map(|(i, a)| Layer::Act(act(i, a))),
        (dim(), -1.0..1.0f64).prop_map(|(dim, eps)| Layer::LayerNorm { dim, eps }),
    ]
}
fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => shape().prop_map(Step::Input),
        3 => shape().prop_map(Step::Param),
        1 => (shape(), 0usize..30).prop_map(|(s, n)| Step::Const(s, n)),
        2 => (any::<u8>(), node(), node()).prop_map(|(o, a, b)| Step::Binary(o, a, b)),
        1 => (node(), -3.0..3.0f64).prop_map(|(x, c)| Step::Scale(x, c)),
        2 => (any::<u8>(), node(), -2.0..2.0f64).prop_map(|(i, x, a)| Step::Act(i, x, a)),
        2 => (node(), node(), any::<bool>(), any::<bool>()).prop_map(|(a, b, ta, tb)| Step::MatMul(a, b, ta, tb)),
        1 => (node(), node(), pair(), (pair(), pair()), pair(), dim())
            .prop_map(|(x, w, stride, (a, b), dilation, groups)| Step::Conv(x, w, ConvAttrs { stride, pads: [a.0, a.1, b.0, b.1], dilation, groups })),
        1 => (node(), shape()).prop_map(|(x, s)| Step::Reshape(x, s)),
        1 => node().prop_map(Step::Transpose),
        1 => (node(), prop::collection::vec(0usize..5, 0..5)).prop_map(|(x, p)| Step::Permute(x, p)),
        1 => (prop::collection::vec(node(), 0..4), -4i64..4).prop_map(|(xs, a)| Step::Concat(xs, a)),
        1 => (node(), prop::option::of(-4i64..4), any::<bool>()).prop_map(|(x, a, k)| Step::Sum(x, a, k)),
        1 => (node(), prop::option::of(-4i64..4), any::<bool>()).prop_map(|(x, a, k)| Step::Mean(x, a, k)),
        1 => (any::<u8>(), node()).prop_map(|(o, x)| Step::LastAxis(o, x)),
        2 => (any::<u8>(), node(), node()).prop_map(|(o, a, b)| Step::Loss(o, a, b)),
        2 => (node(), prop::collection::vec(layer(), 0..4)).prop_map(|(x, l)| Step::Sequential(x, l)),
        6 => (0usize..4, 1usize..5, 1usize..5, 1usize..4, prop::option::of((1usize..3, 1usize..6, 1usize..4, 1usize..3, 0usize..3)), any::<u8>(), any::<u8>())
            .prop_map(|(n, d, hidden, classes, conv, act, loss)| Step::Model { n, d, hidden, classes, conv, act, loss }),
    ]
}

fn build(steps: &[Step]) -> Program {
    let mut p = Program::new();
    for s in steps {
        let m = p.mark();
        let r = match resolved(&p, s.clone()) {
            Step::Input(sh) => p.input(&sh),
            Step::Param(sh) => p.param(&sh),
            Step::Const(sh, n) => p.constant(&sh, (0..n).map(|i| i as f64 * 0.5 - 1.0).collect()),
            Step::Binary(o, a, b) => match o % 4 {
                0 => p.add(a, b),
                1 => p.sub(a, b),
                2 => p.mul(a, b),
                _ => p.div(a, b),
            },
            Step::Scale(x, c) => p.scale(x, c),
            Step::Act(i, x, a) => p.act(x, act(i, a)),
            Step::MatMul(a, b, ta, tb) => p.matmul(a, b, ta, tb),
            Step::Conv(x, w, a) => p.conv2d(x, w, a),
            Step::Reshape(x, sh) => p.reshape(x, &sh),
            Step::Transpose(x) => p.transpose(x),
            Step::Permute(x, perm) => p.permute(x, &perm),
            Step::Concat(xs, a) => p.concat(&xs, a),
            Step::Sum(x, a, k) => p.sum(x, a, k),
            Step::Mean(x, a, k) => p.mean(x, a, k),
            Step::LastAxis(o, x) => match o % 4 {
                0 => p.logsumexp(x),
                1 => p.softmax(x),
                2 => p.log_softmax(x),
                _ => p.layer_norm(x, 1e-5),
            },
            Step::Loss(o, a, b) => match o % 3 {
                0 => p.mse(a, b),
                1 => p.cross_entropy(a, b),
                _ => p.bce_with_logits(a, b),
            },
            Step::Sequential(x, layers) => p.sequential(x, &layers),
            Step::Model { n, d, hidden, classes, conv, act: a, loss } => model(&mut p, n, d, hidden, classes, conv, act(a, 0.1), loss),
        };
        if r.is_err() {
            p.rollback(m);
        }
    }
    // A scalar of everything last, so that gradients have an output.
    if let Some(last) = p.nodes().len().checked_sub(1) {
        let m = p.mark();
        if p.sum(last, None, false).is_err() {
            p.rollback(m);
        }
    }
    p
}

/// Node picks as ids of the program built so far.
fn resolved(p: &Program, s: Step) -> Step {
    let r = |x: usize| resolve(p, x);
    match s {
        Step::Binary(o, a, b) => Step::Binary(o, r(a), r(b)),
        Step::Scale(x, c) => Step::Scale(r(x), c),
        Step::Act(i, x, a) => Step::Act(i, r(x), a),
        Step::MatMul(a, b, ta, tb) => Step::MatMul(r(a), r(b), ta, tb),
        Step::Conv(x, w, a) => Step::Conv(r(x), r(w), a),
        Step::Reshape(x, sh) => Step::Reshape(r(x), sh),
        Step::Transpose(x) => Step::Transpose(r(x)),
        Step::Permute(x, perm) => Step::Permute(r(x), perm),
        Step::Concat(xs, a) => Step::Concat(xs.into_iter().map(r).collect(), a),
        Step::Sum(x, a, k) => Step::Sum(r(x), a, k),
        Step::Mean(x, a, k) => Step::Mean(r(x), a, k),
        Step::LastAxis(o, x) => Step::LastAxis(o, r(x)),
        Step::Loss(o, a, b) => Step::Loss(o, r(a), r(b)),
        Step::Sequential(x, l) => Step::Sequential(r(x), l),
        other => other,
    }
}

#[allow(clippy::too_many_arguments)]
fn model(p: &mut Program, n: usize, d: usize, hidden: usize, classes: usize, conv: Option<(usize, usize, usize, usize, usize)>, a: Act, loss: u8) -> hesse_core::Result<usize> {
    let mut layers = Vec::new();
    let x = match conv {
        Some((c, hw, k, stride, padding)) => {
            let x = p.input(&[n, c, hw, hw])?;
            layers.push(Layer::Conv2d { inputs: c, outputs: d, kernel: (k, k), stride: (stride, stride), padding: (padding, padding), dilation: (1, 1), groups: 1, bias: loss.is_multiple_of(2) });
            layers.push(Layer::Act(a));
            layers.push(Layer::Flatten);
            x
        }
        None => p.input(&[n, d])?,
    };
    let h = p.sequential(x, &layers)?;
    let width = *p.shape(h)?.last().unwrap_or(&0);
    let f = p.sequential(h, &[Layer::Linear { inputs: width, outputs: hidden, bias: true }, Layer::Act(a), Layer::Linear { inputs: hidden, outputs: classes, bias: !loss.is_multiple_of(3) }])?;
    match loss % 3 {
        0 => {
            let y = p.input(&[n])?;
            p.cross_entropy(f, y)
        }
        1 => {
            let y = p.input(&[n, classes])?;
            p.mse(f, y)
        }
        _ => {
            let y = p.input(&[n, classes])?;
            p.bce_with_logits(f, y)
        }
    }
}

/// A request: which node, what to differentiate, how many tangents, and deliberate mistakes.
#[derive(Clone, Debug)]
struct Req {
    out: usize,
    wrt: Option<usize>,
    k: usize,
    wrong_len: bool,
    backward: bool,
    cotangent: Option<usize>,
    multi: bool,
    curvature: u8,
    f: usize,
    samples: usize,
    chunk: usize,
    blocks: Vec<(usize, usize)>,
    special: u8,
    check_finite: bool,
}

fn req() -> impl Strategy<Value = Req> {
    (
        (node(), prop::option::weighted(0.3, 0usize..3), prop_oneof![6 => 0usize..3, 1 => Just(usize::MAX / 2)], prop::bool::weighted(0.15), any::<bool>(), prop::option::weighted(0.15, 0usize..8), prop::bool::weighted(0.15)),
        (any::<u8>(), node(), 0usize..3, 0usize..4, prop::collection::vec((prop_oneof![0usize..6, Just(usize::MAX)], prop_oneof![0usize..6, Just(usize::MAX)]), 0..3), any::<u8>(), any::<bool>()),
    )
        .prop_map(|((out, wrt, k, wrong_len, backward, cotangent, multi), (curvature, f, samples, chunk, blocks, special, check_finite))| Req {
            out,
            wrt,
            k,
            wrong_len,
            backward,
            cotangent,
            multi,
            curvature,
            f,
            samples,
            chunk,
            blocks,
            special,
            check_finite,
        })
}

/// Deterministic values, with NaN, ±∞ and non-integer labels mixed in when `special` says so.
fn values(n: usize, special: u8) -> Vec<f64> {
    (0..n)
        .map(|i| match (special % 12, i % 5) {
            (1, 0) => f64::NAN,
            (2, 1) => f64::NEG_INFINITY,
            (3, 2) => f64::INFINITY,
            (4, _) => 2.5,
            (5, _) => ((i as f64 + 1.0) * 0.37).sin(),
            _ => (i % 2) as f64, // valid as class labels too
        })
        .collect()
}

const SMALL: usize = 4096;

/// With PROPTEST_WATCHDOG set, a case that runs past 5 s is printed and the process aborted (a
/// hang never reaches the time assertion).
fn watchdog(steps: &[Step], reqs: &[Req]) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::{Mutex, Once};
    static CASE: Mutex<String> = Mutex::new(String::new());
    static START: AtomicU64 = AtomicU64::new(0);
    static ONCE: Once = Once::new();
    if std::env::var("PROPTEST_WATCHDOG").is_err() {
        return;
    }
    let now = || std::time::UNIX_EPOCH.elapsed().unwrap().as_millis() as u64;
    ONCE.call_once(|| {
        std::thread::spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if now() - START.load(Relaxed) > 5000 {
                use std::io::Write; // not eprintln!: the test harness captures that
                let _ = writeln!(std::io::stderr(), "WATCHDOG: case running > 5 s:\n{}", CASE.lock().unwrap());
                std::process::abort();
            }
        });
    });
    *CASE.lock().unwrap() = format!("{steps:#?}\n{reqs:#?}");
    START.store(now(), Relaxed);
}

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|c| c.parse().ok()).unwrap_or(default)
}

fn exercise(p: &Program, q: &Req) {
    let isa = Isa::Simd;
    let q = &Req { out: resolve(p, q.out), f: resolve(p, q.f), ..q.clone() };
    let n_params = p.n_params();
    let params = values(if n_params <= SMALL { n_params } else { 3 }, q.special);
    let inputs: Vec<Vec<f64>> = (0..p.n_inputs())
        .map(|s| {
            let n: usize = p.input_shape(s).unwrap().iter().product();
            values(if n <= SMALL { n } else { 1 }, q.special.wrapping_add(s as u8))
        })
        .collect();
    let ins: Vec<&[f64]> = inputs.iter().map(|v| v.as_slice()).collect();
    let wrt = match q.wrt {
        None => Wrt::Params,
        Some(s) => Wrt::Input(s),
    };
    let n_var = match wrt {
        Wrt::Params => n_params,
        Wrt::Input(s) => p.input_shape(s).map(|s| s.iter().product()).unwrap_or(0),
    };
    let out_len: usize = p.shape(q.out).map(|s| s.iter().product()).unwrap_or(1);
    let k = q.k;
    let small_k = k <= 3;
    let len = |n: usize| if small_k && n <= SMALL { k * n + usize::from(q.wrong_len) } else { 2 };
    let tangents = values(if q.multi { 0 } else { len(n_var) }, q.special);
    let cotangents = values(if q.multi { len(out_len) } else { 0 }, q.special);
    let cot = q.cotangent.map(|c| values(if c == 0 { out_len.min(SMALL) } else { c }, q.special));
    let f = q.f;
    let kind = [LossKind::Mse, LossKind::CrossEntropy, LossKind::BceWithLogits][q.curvature as usize % 3];
    let curvature = match q.curvature % 5 {
        0 => Curvature::Hessian,
        1 => Curvature::Ggn { output: f },
        2 => Curvature::EmpiricalFisher { output: f },
        _ => Curvature::MonteCarloFisher { output: f, kind, samples: q.samples, seed: 7 },
    };
    // Every mode, with the lengths, K and cotangent drawn independently of one another.
    let mode = match (q.multi, q.backward || cot.is_some(), k) {
        (true, _, _) => Mode::Vjps { cotangents: &cotangents, k },
        (false, false, 0) => Mode::Value,
        (false, false, _) => Mode::Jvp { tangents: &tangents, k },
        (false, true, 0) => cot.as_deref().map_or(Mode::Grad, |cotangent| Mode::Vjp { cotangent }),
        (false, true, _) => Mode::Hvp { tangents: &tangents, k, cotangent: cot.as_deref(), curvature },
    };
    let r = Run { params: &params, inputs: &ins, wrt, mode, check_finite: q.check_finite };
    let _ = p.run(isa, q.out, &r);
    let _ = p.run_capture(isa, q.out, &r, &[q.f, q.out / 2]);

    // The explicit Gauss–Newton, K-FAC and the Jacobian (only where the factor stays small).
    let f_len: usize = p.shape(f).map(|s| s.iter().product()).unwrap_or(0);
    if n_params <= 64 && f_len <= 64 {
        let part = match q.special % 3 {
            0 => GaussNewtonPart::Dense,
            1 => GaussNewtonPart::Diagonal,
            _ => GaussNewtonPart::Blocks(q.blocks.clone()),
        };
        let mc = (q.curvature % 2 == 1).then_some((q.samples, 3));
        let _ = p.gauss_newton_with(isa, f, kind, &params, &ins, q.chunk, &part, mc);
        let _ = p.gauss_newton_f64(isa, f, kind, &params, &ins, q.chunk, &part, mc);
        let _ = p.jacobian_t(isa, f, &params, &ins, q.chunk);
        let variant = if q.curvature.is_multiple_of(2) { KfacVariant::Exact } else { KfacVariant::MonteCarlo { samples: q.samples, seed: 5 } };
        if let Ok(factors) = p.kfac(isa, f, kind, &params, &ins, variant) {
            for fa in &factors {
                let v = values(fa.size() + usize::from(q.wrong_len), q.special);
                let _ = fa.mvp(&v);
                if let Ok(inv) = fa.inverse(if q.wrong_len { 0.0 } else { 0.1 }) {
                    let _ = inv.apply(&v);
                }
            }
        }
    }
    // The curvature as an operator, under two algorithms.
    if n_params <= 256 {
        let mut op = CurvatureOp { prog: p, isa, out: q.out, params: &params, inputs: &ins, curvature, products: 0, linearization: None };
        let _ = linalg::lanczos(&mut op, q.chunk, Which::Both, &LanczosOpts { max_iter: 6, tol: 1e-6, seed: 1, vectors: q.backward, check_symmetry: q.multi });
        if let Ok(opts) = CgOpts::with_damping(0.1) {
            let b = values(n_params + usize::from(q.wrong_len), q.special);
            let _ = linalg::cg(&mut op, &b, &CgOpts { max_iter: 5, ..opts });
        }
    }
}

proptest! {
    // PROPTEST_CASES overrides the count for a longer search.
    #![proptest_config(ProptestConfig { cases: env("PROPTEST_CASES", 1500), max_shrink_iters: env("PROPTEST_MAX_SHRINK_ITERS", 2000), ..ProptestConfig::default() })]
    #[test]
    fn no_program_and_no_request_panics(steps in prop::collection::vec(step(), 0..14), reqs in prop::collection::vec(req(), 1..4)) {
        let t = std::time::Instant::now();
        watchdog(&steps, &reqs);
        let p = build(&steps);
        for q in &reqs {
            exercise(&p, q);
        }
        // Small programs: a slow case means a loop over a size that should have been refused.
        prop_assert!(t.elapsed() < std::time::Duration::from_secs(2), "took {:?}", t.elapsed());
    }
}
