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
import { evalEager, graphOf, IndexSym, Sym, traced, type Operand } from './trace.js';
import { IndexTensor, indices, type IndexArray } from './indices.js';
import type { RawTensor } from './wasm/hesse.js';
import { axis as checkAxis, count, describe, dims, fmtShape, dtype as checkDtype, finite, flag, integer, oneOf, options, permutation, positive } from './validate.js';

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
  (op: string, kernel: boolean, alpha = 0, beta = 0) =>
  <X extends Arr>(x: X): Out<X> => {
    if (x instanceof Sym) return traced.act(x, op, alpha, beta) as Out<X>;
    const raw = rawOf(x, op);
    if (kernel) return new Tensor(call(() => core().unary(op, raw))) as Out<X>;
    return evalEager([x as Tensor], (s) => traced.act(s, op, alpha, beta)) as Out<X>;
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

/** Options of {@link hardSigmoid}. */
export interface HardSigmoidOptions {
  /** Slope α (default 1/6, PyTorch's). */
  alpha?: number;
  /** Offset β (default 1/2, PyTorch's). */
  beta?: number;
}
/**
 * max(0, min(1, αx + β)) elementwise: ONNX HardSigmoid; the defaults α = 1/6, β = 1/2 are
 * PyTorch's `F.hardsigmoid`. The derivative is α strictly inside the ramp and 0 at and beyond
 * its ends (PyTorch's choice at the kinks). A non-finite α or β, or another option, is INVALID_ARGUMENT.
 */
export function hardSigmoid<X extends Arr>(x: X, opts: HardSigmoidOptions = {}): Out<X> {
  const o = options(opts, 'hardSigmoid', ['alpha', 'beta']);
  return unary('hard_sigmoid', false, finite(o.alpha ?? 1 / 6, 'hardSigmoid: alpha'), finite(o.beta ?? 0.5, 'hardSigmoid: beta'))(x);
}
/**
 * x·relu6(x + 3)/6 elementwise (`F.hardswish`, ONNX HardSwish). Derivative x/3 + 1/2 on the
 * closed [−3, 3] (so −1/2 at −3 and 3/2 at 3, as PyTorch's backward), 0 below, 1 above.
 */
export const hardSwish = unary('hard_swish', false);
/** x·σ(x) elementwise (`F.silu`, swish). */
export const silu = unary('silu', false);
/** A clip bound: undefined is `dflt` (no bound), ±Infinity is allowed, NaN and non-numbers are not. */
function bound(v: unknown, dflt: number, what: string): number {
  if (v === undefined) return dflt;
  return v === Infinity || v === -Infinity ? v : finite(v, what);
}
/**
 * min(max(x, lo), hi) elementwise with constant bounds (`torch.clamp`, ONNX Clip); an omitted
 * bound is no bound. As torch.clamp: the derivative is 1 on the closed [lo, hi] and 0 outside;
 * lo > hi gives hi everywhere (derivative 0). A NaN bound is INVALID_ARGUMENT.
 */
export const clip = <X extends Arr>(x: X, lo?: number, hi?: number): Out<X> => unary('clip', false, bound(lo, -Infinity, 'clip: lo'), bound(hi, Infinity, 'clip: hi'))(x);
/**
 * min(max(x, lo), hi) elementwise as `F.hardtanh` (defaults −1, 1): the same values as
 * {@link clip}, but the derivative is 1 only strictly inside (lo, hi), as PyTorch's hardtanh
 * (so relu6′(0) = 0, like relu′(0)). Non-finite bounds are INVALID_ARGUMENT.
 */
export const hardtanh = <X extends Arr>(x: X, lo = -1, hi = 1): Out<X> => unary('hardtanh', false, finite(lo, 'hardtanh: lo'), finite(hi, 'hardtanh: hi'))(x);
/** min(max(x, 0), 6) elementwise, `F.relu6` = hardtanh(x, 0, 6) (derivative 0 at 0 and at 6, as PyTorch's). */
export const relu6 = <X extends Arr>(x: X): Out<X> => hardtanh(x, 0, 6);

/** Options of {@link sum}, {@link mean}, {@link max}, {@link logsumexp}. */
export interface ReduceOptions {
  /**
   * Axis or axes to reduce (negative count from the end; each at most once); all axes when
   * omitted. An empty array reduces nothing (numpy's `axis=()`).
   */
  axis?: number | readonly number[];
  /** Keep the reduced axes as dimensions of size 1. */
  keepdims?: boolean;
}

/** The reduced axes, normalized (undefined: all), or INVALID_ARGUMENT naming the op and the value. */
function reduceAxes(op: string, axis: ReduceOptions['axis'], shape: readonly number[]): number[] | undefined {
  if (axis === undefined) return undefined;
  const what = `${op}: axis of ${fmtShape(shape)}`;
  if (!Array.isArray(axis)) return [checkAxis(axis, shape.length, what)];
  const axes = (axis as readonly number[]).map((a, i) => checkAxis(a, shape.length, `${what} [${i}]`));
  const twice = axes.find((a, i) => axes.indexOf(a) !== i);
  if (twice !== undefined) throw new HesseError('INVALID_ARGUMENT', `${op}: axis ${twice} appears twice in ${fmtShape(axis as number[])} (of ${fmtShape(shape)})`);
  return axes;
}

/** logsumexp over normalized axes on a Sym (one axis, several, or all). */
function tracedLogsumexp(x: Sym, axes: number[] | undefined, keep: boolean): Sym {
  const rank = x.shape.length;
  if (axes !== undefined && axes.length !== 1 && !(axes.length === rank && rank > 0)) {
    if (axes.length === 0) return x;
    // Several (not all) axes: one axis at a time, lse_{a,b}(x) = lse_a(lse_b(x)) exactly (the
    // inner sums of exp factor). This was an UNSUPPORTED_OP, also for eager tensors, whose
    // documented axes include several (the fuzz suite found it). Each step keeps its axis (size
    // 1), so the later axes' indices stay valid; the kept axes go at the end unless keepdims.
    let l = x;
    for (const a of axes) l = traced.onAxis(l, 'logsumexp', a);
    return keep ? l : traced.reshape(l, x.shape.filter((_, i) => !axes.includes(i)));
  }
  if (axes === undefined || axes.length !== 1 || rank === 0) {
    const flat = traced.reshape(x, [x.size]);
    const l = traced.onAxis(flat, 'logsumexp', 0);
    return traced.reshape(l, keep ? x.shape.map(() => 1) : []);
  }
  const l = traced.onAxis(x, 'logsumexp', axes[0]!);
  return keep ? l : traced.reshape(l, x.shape.filter((_, i) => i !== axes[0]));
}

const reduction =
  (op: 'sum' | 'mean' | 'max' | 'logsumexp') =>
  <X extends Arr>(x: X, opts: ReduceOptions = {}): Out<X> => {
    const keep = flag(opts.keepdims, `${op}: keepdims`);
    if (!(x instanceof Sym)) rawOf(x, op); // a live Tensor, or an error naming the op
    const axes = reduceAxes(op, opts.axis, x.shape);
    const single = axes === undefined || axes.length === 1;
    if (x instanceof Sym) {
      if (op === 'logsumexp') return tracedLogsumexp(x, axes, keep) as Out<X>;
      if (op !== 'max' && single) return traced.reduce(x, op, axes?.[0], keep) as Out<X>;
      return traced.reduceAxes(x, op, axes, keep) as Out<X>;
    }
    if (single) return new Tensor(call(() => core().reduce(op, rawOf(x, op), axes?.[0], keep))) as Out<X>;
    if (op === 'logsumexp') return evalEager([x as Tensor], (s) => tracedLogsumexp(s, axes, keep)) as Out<X>;
    return evalEager([x as Tensor], (s) => traced.reduceAxes(s, op, axes, keep)) as Out<X>;
  };

/** Σ x over `axis` (one axis, several, or all when omitted), as `torch.sum` / `jnp.sum`. Throws INVALID_ARGUMENT for an axis outside [−rank, rank) or repeated. */
export const sum = reduction('sum');
/** The mean over `axis` (one, several, or all when omitted), as `torch.mean` / `jnp.mean`. */
export const mean = reduction('mean');
/**
 * The maximum over `axis` (one, several, or all when omitted), as `jnp.max` / `torch.amax`;
 * NaN propagates. Its derivative (traced) goes to the first maximal element in row-major
 * order: at ties PyTorch's amax splits the gradient evenly instead.
 */
export const max = reduction('max');
/**
 * log Σ exp x over `axis` (all when omitted), computed as m + log Σ exp(x − m) so it does not
 * overflow (`torch.logsumexp`); several axes reduce one after another (the same value).
 */
export const logsumexp = reduction('logsumexp');

/** The softmax family on one axis (the last by the core's fused rule, any other moved there and back). */
const softmaxOn =
  (name: 'softmax' | 'logSoftmax', op: 'softmax' | 'log_softmax') =>
  <X extends Arr>(x: X, axis = -1): Out<X> => {
    if (!(x instanceof Sym)) rawOf(x, name);
    const a = checkAxis(axis, x.shape.length, `${name}: axis of ${fmtShape(x.shape)}`);
    const build = (s: Sym) => (a === s.shape.length - 1 ? traced.lastAxis(s, op) : traced.onAxis(s, op, a));
    if (x instanceof Sym) return build(x) as Out<X>;
    return evalEager([x as Tensor], build) as Out<X>;
  };
/** softmax(x)ᵢ = exp(xᵢ − logsumexp(x)) over `axis` (default −1, the last; `torch.softmax(x, axis)`). */
export const softmax = softmaxOn('softmax', 'softmax');
/** log softmax(x) = x − logsumexp(x) over `axis` (default −1, the last; `torch.log_softmax(x, axis)`). */
export const logSoftmax = softmaxOn('logSoftmax', 'log_softmax');
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

/**
 * A·B with NumPy matmul semantics (`torch.matmul`, `np.matmul`): 2-D is [m, k]·[k, n] → [m, n];
 * higher ranks multiply the last two axes with the batch axes broadcast ([2, 1, m, k]·[3, k, n]
 * → [2, 3, m, n]); a 1-D operand is a row (a) or column (b) vector whose axis is dropped from
 * the result. Throws SHAPE_MISMATCH naming both shapes.
 */
export function matmul<A extends Arr, B extends Arr>(a: A, b: B): Out<A, B> {
  const g = graphOf(a, b);
  if (!g) {
    rawOf(a, 'matmul', 'a');
    rawOf(b, 'matmul', 'b');
  }
  const [sa, sb] = [(a as Arr).shape, (b as Arr).shape];
  if (sa.length === 0 || sb.length === 0) throw new HesseError('SHAPE_MISMATCH', `matmul: operands must have rank ≥ 1, got ${fmtShape(sa)} and ${fmtShape(sb)}`);
  if (sa.length === 2 && sb.length === 2) return gemm(a, b);
  const build = (x: Sym, y: Sym): Sym => {
    const xv = sa.length === 1 ? traced.reshape(x, [1, sa[0]!]) : x;
    const yv = sb.length === 1 ? traced.reshape(y, [sb[0]!, 1]) : y;
    const out = traced.matmul(x.graph, xv, yv);
    if (sa.length > 1 && sb.length > 1) return out;
    const s = [...out.shape];
    if (sb.length === 1) s.splice(s.length - 1, 1);
    if (sa.length === 1) s.splice(s.length - (sb.length === 1 ? 1 : 2), 1);
    return traced.reshape(out, s);
  };
  if (g) return build(g.lift(a), g.lift(b)) as Out<A, B>;
  return evalEager([a as Tensor, b as Tensor], build) as Out<A, B>;
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

/** Options of {@link conv2d}: a number applies to both spatial dims (to all four sides for pads). */
export interface Conv2dOptions {
  /** Step between windows, ≥ 1 (default 1). */
  stride?: number | [number, number];
  /**
   * PyTorch's padding: zeros on both sides of each axis (p or [ph, pw], default 0), or 'valid'
   * (none) or 'same' (output size = input size; stride 1; an odd total puts the extra zero at
   * the bottom/right, as PyTorch). Not together with `pads`.
   */
  padding?: number | [number, number] | 'valid' | 'same';
  /** ONNX's pads: [top, left, bottom, right] (asymmetric), or [ph, pw], or p. Not together with `padding`. */
  pads?: number | [number, number] | [number, number, number, number];
  /** Spacing between kernel taps, ≥ 1 (default 1). */
  dilation?: number | [number, number];
  /** Channel groups, ≥ 1 (default 1), dividing C and O; w is [O, C/groups, KH, KW]; groups = C is depthwise. */
  groups?: number;
}

/** conv2d's attributes once checked: integers ≥ 1 (pads ≥ 0) in u32. */
interface ConvAttrs {
  /** [strideH, strideW] */
  stride: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  /** [dilationH, dilationW] */
  dilation: [number, number];
  /** Channel groups (C and O both divisible by it; the core checks). */
  groups: number;
}

/**
 * Checks conv2d's options (each bad one an INVALID_ARGUMENT naming it) and resolves them against
 * the kernel size `kernel` [KH, KW] (for padding 'same').
 */
function conv2dAttrs(opts: Conv2dOptions, kernel: readonly number[]): ConvAttrs {
  const o = options(opts, 'conv2d', ['stride', 'padding', 'pads', 'dilation', 'groups']);
  /** A number for every entry or an array of one of the lengths `lens`, each checked by `check` (named stride[0] etc.). */
  const list = (v: unknown, dflt: number, what: string, lens: number[], check: (d: unknown, what: string) => number): number[] => {
    if (Array.isArray(v) && !lens.includes(v.length)) {
      throw new HesseError('INVALID_ARGUMENT', `conv2d: ${what} must be a number or ${lens.map((n) => (n === 2 ? 'an [h, w] pair' : '[top, left, bottom, right]')).join(' or ')}, got ${v.length} values`);
    }
    return Array.isArray(v) ? v.map((d, i) => check(d, `conv2d: ${what}[${i}]`)) : [check(v ?? dflt, `conv2d: ${what}`)];
  };
  const pair = (v: number[]): [number, number] => [v[0]!, v[v.length - 1]!];
  const stride = pair(list(o.stride, 1, 'stride', [2], (d, what) => positive(d, what, 0xffffffff)));
  const dilation = pair(list(o.dilation, 1, 'dilation', [2], (d, what) => positive(d, what, 0xffffffff)));
  const groups = positive(o.groups ?? 1, 'conv2d: groups');
  if (o.padding !== undefined && o.pads !== undefined) throw new HesseError('INVALID_ARGUMENT', 'conv2d: give padding (PyTorch) or pads (ONNX), not both');
  let pads: [number, number, number, number];
  if (o.padding === 'valid') pads = [0, 0, 0, 0];
  else if (o.padding === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw new HesseError('INVALID_ARGUMENT', `conv2d: padding 'same' needs stride 1 (as PyTorch), got stride ${fmtShape(stride)}`);
    // PyTorch: total = d·(k − 1) per axis, begin = ⌊total/2⌋, end = the rest.
    const total = [dilation[0] * ((kernel[0] ?? 1) - 1), dilation[1] * ((kernel[1] ?? 1) - 1)];
    pads = [Math.floor(total[0]! / 2), Math.floor(total[1]! / 2), total[0]! - Math.floor(total[0]! / 2), total[1]! - Math.floor(total[1]! / 2)];
  } else if (typeof o.padding === 'string') {
    throw new HesseError('INVALID_ARGUMENT', `conv2d: padding must be a count, an [h, w] pair, 'valid' or 'same', got '${o.padding}'`);
  } else if (o.pads !== undefined) {
    const p = list(o.pads, 0, 'pads', [2, 4], (d, what) => count(d, what, 0xffffffff));
    pads = p.length === 4 ? [p[0]!, p[1]!, p[2]!, p[3]!] : [p[0]!, p[p.length - 1]!, p[0]!, p[p.length - 1]!];
  } else {
    const [ph, pw] = pair(list(o.padding, 0, 'padding', [2], (d, what) => count(d, what, 0xffffffff)));
    pads = [ph, pw, ph, pw];
  }
  return { stride, pads, dilation, groups };
}

/**
 * 2-D cross-correlation as PyTorch's `F.conv2d` (no bias) and ONNX Conv: x [N, C, H, W],
 * w [O, C/groups, KH, KW] → [N, O, OH, OW] with OH = ⌊(H + top + bottom − dilationH·(KH − 1) − 1)/strideH⌋ + 1
 * (OW likewise). Groups split the channels (output channel o reads input group ⌊o/(O/groups)⌋);
 * groups = C is a depthwise convolution. Bad options are INVALID_ARGUMENT naming the option;
 * shapes that do not fit (channels not divisible by groups, a kernel larger than the padded
 * input) are SHAPE_MISMATCH naming both shapes.
 */
export function conv2d<A extends Arr, B extends Arr>(x: A, w: B, opts: Conv2dOptions = {}): Out<A, B> {
  const kernel = w instanceof Tensor || w instanceof Sym ? w.shape.slice(2) : [];
  const a = conv2dAttrs(opts, kernel);
  const attrs = Uint32Array.of(a.stride[0], a.stride[1], ...a.pads, a.dilation[0], a.dilation[1], a.groups);
  const g = graphOf(x, w);
  if (g) return traced.conv2d(g, x, w, attrs) as Out<A, B>;
  return new Tensor(call(() => core().conv2d(rawOf(x, 'conv2d', 'x'), rawOf(w, 'conv2d', 'w'), attrs))) as Out<A, B>;
}

/** What `gather` takes as indices: constant {@link IndexTensor}s, integer typed arrays or arrays (1-D), or an index input of the trace. */
export type IndicesLike = IndexTensor | IndexSym | IndexArray | readonly (number | bigint)[];

/**
 * ONNX Gather / `np.take(x, indices, axis)`: out = x.shape[:axis] + indices.shape +
 * x.shape[axis+1:], out[o, j, i] = x[o, indices[j], i]. A negative index counts from the end
 * once; one outside [−d, d) is INVALID_ARGUMENT naming it and the bound. Linear in x (its VJP a
 * scatter-add), so embeddings are `gather(weights, ids)`. The indices are integers, never floats
 * of the dtype: an {@link IndexTensor} ({@link indices}), an Int32Array / BigInt64Array / array
 * of integers (1-D), or, in a traced function, an index input (`Graph.indexInput`).
 */
export function gather<X extends Arr>(x: X, idx: IndicesLike, axis = 0): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'gather');
  const a = checkAxis(axis, x.shape.length, `gather: axis of ${fmtShape(x.shape)}`);
  if ((idx as unknown) instanceof Sym || (idx as unknown) instanceof Tensor) {
    throw new HesseError('INVALID_ARGUMENT', `gather: indices must be integers (an IndexTensor from indices(), an Int32Array / BigInt64Array, or an index input from Graph.indexInput), not a float ${idx instanceof Sym ? 'symbolic tensor' : 'tensor'} of shape ${fmtShape((idx as unknown as Sym).shape)}`);
  }
  const ix = idx instanceof IndexSym || idx instanceof IndexTensor ? idx : indices(idx as IndexArray);
  if (ix instanceof IndexSym && !(x instanceof Sym)) throw new HesseError('INVALID_ARGUMENT', 'gather: an index input (Graph.indexInput) needs a traced x; pass constant indices to gather a tensor');
  if (x instanceof Sym) return traced.gather(x.graph, x, ix, a) as Out<X>;
  return evalEager([x as Tensor], (s) => traced.gather(s.graph, s, ix, a)) as Out<X>;
}

