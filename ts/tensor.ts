/**
 * Tensor handles. The data lives in wasm memory, owned by Rust; a `Tensor` is a small JS handle
 * to it. Free it with `dispose()` or `using`; a FinalizationRegistry frees forgotten ones
 * eventually (a safety net only: it cannot run during synchronous code).
 */
import { call, HesseError } from './errors.js';
import { core, memory } from './runtime.js';
import type { RawTensor } from './wasm/hesse.js';
import { describe, dims, dtype as checkDtype, flag, fmtShape } from './validate.js';

/** The element types of a tensor: IEEE 754 single (the default) or double precision. */
export type DType = 'float32' | 'float64';
/** A typed array of a dtype. */
export type TypedArrayOf<D extends DType> = D extends 'float64' ? Float64Array : Float32Array;
// `Symbol.dispose` and `Disposable` as lib.esnext.disposable declares them, so that the shipped
// .d.ts compiles for users whose lib is ES2022 (identical declarations merge with the lib's).
declare global {
  interface SymbolConstructor {
    readonly dispose: unique symbol;
  }
  interface Disposable {
    [Symbol.dispose](): void;
  }
}

/** Typed arrays whose elements are numbers (BigInt arrays are not). */
export type NumericArray = Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint8ClampedArray | Uint16Array | Uint32Array;
/**
 * Numbers in row-major order: one number (a 0-d tensor), a typed array, a flat array, or nested
 * arrays (rectangular; their shape is the tensor's).
 */
export type TensorData = number | NumericArray | readonly number[] | NestedArray;
/** Nested arrays of numbers, as NumPy's `tolist()` gives them. */
export interface NestedArray extends ReadonlyArray<number | NestedArray> {}

// Workers before compatibility date 2025-05-05 have no FinalizationRegistry: no safety net there.
const finalizer: Pick<FinalizationRegistry<RawTensor>, 'register' | 'unregister'> =
  typeof FinalizationRegistry === 'undefined'
    ? { register() {}, unregister: () => false }
    : new FinalizationRegistry<RawTensor>((raw) => raw.free());

const isNumericArray = (x: unknown): x is NumericArray =>
  ArrayBuffer.isView(x) && !(x instanceof DataView) && !(x instanceof BigInt64Array) && !(x instanceof BigUint64Array);

/**
 * Nested arrays → (shape, row-major values). The shape is read down the first elements; every
 * other element must agree with it, and every leaf must be a number: otherwise an error naming
 * the first element out of place, as `data[1][2]`.
 */
function unnest(data: readonly unknown[]): { shape: number[]; flat: number[] } {
  const shape: number[] = [];
  for (let level: unknown = data; Array.isArray(level); level = level[0]) shape.push(level.length);
  const flat: number[] = [];
  const path: number[] = [];
  const at = () => `data${path.map((i) => `[${i}]`).join('')}`;
  const first = (depth: number) => `data${'[0]'.repeat(depth)}`;
  const visit = (x: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof x !== 'number') {
        const why = Array.isArray(x) ? `nested deeper than ${first(depth)} (ragged nesting)` : 'not a number';
        throw new HesseError('INVALID_ARGUMENT', `tensor: ${at()} is ${describe(x)}, ${why}`);
      }
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth]) {
      throw new HesseError(
        'INVALID_ARGUMENT',
        `tensor: ${at()} is ${describe(x)} where ${first(depth)} is an array of length ${shape[depth]}: nested arrays must be rectangular (shape ${fmtShape(shape)} from the first elements)`,
      );
    }
    for (let i = 0; i < x.length; i++) {
      path.push(i);
      visit(x[i], depth + 1);
      path.pop();
    }
  };
  visit(data, 0);
  return { shape, flat };
}

