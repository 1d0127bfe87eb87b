/**
 * The analysis commands of the `hesse` CLI (info, loss, grad, hvp, hessian, ggn, diag,
 * spectrum) on an ONNX model and .npy data. Each returns the JSON the contract names plus, where
 * asked, an array for `--out`; main.ts prints and writes. Everything is library calls.
 */
import { HesseError } from '../errors.js';
import { diagonal, eigenvalues, eigvalsh, spectralDensity, trace } from '../curvature.js';
import { init } from '../runtime.js';
import { objective, type LossName, type Objective, type Progress } from '../objective.js';
import { loadOnnx, type OnnxModel } from '../io/onnx.js';
import { npyToTensor, parseNpy } from '../io/npy.js';
import type { DType, Tensor } from '../tensor.js';

export interface CommonOptions {
  x?: string;
  y?: string;
  loss?: string;
  wrt?: 'params' | 'input';
  f64?: boolean;
  v?: string;
  top?: number;
  bottom?: number;
  trace?: boolean;
  density?: string;
  matrix?: 'hessian' | 'ggn';
  seed?: number;
  samples?: number;
}

/** What a command produces: the JSON fields, and an array for --out. */
export interface Result {
  json: Record<string, unknown>;
  out?: Float32Array | Float64Array;
  /** An SVG document for --density. */
  svg?: string;
}

type ReadFile = (path: string) => Promise<Uint8Array>;

const LOSS_NAMES: Record<string, LossName> = { mse: 'mse', ce: 'cross_entropy', bce: 'bce_with_logits', 'mean-output': 'mean_output' };
/** Dense matrices up to this size are decomposed for all eigenvalues (the contract's bound). */
const MAX_DENSE_EIGEN = 4096;

function bad(message: string): never {
  throw new HesseError('INVALID_ARGUMENT', message);
}

async function readTensor(read: ReadFile, path: string, what: string, dtype: DType): Promise<Tensor> {
  let bytes: Uint8Array;
  try {
    bytes = await read(path);
  } catch (e) {
    return bad(`cannot read ${what} '${path}': ${(e as Error).message}`);
  }
  return npyToTensor(parseNpy(bytes), dtype);
}

/** The model, data and objective a command works on. */
async function setup(read: ReadFile, modelPath: string, o: CommonOptions): Promise<{ model: OnnxModel; obj: Objective; dtype: DType }> {
  await init();
  let bytes: Uint8Array;
  try {
    bytes = await read(modelPath);
  } catch (e) {
    return bad(`cannot read the model '${modelPath}': ${(e as Error).message}`);
  }
  const model = await loadOnnx(bytes);
  const dtype: DType = o.f64 ? 'float64' : 'float32';
  if (!o.x) bad('--x X.npy is required (the model input)');
  const loss = LOSS_NAMES[o.loss ?? ''] ?? bad(`--loss must be one of ${Object.keys(LOSS_NAMES).join(', ')}, got '${o.loss ?? ''}'`);
  const x = await readTensor(read, o.x, '--x', dtype);
  let y: Tensor | undefined;
  if (loss !== 'mean_output') {
    if (!o.y) bad(`--loss ${o.loss} needs --y Y.npy (${o.loss === 'ce' ? 'int64 class indices [N]' : "float targets of the output's shape"})`);
    y = await readTensor(read, o.y, '--y', dtype);
  } else if (o.y) bad('--loss mean-output takes no --y');
  const obj = objective(model, loss, { x, y }, { params: model.init({ dtype }), wrt: o.wrt === 'input' ? 'input' : 'params' });
  return { model, obj, dtype };
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, a) => s + a * a, 0));

/** All eigenvalues of a dense symmetric matrix; the CLI passes one that runs in a worker thread. */
export type AllEigenvalues = (a: Float64Array, n: number) => Float64Array | Promise<Float64Array>;

