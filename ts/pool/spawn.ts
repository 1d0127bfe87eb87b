/**
 * The one runtime adapter of the worker pool, main-thread side: a worker running `url` as an ES
 * module, with the same small interface in Node (worker_threads), Deno and browsers (module
 * Workers). Node reports a worker's exit (terminated, process.exit, out of memory) and its
 * uncaught errors; web Workers report uncaught errors (`error` events; a worker killed by the
 * browser may report nothing, which the pool's calls cannot detect).
 */
import { HesseError } from '../errors.js';

/** The main thread's end of one worker. */
export interface WorkerHandle {
  /** Sends a message (structured clone; `transfer`: buffers moved, not copied). */
  post(message: unknown, transfer?: Transferable[]): void;
  /** Calls `f` with every message from the worker. */
  onMessage(f: (m: unknown) => void): void;
  /** A fatal error or the worker's end (exit code where known). */
  onFailure(f: (why: string) => void): void;
  /** Stops the worker (not reported as a failure). */
  terminate(): Promise<void>;
  /** Ends the worker as a crash would (its failure is reported, as for a real death). */
  kill(): void;
}

interface NodeWorker {
  postMessage(m: unknown, transfer?: readonly unknown[]): void;
  on(event: 'message', f: (m: unknown) => void): void;
  on(event: 'error', f: (e: Error) => void): void;
  on(event: 'exit', f: (code: number) => void): void;
  on(event: 'messageerror', f: (e: Error) => void): void;
  terminate(): Promise<number>;
}

/**
 * A Node builtin by `process.getBuiltinModule` (as resource.ts reads files): no import of a
 * `node:` specifier that browser bundlers (Vite's dependency scan) would try to resolve.
 */
export function nodeBuiltin<M>(name: string): M {
  const proc = (globalThis as { process?: { getBuiltinModule?: (n: string) => unknown } }).process;
  const m = proc?.getBuiltinModule?.(name);
  if (!m) throw new HesseError('UNSUPPORTED_RUNTIME', `this Node lacks process.getBuiltinModule('${name}'): hessian needs Node ^20.19 or ≥ 22.12`);
  return m as M;
}

/** Node (and Bun) without Deno: worker_threads. */
function isNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } }; Deno?: unknown };
  return !!g.process?.versions?.node && g.Deno === undefined;
}

/** Whether this runtime can run workers at all (workerd cannot: the pool then runs in-thread). */
export function workersAvailable(): boolean {
  return isNode() || typeof (globalThis as { Worker?: unknown }).Worker === 'function';
}

/**
 * The cores this runtime may use: Node's `os.availableParallelism()` (Node 20 has no
 * `navigator`), else `navigator.hardwareConcurrency` (Deno, browsers), else 1.
 */
export async function cores(): Promise<number> {
  if (isNode()) {
    const os = nodeBuiltin<{ availableParallelism?: () => number; cpus: () => unknown[] }>('node:os');
    return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
  }
  return Math.max(1, (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1);
}

/** Starts a module worker running `url`. */
export async function spawnWorker(url: URL): Promise<WorkerHandle> {
  if (isNode()) {
    const { Worker } = nodeBuiltin<{ Worker: new (url: URL) => NodeWorker }>('node:worker_threads');
    const w = new Worker(url);
    let failed: ((why: string) => void) | undefined;
    let ended = false;
    const fail = (why: string) => {
      if (!ended) failed?.(why);
      ended = true;
    };
    w.on('error', (e) => fail(`uncaught error: ${e?.message ?? String(e)}`));
    w.on('messageerror', (e) => fail(`a message could not be read: ${e?.message ?? String(e)}`));
    w.on('exit', (code) => fail(`exited with code ${code}`));
    return {
      post: (m, transfer) => w.postMessage(m, transfer),
      onMessage: (f) => w.on('message', f),
      onFailure: (f) => (failed = f),
      terminate: async () => {
        ended = true;
        await w.terminate();
      },
      kill: () => void w.terminate(), // the 'exit' event then reports it
    };
  }
  const Ctor = (globalThis as { Worker?: new (url: URL, o: { type: 'module' }) => Worker }).Worker;
  if (typeof Ctor !== 'function') throw new HesseError('UNSUPPORTED_RUNTIME', 'this runtime has no Worker (workerd, Cloudflare Workers): use workers: 1, which runs in this thread');
  const w = new Ctor(url, { type: 'module' });
  let failed: ((why: string) => void) | undefined;
  let ended = false;
  const fail = (why: string) => {
    if (!ended) failed?.(why);
    ended = true;
  };
  w.addEventListener('error', (e) => {
    e.preventDefault();
    fail(`uncaught error: ${(e as ErrorEvent).message || 'unknown'}`);
  });
  w.addEventListener('messageerror', () => fail('a message could not be read'));
  return {
    post: (m, transfer) => w.postMessage(m, transfer ?? []),
    onMessage: (f) => w.addEventListener('message', (e) => f((e as MessageEvent).data)),
    onFailure: (f) => (failed = f),
    terminate: async () => {
      ended = true;
      w.terminate();
    },
    kill: () => {
      w.terminate(); // web Workers report no exit: say it here
      fail('terminated');
    },
  };
}
