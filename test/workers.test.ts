/**
 * The async objective's workers (ts/pool/): 1 and 2 workers against the sync Objective on the
 * same data (loss, gradient, H·v, G·v, F·v on an MLP, N not divisible by the workers; float64
 * to 1e-12 relative, float32 to 1e-6), batching inside shards, argument errors, a worker killed
 * mid-call (WORKER_FAILED, the objective then closed, no Promise left hanging), and 100
 * create/dispose cycles leaving no threads. Runs the built package (dist/: the worker script is
 * dist/pool/worker.js; `npm run build` first, as CI does).
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as h from '../dist/index.js';
import { core } from '../dist/runtime.js';
import { call } from '../dist/errors.js';
import { encodeModel, valueInfo } from './cli-run.js';
import { rng, randn, relError } from './helpers.js';

beforeAll(() => h.init());

const model = () => h.nn.sequential([h.nn.linear(5, 8), h.nn.tanh(), h.nn.linear(8, 3)]);

function data<D extends 'float32' | 'float64'>(dtype: D, n: number) {
  const r = rng(7);
  const A = dtype === 'float64' ? Float64Array : Float32Array;
  const x = { data: A.from(randn(r, n * 5)), shape: [n, 5] };
  const y = { data: A.from({ length: n }, (_, i) => (i * 7) % 3), shape: [n] };
  return { x, y } as unknown as h.ObjectiveData<D>;
}

/** Every method of the sync objective, and the same of an async one, as arrays to compare. */
async function both(dtype: 'float32' | 'float64', workers: number, n: number, opts: h.ObjectiveOptions = {}) {
  const m = model();
  const d = data(dtype, n);
  const sync = h.objective(m, 'cross_entropy', d, { seed: 3, ...opts });
  const obj = await h.objectiveAsync(m, 'cross_entropy', d, { seed: 3, workers, ...opts });
  try {
    expect(obj.workers).toBe(workers);
    const v = Float64Array.from(randn(rng(11), m.size));
    const [l, g] = await obj.valueAndGrad();
    const got = [[l], g, await obj.hvp(v), await obj.ggnvp(v), await obj.fisherVp(v), [await obj.loss()], await obj.grad()];
    const want = [[sync.loss()], sync.grad(), sync.hvp(v), sync.ggnvp(v), sync.fisherVp(v), [sync.loss()], sync.grad()];
    return { got, want, obj };
  } finally {
    await obj.dispose();
    sync.dispose();
  }
}

