// Deno 2: imports dist/index.js by path and calls init() with no arguments, so hesse finds
// ./wasm/hesse_relaxed_bg.wasm beside it (Deno has relaxed SIMD) through `new URL(..., import.meta.url)`
// and Deno's fetch of a file: URL.
// Run: node_modules/.bin/deno run --no-config --no-lock --allow-read=dist test/runtimes/deno.mjs
// Only dist/ is readable: the wasm must come from there and nowhere else.
import * as hesse from '../../dist/index.js';
import { runChecksBundled, formatResult } from './checks.mjs';

if (Number(Deno.version.deno.split('.')[0]) < 2) {
  console.error(`deno ${Deno.version.deno}: this test is for Deno 2`);
  Deno.exit(1);
}
await hesse.init();
const result = runChecksBundled(hesse, 'relaxed-simd');
console.log(formatResult(result));
console.log(`deno ${Deno.version.deno}: ${result.ok ? 'PASS' : 'FAIL'}`);
Deno.exit(result.ok ? 0 : 1);
