/**
 * Pooling, 2-D ([N, C, H, W]): GlobalAveragePool (the mean over H and W, kept), AveragePool
 * (count_include_pad either way), MaxPool (the max over each window; the gradient goes to the
 * window's maximum). Where the engine's pooling ops exist they are used; otherwise each is built
 * from a convolution per channel (x as [N·C, 1, H, W]) with constant kernels: an average pool
 * is the conv with the 1/(kH·kW) kernel (rescaled per window by kH·kW/count when padding is
 * not counted); a max pool takes each window offset with a one-hot kernel and their pairwise
 * max m + relu(tap − m), started at a tap inside the input (pads as −3·10³⁸). ceil_mode needs
 * the engine's ops.
 */
import { traced, type Sym } from '../../../trace.js';
import { act, add, constant, mul, native, padConstant, reduceAxes, reshape, sub } from './engine.js';
import { symv, type Ctx, type RuleTable } from './types.js';

interface Window {
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number, number, number];
  ceil: boolean;
}

function windowOf(c: Ctx, x: Sym): Window {
  if (x.shape.length !== 4) c.fail(`only 2-D pooling ([N, C, H, W]) is supported, got [${x.shape.join(', ')}]`);
  const k = c.a.ints('kernel_shape');
  if (!k || k.length !== 2 || k.some((d) => d < 1)) c.invalid(`kernel_shape must hold two integers ≥ 1, got [${(k ?? []).join(', ')}]`);
  const s = c.a.ints('strides') ?? [1, 1];
  if (s.length !== 2 || s.some((d) => d < 1)) c.invalid(`strides must hold two integers ≥ 1, got [${s.join(', ')}]`);
  const autoPad = c.a.str('auto_pad', 'NOTSET');
  let p = autoPad === 'VALID' ? [0, 0, 0, 0] : (c.a.ints('pads') ?? [0, 0, 0, 0]);
  if (autoPad.startsWith('SAME')) {
    const tot = [0, 1].map((i) => Math.max(0, (Math.ceil(x.shape[2 + i]! / s[i]!) - 1) * s[i]! + k![i]! - x.shape[2 + i]!));
    const lo = tot.map((t) => (autoPad === 'SAME_UPPER' ? Math.floor(t / 2) : Math.ceil(t / 2)));
    p = [lo[0]!, lo[1]!, tot[0]! - lo[0]!, tot[1]! - lo[1]!];
  }
  if (p.length !== 4 || p.some((d) => d < 0)) c.invalid(`pads must hold four integers ≥ 0, got [${p.join(', ')}]`);
  const dil = c.a.ints('dilations');
  if (dil && dil.some((d) => d !== 1)) c.fail('dilation ≠ 1 is not supported');
  if (c.a.has('storage_order') && c.a.int('storage_order', 0) !== 0) c.fail('storage_order = 1 is not supported');
  return { kernel: [k![0]!, k![1]!], stride: [s[0]!, s[1]!], pads: p as Window['pads'], ceil: c.a.flag('ceil_mode', false) };
}

/** A convolution (the engine's conv2d) with these strides and pads [t, l, b, r]. */
const conv = (x: Sym, k: Sym, stride: readonly number[], pads: readonly number[]) => traced.conv2d(x.graph, x, k, new Uint32Array([stride[0]!, stride[1]!, ...pads, 1, 1, 1]));

/** x [N, C, H, W] as [N·C, 1, H, W] through `f`, back to [N, C, ·, ·]. */
function perChannel(x: Sym, f: (y: Sym) => Sym): Sym {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const y = f(reshape(x, [N * C, 1, H, W]));
  return reshape(y, [N, C, y.shape[2]!, y.shape[3]!]);
}

