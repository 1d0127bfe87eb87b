// The checks every runtime test runs, against whatever `hesse` module object the runtime loaded.
// Pure ECMAScript: no Node, Deno, DOM or Workers API, so the same file runs (or is bundled) everywhere.
//
// runChecks(hesse) expects `hesse.init` to have resolved already; it returns
// { ok, checks: [{ name, ok, detail }] } and never throws (a thrown error is a failed check).

/** Matmul shapes [m, k, n]: tiny, odd, k = 1 / k = 0, and sizes that cross SIMD-width and block edges. */
export const SHAPES = [
  [1, 1, 1],
  [2, 3, 4],
  [17, 129, 3],
  [3, 129, 17],
  [7, 1, 5],
  [5, 0, 3],
  [33, 65, 31],
  [64, 64, 64],
  [100, 257, 67],
];

/** Largest allowed |c − ref| / Σₖ|aᵢₖ·bₖⱼ| per element (a relative error that cancellation cannot fake). */
export const TOLERANCE = { float32: 1e-5, float64: 1e-12 };

/** Deterministic uniform numbers in [−1, 1) (mulberry32). */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function randomArray(Ctor, n, next) {
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = next();
  return a;
}

/** Plain triple loop in float64 over the (already dtype-rounded) inputs; also Σ|a·b| per element. */
export function referenceMatmul(a, b, m, k, n) {
  const c = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let g = 0;
      for (let p = 0; p < k; p++) {
        const x = a[i * k + p] * b[p * n + j];
        s += x;
        g += Math.abs(x);
      }
      c[i * n + j] = s;
      mag[i * n + j] = g;
    }
  }
  return { c, mag };
}