/** The shape and row-major values of `data`, checked against `shape` when one is given. */
function layout(data: unknown, shape: readonly number[] | undefined): { shape: number[]; flat: ArrayLike<number> } {
  const given = shape === undefined ? undefined : dims(shape, 'tensor: shape');
  let inferred: number[];
  let flat: ArrayLike<number>;
  if (typeof data === 'number') [inferred, flat] = [[], [data]];
  else if (isNumericArray(data)) [inferred, flat] = [[data.length], data];
  else if (Array.isArray(data)) ({ shape: inferred, flat } = unnest(data));
  else throw new HesseError('INVALID_ARGUMENT', `tensor: data must be a number, a typed array or (nested) arrays of numbers, got ${describe(data)}`);
  if (!given) return { shape: inferred, flat };
  if (inferred.length > 1 && fmtShape(inferred) !== fmtShape(given)) {
    throw new HesseError('INVALID_ARGUMENT', `tensor: nested data has shape ${fmtShape(inferred)} but shape ${fmtShape(given)} was given (pass flat data to reshape it)`);
  }
  const n = given.reduce((x, y) => x * y, 1);
  if (flat.length !== n) {
    throw new HesseError('LENGTH_MISMATCH', `tensor: data has ${flat.length} elements but shape ${fmtShape(given)} needs ${n}`);
  }
  return { shape: given, flat };
}

/**
 * A dense row-major tensor of dtype `D` ('float32' or 'float64') whose data lives in wasm memory
 * (like a `torch.Tensor` on its own device). Immutable: ops return new tensors. Make one with
 * {@link tensor}, {@link zeros} or {@link full}; free it with `dispose()` or `using`.
 */
export class Tensor<D extends DType = DType> {
  #raw: RawTensor | undefined;
  /** Dimensions, outermost first (row-major). */
  readonly shape: readonly number[];
  /** The element type: 'float32' or 'float64'. */
  readonly dtype: D;
  /** Number of elements. */
  readonly size: number;

  /** @internal Wraps a handle returned by the wasm core. Use {@link tensor} to make tensors. */
  constructor(raw: RawTensor) {
    this.#raw = raw;
    this.shape = Object.freeze(Array.from(raw.shape()));
    this.dtype = raw.dtype() as D;
    this.size = raw.size();
    finalizer.register(this, raw, this);
  }

  /** @internal The live handle, or a DISPOSED error naming the op that wanted it. */
  raw(op: string): RawTensor {
    if (!this.#raw) {
      throw new HesseError('DISPOSED', `${op}: tensor of shape ${fmtShape(this.shape)} (${this.dtype}) was used after dispose()`);
    }
    return this.#raw;
  }

  /** Whether `dispose()` has been called. */
  get disposed(): boolean {
    return this.#raw === undefined;
  }

  /**
   * A copy of the elements in row-major order: a Float64Array for a float64 tensor, a
   * Float32Array for a float32 one (as `t.numpy().ravel()`). Throws DISPOSED after `dispose()`.
   */
  toArray(): TypedArrayOf<D> {
    const raw = this.raw('toArray');
    const Ctor = this.dtype === 'float64' ? Float64Array : Float32Array;
    return new Ctor(memory().buffer, raw.dataPtr(), this.size).slice() as TypedArrayOf<D>;
  }

