// Deno 2: the async objective with 2 module Workers (ts/pool/) against the sync objective, from
// dist/ (the worker script is dist/pool/worker.js). Prints PASS/FAIL; exit code 0/1.
// Run: node test/runtimes/run-all.mjs deno-workers
import * as h from '../../dist/index.js';

await h.init();
const model = h.nn.sequential([h.nn.linear(5, 8), h.nn.tanh(), h.nn.linear(8, 3)]);
const n = 13;
const x = { data: Float64Array.from({ length: n * 5 }, (_, i) => Math.sin(i)), shape: [n, 5] };
const y = { data: Float64Array.from({ length: n }, (_, i) => i % 3), shape: [n] };
const sync = h.objective(model, 'cross_entropy', { x, y }, { seed: 2 });
const obj = await h.objectiveAsync(model, 'cross_entropy', { x, y }, { seed: 2, workers: 2 });
const v = Float64Array.from({ length: model.size }, (_, i) => Math.cos(i));
const rel = (a, b) => Math.sqrt(a.reduce((s, _, i) => s + (a[i] - b[i]) ** 2, 0) / b.reduce((s, t) => s + t * t, 0));
const errs = { loss: rel([await obj.loss()], [sync.loss()]), grad: rel(await obj.grad(), sync.grad()), hvp: rel(await obj.hvp(v), sync.hvp(v)) };
await obj.dispose();
const ok = obj.workers === 2 && Object.values(errs).every((e) => e <= 1e-12);
console.log(`wasmVariant() = ${h.wasmVariant()}`);
console.log(`deno ${Deno.version.deno} workers: ${JSON.stringify(errs)} ${ok ? 'PASS' : 'FAIL'}`);
Deno.exit(ok ? 0 : 1);
