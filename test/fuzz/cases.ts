/**
 * The fuzz cases: each step kind draws a call through the public API (gen), makes it and judges
 * it with the oracle (run), and writes it as JS (code: the reproducer). A case is a list of
 * steps, optionally inside a memory-pressure phase (allocate until OUT_OF_MEMORY, run the steps,
 * free). Everything a step needs is in its JSON-able description, so a case replays from
 * (seed, index) or from its encoded description alone.
 */
import {
  BAD_DIMS, HUGE_SHAPES, Rng, matrix, boolOpt, combine, countOpt, dim, enumOpt, fillValue, lit, litOpts, litT, numberOpt, opts, seedOpt, shapeOf, size, tspec,
  type DT, type Fill, type Opt, type TSpec, type Validity,
} from './gen.js';
import {
  Ctx, UNARY_REF, allFinite, broadcastRef, broadcastShape, conv2dRef, dot, expectClose, expectFinite, expectShape, fail, jacobiEigenvalues, matmulRef, matvec, maxAbs, norm, reduceAxesRef, reduceRef, strides,
} from './oracle.js';
import type { Tensor } from '../../ts/index.js';

type H = Ctx['H'];
export type Step = { kind: string } & Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export interface Case {
  index: number;
  seed: number;
  /** Bytes per allocation of the memory-pressure phase (0: none). */
  pressureChunk: number;
  steps: Step[];
}

interface Kind {
  gen(r: Rng): Step;
  run(s: Step, ctx: Ctx, live: Tensor[]): void;
  code(s: Step): string;
}

/** The tensor of a spec (the executor's `T`). The tensor is tracked for disposal. */
function T(H: H, s: TSpec, live: Tensor[]): Tensor {
  const t = H.tensor(Array.from({ length: size(s.shape) }, (_, i) => fillValue(s.fill, i, s.seed)), s.shape, s.dtype);
  live.push(t);
  return t;
}
const keep = <X>(live: Tensor[], x: X): X => {
  if (x && typeof x === 'object' && 'dispose' in x) live.push(x as unknown as Tensor);
  return x;
};
const dtypeOf = (r: Rng): DT => (r.chance(0.5) ? 'float32' : 'float64');
/** Tolerances of elementwise results against the float64 reference. */
const tol = (dt: DT) => (dt === 'float32' ? { rtol: 2e-5, atol: 1e-6 } : { rtol: 1e-10, atol: 1e-13 });
const rounded = (dt: DT, xs: ArrayLike<number>) => (dt === 'float32' ? Float64Array.from(Float32Array.from(xs)) : Float64Array.from(xs));
const dataOf = (s: TSpec) => rounded(s.dtype, Array.from({ length: size(s.shape) }, (_, i) => fillValue(s.fill, i, s.seed)));

/** Runs `fn` with each kernel family (simd, scalar), restoring simd. */
function bothKernels<R>(H: H, fn: (kernel: 'simd' | 'scalar') => R): R[] {
  try {
    return (['simd', 'scalar'] as const).map((k) => {
      H.setKernels(k);
      return fn(k);
    });
  } finally {
    H.setKernels('simd');
  }
}

// ---- creation ------------------------------------------------------------------------------

const create: Kind = {
  gen(r) {
    const fn = r.pick(['zeros', 'full', 'tensor', 'nested'] as const);
    const roll = r.next();
    let shape: unknown[] = shapeOf(r, 4);
    let validity: Validity = 'ok';
    if (roll < 0.15) {
      shape = [...shape];
      shape.splice(r.int(0, shape.length), 0, r.pick(BAD_DIMS));
      validity = 'err';
    } else if (roll < 0.3) {
      shape = r.pick(HUGE_SHAPES);
      // An empty shape whose other dims overflow together may be refused too: the core admits a
      // shape only if the product of its non-zero dims fits (so every partial product does).
      validity = size(shape as number[]) === 0 ? 'any' : fn === 'zeros' || fn === 'full' ? 'any' : 'err';
    }
    let dtype: unknown = r.pick(['float32', 'float64', undefined]);
    if (r.chance(0.1)) {
      dtype = r.pick(['float16', 'int32', 'f32', 42, 'FLOAT32']);
      validity = 'err';
    }
    const value = r.pick([0, 1.5, -2, NaN, Infinity, 3e38, 1e-45]);
    if (fn === 'nested' && validity !== 'ok') {
      shape = shapeOf(r, 3);
      validity = dtype === undefined || dtype === 'float32' || dtype === 'float64' ? 'ok' : 'err';
    }
    // Ragged: the last row one short, which needs a second row of a non-empty last dim.
    const ragged = fn === 'nested' && shape.length >= 2 && (shape as number[]).every((d) => d >= 1) && (shape[shape.length - 2] as number) >= 2 && r.chance(0.3);
    if (ragged) validity = 'err';
    return { kind: 'create', fn, shape, dtype, value, ragged, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const shape = s.shape as number[];
    const dt = (s.dtype ?? 'float32') as DT;
    const n = size(shape);
    const small = Number.isSafeInteger(n) && n >= 0 && n <= 1 << 16;
    let want: Float64Array | undefined;
    const t = ctx.attempt(`${s.fn}`, s.validity, () => {
      if (s.fn === 'zeros') return keep(live, H.zeros(shape, s.dtype));
      if (s.fn === 'full') return keep(live, H.full(shape, s.value, s.dtype));
      if (s.fn === 'tensor') {
        const data = Array.from({ length: small ? n : 3 }, (_, i) => fillValue('rand', i, 1));
        want = rounded(dt, data);
        return keep(live, H.tensor(data, shape, s.dtype));
      }
      const data = nested(shape, s.ragged);
      want = rounded(dt, (data as unknown[]).flat(Infinity) as number[]);
      return keep(live, H.tensor(data as number[], undefined, s.dtype));
    }, `shape ${lit(shape)}, dtype ${lit(s.dtype)}`);
    if (!t) return;
    ctx.check(s.fn, () => {
      if (s.fn !== 'nested') expectShape(s.fn, t.shape, shape);
      if (t.dtype !== dt) fail(`${s.fn}: dtype ${t.dtype}, expected ${dt}`);
      if (t.size !== size(t.shape)) fail(`${s.fn}: size ${t.size} for shape [${t.shape.join(', ')}]`);
      if (t.size > 1 << 20) return;
      const got = t.toArray();
      if (s.fn === 'zeros') expectClose('zeros', got, new Float64Array(t.size), 0, 0);
      else if (s.fn === 'full') expectClose('full', got, rounded(dt, new Array(t.size).fill(s.value)), 0, 0);
      else expectClose(s.fn, got, want!, 0, 0);
      if (t.size === 1 && !Object.is(t.item(), got[0]) && !(Number.isNaN(t.item()) && Number.isNaN(got[0]))) fail('item() differs from toArray()[0]');
      const list = t.toList();
      if (t.shape.length === 0 ? typeof list !== 'number' : !Array.isArray(list) || list.length !== t.shape[0]) fail(`toList() of shape [${t.shape.join(', ')}]: ${JSON.stringify(list).slice(0, 80)}`);
    });
  },
  code(s) {
    if (s.fn === 'zeros') return `zeros(${lit(s.shape)}, ${lit(s.dtype)})`;
    if (s.fn === 'full') return `full(${lit(s.shape)}, ${lit(s.value)}, ${lit(s.dtype)})`;
    if (s.fn === 'tensor') return `tensor(/* ${size(s.shape as number[]) <= 1 << 16 ? 'prod(shape)' : 3} numbers */ data, ${lit(s.shape)}, ${lit(s.dtype)})`;
    return `tensor(${JSON.stringify(nested(s.shape, s.ragged))}, undefined, ${lit(s.dtype)})`;
  },
};

/** Nested arrays of a shape (ragged: the last row one short). */
function nested(shape: number[], ragged: boolean): unknown {
  let k = 0;
  const build = (d: number, last: boolean): unknown => {
    if (d === shape.length) return fillValue('rand', k++, 1);
    const len = shape[d]!;
    const n = ragged && last && d === shape.length - 1 ? len - 1 : len;
    return Array.from({ length: n }, (_, i) => build(d + 1, last && i === len - 1));
  };
  const out = build(0, true);
  return shape.length === 0 ? [out] : out;
}

// ---- elementwise -----------------------------------------------------------------------------

const UNARY = ['neg', 'abs', 'square', 'sqrt', 'relu', 'exp', 'log', 'tanh', 'sigmoid', 'leakyRelu', 'elu', 'softplus', 'gelu', 'hardSigmoid', 'hardSwish', 'silu', 'clip', 'hardtanh', 'relu6'] as const;

const unary: Kind = {
  gen(r) {
    const op = r.pick(UNARY);
    const x = tspec(r, shapeOf(r, 4, r.chance(0.1) ? 40 : 5), dtypeOf(r));
    let param: Opt = { value: undefined, validity: 'ok' };
    if (op === 'leakyRelu' || op === 'elu') param = r.chance(0.1) ? { value: r.pick(['0.1', {}]), validity: 'err' } : r.chance(0.1) ? { value: r.pick([NaN, Infinity]), validity: 'any' } : { value: r.pick([undefined, 0.2, 1, 2.5, 0]), validity: 'ok' };
    if (op === 'gelu') param = enumOpt(r, ['none', 'tanh']);
    // clip: bounds undefined (none), finite or ±∞; NaN or a non-number is INVALID_ARGUMENT. hardtanh: finite bounds.
    if (op === 'clip' || op === 'hardtanh') {
      const b = (): Opt => (r.chance(0.1) ? { value: r.pick([NaN, '1', {}, ...(op === 'hardtanh' ? [Infinity, -Infinity] : [])]), validity: 'err' } : { value: r.pick([undefined, -1, 0.5, 2, ...(op === 'clip' ? [Infinity, -Infinity] : [])]), validity: 'ok' });
      const [lo, hi] = [b(), b()];
      param = { value: [lo.value, hi.value], validity: combine(lo.validity, hi.validity) };
    }
    // hardSigmoid: { alpha, beta } finite; another key is INVALID_ARGUMENT (validate.options).
    if (op === 'hardSigmoid') {
      const roll = r.next();
      param = roll < 0.1 ? { value: r.pick([{ alpha: NaN }, { beta: '1' }, { gamma: 1 }, { alpha: Infinity }]), validity: 'err' } : roll < 0.5 ? { value: undefined, validity: 'ok' } : { value: { alpha: r.pick([0.2, 1 / 6, -1]), beta: r.pick([undefined, 0.5, 0]) }, validity: 'ok' };
    }
    return { kind: 'unary', op, x, param: param.value, validity: param.validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const x = T(H, s.x, live);
    const call = () => {
      const f = (H as unknown as Record<string, (x: Tensor, p?: unknown) => Tensor>)[s.op]!;
      if (s.op === 'clip' || s.op === 'hardtanh') return keep(live, (f as (x: Tensor, a?: unknown, b?: unknown) => Tensor)(x, ...(s.param as unknown[])));
      return keep(live, s.op === 'gelu' ? f(x, s.param === undefined ? undefined : { approximate: s.param }) : f(x, s.param));
    };
    const outs = bothKernels(H, (k) => ctx.attempt(`${s.op} (${k})`, s.validity, call));
    if (!outs[0] || s.validity === 'err') return;
    const xs = dataOf(s.x);
    const p = s.param ?? (s.op === 'leakyRelu' ? 0.01 : 1);
    const ref = UNARY_REF[s.op === 'gelu' && s.param === 'tanh' ? 'geluTanh' : s.op]!;
    const bounds = (s.param ?? []) as (number | undefined)[];
    const want = Float64Array.from(xs, (v) =>
      s.op === 'clip' ? UNARY_REF.clip!(v, bounds[0] ?? -Infinity, bounds[1] ?? Infinity)
      : s.op === 'hardtanh' ? UNARY_REF.clip!(v, bounds[0] ?? -1, bounds[1] ?? 1)
      : s.op === 'hardSigmoid' ? UNARY_REF.hardSigmoid!(v, (s.param as { alpha?: number })?.alpha ?? 1 / 6, (s.param as { beta?: number })?.beta ?? 0.5)
      : ref(v, p));
    outs.forEach((y, i) =>
      ctx.check(s.op, () => {
        if (!y) return;
        expectShape(s.op, y.shape, s.x.shape);
        const got = y.toArray();
        const { rtol, atol } = tol(s.x.dtype);
        const loose = s.op === 'gelu' || s.op === 'softplus' || s.op === 'elu' || s.op === 'sigmoid' || s.op === 'tanh' || s.op === 'silu' || s.op === 'hardSigmoid' || s.op === 'hardSwish' ? 10 : 1;
        const finiteIn = Float64Array.from(want, (w, j) => (Number.isFinite(xs[j]!) ? w : NaN));
        const gotMasked = Float64Array.from(got, (g, j) => (Number.isFinite(xs[j]!) ? g : NaN));
        expectClose(`${s.op} (${i ? 'scalar' : 'simd'})`, gotMasked, rounded(s.x.dtype, finiteIn), rtol * loose, atol);
        xs.forEach((v, j) => {
          if (Number.isNaN(v) && !Number.isNaN(got[j]!)) fail(`${s.op}(NaN) = ${got[j]}, expected NaN`);
        });
      }),
    );
  },
  code(s) {
    const arg = s.op === 'gelu' ? (s.param === undefined ? '' : `, { approximate: ${lit(s.param)} }`) : s.op === 'clip' || s.op === 'hardtanh' ? (s.param as unknown[]).map((b) => `, ${lit(b)}`).join('') : s.param === undefined ? '' : `, ${lit(s.param)}`;
    return `${s.op}(${litT(s.x)}${arg})  // with setKernels('simd') and setKernels('scalar')`;
  },
};

/** A shape broadcastable with `a` (usually), or any shape. */
function partner(r: Rng, a: number[]): number[] {
  if (r.chance(0.15)) return shapeOf(r, 3);
  const drop = r.int(0, a.length);
  return a.slice(drop).map((d) => (r.chance(0.3) ? 1 : d));
}

const BINARY = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const;
const binaryRef: Record<string, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  maximum: (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)),
  minimum: (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)),
};

const binary: Kind = {
  gen(r) {
    const op = r.pick(BINARY);
    const dt = dtypeOf(r);
    const as = shapeOf(r, 4, r.chance(0.1) ? 33 : 5);
    const bs = partner(r, as);
    const other: DT = r.chance(0.08) ? (dt === 'float32' ? 'float64' : 'float32') : dt;
    const num = r.weighted([[10, 'none'], [1, 'a'], [1, 'b'], [0.3, 'both']] as const);
    const a = num === 'a' || num === 'both' ? r.pick([2, -0.5, NaN, 0]) : tspec(r, as, dt);
    const b = num === 'b' || num === 'both' ? r.pick([2, -0.5, NaN, 0]) : tspec(r, bs, other);
    const ok = num !== 'both' && (num !== 'none' || (broadcastShape(as, bs) && other === dt));
    if (r.chance(0.03)) {
      // Near the limits: a broadcast result of 2³² (or 2³¹) elements from two small operands.
      const big = r.pick([2 ** 16, 2 ** 15 * 3]);
      return { kind: 'binary', op, a: tspec(r, [big, 1], dt, 'small'), b: tspec(r, [1, big], dt, 'small'), validity: 'err' };
    }
    return { kind: 'binary', op, a, b, validity: ok ? 'ok' : 'err' };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const a = typeof s.a === 'number' ? s.a : T(H, s.a, live);
    const b = typeof s.b === 'number' ? s.b : T(H, s.b, live);
    const f = (H as unknown as Record<string, (a: unknown, b: unknown) => Tensor>)[s.op]!;
    const outs = bothKernels(H, (k) => ctx.attempt(`${s.op} (${k})`, s.validity, () => keep(live, f(a, b))));
    if (!outs[0] || s.validity === 'err') return;
    const dt: DT = typeof s.a === 'number' ? s.b.dtype : s.a.dtype;
    const [as, bs] = [typeof s.a === 'number' ? [] : s.a.shape, typeof s.b === 'number' ? [] : s.b.shape];
    const [ad, bd] = [typeof s.a === 'number' ? rounded(dt, [s.a]) : dataOf(s.a), typeof s.b === 'number' ? rounded(dt, [s.b]) : dataOf(s.b)];
    const out = broadcastShape(as, bs)!;
    const want = rounded(dt, broadcastRef(ad, as, bd, bs, out, binaryRef[s.op]!));
    outs.forEach((y, i) =>
      ctx.check(s.op, () => {
        if (!y) return;
        expectShape(s.op, y.shape, out);
        if (y.dtype !== dt) fail(`${s.op}: dtype ${y.dtype}, expected ${dt}`);
        expectClose(`${s.op} (${i ? 'scalar' : 'simd'})`, y.toArray(), want, dt === 'float32' ? 1e-6 : 1e-15, 0);
      }),
    );
  },
  code(s) {
    const arg = (x: TSpec | number) => (typeof x === 'number' ? lit(x) : litT(x));
    return `${s.op}(${arg(s.a)}, ${arg(s.b)})`;
  },
};

