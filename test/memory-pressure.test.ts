/**
 * Memory pressure through the real wasm build: with wasm memory filled (tensors allocated until
 * even a one-element tensor is refused, i.e. to wasm32's 4 GiB or whatever the engine allows),
 * every public method throws a HesseError OUT_OF_MEMORY, never traps; after freeing, the same
 * instance gives the same values as before the fill. And an objective whose buffers cannot fit
 * 4 GiB is refused when it is built, naming the bytes, with nothing left allocated.
 *
 * Cheap by construction: zero tensors are allocated without writing pages that memory.grow just
 * handed out (they are zero already), so filling 4 GiB takes well under a second and ~0 RSS.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { core, memory } from '../ts/runtime.js';
import { randn, rng } from './helpers.js';

await h.init();

/** The code of the HesseError `f` throws ('no error' or a description of anything else). */
function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof h.HesseError ? e.code : `not a HesseError: ${String(e)}`;
  }
  return 'no error';
}

const heapBytes = () => core().heapStats()[0]!;
const f64 = (v: number[], shape: number[]) => h.tensor(new Float64Array(v), shape, 'float64');

describe('an objective that cannot fit wasm32 memory', () => {
  it('is refused when built, with OUT_OF_MEMORY naming the bytes, and leaves nothing allocated', () => {
    using x = h.zeros([1, 30000]);
    using y = h.zeros([1, 30000]);
    const before = heapBytes();
    const model = h.nn.sequential([h.nn.linear(30000, 30000)]); // P = 9·10⁸ + 3·10⁴
    let err: unknown;
    try {
      h.objective(model, 'mse', { x, y });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(h.HesseError);
    expect((err as h.HesseError).code).toBe('OUT_OF_MEMORY');
    // params (P) plus every node's value, in float32: at least 7.2 GB.
    expect((err as h.HesseError).message).toMatch(/needs at least (\d+) bytes/);
    const needed = Number(/needs at least (\d+) bytes/.exec((err as h.HesseError).message)![1]);
    expect(needed).toBeGreaterThan(2 * 4 * 9e8);
    expect((err as h.HesseError).message).toContain('4294967296');
    expect(heapBytes() - before).toBeLessThan(4096); // the program was freed, nothing staged leaks
    // The instance keeps working: a small objective right after gives MSE in closed form.
    using xs = f64([1, 2], [1, 2]);
    using ys = f64([0.5], [1, 1]);
    using obj = h.objective(h.nn.sequential([h.nn.linear(2, 1)]), 'mse', { x: xs, y: ys }, { params: new Float64Array([0.25, -1, 3]) });
    expect(obj.loss()).toBeCloseTo((0.25 * 1 - 1 * 2 + 3 - 0.5) ** 2, 12);
  });
});

describe('with wasm memory full', () => {
  it('every public method throws OUT_OF_MEMORY, and the instance works again after freeing', () => {
    // Everything is built before the fill, with its results as references.
    const r = rng(5);
    using a = f64(randn(r, 64 * 64), [64, 64]);
    using b = f64(randn(r, 64 * 64), [64, 64]);
    using img = f64(randn(r, 2 * 8 * 8), [1, 2, 8, 8]);
    using ker = f64(randn(r, 3 * 2 * 9), [3, 2, 3, 3]);
    using x = f64(randn(r, 32 * 6), [32, 6]);
    using y = f64(Array.from({ length: 32 }, (_, i) => i % 3), [32]);
    const model = h.nn.sequential([h.nn.linear(6, 16), h.nn.tanh(), h.nn.linear(16, 3)]);
    using obj = h.objective(model, 'cross_entropy', { x, y }, { seed: 3 });
    const v = Float64Array.from(randn(r, obj.size));
    using kfac = obj.kfac();
    const params = { w: f64(randn(r, 18), [3, 6]), c: f64(randn(r, 3), [3]) };
    const dir = { w: f64(randn(r, 18), [3, 6]), c: f64(randn(r, 3), [3]) };
    const f = (p: { w: h.Sym; c: h.Sym }, xx: h.Sym, yy: h.Sym) => h.crossEntropy(h.add(h.matmul(xx, h.transpose(p.w)), p.c), yy);
    const sym = Float64Array.from({ length: 16 }, (_, i) => (i % 5 === i / 5 ? 2 : 0) + ((i * 7) % 3) * 0.1);
    for (let i = 0; i < 4; i++) for (let j = 0; j < i; j++) sym[i * 4 + j] = sym[j * 4 + i]!;
    const jsOp = { size: 4, matvec: (u: Float64Array) => Float64Array.from({ length: 4 }, (_, i) => u.reduce((s, uj, j) => s + sym[i * 4 + j]! * uj, 0)) };
    const rhs = Float64Array.from(randn(r, obj.size));

    const calls: Record<string, () => unknown> = {
      tensor: () => h.tensor([1, 2, 3]),
      zeros: () => h.zeros([4]),
      add: () => h.add(a, b),
      exp: () => h.exp(a),
      matmul: () => h.matmul(a, b),
      sum: () => h.sum(a),
      softmax: () => h.softmax(a),
      transpose: () => h.transpose(a),
      reshape: () => h.reshape(a, [4096]),
      astype: () => h.astype(a, 'float32'),
      conv2d: () => h.conv2d(img, ker, { padding: 1 }),
      grad: () => h.grad(f)(params, x, y),
      valueAndGrad: () => h.valueAndGrad(f)(params, x, y),
      hvp: () => h.hvp(f, params, dir, [x, y]),
      hessian: () => h.hessian(f)(params, x, y),
      jvp: () => h.jvp(f, params, dir, [x, y]),
      vjp: () => h.vjp((q: { w: h.Sym; c: h.Sym }, xx: h.Sym) => h.add(h.matmul(xx, h.transpose(q.w)), q.c), params, [x])[0],
      jacobian: () => h.jacobian((q: { w: h.Sym; c: h.Sym }, xx: h.Sym) => h.add(h.matmul(xx, h.transpose(q.w)), q.c))(params, x),
      'objective.valueAndGrad': () => obj.valueAndGrad(),
      'objective.ggn': () => obj.ggn(),
      'objective.loss': () => obj.loss(),
      'objective.grad': () => obj.grad(),
      'objective.hvp': () => obj.hvp(v),
      'objective.ggnvp': () => obj.ggnvp(v),
      'objective.fisherVp': () => obj.fisherVp(v),
      'objective.hessian': () => obj.hessian(),
      'objective.gaussNewton': () => obj.gaussNewton('dense'),
      'objective.gaussNewton(layers)': () => obj.gaussNewton('layers'),
      'objective.kfac': () => obj.kfac(),
      'kfac.mvp': () => kfac.mvp(v),
      'kfac.inverseApply': () => kfac.inverseApply(v, 0.1),
      eigenvalues: () => h.eigenvalues(obj.operator('ggn'), 2, { maxIter: 40 }),
      trace: () => h.trace(obj.operator('hessian'), { samples: 4 }),
      diagonal: () => h.diagonal(obj.operator('ggn'), { samples: 4 }),
      spectralDensity: () => h.spectralDensity(obj.operator('ggn'), { probes: 2, steps: 8 }),
      cg: () => h.cg(obj.operator('ggn'), rhs, { damping: 1, maxIter: 20 }),
      'eigenvalues(js operator)': () => h.eigenvalues(jsOp, 2),
      powerIteration: () => h.powerIteration(obj.operator('ggn'), 1, { maxIter: 20 }),
      minres: () => h.minres(obj.operator('hessian'), rhs, { shift: 1, maxIter: 20 }),
      eigh: () => h.eigh(sym, 4),
    };
    /** Plain numbers of a result (tensors, typed arrays, trees, tuples, Kfac handles), for comparison. */
    const numbers = (o: unknown): unknown => {
      if (o instanceof h.Tensor) return Array.from(o.toArray());
      if (o instanceof Float32Array || o instanceof Float64Array) return Array.from(o);
      if (o instanceof h.Kfac) return o.layers.map((l) => [Array.from(l.a), Array.from(l.b)]);
      if (Array.isArray(o)) return o.map(numbers);
      if (o && typeof o === 'object') return Object.fromEntries(Object.entries(o).map(([k, val]) => [k, numbers(val)]));
      return o;
    };
    const reference = Object.fromEntries(Object.entries(calls).map(([name, fn]) => [name, numbers(fn())]));

    // Fill: tensors until even one element is refused.
    const t0 = performance.now();
    const held: h.Tensor[] = [];
    for (let n = 1 << 28; n >= 1; ) {
      try {
        held.push(h.zeros([n], 'float32'));
      } catch (e) {
        expect(e).toBeInstanceOf(h.HesseError);
        expect((e as h.HesseError).code).toBe('OUT_OF_MEMORY');
        n >>= 1;
      }
    }
    const wasmBytes = memory().buffer.byteLength;
    expect(wasmBytes).toBeGreaterThanOrEqual(2 ** 30);
    // Full: what is not heap is the allocator's emergency reserve (1 MiB, for names and messages),
    // the 1 MiB shadow stack, static data and a few KB of fragments.
    expect(wasmBytes - heapBytes()).toBeLessThan(3 * 2 ** 20);
    expect(performance.now() - t0).toBeLessThan(10_000);

    for (const [name, fn] of Object.entries(calls)) {
      expect(`${name}: ${code(fn)}`).toBe(`${name}: OUT_OF_MEMORY`);
    }
    // Error messages name what could not be allocated.
    expect(() => h.matmul(a, b)).toThrow(/matmul.*cannot allocate/);

    for (const t of held) t.dispose();
    for (const [name, fn] of Object.entries(calls)) {
      expect({ name, value: numbers(fn()) }).toEqual({ name, value: reference[name] });
    }
    // Reused memory is zeroed (the pages were written above).
    using z = h.zeros([1 << 20], 'float64');
    expect(z.toArray().every((e) => e === 0)).toBe(true);
  });
});
