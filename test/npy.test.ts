/**
 * .npy / .npz reading and writing against files written by NumPy (test/fixtures/npy/gen.py).
 * Values are checked exactly; writeNpy must produce NumPy's bytes for a C-order array.
 */
import { readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { HesseError, init, npy, tensor, type HesseErrorCode } from '../ts/index.js';

const { parseNpy, writeNpy, parseNpz, writeNpz, npyToTensor, tensorToNpy } = npy;

beforeAll(async () => {
  await init();
});

function fx(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`./fixtures/npy/${name}`, import.meta.url)));
}

const F4 = [0.5, -1.25, 3.0, Math.fround(1e-3), 65504.0, -0.0];
const LABELS = [0n, 3n, -7n, 2n ** 24n, 2n ** 24n + 1n];

/** Element-wise Object.is, so NaN equals NaN and -0 differs from 0. */
function expectSame(got: ArrayLike<number | bigint>, want: ArrayLike<number | bigint>): void {
  expect(got.length).toBe(want.length);
  for (let k = 0; k < want.length; k++) {
    if (!Object.is(got[k], want[k])) expect.fail(`element ${k}: got ${String(got[k])}, want ${String(want[k])}`);
  }
}

/** The call throws a HesseError with `code` whose message matches every pattern. */
function expectError(fn: () => unknown, code: HesseErrorCode, ...patterns: (string | RegExp)[]): HesseError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a HesseError').toBeInstanceOf(HesseError);
  const he = err as HesseError;
  expect(he.code, he.message).toBe(code);
  for (const p of patterns) {
    if (typeof p === 'string') expect(he.message).toContain(p);
    else expect(he.message).toMatch(p);
  }
  stillWorks();
  return he;
}

/** After an error the module reads, writes and converts as before. */
function stillWorks(): void {
  const a = parseNpy(fx('f4_2x3.npy'));
  expect(a.shape).toEqual([2, 3]);
  expectSame(a.data, F4);
  expect(writeNpy(a)).toEqual(fx('f4_2x3.npy'));
  using t = npyToTensor(a);
  expect(t.shape).toEqual([2, 3]);
}

