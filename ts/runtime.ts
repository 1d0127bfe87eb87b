/**
 * Loading the wasm core once, from wherever the host can get it.
 *
 * One wasm build (simd128) serves every runtime: wasm-bindgen's `web` glue instantiates it from
 * a URL, Response, bytes or Module. A list of build variants, each with a feature probe checked
 * by `WebAssembly.validate`, lets a faster build (relaxed SIMD) be added later and picked where
 * the runtime supports it, without changing callers.
 */
import initGlue, * as glue from './wasm/hesse.js';
import { HesseError } from './errors.js';
import type { Bytes, HostResponse, HostURL, WasmModule } from './host-types.js';

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
  name: string;
  /** A literal `new URL('…', import.meta.url)`, so bundlers (webpack, Vite) see the asset. */
  url: () => URL;
  probe: Uint8Array<ArrayBuffer>;
}

// (module (func (result v128) v128.const i32x4 0 0 0 0)): valid only where simd128 is.
const SIMD128_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 11,
]);

/** Fastest first. */
const VARIANTS: Variant[] = [{ name: 'simd128', url: () => new URL('./wasm/hesse_bg.wasm', import.meta.url), probe: SIMD128_PROBE }];

let loading: Promise<void> | undefined;
let variantName: string | undefined;
let ready = false;

function pickVariant(): Variant {
  const v = VARIANTS.find((v) => WebAssembly.validate(v.probe));
  if (!v) {
    throw new HesseError('UNSUPPORTED_RUNTIME', 'this JavaScript runtime lacks WebAssembly SIMD (simd128), which hesse needs');
  }
  return v;
}

async function defaultSource(variant: Variant): Promise<BufferSource | URL> {
  const url = variant.url();
  // Node's fetch does not read file: URLs; read the file instead. (Deno's fetch does.)
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (url.protocol === 'file:' && proc?.versions?.node && !('Deno' in globalThis)) {
    const fsName = 'node:fs/promises'; // not a literal import: bundlers for the web must not follow it
    const fs = (await import(/* @vite-ignore */ fsName)) as { readFile(u: URL): Promise<Uint8Array<ArrayBuffer>> };
    return fs.readFile(url);
  }
  return url;
}

async function load(opts: InitOptions): Promise<void> {
  let source: unknown = opts.module ?? opts.bytes ?? opts.response ?? opts.url;
  if (source === undefined) {
    const v = pickVariant();
    variantName = v.name;
    source = await defaultSource(v);
  } else {
    variantName = 'custom';
  }
  await initGlue({ module_or_path: source as never });
  ready = true;
}

/**
 * Loads and instantiates the wasm core. Idempotent: later calls return the first call's promise
 * (their options are ignored once loading has started). A failed load may be retried.
 *
 * @example
 * await init();                              // Node, Deno, bundlers: finds hesse_bg.wasm itself
 * await init({ bytes: await file.arrayBuffer() }); // edge runtimes without a file system
 */
export function init(opts: InitOptions = {}): Promise<void> {
  if (!loading) {
    loading = load(opts).catch((e) => {
      loading = undefined;
      throw e;
    });
  }
  return loading;
}

/** Whether `init()` has finished. */
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

/** @internal The wasm linear memory. Re-read `.buffer` after any call that may allocate (it can grow). */
export function memory(): WebAssembly.Memory {
  return core().wasmMemory() as WebAssembly.Memory;
}

/** Which wasm build is running ('simd128', or 'custom' when the caller supplied it). */
export function wasmVariant(): string | undefined {
  return variantName;
}
