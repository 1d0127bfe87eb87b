/**
 * The analysis commands of the `hessian` CLI (info, loss, grad, hvp, hessian, ggn, diag,
 * spectrum) on an ONNX model and .npy data. Each returns the JSON the contract names plus, where
 * asked, an array for `--out`; main.ts prints and writes. Everything is library calls.
 *
 * Bad input fails before any computation where it can be known then: option combinations first,
 * then the output paths, then the files (names, shapes, NaN/±∞), each a HesseError whose message
 * is `<what is wrong>; <what to do>` naming the option, value or file.
 */
import { HesseError } from '../errors.js';
import { diagonal, eigenvalues, eigvalsh, spectralDensity, trace, type NativeOperator } from '../curvature.js';
import { init } from '../runtime.js';
import { objective, type LossName, type Objective, type ObjectiveData, type Progress } from '../objective.js';
import { objectiveAsync, type AsyncObjective } from '../pool/objective-async.js';
import { eigenvaluesAsync, spectralDensityAsync, traceAsync, diagonalAsync } from '../curvature-async.js';
import { loadOnnx, type OnnxModel } from '../io/onnx/index.js';
import type { IndexHostArray } from '../batches.js';
import { npyToTensor, parseNpy, type NpyArray } from '../io/npy.js';
import type { DType, Tensor } from '../tensor.js';

/** The curvature matrices the commands take with --matrix. */
export const MATRICES = ['hessian', 'ggn', 'fisher'] as const;
/** A curvature matrix by its --matrix name: the Hessian, the generalized Gauss–Newton matrix, the empirical Fisher. */
export type Matrix = (typeof MATRICES)[number];

/**
 * The options of the analysis commands, as commander parses them from the command line (one
 * field per `--option`; paths as given, resolved by the {@link Io}). Which options each command
 * takes, and which combinations are errors, is checked before any file is read.
 */
export interface CommonOptions {
  /** --x: path of the model input, a .npy of the ONNX input's shape (required). */
  x?: string;
  /** --y: path of the targets, a .npy (ce: int64 class indices [N]; mse, bce: floats of the output's shape); none for mean-output. */
  y?: string;
  /** --loss: 'mse', 'ce', 'bce' or 'mean-output' (PyTorch's mean reductions); required. */
  loss?: string;
  /** --wrt: differentiate with respect to the parameters (default) or the input. */
  wrt?: 'params' | 'input';
  /** --f64: compute in float64 (default float32). */
  f64?: boolean;
  /** --v: path of the direction of hvp, a .npy of P values (or of the input's shape with --wrt input). */
  v?: string;
  /** --top: how many of the largest eigenvalues spectrum reports (descending). */
  top?: number;
  /** --bottom: how many of the smallest eigenvalues spectrum reports (ascending). */
  bottom?: number;
  /** --trace: spectrum also estimates the trace (Hutch++). */
  trace?: boolean;
  /** --density: path of the SVG plot of the spectral density (SLQ) that spectrum writes. */
  density?: string;
  /** --vectors: spectrum also computes the eigenvectors (needs --out). */
  vectors?: boolean;
  /** --out: path of the .npy the result is written to (spectrum: the eigenvectors as [k, P]). */
  out?: string;
  /** --matrix: the matrix of hvp, diag and spectrum (default: ggn for diag, else hessian). */
  matrix?: Matrix;
  /** --seed: seed of the randomized estimates, an integer in [0, 2³² − 1] (default 0). */
  seed?: number;
  /** Probes of diag's stochastic estimate, for a matrix too large to form (default 100). */
  samples?: number;
  /** --buffer NAME (repeatable): float initializers that are buffers (register_buffer), not parameters. */
  buffer?: string[];
  /** --output: the graph output to analyze (default the first). */
  output?: string;
  /** --input NAME=FILE (repeatable): values for the graph's other inputs (a mask, …), each a .npy: constants of the model. */
  input?: string[];
  /**
   * --batch-size: samples per batch B (an integer ≥ 1; default all N). Every quantity is still
   * the mean over all N samples of --x, accumulated batch by batch; N need not be a multiple of B.
   */
  batchSize?: number;
  /** --class-axis: cross-entropy's class axis in the model output (NumPy-style; default inferred). */
  classAxis?: number;
  /**
   * --workers: compute with this many workers that share nothing (an integer ≥ 1; default 1:
   * in this thread). Refused for a model with batch statistics (shards would change it). Each holds a contiguous shard of --x; results are
   * the same mean over all N (up to rounding). Not with --wrt input.
   */
  workers?: number;
  /** --repeat: run the computation this many times (an integer ≥ 1, default 1); `seconds` is the median of one. */
  repeat?: number;
}

