/**
 * Op functions, named as in NumPy / JAX. On tensors they run now and return a new tensor; on
 * symbolic tensors (inside a function given to grad, hvp, hessian, ...) they record a node of
 * the program being traced and return a symbolic tensor. Numbers are accepted wherever an
 * operand of a binary op is.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import { Tensor, tensor } from './tensor.js';
import { evalEager, graphOf, Sym, traced, type Operand } from './trace.js';
import type { RawTensor } from './wasm/hesse.js';

/** The result type of an op: symbolic if any operand is. */
export type Out<A, B = never> = [A] extends [Sym] ? Sym : [B] extends [never] ? Tensor : [B] extends [Sym] ? Sym : Tensor;
type Arr = Sym | Tensor;

/** Runs `fn` on the raw handles of tensors, turning numbers into 0-d tensors of `like`'s dtype. */
function withOperands<T>(op: string, a: Tensor | number, b: Tensor | number, fn: (a: RawTensor, b: RawTensor) => T): T {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : undefined;
  if (!like) throw new HesseError('INVALID_ARGUMENT', `${op}: at least one operand must be a tensor`);
  const temps: Tensor[] = [];
  const lift = (x: Tensor | number): Tensor => {
    if (x instanceof Tensor) return x;
    if (typeof x !== 'number') throw new HesseError('INVALID_ARGUMENT', `${op}: operands must be tensors or numbers, got ${typeof x}`);
    const t = tensor([x], [], like.dtype);
    temps.push(t);
    return t;
  };
  try {
    const [ta, tb] = [lift(a), lift(b)];
    return fn(ta.raw(op), tb.raw(op));
  } finally {
    temps.forEach((t) => t.dispose());
  }
}

function notTraceable(op: string, instead: string): never {
  throw new HesseError('UNSUPPORTED_OP', `${op} cannot be differentiated inside a traced function; ${instead}`);
}

const binary =
  (op: 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum') =>
  <A extends Operand, B extends Operand>(a: A, b: B): Out<A, B> => {
    const g = graphOf(a, b);
    if (g) {
      if (op === 'maximum' || op === 'minimum') notTraceable(op, 'use relu (max(x, 0)) or write it with relu');
      return traced.binary(g, op, a, b) as Out<A, B>;
    }
    return withOperands(op, a as Tensor | number, b as Tensor | number, (ra, rb) => new Tensor(call(() => core().binary(op, ra, rb)))) as Out<A, B>;
  };

/** An elementwise function: an eager kernel on tensors (when there is one), a program node on symbols. */
const unary =
  (op: string, kernel: boolean, alpha = 0) =>
  <X extends Arr>(x: X): Out<X> => {
    if (x instanceof Sym) return traced.act(x, op, alpha) as Out<X>;
    if (kernel) return new Tensor(call(() => core().unary(op, (x as Tensor).raw(op)))) as Out<X>;
    return evalEager([x as Tensor], (s) => traced.act(s, op, alpha)) as Out<X>;
  };

/** a + b, with broadcasting. */
export const add = binary('add');
/** a − b, with broadcasting. */
export const sub = binary('sub');
/** a · b elementwise, with broadcasting. */
export const mul = binary('mul');
/** a / b elementwise, with broadcasting. */
export const div = binary('div');
/** Elementwise maximum (NaN-propagating), with broadcasting. Not traceable. */
export const maximum = binary('maximum');
/** Elementwise minimum (NaN-propagating), with broadcasting. Not traceable. */
export const minimum = binary('minimum');

/** −x */
export function neg<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.scale(x, -1) as Out<X>;
  return new Tensor(call(() => core().unary('neg', (x as Tensor).raw('neg')))) as Out<X>;
}
/** |x| (not traceable: its second derivative is a distribution). */
export function abs<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) notTraceable('abs', 'use square or sqrt(square(x) + eps)');
  return new Tensor(call(() => core().unary('abs', (x as Tensor).raw('abs')))) as Out<X>;
}
/** x² */
export const square = unary('square', true);
/** √x */
export const sqrt = unary('sqrt', true);
/** max(x, 0) */
export const relu = unary('relu', true);
/** eˣ */
export const exp = unary('exp', true);
/** ln x */
export const log = unary('log', true);
/** tanh x */
export const tanh = unary('tanh', true);
/** 1 / (1 + e⁻ˣ) */
export const sigmoid = unary('sigmoid', true);
/** max(x, 0) + slope·min(x, 0) */
export const leakyRelu = <X extends Arr>(x: X, slope = 0.01): Out<X> => unary('leaky_relu', false, slope)(x);
/** x for x > 0, α(eˣ − 1) otherwise. */
export const elu = <X extends Arr>(x: X, alpha = 1): Out<X> => unary('elu', false, alpha)(x);
/** log(1 + eˣ), as PyTorch's Softplus (β = 1, threshold 20: x itself above 20). */
export const softplus = unary('softplus', false);
/** GELU: x·Φ(x) (approximate 'none', the default) or its tanh approximation. */
export const gelu = <X extends Arr>(x: X, opts: { approximate?: 'none' | 'tanh' } = {}): Out<X> =>
  unary(opts.approximate === 'tanh' ? 'gelu_tanh' : 'gelu', false)(x);

