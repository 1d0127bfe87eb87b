/**
 * The fuzz generator's building blocks: a seeded PRNG (the library's mulberry32), the values it
 * draws (shapes with 0-size and near-limit dims, fills with NaN/±∞, valid and invalid options),
 * a JSON encoding that keeps NaN, ±∞, −0 and undefined (cases travel to a child process for
 * replay and minimization), and a renderer of values as JS source (the reproducers).
 *
 * Every drawn option carries its validity: 'ok' (documented input: the call must return and
 * its result is checked), 'err' (outside the documented domain: the call must throw a
 * HesseError) or 'any' (either is acceptable; a returned result is still checked).
 */
import { mulberry32 } from '../../ts/random.js';

export type Validity = 'ok' | 'err' | 'any';

export class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  /** Picks by weight: `[[w, value], …]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of choices) if ((r -= w) < 0) return v;
    return choices[choices.length - 1]![1];
  }
}

/** The seed of case `i` of a run seeded `seed` (cases are independent: any one replays alone). */
export function caseSeed(seed: number, i: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (i + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---- values that JSON cannot carry -------------------------------------------------------

/** JSON with NaN, ±Infinity, −0 and undefined kept (as {"$": "NaN"} etc.). */
export function encode(v: unknown): string {
  const walk = (x: unknown): unknown => {
    if (typeof x === 'number') {
      if (Number.isNaN(x)) return { $: 'NaN' };
      if (x === Infinity) return { $: 'Inf' };
      if (x === -Infinity) return { $: '-Inf' };
      if (Object.is(x, -0)) return { $: '-0' };
      return x;
    }
    if (x === undefined) return { $: 'undef' };
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    return x;
  };
  return JSON.stringify(walk(v));
}

export function decode(s: string): unknown {
  const special: Record<string, unknown> = { NaN: NaN, Inf: Infinity, '-Inf': -Infinity, '-0': -0, undef: undefined };
  const walk = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') {
      const keys = Object.keys(x);
      if (keys.length === 1 && keys[0] === '$') return special[(x as { $: string }).$];
      return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, walk(y)]));
    }
    return x;
  };
  return walk(JSON.parse(s));
}

