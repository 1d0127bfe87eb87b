/**
 * Models as PyTorch's exporter writes them (test/fixtures/onnx, from gen_onnx.py): through the
 * library and through the `hessian` CLI, against float64 references of the exported graph
 * (`onnx_f64`) and of PyTorch (Hessian spectra, traces): float32 within 1e-4 relative, float64
 * within 1e-9. Plus the CLI's bad-input contract: exit code 2, one line, nothing written.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { relError } from './helpers.js';
import { encodeModel, hessian, valueInfo as vi } from './cli-run.js';

await h.init();
const root = new URL('./fixtures/onnx/', import.meta.url).pathname;
const cases = readdirSync(root).filter((d) => existsSync(join(root, d, 'model.onnx'))).sort();
const ref = (c: string) => JSON.parse(readFileSync(join(root, c, 'reference.json'), 'utf8'));
const npyFile = (c: string, f: string) => h.npy.parseNpy(readFileSync(join(root, c, f)));
const LOSS: Record<string, h.LossName> = { ce: 'cross_entropy', mse: 'mse', bce: 'bce_with_logits', 'mean-output': 'mean_output' };


describe.each([
  ['float32', 1e-4],
  ['float64', 1e-9],
] as const)('library, %s', (dtype, tol) => {
  it('has the fixtures', () => expect(cases.length).toBeGreaterThanOrEqual(10));
  it.each(cases)('%s', async (c) => {
    const r = ref(c);
    const model = await h.loadOnnx(readFileSync(join(root, c, 'model.onnx')));
    expect(model.size).toBe(r.P);
    expect([...model.opTypes].sort()).toEqual([...r.op_types].sort());
    expect(model.blocks.map((b) => b.name)).toEqual(r.onnx_param_names);
    const x = h.npy.npyToTensor(npyFile(c, 'x.npy'), dtype);
    const y = existsSync(join(root, c, 'y.npy')) ? h.npy.npyToTensor(npyFile(c, 'y.npy'), dtype) : undefined;
    const f = r.onnx_f64;
    using obj = h.objective(model, LOSS[r.loss]!, { x, y }, { params: model.init({ dtype }) });
    expect(relError([obj.loss()], [f.loss_value])).toBeLessThan(tol);
    expect(relError(obj.grad(), f.grad)).toBeLessThan(tol);
    const v = Float64Array.from(f.v ?? r.v);
    expect(relError(obj.hvp(dtype === 'float64' ? v : Float32Array.from(v)), f.hvp)).toBeLessThan(tol);
    using inp = h.objective(model, LOSS[r.loss]!, { x, y }, { params: model.init({ dtype }), wrt: 'input' });
    expect(relError(inp.grad(), f.input_grad)).toBeLessThan(tol);
    const vx = npyFile(c, 'vx.npy').data as Float32Array;
    expect(relError(inp.hvp(dtype === 'float64' ? Float64Array.from(vx) : vx), f.input_hvp)).toBeLessThan(tol);
    // The Hessian spectrum and trace against PyTorch's (the graph's float32 constants, e.g. GELU's
    // √2, move these by ~1e-8).
    if (dtype === 'float64' && r.param_order_matches_onnx) {
      const H = obj.hessian();
      const ev = h.eigh(H, r.P).values;
      const radius = Math.max(...r.hessian_eigvals.map(Math.abs));
      for (let i = 0; i < 3; i++) {
        expect(Math.abs(ev[i]! - r.hessian_eigs_bottom3[i]) / radius).toBeLessThan(1e-6);
        expect(Math.abs(ev[r.P - 1 - i]! - r.hessian_eigs_top3[i]) / radius).toBeLessThan(1e-6);
      }
    }
  });
});

describe('the hessian CLI', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hesse-cli-'));
  const files = (c: string) => ['--x', join(root, c, 'x.npy'), ...(existsSync(join(root, c, 'y.npy')) ? ['--y', join(root, c, 'y.npy')] : []), '--loss', ref(c).loss];
  const model = (c: string) => join(root, c, 'model.onnx');

  it.each([
    ['float32', [], 1e-4],
    ['float64', ['--f64'], 1e-9],
  ] as const)('loss, grad (--out), hvp, hessian and ggn match the references in %s', async (_, flag, tol) => {
    for (const c of ['cnn_ce', 'gelu_mlp_ce', 'mlp_softplus_meanout']) {
      const r = ref(c);
      const f = r.onnx_f64;
      const loss = JSON.parse((await hessian(['loss', model(c), ...files(c), ...flag, '--json'])).stdout);
      expect(loss.params).toBe(r.P);
      expect(relError([loss.loss], [f.loss_value])).toBeLessThan(tol);
      const out = join(tmp, `${c}-grad.npy`);
      const grad = JSON.parse((await hessian(['grad', model(c), ...files(c), ...flag, '--json', '--out', out])).stdout);
      const g = h.npy.parseNpy(readFileSync(out)).data as Float32Array;
      expect(relError(g, f.grad)).toBeLessThan(tol);
      expect(relError([grad.grad_norm], [Math.hypot(...f.grad)])).toBeLessThan(tol);
      const hvp = JSON.parse((await hessian(['hvp', model(c), ...files(c), ...flag, '--json', '--v', join(root, c, 'v.npy')])).stdout);
      expect(relError([hvp.product_norm], [Math.hypot(...f.hvp)])).toBeLessThan(tol);
      const H = JSON.parse((await hessian(['hessian', model(c), ...files(c), ...flag, '--json'])).stdout);
      expect(Math.abs(H.trace - r.hessian_trace) / Math.max(...r.hessian_eigvals.map(Math.abs))).toBeLessThan(flag.length ? 1e-7 : 1e-4);
      expect(H.eigenvalues).toHaveLength(r.P);
      if (r.loss !== 'mean-output') {
        const G = JSON.parse((await hessian(['ggn', model(c), ...files(c), ...flag, '--json'])).stdout);
        expect(Math.abs(G.trace - r.ggn_trace) / Math.max(...r.ggn_eigvals.map(Math.abs))).toBeLessThan(flag.length ? 1e-7 : 1e-4);
        const D = JSON.parse((await hessian(['diag', model(c), ...files(c), ...flag, '--json'])).stdout);
        expect(Math.abs(D.diag_sum - r.ggn_trace) / r.ggn_trace).toBeLessThan(flag.length ? 1e-7 : 1e-4);
      }
    }
  });

  it('spectrum: top and bottom eigenvalues, trace, products used, density plot', async () => {
    const c = 'mlp_tanh_ce';
    const r = ref(c);
    const svg = join(tmp, 'density.svg');
    const s = JSON.parse((await hessian(['spectrum', model(c), ...files(c), '--f64', '--json', '--top', '3', '--bottom', '3', '--trace', '--density', svg, '--seed', '1'])).stdout);
    const radius = Math.max(...r.hessian_eigvals.map(Math.abs));
    s.top.forEach((v: number, i: number) => expect(Math.abs(v - r.hessian_eigs_top3[i]) / radius).toBeLessThan(1e-6));
    s.bottom.forEach((v: number, i: number) => expect(Math.abs(v - r.hessian_eigs_bottom3[i]) / radius).toBeLessThan(1e-6));
    expect(Math.abs(s.trace - r.hessian_trace) / radius).toBeLessThan(1e-6);
    expect(s.products).toBeGreaterThan(0);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg[\s\S]*<path d="M/);
  });

  it('info lists inputs, outputs, parameters and op types', async () => {
    const r = ref('cnn_ce');
    const i = JSON.parse((await hessian(['info', model('cnn_ce'), '--json'])).stdout);
    expect(i.params).toBe(r.P);
    expect(i.parameters.map((p: { name: string }) => p.name)).toEqual(r.onnx_param_names);
    expect(i.inputs[0].shape).toEqual(r.input_shape);
    expect(i.op_types).toEqual(r.op_types);
  });

  it('bad input: exit code 2, one line on stderr that says what to do, nothing written to --out', async () => {
    const c = 'mlp_tanh_ce';
    const out = join(tmp, 'never.npy');
    const truncated = join(tmp, 'truncated.onnx');
    writeFileSync(truncated, readFileSync(model(c)).subarray(0, 200));
    const wrongX = join(tmp, 'x-wrong.npy');
    writeFileSync(wrongX, h.npy.writeNpy({ dtype: 'float32', shape: [6, 5], data: new Float32Array(30) }));
    const badLabels = join(tmp, 'y-bad.npy');
    writeFileSync(badLabels, h.npy.writeNpy({ dtype: 'int64', shape: [6], data: BigInt64Array.from([0n, 1n, 2n, 3n, 0n, 1n]) }));
    const shortV = join(tmp, 'v-short.npy');
    writeFileSync(shortV, h.npy.writeNpy({ dtype: 'float32', shape: [5], data: new Float32Array(5) }));
    const cases: [string[], RegExp][] = [
      [['grad', truncated, ...files(c), '--out', out], /ONNX|protobuf|truncated/],
      [['grad', model(c), '--x', wrongX, '--y', join(root, c, 'y.npy'), '--loss', 'ce', '--out', out], /\[6, 6\].*\[6, 5\]/],
      [['grad', model(c), '--x', join(root, c, 'x.npy'), '--y', badLabels, '--loss', 'ce', '--out', out], /label 3.*0\.\.3/],
      [['hvp', model(c), ...files(c), '--v', shortV, '--out', out], /--v has 5 values.*P = 83/],
      [['grad', model(c), '--x', join(root, c, 'x.npy'), '--loss', 'ce', '--out', out], /needs targets; pass --y/],
      [['grad', model(c), ...files(c).slice(0, -2), '--loss', 'hinge'], /.+/],
    ];
    for (const [args, why] of cases) {
      const r = await hessian(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(why);
      expect(existsSync(out)).toBe(false);
    }
  });
});

describe('Concat and Transpose in ONNX graphs', () => {
  it('import like the same traced function (a graph built with onnx-proto)', async () => {
    const r = [0.3, -0.2, 0.5, 0.1, -0.4, 0.25, 0.7, -0.6, 0.15, 0.05, -0.35, 0.45];
    const W = Float32Array.from(r); // [6, 2]
    const tensorOf = (name: string, dims: number[], data: Float32Array) => ({ name, dims, dataType: 1, floatData: Array.from(data) });
    const graph = {
      name: 'g',
      initializer: [tensorOf('W', [6, 2], W)],
      input: [vi('x', [4, 3])],
      output: [vi('y', [4, 2])],
      node: [
        { opType: 'Tanh', input: ['x'], output: ['t'], name: 'tanh' },
        { opType: 'Concat', input: ['x', 't'], output: ['c'], name: 'cat', attribute: [{ name: 'axis', type: 2, i: 1 }] },
        { opType: 'Transpose', input: ['c'], output: ['ct'], name: 'tr', attribute: [{ name: 'perm', type: 7, ints: [1, 0] }] },
        { opType: 'Transpose', input: ['ct'], output: ['c2'], name: 'tr2' },
        { opType: 'MatMul', input: ['c2', 'W'], output: ['y'], name: 'mm' },
      ],
    };
    const bytes = await encodeModel(graph);
    const model = await h.loadOnnx(bytes);
    expect(model.opTypes).toEqual(['Tanh', 'Concat', 'Transpose', 'MatMul']);
    const x = h.tensor(Float64Array.from({ length: 12 }, (_, i) => Math.sin(i)), [4, 3], 'float64');
    const y = h.tensor(Float64Array.from({ length: 8 }, (_, i) => Math.cos(i)), [4, 2], 'float64');
    using obj = h.objective(model, 'mse', { x, y }, { params: model.init({ dtype: 'float64' }) });
    const f = (p: h.Sym, xx: h.Sym, yy: h.Sym) => h.mseLoss(h.matmul(h.permute(h.permute(h.concat([xx, h.tanh(xx)], 1), [1, 0]), [1, 0]), p), yy);
    const Wt = h.tensor(Float64Array.from(W), [6, 2], 'float64');
    const [value, grad] = h.valueAndGrad(f)(Wt, x, y);
    expect(obj.loss()).toBeCloseTo(value, 14);
    expect(relError(obj.grad(), grad.toArray())).toBeLessThan(1e-13);
    const v = Float64Array.from({ length: 12 }, (_, i) => Math.cos(3 * i));
    expect(relError(obj.hvp(v), h.hvp(f, Wt, h.tensor(v, [6, 2], 'float64'), [x, y]).toArray())).toBeLessThan(1e-13);
    // Eager forms agree with NumPy semantics.
    const a = h.tensor([[1, 2], [3, 4]]);
    expect(h.concat([a, a], 0).toList()).toEqual([[1, 2], [3, 4], [1, 2], [3, 4]]);
    expect(h.permute(h.tensor([[[1, 2, 3]], [[4, 5, 6]]]), [2, 0, 1]).toList()).toEqual([[[1], [4]], [[2], [5]], [[3], [6]]]);
  });
});

describe('Pow with a general constant exponent', () => {
  it('imports as xᵖ with exact derivatives', async () => {
    const graph = {
      name: 'g',
      initializer: [{ name: 'W', dims: [3, 2], dataType: 1, floatData: [0.5, 0.25, 1.5, 0.75, 1, 2] }],
      input: [vi('x', [4, 3])],
      output: [vi('y', [4, 2])],
      node: [
        // As PyTorch writes exponents: a Constant node (a float initializer would be a parameter).
        { opType: 'Constant', input: [], output: ['p'], name: 'c', attribute: [{ name: 'value', type: 4, t: { dims: [], dataType: 1, floatData: [2.5] } }] },
        { opType: 'Exp', input: ['x'], output: ['e'], name: 'exp' },
        { opType: 'MatMul', input: ['e', 'W'], output: ['m'], name: 'mm' },
        { opType: 'Pow', input: ['m', 'p'], output: ['y'], name: 'pow' },
      ],
    };
    const bytes = await encodeModel(graph);
    const model = await h.loadOnnx(bytes);
    expect(model.size).toBe(6);
    const x = h.tensor(Float64Array.from({ length: 12 }, (_, i) => Math.sin(i) / 2), [4, 3], 'float64');
    const params = model.init({ dtype: 'float64' });
    using obj = h.objective(model, 'mean_output', { x }, { params });
    const f = (q: { W: h.Sym }, xx: h.Sym) => h.mean(h.exp(h.mul(h.log(h.matmul(h.exp(xx), q.W)), 2.5)));
    const W = h.tensor(params.subarray(0, 6), [3, 2], 'float64');
    const [value, g] = h.valueAndGrad(f)({ W }, x);
    expect(obj.loss()).toBeCloseTo(value, 12);
    expect(relError(obj.grad(), g.W.toArray())).toBeLessThan(1e-12);
    expect(h.hvpCheck(obj).relError).toBeLessThan(1e-6);
  });
});

describe('malformed ONNX files', () => {
  it('random bytes and every truncation of a real model are HesseErrors, never crashes', async () => {
    const real = readFileSync(join(root, 'cnn_ce', 'model.onnx'));
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const inputs: Uint8Array[] = [
      ...Array.from({ length: 40 }, (_, i) => Uint8Array.from({ length: 1 + i * 13 }, () => Math.floor(rand() * 256))),
      ...Array.from({ length: 25 }, (_, i) => real.subarray(0, Math.floor((real.length * i) / 25))),
    ];
    for (const bytes of inputs) {
      try {
        const m = await h.loadOnnx(bytes);
        // A truncation can still decode to a smaller valid graph; building it must then work or fail cleanly.
        try {
          using o = h.objective(m, 'mean_output', { x: h.zeros([4, 1, 6, 6]) });
          o.loss();
        } catch (e) {
          expect(e).toBeInstanceOf(h.HesseError);
        }
      } catch (e) {
        expect(e).toBeInstanceOf(h.HesseError);
        expect(['MALFORMED_FILE', 'UNSUPPORTED_OP', 'SHAPE_MISMATCH']).toContain((e as h.HesseError).code);
      }
    }
    // And the library still works.
    const ok = await h.loadOnnx(real);
    expect(ok.size).toBe(113);
  });
});

describe('MatMul with a batched left operand', () => {
  it('[B, m, k] · [k, n] folds the batch into rows', async () => {
    const W = [0.5, -0.25, 1.5, 0.75, -1, 2];
    const graph = {
      name: 'g',
      initializer: [{ name: 'W', dims: [3, 2], dataType: 1, floatData: W }],
      input: [vi('x', [2, 4, 3])],
      output: [vi('y', [2, 4, 2])],
      node: [
        { opType: 'Tanh', input: ['x'], output: ['t'], name: 'tanh' },
        { opType: 'MatMul', input: ['t', 'W'], output: ['y'], name: 'mm' },
      ],
    };
    const model = await h.loadOnnx(await encodeModel(graph));
    const xv = Float64Array.from({ length: 24 }, (_, i) => Math.sin(i));
    using obj = h.objective(model, 'mean_output', { x: h.tensor(xv, [2, 4, 3], 'float64') }, { params: model.init({ dtype: 'float64' }) });
    // mean over all outputs of tanh(x)·W, by hand.
    let want = 0;
    for (let r = 0; r < 8; r++) for (let j = 0; j < 2; j++) for (let q = 0; q < 3; q++) want += Math.tanh(xv[r * 3 + q]!) * W[q * 2 + j]!;
    expect(obj.loss()).toBeCloseTo(want / 16, 6);
  });
});

describe('invalid ONNX attributes and external data', () => {
  const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
  const int = (name: string, v: number) => ({ name, type: 2, i: v });
  const W = { name: 'W', dims: [3, 2], dataType: 1, floatData: [0.5, -0.25, 1.5, 0.75, -1, 2] };
  const K = { name: 'K', dims: [2, 1, 3, 3], dataType: 1, floatData: Array.from({ length: 18 }, (_, i) => Math.sin(i)) };
  const shapeOf = (name: string, v: number[]) => ({ name, dims: [v.length], dataType: 7, int64Data: v });
  /** A model x [4, 3] → `nodes` → y (or x [2, 1, 5, 5] for the convolutions). */
  const encode = async (nodes: object[], opts: { conv?: boolean; initializer?: object[] } = {}) => {
    const graph = { name: 'g', initializer: opts.initializer ?? [W], input: [vi('x', opts.conv ? [2, 1, 5, 5] : [4, 3])], output: [vi('y', [])], node: nodes };
    return encodeModel(graph, 11);
  };
  const mm = { opType: 'MatMul', input: ['x', 'W'], output: ['m'], name: 'mm' };
  const conv = (attribute: object[]) => ({ opType: 'Conv', input: ['x', 'K'], output: ['y'], name: 'conv1', attribute });
  // [what, nodes, options, where it fails, code, message pattern]
  const cases: [string, object[], { conv?: boolean; initializer?: object[] }, 'load' | 'build', h.HesseErrorCode, RegExp][] = [
    ['Flatten axis out of range', [{ opType: 'Flatten', input: ['x'], output: ['y'], name: 'flat', attribute: [int('axis', 5)] }], {}, 'build', 'MALFORMED_FILE', /node 'flat' \(Flatten.*axis 5 is out of range.*-2\.\.2/],
    ['Unsqueeze axis out of range', [{ opType: 'Unsqueeze', input: ['x'], output: ['y'], name: 'unsq', attribute: [ints('axes', [7])] }], {}, 'build', 'MALFORMED_FILE', /node 'unsq' \(Unsqueeze.*axes entry 7 is out of range/],
    ['Squeeze of a dimension that is not 1', [{ opType: 'Squeeze', input: ['x'], output: ['y'], name: 'sq', attribute: [ints('axes', [0])] }], {}, 'build', 'MALFORMED_FILE', /node 'sq' \(Squeeze.*axis 0 of size 4/],
    ['Squeeze axes repeated', [{ opType: 'Squeeze', input: ['x'], output: ['y'], name: 'sq2', attribute: [ints('axes', [1, 1])] }], {}, 'load', 'MALFORMED_FILE', /node 'sq2' \(Squeeze.*repeat/],
    ['Transpose perm not a permutation', [{ opType: 'Transpose', input: ['x'], output: ['y'], name: 'tr', attribute: [ints('perm', [0, 0])] }], {}, 'load', 'MALFORMED_FILE', /node 'tr' \(Transpose.*perm \[0, 0\] is not a permutation/],
    ['Transpose perm of the wrong length', [{ opType: 'Transpose', input: ['x'], output: ['y'], name: 'tr3', attribute: [ints('perm', [2, 0, 1])] }], {}, 'build', 'MALFORMED_FILE', /node 'tr3' \(Transpose.*3 entries.*\[4, 3\]/],
    ['Gemm transA = 2', [{ opType: 'Gemm', input: ['x', 'W'], output: ['y'], name: 'fc', attribute: [int('transA', 2)] }], {}, 'load', 'MALFORMED_FILE', /node 'fc' \(Gemm.*transA must be 0 or 1, got 2/],
    ['Gemm shapes that do not multiply', [{ opType: 'Gemm', input: ['x', 'W'], output: ['y'], name: 'fc2', attribute: [int('transB', 1)] }], {}, 'build', 'SHAPE_MISMATCH', /node 'fc2' \(Gemm/],
    ['Conv negative pads', [conv([ints('pads', [-1, 0, -1, 0])])], { conv: true, initializer: [K] }, 'load', 'MALFORMED_FILE', /node 'conv1' \(Conv.*pads must be integers ≥ 0, got \[-1, 0, -1, 0\]/],
    ['Conv zero stride', [conv([ints('strides', [0, 1])])], { conv: true, initializer: [K] }, 'load', 'MALFORMED_FILE', /node 'conv1' \(Conv.*strides must be integers ≥ 1/],
    ['Conv strides of the wrong length', [conv([ints('strides', [2])])], { conv: true, initializer: [K] }, 'build', 'MALFORMED_FILE', /node 'conv1' \(Conv.*strides \[2\] must hold 2 values/],
    ['Conv pads of odd length', [conv([ints('pads', [1, 1, 1])])], { conv: true, initializer: [K] }, 'load', 'MALFORMED_FILE', /node 'conv1' \(Conv.*even count/],
    ['Conv kernel_shape not the weight\'s', [conv([ints('kernel_shape', [5, 5])])], { conv: true, initializer: [K] }, 'build', 'MALFORMED_FILE', /node 'conv1' \(Conv.*kernel_shape \[5, 5\]/],
    ['Reshape to an incompatible shape', [mm, { opType: 'Reshape', input: ['m', 's'], output: ['y'], name: 'rs' }], { initializer: [W, shapeOf('s', [5, -1])] }, 'build', 'SHAPE_MISMATCH', /node 'rs' \(Reshape.*cannot reshape \[4, 2\] \(8 values\) to \[5, -1\]/],
    ['Reshape with two -1', [mm, { opType: 'Reshape', input: ['m', 's'], output: ['y'], name: 'rs2' }], { initializer: [W, shapeOf('s', [-1, -1])] }, 'build', 'MALFORMED_FILE', /node 'rs2' \(Reshape.*more than one -1/],
    ['Reshape with a negative size', [mm, { opType: 'Reshape', input: ['m', 's'], output: ['y'], name: 'rs3' }], { initializer: [W, shapeOf('s', [-4, -2])] }, 'build', 'MALFORMED_FILE', /node 'rs3' \(Reshape.*not an integer ≥ -1/],
    ['Concat axis out of range', [mm, { opType: 'Concat', input: ['m', 'm'], output: ['y'], name: 'cat', attribute: [int('axis', 2)] }], {}, 'build', 'MALFORMED_FILE', /node 'cat' \(Concat.*axis 2 is out of range/],
    ['Gelu approximate unknown', [mm, { opType: 'Gelu', input: ['m'], output: ['y'], name: 'gelu', attribute: [{ name: 'approximate', type: 3, s: new TextEncoder().encode('fast') }] }], {}, 'load', 'MALFORMED_FILE', /node 'gelu' \(Gelu.*approximate must be 'none' or 'tanh', got 'fast'/],
    ['an initializer in an external file', [mm, { opType: 'Tanh', input: ['m'], output: ['y'], name: 't' }], { initializer: [{ name: 'W', dims: [3, 2], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'model.onnx.data' }, { key: 'offset', value: '0' }] }] }, 'load', 'UNSUPPORTED_OP', /'W'.*external data is not supported.*'model\.onnx\.data'.*save_as_external_data=False.*external_data=False/],
  ];
  const good = readFileSync(join(root, 'mlp_tanh_ce', 'model.onnx'));
  const xOf = (conv?: boolean) => (conv ? h.zeros([2, 1, 5, 5]) : h.tensor(Float32Array.from({ length: 12 }, (_, i) => Math.cos(i)), [4, 3]));

  it.each(cases)('%s: a HesseError naming the node, then the library still works', async (_, nodes, opts, stage, code, why) => {
    const bytes = await encode(nodes, opts);
    let failedAt: string | undefined;
    let err: unknown;
    try {
      const model = await h.loadOnnx(bytes);
      failedAt = 'build';
      using obj = h.objective(model, 'mean_output', { x: xOf(opts.conv) });
      obj.loss();
      failedAt = undefined;
    } catch (e) {
      failedAt ??= 'load';
      err = e;
    }
    expect(err, 'expected an error').toBeInstanceOf(h.HesseError);
    expect((err as h.HesseError).code, (err as Error).message).toBe(code);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toMatch(/; /); // and says what to do
    expect(failedAt).toBe(stage);
    const ok = await h.loadOnnx(good);
    using obj = h.objective(ok, 'mean_output', { x: h.npy.npyToTensor(npyFile('mlp_tanh_ce', 'x.npy')) });
    expect(Number.isFinite(obj.loss())).toBe(true);
  });

  it('the CLI: exit code 2 and one line naming the node', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'hesse-onnx-'));
    const x = join(tmp, 'x.npy');
    const xc = join(tmp, 'xc.npy');
    writeFileSync(x, h.npy.writeNpy(h.npy.tensorToNpy(xOf(false))));
    writeFileSync(xc, h.npy.writeNpy({ dtype: 'float32', shape: [2, 1, 5, 5], data: new Float32Array(50) }));
    for (const [what, nodes, opts, , , why] of cases) {
      const file = join(tmp, 'bad.onnx');
      writeFileSync(file, await encode(nodes, opts));
      const out = join(tmp, 'g.npy');
      const r = await hessian(['grad', file, '--x', opts.conv ? xc : x, '--loss', 'mean-output', '--out', out]);
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(/^hessian: [^\n]+\n$/);
      expect(r.stderr, what).toMatch(why);
      expect(existsSync(out), what).toBe(false);
    }
  });
});
