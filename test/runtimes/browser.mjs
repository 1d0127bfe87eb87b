// Browser: bundles browser-page.mjs with esbuild (bundle, esm, platform browser), puts the wasm
// where the bundle's `new URL('./wasm/hesse_bg.wasm', import.meta.url)` points, serves the folder
// from 127.0.0.1 on a random port, opens it in headless /usr/bin/chromium through playwright-core
// and asserts on the result the page leaves in the DOM.
// Run: node test/runtimes/browser.mjs   (exit code 0 = all checks passed)
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatResult } from './checks.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = join(here, '..', '..');
const outDir = join(here, '.out', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT_MS = 30_000;

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
await copyFile(join(root, 'dist', 'wasm', 'hesse_bg.wasm'), join(outDir, 'wasm', 'hesse_bg.wasm'));
await writeFile(
  join(outDir, 'index.html'),
  '<!doctype html><meta charset="utf-8"><title>hesse runtime test</title><link rel="icon" href="data:,"><pre id="result"></pre><script type="module" src="./page.js"></script>\n',
);

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm' };
const served = [];
const server = createServer(async (req, res) => {
  const path = normalize(join(outDir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
  const file = path.endsWith(sep) ? join(path, 'index.html') : path;
  try {
    if (!file.startsWith(outDir + sep)) throw new Error('outside');
    const body = await readFile(file);
    served.push(req.url);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(body);
  } catch {
    served.push(`${req.url} (404)`);
    res.writeHead(404).end();
  }
});
await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
const { port } = server.address();

let browser;
let exitCode = 1;
try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: TIMEOUT_MS,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  // The page's deliberate 404 (browser-page.mjs) makes Chromium log "Failed to load resource"; nothing else may.
  const expected404 = (m) => m.text().startsWith('Failed to load resource') && m.location().url.endsWith('/missing/hesse_bg.wasm');
  page.on('console', (m) => m.type() === 'error' && !expected404(m) && pageErrors.push(`console.error: ${m.text()}`));
  await page.goto(`http://127.0.0.1:${port}/`, { timeout: TIMEOUT_MS });
  let text;
  try {
    await page.waitForSelector('#result[data-done]', { state: 'attached', timeout: TIMEOUT_MS });
    text = await page.textContent('#result');
  } catch (e) {
    throw new Error(`the page never finished: ${e.message}\n${pageErrors.join('\n')}`);
  }
  const result = JSON.parse(text);
  const fromWindow = await page.evaluate(() => window.__hesseResult?.ok);
  result.checks.push({
    name: 'page asked for the missing file, then fetched the wasm from the server',
    ok: served.includes('/missing/hesse_bg.wasm (404)') && served.includes('/wasm/hesse_bg.wasm'),
    detail: `served ${served.join(' ')}`,
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
  await browser?.close().catch(() => {});
  server.closeAllConnections?.();
  server.close();
}
process.exitCode = exitCode;