/** A .npy file with the given header text (padded NumPy's way) and data bytes. */
function npyWith(header: string, data: ArrayLike<number> = [], version = 1): Uint8Array {
  const prefix = version === 1 ? 10 : 12;
  const hlen = header.length + 1 + (64 - ((prefix + header.length + 1) % 64));
  const out = new Uint8Array(prefix + hlen + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  out.fill(0x20, prefix, prefix + hlen - 1);
  for (let k = 0; k < header.length; k++) out[prefix + k] = header.charCodeAt(k);
  out[prefix + hlen - 1] = 0x0a;
  out.set(data, prefix + hlen);
  return out;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('parseNpy reads what NumPy writes', () => {
  it('float32 [2, 3]', () => {
    const a = parseNpy(fx('f4_2x3.npy'));
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expectSame(a.data, F4);
  });

  it('float64 special values: NaN, ±Infinity, -0, the smallest subnormal, the largest double', () => {
    const a = parseNpy(fx('f8_special.npy'));
    expect(a.dtype).toBe('float64');
    expect(a.shape).toEqual([6]);
    expect(a.data).toBeInstanceOf(Float64Array);
    expectSame(a.data, [NaN, Infinity, -Infinity, -0, 5e-324, Number.MAX_VALUE]);
  });

  it('a 0-d float64 scalar has shape [] and one element', () => {
    const a = parseNpy(fx('f8_scalar.npy'));
    expect(a).toMatchObject({ dtype: 'float64', shape: [] });
    expectSame(a.data, [3.141592653589793]);
  });

  it('an empty float32 [0, 3]', () => {
    const a = parseNpy(fx('f4_empty.npy'));
    expect(a).toMatchObject({ dtype: 'float32', shape: [0, 3] });
    expect(a.data.length).toBe(0);
  });

  it('float64 [2, 3, 4] in C order', () => {
    const a = parseNpy(fx('f8_3d.npy'));
    expect(a).toMatchObject({ dtype: 'float64', shape: [2, 3, 4] });
    expectSame(a.data, Array.from({ length: 24 }, (_, k) => k / 8));
  });

  it('a 20-d float64 whose header NumPy padded to 192 bytes', () => {
    const bytes = fx('f8_20d.npy');
    expect(bytes.length).toBe(192 + 8);
    const a = parseNpy(bytes);
    expect(a).toMatchObject({ dtype: 'float64', shape: new Array(20).fill(1) });
    expectSame(a.data, [2.5]);
  });

  it('int64 as BigInt64Array, including the extremes', () => {
    const a = parseNpy(fx('i8_labels.npy'));
    expect(a).toMatchObject({ dtype: 'int64', shape: [5] });
    expect(a.data).toBeInstanceOf(BigInt64Array);
    expectSame(a.data, LABELS);
    expectSame(parseNpy(fx('i8_big.npy')).data, [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]);
  });

  it('int32, uint8 and bool', () => {
    const i4 = parseNpy(fx('i4.npy'));
    expect(i4).toMatchObject({ dtype: 'int32', shape: [2, 2] });
    expect(i4.data).toBeInstanceOf(Int32Array);
    expectSame(i4.data, [-(2 ** 31), 2 ** 31 - 1, 0, -1]);
    const u1 = parseNpy(fx('u1.npy'));
    expect(u1).toMatchObject({ dtype: 'uint8', shape: [4] });
    expectSame(u1.data, [0, 1, 128, 255]);
    const b1 = parseNpy(fx('b1.npy'));
    expect(b1).toMatchObject({ dtype: 'bool', shape: [2, 2] });
    expect(b1.data).toBeInstanceOf(Uint8Array);
    expectSame(b1.data, [1, 0, 0, 1]);
  });

  it('version 2.0 and 3.0 headers', () => {
    for (const f of ['f4_v2.npy', 'f4_v3.npy']) {
      const bytes = fx(f);
      expect(bytes[6]).toBe(f === 'f4_v2.npy' ? 2 : 3);
      const a = parseNpy(bytes);
      expect(a).toMatchObject({ dtype: 'float32', shape: [2, 3] });
      expectSame(a.data, F4);
    }
  });

  it('big-endian files are converted', () => {
    const f8 = parseNpy(fx('f8_be.npy'));
    expect(f8).toMatchObject({ dtype: 'float64', shape: [3] });
    expectSame(f8.data, [1.5, -2.25, 1e300]);
    const i4 = parseNpy(fx('i4_be.npy'));
    expect(i4).toMatchObject({ dtype: 'int32', shape: [3] });
    expectSame(i4.data, [1, -2, 2 ** 31 - 1]);
  });

  it('reads from an ArrayBuffer and from an unaligned view into a larger buffer', () => {
    const bytes = fx('f8_3d.npy');
    const a = parseNpy(bytes.slice().buffer);
    expectSame(a.data, Array.from({ length: 24 }, (_, k) => k / 8));
    const big = new Uint8Array(bytes.length + 3);
    big.set(bytes, 3);
    const b = parseNpy(big.subarray(3));
    expectSame(b.data, a.data);
    // The result does not alias the input.
    big.fill(0);
    expectSame(b.data, a.data);
  });

  it("reads Python 2 headers ('3L') and other valid literal layouts", () => {
    const data = new Uint8Array(new Float64Array([1, 2, 3]).buffer);
    for (const h of [
      "{'descr': '<f8', 'fortran_order': False, 'shape': (3L,), }",
      '{"shape": (3,), "descr": "<f8", "fortran_order": False}',
      "{ 'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 3 , ) }",
      "{'descr': '<f8', 'fortran_order': False, 'shape': [3]}".replace('[3]', '(3,)'),
    ]) {
      const a = parseNpy(npyWith(h, data));
      expect(a.shape, h).toEqual([3]);
      expectSame(a.data, [1, 2, 3]);
    }
    // Fortran order with at most one dimension longer than 1 is the same bytes as C order.
    const f = parseNpy(npyWith("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 3), }", data));
    expect(f.shape).toEqual([1, 3]);
    expectSame(f.data, [1, 2, 3]);
  });
});

describe('writeNpy writes what NumPy writes', () => {
  const LE_V1 = ['f4_2x3.npy', 'f8_20d.npy', 'f8_special.npy', 'f8_scalar.npy', 'f4_empty.npy', 'f8_3d.npy', 'i8_labels.npy', 'i8_big.npy', 'i4.npy', 'u1.npy', 'b1.npy'];

  it.each(LE_V1)('%s: parse then write gives the same bytes', (f) => {
    const bytes = fx(f);
    expect(writeNpy(parseNpy(bytes))).toEqual(bytes);
  });

  it('arrays built in JS give NumPy’s bytes', () => {
    expect(writeNpy({ dtype: 'float32', shape: [2, 3], data: Float32Array.from(F4) })).toEqual(fx('f4_2x3.npy'));
    expect(writeNpy({ dtype: 'int64', shape: [5], data: BigInt64Array.from(LABELS) })).toEqual(fx('i8_labels.npy'));
    expect(writeNpy({ dtype: 'float64', shape: [], data: new Float64Array([3.141592653589793]) })).toEqual(fx('f8_scalar.npy'));
    expect(writeNpy({ dtype: 'float32', shape: [0, 3], data: new Float32Array(0) })).toEqual(fx('f4_empty.npy'));
    expect(writeNpy({ dtype: 'bool', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) })).toEqual(fx('b1.npy'));
  });

  it('v2.0, v3.0 and big-endian inputs are written as NumPy would save the array today', () => {
    expect(writeNpy(parseNpy(fx('f4_v2.npy')))).toEqual(fx('f4_2x3.npy'));
    expect(writeNpy(parseNpy(fx('f4_v3.npy')))).toEqual(fx('f4_2x3.npy'));
    const be = writeNpy(parseNpy(fx('f8_be.npy')));
    expect(String.fromCharCode(...be.subarray(10, 25))).toBe("{'descr': '<f8'");
    expectSame(parseNpy(be).data, [1.5, -2.25, 1e300]);
  });

  it('round-trips every dtype and many shapes; data starts at a multiple of 64 bytes', () => {
    const shapes = [[], [0], [1], [7], [3, 0], [2, 3], [2, 3, 4], [1, 1, 1, 1, 2], [0, 10 ** 15], [10 ** 15, 0]];
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      const arrays: npy.NpyArray[] = [
        { dtype: 'float32', shape, data: Float32Array.from({ length: n }, (_, k) => k * 0.37 - 1) },
        { dtype: 'float64', shape, data: Float64Array.from({ length: n }, (_, k) => Math.sin(k) * 1e10) },
        { dtype: 'int32', shape, data: Int32Array.from({ length: n }, (_, k) => k * 123457 - 99) },
        { dtype: 'int64', shape, data: BigInt64Array.from({ length: n }, (_, k) => BigInt(k) * 10n ** 17n - 5n) },
        { dtype: 'uint8', shape, data: Uint8Array.from({ length: n }, (_, k) => (k * 37) & 255) },
        { dtype: 'bool', shape, data: Uint8Array.from({ length: n }, (_, k) => k % 2) },
      ];
      for (const arr of arrays) {
        const bytes = writeNpy(arr);
        const hlen = new DataView(bytes.buffer).getUint16(8, true);
        expect((10 + hlen) % 64, `${arr.dtype} ${JSON.stringify(shape)}`).toBe(0);
        expect(bytes.length).toBe(10 + hlen + arr.data.byteLength);
        const back = parseNpy(bytes);
        expect(back.dtype).toBe(arr.dtype);
        expect(back.shape).toEqual(shape);
        expectSame(back.data, arr.data);
      }
    }
  });

  it('writes only the viewed part of a subarray', () => {
    const whole = new Float64Array([9, 1, 2, 3, 9]);
    const bytes = writeNpy({ dtype: 'float64', shape: [3], data: whole.subarray(1, 4) });
    expectSame(parseNpy(bytes).data, [1, 2, 3]);
  });
});

