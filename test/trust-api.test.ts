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
    expectError(() => h.tensor([1, 2], [-1, 2] as never), 'INVALID_ARGUMENT', 'tensor: shape[0] must be an integer in [0, 2³² − 1], got -1');
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
    expectError(() => h.zeros([2, -3]), 'INVALID_ARGUMENT', 'zeros: shape[1] must be an integer in [0, 2³² − 1], got -3');
    expectError(() => h.zeros(4 as never), 'INVALID_ARGUMENT', 'zeros: shape must be an array');
    expectError(() => h.zeros([2], 'f64' as never), 'UNKNOWN_DTYPE', "'f64'");
    expectError(() => h.full([2], '1' as never), 'INVALID_ARGUMENT', "full: value must be a number, got a string ('1')");
    expectError(() => h.full([NaN], 1), 'INVALID_ARGUMENT', 'full: shape[0]', 'NaN');
    expect(arr(h.full([2], -Infinity, 'float64'))).toEqual([-Infinity, -Infinity]);
    expect(h.zeros([]).shape).toEqual([]);
  });
});

describe('counts, axes, sizes and enums are checked in the user\'s terms', () => {
  const t = h.tensor([[1, 2, 3], [4, 5, 6]]);
  const noWrap = (fn: () => unknown, code: h.HesseErrorCode, ...parts: (string | RegExp)[]) => {
    const e = thrown(fn);
    expect(e.code, e.message).toBe(code);
    for (const p of parts) expect(e.message).toMatch(p);
    expect(e.message).not.toMatch(/4294967\d\d\d|18446744/);
  };

  it('reductions: axis (negative counts from the end), keepdims', () => {
    expect(arr(h.sum(t, { axis: -1 }))).toEqual([6, 15]);
    expect(arr(h.sum(t, { axis: -2 }))).toEqual([5, 7, 9]);
    expect(h.mean(t, { axis: 0, keepdims: true }).shape).toEqual([1, 3]);
    noWrap(() => h.sum(t, { axis: 2 }), 'INVALID_ARGUMENT', 'sum: axis of [2, 3] must be an integer in [-2, 1], got 2');
    noWrap(() => h.max(t, { axis: -3 }), 'INVALID_ARGUMENT', 'max: axis of [2, 3] must be an integer in [-2, 1], got -3');
    noWrap(() => h.logsumexp(t, { axis: 0.5 }), 'INVALID_ARGUMENT', 'logsumexp: axis of [2, 3]', '0.5');
    noWrap(() => h.sum(h.tensor(1), { axis: 0 }), 'INVALID_ARGUMENT', 'sum: axis of []: a 0-d tensor has no axis 0');
    noWrap(() => h.mean(t, { keepdims: 'yes' as never }), 'INVALID_ARGUMENT', "mean: keepdims must be true or false, got 'yes'");
    const f = (p: h.Sym) => h.sum(h.sum(p, { axis: 4 }));
    noWrap(() => h.grad(f)(t), 'INVALID_ARGUMENT', 'sum: axis of [2, 3] must be an integer in [-2, 1], got 4');
    const g = (p: h.Sym) => h.sum(h.logsumexp(p, { axis: -1 }));
    expect(h.grad(g)(t).shape).toEqual([2, 3]);
  });

  it('permute, concat, reshape', () => {
    expect(h.permute(t, [1, 0]).shape).toEqual([3, 2]);
    expect(h.permute(t, [-1, 0]).shape).toEqual([3, 2]);
    noWrap(() => h.permute(t, [0, 0]), 'INVALID_ARGUMENT', 'must be a permutation of 0..1, but axis 0 appears twice');
    noWrap(() => h.permute(t, [0]), 'INVALID_ARGUMENT', 'permute: perm of a rank-2 tensor must list each of the 2 axes once, got [0]');
    noWrap(() => h.permute(t, [0, 2]), 'INVALID_ARGUMENT', 'perm of a rank-2 tensor[1] must be an integer in [-2, 1], got 2');
    expect(h.concat([t, t], -1).shape).toEqual([2, 6]);
    noWrap(() => h.concat([t, t], 2), 'INVALID_ARGUMENT', 'concat: axis of [2, 3] must be an integer in [-2, 1], got 2');
    noWrap(() => h.concat([]), 'INVALID_ARGUMENT', 'concat: expected a non-empty array');
    noWrap(() => h.concat([t, [1, 2]] as never), 'INVALID_ARGUMENT', 'concat: xs[1] must be a Tensor');
    expect(h.reshape(t, [-1, 2]).shape).toEqual([3, 2]);
    expect(h.reshape(h.zeros([0, 3]), [-1, 3]).shape).toEqual([0, 3]);
    noWrap(() => h.reshape(t, [-1, -1]), 'INVALID_ARGUMENT', 'at most one size may be -1');
    noWrap(() => h.reshape(t, [-2, 3]), 'INVALID_ARGUMENT', 'reshape: shape[0] (a size, or -1 to infer it) must be an integer in [-1, 2³² − 1], got -2');
    noWrap(() => h.reshape(t, [4, -1]), 'SHAPE_MISMATCH', 'cannot reshape [2, 3] (6 elements) to [4, -1]');
    noWrap(() => h.reshape(t, [4, 4]), 'SHAPE_MISMATCH', 'to [4, 4]');
  });

  it('conv2d stride and padding, pointwise parameters, gemm, astype, kernels', () => {
    const x = h.zeros([1, 1, 4, 4]);
    const w = h.zeros([1, 1, 3, 3]);
    expect(h.conv2d(x, w, { stride: [2, 1], padding: 1 }).shape).toEqual([1, 1, 2, 4]);
    noWrap(() => h.conv2d(x, w, { stride: 0 }), 'INVALID_ARGUMENT', 'conv2d: stride must be an integer in [1, 2³² − 1], got 0');
    noWrap(() => h.conv2d(x, w, { padding: [1, -51] }), 'INVALID_ARGUMENT', 'conv2d: padding[1] must be an integer in [0, 2³² − 1], got -51');
    noWrap(() => h.conv2d(x, w, { stride: [1] as never }), 'INVALID_ARGUMENT', 'conv2d: stride must be a number or an [h, w] pair, got 1 values');
    noWrap(() => h.conv2d(x, w, { dilation: 2 }), 'SHAPE_MISMATCH', 'dilated to 5×5');
    noWrap(() => h.conv2d(x, w, { dilation: [1, 0] }), 'INVALID_ARGUMENT', 'conv2d: dilation[1] must be an integer in [1, 2³² − 1], got 0');
    expect(h.conv2d(x, w, { dilation: 1 }).shape).toEqual([1, 1, 2, 2]);
    noWrap(() => h.gelu(t, { approximate: 'fast' as never }), 'INVALID_ARGUMENT', "gelu: approximate must be one of 'none', 'tanh', got 'fast'");
    noWrap(() => h.leakyRelu(t, NaN), 'INVALID_ARGUMENT', 'leakyRelu: slope must be a finite number, got NaN');
    noWrap(() => h.layerNorm(t, { eps: -1 }), 'INVALID_ARGUMENT', 'layerNorm: eps must be a finite number ≥ 0, got -1');
    noWrap(() => h.gemm(t, t, { transB: 1 as never }), 'INVALID_ARGUMENT', 'gemm: transB must be true or false, got 1');
    noWrap(() => h.astype(t, 'int32' as never), 'UNKNOWN_DTYPE', "astype: unknown dtype 'int32'");
    noWrap(() => h.setKernels('fast' as never), 'INVALID_ARGUMENT', "setKernels: kind must be one of 'simd', 'scalar', got 'fast'");
    expect(h.getKernels()).toBe('simd');
    noWrap(() => h.exp([1, 2] as never), 'INVALID_ARGUMENT', 'exp: x must be a Tensor', 'tensor()');
  });

  it('transform options: argnum, checkFinite, chunk, maxBytes; check options', () => {
    const f = (p: h.Sym, x: h.Sym) => h.sum(h.mul(p, x));
    const [p, x] = [f64([1, 2]), f64([3, 4])];
    noWrap(() => h.grad(f, { argnum: 2 } as never)(p, x), 'INVALID_ARGUMENT', 'grad: argnum (0 = params, i = batch[i − 1]) must be an integer in [0, 1], got 2');
    noWrap(() => h.grad(f, { argnum: -1 } as never)(p, x), 'INVALID_ARGUMENT', 'got -1');
    noWrap(() => h.hvp(f, p, p, [x], { checkFinite: 'yes' as never }), 'INVALID_ARGUMENT', 'hvp: checkFinite must be true or false');
    noWrap(() => h.hessian(f, { chunk: 0 })(p, x), 'INVALID_ARGUMENT', 'hessian: chunk must be an integer ≥ 1, got 0');
    noWrap(() => h.jacobian(f, { maxBytes: -5 })(p, x), 'INVALID_ARGUMENT', 'jacobian: maxBytes must be an integer ≥ 1, got -5');
    expect(arr(h.grad(f, { argnum: 1 })(p, x))).toEqual([1, 2]);
    const d: h.Differentiable = { size: 2, dtype: 'float64', point: () => new Float64Array([1, 2]), loss: (q) => q![0]! ** 2, grad: (q) => new Float64Array([2 * q![0]!, 0]), hvp: (v) => new Float64Array([2 * v[0]!, 0]) };
    noWrap(() => h.gradCheck(d, { directions: 0 }), 'INVALID_ARGUMENT', 'gradCheck: directions must be an integer ≥ 1, got 0');
    noWrap(() => h.gradCheck(d, { seed: -1 }), 'INVALID_ARGUMENT', 'gradCheck: seed must be an integer ≥ 0, got -1');
    noWrap(() => h.hvpCheck(d, { v: new Float64Array(3) }), 'LENGTH_MISMATCH', 'hvpCheck: v has 3 values, expected 2');
    noWrap(() => h.hessianFD(d, { at: [1, 2] as never }), 'INVALID_ARGUMENT', 'hessianFD: at must be a Float32Array or Float64Array, got an array of length 2');
    expect(h.hvpCheck(d).relError).toBeLessThan(1e-6);
  });
});

