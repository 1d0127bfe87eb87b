/**
 * The Laplace approximation against closed-form Bayesian linear regression (a linear model under
 * MSE is linear-Gaussian, where Laplace is exact), and the last-layer variant against the blocks
 * of the full one.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');

/** Solves A z = b (A symmetric positive definite, dense) by Gaussian elimination. */
function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let k = 0; k < n; k++) {
    for (let i = k + 1; i < n; i++) {
      const f = M[i]![k]! / M[k]![k]!;
      for (let j = k; j <= n; j++) M[i]![j]! -= f * M[k]![j]!;
    }
  }
  const z = new Array(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = M[i]![n]!;
    for (let j = i + 1; j < n; j++) s -= M[i]![j]! * z[j];
    z[i] = s / M[i]![i]!;
  }
  return z;
}

describe('laplace', () => {
  it('is exact Bayesian linear regression for a linear model under MSE', () => {
    const r = rng(8);
    const [N, D, C, tau] = [6, 3, 2, 0.7];
    const X = randn(r, N * D);
    const model = h.nn.sequential([h.nn.linear(D, C)]);
    const theta = Float64Array.from(randn(r, model.size));
    using obj = h.objective(model, 'mse', { x: f64(X, [N, D]), y: f64(randn(r, N * C), [N, C]) }, { params: theta });
    const la = h.laplace(obj, { priorPrecision: tau });
    // φ(x, c) = ∂f_c/∂θ: x in W's row c, 1 at b_c. Precision = (2/C)·Σₙ Σ_c φφᵀ + τI
    // (ℓ = ‖f − y‖²/C per sample is −log N(y; f, (C/2)I)).
    const P = model.size;
    const phi = (x: number[], c: number) => {
      const v = new Array(P).fill(0);
      for (let i = 0; i < D; i++) v[c * D + i] = x[i];
      v[C * D + c] = 1;
      return v;
    };
    const A: number[][] = Array.from({ length: P }, (_, i) => Array.from({ length: P }, (_, j) => (i === j ? tau : 0)));
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const v = phi(X.slice(n * D, n * D + D), c);
        for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) A[i]![j]! += (2 / C) * v[i] * v[j];
      }
    }
    expectClose(la.precision, A.flat(), 1e-12, 1e-12);
    const Xs = randn(r, 2 * D);
    const pred = la.predict(f64(Xs, [2, D]));
    const want = [];
    const wantMean = [];
    for (let m = 0; m < 2; m++) {
      for (let c = 0; c < C; c++) {
        const v = phi(Xs.slice(m * D, m * D + D), c);
        want.push(v.reduce((s, vi, i) => s + vi * solve(A, v)[i], 0));
        wantMean.push(v.reduce((s, vi, i) => s + vi * theta[i]!, 0));
      }
    }
    expectClose(pred.variance, want, 1e-10, 1e-13);
    expectClose(pred.mean, wantMean, 1e-12, 1e-13);
    // Parameter variances are the diagonal of Σ.
    const sigmaDiag = Array.from({ length: P }, (_, i) => {
      const e = new Array(P).fill(0);
      e[i] = 1;
      return solve(A, e)[i];
    });
    expectClose(la.parameterVariances(), sigmaDiag, 1e-10, 1e-13);
  });

  it('last-layer Laplace uses the last layer block of the full GGN', () => {
    const r = rng(9);
    const model = h.nn.sequential([h.nn.linear(4, 5), h.nn.tanh(), h.nn.linear(5, 3)]);
    using obj = h.objective(model, 'ce', { x: f64(randn(r, 40), [10, 4]), y: f64(Array.from({ length: 10 }, (_, i) => i % 3), [10]) }, { params: Float64Array.from(randn(r, model.size)) });
    const full = obj.gaussNewton('dense');
    const la = h.laplace(obj, { subset: 'last-layer', priorPrecision: 2 });
    expect([la.offset, la.size]).toEqual([25, 18]);
    const P = model.size;
    const want = Array.from({ length: 18 * 18 }, (_, t) => 10 * full[(25 + Math.floor(t / 18)) * P + 25 + (t % 18)]! + (t % 19 === 0 ? 2 : 0));
    expectClose(la.precision, want, 1e-12, 1e-12);
    const pred = la.predict(f64(randn(r, 8), [2, 4]));
    expect(pred.variance.length).toBe(6);
    expect(Math.min(...pred.variance)).toBeGreaterThan(0);
    expect(() => h.laplace(obj, { priorPrecision: 0 })).toThrowError(/laplace: priorPrecision must be a finite number > 0, got 0/);
  });
});