/** A list of integers (slice bounds, pads), each checked; `what` names it. */
function ints(v: unknown, what: string, min = -Number.MAX_VALUE): number[] {
  if (!Array.isArray(v)) throw new HesseError('INVALID_ARGUMENT', `${what} must be an array of integers, got ${describe(v)}`);
  return v.map((d, i) => {
    // Bounds beyond 2⁵³ (ONNX's INT64_MAX "to the end") are fine: they clamp.
    if (typeof d !== 'number' || !Number.isInteger(d) || d < min) throw new HesseError('INVALID_ARGUMENT', `${what}[${i}] must be an integer${min > -Number.MAX_VALUE ? ` ≥ ${min}` : ''}, got ${String(d)}`);
    return d;
  });
}

/**
 * ONNX Slice (`x[start:end:step]` per listed axis): `axes` default 0…starts.length−1 (negative
 * count from the end, each once), `steps` default 1 (never 0; negative walks backwards).
 * Negative starts/ends count from the end; then they clamp to [0, d] (step > 0) or to
 * [0, d−1] / [−1, d−1] (step < 0), so ±huge bounds mean "to the end". Axis a of the result has
 * max(0, ⌈(end − start)/step⌉) elements.
 */
export function slice<X extends Arr>(x: X, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'slice');
  const [st, en] = [ints(starts, 'slice: starts'), ints(ends, 'slice: ends')];
  const ax = axes === undefined ? undefined : ints(axes, 'slice: axes');
  const sp = steps === undefined ? undefined : ints(steps, 'slice: steps');
  if (sp?.includes(0)) throw new HesseError('INVALID_ARGUMENT', `slice: steps must be non-zero, got ${fmtShape(sp)}`);
  const build = (s: Sym) => traced.slice(s, st, en, ax, sp);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
}

