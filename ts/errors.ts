/**
 * The one error type hesse throws. `code` is stable and machine-readable; `message` names the
 * op and the shapes involved, and says what to do instead where there is something to do.
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
  | 'LOAD_FAILED';

export class HesseError extends Error {
  override readonly name = 'HesseError';
  constructor(
    readonly code: HesseErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs a call into wasm and turns the errors hesse-core reports (JS errors carrying a `code`)
 * into HesseError. Anything else is rethrown as is: it would be a bug, not bad input.
 */
export function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof Error && typeof (e as { code?: unknown }).code === 'string' && !(e instanceof HesseError)) {
      throw new HesseError((e as unknown as { code: HesseErrorCode }).code, e.message);
    }
    throw e;
  }
}
