/**
 * Linear algebra: Gemm (α·op(A)·op(B) + β·C, 2-D) and MatMul (NumPy semantics: 1-D operands
 * promoted and the added axis dropped, batch dims broadcast, so attention's Q·Kᵀ and A·V).
 */
import { traced } from '../../../trace.js';
import { add, batchedMatmul, reshape } from './engine.js';
import { symv, type RuleTable } from './types.js';

/** The linalg family: Gemm, MatMul. */
export const LINALG: RuleTable = {
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