/** The pool family: MaxPool, AveragePool, GlobalAveragePool. */
export const POOL: RuleTable = {
  GlobalAveragePool: {
    attrs: [],
    build: (c) => {
      const x = c.sym(0);
      if (x.shape.length < 3) c.invalid(`the input must be [N, C, spatial…], got [${x.shape.join(', ')}]`);
      const f = native('globalAvgPool');
      if (f && x.shape.length === 4) return symv(f(x) as Sym);
      return symv(reduceAxes(x, 'mean', [...Array(x.shape.length).keys()].slice(2), true));
    },
  },
  AveragePool: {
    attrs: ['auto_pad', 'ceil_mode', 'count_include_pad', 'kernel_shape', 'pads', 'strides', 'dilations'],
    build: (c) => {
      const x = c.sym(0);
      const w = windowOf(c, x);
      const include = c.a.flag('count_include_pad', false);
      const f = native('avgPool2d');
      if (f) return symv(f(x, { kernel: w.kernel, stride: w.stride, pads: w.pads, countIncludePad: include, ceilMode: w.ceil }) as Sym);
      if (w.ceil) c.fail('ceil_mode = 1 needs the engine\'s avgPool2d, which this build lacks');
      const [kh, kw] = w.kernel;
      const [pt, pl, pb, pr] = w.pads;
      return symv(
        perChannel(x, (y0) => {
          const k = constant(c.g, { shape: [1, 1, kh, kw], data: new Float64Array(kh * kw).fill(1 / (kh * kw)) });
          // Symmetric pads go to the conv; asymmetric ones are explicit zeros.
          const sym = pt === pb && pl === pr;
          const y = sym ? y0 : padConstant(y0, [0, 0, pt, pl, 0, 0, pb, pr], 0);
          let out = conv(y, k, w.stride, sym ? [pt, pl, pt, pl] : [0, 0, 0, 0]);
          if (!include && (pt || pl || pb || pr)) {
            // Rescale each window by kH·kW / (its count of real input elements).
            const [H, W] = [y0.shape[2]!, y0.shape[3]!];
            const [OH, OW] = [out.shape[2]!, out.shape[3]!];
            const cnt = (o: number, s: number, p: number, k: number, n: number) => Math.min(o * s - p + k, n) - Math.max(o * s - p, 0);
            const scale = new Float64Array(OH * OW);
            for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) scale[i * OW + j] = (kh * kw) / (cnt(i, w.stride[0], pt, kh, H) * cnt(j, w.stride[1], pl, kw, W));
            out = mul(out, constant(c.g, { shape: [1, 1, OH, OW], data: scale }));
          }
          return out;
        }),
      );
    },
  },
  MaxPool: {
    attrs: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides'],
    build: (c) => {
      if (c.nOut > 1) c.fail('the Indices output of MaxPool is not supported');
      const x = c.sym(0);
      const w = windowOf(c, x);
      const f = native('maxPool2d');
      if (f) return symv(f(x, { kernel: w.kernel, stride: w.stride, pads: w.pads, dilation: [1, 1], ceilMode: w.ceil }) as Sym);
      const [kh, kw] = w.kernel;
      const [pt, pl, pb, pr] = w.pads;
      // The tap at offset (pt, pl) of every window is inside the input when pt + pb < kH (and
      // likewise for W): it starts the running max, so a padded tap (−3·10³⁸) never wins and
      // m + relu(tap − m) stays exact.
      if (w.ceil || pt + pb >= kh || pl + pr >= kw) c.fail(`a max pool with pads [${w.pads.join(', ')}] or ceil_mode needs the engine's maxPool2d, which this build lacks`);
      return symv(
        perChannel(x, (y0) => {
          const y = padConstant(y0, [0, 0, pt, pl, 0, 0, pb, pr], -3e38);
          const tap = (i: number, j: number) => {
            const onehot = new Float64Array(kh * kw);
            onehot[i * kw + j] = 1;
            return conv(y, constant(c.g, { shape: [1, 1, kh, kw], data: onehot }), w.stride, [0, 0, 0, 0]);
          };
          let m = tap(pt, pl);
          for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) if (i !== pt || j !== pl) m = add(m, act(sub(tap(i, j), m), 'relu'));
          return m;
        }),
      );
    },
  },
};
