/**
 * Function transformations, as in JAX / torch.func: grad, valueAndGrad, jvp, vjp, hvp, hessian,
 * jacobian. A function `(params, ...batch) => scalar` over symbolic tensors is traced once per
 * combination of shapes and dtype into a program held in Rust; every later call only stages
 * the numbers and runs it.
 *
 * `params` may be one tensor, an array of tensors, or a record of named tensors; the flat order
 * (used by hessian and jacobian) is array order, or the record's key order. Directions (`v`,
 * tangents) are matched to params by key for records, by position for arrays.
 *
 * **Captured tensors are constants** (JAX's rule). A Tensor the function closes over instead of
 * receiving as an argument is baked into the trace with its value at trace time; it gets no
 * derivative, and later calls reuse the trace. To pass a value that changes, pass it as an
 * argument (a batch argument). Disposing a captured tensor makes later calls throw a DISPOSED
 * HesseError that says so (never a stale value); a new function traces afresh.
 */
import { call, HesseError } from './errors.js';
import { Tensor, tensor, type DType } from './tensor.js';
import { capturedDisposed, Graph, Sym } from './trace.js';
import { describe, flag, fmtShape, integer, positive } from './validate.js';
import { core } from './runtime.js';
import type { RunResult } from './wasm/hesse.js';

/** Parameters as given to a transform: one tensor, an array of tensors or a record of named tensors (a one-level pytree). */
export type ParamTree = Tensor | readonly Tensor[] | { readonly [name: string]: Tensor };
/** Parameters as the traced function sees them: a symbolic tensor, an array or a record of them. */
export type SymParams = Sym | readonly Sym[] | { readonly [name: string]: Sym };
/** The tensors a traced function's parameters `S` are given as (and its gradients come back as). */
export type TensorsOf<S> = S extends Sym ? Tensor : { [K in keyof S]: Tensor };
/** Tensors structured like the tree `P`, each of its dtype: what a gradient or H·v comes back as. */
export type Like<P> = P extends Tensor<infer D> ? Tensor<D> : { -readonly [K in keyof P]: P[K] extends Tensor<infer D> ? Tensor<D> : Tensor };
/** The dtype of the tensors of a tree `P` ('float32' | 'float64' when the type does not say). */
export type DTypeOfTree<P> = (P extends Tensor ? P : P extends readonly (infer T)[] ? T : P[keyof P]) extends Tensor<infer D> ? D : DType;
/** A function to differentiate: symbolic params and batch in, a symbolic output out. */
export type Traceable<S extends SymParams> = (params: S, ...batch: Sym[]) => Sym;
/** Options that differentiate with respect to the parameters (argnum 0, the default). */
type WrtParams = TransformOptions & { argnum?: 0 };
/** Options that differentiate with respect to a batch argument: results are single tensors. */
type WrtInput = TransformOptions & { argnum: number };
type Typed = Float32Array | Float64Array;

/** Options of every transform. */
export interface TransformOptions {
  /** Differentiate with respect to argument `argnum`: 0 = params (default), i ≥ 1 = batch[i − 1]. */
  argnum?: number;
  /**
   * Check parameters, data and directions for NaN/±∞ (INVALID_ARGUMENT), and the results (value,
   * gradient, H·v, J·v, Jᵀu, Hessian, Jacobian) for overflow to ±∞ or NaN (NON_FINITE, naming the
   * result and its first such element), and throw instead of propagating them. Default false.
   */
  checkFinite?: boolean;
}

/** The structure of a tree: its kind, keys (or indices), leaf shapes and sizes, and dtype. */
interface Layout {
  kind: 'tensor' | 'array' | 'record';
  keys: string[];
  shapes: number[][];
  sizes: number[];
  total: number;
  dtype: DType;
}

const KIND_NAMES = { tensor: 'a single tensor', array: 'an array of tensors', record: 'a record of tensors' } as const;

