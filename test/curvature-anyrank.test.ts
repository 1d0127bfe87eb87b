/**
 * Gauss–Newton and Fisher on network outputs of any rank: per-token logits [N, T, C] under
 * cross-entropy and [N, T, D] under MSE, on a per-token MLP written as the ONNX importer writes
 * it (a folded [in, out] MatMul weight, a bias added first, Reshapes around the products).
 *
 * References, all independent of the curvature code: the dense G = Σᵣ Jᵣᵀ Hℓ,ᵣ Jᵣ from the
 * library's forward-mode Jacobian and the closed-form loss Hessian per position
 * ((diag p − ppᵀ)/R for cross-entropy, 2/(R·D)·I for MSE); the matrix of GGN products G·eᵢ; the
 * empirical Fisher (1/R) Σᵣ ∇ℓᵣ∇ℓᵣᵀ from per-position gradients Jᵣᵀ∇ₓℓᵣ (the convention: a
 * sample is a position, see ARCHITECTURE.md); cross-entropy with the class axis at 1 against a
 * plain-JS loss and its central differences.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, relError, rng } from './helpers.js';
import { blockTensors, tracedModel, type Net } from './traced-model.js';

await h.init();

const [N, T, D, H, C] = [3, 4, 3, 5, 3];
const R = N * T;
const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');

/** x [N, T, D] → per token: ·W1 ([D, H] stored, as a folded initializer) + b1 (added first) → tanh → ·W2ᵀ (W2 [C, H] through a Transpose) + b2. */
const tokenNet: Net = ([w1t, b1, w2, b2], x) => {
  const s1 = h.add(b1!, h.reshape(h.matmul(h.reshape(x, [N * T, D]), w1t!), [N, T, H]));
  const z = h.reshape(h.tanh(s1), [N * T, H]);
  return h.add(h.reshape(h.matmul(z, h.transpose(w2!)), [N, T, C]), b2!);
};
const blocks = [
  { name: 'l1.weightT', shape: [D, H] },
  { name: 'l1.bias', shape: [H] },
  { name: 'l2.weight', shape: [C, H] },
  { name: 'l2.bias', shape: [C] },
];
const model = tracedModel(blocks, tokenNet);
/** The same network with the class axis at 1: [N, C, T], as PyTorch's cross_entropy takes it. */
const classAxis1 = tracedModel(blocks, (p, x) => h.permute(tokenNet(p, x), [0, 2, 1]));

function setup(seed: number, loss: 'cross_entropy' | 'mse') {
  const r = rng(seed);
  const flat = Float64Array.from(randn(r, model.size).map((v) => 1.2 * v));
  const x = f64(randn(r, N * T * D).map((v) => 2 * v), [N, T, D]);
  const y = loss === 'cross_entropy' ? f64(Array.from({ length: R }, (_, i) => (i * 7 + seed) % C), [N, T]) : f64(randn(r, R * C), [N, T, C]);
  const params = blockTensors(model, flat);
  const J = h.jacobian((p: h.Sym[], xs: h.Sym) => tokenNet(p, xs))(params, x).toArray(); // [R·C, P]
  const out = (tokenNet(params as unknown as h.Sym[], x as unknown as h.Sym) as unknown as h.Tensor<'float64'>).toArray();
  return { r, flat, x, y, J, out, ys: y.toArray() };
}

