/**
 * Data bigger than one batch: the bookkeeping of an objective over N samples taken B at a time
 * (ts/objective.ts does the orchestration). The data stay on the JS side as flat typed arrays and
 * are staged into wasm one batch at a time; every quantity is the exact mean over the N samples,
 * Σᵢ (Bᵢ/N)·(the batch's own mean-loss quantity), because each loss is a mean of per-sample terms
 * (PyTorch's mean reductions) and the models are per-sample (no batch statistics).
 */
import { HesseError } from './errors.js';
import type { DType, Tensor, TypedArrayOf } from './tensor.js';
import * as check from './validate.js';

/**
 * An array kept on the JS side (not in wasm): `data` row-major, `shape` [N, …] with N the samples
 * on axis 0. An objective stages it into wasm one batch at a time.
 */
export interface HostArray<D extends DType = DType> {
  /** The values, row-major: a Float32Array or Float64Array (its type is the dtype). */
  data: TypedArrayOf<D>;
  /** The shape, samples first; its product is data.length. */
  shape: readonly number[];
}

/**
 * Integer data kept on the JS side: token ids or other indices for a model whose input is
 * integer (`inputKind: 'index'`), exact whatever the objective's float dtype.
 */
export interface IndexHostArray {
  /** The indices, row-major. */
  data: Int32Array | BigInt64Array;
  /** The shape, samples first; its product is data.length. */
  shape: readonly number[];
}

/** A host copy of integer x: exact indices and their shape. */
export interface IndexHost {
  /** The indices, row-major. */
  data: Int32Array | BigInt64Array;
  /** The shape, samples first. */
  shape: readonly number[];
}

/** A host copy of an objective's x or y: its values, shape and dtype. */
export interface Host {
  /** The values, row-major. */
  data: Float32Array | Float64Array;
  /** The shape, samples first. */
  shape: readonly number[];
  /** The dtype of `data`. */
  dtype: DType;
}

/** One batch of a dataset: samples [start, start + rows), weighted rows / N in every mean. */
export interface Batch {
  /** Its position in the plan, from 0. */
  index: number;
  /** Its first sample. */
  start: number;
  /** Its sample count Bᵢ (the last batch may be short). */
  rows: number;
  /** Bᵢ / N, its share of every mean. */
  weight: number;
}

/**
 * The batches of N samples in batches of B: ⌈N/B⌉ batches of B, the last one N − (⌈N/B⌉−1)·B
 * (short when B does not divide N). B ≥ N (and N = 0) is one batch of all N.
 */
export function plan(n: number, batchSize: number): Batch[] {
  if (batchSize >= n) return [{ index: 0, start: 0, rows: n, weight: 1 }];
  const out: Batch[] = [];
  for (let start = 0, index = 0; start < n; start += batchSize, index++) {
    const rows = Math.min(batchSize, n - start);
    out.push({ index, start, rows, weight: rows / n });
  }
  return out;
}

/**
 * The seed of batch i's Monte Carlo draws from the user's seed s: (s + i·⌊2³²/φ⌋) mod 2³² (a Weyl
 * sequence; 0x9E3779B9 is odd, so the ⌈N/B⌉ seeds of one objective are distinct). Batch 0 keeps s,
 * so one batch draws exactly what the unbatched objective draws, and every batch seed is a seed
 * the public API takes (a batch's draws can be reproduced on its slice alone). A Monte Carlo
 * estimate therefore depends on the batch size (each batch's labels come from its own stream),
 * while staying an unbiased estimate of the same matrix.
 */
export function batchSeed(seed: number, index: number): number {
  return Number((BigInt(seed) + BigInt(index) * 0x9e3779b9n) % 2n ** 32n);
}

/**
 * A host copy of x or y (a Tensor is copied out of wasm; a {@link HostArray} is checked and kept
 * as given, no copy).
 * @throws HesseError INVALID_ARGUMENT for a host array that is not a float typed array with a
 *   shape of non-negative integers whose product is its length.
 */
