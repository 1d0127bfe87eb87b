/**
 * K-FAC on any graph: linear and conv2d layers found by pattern in models written with the
 * traced ops the way the ONNX importer writes them (a folded [in, out] MatMul weight, a
 * Transpose of a [out, in] weight, Gemm(transB), a bias added first or last, reshaped to
 * [O, 1, 1], biases away from their weights in the parameter order, layers on [N, T, D] inputs),
 * and on the control_cnn ONNX export.
 *
 * References: A and B in closed form from the forward values (computed here in plain JS) and
 * the loss Hessians per position: B = Σ Σ_c g_c g_cᵀ = Σᵣ Dᵣ Wᵀ Hℓ,ᵣ W Dᵣ for a layer followed
 * by tanh and a linear layer (Dᵣ = diag(1 − zᵣ²)), B = Σᵣ Hℓ,ᵣ for the last layer; B ⊗ A equal
 * to the exact GGN block for one sample at one position; the control fixture's float64 PyTorch
 * factors.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { randn, relError, rng } from './helpers.js';
import { tracedModel, type Net } from './traced-model.js';

await h.init();

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');
const softmax = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
/** The loss Hessian of the mean loss at one row f (C values) of R rows. */
function lossHessian(loss: 'cross_entropy' | 'mse', f: number[], rows: number): number[] {
  const c = f.length;
  if (loss === 'mse') return Array.from({ length: c * c }, (_, k) => (Math.floor(k / c) === k % c ? 2 / (rows * c) : 0));
  const p = softmax(f);
  return Array.from({ length: c * c }, (_, k) => ((Math.floor(k / c) === k % c ? p[k % c]! : 0) - p[Math.floor(k / c)]! * p[k % c]!) / rows);
}
/** (1/M) Σ āāᵀ over rows ā = [a; 1] (bias) of `rows` [M, d]. */
function meanOuter(rows: number[][], bias: boolean): Float64Array {
  const d = rows[0]!.length + (bias ? 1 : 0);
  const A = new Float64Array(d * d);
  for (const r of rows) {
    const a = bias ? [...r, 1] : r;
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) A[i * d + j]! += (a[i]! * a[j]!) / rows.length;
  }
  return A;
}
/** Σ over rows of D Wᵀ Hᵣ W D: B of a layer whose output goes through tanh (D = 1 − z²) into ·Wᵀ, W [c, k]. */
function backB(W: ArrayLike<number>, c: number, k: number, rows: { z: number[]; H: number[] }[]): Float64Array {
  const B = new Float64Array(k * k);
  for (const { z, H } of rows) {
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let s = 0;
        for (let a = 0; a < c; a++) for (let b = 0; b < c; b++) s += W[a * k + i]! * H[a * c + b]! * W[b * k + j]!;
        B[i * k + j]! += (1 - z[i]! ** 2) * s * (1 - z[j]! ** 2);
      }
    }
  }
  return B;
}
const sumOf = (ms: number[][], d: number) => Float64Array.from({ length: d * d }, (_, k) => ms.reduce((s, m) => s + m[k]!, 0));

/** A per-token MLP on x [N, T, D], with its blocks in `order` (the exporter puts folded weights last). */
function tokenModel(n: number, t: number, d: number, hid: number, c: number, order: string[], scale?: boolean) {
  const specs: Record<string, number[]> = { 'l1.weightT': [d, hid], 'l1.bias': [hid], 'l2.weight': [c, hid], 'l2.bias': [c], 'ln.scale': [hid] };
  const net: Net = (p, x) => {
    const at = (name: string) => p[order.indexOf(name)]!;
    const s1 = h.add(at('l1.bias'), h.reshape(h.matmul(h.reshape(x, [n * t, d]), at('l1.weightT')), [n, t, hid]));
    let z = h.tanh(s1);
    if (scale) z = h.mul(z, at('ln.scale')); // an elementwise parameter: no K-FAC pattern
    return h.add(h.reshape(h.matmul(h.reshape(z, [n * t, hid]), h.transpose(at('l2.weight'))), [n, t, c]), at('l2.bias'));
  };
  return tracedModel(order.map((name) => ({ name, shape: specs[name]! })), net);
}