/** What a command produces: the JSON fields, and an array for --out. */
export interface Result {
  /** The fields printed (as `key: value` lines, or one JSON object with --json). */
  json: Record<string, unknown>;
  /** The array to write to --out, flat, row-major, in the dtype of the computation. */
  out?: Float32Array | Float64Array;
  /** The shape of `out` where it is not [length] (a dense matrix is [√length, √length]). */
  shape?: number[];
  /** An SVG document for --density. */
  svg?: string;
}

type ReadFile = (path: string) => Promise<Uint8Array>;

/** The file system as the commands see it. */
export interface Io {
  /** The bytes of the file at `path`; may reject with any error (the commands report it as INVALID_ARGUMENT naming the option and path). */
  read: ReadFile;
  /**
   * Resolves if a file can be written at `path` (given as option `option`) without touching any of
   * the `others` ([option, path]: the inputs and other outputs); else throws a HesseError saying why.
   */
  writable(path: string, option: string, others: (readonly [string, string])[]): Promise<void>;
}

const LOSS_NAMES: Record<string, LossName> = { mse: 'mse', ce: 'cross_entropy', bce: 'bce_with_logits', 'mean-output': 'mean_output' };
/** Dense matrices up to this size are decomposed for all eigenvalues (the contract's bound). */
const MAX_DENSE_EIGEN = 4096;

function bad(message: string): never {
  throw new HesseError('INVALID_ARGUMENT', message);
}

async function readFile(read: ReadFile, path: string, what: string): Promise<Uint8Array> {
  try {
    return await read(path);
  } catch (e) {
    return bad(`cannot read ${what} '${path}' (${(e as Error).message}); check the path`);
  }
}

/**
 * A .npy file as a tensor of `dtype`. Every value must be finite (a NaN or ±∞ would spread through
 * every derivative) and fit the dtype; the first that does not is named by its flat index.
 */
async function readTensor(read: ReadFile, path: string, what: string, dtype: DType): Promise<Tensor> {
  return npyToTensor(await readChecked(read, path, what, dtype), dtype);
}

/** A .npy file parsed, with the checks of {@link readTensor} (finite, fits the dtype). */
async function readChecked(read: ReadFile, path: string, what: string, dtype: DType): Promise<NpyArray> {
  const arr = parseNpy(await readFile(read, path, what), { name: `${what} '${path}'` });
  if (arr.dtype === 'float32' || arr.dtype === 'float64') {
    const d = arr.data;
    // The message is built only for the element that fails (x may hold many millions).
    const where = (i: number) => `${what} '${path}' (${arr.dtype} [${arr.shape.join(', ')}]): element ${i} (flat index${arr.shape.length > 1 ? `, at [${unravel(i, arr.shape).join(', ')}]` : ''})`;
    for (let i = 0; i < d.length; i++) {
      const v = d[i]!;
      if (!Number.isFinite(v)) bad(`${where(i)} is ${v}; replace NaN and ±∞ in the data (e.g. np.nan_to_num) before analyzing`);
      if (dtype === 'float32' && !Number.isFinite(Math.fround(v))) bad(`${where(i)} is ${v}, beyond the float32 range; pass --f64 to compute in float64`);
    }
  }
  return arr;
}