export function hostOf(v: Tensor | HostArray, what: string): Host {
  if (v === null || typeof v !== 'object') throw new HesseError('INVALID_ARGUMENT', `${what} must be a Tensor or a { data, shape } host array, got ${check.describe(v)}`);
  if ('toArray' in v && typeof v.toArray === 'function') {
    const t = v as Tensor;
    return { data: t.toArray(), shape: t.shape, dtype: t.dtype };
  }
  const { data, shape } = v as HostArray;
  const dtype: DType | undefined = data instanceof Float64Array ? 'float64' : data instanceof Float32Array ? 'float32' : undefined;
  if (!dtype) throw new HesseError('INVALID_ARGUMENT', `${what}.data must be a Float32Array or Float64Array, got ${check.describe(data)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new HesseError('INVALID_ARGUMENT', `${what}.shape must be an array of integers ≥ 0, got ${check.describe(shape)}`);
  }
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new HesseError('SHAPE_MISMATCH', `${what}: shape ${check.fmtShape(shape)} has ${size} values but data has ${data.length}`);
  return { data, shape: [...shape], dtype };
}

/**
 * x of an integer-input model as exact indices: integer typed arrays as given; floats (a Tensor,
 * a float host array: ids written as numbers) checked to be integers, and, in float32, below 2²⁴
 * (past it float32 no longer holds every integer, so an id may already have been rounded).
 * @throws HesseError INVALID_ARGUMENT naming the first value that is not an exact index.
 */
export function indexHostOf(v: Tensor | HostArray | IndexHostArray, what: string): IndexHost {
  const d = (v as IndexHostArray | null)?.data;
  if (d instanceof Int32Array || d instanceof BigInt64Array) {
    const shape = (v as IndexHostArray).shape;
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
      throw new HesseError('INVALID_ARGUMENT', `${what}.shape must be an array of integers ≥ 0, got ${check.describe(shape)}`);
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== d.length) throw new HesseError('SHAPE_MISMATCH', `${what}: shape ${check.fmtShape(shape)} has ${size} values but data has ${d.length}`);
    return { data: d, shape: [...shape] };
  }
  const f = hostOf(v as Tensor | HostArray, what);
  const limit = f.dtype === 'float32' ? 2 ** 24 : 2 ** 31;
  const out = new Int32Array(f.data.length);
  for (let i = 0; i < f.data.length; i++) {
    const x = f.data[i]!;
    if (!Number.isInteger(x) || Math.abs(x) >= limit) {
      throw new HesseError(
        'INVALID_ARGUMENT',
        `${what}: the model's input is integer (indices such as token ids), but value ${x} at index ${i} is not ${Number.isInteger(x) ? `an index exact in ${f.dtype} (|i| < 2^${Math.log2(limit)}); pass an Int32Array or BigInt64Array host array` : 'an integer'}`,
      );
    }
    out[i] = x;
  }
  return { data: out, shape: f.shape };
}

/** The values of samples [start, start + rows) of a host array (a view, no copy). */
export function rowsOf<A extends Float32Array | Float64Array | Int32Array | BigInt64Array>(h: { data: A; shape: readonly number[] }, start: number, rows: number): A {
  const width = h.shape.slice(1).reduce((a, b) => a * b, 1);
  return h.data.subarray(start * width, (start + rows) * width) as A;
}

/**
 * Weighted sums Σᵢ wᵢ·rᵢ of the arrays each batch returns (the k-th of one batch's results with
 * the k-th of the others'), in float64, rounded once to the first batch's array types at the end.
 */
export class WeightedSum {
  #sums: Float64Array[] | undefined;
  #types: (Float32ArrayConstructor | Float64ArrayConstructor)[] = [];
  /** The first results while they are the only ones, with weight 1: the sum is then they themselves (exactly). */
  #alone: readonly (Float32Array | Float64Array)[] | undefined;

  /** Adds w·r for one batch's results r (the same count and lengths for every batch). */
  add(r: readonly (Float32Array | Float64Array)[], w: number): void {
    if (!this.#sums && !this.#alone && w === 1) {
      this.#alone = r;
      return;
    }
    if (this.#alone) {
      const first = this.#alone;
      this.#alone = undefined;
      this.add(first, 1);
    }
    if (!this.#sums) {
      this.#sums = r.map((a) => new Float64Array(a.length));
      this.#types = r.map((a) => (a instanceof Float64Array ? Float64Array : Float32Array));
    }
    r.forEach((a, k) => {
      const s = this.#sums![k]!;
      if (a.length !== s.length) throw new Error(`internal: batch result ${k} has ${a.length} values, the first batch's ${s.length}`);
      for (let j = 0; j < a.length; j++) s[j]! += w * a[j]!;
    });
  }
  /** The sums, each in the type of the first batch's array. */
  result(): (Float32Array | Float64Array)[] {
    if (this.#alone) return [...this.#alone];
    // (new Float32Array(s) converts in one pass; Float32Array.from(s) iterates, ~10× slower.)
    return (this.#sums ?? []).map((s, k) => (this.#types[k] === Float64Array ? s : new Float32Array(s)));
  }
}
