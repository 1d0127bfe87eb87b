/**
 * A training objective L(θ) = loss(model(x; θ), y), compiled once into one program; loss,
 * gradient, Hessian-vector products and the Hessian all reuse it. Data are staged in wasm once;
 * each call copies only the parameters (and directions) it is given.
 *
 * With `batchSize` B < N the data stay on the JS side and the objective is the exact mean over
 * all N samples, accumulated batch by batch (ts/batches.ts): one compiled program per distinct
 * batch size (B, and the short last batch), each batch staged in turn and its results weighted
 * Bᵢ/N. Batching is this orchestration layer only; each per-batch call is the unbatched one.
 *
 * The objective is generic in its dtype D (that of x and y): a float64 objective's loss, gradient
 * and products are Float64Array, a float32 one's Float32Array. Directions and points may be given
 * in either precision and are converted to D.
 */
import { call, HesseError } from './errors.js';
import type { Model } from './nn.js';
import type { Tensor, DType, TypedArrayOf } from './tensor.js';
import { Graph, traced, type IndexSym } from './trace.js';
import { u32, type NativeOperator, type Vector } from './curvature.js';
import { Kfac } from './kfac.js';
import { batchSeed, hostOf, indexHostOf, plan, rowsOf, WeightedSum, type Batch, type Host, type HostArray, type IndexHost, type IndexHostArray } from './batches.js';
import { core } from './runtime.js';
import type { RawCurvature, RawKfac } from './wasm/hesse.js';
import { denseFromProducts } from './transforms.js';
import * as check from './validate.js';

/**
 * The data an objective is built on: inputs x [N, …] and targets y (omitted for 'mean_output'),
 * one dtype; each a Tensor or a {@link HostArray} `{ data, shape }` kept on the JS side (with
 * `batchSize`, only one batch at a time is then in wasm).
 */
export interface ObjectiveData<D extends DType = DType> {
  /**
   * Inputs, samples first: [N, …]. For a model whose input is integer (`inputKind: 'index'`:
   * token ids), x is staged as exact indices: an {@link IndexHostArray} (Int32Array or
   * BigInt64Array), or floats holding integers (below 2²⁴ in float32).
   */
  x: Tensor<D> | HostArray<D> | IndexHostArray;
  /**
   * Targets: class indices (as numbers) for cross-entropy, [N] for an output [N, C], [N, d1, …]
   * for [N, C, d1, …] (PyTorch's class axis 1) or for [N, d1, …, C] (classes last, e.g.
   * per-token logits [N, T, C]); else shaped like the output. x's dtype (D is inferred from x).
   */
  y?: Tensor<NoInfer<D>> | HostArray<NoInfer<D>>;
}

/**
 * A curvature matrix of the objective: the Hessian H; the generalized Gauss–Newton
 * G = Jᵀ Hℓ J (J the Jacobian of the network output, Hℓ the loss Hessian in output space; PSD for
 * MSE, cross-entropy and BCE, where it equals the Fisher); the empirical Fisher
 * (1/R) Σᵣ ∇ℓᵣ ∇ℓᵣᵀ from per-sample gradients with the true labels; the Monte Carlo Fisher, with
 * `samples` (an integer ≥ 1) labels per sample drawn from the model's predictive distribution (an
 * unbiased estimate of G; reproducible by `seed`, an integer ≥ 0, default 0; with `batchSize`
 * B < N each batch draws from its own seed, so the estimate depends on B). Anything else is an
 * INVALID_ARGUMENT error. A sample, for the Fisher and Monte Carlo, is a position of the output:
 * a row of [N, C]; each of the N·T rows of per-token logits [N, T, C] (or [N, C, T]) and of an
 * MSE output [N, T, D] (curvlinops' convention; ARCHITECTURE.md, "A sample").
 */
export type Curvature = 'hessian' | 'ggn' | 'fisher' | { mcFisher: { samples: number; seed?: number } };
/** Losses (PyTorch's mean reductions); 'ce' and 'bce' are aliases; 'mean_output' is the mean of the model's output, with no targets. */
export type LossName = 'mse' | 'cross_entropy' | 'bce_with_logits' | 'ce' | 'bce' | 'mean_output';
type LossKind = 'mse' | 'cross_entropy' | 'bce_with_logits' | 'mean_output';
const LOSSES: Record<LossName, LossKind> = {
  mse: 'mse', cross_entropy: 'cross_entropy', ce: 'cross_entropy', bce_with_logits: 'bce_with_logits', bce: 'bce_with_logits', mean_output: 'mean_output',
};
const LOSS_NAMES = Object.keys(LOSSES) as LossName[];
const MiB = 2 ** 20;

/** `maxBytes`: a byte count > 0, default 512 MiB; Infinity lifts the limit (wasm's 4 GiB still applies). */
function byteLimit(value: number | undefined, what: string): number {
  return value === Infinity ? Infinity : check.positiveNumber(value ?? 512 * MiB, what);
}

/** Options of {@link objective}. */
export interface ObjectiveOptions {
  /** Initial parameters (flat, the model's order, length P; converted to the objective's dtype); default `model.init({ seed, dtype })`. */
  params?: Vector;
  /** Seed of the default initialization, an integer ≥ 0 (default 0). */
  seed?: number;
  /** Differentiate with respect to the parameters ('params', the default) or the input x ('input'). */
  wrt?: 'params' | 'input';
  /** Check parameters, data and directions for NaN/±∞ and throw instead of propagating them (default false). */
  checkFinite?: boolean;
  /**
   * Samples per batch B, an integer ≥ 1 (default N: one batch). With B < N every quantity is
   * still the exact mean over all N samples, accumulated batch by batch (weights Bᵢ/N; the last
   * batch may be short), with the intermediates of one batch in wasm at a time. Monte Carlo
   * draws (`mcFisher`, `monteCarlo`, K-FAC 'mc') are seeded per batch, so they depend on B.
   * B ≥ N is one batch. Not with wrt 'input' (which differentiates all of x at once) unless B ≥ N.
   */
  batchSize?: number;
  /**
   * Cross-entropy only: the class axis of the model's output (NumPy-style, negative from the end;
   * not the batch axis 0). Default: inferred from the shapes, 1 for [N, C, d1, …] with labels
   * [N, d1, …] (PyTorch's), the last for [N, d1, …, C]; needed only where both fit ([N, K, K]
   * with labels [N, K] is refused as ambiguous without it).
   */
  classAxis?: number;
}

