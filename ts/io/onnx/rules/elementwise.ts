/**
 * Elementwise ops: arithmetic with broadcasting, the activations, Clip / HardSigmoid / HardSwish
 * with constant parameters, Where with a constant mask.
 * ONNX formulas: HardSigmoid(x) = max(0, min(1, αx + β)) (α = 0.2, β = 0.5 by default; PyTorch
 * writes α = float32(1/6)); HardSwish(x) = x·HardSigmoid_{α=1/6, β=0.5}(x) with α the float32
 * 0.16666667163372 of ONNX's function body; Clip(x, min, max) with min/max inputs (opset ≥ 11)
 * or attributes (before).
 */
import { HesseError } from '../../../errors.js';
import { traced } from '../../../trace.js';
import { act, add, clip, mul, reshape, sub, whereConst } from './engine.js';
import { konst } from '../decode.js';
import { triluK, triluMask } from '../fold.js';
import { symv, type Ctx, type Rule, type RuleTable } from './types.js';

/** A pointwise activation tower of the core, with its α from an attribute. */
const activation = (name: string, alphaAttr?: string, dflt = 0): Rule => ({
  attrs: alphaAttr ? [alphaAttr] : [],
  build: (c) => symv(act(c.sym(0), name, alphaAttr ? c.a.flt(alphaAttr, dflt) : 0)),
});

const binary = (op: 'add' | 'sub' | 'mul' | 'div'): Rule => ({
  attrs: [],
  build: (c) => symv(traced.binary(c.g, op, c.sym(0), c.sym(1))),
});

/** A scalar constant input (Clip's bounds, Pow's exponent). */
function scalarInput(c: Ctx, i: number, what: string): number | undefined {
  if (!c.given(i)) return undefined;
  const k = c.konst(i);
  if (k.data.length !== 1) c.invalid(`${what} must be a scalar, got shape [${k.shape.join(', ')}]`);
  return k.data[0]!;
}

/** max(0, min(1, αx + β)): the core's HardSigmoid tower. */
const hardSigmoid = (c: Ctx, alpha: number, beta: number) => act(c.sym(0), 'hard_sigmoid', alpha, beta);

/** float32(1/6), the α of ONNX HardSwish's function body (onnx/defs/math/defs.cc). */
const HARDSWISH_ALPHA = Math.fround(1 / 6);