// ---- reductions ------------------------------------------------------------------------------

const reduce: Kind = {
  gen(r) {
    const op = r.pick(['sum', 'mean', 'max', 'logsumexp'] as const);
    const x = tspec(r, shapeOf(r, 4, r.chance(0.1) ? 40 : 5), dtypeOf(r));
    const rank = x.shape.length;
    let axis: unknown;
    let validity: Validity = 'ok';
    const roll = r.next();
    if (roll < 0.3) axis = undefined;
    else if (roll < 0.5) {
      // Several axes at once (ReduceOptions: each at most once; [] reduces nothing).
      axis = axesSubset(r, rank);
      if (rank >= 1 && r.chance(0.15)) {
        const a = axis as number[];
        if (r.chance(0.5) && a.length) a.push(a[0]! < 0 ? a[0]! + rank : a[0]! - rank); // the same axis twice
        else a.push(r.pick([rank, -rank - 1, 0.5]));
        validity = 'err';
      }
    } else if (roll < 0.85) {
      axis = rank ? r.int(-rank, rank - 1) : r.pick([0, -1]);
      if (!rank) validity = 'err';
    } else {
      axis = r.pick([rank, -rank - 1, 1.5, NaN, '0', 2 ** 32, 2 ** 31, null, -(2 ** 32) - 7]);
      validity = axis === null ? 'any' : 'err';
    }
    const kd = boolOpt(r);
    validity = combine(validity, kd.validity);
    // max of nothing has no value: an error or −∞ are both defensible.
    const emptyAxis = size(x.shape) === 0 || (typeof axis === 'number' && x.shape[axis < 0 ? axis + rank : axis] === 0) || (Array.isArray(axis) && axis.some((a) => x.shape[a < 0 ? a + rank : a] === 0));
    if (op !== 'sum' && emptyAxis && validity === 'ok') validity = 'any';
    return { kind: 'reduce', op, x, axis, keepdims: kd.value, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const x = T(H, s.x, live);
    const o = litOpts({ axis: s.axis, keepdims: s.keepdims });
    const f = (H as unknown as Record<string, (x: Tensor, o: unknown) => Tensor>)[s.op]!;
    const outs = bothKernels(H, (k) => ctx.attempt(`${s.op} (${k})`, s.validity, () => keep(live, f(x, { axis: s.axis, keepdims: s.keepdims })), o));
    if (!outs[0] || s.validity === 'err' || (s.axis !== undefined && typeof s.axis !== 'number' && !Array.isArray(s.axis)) || (s.keepdims !== undefined && typeof s.keepdims !== 'boolean')) return;
    const rank = s.x.shape.length;
    const xs = dataOf(s.x);
    const ref = Array.isArray(s.axis) ? reduceAxesRef(xs, s.x.shape, normAxes(s.axis, rank), !!s.keepdims, s.op) : reduceRef(xs, s.x.shape, s.axis === undefined ? undefined : s.axis < 0 ? s.axis + rank : s.axis, !!s.keepdims, s.op);
    const mag = xs.reduce((m, v) => m + Math.abs(v), 0);
    outs.forEach((y, i) =>
      ctx.check(s.op, () => {
        if (!y) return;
        expectShape(`${s.op} ${o}`, y.shape, ref.shape);
        const got = y.toArray();
        const allFin = allFinite(xs);
        if (!allFin) return; // NaN/∞ orders are implementation-defined for sums
        const [rtol, atol] = s.x.dtype === 'float32' ? [1e-5, 1e-6 * (1 + mag)] : [1e-12, 1e-13 * (1 + mag)];
        expectClose(`${s.op} ${o} (${i ? 'scalar' : 'simd'})`, got, ref.values, rtol, atol);
      }),
    );
  },
  code(s) {
    return `${s.op}(${litT(s.x)}, ${litOpts({ axis: s.axis, keepdims: s.keepdims })})`;
  },
};

// ---- GEMM --------------------------------------------------------------------------------------

const gemm: Kind = {
  gen(r) {
    const big = r.chance(0.15);
    const d = () => (big ? r.int(0, 40) : dim(r, 6));
    const [m, k, n] = [d(), d(), d()];
    const dt = dtypeOf(r);
    const [ta, tb] = [r.chance(0.3), r.chance(0.3)];
    let as = ta ? [k, m] : [m, k];
    let bs = tb ? [n, k] : [k, n];
    let validity: Validity = 'ok';
    const roll = r.next();
    if (roll < 0.07) {
      // gemm is 2-D only (matmul takes these: see the matmulNd kind).
      as = r.pick([[m], [2, m, k], []]);
      validity = 'err';
    } else if (roll < 0.14) {
      bs = tb ? [n, k + 1] : [k + 1, n];
      validity = 'err';
    }
    if (r.chance(0.03)) {
      // Near the limits: a [2¹⁶, 2¹⁶] result (16 GiB in float32) from two small operands.
      const big = 2 ** 16;
      return { kind: 'gemm', a: tspec(r, [big, 1], dt, 'small'), b: tspec(r, [1, big], dt, 'small'), m: big, k: 1, n: big, ta: false, tb: false, alpha: 1, beta: 0, useMatmul: true, validity: 'err' };
    }
    const useMatmul = !ta && !tb && as.length === 2 && r.chance(0.4);
    const alpha = useMatmul ? 1 : r.weighted([[4, 1], [3, r.int(-3, 3) / 2], [0.3, NaN]] as const);
    let beta: unknown = 0;
    let c: TSpec | undefined;
    if (!useMatmul && r.chance(0.35)) {
      beta = r.pick([1, 0.5, -2]);
      const cs = r.chance(0.1) ? [m + 1, n] : r.chance(0.1) ? [n] : [m, n];
      if (cs[0] === m + 1 || cs.length === 1) validity = combine(validity, cs.length === 1 ? 'any' : 'err');
      c = tspec(r, cs, dt);
    } else if (!useMatmul && r.chance(0.05)) {
      beta = 1; // beta without c
      validity = 'err';
    }
    if (Number.isNaN(alpha)) validity = combine(validity, 'any'); // a NaN alpha: propagated, or refused as not finite
    return { kind: 'gemm', a: tspec(r, as, dt), b: tspec(r, bs, dt), m, k, n, ta, tb, alpha, beta, c, useMatmul, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const [a, b] = [T(H, s.a, live), T(H, s.b, live)];
    const c = s.c ? T(H, s.c, live) : undefined;
    const outs = bothKernels(H, (k) =>
      ctx.attempt(`${s.useMatmul ? 'matmul' : 'gemm'} (${k})`, s.validity, () =>
        keep(live, s.useMatmul ? H.matmul(a, b) : H.gemm(a, b, { transA: s.ta, transB: s.tb, alpha: s.alpha, beta: s.beta, c })),
      ),
    );
    if (!outs[0] || s.validity === 'err') return;
    const [ad, bd] = [dataOf(s.a), dataOf(s.b)];
    if (!allFinite(ad) || !allFinite(bd) || !Number.isFinite(s.alpha)) return;
    if (s.a.dtype === 'float32' && s.k * maxAbs(ad) * maxAbs(bd) > 1e38) return; // products overflow float32 (then α = 0 meets ±∞)
    const ab = matmulRef(ad, bd, s.m, s.k, s.n, s.ta, s.tb);
    const cd = c ? dataOf(s.c) : undefined;
    if (cd && !allFinite(cd)) return;
    const cs = s.c?.shape as number[] | undefined;
    const want = Float64Array.from(ab, (v, i) => s.alpha * v + (cd && s.beta ? s.beta * cd[cs!.length === 1 ? i % s.n : i]! : 0));
    const scale = s.k * maxAbs(ad) * maxAbs(bd) * Math.abs(s.alpha) + (cd ? maxAbs(cd) * 2 : 0);
    outs.forEach((y, i) =>
      ctx.check('gemm', () => {
        if (!y) return;
        expectShape('gemm', y.shape, [s.m, s.n]);
        expectClose(`gemm (${i ? 'scalar' : 'simd'})`, y.toArray(), want, 0, (s.a.dtype === 'float32' ? 2e-6 : 1e-14) * (1 + scale));
      }),
    );
  },
  code(s) {
    if (s.useMatmul) return `matmul(${litT(s.a)}, ${litT(s.b)})`;
    return `gemm(${litT(s.a)}, ${litT(s.b)}, ${litOpts({ transA: s.ta, transB: s.tb, alpha: s.alpha, beta: s.beta })
      .replace(/ }$/, s.c ? `, c: ${litT(s.c)} }` : ' }')
      .replace(/^\{\}$/, s.c ? `{ c: ${litT(s.c)} }` : '{}')})  // with both kernels`;
  },
};

// ---- NumPy matmul (batched, 1-D operands) -------------------------------------------------------

const matmulNd: Kind = {
  gen(r) {
    const dt = dtypeOf(r);
    const [m, k, n] = [dim(r, 4), dim(r, 4), dim(r, 4)];
    const batch = Array.from({ length: r.weighted([[3, 0], [3, 1], [2, 2]] as const) }, () => dim(r, 3));
    const ra = r.weighted([[2, 1], [2, 2], [3, 3]] as const);
    const rb = r.weighted([[2, 1], [2, 2], [3, 3]] as const);
    const bat = (rk: number) => (rk === 3 ? batch.map((d) => (r.chance(0.3) ? 1 : d)) : []);
    let as = ra === 1 ? [k] : [...bat(ra), m, k];
    let bs = rb === 1 ? [k] : [...bat(rb), k, n];
    if (r.chance(0.1)) as = r.pick([[], [k + 1], [...as.slice(0, -1), k + 1]]);
    if (r.chance(0.05)) bs = r.pick([[], [3, ...bs]]);
    if (r.chance(0.05) && as.length >= 3 && bs.length >= 3 && as[0]! !== 1) bs = [as[0]! + 1, ...bs.slice(1)]; // batch dims that do not broadcast
    // A contracted dim that differs, a 0-d operand or batch dims that do not broadcast: SHAPE_MISMATCH.
    const out = matmulShape(as, bs);
    return { kind: 'matmulNd', a: tspec(r, as, dt), b: tspec(r, bs, dt), validity: out ? 'ok' : 'err' };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const [a, b] = [T(H, s.a, live), T(H, s.b, live)];
    const outs = bothKernels(H, (k) => ctx.attempt(`matmul nd (${k})`, s.validity, () => keep(live, H.matmul(a, b)), `${lit(s.a.shape)} · ${lit(s.b.shape)}`));
    if (!outs[0] || s.validity === 'err') return;
    const [ad, bd] = [dataOf(s.a), dataOf(s.b)];
    if (!allFinite(ad) || !allFinite(bd)) return;
    const want = matmulNdRef(ad, s.a.shape, bd, s.b.shape);
    const kk = s.a.shape[s.a.shape.length - 1]!;
    if (s.a.dtype === 'float32' && kk * maxAbs(ad) * maxAbs(bd) > 1e38) return; // products overflow float32: ±∞ or NaN are right
    outs.forEach((y, i) =>
      ctx.check('matmul nd', () => {
        if (!y) return;
        expectShape(`matmul ${lit(s.a.shape)} · ${lit(s.b.shape)}`, y.shape, want.shape);
        expectClose(`matmul nd (${i ? 'scalar' : 'simd'})`, y.toArray(), want.values, 0, (s.a.dtype === 'float32' ? 2e-6 : 1e-14) * (1 + kk * maxAbs(ad) * maxAbs(bd)));
      }),
    );
  },
  code(s) {
    return `matmul(${litT(s.a)}, ${litT(s.b)})  // with both kernels`;
  },
};

/** NumPy matmul in float64 (the batch dims broadcast, 1-D operands promoted and dropped). */
function matmulNdRef(a: Float64Array, as: number[], b: Float64Array, bs: number[]): { shape: number[]; values: Float64Array } {
  const shape = matmulShape(as, bs)!;
  const [a2, b2] = [as.length === 1 ? [1, as[0]!] : as, bs.length === 1 ? [bs[0]!, 1] : bs];
  const [m, k, n] = [a2[a2.length - 2]!, a2[a2.length - 1]!, b2[b2.length - 1]!];
  const batch = broadcastShape(a2.slice(0, -2), b2.slice(0, -2))!;
  const nb = size(batch);
  const values = new Float64Array(nb * m * n);
  const off = (sh: number[], bi: number) => {
    const bsh = sh.slice(0, -2);
    const st = strides(bsh);
    let o = 0;
    for (let d = 0; d < bsh.length; d++) {
      const coord = Math.floor(bi / size(batch.slice(batch.length - bsh.length + d + 1))) % batch[batch.length - bsh.length + d]!;
      o += (bsh[d] === 1 ? 0 : coord) * st[d]!;
    }
    return o * size(sh.slice(-2));
  };
  for (let bi = 0; bi < nb; bi++) {
    const c = matmulRef(a.subarray(off(a2, bi)), b.subarray(off(b2, bi)), m, k, n);
    values.set(c, bi * m * n);
  }
  return { shape, values };
}

// ---- slice, pad, expand, where, gather (eager) ------------------------------------------------

/** out[i] = x[src(coords of i)] or `fill` where src says -1: the reference of every index op. */
function mapRef(x: ArrayLike<number>, xs: readonly number[], out: readonly number[], src: (c: number[]) => number[] | undefined, fill = 0): Float64Array {
  const os = strides(out);
  const is = strides(xs);
  return Float64Array.from({ length: size(out) }, (_, i) => {
    const c = out.map((d, a) => Math.floor(i / os[a]!) % d);
    const from = src(c);
    return from ? x[from.reduce((k, v, a) => k + v * is[a]!, 0)]! : fill;
  });
}

const INDEX_OPS = ['slice', 'pad', 'expand', 'where', 'gather'] as const;

const indexOps: Kind = {
  gen(r) {
    const op = r.pick(INDEX_OPS);
    const dt = dtypeOf(r);
    const sh = shapeOf(r, 4);
    const rank = sh.length;
    const x = tspec(r, sh, dt);
    const bad = r.chance(0.2);
    if (op === 'slice') {
      if (!rank) return { kind: 'indexOps', op, x, args: [[], []], validity: 'ok' };
      const args: unknown[] = sliceArgs(r, sh);
      let validity: Validity = 'ok';
      if (bad) {
        const [st, en] = args as number[][];
        // A zero step, starts/ends of different lengths, an axis twice or out of range, a fraction, a non-array.
        const how = st!.length ? r.pick(['step0', 'len', 'dupAxis', 'axisRange', 'frac', 'notArray'] as const) : r.pick(['len', 'notArray'] as const);
        if (how === 'step0') args[3] = st!.map(() => 0);
        if (how === 'len') args[1] = [...en!, 1];
        if (how === 'dupAxis') (args[0] = [...st!, 0]), (args[1] = [...en!, 1]), (args[2] = [...((args[2] as number[]) ?? st!.map((_, i) => i)), ((args[2] as number[]) ?? [0])[0]!]), (args[3] = args[3] && [...(args[3] as number[]), 1]);
        if (how === 'axisRange') (args[2] = st!.map((_, i) => (i === 0 ? rank : i))), (args[3] = undefined);
        if (how === 'frac') args[0] = st!.map((v, i) => (i === 0 ? (Math.abs(v) < 2 ** 40 ? v + 0.5 : 0.5) : v)); // 2⁵³ + 0.5 is 2⁵³
        if (how === 'notArray') args[0] = 3;
        validity = 'err';
      }
      return { kind: 'indexOps', op, x, args, validity };
    }
    if (op === 'pad') {
      const p: unknown[] = padArgs(r, sh);
      let validity: Validity = 'ok';
      if (bad) {
        const how = r.pick(['len', 'frac', 'nan'] as const);
        if (how === 'len') p.push(1);
        else if (p.length) p[0] = how === 'frac' ? 0.5 : NaN;
        else p.push(1);
        validity = 'err';
      }
      // Cropping more than an axis holds: not documented either way (an error or nothing left).
      if (validity === 'ok' && r.chance(0.1) && rank) (p[0] = -(sh[0]! + 1)), (validity = 'any');
      return { kind: 'indexOps', op, x, pads: p, value: r.pick([undefined, 0, 2.5, NaN]), validity };
    }
    if (op === 'expand') {
      let t: unknown[] = expandTarget(r, sh);
      let validity: Validity = 'ok';
      if (bad) {
        const how = r.pick(['nobroadcast', 'baddim'] as const);
        const j = sh.findIndex((d) => d >= 2);
        if (how === 'nobroadcast' && j >= 0) (t = [...sh]), (t[j] = sh[j]! + 1), (validity = 'err');
        else if (how === 'baddim') (t = [...t, r.pick([-1, 1.5, NaN])]), (validity = 'err');
      }
      return { kind: 'indexOps', op, x, to: t, validity };
    }
    if (op === 'where') {
      const ms = partner(r, sh);
      const ys = partner(r, sh);
      const y = r.chance(0.2) ? r.pick([0, -1.5, NaN]) : tspec(r, ys, dt);
      const m = { shape: ms, data: Array.from({ length: size(ms) }, () => r.pick([0, 1, true, false, 2])) };
      const yShape = typeof y === 'number' ? [] : y.shape;
      const ok = broadcastShape(sh, ms) && broadcastShape(broadcastShape(sh, ms)!, yShape);
      let validity: Validity = ok ? 'ok' : 'err';
      const form = r.pick(['object', 'tensor'] as const);
      if (bad && size(ms) > 0) (m.data = m.data.slice(1)), (validity = 'err'); // mask data shorter than its shape
      return { kind: 'indexOps', op, x, mask: m, form, y, left: r.chance(0.5), validity };
    }
    // gather: indices of any shape (IndexTensor from indices()), a flat Int32Array or number array.
    if (!rank) return { kind: 'indexOps', op, x, idx: [0], idxShape: [1], form: 'array', axis: 0, validity: 'err' };
    const axis = r.int(-rank, rank - 1);
    const d = sh[(axis + rank) % rank]!;
    const idxShape = r.weighted([[3, [r.int(0, 4)]], [1, [r.int(1, 2), r.int(1, 3)]], [0.5, []]] as const);
    const idx = Array.from({ length: size(idxShape) }, () => (d ? r.int(-d, d - 1) : 0));
    let validity: Validity = d === 0 && idx.length ? 'err' : 'ok';
    if (bad && idx.length) (idx[0] = r.pick([d, -d - 1, 2 ** 31 - 1, -(2 ** 40)])), (validity = 'err');
    let ax: unknown = axis;
    if (r.chance(0.05)) (ax = r.pick([rank, -rank - 1, 0.5])), (validity = 'err');
    const form = idxShape.length === 1 ? r.pick(['array', 'int32', 'indices'] as const) : 'indices';
    if (form === 'int32' && idx.length && Math.abs(idx[0]!) > 2 ** 31 - 1) idx[0] = d; // an Int32Array would wrap it
    return { kind: 'indexOps', op, x, idx, idxShape, form, axis: ax, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const x = T(H, s.x, live);
    const xs = dataOf(s.x);
    const sh = s.x.shape as number[];
    const rank = sh.length;
    const X = H as unknown as Record<string, (...a: unknown[]) => Tensor>;
    let want: { shape: number[]; values: Float64Array } | undefined;
    let call: () => Tensor;
    if (s.op === 'slice') {
      call = () => X.slice!(x, ...s.args);
      if (s.validity !== 'err') {
        const [st, en, ax, sp] = s.args as [number[], number[], number[] | undefined, number[] | undefined];
        const out = sliceShape(sh, [st, en, ax, sp]);
        const first = sh.map(() => 0);
        const step = sh.map(() => 1);
        (ax ?? st.map((_, i) => i)).forEach((a0, i) => {
          const a = a0 < 0 ? a0 + rank : a0;
          first[a] = sliceAxis(sh[a]!, st[i]!, en[i]!, sp?.[i] ?? 1).first;
          step[a] = sp?.[i] ?? 1;
        });
        want = { shape: out, values: mapRef(xs, sh, out, (c) => c.map((v, a) => first[a]! + v * step[a]!)) };
      }
    } else if (s.op === 'pad') {
      call = () => (s.value === undefined ? X.pad!(x, s.pads) : X.pad!(x, s.pads, s.value));
      if (s.validity === 'ok') {
        const p = s.pads as number[];
        const out = sh.map((d, i) => d + p[i]! + p[i + rank]!);
        want = { shape: out, values: mapRef(xs, sh, out, (c) => { const from = c.map((v, a) => v - p[a]!); return from.every((v, a) => v >= 0 && v < sh[a]!) ? from : undefined; }, rounded(s.x.dtype, [s.value ?? 0])[0]) };
      }
    } else if (s.op === 'expand') {
      call = () => X.expand!(x, s.to);
      if (s.validity === 'ok') {
        const out = broadcastShape(sh, s.to)!;
        want = { shape: out, values: mapRef(xs, sh, out, (c) => sh.map((d, a) => (d === 1 ? 0 : c[c.length - rank + a]!))) };
      }
    } else if (s.op === 'where') {
      const y = typeof s.y === 'number' ? s.y : T(H, s.y, live);
      const maskArg = s.form === 'tensor' && s.validity !== 'err' ? keep(live, H.tensor(s.mask.data.map((v: unknown) => (v ? 1 : 0)), s.mask.shape, s.x.dtype)) : s.mask;
      call = () => (s.left ? X.where!(maskArg, x, y) : X.where!(maskArg, y, x));
      if (s.validity === 'ok') {
        const ys = typeof s.y === 'number' ? [] : (s.y.shape as number[]);
        const yd = typeof s.y === 'number' ? rounded(s.x.dtype, [s.y]) : dataOf(s.y);
        const out = broadcastShape(broadcastShape(sh, s.mask.shape)!, ys)!;
        const m = broadcastRef(Float64Array.from(s.mask.data, (v: unknown) => (v ? 1 : 0)), s.mask.shape, new Float64Array(1), [], out, (a) => a);
        const xv = broadcastRef(xs, sh, new Float64Array(1), [], out, (a) => a);
        const yv = broadcastRef(yd, ys, new Float64Array(1), [], out, (a) => a);
        want = { shape: out, values: Float64Array.from(m, (mi, i) => (mi ? (s.left ? xv : yv)[i]! : (s.left ? yv : xv)[i]!)) };
      }
    } else {
      const ix = s.form === 'array' ? s.idx : s.form === 'int32' ? Int32Array.from(s.idx) : (() => { try { return H.indices(s.idx, s.idxShape); } catch { return s.idx; } })();
      call = () => X.gather!(x, ix, s.axis);
      if (s.validity === 'ok') {
        const a = (s.axis as number) < 0 ? s.axis + rank : s.axis;
        const is = s.idxShape as number[];
        const out = [...sh.slice(0, a), ...is, ...sh.slice(a + 1)];
        const ist = strides(is);
        want = { shape: out, values: mapRef(xs, sh, out, (c) => { const j = c.slice(a, a + is.length).reduce((k, v, q) => k + v * ist[q]!, 0); const v = s.idx[j] as number; return [...c.slice(0, a), v < 0 ? v + sh[a]! : v, ...c.slice(a + is.length)]; }) };
      }
    }
    const y = ctx.attempt(s.op, s.validity, () => keep(live, call()), `of ${lit(sh)}`);
    if (!y || !want) return;
    ctx.check(s.op, () => {
      expectShape(s.op, y.shape, want!.shape);
      expectClose(s.op, y.toArray(), rounded(s.x.dtype, want!.values), 0, 0);
    });
  },
  code(s) {
    if (s.op === 'slice') return `slice(${litT(s.x)}, ${(s.args as unknown[]).filter((v, j) => v !== undefined || j < 2).map(lit).join(', ')})`;
    if (s.op === 'pad') return `pad(${litT(s.x)}, ${lit(s.pads)}${s.value === undefined ? '' : `, ${lit(s.value)}`})`;
    if (s.op === 'expand') return `expand(${litT(s.x)}, ${lit(s.to)})`;
    if (s.op === 'where') {
      const m = s.form === 'tensor' ? `tensor(${lit(s.mask.data.map((v: unknown) => (v ? 1 : 0)))}, ${lit(s.mask.shape)}, '${s.x.dtype}')` : lit(s.mask);
      const y = typeof s.y === 'number' ? lit(s.y) : litT(s.y);
      return `where(${m}, ${s.left ? `${litT(s.x)}, ${y}` : `${y}, ${litT(s.x)}`})`;
    }
    const ix = s.form === 'array' ? lit(s.idx) : s.form === 'int32' ? `Int32Array.from(${lit(s.idx)})` : `indices(${lit(s.idx)}, ${lit(s.idxShape)})`;
    return `gather(${litT(s.x)}, ${ix}, ${lit(s.axis)})`;
  },
};

// ---- layout ops --------------------------------------------------------------------------------

const layout: Kind = {
  gen(r) {
    const op = r.pick(['transpose', 'permute', 'reshape', 'concat', 'astype'] as const);
    const dt = dtypeOf(r);
    if (op === 'transpose') {
      const shape = r.chance(0.85) ? [dim(r), dim(r)] : shapeOf(r, 3);
      return { kind: 'layout', op, x: tspec(r, shape, dt), validity: shape.length === 2 ? 'ok' : 'err' };
    }
    if (op === 'permute') {
      const shape = shapeOf(r, 4);
      const perm: unknown[] = shape.map((_, i) => i).sort(() => r.next() - 0.5);
      let validity: Validity = 'ok';
      if (r.chance(0.25)) {
        const bad = r.pick(['dup', 'range', 'short', 'neg', 'frac'] as const);
        if (bad === 'dup' && perm.length >= 2) perm[0] = perm[1];
        else if (bad === 'range') perm.push(perm.length + 3);
        else if (bad === 'short') perm.pop();
        else if (bad === 'neg' && perm.length) perm[0] = -1;
        else if (bad === 'frac' && perm.length) perm[0] = 0.5;
      }
      const isPerm = perm.length === shape.length && shape.every((_, i) => perm.includes(i));
      const negOk = perm.length === shape.length && shape.every((_, i) => perm.some((p) => p === i || p === i - shape.length));
      validity = isPerm ? 'ok' : negOk ? 'any' : 'err';
      return { kind: 'layout', op, x: tspec(r, shape, dt), perm, validity };
    }
    if (op === 'reshape') {
      const shape = shapeOf(r, 4);
      const n = size(shape);
      const to: unknown[] = factorize(r, n);
      let validity: Validity = 'ok';
      if (to.length && r.chance(0.3) && n > 0) to[r.int(0, to.length - 1)] = -1;
      if (r.chance(0.2)) {
        const bad = r.pick(['product', 'two-holes', 'neg', 'frac', 'nan', 'huge'] as const);
        if (bad === 'product') to.push(n === 0 ? 1 : 2);
        if (bad === 'two-holes') to.push(-1, -1);
        if (bad === 'neg') to.push(-2);
        if (bad === 'frac') to.push(0.5);
        if (bad === 'nan') to.push(NaN);
        if (bad === 'huge') to.push(2 ** 32, 0);
        validity = bad === 'product' && n === 0 ? 'ok' : 'err';
        if (bad === 'product' && n === 0) to.pop();
        if (bad === 'huge' && n === 0) validity = 'any';
        // A pushed dimension next to a −1 is absorbed by it when it divides what is left.
        if (bad === 'product' && n > 0 && to.filter((d) => d === -1).length === 1) {
          const known = (to as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
          validity = n % known === 0 ? 'ok' : 'err';
        }
      }
      if (n === 0 && to.includes(-1)) validity = 'err'; // −1 is ambiguous for 0 elements
      return { kind: 'layout', op, x: tspec(r, shape, dt), to, validity };
    }
    if (op === 'concat') {
      const shape = shapeOf(r, 3);
      const rank = shape.length;
      const count = r.weighted([[1, 0], [3, 1], [6, r.int(2, 4)]] as const);
      const ax = rank ? r.int(-rank, rank - 1) : 0;
      const axN = ax < 0 ? ax + rank : ax;
      let validity: Validity = count === 0 || rank === 0 ? 'err' : 'ok';
      const xs = Array.from({ length: count }, () => {
        const s = [...shape];
        if (rank) s[axN] = dim(r);
        return s;
      });
      if (count >= 2 && rank >= 2 && r.chance(0.2)) {
        xs[1]![(axN + 1) % rank] = xs[1]![(axN + 1) % rank]! + 1;
        validity = 'err';
      }
      let axis: unknown = ax;
      if (r.chance(0.1)) {
        axis = r.pick([rank, -rank - 1, 0.5, NaN, '0']);
        validity = 'err';
      }
      const dts = xs.map(() => dt);
      if (count >= 2 && r.chance(0.05)) {
        dts[1] = dt === 'float32' ? 'float64' : 'float32';
        validity = 'err';
      }
      return { kind: 'layout', op, xs: xs.map((s, i) => tspec(r, s, dts[i]!)), axis, validity };
    }
    const to = r.chance(0.9) ? r.pick(['float32', 'float64']) : r.pick(['int8', 'float', undefined, 7]);
    return { kind: 'layout', op, x: tspec(r, shapeOf(r, 3), dt), to, validity: to === 'float32' || to === 'float64' ? 'ok' : 'err' };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    if (s.op === 'concat') {
      const xs = (s.xs as TSpec[]).map((x) => T(H, x, live));
      const y = ctx.attempt('concat', s.validity, () => keep(live, H.concat(xs, s.axis)), `axis ${lit(s.axis)}`);
      if (!y || s.validity === 'err') return;
      ctx.check('concat', () => {
        const rank = s.xs[0].shape.length;
        const ax = s.axis < 0 ? s.axis + rank : s.axis;
        const shapes = (s.xs as TSpec[]).map((x) => x.shape);
        const want = [...shapes[0]!];
        want[ax] = shapes.reduce((t, sh) => t + sh[ax]!, 0);
        expectShape('concat', y.shape, want);
        const outer = size(want.slice(0, ax));
        const ref: number[] = [];
        for (let o = 0; o < outer; o++)
          (s.xs as TSpec[]).forEach((x) => {
            const chunk = size(x.shape.slice(ax));
            ref.push(...dataOf(x).slice(o * chunk, (o + 1) * chunk));
          });
        expectClose('concat', y.toArray(), ref, 0, 0);
      });
      return;
    }
    const x = T(H, s.x, live);
    const xs = dataOf(s.x);
    const sh = s.x.shape as number[];
    if (s.op === 'transpose') {
      const y = ctx.attempt('transpose', s.validity, () => keep(live, H.transpose(x)));
      if (!y || s.validity === 'err') return;
      ctx.check('transpose', () => {
        const [m, n] = sh as [number, number];
        expectShape('transpose', y.shape, [n, m]);
        expectClose('transpose', y.toArray(), Float64Array.from({ length: m * n }, (_, i) => xs[(i % m) * n + Math.floor(i / m)]!), 0, 0);
      });
    } else if (s.op === 'permute') {
      const y = ctx.attempt('permute', s.validity, () => keep(live, H.permute(x, s.perm)), `perm ${lit(s.perm)}`);
      if (!y || s.validity === 'err') return;
      ctx.check('permute', () => {
        const perm = (s.perm as number[]).map((p) => (p < 0 ? p + sh.length : p));
        const out = perm.map((p) => sh[p]!);
        expectShape('permute', y.shape, out);
        const [is, os] = [strides(sh), strides(out)];
        const want = Float64Array.from({ length: size(out) }, (_, i) => xs[perm.reduce((k, p, a) => k + (Math.floor(i / os[a]!) % out[a]!) * is[p]!, 0)]!);
        expectClose('permute', y.toArray(), want, 0, 0);
      });
    } else if (s.op === 'reshape') {
      const y = ctx.attempt('reshape', s.validity, () => keep(live, H.reshape(x, s.to)), `to ${lit(s.to)}`);
      if (!y || s.validity === 'err') return;
      ctx.check('reshape', () => {
        const known = (s.to as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
        expectShape('reshape', y.shape, (s.to as number[]).map((d) => (d === -1 ? size(sh) / known : d)));
        expectClose('reshape', y.toArray(), xs, 0, 0);
      });
    } else {
      const y = ctx.attempt('astype', s.validity, () => keep(live, H.astype(x, s.to)), `dtype ${lit(s.to)}`);
      if (!y || s.validity === 'err') return;
      ctx.check('astype', () => {
        expectShape('astype', y.shape, sh);
        if (y.dtype !== s.to) fail(`astype: dtype ${y.dtype}, expected ${s.to}`);
        expectClose('astype', y.toArray(), rounded(s.to, xs), 0, 0);
      });
    }
  },
  code(s) {
    if (s.op === 'concat') return `concat([${(s.xs as TSpec[]).map(litT).join(', ')}], ${lit(s.axis)})`;
    const extra = s.op === 'permute' ? `, ${lit(s.perm)}` : s.op === 'reshape' ? `, ${lit(s.to)}` : s.op === 'astype' ? `, ${lit(s.to)}` : '';
    return `${s.op}(${litT(s.x)}${extra})`;
  },
};

/** NumPy matmul's result shape (1-D operands promoted and dropped), or undefined where it does not fit. */
export function matmulShape(a: readonly number[], b: readonly number[]): number[] | undefined {
  if (!a.length || !b.length) return undefined;
  const [a2, b2] = [a.length === 1 ? [1, a[0]!] : [...a], b.length === 1 ? [b[0]!, 1] : [...b]];
  const [m, k] = a2.slice(-2) as [number, number];
  const [k2, n] = b2.slice(-2) as [number, number];
  if (k !== k2) return undefined;
  const batch = broadcastShape(a2.slice(0, -2), b2.slice(0, -2));
  if (!batch) return undefined;
  return [...batch, ...(a.length === 1 ? [] : [m]), ...(b.length === 1 ? [] : [n])];
}

/** A random set of distinct axes of a rank (possibly empty), as an array in random order, some negative. */
function axesSubset(r: Rng, rank: number): number[] {
  const picked = Array.from({ length: rank }, (_, i) => i).filter(() => r.chance(0.5));
  return picked.sort(() => r.next() - 0.5).map((a) => (r.chance(0.3) ? a - rank : a));
}

/** Normalized reduced axes: all for undefined. */
function normAxes(axis: number | number[] | undefined, rank: number): number[] {
  if (axis === undefined) return Array.from({ length: rank }, (_, i) => i);
  return (Array.isArray(axis) ? axis : [axis]).map((a) => (a < 0 ? a + rank : a));
}

function reducedShape(sh: readonly number[], axes: number[], keep: boolean): number[] {
  return keep ? sh.map((d, i) => (axes.includes(i) ? 1 : d)) : sh.filter((_, i) => !axes.includes(i));
}

/** ONNX Slice on one axis of size d: the first index and the count (ops.ts slice's TSDoc). */
export function sliceAxis(d: number, start: number, end: number, step: number): { first: number; count: number } {
  let [s, e] = [start < 0 ? start + d : start, end < 0 ? end + d : end];
  if (step > 0) [s, e] = [Math.min(Math.max(s, 0), d), Math.min(Math.max(e, 0), d)];
  else [s, e] = [Math.min(Math.max(s, 0), d - 1), Math.min(Math.max(e, -1), d - 1)];
  return { first: s, count: Math.max(0, Math.ceil((e - s) / step)) };
}

/** Slice arguments valid for a shape: [starts, ends, axes?, steps?]. */
function sliceArgs(r: Rng, sh: readonly number[]): [number[], number[], number[] | undefined, number[] | undefined] {
  const rank = sh.length;
  const axes = r.chance(0.3) ? Array.from({ length: r.int(1, rank) }, (_, i) => i) : axesSubset(r, rank);
  const explicitAxes = !(axes.every((a, i) => a === i) && r.chance(0.5));
  const bound = (d: number) => r.weighted([[6, r.int(-d - 1, d + 1)], [1, r.pick([2 ** 40, -(2 ** 40), 2 ** 53])]] as const);
  const starts = axes.map((a) => bound(sh[a < 0 ? a + rank : a]!));
  const ends = axes.map((a) => bound(sh[a < 0 ? a + rank : a]!));
  const steps = r.chance(0.5) ? axes.map(() => r.pick([1, 2, -1, -2, 3])) : undefined;
  return [starts, ends, explicitAxes || steps ? axes : undefined, steps];
}

function sliceShape(sh: readonly number[], [starts, ends, axes, steps]: [number[], number[], number[] | undefined, number[] | undefined]): number[] {
  const out = [...sh];
  (axes ?? starts.map((_, i) => i)).forEach((a0, i) => {
    const a = a0 < 0 ? a0 + sh.length : a0;
    out[a] = sliceAxis(sh[a]!, starts[i]!, ends[i]!, steps?.[i] ?? 1).count;
  });
  return out;
}

/** Pads [b…, e…] for a shape (negatives crop, never below 0 elements). */
function padArgs(r: Rng, sh: readonly number[]): number[] {
  const b = sh.map((d) => r.int(d >= 1 ? -1 : 0, 2));
  const e = sh.map((d, i) => r.int(Math.max(-1, -(d + b[i]!)), 2));
  return [...b, ...e];
}

/** A shape that expand() broadcasts `sh` to (both ways, as ONNX Expand). */
function expandTarget(r: Rng, sh: readonly number[]): number[] {
  const t = sh.map((d) => (d === 1 ? r.pick([1, 2, 3]) : r.chance(0.3) ? 1 : d));
  return r.chance(0.3) ? [r.int(1, 2), ...t] : r.chance(0.2) ? t.slice(1) : t;
}

/** A traced index op on shape `sh` (rank ≥ 1): slice, pad, expand, gather or where; valid by construction. */
function genIndexOp(r: Rng, sh: number[], dt: DT): { op: TOp; shape: number[] } {
  const rank = sh.length;
  const which = r.pick(['slice', 'pad', 'expand', 'gather', 'where'] as const);
  if (which === 'slice') {
    const a = sliceArgs(r, sh);
    return { op: { slice: a }, shape: sliceShape(sh, a) };
  }
  if (which === 'pad') {
    const p = padArgs(r, sh);
    return { op: { pad: p, value: r.pick([undefined, 0.5]) }, shape: sh.map((d, i) => d + p[i]! + p[i + rank]!) };
  }
  if (which === 'expand') {
    const t = expandTarget(r, sh);
    return { op: { expand: t }, shape: broadcastShape(sh, t)! };
  }
  if (which === 'gather') {
    const axis = r.int(-rank, rank - 1);
    const d = sh[(axis + rank) % rank]!;
    const idx = d === 0 ? [] : Array.from({ length: r.int(0, 4) }, () => r.int(-d, d - 1));
    return { op: { gather: idx, axis }, shape: sh.map((x, i) => (i === (axis + rank) % rank ? idx.length : x)) };
  }
  const ms = partner(r, sh);
  const mshape = broadcastShape(sh, ms) ? ms : sh;
  const mask = { shape: mshape, data: Array.from({ length: size(mshape) }, () => (r.chance(0.5) ? 1 : 0)) };
  const ys = partner(r, sh);
  const y = r.chance(0.3) ? r.pick([0, -1.5]) : tspec(r, broadcastShape(broadcastShape(sh, mshape)!, ys) ? ys : sh, dt, 'small');
  const out = broadcastShape(broadcastShape(sh, mshape)!, typeof y === 'number' ? [] : y.shape)!;
  return { op: { where: mask, y, left: r.chance(0.5) }, shape: out };
}

/** A random shape with `n` elements. */
function factorize(r: Rng, n: number): number[] {
  if (n === 0) return r.pick([[0], [0, 3], [2, 0]]);
  const out: number[] = [];
  let rest = n;
  for (let p = 2; p <= rest; p++) while (rest % p === 0 && r.chance(0.7)) (out.push(p), (rest /= p));
  if (rest > 1) out.push(rest);
  if (r.chance(0.3)) out.splice(r.int(0, out.length), 0, 1);
  return out.length || r.chance(0.5) ? out : [1];
}

// ---- softmax, layer norm, losses --------------------------------------------------------------

const rowwise: Kind = {
  gen(r) {
    const op = r.pick(['softmax', 'logSoftmax', 'layerNorm', 'mseLoss', 'crossEntropy', 'bceWithLogits'] as const);
    const dt = dtypeOf(r);
    if (op === 'softmax' || op === 'logSoftmax' || op === 'layerNorm') {
      const shape = shapeOf(r, 3, r.chance(0.1) ? 40 : 5);
      let eps: Opt = { value: undefined, validity: 'ok' };
      if (op === 'layerNorm') eps = r.chance(0.15) ? { value: r.pick([NaN, '1e-5', -1, Infinity]), validity: 'err' } : { value: r.pick([undefined, 1e-5, 1e-3, 0.1]), validity: 'ok' };
      // softmax / logSoftmax on any axis (default −1); an axis outside [−rank, rank) is INVALID_ARGUMENT.
      let axis: Opt = { value: undefined, validity: 'ok' };
      if (op !== 'layerNorm' && shape.length && r.chance(0.5)) axis = r.chance(0.1) ? { value: r.pick([shape.length, -shape.length - 1, 0.5, '0']), validity: 'err' } : { value: r.int(-shape.length, shape.length - 1), validity: 'ok' };
      const validity = combine(eps.validity, axis.validity, shape.length === 0 || size(shape) === 0 ? 'any' : 'ok');
      return { kind: 'rowwise', op, x: tspec(r, shape, dt, r.chance(0.1) ? 'special' : 'rand'), eps: eps.value, axis: axis.value, validity };
    }
    const N = dim(r);
    const C = r.int(1, 5);
    if (op === 'crossEntropy') {
      const labels = Array.from({ length: N }, (_, i) => (i * 7 + 3) % C);
      let validity: Validity = N === 0 ? 'any' : 'ok';
      if (N && r.chance(0.3)) {
        labels[r.int(0, N - 1)] = r.pick([C, -1, 0.5, NaN, 1e9, C + 0.25]);
        validity = 'err';
      }
      const ys = r.chance(0.1) ? [N, C] : [N];
      if (ys.length === 2) validity = 'err';
      return { kind: 'rowwise', op, x: tspec(r, [N, C], dt), labels, ys, validity };
    }
    const ps = [N, C];
    const ts = r.chance(0.15) ? [N, C + 1] : ps;
    return { kind: 'rowwise', op, x: tspec(r, ps, dt), y: tspec(r, ts, dt, op === 'bceWithLogits' ? 'unit' : 'rand'), validity: ts === ps ? (N === 0 ? 'any' : 'ok') : 'err' };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const x = T(H, s.x, live);
    const xs = dataOf(s.x);
    const sh = s.x.shape as number[];
    const C = sh.length ? sh[sh.length - 1]! : 1;
    const rows = C ? xs.length / C : 0;
    const f32 = s.x.dtype === 'float32';
    if (s.op === 'softmax' || s.op === 'logSoftmax' || s.op === 'layerNorm') {
      const y = ctx.attempt(s.op, s.validity, () =>
        keep(live, s.op === 'layerNorm' ? H.layerNorm(x, s.eps === undefined ? {} : { eps: s.eps }) : (H as unknown as Record<string, (x: Tensor, a?: number) => Tensor>)[s.op]!(x, s.axis)),
      );
      if (!y || s.validity === 'err') return;
      ctx.check(s.op, () => {
        expectShape(s.op, y.shape, sh);
        const got = y.toArray();
        if (s.axis !== undefined && s.axis !== -1 && s.axis !== sh.length - 1) {
          // Another axis: the reference moves it last (softmax of each fibre along it).
          const a = s.axis < 0 ? s.axis + sh.length : s.axis;
          const [len, inner] = [sh[a]!, size(sh.slice(a + 1))];
          const want = new Float64Array(xs.length);
          for (let o = 0; o < size(sh.slice(0, a)); o++)
            for (let i = 0; i < inner; i++) {
              const at = (k: number) => (o * len + k) * inner + i;
              const fibre = Array.from({ length: len }, (_, k) => xs[at(k)]!);
              const m = Math.max(...fibre);
              const lse = m + Math.log(fibre.reduce((t, b) => t + Math.exp(b - m), 0));
              fibre.forEach((b, k) => (want[at(k)] = s.op === 'softmax' ? Math.exp(b - lse) : b - lse));
            }
          if (!allFinite(xs)) return;
          expectClose(`${s.op} axis ${s.axis}`, got, want, f32 ? 1e-4 : 1e-9, f32 ? 1e-4 : 1e-10);
          return;
        }
        const want = new Float64Array(xs.length);
        const eps = s.eps ?? 1e-5;
        for (let i = 0; i < rows; i++) {
          const row = xs.slice(i * C, (i + 1) * C);
          if (s.op === 'layerNorm') {
            const mu = row.reduce((a, b) => a + b, 0) / C;
            const v = row.reduce((a, b) => a + (b - mu) ** 2, 0) / C;
            // float32 moments overflow where float64 ones do not (PyTorch's CPU kernel also keeps
            // them in float32): such a row has no float64 reference.
            const F32_MAX = 3.4028234663852886e38;
            if (f32 && row.some((b) => (b - mu) ** 2 > F32_MAX || Math.abs(b) > F32_MAX / C)) {
              row.forEach((_, j) => (want[i * C + j] = got[i * C + j]!));
              continue;
            }
            row.forEach((b, j) => (want[i * C + j] = (b - mu) / Math.sqrt(v + eps)));
          } else {
            const m = Math.max(...row);
            const lse = m + Math.log(row.reduce((a, b) => a + Math.exp(b - m), 0));
            row.forEach((b, j) => (want[i * C + j] = s.op === 'softmax' ? Math.exp(b - lse) : b - lse));
          }
        }
        if (!allFinite(xs)) return;
        expectClose(s.op, got, want, f32 ? 1e-4 : 1e-9, f32 ? 1e-4 : 1e-10);
      });
      return;
    }
    if (s.op === 'crossEntropy') {
      const y = T(H, { shape: s.ys, dtype: s.x.dtype, fill: 'zero', seed: 0 }, live);
      const labels = H.tensor(s.labels, [s.labels.length], s.x.dtype);
      live.push(labels);
      const l = ctx.attempt('crossEntropy', s.validity, () => keep(live, H.crossEntropy(x, s.ys.length === 1 ? labels : y)), `labels ${lit(s.labels)}`);
      if (!l || s.validity === 'err') return;
      ctx.check('crossEntropy', () => {
        expectShape('crossEntropy', l.shape, []);
        let want = 0;
        for (let i = 0; i < rows; i++) {
          const row = xs.slice(i * C, (i + 1) * C);
          const m = Math.max(...row);
          want += m + Math.log(row.reduce((a, b) => a + Math.exp(b - m), 0)) - row[s.labels[i]]!;
        }
        expectClose('crossEntropy', l.toArray(), rounded(s.x.dtype, [want / rows]), f32 ? 1e-5 : 1e-11, 1e-6);
      });
      return;
    }
    const t = T(H, s.y, live);
    const f = (H as unknown as Record<string, (a: Tensor, b: Tensor) => Tensor>)[s.op]!;
    const l = ctx.attempt(s.op, s.validity, () => keep(live, f(x, t)));
    if (!l || s.validity === 'err') return;
    ctx.check(s.op, () => {
      expectShape(s.op, l.shape, []);
      const ys = dataOf(s.y);
      const terms = Array.from(xs, (p, i) => (s.op === 'mseLoss' ? (p - ys[i]!) ** 2 : Math.max(p, 0) - p * ys[i]! + Math.log1p(Math.exp(-Math.abs(p)))));
      if (!allFinite(xs) || !allFinite(ys) || terms.some((t) => Math.abs(t) > 1e30)) return; // overflow order is the kernel's
      expectClose(s.op, l.toArray(), rounded(s.x.dtype, [terms.reduce((a, b) => a + b, 0) / terms.length]), f32 ? 1e-5 : 1e-11, 1e-6);
    });
  },
  code(s) {
    if (s.op === 'crossEntropy') return `crossEntropy(${litT(s.x)}, ${s.ys.length === 1 ? `tensor(${lit(s.labels)}, [${s.labels.length}], '${s.x.dtype}')` : `zeros(${lit(s.ys)}, '${s.x.dtype}')`})`;
    if (s.op === 'mseLoss' || s.op === 'bceWithLogits') return `${s.op}(${litT(s.x)}, ${litT(s.y)})`;
    return `${s.op}(${litT(s.x)}${s.op === 'layerNorm' && s.eps !== undefined ? `, { eps: ${lit(s.eps)} }` : ''}${s.axis !== undefined ? `, ${lit(s.axis)}` : ''})`;
  },
};

// ---- conv2d ------------------------------------------------------------------------------------

const conv: Kind = {
  gen(r) {
    const dt = dtypeOf(r);
    // Groups split C and O (w is [O, C/groups, KH, KW]); groups = C is depthwise.
    const groups = r.weighted([[5, 1], [1, 2], [1, 3]] as const);
    const [N, C, H, W, O] = [dim(r, 3), groups * r.int(1, 2), r.int(1, 7), r.int(1, 7), groups * r.int(1, 2)];
    const [KH, KW] = [r.int(1, 4), r.int(1, 4)];
    let validity: Validity = 'ok';
    const pairOpt = (lo: number, hi: number): Opt => {
      const roll = r.next();
      if (roll < 0.1) return { value: r.pick([0, -1, 1.5, NaN, '1', [1], [1, 2, 3], -(2 ** 16), 2 ** 32]), validity: 'err' };
      if (roll < 0.4) return { value: undefined, validity: 'ok' };
      return { value: r.chance(0.5) ? r.int(lo, hi) : [r.int(lo, hi), r.int(lo, hi)], validity: 'ok' };
    };
    const stride = pairOpt(1, 3);
    const dilation: Opt = r.chance(0.7) ? { value: undefined, validity: 'ok' } : pairOpt(1, 2);
    // PyTorch's symmetric padding, or ONNX's pads [top, left, bottom, right] (not both).
    const onnx = r.chance(0.3);
    let padding: Opt = { value: undefined, validity: 'ok' };
    let pads: Opt = { value: undefined, validity: 'ok' };
    if (onnx) pads = r.chance(0.1) ? { value: r.pick([[1, 2, 3], [-1, 0, 0, 0], [0.5, 0, 0, 0]]), validity: 'err' } : { value: r.pick([[r.int(0, 2), r.int(0, 2), r.int(0, 2), r.int(0, 2)], [r.int(0, 2), r.int(0, 2)], r.int(0, 2)]), validity: 'ok' };
    else {
      padding = r.chance(0.03) ? { value: 60000, validity: 'err' } : pairOpt(0, 2); // 60000: a [120k, 120k] output, OUT_OF_MEMORY
      if (padding.value === 0) padding.validity = 'ok';
      if (padding.value !== undefined && r.chance(0.05)) pads = { value: 1, validity: 'err' }; // both padding and pads
    }
    validity = combine(stride.validity, padding.validity, pads.validity, dilation.validity);
    const g = groupsOpt(r, groups);
    validity = combine(validity, g.validity);
    const pv = padding.validity === 'ok' && pads.validity === 'ok' ? padsOf(onnx ? pads.value : padding.value) : [0, 0, 0, 0];
    const dl = dilation.validity === 'ok' ? pairOf(dilation.value, 1) : [1, 1];
    if (validity === 'ok' && (dl[0]! * (KH - 1) + 1 > H + pv[0]! + pv[2]! || dl[1]! * (KW - 1) + 1 > W + pv[1]! + pv[3]!)) validity = 'err';
    let ws = [O, C / groups, KH, KW];
    if (r.chance(0.08)) {
      ws = r.pick([[O, C / groups + 1, KH, KW], ...(groups > 1 ? [[O + 1, C / groups, KH, KW]] : [])]);
      validity = 'err';
    }
    const xs = r.chance(0.05) ? [C, H, W] : [N, C, H, W];
    if (xs.length === 3) validity = 'err';
    return { kind: 'conv', x: tspec(r, xs, dt), w: tspec(r, ws, dt), stride: stride.value, padding: padding.value, pads: pads.value, dilation: dilation.value, groups: g.value, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const [x, w] = [T(H, s.x, live), T(H, s.w, live)];
    const o = convOpts(s);
    const outs = bothKernels(H, (k) => ctx.attempt(`conv2d (${k})`, s.validity, () => keep(live, H.conv2d(x, w, o)), litOpts(o)));
    if (!outs[0] || s.validity === 'err') return;
    const ref = conv2dRef(dataOf(s.x), s.x.shape, dataOf(s.w), s.w.shape, pairOf(s.stride, 1), padsOf(s.pads ?? s.padding), pairOf(s.dilation, 1), s.groups ?? 1);
    const xs = dataOf(s.x);
    if (!allFinite(xs) || !allFinite(dataOf(s.w))) return;
    outs.forEach((y, i) =>
      ctx.check('conv2d', () => {
        if (!y) return;
        expectShape('conv2d', y.shape, ref.shape);
        const scale = maxAbs(xs) * maxAbs(dataOf(s.w)) * s.w.shape[1] * s.w.shape[2] * s.w.shape[3];
        expectClose(`conv2d (${i ? 'scalar' : 'simd'})`, y.toArray(), ref.values, 0, (s.x.dtype === 'float32' ? 2e-6 : 1e-14) * (1 + scale));
      }),
    );
  },
  code(s) {
    return `conv2d(${litT(s.x)}, ${litT(s.w)}, ${litOpts(convOpts(s))})`;
  },
};

const convOpts = (s: Step) => ({ stride: s.stride, padding: s.padding, pads: s.pads, dilation: s.dilation, groups: s.groups });
/** [h, w] of a number-or-pair option. */
const pairOf = (v: unknown, d: number) => (Array.isArray(v) ? v : [v ?? d, v ?? d]) as number[];
/** [top, left, bottom, right] of p, [ph, pw] or four pads. */
const padsOf = (v: unknown): number[] => (Array.isArray(v) ? (v.length === 4 ? v : [v[0], v[1], v[0], v[1]]) : [v ?? 0, v ?? 0, v ?? 0, v ?? 0]) as number[];
/** The groups option: mostly the drawn groups (or omitted when 1), sometimes not a positive integer. */
function groupsOpt(r: Rng, groups: number): Opt {
  if (r.chance(0.05)) return { value: r.pick([0, -1, 1.5, NaN, '2']), validity: 'err' };
  return { value: groups === 1 && r.chance(0.5) ? undefined : groups, validity: 'ok' };
}

// ---- pooling -------------------------------------------------------------------------------------

const pool: Kind = {
  gen(r) {
    const dt = dtypeOf(r);
    const op = r.pick(['maxPool2d', 'avgPool2d', 'globalAvgPool'] as const);
    const xs = r.chance(0.05) ? [r.int(1, 3), r.int(1, 5), r.int(1, 5)] : [dim(r, 2), r.int(1, 3), dim(r, 6), dim(r, 6)];
    let validity: Validity = xs.length === 4 ? 'ok' : 'err';
    if (op === 'globalAvgPool') return { kind: 'pool', op, x: tspec(r, xs, dt), validity: validity === 'ok' && xs[2]! * xs[3]! === 0 ? 'any' : validity };
    const k = [r.int(1, 3), r.int(1, 3)];
    const kernel: unknown = r.chance(0.1) ? r.pick([0, -1, 1.5, [1, 2, 3], undefined]) : r.chance(0.5) && k[0] === k[1] ? k[0] : k;
    if (!(typeof kernel === 'number' ? kernel >= 1 && Number.isInteger(kernel) : Array.isArray(kernel) && kernel.length === 2)) validity = 'err';
    const stride: unknown = r.chance(0.4) ? undefined : r.chance(0.05) ? 0 : [r.int(1, 3), r.int(1, 3)];
    if (stride === 0) validity = 'err';
    const dilation: unknown = op === 'maxPool2d' && r.chance(0.3) ? [r.int(1, 2), r.int(1, 2)] : undefined;
    const dl = pairOf(dilation, 1);
    // Each pad at most dilation·(kernel − 1) on its axis (Pool2dOptions.pads), mostly within.
    const p = [0, 1, 2, 3].map((i) => (r.chance(0.6) ? 0 : r.int(0, r.chance(0.9) ? dl[i % 2]! * (k[i % 2]! - 1) : 2)));
    const pads: unknown = r.chance(0.05) ? r.pick([-1, [1, 2, 3], 0.5]) : r.pick([undefined, p[0], [p[0], p[1]], p]);
    if (pads === -1 || pads === 0.5 || (Array.isArray(pads) && pads.length === 3)) validity = 'err';
    else if (padsOf(pads).some((v, i) => v > dl[i % 2]! * (k[i % 2]! - 1))) validity = 'err';
    const ceilMode = boolOpt(r);
    const cip = op === 'avgPool2d' ? boolOpt(r) : { value: undefined, validity: 'ok' as Validity };
    validity = combine(validity, ceilMode.validity, cip.validity);
    if (validity === 'ok') {
      const g = poolOut(xs, pairOf(kernel, 0), pairOf(stride ?? kernel, 0), padsOf(pads), pairOf(dilation, 1), ceilMode.value === true);
      if (g.oh < 1 || g.ow < 1) validity = 'err'; // a window larger than the padded input
      // A window none of whose taps is inside the input (dilated taps can skip it): INVALID_ARGUMENT.
      const hits = (n: number, o: number, a: number) => Array.from({ length: o }, (_, i) => Array.from({ length: pairOf(kernel, 0)[a]! }, (_, u) => i * pairOf(stride ?? kernel, 0)[a]! - padsOf(pads)[a]! + u * dl[a]!).some((y) => y >= 0 && y < n)).every(Boolean);
      if (validity === 'ok' && (!hits(xs[2]!, g.oh, 0) || !hits(xs[3]!, g.ow, 1)) && xs[2]! * xs[3]! > 0) validity = op === 'maxPool2d' ? 'err' : 'any';
      if (xs[0]! * xs[1]! === 0 && validity === 'ok') validity = 'any';
      // An empty H or W: windows wholly in the padding, a max of nothing (an error or a value).
      if (op === 'maxPool2d' && xs[2]! * xs[3]! === 0 && validity === 'ok') validity = 'any';
    }
    return { kind: 'pool', op, x: tspec(r, xs, dt), kernel, stride, pads, dilation, ceilMode: ceilMode.value, countIncludePad: cip.value, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const x = T(H, s.x, live);
    const o = poolOpts(s);
    const X = H as unknown as Record<string, (x: Tensor, o?: unknown) => Tensor>;
    const y = ctx.attempt(s.op, s.validity, () => keep(live, s.op === 'globalAvgPool' ? X.globalAvgPool!(x) : X[s.op]!(x, o)), litOpts(o));
    if (!y || s.validity === 'err') return;
    const xs = dataOf(s.x);
    if (!allFinite(xs)) return;
    const ref = poolRef(s, xs);
    ctx.check(s.op, () => {
      expectShape(s.op, y.shape, ref.shape);
      // Sums in another order cancel differently (1e30 − 1e30 + 1 …): atol scales with max |x|.
      expectClose(s.op, y.toArray(), ref.values, s.x.dtype === 'float32' ? 1e-5 : 1e-12, (s.x.dtype === 'float32' ? 1e-6 : 1e-14) * (1 + maxAbs(xs)) * s.x.shape.reduce((a: number, b: number) => a + b, 1), false);
    });
  },
  code(s) {
    return s.op === 'globalAvgPool' ? `globalAvgPool(${litT(s.x)})` : `${s.op}(${litT(s.x)}, ${litOpts(poolOpts(s))})`;
  },
};

const poolOpts = (s: Step) => ({ kernel: s.kernel, stride: s.stride, pads: s.pads, dilation: s.dilation, ceilMode: s.ceilMode, countIncludePad: s.countIncludePad });

/** Output size of pooling (ops.ts maxPool2d's TSDoc; ceil mode drops a last window that starts in the bottom/right padding, as PyTorch). */
function poolOut(xs: number[], k: number[], st: number[], p: number[], d: number[], ceil: boolean): { oh: number; ow: number } {
  const one = (n: number, a: number) => {
    const span = n + p[a]! + p[a + 2]! - d[a]! * (k[a]! - 1) - 1;
    if (span < 0) return 0;
    let o = (ceil ? Math.ceil(span / st[a]!) : Math.floor(span / st[a]!)) + 1;
    if (ceil && (o - 1) * st[a]! >= n + p[a]!) o--;
    return o;
  };
  return { oh: one(xs[2]!, 0), ow: one(xs[3]!, 1) };
}

/** Max / average / global average pooling in float64 (PyTorch's rules; NaN-free input). */
function poolRef(s: Step, x: Float64Array): { shape: number[]; values: Float64Array } {
  const [N, C, Hh, W] = s.x.shape as number[];
  if (s.op === 'globalAvgPool') {
    const v = new Float64Array(N! * C!);
    for (let i = 0; i < N! * C!; i++) v[i] = x.slice(i * Hh! * W!, (i + 1) * Hh! * W!).reduce((a, b) => a + b, 0) / (Hh! * W!);
    return { shape: [N!, C!, 1, 1], values: v };
  }
  const k = pairOf(s.kernel, 0);
  const st = pairOf(s.stride ?? s.kernel, 0);
  const p = padsOf(s.pads);
  const d = pairOf(s.dilation, 1);
  const { oh, ow } = poolOut(s.x.shape, k, st, p, d, s.ceilMode === true);
  const out = new Float64Array(N! * C! * oh * ow);
  for (let nc = 0; nc < N! * C!; nc++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        const [h0, w0] = [i * st[0]! - p[0]!, j * st[1]! - p[1]!];
        let [m, sum, inside] = [-Infinity, 0, 0];
        for (let u = 0; u < k[0]!; u++)
          for (let v = 0; v < k[1]!; v++) {
            const [y, z] = [h0 + u * d[0]!, w0 + v * d[1]!];
            if (y < 0 || y >= Hh! || z < 0 || z >= W!) continue;
            const xv = x[(nc * Hh! + y) * W! + z]!;
            m = Math.max(m, xv);
            sum += xv;
            inside++;
          }
        // The divisor with countIncludePad: the window clipped to the padded input (PyTorch).
        const padded = (Math.min(h0 + k[0]!, Hh! + p[2]!) - h0) * (Math.min(w0 + k[1]!, W! + p[3]!) - w0);
        out[(nc * oh + i) * ow + j] = s.op === 'maxPool2d' ? (inside ? m : NaN) : sum / (s.countIncludePad === false ? inside : padded);
      }
  return { shape: [N!, C!, oh, ow], values: out };
}

// ---- traced functions through the transforms ----------------------------------------------------

/** One op of a traced function; `shape` is the shape after it. */
type TOp =
  | { u: string; p?: number; args?: unknown[] }
  | { b: 'add' | 'sub' | 'mul' | 'div'; c: TSpec; left: boolean }
  | { scale: number }
  | { matmul: TSpec }
  | { reshape: number[] }
  | { transpose: true }
  | { permute: number[] }
  | { concat: number }
  | { reduce: 'sum' | 'mean' | 'max' | 'logsumexp'; axis?: number | number[]; keepdims?: boolean }
  | { row: 'softmax' | 'logSoftmax' | 'layerNorm'; axis?: number }
  | { batch: true }
  | { slice: [number[], number[], number[] | undefined, number[] | undefined] }
  | { pad: number[]; value?: number }
  | { expand: number[] }
  | { gather: number[]; axis: number }
  | { where: { shape: number[]; data: number[] }; y: TSpec | number; left: boolean }
  | { bad: 'abs' | 'maximum' };

const SMOOTH = ['square', 'tanh', 'sigmoid', 'softplus', 'gelu', 'exp', 'neg', 'logSigmoid', 'sqrt1p', 'silu'];
const KINKED = ['relu', 'elu', 'leakyRelu', 'hardSwish', 'relu6', 'hardSigmoid', 'clip', 'hardtanh'];
const TRANSFORMS = ['grad', 'valueAndGrad', 'hvp', 'jvp', 'vjp', 'hessian', 'jacobian'] as const;

/**
 * Applies the ops to x (a Sym inside a trace, a Tensor for the eager reference). Every eager
 * intermediate goes to `track`, so the case frees it (the leak check counts live handles).
 */
function applyOps(H: H, x: unknown, ops: TOp[], consts: unknown[], batch: unknown, track: (t: Tensor) => void = () => {}): unknown {
  const h = H as unknown as Record<string, (...a: unknown[]) => unknown>;
  const k = (y: unknown) => {
    if (y instanceof H.Tensor) track(y);
    return y;
  };
  const f = (name: string, ...a: unknown[]) => k(h[name]!(...a));
  let y = x;
  ops.forEach((op, i) => {
    if ('u' in op) {
      if (op.u === 'logSigmoid') y = f('log', f('sigmoid', y));
      else if (op.u === 'sqrt1p') y = f('sqrt', f('add', f('square', y), 1));
      else y = f(op.u, y, ...(op.args ?? (op.p === undefined ? [] : [op.p])));
    } else if ('b' in op) y = op.left ? f(op.b, consts[i], y) : f(op.b, y, consts[i]);
    else if ('scale' in op) y = f('mul', y, op.scale);
    else if ('matmul' in op) y = f('matmul', y, consts[i]);
    else if ('reshape' in op) y = f('reshape', y, op.reshape);
    else if ('transpose' in op) y = f('transpose', y);
    else if ('permute' in op) y = f('permute', y, op.permute);
    else if ('concat' in op) y = f('concat', [y, y], op.concat);
    else if ('reduce' in op) y = f(op.reduce, y, { axis: op.axis, keepdims: op.keepdims });
    else if ('row' in op) y = op.axis === undefined ? f(op.row, y) : f(op.row, y, op.axis);
    else if ('batch' in op) y = f('mul', y, batch);
    else if ('slice' in op) y = f('slice', y, ...op.slice);
    else if ('pad' in op) y = f('pad', y, op.pad, ...(op.value === undefined ? [] : [op.value]));
    else if ('expand' in op) y = f('expand', y, op.expand);
    else if ('gather' in op) y = f('gather', y, Int32Array.from(op.gather), op.axis);
    else if ('where' in op) y = op.left ? f('where', op.where, y, consts[i] ?? op.y) : f('where', op.where, consts[i] ?? op.y, y);
    else if (op.bad === 'abs') y = f('abs', y);
    else y = f('maximum', y, 0);
  });
  return y;
}

function opCode(op: TOp, i: number, y: string): string {
  if ('u' in op) return op.u === 'logSigmoid' ? `log(sigmoid(${y}))` : op.u === 'sqrt1p' ? `sqrt(add(square(${y}), 1))` : `${op.u}(${[y, ...(op.args ?? (op.p === undefined ? [] : [op.p])).map(lit)].join(', ')})`;
  if ('b' in op) return op.left ? `${op.b}(c${i}, ${y})` : `${op.b}(${y}, c${i})`;
  if ('scale' in op) return `mul(${y}, ${op.scale})`;
  if ('matmul' in op) return `matmul(${y}, c${i})`;
  if ('reshape' in op) return `reshape(${y}, ${lit(op.reshape)})`;
  if ('transpose' in op) return `transpose(${y})`;
  if ('permute' in op) return `permute(${y}, ${lit(op.permute)})`;
  if ('concat' in op) return `concat([${y}, ${y}], ${op.concat})`;
  if ('reduce' in op) return `${op.reduce}(${y}, ${litOpts({ axis: op.axis, keepdims: op.keepdims })})`;
  if ('row' in op) return `${op.row}(${y}${op.axis === undefined ? '' : `, ${op.axis}`})`;
  if ('batch' in op) return `mul(${y}, b)`;
  if ('slice' in op) return `slice(${[y, ...op.slice.filter((v, j) => v !== undefined || j < 2).map(lit)].join(', ')})`;
  if ('pad' in op) return `pad(${y}, ${lit(op.pad)}${op.value === undefined ? '' : `, ${lit(op.value)}`})`;
  if ('expand' in op) return `expand(${y}, ${lit(op.expand)})`;
  if ('gather' in op) return `gather(${y}, Int32Array.from(${lit(op.gather)}), ${op.axis})`;
  if ('where' in op) {
    const other = typeof op.y === 'number' ? lit(op.y) : `c${i}`;
    return `where(${lit(op.where)}, ${op.left ? `${y}, ${other}` : `${other}, ${y}`})`;
  }
  if (op.bad === 'maximum') return `maximum(${y}, 0)`;
  return `${op.bad}(${y})`;
}

/** Draws a chain of traceable ops from shape `shape`, tracking shapes. */
function genOps(r: Rng, shape: number[], dt: DT, withBatch: boolean): { ops: TOp[]; shape: number[]; smooth: boolean; bad: boolean; emptyMean: boolean } {
  const ops: TOp[] = [];
  let sh = [...shape];
  let smooth = true;
  let bad = false;
  /** A mean or row normalization over nothing happened (an error or NaN are both defensible). */
  let emptyMean = false;
  if (withBatch) ops.push({ batch: true });
  const n = r.int(1, 5);
  for (let k = 0; k < n; k++) {
    const rank = sh.length;
    const choice = r.weighted([
      [5, 'u'], [1.5, 'kink'], [3, 'b'], [1, 'scale'], [rank >= 1 ? 2 : 0, 'matmul'], [1, 'reshape'], [rank === 2 ? 1 : 0, 'transpose'],
      [rank >= 2 ? 1 : 0, 'permute'], [rank >= 1 ? 0.7 : 0, 'concat'], [rank >= 1 ? 1.5 : 0, 'reduce'], [rank >= 1 ? 1.2 : 0, 'row'],
      [rank >= 1 ? 1.5 : 0, 'index'], [0.2, 'bad'],
    ] as const);
    if (choice === 'u') ops.push({ u: r.pick(SMOOTH) });
    else if (choice === 'kink') {
      const u = r.pick(KINKED);
      if (u === 'elu' || u === 'leakyRelu') ops.push({ u, p: r.pick([0.1, 1.5]) });
      else if (u === 'clip') ops.push({ u, args: r.pick([[-0.25, 0.25], [undefined, 0.1], [-0.1], [0.3, -0.3], [-Infinity, Infinity]]) });
      else if (u === 'hardtanh') ops.push({ u, args: r.pick([[], [-0.2, 0.3], [-2, 2]]) });
      else if (u === 'hardSigmoid') ops.push({ u, args: r.pick([[], [{ alpha: 0.5, beta: 0.25 }], [{ alpha: -2 }]]) });
      else ops.push({ u });
      smooth = false;
    } else if (choice === 'b') {
      const b = r.pick(['add', 'sub', 'mul', 'div'] as const);
      const cs = partner(r, sh).filter(() => true);
      const fits = broadcastShape(sh, cs);
      const c = tspec(r, fits ? cs : sh.map((d) => (d === 1 ? 1 : d)), dt, b === 'div' ? 'pos' : 'small');
      const out = broadcastShape(sh, c.shape)!;
      ops.push({ b, c, left: b !== 'div' && r.chance(0.3) });
      sh = out;
    } else if (choice === 'scale') ops.push({ scale: r.pick([0.5, -2, 3, 0]) });
    else if (choice === 'matmul') {
      // NumPy matmul: a 1-D constant (a column, dropped from the result) or [k, n], or, for a
      // rank ≥ 3 x, a batched [b…, k, n] that broadcasts with x's batch dims.
      const k = sh[rank - 1]!;
      const nOut = dim(r, 4);
      const cShape = r.chance(0.3) ? [k] : rank >= 3 && r.chance(0.5) ? [...sh.slice(1, rank - 2).map((d) => (r.chance(0.5) ? 1 : d)), k, nOut] : [k, nOut];
      ops.push({ matmul: tspec(r, cShape, dt, 'small') });
      sh = matmulShape(sh, cShape)!;
    } else if (choice === 'reshape') {
      const to = factorize(r, size(sh));
      if (size(sh) === 0) continue;
      ops.push({ reshape: to });
      sh = to;
    } else if (choice === 'transpose') {
      ops.push({ transpose: true });
      sh = [sh[1]!, sh[0]!];
    } else if (choice === 'permute') {
      const perm = sh.map((_, i) => i).sort(() => r.next() - 0.5);
      ops.push({ permute: perm });
      sh = perm.map((p) => sh[p]!);
    } else if (choice === 'concat') {
      const axis = r.int(-rank, rank - 1);
      ops.push({ concat: axis });
      sh = sh.map((d, i) => (i === (axis + rank) % rank ? 2 * d : d));
    } else if (choice === 'reduce') {
      const red = r.pick(['sum', 'mean', 'max', 'logsumexp'] as const);
      const roll = r.next();
      // One axis, several (an array, any order, negatives allowed), or all (undefined).
      const axis: number | number[] | undefined = roll < 0.25 ? undefined : roll < 0.65 ? r.int(-rank, rank - 1) : axesSubset(r, rank);
      const keepdims = r.chance(0.4) ? true : undefined;
      const axes = normAxes(axis, rank);
      if (red !== 'sum' && axes.some((a) => sh[a] === 0)) emptyMean = true;
      if (red === 'max') smooth = false;
      ops.push({ reduce: red, axis, keepdims });
      sh = reducedShape(sh, axes, !!keepdims);
    } else if (choice === 'row') {
      const row = r.pick(['softmax', 'logSoftmax', 'layerNorm'] as const);
      const axis = row !== 'layerNorm' && r.chance(0.5) ? r.int(-rank, rank - 1) : undefined;
      if (sh[axis === undefined ? rank - 1 : (axis + rank) % rank] === 0) continue;
      ops.push({ row, axis });
    } else if (choice === 'index') {
      const g = genIndexOp(r, sh, dt);
      ops.push(g.op);
      sh = g.shape;
    } else {
      ops.push({ bad: r.pick(['abs', 'maximum'] as const) });
      bad = true;
    }
  }
  return { ops, shape: sh, smooth, bad, emptyMean };
}

const traced: Kind = {
  gen(r) {
    const dt = dtypeOf(r);
    const xs = r.chance(0.6) ? [dim(r, 4), r.int(1, 4)] : shapeOf(r, 3, 4);
    const tree = r.weighted([[7, 'tensor'], [1.5, 'array'], [1.5, 'record']] as const);
    const withBatch = r.chance(0.25);
    const g = genOps(r, xs, dt, withBatch);
    const final = r.weighted([[6, 'sum'], [2, 'mean'], [2, 'none']] as const);
    const outShape = final === 'none' ? g.shape : [];
    const transform = r.pick(TRANSFORMS);
    const argnum: Opt = withBatch && r.chance(0.4) ? { value: 1, validity: 'ok' } : r.chance(0.1) ? { value: r.pick([2, -1, 1.5, '1', NaN]), validity: 'err' } : { value: r.pick([0, undefined]), validity: 'ok' };
    if (argnum.value === 1 && !withBatch) argnum.validity = 'err';
    const fill: Fill = r.chance(0.08) ? 'special' : 'small';
    const checkFinite = boolOpt(r);
    const o: Record<string, Opt> = { argnum, checkFinite };
    if (transform === 'hessian' || transform === 'jacobian') {
      o.chunk = countOpt(r, 1, 6, 0.15, [0]);
      if (o.chunk.value === 0) o.chunk.validity = 'err';
      o.maxBytes = r.chance(0.1) ? { value: r.pick([1, 0, -1, NaN, '1e9']), validity: 'err' } : { value: undefined, validity: 'ok' };
    }
    const { value: options, validity: ov } = opts(o);
    const nonScalar = size(outShape) !== 1 && transform !== 'jvp' && transform !== 'vjp' && transform !== 'jacobian';
    let validity = combine(ov, g.bad ? 'err' : 'ok', nonScalar ? 'err' : 'ok');
    const nonFinite = fill === 'special' && Array.from({ length: size(xs) }, (_, i) => fillValue('special', i, 5)).some((x) => !Number.isFinite(x));
    if (checkFinite.value === true && nonFinite && validity !== 'err') validity = 'err';
    // checkFinite also refuses results that overflow from finite inputs (NON_FINITE): either is right.
    if (checkFinite.value === true && validity === 'ok') validity = 'any';
    if (maxBytesTiny(options) && validity === 'ok') validity = 'err';
    if ((g.emptyMean || (final === 'mean' && size(g.shape) === 0)) && validity === 'ok') validity = 'any';
    if (options.maxBytes === 0 || options.maxBytes === 1) validity = size(xs) === 0 || size(outShape) === 0 ? 'any' : validity;
    return { kind: 'traced', dt, xs, tree, withBatch, ops: g.ops, final, outShape, smooth: g.smooth && fill !== 'special', transform, options, fill, validity };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const ops = s.ops as TOp[];
    const consts = ops.map((op) => ('c' in op ? T(H, op.c, live) : 'matmul' in op ? T(H, op.matmul, live) : 'where' in op && typeof op.y !== 'number' ? T(H, op.y, live) : undefined));
    const xSpec: TSpec = { shape: s.xs, dtype: s.dt, fill: s.fill, seed: 5 };
    const wSpec: TSpec = { shape: s.xs, dtype: s.dt, fill: 'pos', seed: 6 };
    const bSpec: TSpec = { shape: s.xs, dtype: s.dt, fill: 'pos', seed: 7 };
    const body = (x: unknown, w: unknown, b: unknown, track?: (t: Tensor) => void) => {
      const y0 = w === undefined ? x : H.mul(x as Tensor, w as Tensor);
      if (y0 instanceof H.Tensor && y0 !== x) track?.(y0);
      const y = applyOps(H, y0, ops, consts, b, track);
      return s.final === 'none' ? y : (H as unknown as Record<string, (y: unknown) => unknown>)[s.final]!(y);
    };
    const f =
      s.tree === 'tensor'
        ? (p: unknown, b?: unknown) => body(p, undefined, b)
        : s.tree === 'array'
          ? (p: unknown[], b?: unknown) => body(p[0], p[1], b)
          : (p: Record<string, unknown>, b?: unknown) => body(p.x, p.w, b);
    const mk = (flat: Float64Array | undefined) => {
      const x = flat ? keep(live, H.tensor(flat.subarray(0, size(s.xs)), s.xs, s.dt)) : T(H, xSpec, live);
      const w = T(H, wSpec, live);
      return s.tree === 'tensor' ? x : s.tree === 'array' ? [x, w] : { x, w };
    };
    const params = mk(undefined);
    const batch = s.withBatch ? [T(H, bSpec, live)] : [];
    const wrtInput = s.options.argnum === 1 && s.withBatch;
    const varSpec = wrtInput ? bSpec : s.tree === 'tensor' ? xSpec : undefined;
    /** The eager value at a flat variable (the differentiated argument). */
    const evalAt = (flat: Float64Array): Float64Array => {
      const live2: Tensor[] = [];
      try {
        let p = params;
        let bt = batch[0];
        if (wrtInput) bt = keep(live2, H.tensor(flat, s.xs, s.dt));
        else if (s.tree === 'tensor') p = keep(live2, H.tensor(flat, s.xs, s.dt));
        else {
          const n = size(s.xs);
          const [x, w] = [keep(live2, H.tensor(flat.subarray(0, n), s.xs, s.dt)), keep(live2, H.tensor(flat.subarray(n), s.xs, s.dt))];
          p = s.tree === 'array' ? [x, w] : { x, w };
        }
        const y = keep(live2, body(tree0(p), tree1(p), bt, (t) => live2.push(t)) as Tensor);
        return Float64Array.from(y.toArray());
      } finally {
        // After a trap, freeing fails too ("…while it was borrowed"): keep the first error.
        live2.forEach((t) => {
          try {
            t.dispose();
          } catch {
            // the trap is what is reported
          }
        });
      }
    };
    const tree0 = (p: unknown) => (p instanceof Object && 'shape' in (p as object) ? p : Array.isArray(p) ? p[0] : (p as Record<string, unknown>).x);
    const tree1 = (p: unknown) => (p instanceof Object && 'shape' in (p as object) ? undefined : Array.isArray(p) ? p[1] : (p as Record<string, unknown>).w);
    const flatVar = (): Float64Array => (varSpec ? dataOf(varSpec) : Float64Array.from([...dataOf(xSpec), ...dataOf(wSpec)]));
    const n = flatVar().length;
    const flatOf = (t: unknown): Float64Array => (t && typeof t === 'object' && 'toArray' in t ? Float64Array.from((t as Tensor).toArray()) : Float64Array.from((Array.isArray(t) ? t : Object.values(t as object)).flatMap((x: Tensor) => Array.from(x.toArray()))));
    const treeOfFlat = (flat: Float64Array): unknown => {
      if (wrtInput || s.tree === 'tensor') return keep(live, H.tensor(flat, s.xs, s.dt));
      const k = size(s.xs);
      const [x, w] = [keep(live, H.tensor(flat.subarray(0, k), s.xs, s.dt)), keep(live, H.tensor(flat.subarray(k), s.xs, s.dt))];
      return s.tree === 'array' ? [x, w] : { x, w };
    };
    const keepTree = (t: unknown): unknown => {
      if (t instanceof H.Tensor) keep(live, t);
      else if (t && typeof t === 'object') Object.values(t).forEach(keepTree);
      return t;
    };
    const o = s.options;
    const f32 = s.dt === 'float32';
    const X = (H as unknown as Record<string, any>); // eslint-disable-line @typescript-eslint/no-explicit-any
    const ref = ctx.attempt('eager reference', 'any', () => evalAt(flatVar()));
    const v = Float64Array.from({ length: n }, (_, i) => fillValue('small', i, 11));
    const label = `${s.transform} over ${(s.ops as TOp[]).length} ops`;
    const scaleOf = (xs: ArrayLike<number>) => 1 + maxAbs(Array.from(xs).filter(Number.isFinite));
    const fd = (h: number, g: (x: Float64Array) => Float64Array, dir: Float64Array) => {
      const x = flatVar();
      const [p, m] = [g(Float64Array.from(x, (xi, i) => xi + h * dir[i]!)), g(Float64Array.from(x, (xi, i) => xi - h * dir[i]!))];
      return Float64Array.from(p, (pi, i) => (pi - m[i]!) / (2 * h));
    };
    const exact = !f32 && s.smooth && ref !== undefined && allFinite(ref) && maxAbs(ref) < 1e4;
    switch (s.transform) {
      case 'grad':
      case 'valueAndGrad': {
        const res = ctx.attempt(label, s.validity, () => keepTree(s.transform === 'grad' ? X.grad(f, o)(params, ...batch) : X.valueAndGrad(f, o)(params, ...batch)));
        if (!res || s.validity === 'err') return;
        ctx.check(s.transform, () => {
          const g = flatOf(s.transform === 'grad' ? res : (res as [number, unknown])[1]);
          if (g.length !== n) fail(`${s.transform}: ${g.length} gradient values, expected ${n}`);
          if (s.transform === 'valueAndGrad' && ref) expectClose('valueAndGrad value vs eager', [(res as [number])[0]], ref, f32 ? 1e-3 : 1e-9, f32 ? 1e-4 * scaleOf(ref) : 1e-10 * scaleOf(ref));
          if (exact) {
            const want = fd(1e-5, evalAt, v);
            expectClose('grad·v vs central difference', [dot(g, v)], want, 1e-5, 1e-6 * scaleOf(g) * (1 + norm(v)));
          } else if (ref && allFinite(ref) && maxAbs(ref) < 1e4 && s.fill !== 'special' && s.smooth) expectFinite(s.transform, g);
        });
        return;
      }
      case 'hvp': {
        const vt = treeOfFlat(v);
        const hv = ctx.attempt(label, s.validity, () => keepTree(X.hvp(f, params, vt, batch, o)));
        if (!hv || s.validity === 'err') return;
        ctx.check('hvp', () => {
          const got = flatOf(hv);
          if (got.length !== n) fail(`hvp: ${got.length} values, expected ${n}`);
          if (!exact) return;
          const gradAt = (x: Float64Array) => flatOf(keepTree(X.grad(f, o)(wrtInput ? params : treeOfFlat(x), ...(wrtInput ? [treeOfFlat(x)] : batch))));
          // Richardson: (4·D(h/2) − D(h))/3 is O(h⁴) accurate; a plain O(h²) difference missed
          // 2.7e-4 relative for a layerNorm of 2-element rows (curvature on the √eps scale).
          const [d1, d2] = [fd(1e-4, gradAt, v), fd(5e-5, gradAt, v)];
          const want = Float64Array.from(d1, (a, i) => (4 * d2[i]! - a) / 3);
          expectClose('hvp vs central difference of grad', got, want, 1e-4, 1e-5 * scaleOf(want));
        });
        return;
      }
      case 'jvp': {
        const vt = treeOfFlat(v);
        const res = ctx.attempt(label, s.validity, () => keepTree(X.jvp(f, params, vt, batch, o)) as Tensor[]);
        if (!res || s.validity === 'err') return;
        ctx.check('jvp', () => {
          expectShape('jvp output', res[0]!.shape, s.outShape);
          expectShape('jvp tangent', res[1]!.shape, s.outShape);
          if (ref) expectClose('jvp output vs eager', res[0]!.toArray(), ref, f32 ? 1e-3 : 1e-9, (f32 ? 1e-4 : 1e-10) * scaleOf(ref));
          if (exact) expectClose('jvp tangent vs central difference', res[1]!.toArray(), fd(1e-5, evalAt, v), 1e-5, 1e-6 * scaleOf(res[1]!.toArray()));
        });
        return;
      }
      case 'vjp': {
        const res = ctx.attempt(label, s.validity, () => X.vjp(f, params, batch, o) as [Tensor, (u: Tensor) => unknown]);
        if (res) keep(live, res[0]); // freed also when it should not have returned (else a false leak)
        if (!res || s.validity === 'err') return;
        const u = T(H, { shape: s.outShape, dtype: s.dt, fill: 'small', seed: 12 }, live);
        const back = ctx.attempt('vjp pullback', s.validity, () => keepTree(res[1](u)));
        const wrong = T(H, { shape: [size(s.outShape) + 1], dtype: s.dt, fill: 'small', seed: 12 }, live);
        ctx.attempt('vjp pullback (wrong cotangent size)', 'err', () => keepTree(res[1](wrong)));
        if (!back) return;
        const jv = ctx.attempt('jvp (for the vjp identity)', s.validity, () => keepTree(X.jvp(f, params, treeOfFlat(v), batch, o)) as Tensor[]);
        ctx.check('vjp', () => {
          expectShape('vjp output', res[0].shape, s.outShape);
          if (ref) expectClose('vjp output vs eager', res[0].toArray(), ref, f32 ? 1e-3 : 1e-9, (f32 ? 1e-4 : 1e-10) * scaleOf(ref));
          const jtu = flatOf(back);
          if (jtu.length !== n) fail(`vjp: ${jtu.length} values, expected ${n}`);
          if (!jv || !allFinite(jtu) || !allFinite(jv[1]!.toArray())) return;
          const [lhs, rhs] = [dot(jtu, v), dot(u.toArray(), jv[1]!.toArray())];
          const sc = (1 + maxAbs(jtu)) * (1 + norm(v)) * (1 + n);
          expectClose('(Jᵀu)·v vs u·(Jv)', [lhs], [rhs], f32 ? 1e-3 : 1e-9, (f32 ? 1e-4 : 1e-11) * sc);
        });
        return;
      }
      case 'hessian': {
        const h = ctx.attempt(label, s.validity, () => keep(live, X.hessian(f, o)(params, ...batch) as Tensor), litOpts(o));
        if (!h || s.validity === 'err') return;
        ctx.check('hessian', () => {
          expectShape('hessian', h.shape, [n, n]);
          const m = h.toArray();
          if (n === 0) return;
          const i = (s.ops as TOp[]).length % n;
          const e = Float64Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));
          const hv = flatOf(keepTree(X.hvp(f, params, treeOfFlat(e), batch, { argnum: o.argnum })));
          const row = m.slice(i * n, (i + 1) * n);
          if (allFinite(hv)) expectClose(`hessian row ${i} vs hvp(e${i})`, row, hv, f32 ? 1e-4 : 1e-10, (f32 ? 1e-5 : 1e-12) * scaleOf(hv));
          if (exact) for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) expectClose(`hessian symmetry [${a},${b}]`, [m[a * n + b]!], [m[b * n + a]!], 1e-8, 1e-10 * scaleOf(m));
        });
        return;
      }
      case 'jacobian': {
        const j = ctx.attempt(label, s.validity, () => keep(live, X.jacobian(f, o)(params, ...batch) as Tensor), litOpts(o));
        if (!j || s.validity === 'err') return;
        ctx.check('jacobian', () => {
          const mOut = size(s.outShape);
          expectShape('jacobian', j.shape, [mOut, n]);
          const jm = j.toArray();
          const jv = keepTree(X.jvp(f, params, treeOfFlat(v), batch, { argnum: o.argnum })) as Tensor[];
          const want = jv[1]!.toArray();
          const got = Float64Array.from({ length: mOut }, (_, r) => dot(jm.slice(r * n, (r + 1) * n), v));
          if (allFinite(want)) expectClose('jacobian·v vs jvp', got, want, f32 ? 1e-4 : 1e-10, (f32 ? 1e-5 : 1e-12) * scaleOf(want) * (1 + n));
        });
      }
    }
  },
  code(s) {
    const ops = s.ops as TOp[];
    const consts = ops
      .map((op, i) => ('c' in op ? `const c${i} = ${litT(op.c)};` : 'matmul' in op ? `const c${i} = ${litT(op.matmul)};` : 'where' in op && typeof op.y !== 'number' ? `const c${i} = ${litT(op.y)};` : ''))
      .filter(Boolean);
    let y = s.tree === 'tensor' ? 'x' : 'mul(x, w)';
    ops.forEach((op, i) => (y = opCode(op, i, y)));
    if (s.final !== 'none') y = `${s.final}(${y})`;
    const params = s.tree === 'tensor' ? 'x' : s.tree === 'array' ? '[x, w]' : '{ x, w }';
    const args = s.withBatch ? `(${params}, b)` : `(${params})`;
    const xP = `T(${lit(s.xs)}, '${s.dt}', '${s.fill}', 5)`;
    const wP = `T(${lit(s.xs)}, '${s.dt}', 'pos', 6)`;
    const pv = s.tree === 'tensor' ? xP : s.tree === 'array' ? `[${xP}, ${wP}]` : `{ x: ${xP}, w: ${wP} }`;
    const bv = s.withBatch ? `[T(${lit(s.xs)}, '${s.dt}', 'pos', 7)]` : '[]';
    const o = litOpts(s.options);
    const call = {
      grad: `grad(f, ${o})(params, ...batch)`,
      valueAndGrad: `valueAndGrad(f, ${o})(params, ...batch)`,
      hvp: `hvp(f, params, /* v like the variable */ v, batch, ${o})`,
      jvp: `jvp(f, params, /* v like the variable */ v, batch, ${o})`,
      vjp: `vjp(f, params, batch, ${o})[1](u)`,
      hessian: `hessian(f, ${o})(params, ...batch)`,
      jacobian: `jacobian(f, ${o})(params, ...batch)`,
    }[s.transform as (typeof TRANSFORMS)[number]];
    return [...consts, `const f = ${args} => ${y};`, `const params = ${pv}, batch = ${bv};`, call].join('\n');
  },
};

function maxBytesTiny(o: Record<string, unknown>): boolean {
  return o.maxBytes === 0 || o.maxBytes === 1;
}

// ---- estimators and solvers over operators --------------------------------------------------------

type MatKind = 'spd' | 'sym' | 'nonsym';

const ESTIMATORS = ['eigenvalues', 'powerIteration', 'trace', 'diagonal', 'spectralDensity', 'cg', 'minres', 'eigh'] as const;
type OpForm = 'dense' | 'matvec' | 'matvecOut' | 'bad-len' | 'bad-throw' | 'bad-nan' | 'bad-string' | 'bad-size' | 'bad-data';

const estimator: Kind = {
  gen(r) {
    const est = r.pick(ESTIMATORS);
    const n = r.weighted([[1, 0], [2, 1], [10, r.int(2, 10)], [1, r.int(11, 30)]] as const);
    const mat: MatKind = est === 'cg' ? (r.chance(0.85) ? 'spd' : 'sym') : r.weighted([[4, 'spd'], [4, 'sym'], [0.6, 'nonsym']] as const);
    const form: OpForm = r.weighted([[5, 'dense'], [4, 'matvec'], [2, 'matvecOut'], [0.4, 'bad-len'], [0.4, 'bad-throw'], [0.3, 'bad-nan'], [0.3, 'bad-string'], [0.3, 'bad-size'], [0.3, 'bad-data']] as const);
    const seed = r.int(0, 999);
    let validity: Validity = form === 'bad-nan' ? 'any' : form.startsWith('bad') ? 'err' : 'ok';
    if (mat === 'nonsym') validity = combine(validity, 'any');
    const o: Record<string, Opt> = {};
    let k: Opt = { value: undefined, validity: 'ok' };
    let b: { len: number; fill: Fill } | undefined;
    if (est === 'eigenvalues' || est === 'powerIteration') {
      k = countOpt(r, 1, Math.max(1, n), 0.15, [0, n + 1, n + 5]);
      if (k.value === undefined) k = { value: 1, validity: n >= 1 ? 'ok' : 'any' };
      if (typeof k.value === 'number' && Number.isInteger(k.value) && k.value > n && k.validity === 'ok') k.validity = 'any';
      o.maxIter = countOpt(r, 1, 400, 0.12, [0]);
      // Lanczos needs at least k steps: a smaller maxIter may be refused (clearly) or run.
      if (typeof o.maxIter.value === 'number' && typeof k.value === 'number' && o.maxIter.value < k.value && o.maxIter.validity === 'ok') o.maxIter.validity = 'any';
      o.tol = numberOpt(r, () => r.pick([1e-10, 1e-8, 1e-4]), 0);
      o.seed = seedOpt(r);
      if (est === 'eigenvalues') {
        o.which = enumOpt(r, ['largest', 'smallest', 'both']);
        o.vectors = boolOpt(r);
        o.checkSymmetry = boolOpt(r);
        if (mat === 'nonsym' && o.checkSymmetry.value === true && n >= 2) validity = 'err';
      }
    } else if (est === 'trace') {
      o.method = enumOpt(r, ['hutchinson', 'hutch++']);
      o.samples = countOpt(r, 1, 60, 0.15, [0, 2]);
      if (o.method.value !== 'hutchinson' && typeof o.samples.value === 'number' && o.samples.value < 3 && o.samples.validity === 'ok') o.samples.validity = 'any'; // Hutch++ needs 3
      o.seed = seedOpt(r);
    } else if (est === 'diagonal') {
      o.samples = countOpt(r, 1, 60, 0.15, [0]);
      o.seed = seedOpt(r);
    } else if (est === 'spectralDensity') {
      o.probes = countOpt(r, 1, 6, 0.12, [0]);
      o.steps = countOpt(r, 1, 30, 0.12, [0]);
      o.gridPoints = countOpt(r, 2, 300, 0.12, [0, 1]);
      o.sigma = numberOpt(r, () => r.pick([0.01, 0.05, 0.2]), 0);
      o.seed = seedOpt(r);
    } else if (est === 'cg') {
      o.damping = numberOpt(r, () => r.pick([0, 0.1, 1]), 0);
      o.rtol = numberOpt(r, () => r.pick([1e-8, 1e-6, 1e-3]), 0);
      o.atol = numberOpt(r, () => r.pick([0, 1e-12]), 0, 0.08);
      o.maxIter = countOpt(r, 1, 200, 0.12, [0]);
      o.minIter = countOpt(r, 0, 5, 0.08);
      b = { len: r.chance(0.07) ? n + 1 : n, fill: r.chance(0.05) ? 'special' : 'rand' };
      if (r.chance(0.2)) o.x0 = r.chance(0.8) ? { value: { len: n }, validity: 'ok' } : { value: { len: n + 2 }, validity: 'err' };
    } else if (est === 'minres') {
      o.shift = numberOpt(r, () => r.pick([0, 0.5, -0.25]), -Infinity);
      o.rtol = numberOpt(r, () => r.pick([1e-10, 1e-6, 1e-3]), 0);
      o.maxIter = countOpt(r, 1, 200, 0.12, [0]);
      b = { len: r.chance(0.07) ? n + 1 : n, fill: r.chance(0.05) ? 'special' : 'rand' };
    } else {
      // eigh(a, n): the matrix length and n given separately.
      const nArg: Opt = r.chance(0.12) ? { value: r.pick([n + 1, -1, 1.5, NaN, 2 ** 32 + n, '2']), validity: 'err' } : { value: n, validity: 'ok' };
      if (nArg.value === n + 1 && n === 0) nArg.validity = 'err';
      return { kind: 'estimator', est, n, mat: mat === 'nonsym' ? 'sym' : mat, form: 'dense', seed, nArg: nArg.value, validity: nArg.validity };
    }
    if (b && b.len !== n) validity = 'err';
    if (b && b.fill === 'special') validity = combine(validity, 'any');
    // A broken matvec shows only when a product is taken (none for n = 0 or maxIter 0), and the
    // "short" data of an empty matrix is still empty.
    const zeroB = b !== undefined && b.len === n && Array.from({ length: n }, (_, i) => fillValue(b!.fill, i, 4)).every((x) => x === 0); // x = 0 at once
    const noProducts = n === 0 || o.maxIter?.value === 0 || zeroB;
    if ((['bad-len', 'bad-throw', 'bad-string'].includes(form) && noProducts) || (form === 'bad-data' && n === 0)) {
      if (validity === 'err' && !(b && b.len !== n)) validity = 'any';
    }
    const { value: options, validity: ov } = opts(o);
    validity = combine(validity, ov, k.validity);
    if (n === 0 && validity === 'ok') validity = 'any'; // an empty operator: results are empty, or a clear error
    return { kind: 'estimator', est, n, mat, form, seed, k: k.value, b, options, validity };
  },
  run(s, ctx) {
    const { H } = ctx;
    const n = s.n as number;
    const A = matrix(n, s.mat, s.seed);
    const form = s.form as OpForm;
    const op: unknown =
      form === 'dense' || form === 'bad-data' || form === 'bad-size'
        ? { size: form === 'bad-size' ? n + 0.5 : n, data: form === 'bad-data' ? A.slice(1) : A }
        : {
            size: n,
            matvec: (x: Float64Array, out: Float64Array) => {
              const y = matvec(A, n, x);
              if (form === 'matvecOut') return void out.set(y);
              if (form === 'bad-len') return y.slice(1);
              if (form === 'bad-throw') throw new Error('user matvec failed');
              if (form === 'bad-nan') return y.map(() => NaN);
              if (form === 'bad-string') return 'oops' as unknown as Float64Array;
              return Array.from(y);
            },
          };
    const o = { ...(s.options ?? {}) } as Record<string, unknown>;
    if (o.x0 && typeof o.x0 === 'object' && 'len' in o.x0) o.x0 = Float64Array.from({ length: (o.x0 as { len: number }).len }, (_, i) => fillValue('small', i, 3));
    const bvec = s.b ? Float64Array.from({ length: s.b.len }, (_, i) => fillValue(s.b.fill, i, 4)) : undefined;
    const X = H as unknown as Record<string, (...a: unknown[]) => any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const callIt = () => {
      switch (s.est as (typeof ESTIMATORS)[number]) {
        case 'eigenvalues':
        case 'powerIteration':
          return X[s.est]!(op, s.k, o);
        case 'trace':
        case 'diagonal':
        case 'spectralDensity':
          return X[s.est]!(op, o);
        case 'cg':
        case 'minres':
          return X[s.est]!(op, bvec, o);
        case 'eigh':
          return H.eigh(A, s.nArg);
      }
    };
    const res = ctx.attempt(s.est, s.validity, callIt, `n ${n}, ${form}, ${litOpts(o)}`);
    if (!res || s.validity === 'err' || form.startsWith('bad') || n === 0) return;
    const ref = jacobiEigenvalues(A, n);
    const anorm = Math.max(...Array.from(ref, Math.abs), 1e-300);
    const nearEig = (x: number, slack: number) => ref.some((l) => Math.abs(l - x) <= slack);
    ctx.check(s.est, () => {
      switch (s.est as (typeof ESTIMATORS)[number]) {
        case 'eigenvalues': {
          if (s.mat === 'nonsym') return;
          const k = s.k as number;
          const which = o.which ?? 'largest';
          if (res.values.length !== Math.min(k, n) && res.values.length !== k) fail(`eigenvalues: ${res.values.length} values for k = ${k}, n = ${n}`);
          expectFinite('eigenvalues values', res.values);
          const etol = Math.max(1e-6, 10 * ((o.tol as number) ?? 1e-8));
          for (const v of res.values) if (!nearEig(v, etol * anorm + anorm * (res.converged ? 0 : 1))) fail(`eigenvalues: ${v} is no eigenvalue of A (spectrum ${Array.from(ref).map((x) => x.toPrecision(6)).join(', ')})`);
          if (res.converged && res.values.length === Math.min(k, n) && k <= n) {
            const asc = Array.from(ref);
            const want = which === 'largest' ? asc.slice(-k).reverse() : which === 'smallest' ? asc.slice(0, k) : [...asc.slice(0, Math.floor(k / 2)), ...asc.slice(n - Math.ceil(k / 2))];
            if (!distinct(asc)) return;
            expectClose(`eigenvalues (${which}, converged)`, res.values, want, 0, etol * anorm);
          }
          if (o.vectors === true && res.converged && res.vectors) {
            if (res.vectors.length !== res.values.length * n) fail(`eigenvalues: vectors has ${res.vectors.length} values for ${res.values.length}×${n}`);
            res.values.forEach((l: number, j: number) => {
              const vj = res.vectors.slice(j * n, (j + 1) * n);
              const av = matvec(A, n, vj);
              const r = norm(av.map((x, i) => x - l * vj[i]!));
              if (!(r <= 10 * etol * anorm * norm(vj) + 1e-12)) fail(`eigenvalues: converged, but ‖Av − λv‖ = ${r} for λ = ${l} (tol ${o.tol ?? 1e-8})`);
            });
          }
          return;
        }
        case 'powerIteration': {
          if (s.mat === 'nonsym') return;
          expectFinite('powerIteration values', res.values);
          if (res.values.length > Math.min(s.k, n) || res.values.length < Math.min(s.k, n) && res.converged) fail(`powerIteration: ${res.values.length} values for k = ${s.k}, n = ${n}`);
          if (res.converged) for (const v of res.values) if (!nearEig(v, 1e-2 * anorm)) fail(`powerIteration: converged to ${v}, no eigenvalue of A (spectrum ${Array.from(ref).map((x) => x.toPrecision(6)).join(', ')})`);
          return;
        }
        case 'trace': {
          const tr = Array.from({ length: n }, (_, i) => A[i * n + i]!).reduce((a, b) => a + b, 0);
          let off = 0;
          for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += Math.abs(A[i * n + j]!);
          const bound = o.method === 'hutchinson' ? off : n * n * anorm;
          if (!Number.isFinite(res.trace) || !(Math.abs(res.trace - tr) <= bound * (1 + 1e-9) + 1e-9 * (1 + Math.abs(tr)))) fail(`trace: ${res.trace}, exact ${tr}, beyond the worst case ${bound}`);
          // NaN is the honest standard error of fewer than 2 random probes that are not exact:
          // Hutchinson with 1 sample, or Hutch++ whose m products leave m − 2⌊m/3⌋ < 2 probes
          // while its ⌊m/3⌋-dimensional sketch is not the whole space.
          const m = (o.samples as number | undefined) ?? 99;
          const fewProbes = o.method === 'hutchinson' ? m === 1 && n > 1 : m - 2 * Math.floor(m / 3) < 2 && Math.floor(m / 3) < n;
          if (!(res.stdError >= 0) && !fewProbes) fail(`trace: stdError ${res.stdError} (${o.method ?? 'hutch++'}, ${o.samples ?? 99} samples)`);
          return;
        }
        case 'diagonal': {
          if (res.diagonal.length !== n) fail(`diagonal: ${res.diagonal.length} values, n = ${n}`);
          for (let i = 0; i < n; i++) {
            let off = 0;
            for (let j = 0; j < n; j++) if (j !== i) off += Math.abs(A[i * n + j]!);
            const d = res.diagonal[i];
            if (!(Math.abs(d - A[i * n + i]!) <= off * (1 + 1e-9) + 1e-12)) fail(`diagonal[${i}] = ${d}, exact ${A[i * n + i]}, beyond the worst case ±${off}`);
          }
          return;
        }
        case 'spectralDensity': {
          if (s.mat === 'nonsym') return;
          const gp = (o.gridPoints ?? 1000) as number;
          if (res.grid.length !== gp || res.density.length !== gp) fail(`spectralDensity: grid ${res.grid.length} / density ${res.density.length} points, gridPoints ${gp}`);
          expectFinite('spectralDensity density', res.density);
          expectFinite('spectralDensity grid', res.grid);
          for (const d of res.density) if (d < -1e-12) fail(`spectralDensity: negative density ${d}`);
          for (const x of res.nodes) if (!(x >= ref[0]! - 1e-6 * anorm && x <= ref[n - 1]! + 1e-6 * anorm)) fail(`spectralDensity: Ritz node ${x} outside the spectrum [${ref[0]}, ${ref[n - 1]}]`);
          for (const w of res.weights) if (!(w >= -1e-12)) fail(`spectralDensity: negative weight ${w}`);
          return;
        }
        case 'cg':
        case 'minres': {
          if (s.b.fill === 'special' || s.mat === 'nonsym') return;
          const shift = (s.est === 'cg' ? o.damping : o.shift) as number | undefined ?? 0;
          if (res.x.length !== n) fail(`${s.est}: x has ${res.x.length} values, n = ${n}`);
          const ax = matvec(A, n, res.x).map((v, i) => v + shift * res.x[i]! - bvec![i]!);
          const rn = norm(ax);
          const bn = norm(bvec!);
          const rtol = (o.rtol ?? (s.est === 'cg' ? 1e-6 : 1e-8)) as number;
          const atol = (o.atol ?? 0) as number;
          if (res.converged && !(rn <= Math.max(rtol * bn, atol) * 1.5 + 1e-9 * anorm * norm(res.x) + 1e-12)) fail(`${s.est}: converged but ‖(A + ${shift}I)x − b‖ = ${rn} > ${Math.max(rtol * bn, atol)}`);
          if (!(Math.abs(res.residualNorm - rn) <= 1e-6 * (bn + anorm * norm(res.x)) + 1e-3 * rn)) fail(`${s.est}: reported residualNorm ${res.residualNorm}, true ${rn}`);
          return;
        }
        case 'eigh': {
          expectClose('eigh values vs Jacobi', res.values, ref, 0, 1e-10 * anorm);
          for (let j = 0; j < n; j++) {
            const vj = res.vectors.slice(j * n, (j + 1) * n);
            const r = norm(matvec(A, n, vj).map((x: number, i: number) => x - res.values[j] * vj[i]!));
            if (!(r <= 1e-9 * anorm) || Math.abs(norm(vj) - 1) > 1e-9) fail(`eigh: pair ${j} has ‖Av − λv‖ = ${r}, ‖v‖ = ${norm(vj)}`);
          }
        }
      }
    });
  },
  code(s) {
    const A = `matrix(${s.n}, '${s.mat}', ${s.seed})`;
    const op =
      s.form === 'dense' ? `{ size: ${s.n}, data: ${A} }`
      : s.form === 'bad-data' ? `{ size: ${s.n}, data: ${A}.slice(1) }`
      : s.form === 'bad-size' ? `{ size: ${s.n + 0.5}, data: ${A} }`
      : `{ size: ${s.n}, matvec: ${{ matvec: '(v) => A·v (as an array)', matvecOut: '(v, out) => { out.set(A·v) }', 'bad-len': '(v) => (A·v).slice(1)', 'bad-throw': "() => { throw new Error('user matvec failed') }", 'bad-nan': '(v) => v.map(() => NaN)', 'bad-string': "() => 'oops'" }[s.form as string]} }  /* A = ${A} */`;
    if (s.est === 'eigh') return `eigh(${A}, ${lit(s.nArg)})`;
    const o = litOpts(s.options).replace(/x0: \{ len: (\d+) \}/, "x0: vec($1, 'small', 3)");
    const bv = s.b ? `vec(${s.b.len}, '${s.b.fill}', 4)` : '';
    if (s.est === 'cg' || s.est === 'minres') return `${s.est}(${op}, ${bv}, ${o})`;
    if (s.est === 'eigenvalues' || s.est === 'powerIteration') return `${s.est}(${op}, ${lit(s.k)}, ${o})`;
    return `${s.est}(${op}, ${o})`;
  },
};

function distinct(asc: number[]): boolean {
  const scale = Math.max(...asc.map(Math.abs), 1e-300);
  return asc.every((x, i) => i === 0 || x - asc[i - 1]! > 1e-6 * scale);
}

// ---- lifecycle: use after dispose ---------------------------------------------------------------

const LIFECYCLE = ['unary', 'binary', 'matmul', 'toArray', 'reshape', 'grad', 'hvp', 'objective', 'kfac', 'double'] as const;

const lifecycle: Kind = {
  gen(r) {
    return { kind: 'lifecycle', what: r.pick(LIFECYCLE), dt: dtypeOf(r) };
  },
  run(s, ctx, live) {
    const { H } = ctx;
    const t = T(H, { shape: [2, 2], dtype: s.dt, fill: 'rand', seed: 1 }, live);
    const other = T(H, { shape: [2, 2], dtype: s.dt, fill: 'rand', seed: 2 }, live);
    const disposedCode = (op: string, fn: () => unknown) => {
      try {
        fn();
        ctx.findings.push({ cls: 'accepted-invalid', op, detail: 'returned after dispose()' });
      } catch (e) {
        ctx.judgeError(op, 'err', e, 'after dispose()');
        if (e instanceof H.HesseError && e.code !== 'DISPOSED') ctx.findings.push({ cls: 'bad-error', op, error: e.code, detail: `after dispose(): code ${e.code}, expected DISPOSED: ${e.message}` });
      }
    };
    if (s.what === 'objective' || s.what === 'kfac') {
      const obj = H.objective(H.nn.sequential([H.nn.linear(2, 2)]), 'mse', { x: t, y: other });
      if (s.what === 'objective') {
        obj.dispose();
        disposedCode('objective.loss', () => obj.loss());
        disposedCode('objective.operator', () => H.eigenvalues(obj.operator('ggn'), 1));
        ctx.attempt('objective.dispose (twice)', 'ok', () => obj.dispose());
      } else {
        const k = obj.kfac();
        obj.dispose();
        ctx.attempt('kfac.mvp (objective disposed)', 'ok', () => k.mvp(new Float64Array(6)));
        k.dispose();
        disposedCode('kfac.mvp', () => k.mvp(new Float64Array(6)));
        ctx.attempt('kfac.dispose (twice)', 'ok', () => k.dispose());
      }
      return;
    }
    t.dispose();
    if (s.what === 'double') {
      ctx.attempt('dispose (twice)', 'ok', () => t.dispose());
      ctx.check('disposed', () => {
        if (!t.disposed) fail('disposed is false after dispose()');
        if (!/disposed/.test(String(t))) fail(`toString of a disposed tensor: ${String(t)}`);
      });
      return;
    }
    const f = (x: never) => H.sum(H.square(x));
    const call = {
      unary: () => H.tanh(t),
      binary: () => H.add(other, t),
      matmul: () => H.matmul(other, t),
      toArray: () => t.toArray(),
      reshape: () => H.reshape(t, [4]),
      grad: () => H.grad(f)(t as never),
      hvp: () => H.hvp(f, other as never, t as never),
    }[s.what as 'unary'];
    disposedCode(s.what, call);
  },
  code(s) {
    const pre = `const t = T([2, 2], '${s.dt}', 'rand', 1), other = T([2, 2], '${s.dt}', 'rand', 2);`;
    if (s.what === 'objective') return `${pre}\nconst obj = objective(nn.sequential([nn.linear(2, 2)]), 'mse', { x: t, y: other });\nobj.dispose();\nobj.loss(); eigenvalues(obj.operator('ggn'), 1); obj.dispose();`;
    if (s.what === 'kfac') return `${pre}\nconst k = objective(nn.sequential([nn.linear(2, 2)]), 'mse', { x: t, y: other }).kfac();\nk.dispose();\nk.mvp(new Float64Array(6));`;
    const call = { unary: 'tanh(t)', binary: 'add(other, t)', matmul: 'matmul(other, t)', toArray: 't.toArray()', reshape: 'reshape(t, [4])', grad: 'grad((x) => sum(square(x)))(t)', hvp: 'hvp((x) => sum(square(x)), other, t)', double: 't.dispose()' }[s.what as 'unary'];
    return `${pre}\nt.dispose();\n${call};  // expected: HesseError DISPOSED`;
  },
};

/** The tensor-level step kinds (objective.ts adds the objectives; suite.ts weighs them). */
export const KINDS = { create, unary, binary, reduce, gemm, matmulNd, layout, indexOps, rowwise, conv, pool, traced, estimator, lifecycle };

export type { Kind };
