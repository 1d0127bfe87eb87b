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
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

await h.init();

const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
const int = (name: string, v: number) => ({ name, type: 2, i: v });
const flt = (name: string, v: number) => ({ name, type: 1, f: v });
const str = (name: string, v: string) => ({ name, type: 3, s: new TextEncoder().encode(v) });
const floatT = (name: string, dims: number[], data: ArrayLike<number>) => ({ name, dims, dataType: 1, floatData: Array.from(data) });
/** An int64 tensor; INT64_MAX/MIN as strings (a JS number beyond 2⁶³ would wrap in the encoder). */
const int64T = (name: string, dims: number[], data: (number | string)[]) => ({ name, dims, dataType: 7, int64Data: data });
const constNode = (out: string, t: object) => ({ opType: 'Constant', input: [], output: [out], name: out, attribute: [{ name: 'value', type: 4, t }] });
const seq = (n: number, s = 1) => Float64Array.from({ length: n }, (_, i) => Math.sin(s * (i + 1)) * 0.9);

/** The import's value of `model` (the chosen output) on x at the file's parameters, float64. */
function forward(model: h.OnnxModel, x: h.Tensor<'float64'>): Float64Array {
  const g = new Graph('float64');
  try {
    const out = model.build(g.input(x.shape));
    g.raw.setInput(0, x.toArray());
    g.raw.setParams(model.init({ dtype: 'float64' }));
    const value = g.raw.value(out.id, false).value as Float64Array;
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

  it('BatchNorm running statistics are buffers, Clip bounds from initializers are constants, an Identity of an initializer (the exporter\'s by-value merge of equal parameters) is a parameter of its own', async () => {
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
    // torch.onnx.export writes a parameter equal in value to an earlier one as Identity(earlier):
    // two PyTorch parameters, so two blocks (a truly tied weight is one initializer, read twice).
    expect(model.blocks.map((b) => b.name)).toEqual(['W', 'W_alias', 'bn.weight', 'bn.bias']);
    expect(model.size).toBe(2 * 12 + 2 * C);
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

/** x [N, C, H, W] as nested index access. */
const at4 = (d: ArrayLike<number>, s: number[]) => (n: number, c: number, i: number, j: number) => d[((n * s[1]! + c) * s[2]! + i) * s[3]! + j]!;

/** One node `op` on x (and initializers), checked against `want` (forward) and central differences. */
async function checkOp(opts: { node: object; pre?: object[]; inits?: object[]; x: Float64Array; xShape: number[]; yShape: number[]; want: ArrayLike<number>; opset?: number; params?: number }) {
  const graph = {
    name: 'g',
    initializer: opts.inits ?? [],
    input: [vi('x', opts.xShape)],
    output: [vi('y', opts.yShape)],
    node: [...(opts.pre ?? []), opts.node],
  };
  const model = await h.loadOnnx(await encodeModel(graph, opts.opset ?? 13));
  if (opts.params !== undefined) expect(model.size).toBe(opts.params);
  const x = h.tensor(opts.x, opts.xShape, 'float64');
  const got = forward(model, x);
  expect(got.length).toBe(opts.want.length);
  expect(relError(got, opts.want)).toBeLessThan(1e-13);
  // A smooth scalar of the output (so the HVP is not trivially 0 for piecewise-linear ops).
  const sq = { ...graph, output: [vi('z', opts.yShape)], node: [...graph.node, { opType: 'Mul', input: ['y', 'y'], output: ['y2'], name: 'sq' }, { opType: 'Tanh', input: ['y2'], output: ['z'], name: 'tanh' }] };
  const m2 = await h.loadOnnx(await encodeModel(sq, opts.opset ?? 13));
  for (const wrt of m2.size > 0 ? (['params', 'input'] as const) : (['input'] as const)) {
    using obj = h.objective(m2, 'mean_output', { x }, { params: m2.init({ dtype: 'float64' }), wrt });
    expect(h.gradCheck(obj).relError, `${wrt} gradient`).toBeLessThan(1e-6);
    expect(h.hvpCheck(obj).relError, `${wrt} H·v`).toBeLessThan(1e-5);
  }
}

describe('op families against the ONNX formulas (forward) and central differences (derivatives)', () => {
  it('conv: grouped (group 2, 2 output channels per group), strided, padded, with bias', async () => {
    const [N, C, H, W, O, K] = [2, 4, 5, 5, 4, 3];
    const xs = seq(N * C * H * W, 0.37);
    const ws = seq(O * 2 * K * K, 0.61);
    const b = [0.1, -0.2, 0.3, 0.05];
    const X = at4(xs, [N, C, H, W]);
    const Wt = at4(ws.map(Math.fround), [O, 2, K, K]);
    const [OH, OW] = [3, 3]; // (5 + 2 − 3)/2 + 1
    const want: number[] = [];
    for (let n = 0; n < N; n++)
      for (let o = 0; o < O; o++)
        for (let i = 0; i < OH; i++)
          for (let j = 0; j < OW; j++) {
            let s = Math.fround(b[o]!);
            const g = Math.floor(o / 2);
            for (let c = 0; c < 2; c++)
              for (let p = 0; p < K; p++)
                for (let q = 0; q < K; q++) {
                  const [r, t] = [i * 2 - 1 + p, j * 2 - 1 + q];
                  if (r >= 0 && r < H && t >= 0 && t < W) s += X(n, g * 2 + c, r, t) * Wt(o, c, p, q);
                }
            want.push(s);
          }
    await checkOp({
      node: { opType: 'Conv', input: ['x', 'w', 'b'], output: ['y'], name: 'conv', attribute: [int('group', 2), ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2]), ints('kernel_shape', [K, K])] },
      inits: [floatT('w', [O, 2, K, K], ws), floatT('b', [O], b)],
      x: xs, xShape: [N, C, H, W], yShape: [N, O, OH, OW], want, params: O * 2 * K * K + O,
    });
  });

  it('conv: depthwise (group = C), dilated, strided, auto_pad SAME_UPPER (asymmetric pads)', async () => {
    const [C, H, W, KH, KW] = [3, 6, 5, 3, 2];
    const xs = seq(C * H * W, 0.29);
    const ws = seq(C * KH * KW, 0.53);
    const X = at4(xs, [1, C, H, W]);
    const Wt = at4(ws.map(Math.fround), [C, 1, KH, KW]);
    // SAME_UPPER with stride [2, 1], dilation [2, 1]: OH = ⌈6/2⌉ = 3, OW = 5; total pads
    // (3 − 1)·2 + 2·(3 − 1) + 1 − 6 = 3 rows (1 top, 2 bottom) and 4 + 1·(2 − 1) + 1 − 5 = 1 column (0 left, 1 right).
    const [OH, OW] = [3, 5];
    const want: number[] = [];
    for (let o = 0; o < C; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let s = 0;
          for (let p = 0; p < KH; p++)
            for (let q = 0; q < KW; q++) {
              const [r, t] = [i * 2 + p * 2 - 1, j + q];
              if (r >= 0 && r < H && t >= 0 && t < W) s += X(0, o, r, t) * Wt(o, 0, p, q);
            }
          want.push(s);
        }
    await checkOp({
      node: { opType: 'Conv', input: ['x', 'w'], output: ['y'], name: 'dw', attribute: [int('group', C), ints('dilations', [2, 1]), ints('strides', [2, 1]), str('auto_pad', 'SAME_UPPER')] },
      inits: [floatT('w', [C, 1, KH, KW], ws)],
      x: xs, xShape: [1, C, H, W], yShape: [1, C, OH, OW], want, params: C * KH * KW,
    });
  });

  it('pool: AveragePool with pads, count_include_pad 0 and 1; MaxPool with overlapping windows; GlobalAveragePool', async () => {
    const [N, C, H, W] = [1, 2, 4, 5];
    const xs = seq(N * C * H * W, 0.83);
    const X = at4(xs, [N, C, H, W]);
    for (const include of [0, 1]) {
      const want: number[] = [];
      for (let c = 0; c < C; c++)
        for (let i = 0; i < 3; i++) // (4 + 2 − 3)/1 + 1 = 4? stride 2: (4+2-3)/2+1 = 2
          for (let j = 0; j < 3; j++) {
            if (i >= 2) continue;
            let [s, cnt] = [0, 0];
            for (let p = 0; p < 3; p++)
              for (let q = 0; q < 3; q++) {
                const [r, t] = [i * 2 - 1 + p, j * 2 - 1 + q];
                if (r >= 0 && r < H && t >= 0 && t < W) (s += X(0, c, r, t)), cnt++;
              }
            want.push(s / (include ? 9 : cnt));
          }
      await checkOp({
        node: { opType: 'AveragePool', input: ['x'], output: ['y'], name: 'avg', attribute: [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', include)] },
        x: xs, xShape: [N, C, H, W], yShape: [N, C, 2, 3], want,
      });
    }
    const mx: number[] = [];
    for (let c = 0; c < C; c++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 4; j++) mx.push(Math.max(X(0, c, i, j), X(0, c, i + 1, j), X(0, c, i, j + 1), X(0, c, i + 1, j + 1)));
    await checkOp({ node: { opType: 'MaxPool', input: ['x'], output: ['y'], name: 'max', attribute: [ints('kernel_shape', [2, 2])] }, x: xs, xShape: [N, C, H, W], yShape: [N, C, 3, 4], want: mx });
    const gap = [0, 1].map((c) => Array.from({ length: H * W }, (_, k) => xs[c * H * W + k]!).reduce((s, v) => s + v, 0) / (H * W));
    await checkOp({ node: { opType: 'GlobalAveragePool', input: ['x'], output: ['y'], name: 'gap' }, x: xs, xShape: [N, C, H, W], yShape: [N, C, 1, 1], want: gap });
  });

  it('pool and conv with pads: MaxPool 3×3 stride 2 pads 1 (ResNet\'s stem), Conv with asymmetric pads', async () => {
    const [N, C, H, W] = [1, 2, 5, 6];
    const xs = seq(N * C * H * W, 0.71);
    const X = at4(xs, [N, C, H, W]);
    const mx: number[] = [];
    for (let c = 0; c < C; c++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 3; j++) {
          let m = -Infinity;
          for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
            const [r, t] = [i * 2 - 1 + p, j * 2 - 1 + q];
            if (r >= 0 && r < H && t >= 0 && t < W) m = Math.max(m, X(0, c, r, t));
          }
          mx.push(m);
        }
    await checkOp({ node: { opType: 'MaxPool', input: ['x'], output: ['y'], name: 'max', attribute: [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])] }, x: xs, xShape: [N, C, H, W], yShape: [N, C, 3, 3], want: mx });
    // pads [top 0, left 1, bottom 1, right 0], kernel 2×2, one output channel.
    const ws = seq(C * 4, 0.29).map(Math.fround);
    const cv: number[] = [];
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        let s = 0;
        for (let c = 0; c < C; c++) for (let p = 0; p < 2; p++) for (let q = 0; q < 2; q++) {
          const [r, t] = [i + p, j - 1 + q];
          if (r >= 0 && r < H && t >= 0 && t < W) s += X(0, c, r, t) * ws[(c * 2 + p) * 2 + q]!;
        }
        cv.push(s);
      }
    await checkOp({ node: { opType: 'Conv', input: ['x', 'w'], output: ['y'], name: 'conv', attribute: [ints('pads', [0, 1, 1, 0])] }, inits: [floatT('w', [1, C, 2, 2], ws)], x: xs, xShape: [N, C, H, W], yShape: [N, 1, H, W], want: cv });
  });

  it('elementwise extras: PRelu (per-channel slope, a parameter), Abs, Max of two tensors, Tile', async () => {
    const xs = seq(12, 1.3); // [2, 3, 2]
    const sl = [0.1, -0.3, 0.25];
    await checkOp({ node: { opType: 'PRelu', input: ['x', 's'], output: ['y'], name: 'prelu' }, inits: [floatT('s', [3], sl)], x: xs, xShape: [2, 3, 2], yShape: [2, 3, 2], want: xs.map((v, i) => (v > 0 ? v : Math.fround(sl[Math.floor(i / 2) % 3]!) * v)), params: 3 });
    await checkOp({ node: { opType: 'Abs', input: ['x'], output: ['y'], name: 'abs' }, x: xs, xShape: [2, 3, 2], yShape: [2, 3, 2], want: xs.map(Math.abs) });
    await checkOp({ pre: [{ opType: 'Tanh', input: ['x'], output: ['t'], name: 't' }], node: { opType: 'Max', input: ['x', 't'], output: ['y'], name: 'max' }, x: xs, xShape: [2, 3, 2], yShape: [2, 3, 2], want: xs.map((v) => Math.max(v, Math.tanh(v))) });
    const tl: number[] = [];
    for (let a = 0; a < 2; a++) for (let r = 0; r < 2; r++) for (let b = 0; b < 3; b++) for (let c = 0; c < 2; c++) tl.push(xs[(a * 3 + b) * 2 + c]!);
    await checkOp({ pre: [constNode('r', int64T('', [3], [1, 2, 1]))], node: { opType: 'Tile', input: ['x', 'r'], output: ['y'], name: 'tile' }, x: xs, xShape: [2, 3, 2], yShape: [2, 6, 2], want: tl });
  });

  it('shape: Slice with steps (positive and negative) on a traced tensor, Gather with 2-D constant indices, Pad with a value, Expand', async () => {
    const xs = seq(24, 0.5); // [2, 3, 4]
    const X = (a: number, b: number, c: number) => xs[(a * 3 + b) * 4 + c]!;
    const sl: number[] = [];
    for (let a = 0; a < 2; a++) for (const b of [2, 0]) for (const c of [0, 2]) sl.push(X(a, b, c));
    await checkOp({
      pre: [constNode('st', int64T('', [2], [-1, 0])), constNode('en', int64T('', [2], ['-9223372036854775808', '9223372036854775807'])), constNode('ax', int64T('', [2], [1, 2])), constNode('sp', int64T('', [2], [-2, 2]))],
      node: { opType: 'Slice', input: ['x', 'st', 'en', 'ax', 'sp'], output: ['y'], name: 'slice' },
      x: xs, xShape: [2, 3, 4], yShape: [2, 2, 2], want: sl,
    });
    const idx = [[3, -1], [0, 1]];
    const ga: number[] = [];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (const r of idx) for (const i of r) ga.push(X(a, b, (i + 4) % 4));
    await checkOp({ pre: [constNode('i', int64T('', [2, 2], idx.flat()))], node: { opType: 'Gather', input: ['x', 'i'], output: ['y'], name: 'gather', attribute: [int('axis', 2)] }, x: xs, xShape: [2, 3, 4], yShape: [2, 3, 2, 2], want: ga });
    const pd: number[] = [];
    for (let a = 0; a < 2; a++) for (let b = -1; b < 3; b++) for (let c = 0; c < 6; c++) pd.push(b < 0 || c >= 4 ? 0.5 : X(a, b, c));
    await checkOp({
      pre: [constNode('p', int64T('', [6], [0, 1, 0, 0, 0, 2])), constNode('v', floatT('', [], [0.5]))],
      node: { opType: 'Pad', input: ['x', 'p', 'v'], output: ['y'], name: 'pad' },
      x: xs, xShape: [2, 3, 4], yShape: [2, 4, 6], want: pd,
    });
    const ex: number[] = [];
    for (let r = 0; r < 2; r++) for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let c = 0; c < 4; c++) ex.push(X(a, b, c));
    await checkOp({ pre: [constNode('s', int64T('', [4], [2, 1, 1, 4]))], node: { opType: 'Expand', input: ['x', 's'], output: ['y'], name: 'expand' }, x: xs, xShape: [2, 3, 4], yShape: [2, 2, 3, 4], want: ex });
  });

  it('elementwise and reduce: Where with a −∞ constant branch then Softmax on axis 1, ReduceMax and ReduceSum (axes input) over two axes, HardSwish, Clip', async () => {
    const xs = seq(12, 0.9); // [2, 3, 2]
    const mask = [1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1];
    const m = xs.map((v, i) => (mask[i] ? v : -Infinity));
    const sm: number[] = new Array(12);
    for (let a = 0; a < 2; a++)
      for (let c = 0; c < 2; c++) {
        const ids = [0, 1, 2].map((b) => (a * 3 + b) * 2 + c);
        const z = ids.reduce((s, i) => s + Math.exp(m[i]!), 0);
        for (const i of ids) sm[i] = Math.exp(m[i]!) / z;
      }
    await checkOp({
      pre: [constNode('mask', { dims: [2, 3, 2], dataType: 9, int32Data: mask }), constNode('ninf', floatT('', [], [-Infinity])), { opType: 'Where', input: ['mask', 'x', 'ninf'], output: ['w'], name: 'where' }],
      node: { opType: 'Softmax', input: ['w'], output: ['y'], name: 'softmax', attribute: [int('axis', 1)] },
      x: xs, xShape: [2, 3, 2], yShape: [2, 3, 2], want: sm,
    });
    const rmax = [0, 1].map((b) => Math.max(...[0, 1].flatMap((a) => [0, 1].map((c) => xs[(a * 3 + b) * 2 + c]!))));
    // x[:, 0:2, :], then the max over axes 0 and 2.
    const cut = [constNode('s0', int64T('', [1], [0])), constNode('e2', int64T('', [1], [2])), constNode('a1', int64T('', [1], [1])), { opType: 'Slice', input: ['x', 's0', 'e2', 'a1'], output: ['xs'], name: 'cut' }];
    await checkOp({ pre: cut,
      node: { opType: 'ReduceMax', input: ['xs'], output: ['y'], name: 'rmax', attribute: [ints('axes', [0, 2]), int('keepdims', 0)] }, x: xs, xShape: [2, 3, 2], yShape: [2], want: rmax });
    const rsum = [0, 1, 2].map((b) => [0, 1].flatMap((a) => [0, 1].map((c) => xs[(a * 3 + b) * 2 + c]!)).reduce((s, v) => s + v, 0));
    await checkOp({ pre: [constNode('ax', int64T('', [2], [0, -1]))], node: { opType: 'ReduceSum', input: ['x', 'ax'], output: ['y'], name: 'rsum', attribute: [int('keepdims', 1)] }, x: xs, xShape: [2, 3, 2], yShape: [1, 3, 1], want: rsum });
    const a6 = Math.fround(1 / 6);
    await checkOp({ node: { opType: 'HardSwish', input: ['x'], output: ['y'], name: 'hs' }, x: xs.map((v) => 4 * v), xShape: [2, 3, 2], yShape: [2, 3, 2], want: xs.map((v) => 4 * v * Math.max(0, Math.min(1, a6 * 4 * v + 0.5))), opset: 17 });
    await checkOp({ pre: [constNode('lo', floatT('', [], [-0.4])), constNode('hi', floatT('', [], [0.3]))], node: { opType: 'Clip', input: ['x', 'lo', 'hi'], output: ['y'], name: 'clip' }, x: xs, xShape: [2, 3, 2], yShape: [2, 3, 2], want: xs.map((v) => Math.max(Math.fround(-0.4), Math.min(Math.fround(0.3), v))) });
  });

  it('linalg: batched MatMul with broadcast batch dims ([2, 1, 3, 4] · [3, 4, 2])', async () => {
    const xs = seq(24, 0.3);
    const ws = seq(24, 0.7);
    const want: number[] = [];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += xs[(a * 3 + i) * 4 + k]! * Math.fround(ws[(b * 4 + k) * 2 + j]!);
      want.push(s);
    }
    await checkOp({ node: { opType: 'MatMul', input: ['x', 'w'], output: ['y'], name: 'bmm' }, inits: [floatT('w', [3, 4, 2], ws)], x: xs, xShape: [2, 1, 3, 4], yShape: [2, 3, 3, 2], want, params: 24 });
  });

  it('recurrent: GRU with linear_before_reset 0, bidirectional, against the ONNX equations', async () => {
    const [T, N, I, H] = [3, 2, 2, 2];
    const xs = seq(T * N * I, 0.45);
    const Wv = seq(2 * 3 * H * I, 0.31).map(Math.fround);
    const Rv = seq(2 * 3 * H * H, 0.77).map(Math.fround);
    const Bv = seq(2 * 6 * H, 0.19).map(Math.fround);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const Y = new Array<number>(T * 2 * N * H).fill(0);
    for (let d = 0; d < 2; d++) {
      let h = Array.from({ length: N }, () => new Array<number>(H).fill(0));
      const w = (g: number, r: number, c: number) => Wv[((d * 3 + g) * H + r) * I + c]!;
      const rr = (g: number, r: number, c: number) => Rv[((d * 3 + g) * H + r) * H + c]!;
      const wb = (g: number, r: number) => Bv[d * 6 * H + g * H + r]!;
      const rb = (g: number, r: number) => Bv[d * 6 * H + (3 + g) * H + r]!;
      for (let s = 0; s < T; s++) {
        const t = d === 0 ? s : T - 1 - s;
        h = h.map((hn, n) => {
          const x = (c: number) => xs[(t * N + n) * I + c]!;
          const lin = (g: number, r: number, hv: number[]) => {
            let v = wb(g, r) + rb(g, r);
            for (let c = 0; c < I; c++) v += x(c) * w(g, r, c);
            for (let c = 0; c < H; c++) v += hv[c]! * rr(g, r, c);
            return v;
          };
          const z = hn.map((_, r) => sig(lin(0, r, hn)));
          const rg = hn.map((_, r) => sig(lin(1, r, hn)));
          const rh = hn.map((v, c) => rg[c]! * v);
          const ht = hn.map((_, r) => Math.tanh(lin(2, r, rh)));
          return hn.map((v, r) => (1 - z[r]!) * ht[r]! + z[r]! * v);
        });
        for (let n = 0; n < N; n++) for (let r = 0; r < H; r++) Y[((t * 2 + d) * N + n) * H + r] = h[n]![r]!;
      }
    }
    await checkOp({
      node: { opType: 'GRU', input: ['x', 'W', 'R', 'B'], output: ['y'], name: 'gru', attribute: [int('hidden_size', H), str('direction', 'bidirectional'), int('linear_before_reset', 0)] },
      inits: [floatT('W', [2, 3 * H, I], Wv), floatT('R', [2, 3 * H, H], Rv), floatT('B', [2, 6 * H], Bv)],
      x: xs, xShape: [T, N, I], yShape: [T, 2, N, H], want: Y, params: Wv.length + Rv.length + Bv.length,
    });
  });
});

