//! The autodiff engine against mathematics: finite differences of values and gradients, and
//! identities every Hessian satisfies (symmetry, linearity in v, H·eᵢ = column i, ⟨u, Jv⟩ = ⟨Jᵀu, v⟩).
//! f64 throughout, for models covering every primitive op.

use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::{Act, Curvature, Mode, Program, Run, Wrt};
use hesse_core::Isa;

struct Model {
    prog: Program,
    out: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    params: Vec<f64>,
}

fn wave(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|i| ((i as f64 + 1.0) * s).sin() * 0.9 + 0.1 * ((i * 7 % 5) as f64 - 2.0)).collect()
}

/// A model: layers on an input of `x_shape`, then `loss` ("ce", "mse", "bce").
fn model(x_shape: &[usize], layers: &[Layer], loss: &str, classes: usize) -> Model {
    let mut prog = Program::new();
    let x = prog.input(x_shape).unwrap();
    let n = x_shape[0];
    let f = prog.sequential(x, layers).unwrap();
    let out_shape = prog.shape(f).unwrap().to_vec();
    let (y, yv) = match loss {
        "ce" => (prog.input(&[n]).unwrap(), (0..n).map(|i| ((i * 7 + 3) % classes) as f64).collect()),
        _ => {
            let m: usize = out_shape.iter().product();
            let yv = if loss == "bce" { wave(m, 0.7).iter().map(|v| (v + 1.0) / 2.0).collect() } else { wave(m, 0.7) };
            (prog.input(&out_shape).unwrap(), yv)
        }
    };
    let out = match loss {
        "ce" => prog.cross_entropy(f, y).unwrap(),
        "mse" => prog.mse(f, y).unwrap(),
        _ => prog.bce_with_logits(f, y).unwrap(),
    };
    let params = wave(prog.n_params(), 0.37).iter().map(|v| v * 0.8).collect();
    Model { x: wave(x_shape.iter().product(), 1.3), y: yv, params, prog, out }
}

fn lin(i: usize, o: usize) -> Layer {
    Layer::Linear { inputs: i, outputs: o, bias: true }
}

fn models() -> Vec<(&'static str, Model)> {
    let mlp = |a: Act| vec![lin(4, 5), Layer::Act(a), lin(5, 3)];
    let mut v = vec![];
    for (name, a) in [
        ("relu", Act::Relu), ("leaky", Act::LeakyRelu(0.1)), ("tanh", Act::Tanh), ("sigmoid", Act::Sigmoid),
        ("gelu", Act::GeluErf), ("gelu_tanh", Act::GeluTanh), ("softplus", Act::SoftplusThreshold), ("elu", Act::Elu(1.0)),
    ] {
        v.push((name, model(&[6, 4], &mlp(a), "ce", 3)));
    }
    v.push(("mse", model(&[5, 4], &mlp(Act::Tanh), "mse", 3)));
    v.push(("bce", model(&[5, 4], &mlp(Act::Tanh), "bce", 3)));
    v.push(("layernorm", model(&[5, 4], &[lin(4, 6), Layer::LayerNorm { dim: 6, eps: 1e-5 }, Layer::Act(Act::Tanh), lin(6, 3)], "ce", 3)));
    v.push((
        "cnn",
        model(
            &[2, 2, 5, 5],
            &[
                Layer::Conv2d { inputs: 2, outputs: 3, kernel: (3, 3), stride: (1, 1), padding: (1, 1), dilation: (1, 1), groups: 1, bias: true },
                Layer::Act(Act::Tanh),
                Layer::Conv2d { inputs: 3, outputs: 2, kernel: (2, 2), stride: (2, 2), padding: (0, 0), dilation: (1, 1), groups: 1, bias: true },
                Layer::Flatten,
                lin(8, 3),
            ],
            "ce",
            3,
        ),
    ));
    v
}

impl Model {
    fn run(&self, params: &[f64], wrt: Wrt, x: &[f64], v: &[f64], k: usize, backward: bool) -> hesse_core::autodiff::Outcome<f64> {
        let inputs: [&[f64]; 2] = [x, &self.y];
        let mode = match (backward, k) {
            (false, 0) => Mode::Value,
            (false, _) => Mode::Jvp { tangents: v, k },
            (true, 0) => Mode::Grad,
            (true, _) => Mode::Hvp { tangents: v, k, cotangent: None, curvature: Curvature::Hessian },
        };
        let r = Run { params, inputs: &inputs, wrt, mode, check_finite: true };
        self.prog.run(Isa::Simd, self.out, &r).unwrap()
    }
    fn loss(&self, params: &[f64]) -> f64 {
        self.run(params, Wrt::Params, &self.x, &[], 0, false).output.p[0]
    }
    fn grad(&self, params: &[f64]) -> Vec<f64> {
        self.run(params, Wrt::Params, &self.x, &[], 0, true).grad.unwrap().p
    }
    /// (gradient, H·v₁…H·v_K) from one forward-over-reverse pass.
    fn hvp(&self, vs: &[f64], k: usize) -> (Vec<f64>, Vec<f64>) {
        let g = self.run(&self.params, Wrt::Params, &self.x, vs, k, true).grad.unwrap();
        (g.p, g.t.unwrap_or_else(|| vec![0.0; vs.len()]))
    }
}

fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-12);
    num / den
}

#[test]
fn gradient_matches_central_differences() {
    for (name, m) in models() {
        let g = m.grad(&m.params);
        let h = 1e-6;
        let fd: Vec<f64> = (0..m.params.len())
            .map(|i| {
                let mut p = m.params.clone();
                p[i] += h;
                let up = m.loss(&p);
                p[i] -= 2.0 * h;
                (up - m.loss(&p)) / (2.0 * h)
            })
            .collect();
        let e = rel_err(&g, &fd);
        assert!(e < 1e-6, "{name}: gradient vs FD relative error {e}");
    }
}

#[test]
fn hvp_matches_differences_of_gradients_and_grad_is_unchanged() {
    for (name, m) in models() {
        let v = wave(m.params.len(), 2.1);
        let (g, hv) = m.hvp(&v, 1);
        assert!(rel_err(&g, &m.grad(&m.params)) < 1e-14, "{name}: the dual pass changed the gradient");
        let h = 1e-5;
        let shifted = |s: f64| m.grad(&m.params.iter().zip(&v).map(|(p, d)| p + s * d).collect::<Vec<_>>());
        let fd: Vec<f64> = shifted(h).iter().zip(shifted(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        let e = rel_err(&hv, &fd);
        // relu-family nets: FD across a kink could differ, but our points are generic.
        assert!(e < 1e-6, "{name}: HVP vs FD of gradients relative error {e}");
    }
}

#[test]
fn hessian_is_symmetric_its_columns_are_hvps_and_hvp_is_linear() {
    for (name, m) in models() {
        let p = m.params.len();
        // All P unit vectors in one multi-tangent pass: the full Hessian.
        let mut eye = vec![0.0; p * p];
        (0..p).for_each(|i| eye[i * p + i] = 1.0);
        let (_, hess) = m.hvp(&eye, p);
        let mut asym: f64 = 0.0;
        let mut scale: f64 = 0.0;
        for i in 0..p {
            for j in 0..p {
                asym = asym.max((hess[i * p + j] - hess[j * p + i]).abs());
                scale = scale.max(hess[i * p + j].abs());
            }
        }
        assert!(asym <= 1e-12 * scale.max(1.0), "{name}: Hessian asymmetry {asym} (scale {scale})");
        // H·v (K = 1) equals Σ vᵢ·(column i), and H(2u + 3v) = 2Hu + 3Hv (K = 3 in one pass).
        let (u, v) = (wave(p, 0.9), wave(p, 1.7));
        let w: Vec<f64> = u.iter().zip(&v).map(|(a, b)| 2.0 * a + 3.0 * b).collect();
        let (_, hu) = m.hvp(&u, 1);
        let hu_cols: Vec<f64> = (0..p).map(|r| (0..p).map(|c| hess[c * p + r] * u[c]).sum()).collect();
        assert!(rel_err(&hu, &hu_cols) < 1e-12, "{name}: H·u vs Hessian columns");
        let (_, three) = m.hvp(&[u.clone(), v.clone(), w].concat(), 3);
        let combo: Vec<f64> = (0..p).map(|i| 2.0 * three[i] + 3.0 * three[p + i]).collect();
        assert!(rel_err(&three[2 * p..], &combo) < 1e-12, "{name}: HVP not linear in v");
        assert!(rel_err(&three[..p], &hu) < 1e-13, "{name}: K = 3 pass disagrees with K = 1");
    }
}

#[test]
fn jvp_and_vjp_are_adjoint_and_input_derivatives_match_differences() {
    for (name, m) in models() {
        // Output of the network before the loss: the node feeding the loss is not exposed, so
        // use the loss's gradient w.r.t. the input instead: ⟨∇ₓL, u⟩ = JVP of L along u.
        let u = wave(m.x.len(), 0.57);
        let jvp = m.run(&m.params, Wrt::Input(0), &m.x, &u, 1, false).output.t.unwrap()[0];
        let out = m.run(&m.params, Wrt::Input(0), &m.x, &u, 1, true);
        let gx = out.grad.unwrap();
        let dot: f64 = gx.p.iter().zip(&u).map(|(a, b)| a * b).sum();
        assert!((jvp - dot).abs() <= 1e-12 * dot.abs().max(1.0), "{name}: ⟨∇ₓL, u⟩ {dot} vs JVP {jvp}");
        let h = 1e-5;
        let gshift = |s: f64| {
            let xs: Vec<f64> = m.x.iter().zip(&u).map(|(a, b)| a + s * b).collect();
            m.run(&m.params, Wrt::Input(0), &xs, &[], 0, true).grad.unwrap().p
        };
        let fd: Vec<f64> = gshift(h).iter().zip(gshift(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        let e = rel_err(&gx.t.unwrap(), &fd);
        assert!(e < 1e-6, "{name}: input HVP vs FD relative error {e}");
    }
}

#[test]
fn vector_output_jvp_vjp_adjoint() {
    // f(θ) = network output (a [N, C] matrix), J its Jacobian: ⟨w, J v⟩ = ⟨Jᵀ w, v⟩.
    let mut prog = Program::new();
    let x = prog.input(&[3, 4]).unwrap();
    let f = prog.sequential(x, &[lin(4, 5), Layer::Act(Act::GeluErf), lin(5, 2)]).unwrap();
    let params = wave(prog.n_params(), 0.3);
    let xv = wave(12, 1.1);
    let v = wave(prog.n_params(), 0.8);
    let w = wave(6, 2.3);
    let inputs: [&[f64]; 1] = [&xv];
    let base = Run::at(&params, &inputs, Mode::Jvp { tangents: &v, k: 1 });
    let jv = prog.run(Isa::Simd, f, &base).unwrap().output.t.unwrap();
    let r = Run { mode: Mode::Vjp { cotangent: &w }, ..base };
    let jtw = prog.run(Isa::Simd, f, &r).unwrap().grad.unwrap().p;
    let lhs: f64 = w.iter().zip(&jv).map(|(a, b)| a * b).sum();
    let rhs: f64 = jtw.iter().zip(&v).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0), "⟨w, Jv⟩ {lhs} vs ⟨Jᵀw, v⟩ {rhs}");
}

#[test]
fn scalar_and_simd_kernels_give_the_same_hvp() {
    for (name, m) in models() {
        let v = wave(m.params.len(), 2.1);
        let inputs: [&[f64]; 2] = [&m.x, &m.y];
        let r = Run::at(&m.params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature: Curvature::Hessian });
        let a = m.prog.run(Isa::Simd, m.out, &r).unwrap().grad.unwrap().t.unwrap();
        let b = m.prog.run(Isa::Scalar, m.out, &r).unwrap().grad.unwrap().t.unwrap();
        assert!(rel_err(&a, &b) < 1e-12, "{name}");
    }
}

/// Constants (captured tensors) are leaves: a program over them runs and differentiates
/// (a regression: indexing a leaf's missing inputs used to trap the wasm instance).
#[test]
fn constants_are_leaves() {
    let mut p = Program::new();
    let f = p.param(&[2, 3]).unwrap();
    let y = p.constant(&[2], vec![2.0, 0.0]).unwrap();
    let l = p.cross_entropy(f, y).unwrap();
    let params = wave(6, 0.4);
    let r = Run::at(&params, &[], Mode::Grad);
    let g = p.run(Isa::Simd, l, &r).unwrap().grad.unwrap().p;
    // ∂CE/∂logits = (softmax − onehot)/N: each row sums to zero.
    assert!((g[0] + g[1] + g[2]).abs() < 1e-15 && (g[3] + g[4] + g[5]).abs() < 1e-15);
    assert!(g[2] < 0.0 && g[3] < 0.0);
}

/// The explicit GGN (forward-mode Jᵀ, closed-form loss factors, SYRK) equals the GGN from
/// reverse-sweep products (G·eⱼ for all j), for each loss; its diagonal and per-layer blocks are
/// the diagonal and blocks of it.
#[test]
fn explicit_gauss_newton_equals_products() {
    use hesse_core::autodiff::{Curvature, GaussNewtonPart, LossKind};
    // Batch 6: N·C = 18 < P = 43 (J by reverse mode); batch 40: N·C = 120 > P (forward mode).
    for (loss, kind, n) in [("ce", LossKind::CrossEntropy, 6), ("mse", LossKind::Mse, 6), ("bce", LossKind::BceWithLogits, 6), ("ce", LossKind::CrossEntropy, 40), ("bce", LossKind::BceWithLogits, 40)] {
        let mut prog = Program::new();
        let x = prog.input(&[n, 4]).unwrap();
        let f = prog.sequential(x, &[lin(4, 5), Layer::Act(Act::Tanh), lin(5, 3)]).unwrap();
        let (y, yv): (usize, Vec<f64>) = if loss == "ce" { (prog.input(&[n]).unwrap(), (0..n).map(|i| (i % 3) as f64).collect()) } else { (prog.input(&[n, 3]).unwrap(), wave(3 * n, 0.3).iter().map(|v| (v + 1.0) / 2.0).collect()) };
        let out = match loss {
            "ce" => prog.cross_entropy(f, y),
            "mse" => prog.mse(f, y),
            _ => prog.bce_with_logits(f, y),
        }
        .unwrap();
        let p = prog.n_params();
        let params = wave(p, 0.45);
        let xv = wave(4 * n, 1.7);
        let inputs: [&[f64]; 2] = [&xv, &yv];
        let mut eye = vec![0.0; p * p];
        (0..p).for_each(|i| eye[i * p + i] = 1.0);
        let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &eye, k: p, cotangent: None, curvature: Curvature::Ggn { output: f } });
        let by_products = prog.run(Isa::Simd, out, &r).unwrap().grad.unwrap().t.unwrap();
        let dense = prog.gauss_newton(Isa::Simd, f, kind, &params, &inputs, 7, &GaussNewtonPart::Dense).unwrap();
        assert!(rel_err(&dense, &by_products) < 1e-12, "{loss}: explicit GGN vs products {}", rel_err(&dense, &by_products));
        let diag = prog.gauss_newton(Isa::Simd, f, kind, &params, &inputs, 64, &GaussNewtonPart::Diagonal).unwrap();
        let want: Vec<f64> = (0..p).map(|i| dense[i * p + i]).collect();
        assert!(rel_err(&diag, &want) < 1e-13, "{loss}: diagonal");
        // Blocks: the first layer's weight (20 values) and the last layer's bias (3).
        let blocks = prog.gauss_newton(Isa::Simd, f, kind, &params, &inputs, 64, &GaussNewtonPart::Blocks(vec![(0, 20), (p - 3, 3)])).unwrap();
        let b1: Vec<f64> = (0..20).flat_map(|i| (0..20).map(move |j| (i, j))).map(|(i, j)| dense[i * p + j]).collect();
        let b2: Vec<f64> = (p - 3..p).flat_map(|i| (p - 3..p).map(move |j| (i, j))).map(|(i, j)| dense[i * p + j]).collect();
        assert!(rel_err(&blocks, &[b1, b2].concat()) < 1e-13, "{loss}: blocks");
    }
}

