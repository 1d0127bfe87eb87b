/**
 * Function transformations, as in JAX / torch.func: grad, valueAndGrad, jvp, vjp, hvp, hessian,
 * jacobian. A function `(params, ...batch) => scalar` over symbolic tensors is traced once per
 * combination of shapes and dtype into a program held in Rust; every later call only stages
 * the numbers and runs it.
 *
 * `params` may be one tensor, an array of tensors, or a record of named tensors; the flat order
 * (used by hessian and jacobian) is array order, or the record's key order.
 */
import { call, HesseError } from './errors.js';
import { Tensor, tensor, type DType } from './tensor.js';
import { Graph, Sym } from './trace.js';

export type ParamTree = Tensor | readonly Tensor[] | { readonly [name: string]: Tensor };
/** Parameters as the traced function sees them: a symbolic tensor, an array or a record of them. */
export type SymParams = Sym | readonly Sym[] | { readonly [name: string]: Sym };
/** The tensors a traced function's parameters `S` are given as (and its gradients come back as). */
export type TensorsOf<S> = S extends Sym ? Tensor : { [K in keyof S]: Tensor };
/** A function to differentiate: symbolic params and batch in, a symbolic output out. */
export type Traceable<S extends SymParams> = (params: S, ...batch: Sym[]) => Sym;
/** Options that differentiate with respect to the parameters (argnum 0, the default). */
type WrtParams = TransformOptions & { argnum?: 0 };
/** Options that differentiate with respect to a batch argument: results are single tensors. */
type WrtInput = TransformOptions & { argnum: number };
type Typed = Float32Array | Float64Array;

export interface TransformOptions {
  /** Differentiate with respect to argument `argnum`: 0 = params (default), i ≥ 1 = batch[i − 1]. */
  argnum?: number;
  /** Check parameters, data and directions for NaN/±∞ and throw instead of propagating them. */
  checkFinite?: boolean;
}

interface Layout {
  kind: 'tensor' | 'array' | 'record';
  keys: string[];
  shapes: number[][];
  sizes: number[];
  total: number;
  dtype: DType;
}

function layoutOf(tree: ParamTree, what: string): Layout {
  const [kind, keys, leaves]: [Layout['kind'], string[], unknown[]] =
    tree instanceof Tensor
      ? ['tensor', [''], [tree]]
      : Array.isArray(tree)
        ? ['array', tree.map((_, i) => String(i)), tree]
        : typeof tree === 'object' && tree !== null
          ? ['record', Object.keys(tree), Object.values(tree)]
          : ['tensor', [], []];
  if (leaves.length === 0 || !leaves.every((l) => l instanceof Tensor)) {
    throw new HesseError('INVALID_ARGUMENT', `${what} must be a tensor, an array of tensors or a record of tensors`);
  }
  const ts = leaves as Tensor[];
  const dtype = ts[0]!.dtype;
  const odd = ts.find((t) => t.dtype !== dtype);
  if (odd) throw new HesseError('DTYPE_MISMATCH', `${what} mixes ${dtype} and ${odd.dtype} tensors`);
  const sizes = ts.map((t) => t.size);
  return { kind, keys, shapes: ts.map((t) => [...t.shape]), sizes, total: sizes.reduce((a, b) => a + b, 0), dtype };
}

const typedArray = (dtype: DType, n: number): Typed => (dtype === 'float64' ? new Float64Array(n) : new Float32Array(n));

function leaves(tree: ParamTree): Tensor[] {
  return tree instanceof Tensor ? [tree] : Array.isArray(tree) ? [...tree] : Object.values(tree as Record<string, Tensor>);
}

