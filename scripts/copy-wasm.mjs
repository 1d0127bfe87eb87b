// Copies the wasm-bindgen output (ts/wasm/, generated) beside the compiled TS (dist/wasm/).
import { cpSync, rmSync } from 'node:fs';
rmSync(new URL('../dist/wasm', import.meta.url), { recursive: true, force: true });
cpSync(new URL('../ts/wasm', import.meta.url), new URL('../dist/wasm', import.meta.url), { recursive: true });
