/**
 * The shipped declarations as a user's strict TypeScript project sees them: test/types/api.ts
 * (type-level assertions, `@ts-expect-error` included) and the README's JS examples turned into
 * TS, compiled against a fresh declaration emit of ts/ (what `npm run build` writes to dist/),
 * under TypeScript 7 (the repo's) and 5.x, with lib ES2022 alone and with ESNext + DOM, with and
 * without skipLibCheck.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readmeBlocks } from './readme-blocks.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const compilers = { 'TypeScript 7': join(root, 'node_modules/typescript/bin/tsc'), 'TypeScript 5': join(root, 'node_modules/typescript5/bin/tsc') };

/** What a TS user writes where the README's JS leaves types to inference; each must apply. */
const TO_TS: [string, string][] = [
  ['const f = (x) =>', "const f = (x: import('hessian').Sym) =>"],
  ['const loss = (p, x, y) =>', 'const loss = (p: { w1: hs.Sym; w2: hs.Sym; b: hs.Sym }, x: hs.Sym, y: hs.Sym) =>'],
];

function tsc(compiler: string, args: string[]): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync(process.execPath, [compiler, ...args], { cwd: root, encoding: 'utf8', stdio: 'pipe' }) };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hessian-types-'));
  const dist = join(dir, 'dist');
  const emit = tsc(compilers['TypeScript 7'], ['-p', 'tsconfig.json', '--emitDeclarationOnly', '--declarationMap', 'false', '--sourceMap', 'false', '--outDir', dist]);
  expect(emit.ok, emit.output).toBe(true);
  cpSync(join(root, 'ts/wasm'), join(dist, 'wasm'), { recursive: true, filter: (f) => !f.endsWith('.wasm') && !f.endsWith('.js') });
  const files = [join(root, 'test/types/api.ts')];
  readmeBlocks.forEach((block, i) => {
    let code = block;
    for (const [js, ts] of TO_TS) if (code.includes(js)) code = code.replace(js, ts);
    code = `${code.replaceAll('console.log(', 'log(')}\ndeclare function log(...values: unknown[]): void;\nexport {};\n`;
    const file = join(dir, `readme-${i}.ts`);
    writeFileSync(file, code);
    files.push(file);
  });
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ extends: join(root, 'test/types/tsconfig.json'), compilerOptions: { paths: { hessian: [join(dist, 'index.d.ts')] } }, files }),
  );
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the shipped .d.ts in a strict user project', () => {
  it('every README example needs only the listed TS annotations', () => {
    expect(readmeBlocks.length).toBeGreaterThanOrEqual(2);
    for (const [js] of TO_TS) expect(readmeBlocks.some((b) => b.includes(js)), `README no longer contains: ${js}`).toBe(true);
  });

  const cases = Object.entries(compilers).flatMap(([name, path]) =>
    [['ES2022'], ['ESNext', 'DOM']].flatMap((lib) => [false, true].map((skipLibCheck) => [name, lib, skipLibCheck, path] as const)),
  );
  it.each(cases)('%s, lib %j, skipLibCheck %s', (_name, lib, skipLibCheck, compiler) => {
    const r = tsc(compiler, ['-p', join(dir, 'tsconfig.json'), '--lib', lib.join(','), '--skipLibCheck', String(skipLibCheck)]);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  }, 120_000);
});
