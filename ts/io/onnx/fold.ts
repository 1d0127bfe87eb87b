/**
 * Constant folding: ops whose inputs are all known at import time (initializers that are not
 * parameters, Constant nodes, shapes of traced tensors) are evaluated here, with ONNX's
 * semantics for the element class: integer Div truncates toward zero (C semantics, as ONNX's
 * reference and onnxruntime do: −7 / 2 = −3), integer Cast truncates, comparisons give bools.
 * This is how the exporter's shape arithmetic (Shape → Gather → Add/Div/Mul → Concat/Unsqueeze
 * → Slice/Reshape/Expand) becomes plain numbers: every shape is static once the input's is.
 * `foldable(op)` says which ops fold; `fold` returns undefined for an op it does not fold.
 */
import { DT, elemClass, invalidNode, konst, tensorValues, type Attrs, type Const, type ElemClass } from './decode.js';
import { HesseError } from '../../errors.js';

/** Product of dims. */
export const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Row-major strides. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let k = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = k;
    k *= shape[i]!;
  }
  return s;
}

/** NumPy/ONNX multidirectional broadcasting of shapes; undefined if they do not broadcast. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] | undefined {
  const r = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    let d = 1;
    for (const s of shapes) {
      const e = s[s.length - r + i] ?? 1;
      if (e === 1) continue;
      if (d !== 1 && d !== e) return undefined;
      d = e;
    }
    out.push(d);
  }
  return out;
}

/** For each flat index of `out`, the flat index of the element of `shape` broadcast to it. */
function broadcastIndex(shape: readonly number[], out: readonly number[]): Int32Array {
  const n = numel(out);
  const idx = new Int32Array(n);
  const st = strides(shape);
  const pad = out.length - shape.length;
  const ost = strides(out);
  for (let f = 0; f < n; f++) {
    let src = 0;
    for (let a = 0; a < out.length; a++) {
      const c = Math.floor(f / ost[a]!) % out[a]!;
      const d = shape[a - pad];
      if (d !== undefined && d !== 1) src += c * st[a - pad]!;
    }
    idx[f] = src;
  }
  return idx;
}

/** An elementwise op on broadcast constants. */
function elementwise(where: string, cs: Const[], elem: ElemClass, f: (...v: number[]) => number): Const {
  const out = broadcastShapes(...cs.map((c) => c.shape));
  if (!out) invalidNode(where, `shapes ${cs.map((c) => `[${c.shape.join(', ')}]`).join(', ')} do not broadcast`);
  const maps = cs.map((c) => broadcastIndex(c.shape, out!));
  const n = numel(out!);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = f(...cs.map((c, k) => c.data[maps[k]![i]!]!));
  return konst(out!, data, elem);
}

/** The class of a result of arithmetic on `cs`: float if any operand is. */
const arithClass = (cs: Const[]): ElemClass => (cs.some((c) => c.elem === 'float') ? 'float' : 'int');

/** An axis in [-r, r): normalized, or MALFORMED_FILE. */
export function normAxis(a: number, r: number, where: string, what = 'axis'): number {
  if (!Number.isInteger(a) || a < -r || a >= r) invalidNode(where, `${what} ${a} is out of range for rank ${r} (valid: ${-r}..${r - 1})`);
  return a < 0 ? a + r : a;
}

/**
 * ONNX Slice's per-axis window: start, step and count after clamping (negative starts/ends count
 * from the end; steps may be negative; INT64_MAX/MIN ends mean "to the end").
 */
export function sliceWindow(dim: number, start: number, end: number, step: number): { start: number; step: number; count: number } {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (step > 0) {
    start = Math.max(0, Math.min(dim, start));
    end = Math.max(0, Math.min(dim, end));
    return { start, step, count: Math.max(0, Math.ceil((end - start) / step)) };
  }
  start = Math.max(-1, Math.min(dim - 1, start));
  end = Math.max(-1, Math.min(dim - 1, end));
  return { start, step, count: Math.max(0, Math.ceil((end - start) / step)) };
}

