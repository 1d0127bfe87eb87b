/**
 * The issue-9 primitives through the TS API, eager and traced (one name, both modes), against
 * plain-JS references (NumPy / ONNX / PyTorch semantics, including the edge cases), their JVPs
 * against central differences of the eager op, their HVPs (of a second-order probe) against
 * central differences of the gradient, and bad input → HesseError codes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { Graph, Sym } from '../ts/trace.js';
import { expectClose, randn, rng } from './helpers.js';

beforeAll(async () => {
  await h.init();
});

const strides = (s: readonly number[]) => s.map((_, i) => s.slice(i + 1).reduce((a, b) => a * b, 1));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
/** Row-major multi-indices of a shape. */
function* indicesOf(s: readonly number[]): Generator<number[]> {
  const n = numel(s);
  for (let e = 0; e < n; e++) yield s.map((d, i) => Math.floor(e / strides(s)[i]!) % d);
}
const at = (x: ArrayLike<number>, s: readonly number[], i: readonly number[]) => x[i.reduce((o, v, a) => o + v * strides(s)[a]!, 0)]!;
const bcast = (a: readonly number[], b: readonly number[]) => {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const [x, y] = [a[i - (r - a.length)] ?? 1, b[i - (r - b.length)] ?? 1];
    return x === 1 ? y : x;
  });
};
/** x read at a broadcast index of `out`. */
const atB = (x: ArrayLike<number>, s: readonly number[], i: readonly number[]) => at(x, s, s.map((d, a) => (d === 1 ? 0 : i[i.length - s.length + a]!)));

// ---- references ----
function takeRef(x: number[], s: number[], idx: number[], is: number[], axis: number) {
  const out = [...s.slice(0, axis), ...is, ...s.slice(axis + 1)];
  return { out, v: [...indicesOf(out)].map((i) => { const j = at(idx, is, i.slice(axis, axis + is.length)); return at(x, s, [...i.slice(0, axis), j < 0 ? j + s[axis]! : j, ...i.slice(axis + is.length)]); }) };
}
function sliceRef(x: number[], s: number[], starts: number[], ends: number[], axes: number[], steps: number[]) {
  const st = s.map(() => 0), sp = s.map(() => 1), out = [...s];
  axes.forEach((a0, j) => {
    const a = a0 < 0 ? a0 + s.length : a0, d = s[a]!, step = steps[j]!;
    let [b, e] = [starts[j]!, ends[j]!];
    if (b < 0) b += d;
    if (e < 0) e += d;
    if (step > 0) [b, e] = [Math.min(Math.max(b, 0), d), Math.min(Math.max(e, 0), d)];
    else [b, e] = [Math.min(Math.max(b, 0), d - 1), Math.min(Math.max(e, -1), d - 1)];
    st[a] = b; sp[a] = step; out[a] = Math.max(0, Math.ceil((e - b) / step));
  });
  return { out, v: [...indicesOf(out)].map((i) => at(x, s, i.map((k, a) => st[a]! + sp[a]! * k))) };
}
function padRef(x: number[], s: number[], pads: number[], value: number) {
  const r = s.length, out = s.map((d, a) => d + pads[a]! + pads[r + a]!);
  return { out, v: [...indicesOf(out)].map((i) => { const j = i.map((k, a) => k - pads[a]!); return j.every((k, a) => k >= 0 && k < s[a]!) ? at(x, s, j) : value; }) };
}
function reduceRef(x: number[], s: number[], axes: number[], keep: boolean, op: 'sum' | 'mean' | 'max') {
  const kept = s.map((d, a) => (axes.includes(a) ? 1 : d));
  const acc = new Array(numel(kept)).fill(op === 'max' ? -Infinity : 0);
  for (const i of indicesOf(s)) {
    const o = i.reduce((off, v, a) => off + (axes.includes(a) ? 0 : v) * strides(kept)[a]!, 0);
    acc[o] = op === 'max' ? Math.max(acc[o], at(x, s, i)) : acc[o] + at(x, s, i);
  }
  const cnt = axes.reduce((c, a) => c * s[a]!, 1);
  return { out: keep ? kept : s.filter((_, a) => !axes.includes(a)), v: op === 'mean' ? acc.map((v) => v / cnt) : acc };
}
function poolRef(x: number[], s: number[], k: number[], st: number[], p: number[], d: number[], ceil: boolean, kind: 'max' | 'avg', cip = true) {
  const [N, C, H, W] = s as [number, number, number, number];
  const len = (n: number, kk: number, ss: number, lo: number, hi: number, dd: number) => {
    const span = dd * (kk - 1) + 1;
    let o = (ceil ? Math.ceil : Math.floor)((n + lo + hi - span) / ss) + 1;
    if (ceil && (o - 1) * ss >= n + lo) o--;
    return o;
  };
  const OH = len(H, k[0]!, st[0]!, p[0]!, p[2]!, d[0]!), OW = len(W, k[1]!, st[1]!, p[1]!, p[3]!, d[1]!);
  const v: number[] = [];
  for (let nc = 0; nc < N * C; nc++)
    for (let i = 0; i < OH; i++)
      for (let j = 0; j < OW; j++) {
        const h0 = i * st[0]! - p[0]!, w0 = j * st[1]! - p[1]!;
        let m = -Infinity, sum = 0, cnt = 0;
        for (let a = 0; a < k[0]!; a++)
          for (let b = 0; b < k[1]!; b++) {
            const y = h0 + a * d[0]!, z = w0 + b * d[1]!;
            if (y >= 0 && y < H && z >= 0 && z < W) { const val = x[(nc * H + y) * W + z]!; m = Math.max(m, val); sum += val; cnt++; }
          }
        const padded = (Math.min(h0 + k[0]!, H + p[2]!) - h0) * (Math.min(w0 + k[1]!, W + p[3]!) - w0);
        v.push(kind === 'max' ? m : sum / (cip ? padded : cnt));
      }
  return { out: [N, C, OH, OW], v };
}

