/**
 * Plain-JS reference computations shared by the vitest suites and the fuzz workers (which run
 * outside vitest, so this module imports nothing from it).
 */

/** Plain-JS C = op(A)·op(B) for row-major A (stored m×k, or k×m when transposed) and B. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number, ta = false, tb = false): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
      c[i * n + j] = s;
    }
  return c;
}
