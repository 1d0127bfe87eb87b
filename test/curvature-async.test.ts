/**
 * The async estimators and solvers (ts/curvature-async.ts) and the sync ones' onProgress path:
 * both drive hesse-core's reverse-communication iterations, so against the all-in-wasm sync
 * functions on the same products they must agree bitwise. Plus a dense matrix of known
 * spectrum (Q·diag(λ)·Qᵀ, Q from eigh) as an independent reference, progress reports, and the
 * failure paths (rejected matvec, wrong length, NaN): a HesseError, and the next call works.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');
const model = h.nn.sequential([h.nn.linear(4, 5), h.nn.tanh(), h.nn.linear(5, 3)]);
const r = rng(7);
const x = f64(randn(r, 8 * 4), [8, 4]);
const y = f64(Array.from({ length: 8 }, (_, i) => i % 3), [8]);
const obj = h.objective(model, 'ce', { x, y }, { params: Float64Array.from(randn(r, model.size)) });
const n = model.size;
const b = Float64Array.from(randn(r, n));

/** The sync operator's products, awaited (a macrotask between products, like a worker). */
function asyncOf(op: h.LinearOperator): h.AsyncLinearOperator {
  return {
    size: op.size,
    matvec: async (v) => {
      await new Promise((res) => setTimeout(res, 0));
      const out = new Float64Array(op.size);
      const p = op.matvec(v, out);
      return p === undefined ? out : Float64Array.from(p);
    },
  };
}
/** A plain JS operator (no rawOperator) with the same products as `op`. */
const jsOf = (op: h.LinearOperator): h.LinearOperator => ({ size: op.size, matvec: (v, out) => op.matvec(v, out) });

/** Every algorithm, sync and async, with the same options. */
const cases: [string, (op: h.OperatorLike, o?: object) => unknown, (op: h.AsyncOperatorLike, o?: object) => Promise<unknown>][] = [
  ['eigenvalues', (op, o) => h.eigenvalues(op, 3, { vectors: true, checkSymmetry: true, ...o }), (op, o) => h.eigenvaluesAsync(op, 3, { vectors: true, checkSymmetry: true, ...o })],
  ['eigenvalues both', (op, o) => h.eigenvalues(op, 4, { which: 'both', tol: 1e-12, ...o }), (op, o) => h.eigenvaluesAsync(op, 4, { which: 'both', tol: 1e-12, ...o })],
  ['powerIteration', (op, o) => h.powerIteration(op, 2, { maxIter: 200, ...o }), (op, o) => h.powerIterationAsync(op, 2, { maxIter: 200, ...o })],
  ['trace hutch++', (op, o) => h.trace(op, { samples: 30, seed: 3, ...o }), (op, o) => h.traceAsync(op, { samples: 30, seed: 3, ...o })],
  ['trace hutchinson', (op, o) => h.trace(op, { method: 'hutchinson', samples: 9, seed: 4, ...o }), (op, o) => h.traceAsync(op, { method: 'hutchinson', samples: 9, seed: 4, ...o })],
  ['diagonal', (op, o) => h.diagonal(op, { samples: 12, seed: 5, ...o }), (op, o) => h.diagonalAsync(op, { samples: 12, seed: 5, ...o })],
  ['spectralDensity', (op, o) => h.spectralDensity(op, { probes: 3, steps: 12, gridPoints: 40, seed: 6, ...o }), (op, o) => h.spectralDensityAsync(op, { probes: 3, steps: 12, gridPoints: 40, seed: 6, ...o })],
  ['cg', (op, o) => h.cg(op, b, { damping: 0.5, x0: b, rtol: 1e-10, ...o }), (op, o) => h.cgAsync(op, b, { damping: 0.5, x0: b, rtol: 1e-10, ...o })],
  ['minres', (op, o) => h.minres(op, b, { shift: 0.1, rtol: 1e-10, ...o }), (op, o) => h.minresAsync(op, b, { shift: 0.1, rtol: 1e-10, ...o })],
];

