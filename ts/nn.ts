/**
 * Layer builders. A model is a list of layer specs; its program is built in Rust
 * (`Program::sequential`), where the parameters are created in PyTorch's named_parameters order:
 * layer by layer, weight then bias, each row-major (linear weight [out, in], conv weight
 * [out, in, kh, kw], layer-norm weight and bias [dim]). This file only names the layers, lists
 * their parameter blocks and initializes them.
 */
import { HesseError } from './errors.js';
import * as check from './validate.js';
import type { DType } from './tensor.js';
import { mulberry32 } from './random.js';
import { traced, type Sym } from './trace.js';

/** A size given once for both spatial axes, or as [height, width]. */
export type Pair = number | readonly [number, number];
/**
 * One layer of an {@link sequential} model, as the builders below make it (a plain JSON-able
 * object; hand-written specs are checked the same way when the model is made).
 */
export type LayerSpec =
  | { type: 'linear'; in: number; out: number; bias?: boolean }
  | { type: 'conv2d'; in: number; out: number; kernel: Pair; stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number; bias?: boolean }
  | { type: 'flatten' }
  | { type: 'relu' | 'tanh' | 'sigmoid' }
  /** PyTorch's Softplus; `beta` and `threshold` may be given only as its defaults 1 and 20 (what hesse computes). */
  | { type: 'softplus'; beta?: number; threshold?: number }
  | { type: 'leaky_relu'; slope: number }
  | { type: 'elu'; alpha: number }
  | { type: 'gelu'; approximate: 'none' | 'tanh' }
  | { type: 'layer_norm'; dim: number; eps: number };

/** The fields each layer type takes (anything else in a spec is an error, never ignored). */
const LAYER_FIELDS = {
  linear: ['type', 'in', 'out', 'bias'],
  conv2d: ['type', 'in', 'out', 'kernel', 'stride', 'padding', 'dilation', 'groups', 'bias'],
  flatten: ['type'],
  relu: ['type'],
  tanh: ['type'],
  sigmoid: ['type'],
  softplus: ['type', 'beta', 'threshold'],
  leaky_relu: ['type', 'slope'],
  elu: ['type', 'alpha'],
  gelu: ['type', 'approximate'],
  layer_norm: ['type', 'dim', 'eps'],
} as const satisfies Record<LayerSpec['type'], readonly string[]>;
const LAYER_TYPES = Object.keys(LAYER_FIELDS) as (keyof typeof LAYER_FIELDS)[];

/** One parameter block of a model. */
export interface ParamBlock {
  /** PyTorch's name: `<layer index>.weight` / `<layer index>.bias`. */
  name: string;
  /** The block's shape (linear weight [out, in], conv weight [out, in, kh, kw], bias [out]). */
  shape: number[];
  /** Its first index in the flat parameter vector. */
  offset: number;
  /** Its element count (the product of `shape`). */
  size: number;
  /** How `init` fills it: U(−bound, bound), or a constant. */
  init: { uniform: number } | { constant: number };
}

const pair = (p: Pair): [number, number] => (Array.isArray(p) ? [p[0], p[1]] : [p as number, p as number]);

/**
 * A layer dimension: a safe integer ≥ `min` that the core's 32-bit sizes can hold (checked in
 * two steps so that the usual mistake, a negative or fractional size, reads in the user's terms).
 */
function dim(value: unknown, what: string, min: 0 | 1): number {
  const v = check.integer(value, what, min);
  if (v > 0xffffffff) throw new HesseError('INVALID_ARGUMENT', `${what} = ${v} is beyond the 32-bit sizes hesse supports`);
  return v;
}

/** A {@link Pair} checked by {@link dim}, as [height, width]. */
function dims(value: unknown, what: string, min: 0 | 1): [number, number] {
  if (Array.isArray(value)) {
    if (value.length !== 2) throw new HesseError('INVALID_ARGUMENT', `${what} must be a number or a pair [height, width], got ${JSON.stringify(value)}`);
    return [dim(value[0], `${what}[0]`, min), dim(value[1], `${what}[1]`, min)];
  }
  const v = dim(value, what, min);
  return [v, v];
}

/**
 * Checks a layer spec (sizes: safe non-negative integers, ≥ 1 where 0 is meaningless; kernel and
 * stride ≥ 1, padding ≥ 0; the activation parameters finite; eps > 0) and returns it normalized,
 * with pairs as [h, w] and defaults filled in. `where` names the layer in messages.
 */
