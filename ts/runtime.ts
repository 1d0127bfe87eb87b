/**
 * Loading the wasm core once, from wherever the host can get it.
 *
 * Two wasm builds of the same code, with the same exports (so one wasm-bindgen `web` glue serves
 * both, instantiating either from a URL, Response, bytes or Module): `hesse_relaxed_bg.wasm`
 * (relaxed SIMD: `f32x4.relaxed_madd` in the GEMM microkernel and the towers) and `hesse_bg.wasm`
 * (simd128). An engine without relaxed SIMD (Node 20 without `--experimental-wasm-relaxed-simd`)
 * rejects the whole relaxed module, so `init()` picks the first build whose probe, a minimal
 * module using its features, passes `WebAssembly.validate`.
 */
import initGlue, * as glue from './wasm/hesse.js';
import { HesseError } from './errors.js';
import type { Bytes, HostResponse, HostURL, WasmModule } from './host-types.js';
import { describe, loadFailed, readBytes, responseBytes } from './resource.js';
import * as validate from './validate.js';

/** What `init` accepts: nothing (find the bundled .wasm), or one explicit source. */
export interface InitOptions {
  /** An already compiled module (edge runtimes that import .wasm as a module). */
  module?: WasmModule;
  /** The .wasm bytes. */
  bytes?: Bytes;
  /** Where to fetch the .wasm from. */
  url?: string | HostURL;
  /** A fetch response of the .wasm (streaming compilation where supported). */
  response?: HostResponse | Promise<HostResponse>;
}

/** A wasm build and the probe (a minimal module using its features) that says if it can run. */
interface Variant {
  name: 'relaxed-simd' | 'simd128';
  /** A literal `new URL('…', import.meta.url)`, so bundlers (webpack, Vite) see the asset. */
  url: () => URL;
  probe: Uint8Array<ArrayBuffer>;
}

// (module (func (result v128) v128.const i32x4 0 0 0 0)): valid only where simd128 is.
const SIMD128_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

// (module (func (param v128 v128 v128) (result v128)
//   local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
// (wabt: wat2wasm --enable-relaxed-simd): valid only where relaxed SIMD is.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 8, 1, 96, 3, 123, 123, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32, 1, 32,
  2, 253, 133, 2, 11,
]);

/** Fastest first. The names are those scripts/build-wasm.sh writes into each file's `hesse.build` section. */
const VARIANTS: Variant[] = [
  { name: 'relaxed-simd', url: () => new URL('./wasm/hesse_relaxed_bg.wasm', import.meta.url), probe: RELAXED_PROBE },
  { name: 'simd128', url: () => new URL('./wasm/hesse_bg.wasm', import.meta.url), probe: SIMD128_PROBE },
];

/** The build a module says it is (its `hesse.build` custom section), or 'custom' for one without. */
function buildName(module: WebAssembly.Module): string {
  const [tag] = WebAssembly.Module.customSections(module, 'hesse.build');
  return tag ? new TextDecoder().decode(tag) : 'custom';
}

/** The ways to hand the wasm over, in `InitOptions`. */
const SOURCES = ['module', 'bytes', 'url', 'response'] as const;
const WHAT = "hesse's WebAssembly core";
/** What every load error suggests: where the file is in the package, and the ways to hand it over. */
const INSTEAD =
  "the files are the package's dist/wasm/hesse_bg.wasm (export 'hessian/hesse_bg.wasm', every runtime) and dist/wasm/hesse_relaxed_bg.wasm ('hessian/hesse_relaxed_bg.wasm', runtimes with relaxed SIMD): serve one and pass init({ url }), or pass init({ bytes }) or init({ module })";
/** How the relaxed build's file ends: its `hesse.build` section (id 0, size 24, name, payload), appended last. */
const RELAXED_TAG = new Uint8Array([0, 24, 11, ...new TextEncoder().encode('hesse.buildrelaxed-simd')]);

function endsWithRelaxedTag(bytes: Bytes): boolean {
  const b = ArrayBuffer.isView(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes as ArrayBuffer);
  return b.length >= RELAXED_TAG.length && b.subarray(b.length - RELAXED_TAG.length).every((x, i) => x === RELAXED_TAG[i]);
}
/** The module name wasm-bindgen gives the glue's imports; the exports the glue calls first. */
const GLUE_MODULE = './hesse_bg.js';
const GLUE_EXPORTS = ['memory', '__wbindgen_start'];

