//! Never a panic, never a silently wrong answer: sizes that overflow are errors naming the op,
//! degenerate batches are errors, and cross-entropy with −∞ logits gives PyTorch's finite answer
//! (and with a +∞ logit PyTorch's NaN).

use hesse_core::autodiff::{Curvature, GaussNewtonPart, KfacVariant, LossKind, Mode, Program, Run, Wrt};
use hesse_core::kernels::ConvAttrs;
use hesse_core::{ops, Dtype, ErrorCode, Isa, Tensor};

fn run<'a>(params: &'a [f64], inputs: &'a [&'a [f64]], tangents: &'a [f64], k: usize) -> Run<'a, f64> {
    Run::at(params, inputs, if k == 0 { Mode::Grad } else { Mode::Hvp { tangents, k, cotangent: None, curvature: Curvature::Hessian } })
}

#[test]
fn conv_padding_that_overflows_is_an_error_not_a_wrapped_shape() {
    let x = Tensor::zeros(&[1, 1, 2, 2], Dtype::F32).unwrap();
    let w = Tensor::zeros(&[1, 1, 1, 1], Dtype::F32).unwrap();
    // 2·p overflows usize: before, H + 2p wrapped and the op returned a small, wrong output.
    let e = ops::conv2d(Isa::Simd, &x, &w, ConvAttrs::symmetric((1, 1), (usize::MAX / 2 + 1, 0))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert!(e.message.contains("conv2d") && e.message.contains("[1, 1, 2, 2]"), "{}", e.message);
    // An output whose element count overflows: OUT_OF_MEMORY naming the op.
    let e = ops::conv2d(Isa::Simd, &x, &w, ConvAttrs::symmetric((1, 1), (usize::MAX / 8, usize::MAX / 8))).unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfMemory, "{}", e.message);
    assert!(e.message.contains("conv2d"), "{}", e.message);
    // The same geometry check guards programs.
    let mut p = Program::new();
    let xi = p.input(&[1, 1, 2, 2]).unwrap();
    let wi = p.param(&[1, 1, 1, 1]).unwrap();
    assert_eq!(p.conv2d(xi, wi, ConvAttrs::symmetric((1, 1), (usize::MAX / 2 + 1, 0))).unwrap_err().code, ErrorCode::InvalidArgument);
    // ...and a sane conv still works after it.
    let y = ops::conv2d(Isa::Simd, &x, &w, ConvAttrs::symmetric((1, 1), (1, 1))).unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 4]);
}

#[test]
fn node_shapes_parameter_counts_and_concat_sizes_are_checked() {
    let mut p = Program::new();
    let e = p.input(&[1 << 40, 1 << 40]).unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfMemory);
    assert!(e.message.contains("[1099511627776, 1099511627776]"), "{}", e.message);
    let a = p.param(&[usize::MAX / 2]).unwrap();
    let e = p.param(&[usize::MAX / 2 + 2]).unwrap_err();
    assert!(e.message.contains("parameters"), "{}", e.message);
    let e = p.concat(&[a, a, a], 0).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
    assert!(e.message.contains("concat"), "{}", e.message);
    assert_eq!(p.n_params(), usize::MAX / 2);
}

#[test]
fn a_failed_build_step_rolls_back() {
    let mut p = Program::new();
    let x = p.input(&[2, 3]).unwrap();
    let m = p.mark();
    let layers = [hesse_core::autodiff::builder::Layer::Linear { inputs: 3, outputs: 4, bias: true }, hesse_core::autodiff::builder::Layer::Linear { inputs: 5, outputs: 1, bias: true }];
    assert_eq!(p.sequential(x, &layers).unwrap_err().code, ErrorCode::ShapeMismatch);
    p.rollback(m);
    assert_eq!((p.nodes().len(), p.n_params(), p.layers().len()), (1, 0, 0));
    assert_eq!(p.min_run_elements(), 12); // the staged x and its node value
}

#[test]
fn tangent_counts_that_overflow_are_errors() {
    let mut p = Program::new();
    let w = p.param(&[3]).unwrap();
    let out = p.sum(w, None, false).unwrap();
    let params = [1.0, 2.0, 3.0];
    let e = p.run(Isa::Simd, out, &run(&params, &[], &[], usize::MAX / 2)).unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfMemory, "{}", e.message);
    assert!(e.message.contains("tangents"), "{}", e.message);
}

