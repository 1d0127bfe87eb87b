/**
 * A model known only by its serialized programs (one per batch size), for a worker's objective:
 * `build` splices the program of x's batch size into the objective's graph (RawProgram.splice),
 * so the worker's sync Objective compiles exactly the program the main thread's model traced.
 */
import { call, HesseError } from '../errors.js';
import { blockViews, type Model, type ParamBlock } from '../nn.js';
import { core } from '../runtime.js';
import type { IndexSym, Sym } from '../trace.js';
import type { RawProgram } from '../wasm/hesse.js';
import type { ModelPrograms } from './protocol.js';

/** @internal A {@link Model} made of serialized programs (see the module doc). */
export class ProgramModel implements Model {
  /** P. */
  readonly size: number;
  /** The main thread's model's parameter blocks. */
  readonly blocks: readonly ParamBlock[];
  /** The main thread's model's input kind. */
  readonly inputKind: 'float' | 'index';
  readonly #programs = new Map<number, { raw: RawProgram; out: number }>();

  /** Reads the programs back (INVALID_ARGUMENT for corrupt bytes). */
  constructor(m: ModelPrograms, dtype: string) {
    this.size = m.size;
    this.blocks = m.blocks;
    this.inputKind = m.inputKind;
    for (const p of m.programs) this.#programs.set(p.rows, { raw: call(() => core().RawProgram.fromBytes(p.bytes, dtype)), out: p.out });
  }
  /** Refused: a worker's parameters come with each call. */
  init(): Float32Array | Float64Array {
    throw new HesseError('INVALID_ARGUMENT', 'a worker model has no initialization: the parameters come with every call');
  }
  /** Named views of a flat vector, by the blocks. */
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A> {
    return blockViews(this.blocks, this.size, flat);
  }
  /** Splices the program of x's batch size into x's graph, applied to x. */
  build(x: Sym | IndexSym): Sym {
    const rows = x.shape[0] ?? 1;
    const p = this.#programs.get(rows);
    if (!p) throw new HesseError('INVALID_ARGUMENT', `worker model: no program for a batch of ${rows} samples (it has ${[...this.#programs.keys()].join(', ')})`);
    const isIndex = !('id' in x);
    return x.graph.sym((raw) => raw.splice(p.raw, p.out, isIndex ? (x as IndexSym).slot : (x as Sym).id, isIndex));
  }
  /** Frees the programs (the graphs spliced into keep their own nodes). */
  dispose(): void {
    for (const p of this.#programs.values()) p.raw.free();
    this.#programs.clear();
  }
}
