#!/usr/bin/env node
/**
 * The `hessian` command line (also installed as `hesse`): argument parsing, output and exit codes
 * only; the commands live in demo.ts and analyze.ts. Exit code 0 on success, 2 on bad input with
 * one line on stderr, `hessian: <what is wrong>; <what to do>`; nothing is written to --out
 * unless the command succeeded.
 */
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { HesseError, type HesseErrorCode } from '../errors.js';
import { writeNpy } from '../io/npy.js';
import { integer, positive, seed } from '../validate.js';
import { analyze, info, MATRICES, type CommonOptions, type Io, type Result } from './analyze.js';
import { demo } from './demo.js';
import { curvatureDemo } from './curvature-demo.js';

interface NodeProcess {
  argv: string[];
  pid: number;
  exitCode?: number;
  stdout: { write(s: string): void; on(event: 'error', f: (e: { code?: string }) => void): void };
  stderr: { write(s: string): void; isTTY?: boolean };
  exit(code: number): never;
}
const proc = (globalThis as unknown as { process: NodeProcess }).process;
// A reader that stops early (`hessian demo | head`) closes the pipe: the rest of stdout is
// dropped and the command finishes its work (files it writes are written whole), as if nobody
// read it, instead of dying on an unhandled EPIPE; any other stdout error is a real failure.
let stdoutClosed = false;
proc.stdout.on('error', (e) => {
  if (stdoutClosed || e.code === 'EPIPE') {
    stdoutClosed = true; // later writes to the closed stream fail again: nothing more to say
    return;
  }
  proc.stderr.write(`hessian: writing to stdout failed (${e.code ?? 'unknown error'}); check where the output goes\n`);
  proc.exit(1);
});
const fsName = 'node:fs/promises';
const fs = (await import(fsName)) as {
  readFile(p: string | URL): Promise<Uint8Array>;
  writeFile(p: string, d: Uint8Array | string): Promise<void>;
  stat(p: string): Promise<{ isDirectory(): boolean }>;
  access(p: string, mode: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  rm(p: string, o: { force: boolean }): Promise<void>;
};
const pathName = 'node:path';
const path = (await import(pathName)) as { dirname(p: string): string; resolve(p: string): string };
/** fs.constants.W_OK */
const W_OK = 2;
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

/**
 * Resolves if a file can be written at `file`: not a directory, in a directory that exists and
 * is writable, and writable itself if it exists. Checked before any computation.
 */
async function writable(file: string, option: string, others: (readonly [string, string])[] = []): Promise<void> {
  const fail = (why: string, todo: string): never => {
    throw new HesseError('INVALID_ARGUMENT', `${option} '${file}': ${why}; ${todo}`);
  };
  const same = others.find(([, other]) => path.resolve(other) === path.resolve(file));
  if (same) fail(`is also ${same[0]}`, 'write the result to another file');
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat?.isDirectory()) fail('is a directory', `give a file name, e.g. ${option} ${path.resolve(file)}/result${option === '--density' ? '.svg' : '.npy'}`);
  const dir = path.dirname(path.resolve(file));
  const dirStat = await fs.stat(dir).catch(() => undefined);
  if (!dirStat) fail(`the directory '${dir}' does not exist`, `create it first (mkdir -p '${dir}') or write elsewhere`);
  if (!dirStat!.isDirectory()) fail(`'${dir}' is not a directory`, 'give a path inside a directory');
  await fs.access(stat ? file : dir, W_OK).catch(() => fail(`${stat ? 'the file' : `the directory '${dir}'`} is not writable`, 'write elsewhere, or fix the permissions'));
}

/** Writes a whole file or nothing: into a temporary file beside it, then renamed over it. */
async function writeAtomic(file: string, data: Uint8Array | string, option: string): Promise<void> {
  const tmp = `${file}.${proc.pid}.tmp`;
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw new HesseError('INVALID_ARGUMENT', `${option} '${file}': writing failed (${(e as Error).message}); write elsewhere`);
  }
}

const io: Io = { read: (p) => fs.readFile(p), writable };