/**
 * ONNX Pad, constant mode (`F.pad(x, …, value)`): pads = [b₁…b_r, e₁…e_r], b_a elements before
 * and e_a after axis a (negative crops); the new elements are `value` (default 0).
 */
export function pad<X extends Arr>(x: X, pads: readonly number[], value = 0): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'pad');
  const p = ints(pads, 'pad: pads');
  if (p.length !== 2 * x.shape.length) throw new HesseError('INVALID_ARGUMENT', `pad: pads needs 2·rank = ${2 * x.shape.length} entries [begins…, ends…] for ${fmtShape(x.shape)}, got ${p.length}`);
  if (typeof value !== 'number') throw new HesseError('INVALID_ARGUMENT', `pad: value must be a number, got ${describe(value)}`);
  const build = (s: Sym) => traced.pad(s, p, value);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
}

/** ONNX Expand: x broadcast together with `shape` (numpy rules, both ways): the result has shape broadcast(x.shape, shape). */
export function expand<X extends Arr>(x: X, shape: readonly number[]): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'expand');
  const s = dims(shape, 'expand: shape');
  const build = (y: Sym) => traced.expand(y, s);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
}

/**
 * `where(mask, x, y)` (`torch.where`, ONNX Where with a constant condition): x where the mask
 * is non-zero, else y, the three broadcast together. The mask is a constant: a Tensor (its
 * values when traced) or booleans with their shape; a symbolic mask is INVALID_ARGUMENT.
 */