/** The elementwise family: arithmetic, activations, Clip/HardSigmoid/HardSwish, Where, Trilu. */
export const ELEMENTWISE: RuleTable = {
  Add: binary('add'),
  Sub: binary('sub'),
  Mul: binary('mul'),
  Div: binary('div'),
  Neg: { attrs: [], build: (c) => symv(traced.scale(c.sym(0), -1)) },
  Relu: activation('relu'),
  Tanh: activation('tanh'),
  Sigmoid: activation('sigmoid'),
  // ONNX Softplus is log(1 + eˣ) with no threshold.
  Softplus: activation('softplus_exact'),
  Exp: activation('exp'),
  Log: activation('log'),
  Sqrt: activation('sqrt'),
  Erf: activation('erf'),
  Reciprocal: activation('recip'),
  LeakyRelu: activation('leaky_relu', 'alpha', 0.01),
  Elu: activation('elu', 'alpha', 1),
  // Selu(x) = γ·elu_α(x) (ONNX's float32 defaults α = 1.67326319217681884765625, γ = 1.05070102214813232421875).
  Selu: {
    attrs: ['alpha', 'gamma'],
    build: (c) => symv(traced.scale(act(c.sym(0), 'elu', c.a.flt('alpha', 1.67326319217681884765625)), c.a.flt('gamma', 1.05070102214813232421875))),
  },
  // Celu(x) = max(0, x) + min(0, α(exp(x/α) − 1)) = α·elu_1(x/α).
  Celu: {
    attrs: ['alpha'],
    check: (a, invalid) => {
      if (!(a.flt('alpha', 1) !== 0)) invalid('alpha must be nonzero');
    },
    build: (c) => {
      const al = c.a.flt('alpha', 1);
      return symv(traced.scale(act(traced.scale(c.sym(0), 1 / al), 'elu', 1), al));
    },
  },
  Pow: {
    attrs: [],
    constInputs: [1],
    build: (c) => {
      const p = scalarInput(c, 1, 'the exponent')!;
      const x = c.sym(0);
      // Exact forms for the common exponents (square is defined for negative x; xᵖ via the
      // general tower needs x > 0 unless p is an integer).
      if (p === 2) return symv(act(x, 'square'));
      if (p === 0.5) return symv(act(x, 'sqrt'));
      if (p === 1) return symv(x);
      if (p === -1) return symv(act(x, 'recip'));
      return symv(act(x, 'pow', p));
    },
  },
  Gelu: {
    attrs: ['approximate'],
    check: (a, invalid) => {
      const ap = a.str('approximate', 'none');
      if (ap !== 'none' && ap !== 'tanh') invalid(`approximate must be 'none' or 'tanh', got '${ap}'`);
    },
    build: (c) => symv(act(c.sym(0), c.a.str('approximate', 'none') === 'tanh' ? 'gelu_tanh' : 'gelu')),
  },
  Clip: {
    attrs: ['min', 'max'],
    constInputs: [1, 2],
    build: (c) => {
      const lo = c.opset < 11 ? (c.a.has('min') ? c.a.flt('min', 0) : undefined) : scalarInput(c, 1, 'min');
      const hi = c.opset < 11 ? (c.a.has('max') ? c.a.flt('max', 0) : undefined) : scalarInput(c, 2, 'max');
      return symv(clip(c.sym(0), lo, hi));
    },
  },
  HardSigmoid: {
    attrs: ['alpha', 'beta'],
    build: (c) => symv(hardSigmoid(c, c.a.flt('alpha', 0.2), c.a.flt('beta', 0.5))),
  },
  HardSwish: {
    attrs: [],
    // x·HardSigmoid_{float32(1/6), 0.5}(x), ONNX's definition (the core's hard_swish tower uses 1/6 exactly, ~3e-8 away).
    build: (c) => symv(mul(c.sym(0), hardSigmoid(c, HARDSWISH_ALPHA, 0.5))),
  },
  Where: {
    attrs: [],
    constInputs: [0],
    build: (c) => {
      const mask = c.ins[0];
      if (!mask || mask.kind !== 'const') throw new HesseError('UNSUPPORTED_OP', `ONNX ${c.where}: Where needs a constant condition (a mask known at import); this one is computed from the data`);
      const branch = (i: number) => {
        const v = c.ins[i];
        if (!v) return c.invalid(`input ${i} is missing`);
        return v.kind === 'const' ? v : c.sym(i);
      };
      return symv(whereConst(mask, branch(1), branch(2), c.g));
    },
  },
  // Trilu(x, k) on a computed x: where(keep-mask, x, 0), the mask from the static shape (opset 14+: torch.triu/tril).
  Trilu: {
    attrs: ['upper'],
    constInputs: [1],
    build: (c) => {
      const x = c.sym(0);
      const k = triluK(c.given(1) ? c.konst(1) : undefined, c.where);
      const mask = konst(x.shape, triluMask(x.shape, k, c.a.int('upper', 1) === 1, c.where), 'bool');
      return symv(whereConst(mask, x, konst([], [0], 'float'), c.g));
    },
  },
  // |x| = relu(x) + relu(−x).
  Abs: { attrs: [], build: (c) => symv(add(act(c.sym(0), 'relu'), act(traced.scale(c.sym(0), -1), 'relu'))) },
  // PRelu(x, slope) = relu(x) − slope·relu(−x), the slope broadcast (a parameter, per channel).
  PRelu: {
    attrs: [],
    build: (c) => {
      const x = c.sym(0);
      let slope = c.sym(1);
      // PyTorch's per-channel slope [C] against [N, C, …]: unidirectional broadcasting, as ONNX allows ([C] → [C, 1, …]).
      if (slope.shape.length === 1 && x.shape.length > 2 && slope.shape[0] === x.shape[1] && slope.shape[0] !== x.shape[x.shape.length - 1]) slope = reshape(slope, [slope.shape[0]!, ...Array(x.shape.length - 2).fill(1)]);
      return symv(sub(act(x, 'relu'), mul(slope, act(traced.scale(x, -1), 'relu'))));
    },
  },
  // max(a, b) = b + relu(a − b), min(a, b) = a − relu(a − b), folded over the inputs.
  Max: { attrs: [], build: (c) => symv(c.ins.map((_, i) => c.sym(i)).reduce((p, q) => add(q, act(sub(p, q), 'relu')))) },
  Min: { attrs: [], build: (c) => symv(c.ins.map((_, i) => c.sym(i)).reduce((p, q) => sub(p, act(sub(p, q), 'relu')))) },
  Sum: {
    attrs: [],
    build: (c) => symv(c.ins.map((_, i) => c.sym(i)).reduce((p, q) => add(p, q))),
  },
  Mean: {
    attrs: [],
    build: (c) => symv(traced.scale(c.ins.map((_, i) => c.sym(i)).reduce((p, q) => add(p, q)), 1 / c.ins.length)),
  },
};

