//! linalg against independent references: dense matrices built here with a known spectrum,
//! A = Q·diag(λ)·Qᵀ with Q a product of Householder reflections of random vectors, so every
//! expected eigenvalue, trace, moment and solution is known without using the code under test.
//! Stochastic estimators are tested against their variance bounds, not against values.

use hesse_core::linalg::*;
use hesse_core::{ErrorCode, Result};

/// A test-local generator (splitmix64), independent of the library's xoshiro.
struct TestRng(u64);
impl TestRng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn gaussian(&mut self) -> f64 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.gaussian()).collect()
    }
}

/// Q·diag(λ)·Qᵀ with Q = H₁·…·H_r, Hᵢ = I − 2uuᵀ for random unit u: M ← H·M·H is the rank-2
/// update M − 2u·tᵀ − 2t·uᵀ + 4(uᵀt)·u·uᵀ with t = M·u.
fn with_spectrum(lambda: &[f64], reflections: usize, seed: u64) -> Vec<f64> {
    let n = lambda.len();
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        m[i * n + i] = lambda[i];
    }
    let mut rng = TestRng(seed);
    for _ in 0..reflections {
        let mut u = rng.vec(n);
        let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        u.iter_mut().for_each(|x| *x /= un);
        let t = matvec(&m, &u);
        let s: f64 = u.iter().zip(&t).map(|(a, b)| a * b).sum();
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] += -2.0 * u[i] * t[j] - 2.0 * t[i] * u[j] + 4.0 * s * u[i] * u[j];
            }
        }
    }
    // Symmetrize exactly (the updates are symmetric up to rounding).
    for i in 0..n {
        for j in 0..i {
            let a = 0.5 * (m[i * n + j] + m[j * n + i]);
            m[i * n + j] = a;
            m[j * n + i] = a;
        }
    }
    m
}