describe('async objective vs the sync one', () => {
  for (const [dtype, tol] of [['float64', 1e-12], ['float32', 1e-6]] as const) {
    for (const workers of [1, 2, 3]) {
      it(`${dtype}, ${workers} worker(s), N = 13: loss, grad, hvp, ggnvp, fisherVp within ${tol}`, async () => {
        const { got, want } = await both(dtype, workers, 13);
        got.forEach((g, i) => {
          expect(g.length).toBe(want[i]!.length);
          expect(relError(Float64Array.from(g), Float64Array.from(want[i]!)), `result ${i}`).toBeLessThanOrEqual(tol);
          if (dtype === 'float32' && i > 0 && i < 5) expect(g).toBeInstanceOf(Float32Array);
        });
        // One worker runs the sync objective on all N: the same numbers, bit for bit.
        if (workers === 1) got.forEach((g, i) => expect(Array.from(g)).toEqual(Array.from(want[i]!)));
      });
    }
  }

  it('workers: 0 (what workerd gets, having no Workers): the sync objective in this thread, bit for bit', async () => {
    const m = model();
    const d = data('float64', 13);
    const sync = h.objective(m, 'cross_entropy', d, { seed: 3 });
    const obj = await h.objectiveAsync(m, 'cross_entropy', d, { seed: 3, workers: 0 });
    const v = Float64Array.from(randn(rng(11), m.size));
    expect(obj.workers).toBe(0);
    expect(await obj.loss()).toBe(sync.loss());
    expect(Array.from(await obj.hvp(v))).toEqual(Array.from(sync.hvp(v)));
    await obj.dispose();
    await expect(obj.loss()).rejects.toMatchObject({ code: 'DISPOSED' });
    sync.dispose();
  });

  it('batchSize inside the shards (N = 13, 2 workers, batches of 4): the same means', async () => {
    const { got, want } = await both('float64', 2, 13, { batchSize: 4 });
    got.forEach((g, i) => expect(relError(Float64Array.from(g), Float64Array.from(want[i]!))).toBeLessThanOrEqual(1e-12));
  });

  it('an ONNX model with an integer input (Gather of token ids, ReduceMean, Gemm): 2 workers equal the sync objective', async () => {
    const [V, d, C, N, T] = [50, 4, 3, 7, 5];
    const r = rng(3);
    const init = (name: string, dims: number[]) => ({ name, dims, dataType: 11, doubleData: randn(r, dims.reduce((a, b) => a * b, 1)) });
    const graph = {
      name: 'emb',
      node: [
        { opType: 'Gather', input: ['E', 'ids'], output: ['e'] },
        { opType: 'ReduceMean', input: ['e'], output: ['m'], attribute: [{ name: 'axes', ints: [1], type: 7 }, { name: 'keepdims', i: 0, type: 2 }] },
        { opType: 'Gemm', input: ['m', 'W', 'b'], output: ['f'], attribute: [{ name: 'transB', i: 1, type: 2 }] },
      ],
      initializer: [init('E', [V, d]), init('W', [C, d]), init('b', [C])],
      input: [{ name: 'ids', type: { tensorType: { elemType: 7, shape: { dim: [{ dimValue: N }, { dimValue: T }] } } } }],
      output: [valueInfo('f', [N, C])],
    };
    const m = await h.loadOnnx(await encodeModel(graph));
    expect(m.inputKind).toBe('index');
    const x = { data: BigInt64Array.from({ length: N * T }, (_, i) => BigInt((i * 7919) % V)), shape: [N, T] };
    const y = { data: Float64Array.from({ length: N }, (_, i) => i % C), shape: [N] };
    const sync = h.objective(m, 'cross_entropy', { x, y });
    const obj = await h.objectiveAsync(m, 'cross_entropy', { x, y }, { workers: 2 });
    try {
      const v = Float64Array.from({ length: m.size }, (_, i) => Math.sin(i));
      expect(Math.abs((await obj.loss()) - sync.loss()) / Math.abs(sync.loss())).toBeLessThanOrEqual(1e-12);
      expect(relError(await obj.grad(), sync.grad())).toBeLessThanOrEqual(1e-12);
      expect(relError(await obj.hvp(v), sync.hvp(v))).toBeLessThanOrEqual(1e-12);
      expect(relError(await obj.ggnvp(v), sync.ggnvp(v))).toBeLessThanOrEqual(1e-12);
    } finally {
      await obj.dispose();
      sync.dispose();
    }
  });

  it('hvps, curvatureProducts, at, setParams and the async operator', async () => {
    const m = model();
    const d = data('float64', 11);
    const sync = h.objective(m, 'cross_entropy', d, { seed: 1 });
    const obj = await h.objectiveAsync(m, 'cross_entropy', d, { seed: 1, workers: 2 });
    try {
      const vs = Float64Array.from(randn(rng(5), 2 * m.size));
      expect(relError(await obj.hvps(vs, 2), sync.hvps(vs, 2))).toBeLessThanOrEqual(1e-12);
      expect(relError(await obj.curvatureProducts('ggn', vs, 2), sync.curvatureProducts('ggn', vs, 2))).toBeLessThanOrEqual(1e-12);
      const at = Float64Array.from(randn(rng(9), m.size));
      expect(relError(await obj.grad(at), sync.grad(at))).toBeLessThanOrEqual(1e-12);
      const op = obj.operator('ggn');
      obj.setParams(at); // the operator keeps the point it was made at
      sync.params = at;
      const v = vs.subarray(0, m.size);
      expect(relError(await obj.hvp(v), sync.hvp(v))).toBeLessThanOrEqual(1e-12);
      sync.params = h.objective(m, 'cross_entropy', d, { seed: 1 }).params;
      expect(op.size).toBe(m.size);
      expect(relError(Float64Array.from(await op.matvec(Float64Array.from(v))), sync.ggnvp(v))).toBeLessThanOrEqual(1e-12);
    } finally {
      await obj.dispose();
      sync.dispose();
    }
  });
});

