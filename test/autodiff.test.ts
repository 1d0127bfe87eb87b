/**
 * The autodiff API through wasm: transforms against finite differences and identities, the
 * objective, the finite-difference helpers, and bad input. (Golden values from PyTorch are in
 * golden.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init(); // at the top: describe blocks below build tensors while collecting

const f64 = (v: number[], shape: number[]) => h.tensor(new Float64Array(v), shape, 'float64');

/** A small MLP loss over explicit parameter tensors, written with the op functions. */
const mlpLoss = (p: { w1: h.Sym; b1: h.Sym; w2: h.Sym; b2: h.Sym }, x: h.Sym, y: h.Sym) => {
  const hid = h.gelu(h.add(h.matmul(x, h.transpose(p.w1)), p.b1));
  const out = h.add(h.matmul(hid, h.transpose(p.w2)), p.b2);
  return h.crossEntropy(out, y);
};

function mlpParams(seed: number) {
  const r = rng(seed);
  return { w1: f64(randn(r, 15), [5, 3]), b1: f64(randn(r, 5), [5]), w2: f64(randn(r, 10), [2, 5]), b2: f64(randn(r, 2), [2]) };
}

const flat = (tree: h.ParamTree) => Float64Array.from((Object.values(tree) as h.Tensor[]).flatMap((t) => Array.from(t.toArray())));

describe('transforms on a traced function', () => {
  const x = f64(randn(rng(9), 12), [4, 3]);
  const y = f64([0, 1, 1, 0], [4]);

  it('grad matches central differences of the value', () => {
    const params = mlpParams(1);
    const [value, g] = h.valueAndGrad(mlpLoss)(params, x, y);
    const gflat = flat(g);
    const keys = Object.keys(params) as (keyof typeof params)[];
    let i = 0;
    for (const k of keys) {
      const base = params[k].toArray();
      for (let j = 0; j < base.length; j++, i++) {
        const shift = (s: number) => {
          const v = Float64Array.from(base);
          v[j]! += s;
          const moved = { ...params, [k]: f64(Array.from(v), [...params[k].shape]) };
          return h.valueAndGrad(mlpLoss)(moved, x, y)[0];
        };
        const fd = (shift(1e-6) - shift(-1e-6)) / 2e-6;
        expect(Math.abs(fd - gflat[i]!)).toBeLessThan(1e-7 * Math.max(1, Math.abs(fd)));
      }
    }
    expect(value).toBeGreaterThan(0);
  });

  it('hessian is symmetric, its columns are HVPs, and hvp is linear', () => {
    const params = mlpParams(2);
    const H = h.hessian(mlpLoss)(params, x, y);
    const n = H.shape[0]!;
    expect(H.shape).toEqual([n, n]);
    const Hv = H.toArray();
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(Math.abs(Hv[i * n + j]! - Hv[j * n + i]!)).toBeLessThan(1e-12);
    const r = rng(3);
    const mk = () => {
      const p = mlpParams(99);
      return Object.fromEntries(Object.entries(p).map(([k, t]) => [k, f64(randn(r, t.size), [...t.shape])]));
    };
    const [u, v] = [mk(), mk()];
    const hu = flat(h.hvp(mlpLoss, params, u, [x, y]));
    const uf = flat(u);
    const want = Array.from({ length: n }, (_, i) => uf.reduce((s, uj, j) => s + Hv[i * n + j]! * uj, 0));
    expectClose(hu, want, 1e-11, 1e-13);
    const combo = Object.fromEntries(Object.keys(u).map((k) => [k, h.add(h.mul(u[k]!, 2), h.mul(v[k]!, -3))]));
    const hc = flat(h.hvp(mlpLoss, params, combo, [x, y]));
    const hv2 = flat(h.hvp(mlpLoss, params, v, [x, y]));
    expectClose(hc, hu.map((a, i) => 2 * a - 3 * hv2[i]!), 1e-11, 1e-13);
  });

  it('jvp and vjp are adjoint; jacobian agrees with both', () => {
    const params = mlpParams(4);
    const logits = (p: typeof params extends infer _ ? { w1: h.Sym; b1: h.Sym; w2: h.Sym; b2: h.Sym } : never, xx: h.Sym) =>
      h.add(h.matmul(h.tanh(h.add(h.matmul(xx, h.transpose(p.w1)), p.b1)), h.transpose(p.w2)), p.b2);
    const r = rng(5);
    const v = Object.fromEntries(Object.entries(params).map(([k, t]) => [k, f64(randn(r, t.size), [...t.shape])]));
    const [out, jv] = h.jvp(logits, params, v, [x]);
    expect(out.shape).toEqual([4, 2]);
    const w = f64(randn(r, 8), [4, 2]);
    const [, pullback] = h.vjp(logits, params, [x]);
    const jtw = flat(pullback(w));
    const lhs = Array.from(jv.toArray()).reduce((s, a, i) => s + a * w.toArray()[i]!, 0);
    const rhs = Array.from(jtw).reduce((s, a, i) => s + a * flat(v)[i]!, 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-12 * Math.max(1, Math.abs(lhs)));
    const J = h.jacobian(logits)(params, x);
    expect(J.shape).toEqual([8, 32]);
    const Jv = Array.from({ length: 8 }, (_, i) => flat(v).reduce((s, vj, j) => s + J.toArray()[i * 32 + j]! * vj, 0));
    expectClose(Jv, jv.toArray(), 1e-12, 1e-14);
  });

  it('differentiates with respect to an input (argnum)', () => {
    const params = mlpParams(6);
    const gx = h.grad(mlpLoss, { argnum: 1 })(params, x, y) as h.Tensor;
    expect(gx.shape).toEqual([4, 3]);
    const Hx = h.hessian(mlpLoss, { argnum: 1 })(params, x, y);
    expect(Hx.shape).toEqual([12, 12]);
    // Samples are independent: the input Hessian is block-diagonal over the batch.
    const H = Hx.toArray();
    for (let i = 0; i < 12; i++) for (let j = 0; j < 12; j++) if (Math.floor(i / 3) !== Math.floor(j / 3)) expect(H[i * 12 + j]).toBe(0);
  });

  it('float32 agrees with float64 to f32 precision', () => {
    const p64 = mlpParams(7);
    const p32 = Object.fromEntries(Object.entries(p64).map(([k, t]) => [k, h.astype(t, 'float32')]));
    const g64 = flat(h.grad(mlpLoss)(p64, x, y));
    const g32 = (Object.values(h.grad(mlpLoss)(p32 as typeof p64, h.astype(x, 'float32'), h.astype(y, 'float32'))) as h.Tensor[]).flatMap((t) => Array.from(t.toArray()));
    expectClose(g32, g64, 1e-4, 1e-6);
  });
});

