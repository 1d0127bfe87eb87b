/**
 * The engine calls the rules build with, in one place: the traced forms (ts/trace.ts) for the
 * ops the core has (conv2d with groups, the Clip/HardSigmoid towers, …), and for the newer ones
 * (gather, slice, pad, expand, where, pooling, batched matmul: the op surface of ARCHITECTURE.md) the ops.ts functions when
 * this build has them. Where it does not, each helper builds the same function from older
 * primitives, exactly: a slice or gather with constant indices is a product with a 0/1
 * selection matrix (x·1 + Σ x·0 = x, bitwise, for finite x); max(a, b) = b + relu(a − b);
 * a batched matmul is a broadcast product
 * summed over k. Their derivatives are those of the primitives, so every quantity stays exact.
 */
import * as ops from '../../../ops.js';
import { traced, type Graph, type Sym } from '../../../trace.js';
import { broadcastShapes, numel, strides } from '../fold.js';
import type { Const } from '../decode.js';

type AnyFn = (...args: unknown[]) => unknown;
const table = ops as unknown as Record<string, AnyFn | undefined>;
/** The ops.ts function `name` if this build has it (the newer op surface), else undefined. */
export const native = (name: string): AnyFn | undefined => (typeof table[name] === 'function' ? table[name] : undefined);

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

/** x with axis `axis` moved last, and the permutation that undoes it. */
function axisLast(x: Sym, axis: number): { y: Sym; back: number[] } {
  const r = x.shape.length;
  const perm = [...Array(r).keys()].filter((i) => i !== axis).concat(axis);
  const back = perm.map((_, i) => perm.indexOf(i));
  return { y: permute(x, perm), back };
}

/**
 * x indexed along `axis` by the constant integer indices `idx` (already in [0, n)), keeping the
 * axis (the result has idx.length entries there): ONNX Gather/Slice on a traced tensor.
 */
export function takeAlong(x: Sym, axis: number, idx: readonly number[]): Sym {
  const n = x.shape[axis]!;
  if (idx.length === n && idx.every((v, i) => v === i)) return x;
  const gather = native('gather');
  if (gather) return gather(x, Int32Array.from(idx), axis) as Sym;
  // The selection matrix S [n, m], S[idx[j], j] = 1: (x moved to [.., n]) · S.
  const { y, back } = axisLast(x, axis);
  const m = idx.length;
  const s = new Float64Array(n * m);
  idx.forEach((v, j) => (s[v * m + j] = 1));
  const lead = y.shape.slice(0, -1);
  const rows = reshape(y, [numel(lead), n]);
  const picked = traced.matmul(x.graph, rows, constant(x.graph, { shape: [n, m], data: s }));
  return permute(reshape(picked, [...lead, m]), back);
}

/** A contiguous range [start, start + count) of `axis`. */
export function sliceAxis(x: Sym, axis: number, start: number, count: number): Sym {
  const slice = native('slice');
  if (slice) {
    if (start === 0 && count === x.shape[axis]) return x;
    return slice(x, [start], [start + count], [axis], [1]) as Sym;
  }
  return takeAlong(x, axis, Array.from({ length: count }, (_, i) => start + i));
}

/** NumPy matmul of rank ≥ 2 operands whose batch dims broadcast. */
export function batchedMatmul(a: Sym, b: Sym): Sym {
  const g = a.graph;
  if (a.shape.length === 2 && b.shape.length === 2) return traced.matmul(g, a, b);
  // The engine's NumPy matmul arrived with the same op surface as slice.
  if (native('slice')) return ops.matmul(a, b) as Sym;
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.shape.length - 1]!;
  // A constant-free right operand of rank 2 ([.., m, k] · [k, n]): one 2-D product on the rows.
  if (b.shape.length === 2) return reshape(traced.matmul(g, reshape(a, [numel(a.shape) / k, k]), b), [...a.shape.slice(0, -1), n]);
  // General: a[.., m, k, 1] · b[.., 1, k, n] broadcast, summed over k.
  const prod = mul(reshape(a, [...a.shape.slice(0, -2), m, k, 1]), reshape(b, [...b.shape.slice(0, -2), 1, k, n]));
  return traced.reduce(prod, 'sum', prod.shape.length - 2, false);
}

