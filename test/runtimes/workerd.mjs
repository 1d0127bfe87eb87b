// Edge runtime: workerd (the open-source Cloudflare Workers runtime, node_modules/.bin/workerd).
// No file system, no compiling wasm from bytes: the bundle (worker-entry.mjs, by esbuild, the wasm
// imports left to workerd) and both builds, dist/wasm/hesse_bg.wasm and hesse_relaxed_bg.wasm, are
// embedded in the config as an ES module and two `wasm` modules; the worker picks one with
// preferredWasmVariant() and calls init({ module }). For each compatibility date below: writes a config, runs
// `workerd serve` (workerd-serve.mjs), fetches GET / twice (the second request reuses the
// initialized instance), asserts, kills workerd.
// Run: node test/runtimes/workerd.mjs   (exit code 0 = all checks passed)
import { build } from 'esbuild';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult } from './checks.mjs';
import { serveWorkerd, workerdConfig, WORKER_BUILD } from './workerd-serve.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const outDir = join(here, '.out', 'workerd');
const TIMEOUT_MS = 30_000;

/**
 * Workers run with the semantics of their compatibility date. Workers dated before 2025-05-05
 * (most deployed ones, and any new one that sets an older date) have no FinalizationRegistry or
 * WeakRef; hesse must load there too.
 */
const COMPAT = [
  { name: 'current', date: '2026-01-01' },
  { name: 'legacy', date: '2024-09-23' },
];

await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
await build({ ...WORKER_BUILD, entryPoints: [join(here, 'worker-entry.mjs')], outfile: join(outDir, 'worker.js'), absWorkingDir: root });
for (const f of ['hesse_bg.wasm', 'hesse_relaxed_bg.wasm']) await copyFile(join(root, 'dist', 'wasm', f), join(outDir, f));
for (const { name, date } of COMPAT) {
  const modules = [
    ['worker.js', 'esModule', 'worker.js'],
    ['hessian/hesse_bg.wasm', 'wasm', 'hesse_bg.wasm'],
    ['hessian/hesse_relaxed_bg.wasm', 'wasm', 'hesse_relaxed_bg.wasm'],
  ];
  await writeFile(join(outDir, `${name}.capnp`), workerdConfig(modules, date));
}

/** Serves one config, GETs / twice, returns the first result with workerd-level checks added. */
async function runConfig({ name }) {
  let server;
  try {
    server = await serveWorkerd(outDir, `${name}.capnp`, TIMEOUT_MS);
    const { port } = server;
    const results = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`GET / answered ${res.status}: ${text}`);
      results.push(JSON.parse(text));
    }
    const [first, second] = results;
    first.checks.push(
      {
        name: 'second request passes on the same instance',
        ok: second.ok && second.requests === 2,
        detail: second.ok ? `request #${second.requests}` : formatResult(second).split('\n').filter((l) => l.startsWith('FAIL')).join('; '),
      },
      {
        name: 'ran in workerd, not Node',
        ok: first.userAgent === 'Cloudflare-Workers' && !first.hasProcess,
        detail: `userAgent ${first.userAgent}, process ${first.hasProcess ? 'present' : 'absent'}`,
      },
    );
    return first;
  } catch (e) {
    const out = server?.log();
    return { checks: [{ name: 'worker started and answered', ok: false, detail: `${e.message}${out ? `; workerd: ${out}` : ''}` }] };
  } finally {
    await server?.stop();
  }
}

let ok = true;
for (const cfg of COMPAT) {
  const result = await runConfig(cfg);
  const pass = result.checks.length > 0 && result.checks.every((c) => c.ok);
  ok &&= pass;
  console.log(`--- compatibilityDate ${cfg.date} (${cfg.name})`);
  console.log(formatResult(result));
}
console.log(`workerd: ${ok ? 'PASS' : 'FAIL'}`);
process.exitCode = ok ? 0 : 1;
