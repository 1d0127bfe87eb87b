/**
 * The fuzz driver (parent side): bundles the worker with esbuild, runs cases in child
 * processes within a time budget (a fresh process, hence a fresh wasm instance, after every
 * trap, hang or crash, so one trap hides no other), then minimizes one case per distinct
 * failure (dropping the memory-pressure phase, steps, methods and traced ops while the failure
 * persists) and reports them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { encode } from './gen.js';
import { codeOf, genCase } from './suite.js';
import type { Finding } from './oracle.js';
import type { Case } from './cases.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

export interface FuzzOptions {
  seed: number;
  /** Wall-clock budget of the fuzzing phase (ms). */
  budgetMs: number;
  /** Budget of the minimization phase (ms). */
  minimizeMs: number;
  /** Per-case limit before the case counts as a hang (ms). */
  caseTimeoutMs: number;
  /** Explicit case indices (replay) instead of a budgeted run. */
  cases?: number[];
  log?: (line: string) => void;
}

export interface Failure {
  signature: string;
  finding: Finding;
  /** Indices of the cases that showed it. */
  cases: number[];
  /** The minimized case and its reproducer. */
  minimized: Case;
  code: string;
}

export interface FuzzReport {
  seed: number;
  casesRun: number;
  restarts: number;
  failures: Failure[];
  /** Classes that are reported but do not fail the suite. */
  notes: Failure[];
  elapsedMs: number;
}

/** Findings that fail the suite: every class but leaks. */
export const FAILING = new Set(['trap', 'unusable', 'wrong-answer', 'accepted-invalid', 'rejected-valid', 'bad-error', 'hang', 'crash']);

export const signature = (f: Finding) => `${f.cls} | ${f.op.replace(/ \((simd|scalar)\)$/, '')} | ${f.error ?? ''}`;