/// K-FAC: for a batch of one, B ⊗ A equals each linear layer's exact GGN block (in hesse's
/// parameter order); its product and damped inverse are consistent; the Monte Carlo B converges
/// to the exact one.
#[test]
fn kfac_is_exact_for_one_sample_and_consistent() {
    use hesse_core::autodiff::{GaussNewtonPart, KfacVariant, LossKind};
    for (loss, kind) in [("ce", LossKind::CrossEntropy), ("mse", LossKind::Mse), ("bce", LossKind::BceWithLogits)] {
        for n in [1usize, 5] {
            let mut prog = Program::new();
            let x = prog.input(&[n, 3]).unwrap();
            let f = prog.sequential(x, &[lin(3, 4), Layer::Act(Act::Tanh), lin(4, 3)]).unwrap();
            let (y, yv): (usize, Vec<f64>) = if loss == "ce" { (prog.input(&[n]).unwrap(), (0..n).map(|i| (i % 3) as f64).collect()) } else { (prog.input(&[n, 3]).unwrap(), wave(3 * n, 0.3).iter().map(|v| (v + 1.0) / 2.0).collect()) };
            match loss {
                "ce" => prog.cross_entropy(f, y),
                "mse" => prog.mse(f, y),
                _ => prog.bce_with_logits(f, y),
            }
            .unwrap();
            let params = wave(prog.n_params(), 0.45);
            let xv = wave(3 * n, 1.7);
            let inputs: [&[f64]; 2] = [&xv, &yv];
            let factors = prog.kfac(Isa::Simd, f, kind, &params, &inputs, KfacVariant::Exact).unwrap();
            assert_eq!(factors.len(), 2);
            let ranges: Vec<(usize, usize)> = factors.iter().map(|k| (k.weight_offset, k.size())).collect();
            let blocks = prog.gauss_newton(Isa::Simd, f, kind, &params, &inputs, 64, &GaussNewtonPart::Blocks(ranges)).unwrap();
            let mut off = 0;
            for k in &factors {
                let m = k.size();
                // B ⊗ A in the layer's parameter order, column by column through mvp.
                let mut kron = vec![0.0; m * m];
                for j in 0..m {
                    let mut e = vec![0.0; m];
                    e[j] = 1.0;
                    let col = k.mvp(&e).unwrap();
                    (0..m).for_each(|i| kron[i * m + j] = col[i]);
                }
                let block = &blocks[off..off + m * m];
                off += m * m;
                if n == 1 {
                    assert!(rel_err(&kron, block) < 1e-12, "{loss}: K-FAC vs GGN block of layer {} ({})", k.layer, rel_err(&kron, block));
                } else {
                    // Not exact for N > 1, but the same scale and positive semidefinite.
                    let tr = |a: &[f64]| (0..m).map(|i| a[i * m + i]).sum::<f64>();
                    assert!(tr(&kron) > 0.0 && (tr(&kron) / tr(block)).ln().abs() < 1.5, "{loss}: traces {} vs {}", tr(&kron), tr(block));
                }
                // The damped inverse inverts B ⊗ A + λI.
                let inv = k.inverse(0.1).unwrap();
                let v = wave(m, 0.77);
                let z = inv.apply(&v).unwrap();
                let back: Vec<f64> = k.mvp(&z).unwrap().iter().zip(&z).map(|(a, b)| a + 0.1 * b).collect();
                assert!(rel_err(&back, &v) < 1e-10, "{loss}: (B⊗A + λI)·inverse(v) ≠ v");
                assert!(k.inverse(0.0).is_err());
            }
            // Monte Carlo B converges to the exact B (a bound, not a value: ~1/√samples).
            let mc = prog.kfac(Isa::Simd, f, kind, &params, &inputs, KfacVariant::MonteCarlo { samples: 20_000, seed: 7 }).unwrap();
            for (e, m) in factors.iter().zip(&mc) {
                assert!(rel_err(&m.a, &e.a) < 1e-14, "{loss}: A does not depend on the labels");
                assert!(rel_err(&m.b, &e.b) < 0.05, "{loss}: MC B vs exact B {}", rel_err(&m.b, &e.b));
            }
        }
    }
}

