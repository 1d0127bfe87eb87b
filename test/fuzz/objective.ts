/**
 * Fuzz steps over objectives: random nn.sequential stacks (MLPs, small CNNs) with random data
 * and losses, then a random sequence of their methods (derivatives, dense and explicit
 * Gauss–Newton, K-FAC, Laplace, Hessian-free, native operators into the estimators) with random
 * options. The oracle uses identities between independent code paths: central differences
 * (float64, smooth activations), Hessian rows vs HVPs, GGN products vs the explicit SYRK GGN,
 * K-FAC's damped inverse undoing its product, Hessian-free's monotone losses, PSD-ness.
 */
import { Rng, boolOpt, combine, countOpt, enumOpt, fillValue, lit, litOpts, numberOpt, opts, seedOpt, type DT, type Opt, type Validity } from './gen.js';
import { dot, expectClose, expectFinite, fail, jacobiEigenvalues, maxAbs, norm } from './oracle.js';
import type { Kind } from './cases.js';
import type { Tensor } from '../../ts/index.js';

type Layer = { fn: string; args: unknown[] };
const SMOOTH_ACTS = ['tanh', 'sigmoid', 'softplus', 'gelu'];
const KINKED_ACTS = ['relu', 'leakyRelu', 'elu'];
const LOSSES = ['mse', 'cross_entropy', 'ce', 'bce', 'bce_with_logits', 'mean_output'] as const;
const METHODS = ['loss', 'grad', 'hvp', 'hessian', 'ggnvp', 'ggn', 'gaussNewton', 'fisherVp', 'curvatureProducts', 'kfac', 'laplace', 'hessianFree', 'operator', 'setData', 'check'] as const;

function genLayers(r: Rng, cnn: boolean, d0: number, img: [number, number, number]): { layers: Layer[]; out: number; smooth: boolean; valid: boolean } {
  const layers: Layer[] = [];
  let smooth = true;
  let valid = true;
  const act = () => {
    if (r.chance(0.7)) {
      const a = r.pick([...SMOOTH_ACTS, ...KINKED_ACTS]);
      if (KINKED_ACTS.includes(a)) smooth = false;
      layers.push({ fn: a, args: a === 'leakyRelu' ? [0.1] : a === 'elu' ? [1] : a === 'gelu' && r.chance(0.3) ? [{ approximate: 'tanh' }] : [] });
    }
  };
  let width = d0;
  if (cnn) {
    const [C, H, W] = img;
    const O = r.int(1, 3);
    const k = r.int(1, Math.min(3, H, W));
    const stride = r.pick([1, 2]);
    const padding = r.pick([0, 1]);
    layers.push({ fn: 'conv2d', args: [C, O, k, { stride, padding }] });
    act();
    layers.push({ fn: 'flatten', args: [] });
    width = O * (Math.floor((H + 2 * padding - k) / stride) + 1) * (Math.floor((W + 2 * padding - k) / stride) + 1);
  }
  const depth = r.int(1, 3);
  for (let i = 0; i < depth; i++) {
    const out = r.int(1, 4);
    layers.push({ fn: 'linear', args: [width, out, ...(r.chance(0.2) ? [{ bias: false }] : [])] });
    width = out;
    if (i < depth - 1) {
      act();
      if (r.chance(0.15)) layers.push({ fn: 'layerNorm', args: [width] });
    }
  }
  if (r.chance(0.12)) {
    // A stack that is not one: a width mismatch, a bad size, an unknown layer.
    const bad = r.pick(['mismatch', 'zero', 'frac', 'unknown', 'lnDim'] as const);
    const i = layers.findIndex((l) => l.fn === 'linear');
    if (bad === 'mismatch') layers[i] = { fn: 'linear', args: [(layers[i]!.args[0] as number) + 1, layers[i]!.args[1]] };
    if (bad === 'zero') layers[i] = { fn: 'linear', args: [layers[i]!.args[0], 0] };
    if (bad === 'frac') layers[i] = { fn: 'linear', args: [layers[i]!.args[0], 1.5] };
    if (bad === 'unknown') layers.splice(i + 1, 0, { fn: 'raw', args: [{ type: 'dropout', p: 0.5 }] });
    if (bad === 'lnDim') layers.splice(i + 1, 0, { fn: 'layerNorm', args: [(layers[i]!.args[1] as number) + 1] });
    valid = false;
  }
  return { layers, out: width, smooth, valid };
}