describe('npz', () => {
  it.each(['stored.npz', 'compressed.npz'])('%s from np.savez / np.savez_compressed', (f) => {
    const z = parseNpz(fx(f));
    expect(Object.keys(z).sort()).toEqual(['labels', 's', 'w']);
    expect(z.w).toMatchObject({ dtype: 'float32', shape: [2, 3] });
    expectSame(z.w!.data, F4);
    expect(z.labels).toMatchObject({ dtype: 'int64', shape: [5] });
    expectSame(z.labels!.data, LABELS);
    expect(z.s).toMatchObject({ dtype: 'float64', shape: [] });
    expectSame(z.s!.data, [3.141592653589793]);
  });

  it('reads the zip64 local headers of NumPy 1.x archives', () => {
    const z = parseNpz(fx('zip64.npz'));
    expect(Object.keys(z)).toEqual(['w']);
    expectSame(z.w!.data, F4);
  });

  it('writeNpz round-trips, stored or deflated, with the entries NumPy writes', () => {
    const arrays = parseNpz(fx('stored.npz'));
    arrays.big = { dtype: 'float64', shape: [50, 20], data: new Float64Array(1000).fill(0.25) };
    const stored = writeNpz(arrays);
    const deflated = writeNpz(arrays, { compress: true });
    expect(deflated.length).toBeLessThan(stored.length / 4);
    for (const bytes of [stored, deflated]) {
      const back = parseNpz(bytes);
      expect(Object.keys(back)).toEqual(Object.keys(arrays));
      for (const [k, v] of Object.entries(arrays)) {
        expect(back[k]!.dtype).toBe(v.dtype);
        expect(back[k]!.shape).toEqual(v.shape);
        expectSame(back[k]!.data, v.data);
      }
    }
    // Stored entries are NumPy's .npy bytes; the method field (offset 8 of the local header) says stored.
    expect(indexOf(stored, fx('f4_2x3.npy'))).toBeGreaterThan(0);
    expect(stored[8]).toBe(0);
    expect(deflated[8]).toBe(8);
    // Fixed timestamps: the same arrays give the same bytes.
    expect(writeNpz(arrays)).toEqual(stored);
  });

  it('skips entries that are not .npy and keeps names with dots and slashes', () => {
    const w = fx('f4_2x3.npy');
    const z = parseNpz(zipSync({ 'README.txt': ascii('hello'), 'layer.0/weight.npy': w, 'dir/': {} }));
    expect(Object.keys(z)).toEqual(['layer.0/weight']);
    expectSame(z['layer.0/weight']!.data, F4);
    const proto = parseNpz(writeNpz({ __proto__x: parseNpy(w), ['__proto__']: parseNpy(w) } as Record<string, npy.NpyArray>));
    expect(Object.keys(proto).sort()).toEqual(['__proto__', '__proto__x']);
  });
});