describe('a tensor captured by a traced function is a constant of the trace', () => {
  it('gets no derivative: f(p) = Σ p·c at p = c has ∇ = c and H = 0, not 2c and 2I', () => {
    const c = f64([1, -2, 3]);
    const f = (p: h.Sym) => h.sum(h.mul(p, c));
    expect(arr(h.grad(f)(c))).toEqual([1, -2, 3]);
    expect(arr(h.hvp(f, c, f64([1, 1, 1])))).toEqual([0, 0, 0]);
    expect(arr(h.hessian(f)(c))).toEqual(Array(9).fill(0));
    const [out, jv] = h.jvp(f, c, f64([1, 0, 0]));
    expect([out.item(), jv.item()]).toEqual([14, 1]);
  });

  it('disposing it makes later calls a DISPOSED error that says so; a fresh function works', () => {
    const c = f64([1, 2]);
    const f = (p: h.Sym) => h.sum(h.mul(h.mul(p, p), c));
    const df = h.grad(f);
    const p = f64([3, 4]);
    expect(arr(df(p))).toEqual([6, 16]);
    c.dispose();
    for (let i = 0; i < 2; i++) {
      // First the cached trace notices, then a retrace does: never the stale copy, never a trap.
      expectError(() => df(p), 'DISPOSED', 'tensor of shape [2] (float64) captured by the traced function was disposed', 'pass it as an argument (a batch argument)');
    }
    expectError(() => h.hvp(f, p, p), 'DISPOSED', 'captured by the traced function');
    const c2 = f64([1, 2]);
    const g = (q: h.Sym) => h.sum(h.mul(h.mul(q, q), c2));
    expect(arr(h.grad(g)(p))).toEqual([6, 16]);
    // The documented alternative: pass the changing value as a batch argument.
    const k = (q: h.Sym, x: h.Sym) => h.sum(h.mul(h.mul(q, q), x));
    expect(arr(h.grad(k)(p, f64([1, 2])))).toEqual([6, 16]);
    expect(arr(h.grad(k)(p, f64([2, 0])))).toEqual([12, 0]);
  });
});

