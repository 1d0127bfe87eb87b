/**
 * Tracing: a function over symbolic tensors (`Sym`) records a program in Rust, node by node,
 * with shapes checked as it goes. The program is then run many times with no JS work per op.
 * The op functions in ops.ts accept `Sym`s and land here.
 */
import { call, HesseError } from './errors.js';
import { core } from './runtime.js';
import { Tensor, tensor, type DType } from './tensor.js';
import { IndexTensor, type IndexArray } from './indices.js';
import type { RawProgram } from './wasm/hesse.js';
import { describe, fmtShape } from './validate.js';

/**
 * A symbolic tensor: a node of the program being traced (JAX's tracer). The ops accept it where
 * they accept a Tensor and record a node instead of computing; only `shape` and `size` are known.
 */
export class Sym {
  // An ES private field keeps Sym nominal in the shipped .d.ts (its other members are internal),
  // so that a Tensor, which also has `shape` and `size`, is never taken for a Sym.
  readonly #graph: Graph;
  /** @internal */
  constructor(
    graph: Graph,
    /** @internal */ readonly id: number,
    /** Dimensions, outermost first. */
    readonly shape: readonly number[],
  ) {
    this.#graph = graph;
  }
  /** @internal The program this node belongs to. */
  get graph(): Graph {
    return this.#graph;
  }
  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/**
 * An index (integer) input of a program: a slot whose integer values (token ids, say) are
 * staged per run with `Graph.setIndexInput`, read by the gathers that take it. It is not a
 * node and has no derivative; only `shape` is known while tracing.
 */
export class IndexSym {
  readonly #graph: Graph;
  /** @internal */
  constructor(
    graph: Graph,
    /** @internal The index input slot. */ readonly slot: number,
    /** Dimensions, outermost first. */
    readonly shape: readonly number[],
  ) {
    this.#graph = graph;
  }
  /** @internal The program this input belongs to. */
  get graph(): Graph {
    return this.#graph;
  }
  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/**
 * The program under construction (and, once traced, the compiled program): a `RawProgram` held
 * in Rust, of one dtype. Transforms and objectives make one per trace; users never need to.
 */
export class Graph {
  #raw: RawProgram | undefined;
  /** @internal The tensors the traced function captured (closed over): constants of the trace. */
  readonly captured: Tensor[] = [];
  /** An empty program of `dtype`. */
  constructor(/** The dtype of every value in the program. */ readonly dtype: DType) {
    this.#raw = call(() => new (core().RawProgram)(dtype));
  }
  /** @internal The program handle, or a DISPOSED error. */
  get raw(): RawProgram {
    if (!this.#raw) throw new HesseError('DISPOSED', 'this program (objective or traced function) was used after dispose()');
    return this.#raw;
  }
  /** @internal Wraps a node id returned by a builder call. */
  sym(build: (raw: RawProgram) => number): Sym {
    const id = call(() => build(this.raw));
    return new Sym(this, id, Array.from(this.raw.shape(id)));
  }
  /** A parameter leaf of `shape` (the next slice of the flat parameter vector). */
  param(shape: readonly number[]): Sym {
    return this.sym((r) => r.param(shape as number[]));
  }
  /** An input (batch) slot of `shape`, staged per run. */
  input(shape: readonly number[]): Sym {
    return this.sym((r) => r.input(shape as number[]));
  }
  /** An index (integer) input slot of `shape`, for {@link gather}'s indices (token ids [N, T]). */
  indexInput(shape: readonly number[]): IndexSym {
    const slot = call(() => this.raw.indexInput(shape as number[]));
    return new IndexSym(this, slot, [...shape]);
  }
  /**
   * Stages the values of an index input for the next runs: an Int32Array or BigInt64Array of
   * its size (checked exactly, never wrapped: LENGTH_MISMATCH or INVALID_ARGUMENT otherwise).
   */
  setIndexInput(ix: IndexSym, values: IndexArray): void {
    if (ix.graph !== this) throw new HesseError('INVALID_ARGUMENT', 'setIndexInput: an index input of another program');
    if (!(values instanceof Int32Array || values instanceof BigInt64Array)) {
      throw new HesseError('INVALID_ARGUMENT', `setIndexInput: values must be an Int32Array or a BigInt64Array, got ${describe(values)}`);
    }
    call(() => this.raw.setIndexInput(ix.slot, values));
  }
  /**
   * An operand as a node of this program: a Sym of this trace as is; a Tensor or number captured
   * by the traced function as a constant node holding its value now (JAX's rule; no derivative).
   * Throws INVALID_ARGUMENT for a Sym of another trace or a non-operand, DISPOSED for a disposed tensor.
   */
  lift(x: Sym | Tensor | number): Sym {
    if (x instanceof Sym) {
      if (x.graph !== this) throw new HesseError('INVALID_ARGUMENT', 'a symbolic tensor from another trace was used here');
      return x;
    }
    if (x instanceof Tensor) {
      if (x.disposed) throw capturedDisposed(x, 'tracing');
      this.captured.push(x);
      return this.sym((r) => r.constant(x.shape as number[], new Float64Array(x.toArray())));
    }
    if (typeof x === 'number') return this.sym((r) => r.constant([], new Float64Array([x])));
    throw new HesseError('INVALID_ARGUMENT', `expected a Tensor, a symbolic tensor or a number, got ${typeof x}`);
  }
  /** Frees the program in Rust. Idempotent; later use throws DISPOSED. */
  dispose(): void {
    this.#raw?.free();
    this.#raw = undefined;
  }
}

/**
 * The error for a disposed tensor that a traced function captured. A captured tensor is a
 * constant of the trace (JAX's rule): its value when traced is baked into the program. Using the
 * program after the tensor is disposed would silently use a stale copy, so it is an error.
 */
export function capturedDisposed(t: Tensor, op: string): HesseError {
  return new HesseError(
    'DISPOSED',
    `${op}: a tensor of shape ${fmtShape(t.shape)} (${t.dtype}) captured by the traced function was disposed. A captured tensor is a constant of the trace (its value when traced); to pass a value that changes, pass it as an argument (a batch argument)`,
  );
}

/** The graph of the first Sym among `xs`, if any (then the op is traced, not run eagerly). */
export function graphOf(...xs: unknown[]): Graph | undefined {
  for (const x of xs) if (x instanceof Sym) return x.graph;
  return undefined;
}

/** What an op accepts as an operand: a symbolic tensor, a tensor, or (binary ops) a number. */
export type Operand = Sym | Tensor | number;

/**
 * The traced forms of the ops, one program node each (shapes checked in Rust as the node is
 * added); ops.ts dispatches here when an operand is symbolic, nn.ts and io/onnx.ts build with them.
 */
export const traced = {
  binary: (g: Graph, op: 'add' | 'sub' | 'mul' | 'div', a: Operand, b: Operand) => {
    const [x, y] = [g.lift(a), g.lift(b)];
    return g.sym((r) => r.binary(op, x.id, y.id));
  },
  scale: (x: Sym, c: number) => x.graph.sym((r) => r.scale(x.id, c)),
  act: (x: Sym, name: string, alpha = 0, beta = 0) => x.graph.sym((r) => r.act(x.id, name, alpha, beta)),
  matmul: (g: Graph, a: Operand, b: Operand, ta = false, tb = false) => {
    const [x, y] = [g.lift(a), g.lift(b)];
    return g.sym((r) => r.matmul(x.id, y.id, ta, tb));
  },
  /** attrs: stride h, w; pads top, left, bottom, right; dilation h, w; groups. */
  conv2d: (g: Graph, x: Operand, w: Operand, attrs: Uint32Array) => {
    const [a, b] = [g.lift(x), g.lift(w)];
    return g.sym((r) => r.conv2d(a.id, b.id, attrs));
  },
  reshape: (x: Sym, shape: readonly number[]) => x.graph.sym((r) => r.reshape(x.id, shape as number[])),
  transpose: (x: Sym) => x.graph.sym((r) => r.transpose(x.id)),
  permute: (x: Sym, perm: readonly number[]) => x.graph.sym((r) => r.permute(x.id, perm as number[])),
  concat: (g: Graph, xs: Operand[], axis: number) => {
    const syms = xs.map((x) => g.lift(x));
    return g.sym((r) => r.concat(new Uint32Array(syms.map((s) => s.id)), axis));
  },
  reduce: (x: Sym, op: 'sum' | 'mean', axis: number | undefined, keepdims: boolean) => x.graph.sym((r) => r.reduce(op, x.id, axis, keepdims)),
  lastAxis: (x: Sym, op: 'logsumexp' | 'softmax' | 'log_softmax' | 'layer_norm', eps = 0) => x.graph.sym((r) => r.lastAxis(op, x.id, eps)),
  loss: (g: Graph, kind: 'mse' | 'cross_entropy' | 'bce_with_logits', pred: Operand, target: Operand) => {
    const [p, t] = [g.lift(pred), g.lift(target)];
    return g.sym((r) => r.loss(kind, p.id, t.id));
  },
  sequential: (x: Sym, layers: unknown[]) => x.graph.sym((r) => r.sequential(x.id, JSON.stringify(layers))),
  /** ONNX Gather along `axis` at an index input or constant indices. */
  gather: (g: Graph, x: Operand, idx: IndexSym | IndexTensor, axis: number) => {
    const s = g.lift(x);
    if (idx instanceof IndexSym) {
      if (idx.graph !== g) throw new HesseError('INVALID_ARGUMENT', 'gather: an index input of another trace was used here');
      return g.sym((r) => r.gather(s.id, axis, idx.slot, [], new Int32Array(0)));
    }
    return g.sym((r) => r.gather(s.id, axis, -1, idx.shape as number[], idx.data));
  },
  /** ONNX Slice (bounds as numbers; ±2⁶³ and beyond saturate). */
  slice: (x: Sym, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]) =>
    x.graph.sym((r) => r.slice(x.id, new Float64Array(starts), new Float64Array(ends), new Float64Array(axes ?? []), axes !== undefined, new Float64Array(steps ?? []), steps !== undefined)),
  /** ONNX Pad, constant mode. */
  pad: (x: Sym, pads: readonly number[], value: number) => x.graph.sym((r) => r.pad(x.id, new Float64Array(pads), value)),
  /** ONNX Expand. */
  expand: (x: Sym, shape: readonly number[]) => x.graph.sym((r) => r.expand(x.id, shape as number[])),
  /** where(mask, x, y) with a constant mask (bytes, non-zero = true). */
  where: (g: Graph, maskShape: readonly number[], mask: Uint8Array, x: Operand, y: Operand) => {
    const [a, b] = [g.lift(x), g.lift(y)];
    return g.sym((r) => r.whereConst(maskShape as number[], mask, a.id, b.id));
  },
  /** sum | mean | max over several axes (all when undefined). */
  reduceAxes: (x: Sym, op: 'sum' | 'mean' | 'max', axes: readonly number[] | undefined, keepdims: boolean) =>
    x.graph.sym((r) => r.reduceAxes(op, x.id, new Int32Array(axes ?? []), axes === undefined, keepdims)),
  /** softmax | log_softmax | logsumexp (kept as 1) over any axis. */
  onAxis: (x: Sym, op: 'softmax' | 'log_softmax' | 'logsumexp', axis: number) => x.graph.sym((r) => r.onAxis(op, x.id, axis)),
  /** max | avg | global_avg pooling of [N, C, H, W]. */
  pool2d: (x: Sym, op: 'max' | 'avg' | 'global_avg', kernel: readonly number[], stride: readonly number[], pads: readonly number[], dilation: readonly number[], ceilMode: boolean, countIncludePad: boolean) =>
    x.graph.sym((r) => r.pool2d(op, x.id, new Uint32Array(kernel), new Uint32Array(stride), new Uint32Array(pads), new Uint32Array(dilation), ceilMode, countIncludePad)),
};

/**
 * Runs a one-node-at-a-time traced op eagerly on tensors: builds a tiny program with the
 * tensors as inputs, evaluates it, returns the output. (For ops with no eager kernel of their own.)
 */
export function evalEager(tensors: Tensor[], build: (...xs: Sym[]) => Sym): Tensor {
  const dtype = tensors[0]!.dtype;
  const g = new Graph(dtype);
  try {
    const xs = tensors.map((t) => g.input(t.shape));
    const out = build(...xs);
    tensors.forEach((t, i) => call(() => g.raw.setInput(i, t.toArray())));
    g.raw.setParams(dtype === 'float64' ? new Float64Array(0) : new Float32Array(0));
    const { value } = call(() => g.raw.value(out.id, false));
    return tensor(value, out.shape, dtype);
  } finally {
    g.dispose();
  }
}
