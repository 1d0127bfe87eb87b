/**
 * Layer builders. A model is a list of layer specs; its program is built in Rust
 * (`Program::sequential`), where the parameters are created in PyTorch's named_parameters order:
 * layer by layer, weight then bias, each row-major (linear weight [out, in], conv weight
 * [out, in, kh, kw], layer-norm weight and bias [dim]). This file only names the layers, lists
 * their parameter blocks and initializes them.
 */
import { HesseError } from './errors.js';
import type { DType } from './tensor.js';
import { mulberry32 } from './random.js';
import { traced, type Sym } from './trace.js';

type Pair = number | [number, number];
export type LayerSpec =
  | { type: 'linear'; in: number; out: number; bias?: boolean }
  | { type: 'conv2d'; in: number; out: number; kernel: Pair; stride?: Pair; padding?: Pair; bias?: boolean }
  | { type: 'flatten' }
  | { type: 'relu' | 'tanh' | 'sigmoid' | 'softplus' }
  | { type: 'leaky_relu'; slope: number }
  | { type: 'elu'; alpha: number }
  | { type: 'gelu'; approximate: 'none' | 'tanh' }
  | { type: 'layer_norm'; dim: number; eps: number };

/** One parameter block of a model. */
export interface ParamBlock {
  /** PyTorch's name: `<layer index>.weight` / `<layer index>.bias`. */
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** How `init` fills it: U(−bound, bound), or a constant. */
  init: { uniform: number } | { constant: number };
}

const pair = (p: Pair): [number, number] => (Array.isArray(p) ? p : [p, p]);

function positiveInt(what: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) throw new HesseError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${v}`);
  return v;
}

/** y = x·Wᵀ + b, W [out, in] (PyTorch's nn.Linear). */
export function linear(inFeatures: number, outFeatures: number, opts: { bias?: boolean } = {}): LayerSpec {
  return { type: 'linear', in: positiveInt('linear in', inFeatures), out: positiveInt('linear out', outFeatures), bias: opts.bias ?? true };
}
/** 2-D convolution (PyTorch's nn.Conv2d, groups 1, dilation 1). */
export function conv2d(inChannels: number, outChannels: number, kernel: Pair, opts: { stride?: Pair; padding?: Pair; bias?: boolean } = {}): LayerSpec {
  return { type: 'conv2d', in: positiveInt('conv2d in', inChannels), out: positiveInt('conv2d out', outChannels), kernel: pair(kernel), stride: pair(opts.stride ?? 1), padding: pair(opts.padding ?? 0), bias: opts.bias ?? true };
}
/** [N, ...] → [N, prod(...)]. */
export const flatten = (): LayerSpec => ({ type: 'flatten' });
export const relu = (): LayerSpec => ({ type: 'relu' });
export const tanh = (): LayerSpec => ({ type: 'tanh' });
export const sigmoid = (): LayerSpec => ({ type: 'sigmoid' });
/** PyTorch's Softplus (β = 1, threshold 20). */
export const softplus = (): LayerSpec => ({ type: 'softplus' });
export const leakyRelu = (slope = 0.01): LayerSpec => ({ type: 'leaky_relu', slope });
export const elu = (alpha = 1): LayerSpec => ({ type: 'elu', alpha });
export const gelu = (opts: { approximate?: 'none' | 'tanh' } = {}): LayerSpec => ({ type: 'gelu', approximate: opts.approximate ?? 'none' });
/** Layer normalization over the last axis of size `dim`, with affine weight and bias. */
export const layerNorm = (dim: number, opts: { eps?: number } = {}): LayerSpec => ({ type: 'layer_norm', dim: positiveInt('layerNorm dim', dim), eps: opts.eps ?? 1e-5 });

/**
 * What an objective needs of a model: its parameter blocks (flat order), an initialization, and
 * a way to record itself applied to an input in a graph being traced (creating its parameters
 * in the flat order). `nn.sequential` and ONNX models (`loadOnnx`) are both models.
 */
export interface Model {
  /** Number of parameters P. */
  readonly size: number;
  readonly blocks: readonly ParamBlock[];
  /** Initial parameters, flat. */
  init(opts?: { seed?: number; dtype?: DType }): Float32Array | Float64Array;
  /** Named views (no copies) into a flat parameter-shaped vector. */
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A>;
  /** Records the model applied to `x` in x's graph; returns its output. */
  build(x: Sym): Sym;
}

/** Named subarray views of a flat vector, one per parameter block. */
export function blockViews<A extends Float32Array | Float64Array>(blocks: readonly ParamBlock[], size: number, flat: A): Record<string, A> {
  if (flat.length !== size) throw new HesseError('LENGTH_MISMATCH', `views: expected ${size} values, got ${flat.length}`);
  return Object.fromEntries(blocks.map((b) => [b.name, flat.subarray(b.offset, b.offset + b.size) as A]));
}

/** A stack of layers applied in order (PyTorch's nn.Sequential). */
export class Sequential implements Model {
  readonly layers: readonly LayerSpec[];
  readonly blocks: readonly ParamBlock[];
  /** Number of parameters P. */
  readonly size: number;

  constructor(layers: readonly LayerSpec[]) {
    this.layers = Object.freeze([...layers]);
    const blocks: ParamBlock[] = [];
    let offset = 0;
    const add = (name: string, shape: number[], init: ParamBlock['init']) => {
      const size = shape.reduce((a, b) => a * b, 1);
      blocks.push({ name, shape, offset, size, init });
      offset += size;
    };
    layers.forEach((l, i) => {
      if (l.type === 'linear' || l.type === 'conv2d') {
        // PyTorch's default: kaiming_uniform(a = √5) for weights and U(±1/√fan_in) for biases, both bound 1/√fan_in.
        const [kh, kw] = l.type === 'conv2d' ? pair(l.kernel) : [1, 1];
        const bound = 1 / Math.sqrt(l.in * kh * kw);
        add(`${i}.weight`, l.type === 'conv2d' ? [l.out, l.in, kh, kw] : [l.out, l.in], { uniform: bound });
        if (l.bias ?? true) add(`${i}.bias`, [l.out], { uniform: bound });
      } else if (l.type === 'layer_norm') {
        add(`${i}.weight`, [l.dim], { constant: 1 });
        add(`${i}.bias`, [l.dim], { constant: 0 });
      }
    });
    this.blocks = Object.freeze(blocks);
    this.size = offset;
  }

  /** Initial parameters, flat, as PyTorch initializes these layers (same distribution, not the same numbers). */
  init(opts: { seed?: number; dtype?: DType } = {}): Float32Array | Float64Array {
    const p = opts.dtype === 'float64' ? new Float64Array(this.size) : new Float32Array(this.size);
    const rand = mulberry32(opts.seed ?? 0);
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

/** A model from layers, applied in order. */
export function sequential(layers: readonly LayerSpec[]): Sequential {
  return new Sequential(layers);
}
