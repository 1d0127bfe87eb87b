/**
 * Every op of the wasm build against plain-JS references, under both kernel families. The
 * SIMD-vs-reference agreement here is what checks the real simd128 intrinsics (natively,
 * `cargo test` runs the same kernels on portable lanes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, matmulRef, randn, rng } from './helpers.js';

beforeAll(async () => {
  await h.init();
});
afterAll(() => h.setKernels('simd'));

const AWKWARD = [1, 3, 17, 129];
const dtypes = ['float32', 'float64'] as const;
const tol = (dt: string) => (dt === 'float32' ? 2e-5 : 1e-12);

describe.each(['simd', 'scalar'] as const)('%s kernels', (kind) => {
  beforeAll(() => h.setKernels(kind));

  it.each(dtypes)('matmul and gemm (all transposes) match a JS triple loop, %s', (dt) => {
    const rand = rng(1);
    const sizes = [...AWKWARD, 8, 64];
    for (let trial = 0; trial < 24; trial++) {
      const pick = () => sizes[Math.floor(rand() * sizes.length)]!;
      const [m, k, n] = [pick(), pick(), pick()];
      const [ta, tb] = [rand() < 0.5, rand() < 0.5];
      const av = randn(rand, m * k);
      const bv = randn(rand, k * n);
      using a = h.tensor(av, ta ? [k, m] : [m, k], dt);
      using b = h.tensor(bv, tb ? [n, k] : [k, n], dt);
      using c = h.gemm(a, b, { transA: ta, transB: tb });
      expect(c.shape).toEqual([m, n]);
      expectClose(c.toArray(), matmulRef(av, bv, m, k, n, ta, tb), tol(dt), tol(dt) * Math.sqrt(k));
    }
    // α·A·B + β·C
    using a = h.tensor([[1, 2], [3, 4]], undefined, dt);
    using c0 = h.tensor([[1, 1], [1, 1]], undefined, dt);
    using r = h.gemm(a, a, { alpha: 2, beta: -1, c: c0 });
    expect(Array.from(r.toArray())).toEqual([13, 19, 29, 43]);
  });

  it.each(dtypes)('unary ops match Math, %s', (dt) => {
    const rand = rng(2);
    const ref: Record<string, (x: number) => number> = {
      neg: (x) => -x, abs: Math.abs, square: (x) => x * x, sqrt: Math.sqrt, relu: (x) => Math.max(x, 0),
      exp: Math.exp, log: Math.log, tanh: Math.tanh, sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    };
    for (const n of AWKWARD) {
      const xv = randn(rand, n).map((v) => 4 * v);
      const pos = xv.map((v) => Math.abs(v) + 1e-3);
      for (const [name, f] of Object.entries(ref)) {
        const input = name === 'sqrt' || name === 'log' ? pos : xv;
        using x = h.tensor(input, [n], dt);
        using y = (h as unknown as Record<string, (t: h.Tensor) => h.Tensor>)[name]!(x);
        const x32 = dt === 'float32' ? Array.from(new Float32Array(input)) : input;
        expectClose(y.toArray(), x32.map(f), dt === 'float32' ? 3e-6 : 1e-14, 1e-30);
      }
    }
  });

  it.each(dtypes)('binary ops broadcast like NumPy, %s', (dt) => {
    const rand = rng(3);
    const cases: [number[], number[], number[]][] = [
      [[17], [17], [17]], [[3, 17], [17], [3, 17]], [[3, 1], [1, 129], [3, 129]],
      [[2, 3, 4], [3, 1], [2, 3, 4]], [[], [5], [5]], [[129, 3], [], [129, 3]], [[1], [4, 1, 3], [4, 1, 3]],
    ];
    const ops: Record<string, (a: number, b: number) => number> = {
      add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b, div: (a, b) => a / b,
      maximum: Math.max, minimum: Math.min,
    };
    for (const [sa, sb, so] of cases) {
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const av = randn(rand, size(sa));
      const bv = randn(rand, size(sb)).map((v) => v + 3); // keep away from 0 for div
      const at = (v: number[], s: number[], idx: number[]) => {
        let off = 0;
        for (let d = 0; d < s.length; d++) off = off * s[d]! + (s[d] === 1 ? 0 : idx[idx.length - s.length + d]!);
        return v[off]!;
      };
      for (const [name, f] of Object.entries(ops)) {
        using a = h.tensor(av, sa, dt);
        using b = h.tensor(bv, sb, dt);
        using c = (h as unknown as Record<string, (x: h.Tensor, y: h.Tensor) => h.Tensor>)[name]!(a, b);
        expect(c.shape).toEqual(so);
        const want: number[] = [];
        const cast = (x: number) => (dt === 'float32' ? Math.fround(x) : x);
        for (let flat = 0; flat < size(so); flat++) {
          const idx: number[] = [];
          let r = flat;
          for (let d = so.length - 1; d >= 0; d--) {
            idx.unshift(r % so[d]!);
            r = Math.floor(r / so[d]!);
          }
          want.push(f(cast(at(av, sa, idx)), cast(at(bv, sb, idx))));
        }
        expectClose(c.toArray(), want, dt === 'float32' ? 1e-6 : 1e-15);
      }
    }
  });

  it.each(dtypes)('reductions along every axis, %s', (dt) => {
    const rand = rng(4);
    const shape = [3, 17, 5];
    const v = randn(rand, 3 * 17 * 5).map((x) => 5 * x);
    using x = h.tensor(v, shape, dt);
    for (const axis of [0, 1, 2, -1, undefined]) {
      for (const op of ['sum', 'mean', 'max', 'logsumexp'] as const) {
        using r = h[op](x, { axis });
        const ax = axis === undefined ? undefined : (axis + 3) % 3;
        const groups = new Map<number, number[]>();
        v.forEach((val, flat) => {
          const idx = [Math.floor(flat / 85), Math.floor(flat / 5) % 17, flat % 5];
          const key = ax === undefined ? 0 : idx.filter((_, d) => d !== ax).reduce((p, i, d) => p * shape.filter((_, e) => e !== ax)[d]! + i, 0);
          groups.set(key, [...(groups.get(key) ?? []), dt === 'float32' ? Math.fround(val) : val]);
        });
        const want = [...groups.keys()].sort((p, q) => p - q).map((key) => {
          const g = groups.get(key)!;
          const s = g.reduce((p, q) => p + q, 0);
          const m = Math.max(...g);
          return op === 'sum' ? s : op === 'mean' ? s / g.length : op === 'max' ? m : m + Math.log(g.reduce((p, q) => p + Math.exp(q - m), 0));
        });
        expectClose(r.toArray(), want, dt === 'float32' ? 1e-5 : 1e-13, dt === 'float32' ? 1e-5 : 1e-13);
      }
    }
    using k = h.sum(x, { axis: 1, keepdims: true });
    expect(k.shape).toEqual([3, 1, 5]);
  });

  it.each(dtypes)('conv2d matches a direct JS convolution, %s', (dt) => {
    const rand = rng(5);
    for (const [n, c, hh, w, o, kh, kw, s, p] of [
      [2, 3, 7, 9, 4, 3, 3, 1, 1], [1, 1, 5, 5, 2, 2, 2, 2, 0], [1, 2, 17, 3, 3, 3, 1, 1, 1],
    ] as const) {
      const xv = randn(rand, n * c * hh * w);
      const wv = randn(rand, o * c * kh * kw);
      using x = h.tensor(xv, [n, c, hh, w], dt);
      using wt = h.tensor(wv, [o, c, kh, kw], dt);
      using y = h.conv2d(x, wt, { stride: s, padding: p });
      const oh = Math.floor((hh + 2 * p - kh) / s) + 1;
      const ow = Math.floor((w + 2 * p - kw) / s) + 1;
      expect(y.shape).toEqual([n, o, oh, ow]);
      const want: number[] = [];
      for (let b = 0; b < n; b++)
        for (let q = 0; q < o; q++)
          for (let oy = 0; oy < oh; oy++)
            for (let ox = 0; ox < ow; ox++) {
              let sum = 0;
              for (let ci = 0; ci < c; ci++)
                for (let ky = 0; ky < kh; ky++)
                  for (let kx = 0; kx < kw; kx++) {
                    const yy = oy * s + ky - p;
                    const xx = ox * s + kx - p;
                    if (yy >= 0 && yy < hh && xx >= 0 && xx < w) sum += xv[((b * c + ci) * hh + yy) * w + xx]! * wv[((q * c + ci) * kh + ky) * kw + kx]!;
                  }
              want.push(sum);
            }
      expectClose(y.toArray(), want, tol(dt), tol(dt) * 10);
    }
  });
});

describe('simd and scalar kernels agree inside the wasm build', () => {
  it('on random GEMMs with awkward sizes (f32)', () => {
    const rand = rng(6);
    for (let t = 0; t < 20; t++) {
      const pick = () => [...AWKWARD, 1 + Math.floor(rand() * 90)][Math.floor(rand() * 5)]!;
      const [m, k, n] = [pick(), pick(), pick()];
      using a = h.tensor(randn(rand, m * k), [m, k]);
      using b = h.tensor(randn(rand, k * n), [k, n]);
      h.setKernels('scalar');
      using ref = h.matmul(a, b);
      h.setKernels('simd');
      using got = h.matmul(a, b);
      expectClose(got.toArray(), ref.toArray(), 1e-5, 1e-6 * Math.sqrt(k));
    }
  });
});

describe('shape errors name the op and shapes; the instance keeps working', () => {
  beforeAll(() => h.setKernels('simd'));
  const cases: [string, () => unknown, string, string[]][] = [
    ['matmul inner dims', () => h.matmul(h.tensor([[1, 2, 3]]), h.tensor([[1, 2]])), 'SHAPE_MISMATCH', ['matmul', '1×3', '1×2']],
    // (1-D operands are NumPy vectors; a 0-d one has no axis to multiply over)
    ['matmul rank', () => h.matmul(h.tensor(2), h.tensor([[1], [2]])), 'SHAPE_MISMATCH', ['matmul', '[]']],
    ['broadcast', () => h.add(h.tensor([[1, 2, 3]]), h.tensor([1, 2])), 'SHAPE_MISMATCH', ['[1, 3]', '[2]']],
    ['dtype mix', () => h.add(h.tensor([1]), h.tensor([1], [1], 'float64')), 'DTYPE_MISMATCH', ['float32', 'float64']],
    ['axis', () => h.sum(h.tensor([1, 2]), { axis: 3 }), 'INVALID_ARGUMENT', ['axis of [2]', 'got 3']],
    ['conv channels', () => h.conv2d(h.zeros([1, 2, 4, 4]), h.zeros([1, 3, 2, 2])), 'SHAPE_MISMATCH', ['conv2d', '[1, 2, 4, 4]', '[1, 3, 2, 2]']],
    ['conv kernel too big', () => h.conv2d(h.zeros([1, 1, 2, 2]), h.zeros([1, 1, 3, 3])), 'SHAPE_MISMATCH', ['3×3']],
    ['conv stride 0', () => h.conv2d(h.zeros([1, 1, 2, 2]), h.zeros([1, 1, 1, 1]), { stride: 0 }), 'INVALID_ARGUMENT', ['stride']],
    ['reshape', () => h.reshape(h.zeros([2, 3]), [4, 2]), 'SHAPE_MISMATCH', ['[2, 3]', '[4, 2]']],
    ['empty max', () => h.max(h.zeros([0])), 'INVALID_ARGUMENT', ['max', '[0]']],
    ['gemm beta without C', () => h.gemm(h.zeros([1, 1]), h.zeros([1, 1]), { beta: 1 }), 'INVALID_ARGUMENT', ['beta']],
    ['kernels', () => h.setKernels('avx' as never), 'INVALID_ARGUMENT', ['avx']],
  ];
  it.each(cases)('%s', (_, f, code, parts) => {
    let caught: unknown;
    try {
      f();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(h.HesseError);
    expect((caught as h.HesseError).code).toBe(code);
    for (const p of parts) expect((caught as h.HesseError).message).toContain(p);
    using a = h.tensor([[1, 2], [3, 4]]);
    using r = h.matmul(a, a);
    expect(Array.from(r.toArray())).toEqual([7, 10, 15, 22]);
  });
});