describe('objective over nn.sequential', () => {
  const r = rng(11);
  const x = f64(randn(r, 6 * 4), [6, 4]);
  const y = f64([0, 2, 1, 2, 0, 1], [6]);
  const model = h.nn.sequential([h.nn.linear(4, 5), h.nn.layerNorm(5), h.nn.tanh(), h.nn.linear(5, 3)]);

  it('documents and follows the parameter order', () => {
    expect(model.blocks.map((b) => [b.name, b.shape])).toEqual([
      ['0.weight', [5, 4]], ['0.bias', [5]], ['1.weight', [5]], ['1.bias', [5]], ['3.weight', [3, 5]], ['3.bias', [3]],
    ]);
    expect(model.size).toBe(20 + 5 + 5 + 5 + 15 + 3);
    const p = model.init({ seed: 1, dtype: 'float64' });
    expect(model.views(p)['1.weight']).toEqual(new Float64Array(5).fill(1));
    expect(Math.max(...Array.from(model.views(p)['0.weight']!).map(Math.abs))).toBeLessThanOrEqual(0.5);
  });

  it('loss/grad/hvp/hessian agree with each other and with finite differences', () => {
    using obj = h.objective(model, 'cross_entropy', { x, y }, { seed: 2 });
    expect(h.gradCheck(obj).relError).toBeLessThan(1e-7);
    expect(h.hvpCheck(obj).relError).toBeLessThan(1e-6);
    const H = obj.hessian({ chunk: 7 });
    const fd = h.hessianFD(obj);
    expectClose(H, fd, 1e-5, 1e-7);
    const v = model.init({ seed: 5, dtype: 'float64' });
    const n = obj.size;
    const Hv = Array.from({ length: n }, (_, i) => v.reduce((s, vj, j) => s + H[i * n + j]! * vj, 0));
    expectClose(obj.hvp(v), Hv, 1e-10, 1e-12);
  });

  it('wrt input: the gradient and Hessian with respect to x', () => {
    using obj = h.objective(model, 'ce', { x, y }, { seed: 2, wrt: 'input' });
    expect(obj.size).toBe(24);
    expect(obj.grad().length).toBe(24);
    expect(h.hvpCheck(obj).relError).toBeLessThan(1e-6);
  });

  it('reports bad input and keeps working', () => {
    using obj = h.objective(model, 'ce', { x, y }, { seed: 2 });
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(h.HesseError);
        return (e as h.HesseError).code;
      }
      return 'no error';
    };
    expect(code(() => obj.hvp(new Float64Array(3)))).toBe('LENGTH_MISMATCH');
    // A direction in the other precision is converted, not refused.
    const v32 = Float32Array.from({ length: obj.size }, (_, i) => (i % 3) - 1);
    expect(Array.from(obj.hvp(v32))).toEqual(Array.from(obj.hvp(Float64Array.from(v32))));
    expect(code(() => obj.hessian({ maxBytes: 100 }))).toBe('OUT_OF_MEMORY');
    expect(code(() => h.objective(model, 'ce', { x, y: f64([0, 1], [2]) }))).toBe('SHAPE_MISMATCH');
    expect(code(() => h.objective(model, 'hinge' as never, { x, y }))).toBe('INVALID_ARGUMENT');
    expect(code(() => h.objective(h.nn.sequential([h.nn.linear(7, 3)]), 'ce', { x, y }))).toBe('SHAPE_MISMATCH');
    // Labels out of range are caught when the loss runs.
    using bad = h.objective(model, 'ce', { x, y: f64([0, 1, 2, 3, 0, 1], [6]) });
    expect(code(() => bad.loss())).toBe('INVALID_ARGUMENT');
    // NaN in the parameters is reported where the user asked for checks.
    using checked = h.objective(model, 'ce', { x, y }, { checkFinite: true });
    const p = checked.params.slice();
    p[3] = NaN;
    expect(code(() => checked.grad(p))).toBe('INVALID_ARGUMENT');
    expect(Number.isFinite(obj.loss())).toBe(true);
    obj.dispose();
    expect(code(() => obj.loss())).toBe('DISPOSED');
  });
});