/** Options of the dense curvature matrices ({@link Objective.dense}, `hessian`, `ggn`). */
export interface DenseOptions {
  /** Refuse past this many bytes for the result (> 0, Infinity for no limit; default 512 MiB). */
  maxBytes?: number;
  /** Columns (directions) per pass, an integer ≥ 1 (default 64). */
  chunk?: number;
  /** Called after each pass: `done` of `total` columns, in the named phase. */
  onProgress?: Progress;
}

/** Options of {@link Objective.gaussNewton}. */
export interface GaussNewtonOptions {
  /** Refuse past this many bytes of working memory (> 0, Infinity for no limit; default 512 MiB). */
  maxBytes?: number;
  /** Directions per pass when building the factor, an integer ≥ 1 (default 64). */
  chunk?: number;
  /** The Monte Carlo estimate instead of the exact matrix: `samples` (≥ 1) labels per sample drawn from the model, `seed` (≥ 0, default 0). */
  monteCarlo?: { samples: number; seed?: number };
  /** 'f64': accumulate the SYRK in float64 for a float32 objective (the result is then a Float64Array). */
  accumulate?: 'f64';
}

/** Options of {@link Objective.kfac}. */
export interface KfacOptions {
  /** 'exact' (default: the loss Hessian's factor, C backward vectors per sample) or 'mc' (`samples` labels drawn from the model). */
  variant?: 'exact' | 'mc';
  /** Labels drawn per sample for 'mc', an integer ≥ 1 (default 1). */
  samples?: number;
  /** Seed of the draws for 'mc', an integer ≥ 0 (default 0). */
  seed?: number;
}

/** Progress of a long computation: `done` of `total` units of the phase named `phase`. */
export type Progress = (done: number, total: number, phase: string) => void;

/** One compiled program, for batches of one size: the loss at node `out`, the network output at `f`. */
interface BatchProgram {
  graph: Graph;
  /** x as an index input (an integer-input model), else undefined (x is float input 0). */
  xIndex: IndexSym | undefined;
  out: number;
  f: number;
  /** The index of the batch whose data are staged in it (−1: none, or x replaced by a point). */
  staged: number;
}

/** What a dense build is called in progress reports, by wasm curvature name. */
/** A checked {@link Curvature}, as the objective's runs name it (wasm's RawCurvature is made from it per batch). */
type CurvatureSpec = { name: 'hessian' | 'ggn' | 'fisher' } | { name: 'mc-fisher'; samples: number; seed: number };
const HESSIAN: CurvatureSpec = { name: 'hessian' };

/** What one run of the objective computes (see `#run`). */
type ObjectiveRun = { mode: 'value' } | { mode: 'grad' } | { mode: 'hvp'; tangents: Float32Array | Float64Array; k: number; curvature: CurvatureSpec };

const DENSE_NAMES: Record<CurvatureSpec['name'], string> = { hessian: 'Hessian (HVPs)', ggn: 'GGN (GGN products)', fisher: 'Fisher (Fisher products)', 'mc-fisher': 'Monte Carlo Fisher (products)' };

/**
 * L(θ) = loss(model(x; θ), y) with every derivative of it from one compiled program. Every method
 * that takes `at` evaluates there (the parameters, length P, or x for wrt 'input'), else at the
 * current point; `at` and directions may be float32 or float64 and are converted to D. Bad
 * arguments throw a HesseError (LENGTH_MISMATCH naming the expected and given lengths,
 * INVALID_ARGUMENT naming the option) and leave the objective as it was. Parameters are one flat
 * vector in PyTorch's named_parameters order (layer by layer, weight then bias, row-major; linear
 * weight [out, in]), so gradients and products compare 1:1 with PyTorch's.
 *
 * @typeParam D the dtype of the data, hence of every array the objective returns.
 */
export class Objective<D extends DType = DType> implements Disposable {
  /** The dtype of the data and of every array returned. */
  readonly dtype: D;
  /** Length of the variable: P for wrt 'params', x.size for wrt 'input'. */
  readonly size: number;
  /** The program of the first (full-size) batch; `#programs` has one per distinct batch size. */
  readonly #graph: Graph;
  readonly #loss: LossKind;
  /** Node of the network output f(x; θ) in `#graph`, where Gauss–Newton curvature splits J and Hℓ. */
  readonly #f: number;
  readonly #programs = new Map<number, BatchProgram>();
  readonly #batches: readonly Batch[];
  readonly #wrt: number;
  readonly #check: boolean;
  /** Cross-entropy's class axis as the user gave it (checked against the output's rank when built). */
  readonly #classAxis: number | undefined;
  readonly #xShape: readonly number[];
  readonly #yShape: readonly number[] | undefined;
  #x!: Host | IndexHost;
  #y: Host | undefined;
  #params!: TypedArrayOf<D>;

