// Models whose input is integer (token ids): x is an index input of the program, staged as exact
// integers whatever the objective's dtype. References: the same objective over the same ids given
// in another exact form (Int32Array, BigInt64Array, float64 numbers), the single-batch objective for
// batched runs, and the committed PyTorch fixture's loss (test/fixtures/models/transformer_tokens).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { encodeModel, hessian, valueInfo } from './cli-run.js';
import { expectClose, randn, rng } from './helpers.js';

const dir = join(__dirname, 'fixtures/models/transformer_tokens');
const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
const ids = h.npy.parseNpy(readFileSync(join(dir, 'x.npy'))) as { data: BigInt64Array; shape: number[] };
const labels = h.npy.parseNpy(readFileSync(join(dir, 'y.npy')));
const y64 = { data: Float64Array.from(labels.data as ArrayLike<number | bigint>, Number), shape: labels.shape };

async function model(): Promise<h.OnnxModel> {
  return h.loadOnnx(readFileSync(join(dir, 'op17.onnx')));
}

describe('integer model inputs (token ids)', () => {
  beforeAll(() => h.init());
  it('the importer reports the input as an index input', async () => {
    const m = await model();
    expect(m.input.elem).toBe('int');
    expect(m.inputKind).toBe('index');
  });

  it('ids as BigInt64Array, Int32Array or float64 numbers give one objective, which matches PyTorch', async () => {
    const m = await model();
    const params = m.init({ dtype: 'float64' });
    const forms = [
      { data: ids.data, shape: ids.shape },
      { data: Int32Array.from(ids.data, Number), shape: ids.shape },
      { data: Float64Array.from(ids.data, Number), shape: ids.shape },
    ];
    const grads = forms.map((x) => {
      using obj = h.objective(m, 'cross_entropy', { x, y: y64 }, { params });
      expect(obj.dtype).toBe('float64');
      const loss = obj.loss();
      expect(Math.abs(loss - ref.refs.eval.loss_value) / Math.abs(ref.refs.eval.loss_value)).toBeLessThan(1e-9);
      return obj.grad();
    });
    expectClose(grads[1]!, grads[0]!, 0, 0);
    expectClose(grads[2]!, grads[0]!, 0, 0);
  });

  it('a batch-agnostic embedding model: batched over the ids (B not dividing N) equals the single batch; the fixture bakes its batch and says so', async () => {
    // Gather(E [V, d], ids [N, T]) → mean over T → Gemm: nothing depends on N.
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
    using whole = h.objective(m, 'cross_entropy', { x, y });
    using batched = h.objective(m, 'cross_entropy', { x, y }, { batchSize: 3 });
    expect(Math.abs(batched.loss() - whole.loss())).toBeLessThan(1e-12);
    expectClose(batched.grad(), whole.grad(), 1e-10, 1e-13);
    const v = Float64Array.from({ length: m.size }, (_, i) => Math.sin(i));
    expectClose(batched.hvp(v), whole.hvp(v), 1e-10, 1e-13);
    expectClose(batched.ggnvp(v), whole.ggnvp(v), 1e-10, 1e-13);
    // Only the gathered rows of E get a gradient: rows never looked up are exactly 0.
    const used = new Set(Array.from(x.data, Number));
    const gE = whole.grad().subarray(0, V * d);
    for (let row = 0; row < V; row++) if (!used.has(row)) expect(Array.from(gE.subarray(row * d, (row + 1) * d))).toEqual([0, 0, 0, 0]);
    // The fixture's attention reshape bakes N = 2: another batch size is refused, saying so.
    const fx = await model();
    expect(() => h.objective(fx, 'cross_entropy', { x: { data: ids.data, shape: ids.shape }, y: y64 }, { batchSize: 1 })).toThrowError(/bakes the batch size/);
  });

  it('bad ids: a non-integer, a float32 id past 2^24, an out-of-range token, wrt input, integers for a float model', async () => {
    const m = await model();
    const bad = (data: Float32Array | Float64Array) => () => h.objective(m, 'cross_entropy', { x: { data, shape: ids.shape }, y: y64 });
    const f = Float64Array.from(ids.data, Number);
    f[3] = 2.5;
    expect(bad(f)).toThrowError(/integer \(indices such as token ids\).*2\.5 at index 3 is not an integer/);
    const g = Float32Array.from(ids.data, Number);
    g[1] = 2 ** 25;
    const y32 = { data: Float32Array.from(y64.data), shape: y64.shape };
    expect(() => h.objective(m, 'cross_entropy', { x: { data: g, shape: ids.shape }, y: y32 })).toThrowError(/not an index exact in float32/);
    const big = Float64Array.from(ids.data, Number);
    big[0] = 1e6;
    try {
      using obj = h.objective(m, 'cross_entropy', { x: { data: big, shape: ids.shape }, y: y64 });
      obj.loss();
      expect.unreachable('an id past the vocabulary must be refused');
    } catch (e) {
      expect(e).toBeInstanceOf(h.HesseError);
      expect((e as h.HesseError).message).toMatch(/1000000/);
    }
    expect(() => h.objective(m, 'cross_entropy', { x: { data: ids.data, shape: ids.shape }, y: y64 }, { wrt: 'input' })).toThrowError(/integer .*no derivative/);
    // The instance keeps working after the errors.
    using ok = h.objective(m, 'cross_entropy', { x: { data: ids.data, shape: ids.shape }, y: y64 });
    expect(Number.isFinite(ok.loss())).toBe(true);
    const mlp = h.nn.sequential([h.nn.linear(6, 2)]);
    expect(() => h.objective(mlp, 'cross_entropy', { x: { data: Int32Array.from(ids.data, Number), shape: ids.shape }, y: y64 })).toThrowError(/integer data \(Int32Array\) for a model whose input is float/);
  });

  it('the CLI: int64 ids as --x, exact; --class-axis picks the class axis, a wrong one exits 2 with one line', async () => {
    const [m, x, y] = ['op17.onnx', 'x.npy', 'y.npy'].map((f) => join(dir, f));
    const base = ['loss', m, '--x', x, '--y', y, '--loss', 'ce', '--json', '--f64'];
    const def = await hessian(base);
    expect(def.code, def.stderr).toBe(0);
    expect(Math.abs(JSON.parse(def.stdout).loss - ref.refs.eval.loss_value)).toBeLessThan(1e-9);
    const last = await hessian([...base, '--class-axis', '-1']);
    expect(JSON.parse(last.stdout).loss).toBe(JSON.parse(def.stdout).loss);
    const wrong = await hessian([...base, '--class-axis', '1']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^hessian: cross_entropy: with the class axis 1, logits \[2, 6, 11\] need labels[^\n]*\n$/);
    const wrt = await hessian(['grad', m, '--x', x, '--y', y, '--loss', 'ce', '--wrt', 'input']);
    expect(wrt.code).toBe(2);
    expect(wrt.stderr).toMatch(/integer \(indices such as token ids\)/);
  });
});
