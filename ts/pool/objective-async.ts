/**
 * An objective whose methods return Promises, computed by N workers that share nothing: each
 * has its own wasm instance (the module the main thread loaded), the model as serialized
 * programs and a contiguous shard of the N samples (ts/pool/protocol.ts), and runs the sync
 * {@link Objective} over it. Every call sends θ (and the directions) to all workers and combines
 * their results as the mean over all N: Σᵢ (Nᵢ/N)·rᵢ, summed in float64 and rounded once to the
 * objective's dtype. Without Workers (workerd) the same API runs in this thread.
 */
import { HesseError } from '../errors.js';
import { Objective, type Curvature, type LossName, type ObjectiveData, type ObjectiveOptions } from '../objective.js';
import type { Model } from '../nn.js';
import type { DType, TypedArrayOf } from '../tensor.js';
import { Graph } from '../trace.js';
import { hostOf, indexHostOf, plan, rowsOf, WeightedSum, type Host, type IndexHost } from '../batches.js';
import type { AsyncLinearOperator, Vector } from '../curvature.js';
import { wasmModule } from '../runtime.js';
import * as check from '../validate.js';
import { WorkerPool } from './pool.js';
import { shards, type InitMessage, type Method, type ModelPrograms, type ShardArray } from './protocol.js';
import { cores, workersAvailable } from './spawn.js';
import type { HostURL } from '../host-types.js';

/** Options of {@link objectiveAsync}: those of the sync objective (not wrt 'input'), and the pool's. */
export interface AsyncObjectiveOptions extends ObjectiveOptions {
  /**
   * Workers, an integer ≥ 1 (default: the cores the runtime reports, at most 4; never more than
   * N). Each gets ⌊N/W⌋ or ⌈N/W⌉ contiguous samples. Where the runtime has no Workers (workerd),
   * or with `workers: 0`, the objective runs in this thread.
   */
  workers?: number;
  /** Where the worker script is (default: pool/worker.js beside this module, as built into dist/). */
  workerUrl?: string | HostURL;
}

type Values = (number | Float32Array | Float64Array)[];

/** The sync objective's calls, as Promises, from workers or from this thread. */
interface Runner {
  call(method: Method, args: unknown[]): Promise<Values>;
  close(): Promise<void>;
}

/** The in-thread runner: one sync Objective over all N (workerd, `workers: 0`). */
function localRunner(obj: Objective): Runner {
  return {
    call: async (method, args) => {
      const r = (obj[method] as (...a: unknown[]) => unknown)(...args);
      return (Array.isArray(r) ? r : [r]) as Values;
    },
    close: async () => obj.dispose(),
  };
}

/** The pool's runner: every worker runs the call on its shard; results weighted Nᵢ/N in float64. */
function poolRunner(pool: WorkerPool, weights: number[]): Runner {
  return {
    call: async (method, args) => {
      const all = await pool.call(method, () => args);
      const acc = new WeightedSum();
      all.forEach((vals, i) => acc.add(vals.map((v) => (typeof v === 'number' ? Float64Array.of(v) : v)), weights[i]!));
      return acc.result().map((a, k) => (typeof all[0]![k] === 'number' ? a[0]! : a));
    },
    close: () => pool.close(),
  };
}

/** The model applied to an input [rows, …] for each batch size a shard's objective compiles, as bytes. */
function modelPrograms(model: Model, dtype: DType, xShape: readonly number[], sizes: Set<number>): ModelPrograms {
  const programs: ModelPrograms['programs'] = [];
  for (const rows of sizes) {
    const graph = new Graph(dtype);
    try {
      const shape = [rows, ...xShape.slice(1)];
      const f = model.build(model.inputKind === 'index' ? graph.indexInput(shape) : graph.input(shape));
      if (graph.captured.length) throw new HesseError('UNSUPPORTED_OP', 'objectiveAsync: the model captures tensors outside its program (a traced function closing over tensors); workers cannot receive them');
      programs.push({ rows, bytes: graph.raw.toBytes(), out: f.id });
    } finally {
      graph.dispose();
    }
  }
  const blocks = model.blocks.map((b) => ({ name: b.name, shape: [...b.shape], offset: b.offset, size: b.size, init: { ...b.init } }));
  return { size: model.size, blocks, inputKind: model.inputKind ?? 'float', programs };
}

/** Rows [start, start + rows) of a host array as a compact copy (sent, then transferred). */
function shardOf(h: Host | IndexHost, start: number, rows: number): ShardArray {
  return { data: rowsOf(h as Host, start, rows).slice(), shape: [rows, ...h.shape.slice(1)] };
}

/**
 * L(θ) = loss(model(x; θ), y) over N samples, each method a Promise (see {@link objectiveAsync}).
 * The method names, arguments and results are the sync {@link Objective}'s; bad arguments
 * reject with its HesseErrors (checked here, before anything is sent, where the length is known).
 */
