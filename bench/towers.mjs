// Pointwise-tower benchmark (not a test: nothing here asserts). One activation-heavy model per
// function, x → linear(16, 2048) → act → linear(2048, 1), MSE, batch 256: 524 288 activation
// elements, and little GEMM work (≈ 17 MFLOP a gradient). An HVP evaluates the tower twice per
// element (forward: f and f′ with the tangent; reverse: f′ and f″, or f′, f″ from the output for
// tanh, σ, exp, relu) plus the tangent products, so (HVP time − the same model's without the
// activation) / elements is the activation's cost per element of an HVP.
//
//   npm run build && node bench/towers.mjs [OTHER_DIST ...]
//
// Each OTHER_DIST is another build's dist/ directory (e.g. a copy of dist/ made before a change):
// its columns are measured in the same run, in turns with this build's, so before/after ratios
// come from one run. PyTorch (f32, one thread, double backward) is the peer, same models.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const dists = [path.join(here, '../dist'), ...process.argv.slice(2).map((d) => path.resolve(d))];
const builds = [];
for (const [i, d] of dists.entries()) {
  const h = await import(pathToFileURL(path.join(d, 'index.js')).href);
  await h.init();
  builds.push({ name: i === 0 ? 'this build' : path.relative(process.cwd(), d) || d, h });
}

const [IN, HID, BATCH] = [16, 2048, 256];
const N = BATCH * HID;
const REPS = 5;
/** [label, layer spec, PyTorch module] ('none': the same model without an activation). */
const ACTS = [
  ['none', null, null],
  ['tanh', { type: 'tanh' }, 'Tanh()'],
  ['sigmoid', { type: 'sigmoid' }, 'Sigmoid()'],
  ['gelu (erf)', { type: 'gelu', approximate: 'none' }, "GELU(approximate='none')"],
  ['gelu (tanh)', { type: 'gelu', approximate: 'tanh' }, "GELU(approximate='tanh')"],
  ['softplus', { type: 'softplus' }, 'Softplus()'],
  ['elu', { type: 'elu', alpha: 1 }, 'ELU()'],
  ['relu', { type: 'relu' }, 'ReLU()'],
];

const rand = (n) => Float32Array.from({ length: n }, () => Math.random() * 4 - 2);
const xd = rand(BATCH * IN);
const yd = rand(BATCH);

/** For one build and activation: the objective, its direction, and a dispose. */
function setup(h, spec) {
  const layers = [h.nn.linear(IN, HID), ...(spec ? [spec] : []), h.nn.linear(HID, 1)];
  const model = h.nn.sequential(layers);
  const x = h.tensor(xd, [BATCH, IN]);
  const y = h.tensor(yd, [BATCH, 1]);
  const obj = h.objective(model, 'mse', { x, y }, { seed: 1 });
  const v = model.init({ seed: 2 });
  return { obj, v, dispose: () => (obj.dispose(), x.dispose(), y.dispose()) };
}

// ms a call from dist/cli/measure.js's `gflops` (one "flop" = 1 µs of a call: 1e6 per ms), which
// times all cases of a row in turns, batch by batch, so a drift of the machine's speed affects
// every column alike.
const { gflops, markdownTable } = await import(pathToFileURL(path.join(dists[0], 'cli/measure.js')).href);
// Warm-up: the first model of each build grows its wasm memory and lets the JIT tier up; without
// this the first row measured (none) came out slower than rows with an activation.
for (const b of builds) {
  const c = setup(b.h, ACTS[1][1]);
  for (let i = 0; i < 10; i++) c.obj.hvp(c.v), c.obj.grad();
  c.dispose();
}
const res = {};
for (const [label, spec] of ACTS) {
  const cases = builds.map((b) => setup(b.h, spec));
  const rates = gflops(cases.flatMap((c) => [{ fn: () => c.obj.hvp(c.v), flops: 1e6 }, { fn: () => c.obj.grad(), flops: 1e6 }]), { minMs: 100, reps: REPS });
  res[label] = cases.map((_, i) => ({ hvp: 1 / rates[2 * i], grad: 1 / rates[2 * i + 1] }));
  cases.forEach((c) => c.dispose());
}

const torchScript = `
import json, time, torch
torch.set_num_threads(1); torch.manual_seed(0)
IN, HID, B = ${IN}, ${HID}, ${BATCH}
acts = json.loads(r"""${JSON.stringify(Object.fromEntries(ACTS.map(([l, , t]) => [l, t])))}""")
x, y = torch.rand(B, IN) * 4 - 2, torch.rand(B, 1) * 4 - 2
def timeit(fn, min_s=0.4):
    fn(); best = []
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn(); n += 1; t = time.perf_counter() - t0
            if t >= min_s: break
        best.append(1e3 * t / n)
    return sorted(best)[1]
out = {"torch": torch.__version__}
for label, act in acts.items():
    layers = [torch.nn.Linear(IN, HID)] + ([eval("torch.nn." + act)] if act else []) + [torch.nn.Linear(HID, 1)]
    m = torch.nn.Sequential(*layers)
    ps = list(m.parameters()); v = [torch.randn_like(p) for p in ps]
    def grad():
        return torch.autograd.grad(torch.nn.functional.mse_loss(m(x), y), ps)
    def hvp():
        g = torch.autograd.grad(torch.nn.functional.mse_loss(m(x), y), ps, create_graph=True)
        return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), ps)
    out[label + ".hvp"], out[label + ".grad"] = timeit(hvp), timeit(grad)
print(json.dumps(out))
`;
let torch = null;
for (const py of ['/usr/bin/python3', 'python3']) {
  const r = spawnSync(py, ['-c', torchScript], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' }, timeout: 600_000 });
  if (r.status !== 0) console.error(`${py}: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
  if (r.status === 0) {
    torch = JSON.parse(r.stdout.trim().split('\n').pop());
    break;
  }
}

const fmt = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');
const ns = (t, t0) => (1e6 * (t - t0)) / N;
console.log(`hesse ${builds[0].h.wasmVariant()} (f32, one thread), ${builds.map((b) => b.name).join(' vs ')}; ` +
  `${torch ? `PyTorch ${torch.torch} (f32, one thread)` : 'PyTorch: not found, peer skipped'}; Node ${process.version}`);
console.log(`model ${IN}-${HID}-1, batch ${BATCH}: ${N} activation elements; ms are medians of ${REPS} batches of ≥ 100 ms, all columns of a row timed in turns\n`);
const head = ['activation', ...builds.flatMap((b) => [`${b.name} HVP ms`, `${b.name} ns/elem`]), ...builds.slice(1).map((b) => `HVP ${b.name} / this`), 'PyTorch HVP ms', 'this / PyTorch'];
console.log(markdownTable(head, ACTS.map(([label]) => {
  const row = res[label];
  const t = torch?.[`${label}.hvp`];
  return [label, ...row.flatMap((r, i) => [fmt(r.hvp), label === 'none' ? '—' : fmt(ns(r.hvp, res.none[i].hvp), 1)]), ...row.slice(1).map((r) => fmt(r.hvp / row[0].hvp) + '×'), fmt(t), t ? fmt(row[0].hvp / t) + '×' : '—'];
})));
console.log('\nGradients (one tower evaluation per element without tangents, plus the reverse rule):\n');
console.log(markdownTable(['activation', ...builds.map((b) => `${b.name} grad ms`), 'PyTorch grad ms'], ACTS.map(([label]) => [label, ...res[label].map((r) => fmt(r.grad)), fmt(torch?.[`${label}.grad`])])));