function checkLayer(spec: LayerSpec, where: string): LayerSpec {
  if (typeof spec !== 'object' || spec === null) throw new HesseError('INVALID_ARGUMENT', `${where}: a layer spec must be an object { type, … }, got ${String(spec)}`);
  const type = check.oneOf(spec.type, `${where}: type`, LAYER_TYPES);
  check.options(spec as Record<string, unknown>, where, LAYER_FIELDS[type]);
  const bias = (b: unknown) => check.flag(b, `${where}: bias`, true);
  switch (spec.type) {
    case 'linear':
      return { type: 'linear', in: dim(spec.in, `${where}: in`, 1), out: dim(spec.out, `${where}: out`, 1), bias: bias(spec.bias) };
    case 'conv2d': {
      const [cin, cout] = [dim(spec.in, `${where}: in`, 1), dim(spec.out, `${where}: out`, 1)];
      const dilation = dims(spec.dilation ?? 1, `${where}: dilation`, 1);
      const groups = dim(spec.groups ?? 1, `${where}: groups`, 1);
      if (cin % groups !== 0 || cout % groups !== 0) throw new HesseError('INVALID_ARGUMENT', `${where}: groups ${groups} must divide in (${cin}) and out (${cout})`);
      return {
        type: 'conv2d',
        in: cin,
        out: cout,
        kernel: dims(spec.kernel, `${where}: kernel`, 1),
        stride: dims(spec.stride ?? 1, `${where}: stride`, 1),
        padding: dims(spec.padding ?? 0, `${where}: padding`, 0),
        // Only where they differ from PyTorch's defaults (dilation 1, groups 1), so a plain conv's spec is unchanged.
        ...(dilation[0] !== 1 || dilation[1] !== 1 ? { dilation } : {}),
        ...(groups !== 1 ? { groups } : {}),
        bias: bias(spec.bias),
      };
    }
    case 'leaky_relu':
      return { type: 'leaky_relu', slope: check.finite(spec.slope ?? 0.01, `${where}: slope`) };
    case 'elu':
      return { type: 'elu', alpha: check.finite(spec.alpha ?? 1, `${where}: alpha`) };
    case 'gelu':
      return { type: 'gelu', approximate: check.oneOf(spec.approximate ?? 'none', `${where}: approximate`, ['none', 'tanh']) };
    case 'softplus':
      for (const [field, value, only] of [['beta', spec.beta, 1], ['threshold', spec.threshold, 20]] as const) {
        if (value !== undefined && value !== only) throw new HesseError('UNSUPPORTED_OP', `${where}: ${field} = ${JSON.stringify(value)} is not supported; hesse's Softplus is PyTorch's default (beta 1, threshold 20)`);
      }
      return { type: 'softplus' };
    case 'layer_norm':
      return { type: 'layer_norm', dim: dim(spec.dim, `${where}: dim`, 1), eps: check.positiveNumber(spec.eps ?? 1e-5, `${where}: eps`) };
    default:
      return { type } as LayerSpec;
  }
}

/**
 * y = x·Wᵀ + b, W [out, in] (PyTorch's nn.Linear). Input [N, in] (or [N, …, in]), output [N, out].
 * @param inFeatures an integer ≥ 1.
 * @param outFeatures an integer ≥ 1.
 * @param options.bias whether to add b (default true).
 * @throws HesseError INVALID_ARGUMENT for a size that is not an integer ≥ 1.
 */
export function linear(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}): LayerSpec {
  const opts = check.options(options, 'nn.linear', ['bias']);
  return checkLayer({ type: 'linear', in: inFeatures, out: outFeatures, bias: opts.bias }, 'nn.linear');
}
/**
 * 2-D convolution (PyTorch's nn.Conv2d): input [N, in, H, W], weight [out, in/groups, kh, kw],
 * output [N, out, ⌊(H + 2·ph − dh·(kh − 1) − 1)/sh⌋ + 1, ⌊(W + 2·pw − dw·(kw − 1) − 1)/sw⌋ + 1].
 * @param inChannels an integer ≥ 1.
 * @param outChannels an integer ≥ 1.
 * @param kernel kh = kw, or [kh, kw]: integers ≥ 1.
 * @param options.stride sh = sw or [sh, sw], integers ≥ 1 (default 1).
 * @param options.padding zeros added on each side, ph = pw or [ph, pw], integers ≥ 0 (default 0).
 * @param options.dilation spacing between kernel taps, dh = dw or [dh, dw], integers ≥ 1 (default 1).
 * @param options.groups channel groups, an integer ≥ 1 dividing in and out (default 1; groups = in = out is depthwise).
 *   K-FAC covers only groups 1 (a grouped weight has no single Kronecker factorization).
 * @param options.bias whether to add a bias per output channel (default true).
 * @throws HesseError INVALID_ARGUMENT for a size outside those ranges.
 */
