/**
 * The ONNX import rules (ts/io/onnx/) on small graphs built with onnx-proto, one behaviour each:
 * folding with ONNX integer semantics, every unsupported op reported at once, parameters vs
 * buffers vs constants, shared parameters counted once, several inputs and outputs, a batch
 * baked into a constant, and each op family's rule against a direct JS evaluation of the ONNX
 * formula (forward) and central differences (gradient, H·v) of the imported objective.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { fold } from '../ts/io/onnx/fold.js';
import { attributesOf, konst } from '../ts/io/onnx/decode.js';
import { relError } from './helpers.js';
import { Graph } from '../ts/trace.js';
import { encodeModel, hessian, valueInfo as vi } from './cli-run.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

await h.init();

const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
const int = (name: string, v: number) => ({ name, type: 2, i: v });
const flt = (name: string, v: number) => ({ name, type: 1, f: v });
const str = (name: string, v: string) => ({ name, type: 3, s: new TextEncoder().encode(v) });
const floatT = (name: string, dims: number[], data: ArrayLike<number>) => ({ name, dims, dataType: 1, floatData: Array.from(data) });
const int64T = (name: string, dims: number[], data: number[]) => ({ name, dims, dataType: 7, int64Data: data });
const constNode = (out: string, t: object) => ({ opType: 'Constant', input: [], output: [out], name: out, attribute: [{ name: 'value', type: 4, t }] });
const seq = (n: number, s = 1) => Float64Array.from({ length: n }, (_, i) => Math.sin(s * (i + 1)) * 0.9);

/** The import's value of `model` (the chosen output) on x at the file's parameters, float64. */
function forward(model: h.OnnxModel, x: h.Tensor<'float64'>): Float64Array {
  const g = new Graph('float64');
  try {
    const out = model.build(g.input(x.shape));
    g.raw.setInput(0, x.toArray());
    g.raw.setParams(model.init({ dtype: 'float64' }));
    const [value] = g.raw.run(out.id, -1, undefined, 0, false, undefined, false, 'hessian', 0, 1) as unknown as [Float64Array];
    return Float64Array.from(value);
  } finally {
    g.dispose();
  }
}