/**
 * A commander parser for an integer option: the text as a number (kept as text if it is not
 * one, so the message shows what was typed), checked by validate.ts, with an example of a good value.
 */
const integerOption = (flag: string, check: (v: unknown, what: string) => number, example: string) => (text: string) => {
  const value = text.trim() !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
  try {
    return check(value, flag);
  } catch (e) {
    throw e instanceof HesseError ? new HesseError(e.code, `${e.message}; e.g. ${flag} ${example}`) : e;
  }
};

/** The version in package.json, two directories above this file (dist/cli/main.js, or ts/cli/main.ts). */
const version = (JSON.parse(new TextDecoder().decode(await fs.readFile(new URL('../../package.json', import.meta.url)))) as { version: string }).version;

const program = new Command('hessian')
  .description('second-order autodiff on a WebAssembly SIMD core')
  .version(version, '-V, --version', 'print the version')
  // Usage errors come back as CommanderErrors and are printed as one line below, like every other error.
  .exitOverride()
  .configureOutput({ writeErr: () => {}, outputError: () => {} });

program
  .command('demo')
  .description('the main job on built-in data: train on the digits, then Hessian and Gauss–Newton spectra, trace, density plot')
  .option('--svg <file>', 'where to write the spectral-density plot', 'hessian-demo-density.svg')
  .option('--gemm', 'instead: time the SIMD GEMM against the scalar kernel and check that they agree')
  .action(async (o: { svg: string; gemm?: boolean }) => {
    if (o.gemm) {
      if (!(await demo())) {
        proc.stderr.write('hessian: demo: simd and scalar GEMM results differ; the SIMD kernels are wrong on this machine, please report it\n');
        proc.exitCode = 1;
      }
      return;
    }
    await writable(o.svg, '--svg');
    await curvatureDemo({ svg: o.svg, writeFile: (p, d) => writeAtomic(p, d, '--svg'), log: (l) => proc.stdout.write(l + '\n') });
  });

program
  .command('info')
  .description('inputs, outputs, parameters (P), buffers, op types of an ONNX model, and every op hesse cannot import')
  .argument('<model>', 'MODEL.onnx')
  .option('--json', 'one JSON object on stdout')
  .action(async (model: string, o: { json?: boolean }) => emit(await info(io.read, model), o));

