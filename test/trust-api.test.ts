/**
 * The "Trust" issue, TS core: trees matched by key, tensor() data checks, option checks in the
 * user's terms, captured tensors as trace constants, checkFinite on outputs. Everything through
 * the real wasm build; references are closed-form derivatives computed here in plain JS.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';

await h.init();

const f64 = (v: number[], shape = [v.length]) => h.tensor(new Float64Array(v), shape, 'float64');
const arr = (t: h.Tensor) => Array.from(t.toArray());

/** The HesseError `fn` throws (fails the test when it does not throw one). */
function thrown(fn: () => unknown): h.HesseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(h.HesseError);
    return e as h.HesseError;
  }
  return expect.fail('expected a HesseError');
}

function expectError(fn: () => unknown, code: h.HesseErrorCode, ...parts: (string | RegExp)[]): void {
  const e = thrown(fn);
  expect(e.code, e.message).toBe(code);
  for (const p of parts) expect(e.message).toMatch(p);
}

describe('record trees are matched by key, not position', () => {
  // f(a, b) = Σ aᵢ² bᵢ: ∇a = 2ab, ∇b = a²; H = [[diag 2b, diag 2a], [diag 2a, 0]].
  const f = (p: { a: h.Sym; b: h.Sym }) => h.sum(h.mul(h.mul(p.a, p.a), p.b));
  const [a, b] = [[1, 2], [3, -5]];
  const [va, vb] = [[0.5, -1], [2, 7]];
  const hvA = a.map((_, i) => 2 * b[i]! * va[i]! + 2 * a[i]! * vb[i]!);
  const hvB = a.map((_, i) => 2 * a[i]! * va[i]!);
  const params = { a: f64(a), b: f64(b) };

  it('hvp: v given in another key order', () => {
    for (const v of [{ b: f64(vb), a: f64(va) }, { a: f64(va), b: f64(vb) }]) {
      const hv = h.hvp(f, params, v);
      expect(Object.keys(hv)).toEqual(['a', 'b']);
      expect(arr(hv.a)).toEqual(hvA);
      expect(arr(hv.b)).toEqual(hvB);
    }
  });

  it('hvp: params in another key order (v in the first)', () => {
    const hv = h.hvp(f, { b: f64(b), a: f64(a) }, { a: f64(va), b: f64(vb) });
    expect(arr(hv.a)).toEqual(hvA);
    expect(arr(hv.b)).toEqual(hvB);
  });

  it('jvp: tangents in another key order', () => {
    const [out, jv] = h.jvp(f, params, { b: f64(vb), a: f64(va) });
    expect(out.item()).toBe(1 * 3 + 4 * -5);
    expect(jv.item()).toBe(a.reduce((s, ai, i) => s + 2 * ai * b[i]! * va[i]! + ai * ai * vb[i]!, 0));
  });

  it('vjp, grad, hessian: results keyed like params, whatever the key order', () => {
    const swapped = { b: f64(b), a: f64(a) };
    const [, pull] = h.vjp(f, swapped);
    const g = pull(f64([2], []));
    expect(arr(g.a)).toEqual(a.map((ai, i) => 2 * 2 * ai * b[i]!));
    expect(arr(g.b)).toEqual(a.map((ai) => 2 * ai * ai));
    const g2 = h.grad(f)(swapped);
    expect(Object.keys(g2)).toEqual(['b', 'a']);
    expect(arr(g2.a)).toEqual(a.map((ai, i) => 2 * ai * b[i]!));
    // Flat order is the params' key order: [b, a]. H rows for b: [0, diag 2a]; for a: [diag 2a, diag 2b].
    expect(arr(h.hessian(f)(swapped))).toEqual([0, 0, 2, 0, 0, 0, 0, 4, 2, 0, 6, 0, 0, 4, 0, -10]);
  });

  it('different keys, a different structure or a wrong shape are errors naming them; then it still works', () => {
    expectError(() => h.hvp(f, params, { a: f64(va) } as never), 'INVALID_ARGUMENT', "hvp: v missing 'b'", /'a', 'b'/);
    expectError(() => h.hvp(f, params, { a: f64(va), b: f64(vb), c: f64(vb) } as never), 'INVALID_ARGUMENT', "has extra 'c'");
    expectError(() => h.jvp(f, params, { a: f64(va), c: f64(vb) } as never), 'INVALID_ARGUMENT', "missing 'b' and has extra 'c'");
    expectError(() => h.hvp(f, params, [f64(va), f64(vb)] as never), 'INVALID_ARGUMENT', 'v is an array of tensors but params is a record of tensors');
    expectError(() => h.hvp((p: h.Sym[]) => h.sum(h.mul(p[0]!, p[1]!)), [f64(a), f64(b)], { a: f64(va), b: f64(vb) } as never), 'INVALID_ARGUMENT', 'is a record of tensors but params is an array');
    expectError(() => h.hvp(f, params, { a: f64(va), b: f64([1, 2, 3]) }), 'SHAPE_MISMATCH', 'hvp: v.b has shape [3] but params.b has shape [2]');
    expectError(() => h.hvp(f, params, { a: f64(va), b: h.tensor(vb) }), 'DTYPE_MISMATCH', 'hvp: v mixes float64 and float32 tensors', 'v.b');
    expectError(() => h.hvp(f, params, { a: f64(va), b: [1, 2] } as never), 'INVALID_ARGUMENT', 'v.b must be a Tensor');
    expectError(() => h.grad(f)({ a: f64(a), b: undefined } as never), 'INVALID_ARGUMENT', 'params.b must be a Tensor, got undefined');
    const [, pull] = h.vjp(f, params);
    expectError(() => pull(f64([1, 2])), 'SHAPE_MISMATCH', 'vjp: the cotangent has shape [2] but the output has shape []');
    expect(arr(h.hvp(f, params, { b: f64(vb), a: f64(va) }).a)).toEqual(hvA);
  });

  it('arrays stay positional, and argnum picks a single-tensor variable', () => {
    const g = (p: h.Sym[]) => h.sum(h.mul(h.mul(p[0]!, p[0]!), p[1]!));
    const hv = h.hvp(g, [f64(a), f64(b)], [f64(va), f64(vb)]);
    expect(arr(hv[0]!)).toEqual(hvA);
    const k = (p: h.Sym, x: h.Sym) => h.sum(h.mul(h.mul(x, x), p));
    expect(arr(h.hvp(k, f64(b), f64(va), [f64(a)], { argnum: 1 }))).toEqual(b.map((bi, i) => 2 * bi * va[i]!));
    expectError(() => h.hvp(k, f64(b), [f64(va)] as never, [f64(a)], { argnum: 1 }), 'INVALID_ARGUMENT', 'v is an array of tensors but batch[0] is a single tensor');
  });
});