export function conv2d(inChannels: number, outChannels: number, kernel: Pair, options: { stride?: Pair; padding?: Pair; dilation?: Pair; groups?: number; bias?: boolean } = {}): LayerSpec {
  const opts = check.options(options, 'nn.conv2d', ['stride', 'padding', 'dilation', 'groups', 'bias']);
  const spec = { type: 'conv2d' as const, in: inChannels, out: outChannels, kernel, stride: opts.stride, padding: opts.padding, bias: opts.bias };
  return checkLayer({ ...spec, ...(opts.dilation !== undefined ? { dilation: opts.dilation } : {}), ...(opts.groups !== undefined ? { groups: opts.groups } : {}) }, 'nn.conv2d');
}
/** [N, ...] → [N, prod(...)]. */
export const flatten = (): LayerSpec => ({ type: 'flatten' });
/** max(x, 0). */
export const relu = (): LayerSpec => ({ type: 'relu' });
/** tanh(x). */
export const tanh = (): LayerSpec => ({ type: 'tanh' });
/** 1 / (1 + e⁻ˣ). */
export const sigmoid = (): LayerSpec => ({ type: 'sigmoid' });
/** PyTorch's Softplus: log(1 + eˣ) (β = 1, linear past the threshold 20). */
export const softplus = (): LayerSpec => ({ type: 'softplus' });
/** x for x ≥ 0, slope·x below (PyTorch's LeakyReLU; `slope` finite, default 0.01). */
export const leakyRelu = (slope = 0.01): LayerSpec => checkLayer({ type: 'leaky_relu', slope }, 'nn.leakyRelu');
/** x for x > 0, alpha·(eˣ − 1) below (PyTorch's ELU; `alpha` finite, default 1). */
export const elu = (alpha = 1): LayerSpec => checkLayer({ type: 'elu', alpha }, 'nn.elu');
/** x·Φ(x) (`approximate: 'none'`, the default) or its tanh approximation (PyTorch's GELU). */
export const gelu = (opts: { approximate?: 'none' | 'tanh' } = {}): LayerSpec =>
  checkLayer({ type: 'gelu', approximate: check.options(opts, 'nn.gelu', ['approximate']).approximate ?? 'none' }, 'nn.gelu');
/**
 * Layer normalization over the last axis of size `dim` (an integer ≥ 1), with affine weight and
 * bias [dim]: (x − mean)/√(var + eps)·w + b, var biased (PyTorch's LayerNorm; `eps` > 0, default 1e-5).
 */
export const layerNorm = (dim: number, opts: { eps?: number } = {}): LayerSpec =>
  checkLayer({ type: 'layer_norm', dim, eps: check.options(opts, 'nn.layerNorm', ['eps']).eps ?? 1e-5 }, 'nn.layerNorm');

/**
 * What an objective needs of a model: its parameter blocks (flat order), an initialization, and
 * a way to record itself applied to an input in a graph being traced (creating its parameters
 * in the flat order). `nn.sequential` and ONNX models (`loadOnnx`) are both models.
 */
export interface Model {
  /** Number of parameters P. */
  readonly size: number;
  /** The parameter blocks, in the flat vector's order. */
  readonly blocks: readonly ParamBlock[];
  /** Initial parameters, flat (length P), of `dtype` (default 'float32'). */
  init(opts?: { seed?: number; dtype?: DType }): Float32Array | Float64Array;
  /** Named views (no copies) into a flat parameter-shaped vector (LENGTH_MISMATCH unless it has P values). */
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A>;
  /** Records the model applied to `x` in x's graph; returns its output. */
  build(x: Sym): Sym;
}

/**
 * Named subarray views of a flat vector, one per parameter block.
 * @throws HesseError LENGTH_MISMATCH unless `flat` has `size` values.
 */
export function blockViews<A extends Float32Array | Float64Array>(blocks: readonly ParamBlock[], size: number, flat: A): Record<string, A> {
  if (flat.length !== size) throw new HesseError('LENGTH_MISMATCH', `views: expected ${size} values, got ${flat.length}`);
  return Object.fromEntries(blocks.map((b) => [b.name, flat.subarray(b.offset, b.offset + b.size) as A]));
}

/** A stack of layers applied in order (PyTorch's nn.Sequential). */
export class Sequential implements Model {
  /** The layers, checked and normalized (pairs as [h, w], defaults filled in). */
  readonly layers: readonly LayerSpec[];
  /** The parameter blocks in PyTorch's named_parameters order. */
  readonly blocks: readonly ParamBlock[];
  /** Number of parameters P. */
  readonly size: number;