/** Per output axis of a slice, the input indices it takes (all of the axis where not sliced). */
export function sliceIndices(shape: readonly number[], starts: readonly number[], ends: readonly number[], axes: readonly number[], steps: readonly number[], where: string): number[][] {
  const r = shape.length;
  const per = shape.map((d) => Array.from({ length: d }, (_, i) => i));
  const seen = new Set<number>();
  axes.forEach((a0, k) => {
    const a = normAxis(a0, r, where, 'axes entry');
    if (seen.has(a)) invalidNode(where, `axes [${axes.join(', ')}] repeat an axis`);
    seen.add(a);
    const step = steps[k] ?? 1;
    if (step === 0) invalidNode(where, 'a slice step is 0');
    const w = sliceWindow(shape[a]!, starts[k]!, ends[k]!, step);
    per[a] = Array.from({ length: w.count }, (_, i) => w.start + i * w.step);
  });
  return per;
}

/** The elements of `c` at the cartesian product of per-axis indices. */
export function takeProduct(c: Const, per: number[][]): Const {
  const shape = per.map((p) => p.length);
  const st = strides(c.shape);
  const n = numel(shape);
  const data = new Float64Array(n);
  const ost = strides(shape);
  for (let f = 0; f < n; f++) {
    let src = 0;
    for (let a = 0; a < shape.length; a++) src += per[a]![Math.floor(f / ost[a]!) % shape[a]!]! * st[a]!;
    data[f] = c.data[src]!;
  }
  return konst(shape, data, c.elem);
}

/** The inputs of Slice: opset ≥ 10 as inputs, before as attributes. */
export function sliceArgs(ins: (Const | undefined)[], a: Attrs, opset: number, rank: number): { starts: number[]; ends: number[]; axes: number[]; steps: number[] } {
  if (opset < 10) {
    const starts = a.ints('starts') ?? [];
    return { starts, ends: a.ints('ends') ?? [], axes: a.ints('axes') ?? starts.map((_, i) => i), steps: starts.map(() => 1) };
  }
  const starts = Array.from(ins[1]?.data ?? []);
  return {
    starts,
    ends: Array.from(ins[2]?.data ?? []),
    axes: ins[3] ? Array.from(ins[3].data) : starts.map((_, i) => i).filter((i) => i < rank),
    steps: ins[4] ? Array.from(ins[4].data) : starts.map(() => 1),
  };
}

/** Axes of Squeeze/Unsqueeze/Reduce*: an attribute before `inputFrom`, input 1 from it on. */
export function axesArg(ins: (Const | undefined)[], a: Attrs, opset: number, inputFrom: number): number[] | undefined {
  if (opset < inputFrom) return a.ints('axes');
  return ins[1] ? Array.from(ins[1].data) : undefined;
}

/** The output shape of Unsqueeze: ones inserted at `axes` (which index the result). */
export function unsqueezeShape(shape: readonly number[], axes: readonly number[], where: string): number[] {
  const r = shape.length + axes.length;
  const at = axes.map((x) => normAxis(x, r, where, 'axes entry')).sort((p, q) => p - q);
  if (new Set(at).size !== at.length) invalidNode(where, `axes [${axes.join(', ')}] repeat an axis`);
  const out = [...shape];
  for (const x of at) out.splice(x, 0, 1);
  return out;
}

