/**
 * Loading the wasm: every way it can go wrong is a HesseError with a code and a message that says
 * what was wrong and what to pass instead; a failed init() leaves nothing half-loaded, and the
 * next init() with a good source works. This file must not share a module instance with a file
 * that has already initialized hesse (vitest isolates test files), and its tests run in order:
 * the failures first, then the successful load.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import wabtInit from 'wabt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';

const WASM = readFileSync(new URL('../ts/wasm/hesse_bg.wasm', import.meta.url));
const DIGITS = readFileSync(new URL('../data/digits.json', import.meta.url));
const PASS_IT =
  "the files are the package's dist/wasm/hesse_bg.wasm (export 'hessian/hesse_bg.wasm', every runtime) and dist/wasm/hesse_relaxed_bg.wasm ('hessian/hesse_relaxed_bg.wasm', runtimes with relaxed SIMD): serve one and pass init({ url }), or pass init({ bytes }) or init({ module })";

/** A local server: /hesse_bg.wasm and /digits.json are the real files, /garbage.wasm is HTML, anything else 404. */
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/hesse_bg.wasm') res.writeHead(200, { 'content-type': 'application/wasm' }).end(WASM);
    else if (req.url === '/digits.json') res.writeHead(200, { 'content-type': 'application/json' }).end(DIGITS);
    else if (req.url === '/garbage.wasm') res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>an SPA fallback page');
    else res.writeHead(404, 'Not Found').end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** The HesseError `p` rejects with (fails the test if it resolves or rejects with anything else). */
async function rejection(p: Promise<unknown>): Promise<h.HesseError> {
  const e = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e, 'expected a rejection').toBeInstanceOf(h.HesseError);
  return e as h.HesseError;
}

async function wat(src: string): Promise<WebAssembly.Module> {
  const wabt = await wabtInit();
  return WebAssembly.compile(wabt.parseWat('test.wat', src).toBinary({}).buffer as Uint8Array<ArrayBuffer>);
}