/**
 * A .npy file as a host array of `dtype` (checked as by {@link readTensor}) that never enters
 * wasm whole: float data are converted in JS; other dtypes (int64 labels) go through
 * npyToTensor's exact conversion.
 */
async function readHost(read: ReadFile, path: string, what: string, dtype: DType): Promise<{ data: Float32Array | Float64Array; shape: number[] }> {
  const arr = await readChecked(read, path, what, dtype);
  if (arr.dtype === 'float32' || arr.dtype === 'float64') {
    const data = arr.dtype === dtype ? arr.data : dtype === 'float64' ? Float64Array.from(arr.data) : Float32Array.from(arr.data);
    return { data, shape: [...arr.shape] };
  }
  const t = npyToTensor(arr, dtype);
  try {
    return { data: t.toArray(), shape: [...t.shape] };
  } finally {
    t.dispose();
  }
}

/**
 * --x of a model whose input is integer (token ids): exact indices, never floats of the dtype
 * (float32 holds integers exactly only to 2²⁴). int64 and int32 files as they are, uint8/bool
 * widened; a float file must hold integers (the objective checks each).
 */
async function readIndexHost(read: ReadFile, path: string, what: string, dtype: DType): Promise<IndexHostArray | { data: Float32Array | Float64Array; shape: number[] }> {
  const arr = await readChecked(read, path, what, dtype);
  if (arr.dtype === 'int64' || arr.dtype === 'int32') return { data: arr.data, shape: [...arr.shape] };
  if (arr.dtype === 'uint8' || arr.dtype === 'bool') return { data: Int32Array.from(arr.data), shape: [...arr.shape] };
  return { data: arr.data, shape: [...arr.shape] };
}

/** The row-major multi-index of flat index `i` in `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let a = shape.length - 1; a >= 0; a--) {
    idx[a] = i % shape[a]!;
    i = Math.floor(i / shape[a]!);
  }
  return idx;
}

/** How messages and plots name each matrix. */
const MATRIX_NAMES: Record<Matrix, string> = { hessian: 'Hessian', ggn: 'GGN', fisher: 'Fisher' };

/** The matrix a command works on: --matrix, else the command's default. */
const matrixOf = (command: string, o: CommonOptions): Matrix => o.matrix ?? (command === 'diag' ? 'ggn' : 'hessian');

/**
 * The checks that need no file: combinations of options that cannot work. Run first, so that a
 * mistyped command line fails at once.
 */
function checkOptions(command: string, o: CommonOptions): void {
  const loss = LOSS_NAMES[o.loss ?? ''] ?? bad(`--loss must be one of ${Object.keys(LOSS_NAMES).join(', ')}, got '${o.loss ?? ''}'; pick the loss the model was trained with`);
  if (!o.x) bad('--x is missing; pass the model input as --x X.npy');
  if (loss === 'mean_output' && o.y) bad('--loss mean-output takes no targets; drop --y');
  if (loss !== 'mean_output' && !o.y) bad(`--loss ${o.loss} needs targets; pass --y Y.npy (${o.loss === 'ce' ? 'class indices [N], int64' : "float targets of the output's shape"})`);
  const matrix = matrixOf(command, o);
  if (o.wrt === 'input' && (command === 'ggn' || matrix !== 'hessian')) {
    bad(`the ${MATRIX_NAMES[command === 'ggn' ? 'ggn' : matrix]} is defined for parameters, not for --wrt input; drop --wrt input, or use the Hessian`);
  }
  if (o.wrt === 'input' && command === 'spectrum') bad('spectrum works on parameters (its estimators run inside wasm on the parameter curvature); drop --wrt input, or use hessian --wrt input for the dense input Hessian');
  if (command === 'hvp' && !o.v) bad(`hvp needs a direction; pass --v V.npy (${o.wrt === 'input' ? "the input's shape" : 'P values, in parameter order'})`);
  if (command === 'spectrum') {
    if (!o.top && !o.bottom && !o.trace && !o.density) bad('spectrum: nothing to compute; ask for --top K, --bottom K, --trace and/or --density plot.svg');
    if (o.vectors && !o.top && !o.bottom) bad('--vectors needs eigenvalues to go with; add --top K and/or --bottom K');
    if (o.vectors && !o.out) bad('--vectors needs a file; add --out V.npy');
    if (o.out && !o.vectors) bad('spectrum --out writes eigenvectors; add --vectors (or drop --out)');
  }
}

