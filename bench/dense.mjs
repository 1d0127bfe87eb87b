// Dense-path benchmark: a P×P Hessian of an ONNX MLP built from HVPs, then all its eigenvalues,
// by the library (phase by phase) and by the CLI end to end (`hesse hessian`, what the user runs).
// Prints a markdown table. Not a test: nothing here asserts. See bench/README.md ("Dense").
//
//   npm run build && node bench/dense.mjs [--sizes 1027,2050,4096] [--old DIR] [--batch 128]
//
// The model is an MLP 88 → h → 4 (tanh, cross-entropy), P = 93h + 4 (h = 44 gives P = 4096),
// written as ONNX with onnx-proto, with a seeded float32 batch of --batch samples.
// --old DIR: a wasm-bindgen build (hesse.js + hesse_bg.wasm) of an older hesse whose `eigh` is
// also timed on the same matrix, e.g. the hand-written Householder + QL of commit 35323fb:
//   mkdir -p /tmp/hesse-old && git archive 35323fb | tar -x -C /tmp/hesse-old && (cd /tmp/hesse-old && bash scripts/build-wasm.sh)
//   node bench/dense.mjs --old /tmp/hesse-old/ts/wasm
// If PyTorch (or NumPy) is importable by python3 (or $PYTHON), its eigvalsh runs on the same matrix
// (one thread).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as h from '../dist/index.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SIZES = opt('sizes', '1027,2050,4096').split(',').map(Number);
const BATCH = Number(opt('batch', '128'));
const OLD = opt('old', undefined);
const D_IN = 88;
const CLASSES = 4;
const root = fileURLToPath(new URL('..', import.meta.url));

/** A deterministic uniform [−1, 1) stream (splitmix64 on BigInt, fine at these sizes). */
function uniforms(n, seed) {
  let s = BigInt(seed);
  const M = (1n << 64n) - 1n;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x9e3779b97f4a7c15n) & M;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z ^= z >> 31n;
    out[i] = Number(z >> 11n) / 2 ** 53 * 2 - 1;
  }
  return out;
}

/** MLP D_IN → hidden → CLASSES as an ONNX model (Gemm with transB, as PyTorch exports Linear). */
async function mlpOnnx(hidden) {
  const { onnx } = (await import('onnx-proto')).default;
  const t = (name, dims, data) => ({ name, dims, dataType: 1, floatData: Array.from(data) });
  const vi = (name, dims) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const scale = (fanIn, n, seed) => uniforms(n, seed).map((u) => u / Math.sqrt(fanIn));
  const transB = [{ name: 'transB', type: 2, i: 1 }];
  const graph = {
    name: 'mlp',
    initializer: [
      t('fc1.weight', [hidden, D_IN], scale(D_IN, hidden * D_IN, 1)),
      t('fc1.bias', [hidden], scale(D_IN, hidden, 2)),
      t('fc2.weight', [CLASSES, hidden], scale(hidden, CLASSES * hidden, 3)),
      t('fc2.bias', [CLASSES], scale(hidden, CLASSES, 4)),
    ],
    input: [vi('x', [BATCH, D_IN])],
    output: [vi('y', [BATCH, CLASSES])],
    node: [
      { opType: 'Gemm', input: ['x', 'fc1.weight', 'fc1.bias'], output: ['h'], name: 'fc1', attribute: transB },
      { opType: 'Tanh', input: ['h'], output: ['a'], name: 'tanh' },
      { opType: 'Gemm', input: ['a', 'fc2.weight', 'fc2.bias'], output: ['y'], name: 'fc2', attribute: transB },
    ],
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ version: 13 }], graph })).finish();
}

const now = () => performance.now() / 1000;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
/** [result, wall seconds, CPU seconds of this process] (on a shared machine the CPU time is the steadier number). */
const time = (f) => {
  const [t, c] = [now(), cpu()];
  const r = f();
  return [r, now() - t, cpu() - c];
};
const maxRelDiff = (a, b) => {
  let m = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return m / s;
};

async function loadOld(dir) {
  const glue = await import(pathToFileURL(resolve(dir, 'hesse.js')).href);
  await glue.default({ module_or_path: readFileSync(resolve(dir, 'hesse_bg.wasm')) });
  return glue;
}

