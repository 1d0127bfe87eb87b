/**
 * Curvature from products alone: extreme eigenvalues (Lanczos, power iteration), traces
 * (Hutchinson, Hutch++), diagonals, spectral densities (stochastic Lanczos quadrature), and
 * solvers (CG with damping, MINRES), on any symmetric linear operator: an objective's Hessian,
 * Gauss–Newton or Fisher (the algorithm then runs inside wasm with no JS per product), a
 * user-supplied `{ size, matvec }`, or a dense matrix. The algorithms are hesse-core's `linalg`
 * (float64 throughout). Seeds make every randomized estimate reproducible.
 *
 * Every count, tolerance and choice is checked here (ts/validate.ts) before it crosses into wasm,
 * so a bad one is an INVALID_ARGUMENT HesseError naming the function, the option and the value.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import * as check from './validate.js';
import type { RawIteration, RawOperator } from './wasm/hesse.js';

/** A symmetric linear operator known through products. */
export interface LinearOperator {
  /** n: the operator is n × n. */
  readonly size: number;
  /**
   * A·v for v of length n: write it into `out` (length n) and return nothing, or return it (any
   * of the array types, length n). Must not modify v. A thrown error, or a result of the wrong
   * length, stops the algorithm with a HesseError.
   */
  matvec(v: Float64Array, out: Float64Array): Float64Array | Float32Array | number[] | void;
}

/** A dense symmetric n × n matrix, row-major (`data` has n² entries). */
export interface DenseMatrix {
  /** n. */
  readonly size: number;
  /** The n² entries, row-major. */
  readonly data: Float64Array | Float32Array | readonly number[];
}

/** Operators that can hand the algorithms a Rust-side operator (an objective's curvature). */
export interface NativeOperator extends LinearOperator {
  /** @internal A fresh Rust operator (a snapshot of the current point); the caller frees it. */
  rawOperator(): RawOperator;
}

/** What the estimators and solvers accept: an operator known by its products, or a dense matrix. */
export type OperatorLike = LinearOperator | NativeOperator | DenseMatrix;

/**
 * A symmetric linear operator whose products arrive asynchronously (computed by workers, or on
 * a GPU). The async estimators and solvers drive their Krylov iterations with it: each product
 * is awaited, and a rejected Promise or a result of the wrong length stops the algorithm with a
 * HesseError.
 */
export interface AsyncLinearOperator {
  /** n: the operator is n × n. */
  readonly size: number;
  /** A·v for v of length n (must not modify v; v may be reused after the Promise settles). */
  matvec(v: Float64Array): Promise<Float64Array | Float32Array>;
}

/** What the async estimators and solvers accept: any {@link OperatorLike}, or an {@link AsyncLinearOperator}. */
export type AsyncOperatorLike = OperatorLike | AsyncLinearOperator;

/** A vector argument (b, x0): float32 or float64 values, converted to float64. */
export type Vector = Float32Array | Float64Array;

function isNative(op: OperatorLike): op is NativeOperator {
  return typeof (op as NativeOperator).rawOperator === 'function';
}

/**
 * @internal Counts of work (iterations, samples, probes, steps) cross into wasm as u32. Past
 * 2³² − 1 they saturate rather than wrap: that much work never finishes, so the cap changes nothing.
 */
export const u32 = (n: number): number => Math.min(n, 0xffffffff);

/**
 * Called after each operator product with the products done so far, the most the algorithm can
 * ask for (it may finish with fewer), and the phase: the function's name ('eigenvalues', 'cg', …).
 */
export type ProgressCallback = (done: number, total: number, phase: string) => void;

/** What every estimator and solver accepts besides its own options. */
export interface ProgressOptions {
  /**
   * Progress reports, one per product (see {@link ProgressCallback}). With it, a synchronous
   * function drives the iteration from TypeScript one product at a time (same results, bitwise);
   * without it, the whole algorithm runs inside wasm. An error it throws stops the algorithm.
   */
  onProgress?: ProgressCallback;
}

/**
 * @internal One estimator or solver call, its options checked: the all-in-wasm run (`sync`),
 * the same algorithm as a reverse-communication iteration (`start`), and the result's cleanup.
 * The sync functions here and the async ones (curvature-async.ts) both run jobs.
 */
