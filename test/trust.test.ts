/**
 * Never a trap, never a silently wrong answer, through the real wasm build: the raw bindings
 * check their own arguments (a caller that skips the TS layer still gets HesseErrors), sizes
 * that overflow wasm32's usize are errors, a JS matvec may re-enter the operator it serves, and
 * cross-entropy with −∞ logits gives PyTorch's finite answer.
 */
import { describe, expect, it } from 'vitest';
import * as h from '../ts/index.js';
import { call } from '../ts/errors.js';
import { core } from '../ts/runtime.js';

await h.init();

/** The HesseError `f` throws (fails the test on anything else, or on no error). */
function hesseError(f: () => unknown): h.HesseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(h.HesseError);
    return e as h.HesseError;
  }
  throw new Error('expected a HesseError');
}
const raw = <T>(f: () => T): T => call(f);
const f64 = (v: number[], shape: number[]) => h.tensor(new Float64Array(v), shape, 'float64');

describe('the raw bindings validate their arguments', () => {
  it('conv2d padding that overflows wasm32 sizes is an error, not a wrapped [1, 1, 2, 2] zero', () => {
    using x = f64([1, 2, 3, 4], [1, 1, 2, 2]);
    using w = f64([1], [1, 1, 1, 1]);
    const e = hesseError(() => raw(() => core().conv2d(x.raw('t'), w.raw('t'), new Uint32Array([1, 1, 2 ** 31, 0, 2 ** 31, 0, 1, 1, 1]))));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('conv2d');
    expect(e.message).toContain('[1, 1, 2, 2]');
    // An output too big to address: OUT_OF_MEMORY naming the op (H + 2p fits, the output does not).
    expect(hesseError(() => raw(() => core().conv2d(x.raw('t'), w.raw('t'), new Uint32Array([1, 1, 2 ** 30 - 1, 2 ** 30 - 1, 2 ** 30 - 1, 2 ** 30 - 1, 1, 1, 1])))).code).toBe('OUT_OF_MEMORY');
    using y = h.conv2d(x, w, { padding: 1 });
    expect(y.shape).toEqual([1, 1, 4, 4]);
    expect(Array.from(y.toArray())).toEqual([0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0]);
  });

  it('programs: bad node ids, slots, lengths, tangent counts, block ranges and empty batches', () => {
    const p = new (core().RawProgram)('float64');
    try {
      const x = raw(() => p.input(new Uint32Array([0, 2])));
      expect(hesseError(() => raw(() => p.binary('add', x, 99))).code).toBe('INVALID_ARGUMENT');
      expect(hesseError(() => raw(() => p.matmul(x, 2 ** 32 - 1, false, false))).code).toBe('INVALID_ARGUMENT');
      expect(p.nNodes()).toBe(1);
      // A shape whose element count overflows wasm32's usize is refused, not wrapped.
      expect(hesseError(() => raw(() => p.param(new Uint32Array([65536, 65536])))).code).toBe('OUT_OF_MEMORY');
      const f = raw(() => p.sequential(x, JSON.stringify([{ type: 'linear', in: 2, out: 3 }])));
      // A failed sequential leaves no half-built layers behind.
      const nodes = p.nNodes();
      expect(hesseError(() => raw(() => p.sequential(f, JSON.stringify([{ type: 'linear', in: 3, out: 2 }, { type: 'linear', in: 5, out: 1 }])))).code).toBe('SHAPE_MISMATCH');
      expect(p.nNodes()).toBe(nodes);
      expect(p.nParams()).toBe(9);
      raw(() => p.setParams(new Float64Array(9).fill(0.5)));
      expect(hesseError(() => raw(() => p.setParams(new Float64Array(8)))).code).toBe('LENGTH_MISMATCH');
      expect(hesseError(() => raw(() => p.setParams(new Float32Array(9)))).code).toBe('DTYPE_MISMATCH');
      expect(hesseError(() => raw(() => p.setInput(3, new Float64Array(0)))).code).toBe('INVALID_ARGUMENT');
      // K-FAC and the Monte Carlo GGN of an empty batch.
      expect(hesseError(() => raw(() => p.kfac(f, 'mse', 'exact', 1, 0))).code).toBe('INVALID_ARGUMENT');
      expect(hesseError(() => raw(() => p.kfac(f, 'mse', 'mc', 0, 0))).code).toBe('INVALID_ARGUMENT');
      expect(hesseError(() => raw(() => p.gaussNewton(f, 'mse', 'dense', 4, new Uint32Array(0), 2, 0, false))).code).toBe('INVALID_ARGUMENT');
      // Blocks: odd pairs, and ranges past P (including an end that overflows u32).
      expect(hesseError(() => raw(() => p.gaussNewton(f, 'mse', 'blocks', 4, new Uint32Array([0]), 0, 0, false))).code).toBe('INVALID_ARGUMENT');
      expect(hesseError(() => raw(() => p.gaussNewton(f, 'mse', 'blocks', 4, new Uint32Array([8, 2]), 0, 0, false))).code).toBe('INVALID_ARGUMENT');
      expect(hesseError(() => raw(() => p.gaussNewton(f, 'mse', 'blocks', 4, new Uint32Array([2 ** 32 - 1, 2]), 0, 0, false))).code).toBe('INVALID_ARGUMENT');
      // K·n past the address space, and a run up to a node that does not exist.
      const s = raw(() => p.reduce('sum', f, undefined, false));
      expect(hesseError(() => raw(() => p.hvp(s, -1, new Float64Array(0), 2 ** 32 - 1, core().RawCurvature.hessian(), false))).code).toBe('OUT_OF_MEMORY');
      expect(hesseError(() => raw(() => p.value(999, false))).code).toBe('INVALID_ARGUMENT');
      // ...and it still runs: the sum of an empty batch's outputs is 0, its gradient 0.
      const { value, grad: g } = raw(() => p.grad(s, -1, false)) as { value: Float64Array; grad: Float64Array };
      expect(Array.from(value!)).toEqual([0]);
      expect(Array.from(g!)).toEqual(new Array(9).fill(0));
    } finally {
      p.free();
    }
  });

  it('K-FAC and operators check vector lengths', () => {
    using x = f64([1, 2, 3, 4], [2, 2]);
    using y = f64([0, 1], [2]);
    using obj = h.objective(h.nn.sequential([h.nn.linear(2, 2)]), 'ce', { x, y }, { seed: 1 });
    using k = obj.kfac();
    expect(hesseError(() => k.mvp(new Float64Array(5))).code).toBe('LENGTH_MISMATCH');
    expect(hesseError(() => raw(() => (k as unknown as { mvp(v: unknown): unknown }).mvp([1, 2]))).code).toBe('LENGTH_MISMATCH') // the TS layer takes number arrays and checks the length first;
    expect(hesseError(() => raw(() => core().eigh(new Float64Array(3), 2))).code).toBe('LENGTH_MISMATCH');
    expect(hesseError(() => raw(() => core().eigh('not numbers', 1))).code).toBe('DTYPE_MISMATCH');
    expect(k.mvp(new Float64Array(6)).length).toBe(6);
  });
});