describe('tensor() checks its data', () => {
  it('rejects ragged nesting, non-numbers and nesting that differs from the shape, naming where', () => {
    expectError(() => h.tensor([[1, 2], [3]]), 'INVALID_ARGUMENT', 'data[1] is an array of length 1 where data[0] is an array of length 2');
    expectError(() => h.tensor([[1, 2], 3] as never), 'INVALID_ARGUMENT', 'data[1] is a number where data[0]');
    expectError(() => h.tensor([[1, [2]], [3, 4]] as never), 'INVALID_ARGUMENT', 'data[0][1] is an array of length 1, nested deeper than data[0][0]');
    expectError(() => h.tensor([[1, 2], [3, '4']] as never), 'INVALID_ARGUMENT', "data[1][1] is a string ('4'), not a number");
    expectError(() => h.tensor([1, null, 3] as never), 'INVALID_ARGUMENT', 'data[1] is null');
    expectError(() => h.tensor([1, undefined] as never), 'INVALID_ARGUMENT', 'data[1] is undefined');
    expectError(() => h.tensor([true, false] as never, [2]), 'INVALID_ARGUMENT', 'data[0] is a boolean (true)');
    expectError(() => h.tensor({ a: 1 } as never), 'INVALID_ARGUMENT', 'tensor: data must be a number, a typed array or (nested) arrays of numbers, got an object (Object)');
    expectError(() => h.tensor('12' as never), 'INVALID_ARGUMENT', "got a string ('12')");
    expectError(() => h.tensor(null as never), 'INVALID_ARGUMENT', 'got null');
    expectError(() => h.tensor([[1, 2], [3, 4]], [4]), 'INVALID_ARGUMENT', 'nested data has shape [2, 2] but shape [4] was given');
    expectError(() => h.tensor([[1, 2], [3, 4]], [1, 4]), 'INVALID_ARGUMENT', 'shape [1, 4]');
    expectError(() => h.tensor([1, 2, 3], [2, 2]), 'LENGTH_MISMATCH', 'data has 3 elements but shape [2, 2] needs 4');
    expectError(() => h.tensor(new Float64Array(5), [2, 3]), 'LENGTH_MISMATCH', 'data has 5 elements but shape [2, 3] needs 6');
    expectError(() => h.tensor(3, [2]), 'LENGTH_MISMATCH', 'data has 1 elements but shape [2] needs 2');
    expectError(() => h.tensor([1, 2], [-1, 2] as never), 'INVALID_ARGUMENT', 'tensor: shape[0] must be an integer in [0, 4294967295], got -1');
    expectError(() => h.tensor([1, 2], [2.5] as never), 'INVALID_ARGUMENT', 'tensor: shape[0]', '2.5');
    expectError(() => h.tensor([1, 2], [2], 'int8' as never), 'UNKNOWN_DTYPE', "'int8'", "'float32' or 'float64'");
    expect(arr(h.tensor([[1, 2], [3, 4]]))).toEqual([1, 2, 3, 4]); // still works
  });

  it('makes 0-d tensors from a number, and keeps NaN, ±∞ and empty shapes', () => {
    const s = h.tensor(3);
    expect(s.shape).toEqual([]);
    expect(s.item()).toBe(3);
    expect(h.tensor(2.5, [], 'float64').dtype).toBe('float64');
    expect(h.tensor(7, [1, 1]).shape).toEqual([1, 1]);
    expect(arr(h.tensor([NaN, Infinity, -Infinity]))).toEqual([NaN, Infinity, -Infinity]);
    expect(h.tensor([]).shape).toEqual([0]);
    expect(h.tensor([[], []]).shape).toEqual([2, 0]);
    expect(h.tensor([], [3, 0]).shape).toEqual([3, 0]);
    expect(arr(h.tensor(new Int32Array([1, -2]), [2, 1]))).toEqual([1, -2]);
  });

  it('zeros and full check their shape and value', () => {
    expectError(() => h.zeros([2, -3]), 'INVALID_ARGUMENT', 'zeros: shape[1] must be an integer in [0, 4294967295], got -3');
    expectError(() => h.zeros(4 as never), 'INVALID_ARGUMENT', 'zeros: shape must be an array');
    expectError(() => h.zeros([2], 'f64' as never), 'UNKNOWN_DTYPE', "'f64'");
    expectError(() => h.full([2], '1' as never), 'INVALID_ARGUMENT', "full: value must be a number, got a string ('1')");
    expectError(() => h.full([NaN], 1), 'INVALID_ARGUMENT', 'full: shape[0]', 'NaN');
    expect(arr(h.full([2], -Infinity, 'float64'))).toEqual([-Infinity, -Infinity]);
    expect(h.zeros([]).shape).toEqual([]);
  });
});