export interface Job<T> {
  /** The function's name (error messages, and the progress phase). */
  readonly what: string;
  /** The whole algorithm in wasm on a Rust operator. */
  sync(raw: RawOperator): T;
  /** The algorithm as an iteration asking for one product at a time (see hesse-wasm/src/iteration.rs). */
  start(): RawIteration;
  /** The result object as the caller gets it. */
  post(r: T): T;
  /** The caller's progress callback, checked (undefined: none). */
  readonly onProgress: ProgressCallback | undefined;
}

/** The onProgress option, checked. */
function progressOf(opts: ProgressOptions, what: string): ProgressCallback | undefined {
  const f = opts.onProgress;
  if (f !== undefined && typeof f !== 'function') throw new HesseError('INVALID_ARGUMENT', `${what}: onProgress must be a function (done, total, phase) => void, got ${check.describe(f)}`);
  return f;
}

const same = <T>(r: T): T => r;

/**
 * Runs the job's iteration to the end from TS: `product(v)` gives A·v for each
 * requested v, `onProgress` hears of each. The iteration is freed whatever happens.
 */
function driveIteration<T>(job: Job<T>, product: (v: Float64Array) => Float64Array): T {
  const it = call(() => job.start());
  try {
    const total = (call(() => it.progress()) as { total: number }).total;
    for (let done = 1; ; done++) {
      const v = call(() => it.request()) as Float64Array | undefined;
      if (v === undefined) return job.post(call(() => it.result()) as T);
      const p = product(v);
      call(() => it.provide(p));
      job.onProgress?.(done, total, job.what);
    }
  } finally {
    it.free();
  }
}

/** The operator's size n, checked: a safe integer ≥ 0 whose float64 vectors fit in wasm memory. */
export function sizeOf(op: AsyncOperatorLike, what: string): number {
  if (!op || typeof op !== 'object') {
    throw new HesseError('INVALID_ARGUMENT', `${what}: expected a linear operator { size, matvec(v) } or a dense matrix { size, data }`);
  }
  const n = check.count(op.size, `${what}: the operator's size`);
  if (n > 2 ** 29) throw new HesseError('OUT_OF_MEMORY', `${what}: an operator of size ${n} needs float64 vectors of ${n * 8} bytes, past wasm's 4 GiB memory`);
  return n;
}

/** A float64 copy of a vector of length n (b, x0), checked. */
function f64(v: unknown, n: number, what: string): Float64Array {
  return Float64Array.from(check.vector(v, n, what));
}

/**
 * Runs `fn` on a Rust operator for `op`, freed afterwards. Callers check their options first, so
 * a bad one costs no operator (for an objective, a snapshot of its program and data).
 */
/** @internal The Rust operator of `op`, which the caller frees. */
export function rawOperatorOf(op: OperatorLike, what: string): RawOperator {
  const n = sizeOf(op, what);
  let raw: RawOperator;
  if (isNative(op)) raw = op.rawOperator();
  else if ('data' in op) raw = call(() => core().RawOperator.fromDense(f64(op.data, n * n, `${what}: the dense matrix's data`), n));
  else if (typeof op.matvec === 'function') {
    raw = core().RawOperator.fromFunction(n, (v: Float64Array) => {
      const out = new Float64Array(n);
      const r = op.matvec(v, out);
      return r === undefined ? out : r instanceof Float64Array ? r : Float64Array.from(r);
    });
  } else throw new HesseError('INVALID_ARGUMENT', `${what}: the operator has no matvec (pass { size, matvec(v) } or { size, data })`);
  return raw;
}

function withOperator<T>(op: OperatorLike, what: string, fn: (raw: RawOperator) => T): T {
  const raw = rawOperatorOf(op, what);
  try {
    return call(() => fn(raw));
  } finally {
    try {
      raw.free();
    } catch {
      // Only after a trap inside fn can free fail (its borrow is still set): fn's error is the
      // one to report, not wasm-bindgen's "while it was borrowed".
    }
  }
}

/**
 * @internal Runs a job on a sync operator: all in wasm, or, with onProgress, one product at a
 * time from TS (the Rust operator's `apply`, so a JS matvec's errors read the same).
 */