export function where<A extends Operand, B extends Operand>(mask: Tensor | { data: ArrayLike<boolean | number>; shape: readonly number[] }, x: A, y: B): Out<A, B> {
  let m: Uint8Array;
  let ms: readonly number[];
  if ((mask as unknown) instanceof Sym) throw new HesseError('INVALID_ARGUMENT', 'where: the mask must be a constant (a Tensor or booleans), not a symbolic tensor');
  if (mask instanceof Tensor) {
    rawOf(mask, 'where', 'mask');
    m = Uint8Array.from(mask.toArray(), (v) => (v !== 0 ? 1 : 0));
    ms = mask.shape;
  } else if (mask && typeof mask === 'object' && 'data' in mask && 'shape' in mask) {
    ms = dims(mask.shape, 'where: mask.shape');
    m = Uint8Array.from(Array.from(mask.data as ArrayLike<boolean | number>), (v) => (v ? 1 : 0));
  } else {
    throw new HesseError('INVALID_ARGUMENT', `where: mask must be a Tensor or { data, shape }, got ${describe(mask)}`);
  }
  const g = graphOf(x, y);
  if (g) return traced.where(g, ms, m, x, y) as Out<A, B>;
  const like = x instanceof Tensor ? x : y instanceof Tensor ? y : undefined;
  if (!like) throw new HesseError('INVALID_ARGUMENT', 'where: x or y must be a tensor');
  const lift = (v: Operand) => (v instanceof Tensor ? v : tensor([v as number], [], like.dtype));
  const [tx, ty] = [lift(x), lift(y)];
  try {
    return evalEager([tx, ty], (a, b) => traced.where(a.graph, ms, m, a, b)) as Out<A, B>;
  } finally {
    if (tx !== x) tx.dispose();
    if (ty !== y) ty.dispose();
  }
}

