//! Times the SIMD conv2d kernels (forward and both adjoints) natively on ResNet-20's 3×3 shapes,
//! beside a plain GEMM of the same flops, for iterating on kernels/conv.rs:
//! `cargo run --release -p hesse-core --example conv_time [reps]`.
use hesse_core::kernels::{conv2d, conv2d_grad_input, conv2d_grad_weight, gemm_simd, Conv2d, ConvAttrs, MatRef};
use hesse_core::Isa;

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    for (c, o, hw, s) in [(16, 16, 32, 1), (32, 32, 16, 1), (64, 64, 8, 1), (16, 32, 32, 2)] {
        let n = 32;
        let g = Conv2d::new(&[n, c, hw, hw], &[o, c, 3, 3], ConvAttrs::symmetric((s, s), (1, 1))).unwrap();
        let (oh, ow) = g.out_hw();
        let x: Vec<f32> = (0..n * c * hw * hw).map(|i| ((i as f32) * 0.37).sin()).collect();
        let w: Vec<f32> = (0..o * c * 9).map(|i| ((i as f32) * 0.11).cos()).collect();
        let gy: Vec<f32> = (0..n * o * oh * ow).map(|i| ((i as f32) * 0.23).sin()).collect();
        let mut y = vec![0f32; gy.len()];
        let mut gx = vec![0f32; x.len()];
        let mut gw = vec![0f32; w.len()];
        let gf = 2.0 * (n * o * oh * ow * c * 9) as f64 / 1e9;
        let tf = best(reps, || conv2d(Isa::Simd, &g, &x, &w, &mut y).unwrap());
        let ti = best(reps, || conv2d_grad_input(Isa::Simd, &g, &gy, &w, &mut gx).unwrap());
        let tw = best(reps, || conv2d_grad_weight(Isa::Simd, &g, &x, &gy, &mut gw).unwrap());
        // The same flops as one big GEMM [O, C·9] × [C·9, N·OH·OW].
        let b: Vec<f32> = (0..c * 9 * n * oh * ow).map(|i| ((i as f32) * 0.07).sin()).collect();
        let tg = best(reps, || gemm_simd(1.0, MatRef::row_major(&w, o, c * 9), MatRef::row_major(&b, c * 9, n * oh * ow), 0.0, &mut y).unwrap());
        println!(
            "C{c} O{o} {hw}² s{s}: fwd {tf:.2} ms ({:.1} GF/s), grad_in {ti:.2} ms ({:.1}), grad_w {tw:.2} ms ({:.1}), gemm {tg:.2} ms ({:.1})",
            gf / tf * 1e3,
            gf / ti * 1e3,
            gf / tw * 1e3,
            gf / tg * 1e3
        );
    }
}
