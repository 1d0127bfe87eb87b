/**
 * The import rule table: every ONNX op hesse builds on traced tensors, by family. (Ops on
 * constants only, the shape arithmetic, fold in fold.ts and need no rule.)
 */
import { CONV } from './conv.js';
import { ELEMENTWISE } from './elementwise.js';
import { LINALG } from './linalg.js';
import { NORM } from './norm.js';
import { POOL } from './pool.js';
import { RECURRENT } from './recurrent.js';
import { REDUCE } from './reduce.js';
import { SHAPE } from './shape.js';
import type { Rule } from './types.js';

/** The op families and their tables (ARCHITECTURE.md lists them). */
export const FAMILIES = { elementwise: ELEMENTWISE, linalg: LINALG, shape: SHAPE, reduce: REDUCE, conv: CONV, pool: POOL, norm: NORM, recurrent: RECURRENT } as const;

/** opType → rule. */
export const RULES: Readonly<Record<string, Rule>> = Object.freeze(Object.assign({}, ...Object.values(FAMILIES)));
