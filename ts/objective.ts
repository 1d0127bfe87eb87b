/**
 * A training objective L(θ) = loss(model(x; θ), y), compiled once into one program; loss,
 * gradient, Hessian-vector products and the Hessian all reuse it. Data are staged in wasm once;
 * each call copies only the parameters (and directions) it is given.
 */
import { call, HesseError } from './errors.js';
import type { Model } from './nn.js';
import type { Tensor, DType } from './tensor.js';
import { Graph, traced } from './trace.js';
import type { NativeOperator } from './curvature.js';
import { Kfac } from './kfac.js';
import { denseFromProducts } from './transforms.js';

type Typed = Float32Array | Float64Array;
/**
 * A curvature matrix of the objective: the Hessian H; the generalized Gauss–Newton
 * G = Jᵀ Hℓ J (J the Jacobian of the network output, Hℓ the loss Hessian in output space; PSD for
 * MSE, cross-entropy and BCE, where it equals the Fisher); the empirical Fisher
 * (1/N) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ from per-sample gradients with the true labels; the Monte Carlo Fisher, with
 * `samples` labels per sample drawn from the model's predictive distribution (an unbiased
 * estimate of G; reproducible by `seed`).
 */
export type Curvature = 'hessian' | 'ggn' | 'fisher' | { mcFisher: { samples: number; seed?: number } };
/** Losses (PyTorch's mean reductions); 'mean_output' is the mean of the model's output, with no targets. */
export type LossName = 'mse' | 'cross_entropy' | 'bce_with_logits' | 'ce' | 'bce' | 'mean_output';
type LossKind = 'mse' | 'cross_entropy' | 'bce_with_logits' | 'mean_output';
const LOSSES: Record<LossName, LossKind> = {
  mse: 'mse', cross_entropy: 'cross_entropy', ce: 'cross_entropy', bce_with_logits: 'bce_with_logits', bce: 'bce_with_logits', mean_output: 'mean_output',
};

export interface ObjectiveOptions {
  /** Initial parameters (flat, the model's order); default `model.init({ seed, dtype })`. */
  params?: Typed;
  /** Seed of the default initialization. */
  seed?: number;
  /** Differentiate with respect to the parameters (default) or the input x. */
  wrt?: 'params' | 'input';
  /** Check parameters, data and directions for NaN/±∞ and throw instead of propagating them. */
  checkFinite?: boolean;
}

export interface GaussNewtonOptions {
  /** Refuse past this many bytes of working memory (default 512 MiB). */
  maxBytes?: number;
  /** Directions per pass when building the factor (default 64). */
  chunk?: number;
  /** The Monte Carlo estimate instead of the exact matrix: `samples` labels per sample drawn from the model. */
  monteCarlo?: { samples: number; seed?: number };
  /** 'f64': accumulate the SYRK in float64 for a float32 objective (the result is a Float64Array). */
  accumulate?: 'f64';
}

/** Options of the dense matrices (Objective.dense, hessian, ggn). */
export interface DenseOptions {
  /** Refuse past this many bytes for the result (default 512 MiB). */
  maxBytes?: number;
  /** Columns per pass, K tangents in one forward-over-reverse sweep (default 64). */
  chunk?: number;
  /** Called after each pass: `done` of `total` columns, in the named phase. */
  onProgress?: Progress;
}

/** Progress of a long computation: `done` of `total` units of the phase named `phase`. */
export type Progress = (done: number, total: number, phase: string) => void;

/** What a dense build is called in progress reports, by wasm curvature name. */
const DENSE_NAMES: Record<string, string> = { hessian: 'Hessian (HVPs)', ggn: 'GGN (GGN products)', fisher: 'Fisher (Fisher products)', 'mc-fisher': 'Monte Carlo Fisher (products)' };

