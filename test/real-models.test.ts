/**
 * Real models as `torch.onnx.export` (torch 1.13) writes them: LeNet-5, a CIFAR ResNet (BatchNorm
 * folded by the eval export, kept by the preserve export, batch statistics in the train export),
 * a BatchNorm/Dropout MLP, MobileNet blocks, Transformer encoder layers (token ids, float inputs),
 * an activation-heavy MLP, an LSTM and a GRU, each at opsets 13 and 17 (test/fixtures/models, from
 * gen_models.py; conventions in its README). Through the library, in float32 (≤ 1e-4 relative)
 * and float64 (≤ 1e-9), against float64 PyTorch references of the exported graph's function:
 * loss, gradient, H·v, G·v, empirical-Fisher·v, the GGN diagonal, trace and top eigenvalues, the
 * dense Hessian's diagonal, trace and extreme eigenvalues (P ≤ 3000), K-FAC factors of the
 * linear and conv2d layers; and one model per family through the `hessian` CLI.
 *
 * Strict: every export must import and match (an UNSUPPORTED_OP is a failure). K-FAC of an
 * imported model needs layers found by pattern in the graph (the curv helper's Rust work): until
 * `kfac()` finds layers in an ONNX model, those checks are reported as pending (it.todo), and
 * run as soon as it does. A summary table (model, export, dtype, status, worst relative error)
 * is printed at the end.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { relError } from './helpers.js';
import { hessian } from './cli-run.js';

await h.init();

interface KfacRef {
  module: string;
  type: 'linear' | 'conv2d';
  d_in: number;
  d_out: number;
  has_bias: boolean;
}
interface Ref {
  file: string;
  P: number;
  loss_value: number;
  ggn_trace: number;
  ggn_eigs_top3: number[];
  hessian_trace?: number;
  hessian_eigs_top3?: number[];
  hessian_eigs_bottom3?: number[];
  hessian_spectral_radius?: number;
  kfac?: KfacRef[];
}
interface Export {
  file: string;
  opset: number;
  mode: 'eval' | 'preserve' | 'train';
  ref: string;
  op_types: string[];
  onnx_param_names: string[];
  onnx_param_index: number[] | null;
  kfac_onnx_offsets?: (number | null)[];
  kfac_onnx_blocks?: [number, number | null][];
}
interface Fixture {
  name: string;
  family: string;
  control: boolean;
  loss: 'ce' | 'ce_tokens' | 'mse';
  exports: Export[];
  refs: Record<string, Ref>;
}

/** HESSE_MODEL_FIXTURES=<dir> reads the fixtures from another folder (to check that a perturbed copy fails). */
const root = process.env.HESSE_MODEL_FIXTURES ?? new URL('./fixtures/models/', import.meta.url).pathname;
const fixtures: Fixture[] = readdirSync(root)
  .filter((d) => existsSync(join(root, d, 'reference.json')))
  .sort()
  .map((d) => JSON.parse(readFileSync(join(root, d, 'reference.json'), 'utf8')));
const LOSS = { ce: 'cross_entropy', ce_tokens: 'cross_entropy', mse: 'mse' } as const;
const TOL = { float32: 1e-4, float64: 1e-9 } as const;

/** A reference's float64 arrays (its .npz), in the PyTorch module's named_parameters order. */
function arrays(f: Fixture, r: Ref): Record<string, Float64Array> {
  const z = h.npy.parseNpz(readFileSync(join(root, f.name, r.file)));
  return Object.fromEntries(Object.entries(z).map(([k, a]) => [k, Float64Array.from(a.data as Float64Array)]));
}

/** A named_parameters-order vector in the file's parameter order (element k is a[index[k]]). */
const toOnnx = (a: Float64Array, index: number[] | null) => (index ? Float64Array.from(index, (i) => a[i]!) : a);
const data = (f: Fixture, dtype: h.DType) => {
  const x = h.npy.npyToTensor(h.npy.parseNpy(readFileSync(join(root, f.name, 'x.npy'))), dtype);
  const y = h.npy.npyToTensor(h.npy.parseNpy(readFileSync(join(root, f.name, 'y.npy'))), dtype);
  return { x, y };
};

