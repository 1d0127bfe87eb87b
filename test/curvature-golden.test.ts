/**
 * Curvature golden values from an independent system: float64 PyTorch references written by
 * test/fixtures/gen_curvature.py (committed JSON in test/fixtures/curvature/, conventions in its
 * README). Per fixture, in float64:
 * - the Gauss–Newton matrix (the explicit SYRK `gaussNewton('dense')` and the product-built
 *   `ggn()`) against G = Jᵀ Hℓ J from PyTorch's full Jacobian and output-space loss Hessian, its
 *   diagonal, and G·v (relative error ≤ 1e-10);
 * - the empirical-Fisher product against F·v from per-sample gradients (≤ 1e-10);
 * - K-FAC's A and B factors of every linear / conv2d layer (≤ 1e-10), and B ⊗ A · v;
 * - Lanczos extreme eigenvalues of the Hessian (3 smallest and 3 largest) and the top 3 of the
 *   GGN against dense eigvalsh (≤ 1e-6 of the spectral radius; a repeated eigenvalue may come
 *   back fewer times than its multiplicity, see extremeError);
 * - the Hutch++ trace of the Hessian with 3·P products, exact up to rounding (≤ 1e-8).
 *
 * HESSE_CURVATURE_FIXTURES=<dir> reads the fixtures from another folder (used to check that every
 * assertion fails on a perturbed copy).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { randn, rng, relError } from './helpers.js';

await h.init();

interface KfacRef {
  layer: number;
  type: 'linear' | 'conv2d';
  d_in: number;
  d_out: number;
  offset: number;
  size: number;
  a: number[];
  b: number[];
}

interface Fixture {
  name: string;
  model: h.nn.LayerSpec[];
  loss: 'mse' | 'ce' | 'bce';
  input_shape: number[];
  x: number[];
  y: number[];
  y_shape: number[];
  params: number[];
  P: number;
  v: number[];
  ggn: number[];
  ggn_diag: number[];
  ggn_eigenvalues: number[];
  ggn_v: number[];
  hessian_eigenvalues: number[];
  hessian_trace: number;
  empirical_fisher: number[];
  fisher_v: number[];
  kfac: KfacRef[];
}

const dir = process.env.HESSE_CURVATURE_FIXTURES
  ? pathToFileURL(process.env.HESSE_CURVATURE_FIXTURES.replace(/\/?$/, '/'))
  : new URL('./fixtures/curvature/', import.meta.url);
const fixtures: Fixture[] = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')));


/** M·v for a row-major n×n M. */
function matvec(m: ArrayLike<number>, v: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += m[i * n + j]! * v[j]!;
    out[i] = s;
  }
  return out;
}

/**
 * How far `got` (ascending Ritz values from one end of the spectrum) is from being the extreme
 * eigenvalues of the reference `ref` (ascending, all P of them, with multiplicity) at that end,
 * or Infinity when it is not. A single Krylov space sees an exactly repeated eigenvalue once in
 * exact arithmetic, but rounding can let it find further copies, so `got` may hold a repeated
 * eigenvalue any number of times up to its multiplicity. Walking from the extreme inward, each
 * value must equal the current eigenvalue (copies left) or the next distinct one: nothing may
 * be skipped and no eigenvalue may appear more often than its multiplicity. Reference
 * eigenvalues within `group` of each other count as one repeated eigenvalue.
 */
function extremeError(got: readonly number[], ref: readonly number[], end: 'smallest' | 'largest', group: number): number {
  const order = end === 'smallest' ? 1 : -1;
  const r = [...ref].sort((a, b) => order * (a - b));
  const g = [...got].sort((a, b) => order * (a - b));
  const groups: { value: number; mult: number }[] = [];
  for (const v of r) {
    const last = groups[groups.length - 1];
    if (last && Math.abs(v - last.value) <= group) last.mult++;
    else groups.push({ value: v, mult: 1 });
  }
  let gi = 0;
  let used = 0;
  let err = 0;
  for (const v of g) {
    const cur = groups[gi]!;
    const next = groups[gi + 1];
    const dCur = Math.abs(v - cur.value);
    const dNext = next ? Math.abs(v - next.value) : Infinity;
    if (used < cur.mult && dCur <= dNext) {
      used++;
      err = Math.max(err, dCur);
    } else if (next && used > 0) {
      gi++;
      used = 1;
      err = Math.max(err, dNext);
    } else return Infinity;
  }
  return err;
}

/** (B ⊗ A)·v on the layer's parameters in hesse's order (W [out, in] row-major, then b): B·W̄·A. */
function kronApply(k: KfacRef, v: ArrayLike<number>): Float64Array {
  const { d_in: di, d_out: o } = k;
  const raw = di - 1;
  const bar = (r: number, c: number) => (c < raw ? v[r * raw + c]! : v[o * raw + r]!);
  const out = new Float64Array(o * di);
  for (let r = 0; r < o; r++)
    for (let c = 0; c < di; c++) {
      let s = 0;
      for (let r2 = 0; r2 < o; r2++) for (let c2 = 0; c2 < di; c2++) s += k.b[r * o + r2]! * bar(r2, c2) * k.a[c2 * di + c]!;
      out[c < raw ? r * raw + c : o * raw + r] = s;
    }
  return out;
}

