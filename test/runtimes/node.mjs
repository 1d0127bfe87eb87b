// Node (^20.19 or >= 22.12, as `engines` says): imports the package by its own name, as users do (package.json "exports" self-reference
// resolves 'hessian' to dist/index.js), and lets init() find dist/wasm/hesse_bg.wasm on disk.
// Run: node test/runtimes/node.mjs   (exit code 0 = all checks passed)
import * as hesse from 'hessian';
import { runChecksBundled, formatResult } from './checks.mjs';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19) || (major > 20 && major < 22) || (major === 22 && minor < 12)) {
  console.error(`node ${process.versions.node}: hessian needs Node ^20.19 or >= 22.12`);
  process.exit(1);
}
await hesse.init();
const result = runChecksBundled(hesse);
console.log(formatResult(result));
console.log(`node ${process.versions.node}: ${result.ok ? 'PASS' : 'FAIL'}`);
process.exitCode = result.ok ? 0 : 1;