export function runJob<T>(op: OperatorLike, job: Job<T>): T {
  if (job.onProgress === undefined) return job.post(withOperator(op, job.what, (raw) => job.sync(raw)));
  return withOperator(op, job.what, (raw) => driveIteration(job, (v) => raw.apply(v)));
}

/** Options of {@link eigenvalues}. */
export interface EigenOptions extends ProgressOptions {
  /**
   * Which end of the spectrum (algebraic order, not magnitude): 'largest' (default; values
   * descending), 'smallest' (ascending), or 'both' (⌊k/2⌋ smallest and ⌈k/2⌉ largest, ascending).
   */
  which?: 'largest' | 'smallest' | 'both';
  /**
   * Stop when every wanted Ritz pair has ‖A·y − θ·y‖ ≤ tol·|θ| (finite, ≥ 0; default 1e-8). The
   * eigenvalue error is at most the residual, about residual²/gap when θ is well separated.
   */
  tol?: number;
  /** Lanczos steps (= products) at most, an integer ≥ k (default 300; capped at n). Memory: steps·n float64. */
  maxIter?: number;
  /** Seed of the Gaussian start vector, an integer ≥ 0 (default 0). */
  seed?: number;
  /** Return the unit Ritz vectors as `vectors` (k × n, row i for `values[i]`). Default false. */
  vectors?: boolean;
  /** Check symmetry first with two extra products (a non-symmetric operator is then an error). Default false. */
  checkSymmetry?: boolean;
}

/** What {@link eigenvalues} returns. */
export interface EigenResult {
  /** The k eigenvalue estimates (Ritz values), ordered as `which` says. */
  values: Float64Array;
  /** ‖A·yᵢ − θᵢ·yᵢ‖ for each value (from the Lanczos relation), length k. */
  residuals: Float64Array;
  /** Lanczos steps taken. */
  iterations: number;
  /** Operator products used (the steps, plus 2 for the symmetry check). */
  products: number;
  /**
   * Whether every residual met `tol` (or the Krylov space was exhausted, where the values are
   * exact). False when `maxIter` ran out first: the values are then the best estimates found.
   */
  converged: boolean;
}

/** What {@link eigenvalues} returns with `{ vectors: true }`. */
export interface EigenResultWithVectors extends EigenResult {
  /** The unit Ritz vectors, k × n row-major: row i belongs to `values[i]`. */
  vectors: Float64Array;
}

/**
 * The k extreme eigenvalues of a symmetric operator by Lanczos with full reorthogonalization
 * (the Hessian's top eigenvalues, as PyHessian reports them, in far fewer products than power
 * iteration). A single Krylov space sees an exactly repeated eigenvalue once (unless it exhausts
 * the space), so with exact multiplicities the k values may skip copies.
 *
 * @param op the operator (n × n).
 * @param k how many eigenvalues: an integer in [1, n].
 * @throws HesseError INVALID_ARGUMENT for k outside [1, n], maxIter < k, a bad option, a
 *   non-symmetric operator (with `checkSymmetry`) or a non-finite product; LENGTH_MISMATCH for a
 *   dense matrix whose data is not n² long; OUT_OF_MEMORY for the Krylov basis.
 */
export function eigenvalues(op: OperatorLike, k: number, opts: EigenOptions & { vectors: true }): EigenResultWithVectors;
/** The k extreme eigenvalues by Lanczos, without Ritz vectors (see the overload with `{ vectors: true }` for the full description). */
export function eigenvalues(op: OperatorLike, k: number, opts?: EigenOptions & { vectors?: false }): EigenResult;
/** The k extreme eigenvalues by Lanczos; `vectors` is present exactly when `opts.vectors` was true. */
export function eigenvalues(op: OperatorLike, k: number, opts?: EigenOptions): EigenResult & { vectors?: Float64Array };
export function eigenvalues(op: OperatorLike, k: number, options: EigenOptions = {}): EigenResult & { vectors?: Float64Array } {
  return runJob(op, eigenJob(op, k, options));
}