const LOSS = { mse: 'mse', ce: 'cross_entropy', bce: 'bce_with_logits' } as const;

function build(f: Fixture) {
  const model = h.nn.sequential(f.model);
  expect(model.size).toBe(f.P);
  const x = h.tensor(Float64Array.from(f.x), f.input_shape, 'float64');
  const y = h.tensor(Float64Array.from(f.y), f.y_shape, 'float64');
  const obj = h.objective(model, LOSS[f.loss], { x, y }, { params: Float64Array.from(f.params) });
  return {
    obj,
    [Symbol.dispose]() {
      obj.dispose();
      x.dispose();
      y.dispose();
    },
  };
}

it('has fixtures', () => expect(fixtures.length).toBeGreaterThanOrEqual(5));

describe.each(fixtures.map((f) => [f.name, f] as const))('%s against PyTorch float64', (_, f) => {
  const P = f.P;

  it('Gauss–Newton: gaussNewton(dense) and ggn() equal Jᵀ Hℓ J', () => {
    using c = build(f);
    expect(relError(c.obj.gaussNewton('dense'), f.ggn)).toBeLessThanOrEqual(1e-10);
    expect(relError(c.obj.ggn(), f.ggn)).toBeLessThanOrEqual(1e-10);
  });

  it("Gauss–Newton: gaussNewton('diagonal') and ggnvp", () => {
    using c = build(f);
    expect(relError(c.obj.gaussNewton('diagonal'), f.ggn_diag)).toBeLessThanOrEqual(1e-10);
    expect(relError(c.obj.ggnvp(Float64Array.from(f.v)), f.ggn_v)).toBeLessThanOrEqual(1e-10);
  });

  it('empirical Fisher: fisherVp equals F·v from per-sample gradients', () => {
    using c = build(f);
    const v = Float64Array.from(randn(rng(P), P));
    expect(relError(c.obj.fisherVp(v), matvec(f.empirical_fisher, v, P))).toBeLessThanOrEqual(1e-10);
    expect(relError(c.obj.fisherVp(Float64Array.from(f.v)), f.fisher_v)).toBeLessThanOrEqual(1e-10);
  });

  it('K-FAC: A and B of every linear / conv2d layer', () => {
    using c = build(f);
    using kfac = c.obj.kfac();
    expect(kfac.layers.map((l) => l.layer)).toEqual(f.kfac.map((k) => k.layer));
    const v = Float64Array.from(randn(rng(P + 1), P));
    const mvp = kfac.mvp(v);
    for (const [i, k] of f.kfac.entries()) {
      const l = kfac.layers[i]!;
      expect([l.dIn, l.dOut, l.hasBias, l.offset, l.size]).toEqual([k.d_in, k.d_out, true, k.offset, k.size]);
      expect(relError(l.a, k.a), `layer ${k.layer} A`).toBeLessThanOrEqual(1e-10);
      expect(relError(l.b, k.b), `layer ${k.layer} B`).toBeLessThanOrEqual(1e-10);
      const want = kronApply(k, v.subarray(k.offset, k.offset + k.size));
      expect(relError(mvp.subarray(k.offset, k.offset + k.size), want), `layer ${k.layer} (B ⊗ A)·v`).toBeLessThanOrEqual(1e-10);
    }
  });

  it('Lanczos: the 3 smallest and 3 largest Hessian eigenvalues', () => {
    using c = build(f);
    const ref = f.hessian_eigenvalues;
    const radius = Math.max(Math.abs(ref[0]!), Math.abs(ref[ref.length - 1]!));
    const r = h.eigenvalues(c.obj.operator('hessian'), 6, { which: 'both', tol: 1e-10 });
    expect(r.converged).toBe(true);
    const got = Array.from(r.values);
    const err = Math.max(extremeError(got.slice(0, 3), ref, 'smallest', 1e-9 * radius), extremeError(got.slice(3), ref, 'largest', 1e-9 * radius));
    expect(err / radius, `got ${got}, want ${ref.slice(0, 3)} … ${ref.slice(-3)}`).toBeLessThanOrEqual(1e-6);
  });

  it('Lanczos: the 3 largest GGN eigenvalues', () => {
    using c = build(f);
    const ref = f.ggn_eigenvalues;
    const radius = Math.max(Math.abs(ref[0]!), Math.abs(ref[ref.length - 1]!));
    const r = h.eigenvalues(c.obj.operator('ggn'), 3, { tol: 1e-10 });
    expect(r.converged).toBe(true);
    const got = Array.from(r.values);
    const err = extremeError(got, ref, 'largest', 1e-9 * radius);
    expect(err / radius, `got ${got}, want ${ref.slice(-3).reverse()}`).toBeLessThanOrEqual(1e-6);
  });

  it('Hutch++ trace of the Hessian with 3·P products is exact', () => {
    using c = build(f);
    const r = h.trace(c.obj.operator('hessian'), { method: 'hutch++', samples: 3 * P, seed: 7 });
    expect(r.products).toBeLessThanOrEqual(3 * P);
    expect(relError([r.trace], [f.hessian_trace])).toBeLessThanOrEqual(1e-8);
  });
});