  /**
   * Compiles the objective (see {@link objective}).
   * @throws HesseError INVALID_ARGUMENT for an unknown loss or option, targets given to (or missing
   *   from) a loss, a bad batchSize, or wrt 'input' with batchSize < N; DTYPE_MISMATCH if x and y
   *   differ in dtype; SHAPE_MISMATCH if their sample counts differ or the model does not fit x
   *   (or a batch of it: a model whose batch dimension is fixed); LENGTH_MISMATCH for `params` not P long.
   */
  constructor(
    /** The model whose parameters θ the objective differentiates. */
    readonly model: Model,
    loss: LossName,
    data: ObjectiveData<D>,
    options: ObjectiveOptions = {},
  ) {
    const opts = check.options(options, 'objective', ['params', 'seed', 'wrt', 'checkFinite', 'batchSize', 'classAxis']);
    const kind = LOSSES[check.oneOf(loss, 'objective: loss', LOSS_NAMES)];
    const wrt = check.oneOf(opts.wrt ?? 'params', 'objective: wrt', ['params', 'input']);
    const seed = check.seed(opts.seed ?? 0, 'objective: seed');
    this.#classAxis = opts.classAxis;
    const y = data.y === undefined ? undefined : hostOf(data.y, 'objective: y');
    const x = this.#hostX(model, data.x, 'objective: x');
    if (model.inputKind === 'index' && wrt === 'input') {
      throw new HesseError('INVALID_ARGUMENT', `objective: wrt 'input': the model's input is integer (indices such as token ids), which has no derivative; use wrt 'params'`);
    }
    if (kind === 'mean_output' ? y !== undefined : y === undefined) {
      throw new HesseError('INVALID_ARGUMENT', kind === 'mean_output' ? 'objective: the mean_output loss takes no targets (omit y)' : `objective: the ${kind} loss needs targets y`);
    }
    if (y && 'dtype' in x && y.dtype !== x.dtype) throw new HesseError('DTYPE_MISMATCH', `objective: x is ${x.dtype} but y is ${y.dtype}`);
    if (opts.classAxis !== undefined && kind !== 'cross_entropy') throw new HesseError('INVALID_ARGUMENT', `objective: classAxis applies to cross-entropy, not to the ${kind} loss`);
    if (y && x.shape[0] !== y.shape[0]) {
      throw new HesseError('SHAPE_MISMATCH', `objective: x [${x.shape.join(', ')}] and y [${y.shape.join(', ')}] have different batch sizes`);
    }
    const n = x.shape[0] ?? 1;
    const batchSize = opts.batchSize === undefined ? n : check.integer(opts.batchSize, 'objective: batchSize', 1);
    if (wrt === 'input' && batchSize < n) {
      throw new HesseError('INVALID_ARGUMENT', `objective: wrt 'input' differentiates with respect to all of x [${x.shape.join(', ')}] at once, so it cannot be split into batches of ${batchSize} of the N = ${n} samples; omit batchSize (or make it ≥ N), or use wrt 'params'`);
    }
    this.#batches = plan(n, batchSize);
    // An index x (token ids) has no float dtype: the targets' (float32 without targets).
    this.dtype = ('dtype' in x && x.dtype ? x.dtype : (y?.dtype ?? 'float32')) as D;
    this.#loss = kind;
    this.#xShape = x.shape;
    this.#yShape = y?.shape;
    this.#wrt = wrt === 'input' ? 0 : -1;
    this.#check = check.flag(opts.checkFinite, 'objective: checkFinite');
    this.size = wrt === 'input' ? x.data.length : model.size;
    this.params = opts.params ?? model.init({ seed, dtype: this.dtype });
    try {
      for (const b of this.#batches) {
        if (!this.#programs.has(b.rows)) this.#programs.set(b.rows, this.#compile(b.rows, x.shape, y?.shape, n, batchSize));
      }
      this.setData(data);
    } catch (e) {
      this.dispose();
      throw e;
    }
    const first = this.#programs.get(this.#batches[0]!.rows)!;
    this.#graph = first.graph;
    this.#f = first.f;
  }

  /**
   * The program for batches of `batchRows` samples (x [batchRows, …], y [batchRows, …]). When that is not all N
   * samples, an error building it (a model whose batch dimension is fixed) says which batch size.
   */
  #compile(batchRows: number, xShape: readonly number[], yShape: readonly number[] | undefined, n: number, batchSize: number): BatchProgram {
    const graph = new Graph(this.dtype);
    try {
      const xShapeB = [batchRows, ...xShape.slice(1)];
      // Integer x (token ids) is an index input: exact integers, not floats of the dtype.
      const xIndex = this.model.inputKind === 'index' ? graph.indexInput(xShapeB) : undefined;
      const f = this.model.build(xIndex ?? graph.input(xShapeB));
      // Curvature splits at the loss's rows [R, C] (one row per position, classes last for
      // cross-entropy; the output itself for [N, C]): see ARCHITECTURE.md, "a sample".
      let rows = f.id;
      let out: number;
      if (yShape) {
        const lossKind = this.#loss as Exclude<LossKind, 'mean_output'>;
        const ys = graph.input([batchRows, ...yShape.slice(1)]);
        const classAxis = this.#classAxis === undefined ? undefined : check.axis(this.#classAxis, f.shape.length, 'objective: classAxis');
        let targets: number;
        [rows, targets] = call(() => graph.raw.lossRows(lossKind, f.id, ys.id, classAxis)) as unknown as [number, number];
        out = call(() => graph.raw.loss(lossKind, rows, targets));
      } else {
        out = traced.reduce(f, 'mean', undefined, false).id;
      }
      if (graph.raw.nParams() !== this.model.size) {
        throw new Error(`internal: the program has ${graph.raw.nParams()} parameters, the model lists ${this.model.size}`);
      }
      return { graph, xIndex, out, f: rows, staged: -1 };
    } catch (e) {
      graph.dispose();
      if (batchRows === n || !(e instanceof HesseError)) throw e;
      // The model's own message, whole; unless it already speaks of batches, what a failure on
      // another batch size usually means.
      const hint = /batch/i.test(e.message) ? '' : '; a model whose batch dimension is fixed (in its input shape, or baked into a constant such as a Reshape target) runs only on batches of that size: use a batch size that it was exported for and that divides N, or export it with a dynamic batch axis';
      throw new HesseError(e.code, `objective: a batch of ${batchRows} samples (N = ${n} in batches of ${batchSize}${batchRows < batchSize ? ', the last one short' : ''}) does not fit the model: ${e.message}${hint}`);
    }
  }

