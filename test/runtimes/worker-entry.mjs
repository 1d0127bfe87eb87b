// Worker of the workerd test: an edge runtime with no file system. The wasm arrives as a module
// import of the package export (a `wasm` module named 'hessian/hesse_bg.wasm' in the workerd
// config; the bundle keeps the import external) and is handed to init({ module }). GET / answers the checks as JSON.
import * as hesse from 'hessian';
import wasmModule from 'hessian/hesse_bg.wasm';
import { runChecks } from './checks.mjs';

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
          name: 'wasm came in as a WebAssembly.Module',
          ok: wasmModule instanceof WebAssembly.Module,
          detail: Object.prototype.toString.call(wasmModule),
        },
        { name: "init({ module }) reports 'custom'", ok: hesse.wasmVariant() === 'custom', detail: `wasmVariant() = ${hesse.wasmVariant()}` },
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
