/**
 * Curvature from products alone: extreme eigenvalues (Lanczos, power iteration), traces
 * (Hutchinson, Hutch++), diagonals, spectral densities (stochastic Lanczos quadrature), and
 * solvers (CG with damping, MINRES), on any symmetric linear operator: an objective's Hessian,
 * Gauss–Newton or Fisher (the algorithm then runs inside wasm with no JS per product), a
 * user-supplied `{ size, matvec }`, or a dense matrix. The algorithms are hesse-core's `linalg`.
 * Seeds make every randomized estimate reproducible.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import type { RawOperator } from './wasm/hesse.js';

/** A symmetric linear operator known through products. */
export interface LinearOperator {
  readonly size: number;
  /** A·v: write it into `out` (and return nothing), or return it. Must not modify v. */
  matvec(v: Float64Array, out: Float64Array): Float64Array | Float32Array | number[] | void;
}

/** A dense symmetric matrix, row-major. */
export interface DenseMatrix {
  readonly size: number;
  readonly data: Float64Array | Float32Array | number[];
}

/** Operators that can hand the algorithms a Rust-side operator (an objective's curvature). */
export interface NativeOperator extends LinearOperator {
  /** @internal A fresh Rust operator (a snapshot of the current point); the caller frees it. */
  rawOperator(): RawOperator;
}

export type OperatorLike = LinearOperator | NativeOperator | DenseMatrix;

function isNative(op: OperatorLike): op is NativeOperator {
  return typeof (op as NativeOperator).rawOperator === 'function';
}

/** Runs `fn` on a Rust operator for `op`, freed afterwards. */
function withOperator<T>(op: OperatorLike, fn: (raw: RawOperator) => T): T {
  if (!op || !Number.isInteger(op.size) || op.size < 0) {
    throw new HesseError('INVALID_ARGUMENT', 'expected a linear operator { size, matvec(v) } or a dense matrix { size, data }');
  }
  let raw: RawOperator;
  if (isNative(op)) raw = op.rawOperator();
  else if ('data' in op) raw = call(() => core().RawOperator.fromDense(Float64Array.from(op.data), op.size));
  else if (typeof op.matvec === 'function') {
    raw = core().RawOperator.fromFunction(op.size, (v: Float64Array) => {
      const out = new Float64Array(op.size);
      const r = op.matvec(v, out);
      return r === undefined ? out : r instanceof Float64Array ? r : Float64Array.from(r);
    });
  } else throw new HesseError('INVALID_ARGUMENT', 'the operator has no matvec');
  try {
    return call(() => fn(raw));
  } finally {
    raw.free();
  }
}

export interface EigenOptions {
  /** 'largest' (default, descending), 'smallest' (ascending), or 'both' (⌊k/2⌋ smallest and ⌈k/2⌉ largest, ascending). */
  which?: 'largest' | 'smallest' | 'both';
  /** Relative residual tolerance (default 1e-8). */
  tol?: number;
  /** Lanczos steps at most (default 300). */
  maxIter?: number;
  seed?: number;
  /** Return the Ritz vectors (k × n, row i for value i). Default false. */
  vectors?: boolean;
  /** Check symmetry first with two extra products (a non-symmetric operator is an error). */
  checkSymmetry?: boolean;
}

export interface EigenResult {
  values: Float64Array;
  vectors?: Float64Array;
  residuals: Float64Array;
  /** Operator products used. */
  products: number;
  converged: boolean;
}

/**
 * The k extreme eigenvalues by Lanczos with full reorthogonalization. A single Krylov space
 * sees an exactly repeated eigenvalue once (unless it exhausts the space).
 */
export function eigenvalues(op: OperatorLike, k: number, opts: EigenOptions = {}): EigenResult {
  return withOperator(op, (raw) =>
    core().lanczos(raw, k, opts.which ?? 'largest', opts.maxIter ?? 300, opts.tol ?? 1e-8, opts.seed ?? 0, opts.vectors ?? false, opts.checkSymmetry ?? false),
  ) as EigenResult;
}

/** The k eigenvalues of largest magnitude by power iteration with deflation (PyHessian's method). */
export function powerIteration(op: OperatorLike, k: number, opts: { maxIter?: number; tol?: number; seed?: number } = {}): EigenResult {
  return withOperator(op, (raw) => core().powerIteration(raw, k, opts.maxIter ?? 1000, opts.tol ?? 1e-8, opts.seed ?? 0)) as EigenResult;
}