  /**
   * Runs `fn` on every batch in turn, its data staged in its program (and the parameters
   * `params` staged there first), and returns Σᵢ (Bᵢ/N)·fn(batch i) elementwise (one batch: its
   * results as they are). An error in a batch names its samples.
   */
  #sum(params: Vector, fn: (p: BatchProgram, b: Batch) => readonly (Float32Array | Float64Array)[]): (Float32Array | Float64Array)[] {
    if (this.#batches.length === 1) {
      const p = this.#stage(this.#batches[0]!);
      call(() => p.graph.raw.setParams(params));
      return [...fn(p, this.#batches[0]!)];
    }
    const acc = new WeightedSum();
    for (const b of this.#batches) {
      try {
        const p = this.#stage(b);
        call(() => p.graph.raw.setParams(params));
        acc.add(fn(p, b), b.weight);
      } catch (e) {
        throw e instanceof HesseError ? new HesseError(e.code, `samples ${b.start}–${b.start + b.rows - 1} (batch ${b.index + 1} of ${this.#batches.length}; an index below counts from sample ${b.start}): ${e.message}`) : e;
      }
    }
    return acc.result();
  }

  /** The program of batch `b`, with its data staged (copied in only when another batch was there). */
  #stage(b: Batch): BatchProgram {
    const p = this.#programs.get(b.rows)!;
    if (p.staged !== b.index) {
      p.staged = -1; // until both are in: never half a batch
      // Float inputs are numbered in creation order: x (unless it is an index input), then y.
      if (p.xIndex) p.graph.setIndexInput(p.xIndex, rowsOf(this.#x as IndexHost, b.start, b.rows));
      else call(() => p.graph.raw.setInput(0, rowsOf(this.#x as Host, b.start, b.rows)));
      if (this.#y) call(() => p.graph.raw.setInput(p.xIndex ? 0 : 1, rowsOf(this.#y!, b.start, b.rows)));
      p.staged = b.index;
    }
    return p;
  }

  /**
   * The wasm curvature of `c` for batch `b` (its network output `p.f`): Monte Carlo draws get
   * the batch's own seed ({@link batchSeed}). The caller frees it.
   */
  #rawCurvature(c: CurvatureSpec, p: BatchProgram, b: Batch): RawCurvature {
    const C = core().RawCurvature;
    switch (c.name) {
      case 'hessian':
        return C.hessian();
      case 'ggn':
        return C.ggn(p.f);
      case 'fisher':
        return C.fisher(p.f);
      case 'mc-fisher':
        return call(() => C.mcFisher(p.f, this.#loss, c.samples, b.index === 0 ? c.seed : batchSeed(c.seed, b.index)));
    }
  }

  /**
   * The parameters every method uses unless given others: flat, the model's order, length P.
   * Assigning checks the length (LENGTH_MISMATCH) and converts to D; the objective keeps the array
   * it returns (no copy), so writes into it change the point.
   */
  get params(): TypedArrayOf<D> {
    return this.#params;
  }
  /** Sets the parameters: `p` must have P values (LENGTH_MISMATCH otherwise; the old ones then stay). */
  set params(p: Vector) {
    this.#params = this.#vec(p, this.model.size, 'params');
  }

  /**
   * Replaces the data (same shapes and dtype as those the objective was built with).
   * @throws HesseError SHAPE_MISMATCH for other shapes, DTYPE_MISMATCH for another dtype; the old data then stay.
   */
  setData(data: ObjectiveData<D>): void {
    // Copy both out first (a disposed tensor throws here), then check, then stage: never half a batch.
    const y = data.y === undefined ? undefined : hostOf(data.y, 'setData: y');
    const x = this.#hostX(this.model, data.x, 'setData: x');
    const same = (a: readonly number[] | undefined, b: readonly number[] | undefined) => a === b || (!!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]));
    const fmt = (s: readonly number[] | undefined) => (s ? `[${s.join(', ')}]` : 'none');
    if (!same(x.shape, this.#xShape) || !same(y?.shape, this.#yShape)) {
      throw new HesseError('SHAPE_MISMATCH', `setData: expected x ${fmt(this.#xShape)} and y ${fmt(this.#yShape)}, got ${fmt(x.shape)} and ${fmt(y?.shape)}`);
    }
    for (const [name, t] of [['x', 'dtype' in x ? x : undefined], ['y', y]] as const) {
      if (t && t.dtype !== this.dtype) throw new HesseError('DTYPE_MISMATCH', `setData: ${name} is ${t.dtype} but this objective is ${this.dtype}`);
    }
    this.#x = x;
    this.#y = y;
    for (const p of this.#programs.values()) p.staged = -1;
    // One batch: staged now, as before (later calls copy only parameters and directions).
    if (this.#batches.length === 1) this.#stage(this.#batches[0]!);
  }

  /**
   * x as the model takes it: exact indices for an integer input (an index host; its dtype is then
   * the targets', float32 without targets), else a float host copy.
   */
  #hostX(model: Model, x: ObjectiveData<D>['x'], what: string): (Host | IndexHost) & { dtype?: DType } {
    if (model.inputKind === 'index') return indexHostOf(x, what);
    const d = (x as IndexHostArray | null)?.data;
    if (d instanceof Int32Array || d instanceof BigInt64Array) {
      throw new HesseError('INVALID_ARGUMENT', `${what}: integer data (${d.constructor.name}) for a model whose input is float; pass a Float32Array or Float64Array`);
    }
    return hostOf(x as Tensor | HostArray, what);
  }

  /** N, the number of samples (axis 0 of x), over all batches. */
  get samples(): number {
    return this.#xShape[0] ?? 1;
  }

  /** B, the samples per batch: `batchSize` as given, at most N (N when not given). */
  get batchSize(): number {
    return this.#batches[0]!.rows;
  }

  /** The current value of the variable: the parameters (length P), or x (length x.size) for wrt 'input'. */
  point(): TypedArrayOf<D> {
    return (this.#wrt < 0 ? this.params : this.#x.data) as TypedArrayOf<D>;
  }

  /** `v` checked to have `n` values and converted to D (no copy when it already is D). */
  #vec(v: unknown, n: number, what: string): TypedArrayOf<D> {
    const a = check.vector(v, n, what);
    const Ctor = this.dtype === 'float64' ? Float64Array : Float32Array;
    return (a instanceof Ctor ? a : Ctor.from(a)) as TypedArrayOf<D>;
  }

  /**
   * Runs `req` at `at` (the variable's value: parameters, or x for wrt 'input'), summed over the
   * batches: [value] for 'value', [value, gradient] for 'grad', [products] for 'hvp'.
   */
  #run(at: Vector | undefined, req: ObjectiveRun): TypedArrayOf<D>[] {
    const point = at === undefined ? undefined : this.#vec(at, this.size, this.#wrt < 0 ? 'at (the parameters)' : 'at (the input x)');
    return this.#sum(this.#wrt < 0 && point ? point : this.params, (p, b) => {
      const raw = p.graph.raw;
      if (this.#wrt >= 0 && point) {
        // wrt 'input' is one batch (checked at construction): x is the variable; a point
        // replaces the staged x until the next call stages the data again.
        p.staged = -1;
        call(() => raw.setInput(0, point));
      }
      switch (req.mode) {
        case 'value':
          return [call(() => raw.value(p.out, this.#check)).value];
        case 'grad': {
          const r = call(() => raw.grad(p.out, this.#wrt, this.#check));
          return [r.value, r.grad!];
        }
        case 'hvp': {
          const c = this.#rawCurvature(req.curvature, p, b);
          try {
            return [call(() => raw.hvp(p.out, this.#wrt, req.tangents, req.k, c, this.#check)).products!];
          } finally {
            c.free();
          }
        }
      }
    }) as TypedArrayOf<D>[];
  }

  /**
   * L = loss(model(x; θ), y), a mean (PyTorch's default reductions).
   * @throws HesseError LENGTH_MISMATCH if `at` has the wrong length; INVALID_ARGUMENT for non-finite values with `checkFinite` or labels out of range.
   */
  loss(at?: Vector): number {
    return this.#run(at, { mode: 'value' })[0]![0]!;
  }
  /** (L, ∇L) in one pass; ∇L has the variable's length. */
  valueAndGrad(at?: Vector): [number, TypedArrayOf<D>] {
    const [out, g] = this.#run(at, { mode: 'grad' });
    return [out![0]!, g!];
  }
  /** ∇L, the variable's length (P for parameters, in the model's order). */
  grad(at?: Vector): TypedArrayOf<D> {
    return this.valueAndGrad(at)[1];
  }
  /**
   * H·v, exact (forward-over-reverse, Pearlmutter's trick): one pass, no Hessian formed.
   * @param v a direction of the variable's length.
   * @throws HesseError LENGTH_MISMATCH if v (or at) has another length.
   */
  hvp(v: Vector, at?: Vector): TypedArrayOf<D> {
    return this.#run(at, { mode: 'hvp', tangents: this.#vec(v, this.size, 'hvp: v'), k: 1, curvature: HESSIAN })[0]!;
  }
  /**
   * G·v, the generalized Gauss–Newton product Jᵀ(Hℓ(J v)): one JVP, the loss's output-space
   * curvature, one VJP. v has length P.
   */
  ggnvp(v: Vector, at?: Vector): TypedArrayOf<D> {
    return this.#products('ggnvp', 'ggn', v, 1, at);
  }
  /** F·v for the empirical Fisher (1/R) Σᵣ ∇ℓᵣ ∇ℓᵣᵀ (per-position gradients with the true labels: R = N for an [N, C] output, N·T for [N, T, C]; see {@link Curvature}). v has length P. */
  fisherVp(v: Vector, at?: Vector): TypedArrayOf<D> {
    return this.#products('fisherVp', 'fisher', v, 1, at);
  }
  /**
   * H·v₁ … H·v_K in one pass (K tangents carried together, one wide GEMM per layer).
   * @param vs K directions, row-major [K, size] (K·size values).
   * @param k K, an integer ≥ 1.
   * @returns [K, size], row i = H·vᵢ.
   * @throws HesseError INVALID_ARGUMENT for a bad k; LENGTH_MISMATCH if vs is not K·size long.
   */
  hvps(vs: Vector, k: number, at?: Vector): TypedArrayOf<D> {
    return this.#products('hvps', 'hessian', vs, k, at);
  }
  /**
   * C·v₁ … C·v_K in one pass for the curvature C (see {@link Curvature}).
   * @param vs K directions, row-major [K, size] (K·size values).
   * @param k K, an integer ≥ 1.
   * @returns [K, size], row i = C·vᵢ.
   * @throws HesseError INVALID_ARGUMENT for an unknown curvature or a bad k; LENGTH_MISMATCH if vs is not K·size long.
   */
  curvatureProducts(curvature: Curvature, vs: Vector, k: number, at?: Vector): TypedArrayOf<D> {
    return this.#products('curvatureProducts', curvature, vs, k, at);
  }
  #products(what: string, curvature: Curvature, vs: Vector, k: number, at: Vector | undefined): TypedArrayOf<D> {
    const spec = this.#curvatureSpec(curvature, what);
    const K = check.positive(k, `${what}: k`);
    const label = what === 'ggnvp' || what === 'fisherVp' ? `${what}: v` : `${what}: vs (k·size = ${K}·${this.size})`;
    return this.#run(at, { mode: 'hvp', tangents: this.#vec(vs, K * this.size, label), k: K, curvature: spec })[0]!;
  }

  /** The curvature `c`, after checking it and that it applies here. */
  #curvatureSpec(c: Curvature, what: string): CurvatureSpec {
    let spec: CurvatureSpec;
    if (typeof c === 'object' && c !== null && 'mcFisher' in c) {
      check.options(c, `${what}: curvature`, ['mcFisher']);
      const mc = (c as { mcFisher: unknown }).mcFisher as { samples?: unknown; seed?: unknown } | null;
      if (typeof mc !== 'object' || mc === null) throw new HesseError('INVALID_ARGUMENT', `${what}: mcFisher must be { samples, seed? }, got ${JSON.stringify(mc)}`);
      check.options(mc, `${what}: mcFisher`, ['samples', 'seed']);
      const samples = check.positive(mc.samples, `${what}: mcFisher.samples`);
      const seed = check.seed(mc.seed ?? 0, `${what}: mcFisher.seed`);
      spec = { name: 'mc-fisher', samples: u32(samples), seed };
    } else {
      spec = { name: check.oneOf(c, `${what}: curvature (or { mcFisher: { samples, seed } })`, ['hessian', 'ggn', 'fisher']) };
    }
    if (spec.name !== 'hessian' && this.#wrt >= 0) {
      throw new HesseError('INVALID_ARGUMENT', `${what}: the ${spec.name} is defined for parameters; this objective differentiates with respect to the input (use the Hessian)`);
    }
    return spec;
  }
  /**
   * The dense Hessian ∇²L [size, size] (row-major, symmetric), `chunk` columns per pass.
   * @throws HesseError OUT_OF_MEMORY past `maxBytes` (default 512 MiB); INVALID_ARGUMENT for a bad option.
   */
  hessian(opts: DenseOptions = {}, at?: Vector): TypedArrayOf<D> {
    return this.dense('hessian', opts, at);
  }
  /**
   * The dense GGN Jᵀ Hℓ J [P, P] (row-major, symmetric PSD) from `chunk`-column products.
   * @throws HesseError OUT_OF_MEMORY past `maxBytes` (default 512 MiB); INVALID_ARGUMENT for a bad option or wrt 'input'.
   */
  ggn(opts: DenseOptions = {}, at?: Vector): TypedArrayOf<D> {
    return this.dense('ggn', opts, at);
  }
  /**
   * The explicit Gauss–Newton matrix by the SIMD SYRK G = A·Aᵀ, A = [M₁ᵀ … M_Nᵀ], Mᵢ = LᵢᵀJᵢ
   * (Jᵢ from forward mode, Lᵢ the closed-form factor of the loss Hessian; see ARCHITECTURE.md):
   * `'dense'` [P, P] row-major; `'diagonal'` [P]; `'layers'` the per-layer diagonal blocks
   * [Pₗ, Pₗ], by layer name (PyTorch's module index: the part of the block names before the
   * first '.', adjacent blocks of one name together; a name met again after other blocks is
   * keyed `<name>@<offset>`). With `monteCarlo`, the unbiased estimate
   * from sampled labels. States its memory need (A is P × N·C) and refuses past `maxBytes`
   * (default 512 MiB). The result is D, or Float64Array with `accumulate: 'f64'`.
   * @throws HesseError INVALID_ARGUMENT for an unknown part or option, or wrt 'input'; OUT_OF_MEMORY past `maxBytes`.
   */
  gaussNewton(part: 'dense' | 'diagonal', opts: GaussNewtonOptions & { accumulate: 'f64' }): Float64Array;
  /** The Gauss–Newton matrix [P, P] or its diagonal [P], in the objective's dtype (see the first overload). */
  gaussNewton(part: 'dense' | 'diagonal', opts?: GaussNewtonOptions & { accumulate?: undefined }): TypedArrayOf<D>;
  /** The Gauss–Newton matrix [P, P] or its diagonal [P]: D, or Float64Array with `accumulate: 'f64'`. */
  gaussNewton(part: 'dense' | 'diagonal', opts?: GaussNewtonOptions): TypedArrayOf<D> | Float64Array;
  /** The per-layer diagonal blocks [Pₗ, Pₗ] by layer name, accumulated in float64. */
  gaussNewton(part: 'layers', opts: GaussNewtonOptions & { accumulate: 'f64' }): Record<string, Float64Array>;
  /** The per-layer diagonal blocks [Pₗ, Pₗ] by layer name (PyTorch's module index), in the objective's dtype. */
  gaussNewton(part: 'layers', opts?: GaussNewtonOptions & { accumulate?: undefined }): Record<string, TypedArrayOf<D>>;
  /** The per-layer diagonal blocks [Pₗ, Pₗ] by layer name: D, or Float64Array with `accumulate: 'f64'`. */
  gaussNewton(part: 'layers', opts?: GaussNewtonOptions): Record<string, TypedArrayOf<D> | Float64Array>;
  gaussNewton(part: 'dense' | 'diagonal' | 'layers', options: GaussNewtonOptions = {}): Vector | Record<string, Vector> {
    const what = `gaussNewton('${part}')`;
    const opts = check.options(options, what, ['maxBytes', 'chunk', 'monteCarlo', 'accumulate']);
    check.oneOf(part, 'gaussNewton: part', ['dense', 'diagonal', 'layers']);
    if (this.#wrt >= 0) throw new HesseError('INVALID_ARGUMENT', `${what}: the Gauss–Newton matrix is defined for parameters; this objective differentiates with respect to the input`);
    const limit = byteLimit(opts.maxBytes, `${what}: maxBytes`);
    const chunk = check.positive(opts.chunk ?? 64, `${what}: chunk`);
    const accumulate = opts.accumulate === undefined ? false : check.oneOf(opts.accumulate, `${what}: accumulate`, ['f64']) === 'f64';
    const mc = opts.monteCarlo;
    if (mc !== undefined && (typeof mc !== 'object' || mc === null)) throw new HesseError('INVALID_ARGUMENT', `${what}: monteCarlo must be { samples, seed? }, got ${JSON.stringify(mc)}`);
    if (mc) check.options(mc, `${what}: monteCarlo`, ['samples', 'seed']);
    const samples = mc ? check.positive(mc.samples, `${what}: monteCarlo.samples`) : 0;
    const seed = mc ? check.seed(mc.seed ?? 0, `${what}: monteCarlo.seed`) : 0;
    const P = this.model.size;
    const shapeF = this.#graph.raw.shape(this.#f);
    const rows = mc ? shapeF[0]! * samples : shapeF.reduce((a, b) => a * b, 1);
    const el = this.dtype === 'float64' || accumulate ? 8 : 4;
    // A layer is a run of adjacent blocks named `<layer>.…`: a block range must be contiguous,
    // so a name met again after other blocks (an ONNX file's folded weight placed after the
    // named parameters) is its own layer, `<layer>@<offset>`, not a range over the blocks between.
    const layers = new Map<string, { offset: number; size: number }>();
    let last: { name: string; l: { offset: number; size: number } } | undefined;
    for (const b of this.model.blocks) {
      const name = b.name.split('.')[0]!;
      if (last && last.name === name && last.l.offset + last.l.size === b.offset) {
        last.l.size += b.size;
        continue;
      }
      const l = { offset: b.offset, size: b.size };
      layers.set(layers.has(name) ? `${name}@${b.offset}` : name, l);
      last = { name, l };
    }
    const outBytes = part === 'dense' ? P * P : part === 'diagonal' ? P : [...layers.values()].reduce((s, l) => s + l.size * l.size, 0);
    // Batched: one batch's factor and result, plus the float64 running sum.
    const batched = this.#batches.length > 1;
    const bytes = (P * rows + outBytes) * el + (batched ? outBytes * 8 : 0);
    if (bytes > limit) {
      throw new HesseError('OUT_OF_MEMORY', `${what}: P = ${P} and N·C = ${rows}${batched ? ' per batch' : ''} need ${(bytes / MiB).toFixed(1)} MiB (the P × N·C factor plus the result${batched ? ' and its running sum' : ''}), over the limit of ${(limit / MiB).toFixed(1)} MiB; use ggnvp products, or a smaller batch${batched ? 'Size' : ''}`);
    }
    const ranges = part === 'layers' ? [...layers.values()].flatMap((l) => [l.offset, l.size]) : [];
    const [out] = this.#sum(this.params, (p, b) => [call(() => p.graph.raw.gaussNewton(p.f, this.#loss, part === 'layers' ? 'blocks' : part, u32(chunk), new Uint32Array(ranges), u32(samples), batchSeed(seed, b.index), accumulate)) as Vector]) as [Vector];
    if (part !== 'layers') return out;
    let off = 0;
    return Object.fromEntries(
      [...layers.entries()].map(([name, l]) => {
        const block = out.subarray(off, off + l.size * l.size);
        off += l.size * l.size;
        return [name, block];
      }),
    );
  }

  /**
   * A dense curvature matrix [size, size] (row-major), `chunk` columns per pass (row i = C·eᵢ; C is
   * symmetric). `onProgress(done, total, phase)` after each pass: `done` of `total` columns, in the
   * phase named like "building the Hessian (HVPs)".
   * @throws HesseError OUT_OF_MEMORY when the matrix is over `maxBytes` (default 512 MiB); INVALID_ARGUMENT for a bad option or curvature.
   */
  dense(curvature: Curvature, options: DenseOptions = {}, at?: Vector): TypedArrayOf<D> {
    const opts = check.options(options, 'dense', ['maxBytes', 'chunk', 'onProgress']);
    const spec = this.#curvatureSpec(curvature, 'dense');
    const chunk = check.positive(opts.chunk ?? 64, 'dense: chunk');
    const limit = byteLimit(opts.maxBytes, 'dense: maxBytes');
    const n = this.size;
    const bytes = n * n * (this.dtype === 'float64' ? 8 : 4);
    if (bytes > limit) {
      throw new HesseError('OUT_OF_MEMORY', `${typeof curvature === 'string' ? curvature : 'mcFisher'}: P = ${n} needs a dense ${n}×${n} ${this.dtype} matrix of ${(bytes / MiB).toFixed(1)} MiB, over the limit of ${(limit / MiB).toFixed(1)} MiB; use products (hvp, ggnvp) or the estimators that need only products`);
    }
    const phase = `building the ${DENSE_NAMES[spec.name]}`;
    const progress = opts.onProgress;
    const onProgress = progress && ((done: number, total: number) => progress(done, total, phase));
    return denseFromProducts(n, this.dtype, chunk, (units, k) => this.curvatureProducts(curvature, units, k, at), onProgress) as TypedArrayOf<D>;
  }

  /**
   * The curvature C (see {@link Curvature}; default 'hessian') at the current point as a linear
   * operator of size `size`, for eigenvalues, trace, diagonal, spectralDensity, cg, minres: they
   * then run inside wasm, one forward-over-reverse pass per product, with no JS per product. The
   * operator reads the parameters when an algorithm starts.
   * @throws HesseError INVALID_ARGUMENT for an unknown curvature.
   */
  operator(curvature: Curvature = 'hessian'): NativeOperator {
    const spec = this.#curvatureSpec(curvature, 'operator');
    return {
      size: this.size,
      matvec: (v: Float64Array) => Float64Array.from(this.curvatureProducts(curvature, v, 1)),
      rawOperator: () => {
        if (this.#wrt >= 0) {
          throw new HesseError('INVALID_ARGUMENT', 'spectral estimators on input derivatives are not supported yet; use the matvec of a plain { size, matvec } operator');
        }
        if (this.#batches.length === 1) {
          const [b] = this.#batches;
          const p = this.#stage(b!);
          call(() => p.graph.raw.setParams(this.params));
          const c = this.#rawCurvature(spec, p, b!);
          try {
            return call(() => p.graph.raw.curvatureOperator(p.out, c));
          } finally {
            c.free();
          }
        }
        // Batched: each product is Σᵢ (Bᵢ/N)·Cᵢ·v over the batches (curvatureProducts), at the
        // parameters of now. The algorithm runs in wasm and calls back here once per product,
        // which stages each batch in turn: one batch's data and intermediates in wasm at a time.
        const at = this.params.slice();
        return core().RawOperator.fromFunction(this.size, (v: Float64Array) => Float64Array.from(this.curvatureProducts(curvature, v, 1, at)));
      },
    };
  }

  /**
   * K-FAC factors (Martens & Grosse 2015; KFC for conv2d) of the model's linear and conv2d layers
   * at the current parameters: `'exact'` (the loss Hessian's factor, C backward vectors per
   * position) or `'mc'` (`samples` labels per position drawn from the model's predictive
   * distribution, `seed`). The layers are found by pattern in the model's graph (a MatMul/Gemm
   * or Conv2d by a parameter, with an optional bias add; ONNX imports included); the parameter
   * blocks no layer covers are listed in the result's `uncovered`.
   * @throws HesseError INVALID_ARGUMENT for an unknown variant or option, wrt 'input', or a model with no linear or conv2d layer.
   */
  kfac(options: KfacOptions = {}): Kfac {
    const opts = check.options(options, 'kfac', ['variant', 'samples', 'seed']);
    const variant = check.oneOf(opts.variant ?? 'exact', 'kfac: variant', ['exact', 'mc']);
    const samples = check.positive(opts.samples ?? 1, 'kfac: samples');
    const seed = check.seed(opts.seed ?? 0, 'kfac: seed');
    if (this.#wrt >= 0) throw new HesseError('INVALID_ARGUMENT', 'kfac: K-FAC is defined for parameters; this objective differentiates with respect to the input');
    // Batched: the factors of each batch's mean loss, combined with weights Bᵢ/N (A and B alike;
    // see RawKfac.addScaled), which are those of the mean over all N samples.
    const acc: { raw?: RawKfac } = {};
    try {
      this.#sum(this.params, (p, b) => {
        const k = call(() => p.graph.raw.kfac(p.f, this.#loss, variant, u32(samples), batchSeed(seed, b.index)));
        if (!acc.raw) {
          acc.raw = k;
          if (this.#batches.length > 1) k.scale(b.weight);
        } else {
          try {
            call(() => acc.raw!.addScaled(k, b.weight));
          } finally {
            k.free();
          }
        }
        return [];
      });
    } catch (e) {
      acc.raw?.free();
      throw e;
    }
    return new Kfac(acc.raw!, this.model.blocks);
  }

  /** Named views (no copies) into a flat parameter-shaped vector (params, gradient, HVP), by PyTorch's parameter names. */
  views<A extends Vector>(flat: A): Record<string, A> {
    return this.model.views(flat);
  }
  /** Frees the program and its staged data; any later call throws DISPOSED. Idempotent. */
  dispose(): void {
    for (const p of this.#programs.values()) p.graph.dispose();
  }
  /** `using obj = objective(…)` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * L(θ) = loss(model(x; θ), y) over float64 host arrays `{ data: Float64Array, shape }` (see the
 * generic overload): a float64 objective.
 */
export function objective(model: Model, loss: LossName, data: { x: HostArray<'float64'>; y?: Tensor<'float64'> | HostArray<'float64'> }, opts?: ObjectiveOptions): Objective<'float64'>;
/** L(θ) over float32 host arrays `{ data: Float32Array, shape }` (see the generic overload): a float32 objective. */
export function objective(model: Model, loss: LossName, data: { x: HostArray<'float32'>; y?: Tensor<'float32'> | HostArray<'float32'> }, opts?: ObjectiveOptions): Objective<'float32'>;
/**
 * L(θ) = loss(model(x; θ), y) with every derivative of it from one compiled program (one per batch
 * size with `batchSize`).
 *
 * @param model an `nn.sequential` or ONNX model.
 * @param loss 'mse' (mean over all elements), 'cross_entropy' / 'ce' (mean over the positions, y
 *   class indices: [N] for [N, C] logits, [N, d1, …] for [N, C, d1, …] or [N, d1, …, C]; see
 *   `classAxis`), 'bce_with_logits' / 'bce' (mean over all elements), or 'mean_output' (no y).
 * @param data x [N, …] and y, of one dtype D: the objective's dtype; Tensors or host arrays.
 * @example
 * const obj = objective(model, 'cross_entropy', { x, y }, { seed: 0 });
 * const g = obj.grad();           // Float64Array for float64 data
 * const hv = obj.hvp(g);          // H·g
 * // All N samples, 256 at a time: the same mean, one batch in wasm at a time.
 * const big = objective(model, 'cross_entropy', { x: { data: xs, shape: [N, 64] }, y: { data: ys, shape: [N] } }, { batchSize: 256 });
 * @throws HesseError see {@link Objective}'s constructor.
 */
export function objective<D extends DType>(model: Model, loss: LossName, data: ObjectiveData<D>, opts?: ObjectiveOptions): Objective<D>;
export function objective<D extends DType>(model: Model, loss: LossName, data: ObjectiveData<D>, opts: ObjectiveOptions = {}): Objective<D> {
  return new Objective(model, loss, data, opts);
}
