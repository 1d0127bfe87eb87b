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
import type { RawKfac } from './wasm/hesse.js';

export interface KfacLayer {
  /** Index of the layer in its `nn.sequential` (PyTorch's module index). */
  layer: number;
  /** A [dIn, dIn] and B [dOut, dOut], row-major; dIn counts the bias input. */
  a: Float64Array;
  b: Float64Array;
  dIn: number;
  dOut: number;
  hasBias: boolean;
  /** The layer's parameters in the flat vector: [offset, offset + size). */
  offset: number;
  size: number;
}

export class Kfac implements Disposable {
  #raw: RawKfac | undefined;
  readonly layers: readonly KfacLayer[];

  /** @internal */
  constructor(raw: RawKfac) {
    this.#raw = raw;
    this.layers = call(() => raw.layers()) as KfacLayer[];
  }
  #handle(): RawKfac {
    if (!this.#raw) throw new HesseError('DISPOSED', 'K-FAC factors were used after dispose()');
    return this.#raw;
  }
  /** (B ⊗ A)·v per K-FAC layer (zero outside them). */
  mvp(v: Float64Array): Float64Array {
    return call(() => this.#handle().mvp(v));
  }
  /** (B ⊗ A + λI)⁻¹·v per K-FAC layer (zero outside them): the natural-gradient preconditioner. */
  inverseApply(v: Float64Array, damping: number): Float64Array {
    return call(() => this.#handle().inverseApply(v, damping));
  }
  dispose(): void {
    this.#raw?.free();
    this.#raw = undefined;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
