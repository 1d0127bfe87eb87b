// Node (^20.19 or >= 22.12, as `engines` says): imports the package by its own name, as users do (package.json "exports" self-reference
// resolves 'hessian' to dist/index.js), and lets init() find its .wasm on disk: hesse_bg.wasm
// (simd128), or hesse_relaxed_bg.wasm under --experimental-wasm-relaxed-simd.
// Run: node [--experimental-wasm-relaxed-simd] test/runtimes/node.mjs   (exit code 0 = all checks passed)
import * as hesse from 'hessian';
import { runChecksBundled, formatResult } from './checks.mjs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19) || (major > 20 && major < 22) || (major === 22 && minor < 12)) {
  console.error(`node ${process.versions.node}: hessian needs Node ^20.19 or >= 22.12`);
  process.exit(1);
}
// Node 20 has relaxed SIMD only behind a flag (run-all.mjs runs this file with and without it).
const expected = process.execArgv.includes('--experimental-wasm-relaxed-simd') ? 'relaxed-simd' : 'simd128';
await hesse.init();
const result = runChecksBundled(hesse, expected);
console.log(formatResult(result));
console.log(`node ${process.versions.node}${expected === 'relaxed-simd' ? ' --experimental-wasm-relaxed-simd' : ''}: ${result.ok ? 'PASS' : 'FAIL'}`);
process.exitCode = result.ok ? 0 : 1;
