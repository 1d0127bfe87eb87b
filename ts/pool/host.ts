/**
 * The runtime adapter of the worker pool, worker side: receive and post messages in a Node
 * worker thread (parentPort) or a web/Deno module Worker (self).
 */
import { nodeBuiltin } from './spawn.js';

/** The worker's end of its channel to the main thread. */
export interface Host {
  /** Sends a message (structured clone; `transfer`: buffers moved, not copied). */
  post(message: unknown, transfer?: Transferable[]): void;
  /** Calls `f` with every message from the main thread. */
  onMessage(f: (m: unknown) => void): void;
}

/** This worker's channel, whichever runtime it runs in. */
export async function host(): Promise<Host> {
  const g = globalThis as { process?: { versions?: { node?: string } }; Deno?: unknown };
  if (g.process?.versions?.node && g.Deno === undefined) {
    const { parentPort } = nodeBuiltin<{
      parentPort: { postMessage(m: unknown, t?: readonly unknown[]): void; on(e: 'message', f: (m: unknown) => void): void };
    }>('node:worker_threads');
    return { post: (m, t) => parentPort.postMessage(m, t), onMessage: (f) => parentPort.on('message', f) };
  }
  const self = globalThis as unknown as { postMessage(m: unknown, t?: Transferable[]): void; addEventListener(e: 'message', f: (e: MessageEvent) => void): void };
  return { post: (m, t) => self.postMessage(m, t ?? []), onMessage: (f) => self.addEventListener('message', (e) => f(e.data)) };
}