  /** The elements as nested JS arrays of the tensor's shape (NumPy's `tolist`); a number for a 0-d tensor. */
  toList(): number | NestedArray {
    const flat = Array.from(this.toArray());
    const build = (dim: number, offset: number): number | NestedArray => {
      if (dim === this.shape.length) return flat[offset]!;
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor (`t.item()`); SHAPE_MISMATCH for any other size. */
  item(): number {
    if (this.size !== 1) {
      throw new HesseError('SHAPE_MISMATCH', `item: tensor of shape ${fmtShape(this.shape)} has ${this.size} elements, not 1`);
    }
    return this.toArray()[0]!;
  }

  /** Frees the wasm memory now. Idempotent; any later use throws a DISPOSED HesseError. */
  dispose(): void {
    if (this.#raw) {
      finalizer.unregister(this);
      this.#raw.free();
      this.#raw = undefined;
    }
  }

  /** The same as `dispose()`, so that `using t = tensor(...)` frees `t` at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** `Tensor([[1, 2], [3, 4]], dtype=float32)`, or `Tensor(disposed, shape=[2, 2])`. */
  toString(): string {
    return this.disposed ? `Tensor(disposed, shape=${fmtShape(this.shape)})` : `Tensor(${JSON.stringify(this.toList())}, dtype=${this.dtype})`;
  }
}

/**
 * Creates a tensor from data in row-major order (as `torch.tensor` / `jnp.array`).
 *
 * @param data one number (a 0-d tensor, shape []), a typed array, a flat array (with `shape`),
 *   or nested arrays (rectangular; their shape is inferred, and a given `shape` must equal it).
 * @param shape dimensions; inferred from the data when omitted.
 * @param dtype 'float32' (the default, or that of a Float64Array: 'float64').
 * @throws HesseError INVALID_ARGUMENT for data that is not numbers (strings, null, undefined,
 *   booleans, objects), ragged nesting or nesting that does not match `shape`, naming the first
 *   element out of place (`data[1][2]`); LENGTH_MISMATCH when flat data has another length than
 *   `shape` needs; UNKNOWN_DTYPE; OUT_OF_MEMORY.
 * @example
 * const a = tensor([[1, 2], [3, 4]]);
 * const b = tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * const s = tensor(3); // shape []
 */
export function tensor<D extends DType>(data: TensorData, shape: readonly number[] | undefined, dtype: D): Tensor<D>;
/** A Float64Array without a dtype: a float64 tensor. Shape and errors as in the first signature of `tensor`. */
export function tensor(data: Float64Array, shape?: readonly number[]): Tensor<'float64'>;
/** Any other data without a dtype: a float32 tensor. Shape and errors as in the first signature of `tensor`. */
export function tensor(data: Exclude<TensorData, Float64Array>, shape?: readonly number[]): Tensor<'float32'>;
/** A dtype known only at run time (float32 when omitted, float64 for a Float64Array). Shape and errors as in the first signature of `tensor`. */
export function tensor(data: TensorData, shape?: readonly number[], dtype?: DType): Tensor;
export function tensor(data: TensorData, shape?: readonly number[], dtype?: DType): Tensor {
  const dt = checkDtype(dtype ?? (data instanceof Float64Array ? 'float64' : 'float32'), 'tensor');
  const { shape: shp, flat } = layout(data, shape);
  const raw = call(() => core().RawTensor.zeros(shp, dt));
  const Ctor = dt === 'float64' ? Float64Array : Float32Array;
  new Ctor(memory().buffer, raw.dataPtr(), flat.length).set(flat);
  return new Tensor(raw);
}

/** A tensor of zeros (as `torch.zeros` / `jnp.zeros`). Throws INVALID_ARGUMENT for a bad shape, UNKNOWN_DTYPE. */
export function zeros<D extends DType = 'float32'>(shape: readonly number[], dtype: D = 'float32' as D): Tensor<D> {
  const shp = dims(shape, 'zeros: shape');
  checkDtype(dtype, 'zeros');
  return new Tensor<D>(call(() => core().RawTensor.zeros(shp, dtype)));
}

/** A tensor filled with `value` (any number, ±∞ and NaN included), as `torch.full` / `jnp.full`. */
export function full<D extends DType = 'float32'>(shape: readonly number[], value: number, dtype: D = 'float32' as D): Tensor<D> {
  if (typeof value !== 'number') throw new HesseError('INVALID_ARGUMENT', `full: value must be a number, got ${describe(value)}`);
  checkDtype(dtype, 'full');
  const t = zeros(dims(shape, 'full: shape'), dtype);
  if (value !== 0) {
    const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
    new Ctor(memory().buffer, t.raw('full').dataPtr(), t.size).fill(value);
  }
  return t;
}

/**
 * Memory accounting: live tensor handles and their bytes, the Rust heap now and at its peak
 * since `resetPeak` (what a workload needs), and the size of wasm memory (which never shrinks).
 */
export function memoryStats(opts: { resetPeak?: boolean } = {}): { liveTensors: number; liveBytes: number; heapBytes: number; heapPeakBytes: number; wasmBytes: number } {
  const [n, b] = core().liveTensors();
  const [heap, peak] = core().heapStats();
  if (flag(opts.resetPeak, 'memoryStats: resetPeak')) core().resetHeapPeak();
  return { liveTensors: n!, liveBytes: b!, heapBytes: heap!, heapPeakBytes: peak!, wasmBytes: memory().buffer.byteLength };
}
