// JavaScript peers for bench/autodiff.mjs: jax-js (its Wasm backend) and TF.js (its wasm backend), on
// the caller's workloads with the caller's data, parameters and directions, f32, one thread.
//
// runJsPeers(workloads) → { 'jax-js': { 'W1.grad': ms, ... } | null, tfjs: {...} | null, notes: {...} }
// workloads: { W1: { sizes, batch, loss: 'ce' | 'mse', data: { x, y, params, v, grad, hvp, hessian? } }, ... }
// with flat Float32Arrays, parameter-shaped ones in hesse's layout (per layer: weight [out, in]
// row-major, then bias); y holds class ids for 'ce', targets [batch, out] for 'mse'; grad, hvp
// and hessian are hesse's results at these params, against which the peers are checked.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Median ms over `samples` samples after a warm-up, each ≥ minMs of work (bench/autodiff.mjs's method, awaiting each call). */
async function time(fn, { samples = 7, minMs = 60 } = {}) {
  await fn();
  const out = [];
  for (let s = 0; s < samples; s++) {
    let n = 0;
    const t0 = performance.now();
    let t;
    do {
      await fn();
      n++;
      t = performance.now() - t0;
    } while (t < minMs);
    out.push(t / n);
  }
  return out.sort((a, b) => a - b)[samples >> 1];
}

/** [offset, shape] of each parameter block in hesse's flat layout. */
function blocks(sizes) {
  const out = [];
  let o = 0;
  for (let i = 0; i + 1 < sizes.length; i++) {
    out.push([o, [sizes[i + 1], sizes[i]]], [(o += sizes[i] * sizes[i + 1]), [sizes[i + 1]]]);
    o += sizes[i + 1];
  }
  return out;
}
const split = (flat, sizes) => blocks(sizes).map(([o, s]) => [flat.subarray(o, o + s.reduce((a, b) => a * b, 1)), s]);

const relErr = (a, b) => {
  let d = 0, m = 0;
  for (let i = 0; i < b.length; i++) (d = Math.max(d, Math.abs(a[i] - b[i]))), (m = Math.max(m, Math.abs(b[i])));
  return d / m;
};
const errMsg = (e) => String(e?.message ?? e).replace(/\s+/g, ' ');

