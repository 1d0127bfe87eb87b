/**
 * Op functions, named as in NumPy / JAX. On tensors they run now and return a new tensor; on
 * symbolic tensors (inside a function given to grad, hvp, hessian, ...) they record a node of
 * the program being traced and return a symbolic tensor. Numbers are accepted wherever an
 * operand of a binary op is.
 *
 * Every op throws a HesseError for bad input, never a wasm trap: SHAPE_MISMATCH naming the op
 * and the shapes, DTYPE_MISMATCH for mixed float32/float64 operands, DISPOSED for a disposed
 * tensor, INVALID_ARGUMENT for a bad option (named, with the value given) or a non-tensor operand.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import { Tensor, tensor, type DType } from './tensor.js';
import { evalEager, graphOf, Sym, traced, type Operand } from './trace.js';
import type { RawTensor } from './wasm/hesse.js';
import { axis as checkAxis, count, describe, fmtShape, dtype as checkDtype, finite, flag, integer, oneOf, permutation, positive } from './validate.js';

/** The dtype of a tensor type (never for numbers and symbols). */
type DTypeOf<X> = X extends Tensor<infer D> ? D : never;
/** A tensor of the operands' dtype (DType when none says). */
type TensorOf<X> = Tensor<[DTypeOf<X>] extends [never] ? DType : DTypeOf<X>>;
/**
 * The result type of an op: symbolic (`Sym`) if any operand is, else a tensor of the operands'
 * dtype: `add(Tensor<'float64'>, 2)` is a `Tensor<'float64'>`.
 */
export type Out<A, B = never> = [A] extends [Sym] ? Sym : [B] extends [never] ? TensorOf<A> : [B] extends [Sym] ? Sym : TensorOf<A | B>;
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

/** The handle of a tensor operand, or an INVALID_ARGUMENT naming the op and what it got instead. */
function rawOf(x: unknown, op: string, what = 'x'): RawTensor {
  if (x instanceof Tensor) return x.raw(op);
  throw new HesseError('INVALID_ARGUMENT', `${op}: ${what} must be a Tensor (or a symbolic tensor inside a traced function), got ${describe(x)}${Array.isArray(x) ? ' (make it a tensor with tensor())' : ''}`);
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
    const raw = rawOf(x, op);
    if (kernel) return new Tensor(call(() => core().unary(op, raw))) as Out<X>;
    return evalEager([x as Tensor], (s) => traced.act(s, op, alpha)) as Out<X>;
  };

/** a + b elementwise with NumPy broadcasting (`torch.add`, `jnp.add`); either may be a number. */
export const add = binary('add');
/** a − b elementwise with NumPy broadcasting (`torch.sub`, `jnp.subtract`); either may be a number. */
export const sub = binary('sub');
/** a · b elementwise with NumPy broadcasting (`torch.mul`, `jnp.multiply`); either may be a number. */
export const mul = binary('mul');
/** a / b elementwise with NumPy broadcasting (`torch.div`, `jnp.divide`); either may be a number. */
export const div = binary('div');
/** max(a, b) elementwise, NaN-propagating, with broadcasting (`torch.maximum`). Eager only: UNSUPPORTED_OP in a traced function. */
export const maximum = binary('maximum');
/** min(a, b) elementwise, NaN-propagating, with broadcasting (`torch.minimum`). Eager only: UNSUPPORTED_OP in a traced function. */
export const minimum = binary('minimum');