/// Lanczos on a program's Hessian and GGN (as operators) finds the extreme eigenvalues of the
/// dense matrices (eigendecomposed directly) to 1e-6 relative.
#[test]
fn lanczos_on_program_curvature_matches_dense_eigenvalues() {
    use hesse_core::autodiff::{CurvatureOp, Curvature};
    use hesse_core::linalg::{eigh, lanczos, LanczosOpts, Which};
    let mut prog = Program::new();
    let x = prog.input(&[8, 4]).unwrap();
    let f = prog.sequential(x, &[lin(4, 6), Layer::Act(Act::Tanh), lin(6, 3)]).unwrap();
    let y = prog.input(&[8]).unwrap();
    let out = prog.cross_entropy(f, y).unwrap();
    let p = prog.n_params();
    let params = wave(p, 0.45);
    let (xv, yv) = (wave(32, 1.7), (0..8).map(|i| (i % 3) as f64).collect::<Vec<_>>());
    let inputs: [&[f64]; 2] = [&xv, &yv];
    for curvature in [Curvature::Hessian, Curvature::Ggn { output: f }] {
        let mut eye = vec![0.0; p * p];
        (0..p).for_each(|i| eye[i * p + i] = 1.0);
        let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &eye, k: p, cotangent: None, curvature });
        let dense = prog.run(Isa::Simd, out, &r).unwrap().grad.unwrap().t.unwrap();
        let (exact, _) = eigh(&dense, p).unwrap(); // ascending
        let mut op = CurvatureOp { prog: &prog, isa: Isa::Simd, out, params: &params, inputs: &inputs, curvature, products: 0, linearization: None };
        // Hessian: the 3 smallest and 3 largest (Which::Both, ascending). The GGN is singular
        // (rank ≤ N·(C − 1) = 16 < P): a Krylov space holds its null space once, so Lanczos finds
        // 0 but not its multiplicity; compare its 3 largest.
        let (k, which) = if curvature == Curvature::Hessian { (6, Which::Both) } else { (3, Which::Largest) };
        let res = lanczos(&mut op, k, which, &LanczosOpts { tol: 1e-10, ..LanczosOpts::default() }).unwrap();
        assert_eq!(res.products, op.products);
        let scale = exact.iter().fold(0f64, |m, v| m.max(v.abs()));
        let want: Vec<f64> = if k == 6 { exact[..3].iter().chain(&exact[p - 3..]).copied().collect() } else { exact[p - 3..].iter().rev().copied().collect() };
        for (g, w) in res.values.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * scale, "{curvature:?}: Lanczos {g} vs dense {w} (scale {scale})");
        }
    }
}