describe('init() failures', () => {
  it('bad bytes: LOAD_FAILED, says they are not wasm and how to pass the right ones', async () => {
    const e = await rejection(h.init({ bytes: new TextEncoder().encode('<!doctype html>') }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain('the bytes given: not a WebAssembly module (CompileError');
    expect(e.message).toContain(PASS_IT);
  });

  it('a 404 URL: LOAD_FAILED naming the URL, the status and what to pass to init()', async () => {
    const e = await rejection(h.init({ url: `${base}/missing/hesse_bg.wasm` }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain(`from ${base}/missing/hesse_bg.wasm: HTTP 404 Not Found`);
    expect(e.message).toContain(PASS_IT);
  });

  it('a 404 Response: the same', async () => {
    const e = await rejection(h.init({ response: fetch(`${base}/nope.wasm`) }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain(`from ${base}/nope.wasm: HTTP 404`);
  });

  it('a page served where the wasm should be: LOAD_FAILED, not a WebAssembly module', async () => {
    const e = await rejection(h.init({ url: `${base}/garbage.wasm` }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain(`from ${base}/garbage.wasm: not a WebAssembly module`);
  });

  it('a fetch that fails (nothing listening): LOAD_FAILED with the network reason', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/hesse_bg.wasm`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = await rejection(h.init({ url }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain(`from ${url}: TypeError: fetch failed (connect ECONNREFUSED`);
    expect(e.message).toContain(PASS_IT);
  });

  it('a missing file: LOAD_FAILED with the path', async () => {
    const url = new URL('./no-such-dir/hesse_bg.wasm', import.meta.url);
    const e = await rejection(h.init({ url }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain(`from ${url.href}: Error: ENOENT`);
  });

  it('a Module of the wrong kind: LOAD_FAILED saying what it lacks', async () => {
    const e = await rejection(h.init({ module: await wat('(module (import "env" "f" (func)) (func (export "g")))') }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain("this module is not hesse_bg.wasm (it does not export memory, __wbindgen_start and it imports from 'env')");
  });

  it("a Module shaped like hesse's that does not link: LOAD_FAILED naming the version mismatch", async () => {
    // The glue's import module and the exports it calls, but an import the glue does not provide.
    const impostor = await wat(
      '(module (import "./hesse_bg.js" "__wbg_not_a_real_import" (func)) (memory (export "memory") 1) (func (export "__wbindgen_start")))',
    );
    const e = await rejection(h.init({ module: impostor }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toContain('it is not the hesse_bg.wasm of this version of hessian (LinkError');
  });

  it.each([
    ['a string instead of options', 'hesse_bg.wasm', "init takes an options object { module, bytes, url, response }, got 'hesse_bg.wasm'"],
    ['an unknown option', { wasm: WASM }, "init: unknown option 'wasm'; the options are module, bytes, url, response"],
    ['two sources', { bytes: WASM, url: 'x' }, "init: pass one source of the wasm, not 'bytes' and 'url'"],
    ['module not a Module', { module: WASM }, 'init: module must be a WebAssembly.Module (of hesse_bg.wasm), got [object Uint8Array]'],
    ['bytes not bytes', { bytes: 'AGFzbQ==' }, 'init: bytes must be an ArrayBuffer or a typed array of hesse_bg.wasm, got [object String]'],
    ['url not a URL', { url: 42 }, 'init: url must be a string or a URL, got [object Number]'],
    ['response not a Response', { response: WASM }, 'init: response must be a fetch Response (or a promise of one), got [object Uint8Array]'],
  ])('%s: INVALID_ARGUMENT', async (_, opts, message) => {
    const e = await rejection(h.init(opts as never));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toBe(message);
  });

  it('nothing was loaded by the failures', () => {
    expect(h.isInitialized()).toBe(false);
    expect(h.wasmVariant()).toBeUndefined();
    expect(() => h.tensor([1])).toThrow(expect.objectContaining({ code: 'NOT_INITIALIZED' }));
  });
});

describe('init() after the failures', () => {
  it('loads from a URL and works', async () => {
    await h.init({ url: `${base}/hesse_bg.wasm` });
    expect(h.isInitialized()).toBe(true);
    expect(h.wasmVariant()).toBe('simd128'); // read from the module's hesse.build section, whoever loaded it
    using a = h.tensor([[1, 2], [3, 4]], undefined, 'float64');
    using c = h.matmul(a, a);
    expect(c.toList()).toEqual([[7, 10], [15, 22]]);
  });
});

describe('datasets.digits() sources', () => {
  it('{ url } (HTTP), { json } and the default give the same data', async () => {
    const byDefault = await h.datasets.digits();
    const byUrl = await h.datasets.digits({ url: `${base}/digits.json` });
    const byJson = await h.datasets.digits({ json: JSON.parse(DIGITS.toString('utf8')) });
    expect(byDefault.n).toBe(1797);
    for (const d of [byUrl, byJson]) {
      expect(d.x).toEqual(byDefault.x);
      expect(d.y).toEqual(byDefault.y);
    }
  });

  it('a 404: LOAD_FAILED naming the URL and what to pass instead', async () => {
    const e = await rejection(h.datasets.digits({ url: `${base}/gone.json` }));
    expect(e.code).toBe('LOAD_FAILED');
    expect(e.message).toBe(
      `could not load the digits data set from ${base}/gone.json: HTTP 404 Not Found; the file is the package's data/digits.json (export 'hessian/data/digits.json'): serve it and pass digits({ url }), or pass digits({ json })`,
    );
  });

  it.each([
    // (base is known only once the server listens: a path here, the URL in the test)
    ['not JSON', { url: '/garbage.wasm' }, 'MALFORMED_FILE', '/garbage.wasm is not JSON (SyntaxError'],
    ['JSON of something else', { json: { shape: [2, 2] } }, 'MALFORMED_FILE', 'digits: the json given is not the digits data set'],
    ['arrays that do not fit the shape', { json: { description: '', shape: [3, 2], x_uint8_base64: 'AAA=', y_uint8_base64: 'AA==' } }, 'MALFORMED_FILE', 'do not match its shape [3, 2]'],
    ['bad base64', { json: { description: '', shape: [1, 1], x_uint8_base64: '!!', y_uint8_base64: 'AA==' } }, 'MALFORMED_FILE', 'holds invalid base64'],
    ['an unknown option', { path: 'x' }, 'INVALID_ARGUMENT', "digits: unknown option 'path'; the options are url, json"],
  ])('%s: %s', async (_, opts, code, message) => {
    const o = 'url' in opts ? { url: base + opts.url } : opts;
    const e = await rejection(h.datasets.digits(o as never));
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
  });
});
