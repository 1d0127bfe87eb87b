/**
 * Grouped / dilated / asymmetrically padded conv2d and the activation towers (hardSigmoid,
 * hardSwish, silu, clip, hardtanh, relu6, and the older gelu, elu, leakyRelu, softplus) through
 * the wasm build: eager against a naive JS convolution under both kernel families, traced
 * derivatives against central differences, activations against their formulas (with PyTorch's
 * derivative at each kink), and bad options.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();
afterAll(() => h.setKernels('simd'));

interface Attrs {
  stride: [number, number];
  pads: [number, number, number, number];
  dilation: [number, number];
  groups: number;
}

/**
 * PyTorch's conv2d written out: y[n, o, oy, ox] = Σ_{c < C/G, ky, kx} x[n, g·C/G + c, oy·sh + ky·dh − top,
 * ox·sw + kx·dw − left] · w[o, c, ky, kx], g = ⌊o / (O/G)⌋, zero outside the image.
 */
function convRef(x: ArrayLike<number>, xs: number[], w: ArrayLike<number>, ws: number[], a: Attrs): { y: Float64Array; shape: number[] } {
  const [n, c, hh, ww] = xs as [number, number, number, number];
  const [o, cg, kh, kw] = ws as [number, number, number, number];
  const [top, left, bottom, right] = a.pads;
  const oh = Math.floor((hh + top + bottom - a.dilation[0] * (kh - 1) - 1) / a.stride[0]) + 1;
  const ow = Math.floor((ww + left + right - a.dilation[1] * (kw - 1) - 1) / a.stride[1]) + 1;
  const og = o / a.groups;
  const y = new Float64Array(n * o * oh * ow);
  for (let b = 0; b < n; b++)
    for (let q = 0; q < o; q++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++) {
          let s = 0;
          for (let ci = 0; ci < cg; ci++) {
            const ic = Math.floor(q / og) * cg + ci;
            for (let ky = 0; ky < kh; ky++)
              for (let kx = 0; kx < kw; kx++) {
                const iy = oy * a.stride[0] + ky * a.dilation[0] - top;
                const ix = ox * a.stride[1] + kx * a.dilation[1] - left;
                if (iy >= 0 && iy < hh && ix >= 0 && ix < ww) s += x[((b * c + ic) * hh + iy) * ww + ix]! * w[((q * cg + ci) * kh + ky) * kw + kx]!;
              }
          }
          y[((b * o + q) * oh + oy) * ow + ox] = s;
        }
  return { y, shape: [n, o, oh, ow] };
}

/** [x shape, w shape, attrs]: depthwise (MobileNet), grouped + dilated + asymmetric, strided, SAME_UPPER-like pads. */
const CASES: [number[], number[], Attrs][] = [
  [[2, 4, 7, 6], [4, 1, 3, 3], { stride: [1, 1], pads: [1, 1, 1, 1], dilation: [1, 1], groups: 4 }],
  [[1, 6, 9, 8], [4, 3, 3, 2], { stride: [1, 2], pads: [2, 0, 1, 3], dilation: [2, 3], groups: 2 }],
  [[2, 3, 8, 8], [6, 1, 3, 3], { stride: [2, 2], pads: [0, 0, 1, 1], dilation: [1, 1], groups: 3 }],
  [[1, 4, 17, 5], [8, 2, 2, 3], { stride: [3, 1], pads: [0, 2, 3, 0], dilation: [2, 1], groups: 2 }],
  [[1, 2, 5, 5], [3, 2, 3, 3], { stride: [1, 1], pads: [2, 1, 0, 1], dilation: [2, 2], groups: 1 }],
];

