/**
 * A worker thread of the CLI: all eigenvalues of one dense matrix (one long wasm call), off the
 * main thread so that the progress bar keeps its clock meanwhile. Receives { a, n } as workerData
 * and posts { values } or { error: { code, message } }.
 */
import { eigvalsh } from '../curvature.js';
import { init } from '../runtime.js';

interface WorkerThreads {
  parentPort: { postMessage(m: unknown, transfer?: ArrayBuffer[]): void };
  workerData: { a: Float64Array; n: number };
}
const wtName = 'node:worker_threads';
const { parentPort, workerData } = (await import(wtName)) as WorkerThreads;
try {
  await init();
  const values = eigvalsh(workerData.a, workerData.n);
  parentPort.postMessage({ values }, [values.buffer as ArrayBuffer]);
} catch (e) {
  parentPort.postMessage({ error: { code: (e as { code?: string }).code ?? 'INVALID_ARGUMENT', message: (e as Error).message } });
}