const f64 = (v: number[], s: readonly number[]) => h.tensor(v, s, 'float64');

/** An op checked eagerly and traced against its reference, with its JVP and an HVP of a
 * second-order probe against central differences. */
interface Case {
  name: string;
  shape: number[];
  op: <X extends Sym | h.Tensor>(x: X) => X;
  ref: (x: number[]) => { out: number[]; v: number[] };
  /** Smooth where differences apply (max-type ops need distinct values: random inputs have them). */
}

const rand = rng(9);
const cases: Case[] = [
  { name: 'gather axis 1, negative index', shape: [2, 4, 3], op: (x) => h.gather(x, h.indices([[1, -1], [0, 3], [2, 2]]), 1) as never, ref: (x) => takeRef(x, [2, 4, 3], [1, -1, 0, 3, 2, 2], [3, 2], 1) },
  { name: 'gather axis 0 (embedding rows), BigInt64Array', shape: [5, 3], op: (x) => h.gather(x, new BigInt64Array([4n, 0n, 4n]), 0) as never, ref: (x) => takeRef(x, [5, 3], [4, 0, 4], [3], 0) },
  { name: 'slice with steps, negative step, huge bounds', shape: [3, 5, 4], op: (x) => h.slice(x, [0, -1, 2 ** 62], [2 ** 62, -(2 ** 62), 0], [0, 1, 2], [2, -2, -1]) as never, ref: (x) => sliceRef(x, [3, 5, 4], [0, -1, 2 ** 62], [2 ** 62, -(2 ** 62), 0], [0, 1, 2], [2, -2, -1]) },
  { name: 'slice default axes, clamped', shape: [4, 3], op: (x) => h.slice(x, [1, -10], [100, 2]) as never, ref: (x) => sliceRef(x, [4, 3], [1, -10], [100, 2], [0, 1], [1, 1]) },
  { name: 'gather with a 0-d index drops the axis', shape: [4, 3], op: (x) => h.gather(x, h.indices(-2), 0) as never, ref: (x) => takeRef(x, [4, 3], [-2], [], 0) },
  { name: 'slice reversed to the start (INT64_MIN end)', shape: [5], op: (x) => h.slice(x, [-1], [-(2 ** 63)], [0], [-1]) as never, ref: (x) => sliceRef(x, [5], [-1], [-(2 ** 63)], [0], [-1]) },
  { name: 'slice to an empty result', shape: [3, 4], op: (x) => h.slice(x, [3], [1], [1]) as never, ref: (x) => sliceRef(x, [3, 4], [3], [1], [1], [1]) },
  { name: 'expand to a lower rank', shape: [3, 1], op: (x) => h.expand(x, [4]) as never, ref: (x) => ({ out: [3, 4], v: [...indicesOf([3, 4])].map((i) => atB(x, [3, 1], i)) }) },
  { name: 'logsumexp on axis 0 (traced: any axis)', shape: [3, 2], op: (x) => h.logsumexp(x, { axis: 0 }) as never, ref: (x) => ({ out: [2], v: [0, 1].map((j) => Math.log([0, 1, 2].reduce((s, i) => s + Math.exp(x[i * 2 + j]!), 0))) }) },
  { name: 'sum over no axes is the identity', shape: [2, 2], op: (x) => h.sum(x, { axis: [] }) as never, ref: (x) => ({ out: [2, 2], v: [...x] }) },
  { name: 'pad with value and a crop', shape: [2, 3], op: (x) => h.pad(x, [1, -1, 0, 2], 0.5) as never, ref: (x) => padRef(x, [2, 3], [1, -1, 0, 2], 0.5) },
  { name: 'expand both ways', shape: [3, 1], op: (x) => h.expand(x, [2, 1, 4]) as never, ref: (x) => ({ out: [2, 3, 4], v: [...indicesOf([2, 3, 4])].map((i) => atB(x, [3, 1], i)) }) },
  { name: 'sum over axes [0, 2]', shape: [2, 3, 4], op: (x) => h.sum(x, { axis: [0, -1] }) as never, ref: (x) => reduceRef(x, [2, 3, 4], [0, 2], false, 'sum') },
  { name: 'mean over axes [1, 2] keepdims', shape: [2, 3, 4], op: (x) => h.mean(x, { axis: [2, 1], keepdims: true }) as never, ref: (x) => reduceRef(x, [2, 3, 4], [1, 2], true, 'mean') },
  { name: 'max over axes [0, 1]', shape: [3, 2, 2], op: (x) => h.max(x, { axis: [0, 1] }) as never, ref: (x) => reduceRef(x, [3, 2, 2], [0, 1], false, 'max') },
  { name: 'softmax on axis 0', shape: [3, 4], op: (x) => h.softmax(x, 0) as never, ref: (x) => {
    const v = [...x];
    for (let j = 0; j < 4; j++) { const col = [0, 1, 2].map((i) => x[i * 4 + j]!); const z = col.reduce((a, b) => a + Math.exp(b), 0); col.forEach((c, i) => (v[i * 4 + j] = Math.exp(c) / z)); }
    return { out: [3, 4], v };
  } },
  { name: 'logSoftmax on axis 1 of 3-D', shape: [2, 3, 2], op: (x) => h.logSoftmax(x, 1) as never, ref: (x) => {
    const v = [...x];
    for (let a = 0; a < 2; a++) for (let c = 0; c < 2; c++) { const ix = [0, 1, 2].map((b) => (a * 3 + b) * 2 + c); const l = Math.log(ix.reduce((s, i) => s + Math.exp(x[i]!), 0)); ix.forEach((i) => (v[i] = x[i]! - l)); }
    return { out: [2, 3, 2], v };
  } },
  { name: 'maxPool2d pads, dilation, ceilMode', shape: [1, 2, 5, 6], op: (x) => h.maxPool2d(x, { kernel: [2, 3], stride: [2, 2], pads: [1, 0, 0, 1], dilation: [2, 1], ceilMode: true }) as never, ref: (x) => poolRef(x, [1, 2, 5, 6], [2, 3], [2, 2], [1, 0, 0, 1], [2, 1], true, 'max') },
  { name: 'avgPool2d count_include_pad, ceilMode', shape: [2, 1, 5, 5], op: (x) => h.avgPool2d(x, { kernel: 3, stride: 2, pads: 1, ceilMode: true }) as never, ref: (x) => poolRef(x, [2, 1, 5, 5], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], true, 'avg', true) },
  { name: 'avgPool2d without pad counting', shape: [1, 2, 4, 5], op: (x) => h.avgPool2d(x, { kernel: [2, 3], stride: [1, 2], pads: [1, 1, 0, 1], countIncludePad: false }) as never, ref: (x) => poolRef(x, [1, 2, 4, 5], [2, 3], [1, 2], [1, 1, 0, 1], [1, 1], false, 'avg', false) },
  { name: 'globalAvgPool', shape: [2, 3, 2, 2], op: (x) => h.globalAvgPool(x) as never, ref: (x) => reduceRef(x, [2, 3, 2, 2], [2, 3], true, 'mean') },
];

