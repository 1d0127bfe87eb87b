// Headless Chromium (/usr/bin/chromium through playwright-core) and a static file server, shared
// by the browser runtime test and the packaging test. A test page writes its result as JSON into
// <pre id="result"> and sets data-done on it.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const TIMEOUT_MS = 30_000;
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.wasm': 'application/wasm', '.json': 'application/json' };

/** Serves `dir` on 127.0.0.1 (random port); `served` lists the paths asked for, 404s marked. */
export async function serveDir(dir) {
  const served = [];
  const server = createServer(async (req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    const file = path.endsWith(sep) ? join(path, 'index.html') : path;
    try {
      if (!file.startsWith(dir + sep)) throw new Error('outside');
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
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    served,
    close() {
      server.closeAllConnections?.();
      server.close();
    },
  };
}

/** Runs `fn(browser)` with a headless Chromium that is closed afterwards, whatever happens. */
export async function withChromium(fn) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: TIMEOUT_MS,
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    return await fn(browser);
  } finally {
    await browser.close().catch(() => {});
  }
}

/**
 * Opens `url`, waits for #result[data-done], returns { result, fromWindow, pageErrors }:
 * the parsed JSON, window.__hesseResult?.ok, and page errors and console errors (except those
 * `allowed(message)` accepts).
 */
export async function runPage(browser, url, { allowed = () => false } = {}) {
  const page = await browser.newPage();
  try {
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && !allowed(m) && pageErrors.push(`console.error: ${m.text()}`));
    await page.goto(url, { timeout: TIMEOUT_MS });
    let text;
    try {
      await page.waitForSelector('#result[data-done]', { state: 'attached', timeout: TIMEOUT_MS });
      text = await page.textContent('#result');
    } catch (e) {
      throw new Error(`the page never finished: ${e.message}\n${pageErrors.join('\n')}`);
    }
    const fromWindow = await page.evaluate(() => window.__hesseResult?.ok);
    return { result: JSON.parse(text), fromWindow, pageErrors };
  } finally {
    await page.close().catch(() => {});
  }
}