async function bundleWorker(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'hesse-fuzz-'));
  const outfile = join(dir, 'worker.mjs');
  // One tsconfig for every file: dependencies resolve through the node_modules symlink, and
  // esbuild would otherwise read whatever tsconfig.json sits above their real path.
  await build({ entryPoints: [join(here, 'worker.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile, logLevel: 'error', tsconfig: join(root, 'tsconfig.json') });
  return outfile;
}

interface Run {
  /** Index → findings. */
  findings: Map<number, Finding[]>;
  /** Cases that finished (or were cut off), in order. */
  ran: number[];
  /** The case the worker was in when it stopped without finishing it. */
  cutOff?: number;
  /** The worker printed 'done' (no more cases). */
  done: boolean;
}

/** CPU seconds a process has used, [user, system], from /proc (Linux); undefined elsewhere. */
function cpuTimes(pid: number | undefined): [number, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    return [Number(f[11]) / 100, Number(f[12]) / 100]; // utime, stime (fields 14, 15) in USER_HZ = 100 ticks
  } catch {
    return undefined;
  }
}
const cpuSeconds = (pid: number | undefined): number | undefined => cpuTimes(pid)?.reduce((a, b) => a + b);

/**
 * One worker process until it exits (trap), finishes, or hangs in a case. A case still running
 * at `deadline` is stopped without a finding (the budget ran out, not the case's time).
 */
function runWorker(worker: string, env: Record<string, string>, caseTimeoutMs: number, deadline = Infinity): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=4096', worker], {
      env: { ...process.env, FUZZ_WASM: join(root, 'ts', 'wasm', 'hesse_bg.wasm'), FUZZ_WATCHDOG_MS: String(Math.round(caseTimeoutMs * 0.6)), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const run: Run = { findings: new Map(), ran: [], done: false };
    let current: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    let outOfBudget = false;
    let stderr = '';
    let buf = '';
    // A case past its limit is a hang only if the worker spent the time computing: on a loaded
    // machine (shared CI cores) a trivial case was seen to miss the 10 s wall limit and then pass
    // on replay, alone and after the same 18k cases. So a worker that used less than half the
    // limit in CPU time was starved, not hung: it gets more wall time, up to 3× the limit (a
    // deadlock, which uses no CPU, is still a hang then). Where /proc is missing, wall time decides.
    let caseStart = 0;
    let caseTimes: [number, number] | undefined;
    /** User and system CPU seconds the hung case used (system time: page faults, reclaim). */
    let used = '';
    let startState = '';
    /** The hung case's stack, from the worker's watchdog thread. */
    let stack = '';
    let caseCpu: number | undefined;
    const fire = (budget: number) => {
      const cpu = cpuSeconds(child.pid);
      const starved = cpu !== undefined && caseCpu !== undefined && cpu - caseCpu < caseTimeoutMs / 2000;
      if (budget < caseTimeoutMs) outOfBudget = true;
      else if (starved && Date.now() - caseStart < 3 * caseTimeoutMs) return wait();
      else {
        hung = true;
        const t = cpuTimes(child.pid);
        if (t && caseTimes) used = `; CPU user ${(t[0] - caseTimes[0]).toFixed(1)} s, system ${(t[1] - caseTimes[1]).toFixed(1)} s`;
      }
      child.kill('SIGKILL');
    };
    const wait = () => {
      const budget = deadline - Date.now();
      timer = setTimeout(() => fire(budget), Math.max(0, Math.min(caseTimeoutMs, budget)));
    };
    const arm = () => {
      clearTimeout(timer);
      [caseStart, caseCpu, caseTimes] = [Date.now(), cpuSeconds(child.pid), cpuTimes(child.pid)];
      wait();
    };
    const add = (i: number, f: Finding) => run.findings.set(i, [...(run.findings.get(i) ?? []), f]);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let ev: { t: string; i: number; f?: Finding; state?: string; frames?: string };
        try {
          ev = JSON.parse(line);
        } catch {
          continue;
        }
        if (ev.t === 'start') {
          current = ev.i;
          startState = ev.state ?? '';
          stack = '';
          arm();
        } else if (ev.t === 'stack' && ev.i === current) stack = ev.frames ?? '';
        else if (ev.t === 'finding') add(ev.i, ev.f!);
        else if (ev.t === 'end') {
          run.ran.push(ev.i);
          current = undefined;
          clearTimeout(timer);
        } else if (ev.t === 'done') run.done = true;
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      if (current !== undefined && outOfBudget) {
        run.done = true;
      } else if (current !== undefined) {
        run.cutOff = current;
        run.ran.push(current);
        add(
          current,
          hung
            ? { cls: 'hang', op: 'case', detail: `no result within ${((Date.now() - caseStart) / 1000).toFixed(0)} s (limit ${caseTimeoutMs / 1000} s, or 3× for a starved worker; it started with ${startState}${used})${stack ? ` [at ${stack}]` : ''}` }
            : { cls: 'crash', op: 'worker', detail: `the worker died (exit ${code}, signal ${sig}): ${stderr.trim().split('\n').slice(-3).join(' / ')}` },
        );
      } else if (!run.done && code !== 0 && run.ran.length === 0) {
        add(-1, { cls: 'crash', op: 'worker start', detail: `the worker failed before any case (exit ${code}): ${stderr.trim().slice(-500)}` });
      }
      resolve(run);
    });
  });
}

/** Runs `c` alone in a fresh worker; its findings. */
async function runSpec(worker: string, dir: string, c: Case, caseTimeoutMs: number, deadline: number): Promise<Finding[]> {
  const file = join(dir, `case-${c.index}.json`);
  writeFileSync(file, encode(c));
  const run = await runWorker(worker, { FUZZ_SPEC: file }, caseTimeoutMs, deadline);
  return [...run.findings.values()].flat();
}

/** Smaller variants of a case, simplest first. */
function* shrinks(c: Case): Generator<Case> {
  if (c.pressureChunk) yield { ...c, pressureChunk: 0 };
  for (let i = 0; i < c.steps.length && c.steps.length > 1; i++) yield { ...c, steps: c.steps.filter((_, j) => j !== i) };
  for (let i = 0; i < c.steps.length; i++) {
    for (const field of ['methods', 'ops'] as const) {
      const arr = c.steps[i]![field] as unknown[] | undefined;
      if (!Array.isArray(arr) || arr.length <= (field === 'methods' ? 1 : 0)) continue;
      for (let j = 0; j < arr.length; j++) {
        const steps = [...c.steps];
        steps[i] = { ...steps[i]!, [field]: arr.filter((_, k) => k !== j) };
        yield { ...c, steps };
      }
    }
  }
}