/** −x elementwise (`torch.neg`). */
export function neg<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.scale(x, -1) as Out<X>;
  return new Tensor(call(() => core().unary('neg', rawOf(x, 'neg')))) as Out<X>;
}
/** |x| elementwise (`torch.abs`). Eager only: UNSUPPORTED_OP in a traced function (its second derivative is a distribution). */
export function abs<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) notTraceable('abs', 'use square or sqrt(square(x) + eps)');
  return new Tensor(call(() => core().unary('abs', rawOf(x, 'abs')))) as Out<X>;
}
/** x² elementwise (`torch.square`). */
export const square = unary('square', true);
/** √x elementwise (`torch.sqrt`); NaN below 0. */
export const sqrt = unary('sqrt', true);
/** max(x, 0) elementwise (`torch.relu`). */
export const relu = unary('relu', true);
/** eˣ elementwise (`torch.exp`). */
export const exp = unary('exp', true);
/** ln x elementwise (`torch.log`); −∞ at 0, NaN below. */
export const log = unary('log', true);
/** tanh x elementwise (`torch.tanh`). */
export const tanh = unary('tanh', true);
/** σ(x) = 1 / (1 + e⁻ˣ) elementwise (`torch.sigmoid`). */
export const sigmoid = unary('sigmoid', true);
/** max(x, 0) + slope·min(x, 0) elementwise (`F.leaky_relu`, default slope 0.01). Throws INVALID_ARGUMENT for a non-finite slope. */
export const leakyRelu = <X extends Arr>(x: X, slope = 0.01): Out<X> => unary('leaky_relu', false, finite(slope, 'leakyRelu: slope'))(x);
/** x for x > 0, α(eˣ − 1) otherwise, elementwise (`F.elu`, default α = 1). Throws INVALID_ARGUMENT for a non-finite α. */
export const elu = <X extends Arr>(x: X, alpha = 1): Out<X> => unary('elu', false, finite(alpha, 'elu: alpha'))(x);
/** log(1 + eˣ) elementwise, as PyTorch's `F.softplus` (β = 1, threshold 20: x itself above 20). */
export const softplus = unary('softplus', false);
/**
 * GELU elementwise, as `F.gelu`: x·Φ(x) (`approximate: 'none'`, the default) or
 * ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`'tanh'`). Another `approximate` is INVALID_ARGUMENT.
 */
export const gelu = <X extends Arr>(x: X, opts: { approximate?: 'none' | 'tanh' } = {}): Out<X> =>
  unary(oneOf(opts.approximate ?? 'none', 'gelu: approximate', ['none', 'tanh']) === 'tanh' ? 'gelu_tanh' : 'gelu', false)(x);

/** Options of {@link sum}, {@link mean}, {@link max}, {@link logsumexp}. */
export interface ReduceOptions {
  /** Axis to reduce (negative counts from the end); all axes when omitted. */
  axis?: number;
  /** Keep the reduced axis as a dimension of size 1. */
  keepdims?: boolean;
}

const reduction =
  (op: 'sum' | 'mean' | 'max' | 'logsumexp') =>
  <X extends Arr>(x: X, opts: ReduceOptions = {}): Out<X> => {
    const keep = flag(opts.keepdims, `${op}: keepdims`);
    if (!(x instanceof Sym)) rawOf(x, op); // a live Tensor, or an error naming the op
    const rank = x.shape.length;
    const ax = opts.axis === undefined ? undefined : checkAxis(opts.axis, rank, `${op}: axis of ${fmtShape(x.shape)}`);
    if (x instanceof Sym) {
      if (op === 'max') notTraceable('max', 'use logsumexp as a smooth maximum');
      if (op === 'logsumexp') {
        const last = rank - 1;
        if ((ax ?? (rank === 1 ? 0 : undefined)) !== last) {
          throw new HesseError('UNSUPPORTED_OP', `logsumexp: inside a traced function only the last axis is supported (axis ${last} of ${fmtShape(x.shape)})`);
        }
        const l = traced.lastAxis(x, 'logsumexp');
        return (keep ? l : traced.reshape(l, x.shape.slice(0, -1))) as Out<X>;
      }
      return traced.reduce(x, op, ax, keep) as Out<X>;
    }
    return new Tensor(call(() => core().reduce(op, rawOf(x, op), ax, keep))) as Out<X>;
  };

/** Σ x over `axis` (all axes when omitted), as `torch.sum` / `jnp.sum`. Throws INVALID_ARGUMENT for an axis outside [−rank, rank). */
export const sum = reduction('sum');
/** The mean over `axis` (all axes when omitted), as `torch.mean` / `jnp.mean`. */
export const mean = reduction('mean');
/** The maximum over `axis` (all axes when omitted), as `jnp.max`. Eager only: UNSUPPORTED_OP in a traced function (use logsumexp). */
export const max = reduction('max');
/**
 * log Σ exp x over `axis` (all when omitted), computed as m + log Σ exp(x − m) so it does not
 * overflow (`torch.logsumexp`). In a traced function only the last axis (UNSUPPORTED_OP otherwise).
 */