describe('primitives: eager and traced against references, JVP and HVP against differences', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const xv = randn(rand, numel(c.shape));
    const { out, v } = c.ref(xv);
    using x = f64(xv, c.shape);
    // eager
    using y = c.op(x);
    expect(y.shape).toEqual(out);
    expectClose(y.toArray(), v, 1e-12, 1e-12);
    // traced: the value and J·u against central differences of the eager op
    const u = randn(rand, xv.length);
    using ut = f64(u, c.shape);
    const [yt, jt] = h.jvp((p: Sym) => c.op(p), x, ut);
    using _y = yt;
    using _j = jt;
    expect(yt.shape).toEqual(out);
    expectClose(yt.toArray(), v, 1e-12, 1e-12);
    const eps = 1e-6;
    using xp = f64(xv.map((a, i) => a + eps * u[i]!), c.shape);
    using xm = f64(xv.map((a, i) => a - eps * u[i]!), c.shape);
    using yp = c.op(xp);
    using ym = c.op(xm);
    const fd = Array.from(yp.toArray(), (a, i) => (a - ym.toArray()[i]!) / (2 * eps));
    expectClose(jt.toArray(), fd, 1e-6, 1e-7);
    // H·u of the probe f(x) = Σ w·op(x)² (second order through the op) vs differences of ∇f
    const w = randn(rand, numel(out));
    using wt = f64(w, out);
    const probe = (p: Sym) => h.sum(h.mul(h.square(c.op(p)), wt));
    using hv = h.hvp(probe, x, ut);
    const g = h.grad(probe);
    using gp = g(xp);
    using gm = g(xm);
    const fdh = Array.from(gp.toArray(), (a, i) => (a - gm.toArray()[i]!) / (2 * eps));
    expectClose(hv.toArray(), fdh, 1e-6, 1e-7);
    // float32, eager and traced, against the same reference
    using x32 = h.tensor(xv, c.shape, 'float32');
    using y32 = c.op(x32);
    expect(y32.dtype).toBe('float32');
    expectClose(y32.toArray(), v, 1e-5, 1e-6);
    using u32 = h.tensor(u, c.shape, 'float32');
    const [yt32, jt32] = h.jvp((p: Sym) => c.op(p), x32, u32);
    using _y32 = yt32;
    using _j32 = jt32;
    expectClose(yt32.toArray(), v, 1e-5, 1e-6);
    expectClose(jt32.toArray(), jt.toArray(), 1e-4, 1e-5);
  });
});

