#!/usr/bin/env node
/**
 * The `hesse` command line: argument parsing, output and exit codes only; the commands live in
 * demo.ts and analyze.ts. Exit code 0 on success, 2 on bad input with one line on stderr that
 * says what to do; nothing is written to --out unless the command succeeded.
 */
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { HesseError, type HesseErrorCode } from '../errors.js';
import { writeNpy } from '../io/npy.js';
import { analyze, info, type CommonOptions, type Result } from './analyze.js';
import { demo } from './demo.js';
import { curvatureDemo } from './curvature-demo.js';

interface NodeProcess {
  argv: string[];
  exitCode?: number;
  stdout: { write(s: string): void };
  stderr: { write(s: string): void; isTTY?: boolean };
}
const proc = (globalThis as unknown as { process: NodeProcess }).process;
const fsName = 'node:fs/promises';
const fs = (await import(fsName)) as { readFile(p: string): Promise<Uint8Array>; writeFile(p: string, d: Uint8Array | string): Promise<void> };
interface Worker {
  once(event: 'message', f: (m: { values?: Float64Array; error?: { code: string; message: string } }) => void): void;
  once(event: 'error', f: (e: Error) => void): void;
  terminate(): Promise<number>;
}
const wtName = 'node:worker_threads';
const { Worker } = (await import(wtName)) as { Worker: new (url: URL, o: { workerData: unknown; transferList: ArrayBuffer[] }) => Worker };

/** eigvalsh in a worker thread (eigvalsh-worker.ts): the bar's clock runs during the long wasm call. */
function eigenvaluesInWorker(a: Float64Array, n: number): Promise<Float64Array> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./eigvalsh-worker.js', import.meta.url), { workerData: { a, n }, transferList: [a.buffer as ArrayBuffer] });
    w.once('error', reject);
    w.once('message', (m) => {
      void w.terminate();
      if (m.values) resolve(m.values);
      else reject(new HesseError(m.error!.code as HesseErrorCode, m.error!.message));
    });
  });
}

const program = new Command('hessian').description('second-order autodiff on a WebAssembly SIMD core').exitOverride();

program
  .command('demo')
  .description('the main job on built-in data: train on the digits, then Hessian and Gauss–Newton spectra, trace, density plot')
  .option('--svg <file>', 'where to write the spectral-density plot', 'hesse-demo-density.svg')
  .option('--gemm', 'instead: time the SIMD GEMM against the scalar kernel and check that they agree')
  .action(async (o: { svg: string; gemm?: boolean }) => {
    if (o.gemm) {
      if (!(await demo())) {
        proc.stderr.write('hesse demo: simd and scalar GEMM results differ\n');
        proc.exitCode = 1;
      }
      return;
    }
    await curvatureDemo({ svg: o.svg, writeFile: (p, d) => fs.writeFile(p, d), log: (l) => proc.stdout.write(l + '\n') });
  });

program
  .command('info')
  .description('inputs, outputs, parameter names and shapes, P, op types of an ONNX model')
  .argument('<model>', 'MODEL.onnx')
  .option('--json', 'one JSON object on stdout')
  .action(async (model: string, o: { json?: boolean }) => emit(await info(fs.readFile, model), o));

const ANALYSES: [string, string][] = [
  ['loss', 'the loss'],
  ['grad', 'the gradient (its norm; --out writes it)'],
  ['hvp', 'a Hessian-vector product H·v with --v V.npy'],
  ['hessian', 'the dense Hessian: all eigenvalues (P ≤ 4096), trace, Frobenius norm'],
  ['ggn', 'the dense Gauss–Newton matrix: all eigenvalues (P ≤ 4096), trace, Frobenius norm'],
  ['diag', 'the diagonal of the GGN (default) or the Hessian (--matrix hessian)'],
  ['spectrum', 'extreme eigenvalues (--top, --bottom), trace and spectral density from products'],
];