async function denseSummary(what: string, m: Float32Array | Float64Array, n: number, progress: Progress, allEigenvalues: AllEigenvalues): Promise<Record<string, unknown>> {
  const a = Float64Array.from(m);
  const at = a.findIndex((v) => !Number.isFinite(v));
  if (at >= 0) {
    bad(`the ${what} has a non-finite entry [${Math.floor(at / n)}][${at % n}] = ${a[at]}: the loss or its derivatives are not finite at these parameters and data; check --x and --y for NaN or ±Infinity`);
  }
  let tr = 0;
  let fro = 0;
  for (let i = 0; i < n; i++) tr += a[i * n + i]!;
  for (let k = 0; k < a.length; k++) fro += a[k]! * a[k]!; // indexed: for-of took 0.6 s at n = 4096
  const out: Record<string, unknown> = { trace: tr, frobenius: Math.sqrt(fro) };
  if (n <= MAX_DENSE_EIGEN) {
    // Built row by row (row i = C·eᵢ), the matrix is symmetric only up to rounding, which in
    // float32 can pass eigvalsh's symmetry check by a hair or not at all: decompose (C + Cᵀ)/2.
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < i; j++) a[i * n + j] = a[j * n + i] = (a[i * n + j]! + a[j * n + i]!) / 2;
    }
    // One wasm call: the bar shows the phase before it and completes after it.
    const phase = `eigendecomposition n=${n}`;
    progress(0, 1, phase);
    out.eigenvalues = Array.from(await allEigenvalues(a, n)).reverse();
    progress(1, 1, phase);
  }
  return out;
}

/** `hesse info MODEL.onnx` */
export async function info(read: ReadFile, modelPath: string): Promise<Result> {
  await init();
  const model = await loadOnnx(await read(modelPath).catch((e: Error) => bad(`cannot read the model '${modelPath}': ${e.message}`)));
  return {
    json: {
      inputs: model.inputs,
      outputs: model.outputs,
      parameters: model.blocks.map((b) => ({ name: b.name, shape: b.shape })),
      params: model.size,
      opset: model.opset,
      op_types: model.opTypes,
    },
  };
}

/** loss | grad | hvp | hessian | ggn | diag | spectrum */
export async function analyze(command: string, read: ReadFile, modelPath: string, o: CommonOptions, progress: Progress, allEigenvalues: AllEigenvalues = eigvalsh): Promise<Result> {
  const { model, obj, dtype } = await setup(read, modelPath, o);
  try {
    const base = { loss: obj.loss(), params: model.size };
    const n = obj.size;
    switch (command) {
      case 'loss':
        return { json: base };
      case 'grad': {
        const g = obj.grad();
        return { json: { ...base, grad_norm: norm(g) }, out: g };
      }
      case 'hvp': {
        if (!o.v) bad(`hvp needs --v V.npy (${o.wrt === 'input' ? "the input's shape" : `length P = ${n}, parameter order`})`);
        const v = await readTensor(read, o.v, '--v', dtype);
        if (v.size !== n) bad(`--v has ${v.size} values but ${o.wrt === 'input' ? 'the input has' : 'the model has P ='} ${n}`);
        const hv = obj.hvp(v.toArray());
        return { json: { ...base, hvp_norm: norm(hv) }, out: hv };
      }
      case 'hessian':
      case 'ggn': {
        if (command === 'ggn' && o.wrt === 'input') bad('the GGN is defined for parameters; drop --wrt input');
        const bytes = n * n * (dtype === 'float64' ? 8 : 4);
        if (bytes > 512 * 2 ** 20) {
          bad(`a dense ${n}×${n} ${command} needs ${(bytes / 2 ** 20).toFixed(0)} MiB; use 'hesse spectrum' (--top/--bottom/--trace) instead`);
        }
        const m = obj.dense(command, { maxBytes: Infinity, onProgress: progress });
        return { json: { ...base, ...(await denseSummary(command === 'ggn' ? 'GGN' : 'Hessian', m, n, progress, allEigenvalues)) }, out: m };
      }
      case 'diag': {
        const matrix = o.matrix ?? 'ggn';
        let d: Float32Array | Float64Array;
        if (matrix === 'ggn') {
          if (o.wrt === 'input') bad('the GGN is defined for parameters; use --matrix hessian with --wrt input');
          d = o.loss === 'mean-output' ? new Float64Array(n) : obj.gaussNewton('diagonal');
        } else if (n <= MAX_DENSE_EIGEN) {
          const h = obj.dense('hessian', { maxBytes: Infinity, onProgress: progress });
          d = Float64Array.from({ length: n }, (_, i) => h[i * n + i]!);
        } else {
          d = diagonal(obj.operator('hessian'), { samples: o.samples ?? 100, seed: o.seed ?? 0 }).diagonal;
        }
        return { json: { ...base, diag_sum: Array.from(d).reduce((s, v) => s + v, 0), matrix }, out: d };
      }
      case 'spectrum': {
        const matrix = o.matrix ?? 'hessian';
        const op = obj.operator(matrix);
        const seed = o.seed ?? 0;
        const json: Record<string, unknown> = { ...base, matrix };
        let products = 0;
        const top = o.top ?? 0;
        const bottom = o.bottom ?? 0;
        if (top > 0) {
          const r = eigenvalues(op, top, { which: 'largest', seed });
          json.top = Array.from(r.values);
          products += r.products;
        }
        if (bottom > 0) {
          const r = eigenvalues(op, bottom, { which: 'smallest', seed });
          json.bottom = Array.from(r.values);
          products += r.products;
        }
        if (o.trace) {
          const t = trace(op, { method: 'hutch++', samples: Math.min(3 * n, 300), seed });
          json.trace = t.trace;
          products += t.products;
        }
        let svg: string | undefined;
        if (o.density) {
          const d = spectralDensity(op, { probes: 10, steps: Math.min(n, 80), seed });
          products += d.products;
          svg = densitySvg(d.grid, d.density, `${matrix === 'ggn' ? 'GGN' : 'Hessian'} spectral density (SLQ, ${d.products} products)`);
        }
        json.hvps = products;
        return { json, svg };
      }
      default:
        return bad(`unknown command '${command}'`);
    }
  } finally {
    obj.dispose();
  }
}