describe.each(['simd', 'scalar'] as const)('conv2d, %s kernels', (kind) => {
  it.each(['float32', 'float64'] as const)('grouped, dilated, asymmetric pads match a naive JS convolution, %s', (dt) => {
    h.setKernels(kind);
    const rand = rng(21);
    const tol = dt === 'float32' ? 3e-6 : 1e-13;
    for (const [xs, ws, a] of CASES) {
      const xv = randn(rand, xs.reduce((p, d) => p * d, 1));
      const wv = randn(rand, ws.reduce((p, d) => p * d, 1));
      using x = h.tensor(xv, xs, dt);
      using w = h.tensor(wv, ws, dt);
      using y = h.conv2d(x, w, { stride: a.stride, pads: a.pads, dilation: a.dilation, groups: a.groups });
      const want = convRef(xv, xs, wv, ws, a);
      expect(y.shape).toEqual(want.shape);
      expectClose(y.toArray(), want.y, tol, tol * 10);
      // The traced form (a program node) gives the same numbers as the eager kernel.
      const traced = h.jvp((p: { x: h.Sym }) => h.conv2d(p.x, w, { stride: a.stride, pads: a.pads, dilation: a.dilation, groups: a.groups }), { x }, { x });
      expectClose((traced as [h.Tensor, h.Tensor])[0].toArray(), want.y, tol, tol * 10);
      // Linear in x: J·x = conv(x).
      expectClose((traced as [h.Tensor, h.Tensor])[1].toArray(), want.y, tol, tol * 10);
    }
    h.setKernels('simd');
  });
});

describe('conv2d options', () => {
  const rand = rng(3);
  const xv = randn(rand, 2 * 4 * 6 * 5);
  const wv = randn(rand, 4 * 2 * 3 * 2);
  const x = h.tensor(xv, [2, 4, 6, 5], 'float64');
  const w = h.tensor(wv, [4, 2, 3, 2], 'float64');

  it("padding (PyTorch: p, [ph, pw], 'valid', 'same') and pads ([t, l, b, r], [ph, pw], p) mean what they say", () => {
    const base: Attrs = { stride: [1, 1], pads: [0, 0, 0, 0], dilation: [1, 1], groups: 2 };
    const ref = (pads: Attrs['pads'], extra: Partial<Attrs> = {}) => convRef(xv, [2, 4, 6, 5], wv, [4, 2, 3, 2], { ...base, ...extra, pads });
    const check = (got: h.Tensor, want: { y: Float64Array; shape: number[] }) => {
      expect(got.shape).toEqual(want.shape);
      expectClose(got.toArray(), want.y, 1e-13, 1e-13);
    };
    check(h.conv2d(x, w, { groups: 2, padding: 1 }), ref([1, 1, 1, 1]));
    check(h.conv2d(x, w, { groups: 2, padding: [2, 0] }), ref([2, 0, 2, 0]));
    check(h.conv2d(x, w, { groups: 2, padding: 'valid' }), ref([0, 0, 0, 0]));
    check(h.conv2d(x, w, { groups: 2, pads: [1, 0, 2, 3] }), ref([1, 0, 2, 3]));
    check(h.conv2d(x, w, { groups: 2, pads: [1, 2] }), ref([1, 2, 1, 2]));
    check(h.conv2d(x, w, { groups: 2, pads: 1 }), ref([1, 1, 1, 1]));
    // 'same' as PyTorch: total d·(k − 1) per axis, ⌊total/2⌋ first. Kernel 3×2 with dilation
    // [1, 3]: totals 2 and 3 → pads [1, 1, 1, 2]; the output keeps the input's 6×5.
    const same = h.conv2d(x, w, { groups: 2, padding: 'same', dilation: [1, 3] });
    expect(same.shape).toEqual([2, 4, 6, 5]);
    check(same, ref([1, 1, 1, 2], { dilation: [1, 3] }));
  });

  it('bad options are INVALID_ARGUMENT naming the option; shapes that do not fit are SHAPE_MISMATCH naming them', () => {
    const bad: [string, () => unknown, string, string][] = [
      ['groups 0', () => h.conv2d(x, w, { groups: 0 }), 'INVALID_ARGUMENT', 'conv2d: groups must be an integer ≥ 1, got 0'],
      ['groups 1.5', () => h.conv2d(x, w, { groups: 1.5 }), 'INVALID_ARGUMENT', 'conv2d: groups'],
      ['dilation 0', () => h.conv2d(x, w, { groups: 2, dilation: [0, 1] }), 'INVALID_ARGUMENT', 'conv2d: dilation[0] must be an integer in [1, 2³² − 1], got 0'],
      ['pads of 3', () => h.conv2d(x, w, { groups: 2, pads: [1, 1, 1] as never }), 'INVALID_ARGUMENT', 'conv2d: pads must be a number or an [h, w] pair or [top, left, bottom, right], got 3 values'],
      ['negative pad', () => h.conv2d(x, w, { groups: 2, pads: [0, 0, -1, 0] }), 'INVALID_ARGUMENT', 'conv2d: pads[2] must be an integer in [0, 2³² − 1], got -1'],
      ['padding and pads', () => h.conv2d(x, w, { groups: 2, padding: 1, pads: 1 }), 'INVALID_ARGUMENT', 'not both'],
      ['padding string', () => h.conv2d(x, w, { groups: 2, padding: 'full' as never }), 'INVALID_ARGUMENT', "conv2d: padding must be a count, an [h, w] pair, 'valid' or 'same', got 'full'"],
      ['same with stride', () => h.conv2d(x, w, { groups: 2, padding: 'same', stride: 2 }), 'INVALID_ARGUMENT', "padding 'same' needs stride 1"],
      ['unknown option', () => h.conv2d(x, w, { group: 2 } as never), 'INVALID_ARGUMENT', "conv2d: unknown option 'group'"],
      ['groups not dividing C', () => h.conv2d(x, w, { groups: 3 }), 'SHAPE_MISMATCH', 'groups 3 must divide the input channels and the output channels, got input [2, 4, 6, 5] and weight [4, 2, 3, 2]'],
      ['weight channels vs groups', () => h.conv2d(x, w, { groups: 4 }), 'SHAPE_MISMATCH', 'has 1 channels per group (channels / groups = 4 / 4) but weight [4, 2, 3, 2] expects 2'],
      ['dilated kernel too big', () => h.conv2d(x, w, { groups: 2, dilation: [3, 1] }), 'SHAPE_MISMATCH', 'dilated to 7×2'],
    ];
    for (const [name, fn, code, msg] of bad) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(h.HesseError);
      expect((err as h.HesseError).code, name).toBe(code);
      expect((err as h.HesseError).message, name).toContain(msg);
    }
  });
});

