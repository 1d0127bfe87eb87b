// Spectrum benchmark: the top-5 eigenvalues of W2's Hessian by hesse's Lanczos and power iteration,
// and by PyHessian-style power iteration with deflation in PyTorch (double-backward HVPs), on the
// same parameters and data, same machine, same run. Prints markdown tables. Not a test: nothing
// here asserts. See bench/SPECTRUM.md.
//
//   npm run build:ts && node bench/spectrum.mjs       (the peer runs with OPENBLAS_NUM_THREADS=1)
//
// W2 = MLP 64-128-128-10, tanh, cross-entropy, batch 256, float32 (P = 26122).
// The parameters (model.init, seeded) and the batch (seeded) are made here and written to a temp
// directory that bench/peers/torch_spectrum.py reads: both sides evaluate the same function.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as h from '../dist/index.js';

const SIZES = [64, 128, 128, 10];
const BATCH = 256;
const K = 5;
const DATA_SEED = 12345;
const PARAM_SEED = 1;
/** Start-vector seeds: every method runs once per seed; times and HVP counts are medians over them. */
const SEEDS = [0, 1, 2, 3, 4, 5, 6];
/** PyHessian's defaults for eigenvalues(). */
const PYHESSIAN = { tol: 1e-3, maxIter: 100 };
/** A power-iteration run in PyTorch at a tight tolerance, for the accuracy it then reaches. */
const TIGHT_POWER = { tol: 1e-6, maxIter: 1000 };
/** Lanczos residual tolerances tried (loosest first); the headline uses the loosest one at least as accurate as PyHessian. */
const LANCZOS_TOLS = [1e-1, 5e-2, 3e-2, 2e-2, 1e-2, 3e-3, 1e-3];
/** The reference: Lanczos on the float64 objective (same values, cast exactly) at a tight tolerance. */
const REFERENCE = { tol: 1e-10, maxIter: 300 };

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(rand) {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
/** Largest relative error of the k values (sorted descending) against the reference's. */
function relErr(values, ref) {
  const v = Array.from(values).sort((a, b) => b - a);
  return Math.max(...ref.map((r, i) => Math.abs(v[i] - r) / Math.abs(r)));
}
function timed(fn) {
  const t0 = performance.now();
  const r = fn();
  return { ...r, ms: performance.now() - t0 };
}

function peer(python, dir) {
  const script = fileURLToPath(new URL('./peers/torch_spectrum.py', import.meta.url));
  const errors = [];
  for (const py of python) {
    const r = spawnSync(py, [script, dir], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' }, timeout: 240_000 });
    if (r.status === 0) return JSON.parse(r.stdout.trim().split('\n').pop());
    errors.push(`${py}: ${r.error?.message ?? (r.stderr || '').trim().split('\n').pop()}`);
  }
  console.error(`PyTorch peer not run (${errors.join('; ')})`);
  return null;
}

await h.init();
const load0 = loadavg()[0];
const layers = [];
for (let i = 0; i + 1 < SIZES.length; i++) {
  layers.push(h.nn.linear(SIZES[i], SIZES[i + 1]));
  if (i + 2 < SIZES.length) layers.push(h.nn.tanh());
}
const model = h.nn.sequential(layers);
const P = model.size;
const rand = mulberry32(DATA_SEED);
const gauss = gaussian(rand);
const x = Float32Array.from({ length: BATCH * SIZES[0] }, gauss);
const y = Float32Array.from({ length: BATCH }, () => Math.floor(rand() * SIZES.at(-1)));
const params = model.init({ seed: PARAM_SEED }); // Float32Array, PyTorch's named_parameters order
const v = Float32Array.from({ length: P }, gauss);

const X = h.tensor(x, [BATCH, SIZES[0]]);
const Y = h.tensor(y, [BATCH]);
const obj = h.objective(model, 'ce', { x: X, y: Y }, { params });
const op = obj.operator('hessian');
// The same operator with linearization reuse off (a tape bound of 0 bytes): every product reruns
// the primal forward and reverse sweeps, as before reuse existed.
const opFresh = {
  size: op.size,
  matvec: op.matvec,
  rawOperator: () => {
    const raw = op.rawOperator();
    raw.setReuseCap(0);
    return raw;
  },
};
const loss = obj.loss();
const hv = obj.hvp(v);

// Reference: the float64 objective at the same (exactly representable) parameters and data.
const X64 = h.tensor(Float64Array.from(x), [BATCH, SIZES[0]]);
const Y64 = h.tensor(Float64Array.from(y), [BATCH]);
const obj64 = h.objective(model, 'ce', { x: X64, y: Y64 }, { params: Float64Array.from(params) });
const reference = h.eigenvalues(obj64.operator('hessian'), K, { tol: REFERENCE.tol, maxIter: REFERENCE.maxIter, seed: 0 });
const ref = Array.from(reference.values);
const smallest = h.eigenvalues(obj64.operator('hessian'), 1, { which: 'smallest', tol: 1e-8, seed: 0 }).values[0];
const f32Tight = h.eigenvalues(op, K, { tol: 1e-8, seed: 0 });

// hesse's HVP alone (obj.hvp at one point, median of 7 batches of 20: from the third call on, the
// primal results are replayed), to read per-product costs against.
const hvpMs = (() => {
  obj.hvp(v);
  const ts = [];
  for (let b = 0; b < 7; b++) {
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) obj.hvp(v);
    ts.push((performance.now() - t0) / 20);
  }
  return median(ts);
})();

// hesse: every method once per seed, methods in turns (a drift of the machine hits all alike).
const lanczos = Object.fromEntries(LANCZOS_TOLS.map((t) => [t, []]));
const lanczosFresh = Object.fromEntries(LANCZOS_TOLS.map((t) => [t, []]));
const power = [];
h.eigenvalues(op, K, { tol: 1e-3, seed: 10_000 }); // warm-up
h.eigenvalues(opFresh, K, { tol: 1e-3, seed: 10_000 });
h.powerIteration(op, K, { tol: PYHESSIAN.tol, maxIter: PYHESSIAN.maxIter, seed: 10_000 });
for (const seed of SEEDS) {
  for (const tol of LANCZOS_TOLS) lanczos[tol].push(timed(() => h.eigenvalues(op, K, { tol, seed })));
  for (const tol of LANCZOS_TOLS) lanczosFresh[tol].push(timed(() => h.eigenvalues(opFresh, K, { tol, seed })));
  power.push(timed(() => h.powerIteration(op, K, { tol: PYHESSIAN.tol, maxIter: PYHESSIAN.maxIter, seed })));
}

// The peer, on the same parameters and data.
const dir = mkdtempSync(join(tmpdir(), 'hesse-spectrum-'));
const f32 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
let torch;
try {
  for (const [name, a] of [['params', params], ['x', x], ['y', y], ['v', v], ['hv', hv]]) writeFileSync(join(dir, `${name}.f32`), f32(a));
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ sizes: SIZES, batch: BATCH, k: K, seeds: SEEDS, pyhessianTol: PYHESSIAN.tol, pyhessianMaxIter: PYHESSIAN.maxIter, tightTol: TIGHT_POWER.tol, tightMaxIter: TIGHT_POWER.maxIter }));
  torch = peer(['/usr/bin/python3', 'python3'], dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const load1 = loadavg()[0];

// ---- Summaries ----
function summary(runs) {
  const products = runs.map((r) => r.products);
  const ms = median(runs.map((r) => r.ms));
  const errs = runs.map((r) => relErr(r.values, ref));
  return {
    products: median(products),
    range: `${Math.min(...products)}–${Math.max(...products)}`,
    ms,
    perHvp: median(runs.map((r) => r.ms / r.products)),
    worst: Math.max(...errs),
    median: median(errs),
    best: Math.min(...errs),
    converged: runs.every((r) => r.converged),
  };
}
const L = Object.fromEntries(LANCZOS_TOLS.map((t) => [t, summary(lanczos[t])]));
const LF = Object.fromEntries(LANCZOS_TOLS.map((t) => [t, summary(lanczosFresh[t])]));
const PW = summary(power);
const T = torch ? Object.fromEntries(Object.entries(torch.runs).map(([n, r]) => [n, summary(r.runs)])) : null;
// Headline: the loosest Lanczos tolerance whose worst seed is at least as accurate as PyHessian's
// best seed (strict, in PyTorch's favour). Also shown: the loosest whose worst seed beats
// PyHessian's median seed.
const loosest = (bar) => LANCZOS_TOLS.find((t) => L[t].worst <= bar) ?? LANCZOS_TOLS.at(-1);
const chosen = T ? loosest(T.pyhessian.best) : 1e-3;
const chosenMedian = T ? loosest(T.pyhessian.median) : 1e-3;

const e = (x, d = 1) => x.toExponential(d);
const f = (x, d = 1) => x.toFixed(d);
const cpu = cpus()[0]?.model?.trim() ?? 'unknown CPU';
console.log(`hesse ${h.wasmVariant()} (f32, one thread) vs ${torch ? `PyTorch ${torch.torch} (f32, one thread, OPENBLAS_NUM_THREADS=1)` : 'PyTorch: not run'}; Node ${process.version}; ${cpu}, ${cpus().length} logical cores, load average ${f(load0, 2)} → ${f(load1, 2)}\n`);
console.log(`W2: MLP ${SIZES.join('-')}, tanh, cross-entropy, batch ${BATCH}, P = ${P}; parameters model.init({ seed: ${PARAM_SEED} }), x ~ N(0, 1) and labels uniform (mulberry32 seed ${DATA_SEED}), shared with PyTorch through files.`);
if (torch) console.log(`Same function: loss ${loss.toPrecision(8)} (hesse) vs ${torch.loss.toPrecision(8)} (PyTorch); one HVP differs by ${e(torch.hvpRelDiff)} (relative 2-norm).`);
console.log(`Reference: Lanczos on the float64 objective, tol ${e(REFERENCE.tol, 0)}: ${ref.map((r) => r.toPrecision(8)).join(', ')} (${reference.products} HVPs, converged ${reference.converged}, largest residual ${e(Math.max(...reference.residuals))}); smallest eigenvalue ${smallest.toPrecision(6)}, so the top ${K} by magnitude are the top ${K} algebraically.`);
console.log(`One HVP: hesse ${f(hvpMs, 2)} ms (obj.hvp repeated at one point: forward-over-reverse, the primal results replayed)${torch ? `; PyTorch ${f(torch.hvpRetainedMs, 2)} ms on the retained gradient graph (PyHessian's way), ${f(torch.hvpRecomputeMs, 2)} ms recomputing forward + double backward` : ''}.`);
console.log(`${SEEDS.length} start-vector seeds per method, each run timed once after a warm-up; times and HVPs are medians over the seeds; errors are the worst seed (and the median seed).\n`);

console.log('| system | method | stopping rule | HVPs (median, range) | time ms (median) | ms / HVP | max rel. error vs reference: worst seed (median seed) | all converged |');
console.log('|---|---|---|---:|---:|---:|---:|---|');
const row = (sys, method, rule, s) => console.log(`| ${sys} | ${method} | ${rule} | ${s.products} (${s.range}) | ${f(s.ms)} | ${f(s.perHvp, 2)} | ${e(s.worst)} (${e(s.median)}) | ${s.converged ? 'yes' : 'no'} |`);
for (const t of LANCZOS_TOLS) row('hesse', `Lanczos${t === chosen ? ' **(headline)**' : ''}`, `residual ≤ ${e(t, 0)}·\\|θ\\|`, L[t]);
for (const t of new Set([chosen, 1e-3])) row('hesse', 'Lanczos, no linearization reuse (setReuseCap(0))', `residual ≤ ${e(t, 0)}·\\|θ\\|`, LF[t]);
row('hesse', 'power iteration + deflation', `\\|Δλ\\| ≤ ${e(PYHESSIAN.tol, 0)}·\\|λ\\|, ≤ ${PYHESSIAN.maxIter} its`, PW);
if (T) {
  row('PyTorch', 'PyHessian power iteration + deflation', `\\|Δλ\\|/(\\|λ\\|+1e-6) < ${e(PYHESSIAN.tol, 0)}, ≤ ${PYHESSIAN.maxIter} its (PyHessian's defaults)`, T.pyhessian);
  row('PyTorch', 'same, HVP recomputed each product', `same`, T.recompute);
  row('PyTorch', 'PyHessian power iteration, tight', `\\|Δλ\\|/(\\|λ\\|+1e-6) < ${e(TIGHT_POWER.tol, 0)}, ≤ ${TIGHT_POWER.maxIter} its (seed 0 only)`, T.tight);
}

console.log(`\nEigenvalues, start-vector seed 0 (power iteration: in the order found; the errors above sort first):\n`);
const cols = [
  ['reference (f64, tol 1e-10)', ref],
  ['hesse Lanczos f32, tol 1e-8', Array.from(f32Tight.values)],
  [`hesse Lanczos, tol ${e(chosen, 0)}`, Array.from(lanczos[chosen][0].values)],
  ...(chosen !== 1e-3 ? [['hesse Lanczos, tol 1e-3', Array.from(lanczos[1e-3][0].values)]] : []),
  ['hesse power, tol 1e-3', Array.from(power[0].values)],
  ...(torch ? [['PyTorch PyHessian, tol 1e-3', torch.runs.pyhessian.runs[0].values], ['PyTorch PyHessian, tol 1e-6', torch.runs.tight.runs[0].values]] : []),
];
console.log(`| i | ${cols.map((c) => c[0]).join(' | ')} |`);
console.log(`|---|${cols.map(() => '---:').join('|')}|`);
for (let i = 0; i < K; i++) console.log(`| ${i + 1} | ${cols.map((c) => c[1][i].toPrecision(7)).join(' | ')} |`);

console.log('\nTarget of the issue:\n');
console.log('| target | measured | met |');
console.log('|---|---|---|');
if (T) {
  const lz = L[chosen];
  const py = T.pyhessian;
  console.log(
    `| W2: top-${K} Hessian eigenvalues by Lanczos in less time than PyHessian-style power iteration with deflation in PyTorch | ` +
      `Lanczos tol ${e(chosen, 0)}: ${f(lz.ms)} ms, ${lz.products} HVPs, max error ${e(lz.worst)}; PyHessian: ${f(py.ms)} ms, ${py.products} HVPs, max error ${e(py.worst)} (best seed ${e(py.best)}); ` +
      `time ratio Lanczos / PyHessian ${f(lz.ms / py.ms, 2)}× | ${lz.ms < py.ms ? 'yes' : 'no'} |`,
  );
  const lm = L[chosenMedian];
  console.log(`| same, Lanczos only as accurate as PyHessian's median seed (${e(py.median)}) | Lanczos tol ${e(chosenMedian, 0)}: ${f(lm.ms)} ms, ${lm.products} HVPs, max error ${e(lm.worst)}; ratio ${f(lm.ms / py.ms, 2)}× | ${lm.ms < py.ms ? 'yes' : 'no'} |`);
  const l3 = L[1e-3];
  console.log(`| same, Lanczos at PyHessian's nominal tolerance 1e-3 | ${f(l3.ms)} ms, ${l3.products} HVPs, max error ${e(l3.worst)}; ratio ${f(l3.ms / py.ms, 2)}× | ${l3.ms < py.ms ? 'yes' : 'no'} |`);
  const lf = LF[chosen];
  console.log(`| (item 5) linearization reuse: Lanczos tol ${e(chosen, 0)} per HVP with reuse vs without (same run) | ${f(lz.perHvp, 2)} ms vs ${f(lf.perHvp, 2)} ms per HVP; whole call ${f(lz.ms)} ms vs ${f(lf.ms)} ms (ratio ${f(lz.ms / lf.ms, 2)}×); without reuse vs PyHessian ${f(lf.ms / py.ms, 2)}× | — |`);
  const rc = T.recompute;
  console.log(`| (not the target) Lanczos tol ${e(chosen, 0)} vs the same power iteration recomputing each HVP in PyTorch | ${f(lz.ms)} ms vs ${f(rc.ms)} ms; ratio ${f(lz.ms / rc.ms, 2)}× | ${lz.ms < rc.ms ? 'yes' : 'no'} |`);
} else console.log('| W2: top-5 by Lanczos faster than PyHessian in PyTorch | no peer | — |');

obj.dispose();
obj64.dispose();
for (const t of [X, Y, X64, Y64]) t.dispose();
