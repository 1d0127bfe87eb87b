/**
 * K-FAC (Martens & Grosse 2015; KFC for conv2d, "expand") for the linear and conv2d layers of a
 * model: each layer's Gauss–Newton block
 * approximated by B ⊗ A, applied block-diagonally to parameter vectors, with the exact damped
 * inverse (B ⊗ A + λI)⁻¹ from eigendecompositions of the factors. Conventions (mean vs sum, bias
 * as an extra input of 1): A = (1/N) Σ āāᵀ, B = Σₙ Σ_c gₙ,c gₙ,cᵀ with g the loss-Hessian factor's
 * columns backpropagated to the layer output, so that B ⊗ A is exact for a batch of one; see
 * crates/hesse-core/src/autodiff/kfac.rs.
 */
import { call, HesseError } from './errors.js';
import type { Vector } from './curvature.js';
import * as check from './validate.js';
import type { RawKfac } from './wasm/hesse.js';

/** The K-FAC factors of one layer. */
export interface KfacLayer {
  /** Index of the layer in its `nn.sequential` (PyTorch's module index). */
  layer: number;
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
  /** The layer's parameters in the flat vector: [offset, offset + size). */
  offset: number;
  /** The layer's parameter count (dOut·dIn). */
  size: number;
}

/**
 * A model's K-FAC factors (from `objective.kfac()`), a snapshot at the parameters it was built
 * at. Vectors are flat parameter vectors of length P (float32 or float64); results are float64.
 * Free it with `dispose()` or `using`.
 */
export class Kfac implements Disposable {
  #raw: RawKfac | undefined;
  /** The factors, one entry per linear or conv2d layer, in model order. */
  readonly layers: readonly KfacLayer[];
  /** P, the length of the parameter vectors it applies to. */
  readonly size: number;

  /** @internal Wraps factors computed in wasm for a model of `size` parameters. */
  constructor(raw: RawKfac, size: number) {
    this.#raw = raw;
    this.size = size;
    this.layers = call(() => raw.layers()) as KfacLayer[];
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
