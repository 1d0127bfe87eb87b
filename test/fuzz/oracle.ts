/**
 * The fuzz oracle: how each public call's outcome is judged, and the plain-JS references
 * (float64) the returned results are compared to.
 *
 * A call either returns (its result must then match its shape rule and reference), or throws a
 * HesseError with a known code and a readable message. Anything else is a TRAP: a
 * WebAssembly.RuntimeError, any non-HesseError exception, or an instance that fails the
 * canary afterwards. The finding classes:
 *   trap             non-HesseError thrown (the instance may be dead: the worker restarts)
 *   unusable         the canary failed after the case (the instance is corrupt)
 *   wrong-answer     returned, but shape/value contradicts the reference or an identity
 *   accepted-invalid returned for an input outside the documented domain (must be an error)
 *   rejected-valid   threw a HesseError for a documented, valid input
 *   bad-error        a HesseError with an unknown code, an empty message, or a wrapped u32 in it
 *   hang             the case ran past the per-case time limit (found by the parent)
 *   crash            the worker process died (found by the parent)
 *   leak             tensor handles still live after the case (reported, not failing)
 */
import type { Validity } from './gen.js';
import { matmulRef } from '../reference.js';

export { matmulRef };

export type FindingClass = 'trap' | 'unusable' | 'wrong-answer' | 'accepted-invalid' | 'rejected-valid' | 'bad-error' | 'hang' | 'crash' | 'leak';

export interface Finding {
  cls: FindingClass;
  /** The call, e.g. 'eigenvalues' or 'objective.kfac' (dedupe key with cls and `error`). */
  op: string;
  /** What happened, in a sentence. */
  detail: string;
  /** Error name/code when one was thrown. */
  error?: string;
}

export const KNOWN_CODES = new Set([
  'SHAPE_MISMATCH', 'LENGTH_MISMATCH', 'DTYPE_MISMATCH', 'UNKNOWN_DTYPE', 'OUT_OF_MEMORY', 'INVALID_ARGUMENT',
  'DISPOSED', 'NOT_INITIALIZED', 'UNSUPPORTED_RUNTIME', 'UNSUPPORTED_OP', 'MALFORMED_FILE', 'NON_FINITE', 'LOAD_FAILED',
]);

/** A u32/u64 wrapped from a negative number, or the u32 max, inside a message. */
const WRAPPED = /4294967295|42949672(?:8\d|9[0-4])|1844674407370955\d{4}/;

/** Thrown to stop a case: a trap (the instance cannot be trusted any more). */
export class Trapped extends Error {}

/** Raised by checks inside a case; recorded as a wrong answer. */
class Wrong extends Error {}

export class Ctx {
  readonly findings: Finding[] = [];
  /** Set while the instance is under memory pressure: OUT_OF_MEMORY is then acceptable everywhere. */
  pressure = false;
  constructor(readonly H: typeof import('../../ts/index.js')) {}

  /**
   * Runs one public call and judges how it ended. Returns the result, or undefined when it threw
   * a HesseError (judged against `validity`). A non-HesseError records a trap and aborts the case.
   */
  attempt<T>(op: string, validity: Validity, fn: () => T, what = ''): T | undefined {
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.judgeError(op, validity, e, what);
      return undefined;
    }
    if (validity === 'err') {
      this.findings.push({ cls: 'accepted-invalid', op, detail: `returned for an invalid input${what ? ` (${what})` : ''}: ${preview(result)}` });
    }
    return result;
  }

  judgeError(op: string, validity: Validity, e: unknown, what = ''): void {
    if (e instanceof Trapped) throw e;
    if (e instanceof Wrong) {
      this.findings.push({ cls: 'wrong-answer', op, detail: e.message });
      return;
    }
    if (this.findings.some((f) => f.cls === 'trap')) throw new Trapped('after a trap'); // the rest is its echo
    // INTERNAL is how ts/errors.ts reports a trap of the wasm core to users: still a trap.
    if (!(e instanceof this.H.HesseError) || e.code === 'INTERNAL') {
      const name = e instanceof WebAssembly.RuntimeError ? 'WebAssembly.RuntimeError' : e instanceof Error ? e.constructor.name : typeof e;
      const msg = e instanceof Error ? e.message : String(e);
      // The innermost named frames say where it came from (the bundle's line numbers would not).
      const frames = e instanceof Error ? [...(e.stack ?? '').matchAll(/^\s+at (?:new )?([^\s(]+) \(/gm)].map((m) => m[1]!).filter((f) => !/panic|abort|__rust|^hesse_wasm\.wasm\.(core|std|alloc)\[|wbindgen/.test(f)).slice(0, 4).join(' < ') : '';
      this.findings.push({ cls: 'trap', op, error: name, detail: `${name}: ${msg.slice(0, 300)}${what ? ` (${what})` : ''}${frames ? ` [at ${frames}]` : ''}` });
      throw new Trapped(msg);
    }
    const code = e.code as string;
    if (!KNOWN_CODES.has(code) || !e.message || WRAPPED.test(e.message)) {
      this.findings.push({ cls: 'bad-error', op, error: code, detail: `HesseError ${code}: '${e.message.slice(0, 300)}'` });
      return;
    }
    if (validity === 'ok' && !(this.pressure && code === 'OUT_OF_MEMORY')) {
      this.findings.push({ cls: 'rejected-valid', op, error: code, detail: `HesseError ${code} for a valid input${what ? ` (${what})` : ''}: ${e.message.slice(0, 300)}` });
    }
  }

  /** Runs result checks; a failed check is a wrong answer (a trap inside still aborts). */
  check(op: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof Wrong) this.findings.push({ cls: 'wrong-answer', op, detail: e.message });
      else this.judgeError(op, 'ok', e, 'while reading the result');
    }
  }
}

