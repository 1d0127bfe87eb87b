/**
 * Gauss–Newton and Fisher products against independent constructions: G = Jᵀ Hℓ J from the full
 * Jacobian of the network output and the loss Hessian in output space (both from the transforms),
 * and the empirical Fisher from per-sample gradients. Plus identities: symmetry, PSD, G = H for a
 * linear model under MSE.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');
type P = { w1: h.Sym; b1: h.Sym; w2: h.Sym; b2: h.Sym };
/** The network of `model` below, written with ops: x·W1ᵀ + b1 → tanh → ·W2ᵀ + b2. */
const net = (p: P, x: h.Sym) => h.add(h.matmul(h.tanh(h.add(h.matmul(x, h.transpose(p.w1)), p.b1)), h.transpose(p.w2)), p.b2);
const model = h.nn.sequential([h.nn.linear(3, 4), h.nn.tanh(), h.nn.linear(4, 2)]);

function setup(seed: number) {
  const r = rng(seed);
  const flat = Float64Array.from(randn(r, model.size));
  const v = model.views(flat);
  const params = { w1: f64(v['0.weight']!, [4, 3]), b1: f64(v['0.bias']!, [4]), w2: f64(v['2.weight']!, [2, 4]), b2: f64(v['2.bias']!, [2]) };
  const x = f64(randn(r, 5 * 3), [5, 3]);
  return { r, flat, params, x };
}

/** Jᵀ·M·J for J [m, n] and M [m, m], row-major. */
function sandwich(J: ArrayLike<number>, M: ArrayLike<number>, m: number, n: number): Float64Array {
  const MJ = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let k = 0; k < m; k++) for (let j = 0; j < n; j++) MJ[i * n + j]! += M[i * m + k]! * J[k * n + j]!;
  const out = new Float64Array(n * n);
  for (let a = 0; a < n; a++) for (let i = 0; i < m; i++) for (let b = 0; b < n; b++) out[a * n + b]! += J[i * n + a]! * MJ[i * n + b]!;
  return out;
}

describe.each([
  ['cross_entropy', (r: () => number) => f64([0, 1, 1, 0, 1], [5])],
  ['mse', (r: () => number) => f64(randn(r, 10), [5, 2])],
  ['bce_with_logits', (r: () => number) => f64(randn(r, 10).map((v) => (v + 1) / 2), [5, 2])],
] as const)('%s', (loss, makeY) => {
  it('dense GGN equals Jᵀ Hℓ J built from the full Jacobian and the output-space loss Hessian', () => {
    const { r, flat, params, x } = setup(1);
    const y = makeY(r);
    using obj = h.objective(model, loss, { x, y }, { params: flat });
    const G = obj.ggn({ chunk: 5 });
    const J = h.jacobian(net)(params, x); // [N·C, P], P in the model's order
    const out = h.tensor(h.jvp(net, params, params, [x])[0].toArray(), [5, 2], 'float64');
    const lossOf = { mse: h.mseLoss, cross_entropy: h.crossEntropy, bce_with_logits: h.bceWithLogits }[loss];
    const Hl = h.hessian((f: h.Sym) => lossOf(f, y))(out); // [N·C, N·C]
    expectClose(G, sandwich(J.toArray(), Hl.toArray(), 10, model.size), 1e-10, 1e-13);
    // The explicit SIMD-SYRK GGN, its diagonal and its per-layer blocks agree with it.
    expectClose(obj.gaussNewton('dense', { chunk: 7 }), G, 1e-12, 1e-14);
    // A float32 objective, accumulated in float64, agrees to float32 input precision.
    using o32 = h.objective(model, loss, { x: h.astype(x, 'float32'), y: h.astype(y, 'float32') }, { params: Float32Array.from(flat) });
    const g32 = o32.gaussNewton('dense', { accumulate: 'f64' });
    expect(g32).toBeInstanceOf(Float64Array);
    expectClose(g32, G, 1e-4, 1e-6);
    const n0 = model.size;
    expectClose(obj.gaussNewton('diagonal'), Array.from({ length: n0 }, (_, i) => G[i * n0 + i]!), 1e-12, 1e-14);
    const blocks = obj.gaussNewton('layers');
    expect(Object.keys(blocks)).toEqual(['0', '2']);
    expectClose(blocks['2']!, Array.from({ length: 100 }, (_, t) => G[(16 + Math.floor(t / 10)) * n0 + 16 + (t % 10)]!), 1e-12, 1e-14);
    // Symmetric, and PSD: vᵀGv ≥ 0 for random v; G·v agrees with the dense G.
    const n = model.size;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(Math.abs(G[i * n + j]! - G[j * n + i]!)).toBeLessThan(1e-13);
    for (let t = 0; t < 5; t++) {
      const v = Float64Array.from(randn(r, n));
      const gv = obj.ggnvp(v);
      expect(gv.reduce((s, a, i) => s + a * v[i]!, 0)).toBeGreaterThanOrEqual(-1e-12);
      expectClose(gv, Array.from({ length: n }, (_, i) => v.reduce((s, vj, j) => s + G[i * n + j]! * vj, 0)), 1e-10, 1e-13);
    }
  });

  it('empirical Fisher products equal (1/N) Σ gᵢ gᵢᵀ v from per-sample gradients', () => {
    const { r, flat, x } = setup(2);
    const y = makeY(r);
    using obj = h.objective(model, loss, { x, y }, { params: flat });
    const n = model.size;
    const N = 5;
    const xs = x.toArray();
    const ys = y.toArray();
    const per = y.size / N;
    const grads = Array.from({ length: N }, (_, i) => {
      const xi = f64(xs.subarray(i * 3, i * 3 + 3), [1, 3]);
      const yi = loss === 'cross_entropy' ? f64([ys[i]!], [1]) : f64(ys.subarray(i * per, (i + 1) * per), [1, per]);
      using oi = h.objective(model, loss, { x: xi, y: yi }, { params: flat });
      return oi.grad();
    });
    const v = Float64Array.from(randn(r, n));
    const want = new Float64Array(n);
    for (const g of grads) {
      const dot = g.reduce((s, a, i) => s + a * v[i]!, 0);
      for (let j = 0; j < n; j++) want[j]! += (g[j]! * dot) / N;
    }
    expectClose(obj.fisherVp(v), want, 1e-10, 1e-13);
  });
});

