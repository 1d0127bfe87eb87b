/**
 * The messages between an async objective (main thread) and its workers, and how the batch is
 * split among them. Everything is structured-clone data (typed arrays, plain objects, a
 * WebAssembly.Module); no SharedArrayBuffer, so no cross-origin isolation is needed.
 *
 * Protocol, per worker i of W:
 *   main → worker  `init`  { module, dtype, loss, options, model: { size, blocks, inputKind, programs }, x, y }
 *   worker → main  `ready` | `error`
 *   main → worker  `call`  { id, method, args }   (θ in args: every call carries its point)
 *   worker → main  `result` { id, values } | `error` { id, error: { code, message } }
 * Worker i holds rows [start_i, start_i + N_i) of x and y (contiguous, N_i = ⌊N/W⌋ or ⌈N/W⌉)
 * and a sync Objective over them; a mean over all N is Σᵢ (N_i/N)·(mean over shard i).
 */
import type { DType } from '../tensor.js';
import type { ParamBlock } from '../nn.js';

/** The model of a shard, as programs: one per batch size the shard's objective compiles. */
export interface ModelPrograms {
  /** P. */
  size: number;
  /** The model's parameter blocks (plain data). */
  blocks: ParamBlock[];
  /** Whether x is float or index (token ids). */
  inputKind: 'float' | 'index';
  /** For each batch size: the model applied to an input [rows, …] (toBytes), and its output node. */
  programs: { rows: number; bytes: Uint8Array; out: number }[];
}

/** One array with its shape (x or y of a shard). */
export interface ShardArray {
  /** The rows' values, a compact copy. */
  data: Float32Array | Float64Array | Int32Array | BigInt64Array;
  /** [rows, …]. */
  shape: number[];
}

/** Starts a worker on its shard. */
export interface InitMessage {
  /** The message kind. */
  type: 'init';
  /** The compiled wasm the main thread runs. */
  module: WebAssembly.Module;
  /** The objective's dtype. */
  dtype: DType;
  /** The loss name (the sync objective's). */
  loss: string;
  /** ObjectiveOptions without params and seed (θ comes with every call). */
  options: { wrt?: 'params'; checkFinite?: boolean; batchSize?: number; classAxis?: number };
  /** The model as programs. */
  model: ModelPrograms;
  /** The shard's inputs. */
  x: ShardArray;
  /** The shard's targets (none for mean_output). */
  y?: ShardArray;
}

/** The sync Objective methods a worker runs (by name; nothing else is callable). */
export const METHODS = ['loss', 'valueAndGrad', 'hvp', 'ggnvp', 'fisherVp', 'hvps', 'curvatureProducts'] as const;
/** A callable method's name. */
export type Method = (typeof METHODS)[number];

/** One call of a sync Objective method on a worker's shard. */
export interface CallMessage {
  /** The message kind. */
  type: 'call';
  /** Matches the reply to the call. */
  id: number;
  /** Which method. */
  method: Method;
  /** The method's arguments, `at` (θ) last. */
  args: unknown[];
}

/** A HesseError as sent between threads. */
export interface WireError {
  /** The HesseError code. */
  code: string;
  /** Its message. */
  message: string;
}
/** What a worker sends back: ready, a call's values, or an error (of init without an id). */
export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; values: (number | Float32Array | Float64Array)[] }
  | { type: 'error'; id?: number; error: WireError };

/** Contiguous shards of N rows for W workers: [start, rows] each, the first N mod W one longer. */
export function shards(n: number, w: number): { start: number; rows: number }[] {
  const base = Math.floor(n / w);
  const extra = n % w;
  const out: { start: number; rows: number }[] = [];
  let start = 0;
  for (let i = 0; i < w; i++) {
    const rows = base + (i < extra ? 1 : 0);
    out.push({ start, rows });
    start += rows;
  }
  return out;
}