export class AsyncObjective<D extends DType = DType> {
  /** The dtype of the data and of every array returned. */
  readonly dtype: D;
  /** P, the length of θ. */
  readonly size: number;
  /** N, the samples over all workers. */
  readonly samples: number;
  /** Workers running (0: in this thread). */
  readonly workers: number;
  readonly #runner: Runner;
  readonly #pool: WorkerPool | undefined;
  #params: TypedArrayOf<D>;

  /** @internal Use {@link objectiveAsync}. */
  constructor(dtype: D, size: number, samples: number, params: TypedArrayOf<D>, runner: Runner, pool: WorkerPool | undefined) {
    this.dtype = dtype;
    this.size = size;
    this.samples = samples;
    this.#params = params;
    this.#runner = runner;
    this.#pool = pool;
    this.workers = pool?.size ?? 0;
  }

  /** θ, used by every call not given `at`. */
  get params(): TypedArrayOf<D> {
    return this.#params;
  }
  /** Sets θ (P values, converted to D; LENGTH_MISMATCH otherwise, the old θ then stays). */
  setParams(p: Vector): void {
    this.#params = this.#vec(p, this.size, 'setParams: params');
  }

  #vec(v: unknown, n: number, what: string): TypedArrayOf<D> {
    const a = check.vector(v, n, what);
    const Ctor = this.dtype === 'float64' ? Float64Array : Float32Array;
    return (a instanceof Ctor ? a : Ctor.from(a)) as TypedArrayOf<D>;
  }
  /** θ for a call: `at` checked, else the current parameters. */
  #at(at: Vector | undefined): TypedArrayOf<D> {
    return at === undefined ? this.#params : this.#vec(at, this.size, 'at (the parameters)');
  }
  /** Runs a call; argument errors reject (never throw synchronously). */
  async #call(method: Method, args: () => unknown[]): Promise<Values> {
    return this.#runner.call(method, args());
  }

  /** L at θ (or `at`), the mean over all N samples. */
  async loss(at?: Vector): Promise<number> {
    return (await this.#call('loss', () => [this.#at(at)]))[0] as number;
  }
  /** (L, ∇L). */
  async valueAndGrad(at?: Vector): Promise<[number, TypedArrayOf<D>]> {
    const [l, g] = await this.#call('valueAndGrad', () => [this.#at(at)]);
    return [l as number, g as TypedArrayOf<D>];
  }
  /** ∇L. */
  async grad(at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.valueAndGrad(at))[1];
  }
  /** H·v. */
  async hvp(v: Vector, at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.#call('hvp', () => [this.#vec(v, this.size, 'hvp: v'), this.#at(at)]))[0] as TypedArrayOf<D>;
  }
  /** G·v (generalized Gauss–Newton). */
  async ggnvp(v: Vector, at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.#call('ggnvp', () => [this.#vec(v, this.size, 'ggnvp: v'), this.#at(at)]))[0] as TypedArrayOf<D>;
  }
  /** F·v (empirical Fisher). */
  async fisherVp(v: Vector, at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.#call('fisherVp', () => [this.#vec(v, this.size, 'fisherVp: v'), this.#at(at)]))[0] as TypedArrayOf<D>;
  }
  /** H·v₁ … H·v_K, [K, P] row-major. */
  async hvps(vs: Vector, k: number, at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.#call('hvps', () => [this.#vec(vs, check.positive(k, 'hvps: k') * this.size, `hvps: vs (k·size = ${k}·${this.size})`), k, this.#at(at)]))[0] as TypedArrayOf<D>;
  }
  /**
   * C·v₁ … C·v_K for a curvature C. Monte Carlo draws (`mcFisher`) are seeded per batch of each
   * worker's shard, so with more than one worker they differ from the sync objective's (an
   * unbiased estimate of the same matrix all the same).
   */
  async curvatureProducts(curvature: Curvature, vs: Vector, k: number, at?: Vector): Promise<TypedArrayOf<D>> {
    return (await this.#call('curvatureProducts', () => [curvature, this.#vec(vs, check.positive(k, 'curvatureProducts: k') * this.size, `curvatureProducts: vs (k·size = ${k}·${this.size})`), k, this.#at(at)]))[0] as TypedArrayOf<D>;
  }
  /**
   * The curvature C at the current θ (a copy: later setParams do not move it) as an operator
   * whose products are Promises, for the async estimators and solvers.
   */
  operator(curvature: Curvature = 'hessian'): AsyncLinearOperator {
    const at = this.#params.slice() as TypedArrayOf<D>;
    return { size: this.size, matvec: (v: Float64Array) => this.curvatureProducts(curvature, v, 1, at) };
  }
  /** Terminates the workers; every later call rejects with DISPOSED. */
  dispose(): Promise<void> {
    return this.#runner.close();
  }
  /** @internal The pool (tests: kill a worker mid-call). */
  get pool(): WorkerPool | undefined {
    return this.#pool;
  }
}