describe('Gauss–Newton structure', () => {
  it('equals the Hessian for a linear model under MSE', () => {
    const lin = h.nn.sequential([h.nn.linear(3, 2)]);
    const r = rng(3);
    using obj = h.objective(lin, 'mse', { x: f64(randn(r, 12), [4, 3]), y: f64(randn(r, 8), [4, 2]) }, { params: Float64Array.from(randn(r, lin.size)) });
    expectClose(obj.ggn(), obj.hessian(), 1e-12, 1e-14);
  });

  it('differs from the Hessian where the network is curved, and is refused for input derivatives', () => {
    const { r, flat, x } = setup(4);
    const y = f64([0, 1, 1, 0, 1], [5]);
    using obj = h.objective(model, 'ce', { x, y }, { params: flat });
    const v = Float64Array.from(randn(r, model.size));
    const diff = obj.hvp(v).reduce((s, a, i) => s + Math.abs(a - obj.ggnvp(v)[i]!), 0);
    expect(diff).toBeGreaterThan(1e-6);
    using inp = h.objective(model, 'ce', { x, y }, { params: flat, wrt: 'input' });
    expect(() => inp.ggnvp(new Float64Array(inp.size))).toThrowError(/defined for parameters/);
  });
});

describe('K-FAC through the API', () => {
  it('is the GGN block for one sample; its inverse inverts it; it skips non-linear layers', () => {
    const r = rng(12);
    const m = h.nn.sequential([h.nn.linear(3, 4), h.nn.layerNorm(4), h.nn.tanh(), h.nn.linear(4, 2)]);
    const x = f64(randn(r, 3), [1, 3]);
    using obj = h.objective(m, 'ce', { x, y: f64([1], [1]) }, { params: Float64Array.from(randn(r, m.size)) });
    using k = obj.kfac();
    expect(k.layers.map((l) => [l.layer, l.offset, l.size, l.dIn, l.dOut])).toEqual([
      [0, 0, 16, 4, 4],
      [3, 24, 10, 5, 2],
    ]);
    const blocks = obj.gaussNewton('layers');
    for (const l of k.layers) {
      const block = blocks[String(l.layer)]!;
      const kron = new Float64Array(l.size * l.size);
      for (let j = 0; j < l.size; j++) {
        const e = new Float64Array(m.size);
        e[l.offset + j] = 1;
        const col = k.mvp(e);
        for (let i = 0; i < l.size; i++) kron[i * l.size + j] = col[l.offset + i]!;
      }
      expectClose(kron, block, 1e-10, 1e-14);
    }
    const v = Float64Array.from(randn(r, m.size));
    const z = k.inverseApply(v, 0.3);
    const back = k.mvp(z).map((a, i) => a + 0.3 * z[i]!);
    for (const l of k.layers) expectClose(back.subarray(l.offset, l.offset + l.size), v.subarray(l.offset, l.offset + l.size), 1e-10, 1e-12);
    expect(Array.from(z.subarray(16, 24))).toEqual(new Array(8).fill(0)); // layer norm: not a K-FAC layer
    expect(() => k.inverseApply(v, 0)).toThrowError(/Kfac.inverseApply: damping must be a finite number > 0, got 0/);
    expect(() => k.mvp(new Float64Array(3))).toThrowError(/Kfac.mvp: v: expected 34 values, got 3/);
  });
});

describe('Monte Carlo curvature', () => {
  it('the Monte Carlo Fisher and GGN diagonal approach the exact GGN as samples grow', () => {
    const { r, flat, x } = setup(13);
    using obj = h.objective(model, 'ce', { x, y: f64([0, 1, 1, 0, 1], [5]) }, { params: flat });
    const v = Float64Array.from(randn(r, model.size));
    const exact = obj.ggnvp(v);
    const err = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.hypot(...Array.from(a, (x, i) => x - b[i]!)) / Math.hypot(...Array.from(b));
    const few = err(obj.curvatureProducts({ mcFisher: { samples: 4, seed: 1 } }, v, 1), exact);
    const many = err(obj.curvatureProducts({ mcFisher: { samples: 8000, seed: 1 } }, v, 1), exact);
    expect(many).toBeLessThan(0.05);
    expect(many).toBeLessThan(few);
    const d = obj.gaussNewton('diagonal');
    expect(err(obj.gaussNewton('diagonal', { monteCarlo: { samples: 8000, seed: 2 } }), d)).toBeLessThan(0.05);
    // Seeds reproduce.
    expect(obj.curvatureProducts({ mcFisher: { samples: 3, seed: 9 } }, v, 1)).toEqual(obj.curvatureProducts({ mcFisher: { samples: 3, seed: 9 } }, v, 1));
    expect(() => obj.curvatureProducts({ mcFisher: { samples: 0 } }, v, 1)).toThrowError(/mcFisher.samples must be an integer ≥ 1, got 0/);
  });
});