describe('linear layers on [N, T, D] inputs (folded MatMul weight, bias first; Transpose of a weight, bias last)', () => {
  const [N, T, D, H, C] = [2, 3, 3, 4, 5];
  const R = N * T;

  it.each(['cross_entropy', 'mse'] as const)('%s: A and B equal their closed forms over positions; nothing is uncovered', (loss) => {
    const order = ['l1.weightT', 'l1.bias', 'l2.weight', 'l2.bias'];
    const model = tokenModel(N, T, D, H, C, order);
    const r = rng(loss === 'mse' ? 2 : 1);
    const flat = Float64Array.from(randn(r, model.size));
    const xs = randn(r, R * D).map((v) => 2 * v);
    const ys = loss === 'cross_entropy' ? Array.from({ length: R }, (_, i) => i % C) : randn(r, R * C);
    using obj = h.objective(model, loss, { x: f64(xs, [N, T, D]), y: f64(ys, loss === 'cross_entropy' ? [N, T] : [N, T, C]) }, { params: flat });
    using k = obj.kfac();
    const v = model.views(flat);
    const [w1t, b1, w2, b2] = [v['l1.weightT']!, v['l1.bias']!, v['l2.weight']!, v['l2.bias']!];
    // Forward in plain JS, per position.
    const rows = Array.from({ length: R }, (_, i) => {
      const x = xs.slice(i * D, (i + 1) * D);
      const z = Array.from({ length: H }, (_, o) => Math.tanh(b1[o]! + x.reduce((s, xv, q) => s + xv * w1t[q * H + o]!, 0)));
      const f = Array.from({ length: C }, (_, o) => b2[o]! + z.reduce((s, zv, q) => s + zv * w2[o * H + q]!, 0));
      return { x, z, H: lossHessian(loss, f, R) };
    });
    expect(k.layers.map((l) => [l.name, l.kind, l.layer, l.dIn, l.dOut, l.hasBias, l.weightTransposed, l.offset, l.biasOffset])).toEqual([
      ['l1.weightT', 'linear', 0, D + 1, H, true, true, 0, D * H],
      ['l2.weight', 'linear', 1, H + 1, C, true, false, D * H + H, D * H + H + C * H],
    ]);
    expect(k.uncovered).toEqual([]);
    expect(relError(k.layers[0]!.a, meanOuter(rows.map((q) => q.x), true))).toBeLessThan(1e-13);
    expect(relError(k.layers[1]!.a, meanOuter(rows.map((q) => q.z), true))).toBeLessThan(1e-13);
    expect(relError(k.layers[1]!.b, sumOf(rows.map((q) => q.H), C))).toBeLessThan(1e-12);
    expect(relError(k.layers[0]!.b, backB(w2, C, H, rows))).toBeLessThan(1e-12);
  });

  it('a bias away from its weight, an uncovered parameter: mvp is B·W̄·A on the gathered values, 0 on the uncovered block', () => {
    const order = ['l1.bias', 'ln.scale', 'l2.weight', 'l2.bias', 'l1.weightT'];
    const model = tokenModel(N, T, D, H, C, order, true);
    const r = rng(3);
    const flat = Float64Array.from(randn(r, model.size));
    using obj = h.objective(model, 'cross_entropy', { x: f64(randn(r, R * D), [N, T, D]), y: f64(Array.from({ length: R }, (_, i) => (i + 1) % C), [N, T]) }, { params: flat });
    using k = obj.kfac();
    const off = Object.fromEntries(model.blocks.map((b) => [b.name, b.offset]));
    expect(k.layers.map((l) => [l.name, l.offset, l.biasOffset, l.weightTransposed])).toEqual([
      ['l2.weight', off['l2.weight'], off['l2.bias'], false],
      ['l1.weightT', off['l1.weightT'], off['l1.bias'], true],
    ]);
    expect(k.uncovered).toEqual([{ name: 'ln.scale', offset: off['ln.scale'], size: H }]);
    const v = Float64Array.from(randn(rng(4), model.size));
    const got = k.mvp(v);
    const want = new Float64Array(model.size);
    for (const l of k.layers) {
      const [di, dout, raw] = [l.dIn, l.dOut, l.dIn - 1];
      // W̄ [out, in + 1] in PyTorch's layout, from the stored block ([in, out] when transposed).
      const at = (o: number, i: number) => (l.weightTransposed ? l.offset + i * dout + o : l.offset + o * raw + i);
      const Wb = Float64Array.from({ length: dout * di }, (_, q) => {
        const [o, i] = [Math.floor(q / di), q % di];
        return i < raw ? v[at(o, i)]! : v[l.biasOffset + o]!;
      });
      for (let o = 0; o < dout; o++) {
        for (let i = 0; i < di; i++) {
          let s = 0;
          for (let p = 0; p < dout; p++) for (let q = 0; q < di; q++) s += l.b[o * dout + p]! * Wb[p * di + q]! * l.a[q * di + i]!;
          want[i < raw ? at(o, i) : l.biasOffset + o] = s;
        }
      }
    }
    expect(relError(got, want)).toBeLessThan(1e-13);
    expect(Array.from(got.subarray(off['ln.scale']!, off['ln.scale']! + H))).toEqual([0, 0, 0, 0]);
    // The inverse undoes the damped product on the covered blocks.
    const z = k.inverseApply(v, 0.3);
    const back = k.mvp(z).map((a, i) => a + 0.3 * z[i]!);
    const covered = (i: number) => !(i >= off['ln.scale']! && i < off['ln.scale']! + H);
    expect(relError(back.filter((_, i) => covered(i)), v.filter((_, i) => covered(i)))).toBeLessThan(1e-10);
  });

  it.each(['cross_entropy', 'mse'] as const)('%s: for one sequence of one position B ⊗ A is the exact GGN block of each layer', (loss) => {
    const order = ['l1.weightT', 'l1.bias', 'l2.weight', 'l2.bias'];
    const model = tokenModel(1, 1, D, H, C, order);
    const r = rng(7);
    const flat = Float64Array.from(randn(r, model.size));
    using obj = h.objective(model, loss, { x: f64(randn(r, D), [1, 1, D]), y: loss === 'cross_entropy' ? f64([2], [1, 1]) : f64(randn(r, C), [1, 1, C]) }, { params: flat });
    using k = obj.kfac();
    const G = obj.gaussNewton('dense');
    const P = model.size;
    for (const l of k.layers) {
      // The layer's flat indices, weight block then bias; kron columns through mvp of unit vectors.
      const idx = [...Array.from({ length: l.size - l.dOut }, (_, i) => l.offset + i), ...Array.from({ length: l.dOut }, (_, i) => l.biasOffset + i)];
      const kron = idx.flatMap((j) => {
        const e = new Float64Array(P);
        e[j] = 1;
        const col = k.mvp(e);
        return idx.map((i) => col[i]!);
      });
      const block = idx.flatMap((j) => idx.map((i) => G[i * P + j]!));
      expect(relError(kron, block), `${loss} ${l.name}`).toBeLessThan(1e-12);
    }
  });
});