/** Options of the reductions. */
export interface ReduceOptions {
  /** Axis to reduce (negative counts from the end); all axes when omitted. */
  axis?: number;
  /** Keep the reduced axis as a dimension of size 1. */
  keepdims?: boolean;
}

const reduction =
  (op: 'sum' | 'mean' | 'max' | 'logsumexp') =>
  <X extends Arr>(x: X, opts: ReduceOptions = {}): Out<X> => {
    const keep = opts.keepdims ?? false;
    if (x instanceof Sym) {
      if (op === 'max') notTraceable('max', 'use logsumexp as a smooth maximum');
      if (op === 'logsumexp') {
        const last = x.shape.length - 1;
        const ax = opts.axis === undefined ? (x.shape.length === 1 ? 0 : undefined) : (opts.axis + x.shape.length) % x.shape.length;
        if (ax !== last) throw new HesseError('UNSUPPORTED_OP', `logsumexp: inside a traced function only the last axis is supported (axis ${last} of [${x.shape.join(', ')}])`);
        const l = traced.lastAxis(x, 'logsumexp');
        return (keep ? l : traced.reshape(l, x.shape.slice(0, -1))) as Out<X>;
      }
      return traced.reduce(x, op, opts.axis, keep) as Out<X>;
    }
    return new Tensor(call(() => core().reduce(op, (x as Tensor).raw(op), opts.axis, keep))) as Out<X>;
  };

/** Σ x along an axis (or all). */
export const sum = reduction('sum');
/** Mean along an axis (or all). */
export const mean = reduction('mean');
/** Maximum along an axis (or all). Not traceable. */
export const max = reduction('max');
/** log Σ exp x along an axis (or all), without overflow. */
export const logsumexp = reduction('logsumexp');

/** Softmax over the last axis. */
export function softmax<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.lastAxis(x, 'softmax') as Out<X>;
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'softmax')) as Out<X>;
}
/** log softmax over the last axis. */
export function logSoftmax<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.lastAxis(x, 'log_softmax') as Out<X>;
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'log_softmax')) as Out<X>;
}
/** (x − mean)/√(var + eps) over the last axis, without the affine part (multiply and add it yourself). */
export function layerNorm<X extends Arr>(x: X, opts: { eps?: number } = {}): Out<X> {
  const eps = opts.eps ?? 1e-5;
  if (x instanceof Sym) return traced.lastAxis(x, 'layer_norm', eps) as Out<X>;
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'layer_norm', eps)) as Out<X>;
}

const lossFn =
  (kind: 'mse' | 'cross_entropy' | 'bce_with_logits') =>
  <A extends Arr, B extends Arr>(pred: A, target: B): Out<A, B> => {
    const g = graphOf(pred, target);
    if (g) return traced.loss(g, kind, pred, target) as Out<A, B>;
    return evalEager([pred as Tensor, target as Tensor], (p, t) => traced.loss(p.graph, kind, p, t)) as Out<A, B>;
  };
/** Mean over all elements of (pred − target)² (PyTorch's MSELoss). */
export const mseLoss = lossFn('mse');
/** Mean over the batch of −log softmax(logits)[label]; labels are class indices [N] stored as numbers. */
export const crossEntropy = lossFn('cross_entropy');
/** Mean over all elements of softplus(z) − y·z (PyTorch's BCEWithLogitsLoss). */
export const bceWithLogits = lossFn('bce_with_logits');

