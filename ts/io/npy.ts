/**
 * NumPy `.npy` and `.npz` files, read and written as bytes (Uint8Array or ArrayBuffer), so the
 * same code runs in Node, Deno, browsers and edge runtimes: read the file however the platform
 * does (`fs.readFile`, `fetch(url).then((r) => r.arrayBuffer())`, a `File`) and pass the bytes.
 *
 * Supported: format versions 1.0, 2.0 and 3.0; C-order arrays of float32 (`<f4`), float64
 * (`<f8`), int32 (`<i4`), int64 (`<i8`), uint8 (`|u1`) and bool (`|b1`); big-endian files
 * (`>f8`, ...) are converted to the host's order on reading. Writing produces what `np.save`
 * produces for a C-order little-endian array: a version 1.0 header padded so that the data
 * starts at a multiple of 64 bytes (byte for byte the same file).
 *
 * Errors are {@link HesseError}s: `MALFORMED_FILE` for bytes that are not a valid file (bad
 * magic, truncated data, an unparseable header, a damaged zip: CRC-32 is checked),
 * `UNKNOWN_DTYPE` for dtypes hesse does not read (object arrays, structured arrays, float16,
 * strings...), `UNSUPPORTED_OP` for valid files in a form hesse does not read (Fortran order,
 * encrypted or non-deflate zip entries), and `INVALID_ARGUMENT` / `DTYPE_MISMATCH` /
 * `LENGTH_MISMATCH` for bad arguments to the writers. Each message says what to do.
 *
 * Dependencies, and why: the `.npy` format is a 10-byte prefix and a Python dict literal, so it
 * is parsed here by hand (a small literal parser, not regular expressions, so any layout NumPy
 * or another writer produces is read, including Python 2's `3L`). The npm parsers looked at
 * (npyjs) only read, parse the header with regular expressions and pull in a fetch polyfill.
 * Zip uses `fflate` (maintained, dependency-free, no install scripts, runs in browsers): its
 * `zipSync` writes `.npz` files and its `inflateSync` inflates deflated entries. The zip
 * directory is read here rather than with `unzipSync`, which does not check CRC-32 or bounds:
 * a damaged archive must fail, not load wrong numbers.
 *
 * @example
 * import { npy } from 'hessian';
 * const w = npy.parseNpy(await fs.readFile('w.npy'));         // { dtype, shape, data }
 * const t = npy.npyToTensor(w);                               // a hesse Tensor
 * const params = npy.parseNpz(bytes);                         // { w1: {...}, b1: {...} }
 * await fs.writeFile('out.npz', npy.writeNpz({ w: npy.tensorToNpy(t) }, { compress: true }));
 */
import { inflateSync, zipSync, type Zippable } from 'fflate';
import { HesseError } from '../errors.js';
import { tensor, type DType, type Tensor } from '../tensor.js';

/** The dtypes read and written, by NumPy name. */
export type NpyDType = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'bool';

/** The typed array holding each dtype's elements (bool: one byte each, 0 or 1). */
export interface NpyDataOf {
  /** `<f4`. */
  float32: Float32Array;
  /** `<f8`. */
  float64: Float64Array;
  /** `<i4`. */
  int32: Int32Array;
  /** `<i8`: BigInts, exact beyond 2⁵³. */
  int64: BigInt64Array;
  /** `|u1`. */
  uint8: Uint8Array;
  /** `|b1`: one byte per element, 0 or 1. */
  bool: Uint8Array;
}

/**
 * An array as stored in a `.npy` file: dtype, shape (outermost first; `[]` for a 0-d scalar) and
 * the elements in row-major (C) order. A union over dtypes, so checking `dtype` narrows `data`.
 */
export type NpyArray<D extends NpyDType = NpyDType> = D extends NpyDType
  ? { dtype: D; shape: number[]; data: NpyDataOf[D] }
  : never;

/** Bytes of a file: a Uint8Array (a Node Buffer is one) or an ArrayBuffer. */
export type Bytes = Uint8Array | ArrayBuffer;

/** Options of the readers. */
export interface ParseOptions {
  /** A name for the bytes (e.g. the file name), used in error messages. */
  name?: string;
}

/** Options of {@link writeNpz}. */
export interface NpzOptions {
  /** Deflate the entries, as `np.savez_compressed` does (default false: stored, as `np.savez`). */
  compress?: boolean;
}

