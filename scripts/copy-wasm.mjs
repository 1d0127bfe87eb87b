// Copies the wasm-bindgen output (ts/wasm/, generated) that the package needs beside the compiled
// TS (dist/wasm/): the glue, its types (dist/runtime.d.ts imports them) and the two wasm builds
// (simd128, relaxed SIMD; one glue serves both, see scripts/build-wasm.sh). Not
// hesse_bg.wasm.d.ts, which only bundlers with wasm-ESM integration would read, and nothing uses.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
const from = new URL('../ts/wasm/', import.meta.url);
const to = new URL('../dist/wasm/', import.meta.url);
rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
for (const f of ['hesse.js', 'hesse.d.ts', 'hesse_bg.wasm', 'hesse_relaxed_bg.wasm']) copyFileSync(new URL(f, from), new URL(f, to));
