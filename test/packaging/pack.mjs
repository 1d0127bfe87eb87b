// The package as users get it: `npm pack` of this checkout (its dist/ must be built), the tarball's
// file list, a manifest npm need not fix on publish, then ONE scratch project in a temp dir that installs the tarball (its dependencies
// from the registry: --prefer-offline --no-audit --no-fund) and runs the README's examples there,
// each in its runtime, comparing what they print with the `// …` comments beside them:
//   the quick start (Node ESM), main.cjs (Node CommonJS), Deno, app.js bundled by the README's
//   esbuild command and a Vite app (build and dev server), both in Chromium, worker.js in workerd,
//   a TypeScript consumer type-checked against the shipped .d.ts, and the CLI (npx hessian
//   --help, info and loss on an ONNX fixture against its PyTorch reference, demo).
// Tools (esbuild, vite, playwright-core, deno, workerd, tsc) come from this repo's node_modules;
// only `hessian` and its dependencies are installed into the scratch project.
// Run: node test/packaging/pack.mjs [-v] [--keep]   (exit code 0 = all passed; --keep leaves the scratch dir)
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build as esbuild } from 'esbuild';
import { build as viteBuild, createLogger, createServer as viteServer } from 'vite';
import { runPage, serveDir, withChromium } from '../runtimes/chromium.mjs';
import { runGroup } from '../runtimes/group.mjs';
import { serveWorkerd, workerdConfig, WORKER_BUILD } from '../runtimes/workerd-serve.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const verbose = process.argv.includes('-v');
const keep = process.argv.includes('--keep');
const STEP_TIMEOUT_MS = 120_000;
/** The whole test, whatever hangs (a bundler, a browser): then it fails, killing what it started. */
const TOTAL_TIMEOUT_MS = 6 * 60_000;
const FIXTURE = join(root, 'test', 'fixtures', 'onnx', 'mlp_relu_mse');

