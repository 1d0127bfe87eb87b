// Runs the runtime tests in sequence: Node (ESM, ESM with --experimental-wasm-relaxed-simd, and
// CommonJS), Deno, Chromium (via playwright-core), workerd.
// One line per runtime (PASS/FAIL, time, and the wasm build it ran: wasmVariant()); the failing
// ones' output follows. Exit code 1 if any fails.
// Usage: node test/runtimes/run-all.mjs [-v|--verbose] [node|node-relaxed|node-cjs|deno|deno-workers|browser|workerd ...]
// Each test runs in its own process group (group.mjs), killed on timeout or interrupt; the
// browser and workerd tests also kill the processes they start when they exit.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGroup } from './group.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const dist = join(root, 'dist');
const TIMEOUT_MS = Number(process.env.RUNTIME_TEST_TIMEOUT_MS) || 60_000;

const RUNTIMES = {
  node: [process.execPath, [join(here, 'node.mjs')]],
  'node-relaxed': [process.execPath, ['--experimental-wasm-relaxed-simd', join(here, 'node.mjs')]],
  'node-cjs': [process.execPath, [join(here, 'node-cjs.cjs')]],
  deno: [
    join(root, 'node_modules', '.bin', 'deno'),
    // As a Deno user of the npm package gets it: the package's own dependencies (commander,
    // fflate, onnx-proto) resolve from node_modules; reading is allowed there and in dist only.
    ['run', '--no-lock', '--no-prompt', `--allow-read=${dist},${join(root, 'node_modules')}`, join(here, 'deno.mjs')],
  ],
  // The async objective's module Workers (ts/pool/) in Deno, against the sync objective.
  'deno-workers': [
    join(root, 'node_modules', '.bin', 'deno'),
    ['run', '--no-lock', '--no-prompt', `--allow-read=${dist},${join(root, 'node_modules')}`, join(here, 'deno-workers.mjs')],
  ],
  browser: [process.execPath, [join(here, 'browser.mjs')]],
  workerd: [process.execPath, [join(here, 'workerd.mjs')]],
};

const args = process.argv.slice(2);
const verbose = args.some((a) => a === '-v' || a === '--verbose');
const picked = args.filter((a) => !a.startsWith('-'));
for (const p of picked) {
  if (!(p in RUNTIMES)) {
    console.error(`unknown runtime '${p}': choose from ${Object.keys(RUNTIMES).join(', ')}`);
    process.exit(2);
  }
}
const names = picked.length ? picked : Object.keys(RUNTIMES);

for (const f of ['index.js', 'wasm/hesse_bg.wasm', 'wasm/hesse_relaxed_bg.wasm']) {
  if (!existsSync(join(dist, f))) {
    console.error(`dist/${f} is missing: build first (bash scripts/build-wasm.sh && npm run build:ts)`);
    process.exit(2);
  }
}

async function run(name) {
  const [cmd, argv] = RUNTIMES[name];
  const started = performance.now();
  const r = await runGroup(cmd, argv, { cwd: root, timeoutMs: TIMEOUT_MS });
  let output = r.output;
  if (r.error) output += `\n${r.error.message}`;
  if (r.timedOut) output += `\ntimed out after ${TIMEOUT_MS / 1000} s`;
  // Every runtime test prints the build it checked as `wasmVariant() = NAME` (checks.mjs variantCheck).
  const variant = /wasmVariant\(\) = ([\w-]+)/.exec(output)?.[1] ?? '?';
  return { name, ok: r.code === 0 && !r.timedOut && !r.error, seconds: (performance.now() - started) / 1000, output, code: r.code, variant };
}

const results = [];
const t0 = performance.now();
for (const name of names) {
  const r = await run(name);
  results.push(r);
  console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${name.padEnd(12)} ${r.seconds.toFixed(1).padStart(5)} s  ${r.ok ? r.variant : `${r.variant.padEnd(12)}  (exit ${r.code})`}`);
  if (verbose || !r.ok) console.log(r.output.trimEnd().replace(/^/gm, '      | '));
}
const failed = results.filter((r) => !r.ok).map((r) => r.name);
console.log(
  `${failed.length ? `FAIL  ${failed.join(', ')}` : `PASS  all ${results.length}`} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
process.exitCode = failed.length ? 1 : 0;