describe('npyToTensor / tensorToNpy', () => {
  it('float arrays keep their dtype unless asked', () => {
    using a = npyToTensor(parseNpy(fx('f8_3d.npy')));
    expect(a.dtype).toBe('float64');
    expect(a.shape).toEqual([2, 3, 4]);
    expectSame(a.toArray(), Array.from({ length: 24 }, (_, k) => k / 8));
    using b = npyToTensor(parseNpy(fx('f4_2x3.npy')), 'float64');
    expect(b.dtype).toBe('float64');
    expectSame(b.toArray(), F4);
    // NaN and ±∞ stay what they are; 5e-324 rounds to 0 (the largest float64 is refused below).
    const special = parseNpy(fx('f8_special.npy')) as npy.NpyArray<'float64'>;
    using c = npyToTensor({ dtype: 'float64', shape: [5], data: special.data.subarray(0, 5) }, 'float32');
    expect(c.dtype).toBe('float32');
    expectSame(c.toArray(), [NaN, Infinity, -Infinity, -0, 0]);
    using s = npyToTensor(parseNpy(fx('f8_scalar.npy')));
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(3.141592653589793);
    using e = npyToTensor(parseNpy(fx('f4_empty.npy')));
    expect(e.shape).toEqual([0, 3]);
  });

  it('integer and bool arrays become float32 (or float64) when exact', () => {
    const labels = parseNpy(fx('i8_labels.npy'));
    using a = npyToTensor({ ...labels, shape: [4], data: labels.data.subarray(0, 4) } as npy.NpyArray);
    expect(a.dtype).toBe('float32');
    expectSame(a.toArray(), [0, 3, -7, 2 ** 24]);
    using b = npyToTensor(labels, 'float64');
    expectSame(b.toArray(), [0, 3, -7, 2 ** 24, 2 ** 24 + 1]);
    using c = npyToTensor(parseNpy(fx('i4.npy')), 'float64');
    expectSame(c.toArray(), [-(2 ** 31), 2 ** 31 - 1, 0, -1]);
    using d = npyToTensor(parseNpy(fx('u1.npy')));
    expectSame(d.toArray(), [0, 1, 128, 255]);
    using e = npyToTensor(parseNpy(fx('b1.npy')));
    expectSame(e.toArray(), [1, 0, 0, 1]);
    // -2^63 and 2^60 are powers of two: exact in float64 (and float32).
    using f = npyToTensor({ dtype: 'int64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 60n]) });
    expectSame(f.toArray(), [-(2 ** 63), 2 ** 60]);
  });

  it('refuses integers and float64 values that would change', () => {
    expectError(() => npyToTensor(parseNpy(fx('i8_labels.npy'))), 'INVALID_ARGUMENT', 'int64 element 4 (= 16777217)', 'float32', "pass dtype 'float64'");
    expectError(() => npyToTensor(parseNpy(fx('i8_big.npy')), 'float64'), 'INVALID_ARGUMENT', 'int64 element 1 (= 9223372036854775807)', 'float64');
    expectError(() => npyToTensor(parseNpy(fx('i4.npy'))), 'INVALID_ARGUMENT', 'int32 element 1 (= 2147483647)', 'float32');
    expectError(() => npyToTensor(parseNpy(fx('f4_2x3.npy')), 'int8' as 'float32'), 'UNKNOWN_DTYPE', "'int8'", "'float32' or 'float64'");
    // A finite float64 beyond the float32 range would become ∞: refused, naming the element.
    expectError(() => npyToTensor(parseNpy(fx('f8_special.npy')), 'float32'), 'INVALID_ARGUMENT', 'float64 element 5 (= 1.7976931348623157e+308)', 'float32 range', "pass dtype 'float64'");
    using ok = npyToTensor(parseNpy(fx('f8_special.npy')), 'float64');
    expect(ok.toArray()[5]).toBe(Number.MAX_VALUE);
  });

  it('tensorToNpy writes a tensor NumPy reads back identically', () => {
    using t = tensor(Float32Array.from(F4), [2, 3]);
    const arr = tensorToNpy(t);
    expect(arr).toMatchObject({ dtype: 'float32', shape: [2, 3] });
    expect(writeNpy(arr)).toEqual(fx('f4_2x3.npy'));
    using u = tensor(new Float64Array([3.141592653589793]), []);
    expect(writeNpy(tensorToNpy(u))).toEqual(fx('f8_scalar.npy'));
  });
});

describe('bad files and arguments throw a HesseError that says what to do', () => {
  const F8_3 = new Uint8Array(new Float64Array([1, 2, 3]).buffer);

  it('not a .npy file', () => {
    expectError(() => parseNpy(new Uint8Array(0)), 'MALFORMED_FILE', 'not a .npy file', 'only 0 bytes', 'np.save');
    expectError(() => parseNpy(ascii('\x89PNG\r\n\x1a\n0000000000')), 'MALFORMED_FILE', 'not a .npy file', "starts with '\\x89PNG");
    expectError(() => parseNpy(fx('stored.npz')), 'MALFORMED_FILE', "starts with 'PK");
    expectError(() => parseNpy('w.npy' as unknown as Uint8Array), 'INVALID_ARGUMENT', "a string ('w.npy')", 'Uint8Array or ArrayBuffer', 'read the file first');
    expectError(() => parseNpy(null as unknown as Uint8Array), 'INVALID_ARGUMENT', 'null');
    const v4 = fx('f4_2x3.npy').slice();
    v4[6] = 4;
    expectError(() => parseNpy(v4), 'MALFORMED_FILE', 'version 4.0');
  });

  it('truncated anywhere', () => {
    const bytes = fx('f8_3d.npy');
    for (const n of [6, 9, 11, 60, 127, 128 + 8, bytes.length - 1]) {
      expectError(() => parseNpy(bytes.subarray(0, n), { name: 'f8_3d.npy' }), 'MALFORMED_FILE', 'parseNpy(f8_3d.npy)', n < 10 ? 'only' : 'truncated');
    }
    expectError(() => parseNpy(bytes.subarray(0, 128 + 8)), 'MALFORMED_FILE', 'shape [2, 3, 4] of float64 needs 192 bytes of data but the file has 8', 'cut short');
    expectError(() => parseNpy(fx('f4_v2.npy').subarray(0, 11)), 'MALFORMED_FILE', 'truncated');
  });

  it('bytes after the data', () => {
    const bytes = new Uint8Array([...fx('f4_2x3.npy'), 0, 0, 0, 0]);
    expectError(() => parseNpy(bytes), 'MALFORMED_FILE', '4 bytes follow', 'np.savez');
  });

  it('headers that do not parse', () => {
    const cases: [string, string][] = [
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (3, }", 'not a Python dict literal'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (3,) ", 'not a Python dict literal'],
      ["{'descr': '<f8, 'fortran_order': False, 'shape': (3,)}", 'not a Python dict literal'],
      ["{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}", 'not a Python dict literal'],
      ["{'descr': '<f8', 'fortran_order': false, 'shape': (3,)}", 'not a Python dict literal'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,)}", 'not a Python dict literal'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}", 'too large'],
      ["{'descr': '<f8', 'descr': '<f8', 'shape': (3,)}", 'duplicate key'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (3,)} extra", 'not a Python dict literal'],
      ["('<f8', False, (3,))", 'not a dict'],
      ['', 'not a Python dict literal'],
      ["{'descr': '<f8', 'shape': (3,)}", 'keys [descr, shape], expected exactly descr, fortran_order and shape'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", 'keys [descr, fortran_order, shape, x]'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': (-3,)}", 'shape is not a tuple of non-negative integers'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': [3]}", 'shape is not a tuple'],
      ["{'descr': '<f8', 'fortran_order': False, 'shape': 3}", 'shape is not a tuple'],
      ["{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", 'fortran_order is not True or False'],
      ["{'descr': 8, 'fortran_order': False, 'shape': (3,)}", 'descr is not a dtype string'],
      ['[' .repeat(100) + ']'.repeat(100), 'nesting too deep'],
    ];
    for (const [h, msg] of cases) {
      const e = expectError(() => parseNpy(npyWith(h, F8_3)), 'MALFORMED_FILE', msg);
      expect(e.message, h).toContain('parseNpy');
    }
    // A version 3.0 header that is not UTF-8.
    const bad = npyWith("{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}", F8_3, 3);
    bad[14] = 0xff;
    expectError(() => parseNpy(bad), 'MALFORMED_FILE', 'not valid UTF-8');
  });

  it('a shape that does not fit the data is caught before allocating', () => {
    expectError(() => parseNpy(npyWith("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", F8_3)), 'MALFORMED_FILE', 'truncated', '[4294967296, 4294967296]');
  });

  it('bool bytes other than 0 and 1', () => {
    expectError(() => parseNpy(npyWith("{'descr': '|b1', 'fortran_order': False, 'shape': (2,)}", [1, 2])), 'MALFORMED_FILE', 'bool element 1 is the byte 2');
  });

  it('Fortran order names the shape and says to save with np.ascontiguousarray', () => {
    expectError(() => parseNpy(fx('fortran.npy')), 'UNSUPPORTED_OP', 'shape [2, 3]', 'Fortran', 'np.ascontiguousarray');
  });

  it('object, structured, float16 and other dtypes', () => {
    expectError(() => parseNpy(fx('object.npy')), 'UNKNOWN_DTYPE', "dtype object, '|O'", 'pickle', 'np.asarray(arr, dtype=np.float32)');
    expectError(() => parseNpy(fx('structured.npy')), 'UNKNOWN_DTYPE', 'structured dtype (fields a, b)', "np.savez(path, a=arr['a'], b=arr['b'])");
    expectError(() => parseNpy(fx('f2.npy')), 'UNKNOWN_DTYPE', "'<f2' (float16)", "float32 '<f4'", 'arr.astype(np.float32)');
    for (const [descr, name] of [['<u8', 'uint64'], ['<c16', 'complex128'], ['<U5', ''], ['|S3', ''], ['<M8[ns]', ''], ['|f4', ''], ['=f8', 'native byte order']]) {
      expectError(() => parseNpy(npyWith(`{'descr': '${descr}', 'fortran_order': False, 'shape': (3,)}`, F8_3)), 'UNKNOWN_DTYPE', `'${descr}'`, name!, 'is not supported');
    }
  });

  it('damaged .npz files', () => {
    const stored = fx('stored.npz');
    expectError(() => parseNpz(fx('f4_2x3.npy')), 'MALFORMED_FILE', 'bytes of a .npy file', 'parseNpy');
    expectError(() => parseNpz(ascii('hello')), 'MALFORMED_FILE', 'not a valid .npz (zip) file', 'only 5 bytes', 'np.savez');
    expectError(() => parseNpz(new Uint8Array(100)), 'MALFORMED_FILE', 'no end-of-archive record');
    for (const n of [30, stored.length / 2, stored.length - 1]) {
      expectError(() => parseNpz(stored.subarray(0, n), { name: 'stored.npz' }), 'MALFORMED_FILE', 'parseNpz(stored.npz)', 'not a valid .npz');
    }
    // One flipped bit in a stored array's data: the CRC catches it.
    const flipped = stored.slice();
    const at = indexOf(flipped, fx('f4_2x3.npy'));
    flipped[at + 140] ^= 1;
    expectError(() => parseNpz(flipped), 'MALFORMED_FILE', "entry 'w.npy' fails its CRC-32 check", 're-download or re-save');
    // Damaged deflate data.
    const compressed = fx('compressed.npz').slice();
    compressed[60] ^= 0xff;
    compressed[61] ^= 0xff;
    expectError(() => parseNpz(compressed), 'MALFORMED_FILE', "entry 'w.npy'");
    // The directory points past the end.
    const cut = stored.slice();
    const cd = indexOf(cut, ascii('PK\x01\x02'));
    new DataView(cut.buffer).setUint32(cd + 42, 1e6, true);
    expectError(() => parseNpz(cut), 'MALFORMED_FILE', 'no local header');
  });

  it('.npz files that are valid zips but not what np.savez writes', () => {
    expectError(() => parseNpz(zipSync({ 'a.txt': ascii('x') })), 'MALFORMED_FILE', 'holds no .npy arrays', 'np.savez(path, name=array');
    // A bad array inside: the message names the entry.
    const badMember = zipSync({ 'ok.npy': fx('f4_2x3.npy'), 'bad.npy': fx('fortran.npy') });
    expectError(() => parseNpz(badMember, { name: 'm.npz' }), 'UNSUPPORTED_OP', 'parseNpy(m.npz: bad.npy)', 'np.ascontiguousarray');
    expectError(() => parseNpz(zipSync({ 't.npy': fx('f8_3d.npy').subarray(0, 150) })), 'MALFORMED_FILE', 'parseNpy(t.npy)', 'truncated');
    // Two entries of one name.
    const dup = zipSync({ 'a.npy': fx('f4_2x3.npy'), 'b.npy': fx('f4_2x3.npy') });
    for (let at = indexOf(dup, ascii('b.npy')); at >= 0; at = indexOf(dup, ascii('b.npy'), at + 1)) dup[at] = 'a'.charCodeAt(0);
    expectError(() => parseNpz(dup), 'MALFORMED_FILE', "two entries named 'a.npy'");
    // A compression method other than stored or deflated (12 = bzip2).
    const bz = fx('stored.npz').slice();
    const dv = new DataView(bz.buffer);
    dv.setUint16(8, 12, true);
    dv.setUint16(indexOf(bz, ascii('PK\x01\x02')) + 10, 12, true);
    expectError(() => parseNpz(bz), 'UNSUPPORTED_OP', "'w.npy' uses zip compression method 12", 'np.savez or np.savez_compressed');
    // Encrypted.
    const enc = fx('stored.npz').slice();
    new DataView(enc.buffer).setUint16(indexOf(enc, ascii('PK\x01\x02')) + 8, 1, true);
    expectError(() => parseNpz(enc), 'UNSUPPORTED_OP', 'encrypted');
  });

  it('bad arguments to writeNpy and writeNpz', () => {
    const f = new Float32Array(6);
    expectError(() => writeNpy({ dtype: 'float16', shape: [6], data: f } as unknown as npy.NpyArray), 'UNKNOWN_DTYPE', '"float16"', "'float32'");
    expectError(() => writeNpy({ dtype: 'float32', shape: [2, -3], data: f }), 'INVALID_ARGUMENT', 'invalid shape [2,-3]', 'non-negative integers');
    expectError(() => writeNpy({ dtype: 'float32', shape: 6, data: f } as unknown as npy.NpyArray), 'INVALID_ARGUMENT', 'invalid shape 6');
    expectError(() => writeNpy({ dtype: 'float64', shape: [6], data: f } as unknown as npy.NpyArray), 'DTYPE_MISMATCH', "dtype 'float64' needs its data in a Float64Array, got Float32Array", 'Float64Array.from');
    expectError(() => writeNpy({ dtype: 'float32', shape: [6], data: [1, 2, 3, 4, 5, 6] } as unknown as npy.NpyArray), 'DTYPE_MISMATCH', 'got Array', 'Float32Array.from');
    expectError(() => writeNpy({ dtype: 'float32', shape: [2, 2], data: f }), 'LENGTH_MISMATCH', 'data has 6 elements but shape [2, 2] needs 4');
    expectError(() => writeNpy({ dtype: 'bool', shape: [2], data: new Uint8Array([0, 7]) }), 'INVALID_ARGUMENT', 'bool data must be 0 or 1, element 1 is 7');
    expectError(() => writeNpy(undefined as unknown as npy.NpyArray), 'INVALID_ARGUMENT', 'expected an array { dtype, shape, data }');
    expectError(() => writeNpz([] as unknown as Record<string, npy.NpyArray>), 'INVALID_ARGUMENT', 'expected a record of arrays');
    expectError(() => writeNpz({ '': { dtype: 'float32', shape: [6], data: f } }), 'INVALID_ARGUMENT', 'empty name');
    expectError(() => writeNpz({ w: { dtype: 'float32', shape: [5], data: f } }), 'LENGTH_MISMATCH', "writeNpz: array 'w'", 'shape [5] needs 5');
  });
});