/** The output shape of Squeeze: `axes` (or every 1) dropped. */
export function squeezeShape(shape: readonly number[], axes: readonly number[] | undefined, where: string): number[] {
  const drop = new Set((axes ?? shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((x) => normAxis(x, shape.length, where, 'axes entry')));
  for (const x of drop) if (shape[x] !== 1) invalidNode(where, `cannot squeeze axis ${x} of size ${shape[x]} (shape [${shape.join(', ')}])`);
  return shape.filter((_, i) => !drop.has(i));
}

/**
 * The shape ONNX Reshape produces from `spec`: 0 copies the input's dimension (unless allowzero),
 * one -1 takes what is left. A spec that cannot hold the input's values is SHAPE_MISMATCH naming the node.
 */
export function reshapeTarget(from: readonly number[], spec: readonly number[], allowzero: boolean, where: string): number[] {
  const shown = `[${spec.join(', ')}]`;
  if (spec.some((d) => !Number.isSafeInteger(d) || d < -1)) invalidNode(where, `the target shape ${shown} has an entry that is not an integer ≥ -1`);
  if (spec.filter((d) => d === -1).length > 1) invalidNode(where, `the target shape ${shown} has more than one -1`);
  const dims = spec.map((d, i) => {
    if (d !== 0 || allowzero) return d;
    if (i >= from.length) invalidNode(where, `the target shape ${shown} copies dimension ${i} (a 0), but the input [${from.join(', ')}] has rank ${from.length}`);
    return from[i]!;
  });
  const size = numel(from);
  const known = dims.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
  if (dims.includes(-1) ? known === 0 || size % known !== 0 : known !== size) {
    throw new HesseError('SHAPE_MISMATCH', `ONNX ${where}: cannot reshape [${from.join(', ')}] (${size} values) to ${shown}; is the input the shape the model was exported for?`);
  }
  return dims.map((d) => (d === -1 ? size / known : d));
}

/** ONNX Expand's output shape: bidirectional broadcasting of the input with `shape`. */
export function expandShape(from: readonly number[], to: readonly number[], where: string): number[] {
  const out = broadcastShapes(from, to);
  if (!out) invalidNode(where, `cannot expand [${from.join(', ')}] to [${to.join(', ')}]`);
  return out!;
}

/** The permutation of Transpose (default: reversed axes), checked against the rank. */
export function transposePerm(a: Attrs, shape: readonly number[], where: string): number[] {
  const rank = shape.length;
  const perm = a.ints('perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  if (perm.length !== rank) invalidNode(where, `perm [${perm.join(', ')}] has ${perm.length} entries for an input of shape [${shape.join(', ')}]`);
  if (!perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank) || new Set(perm).size !== rank) {
    invalidNode(where, `perm [${perm.join(', ')}] is not a permutation of the ${rank} axes`);
  }
  return perm;
}

/** The ops `fold` evaluates on constants. */
const FOLDS = new Set([
  'Constant', 'Identity', 'Cast', 'CastLike', 'Shape', 'Size', 'Gather', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten', 'Concat', 'Slice', 'Transpose', 'Expand',
  'ConstantOfShape', 'Range', 'Add', 'Sub', 'Mul', 'Div', 'Mod', 'Neg', 'Abs', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Min', 'Max', 'Pow', 'Equal', 'Less',
  'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor', 'Where', 'ReduceProd', 'ReduceSum', 'Dropout', 'Trilu', 'Exp', 'Log', 'Tanh',
]);

/** Float math that folds on constants (ops that also have a rule for traced inputs). */
const MATH: Record<string, (v: number) => number> = { Exp: Math.exp, Log: Math.log, Tanh: Math.tanh };
/** Whether `fold` evaluates `op` when all its inputs are constants. */
export const foldable = (op: string) => FOLDS.has(op);

/**
 * Trilu's keep-mask over the last two axes of `shape` (opset 14): element (…, i, j) is kept when
 * j − i ≥ k (upper = 1, torch.triu(x, k)) or j − i ≤ k (upper = 0, torch.tril(x, k)).
 */
export function triluMask(shape: readonly number[], k: number, upper: boolean, where: string): Float64Array {
  if (shape.length < 2) invalidNode(where, `Trilu needs an input of rank ≥ 2, got shape [${shape.join(', ')}]`);
  if (!Number.isSafeInteger(k)) invalidNode(where, `k must be an integer, got ${k}`);
  const [M, N] = [shape[shape.length - 2]!, shape[shape.length - 1]!];
  const mask = new Float64Array(numel(shape));
  for (let f = 0; f < mask.length; f++) {
    const j = f % N;
    const i = Math.floor(f / N) % M;
    mask[f] = (upper ? j - i >= k : j - i <= k) ? 1 : 0;
  }
  return mask;
}

/** Trilu's k: the optional scalar input 1 (default 0). */
export function triluK(k: Const | undefined, where: string): number {
  if (!k) return 0;
  if (k.data.length !== 1) invalidNode(where, `k must be a scalar, got shape [${k.shape.join(', ')}]`);
  return k.data[0]!;
}

/** C-style integer division (truncation toward zero), as ONNX integer Div. */
const truncDiv = (p: number, q: number, where: string) => {
  if (q === 0) invalidNode(where, 'integer division by zero in shape arithmetic');
  return Math.trunc(p / q);
};

/**
 * Evaluates `op` on constant inputs (`ins[i]` undefined for an omitted optional input).
 * Returns the outputs, or undefined when the op does not fold.
 */
export function fold(op: string, ins: (Const | undefined)[], a: Attrs, opset: number, where: string): Const[] | undefined {
  const c = (i: number): Const => ins[i] ?? invalidNode(where, `input ${i} is missing`);
  const arith = (f: (p: number, q: number) => number, intF?: (p: number, q: number) => number) => {
    const cls = arithClass([c(0), c(1)]);
    return [elementwise(where, [c(0), c(1)], cls, cls === 'int' && intF ? intF : f)];
  };
  const cmp = (f: (p: number, q: number) => boolean) => [elementwise(where, [c(0), c(1)], 'bool', (p, q) => (f(p, q) ? 1 : 0))];
  switch (op) {
    case 'Constant': {
      const t = a.tensor('value');
      if (t) return [tensorValues(t, `Constant '${where}'`)];
      if (a.has('value_float')) return [konst([], [a.flt('value_float', 0)], 'float')];
      if (a.has('value_floats')) return [konst([a.floats('value_floats')!.length], a.floats('value_floats')!, 'float')];
      if (a.has('value_int')) return [konst([], [a.int('value_int', 0)], 'int')];
      if (a.has('value_ints')) return [konst([a.ints('value_ints')!.length], a.ints('value_ints')!, 'int')];
      return invalidNode(where, 'a Constant needs a value (value, value_float(s) or value_int(s))');
    }
    case 'Identity':
      return [c(0)];
    case 'Dropout':
      // On constants (no training-mode randomness can be meant for them): identity, mask all true.
      return [c(0), konst(c(0).shape, new Float64Array(numel(c(0).shape)).fill(1), 'bool')];
    case 'Cast':
    case 'CastLike': {
      const to = op === 'Cast' ? a.int('to', 0) : undefined;
      const cls = op === 'CastLike' ? c(1).elem : elemClass(to!);
      if (!cls) throw new HesseError('UNSUPPORTED_OP', `ONNX ${where}: Cast to data type ${to} is not supported`);
      const x = c(0);
      // Float → integer truncates toward zero (C cast); anything → bool is ≠ 0; float32 targets round.
      const f = cls === 'int' ? Math.trunc : cls === 'bool' ? (v: number) => (v !== 0 ? 1 : 0) : to === DT.FLOAT ? Math.fround : (v: number) => v;
      return [konst(x.shape, x.data.map(f), cls)];
    }
    case 'Shape': {
      const s = c(0).shape;
      const r = s.length;
      const clamp = (v: number) => Math.max(0, Math.min(r, v < 0 ? v + r : v));
      const sl = s.slice(clamp(a.int('start', 0)), a.has('end') ? clamp(a.int('end', r)) : r);
      return [konst([sl.length], sl, 'int')];
    }
    case 'Size':
      return [konst([], [numel(c(0).shape)], 'int')];
    case 'Gather': {
      const [x, idx] = [c(0), c(1)];
      const axis = normAxis(a.int('axis', 0), x.shape.length, where);
      const n = x.shape[axis]!;
      const bad = idx.data.find((i) => !Number.isInteger(i) || i < -n || i >= n);
      if (bad !== undefined) invalidNode(where, `index ${bad} is out of range for axis ${axis} of size ${n}`);
      // numpy.take: out = x[:axis] + idx.shape + x[axis+1:].
      const outer = numel(x.shape.slice(0, axis));
      const inner = numel(x.shape.slice(axis + 1));
      const data: number[] = [];
      for (let o = 0; o < outer; o++) for (const i of idx.data) for (let k = 0; k < inner; k++) data.push(x.data[(o * n + (i < 0 ? i + n : i)) * inner + k]!);
      return [konst([...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)], data, x.elem)];
    }
    case 'Unsqueeze': {
      const axes = axesArg(ins, a, opset, 13);
      if (!axes) return invalidNode(where, 'Unsqueeze needs axes');
      return [konst(unsqueezeShape(c(0).shape, axes, where), c(0).data, c(0).elem)];
    }
    case 'Squeeze':
      return [konst(squeezeShape(c(0).shape, axesArg(ins, a, opset, 13), where), c(0).data, c(0).elem)];
    case 'Reshape':
      return [konst(reshapeTarget(c(0).shape, Array.from(c(1).data), a.flag('allowzero', false), where), c(0).data, c(0).elem)];
    case 'Flatten': {
      const s = c(0).shape;
      const ax = a.int('axis', 1);
      const k = ax < 0 ? ax + s.length : ax;
      if (k < 0 || k > s.length) invalidNode(where, `axis ${ax} is out of range for rank ${s.length}`);
      return [konst([numel(s.slice(0, k)), numel(s.slice(k))], c(0).data, c(0).elem)];
    }
    case 'Concat': {
      const xs = ins.filter((x): x is Const => !!x);
      const r = xs[0]!.shape.length;
      const axis = normAxis(a.int('axis', 0), r, where);
      for (const x of xs) {
        if (x.shape.length !== r || x.shape.some((d, i) => i !== axis && d !== xs[0]!.shape[i])) invalidNode(where, `cannot concatenate [${xs.map((q) => `[${q.shape.join(', ')}]`).join(', ')}] on axis ${axis}`);
      }
      const outer = numel(xs[0]!.shape.slice(0, axis));
      const data: number[] = [];
      for (let o = 0; o < outer; o++) {
        for (const x of xs) {
          const blk = numel(x.shape.slice(axis));
          for (let k = 0; k < blk; k++) data.push(x.data[o * blk + k]!);
        }
      }
      const shape = [...xs[0]!.shape];
      shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
      return [konst(shape, data, arithClass(xs) === 'float' ? 'float' : xs[0]!.elem)];
    }
    case 'Slice': {
      const x = c(0);
      const s = sliceArgs(ins, a, opset, x.shape.length);
      return [takeProduct(x, sliceIndices(x.shape, s.starts, s.ends, s.axes, s.steps, where))];
    }
    case 'Transpose': {
      const x = c(0);
      const perm = transposePerm(a, x.shape, where);
      const shape = perm.map((p) => x.shape[p]!);
      const st = strides(x.shape);
      const ost = strides(shape);
      const data = new Float64Array(numel(shape));
      for (let f = 0; f < data.length; f++) {
        let src = 0;
        for (let k = 0; k < shape.length; k++) src += (Math.floor(f / ost[k]!) % shape[k]!) * st[perm[k]!]!;
        data[f] = x.data[src]!;
      }
      return [konst(shape, data, x.elem)];
    }
    case 'Expand': {
      const out = expandShape(c(0).shape, Array.from(c(1).data), where);
      const m = broadcastIndex(c(0).shape, out);
      return [konst(out, Array.from(m, (i) => c(0).data[i]!), c(0).elem)];
    }
    case 'ConstantOfShape': {
      const shape = Array.from(c(0).data);
      if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) invalidNode(where, `shape [${shape.join(', ')}] must hold integers ≥ 0`);
      const t = a.tensor('value');
      const v = t ? tensorValues(t, where) : konst([1], [0], 'float');
      if (v.data.length !== 1) invalidNode(where, 'value must hold one element');
      return [konst(shape, new Float64Array(numel(shape)).fill(v.data[0]!), v.elem)];
    }
    case 'Range': {
      const [s, l, d] = [c(0).data[0]!, c(1).data[0]!, c(2).data[0]!];
      if (d === 0) invalidNode(where, 'Range with delta 0');
      const n = Math.max(0, Math.ceil((l - s) / d));
      return [konst([n], Array.from({ length: n }, (_, i) => s + i * d), arithClass([c(0), c(1), c(2)]))];
    }
    case 'Add':
      return arith((p, q) => p + q);
    case 'Sub':
      return arith((p, q) => p - q);
    case 'Mul':
      return arith((p, q) => p * q);
    case 'Div':
      return arith((p, q) => p / q, (p, q) => truncDiv(p, q, where));
    case 'Mod': {
      // fmod = 0: the sign of the divisor (Python); fmod = 1: of the dividend (C fmod).
      const fm = a.int('fmod', 0) === 1;
      return arith((p, q) => (fm ? p % q : p - Math.floor(p / q) * q));
    }
    case 'Pow':
      return [elementwise(where, [c(0), c(1)], c(0).elem, (p, q) => p ** q)];
    case 'Min':
    case 'Max': {
      const xs = ins.filter((x): x is Const => !!x);
      return [elementwise(where, xs, arithClass(xs), op === 'Min' ? Math.min : Math.max)];
    }
    case 'Neg':
      return [konst(c(0).shape, c(0).data.map((v) => -v), c(0).elem)];
    case 'Abs':
      return [konst(c(0).shape, c(0).data.map(Math.abs), c(0).elem)];
    case 'Floor':
      return [konst(c(0).shape, c(0).data.map(Math.floor), c(0).elem)];
    case 'Ceil':
      return [konst(c(0).shape, c(0).data.map(Math.ceil), c(0).elem)];
    case 'Sqrt':
      return [konst(c(0).shape, c(0).data.map(Math.sqrt), 'float')];
    case 'Reciprocal':
      return [konst(c(0).shape, c(0).data.map((v) => 1 / v), 'float')];
    case 'Equal':
      return cmp((p, q) => p === q);
    case 'Less':
      return cmp((p, q) => p < q);
    case 'Greater':
      return cmp((p, q) => p > q);
    case 'LessOrEqual':
      return cmp((p, q) => p <= q);
    case 'GreaterOrEqual':
      return cmp((p, q) => p >= q);
    case 'And':
      return cmp((p, q) => p !== 0 && q !== 0);
    case 'Or':
      return cmp((p, q) => p !== 0 || q !== 0);
    case 'Xor':
      return cmp((p, q) => (p !== 0) !== (q !== 0));
    case 'Not':
      return [konst(c(0).shape, c(0).data.map((v) => (v === 0 ? 1 : 0)), 'bool')];
    case 'Where': {
      const cls = c(1).elem === 'float' || c(2).elem === 'float' ? 'float' : c(1).elem;
      return [elementwise(where, [c(0), c(1), c(2)], cls, (m, p, q) => (m !== 0 ? p : q))];
    }
    case 'Exp':
    case 'Log':
    case 'Tanh':
      return [konst(c(0).shape, c(0).data.map(MATH[op]!), 'float')];
    case 'Trilu': {
      const x = c(0);
      const m = triluMask(x.shape, triluK(ins[1], where), a.int('upper', 1) === 1, where);
      return [konst(x.shape, x.data.map((v, i) => (m[i] ? v : 0)), x.elem)];
    }
    case 'ReduceProd':
    case 'ReduceSum': {
      // Only full reductions of 1-D shape vectors (numel of a shape) fold.
      const x = c(0);
      if (x.shape.length !== 1) return undefined;
      const v = op === 'ReduceProd' ? x.data.reduce((p, q) => p * q, 1) : x.data.reduce((p, q) => p + q, 0);
      return [konst(a.int('keepdims', 1) === 1 ? [1] : [], [v], x.elem)];
    }
    default:
      return undefined;
  }
}
