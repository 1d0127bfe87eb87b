// Real-model benchmark: a CIFAR ResNet-20 (BatchNorm folded, and kept) and a small Transformer
// encoder on token ids, exported to ONNX by PyTorch (bench/peers/torch_models.py), imported by
// hesse's loadOnnx: gradient, HVP, GGN-vector product and the top-5 Hessian eigenvalues by Lanczos,
// hesse (f32, one thread, wasm) against PyTorch (f32, torch.set_num_threads(1)) on the same
// weights and data, same machine, same run. Prints markdown tables. Not a test: nothing asserts,
// but every hesse result is compared with PyTorch's float64 reference before it is timed, and a
// mismatch is printed in the table instead of a time.
//
//   npm run build && node bench/models.mjs [control resnet20 resnet20_bn transformer transformer_float] [--tol 1e-3] [--max-iter 100] [--lanczos-budget 240]
//
// The peer writes bench/.out/<model>/ (ONNX file, data, direction v, float64 references, element
// map between ONNX initializers and torch parameters); see torch_models.py's docstring.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';
import * as h from '../dist/index.js';

const ALL = ['control', 'resnet20', 'resnet20_bn', 'transformer', 'transformer_float'];
const OUT = fileURLToPath(new URL('./.out/', import.meta.url));
const PEER = fileURLToPath(new URL('./peers/torch_models.py', import.meta.url));
const PYTHONS = ['/usr/bin/python3', 'python3'];
const ENV = { ...process.env, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
const K = 5;
/** Steps PyTorch's Lanczos takes for a model hesse could not run (so its time is still shown). */
const FALLBACK_STEPS = 30;
/**
 * hesse's result agrees when its relative 2-norm error against PyTorch's float64 reference is at
 * most max(AGREE, SLACK × PyTorch f32's own error with its native kernels). A ReLU network in
 * float32 cannot match float64 better than its kinks allow (a pre-activation within rounding of 0
 * flips): PyTorch f32 measures that floor on the same function. A wrong computation is off by O(1).
 */
const AGREE = 1e-4;
const SLACK = 3;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const TOL = opt('--tol', 1e-3);
const MAX_ITER = opt('--max-iter', 100);
/** Wall-clock budget of one Lanczos run: maxIter is lowered to fit it at the measured HVP time (then it may stop unconverged, and says so). */
const LANCZOS_BUDGET_MS = opt('--lanczos-budget', 240) * 1000;
const names = args.length ? args : ALL;
for (const n of names) if (!ALL.includes(n)) throw new Error(`unknown model ${n}; one of ${ALL.join(', ')}`);

// ---------------------------------------------------------------- helpers
function python(argv, timeout) {
  const errors = [];
  for (const py of PYTHONS) {
    const r = spawnSync(py, [PEER, ...argv], { encoding: 'utf8', env: ENV, timeout, maxBuffer: 64 << 20 });
    if (r.status === 0) return { out: r.stdout, err: r.stderr };
    errors.push(`${py}: ${r.error?.message ?? (r.stderr || '').trim().split('\n').slice(-1)[0]}`);
  }
  return { error: errors.join('; ') };
}

/**
 * Fastest ms of `samples` calls after one warm-up call (these calls are long: one call a sample).
 * On a shared machine noise only ever slows a call down, so both sides report their best sample.
 */
function time(fn, samples) {
  fn();
  let best = Infinity;
  for (let s = 0; s < samples; s++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const npy = (dir, f) => h.npy.parseNpy(readFileSync(join(dir, f)), { name: f });
const norm = (a) => Math.sqrt(a.reduce((s, x) => s + x * x, 0));
function relErr(got, ref) {
  let d = 0;
  for (let i = 0; i < ref.length; i++) d += (got[i] - ref[i]) ** 2;
  return Math.sqrt(d) / norm(ref);
}

/** simd128 ceiling (as bench/gemm.mjs): n independent f32x4 mul+add chains; the best n of 8..16, GFLOP/s. */
async function ceiling() {
  const wabt = await wabtInit();
  const rates = {};
  for (let n = 8; n <= 16; n++) {
    const accs = Array.from({ length: n }, (_, i) => `$a${i}`);
    const sum = accs.slice(1).reduce((s, a) => `(f32x4.add ${s} (local.get ${a}))`, `(local.get ${accs[0]})`);
    const wat = `(module (func (export "run") (param $iters i32) (param $m f32) (param $c f32) (result f32)
      (local $vm v128) (local $vc v128) ${accs.map((a) => `(local ${a} v128)`).join(' ')}
      (local.set $vm (f32x4.splat (local.get $m))) (local.set $vc (f32x4.splat (local.get $c)))
      ${accs.map((a) => `(local.set ${a} (local.get $vc))`).join(' ')}
      (loop $L ${accs.map((a) => `(local.set ${a} (f32x4.add (f32x4.mul (local.get ${a}) (local.get $vm)) (local.get $vc)))`).join(' ')}
        (br_if $L (local.tee $iters (i32.sub (local.get $iters) (i32.const 1)))))
      (f32x4.extract_lane 0 ${sum})))`;
    const { instance } = await WebAssembly.instantiate(wabt.parseWat(`c${n}.wat`, wat, { simd: true }).toBinary({}).buffer);
    const iters = 1_000_000;
    const run = () => instance.exports.run(iters, 0.999, 0.001);
    rates[n] = (iters * n * 8) / time(run, 5) / 1e6;
  }
  const best = Object.entries(rates).sort((a, b) => b[1] - a[1])[0];
  return { n: Number(best[0]), gflops: best[1], rates };
}

/** The agreement bound for quantity q (see AGREE); PyTorch's native-kernel error where it has one. */
const tolerance = (t, q) => Math.max(AGREE, SLACK * (t?.noMkldnn?.relErr?.[q] ?? t?.relErr?.[q] ?? 0));

// ---------------------------------------------------------------- run
await h.init();
const load0 = loadavg()[0];
const ceil0 = await ceiling();

const exp = python(['export', OUT, ...names], 900_000);
const torchMissing = exp.error;
if (torchMissing) console.error(`PyTorch peer not run: ${torchMissing}`);

const res = {};
for (const name of names) {
  const dir = join(OUT, name);
  const r = (res[name] = { name });
  if (torchMissing || !existsSync(join(dir, 'meta.json'))) {
    r.error = `no export (the models come from PyTorch: ${torchMissing ?? 'no meta.json'})`;
    continue;
  }
  const meta = (r.meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')));
  let model, obj, X, Y;
  try {
    r.stage = 'loadOnnx';
    model = await h.loadOnnx(readFileSync(join(dir, 'model.onnx')));
    // The direction and the comparisons live in torch's parameter order; the map says which torch
    // element each element of the file's float initializers is (-1: a buffer). The importer's
    // blocks are matched to the initializers by name (an importer that leaves buffers out of θ
    // has fewer blocks than the file has float initializers).
    r.stage = 'parameter map';
    const map = npy(dir, 'map.npy').data;
    const fileOff = new Map();
    let off = 0;
    for (const i of meta.initializers) {
      fileOff.set(i.name, { off, size: i.size, role: i.role });
      off += i.size;
    }
    const idx = new Int32Array(model.size).fill(-1);
    for (const b of model.blocks) {
      const f = fileOff.get(b.name);
      if (!f || f.size !== b.size) throw new Error(`hesse's parameter block ${b.name} (${b.size}) is not a float initializer of the file (${f ? f.size : 'absent'})`);
      idx.set(map.subarray(f.off, f.off + f.size), b.offset);
    }
    r.P = model.size;
    r.buffersInTheta = [...idx].filter((i) => i < 0).length;
    const vt = npy(dir, 'v.npy').data;
    const v = Float32Array.from(idx, (i) => (i >= 0 ? vt[i] : 0));
    const toTorch = (a) => {
      const t = new Float64Array(meta.P);
      for (let i = 0; i < idx.length; i++) if (idx[i] >= 0) t[idx[i]] += a[i];
      return t;
    };

    r.stage = 'data';
    // As test/real-models.test.ts: integer arrays (token ids, labels) become exact float32 values;
    // the importer knows from the file that the input is an integer tensor.
    X = h.npy.npyToTensor(npy(dir, 'x.npy'), 'float32');
    Y = h.npy.npyToTensor(npy(dir, 'y.npy'), 'float32');
    r.stage = 'objective';
    obj = h.objective(model, 'ce', { x: X, y: Y }, { params: model.init({ dtype: 'float32' }) });

    // Same computation? Against PyTorch's float64 reference, before anything is timed.
    r.stage = 'check';
    r.loss = obj.loss();
    r.err = {
      grad: relErr(toTorch(obj.grad()), npy(dir, 'grad64.npy').data),
      hvp: relErr(toTorch(obj.hvp(v)), npy(dir, 'hvp64.npy').data),
      ggnvp: relErr(toTorch(obj.ggnvp(v)), npy(dir, 'ggnvp64.npy').data),
    };

    r.stage = 'timing';
    const samples = 5;
    r.grad = time(() => obj.grad(), samples);
    // Products from scratch, as PyTorch's are timed: the point alternates between θ and a copy
    // with one value moved, so no call finds a linearization of its point to replay. `hvpReplay`:
    // repeated at one point, as Lanczos calls it (the primal results replayed; ARCHITECTURE.md).
    const theta = obj.params.slice();
    const theta2 = theta.slice();
    theta2[0] += 1e-3;
    let flip = 0;
    const other = () => ((flip ^= 1) ? theta : theta2);
    r.hvp = time(() => obj.hvp(v, other()), samples);
    r.ggnvp = time(() => obj.ggnvp(v, other()), samples);
    r.hvpReplay = time(() => obj.hvp(v, theta), samples);
    const op = obj.operator('hessian');
    const t0 = performance.now();
    r.maxIter = Math.max(2 * K, Math.min(MAX_ITER, Math.floor(LANCZOS_BUDGET_MS / r.hvp)));
    const eig = h.eigenvalues(op, K, { tol: TOL, maxIter: r.maxIter, seed: 0 });
    r.lanczos = performance.now() - t0;
    r.eig = eig;
    delete r.stage;
  } catch (e) {
    r.error = `${r.stage}: ${e instanceof h.HesseError ? `HesseError ${e.code}: ` : ''}${e.message}`;
  } finally {
    obj?.dispose();
    X?.dispose();
    Y?.dispose();
  }
}

const jobs = names.filter((n) => res[n].meta).map((n) => `${n}=${res[n].eig?.products ?? FALLBACK_STEPS}`);
const timed = jobs.length ? python(['time', OUT, ...jobs], 1_800_000) : { error: torchMissing };
const torch = timed.error ? null : JSON.parse(timed.out.trim().split('\n').pop());
if (timed.error && !torchMissing) console.error(`PyTorch timing failed: ${timed.error}`);
const ceil1 = await ceiling();
const ceil = Math.max(ceil0.gflops, ceil1.gflops);
const load1 = loadavg()[0];

// ---------------------------------------------------------------- report
const f = (x, d = 1) => (x === undefined ? '—' : x.toFixed(d));
const e = (x) => (x === undefined ? '—' : x.toExponential(1));
const ratio = (a, b) => (a !== undefined && b !== undefined ? `${(a / b).toFixed(2)}×` : '—');
console.log(`hesse ${h.wasmVariant()} (f32, one thread, loadOnnx) vs ${torch ? `PyTorch ${torch.torch} (f32, torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1)` : `PyTorch: not run (${timed.error ?? 'no model ran'})`}; Node ${process.version}`);
console.log(`CPU: ${cpus()[0]?.model?.trim() ?? '?'}, ${cpus().length} logical cores, load average ${f(load0, 2)} → ${f(load1, 2)} (other load slows every column)`);
console.log(`simd128 ceiling in this run: ${f(ceil, 1)} GFLOP/s (${ceil0.n} chains; before ${f(ceil0.gflops, 1)}, after ${f(ceil1.gflops, 1)})`);
console.log(`Lanczos: hesse eigenvalues(op, ${K}, { tol: ${TOL}, maxIter: ${MAX_ITER} }) (maxIter lowered to fit ${LANCZOS_BUDGET_MS / 1000} s at the measured HVP time: ${names.filter((n) => res[n].maxIter < MAX_ITER).map((n) => `${n} ${res[n].maxIter}`).join(', ') || 'none'}); PyTorch: the same number of Lanczos steps (full reorthogonalization), its faster HVP route\n`);
for (const n of names) {
  const r = res[n];
  const m = r.meta;
  console.log(`- ${n}: ${m ? `${m.desc}; P = ${m.P} (torch parameters), ONNX opset ${m.opset}, ${m.exportMode} export, ops: ${m.ops.join(', ')}; forward ${f(m.forwardFlops / 1e9, 2)} GFLOP (conv/linear/attention matmuls)` : r.error}`);
  if (r.error && m) console.log(`  - hesse: **cannot run**: ${r.error}`);
  if (r.hvpReplay !== undefined) console.log(`  - hesse HVP from scratch ${f(r.hvp)} ms; repeated at one point (linearization replayed, as in Lanczos) ${f(r.hvpReplay)} ms (${ratio(r.hvpReplay, r.hvp)})`);
  if (r.err) console.log(`  - hesse P = ${r.P}${r.buffersInTheta ? ` (of which ${r.buffersInTheta} are buffers the importer puts in θ: v = 0 there, left out of the comparison)` : ''}; loss ${r.loss.toPrecision(8)} vs f64 ${m.loss64.toPrecision(8)}`);
  const t = torch?.models?.[n];
  if (t && r.err) console.log(`  - agreement bounds (max(${AGREE}, ${SLACK} × PyTorch f32's error, native kernels)): ${['grad', 'hvp', 'ggnvp'].map((q) => `${q} ${e(tolerance(t, q))}`).join(', ')}${m.sensitivity != null ? `; the f64 gradient moves by ${e(m.sensitivity)} when x moves by 1e-7 (ReLU kinks)` : ''}`);
  if (t?.noMkldnn) console.log(`  - PyTorch with oneDNN (mkldnn) convolutions off: grad ${f(t.noMkldnn.grad)} ms, hvp ${f(t.noMkldnn.hvp)} ms, rel. error vs f64 grad ${e(t.noMkldnn.relErr.grad)}, hvp ${e(t.noMkldnn.relErr.hvp)}, ggnvp ${e(t.noMkldnn.relErr.ggnvp)} (the table times PyTorch's default, oneDNN on)`);
  if (t) console.log(`  - PyTorch idioms: GGN·v by ${t.ggnvpIdiom} (${Object.entries(t.ggnvpAll).map(([k, v]) => `${k} ${f(v)} ms`).join(', ')}${t.ggnFunctorchError ? `; functorch: ${t.ggnFunctorchError}` : ''}); Lanczos on the ${t.lanczosIdiom} (${Object.entries(t.lanczosAll).map(([k, v]) => `${k} ${f(v.ms)} ms`).join(', ')})`);
}

console.log('\n| model | P | quantity | hesse ms | PyTorch ms | hesse / PyTorch | rel. error vs f64: hesse | PyTorch f32 | hesse GFLOP/s (% of ceiling) |');
console.log('|---|---:|---|---:|---:|---:|---:|---:|---:|');
for (const n of names) {
  const r = res[n];
  const t = torch?.models?.[n];
  const P = r.meta?.P ?? '—';
  if (r.error) {
    for (const q of ['grad', 'hvp', 'ggnvp', 'lanczos']) console.log(`| ${n} | ${P} | ${q === 'lanczos' ? `top-${K} Lanczos (${t?.lanczosSteps ?? '—'} steps)` : q} | cannot run | ${f(t?.[q])} | — | — | ${e(t?.relErr?.[q])} | — |`);
    continue;
  }
  const F = r.meta.forwardFlops;
  // GEMM-class flops as bench/autodiff.mjs counts them: gradient 3F − F₁, forward-over-reverse HVP
  // 9F − 5F₁ (F₁: the first layer, whose input needs no gradient; left out, which overstates the
  // rate by 5F₁/9F: < 1 % on the ResNet, ~5 % on transformer_float's input projection).
  const gf = { grad: 3 * F, hvp: 9 * F };
  for (const q of ['grad', 'hvp', 'ggnvp']) {
    const ok = r.err[q] <= tolerance(t, q);
    const rate = gf[q] ? `${f(gf[q] / r[q] / 1e6)} (${f((100 * gf[q]) / r[q] / 1e6 / ceil, 0)} %)` : '—';
    console.log(`| ${n} | ${P} | ${q} | ${ok ? f(r[q]) : `**mismatch** (${f(r[q])})`} | ${f(t?.[q])} | ${ok ? ratio(r[q], t?.[q]) : '—'} | ${e(r.err[q])} | ${e(t?.relErr?.[q])} | ${rate} |`);
  }
  const vals = Array.from(r.eig.values);
  const tv = t?.lanczosValues;
  const eigErr = tv ? Math.max(...vals.map((x, i) => Math.abs(x - tv[i]) / Math.abs(tv[0]))) : undefined;
  console.log(`| ${n} | ${P} | top-${K} Lanczos (${r.eig.products} products${r.eig.converged ? '' : ', not converged'}) | ${f(r.lanczos)} | ${f(t?.lanczos)} | ${ratio(r.lanczos, t?.lanczos)} | max \\|Δλ\\|/λ₁ vs PyTorch: ${e(eigErr)} | — | — |`);
}
console.log('\nTop eigenvalues (hesse / PyTorch, same number of Lanczos steps):\n');
for (const n of names) {
  const r = res[n];
  const t = torch?.models?.[n];
  if (r.eig) console.log(`- ${n}: hesse ${Array.from(r.eig.values, (x) => x.toPrecision(6)).join(', ')} (largest residual ${e(Math.max(...r.eig.residuals))}); PyTorch ${t ? t.lanczosValues.map((x) => x.toPrecision(6)).join(', ') : '—'}`);
}
console.log('\nTarget of the issue (HVP ≤ 3× PyTorch):\n');
console.log('| model | hesse HVP / PyTorch HVP | met |');
console.log('|---|---:|---|');
for (const n of names) {
  const r = res[n];
  const t = torch?.models?.[n];
  const q = r.hvp !== undefined && t ? r.hvp / t.hvp : undefined;
  console.log(`| ${n} | ${q === undefined ? (r.error ? 'hesse cannot run' : 'no peer') : `${q.toFixed(2)}×`} | ${q === undefined ? '—' : q <= 3 ? 'yes' : 'no'} |`);
}