describe('conv2d layers: bias reshaped to [O, 1, 1] and added first; then Gemm(transB) + bias', () => {
  /** x [N, Cin, S, S] → conv k×k (pad) + b → tanh → flatten → Gemm(W2 [C, O·S'·S'], transB) + b2. */
  function convModel(n: number, cin: number, o: number, s: number, kk: number, pad: number, c: number) {
    const so = s + 2 * pad - kk + 1;
    const net: Net = ([w, b, w2, b2], x) => {
      const y = h.add(h.reshape(b!, [o, 1, 1]), h.conv2d(x, w!, { padding: [pad, pad] }));
      return h.add(h.gemm(h.reshape(h.tanh(y), [n, o * so * so]), w2!, { transB: true }), b2!);
    };
    const model = tracedModel([{ name: 'conv.weight', shape: [o, cin, kk, kk] }, { name: 'conv.bias', shape: [o] }, { name: 'fc.weight', shape: [c, o * so * so] }, { name: 'fc.bias', shape: [c] }], net, 0.6);
    return { model, so };
  }

  it('A (mean over patches), B (Σ over positions) and the linear layer after it equal their closed forms', () => {
    const [n, cin, o, s, kk, pad, c] = [2, 2, 3, 4, 3, 1, 3];
    const { model, so } = convModel(n, cin, o, s, kk, pad, c);
    const t = so * so;
    const r = rng(11);
    const flat = Float64Array.from(randn(r, model.size).map((v) => 0.6 * v));
    const xs = randn(r, n * cin * s * s);
    const ys = [0, 2];
    using obj = h.objective(model, 'cross_entropy', { x: f64(xs, [n, cin, s, s]), y: f64(ys, [n]) }, { params: flat });
    using k = obj.kfac();
    const v = model.views(flat);
    const [w, b, w2, b2] = [v['conv.weight']!, v['conv.bias']!, v['fc.weight']!, v['fc.bias']!];
    const px = (i: number, ch: number, yy: number, xx: number) => (yy < 0 || xx < 0 || yy >= s || xx >= s ? 0 : xs[((i * cin + ch) * s + yy) * s + xx]!);
    const patches: number[][] = [];
    const samples = Array.from({ length: n }, (_, i) => {
      const z = new Array<number>(o * t);
      for (let oy = 0; oy < so; oy++) {
        for (let ox = 0; ox < so; ox++) {
          const patch: number[] = [];
          for (let ch = 0; ch < cin; ch++) for (let ky = 0; ky < kk; ky++) for (let kx = 0; kx < kk; kx++) patch.push(px(i, ch, oy + ky - pad, ox + kx - pad));
          patches.push(patch);
          for (let q = 0; q < o; q++) z[q * t + oy * so + ox] = Math.tanh(b[q]! + patch.reduce((acc, pv, j) => acc + pv * w[q * patch.length + j]!, 0));
        }
      }
      const f = Array.from({ length: c }, (_, q) => b2[q]! + z.reduce((acc, zv, j) => acc + zv * w2[q * o * t + j]!, 0));
      return { z, H: lossHessian('cross_entropy', f, n) };
    });
    expect(k.layers.map((l) => [l.name, l.kind, l.dIn, l.dOut, l.hasBias])).toEqual([
      ['conv.weight', 'conv2d', cin * kk * kk + 1, o, true],
      ['fc.weight', 'linear', o * t + 1, c, true],
    ]);
    expect(k.uncovered).toEqual([]);
    expect(relError(k.layers[0]!.a, meanOuter(patches, true))).toBeLessThan(1e-13);
    // B of the conv: Σₙ Σₜ over its output positions of the [O, O] slices at t of Dₙ W2ᵀ Hₙ W2 Dₙ.
    const Bc = new Float64Array(o * o);
    for (const { z, H } of samples) {
      const full = backB(w2, c, o * t, [{ z, H }]);
      for (let tt = 0; tt < t; tt++) for (let p = 0; p < o; p++) for (let q = 0; q < o; q++) Bc[p * o + q]! += full[(p * t + tt) * o * t + q * t + tt]!;
    }
    expect(relError(k.layers[0]!.b, Bc)).toBeLessThan(1e-12);
    expect(relError(k.layers[1]!.a, meanOuter(samples.map((q) => q.z), true))).toBeLessThan(1e-13);
    expect(relError(k.layers[1]!.b, sumOf(samples.map((q) => q.H), c))).toBeLessThan(1e-12);
  });

  it('one sample, one output position: B ⊗ A of the conv is its exact GGN block', () => {
    const { model } = convModel(1, 2, 3, 3, 3, 0, 3);
    const r = rng(12);
    const flat = Float64Array.from(randn(r, model.size));
    using obj = h.objective(model, 'cross_entropy', { x: f64(randn(r, 18), [1, 2, 3, 3]), y: f64([1], [1]) }, { params: flat });
    using k = obj.kfac();
    const G = obj.gaussNewton('dense');
    const P = model.size;
    const l = k.layers[0]!;
    expect(l.kind).toBe('conv2d');
    const idx = Array.from({ length: l.size }, (_, i) => l.offset + i); // weight then bias, adjacent here
    const kron = idx.flatMap((j) => {
      const e = new Float64Array(P);
      e[j] = 1;
      const col = k.mvp(e);
      return idx.map((i) => col[i]!);
    });
    expect(relError(kron, idx.flatMap((j) => idx.map((i) => G[i * P + j]!)))).toBeLessThan(1e-12);
  });
});

