/**
 * Small real data sets shipped with the package (no network needed): for examples, the demo
 * and tests.
 */
import { HesseError } from './errors.js';
import type { HostURL } from './host-types.js';
import { describe, readBytes } from './resource.js';
import * as validate from './validate.js';

/** A classification data set: n samples of `features` values each, labels 0 … classes − 1. */
export interface Dataset {
  /** Features, row-major [n, features], as float64 (scaled to [0, 1]). */
  x: Float64Array;
  /** Class labels [n] as numbers. */
  y: Float64Array;
  /** Number of samples (rows of x, entries of y). */
  n: number;
  /** Number of features per sample (columns of x). */
  features: number;
  /** Number of classes: the labels are the integers 0 … classes − 1. */
  classes: number;
  /** What the data is, where it comes from and its licence. */
  description: string;
}

function base64Bytes(s: string, from: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch (e) {
    throw new HesseError('MALFORMED_FILE', `digits: ${from} holds invalid base64 (${describe(e)})`);
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The JSON layout of data/digits.json (the package export 'hessian/data/digits.json'). */
export interface DigitsJson {
  /** What the data is, where it comes from and its licence. */
  description: string;
  /** [n, features] of x (the shipped file: [1797, 64]). */
  shape: [number, number];
  /** The pixels, n × features bytes (0–16, row-major), base64-encoded; read as value / 16. */
  x_uint8_base64: string;
  /** The labels, n bytes (0–9), base64-encoded. */
  y_uint8_base64: string;
}

const DIGITS_INSTEAD =
  "the file is the package's data/digits.json (export 'hessian/data/digits.json'): serve it and pass digits({ url }), or pass digits({ json })";

/**
 * The 8×8 handwritten digits (1797 images, 64 pixels scaled to [0, 1], 10 classes; UCI
 * optdigits via scikit-learn, CC BY 4.0). By default read from the package's
 * data/digits.json; `url` reads it from elsewhere, `json` takes its already parsed contents
 * (`import json from 'hessian/data/digits.json'` in a bundler). The shipped file gives n = 1797,
 * features = 64, classes = 10: x row-major [1797, 64] in [0, 1] (pixel / 16), y the digits 0–9.
 *
 * @throws HesseError (as a rejection) INVALID_ARGUMENT for an unknown option or both `url` and
 *   `json`; LOAD_FAILED naming the file when it cannot be read or fetched; MALFORMED_FILE when
 *   it is not JSON, lacks shape / x_uint8_base64 / y_uint8_base64, holds invalid base64, or its
 *   arrays do not match its shape.
 */
export async function digits(opts?: { url?: string | HostURL; json?: DigitsJson }): Promise<Dataset> {
  const o = validate.options(opts, 'digits', ['url', 'json']);
  if (o.url !== undefined && o.json !== undefined) throw new HesseError('INVALID_ARGUMENT', "digits: pass 'url' or 'json', not both");
  let raw: unknown = o.json;
  const from = o.json !== undefined ? 'the json given' : String(o.url ?? 'data/digits.json');
  if (raw === undefined) {
    // A literal `new URL('…', import.meta.url)`, so bundlers (Vite, webpack) emit the file.
    const bytes = await readBytes(o.url ?? new URL('../data/digits.json', import.meta.url), 'the digits data set', DIGITS_INSTEAD);
    try {
      raw = JSON.parse(new TextDecoder().decode(bytes));
    } catch (e) {
      throw new HesseError('MALFORMED_FILE', `digits: ${from} is not JSON (${describe(e)})`);
    }
  }
  const r = raw as Partial<DigitsJson> | null;
  if (!r || !Array.isArray(r.shape) || typeof r.x_uint8_base64 !== 'string' || typeof r.y_uint8_base64 !== 'string') {
    throw new HesseError('MALFORMED_FILE', `digits: ${from} is not the digits data set (it needs shape, x_uint8_base64, y_uint8_base64)`);
  }
  const [n, features] = r.shape;
  const x = Float64Array.from(base64Bytes(r.x_uint8_base64, from), (v) => v / 16);
  const y = Float64Array.from(base64Bytes(r.y_uint8_base64, from));
  if (x.length !== n * features || y.length !== n) {
    throw new HesseError('MALFORMED_FILE', `digits: the arrays of ${from} do not match its shape [${n}, ${features}]`);
  }
  return { x, y, n, features, classes: 10, description: String(r.description) };
}