  /**
   * @param layers applied in order; each is checked (see {@link linear} etc. for the ranges).
   * @throws HesseError INVALID_ARGUMENT naming the layer's index and field for a bad spec.
   */
  constructor(layers: readonly LayerSpec[]) {
    if (!Array.isArray(layers)) throw new HesseError('INVALID_ARGUMENT', 'nn.sequential: expected an array of layers');
    this.layers = Object.freeze(layers.map((l, i) => checkLayer(l, `nn.sequential: layer ${i}${l && typeof l === 'object' && typeof l.type === 'string' ? ` (${l.type})` : ''}`)));
    const blocks: ParamBlock[] = [];
    let offset = 0;
    const add = (name: string, shape: number[], init: ParamBlock['init']) => {
      const size = shape.reduce((a, b) => a * b, 1);
      blocks.push({ name, shape, offset, size, init });
      offset += size;
    };
    this.layers.forEach((l, i) => {
      if (l.type === 'linear' || l.type === 'conv2d') {
        // PyTorch's default: kaiming_uniform(a = √5) for weights and U(±1/√fan_in) for biases, both bound 1/√fan_in.
        const [kh, kw] = l.type === 'conv2d' ? pair(l.kernel) : [1, 1];
        // fan_in = (in/groups)·kh·kw: PyTorch's, from the weight's shape.
        const inPer = l.type === 'conv2d' ? l.in / (l.groups ?? 1) : l.in;
        const bound = 1 / Math.sqrt(inPer * kh * kw);
        add(`${i}.weight`, l.type === 'conv2d' ? [l.out, inPer, kh, kw] : [l.out, l.in], { uniform: bound });
        if (l.bias ?? true) add(`${i}.bias`, [l.out], { uniform: bound });
      } else if (l.type === 'layer_norm') {
        add(`${i}.weight`, [l.dim], { constant: 1 });
        add(`${i}.bias`, [l.dim], { constant: 0 });
      }
    });
    this.blocks = Object.freeze(blocks);
    this.size = offset;
  }

  /**
   * Initial parameters, flat (length P), as PyTorch initializes these layers (same distribution,
   * not the same numbers): weights and biases U(−1/√fan_in, 1/√fan_in), layer norm 1 and 0.
   * @param opts.seed an integer ≥ 0 (default 0).
   * @param opts.dtype 'float32' (default) or 'float64'.
   * @throws HesseError INVALID_ARGUMENT for a bad seed or an unknown option; UNKNOWN_DTYPE for a bad dtype; OUT_OF_MEMORY when P values do not fit wasm's 4 GiB.
   */
  init(opts: { seed?: number; dtype: 'float64' }): Float64Array;
  /** Initial float32 parameters (the default dtype), length P. */
  init(opts?: { seed?: number; dtype?: 'float32' }): Float32Array;
  /** Initial parameters of `dtype`, length P. */
  init(opts?: { seed?: number; dtype?: DType }): Float32Array | Float64Array;
  init(options: { seed?: number; dtype?: DType } = {}): Float32Array | Float64Array {
    const opts = check.options(options, 'init', ['seed', 'dtype']);
    const dtype = check.dtype(opts.dtype ?? 'float32', 'init');
    const seed = check.seed(opts.seed ?? 0, 'init: seed');
    const bytes = this.size * (dtype === 'float64' ? 8 : 4);
    if (bytes > 2 ** 32) throw new HesseError('OUT_OF_MEMORY', `init: P = ${this.size} ${dtype} parameters need ${(bytes / 2 ** 30).toFixed(1)} GiB, more than wasm's 4 GiB memory`);
    const p = dtype === 'float64' ? new Float64Array(this.size) : new Float32Array(this.size);
    const rand = mulberry32(seed);
    for (const b of this.blocks) {
      for (let i = 0; i < b.size; i++) p[b.offset + i] = 'uniform' in b.init ? (2 * rand() - 1) * b.init.uniform : b.init.constant;
    }
    return p;
  }

  /** Named views (no copies) into a flat parameter (or gradient, or HVP) vector. */
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A> {
    return blockViews(this.blocks, this.size, flat);
  }

  /** Records the layers applied to x (their parameters are created in the flat order, in Rust). */
  build(x: Sym): Sym {
    return traced.sequential(x, [...this.layers]);
  }
}

/**
 * A model from layers, applied in order (PyTorch's nn.Sequential).
 * @example
 * const model = nn.sequential([nn.linear(64, 16), nn.tanh(), nn.linear(16, 10)]); // P = 1210
 * @throws HesseError INVALID_ARGUMENT for a bad layer spec, naming its index and field.
 */
export function sequential(layers: readonly LayerSpec[]): Sequential {
  return new Sequential(layers);
}