function sameShape(x, y) {
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

function fmtErr(e) {
  if (e && typeof e === 'object') return `${e.name ?? 'Error'}${e.code ? `[${e.code}]` : ''}: ${e.message}`;
  return String(e);
}

export function runChecks(hesse) {
  const checks = [];
  const check = (name, fn) => {
    try {
      const detail = fn();
      checks.push({ name, ok: true, detail: detail ?? '' });
    } catch (e) {
      checks.push({ name, ok: false, detail: fmtErr(e) });
    }
  };
  const assert = (cond, msg) => {
    if (!cond) throw new Error(msg);
  };
  const { tensor, matmul, HesseError, memoryStats } = hesse;
  const baseline = memoryStats().liveTensors;

  // Exact small case through nested arrays (the most common user call).
  check('matmul [[1,2],[3,4]]·[[5,6],[7,8]] exact', () => {
    const a = tensor([[1, 2], [3, 4]]);
    const b = tensor([[5, 6], [7, 8]]);
    const c = matmul(a, b);
    try {
      const got = Array.from(c.toArray());
      assert(c.dtype === 'float32', `dtype ${c.dtype}`);
      assert(sameShape(c.shape, [2, 2]), `shape [${c.shape}]`);
      assert(JSON.stringify(got) === '[19,22,43,50]', `got ${JSON.stringify(got)}`);
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  let seed = 1;
  for (const dtype of ['float32', 'float64']) {
    const Ctor = dtype === 'float64' ? Float64Array : Float32Array;
    for (const [m, k, n] of SHAPES) {
      check(`matmul ${dtype} ${m}×${k}·${k}×${n}`, () => {
        const next = rng(seed++);
        const ad = randomArray(Ctor, m * k, next);
        const bd = randomArray(Ctor, k * n, next);
        // float64 with plain arrays and an explicit dtype, float32 with typed arrays (dtype inferred).
        const a = dtype === 'float64' ? tensor(Array.from(ad), [m, k], 'float64') : tensor(ad, [m, k]);
        const b = dtype === 'float64' ? tensor(Array.from(bd), [k, n], 'float64') : tensor(bd, [k, n]);
        const c = matmul(a, b);
        try {
          assert(c.dtype === dtype, `result dtype ${c.dtype}, expected ${dtype}`);
          assert(sameShape(c.shape, [m, n]), `result shape [${c.shape}], expected [${m}, ${n}]`);
          const got = c.toArray();
          assert(got instanceof Ctor, `toArray() gave ${got?.constructor?.name}, expected ${Ctor.name}`);
          assert(got.length === m * n, `toArray() length ${got.length}, expected ${m * n}`);
          const ref = referenceMatmul(ad, bd, m, k, n);
          let worst = 0;
          for (let i = 0; i < m * n; i++) {
            const diff = Math.abs(got[i] - ref.c[i]);
            // k = 0: the reference is exactly 0 and so must the result be.
            const rel = ref.mag[i] > 0 ? diff / ref.mag[i] : diff === 0 ? 0 : Infinity;
            // Written so that NaN fails too.
            assert(
              rel <= TOLERANCE[dtype],
              `rel error ${rel} > ${TOLERANCE[dtype]} at [${Math.floor(i / n)}, ${i % n}]: got ${got[i]}, expected ${ref.c[i]}`,
            );
            worst = Math.max(worst, rel);
          }
          return `max rel err ${worst.toExponential(2)}`;
        } finally {
          a.dispose();
          b.dispose();
          c.dispose();
        }
      });
    }
  }

  check('shape mismatch throws HesseError SHAPE_MISMATCH', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    const b = tensor(new Float32Array(8), [4, 2]);
    try {
      let thrown;
      try {
        matmul(a, b).dispose();
      } catch (e) {
        thrown = e;
      }
      assert(thrown !== undefined, 'matmul([2,3], [4,2]) did not throw');
      assert(thrown instanceof HesseError, `threw ${fmtErr(thrown)}, not a HesseError`);
      assert(thrown instanceof Error, 'HesseError is not an Error');
      assert(thrown.name === 'HesseError', `name ${thrown.name}`);
      assert(thrown.code === 'SHAPE_MISMATCH', `code ${thrown.code}, expected SHAPE_MISMATCH`);
      return thrown.message;
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  check('instance keeps working after the error', () => {
    const next = rng(999);
    const [m, k, n] = [17, 129, 3];
    const ad = randomArray(Float32Array, m * k, next);
    const bd = randomArray(Float32Array, k * n, next);
    const a = tensor(ad, [m, k]);
    const b = tensor(bd, [k, n]);
    const c = matmul(a, b);
    try {
      const got = c.toArray();
      const ref = referenceMatmul(ad, bd, m, k, n);
      for (let i = 0; i < m * n; i++) {
        const rel = Math.abs(got[i] - ref.c[i]) / ref.mag[i];
        assert(rel <= TOLERANCE.float32, `element ${i}: got ${got[i]}, expected ${ref.c[i]}`);
      }
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  check('no tensors leaked', () => {
    const live = memoryStats().liveTensors;
    assert(live === baseline, `${live - baseline} tensor(s) still live after all were disposed`);
  });

  return { ok: checks.length > 0 && checks.every((c) => c.ok), checks };
}

/** Text lines describing a result (for logs). */
/** The check that init() loaded the build `expected` ('relaxed-simd' or 'simd128'). */
export function variantCheck(hesse, expected, how = 'init() picked the bundled') {
  return { name: `${how} ${expected} build`, ok: hesse.wasmVariant() === expected, detail: `wasmVariant() = ${hesse.wasmVariant()}` };
}

/** runChecks, plus that init() with no arguments picked the bundled build `expected` (Node, Deno). */
export function runChecksBundled(hesse, expected) {
  const result = runChecks(hesse);
  result.checks.unshift(variantCheck(hesse, expected));
  result.ok = result.ok && result.checks[0].ok;
  return result;
}

export function formatResult(result) {
  return result.checks.map((c) => `${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` (${c.detail})` : ''}`).join('\n');
}