async function jaxPeer(workloads, notes) {
  let jax;
  try {
    jax = await import('@jax-js/jax');
    await jax.init('wasm'); // plain init() also probes WebGPU and throws in Node (no `navigator`)
    jax.defaultDevice('wasm');
  } catch (e) {
    notes['jax-js'] = `cannot run: ${errMsg(e)}`;
    return null;
  }
  const { numpy: np, nn, grad, jvp, jit, hessian, blockUntilReady } = jax;
  // jax-js's Wasm backend spreads kernels over Web Workers only when `Worker` and SharedArrayBuffer
  // both exist; Node 20 has no global Worker, so it runs on this thread, like hesse.
  const out = {};
  const modes = [];
  const checks = [];
  for (const [name, w] of Object.entries(workloads)) {
    const { sizes, batch, loss, data } = w;
    const C = sizes.at(-1);
    // Arrays are reference counted and every call consumes its arguments: `.ref` keeps ours alive.
    const x = np.array(data.x).reshape([batch, sizes[0]]);
    const target = loss === 'ce' ? nn.oneHot(np.array(Int32Array.from(data.y), { dtype: np.int32 }), C) : np.array(data.y).reshape([batch, C]);
    const toArrays = (flat) => split(flat, sizes).map(([a, s]) => np.array(a.slice()).reshape(s));
    const params = toArrays(data.params);
    const v = toArrays(data.v);
    const f = (p) => {
      let h = x.ref;
      for (let i = 0; i < p.length; i += 2) {
        h = np.matmul(h, p[i].transpose()).add(p[i + 1]);
        if (i + 2 < p.length) h = np.tanh(h);
      }
      // PyTorch's reductions, as hesse's: CE mean over the batch, MSE mean over all elements.
      return loss === 'ce' ? nn.logSoftmax(h, -1).mul(target.ref).sum().mul(-1 / batch) : np.square(h.sub(target.ref)).mean();
    };
    const g = grad(f);
    const hvp = (p, t) => jvp(g, [p], [t])[1]; // forward-over-reverse, as hesse and JAX's docs do it
    const run = async (fn, ...args) => {
      const r = fn(...args.map((a) => (Array.isArray(a) ? a.map((t) => t.ref) : a.ref)));
      await blockUntilReady(r); // jax-js is lazy: without this nothing is computed in the timed region
      for (const t of [r].flat()) t.dispose();
    };
    // Both eager and jit are timed; the table takes the faster (the peer's best), notes say which.
    const [jg, jh] = [jit(g), jit(hvp)];
    for (const [q, eager, jitted, args] of [['grad', g, jg, [params]], ['hvp', hvp, jh, [params, v]]]) {
      const te = await time(() => run(eager, ...args));
      const tj = await time(() => run(jitted, ...args));
      out[`${name}.${q}`] = Math.min(te, tj);
      modes.push(`${name}.${q} ${te < tj ? 'eager' : 'jit'} (eager ${te.toFixed(2)}, jit ${tj.toFixed(2)} ms)`);
    }
    // Same parameters and data as hesse: results must agree to f32 rounding.
    const flat = async (r) => Float32Array.from((await Promise.all([r].flat().map((t) => t.data()))).flatMap((a) => [...a]));
    checks.push([`${name} grad`, relErr(await flat(jg(params.map((t) => t.ref))), data.grad)]);
    checks.push([`${name} hvp`, relErr(await flat(jh(params.map((t) => t.ref), v.map((t) => t.ref))), data.hvp)]);
    if (name === 'W3' || name === 'W4') {
      // hessian() wants a function of one flat array: slice hesse's flat layout back into blocks.
      const cut = blocks(sizes);
      const flatF = (th) => f(np.split(th, cut.slice(1).map(([o]) => o)).map((b, i) => b.reshape(cut[i][1])));
      const theta = np.array(data.params.slice());
      const H = hessian(flatF);
      const jH = jit(H);
      const opts = { samples: 5, minMs: name === 'W4' ? 300 : 60 };
      try {
        const te = await time(() => run(H, theta), opts);
        const tj = await time(() => run(jH, theta), opts);
        out[`${name}.hessian`] = Math.min(te, tj);
        modes.push(`${name}.hessian ${te < tj ? 'eager' : 'jit'} (eager ${te.toFixed(2)}, jit ${tj.toFixed(2)} ms)`);
        if (data.hessian) checks.push([`${name} Hessian`, relErr(await jH(theta.ref).data(), data.hessian)]);
      } catch (e) {
        out[`${name}.hessian`] = 'fails';
        notes[`jax-js ${name}.hessian`] = errMsg(e);
      }
      jH.dispose();
      theta.dispose();
    }
    jg.dispose();
    jh.dispose();
    for (const t of [x, target, ...params, ...v]) t.dispose();
  }
  const pkg = new URL('../package.json', pathToFileURL(createRequire(import.meta.url).resolve('@jax-js/jax')));
  notes['jax-js'] = `@jax-js/jax ${JSON.parse(readFileSync(pkg, 'utf8')).version}, Wasm backend, one thread; gradient by grad(), HVP by jvp(grad(f)) (forward-over-reverse), Hessian by hessian() = jacfwd(grad(f)) of f on the flat parameters`;
  notes['jax-js modes'] = modes.join('; ');
  const worst = Math.max(...checks.map(([, e]) => e));
  notes['jax-js check'] = `max |jax-js − hesse| / max |hesse|, same params and data: ${checks.map(([k, e]) => `${k} ${e.toExponential(0)}`).join(', ')}: ${worst < 1e-4 ? 'agree (all < 1e-4)' : 'DISAGREE'}`;
  return out;
}

