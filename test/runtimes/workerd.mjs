// Edge runtime: workerd (the open-source Cloudflare Workers runtime, node_modules/.bin/workerd).
// No file system: the bundle (worker-entry.mjs, by esbuild, the wasm import left to workerd) and
// dist/wasm/hesse_bg.wasm are embedded in the config as an ES module and a `wasm` module, and the
// worker calls init({ module }). For each compatibility date below: writes a config, runs
// `workerd serve` on 127.0.0.1 port 0 (the real port comes back on --control-fd), fetches GET /
// twice (the second request reuses the initialized instance), asserts, kills workerd.
// Run: node test/runtimes/workerd.mjs   (exit code 0 = all checks passed)
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult } from './checks.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const outDir = join(here, '.out', 'workerd');
const WORKERD = process.env.WORKERD_PATH ?? join(root, 'node_modules', '.bin', 'workerd');
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
await build({
  entryPoints: [join(here, 'worker-entry.mjs')],
  outfile: join(outDir, 'worker.js'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  conditions: ['workerd', 'worker'],
  target: 'es2022',
  external: ['./hesse.wasm'],
  logLevel: 'warning',
  absWorkingDir: root,
});
await copyFile(join(root, 'dist', 'wasm', 'hesse_bg.wasm'), join(outDir, 'hesse_bg.wasm'));
for (const { name, date } of COMPAT) {
  await writeFile(
    join(outDir, `${name}.capnp`),
    `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hesseWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const hesseWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "hesse.wasm", wasm = embed "hesse_bg.wasm"),
  ],
  compatibilityDate = "${date}",
);
`,
  );
}

const children = new Set();
const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

/** Serves one config, GETs / twice, returns the first result with workerd-level checks added. */
async function runConfig({ name, date }) {
  const log = [];
  const child = spawn(WORKERD, ['serve', '--control-fd=3', `${name}.capnp`], {
    cwd: outDir,
    // fd 3: workerd's control channel, one JSON object a line: {"event":"listen","socket":"http","port":41234}
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  child.stdout.on('data', (d) => log.push(String(d)));
  child.stderr.on('data', (d) => log.push(String(d)));
  try {
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workerd did not listen within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      child.once('error', (e) => (clearTimeout(timer), reject(e)));
      child.once('exit', (code, sig) => (clearTimeout(timer), reject(new Error(`workerd exited (${code ?? sig}) before listening`))));
      createInterface({ input: child.stdio[3] }).on('line', (line) => {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        if (msg.event === 'listen' && msg.socket === 'http') (clearTimeout(timer), resolve(msg.port));
      });
    });
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
    const out = log.join('').trim().split('\n').slice(0, 6).join(' | ');
    return { checks: [{ name: 'worker started and answered', ok: false, detail: `${e.message}${out ? `; workerd: ${out}` : ''}` }] };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
    children.delete(child);
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
