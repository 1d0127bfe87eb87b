/**
 * The dense path in the real wasm build: eigh, eigvalsh and cholesky (faer inside) against
 * matrices of known spectrum A = Q·diag(λ)·Qᵀ (Q orthogonal, built here from reflections), by
 * their identities (A·V = V·Λ, VᵀV = I, L·Lᵀ = A); errors as HesseErrors that leave the instance
 * working; and the named progress phases of Objective.dense and the CLI's dense commands.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { analyze } from '../ts/cli/analyze.js';
import { randn, rng } from './helpers.js';

await h.init();

/** Q·diag(λ)·Qᵀ with Q = H₁·…·H_r, Hᵢ = I − 2uuᵀ (u random unit): each step M ← H·M·H. */
function withSpectrum(lambda: number[], reflections: number, seed: number): Float64Array {
  const n = lambda.length;
  const m = new Float64Array(n * n);
  lambda.forEach((l, i) => (m[i * n + i] = l));
  const r = rng(seed);
  for (let k = 0; k < reflections; k++) {
    const u = randn(r, n);
    const un = Math.hypot(...u);
    for (let i = 0; i < n; i++) u[i]! /= un;
    const t = Array.from({ length: n }, (_, i) => u.reduce((s, uj, j) => s + m[i * n + j]! * uj, 0));
    const s = u.reduce((acc, ui, i) => acc + ui * t[i]!, 0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j]! += -2 * u[i]! * t[j]! - 2 * t[i]! * u[j]! + 4 * s * u[i]! * u[j]!;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) m[i * n + j] = m[j * n + i] = (m[i * n + j]! + m[j * n + i]!) / 2;
  return m;
}

const maxAbs = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => Math.max(s, Math.abs(x)), 0);

function expectHesseError(f: () => unknown, code: string, ...parts: string[]): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(h.HesseError);
    expect((e as h.HesseError).code).toBe(code);
    for (const p of parts) expect((e as Error).message).toContain(p);
    return;
  }
  throw new Error('expected a HesseError');
}

describe('eigh and eigvalsh (faer) in wasm', () => {
  const n = 90;
  // Indefinite, a cluster at the top, a repeated value.
  const lambda = Array.from({ length: n }, (_, i) => -3 + (8 * i) / n);
  lambda[n - 1] = 10;
  lambda[n - 2] = 9.999;
  lambda[10] = lambda[11]!;
  const sorted = [...lambda].sort((a, b) => a - b);
  const a = withSpectrum(lambda, 40, 7);

  it('recovers the spectrum, with A·V = V·Λ and VᵀV = I', () => {
    const { values, vectors } = h.eigh(a, n);
    expect(maxAbs(values.map((v, i) => v - sorted[i]!))).toBeLessThan(1e-12 * 10);
    let res = 0;
    let orth = 0;
    for (let j = 0; j < n; j++) {
      const v = vectors.subarray(j * n, (j + 1) * n);
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let k = 0; k < n; k++) av += a[i * n + k]! * v[k]!;
        res = Math.max(res, Math.abs(av - values[j]! * v[i]!));
      }
      for (let k = 0; k <= j; k++) {
        let d = 0;
        for (let i = 0; i < n; i++) d += v[i]! * vectors[k * n + i]!;
        orth = Math.max(orth, Math.abs(d - (j === k ? 1 : 0)));
      }
    }
    expect(res).toBeLessThan(1e-12 * 10);
    expect(orth).toBeLessThan(1e-13);
  });

  it('eigvalsh gives the same values without vectors', () => {
    const values = h.eigvalsh(a, n);
    expect(values).toBeInstanceOf(Float64Array);
    expect(maxAbs(values.map((v, i) => v - sorted[i]!))).toBeLessThan(1e-12 * 10);
  });

  it('refuses bad matrices as HesseErrors and keeps working', () => {
    expectHesseError(() => h.eigvalsh(new Float64Array(5), 2), 'LENGTH_MISMATCH', 'eigvalsh', 'got 5', '2×2');
    expectHesseError(() => h.eigh([1, 2, 0, 1], 2), 'INVALID_ARGUMENT', 'eigh', 'not symmetric');
    expectHesseError(() => h.eigvalsh([Number.NaN], 1), 'INVALID_ARGUMENT', 'not finite');
    expect(Array.from(h.eigvalsh([2, 1, 1, 2], 2))).toEqual([1, 3].map((x) => expect.closeTo(x, 14)));
  });
});