/** Flattened values of a parameter tree of tensors, in key order. */
const flat = (tree: Record<string, h.Tensor>) => Float64Array.from(Object.keys(tree).flatMap((k) => Array.from(tree[k]!.toArray())));

describe('derivatives through conv2d (grouped, dilated, asymmetric, strided)', () => {
  // f(x, w) = Σ tanh(conv2d(x, w))² + Σ silu(conv2d(x, w)): x and w are both differentiated, so
  // the HVP includes the bilinear cross term ∂²/∂x∂w.
  const a = { stride: [2, 1] as [number, number], pads: [1, 0, 2, 1] as [number, number, number, number], dilation: [2, 1] as [number, number], groups: 2 };
  const f = (p: { x: h.Sym; w: h.Sym }) => {
    const y = h.conv2d(p.x, p.w, a);
    return h.add(h.sum(h.square(h.tanh(y))), h.sum(h.silu(y)));
  };
  const rand = rng(8);
  const t = (v: number[], s: number[]) => h.tensor(v, s, 'float64');
  const params = { x: t(randn(rand, 2 * 4 * 6 * 5), [2, 4, 6, 5]), w: t(randn(rand, 6 * 2 * 2 * 3).map((v) => v * 0.5), [6, 2, 2, 3]) };
  const v = { x: t(randn(rand, 2 * 4 * 6 * 5), [2, 4, 6, 5]), w: t(randn(rand, 6 * 2 * 2 * 3), [6, 2, 2, 3]) };
  const shifted = (s: number) => ({
    x: t(Array.from(params.x.toArray(), (p, i) => p + s * v.x.toArray()[i]!), [2, 4, 6, 5]),
    w: t(Array.from(params.w.toArray(), (p, i) => p + s * v.w.toArray()[i]!), [6, 2, 2, 3]),
  });

  it('the gradient matches central differences of the value along v', () => {
    const g = flat(h.grad(f)(params) as unknown as Record<string, h.Tensor>);
    const dir = flat(v);
    const eps = 1e-6;
    const val = (s: number) => h.valueAndGrad(f)(shifted(s))[0];
    const fd = (val(eps) - val(-eps)) / (2 * eps);
    const gv = g.reduce((acc, gi, i) => acc + gi * dir[i]!, 0);
    expect(Math.abs(fd - gv)).toBeLessThan(1e-7 * Math.max(1, Math.abs(gv)));
  });

  it('the HVP matches central differences of the gradient', () => {
    const hv = flat(h.hvp(f, params, v) as unknown as Record<string, h.Tensor>);
    const eps = 1e-5;
    const gAt = (s: number) => flat(h.grad(f)(shifted(s)) as unknown as Record<string, h.Tensor>);
    const [gp, gm] = [gAt(eps), gAt(-eps)];
    const fd = gp.map((p, i) => (p - gm[i]!) / (2 * eps));
    const scale = Math.max(...Array.from(fd, Math.abs));
    expectClose(hv, fd, 1e-6, 1e-7 * scale);
    // And H is symmetric: ⟨u, H·v⟩ = ⟨v, H·u⟩ for a second direction u.
    const u = { x: t(randn(rand, 2 * 4 * 6 * 5), [2, 4, 6, 5]), w: t(randn(rand, 6 * 2 * 2 * 3), [6, 2, 2, 3]) };
    const hu = flat(h.hvp(f, params, u) as unknown as Record<string, h.Tensor>);
    const dot = (p: Float64Array, q: Float64Array) => p.reduce((acc, pi, i) => acc + pi * q[i]!, 0);
    const [uHv, vHu] = [dot(flat(u), hv), dot(flat(v), hu)];
    expect(Math.abs(uHv - vHu)).toBeLessThan(1e-10 * Math.max(1, Math.abs(uHv)));
  });
});