interface Row {
  model: string;
  file: string;
  dtype: string;
  status: string;
  worst: string;
}
const rows: Row[] = [];
afterAll(() => {
  if (rows.length === 0) return;
  const cols: (keyof Row)[] = ['model', 'file', 'dtype', 'status', 'worst'];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (r: Record<keyof Row, string>) => cols.map((c, i) => r[c].padEnd(width[i]!)).join('  ');
  console.log(['real models (test/fixtures/models):', line({ model: 'model', file: 'export', dtype: 'dtype', status: 'status', worst: 'max rel err' }), ...rows.map(line)].join('\n'));
});

/** The model and its objective (any error, UNSUPPORTED_OP included, fails the case). */
async function open(f: Fixture, ex: Export, dtype: h.DType): Promise<{ model: h.OnnxModel; obj: h.Objective }> {
  const model = await h.loadOnnx(readFileSync(join(root, f.name, ex.file)));
  const { x, y } = data(f, dtype);
  const obj = h.objective(model, LOSS[f.loss], { x, y }, { params: model.init({ dtype }) });
  return { model, obj };
}

/** Whether kfac() finds layers in an imported model (pattern matching in the graph; the curv helper's). */
const kfacOnOnnx = await (async () => {
  const f = fixtures.find((q) => q.control)!;
  const { obj } = await open(f, f.exports[0]!, 'float64');
  try {
    obj.kfac()[Symbol.dispose]();
    return true;
  } catch (e) {
    if (e instanceof h.HesseError && /no linear or conv2d layers/.test(e.message)) return false;
    throw e;
  } finally {
    obj.dispose();
  }
})();

/** |got − want| / scale for each pair of extreme eigenvalues, the worst. */
const eigError = (got: ArrayLike<number>, want: readonly number[], scale: number) =>
  Math.max(...want.map((w, i) => Math.abs(got[i]! - w) / scale));

const cases = fixtures.flatMap((f) => f.exports.flatMap((ex) => (['float32', 'float64'] as const).map((dtype) => [`${f.name}/${ex.file} ${dtype}`, f, ex, dtype] as const)));