export class Objective implements Disposable {
  readonly dtype: DType;
  /** Length of the variable: P for wrt 'params', x.size for wrt 'input'. */
  readonly size: number;
  /** The parameters every method uses unless given others (flat, the model's order). */
  params: Typed;
  readonly #graph: Graph;
  readonly #out: number;
  readonly #loss: LossKind;
  /** Node of the network output f(x; θ), where Gauss–Newton curvature splits J and Hℓ. */
  readonly #f: number;
  readonly #wrt: number;
  readonly #check: boolean;
  readonly #xShape: readonly number[];
  readonly #yShape: readonly number[] | undefined;
  #x: Typed = new Float32Array(0);

  constructor(readonly model: Model, loss: LossName, data: { x: Tensor; y?: Tensor }, opts: ObjectiveOptions = {}) {
    const kind = LOSSES[loss];
    if (!kind) throw new HesseError('INVALID_ARGUMENT', `unknown loss '${loss}': use ${Object.keys(LOSSES).join(', ')}`);
    const { x, y } = data;
    if (kind === 'mean_output' ? y !== undefined : y === undefined) {
      throw new HesseError('INVALID_ARGUMENT', kind === 'mean_output' ? 'objective: the mean_output loss takes no targets (omit y)' : `objective: the ${kind} loss needs targets y`);
    }
    if (y && y.dtype !== x.dtype) throw new HesseError('DTYPE_MISMATCH', `objective: x is ${x.dtype} but y is ${y.dtype}`);
    if (y && x.shape[0] !== y.shape[0]) {
      throw new HesseError('SHAPE_MISMATCH', `objective: x [${x.shape.join(', ')}] and y [${y.shape.join(', ')}] have different batch sizes`);
    }
    this.dtype = x.dtype;
    this.#loss = kind;
    this.#graph = new Graph(this.dtype);
    try {
      const xs = this.#graph.input(x.shape);
      const f = model.build(xs);
      this.#f = f.id;
      this.#out = (y ? traced.loss(this.#graph, kind as Exclude<LossKind, 'mean_output'>, f, this.#graph.input(y.shape)) : traced.reduce(f, 'mean', undefined, false)).id;
      if (this.#graph.raw.nParams() !== model.size) {
        throw new Error(`internal: the program has ${this.#graph.raw.nParams()} parameters, the model lists ${model.size}`);
      }
    } catch (e) {
      this.#graph.dispose();
      throw e;
    }
    this.#xShape = x.shape;
    this.#yShape = y?.shape;
    this.#wrt = opts.wrt === 'input' ? 0 : -1;
    this.#check = opts.checkFinite ?? false;
    this.size = opts.wrt === 'input' ? x.size : model.size;
    this.params = opts.params ?? model.init({ seed: opts.seed, dtype: this.dtype });
    this.#checkLength('params', this.params, model.size);
    this.setData(data);
  }

