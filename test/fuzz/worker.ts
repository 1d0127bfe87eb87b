/**
 * The fuzz worker: a child process with its own wasm instance. It runs cases and writes one
 * JSON line per event to stdout: {t:'start', i}, {t:'finding', i, f}, {t:'end', i}. After a
 * trap or a failed canary the instance cannot be trusted, so it exits and the parent starts a
 * fresh one at the next case.
 *
 * Env: FUZZ_WASM (the .wasm path), FUZZ_SEED, and either FUZZ_LIST (case indices, comma
 * separated) or FUZZ_START (run from this index until FUZZ_DEADLINE, epoch ms), or FUZZ_SPEC
 * (a file holding one encoded case, for minimization).
 */
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as H from '../../ts/index.js';
import { decode } from './gen.js';
import { canary, genCase, runCase } from './suite.js';
import type { Case } from './cases.js';

const env = process.env;
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

await H.init({ bytes: readFileSync(env.FUZZ_WASM!) });
const seed = Number(env.FUZZ_SEED ?? 1);
const deadline = Number(env.FUZZ_DEADLINE ?? Infinity);
const list = env.FUZZ_LIST ? env.FUZZ_LIST.split(',').map(Number) : undefined;
const spec = env.FUZZ_SPEC ? (decode(readFileSync(env.FUZZ_SPEC, 'utf8')) as Case) : undefined;

// A watchdog thread: when one case has run for FUZZ_WATCHDOG_MS it pauses this (main) thread
// through the inspector and writes its stack as a {t:'stack'} line (written from the watchdog
// thread, since this one is busy), so a hang's report says where it was. The debugger is
// enabled only then, so it costs nothing before.
const beat = new Int32Array(new SharedArrayBuffer(4));
beat[0] = -1;
if (env.FUZZ_WATCHDOG_MS) {
  const src = `
const { workerData } = require('node:worker_threads');
const inspector = require('node:inspector');
const { writeSync } = require('node:fs');
const beat = new Int32Array(workerData.sab);
const session = new inspector.Session();
session.connectToMainThread();
session.on('Debugger.paused', (m) => {
  const frames = m.params.callFrames.slice(0, 10).map((f) => f.functionName || '(anonymous)').join(' < ');
  writeSync(1, JSON.stringify({ t: 'stack', i: beat[0], frames }) + '\\n');
  session.post('Debugger.resume');
});
let last = -1, since = Date.now(), reported = -1;
setInterval(() => {
  const i = beat[0];
  if (i !== last) return void ((last = i), (since = Date.now()));
  if (i >= 0 && reported !== i && Date.now() - since > workerData.ms) {
    reported = i;
    session.post('Debugger.enable', () => session.post('Debugger.pause'));
  }
}, 100);`;
  new Worker(src, { eval: true, workerData: { sab: beat.buffer, ms: Number(env.FUZZ_WATCHDOG_MS) } }).unref();
}

function* cases(): Generator<Case> {
  if (spec) return yield spec;
  if (list) for (const i of list) yield genCase(seed, i);
  else for (let i = Number(env.FUZZ_START ?? 0); Date.now() < deadline; i++) yield genCase(seed, i);
}

for (const c of cases()) {
  // The state a case starts from (a hang's report shows it: a full JS heap means GC thrashing).
  const m = H.memoryStats();
  beat[0] = c.index;
  out({ t: 'start', i: c.index, state: `JS heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, wasm ${(m.wasmBytes / 2 ** 20).toFixed(0)} MiB, ${m.liveTensors} live tensors` });
  const { findings, trapped } = runCase(H, c);
  for (const f of findings) out({ t: 'finding', i: c.index, f });
  const broken = canary(H);
  if (broken) out({ t: 'finding', i: c.index, f: { cls: 'unusable', op: 'canary', detail: `after this case the instance fails the canary: ${broken}` } });
  beat[0] = -1;
  out({ t: 'end', i: c.index });
  if (trapped || broken) process.exit(0);
}
out({ t: 'done' });