describe('folding (ONNX integer semantics)', () => {
  const a = attributesOf({ attribute: [] }, 'test');
  const at = (attrs: object[]) => attributesOf({ attribute: attrs as never }, 'test');
  it('integer Div truncates toward zero; float Div does not', () => {
    expect(Array.from(fold('Div', [konst([2], [-7, 7], 'int'), konst([], [2], 'int')], a, 13, 'n')![0]!.data)).toEqual([-3, 3]);
    expect(Array.from(fold('Div', [konst([1], [-7], 'float'), konst([], [2], 'int')], a, 13, 'n')![0]!.data)).toEqual([-3.5]);
  });
  it('Cast to int truncates, to bool is ≠ 0; comparisons and Where on constants', () => {
    expect(Array.from(fold('Cast', [konst([3], [-2.7, 2.7, 0], 'float')], at([int('to', 7)]), 13, 'n')![0]!.data)).toEqual([-2, 2, 0]);
    expect(Array.from(fold('Cast', [konst([2], [0.5, 0], 'float')], at([int('to', 9)]), 13, 'n')![0]!.data)).toEqual([1, 0]);
    const eq = fold('Equal', [konst([3], [1, 2, 3], 'int'), konst([], [2], 'int')], a, 13, 'n')![0]!;
    expect([eq.elem, ...eq.data]).toEqual(['bool', 0, 1, 0]);
    const w = fold('Where', [eq, konst([], [-Infinity], 'float'), konst([3], [4, 5, 6], 'float')], a, 13, 'n')![0]!;
    expect(Array.from(w.data)).toEqual([4, -Infinity, 6]);
    expect(Array.from(fold('Not', [eq], a, 13, 'n')![0]!.data)).toEqual([1, 0, 1]);
  });
  it('Gather on shapes (negative index), Slice with negative steps and INT64_MAX ends, Concat, Unsqueeze, Range, ConstantOfShape', () => {
    const shape = konst([4], [2, 3, 5, 7], 'int');
    expect(Array.from(fold('Gather', [shape, konst([], [-1], 'int')], a, 13, 'n')![0]!.data)).toEqual([7]);
    const sl = fold('Slice', [shape, konst([1], [-1], 'int'), konst([1], [-9.223372036854776e18], 'int'), konst([1], [0], 'int'), konst([1], [-2], 'int')], a, 13, 'n')![0]!;
    expect(Array.from(sl.data)).toEqual([7, 3]);
    const tail = fold('Slice', [shape, konst([1], [1], 'int'), konst([1], [9.223372036854776e18], 'int')], a, 13, 'n')![0]!;
    expect(Array.from(tail.data)).toEqual([3, 5, 7]);
    expect(fold('Unsqueeze', [konst([], [5], 'int'), konst([1], [0], 'int')], a, 13, 'n')![0]!.shape).toEqual([1]);
    expect(Array.from(fold('Concat', [konst([1], [-1], 'int'), konst([2], [4, 4], 'int')], at([int('axis', 0)]), 13, 'n')![0]!.data)).toEqual([-1, 4, 4]);
    expect(Array.from(fold('Range', [konst([], [5], 'int'), konst([], [0], 'int'), konst([], [-2], 'int')], a, 13, 'n')![0]!.data)).toEqual([5, 3, 1]);
    const cos = fold('ConstantOfShape', [konst([2], [2, 3], 'int')], at([{ name: 'value', type: 4, t: { dims: [1], dataType: 1, floatData: [1.5] } }]), 13, 'n')![0]!;
    expect([cos.shape, cos.data.length, cos.data[5]]).toEqual([[2, 3], 6, 1.5]);
  });
  it('the attention split: Shape → Gather → Add → Div (integer) → Mul → Slice on a traced tensor', async () => {
    // x [2, 9]: q, k, v = thirds of the last axis by ((9 + 2) / 3) * k = 3k (truncating: 11/3 = 3).
    const graph = {
      name: 'g',
      input: [vi('x', [2, 9])],
      output: [vi('y', [2, 3])],
      node: [
        { opType: 'Shape', input: ['x'], output: ['s'], name: 'shape' },
        constNode('m1', int64T('', [1], [-1])),
        { opType: 'Gather', input: ['s', 'm1'], output: ['d'], name: 'gather', attribute: [int('axis', 0)] },
        constNode('two', int64T('', [1], [2])),
        { opType: 'Add', input: ['d', 'two'], output: ['d2'], name: 'add' },
        constNode('three', int64T('', [1], [3])),
        { opType: 'Div', input: ['d2', 'three'], output: ['q'], name: 'div' },
        constNode('one', int64T('', [1], [1])),
        { opType: 'Mul', input: ['q', 'one'], output: ['e1'], name: 'mul1' },
        { opType: 'Mul', input: ['q', 'two'], output: ['e2'], name: 'mul2' },
        { opType: 'Slice', input: ['x', 'e1', 'e2', 'm1'], output: ['y'], name: 'slice' },
      ],
    };
    const model = await h.loadOnnx(await encodeModel(graph));
    const x = h.tensor(seq(18), [2, 9], 'float64');
    expect(Array.from(forward(model, x))).toEqual([...seq(18).slice(3, 6), ...seq(18).slice(12, 15)]);
  });
});

