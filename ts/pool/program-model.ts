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

export class ProgramModel implements Model {
  readonly size: number;
  readonly blocks: readonly ParamBlock[];
  readonly inputKind: 'float' | 'index';
  readonly #programs = new Map<number, { raw: RawProgram; out: number }>();

  constructor(m: ModelPrograms, dtype: string) {
    this.size = m.size;
    this.blocks = m.blocks;
    this.inputKind = m.inputKind;
    for (const p of m.programs) this.#programs.set(p.rows, { raw: call(() => core().RawProgram.fromBytes(p.bytes, dtype)), out: p.out });
  }
  init(): Float32Array | Float64Array {
    throw new HesseError('INVALID_ARGUMENT', 'a worker model has no initialization: the parameters come with every call');
  }
  views<A extends Float32Array | Float64Array>(flat: A): Record<string, A> {
    return blockViews(this.blocks, this.size, flat);
  }
  build(x: Sym | IndexSym): Sym {
    const rows = x.shape[0] ?? 1;
    const p = this.#programs.get(rows);
    if (!p) throw new HesseError('INVALID_ARGUMENT', `worker model: no program for a batch of ${rows} samples (it has ${[...this.#programs.keys()].join(', ')})`);
    const isIndex = !('id' in x);
    return x.graph.sym((raw) => raw.splice(p.raw, p.out, isIndex ? (x as IndexSym).slot : (x as Sym).id, isIndex));
  }
  dispose(): void {
    for (const p of this.#programs.values()) p.raw.free();
    this.#programs.clear();
  }
}