/** The model, data and objective a command works on. */
async function setup(read: ReadFile, modelPath: string, o: CommonOptions): Promise<{ model: OnnxModel; obj: Objective; dtype: DType; xShape: number[]; loss: number; data: ObjectiveData; params: Float32Array | Float64Array }> {
  await init();
  const dtype0: DType = o.f64 ? 'float64' : 'float32';
  const inputs: Record<string, Tensor> = {};
  for (const spec of o.input ?? []) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) bad(`--input '${spec}' must be NAME=FILE.npy (a graph input and its values); e.g. --input mask=mask.npy`);
    const name = spec.slice(0, eq);
    if (name in inputs) bad(`--input ${name} is given twice; give each graph input once`);
    inputs[name] = await readTensor(read, spec.slice(eq + 1), `--input ${name}`, dtype0);
  }
  const model = await loadOnnx(await readFile(read, modelPath, 'the model'), { output: o.output, inputs, buffers: o.buffer });
  if (o.wrt === 'input' && model.input.elem !== 'float') {
    bad(`--wrt input: the model input '${model.input.name}' is ${model.input.elem === 'int' ? 'integer (indices such as token ids)' : model.input.elem}, and there is no derivative with respect to it; differentiate with respect to the parameters (drop --wrt input)`);
  }
  const dtype: DType = o.f64 ? 'float64' : 'float32';
  const loss = LOSS_NAMES[o.loss!]!;
  // Kept on the JS side (host arrays), so that with --batch-size only one batch is in wasm.
  const x = model.inputKind === 'index' ? await readIndexHost(read, o.x!, '--x', dtype) : await readHost(read, o.x!, '--x', dtype);
  const y = loss === 'mean_output' ? undefined : await readHost(read, o.y!, '--y', dtype);
  const n = x.shape[0] ?? 1;
  if (o.wrt === 'input' && o.batchSize !== undefined && o.batchSize < n) {
    bad(`--wrt input differentiates with respect to all of --x (${n} samples) at once, so it cannot be split into batches of ${o.batchSize}; drop --batch-size (or make it ≥ ${n})`);
  }
  const params = model.init({ dtype });
  const k = params.findIndex((v) => !Number.isFinite(v));
  if (k >= 0) {
    const b = model.blocks.find((blk) => k >= blk.offset && k < blk.offset + blk.size)!;
    bad(`the model's parameter '${b.name}' [${b.shape.join(', ')}] holds ${params[k]} at flat index ${k - b.offset}${dtype === 'float32' ? ' in float32' : ''}; re-export the model with finite weights`);
  }
  const obj = objective(model, loss, { x, y }, { params, wrt: o.wrt === 'input' ? 'input' : 'params', batchSize: o.batchSize, classAxis: o.classAxis });
  let value: number;
  try {
    // Runs the program once: labels out of range and an overflowing loss show up here, named.
    value = obj.loss();
    if (!Number.isFinite(value)) bad(`the loss is ${value} for this model and data${dtype === 'float32' ? ' in float32' : ''}; check the data's scale${dtype === 'float32' ? ', or pass --f64' : ''}`);
  } catch (e) {
    obj.dispose();
    if (e instanceof HesseError && /cross_entropy: label/.test(e.message)) bad(`--y '${o.y}': ${e.message}; ce takes integer class indices 0 ≤ label < C, C the model's number of outputs`);
    throw e;
  }
  return { model, obj, dtype, xShape: [...x.shape], loss: value, data: { x, y } as ObjectiveData, params };
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

