/**
 * Integer index tensors: the indices of `gather` (token ids, embedding lookups, ONNX Gather
 * constants). They are their own class, not floats of the program dtype (float32 is exact
 * only to 2²⁴): the values cross into Rust as Int32Array or BigInt64Array and stay i64 there.
 * An `IndexTensor` is a constant (plain JS data); `Graph.indexInput` makes a per-run input.
 */
import { HesseError } from './errors.js';
import { describe, dims, fmtShape } from './validate.js';

/** The integer arrays accepted as index data. */
export type IndexArray = Int32Array | BigInt64Array;

/**
 * Constant integer indices of a shape (row-major): what {@link indices} returns and `gather`
 * takes. Immutable; holds its data in JS (nothing to dispose).
 */
export class IndexTensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** The values, row-major. */
  readonly data: IndexArray;
  /** @internal Use {@link indices}. */
  constructor(data: IndexArray, shape: readonly number[]) {
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }
  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }
}

/** Nested arrays of integers (numbers or bigints). */
export interface NestedIndexArray extends ReadonlyArray<number | bigint | NestedIndexArray> {}

/**
 * Integer indices (`torch.tensor(data, dtype=torch.int64)`): from an Int32Array or a
 * BigInt64Array (kept exactly), or from (nested) arrays of safe integers or bigints, with an
 * optional shape (default: the nesting's, or [n] for flat data). A fraction, a number beyond
 * ±(2⁵³ − 1), a bigint beyond int64, ragged nesting or a wrong length is an INVALID_ARGUMENT or
 * LENGTH_MISMATCH HesseError naming the element.
 */
export function indices(data: IndexArray | number | bigint | NestedIndexArray, shape?: readonly number[]): IndexTensor {
  let inferred: number[];
  let flat: IndexArray;
  if (data instanceof Int32Array || data instanceof BigInt64Array) {
    [inferred, flat] = [[data.length], data];
  } else if (typeof data === 'number' || typeof data === 'bigint' || Array.isArray(data)) {
    inferred = [];
    for (let level: unknown = data; Array.isArray(level); level = level[0]) inferred.push(level.length);
    const leaves: unknown[] = typeof data === 'object' ? (data as unknown[]).flat(Infinity) : [data];
    const n = inferred.reduce((a, b) => a * b, 1);
    if (leaves.length !== n) throw new HesseError('INVALID_ARGUMENT', `indices: nested arrays must be rectangular (shape ${fmtShape(inferred)} from the first elements holds ${n} values, got ${leaves.length})`);
    flat = new BigInt64Array(n);
    leaves.forEach((v, i) => {
      if (typeof v === 'number' && Number.isSafeInteger(v)) flat[i] = BigInt(v);
      else if (typeof v === 'bigint' && BigInt.asIntN(64, v) === v) flat[i] = v;
      else throw new HesseError('INVALID_ARGUMENT', `indices: element ${i} is ${typeof v === 'number' || typeof v === 'bigint' ? String(v) : describe(v)}, not an integer in int64 (numbers must be safe integers)`);
    });
  } else {
    throw new HesseError('INVALID_ARGUMENT', `indices: data must be an Int32Array, a BigInt64Array or (nested) arrays of integers, got ${describe(data)}`);
  }
  if (shape === undefined) return new IndexTensor(flat, inferred);
  const s = dims(shape, 'indices: shape');
  const n = s.reduce((a, b) => a * b, 1);
  if (n !== flat.length) throw new HesseError('LENGTH_MISMATCH', `indices: ${flat.length} values for shape ${fmtShape(s)} (${n} values)`);
  return new IndexTensor(flat, s);
}