/** Options of {@link maxPool2d} and {@link avgPool2d}; a number applies to both spatial dims. */
export interface Pool2dOptions {
  /** Window size [kh, kw] (required). */
  kernel: number | readonly [number, number];
  /** Step between windows (default: the kernel, as PyTorch). */
  stride?: number | readonly [number, number];
  /**
   * Padding: p, [ph, pw] or [top, left, bottom, right] (default 0). Padding never wins a max.
   * Each pad is at most dilation·(kernel − 1) on its axis, and every window must hold an
   * element of the input (dilated taps can skip over a small input); else INVALID_ARGUMENT.
   */
  pads?: number | readonly number[];
  /** Spacing between taps (default 1; max pooling only). */
  dilation?: number | readonly [number, number];
  /** Output size by ⌈…⌉ instead of ⌊…⌋ (a last window starting in the padding is dropped). */
  ceilMode?: boolean;
  /** Average pooling: divide by the padded window size (default true, as PyTorch) or by the taps inside the input. */
  countIncludePad?: boolean;
}

/** kernel, stride, pads [t, l, b, r], dilation of pooling options, checked. */
function poolGeometry(op: string, opts: Pool2dOptions): { k: number[]; s: number[]; p: number[]; d: number[] } {
  if (!opts || typeof opts !== 'object') throw new HesseError('INVALID_ARGUMENT', `${op}: needs options { kernel, stride?, pads?, … }, got ${describe(opts)}`);
  const pair = (v: unknown, dflt: number[] | undefined, what: string, check: (d: unknown, what: string) => number): number[] => {
    if (v === undefined && dflt) return dflt;
    if (Array.isArray(v)) {
      if (v.length !== 2) throw new HesseError('INVALID_ARGUMENT', `${op}: ${what} must be a number or an [h, w] pair, got ${v.length} values`);
      return v.map((d, i) => check(d, `${op}: ${what}[${i}]`));
    }
    const d = check(v, `${op}: ${what}`);
    return [d, d];
  };
  const k = pair(opts.kernel, undefined, 'kernel', (d, w) => positive(d, w, 0xffff));
  const s = pair(opts.stride, k, 'stride', (d, w) => positive(d, w, 0xffff));
  const d = pair(opts.dilation, [1, 1], 'dilation', (d, w) => positive(d, w, 0xffff));
  const pv = opts.pads ?? 0;
  let p: number[];
  if (typeof pv === 'number') p = [pv, pv, pv, pv];
  else if (Array.isArray(pv) && pv.length === 2) p = [pv[0], pv[1], pv[0], pv[1]];
  else if (Array.isArray(pv) && pv.length === 4) p = [...pv];
  else throw new HesseError('INVALID_ARGUMENT', `${op}: pads must be p, [ph, pw] or [top, left, bottom, right], got ${describe(pv)}`);
  p = p.map((v, i) => count(v, `${op}: pads[${i}]`, 0xffff));
  return { k, s, p, d };
}

