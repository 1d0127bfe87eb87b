/**
 * Linear algebra: Gemm (α·op(A)·op(B) + β·C, 2-D) and MatMul (NumPy semantics: 1-D operands
 * promoted and the added axis dropped, batch dims broadcast, so attention's Q·Kᵀ and A·V), and
 * Einsum of one or two operands (torch.einsum) as permutes, sums and one batched matmul: with
 * the letters classed as batch (both operands and the output), contracted (both, not the
 * output), left/right free (one operand and the output) and summed (one operand only, summed
 * first), out = permute(reshape(A[batch, lfree, con] · B[batch, con, rfree])). A letter repeated
 * within one operand (a diagonal) is refused.
 */
import type { Sym } from '../../../trace.js';
import { traced } from '../../../trace.js';
import { add, batchedMatmul, permute, reduceAxes, reshape } from './engine.js';
import { symv, type Ctx, type RuleTable } from './types.js';

/** The equation's operand and output letter lists, '...' expanded to letters of its rank. */
function parseEinsum(c: Ctx, eq: string, ranks: number[]): { ins: string[][]; out: string[] } {
  const [lhs, rhs] = eq.replace(/\s+/g, '').split('->');
  const terms = lhs!.split(',');
  if (terms.length !== ranks.length) c.invalid(`equation '${eq}' has ${terms.length} operands, the node ${ranks.length}`);
  const ell = '\u0100';
  let nEll = 0;
  const expand = (t: string, r?: number) => {
    if (!t.includes('...')) return [...t];
    const k = r === undefined ? nEll : r - (t.length - 3);
    if (k < 0) c.invalid(`equation '${eq}': '${t}' has more letters than its operand's rank ${r}`);
    nEll = Math.max(nEll, k);
    const [a, b] = t.split('...');
    return [...a!, ...Array.from({ length: k }, (_, i) => String.fromCharCode(ell.charCodeAt(0) + i)), ...b!];
  };
  const ins = terms.map((t, i) => expand(t, ranks[i]));
  let out: string[];
  if (rhs !== undefined) out = expand(rhs);
  else {
    // Implicit output: the ellipsis letters, then the letters used once, alphabetically.
    const all = ins.flat();
    const once = [...new Set(all)].filter((l) => all.filter((m) => m === l).length === 1 && l < ell).sort();
    out = [...Array.from({ length: nEll }, (_, i) => String.fromCharCode(ell.charCodeAt(0) + i)), ...once];
  }
  for (const t of [...ins, out]) if (new Set(t).size !== t.length) c.fail(`equation '${eq}' repeats a letter within one term (a diagonal or trace), which is not supported`);
  for (let i = 0; i < ins.length; i++) if (ins[i]!.length !== ranks[i]) c.invalid(`equation '${eq}': operand ${i} has rank ${ranks[i]}, the term ${ins[i]!.length} letters`);
  return { ins, out };
}

/** Sum x over the letters of `t` not in `keep`; returns the result and its letters. */
function sumOut(x: Sym, t: string[], keep: Set<string>): [Sym, string[]] {
  const axes = t.map((l, i) => (keep.has(l) ? -1 : i)).filter((i) => i >= 0);
  return axes.length ? [reduceAxes(x, 'sum', axes, false), t.filter((l) => keep.has(l))] : [x, t];
}