/** @internal {@link eigenvalues}' options, checked, as a job. */
export function eigenJob(op: AsyncOperatorLike, k: number, options: EigenOptions): Job<EigenResult & { vectors?: Float64Array }> {
  const opts = check.options(options, 'eigenvalues', ['which', 'tol', 'maxIter', 'seed', 'vectors', 'checkSymmetry', 'onProgress']);
  const n = sizeOf(op, 'eigenvalues');
  const kk = check.positive(k, 'eigenvalues: k', n);
  const which = check.oneOf(opts.which ?? 'largest', 'eigenvalues: which', ['largest', 'smallest', 'both']);
  const maxIter = check.integer(opts.maxIter ?? Math.max(300, kk), `eigenvalues: maxIter (k = ${kk})`, kk, check.U32_MAX, true);
  const tol = check.finite(opts.tol ?? 1e-8, 'eigenvalues: tol', 0);
  const seed = check.seed(opts.seed ?? 0, 'eigenvalues: seed');
  const vectors = check.flag(opts.vectors, 'eigenvalues: vectors');
  const symmetry = check.flag(opts.checkSymmetry, 'eigenvalues: checkSymmetry');
  type R = EigenResult & { vectors?: Float64Array };
  return {
    what: 'eigenvalues',
    onProgress: progressOf(opts, 'eigenvalues'),
    sync: (raw) => core().lanczos(raw, kk, which, u32(maxIter), tol, seed, vectors, symmetry) as R,
    start: () => core().RawIteration.lanczos(n, kk, which, u32(maxIter), tol, seed, vectors, symmetry),
    post: (r: R) => {
      if (r.vectors === undefined) delete r.vectors;
      return r;
    },
  };
}

/** What {@link powerIteration} returns. */
export interface PowerIterationResult {
  /** The eigenvalue estimates (signed Rayleigh quotients) in the order found: by decreasing magnitude when each converged. */
  values: Float64Array;
  /** k × n row-major: row i is the unit vector whose Rayleigh quotient is `values[i]`. */
  vectors: Float64Array;
  /** ‖A·vᵢ − λᵢ·vᵢ‖ of the returned vectors (on the deflated operator). */
  residuals: Float64Array;
  /** Operator products used in all. */
  products: number;
  /** Whether every eigenpair met `tol` within `maxIter`. */
  converged: boolean;
}

/** Options of {@link powerIteration}. */
export interface PowerIterationOptions extends ProgressOptions {
  /** Iterations (= products) per eigenpair at most, an integer ≥ 1 (default 1000). */
  maxIter?: number;
  /** Stop an eigenpair when its Rayleigh quotient changes by ≤ tol·|λ| between iterations (PyHessian's rule; finite, ≥ 0; default 1e-8). */
  tol?: number;
  /** Seed of the Gaussian start vectors, an integer ≥ 0 (default 0). */
  seed?: number;
}

/**
 * The k eigenvalues of largest magnitude by power iteration with deflation (PyHessian's method):
 * for i < k, v ← P·A·v / ‖P·A·v‖ with P = I − Σ_{j<i} vⱼvⱼᵀ, λ = vᵀA·v. With eigenvalues ±λ of
 * equal magnitude it does not converge (see `converged`). Prefer {@link eigenvalues}.
 *
 * @param k how many: an integer in [1, n].
 * @throws HesseError INVALID_ARGUMENT for k outside [1, n] or a bad option; operator errors pass through.
 */
export function powerIteration(op: OperatorLike, k: number, options: PowerIterationOptions = {}): PowerIterationResult {
  return runJob(op, powerJob(op, k, options));
}

/** @internal {@link powerIteration}'s options, checked, as a job. */
export function powerJob(op: AsyncOperatorLike, k: number, options: PowerIterationOptions): Job<PowerIterationResult> {
  const opts = check.options(options, 'powerIteration', ['maxIter', 'tol', 'seed', 'onProgress']);
  const n = sizeOf(op, 'powerIteration');
  const kk = check.positive(k, 'powerIteration: k', n);
  const maxIter = check.positive(opts.maxIter ?? 1000, 'powerIteration: maxIter');
  const tol = check.finite(opts.tol ?? 1e-8, 'powerIteration: tol', 0);
  const seed = check.seed(opts.seed ?? 0, 'powerIteration: seed');
  return {
    what: 'powerIteration',
    onProgress: progressOf(opts, 'powerIteration'),
    sync: (raw) => core().powerIteration(raw, kk, u32(maxIter), tol, seed) as PowerIterationResult,
    start: () => core().RawIteration.powerIteration(n, kk, u32(maxIter), tol, seed),
    post: same,
  };
}