/// The Monte Carlo Fisher (products) and Monte Carlo GGN diagonal are unbiased: with many
/// samples they approach the exact GGN's (a bound ~1/√samples, not a value).
#[test]
fn monte_carlo_fisher_and_diagonal_converge_to_the_ggn() {
    use hesse_core::autodiff::{Curvature, GaussNewtonPart, LossKind};
    for (loss, kind) in [("ce", LossKind::CrossEntropy), ("mse", LossKind::Mse), ("bce", LossKind::BceWithLogits)] {
        let mut prog = Program::new();
        let x = prog.input(&[4, 3]).unwrap();
        let f = prog.sequential(x, &[lin(3, 4), Layer::Act(Act::Tanh), lin(4, 3)]).unwrap();
        let (y, yv): (usize, Vec<f64>) = if loss == "ce" { (prog.input(&[4]).unwrap(), vec![0.0, 1.0, 2.0, 1.0]) } else { (prog.input(&[4, 3]).unwrap(), wave(12, 0.3).iter().map(|v| (v + 1.0) / 2.0).collect()) };
        let out = match loss {
            "ce" => prog.cross_entropy(f, y),
            "mse" => prog.mse(f, y),
            _ => prog.bce_with_logits(f, y),
        }
        .unwrap();
        let params = wave(prog.n_params(), 0.45);
        let xv = wave(12, 1.7);
        let inputs: [&[f64]; 2] = [&xv, &yv];
        let exact = prog.gauss_newton(Isa::Simd, f, kind, &params, &inputs, 64, &GaussNewtonPart::Diagonal).unwrap();
        let mc = prog.gauss_newton_with(Isa::Simd, f, kind, &params, &inputs, 64, &GaussNewtonPart::Diagonal, Some((20_000, 3))).unwrap();
        assert!(rel_err(&mc, &exact) < 0.05, "{loss}: MC diagonal {}", rel_err(&mc, &exact));
        let v = wave(prog.n_params(), 0.9);
        let run = |curvature| {
            let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &v, k: 1, cotangent: None, curvature });
            prog.run(Isa::Simd, out, &r).unwrap().grad.unwrap().t.unwrap()
        };
        let gv = run(Curvature::Ggn { output: f });
        let fv = run(Curvature::MonteCarloFisher { output: f, kind, samples: 20_000, seed: 5 });
        assert!(rel_err(&fv, &gv) < 0.05, "{loss}: MC Fisher product {}", rel_err(&fv, &gv));
    }
}