describe('checkFinite reports results that overflow, not only inputs', () => {
  // f(p) = Σ √p at p = [4, 0]: value 2, ∇ = 1/(2√p) = [0.25, ∞], H = diag(−1/(4 p^{3/2})) = [−1/32, −∞].
  const f = (p: { a: h.Sym }) => h.sum(h.sqrt(p.a));
  const p = { a: f64([4, 0], [1, 2]) };
  const on = { checkFinite: true };
  const nonFinite = /(-?Infinity|NaN)/;

  it('without it, the non-finite values come back as they are', () => {
    expect(arr(h.grad(f)(p).a)).toEqual([0.25, Infinity]);
  });

  it('value, gradient, HVP, JVP, VJP, Hessian and Jacobian each name the result and the first index', () => {
    expectError(() => h.grad(f, on)(p), 'NON_FINITE', 'grad: checkFinite: the gradient is not finite: Infinity at params.a[0, 1] (flat index 1)');
    expectError(() => h.hvp(f, p, { a: f64([1, 1], [1, 2]) }, [], on), 'NON_FINITE', 'hvp: checkFinite: the HVP H·v is not finite', nonFinite, 'params.a[0, 1]');
    expectError(() => h.jvp(f, p, { a: f64([0, 1], [1, 2]) }, [], on), 'NON_FINITE', 'jvp: checkFinite: the JVP J·v is not finite', 'at output');
    expectError(() => h.hessian(f, on)(p), 'NON_FINITE', 'hessian: checkFinite: the Hessian is not finite', nonFinite, 'at [0, 1] (params.a[0, 0], params.a[0, 1])'); // 0·∞ in the mixed product: NaN
    const g = (q: { a: h.Sym }) => h.sqrt(q.a);
    expectError(() => h.jacobian(g, on)(p), 'NON_FINITE', 'jacobian: checkFinite: the Jacobian is not finite: NaN at [1, 0] (output[0, 1], params.a[0, 0])'); // ∞·0 off the diagonal
    const [, pull] = h.vjp(g, p, [], on);
    expectError(() => pull(f64([1, 1], [1, 2])), 'NON_FINITE', 'vjp: checkFinite: the VJP Jᵀu is not finite: Infinity at params.a[0, 1]');
    expectError(() => pull(f64([1, NaN], [1, 2])), 'INVALID_ARGUMENT', 'the cotangent has a non-finite value (NaN) at output[0, 1]');
    // The value itself: e^100 overflows float32.
    const e = (q: h.Sym) => h.sum(h.exp(q));
    expectError(() => h.valueAndGrad(e, on)(h.tensor([1, 100])), 'NON_FINITE', 'valueAndGrad: checkFinite: the value is not finite: Infinity at output');
    expectError(() => h.jvp(e, h.tensor([1, 100]), h.tensor([1, 1]), [], on), 'NON_FINITE', 'jvp: checkFinite: the value is not finite');
    // Inputs are still checked, and a finite call still works.
    expectError(() => h.grad(f, on)({ a: f64([NaN, 1], [1, 2]) }), 'INVALID_ARGUMENT', 'params has a non-finite value');
    expect(arr(h.grad(f, on)({ a: f64([4, 16], [1, 2]) }).a)).toEqual([0.25, 0.125]);
  });
});

describe('non-tensor operands are named errors in every op', () => {
  it('losses, softmax and layer norm say which operand is not a tensor', () => {
    const t = h.tensor([[1, 2]]);
    expectError(() => h.mseLoss(t, [[1, 2]] as never), 'INVALID_ARGUMENT', 'mseLoss: target must be a Tensor');
    expectError(() => h.crossEntropy(5 as never, t), 'INVALID_ARGUMENT', 'crossEntropy: pred must be a Tensor', 'got a number');
    expectError(() => h.softmax(null as never), 'INVALID_ARGUMENT', 'softmax: x must be a Tensor', 'got null');
    expectError(() => h.layerNorm('x' as never), 'INVALID_ARGUMENT', 'layerNorm: x must be a Tensor', "got a string ('x')");
    expect(h.mseLoss(t, t).item()).toBe(0);
  });
});