/** Options of {@link trace}. */
export interface TraceOptions extends ProgressOptions {
  /** 'hutch++' (default) or 'hutchinson'. */
  method?: 'hutchinson' | 'hutch++';
  /** Hutchinson: the Rademacher probes (≥ 1); Hutch++: the products in all (≥ 3). Default 99. */
  samples?: number;
  /** Seed of the probes, an integer ≥ 0 (default 0). */
  seed?: number;
}

/** What {@link trace} returns. */
export interface TraceResult {
  /** The estimate of tr(A). */
  trace: number;
  /**
   * Standard error of the Monte Carlo part: 0 when the estimate is exact (a Hutch++ sketch of
   * rank n, or n ≤ 1); NaN with fewer than 2 random probes otherwise; for Hutch++ the complement
   * term only (the sketch term is exact).
   */
  stdError: number;
  /** Operator products used. */
  products: number;
}

/**
 * tr(A) by Hutchinson, (1/s)·Σᵢ zᵢᵀA·zᵢ over s Rademacher probes (unbiased, error O(‖A‖_F/√s)),
 * or by Hutch++ (Meyer et al. 2021): tr(QᵀAQ) exactly on a sketch of the top eigenspace plus
 * Hutchinson on the complement, error O(‖A‖_F/m) for PSD A with m products.
 *
 * @throws HesseError INVALID_ARGUMENT for an unknown method, samples < 1 (Hutchinson) or < 3 (Hutch++), a bad seed.
 */
export function trace(op: OperatorLike, options: TraceOptions = {}): TraceResult {
  return runJob(op, traceJob(op, options));
}

/** @internal {@link trace}'s options, checked, as a job. */
export function traceJob(op: AsyncOperatorLike, options: TraceOptions): Job<TraceResult> {
  const opts = check.options(options, 'trace', ['method', 'samples', 'seed', 'onProgress']);
  const method = check.oneOf(opts.method ?? 'hutch++', 'trace: method', ['hutchinson', 'hutch++']);
  const samples = check.integer(opts.samples ?? 99, `trace: samples (method '${method}')`, method === 'hutch++' ? 3 : 1, check.U32_MAX, true);
  const seed = check.seed(opts.seed ?? 0, 'trace: seed');
  const n = sizeOf(op, 'trace');
  return {
    what: 'trace',
    onProgress: progressOf(opts, 'trace'),
    sync: (raw) => core().traceEstimate(raw, method, u32(samples), seed) as TraceResult,
    start: () => core().RawIteration.traceEstimate(n, method, u32(samples), seed),
    post: same,
  };
}

/** Options of {@link diagonal}. */
export interface DiagonalOptions extends ProgressOptions {
  /** Rademacher probes, an integer ≥ 1 (default 100). */
  samples?: number;
  /** Seed of the probes, an integer ≥ 0 (default 0). */
  seed?: number;
}

/** What {@link diagonal} returns. */
export interface DiagonalResult {
  /** The estimate of diag(A), length n. */
  diagonal: Float64Array;
  /** Operator products used (= samples). */
  products: number;
}

/**
 * diag(A) by Hutchinson's estimator (1/s)·Σᵢ zᵢ ⊙ A·zᵢ with s Rademacher probes (Bekas et al.;
 * AdaHessian's Hessian diagonal): unbiased, entry i has variance Σ_{j≠i} aᵢⱼ²/s.
 *
 * @throws HesseError INVALID_ARGUMENT for samples < 1 or a bad seed.
 */
export function diagonal(op: OperatorLike, options: DiagonalOptions = {}): DiagonalResult {
  return runJob(op, diagonalJob(op, options));
}

/** @internal {@link diagonal}'s options, checked, as a job. */
export function diagonalJob(op: AsyncOperatorLike, options: DiagonalOptions): Job<DiagonalResult> {
  const opts = check.options(options, 'diagonal', ['samples', 'seed', 'onProgress']);
  const samples = check.positive(opts.samples ?? 100, 'diagonal: samples');
  const seed = check.seed(opts.seed ?? 0, 'diagonal: seed');
  const n = sizeOf(op, 'diagonal');
  return {
    what: 'diagonal',
    onProgress: progressOf(opts, 'diagonal'),
    sync: (raw) => core().diagonalEstimate(raw, u32(samples), seed) as DiagonalResult,
    start: () => core().RawIteration.diagonalEstimate(n, u32(samples), seed),
    post: same,
  };
}