fn matvec(a: &[f64], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    (0..n).map(|i| (0..n).map(|j| a[i * n + j] * v[j]).sum()).collect()
}
fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
}
fn nrm(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum::<f64>().sqrt()
}
fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}
fn dense(a: Vec<f64>, n: usize) -> Dense {
    Dense::new(a, n).unwrap()
}
fn code<T: std::fmt::Debug>(r: Result<T>) -> (ErrorCode, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

/// Indefinite, with a cluster at the top (gaps 1e-3), a repeated eigenvalue in the bulk, a wide
/// range of magnitudes.
fn indefinite_spectrum(n: usize) -> Vec<f64> {
    let mut l: Vec<f64> = (0..n).map(|i| -3.0 + 8.0 * i as f64 / n as f64).collect();
    l[0] = -7.5;
    l[1] = -7.0;
    l[n - 1] = 10.0;
    l[n - 2] = 9.999;
    l[n - 3] = 9.998;
    l[n / 2] = l[n / 2 + 1];
    l
}

#[test]
fn eigh_recovers_constructed_spectrum() {
    for (n, refl, seed) in [(120, 120, 1), (400, 40, 2)] {
        let lambda = indefinite_spectrum(n);
        let a = with_spectrum(&lambda, refl, seed);
        let (vals, vecs) = eigh(&a, n).unwrap();
        let anorm = 10.0;
        let err = vals.iter().zip(sorted(&lambda)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let mut res: f64 = 0.0;
        let mut orth: f64 = 0.0;
        for j in 0..n {
            let v = &vecs[j * n..(j + 1) * n];
            let av = matvec(&a, v);
            res = res.max(dist(&av, &v.iter().map(|x| x * vals[j]).collect::<Vec<_>>()));
            for k in 0..=j {
                let d: f64 = v.iter().zip(&vecs[k * n..(k + 1) * n]).map(|(x, y)| x * y).sum();
                orth = orth.max((d - if j == k { 1.0 } else { 0.0 }).abs());
            }
        }
        eprintln!("eigh n={n}: max|λ−λ_true| = {err:.1e}, max‖Av−λv‖ = {res:.1e}, max|VᵀV−I| = {orth:.1e}");
        assert!(err <= 1e-10 * anorm && res <= 1e-10 * anorm && orth <= 1e-12, "n={n}: {err:e} {res:e} {orth:e}");
    }
}

#[test]
fn eigh_edge_cases_and_errors() {
    assert_eq!(eigh(&[], 0).unwrap(), (vec![], vec![]));
    assert_eq!(eigh(&[3.0], 1).unwrap(), (vec![3.0], vec![1.0]));
    let (v, _) = eigh(&[0.0; 9], 3).unwrap();
    assert_eq!(v, vec![0.0; 3]);
    // [[2, 1], [1, 2]] has eigenvalues 1 and 3 with vectors (1, ∓1)/√2.
    let (v, w) = eigh(&[2.0, 1.0, 1.0, 2.0], 2).unwrap();
    assert!((v[0] - 1.0).abs() < 1e-15 && (v[1] - 3.0).abs() < 1e-15);
    assert!((w[0] + w[1]).abs() < 1e-15 && (w[2] - w[3]).abs() < 1e-15);
    // Huge and tiny scales do not overflow or underflow.
    let (v, _) = eigh(&[2e300, 1e300, 1e300, 2e300], 2).unwrap();
    assert!((v[1] / 3e300 - 1.0).abs() < 1e-15);
    let (v, _) = eigh(&[2e-300, 1e-300, 1e-300, 2e-300], 2).unwrap();
    assert!((v[0] / 1e-300 - 1.0).abs() < 1e-14);
    let (c, m) = code(eigh(&[1.0; 5], 2));
    assert_eq!(c, ErrorCode::LengthMismatch);
    assert!(m.contains("5 values") && m.contains("2×2"), "{m}");
    let (c, m) = code(eigh(&[1.0, 2.0, 0.0, 1.0], 2));
    assert_eq!(c, ErrorCode::InvalidArgument);
    assert!(m.contains("not symmetric"), "{m}");
    assert_eq!(code(eigh(&[f64::NAN], 1)).0, ErrorCode::InvalidArgument);
}

/// eigvalsh (no vectors) gives the known spectrum, and eigh's values, on the same matrices.
#[test]
fn eigvalsh_matches_known_spectrum_and_eigh() {
    for (n, refl, seed) in [(1, 1, 11), (2, 2, 12), (120, 120, 13), (400, 40, 14)] {
        let lambda = if n < 4 { (0..n).map(|i| i as f64 - 0.5).collect() } else { indefinite_spectrum(n) };
        let a = with_spectrum(&lambda, refl, seed);
        let vals = eigvalsh(&a, n).unwrap();
        let (full, _) = eigh(&a, n).unwrap();
        let err = vals.iter().zip(sorted(&lambda)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        let gap = vals.iter().zip(&full).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
        assert!(err <= 1e-9 && gap <= 1e-9, "n={n}: {err:e} {gap:e}");
        assert!(vals.windows(2).all(|p| p[0] <= p[1]), "ascending");
    }
    assert_eq!(eigvalsh(&[], 0).unwrap(), Vec::<f64>::new());
    assert_eq!(eigvalsh(&[0.0; 4], 2).unwrap(), vec![0.0; 2]);
    assert!((eigvalsh(&[2e300, 1e300, 1e300, 2e300], 2).unwrap()[1] / 3e300 - 1.0).abs() < 1e-15);
    assert!((eigvalsh(&[f64::MAX, 0.0, 0.0, 5e-324], 2).unwrap()[1] / f64::MAX - 1.0).abs() < 1e-15);
    assert_eq!(eigvalsh(&[5e-324, 0.0, 0.0, 5e-324], 2).unwrap(), vec![5e-324; 2]);
    assert_eq!(code(eigvalsh(&[1.0; 3], 2)).0, ErrorCode::LengthMismatch);
    let (c, m) = code(eigvalsh(&[1.0, 2.0, 0.0, 1.0], 2));
    assert!(c == ErrorCode::InvalidArgument && m.starts_with("eigvalsh: the matrix is not symmetric"), "{m}");
    assert_eq!(code(eigvalsh(&[f64::INFINITY], 1)).0, ErrorCode::InvalidArgument);
}

/// L·Lᵀ = A for positive definite A of known spectrum (conditioning 1e6), L lower with a
/// positive diagonal; an indefinite or singular A is an INVALID_ARGUMENT naming the problem.
#[test]
fn cholesky_factors_positive_definite_and_refuses_others() {
    for (n, seed) in [(1, 21), (3, 22), (150, 23), (333, 24)] {
        let lambda: Vec<f64> = (0..n).map(|i| 10f64.powf(-6.0 * i as f64 / n.max(2) as f64) * 4.0).collect();
        let a = with_spectrum(&lambda, 30, seed);
        let l = cholesky(&a, n).unwrap();
        let mut res: f64 = 0.0;
        for i in 0..n {
            assert!(l[i * n + i] > 0.0);
            for j in 0..n {
                if j > i {
                    assert_eq!(l[i * n + j], 0.0, "L[{i}][{j}] above the diagonal");
                }
                let llt: f64 = (0..=i.min(j)).map(|k| l[i * n + k] * l[j * n + k]).sum();
                res = res.max((llt - a[i * n + j]).abs());
            }
        }
        assert!(res <= 1e-13 * 4.0 * n as f64, "n={n}: max|LLᵀ − A| = {res:e}");
        // Scale invariance: 1e300·A has the factor 1e150·L.
        let big: Vec<f64> = a.iter().map(|x| x * 1e300).collect();
        let lb = cholesky(&big, n).unwrap();
        assert!(lb.iter().zip(&l).all(|(x, y)| (x - 1e150 * y).abs() <= 1e-12 * 1e150 * 2.0), "n={n}: scaled");
    }
    assert_eq!(cholesky(&[], 0).unwrap(), Vec::<f64>::new());
    assert_eq!(cholesky(&[4.0, 2.0, 2.0, 5.0], 2).unwrap(), vec![2.0, 0.0, 1.0, 2.0]);
    let indefinite = with_spectrum(&indefinite_spectrum(50), 20, 25);
    for (a, n) in [(indefinite, 50), (vec![1.0, 1.0, 1.0, 1.0], 2), (vec![0.0; 9], 3), (vec![-1.0], 1)] {
        let (c, m) = code(cholesky(&a, n));
        assert!(c == ErrorCode::InvalidArgument && m.contains("not positive definite") && m.contains(&format!("{n}×{n}")), "{m}");
    }
    assert_eq!(code(cholesky(&[1.0; 3], 2)).0, ErrorCode::LengthMismatch);
    assert!(code(cholesky(&[2.0, 1.0, 0.0, 2.0], 2)).1.contains("not symmetric"));
    assert_eq!(code(cholesky(&[f64::NAN], 1)).0, ErrorCode::InvalidArgument);
}

#[test]
fn eigh_tridiagonal_gives_gauss_quadrature() {
    let mut rng = TestRng(3);
    let m = 60;
    let d = rng.vec(m);
    let e: Vec<f64> = rng.vec(m - 1).iter().map(|x| x.abs() + 0.1).collect();
    let mut t = vec![0.0; m * m];
    for i in 0..m {
        t[i * m + i] = d[i];
        if i + 1 < m {
            t[i * m + i + 1] = e[i];
            t[(i + 1) * m + i] = e[i];
        }
    }
    let (vals, first) = eigh_tridiagonal(&d, &e).unwrap();
    // The values are T's (checked by the dense solver's own residual test above).
    let (dense_vals, _) = eigh(&t, m).unwrap();
    assert!(dist(&vals, &dense_vals) < 1e-12);
    // Σⱼ τⱼ²·θⱼ^p = (T^p)₀₀, with T^p·e₀ computed by repeated products.
    let mut tp = vec![0.0; m];
    tp[0] = 1.0;
    for p in 0..=4 {
        let quad: f64 = vals.iter().zip(&first).map(|(th, tau)| tau * tau * th.powi(p)).sum();
        assert!((quad - tp[0]).abs() < 1e-12 * (1.0 + tp[0].abs()), "p={p}: {quad} vs {}", tp[0]);
        tp = matvec(&t, &tp);
    }
    assert_eq!(code(eigh_tridiagonal(&d, &e[1..])).0, ErrorCode::LengthMismatch);
    assert_eq!(eigh_tridiagonal(&[], &[]).unwrap(), (vec![], vec![]));
}

/// A large problem (n = 1000; EIGH_N=2000 to try more) stays accurate. Its time is printed, not
/// asserted: speed is the benchmarks' business (about 1 s natively here).
#[test]
fn eigh_large_problem_is_accurate() {
    let n: usize = std::env::var("EIGH_N").map(|s| s.parse().unwrap()).unwrap_or(1000);
    let lambda: Vec<f64> = (0..n).map(|i| (i as f64 - 300.0) / 7.0).collect();
    let a = with_spectrum(&lambda, 20, 4);
    let t = std::time::Instant::now();
    let (vals, _) = eigh(&a, n).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let err = vals.iter().zip(sorted(&lambda)).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    eprintln!("eigh n={n}: {secs:.2} s, max|λ−λ_true| = {err:.1e}");
    assert!(err < 1e-9);
}

#[test]
fn lanczos_finds_extreme_eigenvalues() {
    for (n, seed) in [(300, 5), (500, 6)] {
        let lambda = indefinite_spectrum(n);
        let a = with_spectrum(&lambda, 30, seed);
        let (dense_vals, _) = eigh(&a, n).unwrap();
        let truth = sorted(&lambda);
        for (which, k) in [(Which::Largest, 5), (Which::Smallest, 4), (Which::Both, 5)] {
            let mut op = dense(a.clone(), n);
            let r = lanczos(&mut op, k, which, &LanczosOpts { seed, ..Default::default() }).unwrap();
            let want: Vec<usize> = match which {
                Which::Largest => (n - k..n).rev().collect(),
                Which::Smallest => (0..k).collect(),
                Which::Both => (0..k / 2).chain(n - (k - k / 2)..n).collect(),
            };
            let mut worst: f64 = 0.0;
            for (i, &w) in want.iter().enumerate() {
                let rel = (r.values[i] - truth[w]).abs() / truth[w].abs();
                worst = worst.max(rel);
                assert!(rel <= 1e-6 && (r.values[i] - dense_vals[w]).abs() <= 1e-6 * truth[w].abs(), "{which:?} {i}: {} vs {}", r.values[i], truth[w]);
                // The reported residual is the true one.
                let y = &r.vectors.as_ref().unwrap()[i * n..(i + 1) * n];
                let true_res = dist(&matvec(&a, y), &y.iter().map(|x| x * r.values[i]).collect::<Vec<_>>());
                assert!((nrm(y) - 1.0).abs() < 1e-12 && (true_res - r.residuals[i]).abs() <= 1e-10 * 10.0, "{true_res} vs {}", r.residuals[i]);
            }
            eprintln!("lanczos n={n} {which:?} k={k}: {} steps, worst rel err {worst:.1e}, converged {}", r.iterations, r.converged);
            assert!(r.converged && r.products == r.iterations);
        }
    }
}

#[test]
fn lanczos_restarts_past_invariant_subspaces() {
    // A = 2I + one spike: every Krylov space has dimension ≤ 2, yet k = 4 values are asked for.
    let n = 40;
    let mut lambda = vec![2.0; n];
    lambda[7] = 5.0;
    let mut op = dense(with_spectrum(&lambda, 5, 7), n);
    let r = lanczos(&mut op, 4, Which::Largest, &LanczosOpts::default()).unwrap();
    assert!(dist(&r.values, &[5.0, 2.0, 2.0, 2.0]) < 1e-10, "{:?}", r.values);
    let y = r.vectors.unwrap();
    for i in 0..4 {
        for j in 0..4 {
            let d: f64 = y[i * n..(i + 1) * n].iter().zip(&y[j * n..(j + 1) * n]).map(|(a, b)| a * b).sum();
            assert!((d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10);
        }
    }
}

#[test]
fn lanczos_and_symmetry_errors() {
    let n = 30;
    let mut op = dense(with_spectrum(&indefinite_spectrum(n), 5, 8), n);
    for k in [0, 31] {
        let (c, m) = code(lanczos(&mut op, k, Which::Largest, &LanczosOpts::default()));
        assert_eq!(c, ErrorCode::InvalidArgument);
        assert!(m.contains("1 ≤ k ≤ n = 30"), "{m}");
    }
    let opts = LanczosOpts { check_symmetry: true, ..Default::default() };
    let r = lanczos(&mut op, 2, Which::Smallest, &opts).unwrap();
    assert_eq!(r.products, r.iterations + 2);
    assert!(check_symmetric(&mut op, 1).unwrap() < 1e-14);
    let mut rng = TestRng(9);
    let mut nonsym = dense(rng.vec(n * n), n);
    let (c, m) = code(lanczos(&mut nonsym, 2, Which::Largest, &opts));
    assert!(c == ErrorCode::InvalidArgument && m.contains("operator is not symmetric"), "{m}");
    assert_eq!(code(check_symmetric(&mut nonsym, 2)).0, ErrorCode::InvalidArgument);
    // A symmetric matrix plus an asymmetric perturbation of relative size 1e-3 is caught.
    let mut a = with_spectrum(&indefinite_spectrum(n), 5, 8);
    a[3] += 1e-2;
    assert!(check_symmetric(&mut dense(a, n), 3).is_err());
}

/// The identity, except that from the n-th call on (n = the field) a product holds a NaN (a
/// model that diverges mid-run).
struct Poisoned(usize);
impl LinOp for Poisoned {
    fn size(&self) -> usize {
        10
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.0 = self.0.saturating_sub(1);
        out.copy_from_slice(v);
        if self.0 == 0 {
            out[4] = f64::NAN;
        }
        Ok(())
    }
}

#[test]
fn non_finite_products_and_bad_lengths_are_errors() {
    let (c, m) = code(cg(&mut Poisoned(1), &[1.0; 10], &CgOpts::default()));
    assert!(c == ErrorCode::InvalidArgument && m.contains("non-finite"), "{m}");
    assert_eq!(code(hutchinson_trace(&mut Poisoned(3), 10, 0)).0, ErrorCode::InvalidArgument);
    let mut op = dense(vec![1.0, 0.0, 0.0, 1.0], 2);
    let (c, m) = code(cg(&mut op, &[1.0; 3], &CgOpts::default()));
    assert!(c == ErrorCode::LengthMismatch && m.contains("length 3") && m.contains("size 2"), "{m}");
    assert_eq!(code(minres(&mut op, &[1.0], &MinresOpts::default())).0, ErrorCode::LengthMismatch);
    let mut out = [0.0; 2];
    assert_eq!(code(op.apply(&[1.0; 3], &mut out)).0, ErrorCode::LengthMismatch);
    assert_eq!(code(Dense::new(vec![0.0; 3], 2)).0, ErrorCode::LengthMismatch);
    // Shifted adds shift·v.
    let mut sh = Shifted { op: &mut op, shift: 2.5 };
    sh.apply(&[1.0, -2.0], &mut out).unwrap();
    assert_eq!(out, [3.5, -7.0]);
}

#[test]
fn power_iteration_matches_top_magnitudes() {
    let n = 200;
    let mut lambda: Vec<f64> = (0..n).map(|i| -1.0 + 2.0 * i as f64 / n as f64).collect();
    lambda[10] = -9.0;
    lambda[50] = 6.0;
    lambda[90] = 4.0;
    let a = with_spectrum(&lambda, 20, 10);
    let r = power_iteration(&mut dense(a.clone(), n), 3, &PowerOpts { tol: 1e-12, ..Default::default() }).unwrap();
    let lz = lanczos(&mut dense(a, n), 1, Which::Smallest, &LanczosOpts::default()).unwrap();
    eprintln!("power: {:?} in {} products ({:?}); lanczos for -9 alone: {} products", r.values, r.products, r.iterations, lz.products);
    assert!(r.converged);
    for (v, t) in r.values.iter().zip([-9.0, 6.0, 4.0]) {
        assert!((v - t).abs() <= 1e-6 * t.abs(), "{v} vs {t}");
    }
    assert!(r.residuals.iter().all(|&x| x < 1e-4), "{:?}", r.residuals);
    assert_eq!(code(power_iteration(&mut dense(vec![1.0], 1), 2, &PowerOpts::default())).0, ErrorCode::InvalidArgument);
}

/// A symmetric matrix with independent N(0,1) entries, as a test case with a large off-diagonal.
fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = TestRng(seed);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let x = rng.gaussian() + if i == j { 3.0 } else { 0.0 };
            a[i * n + j] = x;
            a[j * n + i] = x;
        }
    }
    a
}

#[test]
fn hutchinson_trace_within_its_variance_bound() {
    let n = 100;
    let a = random_symmetric(n, 11);
    let tr: f64 = (0..n).map(|i| a[i * n + i]).sum();
    let fro = nrm(&a);
    let mut op = dense(a, n);
    // Var(zᵀAz) = 2(‖A‖_F² − Σaᵢᵢ²) ≤ 2‖A‖_F².
    let s = 2000;
    let est = hutchinson_trace(&mut op, s, 1).unwrap();
    let bound = 5.0 * (2.0f64).sqrt() * fro / (s as f64).sqrt();
    eprintln!("hutchinson: err {:.3} (bound {bound:.3}, std_error {:.3})", (est.trace - tr).abs(), est.std_error);
    assert!((est.trace - tr).abs() < bound && est.products == s);
    assert!(est.std_error < bound / 5.0 && est.std_error > bound / 5.0 / 3.0);
    // The RMS error over seeds falls like 1/√s (√16 = 4 from 50 to 800 samples).
    let rms = |s: usize, op: &mut Dense| (0..20).map(|seed| (hutchinson_trace(op, s, 100 + seed).unwrap().trace - tr).powi(2)).sum::<f64>().sqrt();
    let (e50, e800) = (rms(50, &mut op), rms(800, &mut op));
    assert!(e50 / e800 > 2.0, "{e50} {e800}");
    assert_eq!(code(hutchinson_trace(&mut op, 0, 0)).0, ErrorCode::InvalidArgument);
}

#[test]
fn hutch_pp_beats_hutchinson_on_low_rank_plus_noise() {
    let n = 300;
    let mut rng = TestRng(12);
    let lambda: Vec<f64> = (0..n).map(|i| if i < 10 { 100.0 - 9.0 * i as f64 } else { 0.01 * rng.gaussian() }).collect();
    let tr: f64 = lambda.iter().sum();
    let mut op = dense(with_spectrum(&lambda, 20, 13), n);
    let m = 90;
    let (mut e_h, mut e_pp) = (0.0, 0.0);
    for seed in 0..10 {
        e_h += (hutchinson_trace(&mut op, m, seed).unwrap().trace - tr).powi(2);
        let pp = hutch_pp_trace(&mut op, m, seed).unwrap();
        assert_eq!(pp.products, m);
        e_pp += (pp.trace - tr).powi(2);
    }
    let (e_h, e_pp) = ((e_h / 10.0).sqrt(), (e_pp / 10.0).sqrt());
    eprintln!("trace at {m} matvecs, RMS error: hutchinson {e_h:.3e}, hutch++ {e_pp:.3e}");
    assert!(e_pp < 0.01 * e_h, "{e_pp} vs {e_h}");
    // Exactly rank 10: the sketch spans the range, its dependent columns are dropped, and the
    // trace is exact; the unused budget goes to the (zero) complement.
    let lr: Vec<f64> = (0..n).map(|i| if i < 10 { 1.0 + i as f64 } else { 0.0 }).collect();
    let pp = hutch_pp_trace(&mut dense(with_spectrum(&lr, 20, 14), n), 60, 0).unwrap();
    assert!((pp.trace - 55.0).abs() < 1e-10, "{}", pp.trace);
    assert_eq!(code(hutch_pp_trace(&mut op, 2, 0)).0, ErrorCode::InvalidArgument);
}

/// An exact estimate has standard error 0, not NaN: a Hutch++ sketch of rank n (the default 99
/// matvecs on n = 5) or Hutchinson on n = 1. NaN stays for a genuinely random part with fewer
/// than 2 probes. (A regression: Hutch++ on a 5×5 SPD matrix reported stdError NaN.)
#[test]
fn exact_trace_estimates_have_zero_std_error() {
    let lambda = [0.5, 1.0, 2.0, 3.5, 7.0];
    let mut op = dense(with_spectrum(&lambda, 3, 31), 5);
    let pp = hutch_pp_trace(&mut op, 99, 0).unwrap();
    assert!((pp.trace - 14.0).abs() < 1e-12 && pp.std_error == 0.0 && pp.products == 10, "{pp:?}");
    let mut one = dense(vec![-2.5], 1);
    let h = hutchinson_trace(&mut one, 1, 0).unwrap();
    assert!(h.trace == -2.5 && h.std_error == 0.0, "{h:?}");
    // n = 50 with 3 matvecs: a rank-1 sketch and 1 complement probe, so no error estimate.
    let mut big = dense(random_symmetric(50, 32), 50);
    assert!(hutch_pp_trace(&mut big, 3, 0).unwrap().std_error.is_nan());
    assert!(hutchinson_trace(&mut op, 1, 0).unwrap().std_error.is_nan());
    assert!(hutchinson_trace(&mut op, 2, 0).unwrap().std_error >= 0.0);
}

#[test]
fn hutchinson_diagonal_within_its_variance_bound() {
    let n = 200;
    let a = random_symmetric(n, 15);
    let mut op = dense(a.clone(), n);
    let s = 2000;
    let est = hutchinson_diagonal(&mut op, s, 3).unwrap();
    // Entry i: Var = Σ_{j≠i} aᵢⱼ²/s; 6σ over 200 entries is exceeded with probability ~4e-7.
    let mut worst: f64 = 0.0;
    for i in 0..n {
        let sigma = ((0..n).filter(|&j| j != i).map(|j| a[i * n + j].powi(2)).sum::<f64>() / s as f64).sqrt();
        worst = worst.max((est.diagonal[i] - a[i * n + i]).abs() / sigma);
    }
    eprintln!("hutchinson_diagonal: worst |error|/σ = {worst:.2}");
    assert!(worst < 6.0 && est.products == s);
    let small = hutchinson_diagonal(&mut op, 100, 3).unwrap();
    let diag: Vec<f64> = (0..n).map(|i| a[i * n + i]).collect();
    assert!(dist(&small.diagonal, &diag) > 2.0 * dist(&est.diagonal, &diag));
}

#[test]
fn slq_density_and_moments() {
    let n = 400;
    // Two bulks: 3/4 of the eigenvalues in [−1, 0], 1/4 in [4, 6], plus an outlier at 20.
    let lambda: Vec<f64> = (0..n).map(|i| if i < 300 { -(i as f64) / 300.0 } else { 4.0 + 2.0 * (i - 300) as f64 / 100.0 }).chain([20.0]).collect();
    let n = lambda.len();
    let mut op = dense(with_spectrum(&lambda, 30, 16), n);
    let opts = SlqOpts { probes: 20, steps: 40, seed: 4, ..Default::default() };
    let q = slq_quadrature(&mut op, &opts).unwrap();
    assert_eq!(q.products, 20 * 40);
    assert!((q.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // E[moment] = tr(A^p)/n; its std is ≤ √(2‖A^p‖_F²)/(n·√probes) = √(2Σλ^{2p})/(n·√probes).
    for p in 1..=3 {
        let exact = lambda.iter().map(|l| l.powi(p)).sum::<f64>() / n as f64;
        let std = (2.0 * lambda.iter().map(|l| l.powi(2 * p)).sum::<f64>()).sqrt() / (n as f64 * 20f64.sqrt());
        let got = q.moment(p);
        eprintln!("slq moment p={p}: {got:.5} vs tr(A^p)/n = {exact:.5} (std bound {std:.5})");
        assert!((got - exact).abs() < 4.0 * std, "p={p}");
    }
    let (moments, products) = slq_moments(&mut op, &opts, 2).unwrap();
    assert!(moments[0] == q.moment(1) && products == q.products);
    let d = slq_density(&mut op, &SlqOpts { grid_points: 2000, sigma: 0.005, ..opts }).unwrap();
    let h = d.grid[1] - d.grid[0];
    let trapz = |lo: f64, hi: f64| -> f64 {
        let ys: Vec<f64> = d.grid.iter().zip(&d.density).filter(|(t, _)| **t >= lo && **t <= hi).map(|(_, y)| *y).collect();
        h * (ys.iter().sum::<f64>() - 0.5 * (ys[0] + ys[ys.len() - 1]))
    };
    assert!((trapz(f64::NEG_INFINITY, f64::INFINITY) - 1.0).abs() < 1e-12);
    // The mass of each bulk is its share of eigenvalues (statistical error ~ 1/√(n·probes)).
    let (low, high) = (trapz(-1.5, 0.5), trapz(3.5, 6.5));
    eprintln!("slq density: mass of [−1, 0] {low:.3} (0.748), of [4, 6] {high:.3} (0.249)");
    assert!((low - 300.0 / 401.0).abs() < 0.05 && (high - 100.0 / 401.0).abs() < 0.05);
    assert!(d.grid[0] < -1.0 && *d.grid.last().unwrap() > 20.0);
    assert_eq!(code(slq_density(&mut op, &SlqOpts { sigma: 0.0, ..Default::default() })).0, ErrorCode::InvalidArgument);
    assert_eq!(code(slq_density(&mut op, &SlqOpts { probes: 0, ..Default::default() })).0, ErrorCode::InvalidArgument);
}

fn spd(n: usize, cond: f64, seed: u64) -> Vec<f64> {
    let lambda: Vec<f64> = (0..n).map(|i| cond.powf(i as f64 / (n - 1) as f64)).collect();
    with_spectrum(&lambda, 30, seed)
}

#[test]
fn cg_solves_spd_systems_to_the_asked_tolerance() {
    let n = 300;
    let a = spd(n, 1e4, 17);
    let mut rng = TestRng(18);
    let b = rng.vec(n);
    for rtol in [1e-6, 1e-10] {
        let r = cg(&mut dense(a.clone(), n), &b, &CgOpts { rtol, ..Default::default() }).unwrap();
        let true_res = dist(&matvec(&a, &r.x), &b);
        eprintln!("cg rtol={rtol:e}: {} iterations, true residual/‖b‖ = {:.2e} (reported {:.2e})", r.iterations, true_res / nrm(&b), r.residual_norm / nrm(&b));
        assert!(r.converged && r.negative_curvature.is_none() && true_res <= 1.5 * rtol * nrm(&b));
        // The model decreases monotonically (up to its rounding, once the steps are ~ε·|q|) and
        // its last value is ½xᵀAx − bᵀx.
        let q0 = r.model.last().unwrap().abs();
        assert!(r.model.windows(2).all(|w| w[1] < w[0] + 1e-13 * q0) && r.model.len() == r.iterations + 1);
        let q = 0.5 * r.x.iter().zip(matvec(&a, &r.x)).map(|(x, y)| x * y).sum::<f64>() - r.x.iter().zip(&b).map(|(x, y)| x * y).sum::<f64>();
        assert!((r.model.last().unwrap() - q).abs() < 1e-9 * q.abs());
    }
    // Damping: (A + 5I)·x = b with b built from a known x.
    let x_true = rng.vec(n);
    let bd: Vec<f64> = matvec(&a, &x_true).iter().zip(&x_true).map(|(y, x)| y + 5.0 * x).collect();
    let opts = CgOpts { rtol: 1e-12, ..CgOpts::with_damping(5.0).unwrap() };
    let r = cg(&mut dense(a.clone(), n), &bd, &opts).unwrap();
    assert!(dist(&r.x, &x_true) < 1e-9 * nrm(&x_true));
    // Warm start at the solution: converged with one product, no iteration; min_iter forces more.
    let warm = CgOpts { x0: Some(r.x.clone()), rtol: 1e-9, ..opts.clone() };
    let w = cg(&mut dense(a.clone(), n), &bd, &warm).unwrap();
    assert!(w.converged && w.iterations == 0 && w.products == 1);
    let w = cg(&mut dense(a.clone(), n), &bd, &CgOpts { min_iter: 3, ..warm }).unwrap();
    assert!(w.iterations >= 3 && w.converged);
    let (c, m) = code(CgOpts::with_damping(-1.0));
    assert!(c == ErrorCode::InvalidArgument && m.contains("damping must be ≥ 0"), "{m}");
    let (c, _) = code(cg(&mut dense(a, n), &b, &CgOpts { damping: -0.1, ..Default::default() }));
    assert_eq!(c, ErrorCode::InvalidArgument);
}

#[test]
fn cg_reports_negative_curvature() {
    let n = 100;
    let a = with_spectrum(&indefinite_spectrum(n), 10, 19);
    let b = TestRng(20).vec(n);
    let r = cg(&mut dense(a.clone(), n), &b, &CgOpts::default()).unwrap();
    let nc = r.negative_curvature.expect("indefinite A must show non-positive curvature");
    let p = &nc.direction;
    let rq = p.iter().zip(matvec(&a, p)).map(|(x, y)| x * y).sum::<f64>() / p.iter().map(|x| x * x).sum::<f64>();
    assert!(!r.converged && nc.rayleigh <= 0.0 && (rq - nc.rayleigh).abs() < 1e-10 * 10.0);
    // Enough damping makes it definite again (smallest eigenvalue −7.5).
    let r = cg(&mut dense(a, n), &b, &CgOpts { damping: 8.0, rtol: 1e-10, ..Default::default() }).unwrap();
    assert!(r.converged && r.negative_curvature.is_none());
}

#[test]
fn minres_solves_indefinite_systems() {
    let n = 300;
    // ±[0.1, 10], nonsingular and indefinite: condition number 100.
    let lambda: Vec<f64> = (0..n).map(|i| (0.1 + 9.9 * (i / 2) as f64 / (n / 2) as f64) * if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let a = with_spectrum(&lambda, 30, 21);
    let mut rng = TestRng(22);
    let x_true = rng.vec(n);
    for shift in [0.0, 0.05] {
        let b: Vec<f64> = matvec(&a, &x_true).iter().zip(&x_true).map(|(y, x)| y + shift * x).collect();
        let rtol = 1e-10;
        let r = minres(&mut dense(a.clone(), n), &b, &MinresOpts { shift, rtol, ..Default::default() }).unwrap();
        let ax: Vec<f64> = matvec(&a, &r.x).iter().zip(&r.x).map(|(y, x)| y + shift * x).collect();
        let true_res = dist(&ax, &b) / nrm(&b);
        let err = dist(&r.x, &x_true) / nrm(&x_true);
        eprintln!("minres shift={shift}: {} iterations, true residual/‖b‖ = {true_res:.2e}, ‖x − x_true‖/‖x_true‖ = {err:.2e}", r.iterations);
        assert!(r.converged && true_res <= 1.1 * rtol && err < 1e-7, "{true_res:e} {err:e}");
    }
    let r = minres(&mut dense(a, n), &vec![0.0; n], &MinresOpts::default()).unwrap();
    assert!(r.converged && r.x.iter().all(|&x| x == 0.0));
}

/// The fuzz suite's test matrix `matrix(n, 'sym', seed)` (test/fuzz/gen.ts): (B + Bᵀ)/2 of an
/// arithmetic-progression fill, singular (rank ≪ n) for most seeds.
fn fuzz_sym(n: usize, seed: usize) -> Vec<f64> {
    let fill = |i: usize| 4.0 * ((((i + 1) * 7919 + (seed + 3) * 104729) % 1000) as f64 / 1000.0) - 2.0;
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (fill(i * n + j) + fill(j * n + i)) / 2.0;
        }
    }
    a
}

/// Dense references from eigh (A = V·diag(λ)·Vᵀ): the pseudo-inverse solution A⁺b and the
/// least-squares residual min‖b − A·x‖ = ‖b's part in null(A)‖ (|λ| ≤ 1e-9·‖A‖ counts as 0).
fn dense_least_squares(a: &[f64], b: &[f64]) -> (Vec<f64>, f64) {
    let n = b.len();
    let (lambda, v) = eigh(a, n).unwrap();
    let scale = lambda.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let (mut x, mut null2) = (vec![0.0; n], 0.0);
    for (j, &l) in lambda.iter().enumerate() {
        let vj = &v[j * n..(j + 1) * n];
        let c: f64 = vj.iter().zip(b).map(|(p, q)| p * q).sum();
        if l.abs() <= 1e-9 * scale {
            null2 += c * c;
        } else {
            x.iter_mut().zip(vj).for_each(|(xi, vi)| *xi += c / l * vi);
        }
    }
    (x, null2.sqrt())
}

/// A singular inconsistent system stops at its breakdown with a least-squares x and reports the
/// true residual; a singular consistent one converges to A⁺b; an indefinite nonsingular one to
/// the dense solution. (A regression: on the fuzz's singular 6×6 matrices x blew up to ~1e16
/// while the recurrence reported ‖b − Ax‖ ≈ 0.5.)
#[test]
fn minres_on_singular_systems_tells_the_true_residual() {
    let check = |a: &[f64], b: &[f64], opts: &MinresOpts| {
        let n = b.len();
        let r = minres(&mut dense(a.to_vec(), n), b, opts).unwrap();
        let true_res = dist(&matvec(a, &r.x), b);
        assert!((r.residual_norm - true_res).abs() <= 1e-14 * nrm(b), "reported {} true {true_res} n {n} it {} x {:?} b {b:?}", r.residual_norm, r.iterations, r.x);
        assert_eq!(r.products, r.iterations + 1);
        assert_eq!(r.converged, true_res <= opts.rtol * nrm(b));
        r
    };
    let mut rng = TestRng(41);
    // The fuzz reproducers (b = vec(6, 'rand', 4)), then a 40×40 indefinite matrix with a
    // 3-dimensional null space: inconsistent (b random) and consistent (b = A·x).
    let b6: Vec<f64> = (0..6).map(|i| 4.0 * ((((i + 1) * 7919 + 7 * 104729) % 1000) as f64 / 1000.0) - 2.0).collect();
    let n = 40;
    let lambda: Vec<f64> = (0..n).map(|i| if i < 3 { 0.0 } else { (0.2 + i as f64 / 8.0) * if i % 2 == 0 { 1.0 } else { -1.0 } }).collect();
    let a40 = with_spectrum(&lambda, 12, 42);
    let mut cases: Vec<(Vec<f64>, Vec<f64>)> = [1, 3, 8, 12].iter().map(|&seed| (fuzz_sym(6, seed), b6.clone())).collect();
    cases.push((a40.clone(), rng.vec(n)));
    for (a, b) in &cases {
        let (_, ls) = dense_least_squares(a, b);
        assert!(ls > 0.1 * nrm(b), "the case must be inconsistent: {ls}");
        let r = check(a, b, &MinresOpts { max_iter: 50, ..Default::default() });
        assert!(!r.converged && r.residual_norm <= ls * (1.0 + 1e-8), "residual {} vs least squares {ls}", r.residual_norm);
        assert!(nrm(&r.x) < 1e3 * nrm(b), "x blew up: ‖x‖ = {}", nrm(&r.x));
    }
    let b = matvec(&a40, &rng.vec(n));
    let r = check(&a40, &b, &MinresOpts { rtol: 1e-10, ..Default::default() });
    let (pinv, _) = dense_least_squares(&a40, &b);
    assert!(r.converged && dist(&r.x, &pinv) < 1e-8 * nrm(&pinv), "{}", dist(&r.x, &pinv));
    // Indefinite nonsingular: the same matrix with its null space moved to ±0.3.
    let lambda: Vec<f64> = lambda.iter().enumerate().map(|(i, &l)| if i < 3 { 0.3 * if i == 1 { -1.0 } else { 1.0 } } else { l }).collect();
    let a = with_spectrum(&lambda, 12, 42);
    let b = rng.vec(n);
    let r = check(&a, &b, &MinresOpts { rtol: 1e-10, ..Default::default() });
    let (x, ls) = dense_least_squares(&a, &b);
    assert!(ls == 0.0 && r.converged && dist(&r.x, &x) < 1e-8 * nrm(&x), "{}", dist(&r.x, &x));
}

/// An operator that fails on its third product, as a bindings-level operator might.
struct Failing(usize);
impl LinOp for Failing {
    fn size(&self) -> usize {
        8
    }
    fn apply(&mut self, v: &[f64], out: &mut [f64]) -> Result<()> {
        self.0 += 1;
        if self.0 == 3 {
            return Err(hesse_core::Error::invalid("failing operator"));
        }
        out.iter_mut().zip(v).enumerate().for_each(|(i, (o, x))| *o = (i as f64 + 1.0) * x);
        Ok(())
    }
}

#[test]
fn tiny_operators_and_operator_errors_do_not_panic() {
    for n in 0..=6 {
        let lambda: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
        let a = with_spectrum(&lambda, 2, 23);
        let mut op = dense(a.clone(), n);
        assert!(dist(&eigh(&a, n).unwrap().0, &sorted(&lambda)) < 1e-12);
        for k in 1..=n {
            for which in [Which::Largest, Which::Smallest, Which::Both] {
                let r = lanczos(&mut op, k, which, &LanczosOpts::default()).unwrap();
                assert!(r.converged && r.values.len() == k);
            }
            assert_eq!(power_iteration(&mut op, k, &PowerOpts::default()).unwrap().values.len(), k);
        }
        hutchinson_trace(&mut op, 3, 0).unwrap();
        hutch_pp_trace(&mut op, 7, 0).unwrap();
        hutchinson_diagonal(&mut op, 2, 0).unwrap();
        let b = vec![1.0; n];
        cg(&mut op, &b, &CgOpts::default()).unwrap();
        minres(&mut op, &b, &MinresOpts::default()).unwrap();
        check_symmetric(&mut op, 0).unwrap();
        if n > 0 {
            let q = slq_quadrature(&mut op, &SlqOpts { steps: 3, probes: 2, ..Default::default() }).unwrap();
            // With n ≤ 3 steps the quadrature has every eigenvalue: the moments are exact only in
            // expectation, but the first moment lies within the spectrum.
            assert!(q.moment(1) >= -2.0 - 1e-12 && q.moment(1) <= n as f64 - 2.0 + 1e-12);
            slq_density(&mut op, &SlqOpts { steps: 10, probes: 1, grid_points: 5, ..Default::default() }).unwrap();
        }
    }
    let msg = |r: Result<()>| r.unwrap_err().message;
    assert_eq!(msg(lanczos(&mut Failing(0), 2, Which::Largest, &LanczosOpts::default()).map(|_| ())), "failing operator");
    assert_eq!(msg(slq_density(&mut Failing(0), &SlqOpts::default()).map(|_| ())), "failing operator");
    assert_eq!(msg(cg(&mut Failing(0), &[1.0; 8], &CgOpts::default()).map(|_| ())), "failing operator");
    assert_eq!(msg(minres(&mut Failing(0), &[1.0; 8], &MinresOpts::default()).map(|_| ())), "failing operator");
    assert_eq!(msg(hutch_pp_trace(&mut Failing(0), 9, 0).map(|_| ())), "failing operator");
    assert_eq!(msg(power_iteration(&mut Failing(0), 1, &PowerOpts::default()).map(|_| ())), "failing operator");
}

/// A low-rank PSD matrix (most eigenvalues exactly 0, as a Gauss–Newton matrix has) decomposes:
/// its zero cluster must split off in QL (a regression: it used to stall after 60 sweeps).
#[test]
fn eigh_low_rank_psd() {
    let (n, r) = (113, 8);
    let a_fac: Vec<f64> = (0..n * r).map(|i| ((i as f64) * 0.7311).sin()).collect();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..r).map(|k| a_fac[i * r + k] * a_fac[j * r + k]).sum();
        }
    }
    let (vals, vecs) = eigh(&a, n).unwrap();
    let scale = vals[n - 1];
    assert!(vals[..n - r].iter().all(|v| v.abs() < 1e-12 * scale), "the null space is zero");
    for j in n - r..n {
        let v = &vecs[j * n..(j + 1) * n];
        let res: f64 = (0..n).map(|i| ((0..n).map(|k| a[i * n + k] * v[k]).sum::<f64>() - vals[j] * v[i]).powi(2)).sum::<f64>().sqrt();
        assert!(res < 1e-10 * scale, "residual {res}");
    }
}
