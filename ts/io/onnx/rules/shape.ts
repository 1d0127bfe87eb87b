/**
 * Shape and indexing ops on traced tensors (their all-constant forms fold in fold.ts): Shape,
 * Flatten, Reshape, Transpose, Concat, (Un)Squeeze, Slice (steps, negative indices), Gather
 * (constant indices on a traced tensor; traced integer indices, i.e. embeddings, with the
 * engine's gather), Expand, Pad (constant mode), Split, Identity, Cast, Dropout, DepthToSpace /
 * SpaceToDepth (F.pixel_shuffle / pixel_unshuffle: reshape, transpose, reshape), CumSum (linear:
 * the axis moved last and multiplied by the constant triangular matrix U, U[i, j] = 1 where i ≤ j
 * (i ≥ j reversed; strictly for exclusive)).
 */
import * as ops from '../../../ops.js';
import { traced, type Sym } from '../../../trace.js';
import { konst, type Attrs } from '../decode.js';
import { axesArg, expandShape, normAxis, numel, reshapeTarget, sliceArgs, sliceIndices, squeezeShape, transposePerm, unsqueezeShape } from '../fold.js';
import { batchedMatmul, constant, padConstant, permute, reshape, sliceAxis, takeAlong } from './engine.js';
import { symv, type Ctx, type RuleTable, type Value } from './types.js';

/** x with each axis restricted to its index list (contiguous runs as slices). */
function takeProduct(x: Sym, per: number[][]): Sym {
  let y = x;
  per.forEach((idx, axis) => {
    const n = y.shape[axis]!;
    if (idx.length === n && idx.every((v, i) => v === i)) return;
    const contiguous = idx.every((v, i) => i === 0 || v === idx[i - 1]! + 1);
    y = contiguous && idx.length > 0 ? sliceAxis(y, axis, idx[0]!, idx.length) : takeAlong(y, axis, idx);
  });
  return y;
}

/** The Dropout rule's refusal of a random mask. */
function dropoutRatio(c: Ctx): { ratio: number; training: boolean } {
  if (c.opset < 12) return { ratio: c.a.flt('ratio', 0.5), training: false };
  const ratio = c.given(1) ? c.konst(1).data[0]! : 0.5;
  const training = c.given(2) ? c.konst(2).data[0]! !== 0 : false;
  return { ratio, training };
}

/** Load-time check of an axes attribute: no axis twice. */
const noRepeatedAxes = (a: Attrs, invalid: (why: string) => never) => {
  const axes = a.ints('axes');
  if (axes && new Set(axes).size !== axes.length) invalid(`axes [${axes.join(', ')}] repeat an axis`);
};