/** Options of {@link spectralDensity}. */
export interface DensityOptions extends ProgressOptions {
  /** Rademacher probes averaged, an integer ≥ 1 (default 10; the error falls as 1/√probes). */
  probes?: number;
  /** Lanczos steps per probe, an integer ≥ 1 (default 80; capped at n). Memory: steps·n float64. */
  steps?: number;
  /** Points of the output grid, an integer ≥ 2 (default 1000). */
  gridPoints?: number;
  /** Gaussian kernel width relative to the spectral range of the nodes, finite and > 0 (default 0.01). */
  sigma?: number;
  /** Seed of the probes, an integer ≥ 0 (default 0). */
  seed?: number;
}

/** What {@link spectralDensity} returns. */
export interface DensityResult {
  /** The uniform grid, spanning [min θ − 5s, max θ + 5s] with s = sigma·range (`gridPoints` points). */
  grid: Float64Array;
  /** φ(t) = Σⱼ wⱼ·N(t; θⱼ, s²) on the grid, scaled so that its trapezoid integral is 1. */
  density: Float64Array;
  /** The quadrature: nodes θⱼ (Ritz values of all probes) … */
  nodes: Float64Array;
  /** … and weights wⱼ (summing to 1): Σⱼ wⱼ·θⱼᵖ estimates tr(Aᵖ)/n for p ≤ 2·steps − 1. */
  weights: Float64Array;
  /** Operator products used (probes·min(steps, n) at most). */
  products: number;
}

/**
 * The spectral density of a symmetric operator by stochastic Lanczos quadrature (Ubaru, Chen &
 * Saad 2017; Ghorbani et al. 2019 for Hessians): each probe's Lanczos tridiagonal gives a
 * Gauss quadrature of the spectral measure; the probes are averaged and smoothed by a Gaussian.
 *
 * @throws HesseError INVALID_ARGUMENT for probes or steps < 1, gridPoints < 2, sigma ≤ 0, a bad
 *   seed, or an operator of size 0; OUT_OF_MEMORY for the basis.
 */
export function spectralDensity(op: OperatorLike, options: DensityOptions = {}): DensityResult {
  return runJob(op, densityJob(op, options));
}

/** @internal {@link spectralDensity}'s options, checked, as a job. */
export function densityJob(op: AsyncOperatorLike, options: DensityOptions): Job<DensityResult> {
  const opts = check.options(options, 'spectralDensity', ['probes', 'steps', 'gridPoints', 'sigma', 'seed', 'onProgress']);
  const probes = check.positive(opts.probes ?? 10, 'spectralDensity: probes');
  const steps = check.positive(opts.steps ?? 80, 'spectralDensity: steps');
  const gridPoints = check.integer(opts.gridPoints ?? 1000, 'spectralDensity: gridPoints', 2, check.U32_MAX, true);
  const sigma = check.positiveNumber(opts.sigma ?? 0.01, 'spectralDensity: sigma');
  const seed = check.seed(opts.seed ?? 0, 'spectralDensity: seed');
  const n = sizeOf(op, 'spectralDensity');
  return {
    what: 'spectralDensity',
    onProgress: progressOf(opts, 'spectralDensity'),
    sync: (raw) => core().slq(raw, u32(probes), u32(steps), u32(gridPoints), sigma, seed) as DensityResult,
    start: () => core().RawIteration.slq(n, u32(probes), u32(steps), u32(gridPoints), sigma, seed),
    post: same,
  };
}

/** Options of {@link cg}. */
export interface CgOptions extends ProgressOptions {
  /** λ, finite and ≥ 0: solve (A + λI)x = b (Levenberg–Marquardt / Tikhonov damping). Default 0. */
  damping?: number;
  /** Warm start x₀, length n (float32 or float64); default 0. Costs one extra product. */
  x0?: Vector;
  /** Stop at ‖r‖ ≤ max(rtol·‖b‖, atol); both finite and ≥ 0, defaults 1e-6 and 0. */
  rtol?: number;
  /** See `rtol`. */
  atol?: number;
  /** Iterations (one product each) at most, an integer ≥ 0 (default 1000). */
  maxIter?: number;
  /** Do not stop on the tolerance before this many iterations (Hessian-free's minimum), an integer ≥ 0 (default 0). */
  minIter?: number;
}

