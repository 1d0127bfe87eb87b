/**
 * Tensor handles. The data lives in wasm memory, owned by Rust; a `Tensor` is a small JS handle
 * to it. Free it with `dispose()` or `using`; a FinalizationRegistry frees forgotten ones
 * eventually (a safety net only: it cannot run during synchronous code).
 */
import { call, HesseError } from './errors.js';
import { core, memory } from './runtime.js';
import type { RawTensor } from './wasm/hesse.js';

export type DType = 'float32' | 'float64';
/** A typed array of a dtype. */
export type TypedArrayOf<D extends DType> = D extends 'float64' ? Float64Array : Float32Array;
/** Numbers in row-major order: a typed array, a flat array, or nested arrays. */
export type TensorData = Float32Array | Float64Array | ArrayLike<number> | NestedArray;
export interface NestedArray extends ReadonlyArray<number | NestedArray> {}

const DTYPES: readonly DType[] = ['float32', 'float64'];

// Workers before compatibility date 2025-05-05 have no FinalizationRegistry: no safety net there.
const finalizer: Pick<FinalizationRegistry<RawTensor>, 'register' | 'unregister'> =
  typeof FinalizationRegistry === 'undefined'
    ? { register() {}, unregister: () => false }
    : new FinalizationRegistry<RawTensor>((raw) => raw.free());

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkDtype(dtype: string): DType {
  if (!DTYPES.includes(dtype as DType)) {
    throw new HesseError('UNKNOWN_DTYPE', `unknown dtype '${dtype}': use 'float32' or 'float64'`);
  }
  return dtype as DType;
}

function checkShape(shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff)) {
    throw new HesseError('INVALID_ARGUMENT', `invalid shape ${JSON.stringify(shape)}: expected an array of non-negative integers`);
  }
  return [...shape];
}

/** Shape of nested arrays, checking that they are rectangular. */
function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let level: unknown = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

function flatten(data: TensorData, shape: readonly number[]): ArrayLike<number> {
  if (!Array.isArray(data) || shape.length <= 1) return data as ArrayLike<number>;
  const flat = (data as unknown[]).flat(shape.length - 1) as unknown[];
  if (flat.some((x) => typeof x !== 'number')) {
    throw new HesseError('SHAPE_MISMATCH', `tensor: nested arrays are ragged or deeper than shape ${fmtShape(shape)}`);
  }
  return flat as number[];
}

export class Tensor implements Disposable {
  #raw: RawTensor | undefined;
  /** Dimensions, outermost first (row-major). */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;

  /** @internal Wraps a handle returned by the wasm core. Use {@link tensor} to make tensors. */
  constructor(raw: RawTensor) {
    this.#raw = raw;
    this.shape = Object.freeze(Array.from(raw.shape()));
    this.dtype = raw.dtype() as DType;
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

  /** A copy of the elements in row-major order. */
  toArray(): TypedArrayOf<this['dtype']> {
    const raw = this.raw('toArray');
    const Ctor = this.dtype === 'float64' ? Float64Array : Float32Array;
    return new Ctor(memory().buffer, raw.dataPtr(), this.size).slice() as TypedArrayOf<this['dtype']>;
  }

  /** The elements as nested JS arrays (like NumPy's `tolist`). */
  toList(): number | NestedArray {
    const flat = Array.from(this.toArray());
    const build = (dim: number, offset: number): number | NestedArray => {
      if (dim === this.shape.length) return flat[offset]!;
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /** The value of a one-element tensor. */
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

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return this.disposed ? `Tensor(disposed, shape=${fmtShape(this.shape)})` : `Tensor(${JSON.stringify(this.toList())}, dtype=${this.dtype})`;
  }
}

/**
 * Creates a tensor from data in row-major order.
 *
 * @param data a typed array, a flat array (with `shape`), or nested arrays (shape inferred).
 * @param shape dimensions; inferred from nested arrays or a typed array's length when omitted.
 * @param dtype 'float32' (the default, or that of a Float64Array: 'float64').
 * @example
 * const a = tensor([[1, 2], [3, 4]]);
 * const b = tensor(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 */
export function tensor(data: TensorData, shape?: readonly number[], dtype?: DType): Tensor {
  const dt = checkDtype(dtype ?? (data instanceof Float64Array ? 'float64' : 'float32'));
  const shp = checkShape(shape ?? (Array.isArray(data) ? inferShape(data as NestedArray) : [data.length]));
  const flat = flatten(data, shp);
  const n = shp.reduce((a, b) => a * b, 1);
  if (flat.length !== n) {
    throw new HesseError('LENGTH_MISMATCH', `tensor: data has ${flat.length} elements but shape ${fmtShape(shp)} needs ${n}`);
  }
  const raw = call(() => core().RawTensor.zeros(shp, dt));
  const Ctor = dt === 'float64' ? Float64Array : Float32Array;
  new Ctor(memory().buffer, raw.dataPtr(), n).set(flat);
  return new Tensor(raw);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const shp = checkShape(shape);
  checkDtype(dtype);
  return new Tensor(call(() => core().RawTensor.zeros(shp, dtype)));
}

/** A tensor filled with `value`. */
export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = zeros(shape, dtype);
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
  if (opts.resetPeak) core().resetHeapPeak();
  return { liveTensors: n!, liveBytes: b!, heapBytes: heap!, heapPeakBytes: peak!, wasmBytes: memory().buffer.byteLength };
}