describe('real models through the library', () => {
  it('has the fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(9));

  it.each(cases)('%s', async (_, f, ex, dtype) => {
    const row: Row = { model: f.name, file: ex.file, dtype, status: 'error', worst: '' };
    rows.push(row);
    const { model, obj } = await open(f, ex, dtype);
    using _obj = obj;
    const r = f.refs[ex.ref]!;
    const A = arrays(f, r);
    const idx = ex.onnx_param_index;
    const errs: Record<string, number> = {};
    const rel = (what: string, got: ArrayLike<number>, want: ArrayLike<number>) => (errs[what] = relError(got, want));
    expect(model.size).toBe(r.P);
    expect(model.blocks.map((b) => b.name)).toEqual(ex.onnx_param_names);
    const v64 = toOnnx(A.v!, idx);
    const v = dtype === 'float64' ? v64 : Float32Array.from(v64);
    const tol = TOL[dtype];
    const eigTol = dtype === 'float64' ? 1e-11 : 1e-6;

    rel('loss', [obj.loss()], [r.loss_value]);
    rel('grad', obj.grad(), toOnnx(A.grad!, idx));
    rel('hvp', obj.hvp(v), toOnnx(A.hvp!, idx));
    rel('ggnvp', obj.ggnvp(v), toOnnx(A.ggn_v!, idx));
    rel('fisherVp', obj.fisherVp(v), toOnnx(A.fisher_v!, idx));
    const gdiag = obj.gaussNewton('diagonal');
    rel('ggn diagonal', gdiag, toOnnx(A.ggn_diag!, idx));
    rel('ggn trace', [gdiag.reduce((s, a) => s + a, 0)], [r.ggn_trace]);
    const gtop = h.eigenvalues(obj.operator('ggn'), 3, { tol: eigTol }).values;
    errs['ggn top-3 eigenvalues'] = eigError(gtop, r.ggn_eigs_top3, Math.abs(r.ggn_eigs_top3[0]!));
    if (A.hessian_diag) {
      const H = obj.hessian();
      const P = r.P;
      rel('hessian diagonal', Float64Array.from({ length: P }, (_, i) => H[i * P + i]!), toOnnx(A.hessian_diag, idx));
      let tr = 0;
      for (let i = 0; i < P; i++) tr += H[i * P + i]!;
      rel('hessian trace', [tr], [r.hessian_trace!]);
      const ends = h.eigenvalues(obj.operator('hessian'), 6, { which: 'both', tol: eigTol }).values;
      errs['hessian extreme eigenvalues'] = Math.max(
        eigError(ends.slice(0, 3), r.hessian_eigs_bottom3!, r.hessian_spectral_radius!),
        eigError(ends.slice(3).reverse(), r.hessian_eigs_top3!, r.hessian_spectral_radius!),
      );
    }
    const [worstName, worst] = Object.entries(errs).reduce((a, b) => (b[1] > a[1] || Number.isNaN(b[1]) ? b : a));
    row.worst = `${worst.toExponential(1)} (${worstName})`;
    row.status = Object.values(errs).every((e) => e <= tol) ? 'pass' : 'FAIL';
    for (const [what, e] of Object.entries(errs)) expect(e, `${f.name}/${ex.file} ${dtype}: ${what}`).toBeLessThanOrEqual(tol);
  });
});

const kfacCases = cases.filter(([, f, ex]) => f.refs[ex.ref]!.kfac && !f.control);
describe('K-FAC of real models (layers found in the graph)', () => {
  if (!kfacOnOnnx) {
    // Pending: kfac() on an ONNX model needs layers found by pattern (Gemm, MatMul + bias, Conv).
    for (const [name] of kfacCases) it.todo(`${name}: K-FAC factors (pending: kfac() finds no layers in ONNX graphs yet)`);
    return;
  }
  it.each(kfacCases)('%s: K-FAC factors', async (_, f, ex, dtype) => {
    const { obj } = await open(f, ex, dtype);
    using _obj = obj;
    const r = f.refs[ex.ref]!;
    const A = arrays(f, r);
    const tol = TOL[dtype];
    const errs: Record<string, number> = {};
    const rel = (what: string, got: ArrayLike<number>, want: ArrayLike<number>) => (errs[what] = relError(got, want));
    using kfac = obj.kfac();
    r.kfac!.forEach((k, i) => {
      // Where the layer's weight and bias blocks start in the file's order (a folded MatMul
      // weight may be stored transposed and away from its bias); older fixtures: contiguous only.
      const blocks = ex.kfac_onnx_blocks?.[i];
      const off = blocks ? blocks[0] : ex.kfac_onnx_offsets![i];
      if (off === null || off === undefined) return; // weight and bias not contiguous in the file's order
      const l = kfac.layers.find((q) => q.offset === off);
      expect(l, `K-FAC: no layer at offset ${off} (${k.module})`).toBeDefined();
      expect([l!.dIn, l!.dOut, l!.hasBias], `K-FAC ${k.module}`).toEqual([k.d_in, k.d_out, k.has_bias]);
      if (blocks) expect(l!.biasOffset, `K-FAC ${k.module} bias`).toBe(blocks[1] ?? -1);
      rel(`kfac ${k.module} A`, l!.a, A[`kfac_${i}_a`]!);
      rel(`kfac ${k.module} B`, l!.b, A[`kfac_${i}_b`]!);
    });
    for (const [what, e] of Object.entries(errs)) expect(e, `${f.name}/${ex.file} ${dtype}: ${what}`).toBeLessThanOrEqual(tol);
  });
});

describe('the control fixture', () => {
  const f = fixtures.find((q) => q.control)!;
  it('its K-FAC references follow hesse\'s conventions: the same network as nn.sequential', () => {
    // Conv2d(1,3,3,padding=1) Tanh Flatten Linear(108,6) GELU Linear(6,3), named_parameters order.
    const r = f.refs.eval!;
    const A = arrays(f, r);
    const model = h.nn.sequential([
      { type: 'conv2d', in: 1, out: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, { type: 'tanh' }, { type: 'flatten' },
      { type: 'linear', in: 108, out: 6 }, { type: 'gelu', approximate: 'none' }, { type: 'linear', in: 6, out: 3 },
    ]);
    expect(model.size).toBe(r.P);
    const { x, y } = data(f, 'float64');
    using obj = h.objective(model, 'cross_entropy', { x, y }, { params: A.params! });
    // hesse's GELU uses √2 exactly, the graph (and so the reference) float32's 1.4142135: ~1e-8.
    expect(relError(obj.grad(), A.grad!)).toBeLessThan(1e-6);
    using kfac = obj.kfac();
    expect(kfac.layers.map((l) => `net.${l.layer}`)).toEqual(r.kfac!.map((k) => k.module));
    r.kfac!.forEach((k, i) => {
      const l = kfac.layers[i]!;
      expect([l.dIn, l.dOut, l.hasBias]).toEqual([k.d_in, k.d_out, k.has_bias]);
      expect(relError(l.a, A[`kfac_${i}_a`]!), `${k.module} A`).toBeLessThan(1e-6);
      expect(relError(l.b, A[`kfac_${i}_b`]!), `${k.module} B`).toBeLessThan(1e-6);
    });
  });
});

describe('real models through the hessian CLI (one export per family)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'hesse-real-'));
  // One eval export per family, and each family's opset-17 train export (batch statistics: the CLI warns).
  const picks = fixtures.flatMap((f) => [f.exports.find((e) => e.mode === 'eval' && e.opset === 17) ?? f.exports[0]!, ...f.exports.filter((e) => e.mode === 'train' && e.opset === 17)].map((ex) => [`${f.name}/${ex.file}`, f, ex] as const));

  it.each(picks)('%s: loss, grad, H·v, G·v, F·v, GGN diagonal and top eigenvalues in float32 and float64', async (_, f, ex) => {
    const row: Row = { model: f.name, file: ex.file, dtype: 'CLI', status: 'error', worst: '' };
    rows.push(row);
    const r = f.refs[ex.ref]!;
    const A = arrays(f, r);
    const idx = ex.onnx_param_index;
    const model = join(root, f.name, ex.file);
    const io = ['--x', join(root, f.name, 'x.npy'), '--y', join(root, f.name, 'y.npy'), '--loss', f.loss === 'mse' ? 'mse' : 'ce', '--json', '--quiet'];
    const vFile = join(tmp, `${f.name}-${ex.mode}-v.npy`);
    writeFileSync(vFile, h.npy.writeNpy({ dtype: 'float32', shape: [r.P], data: Float32Array.from(toOnnx(A.v!, idx)) }));
    const errs: Record<string, number> = {};
    const npyOut = (file: string) => h.npy.parseNpy(readFileSync(file)).data as Float32Array | Float64Array;
    const json = async (args: string[]) => {
      const res = await hessian(args);
      expect(res.code, `hessian ${args.join(' ')}: ${res.stderr}`).toBe(0);
      return JSON.parse(res.stdout);
    };
    let worst = 0;
    for (const [flag, tol] of [[[], TOL.float32], [['--f64'], TOL.float64]] as const) {
      const p = flag.length ? 'f64' : 'f32';
      const loss = await json(['loss', model, ...io, ...flag]);
      expect(loss.params).toBe(r.P);
      errs[`${p} loss`] = relError([loss.loss], [r.loss_value]);
      const out = join(tmp, `${f.name}-${ex.mode}-${p}.npy`);
      await json(['grad', model, ...io, ...flag, '--out', out]);
      errs[`${p} grad`] = relError(npyOut(out), toOnnx(A.grad!, idx));
      await json(['hvp', model, ...io, ...flag, '--v', vFile, '--out', out]);
      errs[`${p} hvp`] = relError(npyOut(out), toOnnx(A.hvp!, idx));
      for (const [matrix, key] of [['ggn', 'ggn_v'], ['fisher', 'fisher_v']] as const) {
        const res = await json(['hvp', model, ...io, ...flag, '--v', vFile, '--matrix', matrix, '--out', out]);
        errs[`${p} ${matrix}·v`] = relError(npyOut(out), toOnnx(A[key]!, idx));
        // Batch statistics couple the samples: the CLI says so for GGN and Fisher.
        expect(res.warnings ?? [], `${f.name}/${ex.file} --matrix ${matrix} warnings`).toHaveLength(ex.mode === 'train' && ex.op_types.includes('BatchNormalization') ? 1 : 0);
      }
      await json(['diag', model, ...io, ...flag, '--out', out]);
      errs[`${p} ggn diagonal`] = relError(npyOut(out), toOnnx(A.ggn_diag!, idx));
      if (r.hessian_eigs_top3) {
        const s = await json(['spectrum', model, ...io, ...flag, '--top', '3', '--bottom', '1']);
        errs[`${p} hessian top-3`] = eigError(s.top, r.hessian_eigs_top3, r.hessian_spectral_radius!);
      }
      for (const [what, e] of Object.entries(errs)) {
        if (!what.startsWith(p)) continue;
        worst = Math.max(worst, e);
        expect(e, `CLI ${f.name}/${ex.file} ${what}`).toBeLessThanOrEqual(tol);
      }
    }
    row.status = 'pass';
    row.worst = worst.toExponential(1);
  });
});
