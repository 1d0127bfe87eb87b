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

function* cases(): Generator<Case> {
  if (spec) return yield spec;
  if (list) for (const i of list) yield genCase(seed, i);
  else for (let i = Number(env.FUZZ_START ?? 0); Date.now() < deadline; i++) yield genCase(seed, i);
}

for (const c of cases()) {
  // The state a case starts from (a hang's report shows it: a full JS heap means GC thrashing).
  const m = H.memoryStats();
  out({ t: 'start', i: c.index, state: `JS heap ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB, wasm ${(m.wasmBytes / 2 ** 20).toFixed(0)} MiB, ${m.liveTensors} live tensors` });
  const { findings, trapped } = runCase(H, c);
  for (const f of findings) out({ t: 'finding', i: c.index, f });
  const broken = canary(H);
  if (broken) out({ t: 'finding', i: c.index, f: { cls: 'unusable', op: 'canary', detail: `after this case the instance fails the canary: ${broken}` } });
  out({ t: 'end', i: c.index });
  if (trapped || broken) process.exit(0);
}
out({ t: 'done' });