/**
 * `hessian info MODEL.onnx`: inputs, outputs, parameters (P), buffers and constants, op types,
 * every unsupported op at once (type, nodes, why, with the opset), and the nodes that use batch
 * statistics. A model with unsupported ops is described too (`supported: false`).
 */
export async function info(read: ReadFile, modelPath: string): Promise<Result> {
  await init();
  const model = await loadOnnx(await readFile(read, modelPath, 'the model'), { inspect: true });
  return {
    json: {
      inputs: model.inputs,
      outputs: model.outputs,
      parameters: model.blocks.map((b) => ({ name: b.name, shape: b.shape })),
      params: model.size,
      buffers: model.constants.filter((c) => c.role === 'buffer').map((c) => ({ name: c.name, shape: c.shape })),
      constants: model.constants.filter((c) => c.role === 'constant').map((c) => ({ name: c.name, shape: c.shape })),
      opset: model.opset,
      op_types: model.opTypes,
      supported: model.unsupported.length === 0,
      unsupported: model.unsupported.map((u) => ({ op: u.op, nodes: u.nodes, why: u.why, opset: model.opset })),
      batch_statistics: model.batchStatistics,
    },
  };
}

/**
 * The warning for curvatures that assume per-sample loss terms (GGN, Fisher) on a model whose
 * BatchNorm normalizes with batch statistics (a training-mode export), or none.
 */
function batchStatisticsWarning(model: OnnxModel, matrix: string): string[] {
  if (!model.batchStatistics.length || matrix === 'hessian') return [];
  const nodes = model.batchStatistics.map((n) => `'${n}'`).join(', ');
  return [
    `the model normalizes with batch statistics (training-mode BatchNormalization: ${nodes}), so the samples of a batch are coupled and the per-sample assumptions of the ${MATRIX_NAMES[matrix as Matrix] ?? matrix} do not hold (it is computed as defined on the batch's output, but is not a sum of per-sample terms); export the model in eval mode (model.eval(), training=TrainingMode.EVAL) for the usual ${MATRIX_NAMES[matrix as Matrix] ?? matrix}`,
  ];
}

/** loss | grad | hvp | hessian | ggn | diag | spectrum */
export async function analyze(command: string, io: Io, modelPath: string, o: CommonOptions, progress: Progress, allEigenvalues: AllEigenvalues = eigvalsh): Promise<Result> {
  checkOptions(command, o);
  const named: [string, string | undefined][] = [['the model', modelPath], ['--x', o.x], ['--y', o.y], ['--v', o.v], ['--out', o.out], ['--density', o.density]];
  const files = named.filter((f): f is [string, string] => f[1] !== undefined);
  for (const [option, path] of files) {
    if (option === '--out' || option === '--density') await io.writable(path, option, files.filter(([other]) => other !== option));
  }
  const read = io.read;
  const { model, obj, dtype, xShape, loss, data, params } = await setup(read, modelPath, o);
  let par: AsyncObjective | undefined;
  // Vectors over the input (--wrt input) are written in the input's shape, as PyTorch's x.grad.
  const shape = o.wrt === 'input' ? xShape : undefined;
  try {
    const warnings = batchStatisticsWarning(model, command === 'ggn' ? 'ggn' : command === 'loss' || command === 'grad' || command === 'hessian' ? 'hessian' : matrixOf(command, o));
    if (model.batchStatistics.length && obj.batchSize < obj.samples) {
      warnings.push(`the model normalizes with batch statistics and --batch-size ${obj.batchSize} splits the ${obj.samples} samples: each batch is normalized with its own statistics, so every quantity is the mean over batches of a batch-size-dependent function, not the model on all ${obj.samples} samples at once`);
    }
    const base = { loss, params: model.size, samples: obj.samples, batch_size: obj.batchSize, ...(warnings.length ? { warnings } : {}) };
    // Files are read once, before anything is timed.
    const v = command === 'hvp' ? await readTensor(read, o.v!, '--v', dtype) : undefined;
    try {
      const n = obj.size;
      if (v && v.size !== n) bad(`--v has ${v.size} values but ${o.wrt === 'input' ? 'the input has' : 'the model has P ='} ${n}; pass ${o.wrt === 'input' ? "an array of the input's shape" : 'one value per parameter, in the order of hessian info'}`);
      const workers = o.wrt === 'input' ? 1 : (o.workers ?? 1);
      if (workers > 1 && model.batchStatistics.length) {
        bad(`--workers ${workers} splits --x among workers, but the model normalizes with batch statistics (training-mode BatchNormalization: ${model.batchStatistics.map((b) => `'${b}'`).join(', ')}), so each shard would be normalized with its own statistics and every result would change; use --workers 1, or export the model in eval mode`);
      }
      if (workers > 1 && command !== 'loss') {
        progress(0, 1, `starting ${workers} workers`);
        par = await objectiveAsync(model, LOSS_NAMES[o.loss!]!, data, { params, batchSize: o.batchSize, classAxis: o.classAxis, workers });
        progress(1, 1, `starting ${workers} workers`);
      }
      return await timed(o.repeat ?? 1, () => compute(command, o, obj, par, base, dtype, shape, v, progress, allEigenvalues));
    } finally {
      v?.dispose();
    }
  } finally {
    obj.dispose();
    await par?.dispose();
  }
}

