//! Times the dense symmetric eigensolvers natively (bench/dense.mjs times them in wasm):
//! `cargo run --release -p hesse-core --example eigh_time -- 1000 2000 4096`.
//! The matrix is symmetric with uniform entries in [−½, ½) (a Lehmer generator); accuracy is the
//! tests' business (tests/linalg.rs), so only the agreement of the two paths is printed.
use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("sizes are integers")).collect();
    for n in if sizes.is_empty() { vec![1000] } else { sizes } {
        let mut a = vec![0.0; n * n];
        let mut s: u64 = 1;
        for i in 0..n {
            for j in 0..=i {
                s = s * 16807 % 2147483647;
                a[i * n + j] = s as f64 / 2147483647.0 - 0.5;
                a[j * n + i] = a[i * n + j];
            }
        }
        let t = Instant::now();
        let (full, _) = hesse_core::linalg::eigh(&a, n).unwrap();
        let eigh_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let vals = hesse_core::linalg::eigvalsh(&a, n).unwrap();
        let vals_s = t.elapsed().as_secs_f64();
        let gap = vals.iter().zip(&full).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        println!("n={n}: eigh {eigh_s:.2} s, eigvalsh {vals_s:.2} s (max |Δλ| between them {gap:.1e})");
    }
}
