/** The README's JavaScript examples run as written (with 'hessian' pointing at this checkout). */
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('README examples', () => {
  it('has examples', () => expect(blocks.length).toBeGreaterThan(0));
  it.each(blocks.map((b, i) => [i, b] as const))('block %i runs', async (i, code) => {
    const file = new URL(`./.readme-${i}.ts`, import.meta.url);
    writeFileSync(file, code.replaceAll("from 'hessian'", "from '../ts/index.js'"));
    try {
      await import(/* @vite-ignore */ file.href);
    } finally {
      rmSync(file);
    }
  });
});