/**
 * A self-contained SVG plot of a spectral density: log scale (as PyHessian plots them: the bulk
 * near zero would hide the outliers otherwise), floored at 1e-6 of the peak; axes, ticks, title.
 */
export function densitySvg(grid: Float64Array, density: Float64Array, title: string): string {
  const [w, h, m] = [640, 360, 56];
  const x0 = grid[0]!;
  const x1 = grid[grid.length - 1]!;
  const peak = Math.max(...density) || 1;
  const floor = Math.log10(peak * 1e-6);
  const top = Math.log10(peak);
  const ly = (v: number) => Math.max(floor, Math.log10(Math.max(v, 1e-300)));
  const sx = (v: number) => m + ((v - x0) / (x1 - x0 || 1)) * (w - 2 * m);
  const sy = (l: number) => h - m - ((l - floor) / (top - floor || 1)) * (h - 2 * m);
  const path = Array.from(grid, (g, i) => `${i ? 'L' : 'M'}${sx(g).toFixed(2)},${sy(ly(density[i]!)).toFixed(2)}`).join('');
  const xticks = Array.from({ length: 5 }, (_, i) => x0 + ((x1 - x0) * i) / 4);
  const yticks = Array.from({ length: 7 }, (_, i) => floor + i).filter((l) => l <= top + 1e-9);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="24" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${m}" y1="${h - m}" x2="${w - m}" y2="${h - m}" stroke="black"/>`,
    `<line x1="${m}" y1="${m}" x2="${m}" y2="${h - m}" stroke="black"/>`,
    ...xticks.map((t) => `<text x="${sx(t).toFixed(1)}" y="${h - m + 16}" text-anchor="middle">${t.toPrecision(3)}</text>`),
    ...yticks.map((l) => `<text x="${m - 6}" y="${(sy(l) + 4).toFixed(1)}" text-anchor="end">1e${Math.round(l)}</text>`),
    `<text x="${w / 2}" y="${h - 12}" text-anchor="middle">eigenvalue</text>`,
    `<text x="14" y="${h / 2}" transform="rotate(-90 14 ${h / 2})" text-anchor="middle">density (log scale)</text>`,
    `<path d="${path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`,
    '</svg>',
  ].join('\n');
}