/** The tree's values in flat order. */
function flatten(tree: ParamTree, layout: Layout): Typed {
  const out = typedArray(layout.dtype, layout.total);
  let off = 0;
  for (const t of leaves(tree)) {
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

function compile<S extends SymParams>(f: Traceable<S>, params: ParamTree, batch: readonly Tensor[]): Compiled {
  const layout = layoutOf(params, 'params');
  batch.forEach((b, i) => {
    if (!(b instanceof Tensor)) throw new HesseError('INVALID_ARGUMENT', `batch argument ${i} must be a Tensor`);
  });
  const key = JSON.stringify([layout.dtype, layout.kind, layout.keys, layout.shapes, batch.map((b) => b.shape)]);
  let perFn = cache.get(f);
  if (!perFn) cache.set(f, (perFn = new Map()));
  const hit = perFn.get(key);
  if (hit) return hit;

  const graph = new Graph(layout.dtype);
  const syms = layout.shapes.map((s) => graph.param(s));
  const symParams = layout.kind === 'tensor' ? syms[0] : layout.kind === 'array' ? syms : Object.fromEntries(layout.keys.map((k, i) => [k, syms[i]]));
  const inputs = batch.map((b) => graph.input(b.shape));
  const out = f(symParams as unknown as S, ...inputs);
  if (!(out instanceof Sym) || out.graph !== graph) {
    graph.dispose();
    throw new HesseError('INVALID_ARGUMENT', 'the traced function must return a value computed with hesse ops from its arguments');
  }
  const compiled = { graph, out, layout };
  perFn.set(key, compiled);
  return compiled;
}

interface RunRequest {
  tangents?: Typed;
  k?: number;
  backward?: boolean;
  cotangent?: Typed;
}

/** Stages params and batch, runs; returns [output, output tangents, gradient, gradient tangents]. */
function run(c: Compiled, params: ParamTree, batch: readonly Tensor[], opts: TransformOptions, req: RunRequest): Typed[] {
  const raw = c.graph.raw;
  call(() => raw.setParams(flatten(params, c.layout)));
  batch.forEach((b, i) => {
    if (b.dtype !== c.layout.dtype) {
      throw new HesseError('DTYPE_MISMATCH', `batch argument ${i} is ${b.dtype} but params are ${c.layout.dtype}`);
    }
    call(() => raw.setInput(i, b.toArray()));
  });
  const wrt = (opts.argnum ?? 0) - 1;
  if (wrt >= batch.length || !Number.isInteger(wrt + 1)) {
    throw new HesseError('INVALID_ARGUMENT', `argnum ${opts.argnum} is out of range: 0 is params, 1..${batch.length} the batch`);
  }
  return call(() =>
    raw.run(c.out.id, wrt, req.tangents ?? typedArray(c.layout.dtype, 0), req.k ?? 0, req.backward ?? false, req.cotangent, opts.checkFinite ?? false, 'hessian', 0, 15),
  ) as unknown as Typed[];
}

/** Layout of the variable being differentiated (params, or one batch tensor). */
function varLayout(c: Compiled, batch: readonly Tensor[], opts: TransformOptions): Layout {
  const a = opts.argnum ?? 0;
  return a === 0 ? c.layout : layoutOf(batch[a - 1]!, `batch argument ${a - 1}`);
}

function toTyped(x: ParamTree, layout: Layout, what: string): Typed {
  const l = layoutOf(x, what);
  if (JSON.stringify(l.shapes) !== JSON.stringify(layout.shapes) || l.dtype !== layout.dtype) {
    throw new HesseError('SHAPE_MISMATCH', `${what} has shapes ${JSON.stringify(l.shapes)} (${l.dtype}) but the variable has ${JSON.stringify(layout.shapes)} (${layout.dtype})`);
  }
  return flatten(x, l);
}

function scalarOut(c: Compiled, what: string): void {
  if (c.out.size !== 1) {
    throw new HesseError('SHAPE_MISMATCH', `${what}: the function returns shape [${c.out.shape.join(', ')}], not a scalar (reduce it with sum or mean, or use vjp/jacobian)`);
  }
}

/** ∇f: a function returning the gradient, structured like the differentiated argument. */
export function grad<S extends SymParams>(f: Traceable<S>, opts?: WrtParams): (params: TensorsOf<S>, ...batch: Tensor[]) => TensorsOf<S>;
export function grad<S extends SymParams>(f: Traceable<S>, opts: WrtInput): (params: TensorsOf<S>, ...batch: Tensor[]) => Tensor;
export function grad<S extends SymParams>(f: Traceable<S>, opts: TransformOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => ParamTree {
  const vg = valueAndGrad(f, opts as WrtInput);
  return (params, ...batch) => vg(params, ...batch)[1];
}

/** (f, ∇f) from one forward and one reverse sweep. */
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts?: WrtParams): (params: TensorsOf<S>, ...batch: Tensor[]) => [number, TensorsOf<S>];
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts: WrtInput): (params: TensorsOf<S>, ...batch: Tensor[]) => [number, Tensor];
export function valueAndGrad<S extends SymParams>(f: Traceable<S>, opts: TransformOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => [number, ParamTree] {
  return (params, ...batch) => {
    const c = compile(f, params as ParamTree, batch);
    scalarOut(c, 'grad');
    const [out, , g] = run(c, params as ParamTree, batch, opts, { backward: true });
    return [out![0]!, unflatten(g!, varLayout(c, batch, opts))];
  };
}

/**
 * Hessian-vector product H·v, exact, by forward-over-reverse: the reverse sweep run on dual
 * numbers θ + εv. `v` is structured like the differentiated argument, and so is the result.
 */
export function hvp<S extends SymParams>(f: Traceable<S>, params: TensorsOf<S>, v: TensorsOf<S>, batch?: readonly Tensor[], opts?: WrtParams): TensorsOf<S>;
export function hvp<S extends SymParams>(f: Traceable<S>, params: TensorsOf<S>, v: Tensor, batch: readonly Tensor[], opts: WrtInput): Tensor;
export function hvp<S extends SymParams>(f: Traceable<S>, params: TensorsOf<S>, v: ParamTree, batch: readonly Tensor[] = [], opts: TransformOptions = {}): ParamTree {
  const c = compile(f, params as ParamTree, batch);
  scalarOut(c, 'hvp');
  const layout = varLayout(c, batch, opts);
  const [, , , hv] = run(c, params as ParamTree, batch, opts, { tangents: toTyped(v, layout, 'v'), k: 1, backward: true });
  return unflatten(hv!, layout);
}

/** (f(x), J·v): the output and its directional derivative along `tangents` (forward mode). */
export function jvp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, tangents: ParamTree, batch: readonly Tensor[] = [], opts: TransformOptions = {}): [Tensor, Tensor] {
  const c = compile(f, primals as ParamTree, batch);
  const layout = varLayout(c, batch, opts);
  const [out, outT] = run(c, primals as ParamTree, batch, opts, { tangents: toTyped(tangents, layout, 'tangents'), k: 1 });
  return [tensor(out!, c.out.shape, c.layout.dtype), tensor(outT!, c.out.shape, c.layout.dtype)];
}

/** (f(x), pullback): pullback(u) = Jᵀu, structured like the differentiated argument. */
export function vjp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, batch?: readonly Tensor[], opts?: WrtParams): [Tensor, (cotangent: Tensor) => TensorsOf<S>];
export function vjp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, batch: readonly Tensor[], opts: WrtInput): [Tensor, (cotangent: Tensor) => Tensor];
export function vjp<S extends SymParams>(f: Traceable<S>, primals: TensorsOf<S>, batch: readonly Tensor[] = [], opts: TransformOptions = {}): [Tensor, (cotangent: Tensor) => ParamTree] {
  const c = compile(f, primals as ParamTree, batch);
  const [out] = run(c, primals as ParamTree, batch, opts, {});
  const pullback = (u: Tensor): ParamTree => {
    if (u.size !== c.out.size || u.dtype !== c.layout.dtype) {
      throw new HesseError('SHAPE_MISMATCH', `vjp: the cotangent is [${u.shape.join(', ')}] ${u.dtype} but the output is [${c.out.shape.join(', ')}] ${c.layout.dtype}`);
    }
    const [, , g] = run(c, primals as ParamTree, batch, opts, { cotangent: u.toArray() as Typed });
    return unflatten(g!, varLayout(c, batch, opts));
  };
  return [tensor(out!, c.out.shape, c.layout.dtype), pullback];
}

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