export const logsumexp = reduction('logsumexp');

/** softmax(x)ᵢ = exp(xᵢ − logsumexp(x)) over the last axis (`torch.softmax(x, -1)`). */
export function softmax<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.lastAxis(x, 'softmax') as Out<X>;
  rawOf(x, 'softmax');
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'softmax')) as Out<X>;
}
/** log softmax(x) = x − logsumexp(x) over the last axis (`torch.log_softmax(x, -1)`). */
export function logSoftmax<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.lastAxis(x, 'log_softmax') as Out<X>;
  rawOf(x, 'logSoftmax');
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'log_softmax')) as Out<X>;
}
/**
 * (x − mean)/√(var + eps) over the last axis with the biased variance, as `F.layer_norm` without
 * the affine part (multiply and add it yourself). `eps` (default 1e-5) must be finite and ≥ 0.
 */
export function layerNorm<X extends Arr>(x: X, opts: { eps?: number } = {}): Out<X> {
  const eps = finite(opts.eps ?? 1e-5, 'layerNorm: eps', 0);
  if (x instanceof Sym) return traced.lastAxis(x, 'layer_norm', eps) as Out<X>;
  rawOf(x, 'layerNorm');
  return evalEager([x as Tensor], (s) => traced.lastAxis(s, 'layer_norm', eps)) as Out<X>;
}

const lossFn =
  (kind: 'mse' | 'cross_entropy' | 'bce_with_logits') =>
  <A extends Arr, B extends Arr>(pred: A, target: B): Out<A, B> => {
    const g = graphOf(pred, target);
    if (g) return traced.loss(g, kind, pred, target) as Out<A, B>;
    const name = { mse: 'mseLoss', cross_entropy: 'crossEntropy', bce_with_logits: 'bceWithLogits' }[kind];
    [rawOf(pred, name, 'pred'), rawOf(target, name, 'target')];
    return evalEager([pred as Tensor, target as Tensor], (p, t) => traced.loss(p.graph, kind, p, t)) as Out<A, B>;
  };
/** Mean over all elements of (pred − target)², a scalar (PyTorch's `MSELoss`); shapes must match. */
export const mseLoss = lossFn('mse');
/**
 * Mean over the positions of −log softmax(logits)[label] (PyTorch's `CrossEntropyLoss`): logits
 * [N, C] with labels [N], or [N, C, d1, …] with [N, d1, …] (class axis 1), or [N, d1, …, C]
 * with [N, d1, …] (class axis last); class indices stored as numbers; a label outside [0, C)
 * is an error, and so are shapes that fit both axes ([N, K, K] with [N, K]: permute first).
 */
export const crossEntropy = lossFn('cross_entropy');
/** Mean over all elements of softplus(z) − y·z, a scalar (PyTorch's `BCEWithLogitsLoss`); shapes must match. */
export const bceWithLogits = lossFn('bce_with_logits');

/** A·B of 2-D tensors [m, k]·[k, n] → [m, n] (`torch.mm`). Throws SHAPE_MISMATCH naming both shapes. */
export function matmul<A extends Arr, B extends Arr>(a: A, b: B): Out<A, B> {
  return gemm(a, b);
}

/** Options of {@link gemm}. */
export interface GemmOptions {
  /** Use Aᵀ (default false). */
  transA?: boolean;
  /** Use Bᵀ (default false). */
  transB?: boolean;
  /** α, a finite number (default 1). */
  alpha?: number;
  /** β, a finite number (default 0). */
  beta?: number;
  /** C, required when beta ≠ 0 (not modified: the result is a new tensor). */
  c?: Tensor;
}