const ANALYSES: [string, string][] = [
  ['loss', 'the loss'],
  ['grad', 'the gradient (its norm; --out writes it)'],
  ['hvp', 'a curvature-vector product H·v with --v V.npy (the GGN or Fisher with --matrix)'],
  ['hessian', 'the dense Hessian: all eigenvalues (P ≤ 4096), trace, Frobenius norm'],
  ['ggn', 'the dense Gauss–Newton matrix: all eigenvalues (P ≤ 4096), trace, Frobenius norm'],
  ['diag', 'the diagonal of the GGN (default), the Hessian or the Fisher (--matrix)'],
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
    .option('--seed <n>', 'seed of randomized estimates (an integer ≥ 0, default 0)', integerOption('--seed', seed, '1'))
    .option('--output <name>', 'the graph output to analyze (default the first; hessian info lists them)')
    .option('--buffer <name>', 'a float initializer that is a buffer (register_buffer: a positional table), not a parameter; repeatable', (v: string, prev: string[] = []) => [...prev, v])
    .option('--input <name=file>', "a value for another graph input (a mask, …), .npy; repeatable", (v: string, prev: string[] = []) => [...prev, v])
    .option('--batch-size <n>', 'samples per batch (default all): the mean over all of --x, batch by batch; the last batch may be short', integerOption('--batch-size', positive, '256'))
    .option('--workers <n>', 'workers that share nothing, each with a shard of --x (default 1: in this thread); pays off where the per-sample work dominates (conv nets)', integerOption('--workers', positive, '2'))
    .option('--repeat <r>', 'run the computation R times and report the median seconds of one (loading excluded) as seconds', integerOption('--repeat', positive, '5'))
    .option('--class-axis <n>', "ce only: the output's class axis (default: 1 for [N, C, d…] with labels [N, d…], PyTorch's; the last for [N, d…, C]); needed only where both fit", integerOption('--class-axis', (v, w) => integer(v, w, -64, 64), '1'));
  if (['grad', 'hvp', 'hessian', 'ggn', 'diag'].includes(name)) cmd.option('--out <file>', 'write the result as .npy');
  if (name === 'hvp') cmd.option('--v <file>', 'the direction v, .npy');
  if (name === 'hvp' || name === 'diag' || name === 'spectrum') {
    cmd.addOption(new Option('--matrix <m>', `which matrix (default ${name === 'diag' ? 'ggn' : 'hessian'}; fisher: the empirical Fisher)`).choices(MATRICES));
  }
  if (name === 'spectrum') {
    cmd
      .option('--top <k>', 'the k largest eigenvalues (descending)', integerOption('--top', positive, '5'))
      .option('--bottom <k>', 'the k smallest eigenvalues (ascending)', integerOption('--bottom', positive, '5'))
      .option('--trace', 'estimate the trace (Hutch++)')
      .option('--density <file>', 'write the spectral density (SLQ) as an SVG plot')
      .option('--vectors', 'with --out: also compute the eigenvectors')
      .option('--out <file>', 'with --vectors: write the eigenvectors as a [k, P] .npy, one per row: the --top ones first (descending), then the --bottom ones (ascending)');
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
      result = await analyze(name, io, model, o, progress, eigenvaluesInWorker);
      if (o.out && result.out) {
        const shape = outShape(name, result);
        const arr = result.out instanceof Float64Array ? ({ dtype: 'float64', shape, data: result.out } as const) : ({ dtype: 'float32', shape, data: result.out } as const);
        if (shown !== undefined) progress(0, 1, `writing ${o.out}`);
        await writeAtomic(o.out, writeNpy(arr), '--out');
      }
    } finally {
      if (shown !== undefined) bar?.stop();
    }
    if (o.density && result.svg) await writeAtomic(o.density, result.svg, '--density');
    for (const w of (result.json.warnings as string[] | undefined) ?? []) proc.stderr.write(`hessian: warning: ${w}\n`);
    emit(result, o);
  });
}

function outShape(name: string, r: Result): number[] {
  if (r.shape) return r.shape;
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

/** What to do, for library messages that say only what is wrong (by error code). */
const HINTS: Partial<Record<string, string>> = {
  MALFORMED_FILE: 'check that the file is complete and of the kind the option expects',
  SHAPE_MISMATCH: "compare the data's shapes with the model's ('hessian info MODEL')",
  UNSUPPORTED_OP: "see 'Command line' in the README for what hessian reads",
  OUT_OF_MEMORY: "use 'hessian spectrum' (products only) or a smaller batch",
};

/** The one line a failed run prints: `hessian: <what is wrong>; <what to do>`. */
function errorLine(message: string, hint: string): string {
  const m = message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
  return `hessian: ${m.includes('; ') ? m : `${m.replace(/\.$/, '')}; ${hint}`}\n`;
}

/** `run 'hessian <command> --help'` for the command named on the line, if any. */
function helpHint(): string {
  const name = proc.argv.slice(2).find((a) => !a.startsWith('-'));
  const cmd = program.commands.find((c) => c.name() === name);
  return `run 'hessian${cmd ? ` ${cmd.name()}` : ''} --help'`;
}

try {
  await program.parseAsync(proc.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; `hessian` alone (commander would list the commands on stderr)
    // is a usage error like the others: one line, exit 2.
    if (e.exitCode === 0) proc.exitCode = 0;
    else {
      const args = proc.argv.slice(2);
      const what = e.code !== 'commander.help' ? e.message : args.length ? `'${args.join(' ')}' names no command` : 'no command given';
      proc.stderr.write(errorLine(what, helpHint()));
      proc.exitCode = 2;
    }
  } else if (e instanceof HesseError) {
    proc.stderr.write(errorLine(e.message, HINTS[e.code] ?? helpHint()));
    proc.exitCode = 2;
  } else {
    throw e;
  }
}
