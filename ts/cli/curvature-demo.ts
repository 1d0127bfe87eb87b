/**
 * `hessian demo`: the main job on built-in data. Trains an MLP on all 1797 8×8 digits that ship
 * with hesse (Hessian-free optimization; the objective is the mean over all of them, accumulated
 * in batches of 256, so only one batch is in wasm at a time), then reports the loss, the extreme eigenvalues and the trace
 * of the Hessian and of the Gauss–Newton matrix side by side, with timings and products used,
 * and writes the Hessian's spectral density as an SVG plot.
 */
import { digits } from '../datasets.js';
import { eigenvalues, spectralDensity, trace } from '../curvature.js';
import { init } from '../runtime.js';
import { hessianFree } from '../optim.js';
import { objective } from '../objective.js';
import { sequential, linear, tanh } from '../nn.js';
import { densitySvg } from './analyze.js';
import { markdownTable } from './measure.js';

/** Where `hessian demo` writes its outputs: injected, so tests can capture them. */
export interface DemoOptions {
  /** Where to write the SVG plot. */
  svg: string;
  /** Writes a text file (the SVG plot). */
  writeFile: (path: string, data: string) => Promise<void>;
  /** Prints one line of the report. */
  log: (line: string) => void;
}

const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

/** Samples per batch of the demo's objective (1797 = 7 · 256 + 5: the last batch is short). */
export const DEMO_BATCH = 256;

/**
 * Runs `hessian demo`: trains an MLP 64-32-10 (tanh, cross-entropy, float64) on all the digits, in
 * batches of {@link DEMO_BATCH} (every quantity the exact mean over all samples), by
 * Hessian-free optimization (15 steps), logs the loss, the extreme eigenvalues and the trace of
 * the Hessian and of the GGN with timings and products used, and writes the Hessian's spectral
 * density to `o.svg`. Loads the wasm core itself (`init()`); rejects with what those library
 * calls throw (a HesseError LOAD_FAILED when the wasm or the data cannot be read).
 */
export async function curvatureDemo(o: DemoOptions): Promise<void> {
  await init();
  const d = await digits();
  // Host arrays: the data stay in JS, and the objective stages one batch at a time.
  const x = { data: d.x, shape: [d.n, d.features] };
  const y = { data: d.y, shape: [d.n] };
  const model = sequential([linear(64, 32), tanh(), linear(32, 10)]);
  using obj = objective(model, 'cross_entropy', { x, y }, { seed: 0, batchSize: DEMO_BATCH });
  const batches = Math.ceil(obj.samples / obj.batchSize);
  o.log(`hessian demo: MLP 64-32-10 (tanh, cross-entropy) on the ${obj.samples} 8×8 digits shipped with hesse (all of them, in ${batches} batches of ≤ ${obj.batchSize}); P = ${model.size}, float64\n`);

  let t0 = performance.now();
  const run = hessianFree(obj, { steps: 15, cgMaxIter: 10 });
  const last = run.steps.at(-1)!;
  o.log(`trained by Hessian-free optimization: loss ${run.losses[0]!.toFixed(4)} → ${run.losses.at(-1)!.toFixed(4)} in ${run.steps.length} steps (${last.gradients} gradients, ${last.products} GGN products), ${ms(t0)}`);

  const rows: string[][] = [];
  for (const c of ['hessian', 'ggn'] as const) {
    const op = obj.operator(c);
    t0 = performance.now();
    const top = eigenvalues(op, 5, { tol: 1e-6 });
    const bottom = eigenvalues(op, 3, { which: 'smallest', tol: 1e-6 });
    const tr = trace(op, { method: 'hutch++', samples: 150, seed: 1 });
    const fmt = (v: Float64Array) => Array.from(v, (e) => e.toPrecision(4)).join(', ');
    rows.push([c === 'ggn' ? 'Gauss–Newton' : 'Hessian', fmt(top.values), fmt(bottom.values), `${tr.trace.toPrecision(5)} ± ${tr.stdError.toPrecision(2)}`, String(top.products + bottom.products + tr.products), ms(t0)]);
  }
  o.log('\n' + markdownTable(['matrix', 'top 5 eigenvalues', 'bottom 3', 'trace (Hutch++)', 'products', 'time'], rows));
  o.log('\nThe GGN is positive semidefinite (its bottom eigenvalues are ≥ 0 up to rounding); the Hessian has negative curvature where the GGN has none.');

  t0 = performance.now();
  const density = spectralDensity(obj.operator('hessian'), { probes: 8, steps: 60, seed: 2 });
  await o.writeFile(o.svg, densitySvg(density.grid, density.density, `Hessian spectral density, digits MLP (SLQ, ${density.products} HVPs)`));
  o.log(`\nspectral density by stochastic Lanczos quadrature (${density.products} HVPs, ${ms(t0)}) written to ${o.svg}`);
}
