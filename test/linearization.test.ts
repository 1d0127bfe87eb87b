/**
 * Linearization reuse through the public API: an objective's operator records the primal results
 * of its first product and replays them in the others, and the estimators on it return bitwise
 * what they return on products that are each computed fresh; repeated direct products
 * (obj.hvp, ggnvp, fisherVp) are bitwise fresh products too, also after θ or the data change.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import type { RawOperator } from '../ts/wasm/hesse.js';
import { randn, rng } from './helpers.js';

await h.init();

type D = 'float32' | 'float64';
type Stats = { fresh: number; recorded: number; replayed: number; tapeBytes: number };

const models = {
  mlp: { model: () => h.nn.sequential([h.nn.linear(5, 7), h.nn.tanh(), h.nn.linear(7, 3)]), x: [12, 5] },
  conv: {
    model: () => h.nn.sequential([h.nn.conv2d(2, 3, 3, { padding: 1 }), h.nn.relu(), h.nn.conv2d(3, 2, 3, { stride: 2 }), h.nn.gelu(), h.nn.flatten(), h.nn.linear(8, 3)]),
    x: [3, 2, 5, 5],
  },
  layerNorm: { model: () => h.nn.sequential([h.nn.linear(5, 6), h.nn.layerNorm(6), h.nn.gelu(), h.nn.linear(6, 3)]), x: [12, 5] },
};
const curvatures: h.Curvature[] = ['hessian', 'ggn', 'fisher', { mcFisher: { samples: 2, seed: 5 } }];

function make(name: keyof typeof models, dtype: D, seed = 3) {
  const m = models[name];
  const model = m.model();
  const r = rng(seed);
  const n = m.x[0]!;
  const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
  const x = h.tensor(Ctor.from(randn(r, m.x.reduce((a, b) => a * b, 1))), m.x, dtype);
  const y = h.tensor(Ctor.from({ length: n }, (_, i) => (i * 5 + 1) % 3), [n], dtype);
  const params = Ctor.from(randn(r, model.size).map((v) => 0.7 * v));
  return h.objective(model, 'ce', { x, y } as never, { params }) as h.Objective<D>;
}

/** The objective's operator for `curvature`, with its raw operator's reuse counts read before it is freed. */
function native(obj: h.Objective<D>, curvature: h.Curvature, cap?: number): { op: h.NativeOperator; stats: () => Stats } {
  const base = obj.operator(curvature);
  let last: Stats | undefined;
  const op: h.NativeOperator = {
    size: base.size,
    matvec: base.matvec,
    rawOperator: () => {
      const raw = base.rawOperator() as RawOperator;
      if (cap !== undefined) raw.setReuseCap(cap);
      const free = raw.free.bind(raw);
      raw.free = () => {
        last = raw.reuseStats() as Stats;
        free();
      };
      return raw;
    },
  };
  return { op, stats: () => last! };
}

const bits = (a: ArrayLike<number>) => Array.from(a, (v) => (Object.is(v, -0) ? '-0' : String(v)));

describe('the estimators replay the linearization, bitwise as fresh products', () => {
  for (const name of Object.keys(models) as (keyof typeof models)[]) {
    for (const dtype of ['float32', 'float64'] as const) {
      it(`${name}, ${dtype}: eigenvalues, trace, diagonal, spectralDensity, cg`, () => {
        using obj = make(name, dtype);
        for (const c of curvatures) {
          const what = `${name} ${dtype} ${JSON.stringify(c)}`;
          const reuse = native(obj, c);
          const fresh = native(obj, c, 0);
          const runs: [string, (op: h.NativeOperator) => unknown][] = [
            ['eigenvalues', (op) => h.eigenvalues(op, 2, { tol: 1e-6, maxIter: 20, seed: 1 })],
            ['trace', (op) => h.trace(op, { method: 'hutchinson', samples: 6, seed: 2 })],
            ['diagonal', (op) => h.diagonal(op, { samples: 4, seed: 3 })],
            ['spectralDensity', (op) => h.spectralDensity(op, { probes: 2, steps: 6, seed: 4 })],
            ['cg', (op) => h.cg(op, Float64Array.from({ length: obj.size }, (_, i) => Math.sin(i + 1)), { damping: 0.5, maxIter: 8 })],
          ];
          for (const [algo, run] of runs) {
            const a = run(reuse.op) as { products: number };
            const b = run(fresh.op) as { products: number };
            expect(JSON.stringify(a, (_, v) => (ArrayBuffer.isView(v) ? bits(v as Float64Array) : v)), `${what} ${algo}`).toBe(JSON.stringify(b, (_, v) => (ArrayBuffer.isView(v) ? bits(v as Float64Array) : v)));
            const [s, f] = [reuse.stats(), fresh.stats()];
            expect([s.recorded, s.replayed, s.fresh], `${what} ${algo}: ${JSON.stringify(s)}`).toEqual([1, a.products - 1, 0]);
            expect(s.tapeBytes).toBeGreaterThan(0);
            expect([f.recorded + f.fresh, f.replayed], `${what} ${algo} without reuse`).toEqual([b.products, 0]);
          }
        }
      });
    }
  }
});

describe('direct products reuse the linearization of the staged point', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: repeated hvp / ggnvp / fisherVp are bitwise fresh products, also after θ or the data change`, () => {
      using obj = make('layerNorm', dtype);
      // Fresh products of `ref` at θ: each follows one at another point (an objective's program
      // keeps the linearization of one point, recorded at its second product there).
      using ref = make('layerNorm', dtype);
      const other = obj.params.map((v) => v + 1);
      const freshAt = (c: h.Curvature, v: Float64Array, at: Float32Array | Float64Array) => {
        ref.curvatureProducts(c, v, 1, other);
        return ref.curvatureProducts(c, v, 1, at);
      };
      const r = rng(9);
      for (const c of curvatures) {
        for (let j = 0; j < 4; j++) {
          const v = Float64Array.from(randn(r, obj.size));
          const got = c === 'hessian' ? obj.hvp(v) : c === 'ggn' ? obj.ggnvp(v) : obj.curvatureProducts(c, v, 1);
          expect(bits(got), `${JSON.stringify(c)} product ${j}`).toEqual(bits(freshAt(c, v, obj.params)));
        }
      }
      const v = Float64Array.from(randn(r, obj.size));
      const before = obj.hvp(v);
      obj.hvp(v);
      obj.params = obj.params.map((p, i) => (i % 2 ? p : 0.5 * p));
      const moved = obj.hvp(v);
      expect(bits(moved)).not.toEqual(bits(before));
      expect(bits(moved)).toEqual(bits(freshAt('hessian', v, obj.params)));
      expect(bits(obj.hvp(v))).toEqual(bits(moved));
      // New data: x negated (ref gets the same data).
      const n = models.layerNorm.x[0]!;
      const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
      const x2 = h.tensor(Ctor.from(randn(rng(77), n * 5)), [n, 5], dtype);
      const y2 = h.tensor(Ctor.from({ length: n }, (_, i) => i % 3), [n], dtype);
      obj.hvp(v);
      obj.setData({ x: x2, y: y2 } as never);
      ref.setData({ x: x2, y: y2 } as never);
      const onNew = obj.hvp(v);
      expect(bits(onNew)).not.toEqual(bits(moved));
      expect(bits(onNew)).toEqual(bits(freshAt('hessian', v, obj.params)));
      expect(bits(obj.hvp(v))).toEqual(bits(onNew));
      expect(bits(obj.hvp(v))).toEqual(bits(onNew));
    });
  }
});