async function tfPeer(workloads, notes) {
  let tf;
  try {
    tf = await import('@tensorflow/tfjs-core');
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // tfjs-core's Node bundle registers no gradient functions (the @tensorflow/tfjs union package
    // does, by importing dist/register_all_gradients.js, which is extensionless ESM that Node cannot
    // load). Bundle that file with esbuild and run it: the gradient registry and the engine are
    // globals, so this second copy of the ops registers into the same engine.
    const require = createRequire(import.meta.url);
    const { build } = await import('esbuild');
    const b = await build({ entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')], bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent' });
    await import(`data:text/javascript;base64,${Buffer.from(b.outputFiles[0].text).toString('base64')}`);
    wasm.setThreadsCount(1); // before setBackend, as in bench/gemm.mjs
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
    notes.tfjs = `tfjs-core ${tf.version_core}, wasm backend ${wasm.version_wasm}, SIMD ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT')}, one thread; gradient by tf.grads, HVP by nested tf.grads (gradient of ⟨∇f, v⟩)`;
  } catch (e) {
    notes.tfjs = `cannot run: ${errMsg(e)}`;
    return null;
  }
  const out = {};
  const checks = [];
  const thrown = {};
  for (const [name, w] of Object.entries(workloads)) {
    const { sizes, batch, loss, data } = w;
    const C = sizes.at(-1);
    const x = tf.tensor2d(data.x, [batch, sizes[0]]);
    const target = loss === 'ce' ? tf.cast(tf.oneHot(tf.tensor1d(Int32Array.from(data.y), 'int32'), C), 'float32') : tf.tensor2d(data.y, [batch, C]);
    // Weights stored [in, out], as tf.layers.dense keeps its kernel: the wasm backend's matMul runs
    // XNNPACK only without transpose flags (~28 GFLOP/s here) and a slow loop with them (~2), so
    // this saves the forward's transposes; the backward's (in tf's MatMul gradient) remain.
    const T = (ts) => ts.map((t, i) => (i % 2 ? t : tf.transpose(t)));
    const toTensors = (flat) => tf.tidy(() => T(split(flat, sizes).map(([a, s]) => tf.tensor(a, s))));
    const params = toTensors(data.params);
    const v = toTensors(data.v);
    const f = (...p) => {
      let h = x;
      for (let i = 0; i < p.length; i += 2) {
        h = tf.add(tf.matMul(h, p[i]), p[i + 1]);
        if (i + 2 < p.length) h = tf.tanh(h);
      }
      return loss === 'ce' ? tf.mul(tf.sum(tf.mul(tf.logSoftmax(h), target)), -1 / batch) : tf.mean(tf.square(tf.sub(h, target)));
    };
    const g = tf.grads(f);
    // HVP: gradient of ⟨∇f, v⟩ by nested tf.grads (TF.js has no forward mode).
    const hvp = tf.grads((...p) => tf.addN(g(p).map((gi, i) => tf.sum(tf.mul(gi, v[i])))));
    const flat = (ts) => {
      const r = tf.tidy(() => tf.concat(T(ts).map((t) => tf.reshape(t, [-1]))));
      tf.dispose(ts);
      const d = r.dataSync();
      r.dispose();
      return d;
    };
    // The wasm backend computes each op inside its call, so the work is done when these return.
    const timed = (fn) => time(() => tf.tidy(() => fn(params)).forEach((t) => t.dispose()));
    out[`${name}.grad`] = await timed(g);
    const eg = relErr(flat(g(params)), data.grad);
    // Tanh's gradient (Exp's, Softmax's too) uses the op's saved output, and the engine saves a clone
    // of it whose tape node precedes the op's own, so the outer tape's walk from the parameters never
    // reaches it (tensorflow/tfjs#3252): the nested gradient throws where that is the only path and
    // silently drops those second-order terms where it is not. So an HVP is timed only if it is right.
    let eh;
    try {
      eh = relErr(flat(hvp(params)), data.hvp);
      out[`${name}.hvp`] = eh < 1e-3 ? await timed(hvp) : `fails: silently wrong (rel. error ${eh.toExponential(0)})`;
    } catch (e) {
      out[`${name}.hvp`] = 'fails: throws';
      (thrown[errMsg(e)] ??= []).push(name);
    }
    checks.push(`${name} ${eg.toExponential(0)}/${eh?.toExponential(0) ?? 'throws'}`);
    tf.dispose([x, target, ...params, ...v]);
  }
  for (const [m, names] of Object.entries(thrown)) notes[`tfjs HVP ${names.join(', ')}`] = `nested tf.grads throws "${m}" (tensorflow/tfjs#3252)`;
  notes['tfjs check'] = `max |TF.js − hesse| / max |hesse| for gradient/HVP: ${checks.join(', ')}`;
  return out;
}

export async function runJsPeers(workloads) {
  const notes = {};
  // A peer that breaks midway gives null and why, not a crashed benchmark.
  const guard = (name, p) => p.catch((e) => ((notes[name] = `failed: ${errMsg(e)}`), null));
  const jax = await guard('jax-js', jaxPeer(workloads, notes));
  const tfjs = await guard('tfjs', tfPeer(workloads, notes));
  return { 'jax-js': jax, tfjs, notes };
}