function chunkSize(c: Compiled, n: number, opts: HessianOptions): number {
  const k = opts.chunk ?? Math.min(64, Math.floor((64 << 20) / Math.max(1, bytesPerTangent(c))));
  return Math.max(1, Math.min(n, k));
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
 * A dense symmetric n×n matrix from products with K unit vectors at a time: `products(E, k)`
 * returns C·eᵢ for the k rows of E, stacked; row i of C = C·eᵢ (C is symmetric).
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
 * The dense Hessian [n, n] of a scalar function, built from multi-tangent HVPs (K columns per
 * pass). It states its memory need and refuses past `maxBytes`.
 */
export function hessian<S extends SymParams>(f: Traceable<S>, opts: HessianOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => Tensor {
  return (p, ...batch) => {
    const params = p as ParamTree;
    const c = compile(f, params, batch);
    scalarOut(c, 'hessian');
    const n = varLayout(c, batch, opts).total;
    const dtype = c.layout.dtype;
    checkDenseSize('hessian', n, n, dtype, opts.maxBytes ?? 512 * 2 ** 20, 'use hvp, or the curvature estimators that need only products');
    const h = denseFromProducts(n, dtype, chunkSize(c, n, opts), (units, k) => run(c, params, batch, opts, { tangents: units, k, backward: true })[3]!);
    return tensor(h, [n, n], dtype);
  };
}

/** The Jacobian [outputs, n] of f's (flattened) output, by forward mode, K columns per pass. */
export function jacobian<S extends SymParams>(f: Traceable<S>, opts: HessianOptions = {}): (params: TensorsOf<S>, ...batch: Tensor[]) => Tensor {
  return (p, ...batch) => {
    const params = p as ParamTree;
    const c = compile(f, params, batch);
    const n = varLayout(c, batch, opts).total;
    const m = c.out.size;
    const dtype = c.layout.dtype;
    checkDenseSize('jacobian', m, n, dtype, opts.maxBytes ?? 512 * 2 ** 20, 'use jvp or vjp');
    const jac = typedArray(dtype, m * n);
    const k = chunkSize(c, n, opts);
    for (let start = 0; start < n; start += k) {
      const kk = Math.min(k, n - start);
      const [, outT] = run(c, params, batch, opts, { tangents: identityRows(dtype, start, kk, n), k: kk });
      for (let j = 0; j < kk; j++) for (let i = 0; i < m; i++) jac[i * n + start + j] = outT![j * m + i]!;
    }
    return tensor(jac, [m, n], dtype);
  };
}
