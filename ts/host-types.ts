/**
 * Web-platform types as the user's TypeScript lib declares them (DOM, or @types/node), or
 * `never` where it declares none. The public .d.ts names these instead of the globals, so it
 * compiles with `lib: ["es2022"]` alone (no DOM, no @types/node) and still takes the real types
 * where they exist. Types only: nothing here exists at run time.
 */
type Host = typeof globalThis;
/** `WebAssembly.Module`. */
export type WasmModule = Host extends { WebAssembly: { Module: { prototype: infer M } } } ? M : never;
/** `Response` (a fetch response). */
export type HostResponse = Host extends { Response: { prototype: infer R } } ? R : never;
/** `URL`. */
export type HostURL = Host extends { URL: { prototype: infer U } } ? U : never;
/** `BufferSource`: bytes as an ArrayBuffer or a view of one. */
export type Bytes = ArrayBuffer | ArrayBufferView;