/** tr(A) by Hutchinson (`samples` Rademacher probes) or Hutch++ (`samples` products in all). */
export function trace(op: OperatorLike, opts: { method?: 'hutchinson' | 'hutch++'; samples?: number; seed?: number } = {}): { trace: number; stdError: number; products: number } {
  return withOperator(op, (raw) => core().traceEstimate(raw, opts.method ?? 'hutch++', opts.samples ?? 99, opts.seed ?? 0));
}

/** diag(A) by Hutchinson's estimator (E[z ⊙ Az] with Rademacher z). */
export function diagonal(op: OperatorLike, opts: { samples?: number; seed?: number } = {}): { diagonal: Float64Array; products: number } {
  return withOperator(op, (raw) => core().diagonalEstimate(raw, opts.samples ?? 100, opts.seed ?? 0));
}

export interface DensityOptions {
  /** Rademacher probes (default 10). */
  probes?: number;
  /** Lanczos steps per probe (default 80). */
  steps?: number;
  /** Points of the output grid (default 1000). */
  gridPoints?: number;
  /** Gaussian broadening, relative to the spectral range (default 0.01). */
  sigma?: number;
  seed?: number;
}

/** The spectral density by stochastic Lanczos quadrature: grid, density (integrates to 1), and the quadrature. */
export function spectralDensity(op: OperatorLike, opts: DensityOptions = {}): { grid: Float64Array; density: Float64Array; nodes: Float64Array; weights: Float64Array; products: number } {
  return withOperator(op, (raw) => core().slq(raw, opts.probes ?? 10, opts.steps ?? 80, opts.gridPoints ?? 1000, opts.sigma ?? 0.01, opts.seed ?? 0));
}

export interface CgOptions {
  /** λ ≥ 0: solve (A + λI)x = b. */
  damping?: number;
  /** Warm start. */
  x0?: Float64Array;
  /** Stop at ‖r‖ ≤ max(rtol·‖b‖, atol). Defaults 1e-6 and 0. */
  rtol?: number;
  atol?: number;
  maxIter?: number;
  minIter?: number;
}

export interface CgResult {
  x: Float64Array;
  iterations: number;
  residualNorm: number;
  converged: boolean;
  /** Set when pᵀ(A + λI)p ≤ 0 was met (A is not positive definite): the direction and its Rayleigh quotient. */
  negativeCurvature?: { direction: Float64Array; rayleigh: number };
  /** ½xᵀ(A + λI)x − bᵀx after each iteration (the quadratic model Hessian-free optimization backtracks on). */
  model: Float64Array;
  products: number;
}

/** Conjugate gradients on (A + λI)x = b, A symmetric positive (semi)definite. */
export function cg(op: OperatorLike, b: Float64Array, opts: CgOptions = {}): CgResult {
  return withOperator(op, (raw) => core().cg(raw, b, opts.damping ?? 0, opts.x0, opts.rtol ?? 1e-6, opts.atol ?? 0, opts.maxIter ?? 1000, opts.minIter ?? 0));
}

/** MINRES on (A + shift·I)x = b, A symmetric (indefinite allowed: the Hessian). */
export function minres(op: OperatorLike, b: Float64Array, opts: { shift?: number; rtol?: number; maxIter?: number } = {}): { x: Float64Array; iterations: number; residualNorm: number; converged: boolean; products: number } {
  return withOperator(op, (raw) => core().minres(raw, b, opts.shift ?? 0, opts.rtol ?? 1e-8, opts.maxIter ?? 1000));
}

/** A dense matrix as float64, without a copy when it already is (wasm copies it in anyway). */
const f64 = (a: Float64Array | number[]) => (a instanceof Float64Array ? a : Float64Array.from(a));

/** Dense symmetric eigendecomposition: values ascending, vectors row j for values[j]. */
export function eigh(a: Float64Array | number[], n: number): { values: Float64Array; vectors: Float64Array } {
  return call(() => core().eigh(f64(a), n));
}

/** The eigenvalues alone of a dense symmetric matrix, ascending (about a third of eigh's time). */
export function eigvalsh(a: Float64Array | number[], n: number): Float64Array {
  return call(() => core().eigvalsh(f64(a), n));
}

/** The Cholesky factor L of a symmetric positive definite matrix (A = L·Lᵀ; L lower, row-major). */
export function cholesky(a: Float64Array | number[], n: number): Float64Array {
  return call(() => core().cholesky(f64(a), n));
}