/** A value as JS source. */
export function lit(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isNaN(v) ? 'NaN' : String(v);
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(lit).join(', ')}]`;
  if (v && typeof v === 'object') {
    const entries = Object.entries(v).filter(([, y]) => y !== undefined);
    return `{ ${entries.map(([k, y]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${lit(y)}`).join(', ')} }`;
  }
  return String(v);
}

/** Options as JS source, leaving out the undefined ones. */
export function litOpts(o: Record<string, unknown>): string {
  const kept = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return Object.keys(kept).length ? lit(kept) : '{}';
}

// ---- tensor data --------------------------------------------------------------------------

export type Fill = 'rand' | 'pos' | 'special' | 'zero' | 'small' | 'unit';
export type DT = 'float32' | 'float64';

/**
 * Element i of a fill: no PRNG state, so a reproducer can say `T([2, 3], 'float32', 'rand', 7)`
 * (the helper `T` is printed with every report).
 */
export function fillValue(fill: Fill, i: number, seed: number): number {
  const u = (((i + 1) * 7919 + (seed + 3) * 104729) % 1000) / 1000; // in [0, 1)
  switch (fill) {
    case 'rand':
      return 4 * u - 2;
    case 'small':
      return u - 0.5;
    case 'unit':
      return u; // probabilities, BCE targets
    case 'pos':
      return 0.1 + 2 * u;
    case 'zero':
      return 0;
    case 'special':
      return [NaN, Infinity, -Infinity, 0, -0, 1e30, -1e30, 1e-40, 1, -3.5][(i + seed) % 10]!;
  }
}

/** The test matrices of the estimators: n×n 'spd' (BᵀB/n + I/2), 'sym' ((B + Bᵀ)/2) or 'nonsym' (B). */
export function matrix(n: number, kind: 'spd' | 'sym' | 'nonsym', seed: number): Float64Array {
  const b = Float64Array.from({ length: n * n }, (_, i) => fillValue('rand', i, seed));
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      if (kind === 'nonsym') a[i * n + j] = b[i * n + j]!;
      else if (kind === 'sym') a[i * n + j] = (b[i * n + j]! + b[j * n + i]!) / 2;
      else {
        let s = 0;
        for (let k = 0; k < n; k++) s += b[k * n + i]! * b[k * n + j]!;
        a[i * n + j] = s / n + (i === j ? 0.5 : 0);
      }
    }
  return a;
}

/** The helpers every reproducer uses, as source (kept in sync with the generator's by a test). */
export const T_SOURCE = `const fillValue = ${fillValue.toString()};
const matrix = ${matrix.toString()};
const T = (shape, dtype = 'float32', fill = 'rand', seed = 0) =>
  tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fillValue(fill, i, seed)), shape, dtype);
const vec = (n, fill, seed) => Float64Array.from({ length: n }, (_, i) => fillValue(fill, i, seed));`;

/** A tensor the executor makes with `T(shape, dtype, fill, seed)`. */
export interface TSpec {
  shape: number[];
  dtype: DT;
  fill: Fill;
  seed: number;
}

export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function tspec(r: Rng, shape: number[], dtype: DT, fill?: Fill): TSpec {
  return { shape, dtype, fill: fill ?? r.weighted([[8, 'rand'], [1, 'small'], [1, 'zero'], [1, 'special'], [2, 'pos']] as const), seed: r.int(0, 999) };
}

export const litT = (t: TSpec): string => `T(${lit(t.shape)}, '${t.dtype}', '${t.fill}', ${t.seed})`;

/** A small dim: 0 sometimes, 1 often, mostly 2–5. */
export function dim(r: Rng, max = 5): number {
  return r.weighted([[1, 0], [3, 1], [8, r.int(2, max)]] as const);
}

export function shapeOf(r: Rng, maxRank = 3, maxDim = 5): number[] {
  const rank = r.weighted([[1, 0], [3, 1], [4, 2], [2, 3], [maxRank >= 4 ? 1 : 0, 4]] as const);
  return Array.from({ length: Math.min(rank, maxRank) }, () => dim(r, maxDim));
}

/** A shape that is not one (for tensor(), zeros(), reshape()). */
export const BAD_DIMS: readonly unknown[] = [-1, 1.5, NaN, Infinity, '3', null, 2 ** 32, 2 ** 32 + 3, 2 ** 53, -0.5];
/** Dims that are shapes but whose product nears or passes the 32-bit limits (OUT_OF_MEMORY expected). */
export const HUGE_SHAPES: readonly number[][] = [
  [2 ** 31],
  [3_000_000_000],
  [65536, 65536],
  [65536, 65536, 2],
  [2 ** 30, 4],
  [2 ** 20, 2 ** 20, 2 ** 20],
  [1 << 29],
  [3, 2 ** 31],
  [0, 3_000_000_000, 3_000_000_000],
];

// ---- options -------------------------------------------------------------------------------

export interface Opt<T = unknown> {
  value: T;
  validity: Validity;
}

/** Numbers that a count/integer option must refuse. */
const NOT_COUNTS: readonly unknown[] = [-1, 1.5, NaN, Infinity, -Infinity, '2', null, true, 2 ** 32, 2 ** 32 + 1, 2 ** 53 + 2, -(2 ** 31), {}];

/**
 * A count option: mostly a valid value in [lo, hi] (or the default), sometimes one of the
 * values every count must refuse (validity 'err'), sometimes an edge `edges` (validity 'any').
 */
export function countOpt(r: Rng, lo: number, hi: number, pInvalid = 0.15, edges: readonly number[] = []): Opt<unknown> {
  const roll = r.next();
  if (roll < pInvalid) return refused(r.pick(NOT_COUNTS));
  if (roll < pInvalid + 0.08 && edges.length) return { value: r.pick(edges), validity: 'any' };
  if (roll < pInvalid + 0.3) return { value: undefined, validity: 'ok' };
  return { value: r.int(lo, hi), validity: 'ok' };
}

/** A seed: an integer in [0, 2³² − 1] is valid (validate.seed: the core's PRNGs take a u32). */
export function seedOpt(r: Rng): Opt<unknown> {
  const roll = r.next();
  if (roll < 0.1) return refused(r.pick([-1, 1.5, NaN, Infinity, '2', null, true, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 2 ** 53 + 2, {}]));
  if (roll < 0.4) return { value: undefined, validity: 'ok' };
  return { value: r.pick([0, r.int(1, 999), 2 ** 32 - 1]), validity: 'ok' };
}

/**
 * A value an option must refuse, except null: an option given as null may mean "not given" (the
 * default, as `??` reads it) or be refused, so either is right ('any'); neither may trap or lie.
 */
function refused(value: unknown): Opt<unknown> {
  return { value, validity: value === null ? 'any' : 'err' };
}

/** A finite-number option ≥ min (tolerances, damping): valid draws, and NaN/±∞/strings/negatives. */
export function numberOpt(r: Rng, valid: () => number, min: number, pInvalid = 0.15): Opt<unknown> {
  const roll = r.next();
  if (roll < pInvalid) {
    const bad = [NaN, Infinity, -Infinity, '0.1', null, ...(min > -Infinity ? [min - 1, -1e-3 + min] : [])];
    return refused(r.pick(bad));
  }
  if (roll < pInvalid + 0.3) return { value: undefined, validity: 'ok' };
  return { value: valid(), validity: 'ok' };
}

/** An enum option: a choice, undefined, or an unknown string/number (validity 'err'). */
export function enumOpt(r: Rng, choices: readonly string[], pInvalid = 0.12): Opt<unknown> {
  const roll = r.next();
  if (roll < pInvalid) return refused(r.pick(['', 'LARGEST', 'other', 42, null, 'hutch', 'f32', 'last_layer']));
  if (roll < pInvalid + 0.3) return { value: undefined, validity: 'ok' };
  return { value: r.pick(choices), validity: 'ok' };
}

/** A boolean option: true/false/undefined, rarely a non-boolean (validity 'any'). */
export function boolOpt(r: Rng): Opt<unknown> {
  if (r.chance(0.05)) return { value: r.pick(['yes', 1, 0, null]), validity: 'any' };
  return { value: r.pick([true, false, undefined]), validity: 'ok' };
}

/** The combined validity of several options: any 'err' makes the call invalid. */
export function combine(...vs: Validity[]): Validity {
  if (vs.includes('err')) return 'err';
  if (vs.includes('any')) return 'any';
  return 'ok';
}

/** Options object and validity from named Opts. */
export function opts(o: Record<string, Opt>): { value: Record<string, unknown>; validity: Validity } {
  const value: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v.value !== undefined) value[k] = v.value;
  return { value, validity: combine(...Object.values(o).map((v) => v.validity)) };
}
