/**
 * `hessian demo`: times the SIMD GEMM against the scalar reference kernel on a few f32 shapes and
 * checks that both give the same product.
 */
import { init, matmul, setKernels, tensor, wasmVariant, type Tensor } from '../index.js';
import { gflops, markdownTable, randomData } from './measure.js';

/** m×k×n: C[m,n] = A[m,k]·B[k,n]. The last one is an MLP layer (batch 128, 784 → 256). */
const SHAPES: readonly [number, number, number][] = [
  [128, 128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [128, 784, 256],
];

/** f32 with k ≤ 784 and different summation orders stays far below this (≈1e-6 seen). */
const TOLERANCE = 1e-4;

/** max |x − ref| / max |ref|: relative to the result's scale, so entries near zero do not blow it up. */
function relError(x: Float32Array, ref: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - ref[i]!));
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return diff / (scale || 1);
}

/** A·B with one kernel family, read back. */
function product(kind: 'simd' | 'scalar', a: Tensor, b: Tensor): Float32Array {
  setKernels(kind);
  const c = matmul(a, b);
  const out = c.toArray() as Float32Array;
  c.dispose();
  return out;
}

/** Prints the table; returns whether every SIMD product matched the scalar one. */
export async function demo(): Promise<boolean> {
  await init();
  console.log(`hessian demo --gemm: f32 GEMM, wasm build '${wasmVariant()}', single thread, median of 5 timed batches of ≥ 100 ms\n`);
  let ok = true;
  const rows = SHAPES.map(([m, k, n]) => {
    const a = tensor(randomData(m * k), [m, k]);
    const b = tensor(randomData(k * n), [k, n]);
    const flops = 2 * m * k * n;
    const err = relError(product('simd', a, b), product('scalar', a, b));
    ok &&= err <= TOLERANCE;
    const gemm = () => matmul(a, b).dispose();
    const [simd, scalar] = gflops([
      { fn: gemm, flops, before: () => setKernels('simd') },
      { fn: gemm, flops, before: () => setKernels('scalar') },
    ]);
    a.dispose();
    b.dispose();
    return [`${m}×${k}×${n}`, simd!.toFixed(2), scalar!.toFixed(2), `${(simd! / scalar!).toFixed(1)}×`, err.toExponential(1)];
  });
  setKernels('simd'); // leave the default in place
  console.log(markdownTable(['m×k×n', 'simd GFLOP/s', 'scalar GFLOP/s', 'speedup', 'max rel err'], rows));
  console.log(ok ? '\nsimd and scalar products agree.' : `\nMISMATCH: a simd product differs from the scalar one by more than ${TOLERANCE}.`);
  return ok;
}