/** max(a, b) elementwise: b + relu(a − b). */
export const maximum = (a: Sym, b: Sym) => add(b, act(sub(a, b), 'relu'));

/** clip(x, lo, hi) with constant bounds (either may be absent: ±∞), the core's Clip tower (all hi when lo > hi, as ONNX). */
export const clip = (x: Sym, lo: number | undefined, hi: number | undefined): Sym => act(x, 'clip', lo ?? -Infinity, hi ?? Infinity);

/** where(mask, x, y) for a constant mask (all three broadcast). */
export function whereConst(mask: Const, x: Sym | Const, y: Sym | Const, g: Graph): Sym {
  const f = native('where');
  const lift = (v: Sym | Const) => ('kind' in v ? constant(g, v) : v);
  if (f) return f({ data: mask.data, shape: mask.shape }, lift(x), lift(y)) as Sym;
  // m·x + (1 − m)·y, a constant branch folded into one constant (so a ±∞ there stays exact).
  const out = broadcastShapes(mask.shape, x.shape, y.shape)!;
  const bm = broadcastTo(mask, out);
  const part = (v: Sym | Const, keep: boolean) => {
    if ('kind' in v) {
      const c = broadcastTo(v, out);
      return constant(g, { shape: out, data: c.map((d, i) => ((bm[i] !== 0) === keep ? d : 0)) });
    }
    return mul(v, constant(g, { shape: out, data: bm.map((m) => ((m !== 0) === keep ? 1 : 0)) }));
  };
  return add(part(x, true), part(y, false));
}

/** A constant's values broadcast to `shape` (which it must broadcast to). */
function broadcastTo(c: Const, out: readonly number[]): Float64Array {
  const st = strides(c.shape);
  const ost = strides(out);
  const pad = out.length - c.shape.length;
  const data = new Float64Array(numel(out));
  for (let f = 0; f < data.length; f++) {
    let src = 0;
    for (let a = pad; a < out.length; a++) if (c.shape[a - pad] !== 1) src += (Math.floor(f / ost[a]!) % out[a]!) * st[a - pad]!;
    data[f] = c.data[src]!;
  }
  return data;
}

/** Softmax or log-softmax along any axis (moved last, normalized, moved back). */
export function softmaxAxis(x: Sym, axis: number, log: boolean): Sym {
  const { y, back } = axisLast(x, axis);
  return permute(traced.lastAxis(y, log ? 'log_softmax' : 'softmax'), back);
}

/** Σ or mean over several axes (keepdims as asked). */
export function reduceAxes(x: Sym, op: 'sum' | 'mean', axes: readonly number[], keep: boolean): Sym {
  let y = x;
  for (const a of [...axes].sort((p, q) => q - p)) y = traced.reduce(y, op, a, true);
  return keep ? y : reshape(y, x.shape.filter((_, i) => !axes.includes(i)));
}

/** x padded with `value` (ONNX pads [b₁…bᵣ, e₁…eᵣ], all ≥ 0): constant blocks concatenated per axis. */
export function padConstant(x: Sym, pads: readonly number[], value: number): Sym {
  const r = x.shape.length;
  if (pads.every((p) => p === 0)) return x;
  const f = native('pad');
  if (f) return f(x, pads, value) as Sym;
  let y = x;
  for (let a = 0; a < r; a++) {
    const [b, e] = [pads[a]!, pads[a + r]!];
    if (!b && !e) continue;
    const block = (n: number) => {
      const shape = [...y.shape];
      shape[a] = n;
      return constant(x.graph, { shape, data: new Float64Array(numel(shape)).fill(value) });
    };
    y = traced.concat(x.graph, [...(b ? [block(b)] : []), y, ...(e ? [block(e)] : [])], a);
  }
  return y;
}