/** The n × n matrix C by products with the unit vectors, 64 columns per call to the workers (C is symmetric: row i = C·eᵢ). */
async function denseByProducts(par: AsyncObjective, matrix: Matrix, n: number, dtype: DType, progress: Progress): Promise<Float32Array | Float64Array> {
  const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
  const out = new Ctor(n * n);
  const chunk = 64;
  for (let c0 = 0; c0 < n; c0 += chunk) {
    const k = Math.min(chunk, n - c0);
    const e = new Ctor(k * n);
    for (let i = 0; i < k; i++) e[i * n + c0 + i] = 1;
    out.set(await par.curvatureProducts(matrix, e, k), c0 * n);
    progress(c0 + k, n, `${MATRIX_NAMES[matrix]} columns`);
  }
  return out;
}

/**
 * Runs `work` `repeat` times and adds `seconds`, the median wall time of one run (loading the
 * model and data excluded), to its JSON. The last run's result is returned; every run computes
 * the same thing (seeds included), so it stands for all of them.
 */
async function timed(repeat: number, work: () => Promise<Result>): Promise<Result> {
  const times: number[] = [];
  let result: Result | undefined;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    result = await work();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const seconds = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  return { ...result!, json: { ...result!.json, seconds } };
}

/** The computation of one analysis command on a set-up objective (what `--repeat` times). */
async function compute(
  command: string,
  o: CommonOptions,
  obj: Objective,
  par: AsyncObjective | undefined,
  base: Record<string, unknown>,
  dtype: DType,
  shape: number[] | undefined,
  v: Tensor | undefined,
  progress: Progress,
  allEigenvalues: AllEigenvalues,
): Promise<Result> {
  const n = obj.size;
  switch (command) {
    case 'loss':
      return { json: base };
    case 'grad': {
      const g = par ? await par.grad() : obj.grad();
      return { json: { ...base, grad_norm: norm(g) }, out: g, shape };
    }
    case 'hvp': {
      const matrix = matrixOf(command, o);
      const cv = par ? await par.curvatureProducts(matrix, v!.toArray(), 1) : obj.curvatureProducts(matrix, v!.toArray(), 1);
      return { json: { ...base, matrix, product_norm: norm(cv) }, out: cv, shape };
    }
    case 'hessian':
    case 'ggn': {
      const bytes = n * n * (dtype === 'float64' ? 8 : 4);
      if (bytes > 512 * 2 ** 20) {
        bad(`a dense ${n}×${n} ${command} needs ${(bytes / 2 ** 20).toFixed(0)} MiB; use 'hessian spectrum' (--top/--bottom/--trace) instead`);
      }
      const m = par ? await denseByProducts(par, command as Matrix, n, dtype, progress) : obj.dense(command, { maxBytes: Infinity, onProgress: progress });
      return { json: { ...base, ...(await denseSummary(command === 'ggn' ? 'GGN' : 'Hessian', m, n, progress, allEigenvalues)) }, out: m };
    }
    case 'diag': {
      const matrix = matrixOf(command, o);
      let d: Float32Array | Float64Array;
      let exact = true;
      if (matrix === 'ggn') {
        // mean-output: the loss is linear in the output, Hℓ = 0, so G = 0.
        d = o.loss === 'mean-output' ? (dtype === 'float64' ? new Float64Array(n) : new Float32Array(n)) : obj.gaussNewton('diagonal');
      } else if (n <= MAX_DENSE_EIGEN) {
        const m = par ? await denseByProducts(par, matrix, n, dtype, progress) : obj.dense(matrix, { maxBytes: Infinity, onProgress: progress });
        d = m.filter((_, i) => i % (n + 1) === 0); // the entries (i, i), in the matrix's dtype
      } else {
        const opts = { samples: o.samples ?? 100, seed: o.seed ?? 0 };
        const est = (par ? await diagonalAsync(par.operator(matrix), opts) : diagonal(obj.operator(matrix), opts)).diagonal;
        d = dtype === 'float64' ? est : Float32Array.from(est);
        exact = false;
      }
      return { json: { ...base, diag_sum: Array.from(d).reduce((s, v) => s + v, 0), matrix, exact }, out: d, shape };
    }
    case 'spectrum': {
      const matrix = matrixOf(command, o);
      const op = par ? par.operator(matrix) : obj.operator(matrix);
      const seed = o.seed ?? 0;
      const json: Record<string, unknown> = { ...base, matrix };
      let products = 0;
      const top = o.top ?? 0;
      const bottom = o.bottom ?? 0;
      for (const [flag, k] of [['--top', top], ['--bottom', bottom]] as const) {
        if (k > n) bad(`${flag} ${k} asks for more eigenvalues than the ${n} there are (P = ${n}); ask for at most ${n}`);
      }
      // Eigenvectors, one row each: the top ones (descending), then the bottom ones (ascending).
      const vectors: Float64Array[] = [];
      let converged = true;
      for (const [key, which, k] of [['top', 'largest', top], ['bottom', 'smallest', bottom]] as const) {
        if (k === 0) continue;
        const r = par ? await eigenvaluesAsync(op, k, { which, seed, vectors: o.vectors }) : eigenvalues(op as NativeOperator, k, { which, seed, vectors: o.vectors });
        json[key] = Array.from(r.values);
        products += r.products;
        converged &&= r.converged;
        if (r.vectors) vectors.push(r.vectors);
      }
      if (top || bottom) json.converged = converged;
      if (o.trace) {
        const topts = { method: 'hutch++', samples: Math.min(3 * n, 300), seed } as const;
        const t = par ? await traceAsync(op, topts) : trace(op as NativeOperator, topts);
        json.trace = t.trace;
        products += t.products;
      }
      let svg: string | undefined;
      if (o.density) {
        const dopts = { probes: 10, steps: Math.min(n, 80), seed };
        const d = par ? await spectralDensityAsync(op, dopts) : spectralDensity(op as NativeOperator, dopts);
        products += d.products;
        svg = densitySvg(d.grid, d.density, `${MATRIX_NAMES[matrix]} spectral density (SLQ, ${d.products} products)`);
      }
      json.products = products;
      if (!o.vectors) return { json, svg };
      const rows = top + bottom;
      const all = dtype === 'float64' ? new Float64Array(rows * n) : new Float32Array(rows * n);
      let at = 0;
      for (const v of vectors) {
        all.set(v, at);
        at += v.length;
      }
      return { json, svg, out: all, shape: [rows, n] };
    }
    default:
      return bad(`unknown command '${command}'`);
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