/** Float64 data: a float64 async objective. */
export function objectiveAsync(model: Model, loss: LossName, data: ObjectiveData<'float64'>, opts?: AsyncObjectiveOptions): Promise<AsyncObjective<'float64'>>;
/** Float32 data: a float32 async objective. */
export function objectiveAsync(model: Model, loss: LossName, data: ObjectiveData<'float32'>, opts?: AsyncObjectiveOptions): Promise<AsyncObjective<'float32'>>;
/**
 * L(θ) = loss(model(x; θ), y), computed by `workers` workers on contiguous shards of the N samples
 * (see {@link AsyncObjective}); resolves once every worker is ready. Options are the sync
 * objective's (batchSize applies within each shard), plus `workers` and `workerUrl`.
 * @example
 * const obj = await objectiveAsync(model, 'cross_entropy', { x, y }, { workers: 2 });
 * const hv = await obj.hvp(v);
 * await obj.dispose();
 * @throws (rejects) HesseError as the sync objective would; WORKER_FAILED if a worker dies.
 */
export function objectiveAsync<D extends DType>(model: Model, loss: LossName, data: ObjectiveData<D>, opts?: AsyncObjectiveOptions): Promise<AsyncObjective<D>>;
export async function objectiveAsync<D extends DType>(model: Model, loss: LossName, data: ObjectiveData<D>, opts: AsyncObjectiveOptions = {}): Promise<AsyncObjective<D>> {
  const o = check.options(opts, 'objectiveAsync', ['params', 'seed', 'wrt', 'checkFinite', 'batchSize', 'classAxis', 'workers', 'workerUrl']);
  if (o.wrt === 'input') throw new HesseError('INVALID_ARGUMENT', "objectiveAsync: wrt 'input' differentiates all of x at once, which cannot be split among workers; use the sync objective");
  const asked = o.workers === undefined ? Math.min(await cores(), 4) : check.integer(o.workers, 'objectiveAsync: workers', 0, 256);
  const { workers: _w, workerUrl: _u, ...syncOpts } = o;
  const x = model.inputKind === 'index' ? indexHostOf(data.x, 'objectiveAsync: x') : hostOf(data.x as never, 'objectiveAsync: x');
  const y = data.y === undefined ? undefined : hostOf(data.y, 'objectiveAsync: y');
  const n = x.shape[0] ?? 1;
  const w = Math.min(asked, n);
  // Shards normalized with their own batch statistics would be another function of θ.
  const stats = (model as { batchStatistics?: readonly string[] }).batchStatistics ?? [];
  if (w > 1 && stats.length) {
    throw new HesseError('INVALID_ARGUMENT', `objectiveAsync: the model normalizes with batch statistics (training-mode BatchNormalization: ${stats.map((b) => `'${b}'`).join(', ')}), so ${w} workers, each normalizing its own shard, would compute another function; use workers: 1, or export the model in eval mode`);
  }
  if (w === 0 || !workersAvailable()) {
    // workerd: no Workers; one sync objective over all N in this thread.
    const obj = new Objective(model, loss, data, syncOpts);
    return new AsyncObjective(obj.dtype as D, obj.size, obj.samples, obj.params as TypedArrayOf<D>, localRunner(obj), undefined);
  }
  const dtype = ('dtype' in x && x.dtype ? x.dtype : (y?.dtype ?? 'float32')) as D;
  if (y && 'dtype' in x && x.dtype && y.dtype !== x.dtype) throw new HesseError('DTYPE_MISMATCH', `objectiveAsync: x is ${x.dtype} but y is ${y.dtype}`);
  if (y && y.shape[0] !== n) throw new HesseError('SHAPE_MISMATCH', `objectiveAsync: x [${x.shape.join(', ')}] and y [${y.shape.join(', ')}] have different batch sizes`);
  const parts = shards(n, w);
  const batch = o.batchSize === undefined ? undefined : check.integer(o.batchSize, 'objectiveAsync: batchSize', 1);
  const sizes = new Set(parts.flatMap((s) => plan(s.rows, batch ?? s.rows).map((b) => b.rows)));
  const programs = modelPrograms(model, dtype, x.shape, sizes);
  const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
  const init = o.params ?? model.init({ seed: o.seed === undefined ? 0 : check.seed(o.seed, 'objectiveAsync: seed'), dtype });
  const params = (init instanceof Ctor ? init : Ctor.from(check.vector(init, model.size, 'objectiveAsync: params'))) as TypedArrayOf<D>;
  check.vector(params, model.size, 'objectiveAsync: params');
  const options: InitMessage['options'] = {};
  if (o.checkFinite !== undefined) options.checkFinite = o.checkFinite;
  if (batch !== undefined) options.batchSize = batch;
  if (o.classAxis !== undefined) options.classAxis = o.classAxis;
  const module = wasmModule();
  const inits: InitMessage[] = parts.map((s) => {
    const m: InitMessage = { type: 'init', module, dtype, loss, options, model: programs, x: shardOf(x, s.start, s.rows) };
    if (y) m.y = shardOf(y, s.start, s.rows);
    return m;
  });
  const url = o.workerUrl === undefined ? new URL('./worker.js', import.meta.url) : new URL(String(o.workerUrl));
  const pool = await WorkerPool.start(url, inits);
  return new AsyncObjective(dtype, model.size, n, params, poolRunner(pool, parts.map((s) => s.rows / n)), pool);
}