/// K-FAC for conv2d ("expand"): exact against the GGN block for one sample with one output
/// position; for several positions it is an approximation of the same scale.
#[test]
fn conv_kfac_is_exact_for_one_sample_and_position() {
    use hesse_core::autodiff::{GaussNewtonPart, KfacVariant, LossKind};
    for (h, pad) in [(3usize, 0usize), (4, 1)] {
        let mut prog = Program::new();
        let x = prog.input(&[1, 2, h, h]).unwrap();
        let conv = Layer::Conv2d { inputs: 2, outputs: 3, kernel: (3, 3), stride: (1, 1), padding: (pad, pad), dilation: (1, 1), groups: 1, bias: true };
        let side = h + 2 * pad - 2;
        let f = prog.sequential(x, &[conv, Layer::Act(Act::Tanh), Layer::Flatten, lin(3 * side * side, 2)]).unwrap();
        let y = prog.input(&[1]).unwrap();
        prog.cross_entropy(f, y).unwrap();
        let params = wave(prog.n_params(), 0.31);
        let (xv, yv) = (wave(2 * h * h, 1.3), vec![1.0]);
        let inputs: [&[f64]; 2] = [&xv, &yv];
        let k = prog.kfac(Isa::Simd, f, LossKind::CrossEntropy, &params, &inputs, KfacVariant::Exact).unwrap();
        assert_eq!((k[0].d_in, k[0].d_out, k[0].size()), (19, 3, 57));
        let m = k[0].size();
        let block = prog.gauss_newton(Isa::Simd, f, LossKind::CrossEntropy, &params, &inputs, 64, &GaussNewtonPart::Blocks(vec![(0, m)])).unwrap();
        let mut kron = vec![0.0; m * m];
        for j in 0..m {
            let mut e = vec![0.0; m];
            e[j] = 1.0;
            let col = k[0].mvp(&e).unwrap();
            (0..m).for_each(|i| kron[i * m + j] = col[i]);
        }
        if side == 1 {
            assert!(rel_err(&kron, &block) < 1e-12, "conv K-FAC vs GGN block {}", rel_err(&kron, &block));
        } else {
            let tr = |a: &[f64]| (0..m).map(|i| a[i * m + i]).sum::<f64>();
            assert!((tr(&kron) / tr(&block)).ln().abs() < 2.0, "traces {} vs {}", tr(&kron), tr(&block));
        }
    }
}

