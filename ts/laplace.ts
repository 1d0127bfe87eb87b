/**
 * The Laplace approximation (MacKay 1992; Daxberger et al. 2021, laplace-torch) around trained
 * parameters θ̂: posterior N(θ̂, Σ) with precision Σ⁻¹ = N·G + τI, where G is the Gauss–Newton
 * matrix of the objective's mean loss (so N·G that of the summed negative log-likelihood, the
 * per-sample losses read as −log p(y | f)) and τ the precision of an isotropic Gaussian prior.
 * Predictions use the network linearized at θ̂: mean f(x; θ̂), variance J(x) Σ J(x)ᵀ per output.
 * `subset: 'last-layer'` restricts the posterior to the last linear layer (for larger nets).
 *
 * For MSE the per-sample loss ‖f − y‖²/C is −log N(y; f, (C/2)·I) up to a constant: scale the
 * prior precision accordingly if your noise model differs.
 */
import { call, HesseError } from './errors.js';
import { eigh } from './curvature.js';
import type { Objective } from './objective.js';
import type { Tensor } from './tensor.js';
import { Graph } from './trace.js';
import * as check from './validate.js';

/** Options of {@link laplace}. */
export interface LaplaceOptions {
  /** τ, the precision of the isotropic Gaussian prior N(0, τ⁻¹I): finite and > 0 (default 1). */
  priorPrecision?: number;
  /**
   * The parameters the posterior covers: 'all' (default; laplace-torch's `subset_of_weights`) or
   * 'last-layer' (the last parametrized layer; the others stay at θ̂). Anything else is an error.
   */
  subset?: 'all' | 'last-layer';
}

/** What {@link Laplace.predict} returns, both [M·C] row-major (M inputs, C outputs each). */
export interface LaplacePrediction {
  /** f(x; θ̂), the network output at the posterior mean. */
  mean: Float64Array;
  /** J(x) Σ J(x)ᵀ's diagonal: the variance of each output under the linearized posterior. */
  variance: Float64Array;
}

/**
 * A Gaussian posterior N(θ̂, Σ) over the subset's d parameters, Σ⁻¹ = N·G + τI (see the module
 * doc), kept as its eigendecomposition. Built by {@link laplace}.
 */
export class Laplace {
  /** Posterior precision N·G + τI over the subset ([d, d], row-major). */
  readonly precision: Float64Array;
  /** First flat-parameter index of the subset: it covers [offset, offset + size). */
  readonly offset: number;
  /** d, the subset's parameter count (P for 'all'). */
  readonly size: number;
  readonly #values: Float64Array;
  readonly #vectors: Float64Array;
  readonly #obj: Objective;
  readonly #params: Float32Array | Float64Array;

  /**
   * The Laplace approximation around the objective's current parameters (see {@link laplace}).
   * @throws HesseError INVALID_ARGUMENT for a bad priorPrecision or subset, or a model with no
   *   parametrized layer; OUT_OF_MEMORY when the Gauss–Newton matrix does not fit.
   */
  constructor(obj: Objective, options: LaplaceOptions = {}) {
    const opts = check.options(options, 'laplace', ['priorPrecision', 'subset']);
    const tau = check.positiveNumber(opts.priorPrecision ?? 1, 'laplace: priorPrecision');
    const subset = check.oneOf(opts.subset ?? 'all', 'laplace: subset', ['all', 'last-layer']);
    const model = obj.model;
    const P = model.size;
    let G: Float32Array | Float64Array;
    if (subset === 'last-layer') {
      const layers = obj.gaussNewton('layers');
      const last = Object.keys(layers).at(-1);
      if (last === undefined) throw new HesseError('INVALID_ARGUMENT', 'laplace: the model has no parametrized layer');
      const blocks = model.blocks.filter((b) => b.name.split('.')[0] === last);
      this.offset = blocks[0]!.offset;
      this.size = blocks.reduce((s, b) => s + b.size, 0);
      G = layers[last]!;
    } else {
      this.offset = 0;
      this.size = P;
      G = obj.gaussNewton('dense');
    }
    const d = this.size;
    const n = obj.samples; // N over all batches: Laplace's N·G is the summed log-likelihood's
    this.precision = Float64Array.from(G, (v) => n * v);
    for (let i = 0; i < d; i++) this.precision[i * d + i]! += tau;
    const { values, vectors } = eigh(this.precision, d);
    this.#values = values;
    this.#vectors = vectors;
    this.#obj = obj;
    this.#params = obj.params.slice();
  }

  /** Posterior marginal variances of the subset's parameters: diag(Σ). */
  parameterVariances(): Float64Array {
    const d = this.size;
    const out = new Float64Array(d);
    for (let j = 0; j < d; j++) for (let i = 0; i < d; i++) out[i]! += this.#vectors[j * d + i]! ** 2 / this.#values[j]!;
    return out;
  }

  /**
   * The linearized predictive at inputs `x` (shaped like the training inputs but for M samples):
   * mean f(x; θ̂) and the variance of each output under the posterior, both [M·C] row-major:
   * var_r = J_r Σ J_rᵀ = Σⱼ (vⱼ·J_r)² / λⱼ over the posterior precision's eigenpairs (λⱼ, vⱼ).
   * @throws HesseError SHAPE_MISMATCH if x does not fit the model; DTYPE_MISMATCH if its dtype is not the objective's.
   */
  predict(x: Tensor): LaplacePrediction {
    if (x.dtype !== this.#obj.dtype) throw new HesseError('DTYPE_MISMATCH', `laplace predict: x is ${x.dtype} but the objective is ${this.#obj.dtype}`);
    const model = this.#obj.model;
    const g = new Graph(this.#obj.dtype);
    try {
      const f = model.build(g.input(x.shape));
      call(() => g.raw.setParams(this.#params));
      call(() => g.raw.setInput(0, x.toArray()));
      const mean = call(() => g.raw.value(f.id, false)).value as Float64Array;
      const rows = f.size;
      const jt = call(() => g.raw.jacobianT(f.id, 64)) as Float32Array | Float64Array; // [P, rows]
      const d = this.size;
      const variance = new Float64Array(rows);
      // var_r = Σ_j (v_j · J_r)² / λ_j over the posterior's eigenpairs.
      for (let j = 0; j < d; j++) {
        const lam = this.#values[j]!;
        for (let r = 0; r < rows; r++) {
          let proj = 0;
          for (let i = 0; i < d; i++) proj += this.#vectors[j * d + i]! * jt[(this.offset + i) * rows + r]!;
          variance[r]! += (proj * proj) / lam;
        }
      }
      return { mean: Float64Array.from(mean!), variance };
    } finally {
      g.dispose();
    }
  }
}

/**
 * The Laplace approximation of the posterior around the objective's current parameters θ̂ (train
 * first): precision N·G + τI from the exact Gauss–Newton matrix (`obj.gaussNewton`).
 * @example
 * const post = laplace(obj, { subset: 'last-layer', priorPrecision: 1 });
 * const { mean, variance } = post.predict(xTest);
 * @throws HesseError see {@link Laplace}'s constructor.
 */
export function laplace(obj: Objective, opts: LaplaceOptions = {}): Laplace {
  return new Laplace(obj, opts);
}