describe('activations', () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const relu6 = (x: number) => Math.min(Math.max(x, 0), 6);
  const Phi = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
  const phi = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
  /**
   * erf by its Maclaurin series below 2 (no cancellation there) and above by erfc's continued
   * fraction erfc z = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …)))), summed from the tail.
   */
  function erf(x: number): number {
    const z = Math.abs(x);
    if (z < 2) {
      let term = x;
      let s = x;
      for (let n = 1; n < 60; n++) {
        term *= (-x * x) / n;
        s += term / (2 * n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * s;
    }
    let cf = z;
    for (let k = 200; k >= 1; k--) cf = z + k / 2 / cf;
    const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / cf;
    return Math.sign(x) * (1 - erfc);
  }
  const c = Math.sqrt(2 / Math.PI);
  const gt = (x: number) => Math.tanh(c * (x + 0.044715 * x ** 3));
  /**
   * [name, op, f, f′, f″] written from each function's definition (PyTorch's docs), f′ and f″ by
   * hand, with PyTorch's choices at the kinks (its backward and double backward there).
   */
  const ACTS: [string, <X extends h.Sym | h.Tensor>(x: X) => h.Out<X>, (x: number) => number, (x: number) => number, (x: number) => number][] = [
    ['hardSigmoid', (x) => h.hardSigmoid(x), (x) => Math.min(Math.max(x / 6 + 0.5, 0), 1), (x) => (x > -3 && x < 3 ? 1 / 6 : 0), () => 0],
    ['hardSigmoid α=0.2 β=0.4', (x) => h.hardSigmoid(x, { alpha: 0.2, beta: 0.4 }), (x) => Math.min(Math.max(0.2 * x + 0.4, 0), 1), (x) => (0.2 * x + 0.4 > 0 && 0.2 * x + 0.4 < 1 ? 0.2 : 0), () => 0],
    ['hardSwish', (x) => h.hardSwish(x), (x) => (x * relu6(x + 3)) / 6, (x) => (x < -3 ? 0 : x <= 3 ? x / 3 + 0.5 : 1), (x) => (x > -3 && x < 3 ? 1 / 3 : 0)],
    ['silu', (x) => h.silu(x), (x) => x * sig(x), (x) => sig(x) * (1 + x * (1 - sig(x))), (x) => sig(x) * (1 - sig(x)) * (2 + x * (1 - 2 * sig(x)))],
    ['clip(-1, 2)', (x) => h.clip(x, -1, 2), (x) => Math.min(Math.max(x, -1), 2), (x) => (x >= -1 && x <= 2 ? 1 : 0), () => 0],
    ['clip(lo only)', (x) => h.clip(x, 0.5), (x) => Math.max(x, 0.5), (x) => (x >= 0.5 ? 1 : 0), () => 0],
    ['clip(hi only)', (x) => h.clip(x, undefined, 0.5), (x) => Math.min(x, 0.5), (x) => (x <= 0.5 ? 1 : 0), () => 0],
    ['relu6', (x) => h.relu6(x), relu6, (x) => (x > 0 && x < 6 ? 1 : 0), () => 0],
    ['hardtanh', (x) => h.hardtanh(x), (x) => Math.min(Math.max(x, -1), 1), (x) => (x > -1 && x < 1 ? 1 : 0), () => 0],
    ['gelu', (x) => h.gelu(x), (x) => x * Phi(x), (x) => Phi(x) + x * phi(x), (x) => phi(x) * (2 - x * x)],
    ['gelu tanh', (x) => h.gelu(x, { approximate: 'tanh' }), (x) => 0.5 * x * (1 + gt(x)), (x) => 0.5 * (1 + gt(x)) + 0.5 * x * (1 - gt(x) ** 2) * c * (1 + 3 * 0.044715 * x * x), (x) => {
      const [t, du, ddu] = [gt(x), c * (1 + 3 * 0.044715 * x * x), c * 6 * 0.044715 * x];
      const s2 = 1 - t * t;
      return s2 * du + 0.5 * x * s2 * (ddu - 2 * t * du * du);
    }],
    ['elu', (x) => h.elu(x, 1.3), (x) => (x > 0 ? x : 1.3 * (Math.exp(x) - 1)), (x) => (x > 0 ? 1 : 1.3 * Math.exp(x)), (x) => (x > 0 ? 0 : 1.3 * Math.exp(x))],
    ['leakyRelu', (x) => h.leakyRelu(x, 0.1), (x) => (x > 0 ? x : 0.1 * x), (x) => (x > 0 ? 1 : 0.1), () => 0],
    ['softplus', (x) => h.softplus(x), (x) => (x > 20 ? x : Math.log1p(Math.exp(x))), (x) => (x > 20 ? 1 : sig(x)), (x) => (x > 20 ? 0 : sig(x) * (1 - sig(x)))],
  ];
  // The kinks of every function above (−3, 3, −1, 0, 0.5, 2, 6, 20, −2: hardSigmoid α=0.2 β=0.4's
  // ends are −2 and 3) and points between them.
  const xs = [-7, -3, -2.5, -2, -1, -0.6, 0, 0.3, 0.5, 1, 1.7, 2, 2.9, 3, 3.4, 6, 6.2, 19.5, 20, 20.5];

  it.each(ACTS.map((a) => [a[0], a] as const))('%s: f, f′ and f″ (eager and traced) match the formulas, kinks as PyTorch', (_name, [name, op, f, d1, d2]) => {
    for (const dt of ['float32', 'float64'] as const) {
      const tol = dt === 'float32' ? 2e-6 : 1e-12;
      using x = h.tensor(xs, [xs.length], dt);
      using y = op(x);
      expectClose(y.toArray(), xs.map(f), tol, tol);
      // ∇ Σ f(x) = f′(x) elementwise; H·1 of Σ f(x) = f″(x) elementwise (H is diagonal).
      const total = (p: { x: h.Sym }) => h.sum(op(p.x));
      const g = h.grad(total)({ x }) as unknown as { x: h.Tensor };
      expect(g.x.shape, name).toEqual([xs.length]);
      expectClose(g.x.toArray(), xs.map(d1), tol, tol);
      using ones = h.tensor(xs.map(() => 1), [xs.length], dt);
      const hv = h.hvp(total, { x }, { x: ones }) as unknown as { x: h.Tensor };
      expectClose(hv.x.toArray(), xs.map(d2), tol, tol);
    }
  });

  it('f′ and f″ of the smooth ones match central differences of the API itself (f64)', () => {
    const smooth = ACTS.filter(([n]) => ['silu', 'gelu', 'gelu tanh'].includes(n));
    const pts = [-2.2, -0.7, 0.4, 1.9];
    for (const [name, op] of smooth) {
      const at = (v: number[]) => Array.from(op(h.tensor(v, [v.length], 'float64')).toArray());
      const grad = (v: number[]) => Array.from((h.grad((p: { x: h.Sym }) => h.sum(op(p.x)))({ x: h.tensor(v, [v.length], 'float64') }) as unknown as { x: h.Tensor }).x.toArray());
      const e = 1e-5;
      const fd1 = at(pts.map((p) => p + e)).map((v, i) => (v - at(pts.map((p) => p - e))[i]!) / (2 * e));
      const fd2 = grad(pts.map((p) => p + e)).map((v, i) => (v - grad(pts.map((p) => p - e))[i]!) / (2 * e));
      expectClose(grad(pts), fd1, 1e-8, 1e-9);
      using x = h.tensor(pts, [pts.length], 'float64');
      using ones = h.tensor(pts.map(() => 1), [pts.length], 'float64');
      const hv = (h.hvp((p: { x: h.Sym }) => h.sum(op(p.x)), { x }, { x: ones }) as unknown as { x: h.Tensor }).x.toArray();
      expectClose(hv, fd2, 1e-7, 1e-8);
      expect(name).toBeTruthy();
    }
  });

  it('clip with lo > hi is hi everywhere with derivative 0 (torch.clamp); NaN stays NaN', () => {
    using x = h.tensor([-1, 0.5, 4], [3], 'float64');
    expect(Array.from(h.clip(x, 3, 1).toArray())).toEqual([1, 1, 1]);
    const g = h.grad((p: { x: h.Sym }) => h.sum(h.clip(p.x, 3, 1)))({ x }) as unknown as { x: h.Tensor };
    expect(Array.from(g.x.toArray())).toEqual([0, 0, 0]);
    using n = h.tensor([NaN], [1], 'float64');
    for (const op of [h.hardSwish, h.silu, h.relu6, (t: h.Tensor) => h.clip(t, 0, 1), (t: h.Tensor) => h.hardSigmoid(t)]) expect(Number.isNaN(op(n).toArray()[0]!)).toBe(true);
  });

  it('bad parameters are INVALID_ARGUMENT naming them', () => {
    using x = h.tensor([1, 2], [2], 'float64');
    const bad: [() => unknown, string][] = [
      [() => h.hardSigmoid(x, { alpha: NaN }), 'hardSigmoid: alpha must be a finite number, got NaN'],
      [() => h.hardSigmoid(x, { beta: Infinity }), 'hardSigmoid: beta must be a finite number, got Infinity'],
      [() => h.hardSigmoid(x, { slope: 1 } as never), "hardSigmoid: unknown option 'slope'"],
      [() => h.clip(x, NaN), 'clip: lo must be a finite number, got NaN'],
      [() => h.clip(x, 0, '1' as never), "clip: hi must be a finite number, got '1'"],
      [() => h.hardtanh(x, -Infinity, 1), 'hardtanh: lo must be a finite number, got -Infinity'],
    ];
    for (const [fn, msg] of bad) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, msg).toBeInstanceOf(h.HesseError);
      expect((err as h.HesseError).code).toBe('INVALID_ARGUMENT');
      expect((err as h.HesseError).message).toContain(msg);
    }
    // ±∞ bounds are no bounds.
    expect(Array.from(h.clip(x, -Infinity, Infinity).toArray())).toEqual([1, 2]);
  });
});