for (const [name, description] of ANALYSES) {
  const cmd = program
    .command(name)
    .description(description)
    .argument('<model>', 'MODEL.onnx')
    .requiredOption('--x <file>', 'the model input, .npy')
    .option('--y <file>', 'targets, .npy (ce: int64 class indices; mse, bce: float of the output shape)')
    .addOption(new Option('--loss <loss>', 'the loss (mean reductions, as PyTorch)').choices(['mse', 'ce', 'bce', 'mean-output']).makeOptionMandatory())
    .addOption(new Option('--wrt <what>', 'differentiate with respect to').choices(['params', 'input']).default('params'))
    .option('--f64', 'compute in float64')
    .option('--json', 'one JSON object on stdout')
    .option('--quiet', 'no progress bar')
    .option('--seed <n>', 'seed of randomized estimates', (v) => Number.parseInt(v, 10));
  if (['grad', 'hvp', 'hessian', 'ggn', 'diag'].includes(name)) cmd.option('--out <file>', 'write the result as .npy');
  if (name === 'hvp') cmd.option('--v <file>', 'the direction v, .npy');
  if (name === 'diag' || name === 'spectrum') cmd.addOption(new Option('--matrix <m>', 'which matrix').choices(['hessian', 'ggn']));
  if (name === 'spectrum') {
    cmd
      .option('--top <k>', 'the k largest eigenvalues', (v) => Number.parseInt(v, 10))
      .option('--bottom <k>', 'the k smallest eigenvalues', (v) => Number.parseInt(v, 10))
      .option('--trace', 'estimate the trace (Hutch++)')
      .option('--density <file>', 'write the spectral density (SLQ) as an SVG plot');
  }
  cmd.action(async (model: string, o: CommonOptions & { json?: boolean; quiet?: boolean; out?: string }) => {
    const format = '{phase}  {bar} {value}/{total} | {duration_formatted}';
    const bar = !o.quiet && proc.stderr.isTTY ? new cliProgress.SingleBar({ stream: proc.stderr as never, clearOnComplete: true, format }, cliProgress.Presets.shades_classic) : undefined;
    let shown: string | undefined; // the phase on the bar
    const t0 = Date.now();
    const progress = (done: number, total: number, phase: string) => {
      // For work that takes over a second, and for any phase that is one blocking step (a bar
      // could not appear during it). A new phase restarts the bar (its own count and clock).
      if (!bar || (shown === undefined && total > 1 && Date.now() - t0 < 1000)) return;
      if (phase === shown) return bar.update(done);
      if (shown !== undefined) bar.stop();
      bar.start(total, done, { phase });
      shown = phase;
    };
    let result: Result;
    try {
      result = await analyze(name, fs.readFile, model, o, progress, eigenvaluesInWorker);
      if (o.out && result.out) {
        const shape = outShape(name, result);
        const arr = result.out instanceof Float64Array ? ({ dtype: 'float64', shape, data: result.out } as const) : ({ dtype: 'float32', shape, data: result.out } as const);
        if (shown !== undefined) progress(0, 1, `writing ${o.out}`);
        await fs.writeFile(o.out, writeNpy(arr));
      }
    } finally {
      if (shown !== undefined) bar?.stop();
    }
    if (o.density && result.svg) await fs.writeFile(o.density, result.svg);
    emit(result, o);
  });
}

function outShape(name: string, r: Result): number[] {
  const n = r.out!.length;
  return name === 'hessian' || name === 'ggn' ? [Math.round(Math.sqrt(n)), Math.round(Math.sqrt(n))] : [n];
}

function emit(r: Result, o: { json?: boolean }): void {
  if (o.json) {
    proc.stdout.write(JSON.stringify(r.json) + '\n');
    return;
  }
  for (const [k, v] of Object.entries(r.json)) {
    const s = Array.isArray(v) && v.length > 12 ? `[${v.slice(0, 12).map(fmt).join(', ')}, … (${v.length})]` : Array.isArray(v) ? `[${v.map(fmt).join(', ')}]` : fmt(v);
    proc.stdout.write(`${k}: ${s}\n`);
  }
}

function fmt(v: unknown): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(8)) : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

try {
  await program.parseAsync(proc.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // Usage errors (missing or unknown options) are bad input too; --help and --version are not.
    proc.exitCode = e.exitCode === 0 ? 0 : 2;
  } else if (e instanceof HesseError) {
    proc.stderr.write(`hesse: ${e.message}\n`);
    proc.exitCode = 2;
  } else {
    throw e;
  }
}
