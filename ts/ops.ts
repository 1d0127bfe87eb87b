/**
 * Op functions over tensors, named as in NumPy / JAX. Each returns a new tensor; inputs are
 * never modified. Numbers are accepted wherever a tensor operand of a binary op is.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import { Tensor, tensor } from './tensor.js';
import type { RawTensor } from './wasm/hesse.js';

type Operand = Tensor | number;

/** Runs `fn` on the raw handles of tensors, turning numbers into 0-d tensors of `like`'s dtype. */
function withOperands<T>(op: string, a: Operand, b: Operand, fn: (a: RawTensor, b: RawTensor) => T): T {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
  if (!like) throw new HesseError('INVALID_ARGUMENT', `${op}: at least one operand must be a Tensor`);
  const temps: Tensor[] = [];
  const lift = (x: Operand): Tensor => {
    if (x instanceof Tensor) return x;
    if (typeof x !== 'number') throw new HesseError('INVALID_ARGUMENT', `${op}: operands must be Tensors or numbers, got ${typeof x}`);
    const t = tensor([x], [], like.dtype);
    temps.push(t);
    return t;
  };
  try {
    const ta = lift(a);
    const tb = lift(b);
    return fn(ta.raw(op), tb.raw(op));
  } finally {
    temps.forEach((t) => t.dispose());
  }
}

const binary = (op: string) => (a: Operand, b: Operand): Tensor =>
  withOperands(op, a, b, (ra, rb) => new Tensor(call(() => core().binary(op, ra, rb))));

const unary = (op: string) => (x: Tensor): Tensor => new Tensor(call(() => core().unary(op, x.raw(op))));

/** a + b, with broadcasting. */
export const add = binary('add');
/** a − b, with broadcasting. */
export const sub = binary('sub');
/** a · b elementwise, with broadcasting. */
export const mul = binary('mul');
/** a / b elementwise, with broadcasting. */
export const div = binary('div');
/** Elementwise maximum (NaN-propagating), with broadcasting. */
export const maximum = binary('maximum');
/** Elementwise minimum (NaN-propagating), with broadcasting. */
export const minimum = binary('minimum');

/** −x */
export const neg = unary('neg');
/** |x| */
export const abs = unary('abs');
/** x² */
export const square = unary('square');
/** √x */
export const sqrt = unary('sqrt');
/** max(x, 0) */
export const relu = unary('relu');
/** eˣ */
export const exp = unary('exp');
/** ln x */
export const log = unary('log');
/** tanh x */
export const tanh = unary('tanh');
/** 1 / (1 + e⁻ˣ) */
export const sigmoid = unary('sigmoid');

/** Options of the reductions. */
export interface ReduceOptions {
  /** Axis to reduce (negative counts from the end); all axes when omitted. */
  axis?: number;
  /** Keep the reduced axis as a dimension of size 1. */
  keepdims?: boolean;
}

const reduction = (op: string) => (x: Tensor, opts: ReduceOptions = {}): Tensor =>
  new Tensor(call(() => core().reduce(op, x.raw(op), opts.axis, opts.keepdims ?? false)));

/** Σ x along an axis (or all). */
export const sum = reduction('sum');
/** Mean along an axis (or all). */
export const mean = reduction('mean');
/** Maximum along an axis (or all). */
export const max = reduction('max');
/** log Σ exp x along an axis (or all), without overflow. */
export const logsumexp = reduction('logsumexp');

/** A·B of 2-D tensors. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return new Tensor(call(() => core().gemm(a.raw('matmul'), b.raw('matmul'), false, false, 1)));
}

/** Options of {@link gemm}. */
export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** C, required when beta ≠ 0 (not modified: the result is a new tensor). */
  c?: Tensor;
}

/** α·op(A)·op(B) + β·C, where op transposes when asked (BLAS's GEMM). */
export function gemm(a: Tensor, b: Tensor, opts: GemmOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1, beta = 0, c } = opts;
  if (beta !== 0 && !c) throw new HesseError('INVALID_ARGUMENT', 'gemm: beta ≠ 0 needs opts.c');
  return new Tensor(
    call(() =>
      c && beta !== 0
        ? core().gemmAccumulate(a.raw('gemm'), b.raw('gemm'), c.raw('gemm'), transA, transB, alpha, beta)
        : core().gemm(a.raw('gemm'), b.raw('gemm'), transA, transB, alpha),
    ),
  );
}

/** The transpose of a 2-D tensor. */
export function transpose(x: Tensor): Tensor {
  return new Tensor(call(() => core().transpose(x.raw('transpose'))));
}

/** The same elements in a new shape (one dimension may be −1: inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1 || (holes === 1 && (known === 0 || x.size % known !== 0))) {
    throw new HesseError('SHAPE_MISMATCH', `reshape: cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  const full = shape.map((d) => (d === -1 ? x.size / known : d));
  if (!full.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new HesseError('INVALID_ARGUMENT', `reshape: invalid shape [${shape.join(', ')}]`);
  }
  return new Tensor(call(() => x.raw('reshape').reshape(full)));
}

/** A copy with another dtype. */
export function astype(x: Tensor, dtype: 'float32' | 'float64'): Tensor {
  return new Tensor(call(() => x.raw('astype').astype(dtype)));
}

/** Options of {@link conv2d}: a number applies to both spatial dims. */
export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

/** 2-D cross-correlation as PyTorch's F.conv2d: x [N, C, H, W], w [O, C, KH, KW] → [N, O, OH, OW]. */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const pair = (v: number | [number, number] | undefined, dflt: number, what: string): [number, number] => {
    const p: [number, number] = Array.isArray(v) ? v : [v ?? dflt, v ?? dflt];
    if (!p.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffff)) {
      throw new HesseError('INVALID_ARGUMENT', `conv2d: ${what} must be non-negative integers, got ${JSON.stringify(v)}`);
    }
    return p;
  };
  const [sh, sw] = pair(opts.stride, 1, 'stride');
  const [ph, pw] = pair(opts.padding, 0, 'padding');
  return new Tensor(call(() => core().conv2d(x.raw('conv2d'), w.raw('conv2d'), sh, sw, ph, pw)));
}

/** Kernel family for all later ops: 'simd' (default) or 'scalar' (the reference; for tests and benchmarks). */
export function setKernels(kind: 'simd' | 'scalar'): void {
  call(() => core().setKernels(kind));
}

/** The kernel family in use. */
export function getKernels(): 'simd' | 'scalar' {
  return core().getKernels() as 'simd' | 'scalar';
}