const softmax = (z: ArrayLike<number>) => {
  const m = Math.max(...Array.from(z));
  const e = Array.from(z, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** Output-space pieces per position r: the loss Hessian Hᵣ [C, C] of the mean loss and the gradient eᵣ of the position's own loss ℓᵣ (L = (1/R) Σ ℓᵣ). */
function lossPieces(loss: 'cross_entropy' | 'mse', out: ArrayLike<number>, ys: ArrayLike<number>) {
  return Array.from({ length: R }, (_, r) => {
    const f = Array.from({ length: C }, (_, c) => out[r * C + c]!);
    if (loss === 'cross_entropy') {
      const p = softmax(f);
      const Hr = Array.from({ length: C * C }, (_, k) => ((Math.floor(k / C) === k % C ? p[k % C]! : 0) - p[Math.floor(k / C)]! * p[k % C]!) / R);
      return { Hr, e: p.map((q, c) => q - (c === ys[r] ? 1 : 0)) };
    }
    // ℓᵣ = mean over the C values of (f − y)²; L = mean over all R·C elements.
    const Hr = Array.from({ length: C * C }, (_, k) => (Math.floor(k / C) === k % C ? 2 / (R * C) : 0));
    return { Hr, e: f.map((v, c) => (2 / C) * (v - ys[r * C + c]!)) };
  });
}

/** Σᵣ Jᵣᵀ Hᵣ Jᵣ, J [R·C, P]. */
function ggnRef(J: ArrayLike<number>, pieces: { Hr: number[] }[], P: number): Float64Array {
  const G = new Float64Array(P * P);
  for (let r = 0; r < R; r++) {
    const HJ = new Float64Array(C * P);
    for (let a = 0; a < C; a++) for (let b = 0; b < C; b++) for (let j = 0; j < P; j++) HJ[a * P + j]! += pieces[r]!.Hr[a * C + b]! * J[(r * C + b) * P + j]!;
    for (let a = 0; a < C; a++) for (let i = 0; i < P; i++) for (let j = 0; j < P; j++) G[i * P + j]! += J[(r * C + a) * P + i]! * HJ[a * P + j]!;
  }
  return G;
}

const matvec = (M: ArrayLike<number>, v: ArrayLike<number>, n: number) => Float64Array.from({ length: n }, (_, i) => {
  let s = 0;
  for (let j = 0; j < n; j++) s += M[i * n + j]! * v[j]!;
  return s;
});

describe.each(['cross_entropy', 'mse'] as const)('%s on [N, T, ·] outputs', (loss) => {
  const P = model.size;

  it('the explicit GGN equals Σᵣ Jᵣᵀ Hℓ,ᵣ Jᵣ (Jacobian reference) and the matrix of GGN products; its diagonal and blocks are its parts', () => {
    const { flat, x, y, J, out, ys } = setup(1, loss);
    using obj = h.objective(model, loss, { x, y }, { params: flat });
    const Gref = ggnRef(J, lossPieces(loss, out, ys), P);
    const G = obj.gaussNewton('dense');
    expect(relError(G, Gref)).toBeLessThan(1e-12);
    expect(relError(obj.ggn(), Gref)).toBeLessThan(1e-12); // from G·eᵢ
    expect(relError(obj.gaussNewton('dense', { accumulate: 'f64' }), Gref)).toBeLessThan(1e-12);
    expectClose(obj.gaussNewton('diagonal'), Array.from({ length: P }, (_, i) => Gref[i * P + i]!), 1e-12, 1e-15);
    const layers = obj.gaussNewton('layers');
    expect(Object.keys(layers)).toEqual(['l1', 'l2']);
    const sub = (off: number, n: number) => Float64Array.from({ length: n * n }, (_, k) => Gref[(off + Math.floor(k / n)) * P + off + (k % n)]!);
    expect(relError(layers['l1']!, sub(0, D * H + H))).toBeLessThan(1e-12);
    expect(relError(layers['l2']!, sub(D * H + H, C * H + C))).toBeLessThan(1e-12);
    // Symmetric PSD, and G·v agrees with the dense G.
    const v = Float64Array.from(randn(rng(9), P));
    expect(relError(obj.ggnvp(v), matvec(Gref, v, P))).toBeLessThan(1e-12);
    expect(v.reduce((s, vi, i) => s + vi * obj.ggnvp(v)[i]!, 0)).toBeGreaterThan(0);
  });

  it("'layers' blocks are contiguous ranges: a layer name met again after other blocks is its own block", () => {
    // The exporter's order: named parameters first, the folded MatMul weight last.
    const order = [blocks[1]!, blocks[2]!, blocks[3]!, blocks[0]!];
    const moved = tracedModel(order, ([b1, w2, b2, w1t], x) => tokenNet([w1t!, b1!, w2!, b2!], x));
    const { flat, x, y } = setup(4, loss);
    using obj = h.objective(moved, loss, { x, y }, { params: flat });
    const G = obj.gaussNewton('dense');
    const sub = (off: number, n: number) => Float64Array.from({ length: n * n }, (_, k) => G[(off + Math.floor(k / n)) * P + off + (k % n)]!);
    const layers = obj.gaussNewton('layers');
    const w1 = H + C * H + C;
    expect(Object.keys(layers)).toEqual(['l1', 'l2', `l1@${w1}`]);
    expect(relError(layers['l1']!, sub(0, H))).toBeLessThan(1e-14);
    expect(relError(layers['l2']!, sub(H, C * H + C))).toBeLessThan(1e-14);
    expect(relError(layers[`l1@${w1}`]!, sub(w1, D * H))).toBeLessThan(1e-14);
  });

  it('the empirical Fisher is (1/R) Σ over positions of ∇ℓᵣ∇ℓᵣᵀ, not the per-sequence one', () => {
    const { flat, x, y, J, out, ys } = setup(2, loss);
    using obj = h.objective(model, loss, { x, y }, { params: flat });
    const pieces = lossPieces(loss, out, ys);
    const grads = pieces.map(({ e }, r) => Float64Array.from({ length: P }, (_, j) => e.reduce((s, ec, c) => s + ec * J[(r * C + c) * P + j]!, 0)));
    // The gradient of L is the mean of the positions' gradients (the decomposition is right).
    expect(relError(obj.grad(), Float64Array.from({ length: P }, (_, j) => grads.reduce((s, g) => s + g[j]!, 0) / R))).toBeLessThan(1e-12);
    const v = Float64Array.from(randn(rng(3), P));
    const want = new Float64Array(P);
    for (const g of grads) {
      const dot = g.reduce((s, a, j) => s + a * v[j]!, 0);
      for (let j = 0; j < P; j++) want[j]! += (g[j]! * dot) / R;
    }
    expect(relError(obj.fisherVp(v), want)).toBeLessThan(1e-12);
    // Per sequence (ℓₙ = the mean over its T positions) it would differ: the convention is pinned.
    const perSeq = new Float64Array(P);
    for (let n = 0; n < N; n++) {
      const g = Float64Array.from({ length: P }, (_, j) => grads.slice(n * T, (n + 1) * T).reduce((s, q) => s + q[j]!, 0) / T);
      const dot = g.reduce((s, a, j) => s + a * v[j]!, 0);
      for (let j = 0; j < P; j++) perSeq[j]! += (g[j]! * dot) / N;
    }
    expect(relError(obj.fisherVp(v), perSeq)).toBeGreaterThan(1e-2);
  });

  it('Monte Carlo: one label per position; the MC GGN factor and the MC Fisher products are the same draws, and approach G', () => {
    const { flat, x, y, J, out, ys } = setup(3, loss);
    using obj = h.objective(model, loss, { x, y }, { params: flat });
    const Gref = ggnRef(J, lossPieces(loss, out, ys), P);
    const v = Float64Array.from(randn(rng(4), P));
    const mc = obj.gaussNewton('dense', { monteCarlo: { samples: 3, seed: 5 } });
    expect(relError(obj.curvatureProducts({ mcFisher: { samples: 3, seed: 5 } }, v, 1), matvec(mc, v, P))).toBeLessThan(1e-12);
    const err = (samples: number) => relError(obj.gaussNewton('dense', { monteCarlo: { samples, seed: 11 } }), Gref);
    const [few, many] = [err(2), err(4000)];
    expect(many).toBeLessThan(0.05);
    expect(many).toBeLessThan(few / 5);
  });
});

describe('cross-entropy with the class axis where PyTorch puts it', () => {
  /** PyTorch's F.cross_entropy(z [N, C, d…], y [N, d…]): the mean over positions of lse − z[y]. */
  function ceRef(z: ArrayLike<number>, y: ArrayLike<number>, n: number, c: number, inner: number): number {
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < inner; d++) {
        const row = Array.from({ length: c }, (_, k) => z[(i * c + k) * inner + d]!);
        const m = Math.max(...row);
        total += m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0)) - row[y[i * inner + d]!]!;
      }
    }
    return total / (n * inner);
  }

  it('[N, C, d1, d2] with labels [N, d1, d2]: the loss and gradient equal a plain-JS reference and its central differences', () => {
    const [n, c, d1, d2] = [2, 3, 2, 3];
    const r = rng(21);
    const z = Float64Array.from(randn(r, n * c * d1 * d2).map((v) => 3 * v));
    const labels = Array.from({ length: n * d1 * d2 }, (_, i) => (i * 5 + 1) % c);
    const y = f64(labels, [n, d1, d2]);
    const [value, g] = h.valueAndGrad((zs: h.Sym, ys: h.Sym) => h.crossEntropy(zs, ys))(f64(z, [n, c, d1, d2]), y);
    expect(Math.abs(value - ceRef(z, labels, n, c, d1 * d2))).toBeLessThan(1e-14);
    const fd = Float64Array.from(z, (_, i) => {
      const step = 1e-5;
      const [zp, zm] = [Float64Array.from(z), Float64Array.from(z)];
      zp[i]! += step;
      zm[i]! -= step;
      return (ceRef(zp, labels, n, c, d1 * d2) - ceRef(zm, labels, n, c, d1 * d2)) / (2 * step);
    });
    expect(relError(g.toArray(), fd)).toBeLessThan(1e-8);
    // [N, C] is the rank-2 case of the same rule.
    const z2 = z.subarray(0, n * c);
    expect(Math.abs(h.crossEntropy(f64(z2, [n, c]), f64([0, 2], [n])).toArray()[0]! - ceRef(z2, [0, 2], n, c, 1))).toBeLessThan(1e-14);
  });

  it('an objective on [N, C, T] logits is the one on [N, T, C]: loss, gradient, GGN, Fisher, K-FAC', () => {
    const { flat, x, y } = setup(5, 'cross_entropy');
    using a = h.objective(model, 'cross_entropy', { x, y }, { params: flat });
    using b = h.objective(classAxis1, 'cross_entropy', { x, y }, { params: flat });
    const v = Float64Array.from(randn(rng(6), model.size));
    expect(Math.abs(b.loss() - a.loss())).toBeLessThan(1e-14);
    expect(relError(b.grad(), a.grad())).toBeLessThan(1e-13);
    expect(relError(b.hvp(v), a.hvp(v))).toBeLessThan(1e-12);
    expect(relError(b.gaussNewton('dense'), a.gaussNewton('dense'))).toBeLessThan(1e-12);
    expect(relError(b.fisherVp(v), a.fisherVp(v))).toBeLessThan(1e-12);
    expect(relError(b.curvatureProducts({ mcFisher: { samples: 2, seed: 1 } }, v, 1), a.curvatureProducts({ mcFisher: { samples: 2, seed: 1 } }, v, 1))).toBeLessThan(1e-12);
    using ka = a.kfac();
    using kb = b.kfac();
    expect(relError(kb.mvp(v), ka.mvp(v))).toBeLessThan(1e-12);
  });

  it('[N, K, K] logits with labels [N, K] fit both readings: refused unless classAxis says which', () => {
    const [n, k] = [2, 3];
    const net = tracedModel([{ name: 'z', shape: [n, k, k] }], ([z], x) => h.add(x, z!));
    const r = rng(31);
    const zv = Float64Array.from(randn(r, n * k * k).map((v) => 2 * v));
    const labels = [0, 2, 1, 1, 0, 2];
    const data = { x: f64(new Float64Array(n * k * k), [n, k, k]), y: f64(labels, [n, k]) };
    expect(() => h.objective(net, 'cross_entropy', data, { params: zv })).toThrowError(/logits \[2, 3, 3\] with labels \[2, 3\] fit both PyTorch's class axis 1.*classAxis/);
    using first = h.objective(net, 'cross_entropy', data, { params: zv, classAxis: 1 });
    using last = h.objective(net, 'cross_entropy', data, { params: zv, classAxis: -1 });
    expect(Math.abs(first.loss() - ceRef(zv, labels, n, k, k))).toBeLessThan(1e-14);
    // Class axis last: the same reference on the transposed logits.
    const zt = Float64Array.from({ length: n * k * k }, (_, q) => {
      const [i, c, d] = [Math.floor(q / (k * k)), Math.floor(q / k) % k, q % k];
      return zv[(i * k + d) * k + c]!;
    });
    expect(Math.abs(last.loss() - ceRef(zt, labels, n, k, k))).toBeLessThan(1e-14);
    expect(() => h.objective(net, 'cross_entropy', data, { params: zv, classAxis: 0 })).toThrowError(/class axis 0, logits \[2, 3, 3\] need labels of their shape without axis 0 \(and the batch axis 0 is not a class axis\)/);
    expect(() => h.objective(net, 'mse', { x: data.x, y: data.x }, { params: zv, classAxis: 1 })).toThrowError(/classAxis applies to cross-entropy, not to the mse loss/);
    expect(() => h.objective(net, 'cross_entropy', data, { params: zv, classAxis: 3 })).toThrowError(/objective: classAxis/);
  });

  it('other shapes are refused naming both forms', () => {
    const z = f64(new Float64Array(2 * 3 * 4), [2, 3, 4]);
    expect(() => h.crossEntropy(z, f64([0, 0, 0, 0, 0], [5]))).toThrowError(/cross_entropy: expected logits \[N, C\] with labels \[N\], or \[N, C, d1, …\] with labels \[N, d1, …\].*got \[2, 3, 4\] and \[5\]/);
    expect(() => h.crossEntropy(z, f64([0, 0, 0, 0], [2, 2]))).toThrowError(/class axis last/);
    // A label outside the classes of its axis: class axis 1 has 3 classes here.
    expect(() => h.crossEntropy(z, f64([0, 1, 2, 3, 0, 1, 2, 0], [2, 4]))).toThrowError(/label 3 .* not a class index in 0\.\.3/);
  });
});