describe('batched matmul (NumPy semantics)', () => {
  const bmmRef = (a: number[], sa: number[], b: number[], sb: number[]) => {
    const [m, k, n] = [sa.at(-2)!, sa.at(-1)!, sb.at(-1)!];
    const batch = bcast(sa.slice(0, -2), sb.slice(0, -2));
    const out = [...batch, m, n];
    return { out, v: [...indicesOf(out)].map((i) => { let s = 0; for (let p = 0; p < k; p++) s += atB(a, sa, [...i.slice(0, -2), i.at(-2)!, p]) * atB(b, sb, [...i.slice(0, -2), p, i.at(-1)!]); return s; }) };
  };
  it.each([
    [[2, 3, 4], [4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[1, 3, 2], [4, 2, 3]],
  ])('%j · %j, eager, traced, JVP, HVP', (sa, sb) => {
    const [av, bv] = [randn(rand, numel(sa)), randn(rand, numel(sb))];
    const { out, v } = bmmRef(av, sa, bv, sb);
    using a = f64(av, sa);
    using b = f64(bv, sb);
    using y = h.matmul(a, b);
    expect(y.shape).toEqual(out);
    expectClose(y.toArray(), v, 1e-12, 1e-12);
    // second order in (a, b) together: the product is bilinear, so H of Σ w·(AB)² is non-trivial
    const w = randn(rand, numel(out));
    using wt = f64(w, out);
    const probe = (p: readonly Sym[]) => h.sum(h.mul(h.square(h.matmul(p[0]!, p[1]!)), wt));
    const [ua, ub] = [randn(rand, av.length), randn(rand, bv.length)];
    using uat = f64(ua, sa);
    using ubt = f64(ub, sb);
    const hv = h.hvp(probe, [a, b], [uat, ubt]);
    const eps = 1e-6;
    const g = h.grad(probe);
    using ap = f64(av.map((x, i) => x + eps * ua[i]!), sa);
    using bp = f64(bv.map((x, i) => x + eps * ub[i]!), sb);
    using am = f64(av.map((x, i) => x - eps * ua[i]!), sa);
    using bm = f64(bv.map((x, i) => x - eps * ub[i]!), sb);
    const [gp, gm] = [g([ap, bp]), g([am, bm])];
    for (let j = 0; j < 2; j++) {
      const fd = Array.from(gp[j]!.toArray(), (x, i) => (x - gm[j]!.toArray()[i]!) / (2 * eps));
      expectClose(hv[j]!.toArray(), fd, 1e-6, 1e-7);
    }
    [...hv, ...gp, ...gm].forEach((t) => t.dispose());
  });
  it('1-D operands drop their axis; mismatches are SHAPE_MISMATCH', () => {
    using a = f64([1, 2, 3], [3]);
    using b = f64([1, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], [2, 3, 2]);
    using y = h.matmul(a, b);
    expect(y.shape).toEqual([2, 2]);
    // a·b[0] = [1 + 0 + 3, 0 + 2 + 3], a·b[1] = [2 + 4 + 9, 2 + 6 + 9]
    expect(Array.from(y.toArray())).toEqual([4, 5, 15, 17]);
    using c = f64([1, 2, 3, 4], [2, 2]);
    using d = f64(randn(rand, 12), [2, 2, 3]);
    using cd = h.matmul(c, d);
    expect(cd.shape).toEqual([2, 2, 3]);
    using e = f64(randn(rand, 12), [3, 2, 2]);
    using f = f64(randn(rand, 12), [2, 2, 3]);
    expect(() => h.matmul(e, f)).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('[3, 2, 2]') }));
  });
});