describe('what K-FAC does not cover is reported', () => {
  it('a weight used twice (tied) is not a layer; a model with no layer is refused', () => {
    const tied = tracedModel([{ name: 'w', shape: [3, 3] }, { name: 'v', shape: [2, 3] }], ([w, v], x) => h.matmul(h.tanh(h.matmul(h.tanh(h.matmul(x, w!)), w!)), h.transpose(v!)));
    const r = rng(5);
    using obj = h.objective(tied, 'cross_entropy', { x: f64(randn(r, 12), [4, 3]), y: f64([0, 1, 1, 0], [4]) }, { params: Float64Array.from(randn(r, tied.size)) });
    using k = obj.kfac();
    expect(k.layers.map((l) => [l.name, l.hasBias])).toEqual([['v', false]]);
    expect(k.uncovered).toEqual([{ name: 'w', offset: 0, size: 9 }]);
    const none = tracedModel([{ name: 'scale', shape: [3] }], ([s], x) => h.mul(x, s!));
    using o2 = h.objective(none, 'mse', { x: f64(randn(r, 6), [2, 3]), y: f64(randn(r, 6), [2, 3]) }, { params: Float64Array.from([1, 2, 3]) });
    expect(() => o2.kfac()).toThrowError(/K-FAC: the model has no linear or conv2d layers.*1 parameter block\(s\) match no pattern/);
  });
});

