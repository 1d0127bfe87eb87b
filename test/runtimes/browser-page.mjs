// Page entry of the browser test, bundled by esbuild as an application would bundle hesse.
// init() with no arguments: the bundle's `new URL('./wasm/hesse_bg.wasm', import.meta.url)` is
// fetched from the test server. The result goes to window.__hesseResult and to <pre id="result">.
import * as hesse from 'hessian';
import { runChecks } from './checks.mjs';

let result;
try {
  await hesse.init();
  result = runChecks(hesse);
  result.checks.unshift({
    name: 'init() picked the bundled simd128 build',
    ok: hesse.wasmVariant() === 'simd128',
    detail: `wasmVariant() = ${hesse.wasmVariant()}`,
  });
  result.ok = result.ok && result.checks[0].ok;
} catch (e) {
  result = { ok: false, checks: [{ name: 'init', ok: false, detail: `${e?.name}: ${e?.message}` }] };
}
result.userAgent = navigator.userAgent;
window.__hesseResult = result;
const out = document.getElementById('result');
out.textContent = JSON.stringify(result);
out.dataset.done = '1';