/**
 * Max pooling of x [N, C, H, W] (`F.max_pool2d`, ONNX MaxPool): per window the largest input
 * element (padding never wins). OH = ⌊(H + top + bottom − dil·(kh − 1) − 1)/stride⌋ + 1 (⌈…⌉
 * with ceilMode). Traced, the maximum's index is taken from the primal: its tangent and VJP are
 * a gather and a scatter at that index (the first maximal tap on ties).
 */
export function maxPool2d<X extends Arr>(x: X, opts: Pool2dOptions): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'maxPool2d');
  const { k, s, p, d } = poolGeometry('maxPool2d', opts);
  const ceil = flag(opts.ceilMode, 'maxPool2d: ceilMode');
  const build = (y: Sym) => traced.pool2d(y, 'max', k, s, p, d, ceil, false);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
}

/**
 * Average pooling of x [N, C, H, W] (`F.avg_pool2d`, ONNX AveragePool; dilation 1): per window
 * the sum over the divisor: the window clipped to the padded input with countIncludePad (the
 * default, as PyTorch), else the number of elements inside the input.
 */
export function avgPool2d<X extends Arr>(x: X, opts: Pool2dOptions): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'avgPool2d');
  const { k, s, p, d } = poolGeometry('avgPool2d', opts);
  if (d[0] !== 1 || d[1] !== 1) throw new HesseError('UNSUPPORTED_OP', `avgPool2d: dilation ${fmtShape(d)} is not supported, only 1`);
  const ceil = flag(opts.ceilMode, 'avgPool2d: ceilMode');
  const cip = flag(opts.countIncludePad, 'avgPool2d: countIncludePad', true);
  const build = (y: Sym) => traced.pool2d(y, 'avg', k, s, p, d, ceil, cip);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
}

/** Global average pooling (ONNX GlobalAveragePool): [N, C, H, W] → [N, C, 1, 1], the mean over H and W. */
export function globalAvgPool<X extends Arr>(x: X): Out<X> {
  if (!(x instanceof Sym)) rawOf(x, 'globalAvgPool');
  const build = (y: Sym) => traced.pool2d(y, 'global_avg', [1, 1], [1, 1], [0, 0, 0, 0], [1, 1], false, true);
  if (x instanceof Sym) return build(x) as Out<X>;
  return evalEager([x as Tensor], build) as Out<X>;
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