interface DTypeInfo {
  readonly dtype: NpyDType;
  readonly size: number;
  readonly descr: string;
  readonly Ctor: { new (n: number): NpyDataOf[NpyDType]; readonly name: string };
}

const INFO: Record<NpyDType, DTypeInfo> = {
  float32: { dtype: 'float32', size: 4, descr: '<f4', Ctor: Float32Array },
  float64: { dtype: 'float64', size: 8, descr: '<f8', Ctor: Float64Array },
  int32: { dtype: 'int32', size: 4, descr: '<i4', Ctor: Int32Array },
  int64: { dtype: 'int64', size: 8, descr: '<i8', Ctor: BigInt64Array },
  uint8: { dtype: 'uint8', size: 1, descr: '|u1', Ctor: Uint8Array },
  bool: { dtype: 'bool', size: 1, descr: '|b1', Ctor: Uint8Array },
};

/** Type character + size (the descr without its byte-order character) → dtype. */
const BY_KIND: Record<string, NpyDType> = { f4: 'float32', f8: 'float64', i4: 'int32', i8: 'int64', u1: 'uint8', b1: 'bool' };

const SUPPORTED = "float32 '<f4', float64 '<f8', int32 '<i4', int64 '<i8', uint8 '|u1' and bool '|b1'";

/** Names NumPy gives other common descrs, for messages. */
const OTHER_NAMES: Record<string, string> = {
  f2: 'float16', f16: 'float128', i1: 'int8', i2: 'int16', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  c8: 'complex64', c16: 'complex128',
};

const HOST_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function toBytes(bytes: Bytes, what: string): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  if (ArrayBuffer.isView(bytes)) {
    const v = bytes as ArrayBufferView;
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  throw new HesseError('INVALID_ARGUMENT', `${what}: expected the file's bytes as a Uint8Array or ArrayBuffer, got ${describe(bytes)}; read the file first (fs.readFile, fetch(...).arrayBuffer(), File.arrayBuffer())`);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (typeof x === 'object') return (x as object).constructor?.name ?? 'an object';
  return typeof x === 'string' ? `a string${x.length < 200 ? ` ('${x}')` : ''}` : typeof x;
}

// ---------------------------------------------------------------------------------------------
// The header: a Python literal (dict of str → str | bool | tuple of int)

type PyValue = string | number | boolean | null | PyValue[] | PyTuple | PyDict;
class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
class PyDict {
  constructor(readonly entries: Map<string | number | boolean | null, PyValue>) {}
}

/** Parses the subset of Python literals NumPy headers use. Throws a string saying what is wrong. */
function parsePyLiteral(src: string): PyValue {
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  const fail = (what: string): never => {
    throw `${what} at character ${i}`;
  };
  const value = (depth: number): PyValue => {
    if (depth > 32) fail('nesting too deep');
    ws();
    const c = src[i];
    if (c === undefined) return fail('unexpected end');
    if (c === "'" || c === '"') return str(c);
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const items: PyValue[] = [];
      let comma = false;
      for (;;) {
        ws();
        if (src[i] === close) {
          i++;
          break;
        }
        if (items.length && !comma) fail(`expected ',' or '${close}'`);
        items.push(value(depth + 1));
        ws();
        comma = src[i] === ',';
        if (comma) i++;
      }
      // (x) is x in Python; (x,) is a tuple.
      if (c === '(' && items.length === 1 && !comma) return items[0]!;
      return c === '(' ? new PyTuple(items) : items;
    }
    if (c === '{') {
      i++;
      const entries = new Map<string | number | boolean | null, PyValue>();
      let comma = false;
      for (;;) {
        ws();
        if (src[i] === '}') {
          i++;
          break;
        }
        if (entries.size && !comma) fail("expected ',' or '}'");
        const k = value(depth + 1);
        if (typeof k === 'object' && k !== null) fail('a dict key must be a string or number');
        ws();
        if (src[i] !== ':') fail("expected ':'");
        i++;
        if (entries.has(k as string)) fail(`duplicate key ${String(k)}`);
        entries.set(k as string, value(depth + 1));
        ws();
        comma = src[i] === ',';
        if (comma) i++;
      }
      return new PyDict(entries);
    }
    const m = /^(?:([+-]?\d+)[lL]?|True|False|None)(?![\w.])/.exec(src.slice(i, i + 40));
    if (!m) return fail(`unexpected '${src.slice(i, i + 10)}'`);
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    const n = Number(m[1]);
    if (!Number.isSafeInteger(n)) fail(`integer ${m[1]} is too large`);
    return n;
  };
  const str = (q: string): string => {
    i++;
    let out = '';
    for (;;) {
      const c = src[i++];
      if (c === undefined || c === '\n') return fail('unterminated string');
      if (c === q) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = src[i++];
      const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"' };
      if (e !== undefined && e in simple) out += simple[e];
      else if (e === 'x' || e === 'u') {
        const len = e === 'x' ? 2 : 4;
        const hex = src.slice(i, i + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) fail('bad escape');
        out += String.fromCharCode(parseInt(hex, 16));
        i += len;
      } else fail('unsupported escape');
    }
  };
  const v = value(0);
  ws();
  if (i !== src.length) fail('unexpected text after the literal');
  return v;
}

