// Node, CommonJS: require('hessian') as a CommonJS user writes it. It works through Node's
// require() of ES modules (on by default from Node 20.19 and 22.12, the versions `engines` admits;
// the package has no top-level await, which require() of ESM would refuse).
// Run: node test/runtimes/node-cjs.cjs   (exit code 0 = all checks passed)
const hesse = require('hessian');
const { runChecksBundled, formatResult } = require('./checks.mjs');

if (!process.features.require_module) {
  console.error(`node ${process.versions.node} cannot require() ES modules: hessian needs Node ^20.19 or >= 22.12`);
  process.exit(1);
}
hesse.init().then(() => {
  const result = runChecksBundled(hesse, 'simd128');
  result.checks.unshift({
    name: "require('hessian') gives the ES module's namespace",
    ok: hesse[Symbol.toStringTag] === 'Module' && typeof hesse.init === 'function',
    detail: Object.prototype.toString.call(hesse),
  });
  result.ok = result.checks.every((c) => c.ok);
  console.log(formatResult(result));
  console.log(`node ${process.versions.node} (CommonJS): ${result.ok ? 'PASS' : 'FAIL'}`);
  process.exitCode = result.ok ? 0 : 1;
});
