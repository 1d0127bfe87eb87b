/** Hessian-free optimization and the shipped data set. */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';

await h.init();

describe('datasets', () => {
  it('digits: 1797 images of 64 pixels in [0, 1], labels 0–9 of every class', async () => {
    const d = await h.datasets.digits();
    expect([d.n, d.features, d.classes]).toEqual([1797, 64, 10]);
    expect(Math.min(...d.x)).toBe(0);
    expect(Math.max(...d.x)).toBe(1);
    expect(new Set(d.y).size).toBe(10);
  });
});

describe('hessianFree', () => {
  it('decreases the loss every step and far below where it started', async () => {
    const d = await h.datasets.digits();
    const n = 300;
    const x = h.tensor(d.x.subarray(0, n * 64), [n, 64], 'float64');
    const y = h.tensor(d.y.subarray(0, n), [n], 'float64');
    const model = h.nn.sequential([h.nn.linear(64, 16), h.nn.tanh(), h.nn.linear(16, 10)]);
    using obj = h.objective(model, 'ce', { x, y }, { seed: 1 });
    const r = h.hessianFree(obj, { steps: 8, cgMaxIter: 10 });
    for (let i = 1; i < r.losses.length; i++) expect(r.losses[i]!).toBeLessThanOrEqual(r.losses[i - 1]!);
    expect(r.losses.at(-1)!).toBeLessThan(0.25 * r.losses[0]!);
    expect(obj.loss()).toBe(r.losses.at(-1));
    expect(() => h.hessianFree(obj, { damping: 0 })).toThrowError(/hessianFree: damping must be a finite number > 0, got 0/);
  });
});
