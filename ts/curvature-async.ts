/**
 * The estimators and solvers of curvature.ts for operators whose products arrive
 * asynchronously (workers, a GPU): each algorithm is a reverse-communication iteration in Rust
 * (hesse-wasm/src/iteration.rs) that asks for one product at a time; here each product is
 * awaited and handed back. Options, checks, results and error codes are the sync functions'
 * (the same job builders), and so are the numbers: the same Rust arithmetic, bitwise.
 *
 * Errors: a rejected (or throwing) matvec is a HesseError like a throwing matvec in the sync
 * path (its own code if it threw a HesseError, else INVALID_ARGUMENT "the operator's matvec
 * threw: …"); a result of the wrong length is LENGTH_MISMATCH. The iteration and any Rust
 * operator are freed in every case, and the Promise always settles.
 */
import { call, HesseError } from './errors.js';
import {
  type AsyncOperatorLike,
  type CgOptions,
  type CgResult,
  cgJob,
  type DensityOptions,
  type DensityResult,
  densityJob,
  type DiagonalOptions,
  type DiagonalResult,
  diagonalJob,
  type EigenOptions,
  type EigenResult,
  type EigenResultWithVectors,
  eigenJob,
  type Job,
  type MinresOptions,
  type MinresResult,
  minresJob,
  type NativeOperator,
  type OperatorLike,
  type PowerIterationOptions,
  type PowerIterationResult,
  powerJob,
  rawOperatorOf,
  sizeOf,
  type TraceOptions,
  type TraceResult,
  traceJob,
  type Vector,
} from './curvature.js';

type Product = (v: Float64Array) => Float64Array | Promise<Float64Array>;

/** The message of a thrown value, as hesse-wasm's `thrown` reads it. */
function thrownMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return typeof e === 'string' ? e : 'a non-Error value';
}

/** A matvec's failure as the sync path reports it (hesse-wasm/src/linalg.rs, `apply_shared`). */
function matvecError(e: unknown): HesseError {
  const code = (e as { code?: unknown } | null)?.code;
  if (e instanceof HesseError || (e instanceof Error && typeof code === 'string')) {
    return new HesseError((e as HesseError).code, `the operator's matvec failed: ${thrownMessage(e)}`);
  }
  return new HesseError('INVALID_ARGUMENT', `the operator's matvec threw: ${thrownMessage(e)}`);
}

/** A JS operator's product, awaited and checked (type, length) into a Float64Array. */
function jsProduct(op: { readonly size: number; matvec: (v: Float64Array, out: Float64Array) => unknown }, n: number): Product {
  return async (v) => {
    const out = new Float64Array(n);
    let r: unknown;
    try {
      r = await op.matvec(v, out);
    } catch (e) {
      throw matvecError(e);
    }
    const p = r === undefined ? out : r instanceof Float64Array ? r : r instanceof Float32Array || Array.isArray(r) ? Float64Array.from(r as ArrayLike<number>) : undefined;
    if (p === undefined) throw new HesseError('INVALID_ARGUMENT', 'the operator\'s matvec must return (or resolve to) a Float64Array, a Float32Array or a number array');
    if (p.length !== n) throw new HesseError('LENGTH_MISMATCH', `the operator's matvec returned ${p.length} values for size ${n}`);
    return p;
  };
}

/** Runs the job's iteration, awaiting each product; frees the iteration whatever happens. */
async function drive<T>(job: Job<T>, product: Product): Promise<T> {
  const it = call(() => job.start());
  try {
    const total = (call(() => it.progress()) as { total: number }).total;
    for (let done = 1; ; done++) {
      const v = call(() => it.request()) as Float64Array | undefined;
      if (v === undefined) return job.post(call(() => it.result()) as T);
      const p = await product(v);
      call(() => it.provide(p));
      job.onProgress?.(done, total, job.what);
    }
  } finally {
    it.free();
  }
}

/**
 * Runs a job on any operator: a JS matvec (sync or async) is called (and awaited) from here; an
 * objective's curvature or a dense matrix is a Rust operator whose products run in wasm.
 */
async function runAsync<T>(op: AsyncOperatorLike, job: Job<T>): Promise<T> {
  const n = sizeOf(op, job.what);
  const native = typeof (op as NativeOperator).rawOperator === 'function' || 'data' in op;
  if (!native) {
    if (typeof (op as { matvec?: unknown }).matvec !== 'function') throw new HesseError('INVALID_ARGUMENT', `${job.what}: the operator has no matvec (pass { size, matvec(v) } or { size, data })`);
    return drive(job, jsProduct(op as Parameters<typeof jsProduct>[0], n));
  }
  const raw = rawOperatorOf(op as OperatorLike, job.what);
  try {
    return await drive(job, (v) => call(() => raw.apply(v)) as Float64Array);
  } finally {
    try {
      raw.free();
    } catch {
      // Only after a trap can free fail; the trap's error is the one to report.
    }
  }
}

/** {@link eigenvalues} on an async operator (same options, result and errors), with Ritz vectors. */
export function eigenvaluesAsync(op: AsyncOperatorLike, k: number, opts: EigenOptions & { vectors: true }): Promise<EigenResultWithVectors>;
/** {@link eigenvalues} on an async operator, without Ritz vectors. */
export function eigenvaluesAsync(op: AsyncOperatorLike, k: number, opts?: EigenOptions & { vectors?: false }): Promise<EigenResult>;
/** {@link eigenvalues} on an async operator; `vectors` is present exactly when `opts.vectors` was true. */
export function eigenvaluesAsync(op: AsyncOperatorLike, k: number, opts?: EigenOptions): Promise<EigenResult & { vectors?: Float64Array }>;
export async function eigenvaluesAsync(op: AsyncOperatorLike, k: number, options: EigenOptions = {}): Promise<EigenResult & { vectors?: Float64Array }> {
  return runAsync(op, eigenJob(op, k, options));
}

/** {@link powerIteration} on an async operator. */
export async function powerIterationAsync(op: AsyncOperatorLike, k: number, options: PowerIterationOptions = {}): Promise<PowerIterationResult> {
  return runAsync(op, powerJob(op, k, options));
}

/** {@link trace} on an async operator. */
export async function traceAsync(op: AsyncOperatorLike, options: TraceOptions = {}): Promise<TraceResult> {
  return runAsync(op, traceJob(op, options));
}

/** {@link diagonal} on an async operator. */
export async function diagonalAsync(op: AsyncOperatorLike, options: DiagonalOptions = {}): Promise<DiagonalResult> {
  return runAsync(op, diagonalJob(op, options));
}

/** {@link spectralDensity} on an async operator. */
export async function spectralDensityAsync(op: AsyncOperatorLike, options: DensityOptions = {}): Promise<DensityResult> {
  return runAsync(op, densityJob(op, options));
}

/** {@link cg} on an async operator. */
export async function cgAsync(op: AsyncOperatorLike, b: Vector, options: CgOptions = {}): Promise<CgResult> {
  return runAsync(op, cgJob(op, b, options));
}

/** {@link minres} on an async operator. */
export async function minresAsync(op: AsyncOperatorLike, b: Vector, options: MinresOptions = {}): Promise<MinresResult> {
  return runAsync(op, minresJob(op, b, options));
}