let loading: Promise<void> | undefined;
let variantName: string | undefined;
/** The compiled module the glue runs: what workers instantiate (ts/pool/), the same build. */
let loadedModule: WebAssembly.Module | undefined;
let ready = false;

/** The fastest build this runtime can run, by its probe; undefined without WebAssembly SIMD. */
function bestVariant(): Variant | undefined {
  return typeof WebAssembly === 'object' ? VARIANTS.find((v) => WebAssembly.validate(v.probe)) : undefined;
}

function pickVariant(): Variant {
  const v = bestVariant();
  if (!v) {
    throw new HesseError('UNSUPPORTED_RUNTIME', 'this JavaScript runtime lacks WebAssembly SIMD (simd128), which hesse needs');
  }
  return v;
}

async function compile(bytes: Bytes, from: string): Promise<WebAssembly.Module> {
  try {
    return await WebAssembly.compile(bytes as BufferSource);
  } catch (e) {
    const why =
      !WebAssembly.validate(RELAXED_PROBE) && endsWithRelaxedTag(bytes)
        ? `these are hesse_relaxed_bg.wasm, which needs relaxed SIMD, and this runtime lacks it (Node 20 needs --experimental-wasm-relaxed-simd; ${describe(e)}): pass hesse_bg.wasm`
        : `not a WebAssembly module (${describe(e)})`;
    throw loadFailed(WHAT, from, why, INSTEAD);
  }
}

/** The compiled module, from whichever one source the caller gave (or the package's own file). */
async function source(opts: InitOptions, variant: Variant): Promise<{ module: WebAssembly.Module; from: string }> {
  const given = SOURCES.filter((k) => opts[k] !== undefined);
  if (given.length > 1) {
    throw new HesseError('INVALID_ARGUMENT', `init: pass one source of the wasm, not ${given.map((k) => `'${k}'`).join(' and ')}`);
  }
  if (opts.module !== undefined) {
    if (!(opts.module instanceof WebAssembly.Module)) {
      throw new HesseError('INVALID_ARGUMENT', `init: module must be a WebAssembly.Module (of hesse_bg.wasm), got ${Object.prototype.toString.call(opts.module)}`);
    }
    return { module: opts.module, from: 'the WebAssembly.Module given' };
  }
  if (opts.bytes !== undefined) {
    if (!(opts.bytes instanceof ArrayBuffer || ArrayBuffer.isView(opts.bytes))) {
      throw new HesseError('INVALID_ARGUMENT', `init: bytes must be an ArrayBuffer or a typed array of hesse_bg.wasm, got ${Object.prototype.toString.call(opts.bytes)}`);
    }
    return { module: await compile(opts.bytes, 'the bytes given'), from: 'the bytes given' };
  }
  if (opts.response !== undefined) {
    const res = await opts.response;
    if (typeof Response !== 'function' || !(res instanceof Response)) {
      throw new HesseError('INVALID_ARGUMENT', `init: response must be a fetch Response (or a promise of one), got ${Object.prototype.toString.call(res)}`);
    }
    const from = res.url || 'the response given';
    return { module: await compile(await responseBytes(res, WHAT, INSTEAD), from), from };
  }
  const url = opts.url ?? variant.url();
  if (typeof url !== 'string' && !(url instanceof URL)) {
    throw new HesseError('INVALID_ARGUMENT', `init: url must be a string or a URL, got ${Object.prototype.toString.call(url)}`);
  }
  return { module: await compile(await readBytes(url, WHAT, INSTEAD), String(url)), from: String(url) };
}