  /** Replaces the batch (same shapes as the one the objective was built with). */
  setData(data: { x: Tensor; y?: Tensor }): void {
    const same = (a: readonly number[] | undefined, b: readonly number[] | undefined) => a === b || (!!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]));
    if (!same(data.x.shape, this.#xShape) || !same(data.y?.shape, this.#yShape)) {
      const fmt = (s: readonly number[] | undefined) => (s ? `[${s.join(', ')}]` : 'none');
      throw new HesseError('SHAPE_MISMATCH', `setData: expected x ${fmt(this.#xShape)} and y ${fmt(this.#yShape)}, got ${fmt(data.x.shape)} and ${fmt(data.y?.shape)}`);
    }
    this.#x = data.x.toArray();
    call(() => this.#graph.raw.setInput(0, this.#x));
    if (data.y) call(() => this.#graph.raw.setInput(1, data.y!.toArray()));
  }

  /** N, the batch size (axis 0 of x). */
  get batchSize(): number {
    return this.#xShape[0] ?? 1;
  }

  /** The current value of the variable: the parameters, or x for wrt 'input'. */
  point(): Typed {
    return this.#wrt < 0 ? this.params : this.#x;
  }

  #checkLength(what: string, v: Typed, n: number): void {
    const want = this.dtype === 'float64' ? Float64Array : Float32Array;
    if (!(v instanceof want)) throw new HesseError('DTYPE_MISMATCH', `${what}: expected a ${want.name} for this ${this.dtype} objective`);
    if (v.length !== n) throw new HesseError('LENGTH_MISMATCH', `${what}: expected ${n} values, got ${v.length}`);
  }

  /** Runs at `at` (the variable's value: parameters, or x for wrt 'input'). */
  /** `returns`: which of [value, value tangents, gradient, gradient tangents] to copy back (bits 1, 2, 4, 8). */
  #run(at: Typed | undefined, tangents: Typed | undefined, k: number, backward: boolean, curvature = 'hessian', returns = 15): Typed[] {
    const raw = this.#graph.raw;
    const params = this.#wrt < 0 && at ? at : this.params;
    this.#checkLength('params', params, this.model.size);
    call(() => raw.setParams(params));
    if (this.#wrt >= 0) {
      const x = at ?? this.#x;
      this.#checkLength('x', x, this.size);
      call(() => raw.setInput(0, x));
    }
    const empty = this.dtype === 'float64' ? new Float64Array(0) : new Float32Array(0);
    return call(() => raw.run(this.#out, this.#wrt, tangents ?? empty, k, backward, undefined, this.#check, curvature, this.#f, returns)) as unknown as Typed[];
  }

  // Every method below evaluates at `at` when given (the parameters, or x for wrt 'input'),
  // else at the current point.

  /** L. */
  loss(at?: Typed): number {
    return this.#run(at, undefined, 0, false, 'hessian', 1)[0]![0]!;
  }
  /** (L, ∇L). */
  valueAndGrad(at?: Typed): [number, Typed] {
    const [out, , g] = this.#run(at, undefined, 0, true, 'hessian', 5);
    return [out![0]!, g!];
  }
  /** ∇L. */
  grad(at?: Typed): Typed {
    return this.valueAndGrad(at)[1];
  }
  /** H·v, exact (forward-over-reverse). */
  hvp(v: Typed, at?: Typed): Typed {
    this.#checkLength('v', v, this.size);
    return this.#run(at, v, 1, true, 'hessian', 8)[3]!;
  }
  /** G·v, the generalized Gauss–Newton product Jᵀ(Hℓ(J v)): one JVP, the loss's output-space curvature, one VJP. */
  ggnvp(v: Typed, at?: Typed): Typed {
    return this.curvatureProducts('ggn', v, 1, at);
  }
  /** F·v for the empirical Fisher (1/N) Σᵢ ∇ℓᵢ ∇ℓᵢᵀ. */
  fisherVp(v: Typed, at?: Typed): Typed {
    return this.curvatureProducts('fisher', v, 1, at);
  }
  /** H·v₁ … H·v_K in one pass: `vs` holds K directions [K, size], the result likewise. */
  hvps(vs: Typed, k: number, at?: Typed): Typed {
    return this.curvatureProducts('hessian', vs, k, at);
  }
  /** C·v₁ … C·v_K in one pass for the curvature C: `vs` is [K, size], the result likewise. */
  curvatureProducts(curvature: Curvature, vs: Typed, k: number, at?: Typed): Typed {
    const name = this.#curvatureName(curvature);
    this.#checkLength('vs', vs, k * this.size);
    return this.#run(at, vs, k, true, name, 8)[3]!;
  }

  /** The wasm name of a curvature, after checking it applies here. */
  #curvatureName(c: Curvature): string {
    const name = typeof c === 'object' && c && 'mcFisher' in c ? 'mc-fisher' : c;
    if (typeof name !== 'string' || !['hessian', 'ggn', 'fisher', 'mc-fisher'].includes(name)) {
      throw new HesseError('INVALID_ARGUMENT', `unknown curvature ${JSON.stringify(c)}: use 'hessian', 'ggn', 'fisher' or { mcFisher: { samples, seed } }`);
    }
    if (name !== 'hessian' && this.#wrt >= 0) {
      throw new HesseError('INVALID_ARGUMENT', `the ${name} is defined for parameters; this objective differentiates with respect to the input (use the Hessian)`);
    }
    if (name !== 'mc-fisher') return name;
    const { samples, seed = 0 } = (c as { mcFisher: { samples: number; seed?: number } }).mcFisher;
    if (!Number.isInteger(samples) || samples < 1 || !Number.isInteger(seed) || seed < 0) {
      throw new HesseError('INVALID_ARGUMENT', `mcFisher: samples must be a positive integer and seed a non-negative integer, got ${samples} and ${seed}`);
    }
    return `mc-fisher:${this.#loss}:${samples}:${seed}`;
  }
  /** The dense Hessian [size, size], K columns per pass; refuses past `maxBytes` (default 512 MiB). */
  hessian(opts: DenseOptions = {}, at?: Typed): Typed {
    return this.dense('hessian', opts, at);
  }
  /** The dense GGN [P, P] from K-column products; refuses past `maxBytes` (default 512 MiB). */
  ggn(opts: DenseOptions = {}, at?: Typed): Typed {
    return this.dense('ggn', opts, at);
  }
  /**
   * The explicit Gauss–Newton matrix by the SIMD SYRK G = A·Aᵀ, A = [M₁ᵀ … M_Nᵀ], Mᵢ = LᵢᵀJᵢ
   * (Jᵢ from forward mode, Lᵢ the closed-form factor of the loss Hessian; see ARCHITECTURE.md):
   * `'dense'` [P, P]; `'diagonal'` [P]; `'layers'` the per-layer diagonal blocks, by layer name.
   * States its memory need (A is P × N·C) and refuses past `maxBytes` (default 512 MiB).
   */
  gaussNewton(part: 'dense', opts?: GaussNewtonOptions): Typed;
  gaussNewton(part: 'diagonal', opts?: GaussNewtonOptions): Typed;
  gaussNewton(part: 'layers', opts?: GaussNewtonOptions): Record<string, Typed>;
  gaussNewton(part: 'dense' | 'diagonal' | 'layers', opts: GaussNewtonOptions = {}): Typed | Record<string, Typed> {
    if (this.#wrt >= 0) throw new HesseError('INVALID_ARGUMENT', 'the Gauss–Newton matrix is defined for parameters; this objective differentiates with respect to the input');
    const P = this.model.size;
    const mc = opts.monteCarlo;
    if (mc && (!Number.isInteger(mc.samples) || mc.samples < 1)) throw new HesseError('INVALID_ARGUMENT', `gaussNewton: monteCarlo.samples must be a positive integer, got ${mc.samples}`);
    const shapeF = this.#graph.raw.shape(this.#f);
    const rows = mc ? shapeF[0]! * mc.samples : shapeF.reduce((a, b) => a * b, 1);
    const el = this.dtype === 'float64' ? 8 : 4;
    const layers = new Map<string, { offset: number; size: number }>();
    for (const b of this.model.blocks) {
      const name = b.name.split('.')[0]!;
      const l = layers.get(name) ?? { offset: b.offset, size: 0 };
      l.size += b.size;
      layers.set(name, l);
    }
    const outBytes = part === 'dense' ? P * P : part === 'diagonal' ? P : [...layers.values()].reduce((s, l) => s + l.size * l.size, 0);
    const bytes = (P * rows + outBytes) * el;
    const limit = opts.maxBytes ?? 512 * 2 ** 20;
    if (bytes > limit) {
      throw new HesseError('OUT_OF_MEMORY', `gaussNewton('${part}'): P = ${P} and N·C = ${rows} need ${(bytes / 2 ** 20).toFixed(1)} MiB (the P × N·C factor plus the result), over the limit of ${(limit / 2 ** 20).toFixed(1)} MiB; use ggnvp products, or a smaller batch`);
    }
    call(() => this.#graph.raw.setParams(this.params));
    const ranges = part === 'layers' ? [...layers.values()].flatMap((l) => [l.offset, l.size]) : [];
    const out = call(() => this.#graph.raw.gaussNewton(this.#f, this.#loss, part === 'layers' ? 'blocks' : part, opts.chunk ?? 64, new Uint32Array(ranges), mc?.samples ?? 0, mc?.seed ?? 0, opts.accumulate === 'f64')) as Typed;
    if (part !== 'layers') return out;
    let off = 0;
    return Object.fromEntries(
      [...layers.entries()].map(([name, l]) => {
        const block = out.subarray(off, off + l.size * l.size) as Typed;
        off += l.size * l.size;
        return [name, block];
      }),
    );
  }

  /**
   * A dense curvature matrix [size, size], K columns per pass (row i = C·eᵢ; C is symmetric).
   * `onProgress(done, total, phase)` after each pass: `done` of `total` columns, in the phase
   * named like "building the Hessian (HVPs)".
   */
  dense(curvature: Curvature, opts: DenseOptions = {}, at?: Typed): Typed {
    const n = this.size;
    const bytes = n * n * (this.dtype === 'float64' ? 8 : 4);
    const limit = opts.maxBytes ?? 512 * 2 ** 20;
    if (bytes > limit) {
      throw new HesseError('OUT_OF_MEMORY', `${typeof curvature === 'string' ? curvature : 'mcFisher'}: P = ${n} needs a dense ${n}×${n} ${this.dtype} matrix of ${(bytes / 2 ** 20).toFixed(1)} MiB, over the limit of ${(limit / 2 ** 20).toFixed(1)} MiB; use products (hvp, ggnvp) or the estimators that need only products`);
    }
    const phase = `building the ${DENSE_NAMES[this.#curvatureName(curvature).split(':')[0]!]}`;
    const onProgress = opts.onProgress && ((done: number, total: number) => opts.onProgress!(done, total, phase));
    return denseFromProducts(n, this.dtype, opts.chunk ?? 64, (units, k) => this.curvatureProducts(curvature, units, k, at), onProgress);
  }

  /**
   * The curvature C ('hessian', 'ggn' or 'fisher') at the current point as a linear operator,
   * for eigenvalues, trace, spectralDensity, cg, minres: they then run inside wasm, one
   * forward-over-reverse pass per product, with no JS per product.
   */
  operator(curvature: Curvature = 'hessian'): NativeOperator {
    const name = this.#curvatureName(curvature);
    return {
      size: this.size,
      matvec: (v: Float64Array) => {
        const t = this.dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
        return Float64Array.from(this.curvatureProducts(curvature, t, 1));
      },
      rawOperator: () => {
        if (this.#wrt >= 0) {
          throw new HesseError('INVALID_ARGUMENT', 'spectral estimators on input derivatives are not supported yet; use the matvec of a plain { size, matvec } operator');
        }
        call(() => this.#graph.raw.setParams(this.params));
        return call(() => this.#graph.raw.curvatureOperator(this.#out, name, this.#f));
      },
    };
  }

  /**
   * K-FAC factors of the model's linear and conv2d layers at the current parameters: `'exact'` (the loss
   * Hessian's factor, C backward vectors per sample) or `'mc'` (`samples` labels drawn from the
   * model's predictive distribution, `seed`).
   */
  kfac(opts: { variant?: 'exact' | 'mc'; samples?: number; seed?: number } = {}): Kfac {
    if (this.#wrt >= 0) throw new HesseError('INVALID_ARGUMENT', 'K-FAC is defined for parameters; this objective differentiates with respect to the input');
    call(() => this.#graph.raw.setParams(this.params));
    return new Kfac(call(() => this.#graph.raw.kfac(this.#f, this.#loss, opts.variant ?? 'exact', opts.samples ?? 1, opts.seed ?? 0)));
  }

  /** Named views into a flat parameter-shaped vector (params, gradient, HVP). */
  views<A extends Typed>(flat: A): Record<string, A> {
    return this.model.views(flat);
  }
  dispose(): void {
    this.#graph.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** L(θ) = loss(model(x; θ), y) with every derivative of it from one compiled program. */
export function objective(model: Model, loss: LossName, data: { x: Tensor; y?: Tensor }, opts: ObjectiveOptions = {}): Objective {
  return new Objective(model, loss, data, opts);
}
