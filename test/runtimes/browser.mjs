// Browser: bundles browser-page.mjs with esbuild (bundle, esm, platform browser), puts both wasm
// builds where the bundle's `new URL('./wasm/hesse_*bg.wasm', import.meta.url)` point, serves the folder
// from 127.0.0.1 on a random port, opens it in headless /usr/bin/chromium (chromium.mjs) and
// asserts on the result the page leaves in the DOM.
// Run: node test/runtimes/browser.mjs   (exit code 0 = all checks passed)
import { build } from 'esbuild';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult } from './checks.mjs';
import { runPage, serveDir, withChromium } from './chromium.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const outDir = join(here, '.out', 'browser');

await rm(outDir, { recursive: true, force: true });
await mkdir(join(outDir, 'wasm'), { recursive: true });
await build({
  entryPoints: [join(here, 'browser-page.mjs')],
  outfile: join(outDir, 'page.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  logLevel: 'warning',
  absWorkingDir: root,
});
for (const f of ['hesse_bg.wasm', 'hesse_relaxed_bg.wasm']) await copyFile(join(root, 'dist', 'wasm', f), join(outDir, 'wasm', f));
await writeFile(
  join(outDir, 'index.html'),
  '<!doctype html><meta charset="utf-8"><title>hesse runtime test</title><link rel="icon" href="data:,"><pre id="result"></pre><script type="module" src="./page.js"></script>\n',
);

const server = await serveDir(outDir);
let exitCode = 1;
try {
  // The page's deliberate 404 (browser-page.mjs) makes Chromium log "Failed to load resource"; nothing else may.
  const allowed = (m) => m.text().startsWith('Failed to load resource') && m.location().url.endsWith('/missing/hesse_bg.wasm');
  const { result, fromWindow, pageErrors } = await withChromium((browser) => runPage(browser, server.url, { allowed }));
  result.checks.push({
    name: 'page asked for the missing file, then fetched the relaxed build (only) from the server',
    ok:
      server.served.includes('/missing/hesse_bg.wasm (404)') &&
      server.served.includes('/wasm/hesse_relaxed_bg.wasm') &&
      !server.served.includes('/wasm/hesse_bg.wasm'),
    detail: `served ${server.served.join(' ')}`,
  });
  result.checks.push({ name: 'window.__hesseResult agrees with the DOM', ok: fromWindow === result.ok, detail: '' });
  result.checks.push({ name: 'no page errors', ok: pageErrors.length === 0, detail: pageErrors.join(' | ') });
  result.ok = result.checks.every((c) => c.ok);
  console.log(formatResult(result));
  console.log(`${result.userAgent}: ${result.ok ? 'PASS' : 'FAIL'}`);
  exitCode = result.ok ? 0 : 1;
} catch (e) {
  console.error(`browser test failed: ${e?.stack ?? e}`);
} finally {
  server.close();
}
process.exitCode = exitCode;
