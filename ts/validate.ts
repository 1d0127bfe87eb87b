/**
 * Checks of user-supplied options, in the user's terms. Every count, size, axis and enum that
 * crosses into wasm goes through one of these first, so that a bad value is an INVALID_ARGUMENT
 * HesseError naming the option and the value given, never a wrapped u32 (4294967295) or a
 * silently used default.
 */
import { HesseError } from './errors.js';

function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A shape as messages write it: `[2, 3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** What a value is, for messages: `a string ('x')`, `null`, `an object`. */
export function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return `an array of length ${x.length}`;
  if (typeof x === 'string') return `a string ('${x.length > 20 ? `${x.slice(0, 20)}…` : x}')`;
  if (typeof x === 'boolean') return `a boolean (${x})`;
  if (typeof x === 'object') return `an object (${x.constructor?.name ?? 'no prototype'})`;
  return `a ${typeof x}`;
}

/**
 * A safe integer in [min, max] (defaults: 0 and Number.MAX_SAFE_INTEGER). `what` names the option
 * as the user wrote it, e.g. `'eigenvalues: k'`. `quietCap`: `max` is a default cap (the core's
 * u32), named in the message only when the value is above it.
 * @throws HesseError INVALID_ARGUMENT for anything else (a non-number, a fraction, NaN, out of range).
 */
export function integer(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER, quietCap = false): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    // A default cap (quietCap) is named only when it is what the value broke: "≥ 1" reads better
    // than "in [1, 2³² − 1]" for a 0.
    const open = max === Number.MAX_SAFE_INTEGER || (quietCap && !(typeof value === 'number' && value > max));
    const range = open ? `an integer ≥ ${min}` : `an integer in [${min}, ${max === U32_MAX ? '2³² − 1' : max}]`;
    throw new HesseError('INVALID_ARGUMENT', `${what} must be ${range}, got ${show(value)}`);
  }
  return value;
}

/**
 * The largest count the core takes: its sizes, counts and seeds are u32, so a larger value would
 * wrap (2³² + 1 → 1) instead of being refused.
 */
export const U32_MAX = 0xffffffff;

/** A count ≥ 1 (samples, steps, probes, chunk sizes, k), at most `max` (default 2³² − 1). */
export function positive(value: unknown, what: string, max?: number): number {
  return integer(value, what, 1, max ?? U32_MAX, max === undefined);
}

/** A non-negative count (0 allowed), at most `max` (default 2³² − 1). */
export function count(value: unknown, what: string, max?: number): number {
  return integer(value, what, 0, max ?? U32_MAX, max === undefined);
}

/** An axis of a rank-`rank` tensor, negative counting from the end (NumPy); returns it in [0, rank). */
export function axis(value: unknown, rank: number, what: string): number {
  if (rank === 0) throw new HesseError('INVALID_ARGUMENT', `${what}: a 0-d tensor has no axis ${show(value)}`);
  const a = integer(value, what, -rank, rank - 1);
  return a < 0 ? a + rank : a;
}

/** A finite number (tolerances, damping, step sizes); `min` is inclusive. */
export function finite(value: unknown, what: string, min = -Infinity): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    const range = min === -Infinity ? 'a finite number' : `a finite number ≥ ${min}`;
    throw new HesseError('INVALID_ARGUMENT', `${what} must be ${range}, got ${show(value)}`);
  }
  return value;
}

/** One of a fixed set of strings; anything else is an error listing the choices, never a default. */
export function oneOf<const T extends string>(value: unknown, what: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must be one of ${choices.map((c) => `'${c}'`).join(', ')}, got ${show(value)}`);
  }
  return value as T;
}

/** A seed: an integer in [0, 2³² − 1] (the core's PRNGs are seeded with a u32). */
export function seed(value: unknown, what: string): number {
  return integer(value, what, 0, U32_MAX, true);
}

/** A finite number > 0 (a prior precision, a damping that must regularize, a byte limit). */
export function positiveNumber(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value > 0)) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must be a finite number > 0, got ${show(value)}`);
  }
  return value;
}

/**
 * A vector of exactly `length` numbers: a Float32Array, a Float64Array or an array of numbers.
 * A wrong length is LENGTH_MISMATCH naming both lengths; anything else is INVALID_ARGUMENT.
 */
export function vector(value: unknown, length: number, what: string): Float32Array | Float64Array | readonly number[] {
  if (!(value instanceof Float32Array || value instanceof Float64Array || Array.isArray(value))) {
    const got = value === null || typeof value !== 'object' ? show(value) : `a ${(value as object).constructor?.name ?? 'object'}`;
    throw new HesseError('INVALID_ARGUMENT', `${what} must be a Float32Array or Float64Array of ${length} values, got ${got}`);
  }
  if (value.length !== length) throw new HesseError('LENGTH_MISMATCH', `${what}: expected ${length} values, got ${value.length}`);
  return value;
}

/** A boolean flag (keepdims, transA, checkFinite, …): `undefined` gives `dflt`, anything else not boolean is an error. */
export function flag(value: unknown, what: string, dflt = false): boolean {
  if (value === undefined) return dflt;
  if (typeof value !== 'boolean') throw new HesseError('INVALID_ARGUMENT', `${what} must be true or false, got ${show(value)}`);
  return value;
}

/** The dimensions of a shape: an array of integers in [0, 2³² − 1] (the core's u32 sizes). */
export function dims(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new HesseError('INVALID_ARGUMENT', `${what} must be an array of non-negative integers, got ${show(value)}`);
  return value.map((d, i) => integer(d, `${what}[${i}]`, 0, 0xffffffff));
}

/** A permutation of 0..rank−1 (each axis once; negative axes count from the end), normalized. */
export function permutation(value: unknown, rank: number, what: string): number[] {
  if (!Array.isArray(value) || value.length !== rank) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must list each of the ${rank} axes once, got ${show(value)}`);
  }
  const perm = value.map((a, i) => (rank === 0 ? a : axis(a, rank, `${what}[${i}]`)));
  const twice = perm.find((a, i) => perm.indexOf(a) !== i);
  if (twice !== undefined) throw new HesseError('INVALID_ARGUMENT', `${what} must be a permutation of 0..${rank - 1}, but axis ${twice} appears twice in ${show(value)}`);
  return perm;
}

/** A dtype name: 'float32' or 'float64' (an UNKNOWN_DTYPE HesseError otherwise). */
export function dtype(value: unknown, what: string): 'float32' | 'float64' {
  if (value !== 'float32' && value !== 'float64') {
    throw new HesseError('UNKNOWN_DTYPE', `${what}: unknown dtype ${show(value)}: use 'float32' or 'float64'`);
  }
  return value;
}

/**
 * An options object (undefined is `{}`) with only the given keys: a misspelt option is an error
 * naming it and the choices, never silently ignored.
 */
export function options<T extends object>(value: T | undefined, what: string, keys: readonly (keyof T & string)[]): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HesseError('INVALID_ARGUMENT', `${what} takes an options object { ${keys.join(', ')} }, got ${show(value)}`);
  }
  const unknown = Object.keys(value).filter((k) => !(keys as readonly string[]).includes(k));
  if (unknown.length) {
    throw new HesseError('INVALID_ARGUMENT', `${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}; the options are ${keys.join(', ')}`);
  }
  return value;
}