/// Concatenation and axis permutations: values against direct indexing, and their derivatives
/// (gradient and HVP through them) against central differences.
#[test]
fn concat_and_permute() {
    let mut prog = Program::new();
    let a = prog.param(&[2, 3, 4]).unwrap();
    let b = prog.param(&[2, 1, 4]).unwrap();
    let c = prog.concat(&[a, b], 1).unwrap(); // [2, 4, 4]
    let p = prog.permute(c, &[2, 0, 1]).unwrap(); // [4, 2, 4]
    assert_eq!(prog.shape(p).unwrap(), &[4, 2, 4]);
    let t = prog.act(p, Act::Tanh).unwrap();
    let w = prog.param(&[4, 2, 4]).unwrap();
    let m = prog.mul(t, w).unwrap();
    let sq = prog.act(m, Act::Square).unwrap();
    let out = prog.sum(sq, None, false).unwrap();
    let params = wave(prog.n_params(), 0.61);
    let run = |ps: &[f64], node: usize, v: &[f64], k: usize, backward: bool| {
        let mode = match (backward, k) {
            (false, 0) => Mode::Value,
            (false, _) => Mode::Jvp { tangents: v, k },
            (true, 0) => Mode::Grad,
            (true, _) => Mode::Hvp { tangents: v, k, cotangent: None, curvature: Curvature::Hessian },
        };
        let r = Run::at(ps, &[], mode);
        prog.run(Isa::Simd, node, &r).unwrap()
    };
    // Values: permuted[i, j, l] = concat[j, l, i]; concat[j, l, i] = a[j, l, i] (l < 3) or b[j, 0, i].
    let pv = run(&params, p, &[], 0, false).output.p;
    for i in 0..4 {
        for j in 0..2 {
            for l in 0..4 {
                let want = if l < 3 { params[(j * 3 + l) * 4 + i] } else { params[24 + j * 4 + i] };
                assert_eq!(pv[(i * 2 + j) * 4 + l], want);
            }
        }
    }
    let g = run(&params, out, &[], 0, true).grad.unwrap().p;
    let loss = |ps: &[f64]| run(ps, out, &[], 0, false).output.p[0];
    let h = 1e-6;
    let fd: Vec<f64> = (0..params.len()).map(|i| {
        let mut q = params.clone();
        q[i] += h;
        let up = loss(&q);
        q[i] -= 2.0 * h;
        (up - loss(&q)) / (2.0 * h)
    }).collect();
    assert!(rel_err(&g, &fd) < 1e-7, "gradient through concat/permute");
    let v = wave(params.len(), 1.9);
    let hv = run(&params, out, &v, 1, true).grad.unwrap().t.unwrap();
    let gs = |s: f64| run(&params.iter().zip(&v).map(|(p, d)| p + s * d).collect::<Vec<_>>(), out, &[], 0, true).grad.unwrap().p;
    let fdh: Vec<f64> = gs(1e-5).iter().zip(gs(-1e-5)).map(|(a, b)| (a - b) / 2e-5).collect();
    assert!(rel_err(&hv, &fdh) < 1e-6, "HVP through concat/permute");
    assert!(prog.clone().permute(c, &[0, 0, 1]).is_err());
    let e = prog.clone().concat(&[a, w], 1).unwrap_err(); // [2, 3, 4] and [4, 2, 4]
    assert!(e.message.contains("[2, 3, 4]") && e.message.contains("[4, 2, 4]"), "{}", e.message);
}