/** α·op(A)·op(B) + β·C of 2-D tensors, where op transposes when asked (BLAS's GEMM, `torch.addmm`). */
export function gemm<A extends Arr, B extends Arr>(a: A, b: B, opts: GemmOptions = {}): Out<A, B> {
  const [transA, transB] = [flag(opts.transA, 'gemm: transA'), flag(opts.transB, 'gemm: transB')];
  const [alpha, beta] = [finite(opts.alpha ?? 1, 'gemm: alpha'), finite(opts.beta ?? 0, 'gemm: beta')];
  const { c } = opts;
  if (beta !== 0 && !c) throw new HesseError('INVALID_ARGUMENT', 'gemm: beta ≠ 0 needs opts.c');
  if (c !== undefined && !(c instanceof Tensor) && !((c as unknown) instanceof Sym)) throw new HesseError('INVALID_ARGUMENT', `gemm: opts.c must be a Tensor, got ${describe(c)}`);
  const g = graphOf(a, b, c);
  if (g) {
    let y = traced.matmul(g, a, b, transA, transB);
    if (alpha !== 1) y = traced.scale(y, alpha);
    if (c && beta !== 0) y = traced.binary(g, 'add', y, beta === 1 ? c : traced.binary(g, 'mul', c, beta));
    return y as Out<A, B>;
  }
  const [ra, rb] = [rawOf(a, 'gemm', 'a'), rawOf(b, 'gemm', 'b')];
  return new Tensor(
    call(() => (c && beta !== 0 ? core().gemmAccumulate(ra, rb, rawOf(c, 'gemm', 'opts.c'), transA, transB, alpha, beta) : core().gemm(ra, rb, transA, transB, alpha))),
  ) as Out<A, B>;
}

/** The transpose [n, m] of a 2-D tensor [m, n] (`x.T`). */
export function transpose<X extends Arr>(x: X): Out<X> {
  if (x instanceof Sym) return traced.transpose(x) as Out<X>;
  return new Tensor(call(() => core().transpose(rawOf(x, 'transpose')))) as Out<X>;
}

/**
 * The axes reordered: output axis a is input axis perm[a] (`np.transpose(x, perm)`,
 * `torch.permute`). `perm` must be a permutation of 0..rank−1 (negative entries count from the end).
 */
export function permute<X extends Arr>(x: X, perm: readonly number[]): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'permute');
  const p = permutation(perm, x.shape.length, `permute: perm of a rank-${x.shape.length} tensor`);
  if (x instanceof Sym) return traced.permute(x, p) as Out<X>;
  return evalEager([x as Tensor], (s) => traced.permute(s, p)) as Out<X>;
}

/** Concatenation along `axis` (default 0; negative counts from the end), as `np.concatenate` / `torch.cat`; the other dims must match. */
export function concat<X extends Arr>(xs: readonly X[], axis = 0): Out<X> {
  if (!Array.isArray(xs) || xs.length === 0) throw new HesseError('INVALID_ARGUMENT', 'concat: expected a non-empty array of tensors');
  xs.forEach((x, i) => x instanceof Sym || rawOf(x, 'concat', `xs[${i}]`));
  const ax = checkAxis(axis, xs[0]!.shape.length, `concat: axis of ${fmtShape(xs[0]!.shape)}`);
  const g = graphOf(...xs);
  if (g) return traced.concat(g, [...xs], ax) as Out<X>;
  return evalEager([...(xs as readonly Tensor[])], (...s) => traced.concat(s[0]!.graph, s, ax)) as Out<X>;
}

/**
 * The same elements in row-major order in a new shape (`torch.reshape`): one size may be −1,
 * inferred from the others. Throws SHAPE_MISMATCH when the element counts differ.
 */
export function reshape<X extends Arr>(x: X, shape: readonly number[]): Out<X> {
  const raw = x instanceof Sym ? undefined : rawOf(x, 'reshape');
  if (!Array.isArray(shape)) throw new HesseError('INVALID_ARGUMENT', `reshape: shape must be an array of sizes, got ${describe(shape)}`);
  const dims = shape.map((d, i) => integer(d, `reshape: shape[${i}] (a size, or -1 to infer it)`, -1, 0xffffffff));
  const size = x.shape.reduce((a, b) => a * b, 1);
  const known = dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const holes = dims.filter((d) => d === -1).length;
  if (holes > 1) throw new HesseError('INVALID_ARGUMENT', `reshape: at most one size may be -1 (inferred), got ${fmtShape(dims)}`);
  const full = dims.map((d) => (d === -1 ? (known === 0 ? 0 : size / known) : d));
  if (full.reduce((a, b) => a * b, 1) !== size || !full.every(Number.isInteger)) {
    throw new HesseError('SHAPE_MISMATCH', `reshape: cannot reshape ${fmtShape(x.shape)} (${size} elements) to ${fmtShape(dims)}`);
  }
  if (x instanceof Sym) return traced.reshape(x, full) as Out<X>;
  return new Tensor(call(() => raw!.reshape(full))) as Out<X>;
}