describe('load-time reports', () => {
  it('every unsupported op at once (type, nodes, opset), and hessian info lists them with exit 0', async () => {
    const graph = {
      name: 'g',
      input: [vi('x', [2, 3])],
      output: [vi('y', [2, 3])],
      node: [
        { opType: 'FooOp', input: ['x'], output: ['a'], name: 'foo1' },
        { opType: 'FooOp', input: ['a'], output: ['b'], name: 'foo2' },
        { opType: 'Relu', input: ['b'], output: ['c'], name: 'relu', attribute: [int('bogus', 1)] },
        { opType: 'BarOp', input: ['c'], output: ['y'], name: 'bar' },
      ],
    };
    const bytes = await encodeModel(graph, 15);
    const err = await h.loadOnnx(bytes).catch((e) => e);
    expect(err).toBeInstanceOf(h.HesseError);
    expect(err.code).toBe('UNSUPPORTED_OP');
    expect(err.message).toMatch(/opset 15/);
    expect(err.message).toMatch(/FooOp.*'foo1', 'foo2'/);
    expect(err.message).toMatch(/Relu \(attribute 'bogus' not supported; node 'relu'\)/);
    expect(err.message).toMatch(/BarOp.*'bar'/);
    const m = await h.loadOnnx(bytes, { inspect: true });
    expect(m.unsupported.map((u) => [u.op, u.nodes])).toEqual([['FooOp', ['foo1', 'foo2']], ['Relu', ['relu']], ['BarOp', ['bar']]]);
    const dir = mkdtempSync(join(tmpdir(), 'hesse-rules-'));
    writeFileSync(join(dir, 'm.onnx'), bytes);
    const res = await hessian(['info', join(dir, 'm.onnx'), '--json']);
    expect(res.code, res.stderr).toBe(0);
    const info = JSON.parse(res.stdout);
    expect(info.supported).toBe(false);
    expect(info.unsupported.map((u: { op: string; opset: number }) => `${u.op}@${u.opset}`)).toEqual(['FooOp@15', 'Relu@15', 'BarOp@15']);
    const loss = await hessian(['loss', join(dir, 'm.onnx'), '--x', join(dir, 'none.npy'), '--loss', 'mean-output']);
    expect(loss.code).toBe(2);
  });

  it('BatchNorm running statistics are buffers, Clip bounds from initializers are constants, a tied weight (Identity alias, two uses) is one parameter', async () => {
    const C = 3;
    const graph = {
      name: 'g',
      initializer: [
        floatT('W', [4, C], seq(12)),
        floatT('bn.weight', [C], [1.1, 0.9, 1.3]),
        floatT('bn.bias', [C], [0.1, -0.2, 0.3]),
        floatT('bn.running_mean', [C], [0.05, -0.1, 0.2]),
        floatT('bn.running_var', [C], [0.8, 1.2, 1.5]),
        floatT('lo', [], [-0.5]),
        floatT('hi', [], [0.7]),
      ],
      input: [vi('x', [5, 4])],
      output: [vi('y', [5, C])],
      node: [
        { opType: 'Identity', input: ['W'], output: ['W_alias'], name: 'alias' },
        { opType: 'MatMul', input: ['x', 'W'], output: ['a'], name: 'mm1' },
        { opType: 'MatMul', input: ['x', 'W_alias'], output: ['b'], name: 'mm2' },
        { opType: 'Mul', input: ['a', 'b'], output: ['ab'], name: 'mul' },
        { opType: 'BatchNormalization', input: ['ab', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], output: ['n'], name: 'bn', attribute: [flt('epsilon', 1e-5)] },
        { opType: 'Clip', input: ['n', 'lo', 'hi'], output: ['y'], name: 'clip' },
      ],
    };
    const model = await h.loadOnnx(await encodeModel(graph));
    expect(model.blocks.map((b) => b.name)).toEqual(['W', 'bn.weight', 'bn.bias']);
    expect(model.size).toBe(12 + 2 * C);
    expect(model.constants).toEqual([
      { name: 'bn.running_mean', shape: [C], role: 'buffer' },
      { name: 'bn.running_var', shape: [C], role: 'buffer' },
      { name: 'lo', shape: [], role: 'constant' },
      { name: 'hi', shape: [], role: 'constant' },
    ]);
    expect(model.batchStatistics).toEqual([]);
    // Forward against the ONNX formula, derivatives against central differences.
    const x = h.tensor(seq(20, 0.7), [5, 4], 'float64');
    const W = Math.fround;
    const Wv = Float64Array.from(seq(12), W);
    const want: number[] = [];
    const [s, bb, mu, vr] = [[1.1, 0.9, 1.3], [0.1, -0.2, 0.3], [0.05, -0.1, 0.2], [0.8, 1.2, 1.5]].map((r) => r.map(W));
    const xs = seq(20, 0.7);
    for (let n = 0; n < 5; n++) {
      for (let c = 0; c < C; c++) {
        let a = 0;
        for (let k = 0; k < 4; k++) a += xs[n * 4 + k]! * Wv[k * C + c]!;
        const bn = ((a * a - mu[c]!) / Math.sqrt(vr[c]! + W(1e-5))) * s[c]! + bb[c]!;
        want.push(Math.min(W(0.7), Math.max(W(-0.5), bn)));
      }
    }
    expect(relError(forward(model, x), want)).toBeLessThan(1e-13);
    using obj = h.objective(model, 'mean_output', { x }, { params: model.init({ dtype: 'float64' }) });
    expect(h.gradCheck(obj).relError).toBeLessThan(1e-6);
    expect(h.hvpCheck(obj).relError).toBeLessThan(1e-5);
  });

  it('several inputs (the others given as constants) and outputs (output picks one; only its path is built, so the GGN works)', async () => {
    const graph = {
      name: 'g',
      initializer: [floatT('W', [3, 2], seq(6)), floatT('V', [3, 2], seq(6, 2))],
      input: [vi('x', [4, 3]), vi('mask', [4, 2])],
      output: [vi('y1', [4, 2]), vi('y2', [4, 2])],
      node: [
        { opType: 'MatMul', input: ['x', 'W'], output: ['a'], name: 'mm1' },
        { opType: 'Mul', input: ['a', 'mask'], output: ['y1'], name: 'mask1' },
        { opType: 'MatMul', input: ['x', 'V'], output: ['b'], name: 'mm2' },
        { opType: 'Tanh', input: ['b'], output: ['y2'], name: 'tanh' },
      ],
    };
    const bytes = await encodeModel(graph);
    const missing = await h.loadOnnx(bytes).catch((e) => e);
    expect(missing.code).toBe('INVALID_ARGUMENT');
    expect(missing.message).toMatch(/'mask'.*inputs: \{ mask/);
    const mask = h.tensor(Float64Array.from({ length: 8 }, (_, i) => i % 3 === 0 ? 0 : 1), [4, 2], 'float64');
    const x = h.tensor(seq(12), [4, 3], 'float64');
    const y = h.tensor(seq(8, 3), [4, 2], 'float64');
    for (const [output, param] of [['y1', 'W'], ['y2', 'V']] as const) {
      const model = await h.loadOnnx(bytes, { inputs: { mask }, output });
      expect(model.output.name).toBe(output);
      // The parameters are those on the chosen output's path.
      expect(model.blocks.map((b) => b.name)).toEqual([param]);
      using obj = h.objective(model, 'mse', { x, y }, { params: model.init({ dtype: 'float64' }) });
      const v = seq(6, 5);
      // The GGN is defined (only the output's path is built), PSD.
      const g1 = obj.ggnvp(v);
      expect(g1.reduce((s, a, i) => s + a * v[i]!, 0)).toBeGreaterThan(0);
      expect(h.gradCheck(obj).relError).toBeLessThan(1e-6);
    }
    const bad = await h.loadOnnx(bytes, { inputs: { mask }, output: 'nope' }).catch((e) => e);
    expect(bad.message).toMatch(/'nope' is not an output.*y1, y2/);
  });

  it('a batch baked into a constant: another batch size is a clear error, the exported one works', async () => {
    const graph = {
      name: 'g',
      initializer: [floatT('W', [6, 2], seq(12))],
      input: [vi('x', [2, 3, 2])],
      output: [vi('y', [2, 2])],
      node: [
        constNode('shape', int64T('', [2], [2, 6])),
        { opType: 'Reshape', input: ['x', 'shape'], output: ['f'], name: 'flatten_by_reshape' },
        { opType: 'MatMul', input: ['f', 'W'], output: ['y'], name: 'mm' },
      ],
    };
    const model = await h.loadOnnx(await encodeModel(graph));
    expect(forward(model, h.tensor(seq(12), [2, 3, 2], 'float64')).length).toBe(4);
    const err = (() => {
      try {
        forward(model, h.tensor(seq(18), [3, 3, 2], 'float64'));
      } catch (e) {
        return e as h.HesseError;
      }
    })();
    expect(err?.code).toBe('SHAPE_MISMATCH');
    expect(err?.message).toMatch(/exported for a batch of 2.*batch of 3.*bakes the batch size into a constant.*dynamic_axes/);
    // [-1, 6] follows the batch: any batch size works.
    const dyn = await h.loadOnnx(await encodeModel({ ...graph, node: [constNode('shape', int64T('', [2], [-1, 6])), ...graph.node.slice(1)] }));
    expect(forward(dyn, h.tensor(seq(18), [3, 3, 2], 'float64')).length).toBe(6);
  });
});
