// Child script of test/relaxed.test.ts: loads hesse (dist/) the way a user does, in whatever
// runtime runs it (Node with or without --experimental-wasm-relaxed-simd, Deno), computes GEMMs,
// gradients, HVPs and a Hessian on fixed inputs, and prints one JSON line:
// { variant, results: { name: number[] } }. The test runs it once per build and compares.
//
//   node [--experimental-wasm-relaxed-simd] test/relaxed-compute.mjs [--bytes FILE]
//
// --bytes FILE: init({ bytes }) with that file instead of init(); a load error is printed as
// { error: { code, message } } and, after it, init() is called again (a failed init may be retried).
import * as h from '../dist/index.js';
import { rng } from './runtimes/checks.mjs'; // integer arithmetic: the same numbers in every runtime
const fill = (Ctor, n, next, scale = 1) => Ctor.from({ length: n }, () => next() * scale);

async function readFile(path) {
  if (typeof Deno !== 'undefined') return Deno.readFile(path);
  const fs = await import('node:fs');
  return fs.readFileSync(path);
}

const args = typeof Deno !== 'undefined' ? Deno.args : process.argv.slice(2);
const out = {};
if (args[0] === '--bytes') {
  try {
    await h.init({ bytes: await readFile(args[1]) });
  } catch (e) {
    out.error = { code: e.code, message: e.message };
  }
}
await h.init();
out.variant = h.wasmVariant();

const results = {};
// GEMMs across the microkernel's tile edges (MR = 4, NR = 8 f32 / 4 f64) and the KC = 256 depth block.
for (const dtype of ['float32', 'float64']) {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  for (const [m, k, n] of [[33, 65, 31], [64, 300, 72], [128, 784, 16]]) {
    const next = rng(m * 7 + k * 3 + n);
    const a = h.tensor(fill(Ctor, m * k, next), [m, k], dtype);
    const b = h.tensor(fill(Ctor, k * n, next), [k, n], dtype);
    const c = h.matmul(a, b);
    results[`matmul ${dtype} ${m}x${k}x${n}`] = Array.from(c.toArray());
    for (const t of [a, b, c]) t.dispose();
  }
}

// A tanh MLP with cross-entropy (W1's shape, smaller): gradient, HVP, and the GGN (SYRK);
// and a 10-5-1 MSE net's full Hessian (multi-tangent GEMMs).
const { linear, tanh, sequential } = h.nn;
for (const dtype of ['float32', 'float64']) {
  const Ctor = dtype === 'float32' ? Float32Array : Float64Array;
  {
    const batch = 40;
    const next = rng(1);
    const model = sequential([linear(64, 48), tanh(), linear(48, 32), tanh(), linear(32, 10)]);
    const x = h.tensor(fill(Ctor, batch * 64, next, 2), [batch, 64], dtype);
    const y = h.tensor(Ctor.from({ length: batch }, (_, i) => (i * 7) % 10), [batch], dtype);
    const obj = h.objective(model, 'cross_entropy', { x, y }, { seed: 0 });
    const at = fill(Ctor, model.size, next, 0.3);
    const v = fill(Ctor, model.size, next);
    results[`mlp ${dtype} loss`] = [obj.loss(at)];
    results[`mlp ${dtype} grad`] = Array.from(obj.grad(at));
    results[`mlp ${dtype} hvp`] = Array.from(obj.hvp(v, at));
    obj.params = at;
    results[`mlp ${dtype} ggn diagonal`] = Array.from(obj.gaussNewton('diagonal'));
    obj.dispose();
    x.dispose();
    y.dispose();
  }
  {
    const batch = 32;
    const next = rng(2);
    const model = sequential([linear(10, 5), tanh(), linear(5, 1)]);
    const x = h.tensor(fill(Ctor, batch * 10, next), [batch, 10], dtype);
    const y = h.tensor(fill(Ctor, batch, next), [batch, 1], dtype);
    const obj = h.objective(model, 'mse', { x, y }, { seed: 0 });
    results[`small ${dtype} hessian`] = Array.from(obj.hessian({}, fill(Ctor, model.size, next, 0.5)));
    obj.dispose();
    x.dispose();
    y.dispose();
  }
}
out.results = results;
console.log(JSON.stringify(out));