interface Method {
  name: (typeof METHODS)[number];
  validity: Validity;
  [k: string]: unknown;
}

/** Methods that need the loss's output-space curvature (none for 'mean_output'). */
const GGN_FAMILY = ['ggnvp', 'ggn', 'gaussNewton', 'fisherVp', 'kfac', 'laplace', 'hessianFree'];

function genMethod(r: Rng, wrtInput: boolean, labelsBad: boolean, meanOutput: boolean, P: number): Method {
  const name = r.pick(METHODS);
  const paramsOnly = GGN_FAMILY.includes(name) && name !== 'hessianFree';
  let validity: Validity = wrtInput && paramsOnly ? 'err' : wrtInput && name === 'hessianFree' ? 'any' : 'ok';
  if (labelsBad) validity = ['loss', 'grad', 'hvp', 'hessian', 'hessianFree', 'fisherVp'].includes(name) ? 'err' : 'any';
  const m: Method = { name, validity };
  if (name === 'hessian' || name === 'ggn') {
    const chunk = countOpt(r, 1, 8, 0.15, [0]);
    if (chunk.value === 0) chunk.validity = 'err';
    // maxBytes 8 is a limit that a 1×1 matrix fits (a P = 1 objective, e.g. wrt a 1-element input): either.
    const maxBytes: Opt = r.chance(0.08) ? ((v) => ({ value: v, validity: v === 8 ? 'any' : 'err' }) as Opt)(r.pick([8, -1, NaN])) : { value: undefined, validity: 'ok' };
    const o = opts({ chunk, maxBytes });
    m.opts = o.value;
    m.validity = combine(m.validity, o.validity);
  } else if (name === 'gaussNewton') {
    m.part = r.chance(0.9) ? r.pick(['dense', 'diagonal', 'layers']) : r.pick(['full', 'diag', undefined]);
    const chunk = countOpt(r, 1, 70, 0.12, [0]);
    if (chunk.value === 0) chunk.validity = 'err';
    const mc: Opt = r.chance(0.25) ? (r.chance(0.7) ? { value: { samples: r.int(1, 3), seed: r.int(0, 9) }, validity: 'ok' } : { value: { samples: r.pick([0, -1, 1.5, NaN]) }, validity: 'err' }) : { value: undefined, validity: 'ok' };
    const accumulate: Opt = r.chance(0.2) ? (r.chance(0.7) ? { value: 'f64', validity: 'ok' } : { value: r.pick(['f32', 'float64', true]), validity: 'err' }) : { value: undefined, validity: 'ok' };
    const maxBytes: Opt = r.chance(0.06) ? ((v) => ({ value: v, validity: v === 8 ? 'any' : 'err' }) as Opt)(r.pick([8, -1, NaN])) : { value: undefined, validity: 'ok' };
    const o = opts({ chunk, monteCarlo: mc, accumulate, maxBytes });
    m.opts = o.value;
    m.validity = combine(m.validity, o.validity, ['dense', 'diagonal', 'layers'].includes(m.part as string) ? 'ok' : 'err');
  } else if (name === 'curvatureProducts') {
    const c = r.weighted([[3, 'hessian'], [3, 'ggn'], [2, 'fisher'], [2, 'mc'], [1, 'bad']] as const);
    m.curvature = c === 'mc' ? { mcFisher: { samples: r.chance(0.8) ? r.int(1, 3) : r.pick([0, -2, 1.5]), seed: r.int(0, 5) } } : c === 'bad' ? r.pick(['gauss', 'GGN', { fisher: 1 }]) : c;
    const bad = c === 'bad' || (c === 'mc' && !((m.curvature as { mcFisher: { samples: number } }).mcFisher.samples >= 1 && Number.isInteger((m.curvature as { mcFisher: { samples: number } }).mcFisher.samples)));
    m.k = r.chance(0.85) ? r.int(1, 4) : r.pick([0, -1, 1.5]);
    m.validity = combine(m.validity === 'err' && c === 'hessian' && !labelsBad ? 'ok' : m.validity, bad ? 'err' : 'ok', (m.k as number) >= 1 && Number.isInteger(m.k) ? 'ok' : m.k === 0 ? 'any' : 'err');
    if (wrtInput && c !== 'hessian') m.validity = 'err';
    if (labelsBad && c === 'hessian') m.validity = 'err';
  } else if (name === 'kfac') {
    const variant = enumOpt(r, ['exact', 'mc']);
    const samples = countOpt(r, 1, 3, 0.15);
    const seed = seedOpt(r);
    const o = opts({ variant, samples, seed });
    m.opts = o.value;
    m.damping = r.chance(0.85) ? r.pick([1e-2, 0.1, 1]) : r.pick([0, -1, NaN]);
    m.validity = combine(m.validity, o.validity);
    m.dampingValidity = (m.damping as number) > 0 ? 'ok' : m.damping === 0 ? 'any' : 'err';
  } else if (name === 'laplace') {
    const priorPrecision = numberOpt(r, () => r.pick([0.1, 1, 10]), 0);
    if (priorPrecision.value === 0) priorPrecision.validity = 'err';
    const subset = enumOpt(r, ['all', 'last-layer']);
    const o = opts({ priorPrecision, subset });
    m.opts = o.value;
    m.validity = combine(m.validity, o.validity);
  } else if (name === 'hessianFree') {
    const steps = countOpt(r, 0, 3, 0.12);
    const damping = numberOpt(r, () => r.pick([0.1, 1, 10]), 0);
    if (damping.value === 0) damping.validity = 'err';
    const curvature = r.chance(0.9) ? { value: r.pick([undefined, 'ggn', 'hessian']), validity: 'ok' as Validity } : { value: r.pick(['fisherX', 7]), validity: 'err' as Validity };
    const cgMaxIter = countOpt(r, 1, 10, 0.1, [0]);
    const cgRtol = numberOpt(r, () => r.pick([1e-3, 0.1]), 0, 0.1);
    const warmStart = numberOpt(r, () => r.pick([0, 0.5, 0.95]), 0, 0.1);
    const o = opts({ steps, damping, curvature, cgMaxIter, cgRtol, warmStart });
    m.opts = o.value;
    m.validity = combine(m.validity, o.validity);
  } else if (name === 'operator') {
    m.curvature = r.pick(['hessian', 'ggn', 'fisher']);
    m.k = r.int(1, 3);
    if (wrtInput) m.validity = 'err';
    if (labelsBad) m.validity = m.curvature === 'ggn' ? 'any' : 'err';
    if (m.k as number > P) m.validity = combine(m.validity, 'any');
  } else if (name === 'check') {
    m.fn = r.pick(['gradCheck', 'hvpCheck', 'hessianFD']);
    const o = m.fn === 'gradCheck' ? opts({ directions: countOpt(r, 1, 4, 0.15, [0]), seed: seedOpt(r) }) : m.fn === 'hvpCheck' ? opts({ seed: seedOpt(r) }) : opts({});
    m.opts = o.value;
    m.validity = combine(m.validity, o.validity);
  } else if (name === 'setData') {
    m.bad = r.chance(0.6);
    m.validity = m.bad ? 'err' : combine(labelsBad ? 'any' : 'ok');
  }
  if (meanOutput && (GGN_FAMILY.includes(name) || (['curvatureProducts', 'operator'].includes(name) && m.curvature !== 'hessian')) && m.validity === 'ok') m.validity = 'any';
  return m;
}

