/**
 * K-FAC (Martens & Grosse 2015; KFC for conv2d, "expand") for the linear and conv2d layers of a
 * model, found by pattern in its graph (crates/hesse-core/src/autodiff/kfac_pattern.rs): each
 * layer's Gauss–Newton block approximated by B ⊗ A, applied block-diagonally to parameter
 * vectors, with the exact damped inverse (B ⊗ A + λI)⁻¹ from eigendecompositions of the factors.
 * Conventions (mean vs sum, bias as an extra input of 1): A = (1/M) Σ āāᵀ over the M input rows
 * (samples, or positions of an [N, T, D] input or of a conv's output), B = Σ Σ_c g_c g_cᵀ over
 * the output rows with g the loss-Hessian factor's columns backpropagated to the layer output,
 * so that B ⊗ A is exact for a batch of one (one position); see crates/hesse-core/src/autodiff/kfac.rs.
 */
import { call, HesseError } from './errors.js';
import type { ParamBlock } from './nn.js';
import type { Vector } from './curvature.js';
import * as check from './validate.js';
import type { RawKfac } from './wasm/hesse.js';

/** The K-FAC factors of one layer. */
export interface KfacLayer {
  /** Index of the layer in its `nn.sequential` (PyTorch's module index); for other models its position among the K-FAC layers (parameter order). */
  layer: number;
  /** The name of the layer's weight block (`model.blocks`): `0.weight`, an ONNX initializer's name, …. */
  name: string;
  /** 'linear' (a MatMul/Gemm by a parameter) or 'conv2d'. */
  kind: 'linear' | 'conv2d';
  /** A [dIn, dIn], row-major: (1/N) Σ āāᵀ over samples (and positions for conv2d), ā the layer input with a 1 appended for the bias. */
  a: Float64Array;
  /** B [dOut, dOut], row-major: Σₙ Σ_c gₙ,c gₙ,cᵀ, g the loss-Hessian factor's columns backpropagated to the layer output. */
  b: Float64Array;
  /** The input dimension of A (in·kh·kw for conv2d), counting the bias input. */
  dIn: number;
  /** The output dimension of B (out features or channels). */
  dOut: number;
  /** Whether the layer has a bias (the last row and column of A). */
  hasBias: boolean;
  /** Where the layer's weight block starts in the flat vector; when its bias follows directly (`biasOffset` = offset + size − dOut, as in `nn.sequential`), [offset, offset + size) holds the whole layer. */
  offset: number;
  /** Where the bias block starts in the flat vector (it need not follow the weight), or -1 without a bias. */
  biasOffset: number;
  /** Whether the weight block is stored [in, out] (the ONNX exporter's folded `MatMul(x, Wᵀ)`) rather than PyTorch's [out, in]; A and B are the same either way. */
  weightTransposed: boolean;
  /** The layer's parameter count (dOut·dIn). */
  size: number;
}

/** A parameter block K-FAC does not cover (no linear or conv2d pattern uses it): its products are zero there. */
export interface KfacUncovered {
  /** The block's name (`model.blocks`). */
  name: string;
  /** Its first index in the flat vector. */
  offset: number;
  /** Its element count. */
  size: number;
}

/**
 * A model's K-FAC factors (from `objective.kfac()`), a snapshot at the parameters it was built
 * at. Vectors are flat parameter vectors of length P (float32 or float64); results are float64.
 * Free it with `dispose()` or `using`.
 */
export class Kfac implements Disposable {
  #raw: RawKfac | undefined;
  /** The factors, one entry per linear or conv2d layer, in parameter order. */
  readonly layers: readonly KfacLayer[];
  /** The parameter blocks no K-FAC layer covers (mvp and inverseApply give 0 there), in parameter order. */
  readonly uncovered: readonly KfacUncovered[];
  /** P, the length of the parameter vectors it applies to. */
  readonly size: number;

  /** @internal Wraps factors computed in wasm for a model with these parameter blocks. */
  constructor(raw: RawKfac, blocks: readonly ParamBlock[]) {
    this.#raw = raw;
    this.size = blocks.reduce((s, b) => s + b.size, 0);
    const nameAt = (offset: number) => blocks.find((b) => b.offset === offset)?.name ?? `@${offset}`;
    const layers = call(() => raw.layers()) as Omit<KfacLayer, 'name'>[];
    this.layers = layers.map((l) => ({ ...l, name: nameAt(l.offset) }));
    const flat = call(() => raw.uncovered());
    this.uncovered = Array.from({ length: flat.length / 2 }, (_, i) => ({ name: nameAt(flat[2 * i]!), offset: flat[2 * i]!, size: flat[2 * i + 1]! }));
  }
  #handle(what: string): RawKfac {
    if (!this.#raw) throw new HesseError('DISPOSED', `${what}: the K-FAC factors were used after dispose()`);
    return this.#raw;
  }
  /**
   * (B ⊗ A)·v per K-FAC layer (zero outside them): the block-diagonal Gauss–Newton approximation
   * applied to v (length P). With W [dOut, dIn] the layer's block of v (bias as the last column),
   * the block result is B·W·A.
   * @throws HesseError LENGTH_MISMATCH if v is not P long; DISPOSED after dispose().
   */
  mvp(v: Vector): Float64Array {
    const raw = this.#handle('Kfac.mvp');
    const x = Float64Array.from(check.vector(v, this.size, 'Kfac.mvp: v'));
    return call(() => raw.mvp(x));
  }
  /**
   * (B ⊗ A + λI)⁻¹·v per K-FAC layer (zero outside them): the natural-gradient preconditioner,
   * exact for the damped Kronecker product (from the eigendecompositions A = Uₐ Λₐ Uₐᵀ,
   * B = U_b Λ_b U_bᵀ: divide by λ_b,i·λ_a,j + λ in the eigenbases), not factored damping.
   * @param v length P.
   * @param damping λ, finite and > 0 (B ⊗ A is only semidefinite).
   * @throws HesseError LENGTH_MISMATCH if v is not P long; INVALID_ARGUMENT for a bad damping; DISPOSED after dispose().
   */
  inverseApply(v: Vector, damping: number): Float64Array {
    const raw = this.#handle('Kfac.inverseApply');
    const x = Float64Array.from(check.vector(v, this.size, 'Kfac.inverseApply: v'));
    const lambda = check.positiveNumber(damping, 'Kfac.inverseApply: damping');
    return call(() => raw.inverseApply(x, lambda));
  }
  /** Frees the factors. Idempotent; later use throws DISPOSED. */
  dispose(): void {
    this.#raw?.free();
    this.#raw = undefined;
  }
  /** `using k = obj.kfac()` disposes it at the end of the scope. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
