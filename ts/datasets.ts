/**
 * Small real data sets shipped with the package (no network needed): for examples, the demo
 * and tests.
 */
import { HesseError } from './errors.js';
import type { HostURL } from './host-types.js';

export interface Dataset {
  /** Features, row-major [n, features], as float64 (scaled to [0, 1]). */
  x: Float64Array;
  /** Class labels [n] as numbers. */
  y: Float64Array;
  n: number;
  features: number;
  classes: number;
  description: string;
}

function base64Bytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function readJson(url: URL): Promise<unknown> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (url.protocol === 'file:' && proc?.versions?.node && !('Deno' in globalThis)) {
    const fsName = 'node:fs/promises'; // not a literal import: bundlers for the web must not follow it
    const fs = (await import(/* @vite-ignore */ fsName)) as { readFile(u: URL, enc: string): Promise<string> };
    return JSON.parse(await fs.readFile(url, 'utf8'));
  }
  const r = await fetch(url);
  if (!r.ok) throw new HesseError('INVALID_ARGUMENT', `could not load ${url}: HTTP ${r.status}`);
  return r.json();
}

/**
 * The 8×8 handwritten digits (1797 images, 64 pixels scaled to [0, 1], 10 classes; UCI
 * optdigits via scikit-learn, CC BY 4.0). `url` overrides where the JSON is read from.
 */
export async function digits(opts: { url?: string | HostURL } = {}): Promise<Dataset> {
  const url = opts.url ? new URL(opts.url) : new URL('../data/digits.json', import.meta.url);
  const raw = (await readJson(url)) as { description: string; shape: [number, number]; x_uint8_base64: string; y_uint8_base64: string };
  const [n, features] = raw.shape;
  const x = Float64Array.from(base64Bytes(raw.x_uint8_base64), (v) => v / 16);
  const y = Float64Array.from(base64Bytes(raw.y_uint8_base64));
  if (x.length !== n * features || y.length !== n) throw new HesseError('INVALID_ARGUMENT', `digits: the file's arrays do not match its shape [${n}, ${features}]`);
  return { x, y, n, features, classes: 10, description: raw.description };
}