/** eigvalsh of the matrix file by PyTorch or NumPy on one thread, or undefined. */
function peer(file, n) {
  const code = `
import sys, time
try:
    import torch
    torch.set_num_threads(1)
    a = torch.from_file(sys.argv[1], dtype=torch.float64, size=${n * n}).reshape(${n}, ${n})
    t = time.perf_counter(); w = torch.linalg.eigvalsh(a); s = time.perf_counter() - t
    print('torch', s, w[0].item(), w[-1].item())
except ImportError:
    import numpy as np
    a = np.fromfile(sys.argv[1], dtype=np.float64).reshape(${n}, ${n})
    t = time.perf_counter(); w = np.linalg.eigvalsh(a); s = time.perf_counter() - t
    print('numpy', s, w[0], w[-1])
`;
  const r = spawnSync(process.env.PYTHON ?? 'python3', ['-c', code, file], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
  if (r.status !== 0) return undefined;
  const [lib, s, lo, hi] = r.stdout.trim().split(/\s+/);
  return { lib, s: Number(s), lo: Number(lo), hi: Number(hi) };
}

await h.init();
const old = OLD ? await loadOld(OLD) : undefined;
const dir = mkdtempSync(join(tmpdir(), 'hesse-dense-'));
const rows = [];
try {
  for (const P of SIZES) {
    const hidden = (P - 4) / 93;
    if (!Number.isInteger(hidden)) throw new Error(`P = ${P} is not 93h + 4`);
    const onnxBytes = await mlpOnnx(hidden);
    const x = uniforms(BATCH * D_IN, 10 + P);
    const y = BigInt64Array.from(uniforms(BATCH, 20 + P), (u) => BigInt(Math.floor((u + 1) / 2 * CLASSES) % CLASSES));
    const files = { model: join(dir, `mlp${P}.onnx`), x: join(dir, `x${P}.npy`), y: join(dir, `y${P}.npy`), a: join(dir, `h${P}.f64`) };
    writeFileSync(files.model, onnxBytes);
    writeFileSync(files.x, h.npy.writeNpy({ dtype: 'float32', shape: [BATCH, D_IN], data: x }));
    writeFileSync(files.y, h.npy.writeNpy({ dtype: 'int64', shape: [BATCH], data: y }));

    // The library, phase by phase (what the CLI does, float32 as its default).
    const model = await h.loadOnnx(onnxBytes);
    const data = { x: h.npy.npyToTensor(h.npy.parseNpy(readFileSync(files.x)), 'float32'), y: h.npy.npyToTensor(h.npy.parseNpy(readFileSync(files.y)), 'float32') };
    const obj = h.objective(model, 'cross_entropy', data, { params: model.init({ dtype: 'float32' }) });
    const [m, ...build] = time(() => obj.dense('hessian', { maxBytes: Infinity }));
    obj.dispose();
    const a = Float64Array.from(m);
    const [values, ...eigvalsh] = time(() => h.eigvalsh(a, P));
    const [full, ...eighS] = time(() => h.eigh(a, P));
    const row = { P, build, eigvalsh, eigh: eighS, agree: maxRelDiff(full.values, values) };
    if (old) {
      const [o, ...s] = time(() => old.eigh(a, P));
      row.old = s;
      row.oldAgree = maxRelDiff(o.values, values);
    }
    // The peer reads one triangle; hesse reads (A + Aᵀ)/2 of the float32-built matrix: give the
    // peer that same symmetric matrix.
    const sym = Float64Array.from(a, (v, k) => (v + a[(k % P) * P + Math.floor(k / P)]) / 2);
    writeFileSync(files.a, sym);
    row.peer = peer(files.a, P);
    if (row.peer) row.peerAgree = Math.max(Math.abs(row.peer.lo - values[0]), Math.abs(row.peer.hi - values[P - 1])) / Math.max(Math.abs(values[0]), Math.abs(values[P - 1]));

    // The CLI end to end: a fresh process, ONNX in, eigenvalues out, --out written; bash's
    // `time` gives its wall and CPU (user + sys) seconds.
    const cliArgs = [join(root, 'dist/cli/main.js'), 'hessian', files.model, '--x', files.x, '--y', files.y, '--loss', 'ce', '--json', '--out', join(dir, `out${P}.npy`)];
    const quoted = [process.execPath, ...cliArgs].map((w) => `'${w}'`).join(' ');
    const r = spawnSync('bash', ['-c', `TIMEFORMAT='%R %U %S'; time ${quoted}`], { encoding: 'utf8', maxBuffer: 1 << 28 });
    if (r.status !== 0) throw new Error(`hesse hessian failed (${r.status}): ${r.stderr}`);
    const [wall, user, sys] = r.stderr.trim().split('\n').at(-1).split(' ').map(Number);
    row.cli = [wall, user + sys];
    const json = JSON.parse(r.stdout);
    row.cliAgree = Math.abs(json.eigenvalues[0] - values[P - 1]) / Math.abs(values[P - 1]);
    rows.push(row);
    process.stderr.write(`[dense] ${JSON.stringify(row)}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const g = (s) => (s < 10 ? s.toFixed(2) : s.toFixed(1));
/** "wall (cpu)" seconds. */
const f = (t) => (t === undefined ? '–' : typeof t === 'number' ? g(t) : `${g(t[0])} (${g(t[1])})`);
const e = (v) => (v === undefined ? '–' : v.toExponential(0));
console.log(`Dense Hessian of an ONNX MLP 88-h-4 (tanh, CE, batch ${BATCH}, float32), then all eigenvalues in float64. Seconds, one run each, as wall (CPU of the process).`);
console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} cores), load ${loadavg()[0].toFixed(1)}; wasm ${h.wasmVariant()}.\n`);
const peerName = rows.find((r) => r.peer)?.peer.lib;
console.log(`| P | build (HVPs, K = 64) | eigvalsh (faer) | eigh + vectors (faer) | old eigh (Householder + QL) | ${peerName ? `${peerName} eigvalsh` : 'PyTorch eigvalsh'} | CLI total (build + eigvalsh + --out) |`);
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.P} | ${f(r.build)} | ${f(r.eigvalsh)} | ${f(r.eigh)} | ${f(r.old)} | ${r.peer ? f(r.peer.s) : 'not installed'} | ${f(r.cli)} |`);
console.log(`\nAgreement (max |Δλ| / max |λ|): faer eigh vs eigvalsh ${rows.map((r) => e(r.agree)).join(', ')}; old eigh vs faer ${rows.map((r) => e(r.oldAgree)).join(', ')}; ${peerName ?? 'peer'} vs faer (extremes) ${rows.map((r) => e(r.peerAgree)).join(', ')}; CLI top eigenvalue vs library ${rows.map((r) => e(r.cliAgree)).join(', ')}.`);