describe('nn.conv2d with dilation and groups', () => {
  it('the layer is the op plus a bias: loss and gradient of an objective against the naive conv', () => {
    const a: Attrs = { stride: [1, 2], pads: [1, 2, 1, 2], dilation: [2, 1], groups: 3 };
    const model = h.nn.sequential([h.nn.conv2d(6, 3, [2, 3], { stride: [1, 2], padding: [1, 2], dilation: [2, 1], groups: 3 })]);
    expect(model.blocks.map((b) => [b.name, b.shape])).toEqual([['0.weight', [3, 2, 2, 3]], ['0.bias', [3]]]);
    expect(model.layers[0]).toEqual({ type: 'conv2d', in: 6, out: 3, kernel: [2, 3], stride: [1, 2], padding: [1, 2], dilation: [2, 1], groups: 3, bias: true });
    // PyTorch's init bound 1/√fan_in with fan_in = (in/groups)·kh·kw = 12.
    const theta = model.init({ dtype: 'float64', seed: 3 });
    expect(Math.max(...Array.from(theta, Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(12));
    const rand = rng(11);
    const xs = [2, 6, 5, 7];
    const xv = randn(rand, 2 * 6 * 5 * 7);
    const ref = (th: Float64Array) => {
      const { y, shape } = convRef(xv, xs, th.subarray(0, 36), [3, 2, 2, 3], a);
      const plane = shape[2]! * shape[3]!;
      return { y: y.map((v, i) => v + th[36 + (Math.floor(i / plane) % 3)]!), shape };
    };
    const { shape } = ref(theta);
    const target = randn(rand, shape.reduce((p, d) => p * d, 1));
    const obj = h.objective(model, 'mse', { x: { data: Float64Array.from(xv), shape: xs }, y: { data: Float64Array.from(target), shape } });
    const mse = (th: Float64Array) => ref(th).y.reduce((s, v, i) => s + (v - target[i]!) ** 2, 0) / target.length;
    expect(Math.abs(obj.loss(theta) - mse(theta))).toBeLessThan(1e-13);
    const g = obj.grad(theta);
    const fd = Array.from(theta, (_, i) => {
      const e = 1e-6;
      const [p, m] = [Float64Array.from(theta), Float64Array.from(theta)];
      p[i]! += e;
      m[i]! -= e;
      return (mse(p) - mse(m)) / (2 * e);
    });
    expectClose(g, fd, 1e-6, 1e-9);
  });

  it('bad groups and dilation are INVALID_ARGUMENT naming the layer field', () => {
    const bad: [() => unknown, string][] = [
      [() => h.nn.conv2d(6, 4, 3, { groups: 4 }), 'nn.conv2d: groups 4 must divide in (6) and out (4)'],
      [() => h.nn.conv2d(6, 4, 3, { groups: 0 }), 'nn.conv2d: groups must be an integer ≥ 1, got 0'],
      [() => h.nn.conv2d(6, 4, 3, { dilation: [1, 0] }), 'nn.conv2d: dilation[1] must be an integer ≥ 1, got 0'],
      [() => h.nn.sequential([{ type: 'conv2d', in: 2, out: 2, kernel: 1, group: 2 } as never]), "unknown option 'group'"],
    ];
    for (const [fn, msg] of bad) {
      let err: unknown;
      try {
        fn();
      } catch (e) {
        err = e;
      }
      expect(err, msg).toBeInstanceOf(h.HesseError);
      expect((err as h.HesseError).code).toBe('INVALID_ARGUMENT');
      expect((err as h.HesseError).message).toContain(msg);
    }
  });
});
