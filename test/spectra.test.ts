/**
 * Spectra, traces, densities and solvers from products, against dense eigendecompositions of the
 * same matrices (built column by column) and against bounds for the randomized estimators.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { randn, rng } from './helpers.js';

await h.init();

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');
const model = h.nn.sequential([h.nn.linear(4, 6), h.nn.tanh(), h.nn.linear(6, 3)]);
const r = rng(21);
const x = f64(randn(r, 10 * 4), [10, 4]);
const y = f64(Array.from({ length: 10 }, (_, i) => i % 3), [10]);
const obj = h.objective(model, 'ce', { x, y }, { params: Float64Array.from(randn(r, model.size)) });
const n = model.size;
const H = obj.hessian();
const G = obj.ggn();
const specH = h.eigh(H, n).values; // ascending
const specG = h.eigh(G, n).values;
const scaleH = Math.max(...Array.from(specH, Math.abs));
const tr = (m: Float64Array | Float32Array) => Array.from({ length: n }, (_, i) => m[i * n + i]!).reduce((a, b) => a + b, 0);
const mv = (m: ArrayLike<number>, v: ArrayLike<number>) => Float64Array.from({ length: n }, (_, i) => Array.from(v).reduce((s, vj, j) => s + m[i * n + j]! * vj, 0));

describe('extreme eigenvalues', () => {
  it('Lanczos on the Hessian matches the dense eigenvalues (1e-6 relative)', () => {
    const top = h.eigenvalues(obj.operator('hessian'), 3, { tol: 1e-10 });
    const bottom = h.eigenvalues(obj.operator('hessian'), 3, { which: 'smallest', tol: 1e-10, vectors: true });
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(top.values[i]! - specH[n - 1 - i]!)).toBeLessThan(1e-6 * scaleH);
      expect(Math.abs(bottom.values[i]! - specH[i]!)).toBeLessThan(1e-6 * scaleH);
    }
    expect(top.converged && bottom.converged).toBe(true);
    // Ritz vectors are eigenvectors of the dense matrix.
    const v = bottom.vectors!.subarray(0, n);
    const hv = mv(H, v);
    const res = Math.hypot(...Array.from(hv, (a, i) => a - bottom.values[0]! * v[i]!));
    expect(res).toBeLessThan(1e-6 * scaleH);
  });

  it('the GGN is PSD and its top eigenvalues match; power iteration agrees with Lanczos', () => {
    expect(specG[0]!).toBeGreaterThan(-1e-10 * specG[n - 1]!);
    const top = h.eigenvalues(obj.operator('ggn'), 2, { tol: 1e-10 });
    expect(Math.abs(top.values[0]! - specG[n - 1]!)).toBeLessThan(1e-6 * specG[n - 1]!);
    const pw = h.powerIteration(obj.operator('ggn'), 1, { tol: 1e-10 });
    expect(Math.abs(pw.values[0]! - specG[n - 1]!)).toBeLessThan(1e-5 * specG[n - 1]!);
    expect(pw.products).toBeGreaterThan(top.products / 4); // it pays in products, the benchmark's point
  });
});

describe('traces, diagonals, densities', () => {
  it('Hutchinson and Hutch++ converge to the exact trace', () => {
    const exact = tr(H);
    const err = (method: 'hutchinson' | 'hutch++', samples: number) =>
      Math.sqrt(Array.from({ length: 8 }, (_, s) => (h.trace(obj.operator('hessian'), { method, samples, seed: s }).trace - exact) ** 2).reduce((a, b) => a + b, 0) / 8);
    const fro = Math.sqrt(Array.from(H).reduce((s, v) => s + v * v, 0));
    // Hutchinson's RMS error is at most √2·‖H‖_F/√samples; Hutch++ with n products is exact.
    expect(err('hutchinson', 60)).toBeLessThan((2 * Math.SQRT2 * fro) / Math.sqrt(60));
    expect(err('hutchinson', 600)).toBeLessThan(err('hutchinson', 15));
    expect(err('hutch++', 3 * n)).toBeLessThan(1e-8 * Math.abs(exact) + 1e-10);
  });

  it('the Hutchinson diagonal converges to the GGN diagonal', () => {
    const d = h.diagonal(obj.operator('ggn'), { samples: 2000, seed: 1 }).diagonal;
    const exact = Array.from({ length: n }, (_, i) => G[i * n + i]!);
    const e = Math.hypot(...d.map((v, i) => v - exact[i]!)) / Math.hypot(...exact);
    expect(e).toBeLessThan(0.2);
  });

  it('SLQ density integrates to 1 and its moments match tr(H)/n and tr(H²)/n', () => {
    const s = h.spectralDensity(obj.operator('hessian'), { probes: 30, steps: n, seed: 3 });
    let integral = 0;
    for (let i = 1; i < s.grid.length; i++) integral += ((s.density[i]! + s.density[i - 1]!) / 2) * (s.grid[i]! - s.grid[i - 1]!);
    expect(Math.abs(integral - 1)).toBeLessThan(1e-6);
    const moment = (p: number) => Array.from(s.nodes).reduce((acc, t, i) => acc + s.weights[i]! * t ** p, 0);
    const m1 = tr(H) / n;
    const m2 = Array.from(H).reduce((a, v) => a + v * v, 0) / n; // tr(H²) = ‖H‖_F² for symmetric H
    expect(Math.abs(moment(1) - m1)).toBeLessThan(0.25 * m2 ** 0.5);
    expect(Math.abs(moment(2) - m2) / m2).toBeLessThan(0.3);
  });
});

describe('solvers', () => {
  it('CG solves (G + λI)x = −g to the asked tolerance; MINRES solves the indefinite H', () => {
    const g = Float64Array.from(obj.grad(), (v) => -v);
    const lambda = 0.1;
    const sol = h.cg(obj.operator('ggn'), g, { damping: lambda, rtol: 1e-10, maxIter: 500 });
    expect(sol.converged).toBe(true);
    const ax = mv(G, sol.x).map((v, i) => v + lambda * sol.x[i]! - g[i]!);
    expect(Math.hypot(...ax) / Math.hypot(...g)).toBeLessThan(1e-9);
    const m = h.minres(obj.operator('hessian'), g, { shift: 0.05, rtol: 1e-10, maxIter: 500 });
    const rm = mv(H, m.x).map((v, i) => v + 0.05 * m.x[i]! - g[i]!);
    expect(Math.hypot(...rm) / Math.hypot(...g)).toBeLessThan(1e-8);
  });
});

describe('user-supplied operators', () => {
  const dense = { size: n, data: H };
  const fn = { size: n, matvec: (v: Float64Array) => mv(H, v) };
  const inPlace = { size: n, matvec: (v: Float64Array, out: Float64Array) => void out.set(mv(H, v)) };

  it('a { size, matvec } (returning or writing into out) and a dense matrix give the Hessian eigenvalues too', () => {
    for (const op of [dense, fn, inPlace]) {
      const top = h.eigenvalues(op, 2, { tol: 1e-10 });
      expect(Math.abs(top.values[0]! - specH[n - 1]!)).toBeLessThan(1e-6 * scaleH);
    }
  });

  it('bad operators are HesseErrors that say what is wrong, and the instance keeps working', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(h.HesseError);
        return `${(e as h.HesseError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    const skew = { size: 3, matvec: (v: Float64Array) => Float64Array.from([v[1]!, -v[0]!, 2 * v[2]!]) };
    expect(code(() => h.eigenvalues(skew, 1, { checkSymmetry: true }))).toMatch(/INVALID_ARGUMENT.*symmetric/);
    expect(code(() => h.eigenvalues({ size: 3, matvec: () => { throw new Error('boom'); } }, 1))).toMatch(/INVALID_ARGUMENT.*boom/);
    expect(code(() => h.eigenvalues({ size: 3, matvec: () => new Float64Array(2) }, 1))).toMatch(/LENGTH_MISMATCH/);
    expect(code(() => h.eigenvalues(fn, n + 1))).toMatch(/INVALID_ARGUMENT/);
    expect(code(() => h.cg(fn, new Float64Array(n), { damping: -1 }))).toMatch(/INVALID_ARGUMENT.*damping/);
    expect(code(() => h.cg(fn, new Float64Array(3)))).toMatch(/LENGTH_MISMATCH/);
    expect(h.eigenvalues(dense, 1, { tol: 1e-10 }).values[0]).toBeCloseTo(specH[n - 1]!, 8);
  });
});
