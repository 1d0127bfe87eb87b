//! Times a full Hessian of the W4 workload natively (for profiling: `valgrind --tool=callgrind`).
use hesse_core::autodiff::builder::Layer;
use hesse_core::autodiff::{Act, Curvature, Mode, Program, Run};
use hesse_core::Isa;

fn main() {
    let mut prog = Program::new();
    let x = prog.input(&[64, 20]).unwrap();
    let lin = |i, o| Layer::Linear { inputs: i, outputs: o, bias: true };
    let f = prog.sequential(x, &[lin(20, 32), Layer::Act(Act::Tanh), lin(32, 32), Layer::Act(Act::Tanh), lin(32, 3)]).unwrap();
    let y = prog.input(&[64]).unwrap();
    let out = prog.cross_entropy(f, y).unwrap();
    let p = prog.n_params();
    let params: Vec<f32> = (0..p).map(|i| ((i as f32) * 0.37).sin() * 0.3).collect();
    let xs: Vec<f32> = (0..64 * 20).map(|i| ((i as f32) * 0.11).cos()).collect();
    let ys: Vec<f32> = (0..64).map(|i| (i % 3) as f32).collect();
    let k = 64;
    let t0 = std::time::Instant::now();
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    for _ in 0..reps {
        for start in (0..p).step_by(k) {
            let kk = k.min(p - start);
            let mut v = vec![0f32; kk * p];
            (0..kk).for_each(|r| v[r * p + start + r] = 1.0);
            let inputs: [&[f32]; 2] = [&xs, &ys];
            let r = Run::at(&params, &inputs, Mode::Hvp { tangents: &v, k: kk, cotangent: None, curvature: Curvature::Hessian });
            std::hint::black_box(prog.run(Isa::Simd, out, &r).unwrap());
        }
    }
    println!("W4 hessian: {:.1} ms per Hessian (P = {p})", t0.elapsed().as_secs_f64() * 1e3 / reps as f64);
}