export const objective: Kind = {
  gen(r) {
    const dt: DT = r.chance(0.5) ? 'float32' : 'float64';
    const cnn = r.chance(0.25);
    const N = r.weighted([[0.3, 0], [3, 1], [6, r.int(2, 4)]] as const);
    const d0 = r.int(1, 4);
    const img: [number, number, number] = [r.int(1, 2), r.int(2, 5), r.int(2, 5)];
    const net = genLayers(r, cnn, d0, img);
    const lossRoll = r.next();
    const loss: unknown = lossRoll < 0.05 ? r.pick(['hinge', 'MSE', 3]) : r.pick(LOSSES);
    const C = net.out;
    const ce = loss === 'cross_entropy' || loss === 'ce';
    const labels = ce ? Array.from({ length: N }, (_, i) => (i * 5 + 1) % C) : undefined;
    let labelsBad = false;
    if (labels && N && r.chance(0.15)) {
      labels[r.int(0, N - 1)] = r.pick([C, -1, 0.5, NaN]);
      labelsBad = true;
    }
    const wrt: Opt = r.chance(0.85) ? { value: r.pick([undefined, 'params', 'params', 'input']), validity: 'ok' } : { value: r.pick(['inputs', 'x', 1]), validity: 'err' };
    const seed = seedOpt(r);
    const checkFinite = boolOpt(r);
    const o = opts({ wrt, seed, checkFinite });
    const construct = combine(net.valid ? 'ok' : 'err', typeof loss === 'string' && (LOSSES as readonly string[]).includes(loss) ? 'ok' : 'err', o.validity, N === 0 ? 'any' : 'ok');
    const wrtInput = wrt.value === 'input';
    const P = (s: number[]) => s.reduce((a, b) => a * b, 1);
    const nParams = (net.layers as Layer[]).reduce((t, l) => {
      const [i, o, k] = l.args as number[];
      if (l.fn === 'linear') return t + i! * o! + ((l.args[2] as { bias?: boolean } | undefined)?.bias === false ? 0 : o!);
      if (l.fn === 'conv2d') return t + P([o!, i!, k!, k!]) + o!;
      if (l.fn === 'layerNorm') return t + 2 * i!;
      return t;
    }, 0);
    const methods = Array.from({ length: r.int(1, 4) }, () => genMethod(r, wrtInput, labelsBad, loss === 'mean_output', wrtInput ? P(cnn ? [N, ...img] : [N, d0]) : nParams));
    // batchSize (drawn last, so the cases before it are unchanged): B < N splits the data and every
    // method then runs batch by batch (the same oracles apply); wrt 'input' refuses B < N.
    const bRoll = r.next();
    const batch: Opt = bRoll < 0.55 ? { value: undefined, validity: 'ok' } : bRoll < 0.92 ? { value: r.int(1, N + 2), validity: 'ok' } : { value: r.pick([0, -1, 1.5, NaN, Infinity, '2', {}]), validity: 'err' };
    if (wrtInput && typeof batch.value === 'number' && batch.validity === 'ok' && batch.value < N) batch.validity = 'err';
    const options = batch.value === undefined ? o.value : { ...o.value, batchSize: batch.value };
    return {
      kind: 'objective', dt, cnn, N, d0, img, layers: net.layers, smooth: net.smooth, loss, C, labels, labelsBad, options, construct: combine(construct, batch.validity), methods,
      xShape: cnn ? [N, ...img] : [N, d0],
    };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const nnx = H.nn as unknown as Record<string, (...a: unknown[]) => unknown>;
    const mkT = (shape: number[], fill: 'rand' | 'small' | 'unit', seed: number): Tensor => {
      const t = H.tensor(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => fillValue(fill, i, seed)), shape, s.dt);
      live.push(t);
      return t;
    };
    const model = ctx.attempt('nn.sequential', s.construct === 'err' ? 'any' : 'ok', () => H.nn.sequential((s.layers as Layer[]).map((l) => (l.fn === 'raw' ? l.args[0] : nnx[l.fn]!(...l.args))) as never));
    if (!model) return;
    const x = mkT(s.xShape, 'rand', 1);
    const y = s.loss === 'mean_output' || typeof s.loss !== 'string' || !(LOSSES as readonly string[]).includes(s.loss as string) ? (s.loss === 'mean_output' ? undefined : mkT([s.N, s.C], 'small', 2)) : s.labels ? keepT(live, H.tensor(s.labels, [s.N], s.dt)) : mkT([s.N, s.C], s.loss === 'mse' ? 'rand' : 'unit', 2);
    const obj = ctx.attempt('objective', s.construct, () => H.objective(model, s.loss, { x, y }, s.options));
    if (!obj || s.construct === 'err') return;
    try {
      const P = obj.size;
      const f64 = s.dt === 'float64';
      const mk = (n: number, f: (i: number) => number): Float32Array | Float64Array => (f64 ? Float64Array.from({ length: n }, (_, i) => f(i)) : Float32Array.from({ length: n }, (_, i) => f(i)));
      const v = mk(P, (i) => fillValue('small', i, 9));
      const exact = f64 && s.smooth && s.N > 0;
      const tolerant = s.N === 0 || s.labelsBad; // no reference values there: only the outcome is judged
      const sc = (xs: ArrayLike<number>) => 1 + maxAbs(xs);
      // The explicit GGN as the reference of the product forms (none for 'mean_output', or bad labels).
      const hasGGN = s.loss !== 'mean_output' && !s.labelsBad && s.options.wrt !== 'input';
      const GN = () => (P <= 80 && hasGGN ? obj.gaussNewton('dense') : undefined);
      for (const m of s.methods as Method[]) {
        const val: Validity = tolerant && m.validity === 'ok' ? 'any' : m.validity;
        const op = `objective.${m.name}`;
        switch (m.name) {
          case 'loss': {
            const l = ctx.attempt(op, val, () => obj.loss());
            if (l !== undefined && val !== 'err' && !tolerant) ctx.check(op, () => expectFinite('loss', [l]));
            break;
          }
          case 'grad': {
            const g = ctx.attempt(op, val, () => obj.grad());
            if (!g || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              if (g.length !== P) fail(`grad: ${g.length} values, size ${P}`);
              expectFinite('grad', g);
              if (!exact) return;
              const at = obj.point();
              const h = 1e-5;
              const fd = (obj.loss(mk(at.length, (i) => at[i]! + h * v[i]!)) - obj.loss(mk(at.length, (i) => at[i]! - h * v[i]!))) / (2 * h);
              expectClose('grad·v vs central difference of the loss', [dot(g, v)], [fd], 1e-5, 1e-7 * sc(g));
            });
            break;
          }
          case 'hvp': {
            const hv = ctx.attempt(op, val, () => obj.hvp(v));
            if (!hv || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              if (hv.length !== P) fail(`hvp: ${hv.length} values, size ${P}`);
              expectFinite('hvp', hv);
              if (!exact) return;
              const at = obj.point();
              const h = 1e-4;
              const [gp, gm] = [obj.grad(mk(at.length, (i) => at[i]! + h * v[i]!)), obj.grad(mk(at.length, (i) => at[i]! - h * v[i]!))];
              expectClose('hvp vs central difference of grad', hv, Float64Array.from(gp, (g, i) => (g - gm[i]!) / (2 * h)), 1e-4, 1e-6 * sc(hv));
            });
            break;
          }
          case 'hessian':
          case 'ggn': {
            const d = ctx.attempt(op, val, () => (m.name === 'hessian' ? obj.hessian(m.opts as Record<string, unknown>) : obj.ggn(m.opts as Record<string, unknown>)), litOpts(m.opts as Record<string, unknown>));
            if (!d || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              if (d.length !== P * P) fail(`${m.name}: ${d.length} values for P = ${P}`);
              if (P === 0) return;
              const i = (s.methods as Method[]).length % P;
              const e = mk(P, (j) => (j === i ? 1 : 0));
              const col = m.name === 'hessian' ? obj.hvp(e) : obj.ggnvp(e);
              expectClose(`${m.name} row ${i} vs its product with e${i}`, d.slice(i * P, (i + 1) * P), col, f64 ? 1e-9 : 1e-4, (f64 ? 1e-11 : 1e-5) * sc(col));
              if (m.name === 'ggn' && hasGGN) {
                const g = GN();
                if (g) expectClose('ggn() vs gaussNewton(dense)', d, g, f64 ? 1e-8 : 1e-3, (f64 ? 1e-10 : 1e-4) * sc(g));
              }
            });
            break;
          }
          case 'gaussNewton': {
            const res = ctx.attempt(op, val, () => obj.gaussNewton(m.part as 'dense', m.opts as Record<string, unknown>), `'${m.part}', ${litOpts(m.opts as Record<string, unknown>)}`);
            if (!res || val === 'err' || tolerant) break;
            const mc = !!(m.opts as { monteCarlo?: unknown }).monteCarlo;
            ctx.check(op, () => {
              const dense = mc || !hasGGN ? undefined : obj.ggn({});
              if (m.part === 'dense') {
                if ((res as ArrayLike<number>).length !== P * P) fail(`gaussNewton('dense'): ${(res as ArrayLike<number>).length} values for P = ${P}`);
                expectFinite('gaussNewton dense', res as ArrayLike<number>);
                if (dense) expectClose('gaussNewton(dense) vs ggn() from products', res as ArrayLike<number>, dense, f64 ? 1e-8 : 1e-3, (f64 ? 1e-10 : 1e-4) * sc(dense));
                if (P) {
                  const q = dot(v, Float64Array.from({ length: P }, (_, i) => dot((res as Float64Array).slice(i * P, (i + 1) * P), v)));
                  if (q < -1e-6 * sc(res as ArrayLike<number>) * norm(v) ** 2) fail(`gaussNewton(dense) is not PSD: vᵀGv = ${q}`);
                }
              } else if (m.part === 'diagonal') {
                if ((res as ArrayLike<number>).length !== P) fail(`gaussNewton('diagonal'): ${(res as ArrayLike<number>).length} values for P = ${P}`);
                if (dense) expectClose('gaussNewton(diagonal) vs diag(ggn())', res as ArrayLike<number>, Float64Array.from({ length: P }, (_, i) => dense[i * P + i]!), f64 ? 1e-8 : 1e-3, (f64 ? 1e-10 : 1e-4) * sc(dense));
              } else if (dense) {
                for (const b of groupBlocks(model.blocks)) {
                  const blk = (res as Record<string, Float64Array>)[b.name];
                  if (!blk) fail(`gaussNewton('layers'): no block '${b.name}' (got ${Object.keys(res).join(', ')})`);
                  const want = Float64Array.from({ length: b.size * b.size }, (_, k) => dense[(b.offset + Math.floor(k / b.size)) * P + b.offset + (k % b.size)]!);
                  expectClose(`gaussNewton(layers) block ${b.name} vs ggn()`, blk, want, f64 ? 1e-8 : 1e-3, (f64 ? 1e-10 : 1e-4) * sc(dense));
                }
              }
            });
            break;
          }
          case 'ggnvp':
          case 'fisherVp': {
            const p = ctx.attempt(op, val, () => (m.name === 'ggnvp' ? obj.ggnvp(v) : obj.fisherVp(v)));
            if (!p || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              if (p.length !== P) fail(`${m.name}: ${p.length} values, size ${P}`);
              expectFinite(m.name, p);
              if (dot(v, p) < -1e-5 * sc(p) * norm(v)) fail(`${m.name}: vᵀCv = ${dot(v, p)} < 0 for a PSD curvature`);
              if (m.name === 'ggnvp') {
                const g = GN();
                if (g) expectClose('ggnvp vs gaussNewton(dense)·v', p, Float64Array.from({ length: P }, (_, i) => dot(g.slice(i * P, (i + 1) * P), v)), f64 ? 1e-8 : 1e-3, (f64 ? 1e-10 : 1e-4) * sc(p) * (1 + P));
              }
            });
            break;
          }
          case 'curvatureProducts': {
            const k = m.k as number;
            const vs = mk(Math.max(0, Number.isInteger(k) ? k : 1) * P, (i) => fillValue('small', i, 13));
            const res = ctx.attempt(op, val, () => obj.curvatureProducts(m.curvature as never, vs, k), `${lit(m.curvature)}, k ${lit(k)}`);
            if (!res || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              if (res.length !== k * P) fail(`curvatureProducts: ${res.length} values for k = ${k}, P = ${P}`);
              expectFinite('curvatureProducts', res);
              for (let j = 0; j < k; j++) {
                const one = obj.curvatureProducts(m.curvature as never, vs.slice(j * P, (j + 1) * P), 1);
                expectClose(`curvatureProducts row ${j} vs a single product`, res.slice(j * P, (j + 1) * P), one, f64 ? 1e-9 : 1e-4, (f64 ? 1e-11 : 1e-5) * sc(one));
              }
            });
            break;
          }
          case 'kfac': {
            const kf = ctx.attempt(op, val, () => obj.kfac(m.opts as Record<string, unknown>), litOpts(m.opts as Record<string, unknown>));
            if (!kf) break;
            try {
              if (val === 'err' || tolerant) break;
              const v64 = Float64Array.from(v);
              const mv = ctx.attempt('kfac.mvp', 'ok', () => kf.mvp(v64));
              ctx.attempt('kfac.mvp (wrong length)', 'err', () => kf.mvp(new Float64Array(P + 1)));
              const lam = m.damping as number;
              if (!mv) break;
              const inv = ctx.attempt('kfac.inverseApply', m.dampingValidity as Validity, () => kf.inverseApply(Float64Array.from(mv, (a, i) => a + lam * v64[i]!), lam), `damping ${lit(lam)}`);
              if (!inv || m.dampingValidity !== 'ok') break;
              ctx.check('kfac', () => {
                const inK = new Uint8Array(P);
                for (const l of kf.layers) inK.fill(1, l.offset, l.offset + l.size);
                const want = Float64Array.from(v64, (a, i) => (inK[i] ? a : 0));
                const gotMasked = Float64Array.from(mv, (a, i) => (inK[i] ? 0 : a));
                if (maxAbs(gotMasked) !== 0) fail('kfac.mvp is non-zero outside the K-FAC layers');
                const cond = 1 + maxAbs(mv) / lam / Math.max(norm(v64), 1e-300) * 10;
                expectClose('kfac.inverseApply((B⊗A)v + λv, λ) vs v', inv, want, 0, 1e-9 * cond * (1 + maxAbs(v64)));
              });
            } finally {
              kf.dispose();
            }
            break;
          }
          case 'laplace': {
            const la = ctx.attempt(op, val, () => H.laplace(obj, m.opts as Record<string, unknown>), litOpts(m.opts as Record<string, unknown>));
            if (!la || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              const pv = la.parameterVariances();
              if (pv.length !== la.size) fail(`laplace: ${pv.length} variances for a subset of ${la.size}`);
              for (const p of pv) if (!(p > 0 && Number.isFinite(p))) fail(`laplace: parameter variance ${p}`);
              const pred = la.predict(x);
              if (pred.mean.length !== s.N * s.C || pred.variance.length !== s.N * s.C) fail(`laplace.predict: ${pred.mean.length} means, ${pred.variance.length} variances for ${s.N}×${s.C}`);
              for (const q of pred.variance) if (!(q >= -1e-12 && Number.isFinite(q))) fail(`laplace.predict: variance ${q}`);
            });
            const wrongX = mkT(s.cnn ? [s.N, 1, 1] : [s.N, s.d0 + 1], 'rand', 4);
            ctx.attempt('laplace.predict (wrong x shape)', 'err', () => la.predict(wrongX));
            break;
          }
          case 'hessianFree': {
            const before = obj.params.slice();
            const res = ctx.attempt(op, val, () => H.hessianFree(obj, m.opts as Record<string, unknown>), litOpts(m.opts as Record<string, unknown>));
            if (!res || val === 'err' || tolerant) {
              obj.params = before;
              break;
            }
            if (s.loss === 'mean_output') {
              obj.params = before; // unbounded below: diverging is its right answer
              break;
            }
            ctx.check(op, () => {
              if (res.losses.length !== res.steps.length + 1) fail(`hessianFree: ${res.losses.length} losses for ${res.steps.length} steps`);
              expectFinite('hessianFree losses', res.losses);
              res.losses.forEach((l, i) => {
                if (i && !(l <= res.losses[i - 1]! * (1 + 1e-6) + 1e-12)) fail(`hessianFree: the loss rose from ${res.losses[i - 1]} to ${l} at step ${i}`);
              });
            });
            obj.params = before;
            break;
          }
          case 'operator': {
            const k = m.k as number;
            const res = ctx.attempt(op, val, () => H.eigenvalues(obj.operator(m.curvature as 'ggn'), k, { maxIter: 200 }), `${m.curvature}, k ${k}`);
            if (!res || val === 'err' || tolerant) break;
            ctx.check(op, () => {
              expectFinite('eigenvalues of the objective', res.values);
              if (m.curvature !== 'hessian') for (const l of res.values) if (l < -1e-6 * (1 + maxAbs(res.values))) fail(`eigenvalues of the ${m.curvature}: ${l} < 0 for a PSD curvature`);
              if (m.curvature === 'ggn' && f64 && res.converged && P <= 40) {
                const g = GN();
                if (!g) return;
                const ref = jacobiEigenvalues(g, P).reverse();
                const scale = 1 + Math.abs(ref[0]!);
                for (const l of res.values) if (!ref.some((e) => Math.abs(e - l) <= 1e-6 * scale)) fail(`eigenvalues(ggn operator): ${l} is no eigenvalue of gaussNewton('dense') (top ${Array.from(ref.slice(0, 3)).join(', ')})`);
              }
            });
            break;
          }
          case 'check': {
            // The library's own finite-difference checks, judged by the exact derivatives.
            const fn = m.fn as 'gradCheck' | 'hvpCheck' | 'hessianFD';
            const res = ctx.attempt(`${fn}`, val, () => (H[fn] as (f: unknown, o: unknown) => unknown)(obj, m.opts), litOpts(m.opts as Record<string, unknown>));
            if (!res || val === 'err' || tolerant || !exact) break;
            ctx.check(fn, () => {
              if (fn === 'hessianFD') {
                const hx = obj.hessian();
                expectClose('hessianFD vs hessian()', res as Float64Array, hx, 1e-4, 1e-6 * sc(hx));
                return;
              }
              if ((m.opts as { directions?: number }).directions === 0) return; // nothing compared
              const { relError, step } = res as { relError: number; step: number };
              if (!(step > 0 && Number.isFinite(step))) fail(`${fn}: step ${step}`);
              // A vanishing derivative makes the relative error meaningless.
              const scale = fn === 'gradCheck' ? maxAbs(obj.grad()) : maxAbs(obj.hessian());
              if (scale > 1e-2 && !(relError < 1e-3)) fail(`${fn}: relError ${relError} for a smooth float64 objective`);
            });
            break;
          }
          case 'setData': {
            const x2 = m.bad ? mkT(s.cnn ? [s.N + 1, ...(s.img as number[])] : [s.N, s.d0 + 1], 'rand', 3) : mkT(s.xShape, 'rand', 3);
            ctx.attempt(op, val, () => obj.setData({ x: x2, y }));
            ctx.attempt('objective.loss (after setData)', val === 'err' ? (tolerant || s.labelsBad ? 'any' : 'ok') : 'any', () => obj.loss());
            break;
          }
        }
      }
    } finally {
      obj.dispose();
    }
  },
  code(s) {
    const layers = (s.layers as Layer[]).map((l) => (l.fn === 'raw' ? lit(l.args[0]) : `nn.${l.fn}(${l.args.map(lit).join(', ')})`)).join(', ');
    const yCode = s.loss === 'mean_output' ? '' : s.labels ? `, y: tensor(${lit(s.labels)}, [${s.N}], '${s.dt}')` : `, y: T([${s.N}, ${s.C}], '${s.dt}', '${s.loss === 'mse' ? 'rand' : 'unit'}', 2)`;
    const lines = [`const model = nn.sequential([${layers}]);`, `const obj = objective(model, ${lit(s.loss)}, { x: T(${lit(s.xShape)}, '${s.dt}', 'rand', 1)${yCode} }, ${litOpts(s.options)});`, `const v = /* P values */ T([obj.size], '${s.dt}', 'small', 9).toArray();`];
    for (const m of s.methods as Method[]) {
      const o = litOpts((m.opts ?? {}) as Record<string, unknown>);
      lines.push(
        {
          loss: 'obj.loss();',
          grad: 'obj.grad();',
          hvp: 'obj.hvp(v);',
          hessian: `obj.hessian(${o});`,
          ggn: `obj.ggn(${o});`,
          gaussNewton: `obj.gaussNewton(${lit(m.part)}, ${o});`,
          ggnvp: 'obj.ggnvp(v);',
          fisherVp: 'obj.fisherVp(v);',
          curvatureProducts: `obj.curvatureProducts(${lit(m.curvature)}, /* k·P values */ vs, ${lit(m.k)});`,
          kfac: `const k = obj.kfac(${o}); k.inverseApply(k.mvp(v) + ${lit(m.damping)}·v, ${lit(m.damping)});`,
          laplace: `laplace(obj, ${o}).predict(x);`,
          hessianFree: `hessianFree(obj, ${o});`,
          operator: `eigenvalues(obj.operator(${lit(m.curvature)}), ${m.k}, { maxIter: 200 });`,
          setData: m.bad ? 'obj.setData({ x: /* another shape */ x2, y }); obj.loss();' : 'obj.setData({ x: x2, y }); obj.loss();',
          check: `${m.fn}(obj, ${o});`,
        }[m.name],
      );
    }
    return lines.join('\n');
  },
};

function keepT(live: Tensor[], t: Tensor): Tensor {
  live.push(t);
  return t;
}

/** Layer blocks (weight and bias together) as gaussNewton('layers') names them. */
function groupBlocks(blocks: readonly { name: string; offset: number; size: number }[]): { name: string; offset: number; size: number }[] {
  const out = new Map<string, { name: string; offset: number; size: number }>();
  for (const b of blocks) {
    const name = b.name.split('.')[0]!;
    const l = out.get(name) ?? { name, offset: b.offset, size: 0 };
    l.size += b.size;
    out.set(name, l);
  }
  return [...out.values()];
}

