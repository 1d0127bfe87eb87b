// HVP time of a W1-like MLP (784-256-256-10 tanh, cross-entropy, batch 128, float32) in one run:
// the sync objective, and the async one with 1 and 2 workers (ts/pool/). Median of REPS calls
// after 3 warm-up calls each. Usage: node bench/workers.mjs [reps] (needs npm run build).
import * as h from '../dist/index.js';

const REPS = Number(process.argv[2] ?? 20);
await h.init();
const model = h.nn.sequential([h.nn.linear(784, 256), h.nn.tanh(), h.nn.linear(256, 256), h.nn.tanh(), h.nn.linear(256, 10)]);
const n = 128;
let s = 1;
const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
const data = { x: { data: Float32Array.from({ length: n * 784 }, rand), shape: [n, 784] }, y: { data: Float32Array.from({ length: n }, (_, i) => i % 10), shape: [n] } };
const v = Float32Array.from({ length: model.size }, rand);

async function median(f) {
  for (let i = 0; i < 3; i++) await f();
  const t = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

const rows = [];
const sync = h.objective(model, 'cross_entropy', data, { seed: 0 });
rows.push(['sync', await median(() => sync.hvp(v))]);
const ref = sync.hvp(v);
for (const workers of [1, 2]) {
  const obj = await h.objectiveAsync(model, 'cross_entropy', data, { seed: 0, workers });
  const got = await obj.hvp(v);
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) { num += (got[i] - ref[i]) ** 2; den += ref[i] ** 2; }
  rows.push([`${workers} worker${workers > 1 ? 's' : ''}`, await median(() => obj.hvp(v)), Math.sqrt(num / den)]);
  await obj.dispose();
}
sync.dispose();
console.log(`W1-like MLP 784-256-256-10 tanh, CE, batch ${n}, float32, P = ${model.size}, ${h.wasmVariant()}; median of ${REPS} HVPs`);
console.log('| runner    | HVP ms | vs sync | vs 1 worker | rel. diff to sync |');
console.log('|-----------|-------:|--------:|------------:|------------------:|');
const one = rows[1][1];
for (const [name, ms, err] of rows) console.log(`| ${name.padEnd(9)} | ${ms.toFixed(2).padStart(6)} | ${(ms / rows[0][1]).toFixed(2).padStart(7)} | ${(ms / one).toFixed(2).padStart(11)} | ${err === undefined ? '' : err.toExponential(1).padStart(17)} |`);