describe('cholesky (faer) in wasm', () => {
  it('factors A = L·Lᵀ with L lower triangular and a positive diagonal', () => {
    const n = 60;
    const lambda = Array.from({ length: n }, (_, i) => 4 * 10 ** ((-5 * i) / n));
    const a = withSpectrum(lambda, 30, 3);
    const l = h.cholesky(a, n);
    let res = 0;
    for (let i = 0; i < n; i++) {
      expect(l[i * n + i]).toBeGreaterThan(0);
      for (let j = 0; j < n; j++) {
        if (j > i) expect(l[i * n + j]).toBe(0);
        let s = 0;
        for (let k = 0; k <= Math.min(i, j); k++) s += l[i * n + k]! * l[j * n + k]!;
        res = Math.max(res, Math.abs(s - a[i * n + j]!));
      }
    }
    expect(res).toBeLessThan(1e-13 * 4 * n);
  });

  it('refuses a matrix that is not positive definite, then works on the next', () => {
    const indefinite = withSpectrum([-1, 0.5, 2, 3], 4, 9);
    expectHesseError(() => h.cholesky(indefinite, 4), 'INVALID_ARGUMENT', 'cholesky', '4×4', 'not positive definite');
    expectHesseError(() => h.cholesky([1, 1, 1, 1], 2), 'INVALID_ARGUMENT', 'not positive definite');
    expectHesseError(() => h.cholesky([1, 2, 3], 2), 'LENGTH_MISMATCH', 'cholesky');
    expect(Array.from(h.cholesky([4, 2, 2, 5], 2))).toEqual([2, 0, 1, 2]);
  });
});

describe('progress phases of the dense path', () => {
  const model = h.nn.sequential([h.nn.linear(3, 5), h.nn.tanh(), h.nn.linear(5, 2)]);
  const r = rng(4);
  const x = h.tensor(Float64Array.from(randn(r, 6 * 3)), [6, 3], 'float64');
  const y = h.tensor(Float64Array.from(randn(r, 6 * 2)), [6, 2], 'float64');

  it('Objective.dense names its phase and counts columns to P', () => {
    using obj = h.objective(model, 'mse', { x, y }, { params: model.init({ dtype: 'float64' }) });
    for (const [curvature, phase] of [['hessian', 'building the Hessian (HVPs)'], ['ggn', 'building the GGN (GGN products)']] as const) {
      const calls: [number, number, string][] = [];
      const m = obj.dense(curvature, { chunk: 7, onProgress: (d, t, p) => calls.push([d, t, p]) });
      expect(m.length).toBe(model.size ** 2);
      expect(calls.map((c) => c[0])).toEqual([7, 14, 21, 28, 32]);
      expect(new Set(calls.map((c) => `${c[1]} ${c[2]}`))).toEqual(new Set([`${model.size} ${phase}`]));
      expect(obj.hessian({ chunk: 64, onProgress: (d, t, p) => calls.push([d, t, p]) })).toEqual(obj.dense('hessian'));
    }
  });

  it('hesse hessian reports the build, then the eigendecomposition', async () => {
    const { onnx } = ((await import('onnx-proto')) as unknown as { default: { onnx: any } }).default;
    const vi = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
    const graph = {
      name: 'g',
      initializer: [{ name: 'W', dims: [3, 2], dataType: 1, floatData: [0.3, -0.2, 0.5, 0.1, -0.4, 0.25] }],
      input: [vi('x', [4, 3])],
      output: [vi('y', [4, 2])],
      node: [
        { opType: 'Tanh', input: ['x'], output: ['t'], name: 'tanh' },
        { opType: 'MatMul', input: ['t', 'W'], output: ['y'], name: 'mm' },
      ],
    };
    const files: Record<string, Uint8Array> = {
      'm.onnx': onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ version: 13 }], graph })).finish(),
      'x.npy': h.npy.writeNpy({ dtype: 'float32', shape: [4, 3], data: Float32Array.from(randn(r, 12)) }),
      'y.npy': h.npy.writeNpy({ dtype: 'float32', shape: [4, 2], data: Float32Array.from(randn(r, 8)) }),
    };
    const phases: string[] = [];
    const read = async (p: string) => files[p]!;
    const io = { read, writable: async () => {} };
    const res = await analyze('hessian', io, 'm.onnx', { x: 'x.npy', y: 'y.npy', loss: 'mse', workers: 1 }, (d, t, p) => phases.push(`${p} ${d}/${t}`));
    expect(phases).toEqual(['building the Hessian (HVPs) 6/6', 'eigendecomposition n=6 0/1', 'eigendecomposition n=6 1/1']);
    const eig = res.json.eigenvalues as number[];
    expect(eig.length).toBe(6);
    // The eigenvalues (descending) are those of the symmetric part of the --out matrix.
    const m = Float64Array.from(res.out!);
    const sym = m.map((v, k) => (v + m[(k % 6) * 6 + Math.floor(k / 6)]!) / 2);
    expect(eig).toEqual(Array.from(h.eigvalsh(sym, 6)).reverse());
    // NaN data is refused before any matrix is built, naming the file; the next call works.
    files['xnan.npy'] = h.npy.writeNpy({ dtype: 'float32', shape: [4, 3], data: Float32Array.from({ length: 12 }, (_, i) => (i === 4 ? Number.NaN : i / 10)) });
    await expect(analyze('ggn', io, 'm.onnx', { x: 'xnan.npy', y: 'y.npy', loss: 'mse', workers: 1 }, () => {})).rejects.toThrow(/xnan\.npy/);
    expect((await analyze('ggn', io, 'm.onnx', { x: 'x.npy', y: 'y.npy', loss: 'mse', workers: 1 }, () => {})).json.eigenvalues).toHaveLength(6);
  });
});