export function fail(msg: string): never {
  throw new Wrong(msg);
}

export function expectShape(what: string, got: readonly number[], want: readonly number[]): void {
  if (got.length !== want.length || got.some((d, i) => d !== want[i])) fail(`${what}: shape [${got.join(', ')}], expected [${want.join(', ')}]`);
}

/**
 * |got − want| ≤ atol + rtol·|want| elementwise; NaN must match NaN, ±∞ must match exactly.
 * Where the reference is not finite only `nonFiniteMustMatch` decides whether it is checked.
 */
export function expectClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol: number, nonFiniteMustMatch = true): void {
  if (got.length !== want.length) fail(`${what}: ${got.length} values, expected ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const [g, w] = [got[i]!, want[i]!];
    if (!Number.isFinite(w)) {
      if (!nonFiniteMustMatch) continue;
      if (Number.isNaN(w) ? !Number.isNaN(g) : g !== w) fail(`${what}[${i}] = ${g}, expected ${w}`);
      continue;
    }
    if (!(Math.abs(g - w) <= atol + rtol * Math.abs(w))) fail(`${what}[${i}] = ${g}, expected ${w} (rtol ${rtol}, atol ${atol})`);
  }
}

export function expectFinite(what: string, xs: ArrayLike<number>): void {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i]!)) fail(`${what}[${i}] = ${xs[i]} from finite inputs`);
}

export const allFinite = (xs: ArrayLike<number>): boolean => Array.prototype.every.call(xs, (x: number) => Number.isFinite(x));
export const maxAbs = (xs: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i]!));
  return m;
};
export const norm = (xs: ArrayLike<number>): number => Math.sqrt(dot(xs, xs));
export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

function preview(x: unknown): string {
  try {
    if (x && typeof x === 'object' && 'shape' in x) return `Tensor shape [${(x as { shape: number[] }).shape.join(', ')}]`;
    const s = JSON.stringify(x, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v as Float64Array).slice(0, 6) : v));
    return (s ?? String(x)).slice(0, 160);
  } catch {
    return String(x).slice(0, 160);
  }
}

// ---- plain-JS references (float64) ----------------------------------------------------------

/** erf to ~1e-12 (Taylor series below 3, continued fraction of erfc above). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) (Lentz-free backward evaluation).
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** Pointwise functions by the op's public name; `p` is leakyRelu's slope / elu's alpha. */
export const UNARY_REF: Record<string, (x: number, p: number, q?: number) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  square: (x) => x * x,
  sqrt: Math.sqrt,
  relu: (x) => (x > 0 ? x : Number.isNaN(x) ? NaN : 0),
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  leakyRelu: (x, s) => (x > 0 ? x : x * s),
  elu: (x, a) => (x > 0 ? x : a * Math.expm1(x)),
  softplus,
  gelu: (x) => (x === Infinity ? Infinity : x === -Infinity ? -0 : 0.5 * x * (1 + erf(x / Math.SQRT2))),
  geluTanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
  // The activations of ops.ts (PyTorch's): NaN propagates through min/max (Math.min/max do too).
  hardSigmoid: (x, a, b = 0.5) => Math.max(0, Math.min(1, a * x + b)),
  hardSwish: (x) => (x * Math.max(0, Math.min(6, x + 3))) / 6,
  silu: (x) => x / (1 + Math.exp(-x)),
  /** clip(x, lo, hi) = min(max(x, lo), hi) (lo > hi gives hi, as torch.clamp). */
  clip: (x, lo, hi = Infinity) => Math.min(Math.max(x, lo), hi),
  relu6: (x) => Math.min(Math.max(x, 0), 6),
};

/** NumPy broadcasting of two shapes, or undefined where they do not broadcast. */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1]! * shape[i + 1]!;
  return s;
}

/** out[i] = f(a[broadcast i], b[broadcast i]). */
export function broadcastRef(a: ArrayLike<number>, as: readonly number[], b: ArrayLike<number>, bs: readonly number[], out: readonly number[], f: (x: number, y: number) => number): Float64Array {
  const n = out.reduce((p, d) => p * d, 1);
  const r = new Float64Array(n);
  const os = strides(out);
  const idx = (shape: readonly number[], flat: number) => {
    const st = strides(shape);
    const off = out.length - shape.length;
    let k = 0;
    for (let d = 0; d < shape.length; d++) {
      const coord = Math.floor(flat / os[d + off]!) % out[d + off]!;
      k += (shape[d] === 1 ? 0 : coord) * st[d]!;
    }
    return k;
  };
  for (let i = 0; i < n; i++) r[i] = f(a[idx(as, i)]!, b[idx(bs, i)]!);
  return r;
}

/** Reduction over one axis (or all, axis undefined): values and the output shape. */
export function reduceRef(x: ArrayLike<number>, shape: readonly number[], axis: number | undefined, keep: boolean, op: 'sum' | 'mean' | 'max' | 'logsumexp'): { shape: number[]; values: Float64Array } {
  const combine = (vals: number[]): number => {
    if (op === 'sum') return vals.reduce((a, b) => a + b, 0);
    if (op === 'mean') return vals.reduce((a, b) => a + b, 0) / vals.length;
    if (op === 'max') return vals.reduce((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)), -Infinity);
    const m = vals.reduce((a, b) => Math.max(a, b), -Infinity);
    if (!Number.isFinite(m)) return vals.some(Number.isNaN) ? NaN : m;
    return m + Math.log(vals.reduce((s, v) => s + Math.exp(v - m), 0));
  };
  if (axis === undefined) {
    return { shape: keep ? shape.map(() => 1) : [], values: Float64Array.of(combine(Array.from(x))) };
  }
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const len = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const values = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const vals: number[] = [];
      for (let k = 0; k < len; k++) vals.push(x[(o * len + k) * inner + i]!);
      values[o * inner + i] = combine(vals);
    }
  const out = keep ? shape.map((d, i) => (i === axis ? 1 : d)) : shape.filter((_, i) => i !== axis);
  return { shape: out, values };
}

/** Reduction over several axes (normalized, distinct): one axis at a time, then the kept ones dropped. */
export function reduceAxesRef(x: ArrayLike<number>, shape: readonly number[], axes: readonly number[], keep: boolean, op: 'sum' | 'mean' | 'max' | 'logsumexp'): { shape: number[]; values: Float64Array } {
  let cur = { shape: [...shape], values: Float64Array.from(x) };
  // sum of sums, mean of means (equal counts), max of maxes, lse of lses: all the joint reduction.
  for (const a of axes) cur = reduceRef(cur.values, cur.shape, a, true, op);
  return { shape: keep ? cur.shape : shape.filter((_, i) => !axes.includes(i)), values: cur.values };
}

/** PyTorch's conv2d (cross-correlation, zero padding): stride, pads [top, left, bottom, right], dilation, groups. */
export function conv2dRef(x: ArrayLike<number>, [N, C, H, W]: number[], w: ArrayLike<number>, [O, Cg, KH, KW]: number[], [sh, sw]: number[], [pt, pl, pb, pr]: number[], [dh, dw]: number[] = [1, 1], groups = 1): { shape: number[]; values: Float64Array } {
  const OH = Math.floor((H + pt + pb - dh * (KH - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + pl + pr - dw * (KW - 1) - 1) / sw) + 1;
  const out = new Float64Array(N * O * OH * OW);
  const perGroup = O / groups;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          let s = 0;
          const g = Math.floor(o / perGroup);
          for (let c = 0; c < Cg; c++)
            for (let u = 0; u < KH; u++)
              for (let v = 0; v < KW; v++) {
                const [y, z] = [i * sh + u * dh - pt, j * sw + v * dw - pl];
                if (y >= 0 && y < H && z >= 0 && z < W) s += x[((n * C + g * Cg + c) * H + y) * W + z]! * w[((o * Cg + c) * KH + u) * KW + v]!;
              }
          out[((n * O + o) * OH + i) * OW + j] = s;
        }
  return { shape: [N, O, OH, OW], values: out };
}

/** Eigenvalues of a symmetric n×n matrix by cyclic Jacobi rotations, ascending. */
export function jacobiEigenvalues(a: ArrayLike<number>, n: number): Float64Array {
  const m = Float64Array.from(a);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += m[i * n + j]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (m[q * n + q]! - m[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const [mkp, mkq] = [m[k * n + p]!, m[k * n + q]!];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const [mpk, mqk] = [m[p * n + k]!, m[q * n + k]!];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
      }
  }
  return Float64Array.from({ length: n }, (_, i) => m[i * n + i]!).sort();
}

export function matvec(a: ArrayLike<number>, n: number, v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i]! += a[i * n + j]! * v[j]!;
  return out;
}
