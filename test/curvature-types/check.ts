/**
 * Compile-time checks of the curvature API's types (run by test/trust-curvature-types.test.ts
 * with `tsc -p test/curvature-types` under `strict`): an objective's arrays are typed by its
 * dtype with no union to narrow, `eigenvalues` has `vectors` exactly when asked for, and results
 * are precise. `@ts-expect-error` lines assert what must NOT compile.
 */
import {
  cg, diagonal, eigenvalues, eigh, hessianFree, laplace, minres, nn, objective, powerIteration, spectralDensity, tensor, trace,
  type DType, type EigenResult, type EigenResultWithVectors, type Kfac, type Objective, type Tensor, type TraceResult,
} from '../../ts/index.js';

/** Exact type equality (not mere assignability). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assert = <T extends true>(): void => {};

// Tensors of a known dtype, as `tensor` makes them, and of an unknown one.
const x64 = tensor(new Float64Array(15), [5, 3]);
const y64 = tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2], 'float64');
assert<Equal<typeof y64, Tensor<'float64'>>>();
const x32 = tensor(new Float32Array(15), [5, 3]);
const y32 = tensor(new Float32Array(10), [5, 2], 'float32');
declare const xAny: Tensor;
declare const yAny: Tensor;

const model = nn.sequential([nn.linear(3, 4), nn.tanh(), nn.linear(4, 2)]);

// float64: every array is a Float64Array.
const o64 = objective(model, 'mse', { x: x64, y: y64 }, { seed: 0 });
assert<Equal<typeof o64, Objective<'float64'>>>();
assert<Equal<typeof o64.dtype, 'float64'>>();
assert<Equal<typeof o64.params, Float64Array>>();
assert<Equal<ReturnType<typeof o64.grad>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.valueAndGrad>, [number, Float64Array]>>();
assert<Equal<ReturnType<typeof o64.point>, Float64Array>>();
const g = o64.grad();
assert<Equal<typeof g, Float64Array>>();
assert<Equal<ReturnType<typeof o64.hvp>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.ggnvp>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.fisherVp>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.hvps>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.curvatureProducts>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.hessian>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.ggn>, Float64Array>>();
assert<Equal<ReturnType<typeof o64.dense>, Float64Array>>();
const gd = o64.gaussNewton('diagonal');
assert<Equal<typeof gd, Float64Array>>();
const gl = o64.gaussNewton('layers');
assert<Equal<typeof gl, Record<string, Float64Array>>>();
assert<Equal<ReturnType<typeof o64.kfac>, Kfac>>();
const g0: number = g[0]!; // indexing needs no narrowing
void g0;

// float32: Float32Array, except where float64 accumulation is asked for.
const o32 = objective(model, 'mse', { x: x32, y: y32 });
assert<Equal<typeof o32, Objective<'float32'>>>();
assert<Equal<ReturnType<typeof o32.grad>, Float32Array>>();
const h32 = o32.hvp(new Float64Array(o32.size)); // directions in either precision
assert<Equal<typeof h32, Float32Array>>();
const d32 = o32.gaussNewton('dense');
assert<Equal<typeof d32, Float32Array>>();
const dWide = o32.gaussNewton('dense', { accumulate: 'f64' });
assert<Equal<typeof dWide, Float64Array>>();
const lWide = o32.gaussNewton('layers', { accumulate: 'f64', chunk: 8 });
assert<Equal<typeof lWide, Record<string, Float64Array>>>();
// @ts-expect-error a float32 objective's gradient is not a Float64Array
const wrong: Float64Array = o32.grad();
void wrong;

// An unknown dtype gives the union (and the default type argument).
const oAny = objective(model, 'mse', { x: xAny, y: yAny });
assert<Equal<typeof oAny, Objective<DType>>>();
assert<Equal<ReturnType<typeof oAny.grad>, Float32Array | Float64Array>>();
const asDefault: Objective = o64; // a typed objective is an Objective
void asDefault;

// Estimators, Hessian-free and Laplace take typed objectives.
const top = eigenvalues(o64.operator('hessian'), 3);
assert<Equal<typeof top, EigenResult>>();
assert<Equal<typeof top.values, Float64Array>>();
// @ts-expect-error no vectors unless asked for
void top.vectors;
const withVectors = eigenvalues(o64.operator('ggn'), 2, { vectors: true, which: 'both' });
assert<Equal<typeof withVectors, EigenResultWithVectors>>();
assert<Equal<typeof withVectors.vectors, Float64Array>>();
const noVectors = eigenvalues(o64.operator(), 2, { vectors: false, tol: 1e-6 });
assert<Equal<typeof noVectors, EigenResult>>();
declare const maybe: boolean;
const perhaps = eigenvalues(o64.operator(), 2, { vectors: maybe });
assert<Equal<typeof perhaps.vectors, Float64Array | undefined>>();
assert<Equal<ReturnType<typeof powerIteration>['vectors'], Float64Array>>();
assert<Equal<ReturnType<typeof trace>, TraceResult>>();
assert<Equal<ReturnType<typeof trace>['stdError'], number>>();
assert<Equal<ReturnType<typeof diagonal>['diagonal'], Float64Array>>();
assert<Equal<ReturnType<typeof spectralDensity>['grid'], Float64Array>>();
const sol = cg(o64.operator('ggn'), o64.grad(), { damping: 1, x0: new Float32Array(o64.size) });
assert<Equal<typeof sol.x, Float64Array>>();
assert<Equal<typeof sol.negativeCurvature, { direction: Float64Array; rayleigh: number } | undefined>>();
assert<Equal<ReturnType<typeof minres>['x'], Float64Array>>();
assert<Equal<ReturnType<typeof eigh>['vectors'], Float64Array>>();
const hf = hessianFree(o32, { steps: 2 });
assert<Equal<typeof hf.losses, number[]>>();
const post = laplace(o64, { subset: 'last-layer' });
assert<Equal<ReturnType<typeof post.predict>['variance'], Float64Array>>();
// @ts-expect-error subset is 'all' | 'last-layer'
laplace(o64, { subset: 'lastlayer' });
// @ts-expect-error curvature names are checked at compile time too
o64.operator('hesian');
// @ts-expect-error gaussNewton parts are checked at compile time too
o64.gaussNewton('full');

// Init by dtype.
const p64 = model.init({ dtype: 'float64' });
assert<Equal<typeof p64, Float64Array>>();
const p32 = model.init();
assert<Equal<typeof p32, Float32Array>>();
// @ts-expect-error x and y of different dtypes
objective(model, 'mse', { x: x64, y: y32 });