/** The shape family: shape and indexing ops on traced tensors. */
export const SHAPE: RuleTable = {
  DepthToSpace: {
    attrs: ['blocksize', 'mode'],
    check: (a, invalid) => {
      if (!(a.int('blocksize', 0) >= 1)) invalid(`blocksize must be ≥ 1, got ${a.int('blocksize', 0)}`);
      const m = a.str('mode', 'DCR');
      if (m !== 'DCR' && m !== 'CRD') invalid(`mode must be DCR or CRD, got '${m}'`);
    },
    build: (c) => {
      const x = c.sym(0);
      const b = c.a.int('blocksize', 1);
      if (x.shape.length !== 4 || x.shape[1]! % (b * b) !== 0) c.invalid(`the input must be [N, C, H, W] with C divisible by blocksize² = ${b * b}, got [${x.shape.join(', ')}]`);
      const [N, C, H, W] = x.shape as [number, number, number, number];
      const Co = C / (b * b);
      const dcr = c.a.str('mode', 'DCR') === 'DCR';
      const t = dcr ? permute(reshape(x, [N, b, b, Co, H, W]), [0, 3, 4, 1, 5, 2]) : permute(reshape(x, [N, Co, b, b, H, W]), [0, 1, 4, 2, 5, 3]);
      return symv(reshape(t, [N, Co, H * b, W * b]));
    },
  },
  SpaceToDepth: {
    attrs: ['blocksize'],
    check: (a, invalid) => {
      if (!(a.int('blocksize', 0) >= 1)) invalid(`blocksize must be ≥ 1, got ${a.int('blocksize', 0)}`);
    },
    build: (c) => {
      const x = c.sym(0);
      const b = c.a.int('blocksize', 1);
      if (x.shape.length !== 4 || x.shape[2]! % b !== 0 || x.shape[3]! % b !== 0) c.invalid(`the input must be [N, C, H, W] with H and W divisible by blocksize ${b}, got [${x.shape.join(', ')}]`);
      const [N, C, H, W] = x.shape as [number, number, number, number];
      return symv(reshape(permute(reshape(x, [N, C, H / b, b, W / b, b]), [0, 3, 5, 1, 2, 4]), [N, C * b * b, H / b, W / b]));
    },
  },
  CumSum: {
    attrs: ['exclusive', 'reverse'],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      const ax = c.konst(1);
      if (ax.data.length !== 1) c.invalid(`axis must be a scalar, got shape [${ax.shape.join(', ')}]`);
      const k = normAxis(ax.data[0]!, r, c.where);
      const L = x.shape[k]!;
      const [excl, rev] = [c.a.int('exclusive', 0) === 1, c.a.int('reverse', 0) === 1];
      const U = new Float64Array(L * L);
      for (let i = 0; i < L; i++) for (let j = 0; j < L; j++) U[i * L + j] = (rev ? (excl ? i > j : i >= j) : excl ? i < j : i <= j) ? 1 : 0;
      const perm = [...Array(r).keys()].filter((a) => a !== k).concat([k]);
      const inv = perm.map((_, i) => perm.indexOf(i));
      const xt = permute(x, perm);
      const y = batchedMatmul(r === 1 ? reshape(xt, [1, L]) : xt, constant(c.g, { shape: [L, L], data: U }));
      return symv(permute(r === 1 ? reshape(y, [L]) : y, inv));
    },
  },
  Identity: { attrs: [], build: (c) => c.ins[0]! },
  Shape: {
    attrs: ['start', 'end'],
    build: (c) => {
      const v = c.ins[0];
      if (!v) return c.invalid('Shape needs an input');
      // Any value's shape is known at import, integer data's (token ids) included.
      const s = v.kind === 'const' ? v.shape : v.sym.shape;
      const r = s.length;
      const clamp = (v: number) => Math.max(0, Math.min(r, v < 0 ? v + r : v));
      const sl = s.slice(clamp(c.a.int('start', 0)), c.a.has('end') ? clamp(c.a.int('end', r)) : r);
      return konst([sl.length], sl, 'int');
    },
  },
  Size: {
    attrs: [],
    build: (c) => {
      const v = c.ins[0];
      if (!v) return c.invalid('Size needs an input');
      return konst([], [(v.kind === 'const' ? v.shape : v.sym.shape).reduce((a, b) => a * b, 1)], 'int');
    },
  },
  Cast: {
    attrs: ['to', 'saturate'],
    build: (c) => {
      const to = c.a.int('to', 0);
      // Float to float (float32/float64/float16): the program has one dtype, so the identity.
      if (to === 1 || to === 10 || to === 11) {
        if (c.ins[0]?.kind === 'index') return c.fail(`Cast of the integer input (indices such as token ids) to a float (type ${to}) is not supported: integer data feeds only Gather indices`);
        return c.ins[0]!;
      }
      // Integer data (token ids) cast to another integer type: the same indices.
      if (c.ins[0]?.kind === 'index' && [2, 3, 4, 5, 6, 7, 12, 13].includes(to)) return c.ins[0];
      return c.fail(`Cast of a traced tensor to data type ${to} (not a float) has no derivative; hesse casts only constants (shape arithmetic) to integers`);
    },
  },
  Dropout: {
    attrs: ['ratio', 'seed', 'is_test'],
    constInputs: [1, 2],
    build: (c) => {
      const { ratio, training } = dropoutRatio(c);
      if (training && ratio > 0) {
        c.fail(`a training-mode Dropout with ratio ${ratio} draws a fresh random mask each run, so the function has no fixed derivative; export in eval mode (model.eval(), training=TrainingMode.EVAL), or with p = 0`);
      }
      const x = c.sym(0);
      return [symv(x), konst(x.shape, new Float64Array(x.size).fill(1), 'bool')];
    },
  },
  Flatten: {
    attrs: ['axis'],
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      const ax = c.a.int('axis', 1);
      const k = ax < 0 ? ax + r : ax;
      // Flatten's axis may equal the rank (everything in the leading dimension).
      if (k < 0 || k > r) c.invalid(`axis ${ax} is out of range for an input of shape [${x.shape.join(', ')}] (valid: ${-r}..${r})`);
      return symv(reshape(x, [numel(x.shape.slice(0, k)), numel(x.shape.slice(k))]));
    },
  },
  Reshape: {
    attrs: ['allowzero'],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      return symv(reshape(x, reshapeTarget(x.shape, Array.from(c.konst(1).data), c.a.flag('allowzero', false), c.where)));
    },
  },
  Transpose: {
    attrs: ['perm'],
    check: (a, invalid) => {
      const p = a.ints('perm');
      if (p && !(p.every((v) => Number.isInteger(v) && v >= 0 && v < p.length) && new Set(p).size === p.length)) invalid(`perm [${p.join(', ')}] is not a permutation of 0..${p.length - 1}`);
    },
    build: (c) => {
      const x = c.sym(0);
      return symv(permute(x, transposePerm(c.a, x.shape, c.where)));
    },
  },
  Concat: {
    attrs: ['axis'],
    build: (c) => {
      const xs = c.ins.map((_, i) => c.sym(i)).filter((s) => s.size > 0 || c.ins.length === 1);
      return symv(xs.length === 1 ? xs[0]! : traced.concat(c.g, xs, normAxis(c.a.int('axis', 0), xs[0]!.shape.length, c.where)));
    },
  },
  Unsqueeze: {
    attrs: ['axes'],
    check: noRepeatedAxes,
    constInputs: [1],
    build: (c) => {
      const axes = axesArg(c.ins.map((v) => (v?.kind === 'const' ? v : undefined)), c.a, c.opset, 13);
      if (!axes) c.invalid('Unsqueeze needs axes');
      return symv(reshape(c.sym(0), unsqueezeShape(c.sym(0).shape, axes!, c.where)));
    },
  },
  Squeeze: {
    attrs: ['axes'],
    check: noRepeatedAxes,
    constInputs: [1],
    build: (c) => {
      const axes = axesArg(c.ins.map((v) => (v?.kind === 'const' ? v : undefined)), c.a, c.opset, 13);
      return symv(reshape(c.sym(0), squeezeShape(c.sym(0).shape, axes, c.where)));
    },
  },
  Slice: {
    attrs: ['starts', 'ends', 'axes'],
    constInputs: [1, 2, 3, 4],
    build: (c) => {
      const x = c.sym(0);
      const consts = c.ins.map((v, i) => (i === 0 || !v ? undefined : c.konst(i)));
      const s = sliceArgs(consts, c.a, c.opset, x.shape.length);
      return symv(takeProduct(x, sliceIndices(x.shape, s.starts, s.ends, s.axes, s.steps, c.where)));
    },
  },
  Gather: {
    attrs: ['axis'],
    build: (c) => {
      const data = c.ins[0];
      const idx = c.ins[1];
      if (!data || !idx) return c.invalid('Gather needs data and indices');
      const r = data.kind === 'const' ? data.shape.length : data.sym.shape.length;
      const axis = normAxis(c.a.int('axis', 0), r, c.where);
      if (idx.kind === 'const') {
        const x = c.sym(0);
        const n = x.shape[axis]!;
        const bad = idx.data.find((i) => !Number.isInteger(i) || i < -n || i >= n);
        if (bad !== undefined) c.invalid(`index ${bad} is out of range for axis ${axis} of size ${n} (shape [${x.shape.join(', ')}])`);
        const flat = Array.from(idx.data, (i) => (i < 0 ? i + n : i));
        const y = takeAlong(x, axis, flat);
        return symv(reshape(y, [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)]));
      }
      // Indices from the data (token ids): the engine's gather (linear in the table, VJP a scatter-add).
      if (idx.kind !== 'index') return c.fail('Gather indices computed from float tensors (an argmax, say) have no derivative and are not supported; indices must be constants or the integer input (token ids)');
      return symv(ops.gather(c.sym(0), idx.sym, axis));
    },
  },
  Expand: {
    attrs: [],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      const out = expandShape(x.shape, Array.from(c.konst(1).data), c.where);
      if (out.length === x.shape.length && out.every((d, i) => d === x.shape[i])) return symv(x);
      return symv(ops.expand(x, out));
    },
  },
  Pad: {
    attrs: ['mode', 'pads', 'value'],
    constInputs: [1, 2, 3],
    build: (c) => {
      const x = c.sym(0);
      const r = x.shape.length;
      const mode = c.a.str('mode', 'constant');
      if (mode !== 'constant') c.fail(`Pad mode '${mode}' is not supported (only 'constant')`);
      let pads = c.opset < 11 ? (c.a.ints('pads') ?? []) : Array.from(c.konst(1).data);
      const value = c.opset < 11 ? c.a.flt('value', 0) : c.given(2) ? c.konst(2).data[0] ?? 0 : 0;
      if (c.opset >= 18 && c.given(3)) {
        // pads for the listed axes only.
        const axes = Array.from(c.konst(3).data, (a) => normAxis(a, r, c.where, 'axes entry'));
        const full = new Array<number>(2 * r).fill(0);
        axes.forEach((a, k) => ((full[a] = pads[k]!), (full[a + r] = pads[k + axes.length]!)));
        pads = full;
      }
      if (pads.length !== 2 * r || pads.some((p) => !Number.isInteger(p))) c.invalid(`pads [${pads.join(', ')}] must hold 2 × rank ${r} integers`);
      if (pads.every((p) => p === 0)) return symv(x);
      if (pads.some((p) => p < 0)) c.fail(`negative pads [${pads.join(', ')}] (cropping) are not supported`);
      return symv(padConstant(x, pads, value));
    },
  },
  // Tile: the input concatenated repeats[a] times along each axis a.
  Tile: {
    attrs: [],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      const reps = Array.from(c.konst(1).data);
      if (reps.length !== x.shape.length || reps.some((r) => !Number.isInteger(r) || r < 0)) c.invalid(`repeats [${reps.join(', ')}] must hold one integer ≥ 0 per axis of [${x.shape.join(', ')}]`);
      let y = x;
      reps.forEach((r, a) => {
        if (r !== 1) y = traced.concat(c.g, Array(r).fill(y), a);
      });
      return symv(y);
    },
  },
  Split: {
    attrs: ['axis', 'split', 'num_outputs'],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      const axis = normAxis(c.a.int('axis', 0), x.shape.length, c.where);
      const n = x.shape[axis]!;
      let sizes = c.opset < 13 ? c.a.ints('split') : c.given(1) ? Array.from(c.konst(1).data) : undefined;
      if (!sizes) {
        const k = c.a.has('num_outputs') ? c.a.int('num_outputs', 1) : c.nOut;
        const each = Math.ceil(n / k);
        sizes = Array.from({ length: k }, (_, i) => Math.max(0, Math.min(each, n - i * each)));
      }
      if (sizes.reduce((s, v) => s + v, 0) !== n) c.invalid(`split sizes [${sizes.join(', ')}] do not add up to ${n}`);
      let at = 0;
      return sizes.map((s): Value => {
        const y = sliceAxis(x, axis, at, s);
        at += s;
        return symv(y);
      });
    },
  },
};
