/**
 * Data bigger than one batch: an objective with `batchSize` B < N against the single-batch
 * objective over all N samples (the independent reference: the single-batch path is checked
 * against PyTorch elsewhere), for every quantity, in float64 to 1e-12, with B dividing N and not.
 * Monte Carlo quantities, which are seeded per batch, against objectives built by hand on each
 * batch's slice with the documented seeds. Plus the bad input.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { batchSeed } from '../ts/batches.js';
import { encodeModel, valueInfo } from './cli-run.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();

const TOL = 1e-12;
type Loss = 'ce' | 'mse' | 'bce';

/** A dataset of N samples for each loss and a model for it (the conv one exercises K-FAC's conv2d). */
function problem(loss: Loss, n: number, seed = 1) {
  const r = rng(seed);
  if (loss === 'mse') {
    // conv2d → tanh → flatten → linear on [N, 1, 4, 4], MSE on [N, 2].
    const model = h.nn.sequential([h.nn.conv2d(1, 2, 3), h.nn.tanh(), h.nn.flatten(), h.nn.linear(8, 2)]);
    return { model, x: { data: Float64Array.from(randn(r, n * 16)), shape: [n, 1, 4, 4] }, y: { data: Float64Array.from(randn(r, n * 2)), shape: [n, 2] } };
  }
  const C = loss === 'ce' ? 4 : 3;
  const model = h.nn.sequential([h.nn.linear(3, 5), h.nn.tanh(), h.nn.linear(5, C)]);
  const y = loss === 'ce' ? Float64Array.from({ length: n }, () => Math.floor(r() * C)) : Float64Array.from({ length: n * C }, () => (r() < 0.5 ? 0 : 1));
  return { model, x: { data: Float64Array.from(randn(r, n * 3)), shape: [n, 3] }, y: { data: y, shape: loss === 'ce' ? [n] : [n, C] } };
}

const N = 10;
const SIZES = [5, 4, 3, 1]; // divides N, leaves 2, leaves 1, one sample per batch