/** A copy converted to `dtype` (`x.to(torch.float64)`); tensors only. Throws UNKNOWN_DTYPE. */
export function astype<D extends DType>(x: Tensor, dtype: D): Tensor<D> {
  const dt = checkDtype(dtype, 'astype');
  return new Tensor<D>(call(() => rawOf(x, 'astype').astype(dt)));
}

/** Options of {@link conv2d}: a number applies to both spatial dims. */
export interface Conv2dOptions {
  /** Step between windows, ≥ 1 (default 1). */
  stride?: number | [number, number];
  /** Zeros added on each side, ≥ 0 (default 0). */
  padding?: number | [number, number];
  /** Spacing between kernel taps: only 1 (the default) is supported; anything else is UNSUPPORTED_OP, never ignored. */
  dilation?: number | [number, number];
}

/**
 * 2-D cross-correlation as PyTorch's `F.conv2d` (no bias, dilation 1, groups 1): x [N, C, H, W],
 * w [O, C, KH, KW] → [N, O, OH, OW] with OH = ⌊(H + 2·padH − KH)/strideH⌋ + 1 (OW likewise).
 */
export function conv2d<A extends Arr, B extends Arr>(x: A, w: B, opts: Conv2dOptions = {}): Out<A, B> {
  /** A number for both spatial dims or an [h, w] pair, each checked by `check` (named stride[0] etc.). */
  const pair = (v: unknown, dflt: number, what: string, check: (d: unknown, what: string) => number): [number, number] => {
    if (Array.isArray(v) && v.length !== 2) throw new HesseError('INVALID_ARGUMENT', `conv2d: ${what} must be a number or an [h, w] pair, got ${v.length} values`);
    const p = Array.isArray(v) ? v : [v ?? dflt, v ?? dflt];
    return [check(p[0], `conv2d: ${what}${Array.isArray(v) ? '[0]' : ''}`), check(p[1], `conv2d: ${what}${Array.isArray(v) ? '[1]' : ''}`)];
  };
  const s = pair(opts.stride, 1, 'stride', (d, what) => positive(d, what, 0xffffffff));
  const p = pair(opts.padding, 0, 'padding', (d, what) => count(d, what, 0xffffffff));
  const dil = pair(opts.dilation, 1, 'dilation', (d, what) => positive(d, what, 0xffffffff));
  if (dil[0] !== 1 || dil[1] !== 1) throw new HesseError('UNSUPPORTED_OP', `conv2d: dilation ${fmtShape(dil)} is not supported, only 1`);
  const attrs = new Uint32Array([s[0], s[1], p[0], p[1], p[0], p[1], 1, 1, 1]);
  const g = graphOf(x, w);
  if (g) return traced.conv2d(g, x, w, attrs) as Out<A, B>;
  return new Tensor(call(() => core().conv2d(rawOf(x, 'conv2d', 'x'), rawOf(w, 'conv2d', 'w'), attrs))) as Out<A, B>;
}

/** The kernel family for all later ops: 'simd' (default) or 'scalar' (the reference; for tests and benchmarks). Another name is INVALID_ARGUMENT. */
export function setKernels(kind: 'simd' | 'scalar'): void {
  const k = oneOf(kind, 'setKernels: kind', ['simd', 'scalar']);
  call(() => core().setKernels(k));
}

/** The kernel family in use: 'simd' or 'scalar'. */
export function getKernels(): 'simd' | 'scalar' {
  return core().getKernels() as 'simd' | 'scalar';
}
