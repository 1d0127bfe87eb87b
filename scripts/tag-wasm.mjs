// Appends a custom section `hesse.build` whose payload (UTF-8) names the build ("simd128",
// "relaxed-simd") to a .wasm file, so ts/runtime.ts can tell which build a module is
// (WebAssembly.Module.customSections) whoever compiled it. A custom section may follow any
// section and engines ignore it: [0x00, LEB128(size), LEB128(name length), name, payload].
// Usage: node scripts/tag-wasm.mjs FILE.wasm BUILD
import { readFileSync, writeFileSync } from 'node:fs';

const [file, build] = process.argv.slice(2);
if (!file || !build) {
  console.error('usage: node scripts/tag-wasm.mjs FILE.wasm BUILD');
  process.exit(2);
}
const uleb = (n) => {
  const out = [];
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n);
  return out;
};
const name = new TextEncoder().encode('hesse.build');
const payload = new TextEncoder().encode(build);
const body = [...uleb(name.length), ...name, ...payload];
const wasm = readFileSync(file);
if (wasm.readUInt32LE(0) !== 0x6d736100) {
  console.error(`${file} is not a WebAssembly module`);
  process.exit(1);
}
writeFileSync(file, Buffer.concat([wasm, Uint8Array.from([0, ...uleb(body.length), ...body])]));