function einsum(c: Ctx): Sym {
  const eq = c.a.str('equation', '');
  const xs = c.ins.map((_, i) => c.sym(i));
  if (xs.length < 1 || xs.length > 2) c.fail(`Einsum of ${xs.length} operands is not supported (one or two)`);
  const { ins, out } = parseEinsum(c, eq, xs.map((x) => x.shape.length));
  const dim = new Map<string, number>();
  xs.forEach((x, k) => ins[k]!.forEach((l, i) => {
    const d = x.shape[i]!;
    const e = dim.get(l);
    if (e !== undefined && e !== d && e !== 1 && d !== 1) c.invalid(`equation '${eq}': letter '${l}' is ${e} and ${d}`);
    dim.set(l, Math.max(e ?? d, d));
  }));
  const outSet = new Set(out);
  if (xs.length === 1) {
    const [y, t] = sumOut(xs[0]!, ins[0]!, outSet);
    return permute(y, out.map((l) => t.indexOf(l)));
  }
  const [A0, B0] = xs as [Sym, Sym];
  const inA = new Set(ins[0]);
  const inB = new Set(ins[1]);
  // Letters only in one operand and not in the output are summed there first.
  const [A, ta] = sumOut(A0, ins[0]!, new Set([...inA].filter((l) => outSet.has(l) || inB.has(l))));
  const [B, tb] = sumOut(B0, ins[1]!, new Set([...inB].filter((l) => outSet.has(l) || inA.has(l))));
  if (ta.some((l, i) => A.shape[i] !== dim.get(l)) || tb.some((l, i) => B.shape[i] !== dim.get(l))) c.fail(`equation '${eq}' broadcasts a size-1 axis, which is not supported`);
  const batch = ta.filter((l) => tb.includes(l) && outSet.has(l));
  const con = ta.filter((l) => tb.includes(l) && !outSet.has(l));
  const lf = ta.filter((l) => !tb.includes(l));
  const rf = tb.filter((l) => !ta.includes(l));
  const size = (ls: string[]) => ls.reduce((p, l) => p * dim.get(l)!, 1);
  const a = reshape(permute(A, [...batch, ...lf, ...con].map((l) => ta.indexOf(l))), [size(batch), size(lf), size(con)]);
  const b = reshape(permute(B, [...batch, ...con, ...rf].map((l) => tb.indexOf(l))), [size(batch), size(con), size(rf)]);
  const order = [...batch, ...lf, ...rf];
  const y = reshape(batchedMatmul(a, b), order.map((l) => dim.get(l)!));
  return permute(y, out.map((l) => order.indexOf(l)));
}

/** The linalg family: Gemm, MatMul, Einsum. */
export const LINALG: RuleTable = {
  Einsum: { attrs: ['equation'], build: (c) => symv(einsum(c)) },
  Gemm: {
    attrs: ['alpha', 'beta', 'transA', 'transB'],
    check: (a) => {
      a.flag('transA', false);
      a.flag('transB', false);
      a.flt('alpha', 1);
      a.flt('beta', 1);
    },
    build: (c) => {
      const [x, w] = [c.sym(0), c.sym(1)];
      if (x.shape.length !== 2 || w.shape.length !== 2) c.invalid(`Gemm multiplies 2-D operands, got [${x.shape.join(', ')}] and [${w.shape.join(', ')}]`);
      let y = traced.matmul(c.g, x, w, c.a.flag('transA', false), c.a.flag('transB', false));
      const alpha = c.a.flt('alpha', 1);
      if (alpha !== 1) y = traced.scale(y, alpha);
      if (c.given(2)) {
        const beta = c.a.flt('beta', 1);
        y = add(y, beta === 1 ? c.sym(2) : traced.scale(c.sym(2), beta));
      }
      return symv(y);
    },
  },
  MatMul: {
    attrs: [],
    build: (c) => {
      let [a, b] = [c.sym(0), c.sym(1)];
      const [ra, rb] = [a.shape.length, b.shape.length];
      if (ra === 0 || rb === 0) c.invalid('MatMul operands must have rank ≥ 1');
      // NumPy: a 1-D left operand is a row [1, k], a 1-D right one a column [k, 1]; the added axis is dropped.
      if (ra === 1) a = reshape(a, [1, a.shape[0]!]);
      if (rb === 1) b = reshape(b, [b.shape[0]!, 1]);
      const k = a.shape[a.shape.length - 1]!;
      if (b.shape[b.shape.length - 2] !== k) c.invalid(`MatMul: [${c.sym(0).shape.join(', ')}] · [${c.sym(1).shape.join(', ')}] (inner dimensions differ)`);
      let y = batchedMatmul(a, b);
      if (ra === 1) y = reshape(y, [...y.shape.slice(0, -2), y.shape[y.shape.length - 1]!]);
      if (rb === 1) y = reshape(y, y.shape.slice(0, -1));
      return symv(y);
    },
  },
};