describe('integer indices and index inputs', () => {
  it('an index input gathers per run (embedding of token ids); out of range is INVALID_ARGUMENT at run time', () => {
    const g = new Graph('float64');
    try {
      const emb = g.param([4, 2]);
      const ids = g.indexInput([2, 3]);
      const y = h.gather(emb, ids, 0) as Sym;
      expect(y.shape).toEqual([2, 3, 2]);
      const table = [0, 1, 10, 11, 20, 21, 30, 31];
      g.raw.setParams(new Float64Array(table));
      const runOnce = () => Array.from(g.raw.value(y.id, false).value as Float64Array);
      g.setIndexInput(ids, new Int32Array([0, 3, -1, 2, 2, 1]));
      expect(runOnce()).toEqual([0, 1, 30, 31, 30, 31, 20, 21, 20, 21, 10, 11]);
      g.setIndexInput(ids, new BigInt64Array([1n, 1n, 1n, 0n, 0n, 0n]));
      expect(runOnce()).toEqual([10, 11, 10, 11, 10, 11, 0, 1, 0, 1, 0, 1]);
      g.setIndexInput(ids, new BigInt64Array([1n, 2n ** 40n, 0n, 0n, 0n, 0n]));
      expect(runOnce).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/index 1099511627776 at position 1 .*size 4/) }));
      expect(() => g.setIndexInput(ids, new Int32Array(5))).toThrow(expect.objectContaining({ code: 'LENGTH_MISMATCH' }));
      expect(() => g.setIndexInput(ids, new Float64Array(6) as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    } finally {
      g.dispose();
    }
  });
  it('the gradient of an embedding scatter-adds into the rows used', () => {
    using table = f64([1, 2, 3, 4, 5, 6], [3, 2]);
    const f = (p: Sym) => h.sum(h.square(h.gather(p, [2, 0, 2], 0)));
    using g = h.grad(f)(table);
    expect(Array.from(g.toArray())).toEqual([2, 4, 0, 0, 20, 24]);
  });
  it('indices() keeps int64 exactly and refuses non-integers', () => {
    expect(h.indices([[1, 2], [3, 4]]).shape).toEqual([2, 2]);
    expect(h.indices([2n ** 62n]).data[0]).toBe(2n ** 62n);
    expect(() => h.indices([1.5])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => h.indices([2 ** 60])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => h.indices([1, 2, 3], [2, 2])).toThrow(expect.objectContaining({ code: 'LENGTH_MISMATCH' }));
  });
});