async function load(opts: InitOptions): Promise<void> {
  const variant = pickVariant();
  const { module, from } = await source(opts, variant);
  // A module that instantiates but is not hesse's would leave the glue holding its exports, so
  // check its interface before handing it over; a different build of hesse fails to link below.
  const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const missing = GLUE_EXPORTS.filter((n) => !exported.has(n));
  const foreign = [...new Set(WebAssembly.Module.imports(module).map((i) => i.module))].filter((m) => m !== GLUE_MODULE);
  if (missing.length || foreign.length) {
    const why = [missing.length ? `it does not export ${missing.join(', ')}` : '', foreign.length ? `it imports from ${foreign.map((m) => `'${m}'`).join(', ')}` : '']
      .filter(Boolean)
      .join(' and ');
    throw loadFailed(WHAT, from, `this module is not hesse_bg.wasm (${why})`, INSTEAD);
  }
  try {
    await initGlue({ module_or_path: module });
  } catch (e) {
    throw loadFailed(WHAT, from, `it is not the hesse_bg.wasm of this version of hessian (${describe(e)})`, INSTEAD);
  }
  variantName = buildName(module);
  loadedModule = module;
  ready = true;
}

/**
 * Loads and instantiates the wasm core. Idempotent: later calls return the first call's promise
 * (their options are ignored once loading has started). A failed load may be retried.
 *
 * @param opts at most one source of the .wasm; none: the package's own
 *   dist/wasm/hesse_relaxed_bg.wasm where the runtime has relaxed SIMD, else dist/wasm/hesse_bg.wasm,
 *   read from disk in Node, fetched elsewhere (bundlers see the `new URL(…, import.meta.url)`).
 *   A caller-supplied source runs whichever of the two it is; `wasmVariant()` says which.
 * @throws HesseError (as a rejection) UNSUPPORTED_RUNTIME when the runtime lacks WebAssembly
 *   SIMD (simd128), or is a Node without `process.getBuiltinModule`; INVALID_ARGUMENT for an
 *   unknown option, two sources at once, or a source of the wrong type; LOAD_FAILED, naming the
 *   source, when the file cannot be read, is not WebAssembly, is the relaxed build where relaxed SIMD
 *   is missing, or is not this version's hesse_bg.wasm.
 * @example
 * await init();                              // Node, Deno, bundlers: finds the right .wasm itself
 * await init({ bytes: await file.arrayBuffer() }); // edge runtimes without a file system
 */
export function init(opts?: InitOptions): Promise<void> {
  if (!loading) {
    loading = Promise.resolve()
      .then(() => load(validate.options(opts, 'init', SOURCES)))
      .catch((e) => {
        loading = undefined;
        throw e;
      });
  }
  return loading;
}

/** Whether `init()` has finished successfully (the wasm core is ready for tensors). */
export function isInitialized(): boolean {
  return ready;
}

/** @internal The glue module, or a NOT_INITIALIZED error that says what to call first. */
export function core(): typeof glue {
  if (!ready) {
    throw new HesseError('NOT_INITIALIZED', 'hesse is not initialized: `await init()` before creating tensors');
  }
  return glue;
}

/** @internal The compiled wasm module `init()` instantiated (workers instantiate it again: ts/pool/). */
export function wasmModule(): WebAssembly.Module {
  core();
  return loadedModule!;
}

/** @internal The wasm linear memory. Re-read `.buffer` after any call that may allocate (it can grow). */
export function memory(): WebAssembly.Memory {
  return core().wasmMemory() as WebAssembly.Memory;
}

/**
 * Which wasm build is running: 'relaxed-simd' (hesse_relaxed_bg.wasm) or 'simd128' (hesse_bg.wasm),
 * read from the module itself, so also when the caller supplied it ('custom' for a module without
 * the tag that scripts/build-wasm.sh writes); undefined before `init()` finished.
 */
export function wasmVariant(): string | undefined {
  return variantName;
}

/**
 * The build `init()` loads here when given no source: 'relaxed-simd' (hesse_relaxed_bg.wasm) where
 * `WebAssembly.validate` accepts relaxed SIMD, else 'simd128' (hesse_bg.wasm); undefined where the
 * runtime lacks WebAssembly SIMD. For hosts that hand init() a module themselves.
 * @example
 * // workerd / Cloudflare Workers: both builds as module imports, the fastest one handed over
 * import simd128 from 'hessian/hesse_bg.wasm';
 * import relaxed from 'hessian/hesse_relaxed_bg.wasm';
 * await init({ module: preferredWasmVariant() === 'relaxed-simd' ? relaxed : simd128 });
 */
export function preferredWasmVariant(): 'relaxed-simd' | 'simd128' | undefined {
  return bestVariant()?.name;
}
