/**
 * Finite-difference checks, for users who doubt a derivative (and for our own tests): central
 * differences of the loss and of the gradient, with the step chosen from the scale of the
 * values (h = ε^(1/3)·max(1, ‖θ‖∞)/‖d‖∞, which balances truncation against rounding).
 * In float32 expect relative errors near 1e-3; in float64 near 1e-8.
 */
import { HesseError } from './errors.js';
import type { DType } from './tensor.js';
import { mulberry32 } from './random.js';
import { describe, positive, seed as checkSeed } from './validate.js';

type Typed = Float32Array | Float64Array;

/** What the checks need: a scalar function of n variables with its gradient and HVP. An Objective is one; so can any user-made object be. */
export interface Differentiable {
  /** The number of variables n. */
  readonly size: number;
  /** The dtype of the vectors the methods take and return. */
  readonly dtype: DType;
  /** The current value of the variable (parameters, or the input for input derivatives). */
  point(): Typed;
  /** The scalar L at `at` (default: the current point). */
  loss(at?: Typed): number;
  /** ∇L at `at`, n values. */
  grad(at?: Typed): Typed;
  /** H·v at `at`, n values. */
  hvp(v: Typed, at?: Typed): Typed;
}

/** The outcome of a check. */
export interface CheckResult {
  /** ‖exact − finite difference‖ / ‖finite difference‖. */
  relError: number;
  /** The step used. */
  step: number;
}

const eps = (d: DType) => (d === 'float64' ? 2.220446049250313e-16 : 1.1920929e-7);
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const infNorm = (v: ArrayLike<number>) => Array.from(v).reduce((s, x) => Math.max(s, Math.abs(x)), 0);

function stepFor(f: Differentiable, params: Typed, d: ArrayLike<number>): number {
  return (Math.cbrt(eps(f.dtype)) * Math.max(1, infNorm(params))) / Math.max(infNorm(d), 1e-300);
}

function shifted(params: Typed, d: ArrayLike<number>, s: number): Typed {
  const p = params.slice() as Typed;
  for (let i = 0; i < p.length; i++) p[i] = p[i]! + s * d[i]!;
  return p;
}

/** A seeded random direction with entries uniform in [-1, 1). */
function direction(n: number, seed: number, dtype: DType): Typed {
  const rand = mulberry32(seed);
  const v = dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = 2 * rand() - 1;
  return v;
}

/** A point or direction given by the user: a Float32Array or Float64Array of f.size values. */
function vector(v: unknown, f: Differentiable, what: string): Typed {
  if (!(v instanceof Float32Array || v instanceof Float64Array)) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must be a Float32Array or Float64Array, got ${describe(v)}`);
  }
  if (v.length !== f.size) throw new HesseError('LENGTH_MISMATCH', `${what} has ${v.length} values, expected ${f.size}`);
  return v;
}

function relErr(exact: ArrayLike<number>, fd: ArrayLike<number>): number {
  const diff = Array.from(exact, (x, i) => x - fd[i]!);
  return norm(diff) / Math.max(norm(fd), 1e-300);
}

/**
 * The gradient against central differences of the loss along `directions` (default 4) seeded
 * random directions d: ⟨∇L, d⟩ vs (L(θ + hd) − L(θ − hd)) / 2h (as `torch.autograd.gradcheck`,
 * but a relative error instead of a pass/fail). `at` (default `f.point()`) is a Float32Array or
 * Float64Array of f.size values.
 *
 * @throws HesseError INVALID_ARGUMENT for a bad `directions`, `seed` or `at`; LENGTH_MISMATCH.
 */
export function gradCheck(f: Differentiable, opts: { directions?: number; seed?: number; at?: Typed } = {}): CheckResult {
  const params = opts.at === undefined ? f.point() : vector(opts.at, f, 'gradCheck: at');
  const directions = positive(opts.directions ?? 4, 'gradCheck: directions');
  const seed = checkSeed(opts.seed ?? 0, 'gradCheck: seed');
  const g = f.grad(params);
  const exact: number[] = [];
  const fd: number[] = [];
  let step = 0;
  for (let j = 0; j < directions; j++) {
    const d = direction(f.size, seed + j, f.dtype);
    step = stepFor(f, params, d);
    exact.push(Array.from(g).reduce((s, gi, i) => s + gi * d[i]!, 0));
    fd.push((f.loss(shifted(params, d, step)) - f.loss(shifted(params, d, -step))) / (2 * step));
  }
  return { relError: relErr(exact, fd), step };
}

/**
 * H·v against central differences of the gradient: (∇L(θ + hv) − ∇L(θ − hv)) / 2h, for `v`
 * (default: a seeded random direction) at `at` (default `f.point()`), each a Float32Array or
 * Float64Array of f.size values.
 *
 * @throws HesseError INVALID_ARGUMENT for a bad `v`, `seed` or `at`; LENGTH_MISMATCH.
 */
export function hvpCheck(f: Differentiable, opts: { v?: Typed; seed?: number; at?: Typed } = {}): CheckResult {
  const params = opts.at === undefined ? f.point() : vector(opts.at, f, 'hvpCheck: at');
  const v = opts.v === undefined ? direction(f.size, checkSeed(opts.seed ?? 0, 'hvpCheck: seed'), f.dtype) : vector(opts.v, f, 'hvpCheck: v');
  const step = stepFor(f, params, v);
  const up = f.grad(shifted(params, v, step));
  const down = f.grad(shifted(params, v, -step));
  const fd = Array.from(up, (u, i) => (u - down[i]!) / (2 * step));
  return { relError: relErr(f.hvp(v, params), fd), step };
}

/**
 * The Hessian [n, n] (row-major) by central differences of the gradient, one coordinate at a
 * time (2n gradients): column j = (∇L(θ + h eⱼ) − ∇L(θ − h eⱼ)) / 2h. For checking small problems.
 *
 * @throws HesseError INVALID_ARGUMENT / LENGTH_MISMATCH for a bad `at`.
 */
export function hessianFD(f: Differentiable, opts: { at?: Typed } = {}): Float64Array {
  const params = opts.at === undefined ? f.point() : vector(opts.at, f, 'hessianFD: at');
  const n = f.size;
  const h = new Float64Array(n * n);
  const e = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    e.fill(0);
    e[j] = 1;
    const step = stepFor(f, params, e);
    const up = f.grad(shifted(params, e, step));
    const down = f.grad(shifted(params, e, -step));
    for (let i = 0; i < n; i++) h[i * n + j] = (up[i]! - down[i]!) / (2 * step);
  }
  return h;
}