describe.each(['ce', 'mse', 'bce'] as Loss[])('batched %s objective equals the single-batch one', (loss) => {
  const { model, x, y } = problem(loss, N);
  const params = model.init({ seed: 3, dtype: 'float64' });
  const ref = h.objective(model, loss, { x, y }, { params });
  const r = rng(9);
  const P = model.size;
  const v = Float64Array.from(randn(r, P));
  const vs = Float64Array.from(randn(r, 3 * P));
  const at = Float64Array.from(params, (p) => p + 0.1 * r());

  it.each(SIZES)('B = %i: loss, gradient, products (H, GGN, Fisher), at another point', (B) => {
    using obj = h.objective(model, loss, { x, y }, { params, batchSize: B });
    expect(obj.samples).toBe(N);
    expect(obj.batchSize).toBe(B);
    expect(Math.abs(obj.loss() - ref.loss())).toBeLessThanOrEqual(TOL * Math.abs(ref.loss()));
    expect(Math.abs(obj.loss(at) - ref.loss(at))).toBeLessThanOrEqual(TOL * Math.abs(ref.loss(at)));
    const [l, g] = obj.valueAndGrad();
    expect(Math.abs(l - ref.loss())).toBeLessThanOrEqual(TOL);
    expectClose(g, ref.grad(), TOL, TOL);
    expectClose(obj.grad(at), ref.grad(at), TOL, TOL);
    expectClose(obj.hvp(v), ref.hvp(v), TOL, TOL);
    expectClose(obj.hvp(v, at), ref.hvp(v, at), TOL, TOL);
    expectClose(obj.ggnvp(v), ref.ggnvp(v), TOL, TOL);
    expectClose(obj.fisherVp(v), ref.fisherVp(v), TOL, TOL);
    expectClose(obj.hvps(vs, 3), ref.hvps(vs, 3), TOL, TOL);
    for (const c of ['hessian', 'ggn', 'fisher'] as const) expectClose(obj.curvatureProducts(c, vs, 3), ref.curvatureProducts(c, vs, 3), TOL, TOL);
    expect(obj.grad()).toBeInstanceOf(Float64Array);
  });

  it.each(SIZES)('B = %i: dense Hessian, GGN, Fisher; explicit GGN dense, diagonal, layers', (B) => {
    using obj = h.objective(model, loss, { x, y }, { params, batchSize: B });
    expectClose(obj.hessian({ chunk: 7 }), ref.hessian(), TOL, TOL);
    expectClose(obj.ggn(), ref.ggn(), TOL, TOL);
    expectClose(obj.dense('fisher'), ref.dense('fisher'), TOL, TOL);
    expectClose(obj.gaussNewton('dense'), ref.gaussNewton('dense'), TOL, TOL);
    expectClose(obj.gaussNewton('diagonal'), ref.gaussNewton('diagonal'), TOL, TOL);
    const lb = obj.gaussNewton('layers');
    const lr = ref.gaussNewton('layers');
    expect(Object.keys(lb)).toEqual(Object.keys(lr));
    for (const k of Object.keys(lr)) expectClose(lb[k]!, lr[k]!, TOL, TOL);
    // The explicit GGN is the dense GGN from products (an identity of the batched path itself).
    expectClose(obj.gaussNewton('dense'), obj.ggn(), 1e-12, 1e-14);
  });

  it.each(SIZES)('B = %i: K-FAC factors, products and damped inverse', (B) => {
    using obj = h.objective(model, loss, { x, y }, { params, batchSize: B });
    using kb = obj.kfac();
    using kr = ref.kfac();
    expect(kb.layers.length).toBe(kr.layers.length);
    kb.layers.forEach((l, i) => {
      const m = kr.layers[i]!;
      expect([l.layer, l.dIn, l.dOut, l.offset, l.size]).toEqual([m.layer, m.dIn, m.dOut, m.offset, m.size]);
      expectClose(l.a, m.a, TOL, TOL);
      expectClose(l.b, m.b, TOL, TOL);
    });
    expectClose(kb.mvp(v), kr.mvp(v), TOL, TOL);
    expectClose(kb.inverseApply(v, 0.1), kr.inverseApply(v, 0.1), 1e-11, 1e-12);
  });

  it.each(SIZES)('B = %i: operators in the Krylov methods (Lanczos, trace, diagonal, SLQ, CG, MINRES, power)', (B) => {
    using obj = h.objective(model, loss, { x, y }, { params, batchSize: B });
    for (const c of ['hessian', 'ggn'] as const) {
      const ob = obj.operator(c);
      const or = ref.operator(c);
      expect(ob.size).toBe(P);
      const eb = h.eigenvalues(ob, 3, { which: 'both', maxIter: P });
      const er = h.eigenvalues(or, 3, { which: 'both', maxIter: P });
      expectClose(eb.values, er.values, 1e-10, 1e-12);
      expect(eb.products).toBe(er.products);
      // Fixed probes: every estimate is linear in the products, so it matches to rounding.
      const tb = h.trace(ob, { method: 'hutchinson', samples: 20, seed: 4 });
      const tr = h.trace(or, { method: 'hutchinson', samples: 20, seed: 4 });
      expect(Math.abs(tb.trace - tr.trace)).toBeLessThanOrEqual(1e-11 * Math.max(1, Math.abs(tr.trace)));
      expectClose(h.diagonal(ob, { samples: 10, seed: 5 }).diagonal, h.diagonal(or, { samples: 10, seed: 5 }).diagonal, 1e-10, 1e-12);
      const db = h.spectralDensity(ob, { probes: 2, steps: 8, seed: 6 });
      const dr = h.spectralDensity(or, { probes: 2, steps: 8, seed: 6 });
      expectClose(db.nodes, dr.nodes, 1e-9, 1e-11);
      expectClose(db.weights, dr.weights, 1e-9, 1e-11);
      expectClose(h.cg(ob, v, { damping: 0.5, maxIter: 10 }).x, h.cg(or, v, { damping: 0.5, maxIter: 10 }).x, 1e-10, 1e-12);
      expectClose(h.minres(ob, v, { shift: 0.5, maxIter: 10 }).x, h.minres(or, v, { shift: 0.5, maxIter: 10 }).x, 1e-10, 1e-12);
      expectClose(h.powerIteration(ob, 1, { maxIter: 30, seed: 1 }).values, h.powerIteration(or, 1, { maxIter: 30, seed: 1 }).values, 1e-10, 1e-12);
      // The operator's own matvec is the batched product too.
      expectClose(ob.matvec(v, new Float64Array(P)) as Float64Array, or.matvec(v, new Float64Array(P)) as Float64Array, TOL, TOL);
    }
  });

  it.each(SIZES)('B = %i: Laplace (full and last layer) uses N over all batches', (B) => {
    using obj = h.objective(model, loss, { x, y }, { params, batchSize: B });
    for (const subset of ['all', 'last-layer'] as const) {
      const lb = h.laplace(obj, { subset, priorPrecision: 0.7 });
      const lr = h.laplace(ref, { subset, priorPrecision: 0.7 });
      expectClose(lb.precision, lr.precision, TOL, TOL);
      expectClose(lb.parameterVariances(), lr.parameterVariances(), 1e-10, 1e-12);
      const xs = h.tensor(x.data.slice(0, 2 * (x.data.length / N)), [2, ...x.shape.slice(1)], 'float64');
      const pb = lb.predict(xs);
      const pr = lr.predict(xs);
      expectClose(pb.mean, pr.mean, TOL, TOL);
      expectClose(pb.variance, pr.variance, 1e-10, 1e-12);
    }
  });

  it.each([4, 3])('B = %i: Hessian-free optimization takes the same steps', (B) => {
    const a = h.objective(model, loss, { x, y }, { params: params.slice(), batchSize: B });
    const b = h.objective(model, loss, { x, y }, { params: params.slice() });
    try {
      const ra = h.hessianFree(a, { steps: 3, cgMaxIter: 5 });
      const rb = h.hessianFree(b, { steps: 3, cgMaxIter: 5 });
      expectClose(ra.losses, rb.losses, 1e-10);
      expectClose(a.params, b.params, 1e-9, 1e-11);
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe('batched Monte Carlo quantities are seeded per batch', () => {
  const { model, x, y } = problem('ce', N, 2);
  const params = model.init({ seed: 1, dtype: 'float64' });
  const v = Float64Array.from(randn(rng(3), model.size));
  const mc = { mcFisher: { samples: 3, seed: 7 } } as const;
  /** Objectives on each batch's slice, built by hand: the reference for the per-batch seeding. */
  const slices = (B: number) => {
    const out: { obj: h.Objective<'float64'>; w: number; i: number }[] = [];
    for (let s = 0, i = 0; s < N; s += B, i++) {
      const rows = Math.min(B, N - s);
      const xs = { data: x.data.slice(s * 3, (s + rows) * 3), shape: [rows, 3] };
      const ys = { data: y.data.slice(s, s + rows), shape: [rows] };
      out.push({ obj: h.objective(model, 'ce', { x: xs, y: ys }, { params }), w: rows / N, i });
    }
    return out;
  };
  const weighted = (parts: ReturnType<typeof slices>, f: (o: h.Objective<'float64'>, i: number) => ArrayLike<number>) => {
    let acc: Float64Array | undefined;
    for (const { obj, w, i } of parts) {
      const r = f(obj, i);
      acc ??= new Float64Array(r.length);
      for (let j = 0; j < r.length; j++) acc[j]! += w * r[j]!;
      obj.dispose();
    }
    return acc!;
  };

  it('batch seeds: batch 0 keeps the seed; the others are distinct seeds in [0, 2³²)', () => {
    expect(batchSeed(7, 0)).toBe(7);
    const seeds = Array.from({ length: 1000 }, (_, i) => batchSeed(2 ** 32 - 1, i));
    expect(new Set(seeds).size).toBe(1000);
    expect(seeds.every((s) => Number.isInteger(s) && s >= 0 && s < 2 ** 32)).toBe(true);
  });

  it('B ≥ N draws exactly what the unbatched objective draws', () => {
    using ref = h.objective(model, 'ce', { x, y }, { params });
    using one = h.objective(model, 'ce', { x, y }, { params, batchSize: 25 });
    expect(one.batchSize).toBe(N);
    expect(one.curvatureProducts(mc, v, 1)).toEqual(ref.curvatureProducts(mc, v, 1));
    expect(one.gaussNewton('dense', { monteCarlo: { samples: 2, seed: 5 } })).toEqual(ref.gaussNewton('dense', { monteCarlo: { samples: 2, seed: 5 } }));
    using ka = one.kfac({ variant: 'mc', samples: 2, seed: 5 });
    using kb = ref.kfac({ variant: 'mc', samples: 2, seed: 5 });
    expect(ka.layers[0]!.b).toEqual(kb.layers[0]!.b);
  });

  it.each([4, 5])('B = %i: the MC Fisher, MC GGN and MC K-FAC are the weighted sums of per-batch draws with seeds batchSeed(s, i)', (B) => {
    using obj = h.objective(model, 'ce', { x, y }, { params, batchSize: B });
    expectClose(obj.curvatureProducts(mc, v, 1), weighted(slices(B), (o, i) => o.curvatureProducts({ mcFisher: { samples: 3, seed: batchSeed(7, i) } }, v, 1)), TOL, TOL);
    const gn = { samples: 2, seed: 5 };
    expectClose(obj.gaussNewton('dense', { monteCarlo: gn }), weighted(slices(B), (o, i) => o.gaussNewton('dense', { monteCarlo: { samples: 2, seed: batchSeed(5, i) } })), TOL, TOL);
    using k = obj.kfac({ variant: 'mc', samples: 2, seed: 5 });
    const kb = weighted(slices(B), (o, i) => {
      using kk = o.kfac({ variant: 'mc', samples: 2, seed: batchSeed(5, i) });
      return kk.layers[1]!.b;
    });
    expectClose(k.layers[1]!.b, kb, TOL, TOL);
    // Seeds do depend on B (documented): the estimate of B = 4 is not that of B = 5.
    using other = h.objective(model, 'ce', { x, y }, { params, batchSize: B === 4 ? 5 : 4 });
    expect(Array.from(other.curvatureProducts(mc, v, 1))).not.toEqual(Array.from(obj.curvatureProducts(mc, v, 1)));
  });

  it('the batched MC Fisher is still an unbiased estimate of the GGN (many draws)', () => {
    using obj = h.objective(model, 'ce', { x, y }, { params, batchSize: 3 });
    const g = obj.ggnvp(v);
    const f = obj.curvatureProducts({ mcFisher: { samples: 4000, seed: 1 } }, v, 1);
    const err = Math.hypot(...Array.from(f, (a, i) => a - g[i]!)) / Math.hypot(...g);
    expect(err).toBeLessThan(0.1);
  });
});

describe('batched objectives: data forms, float32, setData, memory', () => {
  it('Tensor and host-array data give the same objective; float32 batches agree with float32 unbatched', () => {
    const { model, x, y } = problem('ce', 13, 4);
    const params = model.init({ seed: 2, dtype: 'float64' });
    using a = h.objective(model, 'ce', { x: h.tensor(x.data, x.shape, 'float64'), y: h.tensor(y.data, y.shape, 'float64') }, { params, batchSize: 4 });
    using b = h.objective(model, 'ce', { x, y }, { params, batchSize: 4 });
    expect(a.grad()).toEqual(b.grad());
    const x32 = { data: Float32Array.from(x.data), shape: x.shape };
    const y32 = { data: Float32Array.from(y.data), shape: y.shape };
    using f = h.objective(model, 'ce', { x: x32, y: y32 }, { params: Float32Array.from(params), batchSize: 4 });
    using g = h.objective(model, 'ce', { x: x32, y: y32 }, { params: Float32Array.from(params) });
    expect(f.dtype).toBe('float32');
    expect(f.grad()).toBeInstanceOf(Float32Array);
    expectClose(f.grad(), g.grad(), 1e-5, 1e-6);
    expectClose(f.gaussNewton('diagonal'), g.gaussNewton('diagonal'), 1e-5, 1e-7);
    const acc = f.gaussNewton('dense', { accumulate: 'f64' });
    expect(acc).toBeInstanceOf(Float64Array);
    expectClose(acc, g.gaussNewton('dense', { accumulate: 'f64' }), 1e-5, 1e-7);
    // float64 accumulation of float32 batches is close to the float64 objective's GGN.
    using ref64 = h.objective(model, 'ce', { x, y }, { params });
    expectClose(acc, ref64.gaussNewton('dense'), 1e-4, 1e-6);
  });

  it('setData replaces all N samples; results follow', () => {
    const p1 = problem('mse', N, 5);
    const p2 = problem('mse', N, 6);
    const params = p1.model.init({ seed: 1, dtype: 'float64' });
    using obj = h.objective(p1.model, 'mse', { x: p1.x, y: p1.y }, { params, batchSize: 3 });
    obj.grad();
    obj.setData({ x: p2.x, y: p2.y });
    using ref = h.objective(p1.model, 'mse', { x: p2.x, y: p2.y }, { params });
    expectClose(obj.grad(), ref.grad(), TOL, TOL);
    expect(() => obj.setData({ x: { data: p2.x.data.slice(16), shape: [N - 1, 1, 4, 4] }, y: p2.y })).toThrowError(/setData: expected x \[10, 1, 4, 4\]/);
    expectClose(obj.grad(), ref.grad(), TOL, TOL);
  });

  it('wasm holds one batch: host data of many samples in small batches use little wasm heap', () => {
    const n = 4000;
    const r = rng(7);
    const model = h.nn.sequential([h.nn.linear(64, 8), h.nn.tanh(), h.nn.linear(8, 3)]);
    const x = { data: Float64Array.from(randn(r, n * 64)), shape: [n, 64] };
    const y = { data: Float64Array.from({ length: n }, (_, i) => i % 3), shape: [n] };
    const measure = (batchSize?: number) => {
      h.memoryStats({ resetPeak: true });
      const before = h.memoryStats().heapBytes;
      const obj = h.objective(model, 'ce', { x, y }, { batchSize });
      obj.hvp(new Float64Array(model.size).fill(0.1));
      const peak = h.memoryStats().heapPeakBytes - before;
      obj.dispose();
      return peak;
    };
    const whole = measure();
    const batched = measure(100);
    expect(whole).toBeGreaterThan(n * 64 * 8); // the whole x was in wasm
    expect(batched).toBeLessThan(whole / 10);
  });
});

describe('batched objectives: bad input', () => {
  const { model, x, y } = problem('ce', N);
  it.each([0, -1, 2.5, NaN, Infinity, '4', null])('batchSize %s is an INVALID_ARGUMENT naming it', (B) => {
    expect(() => h.objective(model, 'ce', { x, y }, { batchSize: B as number })).toThrowError(/objective: batchSize must be an integer ≥ 1/);
  });

  it('batchSize > N is one batch of all N', () => {
    using obj = h.objective(model, 'ce', { x, y }, { batchSize: 1000 });
    using ref = h.objective(model, 'ce', { x, y });
    expect([obj.samples, obj.batchSize]).toEqual([N, N]);
    expect(ref.batchSize).toBe(N);
    expect(obj.grad()).toEqual(ref.grad());
  });

  it("wrt 'input' with B < N is refused, with B ≥ N it works", () => {
    expect(() => h.objective(model, 'ce', { x, y }, { wrt: 'input', batchSize: 4 })).toThrowError(/wrt 'input' differentiates with respect to all of x \[10, 3\] at once.*batches of 4 of the N = 10/);
    using ok = h.objective(model, 'ce', { x, y }, { wrt: 'input', batchSize: N });
    using ref = h.objective(model, 'ce', { x, y }, { wrt: 'input' });
    expect(ok.grad()).toEqual(ref.grad());
  });

  it('host arrays are checked', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof h.HesseError ? `${e.code}: ${e.message}` : String(e);
      }
      return 'no error';
    };
    expect(code(() => h.objective(model, 'ce', { x: { data: [1, 2, 3] as never, shape: [1, 3] }, y }))).toMatch(/^INVALID_ARGUMENT: objective: x.data must be a Float32Array or Float64Array/);
    expect(code(() => h.objective(model, 'ce', { x: { data: x.data, shape: [N, 4] }, y }))).toMatch(/^SHAPE_MISMATCH: objective: x: shape \[10, 4\] has 40 values but data has 30/);
    expect(code(() => h.objective(model, 'ce', { x: { data: x.data, shape: [N, -3] }, y }))).toMatch(/^INVALID_ARGUMENT: objective: x.shape must be an array of integers ≥ 0/);
    expect(code(() => h.objective(model, 'ce', { x, y: { data: Float32Array.from(y.data), shape: y.shape } }))).toMatch(/^DTYPE_MISMATCH/);
    expect(code(() => h.objective(model, 'ce', { x, y: { data: y.data.slice(1), shape: [N - 1] } }))).toMatch(/^SHAPE_MISMATCH: objective: x \[10, 3\] and y \[9\]/);
  });

  it('an error in one batch names its samples', () => {
    const bad = y.data.slice();
    bad[7] = 9; // class 9 of 4, in the second batch of 5
    using obj = h.objective(model, 'ce', { x, y: { data: bad, shape: y.shape } }, { batchSize: 5 });
    expect(() => obj.loss()).toThrowError(/^samples 5–9 \(batch 2 of 2; an index below counts from sample 5\): cross_entropy: label 9 at index 2 /);
    // The objective keeps working after the error.
    obj.setData({ x, y });
    expect(Number.isFinite(obj.loss())).toBe(true);
  });

  it('a model whose input declares a fixed batch runs on any batch its graph allows, the short last one included', async () => {
    // Gemm on an input declared [4, 3] (the exporter's example batch): nothing in the graph
    // depends on N, so batches of 4, 4 and 2 give the single-batch gradient over all N = 10.
    const w = { name: 'w', dims: [2, 3], dataType: 11, doubleData: randn(rng(1), 6) };
    const graph = { name: 'g', node: [{ opType: 'Gemm', input: ['x', 'w'], output: ['f'], attribute: [{ name: 'transB', i: 1, type: 2 }] }], initializer: [w], input: [valueInfo('x', [4, 3])], output: [valueInfo('f', [4, 2])] };
    const onnx = await h.loadOnnx(await encodeModel(graph));
    const yy = { data: y.data.map((c) => c % 2), shape: y.shape };
    using whole = h.objective(onnx, 'ce', { x, y: yy });
    using batched = h.objective(onnx, 'ce', { x, y: yy }, { batchSize: 4 });
    expectClose(batched.grad(), whole.grad(), TOL, TOL);
  });
});
