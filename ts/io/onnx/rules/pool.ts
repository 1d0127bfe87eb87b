/**
 * Pooling, 2-D ([N, C, H, W]) and 1-D ([N, C, L], as [N, C, 1, L]): GlobalAveragePool (the mean over H and W, kept), AveragePool
 * (count_include_pad either way), MaxPool (the max over each window; the gradient goes to the
 * window's maximum). Where the engine's pooling ops exist they are used; otherwise each is built
 * from a convolution per channel (x as [N·C, 1, H, W]) with constant kernels: an average pool
 * is the conv with the 1/(kH·kW) kernel (rescaled per window by kH·kW/count when padding is
 * not counted); a max pool takes each window offset with a one-hot kernel and their pairwise
 * max m + relu(tap − m), started at a tap inside the input (pads as −3·10³⁸). ceil_mode needs
 * the engine's ops.
 */
import type { Sym } from '../../../trace.js';
import * as ops from '../../../ops.js';
import { symv, type Ctx, type RuleTable } from './types.js';

/** [N, C, L] as [N, C, 1, L]. */
const lift = (x: Sym) => (x.shape.length === 3 ? ops.reshape(x, [x.shape[0]!, x.shape[1]!, 1, x.shape[2]!]) : x);
/** A pooled [N, C, 1, L'] back to [N, C, L'] when the input was 1-D. */
const drop = (y: Sym, x: Sym) => (x.shape.length === 3 ? ops.reshape(y, [y.shape[0]!, y.shape[1]!, y.shape[3]!]) : y);

interface Window {
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number, number, number];
  dilation: [number, number];
  ceil: boolean;
}

/**
 * The window of a 2-D pool, or of a 1-D one (nn.MaxPool1d/AvgPool1d on [N, C, L]) lifted to the
 * 2-D pool of [N, C, 1, L]: kernel/strides/dilations [v] → [1, v], pads [b, e] → [0, b, 0, e].
 */
function windowOf(c: Ctx, x: Sym): Window {
  if (x.shape.length !== 4 && x.shape.length !== 3) c.fail(`only 1-D and 2-D pooling ([N, C, L], [N, C, H, W]) is supported, got [${x.shape.join(', ')}]`);
  const oneD = x.shape.length === 3;
  const ints = (name: string) => {
    const v = c.a.ints(name);
    if (!oneD || !v) return v;
    if (name === 'pads') return v.length === 2 ? [0, v[0]!, 0, v[1]!] : c.invalid(`pads [${v.join(', ')}] must hold 2 values for a 1-D pool`);
    return v.length === 1 ? [1, v[0]!] : c.invalid(`${name} [${v.join(', ')}] must hold 1 value for a 1-D pool`);
  };
  // The lifted shape (no node: a dangling reshape of a parameter-dependent x would be a second path to the loss).
  const shape = oneD ? [x.shape[0]!, x.shape[1]!, 1, x.shape[2]!] : x.shape;
  const k = ints('kernel_shape');
  if (!k || k.length !== 2 || k.some((d) => d < 1)) c.invalid(`kernel_shape must hold two integers ≥ 1, got [${(k ?? []).join(', ')}]`);
  const s = ints('strides') ?? [1, 1];
  if (s.length !== 2 || s.some((d) => d < 1)) c.invalid(`strides must hold two integers ≥ 1, got [${s.join(', ')}]`);
  const d = ints('dilations') ?? [1, 1];
  if (d.length !== 2 || d.some((v) => v < 1)) c.invalid(`dilations must hold two integers ≥ 1, got [${d.join(', ')}]`);
  const autoPad = c.a.str('auto_pad', 'NOTSET');
  let p = autoPad === 'VALID' ? [0, 0, 0, 0] : (ints('pads') ?? [0, 0, 0, 0]);
  if (autoPad.startsWith('SAME')) {
    // Output ⌈in/stride⌉ for the dilated window d·(k − 1) + 1.
    const tot = [0, 1].map((i) => Math.max(0, (Math.ceil(shape[2 + i]! / s[i]!) - 1) * s[i]! + d[i]! * (k![i]! - 1) + 1 - shape[2 + i]!));
    const lo = tot.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    p = [lo[0]!, lo[1]!, tot[0]! - lo[0]!, tot[1]! - lo[1]!];
  }
  if (p.length !== 4 || p.some((d) => d < 0)) c.invalid(`pads must hold four integers ≥ 0, got [${p.join(', ')}]`);
  if (c.a.has('storage_order') && c.a.int('storage_order', 0) !== 0) c.fail('storage_order = 1 is not supported');
  return { kernel: [k![0]!, k![1]!], stride: [s[0]!, s[1]!], pads: p as Window['pads'], dilation: [d[0]!, d[1]!], ceil: c.a.flag('ceil_mode', false) };
}

/** The pool family: MaxPool, AveragePool, GlobalAveragePool (the engine's pooling primitives). */
export const POOL: RuleTable = {
  GlobalAveragePool: {
    attrs: [],
    build: (c) => {
      const x = c.sym(0);
      if (x.shape.length < 3) c.invalid(`the input must be [N, C, spatial…], got [${x.shape.join(', ')}]`);
      if (x.shape.length === 4) return symv(ops.globalAvgPool(x));
      return symv(ops.mean(x, { axis: [...Array(x.shape.length).keys()].slice(2), keepdims: true }));
    },
  },
  AveragePool: {
    attrs: ['auto_pad', 'ceil_mode', 'count_include_pad', 'kernel_shape', 'pads', 'strides', 'dilations'],
    build: (c) => {
      const x = c.sym(0);
      const w = windowOf(c, x);
      return symv(drop(ops.avgPool2d(lift(x), { kernel: w.kernel, stride: w.stride, pads: w.pads, dilation: w.dilation, countIncludePad: c.a.flag('count_include_pad', false), ceilMode: w.ceil }), x));
    },
  },
  MaxPool: {
    attrs: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
    build: (c) => {
      if (c.nOut > 1) c.fail('the Indices output of MaxPool is not supported');
      const x = c.sym(0);
      const w = windowOf(c, x);
      return symv(drop(ops.maxPool2d(lift(x), { kernel: w.kernel, stride: w.stride, pads: w.pads, dilation: w.dilation, ceilMode: w.ceil }), x));
    },
  },
};
