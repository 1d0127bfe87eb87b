// Page entry of the browser test, bundled by esbuild as an application would bundle hesse.
// init() with no arguments: the bundle's `new URL('./wasm/hesse_relaxed_bg.wasm', import.meta.url)`
// is fetched from the test server (Chromium has relaxed SIMD). Before that, init({ url }) of a file the server does not have must
// reject with a LOAD_FAILED HesseError saying what to pass, and leave init() free to succeed.
// The result goes to window.__hesseResult and to <pre id="result">.
import * as hesse from 'hessian';
import { runChecks, variantCheck } from './checks.mjs';

const MISSING = './missing/hesse_bg.wasm';

let result;
try {
  const e = await hesse.init({ url: MISSING }).then(() => undefined, (e) => e);
  const notFound = {
    name: 'init({ url }) of a 404 rejects with LOAD_FAILED saying what to pass',
    ok:
      e instanceof hesse.HesseError &&
      e.code === 'LOAD_FAILED' &&
      e.message.includes("/missing/hesse_bg.wasm: HTTP 404") &&
      e.message.includes('init({ url }), or pass init({ bytes }) or init({ module })') &&
      !hesse.isInitialized(),
    detail: `${e?.name}[${e?.code}]: ${e?.message}`,
  };
  await hesse.init();
  result = runChecks(hesse);
  result.checks.unshift(notFound, variantCheck(hesse, 'relaxed-simd'));
  result.ok = result.checks.every((c) => c.ok);
} catch (e) {
  result = { ok: false, checks: [{ name: 'init', ok: false, detail: `${e?.name}: ${e?.message}` }] };
}
result.userAgent = navigator.userAgent;
window.__hesseResult = result;
const out = document.getElementById('result');
out.textContent = JSON.stringify(result);
out.dataset.done = '1';