// ---- what the tarball must hold, exactly
/** Every file in the tarball matches one of these; each `required` one is there. */
const ALLOWED = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^data\/digits\.json$/, /^dist\/(.+\/)?[\w-]+\.(js|d\.ts)$/, /^dist\/wasm\/hesse(_relaxed)?_bg\.wasm$/];
const REQUIRED = ['package.json', 'README.md', 'LICENSE', 'data/digits.json', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/wasm/hesse.js', 'dist/wasm/hesse.d.ts', 'dist/wasm/hesse_bg.wasm', 'dist/wasm/hesse_relaxed_bg.wasm'];

// ---- the README's examples
const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** Fenced blocks as { info, code }, indentation of list items removed. */
const blocks = [...readme.matchAll(/^( *)```(\w+)([^\n]*)\n([\s\S]*?)^\1```/gm)].map(([, indent, lang, rest, body]) => ({
  lang,
  file: rest.trim(),
  code: body.replace(new RegExp(`^${indent}`, 'gm'), ''),
}));
function block(pred, what) {
  const b = blocks.find(pred);
  if (!b) throw new Error(`README has no ${what}`);
  return b.code;
}
const QUICK_START = block((b) => b.lang === 'js' && b.file === '' && b.code.includes("from 'hessian'"), 'quick start (```js block)');
const MAIN_CJS = block((b) => b.file === 'main.cjs', '```js main.cjs block');
const APP_JS = block((b) => b.file === 'app.js', '```js app.js block');
const WORKER_JS = block((b) => b.file === 'worker.js', '```js worker.js block');
const ESBUILD_CMD = block((b) => b.lang === 'sh' && b.code.startsWith('npx esbuild app.js'), 'esbuild command (```sh npx esbuild app.js …)').trim();
const INSTALL = block((b) => b.lang === 'sh' && b.code.trim() === 'npm install hessian', '```sh npm install hessian block');

/** What a block says it prints: the `// …` comment of each console.log line, whitespace removed. */
function expectedOutput(code) {
  return code
    .split('\n')
    .filter((l) => l.includes('console.log('))
    .map((l) => {
      const m = l.match(/\/\/ (.*)$/);
      if (!m) throw new Error(`README example line has no '// output' comment: ${l.trim()}`);
      return m[1].replace(/\s+/g, '');
    });
}
const squash = (lines) => lines.map((l) => l.replace(/\s+/g, '')).filter(Boolean);
function sameOutput(got, code, what) {
  const want = expectedOutput(code);
  const have = squash(got);
  if (JSON.stringify(have) !== JSON.stringify(want)) {
    throw new Error(`${what} printed\n  ${have.join('\n  ')}\nthe README says\n  ${want.join('\n  ')}`);
  }
  return `${want.length} line(s) as the README says`;
}

// ---- processes with a deadline (group.mjs); a failure is an Error with the command and its output
async function run(cmd, args, { cwd, timeoutMs = STEP_TIMEOUT_MS } = {}) {
  const r = await runGroup(cmd, args, { cwd, timeoutMs });
  const shown = `${cmd} ${args.join(' ')}`;
  if (r.error) throw new Error(`${shown}: ${r.error.message}`);
  if (r.timedOut) throw new Error(`${shown} did not finish within ${timeoutMs / 1000} s\n${r.output}`);
  if (r.code !== 0) throw new Error(`${shown} exited ${r.code}\n${r.output}`);
  return r;
}

// ---- the checks
const results = [];
async function check(name, fn) {
  const t0 = performance.now();
  let ok = true;
  let detail;
  try {
    detail = (await fn()) ?? '';
  } catch (e) {
    ok = false;
    // An Error thrown by a check says what failed; anything else (a TypeError…) is a bug here: its stack.
    detail = e instanceof Error && e.constructor !== Error ? e.stack : String(e?.message ?? e);
  }
  const seconds = (performance.now() - t0) / 1000;
  results.push({ name, ok });
  console.log(`${ok ? 'PASS' : 'FAIL'}  ${name.padEnd(44)} ${seconds.toFixed(1).padStart(5)} s`);
  if ((verbose || !ok) && detail) console.log(String(detail).trimEnd().replace(/^/gm, '      | '));
  return ok;
}

for (const f of ['dist/index.js', 'dist/wasm/hesse_bg.wasm', 'dist/wasm/hesse_relaxed_bg.wasm', 'dist/cli/main.js']) {
  if (!existsSync(join(root, f))) {
    console.error(`${f} is missing: build first (npm run build)`);
    process.exit(2);
  }
}

const scratch = await mkdtemp(join(tmpdir(), 'hessian-pack-'));
setTimeout(() => {
  console.error(`packaging test: not done after ${TOTAL_TIMEOUT_MS / 60_000} min, giving up (scratch dir ${scratch})`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS).unref();
const t0 = performance.now();
let tarball;
try {
  const packed = await check('npm pack: exactly the files users need', async () => {
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', scratch, '--loglevel=error'], { cwd: root });
    const [info] = JSON.parse(stdout);
    tarball = join(scratch, info.filename);
    const files = info.files.map((f) => f.path);
    const extra = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    const missing = REQUIRED.filter((f) => !files.includes(f));
    const dts = files.filter((f) => f.endsWith('.js') && f.startsWith('dist/') && !f.startsWith('dist/cli/')).filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts')));
    const mapRefs = files.filter((f) => f.endsWith('.js') && readFileSync(join(root, f), 'utf8').includes('sourceMappingURL'));
    const problems = [
      extra.length && `not needed: ${extra.join(', ')}`,
      missing.length && `missing: ${missing.join(', ')}`,
      dts.length && `JS without its .d.ts: ${dts.join(', ')}`,
      mapRefs.length && `sourceMappingURL to unshipped maps in: ${mapRefs.join(', ')}`,
    ].filter(Boolean);
    if (problems.length) throw new Error(problems.join('\n'));
    return `${files.length} files, ${(info.size / 1024).toFixed(0)} kB packed`;
  });
  if (!packed) throw new Error('no tarball');

  await check('npm publish --dry-run: package.json needs no fixes', async () => {
    // npm normalizes a manifest it finds wrong on publish (and says so); --ignore-scripts: no rebuild.
    const { stdout, stderr } = await run('npm', ['publish', '--dry-run', '--ignore-scripts', '--loglevel=warn'], { cwd: root });
    const warnings = stderr.split('\n').filter((l) => l.startsWith('npm warn') && !l.includes('requires you to be logged in'));
    if (warnings.length) throw new Error(warnings.join('\n'));
    return stdout.trim().split('\n').pop();
  });

  const installed = await check(`${INSTALL.trim()} (the tarball) in a scratch project`, async () => {
    await writeFile(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch', private: true, version: '0.0.0' }));
    await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: scratch });
    const pkg = JSON.parse(readFileSync(join(scratch, 'node_modules', 'hessian', 'package.json'), 'utf8'));
    return `hessian ${pkg.version}`;
  });
  if (!installed) throw new Error('not installed');
  // The page and worker checks share the runtime tests' checks, as plain files of the scratch project.
  const require = createRequire(join(scratch, 'package.json'));

  await check('Node ESM: the README quick start', async () => {
    await writeFile(join(scratch, 'quick-start.mjs'), QUICK_START);
    const { stdout } = await run(process.execPath, ['quick-start.mjs'], { cwd: scratch });
    return sameOutput(stdout.split('\n'), QUICK_START, 'quick-start.mjs');
  });

  await check("Node CommonJS: the README's main.cjs", async () => {
    await writeFile(join(scratch, 'main.cjs'), MAIN_CJS);
    const { stdout, stderr } = await run(process.execPath, ['main.cjs'], { cwd: scratch });
    if (stderr.trim()) throw new Error(`main.cjs wrote to stderr: ${stderr}`);
    return sameOutput(stdout.split('\n'), MAIN_CJS, 'main.cjs');
  });

  await check('Deno: the quick start, hessian from node_modules', async () => {
    await writeFile(join(scratch, 'deno-main.mjs'), QUICK_START);
    // As the README says: --allow-read (the wasm and the data are read from node_modules), nothing else.
    const { stdout } = await run(bin('deno'), ['run', '--no-lock', '--allow-read', 'deno-main.mjs'], { cwd: scratch });
    return sameOutput(stdout.split('\n'), QUICK_START, 'deno run deno-main.mjs');
  });

  await check('TypeScript: a consumer type-checks (nodenext)', async () => {
    await writeFile(
      join(scratch, 'consumer.mts'),
      `import { init, tensor, grad, hvp, hessian, sum, mul, HesseError, datasets, type HesseErrorCode, type Sym, type Tensor } from 'hessian';
await init({ url: new URL('x', import.meta.url) });
const f = (x: Sym) => sum(mul(mul(x, x), x));
const x: Tensor = tensor([1, 2, 3], [3], 'float64');
const g: Tensor = grad(f)(x);
const hv: Tensor = hvp(f, x, x);
const H: Tensor = hessian(f)(x);
const code: HesseErrorCode = 'LOAD_FAILED';
const d: datasets.Dataset = await datasets.digits({ json: undefined });
console.log(g.shape, hv.shape, H.shape, d.n, new HesseError(code, 'm').code);
`,
    );
    await writeFile(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['ES2022', 'DOM', 'ESNext.Disposable'], types: [], strict: true, noEmit: true, skipLibCheck: false },
        files: ['consumer.mts'],
      }),
    );
    await run(bin('tsc'), ['-p', 'tsconfig.json'], { cwd: scratch });
    return 'the shipped .d.ts resolve through "exports" and check with skipLibCheck off';
  });

  await check('CLI: npx hessian --help, npx hesse --help', async () => {
    const [a, b] = [await run('npx', ['--no-install', 'hessian', '--help'], { cwd: scratch }), await run('npx', ['--no-install', 'hesse', '--help'], { cwd: scratch })];
    for (const cmd of ['demo', 'info', 'hessian', 'spectrum']) if (!a.stdout.includes(cmd)) throw new Error(`--help does not list '${cmd}':\n${a.stdout}`);
    if (a.stdout !== b.stdout) throw new Error('hesse and hessian print different help');
    return a.stdout.split('\n')[0];
  });

  await check('CLI: info and loss on an ONNX fixture vs PyTorch', async () => {
    const ref = JSON.parse(readFileSync(join(FIXTURE, 'reference.json'), 'utf8'));
    const info = JSON.parse((await run('npx', ['--no-install', 'hessian', 'info', join(FIXTURE, 'model.onnx'), '--json'], { cwd: scratch })).stdout);
    if (info.params !== ref.P || JSON.stringify(info.op_types) !== JSON.stringify(ref.op_types)) {
      throw new Error(`info: params ${info.params}, op_types ${info.op_types}; PyTorch: ${ref.P}, ${ref.op_types}`);
    }
    const args = ['--no-install', 'hessian', 'loss', join(FIXTURE, 'model.onnx'), '--x', join(FIXTURE, 'x.npy'), '--y', join(FIXTURE, 'y.npy'), '--loss', ref.loss, '--f64', '--json'];
    const { loss } = JSON.parse((await run('npx', args, { cwd: scratch })).stdout);
    const rel = Math.abs(loss - ref.loss_value) / Math.abs(ref.loss_value);
    if (!(rel < 1e-10)) throw new Error(`loss ${loss}, PyTorch float64 ${ref.loss_value} (rel ${rel})`);
    return `P = ${info.params}, loss rel err ${rel.toExponential(1)}`;
  });

  await check('CLI: npx hessian demo (data and wasm from the package)', async () => {
    const svg = join(scratch, 'density.svg');
    const { stdout } = await run('npx', ['--no-install', 'hessian', 'demo', '--svg', svg], { cwd: scratch });
    const header = stdout.split('\n')[0];
    if (!/on the 1797 8×8 digits/.test(header) || !/\| Hessian +\|/.test(stdout) || !/\| Gauss–Newton +\|/.test(stdout)) throw new Error(`unexpected output:\n${stdout}`);
    if (!readFileSync(svg, 'utf8').startsWith('<svg')) throw new Error('no SVG written');
    return header;
  });

  await withChromium(async (browser) => {
    /** A page that runs `entry` (an ES module) and reports what it console.logs; the args JSON-encoded. */
    const harness = (entry) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><pre id="result"></pre>
<script type="module">
const logs = [];
const log = console.log;
console.log = (...args) => (logs.push(args.map((a) => JSON.stringify(a)).join(' ')), log(...args));
const out = document.getElementById('result');
try {
  await import(${JSON.stringify(entry)});
  out.textContent = JSON.stringify({ ok: true, logs });
} catch (e) {
  out.textContent = JSON.stringify({ ok: false, logs, error: String(e?.stack ?? e) });
}
out.dataset.done = '1';
</script>
`;
    async function inPage(url, code, what) {
      const { result, pageErrors } = await runPage(browser, url);
      if (!result.ok) throw new Error(`${what} threw: ${result.error}`);
      if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join(' | ')}`);
      return sameOutput(result.logs, code, what);
    }

    await check("esbuild: the README's app.js and command, in Chromium", async () => {
      const dir = join(scratch, 'esbuild');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'app.js'), APP_JS);
      const [, ...args] = ESBUILD_CMD.split(/\s+/); // npx esbuild …: the repo's esbuild, in the scratch project
      await run(bin('esbuild'), args.slice(1), { cwd: dir });
      await writeFile(join(dir, 'public', 'index.html'), harness('./app.js'));
      const server = await serveDir(join(dir, 'public'));
      try {
        const detail = await inPage(server.url, APP_JS, 'app.js');
        // Chromium has relaxed SIMD: the app must have chosen that build.
        if (!server.served.some((p) => /^\/hesse_relaxed_bg-\w+\.wasm$/.test(p))) throw new Error(`the bundle did not fetch the relaxed build: served ${server.served.join(' ')}`);
        return `${detail}; served ${server.served.join(' ')}`;
      } finally {
        server.close();
      }
    });

    // Vite: no README code of its own (nothing to configure); the quick start as a Vite app.
    const viteRoot = join(scratch, 'vite');
    await mkdir(viteRoot, { recursive: true });
    await writeFile(join(viteRoot, 'main.js'), QUICK_START);
    await writeFile(join(viteRoot, 'index.html'), harness('./main.js'));
    // Vite must not warn about the package either (a warning is something every user would see).
    const viteWarnings = [];
    const customLogger = createLogger('warn');
    customLogger.warn = customLogger.warnOnce = (msg) => viteWarnings.push(msg);
    const noWarnings = () => {
      if (viteWarnings.length) throw new Error(`Vite warned: ${viteWarnings.splice(0).join(' | ')}`);
    };
    const viteConfig = { root: viteRoot, configFile: false, logLevel: 'warn', clearScreen: false, customLogger };

    await check('Vite build: the quick start, in Chromium', async () => {
      await viteBuild({ ...viteConfig, build: { outDir: join(viteRoot, 'dist'), emptyOutDir: true, target: 'es2022' } });
      const assets = await readdir(join(viteRoot, 'dist', 'assets'));
      for (const build of ['hesse_bg', 'hesse_relaxed_bg']) {
        if (!assets.some((f) => f.startsWith(`${build}-`) && f.endsWith('.wasm'))) throw new Error(`vite build did not emit ${build}.wasm: ${assets.join(' ')}`);
      }
      noWarnings();
      const server = await serveDir(join(viteRoot, 'dist'));
      try {
        return `${await inPage(server.url, QUICK_START, 'vite build of main.js')}; served ${server.served.join(' ')}`;
      } finally {
        server.close();
      }
    });

    await check('Vite dev server: the quick start, in Chromium', async () => {
      const dev = await viteServer({ ...viteConfig, server: { host: '127.0.0.1', port: 0, strictPort: false } });
      try {
        await dev.listen();
        const detail = await inPage(dev.resolvedUrls.local[0], QUICK_START, 'vite dev of main.js');
        noWarnings();
        return detail;
      } finally {
        await dev.close();
      }
    });
  });

  await check("workerd: the README's worker.js", async () => {
    const dir = join(scratch, 'workerd');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'worker.js'), WORKER_JS);
    await esbuild({ ...WORKER_BUILD, entryPoints: [join(dir, 'worker.js')], outfile: join(dir, 'out', 'worker.js'), absWorkingDir: dir });
    // The exports resolve to the installed files, which become the config's wasm modules.
    for (const f of ['hesse_bg.wasm', 'hesse_relaxed_bg.wasm']) await cp(require.resolve(`hessian/${f}`), join(dir, 'out', f));
    await writeFile(
      join(dir, 'out', 'worker.capnp'),
      workerdConfig(
        [
          ['worker.js', 'esModule', 'worker.js'],
          ['hessian/hesse_bg.wasm', 'wasm', 'hesse_bg.wasm'],
          ['hessian/hesse_relaxed_bg.wasm', 'wasm', 'hesse_relaxed_bg.wasm'],
        ],
        '2026-01-01',
      ),
    );
    const server = await serveWorkerd(join(dir, 'out'), 'worker.capnp', 30_000);
    try {
      const bodies = [];
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`http://127.0.0.1:${server.port}/`, { signal: AbortSignal.timeout(30_000) });
        bodies.push(`${res.status} ${await res.text()}`);
      }
      // The worker returns what main.cjs prints: [[1, 2], [3, 4]]·[[1], [1]].
      const want = `200 ${JSON.stringify([[3], [7]])}`;
      if (bodies.some((b) => b !== want)) throw new Error(`GET / answered ${bodies.join(' then ')}, expected ${want} twice`);
      return `GET / twice: ${bodies[0]}`;
    } finally {
      await server.stop();
    }
  });
} catch (e) {
  if (!['no tarball', 'not installed'].includes(e?.message)) {
    results.push({ name: 'harness', ok: false });
    console.error(`packaging test failed: ${e?.stack ?? e}`);
  }
} finally {
  if (keep) console.log(`scratch project kept in ${scratch}`);
  else await rm(scratch, { recursive: true, force: true });
}

const failed = results.filter((r) => !r.ok).map((r) => r.name);
console.log(`${failed.length ? `FAIL  ${failed.length} of ${results.length}` : `PASS  all ${results.length}`} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
process.exitCode = failed.length ? 1 : 0;
