/**
 * Trust in the curvature API: every count, size, enum and vector an estimator, objective, K-FAC,
 * Laplace, Hessian-free or nn call takes is checked in the user's terms (the exact HesseError code
 * and a message naming the call, the option and the value given, never a wrapped u32), and each
 * object keeps working afterwards: every bad call is followed by a good call on the same object
 * that returns the right value (against finite differences, exact traces of diagonal matrices,
 * dense eigendecompositions, or the value the same call gave before the error).
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { expectClose, randn, rng } from './helpers.js';

await h.init();

/** Asserts `f` throws a HesseError with `code` and a message matching `message`, in the user's terms. */
function rejects(f: () => unknown, code: h.HesseErrorCode, message: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected a HesseError ${code} matching ${message}`).toBeInstanceOf(h.HesseError);
  const e = err as h.HesseError;
  expect(e.code, e.message).toBe(code);
  expect(e.message).toMatch(message);
  expect(e.message).not.toMatch(/4294967295|4294967246/); // −1 and −50 as wrapped u32s
}

const f64 = (v: ArrayLike<number>, shape: number[]) => h.tensor(Float64Array.from(v), shape, 'float64');
const model = h.nn.sequential([h.nn.linear(3, 4), h.nn.tanh(), h.nn.linear(4, 2)]); // P = 26

function setup(seed: number) {
  const r = rng(seed);
  const x = f64(randn(r, 5 * 3), [5, 3]);
  const y = f64(randn(r, 5 * 2), [5, 2]);
  const obj = h.objective(model, 'mse', { x, y }, { params: Float64Array.from(randn(r, model.size)) });
  const v = Float64Array.from(randn(r, model.size));
  return { r, x, y, obj, v };
}

/** (∇L(θ + εv) − ∇L(θ − εv)) / 2ε, the central-difference H·v. */
function fdHvp(obj: h.Objective, v: ArrayLike<number>, eps = 1e-5): Float64Array {
  const p = obj.params;
  const gp = obj.grad(Float64Array.from(p, (t, i) => t + eps * v[i]!));
  const gm = obj.grad(Float64Array.from(p, (t, i) => t - eps * v[i]!));
  return Float64Array.from(gp, (g, i) => (g - gm[i]!) / (2 * eps));
}

/** A dense symmetric operator with eigenvalues `lambda`: Q·diag(λ)·Qᵀ, Q a Householder reflection. */
function denseWith(lambda: number[], seed: number): h.DenseMatrix {
  const n = lambda.length;
  const u = randn(rng(seed), n);
  const nu = Math.hypot(...u);
  const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * u[i]! * u[j]!) / (nu * nu);
  const data = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) data[i * n + j]! += q(i, k) * lambda[k]! * q(j, k);
  return { size: n, data };
}

const diag = (d: number[]): h.LinearOperator => ({ size: d.length, matvec: (v) => Float64Array.from(v, (x, i) => d[i]! * x) });

describe('estimators and solvers check their options, and keep working', () => {
  const lambda = [5, 4, 3, 2, 1, 0.5];
  const A = denseWith(lambda, 1);

  it('eigenvalues: k in [1, n], which, tol, maxIter, seed, the dense data', () => {
    rejects(() => h.eigenvalues(A, 0), 'INVALID_ARGUMENT', /^eigenvalues: k must be an integer in \[1, 6\], got 0$/);
    rejects(() => h.eigenvalues(A, -1), 'INVALID_ARGUMENT', /eigenvalues: k must be an integer in \[1, 6\], got -1/);
    rejects(() => h.eigenvalues(A, 7), 'INVALID_ARGUMENT', /eigenvalues: k must be an integer in \[1, 6\], got 7/);
    rejects(() => h.eigenvalues(A, 2.5), 'INVALID_ARGUMENT', /got 2\.5/);
    rejects(() => h.eigenvalues(A, 2, { which: 'top' as never }), 'INVALID_ARGUMENT', /eigenvalues: which must be one of 'largest', 'smallest', 'both', got 'top'/);
    rejects(() => h.eigenvalues(A, 2, { tol: -1 }), 'INVALID_ARGUMENT', /eigenvalues: tol must be a finite number ≥ 0, got -1/);
    rejects(() => h.eigenvalues(A, 2, { tol: NaN }), 'INVALID_ARGUMENT', /eigenvalues: tol/);
    rejects(() => h.eigenvalues(A, 3, { maxIter: 2 }), 'INVALID_ARGUMENT', /eigenvalues: maxIter \(k = 3\) must be an integer ≥ 3, got 2/);
    rejects(() => h.eigenvalues(A, 2, { maxIter: -1 }), 'INVALID_ARGUMENT', /maxIter .* got -1/);
    rejects(() => h.eigenvalues(A, 2, { seed: -1 }), 'INVALID_ARGUMENT', /eigenvalues: seed must be an integer ≥ 0, got -1/);
    rejects(() => h.eigenvalues(A, 2, { seed: 0.5 }), 'INVALID_ARGUMENT', /eigenvalues: seed/);
    rejects(() => h.eigenvalues({ size: 3, data: [1, 2, 3] }, 1), 'LENGTH_MISMATCH', /eigenvalues: the dense matrix's data: expected 9 values, got 3/);
    rejects(() => h.eigenvalues({ size: -2, data: [] }, 1), 'INVALID_ARGUMENT', /eigenvalues: the operator's size must be an integer ≥ 0, got -2/);
    rejects(() => h.eigenvalues({ size: 2 } as never, 1), 'INVALID_ARGUMENT', /eigenvalues: the operator has no matvec/);
    rejects(() => h.eigenvalues(A, 2, { maxiter: 10 } as never), 'INVALID_ARGUMENT', /^eigenvalues: unknown option 'maxiter'; the options are which, tol, maxIter, seed, vectors, checkSymmetry, onProgress$/);
    rejects(() => h.eigenvalues(A, 2, { vectors: 1 } as never), 'INVALID_ARGUMENT', /eigenvalues: vectors must be true or false, got 1/);
    rejects(() => h.eigenvalues(A, 2, null as never), 'INVALID_ARGUMENT', /eigenvalues takes an options object/);
    const top = h.eigenvalues(A, 2, { which: 'largest', vectors: true });
    expectClose(top.values, [5, 4], 1e-10);
    expect(top.vectors.length).toBe(2 * 6);
    const bottom = h.eigenvalues(A, 2, { which: 'smallest' });
    expectClose(bottom.values, [0.5, 1], 1e-10);
    expect('vectors' in bottom).toBe(false);
  });

  it('powerIteration, trace, diagonal, spectralDensity: counts, methods and seeds', () => {
    const d = [3, -7, 1, 2, 0.5];
    const D = diag(d);
    rejects(() => h.powerIteration(D, 6), 'INVALID_ARGUMENT', /powerIteration: k must be an integer in \[1, 5\], got 6/);
    rejects(() => h.powerIteration(D, 1, { maxIter: 0 }), 'INVALID_ARGUMENT', /powerIteration: maxIter must be an integer ≥ 1, got 0/);
    rejects(() => h.powerIteration(D, 1, { tol: -1e-3 }), 'INVALID_ARGUMENT', /powerIteration: tol/);
    const pw = h.powerIteration(D, 1, { maxIter: 5000, tol: 1e-12 });
    expectClose(pw.values, [-7], 1e-6);

    rejects(() => h.trace(D, { method: 'hutch' as never }), 'INVALID_ARGUMENT', /trace: method must be one of 'hutchinson', 'hutch\+\+', got 'hutch'/);
    rejects(() => h.trace(D, { method: 'hutch++', samples: 2 }), 'INVALID_ARGUMENT', /trace: samples \(method 'hutch\+\+'\) must be an integer ≥ 3, got 2/);
    rejects(() => h.trace(D, { method: 'hutchinson', samples: -1 }), 'INVALID_ARGUMENT', /trace: samples \(method 'hutchinson'\) must be an integer ≥ 1, got -1/);
    rejects(() => h.trace(D, { seed: -5 }), 'INVALID_ARGUMENT', /trace: seed must be an integer ≥ 0, got -5/);
    rejects(() => h.trace(D, { probes: 5 } as never), 'INVALID_ARGUMENT', /trace: unknown option 'probes'; the options are method, samples, seed/);
    rejects(() => h.powerIteration(D, 1, { iters: 5 } as never), 'INVALID_ARGUMENT', /powerIteration: unknown option 'iters'/);
    rejects(() => h.diagonal(D, { sample: 5 } as never), 'INVALID_ARGUMENT', /diagonal: unknown option 'sample'/);
    rejects(() => h.spectralDensity(D, { grid: 5 } as never), 'INVALID_ARGUMENT', /spectralDensity: unknown option 'grid'/);
    // Rademacher probes give zᵀDz = tr(D) exactly for a diagonal D.
    expect(h.trace(D, { method: 'hutchinson', samples: 3, seed: 4 }).trace).toBeCloseTo(-0.5, 12);

    rejects(() => h.diagonal(D, { samples: 0 }), 'INVALID_ARGUMENT', /diagonal: samples must be an integer ≥ 1, got 0/);
    rejects(() => h.diagonal(D, { samples: 1.5 }), 'INVALID_ARGUMENT', /diagonal: samples/);
    expectClose(h.diagonal(D, { samples: 2 }).diagonal, d, 1e-14);

    rejects(() => h.spectralDensity(D, { probes: 0 }), 'INVALID_ARGUMENT', /spectralDensity: probes must be an integer ≥ 1, got 0/);
    rejects(() => h.spectralDensity(D, { steps: -1 }), 'INVALID_ARGUMENT', /spectralDensity: steps must be an integer ≥ 1, got -1/);
    rejects(() => h.spectralDensity(D, { gridPoints: 1 }), 'INVALID_ARGUMENT', /spectralDensity: gridPoints must be an integer ≥ 2, got 1/);
    rejects(() => h.spectralDensity(D, { sigma: 0 }), 'INVALID_ARGUMENT', /spectralDensity: sigma must be a finite number > 0, got 0/);
    const sd = h.spectralDensity(D, { probes: 2, steps: 5, gridPoints: 50 });
    expect(sd.grid.length).toBe(50);
    // The first moment Σ wⱼθⱼ = mean of zᵀDz/‖z‖² = tr(D)/n exactly for Rademacher z.
    expect(sd.nodes.reduce((s, t, j) => s + t * sd.weights[j]!, 0)).toBeCloseTo(-0.5 / 5, 12);
  });

  it('cg and minres: b and x0 of length n in either precision, damping, tolerances, counts', () => {
    const b = Float64Array.from([1, -2, 0.5, 3, 1, -1]);
    rejects(() => h.cg(A, new Float64Array(5)), 'LENGTH_MISMATCH', /^cg: b: expected 6 values, got 5$/);
    rejects(() => h.cg(A, b, { x0: new Float32Array(7) }), 'LENGTH_MISMATCH', /cg: x0: expected 6 values, got 7/);
    rejects(() => h.cg(A, 'b' as never), 'INVALID_ARGUMENT', /cg: b must be a Float32Array or Float64Array of 6 values, got 'b'/);
    rejects(() => h.cg(A, b, { damping: -0.1 }), 'INVALID_ARGUMENT', /cg: damping must be a finite number ≥ 0, got -0\.1/);
    rejects(() => h.cg(A, b, { rtol: -1 }), 'INVALID_ARGUMENT', /cg: rtol/);
    rejects(() => h.cg(A, b, { atol: Infinity }), 'INVALID_ARGUMENT', /cg: atol must be a finite number ≥ 0, got Infinity/);
    rejects(() => h.cg(A, b, { maxIter: -1 }), 'INVALID_ARGUMENT', /cg: maxIter must be an integer ≥ 0, got -1/);
    rejects(() => h.cg(A, b, { minIter: 0.5 }), 'INVALID_ARGUMENT', /cg: minIter/);
    rejects(() => h.cg(A, b, { lambda: 1 } as never), 'INVALID_ARGUMENT', /cg: unknown option 'lambda'; the options are damping, x0, rtol, atol, maxIter, minIter/);
    rejects(() => h.minres(A, b, { sigma: 1 } as never), 'INVALID_ARGUMENT', /minres: unknown option 'sigma'/);
    // The solution of (A + λI)x = b, b given in float32 and float64 alike.
    const check = (x: Float64Array, rhs: ArrayLike<number>, shift: number) => {
      const ax = new Float64Array(6);
      for (let i = 0; i < 6; i++) for (let j = 0; j < 6; j++) ax[i]! += (A.data[i * 6 + j] as number) * x[j]!;
      expectClose(ax.map((v, i) => v + shift * x[i]!), rhs, 1e-6, 1e-7);
    };
    check(h.cg(A, b, { damping: 0.2, rtol: 1e-12 }).x, b, 0.2);
    const b32 = Float32Array.from(b);
    check(h.cg(A, b32, { rtol: 1e-12, x0: new Float32Array(6) }).x, b32, 0);

    rejects(() => h.minres(A, new Float32Array(2)), 'LENGTH_MISMATCH', /minres: b: expected 6 values, got 2/);
    rejects(() => h.minres(A, b, { shift: NaN }), 'INVALID_ARGUMENT', /minres: shift must be a finite number, got NaN/);
    rejects(() => h.minres(A, b, { maxIter: -3 }), 'INVALID_ARGUMENT', /minres: maxIter must be an integer ≥ 0, got -3/);
    check(h.minres(A, b32, { shift: -0.25, rtol: 1e-12 }).x, b32, -0.25);
  });

  it('eigh: n and a of length n²', () => {
    rejects(() => h.eigh([1, 2, 2], 2), 'LENGTH_MISMATCH', /eigh: a \(2×2\): expected 4 values, got 3/);
    rejects(() => h.eigh([1], -1), 'INVALID_ARGUMENT', /eigh: n must be an integer ≥ 0, got -1/);
    expectClose(h.eigh(A.data as Float64Array, 6).values, [...lambda].reverse(), 1e-12, 1e-13);
  });
});

describe('objective checks its arguments and keeps working', () => {
  it('hvp/ggnvp/hvps: vectors of length P (or k·P) in either precision, k ≥ 1', () => {
    const { r, obj, v } = setup(2);
    const ref = obj.hvp(v);
    expectClose(ref, fdHvp(obj, v), 1e-6, 1e-9);
    const P = model.size;
    rejects(() => obj.hvp(new Float64Array(P - 1)), 'LENGTH_MISMATCH', new RegExp(`^hvp: v: expected ${P} values, got ${P - 1}$`));
    expect(obj.hvp(v)).toEqual(ref);
    rejects(() => obj.hvp(v, new Float64Array(3)), 'LENGTH_MISMATCH', new RegExp(`at \\(the parameters\\): expected ${P} values, got 3`));
    expect(obj.hvp(v)).toEqual(ref);
    rejects(() => obj.ggnvp(new Float32Array(P + 2)), 'LENGTH_MISMATCH', new RegExp(`ggnvp: v: expected ${P} values, got ${P + 2}`));
    // Float32 directions are converted for a float64 objective.
    const v32 = Float32Array.from(v);
    expect(obj.hvp(v32)).toEqual(obj.hvp(Float64Array.from(v32)));

    const V = Float64Array.from(randn(r, 3 * P));
    rejects(() => obj.hvps(V, 0), 'INVALID_ARGUMENT', /hvps: k must be an integer ≥ 1, got 0/);
    rejects(() => obj.hvps(V, -1), 'INVALID_ARGUMENT', /hvps: k must be an integer ≥ 1, got -1/);
    rejects(() => obj.hvps(V, 1.5), 'INVALID_ARGUMENT', /hvps: k must be an integer ≥ 1, got 1\.5/);
    rejects(() => obj.hvps(V, 2), 'LENGTH_MISMATCH', new RegExp(`hvps: vs \\(k·size = 2·${P}\\): expected ${2 * P} values, got ${3 * P}`));
    const HV = obj.hvps(V, 3);
    for (let i = 0; i < 3; i++) expectClose(HV.subarray(i * P, (i + 1) * P), obj.hvp(V.subarray(i * P, (i + 1) * P)), 1e-12, 1e-14);
    obj.dispose();
  });

  it('curvature names: hessian | ggn | fisher | { mcFisher: { samples ≥ 1, seed ≥ 0 } }', () => {
    const { obj, v } = setup(3);
    const ggn = obj.ggnvp(v);
    rejects(() => obj.curvatureProducts('hesian' as never, v, 1), 'INVALID_ARGUMENT', /curvatureProducts: curvature \(or \{ mcFisher: \{ samples, seed \} \}\) must be one of 'hessian', 'ggn', 'fisher', got 'hesian'/);
    rejects(() => obj.curvatureProducts('mc-fisher' as never, v, 1), 'INVALID_ARGUMENT', /got 'mc-fisher'/);
    rejects(() => obj.operator({ mcFisher: { samples: -1 } }), 'INVALID_ARGUMENT', /operator: mcFisher.samples must be an integer ≥ 1, got -1/);
    rejects(() => obj.operator({ mcFisher: { samples: 2, seed: -3 } }), 'INVALID_ARGUMENT', /operator: mcFisher.seed must be an integer ≥ 0, got -3/);
    rejects(() => obj.operator({ mcFisher: null } as never), 'INVALID_ARGUMENT', /operator: mcFisher must be \{ samples, seed\? \}/);
    rejects(() => obj.operator(null as never), 'INVALID_ARGUMENT', /operator: curvature/);
    rejects(() => obj.operator({ mcFisher: { samples: 2, seeds: 1 } } as never), 'INVALID_ARGUMENT', /operator: mcFisher: unknown option 'seeds'; the options are samples, seed/);
    rejects(() => obj.operator({ mcFisher: { samples: 2 }, ggn: true } as never), 'INVALID_ARGUMENT', /operator: curvature: unknown option 'ggn'/);
    rejects(() => obj.hessian({ chunks: 4 } as never), 'INVALID_ARGUMENT', /dense: unknown option 'chunks'; the options are maxBytes, chunk, onProgress/);
    rejects(() => obj.dense('fisher', { chunk: 0 }), 'INVALID_ARGUMENT', /dense: chunk must be an integer ≥ 1, got 0/);
    rejects(() => obj.hessian({ maxBytes: -1 }), 'INVALID_ARGUMENT', /dense: maxBytes must be a finite number > 0, got -1/);
    rejects(() => obj.hessian({ maxBytes: NaN }), 'INVALID_ARGUMENT', /dense: maxBytes must be a finite number > 0, got NaN/);
    expect(obj.hessian({ maxBytes: Infinity })).toEqual(obj.hessian()); // Infinity: no limit
    expect(obj.curvatureProducts('ggn', v, 1)).toEqual(ggn);
    // The operator's Lanczos agrees with the dense GGN built column by column.
    const G = obj.ggn({ chunk: 7 });
    const top = h.eigenvalues(obj.operator('ggn'), 2);
    expectClose(top.values, h.eigh(G, model.size).values.slice(-2).reverse(), 1e-8);
    obj.dispose();
  });

  it('gaussNewton: part, chunk, maxBytes, monteCarlo, accumulate', () => {
    const { obj } = setup(4);
    const exact = obj.gaussNewton('diagonal');
    rejects(() => obj.gaussNewton('full' as never), 'INVALID_ARGUMENT', /gaussNewton: part must be one of 'dense', 'diagonal', 'layers', got 'full'/);
    rejects(() => obj.gaussNewton('dense', { chunk: -2 }), 'INVALID_ARGUMENT', /gaussNewton\('dense'\): chunk must be an integer ≥ 1, got -2/);
    rejects(() => obj.gaussNewton('dense', { maxBytes: 0 }), 'INVALID_ARGUMENT', /gaussNewton\('dense'\): maxBytes must be a finite number > 0, got 0/);
    rejects(() => obj.gaussNewton('diagonal', { monteCarlo: { samples: 0 } }), 'INVALID_ARGUMENT', /gaussNewton\('diagonal'\): monteCarlo.samples must be an integer ≥ 1, got 0/);
    rejects(() => obj.gaussNewton('diagonal', { monteCarlo: { samples: 2, seed: 1.5 } }), 'INVALID_ARGUMENT', /monteCarlo.seed must be an integer ≥ 0, got 1\.5/);
    rejects(() => obj.gaussNewton('diagonal', { accumulate: 'f32' as never }), 'INVALID_ARGUMENT', /accumulate must be one of 'f64', got 'f32'/);
    rejects(() => obj.gaussNewton('dense', { maxBytes: 100 }), 'OUT_OF_MEMORY', /over the limit/);
    rejects(() => obj.gaussNewton('dense', { mc: { samples: 2 } } as never), 'INVALID_ARGUMENT', /gaussNewton\('dense'\): unknown option 'mc'; the options are maxBytes, chunk, monteCarlo, accumulate/);
    rejects(() => obj.gaussNewton('dense', { monteCarlo: { sample: 2 } } as never), 'INVALID_ARGUMENT', /gaussNewton\('dense'\): monteCarlo: unknown option 'sample'/);
    expect(obj.gaussNewton('diagonal')).toEqual(exact);
    // Its diagonal is that of the dense GGN from products.
    const G = obj.ggn();
    expectClose(exact, Array.from({ length: model.size }, (_, i) => G[i * model.size + i]!), 1e-10, 1e-14);
    obj.dispose();
  });

  it('kfac: variant, samples, seed; K-FAC vectors of length P', () => {
    const { obj, v } = setup(5);
    rejects(() => obj.kfac({ variant: 'MC' as never }), 'INVALID_ARGUMENT', /kfac: variant must be one of 'exact', 'mc', got 'MC'/);
    rejects(() => obj.kfac({ variant: 'mc', samples: 0 }), 'INVALID_ARGUMENT', /kfac: samples must be an integer ≥ 1, got 0/);
    rejects(() => obj.kfac({ variant: 'mc', seed: -1 }), 'INVALID_ARGUMENT', /kfac: seed must be an integer ≥ 0, got -1/);
    rejects(() => obj.kfac({ kind: 'mc' } as never), 'INVALID_ARGUMENT', /kfac: unknown option 'kind'; the options are variant, samples, seed/);
    using k = obj.kfac();
    const kv = k.mvp(v);
    rejects(() => k.mvp(new Float64Array(4)), 'LENGTH_MISMATCH', new RegExp(`Kfac.mvp: v: expected ${model.size} values, got 4`));
    rejects(() => k.inverseApply(v, -1), 'INVALID_ARGUMENT', /Kfac.inverseApply: damping must be a finite number > 0, got -1/);
    rejects(() => k.inverseApply(new Float32Array(1), 1), 'LENGTH_MISMATCH', /Kfac.inverseApply: v: expected 26 values, got 1/);
    expect(k.mvp(v)).toEqual(kv);
    // Float32 vectors are accepted; (B ⊗ A + λI)⁻¹ inverts B ⊗ A + λI.
    const z = k.inverseApply(Float32Array.from(kv), 0.5);
    expectClose(k.mvp(z).map((a, i) => a + 0.5 * z[i]!), Float32Array.from(kv), 1e-9, 1e-12);
    k.dispose();
    rejects(() => k.mvp(v), 'DISPOSED', /Kfac.mvp: the K-FAC factors were used after dispose\(\)/);
    obj.dispose();
  });

  it('construction: loss, wrt, seed, params; setData and params assignment leave it as it was', () => {
    const { r, x, y, obj, v } = setup(6);
    rejects(() => h.objective(model, 'constructor' as never, { x, y }), 'INVALID_ARGUMENT', /objective: loss must be one of 'mse', .*got 'constructor'/);
    rejects(() => h.objective(model, 'mse', { x, y }, { wrt: 'inputs' as never }), 'INVALID_ARGUMENT', /objective: wrt must be one of 'params', 'input', got 'inputs'/);
    rejects(() => h.objective(model, 'mse', { x, y }, { seed: -1 }), 'INVALID_ARGUMENT', /objective: seed must be an integer ≥ 0, got -1/);
    rejects(() => h.objective(model, 'mse', { x, y }, { params: new Float64Array(5) }), 'LENGTH_MISMATCH', /params: expected 26 values, got 5/);
    rejects(() => h.objective(model, 'mse', { x, y }, { param: new Float64Array(26) } as never), 'INVALID_ARGUMENT', /objective: unknown option 'param'; the options are params, seed, wrt, checkFinite/);
    rejects(() => h.objective(model, 'mse', { x, y }, { checkFinite: 'yes' } as never), 'INVALID_ARGUMENT', /objective: checkFinite must be true or false, got 'yes'/);
    const loss = obj.loss();
    const p = obj.params;
    rejects(() => (obj.params = new Float64Array(2)), 'LENGTH_MISMATCH', /params: expected 26 values, got 2/);
    expect(obj.params).toBe(p);
    const y32 = h.tensor(Float32Array.from(randn(r, 10)), [5, 2]);
    rejects(() => obj.setData({ x, y: y32 as never }), 'DTYPE_MISMATCH', /setData: y is float32 but this objective is float64/);
    expect(obj.loss()).toBe(loss);
    // A float32 objective takes float64 directions and points, converted.
    using o32 = h.objective(model, 'mse', { x: h.tensor(Float32Array.from(x.toArray()), [5, 3]), y: y32 }, { params: obj.params });
    expect(o32.params).toBeInstanceOf(Float32Array);
    expect(o32.hvp(v)).toEqual(o32.hvp(Float32Array.from(v)));
    expect(o32.loss(obj.params)).toBe(o32.loss());
    obj.dispose();
  });
});

describe('laplace and hessianFree check their options', () => {
  it("laplace: priorPrecision > 0, subset 'all' | 'last-layer' (no silent default)", () => {
    const { obj } = setup(7);
    rejects(() => h.laplace(obj, { subset: 'lastlayer' as never }), 'INVALID_ARGUMENT', /laplace: subset must be one of 'all', 'last-layer', got 'lastlayer'/);
    rejects(() => h.laplace(obj, { priorPrecision: -1 }), 'INVALID_ARGUMENT', /laplace: priorPrecision must be a finite number > 0, got -1/);
    rejects(() => h.laplace(obj, { priorPrecision: Infinity }), 'INVALID_ARGUMENT', /got Infinity/);
    rejects(() => h.laplace(obj, { prior: 2 } as never), 'INVALID_ARGUMENT', /laplace: unknown option 'prior'; the options are priorPrecision, subset/);
    const post = h.laplace(obj, { subset: 'last-layer', priorPrecision: 2 });
    expect([post.offset, post.size]).toEqual([16, 10]);
    const block = obj.gaussNewton('layers')['2']!;
    expectClose(post.precision, Array.from(block, (g, i) => 5 * g + (i % 11 === 0 ? 2 : 0)), 1e-12, 1e-14);
    rejects(() => post.predict(h.tensor(new Float32Array(3), [1, 3])), 'DTYPE_MISMATCH', /laplace predict: x is float32 but the objective is float64/);
    expect(post.predict(f64([0.1, 0.2, 0.3], [1, 3])).variance.length).toBe(2);
    obj.dispose();
  });

  it('hessianFree: steps, damping, curvature, cgMaxIter, cgRtol, warmStart, before any step', () => {
    const { obj } = setup(8);
    const p0 = obj.params.slice();
    rejects(() => h.hessianFree(obj, { steps: -1 }), 'INVALID_ARGUMENT', /hessianFree: steps must be an integer ≥ 0, got -1/);
    rejects(() => h.hessianFree(obj, { damping: -2 }), 'INVALID_ARGUMENT', /hessianFree: damping must be a finite number > 0, got -2/);
    rejects(() => h.hessianFree(obj, { curvature: 'gnn' as never }), 'INVALID_ARGUMENT', /operator: curvature .*got 'gnn'/);
    rejects(() => h.hessianFree(obj, { cgMaxIter: 0 }), 'INVALID_ARGUMENT', /hessianFree: cgMaxIter must be an integer ≥ 1, got 0/);
    rejects(() => h.hessianFree(obj, { cgRtol: -1 }), 'INVALID_ARGUMENT', /hessianFree: cgRtol/);
    rejects(() => h.hessianFree(obj, { warmStart: NaN }), 'INVALID_ARGUMENT', /hessianFree: warmStart/);
    rejects(() => h.hessianFree(obj, { iterations: 3 } as never), 'INVALID_ARGUMENT', /hessianFree: unknown option 'iterations'/);
    expect(obj.params).toEqual(p0);
    const res = h.hessianFree(obj, { steps: 3 });
    expect(res.losses.at(-1)!).toBeLessThan(res.losses[0]!);
    expect(obj.loss()).toBe(res.losses.at(-1));
    obj.dispose();
  });
});

describe('nn layer sizes are non-negative safe integers, reported in the user’s terms', () => {
  it('rejects bad sizes, kernels, strides, padding and parameters, then builds a good model', () => {
    rejects(() => h.nn.linear(-51, 3), 'INVALID_ARGUMENT', /^nn\.linear: in must be an integer ≥ 1, got -51$/);
    rejects(() => h.nn.linear(3, 2.5), 'INVALID_ARGUMENT', /nn\.linear: out must be an integer ≥ 1, got 2\.5/);
    rejects(() => h.nn.linear(3, 2 ** 32 + 1), 'INVALID_ARGUMENT', /nn\.linear: out = 4294967297 is beyond the 32-bit sizes/);
    rejects(() => h.nn.linear(3, 2, { bias: 'yes' as never }), 'INVALID_ARGUMENT', /nn\.linear: bias must be true or false/);
    rejects(() => h.nn.conv2d(1, 2, 0), 'INVALID_ARGUMENT', /nn\.conv2d: kernel must be an integer ≥ 1, got 0/);
    rejects(() => h.nn.conv2d(1, 2, [3] as never), 'INVALID_ARGUMENT', /nn\.conv2d: kernel must be a number or a pair \[height, width\], got \[3\]/);
    rejects(() => h.nn.conv2d(1, 2, [3, -1]), 'INVALID_ARGUMENT', /nn\.conv2d: kernel\[1\] must be an integer ≥ 1, got -1/);
    rejects(() => h.nn.conv2d(1, 2, 3, { stride: 0 }), 'INVALID_ARGUMENT', /nn\.conv2d: stride must be an integer ≥ 1, got 0/);
    rejects(() => h.nn.conv2d(1, 2, 3, { padding: -1 }), 'INVALID_ARGUMENT', /nn\.conv2d: padding must be an integer ≥ 0, got -1/);
    rejects(() => h.nn.conv2d(1, 2, 3, { padding: [1, 2 ** 32] }), 'INVALID_ARGUMENT', /nn\.conv2d: padding\[1\] = 4294967296 is beyond/);
    rejects(() => h.nn.layerNorm(0), 'INVALID_ARGUMENT', /nn\.layerNorm: dim must be an integer ≥ 1, got 0/);
    rejects(() => h.nn.layerNorm(4, { eps: 0 }), 'INVALID_ARGUMENT', /nn\.layerNorm: eps must be a finite number > 0, got 0/);
    rejects(() => h.nn.leakyRelu(NaN), 'INVALID_ARGUMENT', /nn\.leakyRelu: slope must be a finite number, got NaN/);
    rejects(() => h.nn.elu(Infinity), 'INVALID_ARGUMENT', /nn\.elu: alpha/);
    rejects(() => h.nn.gelu({ approximate: 'fast' as never }), 'INVALID_ARGUMENT', /nn\.gelu: approximate must be one of 'none', 'tanh', got 'fast'/);
    // Hand-written specs get the same checks, naming the layer.
    rejects(() => h.nn.sequential([{ type: 'lineer' } as never]), 'INVALID_ARGUMENT', /nn\.sequential: layer 0 \(lineer\): type must be one of 'linear', .*got 'lineer'/);
    rejects(() => h.nn.sequential([h.nn.relu(), { type: 'linear', in: 4, out: -1 }]), 'INVALID_ARGUMENT', /nn\.sequential: layer 1 \(linear\): out must be an integer ≥ 1, got -1/);
    rejects(() => h.nn.sequential([{ type: 'conv2d', in: 1, out: 1, kernel: 2, stride: -50 }]), 'INVALID_ARGUMENT', /layer 0 \(conv2d\): stride must be an integer ≥ 1, got -50/);
    rejects(() => h.nn.sequential('linear' as never), 'INVALID_ARGUMENT', /nn\.sequential: expected an array of layers/);
    rejects(() => model.init({ seed: -1 }), 'INVALID_ARGUMENT', /init: seed must be an integer ≥ 0, got -1/);
    rejects(() => model.init({ dtype: 'float16' as never }), 'UNKNOWN_DTYPE', /init: unknown dtype 'float16': use 'float32' or 'float64'/);
    rejects(() => h.nn.linear(3, 2, { biass: false } as never), 'INVALID_ARGUMENT', /^nn\.linear: unknown option 'biass'; the options are bias$/);
    rejects(() => h.nn.conv2d(1, 2, 3, { pad: 1 } as never), 'INVALID_ARGUMENT', /nn\.conv2d: unknown option 'pad'; the options are stride, padding, dilation, groups, bias/);
    rejects(() => h.nn.layerNorm(4, { epsilon: 1e-6 } as never), 'INVALID_ARGUMENT', /nn\.layerNorm: unknown option 'epsilon'/);
    rejects(() => h.nn.sequential([{ type: 'linear', in: 2, out: 2, biases: false } as never]), 'INVALID_ARGUMENT', /nn\.sequential: layer 0 \(linear\): unknown option 'biases'; the options are type, in, out, bias/);
    rejects(() => model.init({ seeds: 1 } as never), 'INVALID_ARGUMENT', /init: unknown option 'seeds'/);
    rejects(() => h.nn.sequential([{ type: 'softplus', beta: 2 }]), 'UNSUPPORTED_OP', /nn\.sequential: layer 0 \(softplus\): beta = 2 is not supported; hesse's Softplus is PyTorch's default \(beta 1, threshold 20\)/);
    expect(h.nn.sequential([{ type: 'softplus', beta: 1, threshold: 20 }]).layers).toEqual([{ type: 'softplus' }]); // PyTorch's defaults, as its exporters write them
    rejects(() => h.nn.sequential([h.nn.linear(2 ** 20, 2 ** 11)]).init(), 'OUT_OF_MEMORY', /init: P = 2147485696 float32 parameters need 8\.0 GiB/);

    // A conv net from the same builders works: its HVP matches finite differences.
    const cnn = h.nn.sequential([h.nn.conv2d(1, 2, [2, 3], { stride: [1, 2], padding: 1 }), h.nn.tanh(), h.nn.flatten(), h.nn.linear(2 * 5 * 2, 2)]);
    expect(cnn.layers[0]).toEqual({ type: 'conv2d', in: 1, out: 2, kernel: [2, 3], stride: [1, 2], padding: [1, 1], bias: true });
    const r = rng(9);
    using obj = h.objective(cnn, 'mse', { x: f64(randn(r, 2 * 16), [2, 1, 4, 4]), y: f64(randn(r, 4), [2, 2]) }, { params: Float64Array.from(randn(r, cnn.size)) });
    const v = Float64Array.from(randn(r, cnn.size));
    expectClose(obj.hvp(v), fdHvp(obj, v), 1e-6, 1e-9);
  });
});

describe('an objective returns arrays of its dtype', () => {
  it.each([
    ['float64', Float64Array],
    ['float32', Float32Array],
  ] as const)('%s: loss, grad, products, dense matrices and Gauss–Newton parts', (dtype, Ctor) => {
    const r = rng(10);
    const t = (n: number, shape: number[]) => h.tensor(Ctor.from(randn(r, n)), shape, dtype);
    using obj = h.objective(model, 'mse', { x: t(15, [5, 3]), y: t(10, [5, 2]) }, { seed: 3 });
    const v = Float64Array.from(randn(r, model.size));
    expect(obj.dtype).toBe(dtype);
    for (const a of [obj.params, obj.point(), obj.grad(), obj.valueAndGrad()[1], obj.hvp(v), obj.ggnvp(v), obj.fisherVp(v), obj.hvps(v, 1), obj.curvatureProducts({ mcFisher: { samples: 2 } }, v, 1), obj.hessian(), obj.ggn(), obj.gaussNewton('diagonal'), obj.gaussNewton('layers')['0']!]) {
      expect(a).toBeInstanceOf(Ctor);
    }
    expect(obj.gaussNewton('dense', { accumulate: 'f64' })).toBeInstanceOf(Float64Array);
    // The dense Hessian's rows are the HVPs of the unit vectors, in the objective's precision.
    const H = obj.hessian();
    const e3 = new Float64Array(model.size);
    e3[3] = 1;
    expectClose(H.subarray(3 * model.size, 4 * model.size), obj.hvp(e3), dtype === 'float64' ? 1e-12 : 1e-5, 1e-7);
  });
});
