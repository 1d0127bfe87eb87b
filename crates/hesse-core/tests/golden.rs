//! Golden values from float64 PyTorch (test/fixtures/autodiff, written by
//! test/fixtures/gen_autodiff.py): loss, gradient, HVP, Hessian and input derivatives, natively
//! in f64 (relative error ≤ 1e-10) and f32 (≤ 1e-4).

use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::{Act, Curvature, Mode, Program, Run, Wrt};
use hesse_core::Isa;
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test/fixtures/autodiff");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files.iter().map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()).collect()
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}
fn dims(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect()
}

fn layer(v: &Value) -> Layer {
    let int = |k: &str| v[k].as_u64().unwrap() as usize;
    let pair = |k: &str| {
        let d = dims(&v[k]);
        (d[0], d[1])
    };
    match v["type"].as_str().unwrap() {
        "linear" => Layer::Linear { inputs: int("in"), outputs: int("out"), bias: true },
        "conv2d" => Layer::Conv2d { inputs: int("in"), outputs: int("out"), kernel: pair("kernel"), stride: pair("stride"), padding: pair("padding"), dilation: (1, 1), groups: 1, bias: true },
        "flatten" => Layer::Flatten,
        "layer_norm" => Layer::LayerNorm { dim: int("dim"), eps: v["eps"].as_f64().unwrap() },
        "relu" => Layer::Act(Act::Relu),
        "leaky_relu" => Layer::Act(Act::LeakyRelu(v["slope"].as_f64().unwrap())),
        "tanh" => Layer::Act(Act::Tanh),
        "sigmoid" => Layer::Act(Act::Sigmoid),
        "gelu" if v["approximate"] == "tanh" => Layer::Act(Act::GeluTanh),
        "gelu" => Layer::Act(Act::GeluErf),
        "softplus" => Layer::Act(Act::SoftplusThreshold),
        "elu" => Layer::Act(Act::Elu(v["alpha"].as_f64().unwrap())),
        t => panic!("unknown layer {t}"),
    }
}

fn rel(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let num: f64 = got.iter().zip(want).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = want.iter().map(|b| b * b).sum();
    num.sqrt() / den.sqrt().max(1e-300)
}

fn check<T: hesse_core::autodiff::dual::Scalar>(f: &Value, tol: f64) {
    let name = f["name"].as_str().unwrap();
    let cast = |v: &[f64]| v.iter().map(|&x| T::from_f64(x)).collect::<Vec<T>>();
    let widen = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let mut prog = Program::new();
    let x = prog.input(&dims(&f["input_shape"])).unwrap();
    let layers: Vec<Layer> = f["model"].as_array().unwrap().iter().map(layer).collect();
    let out = prog.sequential(x, &layers).unwrap();
    let y = prog.input(&dims(&f["y_shape"])).unwrap();
    let loss = match f["loss"].as_str().unwrap() {
        "mse" => prog.mse(out, y),
        "ce" => prog.cross_entropy(out, y),
        _ => prog.bce_with_logits(out, y),
    }
    .unwrap();
    let (params, xv, yv) = (cast(&nums(&f["params"])), cast(&nums(&f["x"])), cast(&nums(&f["y"])));
    let inputs: [&[T]; 2] = [&xv, &yv];
    let go = |wrt: Wrt, v: &[T], k: usize| {
        let mode = if k == 0 { Mode::Grad } else { Mode::Hvp { tangents: v, k, cotangent: None, curvature: Curvature::Hessian } };
        let r = Run { params: &params, inputs: &inputs, wrt, mode, check_finite: true };
        prog.run(Isa::Simd, loss, &r).unwrap()
    };
    let o = go(Wrt::Params, &cast(&nums(&f["v"])), 1);
    let g = o.grad.unwrap();
    assert!(rel(&widen(&o.output.p), &[f["loss_value"].as_f64().unwrap()]) < tol, "{name}: loss");
    assert!(rel(&widen(&g.p), &nums(&f["grad"])) < tol, "{name}: grad {}", rel(&widen(&g.p), &nums(&f["grad"])));
    assert!(rel(&widen(g.t.as_ref().unwrap()), &nums(&f["hvp"])) < tol, "{name}: hvp");
    if let Some(h) = f.get("hessian") {
        let p = params.len();
        let mut eye = vec![T::ZERO; p * p];
        (0..p).for_each(|i| eye[i * p + i] = T::ONE);
        let hess = go(Wrt::Params, &eye, p).grad.unwrap().t.unwrap();
        assert!(rel(&widen(&hess), &nums(h)) < tol, "{name}: hessian");
    }
    let oi = go(Wrt::Input(0), &cast(&nums(&f["input_v"])), 1).grad.unwrap();
    assert!(rel(&widen(&oi.p), &nums(&f["input_grad"])) < tol, "{name}: input grad");
    assert!(rel(&widen(oi.t.as_ref().unwrap()), &nums(&f["input_hvp"])) < tol, "{name}: input hvp");
}

#[test]
fn matches_pytorch_float64_references() {
    let fx = fixtures();
    assert!(fx.len() >= 10, "fixtures missing");
    for f in &fx {
        check::<f64>(f, 1e-10);
        check::<f32>(f, 1e-4);
    }
}
