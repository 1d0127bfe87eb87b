/**
 * Reductions: ReduceMean / ReduceSum / ReduceMax / ReduceMin (−max(−x)) / ReduceSumSquare (Σx²) /
 * ReduceL2 (√Σx²) / ReduceLogSumExp (m + log Σ e^(x−m), m the max) over several axes (axes an attribute before
 * opset 13 (Sum) / 18 (the others), an input from then on; noop_with_empty_axes), Softmax and
 * LogSoftmax on any axis (opset ≥ 13: that axis; before: the 2-D coercion, normalizing over
 * the flattened axes from `axis` on).
 */
import { axesArg, normAxis, numel } from '../fold.js';
import { traced } from '../../../trace.js';
import { act, add, reduceAxes, reshape, softmaxAxis, sub } from './engine.js';
import { symv, type Ctx, type Rule, type RuleTable } from './types.js';

/** The axes a Reduce* node reduces (normalized, distinct), or undefined for "none" (noop). */
function reduceAxesOf(c: Ctx, inputFrom: number): number[] | undefined {
  const x = c.sym(0);
  const r = x.shape.length;
  const axes = axesArg(c.ins.map((v, i) => (i > 0 && v?.kind === 'const' ? v : undefined)), c.a, c.opset, inputFrom);
  if (c.opset >= inputFrom && c.given(1) && c.ins[1]!.kind !== 'const') c.fail('the axes must be a constant known at import time');
  if (!axes || axes.length === 0) return c.a.int('noop_with_empty_axes', 0) === 1 ? undefined : [...Array(r).keys()];
  const at = axes.map((a) => normAxis(a, r, c.where, 'axes entry'));
  if (new Set(at).size !== at.length) c.invalid(`axes [${axes.join(', ')}] repeat an axis`);
  return at;
}

/** x → f(x) before the reduction, and g after it: ReduceSumSquare = Σx², ReduceL2 = √(Σx²) (F.normalize, torch.norm). */
const towers: Record<string, [string | undefined, string | undefined]> = { sum: [undefined, undefined], mean: [undefined, undefined], max: [undefined, undefined], sumsq: ['square', undefined], l2: ['square', 'sqrt'] };

const reduction = (kind: 'sum' | 'mean' | 'max' | 'sumsq' | 'l2' | 'min' | 'lse', inputFrom: number): Rule => ({
  attrs: ['axes', 'keepdims', 'noop_with_empty_axes'],
  constInputs: [1],
  check: (a) => void a.flag('keepdims', true),
  build: (c) => {
    const x = c.sym(0);
    const axes = reduceAxesOf(c, inputFrom);
    if (kind === 'min' || kind === 'lse') {
      if (!axes) return symv(x);
      const keep = c.a.flag('keepdims', true);
      // min(x) = −max(−x).
      if (kind === 'min') return symv(traced.scale(reduceAxes(traced.scale(x, -1), 'max', axes, keep), -1));
      // log Σ eˣ = m + log Σ e^(x − m), m = max(x) (any m gives the same value and derivatives; the max keeps e^(·) ≤ 1).
      const m = reduceAxes(x, 'max', axes, true);
      const y = add(m, act(reduceAxes(act(sub(x, m), 'exp'), 'sum', axes, true), 'log'));
      return symv(keep ? y : reshape(y, x.shape.filter((_, i) => !axes.includes(i))));
    }
    const [pre, post] = towers[kind]!;
    const op = kind === 'mean' || kind === 'max' ? kind : 'sum';
    const xp = pre ? act(x, pre) : x;
    if (!axes) return symv(post ? act(xp, post) : xp);
    const keep = c.a.flag('keepdims', true);
    const y = reduceAxes(xp, op, axes, keep);
    return symv(post ? act(y, post) : y);
  },
});

const softmax = (log: boolean): Rule => ({
  attrs: ['axis'],
  build: (c) => {
    const x = c.sym(0);
    const r = x.shape.length;
    if (c.opset >= 13) return symv(softmaxAxis(x, normAxis(c.a.int('axis', -1), r, c.where), log));
    const k = normAxis(c.a.int('axis', 1), r, c.where);
    const flat = reshape(x, [numel(x.shape.slice(0, k)), numel(x.shape.slice(k))]);
    return symv(reshape(softmaxAxis(flat, 1, log), x.shape));
  },
});

/** The reduce family: ReduceMean/Sum/Max/Min/SumSquare/L2/LogSumExp, Softmax, LogSoftmax. */
export const REDUCE: RuleTable = {
  ReduceMean: reduction('mean', 18),
  ReduceSum: reduction('sum', 13),
  ReduceMax: reduction('max', 18),
  ReduceSumSquare: reduction('sumsq', 18),
  ReduceL2: reduction('l2', 18),
  ReduceMin: reduction('min', 18),
  ReduceLogSumExp: reduction('lse', 18),
  Softmax: softmax(false),
  LogSoftmax: softmax(true),
};
