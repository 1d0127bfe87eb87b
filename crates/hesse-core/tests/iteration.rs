//! The reverse-communication iterations driven by hand (request → product → provide) agree
//! bitwise with the sync functions, and `provide` rejects what `apply` would have.

use hesse_core::linalg::*;
use hesse_core::ErrorCode;

fn matrix(n: usize, seed: u64) -> Dense {
    let mut rng = Rng::new(seed);
    let mut g = vec![0.0; n * n];
    rng.fill_gaussian(&mut g);
    let a = (0..n * n).map(|k| g[k] + g[(k % n) * n + k / n]).collect();
    Dense::new(a, n).unwrap()
}

/// Runs `it` by hand, the products from `a`, counting the requests.
fn by_hand<I: Iteration>(a: &Dense, mut it: I) -> (I::Output, usize) {
    let mut requests = 0;
    let total = it.max_products();
    while let Some(v) = it.request() {
        let mut out = vec![0.0; v.len()];
        a.apply_ref(v, &mut out).unwrap();
        it.provide(&out).unwrap();
        requests += 1;
        assert_eq!(it.products(), requests);
        assert!(requests <= total);
    }
    (it.finish().unwrap(), requests)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn hand_driven_iterations_equal_the_sync_functions_bitwise() {
    for n in [1, 5, 17] {
        let mut a = matrix(n, n as u64);
        let b: Vec<f64> = (0..n).map(|i| (i as f64).sin() + 0.5).collect();
        let k = n.min(3);
        let lo = LanczosOpts { max_iter: 30, tol: 1e-10, seed: 2, vectors: true, check_symmetry: true };
        let (got, used) = by_hand(&a, LanczosIteration::new(n, k, Which::Both, &lo).unwrap());
        let want = lanczos(&mut a, k, Which::Both, &lo).unwrap();
        assert_eq!((bits(&got.values), bits(got.vectors.as_deref().unwrap()), got.products, used), (bits(&want.values), bits(want.vectors.as_deref().unwrap()), want.products, want.products));
        let po = PowerOpts { max_iter: 300, tol: 1e-9, seed: 3 };
        let (got, used) = by_hand(&a, PowerIteration::new(n, k, &po).unwrap());
        let want = power_iteration(&mut a, k, &po).unwrap();
        assert_eq!((bits(&got.values), bits(&got.vectors), used), (bits(&want.values), bits(&want.vectors), want.products));
        let (got, _) = by_hand(&a, HutchinsonTrace::new(n, 7, 4).unwrap());
        let want = hutchinson_trace(&mut a, 7, 4).unwrap();
        assert_eq!(bits(&[got.trace, got.std_error]), bits(&[want.trace, want.std_error]));
        let (got, used) = by_hand(&a, HutchPpTrace::new(n, 20, 5).unwrap());
        let want = hutch_pp_trace(&mut a, 20, 5).unwrap();
        assert_eq!((bits(&[got.trace, got.std_error]), used), (bits(&[want.trace, want.std_error]), want.products));
        let (got, _) = by_hand(&a, HutchinsonDiagonal::new(n, 6, 6).unwrap());
        assert_eq!(bits(&got.diagonal), bits(&hutchinson_diagonal(&mut a, 6, 6).unwrap().diagonal));
        let so = SlqOpts { probes: 3, steps: 9, grid_points: 10, sigma: 0.1, seed: 7 };
        let (got, used) = by_hand(&a, SlqIteration::new(n, &so).unwrap());
        let want = slq_quadrature(&mut a, &so).unwrap();
        assert_eq!((bits(&got.nodes), bits(&got.weights), used), (bits(&want.nodes), bits(&want.weights), want.products));
        let co = CgOpts { damping: 3.0, x0: Some(b.clone()), rtol: 1e-12, ..CgOpts::default() };
        let (got, used) = by_hand(&a, CgIteration::new(n, &b, &co).unwrap());
        let want = cg(&mut a, &b, &co).unwrap();
        assert_eq!((bits(&got.x), bits(&got.model), used), (bits(&want.x), bits(&want.model), want.products));
        let mo = MinresOpts { shift: 0.2, rtol: 1e-12, max_iter: 50 };
        let (got, used) = by_hand(&a, MinresIteration::new(n, &b, &mo).unwrap());
        let want = minres(&mut a, &b, &mo).unwrap();
        assert_eq!((bits(&got.x), bits(&[got.residual_norm]), used), (bits(&want.x), bits(&[want.residual_norm]), want.products));
    }
}

#[test]
fn provide_checks_the_product_and_finish_waits_for_the_end() {
    let n = 6;
    let mut it = CgIteration::new(n, &[1.0; 6], &CgOpts::default()).unwrap();
    assert!(it.request().is_some());
    assert_eq!(it.provide(&[1.0; 5]).unwrap_err().code, ErrorCode::LengthMismatch);
    let e = it.provide(&[1.0, 2.0, f64::NAN, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(e.message.contains("non-finite value (NaN) at index 2"), "{}", e.message);
    assert_eq!(HutchinsonDiagonal::new(n, 2, 0).unwrap().finish().unwrap_err().code, ErrorCode::InvalidArgument);
    // Done: no request; a product nobody asked for is an error, not a silent extra step.
    let mut done = MinresIteration::new(n, &[0.0; 6], &MinresOpts::default()).unwrap();
    assert!(done.request().is_none());
    assert_eq!(done.provide(&[0.0; 6]).unwrap_err().code, ErrorCode::InvalidArgument);
    assert_eq!(done.finish().unwrap().products, 0);
    // A non-symmetric operator fails Lanczos' check at its second product.
    let a = Dense::new((0..36).map(|k| k as f64).collect(), n).unwrap();
    let mut it = LanczosIteration::new(n, 2, Which::Largest, &LanczosOpts { check_symmetry: true, ..LanczosOpts::default() }).unwrap();
    let mut out = vec![0.0; n];
    a.apply_ref(it.request().unwrap(), &mut out).unwrap();
    it.provide(&out).unwrap();
    a.apply_ref(it.request().unwrap(), &mut out).unwrap();
    assert!(it.provide(&out).unwrap_err().message.contains("not symmetric"));
}
