/**
 * The public-API fuzz suite's numerical findings (test/fuzz), replayed through the wasm build on
 * their exact inputs (the fuzz helpers `matrix` and `T` of test/fuzz/gen.ts), each against an
 * independent reference: a closed form, a dense computation, or PyTorch's documented behaviour.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { fillValue, matrix, type Fill } from './fuzz/gen.js';

await h.init();

const T = (shape: number[], dtype: 'float32' | 'float64', fill: Fill, seed: number) =>
  h.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fillValue(fill, i, seed)), shape, dtype);
const matvec = (a: Float64Array, x: ArrayLike<number>) => Float64Array.from({ length: x.length }, (_, i) => Array.from(x).reduce((s, xj, j) => s + a[i * x.length + j]! * xj, 0));
const norm = (v: ArrayLike<number>) => Math.hypot(...Array.from(v));

describe('fuzz regressions', () => {
  it('trace: a Hutch++ sketch that spans the space is exact, with stdError 0', () => {
    for (const seed of [0, 1, 2]) {
      const a = matrix(5, 'spd', seed);
      const r = h.trace({ size: 5, data: a }, {});
      const exact = [0, 1, 2, 3, 4].reduce((s, i) => s + a[i * 5 + i]!, 0);
      expect(r.stdError).toBe(0);
      expect(Math.abs(r.trace - exact)).toBeLessThan(1e-12 * exact);
    }
  });

  it('minres: a singular inconsistent system reports its true residual, and x stays bounded', () => {
    const b = Float64Array.from({ length: 6 }, (_, i) => fillValue('rand', i, 4));
    for (const seed of [1, 3, 8]) {
      const a = matrix(6, 'sym', seed);
      const r = h.minres({ size: 6, data: a }, b, { maxIter: 50 });
      const res = norm(matvec(a, r.x).map((v, i) => v - b[i]!));
      expect(Math.abs(r.residualNorm - res)).toBeLessThan(1e-12 * norm(b));
      expect(r.converged).toBe(false);
      expect(norm(r.x)).toBeLessThan(1e3 * norm(b));
    }
  });

  // PyTorch: log_softmax(x) = (x − max) − log Σ exp(x − max), so a +∞ logit makes the whole row
  // NaN (pytorch/pytorch#6864: F.log_softmax([0, inf]) = [nan, nan]); cross_entropy picks from it.
  it('crossEntropy: a +∞ logit gives NaN (the fuzz case [inf, -inf] with label 1)', () => {
    const x = T([1, 2], 'float64', 'special', 501);
    expect(Array.from(x.toArray())).toEqual([Infinity, -Infinity]);
    expect(h.crossEntropy(x, h.tensor([1], [1], 'float64')).toArray()[0]).toBeNaN();
    expect(h.crossEntropy(x, h.tensor([0], [1], 'float64')).toArray()[0]).toBeNaN();
    expect(Array.from(h.logSoftmax(x).toArray()).every(Number.isNaN)).toBe(true);
    // The public logsumexp keeps torch.logsumexp's +∞; a finite max with the label at −∞ is +∞.
    expect(h.logsumexp(x).toArray()[0]).toBe(Infinity);
    expect(h.crossEntropy(h.tensor([0, -Infinity], [1, 2], 'float64'), h.tensor([1], [1], 'float64')).toArray()[0]).toBe(Infinity);
  });

  // PyTorch's CPU layer_norm accumulates float32 moments in float32 (T_ACC = vec_scalar_t<float>
  // = float): for the row [1e30, −1e30] the squared deviation 1e60 overflows to inf, rstd =
  // 1/√(inf + eps) = 0 and the row normalizes to 0. In float64 the same row gives ±1.
  it('layerNorm: the fuzz case overflows float32 moments to 0 as PyTorch float32 does', () => {
    const y32 = Array.from(h.layerNorm(T([2, 1, 2], 'float32', 'special', 765)).toArray());
    expect(y32.slice(0, 2).map(Math.abs)).toEqual([0, 0]);
    const y64 = Array.from(h.layerNorm(T([2, 1, 2], 'float64', 'special', 765)).toArray());
    expect(Math.abs(y64[0]! - 1)).toBeLessThan(1e-12);
    expect(Math.abs(y64[1]! + 1)).toBeLessThan(1e-12);
    const want = 0.5 / Math.sqrt(0.25 + 1e-5); // row [1e-40, 1]: mean 0.5, biased variance 0.25
    for (const y of [y32, y64]) expect(Math.abs(y[3]! - want)).toBeLessThan(1e-6);
  });

  // ReduceOptions documents several axes for every reduction, but logsumexp over 2 of 3 axes
  // threw UNSUPPORTED_OP, eagerly too (the fuzz case: logsumexp(x, { axis: [-1, 1], keepdims:
  // true })). Reference: m + log Σ exp(x − m) per kept index in float64; the gradient of
  // Σ lse over those axes is the softmax over them.
  it('logsumexp over several (not all) axes: eager value and traced gradient', () => {
    const shape = [4, 2, 3];
    const x = T(shape, 'float64', 'rand', 17);
    const xs = Array.from(x.toArray());
    const lse = (vals: number[]) => { const m = Math.max(...vals); return m + Math.log(vals.reduce((s, v) => s + Math.exp(v - m), 0)); };
    // Over axes 1 and 2: one value per i.
    const want = [0, 1, 2, 3].map((i) => lse(xs.slice(i * 6, (i + 1) * 6)));
    const y = h.logsumexp(x, { axis: [-1, 1], keepdims: true });
    expect(y.shape).toEqual([4, 1, 1]);
    Array.from(y.toArray()).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-12));
    expect(h.logsumexp(x, { axis: [2, 1] }).shape).toEqual([4]);
    // Over axes 0 and 2 (not adjacent): one value per j.
    const want02 = [0, 1].map((j) => lse([0, 1, 2, 3].flatMap((i) => xs.slice(i * 6 + j * 3, i * 6 + j * 3 + 3))));
    Array.from(h.logsumexp(x, { axis: [0, 2] }).toArray()).forEach((v, j) => expect(Math.abs(v - want02[j]!)).toBeLessThan(1e-12));
    const g = h.grad((z: h.Sym) => h.sum(h.logsumexp(z, { axis: [0, 2] })))(x as never) as unknown as h.Tensor;
    Array.from(g.toArray()).forEach((v, k) => {
      const j = Math.floor(k / 3) % 2;
      expect(Math.abs(v - Math.exp(xs[k]! - want02[j]!))).toBeLessThan(1e-12);
    });
  });

  // The loss was Σ lse − Σ picked over the rows, which cancels when one row's logits are huge:
  // rows [0, −0] (label 1) and [1e30, −1e30] (label 0) gave 0. PyTorch averages per-sample
  // losses: (log 2 + 0)/2. The gradient (softmax − onehot)/N must not change either.
  it('crossEntropy: per-row losses before the mean (the fuzz case with a 1e30 row)', () => {
    for (const dt of ['float32', 'float64'] as const) {
      const x = T([2, 2], dt, 'special', 113);
      expect(Array.from(x.toArray())).toEqual([0, -0, 1e30, -1e30].map((v) => (dt === 'float32' ? Math.fround(v) : v)));
      const l = h.crossEntropy(x, h.tensor([1, 0], [2], dt)).toArray()[0]!;
      expect(Math.abs(l - Math.log(2) / 2)).toBeLessThan(dt === 'float32' ? 1e-7 : 1e-15);
    }
    const x = h.tensor([0.5, -1, 2, 0.25, 3, -2], [2, 3], 'float64');
    const g = Array.from((h.grad((z: h.Sym) => h.crossEntropy(z, h.tensor([2, 0], [2], 'float64')))(x as never) as unknown as h.Tensor).toArray());
    const xs = Array.from(x.toArray());
    [0, 1].forEach((i) => {
      const row = xs.slice(i * 3, i * 3 + 3);
      const z = row.reduce((s, v) => s + Math.exp(v), 0);
      row.forEach((v, j) => expect(Math.abs(g[i * 3 + j]! - (Math.exp(v) / z - (j === [2, 0][i] ? 1 : 0)) / 2)).toBeLessThan(1e-15));
    });
  });

  // matrix(5, 'sym', 54) has the spectrum ±3.05384, ±0.908434, 0: power iteration settles into
  // a two-cycle between the ±3.05 eigenvectors whose Rayleigh quotient (−1.716) is steady but no
  // eigenvalue, and it said converged. Now a stop also needs a small residual ‖Av − λv‖.
  it('powerIteration: a ±λ dominant pair is not reported as converged to a non-eigenvalue', () => {
    const a = matrix(5, 'sym', 54);
    const op = { size: 5, matvec: (v: Float64Array, out: Float64Array) => out.set(matvec(a, v)) };
    const r = h.powerIteration(op, 3, { maxIter: 67, tol: 1e-10 });
    const spectrum = [-3.05384, -0.908434, 0, 0.908434, 3.05384];
    const isEig = (l: number) => spectrum.some((e) => Math.abs(e - l) < 1e-4);
    expect(r.converged && !Array.from(r.values).every(isEig)).toBe(false);
    expect(r.converged).toBe(false);
    // A matrix with a clear top eigenvalue still converges, to it (the spd fuzz matrix).
    const b = matrix(5, 'spd', 3);
    const top = h.eigh(b, 5).values.at(-1)!;
    const rb = h.powerIteration({ size: 5, matvec: (v: Float64Array, out: Float64Array) => out.set(matvec(b, v)) }, 1, { maxIter: 1000 });
    expect(rb.converged).toBe(true);
    expect(Math.abs(rb.values[0]! - top)).toBeLessThan(1e-6 * top);
  });
});
