// Buffers named by the user (`loadOnnx(bytes, { buffers })`, `--buffer NAME`): a float initializer
// PyTorch registered as a buffer (a positional table) is a constant, so P and the gradient are
// those of named_parameters. Reference: the same model with the buffer counted as a parameter,
// whose gradient restricted to the real parameters must be the same numbers.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { encodeModel, hessian, valueInfo } from './cli-run.js';
import { expectClose, randn, rng } from './helpers.js';

const [N, D, C] = [5, 4, 3];
const r = rng(11);
const init = (name: string, dims: number[]) => ({ name, dims, dataType: 11, doubleData: randn(r, dims.reduce((a, b) => a * b, 1)) });
// f = (x + pe) · Wᵀ + b, pe [1, D] a buffer (the positional table of a one-position model).
const graph = {
  name: 'pe',
  node: [
    { opType: 'Add', input: ['x', 'pe'], output: ['h'] },
    { opType: 'Gemm', input: ['h', 'W', 'b'], output: ['f'], attribute: [{ name: 'transB', i: 1, type: 2 }] },
  ],
  initializer: [init('pe', [1, D]), init('W', [C, D]), init('b', [C])],
  input: [valueInfo('x', [N, D])],
  output: [valueInfo('f', [N, C])],
};
const x = { data: Float64Array.from(randn(r, N * D)), shape: [N, D] };
const y = { data: Float64Array.from({ length: N }, (_, i) => i % C), shape: [N] };

describe('ONNX buffers named by the user', () => {
  let bytes: Uint8Array;
  beforeAll(async () => {
    await h.init();
    bytes = await encodeModel(graph);
  });

  it('a named buffer is a constant: P leaves it out, and the gradient is the parameters’ part of the all-parameter one', async () => {
    const all = await h.loadOnnx(bytes);
    const some = await h.loadOnnx(bytes, { buffers: ['pe'] });
    expect(all.size).toBe(D + C * D + C);
    expect(some.size).toBe(C * D + C);
    expect(some.blocks.map((b) => b.name)).toEqual(['W', 'b']);
    expect(some.constants).toContainEqual({ name: 'pe', shape: [1, D], role: 'buffer' });
    using full = h.objective(all, 'ce', { x, y }, { params: all.init({ dtype: 'float64' }) });
    using part = h.objective(some, 'ce', { x, y }, { params: some.init({ dtype: 'float64' }) });
    expect(part.loss()).toBe(full.loss());
    expectClose(part.grad(), full.grad().subarray(D), 1e-15, 1e-15);
  });

  it('a name that is not a float initializer is INVALID_ARGUMENT listing them; the CLI takes --buffer', async () => {
    await expect(h.loadOnnx(bytes, { buffers: ['nope'] })).rejects.toThrowError(/buffers: 'nope' is not a float initializer of the graph \(they are: pe, W, b\)/);
    const dir = mkdtempSync(join(tmpdir(), 'hesse-buffers-'));
    const m = join(dir, 'pe.onnx');
    writeFileSync(m, bytes);
    const npy = (name: string, a: { data: Float64Array; shape: number[] }, dtype: 'float64' | 'int64') => {
      const f = join(dir, name);
      writeFileSync(f, h.npy.writeNpy(dtype === 'int64' ? { dtype, shape: a.shape, data: BigInt64Array.from(a.data, (v) => BigInt(v)) } : { dtype, shape: a.shape, data: a.data }));
      return f;
    };
    const args = ['grad', m, '--x', npy('x.npy', x, 'float64'), '--y', npy('y.npy', y, 'int64'), '--loss', 'ce', '--json', '--f64'];
    const ok = await hessian([...args, '--buffer', 'pe']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).params).toBe(C * D + C);
    const bad = await hessian([...args, '--buffer', 'nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^hessian: [^\n]*'nope' is not a float initializer[^\n]*\n$/);
  });
});