/// logits [1, 3] as parameters, labels [1]: cross-entropy and its derivatives.
fn ce_program() -> (Program, usize, usize) {
    let mut p = Program::new();
    let z = p.param(&[1, 3]).unwrap();
    let y = p.input(&[1]).unwrap();
    let ce = p.cross_entropy(z, y).unwrap();
    let ls = p.log_softmax(z).unwrap();
    (p, ce, ls)
}

/// Expected values in closed form (PyTorch is not installed here): for logits z = [0, −∞, 1]
/// and label 0, p = softmax(z) = [1, 0, e]/(1 + e); F.cross_entropy = log(1 + e) − 0; its
/// gradient p − onehot(0); its Hessian diag(p) − ppᵀ (zero row and column at the −∞ entry);
/// F.log_softmax = z − log(1 + e), −∞ only at the −∞ entry.
#[test]
fn cross_entropy_with_minus_infinity_logits_is_finite_as_in_pytorch() {
    let (p, ce, ls) = ce_program();
    let z = [0.0, f64::NEG_INFINITY, 1.0];
    let e1 = std::f64::consts::E;
    let prob = [1.0 / (1.0 + e1), 0.0, e1 / (1.0 + e1)];
    let v = [0.3, -0.7, 1.1];
    let labels = [0.0];
    let inputs: [&[f64]; 1] = [&labels];
    let o = p.run(Isa::Simd, ce, &run(&z, &inputs, &v, 1)).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
    assert!(close(o.output.p[0], (1.0 + e1).ln()), "loss {}", o.output.p[0]);
    let g = o.grad.unwrap();
    let want_g = [prob[0] - 1.0, 0.0, prob[2]];
    assert!(g.p.iter().zip(want_g).all(|(&a, b)| close(a, b)), "grad {:?}", g.p);
    let pv: f64 = (0..3).map(|j| prob[j] * v[j]).sum();
    let hv = g.t.unwrap();
    for i in 0..3 {
        assert!(close(hv[i], prob[i] * v[i] - prob[i] * pv), "hvp {hv:?}");
    }
    let o = p.run(Isa::Simd, ls, &Run::at(&z, &inputs, Mode::Value)).unwrap();
    let lse = (1.0 + e1).ln();
    assert!(close(o.output.p[0], -lse) && o.output.p[1] == f64::NEG_INFINITY && close(o.output.p[2], 1.0 - lse), "{:?}", o.output.p);
    // The explicit GGN at the same point agrees with the HVP (the −∞ class contributes nothing).
    let g = p.gauss_newton(Isa::Simd, 0, LossKind::CrossEntropy, &z, &inputs, 3, &GaussNewtonPart::Dense).unwrap();
    assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    // A label out of range is an error naming it, and the program still runs afterwards.
    let bad = [3.0];
    let e = p.run(Isa::Simd, ce, &run(&z, &[&bad], &[], 0)).unwrap_err();
    assert!(e.message.contains("label 3"), "{}", e.message);
    assert!(p.run(Isa::Simd, ce, &run(&z, &inputs, &[], 0)).is_ok());
}

/// PyTorch's log_softmax is (x − m) − log Σ exp(x − m), m the row max: a +∞ logit makes the
/// whole row NaN (exp(∞ − ∞) = NaN poisons the sum; pytorch/pytorch#6864 shows
/// F.log_softmax([0, inf]) = [nan, nan]), so F.cross_entropy of such a row is NaN whatever the
/// label, and a NaN logit does the same; other rows are untouched, and torch.logsumexp([0, inf])
/// stays inf. (A regression: crossEntropy([[inf, −inf]], [1]) gave inf = inf − (−inf).)
#[test]
fn a_plus_infinity_logit_makes_its_row_nan_as_in_pytorch() {
    let mut p = Program::new();
    let z = p.param(&[2, 2]).unwrap();
    let y = p.input(&[2]).unwrap();
    let (ce, ls, sm, lse) = (p.cross_entropy(z, y).unwrap(), p.log_softmax(z).unwrap(), p.softmax(z).unwrap(), p.logsumexp(z).unwrap());
    let value = |node: usize, z: &[f64], labels: &[f64]| {
        let inputs: [&[f64]; 1] = [labels];
        p.run(Isa::Simd, node, &Run::at(z, &inputs, Mode::Value)).unwrap().output.p
    };
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    for labels in [[1.0, 0.0], [0.0, 1.0]] {
        assert!(value(ce, &[inf, -inf, 0.0, 1.0], &labels)[0].is_nan());
        assert!(value(ce, &[nan, 0.0, 0.0, 1.0], &labels)[0].is_nan());
    }
    // The same row with a finite max and the label at −∞: +∞, as PyTorch (−log 0).
    assert_eq!(value(ce, &[0.0, -inf, 0.0, 1.0], &[1.0, 0.0])[0], inf);
    let l1 = (1.0 + std::f64::consts::E).ln();
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * (1.0 + b.abs());
    let (got, soft) = (value(ls, &[0.0, inf, 0.0, 1.0], &[0.0, 0.0]), value(sm, &[0.0, inf, 0.0, 1.0], &[0.0, 0.0]));
    assert!(got[0].is_nan() && got[1].is_nan() && close(got[2], -l1) && close(got[3], 1.0 - l1), "{got:?}");
    assert!(soft[0].is_nan() && soft[1].is_nan() && close(soft[2] + soft[3], 1.0), "{soft:?}");
    assert_eq!(value(lse, &[0.0, inf, 0.0, 1.0], &[0.0, 0.0])[0], inf);
}