/** What {@link cg} returns. */
export interface CgResult {
  /** The last iterate (before the non-positive direction, if one was met), length n. */
  x: Float64Array;
  /** Iterations run. */
  iterations: number;
  /** ‖r‖ of the recursively updated residual (= ‖b − (A + λI)x‖ up to rounding). */
  residualNorm: number;
  /** ‖r‖ ≤ max(rtol·‖b‖, atol) at exit. */
  converged: boolean;
  /** Set when pᵀ(A + λI)p ≤ 0 stopped the iteration (A + λI is not positive definite): the direction p and its Rayleigh quotient. */
  negativeCurvature?: { direction: Float64Array; rayleigh: number };
  /** q(xₖ) = ½xₖᵀ(A + λI)xₖ − bᵀxₖ for k = 0 … iterations (x₀ first): the quadratic model Hessian-free optimization backtracks on. */
  model: Float64Array;
  /** Operator products used. */
  products: number;
}

/**
 * Conjugate gradients on (A + λI)x = b, A symmetric, A + λI positive definite for convergence
 * (otherwise it stops at the first direction of non-positive curvature and reports it).
 *
 * @param b the right-hand side, length n (a Float32Array or Float64Array).
 * @throws HesseError LENGTH_MISMATCH if b or x0 is not n long; INVALID_ARGUMENT for a negative or
 *   non-finite damping, rtol or atol, a bad iteration count, or a non-finite b, x0 or product.
 */
export function cg(op: OperatorLike, b: Vector, options: CgOptions = {}): CgResult {
  return runJob(op, cgJob(op, b, options));
}

/** @internal {@link cg}'s arguments, checked, as a job. */
export function cgJob(op: AsyncOperatorLike, b: Vector, options: CgOptions): Job<CgResult> {
  const opts = check.options(options, 'cg', ['damping', 'x0', 'rtol', 'atol', 'maxIter', 'minIter', 'onProgress']);
  const n = sizeOf(op, 'cg');
  const rhs = f64(b, n, 'cg: b');
  const x0 = opts.x0 === undefined ? undefined : f64(opts.x0, n, 'cg: x0');
  const damping = check.finite(opts.damping ?? 0, 'cg: damping', 0);
  const rtol = check.finite(opts.rtol ?? 1e-6, 'cg: rtol', 0);
  const atol = check.finite(opts.atol ?? 0, 'cg: atol', 0);
  const maxIter = check.count(opts.maxIter ?? 1000, 'cg: maxIter');
  const minIter = check.count(opts.minIter ?? 0, 'cg: minIter');
  return {
    what: 'cg',
    onProgress: progressOf(opts, 'cg'),
    sync: (raw) => core().cg(raw, rhs, damping, x0, rtol, atol, u32(maxIter), u32(minIter)) as CgResult,
    start: () => core().RawIteration.cg(n, rhs, damping, x0, rtol, atol, u32(maxIter), u32(minIter)),
    post: (r: CgResult) => {
      if (r.negativeCurvature === undefined) delete r.negativeCurvature;
      return r;
    },
  };
}

/** Options of {@link minres}. */
export interface MinresOptions extends ProgressOptions {
  /** Solve (A + shift·I)x = b; finite, default 0. (SciPy's `minres(shift=σ)` solves (A − σI)x = b.) */
  shift?: number;
  /** Stop when ‖b − (A + shift·I)x‖ ≤ rtol·‖b‖; finite, ≥ 0, default 1e-8. */
  rtol?: number;
  /** Iterations (one product each, plus one at exit for the true residual) at most, an integer ≥ 0 (default 1000). */
  maxIter?: number;
}

/** What {@link minres} returns. */
export interface MinresResult {
  /** The minimum-residual iterate, length n. */
  x: Float64Array;
  /** Iterations run. */
  iterations: number;
  /**
   * The true ‖b − (A + shift·I)x‖ of the returned x, from one product at exit (the recurrence's
   * estimate can be far off once Lanczos breaks down on a singular system).
   */
  residualNorm: number;
  /** residualNorm ≤ rtol·‖b‖ at exit (never, when A + shift·I is singular and b is outside its range). */
  converged: boolean;
  /** Operator products used: the iterations, plus one for the true residual. */
  products: number;
}