async function minimize(worker: string, c: Case, sig: string, deadline: number, caseTimeoutMs: number): Promise<Case> {
  const dir = mkdtempSync(join(tmpdir(), 'hesse-fuzz-min-'));
  let best = c;
  let progress = true;
  while (progress && Date.now() < deadline) {
    progress = false;
    for (const cand of shrinks(best)) {
      if (Date.now() >= deadline) break;
      const fs = await runSpec(worker, dir, cand, caseTimeoutMs, deadline);
      if (fs.some((f) => signature(f) === sig)) {
        best = cand;
        progress = true;
        break;
      }
    }
  }
  return best;
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const log = o.log ?? (() => {});
  const t0 = Date.now();
  const worker = await bundleWorker();
  const deadline = t0 + o.budgetMs;
  const all = new Map<number, Finding[]>();
  let casesRun = 0;
  let restarts = 0;
  let next = 0;
  const pending = o.cases ? [...o.cases] : undefined;
  while (pending ? pending.length > 0 : Date.now() < deadline) {
    const env: Record<string, string> = { FUZZ_SEED: String(o.seed), FUZZ_DEADLINE: String(deadline) };
    if (pending) env.FUZZ_LIST = pending.join(',');
    else env.FUZZ_START = String(next);
    const run = await runWorker(worker, env, o.caseTimeoutMs, pending ? Infinity : deadline);
    for (const [i, fs] of run.findings) all.set(i, [...(all.get(i) ?? []), ...fs]);
    casesRun += run.ran.length;
    if (run.findings.has(-1)) break; // the worker cannot start at all
    const last = run.ran.at(-1);
    if (pending) pending.splice(0, pending.indexOf(last!) + 1 || pending.length);
    else if (last !== undefined) next = last + 1;
    if (!run.done) {
      restarts++;
      log(`fuzz: restarted the worker after case ${last} (${(all.get(last!) ?? []).map((f) => f.cls).join(', ') || 'exit'})`);
    }
    if (run.done || (run.ran.length === 0 && !pending)) break;
  }
  // One entry per distinct failure, with the smallest case that shows it.
  const bySig = new Map<string, { finding: Finding; cases: number[] }>();
  for (const [i, fs] of [...all.entries()].sort((a, b) => a[0] - b[0]))
    for (const f of fs) {
      const sig = signature(f);
      const e = bySig.get(sig) ?? { finding: f, cases: [] };
      if (!e.cases.includes(i)) e.cases.push(i);
      bySig.set(sig, e);
    }
  const minDeadline = Date.now() + o.minimizeMs;
  const failures: Failure[] = [];
  const notes: Failure[] = [];
  for (const [sig, e] of bySig) {
    const failing = FAILING.has(e.finding.cls);
    const smallest = e.cases.filter((i) => i >= 0).map((i) => genCase(o.seed, i)).sort((a, b) => codeOf(a).length - codeOf(b).length)[0];
    if (!smallest) {
      failures.push({ signature: sig, finding: e.finding, cases: e.cases, minimized: { index: -1, seed: o.seed, pressureChunk: 0, steps: [] }, code: '' });
      continue;
    }
    const minimized = failing && e.finding.cls !== 'hang' && Date.now() < minDeadline ? await minimize(worker, smallest, sig, minDeadline, o.caseTimeoutMs) : smallest;
    (failing ? failures : notes).push({ signature: sig, finding: e.finding, cases: e.cases, minimized, code: codeOf(minimized) });
  }
  return { seed: o.seed, casesRun, restarts, failures, notes, elapsedMs: Date.now() - t0 };
}

/** The report as text: one block per distinct failure with its replay command and reproducer. */
export function formatReport(r: FuzzReport): string {
  const block = (f: Failure) =>
    [
      `- [${f.finding.cls}] ${f.finding.op}${f.finding.error ? ` (${f.finding.error})` : ''}: ${f.finding.detail}`,
      `  seen in ${f.cases.length} case(s); replay: FUZZ_SEED=${r.seed} FUZZ_CASES=${f.cases.slice(0, 5).join(',')} npx vitest run test/fuzz`,
      ...f.code.split('\n').map((l) => `    ${l}`),
    ].join('\n');
  return [
    `hesse fuzz: seed ${r.seed}, ${r.casesRun} cases, ${r.restarts} worker restarts, ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `${r.failures.length} distinct failure(s)${r.failures.length ? ':' : ''}`,
    ...r.failures.map(block),
    ...(r.notes.length ? [`notes (not failing):`, ...r.notes.map(block)] : []),
  ].join('\n');
}