describe('re-entrant operators', () => {
  const A = [4, 1, 0, 1, 3, 0, 0, 0, 2]; // eigenvalues 2, (7 ± √5)/2
  const matvec = (v: Float64Array) => Float64Array.from([0, 1, 2], (i) => A[3 * i]! * v[0]! + A[3 * i + 1]! * v[1]! + A[3 * i + 2]! * v[2]!);

  it("a matvec may use the operator it serves (before: wasm-bindgen's 'recursive use of an object')", () => {
    let inner: number[] | undefined;
    const sizes: number[] = [];
    const op = core().RawOperator.fromFunction(3, (v: Float64Array) => {
      sizes.push(op.size());
      if (!inner) {
        inner = []; // one level of nesting: the inner run's matvec calls skip this
        inner = Array.from((raw(() => core().lanczos(op, 1, 'largest', 10, 1e-10, 1, false, false)) as { values: Float64Array }).values);
      }
      return matvec(v);
    });
    try {
      const r = raw(() => core().lanczos(op, 3, 'largest', 10, 1e-10, 0, false, false)) as { values: Float64Array };
      const want = [(7 + Math.sqrt(5)) / 2, (7 - Math.sqrt(5)) / 2, 2];
      Array.from(r.values).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 10));
      expect(inner![0]).toBeCloseTo(want[0]!, 10);
      expect(sizes.length).toBeGreaterThan(3);
      expect(new Set(sizes)).toEqual(new Set([3]));
    } finally {
      op.free();
    }
  });

  it('a matvec that frees its operator gets a HesseError in plain words; the operator then says it is closed', () => {
    const op = core().RawOperator.fromFunction(3, (v: Float64Array) => {
      op.free();
      return matvec(v);
    });
    const e = hesseError(() => raw(() => core().lanczos(op, 1, 'largest', 10, 1e-10, 0, false, false)));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toContain('matvec freed or modified a hesse object');
    expect(e.message).not.toMatch(/recursive use|aliasing|borrowed/);
    // wasm-bindgen's glue drops its handle before Rust refuses the free: the operator is closed.
    const closed = hesseError(() => raw(() => op.size()));
    expect(closed.code).toBe('DISPOSED');
    expect(closed.message).toContain('was freed');
    // Everything else keeps working.
    expect(h.eigenvalues({ size: 3, matvec }, 1).values[0]).toBeCloseTo((7 + Math.sqrt(5)) / 2, 8);
  });

  it('an error a matvec throws keeps its HesseError code through the algorithm', () => {
    const e = hesseError(() =>
      h.eigenvalues({ size: 3, matvec: () => { throw new h.HesseError('OUT_OF_MEMORY', 'inner allocation failed'); } }, 1),
    );
    expect(e.code).toBe('OUT_OF_MEMORY');
    expect(e.message).toContain('inner allocation failed');
    expect(h.eigenvalues({ size: 3, matvec }, 1).values[0]).toBeCloseTo((7 + Math.sqrt(5)) / 2, 8);
  });
});

