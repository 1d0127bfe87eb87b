/**
 * N workers, each started once with its shard (ts/pool/protocol.ts), and calls broadcast to all
 * of them. A call resolves with every worker's values, in worker order, or rejects with the first
 * error (a worker's HesseError as it threw it). A worker that dies fails every pending call with
 * WORKER_FAILED naming it, and closes the pool: its other workers are terminated and every later
 * call rejects at once. No call's Promise can outlive its worker.
 */
import { HesseError, type HesseErrorCode } from '../errors.js';
import type { CallMessage, InitMessage, Method, WorkerReply } from './protocol.js';
import { spawnWorker, type WorkerHandle } from './spawn.js';

type Values = (number | Float32Array | Float64Array)[];

interface Pending {
  resolve(v: Values): void;
  reject(e: unknown): void;
}

class Slot {
  readonly pending = new Map<number, Pending>();
  ready?: Pending;
  constructor(
    readonly index: number,
    readonly handle: WorkerHandle,
  ) {}
}

/** @internal Workers started with their shards, and calls broadcast to them (see the module doc). */
export class WorkerPool {
  readonly #slots: Slot[];
  #next = 0;
  #closed: HesseError | undefined;

  private constructor(slots: Slot[]) {
    this.#slots = slots;
  }

  /** Starts one worker per init message; resolves when all are ready (else rejects, none left running). */
  static async start(url: URL, inits: InitMessage[]): Promise<WorkerPool> {
    const slots: Slot[] = [];
    const pool = new WorkerPool(slots);
    try {
      for (let i = 0; i < inits.length; i++) slots.push(pool.#attach(i, await spawnWorker(url)));
      await Promise.all(
        slots.map(
          (s, i) =>
            new Promise<Values>((resolve, reject) => {
              s.ready = { resolve, reject };
              s.handle.post(inits[i]);
            }),
        ),
      );
      return pool;
    } catch (e) {
      await pool.close();
      throw e;
    }
  }

  #attach(i: number, h: WorkerHandle): Slot {
    const s = new Slot(i, h);
    h.onMessage((msg) => {
      const m = msg as WorkerReply;
      if (m.type === 'ready') {
        s.ready?.resolve([]);
        s.ready = undefined;
        return;
      }
      const err = m.type === 'error' ? new HesseError(m.error.code as HesseErrorCode, `worker ${i}: ${m.error.message}`) : undefined;
      if (m.id === undefined) {
        s.ready?.reject(err);
        s.ready = undefined;
        return;
      }
      const p = s.pending.get(m.id);
      if (!p) return;
      s.pending.delete(m.id);
      if (m.type === 'result') p.resolve(m.values);
      else p.reject(err);
    });
    h.onFailure((why) => this.#failed(s, why));
    return s;
  }

  /** Worker `s` died: its calls and every later one reject; the others are stopped. */
  #failed(s: Slot, why: string): void {
    const e = new HesseError('WORKER_FAILED', `worker ${s.index} of ${this.#slots.length} failed (${why}); this async objective is closed: create a new one`);
    this.#closed ??= e;
    for (const t of this.#slots) {
      t.ready?.reject(e);
      t.ready = undefined;
      for (const p of t.pending.values()) p.reject(e);
      t.pending.clear();
    }
    void this.close();
  }

  /** Number of workers. */
  get size(): number {
    return this.#slots.length;
  }

  /** Runs `method(args(i)…)` on every worker i; their values in worker order. */
  call(method: Method, args: (i: number) => unknown[]): Promise<Values[]> {
    if (this.#closed) return Promise.reject(this.#closed);
    const id = this.#next++;
    return Promise.all(
      this.#slots.map(
        (s) =>
          new Promise<Values>((resolve, reject) => {
            s.pending.set(id, { resolve, reject });
            try {
              s.handle.post({ type: 'call', id, method, args: args(s.index) } satisfies CallMessage);
            } catch (e) {
              s.pending.delete(id);
              reject(new HesseError('INVALID_ARGUMENT', `worker ${s.index}: the arguments of ${method} cannot be sent (${e instanceof Error ? e.message : String(e)})`));
            }
          }),
      ),
    );
  }

  /** @internal Kills worker `i` (tests: a worker dying mid-call; its exit is detected as a real one's). */
  kill(i: number): void {
    this.#slots[i]?.handle.kill();
  }

  /** Terminates every worker; later calls reject with DISPOSED (or the failure that closed it). */
  async close(): Promise<void> {
    this.#closed ??= new HesseError('DISPOSED', 'this async objective was disposed; create a new one');
    const e = this.#closed;
    for (const s of this.#slots) {
      s.ready?.reject(e);
      s.ready = undefined;
      for (const p of s.pending.values()) p.reject(e);
      s.pending.clear();
    }
    await Promise.all(this.#slots.map((s) => s.handle.terminate().catch(() => undefined)));
  }
}
