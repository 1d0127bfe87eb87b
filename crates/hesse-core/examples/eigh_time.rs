//! Times the dense symmetric eigensolver natively (bench/dense.mjs times it in wasm):
//! `cargo run --release -p hesse-core --example eigh_time -- 1000 2000 4096`.
//! The matrix is Q·diag(λ)·Qᵀ with λ = linspace(−1, 3) and Q a product of 8 random reflections,
//! so the error against the known spectrum is printed too.
use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|s| s.parse().expect("sizes are integers")).collect();
    for n in if sizes.is_empty() { vec![1000] } else { sizes } {
        let lambda: Vec<f64> = (0..n).map(|i| -1.0 + 4.0 * i as f64 / n as f64).collect();
        let a = with_spectrum(&lambda, 8, n as u64);
        let t = Instant::now();
        let (vals, _) = hesse_core::linalg::eigh(&a, n).unwrap();
        let eigh_s = t.elapsed().as_secs_f64();
        let err = vals.iter().zip(&lambda).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        println!("n={n}: eigh {eigh_s:.2} s (max|λ−λ_true| {err:.1e}){}", values_only(&a, n, &lambda));
    }
}

fn values_only(a: &[f64], n: usize, lambda: &[f64]) -> String {
    let t = Instant::now();
    let vals = hesse_core::linalg::eigvalsh(a, n).unwrap();
    let s = t.elapsed().as_secs_f64();
    let err = vals.iter().zip(lambda).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    format!(", eigvalsh {s:.2} s (max|λ−λ_true| {err:.1e})")
}
/// Q·diag(λ)·Qᵀ, Q = H₁·…·H_r with Hᵢ = I − 2uuᵀ (u from a splitmix64 generator).
fn with_spectrum(lambda: &[f64], reflections: usize, seed: u64) -> Vec<f64> {
    let n = lambda.len();
    let mut m = vec![0.0; n * n];
    (0..n).for_each(|i| m[i * n + i] = lambda[i]);
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    for _ in 0..reflections {
        let mut u: Vec<f64> = (0..n).map(|_| next()).collect();
        let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        u.iter_mut().for_each(|x| *x /= un);
        let t: Vec<f64> = (0..n).map(|i| (0..n).map(|j| m[i * n + j] * u[j]).sum()).collect();
        let s: f64 = u.iter().zip(&t).map(|(a, b)| a * b).sum();
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += -2.0 * u[i] * t[j] - 2.0 * t[i] * u[j] + 4.0 * s * u[i] * u[j];
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            let x = 0.5 * (m[i * n + j] + m[j * n + i]);
            m[i * n + j] = x;
            m[j * n + i] = x;
        }
    }
    m
}