describe('cross-entropy with −∞ logits (closed form; PyTorch gives the same finite values)', () => {
  // z = [0, −∞, 1], label 0: p = softmax(z) = [1, 0, e]/(1 + e); F.cross_entropy = log(1 + e);
  // its gradient p − onehot(0), 0 at the −∞ entry; Hessian diag(p) − ppᵀ; log_softmax = z − log(1 + e).
  const e1 = Math.E;
  const p = [1 / (1 + e1), 0, e1 / (1 + e1)];
  const ce = (q: { z: h.Sym }, yy: h.Sym) => h.crossEntropy(q.z, yy);

  it('loss, gradient and HVP are finite and exact', () => {
    using z = f64([0, -Infinity, 1], [1, 3]);
    using y = f64([0], [1]);
    const [loss, g] = h.valueAndGrad(ce)({ z }, y);
    expect(loss).toBeCloseTo(Math.log(1 + e1), 14);
    const gz = Array.from(g.z.toArray());
    [p[0]! - 1, 0, p[2]!].forEach((want, i) => expect(gz[i]).toBeCloseTo(want, 14));
    expect(Object.is(gz[1], -0) || gz[1] === 0).toBe(true);
    const v = [0.3, -0.7, 1.1];
    using vt = f64(v, [1, 3]);
    const hv = Array.from(h.hvp(ce, { z }, { z: vt }, [y]).z.toArray());
    const pv = p.reduce((s, pi, i) => s + pi * v[i]!, 0);
    p.forEach((pi, i) => expect(hv[i]).toBeCloseTo(pi * v[i]! - pi * pv, 14));
  });

  it('log_softmax is −∞ only at the −∞ entry; softmax is 0 there', () => {
    using z = f64([0, -Infinity, 1, 2, -Infinity, -Infinity], [2, 3]);
    const ls = Array.from(h.logSoftmax(z).toArray());
    const l0 = Math.log(1 + e1);
    expect(ls[0]).toBeCloseTo(-l0, 14);
    expect(ls[1]).toBe(-Infinity);
    expect(ls[2]).toBeCloseTo(1 - l0, 14);
    expect(ls.slice(3)).toEqual([0, -Infinity, -Infinity]);
    const sm = Array.from(h.softmax(z).toArray());
    expect(sm[1]).toBe(0);
    expect(sm.slice(3)).toEqual([1, 0, 0]);
  });

  it('an objective with a −∞ logit bias has a finite loss, gradient and GGN', () => {
    using x = f64([1, 2, -1, 0.5], [2, 2]);
    using y = f64([0, 2], [2]);
    // linear(2, 3): W = 0, b = [0, −∞, 1]: every sample's logits are z above.
    const params = new Float64Array([0, 0, 0, 0, 0, 0, 0, -Infinity, 1]);
    using obj = h.objective(h.nn.sequential([h.nn.linear(2, 3)]), 'ce', { x, y }, { params });
    expect(obj.loss()).toBeCloseTo((Math.log(1 + e1) + (Math.log(1 + e1) - 1)) / 2, 14);
    const g = obj.grad();
    expect(Array.from(g).every(Number.isFinite)).toBe(true);
    expect(g[7]).toBe(0); // the −∞ class's bias
    const G = obj.gaussNewton('dense');
    expect(Array.from(G).every(Number.isFinite)).toBe(true);
    expect(Array.from(obj.hvp(new Float64Array(9).fill(1))).every(Number.isFinite)).toBe(true);
  });
});
