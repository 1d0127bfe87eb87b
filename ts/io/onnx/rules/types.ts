/**
 * The shape of an import rule: what one ONNX op takes (its attributes, which inputs must be
 * known at import time) and how it builds from traced tensors. The rule tables of the families
 * (elementwise.ts, linalg.ts, …) are `Record<opType, Rule>`, merged in rules/index.ts.
 */
import type { Graph, IndexSym, Sym } from '../../../trace.js';
import type { Attrs, Const, NodeProto } from '../decode.js';

/** A traced tensor: a node of the program being built. */
export interface SymValue {
  /** The tag that tells a traced value from a constant. */
  readonly kind: 'sym';
  /** The node. */
  readonly sym: Sym;
}
/**
 * Integer data of the program (an index input: token ids), not a float node: only a Gather's
 * indices may take it (an embedding lookup); anything else is refused, naming the node.
 */
export interface IndexValue {
  /** The tag of integer data. */
  readonly kind: 'index';
  /** The index input. */
  readonly sym: IndexSym;
}
/** A value during the walk: a traced tensor, integer data, or a constant known at import time. */
export type Value = Const | SymValue | IndexValue;

/** What a rule sees of its node. */
export interface Ctx {
  /** The op type. */
  readonly op: string;
  /** The default-domain opset of the model. */
  readonly opset: number;
  /** How messages name the node (name, op type, opset). */
  readonly where: string;
  /** The node's attributes. */
  readonly a: Attrs;
  /** The node. */
  readonly node: NodeProto;
  /** The inputs (undefined where an optional input is omitted). */
  readonly ins: readonly (Value | undefined)[];
  /** How many outputs the node names. */
  readonly nOut: number;
  /** The program being built. */
  readonly g: Graph;
  /** Input i as a traced tensor (a constant input becomes a constant node). */
  sym(i: number): Sym;
  /** Input i, which must be known at import time (UNSUPPORTED_OP otherwise). */
  konst(i: number): Const;
  /** Whether input i is given. */
  given(i: number): boolean;
  /** Whether output i is used (by the chosen output's path): a rule builds nothing for an unused one. */
  used(i: number): boolean;
  /** UNSUPPORTED_OP naming the node. */
  fail(why: string): never;
  /** MALFORMED_FILE naming the node. */
  invalid(why: string): never;
}

/** One op's import rule. */
export interface Rule {
  /** The attributes the rule reads; any other attribute on the node is UNSUPPORTED_OP (never ignored). */
  readonly attrs: readonly string[];
  /**
   * Input slots that must be known at import time (shapes, axes, bounds, exponents): an
   * initializer used only in such slots is a constant, not a parameter.
   */
  readonly constInputs?: readonly number[];
  /** Input slots whose initializers are buffers (BatchNorm's running statistics): constants, listed as buffers. */
  readonly buffers?: readonly number[];
  /** Checks that need no shapes, run when the model is loaded (optional). */
  check?(a: Attrs, invalid: (why: string) => never, opset: number, nOut: number): void;
  /** The node's outputs (one value, or one per output; undefined for an output nobody may use). */
  build(c: Ctx): Value | (Value | undefined)[];
}

/** A rule table of one op family. */
export type RuleTable = Record<string, Rule>;

/** A traced value. */
export const symv = (sym: Sym): SymValue => ({ kind: 'sym', sym });