describe('CLI: the model input and output', () => {
  const fx = new URL('./fixtures/models/', import.meta.url).pathname;
  const tokens = (f: string) => join(fx, 'transformer_tokens', f);
  it('--wrt input on an integer input (token ids) is exit 2 saying the input is integer', async () => {
    const res = await hessian(['grad', tokens('op17.onnx'), '--x', tokens('x.npy'), '--y', tokens('y.npy'), '--loss', 'ce', '--wrt', 'input']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--wrt input: the model input 'x' is integer .*drop --wrt input/);
  });
  it('--input NAME=FILE gives another graph input its value', async () => {
    const graph = {
      name: 'g',
      initializer: [floatT('W', [3, 2], seq(6))],
      input: [vi('x', [4, 3]), vi('mask', [4, 2])],
      output: [vi('y', [4, 2])],
      node: [
        { opType: 'MatMul', input: ['x', 'W'], output: ['a'], name: 'mm' },
        { opType: 'Mul', input: ['a', 'mask'], output: ['y'], name: 'mask' },
      ],
    };
    const dir = mkdtempSync(join(tmpdir(), 'hesse-input-'));
    const f = (n: string) => join(dir, n);
    writeFileSync(f('m.onnx'), await encodeModel(graph));
    writeFileSync(f('x.npy'), h.npy.writeNpy({ dtype: 'float64', shape: [4, 3], data: seq(12) }));
    writeFileSync(f('mask.npy'), h.npy.writeNpy({ dtype: 'float64', shape: [4, 2], data: Float64Array.from([1, 0, 1, 1, 0, 1, 1, 1]) }));
    const base = ['loss', f('m.onnx'), '--x', f('x.npy'), '--loss', 'mean-output', '--json', '--f64'];
    const missing = await hessian(base);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/needs values for 'mask'.*--input mask=FILE\.npy/);
    const res = await hessian([...base, '--input', `mask=${f('mask.npy')}`]);
    expect(res.code, res.stderr).toBe(0);
    const xs = seq(12);
    const Wv = seq(6).map(Math.fround);
    const m = [1, 0, 1, 1, 0, 1, 1, 1];
    let want = 0;
    for (let n = 0; n < 4; n++) for (let j = 0; j < 2; j++) want += m[n * 2 + j]! * [0, 1, 2].reduce((s, k) => s + xs[n * 3 + k]! * Wv[k * 2 + j]!, 0);
    expect(JSON.parse(res.stdout).loss).toBeCloseTo(want / 8, 14);
  });

  it('--batch-size: a graph that bakes the exported batch into a Reshape is exit 2 saying so; batch statistics split into batches are a warning', async () => {
    const tf = (f: string) => join(fx, 'transformer_float', f);
    const baked = await hessian(['loss', tf('op17.onnx'), '--x', tf('x.npy'), '--y', tf('y.npy'), '--loss', 'ce', '--batch-size', '2']);
    expect(baked.code).toBe(2);
    expect(baked.stderr).toMatch(/exported for a batch of 3 .* used with a batch of 2: its graph bakes the batch size into a constant .*dynamic_axes/);
    const rn = (f: string) => join(fx, 'resnet', f);
    const res = await hessian(['loss', rn('op17_train.onnx'), '--x', rn('x.npy'), '--y', rn('y.npy'), '--loss', 'ce', '--batch-size', '1', '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).warnings).toEqual([expect.stringMatching(/each batch is normalized with its own statistics/)]);
    expect(res.stderr).toMatch(/^hessian: warning: the model normalizes with batch statistics/);
  });

  it('--output names an output of the graph, or exit 2 listing them', async () => {
    const m = join(fx, 'control_cnn', 'op17.onnx');
    const io = ['--x', join(fx, 'control_cnn', 'x.npy'), '--y', join(fx, 'control_cnn', 'y.npy'), '--loss', 'ce', '--json'];
    const ok = await hessian(['loss', m, ...io, '--output', 'y']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await hessian(['loss', m, ...io, '--output', 'logits']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/output 'logits' is not an output of the graph \(its outputs: y\)/);
  });
  it('info says which float initializers are parameters and which are buffers', async () => {
    const res = await hessian(['info', join(fx, 'resnet', 'op17_preserve.onnx'), '--json']);
    expect(res.code, res.stderr).toBe(0);
    const info = JSON.parse(res.stdout);
    const ref = JSON.parse(readFileSync(join(fx, 'resnet', 'reference.json'), 'utf8')).exports.find((e: { file: string }) => e.file === 'op17_preserve.onnx');
    expect(info.parameters.map((p: { name: string }) => p.name)).toEqual(ref.onnx_param_names);
    expect(info.buffers.map((p: { name: string }) => p.name).sort()).toEqual([...ref.onnx_buffer_names].sort());
    expect(info.supported).toBe(true);
    expect(info.batch_statistics).toEqual([]);
    const train = JSON.parse((await hessian(['info', join(fx, 'resnet', 'op17_train.onnx'), '--json'])).stdout);
    expect(train.batch_statistics.length).toBeGreaterThan(0);
  });
});

describe('exporter variety (test/fixtures/exporter, gen_exporter.py): other ways of writing the families, opsets 11/13/17', () => {
  const ex = new URL('./fixtures/exporter/', import.meta.url).pathname;
  const models = ['acts', 'bilstm', 'chunk', 'enc', 'gru2', 'stem'];
  const rd = (m: string, f: string) => h.npy.parseNpy(readFileSync(join(ex, m, f)));
  // The references use PyTorch's own constants in float64, the graphs float32 ones (GELU's √2,
  // folded BatchNorm weights, HardSigmoid's 1/6): ~1e-9 apart, so 1e-7 here; the derivatives of
  // the imported function itself are checked by central differences.
  it.each(models.flatMap((m) => [11, 13, 17].map((op) => [m, op] as const)))('%s at opset %d: output and input gradient vs PyTorch, derivatives vs central differences', async (m, op) => {
    const model = await h.loadOnnx(readFileSync(join(ex, m, `op${op}.onnx`)));
    const x = h.npy.npyToTensor(rd(m, 'x.npy'), 'float64');
    expect(relError(forward(model, x), rd(m, 'y_ref.npy').data as Float64Array)).toBeLessThan(1e-7);
    using inp = h.objective(model, 'mean_output', { x }, { params: model.init({ dtype: 'float64' }), wrt: 'input' });
    expect(relError(inp.grad(), rd(m, 'gx_ref.npy').data as Float64Array)).toBeLessThan(1e-7);
    using obj = h.objective(model, 'mean_output', { x }, { params: model.init({ dtype: 'float64' }) });
    expect(h.gradCheck(obj).relError).toBeLessThan(1e-6);
    expect(h.hvpCheck(obj).relError).toBeLessThan(1e-5);
  });
  it.each(models)('%s through the CLI: grad --wrt input --f64', async (m) => {
    const dir = mkdtempSync(join(tmpdir(), 'hesse-exporter-'));
    const out = join(dir, 'gx.npy');
    const res = await hessian(['grad', join(ex, m, 'op17.onnx'), '--x', join(ex, m, 'x.npy'), '--loss', 'mean-output', '--wrt', 'input', '--f64', '--out', out, '--json']);
    expect(res.code, res.stderr).toBe(0);
    expect(relError(h.npy.parseNpy(readFileSync(out)).data as Float64Array, rd(m, 'gx_ref.npy').data as Float64Array)).toBeLessThan(1e-7);
  });
});