#[test]
fn empty_batches_and_bad_blocks_are_errors() {
    let mut p = Program::new();
    let x = p.input(&[0, 2]).unwrap();
    let f = p.sequential(x, &[hesse_core::autodiff::builder::Layer::Linear { inputs: 2, outputs: 2, bias: true }]).unwrap();
    let y = p.input(&[0, 2]).unwrap();
    let _ = p.mse(f, y).unwrap_err(); // mean over zero elements is refused at build time
    let params = vec![0.5; p.n_params()];
    let inputs: [&[f64]; 2] = [&[], &[]];
    for variant in [KfacVariant::Exact, KfacVariant::MonteCarlo { samples: 2, seed: 1 }] {
        let e = p.kfac(Isa::Simd, f, LossKind::Mse, &params, &inputs, variant).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
    }
    let e = p.gauss_newton_with(Isa::Simd, f, LossKind::Mse, &params, &inputs, 4, &GaussNewtonPart::Dense, Some((3, 1))).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
    // Blocks outside the parameters, including ranges whose end overflows.
    for blocks in [vec![(5, 2)], vec![(usize::MAX, 2)], vec![(0, usize::MAX)]] {
        let e = p.gauss_newton(Isa::Simd, f, LossKind::Mse, &params, &inputs, 4, &GaussNewtonPart::Blocks(blocks)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
    }
}

#[test]
fn empty_values_with_huge_dims_cost_nothing() {
    // [2⁶², 0] is a valid empty shape; a rule that looped over its first dim would never end.
    let mut p = Program::new();
    let x = p.param(&[1 << 62, 0]).unwrap();
    let t = p.transpose(x).unwrap();
    let c = p.concat(&[t, t], 0).unwrap();
    let out = p.sum(c, None, false).unwrap();
    let t0 = std::time::Instant::now();
    let o = p.run(Isa::Simd, out, &run(&[], &[], &[], 1)).unwrap();
    assert_eq!(o.output.p, vec![0.0]);
    assert!(o.grad.unwrap().p.is_empty());
    let e = ops::transpose(&Tensor::zeros(&[1 << 62, 0], Dtype::F64).unwrap()).unwrap();
    assert_eq!(e.shape(), &[0, 1 << 62]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn directions_of_an_empty_variable_are_bounded() {
    // Nothing bounds K when the variable is empty (K·0 values are passed): a huge K is refused
    // instead of looping K times over nothing.
    let mut p = Program::new();
    let w = p.param(&[0]).unwrap();
    let out = p.sum(w, None, false).unwrap();
    let e = p.run(Isa::Simd, out, &run(&[], &[], &[], usize::MAX / 2)).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument, "{}", e.message);
    let o = p.run(Isa::Simd, out, &run(&[], &[], &[], 3)).unwrap();
    assert_eq!(o.grad.unwrap().t.unwrap().len(), 0);
}

#[test]
fn fisher_curvature_of_an_empty_batch_with_a_huge_dim_returns_at_once() {
    let mut p = Program::new();
    let x = p.input(&[1 << 62, 0]).unwrap();
    let out = p.sum(x, None, false).unwrap();
    let t0 = std::time::Instant::now();
    for curvature in [Curvature::EmpiricalFisher { output: x }, Curvature::MonteCarloFisher { output: x, kind: LossKind::CrossEntropy, samples: 2, seed: 1 }] {
        let inputs: [&[f64]; 1] = [&[]];
        let r = Run { wrt: Wrt::Input(0), mode: Mode::Hvp { tangents: &[], k: 1, cotangent: None, curvature }, ..run(&[], &inputs, &[], 1) };
        assert!(p.run(Isa::Simd, out, &r).unwrap().grad.unwrap().p.is_empty());
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(1));
}
