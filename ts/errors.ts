/**
 * The kinds of {@link HesseError}, the one error type hesse throws. `code` is stable and
 * machine-readable; `message` names the op and the shapes involved, and says what to do instead
 * where there is something to do.
 *
 * - SHAPE_MISMATCH: operand shapes do not fit the op (matmul inner dimensions, broadcasting,
 *   conv channels, a direction or target unlike the tensor it goes with).
 * - LENGTH_MISMATCH: a flat array's length is not what the shape (or P) needs.
 * - DTYPE_MISMATCH: operands of one op, or a tensor and the objective it is given to, differ in dtype.
 * - UNKNOWN_DTYPE: a dtype name hesse does not know (or, in files, does not read).
 * - OUT_OF_MEMORY: an allocation larger than wasm memory can grow to (4 GiB), or a size that overflows.
 * - INVALID_ARGUMENT: any other argument or option out of its domain (a count, an axis, an unknown
 *   option key, a non-finite input with `checkFinite`), named with the value given.
 * - NON_FINITE: with `checkFinite`, a result overflowed to ±∞ or NaN from finite inputs.
 * - DISPOSED: a tensor, operator or objective used after `dispose()` / `free()`.
 * - NOT_INITIALIZED: a call that needs the wasm core before `await init()` finished.
 * - UNSUPPORTED_RUNTIME: the JavaScript runtime lacks what hesse needs (WebAssembly SIMD, Node's
 *   `process.getBuiltinModule`).
 * - UNSUPPORTED_OP: a valid request hesse does not implement (an op inside a traced function,
 *   an ONNX operator or attribute, a Fortran-order .npy).
 * - MALFORMED_FILE: bytes that are not a valid file of the format read (.npy, .npz, ONNX, the
 *   data sets' JSON).
 * - LOAD_FAILED: a file (the .wasm, a data set) could not be read or fetched; the message names it
 *   and says what to pass instead.
 * - WORKER_FAILED: a worker of an async objective died (terminated, out of memory, an uncaught
 *   error); the message names the worker. The objective is then closed (every later call rejects).
 * - INTERNAL: a bug in hesse (the wasm core trapped); please report it.
 */
export type HesseErrorCode =
  | 'SHAPE_MISMATCH'
  | 'LENGTH_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'UNKNOWN_DTYPE'
  | 'OUT_OF_MEMORY'
  | 'INVALID_ARGUMENT'
  | 'NON_FINITE'
  | 'DISPOSED'
  | 'NOT_INITIALIZED'
  | 'UNSUPPORTED_RUNTIME'
  | 'UNSUPPORTED_OP'
  | 'MALFORMED_FILE'
  | 'LOAD_FAILED'
  | 'WORKER_FAILED'
  | 'INTERNAL';

/**
 * The error hesse throws for anything a caller can get wrong (and for its own bugs, as
 * INTERNAL): `code` says which kind of failure it is; `message` says what was wrong, in the
 * caller's terms, and what to do. Check it with `e instanceof HesseError && e.code === '…'`.
 * The wasm instance keeps working after one (after INTERNAL, objects the failed call was using
 * are closed and throw DISPOSED).
 */
export class HesseError extends Error {
  /** Always 'HesseError' (what stack traces and `String(e)` show before the message). */
  override readonly name = 'HesseError';
  /** An error of kind `code` with the full `message` (the code is not repeated in it). */
  constructor(
    /** Which kind of failure this is; stable across versions, for programs to branch on. */
    readonly code: HesseErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Set once the wasm core has trapped: objects borrowed at that moment stay locked for good. */
let trapped: string | undefined;

/** wasm-bindgen's words for a handle borrowed by a running call, and for a freed handle. */
const REENTRANT = /recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed/;
const FREED = /null pointer passed to rust/;

/**
 * Any error thrown by a call into wasm, as a HesseError: the core's errors (JS errors carrying a
 * `code`) keep their code and message. Two kinds can only come from wasm-bindgen or the engine,
 * and are translated so that no user sees them raw: wasm-bindgen's "recursive use of an object"
 * (a handle used while a call on it is still running, e.g. freed from inside an operator's
 * matvec; or left locked by an earlier trap), its "null pointer passed to rust" (a handle used
 * after free()), and a trap (WebAssembly.RuntimeError, a bug in hesse: the core never traps on
 * bad input or full memory). Anything else (a user callback's own error that reached here
 * unwrapped) is returned as is.
 */
export function toHesseError(e: unknown): unknown {
  if (e instanceof HesseError) return e;
  if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string') {
    return new HesseError((e as unknown as { code: HesseErrorCode }).code, e.message);
  }
  if (e instanceof Error && REENTRANT.test(e.message)) {
    return trapped
      ? new HesseError('DISPOSED', `this object is closed: it was in use when hesse's wasm core failed earlier (${trapped}); create it again`)
      : new HesseError('INVALID_ARGUMENT', 'a hesse object was used while a call on it was still running (for example freed from inside an operator\'s matvec); let the outer call finish first');
  }
  if (e instanceof Error && FREED.test(e.message)) {
    return new HesseError('DISPOSED', 'this hesse object was freed (dispose() or free()) and cannot be used any more');
  }
  if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
    trapped = e.message;
    return new HesseError('INTERNAL', `hesse's wasm core failed (${e.message}); this is a bug in hesse, please report it with the call that caused it. Objects in use by that call are closed.`);
  }
  return e;
}

/** Runs a call into wasm; whatever it throws comes out as {@link toHesseError} makes it. */
export function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toHesseError(e);
  }
}