/** How a leaf of a tree is named in messages: `params.w1`, `v[2]`, or `params` for a single tensor. */
function leafName(what: string, kind: Layout['kind'], key: string): string {
  return kind === 'record' ? `${what}.${key}` : kind === 'array' ? `${what}[${key}]` : what;
}

/** The layout and leaves of a tree given by the user, each leaf checked to be a Tensor, all of one dtype. */
function layoutOf(tree: unknown, what: string): Layout & { leaves: Tensor[] } {
  const [kind, keys, leaves]: [Layout['kind'], string[], unknown[]] =
    tree instanceof Tensor
      ? ['tensor', [''], [tree]]
      : Array.isArray(tree)
        ? ['array', tree.map((_, i) => String(i)), tree]
        : typeof tree === 'object' && tree !== null && [Object.prototype, null].includes(Object.getPrototypeOf(tree))
          ? ['record', Object.keys(tree), Object.values(tree)]
          : ['tensor', [], []];
  if (leaves.length === 0) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must be a tensor, a non-empty array of tensors or a record of tensors, got ${describe(tree)}`);
  }
  const bad = leaves.findIndex((l) => !(l instanceof Tensor));
  if (bad >= 0) {
    const l = leaves[bad];
    throw new HesseError('INVALID_ARGUMENT', `${leafName(what, kind, keys[bad]!)} must be a Tensor, got ${describe(l)}${Array.isArray(l) ? ' (trees are one level deep)' : ''}`);
  }
  const ts = leaves as Tensor[];
  const dtype = ts[0]!.dtype;
  const odd = ts.findIndex((t) => t.dtype !== dtype);
  if (odd >= 0) throw new HesseError('DTYPE_MISMATCH', `${what} mixes ${dtype} and ${ts[odd]!.dtype} tensors (${leafName(what, kind, keys[odd]!)})`);
  const sizes = ts.map((t) => t.size);
  return { kind, keys, shapes: ts.map((t) => [...t.shape]), sizes, total: sizes.reduce((a, b) => a + b, 0), dtype, leaves: ts };
}

const typedArray = (dtype: DType, n: number): Typed => (dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));

/**
 * The tensors of `tree` in the flat order of `layout`: records are matched by key name, never by
 * position (JAX's pytree rule), arrays by position. The structure, the keys, and each leaf's
 * shape and dtype must be those of the variable; a difference is an error naming the leaf.
 */
function leavesLike(tree: unknown, layout: Layout, what: string, variable: string): Tensor[] {
  const l = layoutOf(tree, what);
  if (l.kind !== layout.kind) {
    throw new HesseError('INVALID_ARGUMENT', `${what} is ${KIND_NAMES[l.kind]} but ${variable} is ${KIND_NAMES[layout.kind]}: give ${what} the structure of ${variable}`);
  }
  let leaves = l.leaves;
  if (l.kind === 'record') {
    const missing = layout.keys.filter((k) => !l.keys.includes(k));
    const extra = l.keys.filter((k) => !layout.keys.includes(k));
    if (missing.length || extra.length) {
      const list = (ks: string[]) => ks.map((k) => `'${k}'`).join(', ');
      const parts = [missing.length ? `missing ${list(missing)}` : '', extra.length ? `has extra ${list(extra)}` : ''].filter(Boolean);
      throw new HesseError('INVALID_ARGUMENT', `${what} ${parts.join(' and ')}: its keys must be those of ${variable} (${list(layout.keys)})`);
    }
    const byKey = new Map(l.keys.map((k, i) => [k, l.leaves[i]!]));
    leaves = layout.keys.map((k) => byKey.get(k)!);
  } else if (l.kind === 'array' && l.leaves.length !== layout.keys.length) {
    throw new HesseError('INVALID_ARGUMENT', `${what} has ${l.leaves.length} tensors but ${variable} has ${layout.keys.length}`);
  }
  leaves.forEach((t, i) => {
    const name = leafName(what, layout.kind, layout.keys[i]!);
    if (t.dtype !== layout.dtype) throw new HesseError('DTYPE_MISMATCH', `${name} is ${t.dtype} but ${leafName(variable, layout.kind, layout.keys[i]!)} is ${layout.dtype}`);
    if (fmtShape(t.shape) !== fmtShape(layout.shapes[i]!)) {
      throw new HesseError('SHAPE_MISMATCH', `${name} has shape ${fmtShape(t.shape)} but ${leafName(variable, layout.kind, layout.keys[i]!)} has shape ${fmtShape(layout.shapes[i]!)}`);
    }
  });
  return leaves;
}

/** The values of `leaves` concatenated, in order. */
function flatten(leaves: readonly Tensor[], layout: Layout): Typed {
  const out = typedArray(layout.dtype, layout.total);
  let off = 0;
  for (const t of leaves) {
    out.set(t.toArray(), off);
    off += t.size;
  }
  return out;
}

/** Flat values back into the structure of `layout`, as new tensors. */
function unflatten(flat: Typed, layout: Layout): ParamTree {
  let off = 0;
  const ts = layout.shapes.map((s, i) => {
    const t = tensor(flat.subarray(off, off + layout.sizes[i]!), s, layout.dtype);
    off += layout.sizes[i]!;
    return t;
  });
  if (layout.kind === 'tensor') return ts[0]!;
  if (layout.kind === 'array') return ts;
  return Object.fromEntries(layout.keys.map((k, i) => [k, ts[i]!]));
}

/** A traced program with the layout of its parameters. */
interface Compiled {
  graph: Graph;
  out: Sym;
  layout: Layout;
}

const cache = new WeakMap<Function, Map<string, Compiled>>();

function compile<S extends SymParams>(op: string, f: Traceable<S>, layout: Layout, batch: readonly Tensor[]): Compiled {
  const key = JSON.stringify([layout.dtype, layout.kind, layout.keys, layout.shapes, batch.map((b) => b.shape)]);
  let perFn = cache.get(f);
  if (!perFn) cache.set(f, (perFn = new Map()));
  const hit = perFn.get(key);
  const gone = hit?.graph.captured.find((t) => t.disposed);
  if (hit && gone) {
    // The program holds a copy of a tensor the user has freed: drop it, and say so.
    perFn.delete(key);
    hit.graph.dispose();
    throw capturedDisposed(gone, op);
  }
  if (hit) return hit;

  const graph = new Graph(layout.dtype);
  try {
    const syms = layout.shapes.map((s) => graph.param(s));
    const symParams = layout.kind === 'tensor' ? syms[0] : layout.kind === 'array' ? syms : Object.fromEntries(layout.keys.map((k, i) => [k, syms[i]]));
    const inputs = batch.map((b) => graph.input(b.shape));
    const out = f(symParams as unknown as S, ...inputs);
    if (!(out instanceof Sym) || out.graph !== graph) {
      throw new HesseError('INVALID_ARGUMENT', 'the traced function must return a value computed with hesse ops from its arguments');
    }
    const compiled = { graph, out, layout };
    perFn.set(key, compiled);
    return compiled;
  } catch (e) {
    graph.dispose();
    throw e;
  }
}

/** One call of a transform: the compiled program, the staged arguments, the variable. */
interface Invocation {
  op: string;
  c: Compiled;
  params: Tensor[];
  batch: readonly Tensor[];
  /** -1 for params, else the batch slot differentiated. */
  wrt: number;
  /** The layout of the variable being differentiated (params, or one batch tensor). */
  variable: Layout;
  /** Its name in messages: 'params' or 'batch[i]'. */
  varName: string;
  checkFinite: boolean;
}

/** Validates the arguments of a transform call, traces (or finds the trace) and names the variable. */
function invoke<S extends SymParams>(op: string, f: Traceable<S>, params: unknown, batch: unknown, opts: TransformOptions): Invocation {
  if (typeof f !== 'function') throw new HesseError('INVALID_ARGUMENT', `${op}: expected a function to differentiate, got ${describe(f)}`);
  if (!Array.isArray(batch)) throw new HesseError('INVALID_ARGUMENT', `${op}: the batch must be an array of tensors, got ${describe(batch)}`);
  const layout = layoutOf(params, 'params');
  batch.forEach((b, i) => {
    if (!(b instanceof Tensor)) throw new HesseError('INVALID_ARGUMENT', `${op}: batch[${i}] must be a Tensor, got ${describe(b)}`);
    if (b.dtype !== layout.dtype) throw new HesseError('DTYPE_MISMATCH', `${op}: batch[${i}] is ${b.dtype} but params are ${layout.dtype}`);
  });
  const argnum = integer(opts.argnum ?? 0, `${op}: argnum (0 = params, i = batch[i − 1])`, 0, batch.length);
  const checkFinite = flag(opts.checkFinite, `${op}: checkFinite`);
  const c = compile(op, f, layout, batch);
  const variable = argnum === 0 ? layout : layoutOf(batch[argnum - 1], `batch[${argnum - 1}]`);
  return { op, c, params: layout.leaves, batch, wrt: argnum - 1, variable, varName: argnum === 0 ? 'params' : `batch[${argnum - 1}]`, checkFinite };
}

/** What one run computes: the value, the gradient, Jᵀu, K JVPs or K HVPs ([K, n] tangents). */
type RunRequest =
  | { mode: 'value' }
  | { mode: 'grad' }
  | { mode: 'vjp'; cotangent: Typed }
  | { mode: 'jvp'; tangents: Typed; k: number }
  | { mode: 'hvp'; tangents: Typed; k: number };

/** Stages params and batch and runs `req`: { value } and the mode's result (see RawProgram). */
function run(inv: Invocation, req: RunRequest): RunResult {
  const { c } = inv;
  const raw = c.graph.raw;
  call(() => raw.setParams(flatten(inv.params, c.layout)));
  inv.batch.forEach((b, i) => call(() => raw.setInput(i, b.toArray())));
  const out = c.out.id;
  switch (req.mode) {
    case 'value':
      return call(() => raw.value(out, inv.checkFinite));
    case 'grad':
      return call(() => raw.grad(out, inv.wrt, inv.checkFinite));
    case 'vjp':
      return call(() => raw.vjp(out, inv.wrt, req.cotangent, inv.checkFinite));
    case 'jvp':
      return call(() => raw.jvp(out, inv.wrt, req.tangents, req.k, inv.checkFinite));
    case 'hvp': {
      const hessian = core().RawCurvature.hessian();
      try {
        return call(() => raw.hvp(out, inv.wrt, req.tangents, req.k, hessian, inv.checkFinite));
      } finally {
        hessian.free();
      }
    }
  }
}

/** A direction (v, tangents) structured like the variable, flattened in its order. */
function direction(inv: Invocation, x: unknown, what: string): Typed {
  return flatten(leavesLike(x, inv.variable, `${inv.op}: ${what}`, inv.varName), inv.variable);
}

/** `[i, j]` of flat index `i` in a row-major `shape` (`''` for a 0-d one). */
function multiIndex(shape: readonly number[], i: number): string {
  if (shape.length === 0) return '';
  const idx = shape.map(() => 0);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d]!;
    i = Math.floor(i / shape[d]!);
  }
  return fmtShape(idx);
}

/** Where flat index `i` of the variable is, in the user's terms: `params.w1[1, 0]`. */
function inVariable(inv: Invocation, i: number): string {
  const l = inv.variable;
  let leaf = 0;
  while (i >= l.sizes[leaf]!) i -= l.sizes[leaf++]!;
  return `${leafName(inv.varName, l.kind, l.keys[leaf]!)}${multiIndex(l.shapes[leaf]!, i)}`;
}

/** Where flat index `i` of the function's output is: `output[2, 1]`. */
const inOutput = (inv: Invocation, i: number) => `output${multiIndex(inv.c.out.shape, i)}`;

/**
 * With `checkFinite`, a result that overflowed to ±∞ or became NaN is a NON_FINITE error naming
 * the result and the first such element (the inputs are checked in the core before the run).
 */
function checkOutput(inv: Invocation, what: string, values: ArrayLike<number>, where: (i: number) => string): void {
  if (!inv.checkFinite) return;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new HesseError('NON_FINITE', `${inv.op}: checkFinite: ${what} is not finite: ${values[i]} at ${where(i)} (flat index ${i}); inputs were finite, so the function overflowed or divided by zero here`);
    }
  }
}

function scalarOut(inv: Invocation): void {
  const { out } = inv.c;
  if (out.size !== 1) {
    throw new HesseError('SHAPE_MISMATCH', `${inv.op}: the function returns shape ${fmtShape(out.shape)}, not a scalar (reduce it with sum or mean, or use vjp/jacobian)`);
  }
}

/**
 * ∇f, as `jax.grad` / `torch.func.grad`: returns a function `(params, ...batch) => gradient`
 * whose result is structured like `params` (records keyed like it), or like `batch[argnum − 1]`
 * with `opts.argnum`. `f` must return a scalar (shape [] or [1]); it is traced once per shapes
 * and dtype. Tensors `f` captures are constants of the trace (see the module notes): to pass a
 * value that changes, pass it as an argument (a batch argument).
 *
 * @throws HesseError SHAPE_MISMATCH for a non-scalar output; INVALID_ARGUMENT for bad trees or
 *   options; DTYPE_MISMATCH; DISPOSED for a disposed argument or captured tensor; NON_FINITE with
 *   `checkFinite`.
 * @example
 * const g = grad((p: Sym, x: Sym) => sum(square(sub(matmul(x, p), 1))))(w, x);
 */
export function grad<S extends SymParams>(f: Traceable<S>, opts?: WrtParams): <P extends TensorsOf<S>>(params: P, ...batch: Tensor[]) => Like<P>;
/** With `argnum: i` (i ≥ 1): the gradient with respect to batch[i − 1], one tensor of its shape and dtype. Errors as in the first signature. */
export function grad<S extends SymParams>(f: Traceable<S>, opts: WrtInput): <P extends TensorsOf<S>>(params: P, ...batch: Tensor[]) => Tensor<DTypeOfTree<P>>;
export function grad<S extends SymParams>(f: Traceable<S>, opts: TransformOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => unknown {
  const vg = gradient('grad', f, opts);
  return (params, ...batch) => vg(params, ...batch)[1];
}

/**
 * (f, ∇f) from one forward and one reverse sweep, as `jax.value_and_grad`. Like {@link grad},
 * with the scalar value first.
 */
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts?: WrtParams): <P extends TensorsOf<S>>(params: P, ...batch: Tensor[]) => [number, Like<P>];
/** With `argnum: i` (i ≥ 1): (f, the gradient with respect to batch[i − 1], one tensor of its shape). Errors as in the first signature. */
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts: WrtInput): <P extends TensorsOf<S>>(params: P, ...batch: Tensor[]) => [number, Tensor<DTypeOfTree<P>>];
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts: TransformOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => unknown {
  return gradient('valueAndGrad', f, opts);
}

function gradient<S extends SymParams>(op: string, f: Traceable<S>, opts: TransformOptions): (params: unknown, ...batch: Tensor[]) => [number, ParamTree] {
  return (params, ...batch) => {
    const inv = invoke(op, f, params, batch, opts);
    scalarOut(inv);
    const { value: out, grad: g } = run(inv, { mode: 'grad' });
    checkOutput(inv, 'the value', out, () => 'output');
    checkOutput(inv, 'the gradient', g!, (i) => inVariable(inv, i));
    return [out[0]!, unflatten(g!, inv.variable)];
  };
}

/**
 * Hessian-vector product H·v of a scalar f at `params`, exact, by forward-over-reverse (the
 * reverse sweep run on dual numbers θ + εv; `jax.jvp(jax.grad(f), (θ,), (v,))`). `v` is
 * structured like the differentiated argument (records matched by key), and so is the result.
 * `batch` are the other arguments. Tensors `f` captures are constants of the trace: to pass a
 * value that changes, pass it as an argument (a batch argument).
 *
 * @throws HesseError as {@link grad}; INVALID_ARGUMENT / SHAPE_MISMATCH naming the leaf of `v`
 *   whose keys, structure or shape differ from the variable's.
 */
export function hvp<S extends SymParams, P extends TensorsOf<S>>(f: Traceable<S>, params: P, v: TensorsOf<S>, batch?: readonly Tensor[], opts?: WrtParams): Like<P>;
/** With `argnum: i` (i ≥ 1): H·v for the Hessian with respect to batch[i − 1]; `v` and the result are tensors of its shape. Errors as in the first signature. */
export function hvp<S extends SymParams, P extends TensorsOf<S>>(f: Traceable<S>, params: P, v: Tensor, batch: readonly Tensor[], opts: WrtInput): Tensor<DTypeOfTree<P>>;
export function hvp<S extends SymParams>(f: Traceable<S>, params: TensorsOf<S>, v: ParamTree, batch: readonly Tensor[] = [], opts: TransformOptions = {}): ParamTree {
  const inv = invoke('hvp', f, params, batch, opts);
  scalarOut(inv);
  const hv = run(inv, { mode: 'hvp', tangents: direction(inv, v, 'v'), k: 1 }).products;
  checkOutput(inv, 'the HVP H·v', hv!, (i) => inVariable(inv, i));
  return unflatten(hv!, inv.variable);
}

/**
 * (f(x), J·v): the output and its directional derivative along `tangents`, by forward mode
 * (`jax.jvp`). `tangents` is structured like the differentiated argument (records matched by
 * key); both results have the output's shape. Captured tensors are constants of the trace.
 *
 * @throws HesseError as {@link hvp}.
 */
export function jvp<S extends SymParams, P extends TensorsOf<S>>(f: Traceable<S>, primals: P, tangents: ParamTree, batch?: readonly Tensor[], opts?: TransformOptions): [Tensor<DTypeOfTree<P>>, Tensor<DTypeOfTree<P>>];
export function jvp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, tangents: ParamTree, batch: readonly Tensor[] = [], opts: TransformOptions = {}): [Tensor, Tensor] {
  const inv = invoke('jvp', f, primals, batch, opts);
  const { value: out, tangents: rawT } = run(inv, { mode: 'jvp', tangents: direction(inv, tangents, 'tangents'), k: 1 });
  // An empty variable carries no tangent through the core: J·v is then 0 of the output's shape.
  const outT = rawT!.length === out.length ? rawT! : typedArray(inv.c.layout.dtype, out.length);
  checkOutput(inv, 'the value', out, (i) => inOutput(inv, i));
  checkOutput(inv, 'the JVP J·v', outT, (i) => inOutput(inv, i));
  const { shape } = inv.c.out;
  return [tensor(out, shape, inv.c.layout.dtype), tensor(outT, shape, inv.c.layout.dtype)];
}

/**
 * (f(x), pullback), as `jax.vjp`: pullback(u) = Jᵀu for a cotangent `u` of the output's shape
 * and dtype, structured like the differentiated argument. Captured tensors are constants of the
 * trace.
 *
 * @throws HesseError as {@link hvp}; SHAPE_MISMATCH / DTYPE_MISMATCH for a cotangent unlike the output.
 */
export function vjp<S extends SymParams, P extends TensorsOf<S>>(f: Traceable<S>, primals: P, batch?: readonly Tensor[], opts?: WrtParams): [Tensor<DTypeOfTree<P>>, (cotangent: Tensor) => Like<P>];
/** With `argnum: i` (i ≥ 1): the pullback returns Jᵀu with respect to batch[i − 1], one tensor of its shape. Errors as in the first signature. */
export function vjp<S extends SymParams, P extends TensorsOf<S>>(f: Traceable<S>, primals: P, batch: readonly Tensor[], opts: WrtInput): [Tensor<DTypeOfTree<P>>, (cotangent: Tensor) => Tensor<DTypeOfTree<P>>];
export function vjp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, batch: readonly Tensor[] = [], opts: TransformOptions = {}): [Tensor, (cotangent: Tensor) => ParamTree] {
  const inv = invoke('vjp', f, primals, batch, opts);
  const { value: out } = run(inv, { mode: 'value' });
  checkOutput(inv, 'the value', out, (i) => inOutput(inv, i));
  const { shape } = inv.c.out;
  const output: Layout = { kind: 'tensor', keys: [''], shapes: [[...shape]], sizes: [inv.c.out.size], total: inv.c.out.size, dtype: inv.c.layout.dtype };
  const pullback = (u: Tensor): ParamTree => {
    const [cot] = leavesLike(u, output, 'vjp: the cotangent', 'the output');
    const cv = cot!.toArray() as Typed;
    const bad = inv.checkFinite ? cv.findIndex((x) => !Number.isFinite(x)) : -1;
    if (bad >= 0) throw new HesseError('INVALID_ARGUMENT', `vjp: checkFinite: the cotangent has a non-finite value (${cv[bad]}) at ${inOutput(inv, bad)}`);
    const g = run(inv, { mode: 'vjp', cotangent: cv }).grad;
    checkOutput(inv, 'the VJP Jᵀu', g!, (i) => inVariable(inv, i));
    return unflatten(g!, inv.variable);
  };
  return [tensor(out, shape, inv.c.layout.dtype), pullback];
}

/** What {@link hessian} and {@link jacobian} return: a function of params and batch giving a dense matrix of the params' dtype. */
export type DenseOf<S> = <P extends TensorsOf<S>>(params: P, ...batch: Tensor[]) => Tensor<DTypeOfTree<P>>;

/** Options of {@link hessian} and {@link jacobian}. */
export interface HessianOptions extends TransformOptions {
  /** Refuse when the dense result would exceed this many bytes (default 512 MiB). */
  maxBytes?: number;
  /** Tangents per pass (default: as many as fit a 64 MiB working set, at most 64). */
  chunk?: number;
}

/** Bytes of working memory one tangent costs: every node's dual, forward and backward. */
function bytesPerTangent(c: Compiled): number {
  let n = 0;
  for (let id = 0; id < c.graph.raw.nNodes(); id++) n += c.graph.raw.shape(id).reduce((a, b) => a * b, 1);
  return 3 * n * (c.layout.dtype === 'float64' ? 8 : 4);
}

/** Tangents per pass: `opts.chunk` (a count ≥ 1), or as many as fit 64 MiB (at most 64); never more than n. */
function chunkSize(inv: Invocation, n: number, opts: HessianOptions): number {
  const k = opts.chunk === undefined ? Math.min(64, Math.floor((64 << 20) / Math.max(1, bytesPerTangent(inv.c)))) : positive(opts.chunk, `${inv.op}: chunk`);
  return Math.max(1, Math.min(n, k));
}

/** `opts.maxBytes`, a count ≥ 1 (default 512 MiB). */
function maxBytes(inv: Invocation, opts: HessianOptions): number {
  return opts.maxBytes === undefined ? 512 * 2 ** 20 : positive(opts.maxBytes, `${inv.op}: maxBytes`, Number.MAX_SAFE_INTEGER);
}

function checkDenseSize(what: string, rows: number, cols: number, dtype: DType, maxBytes: number, instead: string): void {
  const bytes = rows * cols * (dtype === 'float64' ? 8 : 4);
  if (bytes > maxBytes) {
    throw new HesseError(
      'OUT_OF_MEMORY',
      `${what}: a dense ${rows}×${cols} ${dtype} matrix needs ${(bytes / 2 ** 20).toFixed(1)} MiB, over the limit of ${(maxBytes / 2 ** 20).toFixed(1)} MiB; ${instead}`,
    );
  }
}

/** Fills rows of an n×n identity block [k, n] for directions start..start+k. */
function identityRows(dtype: DType, start: number, k: number, n: number): Typed {
  const v = typedArray(dtype, k * n);
  for (let r = 0; r < k; r++) v[r * n + start + r] = 1;
  return v;
}

/**
 * A dense symmetric n×n matrix (row-major) from products with `chunk` unit vectors at a time:
 * `products(E, k)` returns C·eᵢ for the k rows of E [k, n], stacked; row i of C = C·eᵢ (C is
 * symmetric). `onProgress(done, n)` after each pass. Shared by hessian and Objective.dense.
 */
export function denseFromProducts(n: number, dtype: DType, chunk: number, products: (units: Typed, k: number) => Typed, onProgress?: (done: number, total: number) => void): Typed {
  const out = typedArray(dtype, n * n);
  const k = Math.max(1, Math.min(n, chunk));
  for (let start = 0; start < n; start += k) {
    const kk = Math.min(k, n - start);
    out.set(products(identityRows(dtype, start, kk, n), kk), start * n);
    onProgress?.(start + kk, n);
  }
  return out;
}

/**
 * The dense Hessian [n, n] of a scalar function (`jax.hessian`, flattened): n is the size of the
 * differentiated argument, rows and columns in its flat order (array order, or the params' key
 * order). Built from multi-tangent HVPs, `chunk` columns per pass. Captured tensors are
 * constants of the trace.
 *
 * @throws HesseError OUT_OF_MEMORY (stating the need) past `maxBytes`; otherwise as {@link grad}.
 */
export function hessian<S extends SymParams>(f: Traceable<S>, opts: HessianOptions = {}): DenseOf<S> {
  return ((params: unknown, ...batch: Tensor[]) => {
    const inv = invoke('hessian', f, params, batch, opts);
    scalarOut(inv);
    const n = inv.variable.total;
    const dtype = inv.c.layout.dtype;
    checkDenseSize('hessian', n, n, dtype, maxBytes(inv, opts), 'use hvp, or the curvature estimators that need only products');
    const h = denseFromProducts(n, dtype, chunkSize(inv, n, opts), (units, k) => run(inv, { mode: 'hvp', tangents: units, k }).products!);
    checkOutput(inv, 'the Hessian', h, (i) => `[${Math.floor(i / n)}, ${i % n}] (${inVariable(inv, Math.floor(i / n))}, ${inVariable(inv, i % n)})`);
    return tensor(h, [n, n], dtype);
  }) as DenseOf<S>;
}

/**
 * The Jacobian [m, n] of f's flattened output (m elements) with respect to the flattened
 * differentiated argument (n), as `jax.jacfwd`: forward mode, `chunk` columns per pass.
 * Captured tensors are constants of the trace.
 *
 * @throws HesseError OUT_OF_MEMORY (stating the need) past `maxBytes`; otherwise as {@link jvp}.
 */
export function jacobian<S extends SymParams>(f: Traceable<S>, opts: HessianOptions = {}): DenseOf<S> {
  return ((params: unknown, ...batch: Tensor[]) => {
    const inv = invoke('jacobian', f, params, batch, opts);
    const n = inv.variable.total;
    const m = inv.c.out.size;
    const dtype = inv.c.layout.dtype;
    checkDenseSize('jacobian', m, n, dtype, maxBytes(inv, opts), 'use jvp or vjp');
    const jac = typedArray(dtype, m * n);
    const k = chunkSize(inv, n, opts);
    for (let start = 0; start < n; start += k) {
      const kk = Math.min(k, n - start);
      const outT = run(inv, { mode: 'jvp', tangents: identityRows(dtype, start, kk, n), k: kk }).tangents;
      // An output that depends on nothing (e.g. a sum over an empty value) comes back with no tangent: its columns stay 0.
      if (outT!.length === kk * m) for (let j = 0; j < kk; j++) for (let i = 0; i < m; i++) jac[i * n + start + j] = outT![j * m + i]!;
    }
    checkOutput(inv, 'the Jacobian', jac, (i) => `[${Math.floor(i / n)}, ${i % n}] (${inOutput(inv, Math.floor(i / n))}, ${inVariable(inv, i % n)})`);
    return tensor(jac, [m, n], dtype);
  }) as DenseOf<S>;
}