/**
 * MINRES (Paige & Saunders 1975) on (A + shift·I)x = b from x₀ = 0: A symmetric, indefinite
 * allowed (the Hessian away from a minimum).
 *
 * @param b the right-hand side, length n (a Float32Array or Float64Array).
 * @throws HesseError LENGTH_MISMATCH if b is not n long; INVALID_ARGUMENT for a non-finite shift,
 *   a negative rtol, a bad maxIter, or a non-finite b or product.
 */
export function minres(op: OperatorLike, b: Vector, options: MinresOptions = {}): MinresResult {
  return runJob(op, minresJob(op, b, options));
}

/** @internal {@link minres}' arguments, checked, as a job. */
export function minresJob(op: AsyncOperatorLike, b: Vector, options: MinresOptions): Job<MinresResult> {
  const opts = check.options(options, 'minres', ['shift', 'rtol', 'maxIter', 'onProgress']);
  const n = sizeOf(op, 'minres');
  const rhs = f64(b, n, 'minres: b');
  const shift = check.finite(opts.shift ?? 0, 'minres: shift');
  const rtol = check.finite(opts.rtol ?? 1e-8, 'minres: rtol', 0);
  const maxIter = check.count(opts.maxIter ?? 1000, 'minres: maxIter');
  return {
    what: 'minres',
    onProgress: progressOf(opts, 'minres'),
    sync: (raw) => core().minres(raw, rhs, shift, rtol, u32(maxIter)) as MinresResult,
    start: () => core().RawIteration.minres(n, rhs, shift, rtol, u32(maxIter)),
    post: same,
  };
}

/** What {@link eigh} returns: A = V·diag(values)·Vᵀ. */
export interface EighResult {
  /** The n eigenvalues, ascending. */
  values: Float64Array;
  /** n × n row-major: row j is the unit eigenvector of `values[j]`. */
  vectors: Float64Array;
}

/**
 * Dense symmetric eigendecomposition A = V·diag(λ)·Vᵀ (faer's self-adjoint eigensolver).
 *
 * @param a the n × n matrix, row-major (n² numbers; float32, float64 or a number array).
 * @param n the order, an integer ≥ 0.
 * @throws HesseError LENGTH_MISMATCH if a is not n² long; INVALID_ARGUMENT if a is not symmetric
 *   or not finite; OUT_OF_MEMORY.
 */
export function eigh(a: Vector | readonly number[], n: number): EighResult {
  const size = check.count(n, 'eigh: n');
  const data = f64(a, size * size, `eigh: a (${size}×${size})`);
  return call(() => core().eigh(data, size)) as EighResult;
}

/**
 * The eigenvalues alone of a dense symmetric matrix, ascending (faer; about a third of
 * {@link eigh}'s time, since no eigenvectors are accumulated).
 *
 * @param a the n × n matrix, row-major (n² numbers; float32, float64 or a number array).
 * @param n the order, an integer ≥ 0.
 * @throws HesseError LENGTH_MISMATCH if a is not n² long; INVALID_ARGUMENT if a is not symmetric
 *   or not finite; OUT_OF_MEMORY.
 */
export function eigvalsh(a: Vector | readonly number[], n: number): Float64Array {
  const size = check.count(n, 'eigvalsh: n');
  const data = f64(a, size * size, `eigvalsh: a (${size}×${size})`);
  return call(() => core().eigvalsh(data, size));
}

/**
 * The Cholesky factor of a symmetric positive definite matrix: A = L·Lᵀ, L lower triangular,
 * returned row-major n × n (faer).
 *
 * @param a the n × n matrix, row-major (n² numbers; float32, float64 or a number array).
 * @param n the order, an integer ≥ 0.
 * @throws HesseError LENGTH_MISMATCH if a is not n² long; INVALID_ARGUMENT if a is not symmetric,
 *   not finite or not positive definite; OUT_OF_MEMORY.
 */
export function cholesky(a: Vector | readonly number[], n: number): Float64Array {
  const size = check.count(n, 'cholesky: n');
  const data = f64(a, size * size, `cholesky: a (${size}×${size})`);
  return call(() => core().cholesky(data, size));
}
