/**
 * Reading a file that ships with the package (the wasm, the data sets) or that the user points
 * at, in every runtime: Node reads file: URLs from disk (its fetch does not do file:); Deno,
 * browsers and workers fetch. Every failure is a LOAD_FAILED HesseError that names the file, says
 * why, and says what to pass instead.
 */
import { HesseError } from './errors.js';

interface NodeProcess {
  versions?: { node?: string };
  /** Node ≥ 20.16 / 22.3: a builtin without an `import` that bundlers for the web would see. */
  getBuiltinModule?: (id: string) => unknown;
}
const proc = (globalThis as { process?: NodeProcess }).process;
const isNode = Boolean(proc?.versions?.node) && !('Deno' in globalThis);

/** `Name: message (cause)` of anything thrown; Node's fetch hides the reason in `cause`. */
export function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = e.cause instanceof Error ? ` (${e.cause.message})` : '';
  return `${e.name}: ${e.message}${cause}`;
}

/** A LOAD_FAILED error: `could not load <what> from <where>: <why>; <instead>`. */
export function loadFailed(what: string, where: string | URL, why: string, instead: string): HesseError {
  return new HesseError('LOAD_FAILED', `could not load ${what} from ${String(where)}: ${why}; ${instead}`);
}

/** The bytes of a fetch response, or LOAD_FAILED for an HTTP error status. */
export async function responseBytes(res: Response, what: string, instead: string): Promise<Uint8Array<ArrayBuffer>> {
  const where = res.url || 'the response given';
  if (!res.ok) throw loadFailed(what, where, `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, instead);
  try {
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw loadFailed(what, where, describe(e), instead);
  }
}

/**
 * The bytes at `url` (a URL, or a string fetch understands: absolute, or relative to the page);
 * Node reads file: URLs from disk. `what` and `instead` word the error.
 * @throws HesseError (as a rejection) LOAD_FAILED when it cannot be read or fetched, or the
 *   response is an HTTP error; UNSUPPORTED_RUNTIME on a Node without `process.getBuiltinModule`.
 */
export async function readBytes(url: string | URL, what: string, instead: string): Promise<Uint8Array<ArrayBuffer>> {
  if (isNode && String(url).startsWith('file:')) {
    const fs = proc!.getBuiltinModule?.('node:fs/promises') as { readFile(u: URL): Promise<Uint8Array<ArrayBuffer>> } | undefined;
    if (!fs) {
      throw new HesseError('UNSUPPORTED_RUNTIME', `Node ${proc!.versions!.node} lacks process.getBuiltinModule: hessian needs Node ^20.19 or ≥ 22.12`);
    }
    try {
      return await fs.readFile(new URL(url));
    } catch (e) {
      throw loadFailed(what, url, describe(e), instead);
    }
  }
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw loadFailed(what, url, describe(e), instead);
  }
  return responseBytes(res, what, instead);
}