interface Header {
  dtype: NpyDType;
  bigEndian: boolean;
  shape: number[];
  dataOffset: number;
}

function readHeader(buf: Uint8Array, what: string): Header {
  if (buf.length < 10 || MAGIC.some((b, k) => buf[k] !== b)) {
    const start = Array.from(buf.subarray(0, 8), (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    throw new HesseError('MALFORMED_FILE', `${what}: not a .npy file (${buf.length < 10 ? `only ${buf.length} bytes` : `it starts with '${start}', not '\\x93NUMPY'`}); pass the bytes of a file written by np.save`);
  }
  const major = buf[6]!;
  const minor = buf[7]!;
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new HesseError('MALFORMED_FILE', `${what}: .npy format version ${major}.${minor} is not one of 1.0, 2.0, 3.0 (a damaged file, or one from a newer NumPy: save it with np.save from NumPy 1.x or 2.x)`);
  }
  const prefix = major === 1 ? 10 : 12;
  if (buf.length < prefix) throw new HesseError('MALFORMED_FILE', `${what}: truncated: the file ends inside the header length (${buf.length} bytes)`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataOffset = prefix + hlen;
  if (dataOffset > buf.length) {
    throw new HesseError('MALFORMED_FILE', `${what}: truncated: the header says it is ${hlen} bytes long, but the file has only ${buf.length - prefix} bytes after the prefix`);
  }
  const raw = buf.subarray(prefix, dataOffset);
  // 1.0/2.0 headers are latin-1, 3.0 headers UTF-8.
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new HesseError('MALFORMED_FILE', `${what}: the version 3.0 header is not valid UTF-8`);
    }
  } else {
    text = Array.from(raw, (b) => String.fromCharCode(b)).join('');
  }
  let lit: PyValue;
  try {
    lit = parsePyLiteral(text);
  } catch (e) {
    if (typeof e !== 'string') throw e;
    throw new HesseError('MALFORMED_FILE', `${what}: the header is not a Python dict literal (${e}): ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  if (!(lit instanceof PyDict)) {
    throw new HesseError('MALFORMED_FILE', `${what}: the header is not a dict: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const keys = [...lit.entries.keys()].map(String).sort();
  if (keys.join() !== 'descr,fortran_order,shape') {
    throw new HesseError('MALFORMED_FILE', `${what}: the header has keys [${keys.join(', ')}], expected exactly descr, fortran_order and shape`);
  }
  const shapeV = lit.entries.get('shape')!;
  const fortran = lit.entries.get('fortran_order')!;
  const descr = lit.entries.get('descr')!;
  if (!(shapeV instanceof PyTuple) || !shapeV.items.every((d) => typeof d === 'number' && d >= 0)) {
    throw new HesseError('MALFORMED_FILE', `${what}: the header's shape is not a tuple of non-negative integers: ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const shape = shapeV.items as number[];
  if (typeof fortran !== 'boolean') throw new HesseError('MALFORMED_FILE', `${what}: the header's fortran_order is not True or False`);
  const { dtype, bigEndian } = readDescr(descr, what);
  if (fortran && shape.filter((d) => d > 1).length > 1) {
    // With at most one dimension longer than 1, Fortran and C order are the same bytes.
    throw new HesseError('UNSUPPORTED_OP', `${what}: the array of shape ${fmtShape(shape)} is stored in Fortran (column-major) order, which hesse does not read; save it in C order: np.save(path, np.ascontiguousarray(arr))`);
  }
  return { dtype, bigEndian, shape, dataOffset };
}

function readDescr(descr: PyValue, what: string): { dtype: NpyDType; bigEndian: boolean } {
  if (Array.isArray(descr)) {
    const names = descr.map((f) => (f instanceof PyTuple && typeof f.items[0] === 'string' ? f.items[0] : '?'));
    throw new HesseError('UNKNOWN_DTYPE', `${what}: the array has a structured dtype (fields ${names.join(', ')}), which hesse does not read; save each field as its own array: np.savez(path, ${names.slice(0, 2).map((n) => `${n}=arr['${n}']`).join(', ')}${names.length > 2 ? ', ...' : ''})`);
  }
  if (typeof descr !== 'string') throw new HesseError('MALFORMED_FILE', `${what}: the header's descr is not a dtype string`);
  if (descr === '|O' || descr === 'O' || descr === '<O' || descr === '>O') {
    throw new HesseError('UNKNOWN_DTYPE', `${what}: the array holds Python objects (dtype object, '${descr}'), stored with pickle, which hesse does not read; save a numeric array instead: np.save(path, np.asarray(arr, dtype=np.float32))`);
  }
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  const kind = m ? `${m[2]}${m[3]}` : '';
  const dtype = BY_KIND[kind];
  const order = m?.[1];
  // '|' is only valid for one-byte types; '=' means the writer's native order, which is unknown.
  if (!m || !dtype || (order === '|' && INFO[dtype].size !== 1) || order === '=') {
    const name = OTHER_NAMES[kind] ?? (dtype && order === '=' ? `${dtype} in the writer's native byte order` : undefined);
    throw new HesseError('UNKNOWN_DTYPE', `${what}: dtype '${descr}'${name ? ` (${name})` : ''} is not supported: hesse reads ${SUPPORTED}; convert in NumPy first, e.g. np.save(path, arr.astype(np.float32))`);
  }
  return { dtype, bigEndian: order === '>' };
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Copies `n` elements of `size` bytes into a new typed array, swapping bytes if asked. */
function copyData(info: DTypeInfo, src: Uint8Array, n: number, swap: boolean): NpyDataOf[NpyDType] {
  const out = new info.Ctor(n);
  const bytes = new Uint8Array(out.buffer, 0, n * info.size);
  bytes.set(src.subarray(0, n * info.size));
  if (swap && info.size > 1) {
    const s = info.size;
    for (let k = 0; k < bytes.length; k += s) {
      for (let a = k, b = k + s - 1; a < b; a++, b--) {
        const t = bytes[a]!;
        bytes[a] = bytes[b]!;
        bytes[b] = t;
      }
    }
  }
  return out;
}

/**
 * Reads a `.npy` file.
 *
 * @param bytes the whole file.
 * @returns `{ dtype, shape, data }` with the elements in C order, in a new typed array (it does
 *   not alias `bytes`).
 * @throws HesseError MALFORMED_FILE (not .npy, truncated, bad header, bytes after the data),
 *   UNKNOWN_DTYPE (a dtype other than those of {@link NpyDType}), UNSUPPORTED_OP (Fortran order).
 * @example
 * const a = parseNpy(new Uint8Array(await (await fetch('w.npy')).arrayBuffer()));
 * if (a.dtype === 'float32') a.data; // Float32Array
 */
export function parseNpy(bytes: Bytes, opts: ParseOptions = {}): NpyArray {
  const what = opts.name === undefined ? 'parseNpy' : `parseNpy(${opts.name})`;
  const buf = toBytes(bytes, what);
  const h = readHeader(buf, what);
  const info = INFO[h.dtype];
  const have = buf.length - h.dataOffset;
  // Compare in bytes before multiplying out, so a bogus shape cannot overflow or allocate.
  let need = info.size;
  for (const d of h.shape) need = d === 0 || need === 0 ? 0 : need * d;
  if (need > have) {
    throw new HesseError('MALFORMED_FILE', `${what}: truncated: shape ${fmtShape(h.shape)} of ${h.dtype} needs ${need} bytes of data but the file has ${have}; the file was cut short (re-download or re-save it)`);
  }
  if (need < have) {
    throw new HesseError('MALFORMED_FILE', `${what}: ${have - need} bytes follow the ${need} bytes of data of shape ${fmtShape(h.shape)} (${h.dtype}); a .npy file holds one array: save several with np.savez`);
  }
  const n = product(h.shape);
  const data = copyData(info, buf.subarray(h.dataOffset), n, h.bigEndian === HOST_LITTLE);
  if (h.dtype === 'bool') {
    const bad = (data as Uint8Array).findIndex((b) => b > 1);
    if (bad >= 0) throw new HesseError('MALFORMED_FILE', `${what}: bool element ${bad} is the byte ${(data as Uint8Array)[bad]}, not 0 or 1`);
  }
  return { dtype: h.dtype, shape: h.shape, data } as NpyArray;
}

/** The header NumPy writes: keys sorted, spare room for the first axis to grow, 64-byte aligned. */
function npyHeader(descr: string, shape: readonly number[]): Uint8Array {
  const shapeRepr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, 21 - String(shape[0]).length));
  // Version 1.0 (a 2-byte header length) unless the header does not fit in it, as NumPy does.
  const aligned = (prefix: number) => prefix + dict.length + 1 + (64 - ((prefix + dict.length + 1) % 64));
  const prefix = aligned(10) - 10 <= 0xffff ? 10 : 12;
  const total = aligned(prefix);
  const out = new Uint8Array(total);
  out.set(MAGIC);
  out[6] = prefix === 10 ? 1 : 2;
  const dv = new DataView(out.buffer);
  if (prefix === 10) dv.setUint16(8, total - prefix, true);
  else dv.setUint32(8, total - prefix, true);
  for (let k = 0; k < dict.length; k++) out[prefix + k] = dict.charCodeAt(k);
  out.fill(0x20, prefix + dict.length, total - 1);
  out[total - 1] = 0x0a;
  return out;
}

function checkArray(arr: unknown, what: string): { info: DTypeInfo; shape: number[]; data: NpyDataOf[NpyDType] } {
  if (typeof arr !== 'object' || arr === null) {
    throw new HesseError('INVALID_ARGUMENT', `${what}: expected an array { dtype, shape, data }, got ${describe(arr)}`);
  }
  const { dtype, shape, data } = arr as { dtype?: unknown; shape?: unknown; data?: unknown };
  if (typeof dtype !== 'string' || !(dtype in INFO)) {
    throw new HesseError('UNKNOWN_DTYPE', `${what}: unknown dtype ${JSON.stringify(dtype)}: use one of ${Object.keys(INFO).map((d) => `'${d}'`).join(', ')}`);
  }
  const info = INFO[dtype as NpyDType];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new HesseError('INVALID_ARGUMENT', `${what}: invalid shape ${JSON.stringify(shape)}: expected an array of non-negative integers ([] for a scalar)`);
  }
  if (!(data instanceof info.Ctor)) {
    throw new HesseError('DTYPE_MISMATCH', `${what}: dtype '${dtype}' needs its data in a ${info.Ctor.name}, got ${describe(data)}; convert it, e.g. ${info.Ctor.name}.from(values)`);
  }
  const n = product(shape);
  const len = (data as ArrayLike<unknown>).length;
  if (len !== n) {
    throw new HesseError('LENGTH_MISMATCH', `${what}: data has ${len} elements but shape ${fmtShape(shape)} needs ${n}`);
  }
  if (dtype === 'bool') {
    const bad = (data as Uint8Array).findIndex((b) => b > 1);
    if (bad >= 0) throw new HesseError('INVALID_ARGUMENT', `${what}: bool data must be 0 or 1, element ${bad} is ${(data as Uint8Array)[bad]}`);
  }
  return { info, shape: [...shape], data: data as NpyDataOf[NpyDType] };
}

/**
 * Writes a `.npy` file: the bytes `np.save` writes for the same C-order array (version 1.0
 * header, data 64-byte aligned, little-endian).
 *
 * @param arr `{ dtype, shape, data }`; `data` the dtype's typed array ({@link NpyDataOf}), row-major,
 *   with as many elements as `shape` has.
 * @throws HesseError UNKNOWN_DTYPE, INVALID_ARGUMENT (shape; bool data other than 0/1),
 *   DTYPE_MISMATCH (data not the dtype's typed array), LENGTH_MISMATCH.
 * @example
 * const bytes = writeNpy({ dtype: 'float32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) });
 */
export function writeNpy(arr: NpyArray): Uint8Array {
  return writeNpyAs(arr, 'writeNpy');
}

function writeNpyAs(arr: NpyArray, what: string): Uint8Array {
  const { info, shape, data } = checkArray(arr, what);
  const header = npyHeader(info.descr, shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  out.set(body, header.length);
  if (!HOST_LITTLE && info.size > 1) {
    const copy = copyData(info, body, data.length, true);
    out.set(new Uint8Array(copy.buffer), header.length);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// .npz: a zip of .npy files

let crcTable: Uint32Array | undefined;
function crc32(d: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let k = 0; k < d.length; k++) c = crcTable[(c ^ d[k]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  csize: number;
  usize: number;
  offset: number;
}

/** Reads the central directory, checking every offset against the buffer. */
function zipEntries(buf: Uint8Array, what: string): ZipEntry[] {
  const bad = (why: string): never => {
    throw new HesseError('MALFORMED_FILE', `${what}: not a valid .npz (zip) file: ${why}; pass the bytes of a file written by np.savez or np.savez_compressed`);
  };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const u64 = (o: number) => {
    const v = u32(o) + u32(o + 4) * 2 ** 32;
    return Number.isSafeInteger(v) ? v : bad('a zip64 size is out of range');
  };
  if (buf.length >= 4 && MAGIC.every((b, k) => buf[k] === b)) {
    throw new HesseError('MALFORMED_FILE', `${what}: these are the bytes of a .npy file, not an .npz; read them with parseNpy`);
  }
  let eocd = -1;
  for (let o = buf.length - 22; o >= Math.max(0, buf.length - 22 - 0xffff); o--) {
    if (u32(o) === 0x06054b50 && o + 22 + u16(o + 20) <= buf.length) {
      eocd = o;
      break;
    }
  }
  if (eocd < 0) bad(buf.length < 22 ? `only ${buf.length} bytes` : 'no end-of-archive record (the file is truncated or is not a zip)');
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) bad('it is a multi-part archive');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOff = u32(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOff === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || u32(loc) !== 0x07064b50) bad('a zip64 archive without its zip64 locator');
    const z = u64(loc + 8);
    if (z + 56 > buf.length || u32(z) !== 0x06064b50) bad('the zip64 end-of-archive record is missing');
    count = u64(z + 32);
    cdSize = u64(z + 40);
    cdOff = u64(z + 48);
  }
  if (cdOff + cdSize > buf.length) bad('the central directory lies past the end of the file (truncated?)');
  const entries: ZipEntry[] = [];
  let o = cdOff;
  for (let k = 0; k < count; k++) {
    if (o + 46 > cdOff + cdSize || u32(o) !== 0x02014b50) bad(`central directory entry ${k} is damaged`);
    const flags = u16(o + 8);
    const method = u16(o + 10);
    const crc = u32(o + 16);
    let csize = u32(o + 20);
    let usize = u32(o + 24);
    const nlen = u16(o + 28);
    const xlen = u16(o + 30);
    const clen = u16(o + 32);
    let offset = u32(o + 42);
    const end = o + 46 + nlen + xlen + clen;
    if (end > cdOff + cdSize) bad(`central directory entry ${k} is damaged`);
    const nameBytes = buf.subarray(o + 46, o + 46 + nlen);
    const name = flags & 0x800 ? new TextDecoder().decode(nameBytes) : String.fromCharCode(...nameBytes);
    // zip64 extra field: the 64-bit values of the fields that hold 0xffffffff, in this order.
    for (let x = o + 46 + nlen; x + 4 <= o + 46 + nlen + xlen; x += 4 + u16(x + 2)) {
      if (u16(x) !== 1) continue;
      let p = x + 4;
      const stop = p + u16(x + 2);
      const next = () => (p + 8 <= stop ? ((p += 8), u64(p - 8)) : bad(`the zip64 field of '${name}' is short`));
      if (usize === 0xffffffff) usize = next();
      if (csize === 0xffffffff) csize = next();
      if (offset === 0xffffffff) offset = next();
    }
    entries.push({ name, method, flags, crc, csize, usize, offset });
    o = end;
  }
  return entries;
}

function zipData(buf: Uint8Array, e: ZipEntry, what: string): Uint8Array {
  const bad = (why: string): never => {
    throw new HesseError('MALFORMED_FILE', `${what}: entry '${e.name}' ${why}; the .npz file is damaged or truncated (re-download or re-save it)`);
  };
  if (e.flags & 1) throw new HesseError('UNSUPPORTED_OP', `${what}: entry '${e.name}' is encrypted, which hesse does not read; save the arrays with np.savez`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (e.offset + 30 > buf.length || dv.getUint32(e.offset, true) !== 0x04034b50) bad('has no local header where the directory points');
  const start = e.offset + 30 + dv.getUint16(e.offset + 26, true) + dv.getUint16(e.offset + 28, true);
  if (start + e.csize > buf.length) bad(`needs ${e.csize} bytes but the file ends after ${Math.max(0, buf.length - start)}`);
  const raw = buf.subarray(start, start + e.csize);
  let out: Uint8Array;
  if (e.method === 0) {
    if (e.csize !== e.usize) bad('is stored with different compressed and uncompressed sizes');
    out = raw;
  } else if (e.method === 8) {
    // DEFLATE expands at most ~1032:1; a larger claim is damage, not a reason to allocate.
    if (e.usize > e.csize * 1032 + 1024) bad(`claims ${e.usize} bytes from ${e.csize} compressed`);
    try {
      out = inflateSync(raw, { out: new Uint8Array(e.usize) });
    } catch (err) {
      return bad(`does not inflate (${(err as Error).message})`);
    }
    if (out.length !== e.usize) bad(`inflates to ${out.length} bytes, not ${e.usize}`);
  } else {
    throw new HesseError('UNSUPPORTED_OP', `${what}: entry '${e.name}' uses zip compression method ${e.method}; hesse reads stored and deflated entries: save with np.savez or np.savez_compressed`);
  }
  if (crc32(out) !== e.crc) bad('fails its CRC-32 check');
  return out;
}

/**
 * Reads a `.npz` file (`np.savez` or `np.savez_compressed`): a zip of `.npy` files.
 *
 * @param bytes the whole file.
 * @returns the arrays by name, without the `.npy` suffix (`np.savez(f, w=...)` → `w`;
 *   positional arrays are `arr_0`, `arr_1`, ...), in the archive's order. Entries whose names
 *   do not end in `.npy` are skipped, as they are not arrays.
 * @throws HesseError MALFORMED_FILE (not a zip, truncated, a CRC mismatch, no arrays, two arrays
 *   of one name) and, for each array, what {@link parseNpy} throws; messages name the entry.
 */
export function parseNpz(bytes: Bytes, opts: ParseOptions = {}): Record<string, NpyArray> {
  const what = opts.name === undefined ? 'parseNpz' : `parseNpz(${opts.name})`;
  const buf = toBytes(bytes, what);
  const out: Record<string, NpyArray> = {};
  const entries = zipEntries(buf, what).filter((e) => e.name.endsWith('.npy'));
  if (entries.length === 0) {
    throw new HesseError('MALFORMED_FILE', `${what}: the zip holds no .npy arrays; an .npz file is written by np.savez(path, name=array, ...)`);
  }
  for (const e of entries) {
    const name = e.name.slice(0, -4);
    if (Object.prototype.hasOwnProperty.call(out, name)) {
      throw new HesseError('MALFORMED_FILE', `${what}: the archive holds two entries named '${e.name}'`);
    }
    const arr = parseNpy(zipData(buf, e, what), { name: opts.name === undefined ? e.name : `${opts.name}: ${e.name}` });
    Object.defineProperty(out, name, { value: arr, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Writes a `.npz` file that `np.load` reads: one `<name>.npy` entry per array, stored (as
 * `np.savez`) or deflated with `{ compress: true }` (as `np.savez_compressed`). The entries'
 * timestamps are fixed (1980-01-01), so the same arrays give the same bytes.
 *
 * @param arrays arrays by name (`w1` becomes the entry `w1.npy`).
 * @throws HesseError INVALID_ARGUMENT (not a record; an empty name) and, naming the array,
 *   what {@link writeNpy} throws.
 * @example
 * const bytes = writeNpz({ w: { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) } });
 */
export function writeNpz(arrays: Record<string, NpyArray>, opts: NpzOptions = {}): Uint8Array {
  if (typeof arrays !== 'object' || arrays === null || Array.isArray(arrays)) {
    throw new HesseError('INVALID_ARGUMENT', `writeNpz: expected a record of arrays { name: { dtype, shape, data } }, got ${describe(arrays)}`);
  }
  const level = opts.compress ? 6 : 0;
  const files: Zippable = {};
  for (const [name, arr] of Object.entries(arrays)) {
    if (name === '') throw new HesseError('INVALID_ARGUMENT', 'writeNpz: an array has an empty name; np.load needs a name for each');
    const bytes = writeNpyAs(arr, `writeNpz: array '${name}'`);
    files[`${name}.npy`] = [bytes, { level, mtime: new Date(1980, 0, 1) }];
  }
  return zipSync(files);
}

// ---------------------------------------------------------------------------------------------
// Tensors

/**
 * Converts an array to a hesse {@link Tensor} (needs `init()`). Float arrays keep their dtype
 * unless `dtype` says otherwise (float64 → float32 rounds; a finite value beyond the float32
 * range is INVALID_ARGUMENT, not ±∞). Integer and bool arrays (labels,
 * class indices) become float32, or `dtype`; every value must be exactly representable there
 * (|v| ≤ 2^24 in float32, 2^53 in float64), else INVALID_ARGUMENT names the first one that is not.
 *
 * @example
 * const { x, y } = parseNpz(bytes);
 * const X = npyToTensor(x); const Y = npyToTensor(y); // y: int64 class labels → float32
 */
export function npyToTensor(arr: NpyArray, dtype?: DType): Tensor {
  const { info, shape, data } = checkArray(arr, 'npyToTensor');
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'float64') {
    throw new HesseError('UNKNOWN_DTYPE', `npyToTensor: unknown dtype '${String(dtype)}': use 'float32' or 'float64'`);
  }
  if (info.dtype === 'float32' || info.dtype === 'float64') {
    if (info.dtype === 'float64' && dtype === 'float32') {
      // Rounding is expected; a finite value becoming ±∞ is not.
      const d = data as Float64Array;
      for (let k = 0; k < d.length; k++) {
        if (Number.isFinite(d[k]!) && !Number.isFinite(Math.fround(d[k]!))) {
          throw new HesseError('INVALID_ARGUMENT', `npyToTensor: float64 element ${k} (= ${d[k]}) of shape ${fmtShape(shape)} is beyond the float32 range (|v| ≤ 3.4e38); pass dtype 'float64'`);
        }
      }
    }
    return tensor(data as Float32Array | Float64Array, shape, dtype ?? info.dtype);
  }
  const dt = dtype ?? 'float32';
  const limit = dt === 'float32' ? 'float32 (exact for |v| ≤ 2^24 = 16777216)' : 'float64 (exact for |v| ≤ 2^53)';
  const fix = dt === 'float32' ? "; pass dtype 'float64'" : '';
  const out = dt === 'float32' ? new Float32Array(data.length) : new Float64Array(data.length);
  if (info.dtype === 'int64') {
    const d = data as BigInt64Array;
    for (let k = 0; k < d.length; k++) {
      const v = d[k]!;
      const x = Number(v);
      out[k] = x;
      // A safe integer converted exactly; beyond 2^53 compare as BigInt (2^60 is exact in f64).
      if (!(Number.isSafeInteger(x) && out[k] === x) && BigInt(out[k]!) !== v) {
        throw new HesseError('INVALID_ARGUMENT', `npyToTensor: int64 element ${k} (= ${v}) of shape ${fmtShape(shape)} is not exactly representable in ${limit}${fix}`);
      }
    }
  } else {
    const d = data as Int32Array | Uint8Array;
    for (let k = 0; k < d.length; k++) {
      out[k] = d[k]!;
      if (out[k] !== d[k]) {
        throw new HesseError('INVALID_ARGUMENT', `npyToTensor: ${info.dtype} element ${k} (= ${d[k]}) of shape ${fmtShape(shape)} is not exactly representable in ${limit}${fix}`);
      }
    }
  }
  return tensor(out, shape, dt);
}

/** A tensor's dtype, shape and a copy of its data, ready for {@link writeNpy} / {@link writeNpz}. */
export function tensorToNpy(t: Tensor): NpyArray<'float32' | 'float64'> {
  const data = t.toArray();
  return (t.dtype === 'float64'
    ? { dtype: 'float64', shape: [...t.shape], data: data as Float64Array }
    : { dtype: 'float32', shape: [...t.shape], data: data as Float32Array });
}
