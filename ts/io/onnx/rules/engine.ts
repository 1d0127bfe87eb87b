/**
 * The engine calls the rules build with, in one place: the traced forms (ts/trace.ts) and the
 * ops.ts primitives (gather, slice, pad, expand, where, pooling, NumPy matmul, reductions over
 * several axes, softmax on any axis), with the few adaptations ONNX needs (identity shortcuts,
 * constants lifted into the graph). Every derivative is the primitive's own.
 */
import * as ops from '../../../ops.js';
import { traced, type Graph, type Sym } from '../../../trace.js';
import type { Const } from '../decode.js';

/** A constant as a node of `g` (values converted to the program dtype). */
export const constant = (g: Graph, c: { shape: readonly number[]; data: ArrayLike<number> }): Sym => g.sym((r) => r.constant(c.shape as number[], Float64Array.from(c.data)));

/** a + b (broadcast), numbers lifted. */
export const add = (a: Sym | number, b: Sym | number, g = (a as Sym).graph ?? (b as Sym).graph) => traced.binary(g, 'add', a, b);
/** a − b (broadcast). */
export const sub = (a: Sym | number, b: Sym | number, g = (a as Sym).graph ?? (b as Sym).graph) => traced.binary(g, 'sub', a, b);
/** a·b (broadcast). */
export const mul = (a: Sym | number, b: Sym | number, g = (a as Sym).graph ?? (b as Sym).graph) => traced.binary(g, 'mul', a, b);
/** a / b (broadcast). */
export const div = (a: Sym | number, b: Sym | number, g = (a as Sym).graph ?? (b as Sym).graph) => traced.binary(g, 'div', a, b);
/** A pointwise tower of the core by name (act.rs), with its α. */
export const act = (x: Sym, name: string, alpha = 0, beta = 0) => traced.act(x, name, alpha, beta);
/** Reshape, or x itself when the shape is already that. */
export const reshape = (x: Sym, shape: readonly number[]) => (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i]) ? x : traced.reshape(x, shape));
/** Permute, or x itself for the identity permutation. */
export const permute = (x: Sym, perm: readonly number[]) => (perm.every((p, i) => p === i) ? x : traced.permute(x, perm));

/**
 * x indexed along `axis` by the constant integer indices `idx` (already in [0, n)), keeping the
 * axis (the result has idx.length entries there): ONNX Gather/Slice on a traced tensor.
 */
export function takeAlong(x: Sym, axis: number, idx: readonly number[]): Sym {
  if (idx.length === x.shape[axis] && idx.every((v, i) => v === i)) return x;
  return ops.gather(x, Int32Array.from(idx), axis);
}

/** A contiguous range [start, start + count) of `axis`. */
export function sliceAxis(x: Sym, axis: number, start: number, count: number): Sym {
  if (start === 0 && count === x.shape[axis]) return x;
  return ops.slice(x, [start], [start + count], [axis], [1]);
}

/** NumPy matmul of rank ≥ 2 operands whose batch dims broadcast. */
export function batchedMatmul(a: Sym, b: Sym): Sym {
  return a.shape.length === 2 && b.shape.length === 2 ? traced.matmul(a.graph, a, b) : ops.matmul(a, b);
}

/** max(a, b) elementwise. */
export const maximum = (a: Sym, b: Sym): Sym => ops.maximum(a, b);

/** clip(x, lo, hi) with constant bounds (either may be absent: ±∞), the core's Clip tower (all hi when lo > hi, as ONNX). */
export const clip = (x: Sym, lo: number | undefined, hi: number | undefined): Sym => act(x, 'clip', lo ?? -Infinity, hi ?? Infinity);

/** where(mask, x, y) for a constant mask (all three broadcast; a constant branch is lifted into the graph). */
export function whereConst(mask: Const, x: Sym | Const, y: Sym | Const, g: Graph): Sym {
  const lift = (v: Sym | Const) => ('kind' in v ? constant(g, v) : v);
  return ops.where({ data: mask.data, shape: mask.shape }, lift(x), lift(y));
}

/** Softmax or log-softmax along any axis. */
export function softmaxAxis(x: Sym, axis: number, log: boolean): Sym {
  return log ? ops.logSoftmax(x, axis) : ops.softmax(x, axis);
}

/** Σ, mean or max over several axes (keepdims as asked). */
export function reduceAxes(x: Sym, op: 'sum' | 'mean' | 'max', axes: readonly number[], keep: boolean): Sym {
  return ops[op](x, { axis: [...axes], keepdims: keep });
}

/** x padded with `value` (ONNX pads [b₁…bᵣ, e₁…eᵣ], all ≥ 0). */
export function padConstant(x: Sym, pads: readonly number[], value: number): Sym {
  return pads.every((p) => p === 0) ? x : ops.pad(x, pads, value);
}