describe('errors', () => {
  it('RawProgram.fromBytes of truncated or foreign bytes: INVALID_ARGUMENT naming the bytes; the instance keeps working', () => {
    const g = new (core().RawProgram)('float64');
    const x = g.input([2, 3]);
    g.sequential(x, JSON.stringify([{ type: 'linear', in: 3, out: 2 }]));
    const bytes = g.toBytes();
    const back = core().RawProgram.fromBytes(bytes, 'float64');
    expect([back.nNodes(), back.nParams()]).toEqual([g.nNodes(), g.nParams()]);
    expect(Array.from(back.toBytes())).toEqual(Array.from(bytes));
    for (const bad of [bytes.subarray(0, bytes.length - 1), new Uint8Array([1, 2, 3]), new Uint8Array(0)]) {
      expect(() => call(() => core().RawProgram.fromBytes(bad, 'float64'))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/program bytes/) }));
    }
    expect(core().RawProgram.fromBytes(bytes, 'float32').nParams()).toBe(8);
    back.free();
    g.free();
  });

  it('bad arguments reject with the sync HesseErrors; the objective keeps working', async () => {
    const m = model();
    const obj = await h.objectiveAsync(m, 'cross_entropy', data('float64', 9), { workers: 2 });
    try {
      await expect(obj.hvp(new Float64Array(3))).rejects.toMatchObject({ code: 'LENGTH_MISMATCH' });
      await expect(obj.curvatureProducts('nope' as never, new Float64Array(m.size), 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/worker \d: .*curvature/) });
      expect(Number.isFinite(await obj.loss())).toBe(true);
    } finally {
      await obj.dispose();
    }
    await expect(obj.loss()).rejects.toMatchObject({ code: 'DISPOSED' });
    await expect(h.objectiveAsync(m, 'cross_entropy', data('float64', 9), { workers: 2, wrt: 'input' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(h.objectiveAsync(m, 'cross_entropy', data('float64', 9), { workers: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a worker killed mid-call: the call rejects with WORKER_FAILED naming it, every later call too', async () => {
    const m = h.nn.sequential([h.nn.linear(64, 256), h.nn.tanh(), h.nn.linear(256, 256), h.nn.tanh(), h.nn.linear(256, 10)]);
    const r = rng(3);
    const n = 512;
    const d = { x: { data: Float32Array.from(randn(r, n * 64)), shape: [n, 64] }, y: { data: Float32Array.from({ length: n }, (_, i) => i % 10), shape: [n] } };
    const obj = await h.objectiveAsync(m, 'cross_entropy', d, { workers: 2 });
    const k = 32;
    const pending = obj.hvps(new Float32Array(k * m.size).fill(0.01), k); // long enough to be killed during
    await new Promise((res) => setTimeout(res, 5));
    (obj as unknown as { pool: { kill(i: number): void } }).pool.kill(1);
    await expect(pending).rejects.toMatchObject({ code: 'WORKER_FAILED', message: expect.stringMatching(/worker 1 of 2 .*exited/) });
    await expect(obj.loss()).rejects.toMatchObject({ code: 'WORKER_FAILED' });
    await obj.dispose();
  });

  it('100 create/dispose cycles leave no threads behind', async () => {
    const threads = () => Number(/Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const m = model();
    const d = data('float32', 6);
    const warm = await h.objectiveAsync(m, 'cross_entropy', d, { workers: 2 });
    await warm.dispose();
    await new Promise((res) => setTimeout(res, 50));
    const before = threads();
    for (let i = 0; i < 100; i++) {
      const obj = await h.objectiveAsync(m, 'cross_entropy', d, { workers: 2 });
      if (i % 25 === 0) expect(Number.isFinite(await obj.loss())).toBe(true);
      await obj.dispose();
    }
    await new Promise((res) => setTimeout(res, 200));
    expect(threads()).toBeLessThanOrEqual(before);
  }, 120_000);
});