describe.each(cases)('%s', (_name, sync, async_) => {
  it('async == sync bitwise: on an async operator, on the native operator, and sync with onProgress', async () => {
    for (const curvature of ['hessian', 'ggn'] as const) {
      const op = obj.operator(curvature);
      const want = sync(op);
      // The same JS products through the sync all-in-wasm path and awaited one by one.
      expect(await async_(asyncOf(op))).toStrictEqual(sync(jsOf(op)));
      expect(sync(jsOf(op))).toStrictEqual(want);
      expect(await async_(op)).toStrictEqual(want);
      const seen: [number, number, string][] = [];
      expect(sync(op, { onProgress: (d: number, t: number, p: string) => seen.push([d, t, p]) })).toStrictEqual(want);
      const products = (want as { products: number }).products;
      expect(seen.length).toBe(products);
      seen.forEach(([d, t], i) => {
        expect(d).toBe(i + 1);
        expect(t).toBe(seen[0]![1]);
        expect(t).toBeGreaterThanOrEqual(products);
      });
    }
  });

  it('a rejected matvec, a wrong length or a NaN is a HesseError; the next call works', async () => {
    const op = obj.operator('ggn');
    let calls = 0;
    const failing = (fail: (v: Float64Array) => Promise<Float64Array>): h.AsyncLinearOperator => ({
      size: n,
      matvec: async (v) => (++calls === 2 ? fail(v) : asyncOf(op).matvec(v)),
    });
    calls = 0;
    await expect(async_(failing(async () => Promise.reject(new Error('worker died'))))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: "the operator's matvec threw: worker died" });
    calls = 0;
    await expect(async_(failing(async () => { throw new h.HesseError('OUT_OF_MEMORY', 'gpu full'); }))).rejects.toMatchObject({ code: 'OUT_OF_MEMORY' });
    calls = 0;
    await expect(async_(failing(async () => new Float64Array(n + 1)))).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
    calls = 0;
    await expect(async_(failing(async () => new Float64Array(n).fill(NaN)))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('non-finite') });
    await expect(async_(op, { onProgress: 3 })).rejects.toBeInstanceOf(h.HesseError);
    expect(await async_(op)).toStrictEqual(sync(op));
  });
});

describe('dense reference (known spectrum)', () => {
  const m = 12;
  const rr = rng(11);
  const g = Float64Array.from(randn(rr, m * m));
  const Q = h.eigh(Float64Array.from({ length: m * m }, (_, k) => g[k]! + g[(k % m) * m + Math.floor(k / m)]!), m).vectors; // rows orthonormal
  const lam = Float64Array.from({ length: m }, (_, i) => (i % 2 ? -1 : 1) * (i + 1) * 0.5); // ±0.5 … ±6
  const A = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) for (let k = 0; k < m; k++) A[i * m + j]! += Q[k * m + i]! * lam[k]! * Q[k * m + j]!;
  const dense = { size: m, data: A };
  const mv = (v: ArrayLike<number>) => Float64Array.from({ length: m }, (_, i) => Array.from(v).reduce((s, vj, j) => s + A[i * m + j]! * vj, 0));
  const sorted = Array.from(lam).sort((p, q) => p - q);
  const rhs = Float64Array.from(randn(rr, m));

  it('eigenvalues, power iteration, trace, diagonal, density, cg and minres', async () => {
    const aop = asyncOf({ size: m, matvec: (v) => mv(v) });
    const top = await h.eigenvaluesAsync(aop, 3, { tol: 1e-12 });
    expectClose(top.values, sorted.slice(-3).reverse(), 1e-9);
    const pw = await h.powerIterationAsync(dense, 1, { tol: 1e-12, maxIter: 5000 });
    expectClose(pw.values, [-6], 1e-6); // largest magnitude: λ₁₁ = −6
    // Hutch++ with a full-rank sketch (⌊3m/3⌋ = m columns) is exact.
    const t = await h.traceAsync(aop, { samples: 3 * m });
    expectClose([t.trace], [lam.reduce((s, v) => s + v, 0)], 1e-9, 1e-9);
    const d = await h.diagonalAsync(dense, { samples: 4000, seed: 2 });
    expectClose(d.diagonal, Array.from({ length: m }, (_, i) => A[i * m + i]!), 0, 0.3);
    const s = await h.spectralDensityAsync(aop, { probes: 4, steps: m });
    expectClose([s.weights.reduce((p, q) => p + q, 0)], [1], 1e-12);
    for (const node of s.nodes) expect(Math.abs(node)).toBeLessThanOrEqual(6 + 1e-9);
    const sol = await h.cgAsync(aop, rhs, { damping: 7, rtol: 1e-12 }); // A + 7I is SPD (λ ≥ 1)
    expectClose(Float64Array.from(mv(sol.x), (v, i) => v + 7 * sol.x[i]!), rhs, 1e-9, 1e-10);
    const mr = await h.minresAsync(dense, rhs, { rtol: 1e-12 }); // indefinite
    expectClose(mv(mr.x), rhs, 1e-9, 1e-10);
  });
});

describe('no leaks', () => {
  it('the iteration and the Rust operator are freed on success, on a rejected matvec and on a throwing onProgress', async () => {
    const dense = { size: n, data: obj.hessian() };
    const rejecting: h.AsyncLinearOperator = { size: n, matvec: () => Promise.reject(new Error('lost')) };
    const stop = () => {
      throw new Error('stop');
    };
    await h.eigenvaluesAsync(dense, 2); // warm-up: lazily grown allocator state
    const before = h.memoryStats().heapBytes;
    for (let i = 0; i < 3; i++) {
      await h.eigenvaluesAsync(dense, 2, { vectors: true });
      await expect(h.cgAsync(rejecting, b)).rejects.toBeInstanceOf(h.HesseError);
      await expect(h.spectralDensityAsync(dense, { onProgress: stop })).rejects.toThrow('stop');
      expect(() => h.trace(obj.operator('hessian'), { onProgress: stop })).toThrow('stop');
    }
    expect(h.memoryStats().heapBytes).toBe(before);
  });
});