/** A·B of 2-D tensors. */
export function matmul<A extends Arr, B extends Arr>(a: A, b: B): Out<A, B> {
  return gemm(a, b);
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
export function gemm<A extends Arr, B extends Arr>(a: A, b: B, opts: GemmOptions = {}): Out<A, B> {
  const { transA = false, transB = false, alpha = 1, beta = 0, c } = opts;
  if (beta !== 0 && !c) throw new HesseError('INVALID_ARGUMENT', 'gemm: beta ≠ 0 needs opts.c');
  const g = graphOf(a, b, c);
  if (g) {
    let y = traced.matmul(g, a, b, transA, transB);
    if (alpha !== 1) y = traced.scale(y, alpha);
    if (c && beta !== 0) y = traced.binary(g, 'add', y, beta === 1 ? c : traced.binary(g, 'mul', c, beta));
    return y as Out<A, B>;
  }
  const [ta, tb] = [a as Tensor, b as Tensor];
  return new Tensor(
    call(() =>
      c && beta !== 0
        ? core().gemmAccumulate(ta.raw('gemm'), tb.raw('gemm'), c.raw('gemm'), transA, transB, alpha, beta)
        : core().gemm(ta.raw('gemm'), tb.raw('gemm'), transA, transB, alpha),
    ),
  ) as Out<A, B>;
}

/** The transpose of a 2-D tensor. */
export function transpose<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.transpose(x) as Out<X>;
  return new Tensor(call(() => core().transpose((x as Tensor).raw('transpose')))) as Out<X>;
}

/** The axes reordered: output axis a is input axis perm[a] (NumPy's transpose with axes). */
export function permute<X extends Arr>(x: X, perm: readonly number[]): Out<X> {
  if (x instanceof Sym) return traced.permute(x, perm) as Out<X>;
  return evalEager([x as Tensor], (s) => traced.permute(s, perm)) as Out<X>;
}

/** Concatenation along `axis` (negative counts from the end), as NumPy's concatenate. */
export function concat<X extends Arr>(xs: readonly X[], axis = 0): Out<X> {
  const g = graphOf(...xs);
  if (g) return traced.concat(g, [...xs], axis) as Out<X>;
  return evalEager([...(xs as readonly Tensor[])], (...s) => traced.concat(s[0]!.graph, s, axis)) as Out<X>;
}

/** The same elements in a new shape (one dimension may be −1: inferred). */
export function reshape<X extends Arr>(x: X, shape: readonly number[]): Out<X> {
  const size = x.shape.reduce((a, b) => a * b, 1);
  const known = shape.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1 || (holes === 1 && (known === 0 || size % known !== 0))) {
    throw new HesseError('SHAPE_MISMATCH', `reshape: cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  const full = shape.map((d) => (d === -1 ? size / known : d));
  if (!full.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new HesseError('INVALID_ARGUMENT', `reshape: invalid shape [${shape.join(', ')}]`);
  }
  if (x instanceof Sym) return traced.reshape(x, full) as Out<X>;
  return new Tensor(call(() => (x as Tensor).raw('reshape').reshape(full))) as Out<X>;
}

/** A copy with another dtype (tensors only). */
export function astype(x: Tensor, dtype: 'float32' | 'float64'): Tensor {
  return new Tensor(call(() => x.raw('astype').astype(dtype)));
}

/** Options of {@link conv2d}: a number applies to both spatial dims. */
export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
}

/** 2-D cross-correlation as PyTorch's F.conv2d: x [N, C, H, W], w [O, C, KH, KW] → [N, O, OH, OW]. */
export function conv2d<A extends Arr, B extends Arr>(x: A, w: B, opts: Conv2dOptions = {}): Out<A, B> {
  const pair = (v: number | [number, number] | undefined, dflt: number, what: string): [number, number] => {
    const p: [number, number] = Array.isArray(v) ? v : [v ?? dflt, v ?? dflt];
    if (!p.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffff)) {
      throw new HesseError('INVALID_ARGUMENT', `conv2d: ${what} must be non-negative integers, got ${JSON.stringify(v)}`);
    }
    return p;
  };
  const s = pair(opts.stride, 1, 'stride');
  const p = pair(opts.padding, 0, 'padding');
  const g = graphOf(x, w);
  if (g) return traced.conv2d(g, x, w, s, p) as Out<A, B>;
  return new Tensor(call(() => core().conv2d((x as Tensor).raw('conv2d'), (w as Tensor).raw('conv2d'), s[0], s[1], p[0], p[1]))) as Out<A, B>;
}

/** Kernel family for all later ops: 'simd' (default) or 'scalar' (the reference; for tests and benchmarks). */
export function setKernels(kind: 'simd' | 'scalar'): void {
  call(() => core().setKernels(kind));
}

/** The kernel family in use. */
export function getKernels(): 'simd' | 'scalar' {
  return core().getKernels() as 'simd' | 'scalar';
}