describe('the control_cnn ONNX export (Conv + bias, Gemm(transB) + bias)', () => {
  const dir = new URL('./fixtures/models/control_cnn/', import.meta.url).pathname;
  const ref = JSON.parse(readFileSync(dir + 'reference.json', 'utf8'));
  const npz = h.npy.parseNpz(readFileSync(dir + ref.refs.eval.file));
  const arr = (k: string) => Float64Array.from(npz[k]!.data as Float64Array);

  const files: string[] = ref.exports.map((e: { file: string }) => e.file);
  it.each(files)('%s: K-FAC factors equal the float64 PyTorch references', async (file) => {
    const ex = ref.exports.find((e: { file: string }) => e.file === file);
    const model = await h.loadOnnx(readFileSync(dir + file));
    const x = h.npy.npyToTensor(h.npy.parseNpy(readFileSync(dir + 'x.npy')), 'float64');
    const y = h.npy.npyToTensor(h.npy.parseNpy(readFileSync(dir + 'y.npy')), 'float64');
    using obj = h.objective(model, 'cross_entropy', { x, y }, { params: model.init({ dtype: 'float64' }) });
    using k = obj.kfac();
    expect(k.uncovered).toEqual([]);
    expect(k.layers.length).toBe(ref.refs.eval.kfac.length);
    ref.refs.eval.kfac.forEach((kr: { module: string; d_in: number; d_out: number; has_bias: boolean }, i: number) => {
      const l = k.layers.find((q) => q.offset === ex.kfac_onnx_offsets[i]);
      expect(l, kr.module).toBeDefined();
      expect([l!.dIn, l!.dOut, l!.hasBias]).toEqual([kr.d_in, kr.d_out, kr.has_bias]);
      expect(relError(l!.a, arr(`kfac_${i}_a`)), `${kr.module} A`).toBeLessThan(1e-12);
      expect(relError(l!.b, arr(`kfac_${i}_b`)), `${kr.module} B`).toBeLessThan(1e-9);
    });
  });
});