/// K-FAC's layers found by pattern in a hand-built program as the ONNX importer writes it (a
/// folded [in, out] weight, the bias added first, Reshapes around the product, an elementwise
/// parameter no pattern covers), on per-token logits [1, 1, C] under cross-entropy: B ⊗ A is the
/// exact GGN block for one position, and the explicit GGN of the [N, C, T] class-axis-1 logits
/// equals that of the same logits class-last.
#[test]
fn kfac_by_pattern_and_cross_entropy_on_rows() {
    use hesse_core::autodiff::{GaussNewtonPart, KfacVariant, LossKind};
    let (d, hid, c) = (3usize, 4usize, 5usize);
    let build = |n: usize, t: usize, class_axis_1: bool| {
        let mut p = Program::new();
        let x = p.input(&[n, t, d]).unwrap();
        let w1t = p.param(&[d, hid]).unwrap();
        let b1 = p.param(&[hid]).unwrap();
        let scale = p.param(&[hid]).unwrap();
        let w2 = p.param(&[c, hid]).unwrap();
        let b2 = p.param(&[c]).unwrap();
        let xr = p.reshape(x, &[n * t, d]).unwrap();
        let s1 = p.matmul(xr, w1t, false, false).unwrap();
        let s1 = p.reshape(s1, &[n, t, hid]).unwrap();
        let s1 = p.add(b1, s1).unwrap();
        let z = p.act(s1, Act::Tanh).unwrap();
        let z = p.mul(z, scale).unwrap();
        let zr = p.reshape(z, &[n * t, hid]).unwrap();
        let w2t = p.transpose(w2).unwrap();
        let o = p.matmul(zr, w2t, false, false).unwrap();
        let o = p.reshape(o, &[n, t, c]).unwrap();
        let mut f = p.add(o, b2).unwrap();
        if class_axis_1 {
            f = p.permute(f, &[0, 2, 1]).unwrap();
        }
        let y = p.input(&[n, t]).unwrap();
        let (rows, labels) = p.loss_rows(LossKind::CrossEntropy, f, y).unwrap();
        p.cross_entropy(rows, labels).unwrap();
        (p, rows)
    };
    let (p1, f1) = build(1, 1, false);
    let params = wave(p1.n_params(), 0.37);
    let (xv, yv) = (wave(d, 1.1), vec![3.0]);
    let inputs: [&[f64]; 2] = [&xv, &yv];
    let cover = p1.kfac_layers(f1).unwrap();
    assert_eq!(cover.layers.iter().map(|l| (l.weight, l.weight_transposed, l.bias)).collect::<Vec<_>>(), vec![((0, d * hid), true, Some((d * hid, hid))), ((d * hid + 2 * hid, c * hid), false, Some((d * hid + 2 * hid + c * hid, c)))]);
    assert_eq!(cover.uncovered, vec![(d * hid + hid, hid)]);
    let factors = p1.kfac(Isa::Simd, f1, LossKind::CrossEntropy, &params, &inputs, KfacVariant::Exact).unwrap();
    let g = p1.gauss_newton(Isa::Simd, f1, LossKind::CrossEntropy, &params, &inputs, 64, &GaussNewtonPart::Dense).unwrap();
    let np = p1.n_params();
    for k in &factors {
        // The layer's flat indices: weight block, then bias (adjacent here).
        let idx: Vec<usize> = (k.weight_offset..k.weight_offset + k.size()).collect();
        let m = idx.len();
        let mut kron = vec![0.0; m * m];
        for j in 0..m {
            let mut e = vec![0.0; m];
            e[j] = 1.0;
            let col = k.mvp(&e).unwrap();
            (0..m).for_each(|i| kron[i * m + j] = col[i]);
        }
        let block: Vec<f64> = (0..m * m).map(|q| g[idx[q / m] * np + idx[q % m]]).collect();
        assert!(rel_err(&kron, &block) < 1e-12, "layer {}: {}", k.layer, rel_err(&kron, &block));
    }
    // [N, C, T] with labels [N, T] (PyTorch's class axis 1) vs [N, T, C]: the same GGN.
    let (pa, fa) = build(2, 3, false);
    let (pb, fb) = build(2, 3, true);
    let params = wave(pa.n_params(), 0.29);
    let (xv, yv) = (wave(2 * 3 * d, 0.9), vec![0.0, 4.0, 2.0, 1.0, 1.0, 3.0]);
    let inputs: [&[f64]; 2] = [&xv, &yv];
    let ga = pa.gauss_newton(Isa::Simd, fa, LossKind::CrossEntropy, &params, &inputs, 64, &GaussNewtonPart::Dense).unwrap();
    let gb = pb.gauss_newton(Isa::Simd, fb, LossKind::CrossEntropy, &params, &inputs, 64, &GaussNewtonPart::Dense).unwrap();
    assert!(rel_err(&ga, &gb) < 1e-13);
    assert_eq!(pb.shape(fb).unwrap(), &[6, c]);
    // Cross-entropy's curvature refuses an output that is not its rows.
    let mut bad = Program::new();
    let x = bad.input(&[2, 3, 4]).unwrap();
    assert!(bad.gauss_newton(Isa::Simd, x, LossKind::CrossEntropy, &[], &[&[0.0; 24]], 8, &GaussNewtonPart::Diagonal).unwrap_err().to_string().contains("rows [R, C]"));
}