describe('traced-function errors', () => {
  it('name the op and the shapes', () => {
    const p = { w: h.tensor(new Float32Array(6), [2, 3]) };
    const x = h.tensor(new Float32Array(8), [4, 2]);
    const msg = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(h.HesseError);
        return `${(e as h.HesseError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(msg(() => h.grad((q: { w: h.Sym }, xx: h.Sym) => h.sum(h.matmul(q.w, xx)))(p, x))).toMatch(/SHAPE_MISMATCH: matmul.*\[2, 3\].*\[4, 2\]/);
    expect(msg(() => h.grad((q: { w: h.Sym }) => h.tanh(q.w))(p))).toMatch(/SHAPE_MISMATCH.*\[2, 3\].*not a scalar/);
    expect(msg(() => h.grad((q: { w: h.Sym }) => h.sum(h.abs(q.w)))(p))).toMatch(/UNSUPPORTED_OP: abs/);
    expect(msg(() => h.hvp((q: { w: h.Sym }) => h.sum(h.square(q.w)), p, { w: h.tensor(new Float32Array(5), [5]) }))).toMatch(/SHAPE_MISMATCH/);
    // And the library still works.
    const g = h.grad((q: { w: h.Sym }) => h.sum(h.square(q.w)))({ w: h.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]) }) as { w: h.Tensor };
    expect(Array.from(g.w.toArray())).toEqual([2, 4, 6, 8, 10, 12]);
  });
});

describe('mean_output loss', () => {
  it('is the mean of the network output, with no targets', () => {
    const r = rng(31);
    const m = h.nn.sequential([h.nn.linear(3, 2)]);
    const p = Float64Array.from(randn(r, m.size));
    const x = f64(randn(r, 12), [4, 3]);
    using obj = h.objective(m, 'mean_output', { x }, { params: p });
    const v = m.views(p);
    const W = f64(v['0.weight']!, [2, 3]);
    const b = f64(v['0.bias']!, [2]);
    const [want, g] = h.valueAndGrad((q: { W: h.Sym; b: h.Sym }, xx: h.Sym) => h.mean(h.add(h.matmul(xx, h.transpose(q.W)), q.b)))({ W, b }, x);
    expect(obj.loss()).toBeCloseTo(want, 14);
    expectClose(obj.grad(), [...g.W.toArray(), ...g.b.toArray()], 1e-13, 1e-15);
    expect(() => h.objective(m, 'mean_output', { x, y: x })).toThrowError(/takes no targets/);
    expect(() => h.objective(m, 'mse', { x })).toThrowError(/needs targets/);
  });
});
