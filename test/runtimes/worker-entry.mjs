// Worker of the workerd test: an edge runtime with no file system, which compiles no wasm from
// bytes. Both builds arrive as module imports of the package exports (`wasm` modules named
// 'hessian/hesse_bg.wasm' and 'hessian/hesse_relaxed_bg.wasm' in the workerd config; the bundle
// keeps the imports external); preferredWasmVariant() (WebAssembly.validate of a relaxed-SIMD
// probe) picks one, handed to init({ module }). GET / answers the checks as JSON.
import * as hesse from 'hessian';
import simd128Module from 'hessian/hesse_bg.wasm';
import relaxedModule from 'hessian/hesse_relaxed_bg.wasm';
import { runChecks, variantCheck } from './checks.mjs';

const preferred = hesse.preferredWasmVariant();
const wasmModule = preferred === 'relaxed-simd' ? relaxedModule : simd128Module;

let requests = 0;

export default {
  async fetch(request) {
    if (new URL(request.url).pathname !== '/') return new Response('not found', { status: 404 });
    requests++;
    let result;
    try {
      await hesse.init({ module: wasmModule });
      result = runChecks(hesse);
      result.checks.unshift(
        {
          name: 'both builds came in as WebAssembly.Modules',
          ok: simd128Module instanceof WebAssembly.Module && relaxedModule instanceof WebAssembly.Module,
          detail: [simd128Module, relaxedModule].map((m) => Object.prototype.toString.call(m)).join(', '),
        },
        // workerd has relaxed SIMD on, so the preferred build is the relaxed one.
        variantCheck(hesse, 'relaxed-simd', `preferredWasmVariant() = ${preferred}; init({ module }) loaded the`),
      );
      result.ok = result.checks.every((c) => c.ok);
    } catch (e) {
      result = { ok: false, checks: [{ name: 'init', ok: false, detail: `${e?.name}: ${e?.message}` }] };
    }
    result.requests = requests;
    result.userAgent = globalThis.navigator?.userAgent;
    result.hasProcess = typeof globalThis.process !== 'undefined';
    return new Response(JSON.stringify(result), { headers: { 'content-type': 'application/json' } });
  },
};