describe('bad input is a HesseError naming the op', () => {
  let x: h.Tensor;
  beforeAll(() => {
    x = f64(randn(rand, 12), [3, 4]);
  });
  it.each([
    ['gather out of range', () => h.gather(x, [3], 0), 'INVALID_ARGUMENT', /gather: index 3 .*size 3/],
    ['gather below −d', () => h.gather(x, [-5], 1), 'INVALID_ARGUMENT', /gather: index -5/],
    ['gather bad axis', () => h.gather(x, [0], 2), 'INVALID_ARGUMENT', /gather: axis/],
    ['gather at float indices', () => h.gather(x, x as never, 0), 'INVALID_ARGUMENT', /gather: indices must be integers/],
    ['slice step 0', () => h.slice(x, [0], [1], [0], [0]), 'INVALID_ARGUMENT', /slice: steps/],
    ['slice axis twice', () => h.slice(x, [0, 0], [1, 1], [0, -2]), 'INVALID_ARGUMENT', /slice: axis .* twice/],
    ['slice fraction', () => h.slice(x, [0.5], [1]), 'INVALID_ARGUMENT', /slice: starts\[0\]/],
    ['pad wrong length', () => h.pad(x, [1, 1]), 'INVALID_ARGUMENT', /pad: pads needs 2·rank = 4/],
    ['pad crop below zero', () => h.pad(x, [-2, 0, -2, 0]), 'SHAPE_MISMATCH', /pad: .*below zero/],
    ['expand incompatible', () => h.expand(x, [2, 4]), 'SHAPE_MISMATCH', /expand: .*\[3, 4\].*\[2, 4\]/],
    ['where incompatible', () => h.where({ data: [true, false], shape: [2] }, x, 0), 'SHAPE_MISMATCH', /where/],
    ['sum axis repeated', () => h.sum(x, { axis: [1, -1] }), 'INVALID_ARGUMENT', /sum: axis 1 appears twice/],
    ['max axis out of range', () => h.max(x, { axis: [0, 2] }), 'INVALID_ARGUMENT', /max: axis/],
    ['maxPool2d on 2-D', () => h.maxPool2d(x, { kernel: 2 }), 'SHAPE_MISMATCH', /max_pool2d: expected x \[N, C, H, W\], got \[3, 4\]/],
    ['maxPool2d kernel 0', () => h.maxPool2d(x, { kernel: 0 }), 'INVALID_ARGUMENT', /maxPool2d: kernel/],
    ['avgPool2d dilation', () => h.avgPool2d(x, { kernel: 2, dilation: 2 }), 'UNSUPPORTED_OP', /avgPool2d: dilation/],
    ['softmax axis', () => h.softmax(x, 2), 'INVALID_ARGUMENT', /softmax: axis/],
  ] as const)('%s', (_, f, code, msg) => {
    expect(f).toThrow(expect.objectContaining({ code, message: expect.stringMatching(msg) }));
  });
  it('a window larger than the padded input is SHAPE_MISMATCH', () => {
    using y = f64(randn(rand, 8), [1, 1, 2, 4]);
    expect(() => h.maxPool2d(y, { kernel: 3 })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH', message: expect.stringMatching(/max_pool2d: the height window/) }));
  });
});

describe('where with a constant mask', () => {
  it('selects with broadcasting, eager and traced; the gradient splits by the mask', () => {
    using m = f64([1, 0, 1], [3]);
    using a = f64([1, 2, 3, 4, 5, 6], [2, 3]);
    using y = h.where(m, a, -1);
    expect(Array.from(y.toArray())).toEqual([1, -1, 3, 4, -1, 6]);
    using b = f64([10, 20], [2, 1]);
    const f = (p: Sym) => h.sum(h.square(h.where(m, p, b)));
    using g = h.grad(f)(a);
    expect(Array.from(g.toArray())).toEqual([2, 0, 6, 8, 0, 12]);
  });
});
